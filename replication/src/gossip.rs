//! SWIM gossip (the `foca` crate) among every node of the cluster: who is alive, at which
//! gossip address, in which rack. It runs on the control-plane thread's runtime over one UDP
//! socket (by default the address and port number of the node's controller listener, else
//! of its inter-broker listener), seeded from `controller.quorum.voters`.
//!
//! Gossip never decides anything. It publishes a [`GossipView`]; the active controller reads
//! it and may fence a broker that gossip declared down and that has not heartbeated since —
//! sooner than `broker.session.timeout.ms`, never later (the session timeout still fences
//! a broker gossip thinks alive). A false "down" costs leadership moves, not safety: fencing
//! is always safe, and the broker's next heartbeat unfences it.
//!
//! Datagrams carry an 8-byte tag derived from the cluster id before foca's own encoding
//! (postcard): a datagram of another cluster, or of anything else on the port, is dropped
//! before foca parses it; foca itself refuses datagrams over [`GOSSIP_DATAGRAM_BYTES_MAX`].

use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::num::{NonZeroU8, NonZeroUsize};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use foca::{AccumulatingRuntime, Foca, OwnedNotification, PostcardCodec, Timer};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::records::BrokerId;

/// Largest gossip datagram, sent or accepted (foca's `max_packet_size`; below any MTU).
pub const GOSSIP_DATAGRAM_BYTES_MAX: usize = 1_400;
/// Timer events foca may have pending at once; beyond it (a bug or a flood) they are dropped
/// with a warning.
pub const GOSSIP_TIMERS_MAX: usize = 65_536;
/// How often a node that knows no live member announces itself to the seeds again.
pub const GOSSIP_REANNOUNCE_MS: u64 = 1_000;
/// `sluice.gossip.probe.interval.ms` default: one probe of a random member per interval.
pub const GOSSIP_PROBE_INTERVAL_MS_DEFAULT: u64 = 500;
/// `sluice.gossip.suspect.timeout.ms` default: how long a suspected member has to refute
/// the suspicion before it is declared down.
pub const GOSSIP_SUSPECT_TIMEOUT_MS_DEFAULT: u64 = 500;
/// Length of the cluster tag in front of every datagram.
const TAG_BYTES: usize = 8;

/// What one node gossips about itself. Foca's `Addr` is the node id: one live identity
/// per node, the newest incarnation winning.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GossipId {
    pub node_id: BrokerId,
    /// Where its gossip socket listens.
    pub addr: SocketAddr,
    /// Milliseconds since the epoch when the process started, plus one per rejoin.
    pub incarnation: u64,
    /// `broker.rack`.
    pub rack: Option<String>,
}

impl foca::Identity for GossipId {
    type Addr = BrokerId;

    fn renew(&self) -> Option<Self> {
        Some(GossipId {
            incarnation: self.incarnation + 1,
            ..self.clone()
        })
    }

    fn addr(&self) -> BrokerId {
        self.node_id
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.incarnation > adversary.incarnation
    }
}

#[derive(Clone, Debug)]
pub struct GossipOptions {
    pub cluster_id: String,
    pub node_id: BrokerId,
    /// The UDP address to bind and to advertise.
    pub addr: SocketAddr,
    /// Where to announce at start (the voters' gossip addresses), this node's own included or not.
    pub seeds: Vec<(BrokerId, SocketAddr)>,
    pub rack: Option<String>,
    pub probe_interval_ms: u64,
    pub suspect_timeout_ms: u64,
}

/// One member as this node's gossip last heard of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GossipMember {
    pub incarnation: u64,
    pub addr: SocketAddr,
    pub rack: Option<String>,
    pub alive: bool,
    /// When it was last seen to become alive or down (this node's clock).
    pub since: Instant,
}

/// Every other member this node's gossip knows, by node id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GossipView {
    pub members: BTreeMap<BrokerId, GossipMember>,
}

impl GossipView {
    /// When gossip declared `node` down, if its newest incarnation is down.
    pub fn down_since(&self, node: BrokerId) -> Option<Instant> {
        self.members
            .get(&node)
            .filter(|m| !m.alive)
            .map(|m| m.since)
    }

