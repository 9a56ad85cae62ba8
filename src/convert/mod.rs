//! Conversion, read as its steps:
//!
//! 1. [`select`] — the references the author annotated (`KLP_RELOC_SYMBOL`,
//!    `KLP_SYMPOS` tables);
//! 2. [`resolve`] — with symbol maps, the annotated positions checked and the
//!    unannotated references given their klp form;
//! 3. [`plan`] — which relocations move into which klp section, asking
//!    [`crate::rules`] what the kernel would refuse;
//! 4. [`apply`] — the plan carried out on a copy, nothing renumbered;
//! 5. [`verify`] — the output re-read and proved against the rules and the
//!    input.
//!
//! [`convert_bytes_with`] runs them in that order; nothing is written unless
//! all five pass.

pub mod apply;
pub mod plan;
pub mod resolve;
pub mod select;
pub mod verify;

use std::fs;
use std::path::Path;

use crate::elf::read::ReadError;
use crate::elf::write::WriteError;
use crate::elf::{signature, Elf};
use crate::finding::{Finding, Rule};
use crate::maps::SymbolMap;
use crate::module_file;
use crate::rules::resolution::{self, Report};

/// Why a conversion did not produce output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The module breaks the livepatch contract; every problem found.
    #[error("{}", lines(.0))]
    Refused(Vec<Finding>),
    /// The input is not a readable ELF object.
    #[error("{0}")]
    Malformed(#[source] ReadError),
    /// Reading the input or writing the output failed.
    #[error("{0}")]
    Io(#[source] module_file::Error),
    /// The converter produced output that failed its own verification (a bug).
    #[error("{}", lines(.0))]
    Internal(Vec<Finding>),
}

/// The findings, one a line.
fn lines(findings: &[Finding]) -> String {
    let lines: Vec<String> = findings.iter().map(|p| p.to_string()).collect();
    lines.join("\n")
}

/// A successful conversion.
#[derive(Debug)]
pub struct Converted {
    /// The new file contents.
    pub bytes: Vec<u8>,
    /// Did anything change? (`false`: `bytes` equals the input.)
    pub changed: bool,
    /// Warnings and notes (signature dropped, relocations left in debug sections, ...).
    pub notes: Vec<Finding>,
    /// Symbols renamed.
    pub symbols: usize,
    /// Relocations moved into klp sections.
    pub relocations: usize,
    /// klp sections created or extended.
    pub sections: usize,
}

/// Steps 1–3: select, resolve (with `map`) and plan. Returns the plan and
/// its notes, or every refusal found.
pub fn make_plan(
    elf: &Elf,
    map: Option<&SymbolMap>,
) -> Result<(plan::Plan, Vec<Finding>), Vec<Finding>> {
    make_plan_with(elf, map, true)
}

/// [`make_plan`], with or without the loader's per-entry rules
/// ([`plan::plan_with`]): without, what a converter that does not ask the
/// machine's loader would write.
pub fn make_plan_with(
    elf: &Elf,
    map: Option<&SymbolMap>,
    loader: bool,
) -> Result<(plan::Plan, Vec<Finding>), Vec<Finding>> {
    let (mut sel, mut problems) = select::select(elf);
    if let Some(map) = map {
        problems.extend(resolve::resolve(elf, map, &mut sel));
    }
    let (plan, mut refusals) = plan::plan_with(elf, sel, loader);
    problems.append(&mut refusals);
    if problems.iter().any(Finding::is_error) {
        return Err(problems);
    }
    problems.extend(plan.notes.iter().cloned());
    Ok((plan, problems))
}

/// Every problem in one run: `problems`, then the loader's refusals of the
/// input that they do not already name (same rule, section and offset).
fn with_loader_refusals(elf: &Elf, mut problems: Vec<Finding>) -> Vec<Finding> {
    for f in crate::arch::loader_rules(elf) {
        let known = problems
            .iter()
            .any(|p| (p.rule, &p.section, p.offset) == (f.rule, &f.section, f.offset));
        if f.is_error() && !known {
            problems.push(f);
        }
    }
    problems
}

/// Convert a module held in memory (annotated references only).
pub fn convert_bytes(file: &[u8]) -> Result<Converted, Error> {
    convert_bytes_with(file, None)
}

/// Convert a module held in memory; with symbol maps, unannotated
/// references to unexported symbols too.
pub fn convert_bytes_with(file: &[u8], map: Option<&SymbolMap>) -> Result<Converted, Error> {
    let (image, sig) = signature::split(file);
    let elf = Elf::parse(image).map_err(Error::Malformed)?;
    let (mut plan, notes) = make_plan(&elf, map)
        .map_err(|problems| Error::Refused(with_loader_refusals(&elf, problems)))?;
    let mut notes = notes;
    // What the input breaks of the contract stays broken in the output
    // unless the conversion mends it (the annotations it converts): such a
    // module is refused here, as the input's fault, rather than found by
    // `verify` in the output and reported as a bug of this tool.
    let target = crate::rules::Target::of(&elf, None);
    let mended: &[Rule] = if plan.is_empty() {
        &[]
    } else {
        &[Rule::UnconvertedAnnotation, Rule::UnconvertedSymposTable]
    };
    let broken: Vec<Finding> = crate::rules::contract::module_except(&elf, &target, mended)
        .into_iter()
        .filter(Finding::is_error)
        .collect();
    if plan.is_empty() {
        // Nothing to convert: the module goes out as it came, so it must
        // already pass what `check` asks of any module (a module from
        // another tool is judged by the same rules).
        let release = crate::rules::Target::of(&elf, None);
        let refusals: Vec<Finding> = broken
            .into_iter()
            .chain(crate::arch::loader_rules(&elf))
            .chain(crate::rules::kernels::late_reloc_read_only(&elf, &release))
            .chain(crate::rules::kernels::percpu_targets(&elf, &release))
            .chain(
                map.map(|m| resolution::module_report(&elf, m, Report::Errors))
                    .into_iter()
                    .flatten(),
            )
            .filter(Finding::is_error)
            .collect();
        if !refusals.is_empty() {
            return Err(Error::Refused(refusals));
        }
        if let Some(m) = map {
            let table = crate::klp_patch::read(&elf);
            notes.extend(resolution::unchecked_orders(&elf, m, table.as_ref()));
        }
        return Ok(Converted {
            bytes: file.to_vec(),
            changed: false,
            notes,
            symbols: 0,
            relocations: 0,
            sections: 0,
        });
    }
    if !broken.is_empty() {
        return Err(Error::Refused(with_loader_refusals(&elf, broken)));
    }
    let bytes = apply::apply(&elf, &plan).map_err(|e| match e {
        // A section the input aligns beyond what the writer moves.
        WriteError::Alignment { .. } => Error::Malformed(ReadError(e.to_string())),
        _ => Error::Internal(vec![Finding::new(Rule::Verify, e.to_string())]),
    })?;
    // The entries are in the output now, where `verify` finds them; their
    // memory goes to the output's parse.
    let moved = plan.moved();
    for s in &mut plan.sections {
        s.entries = Vec::new();
    }
    let out = Elf::parse(&bytes).map_err(|e| {
        Error::Internal(vec![Finding::new(
            Rule::Verify,
            format!("output does not parse: {e}"),
        )])
    })?;
    verify::verify(&elf, &plan, &out).map_err(Error::Internal)?;
    // The converted module must pass every check the kernel's loader makes;
    // what fails here comes from the input (a ppc64 local call, say).
    // With maps, the output is resolved as the kernel will resolve it: an
    // address that overflows its field (an `R_X86_64_32` against a vmlinux
    // address, say) is only known now.
    let resolved = map.map(|m| resolution::module_report(&out, m, Report::Errors));
    // And the rules of the module's release (its vermagic) that refuse: a
    // ppc64 plain store into read-only memory, a per-CPU target.
    let target = crate::rules::Target::of(&out, None);
    let refusals: Vec<Finding> = crate::arch::loader_rules(&out)
        .into_iter()
        .chain(resolved.into_iter().flatten())
        .chain(crate::rules::kernels::late_reloc_read_only(&out, &target))
        .chain(crate::rules::kernels::percpu_targets(&out, &target))
        .filter(Finding::is_error)
        .collect();
    if !refusals.is_empty() {
        return Err(Error::Refused(refusals));
    }
    // What the maps could not prove: the patch-first order of modules
    // they give only as loaded (kallsyms, symbols.klp).
    if let Some(m) = map {
        let table = crate::klp_patch::read(&out);
        notes.extend(resolution::unchecked_orders(&out, m, table.as_ref()));
    }
    if !sig.is_empty() {
        notes.push(Finding::new(
            Rule::SignatureDropped,
            "the appended module signature was dropped: it is invalid after conversion; sign the output again",
        ));
    }
    Ok(Converted {
        bytes,
        changed: true,
        notes,
        symbols: plan.renames.len(),
        relocations: moved,
        sections: plan.sections.len(),
    })
}

/// The compression an output's name promises (`x.ko.xz`, `x.ko.zst`): the
/// output is written uncompressed, so such a name is refused.
fn compressed_name(output: &Path) -> Option<&'static str> {
    match output.extension()?.to_str()? {
        "xz" => Some("xz"),
        "zst" => Some("zstd"),
        _ => None,
    }
}

