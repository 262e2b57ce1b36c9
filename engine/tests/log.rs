//! PartitionLog: append/read round trips, rolling, ListOffsets, restart and recovery.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use proptest::prelude::*;
use sluice_engine::batch::BatchHeader;
use sluice_engine::testing::build_batch;
use sluice_engine::{
    AppendError, FetchIsolation, FileCache, FirstBatch, LeaderEpoch, LogConfig, PartitionLog,
    ReadError, Recovery, TopicId,
};

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    compio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(f)
}

fn tiny_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 100,
        segment_index_bytes: 96,
        ..LogConfig::default()
    }
}

fn files() -> Rc<FileCache> {
    Rc::new(FileCache::new(4))
}

fn new_log(dir: &Path, config: LogConfig) -> PartitionLog {
    let id = TopicId(uuid::Uuid::from_u128(0x1234));
    PartitionLog::create(dir, "orders", 3, id, config, files()).unwrap()
}

/// A batch of `count` records with values of `value_bytes`, timestamps from `ts`.
fn batch(count: usize, value_bytes: usize, ts: i64) -> Bytes {
    let value = vec![b'v'; value_bytes];
    let records: Vec<_> = (0..count)
        .map(|i| (Some(&b"key"[..]), Some(&value[..]), ts + i as i64))
        .collect();
    build_batch(&records)
}

async fn append(log: &mut PartitionLog, records: Bytes) -> (i64, i64) {
    log.become_leader(LeaderEpoch(5)).unwrap();
    let pending = log.prepare_append(records).unwrap().into_pending();
    let written = pending.write().await.unwrap();
    let range = (written.base_offset, written.last_offset);
    log.complete_append(written);
    range
}