    fn up(&mut self, id: &GossipId, alive: bool) -> bool {
        if let Some(m) = self.members.get(&id.node_id) {
            if m.incarnation > id.incarnation
                || (m.incarnation == id.incarnation && m.alive == alive)
            {
                return false;
            }
        }
        let member = GossipMember {
            incarnation: id.incarnation,
            addr: id.addr,
            rack: id.rack.clone(),
            alive,
            since: Instant::now(),
        };
        self.members.insert(id.node_id, member);
        true
    }

    fn rename(&mut self, to: &GossipId) -> bool {
        match self.members.get_mut(&to.node_id) {
            Some(m) if m.incarnation < to.incarnation => {
                m.incarnation = to.incarnation;
                m.addr = to.addr;
                m.rack = to.rack.clone();
                true
            }
            _ => false,
        }
    }
}

/// The foca settings for `options`: SWIM with suspicion, tuned for a LAN of a few nodes.
fn foca_config(options: &GossipOptions, cluster_size: usize) -> foca::Config {
    let probe = Duration::from_millis(options.probe_interval_ms.max(10));
    let cluster_size = std::num::NonZeroU32::new(cluster_size.max(1) as u32).expect("non-zero");
    let mut config = foca::Config::new_lan(cluster_size);
    config.probe_period = probe;
    config.probe_rtt = probe / 2;
    config.suspect_to_down_after = Duration::from_millis(options.suspect_timeout_ms.max(10));
    config.max_packet_size = NonZeroUsize::new(GOSSIP_DATAGRAM_BYTES_MAX).expect("non-zero");
    config.max_transmissions = config.max_transmissions.max(NonZeroU8::new(4).expect("4"));
    config
}

/// The tag in front of every datagram: a hash of the cluster id.
fn cluster_tag(cluster_id: &str) -> [u8; TAG_BYTES] {
    let crc = crc32c::crc32c(cluster_id.as_bytes());
    let len = cluster_id.len() as u32;
    let mut tag = [0u8; TAG_BYTES];
    tag[..4].copy_from_slice(&crc.to_be_bytes());
    tag[4..].copy_from_slice(&(len ^ 0x5153_5750).to_be_bytes());
    tag
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64)
}

/// Binds the gossip socket (an error names the address) and returns the future that runs
/// gossip until `stop`, with the view it publishes.
pub async fn bind(
    options: GossipOptions,
) -> std::io::Result<(
    watch::Receiver<GossipView>,
    impl std::future::Future<Output = ()>,
)> {
    let socket = UdpSocket::bind(options.addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("gossip socket {}: {e}", options.addr))
    })?;
    let (tx, rx) = watch::channel(GossipView::default());
    Ok((rx, Gossip::new(options, socket, tx).run()))
}

/// A timer foca asked for, ordered by due time (earliest first in the heap).
struct Due(Instant, u64, Timer<GossipId>);

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.0, other.1).cmp(&(self.0, self.1))
    }
}

struct Gossip {
    options: GossipOptions,
    socket: UdpSocket,
    foca: Foca<GossipId, PostcardCodec, SmallRng, foca::NoCustomBroadcast>,
    runtime: AccumulatingRuntime<GossipId>,
    timers: BinaryHeap<Due>,
    timer_seq: u64,
    tag: [u8; TAG_BYTES],
    view: watch::Sender<GossipView>,
    /// Whether some live member knows this node (foca's Active / Idle).
    active: bool,
    timers_dropped: bool,
}

impl Gossip {
    fn new(options: GossipOptions, socket: UdpSocket, view: watch::Sender<GossipView>) -> Gossip {
        let me = GossipId {
            node_id: options.node_id,
            addr: options.addr,
            incarnation: now_ms(),
            rack: options.rack.clone(),
        };
        let config = foca_config(&options, options.seeds.len() + 1);
        let rng = SmallRng::seed_from_u64(now_ms() ^ (options.node_id as u64).rotate_left(32));
        Gossip {
            tag: cluster_tag(&options.cluster_id),
            foca: Foca::new(me, config, rng, PostcardCodec),
            runtime: AccumulatingRuntime::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            options,
            socket,
            view,
            active: false,
            timers_dropped: false,
        }
    }

