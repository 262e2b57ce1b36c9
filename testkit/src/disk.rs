//! [`SmallDisk`]: a disk of a fixed size mounted for one node's `log.dirs`, so a fault
//! test can fill it (ENOSPC on the broker's next write) and free it again: a tmpfs
//! ([`SmallDisk::mount`]), or an ext4 file system on a loop device
//! ([`SmallDisk::mount_block`]), which a test can also make slow ([`SmallDisk::throttle`]:
//! the block layer's throttle for the node's process, in a blkio / io cgroup of its own).
//! Needs root (mount(8), losetup(8), mkfs.ext4(8)); unmounted on drop (after the node's
//! process is gone).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The filler is written in chunks of this size once `fallocate` leaves a remainder.
const FILL_CHUNK_BYTES: usize = 64 * 1024;

/// A mounted small disk (see the module docs).
pub struct SmallDisk {
    mount_point: PathBuf,
    /// The loop device and its image file, for a [`SmallDisk::mount_block`] disk.
    block: Option<(PathBuf, PathBuf)>,
}

/// Runs `program args`, its stderr as the error when it fails.
fn run(program: &str, args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("running {program}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{program}: {}", err.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` at `mount_point` (created if missing); panics if it cannot.
    pub fn mount(mount_point: &Path, bytes: u64) -> SmallDisk {
        SmallDisk::try_mount(mount_point, bytes)
            .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", mount_point.display()))
    }

    /// As [`SmallDisk::mount`], saying why not (not root, no mount(8)) for a test to skip.
    pub fn try_mount(mount_point: &Path, bytes: u64) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(mount_point).map_err(|e| e.to_string())?;
        let size = format!("size={bytes}");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(mount_point)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(SmallDisk {
            mount_point: mount_point.to_path_buf(),
            block: None,
        })
    }

    /// An ext4 file system of `bytes` on a loop device (its image a sparse file beside
    /// `mount_point`), mounted at `mount_point`; says why not (not root, no loop device, no
    /// mkfs.ext4) for a test to skip.
    pub fn mount_block(mount_point: &Path, bytes: u64) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(mount_point).map_err(|e| e.to_string())?;
        let image = mount_point.with_extension("img");
        File::create(&image)
            .and_then(|f| f.set_len(bytes))
            .map_err(|e| format!("image {}: {e}", image.display()))?;
        // No blocks reserved for root: the broker runs as root and must see ENOSPC.
        run(
            "mkfs.ext4",
            &[
                "-q".as_ref(),
                "-F".as_ref(),
                "-m".as_ref(),
                "0".as_ref(),
                image.as_os_str(),
            ],
        )?;
        let device = PathBuf::from(run(
            "losetup",
            &["-f".as_ref(), "--show".as_ref(), image.as_os_str()],
        )?);
        let disk = SmallDisk {
            mount_point: mount_point.to_path_buf(),
            block: Some((device.clone(), image)),
        };
        run("mount", &[device.as_os_str(), mount_point.as_os_str()])?;
        Ok(disk)
    }

    /// Why a test cannot use a throttled [`SmallDisk::mount_block`] disk here (not root, no
    /// loop device, no mkfs.ext4, no blkio / io cgroup controller), or None if it can.
    pub fn throttle_unavailable() -> Option<String> {
        let dir = tempfile::tempdir().ok()?;
        if let Err(e) = SmallDisk::mount_block(&dir.path().join("probe"), 16 << 20) {
            return Some(format!("no loop-mounted ext4: {e}"));
        }
        cgroup_root().err()
    }

    /// Throttles the writes of process `pid` to this disk (a [`SmallDisk::mount_block`]
    /// one) to `bytes_per_second` and `iops` until the returned guard drops. The throttle
    /// applies to what the process itself submits, which includes the writeback its
    /// fsyncs start (what makes `log.flush.interval.messages=1` slow); the kernel's own
    /// background writeback is not throttled under cgroup v1.
    pub fn throttle(&self, pid: i32, bytes_per_second: u64, iops: u64) -> Result<Throttle, String> {
        let (device, _) = self
            .block
            .as_ref()
            .ok_or("a tmpfs cannot be throttled: use SmallDisk::mount_block")?;
        Throttle::new(device, pid, (bytes_per_second, iops))
    }

    pub fn path(&self) -> &Path {
        &self.mount_point
    }

    fn filler(&self) -> PathBuf {
        self.mount_point.join("filler")
    }

    /// Free bytes on the disk.
    pub fn free_bytes(&self) -> u64 {
        sluice_engine::logdir::filesystem_space(&self.mount_point)
            .expect("statvfs of the small disk")
            .usable_bytes
    }

    /// Takes every free byte (the broker's next write gets ENOSPC) until [`SmallDisk::free`].
    pub fn fill(&self) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.filler())
            .expect("filler file");
        fallocate_grow(&file, self.free_bytes());
        let chunk = vec![0u8; FILL_CHUNK_BYTES];
        // What fallocate left (a rounding, or space freed meanwhile): written until ENOSPC.
        for _ in 0..(1 << 20) {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", self.mount_point.display()),
            }
        }
    }

    /// Gives back what [`SmallDisk::fill`] took.
    pub fn free(&self) {
        match std::fs::remove_file(self.filler()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("removing the filler: {e}"),
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
        if let Some((device, image)) = &self.block {
            let _ = Command::new("losetup").arg("-d").arg(device).status();
            let _ = std::fs::remove_file(image);
        }
    }
}

/// A process's writes to one block device slowed down (see [`SmallDisk::throttle`]); the
/// process goes back to the root cgroup and the cgroup is removed on drop.
pub struct Throttle {
    /// The hierarchy's root (where the process goes back to) and the cgroup made for it.
    root: PathBuf,
    cgroup: PathBuf,
    pid: i32,
}

impl Throttle {
    fn new(device: &Path, pid: i32, (bps, iops): (u64, u64)) -> Result<Throttle, String> {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(device)
            .map_err(|e| format!("{}: {e}", device.display()))?
            .rdev();
        let dev = format!("{}:{}", libc::major(rdev), libc::minor(rdev));
        let write = |path: &Path, value: &str| {
            std::fs::write(path, value).map_err(|e| format!("{} <- {value}: {e}", path.display()))
        };
        let root = cgroup_root()?;
        if root == Path::new(CGROUP_V2) {
            write(&root.join("cgroup.subtree_control"), "+io")?;
        }
        let cgroup = root.join(format!("sluice-testkit-throttle-{pid}"));
        std::fs::create_dir_all(&cgroup).map_err(|e| format!("{}: {e}", cgroup.display()))?;
        let throttle = Throttle { root, cgroup, pid };
        if throttle.root == Path::new(CGROUP_V1_BLKIO) {
            let c = &throttle.cgroup;
            write(
                &c.join("blkio.throttle.write_bps_device"),
                &format!("{dev} {bps}"),
            )?;
            write(
                &c.join("blkio.throttle.write_iops_device"),
                &format!("{dev} {iops}"),
            )?;
        } else {
            let max = format!("{dev} wbps={bps} wiops={iops}");
            write(&throttle.cgroup.join("io.max"), &max)?;
        }
        // Every thread of the process, io_uring's workers included (they share its cgroup).
        write(&throttle.cgroup.join("cgroup.procs"), &pid.to_string())?;
        Ok(throttle)
    }
}

const CGROUP_V1_BLKIO: &str = "/sys/fs/cgroup/blkio";
const CGROUP_V2: &str = "/sys/fs/cgroup";

/// The hierarchy with a block I/O throttle: cgroup v1's blkio, or cgroup v2 with `io`.
fn cgroup_root() -> Result<PathBuf, String> {
    let v1 = Path::new(CGROUP_V1_BLKIO);
    if v1.join("blkio.throttle.write_bps_device").exists() {
        return Ok(v1.to_path_buf());
    }
    let v2 = Path::new(CGROUP_V2);
    let controllers = std::fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
    match controllers.split_whitespace().any(|c| c == "io") {
        true => Ok(v2.to_path_buf()),
        false => Err("no blkio (cgroup v1) or io (cgroup v2) controller".into()),
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        let _ = std::fs::write(self.root.join("cgroup.procs"), self.pid.to_string());
        let _ = std::fs::remove_dir(&self.cgroup);
    }
}

/// Grows `file` by up to `bytes` of allocated (not sparse) space; a refusal for lack of
/// space is not an error (the caller writes what is left).
fn fallocate_grow(file: &File, bytes: u64) {
    use std::os::fd::AsRawFd;
    let start = file.metadata().expect("filler metadata").len();
    let (Ok(offset), Ok(len)) = (i64::try_from(start), i64::try_from(bytes)) else {
        return;
    };
    if len == 0 {
        return;
    }
    // SAFETY: fallocate(2) on an open file descriptor; mode 0 only allocates blocks.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "fallocate: {e}");
    }
}
