//! PartitionLog as a replica: leader epochs stamped and cached, the high watermark and
//! read isolation, follower appends (byte-identical copies), truncation and reopen.

use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use proptest::prelude::*;
use sluice_engine::batch::BatchHeader;
use sluice_engine::testing::build_batch;
use sluice_engine::{
    AppendError, AppendOutcome, EpochEntry, FetchIsolation, FileCache, FirstBatch,
    FollowerAppendError, HighWatermarkMode, LastFetchedEpoch, LeaderEpoch, LogConfig, PartitionLog,
    Recovery, TopicId, TruncateReason, LEADER_EPOCH_CHECKPOINT_FILE,
};

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    compio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(f)
}

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 100,
        segment_index_bytes: 240,
        ..LogConfig::default()
    }
}

fn files() -> Rc<FileCache> {
    Rc::new(FileCache::new(4))
}

fn new_log(dir: &Path, name: &str, config: LogConfig) -> PartitionLog {
    let id = TopicId(uuid::Uuid::from_u128(0x5151));
    PartitionLog::create(dir, name, 0, id, config, files()).unwrap()
}

fn reopen(pdir: &Path, config: LogConfig, recovery: Recovery) -> PartitionLog {
    PartitionLog::open(pdir, config, recovery, files())
        .unwrap()
        .0
}

/// `count` records of `value_bytes`, optionally from an idempotent producer (pid, seq).
fn batch(count: usize, value_bytes: usize, producer: Option<(i64, i32)>) -> Bytes {
    let value = vec![b'r'; value_bytes];
    let records: Vec<_> = (0..count)
        .map(|i| (Some(&b"k"[..]), Some(&value[..]), 1_000 + i as i64))
        .collect();
    let mut bytes = build_batch(&records).to_vec();
    if let Some((pid, seq)) = producer {
        bytes[43..51].copy_from_slice(&pid.to_be_bytes());
        bytes[51..53].copy_from_slice(&0i16.to_be_bytes());
        bytes[53..57].copy_from_slice(&seq.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    Bytes::from(bytes)
}

async fn append(log: &mut PartitionLog, records: Bytes) -> (i64, i64) {
    let pending = log.prepare_append(records).unwrap().into_pending();
    let written = pending.write().await.unwrap();
    let range = (written.base_offset, written.last_offset);
    log.complete_append(written);
    range
}

async fn append_as_follower(log: &mut PartitionLog, records: Bytes) {
    let pending = log.prepare_append_as_follower(records).unwrap();
    let written = pending.write().await.unwrap();
    log.complete_append(written);
}

/// Every batch from `from` to where `isolation` stops, as read back.
async fn read_all(log: &mut PartitionLog, from: i64, isolation: FetchIsolation) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = from;
    for _ in 0..10_000 {
        let slice = log
            .read(offset, 1 << 20, FirstBatch::Whole, isolation)
            .unwrap();
        let Some(slice) = slice else { break };
        let bytes = slice.read_to_bytes().await.unwrap();
        let headers = sluice_engine::validate_batches(&bytes, u32::MAX).unwrap();
        for (i, header) in headers.iter().enumerate() {
            let at: usize = headers[..i].iter().map(BatchHeader::total_bytes).sum();
            out.push(bytes.slice(at..at + header.total_bytes()));
        }
        offset = slice.next_offset;
    }
    out
}

fn epochs(log: &PartitionLog) -> Vec<(i32, i64)> {
    let entries: &[EpochEntry] = log.leader_epoch_cache().entries();
    entries
        .iter()
        .map(|e| (e.epoch.0, e.start_offset))
        .collect()
}

/// The `.log` files of `dir` concatenated in base-offset order: the partition's bytes
/// whatever its segment boundaries.
fn log_bytes(dir: &Path) -> Vec<u8> {
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    names.sort();
    names.iter().flat_map(|p| fs::read(p).unwrap()).collect()
}

/// A never-replicated partition stamps epoch 0, as Kafka's single node does, and its
/// high watermark is the log end offset after every append.
#[test]
fn a_single_node_partition_is_epoch_zero_and_its_high_watermark_follows_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = new_log(dir.path(), "single", config(1 << 20));
        let checkpoint = log.dir().join(LEADER_EPOCH_CHECKPOINT_FILE);
        assert_eq!(fs::read_to_string(&checkpoint).unwrap(), "0\n0\n");
        assert_eq!(log.leader_epoch(), LeaderEpoch(0));
        assert_eq!(log.high_watermark_mode(), HighWatermarkMode::FollowsLogEnd);
        assert_eq!(log.high_watermark(), 0);
        for n in 1..=4 {
            append(&mut log, batch(n, 10, None)).await;
            assert_eq!(log.high_watermark(), log.log_end_offset());
        }
        assert_eq!(log.log_end_offset(), 10);
        assert_eq!(epochs(&log), [(0, 0)]);
        assert_eq!(fs::read_to_string(&checkpoint).unwrap(), "0\n1\n0 0\n");
        let read = read_all(&mut log, 0, FetchIsolation::HighWatermark).await;
        assert_eq!(read.len(), 4);
        for b in &read {
            assert_eq!(BatchHeader::parse(b).unwrap().partition_leader_epoch, 0);
        }
        // An update cannot pull it below the log end in this mode, nor move it backwards.
        assert_eq!(log.update_high_watermark(3), None);
        assert_eq!(log.high_watermark(), 10);
    });
}

