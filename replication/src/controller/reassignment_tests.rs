use std::collections::BTreeMap;

use uuid::Uuid;

use super::*;
use crate::controller::decide;
use crate::records::{BrokerRegistration, NO_UNCLEAN_EPOCH};

/// Brokers 1..=4 registered and active; topic "t" with one partition on `replicas`, all in
/// the ISR, led by the first.
fn image_with(replicas: &[BrokerId]) -> MetadataImage {
    let mut image = MetadataImage::default();
    for id in 1..=4 {
        let records = vec![
            MetadataRecord::RegisterBroker(BrokerRegistration {
                broker_id: id,
                incarnation_id: Uuid::new_v4(),
                listeners: vec![],
                inter_broker_listener: "PLAINTEXT".into(),
                rack: None,
                log_dirs: vec![],
            }),
            MetadataRecord::UnfenceBroker {
                broker_id: id,
                broker_epoch: id as i64,
            },
        ];
        assert!(image
            .apply(id as u64, &RecordBatch(records))
            .rejected
            .is_empty());
    }
    let create = MetadataRecord::CreateTopic {
        name: "t".into(),
        topic_id: Uuid::new_v4(),
        partitions: vec![PartitionRecord {
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            leader: replicas[0],
            leader_epoch: 0,
            partition_epoch: 0,
            last_unclean_epoch: NO_UNCLEAN_EPOCH,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }],
        configs: BTreeMap::new(),
    };
    assert!(image
        .apply(10, &RecordBatch(vec![create]))
        .rejected
        .is_empty());
    image
}

fn partition(image: &MetadataImage) -> &PartitionRecord {
    &image.topic("t").unwrap().partitions[0]
}

/// Runs AlterPartitionReassignments for t-0 and applies what it decided; the outcome code.
fn reassign(image: &mut MetadataImage, target: Option<Vec<BrokerId>>, allow_rf: bool) -> i16 {
    let asks = vec![("t".to_string(), vec![(0, target)])];
    let (records, results) = alter_reassignments(image, &asks, allow_rf);
    let index = image.applied_index + 1;
    assert!(image
        .apply(index, &RecordBatch(records))
        .rejected
        .is_empty());
    results[0].partitions[0].code
}

