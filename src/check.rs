//! `klp-convert check`: predict, before loading, what the kernel will refuse
//! or silently misapply in a livepatch module, whoever made it. The rules
//! themselves live in [`crate::rules`] and [`crate::arch`]; this module
//! reads modules and reports, one [`ModuleReport`] a file.

use std::path::PathBuf;

use serde::Serialize;

use crate::elf::{signature, Elf, SHF_RELA_LIVEPATCH, SHN_LIVEPATCH};
use crate::finding::{Finding, Rule, Severity};
use crate::maps::SymbolMap;
use crate::rules::{self, Target};

/// A file whose check hit a bug of this tool ([`FileError::Panicked`]).
pub use crate::parallel::Panicked;

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
    pub findings: Vec<Finding>,
}

impl ModuleReport {
    /// Number of findings of a severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
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
                findings: vec![Finding::new(
                    Rule::NotElf,
                    format!("not a readable ELF object: {e}"),
                )],
            }
        }
    };
    let target = Target::of(&elf, release);
    // Maps read for the names of other modules (or of this one before it
    // changed) would answer wrongly about names they dropped.
    let stale = map.is_some_and(|m| !m.answers_for(&elf));
    let mut findings = rules::all(&elf, &target, map.filter(|_| !stale));
    if stale {
        findings.push(rules::resolution::maps_not_for_module());
    }
    findings.sort_by_key(|p| std::cmp::Reverse(p.severity));
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
        findings,
    }
}

/// Why a file given to `check` has no [`ModuleReport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// It could not be read (or decompressed).
    #[error("{0}")]
    Read(#[source] crate::module_file::Error),
    /// Checking it hit a bug of this tool; the other files were checked.
    #[error("{0}")]
    Panicked(#[source] Panicked),
}

/// Check many files in parallel; reports in the order of `files`. A file
/// that cannot be read, or whose check panicked, yields `Err` with the
/// reason, and the other files are checked all the same.
pub fn check_files(
    files: &[PathBuf],
    release: Option<&str>,
    map: Option<&SymbolMap>,
) -> Vec<Result<ModuleReport, FileError>> {
    crate::parallel::map_files(files, |path| {
        let name = path.display().to_string();
        // Mapped, not copied; a file truncated meanwhile is not reported on.
        let module = crate::module_file::open(path)?;
        let report = check_bytes(&name, &module, release, map);
        module.whole().map(|()| report)
    })
    .into_iter()
    .map(|r| match r {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => Err(FileError::Read(e)),
        Err(p) => Err(FileError::Panicked(p)),
    })
    .collect()
}
