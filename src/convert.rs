//! Conversion end to end: read → plan → write → re-read and verify → output.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::Path;

use crate::arch;
use crate::check;
use crate::diag::Problem;
use crate::elf::signature;
use crate::elf::write::{Edit, Encoder};
use crate::elf::{
    Elf, Section, SHF_ALLOC, SHF_INFO_LINK, SHF_RELA_LIVEPATCH, SHN_LIVEPATCH, SHT_RELA,
};
use crate::maps::SymbolMap;
use crate::module_file;
use crate::names;
use crate::plan::{self, Plan};

/// Why a conversion did not produce output.
#[derive(Debug)]
pub enum Error {
    /// The module breaks the livepatch contract; every problem found.
    Refused(Vec<Problem>),
    /// The input is not a readable ELF object.
    Malformed(String),
    /// Reading or writing a file failed.
    Io(String),
    /// The converter produced output that failed its own verification (a bug).
    Internal(Vec<Problem>),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Refused(p) | Error::Internal(p) => {
                let lines: Vec<String> = p.iter().map(|p| p.to_string()).collect();
                f.write_str(&lines.join("\n"))
            }
            Error::Malformed(m) | Error::Io(m) => f.write_str(m),
        }
    }
}

/// A successful conversion.
#[derive(Debug)]
pub struct Converted {
    /// The new file contents.
    pub bytes: Vec<u8>,
    /// Did anything change? (`false`: `bytes` equals the input.)
    pub changed: bool,
    /// Warnings and notes (signature dropped, relocations left in debug sections, ...).
    pub notes: Vec<Problem>,
    /// Symbols renamed.
    pub symbols: usize,
    /// Relocations moved into klp sections.
    pub relocations: usize,
    /// klp sections created or extended.
    pub sections: usize,
}

/// Convert a module held in memory (annotated references only).
pub fn convert_bytes(file: &[u8]) -> Result<Converted, Error> {
    convert_bytes_with(file, None)
}

/// Convert a module held in memory; with symbol maps, unannotated
/// references to unexported symbols too.
pub fn convert_bytes_with(file: &[u8], map: Option<&SymbolMap>) -> Result<Converted, Error> {
    let (image, sig) = signature::split(file);
    let elf = Elf::parse(image).map_err(|e| Error::Malformed(e.to_string()))?;
    let plan = plan::build_with(&elf, map).map_err(Error::Refused)?;
    let mut notes = plan.notes.clone();
    if plan.is_empty() {
        return Ok(Converted {
            bytes: file.to_vec(),
            changed: false,
            notes,
            symbols: 0,
            relocations: 0,
            sections: 0,
        });
    }
    let bytes = write(&elf, &plan).map_err(|e| Error::Internal(vec![Problem::error(e)]))?;
    verify(&elf, &plan, &bytes).map_err(Error::Internal)?;
    // The converted module must pass every check the kernel's loader makes;
    // what fails here comes from the input (a ppc64 local call, say).
    let refusals = loader_errors(&bytes)?;
    if !refusals.is_empty() {
        return Err(Error::Refused(refusals));
    }
    if !sig.is_empty() {
        notes.push(Problem::warning(
            "the appended module signature was dropped: it is invalid after conversion; sign the output again",
        ));
    }
    Ok(Converted {
        bytes,
        changed: true,
        notes,
        symbols: plan.renames.len(),
        relocations: plan.moved(),
        sections: plan.sections.len(),
    })
}

