//! Partition reassignment (KIP-455), as Kafka's controller runs it:
//!
//! 1. AlterPartitionReassignments sets a partition's target replicas: its replica list
//!    becomes the target followed by the replicas being removed, with `adding_replicas`
//!    (target − current) and `removing_replicas` (current − target). The leader and ISR
//!    stay; the added replicas create their logs, follow the leader and catch up.
//! 2. When the ISR holds every target replica (the leader's AlterPartition adding the last
//!    of them, or at once when nothing needs copying), the change that commits the ISR also
//!    completes the reassignment: replicas = target, ISR = ISR − removing, the leader kept if
//!    it stays, else the first target replica in the ISR that is active. Removing a replica
//!    bumps the leader epoch (Kafka's `triggerLeaderEpochBumpForReplicaReassignmentIfNeeded`),
//!    so a removed replica's fetches are fenced.
//! 3. A cancel (null replicas) reverts to the original replicas (current − adding), the ISR
//!    less the added replicas; when that leaves no ISR member, only with
//!    `unclean.leader.election.enable` (Kafka's `PartitionReassignmentRevert`).
//!
//! Nothing acknowledged can be lost: the ISR only ever loses replicas that are not targets
//! when the targets are all in it, so every record below the high watermark is on every
//! replica of the final set.

use std::collections::BTreeSet;

use crate::errors;
use crate::image::{MetadataImage, TopicImage};
use crate::records::{
    BrokerId, MetadataRecord, PartitionChange, PartitionRecord, RecordBatch, ReplicaAssignment,
    NO_LEADER,
};
use crate::rpc::{
    ControllerReply, ControllerRequest, OngoingReassignment, PartitionOutcome, TopicOutcomes,
};

/// AlterPartitionReassignments and ListPartitionReassignments, as the controller's queue
/// decides them (a list proposes nothing).
pub(super) fn decide(image: &MetadataImage, req: ControllerRequest) -> super::Decision {
    match req {
        ControllerRequest::AlterPartitionReassignments {
            topics,
            allow_replication_factor_change,
        } => {
            let (records, results) =
                alter_reassignments(image, &topics, allow_replication_factor_change);
            Ok((records, ControllerReply::Reassignments(results)))
        }
        ControllerRequest::ListPartitionReassignments { topics } => {
            let ongoing = list_reassignments(image, topics.as_deref());
            Ok((vec![], ControllerReply::OngoingReassignments(ongoing)))
        }
        other => unreachable!("not a reassignment request: {other:?}"),
    }
}

/// One topic's asked changes: partition and target replicas (None: cancel).
pub type ReassignmentAsk = (String, Vec<(i32, Option<Vec<BrokerId>>)>);

type Failure = (i16, String);

/// AlterPartitionReassignments: one outcome per partition asked, in the order asked, and the
/// records of the changes that succeed. Each change is computed against the image with the
/// earlier ones applied, so a partition named twice is changed twice, consistently.
pub fn alter_reassignments(
    image: &MetadataImage,
    asks: &[ReassignmentAsk],
    allow_replication_factor_change: bool,
) -> (Vec<MetadataRecord>, Vec<TopicOutcomes>) {
    let mut after = image.clone();
    let mut records = Vec::new();
    let mut results = Vec::new();
    for (topic, partitions) in asks {
        let mut outcomes = Vec::new();
        for (partition, target) in partitions {
            let decided = alter_one(
                &after,
                topic,
                *partition,
                target.as_deref(),
                allow_replication_factor_change,
            );
            let (code, message) = match decided {
                Ok(change) => {
                    if let Some(change) = change {
                        let record = MetadataRecord::PartitionChange(change);
                        let index = after.applied_index;
                        after.apply(index, &RecordBatch(vec![record.clone()]));
                        records.push(record);
                    }
                    (0, None)
                }
                Err((code, message)) => {
                    tracing::info!(topic, partition, code, %message, "partition reassignment refused");
                    (code, Some(message))
                }
            };
            outcomes.push(PartitionOutcome {
                partition: *partition,
                code,
                message,
            });
        }
        results.push(TopicOutcomes {
            topic: topic.clone(),
            partitions: outcomes,
        });
    }
    (records, results)
}

