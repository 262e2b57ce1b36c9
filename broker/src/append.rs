//! The shard's append path: group commit.
//!
//! Every produce for a partition this shard owns queues an `AppendReq`. One task per shard
//! drains the queue each loop turn: it prepares every queued append (validation, offset
//! assignment — no copy of record bytes), submits all their writes to io_uring together,
//! then, when the flush policy asks for it, one fdatasync per touched log covers all of them.
//! When everything before the round is already durable (the usual case under
//! `log.flush.interval.messages=1`), the run's writes carry `RWF_DSYNC` instead: write and
//! sync in one io_uring request, ordered by the kernel, one per segment file and round.
//! Produce responses are released only after the completions that make them true.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_channel::oneshot;
use futures_util::future::{join_all, select, Either};
use sluice_engine::{write_coalesced, PartitionLog, PendingAppend, SyncJob, WrittenAppend};
use sluice_engine::{AppendError, AppendOutcome, FollowerAppendError};

use crate::config::Config;
use crate::log_dir_failure::LogDirFailures;
use crate::metadata::PartitionInfo;
use crate::shard::LogRef;

/// Appends queued on one shard at most (producers wait beyond it).
pub const APPEND_QUEUE_MAX: usize = 4096;
/// Appends handled in one group-commit round at most.
pub const ROUND_APPENDS_MAX: usize = 1024;
/// How often the appender checks whether a log refusing appends for a full disk has space
/// again (`PartitionLog::recover_after_disk_full`: one statvfs per such log).
pub const LOG_DISK_FULL_PROBE_INTERVAL_MS: u64 = 1000;

/// Offsets assigned to an appended set of batches.
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The time stamped into the batches (`message.timestamp.type=LogAppendTime`).
    pub log_append_time_ms: Option<i64>,
}

impl Appended {
    /// The answer to a producer's retry: the original offsets (its append time is not
    /// kept, as in Kafka's duplicate answers).
    fn original(base_offset: i64, last_offset: i64) -> Appended {
        Appended {
            base_offset,
            last_offset,
            log_append_time_ms: None,
        }
    }
}

#[derive(Debug)]
pub enum AppendFailure {
    Rejected(AppendError),
    /// A follower's append refused (`AppendOrigin::Replication` only).
    Replication(FollowerAppendError),
    Storage(String),
}

/// Kafka's `AppendOrigin`: whose records an append carries, which decides how the round
/// prepares them. Both kinds share the round's coalesced writes and syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer's (or the group coordinator's) records on the leader: validated, offsets
    /// and the leader epoch assigned, idempotence checked (`PartitionLog::prepare_append`).
    Client,
    /// A follower's copy of its leader's batches, kept byte for byte
    /// (`PartitionLog::prepare_append_as_follower`).
    Replication,
}

/// An append in the queue; `wait` resolves once it is written (or refused).
pub struct AppendTicket(oneshot::Receiver<Result<Appended, AppendFailure>>);

impl AppendTicket {
    pub async fn wait(self) -> Result<Appended, AppendFailure> {
        self.0
            .await
            .unwrap_or_else(|_| Err(AppendFailure::Storage("the append task stopped".into())))
    }
}

struct AppendReq {
    log: LogRef,
    partition: Arc<PartitionInfo>,
    origin: AppendOrigin,
    records: Bytes,
    reply: oneshot::Sender<Result<Appended, AppendFailure>>,
}

/// Lives on one shard.
pub struct Appender {
    tx: async_channel::Sender<AppendReq>,
    rx: async_channel::Receiver<AppendReq>,
    /// `log.flush.interval.messages`: fsync before ack once this many messages are unflushed.
    /// (A dynamic broker config: `set_flush_interval_messages`.)
    flush_interval_messages: Cell<Option<u64>>,
    /// Logs refusing appends for a full disk, probed between rounds (none of their writes
    /// is in flight then) every `LOG_DISK_FULL_PROBE_INTERVAL_MS`.
    disk_full: RefCell<Vec<LogRef>>,
    /// Logs that began refusing appends for a full disk since `take_newly_full` last ran
    /// (at most one entry per log: a log is added when it joins `disk_full`), and the
    /// event that says so (`replica::disk_full` reports them to the controller).
    newly_full: RefCell<Vec<LogRef>>,
    newly_full_event: event_listener::Event,
    /// Where a failed write or sync takes its log dir offline (`log_dir_failure`).
    failures: Arc<LogDirFailures>,
}

