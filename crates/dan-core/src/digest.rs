//! A bucketed Merkle tree over a set of (key, value) digests.
//!
//! Used for both roots: `ops_root` (the set of op ids) and `state_root` (the
//! digest of every record's current version, every member and the charter).
//! Keys fall into 4096 buckets by their first 12 bits; a bucket's digest
//! covers its sorted entries; three levels of 16-way nodes lead to the root.
//! An insert rehashes one bucket and three nodes, whatever the size of the
//! set. Each node hash is domain-separated BLAKE3, so the root is collision
//! resistant (unlike XOR or sums of hashes), and comparing two trees level by
//! level locates the buckets where two sets differ.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::hash::Hash32;

/// Number of leaf buckets (2^12).
pub const BUCKETS: usize = 4096;
const FANOUT: usize = 16;

/// An incremental digest of a set of (key, value) pairs.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "sealed-log", derive(serde::Deserialize))]
pub struct DigestTree {
    buckets: Vec<BTreeMap<Hash32, Hash32>>,
    /// `levels[0]` holds the bucket digests, each next level 16 times fewer;
    /// the last level has one entry, the root.
    levels: Vec<Vec<Hash32>>,
    /// While a batch is applied ([`defer`](Self::defer)): the buckets whose
    /// digests (and the nodes above them) are out of date, hashed once
    /// each when it ends ([`catch_up`](Self::catch_up)) rather than at
    /// every change. Empty otherwise.
    #[serde(skip)]
    stale: Option<BTreeSet<usize>>,
}

impl Default for DigestTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DigestTree {
    /// An empty tree.
    pub fn new() -> Self {
        let mut tree = DigestTree {
            buckets: vec![BTreeMap::new(); BUCKETS],
            levels: Vec::new(),
            stale: None,
        };
        let empty = bucket_digest(&BTreeMap::new());
        let mut level = vec![empty; BUCKETS];
        loop {
            tree.levels.push(level.clone());
            if level.len() == 1 {
                break;
            }
            level = level.chunks(FANOUT).map(node_digest).collect();
        }
        tree
    }

    /// The bucket a key falls into.
    pub fn bucket_of(key: &Hash32) -> usize {
        (usize::from(key.0[0]) << 4) | usize::from(key.0[1] >> 4)
    }

    /// Sets `key` to `value`. Returns the previous value.
    pub fn insert(&mut self, key: Hash32, value: Hash32) -> Option<Hash32> {
        let bucket = Self::bucket_of(&key);
        let previous = self.buckets[bucket].insert(key, value);
        if previous != Some(value) {
            self.rehash(bucket);
        }
        previous
    }

    /// Removes `key`. Returns its value.
    pub fn remove(&mut self, key: &Hash32) -> Option<Hash32> {
        let bucket = Self::bucket_of(key);
        let previous = self.buckets[bucket].remove(key);
        if previous.is_some() {
            self.rehash(bucket);
        }
        previous
    }

    /// The value stored for `key`.
    pub fn get(&self, key: &Hash32) -> Option<Hash32> {
        self.buckets[Self::bucket_of(key)].get(key).copied()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(BTreeMap::len).sum()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(BTreeMap::is_empty)
    }

    /// From now until [`catch_up`](Self::catch_up), changes note which
    /// buckets they touched instead of hashing them again at once (a batch
    /// of ops touches the nodes above its buckets thousands of times).
    pub(crate) fn defer(&mut self) {
        self.stale.get_or_insert_default();
    }

    /// Hashes what changed since [`defer`](Self::defer): each bucket
    /// touched, then each node above them, once.
    pub(crate) fn catch_up(&mut self) {
        let Some(stale) = self.stale.take() else {
            return;
        };
        let mut touched: BTreeSet<usize> = stale;
        for &bucket in &touched {
            self.levels[0][bucket] = bucket_digest(&self.buckets[bucket]);
        }
        for depth in 1..self.levels.len() {
            touched = touched.iter().map(|index| index / FANOUT).collect();
            for &index in &touched {
                let start = index * FANOUT;
                self.levels[depth][index] =
                    node_digest(&self.levels[depth - 1][start..start + FANOUT]);
            }
        }
    }

