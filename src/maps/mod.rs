//! Symbol maps: which symbols each object of the target kernel has, in the
//! order the livepatch core counts them, and lookup of klp symbols exactly
//! as `klp_find_object_symbol` does it ([`SymbolMap::find`]).
//!
//! Order (`docs/klp-contract.md` §4): vmlinux counts same-named symbols in
//! address order (kallsyms order); a module counts them in its symbol-table
//! order, among the "core" symbols the loader keeps for kallsyms.
//!
//! One reader a format, each in its own file: `/proc/kallsyms` dumps and
//! System.map files ([`kallsyms`]), a vmlinux ELF with a symbol table
//! ([`vmlinux`]), module `.ko` files, `.ko.xz` and `.ko.zst` too
//! ([`module`]), `Module.symvers` ([`symvers`]), symbols.klp
//! ([`symbols_klp`]), JSON maps ([`json`]), and the kernel `.config`
//! ([`config`]), whose `CONFIG_KALLSYMS_ALL` decides whether modules keep
//! data symbols. [`SymbolMap::from_paths`] reads any list of them.
//!
//! Names are bytes, as the kernel compares them: object names, symbol
//! names and export names are kept and looked up as `[u8]`, whatever
//! their encoding. The text formats are read a line of bytes at a time.

pub mod config;
pub mod json;
pub mod kallsyms;
pub mod module;
pub mod symbols;
pub mod symbols_klp;
pub mod symvers;
pub mod vmlinux;
pub mod wanted;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::elf::Elf;
use crate::fxhash::{FxHashMap, FxHashSet, NameFilter};
use crate::module_file;

pub use json::MAP_FORMAT;
pub use symbols::{MapSymbol, Symbols};
pub use symbols_klp::SYMBOLS_KLP_HEADER;
pub use wanted::{Wanted, QUERIED_LITERALS};

/// The symbols of every object known, each list in the kernel's counting order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SymbolMap {
    /// Object name -> its symbols in counting order.
    objects: BTreeMap<Vec<u8>, Symbols>,
    /// Exported name -> the object exporting it. A hash map: a kernel's
    /// maps add tens of thousands of exports, each found again in
    /// Module.symvers; the JSON map sorts them when it writes them.
    exports: FxHashMap<Vec<u8>, Vec<u8>>,
    /// Was an export list read (an empty one included)?
    has_exports: bool,
    /// `CONFIG_KALLSYMS_ALL` of the target, from its kernel config; unknown
    /// means yes. It decides whether modules read from `.ko` files keep
    /// their data symbols, as the module loader's kallsyms does.
    kallsyms_all: Option<bool>,
    /// The load orders the patch must work in: not part of the kernel's
    /// maps, but of what a lookup in them must prove.
    orders: Orders,
    /// The names the map answers for, when it was read keeping only the
    /// lines of those ([`SymbolMap::add_paths_wanted`]); `None`: every name.
    wanted: Option<Arc<Wanted>>,
}

/// Why a symbol map could not be read. The message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// Reading a file (compressed or not) or listing a directory failed.
    #[error("{0}")] // it names its file
    File(#[source] module_file::Error),
    /// An ELF file (vmlinux or module) does not parse.
    #[error("{}: {source}", path.display())]
    Elf {
        /// The file.
        path: PathBuf,
        /// What the ELF reader found.
        source: crate::elf::read::ReadError,
    },
    /// A JSON map is not valid JSON of the map's shape.
    #[error("{}JSON map: {source}", file_prefix(path))]
    Json {
        /// The file, when the map was read from one.
        path: Option<PathBuf>,
        /// What the JSON reader found (it gives line and column).
        source: serde_json::Error,
    },
    /// The contents are not a usable map: bad syntax in a text map, a
    /// format tag not known, a stripped vmlinux, Debian's placeholder
    /// System.map.
    #[error("{}{}{message}", file_prefix(path), line_prefix(line))]
    Parse {
        /// The file, when the map was read from one.
        path: Option<PathBuf>,
        /// The 1-based line, in a format with lines.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// Several modules of a module tree could not be read: each is named
    /// (one bad module does not hide the others).
    #[error(
        "{}: {} modules could not be read:{}",
        dir.display(),
        errors.len(),
        tree_lines(errors)
    )]
    Tree {
        /// The directory.
        dir: PathBuf,
        /// One error a module, in file-name order.
        errors: Vec<MapError>,
    },
}

