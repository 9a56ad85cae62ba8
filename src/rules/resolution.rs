//! Symbol resolution against the target kernel's maps, in the kernel's
//! words: `klp_find_object_symbol` for klp symbols (not found, ambiguous,
//! no such position), `simplify_symbols` for the names the module loader
//! must link ("Unknown symbol"). `convert` checks annotated positions with
//! [`find`]; `check` runs [`module`].

use std::collections::HashMap;

use crate::arch;
use crate::elf::{Elf, Reloc, SHF_RELA_LIVEPATCH, SHN_LIVEPATCH};
use crate::finding::{Finding, Rule};
use crate::klp_patch::{Form, PatchTable};
use crate::maps::{Lookup, Resolved, SymbolMap, Unresolved};
use crate::names::{self, show, KlpSymbol, VMLINUX};
use crate::rules::contract;

/// How a fix-it line is written: in the annotation style the module already
/// uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintForm {
    /// `KLP_RELOC_SYMBOL_POS(obj, obj, name, pos)` on the declaration.
    Minimal,
    /// `KLP_MODULE_RELOC(obj) ... = { KLP_SYMPOS(name, pos) }` (v7).
    V7,
}

impl HintForm {
    /// The v7 form when the module has `KLP_MODULE_RELOC` tables, else the
    /// minimal one.
    pub fn of(elf: &Elf) -> HintForm {
        let v7 = elf
            .sections
            .iter()
            .any(|s| s.name.starts_with(names::SYMPOS_SECTION_PREFIX.as_bytes()));
        if v7 {
            HintForm::V7
        } else {
            HintForm::Minimal
        }
    }

    /// What to do with a [`HintForm::line`].
    pub fn advice(self) -> &'static str {
        match self {
            HintForm::Minimal => "annotate the declaration",
            HintForm::V7 => "add to the module's KLP_MODULE_RELOC table the entry",
        }
    }

    /// One ready-to-paste line choosing `name` at `pos` in `obj`, with where
    /// that candidate is when the maps know (names as [`names::Show`] shows them).
    pub fn line(self, obj: &[u8], name: &[u8], pos: usize, place: Option<&str>) -> String {
        let (obj, name) = (show(obj), show(name));
        let code = match self {
            HintForm::Minimal => format!("KLP_RELOC_SYMBOL_POS({obj}, {obj}, {name}, {pos})"),
            HintForm::V7 => format!("KLP_MODULE_RELOC({obj}) {{ KLP_SYMPOS({name}, {pos}) }}"),
        };
        match place {
            Some(p) => format!("{code} /* {p} */"),
            None => code,
        }
    }
}

/// Where `k` resolves: the note `check` gives for a klp symbol that loads.
pub fn resolves(k: &KlpSymbol, r: &Resolved) -> Finding {
    let message = match &r.place {
        Some(place) => format!(
            "resolves to {place} in {} (position {} of {})",
            show(&k.obj),
            r.position,
            r.count
        ),
        None => format!(
            "resolves in {} (position {} of {}; the symbol maps give no address)",
            show(&k.obj),
            r.position,
            r.count
        ),
    };
    Finding::new(Rule::Resolves, message)
}

/// `klp_find_object_symbol`: the symbol `k` names, or the kernel's refusal
/// with the candidates (or, for a name the object lacks, the objects that
/// have it and the names it does have).
pub fn find(lookup: &Lookup, map: &SymbolMap, k: &KlpSymbol) -> Result<Resolved, Finding> {
    let candidates = || {
        let list: Vec<String> = lookup
            .candidates(&k.obj, &k.name)
            .iter()
            .enumerate()
            .map(|(i, s)| match s.place() {
                Some(p) => format!("position {} at {p}", i + 1),
                None => format!("position {}", i + 1),
            })
            .collect();
        list.join(", ")
    };
    let (obj, name) = (show(&k.obj), show(&k.name));
    lookup.find(&k.obj, &k.name, k.pos).map_err(|e| match e {
        Unresolved::NotFound => Finding::new(
            Rule::SymbolNotFound,
            format!(
                "symbol '{name}' not found in symbol table (object {obj}){}",
                not_found_detail(map, &k.obj, &k.name)
            ),
        ),
        Unresolved::Ambiguous(n) => Finding::new(
            Rule::AmbiguousSymbol,
            format!(
                "unresolvable ambiguity for symbol '{name}' in object '{obj}': {n} candidates ({}); give the 1-based position",
                candidates()
            ),
        ),
        Unresolved::NoSuchPosition(n) => Finding::new(
            Rule::PositionNotFound,
            format!(
                "symbol position {} for symbol '{name}' in object '{obj}' not found: it has {n} ({})",
                k.pos,
                candidates()
            ),
        ),
    })
}

