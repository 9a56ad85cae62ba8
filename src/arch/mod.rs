//! Per-architecture facts and loader rules: machine and relocation names,
//! implicit addends of REL entries, the special sections each loader
//! processes once at module load, and what each architecture's
//! `apply_relocate_add` does with a klp relocation (one file an
//! architecture). Address-dependent rules need the resolved address and
//! run only with symbol maps ([`absolute_overflow`]).

mod aarch64;
mod loongarch64;
mod ppc32;
mod ppc64;
mod s390x;
mod x86_64;

use crate::elf::{abi, Elf, Reloc, Section, Symbol, SHF_RELA_LIVEPATCH};
use crate::finding::{Finding, Rule};

/// A short name for `e_machine`.
pub fn machine_name(machine: u16) -> String {
    match machine {
        abi::EM_X86_64 => "x86_64".into(),
        abi::EM_386 => "i386".into(),
        abi::EM_PPC64 => "ppc64".into(),
        abi::EM_PPC => "ppc".into(),
        abi::EM_S390 => "s390".into(),
        abi::EM_AARCH64 => "aarch64".into(),
        abi::EM_ARM => "arm".into(),
        abi::EM_RISCV => "riscv".into(),
        abi::EM_LOONGARCH => "loongarch".into(),
        m => format!("machine {m}"),
    }
}

/// The ELF name of a relocation type, e.g. `R_X86_64_PC32`, or `type N`.
pub fn reloc_type_name(machine: u16, r_type: u32) -> String {
    let table: &[(u32, &str)] = match (loader(machine), machine) {
        (Some(l), _) => l.names,
        (None, abi::EM_386) => I386_NAMES,
        _ => &[],
    };
    table
        .iter()
        .find(|(t, _)| *t == r_type)
        .map(|(_, n)| (*n).to_string())
        .unwrap_or_else(|| format!("type {r_type}"))
}

/// i386 relocation names (REL only; no livepatch loader is modelled).
const I386_NAMES: &[(u32, &str)] = &[
    (abi::R_386_NONE, "R_386_NONE"),
    (abi::R_386_32, "R_386_32"),
    (abi::R_386_PC32, "R_386_PC32"),
    (abi::R_386_GOT32, "R_386_GOT32"),
    (abi::R_386_PLT32, "R_386_PLT32"),
    (abi::R_386_GOTOFF, "R_386_GOTOFF"),
    (abi::R_386_GOTPC, "R_386_GOTPC"),
];

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
        (abi::EM_386, abi::R_386_32 | abi::R_386_PC32 | abi::R_386_PLT32 | abi::R_386_GOTOFF) => 4,
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
    ".cfi_sites",
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

/// Is `name` freed after module init? The kernel's `module_init_section()`
/// is a prefix match on `.init`: `.init.text`, `.init.data`, and
/// `.init_array` too. (`.exit*` is kept: Debian's kernels have
/// `CONFIG_MODULE_UNLOAD`.)
pub fn is_init_section(name: &[u8]) -> bool {
    name.starts_with(b".init")
}

/// Does the loader of `machine` keep a module's `.init*` sections, and so
/// their symbols in the kallsyms of the loaded module? ppc64's
/// `module_init_section()` says no section is an init section (module_64.c,
/// 6.1 to 7.2): its `.init*` sections are laid out with the core ones and
/// never freed.
pub fn keeps_init_sections(machine: u16) -> bool {
    machine == abi::EM_PPC64
}

/// The section the relocation section `sec` patches, if the module loader
/// applies it at all: `apply_relocations` skips a relocation section whose
/// target the module does not allocate (`.rela.debug_info`).
pub fn applied_target<'a>(elf: &Elf<'a>, sec: &Section) -> Option<Section<'a>> {
    (sec.sh_info != 0)
        .then(|| elf.sections.get(sec.sh_info as usize))
        .flatten()
        .filter(Section::is_alloc)
}

/// The per-CPU section of a module: the loader allocates it per CPU
/// (`percpu_modalloc`) and clears its `SHF_ALLOC` in the section headers
/// (`layout_and_allocate`, kernel/module/main.c), so nothing else copies it.
pub const PERCPU_SECTION: &[u8] = b".data..percpu";

