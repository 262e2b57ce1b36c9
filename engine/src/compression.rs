//! Kafka's record batch codecs, in one place: produce validation (`log_validator`),
//! recompression for a topic's `compression.type`, and the tools' decoding all go through
//! [`decompress`] and [`compress`]. The codecs are the `flate2`, `snap`, `lz4_flex` and
//! `zstd` crates; only the framing Kafka's clients put around them is ours:
//!
//! - gzip (codec 1): a gzip stream (RFC 1952; concatenated members are read as one).
//! - snappy (codec 2): either xerial's `SnappyOutputStream` framing, which the Java client
//!   and kafka-python write — the 16-byte header `82 'S' 'N' 'A' 'P' 'P' 'Y' 00`, version
//!   i32, compatible version i32, then blocks of (length i32, raw snappy block) — or one raw
//!   snappy block, which librdkafka writes. [`compress`] writes xerial framing, which every
//!   client reads.
//! - lz4 (codec 3): the LZ4 frame format (magic `04 22 4D 18`), as every client since Kafka
//!   0.10 writes it. [`compress`] writes 64 KiB independent blocks without checksums, as the
//!   Java client does, and like Kafka's `Lz4BlockOutputStream` compresses with LZ4's fast
//!   compressor at the default `compression.lz4.level` (9; `lz4_flex`) and with LZ4HC at
//!   any other level (liblz4's frame API through the `lz4` crate, since lz4_flex has no HC
//!   mode; liblz4 caps HC at level 12, as the lz4-java Kafka ships with does, and its frame
//!   API compresses levels 1 and 2 at the fast level).
//! - zstd (codec 4): zstd frames.
//!
//! Decompression is bounded by the caller's `limit_bytes`: the output grows as the codec
//! produces bytes (doubling, so at most about twice the bound is ever reserved), and a
//! stream that would pass the bound is refused there, before more is allocated (snappy
//! blocks declare their length, which is checked before the block is decoded).

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};

/// The largest zstd window accepted (zstd's own default limit, 128 MiB). A frame's window
/// is address space the decoder reserves; its pages are touched only as output is produced,
/// which `limit_bytes` bounds.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;
/// Uncompressed bytes per block when [`compress`] writes xerial snappy framing (the Java
/// client's `SnappyOutputStream` default).
pub const SNAPPY_XERIAL_BLOCK_BYTES: usize = 32 * 1024;

/// xerial's `SnappyOutputStream` stream header magic.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic, version i32, compatible version i32.
const XERIAL_HEADER_BYTES: usize = 16;
/// The version and compatible version xerial (and the Java client) write.
const XERIAL_VERSION: i32 = 1;

/// Kafka's codec ids (record batch attributes bits 0-2) and names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompressionType {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionType {
    pub const ALL: [CompressionType; 5] = [
        CompressionType::None,
        CompressionType::Gzip,
        CompressionType::Snappy,
        CompressionType::Lz4,
        CompressionType::Zstd,
    ];

    /// The codec of attribute bits 0-2; `None` for the ids Kafka leaves undefined (5-7).
    pub fn from_id(id: u8) -> Option<CompressionType> {
        CompressionType::ALL.get(usize::from(id)).copied()
    }

    pub fn id(self) -> u8 {
        match self {
            CompressionType::None => 0,
            CompressionType::Gzip => 1,
            CompressionType::Snappy => 2,
            CompressionType::Lz4 => 3,
            CompressionType::Zstd => 4,
        }
    }

    /// Kafka's name (`CompressionType.name`): none, gzip, snappy, lz4, zstd.
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::None => "none",
            CompressionType::Gzip => "gzip",
            CompressionType::Snappy => "snappy",
            CompressionType::Lz4 => "lz4",
            CompressionType::Zstd => "zstd",
        }
    }
}

