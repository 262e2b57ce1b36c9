//! [`Network`]: a private network of Linux network namespaces for fault tests, made with
//! iproute2 only (`ip`): one namespace per node and one for the test's clients, each with
//! an `eth0` on a bridge that lives in a "switch" namespace of its own. Nothing is added to
//! the host's namespace, and every packet stays inside namespaces the test created.
//!
//! Faults, all silent drops (no local error for the sender, as on a real network):
//! - [`Network::cut`] `from → to`: `from`'s namespace gets a permanent neighbour entry giving
//!   `to`'s address a MAC nobody has, so what `from` sends to `to` (TCP and UDP) is lost
//!   while what `to` sends still arrives — a one-way cut. TCP needs both ways, so a one-way
//!   cut stalls TCP both ways but lets UDP gossip through one way.
//! - [`Network::isolate`]: cut both ways between a node and every other endpoint (clients
//!   included unless told otherwise).
//! - [`Network::cut_udp`] `from → to`: only UDP (gossip) is dropped, by an nftables rule in
//!   `from`'s namespace (needs `nft`: [`Network::nft_missing`]); TCP still flows.
//! - [`Network::heal`]: every cut removed (addresses resolve again by ARP, nftables rules
//!   deleted).
//!
//! Needs root and `ip`; [`Network::unavailable`] says why not, for a test to report
//! SKIPPED with the reason.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The subnet of every test network (each network is its own world: no clash between tests).
const SUBNET: [u8; 3] = [10, 89, 0];
/// The client namespace's host number.
const CLIENT_HOST: u8 = 250;
/// A MAC no interface has (locally administered): where cut traffic goes.
const NOWHERE_MAC: &str = "02:00:5e:00:53:99";
/// Endpoints a network may have (node hosts are 1..=this).
pub const NETWORK_NODES_MAX: usize = 64;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One endpoint of a [`Network`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Node `id` (1-based), at 10.89.0.`id`.
    Node(i32),
    /// The test's clients, at 10.89.0.250.
    Client,
}

impl Endpoint {
    fn host(self) -> u8 {
        match self {
            Endpoint::Node(id) => u8::try_from(id).expect("node id fits the subnet"),
            Endpoint::Client => CLIENT_HOST,
        }
    }

    pub fn addr(self) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], self.host())
    }
}

/// The namespaces, switch and addresses of one test (see the module docs). Dropping it
/// deletes the namespaces (stop the processes in them first).
pub struct Network {
    prefix: String,
    nodes: usize,
    /// Cuts in place: (from, to).
    cuts: Vec<(Endpoint, Endpoint)>,
    /// UDP-only cuts in place: (from, to).
    udp_cuts: Vec<(Endpoint, Endpoint)>,
}

/// The nftables table holding a namespace's UDP cuts (deleted whole by `heal`).
const NFT_TABLE: &str = "sluice_cuts";

