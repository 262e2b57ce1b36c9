//! Caps and pins a shard ring's io-wq workers: the kernel threads io_uring uses for work
//! that can block (splice from a file on a page-cache miss, buffered file I/O it cannot do
//! inline). Without a cap a burst of misses could spawn a worker per request; without an
//! affinity they would inherit the shard thread's single-CPU pin and compete with it.

use std::os::fd::RawFd;

/// io-wq workers per shard ring for bounded work (regular files).
pub const IOWQ_BOUNDED_WORKERS_MAX: u32 = 4;
/// io-wq workers per shard ring for unbounded work (sockets, pipes).
pub const IOWQ_UNBOUNDED_WORKERS_MAX: u32 = 4;

/// `io_uring_register(2)` opcodes (include/uapi/linux/io_uring.h).
const IORING_REGISTER_IOWQ_AFF: libc::c_uint = 17;
const IORING_REGISTER_IOWQ_MAX_WORKERS: libc::c_uint = 19;

// The affinity call passes nix's CpuSet as the kernel's cpu_set_t.
const _: () =
    assert!(std::mem::size_of::<nix::sched::CpuSet>() == std::mem::size_of::<libc::cpu_set_t>());

/// Limits the ring `ring_fd`'s io-wq workers and lets them run on `cpus` (the process's
/// affinity mask, not just the shard's CPU). Failures are reported, not fatal: an older
/// kernel without these opcodes still works, only unbounded.
pub fn limit_workers(ring_fd: RawFd, cpus: &[usize]) -> Result<(), String> {
    let mut max = [IOWQ_BOUNDED_WORKERS_MAX, IOWQ_UNBOUNDED_WORKERS_MAX];
    // SAFETY: io_uring_register(2) with IORING_REGISTER_IOWQ_MAX_WORKERS reads and writes
    // exactly two u32s at `max`, which lives for the whole call; `ring_fd` is the shard's
    // own io_uring descriptor.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring_fd,
            IORING_REGISTER_IOWQ_MAX_WORKERS,
            max.as_mut_ptr(),
            2,
        )
    };
    if rc < 0 {
        return Err(format!(
            "IORING_REGISTER_IOWQ_MAX_WORKERS: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut set = nix::sched::CpuSet::new();
    for cpu in cpus {
        set.set(*cpu).map_err(|e| format!("cpu {cpu}: {e}"))?;
    }
    // SAFETY: io_uring_register(2) with IORING_REGISTER_IOWQ_AFF reads a cpu_set_t of the
    // given size from `set`, which lives for the whole call (nix's CpuSet wraps exactly a
    // libc::cpu_set_t).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring_fd,
            IORING_REGISTER_IOWQ_AFF,
            &set as *const nix::sched::CpuSet,
            std::mem::size_of::<nix::sched::CpuSet>(),
        )
    };
    if rc < 0 {
        return Err(format!(
            "IORING_REGISTER_IOWQ_AFF: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
