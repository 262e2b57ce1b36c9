//! `Type=notify`: with NOTIFY_SOCKET pointing at a socket the test reads, sluiced says
//! READY=1 once it serves, feeds the watchdog while its shards answer, and says STOPPING=1
//! on SIGTERM.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::Broker;

fn messages_until(sock: &UnixDatagram, needle: &str, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = msg.lines().any(|l| l == needle);
            seen.push(msg);
            if done {
                return seen;
            }
        }
    }
    panic!("no {needle} within {within:?}; got {seen:?}");
}

#[test]
fn ready_watchdog_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let data = dir.path().join("data");
    let env = [
        ("NOTIFY_SOCKET", path.to_str().unwrap()),
        ("WATCHDOG_USEC", "400000"),
    ];
    let mut broker = Broker::start_with_env(&data, &[], &env);
    let ready = messages_until(&sock, "READY=1", Duration::from_secs(10));
    assert!(
        ready.iter().any(|m| m.contains("STATUS=serving")),
        "{ready:?}"
    );
    messages_until(&sock, "WATCHDOG=1", Duration::from_secs(5));
    let (status, _) = broker.terminate();
    assert!(status.success());
    messages_until(&sock, "STOPPING=1", Duration::from_secs(5));
}
