//! Idempotent producer state: duplicates within the last five batches, sequence gaps,
//! epochs, wrap-around, and restarts through a snapshot and through a log replay.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use proptest::prelude::*;
use sluice_engine::producer_state::{list_snapshots, ProducerStateManager};
use sluice_engine::testing::build_batch;
use sluice_engine::{
    AppendError, AppendOutcome, FileCache, LogConfig, PartitionLog, ProducerError, Recovery,
    TopicId,
};

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    compio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(f)
}

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        ..LogConfig::default()
    }
}

fn new_log(dir: &Path, config: LogConfig) -> PartitionLog {
    let id = TopicId(uuid::Uuid::from_u128(0x77));
    PartitionLog::create(dir, "idem", 0, id, config, Rc::new(FileCache::new(4))).unwrap()
}

fn reopen(pdir: &Path, config: LogConfig, recovery: Recovery) -> PartitionLog {
    PartitionLog::open(pdir, config, recovery, Rc::new(FileCache::new(4)))
        .unwrap()
        .0
}

/// A batch of `count` records from producer `pid`/`epoch` starting at `seq`.
fn pbatch(pid: i64, epoch: i16, seq: i32, count: usize) -> Bytes {
    let records: Vec<_> = (0..count)
        .map(|i| (None, Some(&b"value"[..]), 1000 + i as i64))
        .collect();
    let mut bytes = build_batch(&records).to_vec();
    bytes[43..51].copy_from_slice(&pid.to_be_bytes());
    bytes[51..53].copy_from_slice(&epoch.to_be_bytes());
    bytes[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(bytes)
}

/// What an append gave: written at (base, last), a duplicate of (base, last), or refused.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    Written(i64, i64),
    Duplicate(i64, i64),
    OutOfOrder,
    InvalidEpoch,
}

async fn append(log: &mut PartitionLog, records: Bytes) -> Got {
    match log.prepare_append(records) {
        Ok(AppendOutcome::Write(pending)) => {
            let written = pending.write().await.unwrap();
            let got = Got::Written(written.base_offset, written.last_offset);
            log.complete_append(written);
            got
        }
        Ok(AppendOutcome::Duplicate {
            base_offset,
            last_offset,
        }) => Got::Duplicate(base_offset, last_offset),
        Err(AppendError::Producer(ProducerError::OutOfOrderSequence { .. })) => Got::OutOfOrder,
        Err(AppendError::Producer(ProducerError::InvalidProducerEpoch { .. })) => Got::InvalidEpoch,
        Err(e) => panic!("unexpected append error: {e}"),
    }
}

/// Runs `(batch, expected)` cases in order against one log: the `check` helper.
fn check(log: &mut PartitionLog, cases: &[(Bytes, Got)]) {
    run(async {
        for (i, (records, expected)) in cases.iter().enumerate() {
            let end = log.log_end_offset();
            let got = append(log, records.clone()).await;
            assert_eq!(&got, expected, "case {i}");
            if !matches!(got, Got::Written(..)) {
                assert_eq!(log.log_end_offset(), end, "case {i} wrote nothing");
            }
        }
    });
}

#[test]
fn retries_of_the_last_five_batches_return_their_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), LogConfig::default());
    let mut cases: Vec<(Bytes, Got)> = (0..7)
        .map(|i| {
            (
                pbatch(7, 0, i * 3, 3),
                Got::Written(i64::from(i) * 3, i64::from(i) * 3 + 2),
            )
        })
        .collect();
    // The last five are recognised; the two before them are gone from the state.
    for i in 2..7 {
        let base = i64::from(i) * 3;
        cases.push((pbatch(7, 0, i * 3, 3), Got::Duplicate(base, base + 2)));
    }
    cases.push((pbatch(7, 0, 0, 3), Got::OutOfOrder));
    cases.push((pbatch(7, 0, 3, 3), Got::OutOfOrder));
    // Same first sequence, different length: not a duplicate, and out of order.
    cases.push((pbatch(7, 0, 18, 2), Got::OutOfOrder));
    cases.push((pbatch(7, 0, 21, 1), Got::Written(21, 21)));
    check(&mut log, &cases);
}

