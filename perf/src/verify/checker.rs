//! The analysis of a `verify` run, as Jepsen's Kafka checker does it: pure code over what
//! the producers were told (the [`History`]) and what the partitions hold afterwards (one
//! or more [`PartitionRead`]s per partition, e.g. from different leaders).
//!
//! Anomalies (any of them fails the run):
//! - **lost**: acknowledged, and found in no read.
//! - **duplicated**: one record id at two or more offsets.
//! - **reordered**: within one partition, a producer's acknowledged records are read in an
//!   order other than the order of their sequence numbers.
//! - **disagreeing**: an offset whose record differs between two reads that both cover it,
//!   or an acknowledgement whose offset holds another record (or none) than acknowledged.
//! - **phantom**: a record of this run that no producer ever sent.
//!
//! Not an anomaly: **unacknowledged but present** (an outcome the producer never learned,
//! e.g. a timeout, may or may not have been written), counted.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Examples kept of each anomaly kind; the counts go on past it.
pub const EXAMPLES_MAX: usize = 10;
/// Offsets listed per duplicated record in its example.
pub const DUPLICATE_OFFSETS_SHOWN_MAX: usize = 4;

/// A record's identity: which producer of the run sent it, and its place in that
/// producer's sequence (from 0, never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId {
    pub producer: u32,
    pub seq: u64,
}

/// What the producer learned about one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The broker acknowledged it at this offset.
    Acked { offset: i64 },
    /// Sent, and no definite answer came (timeout, lost connection, acks=0, delivery
    /// timeout after retriable errors): it may or may not be in the log.
    Unknown,
    /// Refused with a non-retriable error, or expired before it was ever sent.
    Failed,
}

/// One record sent (or given up on), with what became of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub id: RecordId,
    pub partition: i32,
    pub outcome: Outcome,
}

/// Everything the producers of one run learned: one entry per record generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Identifies this run's records among others in the topic.
    pub run_id: u64,
    pub sent: Vec<Sent>,
}

/// One read of one partition, from `log_start_offset` up to `high_watermark`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionRead {
    pub partition: i32,
    /// First offset the read covers.
    pub log_start_offset: i64,
    /// Offset after the last one the read covers.
    pub high_watermark: i64,
    /// This run's records, in offset order.
    pub records: Vec<(i64, RecordId)>,
    /// Records read that are not this run's (other runs, other writers).
    pub foreign: u64,
}

impl PartitionRead {
    fn covers(&self, offset: i64) -> bool {
        (self.log_start_offset..self.high_watermark).contains(&offset)
    }

    /// This run's record at `offset`, if the read holds one there.
    fn at(&self, offset: i64) -> Option<RecordId> {
        let index = self
            .records
            .binary_search_by_key(&offset, |&(o, _)| o)
            .ok()?;
        Some(self.records[index].1)
    }
}

/// An acknowledged record that no read holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    pub id: RecordId,
    pub partition: i32,
    /// Where it was acknowledged.
    pub offset: i64,
}

/// A record found at more than one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicated {
    pub id: RecordId,
    /// How many distinct (partition, offset) places hold it.
    pub copies: usize,
    /// The first of them, at most [`DUPLICATE_OFFSETS_SHOWN_MAX`].
    pub at: Vec<(i32, i64)>,
}

/// An acknowledged record read after one of the same producer with a higher sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reordered {
    pub partition: i32,
    pub id: RecordId,
    pub offset: i64,
    /// The record with the higher sequence, read before it.
    pub after: RecordId,
    pub after_offset: i64,
}

/// An offset whose content is not agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disagreeing {
    pub partition: i32,
    pub offset: i64,
    /// What an acknowledgement or an earlier read says is there.
    pub expected: RecordId,
    /// What a read holds there: `None` for no record of this run.
    pub found: Option<RecordId>,
}

/// A record found somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub id: RecordId,
    pub partition: i32,
    pub offset: i64,
}