/// [`applied_target`] of an ordinary relocation section, for a kernel that
/// relocates the per-CPU section (`percpu`: 6.16 on) or not: before 6.16
/// the loader has cleared that section's `SHF_ALLOC` when it applies
/// relocations, and skips those into it.
pub fn applied_ordinary<'a>(elf: &Elf<'a>, sec: &Section, percpu: bool) -> Option<Section<'a>> {
    applied_target(elf, sec).filter(|t| percpu || !is_percpu_section(t))
}

/// The section that relocation section `sec` patches, if the kernel applies
/// it at all, for a kernel that relocates the per-CPU section (`percpu`)
/// or not. `apply_relocations` tests the target's `SHF_ALLOC` (and, 6.16
/// on, excepts the per-CPU section) before it looks at the kind of section:
/// ordinary and vmlinux klp sections pass there ([`applied_ordinary`]).
/// A module-specific klp section is applied by `klp_apply_object_relocs`
/// when its object loads, with no such test: any target but section 0.
pub fn applied<'a>(elf: &Elf<'a>, sec: &Section, percpu: bool) -> Option<Section<'a>> {
    // The name is read only where the answer depends on it.
    applied_ordinary(elf, sec, percpu).or_else(|| {
        let late = sec.sh_flags & SHF_RELA_LIVEPATCH != 0
            && crate::names::klp_section_object(sec.name).is_ok_and(|o| o != crate::names::VMLINUX);
        (late && sec.sh_info != 0)
            .then(|| elf.sections.get(sec.sh_info as usize))
            .flatten()
    })
}

/// Is `t` the per-CPU section ([`PERCPU_SECTION`])?
pub fn is_percpu_section(t: &Section) -> bool {
    t.name == PERCPU_SECTION
}

/// Is `name` a debug section, which the loader never relocates?
pub fn is_debug_section(name: &[u8]) -> bool {
    name.starts_with(b".debug_") || name.starts_with(b".zdebug_")
}

/// One architecture's module loader, as far as klp relocations go.
pub(crate) struct Loader {
    /// Short machine name for messages.
    pub name: &'static str,
    /// Relocation type names.
    pub names: &'static [(u32, &'static str)],
    /// Does `apply_relocate_add` handle this type?
    pub supported: fn(u32) -> bool,
    /// The kernel's message for a type it does not handle.
    pub refusal: fn(u32) -> String,
    /// The field of an absolute type, for the range check: (bits, signed
    /// values accepted, unsigned values accepted).
    pub absolute_field: fn(u32) -> Option<(u32, bool, bool)>,
    /// How far a PC-relative type reaches (the largest distance it holds),
    /// for the types whose overflow the loader refuses and has no fallback
    /// for (a call through a PLT or stub has one).
    pub pc_reach: fn(u32) -> Option<u64>,
    /// Does `apply_relocate_add` refuse such an overflow? x86_64 never
    /// range-checks `PC32`/`PLT32`: it writes the low 32 bits.
    pub pc_overflow_refused: bool,
    /// The types the loader accepts and writes nothing for.
    pub none: &'static [u32],
    /// A check of one klp relocation against the bytes it patches.
    pub check_entry: fn(&Site) -> Option<Finding>,
    /// A check of the whole linked module, for a kernel that relocates
    /// the per-CPU section or not ([`applied`]).
    pub module_rule: Option<fn(&Elf, bool) -> Vec<Finding>>,
    /// Since which release late relocations into read-only memory are
    /// written through the architecture's code-patching helper (`None`:
    /// not known to be).
    pub late_writes_patched_since: Option<(u32, u32)>,
    /// How this architecture writes late relocations, for the warning.
    pub late_writes_note: &'static str,
    /// Does the code-patching helper write this type late? ppc64 writes
    /// only its instruction types through `patch_instruction`; the data
    /// types are plain stores on every release.
    pub late_write_helper: fn(u32) -> bool,
}

/// One klp relocation, with what the loader looks at.
pub(crate) struct Site<'a, 'e> {
    /// The module.
    pub elf: &'e Elf<'a>,
    /// The section the relocation patches.
    pub target: &'e Section<'a>,
    /// That section's bytes.
    pub bytes: &'a [u8],
    /// The entry.
    pub reloc: &'e Reloc,
    /// The symbol it references.
    pub symbol: &'e Symbol<'a>,
}

/// The loader of `machine`, when modelled.
pub(crate) fn loader(machine: u16) -> Option<&'static Loader> {
    match machine {
        abi::EM_X86_64 => Some(&x86_64::LOADER),
        abi::EM_PPC64 => Some(&ppc64::LOADER),
        abi::EM_PPC => Some(&ppc32::LOADER),
        abi::EM_S390 => Some(&s390x::LOADER),
        abi::EM_AARCH64 => Some(&aarch64::LOADER),
        abi::EM_LOONGARCH => Some(&loongarch64::LOADER),
        _ => None,
    }
}

