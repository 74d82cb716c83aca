//! The disk spool: an append-only, CRC-checked segment log that holds records while Kafka
//! cannot take them, survives restarts, and is drained in order by the replayer.

mod cursor;
mod record;
mod segments;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::config::{FsyncPolicy, SpoolConfig};
use crate::record::Record;
pub use cursor::ReplayMark;
pub use record::Spooled;
use segments::{recover, segment_path, Segment};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpoolError {
    #[error("spool is full ({used} of {max} bytes)")]
    Full { used: u64, max: u64 },
    #[error("spool I/O failed: {0}")]
    Io(String),
    /// Two processes replaying one directory would send its records twice and race on its files.
    #[error("spool directory {dir} is in use by another process (it holds {LOCK_FILE})")]
    Locked { dir: String },
}

/// Held with an exclusive lock for as long as a process has the spool open; the kernel
/// releases it when the process dies, SIGKILL included.
pub const LOCK_FILE: &str = "spool.lock";

impl From<std::io::Error> for SpoolError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e.to_string())
    }
}

/// Size and age of what waits in the spool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    pub bytes: u64,
    pub records: u64,
    pub oldest_age_ms: u64,
}

#[derive(Debug)]
struct State {
    /// Oldest first; the last one is the active segment while `writer` is open.
    segments: VecDeque<Segment>,
    writer: Option<File>,
    next_id: u64,
    /// Offset of the first record in the oldest segment that Kafka has not confirmed.
    commit_offset: u64,
    /// Where the replayer reads next: ahead of `commit_offset` by the batches in flight.
    cursor: cursor::ReadCursor,
    /// Written time of the last replayed record, for the oldest-age metric.
    replayed_ms: Option<u64>,
    /// Bytes and records not yet replayed.
    pending_bytes: u64,
    pending_records: u64,
    /// Counts appends; `synced` says up to which one the disk is durable.
    write_seq: u64,
}

/// The spool. Blocking file I/O runs on tokio's blocking pool.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    _lock: File,
    config: SpoolConfig,
    state: Mutex<State>,
    synced: watch::Sender<u64>,
    /// Wakes the replayer when records arrive.
    pub arrived: Notify,
}