fn alter_one(
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    target: Option<&[BrokerId]>,
    allow_replication_factor_change: bool,
) -> Result<Option<PartitionChange>, Failure> {
    let unknown = |m: String| (errors::UNKNOWN_TOPIC_OR_PARTITION, m);
    let t = image
        .topic(topic)
        .ok_or_else(|| unknown(format!("Unable to find a topic named {topic}.")))?;
    let p = usize::try_from(partition)
        .ok()
        .and_then(|i| t.partitions.get(i))
        .ok_or_else(|| unknown(format!("Unable to find partition {topic}:{partition}.")))?;
    match target {
        None => cancel(image, t, partition, p).map(Some),
        Some(target) => {
            check_target(image, target)?;
            let original = p.replicas.len() - p.adding_replicas.len();
            if !allow_replication_factor_change && target.len() != original {
                return Err((
                    errors::INVALID_REPLICATION_FACTOR,
                    format!(
                        "The replication factor is changed from {original} to {}",
                        target.len()
                    ),
                ));
            }
            Ok(change(image, t, partition, p, target))
        }
    }
}

/// Kafka's `validateManualPartitionAssignment`: not empty, registered brokers, no repeats.
pub fn check_target(image: &MetadataImage, target: &[BrokerId]) -> Result<(), Failure> {
    let bad = |m: String| Err((errors::INVALID_REPLICA_ASSIGNMENT, m));
    if target.is_empty() {
        return bad("The manual partition assignment includes an empty replica list.".into());
    }
    let mut sorted = target.to_vec();
    sorted.sort_unstable();
    let mut previous = None;
    for b in sorted {
        if !image.brokers.contains_key(&b) {
            return bad(format!("The manual partition assignment includes broker {b}, but no such broker is registered."));
        }
        if previous == Some(b) {
            return bad(format!(
                "The manual partition assignment includes the broker {b} more than once."
            ));
        }
        previous = Some(b);
    }
    Ok(())
}

/// Kafka's `changePartitionReassignment`: the merged replica list, adding and removing.
/// None when the target is what the partition already has and nothing is in progress.
fn change(
    image: &MetadataImage,
    t: &TopicImage,
    partition: i32,
    p: &PartitionRecord,
    target: &[BrokerId],
) -> Option<PartitionChange> {
    if p.replicas == target && !p.is_reassigning() {
        return None;
    }
    let removing = difference(&p.replicas, target);
    let adding = difference(target, &p.replicas);
    let mut replicas = target.to_vec();
    replicas.extend(&removing);
    let next = Target {
        assignment: ReplicaAssignment {
            replicas,
            adding_replicas: adding,
            removing_replicas: removing,
        },
        isr: p.isr.clone(),
    };
    Some(build(image, (t, partition), p, next, "reassignment"))
}

/// Kafka's `cancelPartitionReassignment` with `PartitionReassignmentRevert`.
fn cancel(
    image: &MetadataImage,
    t: &TopicImage,
    partition: i32,
    p: &PartitionRecord,
) -> Result<PartitionChange, Failure> {
    if !p.is_reassigning() {
        return Err((
            errors::NO_REASSIGNMENT_IN_PROGRESS,
            "No partition reassignment is in progress.".into(),
        ));
    }
    let replicas = difference_ordered(&p.replicas, &p.adding_replicas);
    let mut isr = difference_ordered(&p.isr, &p.adding_replicas);
    if isr.is_empty() {
        let Some(first) = replicas.first() else {
            return Err((
                errors::INVALID_REPLICA_ASSIGNMENT,
                "Invalid replica assignment: addingReplicas contains all replicas.".into(),
            ));
        };
        if !unclean_enabled(t) {
            return Err((
                errors::INVALID_REPLICA_ASSIGNMENT,
                format!("Unable to revert partition assignment for {}:{partition} because it would require an unclean leader election.", t.name),
            ));
        }
        tracing::warn!(topic = %t.name, partition, "reverting the reassignment leaves no in-sync replica: unclean election of replica {first}");
        isr.push(*first);
    }
    let next = Target {
        assignment: ReplicaAssignment {
            replicas,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        },
        isr,
    };
    Ok(build(image, (t, partition), p, next, "reassignment-cancel"))
}

