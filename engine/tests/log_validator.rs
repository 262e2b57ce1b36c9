//! Record-level validation (`log_validator`): good batches of every codec pass untouched;
//! garbage records behind a correct CRC are refused for every codec; LogAppendTime,
//! recompression and timestamp bounds rewrite or refuse exactly as Kafka does.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sluice_engine::batch::{record_times, validate_batch, BatchHeader, BATCH_HEADER_BYTES};
use sluice_engine::compression::{decompress, Compression, CompressionType};
use sluice_engine::log_validator::{
    decompressed_bytes_max, validate_records, BrokerCompression, RecordsConfig, TimestampType,
    RECORD_ERRORS_MAX,
};
use sluice_engine::testing::{
    build_batch, build_compressed_batch, put_test_record, put_varlong, seal_batch, TestRecord,
};
use sluice_engine::BatchErrorKind;

const MAX_MESSAGE_BYTES: u32 = 1_048_588;
const NOW_MS: i64 = 1_700_000_000_000;

fn records() -> Vec<TestRecord<'static>> {
    vec![
        (Some(b"k1"), Some(b"v1"), NOW_MS - 10),
        (None, Some(b"value two"), NOW_MS - 5),
        (Some(b"k3"), None, NOW_MS - 20),
    ]
}

fn header_of(batch: &[u8]) -> BatchHeader {
    BatchHeader::parse(batch).unwrap()
}

/// The uncompressed record bytes of `batch`.
fn area_of(batch: &[u8]) -> Vec<u8> {
    let codec = CompressionType::from_id(header_of(batch).compression()).unwrap();
    let mut out = Vec::new();
    decompress(codec, &batch[BATCH_HEADER_BYTES..], &mut out, 1 << 24).unwrap();
    out
}

fn validate(batch: &Bytes, config: &RecordsConfig) -> Result<Bytes, sluice_engine::BatchError> {
    validate_records(batch.clone(), MAX_MESSAGE_BYTES, config, NOW_MS).map(|v| v.records)
}

/// A batch of `sample()`'s header around `area`, `count` records, sealed with `codec`.
fn poison(area: &[u8], count: i32, codec: CompressionType) -> Bytes {
    let template = header_of(&build_batch(&records()));
    let header = BatchHeader {
        records_count: count,
        last_offset_delta: count - 1,
        ..template
    };
    seal_batch(&header, area, codec)
}

fn check_refused(area: &[u8], count: i32, kind: BatchErrorKind, what: &str) {
    for codec in CompressionType::ALL {
        let batch = poison(area, count, codec);
        validate_batch(&batch, MAX_MESSAGE_BYTES).expect("the framing and CRC are right");
        let got = validate(&batch, &RecordsConfig::default());
        assert_eq!(
            got.as_ref().map_err(|e| e.kind),
            Err(kind),
            "{what} ({codec}): {got:?}"
        );
    }
}

fn record(offset_delta: i64, key: Option<&[u8]>, headers: &[(&[u8], Option<&[u8]>)]) -> BytesMut {
    let mut out = BytesMut::new();
    put_test_record(&mut out, (offset_delta, 0), key, Some(b"value"), headers);
    out
}

#[test]
fn good_batches_of_every_codec_are_stored_as_received() {
    for codec in CompressionType::ALL {
        let batch = build_compressed_batch(&records(), codec);
        let v = validate_records(
            batch.clone(),
            MAX_MESSAGE_BYTES,
            &RecordsConfig::default(),
            NOW_MS,
        )
        .unwrap();
        assert!(!v.rewritten, "{codec}");
        assert_eq!(v.records, batch, "{codec}");
        assert_eq!(v.headers, vec![header_of(&batch)], "{codec}");
        assert_eq!(v.log_append_time_ms, None);
    }
}