impl MapError {
    /// A [`MapError::Parse`] without a file (the readers of text in memory).
    pub fn parse(line: Option<usize>, message: impl Into<String>) -> MapError {
        MapError::Parse {
            path: None,
            line,
            message: message.into(),
        }
    }

    /// The same error, its line counted `lines` further on (an error of
    /// the second half of a file read in two).
    pub(crate) fn after_lines(self, lines: usize) -> MapError {
        match self {
            MapError::Parse {
                path,
                line: Some(line),
                message,
            } => MapError::Parse {
                path,
                line: Some(line + lines),
                message,
            },
            other => other,
        }
    }

    /// The same error, about `path` when it names no file yet.
    pub fn in_file(self, file: &Path) -> MapError {
        match self {
            MapError::Parse {
                path: None,
                line,
                message,
            } => MapError::Parse {
                path: Some(file.to_path_buf()),
                line,
                message,
            },
            MapError::Json { path: None, source } => MapError::Json {
                path: Some(file.to_path_buf()),
                source,
            },
            other => other,
        }
    }

    /// The file the error is about, when known.
    pub fn path(&self) -> Option<&Path> {
        match self {
            MapError::File(e) => Some(e.path()),
            MapError::Elf { path, .. } => Some(path),
            MapError::Json { path, .. } | MapError::Parse { path, .. } => path.as_deref(),
            MapError::Tree { dir, .. } => Some(dir),
        }
    }
}

/// `path: `, when there is a path.
fn file_prefix(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!("{}: ", p.display()),
        None => String::new(),
    }
}

/// `line N: `, when there is a line.
fn line_prefix(line: &Option<usize>) -> String {
    match line {
        Some(n) => format!("line {n}: "),
        None => String::new(),
    }
}

/// The errors of a module tree, one an indented line.
fn tree_lines(errors: &[MapError]) -> String {
    errors.iter().map(|e| format!("\n  {e}")).collect()
}

impl From<module_file::Error> for MapError {
    fn from(e: module_file::Error) -> Self {
        MapError::File(e)
    }
}

/// Where the first `\n` of `text` is: eight bytes at a time, in line. A
/// map's lines are short (System.map's 40 bytes, symbols.klp's 17), and
/// at that length a call to `memchr` costs more than the search.
#[inline]
pub(crate) fn newline(text: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut words = text.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut words {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let d = u64::from_le_bytes(word) ^ (ONES * u64::from(b'\n'));
        // Exact: the lowest byte flagged is the first `\n` of the eight.
        let found = d.wrapping_sub(ONES) & !d & (ONES * 0x80);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = words.remainder().iter().position(|&b| b == b'\n');
    tail.map(|i| at + i)
}

/// [`newline`], and where the first `.` before it is, in the same pass: a
/// symbols.klp line is a name, and the map keeps it by the name's base
/// (up to its first `.`, [`Wanted`]). `(None, _)`: no `\n` in `text`.
#[inline]
pub(crate) fn newline_and_dot(text: &[u8]) -> (Option<usize>, Option<usize>) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // The bytes equal to `b`, flagged; exact for the lowest one flagged.
    let flags = |word: u64, b: u8| {
        let d = word ^ (ONES * u64::from(b));
        d.wrapping_sub(ONES) & !d & (ONES * 0x80)
    };
    let mut words = text.chunks_exact(8);
    let (mut at, mut dot) = (0, None);
    for chunk in &mut words {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(chunk);
        let word = u64::from_le_bytes(bytes);
        if dot.is_none() {
            let d = flags(word, b'.');
            if d != 0 {
                dot = Some(at + (d.trailing_zeros() / 8) as usize);
            }
        }
        let n = flags(word, b'\n');
        if n != 0 {
            let end = at + (n.trailing_zeros() / 8) as usize;
            return (Some(end), dot.filter(|&d| d < end));
        }
        at += 8;
    }
    for (i, &b) in words.remainder().iter().enumerate() {
        match b {
            b'\n' => return (Some(at + i), dot),
            b'.' if dot.is_none() => dot = Some(at + i),
            _ => {}
        }
    }
    (None, dot)
}

