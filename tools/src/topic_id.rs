//! Topic ids printed as Kafka prints them: URL-safe base64 of the 16 bytes, unpadded
//! (`Uuid.toString()` in Kafka's Java client), e.g. `Ga4tGPJHTYiD6sEdbQ0Zcw`.

use uuid::Uuid;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub fn kafka_format(id: &Uuid) -> String {
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let mut group = [0u8; 3];
        group[..chunk.len()].copy_from_slice(chunk);
        let bits = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        // A chunk of n bytes yields n + 1 characters when unpadded.
        for index in 0..=chunk.len() {
            let sextet = (bits >> (18 - 6 * index)) & 0x3f;
            out.push(char::from(ALPHABET[sextet as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_kafka_base64() {
        assert_eq!(kafka_format(&Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        // 0x19ae2d18f2474d8883eac11d6d0d1973 in Kafka's format.
        let id = Uuid::from_u128(0x19ae_2d18_f247_4d88_83ea_c11d_6d0d_1973);
        assert_eq!(kafka_format(&id), "Ga4tGPJHTYiD6sEdbQ0Zcw");
        assert_eq!(
            kafka_format(&Uuid::from_u128(u128::MAX)),
            "_____________________w"
        );
    }
}
