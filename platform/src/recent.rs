//! A fixed-size memory of recently seen 64-bit keys (hashes of message ids), for the gateway's
//! dedup and the enricher's `messageId` window.
//!
//! Why not two generations of hash maps, as before: each lookup probed both (two cache misses
//! once the maps outgrow the cache), each turnover dropped a map and grew a new one by
//! rehashing, and a full memory of a million keys took about 50 MB. Here one key is one slot
//! of 8 bytes in a bucket of 16 (two adjacent cache lines): a lookup and an insert read the
//! same bucket, the memory is allocated once and zeroed by the kernel, and a full bucket
//! forgets its oldest key. Keys land in random buckets, so the table is resident whole once a
//! few thousand keys have touched every page: a fixed cost, where the maps grew with use.
//!
//! A slot packs the key's upper 44 bits (its fingerprint) over a 20-bit time stamp. The bucket
//! comes from the key's lower 20 bits, so the two never overlap: keys that share a bucket
//! differ, but for one chance in 2⁴⁴, in their fingerprints.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Slots per bucket. A key is forgotten once 16 newer keys landed in its bucket: with 16, each
/// of the newest half of `capacity` keys is still remembered with odds above 99.5%, and keys
/// fade out beyond that, until about half of those `capacity` keys back are.
const SLOTS: usize = 16;
const STAMP_BITS: u32 = 20;
const STAMP_MASK: u64 = (1 << STAMP_BITS) - 1;
/// The bucket index is drawn from this many low bits of the key.
const INDEX_BITS: u32 = 20;
/// Most buckets one table holds: more would need index bits the fingerprint uses.
const MAX_BUCKETS: usize = 1 << INDEX_BITS;

/// Recently seen keys, each remembered for `ttl` unless `capacity` newer ones pushed it out.
#[derive(Debug)]
pub struct RecentKeys {
    /// `[u64; SLOTS]` zeroes, so the allocation comes from the kernel already zeroed: a table
    /// that has seen no key costs no resident memory.
    buckets: Vec<[u64; SLOTS]>,
    /// The remembering time in stamp units.
    ttl_units: u64,
    /// A stamp unit is 2^this seconds: 1 s, unless the TTL is longer than the 20-bit stamp
    /// can count in seconds.
    unit_shift: u32,
}

/// A reading of the clock, in seconds since the first reading in this process: taken once per
/// request or batch rather than per key, as reading it costs about as much as a lookup.
#[derive(Debug, Clone, Copy)]
pub struct Stamp(u64);

impl Stamp {
    pub fn now() -> Self {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        Self(EPOCH.get_or_init(Instant::now).elapsed().as_secs())
    }
}