/// Every offset reads back from the batch holding it, with the bytes we appended (offsets
/// and leader epoch rewritten).
async fn check_reads(log: &mut PartitionLog, appended: &[(i64, Bytes)]) {
    for (base, original) in appended {
        let header = BatchHeader::parse(original).unwrap();
        for offset in *base..=*base + i64::from(header.last_offset_delta) {
            let slice = log
                .read(offset, 1, FirstBatch::Whole, FetchIsolation::HighWatermark)
                .unwrap()
                .expect("data");
            let bytes = slice.read_to_bytes().await.unwrap();
            assert_eq!(bytes.len(), original.len(), "offset {offset}");
            let got = BatchHeader::parse(&bytes).unwrap();
            assert_eq!(got.base_offset, *base, "offset {offset}");
            assert_eq!(got.partition_leader_epoch, 5);
            assert_eq!(&bytes[16..], &original[16..]);
            sluice_engine::validate_batch(&bytes, u32::MAX).unwrap();
        }
    }
    for (index, (base, original)) in appended.iter().enumerate() {
        for max_bytes in [original.len() as u32 + 100, 1 << 20] {
            let slice = log
                .read(
                    *base,
                    max_bytes,
                    FirstBatch::WithinLimit,
                    FetchIsolation::HighWatermark,
                )
                .unwrap()
                .expect("data");
            assert!(slice.len <= max_bytes);
            let bytes = slice.read_to_bytes().await.unwrap();
            let headers = sluice_engine::validate_batches(&bytes, u32::MAX).unwrap();
            for (k, header) in headers.iter().enumerate() {
                assert_eq!(header.base_offset, appended[index + k].0);
            }
        }
    }
    let end = log.log_end_offset();
    assert!(log
        .read(
            end,
            1 << 20,
            FirstBatch::Whole,
            FetchIsolation::HighWatermark
        )
        .unwrap()
        .is_none());
    assert!(matches!(
        log.read(
            end + 1,
            100,
            FirstBatch::Whole,
            FetchIsolation::HighWatermark
        ),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
}

/// `create_with` writes the caller's files before the directory appears under its name; a
/// second creation of the same partition fails without touching the first.
#[test]
fn create_with_builds_the_directory_before_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let id = TopicId(uuid::Uuid::from_u128(7));
    let extra = |staging: &Path| {
        let name = staging.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.ends_with("-create") && name.len() == 23, "{name}");
        assert!(
            !staging.with_file_name("orders-3").exists(),
            "not visible yet"
        );
        std::fs::write(staging.join("topic.config"), b"retention.ms=5\n")
    };
    let log = PartitionLog::create_with(
        dir.path(),
        ("orders", 3),
        id,
        LogConfig::default(),
        files(),
        &extra,
    )
    .unwrap();
    let pdir = dir.path().join("orders-3");
    assert_eq!(log.dir(), pdir);
    assert_eq!(
        std::fs::read(pdir.join("topic.config")).unwrap(),
        b"retention.ms=5\n"
    );
    assert!(pdir.join("partition.metadata").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with("-create"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let again = PartitionLog::create(dir.path(), "orders", 3, id, LogConfig::default(), files());
    let Err(err) = again else {
        panic!("a second creation of orders-3 succeeded");
    };
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
    assert!(
        pdir.join("topic.config").exists(),
        "the first one is untouched"
    );
    log.close().unwrap();
}

/// The longest legal topic name (249 bytes) still gets its partitions.
#[test]
fn the_longest_topic_names_can_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let topic = "t".repeat(249);
    let id = TopicId(uuid::Uuid::from_u128(8));
    for partition in [0, 99] {
        let log = PartitionLog::create(
            dir.path(),
            &topic,
            partition,
            id,
            LogConfig::default(),
            files(),
        )
        .unwrap();
        log.close().unwrap();
    }
}

#[test]
fn create_writes_kafka_layout() {
    let dir = tempfile::tempdir().unwrap();
    let log = new_log(dir.path(), LogConfig::default());
    let pdir = dir.path().join("orders-3");
    assert_eq!(log.dir(), pdir);
    let metadata = std::fs::read_to_string(pdir.join("partition.metadata")).unwrap();
    assert_eq!(
        metadata,
        format!("version: 0\ntopic_id: {}\n", log.topic_id())
    );
    for suffix in ["log", "index", "timeindex"] {
        assert!(pdir.join(format!("00000000000000000000.{suffix}")).exists());
    }
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    log.close().unwrap();
    assert_eq!(
        std::fs::metadata(pdir.join("00000000000000000000.index"))
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn append_read_and_reads_respect_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = new_log(dir.path(), LogConfig::default());
        let batches: Vec<Bytes> = (0..5).map(|i| batch(3, 20, 1000 + i)).collect();
        let mut appended = Vec::new();
        for b in &batches {
            let (base, _) = append(&mut log, b.clone()).await;
            appended.push((base, b.clone()));
        }
        assert_eq!(log.log_end_offset(), 15);
        check_reads(&mut log, &appended).await;
        let one = batches[0].len() as u32;
        let check = |log: &mut PartitionLog, offset, max, first, expect: u32| {
            let slice = log
                .read(offset, max, first, FetchIsolation::HighWatermark)
                .unwrap()
                .unwrap();
            assert_eq!(slice.len, expect, "read({offset}, {max}, {first:?})");
        };
        check(&mut log, 0, one * 2 + 5, FirstBatch::Whole, one * 2);
        check(&mut log, 4, one * 10, FirstBatch::Whole, one * 4);
        check(&mut log, 4, 10, FirstBatch::Whole, one);
        check(&mut log, 4, 10, FirstBatch::WithinLimit, 0);
        check(&mut log, 14, one, FirstBatch::WithinLimit, one);
        log.close().unwrap();
    });
}

#[test]
fn pending_appends_are_invisible_until_completed() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = new_log(dir.path(), tiny_config());
        let first = log
            .prepare_append(batch(2, 150, 10))
            .unwrap()
            .into_pending();
        let second = log
            .prepare_append(batch(2, 150, 20))
            .unwrap()
            .into_pending();
        assert_eq!((first.base_offset, second.base_offset), (0, 2));
        assert_eq!(log.log_end_offset(), 0);
        assert!(log
            .read(0, 1000, FirstBatch::Whole, FetchIsolation::HighWatermark)
            .unwrap()
            .is_none());
        let (w1, w2) = (first.write().await.unwrap(), second.write().await.unwrap());
        log.complete_append(w1);
        assert_eq!(log.log_end_offset(), 2);
        let slice = log
            .read(0, 1 << 20, FirstBatch::Whole, FetchIsolation::HighWatermark)
            .unwrap()
            .unwrap();
        assert!(
            BatchHeader::parse(&slice.read_to_bytes().await.unwrap())
                .unwrap()
                .last_offset()
                == 1
        );
        log.complete_append(w2);
        assert_eq!(log.log_end_offset(), 4);
        assert_eq!(log.unflushed_messages(), 4);
        let job = log.sync_job().expect("something to sync");
        let upto = job.run().await.unwrap();
        log.mark_flushed(upto);
        assert_eq!(log.unflushed_messages(), 0);
        assert!(log.sync_job().is_none());
        log.close().unwrap();
    });
}

