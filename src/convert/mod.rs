//! Conversion, read as its steps:
//!
//! 1. [`select`] — the references the author annotated (`KLP_RELOC_SYMBOL`,
//!    `KLP_SYMPOS` tables);
//! 2. [`resolve`] — with symbol maps, the annotated positions checked and the
//!    unannotated references given their klp form;
//! 3. [`plan`] — which relocations move into which klp section, asking
//!    [`crate::rules`] what the kernel would refuse;
//! 4. [`apply`] — the plan carried out, nothing renumbered: the output as
//!    pieces to write ([`crate::elf::write::Output`]);
//! 5. [`verify`] — the output re-read as written and proved against the
//!    rules and the input ([`Pending::prove`]).
//!
//! [`prepare`] runs steps 1–4. [`convert_file`] writes the pieces to a
//! temporary file and proves that file, mapped back, before it replaces
//! the destination; [`convert_bytes_with`] writes them into memory and
//! proves that. Nothing is written unless all five pass.

pub mod apply;
pub mod plan;
pub mod resolve;
pub mod select;
pub mod verify;

use std::fs;
use std::path::Path;

use crate::elf::read::ReadError;
use crate::elf::write::{Output, WriteError};
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

impl From<module_file::Error> for Error {
    fn from(e: module_file::Error) -> Error {
        Error::Io(e)
    }
}

/// A successful conversion, its output in memory ([`convert_bytes_with`]).
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

/// A successful conversion written to a file ([`convert_file`]): what
/// [`Converted`] says, without the bytes, which went to the file.
#[derive(Debug)]
pub struct Summary {
    /// Did anything change? (`false`: the output equals the input.)
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

impl Converted {
    /// The conversion `summary` with its output `bytes`.
    pub fn new(bytes: Vec<u8>, summary: Summary) -> Converted {
        let Summary {
            changed,
            notes,
            symbols,
            relocations,
            sections,
        } = summary;
        Converted {
            bytes,
            changed,
            notes,
            symbols,
            relocations,
            sections,
        }
    }
}

/// Steps 1–3: select, resolve (with `map`) and plan. Returns the plan and
/// its notes, or every refusal found.
pub fn make_plan<'a>(
    elf: &Elf<'a>,
    map: Option<&SymbolMap>,
) -> Result<(plan::Plan<'a>, Vec<Finding>), Vec<Finding>> {
    make_plan_with(elf, map, true)
}

/// [`make_plan`], with or without the loader's per-entry rules
/// ([`plan::plan_with`]): without, what a converter that does not ask the
/// machine's loader would write.
pub fn make_plan_with<'a>(
    elf: &Elf<'a>,
    map: Option<&SymbolMap>,
    loader: bool,
) -> Result<(plan::Plan<'a>, Vec<Finding>), Vec<Finding>> {
    let (sel, problems) = select::select(elf);
    plan_selected(elf, map, loader, sel, problems)
}

