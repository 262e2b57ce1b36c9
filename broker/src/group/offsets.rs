//! Committed offsets and the group admin operations of the coordinator: OffsetCommit,
//! OffsetFetch, DescribeGroups, ListGroups, DeleteGroups, OffsetDelete.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;

use super::coordinator::{check_member, code, deadline_ms, Coordinator, NONE};
use super::state::{Group, GroupState};
use super::store::{encode_key, encode_offset, tombstones, StoredKey, StoredOffset};
use super::{persist, CommitArgs, DescribedGroupOut, ListedGroupOut};
use crate::shard::Shard;

/// Kafka's `offset.metadata.max.bytes` default.
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;

impl Coordinator {
    /// Returns one error code per offset, in order.
    pub async fn commit(self: &Rc<Self>, shard: &Rc<Shard>, args: CommitArgs) -> Vec<i16> {
        let n = args.offsets.len();
        if let Err(e) = self.check_commit(&args) {
            return vec![code(e); n];
        }
        let mut errors = vec![NONE; n];
        let mut records = Vec::new();
        for (i, (topic, partition, value)) in args.offsets.iter().enumerate() {
            if value.metadata.len() > OFFSET_METADATA_BYTES_MAX {
                errors[i] = code(ResponseError::OffsetMetadataTooLarge);
                continue;
            }
            let key = StoredKey::Offset {
                group: args.group.clone(),
                topic: topic.clone(),
                partition: *partition,
            };
            records.push((encode_key(&key), Some(encode_offset(value))));
        }
        if records.is_empty() {
            return errors;
        }
        self.inflight.set(self.inflight.get() + 1);
        let stored = persist(shard, &args.group, records).await;
        if let Err(e) = &stored {
            tracing::warn!(group = %args.group, "storing offsets failed: {e}");
        }
        let mut groups = self.groups.borrow_mut();
        let group = groups
            .entry(args.group.clone())
            .or_insert_with(|| Group::new(&args.group));
        for (i, (topic, partition, value)) in args.offsets.into_iter().enumerate() {
            if errors[i] != NONE {
                continue;
            }
            match &stored {
                Ok(()) => {
                    group.offsets.insert((topic, partition), value);
                }
                Err(_) => errors[i] = code(ResponseError::CoordinatorNotAvailable),
            }
        }
        self.inflight.set(self.inflight.get() - 1);
        errors
    }

    fn check_commit(&self, args: &CommitArgs) -> Result<(), ResponseError> {
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(&args.group) else {
            return if args.generation < 0 {
                Ok(())
            } else {
                Err(ResponseError::IllegalGeneration)
            };
        };
        if args.generation < 0 && args.member_id.is_empty() && group.is_empty() {
            return Ok(());
        }
        check_member(
            group,
            &args.member_id,
            args.instance_id.as_deref(),
            args.generation,
        )?;
        if group.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        if let Some(m) = group.members.get_mut(&args.member_id) {
            m.session_deadline = deadline_ms(m.session_timeout_ms);
        }
        Ok(())
    }

