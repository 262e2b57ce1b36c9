//! A per-shard bounded cache of read descriptors for sealed (non-active) segments.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use compio_driver::SharedFd;

/// A segment `.log` descriptor shared with in-flight io_uring operations: it is closed
/// when the last clone (cache entry, `FileSlice`, pending write) is dropped.
pub type SegmentFile = SharedFd<File>;

/// Default bound on cached sealed-segment descriptors per shard. File descriptors are a
/// budget: one per active segment, plus at most this many per shard for older segments.
pub const SEGMENT_FILES_OPEN_MAX: usize = 256;

/// Per-shard LRU cache of read-only descriptors for sealed segments. Evicting an entry
/// drops the cache's reference; the descriptor closes once in-flight reads finish.
///
/// Lives on one shard (`!Send`, shared by the shard's logs through `Rc`).
#[derive(Debug)]
pub struct FileCache {
    open_files_max: usize,
    inner: RefCell<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    files: HashMap<PathBuf, (SegmentFile, u64)>,
    clock: u64,
}

impl FileCache {
    pub fn new(open_files_max: usize) -> FileCache {
        assert!(
            open_files_max > 0,
            "the file cache must hold at least one file"
        );
        FileCache {
            open_files_max,
            inner: RefCell::new(CacheInner::default()),
        }
    }

    /// The cached descriptor for `path`, opening it read-only on a miss (synchronous
    /// open(2); off the append path).
    pub fn open(&self, path: &Path) -> io::Result<SegmentFile> {
        let mut inner = self.inner.borrow_mut();
        inner.clock += 1;
        let clock = inner.clock;
        if let Some((file, used)) = inner.files.get_mut(path) {
            *used = clock;
            return Ok(file.clone());
        }
        let file = SharedFd::new(File::open(path)?);
        self.insert_locked(&mut inner, path, file.clone());
        Ok(file)
    }

    /// Hands a descriptor over to the cache (a segment that just rolled).
    pub fn insert(&self, path: &Path, file: SegmentFile) {
        let mut inner = self.inner.borrow_mut();
        inner.clock += 1;
        self.insert_locked(&mut inner, path, file);
    }

    fn insert_locked(&self, inner: &mut CacheInner, path: &Path, file: SegmentFile) {
        while inner.files.len() >= self.open_files_max {
            let oldest = inner
                .files
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(path, _)| path.clone())
                .expect("a full cache is not empty");
            inner.files.remove(&oldest);
        }
        let clock = inner.clock;
        inner.files.insert(path.to_owned(), (file, clock));
        assert!(inner.files.len() <= self.open_files_max);
    }

    /// Drops the cached descriptor of `path` (the file is being truncated or deleted).
    pub fn forget(&self, path: &Path) {
        self.inner.borrow_mut().files.remove(path);
    }

    /// Drops every cached descriptor under `dir` (a partition being deleted).
    pub fn forget_dir(&self, dir: &Path) {
        self.inner
            .borrow_mut()
            .files
            .retain(|path, _| !path.starts_with(dir));
    }

    pub fn open_files(&self) -> usize {
        self.inner.borrow().files.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..3)
            .map(|i| dir.path().join(format!("{i}.log")))
            .collect();
        for path in &paths {
            std::fs::write(path, b"x").unwrap();
        }
        let cache = FileCache::new(2);
        cache.open(&paths[0]).unwrap();
        cache.open(&paths[1]).unwrap();
        cache.open(&paths[0]).unwrap();
        cache.open(&paths[2]).unwrap();
        assert_eq!(cache.open_files(), 2);
        let inner = cache.inner.borrow();
        assert!(inner.files.contains_key(&paths[0]));
        assert!(!inner.files.contains_key(&paths[1]));
    }
}
