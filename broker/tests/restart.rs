//! Restarts: `kill -9; sluiced` on the same port works every time (binding retries while
//! the killed process's sockets are released), and what a restart reads from the files a
//! stopped broker left behind.

mod common;

use std::time::{Duration, Instant};

use common::Broker;

/// How many kill -9 / restart rounds the port test runs.
const KILL_RESTART_ROUNDS: usize = 6;

#[test]
fn restart_right_after_sigkill_binds_the_same_port() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    let port = broker.port;
    let listener = format!("listeners=PLAINTEXT://127.0.0.1:{port}");
    for round in 0..KILL_RESTART_ROUNDS {
        // A broker with work in flight (shard 0 creates __consumer_offsets once ready) holds
        // io_uring operations on its sockets; those are what outlive the reaped process.
        wait_for_dir(&dir.path().join("__consumer_offsets-0"));
        broker.kill();
        // Broker::start panics with the broker's log if it does not become ready.
        broker = Broker::start(dir.path(), &[&listener]);
        assert_eq!(
            broker.port, port,
            "round {round}: restarted on another port"
        );
    }
}

fn wait_for_dir(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{path:?} never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}
