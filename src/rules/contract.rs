//! The livepatch core's and the module loader's rules for a livepatch
//! module's ELF: one function a rule, each naming the kernel code it
//! mirrors (`docs/klp-contract.md` §1–§5). `convert` calls them while it
//! plans (to refuse what the kernel would refuse) and on its output;
//! `check` calls them on any module through [`module`].
//!
//! A rule returns a [`Finding`] without location; the caller, which knows
//! the section, offset and symbol at hand, attaches them.

use std::collections::{HashMap, HashSet};

use crate::arch;
use crate::elf::{
    abi, show_name, Elf, Section, Symbol, SHF_ALLOC, SHF_RELA_LIVEPATCH, SHN_LIVEPATCH, SHN_UNDEF,
    SHT_NOBITS, SHT_RELA,
};
use crate::finding::{Finding, Rule};
use crate::klp_patch::{self, PatchTable, Place};
use crate::names::{self, show, KlpSymbol, VMLINUX};
use crate::rules::Target;

/// What the module loader says of a header in ELF's extended section
/// numbering, by release: it reads `e_shnum` and `e_shstrndx` (the fields,
/// `shnum` and `shstrndx`) as they stand. With the count in section 0
/// (`counted`), 6.13 and later (and Debian's 6.12) find section 0 not
/// empty first; 6.1 finds the name table's index not below an `e_shnum` of
/// 0, as every 6.x finds an `e_shstrndx` of `SHN_XINDEX`; 5.10 has its own
/// words for any failed check. The words of `target`'s release, or of each
/// release when it is not known.
fn extended_refused(counted: bool, shnum: u16, shstrndx: u16, target: &Target) -> String {
    let index = format!(
        "'Invalid ELF section name index: {shstrndx} || e_shstrndx ({shstrndx}) >= e_shnum ({shnum})'"
    );
    let spec = "'ELF Spec violation: section 0 type(0)!=SH_NULL or non-zero len or addr'";
    let old = "'Module has invalid ELF structures'";
    // Section 0's check comes first from 6.13 on, and in 6.12 from the
    // stable update that took that series (Debian's 6.12.118 has it).
    let words = match &target.release {
        Some(r) if r.before(5, 11) => format!("{}: {old}", r.text),
        // Not seen: between 5.10 and 6.1 the loader's ELF checks grew.
        Some(r) if r.before(6, 0) => format!("{}: {old}, or {index}", r.text),
        Some(r) if counted && !r.before(6, 13) => format!("{}: {spec}", r.text),
        Some(r) if counted && !r.before(6, 12) => {
            format!(
                "{}: {spec}, or before its stable update took 6.13's checks, {index}",
                r.text
            )
        }
        Some(r) => format!("{}: {index}", r.text),
        None if counted => format!("6.13 on and Debian's 6.12: {spec}; 6.1: {index}; 5.10: {old}"),
        None => format!("6.1 on: {index}; 5.10: {old}"),
    };
    format!(
        "the module loader reads e_shnum and e_shstrndx as they stand and refuses the module ({words})"
    )
}

/// `extended-section-numbering`: `elf`'s header gives its section count or
/// its name table's index through section 0, which no release's loader
/// reads.
pub fn extended_numbering(elf: &Elf, target: &Target) -> Option<Finding> {
    if !elf.extended_numbering() {
        return None;
    }
    // The count is in section 0 when there is one to read it from.
    let counted = elf.e_shnum == 0 && !elf.sections.is_empty();
    let fields = match (elf.e_shnum == 0, elf.e_shstrndx == crate::elf::SHN_XINDEX) {
        (true, true) => "e_shnum 0, e_shstrndx SHN_XINDEX",
        (true, false) => "e_shnum 0",
        _ => "e_shstrndx SHN_XINDEX",
    };
    Some(Finding::new(
        Rule::ExtendedSectionNumbering,
        format!(
            "the ELF header gives the section count or the section name table's index \
             through section 0 (extended numbering: {fields}, for {} sections): {}; \
             a module must have fewer than 65280 sections",
            elf.sections.len(),
            extended_refused(counted, elf.e_shnum, elf.e_shstrndx, target)
        ),
    ))
}

/// `extended-section-numbering`, before a conversion writes anything: `elf`
/// with `added` new sections would need extended numbering (the count in
/// section 0, as the writer puts it).
pub fn too_many_sections(elf: &Elf, added: usize, target: &Target) -> Option<Finding> {
    // `e_shnum` holds fewer than `SHN_LORESERVE` sections.
    let count = elf.sections.len().saturating_add(added);
    (count >= crate::elf::SHN_LORESERVE as usize).then(|| {
        Finding::new(
            Rule::ExtendedSectionNumbering,
            format!(
                "the converted module would have {count} sections ({} and {added} new klp \
                 relocation sections): 65280 or more need ELF's extended numbering, and {}; \
                 split the patch into smaller modules",
                elf.sections.len(),
                // The writer keeps the header's e_shstrndx.
                extended_refused(true, 0, elf.e_shstrndx, target)
            ),
        )
    })
}

