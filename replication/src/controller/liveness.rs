//! Gossip's verdict, confirmed before it fences: when SWIM gossip declares a broker down and
//! the controller has not heard its heartbeat since, the controller asks the broker itself —
//! a Kafka ApiVersions request to its inter-broker listener — before fencing it ahead of
//! `broker.session.timeout.ms`. A broker that answers within `LIVENESS_PROBE_TIMEOUT_MS` is
//! alive and keeps its leaderships (gossip's UDP can be cut while TCP flows: fencing it
//! would move its leaderships and shrink its ISRs for nothing); a refused connection (a
//! killed process), or no answer in time (a paused process, a cut network), confirms
//! gossip. Either way the session timeout still applies: gossip and the probe only ever
//! make fencing sooner.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::records::BrokerId;

/// How long a probed broker has to answer before gossip's verdict stands.
pub const LIVENESS_PROBE_TIMEOUT_MS: u64 = 500;
/// Finished probes waiting for the controller (one probe per broker runs at a time).
pub const LIVENESS_PROBE_RESULTS_MAX: usize = 64;
/// The probe's ApiVersions correlation id (any answer must echo it).
const PROBE_CORRELATION_ID: i32 = 0x5c_0b_e0;
const PROBE_CLIENT_ID: &[u8] = b"sluice-controller-liveness";
/// Kafka's ApiVersions API key; version 0 has an empty body and a v1 request header.
const API_VERSIONS_KEY: i16 = 18;

/// What a probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It answered (at this time): alive, whatever gossip says.
    Answered(Instant),
    /// Refused or silent: gossip's verdict stands.
    Silent,
}

#[derive(Clone, Copy, Debug)]
struct Probe {
    /// The gossip verdict it checks (`GossipView::down_since`).
    down: Instant,
    /// None while it runs.
    outcome: Option<Outcome>,
}

/// A finished probe: (broker, the verdict it checked, what it found).
pub type ProbeResult = (BrokerId, Instant, Outcome);

/// At most one probe per broker, for gossip's latest verdict on it. Owned by the
/// controller's task; probes run as tasks of their own and send what they found back
/// (`results`, which the controller awaits to decide at once rather than at its next tick).
pub struct Probes {
    probes: HashMap<BrokerId, Probe>,
    tx: mpsc::Sender<ProbeResult>,
    pub results: mpsc::Receiver<ProbeResult>,
}

impl Default for Probes {
    fn default() -> Probes {
        let (tx, results) = mpsc::channel(LIVENESS_PROBE_RESULTS_MAX);
        Probes {
            probes: HashMap::new(),
            tx,
            results,
        }
    }
}

impl Probes {
    /// The outcome of the probe of `broker` for gossip's verdict of `down`; starts one
    /// (answering None) if none ran for that verdict yet.
    pub fn check(&mut self, broker: BrokerId, down: Instant, address: &str) -> Option<Outcome> {
        if let Some(p) = self.probes.get(&broker).filter(|p| p.down == down) {
            return p.outcome;
        }
        self.probes.insert(
            broker,
            Probe {
                down,
                outcome: None,
            },
        );
        let (tx, address) = (self.tx.clone(), address.to_string());
        tokio::spawn(async move {
            let timeout = Duration::from_millis(LIVENESS_PROBE_TIMEOUT_MS);
            let outcome = match answers(&address, timeout).await {
                true => Outcome::Answered(Instant::now()),
                false => Outcome::Silent,
            };
            let _ = tx.send((broker, down, outcome)).await;
        });
        None
    }

    /// What a probe found, for the verdict it checked (a newer verdict has its own probe).
    pub fn record(&mut self, (broker, down, outcome): ProbeResult) {
        if let Some(p) = self.probes.get_mut(&broker).filter(|p| p.down == down) {
            p.outcome = Some(outcome);
        }
    }

    /// Forgets the probes of brokers gossip no longer declares down.
    pub fn retain(&mut self, mut still_down: impl FnMut(BrokerId, Instant) -> bool) {
        self.probes.retain(|b, p| still_down(*b, p.down));
    }
}

/// ApiVersions v0 with a v1 request header: size, key, version, correlation id, client id.
fn api_versions_request() -> Vec<u8> {
    let mut body = Vec::with_capacity(16 + PROBE_CLIENT_ID.len());
    body.extend_from_slice(&API_VERSIONS_KEY.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&PROBE_CORRELATION_ID.to_be_bytes());
    body.extend_from_slice(&(PROBE_CLIENT_ID.len() as i16).to_be_bytes());
    body.extend_from_slice(PROBE_CLIENT_ID);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// Whether a Kafka listener at `address` answers an ApiVersions request within `timeout`
/// (only the answer's size and correlation id are read).
pub async fn answers(address: &str, timeout: Duration) -> bool {
    let exchange = async {
        let mut s = TcpStream::connect(address).await.ok()?;
        s.write_all(&api_versions_request()).await.ok()?;
        let mut head = [0u8; 8];
        s.read_exact(&mut head).await.ok()?;
        let correlation = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        (correlation == PROBE_CORRELATION_ID).then_some(())
    };
    matches!(tokio::time::timeout(timeout, exchange).await, Ok(Some(())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn the_request_is_a_well_formed_api_versions_v0_frame() {
        let f = api_versions_request();
        let size = i32::from_be_bytes([f[0], f[1], f[2], f[3]]) as usize;
        assert_eq!(size, f.len() - 4);
        assert_eq!(i16::from_be_bytes([f[4], f[5]]), 18);
        assert_eq!(i16::from_be_bytes([f[6], f[7]]), 0);
        assert_eq!(
            i32::from_be_bytes([f[8], f[9], f[10], f[11]]),
            PROBE_CORRELATION_ID
        );
        assert_eq!(&f[14..], PROBE_CLIENT_ID);
    }

    #[tokio::test]
    async fn a_listener_that_answers_is_alive_and_a_silent_or_closed_one_is_not() {
        let answering = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = answering.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = answering.accept().await.unwrap();
            let mut req = vec![0u8; api_versions_request().len()];
            s.read_exact(&mut req).await.unwrap();
            let mut answer = 4i32.to_be_bytes().to_vec();
            answer.extend_from_slice(&req[8..12]);
            s.write_all(&answer).await.unwrap();
        });
        assert!(answers(&addr, Duration::from_secs(5)).await);

        // Accepts (the kernel's backlog) but never answers: a paused process.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        assert!(!answers(&addr, Duration::from_millis(200)).await);

        // Nobody listens: a killed process.
        drop(silent);
        assert!(!answers(&addr, Duration::from_secs(5)).await);
    }
}
