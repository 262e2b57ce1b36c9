//! ListOffsets v0's answer (Kafka's `UnifiedLog.legacyFetchOffsetsBefore`): a list of up to
//! `max_num_offsets` offsets, newest first, taken from segment boundaries rather than from
//! record timestamps. Each segment offers its base offset (at least the log start offset)
//! stamped with its `.log` file's modification time; a non-empty active segment adds the log
//! end offset stamped now. Latest (-1) starts from the last entry, earliest (-2) from the
//! first, a timestamp from the last entry modified at or before it; the list runs back from
//! there.

use std::io;
use std::time::UNIX_EPOCH;

use super::PartitionLog;

/// ListOffsets' special timestamps.
const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;

impl PartitionLog {
    /// Kafka's v0 offsets before `timestamp`, newest first, at most `max_num_offsets`.
    pub fn legacy_offsets_before(
        &self,
        timestamp: i64,
        max_num_offsets: usize,
        now_ms: i64,
    ) -> io::Result<Vec<i64>> {
        let mut entries = Vec::with_capacity(self.segments.len() + 1);
        for segment in self.segments.values() {
            let modified = std::fs::metadata(segment.log_path())?.modified()?;
            let ms = modified
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            entries.push((segment.base_offset().max(self.log_start_offset), ms));
        }
        if self.active().size_bytes() > 0 {
            entries.push((self.log_end_offset(), now_ms));
        }
        let start = match timestamp {
            LATEST_TIMESTAMP => entries.len().checked_sub(1),
            EARLIEST_TIMESTAMP => (!entries.is_empty()).then_some(0),
            t => entries.iter().rposition(|(_, ms)| *ms <= t),
        };
        let Some(start) = start else {
            return Ok(Vec::new());
        };
        let mut offsets: Vec<i64> = entries[..=start]
            .iter()
            .rev()
            .take(max_num_offsets)
            .map(|(offset, _)| *offset)
            .collect();
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        Ok(offsets)
    }
}
