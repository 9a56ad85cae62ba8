//! `klp-convert check`: predict, before loading, what the kernel will refuse
//! or silently misapply in a livepatch module.
//!
//! * [`structural`] — the ELF contract of `shared/docs/klp-abi.md` §1–§5;
//! * [`loader`] — each architecture's `apply_relocate_add` rules for klp
//!   relocations (types it accepts, bytes it expects);
//! * warnings for what breaks only on some kernels (late relocations into
//!   read-only data, x86 before 6.3 re-applying after a target reload).
//!
//! `convert` runs the same rules on its own output before writing it.

pub mod loader;
mod structural;

use std::path::PathBuf;

use serde::Serialize;

use crate::diag::{Problem, Severity};
use crate::elf::{signature, Elf, SHF_EXECINSTR, SHF_RELA_LIVEPATCH, SHF_WRITE, SHN_LIVEPATCH};
use crate::maps::{SymbolMap, Unresolved};
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

    /// `KSYM_NAME_LEN - 1` of the target (511 when the release is unknown).
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
}

/// The structural rules alone, for the module's own vermagic.
pub fn structural(elf: &Elf) -> Vec<Problem> {
    structural::rules(elf, &Target::of(elf, None))
}

/// Every rule: structural, kernel-dependent warnings, the loader rules of
/// the module's architecture and, given symbol maps, resolution of every klp
/// symbol and of every ordinary undefined symbol.
pub fn all(elf: &Elf, target: &Target, map: Option<&SymbolMap>) -> Vec<Problem> {
    let mut out = structural::rules(elf, target);
    out.extend(warnings(elf, target));
    out.extend(loader::rules(elf));
    if let Some(map) = map {
        out.extend(resolution(elf, map));
    }
    out
}

/// Resolve every klp symbol as `klp_find_object_symbol` would, and every
/// ordinary undefined symbol against the exports (`Module.symvers`).
fn resolution(elf: &Elf, map: &SymbolMap) -> Vec<Problem> {
    let mut out = Vec::new();
    let module = elf
        .modinfo_value("name")
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .unwrap_or_else(|| "the module".into());
    // The klp relocations of each klp symbol: (klp section, entry).
    let mut uses: std::collections::HashMap<u32, Vec<(usize, crate::elf::Reloc)>> =
        std::collections::HashMap::new();
    for rs in &elf.relocs {
        if elf.sections[rs.index].sh_flags & SHF_RELA_LIVEPATCH != 0 {
            for r in &rs.entries {
                uses.entry(r.sym).or_default().push((rs.index, *r));
            }
        }
    }
    let lookup = map.lookup();
    for sym in &elf.symbols {
        let shown = sym.display_name();
        if sym.st_shndx == SHN_LIVEPATCH {
            let Ok(k) = names::parse_klp_symbol(sym.name) else {
                continue; // a structural finding already
            };
            let at = |p: Problem| p.in_section(".symtab").symbol(shown.clone());
            if !map.has(&k.obj) {
                out.push(at(Problem::warning(format!(
                    "object '{}' is not in the symbol maps given: '{}' was not resolved",
                    k.obj, k.name
                ))));
                continue;
            }
            let candidates = || {
                let list: Vec<String> = lookup
                    .candidates(&k.obj, &k.name)
                    .iter()
                    .enumerate()
                    .map(|(i, s)| match s.place() {
                        Some(place) => format!("position {} at {place}", i + 1),
                        None => format!("position {}", i + 1),
                    })
                    .collect();
                list.join(", ")
            };
            match lookup.find(&k.obj, &k.name, k.pos) {
                Ok(r) => {
                    out.push(at(Problem::note(match &r.place {
                        Some(place) => format!(
                            "resolves to {place} in {} (position {} of {})",
                            k.obj, r.position, r.count
                        ),
                        None => format!(
                            "resolves in {} (position {} of {}; the symbol maps give no address)",
                            k.obj, r.position, r.count
                        ),
                    })));
                    // Only an absolute address can overflow a field; a .ko
                    // map gives section-relative values, a symbols.klp none.
                    let absolute = r.place.as_deref().is_some_and(|p| p.starts_with("0x"));
                    let (true, Some(addr)) = (absolute, r.addr) else {
                        continue;
                    };
                    if let Some(rels) = uses.get(&(sym.index as u32)) {
                        out.extend(loader::absolute_overflow(elf, rels, addr));
                    }
                }
                Err(Unresolved::NotFound) => out.push(at(Problem::error(format!(
                    "symbol '{}' not found in symbol table (object {})",
                    k.name, k.obj
                )))),
                Err(Unresolved::Ambiguous(n)) => out.push(at(Problem::error(format!(
                    "unresolvable ambiguity for symbol '{}' in object '{}': {n} candidates ({}); give the 1-based position",
                    k.name,
                    k.obj,
                    candidates()
                )))),
                Err(Unresolved::NoSuchPosition(n)) => out.push(at(Problem::error(format!(
                    "symbol position {} for symbol '{}' in object '{}' not found: it has {n} ({})",
                    k.pos,
                    k.name,
                    k.obj,
                    candidates()
                )))),
            }
        } else if sym.st_shndx == crate::elf::SHN_UNDEF
            && !sym.name.is_empty()
            && sym.bind() != object::elf::STB_WEAK
            && sym.name != b".TOC."
            && !names::is_annotation(sym.name)
            && map.is_exported(&shown) == Some(false)
        {
            out.push(
                Problem::error(format!(
                    "{module}: Unknown symbol {shown} (err -2): neither exported (Module.symvers) nor converted to a klp symbol"
                ))
                .in_section(".symtab")
                .symbol(shown),
            );
        }
    }
    out
}

