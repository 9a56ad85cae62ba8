//! Structural rules of the kernel's livepatch ELF contract
//! (`shared/docs/klp-abi.md` §1–§5), checked on any module.

use super::Target;
use crate::arch;
use crate::diag::Problem;
use crate::elf::{Elf, SHF_ALLOC, SHF_RELA_LIVEPATCH, SHN_LIVEPATCH, SHN_UNDEF, SHT_RELA};
use crate::names::{self, VMLINUX};

/// Every structural finding for `elf` on the `target` kernel.
pub fn rules(elf: &Elf, target: &Target) -> Vec<Problem> {
    let max_name = target.max_symbol_name();
    let mut out = Vec::new();
    let has_klp_section = elf
        .sections
        .iter()
        .any(|s| s.sh_flags & SHF_RELA_LIVEPATCH != 0);
    let has_klp_symbol = elf.symbols.iter().any(|s| s.st_shndx == SHN_LIVEPATCH);

    if (has_klp_section || has_klp_symbol) && !elf.is_livepatch() {
        out.push(
            Problem::error(
                "module is not marked as a livepatch module: .modinfo has no livepatch=Y",
            )
            .in_section(".modinfo"),
        );
    }

    // Symbols.
    for sym in &elf.symbols {
        if sym.st_shndx == SHN_LIVEPATCH {
            match names::parse_klp_symbol(sym.name) {
                Err(e) => out.push(
                    Problem::error(format!(
                        "symbol {} has an incorrectly formatted name: {e}",
                        sym.display_name()
                    ))
                    .in_section(".symtab")
                    .symbol(sym.display_name()),
                ),
                Ok(k) if k.name.len() > max_name => out.push(
                    Problem::error(format!(
                        "symbol name '{}' is {} bytes; kernel {} reads at most {max_name} (KSYM_NAME_LEN - 1), so it would look up a truncated name",
                        k.name,
                        k.name.len(),
                        target.release_text()
                    ))
                    .in_section(".symtab")
                    .symbol(sym.display_name()),
                ),
                Ok(_) => {}
            }
        } else if sym.st_shndx == SHN_UNDEF && names::is_annotation(sym.name) {
            out.push(
                Problem::error(
                    "unconverted KLP_RELOC_SYMBOL annotation: the loader would fail with 'Unknown symbol'; run klp-convert on this module",
                )
                .in_section(".symtab")
                .symbol(sym.display_name()),
            );
        }
    }

    // Headers of every section flagged as klp relocations (the relocation
    // loop below sees only RELA sections linked to .symtab).
    for sec in elf
        .sections
        .iter()
        .filter(|s| s.sh_flags & SHF_RELA_LIVEPATCH != 0)
    {
        let at = |p: Problem| p.in_section(sec.display_name());
        if sec.sh_type != SHT_RELA {
            out.push(at(Problem::error(format!(
                "klp relocation section is not SHT_RELA (sh_type {}): the livepatch core only applies RELA",
                sec.sh_type
            ))));
        }
        if sec.sh_flags & SHF_ALLOC == 0 {
            out.push(at(Problem::error("klp relocation section lacks SHF_ALLOC")));
        }
        if Some(sec.sh_link as usize) != elf.symtab {
            out.push(at(Problem::error(format!(
                "sh_link is {}, not the index of .symtab: the relocations would name the wrong symbols",
                sec.sh_link
            ))));
        }
    }

    // Relocation sections.
    for rs in &elf.relocs {
        let sec = &elf.sections[rs.index];
        let is_klp = sec.sh_flags & SHF_RELA_LIVEPATCH != 0;
        let target = elf.sections.get(sec.sh_info as usize);
        if !is_klp {
            if sec.name.starts_with(names::KLP_RELA_PREFIX.as_bytes()) {
                out.push(
                    Problem::error("named like a klp relocation section but lacks SHF_RELA_LIVEPATCH: the module loader would apply it as an ordinary relocation section")
                        .in_section(sec.display_name()),
                );
            }
            if !target.is_some_and(|t| t.is_alloc()) {
                continue;
            }
            for r in &rs.entries {
                let sym = &elf.symbols[r.sym as usize];
                if sym.st_shndx == SHN_LIVEPATCH {
                    out.push(
                        Problem::error("ordinary relocation against a livepatch symbol: the module loader applies it with value 0")
                            .in_section(sec.display_name())
                            .at(r.offset)
                            .symbol(sym.display_name()),
                    );
                }
            }
            continue;
        }
        let section_obj = match names::klp_section_object(&sec.name) {
            Ok(obj) => Some(obj),
            Err(e) => {
                out.push(
                    Problem::error(format!(
                        "section {} has an incorrectly formatted name: {e}",
                        sec.display_name()
                    ))
                    .in_section(sec.display_name()),
                );
                None
            }
        };
        // The minimal klp-convert's bug: no '.' between object and a target
        // without a leading dot, so `.klp.rela.vmlinux__jump_table` names
        // object `vmlinux__jump_table`, which never loads.
        if let (Some(obj), Some(t)) = (&section_obj, target) {
            let tname = t.display_name();
            if !tname.is_empty()
                && !tname.starts_with('.')
                && obj.len() > tname.len()
                && obj.ends_with(&tname)
            {
                out.push(
                    Problem::error(format!(
                        "the kernel reads the object of this section as '{obj}' (no '.' before the target {tname}): its relocations are never applied; name it .klp.rela.{}.{tname}",
                        &obj[..obj.len() - tname.len()]
                    ))
                    .in_section(sec.display_name()),
                );
            }
        }
        let Some(target) = target.filter(|_| sec.sh_info != 0) else {
            out.push(
                Problem::error(format!(
                    "sh_info {} is not a valid target section",
                    sec.sh_info
                ))
                .in_section(sec.display_name()),
            );
            continue;
        };
        if !target.is_alloc() {
            out.push(
                Problem::error(format!(
                    "target section {} is not SHF_ALLOC: the kernel skips this klp relocation section silently",
                    target.display_name()
                ))
                .in_section(sec.display_name()),
            );
        }
        let module_specific = section_obj.as_deref().is_some_and(|o| o != VMLINUX);
        if module_specific && arch::is_special_section(&target.name) {
            out.push(
                Problem::error(format!(
                    "module-specific klp relocations in special section {}: it is processed when the livepatch module loads, long before the late relocation",
                    target.display_name()
                ))
                .in_section(sec.display_name()),
            );
        }
        for r in &rs.entries {
            let sym = &elf.symbols[r.sym as usize];
            let at = |p: Problem| {
                p.in_section(sec.display_name())
                    .at(r.offset)
                    .symbol(sym.display_name())
            };
            if sym.st_shndx != SHN_LIVEPATCH {
                out.push(at(Problem::error(format!(
                    "symbol {} is not marked as a livepatch symbol",
                    sym.display_name()
                ))));
                continue;
            }
            if module_specific {
                if let Ok(k) = names::parse_klp_symbol(sym.name) {
                    if k.obj == VMLINUX {
                        out.push(at(Problem::error(format!(
                            "invalid access to vmlinux symbol '{}' from module-specific livepatch relocation section",
                            k.name
                        ))));
                    }
                }
            }
            if r.offset >= target.sh_size && target.sh_type != crate::elf::SHT_NOBITS {
                out.push(at(Problem::error(format!(
                    "offset lies beyond the end of {} (size 0x{:x})",
                    target.display_name(),
                    target.sh_size
                ))));
            }
        }
    }
    out
}