impl Appender {
    pub fn new(config: &Config, failures: Arc<LogDirFailures>) -> Appender {
        let (tx, rx) = async_channel::bounded(APPEND_QUEUE_MAX);
        Appender {
            tx,
            rx,
            flush_interval_messages: Cell::new(config.log_flush_interval_messages),
            disk_full: RefCell::new(Vec::new()),
            newly_full: RefCell::new(Vec::new()),
            newly_full_event: event_listener::Event::new(),
            failures,
        }
    }

    pub fn set_flush_interval_messages(&self, messages: Option<u64>) {
        self.flush_interval_messages.set(messages);
    }

    /// Queues `records` for `log` and waits until they are written (and fsynced, if the
    /// policy says so).
    pub async fn append(
        &self,
        log: LogRef,
        partition: Arc<PartitionInfo>,
        records: Bytes,
    ) -> Result<Appended, AppendFailure> {
        self.enqueue(log, partition, records).await?.wait().await
    }

    /// Queues `records` for `log` (waiting only while the queue is full) and returns the
    /// ticket that resolves when they are written. Appends are taken in queue order, so a
    /// connection that enqueues its produce requests in order keeps their order.
    pub async fn enqueue(
        &self,
        log: LogRef,
        partition: Arc<PartitionInfo>,
        records: Bytes,
    ) -> Result<AppendTicket, AppendFailure> {
        self.enqueue_from(AppendOrigin::Client, (log, partition), records)
            .await
    }

    /// `enqueue` for `origin`: a follower queues the batches its fetch brought with
    /// `AppendOrigin::Replication` (they are written unchanged; the ticket's offsets are the
    /// leader's).
    pub async fn enqueue_from(
        &self,
        origin: AppendOrigin,
        (log, partition): (LogRef, Arc<PartitionInfo>),
        records: Bytes,
    ) -> Result<AppendTicket, AppendFailure> {
        let (reply, answer) = oneshot::channel();
        let req = AppendReq {
            log,
            partition,
            origin,
            records,
            reply,
        };
        if self.tx.send(req).await.is_err() {
            return Err(AppendFailure::Storage("the shard is stopping".into()));
        }
        Ok(AppendTicket(answer))
    }

    /// The group-commit loop; returns when the queue is closed and drained.
    pub async fn run(&self) {
        let probe = Duration::from_millis(LOG_DISK_FULL_PROBE_INTERVAL_MS);
        let mut last_probe = Instant::now();
        loop {
            let first = if self.disk_full.borrow().is_empty() {
                self.rx.recv().await.ok()
            } else {
                let wait = probe.saturating_sub(last_probe.elapsed());
                match select(
                    Box::pin(self.rx.recv()),
                    Box::pin(compio::time::sleep(wait)),
                )
                .await
                {
                    Either::Left((r, _)) => r.ok(),
                    Either::Right(_) => None,
                }
            };
            if last_probe.elapsed() >= probe {
                self.probe_disk_full();
                last_probe = Instant::now();
            }
            let Some(first) = first else {
                if self.rx.is_closed() && self.rx.is_empty() {
                    return;
                }
                continue;
            };
            let mut round = vec![first];
            while round.len() < ROUND_APPENDS_MAX {
                match self.rx.try_recv() {
                    Ok(req) => round.push(req),
                    Err(_) => break,
                }
            }
            self.round(round).await;
        }
    }

