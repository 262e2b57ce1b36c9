//! A fault struck by `verify` itself, so the moment of the fault and the acknowledgements
//! after it are taken on one clock: at `after` into the run, the broker then leading
//! `partition` (Metadata asked at that moment), or with [`FaultTarget::Controller`] the
//! metadata quorum's leader (DescribeQuorum asked at that moment), gets `signal`, by the pid
//! the caller gave for its node id. From then on the first acknowledgement of each partition that broker led,
//! coming from another broker, ends that partition's failover (issue 9 W7: "time from the
//! kill to the first acknowledged record from the new leader").

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use sluice_net::client::{Client, TopicMetadata};

use crate::verify::limits::BROKERS_KNOWN_MAX;
use crate::verify::session::Session;
use crate::verify::VerifyError;

/// What to do to the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultSignal {
    /// SIGKILL: a crash.
    Kill,
    /// SIGTERM: a controlled shutdown.
    Term,
}

impl FaultSignal {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "kill" | "KILL" | "9" => Ok(Self::Kill),
            "term" | "TERM" | "15" => Ok(Self::Term),
            _ => Err(format!("fault {text:?}: expected kill or term")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::Term => "term",
        }
    }

    fn signal(self) -> Signal {
        match self {
            Self::Kill => Signal::SIGKILL,
            Self::Term => Signal::SIGTERM,
        }
    }
}

/// Whom to strike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTarget {
    /// The leader of [`Fault::partition`].
    Leader,
    /// The active controller (the metadata quorum's leader), whatever it leads: on a
    /// controller-only node only the controller role is lost.
    Controller,
}

impl FaultTarget {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "leader" => Ok(Self::Leader),
            "controller" => Ok(Self::Controller),
            _ => Err(format!(
                "fault target {text:?}: expected leader or controller"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Leader => "leader",
            Self::Controller => "controller",
        }
    }
}

/// A fault to strike during the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub signal: FaultSignal,
    pub target: FaultTarget,
    /// From the start of the run.
    pub after: Duration,
    /// Whose leader is struck ([`FaultTarget::Leader`]).
    pub partition: i32,
    /// Node id -> process id of every broker that may be struck (at most
    /// [`BROKERS_KNOWN_MAX`]).
    pub pids: Vec<(i32, i32)>,
}

/// `1=4242,2=4243`: node id = pid pairs.
pub fn parse_pids(text: &str) -> Result<Vec<(i32, i32)>, String> {
    let mut pids = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("--broker-pids {pair:?}: expected NODE=PID, e.g. 1=4242");
        let (node, pid) = pair.split_once('=').ok_or_else(bad)?;
        let node: i32 = node.trim().parse().map_err(|_| bad())?;
        let pid: i32 = pid.trim().parse().map_err(|_| bad())?;
        if node < 0 || pid <= 0 {
            return Err(bad());
        }
        pids.push((node, pid));
    }
    if pids.is_empty() || pids.len() > BROKERS_KNOWN_MAX {
        return Err(format!(
            "--broker-pids: between 1 and {BROKERS_KNOWN_MAX} NODE=PID pairs"
        ));
    }
    Ok(pids)
}

/// The fault as it was struck.
#[derive(Debug, Clone)]
struct Strike {
    node: i32,
    at: Instant,
    /// Partitions the struck node led -> the first acknowledgement from another broker.
    moved: BTreeMap<i32, Option<Instant>>,
}

/// Failover figures of a run with a fault.
#[derive(Debug, Clone, PartialEq)]
pub struct FailoverStats {
    pub signal: FaultSignal,
    pub target: FaultTarget,
    /// The node struck.
    pub node: i32,
    /// From the start of the run.
    pub struck_at: Duration,
    /// Partitions it led when struck.
    pub partitions: usize,
    /// Of those, how many were acknowledged by another broker afterwards.
    pub recovered: usize,
    /// The earliest of those first acknowledgements, after the strike.
    pub first: Option<Duration>,
    /// The latest: every partition it led was served again by then (`None` if one
    /// never was).
    pub all: Option<Duration>,
}

/// What the lanes share about the fault.
#[derive(Default)]
pub struct FailoverClock {
    strike: RefCell<Option<Strike>>,
}

impl FailoverClock {
    /// An acknowledgement of `partition` from `leader` at `at`.
    pub fn acked(&self, partition: i32, leader: i32, at: Instant) {
        let mut strike = self.strike.borrow_mut();
        let Some(strike) = strike.as_mut() else {
            return;
        };
        if leader == strike.node || at < strike.at {
            return;
        }
        if let Some(first @ None) = strike.moved.get_mut(&partition) {
            *first = Some(at);
        }
    }

    /// When the fault was struck, the node struck and the partitions it led then (`None`
    /// before the strike).
    pub fn struck(&self) -> Option<(Instant, i32, Vec<i32>)> {
        let strike = self.strike.borrow();
        let strike = strike.as_ref()?;
        Some((
            strike.at,
            strike.node,
            strike.moved.keys().copied().collect(),
        ))
    }

