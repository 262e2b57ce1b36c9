use super::*;
use proptest::prelude::*;

fn build(records: &[Record<'_>], base_timestamp_ms: i64) -> Bytes {
    let mut builder = RecordBatchBuilder::new(base_timestamp_ms);
    for record in records {
        let before = builder.size_bytes();
        let expected = builder.record_size_bytes(record);
        builder.push(record);
        assert_eq!(builder.size_bytes() - before, expected);
    }
    builder.finish()
}

/// Builds a batch from `records`, reads it back and checks every field.
fn check(records: &[Record<'_>], base_timestamp_ms: i64) {
    let bytes = build(records, base_timestamp_ms);
    let mut batches = Batches::new(&bytes);
    let (header, batch) = batches.next().expect("one batch").expect("valid batch");
    assert!(batches.next().is_none());
    assert_eq!(batches.trailing_bytes(), 0);
    assert_eq!(header.size_bytes, bytes.len());
    assert_eq!(header.record_count as usize, records.len());
    assert_eq!(header.next_offset(), records.len() as i64);
    let decoded = decode_records(&header, batch).expect("records decode");
    let payload: u64 = records
        .iter()
        .map(|r| (r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len)) as u64)
        .sum();
    let all = records.len() as u64;
    assert_eq!(payload_sizes(&header, batch, u64::MAX), Ok((all, payload)));
    assert_eq!(payload_sizes(&header, batch, 0), Ok((0, 0)));
    for (offset, (record, got)) in records.iter().zip(&decoded).enumerate() {
        assert_eq!(got.offset, offset as i64);
        assert_eq!(got.timestamp_ms, record.timestamp_ms);
        assert_eq!(got.key.as_deref(), record.key);
        assert_eq!(got.value.as_deref(), record.value);
        let headers: Vec<(&str, Option<&[u8]>)> = got
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        assert_eq!(headers, record.headers);
    }
}

#[test]
fn round_trips() {
    let headers: &[(&str, Option<&[u8]>)] = &[("h", Some(b"v")), ("null", None)];
    check(
        &[Record {
            value: Some(b"x"),
            ..Record::default()
        }],
        0,
    );
    check(
        &[
            Record {
                key: Some(b"k"),
                value: Some(b"v"),
                headers,
                timestamp_ms: 1_700_000_000_000,
            },
            Record {
                key: None,
                value: None,
                headers: &[],
                timestamp_ms: 1_699_999_999_000,
            },
            Record {
                value: Some(&[7; 300]),
                timestamp_ms: 1_700_000_000_005,
                ..Record::default()
            },
        ],
        1_700_000_000_000,
    );
}

#[test]
fn header_fields_match_kafka_layout() {
    let bytes = build(
        &[Record {
            value: Some(b"abc"),
            timestamp_ms: 5,
            ..Record::default()
        }],
        5,
    );
    // One record: length 1 + attributes 1 + ts delta 1 + offset delta 1 + key 1 +
    // value 1+3 + headers 1 = 10 bytes after the 61-byte header.
    assert_eq!(bytes.len(), 61 + 10);
    assert_eq!(&bytes[8..12], &(71i32 - 12).to_be_bytes());
    assert_eq!(bytes[16], 2);
    assert_eq!(&bytes[43..51], &(-1i64).to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    assert_eq!(&bytes[17..21], &crc.to_be_bytes());
}

#[test]
fn compressed_batches_carry_the_codec_and_the_callers_bytes() {
    let mut builder = RecordBatchBuilder::new(0);
    builder.push(&Record {
        value: Some(b"value"),
        ..Record::default()
    });
    let plain = {
        let mut copy = RecordBatchBuilder::new(0);
        copy.push(&Record {
            value: Some(b"value"),
            ..Record::default()
        });
        copy.finish()
    };
    // A stand-in codec: the records reversed (the client only frames what it is given).
    builder
        .compress_records(4, |input, out| {
            out.extend(input.iter().rev());
            Ok(())
        })
        .unwrap();
    let bytes = builder.finish();
    assert_eq!(
        &bytes[21..23],
        &4i16.to_be_bytes(),
        "zstd in the attributes"
    );
    let reversed: Vec<u8> = plain[61..].iter().rev().copied().collect();
    assert_eq!(&bytes[61..], reversed.as_slice());
    assert_eq!(&bytes[8..12], &(bytes.len() as i32 - 12).to_be_bytes());
    assert_eq!(&bytes[17..21], &crc32c::crc32c(&bytes[21..]).to_be_bytes());
    let (header, _) = Batches::new(&bytes).next().unwrap().unwrap();
    assert_eq!((header.record_count, header.attributes), (1, 4));
}

#[test]
fn idempotent_batches_carry_producer_id_epoch_and_sequence() {
    let mut builder = RecordBatchBuilder::new(0);
    for _ in 0..3 {
        builder.push(&Record {
            value: Some(b"v"),
            ..Record::default()
        });
    }
    let producer = ProducerIdentity {
        producer_id: 4242,
        producer_epoch: 3,
    };
    let bytes = builder.finish_idempotent(producer, 17);
    assert_eq!(&bytes[43..51], &4242i64.to_be_bytes());
    assert_eq!(&bytes[51..53], &3i16.to_be_bytes());
    assert_eq!(&bytes[53..57], &17i32.to_be_bytes());
    assert_eq!(&bytes[17..21], &crc32c::crc32c(&bytes[21..]).to_be_bytes());
    let (header, _) = Batches::new(&bytes).next().unwrap().unwrap();
    assert_eq!(header.record_count, 3);
}

#[test]
fn summary_skips_partial_trailing_batch() {
    let one = build(
        &[Record {
            value: Some(b"a"),
            ..Record::default()
        }; 3],
        0,
    );
    let two = build(
        &[Record {
            value: Some(b"b"),
            ..Record::default()
        }; 2],
        0,
    );
    let mut wire = one.to_vec();
    wire.extend_from_slice(&two);
    // Second batch's base offset as a broker would assign it.
    wire[one.len()..one.len() + 8].copy_from_slice(&3i64.to_be_bytes());
    for cut in [0, 1, 30, two.len() - 1] {
        let bytes = &wire[..one.len() + cut];
        let summary = summarize(bytes).unwrap();
        assert_eq!(summary.batch_count, 1, "cut {cut}");
        assert_eq!(summary.record_count, 3);
        assert_eq!(summary.size_bytes, one.len());
        assert_eq!(summary.next_offset, Some(3));
        assert_eq!(summary.trailing_bytes, cut);
    }
    let whole = summarize(&wire).unwrap();
    assert_eq!((whole.batch_count, whole.record_count), (2, 5));
    assert_eq!(whole.next_offset, Some(5));
}

#[test]
fn detects_corruption() {
    let bytes = build(
        &[Record {
            value: Some(b"abc"),
            ..Record::default()
        }],
        0,
    );
    let mut corrupt = bytes.to_vec();
    *corrupt.last_mut().unwrap() ^= 1;
    assert!(matches!(summarize(&corrupt), Err(BatchError::Crc { .. })));
    let mut magic = bytes.to_vec();
    magic[16] = 1;
    assert!(matches!(
        summarize(&magic),
        Err(BatchError::UnsupportedMagic { magic: 1, .. })
    ));
    let mut length = bytes.to_vec();
    length[8..12].copy_from_slice(&3i32.to_be_bytes());
    assert!(matches!(
        summarize(&length),
        Err(BatchError::BadLength { .. })
    ));
}

#[test]
fn varints_match_protobuf_zigzag() {
    let cases: &[(i64, &[u8])] = &[
        (0, &[0]),
        (-1, &[1]),
        (1, &[2]),
        (63, &[0x7e]),
        (-64, &[0x7f]),
        (64, &[0x80, 0x01]),
        (300, &[0xd8, 0x04]),
    ];
    for (value, wire) in cases {
        let mut buf = Vec::new();
        put_varint(&mut buf, *value);
        assert_eq!(&buf[..], *wire, "{value}");
        assert_eq!(varint_bytes(*value), wire.len());
        let mut reader = *wire;
        assert_eq!(get_varint(&mut reader), Some(*value));
        assert!(reader.is_empty());
    }
    assert_eq!(get_varint(&mut &[0x80u8][..]), None);
}

proptest! {
    #[test]
    fn varint_round_trips(value in any::<i64>()) {
        let mut buf = Vec::new();
        put_varint(&mut buf, value);
        prop_assert_eq!(buf.len(), varint_bytes(value));
        prop_assert_eq!(get_varint(&mut &buf[..]), Some(value));
    }

    #[test]
    fn batches_round_trip(
        records in proptest::collection::vec(
            (
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..400)),
                -100_000i64..100_000,
            ),
            1..20,
        ),
    ) {
        let records: Vec<Record<'_>> = records
            .iter()
            .map(|(key, value, delta)| Record {
                key: key.as_deref(),
                value: value.as_deref(),
                headers: &[],
                timestamp_ms: 1_700_000_000_000 + delta,
            })
            .collect();
        check(&records, 1_700_000_000_000);
    }

    #[test]
    fn summarize_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = summarize(&bytes);
    }
}
