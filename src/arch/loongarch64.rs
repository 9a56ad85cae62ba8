//! LoongArch's `apply_relocate_add` (arch/loongarch/kernel/module.c and
//! module-sections.c, 6.9 to 7.2: livepatch since 6.9): the types it
//! handles, the `.got`/`.plt`/`.plt.idx` sections it needs, and three
//! traps of its own:
//!
//! * `PCALA_HI20` (`pcalau12i`), `PCADD_HI20` and `32_PCREL` are
//!   PC-relative with no range check. vmlinux lives in the direct-mapped
//!   window (`0x9000...`), modules at `0xffff8000...`: such a klp relocation
//!   against a vmlinux symbol is written without an error and reaches
//!   another address (`loongarch-pcrel-far`). kbuild compiles modules with
//!   `-fno-direct-access-external-data` for this reason: extern data goes
//!   through the GOT (`GOT_PC_HI20`/`LO12`), and calls (`B26`) fall back to
//!   a PLT entry beyond ±128 MiB.
//! * `PCADD_LO12` and `GOT_PCADD_LO12` name their `HI20` partner by its
//!   place (their symbol is a label at the `HI20` instruction), and the
//!   loader looks for that partner in the same relocation section only
//!   ("Can not find HI20 relocation information"). The label is a module
//!   symbol, which a klp section may not hold (the livepatch core wants
//!   every symbol of a klp section `SHN_LIVEPATCH`): a pair whose `HI20`
//!   references another object cannot be kept together, so `convert`
//!   refuses it and `check` reports a split pair (`loongarch-pcadd-pair`).
//! * `module_frob_arch_sections` sizes the GOT and the PLT once, counting
//!   every `SHT_RELA` section with an executable target, klp sections
//!   included (distinct type, symbol and addend per section). A
//!   module-specific klp relocation through the GOT takes a new entry each
//!   time its module is loaded at a new address, and nothing frees the old
//!   one: past the count, the loader refuses ("module contains bad GOT
//!   relocation") (`loongarch-got-reload`).
//!
//! LoongArch selects no `ARCH_HAS_STRICT_MODULE_RWX`: module memory stays
//! writable, and late relocations are plain stores that land.

use super::{Loader, Site};
use crate::elf::{abi, Elf, Reloc, SHF_EXECINSTR, SHF_RELA_LIVEPATCH, SHN_UNDEF};
use crate::finding::{Finding, Rule};
use crate::names::{self, VMLINUX};

/// `R_LARCH_PCADD_HI20` (asm/elf.h; not in `object` 0.36).
pub(crate) const R_LARCH_PCADD_HI20: u32 = 128;
/// `R_LARCH_PCADD_LO12`.
pub(crate) const R_LARCH_PCADD_LO12: u32 = 129;
/// `R_LARCH_GOT_PCADD_HI20`.
pub(crate) const R_LARCH_GOT_PCADD_HI20: u32 = 130;
/// `R_LARCH_GOT_PCADD_LO12`.
pub(crate) const R_LARCH_GOT_PCADD_LO12: u32 = 131;
/// The last type of the loader's handler table (`R_LARCH_TLS_DESC_PCADD_LO12`):
/// beyond it, "Unknown relocation type".
const LAST_IN_TABLE: u32 = 139;