/// `klp_enable_patch` (kernel/livepatch/core.c) refuses a module without
/// `livepatch=Y` in `.modinfo`: "module %s is not marked as a livepatch module".
pub fn livepatch_modinfo(elf: &Elf) -> Option<Finding> {
    if elf.is_livepatch() {
        return None;
    }
    Some(
        Finding::new(
            Rule::NotLivepatch,
            "module is not marked as a livepatch module: .modinfo has no livepatch=Y \
             (add MODULE_INFO(livepatch, \"Y\"))",
        )
        .in_section(".modinfo"),
    )
}

/// `klp_resolve_symbols` parses every klp symbol's name with
/// `sscanf(".klp.sym.%55[^.].%511[^,],%lu")`: "symbol %s has an incorrectly
/// formatted name"; a longer name is silently truncated (127 before 6.1).
pub fn klp_symbol_name_format(sym: &Symbol, target: &Target) -> Option<Finding> {
    klp_symbol_name_parsed(sym, &names::parse_klp_symbol_ref(sym.name), target)
}

/// [`klp_symbol_name_format`] for a name already parsed.
fn klp_symbol_name_parsed(
    sym: &Symbol,
    parsed: &Result<names::KlpSymbolRef, names::NameError>,
    target: &Target,
) -> Option<Finding> {
    let finding = match parsed {
        Err(e) => Finding::new(
            Rule::KlpSymbolName,
            format!(
                "symbol {} has an incorrectly formatted name: {e}",
                sym.display_name()
            ),
        ),
        Ok(k) if klp_symbol_too_long(k.obj, k.name, sym.name, target).is_some() => {
            klp_symbol_too_long(k.obj, k.name, sym.name, target)?
        }
        Ok(k) if !k.pos_is_plain() => Finding::new(
            Rule::KlpSymbolPosition,
            format!(
                "position '{}' is not plain digits: the kernel's sscanf (%lu) reads it as {}",
                show(k.pos_text),
                k.pos
            ),
        ),
        Ok(_) => return None,
    };
    Some(finding.in_section(".symtab").symbol(sym.display_name()))
}

/// How much of a klp symbol the kernel reads, `KSYM_NAME_LEN - 1` bytes
/// (127 before 6.1, 511 since: "kallsyms: increase maximum kernel symbol
/// length to 512", 6.1):
///
/// * `klp_resolve_symbols`' `sscanf` (`.klp.sym.%55[^.].%511[^,],%lu`)
///   reads at most that much of `<name>`, then wants the `,`: a longer
///   name is refused ("symbol ... has an incorrectly formatted name").
/// * Before 6.1, a module-specific klp symbol is read from the livepatch
///   module's kallsyms copy (`klp_apply_object_relocs` passes
///   `core_kallsyms.strtab`), where `add_kallsyms` (kernel/module.c) copied
///   each name cut to `KSYM_NAME_LEN - 1` bytes (`strlcpy`): the whole
///   `.klp.sym.<obj>.<name>,<pos>` must fit in 127 bytes. Cut before the
///   position's first digit, it is refused as above (`%lu` reads nothing);
///   cut inside the position, the kernel reads the digits left. vmlinux's klp symbols are resolved while the
///   livepatch module loads, from its full string table
///   (`apply_relocations`, since 5.8), so only `<name>` counts for them.
///   6.1's `add_kallsyms` (kernel/module/kallsyms.c) copies each name whole
///   (`strscpy` bounded by the table's size), as 6.12 and 7.2 do; the
///   change is taken to come with 6.1, as `KSYM_NAME_LEN`'s did (no Debian
///   kernel lies between).
///
/// Proven by Debian's 5.10 (`tests/kernel_e2e.rs` step 14: a
/// module-specific klp symbol of 127 bytes is read, one of 128 refused) and
/// 6.1 and 6.12 (both read). `convert` asks this of the names it writes.
pub fn klp_symbol_too_long(
    obj: &[u8],
    name: &[u8],
    whole: &[u8],
    target: &Target,
) -> Option<Finding> {
    let max_name = target.max_symbol_name();
    if name.len() > max_name {
        return Some(Finding::new(
            Rule::KlpSymbolTooLong,
            format!(
                "symbol name '{}' is {} bytes; kernel {} reads at most {max_name} (KSYM_NAME_LEN - 1) before the ',' its sscanf expects, so it refuses the symbol: 'symbol ... has an incorrectly formatted name'",
                show(name),
                name.len(),
                target.release_text()
            ),
        ));
    }
    let cut = target.release.as_ref().is_some_and(|r| r.before(6, 1));
    if !cut || obj == names::VMLINUX || whole.len() <= max_name {
        return None;
    }
    let comma = whole.iter().rposition(|&b| b == b',');
    let what = match comma {
        Some(c) if c + 1 < max_name => format!(
            "inside its position, which the kernel then reads as '{}': the symbol at that position, or none",
            show(&whole[c + 1..max_name])
        ),
        _ => "before its position's first digit, so it refuses the symbol: 'symbol ... has an incorrectly formatted name'".to_string(),
    };
    Some(Finding::new(
        Rule::KlpSymbolTooLong,
        format!(
            "klp symbol '{}' is {} bytes; kernel {} keeps at most {max_name} (KSYM_NAME_LEN - 1) of a symbol name in the livepatch module's kallsyms (add_kallsyms, before 6.1), where it reads '{}' symbols when that module loads: the name is cut {what}",
            show(whole),
            whole.len(),
            target.release_text(),
            show(obj)
        ),
    ))
}

