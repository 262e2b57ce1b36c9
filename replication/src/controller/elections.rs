//! Elections the operator asks for (Kafka's ElectLeaders, as `ReplicationControlManager`
//! decides them) and the auto leader rebalance (`auto.leader.rebalance.enable`).

use std::collections::{BTreeMap, HashSet};

use uuid::Uuid;

use crate::errors;
use crate::image::{MetadataImage, TopicImage};
use crate::records::{
    BrokerId, MetadataRecord, PartitionChange, PartitionRecord, NO_LEADER, UNCLEAN_ELECTION_REASON,
};
use crate::rpc::{ElectionResult, ElectionType, TopicElections};

/// Kafka's default messages for the errors ElectLeaders answers.
fn message(code: i16) -> &'static str {
    match code {
        errors::ELECTION_NOT_NEEDED => "Leader election not needed for topic partition.",
        errors::PREFERRED_LEADER_NOT_AVAILABLE => "The preferred leader was not available.",
        errors::ELIGIBLE_LEADERS_NOT_AVAILABLE => {
            "Eligible topic partition leaders are not available."
        }
        _ => "",
    }
}

/// ElectLeaders: one result per partition asked (with `None`, every topic, by name, with
/// every partition except those that need no election, as Kafka answers), and the records of
/// the elections that happen.
pub fn elect_leaders(
    image: &MetadataImage,
    election: ElectionType,
    only: Option<&[(String, Vec<i32>)]>,
) -> (Vec<MetadataRecord>, Vec<TopicElections>) {
    let mut records = Vec::new();
    let mut seen = HashSet::new();
    let mut decide = |topic: &str, partition: i32| {
        let (code, message) = match elect_one(image, election, topic, partition) {
            Ok(change) => {
                if seen.insert((topic.to_string(), partition)) {
                    records.push(MetadataRecord::PartitionChange(change));
                }
                (0, None)
            }
            Err((code, message)) => (code, Some(message)),
        };
        ElectionResult {
            partition,
            code,
            message,
        }
    };
    let results = match only {
        Some(list) => list
            .iter()
            .map(|(topic, partitions)| TopicElections {
                topic: topic.clone(),
                partitions: partitions.iter().map(|p| decide(topic, *p)).collect(),
            })
            .collect(),
        None => image
            .topic_ids
            .iter()
            .map(|(name, id)| {
                let count = image.topics.get(id).map_or(0, |t| t.partitions.len());
                TopicElections {
                    topic: name.clone(),
                    partitions: (0..count as i32)
                        .map(|p| decide(name, p))
                        .filter(|r| r.code != errors::ELECTION_NOT_NEEDED)
                        .collect(),
                }
            })
            .collect(),
    };
    (records, results)
}

/// Kafka's `electLeader` for one partition: the change to commit, or the error to answer.
fn elect_one(
    image: &MetadataImage,
    election: ElectionType,
    topic: &str,
    partition: i32,
) -> Result<PartitionChange, (i16, String)> {
    let unknown = |what: String| (errors::UNKNOWN_TOPIC_OR_PARTITION, what);
    let t = image
        .topic(topic)
        .ok_or_else(|| unknown(format!("No such topic as {topic}")))?;
    let p = usize::try_from(partition)
        .ok()
        .and_then(|i| t.partitions.get(i))
        .ok_or_else(|| unknown(format!("No such partition as {topic}-{partition}")))?;
    let not_needed = match election {
        ElectionType::Preferred => p.replicas.first() == Some(&p.leader),
        ElectionType::Unclean => p.leader != NO_LEADER,
    };
    if not_needed {
        let code = errors::ELECTION_NOT_NEEDED;
        return Err((code, message(code).to_string()));
    }
    let valid = |r: BrokerId| p.isr.contains(&r) && image.is_active(r);
    let chosen = match election {
        ElectionType::Preferred => preferred_leader(p, valid),
        ElectionType::Unclean => p
            .replicas
            .iter()
            .copied()
            .find(|r| valid(*r))
            .or_else(|| p.replicas.iter().copied().find(|r| image.is_active(*r))),
    };
    let Some(leader) = chosen else {
        let code = match election {
            ElectionType::Preferred => errors::PREFERRED_LEADER_NOT_AVAILABLE,
            ElectionType::Unclean => errors::ELIGIBLE_LEADERS_NOT_AVAILABLE,
        };
        return Err((code, message(code).to_string()));
    };
    let isr = if p.isr.contains(&leader) {
        p.isr.clone()
    } else {
        tracing::warn!(
            topic,
            partition,
            leader,
            "unclean leader election (ElectLeaders): records only the old ISR held may be lost"
        );
        vec![leader]
    };
    let reason = match election {
        ElectionType::Preferred => "preferred-election",
        ElectionType::Unclean if !p.isr.contains(&leader) => UNCLEAN_ELECTION_REASON,
        ElectionType::Unclean => "election",
    };
    Ok(change(t, partition, p, leader, isr, reason))
}

