//! The names a conversion or a check of given modules can ask the maps
//! about, so that a map is read keeping only their lines
//! ([`super::SymbolMap::add_paths_wanted`]): a kernel's System.map has
//! 160,000 lines, and a livepatch asks about a few hundred names.
//!
//! The set holds **base names**: a name up to its first `.` (`foo` for
//! `foo.isra.0`; the empty name for `.L1`). A map line is kept when the base
//! of its name is in the set, so every line of a kept name is kept, in its
//! order (positions count same-named symbols, and stay what they were), and
//! so are the compiler's clones of a wanted name (`foo.cold`,
//! `foo.constprop.0`), which the "similar names" of a refusal list.
//!
//! The set is built generously from each module's ELF, not from what the
//! rules happen to ask today: every symbol name, every NUL-terminated
//! string of every section, the names of the patched functions
//! ([`crate::klp_patch::read`]: an `old_name` may point into the middle
//! of a string the linker merged), and [`QUERIED_LITERALS`]; every name
//! is also cut at each `.` and at each `,` within a piece, so any klp
//! symbol or annotation grammar's name part is covered whichever way it
//! is parsed. A name too many costs a line kept; a name missing would be a
//! wrong answer, so [`Wanted::covers`] lets the readers of a module check
//! that the map was read for it.

use std::path::PathBuf;

use crate::elf::{signature, Elf};
use crate::fxhash::{FxHashSet, NameFilter};
use crate::module_file;

/// The names the rules look up by themselves, whatever the module holds:
/// `_text` and `_end` give the kernel image's extent (the range check of a
/// PC-relative reference to vmlinux, `rules::resolution`). A rule that
/// asks the maps about another literal name must add it here.
pub const QUERIED_LITERALS: &[&[u8]] = &[b"_text", b"_end"];

/// The prefix that marks an export in the maps' own symbol lists
/// (`__ksymtab_<name>`): its line is kept when `<name>` is wanted, so the
/// exports the maps reveal are the same.
const KSYMTAB: &[u8] = b"__ksymtab_";

/// A set of base names (see the module doc).
#[derive(Clone, Default)]
pub struct Wanted {
    bases: FxHashSet<Vec<u8>>,
    /// Two one-bit pre-tests ahead of the set, as most lines of a map are
    /// not wanted: a multiply of a name's length and end bytes, which
    /// tells most of a kernel's names apart, then a hash of the whole name
    /// for those it does not (`f1` … `f99999`).
    quick: NameFilter,
    filter: BaseFilter,
    /// The modules whose names all are in the set: (length, hash) of each
    /// ELF image read ([`Wanted::add_module`]), so that telling whether a
    /// map answers for a module it was read for costs a hash of its bytes,
    /// not the names again ([`Wanted::answers_for`]).
    modules: FxHashSet<(usize, u64)>,
}

impl std::fmt::Debug for Wanted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Wanted({} base names)", self.bases.len())
    }
}

impl PartialEq for Wanted {
    fn eq(&self, other: &Self) -> bool {
        self.bases == other.bases && self.modules == other.modules
    }
}

/// (length, hash) of an ELF image: which module a set was built from.
fn fingerprint(image: &[u8]) -> (usize, u64) {
    use std::hash::{BuildHasher, Hasher};
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write(image);
    (image.len(), h.finish())
}

impl Eq for Wanted {}

/// Can a section hold a name the rules read from the module's data? Not
/// code, relocation entries, symbol entries (their names are read from the
/// symbols) or DWARF: the rules read names from symbols, section names,
/// and the patched functions' tables (added exactly,
/// [`crate::klp_patch::read`]). The strings of every other section with
/// contents are added, as a margin: `.modinfo`, `.rodata.str*`, `.strtab`.
fn may_hold_names(sec: &crate::elf::Section) -> bool {
    use crate::elf::abi;
    let binary = matches!(
        sec.sh_type,
        abi::SHT_REL | abi::SHT_RELA | abi::SHT_SYMTAB | abi::SHT_DYNSYM | abi::SHT_SYMTAB_SHNDX
    );
    let code = sec.sh_flags & crate::elf::SHF_EXECINSTR != 0;
    let dwarf = sec.name.starts_with(b".debug_") || sec.name.starts_with(b".zdebug_");
    !(binary || code || dwarf)
}

/// A bit a hash of each base name in the set: a name whose bit is clear
/// is not in it. Keyed on a hash of the whole name, not on a few of its
/// bytes, because names a map holds by the million differ anywhere (the
/// generated `f0` … `f99999` of a test, a kernel's `__key.N`): with 2^20
/// bits, a set of 20,000 names lets about 2% of the others through.
#[derive(Clone)]
struct BaseFilter {
    bits: Vec<u64>,
}

