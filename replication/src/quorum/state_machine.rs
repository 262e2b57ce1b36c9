//! The metadata state machine: the `MetadataImage` built by applying committed entries, its
//! snapshots (file `snapshot` in `__cluster_metadata-0/`: JSON of the snapshot's meta and
//! image, replaced atomically), and the publication of each new image to the broker
//! (a `tokio::sync::watch`, readable from any runtime).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::log_store::write_atomically;
use super::TypeConfig;
use crate::image::MetadataImage;
use crate::records::ApplyResult;
use crate::{Node, NodeId};

#[derive(Serialize, Deserialize, Clone)]
pub struct StoredSnapshot {
    pub meta: SnapshotMeta<NodeId, Node>,
    pub image: MetadataImage,
}

/// Lives on the controller thread.
pub struct StateMachine {
    dir: PathBuf,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    image: Arc<MetadataImage>,
    publish: watch::Sender<Arc<MetadataImage>>,
}

fn sm_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageError::IO {
        source: StorageIOError::write_state_machine(&e),
    }
}

impl StateMachine {
    /// Opens the state machine at its last snapshot (the log after it is replayed by openraft).
    pub fn open(dir: &Path, publish: watch::Sender<Arc<MetadataImage>>) -> io::Result<Self> {
        let path = dir.join("snapshot");
        let snapshot: Option<StoredSnapshot> = match std::fs::read(&path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::other(format!("{}: undecodable snapshot: {e}", path.display()))
            })?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let mut sm = StateMachine {
            dir: dir.to_path_buf(),
            last_applied: None,
            membership: StoredMembership::default(),
            image: Arc::new(MetadataImage::default()),
            publish,
        };
        if let Some(s) = snapshot {
            sm.install(s);
        }
        Ok(sm)
    }

    fn install(&mut self, s: StoredSnapshot) {
        self.last_applied = s.meta.last_log_id;
        self.membership = s.meta.last_membership.clone();
        self.image = Arc::new(s.image);
        self.publish.send_replace(self.image.clone());
    }

    fn build(&self) -> StoredSnapshot {
        let id = match self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.image.applied_index),
            None => "empty".to_string(),
        };
        StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: self.last_applied,
                last_membership: self.membership.clone(),
                snapshot_id: id,
            },
            image: (*self.image).clone(),
        }
    }
}

pub struct SnapshotBuilder {
    snapshot: StoredSnapshot,
    dir: PathBuf,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let bytes = serde_json::to_vec(&self.snapshot).map_err(sm_err)?;
        write_atomically(&self.dir.join("snapshot"), &bytes).map_err(sm_err)?;
        Ok(Snapshot {
            meta: self.snapshot.meta.clone(),
            snapshot: Box::new(self.snapshot.clone()),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>), StorageError<NodeId>> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResult>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut results = Vec::new();
        let image = Arc::make_mut(&mut self.image);
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            let index = entry.log_id.index;
            results.push(match entry.payload {
                EntryPayload::Blank => {
                    image.applied_index = index;
                    ApplyResult {
                        index,
                        rejected: vec![],
                    }
                }
                EntryPayload::Normal(batch) => image.apply(index, &batch),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    image.applied_index = index;
                    ApplyResult {
                        index,
                        rejected: vec![],
                    }
                }
            });
        }
        self.publish.send_replace(self.image.clone());
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            snapshot: self.build(),
            dir: self.dir.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<StoredSnapshot>, StorageError<NodeId>> {
        Ok(Box::new(self.build()))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<StoredSnapshot>,
    ) -> Result<(), StorageError<NodeId>> {
        let mut s = *snapshot;
        s.meta = meta.clone();
        let bytes = serde_json::to_vec(&s).map_err(sm_err)?;
        write_atomically(&self.dir.join("snapshot"), &bytes).map_err(sm_err)?;
        self.install(s);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        // The newest snapshot a builder wrote (openraft purges the log behind it).
        let path = self.dir.join("snapshot");
        let stored: Option<StoredSnapshot> = match std::fs::read(&path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(sm_err)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(sm_err(e)),
        };
        Ok(stored.map(|s| Snapshot {
            meta: s.meta.clone(),
            snapshot: Box::new(s),
        }))
    }
}
