//! Batch validation: built batches pass; each kind of damage is named; arbitrary bytes never panic.

use proptest::prelude::*;
use sluice_engine::batch::{validate_batch, validate_batches, BatchErrorKind, BATCH_CRC_START};
use sluice_engine::testing::build_batch;

const MAX_MESSAGE_BYTES: u32 = 1_048_588;

fn sample() -> Vec<u8> {
    build_batch(&[
        (Some(b"k1"), Some(b"v1"), 1000),
        (None, Some(b"value two"), 1005),
        (Some(b"k3"), None, 999),
    ])
    .to_vec()
}

/// Recomputes the CRC so that a test can damage a field behind it.
fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[BATCH_CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn check(batch: &[u8], expect: Result<(), BatchErrorKind>) {
    let got = validate_batches(batch, MAX_MESSAGE_BYTES)
        .map(|_| ())
        .map_err(|e| e.kind);
    assert_eq!(
        got,
        expect,
        "{:?}",
        validate_batches(batch, MAX_MESSAGE_BYTES)
    );
}

fn with(edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut batch = sample();
    edit(&mut batch);
    batch
}

#[test]
fn accepts_built_batches() {
    let batch = sample();
    let header = validate_batch(&batch, MAX_MESSAGE_BYTES).unwrap();
    assert_eq!(header.records_count, 3);
    assert_eq!(header.last_offset_delta, 2);
    assert_eq!(header.base_timestamp, 1000);
    assert_eq!(header.max_timestamp, 1005);
    assert_eq!(header.total_bytes(), batch.len());
    let times = sluice_engine::batch::record_times(&batch).unwrap();
    let ts: Vec<_> = times
        .iter()
        .map(|t| (t.offset_delta, t.timestamp))
        .collect();
    assert_eq!(ts, [(0, 1000), (1, 1005), (2, 999)]);
    let two: Vec<u8> = [sample(), sample()].concat();
    assert_eq!(validate_batches(&two, MAX_MESSAGE_BYTES).unwrap().len(), 2);
}

#[test]
fn rejects_damage() {
    let len = sample().len();
    check(&with(|b| b[len - 1] ^= 0x01), Err(BatchErrorKind::Corrupt)); // flipped record byte
    check(&with(|b| b[18] ^= 0x40), Err(BatchErrorKind::Corrupt)); // flipped CRC byte
    check(&with(|b| b[16] = 1), Err(BatchErrorKind::UnsupportedMagic));
    check(&with(|b| b[16] = 3), Err(BatchErrorKind::UnsupportedMagic));
    check(
        &with(|b| {
            b[60] = 4;
            fix_crc(b)
        }),
        Err(BatchErrorKind::InvalidRecord),
    ); // count 4 vs delta 2
    check(
        &with(|b| {
            b[57..61].copy_from_slice(&0i32.to_be_bytes());
            b[23..27].copy_from_slice(&(-1i32).to_be_bytes());
            fix_crc(b)
        }),
        Err(BatchErrorKind::InvalidRecord),
    );
    check(&with(|b| b.truncate(len - 1)), Err(BatchErrorKind::Corrupt));
    check(&with(|b| b.truncate(30)), Err(BatchErrorKind::Corrupt));
    check(&with(|b| b.truncate(0)), Err(BatchErrorKind::Corrupt));
    check(
        &with(|b| b[8..12].copy_from_slice(&((len as i32) + 100).to_be_bytes())),
        Err(BatchErrorKind::Corrupt),
    );
    check(
        &with(|b| b[8..12].copy_from_slice(&10i32.to_be_bytes())),
        Err(BatchErrorKind::Corrupt),
    );
    check(
        &with(|b| b[8..12].copy_from_slice(&(-5i32).to_be_bytes())),
        Err(BatchErrorKind::Corrupt),
    );
    check(
        &with(|b| b.extend_from_slice(&[0; 11])),
        Err(BatchErrorKind::Corrupt),
    ); // trailing partial
    check(
        &with(|b| {
            let s = sample();
            b.extend_from_slice(&s[..s.len() - 3])
        }),
        Err(BatchErrorKind::Corrupt),
    );
}

#[test]
fn rejects_inconsistent_producers_transactions_and_control() {
    let set_producer = |b: &mut Vec<u8>, id: i64, epoch: i16, seq: i32| {
        b[43..51].copy_from_slice(&id.to_be_bytes());
        b[51..53].copy_from_slice(&epoch.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        fix_crc(b);
    };
    check(&with(|b| set_producer(b, 7, 0, 0)), Ok(()));
    check(
        &with(|b| set_producer(b, -1, 0, -1)),
        Err(BatchErrorKind::InvalidRecord),
    );
    check(
        &with(|b| set_producer(b, -1, -1, 5)),
        Err(BatchErrorKind::InvalidRecord),
    );
    check(
        &with(|b| set_producer(b, 7, -1, 0)),
        Err(BatchErrorKind::InvalidRecord),
    );
    check(
        &with(|b| set_producer(b, 7, 0, -1)),
        Err(BatchErrorKind::InvalidRecord),
    );
    check(
        &with(|b| set_producer(b, -2, -1, -1)),
        Err(BatchErrorKind::InvalidRecord),
    );
    check(
        &with(|b| {
            b[22] |= 0x10;
            fix_crc(b)
        }),
        Err(BatchErrorKind::InvalidRecord),
    ); // transactional
    check(
        &with(|b| {
            b[22] |= 0x20;
            fix_crc(b)
        }),
        Err(BatchErrorKind::InvalidRecord),
    ); // control
    check(
        &with(|b| {
            b[22] |= 0x05;
            fix_crc(b)
        }),
        Err(BatchErrorKind::Corrupt),
    ); // codec 5
    check(
        &with(|b| {
            b[22] |= 0x04;
            fix_crc(b)
        }),
        Ok(()),
    ); // codec 4 (zstd) is not decompressed
}

#[test]
fn rejects_too_large() {
    let batch = sample();
    let got = validate_batch(&batch, batch.len() as u32 - 1).unwrap_err();
    assert_eq!(got.kind, BatchErrorKind::TooLarge);
    assert!(validate_batch(&batch, batch.len() as u32).is_ok());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = validate_batches(&bytes, MAX_MESSAGE_BYTES);
    }

    #[test]
    fn damaged_batches_never_panic(flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..4), cut in 0usize..200) {
        let mut batch = [sample(), sample()].concat();
        for (at, value) in flips {
            let at = at % batch.len();
            batch[at] = value;
        }
        batch.truncate(cut.max(1).min(batch.len()));
        let _ = validate_batches(&batch, MAX_MESSAGE_BYTES);
        if let Ok(headers) = validate_batches(&batch, MAX_MESSAGE_BYTES) {
            let total: usize = headers.iter().map(|h| h.total_bytes()).sum();
            prop_assert_eq!(total, batch.len());
        }
    }
}