/// `become_leader` stamps the new epoch and records its start at once; the cache survives
/// a clean close and is rebuilt from the batches when its file is gone.
#[test]
fn leader_epochs_are_stamped_cached_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(600);
    let pdir = run(async {
        let mut log = new_log(dir.path(), "epochs", cfg);
        append(&mut log, batch(2, 50, None)).await; // 0..=1 in epoch 0
        log.become_leader(LeaderEpoch(3)).unwrap();
        assert_eq!(epochs(&log), [(0, 0), (3, 2)]);
        append(&mut log, batch(3, 50, None)).await; // 2..=4
        append(&mut log, batch(3, 50, None)).await; // 5..=7
        log.become_leader(LeaderEpoch(4)).unwrap();
        log.become_leader(LeaderEpoch(7)).unwrap(); // no batch in 4: 7 replaces it
        append(&mut log, batch(2, 50, None)).await; // 8..=9
        assert_eq!(epochs(&log), [(0, 0), (3, 2), (7, 8)]);
        let stamped: Vec<i32> = read_all(&mut log, 0, FetchIsolation::LogEnd)
            .await
            .iter()
            .map(|b| BatchHeader::parse(b).unwrap().partition_leader_epoch)
            .collect();
        assert_eq!(stamped, [0, 3, 3, 7]);
        assert!(log.segment_count() > 1, "the test spans segments");
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(3)),
            Some((LeaderEpoch(3), 8))
        );
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(5)),
            Some((LeaderEpoch(3), 8))
        );
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(7)),
            Some((LeaderEpoch(7), 10))
        );
        assert_eq!(log.end_offset_for_epoch(LeaderEpoch(8)), None);
        let pdir = log.dir().to_owned();
        log.close().unwrap();
        pdir
    });
    let log = reopen(&pdir, cfg, Recovery::Clean);
    assert_eq!(epochs(&log), [(0, 0), (3, 2), (7, 8)]);
    assert_eq!(log.leader_epoch(), LeaderEpoch(7));
    drop(log);
    fs::remove_file(pdir.join(LEADER_EPOCH_CHECKPOINT_FILE)).unwrap();
    let log = reopen(&pdir, cfg, Recovery::Clean);
    assert_eq!(epochs(&log), [(0, 0), (3, 2), (7, 8)]);
    assert!(pdir.join(LEADER_EPOCH_CHECKPOINT_FILE).exists());
    drop(log);
    // An entry for batches a crash lost is cut at the log end on open.
    fs::write(
        pdir.join(LEADER_EPOCH_CHECKPOINT_FILE),
        "0\n4\n0 0\n3 2\n7 8\n9 10\n",
    )
    .unwrap();
    let log = reopen(&pdir, cfg, Recovery::Full { recovery_point: 0 });
    assert_eq!(epochs(&log), [(0, 0), (3, 2), (7, 8)]);
    assert_eq!(log.leader_epoch(), LeaderEpoch(7));
}

