//! The records of a fetched or stored batch of any codec: compressed ones are decompressed
//! through `sluice-engine`'s `compression` (the broker's codecs), then decoded by
//! `sluice-net`'s record reader.

use sluice_engine::batch::BATCH_HEADER_BYTES;
use sluice_engine::compression::{decompress, CompressionType};
use sluice_net::client::batch::{decode_record_area, BatchHeader, DecodedRecord};

use crate::limits::DECOMPRESSED_BATCH_BYTES_MAX;

/// Low three bits of a batch's attributes: its codec.
const ATTRIBUTE_CODEC_MASK: i16 = 0x07;

/// Decodes the records of `batch` (a whole batch, as yielded by `Batches`); the error is a
/// sentence naming the batch.
pub fn decode_batch(header: &BatchHeader, batch: &[u8]) -> Result<Vec<DecodedRecord>, String> {
    let id = (header.attributes & ATTRIBUTE_CODEC_MASK) as u8;
    let codec = CompressionType::from_id(id).ok_or_else(|| {
        format!(
            "the batch at offset {} has an unknown compression codec {id}",
            header.base_offset
        )
    })?;
    let area = &batch[BATCH_HEADER_BYTES.min(batch.len())..];
    let decoded = match codec {
        CompressionType::None => decode_record_area(header, area),
        codec => {
            let mut plain = Vec::new();
            decompress(codec, area, &mut plain, DECOMPRESSED_BATCH_BYTES_MAX).map_err(|e| {
                format!(
                    "the {codec} batch at offset {} does not decompress: {e}",
                    header.base_offset
                )
            })?;
            decode_record_area(header, &plain)
        }
    };
    decoded.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_engine::testing::build_compressed_batch;
    use sluice_net::client::Batches;

    #[test]
    fn decodes_every_codec() {
        let records: &[sluice_engine::testing::TestRecord] = &[
            (Some(b"k"), Some(b"first"), 1_700_000_000_000),
            (None, Some(b"second"), 1_700_000_000_002),
        ];
        for codec in CompressionType::ALL {
            let batch = build_compressed_batch(records, codec);
            let (header, bytes) = Batches::new(&batch).next().unwrap().unwrap();
            let decoded = decode_batch(&header, bytes).unwrap();
            let values: Vec<_> = decoded.iter().map(|r| r.value.clone().unwrap()).collect();
            assert_eq!(values, [b"first".to_vec(), b"second".to_vec()], "{codec}");
            assert_eq!(decoded[1].offset, 1);
            assert_eq!(decoded[1].timestamp_ms, 1_700_000_000_002);
            assert_eq!(decoded[0].key.as_deref(), Some(&b"k"[..]));
        }
    }

    #[test]
    fn a_stream_that_does_not_decompress_is_named() {
        let mut batch =
            build_compressed_batch(&[(None, Some(b"x"), 0)], CompressionType::Zstd).to_vec();
        let last = batch.len() - 1;
        batch[BATCH_HEADER_BYTES + 1] ^= 0xff;
        batch[last] ^= 0xff;
        let header = sluice_engine::batch::BatchHeader::parse(&batch).unwrap();
        header.write_sealed(&mut batch);
        let (header, bytes) = Batches::new(&batch).next().unwrap().unwrap();
        let error = decode_batch(&header, bytes).unwrap_err();
        assert!(
            error.contains("zstd batch at offset 0 does not decompress"),
            "{error}"
        );
    }
}