/// Read `input` (decompressed: `.ko.xz`, `.ko.zst`), convert it and write
/// `output` atomically, uncompressed. A compressed input is refused in
/// place ([`module_file::Error::Compressed`]), and so is an output named
/// like a compressed module. With `output ==
/// input` the file is replaced in place (and left alone when nothing changes).
/// On any error no output file is created and the input is untouched.
pub fn convert_file(
    input: &Path,
    output: &Path,
    map: Option<&SymbolMap>,
) -> Result<Converted, Error> {
    let io = |source| {
        Error::Io(module_file::Error::Io {
            path: input.to_path_buf(),
            source,
        })
    };
    if input != output {
        module_file::check_output(input, output).map_err(Error::Io)?;
    }
    if let Some(format) = compressed_name(output) {
        return Err(Error::Io(module_file::Error::Compressed {
            path: output.to_path_buf(),
            format,
        }));
    }
    let in_place = module_file::same_file(input, output);
    // In place through a symbolic link: the file it names is replaced.
    let output = if in_place {
        fs::canonicalize(input).map_err(io)?
    } else {
        output.to_path_buf()
    };
    let bytes = module_file::read_stable(input).map_err(Error::Io)?;
    // A compressed input converts into a new, uncompressed file: in place,
    // its name would lie about its contents.
    if let Some(format) = module_file::compression(&bytes).filter(|_| in_place) {
        return Err(Error::Io(module_file::Error::Compressed {
            path: input.to_path_buf(),
            format,
        }));
    }
    let bytes = module_file::decompress(input, bytes).map_err(Error::Io)?;
    let result = convert_bytes_with(&bytes, map)?;
    if in_place && !result.changed {
        return Ok(result);
    }
    let mode = fs::metadata(input).map_err(io)?.permissions();
    // In place, the old bytes are the user's only copy of the module.
    let durability = if in_place {
        module_file::Durability::Synced
    } else {
        module_file::Durability::RenameOnly
    };
    module_file::write_atomically(&output, &result.bytes, mode, durability).map_err(Error::Io)?;
    Ok(result)
}