#[test]
fn gaps_epochs_and_unknown_producers() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), LogConfig::default());
    check(
        &mut log,
        &[
            (pbatch(1, 0, 0, 2), Got::Written(0, 1)),
            (pbatch(1, 0, 3, 1), Got::OutOfOrder), // gap: 2 expected
            (pbatch(1, 0, 1, 1), Got::OutOfOrder), // overlaps, not a retry
            (pbatch(1, 0, 2, 1), Got::Written(2, 2)),
            // A new epoch must start at 0.
            (pbatch(1, 1, 3, 1), Got::OutOfOrder),
            (pbatch(1, 1, 0, 1), Got::Written(3, 3)),
            // The old epoch is fenced, its retries too.
            (pbatch(1, 0, 3, 1), Got::InvalidEpoch),
            (pbatch(1, 0, 2, 1), Got::InvalidEpoch),
            // Unknown producers are accepted at any sequence (Kafka 2.5+).
            (pbatch(2, 0, 42, 2), Got::Written(4, 5)),
            (pbatch(2, 0, 42, 2), Got::Duplicate(4, 5)),
            // Batches without a producer id are never checked.
            (build_batch(&[(None, Some(b"x"), 1)]), Got::Written(6, 6)),
            (build_batch(&[(None, Some(b"x"), 1)]), Got::Written(7, 7)),
        ],
    );
}

#[test]
fn sequences_wrap_at_i32_max() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), LogConfig::default());
    let max = i32::MAX;
    check(
        &mut log,
        &[
            (pbatch(5, 0, max - 1, 3), Got::Written(0, 2)), // sequences MAX-1, MAX, 0
            (pbatch(5, 0, max - 1, 3), Got::Duplicate(0, 2)),
            (pbatch(5, 0, 0, 1), Got::OutOfOrder),
            (pbatch(5, 0, 1, 2), Got::Written(3, 4)),
            (pbatch(5, 0, max, 1), Got::OutOfOrder),
        ],
    );
}

#[test]
fn several_batches_in_one_append_check_against_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), LogConfig::default());
    let two = |a: Bytes, b: Bytes| Bytes::from([a.to_vec(), b.to_vec()].concat());
    check(
        &mut log,
        &[
            (
                two(pbatch(3, 0, 0, 2), pbatch(3, 0, 2, 2)),
                Got::Written(0, 3),
            ),
            (two(pbatch(3, 0, 4, 1), pbatch(3, 0, 6, 1)), Got::OutOfOrder),
            (pbatch(3, 0, 2, 2), Got::Duplicate(2, 3)),
            (pbatch(3, 0, 4, 1), Got::Written(4, 4)),
        ],
    );
}

/// Five batches of producer 9 (3 records each) then one of producer 10.
fn fill(log: &mut PartitionLog) {
    let mut cases: Vec<(Bytes, Got)> = (0..5)
        .map(|i| {
            (
                pbatch(9, 2, i * 3, 3),
                Got::Written(i64::from(i) * 3, i64::from(i) * 3 + 2),
            )
        })
        .collect();
    cases.push((pbatch(10, 0, 0, 1), Got::Written(15, 15)));
    check(log, &cases);
}

/// After a restart every retained batch is still a duplicate and the sequence continues.
fn check_after_restart(log: &mut PartitionLog) {
    let mut cases: Vec<(Bytes, Got)> = (0..5)
        .map(|i| {
            (
                pbatch(9, 2, i * 3, 3),
                Got::Duplicate(i64::from(i) * 3, i64::from(i) * 3 + 2),
            )
        })
        .collect();
    cases.push((pbatch(10, 0, 0, 1), Got::Duplicate(15, 15)));
    cases.push((pbatch(9, 1, 15, 1), Got::InvalidEpoch));
    cases.push((pbatch(9, 2, 16, 1), Got::OutOfOrder));
    cases.push((pbatch(9, 2, 15, 1), Got::Written(16, 16)));
    check(log, &cases);
}

fn pdir(dir: &Path) -> PathBuf {
    dir.join("idem-0")
}

#[test]
fn state_survives_a_clean_restart_through_the_close_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), LogConfig::default());
    fill(&mut log);
    log.close().unwrap();
    assert_eq!(list_snapshots(&pdir(dir.path())).unwrap(), vec![16]);
    let mut log = reopen(&pdir(dir.path()), LogConfig::default(), Recovery::Clean);
    assert_eq!(log.producer_state().map_end_offset(), 16);
    check_after_restart(&mut log);
}