impl Spool {
    /// Opens the spool in `config.dir`, recovering what a previous run left.
    pub fn open(config: &SpoolConfig) -> Result<Arc<Self>, SpoolError> {
        let dir = PathBuf::from(&config.dir);
        std::fs::create_dir_all(&dir)?;
        let lock = lock_dir(&dir)?;
        let segments: VecDeque<Segment> = recover(&dir)?.into();
        let next_id = segments.back().map_or(0, |s| s.id + 1);
        let (pending_bytes, pending_records) = segments.iter().fold((0, 0), |(b, r), s| (b + s.bytes, r + s.records));
        if pending_records > 0 {
            tracing::info!(records = pending_records, bytes = pending_bytes, dir = %dir.display(), "spool holds records from a previous run; replaying them");
        }
        let state = State {
            cursor: cursor::ReadCursor::at_start(segments.front().map_or(next_id, |s| s.id)),
            segments,
            writer: None,
            next_id,
            commit_offset: 0,
            replayed_ms: None,
            pending_bytes,
            pending_records,
            write_seq: 0,
        };
        let (synced, _) = watch::channel(0);
        Ok(Arc::new(Self {
            dir,
            _lock: lock,
            config: config.clone(),
            state: Mutex::new(state),
            synced,
            arrived: Notify::new(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent enough state to keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_empty(&self) -> bool {
        self.lock().pending_records == 0
    }

    pub fn stats(&self) -> SpoolStats {
        let state = self.lock();
        let oldest = state.replayed_ms.or_else(|| state.segments.front().and_then(|s| s.first_written_ms));
        let oldest_age_ms = match (state.pending_records, oldest) {
            (0, _) | (_, None) => 0,
            (_, Some(ms)) => now_ms().saturating_sub(ms),
        };
        SpoolStats { bytes: state.pending_bytes, records: state.pending_records, oldest_age_ms }
    }

    /// How many replay steps may be in flight to Kafka at once (`spool.replay_in_flight`).
    pub fn replay_in_flight(&self) -> usize {
        self.config.replay_in_flight.max(1)
    }

    pub fn is_full(&self) -> bool {
        self.lock().pending_bytes >= self.config.max_bytes
    }

    /// Appends `records` and waits until they are durable under the fsync policy.
    pub async fn append(self: &Arc<Self>, records: Vec<Record>) -> Result<(), SpoolError> {
        // Always written, so nothing is handed back.
        self.write(records, false).await.map(drop)
    }

    /// Appends `records` only while the spool already holds records, so new events queue
    /// behind a draining backlog and order holds; hands them back, unwritten, when it is empty.
    pub async fn append_behind_backlog(
        self: &Arc<Self>,
        records: Vec<Record>,
    ) -> Result<Option<Vec<Record>>, SpoolError> {
        self.write(records, true).await
    }

    async fn write(
        self: &Arc<Self>,
        records: Vec<Record>,
        only_behind_backlog: bool,
    ) -> Result<Option<Vec<Record>>, SpoolError> {
        let spool = self.clone();
        let (records, seq) = tokio::task::spawn_blocking(move || {
            let seq = spool.append_blocking(&records, only_behind_backlog);
            (records, seq)
        })
        .await
        .map_err(|e| SpoolError::Io(e.to_string()))?;
        let Some(seq) = seq? else { return Ok(Some(records)) };
        if self.config.fsync == FsyncPolicy::Interval {
            let mut synced = self.synced.subscribe();
            synced.wait_for(|done| *done >= seq).await.map_err(|e| SpoolError::Io(e.to_string()))?;
        }
        self.arrived.notify_one();
        Ok(None)
    }

    fn append_blocking(&self, records: &[Record], only_behind_backlog: bool) -> Result<Option<u64>, SpoolError> {
        let written_at = now_ms();
        let mut frames = Vec::with_capacity(records.iter().map(|r| r.payload.len() + 64).sum());
        for record in records {
            record::encode(record, written_at, &mut frames);
        }
        let mut state = self.lock();
        if only_behind_backlog && state.pending_records == 0 {
            return Ok(None);
        }
        if state.pending_bytes + frames.len() as u64 > self.config.max_bytes {
            return Err(SpoolError::Full { used: state.pending_bytes, max: self.config.max_bytes });
        }
        let needs_new = match (&state.writer, state.segments.back()) {
            (Some(_), Some(active)) => {
                active.bytes + frames.len() as u64 > self.config.segment_bytes && active.bytes > 0
            }
            _ => true,
        };
        if needs_new {
            self.roll(&mut state)?;
        }
        let writer = state.writer.as_mut().ok_or_else(|| SpoolError::Io("no active segment".into()))?;
        writer.write_all(&frames)?;
        if self.config.fsync == FsyncPolicy::Request {
            writer.sync_data()?;
        }
        let active = state.segments.back_mut().ok_or_else(|| SpoolError::Io("no active segment".into()))?;
        active.bytes += frames.len() as u64;
        active.records += records.len() as u64;
        active.first_written_ms.get_or_insert(written_at);
        state.pending_bytes += frames.len() as u64;
        state.pending_records += records.len() as u64;
        state.write_seq += 1;
        Ok(Some(state.write_seq))
    }

    /// Closes the active segment durably and opens the next one.
    fn roll(&self, state: &mut State) -> Result<(), SpoolError> {
        if let Some(old) = state.writer.take() {
            old.sync_all()?;
        }
        let id = state.next_id;
        state.next_id += 1;
        let path = segment_path(&self.dir, id);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        // The new file's directory entry must survive a crash too.
        File::open(&self.dir)?.sync_all()?;
        state.writer = Some(file);
        state.segments.push_back(Segment { id, path, bytes: 0, records: 0, first_written_ms: None });
        Ok(())
    }

    /// Group commit: one fsync covers every append made before it. Runs until the spool is dropped.
    pub async fn run_group_commit(self: Arc<Self>) {
        let every = Duration::from_millis(self.config.fsync_interval_ms.max(1));
        loop {
            tokio::time::sleep(every).await;
            if let Err(error) = self.clone().sync_now().await {
                tracing::error!(%error, "spool fsync failed");
            }
            if Arc::strong_count(&self) == 1 {
                return;
            }
        }
    }

    /// Makes every append so far durable.
    pub async fn sync_now(self: Arc<Self>) -> Result<(), SpoolError> {
        let spool = self.clone();
        tokio::task::spawn_blocking(move || {
            let (seq, file) = {
                let state = spool.lock();
                if state.write_seq == *spool.synced.borrow() {
                    return Ok(());
                }
                (state.write_seq, state.writer.as_ref().map(File::try_clone).transpose()?)
            };
            if let Some(file) = file {
                file.sync_data()?;
            }
            spool.synced.send_replace(seq);
            Ok(())
        })
        .await
        .map_err(|e| SpoolError::Io(e.to_string()))?
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

/// Takes the directory's lock, waiting a moment for a holder that is exiting (a restarted
/// gateway in the same process drops its spool tasks asynchronously).
fn lock_dir(dir: &Path) -> Result<File, SpoolError> {
    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(LOCK_FILE))?;
    let give_up = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(lock),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(SpoolError::Locked { dir: dir.display().to_string() });
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(error.into()),
        }
    }
}