#[test]
fn list_offsets_by_timestamp_and_max_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = new_log(dir.path(), tiny_config());
        assert_eq!(log.max_timestamp().unwrap(), None);
        assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
        let batches = [
            build_batch(&[
                (None, Some(b"a"), 100),
                (None, Some(b"b"), 105),
                (None, Some(b"c"), 103),
            ]),
            build_batch(&[(None, Some(&[b'x'; 500][..]), 110), (None, Some(b"e"), 90)]),
            build_batch(&[(None, Some(&[b'y'; 500][..]), 108), (None, Some(b"g"), 110)]),
            build_batch(&[(None, Some(b"h"), 107)]),
        ];
        for b in batches {
            append(&mut log, b).await;
        }
        assert!(log.segment_count() > 1, "tiny segments roll");
        let check = |log: &mut PartitionLog, ts, expect| {
            assert_eq!(
                log.offset_for_timestamp(ts).unwrap(),
                expect,
                "timestamp {ts}"
            );
        };
        check(&mut log, 0, Some((0, 100)));
        check(&mut log, 100, Some((0, 100)));
        check(&mut log, 101, Some((1, 105)));
        check(&mut log, 104, Some((1, 105)));
        check(&mut log, 106, Some((3, 110)));
        check(&mut log, 110, Some((3, 110)));
        check(&mut log, 111, None);
        assert_eq!(log.max_timestamp().unwrap(), Some((3, 110)));
        log.close().unwrap();
        let (mut log, _) = PartitionLog::open(
            &dir.path().join("orders-3"),
            tiny_config(),
            Recovery::Clean,
            files(),
        )
        .unwrap();
        check(&mut log, 104, Some((1, 105)));
        check(&mut log, 107, Some((3, 110)));
        assert_eq!(log.max_timestamp().unwrap(), Some((3, 110)));
    });
}

/// Appends `sizes` batches to a fresh tiny-segment log, closes it; returns what was appended.
fn build_log(dir: &Path, sizes: &[(usize, usize)]) -> Vec<(i64, Bytes)> {
    run(async {
        let mut log = new_log(dir, tiny_config());
        let mut appended = Vec::new();
        for (i, &(count, value_bytes)) in sizes.iter().enumerate() {
            let b = batch(count, value_bytes, 1000 + i as i64);
            let (base, _) = append(&mut log, b.clone()).await;
            appended.push((base, b));
        }
        let job = log.sync_job().unwrap();
        log.mark_flushed(job.run().await.unwrap());
        log.close().unwrap();
        appended
    })
}