/// What works on some kernels and breaks on others.
fn warnings(elf: &Elf, target: &Target) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut module_specific = false;
    for s in &elf.sections {
        if s.sh_flags & SHF_RELA_LIVEPATCH == 0 {
            continue;
        }
        let Ok(obj) = names::klp_section_object(&s.name) else {
            continue;
        };
        if obj == VMLINUX {
            continue;
        }
        module_specific = true;
        let Some(t) = elf.sections.get(s.sh_info as usize) else {
            continue;
        };
        let read_only = t.sh_flags & (SHF_WRITE | SHF_EXECINSTR) == 0
            || t.name.starts_with(b".data..ro_after_init")
            || t.name.starts_with(b".data.rel.ro");
        if read_only && t.is_alloc() {
            out.push(
                Problem::warning(format!(
                    "late relocation into read-only section {}: applied when '{obj}' loads, after the section was made read-only; this crashed ppc64le and arm64 on some kernels",
                    t.display_name()
                ))
                .in_section(s.display_name()),
            );
        }
    }
    let old_x86 = elf.machine == object::elf::EM_X86_64
        && target.release.as_ref().is_some_and(|r| r.before(6, 3));
    if module_specific && old_x86 {
        out.push(Problem::warning(format!(
            "kernel {} (x86_64, before 6.3) does not clear module-specific klp relocations when the patched module unloads: while this patch stays enabled, loading that module again is refused ('failed to initialize patch ... (-8)')",
            target.release_text()
        )));
    }
    out
}

/// What `check` found in one module.
#[derive(Debug, Serialize)]
pub struct ModuleReport {
    /// The file checked.
    pub file: String,
    /// Has `livepatch=Y` or any klp section or symbol.
    pub livepatch: bool,
    /// The release checked against, when known.
    pub release: Option<String>,
    /// Findings, errors first.
    pub problems: Vec<Problem>,
}

impl ModuleReport {
    /// Number of findings of a severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == severity)
            .count()
    }
}

/// Check a module held in memory.
pub fn check_bytes(
    file: &str,
    bytes: &[u8],
    release: Option<&str>,
    map: Option<&SymbolMap>,
) -> ModuleReport {
    let (image, _) = signature::split(bytes);
    let elf = match Elf::parse(image) {
        Ok(elf) => elf,
        Err(e) => {
            return ModuleReport {
                file: file.to_string(),
                livepatch: false,
                release: release.map(str::to_string),
                problems: vec![Problem::error(format!("not a readable ELF object: {e}"))],
            }
        }
    };
    let target = Target::of(&elf, release);
    let mut problems = all(&elf, &target, map);
    problems.sort_by_key(|p| std::cmp::Reverse(p.severity));
    let livepatch = elf.is_livepatch()
        || elf.symbols.iter().any(|s| s.st_shndx == SHN_LIVEPATCH)
        || elf
            .sections
            .iter()
            .any(|s| s.sh_flags & SHF_RELA_LIVEPATCH != 0);
    ModuleReport {
        file: file.to_string(),
        livepatch,
        release: target.release.map(|r| r.text),
        problems,
    }
}

/// Check many files in parallel; reports in the order of `files`. A file
/// that cannot be read yields `Err` with the reason.
pub fn check_files(
    files: &[PathBuf],
    release: Option<&str>,
    map: Option<&SymbolMap>,
) -> Vec<Result<ModuleReport, String>> {
    crate::parallel::map_files(files, |path| {
        let name = path.display().to_string();
        crate::module_file::read(path)
            .map(|bytes| check_bytes(&name, &bytes, release, map))
            .map_err(|e| e.to_string())
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
