//! `MetadataImage`: the state every node rebuilds by applying the committed metadata log in
//! order (Kafka's `MetadataImage`). Applying is deterministic and never fails: a record that a
//! check refuses (a stale partition epoch, an unknown broker epoch) is skipped on every node
//! alike and reported in the `ApplyResult`.
//!
//! Topics are behind `Arc`s so a new image shares every unchanged topic with the previous one:
//! publishing an image to the broker costs the changed topics, and the broker finds what
//! changed by pointer comparison.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::records::{
    ApplyResult, BrokerId, BrokerRegistration, MetadataRecord, PartitionChange, PartitionRecord,
    RecordBatch, NO_LEADER, UNCLEAN_ELECTION_REASON,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerState {
    pub registration: BrokerRegistration,
    /// The index of its registration record.
    pub broker_epoch: i64,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

impl BrokerState {
    /// May lead partitions and be added to ISRs.
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }

    /// The endpoint of `listener`, if the broker has it.
    pub fn endpoint(&self, listener: &str) -> Option<&crate::records::Endpoint> {
        self.registration
            .listeners
            .iter()
            .find(|e| e.name == listener)
    }

    /// Where other brokers fetch from.
    pub fn inter_broker_endpoint(&self) -> Option<&crate::records::Endpoint> {
        self.endpoint(&self.registration.inter_broker_listener)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<PartitionRecord>,
    pub configs: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    /// Index of the last entry applied.
    pub applied_index: u64,
    pub brokers: BTreeMap<BrokerId, BrokerState>,
    pub topics: BTreeMap<Uuid, Arc<TopicImage>>,
    pub topic_ids: BTreeMap<String, Uuid>,
    /// Producer ids below this were handed out in blocks.
    pub next_producer_id: i64,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topic_ids.get(name).and_then(|id| self.topics.get(id))
    }

    pub fn partition(&self, topic_id: Uuid, partition: i32) -> Option<&PartitionRecord> {
        let topic = self.topics.get(&topic_id)?;
        topic.partitions.get(usize::try_from(partition).ok()?)
    }

    /// Brokers that may lead and join ISRs.
    pub fn active_brokers(&self) -> impl Iterator<Item = &BrokerState> {
        self.brokers.values().filter(|b| b.is_active())
    }

    pub fn is_active(&self, broker: BrokerId) -> bool {
        self.brokers
            .get(&broker)
            .is_some_and(BrokerState::is_active)
    }

    /// Applies one committed entry's records at `index`.
    pub fn apply(&mut self, index: u64, batch: &RecordBatch) -> ApplyResult {
        let mut result = ApplyResult {
            index,
            rejected: Vec::new(),
        };
        for record in &batch.0 {
            if let Err(why) = self.apply_record(index, record) {
                tracing::warn!(index, %why, "metadata record refused");
                result.rejected.push(why);
            }
        }
        self.applied_index = index;
        result
    }

    fn apply_record(&mut self, index: u64, record: &MetadataRecord) -> Result<(), String> {
        match record {
            MetadataRecord::RegisterBroker(_)
            | MetadataRecord::FenceBroker { .. }
            | MetadataRecord::UnfenceBroker { .. }
            | MetadataRecord::BrokerControlledShutdown { .. } => {
                self.apply_broker_record(index, record)
            }
            MetadataRecord::CreateTopic {
                name,
                topic_id,
                partitions,
                configs,
            } => {
                if self.topic_ids.contains_key(name) || self.topics.contains_key(topic_id) {
                    return Err(format!("topic {name} already exists"));
                }
                self.topic_ids.insert(name.clone(), *topic_id);
                self.topics.insert(
                    *topic_id,
                    Arc::new(TopicImage {
                        name: name.clone(),
                        id: *topic_id,
                        partitions: partitions.clone(),
                        configs: configs.clone(),
                    }),
                );
                Ok(())
            }
            MetadataRecord::AddPartitions {
                topic_id,
                partitions,
            } => self.topic_mut(*topic_id).map(|t| {
                t.partitions.extend(partitions.iter().cloned());
            }),
            MetadataRecord::DeleteTopic { topic_id } => match self.topics.remove(topic_id) {
                Some(t) => {
                    self.topic_ids.remove(&t.name);
                    Ok(())
                }
                None => Err(format!("topic id {topic_id} does not exist")),
            },
            MetadataRecord::PartitionChange(change) => self.apply_partition_change(change),
            MetadataRecord::TopicConfig { topic_id, configs } => self
                .topic_mut(*topic_id)
                .map(|t| t.configs = configs.clone()),
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => {
                if *next_producer_id <= self.next_producer_id {
                    return Err(format!(
                        "producer id block ending at {next_producer_id} is not past {}",
                        self.next_producer_id
                    ));
                }
                self.next_producer_id = *next_producer_id;
                Ok(())
            }
        }
    }

    fn apply_broker_record(&mut self, index: u64, record: &MetadataRecord) -> Result<(), String> {
        match record {
            MetadataRecord::RegisterBroker(reg) => {
                self.brokers.insert(
                    reg.broker_id,
                    BrokerState {
                        registration: reg.clone(),
                        broker_epoch: index as i64,
                        fenced: true,
                        in_controlled_shutdown: false,
                    },
                );
                Ok(())
            }
            MetadataRecord::FenceBroker {
                broker_id,
                broker_epoch,
            } => self.broker_mut(*broker_id, *broker_epoch).map(|b| {
                b.fenced = true;
                b.in_controlled_shutdown = false;
            }),
            MetadataRecord::UnfenceBroker {
                broker_id,
                broker_epoch,
            } => self
                .broker_mut(*broker_id, *broker_epoch)
                .map(|b| b.fenced = false),
            MetadataRecord::BrokerControlledShutdown {
                broker_id,
                broker_epoch,
            } => self
                .broker_mut(*broker_id, *broker_epoch)
                .map(|b| b.in_controlled_shutdown = true),
            other => unreachable!("not a broker record: {other:?}"),
        }
    }

    fn apply_partition_change(&mut self, change: &PartitionChange) -> Result<(), String> {
        let topic = self.topic_mut(change.topic_id)?;
        let name = topic.name.clone();
        let p = usize::try_from(change.partition)
            .ok()
            .and_then(|i| topic.partitions.get_mut(i))
            .ok_or_else(|| format!("{name}-{} does not exist", change.partition))?;
        if change.partition_epoch != p.partition_epoch + 1 {
            return Err(format!(
                "{name}-{}: change for partition epoch {} but the partition is at {}",
                change.partition, change.partition_epoch, p.partition_epoch
            ));
        }
        if change.leader_epoch < p.leader_epoch {
            return Err(format!(
                "{name}-{}: leader epoch {} is older than {}",
                change.partition, change.leader_epoch, p.leader_epoch
            ));
        }
        assert!(
            change.leader == NO_LEADER || change.isr.contains(&change.leader),
            "a partition's leader must be in its ISR: {change:?}"
        );
        if let Some(a) = &change.assignment {
            let outside = change.isr.iter().find(|r| !a.replicas.contains(r));
            assert!(
                outside.is_none(),
                "a partition's ISR must be among its replicas: {change:?}"
            );
            p.replicas = a.replicas.clone();
            p.adding_replicas = a.adding_replicas.clone();
            p.removing_replicas = a.removing_replicas.clone();
        }
        p.leader = change.leader;
        p.isr = change.isr.clone();
        p.leader_epoch = change.leader_epoch;
        p.partition_epoch = change.partition_epoch;
        if change.reason == UNCLEAN_ELECTION_REASON {
            p.last_unclean_epoch = change.leader_epoch;
        }
        Ok(())
    }

    fn broker_mut(&mut self, id: BrokerId, epoch: i64) -> Result<&mut BrokerState, String> {
        match self.brokers.get_mut(&id) {
            Some(b) if b.broker_epoch == epoch => Ok(b),
            Some(b) => Err(format!(
                "broker {id} epoch {epoch} is stale (registered with {})",
                b.broker_epoch
            )),
            None => Err(format!("broker {id} is not registered")),
        }
    }

    fn topic_mut(&mut self, id: Uuid) -> Result<&mut TopicImage, String> {
        self.topics
            .get_mut(&id)
            .map(Arc::make_mut)
            .ok_or_else(|| format!("topic id {id} does not exist"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Endpoint;
    use crate::records::NO_UNCLEAN_EPOCH;

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

    #[test]
    fn broker_epoch_is_the_registration_index_and_stale_epochs_are_refused() {
        let mut image = MetadataImage::default();
        image.apply(7, &RecordBatch(vec![registration(1)]));
        assert_eq!(image.brokers[&1].broker_epoch, 7);
        assert!(image.brokers[&1].fenced);
        let stale = image.apply(
            8,
            &RecordBatch(vec![MetadataRecord::UnfenceBroker {
                broker_id: 1,
                broker_epoch: 3,
            }]),
        );
        assert_eq!(stale.rejected.len(), 1);
        assert!(image.brokers[&1].fenced);
        image.apply(
            9,
            &RecordBatch(vec![MetadataRecord::UnfenceBroker {
                broker_id: 1,
                broker_epoch: 7,
            }]),
        );
        assert!(image.is_active(1));
    }

    #[test]
    fn partition_changes_apply_only_on_the_next_partition_epoch() {
        let mut image = MetadataImage::default();
        let id = Uuid::new_v4();
        image.apply(
            1,
            &RecordBatch(vec![MetadataRecord::CreateTopic {
                name: "t".into(),
                topic_id: id,
                partitions: vec![PartitionRecord {
                    replicas: vec![1, 2, 3],
                    isr: vec![1, 2, 3],
                    leader: 1,
                    leader_epoch: 0,
                    partition_epoch: 0,
                    last_unclean_epoch: NO_UNCLEAN_EPOCH,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                }],
                configs: BTreeMap::new(),
            }]),
        );
        let before = image.clone();
        let change = |partition_epoch| {
            RecordBatch(vec![MetadataRecord::PartitionChange(PartitionChange {
                topic_id: id,
                partition: 0,
                leader: 2,
                isr: vec![2, 3],
                leader_epoch: 1,
                partition_epoch,
                reason: "test".into(),
                assignment: None,
            })])
        };
        assert_eq!(image.apply(2, &change(5)).rejected.len(), 1);
        assert_eq!(image.topics, before.topics);
        assert!(image.apply(3, &change(1)).rejected.is_empty());
        let p = image.partition(id, 0).unwrap();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 1, 1));
        assert_eq!(p.isr, vec![2, 3]);
        // The previous image still shares nothing it should not: it kept its own topic.
        assert_eq!(before.partition(id, 0).unwrap().leader, 1);
    }
}