/// A symbol name as this machine's module loader prints it: ppc64's
/// `dedotify()` drops the leading `.` of undefined names (ELFv1's dot
/// symbols) before `simplify_symbols` reports them.
pub fn loader_name(machine: u16, name: &str) -> String {
    match name.strip_prefix('.') {
        Some(rest) if machine == abi::EM_PPC64 => rest.to_string(),
        _ => name.to_string(),
    }
}

/// Does this machine's `apply_relocate_add` skip the type, writing nothing
/// (x86_64, s390 and arm64 `*_NONE`, arm64 type 0 too; ppc64 has no such
/// case and refuses it)?
pub fn writes_nothing(machine: u16, r_type: u32) -> bool {
    loader(machine).is_some_and(|l| l.none.contains(&r_type))
}

/// Since which `major.minor` this machine's loader writes late relocations
/// into read-only memory safely, and how (for `rules::kernels`).
pub fn late_writes(machine: u16) -> (Option<(u32, u32)>, &'static str) {
    match loader(machine) {
        Some(l) => (l.late_writes_patched_since, l.late_writes_note),
        None => (None, "this architecture's loader is not modelled"),
    }
}

/// Does `machine`'s loader write a late relocation of `r_type` through its
/// code-patching helper (true where the loader is not modelled: nothing is
/// known to the contrary)?
pub fn late_write_helper(machine: u16, r_type: u32) -> bool {
    loader(machine).is_none_or(|l| (l.late_write_helper)(r_type))
}

/// A `.ko` linked by kbuild (rather than a bare object): it has the module
/// structure section.
fn is_linked_module(elf: &Elf) -> bool {
    elf.is_linked_module()
}

/// Every loader finding for the klp relocations of `elf`: the types its
/// architecture's `apply_relocate_add` handles, the bytes it expects, and
/// the sections it needs; and for its ordinary relocations against other
/// objects' symbols. Only what the kernel applies is judged ([`applied`]):
/// nothing into a section without `SHF_ALLOC` but a module-specific klp
/// section's, and nothing into the per-CPU section but a module-specific
/// klp section's before 6.16 (`percpu` false).
pub fn loader_rules(elf: &Elf, percpu: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(loader) = loader(elf.machine) else {
        let has_klp = elf
            .sections
            .iter()
            .any(|s| s.sh_flags & SHF_RELA_LIVEPATCH != 0);
        if has_klp {
            out.push(Finding::new(
                Rule::LoaderNotModelled,
                format!(
                    "loader rules for {} are not modelled: only the structural rules were checked",
                    machine_name(elf.machine)
                ),
            ));
        }
        return out;
    };
    if let Some(rule) = loader.module_rule {
        out.extend(rule(elf, percpu));
    }
    for rs in &elf.relocs {
        let sec = &elf.sections.at(rs.index);
        if sec.sh_flags & SHF_RELA_LIVEPATCH == 0 {
            continue;
        }
        let Some(target) = applied(elf, sec, percpu) else {
            continue;
        };
        let bytes = elf.section_bytes(&target);
        for r in rs.entries() {
            let sym = &elf.symbols[r.sym as usize];
            let at = |p: Finding| p.at_entry(elf, rs.index, &r);
            if !(loader.supported)(r.r_type) {
                out.push(at(unsupported(loader, elf.machine, r.r_type)));
                continue;
            }
            let site = Site {
                elf,
                target: &target,
                bytes,
                reloc: &r,
                symbol: sym,
            };
            if let Some(p) = (loader.check_entry)(&site) {
                out.push(at(p));
            }
        }
    }
    // apply_relocate_add applies the ordinary relocation sections too, with
    // the same types and the same checks of the bytes: those against another
    // object's symbol (an undefined one, which the loader links) are judged
    // here as well, whether a conversion leaves them ordinary or gives them
    // the klp form.
    for rs in &elf.relocs {
        let sec = &elf.sections.at(rs.index);
        if sec.sh_flags & SHF_RELA_LIVEPATCH != 0 {
            continue;
        }
        // Not a klp section: `applied` would answer the same.
        let Some(target) = applied_ordinary(elf, sec, percpu) else {
            continue;
        };
        let bytes = elf.section_bytes(&target);
        for r in rs.entries() {
            let sym = &elf.symbols[r.sym as usize];
            if sym.index == 0 || sym.st_shndx != crate::elf::SHN_UNDEF || sym.name.is_empty() {
                continue;
            }
            if !(loader.supported)(r.r_type) {
                let p = unsupported(loader, elf.machine, r.r_type);
                out.push(p.at_entry(elf, rs.index, &r));
                continue;
            }
            let site = Site {
                elf,
                target: &target,
                bytes,
                reloc: &r,
                symbol: sym,
            };
            if let Some(p) = (loader.check_entry)(&site) {
                out.push(p.at_entry(elf, rs.index, &r));
            }
        }
    }
    out
}

