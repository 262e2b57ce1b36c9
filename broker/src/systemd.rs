//! systemd integration: `Type=notify` readiness, status lines, start-up timeout extension
//! during a long recovery, a watchdog fed only when every shard answers, and STOPPING=1.
//! Without `NOTIFY_SOCKET` (not started by systemd) every call is a no-op.

use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::msg::{Peers, ShardMsg};

/// How much more start-up time each EXTEND_TIMEOUT_USEC asks for while partitions open.
pub const STARTUP_EXTEND_USEC: u32 = 30_000_000;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::debug!("sd_notify: {e}");
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// While recovery runs: keep systemd's start timeout from expiring.
pub fn extend_startup(status: &str) {
    send(&[
        NotifyState::ExtendTimeoutUsec(STARTUP_EXTEND_USEC),
        NotifyState::Status(status),
    ]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// With `WatchdogSec=` set, a thread sends WATCHDOG=1 every half period, but only after
/// every shard has answered a ping through its inbox: a stuck shard stops the pings and
/// systemd restarts the service.
pub fn spawn_watchdog(peers: Arc<Peers>) {
    let Some(usec) = watchdog_usec() else {
        return;
    };
    let period = Duration::from_micros(usec / 2);
    let spawned = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || loop {
            let started = Instant::now();
            if shards_answer(&peers, period) {
                send(&[NotifyState::Watchdog]);
            } else {
                tracing::warn!("a shard did not answer the watchdog ping within {period:?}");
            }
            std::thread::sleep(period.saturating_sub(started.elapsed()));
        });
    if let Err(e) = spawned {
        tracing::error!("starting the watchdog thread: {e}");
    }
}

/// `WATCHDOG_USEC`, if the watchdog is meant for this process: as sd_watchdog_enabled(3),
/// an unset `WATCHDOG_PID` means "this process".
fn watchdog_usec() -> Option<u64> {
    let usec: u64 = std::env::var("WATCHDOG_USEC")
        .ok()?
        .parse()
        .ok()
        .filter(|u| *u > 0)?;
    match std::env::var("WATCHDOG_PID").ok().map(|p| p.parse::<u32>()) {
        None => Some(usec),
        Some(Ok(pid)) if pid == std::process::id() => Some(usec),
        Some(_) => None,
    }
}

fn shards_answer(peers: &Peers, within: Duration) -> bool {
    let shards = peers.shards();
    let (tx, rx) = sync_channel(shards);
    for to in 0..shards {
        if peers
            .try_send(to, ShardMsg::Ping { reply: tx.clone() })
            .is_err()
        {
            return false;
        }
    }
    let deadline = Instant::now() + within;
    (0..shards).all(|_| {
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    })
}
