//! The spool's read side: a read cursor that runs ahead of the commit offset, so the replayer
//! can keep several batches in flight to Kafka, and commits that advance strictly in order.

use std::sync::Arc;

use super::record::Spooled;
use super::segments::{read_from, Segment};
use super::{Spool, SpoolError, State};

/// Where the replayer reads next. It never falls behind the commit offset, and is moved back
/// to it when a batch in flight fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReadCursor {
    segment_id: u64,
    offset: u64,
}

impl ReadCursor {
    pub(super) fn at_start(segment_id: u64) -> Self {
        Self { segment_id, offset: 0 }
    }
}

/// What one batch covered: a byte range of one segment, its record count and the written time
/// of its last record. Commit marks in the order `next_batch` handed them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayMark {
    segment_id: u64,
    start_offset: u64,
    end_offset: u64,
    records: u64,
    last_written_ms: u64,
}

impl ReplayMark {
    pub fn records(&self) -> u64 {
        self.records
    }
}

/// Slack over the segment's mean frame size when sizing a read, so one read usually covers
/// `replay_batch` records without reading much that the batch then leaves.
const READ_SLACK: u64 = 64 << 10;
const MAX_READ: u64 = 4 << 20;

impl State {
    /// The segment the cursor is in and the offset to read from, moving the cursor past
    /// segments it has read to the end (a later segment exists only once one is closed).
    fn unread(&mut self) -> Option<(Segment, u64)> {
        let mut position = self.segments.iter().position(|s| s.id >= self.cursor.segment_id)?;
        loop {
            let segment = &self.segments[position];
            if segment.id != self.cursor.segment_id {
                self.cursor = ReadCursor::at_start(segment.id);
            }
            if self.cursor.offset < segment.bytes {
                return Some((segment.clone(), self.cursor.offset));
            }
            position += 1;
            let next = self.segments.get(position)?;
            self.cursor = ReadCursor::at_start(next.id);
        }
    }
}

impl Spool {
    /// The next unread records, oldest first, and the mark to commit once Kafka has them all.
    /// Moves the read cursor past them, so the next call hands out the batch after; `None`
    /// once everything is read (perhaps not yet committed).
    pub async fn next_batch(self: &Arc<Self>) -> Result<Option<(Vec<Spooled>, ReplayMark)>, SpoolError> {
        let spool = self.clone();
        tokio::task::spawn_blocking(move || {
            let Some((segment, offset)) = spool.lock().unread() else { return Ok(None) };
            let max_records = spool.config.replay_batch.max(1);
            let mean_frame = segment.bytes / segment.records.max(1);
            let read_bytes = (mean_frame * max_records as u64 + mean_frame / 4 * max_records as u64 + READ_SLACK)
                .min(MAX_READ) as usize;
            // Read without the lock: appends only add past `segment.bytes`, and only the
            // replayer (this caller) moves the cursor or deletes what the cursor is in.
            let batch = read_from(&segment, offset, max_records, read_bytes)?;
            let Some(last) = batch.last() else { return Ok(None) };
            let end_offset = offset + batch.iter().map(|s| s.frame_len as u64).sum::<u64>();
            let mark = ReplayMark {
                segment_id: segment.id,
                start_offset: offset,
                end_offset,
                records: batch.len() as u64,
                last_written_ms: last.written_at_ms,
            };
            let mut state = spool.lock();
            if state.cursor == (ReadCursor { segment_id: segment.id, offset }) {
                state.cursor.offset = end_offset;
            }
            Ok(Some((batch, mark)))
        })
        .await
        .map_err(|e| SpoolError::Io(e.to_string()))?
    }

    /// Sends the read cursor back to the first uncommitted record, after a batch in flight
    /// failed: what was read after it is read, and sent, again.
    pub fn rewind(&self) {
        let mut state = self.lock();
        let front = state.segments.front().map_or(state.next_id, |s| s.id);
        state.cursor = ReadCursor { segment_id: front, offset: state.commit_offset };
    }

    /// Records that a replayed batch is in Kafka; deletes segments once fully replayed. Marks
    /// must come in the order they were read: a gap would drop records never confirmed.
    pub async fn commit(self: &Arc<Self>, mark: ReplayMark) -> Result<(), SpoolError> {
        let spool = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut state = spool.lock();
            let front = state.segments.front().ok_or_else(|| SpoolError::Io("commit without segment".into()))?;
            if front.id != mark.segment_id || state.commit_offset != mark.start_offset {
                return Err(SpoolError::Io("commit out of order".into()));
            }
            let advanced = mark.end_offset - state.commit_offset;
            let (front_bytes, front_path) = (front.bytes, front.path.clone());
            state.commit_offset = mark.end_offset;
            state.pending_bytes -= advanced;
            state.pending_records -= mark.records;
            state.replayed_ms = Some(mark.last_written_ms);
            if state.commit_offset >= front_bytes {
                let is_active = state.segments.len() == 1 && state.writer.is_some();
                // The active segment is only retired when nothing new can race into it.
                if is_active {
                    state.writer = None;
                }
                state.segments.pop_front();
                state.commit_offset = 0;
                std::fs::remove_file(&front_path)?;
            }
            if state.pending_records == 0 {
                state.replayed_ms = None;
            }
            Ok(())
        })
        .await
        .map_err(|e| SpoolError::Io(e.to_string()))?
    }
}
