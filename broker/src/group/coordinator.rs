//! The classic group coordinator of one shard: the groups whose `__consumer_offsets`
//! partition this shard owns, their state machine (Kafka's Empty → PreparingRebalance →
//! CompletingRebalance → Stable), session and rebalance timers, committed offsets.
//!
//! Lives on one shard (`Rc`, `RefCell`, never locked). A JoinGroup or SyncGroup that has to
//! wait parks a oneshot in its member; the event that completes the phase (the last join, the
//! leader's sync, a timer) answers every parked request.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_channel::oneshot;
use kafka_protocol::error::ResponseError;

use super::state::{now_ms, Group, GroupState, JoinOutcome, Member, SyncOutcome};
use super::store::{encode_group, encode_key, StoredKey};
use super::{persist, JoinArgs, SyncArgs};
use crate::shard::Shard;

pub const NONE: i16 = 0;

pub fn code(e: ResponseError) -> i16 {
    e.code()
}

/// The groups coordinated by one shard. Lives on that shard only.
#[derive(Default)]
pub struct Coordinator {
    pub groups: RefCell<HashMap<String, Group>>,
    incarnation: Cell<u64>,
    /// True once this shard's `__consumer_offsets` partitions are loaded.
    pub loaded: Cell<bool>,
    /// Appends to `__consumer_offsets` whose effect is not yet in `groups`.
    pub inflight: Cell<usize>,
}

enum Joined {
    Now(JoinOutcome),
    Wait(oneshot::Receiver<JoinOutcome>),
}

impl Coordinator {
    pub fn next_incarnation(&self) -> u64 {
        self.incarnation.set(self.incarnation.get() + 1);
        self.incarnation.get()
    }

    pub async fn join(self: &Rc<Self>, shard: &Rc<Shard>, args: JoinArgs) -> JoinOutcome {
        let c = &shard.config;
        if args.session_timeout_ms < c.group_min_session_timeout_ms
            || args.session_timeout_ms > c.group_max_session_timeout_ms
        {
            return JoinOutcome::error(code(ResponseError::InvalidSessionTimeout), &args.member_id);
        }
        let joined = {
            let mut groups = self.groups.borrow_mut();
            if args.member_id.is_empty() || groups.contains_key(&args.group) {
                let group = groups
                    .entry(args.group.clone())
                    .or_insert_with(|| Group::new(&args.group));
                self.join_group(shard, group, args)
            } else {
                Joined::Now(JoinOutcome::error(
                    code(ResponseError::UnknownMemberId),
                    &args.member_id,
                ))
            }
        };
        match joined {
            Joined::Now(o) => o,
            Joined::Wait(rx) => rx.await.unwrap_or_else(|_| {
                JoinOutcome::error(code(ResponseError::CoordinatorNotAvailable), "")
            }),
        }
    }