#[test]
#[should_panic(expected = "leader epoch 2 after 3")]
fn leader_epochs_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = new_log(dir.path(), "back", config(1 << 20));
    log.become_leader(LeaderEpoch(3)).unwrap();
    log.become_leader(LeaderEpoch(2)).unwrap();
}

/// In `Replicated` mode only `update_high_watermark` moves it: forwards only, clamped to
/// the log end; consumers read below it, followers to the log end.
#[test]
fn the_high_watermark_bounds_consumer_reads() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = new_log(dir.path(), "hw", config(700));
        log.set_high_watermark_mode(HighWatermarkMode::Replicated);
        for _ in 0..6 {
            append(&mut log, batch(3, 60, None)).await; // 6 batches of 3: 0..=17
        }
        assert!(log.segment_count() > 1);
        assert_eq!(log.high_watermark(), 0);
        let hw = FetchIsolation::HighWatermark;
        let end = FetchIsolation::LogEnd;
        assert!(log
            .read(0, 1 << 20, FirstBatch::Whole, hw)
            .unwrap()
            .is_none());
        assert_eq!(read_all(&mut log, 0, end).await.len(), 6);
        check_hw(&mut log, 3, 3, 1).await;
        check_hw(&mut log, 2, 3, 1).await; // never backwards
        check_hw(&mut log, 7, 7, 2).await; // inside the third batch: it is not returned yet
        check_hw(&mut log, 9, 9, 3).await;
        check_hw(&mut log, 12, 12, 4).await;
        check_hw(&mut log, 100, 18, 6).await; // clamped to the log end
                                              // A consumer ahead of the high watermark gets nothing, not an error.
        assert_eq!(
            log.read(18, 100, FirstBatch::Whole, hw)
                .unwrap()
                .map(|s| s.len),
            None
        );
        append(&mut log, batch(1, 10, None)).await;
        assert_eq!(log.high_watermark(), 18);
        assert!(log.read(18, 100, FirstBatch::Whole, hw).unwrap().is_none());
        assert!(log.read(18, 100, FirstBatch::Whole, end).unwrap().is_some());
        // Back to no followers: the log end at once.
        log.set_high_watermark_mode(HighWatermarkMode::FollowsLogEnd);
        assert_eq!(log.high_watermark(), 19);
    });
}

/// A full disk's recovery reopens the log from its files: what the broker set on it — the
/// replicated high watermark above all — must survive (the fault suite once saw a resumed
/// follower take its log end for its high watermark, and then refuse its leader's
/// truncation of the unreplicated tail as if it dropped committed records).
#[test]
fn a_replica_resumed_after_a_full_disk_keeps_its_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = new_log(dir.path(), "full", config(700));
        log.set_high_watermark_mode(HighWatermarkMode::Replicated);
        for _ in 0..4 {
            append(&mut log, batch(3, 60, None)).await; // 0..=11
        }
        log.update_high_watermark(6);
        log.fail_append(&std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert!(log.is_disk_full());
        assert!(log.recover_after_disk_full().unwrap(), "the disk has room");
        assert!(!log.is_disk_full());
        assert_eq!(log.log_end_offset(), 12);
        assert_eq!(log.high_watermark_mode(), HighWatermarkMode::Replicated);
        assert_eq!(
            log.high_watermark(),
            6,
            "the replicated high watermark, not the log end"
        );
        let hw = FetchIsolation::HighWatermark;
        assert_eq!(read_all(&mut log, 0, hw).await.len(), 2);
        assert!(log.truncate_to(9, TruncateReason::DivergingEpoch).unwrap());
        assert_eq!(log.log_end_offset(), 9);
    });
}

