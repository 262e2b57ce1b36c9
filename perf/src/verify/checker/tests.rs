//! One case per anomaly kind, each through [`check`]: these prove the checker can fail.

use super::*;

fn id(producer: u32, seq: u64) -> RecordId {
    RecordId { producer, seq }
}

/// Producer `p`'s record `seq`, acknowledged at `partition`/`offset`.
fn acked(p: u32, seq: u64, partition: i32, offset: i64) -> Sent {
    Sent {
        id: id(p, seq),
        partition,
        outcome: Outcome::Acked { offset },
    }
}

fn unknown(p: u32, seq: u64, partition: i32) -> Sent {
    Sent {
        id: id(p, seq),
        partition,
        outcome: Outcome::Unknown,
    }
}

/// A read of `partition` covering `start..end` holding `(offset, producer, seq)` records.
fn read(partition: i32, (start, end): (i64, i64), records: &[(i64, u32, u64)]) -> PartitionRead {
    PartitionRead {
        partition,
        log_start_offset: start,
        high_watermark: end,
        records: records.iter().map(|&(o, p, s)| (o, id(p, s))).collect(),
        foreign: 0,
    }
}

fn counts(v: &Verdict) -> String {
    format!(
        "acked={} unacked={} read={} lost={} duplicated={} reordered={} disagreeing={} \
         phantom={} unacked_present={}",
        v.acked,
        v.unacked,
        v.read,
        v.lost,
        v.duplicated,
        v.reordered,
        v.disagreeing,
        v.phantom,
        v.unacked_present
    )
}

/// Checks `sent` against `reads`; the counts must be `expected`, and the verdict OK
/// exactly when no anomaly is counted.
fn check(sent: &[Sent], reads: &[PartitionRead], expected: &str) -> Verdict {
    let history = History {
        run_id: 7,
        sent: sent.to_vec(),
    };
    let verdict = super::check(&history, reads);
    assert_eq!(counts(&verdict), expected);
    assert_eq!(verdict.is_ok(), verdict.anomalies() == 0);
    verdict
}

#[test]
fn clean_run() {
    let sent = [
        acked(0, 0, 0, 0),
        acked(0, 1, 1, 0),
        acked(1, 0, 0, 1),
        acked(0, 2, 0, 2),
    ];
    let reads = [
        read(0, (0, 3), &[(0, 0, 0), (1, 1, 0), (2, 0, 2)]),
        read(1, (0, 1), &[(0, 0, 1)]),
    ];
    let expected = "acked=4 unacked=0 read=4 lost=0 duplicated=0 reordered=0 disagreeing=0 \
                    phantom=0 unacked_present=0";
    assert!(check(&sent, &reads, expected).is_ok());
}

#[test]
fn lost_acknowledged_records() {
    // Offsets 0 and 1 were deleted (log start 2): both acknowledged records are gone.
    let sent = [acked(0, 0, 0, 0), acked(0, 1, 0, 1), acked(0, 2, 0, 2)];
    let reads = [read(0, (2, 3), &[(2, 0, 2)])];
    let expected = "acked=3 unacked=0 read=1 lost=2 duplicated=0 reordered=0 disagreeing=0 \
                    phantom=0 unacked_present=0";
    let verdict = check(&sent, &reads, expected);
    assert!(!verdict.is_ok());
    let lost = Lost {
        id: id(0, 0),
        partition: 0,
        offset: 0,
    };
    assert_eq!(verdict.examples.lost[0], lost);
}

#[test]
fn duplicated_records() {
    let sent = [acked(0, 0, 0, 0), acked(0, 1, 0, 1)];
    // A retry wrote record 0 again at offset 2.
    let reads = [read(0, (0, 3), &[(0, 0, 0), (1, 0, 1), (2, 0, 0)])];
    let expected = "acked=2 unacked=0 read=2 lost=0 duplicated=1 reordered=0 disagreeing=0 \
                    phantom=0 unacked_present=0";
    let verdict = check(&sent, &reads, expected);
    let duplicated = &verdict.examples.duplicated[0];
    assert_eq!((duplicated.id, duplicated.copies), (id(0, 0), 2));
    assert_eq!(duplicated.at, vec![(0, 0), (0, 2)]);
}

