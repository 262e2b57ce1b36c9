//! A failing disk takes its whole log dir offline until restart, as Kafka does, and the
//! broker's other log dir keeps serving (Kafka's JBOD behaviour). The failing dir is an ext4
//! filesystem on a loop device that the test mounts and then shuts down with
//! `EXT4_IOC_SHUTDOWN` (every later write and fsync on it fails with EIO, as a dead disk's
//! would); skipped, saying why, where mounting is not allowed.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use sluice_net::client::log_dirs::LogDirDescription;
use sluice_net::client::{Acks, Client, ClientError, FetchOptions, Record, RecordBatchBuilder};
use sluice_testkit::Broker;

const TOPIC: &str = "jbod";
const PARTITIONS: i32 = 4;
const IMAGE_BYTES: u64 = 64 << 20;
/// `EXT4_IOC_SHUTDOWN` (`_IOR('X', 125, __u32)`) and `EXT4_GOING_FLAGS_NOLOGFLUSH`.
const EXT4_IOC_SHUTDOWN: libc::c_ulong = 0x8004_587d;
const EXT4_GOING_FLAGS_NOLOGFLUSH: u32 = 2;
const WAIT_MAX: Duration = Duration::from_secs(30);

/// An ext4 filesystem on a loop device, unmounted on drop.
struct LoopFs {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("running {program}: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

impl LoopFs {
    fn mount() -> Result<LoopFs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let image = dir.path().join("disk.img");
        let file = std::fs::File::create(&image).map_err(|e| e.to_string())?;
        file.set_len(IMAGE_BYTES).map_err(|e| e.to_string())?;
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).map_err(|e| e.to_string())?;
        let image = image.to_str().expect("utf-8 temp path");
        run("mkfs.ext4", &["-q", "-F", image])?;
        run("mount", &["-o", "loop", image, mount.to_str().unwrap()])?;
        Ok(LoopFs { mount, _dir: dir })
    }

    /// From now on every write and fsync on the filesystem fails with EIO.
    fn fail(&self) {
        let dir = std::fs::File::open(&self.mount).unwrap();
        let flags = EXT4_GOING_FLAGS_NOLOGFLUSH;
        // SAFETY: ioctl(2) EXT4_IOC_SHUTDOWN reads one u32 from `&flags`, which outlives the
        // call, on a descriptor we own.
        let rc = unsafe { libc::ioctl(dir.as_raw_fd(), EXT4_IOC_SHUTDOWN, &flags) };
        assert_eq!(
            rc,
            0,
            "EXT4_IOC_SHUTDOWN: {}",
            std::io::Error::last_os_error()
        );
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

fn batch(value: &str) -> bytes::Bytes {
    let mut builder = RecordBatchBuilder::new(0);
    builder.push(&Record {
        value: Some(value.as_bytes()),
        ..Record::default()
    });
    builder.finish()
}

async fn produce(client: &mut Client, partition: i32) -> Result<Option<i64>, ClientError> {
    let value = format!("to partition {partition}");
    client
        .produce(TOPIC, partition, batch(&value), Acks::All)
        .await
}

async fn fetch_error(client: &mut Client, partition: i32) -> Option<ResponseError> {
    let options = FetchOptions {
        max_wait_ms: 0,
        ..FetchOptions::default()
    };
    let fetched = client.fetch(TOPIC, &[(partition, 0)], &options).await;
    fetched.unwrap()[0].error
}

fn storage_error(result: &Result<Option<i64>, ClientError>) -> bool {
    matches!(result, Err(e) if e.kafka_error() == Some(ResponseError::KafkaStorageError))
}

/// The partitions of `TOPIC` whose directory is in `dir`.
fn partitions_in(dir: &Path) -> Vec<i32> {
    (0..PARTITIONS)
        .filter(|p| dir.join(format!("{TOPIC}-{p}")).is_dir())
        .collect()
}

/// The description of log dir `dir`.
fn described<'a>(dirs: &'a [LogDirDescription], dir: &Path) -> &'a LogDirDescription {
    let path = dir.display().to_string();
    let found = dirs.iter().find(|d| d.log_dir == path);
    found.unwrap_or_else(|| panic!("{path} not in {dirs:?}"))
}