/// Updates the high watermark to `to`; expects it at `expect_hw` and a consumer reading
/// from 0 to get `expect_batches` batches, all below it.
async fn check_hw(log: &mut PartitionLog, to: i64, expect_hw: i64, expect_batches: usize) {
    let before = log.high_watermark();
    let moved = log.update_high_watermark(to);
    assert_eq!(
        moved,
        (expect_hw != before).then_some(before),
        "update to {to}"
    );
    assert_eq!(log.high_watermark(), expect_hw, "update to {to}");
    let batches = read_all(log, 0, FetchIsolation::HighWatermark).await;
    assert_eq!(batches.len(), expect_batches, "update to {to}");
    let last = batches
        .last()
        .map(|b| BatchHeader::parse(b).unwrap().last_offset());
    assert!(last.is_none_or(|l| l < expect_hw), "update to {to}");
}

/// The checkpointed high watermark comes back clamped to the log.
#[test]
fn a_restored_high_watermark_is_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1 << 20);
    let pdir = run(async {
        let mut log = new_log(dir.path(), "restore", cfg);
        for _ in 0..3 {
            append(&mut log, batch(2, 10, None)).await;
        }
        let pdir = log.dir().to_owned();
        log.close().unwrap();
        pdir
    });
    for (checkpointed, expect) in [(4, 4), (0, 0), (6, 6), (99, 6)] {
        let mut log = reopen(&pdir, cfg, Recovery::Clean);
        assert_eq!(log.high_watermark(), 6, "open starts at the log end");
        log.set_high_watermark_mode(HighWatermarkMode::Replicated);
        log.restore_high_watermark(checkpointed);
        assert_eq!(log.high_watermark(), expect);
    }
}

/// A leader with several epochs, producers and segments, for the follower tests.
async fn leader_log(dir: &Path, cfg: LogConfig, plan: &[(u8, usize, usize)]) -> PartitionLog {
    let mut log = new_log(dir, "leader", cfg);
    let mut seq = 0;
    for &(epoch_step, count, value_bytes) in plan {
        if epoch_step > 0 {
            let next = LeaderEpoch(log.leader_epoch().0 + i32::from(epoch_step));
            log.become_leader(next).unwrap();
        }
        let producer = (count % 2 == 0).then_some((42, seq));
        if producer.is_some() {
            seq += count as i32;
        }
        append(&mut log, batch(count, value_bytes, producer)).await;
    }
    log
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Follower-appending the leader's batches, fetched in any chunking, gives the same
    /// bytes on disk (segment boundaries aside), the same leader epoch cache, and a
    /// producer state that still recognises the leader's last batch as a duplicate.
    #[test]
    fn follower_copies_are_byte_identical(
        plan in prop::collection::vec((0u8..3, 1usize..5, 1usize..200), 1..25),
        chunks in prop::collection::vec(1usize..4, 1..30),
        follower_segment_bytes in 1500u64..4000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let mut leader = leader_log(dir.path(), config(1500), &plan).await;
            let mut follower = new_log(dir.path(), "follower", config(follower_segment_bytes));
            follower.set_high_watermark_mode(HighWatermarkMode::Replicated);
            let batches = read_all(&mut leader, 0, FetchIsolation::LogEnd).await;
            let mut at = 0;
            for &n in chunks.iter().cycle() {
                if at == batches.len() {
                    break;
                }
                // At most `n` batches within the follower's segment size (a fetch is
                // bounded by replica.fetch.max.bytes, below segment.bytes).
                let mut take = 1;
                let mut bytes = batches[at].len();
                while take < n && at + take < batches.len()
                    && bytes + batches[at + take].len() <= follower_segment_bytes as usize
                {
                    bytes += batches[at + take].len();
                    take += 1;
                }
                let records = Bytes::from(batches[at..at + take].concat());
                append_as_follower(&mut follower, records).await;
                at += take;
            }
            prop_assert_eq!(follower.log_end_offset(), leader.log_end_offset());
            prop_assert_eq!(follower.high_watermark(), 0);
            prop_assert_eq!(epochs(&follower), epochs(&leader));
            prop_assert_eq!(log_bytes(follower.dir()), log_bytes(leader.dir()));
            let copied = read_all(&mut follower, 0, FetchIsolation::LogEnd).await;
            prop_assert_eq!(copied, batches);
            // The follower becomes leader: the leader's last producer batch retried is a
            // duplicate with its original offsets.
            if let Some(&(_, count, bytes)) = plan.iter().rev().find(|(_, c, _)| c % 2 == 0) {
                let seq: i32 = plan.iter().filter(|(_, c, _)| c % 2 == 0).map(|p| p.1 as i32).sum();
                let retry = batch(count, bytes, Some((42, seq - count as i32)));
                let outcome = follower.prepare_append(retry.clone()).unwrap();
                let duplicate = matches!(outcome, AppendOutcome::Duplicate { .. });
                prop_assert!(duplicate, "{:?}", outcome);
                let leader_says = leader.prepare_append(retry).unwrap();
                prop_assert_eq!(format!("{outcome:?}"), format!("{leader_says:?}"));
            }
            // Without its checkpoint the follower rebuilds the same cache from its batches.
            let (pdir, cfg) = (follower.dir().to_owned(), *follower.config());
            let expected = epochs(&follower);
            follower.close().unwrap();
            fs::remove_file(pdir.join(LEADER_EPOCH_CHECKPOINT_FILE)).unwrap();
            let rebuilt = reopen(&pdir, cfg, Recovery::Clean);
            prop_assert_eq!(epochs(&rebuilt), expected);
            Ok(())
        })?;
    }
}

