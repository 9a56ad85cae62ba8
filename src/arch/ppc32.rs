//! 32-bit PowerPC's `apply_relocate_add` (arch/powerpc/kernel/module_32.c,
//! read in 6.1 and 7.2): the six types it handles, the `.plt`/`.init.plt`
//! sections it needs, and how it sizes them. A `bl` out of the ±32 MiB a
//! `REL24` reaches goes through a trampoline in one of the two PLTs, picked
//! by where the call is (core or init memory); but the room for those
//! trampolines is counted per relocation section, by whether the section's
//! *name* contains ".init". A klp section for a function whose name begins
//! with `init` (`.klp.rela.vmlinux..text.init_foo`, under
//! `-ffunction-sections`) is counted for `.init.plt`, while its calls, in
//! core text, take `.plt` entries nobody reserved: `do_plt_call` looks for
//! a free entry without a bound and writes the trampoline past the end of
//! `.plt` when the slack runs out.

use std::collections::BTreeSet;

use super::Loader;
use crate::elf::{abi, Elf, SHN_LIVEPATCH, SHN_UNDEF, SHT_RELA};
use crate::finding::{Finding, Rule, Severity};
use crate::names;

/// The 32-bit PowerPC loader.
pub(super) const LOADER: Loader = Loader {
    name: "ppc32",
    names: &[
        (abi::R_PPC_NONE, "R_PPC_NONE"),
        (abi::R_PPC_ADDR32, "R_PPC_ADDR32"),
        (abi::R_PPC_ADDR24, "R_PPC_ADDR24"),
        (abi::R_PPC_ADDR16, "R_PPC_ADDR16"),
        (abi::R_PPC_ADDR16_LO, "R_PPC_ADDR16_LO"),
        (abi::R_PPC_ADDR16_HI, "R_PPC_ADDR16_HI"),
        (abi::R_PPC_ADDR16_HA, "R_PPC_ADDR16_HA"),
        (abi::R_PPC_ADDR14, "R_PPC_ADDR14"),
        (abi::R_PPC_REL24, "R_PPC_REL24"),
        (abi::R_PPC_REL14, "R_PPC_REL14"),
        (abi::R_PPC_GOT16, "R_PPC_GOT16"),
        (abi::R_PPC_PLTREL24, "R_PPC_PLTREL24"),
        (abi::R_PPC_LOCAL24PC, "R_PPC_LOCAL24PC"),
        (abi::R_PPC_UADDR32, "R_PPC_UADDR32"),
        (abi::R_PPC_REL32, "R_PPC_REL32"),
        (abi::R_PPC_PLT32, "R_PPC_PLT32"),
        (abi::R_PPC_PLTREL32, "R_PPC_PLTREL32"),
        (abi::R_PPC_SDAREL16, "R_PPC_SDAREL16"),
        (abi::R_PPC_REL16, "R_PPC_REL16"),
        (abi::R_PPC_REL16_LO, "R_PPC_REL16_LO"),
        (abi::R_PPC_REL16_HI, "R_PPC_REL16_HI"),
        (abi::R_PPC_REL16_HA, "R_PPC_REL16_HA"),
    ],
    supported,
    // pr_err("%s: unknown ADD relocation: %u\n"), -ENOEXEC; R_PPC_NONE too.
    refusal: |t| format!("unknown ADD relocation: {t}"),
    // ADDR32 and the ADDR16 halves are stored without a check, and a 32-bit
    // address always fits them.
    absolute_field: |_| None,
    // REL24 falls back to a PLT trampoline; REL32 spans the address space.
    pc_overflow_refused: true,
    pc_reach: |_| None,
    none: &[],
    check_entry: |_| None,
    module_rule: Some(|elf, percpu| {
        plt_sections(elf)
            .or_else(|| init_plt(elf, percpu))
            .into_iter()
            .collect()
    }),
    late_writes_patched_since: Some((6, 1)),
    late_writes_note: "ppc32 writes late calls (R_PPC_REL24), the R_PPC_ADDR16 halves and the PLT trampolines with patch_instruction() (6.1 to 7.2); R_PPC_ADDR32 and R_PPC_REL32 are plain stores",
    late_write_helper,
};

fn supported(t: u32) -> bool {
    matches!(
        t,
        abi::R_PPC_ADDR32
            | abi::R_PPC_ADDR16_LO
            | abi::R_PPC_ADDR16_HI
            | abi::R_PPC_ADDR16_HA
            | abi::R_PPC_REL24
            | abi::R_PPC_REL32
    )
}

/// module_32.c writes `REL24` and the `ADDR16` halves through
/// `patch_instruction`, and `ADDR32`/`REL32` with a plain store.
fn late_write_helper(t: u32) -> bool {
    matches!(
        t,
        abi::R_PPC_REL24 | abi::R_PPC_ADDR16_LO | abi::R_PPC_ADDR16_HI | abi::R_PPC_ADDR16_HA
    )
}

/// A linked module without `.plt` or `.init.plt`: `module_frob_arch_sections`
/// refuses it.
fn plt_sections(elf: &Elf) -> Option<Finding> {
    let missing = [&b".plt"[..], b".init.plt"]
        .iter()
        .any(|n| elf.section_by_name(n).is_none());
    if !super::is_linked_module(elf) || !missing {
        return None;
    }
    Some(Finding::new(
        Rule::Ppc32Plt,
        "Module doesn't contain .plt or .init.plt sections.: the ppc32 loader refuses the module (-ENOEXEC); calls beyond 32 MiB go through trampolines there",
    ))
}