#[test]
fn uncompressed_batches_are_walked_in_place() {
    let batch = build_batch(&records());
    let v = validate_records(
        batch.clone(),
        MAX_MESSAGE_BYTES,
        &RecordsConfig::default(),
        NOW_MS,
    )
    .unwrap();
    assert_eq!(v.records.as_ptr(), batch.as_ptr(), "no copy");
}

#[test]
fn garbage_records_behind_a_correct_crc_are_refused_for_every_codec() {
    let good = area_of(&build_batch(&records()));
    let garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 + 11) as u8).collect();
    check_refused(&garbage, 3, BatchErrorKind::InvalidRecord, "garbage");
    check_refused(
        &good[..good.len() - 1],
        3,
        BatchErrorKind::InvalidRecord,
        "cut short",
    );
    check_refused(
        &[&good[..], &[0u8]].concat(),
        3,
        BatchErrorKind::InvalidRecord,
        "trailing byte",
    );
    check_refused(
        &good,
        2,
        BatchErrorKind::InvalidRecord,
        "fewer declared than present",
    );
    check_refused(
        &good,
        4,
        BatchErrorKind::InvalidRecord,
        "more declared than present",
    );
    check_refused(
        &[0x01],
        1,
        BatchErrorKind::InvalidRecord,
        "negative record length",
    );
    check_refused(
        &[0xff; 12],
        1,
        BatchErrorKind::InvalidRecord,
        "varint too long",
    );

    let mut bad_key = BytesMut::new();
    let mut body = BytesMut::new();
    body.extend_from_slice(&[0]); // attributes
    put_varlong(&mut body, 0); // timestamp delta
    put_varlong(&mut body, 0); // offset delta
    put_varlong(&mut body, -5); // key length
    put_varlong(&mut body, -1); // value
    put_varlong(&mut body, 0); // headers
    put_varlong(&mut bad_key, body.len() as i64);
    bad_key.extend_from_slice(&body);
    check_refused(&bad_key, 1, BatchErrorKind::InvalidRecord, "key length -5");

    let with_header = record(0, Some(b"k"), &[(b"h", Some(b"v"))]);
    let header_count_at = with_header.len() - 5; // count, key len, 'h', value len, 'v'
    for (count, what) in [
        (-1i64, "negative header count"),
        (60, "header count past the record"),
    ] {
        let mut r = with_header.to_vec();
        let mut n = BytesMut::new();
        put_varlong(&mut n, count);
        r[header_count_at] = n[0];
        check_refused(&r, 1, BatchErrorKind::InvalidRecord, what);
    }
    let mut r = with_header.to_vec();
    r[header_count_at + 1] = 0x01; // header key length -1
    check_refused(
        &r,
        1,
        BatchErrorKind::InvalidRecord,
        "negative header key length",
    );
    let mut r = with_header.to_vec();
    r[0] += 2; // the record claims one byte more than its fields (zigzag: 2 per byte)
    r.push(0);
    check_refused(
        &r,
        1,
        BatchErrorKind::InvalidRecord,
        "record length past its fields",
    );
}

#[test]
fn a_structural_error_names_the_record() {
    let area = [&record(0, None, &[])[..], &[0x01]].concat();
    let got = validate(
        &poison(&area, 2, CompressionType::None),
        &RecordsConfig::default(),
    )
    .unwrap_err();
    assert_eq!(got.record_errors.len(), 1);
    assert_eq!(got.record_errors[0].batch_index, 1);
}