impl Default for BaseFilter {
    fn default() -> Self {
        BaseFilter {
            bits: vec![0; (1 << BaseFilter::BITS) / 64],
        }
    }
}

impl BaseFilter {
    /// log2 of the number of bits (128 KiB, in the cache beside the scan).
    const BITS: u32 = 20;

    /// The bit of a base whose [`base_hash`] is `hash`.
    #[inline]
    fn bit(hash: u64) -> usize {
        (hash >> (64 - Self::BITS)) as usize
    }

    fn insert(&mut self, hash: u64) {
        let i = Self::bit(hash);
        self.bits[i / 64] |= 1 << (i % 64);
    }

    #[inline]
    fn may_contain(&self, hash: u64) -> bool {
        let i = Self::bit(hash);
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }
}

/// A hash of a base name, for [`BaseFilter`]: the Fx hash of its bytes
/// (`rustc-hash` reads them eight at a time).
#[inline]
fn base_hash(base: &[u8]) -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write(base);
    h.finish()
}

/// A name up to its first `.`: eight bytes at a time (a map's names are
/// short, and a call to `memchr` a name costs more than the search).
fn base_of(name: &[u8]) -> &[u8] {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut chunks = name.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let d = u64::from_le_bytes(word) ^ (ONES * u64::from(b'.'));
        // Exact: the lowest byte flagged is the first `.` of the eight.
        let zero = d.wrapping_sub(ONES) & !d & (ONES * 0x80);
        if zero != 0 {
            return &name[..at + (zero.trailing_zeros() / 8) as usize];
        }
        at += 8;
    }
    match chunks.remainder().iter().position(|&b| b == b'.') {
        Some(i) => &name[..at + i],
        None => name,
    }
}

impl Wanted {
    /// The set of [`QUERIED_LITERALS`] only.
    pub fn new() -> Self {
        let mut w = Wanted::default();
        for name in QUERIED_LITERALS {
            w.add_name(name);
        }
        w
    }

    /// The names `elf` can make the rules ask about ([`Wanted::add_module`]).
    pub fn of_module(elf: &Elf) -> Self {
        let mut w = Wanted::new();
        w.add_module(elf);
        w
    }

    /// Add a base name as it is.
    fn add_base(&mut self, base: &[u8]) {
        if !self.bases.contains(base) {
            self.quick.insert(base);
            self.filter.insert(base_hash(base));
            self.bases.insert(base.to_vec());
        }
    }

    /// Add `name` and every part of it a grammar could take for a name:
    /// each piece between `.`s, and each piece cut at each `,` in it
    /// (`.klp.sym.vmlinux.foo,1` adds `foo,1`, `foo`, `vmlinux`, `sym`,
    /// `klp` and the empty name).
    pub fn add_name(&mut self, name: &[u8]) {
        for piece in name.split(|&b| b == b'.') {
            self.add_base(piece);
            for (i, _) in piece.iter().enumerate().filter(|&(_, &b)| b == b',') {
                self.add_base(&piece[..i]);
            }
        }
    }

    /// Add what `elf` can make the rules ask about (see the module doc).
    pub fn add_module(&mut self, elf: &Elf) {
        self.modules.insert(fingerprint(elf.data));
        for s in &elf.symbols {
            self.add_name(s.name);
        }
        for sec in &elf.sections {
            self.add_name(sec.name);
            if !may_hold_names(&sec) {
                continue;
            }
            for string in elf.section_data(sec.index).split(|&b| b == 0) {
                if !string.is_empty() {
                    self.add_name(string);
                }
            }
        }
        if let Some(table) = crate::klp_patch::read(elf) {
            for o in &table.objects {
                if let Some(name) = &o.name {
                    self.add_name(name);
                }
            }
            for (_, f) in table.funcs() {
                if let Some(name) = &f.old_name {
                    self.add_name(name);
                }
            }
        }
    }

    /// The names the module files `files` can make the rules ask about
    /// (compressed ones too), read on all cores. A file that cannot be
    /// read, or is not ELF, adds nothing: the command that reads it next
    /// fails on it without asking the maps (or, should it read otherwise
    /// then, [`super::SymbolMap::answers_for`] says the maps are not for it).
    pub fn of_files(files: &[PathBuf]) -> Self {
        Self::gather(files)
    }

    /// [`Wanted::of_files`] when every file is a regular one; `None` if one
    /// is not (a FIFO, a device, a process substitution's pipe): reading it
    /// for its names would drain it or never end, so the maps are read
    /// whole, and the command reads the file once, as it always did.
    pub fn of_regular_files(files: &[PathBuf]) -> Option<Self> {
        let regular = |p: &PathBuf| std::fs::metadata(p).is_ok_and(|m| m.is_file());
        files.iter().all(regular).then(|| Self::gather(files))
    }

