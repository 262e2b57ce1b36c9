//! `scripts/dev-cluster.sh` end to end on the binaries of this build: start 2 nodes,
//! status, stop, start again on the formatted dirs (ports probed free first).

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Base ports tried before giving up.
const BASE_PORT_TRIES_MAX: u16 = 200;

/// A base port P with P, P+1, P+100 and P+101 free now (the script's layout for 2 nodes).
fn free_base_port() -> u16 {
    for i in 0..BASE_PORT_TRIES_MAX {
        let base = 20_000 + (std::process::id() as u16 % 200) * 100 + i * 211 % 20_000;
        let ports = [base, base + 1, base + 100, base + 101];
        let free = ports.iter().all(|p| {
            TcpListener::bind(("127.0.0.1", *p)).is_ok()
                && UdpSocket::bind(("127.0.0.1", *p)).is_ok()
        });
        if free {
            return base;
        }
    }
    panic!("no free base port found");
}

struct Script {
    path: PathBuf,
    dir: tempfile::TempDir,
    base: u16,
    bin: PathBuf,
}

impl Script {
    fn run(&self, arg: &str) -> (bool, String, String) {
        let profile = self.bin.file_name().unwrap();
        let out = Command::new("bash")
            .arg(&self.path)
            .arg(arg)
            .current_dir(self.dir.path())
            .env("BASE_PORT", self.base.to_string())
            .env("NO_BUILD", "1")
            .env("PROFILE", profile)
            .env("CARGO_TARGET_DIR", self.bin.parent().unwrap())
            .env("READY_WAIT_S", "60")
            .output()
            .expect("run dev-cluster.sh");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.run("stop");
    }
}

fn cluster_file(dir: &Path, path: &str) -> String {
    std::fs::read_to_string(dir.join("sluice-cluster").join(path)).unwrap()
}

#[test]
fn dev_cluster_starts_stops_and_restarts() {
    let bin = sluice_testkit::sluiced_path()
        .parent()
        .unwrap()
        .to_path_buf();
    let _ = sluice_testkit::sluice_path();
    let script = Script {
        path: Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/dev-cluster.sh"),
        dir: tempfile::tempdir().unwrap(),
        base: free_base_port(),
        bin,
    };
    let (ok, out, err) = script.run("2");
    assert!(ok, "{out}\n{err}");
    let b = script.base;
    let servers = format!("127.0.0.1:{b},127.0.0.1:{}", b + 100);
    assert!(
        out.contains(&format!("2 nodes, bootstrap servers {servers}")),
        "{out}"
    );
    let id = cluster_file(script.dir.path(), "cluster.id");
    let meta = cluster_file(script.dir.path(), "node-2/data/meta.properties");
    assert!(meta.contains(&format!("cluster.id={}", id.trim())) && meta.contains("node.id=2"));
    let config = cluster_file(script.dir.path(), "node-1/server.properties");
    let voters = format!(
        "controller.quorum.voters=1@127.0.0.1:{},2@127.0.0.1:{}",
        b + 1,
        b + 101
    );
    assert!(config.contains(&voters), "{config}");
    let (ok, out, _) = script.run("status");
    assert!(ok && out.matches(": running").count() == 2, "{out}");
    let (ok, out, err) = script.run("2");
    assert!(!ok && err.contains("already runs"), "{out}\n{err}");
    let (ok, out, _) = script.run("stop");
    assert!(
        ok && out.contains("node-1 stopped") && out.contains("node-2 stopped"),
        "{out}"
    );
    let (ok, out, err) = script.run("2");
    assert!(
        ok && out.contains("All of the log directories are already formatted."),
        "{out}\n{err}"
    );
    assert_eq!(
        cluster_file(script.dir.path(), "node-2/data/meta.properties"),
        meta,
        "kept"
    );
}
