//! Maps keyed by a hash the caller has already computed, so the map does not hash it again:
//! the gateway's dedup sets and the enricher's `messageId` window.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map from an already-computed 64-bit hash to `V`.
pub type HashedKeyMap<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// Passes a `u64` key through: keys are hash outputs already.
#[derive(Debug, Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}