/// The LoongArch loader.
pub(super) const LOADER: Loader = Loader {
    name: "loongarch",
    names: &[
        (abi::R_LARCH_NONE, "R_LARCH_NONE"),
        (abi::R_LARCH_32, "R_LARCH_32"),
        (abi::R_LARCH_64, "R_LARCH_64"),
        (abi::R_LARCH_RELATIVE, "R_LARCH_RELATIVE"),
        (abi::R_LARCH_MARK_LA, "R_LARCH_MARK_LA"),
        (abi::R_LARCH_MARK_PCREL, "R_LARCH_MARK_PCREL"),
        (abi::R_LARCH_SOP_PUSH_PCREL, "R_LARCH_SOP_PUSH_PCREL"),
        (abi::R_LARCH_SOP_PUSH_ABSOLUTE, "R_LARCH_SOP_PUSH_ABSOLUTE"),
        (abi::R_LARCH_SOP_PUSH_DUP, "R_LARCH_SOP_PUSH_DUP"),
        (abi::R_LARCH_SOP_PUSH_PLT_PCREL, "R_LARCH_SOP_PUSH_PLT_PCREL"),
        (abi::R_LARCH_ADD32, "R_LARCH_ADD32"),
        (abi::R_LARCH_ADD64, "R_LARCH_ADD64"),
        (abi::R_LARCH_SUB32, "R_LARCH_SUB32"),
        (abi::R_LARCH_SUB64, "R_LARCH_SUB64"),
        (abi::R_LARCH_B16, "R_LARCH_B16"),
        (abi::R_LARCH_B21, "R_LARCH_B21"),
        (abi::R_LARCH_B26, "R_LARCH_B26"),
        (abi::R_LARCH_ABS_HI20, "R_LARCH_ABS_HI20"),
        (abi::R_LARCH_ABS_LO12, "R_LARCH_ABS_LO12"),
        (abi::R_LARCH_ABS64_LO20, "R_LARCH_ABS64_LO20"),
        (abi::R_LARCH_ABS64_HI12, "R_LARCH_ABS64_HI12"),
        (abi::R_LARCH_PCALA_HI20, "R_LARCH_PCALA_HI20"),
        (abi::R_LARCH_PCALA_LO12, "R_LARCH_PCALA_LO12"),
        (abi::R_LARCH_PCALA64_LO20, "R_LARCH_PCALA64_LO20"),
        (abi::R_LARCH_PCALA64_HI12, "R_LARCH_PCALA64_HI12"),
        (abi::R_LARCH_GOT_PC_HI20, "R_LARCH_GOT_PC_HI20"),
        (abi::R_LARCH_GOT_PC_LO12, "R_LARCH_GOT_PC_LO12"),
        (abi::R_LARCH_GOT64_PC_LO20, "R_LARCH_GOT64_PC_LO20"),
        (abi::R_LARCH_GOT64_PC_HI12, "R_LARCH_GOT64_PC_HI12"),
        (abi::R_LARCH_GOT_HI20, "R_LARCH_GOT_HI20"),
        (abi::R_LARCH_GOT_LO12, "R_LARCH_GOT_LO12"),
        (abi::R_LARCH_32_PCREL, "R_LARCH_32_PCREL"),
        (abi::R_LARCH_RELAX, "R_LARCH_RELAX"),
        (abi::R_LARCH_ALIGN, "R_LARCH_ALIGN"),
        (abi::R_LARCH_PCREL20_S2, "R_LARCH_PCREL20_S2"),
        (abi::R_LARCH_64_PCREL, "R_LARCH_64_PCREL"),
        (abi::R_LARCH_CALL36, "R_LARCH_CALL36"),
        (R_LARCH_PCADD_HI20, "R_LARCH_PCADD_HI20"),
        (R_LARCH_PCADD_LO12, "R_LARCH_PCADD_LO12"),
        (R_LARCH_GOT_PCADD_HI20, "R_LARCH_GOT_PCADD_HI20"),
        (R_LARCH_GOT_PCADD_LO12, "R_LARCH_GOT_PCADD_LO12"),
    ],
    supported,
    // Beyond the table: "Unknown relocation type"; the 8-, 16- and 24-bit
    // ADD/SUB reach apply_r_larch_add_sub's default; the table's other
    // holes are apply_r_larch_error.
    refusal: |t| match t {
        t if t > LAST_IN_TABLE => format!("Unknown relocation type {t}"),
        abi::R_LARCH_ADD8..=abi::R_LARCH_SUB64 => format!("Unsupport relocation type {t}"),
        _ => format!("Unsupport relocation type {t}, please add its support."),
    },
    // R_LARCH_32 and 64 are stored without a check.
    absolute_field: |_| None,
    // B26 falls back to a PLT entry; the other PC-relative types are not
    // range-checked at all (`loongarch-pcrel-far`), and modules are not
    // placed within 2 GiB of the kernel image.
    pc_overflow_refused: true,
    pc_reach: |_| None,
    none: &[abi::R_LARCH_NONE, abi::R_LARCH_MARK_LA, abi::R_LARCH_MARK_PCREL],
    check_entry: pcrel_far,
    module_rule: Some(module_rules),
    late_writes_patched_since: Some((6, 9)),
    late_writes_note: "LoongArch (livepatch since 6.9) selects no ARCH_HAS_STRICT_MODULE_RWX: module memory stays writable, and the loader's plain stores of late relocations land",
    late_write_helper: |_| true,
};

