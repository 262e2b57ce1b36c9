//! Kafka's `meta.properties`: which cluster and node a log dir belongs to, and the dir's own
//! id. [`check_log_dirs`] reads every dir of a node at startup and checks them against
//! each other and the config, as Kafka's `MetaPropertiesEnsemble` does.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::fsync_dir;
use crate::ids::{random_kafka_uuid, DirectoryId, TopicId};
use crate::properties::{last_value, parse_properties};

/// Kafka's file name, in every log dir and in the metadata log dir.
pub const META_PROPERTIES_FILE: &str = "meta.properties";
/// The version we write: Kafka's KRaft format (`node.id`, optional `directory.id`).
pub const META_PROPERTIES_VERSION: u32 = 1;
/// A `meta.properties` is a few short lines; more than this is not one.
pub const META_PROPERTIES_BYTES_MAX: u64 = 64 * 1024;

/// One dir's `meta.properties` (Kafka 4's v1 format):
///
/// ```text
/// #
/// #Written by sluice storage format
/// cluster.id=Nk018hRAQFytWskYqtQduw
/// directory.id=2bZhIEk8RbuWOHmd_Wz7ow
/// node.id=1
/// version=1
/// ```
///
/// Reading also takes Kafka's v0 (`broker.id`, from ZooKeeper days). Written to a temporary
/// file, fsynced and renamed, so a crash leaves the old file or the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub node_id: i32,
    pub cluster_id: String,
    /// Absent in files written before Kafka 3.7 (and by sluiced before `directory.id`).
    pub directory_id: Option<DirectoryId>,
}

#[derive(Debug, thiserror::Error)]
pub enum MetaPropertiesError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl MetaProperties {
    /// The file in `dir`; `None` if there is none (an unformatted dir).
    pub fn read(dir: &Path) -> Result<Option<MetaProperties>, MetaPropertiesError> {
        let path = dir.join(META_PROPERTIES_FILE);
        let io_error = |source| MetaPropertiesError::Io {
            path: path.clone(),
            source,
        };
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(e)),
        };
        let mut text = String::new();
        file.take(META_PROPERTIES_BYTES_MAX)
            .read_to_string(&mut text)
            .map_err(io_error)?;
        MetaProperties::parse(&text)
            .map(Some)
            .map_err(|reason| MetaPropertiesError::Invalid { path, reason })
    }

    fn parse(text: &str) -> Result<MetaProperties, String> {
        let pairs = parse_properties(text).map_err(|e| e.to_string())?;
        let get = |key| last_value(&pairs, key);
        let node_key = match get("version") {
            Some("1") => "node.id",
            Some("0") => "broker.id",
            Some(v) => return Err(format!("unsupported meta.properties version {v}")),
            None => return Err("no version".into()),
        };
        let node_id = get(node_key)
            .or(get("node.id"))
            .ok_or_else(|| format!("no {node_key}"))?;
        let node_id = node_id
            .parse::<i32>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("{node_key}={node_id} is not a node id"))?;
        let cluster_id = get("cluster.id").ok_or("no cluster.id")?.to_string();
        let directory_id = match get("directory.id") {
            None => None,
            Some(d) => Some(
                DirectoryId::from_kafka_string(d)
                    .ok_or_else(|| format!("directory.id={d} is not a Kafka UUID"))?,
            ),
        };
        Ok(MetaProperties {
            node_id,
            cluster_id,
            directory_id,
        })
    }

    /// The file's text; `writer` goes in the header comment.
    pub fn to_text(&self, writer: &str) -> String {
        let mut text = format!("#\n#Written by {writer}\ncluster.id={}\n", self.cluster_id);
        if let Some(d) = self.directory_id {
            text.push_str(&format!("directory.id={d}\n"));
        }
        text.push_str(&format!(
            "node.id={}\nversion={META_PROPERTIES_VERSION}\n",
            self.node_id
        ));
        text
    }

    /// Writes the file into `dir` (tmp, fsync, rename, fsync of the dir).
    pub fn write(&self, dir: &Path, writer: &str) -> Result<(), MetaPropertiesError> {
        let path = dir.join(META_PROPERTIES_FILE);
        let tmp = dir.join(format!("{META_PROPERTIES_FILE}.tmp"));
        let io_error = |source| MetaPropertiesError::Io {
            path: path.clone(),
            source,
        };
        let mut f = fs::File::create(&tmp).map_err(io_error)?;
        f.write_all(self.to_text(writer).as_bytes())
            .map_err(io_error)?;
        f.sync_all().map_err(io_error)?;
        fs::rename(&tmp, &path).map_err(io_error)?;
        fsync_dir(dir).map_err(io_error)
    }
}

