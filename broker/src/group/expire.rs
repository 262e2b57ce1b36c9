//! Offset expiry (`offsets.retention.minutes`), Kafka's rules (KIP-211): every
//! `offsets.retention.check.interval.ms` each coordinator shard removes
//! - all committed offsets of a group that has had no members for the retention period
//!   (counted from when it became empty);
//! - offsets of a group that never used group management (standalone commits) whose commit
//!   is older than the retention period;
//! - offsets of a stable consumer group for topics none of its members subscribes to, once
//!   their commit is older than the retention period;
//!
//! and then drops groups left empty with no offsets. What is removed is written to
//! `__consumer_offsets` as tombstones first, so a restart does not bring it back.

use std::rc::Rc;
use std::time::Duration;

use super::coordinator::Coordinator;
use super::state::{now_ms, Group, GroupState};
use super::store::{tombstones, StoredOffset};
use super::{known_subscriptions, persist, OFFSETS_APPEND_RECORDS_MAX};
use crate::shard::Shard;

/// Groups cleaned in one round at most (the rest wait for the next round).
pub const EXPIRE_GROUPS_PER_ROUND_MAX: usize = 10_000;
/// Tries to find a moment with no append in flight before skipping a round.
const EXPIRE_TRIES_MAX: u32 = 50;