fn nft(namespace: &str, script: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", namespace, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())
        .map_err(|e| format!("nft: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft in {namespace}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Network {
    /// Why a network cannot be made here (not root, no `ip`, no namespaces), if so.
    pub fn unavailable() -> Option<String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Some("network namespaces need root".into());
        }
        match Network::create(1) {
            Ok(_) => None,
            Err(e) => Some(format!("cannot make network namespaces: {e}")),
        }
    }

    /// Namespaces for `nodes` nodes and the client, all on one switch.
    pub fn create(nodes: usize) -> Result<Network, String> {
        assert!(
            (1..=NETWORK_NODES_MAX).contains(&nodes),
            "1..={NETWORK_NODES_MAX} nodes"
        );
        let prefix = format!(
            "sluice-t{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let network = Network {
            prefix,
            nodes,
            cuts: Vec::new(),
            udp_cuts: Vec::new(),
        };
        let sw = network.switch_ns();
        ip(&["netns", "add", &sw])?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for e in network.endpoints() {
            network.attach(e)?;
        }
        Ok(network)
    }

    fn switch_ns(&self) -> String {
        format!("{}-sw", self.prefix)
    }

    /// The namespace of `e` (for `ip netns exec`).
    pub fn namespace(&self, e: Endpoint) -> String {
        match e {
            Endpoint::Node(id) => format!("{}-n{id}", self.prefix),
            Endpoint::Client => format!("{}-c", self.prefix),
        }
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        (1..=self.nodes as i32)
            .map(Endpoint::Node)
            .chain([Endpoint::Client])
            .collect()
    }

    /// A namespace for `e` with `eth0` (its address) plugged into the switch, and `lo` up.
    fn attach(&self, e: Endpoint) -> Result<(), String> {
        let (sw, ns) = (self.switch_ns(), self.namespace(e));
        let port = format!("p{}", e.host());
        let addr = format!("{}/24", e.addr());
        ip(&["netns", "add", &ns])?;
        ip(&[
            "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
        ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])
    }

    /// `program` to run inside `e`'s namespace (`ip netns exec NS program`): the process
    /// is `program` itself (ip execs it), so its pid is the child's.
    pub fn command(&self, e: Endpoint, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.arg("netns")
            .arg("exec")
            .arg(self.namespace(e))
            .arg(program);
        c
    }

    /// Moves the calling thread (and the threads it starts afterwards, e.g. a Kafka
    /// client's) into the client namespace until the guard drops.
    pub fn enter_client(&self) -> NamespaceGuard {
        let open = |path: &str| std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let back = open("/proc/thread-self/ns/net");
        let client = open(&format!("/run/netns/{}", self.namespace(Endpoint::Client)));
        setns(&client);
        NamespaceGuard { back }
    }

    /// Drops what `from` sends to `to` (silently), until [`Network::heal`].
    pub fn cut(&mut self, from: Endpoint, to: Endpoint) {
        if self.cuts.contains(&(from, to)) {
            return;
        }
        let to_addr = to.addr().to_string();
        let ns = self.namespace(from);
        ip(&[
            "-n",
            &ns,
            "neigh",
            "replace",
            &to_addr,
            "lladdr",
            NOWHERE_MAC,
            "dev",
            "eth0",
            "nud",
            "permanent",
        ])
        .expect("cut");
        self.cuts.push((from, to));
    }

    /// Why UDP-only cuts cannot be made here (no `nft`), if so.
    pub fn nft_missing() -> Option<String> {
        match Command::new("nft").arg("--version").output() {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(format!("nft --version failed: {}", o.status)),
            Err(e) => Some(format!("no nft (apt-get install nftables): {e}")),
        }
    }

    /// Drops the UDP datagrams `from` sends to `to` (silently; TCP still flows), until
    /// [`Network::heal`].
    pub fn cut_udp(&mut self, from: Endpoint, to: Endpoint) {
        if self.udp_cuts.contains(&(from, to)) {
            return;
        }
        let ns = self.namespace(from);
        let script = format!(
            "table inet {NFT_TABLE} {{\n  chain out {{ type filter hook output priority 0; policy accept;\n    ip daddr {} meta l4proto udp drop\n  }}\n}}\n",
            to.addr()
        );
        nft(&ns, &script).expect("cut udp");
        self.udp_cuts.push((from, to));
    }

    /// Cuts gossip (UDP) between `node` and every other node, both ways.
    pub fn isolate_udp(&mut self, node: i32) {
        let me = Endpoint::Node(node);
        for other in (1..=self.nodes as i32).map(Endpoint::Node) {
            if other != me {
                self.cut_udp(me, other);
                self.cut_udp(other, me);
            }
        }
    }

    /// Cuts `node` from every other node both ways, and from the clients too if `clients`.
    pub fn isolate(&mut self, node: i32, clients: bool) {
        let me = Endpoint::Node(node);
        for other in self.endpoints() {
            if other == me || (other == Endpoint::Client && !clients) {
                continue;
            }
            self.cut(me, other);
            self.cut(other, me);
        }
    }

    /// Removes every cut.
    pub fn heal(&mut self) {
        for (from, to) in std::mem::take(&mut self.cuts) {
            let to_addr = to.addr().to_string();
            let ns = self.namespace(from);
            ip(&["-n", &ns, "neigh", "del", &to_addr, "dev", "eth0"]).expect("heal");
        }
        let mut tables: Vec<String> = std::mem::take(&mut self.udp_cuts)
            .into_iter()
            .map(|(from, _)| self.namespace(from))
            .collect();
        tables.sort();
        tables.dedup();
        for ns in tables {
            nft(&ns, &format!("delete table inet {NFT_TABLE}\n")).expect("heal udp");
        }
    }

    /// The cuts in place.
    pub fn cuts(&self) -> &[(Endpoint, Endpoint)] {
        &self.cuts
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for e in self.endpoints() {
            let _ = ip(&["netns", "del", &self.namespace(e)]);
        }
        let _ = ip(&["netns", "del", &self.switch_ns()]);
    }
}

/// Returns the thread to the namespace it was in (see [`Network::enter_client`]).
pub struct NamespaceGuard {
    back: std::fs::File,
}

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        setns(&self.back);
    }
}

fn setns(ns: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: setns(2) with an open namespace file descriptor; it affects only the calling
    // thread's network namespace.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}