/// `simplify_symbols` (kernel/module/main.c) fails on an undefined name no
/// one exports: a `KLP_RELOC_SYMBOL` annotation left as it was compiled
/// gives "Unknown symbol .klp.sym.rela..." (ppc64: without the dot).
pub fn unconverted_annotation(elf: &Elf, sym: &Symbol) -> Option<Finding> {
    if sym.st_shndx != SHN_UNDEF || !names::is_annotation(sym.name) {
        return None;
    }
    Some(
        Finding::new(
            Rule::UnconvertedAnnotation,
            format!(
                "unconverted KLP_RELOC_SYMBOL annotation: the loader would fail with 'Unknown symbol {}'; run klp-convert on this module",
                arch::loader_name(elf.machine, &sym.display_name())
            ),
        )
        .in_section(".symtab")
        .symbol(sym.display_name()),
    )
}

/// A `KLP_RELOC_SYMBOL` name the module defines: the asm label renamed a
/// definition, not an extern declaration, so the module's references bind
/// to its own copy, never to the target's symbol. The loader has nothing
/// to link and the livepatch core nothing to resolve: the patch loads and
/// silently uses the wrong object. (A klp symbol, `SHN_LIVEPATCH`, whose
/// object is called `rela` reads like an annotation and is not one.)
pub fn defined_annotation(sym: &Symbol) -> Option<Finding> {
    if matches!(sym.st_shndx, SHN_UNDEF | SHN_LIVEPATCH) || !names::is_annotation(sym.name) {
        return None;
    }
    Some(
        Finding::new(
            Rule::DefinedAnnotation,
            format!(
                "annotation symbol is defined (section index {}); it must be an undefined reference",
                sym.section
            ),
        )
        .in_section(".symtab")
        .symbol(sym.display_name()),
    )
}

/// A v7 `KLP_MODULE_RELOC` table still allocated and filled: the module was
/// never converted, so the references it annotates are plain undefined
/// names that `simplify_symbols` cannot link ("Unknown symbol").
pub fn unconverted_sympos_table(elf: &Elf, sec: &Section) -> Option<Finding> {
    let is_table = sec
        .name
        .starts_with(names::SYMPOS_SECTION_PREFIX.as_bytes());
    if !is_table || !sec.is_alloc() || sec.sh_size == 0 || sec.sh_type == SHT_NOBITS {
        return None;
    }
    let entries = elf
        .relocs
        .iter()
        .filter(|r| elf.sections.at(r.index).sh_info as usize == sec.index)
        .map(|r| r.entries().len())
        .sum::<usize>();
    Some(
        Finding::new(
            Rule::UnconvertedSymposTable,
            format!(
                "unconverted KLP_MODULE_RELOC table ({entries} KLP_SYMPOS reference{}): the references it annotates are still plain undefined symbols, which the loader refuses ('Unknown symbol'); run klp-convert with the target's symbol map",
                if entries == 1 { "" } else { "s" }
            ),
        )
        .in_section(sec.display_name()),
    )
}

/// `klp_apply_section_relocs` parses the object of a klp relocation
/// section with `sscanf(".klp.rela.%55[^.]")`: "section %s has an
/// incorrectly formatted name". Returns the object.
pub fn klp_section_name_format<'a>(sec: &Section<'a>) -> Result<&'a [u8], Finding> {
    names::klp_section_object(sec.name).map_err(|e| {
        Finding::new(
            Rule::KlpSectionName,
            format!(
                "section {} has an incorrectly formatted name: {e}",
                sec.display_name()
            ),
        )
        .in_section(sec.display_name())
    })
}

/// The object `klp_apply_section_relocs` reads ends at the first `.`: the
/// minimal klp-convert's `.klp.rela.vmlinux__jump_table` names object
/// `vmlinux__jump_table`, which never loads, so its relocations are never
/// applied. `obj` is the object as the kernel reads it; the comparison and
/// the suggested name work on bytes (a name need not be UTF-8), and only
/// the message decodes them.
pub fn klp_section_object_misread(
    sec: &Section,
    obj: impl AsRef<[u8]>,
    target: &Section,
) -> Option<Finding> {
    let (obj, t) = (obj.as_ref(), target.name);
    let misread = !t.is_empty() && !t.starts_with(b".") && obj.len() > t.len();
    // What the object would be with a `.` before the target's name.
    let meant = obj.strip_suffix(t).filter(|_| misread)?;
    let tname = target.display_name();
    Some(
        Finding::new(
            Rule::KlpSectionObject,
            format!(
                "the kernel reads the object of this section as '{}' (no '.' before the target {tname}): its relocations are never applied; name it .klp.rela.{}.{tname}",
                show_name(obj),
                show_name(meant)
            ),
        )
        .in_section(sec.display_name()),
    )
}

