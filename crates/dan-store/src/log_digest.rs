//! A running digest of the op log as written: the position and id of every
//! row, in order.
//!
//! The instance starts it from the log its integrity check read (every
//! signature checked) and the store extends it with each row it appends
//! itself. A row put there by anything else (a local user's `sqlite3`
//! while the instance runs) is not in it, so the digest a clean shutdown
//! seals describes exactly the log this instance verified and wrote, and
//! a start that reads a log with the same digest may skip checking those
//! signatures again.

/// The digest of (position, op id) of every row of a log, in order: a
/// chain, each row's link hashing the one before, so that it can be kept
/// as a value and taken up again ([`LogDigest::resume`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogDigest {
    chain: [u8; 32],
    rows: u64,
}

impl LogDigest {
    /// Takes up a digest where [`value`](Self::value) left it (one a
    /// clean shutdown sealed).
    pub fn resume((chain, rows): ([u8; 32], u64)) -> Self {
        LogDigest { chain, rows }
    }

    /// Adds the next row of the log.
    pub fn add(&mut self, pos: i64, op_id: &[u8]) {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"dan op log digest v2");
        hasher.update(&self.chain);
        hasher.update(&pos.to_le_bytes());
        hasher.update(&(op_id.len() as u64).to_le_bytes());
        hasher.update(op_id);
        self.chain = *hasher.finalize().as_bytes();
        self.rows += 1;
    }

    /// The digest of the rows added so far, and how many there were.
    pub fn value(&self) -> ([u8; 32], u64) {
        (self.chain, self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::LogDigest;

    #[test]
    fn the_digest_names_every_row_its_place_and_its_order() {
        let of = |rows: &[(i64, &[u8])]| {
            let mut digest = LogDigest::default();
            for (pos, id) in rows {
                digest.add(*pos, id);
            }
            digest.value()
        };
        let log = of(&[(1, b"a"), (2, b"b")]);
        assert_eq!(log, of(&[(1, b"a"), (2, b"b")]));
        assert_eq!(log.1, 2);
        assert_ne!(log, of(&[(2, b"b"), (1, b"a")]), "order");
        assert_ne!(log, of(&[(1, b"a"), (3, b"b")]), "place");
        assert_ne!(log, of(&[(1, b"a"), (2, b"b"), (3, b"c")]), "an extra row");
        assert_ne!(of(&[(1, b"ab")]), of(&[(1, b"a"), (1, b"b")]), "boundaries");
        let mut resumed = LogDigest::resume(of(&[(1, b"a")]));
        resumed.add(2, b"b");
        assert_eq!(resumed.value(), log, "taken up where it was left");
    }
}