/// Up to [`EXAMPLES_MAX`] of each anomaly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Examples {
    pub lost: Vec<Lost>,
    pub duplicated: Vec<Duplicated>,
    pub reordered: Vec<Reordered>,
    pub disagreeing: Vec<Disagreeing>,
    pub phantom: Vec<Found>,
    pub unacked_present: Vec<Found>,
}

/// What the checker found. Counts are of distinct records, except `disagreeing` which
/// counts distinct (partition, offset) places.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub acked: u64,
    /// Sent with an unknown outcome, or failed.
    pub unacked: u64,
    /// Distinct records of this run found by the reads.
    pub read: u64,
    /// Records of others in the reads (not checked).
    pub foreign: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub disagreeing: u64,
    pub phantom: u64,
    /// Allowed: counted only.
    pub unacked_present: u64,
    pub examples: Examples,
}

impl Verdict {
    /// No anomaly (unacknowledged-but-present records are allowed).
    pub fn is_ok(&self) -> bool {
        self.anomalies() == 0
    }

    /// Lost, duplicated, reordered, disagreeing and phantom, summed.
    pub fn anomalies(&self) -> u64 {
        self.lost + self.duplicated + self.reordered + self.disagreeing + self.phantom
    }
}

fn keep<T>(examples: &mut Vec<T>, example: T) {
    if examples.len() < EXAMPLES_MAX {
        examples.push(example);
    }
}

/// Checks `history` against `reads` (any number per partition, in any order).
pub fn check(history: &History, reads: &[PartitionRead]) -> Verdict {
    let located = locate(reads);
    let mut verdict = Verdict {
        read: located.len() as u64,
        foreign: reads.iter().map(|r| r.foreign).sum(),
        ..Verdict::default()
    };
    let mut reads_of: HashMap<i32, Vec<&PartitionRead>> = HashMap::new();
    for read in reads {
        reads_of.entry(read.partition).or_default().push(read);
    }
    let mut disagreeing = BTreeSet::new();
    check_outcomes(history, &reads_of, &located, &mut verdict, &mut disagreeing);
    check_reads_agree(reads, &reads_of, &mut verdict, &mut disagreeing);
    verdict.disagreeing = disagreeing.len() as u64;
    check_duplicates(&located, &mut verdict);
    let sent: HashMap<RecordId, &Sent> = history.sent.iter().map(|s| (s.id, s)).collect();
    check_phantoms(&located, &sent, &mut verdict);
    check_order(reads, &sent, &mut verdict);
    verdict
}

/// Every distinct (partition, offset) each record of the run was read at, sorted.
fn locate(reads: &[PartitionRead]) -> BTreeMap<RecordId, Vec<(i32, i64)>> {
    let mut located: BTreeMap<RecordId, Vec<(i32, i64)>> = BTreeMap::new();
    for read in reads {
        for &(offset, id) in &read.records {
            located
                .entry(id)
                .or_default()
                .push((read.partition, offset));
        }
    }
    for places in located.values_mut() {
        places.sort_unstable();
        places.dedup();
    }
    located
}

/// Lost, unacknowledged-but-present, and acknowledgements whose offset holds another
/// record.
fn check_outcomes(
    history: &History,
    reads_of: &HashMap<i32, Vec<&PartitionRead>>,
    located: &BTreeMap<RecordId, Vec<(i32, i64)>>,
    verdict: &mut Verdict,
    disagreeing: &mut BTreeSet<(i32, i64)>,
) {
    let mut unacked_present = HashSet::new();
    for sent in &history.sent {
        let places = located.get(&sent.id);
        let Outcome::Acked { offset } = sent.outcome else {
            verdict.unacked += 1;
            if let Some(&[(partition, offset), ..]) = places.map(Vec::as_slice) {
                if unacked_present.insert(sent.id) {
                    let found = Found {
                        id: sent.id,
                        partition,
                        offset,
                    };
                    keep(&mut verdict.examples.unacked_present, found);
                }
            }
            continue;
        };
        verdict.acked += 1;
        let partition = sent.partition;
        if places.is_none() {
            verdict.lost += 1;
            let lost = Lost {
                id: sent.id,
                partition,
                offset,
            };
            keep(&mut verdict.examples.lost, lost);
        }
        let covering: Vec<&&PartitionRead> = reads_of
            .get(&partition)
            .into_iter()
            .flatten()
            .filter(|r| r.covers(offset))
            .collect();
        let mismatch = match covering.as_slice() {
            [] => places
                .filter(|p| !p.contains(&(partition, offset)))
                .map(|_| None),
            covering => covering
                .iter()
                .map(|r| r.at(offset))
                .find(|&found| found != Some(sent.id)),
        };
        if let Some(found) = mismatch {
            if disagreeing.insert((partition, offset)) {
                let example = Disagreeing {
                    partition,
                    offset,
                    expected: sent.id,
                    found,
                };
                keep(&mut verdict.examples.disagreeing, example);
            }
        }
    }
    verdict.unacked_present = unacked_present.len() as u64;
}

