//! ppc64's `apply_relocate_add` (arch/powerpc/kernel/module_64.c): the
//! types it handles, the `.stubs` section it needs, and the nop it expects
//! after every call routed through a stub (the seed's "Expected nop after
//! call" case, `docs/klp-contract.md` §7).

use super::{Loader, Site};
use crate::elf::{abi, Elf, R_PPC64_ENTRY};
use crate::finding::{Finding, Rule};
use crate::names;

/// `nop` on Power.
const PPC_NOP: u32 = 0x6000_0000;
/// `ld r2,24(r1)`: the TOC restore the loader writes over the nop.
const PPC_LD_TOC: u32 = 0xe841_0018;
/// `R_PPC64_REL24_NOTOC` (not in `object` 0.36).
const R_PPC64_REL24_NOTOC: u32 = 116;
/// `R_PPC64_PCREL34` (not in `object` 0.36).
const R_PPC64_PCREL34: u32 = 132;
/// `R_PPC64_GOT_PCREL34` (not in `object` 0.36).
const R_PPC64_GOT_PCREL34: u32 = 133;

/// The ppc64 loader.
pub(super) const LOADER: Loader = Loader {
    name: "ppc64",
    names: &[
        (abi::R_PPC64_NONE, "R_PPC64_NONE"),
        (abi::R_PPC64_ADDR32, "R_PPC64_ADDR32"),
        (abi::R_PPC64_REL24, "R_PPC64_REL24"),
        (abi::R_PPC64_REL32, "R_PPC64_REL32"),
        (abi::R_PPC64_ADDR64, "R_PPC64_ADDR64"),
        (abi::R_PPC64_REL64, "R_PPC64_REL64"),
        (abi::R_PPC64_TOC16, "R_PPC64_TOC16"),
        (abi::R_PPC64_TOC16_LO, "R_PPC64_TOC16_LO"),
        (abi::R_PPC64_TOC16_HA, "R_PPC64_TOC16_HA"),
        (abi::R_PPC64_TOC16_DS, "R_PPC64_TOC16_DS"),
        (abi::R_PPC64_TOC16_LO_DS, "R_PPC64_TOC16_LO_DS"),
        (abi::R_PPC64_TOC, "R_PPC64_TOC"),
        (abi::R_PPC64_REL16_LO, "R_PPC64_REL16_LO"),
        (abi::R_PPC64_REL16_HA, "R_PPC64_REL16_HA"),
        (R_PPC64_ENTRY, "R_PPC64_ENTRY"),
        (abi::R_PPC64_ADDR16_LO, "R_PPC64_ADDR16_LO"),
        (abi::R_PPC64_ADDR16_HA, "R_PPC64_ADDR16_HA"),
        (R_PPC64_REL24_NOTOC, "R_PPC64_REL24_NOTOC"),
        (R_PPC64_PCREL34, "R_PPC64_PCREL34"),
        (R_PPC64_GOT_PCREL34, "R_PPC64_GOT_PCREL34"),
    ],
    supported,
    refusal: |t| format!("Unknown ADD relocation: {t}"),
    // ppc64 stores ADDR32 without a check: a wider value is truncated.
    absolute_field: |t| (t == abi::R_PPC64_ADDR32).then_some((32, false, true)),
    // Modules live anywhere in vmalloc space: calls go through stubs, data
    // through the TOC; a range from the kernel image says nothing.
    pc_overflow_refused: true,
    pc_reach: |_| None,
    none: &[],
    check_entry: |site| nop_after_call(site).or_else(|| toc16(site)),
    module_rule: Some(|e, _| stubs(e).into_iter().collect()),
    late_writes_patched_since: Some((5, 16)),
    late_writes_note: "ppc64 writes late calls (R_PPC64_REL24) with patch_instruction() since 5.16 (before, this crashed on kernels with STRICT_MODULE_RWX)",
    late_write_helper,
};

/// ppc64's `apply_relocate_add` (module_64.c, 6.1 to 7.2) writes a call
/// (`R_PPC64_REL24`, and the TOC restore after it) with `patch_instruction`,
/// and every other type with a plain store: `ADDR32`, `ADDR64`, `TOC`,
/// `REL32`, `REL64`, the `TOC16` family. A late one into memory that is
/// read-only by then faults (`late-reloc-read-only`).
fn late_write_helper(t: u32) -> bool {
    t == abi::R_PPC64_REL24
}

fn supported(t: u32) -> bool {
    matches!(
        t,
        abi::R_PPC64_ADDR32
            | abi::R_PPC64_ADDR64
            | abi::R_PPC64_TOC
            | abi::R_PPC64_TOC16
            | abi::R_PPC64_TOC16_LO
            | abi::R_PPC64_TOC16_DS
            | abi::R_PPC64_TOC16_LO_DS
            | abi::R_PPC64_TOC16_HA
            | abi::R_PPC64_REL24
            | abi::R_PPC64_REL64
            | abi::R_PPC64_REL32
            | abi::R_PPC64_TOCSAVE
            | abi::R_PPC64_REL16_HA
            | abi::R_PPC64_REL16_LO
            | R_PPC64_ENTRY
    )
}