/// The lines of a text map, as bytes: split at `\n`, a `\r` before it
/// dropped, no empty last line after a final `\n` (as `str::lines`).
pub(crate) fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match newline(rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    })
}

/// When the livepatch core looks a module's symbols up, and so which of
/// the module's two lists it counts positions in (`docs/klp-contract.md`
/// §4). vmlinux has one list, the same in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LoadOrder {
    /// The target module is loaded before the patch: the patch's
    /// `klp_find_object_symbol` walks the `core_kallsyms` the module kept
    /// after its init.
    TargetFirst,
    /// The target module loads after the patch, or again while the patch
    /// is enabled: `klp_module_coming` runs before the module's init, while
    /// its full symbol table is still `mod->kallsyms`, and every defined
    /// symbol counts, `.init*` ones included.
    PatchFirst,
}

impl LoadOrder {
    /// Both, target first first.
    pub const ALL: [LoadOrder; 2] = [LoadOrder::TargetFirst, LoadOrder::PatchFirst];

    /// Does this order's list hold `s`?
    pub fn counts(self, s: &MapSymbol) -> bool {
        self == LoadOrder::PatchFirst || !s.coming_only
    }

    /// The order in words, for messages: "with the target loaded first".
    pub fn describe(self, obj: impl AsRef<[u8]>) -> String {
        let obj = crate::names::Show(obj.as_ref());
        match self {
            LoadOrder::TargetFirst => format!("with {obj} loaded before the patch"),
            LoadOrder::PatchFirst => {
                format!("with {obj} loaded after the patch (or reloaded under it)")
            }
        }
    }
}

/// The load orders a patch must work in: the maps' setting
/// ([`SymbolMap::set_orders`]), `--load-order` on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Orders {
    /// Either order: what the patch cannot control (a module may load at
    /// any time, or be reloaded while the patch is enabled).
    #[default]
    Both,
    /// Only one: the deployment guarantees it.
    Only(LoadOrder),
}

impl Orders {
    /// Does the patch have to work in `order`?
    pub fn includes(self, order: LoadOrder) -> bool {
        match self {
            Orders::Both => true,
            Orders::Only(o) => o == order,
        }
    }
}

/// The `pos`-th of the same-named symbols `same` (every symbol of that
/// name in the object's full list, in counting order) that `order` counts,
/// with `klp_find_object_symbol`'s rules: 0 only for a unique name.
fn pick(same: &[MapSymbol], pos: u64, order: LoadOrder) -> Result<Resolved, Unresolved> {
    let counted: Vec<usize> = (0..same.len())
        .filter(|&i| order.counts(&same[i]))
        .collect();
    let count = counted.len();
    let chosen = match (pos, count) {
        (_, 0) => return Err(Unresolved::NotFound),
        (0, 1) => 1,
        (0, _) => return Err(Unresolved::Ambiguous(count)),
        (p, c) if p as usize <= c => p as usize,
        _ => return Err(Unresolved::NoSuchPosition(count)),
    };
    let index = counted[chosen - 1];
    let s = same[index];
    Ok(Resolved {
        kind: s.kind,
        addr: s.addr,
        place: s.place(),
        position: chosen,
        count,
        index,
    })
}

/// One object's symbols by name: for each name its first and last symbol
/// (indices into the object's list), the others chained through `next` in
/// counting order. No allocation per name: vmlinux has 200,000 of them.
struct ByName<'a> {
    ends: FxHashMap<&'a [u8], (u32, u32)>,
    next: Vec<u32>,
    symbols: &'a Symbols,
}

