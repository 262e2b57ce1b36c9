//! Retention, DeleteRecords and `segment.ms` on `PartitionLog`.

use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use sluice_engine::testing::build_batch;
use sluice_engine::{
    DeleteRecordsError, FetchIsolation, FileCache, FirstBatch, LogConfig, PartitionLog, ReadError,
    Recovery, TopicId,
};

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    compio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(f)
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 100,
        segment_index_bytes: 96,
        ..LogConfig::default()
    }
}

fn new_log(dir: &Path, config: LogConfig) -> PartitionLog {
    let id = TopicId(uuid::Uuid::from_u128(0x99));
    PartitionLog::create(dir, "ret", 0, id, config, Rc::new(FileCache::new(4))).unwrap()
}

fn batch(ts: i64) -> Bytes {
    let value = vec![b'v'; 300];
    build_batch(&[(Some(&b"k"[..]), Some(&value[..]), ts)])
}

/// Appends one 1-record batch per timestamp and syncs the rolled segments.
async fn fill(log: &mut PartitionLog, timestamps: &[i64]) {
    for &ts in timestamps {
        let pending = log.prepare_append(batch(ts)).unwrap().into_pending();
        let written = pending.write().await.unwrap();
        log.complete_append(written);
    }
    if let Some(job) = log.sync_job() {
        log.mark_flushed(job.run().await.unwrap());
    }
}

fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("ret-0"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("log".as_ref()))
        .count()
}

#[test]
fn retention_ms_deletes_old_sealed_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = new_log(
            dir.path(),
            LogConfig {
                retention_ms: Some(1000),
                ..config()
            },
        );
        // 3 batches of ~370 bytes: 2 per segment.
        fill(&mut log, &[1_000, 1_000, 50_000, 50_000, 90_000, 90_000]).await;
        assert_eq!(log.segment_count(), 3);
        let out = log.enforce_retention(50_500).unwrap();
        assert_eq!(out.deleted_segments, 1);
        assert_eq!(log.log_start_offset(), 2);
        assert_eq!(segment_files(dir.path()), 2);
        // Everything old: the active segment stays.
        let out = log.enforce_retention(1_000_000).unwrap();
        assert_eq!(out.deleted_segments, 1);
        assert_eq!((log.log_start_offset(), log.segment_count()), (4, 1));
        assert!(matches!(
            log.read(1, 1 << 20, FirstBatch::Whole, FetchIsolation::HighWatermark),
            Err(ReadError::OffsetOutOfRange { .. })
        ));
        assert!(log
            .read(4, 1 << 20, FirstBatch::Whole, FetchIsolation::HighWatermark)
            .unwrap()
            .is_some());
    });
}

#[test]
fn retention_bytes_keeps_the_newest_segments() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = new_log(
            dir.path(),
            LogConfig {
                retention_bytes: Some(800),
                ..config()
            },
        );
        fill(&mut log, &[1, 2, 3, 4, 5, 6, 7]).await;
        assert_eq!(log.segment_count(), 4);
        let out = log.enforce_retention(0).unwrap();
        assert_eq!(out.deleted_segments, 2);
        assert!(log.size_bytes() <= 1200, "{}", log.size_bytes());
        assert_eq!(log.log_start_offset(), 4);
    });
}

#[test]
fn a_fetch_in_flight_survives_segment_deletion() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = new_log(
            dir.path(),
            LogConfig {
                retention_ms: Some(1),
                ..config()
            },
        );
        fill(&mut log, &[1, 1, 1_000_000]).await;
        let slice = log
            .read(0, 1 << 20, FirstBatch::Whole, FetchIsolation::HighWatermark)
            .unwrap()
            .unwrap();
        assert_eq!(
            log.enforce_retention(1_000_000).unwrap().deleted_segments,
            1
        );
        let bytes = slice.read_to_bytes().await.unwrap();
        assert_eq!(bytes.len() as u32, slice.len);
    });
}

#[test]
fn delete_records_moves_the_start_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = new_log(dir.path(), config());
        fill(&mut log, &[1, 2, 3, 4, 5]).await;
        assert!(matches!(
            log.delete_records(6),
            Err(DeleteRecordsError::OffsetOutOfRange { .. })
        ));
        assert_eq!(log.delete_records(3).unwrap(), 3);
        assert_eq!(log.segment_count(), 2, "the segment [0, 2) is gone");
        assert_eq!(log.delete_records(1).unwrap(), 3, "never moves back");
        assert!(log
            .read(2, 100, FirstBatch::Whole, FetchIsolation::HighWatermark)
            .is_err());
        let slice = log
            .read(3, 1 << 20, FirstBatch::Whole, FetchIsolation::HighWatermark)
            .unwrap()
            .unwrap();
        assert!(slice.base_offset <= 3);
        log.close().unwrap();
        let files = Rc::new(FileCache::new(4));
        let (mut log, _) =
            PartitionLog::open(&dir.path().join("ret-0"), config(), Recovery::Clean, files)
                .unwrap();
        assert_eq!(log.log_start_offset(), 3);
        assert_eq!(log.delete_records(-1).unwrap(), 5);
    });
}

#[test]
fn segment_ms_rolls_an_old_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = new_log(
            dir.path(),
            LogConfig {
                segment_ms: Some(60_000),
                ..config()
            },
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        fill(&mut log, &[now - 120_000]).await;
        fill(&mut log, &[now]).await;
        assert_eq!(
            log.segment_count(),
            2,
            "the old first batch rolled the segment"
        );
        fill(&mut log, &[now]).await;
        assert_eq!(log.segment_count(), 2, "a fresh segment does not roll");
    });
}

/// A garbage `log-start-offset` fails the open naming the file; a value past the log end
/// (a tail recovery cut) is clamped to the log end: the records below it stay deleted.
#[test]
fn log_start_offset_file_garbage_and_past_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("ret-0");
    run(async {
        let mut log = new_log(dir.path(), config());
        fill(&mut log, &[1, 2, 3, 4, 5]).await;
        log.close().unwrap();
    });
    let file = part.join("log-start-offset");
    let open = || {
        let files = Rc::new(FileCache::new(4));
        PartitionLog::open(&part, config(), Recovery::Clean, files).map(|(log, _)| log)
    };
    for garbage in [&b"twelve\n"[..], &b"\xff\xfe\n"[..], &b"-3\n"[..]] {
        std::fs::write(&file, garbage).unwrap();
        let err = run(async { open().map(|_| ()).unwrap_err() });
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "{garbage:?}: {err}"
        );
    }
    std::fs::write(&file, b"1000\n").unwrap();
    let log = run(async { open().unwrap() });
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (5, 5));
    std::fs::write(&file, b"2\n").unwrap();
    let log = run(async { open().unwrap() });
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (2, 5));
}
