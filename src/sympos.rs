//! `KLP_MODULE_RELOC(obj)` / `KLP_SYMPOS(sym, pos)` annotations, in the
//! klp-convert v7 binary layout: a data section `.klp.module_relocs.<obj>`
//! of packed entries `{ void *sym; u32 sympos; }` (12 bytes on 64-bit, 8 on
//! 32-bit), where the pointer slot is filled by an ordinary relocation
//! against the symbol. An entry is paired with its relocation by offset
//! (`r_offset / entry size`), never by list order.
//!
//! The sections are annotation data for the converter only: the output keeps
//! them as empty, unallocated sections (indices never change), so the kernel
//! neither loads them nor applies their relocations.

use std::collections::HashMap;

use crate::diag::Problem;
use crate::elf::{Elf, SHN_UNDEF};
use crate::names::{self, Annotation, KlpSymbol};

/// Prefix of the annotation sections.
pub const SECTION_PREFIX: &str = ".klp.module_relocs.";

/// What the annotation sections say.
#[derive(Debug, Default)]
pub struct SymposAnnotations {
    /// (symbol index, its klp form).
    pub symbols: Vec<(usize, Annotation)>,
    /// The annotation data sections (emptied, SHF_ALLOC cleared in the output).
    pub data_sections: Vec<usize>,
    /// Their relocation sections (emptied in the output).
    pub reloc_sections: Vec<usize>,
}

/// Read every `.klp.module_relocs.<obj>` section of `elf`.
pub fn read(elf: &Elf) -> Result<SymposAnnotations, Vec<Problem>> {
    let mut out = SymposAnnotations::default();
    let mut problems = Vec::new();
    let ptr = if elf.is_64 { 8 } else { 4 };
    let entsize = ptr + 4;
    let mut chosen: HashMap<usize, (String, u64, u64)> = HashMap::new();
    for sec in &elf.sections {
        let Some(obj) = sec.name.strip_prefix(SECTION_PREFIX.as_bytes()) else {
            continue;
        };
        let obj = String::from_utf8_lossy(obj).into_owned();
        let here = |p: Problem| p.in_section(sec.display_name());
        if let Err(e) = names::check_obj_name(&obj) {
            problems.push(here(Problem::error(format!("KLP_MODULE_RELOC: {e}"))));
            continue;
        }
        out.data_sections.push(sec.index);
        let data = elf.section_data(sec.index);
        if data.len() as u64 % entsize != 0 {
            problems.push(here(Problem::error(format!(
                "size 0x{:x} is not a whole number of {entsize}-byte KLP_SYMPOS entries",
                data.len()
            ))));
            continue;
        }
        let entries = data.len() / entsize as usize;
        let mut paired = vec![false; entries];
        for rs in elf
            .relocs
            .iter()
            .filter(|r| elf.sections[r.index].sh_info as usize == sec.index)
        {
            out.reloc_sections.push(rs.index);
            for r in &rs.entries {
                let sym = &elf.symbols[r.sym as usize];
                let at = |p: Problem| {
                    p.in_section(elf.sections[rs.index].display_name())
                        .at(r.offset)
                        .symbol(sym.display_name())
                };
                if r.offset % entsize != 0 || (r.offset / entsize) as usize >= entries {
                    problems.push(at(Problem::error(format!(
                        "relocation does not fill the pointer of a KLP_SYMPOS entry (entries are {entsize} bytes)"
                    ))));
                    continue;
                }
                let n = (r.offset / entsize) as usize;
                paired[n] = true;
                let at_pos = n * entsize as usize + ptr as usize;
                let pos = elf.read_uint(&data[at_pos..at_pos + 4]);
                if sym.st_shndx != SHN_UNDEF {
                    problems.push(at(Problem::error(
                        "KLP_SYMPOS names a symbol this module defines; only symbols of other objects can be annotated",
                    )));
                    continue;
                }
                let name = sym.display_name();
                match chosen.get(&sym.index) {
                    Some((o, p, _)) if (o.as_str(), *p) != (obj.as_str(), pos) => {
                        problems.push(at(Problem::error(format!(
                            "conflicting annotations for '{name}': KLP_SYMPOS in {obj} at position {pos}, and in {o} at position {p}"
                        ))));
                    }
                    Some(_) => {}
                    None => {
                        chosen.insert(sym.index, (obj.clone(), pos, r.offset));
                        out.symbols.push((
                            sym.index,
                            Annotation {
                                lp_obj: obj.clone(),
                                target: KlpSymbol {
                                    obj: obj.clone(),
                                    name,
                                    pos,
                                },
                            },
                        ));
                    }
                }
            }
        }
        for (n, ok) in paired.iter().enumerate() {
            if !ok {
                problems.push(here(Problem::error(format!(
                    "KLP_SYMPOS entry {n} (offset 0x{:x}) has no symbol: no relocation fills its pointer",
                    n as u64 * entsize
                ))));
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}