fn reopen(pdir: &Path, recovery: Recovery) -> (PartitionLog, sluice_engine::RecoveryReport) {
    PartitionLog::open(pdir, tiny_config(), recovery, files()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_with_rolls_and_restarts(sizes in proptest::collection::vec((1usize..6, 0usize..100), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let appended = build_log(dir.path(), &sizes);
        let pdir = dir.path().join("orders-3");
        let total: i64 = sizes.iter().map(|s| s.0 as i64).sum();
        for recovery in [Recovery::Clean, FULL] {
            run(async {
                let (mut log, report) = reopen(&pdir, recovery);
                assert_eq!(report.truncated_bytes, 0, "{report:?}");
                assert_eq!(log.log_end_offset(), total);
                check_reads(&mut log, &appended).await;
                log.close().unwrap();
            });
        }
    }
}

fn last_segment(pdir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(pdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

/// Rescan the whole log after an unclean shutdown.
const FULL: Recovery = Recovery::Full { recovery_point: 0 };

/// The log after a full recovery holds exactly `expected` batches and appends continue
/// after them. Returns the recovery's report.
fn check_recovered(
    pdir: &Path,
    appended: &[(i64, Bytes)],
    expected: usize,
) -> sluice_engine::RecoveryReport {
    run(async {
        let (mut log, report) = reopen(pdir, FULL);
        let end = appended.get(expected).map_or_else(
            || {
                let (b, bytes) = appended.last().unwrap();
                b + i64::from(BatchHeader::parse(bytes).unwrap().last_offset_delta) + 1
            },
            |(b, _)| *b,
        );
        assert_eq!(log.log_end_offset(), end, "{report:?}");
        assert_eq!(log.recovery_point(), end, "rescanned data was fdatasynced");
        check_reads(&mut log, &appended[..expected]).await;
        let (base, _) = append(&mut log, batch(2, 10, 5000)).await;
        assert_eq!(base, end);
        log.close().unwrap();
        let (log, again) = reopen(pdir, FULL);
        assert_eq!((log.log_end_offset(), again.truncated_bytes), (end + 2, 0));
        report
    })
}

#[test]
fn truncating_the_last_segment_at_every_byte_recovers_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let sizes: Vec<(usize, usize)> = (0..12).map(|i| (1 + i % 3, 10 + 7 * i)).collect();
    let appended = build_log(dir.path(), &sizes);
    let pristine = dir.path().join("orders-3");
    let last = last_segment(&pristine);
    let bytes = std::fs::read(&last).unwrap();
    let segment_base: i64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let first_in_last = appended
        .iter()
        .position(|(b, _)| *b == segment_base)
        .unwrap();
    assert!(first_in_last > 0, "the test needs several segments");
    for cut in 0..=bytes.len() {
        let work = tempfile::tempdir().unwrap();
        let pdir = work.path().join("orders-3");
        copy_dir(&pristine, &pdir);
        std::fs::write(pdir.join(last.file_name().unwrap()), &bytes[..cut]).unwrap();
        let mut whole = first_in_last;
        let mut at = 0;
        while whole < appended.len() && at + appended[whole].1.len() <= cut {
            at += appended[whole].1.len();
            whole += 1;
        }
        check_recovered(&pdir, &appended, whole);
    }
}

#[test]
fn a_flipped_byte_truncates_at_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let sizes: Vec<(usize, usize)> = (0..12).map(|i| (1 + i % 3, 10 + 7 * i)).collect();
    let appended = build_log(dir.path(), &sizes);
    let pristine = dir.path().join("orders-3");
    let last = last_segment(&pristine);
    let bytes = std::fs::read(&last).unwrap();
    let segment_base: i64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let first_in_last = appended
        .iter()
        .position(|(b, _)| *b == segment_base)
        .unwrap();
    let mut at = 0;
    for (index, (_, batch)) in appended.iter().enumerate().skip(first_in_last) {
        for flip in [at + 8 + 4 + 4 + 1 + 2, at + batch.len() - 1, at + 30] {
            let work = tempfile::tempdir().unwrap();
            let pdir = work.path().join("orders-3");
            copy_dir(&pristine, &pdir);
            let mut damaged = bytes.clone();
            damaged[flip] ^= 0x10;
            std::fs::write(pdir.join(last.file_name().unwrap()), &damaged).unwrap();
            check_recovered(&pdir, &appended, index);
        }
        at += batch.len();
    }
}

#[test]
fn a_clean_open_of_a_torn_tail_falls_back_to_a_rescan() {
    let dir = tempfile::tempdir().unwrap();
    let sizes: Vec<(usize, usize)> = (0..12).map(|i| (1 + i % 3, 10 + 7 * i)).collect();
    let appended = build_log(dir.path(), &sizes);
    let pdir = dir.path().join("orders-3");
    let last = last_segment(&pdir);
    let bytes = std::fs::read(&last).unwrap();
    let (final_base, final_batch) = appended.last().unwrap();
    std::fs::write(&last, &bytes[..bytes.len() - final_batch.len() / 2]).unwrap();
    let (log, report) = reopen(&pdir, Recovery::Clean);
    assert_eq!(log.log_end_offset(), *final_base);
    assert_eq!(report.truncated_to_offset, Some(*final_base));
    assert_eq!(
        report.truncated_bytes as usize,
        final_batch.len() - final_batch.len() / 2
    );
}

#[test]
fn clean_and_full_restarts_agree() {
    let dir = tempfile::tempdir().unwrap();
    let sizes: Vec<(usize, usize)> = (0..40).map(|i| (1 + i % 4, 3 * i % 50)).collect();
    let appended = build_log(dir.path(), &sizes);
    let pdir = dir.path().join("orders-3");
    let (clean, _) = reopen(&pdir, Recovery::Clean);
    let clean_end = clean.log_end_offset();
    clean.close().unwrap();
    let (full, report) = reopen(&pdir, FULL);
    assert_eq!(full.log_end_offset(), clean_end);
    assert_eq!(report.truncated_bytes, 0);
    assert!(report.scanned_bytes > 0);
    assert_eq!(
        clean_end,
        appended
            .iter()
            .map(|(_, b)| i64::from(BatchHeader::parse(b).unwrap().records_count))
            .sum::<i64>()
    );
    full.delete().unwrap();
    assert!(!pdir.exists());
}

#[test]
fn rejected_appends_reserve_nothing() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = new_log(dir.path(), LogConfig::default());
        let mut bad = [batch(2, 5, 1).to_vec(), batch(1, 5, 1).to_vec()].concat();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(log.prepare_append(Bytes::from(bad)).is_err());
        assert_eq!(log.next_offset(), 0);
        assert_eq!(append(&mut log, batch(2, 5, 1)).await, (0, 1));
        log.fail_append(&std::io::Error::other("disk on fire"));
        assert!(matches!(
            log.prepare_append(batch(1, 1, 1)),
            Err(sluice_engine::AppendError::Offline)
        ));
        assert!(matches!(
            log.read(0, 100, FirstBatch::Whole, FetchIsolation::HighWatermark),
            Err(ReadError::Io(_))
        ));
    });
}