/// A linked module without `.stubs`: the loader refuses it.
fn stubs(elf: &Elf) -> Option<Finding> {
    if !super::is_linked_module(elf) || elf.section_by_name(b".stubs").is_some() {
        return None;
    }
    Some(Finding::new(
        Rule::Ppc64Stubs,
        "no .stubs section: the ppc64 loader refuses the module (it routes calls to other objects through stubs there)",
    ))
}

/// The ppc64 loader sends a `bl` to a `SHN_LIVEPATCH` symbol through a stub
/// that switches the TOC, and then needs the next instruction to be a `nop`
/// it can turn into `ld r2,24(r1)`. GCC emits that nop only for calls it
/// believed to leave the file. The words are read in the module's byte
/// order, as the loader reads them in the kernel's (`tests/multiarch.rs`
/// refuses a local call on both: read the other way, a `bl` is no call).
fn nop_after_call(site: &Site) -> Option<Finding> {
    let (elf, r) = (site.elf, site.reloc);
    if r.r_type != abi::R_PPC64_REL24 {
        return None;
    }
    let at = usize::try_from(r.offset).ok()?;
    let word = |i: usize| -> Option<u32> {
        let b = site.bytes.get(i..i.checked_add(4)?)?;
        Some(elf.read_uint(b) as u32)
    };
    let insn = word(at)?;
    // Primary opcode 18 (b), AA = 0, LK = 1: a relative call. A sibling call
    // (`b`, no link) never returns here and needs no TOC restore.
    let is_call = insn >> 26 == 18 && insn & 3 == 1;
    // A klp symbol or an annotation by the name it resolves, another
    // object's by its own.
    let callee = target_of(site.symbol.name)
        .map_or_else(|| site.symbol.name.to_vec(), |k| k.name.into_owned());
    if !is_call || callee == b"_mcount" {
        return None;
    }
    let next = word(at + 4).unwrap_or(0);
    if next == PPC_NOP || next == PPC_LD_TOC {
        return None;
    }
    // Like the kernel, name the instruction after the call.
    let place = match containing_function(elf, site.target.index, r.offset + 4) {
        Some((func, off)) => format!("{func}+0x{off:x}"),
        None => format!("{}+0x{:x}", site.target.display_name(), r.offset + 4),
    };
    Some(Finding::new(
        Rule::Ppc64NopAfterCall,
        format!(
            "Expected nop after call, got {next:08x} at {place}: the call to '{}' was compiled as a local call (the callee was defined in the same file, so GCC left no nop for the TOC restore) and the ppc64 loader refuses it. Declare the callee extern in the livepatch (KLP_RELOC_SYMBOL on an extern declaration gets its nop) or call it through a function pointer",
            names::show(&callee)
        ),
    ))
}

/// The object and name a klp symbol names, or (while planning) an
/// annotation's target, whose name the klp grammar would misread as object
/// `rela`.
fn target_of(name: &[u8]) -> Option<names::KlpSymbol<'_>> {
    if names::is_annotation(name) {
        names::parse_annotation(name).ok().map(|a| a.target)
    } else {
        names::parse_klp_symbol(name).ok()
    }
}

/// The TOC16 family against a klp symbol (`apply_relocate_add`): the value
/// is the symbol's distance from this module's TOC (`my_r2`). `TOC16` and
/// `TOC16_DS` hold 16 bits and refuse more ("bad TOC16 relocation");
/// `TOC16_HA`/`TOC16_LO`/`TOC16_LO_DS` together hold 32 and are truncated
/// without a word. vmlinux is never that near a module; another module
/// may be within 2 GiB. Kbuild's `-mcmodel=large` never emits them for
/// external symbols: it loads their address from the TOC.
fn toc16(site: &Site) -> Option<Finding> {
    let r = site.reloc;
    let pair = matches!(
        r.r_type,
        abi::R_PPC64_TOC16_HA | abi::R_PPC64_TOC16_LO | abi::R_PPC64_TOC16_LO_DS
    );
    if !pair && !matches!(r.r_type, abi::R_PPC64_TOC16 | abi::R_PPC64_TOC16_DS) {
        return None;
    }
    let k = target_of(site.symbol.name)?;
    let name = super::reloc_type_name(abi::EM_PPC64, r.r_type);
    let what = if pair {
        "TOC16_HA/TOC16_LO reach 2 GiB from this module's TOC and are truncated without a word beyond"
    } else {
        "it holds 16 bits of the distance from this module's TOC, and the loader refuses more ('bad TOC16 relocation')"
    };
    let finding = Finding::new(
        Rule::Ppc64Toc16,
        format!(
            "{name} against '{}' in {}: {what}; build the livepatch with -mcmodel=large (kbuild's default), which loads the address from the TOC",
            names::show(&k.name),
            names::show(&k.obj)
        ),
    );
    // Another module may be near enough for a 32-bit distance.
    Some(if pair && k.obj != names::VMLINUX {
        finding.with_severity(crate::finding::Severity::Warning)
    } else {
        finding
    })
}

/// The function symbol of `section` that contains `offset`, and the offset
/// into it. Only used to word a finding, so a linear scan is fine.
fn containing_function(elf: &Elf, section: usize, offset: u64) -> Option<(String, u64)> {
    elf.symbols
        .iter()
        .filter(|s| s.section as usize == section && s.kind() == abi::STT_FUNC)
        .filter(|s| s.st_value <= offset && offset < s.st_value + s.st_size.max(1))
        .map(|s| (s.display_name(), offset - s.st_value))
        .next()
}