/// What a follower refuses, and that a refusal reserves nothing.
#[test]
fn follower_appends_check_offsets_and_framing() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut leader = leader_log(
            dir.path(),
            config(1 << 20),
            &[(0, 2, 10), (1, 3, 10), (0, 1, 10)],
        )
        .await;
        let batches = read_all(&mut leader, 0, FetchIsolation::LogEnd).await;
        let mut follower = new_log(dir.path(), "follower", config(1 << 20));
        follower.set_high_watermark_mode(HighWatermarkMode::Replicated);
        let refused = |follower: &mut PartitionLog, records: Bytes| {
            let err = follower.prepare_append_as_follower(records).unwrap_err();
            assert_eq!(
                follower.next_offset(),
                follower.log_end_offset(),
                "nothing reserved"
            );
            err
        };
        let err = refused(&mut follower, batches[1].clone());
        assert!(
            matches!(
                err,
                FollowerAppendError::UnexpectedAppendOffset {
                    expected: 0,
                    first_offset: 2
                }
            ),
            "{err}"
        );
        let gap = Bytes::from([batches[0].clone(), batches[2].clone()].concat());
        let err = refused(&mut follower, gap);
        assert!(
            matches!(
                err,
                FollowerAppendError::OffsetsOutOfOrder {
                    expected: 2,
                    base_offset: 5
                }
            ),
            "{err}"
        );
        let mut corrupt = batches[0].to_vec();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        let err = refused(&mut follower, Bytes::from(corrupt));
        assert!(
            matches!(err, FollowerAppendError::Append(AppendError::Batch(_))),
            "{err}"
        );
        // The leader's offsets and epochs are kept, not reassigned.
        append_as_follower(&mut follower, batches[0].clone()).await;
        append_as_follower(&mut follower, batches[1].clone()).await;
        assert_eq!(follower.log_end_offset(), 5);
        assert_eq!(epochs(&follower), [(0, 0), (1, 2)]);
        // A stale leader's answer: the follower became leader at epoch 2 meanwhile, so a
        // batch of epoch 1 may not follow (it would regress the epoch cache).
        let other = tempfile::tempdir().unwrap();
        let mut stale = leader_log(other.path(), config(1 << 20), &[(1, 3, 10)]).await;
        let old = read_all(&mut stale, 0, FetchIsolation::LogEnd).await;
        let mut renumbered = old[0].to_vec();
        renumbered[..8].copy_from_slice(&5i64.to_be_bytes());
        follower.become_leader(LeaderEpoch(2)).unwrap();
        let err = refused(&mut follower, Bytes::from(renumbered));
        assert!(
            matches!(
                err,
                FollowerAppendError::EpochRegression {
                    base_offset: 5,
                    epoch: 1,
                    latest: 2
                }
            ),
            "{err}"
        );
        assert_eq!(epochs(&follower), [(0, 0), (1, 2), (2, 5)]);
    });
}