#[test]
fn a_full_index_rolls_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    // Room for 3 offset index entries and 2 time index entries; an entry per batch.
    let config = LogConfig {
        index_interval_bytes: 0,
        segment_index_bytes: 24,
        ..LogConfig::default()
    };
    run(async {
        let mut log = new_log(dir.path(), config);
        let mut appended = Vec::new();
        for i in 0..12 {
            let b = batch(2, 30, 1000 + 10 * i);
            let (base, _) = append(&mut log, b.clone()).await;
            appended.push((base, b));
        }
        assert!(log.segment_count() >= 4, "{log:?}");
        check_reads(&mut log, &appended).await;
        assert_eq!(log.offset_for_timestamp(1055).unwrap(), Some((12, 1060)));
        let job = log.sync_job().unwrap();
        log.mark_flushed(job.run().await.unwrap());
        assert!(log.sync_job().is_none());
        log.close().unwrap();
        let (mut log, _) = PartitionLog::open(
            &dir.path().join("orders-3"),
            config,
            Recovery::Clean,
            files(),
        )
        .unwrap();
        assert_eq!(log.log_end_offset(), 24);
        check_reads(&mut log, &appended).await;
    });
}

#[test]
fn an_append_larger_than_a_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), tiny_config());
    let err = log.prepare_append(batch(1, 2000, 1)).unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::LargerThanSegment {
                segment_bytes: 1024,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(log.next_offset(), 0, "nothing reserved");
}

/// Where a batch landed: its index in the appended list and its byte position.
type Placed = (usize, u64);

/// A segment file of a closed log and the batches in it, in order.
struct SegmentLayout {
    path: PathBuf,
    batches: Vec<Placed>,
}

impl SegmentLayout {
    fn len_bytes(&self) -> u64 {
        std::fs::metadata(&self.path).unwrap().len()
    }
}