    /// Resumes the logs whose disk has room again; keeps the others for the next probe.
    fn probe_disk_full(&self) {
        self.disk_full.borrow_mut().retain(|log| {
            let Ok(mut l) = log.try_borrow_mut() else {
                return true;
            };
            match l.recover_after_disk_full() {
                Ok(resumed) => !resumed && l.is_disk_full(),
                Err(e) => {
                    tracing::error!("{e}: the partition is offline until restart");
                    false
                }
            }
        });
    }

    /// Whether an append can be queued now without waiting.
    pub fn has_room(&self) -> bool {
        !self.tx.is_full()
    }

    /// No new appends are accepted; `run` finishes what is queued and returns.
    pub fn close(&self) {
        self.tx.close();
    }

    async fn round(&self, round: Vec<AppendReq>) {
        let mut prepared: Vec<(AppendReq, PendingAppend)> = Vec::with_capacity(round.len());
        let mut duplicates = Vec::new();
        for req in round {
            let result = prepare(&req);
            match result {
                Ok(AppendOutcome::Write(mut pending)) => {
                    if self.sync_due_with(&req.log.borrow(), &pending) {
                        pending.write_durably();
                    }
                    prepared.push((req, pending))
                }
                // A producer's retry: answered with the original offsets after this round's
                // writes and syncs (its original may be one of them).
                Ok(AppendOutcome::Duplicate {
                    base_offset,
                    last_offset,
                }) => duplicates.push((req, Appended::original(base_offset, last_offset))),
                Err(failure) => {
                    let _ = req.reply.send(Err(failure));
                }
            }
        }
        let (reqs, pendings): (Vec<AppendReq>, Vec<PendingAppend>) = prepared.into_iter().unzip();
        let written = write_coalesced(pendings).await;

        let mut results = Vec::with_capacity(reqs.len());
        let mut touched: HashMap<*const (), (LogRef, Arc<PartitionInfo>)> = HashMap::new();
        for (req, outcome) in reqs.iter().zip(written) {
            let key = Rc::as_ptr(&req.log) as *const ();
            results.push(complete(&mut req.log.borrow_mut(), outcome));
            touched
                .entry(key)
                .or_insert_with(|| (req.log.clone(), req.partition.clone()));
        }

        let sync_failed = self.sync_touched(touched.values().map(|(l, _)| l)).await;
        for (req, mut result) in reqs.into_iter().zip(results) {
            if let (Ok(_), Some(err)) = (
                &result,
                sync_failed.get(&(Rc::as_ptr(&req.log) as *const ())),
            ) {
                result = Err(AppendFailure::Storage(err.clone()));
            }
            let _ = req.reply.send(result);
        }
        for (req, appended) in duplicates {
            let _ = req.reply.send(match req.log.borrow().accepts_appends() {
                true => Ok(appended),
                false => Err(AppendFailure::Storage(
                    "the log stopped accepting appends (disk full or failed)".into(),
                )),
            });
        }
        self.note_disk_full(touched.values().map(|(l, _)| l));
        for (log, _) in touched.values() {
            self.failures.note(&log.borrow());
        }
        for (_, partition) in touched.values() {
            partition.appended.notify(usize::MAX);
        }
        self.sync_rolled(touched.values().map(|(l, _)| l));
    }

