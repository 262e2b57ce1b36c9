//! Ctrl-C and SIGTERM for the console tools, as Kafka's shutdown hooks: the first
//! SIGINT/SIGTERM only records itself, and the tool stops at its next check (the
//! consumer commits, leaves its group and prints its count; the producer sends what it
//! has read); a second one ends the process at once.
//!
//! Both signals are blocked in the calling thread before the I/O runtime starts (threads
//! started later inherit the mask), and one thread takes them with `sigwait`.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SigSet, Signal};

use crate::error::{Result, ToolError};

/// The first stop signal received (0: none yet).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Blocks SIGINT and SIGTERM and starts the thread that records them.
pub fn install() -> Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()
        .map_err(|e| ToolError::new(format!("blocking SIGINT/SIGTERM: {e}")))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let Ok(signal) = set.wait() else { continue };
            let first =
                RECEIVED.compare_exchange(0, signal as i32, Ordering::SeqCst, Ordering::SeqCst);
            if first.is_err() {
                std::process::exit(128 + signal as i32);
            }
        })
        .map_err(|e| ToolError::new(format!("starting the signal thread: {e}")))?;
    Ok(())
}

/// The stop signal received, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}
