//! arm64's `apply_relocate_add` (arch/arm64/kernel/module.c): ABS/PREL
//! data, MOVW, LO12, ADRP, CALL26/JUMP26 with the PLT fallback, and the PLT
//! sections the loader sizes (counting klp relocations too). Livepatch on
//! arm64 arrived with Linux 7.x, with late relocations written through
//! `aarch64_insn_copy()`.

use super::Loader;
use crate::elf::{abi, Elf};
use crate::finding::{Finding, Rule};

/// The arm64 loader.
pub(super) const LOADER: Loader = Loader {
    name: "aarch64",
    names: &[
        (abi::R_AARCH64_NONE, "R_AARCH64_NONE"),
        (abi::R_AARCH64_ABS64, "R_AARCH64_ABS64"),
        (abi::R_AARCH64_ABS32, "R_AARCH64_ABS32"),
        (abi::R_AARCH64_PREL64, "R_AARCH64_PREL64"),
        (abi::R_AARCH64_PREL32, "R_AARCH64_PREL32"),
        (
            abi::R_AARCH64_ADR_PREL_PG_HI21,
            "R_AARCH64_ADR_PREL_PG_HI21",
        ),
        (abi::R_AARCH64_ADD_ABS_LO12_NC, "R_AARCH64_ADD_ABS_LO12_NC"),
        (
            abi::R_AARCH64_LDST8_ABS_LO12_NC,
            "R_AARCH64_LDST8_ABS_LO12_NC",
        ),
        (
            abi::R_AARCH64_LDST16_ABS_LO12_NC,
            "R_AARCH64_LDST16_ABS_LO12_NC",
        ),
        (
            abi::R_AARCH64_LDST32_ABS_LO12_NC,
            "R_AARCH64_LDST32_ABS_LO12_NC",
        ),
        (
            abi::R_AARCH64_LDST64_ABS_LO12_NC,
            "R_AARCH64_LDST64_ABS_LO12_NC",
        ),
        (
            abi::R_AARCH64_LDST128_ABS_LO12_NC,
            "R_AARCH64_LDST128_ABS_LO12_NC",
        ),
        (abi::R_AARCH64_JUMP26, "R_AARCH64_JUMP26"),
        (abi::R_AARCH64_CALL26, "R_AARCH64_CALL26"),
        (abi::R_AARCH64_ADR_GOT_PAGE, "R_AARCH64_ADR_GOT_PAGE"),
        (
            abi::R_AARCH64_LD64_GOT_LO12_NC,
            "R_AARCH64_LD64_GOT_LO12_NC",
        ),
    ],
    supported,
    refusal: |t| format!("unsupported RELA relocation: {t}"),
    // arm64 checks ABS32/ABS16 against S*_MIN..U*_MAX.
    absolute_field: |t| match t {
        abi::R_AARCH64_ABS32 => Some((32, true, true)),
        abi::R_AARCH64_ABS16 => Some((16, true, true)),
        _ => None,
    },
    // CALL26/JUMP26 fall back to a PLT entry (sized counting klp
    // relocations too); the other PC-relative types are checked.
    pc_overflow_refused: true,
    pc_reach: |t| match t {
        abi::R_AARCH64_ADR_PREL_PG_HI21 => Some(1 << 32),
        abi::R_AARCH64_PREL32 => Some(1 << 31),
        abi::R_AARCH64_ADR_PREL_LO21
        | abi::R_AARCH64_LD_PREL_LO19
        | abi::R_AARCH64_CONDBR19 => Some(1 << 20),
        abi::R_AARCH64_PREL16 | abi::R_AARCH64_TSTBR14 => Some(1 << 15),
        _ => None,
    },
    // `apply_relocate_add` takes 0 and 256 alike (R_AARCH64_NONE_KERNEL).
    none: &[abi::R_AARCH64_NONE, R_AARCH64_NONE_KERNEL],
    check_entry: |_| None,
    module_rule: Some(|e, _| plt(e).into_iter().collect()),
    late_writes_patched_since: Some((7, 0)),
    late_writes_note: "arm64 writes late relocations through aarch64_insn_copy() (WRITE_PLACE) in the kernels that patch it live (verified on 7.2; earlier arm64 livepatch ports faulted: \"Unable to handle kernel write to read-only memory\")",
    late_write_helper: |_| true,
};

/// A linked module without `.plt`/`.init.plt`: the loader refuses it.
fn plt(elf: &Elf) -> Option<Finding> {
    let missing = [&b".plt"[..], b".init.plt"]
        .iter()
        .any(|n| elf.section_by_name(n).is_none());
    if !super::is_linked_module(elf) || !missing {
        return None;
    }
    Some(Finding::new(
        Rule::Arm64Plt,
        "module PLT section(s) missing (.plt, .init.plt): the arm64 loader refuses the module; calls out of branch range go through the PLT, which is sized counting the klp relocations too",
    ))
}

/// The kernel's `R_AARCH64_NONE` (asm/elf.h) is 256, the ELF ABI's
/// withdrawn code; `apply_relocate_add` takes it and `R_ARM_NONE`, 0 (the
/// ABI's `R_AARCH64_NONE`), alike.
const R_AARCH64_NONE_KERNEL: u32 = 256;

fn supported(t: u32) -> bool {
    matches!(
        t,
        abi::R_AARCH64_NONE
            | R_AARCH64_NONE_KERNEL
            | abi::R_AARCH64_ABS64
            | abi::R_AARCH64_ABS32
            | abi::R_AARCH64_ABS16
            | abi::R_AARCH64_PREL64
            | abi::R_AARCH64_PREL32
            | abi::R_AARCH64_PREL16
            | abi::R_AARCH64_MOVW_UABS_G0
            | abi::R_AARCH64_MOVW_UABS_G0_NC
            | abi::R_AARCH64_MOVW_UABS_G1
            | abi::R_AARCH64_MOVW_UABS_G1_NC
            | abi::R_AARCH64_MOVW_UABS_G2
            | abi::R_AARCH64_MOVW_UABS_G2_NC
            | abi::R_AARCH64_MOVW_UABS_G3
            | abi::R_AARCH64_MOVW_SABS_G0
            | abi::R_AARCH64_MOVW_SABS_G1
            | abi::R_AARCH64_MOVW_SABS_G2
            | abi::R_AARCH64_MOVW_PREL_G0
            | abi::R_AARCH64_MOVW_PREL_G0_NC
            | abi::R_AARCH64_MOVW_PREL_G1
            | abi::R_AARCH64_MOVW_PREL_G1_NC
            | abi::R_AARCH64_MOVW_PREL_G2
            | abi::R_AARCH64_MOVW_PREL_G2_NC
            | abi::R_AARCH64_MOVW_PREL_G3
            | abi::R_AARCH64_LD_PREL_LO19
            | abi::R_AARCH64_ADR_PREL_LO21
            | abi::R_AARCH64_ADR_PREL_PG_HI21
            | abi::R_AARCH64_ADR_PREL_PG_HI21_NC
            | abi::R_AARCH64_ADD_ABS_LO12_NC
            | abi::R_AARCH64_LDST8_ABS_LO12_NC
            | abi::R_AARCH64_LDST16_ABS_LO12_NC
            | abi::R_AARCH64_LDST32_ABS_LO12_NC
            | abi::R_AARCH64_LDST64_ABS_LO12_NC
            | abi::R_AARCH64_LDST128_ABS_LO12_NC
            | abi::R_AARCH64_TSTBR14
            | abi::R_AARCH64_CONDBR19
            | abi::R_AARCH64_JUMP26
            | abi::R_AARCH64_CALL26
    )
}