    pub fn stats(&self, fault: &Fault, started_at: Instant) -> Option<FailoverStats> {
        let strike = self.strike.borrow();
        let strike = strike.as_ref()?;
        let firsts: Vec<Duration> = strike
            .moved
            .values()
            .flatten()
            .map(|&at| at - strike.at)
            .collect();
        let all_recovered = firsts.len() == strike.moved.len();
        Some(FailoverStats {
            signal: fault.signal,
            target: fault.target,
            node: strike.node,
            struck_at: strike.at - started_at,
            partitions: strike.moved.len(),
            recovered: firsts.len(),
            first: firsts.iter().min().copied(),
            all: all_recovered
                .then(|| firsts.iter().max().copied())
                .flatten(),
        })
    }
}

#[cfg(test)]
impl FailoverClock {
    /// A strike of `node`, which led `partitions`, at `at`.
    pub fn strike_for_test(&self, at: Instant, node: i32, partitions: &[i32]) {
        let moved = partitions.iter().map(|&p| (p, None)).collect();
        *self.strike.borrow_mut() = Some(Strike { node, at, moved });
    }
}

/// Waits until `fault.after` from `started_at`, then signals the leader of
/// `fault.partition` (or the active controller) and starts the clock.
pub async fn strike(
    fault: &Fault,
    clock: &FailoverClock,
    session: &mut Session,
    topic: &str,
    started_at: Instant,
) -> Result<(), VerifyError> {
    compio::time::sleep_until(started_at + fault.after).await;
    let metadata = session.refresh(topic).await?;
    let (node, whom) = match fault.target {
        FaultTarget::Leader => (
            leader_of(&metadata, fault.partition)?,
            format!("the leader of {topic}-{}", fault.partition),
        ),
        FaultTarget::Controller => (
            active_controller(session).await?,
            "the active controller".to_string(),
        ),
    };
    let Some(&(_, pid)) = fault.pids.iter().find(|(n, _)| *n == node) else {
        return Err(VerifyError(format!(
            "{whom} is node {node}, which --broker-pids does not name"
        )));
    };
    let moved = metadata
        .partitions
        .iter()
        .filter(|p| p.leader_id == node)
        .map(|p| (p.partition, None))
        .collect();
    let at = Instant::now();
    nix::sys::signal::kill(Pid::from_raw(pid), fault.signal.signal()).map_err(|e| {
        VerifyError(format!(
            "signalling node {node} (pid {pid}) with {:?}: {e}",
            fault.signal.signal()
        ))
    })?;
    eprintln!(
        "verify: {:.3} s: sent SIG{} to node {node} (pid {pid}), {whom}",
        (at - started_at).as_secs_f64(),
        fault.signal.name().to_uppercase(),
    );
    *clock.strike.borrow_mut() = Some(Strike { node, at, moved });
    Ok(())
}

/// The metadata quorum's leader, as DescribeQuorum (forwarded by a broker) names it.
async fn active_controller(session: &mut Session) -> Result<i32, VerifyError> {
    let quorum = session
        .call("DescribeQuorum", async |c: &mut Client| {
            c.describe_quorum().await
        })
        .await?;
    if quorum.leader_id < 0 {
        return Err(VerifyError(
            "the metadata quorum has no leader to strike".to_string(),
        ));
    }
    Ok(quorum.leader_id)
}

fn leader_of(metadata: &TopicMetadata, partition: i32) -> Result<i32, VerifyError> {
    metadata
        .partitions
        .iter()
        .find(|p| p.partition == partition && p.leader_id >= 0)
        .map(|p| p.leader_id)
        .ok_or_else(|| {
            VerifyError(format!(
                "{}-{partition} has no leader to strike",
                metadata.name
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_parse_as_node_pid_pairs() {
        assert_eq!(parse_pids("1=10, 2=20"), Ok(vec![(1, 10), (2, 20)]));
        for bad in ["", "1", "1=", "=2", "a=1", "1=0", "-1=5", "1=2=3"] {
            assert!(parse_pids(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn failover_ends_at_each_moved_partitions_first_ack_from_another_broker() {
        let start = Instant::now();
        let at = start + Duration::from_secs(1);
        let clock = FailoverClock::default();
        let fault = Fault {
            signal: FaultSignal::Kill,
            target: FaultTarget::Leader,
            after: Duration::from_secs(1),
            partition: 0,
            pids: vec![(1, 10)],
        };
        clock.acked(0, 2, at);
        assert_eq!(clock.stats(&fault, start), None, "no strike yet");
        assert_eq!(clock.struck(), None);
        let moved = [(0, None), (2, None)].into_iter().collect();
        *clock.strike.borrow_mut() = Some(Strike { node: 1, at, moved });
        assert_eq!(clock.struck(), Some((at, 1, vec![0, 2])));
        let ms = Duration::from_millis;
        clock.acked(0, 1, at + ms(5)); // the struck leader's own late answer
        clock.acked(1, 2, at + ms(6)); // a partition it did not lead
        clock.acked(0, 2, at + ms(700));
        let stats = clock.stats(&fault, start).unwrap();
        assert_eq!((stats.partitions, stats.recovered), (2, 1));
        assert_eq!((stats.first, stats.all), (Some(ms(700)), None));
        clock.acked(2, 3, at + ms(900));
        clock.acked(0, 3, at + ms(950)); // only the first counts
        let stats = clock.stats(&fault, start).unwrap();
        assert_eq!(stats.node, 1);
        assert_eq!(stats.struck_at, ms(1000));
        assert_eq!((stats.first, stats.all), (Some(ms(700)), Some(ms(900))));
    }
}