/// A log of several segments and epochs for the truncation tests: 3-record batches,
/// epochs 0 (0..=5), 2 (6..=14), 5 (15..=20); a producer in every batch.
async fn truncation_log(dir: &Path, cfg: LogConfig) -> PartitionLog {
    let mut log = new_log(dir, "cut", cfg);
    log.set_high_watermark_mode(HighWatermarkMode::Replicated);
    let mut seq = 0;
    for (epoch, batches) in [(0, 2), (2, 3), (5, 2)] {
        log.become_leader(LeaderEpoch(epoch)).unwrap();
        for _ in 0..batches {
            append(&mut log, batch(3, 80, Some((7, seq)))).await;
            seq += 3;
        }
    }
    assert_eq!(log.log_end_offset(), 21);
    assert!(log.segment_count() >= 3, "{} segments", log.segment_count());
    log
}

/// `truncate_to` at every offset: what is left reads back as before, the cache, producer
/// state and high watermark follow, appends continue at the cut, and it all survives a
/// clean and an unclean reopen.
#[test]
fn truncate_to_cuts_segments_indexes_epochs_and_producers() {
    let cfg = config(600);
    for offset in 0..=21 {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let mut log = truncation_log(dir.path(), cfg).await;
            let before = read_all(&mut log, 0, FetchIsolation::LogEnd).await;
            log.update_high_watermark(offset.min(4));
            let cut = log
                .truncate_to(offset, TruncateReason::DivergingEpoch)
                .unwrap();
            assert_eq!(cut, offset < 21, "offset {offset}");
            // Batches are 3 records: a cut inside one removes it whole.
            let end = offset / 3 * 3;
            assert_eq!(log.log_end_offset(), end, "offset {offset}");
            assert_eq!(log.next_offset(), end);
            assert!(log.high_watermark() <= end);
            assert!(log.recovery_point() <= end);
            let expect_epochs: Vec<(i32, i64)> = [(0, 0), (2, 6), (5, 15)]
                .into_iter()
                .filter(|&(_, start)| start < end)
                .collect();
            assert_eq!(epochs(&log), expect_epochs, "offset {offset}");
            let kept = read_all(&mut log, 0, FetchIsolation::LogEnd).await;
            assert_eq!(kept[..], before[..(end / 3) as usize], "offset {offset}");
            // The producer's batches above the cut are forgotten: its next sequence is
            // the one after the last kept batch.
            let next_seq = end as i32;
            let retry_of_cut = batch(3, 80, Some((7, next_seq)));
            let outcome = log.prepare_append(retry_of_cut).unwrap();
            assert!(
                matches!(outcome, AppendOutcome::Write(_)),
                "offset {offset}: {outcome:?}"
            );
            let written = outcome.into_pending().write().await.unwrap();
            log.complete_append(written);
            assert_eq!(log.log_end_offset(), end + 3);
            let after = read_all(&mut log, 0, FetchIsolation::LogEnd).await;
            let pdir = log.dir().to_owned();
            log.close().unwrap();
            for recovery in [Recovery::Clean, Recovery::Full { recovery_point: 0 }] {
                let mut reopened = reopen(&pdir, cfg, recovery);
                assert_eq!(reopened.log_end_offset(), end + 3, "{recovery:?}");
                assert_eq!(
                    read_all(&mut reopened, 0, FetchIsolation::LogEnd).await,
                    after
                );
                assert_eq!(epochs(&reopened), epochs_after_append(&expect_epochs, end));
                drop(reopened);
            }
        });
    }
}

/// The epochs after `truncation_log` was cut at `end` and one batch appended in epoch 5.
fn epochs_after_append(kept: &[(i32, i64)], end: i64) -> Vec<(i32, i64)> {
    let mut out = kept.to_vec();
    if out.last().is_none_or(|e| e.0 != 5) {
        out.push((5, end));
    }
    out
}

#[test]
#[should_panic(expected = "below the high watermark 10")]
fn truncating_committed_records_for_a_diverging_epoch_crashes() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = truncation_log(dir.path(), config(600)).await;
        log.update_high_watermark(10);
        let _ = log.truncate_to(9, TruncateReason::DivergingEpoch);
    });
}