/// The header of a section flagged `SHF_RELA_LIVEPATCH`: the livepatch core
/// hands it to `apply_relocate_add` (`klp_write_section_relocs`), which
/// reads RELA entries.
///
/// * `SHF_ALLOC`: a vmlinux section is applied while the module loads, from
///   the load image (`apply_relocations`), so it needs none. A section for a
///   module is applied later (`klp_apply_object_relocs`), through the
///   section headers kept in `klp_info`; an unallocated section's `sh_addr`
///   then points into the freed load image.
/// * `sh_link`: the kernel never reads it; `symndx` is always the module's
///   own symbol table. A mismatch misleads readelf and objdump only: a note
///   ([`Rule::KlpSectionLink`]).
pub fn klp_section_header(elf: &Elf, sec: &Section) -> Vec<Finding> {
    let mut out = Vec::new();
    let at = |p: Finding| p.in_section(sec.display_name());
    if sec.sh_type != SHT_RELA {
        out.push(at(Finding::new(
            Rule::KlpSectionHeader,
            format!(
                "klp relocation section is not SHT_RELA (sh_type {}): the livepatch core only applies RELA",
                sec.sh_type
            ),
        )));
    }
    let vmlinux = names::klp_section_object(sec.name).is_ok_and(|o| o == VMLINUX);
    if sec.sh_flags & SHF_ALLOC == 0 && !vmlinux {
        out.push(at(Finding::new(
            Rule::KlpSectionHeader,
            "klp relocation section for a module lacks SHF_ALLOC: it is applied after the module's load (klp_apply_object_relocs), when its unallocated contents are freed with the load image",
        )));
    }
    if Some(sec.sh_link as usize) != elf.symtab {
        out.push(at(Finding::new(
            Rule::KlpSectionLink,
            format!(
                "sh_link is {}, not the index of .symtab: the kernel ignores sh_link (it always uses the module's symbol table), but readelf and objdump read these relocations against the wrong table",
                sec.sh_link
            ),
        )));
    }
    out
}

/// `apply_relocations` (kernel/module/main.c) applies a RELA section
/// without `SHF_RELA_LIVEPATCH` itself, whatever its name says.
pub fn klp_section_flagged(sec: &Section) -> Option<Finding> {
    let named = sec.name.starts_with(names::KLP_RELA_PREFIX.as_bytes());
    if !named || sec.sh_flags & SHF_RELA_LIVEPATCH != 0 {
        return None;
    }
    Some(
        Finding::new(
            Rule::KlpSectionNotFlagged,
            "named like a klp relocation section but lacks SHF_RELA_LIVEPATCH: the module loader would apply it as an ordinary relocation section",
        )
        .in_section(sec.display_name()),
    )
}

/// The section a relocation section patches is `sh_info`, never the name.
pub fn relocation_target<'a>(elf: &Elf<'a>, sec: &Section) -> Result<Section<'a>, Finding> {
    let index = sec.sh_info as usize;
    elf.sections
        .get(index)
        .filter(|_| index != 0)
        .ok_or_else(|| {
            Finding::new(
                Rule::KlpSectionTarget,
                format!("sh_info {index} is not a valid target section"),
            )
            .in_section(sec.display_name())
        })
}

/// A klp relocation section for `obj` whose target is not `SHF_ALLOC`:
/// vmlinux ones are skipped silently by `apply_relocations` (its
/// `SHF_ALLOC` test comes first); module-specific ones are applied late by
/// `klp_apply_object_relocs`, which tests no flags, at the section's
/// `sh_addr`: an address in the load image the loader freed once the
/// module was loaded (it moves only allocated sections). An unknown object
/// (`None`) is taken for either.
pub fn target_alloc(obj: Option<&[u8]>, target: &Section) -> Option<Finding> {
    if target.is_alloc() {
        return None;
    }
    let what = match obj {
        Some(VMLINUX) => "the module loader skips these klp relocations silently".to_string(),
        Some(obj) => format!(
            "the livepatch core applies these klp relocations late, when '{}' loads, at the section's address in the module's load image, which the loader freed after loading: they write into freed memory",
            names::show(obj)
        ),
        None => "the kernel skips these klp relocations silently (vmlinux), or writes them into the freed load image when their module loads".to_string(),
    };
    Some(Finding::new(
        Rule::TargetNotAlloc,
        format!(
            "target section {} is not SHF_ALLOC: {what}",
            target.display_name()
        ),
    ))
}

/// A module-specific klp relocation is applied late, when `lp_obj` loads.
/// `module_finalize` consumed the special sections (alternatives, jump
/// labels, static calls, exception tables, ...) when the livepatch module
/// itself loaded, and `do_init_module` freed `.init.*`: a late relocation
/// into either never takes effect, or writes into freed memory. ppc64 never
/// frees `.init*` ([`arch::keeps_init_sections`]): there the write lands,
/// in code that has already run.
pub fn late_target(lp_obj: &[u8], target: &Section, machine: u16) -> Option<Finding> {
    if lp_obj == VMLINUX {
        return None;
    }
    let tname = target.display_name();
    let lp_obj = show(lp_obj);
    if arch::is_special_section(target.name) {
        let hint = if target.name == b"__jump_table" {
            " (module static key: use static_key_enabled() instead of static_branch_*())"
        } else {
            ""
        };
        return Some(Finding::new(
            Rule::SpecialSection,
            format!(
                "module-specific klp relocation in special section {tname}: the loader processes {tname} once when the livepatch module loads, before '{lp_obj}' can be resolved{hint}"
            ),
        ));
    }
    if arch::is_init_section(target.name) && !arch::keeps_init_sections(machine) {
        return Some(Finding::new(
            Rule::InitSection,
            format!(
                "module-specific klp relocation in {tname}, which is freed after module init; a late relocation would write into freed memory"
            ),
        ));
    }
    None
}