/// The end of a `ByName` chain.
const END: u32 = u32::MAX;

impl<'a> ByName<'a> {
    fn new(symbols: &'a Symbols) -> Self {
        let mut ends: FxHashMap<&'a [u8], (u32, u32)> = FxHashMap::default();
        ends.reserve(symbols.len());
        let mut next = vec![END; symbols.len()];
        for (i, name) in symbols.names().enumerate() {
            let i = i as u32;
            ends.entry(name)
                .and_modify(|(_, last)| {
                    next[*last as usize] = i;
                    *last = i;
                })
                .or_insert((i, i));
        }
        ByName {
            ends,
            next,
            symbols,
        }
    }

    fn get(&self, name: &[u8]) -> Vec<MapSymbol<'a>> {
        let mut out = Vec::new();
        let mut i = self.ends.get(name).map_or(END, |&(first, _)| first);
        while let Some(s) = self.symbols.get(i as usize) {
            out.push(s);
            i = self.next.get(i as usize).copied().unwrap_or(END);
        }
        out
    }
}

/// Finds many names in one [`SymbolMap`] (see [`SymbolMap::lookup`] and
/// [`SymbolMap::lookup_for`]).
pub struct Lookup<'a> {
    map: &'a SymbolMap,
    /// Object -> each name asked in advance -> its symbols (indices) in
    /// counting order.
    asked: HashMap<Vec<u8>, FxHashMap<Vec<u8>, Vec<u32>>>,
    /// Object name -> its symbols by name, built on first use of a name
    /// not asked in advance.
    index: RefCell<HashMap<Vec<u8>, ByName<'a>>>,
}

impl<'a> Lookup<'a> {
    /// The same-named symbols `name` of `obj`, in counting order: all of
    /// them, the ones kept only while the module is coming included.
    pub fn candidates(&self, obj: impl AsRef<[u8]>, name: impl AsRef<[u8]>) -> Vec<MapSymbol<'a>> {
        let (obj, name) = (obj.as_ref(), name.as_ref());
        if let Some(hits) = self.asked.get(obj).and_then(|names| names.get(name)) {
            let symbols = self.map.symbols(obj);
            return hits
                .iter()
                .filter_map(|&i| symbols.get(i as usize))
                .collect();
        }
        let mut index = self.index.borrow_mut();
        if !index.contains_key(obj) {
            index.insert(obj.to_vec(), ByName::new(self.map.symbols(obj)));
        }
        index.get(obj).map(|b| b.get(name)).unwrap_or_default()
    }

    /// [`SymbolMap::find`], through the index.
    pub fn find(
        &self,
        obj: impl AsRef<[u8]>,
        name: impl AsRef<[u8]>,
        pos: u64,
    ) -> Result<Resolved, Unresolved> {
        self.find_in(obj, name, pos, LoadOrder::TargetFirst)
    }

    /// [`SymbolMap::find_in`], through the index.
    pub fn find_in(
        &self,
        obj: impl AsRef<[u8]>,
        name: impl AsRef<[u8]>,
        pos: u64,
        order: LoadOrder,
    ) -> Result<Resolved, Unresolved> {
        pick(&self.candidates(obj, name), pos, order)
    }
}

/// Why a klp symbol does not resolve: the kernel's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// `symbol '%s' not found in symbol table`
    NotFound,
    /// `unresolvable ambiguity for symbol '%s' in object '%s'`, with the count.
    Ambiguous(usize),
    /// `symbol position %lu for symbol '%s' in object '%s' not found`, with the count.
    NoSuchPosition(usize),
}

