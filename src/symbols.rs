//! Symbol maps: which symbols each object of the target kernel has, in the
//! order the livepatch core counts them, and resolution of klp symbols
//! exactly as `klp_find_object_symbol` does it.
//!
//! Order (`shared/docs/klp-abi.md` §4): vmlinux counts same-named symbols in
//! address order (kallsyms order); a module counts them in its symbol-table
//! order, among the "core" symbols the loader keeps for kallsyms.
//!
//! Sources read here: `/proc/kallsyms` dumps and System.map files (text), a
//! vmlinux ELF with a symbol table, module `.ko` files (`.ko.xz` and `.ko.zst`
//! too), `Module.symvers`, symbols.klp, JSON maps, and the kernel `.config`
//! (whose `CONFIG_KALLSYMS_ALL` decides whether modules keep data symbols).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use std::path::Path;

use object::elf;

use crate::elf::{Elf, SHF_ALLOC, SHF_EXECINSTR, SHN_LORESERVE, SHN_UNDEF};

/// One symbol of an object, as kallsyms shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSymbol {
    /// The name.
    pub name: String,
    /// The kallsyms type letter (`t`, `T`, `d`, `D`, `r`, `b`, ...):
    /// lower case for local binding, upper case for global.
    #[serde(default = "unknown_kind")]
    pub kind: char,
    /// Its address (or, for a `.ko`, its value in its section).
    pub addr: u64,
    /// For a `.ko`, the section the value is relative to.
    pub section: Option<String>,
    /// The source file, where the map knows it (a `.ko`'s local symbols).
    pub file: Option<String>,
}

impl MapSymbol {
    /// Where it is, for messages: `0xffffffff81000100` or `.rodata+0x40`.
    pub fn place(&self) -> String {
        let at = match &self.section {
            Some(s) => format!("{s}+0x{:x}", self.addr),
            None => format!("0x{:x}", self.addr),
        };
        match &self.file {
            Some(f) => format!("{at} in {f}"),
            None => at,
        }
    }
}

/// The symbols of every object known, each list in the kernel's counting order.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolMap {
    /// Object name -> its symbols in counting order.
    objects: BTreeMap<String, Vec<MapSymbol>>,
    /// Exported name -> the object exporting it.
    exports: BTreeMap<String, String>,
    /// Was an export list read (an empty one included)?
    has_exports: bool,
    /// `CONFIG_KALLSYMS_ALL` of the target, from its kernel config; unknown
    /// means yes. It decides whether modules read from `.ko` files keep
    /// their data symbols, as the module loader's kallsyms does.
    #[serde(skip)]
    kallsyms_all: Option<bool>,
}

fn unknown_kind() -> char {
    '?'
}

/// The `format` value of the JSON map this tool writes.
pub const MAP_FORMAT: &str = "klp-convert-map-1";

/// The JSON map on disk: a format tag, then the map.
#[derive(Serialize, Deserialize)]
struct MapFile {
    format: String,
    #[serde(flatten)]
    map: SymbolMap,
}

/// The kallsyms letter of an ELF symbol, from its type, section and binding.
fn kind_letter(elf: &Elf, sym: &crate::elf::Symbol) -> char {
    let sec = elf.sections.get(sym.section as usize);
    let flags = sec.map_or(0, |s| s.sh_flags);
    let letter = if sym.kind() == elf::STT_FUNC || flags & SHF_EXECINSTR != 0 {
        't'
    } else if sec.is_some_and(|s| s.sh_type == crate::elf::SHT_NOBITS) {
        'b'
    } else if flags & crate::elf::SHF_WRITE != 0 {
        'd'
    } else {
        'r'
    };
    if sym.bind() == elf::STB_LOCAL {
        letter
    } else {
        letter.to_ascii_uppercase()
    }
}