    /// The committed offsets of `partitions` (all of the group's when `None`).
    pub fn fetch_offsets(
        &self,
        group: &str,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Vec<(String, i32, Option<StoredOffset>)> {
        let groups = self.groups.borrow();
        let offsets = groups.get(group).map(|g| &g.offsets);
        match partitions {
            Some(list) => list
                .into_iter()
                .map(|(t, p)| {
                    let found = offsets.and_then(|o| o.get(&(t.clone(), p)).cloned());
                    (t, p, found)
                })
                .collect(),
            None => offsets
                .into_iter()
                .flatten()
                .map(|((t, p), o)| (t.clone(), *p, Some(o.clone())))
                .collect(),
        }
    }

    pub fn describe(&self, id: &str) -> DescribedGroupOut {
        let groups = self.groups.borrow();
        let Some(group) = groups.get(id) else {
            return DescribedGroupOut {
                group_id: id.to_string(),
                state: GroupState::Dead.name().to_string(),
                ..DescribedGroupOut::default()
            };
        };
        let protocol = group.protocol.clone().unwrap_or_default();
        let stable = group.state == GroupState::Stable;
        DescribedGroupOut {
            group_id: id.to_string(),
            state: group.state.name().to_string(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: group
                .members
                .values()
                .map(|m| {
                    let (meta, assignment) = if stable {
                        (m.metadata(&protocol), m.assignment.clone())
                    } else {
                        Default::default()
                    };
                    (
                        m.id.clone(),
                        m.instance_id.clone(),
                        m.client_id.clone(),
                        m.client_host.clone(),
                        meta,
                        assignment,
                    )
                })
                .collect(),
            ..DescribedGroupOut::default()
        }
    }

    pub fn list(&self) -> Vec<ListedGroupOut> {
        self.groups
            .borrow()
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| ListedGroupOut {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name().to_string(),
            })
            .collect()
    }

    /// DeleteGroups for one group: only an empty group; its offsets and metadata get
    /// tombstones.
    pub async fn delete_group(self: &Rc<Self>, shard: &Rc<Shard>, id: &str) -> i16 {
        let records = {
            let groups = self.groups.borrow();
            let Some(group) = groups.get(id) else {
                return code(ResponseError::GroupIdNotFound);
            };
            if !group.is_empty() || group.state != GroupState::Empty {
                return code(ResponseError::NonEmptyGroup);
            }
            tombstones(id, group.offsets.keys(), true)
        };
        self.inflight.set(self.inflight.get() + 1);
        let stored = persist(shard, id, records).await;
        let result = match stored {
            Ok(()) => {
                let mut groups = self.groups.borrow_mut();
                if groups.get(id).is_some_and(|g| g.is_empty()) {
                    groups.remove(id);
                }
                NONE
            }
            Err(e) => {
                tracing::warn!(group = id, "deleting group failed: {e}");
                code(ResponseError::CoordinatorNotAvailable)
            }
        };
        self.inflight.set(self.inflight.get() - 1);
        result
    }

    /// OffsetDelete: (group error, per-partition errors). Partitions of topics the group's
    /// members subscribe to are refused with GROUP_SUBSCRIBED_TO_TOPIC.
    pub async fn delete_offsets(
        self: &Rc<Self>,
        shard: &Rc<Shard>,
        id: &str,
        partitions: Vec<(String, i32)>,
    ) -> (i16, Vec<i16>) {
        let (records, errors) = {
            let groups = self.groups.borrow();
            let Some(group) = groups.get(id) else {
                return (code(ResponseError::GroupIdNotFound), vec![]);
            };
            let subscribed = super::subscribed_topics(group);
            let mut records = Vec::new();
            let mut errors = Vec::new();
            for (topic, partition) in &partitions {
                if subscribed.contains(topic) {
                    errors.push(code(ResponseError::GroupSubscribedToTopic));
                    continue;
                }
                errors.push(NONE);
                if group.offsets.contains_key(&(topic.clone(), *partition)) {
                    let key = StoredKey::Offset {
                        group: id.to_string(),
                        topic: topic.clone(),
                        partition: *partition,
                    };
                    records.push((encode_key(&key), None));
                }
            }
            (records, errors)
        };
        if records.is_empty() {
            return (NONE, errors);
        }
        self.inflight.set(self.inflight.get() + 1);
        let stored = persist(shard, id, records).await;
        self.inflight.set(self.inflight.get() - 1);
        if let Err(e) = stored {
            tracing::warn!(group = id, "deleting offsets failed: {e}");
            return (code(ResponseError::CoordinatorNotAvailable), vec![]);
        }
        if let Some(group) = self.groups.borrow_mut().get_mut(id) {
            for ((topic, partition), e) in partitions.into_iter().zip(&errors) {
                if *e == NONE {
                    group.offsets.remove(&(topic, partition));
                }
            }
        }
        (NONE, errors)
    }
}