    fn note_disk_full<'a>(&self, logs: impl Iterator<Item = &'a LogRef>) {
        let mut full = self.disk_full.borrow_mut();
        let mut newly = self.newly_full.borrow_mut();
        for log in logs {
            if log.borrow().is_disk_full() && !full.iter().any(|l| Rc::ptr_eq(l, log)) {
                full.push(log.clone());
                if !newly.iter().any(|l| Rc::ptr_eq(l, log)) {
                    newly.push(log.clone());
                }
                self.newly_full_event.notify(usize::MAX);
            }
        }
    }

    /// A listener that fires when a log begins refusing appends for a full disk (take the
    /// listener before `take_newly_full`, so nothing in between is missed).
    pub fn listen_newly_full(&self) -> event_listener::EventListener {
        self.newly_full_event.listen()
    }

    /// The logs that began refusing appends for a full disk since the last call.
    pub fn take_newly_full(&self) -> Vec<LogRef> {
        std::mem::take(&mut *self.newly_full.borrow_mut())
    }

    /// Whether the flush policy wants `log` synced once `pending` is written, and a durable
    /// write (`RWF_DSYNC`) can do it: everything before this round is already durable, so
    /// syncing the written range alone makes the whole log durable. Otherwise (or when the
    /// write could not advance the recovery point) `sync_touched` runs an fdatasync.
    fn sync_due_with(&self, log: &PartitionLog, pending: &PendingAppend) -> bool {
        let unflushed_after = (pending.last_offset + 1 - log.recovery_point()).max(0) as u64;
        self.flush_interval_messages
            .get()
            .is_some_and(|n| unflushed_after >= n && log.unflushed_messages() == 0)
    }

    /// Rolled segments and new directories are fsynced whatever the flush policy, off the
    /// ack path (Kafka flushes a rolled segment asynchronously too).
    fn sync_rolled<'a>(&self, logs: impl Iterator<Item = &'a LogRef>) {
        let jobs = collect_sync_jobs(logs, PartitionLog::roll_sync_due);
        if jobs.is_empty() {
            return;
        }
        let failures = self.failures.clone();
        compio::runtime::spawn(async move {
            for (_, err) in run_sync_jobs(jobs, &failures).await {
                tracing::error!("{err}");
            }
        })
        .detach();
    }

    /// Runs the fsyncs the flush policy asks for; returns the logs whose sync failed.
    async fn sync_touched<'a>(
        &self,
        logs: impl Iterator<Item = &'a LogRef>,
    ) -> HashMap<*const (), String> {
        let policy = self.flush_interval_messages.get();
        let jobs = collect_sync_jobs(logs, |l| {
            policy.is_some_and(|n| l.unflushed_messages() >= n)
        });
        run_sync_jobs(jobs, &self.failures).await
    }
}

/// Makes one written append visible, or records its failure.
fn complete(
    log: &mut PartitionLog,
    outcome: std::io::Result<WrittenAppend>,
) -> Result<Appended, AppendFailure> {
    match outcome {
        // An earlier write of this log in the round failed: this one follows a hole and is
        // cut when the log resumes; never acknowledged.
        Ok(_) if !log.accepts_appends() => Err(AppendFailure::Storage(format!(
            "write to {} failed: an earlier write of this round failed",
            log.dir().display()
        ))),
        Ok(w) => {
            let appended = Appended {
                base_offset: w.base_offset,
                last_offset: w.last_offset,
                log_append_time_ms: w.log_append_time_ms,
            };
            log.complete_append(w);
            Ok(appended)
        }
        Err(e) => {
            log.fail_append(&e);
            Err(AppendFailure::Storage(format!(
                "write to {} failed: {e}",
                log.dir().display()
            )))
        }
    }
}

/// Prepares one queued append as its origin asks.
fn prepare(req: &AppendReq) -> Result<AppendOutcome, AppendFailure> {
    let mut log = req.log.borrow_mut();
    match req.origin {
        AppendOrigin::Client => log
            .prepare_append(req.records.clone())
            .map_err(AppendFailure::Rejected),
        AppendOrigin::Replication => log
            .prepare_append_as_follower(req.records.clone())
            .map(AppendOutcome::Write)
            .map_err(AppendFailure::Replication),
    }
}

/// The sync jobs of the logs for which `due` holds.
pub fn collect_sync_jobs<'a>(
    logs: impl Iterator<Item = &'a LogRef>,
    due: impl Fn(&PartitionLog) -> bool,
) -> Vec<(LogRef, SyncJob)> {
    logs.filter_map(|log| {
        let job = {
            let mut l = log.borrow_mut();
            if due(&l) {
                l.sync_job()
            } else {
                None
            }
        };
        job.map(|j| (log.clone(), j))
    })
    .collect()
}