/// The types `apply_relocate_add` (7.2) handles: the table's entries that
/// are not `apply_r_larch_error`, and the types its switch takes first
/// (`B26`, the GOT and `SOP_PUSH_PLT_PCREL`). `apply_r_larch_add_sub`
/// handles only the 32- and 64-bit `ADD`/`SUB` of its range.
fn supported(t: u32) -> bool {
    matches!(
        t,
        abi::R_LARCH_NONE
            | abi::R_LARCH_32
            | abi::R_LARCH_64
            | abi::R_LARCH_MARK_LA
            | abi::R_LARCH_MARK_PCREL
            | abi::R_LARCH_SOP_PUSH_PCREL
            | abi::R_LARCH_SOP_PUSH_ABSOLUTE
            | abi::R_LARCH_SOP_PUSH_DUP
            | abi::R_LARCH_SOP_PUSH_PLT_PCREL
            | abi::R_LARCH_SOP_SUB..=abi::R_LARCH_SOP_IF_ELSE
            | abi::R_LARCH_SOP_POP_32_S_10_5..=abi::R_LARCH_SOP_POP_32_U
            | abi::R_LARCH_ADD32
            | abi::R_LARCH_ADD64
            | abi::R_LARCH_SUB32
            | abi::R_LARCH_SUB64
            | abi::R_LARCH_B26
            | abi::R_LARCH_PCALA_HI20..=abi::R_LARCH_PCALA64_HI12
            | abi::R_LARCH_GOT_PC_HI20
            | abi::R_LARCH_GOT_PC_LO12
            | abi::R_LARCH_32_PCREL
            | abi::R_LARCH_64_PCREL
            | R_LARCH_PCADD_HI20..=R_LARCH_GOT_PCADD_LO12
    )
}

/// Is `t` written PC-relative with no range check, into a field narrower
/// than the distance from a module to vmlinux? `PCALA_HI20` keeps 32 bits
/// of it (unless `PCALA64_LO20`/`HI12` complete it: `-mcmodel=extreme`),
/// `PCADD_HI20` 32, `32_PCREL` 32.
fn unchecked_pc_relative(t: u32) -> bool {
    matches!(
        t,
        abi::R_LARCH_PCALA_HI20 | R_LARCH_PCADD_HI20 | abi::R_LARCH_32_PCREL
    )
}

/// Does a `PCALA64_HI12` against symbol `sym`, within the next four
/// instructions after `offset` of section `target`, make the `PCALA_HI20`
/// there the first of a full 64-bit sequence (`-mcmodel=extreme`)?
fn completed_to_64(elf: &Elf, target: usize, offset: u64, sym: u32) -> bool {
    elf.relocs.iter().any(|rs| {
        elf.sections.at(rs.index).sh_info as usize == target
            && rs.entries().any(|e| {
                e.r_type == abi::R_LARCH_PCALA64_HI12
                    && e.sym == sym
                    && e.offset > offset
                    && e.offset <= offset + 16
            })
    })
}

/// The fix, in one place.
const PCREL_FIX: &str = "build the livepatch as kbuild builds modules: without -mdirect-extern-access (GCC) or -fdirect-access-external-data (Clang; kbuild passes -fno-direct-access-external-data), so that the compiler reaches vmlinux data through the module's GOT (R_LARCH_GOT_PC_HI20/LO12), and calls it with R_LARCH_B26, which the loader routes through a PLT entry when it is out of reach";

