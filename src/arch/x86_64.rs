//! x86_64's `apply_relocate_add` (arch/x86/kernel/module.c): the types it
//! handles, and its refusal to write over non-zero bytes. Since 5.8 late
//! relocations go through `text_poke`, so read-only targets are fine.

use super::{Loader, Site};
use crate::elf::abi;
use crate::finding::{Finding, Rule};

/// The x86_64 loader.
pub(super) const LOADER: Loader = Loader {
    name: "x86_64",
    names: &[
        (abi::R_X86_64_NONE, "R_X86_64_NONE"),
        (abi::R_X86_64_64, "R_X86_64_64"),
        (abi::R_X86_64_PC32, "R_X86_64_PC32"),
        (abi::R_X86_64_GOT32, "R_X86_64_GOT32"),
        (abi::R_X86_64_PLT32, "R_X86_64_PLT32"),
        (abi::R_X86_64_GOTPCREL, "R_X86_64_GOTPCREL"),
        (abi::R_X86_64_32, "R_X86_64_32"),
        (abi::R_X86_64_32S, "R_X86_64_32S"),
        (abi::R_X86_64_PC64, "R_X86_64_PC64"),
        (abi::R_X86_64_GOTPCRELX, "R_X86_64_GOTPCRELX"),
        (abi::R_X86_64_REX_GOTPCRELX, "R_X86_64_REX_GOTPCRELX"),
    ],
    supported,
    refusal: |t| format!("Unknown rela relocation: {t}"),
    absolute_field: |t| match t {
        abi::R_X86_64_32S => Some((32, true, false)),
        abi::R_X86_64_32 => Some((32, false, true)),
        _ => None,
    },
    // PC32/PLT32 are checked for overflow; modules are within 2 GiB of vmlinux.
    pc_overflow_refused: false,
    pc_reach: |t| matches!(t, abi::R_X86_64_PC32 | abi::R_X86_64_PLT32).then_some(1 << 31),
    none: &[abi::R_X86_64_NONE],
    check_entry: target_nonzero,
    module_rule: None,
    late_writes_patched_since: Some((5, 8)),
    late_writes_note: "x86_64 writes late relocations with text_poke() since 5.8",
    late_write_helper: |_| true,
};

fn supported(t: u32) -> bool {
    matches!(
        t,
        abi::R_X86_64_NONE
            | abi::R_X86_64_64
            | abi::R_X86_64_PC32
            | abi::R_X86_64_PLT32
            | abi::R_X86_64_32
            | abi::R_X86_64_32S
            | abi::R_X86_64_PC64
    )
}

/// x86_64 writes a klp relocation only over zero bytes ("Invalid relocation
/// target, existing value is nonzero").
fn target_nonzero(site: &Site) -> Option<Finding> {
    let r = site.reloc;
    let width = match r.r_type {
        abi::R_X86_64_64 | abi::R_X86_64_PC64 => 8,
        abi::R_X86_64_NONE => return None,
        _ => 4,
    };
    let at = usize::try_from(r.offset).ok()?;
    let field = site.bytes.get(at..at.checked_add(width)?)?;
    if field.iter().all(|b| *b == 0) {
        return None;
    }
    let mut value = 0u64;
    for b in field.iter().rev() {
        value = (value << 8) | u64::from(*b);
    }
    Some(Finding::new(
        Rule::X86TargetNonzero,
        format!(
            "Invalid relocation target, existing value is nonzero for type {} ({}), val 0x{value:x}: the x86_64 loader refuses to write over it",
            r.r_type,
            super::reloc_type_name(abi::EM_X86_64, r.r_type)
        ),
    ))
}