fn unclean_enabled(t: &TopicImage) -> bool {
    t.configs
        .get("unclean.leader.election.enable")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// A partition's next assignment and ISR, before completion and election.
pub struct Target {
    pub assignment: ReplicaAssignment,
    pub isr: Vec<BrokerId>,
}

/// Kafka's `PartitionChangeBuilder.build` for what reassignment needs: completes the
/// reassignment when the ISR holds every target, keeps the leader if it stays in the ISR
/// and is active (else the first replica in the ISR that is), and bumps the leader epoch
/// when the leader changes or a replica leaves the replica list. Always one change (the
/// partition epoch moves); `assignment` is set only when the replicas change.
pub fn build(
    image: &MetadataImage,
    (t, partition): (&TopicImage, i32),
    p: &PartitionRecord,
    mut next: Target,
    reason: &str,
) -> PartitionChange {
    if let Some((replicas, isr)) = completed(&next) {
        tracing::info!(topic = %t.name, partition, ?replicas, ?isr, "reassignment complete");
        next = Target {
            assignment: ReplicaAssignment {
                replicas,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            },
            isr,
        };
    }
    let a = &next.assignment;
    let valid = |r: BrokerId| next.isr.contains(&r) && image.is_active(r);
    let leader = if p.leader != NO_LEADER && valid(p.leader) {
        p.leader
    } else {
        a.replicas
            .iter()
            .copied()
            .find(|r| valid(*r))
            .unwrap_or(NO_LEADER)
    };
    let shrinks = p.replicas.iter().any(|r| !a.replicas.contains(r));
    let leader_epoch = if leader != p.leader || shrinks {
        p.leader_epoch + 1
    } else {
        p.leader_epoch
    };
    let unchanged = a.replicas == p.replicas
        && a.adding_replicas == p.adding_replicas
        && a.removing_replicas == p.removing_replicas;
    PartitionChange {
        topic_id: t.id,
        partition,
        leader,
        isr: next.isr.clone(),
        leader_epoch,
        partition_epoch: p.partition_epoch + 1,
        reason: reason.to_string(),
        assignment: (!unchanged).then(|| next.assignment.clone()),
    }
}

/// Kafka's `maybeCompleteReassignment`: the final (replicas, ISR) once the ISR without the
/// removed replicas is not empty and holds every remaining replica.
fn completed(next: &Target) -> Option<(Vec<BrokerId>, Vec<BrokerId>)> {
    let a = &next.assignment;
    if a.adding_replicas.is_empty() && a.removing_replicas.is_empty() {
        return None;
    }
    let isr = difference_ordered(&next.isr, &a.removing_replicas);
    let replicas = difference_ordered(&a.replicas, &a.removing_replicas);
    if isr.is_empty() || replicas.is_empty() || !replicas.iter().all(|r| isr.contains(r)) {
        return None;
    }
    Some((replicas, isr))
}

/// ListPartitionReassignments: the partitions with a reassignment in progress, of every
/// topic (by name) or of the topics and partitions asked (unknown ones are left out, as
/// Kafka does).
pub fn list_reassignments(
    image: &MetadataImage,
    only: Option<&[(String, Vec<i32>)]>,
) -> Vec<(String, Vec<OngoingReassignment>)> {
    let ongoing = |t: &TopicImage, partition: i32| {
        let p = t.partitions.get(usize::try_from(partition).ok()?)?;
        p.is_reassigning().then(|| OngoingReassignment {
            partition,
            replicas: p.replicas.clone(),
            adding_replicas: p.adding_replicas.clone(),
            removing_replicas: p.removing_replicas.clone(),
        })
    };
    let asked: Vec<(&TopicImage, Vec<i32>)> = match only {
        Some(list) => list
            .iter()
            .filter_map(|(name, ps)| image.topic(name).map(|t| (&**t, ps.clone())))
            .collect(),
        None => image
            .topic_ids
            .values()
            .filter_map(|id| image.topics.get(id))
            .map(|t| (&**t, (0..t.partitions.len() as i32).collect()))
            .collect(),
    };
    asked
        .into_iter()
        .map(|(t, ps)| {
            let found: Vec<_> = ps.into_iter().filter_map(|p| ongoing(t, p)).collect();
            (t.name.clone(), found)
        })
        .filter(|(_, found)| !found.is_empty())
        .collect()
}

/// `a` − `b`, sorted (Kafka computes these through a `TreeSet`).
fn difference(a: &[BrokerId], b: &[BrokerId]) -> Vec<BrokerId> {
    let set: BTreeSet<BrokerId> = a.iter().copied().filter(|r| !b.contains(r)).collect();
    set.into_iter().collect()
}

/// `a` − `b`, in `a`'s order.
fn difference_ordered(a: &[BrokerId], b: &[BrokerId]) -> Vec<BrokerId> {
    a.iter().copied().filter(|r| !b.contains(r)).collect()
}

#[cfg(test)]
#[path = "reassignment_tests.rs"]
mod tests;
