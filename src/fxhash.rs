//! The hasher of the tool's own lookup tables: a fast, non-cryptographic
//! one. The maps it serves are keyed by symbol names of the user's own
//! kernel: nothing an attacker picks to provoke collisions, and SipHash
//! costs a third of a symbols.klp run. The hasher is `rustc-hash`'s
//! `FxHasher` (it replaced a hand-made copy of the Fx hash at no cost:
//! callgrind 0.968× its instructions on the v7 drop-in benchmark, 0.994× on
//! map loading, 1.000× on `convert` of 50,000 relocations; `foldhash` did
//! about as well, 0.973×, 0.994×).
//!
//! [`NameFilter`] stays hand-made: it is not a hash table but a one-bit
//! pre-test, and no kept crate offers one this small (one multiply a name).

use std::collections::{HashMap, HashSet};

/// A `HashMap` with the Fx hasher (`rustc-hash`).
pub type FxHashMap<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;
/// A `HashSet` with the Fx hasher (`rustc-hash`).
pub type FxHashSet<K> = HashSet<K, rustc_hash::FxBuildHasher>;

/// The multiplier of [`NameFilter`] (the Fx hash's, an odd constant with
/// well-mixed high bits).
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// A quick "none of these names" test to put before a hash lookup, for a
/// pass over a million map names that asks about a few thousand: one bit a
/// name's length and end bytes, so most names cost a multiply, not a hash
/// and a probe. It can say yes for a name not added, never no for one added.
#[derive(Clone)]
pub struct NameFilter {
    bits: Vec<u64>,
}

impl Default for NameFilter {
    fn default() -> Self {
        NameFilter {
            bits: vec![0; (1 << NameFilter::BITS) / 64],
        }
    }
}

impl NameFilter {
    /// log2 of the number of bits (8 KiB).
    const BITS: u32 = 16;

    #[inline]
    fn bit(name: &[u8]) -> usize {
        let b = name;
        let at = |i: Option<usize>| u64::from(i.and_then(|i| b.get(i)).copied().unwrap_or(0));
        let (first, last, second_last) = (
            at(Some(0)),
            at(b.len().checked_sub(1)),
            at(b.len().checked_sub(2)),
        );
        let key = (b.len() as u64) | first << 16 | last << 24 | second_last << 32;
        (key.wrapping_mul(SEED) >> (64 - Self::BITS)) as usize
    }

    /// Add a name.
    pub fn insert(&mut self, name: &[u8]) {
        let i = Self::bit(name);
        self.bits[i / 64] |= 1 << (i % 64);
    }

    /// Could `name` have been added?
    #[inline]
    pub fn may_contain(&self, name: &[u8]) -> bool {
        let i = Self::bit(name);
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_never_misses_a_name() {
        let mut f = NameFilter::default();
        let names = ["", "a", "ab", "printk", "__ksymtab_printk", "x.constprop.0"];
        for n in names {
            f.insert(n.as_bytes());
        }
        assert!(names.iter().all(|n| f.may_contain(n.as_bytes())));
        // Most other names are told apart.
        let others = (0..1000)
            .filter(|i| f.may_contain(format!("sym_{i}").as_bytes()))
            .count();
        assert!(others < 100, "{others}");
    }

    #[test]
    fn equal_keys_hash_equal_and_tables_work() {
        let mut m: FxHashMap<&str, usize> = FxHashMap::default();
        for (i, k) in ["a", "ab", "abcdefgh", "abcdefghi", ""].iter().enumerate() {
            m.insert(k, i);
        }
        assert_eq!(m["abcdefghi"], 3);
        assert_eq!(m[""], 4);
        assert!(!m.contains_key("abcdefgh\0"));
    }
}