/// The `pos`-th of the same-named symbols `same` (in counting order), with
/// `klp_find_object_symbol`'s rules: 0 only for a unique name.
fn pick(same: &[&MapSymbol], pos: u64) -> Result<Resolved, Unresolved> {
    let count = same.len();
    let chosen = match (pos, count) {
        (_, 0) => return Err(Unresolved::NotFound),
        (0, 1) => 1,
        (0, _) => return Err(Unresolved::Ambiguous(count)),
        (p, c) if p as usize <= c => p as usize,
        _ => return Err(Unresolved::NoSuchPosition(count)),
    };
    let s = same[chosen - 1];
    Ok(Resolved {
        addr: s.addr,
        place: s.place(),
        position: chosen,
        count,
    })
}

/// Same-named symbols of one object, in counting order.
type ByName<'a> = HashMap<&'a str, Vec<&'a MapSymbol>>;

/// Resolves many names against one [`SymbolMap`] (see [`SymbolMap::lookup`]).
pub struct Lookup<'a> {
    map: &'a SymbolMap,
    /// Object name -> its symbols by name, built on first use.
    index: RefCell<HashMap<String, ByName<'a>>>,
}

impl<'a> Lookup<'a> {
    /// The same-named symbols `name` of `obj`, in counting order.
    pub fn candidates(&self, obj: &str, name: &str) -> Vec<&'a MapSymbol> {
        let mut index = self.index.borrow_mut();
        let by_name = index.entry(obj.to_string()).or_insert_with(|| {
            let mut m: ByName<'a> = HashMap::new();
            for s in self.map.symbols(obj) {
                m.entry(s.name.as_str()).or_default().push(s);
            }
            m
        });
        by_name.get(name).cloned().unwrap_or_default()
    }

    /// [`SymbolMap::resolve`], through the index.
    pub fn resolve(&self, obj: &str, name: &str, pos: u64) -> Result<Resolved, Unresolved> {
        pick(&self.candidates(obj, name), pos)
    }
}

/// Names in a vmlinux symbol table that the running kernel's kallsyms does
/// not hold: assembler-local labels, arm64 mapping symbols, the export
/// machinery's string and CRC symbols, and kallsyms' own tables (System.map
/// lists those; `/proc/kallsyms` does not). A map keeping them would accept
/// names `klp_find_object_symbol` cannot find.
fn kallsyms_omits(name: &[u8]) -> bool {
    const PREFIXES: [&[u8]; 5] = [b".L", b"$", b"__crc_", b"__kstrtab_", b"__kstrtabns_"];
    PREFIXES.iter().any(|p| name.starts_with(p))
        || (name.starts_with(b"kallsyms_")
            && matches!(
                &name[9..],
                b"addresses"
                    | b"offsets"
                    | b"relative_base"
                    | b"num_syms"
                    | b"names"
                    | b"markers"
                    | b"token_table"
                    | b"token_index"
                    | b"seqs_of_names"
            ))
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
    /// The address chosen.
    pub addr: u64,
    /// Where it is, for messages (see [`MapSymbol::place`]).
    pub place: String,
    /// Which of the same-named symbols (1-based).
    pub position: usize,
    /// How many there are.
    pub count: usize,
}

/// The first line of a v7 `symbols.klp` (only these bytes are compared).
pub const SYMBOLS_KLP_HEADER: &str = "klp-convert-symbol-data.0.1";

/// Module names as the kernel spells them: `-` becomes `_`.
pub fn module_name(name: &str) -> String {
    name.replace('-', "_")
}

impl SymbolMap {
    /// An empty map.
    pub fn new() -> Self {
        SymbolMap::default()
    }

    /// The objects known.
    pub fn objects(&self) -> impl Iterator<Item = &str> {
        self.objects.keys().map(String::as_str)
    }

    /// Does the map know `obj`?
    pub fn has(&self, obj: &str) -> bool {
        self.objects.contains_key(obj)
    }

    /// The symbols of `obj`, in counting order.
    pub fn symbols(&self, obj: &str) -> &[MapSymbol] {
        self.objects.get(obj).map_or(&[], Vec::as_slice)
    }

