//! The value of every record `verify` writes: its identity in readable text, padded to
//! the record size, so `sluice console-consumer` shows which producer wrote what.
//!
//! ```text
//! sluice-verify <run id, 16 hex digits> <producer index> <sequence> <filler...>
//! ```
//!
//! The filler (letters from the run's seed) only pads the value to `--record-size`;
//! values shorter than the identity are not truncated.

use crate::verify::checker::RecordId;

const MAGIC: &str = "sluice-verify";

/// Builds values of one run.
#[derive(Debug, Clone)]
pub struct ValueFormat {
    run_id: u64,
    record_size_bytes: usize,
    filler: Vec<u8>,
}

impl ValueFormat {
    pub fn new(run_id: u64, record_size_bytes: usize, seed: u64) -> Self {
        let mut state = seed | 1;
        let filler = (0..record_size_bytes)
            .map(|_| {
                // xorshift64: a fixed letter pattern per seed, nothing more.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b'a' + (state % 26) as u8
            })
            .collect();
        Self {
            run_id,
            record_size_bytes,
            filler,
        }
    }

    /// The value of record `id`.
    pub fn encode(&self, id: RecordId) -> Vec<u8> {
        let mut value =
            format!("{MAGIC} {:016x} {} {}", self.run_id, id.producer, id.seq).into_bytes();
        if value.len() < self.record_size_bytes {
            value.push(b' ');
            let pad = self.record_size_bytes - value.len();
            value.extend_from_slice(&self.filler[..pad]);
        }
        value
    }
}

/// Smallest value [`ValueFormat::encode`] writes, for a usage message.
pub fn identity_bytes_min() -> usize {
    MAGIC.len() + " 0000000000000000 0 0".len()
}

/// The run id and record id of a value `verify` wrote; `None` for any other value.
pub fn parse(value: &[u8]) -> Option<(u64, RecordId)> {
    let text = std::str::from_utf8(value.get(..value.len().min(80))?).ok()?;
    let mut fields = text.split(' ');
    if fields.next()? != MAGIC {
        return None;
    }
    let run = fields.next()?;
    if run.len() != 16 {
        return None;
    }
    let run_id = u64::from_str_radix(run, 16).ok()?;
    let producer = fields.next()?.parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    Some((run_id, RecordId { producer, seq }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_at_any_size() {
        let id = RecordId {
            producer: 3,
            seq: 123_456_789,
        };
        let bare = ValueFormat::new(0xdead_beef, 0, 42).encode(id).len();
        assert!(bare >= identity_bytes_min());
        for size in [
            0,
            10,
            identity_bytes_min(),
            bare,
            bare + 1,
            bare + 2,
            100,
            1024,
        ] {
            let value = ValueFormat::new(0xdead_beef, size, 42).encode(id);
            assert_eq!(value.len(), size.max(bare), "size {size}");
            assert_eq!(parse(&value), Some((0xdead_beef, id)), "size {size}");
        }
    }

    #[test]
    fn other_values_are_not_ours() {
        for value in [
            &b""[..],
            b"hello",
            b"sluice-verify 12 0 0",
            b"sluice-verify 00000000000000zz 0 0",
            b"sluice-verify 0000000000000001 x 0",
            b"\xff\xfe",
        ] {
            assert_eq!(parse(value), None, "{value:?}");
        }
    }
}
