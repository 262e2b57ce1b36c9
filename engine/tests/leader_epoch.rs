//! LeaderEpochFileCache: Kafka's assign / truncate rules, `endOffsetFor`, and the
//! `leader-epoch-checkpoint` file (format, round trip, what a damaged file gives).

use std::fs;

use sluice_engine::leader_epoch::EpochCheckpoint;
use sluice_engine::{
    EpochEntry, LeaderEpoch, LeaderEpochFileCache, LEADER_EPOCH_CHECKPOINT_FILE, UNDEFINED_EPOCH,
};

#[derive(Clone, Copy, Debug)]
enum Op {
    Assign(i32, i64),
    FromEnd(i64),
    FromStart(i64),
    Clear,
}

fn entries(list: &[(i32, i64)]) -> Vec<EpochEntry> {
    list.iter()
        .map(|&(epoch, start_offset)| EpochEntry {
            epoch: LeaderEpoch(epoch),
            start_offset,
        })
        .collect()
}

/// Runs `ops` on a fresh cache and expects `expect`; the file then reads back the same.
fn check(ops: &[Op], expect: &[(i32, i64)]) {
    let dir = tempfile::tempdir().unwrap();
    let (mut cache, loaded) = LeaderEpochFileCache::open(dir.path()).unwrap();
    assert_eq!(loaded, EpochCheckpoint::Missing);
    for op in ops {
        match *op {
            Op::Assign(epoch, offset) => {
                cache.assign(LeaderEpoch(epoch), offset).unwrap();
            }
            Op::FromEnd(offset) => cache.truncate_from_end(offset).unwrap(),
            Op::FromStart(offset) => cache.truncate_from_start(offset).unwrap(),
            Op::Clear => cache.clear_and_flush().unwrap(),
        }
    }
    assert_eq!(cache.entries(), entries(expect), "{ops:?}");
    let (reread, loaded) = LeaderEpochFileCache::open(dir.path()).unwrap();
    let written = match ops.is_empty() {
        true => EpochCheckpoint::Missing,
        false => EpochCheckpoint::Loaded,
    };
    assert_eq!(loaded, written, "{ops:?}");
    assert_eq!(reread.entries(), entries(expect), "{ops:?} after reopening");
}

#[test]
fn assign_keeps_the_cache_monotone_as_kafka_does() {
    use Op::*;
    check(&[], &[]);
    check(&[Assign(2, 6)], &[(2, 6)]);
    check(&[Assign(0, 0)], &[(0, 0)]);
    // The same epoch again at a higher offset: every batch of an epoch, nothing changes.
    check(&[Assign(2, 6), Assign(2, 7), Assign(2, 100)], &[(2, 6)]);
    // The same epoch at a lower offset moves its start down.
    check(&[Assign(2, 6), Assign(2, 5)], &[(2, 5)]);
    check(&[Assign(2, 6), Assign(3, 8)], &[(2, 6), (3, 8)]);
    // Epochs may skip numbers.
    check(&[Assign(2, 6), Assign(7, 8)], &[(2, 6), (7, 8)]);
    // A higher epoch at an offset not above the latest start removes the entries it overlaps.
    check(
        &[Assign(2, 6), Assign(3, 8), Assign(4, 7)],
        &[(2, 6), (4, 7)],
    );
    check(
        &[Assign(2, 6), Assign(3, 8), Assign(4, 8)],
        &[(2, 6), (4, 8)],
    );
    check(&[Assign(2, 6), Assign(3, 8), Assign(4, 2)], &[(4, 2)]);
    // A lower epoch removes every entry with an epoch at or above it.
    check(&[Assign(2, 6), Assign(3, 8), Assign(1, 9)], &[(1, 9)]);
    check(
        &[Assign(2, 6), Assign(4, 8), Assign(3, 9)],
        &[(2, 6), (3, 9)],
    );
}

