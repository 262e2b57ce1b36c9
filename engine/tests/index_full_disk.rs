//! An index's preallocated tail is sparse; on a full file system a write through its
//! mapping into a hole would be answered with SIGBUS (the fault suite's DiskFull killed a
//! broker that way). The index allocates its blocks first and leaves an entry out when it
//! finds no room. On a small tmpfs (needs root to mount; without it the test says SKIPPED).

use std::io::Write;
use std::path::Path;
use std::process::Command;

use sluice_engine::index::OffsetIndex;

/// A tmpfs of `bytes` at `dir`, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, bytes: u64) -> Option<Tmpfs> {
        let size = format!("size={bytes}");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the file system is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    for _ in 0..100_000 {
        if file.write_all(&chunk).is_err() {
            return;
        }
    }
    panic!("the tmpfs never filled");
}

#[test]
fn an_index_on_a_full_disk_leaves_entries_out_instead_of_faulting() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_tmpfs) = Tmpfs::mount(dir.path(), 1 << 20) else {
        eprintln!("SKIPPED: cannot mount a tmpfs (not root?)");
        return;
    };
    let mut index = OffsetIndex::create(&dir.path().join("0.index"), 0, 1 << 20).unwrap();
    // The first page's entries, then the disk fills.
    for i in 0..512 {
        index.append(i, i as u32 * 10);
    }
    assert_eq!(index.entries(), 512);
    fill(&dir.path().join("filler"));
    // Past the first page: no block, so no entry (and no SIGBUS).
    for i in 512..2_000 {
        index.append(i, i as u32 * 10);
    }
    assert_eq!(
        index.entries(),
        512,
        "entries written with no room for them"
    );
    std::fs::remove_file(dir.path().join("filler")).unwrap();
    for i in 2_000..3_000 {
        index.append(i, i as u32 * 10);
    }
    assert_eq!(
        index.entries(),
        1_512,
        "the index resumes once there is room"
    );
    assert_eq!(index.last_entry(), (2_999, 29_990));
}