#[test]
fn offset_deltas_uncompressed_refused_compressed_renumbered() {
    let area = [
        &record(0, None, &[])[..],
        &record(5, None, &[])[..],
        &record(2, None, &[])[..],
    ]
    .concat();
    let got = validate(
        &poison(&area, 3, CompressionType::None),
        &RecordsConfig::default(),
    );
    assert_eq!(got.map_err(|e| e.kind), Err(BatchErrorKind::InvalidRecord));
    for codec in CompressionType::ALL.into_iter().skip(1) {
        let stored = validate(&poison(&area, 3, codec), &RecordsConfig::default()).unwrap();
        let header = validate_batch(&stored, MAX_MESSAGE_BYTES).unwrap();
        assert_eq!(header.compression(), codec.id());
        let plain = seal_batch(&header, &area_of(&stored), CompressionType::None);
        let deltas: Vec<i32> = record_times(&plain)
            .unwrap()
            .iter()
            .map(|t| t.offset_delta)
            .collect();
        assert_eq!(deltas, [0, 1, 2], "{codec}");
    }
}

#[test]
fn corrupt_compressed_data_is_corrupt_message() {
    let batch = build_compressed_batch(&records(), CompressionType::Gzip);
    let header = header_of(&batch);
    let mut damaged = batch.to_vec();
    let mid = BATCH_HEADER_BYTES + (damaged.len() - BATCH_HEADER_BYTES) / 2;
    damaged[mid] ^= 0x55;
    damaged[mid + 1] ^= 0x55;
    header.write_sealed(&mut damaged);
    let got = validate(&Bytes::from(damaged), &RecordsConfig::default());
    assert_eq!(got.map_err(|e| e.kind), Err(BatchErrorKind::Corrupt));
    for codec in CompressionType::ALL.into_iter().skip(1) {
        let mut batch = build_compressed_batch(&records(), codec).to_vec();
        batch.truncate(BATCH_HEADER_BYTES);
        batch.extend((0..64u8).map(|i| i.wrapping_mul(97)));
        let h = BatchHeader {
            batch_length: (batch.len() - 12) as i32,
            ..header_of(&batch)
        };
        h.write_sealed(&mut batch);
        let got = validate(&Bytes::from(batch), &RecordsConfig::default());
        assert_eq!(
            got.map_err(|e| e.kind),
            Err(BatchErrorKind::Corrupt),
            "{codec}"
        );
    }
}

#[test]
fn a_decompression_bomb_is_too_large() {
    let max_message_bytes = 64 << 10;
    let mut area = BytesMut::new();
    let big = vec![0u8; 64 << 10];
    let count = 80;
    for i in 0..count {
        put_test_record(&mut area, (i, 0), None, Some(&big), &[]);
    }
    assert!(area.len() > decompressed_bytes_max(max_message_bytes));
    let mut refused = 0;
    for codec in CompressionType::ALL.into_iter().skip(1) {
        let batch = poison(&area, count as i32, codec);
        if batch.len() > max_message_bytes as usize {
            continue; // snappy does not shrink zeros below max.message.bytes
        }
        let got = validate_records(batch, max_message_bytes, &RecordsConfig::default(), NOW_MS);
        assert_eq!(
            got.map_err(|e| e.kind).map(|_| ()),
            Err(BatchErrorKind::TooLarge),
            "{codec}"
        );
        refused += 1;
    }
    assert!(refused >= 3, "gzip, lz4 and zstd bombs fit the batch bound");
}

fn bounded(before: i64, after: i64) -> RecordsConfig {
    RecordsConfig {
        timestamp_before_max_ms: before,
        timestamp_after_max_ms: after,
        ..RecordsConfig::default()
    }
}

#[test]
fn timestamps_beyond_the_bounds_are_invalid_timestamp_per_record() {
    let batch = build_batch(&[
        (None, Some(b"old"), NOW_MS - 10_000),
        (None, Some(b"ok"), NOW_MS),
        (None, Some(b"future"), NOW_MS + 10_000),
    ]);
    let got = validate(&batch, &bounded(1000, 1000)).unwrap_err();
    assert_eq!(got.kind, BatchErrorKind::InvalidTimestamp);
    let indexes: Vec<i32> = got.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, [0, 2]);
    assert!(
        got.record_errors[0].message.contains("out of range"),
        "{got:?}"
    );
    assert!(validate(&batch, &bounded(10_000, 10_000)).is_ok());
    // Kafka's defaults: no bound in the past, one hour ahead.
    let far_future = build_batch(&[(None, Some(b"x"), NOW_MS + 3_600_001)]);
    let got = validate(&far_future, &RecordsConfig::default()).unwrap_err();
    assert_eq!(got.kind, BatchErrorKind::InvalidTimestamp);
    assert!(validate(
        &build_batch(&[(None, Some(b"x"), 0)]),
        &RecordsConfig::default()
    )
    .is_ok());
    // -1 is "no timestamp" and never out of range.
    assert!(validate(&build_batch(&[(None, Some(b"x"), -1)]), &bounded(0, 0)).is_ok());
}

