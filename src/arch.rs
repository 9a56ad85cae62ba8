//! Per-architecture facts: machine names, relocation type names, implicit
//! addends of REL entries, and the special sections each loader processes
//! once at module load.

use object::elf;

/// A short name for `e_machine`.
pub fn machine_name(machine: u16) -> String {
    match machine {
        elf::EM_X86_64 => "x86_64".into(),
        elf::EM_386 => "i386".into(),
        elf::EM_PPC64 => "ppc64".into(),
        elf::EM_PPC => "ppc".into(),
        elf::EM_S390 => "s390".into(),
        elf::EM_AARCH64 => "aarch64".into(),
        elf::EM_ARM => "arm".into(),
        elf::EM_RISCV => "riscv".into(),
        elf::EM_LOONGARCH => "loongarch".into(),
        m => format!("machine {m}"),
    }
}

/// The ELF name of a relocation type, e.g. `R_X86_64_PC32`, or `type N`.
pub fn reloc_type_name(machine: u16, r_type: u32) -> String {
    let table: &[(u32, &str)] = match machine {
        elf::EM_X86_64 => &[
            (elf::R_X86_64_NONE, "R_X86_64_NONE"),
            (elf::R_X86_64_64, "R_X86_64_64"),
            (elf::R_X86_64_PC32, "R_X86_64_PC32"),
            (elf::R_X86_64_GOT32, "R_X86_64_GOT32"),
            (elf::R_X86_64_PLT32, "R_X86_64_PLT32"),
            (elf::R_X86_64_GOTPCREL, "R_X86_64_GOTPCREL"),
            (elf::R_X86_64_32, "R_X86_64_32"),
            (elf::R_X86_64_32S, "R_X86_64_32S"),
            (elf::R_X86_64_PC64, "R_X86_64_PC64"),
            (elf::R_X86_64_GOTPCRELX, "R_X86_64_GOTPCRELX"),
            (elf::R_X86_64_REX_GOTPCRELX, "R_X86_64_REX_GOTPCRELX"),
        ],
        elf::EM_386 => &[
            (elf::R_386_NONE, "R_386_NONE"),
            (elf::R_386_32, "R_386_32"),
            (elf::R_386_PC32, "R_386_PC32"),
            (elf::R_386_GOT32, "R_386_GOT32"),
            (elf::R_386_PLT32, "R_386_PLT32"),
            (elf::R_386_GOTOFF, "R_386_GOTOFF"),
            (elf::R_386_GOTPC, "R_386_GOTPC"),
        ],
        elf::EM_PPC64 => &[
            (elf::R_PPC64_NONE, "R_PPC64_NONE"),
            (elf::R_PPC64_ADDR32, "R_PPC64_ADDR32"),
            (elf::R_PPC64_REL24, "R_PPC64_REL24"),
            (elf::R_PPC64_REL32, "R_PPC64_REL32"),
            (elf::R_PPC64_ADDR64, "R_PPC64_ADDR64"),
            (elf::R_PPC64_REL64, "R_PPC64_REL64"),
            (elf::R_PPC64_TOC16, "R_PPC64_TOC16"),
            (elf::R_PPC64_TOC16_LO, "R_PPC64_TOC16_LO"),
            (elf::R_PPC64_TOC16_HA, "R_PPC64_TOC16_HA"),
            (elf::R_PPC64_TOC16_DS, "R_PPC64_TOC16_DS"),
            (elf::R_PPC64_TOC16_LO_DS, "R_PPC64_TOC16_LO_DS"),
            (elf::R_PPC64_TOC, "R_PPC64_TOC"),
            (elf::R_PPC64_REL16_LO, "R_PPC64_REL16_LO"),
            (elf::R_PPC64_REL16_HA, "R_PPC64_REL16_HA"),
            (118, "R_PPC64_ENTRY"),
            (elf::R_PPC64_ADDR16_LO, "R_PPC64_ADDR16_LO"),
            (elf::R_PPC64_ADDR16_HA, "R_PPC64_ADDR16_HA"),
            (116, "R_PPC64_REL24_NOTOC"),
            (132, "R_PPC64_PCREL34"),
            (133, "R_PPC64_GOT_PCREL34"),
        ],
        elf::EM_S390 => &[
            (elf::R_390_NONE, "R_390_NONE"),
            (elf::R_390_32, "R_390_32"),
            (elf::R_390_PC32, "R_390_PC32"),
            (elf::R_390_64, "R_390_64"),
            (elf::R_390_PC64, "R_390_PC64"),
            (elf::R_390_PC16DBL, "R_390_PC16DBL"),
            (elf::R_390_PC32DBL, "R_390_PC32DBL"),
            (elf::R_390_PLT32DBL, "R_390_PLT32DBL"),
            (elf::R_390_PLT64, "R_390_PLT64"),
            (elf::R_390_GOTENT, "R_390_GOTENT"),
            (elf::R_390_GOTPCDBL, "R_390_GOTPCDBL"),
            (elf::R_390_GOT12, "R_390_GOT12"),
            (elf::R_390_GOT20, "R_390_GOT20"),
            (elf::R_390_GOTPLTENT, "R_390_GOTPLTENT"),
        ],
        elf::EM_AARCH64 => &[
            (elf::R_AARCH64_NONE, "R_AARCH64_NONE"),
            (elf::R_AARCH64_ABS64, "R_AARCH64_ABS64"),
            (elf::R_AARCH64_ABS32, "R_AARCH64_ABS32"),
            (elf::R_AARCH64_PREL64, "R_AARCH64_PREL64"),
            (elf::R_AARCH64_PREL32, "R_AARCH64_PREL32"),
            (
                elf::R_AARCH64_ADR_PREL_PG_HI21,
                "R_AARCH64_ADR_PREL_PG_HI21",
            ),
            (elf::R_AARCH64_ADD_ABS_LO12_NC, "R_AARCH64_ADD_ABS_LO12_NC"),
            (
                elf::R_AARCH64_LDST8_ABS_LO12_NC,
                "R_AARCH64_LDST8_ABS_LO12_NC",
            ),
            (
                elf::R_AARCH64_LDST16_ABS_LO12_NC,
                "R_AARCH64_LDST16_ABS_LO12_NC",
            ),
            (
                elf::R_AARCH64_LDST32_ABS_LO12_NC,
                "R_AARCH64_LDST32_ABS_LO12_NC",
            ),
            (
                elf::R_AARCH64_LDST64_ABS_LO12_NC,
                "R_AARCH64_LDST64_ABS_LO12_NC",
            ),
            (
                elf::R_AARCH64_LDST128_ABS_LO12_NC,
                "R_AARCH64_LDST128_ABS_LO12_NC",
            ),
            (elf::R_AARCH64_JUMP26, "R_AARCH64_JUMP26"),
            (elf::R_AARCH64_CALL26, "R_AARCH64_CALL26"),
            (elf::R_AARCH64_ADR_GOT_PAGE, "R_AARCH64_ADR_GOT_PAGE"),
            (
                elf::R_AARCH64_LD64_GOT_LO12_NC,
                "R_AARCH64_LD64_GOT_LO12_NC",
            ),
        ],
        _ => &[],
    };
    table
        .iter()
        .find(|(t, _)| *t == r_type)
        .map(|(_, n)| (*n).to_string())
        .unwrap_or_else(|| format!("type {r_type}"))
}

