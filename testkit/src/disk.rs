//! [`SmallDisk`]: a tmpfs of a fixed size mounted for one node's `log.dirs`, so a fault
//! test can fill the disk (ENOSPC on the broker's next write) and free it again. Needs root
//! (mount(8)); unmounted on drop (after the node's process is gone).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The filler is written in chunks of this size once `fallocate` leaves a remainder.
const FILL_CHUNK_BYTES: usize = 64 * 1024;

/// A mounted tmpfs (see the module docs).
pub struct SmallDisk {
    mount_point: PathBuf,
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
        })
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
