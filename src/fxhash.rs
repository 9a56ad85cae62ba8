//! A small, fast, non-cryptographic hasher (the "Fx" multiply-rotate hash
//! of Firefox and rustc) for the tool's own lookup tables. The maps it
//! serves are keyed by symbol names of the user's own kernel: nothing an
//! attacker picks to provoke collisions, and SipHash costs a third of a
//! symbols.klp run.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The Fx hasher.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with the Fx hasher.
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
/// A `HashSet` with the Fx hasher.
pub type FxHashSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

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