/// The finding for a PC-relative klp relocation of `r` against vmlinux's
/// `name` (`loongarch-pcrel-far`).
pub(crate) fn pcrel_far_finding(machine: u16, r: &Reloc, name: &str) -> Finding {
    Finding::new(
        Rule::LoongarchPcrelFar,
        format!(
            "{} against vmlinux's '{name}' is PC-relative and the LoongArch loader does not range-check it: vmlinux is in the direct-mapped window (0x9000...), modules at 0xffff8000..., so the loader writes the low 32 bits of the distance without an error and the code reaches another address (an Oops: \"Unable to handle kernel paging request\" when it is read); {PCREL_FIX}",
            super::reloc_type_name(machine, r.r_type)
        ),
    )
}

/// Would a klp relocation of `r`, in relocation section `rs_target`'s
/// target, against a symbol of object `obj` be silently wrong? For
/// `convert`, before it moves one.
pub(crate) fn pcrel_far_move(elf: &Elf, target: usize, r: &Reloc, obj: &[u8]) -> bool {
    obj == VMLINUX
        && unchecked_pc_relative(r.r_type)
        && !(r.r_type == abi::R_LARCH_PCALA_HI20 && completed_to_64(elf, target, r.offset, r.sym))
}

/// The `HI20` of a `PCADD` pair cannot move into a klp section: its
/// `LO12` names it by a module label, which cannot follow it there, and
/// the loader looks for the pair in one relocation section.
pub(crate) fn pcadd_hi20_move(
    machine: u16,
    r: &Reloc,
    symbol: &names::KlpSymbol,
) -> Option<Finding> {
    if r.r_type != R_LARCH_PCADD_HI20 && r.r_type != R_LARCH_GOT_PCADD_HI20 {
        return None;
    }
    Some(Finding::new(
        Rule::LoongarchPcaddPair,
        format!(
            "{} against '{}' of '{}' cannot become a klp relocation: its {} partner names it by a label in this module, which a klp section cannot hold (every symbol there must be SHN_LIVEPATCH), and the loader looks for the pair in one relocation section (\"Can not find HI20 relocation information\"). Reach that symbol through the GOT (R_LARCH_GOT_PC_HI20/LO12: the 64-bit kernel's default) instead",
            super::reloc_type_name(machine, r.r_type),
            names::show(&symbol.name),
            names::show(&symbol.obj),
            super::reloc_type_name(machine, r.r_type + 1)
        ),
    ))
}

/// `check_entry`: a klp relocation against a vmlinux symbol
/// ([`pcrel_far_move`]).
fn pcrel_far(site: &Site) -> Option<Finding> {
    let k = names::parse_klp_symbol_ref(site.symbol.name).ok()?;
    pcrel_far_move(site.elf, site.target.index, site.reloc, k.obj).then(|| {
        pcrel_far_finding(
            site.elf.machine,
            site.reloc,
            &names::show(k.name).to_string(),
        )
    })
}

/// The whole-module rules: the GOT and PLT sections, the `PCADD` pairs,
/// and the GOT or PLT entries a module-specific klp relocation takes anew
/// on each load of its module.
fn module_rules(elf: &Elf, percpu: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(sections(elf));
    out.extend(pcadd_pairs(elf, percpu));
    out.extend(got_reload(elf));
    out
}

/// A linked module without `.got`, `.plt` or `.plt.idx`: the loader
/// refuses it ("module GOT section(s) missing", ...).
fn sections(elf: &Elf) -> Option<Finding> {
    if !super::is_linked_module(elf) {
        return None;
    }
    let missing: Vec<(&str, &str)> = [(".got", "GOT"), (".plt", "PLT"), (".plt.idx", "PLT.IDX")]
        .into_iter()
        .filter(|(n, _)| elf.section_by_name(n.as_bytes()).is_none())
        .collect();
    let (name, word) = missing.first()?;
    let names: Vec<&str> = missing.iter().map(|(n, _)| *n).collect();
    Some(Finding::new(
        Rule::LoongarchGotPlt,
        format!(
            "module {word} section(s) missing ({}): the LoongArch loader refuses the module (module_frob_arch_sections, -ENOEXEC); kbuild's module linker script (asm/module.lds.h) makes {name} and the others empty, and the loader sizes them counting the klp relocations too: link the livepatch with kbuild",
            names.join(", ")
        ),
    ))
}