/// A log dir as checked at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormattedDir {
    pub path: PathBuf,
    pub directory_id: DirectoryId,
}

/// Every dir of a node once checked against each other and the config: one cluster id,
/// one node id, distinct directory ids. The metadata log dir is `metadata.log.dir`, else
/// the first log dir; Kafka names a quorum voter by `node_id` plus its `directory_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormattedDirs {
    pub cluster_id: String,
    pub node_id: i32,
    /// `log.dirs`, in the config's order.
    pub log_dirs: Vec<FormattedDir>,
    /// `metadata.log.dir` (or the first log dir, then the same entry as `log_dirs[0]`).
    pub metadata_log_dir: FormattedDir,
}

impl FormattedDirs {
    /// The id a quorum voter is known by: its metadata log dir's `directory.id`.
    pub fn metadata_directory_id(&self) -> DirectoryId {
        self.metadata_log_dir.directory_id
    }
}

/// What startup does with a dir that has no `meta.properties`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unformatted {
    /// A single node formats its own empty dirs (the cluster id of its other dirs, else a
    /// new one).
    Format,
    /// A cluster node starts only on dirs formatted by `sluice storage format`.
    Refuse,
}

#[derive(Debug, thiserror::Error)]
pub enum LogDirsError {
    #[error("{dir} is not formatted (no {META_PROPERTIES_FILE})", dir = .dir.display())]
    Unformatted { dir: PathBuf },
    #[error(
        "{path}: stored node.id {found} does not match node.id {expected} in the config (is \
         this another node's data? a new node needs new, formatted dirs)",
        path = .path.display()
    )]
    NodeIdMismatch {
        path: PathBuf,
        found: i32,
        expected: i32,
    },
    #[error(
        "{path}: cluster.id {found} differs from cluster.id {expected} in {other}: every dir \
         of a node belongs to one cluster",
        path = .path.display(), other = .other.display()
    )]
    ClusterIdMismatch {
        path: PathBuf,
        found: String,
        other: PathBuf,
        expected: String,
    },
    #[error(
        "{path} and {other} have the same directory.id {id}: each dir needs its own (was one \
         copied from the other?)",
        path = .path.display(), other = .other.display()
    )]
    DuplicateDirectoryId {
        path: PathBuf,
        other: PathBuf,
        id: DirectoryId,
    },
    #[error(transparent)]
    MetaProperties(#[from] MetaPropertiesError),
}

