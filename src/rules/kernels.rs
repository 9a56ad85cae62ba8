//! What depends on the kernel a module is for: the release (from
//! `--kernel-release` or the module's vermagic) and the rules that hold on
//! some releases and architectures only.

use crate::arch;
use crate::elf::{abi, Elf, SHF_EXECINSTR, SHF_RELA_LIVEPATCH, SHF_WRITE};
use crate::finding::{Finding, Rule, Severity};
use crate::names::{self, VMLINUX};

/// A kernel release, as far as the rules care: `major.minor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The release string as given (`6.1.0-56-amd64`).
    pub text: String,
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl Release {
    /// Parse the leading `major.minor` of a release string.
    pub fn parse(text: &str) -> Option<Release> {
        let mut parts = text.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Release {
            text: text.to_string(),
            major,
            minor,
        })
    }

    /// Is this release older than `major.minor`?
    pub fn before(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) < (major, minor)
    }
}

/// The kernel a module is checked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// The release, from `--kernel-release` or the module's vermagic.
    pub release: Option<Release>,
}

impl Target {
    /// The target of `elf`: `release` if given, else `.modinfo` vermagic.
    pub fn of(elf: &Elf, release: Option<&str>) -> Target {
        let from_module = || {
            let vermagic = elf.modinfo_value("vermagic")?;
            let text = std::str::from_utf8(vermagic).ok()?;
            text.split_whitespace().next().map(str::to_string)
        };
        let text = release.map(str::to_string).or_else(from_module);
        Target {
            release: text.as_deref().and_then(Release::parse),
        }
    }

    /// `KSYM_NAME_LEN - 1` of the target (511 when the release is unknown):
    /// 127 before 6.1, 511 since ("kallsyms: increase maximum kernel symbol
    /// length to 512", 6.1). Debian's 5.10 and 6.1/6.12 show both sides
    /// (tests/kernel_e2e.rs step 14).
    pub fn max_symbol_name(&self) -> usize {
        match &self.release {
            Some(r) if r.before(6, 1) => names::MAX_SYM_NAME_OLD,
            _ => names::MAX_SYM_NAME,
        }
    }

    /// The release for messages.
    pub fn release_text(&self) -> &str {
        self.release
            .as_ref()
            .map_or("(unknown release)", |r| r.text.as_str())
    }

    /// Is the release known and older than `major.minor`? An unknown
    /// release counts as old: the warning is then given.
    fn before_or_unknown(&self, major: u32, minor: u32) -> bool {
        self.release.as_ref().is_none_or(|r| r.before(major, minor))
    }

    /// The kernel, for a message of what it does before 6.16: "kernel
    /// 6.12.0 (before 6.16)", or for an unknown release "a kernel before
    /// 6.16 (the release is unknown)".
    fn before_percpu_relocated(&self) -> String {
        match &self.release {
            Some(r) => format!("kernel {} (before 6.16)", r.text),
            None => "a kernel before 6.16 (the release is unknown)".to_string(),
        }
    }

    /// May the kernel drop relocations into the per-CPU section? Before
    /// 6.16, or an unknown release, which a warning or refusal takes for
    /// old (where [`Target::relocates_percpu`] takes it for new, so that
    /// its relocations are judged all the same).
    pub fn may_drop_percpu(&self) -> bool {
        let (major, minor) = PERCPU_RELOCATED_FROM;
        self.before_or_unknown(major, minor)
    }

    /// Does the loader apply ordinary relocations into the per-CPU section?
    /// From 6.16 on; before, it has cleared that section's `SHF_ALLOC` by
    /// then ([`percpu_target`]). An unknown release is taken to (its
    /// relocations are judged).
    pub fn relocates_percpu(&self) -> bool {
        let (major, minor) = PERCPU_RELOCATED_FROM;
        !self
            .release
            .as_ref()
            .is_some_and(|r| r.before(major, minor))
    }
}

/// The first release whose loader relocates the per-CPU section in its
/// template before copying it ("module: Make sure relocations are applied
/// to the per-CPU section"); before, it has cleared its `SHF_ALLOC`.
const PERCPU_RELOCATED_FROM: (u32, u32) = (6, 16);