/// Resolve every patched function of `table` as `klp_init_object_loaded`
/// does, through `klp_find_object_symbol` with the function's `old_name`
/// and `old_sympos`: the kernel's refusals ("unresolvable ambiguity",
/// "symbol ... not found", "symbol position ... not found") with the
/// candidates, or where each resolves.
pub fn patched_functions(map: &SymbolMap, table: &PatchTable) -> Vec<Finding> {
    let lookup = map.lookup_for(
        table
            .funcs()
            .filter_map(|(o, f)| Some((o.name.as_deref()?, f.old_name.as_deref()?))),
    );
    let mut out = Vec::new();
    for (o, f) in table.funcs() {
        let (Some(obj), Some(name)) = (&o.name, &f.old_name) else {
            continue; // a contract finding already
        };
        let at = |p: Finding| {
            p.in_section(f.place.section.clone())
                .at(f.place.offset)
                .symbol(show(name).to_string())
        };
        if !map.has(obj) {
            out.push(at(Finding::new(
                Rule::ObjectNotInMaps,
                format!(
                    "object '{}' is not in the symbol maps given: patched function '{}' was not resolved",
                    show(obj),
                    show(name)
                ),
            )));
            continue;
        }
        let k = KlpSymbol {
            obj: obj.clone(),
            name: name.clone(),
            pos: f.sympos,
        };
        out.push(at(match find(&lookup, map, &k) {
            Ok(r) => {
                let p = resolves(&k, &r);
                let message = format!("patched function {}", p.message);
                Finding { message, ..p }
            }
            Err(mut p) => {
                // klp_init_object_loaded passes obj->name, NULL for vmlinux,
                // and the ambiguity message prints it as such.
                if o.null_name && p.rule == Rule::AmbiguousSymbol {
                    p.message = p
                        .message
                        .replace("in object 'vmlinux': ", "in object '(null)': vmlinux has ");
                }
                let hint = match table.form {
                    Form::Static => "klp_func.old_sympos",
                    Form::Objtool => "klp_func_ext.sympos (objtool)",
                };
                let message = format!("patched function: {} [{hint} is {}]", p.message, f.sympos);
                Finding { message, ..p }
            }
        }));
    }
    out
}

/// Why a name is not in its object: the objects that have it, else the
/// compiler's other names for it there (`counter.4` for an annotated
/// `counter.0`, `f.constprop.0` for `f`).
fn not_found_detail(map: &SymbolMap, obj: &[u8], name: &[u8]) -> String {
    let list = |names: &[&[u8]]| {
        let shown: Vec<String> = names.iter().map(|n| show(n).to_string()).collect();
        shown.join(", ")
    };
    let elsewhere: Vec<&[u8]> = map
        .objects()
        .filter(|o| *o != obj && map.symbols(o).iter().any(|s| s.name == name))
        .collect();
    if !elsewhere.is_empty() {
        return format!("; the same name is in: {}", list(&elsewhere));
    }
    let base = base_of(name);
    let mut similar: Vec<&[u8]> = Vec::new();
    for s in map.symbols(obj) {
        let n = s.name;
        if n != name && base_of(n) == base && !similar.contains(&n) {
            similar.push(n);
        }
    }
    if similar.is_empty() {
        String::new()
    } else {
        format!(
            "; {} has: {}",
            show(obj),
            list(&similar[..similar.len().min(8)])
        )
    }
}

/// A name up to its first `.` (a compiler clone's original name).
fn base_of(name: &[u8]) -> &[u8] {
    name.split(|&b| b == b'.').next().unwrap_or(name)
}

/// The symbols that give the kernel image's extent ([`kernel_image`]).
const KERNEL_IMAGE: [&[u8]; 2] = [b"_text", b"_end"];

/// The kernel image's extent, `_text`..`_end` of vmlinux, when the maps
/// give both addresses (a kallsyms dump read without root gives zeros).
/// `lookup` must have been made for [`KERNEL_IMAGE`] among its names.
fn kernel_image(lookup: &Lookup) -> Option<(u64, u64)> {
    let addr = |name: &[u8]| {
        lookup
            .candidates(VMLINUX, name)
            .into_iter()
            .find(|s| s.section.is_none())
            .and_then(|s| s.addr)
            .filter(|a| *a != 0)
    };
    let (text, end) = (addr(b"_text")?, addr(b"_end")?);
    (text < end).then_some((text, end))
}

