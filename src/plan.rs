//! The conversion plan: which symbols become klp symbols and which
//! relocations move into which `.klp.rela.<obj>.<section>`.
//!
//! Planning reads the module and decides; it writes nothing. Every reason the
//! kernel would refuse (or silently misapply) the result is collected here,
//! so a refused module produces the full list at once.

use std::collections::HashMap;

use crate::arch;
use crate::diag::Problem;
use crate::elf::{Elf, Reloc, SHF_RELA_LIVEPATCH, SHN_LIVEPATCH, SHN_UNDEF};
use crate::maps::{SymbolMap, Unresolved};
use crate::names::{self, Annotation, KlpSymbol, VMLINUX};
use crate::resolve;
use crate::sympos;

/// A symbol to rename in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    /// Symbol index (unchanged by the conversion).
    pub sym: usize,
    /// The klp symbol it becomes.
    pub klp: KlpSymbol,
}

/// Relocations that go into one klp relocation section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KlpSection {
    /// The object that must be loaded before these are applied.
    pub obj: String,
    /// The section the relocations patch (`sh_info`).
    pub target: usize,
    /// An existing klp section for the same (object, target), extended in place.
    pub existing: Option<usize>,
    /// The entries, with explicit addends, in input order.
    pub entries: Vec<Reloc>,
}

/// Everything the writer must do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Symbols renamed to `.klp.sym.*` with `SHN_LIVEPATCH`.
    pub renames: Vec<Rename>,
    /// New or extended klp relocation sections, in order of first use.
    pub sections: Vec<KlpSection>,
    /// For each relocation section losing entries: (section index, a flag per
    /// entry, `true` = the entry moves out).
    pub removals: Vec<(usize, Vec<bool>)>,
    /// Notes and warnings (errors make [`build`] fail instead).
    pub notes: Vec<Problem>,
    /// Sections emptied in the output: `KLP_SYMPOS` annotation data and its
    /// relocations (they only told the converter the positions).
    pub emptied: Vec<usize>,
    /// Sections whose `SHF_ALLOC` is cleared, so the kernel never loads them.
    pub unallocated: Vec<usize>,
}

impl Plan {
    /// Does the plan change nothing?
    pub fn is_empty(&self) -> bool {
        self.renames.is_empty() && self.sections.is_empty()
    }

    /// Number of relocations that move into klp sections.
    pub fn moved(&self) -> usize {
        self.sections.iter().map(|s| s.entries.len()).sum()
    }
}

/// Decide the conversion of the annotated (`KLP_RELOC_SYMBOL`) references.
///
/// Returns the plan, or every problem found when the module must be refused.
pub fn build(elf: &Elf) -> Result<Plan, Vec<Problem>> {
    build_with(elf, None)
}