#[test]
fn state_survives_a_crash_through_replay() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), LogConfig::default());
    fill(&mut log);
    drop(log); // a crash: no close, no snapshot
    assert!(list_snapshots(&pdir(dir.path())).unwrap().is_empty());
    let mut log = reopen(
        &pdir(dir.path()),
        LogConfig::default(),
        Recovery::Full { recovery_point: 0 },
    );
    check_after_restart(&mut log);
}

#[test]
fn roll_snapshots_plus_replay_after_them() {
    let dir = tempfile::tempdir().unwrap();
    // Each batch is ~80 bytes: segments of 200 bytes roll every two batches.
    let mut log = new_log(dir.path(), config(200));
    fill(&mut log);
    assert!(log.segment_count() >= 3);
    let snapshots = list_snapshots(&pdir(dir.path())).unwrap();
    assert!(
        !snapshots.is_empty() && snapshots.len() <= 3,
        "{snapshots:?}"
    );
    drop(log);
    let mut log = reopen(
        &pdir(dir.path()),
        config(200),
        Recovery::Full { recovery_point: 0 },
    );
    check_after_restart(&mut log);
}

#[test]
fn snapshots_past_a_truncated_tail_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), LogConfig::default());
    fill(&mut log);
    log.close().unwrap();
    // Tear the last batch (producer 10's): recovery cuts it, so the snapshot at 16 lies.
    let segment = pdir(dir.path()).join("00000000000000000000.log");
    let len = std::fs::metadata(&segment).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(len - 5).unwrap();
    let mut log = reopen(
        &pdir(dir.path()),
        LogConfig::default(),
        Recovery::Full { recovery_point: 0 },
    );
    assert_eq!(log.log_end_offset(), 15);
    assert!(list_snapshots(&pdir(dir.path())).unwrap().is_empty());
    check(
        &mut log,
        &[
            (pbatch(9, 2, 12, 3), Got::Duplicate(12, 14)),
            // Producer 10's batch was lost with the tail: its retry is written again.
            (pbatch(10, 0, 0, 1), Got::Written(15, 15)),
        ],
    );
}

#[test]
fn a_damaged_snapshot_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), LogConfig::default());
    fill(&mut log);
    log.close().unwrap();
    let path = pdir(dir.path()).join("00000000000000000016.snapshot");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let mut log = reopen(&pdir(dir.path()), LogConfig::default(), Recovery::Clean);
    check_after_restart(&mut log);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any run of appends where each step either sends the next batch or retries one of the
    /// last five: retries answer with the original offsets, the log holds every batch once,
    /// and a snapshot of the state decodes to the same answers.
    #[test]
    fn retries_never_write_twice(steps in prop::collection::vec((any::<bool>(), 0usize..5, 1usize..4), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = new_log(dir.path(), LogConfig::default());
        let mut sent: Vec<(i32, usize, i64)> = Vec::new(); // (first seq, count, base offset)
        let mut next_seq = 0i32;
        run(async {
            for (retry, back, count) in steps {
                if retry && !sent.is_empty() {
                    let (seq, n, base) = sent[sent.len() - 1 - back.min(sent.len() - 1)];
                    let got = append(&mut log, pbatch(4, 0, seq, n)).await;
                    prop_assert_eq!(got, Got::Duplicate(base, base + n as i64 - 1));
                } else {
                    let got = append(&mut log, pbatch(4, 0, next_seq, count)).await;
                    let base = log.log_end_offset() - count as i64;
                    prop_assert_eq!(got, Got::Written(base, base + count as i64 - 1));
                    sent.push((next_seq, count, base));
                    next_seq += count as i32;
                }
            }
            Ok(())
        })?;
        prop_assert_eq!(log.log_end_offset(), i64::from(next_seq));
        let state = log.producer_state();
        let decoded = ProducerStateManager::decode_snapshot(
            dir.path(), state.map_end_offset(), &state.encode_snapshot()).unwrap();
        prop_assert_eq!(decoded.producer(4), state.producer(4));
    }
}