#[test]
fn record_errors_are_bounded() {
    let many: Vec<_> = (0..RECORD_ERRORS_MAX as i64 + 50)
        .map(|i| (None, Some(&b"v"[..]), NOW_MS + 10_000_000 + i))
        .collect();
    let got = validate(&build_batch(&many), &RecordsConfig::default()).unwrap_err();
    assert_eq!(got.record_errors.len(), RECORD_ERRORS_MAX);
}

#[test]
fn a_producer_may_not_set_log_append_time() {
    let batch = build_batch(&[(None, Some(b"x"), -1)]);
    let header = header_of(&batch);
    let with_lat = BatchHeader {
        attributes: header.attributes_with(0, true),
        ..header
    };
    let mut bytes = batch.to_vec();
    with_lat.write_sealed(&mut bytes);
    let got = validate(&Bytes::from(bytes), &RecordsConfig::default()).unwrap_err();
    assert_eq!(got.kind, BatchErrorKind::InvalidTimestamp);
}

#[test]
fn log_append_time_stamps_the_header_and_keeps_the_records() {
    let config = RecordsConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..RecordsConfig::default()
    };
    for codec in CompressionType::ALL {
        let batch = build_compressed_batch(&records(), codec);
        let v = validate_records(batch.clone(), MAX_MESSAGE_BYTES, &config, NOW_MS).unwrap();
        assert!(v.rewritten);
        assert_eq!(v.log_append_time_ms, Some(NOW_MS));
        let header = validate_batch(&v.records, MAX_MESSAGE_BYTES).expect("a valid CRC");
        assert!(header.is_log_append_time(), "{codec}");
        assert_eq!(header.max_timestamp, NOW_MS);
        assert_eq!(header.compression(), codec.id());
        assert_eq!(
            v.records[BATCH_HEADER_BYTES..],
            batch[BATCH_HEADER_BYTES..],
            "{codec}"
        );
    }
}

#[test]
fn a_wrong_max_timestamp_is_corrected() {
    let batch = build_batch(&records());
    let wrong = BatchHeader {
        max_timestamp: NOW_MS - 1000,
        ..header_of(&batch)
    };
    let mut bytes = batch.to_vec();
    wrong.write_sealed(&mut bytes);
    let v = validate_records(
        Bytes::from(bytes),
        MAX_MESSAGE_BYTES,
        &RecordsConfig::default(),
        NOW_MS,
    )
    .unwrap();
    assert!(v.rewritten);
    assert_eq!(v.headers[0].max_timestamp, NOW_MS - 5);
    validate_batch(&v.records, MAX_MESSAGE_BYTES).unwrap();
}

#[test]
fn compression_type_recompresses_into_the_topic_codec() {
    for target in CompressionType::ALL {
        let config = RecordsConfig {
            compression: BrokerCompression::Codec(Compression::of(target)),
            ..RecordsConfig::default()
        };
        for source in CompressionType::ALL {
            let batch = build_compressed_batch(&records(), source);
            let v = validate_records(batch.clone(), MAX_MESSAGE_BYTES, &config, NOW_MS).unwrap();
            assert_eq!(v.rewritten, source != target, "{source} -> {target}");
            let header = validate_batch(&v.records, MAX_MESSAGE_BYTES).unwrap();
            assert_eq!(header.compression(), target.id(), "{source} -> {target}");
            assert_eq!(area_of(&v.records), area_of(&batch), "{source} -> {target}");
            let original = header_of(&batch);
            assert_eq!(
                (
                    header.records_count,
                    header.base_timestamp,
                    header.max_timestamp,
                    header.producer_id
                ),
                (
                    original.records_count,
                    original.base_timestamp,
                    original.max_timestamp,
                    original.producer_id
                )
            );
        }
    }
}