/// Runs sync jobs concurrently and records what they made durable; a failed sync takes the
/// log, and with it its log dir, offline.
pub async fn run_sync_jobs(
    jobs: Vec<(LogRef, SyncJob)>,
    failures: &LogDirFailures,
) -> HashMap<*const (), String> {
    let (logs, jobs): (Vec<LogRef>, Vec<SyncJob>) = jobs.into_iter().unzip();
    let outcomes = join_all(jobs.into_iter().map(SyncJob::run)).await;
    let mut failed = HashMap::new();
    for (log, outcome) in logs.iter().zip(outcomes) {
        let mut l = log.borrow_mut();
        match outcome {
            Ok(upto) => l.mark_flushed(upto),
            Err(e) => {
                l.fail_append(&e);
                failures.note(&l);
                failed.insert(
                    Rc::as_ptr(log) as *const (),
                    format!("fsync of {} failed: {e}", l.dir().display()),
                );
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use sluice_engine::testing::build_batch;
    use sluice_engine::{
        FetchIsolation, FileCache, FirstBatch, HighWatermarkMode, LeaderEpoch, LogConfig, TopicId,
    };

    use super::*;

    fn log(dir: &std::path::Path, name: &str, files: &Rc<FileCache>) -> LogRef {
        let id = TopicId(uuid::Uuid::from_u128(9));
        let config = LogConfig::default();
        let log = PartitionLog::create(dir, name, 0, id, config, files.clone()).unwrap();
        Rc::new(RefCell::new(log))
    }

    /// Leader and follower appends go through the same appender: the follower's copy keeps
    /// the leader's offsets and bytes, and a copy that does not continue its log is refused.
    #[test]
    fn one_appender_serves_leader_and_follower_appends() {
        compio::runtime::Runtime::new().unwrap().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let files = Rc::new(FileCache::new(4));
            let (leader, follower) = (
                log(dir.path(), "lead", &files),
                log(dir.path(), "follow", &files),
            );
            leader.borrow_mut().become_leader(LeaderEpoch(4)).unwrap();
            follower
                .borrow_mut()
                .set_high_watermark_mode(HighWatermarkMode::Replicated);
            let info = Arc::new(PartitionInfo {
                index: 0,
                shard: 0,
                appended: Arc::new(event_listener::Event::new()),
                replication: None,
            });
            let failures = Arc::new(LogDirFailures::new(&[]));
            let appender = Appender::new(&Config::default(), failures);
            let work = async {
                for count in [2, 3] {
                    let records: Vec<_> = (0..count).map(|i| (None, Some(&b"v"[..]), i)).collect();
                    let batch = build_batch(&records);
                    let done = appender.append(leader.clone(), info.clone(), batch).await;
                    assert!(done.is_ok(), "{done:?}");
                }
                let slice = leader
                    .borrow_mut()
                    .read(0, 1 << 20, FirstBatch::Whole, FetchIsolation::LogEnd)
                    .unwrap()
                    .unwrap();
                let fetched = slice.read_to_bytes().await.unwrap();
                let replicated = AppendOrigin::Replication;
                let to_follower = (follower.clone(), info.clone());
                let copied =
                    appender.enqueue_from(replicated, to_follower.clone(), fetched.clone());
                let copied = copied.await.unwrap().wait().await.unwrap();
                assert_eq!((copied.base_offset, copied.last_offset), (0, 4));
                let again = appender.enqueue_from(replicated, to_follower, fetched.clone());
                let again = again.await.unwrap().wait().await;
                assert!(
                    matches!(
                        again,
                        Err(AppendFailure::Replication(
                            FollowerAppendError::UnexpectedAppendOffset {
                                expected: 5,
                                first_offset: 0
                            }
                        ))
                    ),
                    "{again:?}"
                );
                let copy = follower
                    .borrow_mut()
                    .read(0, 1 << 20, FirstBatch::Whole, FetchIsolation::LogEnd)
                    .unwrap()
                    .unwrap();
                assert_eq!(copy.read_to_bytes().await.unwrap(), fetched);
                assert_eq!(leader.borrow().high_watermark(), 5);
                assert_eq!(follower.borrow().high_watermark(), 0);
                appender.close();
            };
            futures_util::join!(appender.run(), work);
        });
    }
}