/// The leader's AlterPartition with `isr`, applied; the partition it answered.
fn alter_isr(image: &mut MetadataImage, isr: Vec<BrokerId>) -> PartitionRecord {
    let p = partition(image).clone();
    let req = ControllerRequest::AlterPartition {
        broker_id: p.leader,
        broker_epoch: p.leader as i64,
        topic_id: image.topic("t").unwrap().id,
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr: isr,
    };
    let (records, reply) = decide(image, req).expect("AlterPartition accepted");
    let index = image.applied_index + 1;
    assert!(image
        .apply(index, &RecordBatch(records))
        .rejected
        .is_empty());
    match reply {
        ControllerReply::Partition(answered) => {
            assert_eq!(
                &answered,
                partition(image),
                "the answer is the committed state"
            );
            answered
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_move_adds_first_and_completes_when_every_target_is_in_sync() {
    let mut image = image_with(&[2, 1]);
    assert_eq!(reassign(&mut image, Some(vec![2, 3]), false), 0);
    let p = partition(&image).clone();
    assert_eq!(
        p.replicas,
        vec![2, 3, 1],
        "target, then the replicas being removed"
    );
    assert_eq!(
        (p.adding_replicas.clone(), p.removing_replicas.clone()),
        (vec![3], vec![1])
    );
    assert_eq!(
        (p.leader, p.leader_epoch, p.isr.clone()),
        (2, 0, vec![2, 1])
    );
    let ongoing = list_reassignments(&image, None);
    assert_eq!(ongoing.len(), 1);
    assert_eq!(ongoing[0].1[0].replicas, vec![2, 3, 1]);

    let done = alter_isr(&mut image, vec![2, 1, 3]);
    assert_eq!(done.replicas, vec![2, 3]);
    assert_eq!(
        done.isr,
        vec![2, 3],
        "the removed replica leaves the ISR with the list"
    );
    assert!(!done.is_reassigning());
    assert_eq!(done.leader, 2, "the leader stays");
    assert_eq!(
        done.leader_epoch, 1,
        "a removed replica is fenced by a new leader epoch"
    );
    assert!(list_reassignments(&image, None).is_empty());
}

#[test]
fn a_removed_leader_hands_over_to_the_first_target_in_the_isr() {
    let mut image = image_with(&[1, 2]);
    assert_eq!(reassign(&mut image, Some(vec![3, 2]), false), 0);
    // Not complete while 3 is outside the ISR: an ISR change without it changes only the ISR.
    let p = alter_isr(&mut image, vec![1, 2]);
    assert!(p.is_reassigning());
    assert_eq!((p.leader, p.leader_epoch), (1, 0));
    let done = alter_isr(&mut image, vec![1, 2, 3]);
    assert_eq!(
        (done.replicas.clone(), done.isr.clone()),
        (vec![3, 2], vec![3, 2])
    );
    assert_eq!(
        (done.leader, done.leader_epoch),
        (3, 1),
        "the first target replica in the ISR leads"
    );
}

#[test]
fn a_target_already_in_sync_completes_at_once() {
    let mut image = image_with(&[1, 2, 3]);
    assert_eq!(reassign(&mut image, Some(vec![2, 3]), true), 0);
    let p = partition(&image);
    assert!(!p.is_reassigning());
    assert_eq!(
        (p.replicas.clone(), p.isr.clone(), p.leader),
        (vec![2, 3], vec![2, 3], 2)
    );
    // Reordering only: no replica moves, the leader stays, no new epoch.
    let mut image = image_with(&[1, 2]);
    assert_eq!(reassign(&mut image, Some(vec![2, 1]), false), 0);
    let p = partition(&image);
    assert_eq!(
        (p.replicas.clone(), p.leader, p.leader_epoch),
        (vec![2, 1], 1, 0)
    );
    // The same list again changes nothing.
    let before = image.clone();
    assert_eq!(reassign(&mut image, Some(vec![2, 1]), false), 0);
    assert_eq!(before.topics, image.topics);
}

#[test]
fn cancel_reverts_and_cancelling_nothing_is_no_reassignment_in_progress() {
    let mut image = image_with(&[1, 2]);
    assert_eq!(
        reassign(&mut image, None, false),
        errors::NO_REASSIGNMENT_IN_PROGRESS
    );
    assert_eq!(reassign(&mut image, Some(vec![3, 4]), false), 0);
    assert_eq!(partition(&image).replicas, vec![3, 4, 1, 2]);
    assert_eq!(reassign(&mut image, None, false), 0);
    let p = partition(&image);
    assert_eq!(
        (p.replicas.clone(), p.isr.clone(), p.leader),
        (vec![1, 2], vec![1, 2], 1)
    );
    assert!(!p.is_reassigning());
    assert_eq!(
        reassign(&mut image, None, false),
        errors::NO_REASSIGNMENT_IN_PROGRESS
    );
}

#[test]
fn bad_targets_get_kafkas_errors_and_change_nothing() {
    let image = image_with(&[1, 2]);
    type Case = (&'static str, i32, Option<Vec<BrokerId>>, bool, i16);
    let cases: &[Case] = &[
        (
            "t",
            0,
            Some(vec![]),
            true,
            errors::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            "t",
            0,
            Some(vec![2, 2]),
            true,
            errors::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            "t",
            0,
            Some(vec![2, 9]),
            true,
            errors::INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            "t",
            0,
            Some(vec![1, 2, 3]),
            false,
            errors::INVALID_REPLICATION_FACTOR,
        ),
        (
            "t",
            1,
            Some(vec![1, 2]),
            true,
            errors::UNKNOWN_TOPIC_OR_PARTITION,
        ),
        (
            "t",
            -1,
            Some(vec![1, 2]),
            true,
            errors::UNKNOWN_TOPIC_OR_PARTITION,
        ),
        (
            "nope",
            0,
            Some(vec![1, 2]),
            true,
            errors::UNKNOWN_TOPIC_OR_PARTITION,
        ),
        ("nope", 0, None, true, errors::UNKNOWN_TOPIC_OR_PARTITION),
    ];
    for (topic, p, target, allow_rf, code) in cases {
        let asks = vec![(topic.to_string(), vec![(*p, target.clone())])];
        let (records, results) = alter_reassignments(&image, &asks, *allow_rf);
        let got = &results[0].partitions[0];
        assert_eq!(got.code, *code, "{topic}-{p} {target:?}: {:?}", got.message);
        assert!(got.message.is_some());
        assert!(records.is_empty());
    }
}

#[test]
fn one_request_mixes_outcomes_per_partition() {
    let image = image_with(&[1, 2]);
    let asks = vec![
        (
            "t".to_string(),
            vec![(0, Some(vec![2, 3])), (5, Some(vec![1]))],
        ),
        ("missing".to_string(), vec![(0, None)]),
    ];
    let (records, results) = alter_reassignments(&image, &asks, true);
    assert_eq!(records.len(), 1);
    let codes: Vec<Vec<i16>> = results
        .iter()
        .map(|t| t.partitions.iter().map(|p| p.code).collect())
        .collect();
    assert_eq!(
        codes,
        vec![
            vec![0, errors::UNKNOWN_TOPIC_OR_PARTITION],
            vec![errors::UNKNOWN_TOPIC_OR_PARTITION]
        ]
    );
    // Listing only unknown topics or partitions finds nothing.
    let only = vec![("missing".to_string(), vec![0]), ("t".to_string(), vec![3])];
    assert!(list_reassignments(&image, Some(&only)).is_empty());
}