/// `klp_resolve_symbols`: every relocation of a klp section must reference
/// a `SHN_LIVEPATCH` symbol, "symbol %s is not marked as a livepatch symbol".
pub fn livepatch_symbol_marked(sym: &Symbol) -> Option<Finding> {
    if sym.st_shndx == SHN_LIVEPATCH {
        return None;
    }
    Some(Finding::new(
        Rule::NotLivepatchSymbol,
        format!(
            "symbol {} is not marked as a livepatch symbol",
            sym.display_name()
        ),
    ))
}

/// `klp_resolve_symbols` (since 5.8): "invalid access to vmlinux symbol '%s'
/// from module-specific livepatch relocation section". A module's section is
/// applied late; vmlinux symbols belong in `.klp.rela.vmlinux.*`.
pub fn vmlinux_access(lp_obj: &[u8], sym: &KlpSymbol) -> Option<Finding> {
    if lp_obj == VMLINUX || sym.obj != VMLINUX {
        return None;
    }
    let name = show(&sym.name);
    Some(Finding::new(
        Rule::VmlinuxFromModuleSection,
        format!(
            "invalid access to vmlinux symbol '{name}' from module-specific livepatch relocation section (.klp.rela.{}): use KLP_RELOC_SYMBOL(vmlinux, vmlinux, {name})",
            show(lp_obj)
        ),
    ))
}

/// `apply_relocate_add` writes at `sh_addr + r_offset` without a bound: an
/// offset beyond the target writes into whatever follows it.
pub fn offset_within(target: &Section, offset: u64) -> Option<Finding> {
    if offset < target.sh_size || target.sh_type == SHT_NOBITS {
        return None;
    }
    Some(Finding::new(
        Rule::OffsetBeyondTarget,
        format!(
            "offset lies beyond the end of the target section {} (size 0x{:x})",
            target.display_name(),
            target.sh_size
        ),
    ))
}

/// `simplify_symbols` leaves `SHN_LIVEPATCH` symbols at value 0 and
/// `apply_relocations` then applies ordinary relocation sections with it:
/// a reference to a klp symbol outside a klp section becomes a NULL pointer,
/// without an error (the early klp-convert crash). Two cases write nothing
/// that matters: a type the architecture's loader skips (objtool turns the
/// original relocation into `R_X86_64_NONE`), and objtool's intermediate
/// `__klp_relocs.<obj>` table, which nothing reads (a note names it).
pub fn ordinary_reloc_to_livepatch_symbol(
    elf: &Elf,
    sym: &Symbol,
    target: Option<&Section>,
    r_type: u32,
) -> Option<Finding> {
    let target = target.filter(|t| t.is_alloc())?;
    if sym.st_shndx != SHN_LIVEPATCH || arch::writes_nothing(elf.machine, r_type) {
        return None;
    }
    if target.name.starts_with(b"__klp_relocs") {
        return Some(Finding::new(
            Rule::ToolLeftover,
            format!(
                "objtool's intermediate section {} is left in the module: the loader writes the addend into it, which nothing reads",
                target.display_name()
            ),
        ));
    }
    Some(Finding::new(
        Rule::OrdinaryRelocToLivepatchSymbol,
        "ordinary relocation against a livepatch symbol: the module loader applies it with value 0; it belongs in a .klp.rela section",
    ))
}