/// The rest of [`make_plan_with`] once `sel` is selected (with `problems`).
fn plan_selected<'a>(
    elf: &Elf<'a>,
    map: Option<&SymbolMap>,
    loader: bool,
    mut sel: select::Selection<'a>,
    mut problems: Vec<Finding>,
) -> Result<(plan::Plan<'a>, Vec<Finding>), Vec<Finding>> {
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
fn with_loader_refusals(
    elf: &Elf,
    target: &crate::rules::Target,
    mut problems: Vec<Finding>,
) -> Vec<Finding> {
    for f in crate::arch::loader_rules(elf, target.relocates_percpu()) {
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
/// references to unexported symbols too. [`prepare`], the output written
/// into memory, and [`Pending::prove`] on it.
pub fn convert_bytes_with(file: &[u8], map: Option<&SymbolMap>) -> Result<Converted, Error> {
    let pending = prepare(file, map)?;
    let bytes = pending.to_vec();
    let summary = pending.prove(&bytes)?;
    Ok(Converted::new(bytes, summary))
}

/// A conversion carried out up to its output (steps 1–4): the output as
/// pieces to write ([`crate::elf::write::Output`]), which step 5
/// ([`Pending::prove`]) proves once they are written, on what was written.
#[derive(Debug)]
pub struct Pending<'a, 'm> {
    /// The input file, its signature included.
    file: &'a [u8],
    /// The input module (without the signature). Its symbols and
    /// relocation sections go once the output is written
    /// ([`Pending::write_to`]) or proven: [`verify`] decodes them again
    /// from the file ([`Elf::symbols_again`], [`Elf::reloc_section_again`]).
    elf: Elf<'a>,
    /// The plan, its renames and removals gone once applied (as
    /// [`Pending::applied`]).
    plan: plan::Plan<'a>,
    /// What the proof needs of the plan's renames and removals.
    applied: verify::Applied,
    notes: Vec<Finding>,
    map: Option<&'m SymbolMap>,
    /// The output's pieces (`None`: unchanged, or written and dropped).
    output: Option<Output<'a>>,
    /// `false`: nothing to convert, the output is `file` as it came.
    changed: bool,
    /// Relocations moved.
    moved: usize,
    /// klp sections created or extended.
    sections: usize,
    /// Did the input carry a signature (dropped when converted)?
    signed: bool,
}

/// Steps 1–4 on the module `file`: select, resolve (with `map`), plan and
/// apply, and what the input itself breaks refused, as it would be by
/// [`convert_bytes_with`]. Nothing is proven yet: write the output
/// ([`Pending::write_to`]) and give what was written to [`Pending::prove`].
pub fn prepare<'a, 'm>(
    file: &'a [u8],
    map: Option<&'m SymbolMap>,
) -> Result<Pending<'a, 'm>, Error> {
    let (image, sig) = signature::split(file);
    let elf = Elf::parse(image).map_err(Error::Malformed)?;
    // What the input breaks of the contract stays broken in the output
    // unless the conversion mends it (the annotations it converts): such a
    // module is refused here, as the input's fault, rather than found by
    // `verify` in the output and reported as a bug of this tool. Checked
    // on a second core while the references are selected, for a plan that
    // converts something (the plan then runs on both cores); should the
    // plan be empty, so that it mends nothing, checked again. A module too
    // small to gain from a second core is checked once, after the plan.
    const MENDED: &[Rule] = &[Rule::UnconvertedAnnotation, Rule::UnconvertedSymposTable];
    let target = crate::rules::Target::of(&elf, None);
    let broken_except = |mended: &[Rule]| -> Vec<Finding> {
        crate::rules::contract::module_except(&elf, &target, mended)
            .into_iter()
            .filter(Finding::is_error)
            .collect()
    };
    let worth = worth_two_cores(&elf);
    let (early, (sel, problems)) = crate::parallel::join(
        worth,
        || worth.then(|| broken_except(MENDED)),
        || select::select(&elf),
    );
    let planned = plan_selected(&elf, map, true, sel, problems);
    let (mut plan, notes) = planned
        .map_err(|problems| Error::Refused(with_loader_refusals(&elf, &target, problems)))?;
    let mut notes = notes;
    let mended: &[Rule] = if plan.is_empty() { &[] } else { MENDED };
    let broken = match early {
        Some(broken) if mended == MENDED => broken,
        _ => broken_except(mended),
    };
    if plan.is_empty() {
        // Nothing to convert: the module goes out as it came, so it must
        // already pass what `check` asks of any module (a module from
        // another tool is judged by the same rules).
        let refusals: Vec<Finding> = broken
            .into_iter()
            .chain(crate::arch::loader_rules(&elf, target.relocates_percpu()))
            .chain(crate::rules::kernels::late_reloc_read_only(&elf, &target))
            .chain(crate::rules::kernels::percpu_targets(&elf, &target))
            .chain(
                map.map(|m| resolution::module_report(&elf, m, &target, Report::Errors))
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
        return Ok(Pending {
            file,
            elf,
            plan,
            applied: verify::Applied::default(),
            notes,
            map,
            output: None,
            changed: false,
            moved: 0,
            sections: 0,
            signed: !sig.is_empty(),
        });
    }
    if !broken.is_empty() {
        return Err(Error::Refused(with_loader_refusals(&elf, &target, broken)));
    }
    if let Some(p) = crate::rules::contract::too_many_sections(&elf, plan.new_sections(), &target) {
        return Err(Error::Refused(vec![p]));
    }
    if let Some(e) = dangling_target(&elf, plan.new_sections()) {
        return Err(Error::Malformed(e));
    }
    let moved = plan.moved();
    let sections = plan.sections.len();
    let output = apply::output_trimming(&elf, &mut plan).map_err(|e| match e {
        // A section the input aligns beyond what the writer moves.
        WriteError::Alignment { .. } => Error::Malformed(ReadError(e.to_string())),
        _ => Error::Internal(vec![Finding::new(Rule::Verify, e.to_string())]),
    })?;
    // The renames and removals, applied, go for what the proof needs of
    // them (a third of their memory).
    let applied = verify::Applied::of(&elf, &plan);
    plan.renames = Vec::new();
    plan.removals = Vec::new();
    plan.moving = Vec::new();
    Ok(Pending {
        file,
        elf,
        plan,
        applied,
        notes,
        map,
        output: Some(output),
        changed: true,
        moved,
        sections,
        signed: !sig.is_empty(),
    })
}

/// A relocation section of `elf` whose `sh_info` is past its last section,
/// when the conversion appends `added` sections: the loader skips it
/// (`infosec >= e_shnum`), but in the output its `sh_info` may name one of
/// the new klp sections, which the loader would then patch with it.
fn dangling_target(elf: &Elf, added: usize) -> Option<ReadError> {
    let count = elf.sections.len();
    let (index, _) = elf.sections.relocation_sections().find(|&(_, info)| {
        let info = info as usize;
        info >= count && info < count.saturating_add(added)
    })?;
    let sec = elf.sections.at(index);
    Some(ReadError(format!(
        "section {}: sh_info {} names no section (the module has {count}); the loader skips it, but the {added} section{} this conversion adds would give it a target: give it a valid sh_info, or 0",
        sec.display_name(),
        sec.sh_info,
        if added == 1 { "" } else { "s" }
    )))
}

impl Pending<'_, '_> {
    /// Does the output differ from the input?
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// Write the output to `w`, piece by piece, and drop the pieces' own
    /// buffers (new sections, rewritten tables), the heap's free pages
    /// given back with them: what was written is proven as read back, and
    /// the peak RSS is then, with the output mapped.
    pub fn write_to(&mut self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        let written = match self.output.take() {
            Some(out) => out.write_to(w),
            None if !self.changed => w.write_all(self.file),
            None => Err(std::io::Error::other("the output was written already")),
        };
        // The input's symbols and relocation sections are not needed again
        // but by the proof, which decodes them from the file: their memory
        // (1.9 MB for 40,000 symbols, 0.6 MB for 20,000 sections) goes back
        // with the pieces', before the output's parse takes as much for its
        // own.
        if self.changed {
            self.drop_input_tables();
        }
        crate::mapped::release_free_memory();
        written
    }

    /// Let the input's symbols and relocation sections go: only the proof
    /// needs them again, and decodes them from the file. The input's `Elf`
    /// is then no longer whole (a `.symtab` with no symbols, no relocation
    /// sections): nothing but the proof may read it after this.
    fn drop_input_tables(&mut self) {
        self.elf.symbols = Vec::new();
        self.elf.relocs = Vec::new();
    }

    /// The output in memory (the pieces are kept).
    pub fn to_vec(&self) -> Vec<u8> {
        match &self.output {
            Some(out) => out.to_vec(),
            None => self.file.to_vec(),
        }
    }

    /// Step 5: prove `written`, the output as written (re-read): it parses,
    /// [`verify`] passes, and the loader's and the release's rules and the
    /// maps' resolution accept it. An unchanged module must be written as
    /// it came.
    pub fn prove(mut self, written: &[u8]) -> Result<Summary, Error> {
        let internal = |message: String| Error::Internal(vec![Finding::new(Rule::Verify, message)]);
        if !self.changed {
            if written != self.file {
                return Err(internal(
                    "the output is not the unchanged input it should be".to_string(),
                ));
            }
            return Ok(Summary {
                changed: false,
                notes: self.notes,
                symbols: 0,
                relocations: 0,
                sections: 0,
            });
        }
        // The pieces are written: their buffers go before the output's
        // parse takes its memory (if `write_to` did not drop them).
        self.output = None;
        self.drop_input_tables();
        let (elf, plan, applied, map) = (&self.elf, &self.plan, &self.applied, self.map);
        let out =
            Elf::parse(written).map_err(|e| internal(format!("output does not parse: {e}")))?;
        // [`verify`] in two halves at once, with the refusals below: the
        // maps' resolution, or without maps the contract, on one core (most
        // of a v7 drop-in's proof; half of a 20,000-function module's), the
        // comparison with the input, the loader's rules and the rest on the
        // other.
        let out = &out;
        let target = &crate::rules::Target::of(out, None);
        let (helper, (compared, refused, here)) = crate::parallel::join(
            worth_two_cores(out),
            || match map {
                Some(m) => resolution::module_report(out, m, target, Report::Errors),
                None => verify::contract_errors(out, target),
            },
            || {
                let compared = verify::compare_applied(elf, plan, applied, out);
                let refused = refusals(out, target);
                let contract = map.map(|_| verify::contract_errors(out, target));
                (compared, refused, contract)
            },
        );
        // With maps, the helper resolved them and this thread checked the
        // contract; without, the helper checked it.
        let (contract, resolved) = match here {
            Some(contract) => (contract, Some(helper)),
            None => (helper, None),
        };
        verify::verdict(contract, compared).map_err(Error::Internal)?;
        let refusals: Vec<Finding> = refused
            .loader
            .into_iter()
            .chain(resolved.into_iter().flatten().filter(Finding::is_error))
            .chain(refused.release)
            .collect();
        if !refusals.is_empty() {
            return Err(Error::Refused(refusals));
        }
        let mut notes = self.notes;
        // What the maps could not prove: the patch-first order of modules
        // they give only as loaded (kallsyms, symbols.klp).
        if let Some(m) = map {
            let table = crate::klp_patch::read(out);
            notes.extend(resolution::unchecked_orders(out, m, table.as_ref()));
        }
        if self.signed {
            notes.push(Finding::new(
                Rule::SignatureDropped,
                "the appended module signature was dropped: it is invalid after conversion; sign the output again",
            ));
        }
        Ok(Summary {
            changed: true,
            notes,
            symbols: applied.renames(),
            relocations: self.moved,
            sections: self.sections,
        })
    }
}

/// Does a conversion of `elf` gain from a second core? From
/// [`crate::parallel::WORTH_TWO_CORES`] symbols and relocations on.
fn worth_two_cores(elf: &Elf) -> bool {
    elf.symbols.len() + elf.relocs.iter().map(|rs| rs.len()).sum::<usize>()
        >= crate::parallel::WORTH_TWO_CORES
}

/// What the kernel refuses of a converted module beyond the contract that
/// [`verify`] proves, but for the maps' resolution: with maps, the output
/// is resolved as the kernel will resolve it (an address that overflows
/// its field, an `R_X86_64_32` against a vmlinux address, say, is only
/// known now), and those refusals go between these two kinds.
struct Refusals {
    /// The checks the kernel's loader makes; what fails here comes from
    /// the input (a ppc64 local call, say).
    loader: Vec<Finding>,
    /// The rules of the module's release (its vermagic) that refuse: a
    /// ppc64 plain store into read-only memory, a per-CPU target.
    release: Vec<Finding>,
}

/// The [`Refusals`] of the converted module `out`, for the kernel `target`.
fn refusals(out: &Elf, target: &crate::rules::Target) -> Refusals {
    let mut loader = crate::arch::loader_rules(out, target.relocates_percpu());
    loader.retain(Finding::is_error);
    let release = crate::rules::kernels::late_reloc_read_only(out, target)
        .into_iter()
        .chain(crate::rules::kernels::percpu_targets(out, target))
        .filter(Finding::is_error)
        .collect();
    Refusals { loader, release }
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
///
/// The input is mapped ([`module_file::open_stable`]) and the output
/// written piece by piece into its temporary file, then mapped back and
/// proven there ([`module_file::write_proven`]): neither is copied whole
/// into memory. The input must be unchanged when the output is proven;
/// should it have changed meanwhile (whatever the conversion made of it,
/// a panic on an index the change moved included:
/// [`crate::mapped::catch_quietly`]), the conversion is tried once more
/// from a copy read whole, which converts a version whole or refuses it as
/// changed. An error after the output is proven (the rename, the
/// directory's sync) is reported as it is.
pub fn convert_file(
    input: &Path,
    output: &Path,
    map: Option<&SymbolMap>,
) -> Result<Summary, Error> {
    convert_file_with(input, output, map, || {}, |_| {})
}

/// [`convert_file`], telling `sized` the size of the module once it is
/// read (decompressed: what the conversion works on), before any work: the
/// binary tunes its allocator for that size there
/// ([`crate::tune_allocator_for_conversion`]). Called once.
pub fn convert_file_sized(
    input: &Path,
    output: &Path,
    map: Option<&SymbolMap>,
    sized: impl FnOnce(u64),
) -> Result<Summary, Error> {
    convert_file_with(input, output, map, || {}, sized)
}

/// [`convert_file_sized`], calling `opened` once the input is open (tests
/// change it there).
fn convert_file_with(
    input: &Path,
    output: &Path,
    map: Option<&SymbolMap>,
    opened: impl FnOnce(),
    sized: impl FnOnce(u64),
) -> Result<Summary, Error> {
    let sized = std::cell::Cell::new(Some(sized));
    let sized = |n: usize| {
        if let Some(f) = sized.take() {
            f(n as u64);
        }
    };
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
    let source = module_file::open_stable(input).map_err(Error::Io)?;
    opened();
    // Set once the output is proven and the input confirmed unchanged:
    // what fails after that (the rename, the directory's sync) is the
    // output's, and is reported, not retried.
    let proven = std::cell::Cell::new(false);
    let attempt = crate::mapped::catch_quietly(|| {
        convert_opened(&source, input, &output, in_place, map, &proven, &sized)
    });
    // The mapped input changed while it was converted: whatever came of
    // it (a refusal, a parse error, a panic on an index the change moved,
    // an output the proof refused) is the change's doing, and nothing was
    // written. Once more from a copy read whole, as before inputs were
    // mapped: it converts a version whole or is refused as changed.
    let changed = || !proven.get() && source.confirm().is_err();
    match attempt {
        Ok(Err(_)) if changed() => {}
        Err(_) if changed() => {}
        Ok(result) => return result,
        Err(caught) => caught.resume(),
    }
    let copy = module_file::open_copy(input).map_err(Error::Io)?;
    convert_opened(&copy, input, &output, in_place, map, &proven, &sized)
}

/// The rest of [`convert_file`], on the opened input `source`.
fn convert_opened(
    source: &module_file::Stable,
    input: &Path,
    output: &Path,
    in_place: bool,
    map: Option<&SymbolMap>,
    proven: &std::cell::Cell<bool>,
    sized: &dyn Fn(usize),
) -> Result<Summary, Error> {
    // A compressed input converts into a new, uncompressed file: in place,
    // its name would lie about its contents.
    if let Some(format) = module_file::compression(source.bytes()).filter(|_| in_place) {
        return Err(Error::Io(module_file::Error::Compressed {
            path: input.to_path_buf(),
            format,
        }));
    }
    let bytes = module_file::decompress_slice(input, source.bytes())?;
    sized(bytes.len());
    let mut pending = prepare(&bytes, map)?;
    if in_place && !pending.changed() {
        let summary = pending.prove(&bytes)?;
        source.confirm()?;
        return Ok(summary);
    }
    let mode = fs::metadata(input)
        .map_err(|source| module_file::Error::Io {
            path: input.to_path_buf(),
            source,
        })?
        .permissions();
    // In place, the old bytes are the user's only copy of the module.
    let durability = if in_place {
        module_file::Durability::Synced
    } else {
        module_file::Durability::RenameOnly
    };
    module_file::write_proven(
        output,
        mode,
        durability,
        |w| pending.write_to(w).map(|()| pending),
        |pending, written| {
            let summary = pending.prove(written)?;
            source.confirm()?;
            proven.set(true);
            Ok(summary)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// An annotated livepatch module of a few pages (a 32 KiB table in
    /// `.data` before the tables the conversion reads), compiled by gcc.
    fn module(dir: &Path) -> Vec<u8> {
        let src = dir.join("lp.c");
        let obj = dir.join("lp.o");
        fs::write(
            &src,
            "#include \"klp_convert.h\"\n\
             static const char __modinfo_lp[] __attribute__((section(\".modinfo\"), used, aligned(1))) = \"livepatch=Y\";\n\
             extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\n\
             int f(void) { return v; }\n\
             int pad[8192] = { 1 };\n",
        )
        .unwrap();
        let r = Command::new("gcc")
            .args([
                "-O2",
                "-c",
                "-fno-pic",
                "-mcmodel=kernel",
                "-mno-red-zone",
                "-I",
            ])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("include"))
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .output()
            .expect("run gcc");
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        fs::read(obj).unwrap()
    }

    /// `sized` is told the module's size as converted: a compressed input's
    /// decompressed size, not the file's, and once.
    #[test]
    fn the_size_told_is_the_decompressed_one() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = module(dir.path());
        let input = dir.path().join("lp.ko");
        fs::write(&input, &bytes).unwrap();
        let r = Command::new("xz")
            .arg("-k")
            .arg(&input)
            .output()
            .expect("run xz");
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let xz = dir.path().join("lp.ko.xz");
        assert!(fs::metadata(&xz).unwrap().len() < bytes.len() as u64 / 2);
        for input in [&input, &xz] {
            let told = std::cell::RefCell::new(Vec::new());
            let out = dir.path().join("out.ko");
            let done =
                convert_file_sized(input, &out, None, |n| told.borrow_mut().push(n)).unwrap();
            assert!(done.changed);
            assert_eq!(*told.borrow(), [bytes.len() as u64], "{}", input.display());
        }
    }

    /// Through the library's read → convert → write path: a module changed
    /// after it was opened (mapped) is never converted from what the
    /// mapping showed meanwhile. Truncated (its SIGBUS handled: the mapping
    /// reads zeros past the new end), rewritten or emptied, the conversion
    /// is tried again from a copy, and converts or refuses the module as it
    /// now is, as `convert_bytes` does; a refusal writes nothing. Left
    /// alone, the module converts, written in pieces, as `convert_bytes`
    /// converts it in memory.
    #[test]
    fn a_module_changed_after_it_was_opened_is_converted_as_it_now_is() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = module(dir.path());
        assert!(bytes.len() > 5 * 4096, "{}", bytes.len());
        let input = dir.path().join("in.o");
        let out = dir.path().join("out.o");
        let other = {
            let mut b = bytes.clone();
            // In the 32 KiB table: another module, to the byte as valid.
            let at = b.len() / 2;
            b[at] ^= 0x55;
            b
        };
        let cases: [(&str, &[u8]); 3] = [
            ("truncated", &bytes[..4096]),
            ("rewritten", &other),
            ("emptied", b""),
        ];
        for (how, now) in cases {
            fs::write(&input, &bytes).unwrap();
            let _ = fs::remove_file(&out);
            let torn = std::cell::Cell::new(false);
            let r = convert_file_with(
                &input,
                &out,
                None,
                || {
                    let f = fs::File::options().write(true).open(&input).unwrap();
                    if now.len() < bytes.len() {
                        f.set_len(now.len() as u64).unwrap();
                        torn.set(true);
                    }
                    std::os::unix::fs::FileExt::write_all_at(&f, now, 0).unwrap();
                },
                |_| {},
            );
            match (convert_bytes(now), r) {
                (Ok(want), Ok(done)) => {
                    assert!(done.changed, "{how}");
                    assert_eq!(fs::read(&out).unwrap(), want.bytes, "{how}");
                }
                (Err(want), Err(got)) => {
                    assert_eq!(got.to_string(), want.to_string(), "{how}");
                    assert!(!out.exists(), "{how}");
                }
                (want, got) => panic!("{how}: {got:?}, not as {want:?}"),
            }
            assert_eq!(fs::read(&input).unwrap(), now, "{how}");
            assert_eq!(torn.get(), now.len() < bytes.len());
        }
        fs::write(&input, &bytes).unwrap();
        let done = convert_file_with(&input, &out, None, || {}, |_| {}).unwrap();
        assert!(done.changed && done.relocations == 1);
        let direct = convert_bytes(&bytes).unwrap();
        assert_eq!(fs::read(&out).unwrap(), direct.bytes);
    }
}