/// A module-specific klp relocation is written when its object loads, after
/// the livepatch module's memory was made read-only. Each architecture's
/// `apply_relocate_add` learned to write through its code-patching helper at
/// some release (x86 `text_poke`, s390 `s390_kernel_write`, ppc64
/// `patch_instruction`); before that, the write faulted. ppc64 writes only
/// its calls that way: its data types are plain stores on every release
/// (module_64.c, 6.1 to 7.2), and into read-only memory they fault.
pub fn late_reloc_read_only(elf: &Elf, target: &Target) -> Vec<Finding> {
    let (since, how) = arch::late_writes(elf.machine);
    // Safe on this release: say so in a note, as the reason there is no warning.
    let safe = since.is_some_and(|(major, minor)| !target.before_or_unknown(major, minor));
    let when = match since {
        Some(_) if safe => format!(
            "{how}, so kernel {} writes it safely",
            target.release_text()
        ),
        Some(_) => format!(
            "{how}; kernel {} is older (or unknown), and there the write faults",
            target.release_text()
        ),
        None => how.to_string(),
    };
    let mut out = Vec::new();
    for s in module_specific_sections(elf) {
        let (obj, sec) = s;
        let Some(t) = elf.sections.get(sec.sh_info as usize) else {
            continue;
        };
        if !t.is_alloc() {
            continue;
        }
        if let Some(f) = plain_store_read_only(elf, obj, &sec, &t) {
            out.push(f);
            continue;
        }
        // A module's .data.rel.ro is writable data (SHF_WRITE); only
        // .data..ro_after_init becomes read-only after init.
        let read_only = t.sh_flags & (SHF_WRITE | SHF_EXECINSTR) == 0
            || t.name.starts_with(b".data..ro_after_init");
        if read_only {
            out.push(
                Finding::new(
                    Rule::LateRelocReadOnly,
                    format!(
                        "late relocation into read-only section {}: applied when '{}' loads, after the section was made read-only; {when}",
                        t.display_name(),
                        names::show(obj)
                    ),
                )
                .with_severity(if safe { Severity::Note } else { Severity::Warning })
                .in_section(sec.display_name()),
            );
        }
    }
    out
}

/// A module-specific klp section whose entries the loader writes with a
/// plain store (ppc64's data types) into a section that is read-only when
/// they are written: `.rodata` and the like from the livepatch module's load
/// on, `.data..ro_after_init` from the end of its init (`do_init_module`).
/// The store faults, on every release.
/// Would a late (module-specific) klp relocation of `r_type` into `t` be
/// written with a plain store into read-only memory ([`late_reloc_read_only`]'s
/// error: ppc64's data types into `.rodata` or `.data..ro_after_init`)?
pub fn plain_store_into_read_only(machine: u16, r_type: u32, t: &crate::elf::Section) -> bool {
    let read_only =
        t.name == b".data..ro_after_init" || t.sh_flags & (SHF_WRITE | SHF_EXECINSTR) == 0;
    read_only && t.is_alloc() && !arch::late_write_helper(machine, r_type)
}

fn plain_store_read_only(
    elf: &Elf,
    obj: &[u8],
    sec: &crate::elf::Section,
    t: &crate::elf::Section,
) -> Option<Finding> {
    let ro_after_init = t.name == b".data..ro_after_init";
    let read_only = t.sh_flags & (SHF_WRITE | SHF_EXECINSTR) == 0;
    if !(ro_after_init || read_only) {
        return None;
    }
    let mut types: Vec<String> = Vec::new();
    for r in elf.reloc_entries(sec.index) {
        if !arch::late_write_helper(elf.machine, r.r_type) {
            let name = arch::reloc_type_name(elf.machine, r.r_type);
            if !types.contains(&name) {
                types.push(name);
            }
        }
    }
    if types.is_empty() {
        return None;
    }
    let obj = names::show(obj);
    let when = if ro_after_init {
        format!(
            "the section is made read-only when the livepatch module's init ends, so the store faults whenever '{obj}' loads after the patch or is loaded again under it (it succeeds only while the patch's own init applies it, '{obj}' being loaded first)"
        )
    } else {
        format!("the section is read-only from the livepatch module's load on, so the store faults when the relocation is applied (when '{obj}' is loaded)")
    };
    Some(
        Finding::new(
            Rule::LateRelocReadOnly,
            format!(
                "late relocation into read-only section {}: {} writes {} with a plain store, not through patch_instruction(), on every release; {when}. Keep what the patch relocates against '{obj}' in writable data (not const, not __ro_after_init)",
                t.display_name(),
                arch::machine_name(elf.machine),
                types.join(", "),
            ),
        )
        .with_severity(Severity::Error)
        .in_section(sec.display_name()),
    )
}