/// `klp_init_patch_early`, `klp_init_object` and `klp_init_func`
/// (kernel/livepatch/core.c) refuse the patch (-EINVAL) for an object
/// whose `funcs` is NULL (an empty array is fine) or with a name of `MODULE_NAME_LEN` bytes or more, and
/// for a function without `old_name` or `new_func`, or with an `old_name`
/// of `KSYM_NAME_LEN` bytes or more. A linked livepatch module whose
/// tables are not in its data gets a note: its patched functions cannot be
/// checked. An object file gets none: the tables may be in another object
/// of the module.
pub fn patch_table(elf: &Elf, table: Option<&PatchTable>, target: &Target) -> Vec<Finding> {
    let Some(table) = table else {
        return if elf.is_livepatch() && elf.is_linked_module() {
            vec![Finding::new(
                Rule::PatchTableUnread,
                "no static klp_patch or objtool .init.klp_objects table found: the patched functions (klp_func old_name, old_sympos) were not checked",
            )]
        } else {
            Vec::new()
        };
    };
    let mut out = Vec::new();
    let at = |p: &Place, f: Finding| f.in_section(p.section.clone()).at(p.offset);
    if table.objects.is_empty() {
        out.push(Finding::new(
            Rule::PatchTable,
            "the patch has no klp_object: klp_enable_patch refuses it (objtool's init: \"nothing to patch!\")",
        ));
    }
    for o in &table.objects {
        let name = match &o.name {
            Some(n) if n.len() >= klp_patch::MODULE_NAME_LEN => Some(format!(
                "klp_object name '{}' is {} bytes, MODULE_NAME_LEN is {}: klp_init_object refuses it",
                show(n),
                n.len(),
                klp_patch::MODULE_NAME_LEN
            )),
            Some(_) => None,
            None => Some("klp_object name does not point at a string".to_string()),
        };
        out.extend(name.map(|m| at(&o.place, Finding::new(Rule::PatchTable, m))));
        // An empty array is fine (an object with callbacks only).
        if o.funcs_missing {
            out.push(at(
                &o.place,
                Finding::new(
                    Rule::PatchTable,
                    format!(
                        "klp_object '{}' has no funcs array (NULL): klp_init_patch_early refuses the patch",
                        o.object()
                    ),
                ),
            ));
        }
        if let Some((claimed, room)) = o.funcs_overrun {
            out.push(at(
                &o.place,
                Finding::new(
                    Rule::PatchTable,
                    format!(
                        "klp_object_ext '{}' has nr_funcs {claimed}, but its funcs section holds {room} more entries: the patch would read past it",
                        o.object()
                    ),
                ),
            ));
        }
        out.extend(object_never_matched(o));
        for f in &o.funcs {
            let message = match (&f.old_name, &f.new_func) {
                (None, _) => Some(
                    "klp_func old_name is NULL or not a string: klp_init_func refuses the patch"
                        .to_string(),
                ),
                (Some(n), _) if n.len() > target.max_symbol_name() => Some(format!(
                    "klp_func old_name '{}' is {} bytes; kernel {} takes at most {} (KSYM_NAME_LEN - 1): klp_init_func refuses the patch",
                    show(n),
                    n.len(),
                    target.release_text(),
                    target.max_symbol_name()
                )),
                (Some(n), None) => Some(format!(
                    "klp_func for '{}' has no new_func: klp_init_func refuses the patch",
                    show(n)
                )),
                _ => None,
            };
            if let Some(m) = message {
                let p = at(&f.place, Finding::new(Rule::PatchTable, m));
                out.push(match &f.old_name {
                    Some(n) => p.symbol(show(n).to_string()),
                    None => p,
                });
            }
        }
    }
    out.extend(duplicate_sysfs_names(elf, table));
    out
}

/// `klp_find_object_module` and `klp_module_coming` (kernel/livepatch/core.c)
/// match an object whose `name` is not NULL (`klp_is_module()`) with the
/// module of that name only: an object named by the string `"vmlinux"`, or
/// with a `-` in its name (kbuild's module names have `_` for it), is never
/// matched. The patch loads and enables, and patches nothing of it: its
/// functions are never looked up, its `.klp.rela.<name>.*` never applied.
pub fn object_never_matched(o: &klp_patch::PatchedObject) -> Option<Finding> {
    let why = match o.never_matched()? {
        klp_patch::Unmatched::VmlinuxString => {
            "klp_object name is the string \"vmlinux\", not NULL: \
             klp_is_module() takes it for a module, find_module(\"vmlinux\") finds none, \
             and the patch enables and patches nothing of vmlinux; vmlinux is .name = NULL"
                .to_string()
        }
        klp_patch::Unmatched::Dash => {
            let name = o.name.as_deref().unwrap_or_default();
            let kbuild: Vec<u8> = name
                .iter()
                .map(|&b| if b == b'-' { b'_' } else { b })
                .collect();
            format!(
                "klp_object name '{}' contains '-': module names never do (kbuild names the module '{}'), \
                 so find_module() and klp_module_coming() never match it, and the patch enables and \
                 patches nothing of it",
                show(name),
                show(&kbuild)
            )
        }
    };
    Some(
        Finding::new(Rule::ObjectNeverMatched, why)
            .in_section(o.place.section.clone())
            .at(o.place.offset),
    )
}