    async fn run(mut self) {
        let mut buf = vec![0u8; TAG_BYTES + GOSSIP_DATAGRAM_BYTES_MAX + 1];
        let mut announce = tokio::time::interval(Duration::from_millis(GOSSIP_REANNOUNCE_MS));
        announce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(addr = %self.options.addr, "gossip started");
        loop {
            let next = self.timers.peek().map(|d| d.0);
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, _)) = r {
                        self.receive(n, &buf);
                    }
                }
                _ = sleep => self.fire_due(),
                _ = announce.tick() => self.announce_if_alone(),
            }
            self.drain().await;
        }
    }

    fn receive(&mut self, n: usize, buf: &[u8]) {
        let Some(payload) = buf[..n].strip_prefix(&self.tag) else {
            tracing::debug!(
                bytes = n,
                "gossip datagram without this cluster's tag dropped"
            );
            return;
        };
        if let Err(e) = self.foca.handle_data(payload, &mut self.runtime) {
            tracing::debug!(error = %e, "gossip datagram refused");
        }
    }

    fn fire_due(&mut self) {
        let now = Instant::now();
        while self.timers.peek().is_some_and(|d| d.0 <= now) {
            let Due(_, _, timer) = self.timers.pop().expect("peeked");
            if let Err(e) = self.foca.handle_timer(timer, &mut self.runtime) {
                tracing::debug!(error = %e, "gossip timer");
            }
        }
    }

    /// Announces to every seed while no live member knows this node (at start, after
    /// being cut off, or when every other member was declared down).
    fn announce_if_alone(&mut self) {
        if self.active && self.foca.iter_members().next().is_some() {
            return;
        }
        for (id, addr) in self.options.seeds.clone() {
            if id == self.options.node_id {
                continue;
            }
            let seed = GossipId {
                node_id: id,
                addr,
                incarnation: 0,
                rack: None,
            };
            if let Err(e) = self.foca.announce(seed, &mut self.runtime) {
                tracing::debug!(error = %e, "gossip announce");
            }
        }
    }

    async fn drain(&mut self) {
        while let Some((to, data)) = self.runtime.to_send() {
            let mut datagram = Vec::with_capacity(TAG_BYTES + data.len());
            datagram.extend_from_slice(&self.tag);
            datagram.extend_from_slice(&data);
            if let Err(e) = self.socket.send_to(&datagram, to.addr).await {
                tracing::debug!(to = %to.addr, error = %e, "gossip send");
            }
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            if self.timers.len() >= GOSSIP_TIMERS_MAX {
                if !self.timers_dropped {
                    tracing::warn!(max = GOSSIP_TIMERS_MAX, "gossip timers full: dropping");
                    self.timers_dropped = true;
                }
                continue;
            }
            self.timer_seq += 1;
            self.timers
                .push(Due(Instant::now() + after, self.timer_seq, timer));
        }
        while let Some(n) = self.runtime.to_notify() {
            self.notify(n);
        }
    }

    fn notify(&mut self, n: OwnedNotification<GossipId>) {
        let changed = match &n {
            OwnedNotification::MemberUp(id) => self.view.send_if_modified(|v| v.up(id, true)),
            OwnedNotification::MemberDown(id) => self.view.send_if_modified(|v| v.up(id, false)),
            OwnedNotification::Rename(_, to) => self.view.send_if_modified(|v| v.rename(to)),
            OwnedNotification::Active | OwnedNotification::Rejoin(_) => {
                self.active = true;
                false
            }
            // Defunct does not happen: identities renew themselves (foca then rejoins).
            OwnedNotification::Idle | OwnedNotification::Defunct => {
                self.active = false;
                false
            }
        };
        if changed {
            match &n {
                OwnedNotification::MemberUp(id) => {
                    tracing::info!(node = id.node_id, addr = %id.addr, "gossip: member alive")
                }
                OwnedNotification::MemberDown(id) => {
                    tracing::warn!(node = id.node_id, addr = %id.addr, "gossip: member down")
                }
                _ => {}
            }
        }
    }
}
