//! What the `klp-convert` commands do, once [`crate::cli`] has parsed them:
//! each command writes its report to an `out` writer (standard output) and
//! its messages to an `err` writer (standard error), and fails with an
//! [`Error`] that knows its exit status.

use std::fmt;
use std::io::Write;
use std::path::Path;

use crate::check::{self, ModuleReport};
use crate::cli::{
    self, BuildArgs, CheckArgs, Command, ConvertArgs, Format, Generate, Invocation,
    KbuildPatchArgs, MapFormat, ShowArgs, SymbolsArgs,
};
use crate::convert::{self, Summary};
use crate::elf::{signature, Elf};
use crate::finding::{Finding, Severity};
use crate::kbuild::{self, Kbuild};
use crate::maps::{SymbolMap, Wanted};
use crate::module_file;
use crate::show;

use crate::error::Error;

/// The prefix of every message.
pub const PREFIX: &str = "klp-convert: ";

/// Tell `err` about `e`, once, with the `klp-convert: ` prefix (nothing for
/// the quiet ones). A failing `err` is ignored: there is nowhere else to say it.
pub fn report(e: &Error, err: &mut dyn Write) {
    if !e.is_quiet() {
        let _ = writeln!(err, "{PREFIX}{e}");
    }
}

/// Run what the command line asked for, then flush `out` (a closed pipe
/// found there wins over the command's own failure: the shell would report
/// the SIGPIPE too).
pub fn run(invocation: Invocation, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Error> {
    if let Invocation::Run(_) = invocation {
        module_file::max_decompressed_from_env().map_err(Error::usage)?;
    }
    let result = match invocation {
        Invocation::Print(text) => out.write_all(text.as_bytes()).map_err(Error::stdout),
        Invocation::Run(command) => match command {
            Command::Convert(a) => convert(&a, err),
            Command::Show(a) => show(&a, out),
            Command::Check(a) => check(&a, out, err),
            Command::Symbols(a) => symbols(&a, out, err),
            Command::Build(a) => build(&a, err),
            Command::KbuildPatch(a) => kbuild_patch(&a, out, err),
            Command::Generate(a) => generate(&a.what, out),
        },
    };
    match out.flush().map_err(Error::stdout) {
        Err(e) if result.is_ok() || matches!(e, Error::BrokenPipe) => Err(e),
        _ => result,
    }
}

/// Write a message line to `err`, ignoring a failing `err`.
fn say(err: &mut dyn Write, message: fmt::Arguments<'_>) {
    let _ = writeln!(err, "{PREFIX}{message}");
}

/// `klp-convert convert` (and the drop-in forms).
pub fn convert(args: &ConvertArgs, err: &mut dyn Write) -> Result<(), Error> {
    let map = args.maps.load(&[], || {
        Wanted::of_regular_files(std::slice::from_ref(&args.input))
    })?;
    if let (Some(filtered), true) = (&map, proving()) {
        if let Some(full) = args.maps.load(&[], || None)? {
            prove_same_conversion(&args.input, filtered, &full)?;
        }
    }
    // For one conversion only: the heap kept, in huge pages, and its free
    // pages given back before the proof. Not before: the maps are read
    // with glibc's defaults, as `check` and `symbols` read many modules.
    // Sized by the module as read (decompressed), not the file.
    let done = convert::convert_file_sized(
        &args.input,
        &args.destination(),
        map.as_ref(),
        klp_convert::tune_allocator_for_conversion,
    );
    report_conversion(&args.input, &args.destination(), done, args.quiet, err)
}

/// Convert `input` into `output` (the same file: in place), reporting the
/// notes, the problems or the summary line to `err` (`quiet`: warnings and
/// errors only).
pub fn convert_one(
    input: &Path,
    output: &Path,
    map: Option<&SymbolMap>,
    quiet: bool,
    err: &mut dyn Write,
) -> Result<(), Error> {
    let done = convert::convert_file(input, output, map);
    report_conversion(input, output, done, quiet, err)
}

/// Report the conversion of `input` into `output` ([`convert_one`]).
fn report_conversion(
    input: &Path,
    output: &Path,
    done: Result<convert::Summary, convert::Error>,
    quiet: bool,
    err: &mut dyn Write,
) -> Result<(), Error> {
    match done {
        Ok(done) => {
            for n in &done.notes {
                if !quiet || n.severity > Severity::Note {
                    say(err, format_args!("{}", problem_line(input, n)));
                }
            }
            if done.changed && !quiet {
                say(
                    err,
                    format_args!("{}", convert_summary(input, output, &done)),
                );
            }
            Ok(())
        }
        Err(convert::Error::Refused(problems)) => {
            for p in &problems {
                say(err, format_args!("{}", problem_line(input, p)));
            }
            Err(Error::Refused {
                file: input.display().to_string(),
                problems: problems.len(),
            })
        }
        Err(convert::Error::Internal(problems)) => {
            for p in &problems {
                say(err, format_args!("{}", problem_line(input, p)));
            }
            Err(Error::Internal {
                file: input.display().to_string(),
            })
        }
        Err(convert::Error::Malformed(source)) => Err(Error::Malformed {
            file: input.to_path_buf(),
            source,
        }),
        Err(convert::Error::Io(e)) => Err(Error::ModuleFile(e)),
        // A failure the library added after this command line: said in the
        // library's words, not as a failed verification (which it may not
        // be). Exit 1, as a failed conversion.
        Err(e) => Err(Error::ConvertFailed {
            file: input.display().to_string(),
            message: e.to_string(),
        }),
    }
}

/// The line after a conversion that changed something (without the prefix):
/// `lp.ko: 2 relocations of 2 symbols moved into 2 klp sections -> out.ko`.
pub fn convert_summary(input: &Path, output: &Path, done: &Summary) -> String {
    format!(
        "{}: {} relocation{} of {} symbol{} moved into {} klp section{} -> {}",
        input.display(),
        done.relocations,
        s(done.relocations),
        done.symbols,
        s(done.symbols),
        done.sections,
        s(done.sections),
        output.display()
    )
}

/// One problem of a file, for standard error (without the prefix):
/// `error: lp.ko: section ..., offset ..., symbol ...: ...`.
pub fn problem_line(file: &Path, p: &Finding) -> String {
    format!("{}: {}: {p}", severity(p.severity), file.display())
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// `klp-convert show`: the report to `out`; fails (after the report) when
/// it lists an error.
pub fn show(args: &ShowArgs, out: &mut dyn Write) -> Result<(), Error> {
    let file = args.file.display().to_string();
    let bytes = module_file::open(&args.file).map_err(Error::ModuleFile)?;
    let (image, _) = signature::split(&bytes);
    let elf = Elf::parse(image).map_err(|source| Error::Malformed {
        file: args.file.clone(),
        source,
    })?;
    let report = show::report(&file, &elf);
    bytes.whole().map_err(Error::ModuleFile)?;
    let text = match args.format {
        Format::Json => {
            let mut j = serde_json::to_string_pretty(&report).map_err(Error::Json)?;
            j.push('\n');
            j
        }
        Format::Human => report.to_text(),
    };
    out.write_all(text.as_bytes()).map_err(Error::stdout)?;
    match report.summary.errors {
        0 => Ok(()),
        n => Err(Error::ShowFound(n)),
    }
}

/// `klp-convert check`: the reports to `out`, unreadable files to `err`.
pub fn check(args: &CheckArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Error> {
    let files = module_file::find_modules(&args.paths).map_err(Error::ModuleFile)?;
    // A few modules read twice cost less than a kernel's maps read whole;
    // a tree of thousands asks about most of the maps' names anyway.
    let map = args.maps.load(&[], || {
        (files.len() <= CHECK_WANTED_MAX)
            .then(|| Wanted::of_regular_files(&files))
            .flatten()
    })?;
    let results = check::check_files(&files, args.release.text(), map.as_ref());
    if let (Some(filtered), true) = (&map, proving()) {
        if let (Some(full), Some(_)) = (args.maps.load(&[], || None)?, filtered.wanted()) {
            let again = check::check_files(&files, args.release.text(), Some(&full));
            let shown = |r: &[Result<ModuleReport, check::FileError>]| {
                let each: Vec<String> = r
                    .iter()
                    .map(|r| match r {
                        Ok(report) => serde_json::to_string(report).unwrap_or_default(),
                        Err(e) => e.to_string(),
                    })
                    .collect();
                each
            };
            if shown(&results) != shown(&again) {
                return Err(Error::ConvertFailed {
                    file: format!("{} files", files.len()),
                    message: format!(
                        "{PROVE_WANTED}: check found otherwise with the maps read whole"
                    ),
                });
            }
        }
    }
    let (mut unreadable, mut internal) = (0, 0);
    let mut reports = Vec::new();
    for r in results {
        match r {
            Ok(report) => reports.push(report),
            Err(check::FileError::Read(e)) => {
                report(&Error::ModuleFile(e), err);
                unreadable += 1;
            }
            Err(check::FileError::Panicked(p)) => {
                say(err, format_args!("error: {p}"));
                internal += 1;
            }
            // A failure the library added after this command line.
            Err(e) => {
                say(err, format_args!("error: {e}"));
                internal += 1;
            }
        }
    }
    let errors = reports
        .iter()
        .filter(|r| r.count(Severity::Error) > 0)
        .count();
    match args.format {
        Format::Json => {
            let j = serde_json::to_string_pretty(&reports).map_err(Error::Json)?;
            writeln!(out, "{j}").map_err(Error::stdout)?;
        }
        Format::Human => {
            let many = reports.len() > 1;
            for r in &reports {
                out.write_all(check_text(r, many).as_bytes())
                    .map_err(Error::stdout)?;
            }
            if many {
                writeln!(out, "{}", check_summary(&reports)).map_err(Error::stdout)?;
            }
        }
    }
    if unreadable > 0 {
        Err(Error::Unreadable(unreadable))
    } else if internal > 0 {
        Err(Error::InternalErrors(internal))
    } else if errors > 0 {
        Err(Error::CheckFound(errors))
    } else {
        Ok(())
    }
}

/// The environment variable that makes `convert`, `check` and `build` also
/// read their maps whole and fail unless every answer is the same as with
/// the maps read for the modules' names only ([`Wanted`]): the test suite
/// runs with it, so every module it converts or checks proves the filter.
pub const PROVE_WANTED: &str = "KLP_CONVERT_PROVE_WANTED";

/// Is [`PROVE_WANTED`] set?
fn proving() -> bool {
    std::env::var_os(PROVE_WANTED).is_some()
}

/// [`PROVE_WANTED`] for one conversion: `input` converted in memory with
/// `filtered` and with `full` must give the same bytes and the same notes,
/// or the same refusal.
fn prove_same_conversion(
    input: &Path,
    filtered: &SymbolMap,
    full: &SymbolMap,
) -> Result<(), Error> {
    if filtered.wanted().is_none() {
        return Ok(());
    }
    // What cannot be read fails the conversion itself.
    let Ok(bytes) = module_file::read(input) else {
        return Ok(());
    };
    let outcome = |map: &SymbolMap| match convert::convert_bytes_with(&bytes, Some(map)) {
        Ok(c) => {
            let notes: Vec<String> = c.notes.iter().map(|n| n.to_string()).collect();
            (Some(c.bytes), notes.join("\n"))
        }
        Err(e) => (None, e.to_string()),
    };
    let (with_wanted, whole) = (outcome(filtered), outcome(full));
    if with_wanted != whole {
        return Err(Error::ConvertFailed {
            file: input.display().to_string(),
            message: format!(
                "{PROVE_WANTED}: converted otherwise with the maps read whole:\n{}\nthan with the maps read for its names:\n{}",
                whole.1, with_wanted.1
            ),
        });
    }
    Ok(())
}

/// Up to how many modules `check` reads its maps for their names only
/// ([`Wanted`]); more, and it reads them whole.
const CHECK_WANTED_MAX: usize = 64;

/// One module's findings for a person: a summary line, then the findings
/// (without the notes when `many` modules are listed).
pub fn check_text(r: &ModuleReport, many: bool) -> String {
    let (e, w) = (r.count(Severity::Error), r.count(Severity::Warning));
    let summary = if e + w > 0 {
        format!("{e} error{}, {w} warning{}", s(e), s(w))
    } else if r.livepatch {
        "ok".to_string()
    } else {
        "ok (not a livepatch module)".to_string()
    };
    let mut out = format!("{}: {summary}\n", r.file);
    for p in &r.findings {
        if many && p.severity == Severity::Note {
            continue;
        }
        out.push_str(&format!("  {}: {p}\n", severity(p.severity)));
    }
    out
}

/// The last line of a `check` of many modules.
pub fn check_summary(reports: &[ModuleReport]) -> String {
    let errors = reports
        .iter()
        .filter(|r| r.count(Severity::Error) > 0)
        .count();
    let warned = reports
        .iter()
        .filter(|r| r.count(Severity::Error) == 0 && r.count(Severity::Warning) > 0)
        .count();
    let plain = reports
        .iter()
        .filter(|r| !r.livepatch && r.findings.is_empty())
        .count();
    format!(
        "checked {} modules: {errors} with errors, {warned} with warnings only, {plain} not livepatch modules",
        reports.len()
    )
}

/// `klp-convert symbols`: the map to `out`, or to `-o FILE` with a report
/// line to `err`.
pub fn symbols(args: &SymbolsArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Error> {
    let map = cli::load_maps(&args.sources)?;
    let text = match args.format {
        MapFormat::Json => map.to_json().into_bytes(),
        MapFormat::Klp => map.to_symbols_klp(),
    };
    match &args.output {
        Some(o) => {
            let mode =
                <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644);
            let durability = module_file::Durability::RenameOnly;
            module_file::write_atomically(o, &text, mode, durability).map_err(Error::ModuleFile)?;
            let all = args.format == MapFormat::Json;
            say(err, format_args!("{}", symbols_report(o, &map, all)));
            Ok(())
        }
        None => out.write_all(&text).map_err(Error::stdout),
    }
}

/// What `symbols -o FILE` wrote (without the prefix): `FILE: 12 symbols of
/// 2 objects (twin_mod, vmlinux), with exports`.
pub fn symbols_report(file: &Path, map: &SymbolMap, coming_only: bool) -> String {
    let objects: Vec<String> = map
        .objects()
        .map(|o| crate::names::show(o).to_string())
        .collect();
    // A symbols.klp holds a loaded module's list only (`coming_only`: the
    // JSON map holds the rest too).
    let count: usize = map
        .objects()
        .map(|o| {
            let symbols = map.symbols(o);
            (0..symbols.len())
                .filter(|&i| coming_only || !symbols.is_coming_only(i))
                .count()
        })
        .sum();
    let mut names = objects[..objects.len().min(5)].join(", ");
    if objects.len() > 5 {
        names += &format!(", and {} more", objects.len() - 5);
    }
    format!(
        "{}: {count} symbol{} of {} object{} ({names}){}",
        file.display(),
        s(count),
        objects.len(),
        s(objects.len()),
        if map.has_exports() {
            ", with exports"
        } else {
            ""
        }
    )
}

/// `klp-convert build`: make, then convert every livepatch module of
/// modules.order in place, then check every module for the undefined names
/// kbuild's modpost would have refused ([`kbuild::refused_names`]), then
/// the summary.
pub fn build(args: &BuildArgs, err: &mut dyn Write) -> Result<(), Error> {
    let kbuild_dir = match &args.kernel_dir {
        Some(d) => d.clone(),
        None => kbuild::default_kbuild(args.release.text()).map_err(Error::Kbuild)?,
    };
    let build =
        Kbuild::new(kbuild_dir, &args.dir(), args.make_args.clone()).map_err(Error::Kbuild)?;
    build.make_modules().map_err(Error::Kbuild)?;
    let modules = build.modules().map_err(Error::Kbuild)?;
    let export_lists = build.export_maps();
    // The maps answer for the names of the modules kbuild made.
    let map = args
        .maps
        .load(&export_lists, || Wanted::of_regular_files(&modules))?;
    let full = match proving() {
        true => args.maps.load(&export_lists, || None)?,
        false => None,
    };
    let exports = kbuild::Exports::read(&export_lists, &build.kbuild.join("Module.symvers"))
        .map_err(Error::Kbuild)?;
    let mut ready = Vec::new();
    let mut refused = Vec::new();
    let mut undefined = Vec::new();
    for ko in &modules {
        let bytes = module_file::open(ko).map_err(Error::ModuleFile)?;
        let livepatch = Elf::parse(signature::split(&bytes).0).is_ok_and(|elf| elf.is_livepatch());
        bytes.whole().map_err(Error::ModuleFile)?;
        if livepatch {
            if let (Some(filtered), Some(full)) = (&map, &full) {
                prove_same_conversion(ko, filtered, full)?;
            }
            if let Err(e) = convert_one(ko, ko, map.as_ref(), false, err) {
                report(&e, err);
                refused.push(ko.display().to_string());
                continue;
            }
        }
        // The module as it stands now: converted, for a livepatch.
        let bytes = if livepatch {
            // The converted module replaced the file the mapping shows.
            drop(bytes);
            module_file::open(ko).map_err(Error::ModuleFile)?
        } else {
            bytes
        };
        let elf = Elf::parse(signature::split(&bytes).0).map_err(|source| Error::Malformed {
            file: ko.clone(),
            source,
        })?;
        let names = kbuild::refused_names(&elf, &exports);
        bytes.whole().map_err(Error::ModuleFile)?;
        for name in &names {
            say(
                err,
                format_args!(
                    "error: {}: undefined symbol '{}' (in no Module.symvers or KBUILD_EXTRA_SYMBOLS list{}): kbuild would stop here, and the kernel would refuse the module",
                    ko.display(),
                    String::from_utf8_lossy(name).escape_debug(),
                    if livepatch {
                        ", and not a klp symbol"
                    } else {
                        ""
                    }
                ),
            );
        }
        if !names.is_empty() {
            undefined.push(ko.display().to_string());
        } else if livepatch {
            ready.push(ko.display().to_string());
        } else {
            say(
                err,
                format_args!(
                    "{}: not a livepatch module (no livepatch=Y): left as built",
                    ko.display()
                ),
            );
        }
    }
    if !undefined.is_empty() {
        let e = Error::BuildUndefined {
            modules: undefined,
            missing: exports.missing,
        };
        if refused.is_empty() {
            return Err(e);
        }
        report(&e, err);
    }
    if !refused.is_empty() {
        return Err(Error::BuildRefused(refused));
    }
    say(
        err,
        format_args!(
            "build: {} livepatch module{} ready: {}",
            ready.len(),
            s(ready.len()),
            ready.join(", ")
        ),
    );
    Ok(())
}

/// `klp-convert kbuild-patch`: the patch for `-C DIR` (the one a dry run
/// applies, said on stderr) or `--kernel-release`.
pub fn kbuild_patch(
    args: &KbuildPatchArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Error> {
    let patch = match (&args.kernel_dir, &args.release.kernel_release) {
        (Some(tree), None) => {
            let (patch, tried) = kbuild::choose_patch(tree).map_err(Error::Kbuild)?;
            let _ = writeln!(
                err,
                "{PREFIX}{}: the {} kbuild patch applies (patch --dry-run; tried {})",
                tree.display(),
                patch.series,
                tried.join(", ")
            );
            patch
        }
        (None, Some(r)) => kbuild::patch_for(r.major, r.minor).map_err(Error::Kbuild)?,
        _ => {
            return Err(Error::usage(
                "kbuild-patch needs either -C DIR or --kernel-release R",
            ))
        }
    };
    out.write_all(patch.text.as_bytes()).map_err(Error::stdout)
}

/// `klp-convert generate`: man pages or a completion script.
pub fn generate(what: &Generate, out: &mut dyn Write) -> Result<(), Error> {
    match what {
        Generate::Man { output: Some(dir) } => {
            let io = |path: &Path, source| Error::Io {
                path: path.to_path_buf(),
                source,
            };
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
            for (name, cmd, main) in cli::man_pages() {
                let path = dir.join(name);
                let text = cli::man_page_text(cmd, main).map_err(|e| io(&path, e))?;
                std::fs::write(&path, text).map_err(|e| io(&path, e))?;
            }
            Ok(())
        }
        Generate::Man { output: None } => {
            let text = cli::man_page_text(cli::command(), true).map_err(Error::stdout)?;
            out.write_all(&text).map_err(Error::stdout)
        }
        Generate::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(*shell, &mut cli::command(), cli::NAME, &mut text);
            out.write_all(&text).map_err(Error::stdout)
        }
    }
}

fn s(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