/// Which findings to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Every finding, the notes included (`check`).
    All,
    /// The refusals only (`convert`, which drops the notes: ten thousand
    /// "resolves to" messages cost more than resolving the symbols).
    Errors,
}

/// Resolve every klp symbol of `elf` as `klp_find_object_symbol` would, and
/// every name the module loader must link against the exports.
pub fn module(elf: &Elf, map: &SymbolMap) -> Vec<Finding> {
    module_report(elf, map, Report::All)
}

/// [`module`], building only the findings `report` asks for.
pub fn module_report(elf: &Elf, map: &SymbolMap, report: Report) -> Vec<Finding> {
    let mut out = klp_symbols_report(elf, map, report);
    let module = elf
        .modinfo_value("name")
        .map(|n| show(n).to_string())
        .unwrap_or_else(|| "the module".into());
    for sym in &elf.symbols {
        if contract::needs_linking(sym) && map.is_exported(sym.name) == Some(false) {
            out.push(
                Finding::new(
                    Rule::UnknownSymbol,
                    format!(
                        "{module}: Unknown symbol {} (err -2): neither exported (Module.symvers) nor converted to a klp symbol",
                        arch::loader_name(elf.machine, &sym.display_name())
                    ),
                )
                .in_section(".symtab")
                .symbol(sym.display_name()),
            );
        }
    }
    out
}

/// Resolve every klp symbol (`SHN_LIVEPATCH`, named `.klp.sym.*`) of `elf`
/// as `klp_find_object_symbol` would, and check the fields its value goes
/// into. `convert` asks this of the klp symbols a module already has.
pub fn klp_symbols(elf: &Elf, map: &SymbolMap) -> Vec<Finding> {
    klp_symbols_report(elf, map, Report::All)
}

/// [`klp_symbols`], building only the findings `report` asks for.
fn klp_symbols_report(elf: &Elf, map: &SymbolMap, report: Report) -> Vec<Finding> {
    let mut out = Vec::new();
    // The klp relocations of each klp symbol: (klp section, entry).
    let mut uses: HashMap<u32, Vec<(usize, Reloc)>> = HashMap::new();
    for rs in &elf.relocs {
        if elf.sections[rs.index].sh_flags & SHF_RELA_LIVEPATCH != 0 {
            for r in &rs.entries {
                uses.entry(r.sym).or_default().push((rs.index, *r));
            }
        }
    }
    // The names that do not parse are a contract finding already, or
    // tombstones.
    let klp: Vec<_> = elf
        .symbols
        .iter()
        .filter(|s| s.st_shndx == SHN_LIVEPATCH)
        .filter_map(|s| Some((s, names::parse_klp_symbol(s.name).ok()?)))
        .collect();
    let lookup = map.lookup_for(
        klp.iter()
            .map(|(_, k)| (k.obj.as_slice(), k.name.as_slice()))
            .chain(KERNEL_IMAGE.map(|name| (VMLINUX, name))),
    );
    let kernel = kernel_image(&lookup);
    for (sym, k) in klp {
        let at = |p: Finding| p.in_section(".symtab").symbol(sym.display_name());
        if !map.has(&k.obj) {
            out.push(at(Finding::new(
                Rule::ObjectNotInMaps,
                format!(
                    "object '{}' is not in the symbol maps given: '{}' was not resolved",
                    show(&k.obj),
                    show(&k.name)
                ),
            )));
            continue;
        }
        match find(&lookup, map, &k) {
            Ok(r) => {
                if report == Report::All {
                    out.push(at(resolves(&k, &r)));
                }
                // Only an absolute address can overflow a field; a .ko
                // map gives section-relative values, a symbols.klp none.
                let absolute = r.place.as_deref().is_some_and(|p| p.starts_with("0x"));
                let (true, Some(addr)) = (absolute, r.addr) else {
                    continue;
                };
                if let Some(rels) = uses.get(&(sym.index as u32)) {
                    out.extend(arch::absolute_overflow(elf, rels, addr));
                    if let Some(kernel) = kernel {
                        out.extend(arch::pc_relative_range(elf, rels, addr, kernel));
                    }
                }
            }
            Err(p) => out.push(at(p)),
        }
    }
    out
}
