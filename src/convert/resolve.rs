//! Step 2 of a conversion, with symbol maps: check the annotated positions
//! against the target, and resolve the unannotated references.
//!
//! Automatic resolution: which undefined references of a livepatch module
//! need klp form, the object that owns each symbol and its position, from
//! symbol maps of the target kernel (the klp-convert v7 behaviour, with the
//! kernel's real position rules).
//!
//! * exported by vmlinux: stays an ordinary relocation (the loader links it);
//! * exported by a module: klp form in that module's section, as kpatch and
//!   objtool do, so the patch does not pin the module;
//! * not exported: klp form for the one object that has the name; position 0
//!   when the name is unique there;
//! * ambiguous or unknown: an error listing the candidates, each with a
//!   ready-to-paste annotation, or the near misses (compiler clones such as
//!   `name.constprop.0`).

use crate::fxhash::{FxHashMap, FxHashSet, NameFilter};

use super::select::Selection;
use crate::elf::Elf;
use crate::finding::{Finding, Rule};
use crate::maps::SymbolMap;
use crate::names::{self, show, Annotation, KlpSymbol, VMLINUX};
use crate::rules::contract::needs_linking;
use crate::rules::resolution::{self, HintForm};

/// Resolve what `sel` leaves open against `map`, and check what it chose:
/// every annotated position must exist in the target (when the maps know
/// the object), and every unannotated reference the loader cannot link
/// gets its klp form, added to `sel`.
pub fn resolve(elf: &Elf, map: &SymbolMap, sel: &mut Selection) -> Vec<Finding> {
    let mut problems = Vec::new();
    let lookup = map.lookup_for(sel.order.iter().filter_map(|&sym| {
        let a = sel.annotations[sym].as_ref()?;
        Some((a.target.obj.as_slice(), a.target.name.as_slice()))
    }));
    for &sym in &sel.order {
        let Some(a) = &sel.annotations[sym] else {
            continue;
        };
        if !map.has(&a.target.obj) {
            continue;
        }
        if let Err(p) = resolution::find(&lookup, map, &a.target) {
            problems.push(
                p.in_section(".symtab")
                    .symbol(elf.symbols[sym].display_name()),
            );
        }
    }
    // The patched functions must resolve too, or the kernel refuses the
    // patch whatever this run converts (the same findings as `check`). The
    // klp symbols the module already has are resolved with the output's,
    // once, by `convert_bytes_with`.
    if let Some(table) = crate::klp_patch::read(elf) {
        let refused = resolution::patched_functions(map, &table);
        problems.extend(refused.into_iter().filter(Finding::is_error));
    }
    let (found, mut unresolved) = undefined(elf, map, &sel.annotations);
    problems.append(&mut unresolved);
    for (sym, a) in found {
        sel.add(sym, a);
    }
    problems
}

/// Suffixes GCC appends to clones of a function.
const CLONE_MARKERS: &[&[u8]] = &[
    b".constprop.",
    b".isra.",
    b".part.",
    b".cold",
    b".lto_priv.",
    b".llvm.",
];

