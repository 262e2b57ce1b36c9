//! Kafka's default partitioner for keyed records: `toPositive(murmur2(key)) % partitions`,
//! so the console producer puts a key where Kafka's own producers would.

/// MurmurHash2, 32-bit, with Kafka's seed; the result as Kafka's Java `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in chunks.by_ref() {
        let mut k = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (index, byte) in tail.iter().enumerate().rev() {
            h ^= u32::from(*byte) << (8 * index);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a record with `key` in a topic of `partitions` partitions.
pub fn partition_for_key(key: &[u8], partitions: usize) -> usize {
    assert!(partitions > 0, "a topic has at least one partition");
    let positive = (murmur2(key) & 0x7fff_ffff) as usize;
    positive % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values Kafka's Java `Utils.murmur2` returns for the same inputs.
    #[test]
    fn matches_kafka() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                *expected,
                "{:?}",
                std::str::from_utf8(input)
            );
        }
    }

    #[test]
    fn keys_spread_and_stay() {
        assert_eq!(partition_for_key(b"k", 1), 0);
        assert_eq!(partition_for_key(b"abc", 7), partition_for_key(b"abc", 7));
        assert!(partition_for_key(b"foobar", 3) < 3);
    }
}