/// Like [`build`], and with symbol maps also every unannotated undefined
/// reference that needs klp form (see [`crate::resolve`]).
pub fn build_with(elf: &Elf, map: Option<&SymbolMap>) -> Result<Plan, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut plan = Plan::default();

    // 1. Annotation symbols, indexed by symbol index.
    let mut annotations: Vec<Option<Annotation>> = vec![None; elf.symbols.len()];
    for sym in &elf.symbols {
        if !names::is_annotation(sym.name) {
            continue;
        }
        let shown = sym.display_name();
        if sym.st_shndx != SHN_UNDEF {
            problems.push(
                Problem::error(format!(
                    "annotation symbol is defined (section index {}); it must be an undefined reference",
                    sym.section
                ))
                .in_section(".symtab")
                .symbol(shown),
            );
            continue;
        }
        match names::parse_annotation(sym.name) {
            Ok(a) => {
                plan.renames.push(Rename {
                    sym: sym.index,
                    klp: a.target.clone(),
                });
                annotations[sym.index] = Some(a);
            }
            Err(e) => problems.push(
                Problem::error(format!("malformed annotation: {e}"))
                    .in_section(".symtab")
                    .symbol(shown),
            ),
        }
    }
    // 1b. KLP_MODULE_RELOC / KLP_SYMPOS annotations.
    let mut sympos_symbols = Vec::new();
    match sympos::read(elf) {
        Ok(found) => {
            for (sym, a) in found.symbols {
                if annotations[sym].is_none() {
                    plan.renames.push(Rename {
                        sym,
                        klp: a.target.clone(),
                    });
                    sympos_symbols.push(sym);
                    annotations[sym] = Some(a);
                }
            }
            plan.emptied.extend(&found.data_sections);
            plan.emptied.extend(&found.reloc_sections);
            plan.unallocated.extend(&found.data_sections);
        }
        Err(mut p) => problems.append(&mut p),
    }

    if let Some(map) = map {
        // Annotated positions must exist in the target, when the maps know it.
        let lookup = map.lookup();
        for r in &plan.renames {
            if !map.has(&r.klp.obj) {
                continue;
            }
            if let Err(e) = lookup.find(&r.klp.obj, &r.klp.name, r.klp.pos) {
                let why = match e {
                    Unresolved::NotFound => not_found(map, &r.klp.obj, &r.klp.name),
                    Unresolved::Ambiguous(n) => {
                        format!("ambiguous: {n} candidates, give a position")
                    }
                    Unresolved::NoSuchPosition(n) => {
                        format!(
                            "position {} is beyond the count: the object has {n}",
                            r.klp.pos
                        )
                    }
                };
                problems.push(
                    Problem::error(format!(
                        "annotated '{}' in {}: {why}",
                        r.klp.name, r.klp.obj
                    ))
                    .in_section(".symtab")
                    .symbol(elf.symbols[r.sym].display_name()),
                );
            }
        }
        let (found, mut unresolved) = resolve::undefined(elf, map, &annotations);
        problems.append(&mut unresolved);
        for (sym, a) in found {
            plan.renames.push(Rename {
                sym,
                klp: a.target.clone(),
            });
            annotations[sym] = Some(a);
        }
    }
    if plan.renames.is_empty() && problems.is_empty() {
        return Ok(plan);
    }
    if !elf.is_livepatch() {
        problems.push(
            Problem::error(
                "module is not marked as a livepatch module: .modinfo has no livepatch=Y \
                 (add MODULE_INFO(livepatch, \"Y\"))",
            )
            .in_section(".modinfo"),
        );
    }

    // 2. Existing klp sections, to extend rather than duplicate.
    let mut groups: HashMap<(&str, usize), usize> = HashMap::new();
    let mut existing: HashMap<(String, usize), usize> = HashMap::new();
    for s in &elf.sections {
        if s.sh_flags & SHF_RELA_LIVEPATCH != 0 {
            match names::klp_section_object(&s.name) {
                Ok(obj) => {
                    existing.entry((obj, s.sh_info as usize)).or_insert(s.index);
                }
                Err(e) => problems.push(
                    Problem::error(format!(
                        "section {} has an incorrectly formatted name: {e}",
                        s.display_name()
                    ))
                    .in_section(s.display_name()),
                ),
            }
        }
    }

    // 3. Every relocation against an annotation moves.
    for rs in &elf.relocs {
        if plan.emptied.contains(&rs.index) {
            continue; // KLP_SYMPOS data: dropped, not moved
        }
        let sec = &elf.sections[rs.index];
        let is_klp = sec.sh_flags & SHF_RELA_LIVEPATCH != 0;
        let target_index = sec.sh_info as usize;
        let mut moving = vec![false; rs.entries.len()];
        let mut any = false;
        for (n, r) in rs.entries.iter().enumerate() {
            let sym = &elf.symbols[r.sym as usize];
            let here = |msg: String| {
                Problem::error(msg)
                    .in_section(sec.display_name())
                    .at(r.offset)
                    .symbol(sym.display_name())
            };
            if !is_klp && sym.st_shndx == SHN_LIVEPATCH {
                let target_alloc = elf.sections.get(target_index).is_some_and(|t| t.is_alloc());
                if target_alloc {
                    problems.push(here(
                        "ordinary relocation against a livepatch symbol: the module loader would apply it with value 0; it belongs in a .klp.rela section".into(),
                    ));
                }
                continue;
            }
            let Some(a) = &annotations[r.sym as usize] else {
                continue;
            };
            if is_klp {
                problems.push(here(
                    "klp relocation section references an unconverted annotation symbol".into(),
                ));
                continue;
            }
            let Some(target) = elf.sections.get(target_index).filter(|_| target_index != 0) else {
                problems.push(here(format!(
                    "relocation section has sh_info {target_index}, not a valid target section"
                )));
                continue;
            };
            let tname = target.display_name();
            let width = if elf.is_64 { 8 } else { 4 };
            if target.sh_type != crate::elf::SHT_NOBITS
                && r.offset
                    .checked_add(width)
                    .map_or(true, |end| end > target.sh_size)
                && r.offset >= target.sh_size
            {
                problems.push(here(format!(
                    "offset lies beyond the end of the target section {tname} (size 0x{:x})",
                    target.sh_size
                )));
                continue;
            }
            if !target.is_alloc() {
                if arch::is_debug_section(&target.name) {
                    plan.notes.push(
                        Problem::note(format!(
                            "left in place: {tname} is a debug section, which the module loader never relocates"
                        ))
                        .in_section(sec.display_name())
                        .at(r.offset)
                        .symbol(sym.display_name()),
                    );
                    continue;
                }
                problems.push(here(format!(
                    "target section {tname} is not SHF_ALLOC: the kernel skips klp relocations for it silently"
                )));
                continue;
            }
            if a.lp_obj != VMLINUX {
                if a.target.obj == VMLINUX {
                    problems.push(here(format!(
                        "invalid access to vmlinux symbol '{}' from module-specific livepatch relocation section (.klp.rela.{}): use KLP_RELOC_SYMBOL(vmlinux, vmlinux, {})",
                        a.target.name, a.lp_obj, a.target.name
                    )));
                    continue;
                }
                if arch::is_special_section(&target.name) {
                    let hint = if target.name == b"__jump_table" {
                        " (module static key: use static_key_enabled() instead of static_branch_*())"
                    } else {
                        ""
                    };
                    problems.push(here(format!(
                        "module-specific klp relocation in special section {tname}: the loader processes {tname} once when the livepatch module loads, before '{}' can be resolved{hint}",
                        a.lp_obj
                    )));
                    continue;
                }
                if arch::is_init_section(&target.name) {
                    problems.push(here(format!(
                        "module-specific klp relocation in {tname}, which is freed after module init; a late relocation would write into freed memory"
                    )));
                    continue;
                }
            }
            let addend = if rs.is_rela {
                r.addend
            } else {
                let bytes = elf
                    .section_data(target_index)
                    .get(r.offset as usize..)
                    .unwrap_or(&[]);
                match arch::rel_implicit_addend(elf.machine, r.r_type, bytes, elf.big_endian) {
                    Some(v) => v,
                    None => {
                        problems.push(here(format!(
                            "cannot read the implicit addend of REL relocation {} on {}",
                            arch::reloc_type_name(elf.machine, r.r_type),
                            arch::machine_name(elf.machine)
                        )));
                        continue;
                    }
                }
            };
            let g = *groups
                .entry((a.lp_obj.as_str(), target_index))
                .or_insert_with(|| {
                    plan.sections.push(KlpSection {
                        obj: a.lp_obj.clone(),
                        target: target_index,
                        existing: existing.get(&(a.lp_obj.clone(), target_index)).copied(),
                        entries: Vec::new(),
                    });
                    plan.sections.len() - 1
                });
            plan.sections[g].entries.push(Reloc { addend, ..*r });
            moving[n] = true;
            any = true;
        }
        if any {
            plan.removals.push((rs.index, moving));
        }
    }

    // A KLP_SYMPOS annotation that no relocation uses is a mistake.
    for sym in sympos_symbols {
        let used = plan
            .sections
            .iter()
            .any(|s| s.entries.iter().any(|r| r.sym as usize == sym));
        if !used {
            problems.push(
                Problem::error("KLP_SYMPOS annotation that nothing in the module uses")
                    .in_section(".symtab")
                    .symbol(elf.symbols[sym].display_name()),
            );
        }
    }

    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(problems)
    }
}

/// Why an annotated name is not in its object: the objects that have it,
/// else the compiler's other names for it there (`counter.4` for an
/// annotated `counter.0`, `f.constprop.0` for `f`).
fn not_found(map: &SymbolMap, obj: &str, name: &str) -> String {
    let elsewhere: Vec<&str> = map
        .objects()
        .filter(|o| map.symbols(o).iter().any(|s| s.name == name))
        .collect();
    if !elsewhere.is_empty() {
        return format!(
            "not found there; the same name is in: {}",
            elsewhere.join(", ")
        );
    }
    let base = name.split('.').next().unwrap_or_default();
    let mut similar: Vec<&str> = Vec::new();
    for s in map.symbols(obj) {
        let n = s.name.as_str();
        if n != name && n.split('.').next() == Some(base) && !similar.contains(&n) {
            similar.push(n);
        }
    }
    if similar.is_empty() {
        "not found in the symbol maps".to_string()
    } else {
        format!(
            "not found in the symbol maps; {obj} has: {}",
            similar[..similar.len().min(8)].join(", ")
        )
    }
}