pub use arch::is_percpu_section;

/// klp relocations into the livepatch module's `.data..percpu`.
///
/// * vmlinux sections: `apply_relocations` skips a relocation section
///   whose target lacks `SHF_ALLOC`, and the per-CPU section has lost it
///   by then: the relocations are dropped silently before 6.16 (6.1 and
///   6.12). 6.16 ("module: Make sure relocations are applied to the per-CPU
///   section") relocates it in the load image before `percpu_modcopy`
///   copies it to every CPU (7.2 does).
/// * module-specific sections: `klp_apply_object_relocs` checks no
///   `SHF_ALLOC`, and writes at the section's `sh_addr`, which still points
///   into the load image `load_module` freed (6.1 to 7.2): never into the
///   per-CPU copies.
pub fn percpu_target(obj: &[u8], t: &crate::elf::Section, target: &Target) -> Option<Finding> {
    if !is_percpu_section(t) {
        return None;
    }
    let what = if obj == VMLINUX {
        if !target.may_drop_percpu() {
            return None;
        }
        format!(
            "{} drops it silently: the loader clears the per-CPU section's SHF_ALLOC and skips relocations into sections without it, so the per-CPU copies keep the unrelocated bytes",
            target.before_percpu_relocated()
        )
    } else {
        format!(
            "it is applied late, when '{}' loads, at the section's address in the module's load image, which the loader freed after loading: it never reaches the per-CPU copies, and writes into freed memory (every release)",
            names::show(obj)
        )
    };
    Some(Finding::new(
        Rule::PercpuTarget,
        format!(
            "klp relocation into {}: {what}. Keep the reference out of per-CPU data: store it in ordinary data and copy it in at init",
            t.display_name()
        ),
    ))
}

/// Every klp relocation section into the per-CPU section ([`percpu_target`]).
pub fn percpu_targets(elf: &Elf, target: &Target) -> Vec<Finding> {
    elf.sections
        .iter()
        .filter(|s| s.sh_flags & SHF_RELA_LIVEPATCH != 0)
        .filter_map(|sec| {
            let obj = names::klp_section_object(sec.name).ok()?;
            let t = elf.sections.get(sec.sh_info as usize)?;
            percpu_target(obj, &t, target).map(|f| f.in_section(sec.display_name()))
        })
        .collect()
}

/// Ordinary relocation sections into the per-CPU section, on a kernel
/// before 6.16 (or an unknown one): `apply_relocations` drops them as it
/// drops the vmlinux klp ones ([`percpu_target`]), silently, and the
/// per-CPU copies keep the bytes of the file (a RELA entry's are usually
/// zero: a statically initialised per-CPU pointer reads NULL). Any module's
/// are, not only a livepatch's: a warning. Types the loader writes nothing
/// for are not counted. Seen on Debian's 5.10, 6.1 and 6.12 (kernel_e2e
/// step 11b).
pub fn percpu_unrelocated(elf: &Elf, target: &Target) -> Vec<Finding> {
    let mut out = Vec::new();
    if !target.may_drop_percpu() {
        return out;
    }
    // The per-CPU section, as `find_sec` finds it: the first allocated one
    // of that name. Only the relocation sections into it are decoded.
    let Some(percpu) = elf
        .sections
        .iter()
        .find(|t| t.is_alloc() && is_percpu_section(t))
    else {
        return out;
    };
    let into = elf
        .sections
        .relocation_sections()
        .filter(|&(_, info)| info as usize == percpu.index);
    for (index, _) in into {
        let sec = elf.sections.at(index);
        if sec.sh_flags & SHF_RELA_LIVEPATCH != 0 {
            continue;
        }
        let n = elf
            .reloc_entries(index)
            .filter(|r| !arch::writes_nothing(elf.machine, r.r_type))
            .count();
        if n == 0 {
            continue;
        }
        out.push(
            Finding::new(
                Rule::PercpuUnrelocated,
                format!(
                    "{n} relocation{} into {}: {} drops {} silently: the loader clears the per-CPU section's SHF_ALLOC and skips relocations into sections without it, so every CPU's copy keeps the unrelocated bytes of the file. Initialise such per-CPU data at init rather than statically",
                    if n == 1 { "" } else { "s" },
                    names::show(arch::PERCPU_SECTION),
                    target.before_percpu_relocated(),
                    if n == 1 { "it" } else { "them" },
                ),
            )
            .in_section(sec.display_name()),
        );
    }
    out
}

