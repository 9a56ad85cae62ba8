//! s390x's `apply_relocate_add` (arch/s390/kernel/module.c): the direct,
//! PC-relative, GOT and PLT families; no zero-target check. Late relocations
//! are written with `s390_kernel_write()` since 5.8. A GOT or PLT entry is
//! written once per symbol, so a module-specific one goes stale when its
//! module comes back at another address (`s390-got-stale`).

use super::Loader;
use crate::elf::{abi, Elf};
use crate::finding::{Finding, Rule};

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
        (abi::R_390_GOT16, "R_390_GOT16"),
        (abi::R_390_GOT32, "R_390_GOT32"),
        (abi::R_390_GOT64, "R_390_GOT64"),
        (abi::R_390_GOTPLT12, "R_390_GOTPLT12"),
        (abi::R_390_GOTPLT16, "R_390_GOTPLT16"),
        (abi::R_390_GOTPLT20, "R_390_GOTPLT20"),
        (abi::R_390_GOTPLT32, "R_390_GOTPLT32"),
        (abi::R_390_GOTPLT64, "R_390_GOTPLT64"),
        (abi::R_390_PLT16DBL, "R_390_PLT16DBL"),
        (abi::R_390_PLT32, "R_390_PLT32"),
        (abi::R_390_PLTOFF16, "R_390_PLTOFF16"),
        (abi::R_390_PLTOFF32, "R_390_PLTOFF32"),
        (abi::R_390_PLTOFF64, "R_390_PLTOFF64"),
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
    module_rule: Some(|e, _| got_stale(e).into_iter().collect()),
    late_writes_patched_since: Some((5, 8)),
    late_writes_note: "s390 writes late relocations with s390_kernel_write() since 5.8",
    late_write_helper: |_| true,
};

/// Types that go through the module's GOT: `apply_rela` writes the symbol's
/// GOT entry only while `syminfo[sym].got_initialized` is 0.
fn through_got(t: u32) -> bool {
    matches!(
        t,
        abi::R_390_GOT12
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
    )
}

/// Types that go through the module's PLT: `apply_rela` writes the entry
/// only while `plt_initialized` is 0. `PLT32DBL` is left out: the module
/// area is 2 GiB, within its ±4 GiB reach, so it branches to the symbol
/// directly and is recomputed on every application.
fn through_plt(t: u32) -> bool {
    matches!(
        t,
        abi::R_390_PLT16DBL
            | abi::R_390_PLT32
            | abi::R_390_PLT64
            | abi::R_390_PLTOFF16
            | abi::R_390_PLTOFF32
            | abi::R_390_PLTOFF64
    )
}

/// s390's `apply_rela` (arch/s390/kernel/module.c, 6.1 to 7.2) writes a
/// symbol's GOT or PLT entry once: only while `got_initialized` or
/// `plt_initialized` is 0, flags in the livepatch module's `syminfo`, which
/// lives as long as the module. s390 has no `clear_relocate_add`, so when
/// the patched module unloads nothing is cleared, and when it loads again
/// `klp_apply_object_relocs` resolves the klp symbol to its new address but
/// leaves the entry as it was: the patched code loads the old address
/// through it. Seen on an s390x 6.1 built from Debian's source
/// (`tests/kernel_xarch.rs`, step 12). vmlinux symbols never move, so only
/// module-specific sections count.
pub(crate) fn got_stale(elf: &Elf) -> Option<Finding> {
    let (objs, list) =
        super::module_specific_entries(elf, |_| true, |t| through_got(t) || through_plt(t))?;
    Some(Finding::new(
        Rule::S390GotStale,
        format!(
            "s390 writes a GOT or PLT entry once and never again ({}): if '{}' is unloaded and loaded again at another address while this patch stays enabled, the patched code still goes through the old entry, to the old address: it reads what another module has there by then, or faults (both seen on s390x 6.1). Declare those symbols __attribute__((visibility(\"hidden\"))) in the livepatch, so that GCC reaches them relative to the module (R_390_GOTOFF64, R_390_PC32DBL) rather than through a GOT entry, and the loader recomputes them on every application; or never reload that module while the patch is enabled",
            list.join(", "),
            objs.join("', '")
        ),
    ))
}

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
