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

use std::borrow::Cow;

use crate::fxhash::{FxHashMap, FxHashSet, NameFilter};

use super::plan;
use super::select::Selection;
use crate::elf::{Elf, SHF_RELA_LIVEPATCH};
use crate::finding::{Finding, Rule};
use crate::maps::{LoadOrder, MapSymbol, Orders, SymbolMap};
use crate::names::{self, show, Annotation, KlpSymbol, VMLINUX};
use crate::rules::contract::{self, needs_linking};
use crate::rules::resolution::{self, HintForm};

/// Resolve what `sel` leaves open against `map`, and check what it chose:
/// every annotated position must exist in the target (when the maps know
/// the object), and every unannotated reference the loader cannot link
/// gets its klp form, added to `sel`.
pub fn resolve<'a>(elf: &Elf<'a>, map: &SymbolMap, sel: &mut Selection<'a>) -> Vec<Finding> {
    if !map.answers_for(elf) {
        return vec![resolution::maps_not_for_module()];
    }
    let mut problems = Vec::new();
    let lookup = map.lookup_for(sel.order.iter().filter_map(|&sym| {
        let a = sel.annotations[sym].as_ref()?;
        Some((&a.target.obj[..], &a.target.name[..]))
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
    let (found, mut unresolved) = undefined(elf, map, sel);
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
fn undefined<'a>(
    elf: &Elf<'a>,
    map: &SymbolMap,
    sel: &Selection<'a>,
) -> (Vec<(usize, Annotation<'a>)>, Vec<Finding>) {
    let annotated = &sel.annotations;
    let mut out = Vec::new();
    let mut problems = Vec::new();

    // Undefined symbols used by relocations the loader applies.
    let mut wanted: Vec<usize> = Vec::new();
    let mut seen = vec![false; elf.symbols.len()];
    for rs in &elf.relocs {
        // Those into the per-CPU section too, which a kernel before 6.16
        // drops: `simplify_symbols` links every undefined symbol all the
        // same, so each must be linkable.
        if crate::arch::applied_target(elf, &elf.sections.at(rs.index)).is_none() {
            continue;
        }
        for r in rs.entries() {
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

    // One pass over the maps for the names wanted: for each, the objects
    // that have it, each with its count in every load order the patch
    // must work in and its count in all (a module's symbols kept only
    // while it is coming are in the second alone).
    let orders = map.orders();
    let names_wanted: FxHashSet<&[u8]> = wanted.iter().map(|&i| elf.symbols[i].name).collect();
    let mut filter = NameFilter::default();
    names_wanted.iter().for_each(|n| filter.insert(n));
    let mut owners: FxHashMap<&[u8], Vec<Owner>> = FxHashMap::default();
    let mut objects: Vec<&[u8]> = map.objects().collect();
    objects.sort_by_key(|o| (*o != VMLINUX, *o));
    for obj in &objects {
        let symbols = map.symbols(obj);
        let mut counts: FxHashMap<&[u8], Owner> = FxHashMap::default();
        for (i, name) in symbols.names().enumerate() {
            if filter.may_contain(name) && names_wanted.contains(name) {
                let o = counts.entry(name).or_insert(Owner {
                    obj,
                    live: 0,
                    all: 0,
                });
                o.all += 1;
                let coming_only = symbols.is_coming_only(i);
                if !coming_only || orders == Orders::Only(LoadOrder::PatchFirst) {
                    o.live += 1;
                }
            }
        }
        for (name, o) in counts {
            owners.entry(name).or_default().push(o);
        }
    }
    for list in owners.values_mut() {
        list.sort_by_key(|o| (o.obj != VMLINUX, o.obj));
    }

    let form = HintForm::of(elf);
    let mut clones: Option<Clones> = None;
    let mut module_exports: Vec<(usize, Annotation)> = Vec::new();
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
        // The objects whose symbol of that name the kernel finds in every
        // load order the patch must work in.
        let live: Vec<&Owner> = found.iter().filter(|o| o.live > 0).collect();
        let choice = match (exporter, live.as_slice()) {
            // Exported by a module: that module's symbol, by position when known.
            (Some(m), _) => match found.iter().find(|o| o.obj == m) {
                Some(o) => (o.live == 1).then_some(*o),
                // The maps know the module, and it lacks the name: the
                // kernel would not find it there either.
                None if map.has(m) => None,
                None => Some(Owner {
                    obj: m,
                    live: 1,
                    all: 1,
                }),
            },
            (None, [o]) if o.live == 1 => Some(**o),
            _ => None,
        };
        // A module's export the loader can link: its klp form when it can
        // be had (the patch then does not pin the module), else it stays
        // linked, with a warning that says why.
        let module_export = exporter.map(|m| {
            move |why: String| {
                at(Finding::new(
                    Rule::ModuleExportLinked,
                    format!(
                        "exported by {m}: left an ordinary reference, which the module loader links (the patch then needs {m} loaded before it), because {why}",
                        m = show(m)
                    ),
                ))
            }
        });
        match choice {
            Some(owner) => match position(map, owner, name) {
                Ok(pos) => {
                    let target = KlpSymbol {
                        obj: Cow::Owned(owner.obj.to_vec()),
                        name: Cow::Borrowed(name),
                        pos,
                    };
                    // The same grammar as an annotation: a map can name an
                    // object (or a symbol) the kernel would read differently.
                    match (
                        names::check_symbol(&target, names::MAX_SYM_NAME),
                        &module_export,
                    ) {
                        (Ok(()), _) => {
                            let a = Annotation {
                                lp_obj: target.obj.clone(),
                                target,
                            };
                            if module_export.is_some() {
                                module_exports.push((i, a));
                            } else {
                                out.push((i, a));
                            }
                        }
                        (Err(e), Some(linked)) => problems
                            .push(linked(format!("its klp name cannot be written: {}", e.0))),
                        (Err(e), None) => problems.push(at(Finding::new(
                            Rule::NameNotRepresentable,
                            format!(
                                "resolves to object '{}' in the symbol maps, but {}",
                                show(owner.obj),
                                e.0
                            ),
                        ))),
                    }
                }
                Err(p) => match &module_export {
                    Some(linked) => problems.push(linked(format!(
                        "its klp form would be refused: {}",
                        p.message
                    ))),
                    None => problems.push(at(p)),
                },
            },
            None if module_export.is_some() => {
                let m = exporter.unwrap_or_default();
                let n = found.iter().find(|o| o.obj == m).map_or(0, |o| o.all);
                let why = if n == 0 {
                    format!("{} has no symbol of that name in the symbol maps", show(m))
                } else {
                    format!(
                        "no position names its symbol in {} in every load order the patch must work in ({n} of that name there)",
                        show(m)
                    )
                };
                if let Some(linked) = &module_export {
                    problems.push(linked(why));
                }
            }
            None if found.is_empty() && objects.is_empty() => {
                problems.push(at(Finding::new(
                    Rule::UnknownSymbol,
                    "not exported, and the symbol maps hold exports only: \
                     add the target kernel's symbols (its vmlinux, System.map or \
                     /proc/kallsyms, and the target modules) with --symbols",
                )));
            }
            None if found.is_empty() => {
                problems.push(at(Finding::new(
                    Rule::SymbolNotFound,
                    format!(
                        "not exported, and no object in the symbol maps has it{}",
                        clones
                            .get_or_insert_with(|| Clones::new(map, &objects))
                            .near_misses(name)
                    ),
                )));
            }
            None if live.is_empty() => {
                // Only symbols a module keeps while it is coming: in its
                // init sections, freed once its init is done.
                let list: Vec<String> = found
                    .iter()
                    .map(|o| format!("{} ({} there)", show(o.obj), o.all))
                    .collect();
                problems.push(at(Finding::new(
                    Rule::LoadOrder,
                    format!(
                        "only in symbols a module keeps while it is coming (.init*, freed after its init): {}; {}, the kernel finds no '{shown}' there, and a livepatch cannot call or read what is freed",
                        list.join(", "),
                        LoadOrder::TargetFirst.describe("the module")
                    ),
                )));
            }
            None => {
                let mut lines = Vec::new();
                let mut none = Vec::new();
                for o in &found {
                    let candidates: Vec<MapSymbol> = map
                        .symbols(o.obj)
                        .iter()
                        .filter(|s| s.name == name)
                        .collect();
                    for (k, s) in candidates.iter().enumerate() {
                        if o.live == 0
                            || !LoadOrder::ALL
                                .iter()
                                .all(|&l| !orders.includes(l) || l.counts(s))
                        {
                            continue;
                        }
                        match resolution::position_for(&candidates, k, orders) {
                            Some(pos) => {
                                lines.push(form.line(o.obj, name, pos, s.place().as_deref()))
                            }
                            None => none.push(s.place().unwrap_or_else(|| show(o.obj).to_string())),
                        }
                    }
                }
                let mut message = format!(
                    "ambiguous: {} candidates in the symbol maps; {} with the one meant:\n    {}",
                    lines.len() + none.len(),
                    form.advice(),
                    lines.join("\n    ")
                );
                if !none.is_empty() {
                    message += &format!(
                        "\n  no position means these in both load orders (init symbols of the module come before them while it is coming): {}",
                        none.join(", ")
                    );
                }
                problems.push(at(Finding::new(Rule::AmbiguousSymbol, message)));
            }
        }
    }
    // A module's export becomes a klp symbol only when every relocation
    // against it can be a klp relocation (one pass over the relocations).
    let mut blocked: FxHashMap<usize, Finding> = FxHashMap::default();
    if let Some(p) = contract::livepatch_modinfo(elf) {
        for (i, _) in &module_exports {
            blocked.insert(*i, p.clone());
        }
    }
    // A klp relocation for a module the patch has no klp_object for is
    // never applied; the loader's link of the export is.
    if !module_exports.is_empty() && blocked.is_empty() {
        let table = crate::klp_patch::read(elf);
        let objects = crate::klp_patch::ModuleObjects::of(elf, table.as_ref());
        for (i, a) in &module_exports {
            if let Some(p) = contract::klp_section_no_object(&a.lp_obj, &objects) {
                if p.is_error() {
                    blocked.insert(*i, p);
                }
            }
        }
    }
    if !module_exports.is_empty() && blocked.is_empty() {
        let pending: FxHashMap<usize, &Annotation> =
            module_exports.iter().map(|(i, a)| (*i, a)).collect();
        for rs in &elf.relocs {
            let sec = &elf.sections.at(rs.index);
            if sel.table_relocs.contains(&rs.index) || sec.sh_flags & SHF_RELA_LIVEPATCH != 0 {
                continue;
            }
            for r in rs.entries() {
                let i = r.sym as usize;
                let Some(a) = pending.get(&i) else {
                    continue;
                };
                if blocked.contains_key(&i) {
                    continue;
                }
                if let Err(p) = plan::klp_move(elf, rs, &r, a, false) {
                    blocked.insert(i, p.at_entry(elf, rs.index, &r));
                    continue;
                }
                // A late klp write the release refuses (ppc64's plain store
                // into read-only memory); the loader's link is written at
                // the patch's own load, before anything is read-only.
                let target = elf.sections.get(sec.sh_info as usize);
                if a.lp_obj != VMLINUX
                    && target.is_some_and(|t| {
                        crate::rules::kernels::plain_store_into_read_only(elf.machine, r.r_type, &t)
                    })
                {
                    let tname = target.map(|t| t.display_name()).unwrap_or_default();
                    blocked.insert(
                        i,
                        Finding::new(
                            Rule::LateRelocReadOnly,
                            format!(
                                "its klp relocation into {tname} would be a late plain store into read-only memory"
                            ),
                        )
                        .at_entry(elf, rs.index, &r),
                    );
                }
            }
        }
    }
    for (i, a) in module_exports {
        match blocked.remove(&i) {
            None => out.push((i, a)),
            Some(p) => {
                let sym = &elf.symbols[i];
                problems.push(
                    Finding::new(
                        Rule::ModuleExportLinked,
                        format!(
                            "exported by {m}: left an ordinary reference, which the module loader links (the patch then needs {m} loaded before it), because as a klp relocation it would be refused: {p}",
                            m = show(&a.lp_obj)
                        ),
                    )
                    .in_section(".symtab")
                    .symbol(sym.display_name()),
                );
            }
        }
    }
    (out, problems)
}

/// An object that has a wanted name: how many of its symbols have it in
/// every load order the patch must work in, and in all.
#[derive(Debug, Clone, Copy)]
struct Owner<'m> {
    obj: &'m [u8],
    live: usize,
    all: usize,
}

/// The position of the one symbol `name` of `owner` that every load order
/// counts: 0 when it is the only one of that name in each order's list,
/// else the position that means it in all of them, or the refusal that
/// none does ([`Rule::LoadOrder`]).
fn position(map: &SymbolMap, owner: Owner, name: &[u8]) -> Result<u64, Finding> {
    if owner.all <= 1 {
        return Ok(0);
    }
    let orders = map.orders();
    let candidates: Vec<MapSymbol> = map
        .symbols(owner.obj)
        .iter()
        .filter(|s| s.name == name)
        .collect();
    let live = |s: &MapSymbol| {
        LoadOrder::ALL
            .iter()
            .all(|&l| !orders.includes(l) || l.counts(s))
    };
    let Some(index) = candidates.iter().position(live) else {
        return Ok(0);
    };
    if let Some(p) = resolution::position_for(&candidates, index, orders) {
        return Ok(p as u64);
    }
    let places: Vec<String> = candidates
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let what = if s.coming_only {
                "kept only while coming"
            } else {
                "kept"
            };
            match s.place() {
                Some(p) => format!("{} {p} ({what})", k + 1),
                None => format!("{} ({what})", k + 1),
            }
        })
        .collect();
    let obj = show(owner.obj);
    Err(Finding::new(
        Rule::LoadOrder,
        format!(
            "no position of '{}' means the same symbol in both load orders: {obj}'s full symbol table, which klp_module_coming counts {}, has {} ({}), while the kallsyms {obj} keeps after its init, counted {}, has {}; give the symbol a name unique in {obj}, or, if {obj} is always loaded before the patch (and never reloaded under it), say so with --load-order target-first",
            show(name),
            LoadOrder::PatchFirst.describe(owner.obj),
            candidates.len(),
            places.join(", "),
            LoadOrder::TargetFirst.describe(owner.obj),
            candidates.iter().filter(|s| !s.coming_only).count(),
        ),
    ))
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
