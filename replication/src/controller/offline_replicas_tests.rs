use std::collections::BTreeMap;

use super::*;
use crate::records::{
    BrokerRegistration, Endpoint, PartitionRecord, RecordBatch, NO_UNCLEAN_EPOCH,
};

fn registration(id: BrokerId) -> MetadataRecord {
    MetadataRecord::RegisterBroker(BrokerRegistration {
        broker_id: id,
        incarnation_id: Uuid::new_v4(),
        listeners: vec![Endpoint {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port: 9092,
        }],
        inter_broker_listener: "PLAINTEXT".into(),
        rack: None,
        log_dirs: vec![],
    })
}

/// Brokers 1..=3 registered at indexes 1..=3 and active; topic `t` with the given partitions
/// (leader, ISR), every one replicated on all three.
fn image(partitions: &[(BrokerId, &[BrokerId])]) -> (MetadataImage, Uuid) {
    let mut image = MetadataImage::default();
    for id in 1..=3 {
        image.apply(id as u64, &RecordBatch(vec![registration(id)]));
        let unfence = MetadataRecord::UnfenceBroker {
            broker_id: id,
            broker_epoch: id as i64,
        };
        image.apply(10 + id as u64, &RecordBatch(vec![unfence]));
    }
    let topic_id = Uuid::new_v4();
    let partitions = partitions
        .iter()
        .map(|(leader, isr)| PartitionRecord {
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader: *leader,
            leader_epoch: 0,
            partition_epoch: 0,
            last_unclean_epoch: NO_UNCLEAN_EPOCH,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        })
        .collect();
    let create = MetadataRecord::CreateTopic {
        name: "t".into(),
        topic_id,
        partitions,
        configs: BTreeMap::new(),
    };
    image.apply(20, &RecordBatch(vec![create]));
    (image, topic_id)
}

#[test]
fn offline_replicas_leave_only_the_reported_partitions_isrs_and_leaderships() {
    let (image, id) = image(&[(1, &[1, 2, 3]), (2, &[1, 2, 3]), (1, &[1, 2, 3]), (1, &[1])]);
    let report = |epoch, partitions: Vec<(Uuid, i32)>| ControllerRequest::OfflineReplicas {
        broker_id: 1,
        broker_epoch: epoch,
        partitions,
    };
    let stale = decide(&image, report(7, vec![(id, 0)]));
    assert_eq!(
        stale.err().map(|e| e.code),
        Some(errors::STALE_BROKER_EPOCH)
    );
    let reported = vec![(id, 0), (id, 1), (id, 3)];
    let (records, reply) = decide(&image, report(1, reported)).unwrap();
    assert!(matches!(reply, ControllerReply::Done));
    let changes: Vec<(i32, BrokerId, Vec<BrokerId>, i32)> = records
        .iter()
        .map(|r| match r {
            MetadataRecord::PartitionChange(c) => {
                (c.partition, c.leader, c.isr.clone(), c.leader_epoch)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    // 0: led by 1, moves to 2; 1: led by 2, 1 leaves its ISR; 2: not reported, untouched;
    // 3: 1 is its only in-sync replica, which stays in the ISR with no leader.
    assert_eq!(
        changes,
        vec![
            (0, 2, vec![2, 3], 1),
            (1, 2, vec![2, 3], 0),
            (3, NO_LEADER, vec![1], 1)
        ]
    );
}
