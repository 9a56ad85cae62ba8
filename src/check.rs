//! `klp-convert check`: predict, before loading, what the kernel will refuse
//! or silently misapply in a livepatch module, whoever made it. The rules
//! themselves live in [`crate::rules`] and [`crate::arch`]; this module
//! reads modules and reports, one [`ModuleReport`] a file.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::elf::{signature, Elf, SHF_RELA_LIVEPATCH, SHN_LIVEPATCH};
use crate::finding::{Finding, Rule, Severity};
use crate::rules::{self, Target};
use crate::symbols::SymbolMap;

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

/// Read a module file. Compressed modules (`.ko.xz`, `.ko.zst`, as
/// distributions ship them) are recognised by their magic bytes and
/// decompressed, whatever the file is called.
pub fn read_module(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    if raw.starts_with(XZ_MAGIC) {
        xz2::read::XzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("{}: xz: {e}", path.display()))?;
        Ok(out)
    } else if raw.starts_with(ZSTD_MAGIC) {
        ruzstd::streaming_decoder::StreamingDecoder::new(&raw[..])
            .map_err(|e| format!("{}: zstd: {e}", path.display()))?
            .read_to_end(&mut out)
            .map_err(|e| format!("{}: zstd: {e}", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// The first bytes of an xz stream.
const XZ_MAGIC: &[u8] = b"\xfd7zXZ\0";
/// The first bytes of a zstd frame.
const ZSTD_MAGIC: &[u8] = b"\x28\xb5\x2f\xfd";

/// Module file names `check` and the map readers pick up in a directory.
const MODULE_SUFFIXES: [&str; 3] = [".ko", ".ko.xz", ".ko.zst"];

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
    let mut findings = rules::all(&elf, &target, map);
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

/// The module files named by `paths`: files as given, directories searched
/// for `.ko`, `.ko.xz` and `.ko.zst`, sorted.
pub fn module_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            let mut found = Vec::new();
            while let Some(d) = stack.pop() {
                let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
                for e in entries.flatten() {
                    let path = e.path();
                    match e.file_type() {
                        Ok(t) if t.is_dir() => stack.push(path),
                        Ok(t) if t.is_file() => {
                            let name = path.to_string_lossy();
                            if MODULE_SUFFIXES.iter().any(|s| name.ends_with(s)) {
                                found.push(path);
                            }
                        }
                        _ => {}
                    }
                }
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
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
        read_module(path).map(|bytes| check_bytes(&name, &bytes, release, map))
    })
}