impl RecentKeys {
    /// Room for about `capacity` keys (rounded up to whole buckets, at most 16 Mi keys), each
    /// remembered for `ttl` (0: none is).
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        let wanted = usize::try_from(capacity).unwrap_or(usize::MAX).div_ceil(SLOTS);
        let buckets = wanted.clamp(1, MAX_BUCKETS);
        // Half the stamp range at most, so an age never wraps into a young one within the TTL.
        let mut unit_shift = 0;
        while ttl.as_secs() >> unit_shift > STAMP_MASK / 2 {
            unit_shift += 1;
        }
        Self { buckets: vec![[0; SLOTS]; buckets], ttl_units: ttl.as_secs().div_ceil(1 << unit_shift), unit_shift }
    }

    /// True when `key` was inserted within the TTL before `now`.
    pub fn contains(&self, key: u64, now: Stamp) -> bool {
        let fingerprint = fingerprint(key);
        let now = self.units(now);
        // Slots fill from the front, so the first free one ends the keys.
        self.buckets[self.bucket(key)]
            .iter()
            .take_while(|&&slot| slot != 0)
            .any(|&slot| slot >> STAMP_BITS == fingerprint && age(slot, now) < self.ttl_units)
    }

    /// Remembers `key` as seen at `now`.
    pub fn insert(&mut self, key: u64, now: Stamp) {
        self.first_sighting(key, now);
    }

    /// True unless `key` was inserted within the TTL before `now`; remembers it either way.
    ///
    /// A bucket keeps its keys newest first: the key moves to the front, from its own older
    /// slot if it has one, else from the first free one, else over the last, the bucket's
    /// oldest. Order, not the stamps, tells the oldest apart, as many keys share a second.
    pub fn first_sighting(&mut self, key: u64, now: Stamp) -> bool {
        let fingerprint = fingerprint(key);
        let now = self.units(now);
        let index = self.bucket(key);
        let ttl_units = self.ttl_units;
        let bucket = &mut self.buckets[index];
        let (taken, first) = match bucket.iter().position(|&slot| slot == 0 || slot >> STAMP_BITS == fingerprint) {
            Some(at) => (at, bucket[at] == 0 || age(bucket[at], now) >= ttl_units),
            None => (SLOTS - 1, true),
        };
        bucket.copy_within(..taken, 1);
        bucket[0] = fingerprint << STAMP_BITS | now;
        first
    }

    /// Keys the table can hold.
    pub fn capacity(&self) -> usize {
        self.buckets.len() * SLOTS
    }

    /// Keys held now, expired ones included: a scan of the whole table, for tests and metrics.
    pub fn len(&self) -> usize {
        self.buckets.iter().flatten().filter(|&&slot| slot != 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bucket(&self, key: u64) -> usize {
        // Lemire's multiply-shift maps the low bits onto any bucket count without a division.
        let low = (key & ((1 << INDEX_BITS) - 1)) as usize;
        (low * self.buckets.len()) >> INDEX_BITS
    }

    /// `now` in stamp units, wrapped to the stamp's bits.
    fn units(&self, now: Stamp) -> u64 {
        (now.0 >> self.unit_shift) & STAMP_MASK
    }
}

fn fingerprint(key: u64) -> u64 {
    key >> INDEX_BITS
}

/// Stamp units since `slot` was written, `now` being in units; stamps wrap, ages within half
/// their range do not.
fn age(slot: u64, now: u64) -> u64 {
    now.wrapping_sub(slot & STAMP_MASK) & STAMP_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys spread like hash outputs (splitmix64), without a hasher.
    fn keys(count: u64, seed: u64) -> Vec<u64> {
        (0..count)
            .map(|i| {
                let mut z = (i + seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            })
            .collect()
    }

    #[test]
    fn remembers_what_was_inserted_and_nothing_else() {
        let mut recent = RecentKeys::new(1000, Duration::from_secs(600));
        let now = Stamp::now();
        let [a, b] = [keys(1, 1)[0], keys(1, 2)[0]];
        assert!(recent.first_sighting(a, now));
        assert!(!recent.first_sighting(a, now));
        assert!(recent.contains(a, now));
        assert!(!recent.contains(b, now));
        assert_eq!(recent.len(), 1, "a second sighting takes no second slot");
    }

    #[test]
    fn a_full_table_forgets_its_oldest_keys_first() {
        let capacity = 16_384;
        let mut recent = RecentKeys::new(capacity, Duration::from_secs(600));
        let all = keys(4 * capacity, 7);
        let now = Stamp::now();
        for &key in &all {
            recent.insert(key, now);
        }
        assert!(recent.len() <= recent.capacity());
        let newest_half = &all[all.len() - capacity as usize / 2..];
        let kept = newest_half.iter().filter(|&&k| recent.contains(k, now)).count();
        // Each is forgotten with odds about 0.4% (16 newer keys in its bucket): 99% is far
        // above what chance would miss, and far below what a FIFO-less table would keep.
        assert!(kept * 100 >= newest_half.len() * 99, "{kept} of the newest {} kept", newest_half.len());
        let oldest = all[..capacity as usize].iter().filter(|&&k| recent.contains(k, now)).count();
        assert_eq!(oldest, 0, "the oldest quarter is forgotten");
    }

    #[test]
    fn keys_expire_after_the_ttl_and_a_ttl_of_zero_remembers_nothing() {
        let mut recent = RecentKeys::new(1000, Duration::from_secs(10));
        let key = keys(1, 3)[0];
        recent.insert(key, Stamp(100));
        assert!(recent.contains(key, Stamp(109)));
        assert!(!recent.contains(key, Stamp(110)));
        let mut none = RecentKeys::new(1000, Duration::ZERO);
        none.insert(key, Stamp::now());
        assert!(!none.contains(key, Stamp::now()));
    }

    #[test]
    fn stamps_wrap_without_reviving_old_keys_or_expiring_young_ones() {
        let mut recent = RecentKeys::new(1000, Duration::from_secs(10));
        let key = keys(1, 4)[0];
        let near_wrap = STAMP_MASK - 2;
        recent.insert(key, Stamp(near_wrap));
        assert!(recent.contains(key, Stamp(near_wrap + 5)), "young across the wrap");
        assert!(!recent.contains(key, Stamp(near_wrap + 20)), "old across the wrap");
    }

    #[test]
    fn a_long_ttl_counts_in_coarser_units() {
        let day = Duration::from_secs(86_400 * 30);
        let recent = RecentKeys::new(1000, day);
        assert!(recent.unit_shift > 0);
        assert!(recent.ttl_units <= STAMP_MASK / 2);
        assert_eq!(recent.capacity(), 1008, "1000 rounded up to whole buckets of 16");
    }
}