/// A closed tiny-segment log of 15 two-record batches, about three per segment, with
/// the layout of its segments. The partition dir is `<dir>/orders-3`.
fn segmented_log(dir: &Path) -> (Vec<(i64, Bytes)>, Vec<SegmentLayout>) {
    let appended = build_log(dir, &[(2, 120); 15]);
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.join("orders-3"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    let bases: Vec<i64> = logs
        .iter()
        .map(|p| p.file_stem().unwrap().to_str().unwrap().parse().unwrap())
        .collect();
    let layout: Vec<SegmentLayout> = logs
        .into_iter()
        .enumerate()
        .map(|(k, path)| {
            let in_segment =
                |base: i64| base >= bases[k] && bases.get(k + 1).is_none_or(|&n| base < n);
            let mut position = 0;
            let mut batches = Vec::new();
            for (index, (base, bytes)) in appended.iter().enumerate() {
                if in_segment(*base) {
                    batches.push((index, position));
                    position += bytes.len() as u64;
                }
            }
            SegmentLayout { path, batches }
        })
        .collect();
    assert!(layout.len() >= 4, "the tests need 4+ segments");
    assert!(
        layout.iter().all(|s| s.batches.len() >= 2),
        "2+ batches a segment"
    );
    (appended, layout)
}

fn flip_byte(path: &Path, position: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[position as usize] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

/// The `.log`, `.index` and `.timeindex` files of a partition dir, sorted.
fn segment_file_names(pdir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| {
            [".log", ".index", ".timeindex"]
                .iter()
                .any(|s| n.ends_with(s))
        })
        .collect();
    names.sort();
    names
}

/// The segment files of the first `count` segments of `layout`.
fn first_segment_files(layout: &[SegmentLayout], count: usize) -> Vec<String> {
    let mut names: Vec<String> = layout[..count]
        .iter()
        .flat_map(|s| {
            let stem = s.path.file_stem().unwrap().to_str().unwrap().to_owned();
            ["log", "index", "timeindex"].map(|suffix| format!("{stem}.{suffix}"))
        })
        .collect();
    names.sort();
    names
}

/// Bytes of the segment files from `from` on.
fn bytes_from(layout: &[SegmentLayout], from: usize) -> u64 {
    layout[from..].iter().map(SegmentLayout::len_bytes).sum()
}

#[test]
fn a_corrupt_batch_in_an_earlier_segment_cuts_the_log_and_deletes_what_follows() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = dir.path().join("orders-3");
    let (appended, layout) = segmented_log(dir.path());
    let (bad, position) = layout[1].batches[1];
    let expected_truncated = layout[1].len_bytes() - position + bytes_from(&layout, 2);
    flip_byte(&layout[1].path, position + 30);
    let report = check_recovered(&pdir, &appended, bad);
    assert_eq!(report.rescanned_segments, 2, "{report:?}");
    assert_eq!(report.deleted_segments, layout.len() - 2);
    assert_eq!(report.segments, 2);
    assert_eq!(report.truncated_bytes, expected_truncated);
    assert_eq!(report.truncated_to_offset, Some(appended[bad].0));
    let reason = report.reason.unwrap();
    assert!(
        reason.contains(layout[1].path.to_str().unwrap()),
        "{reason}"
    );
    assert_eq!(segment_file_names(&pdir), first_segment_files(&layout, 2));
}

#[test]
fn segments_below_the_recovery_points_segment_are_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("orders-3");
    let (appended, layout) = segmented_log(dir.path());
    let (bad, position) = layout[1].batches[1];
    flip_byte(&layout[1].path, position + 30);
    let total = build_total(&appended);
    let base = |segment: usize| appended[layout[segment].batches[0].0].0;
    let check = |recovery_point: i64, detected: bool| {
        let work = tempfile::tempdir().unwrap();
        let pdir = work.path().join("orders-3");
        copy_dir(&pristine, &pdir);
        let (log, report) = reopen(&pdir, Recovery::Full { recovery_point });
        let (end, segments) = match detected {
            true => (appended[bad].0, 2),
            false => (total, layout.len()),
        };
        let context = format!("recovery point {recovery_point}: {report:?}");
        assert_eq!(log.log_end_offset(), end, "{context}");
        assert_eq!(log.segment_count(), segments, "{context}");
        assert_eq!(log.recovery_point(), end, "{context}");
        assert_eq!(report.truncated_to_offset.is_some(), detected, "{context}");
        let rescanned_from = layout
            .iter()
            .rposition(|s| appended[s.batches[0].0].0 <= recovery_point)
            .unwrap_or(0);
        assert_eq!(
            report.rescanned_segments,
            segments - rescanned_from,
            "{context}"
        );
        log.close().unwrap();
    };
    for recovery_point in [0, 1, base(1) - 1, base(1), base(1) + 1, base(2) - 1] {
        check(recovery_point, true);
    }
    for recovery_point in [base(2), base(2) + 1, base(3), total, total + 100] {
        check(recovery_point, false);
    }
}

/// The offset after the last appended batch.
fn build_total(appended: &[(i64, Bytes)]) -> i64 {
    let (base, bytes) = appended.last().unwrap();
    base + i64::from(BatchHeader::parse(bytes).unwrap().last_offset_delta) + 1
}