/// Reads `meta.properties` in each of `log_dirs` and in `metadata_log_dir` (which may be
/// one of them), checks them as Kafka does, and writes what is missing: a new dir's file
/// (only with [`Unformatted::Format`]) and a `directory.id` in a file that has none
/// (Kafka's upgrade path). `writer` names us in written files. The dirs must exist and be
/// locked by the caller.
pub fn check_log_dirs(
    node_id: i32,
    log_dirs: &[PathBuf],
    metadata_log_dir: &Path,
    unformatted: Unformatted,
    writer: &str,
) -> Result<FormattedDirs, LogDirsError> {
    let mut all: Vec<PathBuf> = log_dirs.to_vec();
    if !all.iter().any(|d| d == metadata_log_dir) {
        all.push(metadata_log_dir.to_path_buf());
    }
    let mut found = Vec::with_capacity(all.len());
    for dir in &all {
        found.push(MetaProperties::read(dir)?);
    }
    let cluster_id = agree(node_id, &all, &found, unformatted)?;
    let mut checked: Vec<FormattedDir> = Vec::with_capacity(all.len());
    for (dir, meta) in all.iter().zip(found) {
        let directory_id = match meta {
            Some(MetaProperties {
                directory_id: Some(id),
                ..
            }) => id,
            _ => {
                let meta = MetaProperties {
                    node_id,
                    cluster_id: cluster_id.clone(),
                    directory_id: Some(DirectoryId::random()),
                };
                meta.write(dir, writer)?;
                meta.directory_id.expect("just set")
            }
        };
        if let Some(other) = checked.iter().find(|c| c.directory_id == directory_id) {
            return Err(LogDirsError::DuplicateDirectoryId {
                path: dir.clone(),
                other: other.path.clone(),
                id: directory_id,
            });
        }
        checked.push(FormattedDir {
            path: dir.clone(),
            directory_id,
        });
    }
    let metadata = checked
        .iter()
        .find(|c| c.path == metadata_log_dir)
        .expect("the metadata log dir was read")
        .clone();
    checked.truncate(log_dirs.len());
    Ok(FormattedDirs {
        cluster_id,
        node_id,
        log_dirs: checked,
        metadata_log_dir: metadata,
    })
}