#[test]
fn reordered_within_a_producer() {
    // Producer 0's records 1 and 2 were acknowledged before record 0 (a retry), so they
    // sit at lower offsets; producer 1 is unaffected.
    let sent = [
        acked(0, 1, 0, 0),
        acked(0, 2, 0, 1),
        acked(1, 0, 0, 2),
        acked(0, 0, 0, 3),
    ];
    let reads = [read(
        0,
        (0, 4),
        &[(0, 0, 1), (1, 0, 2), (2, 1, 0), (3, 0, 0)],
    )];
    let expected = "acked=4 unacked=0 read=4 lost=0 duplicated=0 reordered=1 disagreeing=0 \
                    phantom=0 unacked_present=0";
    let verdict = check(&sent, &reads, expected);
    let reordered = Reordered {
        partition: 0,
        id: id(0, 0),
        offset: 3,
        after: id(0, 2),
        after_offset: 1,
    };
    assert_eq!(verdict.examples.reordered, vec![reordered]);
}

#[test]
fn acknowledged_offset_holding_another_record_disagrees() {
    // Record 0 was acknowledged at offset 0, which holds record 1 (sent, never answered).
    let sent = [acked(0, 0, 0, 0), unknown(0, 1, 0)];
    let reads = [read(0, (0, 1), &[(0, 0, 1)])];
    let expected = "acked=1 unacked=1 read=1 lost=1 duplicated=0 reordered=0 disagreeing=1 \
                    phantom=0 unacked_present=1";
    let verdict = check(&sent, &reads, expected);
    let disagreeing = Disagreeing {
        partition: 0,
        offset: 0,
        expected: id(0, 0),
        found: Some(id(0, 1)),
    };
    assert_eq!(verdict.examples.disagreeing, vec![disagreeing]);
}

#[test]
fn acknowledged_offset_differing_from_where_the_record_is_disagrees() {
    // Acknowledged at offset 5, found at offset 1; offset 5 is past what was read.
    let sent = [acked(0, 0, 0, 5)];
    let reads = [read(0, (0, 2), &[(1, 0, 0)])];
    let expected = "acked=1 unacked=0 read=1 lost=0 duplicated=0 reordered=0 disagreeing=1 \
                    phantom=0 unacked_present=0";
    check(&sent, &reads, expected);
}

#[test]
fn two_reads_disagreeing_on_an_offset() {
    let sent = [acked(0, 0, 0, 0), unknown(0, 1, 0), acked(0, 2, 0, 1)];
    // Two replicas: the second holds record 1 where the first holds record 2; beyond
    // what each covers nothing is compared.
    let reads = [
        read(0, (0, 2), &[(0, 0, 0), (1, 0, 2)]),
        read(0, (0, 3), &[(0, 0, 0), (1, 0, 1), (2, 0, 2)]),
    ];
    let expected = "acked=2 unacked=1 read=3 lost=0 duplicated=1 reordered=0 disagreeing=1 \
                    phantom=0 unacked_present=1";
    let verdict = check(&sent, &reads, expected);
    assert_eq!(verdict.examples.disagreeing[0].offset, 1);
}

#[test]
fn unacknowledged_but_present_is_allowed() {
    let sent = [acked(0, 0, 0, 0), unknown(0, 1, 0), unknown(0, 2, 0)];
    let reads = [read(0, (0, 2), &[(0, 0, 0), (1, 0, 1)])];
    let expected = "acked=1 unacked=2 read=2 lost=0 duplicated=0 reordered=0 disagreeing=0 \
                    phantom=0 unacked_present=1";
    let verdict = check(&sent, &reads, expected);
    assert!(verdict.is_ok());
    assert_eq!(verdict.examples.unacked_present[0].offset, 1);
}

#[test]
fn phantom_records_never_sent() {
    let sent = [acked(0, 0, 0, 0)];
    let reads = [read(0, (0, 2), &[(0, 0, 0), (1, 3, 9)])];
    let expected = "acked=1 unacked=0 read=2 lost=0 duplicated=0 reordered=0 disagreeing=0 \
                    phantom=1 unacked_present=0";
    let verdict = check(&sent, &reads, expected);
    assert!(!verdict.is_ok());
    assert_eq!(verdict.examples.phantom[0].id, id(3, 9));
}

#[test]
fn examples_are_bounded_counts_are_not() {
    let sent: Vec<Sent> = (0..50).map(|s| acked(0, s, 0, s as i64)).collect();
    let reads = [read(0, (50, 50), &[])];
    let expected = "acked=50 unacked=0 read=0 lost=50 duplicated=0 reordered=0 \
                    disagreeing=0 phantom=0 unacked_present=0";
    let verdict = check(&sent, &reads, expected);
    assert_eq!(verdict.examples.lost.len(), EXAMPLES_MAX);
}