    /// Replace the symbols of `obj`.
    pub fn set(&mut self, obj: &str, symbols: Vec<MapSymbol>) {
        self.objects.insert(module_name(obj), symbols);
    }

    /// Resolve `name` at position `pos` in `obj` like `klp_find_object_symbol`.
    /// One scan of the object; for many names use [`SymbolMap::lookup`].
    pub fn resolve(&self, obj: &str, name: &str, pos: u64) -> Result<Resolved, Unresolved> {
        let same: Vec<&MapSymbol> = self
            .symbols(obj)
            .iter()
            .filter(|s| s.name == name)
            .collect();
        pick(&same, pos)
    }

    /// A resolver for many names: each object is indexed by name the first
    /// time it is asked about, so a livepatch with thousands of klp symbols
    /// costs one pass over the objects it uses, not one a symbol.
    pub fn lookup(&self) -> Lookup<'_> {
        Lookup {
            map: self,
            index: RefCell::new(HashMap::new()),
        }
    }

    /// Is `name` exported by vmlinux or a module? `None` when no export list
    /// (Module.symvers) was read.
    pub fn is_exported(&self, name: &str) -> Option<bool> {
        self.has_exports.then(|| self.exports.contains_key(name))
    }

    /// The object exporting `name`, if any (`vmlinux` or a module).
    pub fn exporter(&self, name: &str) -> Option<&str> {
        self.exports.get(name).map(String::as_str)
    }

    /// Was any export list read?
    pub fn has_exports(&self) -> bool {
        self.has_exports
    }

    /// Add a `Module.symvers`: `crc<TAB>symbol<TAB>module<TAB>export-type[<TAB>namespace]`.
    pub fn add_symvers(&mut self, text: &str) -> Result<(), String> {
        for (n, line) in text.lines().enumerate() {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() < 4 {
                if line.trim().is_empty() {
                    continue;
                }
                return Err(format!(
                    "line {}: expected crc, symbol, module, export type",
                    n + 1
                ));
            }
            // The module column is `vmlinux` or the module's path in the tree.
            let owner = fields[2].rsplit('/').next().unwrap_or(fields[2]);
            self.exports
                .insert(fields[1].to_string(), module_name(owner));
        }
        self.has_exports = true;
        Ok(())
    }

    /// Add a klp-convert v7 `symbols.klp`: a header line, then `*<object>`
    /// lines opening a block of names (nm's order). `__ksymtab_<x>` marks
    /// `<x>` as exported by the block's object. The file has no addresses:
    /// positions of duplicates cannot be known from it.
    pub fn add_symbols_klp(&mut self, text: &str) -> Result<(), String> {
        let mut lines = text.lines();
        match lines.next() {
            Some(h) if h.starts_with(SYMBOLS_KLP_HEADER) => {}
            _ => {
                return Err(format!(
                    "not a symbols.klp file (no '{SYMBOLS_KLP_HEADER}' header)"
                ))
            }
        }
        let mut current: Option<String> = None;
        for (n, line) in lines.enumerate() {
            if let Some(obj) = line.strip_prefix('*') {
                let obj = module_name(obj.trim());
                self.objects.entry(obj.clone()).or_default();
                current = Some(obj);
                continue;
            }
            let name = line.trim();
            if name.is_empty() {
                continue;
            }
            let Some(obj) = &current else {
                return Err(format!(
                    "line {}: symbol before the first *object line",
                    n + 2
                ));
            };
            if let Some(exported) = name.strip_prefix("__ksymtab_") {
                self.exports.insert(exported.to_string(), obj.clone());
            }
            let list = self.objects.entry(obj.clone()).or_default();
            list.push(MapSymbol {
                name: name.to_string(),
                kind: '?',
                addr: 0,
                section: None,
                file: None,
            });
        }
        self.has_exports = true;
        Ok(())
    }

    /// Write the map in this tool's JSON format, which keeps what
    /// `symbols.klp` cannot: order, addresses, sections, source files, kinds.
    pub fn to_json(&self) -> String {
        let file = MapFile {
            format: MAP_FORMAT.into(),
            map: self.clone(),
        };
        // Serialising plain data cannot fail.
        serde_json::to_string(&file).unwrap_or_default()
    }

    /// Add a map written by [`SymbolMap::to_json`].
    pub fn add_json(&mut self, text: &str) -> Result<(), String> {
        let file: MapFile = serde_json::from_str(text).map_err(|e| format!("JSON map: {e}"))?;
        if file.format != MAP_FORMAT {
            return Err(format!(
                "JSON map: format '{}', expected '{MAP_FORMAT}'",
                file.format
            ));
        }
        self.objects.extend(file.map.objects);
        self.exports.extend(file.map.exports);
        self.has_exports |= file.map.has_exports;
        Ok(())
    }

    /// Write the map as a v7 `symbols.klp`: vmlinux first, then modules by
    /// name; names sorted as `nm` sorts them; exports as `__ksymtab_<x>`.
    pub fn to_symbols_klp(&self) -> String {
        let mut objs: Vec<&String> = self.objects.keys().collect();
        objs.sort_by_key(|o| (o.as_str() != "vmlinux", o.as_str()));
        let mut out = String::from(SYMBOLS_KLP_HEADER);
        out.push('\n');
        for obj in objs {
            out.push('*');
            out.push_str(obj);
            out.push('\n');
            let mut names: Vec<String> = self.objects[obj].iter().map(|s| s.name.clone()).collect();
            for (name, owner) in &self.exports {
                if owner == obj && !names.iter().any(|n| n == &format!("__ksymtab_{name}")) {
                    names.push(format!("__ksymtab_{name}"));
                }
            }
            names.sort();
            for n in names {
                out.push_str(&n);
                out.push('\n');
            }
        }
        out
    }

    /// Add the lines of a `/proc/kallsyms` dump or a System.map:
    /// `address type name [module]`. Lines without `[module]` are vmlinux.
    pub fn add_kallsyms(&mut self, text: &str) -> Result<(), String> {
        let mut vmlinux: Vec<MapSymbol> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let mut parts = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next())
            else {
                if line.trim().is_empty() {
                    continue;
                }
                return Err(format!(
                    "line {}: expected 'address type name [module]'",
                    n + 1
                ));
            };
            let addr = u64::from_str_radix(addr, 16)
                .map_err(|_| format!("line {}: bad address '{addr}'", n + 1))?;
            let sym = MapSymbol {
                name: name.to_string(),
                kind: kind.chars().next().unwrap_or('?'),
                addr,
                section: None,
                file: None,
            };
            match parts.next() {
                Some(m) if m.starts_with('[') && m.ends_with(']') => {
                    let m = &m[1..m.len() - 1];
                    self.objects.entry(module_name(m)).or_default().push(sym);
                }
                // System.map also lists kallsyms' own tables.
                None if kallsyms_omits(name.as_bytes()) => {}
                None => vmlinux.push(sym),
                Some(_) if line.contains("The real System.map is in") => {
                    return Err(
                        "this is Debian's placeholder System.map; the real one is in the \
                         linux-image-<version>-dbg package (or dump /proc/kallsyms of the \
                         running kernel)"
                            .into(),
                    );
                }
                Some(other) => {
                    return Err(format!(
                        "line {}: unexpected '{other}' after the name (a module is written [name])",
                        n + 1
                    ))
                }
            }
        }
        if !vmlinux.is_empty() {
            // Same-named vmlinux symbols count in address order.
            vmlinux.sort_by_key(|s| s.addr);
            self.take_exports("vmlinux", &vmlinux, true);
            self.objects.insert("vmlinux".into(), vmlinux);
        }
        let modules: Vec<String> = self
            .objects
            .keys()
            .filter(|o| *o != "vmlinux")
            .cloned()
            .collect();
        for m in modules {
            let list = std::mem::take(self.objects.get_mut(&m).expect("key just listed"));
            self.take_exports(&m, &list, false);
            self.objects.insert(m, list);
        }
        Ok(())
    }

    /// Record the exports an object's own symbols reveal: every exported
    /// symbol has a `__ksymtab_<name>` entry next to it (vmlinux and modules
    /// alike, 6.1 and 6.12). A vmlinux list carrying them is the complete
    /// export list of vmlinux (`complete`); a module's adds to it.
    fn take_exports(&mut self, obj: &str, symbols: &[MapSymbol], complete: bool) {
        let mut any = false;
        for s in symbols {
            if let Some(name) = s.name.strip_prefix("__ksymtab_") {
                self.exports.insert(name.to_string(), obj.to_string());
                any = true;
            }
        }
        self.has_exports |= complete && any;
    }

    /// Add a vmlinux ELF (needs a symbol table) as object `vmlinux`.
    pub fn add_vmlinux(&mut self, elf: &Elf) -> Result<(), String> {
        if elf.symbols.is_empty() {
            return Err(
                "vmlinux has no symbol table (stripped): use System.map or /proc/kallsyms".into(),
            );
        }
        // Local symbols follow the STT_FILE symbol of their source file.
        let first_global = elf.symtab.map_or(0, |i| elf.sections[i].sh_info as usize);
        let mut file: Option<String> = None;
        let mut syms: Vec<MapSymbol> = Vec::new();
        for s in &elf.symbols {
            if s.kind() == elf::STT_FILE {
                file = Some(s.display_name());
                continue;
            }
            // Absolute symbols (linker constants) are not in kallsyms either.
            if s.st_shndx == SHN_UNDEF
                || s.st_shndx == elf::SHN_ABS
                || s.name.is_empty()
                || s.kind() == elf::STT_SECTION
                || kallsyms_omits(s.name)
            {
                continue;
            }
            syms.push(MapSymbol {
                name: s.display_name(),
                kind: kind_letter(elf, s),
                addr: s.st_value,
                section: None,
                file: (s.index < first_global).then(|| file.clone()).flatten(),
            });
        }
        // Same-named vmlinux symbols count in address order (a stable sort:
        // symbols at one address keep their symbol-table order).
        syms.sort_by_key(|s| s.addr);
        self.take_exports("vmlinux", &syms, true);
        self.objects.insert("vmlinux".into(), syms);
        Ok(())
    }

    /// Add a module `.ko`: its core symbols in symbol-table order, as the
    /// loader keeps them for kallsyms (`kallsyms_all`: data symbols too).
    pub fn add_module(&mut self, name: &str, elf: &Elf, kallsyms_all: bool) {
        // Local symbols follow the STT_FILE symbol of their source file;
        // globals come after all locals and have no file.
        let first_global = elf.symtab.map_or(0, |i| elf.sections[i].sh_info as usize);
        let mut file: Option<String> = None;
        let mut syms = Vec::new();
        for s in &elf.symbols {
            if s.kind() == elf::STT_FILE {
                file = Some(s.display_name());
                continue;
            }
            if s.st_shndx == SHN_UNDEF || s.st_name == 0 {
                continue;
            }
            let Some(sec) = elf
                .sections
                .get(s.section as usize)
                .filter(|_| s.section < SHN_LORESERVE)
            else {
                continue;
            };
            // The loader clears SHF_ALLOC of .modinfo and __versions.
            let dropped = sec.name == b".modinfo" || sec.name == b"__versions";
            let core = sec.sh_flags & SHF_ALLOC != 0
                && !dropped
                && (kallsyms_all || sec.sh_flags & SHF_EXECINSTR != 0)
                && !crate::arch::is_init_section(&sec.name);
            if core {
                syms.push(MapSymbol {
                    name: s.display_name(),
                    kind: kind_letter(elf, s),
                    addr: s.st_value,
                    section: Some(sec.display_name()),
                    file: if s.index < first_global {
                        file.clone()
                    } else {
                        None
                    },
                });
            }
        }
        let name = module_name(name);
        // Exports show in the whole symbol table, kallsyms_all or not.
        for s in &elf.symbols {
            let export = s.name.strip_prefix(b"__ksymtab_");
            if let (Some(export), false) = (export, s.st_shndx == SHN_UNDEF) {
                self.exports
                    .insert(String::from_utf8_lossy(export).into_owned(), name.clone());
            }
        }
        self.objects.insert(name, syms);
    }

    /// Take in the objects and exports of `other`, a map read from module
    /// files: a same-named object is replaced, as [`SymbolMap::add_module`]
    /// replaces it.
    fn merge(&mut self, other: SymbolMap) {
        self.objects.extend(other.objects);
        self.exports.extend(other.exports);
        self.has_exports |= other.has_exports;
    }

    /// Add every source of `paths` ([`SymbolMap::add_path`]), kernel
    /// configs first: `CONFIG_KALLSYMS_ALL` decides what the modules keep,
    /// wherever the config stands in the list.
    pub fn add_paths(&mut self, paths: &[std::path::PathBuf]) -> Result<(), String> {
        let (configs, rest): (Vec<_>, Vec<_>) =
            paths.iter().partition(|p| is_kernel_config(p.as_path()));
        for p in configs.into_iter().chain(rest) {
            self.add_path(p)?;
        }
        Ok(())
    }

    /// Take the target's `CONFIG_KALLSYMS_ALL` from its kernel config (the
    /// `.config` of its headers, `/boot/config-<release>`).
    pub fn add_kernel_config(&mut self, text: &str) {
        self.kallsyms_all = Some(text.lines().any(|l| l.trim() == "CONFIG_KALLSYMS_ALL=y"));
    }

    /// Add a file ([`SymbolMap::add_file`]) or every `.ko`/`.ko.xz`/`.ko.zst` below a
    /// directory (a `/lib/modules/<release>` tree, say).
    pub fn add_path(&mut self, path: &Path) -> Result<(), String> {
        if path.is_dir() {
            let files = crate::check::module_files(&[path.to_path_buf()])?;
            let maps = crate::parallel::map_files(&files, |f| {
                let mut one = SymbolMap {
                    kallsyms_all: self.kallsyms_all,
                    ..SymbolMap::new()
                };
                one.add_file(f).map(|()| one)
            });
            for one in maps {
                self.merge(one?);
            }
            Ok(())
        } else {
            self.add_file(path)
        }
    }

    /// Add whatever `path` holds: an ELF vmlinux or module, or a text map.
    pub fn add_file(&mut self, path: &Path) -> Result<(), String> {
        let bytes = crate::check::read_module(path)?;
        let fail = |e: String| format!("{}: {e}", path.display());
        if bytes.starts_with(b"\x7fELF") {
            let (image, _) = crate::elf::signature::split(&bytes);
            let elf = Elf::parse(image).map_err(|e| fail(e.to_string()))?;
            if elf.e_type == elf::ET_REL {
                let name = match elf.modinfo_value("name") {
                    Some(n) => String::from_utf8_lossy(n).into_owned(),
                    None => module_stem(path),
                };
                self.add_module(&name, &elf, self.kallsyms_all.unwrap_or(true));
                Ok(())
            } else {
                self.add_vmlinux(&elf).map_err(fail)
            }
        } else {
            let text = String::from_utf8(bytes).map_err(|_| fail("neither ELF nor text".into()))?;
            let first = text.lines().next().unwrap_or("");
            if text.trim_start().starts_with('{') {
                self.add_json(&text).map_err(fail)
            } else if looks_like_kernel_config(&text) {
                self.add_kernel_config(&text);
                Ok(())
            } else if first.starts_with(SYMBOLS_KLP_HEADER) {
                self.add_symbols_klp(&text).map_err(fail)
            } else if first.starts_with("0x") && first.split('\t').count() >= 4 {
                self.add_symvers(&text).map_err(fail)
            } else {
                self.add_kallsyms(&text).map_err(fail)
            }
        }
    }
}

