//! Architecture loader rules: what each kernel's `apply_relocate_add` does
//! with a klp relocation, read from the loaders (arch/*/kernel/module*.c) and
//! restated here as checks. Address-dependent rules (ranges, overflow) need
//! the resolved symbol addresses and are not checked here.

use object::elf;

use crate::arch;
use crate::diag::Problem;
use crate::elf::{Elf, Reloc, Section, SHF_RELA_LIVEPATCH};
use crate::names;

/// `nop` on Power.
const PPC_NOP: u32 = 0x6000_0000;
/// `ld r2,24(r1)`: the TOC restore the loader writes over the nop.
const PPC_LD_TOC: u32 = 0xe841_0018;

/// Every loader finding for the klp relocations of `elf`.
pub fn rules(elf: &Elf) -> Vec<Problem> {
    let mut out = Vec::new();
    let supported: fn(u32) -> bool = match elf.machine {
        elf::EM_X86_64 => x86_64_supported,
        elf::EM_PPC64 => ppc64_supported,
        elf::EM_S390 => s390_supported,
        elf::EM_AARCH64 => aarch64_supported,
        m => {
            let has_klp = elf
                .sections
                .iter()
                .any(|s| s.sh_flags & SHF_RELA_LIVEPATCH != 0);
            if has_klp {
                out.push(Problem::note(format!(
                    "loader rules for {} are not modelled: only the structural rules were checked",
                    arch::machine_name(m)
                )));
            }
            return out;
        }
    };
    if elf.machine == elf::EM_PPC64
        && is_linked_module(elf)
        && elf.section_by_name(b".stubs").is_none()
    {
        out.push(Problem::error(
            "no .stubs section: the ppc64 loader refuses the module (it routes calls to other objects through stubs there)",
        ));
    }
    let missing_plt = [&b".plt"[..], b".init.plt"]
        .iter()
        .any(|n| elf.section_by_name(n).is_none());
    if elf.machine == elf::EM_AARCH64 && is_linked_module(elf) && missing_plt {
        out.push(Problem::error(
            "module PLT section(s) missing (.plt, .init.plt): the arm64 loader refuses the module; calls out of branch range go through the PLT, which is sized counting the klp relocations too",
        ));
    }
    for rs in &elf.relocs {
        let sec = &elf.sections[rs.index];
        if sec.sh_flags & SHF_RELA_LIVEPATCH == 0 {
            continue;
        }
        let Some(target) = elf.sections.get(sec.sh_info as usize) else {
            continue;
        };
        let bytes = elf.section_data(target.index);
        for r in &rs.entries {
            let sym = &elf.symbols[r.sym as usize];
            let at = |p: Problem| {
                p.in_section(sec.display_name())
                    .at(r.offset)
                    .symbol(sym.display_name())
            };
            if !supported(r.r_type) {
                out.push(at(Problem::error(unsupported_message(
                    elf.machine,
                    r.r_type,
                ))));
                continue;
            }
            match elf.machine {
                elf::EM_X86_64 => {
                    if let Some(p) = x86_64_target_nonzero(bytes, r) {
                        out.push(at(p));
                    }
                }
                elf::EM_PPC64 if r.r_type == elf::R_PPC64_REL24 => {
                    if let Some(p) = ppc64_nop_after_call(elf, target, bytes, r, sym.name) {
                        out.push(at(p));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The field of an absolute relocation, for the range check: (bits, signed
/// values accepted, unsigned values accepted).
fn absolute_field(machine: u16, r_type: u32) -> Option<(u32, bool, bool)> {
    Some(match (machine, r_type) {
        (elf::EM_X86_64, elf::R_X86_64_32S) => (32, true, false),
        (elf::EM_X86_64, elf::R_X86_64_32) => (32, false, true),
        // arm64 checks ABS32/ABS16 against S*_MIN..U*_MAX.
        (elf::EM_AARCH64, elf::R_AARCH64_ABS32) => (32, true, true),
        (elf::EM_AARCH64, elf::R_AARCH64_ABS16) => (16, true, true),
        (elf::EM_S390, elf::R_390_32) => (32, false, true),
        (elf::EM_S390, elf::R_390_16) => (16, false, true),
        (elf::EM_S390, elf::R_390_8) => (8, false, true),
        (elf::EM_S390, elf::R_390_12) => (12, false, true),
        (elf::EM_S390, elf::R_390_20) => (20, true, false),
        // ppc64 stores ADDR32 without a check: a wider value is truncated.
        (elf::EM_PPC64, elf::R_PPC64_ADDR32) => (32, false, true),
        _ => return None,
    })
}

/// With the symbol's resolved address: absolute relocations whose value does
/// not fit their field ("overflow in relocation type %d val %Lx"; on ppc64
/// ADDR32 the loader silently truncates). PC-relative ranges depend on where
/// the module is loaded and are not checked.
pub fn absolute_overflow(elf: &Elf, uses: &[(usize, Reloc)], addr: u64) -> Vec<Problem> {
    let mut out = Vec::new();
    for (section, r) in uses {
        let Some((bits, signed, unsigned)) = absolute_field(elf.machine, r.r_type) else {
            continue;
        };
        let value = addr.wrapping_add(r.addend as u64);
        let v = value as i64;
        let fits_signed = signed && v >= -(1i64 << (bits - 1)) && v < (1i64 << (bits - 1));
        let fits_unsigned = unsigned && value < (1u64 << bits);
        if fits_signed || fits_unsigned {
            continue;
        }
        let how = if elf.machine == elf::EM_PPC64 {
            "the ppc64 loader stores it truncated, without an error"
        } else {
            "the loader refuses the module"
        };
        out.push(
            Problem::error(format!(
                "overflow in relocation type {} val {value:x}: {} cannot hold the resolved address; {how}",
                r.r_type,
                arch::reloc_type_name(elf.machine, r.r_type)
            ))
            .in_section(elf.section_name(*section))
            .at(r.offset)
            .symbol(elf.symbols[r.sym as usize].display_name()),
        );
    }
    out
}

/// A `.ko` linked by kbuild (rather than a bare object): it has the module
/// structure section.
fn is_linked_module(elf: &Elf) -> bool {
    elf.section_by_name(b".gnu.linkonce.this_module").is_some()
}

fn unsupported_message(machine: u16, r_type: u32) -> String {
    let name = arch::reloc_type_name(machine, r_type);
    let kernel = match machine {
        elf::EM_X86_64 => format!("Unknown rela relocation: {r_type}"),
        elf::EM_PPC64 => format!("Unknown ADD relocation: {r_type}"),
        elf::EM_S390 => format!("unknown relocation: {r_type}"),
        _ => format!("unsupported RELA relocation: {r_type}"),
    };
    let hint = if r_type == 0 {
        " (a relocation neutralised to type 0 must be deleted, not kept)"
    } else {
        ""
    };
    format!(
        "{kernel}: the {} loader does not handle {name}{hint}",
        arch::machine_name(machine)
    )
}

fn x86_64_supported(t: u32) -> bool {
    matches!(
        t,
        elf::R_X86_64_NONE
            | elf::R_X86_64_64
            | elf::R_X86_64_PC32
            | elf::R_X86_64_PLT32
            | elf::R_X86_64_32
            | elf::R_X86_64_32S
            | elf::R_X86_64_PC64
    )
}

/// x86_64 writes a klp relocation only over zero bytes ("Invalid relocation
/// target, existing value is nonzero").
fn x86_64_target_nonzero(bytes: &[u8], r: &Reloc) -> Option<Problem> {
    let width = match r.r_type {
        elf::R_X86_64_64 | elf::R_X86_64_PC64 => 8,
        elf::R_X86_64_NONE => return None,
        _ => 4,
    };
    let at = usize::try_from(r.offset).ok()?;
    let field = bytes.get(at..at.checked_add(width)?)?;
    if field.iter().all(|b| *b == 0) {
        return None;
    }
    let mut value = 0u64;
    for b in field.iter().rev() {
        value = (value << 8) | u64::from(*b);
    }
    Some(Problem::error(format!(
        "Invalid relocation target, existing value is nonzero for type {} ({}), val 0x{value:x}: the x86_64 loader refuses to write over it",
        r.r_type,
        arch::reloc_type_name(elf::EM_X86_64, r.r_type)
    )))
}

fn ppc64_supported(t: u32) -> bool {
    matches!(
        t,
        elf::R_PPC64_ADDR32
            | elf::R_PPC64_ADDR64
            | elf::R_PPC64_TOC
            | elf::R_PPC64_TOC16
            | elf::R_PPC64_TOC16_LO
            | elf::R_PPC64_TOC16_DS
            | elf::R_PPC64_TOC16_LO_DS
            | elf::R_PPC64_TOC16_HA
            | elf::R_PPC64_REL24
            | elf::R_PPC64_REL64
            | elf::R_PPC64_REL32
            | elf::R_PPC64_TOCSAVE
            | elf::R_PPC64_REL16_HA
            | elf::R_PPC64_REL16_LO
    ) || t == 118 // R_PPC64_ENTRY
}

/// The ppc64 loader sends a `bl` to a `SHN_LIVEPATCH` symbol through a stub
/// that switches the TOC, and then needs the next instruction to be a `nop`
/// it can turn into `ld r2,24(r1)`. GCC emits that nop only for calls it
/// believed to leave the file.
fn ppc64_nop_after_call(
    elf: &Elf,
    target: &Section,
    bytes: &[u8],
    r: &Reloc,
    sym_name: &[u8],
) -> Option<Problem> {
    let at = usize::try_from(r.offset).ok()?;
    let word = |i: usize| -> Option<u32> {
        let b = bytes.get(i..i.checked_add(4)?)?;
        Some(elf.read_uint(b) as u32)
    };
    let insn = word(at)?;
    // Primary opcode 18 (b), AA = 0, LK = 1: a relative call. A sibling call
    // (`b`, no link) never returns here and needs no TOC restore.
    let is_call = insn >> 26 == 18 && insn & 3 == 1;
    let klp_name = names::parse_klp_symbol(sym_name).ok()?;
    if !is_call || klp_name.name == "_mcount" {
        return None;
    }
    let next = word(at + 4).unwrap_or(0);
    if next == PPC_NOP || next == PPC_LD_TOC {
        return None;
    }
    // Like the kernel, name the instruction after the call.
    let place = match containing_function(elf, target.index, r.offset + 4) {
        Some((func, off)) => format!("{func}+0x{off:x}"),
        None => format!("{}+0x{:x}", target.display_name(), r.offset + 4),
    };
    Some(Problem::error(format!(
        "Expected nop after call, got {next:08x} at {place}: the call to '{}' was compiled as a local call (the callee was defined in the same file, so GCC left no nop for the TOC restore) and the ppc64 loader refuses it. Declare the callee extern in the livepatch (KLP_RELOC_SYMBOL on an extern declaration gets its nop) or call it through a function pointer",
        klp_name.name
    )))
}

/// The function symbol of `section` that contains `offset`, and the offset
/// into it. Only used to word a finding, so a linear scan is fine.
fn containing_function(elf: &Elf, section: usize, offset: u64) -> Option<(String, u64)> {
    elf.symbols
        .iter()
        .filter(|s| s.section as usize == section && s.kind() == elf::STT_FUNC)
        .filter(|s| s.st_value <= offset && offset < s.st_value + s.st_size.max(1))
        .map(|s| (s.display_name(), offset - s.st_value))
        .next()
}

fn s390_supported(t: u32) -> bool {
    matches!(
        t,
        elf::R_390_NONE
            | elf::R_390_8
            | elf::R_390_12
            | elf::R_390_16
            | elf::R_390_20
            | elf::R_390_32
            | elf::R_390_64
            | elf::R_390_PC16
            | elf::R_390_PC16DBL
            | elf::R_390_PC32DBL
            | elf::R_390_PC32
            | elf::R_390_PC64
            | elf::R_390_GOT12
            | elf::R_390_GOT16
            | elf::R_390_GOT20
            | elf::R_390_GOT32
            | elf::R_390_GOT64
            | elf::R_390_GOTENT
            | elf::R_390_GOTPLT12
            | elf::R_390_GOTPLT16
            | elf::R_390_GOTPLT20
            | elf::R_390_GOTPLT32
            | elf::R_390_GOTPLT64
            | elf::R_390_GOTPLTENT
            | elf::R_390_PLT16DBL
            | elf::R_390_PLT32DBL
            | elf::R_390_PLT32
            | elf::R_390_PLT64
            | elf::R_390_PLTOFF16
            | elf::R_390_PLTOFF32
            | elf::R_390_PLTOFF64
            | elf::R_390_GOTOFF16
            | elf::R_390_GOTOFF32
            | elf::R_390_GOTOFF64
            | elf::R_390_GOTPC
            | elf::R_390_GOTPCDBL
    )
}

fn aarch64_supported(t: u32) -> bool {
    matches!(
        t,
        elf::R_AARCH64_NONE
            | elf::R_AARCH64_ABS64
            | elf::R_AARCH64_ABS32
            | elf::R_AARCH64_ABS16
            | elf::R_AARCH64_PREL64
            | elf::R_AARCH64_PREL32
            | elf::R_AARCH64_PREL16
            | elf::R_AARCH64_MOVW_UABS_G0
            | elf::R_AARCH64_MOVW_UABS_G0_NC
            | elf::R_AARCH64_MOVW_UABS_G1
            | elf::R_AARCH64_MOVW_UABS_G1_NC
            | elf::R_AARCH64_MOVW_UABS_G2
            | elf::R_AARCH64_MOVW_UABS_G2_NC
            | elf::R_AARCH64_MOVW_UABS_G3
            | elf::R_AARCH64_MOVW_SABS_G0
            | elf::R_AARCH64_MOVW_SABS_G1
            | elf::R_AARCH64_MOVW_SABS_G2
            | elf::R_AARCH64_MOVW_PREL_G0
            | elf::R_AARCH64_MOVW_PREL_G0_NC
            | elf::R_AARCH64_MOVW_PREL_G1
            | elf::R_AARCH64_MOVW_PREL_G1_NC
            | elf::R_AARCH64_MOVW_PREL_G2
            | elf::R_AARCH64_MOVW_PREL_G2_NC
            | elf::R_AARCH64_MOVW_PREL_G3
            | elf::R_AARCH64_LD_PREL_LO19
            | elf::R_AARCH64_ADR_PREL_LO21
            | elf::R_AARCH64_ADR_PREL_PG_HI21
            | elf::R_AARCH64_ADR_PREL_PG_HI21_NC
            | elf::R_AARCH64_ADD_ABS_LO12_NC
            | elf::R_AARCH64_LDST8_ABS_LO12_NC
            | elf::R_AARCH64_LDST16_ABS_LO12_NC
            | elf::R_AARCH64_LDST32_ABS_LO12_NC
            | elf::R_AARCH64_LDST64_ABS_LO12_NC
            | elf::R_AARCH64_LDST128_ABS_LO12_NC
            | elf::R_AARCH64_TSTBR14
            | elf::R_AARCH64_CONDBR19
            | elf::R_AARCH64_JUMP26
            | elf::R_AARCH64_CALL26
    )
}