/// The loader's refusal of one klp relocation (entry `r` against `symbol`,
/// into `target`), as [`loader_rules`] judges it in a klp section: a type
/// it does not handle, the bytes it expects. `convert` asks this before
/// it moves a relocation.
pub fn klp_entry_rule(
    elf: &Elf,
    target: &crate::elf::Section,
    r: &Reloc,
    symbol: &crate::elf::Symbol,
) -> Option<Finding> {
    let loader = loader(elf.machine)?;
    if !(loader.supported)(r.r_type) {
        return Some(unsupported(loader, elf.machine, r.r_type));
    }
    (loader.check_entry)(&Site {
        elf,
        target,
        bytes: elf.section_bytes(target),
        reloc: r,
        symbol,
    })
}

/// What the loader would get wrong or refuse of `r`, moved into a klp
/// section against `symbol`, that only the symbol's object tells (the
/// relocation in the input names an undefined symbol): on LoongArch, a
/// PC-relative type against vmlinux, written without a range check and
/// wrong, and the `HI20` of a `PCADD` pair, whose `LO12` cannot follow it.
/// `convert` asks this before it moves a relocation.
pub fn klp_move_rule(
    elf: &Elf,
    target: &crate::elf::Section,
    r: &Reloc,
    symbol: &crate::names::KlpSymbol,
) -> Option<Finding> {
    if elf.machine != abi::EM_LOONGARCH {
        return None;
    }
    if loongarch64::pcrel_far_move(elf, target.index, r, &symbol.obj) {
        let name = crate::names::show(&symbol.name).to_string();
        return Some(loongarch64::pcrel_far_finding(elf.machine, r, &name));
    }
    loongarch64::pcadd_hi20_move(elf.machine, r, symbol)
}

/// The finding for a type the loader does not handle, in its own words.
fn unsupported(loader: &Loader, machine: u16, r_type: u32) -> Finding {
    let hint = if r_type == 0 {
        " (a relocation neutralised to type 0 must be deleted, not kept)"
    } else {
        ""
    };
    Finding::new(
        Rule::RelocType,
        format!(
            "{}: the {} loader does not handle {}{hint}",
            (loader.refusal)(r_type),
            loader.name,
            reloc_type_name(machine, r_type)
        ),
    )
}

/// How far from the kernel image the module loaders of x86_64, arm64 and
/// s390 place modules: within 2 GiB of it, so that 32-bit PC-relative
/// references between modules and vmlinux always fit.
pub const MODULE_WINDOW: u64 = 1 << 31;

/// With the symbol's resolved address and the kernel image's extent
/// (`_text`..`_end` of the map's vmlinux): PC-relative klp relocations that
/// cannot reach the symbol from any place the loader may put the module
/// ("overflow in relocation type %d val %Lx"). Modules land within
/// [`MODULE_WINDOW`] of the kernel image on the architectures this models;
/// ppc64 places them anywhere in vmalloc space and is not modelled.
pub fn pc_relative_range(
    elf: &Elf,
    uses: &[(usize, Reloc)],
    addr: u64,
    kernel: (u64, u64),
) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(loader) = loader(elf.machine) else {
        return out;
    };
    // The distance from the nearest place a module can be, in the loaders'
    // arithmetic: modulo 2^64, so that x86's zero-based per-CPU offsets sit
    // just past the top of the address space, near the kernel.
    let lo = kernel.0.wrapping_sub(MODULE_WINDOW);
    let hi = kernel.1.wrapping_add(MODULE_WINDOW);
    let (from_lo, from_hi) = (addr.wrapping_sub(lo) as i64, addr.wrapping_sub(hi) as i64);
    let nearest = if from_lo >= 0 && from_hi <= 0 {
        0
    } else {
        from_lo.unsigned_abs().min(from_hi.unsigned_abs())
    };
    for (section, r) in uses {
        let Some(reach) = (loader.pc_reach)(r.r_type) else {
            continue;
        };
        if nearest <= reach {
            continue;
        }
        out.push(
            Finding::new(
                Rule::PcRelativeRange,
                format!(
                    "{}: {} reaches 0x{reach:x} bytes, but the symbol at 0x{addr:x} is 0x{nearest:x} from the nearest place a module can be loaded (within 2 GiB of the kernel image 0x{:x}-0x{:x}); {}",
                    if loader.pc_overflow_refused {
                        format!("overflow in relocation type {}", r.r_type)
                    } else {
                        "silent overflow".to_string()
                    },
                    reloc_type_name(elf.machine, r.r_type),
                    kernel.0,
                    kernel.1,
                    if loader.pc_overflow_refused {
                        "the loader refuses the module"
                    } else {
                        "the loader does not range-check this type: it writes the low 32 bits, and the code reaches another address"
                    }
                ),
            )
            .at_entry(elf, *section, r),
        );
    }
    out
}