/// Two reads of one partition must hold the same record at every offset both cover.
fn check_reads_agree(
    reads: &[PartitionRead],
    reads_of: &HashMap<i32, Vec<&PartitionRead>>,
    verdict: &mut Verdict,
    disagreeing: &mut BTreeSet<(i32, i64)>,
) {
    for read in reads {
        for other in &reads_of[&read.partition] {
            if std::ptr::eq(read, *other) {
                continue;
            }
            for &(offset, id) in &read.records {
                let found = other.at(offset);
                if !other.covers(offset) || found == Some(id) {
                    continue;
                }
                if disagreeing.insert((read.partition, offset)) {
                    let example = Disagreeing {
                        partition: read.partition,
                        offset,
                        expected: id,
                        found,
                    };
                    keep(&mut verdict.examples.disagreeing, example);
                }
            }
        }
    }
}

fn check_duplicates(located: &BTreeMap<RecordId, Vec<(i32, i64)>>, verdict: &mut Verdict) {
    for (&id, places) in located.iter().filter(|(_, p)| p.len() > 1) {
        verdict.duplicated += 1;
        let example = Duplicated {
            id,
            copies: places.len(),
            at: places
                .iter()
                .take(DUPLICATE_OFFSETS_SHOWN_MAX)
                .copied()
                .collect(),
        };
        keep(&mut verdict.examples.duplicated, example);
    }
}

fn check_phantoms(
    located: &BTreeMap<RecordId, Vec<(i32, i64)>>,
    sent: &HashMap<RecordId, &Sent>,
    verdict: &mut Verdict,
) {
    for (&id, places) in located.iter().filter(|(id, _)| !sent.contains_key(id)) {
        verdict.phantom += 1;
        let (partition, offset) = places[0];
        let found = Found {
            id,
            partition,
            offset,
        };
        keep(&mut verdict.examples.phantom, found);
    }
}

/// Within each read, each producer's acknowledged records must come in sequence order
/// (first copies only: later copies are duplicates).
fn check_order(reads: &[PartitionRead], sent: &HashMap<RecordId, &Sent>, verdict: &mut Verdict) {
    let acked = |id: &RecordId| {
        sent.get(id)
            .is_some_and(|s| matches!(s.outcome, Outcome::Acked { .. }))
    };
    let mut reordered = HashSet::new();
    for read in reads {
        let mut seen = HashSet::new();
        // Per producer: the highest sequence read so far, and its offset.
        let mut highest: HashMap<u32, (RecordId, i64)> = HashMap::new();
        for &(offset, id) in read.records.iter().filter(|(_, id)| acked(id)) {
            if !seen.insert(id) {
                continue;
            }
            match highest.get(&id.producer) {
                Some(&(after, after_offset)) if after.seq > id.seq => {
                    if reordered.insert(id) {
                        let example = Reordered {
                            partition: read.partition,
                            id,
                            offset,
                            after,
                            after_offset,
                        };
                        keep(&mut verdict.examples.reordered, example);
                    }
                }
                _ => {
                    highest.insert(id.producer, (id, offset));
                }
            }
        }
    }
    verdict.reordered = reordered.len() as u64;
}

#[cfg(test)]
mod tests;
