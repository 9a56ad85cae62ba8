//! Step 1 of a conversion: select the references the module's author
//! annotated, and what each becomes.
//!
//! * `KLP_RELOC_SYMBOL(lp_obj, sym_obj, sym)` (the minimal form) leaves an
//!   undefined symbol `.klp.sym.rela.<lp_obj>.<sym_obj>.<sym>.<pos>`
//!   ([`names::parse_annotation`]);
//! * `KLP_MODULE_RELOC(obj)` / `KLP_SYMPOS(sym, pos)` (the v7 form) leaves a
//!   table in the klp-convert v7 binary layout: a data section
//!   `.klp.module_relocs.<obj>` of packed entries `{ void *sym; u32 sympos; }`
//!   (12 bytes on 64-bit, 8 on 32-bit), where the pointer slot is filled by
//!   an ordinary relocation against the symbol. An entry is paired with its
//!   relocation by offset (`r_offset / entry size`), never by list order.
//!
//! The sections are annotation data for the converter only: the output keeps
//! them as empty, unallocated sections (indices never change), so the kernel
//! neither loads them nor applies their relocations.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::elf::{Elf, SHN_LIVEPATCH, SHN_UNDEF};
use crate::finding::{Finding, Rule};
use crate::names::{self, show, Annotation, KlpSymbol, SYMPOS_SECTION_PREFIX};
use crate::rules::contract;

/// What the author annotated.
#[derive(Debug, Default)]
pub struct Selection<'a> {
    /// By symbol index: the klp form chosen for it, if any.
    pub annotations: Vec<Option<Annotation<'a>>>,
    /// The annotated symbols, in the order they were found (minimal
    /// annotations in symbol-table order, then `KLP_SYMPOS` entries).
    pub order: Vec<usize>,
    /// The symbols annotated by `KLP_SYMPOS` entries only: each must be used.
    pub sympos_symbols: Vec<usize>,
    /// The `KLP_MODULE_RELOC` data sections (emptied, `SHF_ALLOC` cleared in
    /// the output, so the kernel never loads them).
    pub table_sections: Vec<usize>,
    /// Their relocation sections (emptied in the output).
    pub table_relocs: Vec<usize>,
}

impl<'a> Selection<'a> {
    /// Record that symbol `sym` becomes `a`.
    pub fn add(&mut self, sym: usize, a: Annotation<'a>) {
        self.order.push(sym);
        self.annotations[sym] = Some(a);
    }
}

/// Every annotation of `elf`, and the problems with them. What can be read
/// is selected even when other annotations are refused, so one bad entry
/// does not make its neighbours look unannotated.
pub fn select<'a>(elf: &Elf<'a>) -> (Selection<'a>, Vec<Finding>) {
    let mut sel = Selection {
        annotations: vec![None; elf.symbols.len()],
        ..Selection::default()
    };
    let mut problems = Vec::new();
    for sym in &elf.symbols {
        // A klp symbol is converted already, even when its object's name
        // makes it read like an annotation (`.klp.sym.rela.<name>,<pos>`
        // for a module called `rela`).
        if !names::is_annotation(sym.name) || sym.st_shndx == SHN_LIVEPATCH {
            continue;
        }
        if let Some(p) = contract::defined_annotation(sym) {
            problems.push(p);
            continue;
        }
        match names::parse_annotation(sym.name) {
            Ok(a) => sel.add(sym.index as usize, a),
            Err(e) => problems.push(
                Finding::new(
                    Rule::MalformedAnnotation,
                    format!("malformed annotation: {e}"),
                )
                .in_section(".symtab")
                .symbol(sym.display_name()),
            ),
        }
    }
    let (table, mut p) = sympos_tables(elf);
    problems.append(&mut p);
    for (sym, a) in table.symbols {
        if sel.annotations[sym].is_none() {
            sel.add(sym, a);
            sel.sympos_symbols.push(sym);
        }
    }
    sel.table_sections = table.data_sections;
    sel.table_relocs = table.reloc_sections;
    (sel, problems)
}

/// What the `KLP_MODULE_RELOC` tables say.
#[derive(Debug, Default)]
struct SymposTables<'a> {
    /// (symbol index, its klp form).
    symbols: Vec<(usize, Annotation<'a>)>,
    /// The annotation data sections.
    data_sections: Vec<usize>,
    /// Their relocation sections.
    reloc_sections: Vec<usize>,
}

