//! Unavailability per fault (issue 11 §4): the gaps between a producer's acknowledgements
//! on a partition and between the records the consumer group reads from a partition, each
//! counted for the fault during whose window it began. A fault's window runs from its start
//! to the next fault's start, so a gap that outlasts its fault's healing (the nemesis waits
//! for full ISRs and for acknowledgements over all partitions, not on each) still counts for
//! it, not for the next. A gap "begins" [`GAP_MIN`] after the last event before it: that
//! event usually precedes the fault by a few milliseconds.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use sluice_perf::verify::{PARTITION_GAPS_MAX as GAPS_MAX, PARTITION_GAP_MIN as GAP_MIN};

/// Gaps in a stream of events: when each began (`GAP_MIN` after the event before it), and
/// how long it was.
#[derive(Default)]
pub struct Gaps(Vec<(Instant, Duration, i32)>);

impl Gaps {
    /// The producers' gaps (`verify::Options::partition_gaps`).
    pub fn of_acks(acks: &[(i32, Instant, Duration)]) -> Gaps {
        let mut gaps = Gaps::default();
        for (partition, end, gap) in acks {
            gaps.record(*partition, *end, *gap);
        }
        gaps
    }

    /// The gap of length `gap` on `partition` that ended at `end`.
    fn record(&mut self, partition: i32, end: Instant, gap: Duration) {
        if gap >= GAP_MIN && self.0.len() < GAPS_MAX {
            self.0.push((end - gap + GAP_MIN, gap, partition));
        }
    }

    /// The longest gap that began in `[from, to)` (`to` None: open-ended).
    fn worst_in(&self, from: Instant, to: Option<Instant>) -> Duration {
        self.0
            .iter()
            .filter(|(start, _, _)| *start >= from && to.is_none_or(|to| *start < to))
            .map(|(_, gap, _)| *gap)
            .max()
            .unwrap_or_default()
    }
}

/// The gaps between records read from each partition.
#[derive(Default)]
pub struct ReadGaps {
    last: BTreeMap<i32, Instant>,
    pub gaps: Gaps,
}

impl ReadGaps {
    pub fn read(&mut self, partition: i32) {
        let now = Instant::now();
        if let Some(before) = self.last.insert(partition, now) {
            self.gaps.record(partition, now, now - before);
        }
    }
}

/// Per fault kind: how many, and the median and max over them of each one's longest gap in
/// a partition's acknowledgements and in its reads. `windows` are (fault, start) in order.
pub fn report<F: Copy + Ord + Debug>(
    windows: &[(F, Instant)],
    acks: &Gaps,
    reads: &Gaps,
) -> Vec<String> {
    let mut per_kind: BTreeMap<F, (Vec<Duration>, Vec<Duration>)> = BTreeMap::new();
    for (i, (fault, start)) in windows.iter().enumerate() {
        let end = windows.get(i + 1).map(|(_, s)| *s);
        let kind = per_kind.entry(*fault).or_default();
        kind.0.push(acks.worst_in(*start, end));
        kind.1.push(reads.worst_in(*start, end));
    }
    per_kind
        .into_iter()
        .map(|(fault, (acks, reads))| {
            format!(
                "[nemesis] {fault:?} x{}: a partition without acknowledgement for {}, unread by the group for {}",
                acks.len(),
                median_max(acks),
                median_max(reads),
            )
        })
        .collect()
}

/// Every gap of `min` or more, with the fault whose window it began in and when, relative
/// to that fault's start (`FAULT_GAPS=<seconds>` prints them, to see what a figure hides).
pub fn detail<F: Copy + Debug>(
    windows: &[(F, Instant)],
    (acks, reads): (&Gaps, &Gaps),
    min: Duration,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (what, gaps) in [("acknowledged", acks), ("read", reads)] {
        for (start, gap, partition) in gaps.0.iter().filter(|g| g.1 >= min) {
            let Some((i, (fault, at))) = windows
                .iter()
                .enumerate()
                .rev()
                .find(|(_, (_, at))| at <= start)
            else {
                continue;
            };
            lines.push(format!(
                "[gaps] partition {partition} not {what} for {:.2} s from {:.2} s into fault {} ({fault:?})",
                gap.as_secs_f64(),
                start.duration_since(*at).as_secs_f64(),
                i + 1
            ));
        }
    }
    lines
}

/// "median M s, max X s" of `values` (not empty); an even count's median is the mean of
/// the two middle values.
fn median_max(mut values: Vec<Duration>) -> String {
    values.sort();
    let n = values.len();
    let median = match n % 2 {
        1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2,
    };
    format!(
        "median {:.2} s, max {:.2} s",
        median.as_secs_f64(),
        values[n - 1].as_secs_f64()
    )
}

#[test]
fn a_gap_counts_for_the_fault_whose_window_it_began_in() {
    let t0 = Instant::now();
    let at = |ms| t0 + Duration::from_millis(ms);
    let mut acks = Gaps::default();
    acks.record(0, at(100), Duration::from_millis(40)); // the load's rhythm: not recorded
    acks.record(0, at(1_500), Duration::from_millis(1_200));
    acks.record(0, at(2_500), Duration::from_millis(300));
    acks.record(0, at(9_000), Duration::from_millis(2_000)); // began at 7 s: the Pause's
    let mut reads = Gaps::default();
    // Began in the first Kill's window, ended in the Pause's: the Kill's.
    reads.record(0, at(3_100), Duration::from_millis(2_900));
    reads.record(0, at(5_000), Duration::from_millis(1_000));
    // The last read came 3 ms before the last Kill: the Kill's.
    reads.record(0, at(9_997), Duration::from_millis(2_000));
    let windows = [("Kill", at(0)), ("Pause", at(3_000)), ("Kill", at(8_000))];
    let lines = report(&windows, &acks, &reads);
    assert_eq!(
        lines,
        [
            "[nemesis] \"Kill\" x2: a partition without acknowledgement for median 0.60 s, \
             max 1.20 s, unread by the group for median 2.45 s, max 2.90 s",
            "[nemesis] \"Pause\" x1: a partition without acknowledgement for median 2.00 s, \
             max 2.00 s, unread by the group for median 1.00 s, max 1.00 s",
        ]
    );
}