/// `klp_init_object` and `klp_init_func` (kernel/livepatch/core.c) add a
/// sysfs directory for every object, named by the module or `vmlinux` for
/// NULL, under the patch's, and one for every function under its object's,
/// named `"%s,%lu"` from `old_name` and `old_sympos ?: 1` (`kobject_add`,
/// which turns a `/` into `!`). A name an earlier entry has fails with
/// -EEXIST ("sysfs: cannot create duplicate filename"), and
/// `klp_enable_patch` refuses the patch: two functions `foo` with
/// positions 0 and 1, two objects for one module, a NULL object beside one
/// named `"vmlinux"`.
pub fn duplicate_sysfs_names(elf: &Elf, table: &PatchTable) -> Vec<Finding> {
    let patch = elf
        .modinfo_value("name")
        .map_or_else(|| "<patch>".to_string(), |n| show(n).to_string());
    let kobject = |n: &[u8]| -> Vec<u8> {
        n.iter()
            .map(|&b| if b == b'/' { b'!' } else { b })
            .collect()
    };
    let refused = |path: String, what: String| {
        format!(
            "{what}: kobject_add fails with -EEXIST (\"sysfs: cannot create duplicate filename \
             '/kernel/livepatch/{path}'\") and klp_enable_patch refuses the patch"
        )
    };
    let mut out = Vec::new();
    // Hash sets: a hostile table has up to 2^16 entries an array.
    let mut objects: HashSet<Vec<u8>> = HashSet::new();
    for o in &table.objects {
        let Some(dir) = o.sysfs_name().map(kobject) else {
            continue;
        };
        if objects.contains(&dir) {
            let what = if dir == VMLINUX {
                "a second klp_object named 'vmlinux' in sysfs (klp_init_object names NULL 'vmlinux', as it does the string \"vmlinux\")".to_string()
            } else {
                format!("a second klp_object for '{}'", show(&dir))
            };
            out.push(
                Finding::new(
                    Rule::DuplicateSysfsName,
                    refused(format!("{patch}/{}", show(&dir)), what),
                )
                .in_section(o.place.section.clone())
                .at(o.place.offset),
            );
            continue; // the kernel stops at the object
        }
        // (sysfs name, old_sympos) of the functions before.
        let mut funcs: HashMap<Vec<u8>, u64> = HashMap::new();
        for f in &o.funcs {
            let Some(old) = &f.old_name else { continue };
            let pos = if f.sympos == 0 { 1 } else { f.sympos };
            let mut name = kobject(old);
            name.extend_from_slice(format!(",{pos}").as_bytes());
            if let Some(earlier) = funcs.get(&name) {
                let what = format!(
                    "klp_func '{}' with old_sympos {} gets the sysfs name '{}' in '{}', as an earlier one with old_sympos {earlier} did (klp_init_func names them \"<old_name>,<old_sympos ?: 1>\")",
                    show(old),
                    f.sympos,
                    show(&name),
                    show(&dir),
                );
                out.push(
                    Finding::new(
                        Rule::DuplicateSysfsName,
                        refused(format!("{patch}/{}/{}", show(&dir), show(&name)), what),
                    )
                    .in_section(f.place.section.clone())
                    .at(f.place.offset)
                    .symbol(show(old).to_string()),
                );
            } else {
                funcs.insert(name, f.sympos);
            }
        }
        objects.insert(dir);
    }
    out
}

/// `klp_apply_object_relocs` (kernel/livepatch/core.c) runs for each
/// `klp_object` of the patch when its module is loaded, and applies only
/// the `.klp.rela.<obj>.*` sections whose `<obj>` is that object's name
/// (`klp_apply_section_relocs`' `strcmp`); the module loader applies the
/// vmlinux ones. A section for a module the patch has no object for is
/// never applied, and its fields keep what the compiler left (a call's
/// displacement 0). When the tables are built at run time, a note.
pub fn klp_section_no_object(obj: &[u8], objects: &klp_patch::ModuleObjects) -> Option<Finding> {
    if obj == VMLINUX {
        return None;
    }
    let shown = show(obj);
    let listed = match objects {
        klp_patch::ModuleObjects::Named(names) => names,
        // An unreadable name is a patch-table error already; it might be this
        // one. An object file's table may be in another object.
        klp_patch::ModuleObjects::Unknown | klp_patch::ModuleObjects::Elsewhere => return None,
        klp_patch::ModuleObjects::Unread => {
            return Some(
                Finding::new(
                    Rule::KlpSectionNoObject,
                    format!(
                        "applied only if the patch has a klp_object for {shown}: its klp_patch table is built at run time and was not read"
                    ),
                )
                .with_severity(crate::finding::Severity::Note),
            )
        }
    };
    if listed.contains(obj) {
        return None;
    }
    Some(Finding::new(
        Rule::KlpSectionNoObject,
        format!(
            "never applied: the patch has no klp_object for {shown} (klp_apply_object_relocs applies .klp.rela.{shown}.* for that object only); \
             add one, with no functions if it needs none: {{ .name = \"{shown}\", .funcs = (struct klp_func[]){{ {{ }} }} }}"
        ),
    ))
}

/// Must the module loader link this symbol (`simplify_symbols`)? An
/// undefined, named, non-weak symbol other than ppc64's `.TOC.` (which the
/// loader provides) and other than an annotation (which the converter
/// handles). Such a name must be exported or become a klp symbol.
pub fn needs_linking(sym: &Symbol) -> bool {
    sym.index != 0
        && sym.st_shndx == SHN_UNDEF
        && !sym.name.is_empty()
        && sym.bind() != abi::STB_WEAK
        && sym.name != b".TOC."
        && !names::is_annotation(sym.name)
}

/// Every rule of this module on a whole livepatch module, for the kernel
/// `target`: what `check` reports and what `convert` proves of its output.
pub fn module(elf: &Elf, target: &Target) -> Vec<Finding> {
    module_except(elf, target, &[])
}