#[test]
fn a_lost_tail_of_an_earlier_segment_cuts_the_log_there() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = dir.path().join("orders-3");
    let (appended, layout) = segmented_log(dir.path());
    let segment = &layout[1];
    let len_bytes = segment.len_bytes();
    let zeroed_from = len_bytes - 100;
    // The batch holding the first zeroed byte goes, with everything after it.
    let &(lost, position) = segment
        .batches
        .iter()
        .rev()
        .find(|&&(_, position)| position <= zeroed_from)
        .unwrap();
    let expected_truncated = len_bytes - position + bytes_from(&layout, 2);
    let mut bytes = std::fs::read(&segment.path).unwrap();
    bytes[zeroed_from as usize..].fill(0);
    std::fs::write(&segment.path, bytes).unwrap();
    let report = check_recovered(&pdir, &appended, lost);
    assert_eq!(report.truncated_bytes, expected_truncated, "{report:?}");
    assert_eq!(report.deleted_segments, layout.len() - 2);
    assert_eq!(segment_file_names(&pdir), first_segment_files(&layout, 2));
}

#[test]
fn an_earlier_segment_that_ends_short_of_the_next_base_cuts_the_log_there() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = dir.path().join("orders-3");
    let (appended, layout) = segmented_log(dir.path());
    // The file size went back to a batch boundary: every batch left is valid, but the
    // segment ends before the next segment's base offset.
    let &(lost, position) = layout[1].batches.last().unwrap();
    let expected_truncated = bytes_from(&layout, 2);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&layout[1].path)
        .unwrap();
    file.set_len(position).unwrap();
    let report = check_recovered(&pdir, &appended, lost);
    assert_eq!(report.truncated_bytes, expected_truncated, "{report:?}");
    assert_eq!(report.truncated_to_offset, Some(appended[lost].0));
    assert!(report.reason.unwrap().contains("next one starts at"));
    assert_eq!(segment_file_names(&pdir), first_segment_files(&layout, 2));
}

#[test]
fn recovery_point_follows_flushes_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = dir.path().join("orders-3");
    run(async {
        let mut log = new_log(dir.path(), tiny_config());
        assert_eq!(log.recovery_point(), 0);
        for i in 0..4 {
            append(&mut log, batch(2, 120, i)).await;
        }
        assert!(log.segment_count() > 1, "rolled");
        assert_eq!(log.recovery_point(), 0, "nothing flushed yet");
        let job = log.sync_job().unwrap();
        let upto = job.run().await.unwrap();
        log.mark_flushed(upto);
        assert_eq!(log.recovery_point(), upto.offset);
        assert_eq!(log.recovery_point(), 8);
        append(&mut log, batch(3, 10, 9)).await;
        assert_eq!(log.recovery_point(), 8, "an append is not a flush");
        log.close().unwrap();
        for recovery in [Recovery::Clean, FULL, Recovery::Full { recovery_point: 8 }] {
            let (log, _) = reopen(&pdir, recovery);
            assert_eq!(log.recovery_point(), 11, "{recovery:?}");
            assert_eq!(log.log_end_offset(), 11, "{recovery:?}");
            log.close().unwrap();
        }
    });
}

/// A durable write (RWF_DSYNC) moves the recovery point only when everything before it was
/// durable and no directory entry or rolled segment still waits for its sync.
#[test]
fn durable_writes_move_the_recovery_point_only_over_durable_data() {
    async fn append_durably(log: &mut PartitionLog, records: Bytes) {
        let mut pending = log.prepare_append(records).unwrap().into_pending();
        pending.write_durably();
        let written = pending.write().await.unwrap();
        assert!(written.durable());
        log.complete_append(written);
    }
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = new_log(dir.path(), tiny_config());
        append_durably(&mut log, batch(2, 10, 0)).await;
        assert_eq!(log.recovery_point(), 2);
        append_durably(&mut log, batch(3, 10, 1)).await;
        assert_eq!(log.recovery_point(), 5);
        assert_eq!(log.unflushed_messages(), 0);
        // A plain write leaves dirty data that a later durable write does not cover.
        append(&mut log, batch(1, 10, 2)).await;
        append_durably(&mut log, batch(1, 10, 3)).await;
        assert_eq!(log.recovery_point(), 5, "offset 5 was never synced");
        let upto = log.sync_job().unwrap().run().await.unwrap();
        log.mark_flushed(upto);
        assert_eq!(log.recovery_point(), 7);
        // A roll owes the new segment's directory entry and the sealed segment's indexes.
        let segments = log.segment_count();
        while log.segment_count() == segments {
            append_durably(&mut log, batch(2, 120, 4)).await;
        }
        assert!(
            log.recovery_point() < log.log_end_offset(),
            "the roll is not synced yet"
        );
        let upto = log.sync_job().unwrap().run().await.unwrap();
        log.mark_flushed(upto);
        assert_eq!(log.recovery_point(), log.log_end_offset());
        append_durably(&mut log, batch(1, 10, 5)).await;
        assert_eq!(log.recovery_point(), log.log_end_offset());
        log.close().unwrap();
    });
}