/// Kafka's `electPreferredLeader`: the preferred replica if it may lead; none when the
/// current leader may go on leading (nothing would change); else the first other replica
/// that may lead (a leaderless partition).
fn preferred_leader(p: &PartitionRecord, valid: impl Fn(BrokerId) -> bool) -> Option<BrokerId> {
    let preferred = *p.replicas.first()?;
    if valid(preferred) {
        return Some(preferred);
    }
    if p.leader != NO_LEADER && valid(p.leader) {
        return None;
    }
    p.replicas.iter().skip(1).copied().find(|r| valid(*r))
}

fn change(
    t: &TopicImage,
    partition: i32,
    p: &PartitionRecord,
    leader: BrokerId,
    isr: Vec<BrokerId>,
    reason: &str,
) -> PartitionChange {
    PartitionChange {
        topic_id: t.id,
        partition,
        leader,
        isr,
        leader_epoch: p.leader_epoch + 1,
        partition_epoch: p.partition_epoch + 1,
        reason: reason.to_string(),
        assignment: None,
    }
}

/// The auto leader rebalance (Kafka's `checkAndTriggerAutoLeaderRebalance`): per preferred
/// replica, the share of its partitions it does not lead; where that is above
/// `percentage` %, a preferred election for each of them whose preferred replica is in the
/// ISR and active.
pub fn imbalanced_preferred_elections(
    image: &MetadataImage,
    percentage: u32,
) -> Vec<MetadataRecord> {
    // preferred broker -> (partitions it prefers, those it does not lead)
    let mut by_broker: BTreeMap<BrokerId, (usize, Vec<(Uuid, i32)>)> = BTreeMap::new();
    for t in image.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            let Some(&preferred) = p.replicas.first() else {
                continue;
            };
            let entry = by_broker.entry(preferred).or_default();
            entry.0 += 1;
            if p.leader != preferred {
                entry.1.push((t.id, i as i32));
            }
        }
    }
    let mut out = Vec::new();
    for (broker, (total, not_led)) in by_broker {
        // imbalance ratio > percentage / 100, in integers.
        if not_led.is_empty() || not_led.len() * 100 <= total * percentage as usize {
            continue;
        }
        if !image.is_active(broker) {
            continue;
        }
        for (topic_id, partition) in not_led {
            let t = &image.topics[&topic_id];
            let p = &t.partitions[partition as usize];
            if p.isr.contains(&broker) {
                let isr = p.isr.clone();
                out.push(MetadataRecord::PartitionChange(change(
                    t,
                    partition,
                    p,
                    broker,
                    isr,
                    "preferred-election",
                )));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::image::BrokerState;
    use crate::records::BrokerRegistration;

    fn image(
        partitions: &[(&[BrokerId], &[BrokerId], BrokerId)],
        fenced: &[BrokerId],
    ) -> MetadataImage {
        let mut image = MetadataImage::default();
        for b in 1..=3 {
            image.brokers.insert(
                b,
                BrokerState {
                    registration: BrokerRegistration {
                        broker_id: b,
                        incarnation_id: Uuid::nil(),
                        listeners: vec![],
                        inter_broker_listener: "PLAINTEXT".into(),
                        rack: None,
                        log_dirs: vec![],
                    },
                    broker_epoch: 1,
                    fenced: fenced.contains(&b),
                    in_controlled_shutdown: false,
                },
            );
        }
        let id = Uuid::from_u128(7);
        let topic = TopicImage {
            name: "t".into(),
            id,
            partitions: partitions
                .iter()
                .map(|(replicas, isr, leader)| PartitionRecord {
                    replicas: replicas.to_vec(),
                    isr: isr.to_vec(),
                    leader: *leader,
                    leader_epoch: 3,
                    partition_epoch: 5,
                    last_unclean_epoch: crate::records::NO_UNCLEAN_EPOCH,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                })
                .collect(),
            configs: BTreeMap::new(),
        };
        image.topics.insert(id, Arc::new(topic));
        image.topic_ids.insert("t".into(), id);
        image
    }

    /// (partition, new leader) of each change, and (partition, code) of each result.
    type Outcome = (Vec<(i32, BrokerId)>, Vec<(i32, i16)>);

    fn codes(
        image: &MetadataImage,
        election: ElectionType,
        only: Option<&[(String, Vec<i32>)]>,
    ) -> Outcome {
        let (records, results) = elect_leaders(image, election, only);
        let leaders = records
            .iter()
            .map(|r| match r {
                MetadataRecord::PartitionChange(c) => (c.partition, c.leader),
                other => panic!("{other:?}"),
            })
            .collect();
        let codes = results
            .iter()
            .flat_map(|t| t.partitions.iter().map(|r| (r.partition, r.code)))
            .collect();
        (leaders, codes)
    }

    #[test]
    fn preferred_elections_answer_kafkas_codes() {
        let img = image(
            &[
                (&[1, 2, 3], &[1, 2, 3], 2), // preferred 1 in the ISR: elected
                (&[1, 2, 3], &[1, 2, 3], 1), // already the leader
                (&[2, 1, 3], &[1, 3], 1),    // preferred 2 out of the ISR
                (&[3, 1, 2], &[3, 1, 2], 1), // preferred 3 fenced
            ],
            &[3],
        );
        let ask = vec![
            ("t".to_string(), (0..5).collect()),
            ("u".to_string(), vec![0]),
        ];
        let (leaders, results) = codes(&img, ElectionType::Preferred, Some(&ask));
        assert_eq!(leaders, vec![(0, 1)]);
        assert_eq!(
            results,
            vec![
                (0, 0),
                (1, errors::ELECTION_NOT_NEEDED),
                (2, errors::PREFERRED_LEADER_NOT_AVAILABLE),
                (3, errors::PREFERRED_LEADER_NOT_AVAILABLE),
                (4, errors::UNKNOWN_TOPIC_OR_PARTITION),
                (0, errors::UNKNOWN_TOPIC_OR_PARTITION),
            ]
        );
        // All partitions: those needing no election are left out.
        let (_, all) = codes(&img, ElectionType::Preferred, None);
        assert_eq!(all.iter().map(|r| r.0).collect::<Vec<_>>(), vec![0, 2, 3]);
    }

    #[test]
    fn unclean_elections_take_any_active_replica_when_the_isr_is_gone() {
        let img = image(
            &[
                (&[1, 2], &[1], NO_LEADER), // ISR member 1 active: a clean election
                (&[3, 2], &[3], NO_LEADER), // ISR member 3 fenced: 2, unclean
                (&[3], &[3], NO_LEADER),    // nobody active
                (&[1, 2], &[1, 2], 1),      // has a leader
            ],
            &[3],
        );
        let ask = vec![("t".to_string(), (0..4).collect())];
        let (records, results) = elect_leaders(&img, ElectionType::Unclean, Some(&ask));
        let codes: Vec<i16> = results[0].partitions.iter().map(|r| r.code).collect();
        assert_eq!(
            codes,
            vec![
                0,
                0,
                errors::ELIGIBLE_LEADERS_NOT_AVAILABLE,
                errors::ELECTION_NOT_NEEDED
            ]
        );
        let changes: Vec<(i32, BrokerId, Vec<BrokerId>)> = records
            .iter()
            .map(|r| match r {
                MetadataRecord::PartitionChange(c) => (c.partition, c.leader, c.isr.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(changes, vec![(0, 1, vec![1]), (1, 2, vec![2])]);
    }

    #[test]
    fn rebalance_only_above_the_percentage() {
        // Broker 1 prefers 4 partitions and leads 3 of them: 25 % imbalanced.
        let p = |leader| (&[1, 2, 3][..], &[1, 2, 3][..], leader);
        let img = image(&[p(1), p(1), p(1), p(2)], &[]);
        assert!(imbalanced_preferred_elections(&img, 25).is_empty());
        let records = imbalanced_preferred_elections(&img, 10);
        assert_eq!(records.len(), 1, "{records:?}");
        // A fenced preferred broker gets nothing back.
        let img = image(&[p(2), p(2)], &[1]);
        assert!(imbalanced_preferred_elections(&img, 10).is_empty());
    }
}