#[test]
fn an_unclean_truncation_below_the_high_watermark_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = truncation_log(dir.path(), config(600)).await;
        log.update_high_watermark(10);
        assert!(log.truncate_to(12, TruncateReason::DivergingEpoch).unwrap());
        assert_eq!(log.unclean_truncations(), 0);
        assert!(log
            .truncate_to(6, TruncateReason::UncleanLeaderElection)
            .unwrap());
        assert_eq!(log.unclean_truncations(), 1);
        assert_eq!((log.log_end_offset(), log.high_watermark()), (6, 6));
    });
}

/// A follower whose leader's log starts past its end starts over there.
#[test]
fn truncate_fully_and_start_at_starts_an_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(600);
    let pdir = run(async {
        let mut log = truncation_log(dir.path(), cfg).await;
        log.truncate_fully_and_start_at(100).unwrap();
        assert_eq!(log.log_start_offset(), 100);
        assert_eq!(log.log_end_offset(), 100);
        assert_eq!(log.high_watermark(), 100);
        assert_eq!(log.segment_count(), 1);
        assert!(epochs(&log).is_empty());
        assert!(log.producer_state().producer(7).is_none());
        // The leader's batches from 100 follow (offset and epoch are outside the CRC).
        let mut bytes = batch(2, 10, None).to_vec();
        bytes[0..8].copy_from_slice(&100i64.to_be_bytes());
        bytes[12..16].copy_from_slice(&9i32.to_be_bytes());
        append_as_follower(&mut log, Bytes::from(bytes)).await;
        assert_eq!(log.log_end_offset(), 102);
        assert_eq!(epochs(&log), [(9, 100)]);
        let pdir = log.dir().to_owned();
        log.close().unwrap();
        pdir
    });
    let log = reopen(&pdir, cfg, Recovery::Full { recovery_point: 0 });
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 102));
    assert_eq!(epochs(&log), [(9, 100)]);
    // A truncate_to below the first segment is a full truncation too.
    let mut log = log;
    log.set_high_watermark_mode(HighWatermarkMode::Replicated);
    log.truncate_to(50, TruncateReason::UncleanLeaderElection)
        .unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (50, 50));
}

/// A crash halfway through `truncate_to` (the newest segments deleted, the cut not made):
/// reopening gives a prefix of the old log with its epochs cut at the end, never a hole.
#[test]
fn a_truncation_interrupted_after_deleting_segments_reopens_as_a_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(600);
    run(async {
        let mut log = truncation_log(dir.path(), cfg).await;
        let before = read_all(&mut log, 0, FetchIsolation::LogEnd).await;
        let pdir = log.dir().to_owned();
        log.close().unwrap();
        // What the first step of truncate_to(4) leaves: every segment above 4 deleted.
        let mut bases: Vec<i64> = fs::read_dir(&pdir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".log").map(|d| d.parse().unwrap())
            })
            .collect();
        bases.sort_unstable();
        let doomed: Vec<i64> = bases.iter().copied().filter(|&b| b > 4).collect();
        assert!(!doomed.is_empty());
        for base in doomed.iter().rev() {
            for suffix in ["index", "timeindex", "log"] {
                fs::remove_file(pdir.join(format!("{base:020}.{suffix}"))).unwrap();
            }
        }
        let mut log = reopen(&pdir, cfg, Recovery::Full { recovery_point: 21 });
        log.set_high_watermark_mode(HighWatermarkMode::Replicated);
        log.restore_high_watermark(0);
        let end = log.log_end_offset();
        assert!(end > 4 && end < 21, "end {end}");
        let kept = read_all(&mut log, 0, FetchIsolation::LogEnd).await;
        assert_eq!(kept[..], before[..kept.len()]);
        assert!(epochs(&log).iter().all(|&(_, start)| start < end));
        // The follower's retry of the truncation finishes the job.
        assert!(log.truncate_to(4, TruncateReason::DivergingEpoch).unwrap());
        assert_eq!(log.log_end_offset(), 3);
    });
}