/// The addend a REL entry keeps in the relocated bytes, for the REL
/// architectures whose encoding is a plain word (i386). `None` when the
/// encoding is not known here; the converter then refuses the entry.
pub fn rel_implicit_addend(
    machine: u16,
    r_type: u32,
    bytes: &[u8],
    big_endian: bool,
) -> Option<i64> {
    let width = match (machine, r_type) {
        (elf::EM_386, elf::R_386_32 | elf::R_386_PC32 | elf::R_386_PLT32 | elf::R_386_GOTOFF) => 4,
        _ => return None,
    };
    let b: [u8; 4] = bytes.get(..width)?.try_into().ok()?;
    let v = if big_endian {
        i32::from_be_bytes(b)
    } else {
        i32::from_le_bytes(b)
    };
    Some(i64::from(v))
}

/// Sections whose contents the module loader (or its `module_finalize`)
/// consumes once, at load time. A relocation into them that is applied later,
/// when a patched module loads, is never seen.
pub const SPECIAL_SECTIONS: &[&str] = &[
    ".altinstructions",
    ".altinstr_replacement",
    ".altinstr_aux",
    ".parainstructions",
    "__jump_table",
    ".static_call_sites",
    ".static_call.text",
    ".smp_locks",
    "__bug_table",
    "__ex_table",
    ".orc_unwind",
    ".orc_unwind_ip",
    ".orc_header",
    ".retpoline_sites",
    ".return_sites",
    ".call_sites",
    ".ibt_endbr_seal",
    ".kcfi_traps",
    "__mcount_loc",
    "__patchable_function_entries",
    "__ftr_fixup",
    "__mmu_ftr_fixup",
    "__fw_ftr_fixup",
    "__lwsync_fixup",
    ".nospec_call_table",
    ".nospec_return_table",
    "__tracepoints_ptrs",
    "__ksymtab",
    "__ksymtab_gpl",
    "__kcrctab",
    "__kcrctab_gpl",
    "__param",
    ".init_array",
    ".ctors",
];

/// Is `name` one of the [`SPECIAL_SECTIONS`]?
pub fn is_special_section(name: &[u8]) -> bool {
    SPECIAL_SECTIONS.iter().any(|s| s.as_bytes() == name)
}

/// Is `name` freed after module init (`.init.*`, `.exit.*` is kept)?
pub fn is_init_section(name: &[u8]) -> bool {
    name.starts_with(b".init.") || name == b".init"
}

/// Is `name` a debug section, which the loader never relocates?
pub fn is_debug_section(name: &[u8]) -> bool {
    name.starts_with(b".debug_") || name.starts_with(b".zdebug_")
}
