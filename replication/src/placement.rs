//! Kafka's replica placement (`AdminUtils.assignReplicasToBrokers` / KRaft's
//! `StripedReplicaPlacer` idea): the first replica of partition p goes to broker
//! `(start + p) mod n`, followers follow it at a shift that grows every n partitions, over a
//! broker list that alternates racks so replicas of one partition land in different racks
//! whenever there are enough racks.

use std::collections::BTreeMap;

use crate::records::BrokerId;

/// Brokers ordered so consecutive entries are in different racks where possible
/// (Kafka's `getRackAlternatedBrokerList`).
pub fn rack_alternated(brokers: &[(BrokerId, Option<String>)]) -> Vec<BrokerId> {
    let mut by_rack: BTreeMap<&str, Vec<BrokerId>> = BTreeMap::new();
    for (id, rack) in brokers {
        by_rack
            .entry(rack.as_deref().unwrap_or(""))
            .or_default()
            .push(*id);
    }
    for ids in by_rack.values_mut() {
        ids.sort_unstable();
    }
    let mut out = Vec::with_capacity(brokers.len());
    let mut round = 0;
    while out.len() < brokers.len() {
        for ids in by_rack.values() {
            if let Some(id) = ids.get(round) {
                out.push(*id);
            }
        }
        round += 1;
    }
    out
}

/// Replica lists for `partitions` new partitions (numbered from `first_partition`) with
/// `replication_factor` replicas each over `brokers` (already rack-alternated).
/// `start` and `shift` are Kafka's random start index and replica shift.
pub fn assign(
    brokers: &[BrokerId],
    first_partition: i32,
    partitions: i32,
    replication_factor: usize,
    start: usize,
    shift: usize,
) -> Vec<Vec<BrokerId>> {
    let n = brokers.len();
    assert!(replication_factor >= 1 && replication_factor <= n);
    let mut shift = shift;
    let mut out = Vec::with_capacity(partitions as usize);
    for i in 0..partitions {
        let p = (first_partition + i) as usize;
        if p > 0 && p.is_multiple_of(n) {
            shift += 1;
        }
        let first = (start + p) % n;
        let mut replicas = vec![brokers[first]];
        for j in 0..replication_factor - 1 {
            let step = if n > 1 { 1 + (shift + j) % (n - 1) } else { 0 };
            replicas.push(brokers[(first + step) % n]);
        }
        out.push(replicas);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_distinct_and_leaders_spread() {
        let brokers = [1, 2, 3, 4];
        let lists = assign(&brokers, 0, 8, 3, 1, 0);
        for l in &lists {
            let mut s = l.clone();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), 3, "{l:?}");
        }
        let mut leaders: BTreeMap<BrokerId, usize> = BTreeMap::new();
        for l in &lists {
            *leaders.entry(l[0]).or_default() += 1;
        }
        assert!(leaders.values().all(|c| *c == 2), "{leaders:?}");
    }

    #[test]
    fn racks_alternate() {
        let brokers = [
            (1, Some("a".to_string())),
            (2, Some("a".to_string())),
            (3, Some("b".to_string())),
            (4, Some("b".to_string())),
        ];
        let order = rack_alternated(&brokers);
        assert_eq!(order, vec![1, 3, 2, 4]);
        let rack = |id: BrokerId| brokers.iter().find(|b| b.0 == id).unwrap().1.clone();
        for l in assign(&order, 0, 4, 2, 0, 0) {
            assert_ne!(rack(l[0]), rack(l[1]), "{l:?}");
        }
    }
}
