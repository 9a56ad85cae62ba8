//! s390x's `apply_relocate_add` (arch/s390/kernel/module.c): the direct,
//! PC-relative, GOT and PLT families; no zero-target check. Late relocations
//! are written with `s390_kernel_write()` since 5.8.

use super::Loader;
use crate::elf::abi;

/// The s390x loader.
pub(super) const LOADER: Loader = Loader {
    name: "s390",
    names: &[
        (abi::R_390_NONE, "R_390_NONE"),
        (abi::R_390_32, "R_390_32"),
        (abi::R_390_PC32, "R_390_PC32"),
        (abi::R_390_64, "R_390_64"),
        (abi::R_390_PC64, "R_390_PC64"),
        (abi::R_390_PC16DBL, "R_390_PC16DBL"),
        (abi::R_390_PC32DBL, "R_390_PC32DBL"),
        (abi::R_390_PLT32DBL, "R_390_PLT32DBL"),
        (abi::R_390_PLT64, "R_390_PLT64"),
        (abi::R_390_GOTENT, "R_390_GOTENT"),
        (abi::R_390_GOTPCDBL, "R_390_GOTPCDBL"),
        (abi::R_390_GOT12, "R_390_GOT12"),
        (abi::R_390_GOT20, "R_390_GOT20"),
        (abi::R_390_GOTPLTENT, "R_390_GOTPLTENT"),
    ],
    supported,
    refusal: |t| format!("unknown relocation: {t}"),
    absolute_field: |t| match t {
        abi::R_390_32 => Some((32, false, true)),
        abi::R_390_16 => Some((16, false, true)),
        abi::R_390_8 => Some((8, false, true)),
        abi::R_390_12 => Some((12, false, true)),
        abi::R_390_20 => Some((20, true, false)),
        _ => None,
    },
    // PLT and GOT types go through the module's own tables; the direct
    // PC-relative ones are checked.
    pc_overflow_refused: true,
    pc_reach: |t| match t {
        abi::R_390_PC32DBL => Some(1 << 32),
        abi::R_390_PC32 => Some(1 << 31),
        abi::R_390_PC16DBL => Some(1 << 16),
        abi::R_390_PC16 => Some(1 << 15),
        _ => None,
    },
    none: &[abi::R_390_NONE],
    check_entry: |_| None,
    module_rule: None,
    late_writes_patched_since: Some((5, 8)),
    late_writes_note: "s390 writes late relocations with s390_kernel_write() since 5.8",
};

fn supported(t: u32) -> bool {
    matches!(
        t,
        abi::R_390_NONE
            | abi::R_390_8
            | abi::R_390_12
            | abi::R_390_16
            | abi::R_390_20
            | abi::R_390_32
            | abi::R_390_64
            | abi::R_390_PC16
            | abi::R_390_PC16DBL
            | abi::R_390_PC32DBL
            | abi::R_390_PC32
            | abi::R_390_PC64
            | abi::R_390_GOT12
            | abi::R_390_GOT16
            | abi::R_390_GOT20
            | abi::R_390_GOT32
            | abi::R_390_GOT64
            | abi::R_390_GOTENT
            | abi::R_390_GOTPLT12
            | abi::R_390_GOTPLT16
            | abi::R_390_GOTPLT20
            | abi::R_390_GOTPLT32
            | abi::R_390_GOTPLT64
            | abi::R_390_GOTPLTENT
            | abi::R_390_PLT16DBL
            | abi::R_390_PLT32DBL
            | abi::R_390_PLT32
            | abi::R_390_PLT64
            | abi::R_390_PLTOFF16
            | abi::R_390_PLTOFF32
            | abi::R_390_PLTOFF64
            | abi::R_390_GOTOFF16
            | abi::R_390_GOTOFF32
            | abi::R_390_GOTOFF64
            | abi::R_390_GOTPC
            | abi::R_390_GOTPCDBL
    )
}