/// Read every `.klp.module_relocs.<obj>` section of `elf`. Entries that
/// read cleanly are returned even when others are refused.
fn sympos_tables<'a>(elf: &Elf<'a>) -> (SymposTables<'a>, Vec<Finding>) {
    let mut out = SymposTables::default();
    let mut problems = Vec::new();
    let ptr = if elf.is_64 { 8 } else { 4 };
    let entsize = ptr + 4;
    let mut chosen: HashMap<usize, (&[u8], u64, u64)> = HashMap::new();
    for sec in elf.sections.iter() {
        let Some(obj) = sec.name.strip_prefix(SYMPOS_SECTION_PREFIX.as_bytes()) else {
            continue;
        };
        let here = |p: Finding| p.in_section(sec.display_name());
        if let Err(e) = names::check_obj_name(obj) {
            problems.push(here(Finding::new(
                Rule::SymposTable,
                format!("KLP_MODULE_RELOC: {e}"),
            )));
            continue;
        }
        out.data_sections.push(sec.index);
        let data = elf.section_data(sec.index);
        if data.len() as u64 % entsize != 0 {
            problems.push(here(Finding::new(
                Rule::SymposTable,
                format!(
                    "size 0x{:x} is not a whole number of {entsize}-byte KLP_SYMPOS entries",
                    data.len()
                ),
            )));
            continue;
        }
        let entries = data.len() / entsize as usize;
        let mut paired = vec![false; entries];
        for rs in elf
            .relocs
            .iter()
            .filter(|r| elf.sections.at(r.index).sh_info as usize == sec.index)
        {
            out.reloc_sections.push(rs.index);
            for r in rs.entries() {
                let sym = &elf.symbols[r.sym as usize];
                let at = |p: Finding| p.at_entry(elf, rs.index, &r);
                if r.offset % entsize != 0 || (r.offset / entsize) as usize >= entries {
                    problems.push(at(Finding::new(Rule::SymposTable, format!(
                        "relocation does not fill the pointer of a KLP_SYMPOS entry (entries are {entsize} bytes)"
                    ))));
                    continue;
                }
                let n = (r.offset / entsize) as usize;
                paired[n] = true;
                let at_pos = n * entsize as usize + ptr as usize;
                let pos = elf.read_uint(&data[at_pos..at_pos + 4]);
                if sym.st_shndx != SHN_UNDEF {
                    problems.push(at(Finding::new(Rule::SymposTable,
                        "KLP_SYMPOS names a symbol this module defines; only symbols of other objects can be annotated",
                    )));
                    continue;
                }
                match chosen.get(&(sym.index as usize)) {
                    Some((o, p, _)) if (*o, *p) != (obj, pos) => {
                        problems.push(at(Finding::new(Rule::SymposTable, format!(
                            "conflicting annotations for '{}': KLP_SYMPOS in {} at position {pos}, and in {} at position {p}",
                            show(sym.name), show(obj), show(o)
                        ))));
                    }
                    Some(_) => {}
                    None => {
                        chosen.insert(sym.index as usize, (obj, pos, r.offset));
                        let target = KlpSymbol {
                            obj: Cow::Borrowed(obj),
                            name: Cow::Borrowed(sym.name),
                            pos,
                        };
                        // The same grammar as an annotation's.
                        if let Err(e) = names::check_symbol(&target, names::MAX_SYM_NAME) {
                            problems.push(at(Finding::new(
                                Rule::SymposTable,
                                format!("KLP_SYMPOS: {e}"),
                            )));
                            continue;
                        }
                        out.symbols.push((
                            (sym.index as usize),
                            Annotation {
                                lp_obj: Cow::Borrowed(obj),
                                target,
                            },
                        ));
                    }
                }
            }
        }
        for (n, ok) in paired.iter().enumerate() {
            if !ok {
                problems.push(here(Finding::new(Rule::SymposTable, format!(
                    "KLP_SYMPOS entry {n} (offset 0x{:x}) has no symbol: no relocation fills its pointer",
                    n as u64 * entsize
                ))));
            }
        }
    }
    (out, problems)
}