/// Before 6.3 (`clear_relocate_add`, and ppc64's `restore_r2` accepting its
/// own TOC restore) the klp relocations of a patched module stay written
/// when it unloads. Loading it again under the enabled patch then fails:
/// x86_64 finds non-zero target bytes, ppc64 finds the `ld r2,24(r1)` it
/// wrote after a call instead of the nop ("Expected nop after call, got
/// e8410018"). s390 and arm64 check neither and re-apply (s390 except its
/// GOT and PLT entries: `arch::s390x::got_stale`). Both sides on real
/// kernels: Debian's x86_64 5.10 and 6.1 refuse, 6.12 and 7.3 re-apply
/// (tests/kernel_e2e.rs step 3).
pub fn reload_before_6_3(elf: &Elf, target: &Target) -> Option<Finding> {
    let old = target.release.as_ref().is_some_and(|r| r.before(6, 3));
    if !old {
        return None;
    }
    let how = match elf.machine {
        abi::EM_X86_64 if module_specific_sections(elf).next().is_some() => {
            "x86_64 refuses to write over the old non-zero bytes"
        }
        abi::EM_PPC64 if calls_into_modules(elf) => {
            "ppc64 finds the TOC restore it wrote after a call ('Expected nop after call, got e8410018')"
        }
        _ => return None,
    };
    Some(Finding::new(
        Rule::ReloadBefore63,
        format!(
            "kernel {} (before 6.3) does not clear module-specific klp relocations when the patched module unloads, and {how}: while this patch stays enabled, loading that module again is refused ('failed to initialize patch ... (-8)')",
            target.release_text()
        ),
    ))
}

/// Does a module-specific klp section hold a ppc64 call (`R_PPC64_REL24`)?
fn calls_into_modules(elf: &Elf) -> bool {
    module_specific_sections(elf).any(|(_, sec)| {
        elf.reloc_entries(sec.index)
            .any(|r| r.r_type == abi::R_PPC64_REL24)
    })
}

/// The klp relocation sections of objects other than vmlinux, with their object.
fn module_specific_sections<'e>(
    elf: &'e Elf<'e>,
) -> impl Iterator<Item = (&'e [u8], crate::elf::Section<'e>)> + 'e {
    elf.sections
        .iter()
        .filter(|s| s.sh_flags & SHF_RELA_LIVEPATCH != 0)
        .filter_map(|s| {
            let obj = names::klp_section_object(s.name).ok()?;
            (obj != VMLINUX).then_some((obj, s))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases() {
        let r = Release::parse("6.1.0-56-amd64").unwrap();
        assert_eq!((r.major, r.minor), (6, 1));
        assert!(r.before(6, 3) && !r.before(6, 1));
        let r = Release::parse("6.12.117+deb12-amd64").unwrap();
        assert_eq!((r.major, r.minor), (6, 12));
        assert!(Release::parse("vmlinux").is_none());
        let old = Target {
            release: Release::parse("5.14.0"),
        };
        assert_eq!(old.max_symbol_name(), 127);
        assert_eq!(Target::default().max_symbol_name(), 511);
    }
}