/// Does the loader count this relocation section's trampolines for
/// `.init.plt`? `get_plt_size` asks `strstr(name, ".init")`.
fn counted_for_init(name: &[u8]) -> bool {
    name.windows(5).any(|w| w == b".init")
}

/// Is the loader's `.debug` filter true of `name` (`strstr(name, ".debug")`)?
fn is_debug(name: &[u8]) -> bool {
    name.windows(6).any(|w| w == b".debug")
}

/// The `.plt` room the loader reserves: `get_plt_size(..., 0)`, in entries.
/// Each `SHT_RELA` section whose name has neither ".init" nor ".debug" gives
/// one entry for every distinct (symbol, addend) of its `REL24` entries, and
/// one more for `ftrace_caller` (CONFIG_DYNAMIC_FTRACE, which livepatch
/// needs).
fn core_plt_reserved(elf: &Elf) -> u64 {
    let mut total = 0u64;
    for rs in &elf.relocs {
        let Some(sec) = elf.sections.get(rs.index) else {
            continue;
        };
        if sec.sh_type != SHT_RELA || counted_for_init(sec.name) || is_debug(sec.name) {
            continue;
        }
        let distinct: BTreeSet<(u32, i64)> = rs
            .entries()
            .filter(|r| r.r_type == abi::R_PPC_REL24 && !(r.sym == 0 && r.addend == 0))
            .map(|r| (r.sym, r.addend))
            .collect();
        total += distinct.len() as u64 + 1;
    }
    total
}

/// A `REL24` that may need a trampoline: against a symbol outside the
/// module (undefined, or a klp symbol), which may be more than 32 MiB
/// away. The module's own symbols are always in reach.
fn may_need_trampoline(elf: &Elf, r: &crate::elf::Reloc) -> Option<Vec<u8>> {
    if r.r_type != abi::R_PPC_REL24 {
        return None;
    }
    let sym = elf.symbols.get(r.sym as usize)?;
    if sym.index == 0 || !(sym.st_shndx == SHN_UNDEF || sym.st_shndx == SHN_LIVEPATCH) {
        return None;
    }
    // The loader shares an entry between calls to one address; klp symbols
    // and undefined ones by the same name resolve alike.
    let name = match names::parse_klp_symbol(sym.name) {
        Ok(k) => k.name.into_owned(),
        Err(_) => sym.name.to_vec(),
    };
    let mut key = name;
    key.extend_from_slice(format!("+{}", r.addend).as_bytes());
    Some(key)
}

/// Relocation sections counted for `.init.plt` whose calls are in core
/// text, and so take `.plt` entries (`do_plt_call` picks the PLT by
/// `within_module_core(location)`), against the room the loader reserved
/// in `.plt`. With more calls than room, the trampolines are written past
/// the end of `.plt`; with enough slack (one spare entry per relocation
/// section), it works by luck.
fn init_plt(elf: &Elf, percpu: bool) -> Option<Finding> {
    // Calls from core text that may need a trampoline, from any section,
    // and those of the sections counted for .init.plt.
    let mut needed: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut misplaced: Vec<(usize, BTreeSet<Vec<u8>>)> = Vec::new();
    for rs in &elf.relocs {
        let Some(sec) = elf.sections.get(rs.index) else {
            continue;
        };
        if sec.sh_type != SHT_RELA || is_debug(sec.name) {
            continue;
        }
        let Some(target) = super::applied(elf, &sec, percpu) else {
            continue;
        };
        if super::is_init_section(target.name) {
            continue;
        }
        let calls: BTreeSet<Vec<u8>> = rs
            .entries()
            .filter_map(|r| may_need_trampoline(elf, &r))
            .collect();
        if calls.is_empty() {
            continue;
        }
        needed.extend(calls.iter().cloned());
        if counted_for_init(sec.name) {
            misplaced.push((rs.index, calls));
        }
    }
    let (first, _) = misplaced.first()?;
    let sections: Vec<String> = misplaced
        .iter()
        .map(|(i, _)| elf.section_name(*i))
        .collect();
    let uncounted: usize = misplaced.iter().map(|(_, c)| c.len()).sum();
    // ftrace_caller and ftrace_regs_caller take the first two entries
    // (module_finalize_ftrace).
    let needed = needed.len() as u64 + 2;
    let reserved = core_plt_reserved(elf);
    // The room is counted over the linked module's relocation sections; an
    // object that kbuild has not linked yet gains some (one spare each).
    let linked = super::is_linked_module(elf);
    let overflow = linked && needed > reserved;
    let message = format!(
        "{} {} ('.init' in the name): get_plt_size counts {} call{} for .init.plt, but the calls are in core text and do_plt_call gives them .plt trampolines; .plt has room for {reserved} entr{}, and up to {needed} may be needed (ftrace's two included){}. Rename the function so that its section name has no '.init' (e.g. not init_*), or build the livepatch without -ffunction-sections",
        if sections.len() == 1 { "relocation section" } else { "relocation sections" },
        sections.join(", "),
        uncounted,
        if uncounted == 1 { "" } else { "s" },
        if reserved == 1 { "y" } else { "ies" },
        if overflow {
            ": do_plt_call looks for a free entry without a bound and writes the trampolines past the end of .plt, silently"
        } else if linked {
            ": it fits only thanks to the spare entry the loader counts per relocation section"
        } else {
            " in this object; whether the spare entry the loader counts per relocation section absorbs it is decided in the linked module"
        },
    );
    let f = Finding::new(Rule::Ppc32InitPlt, message).in_section(elf.section_name(*first));
    Some(if overflow {
        f
    } else {
        f.with_severity(Severity::Warning)
    })
}
