//! Canonical binary encoding (postcard) with size limits.
//!
//! Every value has exactly one accepted byte string: decoding rejects input
//! that is too large, has trailing bytes, or does not re-encode to the same
//! bytes (e.g. over-long varints). Hashes and signatures are computed over
//! these bytes, so two builds never disagree about them.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why bytes were not accepted as a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input is larger than the limit for this kind of value.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Bytes received.
        size: usize,
        /// Bytes allowed.
        limit: usize,
    },
    /// The bytes do not decode as the expected value.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The bytes decode but are not the canonical encoding of the value.
    #[error("message is not canonically encoded")]
    NotCanonical,
}

/// The canonical bytes of `value`.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing protocol types into a Vec cannot fail: they have no
    // sequences of unknown length and no values postcard cannot represent.
    postcard::to_stdvec(value).expect("protocol types always serialize")
}

/// Decodes canonical bytes of at most `limit` bytes.
pub fn decode<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    limit: usize,
) -> Result<T, CodecError> {
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    if encode(&value) != bytes {
        return Err(CodecError::NotCanonical);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let value = (7u64, String::from("dan"));
        let bytes = encode(&value);
        assert_eq!(decode::<(u64, String)>(&bytes, 64), Ok(value));
        assert!(matches!(
            decode::<(u64, String)>(&bytes, 2),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn trailing_bytes_and_overlong_varints_are_rejected() {
        let mut bytes = encode(&5u64);
        bytes.push(0);
        assert!(matches!(
            decode::<u64>(&bytes, 64),
            Err(CodecError::Malformed(_))
        ));
        // 5 encoded as a two-byte varint instead of one byte.
        assert!(decode::<u64>(&[0x85, 0x00], 64).is_err());
    }
}