/// The offsets of `group` that have expired at `now` (ms since the epoch).
pub fn expired_offsets(group: &Group, now: i64, retention_ms: i64) -> Vec<(String, i32)> {
    let old = |since: i64| now.saturating_sub(since) >= retention_ms;
    let keys = |keep: &dyn Fn(&(String, i32), &StoredOffset) -> bool| {
        group
            .offsets
            .iter()
            .filter(|(k, o)| keep(k, o))
            .map(|(k, _)| k.clone())
            .collect()
    };
    match (group.protocol_type.as_deref(), group.state) {
        (None, _) => keys(&|_, o| old(o.commit_timestamp)),
        (Some(_), GroupState::Empty) if old(group.state_timestamp) => keys(&|_, _| true),
        (Some("consumer"), GroupState::Stable) => match known_subscriptions(group) {
            Some(subscribed) => {
                keys(&|(topic, _), o| !subscribed.contains(topic) && old(o.commit_timestamp))
            }
            // Kafka too expires nothing while the subscriptions are unknown.
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Whether `group` is gone once `expired` offsets are removed (empty, no offsets left).
fn group_ends(group: &Group, expired: usize) -> bool {
    group.state == GroupState::Empty && group.is_empty() && group.offsets.len() == expired
}

/// Runs expiry rounds on this shard's coordinator until the broker stops.
pub async fn run(shard: Rc<Shard>, c: Rc<Coordinator>) {
    let interval = Duration::from_millis(shard.config.offsets_retention_check_interval_ms);
    let retention_ms = shard
        .config
        .offsets_retention_minutes
        .saturating_mul(60_000);
    loop {
        compio::time::sleep(interval).await;
        if shard.stopping.get() {
            return;
        }
        expire_round(&shard, &c, retention_ms).await;
    }
}

/// One round: group by group, computes what expired while no other append to
/// `__consumer_offsets` is in flight (so no commit can land between the decision and its
/// tombstones), writes the tombstones, then forgets the same entries in memory unless a
/// newer commit replaced them meanwhile.
pub async fn expire_round(shard: &Rc<Shard>, c: &Rc<Coordinator>, retention_ms: i64) {
    let ids: Vec<String> = c.groups.borrow().keys().cloned().collect();
    let (mut offsets, mut groups) = (0usize, 0usize);
    for id in ids.into_iter().take(EXPIRE_GROUPS_PER_ROUND_MAX) {
        // Quiet, and room in the append queue: the tombstones below are queued without
        // waiting, so no commit can be queued between this decision and them.
        if !quiet(c).await || !shard.appender.has_room() {
            tracing::debug!(
                shard = shard.id,
                "offsets appends in flight; expiry postponed"
            );
            break;
        }
        let Some((expired, ends)) = decide(c, &id, retention_ms) else {
            continue;
        };
        let records = tombstones(&id, expired.iter().map(|(k, _)| k), ends);
        c.inflight.set(c.inflight.get() + 1);
        let stored = persist(shard, &id, records).await;
        c.inflight.set(c.inflight.get() - 1);
        if let Err(e) = stored {
            tracing::warn!(group = %id, "expiring offsets failed: {e}");
            continue;
        }
        let mut all = c.groups.borrow_mut();
        let Some(group) = all.get_mut(&id) else {
            continue;
        };
        for (key, seen) in &expired {
            if group.offsets.get(key) == Some(seen) {
                group.offsets.remove(key);
                offsets += 1;
            }
        }
        if ends && group_ends(group, 0) {
            all.remove(&id);
            groups += 1;
        } else if ends && group.state == GroupState::Empty && group.is_empty() {
            // A commit landed after the group's tombstone: the log now holds a group with
            // offsets and no metadata, so memory forgets the metadata too.
            group.protocol_type = None;
            group.protocol = None;
            group.leader = None;
            group.generation = 0;
        }
    }
    if offsets + groups > 0 {
        tracing::info!(
            shard = shard.id,
            offsets,
            groups,
            "removed expired offsets and groups"
        );
    }
}

/// Waits (briefly) until no append to `__consumer_offsets` is in flight on this shard.
async fn quiet(c: &Coordinator) -> bool {
    for _ in 0..EXPIRE_TRIES_MAX {
        if c.inflight.get() == 0 {
            return true;
        }
        compio::time::sleep(Duration::from_millis(20)).await;
    }
    c.inflight.get() == 0
}

/// The expired offsets of group `id` (with the values seen) and whether the group ends;
/// `None` when there is nothing to do. At most one append's worth of records.
type Decision = (Vec<((String, i32), StoredOffset)>, bool);

fn decide(c: &Coordinator, id: &str, retention_ms: i64) -> Option<Decision> {
    let groups = c.groups.borrow();
    let group = groups.get(id)?;
    let mut expired = expired_offsets(group, now_ms(), retention_ms);
    expired.truncate(OFFSETS_APPEND_RECORDS_MAX - 1);
    let ends = group_ends(group, expired.len());
    if expired.is_empty() && !ends {
        return None;
    }
    let with_values = expired
        .into_iter()
        .filter_map(|k| group.offsets.get(&k).map(|o| (k, o.clone())))
        .collect();
    Some((with_values, ends))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn offset(commit_timestamp: i64) -> StoredOffset {
        StoredOffset {
            offset: 5,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp,
        }
    }

    fn group(protocol_type: Option<&str>, state: GroupState, state_timestamp: i64) -> Group {
        let mut g = Group::new("g");
        g.protocol_type = protocol_type.map(str::to_string);
        g.state = state;
        g.state_timestamp = state_timestamp;
        g.offsets.insert(("old".into(), 0), offset(0));
        g.offsets.insert(("new".into(), 0), offset(10 * HOUR));
        g
    }

    #[test]
    fn standalone_commits_expire_one_by_one() {
        let g = group(None, GroupState::Empty, 0);
        assert_eq!(
            expired_offsets(&g, 10 * HOUR, 2 * HOUR),
            [("old".into(), 0)]
        );
        assert!(expired_offsets(&g, HOUR, 2 * HOUR).is_empty());
        assert_eq!(expired_offsets(&g, 12 * HOUR, 2 * HOUR).len(), 2);
    }

    #[test]
    fn an_empty_group_expires_whole_once_empty_long_enough() {
        let g = group(Some("consumer"), GroupState::Empty, 9 * HOUR);
        assert!(
            expired_offsets(&g, 10 * HOUR, 2 * HOUR).is_empty(),
            "empty for 1 h only: even the 10 h old commit stays"
        );
        assert_eq!(expired_offsets(&g, 11 * HOUR, 2 * HOUR).len(), 2);
        assert!(group_ends(&g, 2));
        assert!(!group_ends(&g, 1));
    }

    #[test]
    fn a_rebalancing_group_keeps_everything() {
        let g = group(Some("consumer"), GroupState::PreparingRebalance, 0);
        assert!(expired_offsets(&g, 100 * HOUR, HOUR).is_empty());
    }
}