/// Carry out `plan` on `elf` and return the new file.
pub fn write(elf: &Elf, plan: &Plan) -> Result<Vec<u8>, String> {
    let symtab = elf.symtab.ok_or("no .symtab")?;
    let enc = Encoder::of(elf);
    let mut edit = Edit::new(elf);

    for (index, moving) in &plan.removals {
        // The parser read entries of the class's size, whatever sh_entsize says.
        let ent = elf.reloc_entsize(elf.sections[*index].sh_type == SHT_RELA) as usize;
        let old = elf.section_data(*index);
        let mut kept = Vec::with_capacity(old.len());
        for (n, m) in moving.iter().enumerate() {
            if !m {
                kept.extend_from_slice(&old[n * ent..(n + 1) * ent]);
            }
        }
        edit.set_contents(*index, kept);
    }

    let entsize = elf.reloc_entsize(true);
    for s in &plan.sections {
        let mut bytes = match s.existing {
            Some(i) => elf.section_data(i).to_vec(),
            None => Vec::with_capacity(s.entries.len() * entsize as usize),
        };
        for r in &s.entries {
            enc.rela(&mut bytes, r);
        }
        match s.existing {
            Some(i) => edit.set_contents(i, bytes),
            None => {
                let name = names::klp_section_name(&s.obj, &elf.sections[s.target].name);
                let header = Section {
                    index: 0,
                    name: Vec::new(),
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
                edit.add_section(&name, header, bytes);
            }
        }
    }

    for r in &plan.renames {
        let st_name = edit.add_symbol_name(r.klp.to_string().as_bytes());
        edit.patch_symbol(r.sym, st_name, SHN_LIVEPATCH);
    }
    for &i in &plan.emptied {
        edit.set_contents(i, Vec::new());
    }
    for &i in &plan.unallocated {
        edit.set_flags(i, elf.sections[i].sh_flags & !SHF_ALLOC);
    }
    edit.finish()
}

/// Re-read the output and prove it: the contract holds, every input
/// relocation is present exactly once, and nothing else changed.
pub fn verify(input: &Elf, plan: &Plan, output: &[u8]) -> Result<(), Vec<Problem>> {
    let out = Elf::parse(output)
        .map_err(|e| vec![Problem::error(format!("output does not parse: {e}"))])?;
    let mut problems: Vec<Problem> = check::structural(&out)
        .into_iter()
        .filter(Problem::is_error)
        .collect();

    // Relocations: the same multiset, keyed by what the loader sees. Sorted
    // vectors rather than a hash map: it stays fast at a million entries.
    type Key = (u32, u64, u32, u32, i64);
    let mut before: Vec<Key> = Vec::new();
    for rs in input
        .relocs
        .iter()
        .filter(|r| !plan.emptied.contains(&r.index))
    {
        let target = input.sections[rs.index].sh_info;
        for r in &rs.entries {
            let mut addend = r.addend;
            if !rs.is_rela && names::is_annotation(input.symbols[r.sym as usize].name) {
                let bytes = input
                    .section_data(target as usize)
                    .get(r.offset as usize..)
                    .unwrap_or(&[]);
                addend =
                    arch::rel_implicit_addend(input.machine, r.r_type, bytes, input.big_endian)
                        .unwrap_or(0);
            }
            before.push((target, r.offset, r.r_type, r.sym, addend));
        }
    }
    let mut after: Vec<Key> = Vec::with_capacity(before.len());
    for rs in &out.relocs {
        let target = out.sections[rs.index].sh_info;
        after.extend(
            rs.entries
                .iter()
                .map(|r| (target, r.offset, r.r_type, r.sym, r.addend)),
        );
    }
    before.sort_unstable();
    after.sort_unstable();
    if before != after {
        let (mut i, mut j) = (0, 0);
        let mut report = |k: &Key, what: &str| {
            let (target, offset, r_type, sym, addend) = *k;
            problems.push(
                Problem::error(format!(
                    "relocation {what} by the conversion ({} addend {addend})",
                    arch::reloc_type_name(input.machine, r_type)
                ))
                .in_section(input.section_name(target as usize))
                .at(offset)
                .symbol(
                    input
                        .symbols
                        .get(sym as usize)
                        .map(|s| s.display_name())
                        .unwrap_or_default(),
                ),
            );
        };
        while i < before.len() || j < after.len() {
            let (a, b) = (before.get(i), after.get(j));
            if a.is_some() && a == b {
                i += 1;
                j += 1;
            } else if a.is_some() && (b.is_none() || a < b) {
                report(&before[i], "lost");
                i += 1;
            } else {
                report(&after[j], "added");
                j += 1;
            }
        }
    }

    // Symbols: only the renamed ones differ, and only in name and st_shndx.
    let renamed: HashMap<usize, String> = plan
        .renames
        .iter()
        .map(|r| (r.sym, r.klp.to_string()))
        .collect();
    if out.symbols.len() != input.symbols.len() {
        problems.push(Problem::error("symbol count changed"));
    }
    for (a, b) in input.symbols.iter().zip(&out.symbols) {
        let same_rest = a.st_info == b.st_info
            && a.st_other == b.st_other
            && a.st_value == b.st_value
            && a.st_size == b.st_size;
        let ok = match renamed.get(&a.index) {
            Some(name) => same_rest && b.name == name.as_bytes() && b.st_shndx == SHN_LIVEPATCH,
            None => same_rest && a.name == b.name && a.st_shndx == b.st_shndx,
        };
        if !ok {
            problems.push(
                Problem::error("symbol changed unexpectedly")
                    .in_section(".symtab")
                    .symbol(a.display_name()),
            );
        }
    }

    // Sections: the ones not rewritten keep header fields and bytes.
    let mut rewritten: BTreeSet<usize> = plan.removals.iter().map(|(i, _)| *i).collect();
    rewritten.extend(plan.sections.iter().filter_map(|s| s.existing));
    rewritten.extend(&plan.emptied);
    rewritten.insert(input.shstrndx as usize);
    if let Some(st) = input.symtab {
        rewritten.insert(st);
        rewritten.insert(input.sections[st].sh_link as usize);
    }
    for a in &input.sections {
        let Some(b) = out.sections.get(a.index) else {
            problems
                .push(Problem::error("section missing from output").in_section(a.display_name()));
            continue;
        };
        let flags = if plan.unallocated.contains(&a.index) {
            a.sh_flags & !SHF_ALLOC
        } else {
            a.sh_flags
        };
        let same_header = a.name == b.name
            && a.sh_type == b.sh_type
            && flags == b.sh_flags
            && a.sh_link == b.sh_link
            && a.sh_info == b.sh_info;
        let same_bytes = rewritten.contains(&a.index)
            || (a.index == 0 || input.section_data(a.index) == out.section_data(a.index));
        if !same_header || !same_bytes {
            problems
                .push(Problem::error("section changed unexpectedly").in_section(a.display_name()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The errors `check` finds in a converted module, beyond the structural
/// ones [`verify`] already proved: the loader rules of its architecture.
fn loader_errors(bytes: &[u8]) -> Result<Vec<Problem>, Error> {
    let out =
        Elf::parse(bytes).map_err(|e| Error::Internal(vec![Problem::error(e.to_string())]))?;
    Ok(check::loader::rules(&out)
        .into_iter()
        .filter(Problem::is_error)
        .collect())
}

/// Read `input`, convert it and write `output` atomically. With `output ==
/// input` the file is replaced in place (and left alone when nothing changes).
/// On any error no output file is created and the input is untouched.
pub fn convert_file(
    input: &Path,
    output: &Path,
    map: Option<&SymbolMap>,
) -> Result<Converted, Error> {
    let bytes = fs::read(input).map_err(|e| Error::Io(format!("{}: {e}", input.display())))?;
    let result = convert_bytes_with(&bytes, map)?;
    let in_place = module_file::same_file(input, output);
    if in_place && !result.changed {
        return Ok(result);
    }
    let mode = fs::metadata(input)
        .map_err(|e| Error::Io(format!("{}: {e}", input.display())))?
        .permissions();
    module_file::write_atomically(output, &result.bytes, mode)
        .map_err(|e| Error::Io(e.to_string()))?;
    Ok(result)
}