/// Every `PCADD_LO12`/`GOT_PCADD_LO12` whose `HI20` partner is not in its
/// own relocation section: the loader fails "Can not find HI20 relocation
/// information" (-EINVAL).
fn pcadd_pairs(elf: &Elf, percpu: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    for rs in &elf.relocs {
        let sec = &elf.sections.at(rs.index);
        if !rs.is_rela() || super::applied(elf, sec, percpu).is_none() {
            continue;
        }
        for r in rs.entries() {
            if r.r_type != R_LARCH_PCADD_LO12 && r.r_type != R_LARCH_GOT_PCADD_LO12 {
                continue;
            }
            let Some(sym) = elf.symbols.get(r.sym as usize) else {
                continue;
            };
            // The partner's place: the LO12's symbol, a label in the same
            // section (the loader compares addresses, so a label elsewhere
            // never matches).
            let found = sym.st_shndx as u32 == sec.sh_info
                && sym.st_shndx != SHN_UNDEF
                && rs
                    .entries()
                    .any(|h| h.r_type == r.r_type - 1 && h.offset == sym.st_value);
            if found {
                continue;
            }
            let klp = sec.sh_flags & SHF_RELA_LIVEPATCH != 0;
            out.push(
                Finding::new(
                    Rule::LoongarchPcaddPair,
                    format!(
                        "Can not find HI20 relocation information: the loader looks for the {} partner of this {} (at the place its symbol '{}' names) in {} only, and it is not there; the pair must stay in one relocation section, and the label it names is a module symbol, which a klp section cannot hold: a PCADD pair cannot reference another object. Reach that symbol through the GOT (R_LARCH_GOT_PC_HI20/LO12: the 64-bit kernel's default) instead",
                        super::reloc_type_name(elf.machine, r.r_type - 1),
                        super::reloc_type_name(elf.machine, r.r_type),
                        sym.display_name(),
                        if klp { "the same klp relocation section" } else { "the same relocation section" }
                    ),
                )
                .at_entry(elf, rs.index, &r),
            );
        }
    }
    out
}

/// Types that take a GOT entry for a value not seen before
/// (`module_emit_got_entry`; their `LO12` finds it). `B26` takes a PLT
/// entry only beyond ±128 MiB, and module text shares 256 MiB: a call
/// between modules seldom needs one, so it is left out.
fn takes_entry(t: u32) -> bool {
    matches!(t, abi::R_LARCH_GOT_PC_HI20 | R_LARCH_GOT_PCADD_HI20)
}

/// Module-specific klp relocations through the GOT: each load of their
/// module at a new address takes a new entry, and the table is sized once.
/// Past that, the relocation is refused ("module contains bad GOT
/// relocation": the target module cannot load while the patch is enabled).
fn got_reload(elf: &Elf) -> Option<Finding> {
    let (objs, list) = super::module_specific_entries(
        elf,
        |sec| {
            elf.sections
                .get(sec.sh_info as usize)
                .is_some_and(|t| t.sh_flags & SHF_EXECINSTR != 0)
        },
        takes_entry,
    )?;
    Some(Finding::new(
        Rule::LoongarchGotReload,
        format!(
            "the LoongArch loader sizes this module's GOT once, and each load of '{}' at a new address takes new entries for {} (nothing frees the old ones): if that module is unloaded and loaded again elsewhere while this patch stays enabled, the loader runs out, \"module contains bad GOT relocation\", and the module cannot load (the refused attempt leaves its entry in the table's one spare slot: a second attempt at the same address loads, as busybox's insmod does, and the next new address writes past the table; seen on 7.2). Declare those symbols __attribute__((visibility(\"hidden\"))) in the livepatch, so that GCC reaches them PC-relative (R_LARCH_PCALA_HI20/LO12 within the module area) rather than through a GOT entry; or never reload that module while the patch is enabled",
            objs.join("', '"),
            list.join(", ")
        ),
    ))
}