impl fmt::Display for CompressionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Kafka's gzip level default (-1: zlib's default, 6) and range.
pub const GZIP_LEVEL_DEFAULT: i32 = -1;
pub const GZIP_LEVEL_MIN: i32 = 1;
pub const GZIP_LEVEL_MAX: i32 = 9;
/// Kafka's lz4 level default and range (`compression.lz4.level`).
pub const LZ4_LEVEL_DEFAULT: i32 = 9;
pub const LZ4_LEVEL_MIN: i32 = 1;
pub const LZ4_LEVEL_MAX: i32 = 17;
/// Kafka's zstd level default and range (`compression.zstd.level`).
pub const ZSTD_LEVEL_DEFAULT: i32 = 3;
pub const ZSTD_LEVEL_MIN: i32 = -131_072;
pub const ZSTD_LEVEL_MAX: i32 = 22;

/// A codec and the levels to compress with (Kafka's `Compression`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compression {
    pub codec: CompressionType,
    pub gzip_level: i32,
    pub lz4_level: i32,
    pub zstd_level: i32,
}

impl Compression {
    /// `codec` at Kafka's default levels.
    pub fn of(codec: CompressionType) -> Compression {
        Compression {
            codec,
            gzip_level: GZIP_LEVEL_DEFAULT,
            lz4_level: LZ4_LEVEL_DEFAULT,
            zstd_level: ZSTD_LEVEL_DEFAULT,
        }
    }
}

/// Why [`decompress`] gave up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecompressError {
    /// The bytes are not a valid stream of the codec.
    Corrupt(String),
    /// The output would pass `limit_bytes`.
    TooLarge { limit_bytes: usize },
}

impl fmt::Display for DecompressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecompressError::Corrupt(m) => f.write_str(m),
            DecompressError::TooLarge { limit_bytes } => {
                write!(f, "decompresses to more than {limit_bytes} bytes")
            }
        }
    }
}

impl std::error::Error for DecompressError {}

/// Appends the decompressed form of `input` (the records area of a batch of `codec`) to
/// `out`, at most `limit_bytes` of it. `None` copies `input` (bounded the same way).
pub fn decompress(
    codec: CompressionType,
    input: &[u8],
    out: &mut Vec<u8>,
    limit_bytes: usize,
) -> Result<(), DecompressError> {
    let corrupt = |e: io::Error| DecompressError::Corrupt(format!("{codec} data is corrupt: {e}"));
    match codec {
        CompressionType::None => read_bounded(input, out, limit_bytes).map_err(corrupt),
        CompressionType::Gzip => {
            read_bounded(flate2::read::MultiGzDecoder::new(input), out, limit_bytes)
                .map_err(corrupt)
        }
        CompressionType::Snappy => {
            snappy_decompress(input, out, limit_bytes).map(|()| Bounded::Fits)
        }
        CompressionType::Lz4 => {
            read_bounded(lz4_flex::frame::FrameDecoder::new(input), out, limit_bytes)
                .map_err(corrupt)
        }
        CompressionType::Zstd => ZSTD_DCTX.with_borrow_mut(|slot| {
            let ctx = match slot {
                Some(ctx) => ctx,
                None => slot.insert(zstd_context().map_err(corrupt)?),
            };
            let decoder = zstd::stream::read::Decoder::with_context(input, ctx);
            read_bounded(decoder, out, limit_bytes).map_err(corrupt)
        }),
    }
    .and_then(|too_large| match too_large {
        Bounded::Fits => Ok(()),
        Bounded::TooLarge => Err(DecompressError::TooLarge { limit_bytes }),
    })
}

thread_local! {
    /// The thread's zstd decompression context, reused batch after batch (creating one
    /// costs more than decoding a small batch); each use resets its session.
    static ZSTD_DCTX: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { RefCell::new(None) };
}

fn zstd_context() -> io::Result<zstd::zstd_safe::DCtx<'static>> {
    let mut ctx = zstd::zstd_safe::DCtx::create();
    ctx.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(
        ZSTD_WINDOW_LOG_MAX,
    ))
    .map_err(|code| io::Error::other(zstd::zstd_safe::get_error_name(code)))?;
    Ok(ctx)
}

enum Bounded {
    Fits,
    TooLarge,
}