    fn join_group(self: &Rc<Self>, shard: &Rc<Shard>, group: &mut Group, args: JoinArgs) -> Joined {
        let fail = |e: ResponseError| Joined::Now(JoinOutcome::error(code(e), &args.member_id));
        if group.state == GroupState::Dead {
            return fail(ResponseError::CoordinatorNotAvailable);
        }
        if !group.supports(&args.protocol_type, &args.protocols) {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        if !args.member_id.is_empty() {
            return self.join_known(shard, group, args);
        }
        let member_id = format!("{}-{}", args.client_id, uuid::Uuid::new_v4());
        if let Some(old) = args
            .instance_id
            .as_ref()
            .and_then(|i| group.static_members.get(i).cloned())
        {
            return self.rejoin_static(shard, group, args, old, member_id);
        }
        if args.require_known_member && args.instance_id.is_none() {
            group.pending_members.insert(member_id.clone());
            return Joined::Now(JoinOutcome::error(
                code(ResponseError::MemberIdRequired),
                &member_id,
            ));
        }
        Joined::Wait(self.add_member(shard, group, args, member_id))
    }

    fn join_known(self: &Rc<Self>, shard: &Rc<Shard>, group: &mut Group, args: JoinArgs) -> Joined {
        let id = args.member_id.clone();
        let fail = |e: ResponseError| Joined::Now(JoinOutcome::error(code(e), &id));
        if group.pending_members.remove(&id) {
            return Joined::Wait(self.add_member(shard, group, args, id.clone()));
        }
        if !group.members.contains_key(&id) {
            return fail(ResponseError::UnknownMemberId);
        }
        if let Some(i) = &args.instance_id {
            if group.static_members.get(i) != Some(&id) {
                return fail(ResponseError::FencedInstanceId);
            }
        }
        let state = group.state;
        let is_leader = group.leader.as_deref() == Some(id.as_str());
        let m = group.members.get_mut(&id).expect("checked above");
        let changed = m.protocols != args.protocols;
        m.protocols = args.protocols;
        m.session_timeout_ms = args.session_timeout_ms;
        m.rebalance_timeout_ms = args.rebalance_timeout_ms;
        m.session_deadline = deadline_ms(args.session_timeout_ms);
        match state {
            GroupState::CompletingRebalance if !changed => Joined::Now(current(group, &id)),
            GroupState::Stable if !changed && !is_leader => Joined::Now(current(group, &id)),
            GroupState::Empty | GroupState::Dead => fail(ResponseError::UnknownMemberId),
            _ => {
                let (tx, rx) = oneshot::channel();
                m.join_waiter = Some(tx);
                if state == GroupState::PreparingRebalance {
                    self.try_complete_join(shard, group);
                } else {
                    self.prepare_rebalance(shard, group);
                }
                Joined::Wait(rx)
            }
        }
    }

    /// A static member (KIP-345) restarted: it takes over its old member's place and
    /// assignment under a new member id, without a rebalance when the group is stable.
    fn rejoin_static(
        self: &Rc<Self>,
        shard: &Rc<Shard>,
        group: &mut Group,
        args: JoinArgs,
        old: String,
        member_id: String,
    ) -> Joined {
        let Some(mut m) = group.members.remove(&old) else {
            group
                .static_members
                .remove(args.instance_id.as_deref().unwrap_or_default());
            return Joined::Wait(self.add_member(shard, group, args, member_id));
        };
        let fenced = code(ResponseError::FencedInstanceId);
        if let Some(w) = m.join_waiter.take() {
            let _ = w.send(JoinOutcome::error(fenced, &old));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(SyncOutcome {
                error: fenced,
                ..SyncOutcome::default()
            });
        }
        let changed = m.protocols != args.protocols;
        m.id = member_id.clone();
        m.protocols = args.protocols;
        m.client_id = args.client_id;
        m.client_host = args.client_host;
        m.session_timeout_ms = args.session_timeout_ms;
        m.rebalance_timeout_ms = args.rebalance_timeout_ms;
        m.session_deadline = deadline_ms(args.session_timeout_ms);
        m.incarnation = self.next_incarnation();
        let incarnation = m.incarnation;
        if group.leader.as_deref() == Some(old.as_str()) {
            group.leader = Some(member_id.clone());
        }
        if let Some(i) = &m.instance_id {
            group.static_members.insert(i.clone(), member_id.clone());
        }
        group.members.insert(member_id.clone(), m);
        self.arm_session(shard, &group.id, &member_id, incarnation);
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance if !changed => {
                Joined::Now(current(group, &member_id))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = group.members.get_mut(&member_id) {
                    m.join_waiter = Some(tx);
                }
                match group.state {
                    GroupState::PreparingRebalance => self.try_complete_join(shard, group),
                    _ => self.prepare_rebalance(shard, group),
                }
                Joined::Wait(rx)
            }
        }
    }