/// KIP-320 on the leader: a replica fetch's last fetched epoch against this log's epochs
/// (0 from 0, 2 from 6, 5 from 15; log end 21).
#[test]
fn last_fetched_epochs_are_checked_as_kafka_does() {
    let dir = tempfile::tempdir().unwrap();
    let leader = run(truncation_log(dir.path(), config(600)));
    let check = |fetch_offset: i64, last_fetched: i32, expect: LastFetchedEpoch| {
        let got = leader.check_last_fetched_epoch(fetch_offset, LeaderEpoch(last_fetched));
        assert_eq!(
            got, expect,
            "fetch at {fetch_offset} after epoch {last_fetched}"
        );
    };
    let diverging = |epoch, end_offset| LastFetchedEpoch::Diverging {
        epoch: LeaderEpoch(epoch),
        end_offset,
    };
    use LastFetchedEpoch::{Consistent, Unknown};
    check(21, 5, Consistent);
    check(16, 5, Consistent);
    check(15, 2, Consistent);
    check(3, 0, Consistent);
    check(6, 0, Consistent);
    check(16, 2, diverging(2, 15));
    check(7, 0, diverging(0, 6));
    // An epoch this log never had: its largest epoch below ends where the next starts.
    check(10, 3, diverging(2, 15));
    check(4, 1, diverging(0, 6));
    check(10, 6, Unknown);
}

/// On a follower (the same epochs, log end 21): where the leader's answer says to cut.
#[test]
fn truncation_offsets_follow_kafkas_fetcher() {
    let dir = tempfile::tempdir().unwrap();
    let follower = run(truncation_log(dir.path(), config(600)));
    let check = |leader: (i32, i64), initial: i64, expect: (i64, bool)| {
        let got = follower.offset_truncation_state((LeaderEpoch(leader.0), leader.1), initial);
        let got = (got.offset, got.truncation_completed);
        assert_eq!(got, expect, "leader says {leader:?}");
    };
    check((5, 30), 0, (21, true));
    check((5, 18), 0, (18, true));
    check((2, 10), 0, (10, true));
    check((2, 15), 0, (15, true));
    // The leader's epoch is unknown here: cut to the end of ours below it, then ask again.
    check((3, 12), 0, (15, false));
    check((4, 19), 0, (15, false));
    // The leader cannot say: its epoch undefined, or its end offset.
    check((-1, 9), 0, (9, true));
    check((-1, 40), 0, (21, true));
    check((4, -1), 7, (7, true));
    // A follower without epochs (batches that carry none) takes the leader's end offset.
    let mut bare = new_log(dir.path(), "bare", config(1 << 20));
    run(append_as_follower(&mut bare, batch(6, 10, None)));
    assert!(epochs(&bare).is_empty());
    let got = bare.offset_truncation_state((LeaderEpoch(3), 4), 0);
    assert_eq!((got.offset, got.truncation_completed), (4, true));
    let got = bare.offset_truncation_state((LeaderEpoch(3), 10), 0);
    assert_eq!((got.offset, got.truncation_completed), (6, true));
}

/// A replica that became leader and lost it before appending keeps no epoch entry at its
/// log end once its new leader says where the log diverges (Kafka's rule); else every
/// fetch would name that epoch again.
#[test]
fn truncating_at_the_log_end_drops_an_empty_epoch() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let mut log = leader_log(dir.path(), config(1 << 20), &[(0, 2, 10), (1, 3, 10)]).await;
        log.set_high_watermark_mode(HighWatermarkMode::Replicated);
        log.become_leader(LeaderEpoch(4)).unwrap();
        assert_eq!(epochs(&log), [(0, 0), (1, 2), (4, 5)]);
        log.become_follower();
        assert!(!log.truncate_to(5, TruncateReason::DivergingEpoch).unwrap());
        assert_eq!(epochs(&log), [(0, 0), (1, 2)]);
        assert_eq!(log.log_end_offset(), 5);
        // A follower takes no leader append.
        let err = log.prepare_append(batch(1, 10, None)).unwrap_err();
        assert!(matches!(err, AppendError::NotLeader), "{err}");
    });
}
