//! Symbol resolution against the target kernel's maps, in the kernel's
//! words: `klp_find_object_symbol` for klp symbols (not found, ambiguous,
//! no such position), `simplify_symbols` for the names the module loader
//! must link ("Unknown symbol"). `convert` checks annotated positions with
//! [`find`]; `check` runs [`module`].

use std::borrow::Cow;

use crate::arch;
use crate::elf::{Elf, Reloc, SHF_RELA_LIVEPATCH, SHN_LIVEPATCH};
use crate::finding::{Finding, Rule, Severity};
use crate::klp_patch::{Form, PatchTable};
use crate::maps::{LoadOrder, Lookup, MapSymbol, Orders, Resolved, SymbolMap, Unresolved};
use crate::names::{self, show, KlpSymbol, VMLINUX};
use crate::rules::{contract, Target};

/// How a fix-it line is written: in the annotation style the module already
/// uses (more may come with new annotation styles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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

/// The refusal of maps read for other modules' names
/// ([`SymbolMap::answers_for`]): `convert` and `check` say it alike.
pub fn maps_not_for_module() -> Finding {
    Finding::new(
        Rule::MapsNotForModule,
        "the symbol maps were read keeping only the names of the module as it was then, and it has changed since (rebuilt while this ran?): nothing was resolved against them; run again",
    )
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
///
/// A module's symbols are counted in two lists (`docs/klp-contract.md` §4,
/// [`LoadOrder`]): the symbol must resolve, and be the same symbol, in
/// every order the maps' [`SymbolMap::orders`] asks for. Where it works in
/// one order only, the refusal is a [`Rule::LoadOrder`] finding naming the
/// order the kernel refuses in, in the kernel's words.
pub fn find(lookup: &Lookup, map: &SymbolMap, k: &KlpSymbol) -> Result<Resolved, Finding> {
    let orders = map.orders();
    // vmlinux has one list; a map without a module's full symbol table
    // knows only the list of a loaded module ([`unchecked_orders`]).
    if k.obj == VMLINUX || !map.symbols(&k.obj).has_both_lists() {
        return find_in(lookup, map, k, LoadOrder::TargetFirst);
    }
    let [first, after] = LoadOrder::ALL.map(|o| {
        orders
            .includes(o)
            .then(|| lookup.find_in(&k.obj, &k.name, k.pos, o))
    });
    match (first, after) {
        (Some(Ok(a)), Some(Ok(b))) if a.index == b.index => Ok(Resolved {
            count: a.count.max(b.count),
            ..a
        }),
        // Refused in both orders: the kernel's words for the first.
        (Some(Err(_)), Some(Err(_))) | (Some(_), None) => {
            find_in(lookup, map, k, LoadOrder::TargetFirst)
        }
        (None, _) => find_in(lookup, map, k, LoadOrder::PatchFirst),
        (Some(Ok(a)), Some(Err(_))) => {
            let refusal = find_in(lookup, map, k, LoadOrder::PatchFirst)
                .err()
                .map(|f| f.message)
                .unwrap_or_default();
            Err(load_order(
                lookup,
                k,
                format!(
                    "{}, klp_module_coming counts its full symbol table ({FULL_TABLE}) and refuses to load {}: {refusal}. Position {} works only {}, where it means {}",
                    LoadOrder::PatchFirst.describe(&k.obj),
                    show(&k.obj),
                    k.pos,
                    LoadOrder::TargetFirst.describe(&k.obj),
                    at(&a)
                ),
                a.index,
                LoadOrder::TargetFirst,
            ))
        }
        (Some(Err(_)), Some(Ok(b))) => {
            let refusal = find_in(lookup, map, k, LoadOrder::TargetFirst)
                .err()
                .map(|f| f.message)
                .unwrap_or_default();
            Err(load_order(
                lookup,
                k,
                format!(
                    "{}, the kernel refuses the patch: {refusal}. Position {} works only {}, where the full symbol table counts and it means {}",
                    LoadOrder::TargetFirst.describe(&k.obj),
                    k.pos,
                    LoadOrder::PatchFirst.describe(&k.obj),
                    at(&b)
                ),
                b.index,
                LoadOrder::PatchFirst,
            ))
        }
        (Some(Ok(a)), Some(Ok(b))) => Err(load_order(
            lookup,
            k,
            format!(
                "position {} of '{}' in {} means {} {}, but {} {}, where klp_module_coming counts its full symbol table ({FULL_TABLE})",
                k.pos,
                show(&k.name),
                show(&k.obj),
                at(&a),
                LoadOrder::TargetFirst.describe(&k.obj),
                at(&b),
                LoadOrder::PatchFirst.describe(&k.obj),
            ),
            a.index,
            LoadOrder::TargetFirst,
        )),
    }
}

/// What the full symbol table has that a loaded module's kallsyms lacks.
const FULL_TABLE: &str = ".init symbols included";

/// "position 2 of 3 (.text+0x10 in a.c)": one order's resolution.
fn at(r: &Resolved) -> String {
    match &r.place {
        Some(p) => format!("{p} (position {} of {})", r.position, r.count),
        None => format!("position {} of {}", r.position, r.count),
    }
}

/// The position that means candidate `index` of `candidates` (every
/// same-named symbol of an object, in its counting order) in every load
/// order of `orders`, if one does: 0 for the only one the orders count,
/// else its 1-based place. In both orders, that needs every symbol before
/// it to be in both lists.
pub fn position_for(candidates: &[MapSymbol], index: usize, orders: Orders) -> Option<usize> {
    let s = candidates.get(index)?;
    let orders: Vec<LoadOrder> = LoadOrder::ALL
        .into_iter()
        .filter(|&o| orders.includes(o))
        .collect();
    if orders.iter().any(|o| !o.counts(s)) {
        return None;
    }
    // Position P names it in order o when P is 0 and it is o's only one,
    // or P is its 1-based rank in o's list.
    let count = |o: LoadOrder| candidates.iter().filter(|c| o.counts(c)).count();
    let rank = |o: LoadOrder| candidates[..index].iter().filter(|c| o.counts(c)).count();
    if orders.iter().all(|&o| count(o) == 1) {
        return Some(0);
    }
    let p = rank(*orders.first()?) + 1;
    orders.iter().all(|&o| rank(o) + 1 == p).then_some(p)
}

/// What to do when a position works in one load order only.
fn order_advice(lookup: &Lookup, k: &KlpSymbol, index: usize, works: LoadOrder) -> String {
    let candidates = lookup.candidates(&k.obj, &k.name);
    match position_for(&candidates, index, Orders::Both) {
        Some(p) => format!("; position {p} means it in both orders"),
        None => {
            let obj = show(&k.obj);
            let when = match works {
                LoadOrder::TargetFirst => format!(
                    "if {obj} is always loaded before the patch (and never reloaded under it), say so with --load-order target-first"
                ),
                LoadOrder::PatchFirst => format!(
                    "if {obj} always loads after the patch, say so with --load-order patch-first"
                ),
            };
            let unique = if candidates.len() > 1 {
                format!("give the symbol a name unique in {obj}, or, ")
            } else {
                String::new()
            };
            format!("; no position means it in both orders: {unique}{when}")
        }
    }
}

/// A [`Rule::LoadOrder`] finding: `what`, then what to do for the symbol
/// (candidate `index`) it works for in `works`.
fn load_order(
    lookup: &Lookup,
    k: &KlpSymbol,
    what: String,
    index: usize,
    works: LoadOrder,
) -> Finding {
    let advice = order_advice(lookup, k, index, works);
    Finding::new(Rule::LoadOrder, format!("{what}{advice}"))
}

/// [`find`] in one order's list: the kernel's refusal in its words.
fn find_in(
    lookup: &Lookup,
    map: &SymbolMap,
    k: &KlpSymbol,
    order: LoadOrder,
) -> Result<Resolved, Finding> {
    let candidates = || {
        let list: Vec<String> = lookup
            .candidates(&k.obj, &k.name)
            .iter()
            .filter(|s| order.counts(s))
            .enumerate()
            .map(|(i, s)| match s.place() {
                Some(p) => format!("position {} at {p}", i + 1),
                None => format!("position {}", i + 1),
            })
            .collect();
        list.join(", ")
    };
    let (obj, name) = (show(&k.obj), show(&k.name));
    lookup.find_in(&k.obj, &k.name, k.pos, order).map_err(|e| match e {
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

/// The notes for the module objects of `objects` whose map gives only
/// the list a loaded module keeps (a kallsyms dump, a symbols.klp, a JSON
/// map of those): when the patch must also work loaded before them,
/// their positions then were not checked.
pub fn unchecked_orders(elf: &Elf, map: &SymbolMap, table: Option<&PatchTable>) -> Vec<Finding> {
    if !map.orders().includes(LoadOrder::PatchFirst) {
        return Vec::new();
    }
    let klp = elf
        .symbols
        .iter()
        .filter(|s| s.st_shndx == SHN_LIVEPATCH)
        .filter_map(|s| names::parse_klp_symbol(s.name).ok())
        .map(|k| k.obj.into_owned());
    let funcs = table
        .into_iter()
        .flat_map(|t| t.funcs().filter_map(|(o, _)| o.name.clone()));
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for obj in klp.chain(funcs) {
        if obj != VMLINUX
            && map.has(&obj)
            && !map.symbols(&obj).has_both_lists()
            && !seen.contains(&obj)
        {
            seen.push(obj);
        }
    }
    seen.sort_unstable();
    seen.into_iter()
        .map(|obj| {
            let shown = show(&obj);
            Finding::new(
                Rule::LoadOrderUnchecked,
                format!(
                    "the symbol maps give {shown}'s symbols as a loaded module keeps them (kallsyms, symbols.klp): positions {} were not checked; add {shown}.ko to --symbols, or say --load-order target-first",
                    LoadOrder::PatchFirst.describe(&obj)
                ),
            )
        })
        .collect()
}

/// Resolve every patched function of `table` as `klp_init_object_loaded`
/// does, through `klp_find_object_symbol` with the function's `old_name`
/// and `old_sympos`: the kernel's refusals ("unresolvable ambiguity",
/// "symbol ... not found", "symbol position ... not found") with the
/// candidates, or where each resolves.
pub fn patched_functions(map: &SymbolMap, table: &PatchTable) -> Vec<Finding> {
    // An object the kernel never matches (the string "vmlinux", a name
    // with '-') is never loaded: its functions are never looked up
    // (`object-never-matched` says so).
    let funcs = || table.funcs().filter(|(o, _)| o.never_matched().is_none());
    let lookup = map.lookup_for(
        funcs().filter_map(|(o, f)| Some((o.name.as_deref()?, f.old_name.as_deref()?))),
    );
    let mut out = Vec::new();
    for (o, f) in funcs() {
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
            obj: Cow::Borrowed(obj),
            name: Cow::Borrowed(name),
            pos: f.sympos,
        };
        out.push(at(match find(&lookup, map, &k) {
            Ok(r) if !is_code(r.kind) => Finding::new(
                Rule::PatchedNotFunction,
                format!(
                    "patched function '{}' resolves to a {} symbol (kallsyms type '{}') in {}: ftrace cannot patch it, and klp_patch_func fails with 'failed to find location for function '{}'' (-EINVAL){}",
                    show(name),
                    if matches!(r.kind.to_ascii_lowercase(), 'b' | 'd' | 'r' | 'g' | 's' | 'v') { "data" } else { "non-code" },
                    r.kind,
                    show(obj),
                    show(name),
                    if o.name.is_none() || o.null_name {
                        ": the patch is refused"
                    } else {
                        ", refusing the patch, or the module when it loads after it"
                    }
                ),
            ),
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

/// Is a kallsyms type letter one of code ftrace may patch (text, weak,
/// or unknown: a map without types says nothing against it)?
fn is_code(kind: char) -> bool {
    matches!(kind, 't' | 'T' | 'w' | 'W' | '?')
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
/// every name the module loader must link against the exports, for the
/// kernel `target`.
pub fn module(elf: &Elf, map: &SymbolMap, target: &Target) -> Vec<Finding> {
    module_report(elf, map, target, Report::All)
}

/// [`module`], building only the findings `report` asks for.
pub fn module_report(elf: &Elf, map: &SymbolMap, target: &Target, report: Report) -> Vec<Finding> {
    let mut out = klp_symbols_report(elf, map, report);
    out.extend(export_overflows(elf, map, target));
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
    // Without an export list, what the loader must link is not known to
    // be linkable: say so, rather than pass it (`convert` refuses to
    // resolve such a module, `no-export-list` too).
    if report == Report::All && !map.has_exports() {
        let unchecked: Vec<String> = elf
            .symbols
            .iter()
            .filter(|s| contract::needs_linking(s))
            .map(|s| s.display_name())
            .collect();
        if let Some(first) = unchecked.first() {
            let more = match unchecked.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            out.push(
                Finding::new(
                    Rule::NoExportList,
                    format!(
                        "the symbol maps give no export list, so whether the module loader can link '{first}'{more} was not checked: add Module.symvers (or use a symbols.klp)"
                    ),
                )
                .with_severity(Severity::Warning)
                .in_section(".symtab")
                .symbol(first.clone()),
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

/// The ordinary relocations against a symbol the module loader links by
/// its export (in a section the module allocates: the loader relocates no
/// other), whose field cannot hold the address the maps give it there
/// (kallsyms, System.map: one symbol of that name in the exporter): the
/// loader refuses them as it refuses a klp relocation's
/// ([`arch::absolute_overflow`]). `convert` makes a module's export a klp
/// relocation, which its proof then refuses; `check` of the input says so
/// here. Before 6.16 the loader has cleared the per-CPU section's
/// `SHF_ALLOC` when it applies relocations, so it applies none there
/// ([`crate::rules::kernels::percpu_target`]): those are judged for a `target` of 6.16
/// on, or of an unknown release.
fn export_overflows(elf: &Elf, map: &SymbolMap, target: &Target) -> Vec<Finding> {
    let linked: Vec<(u32, &[u8])> = elf
        .symbols
        .iter()
        .filter(|s| contract::needs_linking(s))
        .filter_map(|s| Some((s.index, map.exporter(s.name)?)))
        .collect();
    if linked.is_empty() {
        return Vec::new();
    }
    let lookup = map.lookup_for(
        linked
            .iter()
            .map(|&(i, obj)| (obj, elf.symbols[i as usize].name)),
    );
    // The symbols the maps place, each with its uses: gathered in one pass
    // over the ordinary relocations, in their order.
    let mut placed: Vec<(u64, Vec<(usize, Reloc)>)> = Vec::new();
    let mut slot = vec![usize::MAX; elf.symbols.len()];
    for (i, obj) in linked {
        let name = elf.symbols[i as usize].name;
        if let [only] = lookup.candidates(obj, name).as_slice() {
            if let (None, Some(addr)) = (only.section, only.addr) {
                slot[i as usize] = placed.len();
                placed.push((addr, Vec::new()));
            }
        }
    }
    for rs in &elf.relocs {
        let sec = elf.sections.at(rs.index);
        // Nothing the loader does not apply is linked, nor overflows.
        if sec.sh_flags & SHF_RELA_LIVEPATCH != 0 {
            continue;
        }
        if arch::applied_ordinary(elf, &sec, target.relocates_percpu()).is_none() {
            continue;
        }
        for r in rs.entries() {
            if let Some(&k) = slot.get(r.sym as usize).filter(|&&k| k != usize::MAX) {
                placed[k].1.push((rs.index, r));
            }
        }
    }
    placed
        .iter()
        .flat_map(|(addr, uses)| arch::absolute_overflow(elf, uses, *addr))
        .collect()
}

/// [`klp_symbols`], building only the findings `report` asks for.
fn klp_symbols_report(elf: &Elf, map: &SymbolMap, report: Report) -> Vec<Finding> {
    let mut out = Vec::new();
    // The klp relocations of each klp symbol: (klp section, entry). Only
    // an address checks them, so they are gathered at the first one (a
    // symbols.klp gives none).
    let mut uses: Option<crate::fxhash::FxHashMap<u32, Vec<(usize, Reloc)>>> = None;
    let gather = || {
        let mut uses = crate::fxhash::FxHashMap::<u32, Vec<(usize, Reloc)>>::default();
        for rs in &elf.relocs {
            if elf.sections.at(rs.index).sh_flags & SHF_RELA_LIVEPATCH != 0 {
                for r in rs.entries() {
                    uses.entry(r.sym).or_default().push((rs.index, r));
                }
            }
        }
        uses
    };
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
            .map(|(_, k)| (&k.obj[..], &k.name[..]))
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
                if let Some(rels) = uses.get_or_insert_with(gather).get(&sym.index) {
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