/// The one cluster id the dirs agree on (a new one if none is formatted and formatting is
/// allowed); every formatted dir must name `node_id`.
fn agree(
    node_id: i32,
    dirs: &[PathBuf],
    found: &[Option<MetaProperties>],
    unformatted: Unformatted,
) -> Result<String, LogDirsError> {
    let mut cluster: Option<(&PathBuf, &str)> = None;
    for (dir, meta) in dirs.iter().zip(found) {
        let Some(meta) = meta else {
            if unformatted == Unformatted::Refuse {
                return Err(LogDirsError::Unformatted { dir: dir.clone() });
            }
            continue;
        };
        let path = dir.join(META_PROPERTIES_FILE);
        if meta.node_id != node_id {
            return Err(LogDirsError::NodeIdMismatch {
                path,
                found: meta.node_id,
                expected: node_id,
            });
        }
        match cluster {
            Some((other, expected)) if expected != meta.cluster_id => {
                return Err(LogDirsError::ClusterIdMismatch {
                    path,
                    found: meta.cluster_id.clone(),
                    other: other.join(META_PROPERTIES_FILE),
                    expected: expected.to_string(),
                })
            }
            Some(_) => {}
            None => cluster = Some((dir, &meta.cluster_id)),
        }
    }
    Ok(cluster.map_or_else(
        || TopicId(random_kafka_uuid()).to_kafka_string(),
        |(_, id)| id.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(node_id: i32, cluster_id: &str, directory_id: Option<DirectoryId>) -> MetaProperties {
        MetaProperties {
            node_id,
            cluster_id: cluster_id.into(),
            directory_id,
        }
    }

    #[test]
    #[rustfmt::skip]
    fn parses_kafka_versions() {
        let check = |text: &str, expect: Result<MetaProperties, &str>| {
            match (MetaProperties::parse(text), expect) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(e), Err(needle)) => assert!(e.contains(needle), "{e} / {needle}"),
                (got, want) => panic!("{text}: got {got:?}, expected {want:?}"),
            }
        };
        let d = DirectoryId::from_kafka_string("2bZhIEk8RbuWOHmd_Wz7ow").unwrap();
        check("version=1\nnode.id=3\ncluster.id=abc\n", Ok(meta(3, "abc", None)));
        check("version=1\nnode.id=3\ncluster.id=abc\ndirectory.id=2bZhIEk8RbuWOHmd_Wz7ow\n", Ok(meta(3, "abc", Some(d))));
        check("version=0\nbroker.id=2\ncluster.id=abc\n", Ok(meta(2, "abc", None)));
        check("#\n#Written by sluiced\nnode.id=1\nversion=1\ncluster.id=x\n", Ok(meta(1, "x", None)));
        check("version=2\nnode.id=1\ncluster.id=x\n", Err("unsupported meta.properties version 2"));
        check("node.id=1\ncluster.id=x\n", Err("no version"));
        check("version=1\ncluster.id=x\n", Err("no node.id"));
        check("version=1\nnode.id=-4\ncluster.id=x\n", Err("node.id=-4 is not a node id"));
        check("version=1\nnode.id=1\n", Err("no cluster.id"));
        check("version=1\nnode.id=1\ncluster.id=x\ndirectory.id=nope\n", Err("directory.id=nope"));
    }

    #[test]
    fn write_then_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(MetaProperties::read(dir.path()).unwrap(), None);
        let m = meta(7, "Nk018hRAQFytWskYqtQduw", Some(DirectoryId::random()));
        m.write(dir.path(), "test").unwrap();
        assert_eq!(MetaProperties::read(dir.path()).unwrap(), Some(m));
        assert!(!dir.path().join("meta.properties.tmp").exists());
    }

    /// Two log dirs `a`, `b` and a separate metadata dir `m`, with the given files.
    fn check_dirs(
        files: [Option<MetaProperties>; 3],
        unformatted: Unformatted,
    ) -> (tempfile::TempDir, Result<FormattedDirs, LogDirsError>) {
        let root = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = ["a", "b", "m"]
            .iter()
            .map(|n| root.path().join(n))
            .collect();
        for (dir, file) in dirs.iter().zip(files) {
            fs::create_dir(dir).unwrap();
            if let Some(m) = file {
                m.write(dir, "test").unwrap();
            }
        }
        let result = check_log_dirs(1, &dirs[..2], &dirs[2], unformatted, "test");
        (root, result)
    }

    #[test]
    #[rustfmt::skip]
    fn log_dirs_agree_or_refuse() {
        let id = || Some(DirectoryId::random());
        let ok = |files, unformatted| check_dirs(files, unformatted).1.unwrap();
        let err = |files, unformatted| check_dirs(files, unformatted).1.unwrap_err().to_string();
        use Unformatted::{Format, Refuse};
        let f = ok([Some(meta(1, "c", id())), Some(meta(1, "c", id())), Some(meta(1, "c", id()))], Refuse);
        assert_eq!((f.cluster_id.as_str(), f.node_id, f.log_dirs.len()), ("c", 1, 2));
        assert!(f.metadata_log_dir.path.ends_with("m"));
        let f = ok([None, Some(meta(1, "c", None)), None], Format);
        assert_eq!(f.cluster_id, "c", "new dirs join the cluster of the formatted one");
        assert_ne!(f.log_dirs[0].directory_id, f.log_dirs[1].directory_id);
        let f = ok([None, None, None], Format);
        assert_eq!(f.cluster_id.len(), 22);
        assert!(err([Some(meta(1, "c", id())), None, Some(meta(1, "c", id()))], Refuse).contains("/b is not formatted"));
        assert!(err([Some(meta(2, "c", id())), None, None], Format).contains("stored node.id 2 does not match node.id 1"));
        let e = err([Some(meta(1, "c", id())), Some(meta(1, "d", id())), None], Format);
        assert!(e.contains("cluster.id d differs from cluster.id c in") && e.contains("/a/meta.properties"), "{e}");
        let same = id();
        assert!(err([Some(meta(1, "c", same)), Some(meta(1, "c", same)), None], Format).contains("the same directory.id"));
    }

    #[test]
    fn missing_directory_id_is_added_and_kept() {
        let (root, result) =
            check_dirs([Some(meta(1, "c", None)), None, None], Unformatted::Format);
        let first = result.unwrap();
        let again = check_log_dirs(
            1,
            &[root.path().join("a"), root.path().join("b")],
            &root.path().join("m"),
            Unformatted::Refuse,
            "test",
        )
        .unwrap();
        assert_eq!(first, again, "ids written once, then read back");
    }
}