    fn add_member(
        self: &Rc<Self>,
        shard: &Rc<Shard>,
        group: &mut Group,
        args: JoinArgs,
        member_id: String,
    ) -> oneshot::Receiver<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        let incarnation = self.next_incarnation();
        if group.members.is_empty() {
            group.protocol_type = Some(args.protocol_type.clone());
        }
        if let Some(i) = &args.instance_id {
            group.static_members.insert(i.clone(), member_id.clone());
        }
        group.members.insert(
            member_id.clone(),
            Member {
                id: member_id.clone(),
                instance_id: args.instance_id,
                client_id: args.client_id,
                client_host: args.client_host,
                session_timeout_ms: args.session_timeout_ms,
                rebalance_timeout_ms: args.rebalance_timeout_ms,
                protocol_type: args.protocol_type,
                protocols: args.protocols,
                assignment: Bytes::new(),
                join_waiter: Some(tx),
                sync_waiter: None,
                session_deadline: deadline_ms(args.session_timeout_ms),
                incarnation,
            },
        );
        self.arm_session(shard, &group.id, &member_id, incarnation);
        match group.state {
            GroupState::PreparingRebalance => self.try_complete_join(shard, group),
            _ => self.prepare_rebalance(shard, group),
        }
        rx
    }

    /// Starts a rebalance: members must rejoin within the rebalance timeout. A group that was
    /// empty first waits `group.initial.rebalance.delay.ms` for more members.
    pub fn prepare_rebalance(self: &Rc<Self>, shard: &Rc<Shard>, group: &mut Group) {
        if group.state == GroupState::CompletingRebalance {
            for m in group.members.values_mut() {
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncOutcome {
                        error: code(ResponseError::RebalanceInProgress),
                        ..SyncOutcome::default()
                    });
                }
            }
        }
        let was_empty = group.state == GroupState::Empty;
        group.transition(GroupState::PreparingRebalance);
        group.rebalance_epoch += 1;
        let rebalance_ms = group.rebalance_timeout_ms();
        let delay_ms = if was_empty {
            shard
                .config
                .group_initial_rebalance_delay_ms
                .min(rebalance_ms)
        } else {
            rebalance_ms
        };
        group.initial_delay = was_empty && delay_ms > 0;
        tracing::debug!(group = %group.id, generation = group.generation, "preparing rebalance");
        self.arm_rebalance(shard, &group.id, group.rebalance_epoch, delay_ms);
        self.try_complete_join(shard, group);
    }

    fn arm_rebalance(self: &Rc<Self>, shard: &Rc<Shard>, group: &str, epoch: u64, ms: u64) {
        let (me, shard, group) = (self.clone(), shard.clone(), group.to_string());
        compio::runtime::spawn(async move {
            compio::time::sleep(Duration::from_millis(ms)).await;
            me.rebalance_timer(&shard, &group, epoch);
        })
        .detach();
    }

    fn rebalance_timer(self: &Rc<Self>, shard: &Rc<Shard>, group_id: &str, epoch: u64) {
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(group_id) else {
            return;
        };
        if group.rebalance_epoch != epoch || group.state != GroupState::PreparingRebalance {
            return;
        }
        if group.initial_delay {
            group.initial_delay = false;
            if !group.all_joined() {
                let ms = group.rebalance_timeout_ms();
                self.arm_rebalance(shard, group_id, epoch, ms);
                return;
            }
        }
        self.complete_join(shard, group);
    }

    pub fn try_complete_join(self: &Rc<Self>, shard: &Rc<Shard>, group: &mut Group) {
        if group.state == GroupState::PreparingRebalance
            && !group.initial_delay
            && group.all_joined()
        {
            self.complete_join(shard, group);
        }
    }

    /// Ends the join phase: members that did not rejoin are dropped, the generation moves
    /// on, every waiting JoinGroup is answered (the leader with the members' metadata).
    fn complete_join(self: &Rc<Self>, shard: &Rc<Shard>, group: &mut Group) {
        let gone: Vec<String> = group
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            drop_member(group, &id);
        }
        group.pending_members.clear();
        group.generation += 1;
        if group.members.is_empty() {
            group.protocol = None;
            group.leader = None;
            group.transition(GroupState::Empty);
            self.persist_group(shard, group);
            return;
        }
        group.protocol = group.select_protocol();
        if !group
            .leader
            .as_ref()
            .is_some_and(|l| group.members.contains_key(l))
        {
            group.leader = group.members.keys().next().cloned();
        }
        group.transition(GroupState::CompletingRebalance);
        tracing::debug!(group = %group.id, generation = group.generation, members = group.members.len(), "join complete");
        let ids: Vec<String> = group.members.keys().cloned().collect();
        for id in ids {
            let outcome = current(group, &id);
            let m = group.members.get_mut(&id).expect("listed");
            m.session_deadline = deadline_ms(m.session_timeout_ms);
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(outcome);
            }
        }
    }

    /// Writes the group's metadata in the background (transitions to Empty).
    fn persist_group(self: &Rc<Self>, shard: &Rc<Shard>, group: &Group) {
        let key = encode_key(&StoredKey::Group {
            group: group.id.clone(),
        });
        let value = encode_group(&group.stored());
        let (me, shard, id) = (self.clone(), shard.clone(), group.id.clone());
        me.inflight.set(me.inflight.get() + 1);
        compio::runtime::spawn(async move {
            if let Err(e) = persist(&shard, &id, vec![(key, Some(value))]).await {
                tracing::warn!(group = %id, "storing group metadata failed: {e}");
            }
            me.inflight.set(me.inflight.get() - 1);
        })
        .detach();
    }

    /// One timer per member: wakes at its session deadline; a heartbeat moves the deadline,
    /// so the timer sleeps again until the new one.
    pub fn arm_session(self: &Rc<Self>, shard: &Rc<Shard>, group: &str, member: &str, inc: u64) {
        let (me, shard) = (self.clone(), shard.clone());
        let (group, member) = (group.to_string(), member.to_string());
        compio::runtime::spawn(async move {
            loop {
                let deadline = {
                    let mut groups = me.groups.borrow_mut();
                    let Some(g) = groups.get_mut(&group) else { return };
                    let Some(m) = g.members.get_mut(&member) else { return };
                    if m.incarnation != inc {
                        return;
                    }
                    if m.join_waiter.is_some() && Instant::now() >= m.session_deadline {
                        // Waiting in a join: the rebalance timeout bounds it instead.
                        m.session_deadline = deadline_ms(m.session_timeout_ms);
                    }
                    if Instant::now() >= m.session_deadline {
                        tracing::info!(group = %group, member = %member, "session expired; removing member");
                        me.remove_member(&shard, g, &member);
                        return;
                    }
                    m.session_deadline
                };
                compio::time::sleep_until(deadline).await;
            }
        })
        .detach();
    }

    /// A member left or expired: the others rebalance.
    pub fn remove_member(self: &Rc<Self>, shard: &Rc<Shard>, group: &mut Group, id: &str) {
        drop_member(group, id);
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(shard, group)
            }
            GroupState::PreparingRebalance => self.try_complete_join(shard, group),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    pub async fn sync(self: &Rc<Self>, shard: &Rc<Shard>, args: SyncArgs) -> SyncOutcome {
        let fail = |e: ResponseError| SyncOutcome {
            error: code(e),
            ..SyncOutcome::default()
        };
        let (rx, store) = {
            let mut groups = self.groups.borrow_mut();
            let Some(group) = groups.get_mut(&args.group) else {
                return fail(ResponseError::UnknownMemberId);
            };
            if let Err(e) = check_member(
                group,
                &args.member_id,
                args.instance_id.as_deref(),
                args.generation,
            ) {
                return fail(e);
            }
            if args
                .protocol_type
                .as_ref()
                .is_some_and(|p| Some(p) != group.protocol_type.as_ref())
                || args
                    .protocol_name
                    .as_ref()
                    .is_some_and(|p| Some(p) != group.protocol.as_ref())
            {
                return fail(ResponseError::InconsistentGroupProtocol);
            }
            let m = group.members.get_mut(&args.member_id).expect("checked");
            m.session_deadline = deadline_ms(m.session_timeout_ms);
            match group.state {
                GroupState::Empty | GroupState::Dead => {
                    return fail(ResponseError::UnknownMemberId)
                }
                GroupState::PreparingRebalance => return fail(ResponseError::RebalanceInProgress),
                GroupState::Stable => return sync_outcome(group, &args.member_id),
                GroupState::CompletingRebalance => {}
            }
            let (tx, rx) = oneshot::channel();
            m.sync_waiter = Some(tx);
            let mut store = None;
            if group.leader.as_deref() == Some(args.member_id.as_str()) {
                let given: HashMap<String, Bytes> = args.assignments.into_iter().collect();
                for m in group.members.values_mut() {
                    m.assignment = given.get(&m.id).cloned().unwrap_or_default();
                }
                store = Some((group.generation, encode_group(&group.stored())));
            }
            (rx, store)
        };
        if let Some((generation, value)) = store {
            self.store_assignment(shard, &args.group, generation, value)
                .await;
        }
        rx.await
            .unwrap_or_else(|_| fail(ResponseError::RebalanceInProgress))
    }

    /// The leader's assignment is stored, then every member's SyncGroup is answered.
    async fn store_assignment(
        self: &Rc<Self>,
        shard: &Rc<Shard>,
        id: &str,
        generation: i32,
        value: Bytes,
    ) {
        let key = encode_key(&StoredKey::Group {
            group: id.to_string(),
        });
        self.inflight.set(self.inflight.get() + 1);
        let stored = persist(shard, id, vec![(key, Some(value))]).await;
        self.inflight.set(self.inflight.get() - 1);
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(id) else {
            return;
        };
        if group.generation != generation || group.state != GroupState::CompletingRebalance {
            return;
        }
        if let Err(e) = stored {
            tracing::warn!(group = %id, "storing the assignment failed: {e}; rebalancing");
            self.prepare_rebalance(shard, group);
            return;
        }
        group.transition(GroupState::Stable);
        let ids: Vec<String> = group.members.keys().cloned().collect();
        for m_id in ids {
            let outcome = sync_outcome(group, &m_id);
            if let Some(w) = group
                .members
                .get_mut(&m_id)
                .and_then(|m| m.sync_waiter.take())
            {
                let _ = w.send(outcome);
            }
        }
    }

    pub fn heartbeat(
        &self,
        group: &str,
        member: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> i16 {
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(group) else {
            return code(ResponseError::UnknownMemberId);
        };
        if let Err(e) = check_member(group, member, instance, generation) {
            return code(e);
        }
        let m = group.members.get_mut(member).expect("checked");
        m.session_deadline = deadline_ms(m.session_timeout_ms);
        match group.state {
            GroupState::Empty | GroupState::Dead => code(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => code(ResponseError::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => NONE,
        }
    }

    /// LeaveGroup for each (member id, instance id); returns (top-level error, per member).
    pub fn leave(
        self: &Rc<Self>,
        shard: &Rc<Shard>,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> (i16, Vec<i16>) {
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(group_id) else {
            let unknown = code(ResponseError::UnknownMemberId);
            return (unknown, vec![unknown; members.len()]);
        };
        let mut errors = Vec::with_capacity(members.len());
        for (member, instance) in members {
            let id = match instance {
                Some(i) => match group.static_members.get(i) {
                    Some(known) if member.is_empty() || known == member => known.clone(),
                    Some(_) => {
                        errors.push(code(ResponseError::FencedInstanceId));
                        continue;
                    }
                    None => member.clone(),
                },
                None => member.clone(),
            };
            if group.pending_members.remove(&id) {
                errors.push(NONE);
            } else if group.members.contains_key(&id) {
                tracing::info!(group = group_id, member = %id, "member left");
                self.remove_member(shard, group, &id);
                errors.push(NONE);
            } else {
                errors.push(code(ResponseError::UnknownMemberId));
            }
        }
        (NONE, errors)
    }

    pub fn new_loaded() -> Coordinator {
        Coordinator::default()
    }

    pub fn now_ms() -> i64 {
        now_ms()
    }
}

/// Removes a member from the group's tables (no state change).
fn drop_member(group: &mut Group, id: &str) {
    if let Some(m) = group.members.remove(id) {
        if let Some(i) = &m.instance_id {
            if group.static_members.get(i).map(String::as_str) == Some(id) {
                group.static_members.remove(i);
            }
        }
        if let Some(w) = m.join_waiter {
            let _ = w.send(JoinOutcome::error(code(ResponseError::UnknownMemberId), id));
        }
    }
    if group.leader.as_deref() == Some(id) {
        group.leader = None;
    }
}

/// Checks a member against the group: known, not fenced, right generation.
pub fn check_member(
    group: &Group,
    member: &str,
    instance: Option<&str>,
    generation: i32,
) -> Result<(), ResponseError> {
    if !group.members.contains_key(member) {
        return Err(ResponseError::UnknownMemberId);
    }
    if let Some(i) = instance {
        if group.static_members.get(i).map(String::as_str) != Some(member) {
            return Err(ResponseError::FencedInstanceId);
        }
    }
    if generation != group.generation {
        return Err(ResponseError::IllegalGeneration);
    }
    Ok(())
}

/// The current generation as a JoinGroup answer for `member` (members only for the leader).
fn current(group: &Group, member: &str) -> JoinOutcome {
    let leader = group.leader.clone().unwrap_or_default();
    let protocol = group.protocol.clone().unwrap_or_default();
    let members = if leader == member {
        group
            .members
            .values()
            .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(&protocol)))
            .collect()
    } else {
        Vec::new()
    };
    JoinOutcome {
        error: NONE,
        generation: group.generation,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol.clone(),
        leader,
        member_id: member.to_string(),
        members,
    }
}

fn sync_outcome(group: &Group, member: &str) -> SyncOutcome {
    SyncOutcome {
        error: NONE,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol.clone(),
        assignment: group
            .members
            .get(member)
            .map(|m| m.assignment.clone())
            .unwrap_or_default(),
    }
}

pub fn deadline_ms(ms: i32) -> Instant {
    Instant::now() + Duration::from_millis(ms.max(0) as u64)
}