/// Appends to two logs, interleaved, written as one group: each log's appends become one
/// run; everything reads back at its assigned offsets.
#[test]
fn coalesced_writes_across_logs_read_back() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let config = LogConfig {
            segment_bytes: 1 << 20,
            ..LogConfig::default()
        };
        let mut a = PartitionLog::create(
            dir.path(),
            "a",
            0,
            TopicId(uuid::Uuid::from_u128(1)),
            config,
            files(),
        )
        .unwrap();
        let mut b = PartitionLog::create(
            dir.path(),
            "b",
            0,
            TopicId(uuid::Uuid::from_u128(2)),
            config,
            files(),
        )
        .unwrap();
        let mut pendings = Vec::new();
        for i in 0..20 {
            let log = if i % 2 == 0 { &mut a } else { &mut b };
            pendings.push(log.prepare_append(batch(3, 50, i)).unwrap().into_pending());
        }
        let written = sluice_engine::write_coalesced(pendings).await;
        for (i, w) in written.into_iter().enumerate() {
            let log = if i % 2 == 0 { &mut a } else { &mut b };
            log.complete_append(w.unwrap());
        }
        for log in [&mut a, &mut b] {
            assert_eq!(log.log_end_offset(), 30);
            for offset in 0..30 {
                let slice = log
                    .read(
                        offset,
                        1 << 20,
                        FirstBatch::Whole,
                        FetchIsolation::HighWatermark,
                    )
                    .unwrap()
                    .unwrap();
                let bytes = slice.read_to_bytes().await.unwrap();
                let header = BatchHeader::parse(&bytes).unwrap();
                assert!(header.base_offset <= offset && offset <= header.last_offset());
            }
        }
    });
}

/// A read says which offsets its whole batches cover (metrics count records out by it).
#[test]
fn slices_know_their_offsets() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let config = LogConfig {
            segment_bytes: 1 << 20,
            ..LogConfig::default()
        };
        let mut log = new_log(dir.path(), config);
        for i in 0..3 {
            append(&mut log, batch(3, 10, i)).await;
        }
        let all = log
            .read(0, 1 << 20, FirstBatch::Whole, FetchIsolation::HighWatermark)
            .unwrap()
            .unwrap();
        assert_eq!((all.base_offset, all.next_offset), (0, 9));
        let first = log
            .read(1, 1, FirstBatch::Whole, FetchIsolation::HighWatermark)
            .unwrap()
            .unwrap();
        assert_eq!((first.base_offset, first.next_offset), (0, 3));
        let middle = log
            .read(4, 1, FirstBatch::Whole, FetchIsolation::HighWatermark)
            .unwrap()
            .unwrap();
        assert_eq!((middle.base_offset, middle.next_offset), (3, 6));
        let none = log
            .read(4, 1, FirstBatch::WithinLimit, FetchIsolation::HighWatermark)
            .unwrap()
            .unwrap();
        assert_eq!((none.len, none.next_offset - none.base_offset), (0, 0));
    });
}

/// A close that leaves the syncs to a `syncfs` writes the same files as a synced one: the
/// clean reopen trusts the trimmed indexes and reads every record back.
#[test]
fn a_close_deferring_syncs_leaves_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let sizes: Vec<(usize, usize)> = (0..30).map(|i| (1 + i % 3, 5 * i % 60)).collect();
    let appended = build_log(dir.path(), &sizes);
    let pdir = dir.path().join("orders-3");
    let lock = sluice_engine::logdir::lock_log_dir(dir.path()).unwrap();
    run(async {
        let (mut log, _) = reopen(&pdir, Recovery::Clean);
        let more = batch(2, 10, 5000);
        let (base, _) = append(&mut log, more.clone()).await;
        log.close_with(sluice_engine::CloseSync::Syncfs).unwrap();
        lock.sync_filesystem().unwrap();
        let (mut log, report) = reopen(&pdir, Recovery::Clean);
        assert_eq!(
            (report.truncated_bytes, report.scanned_bytes),
            (0, 0),
            "{report:?}"
        );
        let mut all = appended.clone();
        all.push((base, more));
        check_reads(&mut log, &all).await;
        log.close().unwrap();
    });
}
