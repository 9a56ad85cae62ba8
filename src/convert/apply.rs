//! Step 4 of a conversion: carry out the plan with
//! [`crate::elf::write::Edit`], which never renumbers sections or symbols
//! and leaves untouched bytes as they were; the result is the output as
//! pieces to write, the input's bytes borrowed.

use super::plan::Plan;
use crate::elf::write::{Edit, Encoder, Output, WriteError};
use crate::elf::{
    Elf, Section, SHF_ALLOC, SHF_INFO_LINK, SHF_RELA_LIVEPATCH, SHN_LIVEPATCH, SHT_RELA,
};
use crate::names;

/// Carry out `plan` on `elf` and return the new file, in memory (for
/// callers that want the bytes; a conversion writes [`output`]).
pub fn apply(elf: &Elf, plan: &Plan) -> Result<Vec<u8>, WriteError> {
    Ok(output(elf, plan)?.to_vec())
}

/// Carry out `plan` on `elf`: the new file as pieces to write, the input's
/// bytes borrowed ([`Output`]).
pub fn output<'a>(elf: &Elf<'a>, plan: &Plan) -> Result<Output<'a>, WriteError> {
    let mut edit = Edit::new(elf);
    relocations(&mut edit, elf, plan)?;
    finish(edit, elf, plan)
}

/// [`output`], the plan trimmed to what the proof of the output needs
/// ([`Plan::trim_for_proof`]) as soon as its relocations are in the
/// output's pieces: their memory (1.9 MB of entries and 1.3 MB of sections
/// for 20,000 klp sections) goes to the tables laid out after them.
pub fn output_trimming<'a>(elf: &Elf<'a>, plan: &mut Plan) -> Result<Output<'a>, WriteError> {
    let mut edit = Edit::new(elf);
    relocations(&mut edit, elf, plan)?;
    plan.trim_for_proof();
    finish(edit, elf, plan)
}

/// The relocation sections of [`output`]: the entries that move taken out
/// of their sections, and the klp sections made or extended.
fn relocations(edit: &mut Edit, elf: &Elf, plan: &Plan) -> Result<(), WriteError> {
    let symtab = elf.symtab.ok_or(WriteError::NoSymtab)?;
    let enc = Encoder::of(elf);

    for (k, (index, _)) in plan.removals.iter().enumerate() {
        // The parser read entries of the class's size, whatever sh_entsize says.
        let ent = elf.reloc_entsize(elf.sections.at(*index).sh_type == SHT_RELA) as usize;
        let old = elf.section_data(*index);
        let moving = plan.moving_of(k);
        let staying = moving.iter().filter(|m| !**m).count();
        let mut kept = Vec::with_capacity(staying * ent);
        for (n, m) in moving.iter().enumerate() {
            if !m {
                kept.extend_from_slice(&old[n * ent..(n + 1) * ent]);
            }
        }
        edit.set_contents(*index, kept);
    }

    let entsize = elf.reloc_entsize(true);
    let mut name = Vec::new();
    let new = || plan.sections.iter().filter(|s| s.existing.is_none());
    edit.reserve_new(
        plan.new_sections(),
        new().map(|s| s.entries.len()).sum::<usize>() * entsize as usize,
    );
    // The names each table gains, a NUL each.
    edit.reserve_names(
        new()
            .map(|s| names::klp_section_name_len(&s.obj, elf.sections.name_len(s.target)) + 1)
            .sum(),
        plan.renames.iter().map(|r| r.klp.name_len() + 1).sum(),
    );
    for (k, s) in plan.sections.iter().enumerate() {
        let entries = plan.entries_of(k);
        match s.existing {
            Some(i) => {
                let mut bytes = elf.section_data(i).to_vec();
                enc.relas(&mut bytes, entries);
                edit.set_contents(i, bytes)
            }
            None => {
                name.clear();
                names::write_klp_section_name(&mut name, &s.obj, elf.sections.at(s.target).name);
                let header = Section {
                    index: 0,
                    name: &[],
                    sh_name: 0,
                    sh_type: SHT_RELA,
                    sh_flags: SHF_ALLOC | SHF_INFO_LINK | SHF_RELA_LIVEPATCH,
                    sh_addr: 0,
                    sh_offset: 0,
                    sh_size: 0,
                    sh_link: symtab as u32,
                    sh_info: s.target as u32,
                    sh_addralign: if elf.is_64 { 8 } else { 4 },
                    sh_entsize: entsize,
                };
                edit.add_section_with(&name, header, |bytes| enc.relas(bytes, entries));
            }
        }
    }

    Ok(())
}

/// The rest of [`output`] once [`relocations`] are in `edit`: the symbols
/// renamed, sections emptied or unallocated, and the pieces laid out.
fn finish<'a>(
    mut edit: Edit<'_, 'a>,
    elf: &Elf<'a>,
    plan: &Plan,
) -> Result<Output<'a>, WriteError> {
    let mut name = Vec::new();
    for r in &plan.renames {
        name.clear();
        r.klp.write_name(&mut name);
        let st_name = edit.add_symbol_name(&name);
        edit.patch_symbol(r.sym, st_name, SHN_LIVEPATCH);
    }
    for &i in &plan.emptied {
        edit.set_contents(i, Vec::new());
    }
    for &i in &plan.unallocated {
        edit.set_flags(i, elf.sections.at(i).sh_flags & !SHF_ALLOC);
    }
    edit.into_output()
}