/// For every undefined symbol of `elf` that is referenced from an allocated
/// section and has no annotation yet, decide its klp form. Returns
/// (symbol index, annotation) pairs and the problems found.
fn undefined(
    elf: &Elf,
    map: &SymbolMap,
    annotated: &[Option<Annotation>],
) -> (Vec<(usize, Annotation)>, Vec<Finding>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();

    // Undefined symbols used by relocations the loader applies.
    let mut wanted: Vec<usize> = Vec::new();
    let mut seen = vec![false; elf.symbols.len()];
    for rs in &elf.relocs {
        let target = elf.sections.get(elf.sections[rs.index].sh_info as usize);
        if !target.is_some_and(|t| t.is_alloc()) {
            continue;
        }
        for r in &rs.entries {
            let i = r.sym as usize;
            let sym = &elf.symbols[i];
            if seen[i] || annotated[i].is_some() {
                continue;
            }
            seen[i] = true;
            if needs_linking(sym) {
                wanted.push(i);
            }
        }
    }
    if wanted.is_empty() {
        return (out, problems);
    }
    if !map.has_exports() {
        problems.push(Finding::new(
            Rule::NoExportList,
            "the symbol maps give no export list, so exported symbols cannot be told apart: add Module.symvers (or use a symbols.klp)",
        ));
        return (out, problems);
    }

    // One pass over the maps for the names wanted: (object, count) each.
    let names_wanted: FxHashSet<&[u8]> = wanted.iter().map(|&i| elf.symbols[i].name).collect();
    let mut filter = NameFilter::default();
    names_wanted.iter().for_each(|n| filter.insert(n));
    let mut owners: FxHashMap<&[u8], Vec<(&[u8], usize)>> = FxHashMap::default();
    let mut objects: Vec<&[u8]> = map.objects().collect();
    objects.sort_by_key(|o| (*o != VMLINUX, *o));
    for obj in &objects {
        let mut counts: FxHashMap<&[u8], usize> = FxHashMap::default();
        for name in map.symbols(obj).names() {
            if filter.may_contain(name) && names_wanted.contains(name) {
                *counts.entry(name).or_default() += 1;
            }
        }
        for (name, n) in counts {
            owners.entry(name).or_default().push((obj, n));
        }
    }
    for list in owners.values_mut() {
        list.sort_by_key(|(o, _)| (*o != VMLINUX, *o));
    }

    let form = HintForm::of(elf);
    let mut clones: Option<Clones> = None;
    for i in wanted {
        let sym = &elf.symbols[i];
        let name = sym.name;
        let shown = show(name);
        let at = |p: Finding| p.in_section(".symtab").symbol(sym.display_name());
        let exporter = map.exporter(name);
        if exporter == Some(VMLINUX) {
            continue;
        }
        let found = owners.get(name).cloned().unwrap_or_default();
        let choice = match (exporter, found.as_slice()) {
            // Exported by a module: that module's symbol, by position when known.
            (Some(m), _) => {
                let count = found.iter().find(|(o, _)| *o == m).map_or(1, |(_, n)| *n);
                if count > 1 {
                    None
                } else {
                    Some(m)
                }
            }
            (None, [(obj, 1)]) => Some(*obj),
            _ => None,
        };
        match choice {
            Some(obj) => {
                let target = KlpSymbol {
                    obj: obj.to_vec(),
                    name: name.to_vec(),
                    pos: 0,
                };
                // The same grammar as an annotation: a map can name an
                // object (or a symbol) the kernel would read differently.
                match names::check_symbol(&target, names::MAX_SYM_NAME) {
                    Ok(()) => out.push((
                        i,
                        Annotation {
                            lp_obj: obj.to_vec(),
                            target,
                        },
                    )),
                    Err(e) => problems.push(at(Finding::new(
                        Rule::NameNotRepresentable,
                        format!(
                            "'{shown}' resolves to object '{}' in the symbol maps, but {}",
                            show(obj),
                            e.0
                        ),
                    ))),
                }
            }
            None if found.is_empty() && objects.is_empty() => {
                problems.push(at(Finding::new(
                    Rule::UnknownSymbol,
                    format!(
                        "'{shown}' is not exported, and the symbol maps hold exports only: \
                     add the target kernel's symbols (its vmlinux, System.map or \
                     /proc/kallsyms, and the target modules) with --symbols"
                    ),
                )));
            }
            None if found.is_empty() => {
                problems.push(at(Finding::new(
                    Rule::SymbolNotFound,
                    format!(
                        "'{shown}' is not exported and no object in the symbol maps has it{}",
                        clones
                            .get_or_insert_with(|| Clones::new(map, &objects))
                            .near_misses(name)
                    ),
                )));
            }
            None => {
                let mut lines = Vec::new();
                for (obj, count) in &found {
                    let places: Vec<Option<String>> = map
                        .symbols(obj)
                        .iter()
                        .filter(|s| s.name == name)
                        .map(|s| s.place())
                        .collect();
                    for (k, place) in places.iter().enumerate() {
                        let pos = if *count == 1 { 0 } else { k + 1 };
                        lines.push(form.line(obj, name, pos, place.as_deref()));
                    }
                }
                problems.push(at(Finding::new(Rule::AmbiguousSymbol, format!(
                    "'{shown}' is ambiguous: {} candidates in the symbol maps; {} with the one meant:\n    {}",
                    lines.len(),
                    form.advice(),
                    lines.join("\n    ")
                ))));
            }
        }
    }
    (out, problems)
}

/// Compiler clones in the maps, by the name they were cloned from: for the
/// near misses of names no object has. Built once, on the first such name.
struct Clones<'m> {
    /// Name before the first `.` -> `object:clone` in map order.
    by_base: FxHashMap<&'m [u8], Vec<String>>,
}

impl<'m> Clones<'m> {
    fn new(map: &'m SymbolMap, objects: &[&[u8]]) -> Self {
        let mut by_base: FxHashMap<&'m [u8], Vec<String>> = FxHashMap::default();
        for obj in objects {
            for s in map.symbols(obj) {
                let Some(dot) = memchr::memchr(b'.', s.name) else {
                    continue;
                };
                let (base, rest) = s.name.split_at(dot);
                if CLONE_MARKERS.iter().any(|m| rest.starts_with(m)) {
                    by_base.entry(base).or_default().push(format!(
                        "{}:{}",
                        show(obj),
                        show(s.name)
                    ));
                }
            }
        }
        Clones { by_base }
    }

    /// "; near misses: ..." for `name`, or nothing.
    fn near_misses(&self, name: &[u8]) -> String {
        match self.by_base.get(name) {
            Some(hits) => format!(
                "; near misses (compiler clones: the original may be inlined or renamed): {}",
                hits[..hits.len().min(8)].join(", ")
            ),
            None => String::new(),
        }
    }
}