/// [`module`] without the rules in `skip`, whose findings the caller would
/// drop: `convert` mends unconverted annotations and `KLP_SYMPOS` tables,
/// and a module may have a hundred thousand of them, each finding a
/// formatted message.
pub fn module_except(elf: &Elf, target: &Target, skip: &[Rule]) -> Vec<Finding> {
    let annotations = !skip.contains(&Rule::UnconvertedAnnotation);
    let sympos_tables = !skip.contains(&Rule::UnconvertedSymposTable);
    let table = klp_patch::read(elf);
    let mut out = patch_table(elf, table.as_ref(), target);
    out.extend(extended_numbering(elf, target));
    let objects = klp_patch::ModuleObjects::of(elf, table.as_ref());
    let has_klp_section = elf
        .sections
        .iter()
        .any(|s| s.sh_flags & SHF_RELA_LIVEPATCH != 0);
    let has_klp_symbol = elf.symbols.iter().any(|s| s.st_shndx == SHN_LIVEPATCH);
    if has_klp_section || has_klp_symbol {
        out.extend(livepatch_modinfo(elf));
    }

    // `klp_resolve_symbols` parses only the symbols klp sections reference;
    // the loader skips every other SHN_LIVEPATCH symbol (objtool keeps the
    // original as `.klp.tombstone.<name>`).
    let mut referenced = vec![false; elf.symbols.len()];
    for rs in &elf.relocs {
        if elf.sections.at(rs.index).sh_flags & SHF_RELA_LIVEPATCH != 0 {
            for r in rs.entries() {
                if let Some(seen) = referenced.get_mut(r.sym as usize) {
                    *seen = true;
                }
            }
        }
    }
    // Each referenced klp symbol parsed once, for every relocation using
    // it: by symbol index, whether it parsed and names vmlinux's symbol (a
    // byte a symbol, not the 56 of an `Option<KlpSymbolRef>`: a module has
    // 100,000). The few relocations that need more parse it again.
    let mut of_vmlinux: Vec<Option<bool>> = vec![None; elf.symbols.len()];
    for sym in &elf.symbols {
        if sym.st_shndx == SHN_LIVEPATCH && referenced[sym.index as usize] {
            let parts = names::parse_klp_symbol_ref(sym.name);
            if let Some(p) = klp_symbol_name_parsed(sym, &parts, target) {
                out.push(p);
            }
            of_vmlinux[sym.index as usize] = parts.ok().map(|k| k.obj == VMLINUX);
        }
        if annotations {
            if let Some(p) = unconverted_annotation(elf, sym) {
                out.push(p);
            }
        }
        if let Some(p) = defined_annotation(sym) {
            out.push(p);
        }
    }
    for sec in elf.sections.iter() {
        if sympos_tables {
            if let Some(p) = unconverted_sympos_table(elf, &sec) {
                out.push(p);
            }
        }
        if sec.sh_flags & SHF_RELA_LIVEPATCH != 0 {
            out.extend(klp_section_header(elf, &sec));
        }
    }

    // Read once: `.modinfo` is found by a scan of the section headers.
    let livepatch = elf.is_livepatch();
    for rs in &elf.relocs {
        let sec = &elf.sections.at(rs.index);
        if sec.sh_flags & SHF_RELA_LIVEPATCH == 0 {
            if let Some(p) = klp_section_flagged(sec) {
                out.push(p);
            }
            let target = elf.sections.get(sec.sh_info as usize);
            for r in rs.entries() {
                let sym = &elf.symbols[r.sym as usize];
                if let Some(p) =
                    ordinary_reloc_to_livepatch_symbol(elf, sym, target.as_ref(), r.r_type)
                {
                    out.push(p.at_entry(elf, rs.index, &r));
                }
            }
            continue;
        }
        let obj = klp_section_name_format(sec).map_err(|p| out.push(p)).ok();
        let target = match relocation_target(elf, sec) {
            Ok(t) => t,
            Err(p) => {
                out.push(p);
                continue;
            }
        };
        if let Some(obj) = &obj {
            let misread = klp_section_object_misread(sec, obj, &target);
            // A misread object is never applied either: one finding says so.
            if misread.is_none() && livepatch {
                if let Some(p) = klp_section_no_object(obj, &objects) {
                    out.push(p.in_section(sec.display_name()));
                }
            }
            if let Some(p) = misread {
                out.push(p);
            }
        }
        let at_section = |p: Finding| p.in_section(sec.display_name());
        if let Some(p) = target_alloc(obj, &target) {
            out.push(at_section(p));
        }
        if let Some(obj) = &obj {
            if let Some(p) = late_target(obj, &target, elf.machine) {
                out.push(at_section(p));
            }
        }
        for r in rs.entries() {
            let sym = &elf.symbols[r.sym as usize];
            let at = |p: Finding| p.at_entry(elf, rs.index, &r);
            if let Some(p) = livepatch_symbol_marked(sym) {
                out.push(at(p));
                continue;
            }
            let vmlinux_symbol = of_vmlinux.get(r.sym as usize).copied().flatten();
            if let (Some(obj), Some(true)) = (&obj, vmlinux_symbol) {
                if *obj != VMLINUX {
                    if let Ok(k) = names::parse_klp_symbol_ref(sym.name) {
                        if let Some(p) = vmlinux_access(obj, &k.to_symbol()) {
                            out.push(at(p));
                        }
                    }
                }
            }
            if let Some(p) = offset_within(&target, r.offset) {
                out.push(at(p));
            }
        }
    }
    out
}