#[test]
fn a_failing_disk_takes_its_log_dir_offline_and_the_other_dir_keeps_serving() {
    let failing = match LoopFs::mount() {
        Ok(fs) => fs,
        Err(reason) => {
            eprintln!("SKIPPED: cannot mount a loop filesystem for the second log dir: {reason}");
            return;
        }
    };
    let healthy = tempfile::tempdir().unwrap();
    let dirs = format!(
        "log.dirs={},{}",
        healthy.path().display(),
        failing.mount.display()
    );
    let mut broker = Broker::start(
        healthy.path(),
        &[&dirs, "num.shards=1", "offsets.topic.num.partitions=1"],
    );
    compio::runtime::Runtime::new()
        .unwrap()
        .block_on(check(&broker, healthy.path(), &failing));
    assert!(broker.log_contains("log dir failed"));
    // A stop with a failed dir is orderly; its logs are recovered at the next start.
    let (status, _) = broker.terminate();
    assert!(status.success(), "{status:?}");
    assert!(broker.log_contains("stopped (logs will be recovered at next start)"));
}

async fn check(broker: &Broker, healthy: &Path, failing: &LoopFs) {
    let mut client = Client::connect(&broker.bootstrap()).await.unwrap();
    client.create_topic(TOPIC, PARTITIONS, 1).await.unwrap();
    let (on_failing, on_healthy) = (partitions_in(&failing.mount), partitions_in(healthy));
    assert!(
        on_failing.len() >= 2 && !on_healthy.is_empty(),
        "placed over both dirs: {on_failing:?} {on_healthy:?}"
    );
    for p in 0..PARTITIONS {
        assert_eq!(
            produce(&mut client, p).await.unwrap(),
            Some(0),
            "partition {p}"
        );
    }
    let before = client
        .describe_log_dirs(1, &broker.bootstrap())
        .await
        .unwrap();
    assert_eq!(before.len(), 2, "{before:?}");
    for (dir, expected) in [
        (healthy, &on_healthy),
        (failing.mount.as_path(), &on_failing),
    ] {
        let d = described(&before, dir);
        assert_eq!(d.error, None, "{d:?}");
        let ours: Vec<_> = d.replicas.iter().filter(|r| r.topic == TOPIC).collect();
        let mut listed: Vec<i32> = ours.iter().map(|r| r.partition).collect();
        listed.sort();
        assert_eq!(&listed, expected, "{d:?}");
        // One record each: a non-empty segment, nothing between high watermark and log end.
        assert!(ours
            .iter()
            .all(|r| r.size_bytes > 0 && r.offset_lag == 0 && !r.is_future));
        assert!(
            d.total_bytes > 0 && (0..=d.total_bytes).contains(&d.usable_bytes),
            "{d:?}"
        );
    }
    failing.fail();
    // The first write after the failure fails with EIO...
    let struck = produce(&mut client, on_failing[0]).await;
    assert!(storage_error(&struck), "{struck:?}");
    // ...and takes every partition of its dir offline, written to since or not.
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        let other = produce(&mut client, on_failing[1]).await;
        if storage_error(&other) {
            break;
        }
        assert!(other.is_ok(), "{other:?}");
        assert!(
            Instant::now() < deadline,
            "the rest of the dir stayed online"
        );
        compio::time::sleep(Duration::from_millis(50)).await;
    }
    for &p in &on_failing {
        let error = fetch_error(&mut client, p).await;
        assert_eq!(
            error,
            Some(ResponseError::KafkaStorageError),
            "fetch of {p}"
        );
    }
    // DescribeLogDirs reports the failed dir as Kafka does: KAFKA_STORAGE_ERROR, nothing else.
    let after = client
        .describe_log_dirs(1, &broker.bootstrap())
        .await
        .unwrap();
    let d = described(&after, &failing.mount);
    assert_eq!(d.error, Some(ResponseError::KafkaStorageError), "{d:?}");
    assert!(d.replicas.is_empty() && d.total_bytes == -1, "{d:?}");
    assert_eq!(described(&after, healthy).error, None);
    // The healthy dir keeps serving, and new partitions go only there.
    for &p in &on_healthy {
        assert_eq!(
            produce(&mut client, p).await.unwrap(),
            Some(1),
            "partition {p}"
        );
        assert_eq!(fetch_error(&mut client, p).await, None, "fetch of {p}");
    }
    client.create_topic("after", 2, 1).await.unwrap();
    for p in 0..2 {
        assert!(healthy.join(format!("after-{p}")).is_dir(), "after-{p}");
    }
}