/// A resolved klp symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Its kallsyms type letter (`?` when the map does not know).
    pub kind: char,
    /// The address chosen (for a `.ko`, the value in its section), when
    /// the map knows it.
    pub addr: Option<u64>,
    /// Where it is, for messages (see [`MapSymbol::place`]), when known.
    pub place: Option<String>,
    /// Which of the same-named symbols (1-based) in the order's list.
    pub position: usize,
    /// How many there are in that list.
    pub count: usize,
    /// Which of all the same-named symbols of the object's map (0-based,
    /// [`Lookup::candidates`]): the same in two orders means the same symbol.
    pub index: usize,
}

/// Module names as the kernel spells them: `-` becomes `_`.
pub fn module_name(name: impl AsRef<[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    write_module_name(&mut out, name.as_ref());
    out
}

/// [`module_name`], appended to `out` (a reader of many lines reuses one buffer).
fn write_module_name(out: &mut Vec<u8>, name: &[u8]) {
    out.extend(name.iter().map(|&b| if b == b'-' { b'_' } else { b }));
}

impl SymbolMap {
    /// An empty map.
    pub fn new() -> Self {
        SymbolMap::default()
    }

    /// Read every source of `paths` into one map, in one fixed order:
    /// kernel configs first, wherever they stand in the list (their
    /// `CONFIG_KALLSYMS_ALL` decides what the modules keep), then the rest
    /// in the order given ([`SymbolMap::add_paths`]).
    pub fn from_paths(paths: &[PathBuf]) -> Result<SymbolMap, MapError> {
        let mut map = SymbolMap::new();
        map.add_paths(paths)?;
        Ok(map)
    }

    /// [`SymbolMap::from_paths`], keeping only the lines of the names
    /// `wanted` holds ([`SymbolMap::add_paths_wanted`]).
    pub fn from_paths_wanted(paths: &[PathBuf], wanted: &Wanted) -> Result<SymbolMap, MapError> {
        let mut map = SymbolMap::new();
        map.add_paths_wanted(paths, wanted)?;
        Ok(map)
    }

    /// [`SymbolMap::add_paths`], keeping only the symbols of the names
    /// `wanted` holds (and the exports of those): a conversion asks about a
    /// few hundred names, a kernel's maps have hundreds of thousands. Every
    /// line is still read and checked (a malformed one is an error), every
    /// object still known, and all the lines of a kept name kept in their
    /// order, so every answer about a wanted name is the unfiltered map's.
    /// From then on the map keeps only those names, whatever is added; it
    /// answers for the names both sets hold when read for two.
    pub fn add_paths_wanted(&mut self, paths: &[PathBuf], wanted: &Wanted) -> Result<(), MapError> {
        let now = match &self.wanted {
            Some(earlier) => earlier.intersection(wanted),
            None => wanted.clone(),
        };
        self.wanted = Some(Arc::new(now));
        self.add_paths(paths)
    }

    /// The names the map answers for, when it was read for some only
    /// ([`SymbolMap::add_paths_wanted`]); `None`: it holds every name read.
    pub fn wanted(&self) -> Option<&Wanted> {
        self.wanted.as_deref()
    }

    /// Does the map answer for every name `elf` can make the rules ask
    /// about? Always for a map read whole; for one read for some names
    /// only, when they include the module's ([`Wanted::of_module`]). A
    /// reader of a module asks before it trusts the map with it: a module
    /// that changed since the map was read for it is not.
    pub fn answers_for(&self, elf: &Elf) -> bool {
        self.wanted.as_deref().is_none_or(|w| w.answers_for(elf))
    }

    /// Does the map keep a symbol of this name (every name, read whole)?
    #[inline]
    fn keeps(&self, name: &[u8]) -> bool {
        self.wanted.as_deref().is_none_or(|w| w.keeps(name))
    }

    /// [`SymbolMap::keeps`], told the name's base (up to its first `.`).
    #[inline]
    fn keeps_with_base(&self, name: &[u8], base: &[u8]) -> bool {
        self.wanted
            .as_deref()
            .is_none_or(|w| w.keeps_with_base(name, base))
    }

    /// The objects known.
    pub fn objects(&self) -> impl Iterator<Item = &[u8]> {
        self.objects.keys().map(Vec::as_slice)
    }

    /// Does the map know `obj`?
    pub fn has(&self, obj: impl AsRef<[u8]>) -> bool {
        self.objects.contains_key(obj.as_ref())
    }

    /// The symbols of `obj`, in counting order (none for an object the
    /// map does not know).
    pub fn symbols(&self, obj: impl AsRef<[u8]>) -> &Symbols {
        self.objects.get(obj.as_ref()).unwrap_or(&symbols::EMPTY)
    }

    /// Replace the symbols of `obj`.
    pub fn set(&mut self, obj: impl AsRef<[u8]>, symbols: Symbols) {
        self.objects.insert(module_name(obj), symbols);
    }

    /// Find `name` at position `pos` in `obj` like `klp_find_object_symbol`
    /// with the target loaded first. One scan of the object; for many names
    /// use [`SymbolMap::lookup`].
    pub fn find(
        &self,
        obj: impl AsRef<[u8]>,
        name: impl AsRef<[u8]>,
        pos: u64,
    ) -> Result<Resolved, Unresolved> {
        self.find_in(obj, name, pos, LoadOrder::TargetFirst)
    }

    /// [`SymbolMap::find`] in the list `order` counts.
    pub fn find_in(
        &self,
        obj: impl AsRef<[u8]>,
        name: impl AsRef<[u8]>,
        pos: u64,
        order: LoadOrder,
    ) -> Result<Resolved, Unresolved> {
        let name = name.as_ref();
        let same: Vec<MapSymbol> = self
            .symbols(obj)
            .iter()
            .filter(|s| s.name == name)
            .collect();
        pick(&same, pos, order)
    }

    /// The load orders the patch must work in (both unless set).
    pub fn orders(&self) -> Orders {
        self.orders
    }

    /// Say which load orders the patch must work in (`--load-order`).
    pub fn set_orders(&mut self, orders: Orders) {
        self.orders = orders;
    }

    /// A finder for many names: each object is indexed by name the first
    /// time it is asked about, so a livepatch with thousands of klp symbols
    /// costs one pass over the objects it uses, not one a symbol.
    pub fn lookup(&self) -> Lookup<'_> {
        Lookup {
            map: self,
            asked: HashMap::new(),
            index: RefCell::new(HashMap::new()),
        }
    }

    /// A finder that knows the (object, name) pairs it will be asked in
    /// advance: one pass over the names of each object asked about finds
    /// them all, without indexing every name of the object (vmlinux has
    /// over a million). Other questions get the same answers as from
    /// [`SymbolMap::lookup`], at its cost.
    pub fn lookup_for<'q>(
        &self,
        queries: impl IntoIterator<Item = (&'q [u8], &'q [u8])>,
    ) -> Lookup<'_> {
        let mut asked: HashMap<Vec<u8>, FxHashMap<Vec<u8>, Vec<u32>>> = HashMap::new();
        for (obj, name) in queries {
            if self.has(obj) {
                asked
                    .entry(obj.to_vec())
                    .or_default()
                    .entry(name.to_vec())
                    .or_default();
            }
        }
        for (obj, names) in &mut asked {
            let mut filter = NameFilter::default();
            names.keys().for_each(|n| filter.insert(n));
            for (i, name) in self.symbols(obj).names().enumerate() {
                if !filter.may_contain(name) {
                    continue;
                }
                if let Some(hits) = names.get_mut(name) {
                    hits.push(i as u32);
                }
            }
        }
        Lookup {
            map: self,
            asked,
            index: RefCell::new(HashMap::new()),
        }
    }

    /// Is `name` exported by vmlinux or a module? `None` when no export list
    /// (Module.symvers) was read.
    pub fn is_exported(&self, name: impl AsRef<[u8]>) -> Option<bool> {
        self.has_exports
            .then(|| self.exports.contains_key(name.as_ref()))
    }

    /// The object exporting `name`, if any (`vmlinux` or a module).
    pub fn exporter(&self, name: impl AsRef<[u8]>) -> Option<&[u8]> {
        self.exports.get(name.as_ref()).map(Vec::as_slice)
    }

    /// Was any export list read?
    pub fn has_exports(&self) -> bool {
        self.has_exports
    }

    /// Readers that add an object's symbols a group of lines at a time keep
    /// that object out of the map while they do (one map lookup a group,
    /// not a line): put `current` back, shrunk, and take `next` out. An
    /// object this source (`begun`: the objects it began) gave before goes
    /// on; one another source gave is replaced, as [`SymbolMap::add_module`]
    /// replaces it, so the order of the sources decides nothing else.
    fn fill_next(
        &mut self,
        current: &mut Option<(Vec<u8>, Symbols)>,
        next: Option<Vec<u8>>,
        begun: &mut FxHashSet<Vec<u8>>,
    ) {
        if let Some((done, mut symbols)) = current.take() {
            symbols.shrink_to_fit();
            self.objects.insert(done, symbols);
        }
        *current = next.map(|obj| {
            let earlier = self.objects.remove(&obj);
            let symbols = if begun.insert(obj.clone()) {
                Symbols::new()
            } else {
                earlier.unwrap_or_default()
            };
            (obj, symbols)
        });
    }

    /// Record the exports an object's own symbols reveal: every exported
    /// symbol has a `__ksymtab_<name>` entry next to it (vmlinux and modules
    /// alike, 6.1 and 6.12). A vmlinux list carrying them is the complete
    /// export list of vmlinux (`complete`); a module's adds to it.
    fn take_exports(&mut self, obj: &[u8], symbols: &Symbols, complete: bool) {
        let mut any = false;
        for name in symbols.names() {
            if let Some(name) = name.strip_prefix(b"__ksymtab_") {
                self.add_export(name, obj);
                any = true;
            }
        }
        self.has_exports |= complete && any;
    }

    /// Record that `owner` exports `name`, replacing an earlier owner;
    /// nothing is allocated for an export already known (Module.symvers
    /// repeats what the `__ksymtab_` symbols of the maps told).
    fn add_export(&mut self, name: &[u8], owner: &[u8]) {
        match self.exports.get_mut(name) {
            Some(known) if known.as_slice() == owner => {}
            Some(known) => *known = owner.to_vec(),
            None => {
                self.exports.insert(name.to_vec(), owner.to_vec());
            }
        }
    }

    /// Take in the objects and exports of `other`: a same-named object is
    /// replaced, as [`SymbolMap::add_module`] replaces it.
    fn merge(&mut self, other: SymbolMap) {
        self.objects.extend(other.objects);
        self.exports.extend(other.exports);
        self.has_exports |= other.has_exports;
    }

    /// Add every source of `paths` ([`SymbolMap::add_path`]), kernel
    /// configs first: `CONFIG_KALLSYMS_ALL` decides what the modules keep,
    /// wherever the config stands in the list.
    pub fn add_paths(&mut self, paths: &[PathBuf]) -> Result<(), MapError> {
        let (configs, rest): (Vec<_>, Vec<_>) = paths
            .iter()
            .partition(|p| config::is_kernel_config(p.as_path()));
        for p in configs.into_iter().chain(rest) {
            self.add_path(p)?;
        }
        Ok(())
    }

    /// Add a file ([`SymbolMap::add_file`]) or every `.ko`/`.ko.xz`/`.ko.zst`
    /// below a directory (a `/lib/modules/<release>` tree, say).
    pub fn add_path(&mut self, path: &Path) -> Result<(), MapError> {
        if path.is_dir() {
            self.add_module_tree(path)
        } else {
            self.add_file(path)
        }
    }

    /// Add whatever `path` holds, told by its contents: an ELF vmlinux or
    /// module (compressed or not), a JSON map, a kernel config, a
    /// symbols.klp, a Module.symvers, or a kallsyms dump / System.map.
    pub fn add_file(&mut self, path: &Path) -> Result<(), MapError> {
        if let Some(read) = self.read_symbols_klp_split(path) {
            return read.map_err(|e| e.in_file(path));
        }
        if let Some(input) = symbols_klp::open_plain(path) {
            return self.read_symbols_klp(input).map_err(|e| e.in_file(path));
        }
        let bytes = module_file::read(path)?;
        if bytes.starts_with(b"\x7fELF") {
            return self.add_elf(path, &bytes);
        }
        // Text, read as bytes a line: a name in any encoding is kept as it
        // is. A NUL byte is in no text map (nor in any name).
        if memchr::memchr(0, &bytes).is_some() {
            return Err(MapError::Parse {
                path: Some(path.to_path_buf()),
                line: None,
                message: "neither ELF nor text".into(),
            });
        }
        let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let read = if bytes.trim_ascii_start().starts_with(b"{") {
            // JSON is UTF-8 (RFC 8259); names that are not are escaped in it.
            match std::str::from_utf8(&bytes) {
                Ok(text) => self.add_json(text),
                Err(e) => Err(MapError::parse(
                    None,
                    format!("JSON map: not UTF-8 (byte {})", e.valid_up_to()),
                )),
            }
        } else if config::looks_like_kernel_config(&bytes) {
            self.add_kernel_config(&bytes);
            Ok(())
        } else if first.starts_with(SYMBOLS_KLP_HEADER.as_bytes()) {
            self.add_symbols_klp(&bytes)
        } else if symvers::looks_like_symvers(first) {
            self.add_symvers(&bytes)
        } else {
            self.add_kallsyms(&bytes)
        };
        read.map_err(|e| e.in_file(path))
    }

    /// Add an ELF file's symbols: a relocatable object is a module
    /// ([`SymbolMap::add_module`], named by its `.modinfo` or its file
    /// name), anything else a vmlinux ([`SymbolMap::add_vmlinux`]).
    fn add_elf(&mut self, path: &Path, bytes: &[u8]) -> Result<(), MapError> {
        let (image, _) = crate::elf::signature::split(bytes);
        let elf = Elf::parse(image).map_err(|source| MapError::Elf {
            path: path.to_path_buf(),
            source,
        })?;
        if elf.e_type == crate::elf::abi::ET_REL {
            let name = match elf.modinfo_value("name") {
                Some(n) => n.to_vec(),
                None => module::module_stem(path),
            };
            self.add_module(&name, &elf, self.kallsyms_all.unwrap_or(true))
                .map_err(|e| e.in_file(path))
        } else {
            self.add_vmlinux(&elf).map_err(|e| e.in_file(path))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_and_errors() {
        let mut s = MapSymbol {
            name: b"x",
            kind: 't',
            addr: Some(0x40),
            section: Some(b".rodata"),
            file: Some(b"a.c"),
            coming_only: false,
        };
        assert_eq!(s.place().as_deref(), Some(".rodata+0x40 in a.c"));
        s.section = None;
        assert_eq!(s.place().as_deref(), Some("0x40 in a.c"));
        s.file = None;
        s.addr = None;
        assert_eq!(s.place(), None);

        let e = MapError::parse(Some(3), "bad").in_file(Path::new("m"));
        assert_eq!(e.to_string(), "m: line 3: bad");
        assert_eq!(MapError::parse(None, "bad").to_string(), "bad");
    }
}

#[cfg(test)]
mod newline_tests {
    #[test]
    fn newline_is_memchr() {
        let text = b"a\nbb\nccccccc\n0123456789abcdef\n\n\xff\x8a\x0a\x0b........x\n\xfe\x8arest.x\nfoo_12345.isra.0\n.L1\nlong_name_with.dot_later\n";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let t = &text[start..end];
                assert_eq!(
                    super::newline(t),
                    memchr::memchr(b'\n', t),
                    "{start}..{end}"
                );
                let nl = memchr::memchr(b'\n', t);
                let dot = memchr::memchr(b'.', &t[..nl.unwrap_or(t.len())]);
                assert_eq!(super::newline_and_dot(t), (nl, dot), "{start}..{end}");
            }
        }
    }
}