/// With the symbol's resolved address: absolute relocations whose value does
/// not fit their field ("overflow in relocation type %d val %Lx"; on ppc64
/// ADDR32 the loader silently truncates). PC-relative ranges depend on where
/// the module is loaded and are not checked.
pub fn absolute_overflow(elf: &Elf, uses: &[(usize, Reloc)], addr: u64) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(loader) = loader(elf.machine) else {
        return out;
    };
    for (section, r) in uses {
        let Some((bits, signed, unsigned)) = (loader.absolute_field)(r.r_type) else {
            continue;
        };
        let value = addr.wrapping_add(r.addend as u64);
        let v = value as i64;
        let fits_signed = signed && v >= -(1i64 << (bits - 1)) && v < (1i64 << (bits - 1));
        let fits_unsigned = unsigned && value < (1u64 << bits);
        if fits_signed || fits_unsigned {
            continue;
        }
        let how = if elf.machine == abi::EM_PPC64 {
            "the ppc64 loader stores it truncated, without an error"
        } else {
            "the loader refuses the module"
        };
        out.push(
            Finding::new(
                Rule::AbsoluteOverflow,
                format!(
                    "overflow in relocation type {} val {value:x}: {} cannot hold the resolved address; {how}",
                    r.r_type,
                    reloc_type_name(elf.machine, r.r_type)
                ),
            )
            .in_section(elf.section_name(*section))
            .at(r.offset)
            .symbol(elf.symbols[r.sym as usize].display_name()),
        );
    }
    out
}

/// The module-specific klp relocations of `elf` whose type `takes` (and
/// whose section `keep` accepts): the objects they reach, and one
/// "TYPE against 'sym' of 'obj'" line each, first seen first. The GOT and
/// PLT rules of s390 and LoongArch report them; vmlinux symbols never move.
pub(crate) fn module_specific_entries(
    elf: &Elf,
    keep: impl Fn(&Section) -> bool,
    takes: impl Fn(u32) -> bool,
) -> Option<(Vec<String>, Vec<String>)> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for rs in &elf.relocs {
        let sec = &elf.sections.at(rs.index);
        if sec.sh_flags & SHF_RELA_LIVEPATCH == 0 || !keep(sec) {
            continue;
        }
        let Ok(obj) = crate::names::klp_section_object(sec.name) else {
            continue;
        };
        if obj == crate::names::VMLINUX {
            continue;
        }
        for r in rs.entries().filter(|r| takes(r.r_type)) {
            let Some(sym) = elf.symbols.get(r.sym as usize) else {
                continue;
            };
            let name = crate::names::parse_klp_symbol(sym.name).map_or_else(
                |_| sym.display_name(),
                |k| crate::names::show(&k.name).to_string(),
            );
            let what = format!(
                "{} against '{name}' of '{}'",
                reloc_type_name(elf.machine, r.r_type),
                crate::names::show(obj)
            );
            let key = (crate::names::show(obj).to_string(), what);
            if !seen.contains(&key) {
                seen.push(key);
            }
        }
    }
    if seen.is_empty() {
        return None;
    }
    let mut objs: Vec<String> = Vec::new();
    for (o, _) in &seen {
        if !objs.contains(o) {
            objs.push(o.clone());
        }
    }
    Some((objs, seen.into_iter().map(|(_, w)| w).collect()))
}