/// Reads `reader` to its end into `out`, stopping once `out` would pass `limit_bytes`.
fn read_bounded(reader: impl Read, out: &mut Vec<u8>, limit_bytes: usize) -> io::Result<Bounded> {
    let start = out.len();
    // One byte past the limit tells "exactly the limit" from "more".
    let limit = u64::try_from(limit_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    if let Err(e) = reader.take(limit).read_to_end(out) {
        out.truncate(start);
        return Err(e);
    }
    if out.len() - start > limit_bytes {
        out.truncate(start + limit_bytes);
        return Ok(Bounded::TooLarge);
    }
    Ok(Bounded::Fits)
}

fn snappy_decompress(
    input: &[u8],
    out: &mut Vec<u8>,
    limit_bytes: usize,
) -> Result<(), DecompressError> {
    let start = out.len();
    let mut decoder = snap::raw::Decoder::new();
    let mut block = |block: &[u8], out: &mut Vec<u8>| -> Result<(), DecompressError> {
        let corrupt =
            |e: snap::Error| DecompressError::Corrupt(format!("snappy data is corrupt: {e}"));
        let len = snap::raw::decompress_len(block).map_err(corrupt)?;
        if out.len() - start + len > limit_bytes {
            return Err(DecompressError::TooLarge { limit_bytes });
        }
        let at = out.len();
        out.resize(at + len, 0);
        let n = decoder.decompress(block, &mut out[at..]).map_err(corrupt)?;
        out.truncate(at + n);
        Ok(())
    };
    let Some(mut rest) = input.strip_prefix(&XERIAL_MAGIC[..]) else {
        return block(input, out);
    };
    // xerial: version and compatible version, then length-prefixed raw blocks.
    if rest.len() < XERIAL_HEADER_BYTES - XERIAL_MAGIC.len() {
        return Err(DecompressError::Corrupt(
            "snappy (xerial) header is cut short".into(),
        ));
    }
    rest = &rest[XERIAL_HEADER_BYTES - XERIAL_MAGIC.len()..];
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(DecompressError::Corrupt(
                "snappy (xerial) block length is cut short".into(),
            ));
        };
        let len = i32::from_be_bytes(*len);
        let data = usize::try_from(len)
            .ok()
            .and_then(|len| tail.get(..len))
            .ok_or_else(|| {
                DecompressError::Corrupt(format!(
                    "snappy (xerial) block of {len} bytes runs past the data ({} left)",
                    tail.len()
                ))
            })?;
        block(data, out)?;
        rest = &tail[data.len()..];
    }
    Ok(())
}

/// Appends `input` compressed with `compression` to `out`. `None` appends `input` as is.
pub fn compress(compression: Compression, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    match compression.codec {
        CompressionType::None => out.extend_from_slice(input),
        CompressionType::Gzip => {
            let level = match compression.gzip_level {
                GZIP_LEVEL_DEFAULT => flate2::Compression::default(),
                level => {
                    flate2::Compression::new(level.clamp(GZIP_LEVEL_MIN, GZIP_LEVEL_MAX) as u32)
                }
            };
            let mut encoder = flate2::write::GzEncoder::new(out, level);
            encoder.write_all(input)?;
            encoder.finish()?;
        }
        CompressionType::Snappy => snappy_compress_xerial(input, out)?,
        CompressionType::Lz4 if compression.lz4_level != LZ4_LEVEL_DEFAULT => {
            lz4_high_compress(compression.lz4_level, input, out)?
        }
        CompressionType::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
            encoder.write_all(input)?;
            encoder.finish().map_err(io::Error::other)?;
        }
        CompressionType::Zstd => {
            let level = compression.zstd_level.clamp(ZSTD_LEVEL_MIN, ZSTD_LEVEL_MAX);
            out.extend_from_slice(&zstd::bulk::compress(input, level)?);
        }
    }
    Ok(())
}

/// Kafka's lz4 frame at a level other than its default: LZ4HC through liblz4's frame API.
fn lz4_high_compress(level: i32, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let level = level.clamp(LZ4_LEVEL_MIN, LZ4_LEVEL_MAX) as u32;
    let mut encoder = lz4::EncoderBuilder::new()
        .block_size(lz4::BlockSize::Max64KB)
        .block_mode(lz4::BlockMode::Independent)
        .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
        .checksum(lz4::ContentChecksum::NoChecksum)
        .level(level)
        .build(out)?;
    encoder.write_all(input)?;
    let (_, finished) = encoder.finish();
    finished
}