/// A kernel `.config`: its first line that is not a plain comment sets or
/// unsets a `CONFIG_` option.
fn looks_like_kernel_config(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && (!l.starts_with('#') || l.starts_with("# CONFIG_")))
        .is_some_and(|l| l.starts_with("CONFIG_") || l.starts_with("# CONFIG_"))
}

/// Is `path` a kernel config? Its first 4 KiB tell (ELF and compressed
/// files are not).
fn is_kernel_config(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(4096).read_to_end(&mut head));
    read.is_ok() && looks_like_kernel_config(&String::from_utf8_lossy(&head))
}

/// `foo-bar.ko.xz` -> `foo_bar`.
fn module_stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.split('.').next().unwrap_or(&name);
    module_name(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_order_and_resolution() {
        let mut m = SymbolMap::new();
        m.add_kallsyms(
            "ffffffff81000200 t dup\n\
             ffffffff81000100 t dup\n\
             ffffffff81000300 T unique\n\
             ffffffffc0000010 t homonym\t[my-mod]\n\
             ffffffffc0000000 t homonym\t[my-mod]\n",
        )
        .unwrap();
        // vmlinux: address order.
        assert_eq!(
            m.resolve("vmlinux", "dup", 1).unwrap().addr,
            0xffffffff81000100
        );
        assert_eq!(
            m.resolve("vmlinux", "dup", 2).unwrap().addr,
            0xffffffff81000200
        );
        assert_eq!(
            m.resolve("vmlinux", "dup", 0),
            Err(Unresolved::Ambiguous(2))
        );
        assert_eq!(
            m.resolve("vmlinux", "dup", 3),
            Err(Unresolved::NoSuchPosition(2))
        );
        assert_eq!(m.resolve("vmlinux", "nope", 0), Err(Unresolved::NotFound));
        assert_eq!(m.resolve("vmlinux", "unique", 0).unwrap().position, 1);
        assert_eq!(m.resolve("vmlinux", "unique", 1).unwrap().position, 1);
        // modules: file (symbol table) order, '-' normalised.
        assert_eq!(
            m.resolve("my_mod", "homonym", 1).unwrap().addr,
            0xffffffffc0000010
        );
        assert!(m.has("my_mod") && !m.has("my-mod"));
        // The indexed resolver agrees with the scan on every case.
        let lookup = m.lookup();
        for (obj, name) in [
            ("vmlinux", "dup"),
            ("vmlinux", "unique"),
            ("vmlinux", "nope"),
            ("my_mod", "homonym"),
            ("no_such_module", "dup"),
        ] {
            for pos in 0..4 {
                assert_eq!(
                    lookup.resolve(obj, name, pos),
                    m.resolve(obj, name, pos),
                    "{obj} {name} {pos}"
                );
            }
        }
    }

    #[test]
    fn symvers_and_symbols_klp() {
        let mut m = SymbolMap::new();
        assert_eq!(m.is_exported("printk"), None);
        m.add_symvers("0x1\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n0x2\tfoo_fn\tdrivers/net/foo-bar\tEXPORT_SYMBOL_GPL\t\n")
            .unwrap();
        assert_eq!(m.exporter("printk"), Some("vmlinux"));
        assert_eq!(m.exporter("foo_fn"), Some("foo_bar"));
        assert_eq!(m.is_exported("nope"), Some(false));

        let text = "klp-convert-symbol-data.0.1\n*vmlinux\n__ksymtab_printk\nprintk\nsaved_command_line\n*my-mod\ndup\ndup\n";
        let mut k = SymbolMap::new();
        k.add_symbols_klp(text).unwrap();
        assert_eq!(k.exporter("printk"), Some("vmlinux"));
        assert_eq!(
            k.resolve("vmlinux", "saved_command_line", 0).unwrap().count,
            1
        );
        assert_eq!(k.resolve("my_mod", "dup", 0), Err(Unresolved::Ambiguous(2)));
        // Written back byte for byte (names were already in nm order).
        assert_eq!(k.to_symbols_klp(), text.replace("my-mod", "my_mod"));
        assert!(SymbolMap::new().add_symbols_klp("*vmlinux\n").is_err());
    }
}