#[test]
fn recompression_rechecks_max_message_bytes() {
    let value = b"compressible ".repeat(300);
    let many: Vec<_> = (0..4)
        .map(|i| (None, Some(&value[..]), NOW_MS + i))
        .collect();
    let batch = build_compressed_batch(&many, CompressionType::Zstd);
    let config = RecordsConfig {
        compression: BrokerCompression::Codec(Compression::of(CompressionType::None)),
        ..RecordsConfig::default()
    };
    let limit = batch.len() as u32 + 10;
    assert!(build_batch(&many).len() > limit as usize);
    let got = validate_records(batch, limit, &config, NOW_MS).unwrap_err();
    assert_eq!(got.kind, BatchErrorKind::TooLarge);
}

/// Key, value, headers and timestamp delta of one generated record.
type ArbRecord = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(Vec<u8>, Option<Vec<u8>>)>,
    i64,
);

fn arb_record() -> impl Strategy<Value = ArbRecord> {
    (
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
        proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 0..10),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            ),
            0..3,
        ),
        -5000i64..5000,
    )
}

fn arb_codec() -> impl Strategy<Value = CompressionType> {
    (0u8..5).prop_map(|id| CompressionType::from_id(id).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn well_formed_batches_pass(records in proptest::collection::vec(arb_record(), 1..20), codec in arb_codec()) {
        let mut area = BytesMut::new();
        for (i, (key, value, headers, ts)) in records.iter().enumerate() {
            let headers: Vec<(&[u8], Option<&[u8]>)> =
                headers.iter().map(|(k, v)| (&k[..], v.as_deref())).collect();
            put_test_record(&mut area, (i as i64, *ts), key.as_deref(), value.as_deref(), &headers);
        }
        let template = header_of(&build_batch(&[(None, None, NOW_MS)]));
        let max = records.iter().map(|r| NOW_MS + r.3).max().unwrap();
        let header = BatchHeader {
            records_count: records.len() as i32,
            last_offset_delta: records.len() as i32 - 1,
            base_timestamp: NOW_MS,
            max_timestamp: max,
            ..template
        };
        let batch = seal_batch(&header, &area, codec);
        let v = validate(&batch, &RecordsConfig::default());
        prop_assert!(v.is_ok(), "{:?}", v);
        prop_assert_eq!(v.unwrap(), batch);
    }

    #[test]
    fn damaged_records_never_panic_and_accepted_ones_walk(
        flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..6),
        cut in 0usize..400,
        codec in arb_codec(),
    ) {
        let good = build_batch(&records());
        let mut area = good[BATCH_HEADER_BYTES..].to_vec();
        for (at, value) in flips {
            let at = at % area.len();
            area[at] = value;
        }
        area.truncate(cut.max(1).min(area.len()));
        let batch = poison(&area, 3, codec);
        if let Ok(stored) = validate(&batch, &RecordsConfig::default()) {
            let header = validate_batch(&stored, MAX_MESSAGE_BYTES).unwrap();
            let plain = seal_batch(&header, &area_of(&stored), CompressionType::None);
            let times = record_times(&plain).unwrap();
            prop_assert_eq!(times.len(), 3);
            let deltas: Vec<i32> = times.iter().map(|t| t.offset_delta).collect();
            prop_assert_eq!(deltas, vec![0, 1, 2]);
        }
    }
}