    /// Whether every digest is up to date (no batch under way).
    pub(crate) fn is_current(&self) -> bool {
        self.stale.is_none()
    }

    /// The root digest.
    pub fn root(&self) -> Hash32 {
        assert!(self.stale.is_none(), "read while a batch is applied");
        self.levels
            .last()
            .and_then(|level| level.first())
            .copied()
            .unwrap_or(Hash32::ZERO)
    }

    /// The 4096 bucket digests, for locating differences with another tree.
    pub fn bucket_digests(&self) -> &[Hash32] {
        assert!(self.stale.is_none(), "read while a batch is applied");
        &self.levels[0]
    }

    /// The entries of one bucket.
    pub fn bucket(&self, index: usize) -> impl Iterator<Item = (&Hash32, &Hash32)> {
        self.buckets.get(index).into_iter().flatten()
    }

    /// Buckets whose digests differ from `other_buckets` (another tree's
    /// [`bucket_digests`](Self::bucket_digests)).
    pub fn differing_buckets(&self, other_buckets: &[Hash32]) -> Vec<usize> {
        assert!(self.stale.is_none(), "read while a batch is applied");
        (0..BUCKETS)
            .filter(|&i| other_buckets.get(i) != Some(&self.levels[0][i]))
            .collect()
    }

    fn rehash(&mut self, bucket: usize) {
        if let Some(stale) = self.stale.as_mut() {
            stale.insert(bucket);
            return;
        }
        self.levels[0][bucket] = bucket_digest(&self.buckets[bucket]);
        let mut index = bucket;
        for depth in 1..self.levels.len() {
            index /= FANOUT;
            let start = index * FANOUT;
            let digest = node_digest(&self.levels[depth - 1][start..start + FANOUT]);
            self.levels[depth][index] = digest;
        }
    }
}

fn bucket_digest(entries: &BTreeMap<Hash32, Hash32>) -> Hash32 {
    let mut hasher = blake3::Hasher::new_derive_key("dan digest tree bucket v1");
    for (key, value) in entries {
        hasher.update(&key.0);
        hasher.update(&value.0);
    }
    Hash32(*hasher.finalize().as_bytes())
}

fn node_digest(children: &[Hash32]) -> Hash32 {
    let mut hasher = blake3::Hasher::new_derive_key("dan digest tree node v1");
    for child in children {
        hasher.update(&child.0);
    }
    Hash32(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> Hash32 {
        Hash32::of(&n.to_le_bytes())
    }

    #[test]
    fn root_depends_on_content_not_insertion_order() {
        let mut a = DigestTree::new();
        let mut b = DigestTree::new();
        for n in 0..500 {
            a.insert(key(n), key(n + 1));
        }
        for n in (0..500).rev() {
            b.insert(key(n), key(n + 1));
        }
        assert_eq!(a.root(), b.root());
        assert_eq!(a.len(), 500);
        b.insert(key(7), key(0));
        assert_ne!(a.root(), b.root());
        assert_eq!(
            a.differing_buckets(b.bucket_digests()),
            vec![DigestTree::bucket_of(&key(7))]
        );
    }

    #[test]
    fn a_deferred_batch_ends_with_the_root_of_changes_hashed_one_by_one() {
        let mut one_by_one = DigestTree::new();
        let mut batched = DigestTree::new();
        for round in 0..3u32 {
            batched.defer();
            for n in round * 300..round * 300 + 700 {
                one_by_one.insert(key(n), key(n + round));
                batched.insert(key(n), key(n + round));
            }
            one_by_one.remove(&key(round * 5));
            batched.remove(&key(round * 5));
            batched.catch_up();
            assert_eq!(batched.root(), one_by_one.root());
            assert_eq!(batched.bucket_digests(), one_by_one.bucket_digests());
        }
    }

    #[test]
    fn removing_restores_the_previous_root() {
        let mut tree = DigestTree::new();
        let empty = tree.root();
        tree.insert(key(1), key(2));
        assert_ne!(tree.root(), empty);
        assert_eq!(tree.remove(&key(1)), Some(key(2)));
        assert_eq!(tree.root(), empty);
        assert!(tree.is_empty());
    }
}