#[test]
fn truncation_from_either_end() {
    use Op::*;
    let base = [Assign(2, 6), Assign(3, 8), Assign(4, 11)];
    let with = |more: &[Op]| [&base[..], more].concat();
    check(&with(&[FromEnd(8)]), &[(2, 6)]);
    check(&with(&[FromEnd(9)]), &[(2, 6), (3, 8)]);
    check(&with(&[FromEnd(11)]), &[(2, 6), (3, 8)]);
    check(&with(&[FromEnd(12)]), &[(2, 6), (3, 8), (4, 11)]);
    check(&with(&[FromEnd(6)]), &[]);
    check(&with(&[FromEnd(0)]), &[]);
    // Kafka ignores a negative end offset.
    check(&with(&[FromEnd(-1)]), &[(2, 6), (3, 8), (4, 11)]);
    check(&with(&[FromStart(5)]), &[(2, 6), (3, 8), (4, 11)]);
    check(&with(&[FromStart(6)]), &[(2, 6), (3, 8), (4, 11)]);
    check(&with(&[FromStart(7)]), &[(2, 7), (3, 8), (4, 11)]);
    check(&with(&[FromStart(8)]), &[(3, 8), (4, 11)]);
    check(&with(&[FromStart(9)]), &[(3, 9), (4, 11)]);
    check(&with(&[FromStart(11)]), &[(4, 11)]);
    check(&with(&[FromStart(50)]), &[(4, 50)]);
    check(&with(&[Clear]), &[]);
    check(&with(&[Clear, Assign(5, 20)]), &[(5, 20)]);
}

#[test]
fn end_offset_for_answers_as_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cache, _) = LeaderEpochFileCache::open(dir.path()).unwrap();
    let log_end_offset = 20;
    let check = |cache: &LeaderEpochFileCache, requested: i32, expect: (i32, i64)| {
        let (epoch, offset) = cache.end_offset_for(LeaderEpoch(requested), log_end_offset);
        assert_eq!(
            (epoch.0, offset),
            expect,
            "epoch {requested} in {:?}",
            cache.entries()
        );
    };
    // An empty cache knows no epoch.
    check(&cache, 0, (-1, -1));
    check(&cache, UNDEFINED_EPOCH.0, (-1, -1));
    for (epoch, offset) in [(2, 6), (3, 8), (5, 11)] {
        cache.assign(LeaderEpoch(epoch), offset).unwrap();
    }
    check(&cache, UNDEFINED_EPOCH.0, (-1, -1));
    // The latest epoch ends at the log end offset.
    check(&cache, 5, (5, 20));
    // Above the latest: undefined (Kafka: "should never be hit").
    check(&cache, 6, (-1, -1));
    check(&cache, i32::MAX, (-1, -1));
    // Below every epoch: the first epoch's start, with the requested epoch.
    check(&cache, 0, (0, 6));
    check(&cache, 1, (1, 6));
    // A known epoch ends where the next starts.
    check(&cache, 2, (2, 8));
    check(&cache, 3, (3, 11));
    // An epoch between two known ones: the one below it, ending where the one above starts.
    check(&cache, 4, (3, 11));
}

#[test]
fn the_file_is_kafkas_format() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cache, _) = LeaderEpochFileCache::open(dir.path()).unwrap();
    cache.write().unwrap();
    let path = dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE);
    assert_eq!(fs::read_to_string(&path).unwrap(), "0\n0\n");
    cache.assign(LeaderEpoch(0), 0).unwrap();
    cache.assign(LeaderEpoch(3), 1500).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "0\n2\n0 0\n3 1500\n");
    assert!(!dir
        .path()
        .join(format!("{LEADER_EPOCH_CHECKPOINT_FILE}.tmp"))
        .exists());
    // Assigning what the cache already says rewrites nothing.
    fs::write(&path, "0\n2\n0 0\n3 1500\n\n").unwrap();
    assert!(!cache.assign(LeaderEpoch(3), 1600).unwrap());
    assert_eq!(fs::read_to_string(&path).unwrap(), "0\n2\n0 0\n3 1500\n\n");
}

#[test]
fn loading_tolerates_what_kafka_tolerates_and_rebuilds_the_rest() {
    let load = |text: &str| {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT_FILE), text).unwrap();
        let (cache, loaded) = LeaderEpochFileCache::open(dir.path()).unwrap();
        (cache.entries().to_vec(), loaded)
    };
    use EpochCheckpoint::*;
    assert_eq!(load("0\n0\n"), (vec![], Loaded));
    assert_eq!(load("0\n1\n4 10"), (entries(&[(4, 10)]), Loaded));
    // Entries are re-assigned in order: a file that is not monotone loads monotone.
    assert_eq!(load("0\n3\n2 6\n3 8\n1 9\n"), (entries(&[(1, 9)]), Loaded));
    assert_eq!(load("0\n2\n2 6\n2 9\n"), (entries(&[(2, 6)]), Loaded));
    // Damaged files are Missing: the log rebuilds the cache from its batches.
    for bad in [
        "",
        "1\n0\n",
        "0\n2\n1 1\n",
        "0\n1\n1 -1\n",
        "0\n1\n1\n",
        "0\n1\n1 2 3\n",
    ] {
        assert_eq!(load(bad), (vec![], Missing), "{bad:?}");
    }
}