    /// The names of `files`, read on all cores.
    fn gather(files: &[PathBuf]) -> Self {
        let each = crate::parallel::map_files(files, |path| {
            let bytes = module_file::read(path).ok()?;
            let elf = Elf::parse(signature::split(&bytes).0).ok()?;
            Some(Wanted::of_module(&elf))
        });
        let mut w = Wanted::new();
        for one in each.into_iter().flatten().flatten() {
            w.extend(&one);
        }
        w
    }

    /// Add every name of `other`.
    pub fn extend(&mut self, other: &Wanted) {
        for base in &other.bases {
            self.add_base(base);
        }
        self.modules.extend(&other.modules);
    }

    /// The names in both sets: what a map read first for one and then for
    /// the other can answer for.
    pub fn intersection(&self, other: &Wanted) -> Wanted {
        let mut w = Wanted::default();
        for base in self.bases.iter().filter(|b| other.bases.contains(*b)) {
            w.add_base(base);
        }
        w.modules = self.modules.intersection(&other.modules).copied().collect();
        w
    }

    /// Does a map read for `self` answer for every name of `other`?
    pub fn covers(&self, other: &Wanted) -> bool {
        other.bases.iter().all(|b| self.bases.contains(b))
    }

    /// Does a map read for `self` answer for every name `elf` can make the
    /// rules ask about? At once for a module the set was built from (its
    /// bytes unchanged); otherwise its names are gathered and compared.
    pub fn answers_for(&self, elf: &Elf) -> bool {
        self.modules.contains(&fingerprint(elf.data)) || self.covers(&Wanted::of_module(elf))
    }

    /// Is the base of `name` in the set?
    #[inline]
    fn has_base_of(&self, name: &[u8]) -> bool {
        self.has_base(base_of(name))
    }

    /// Is `base` in the set?
    #[inline]
    fn has_base(&self, base: &[u8]) -> bool {
        self.quick.may_contain(base)
            && self.filter.may_contain(base_hash(base))
            && self.bases.contains(base)
    }

    /// [`Wanted::keeps`], told the base of `name` (a reader that scanned
    /// the name found its first `.` already).
    #[inline]
    pub(crate) fn keeps_with_base(&self, name: &[u8], base: &[u8]) -> bool {
        self.has_base(base)
            || (name.first() == Some(&b'_')
                && name
                    .strip_prefix(KSYMTAB)
                    .is_some_and(|export| self.has_base_of(export)))
    }

    /// Does a map keep a line of symbol `name`? When the base of its name
    /// is wanted, or it is the `__ksymtab_` mark of a wanted name.
    #[inline]
    pub fn keeps(&self, name: &[u8]) -> bool {
        self.has_base_of(name)
            || (name.first() == Some(&b'_')
                && name
                    .strip_prefix(KSYMTAB)
                    .is_some_and(|export| self.has_base_of(export)))
    }

    /// How many base names the set holds.
    pub fn len(&self) -> usize {
        self.bases.len()
    }

    /// Is the set empty?
    pub fn is_empty(&self) -> bool {
        self.bases.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_their_parts() {
        let mut w = Wanted::new();
        w.add_name(b".klp.sym.vmlinux.foo.isra.0,1");
        w.add_name(b".klp.sym.rela.lp.my_mod.bar,baz,2");
        for kept in [
            &b"foo"[..],
            b"foo.cold",
            b"foo.isra.0",
            b"bar,baz",
            b"bar",
            b".Lanything",
            b"_text",
            b"_end",
            b"__ksymtab_foo",
            b"__ksymtab_bar.x",
        ] {
            assert!(w.keeps(kept), "{}", crate::names::show(kept));
        }
        for dropped in [&b"fo"[..], b"foox", b"__ksymtab_baz", b"text"] {
            assert!(!w.keeps(dropped), "{}", crate::names::show(dropped));
        }
        for name in [
            "",
            "a",
            ".",
            "abcdefgh.",
            "abcdefg.h",
            "abcdefghijklmnop",
            "x.y.z",
            "abcdefghi.j",
        ] {
            let want = name.split('.').next().unwrap_or_default();
            assert_eq!(base_of(name.as_bytes()), want.as_bytes(), "{name}");
        }
        // Bytes above 0x7f before a dot (a borrow must not flag them).
        assert_eq!(
            base_of(b"\xff\x80\x2f\x2d.\xff\xff\xffab"),
            b"\xff\x80\x2f\x2d"
        );
        let mut small = Wanted::new();
        small.add_name(b"foo");
        assert!(w.covers(&small) && !small.covers(&w));
        assert_eq!(w.intersection(&small), small);
    }
}