fn snappy_compress_xerial(input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    out.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for chunk in input.chunks(SNAPPY_XERIAL_BLOCK_BYTES) {
        let at = out.len();
        out.resize(at + 4 + snap::raw::max_compress_len(chunk.len()), 0);
        let n = encoder
            .compress(chunk, &mut out[at + 4..])
            .map_err(io::Error::other)?;
        let len = i32::try_from(n).expect("a 32 KiB block compresses below 2 GiB");
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        out.truncate(at + 4 + n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let input = sample();
        for codec in CompressionType::ALL {
            let mut packed = Vec::new();
            compress(Compression::of(codec), &input, &mut packed).unwrap();
            let mut back = Vec::new();
            decompress(codec, &packed, &mut back, input.len()).unwrap();
            assert_eq!(back, input, "{codec}");
            let mut short = Vec::new();
            assert_eq!(
                decompress(codec, &packed, &mut short, input.len() - 1),
                Err(DecompressError::TooLarge {
                    limit_bytes: input.len() - 1
                }),
                "{codec}"
            );
            assert!(short.len() < input.len(), "{codec}");
        }
    }

    /// Words and numbers, as W1's records: compressible, but not trivially.
    fn text() -> Vec<u8> {
        (0..20_000u32)
            .flat_map(|i| {
                format!("record {} of producer {} at {} ", i, i % 7, i * 31 % 1009).into_bytes()
            })
            .collect()
    }

    #[test]
    fn lz4_levels_as_kafka_fast_at_the_default_and_hc_at_the_others() {
        let input = text();
        let packed = |level: i32| {
            let mut out = Vec::new();
            let compression = Compression {
                lz4_level: level,
                ..Compression::of(CompressionType::Lz4)
            };
            compress(compression, &input, &mut out).unwrap();
            // Kafka's frame: magic, FLG version 1 + independent blocks, no checksums,
            // no content size; BD 64 KiB blocks.
            assert_eq!(
                out[..6],
                [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40],
                "level {level}"
            );
            let mut back = Vec::new();
            decompress(CompressionType::Lz4, &out, &mut back, input.len()).unwrap();
            assert_eq!(back, input, "level {level}");
            out.len()
        };
        let (fast, hc) = (packed(LZ4_LEVEL_DEFAULT), packed(12));
        assert!(
            hc < fast,
            "LZ4HC at 12 ({hc} bytes) beats the fast level ({fast} bytes)"
        );
        assert!(packed(LZ4_LEVEL_MAX) <= hc, "17 is capped at liblz4's 12");
    }

    #[test]
    fn raw_snappy_blocks_as_librdkafka_writes_them() {
        let input = sample();
        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        let mut back = Vec::new();
        decompress(CompressionType::Snappy, &raw, &mut back, input.len()).unwrap();
        assert_eq!(back, input);
    }

    #[test]
    fn garbage_is_corrupt_for_every_codec() {
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
        for codec in CompressionType::ALL.into_iter().skip(1) {
            let mut out = Vec::new();
            let got = decompress(codec, &garbage, &mut out, 1 << 20);
            assert!(
                matches!(got, Err(DecompressError::Corrupt(_))),
                "{codec}: {got:?}"
            );
        }
    }

    #[test]
    fn a_bomb_is_refused_without_growing_past_the_bound() {
        let zeros = vec![0u8; 8 << 20];
        for codec in CompressionType::ALL.into_iter().skip(1) {
            let mut packed = Vec::new();
            compress(Compression::of(codec), &zeros, &mut packed).unwrap();
            let mut out = Vec::new();
            let limit = 1 << 20;
            assert_eq!(
                decompress(codec, &packed, &mut out, limit),
                Err(DecompressError::TooLarge { limit_bytes: limit }),
                "{codec}"
            );
            assert!(
                out.capacity() <= 2 * (limit + 1),
                "{codec}: {}",
                out.capacity()
            );
        }
    }
}
