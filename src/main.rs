//! The `klp-convert` command line: a thin layer over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use klp_convert::check;
use klp_convert::convert::{self, Error};
use klp_convert::elf::{signature, Elf};
use klp_convert::finding::{Finding, Severity};
use klp_convert::kbuild::{self, Build};
use klp_convert::maps::SymbolMap;
use klp_convert::module_file;
use klp_convert::show;

const USAGE: &str = "\
klp-convert: turn a livepatch module's references to unexported symbols into
klp relocations (.klp.rela.<obj>.<section>, .klp.sym.<obj>.<name>,<pos>).

Usage:
  klp-convert convert INPUT.ko -o OUTPUT.ko     convert into a new file
  klp-convert convert INPUT.ko --in-place       convert and replace INPUT.ko
  klp-convert show FILE.ko [--format json]      list klp relocations, annotations, problems
  klp-convert check FILE.ko|DIR... [--symbols MAP]... [--kernel-release R] [--format human|json]
                                                predict what the kernel will refuse at load
  klp-convert INPUT.ko OUTPUT.ko                drop-in for the minimal (SUSE) klp-convert
  klp-convert SYMBOLS INPUT.ko OUTPUT.ko        drop-in for the klp-convert v7 patchset
  klp-convert convert INPUT.ko -o OUT --symbols MAP...
                                                also resolve unannotated references from maps
  klp-convert symbols SOURCE... [-o FILE] [--format klp|json]
                                                write a symbol map (v7 symbols.klp, or JSON
                                                keeping order, addresses and source files)
  klp-convert build [DIR] [-C KBUILD | --kernel-release R] [--symbols MAP]... [-- MAKE_ARGS]
                                                build DIR's modules with kbuild (M=DIR) and
                                                convert every livepatch module in place

What convert does:
  Every undefined symbol named by KLP_RELOC_SYMBOL(lp_obj, sym_obj, sym) or
  KLP_RELOC_SYMBOL_POS(..., pos) from include/klp_convert.h, i.e.
  .klp.sym.rela.<lp_obj>.<sym_obj>.<sym>.<pos> (also ',<pos>' and clang's
  quoted form), is renamed in place to .klp.sym.<sym_obj>.<sym>,<pos> with
  st_shndx SHN_LIVEPATCH, and every relocation against it moves into
  .klp.rela.<lp_obj>.<target section>. The result is re-read and verified
  before it is written (atomically; on failure nothing is written).
  A module with nothing to convert comes out byte-identical; so does a
  second run. An appended signature is dropped: re-sign the output.

  It refuses, naming file, section, offset and symbol, what the kernel would
  refuse or silently misapply: no livepatch=Y in .modinfo, object names over
  55 bytes or with '.', symbol names over 511 bytes or with ',', a
  module-specific relocation to a vmlinux symbol, module-specific relocations
  in special sections (__jump_table, .altinstructions, ...) or in .init.*,
  relocations into sections without SHF_ALLOC (debug sections excepted: the
  loader never relocates them, so those stay in place).

What check does:
  Any livepatch module (made by this tool, kpatch, objtool or by hand) is
  checked against the kernel's livepatch ELF contract (klp section and symbol
  names, flags, sh_link/sh_info, SHN_LIVEPATCH, livepatch=Y, module-specific
  sections referencing vmlinux or patching special sections, ordinary
  relocations against livepatch symbols, name lengths for the release taken
  from vermagic or --kernel-release) and against the loader of its
  architecture: x86_64 (relocation types, zero target bytes), ppc64 (types,
  the nop after every bl to a klp symbol, .stubs), s390x and aarch64 (types,
  arm64 PLT sections), and with --symbols absolute fields too narrow for the
  resolved address.
  Warnings: late relocations into read-only sections; x86_64 kernels before
  6.3 refusing a patched module's reload. Directories are searched for .ko,
  .ko.xz and .ko.zst and checked in parallel, one summary line a module.
  --symbols MAP (repeatable) resolves every klp symbol as the kernel's
  klp_find_object_symbol does (not found / unresolvable ambiguity / position
  not found, with the candidates and the address chosen) and every ordinary
  undefined symbol against the exports. MAP is a /proc/kallsyms dump or a
  System.map (vmlinux lines, module lines with [name]), a vmlinux with a
  symbol table, a module .ko(.xz/.zst) (its name from .modinfo), or a
  Module.symvers (exports).

What build does:
  make -C KBUILD M=DIR KBUILD_MODPOST_WARN=1 [MAKE_ARGS] modules, on an
  unpatched kernel's kbuild (KBUILD defaults to /lib/modules/R/build, R to the
  running kernel); modpost only warns about the names it cannot resolve.
  Then every livepatch module listed in DIR/modules.order is converted in
  place, with the maps given plus the exports kbuild knows (KBUILD's and
  DIR's Module.symvers, KBUILD_EXTRA_SYMBOLS=... among MAKE_ARGS), and
  checked. A reference that is neither exported nor in a map is refused
  there, so what modpost let through cannot reach the kernel. Modules without
  livepatch=Y are left as built. DIR defaults to the current directory (M=DIR
  is accepted too; a directory inside a kernel tree builds the same way, with
  -C pointing at the tree).

Symbol maps (--symbols, SYMBOLS, symbols SOURCE): a /proc/kallsyms dump or
  System.map, a vmlinux with a symbol table, a module .ko(.xz/.zst) or a directory
  of them (/lib/modules/<release>), a Module.symvers (exports), a v7
  symbols.klp, a JSON map written by 'klp-convert symbols --format json', or
  the target's kernel .config (without CONFIG_KALLSYMS_ALL, modules read from
  .ko files keep only their text symbols, as the loader's kallsyms does).
  Exports come from Module.symvers or the __ksymtab_<name> entries of a
  vmlinux, a kallsyms dump or a module.
  With maps, convert also turns every unannotated reference to a symbol that
  vmlinux does not export into a klp relocation for the object that owns it
  (module exports too); an ambiguous or unknown name is refused with the
  candidates as ready-to-paste KLP_RELOC_SYMBOL_POS() lines, or the near
  misses. KLP_MODULE_RELOC(obj)/KLP_SYMPOS(sym, pos) annotations (v7 layout)
  are read and removed from what the kernel loads.

Exit status: 0 success, 1 module refused / check found an error (or not a
readable ELF object), 2 usage or I/O error.
";

/// A failure of the command line itself, with its exit code.
struct Fail(u8);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(code)) => ExitCode::from(code),
    }
}

fn usage_error(msg: &str) -> Fail {
    eprintln!("klp-convert: {msg}");
    eprintln!("Try 'klp-convert --help'.");
    Fail(2)
}

fn run(args: &[String]) -> Result<(), Fail> {
    // `klp-convert build --help` and the like (not make's, after `--`): the
    // one help text.
    if args
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "-h" || a == "--help")
    {
        print!("{USAGE}");
        return Ok(());
    }
    let first = args.first().map(String::as_str);
    match first {
        None => Err(usage_error("missing arguments")),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some("-V" | "--version") => {
            println!("klp-convert {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some("convert") => cmd_convert(&args[1..]),
        Some("show") => cmd_show(&args[1..]),
        Some("check") => cmd_check(&args[1..]),
        Some("symbols") => cmd_symbols(&args[1..]),
        Some("build") => cmd_build(&args[1..]),
        Some(a) if a.starts_with('-') => Err(usage_error(&format!("unknown option '{a}'"))),
        Some(_) => match args.len() {
            2 => convert_one(Path::new(&args[0]), Path::new(&args[1]), None),
            3 => {
                let map = load_maps(&[PathBuf::from(&args[0])])?;
                convert_one(Path::new(&args[1]), Path::new(&args[2]), Some(&map))
            }
            _ => Err(usage_error("expected INPUT OUTPUT, or a command")),
        },
    }
}

/// Read symbol maps (files or module directories) into one map.
fn load_maps(paths: &[PathBuf]) -> Result<SymbolMap, Fail> {
    SymbolMap::from_paths(paths).map_err(|e| {
        eprintln!("klp-convert: error: {e}");
        Fail(2)
    })
}

fn cmd_convert(args: &[String]) -> Result<(), Fail> {
    let mut input: Option<PathBuf> = None;
    let mut output: Option<PathBuf> = None;
    let mut in_place = false;
    let mut maps: Vec<PathBuf> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--symbols" => match it.next() {
                Some(f) => maps.push(PathBuf::from(f)),
                None => return Err(usage_error("--symbols takes a file or directory")),
            },
            "-o" | "--output" => match it.next() {
                Some(o) => output = Some(PathBuf::from(o)),
                None => return Err(usage_error("-o needs a file name")),
            },
            "-i" | "--in-place" => in_place = true,
            s if s.starts_with('-') => return Err(usage_error(&format!("unknown option '{s}'"))),
            s if input.is_none() => input = Some(PathBuf::from(s)),
            s => return Err(usage_error(&format!("unexpected argument '{s}'"))),
        }
    }
    let Some(input) = input else {
        return Err(usage_error("convert: missing INPUT"));
    };
    let output = match (output, in_place) {
        (Some(_), true) => {
            return Err(usage_error(
                "convert: give -o OUTPUT or --in-place, not both",
            ))
        }
        (None, false) => return Err(usage_error("convert: give -o OUTPUT or --in-place")),
        (Some(o), false) => o,
        (None, true) => input.clone(),
    };
    let map = if maps.is_empty() {
        None
    } else {
        Some(load_maps(&maps)?)
    };
    convert_one(&input, &output, map.as_ref())
}

fn cmd_symbols(args: &[String]) -> Result<(), Fail> {
    let mut sources: Vec<PathBuf> = Vec::new();
    let mut output: Option<PathBuf> = None;
    let mut json = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--format" => match it.next().map(String::as_str) {
                Some("json") => json = true,
                Some("klp") => json = false,
                _ => return Err(usage_error("--format takes klp or json")),
            },
            "-o" | "--output" => match it.next() {
                Some(o) => output = Some(PathBuf::from(o)),
                None => return Err(usage_error("-o needs a file name")),
            },
            s if s.starts_with('-') => return Err(usage_error(&format!("unknown option '{s}'"))),
            s => sources.push(PathBuf::from(s)),
        }
    }
    if sources.is_empty() {
        return Err(usage_error("symbols: give at least one source"));
    }
    let map = load_maps(&sources)?;
    let text = if json {
        map.to_json()
    } else {
        map.to_symbols_klp()
    };
    match output {
        Some(o) => {
            let mode =
                <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644);
            module_file::write_atomically(&o, text.as_bytes(), mode).map_err(|e| {
                eprintln!("klp-convert: error: {e}");
                Fail(2)
            })?;
            let objects: Vec<&str> = map.objects().collect();
            let count: usize = objects.iter().map(|o| map.symbols(o).len()).sum();
            let mut names = objects[..objects.len().min(5)].join(", ");
            if objects.len() > 5 {
                names += &format!(", and {} more", objects.len() - 5);
            }
            eprintln!(
                "klp-convert: {}: {count} symbols of {} object(s) ({names}){}",
                o.display(),
                objects.len(),
                if map.has_exports() {
                    ", with exports"
                } else {
                    ""
                }
            );
            Ok(())
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn cmd_build(args: &[String]) -> Result<(), Fail> {
    let mut dir: Option<PathBuf> = None;
    let mut kbuild_dir: Option<PathBuf> = None;
    let mut release: Option<String> = None;
    let mut maps: Vec<PathBuf> = Vec::new();
    let mut make_args: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--" => make_args.extend(it.by_ref().cloned()),
            "-C" | "--kbuild" => match it.next() {
                Some(d) => kbuild_dir = Some(PathBuf::from(d)),
                None => return Err(usage_error("-C takes the kernel's build directory")),
            },
            "--kernel-release" => match it.next() {
                Some(r) => release = Some(r.clone()),
                None => return Err(usage_error("--kernel-release takes a release")),
            },
            "--symbols" => match it.next() {
                Some(f) => maps.push(PathBuf::from(f)),
                None => return Err(usage_error("--symbols takes a file or directory")),
            },
            s if s.starts_with('-') => return Err(usage_error(&format!("unknown option '{s}'"))),
            s if dir.is_none() => dir = Some(PathBuf::from(s.strip_prefix("M=").unwrap_or(s))),
            s => return Err(usage_error(&format!("unexpected argument '{s}'"))),
        }
    }
    let kbuild_dir = match kbuild_dir {
        Some(d) => d,
        None => kbuild::default_kbuild(release.as_deref()).map_err(|e| {
            eprintln!("klp-convert: error: {e}");
            Fail(2)
        })?,
    };
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let build = Build::new(kbuild_dir, &dir, make_args).map_err(|e| {
        eprintln!("klp-convert: error: {e}");
        Fail(2)
    })?;
    let failed = |e: String| {
        eprintln!("klp-convert: error: {e}");
        Fail(1)
    };
    build.make_modules().map_err(failed)?;
    let modules = build.modules().map_err(failed)?;
    maps.extend(build.export_maps());
    let map = if maps.is_empty() {
        None
    } else {
        Some(load_maps(&maps)?)
    };
    let mut ready = Vec::new();
    let mut refused = Vec::new();
    for ko in &modules {
        let bytes = module_file::read(ko).map_err(|e| failed(e.to_string()))?;
        let (image, _) = signature::split(&bytes);
        let livepatch = Elf::parse(image).is_ok_and(|elf| elf.is_livepatch());
        if !livepatch {
            eprintln!(
                "klp-convert: {}: not a livepatch module (no livepatch=Y): left as built",
                ko.display()
            );
            continue;
        }
        match convert_one(ko, ko, map.as_ref()) {
            Ok(()) => ready.push(ko.display().to_string()),
            Err(_) => refused.push(ko.display().to_string()),
        }
    }
    if !refused.is_empty() {
        eprintln!(
            "klp-convert: build: {} livepatch module{} refused, left unconverted (the kernel would refuse {}): {}",
            refused.len(),
            s(refused.len()),
            if refused.len() == 1 { "it" } else { "them" },
            refused.join(", ")
        );
        return Err(Fail(1));
    }
    eprintln!(
        "klp-convert: build: {} livepatch module{} ready: {}",
        ready.len(),
        s(ready.len()),
        ready.join(", ")
    );
    Ok(())
}

fn print_problem(file: &Path, p: &Finding) {
    let sev = match p.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    };
    eprintln!("klp-convert: {sev}: {}: {p}", file.display());
}

fn convert_one(input: &Path, output: &Path, map: Option<&SymbolMap>) -> Result<(), Fail> {
    match convert::convert_file(input, output, map) {
        Ok(done) => {
            for n in &done.notes {
                print_problem(input, n);
            }
            if done.changed {
                eprintln!(
                    "klp-convert: {}: {} relocation{} of {} symbol{} moved into {} klp section{} -> {}",
                    input.display(),
                    done.relocations,
                    s(done.relocations),
                    done.symbols,
                    s(done.symbols),
                    done.sections,
                    s(done.sections),
                    output.display()
                );
            }
            Ok(())
        }
        Err(Error::Refused(problems)) => {
            for p in &problems {
                print_problem(input, p);
            }
            eprintln!(
                "klp-convert: {}: refused ({} problem{}); nothing written",
                input.display(),
                problems.len(),
                s(problems.len())
            );
            Err(Fail(1))
        }
        Err(Error::Internal(problems)) => {
            for p in &problems {
                print_problem(input, p);
            }
            eprintln!(
                "klp-convert: {}: internal error: the converted module failed verification; nothing written. Please report this with the input module.",
                input.display()
            );
            Err(Fail(1))
        }
        Err(Error::Malformed(m)) => {
            eprintln!("klp-convert: error: {}: {m}", input.display());
            Err(Fail(1))
        }
        Err(Error::Io(m)) => {
            eprintln!("klp-convert: error: {m}");
            Err(Fail(2))
        }
    }
}

fn cmd_show(args: &[String]) -> Result<(), Fail> {
    let mut file: Option<&str> = None;
    let mut json = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--format" => match it.next().map(String::as_str) {
                Some("json") => json = true,
                Some("human") => json = false,
                _ => return Err(usage_error("--format takes human or json")),
            },
            s if s.starts_with("--format=") => json = &s[9..] == "json",
            s if s.starts_with('-') => return Err(usage_error(&format!("unknown option '{s}'"))),
            s if file.is_none() => file = Some(s),
            s => return Err(usage_error(&format!("unexpected argument '{s}'"))),
        }
    }
    let Some(file) = file else {
        return Err(usage_error("show: missing FILE"));
    };
    let bytes = std::fs::read(file).map_err(|e| {
        eprintln!("klp-convert: error: {file}: {e}");
        Fail(2)
    })?;
    let (image, _) = signature::split(&bytes);
    let elf = Elf::parse(image).map_err(|e| {
        eprintln!("klp-convert: error: {file}: {e}");
        Fail(1)
    })?;
    let report = show::report(file, &elf);
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("klp-convert: error: {file}: {e}");
                return Err(Fail(2));
            }
        }
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

fn cmd_check(args: &[String]) -> Result<(), Fail> {
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut json = false;
    let mut release: Option<String> = None;
    let mut maps: Vec<PathBuf> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--format" => match it.next().map(String::as_str) {
                Some("json") => json = true,
                Some("human") => json = false,
                _ => return Err(usage_error("--format takes human or json")),
            },
            "--symbols" => match it.next() {
                Some(f) => maps.push(PathBuf::from(f)),
                None => return Err(usage_error("--symbols takes a file")),
            },
            "--kernel-release" => match it.next() {
                Some(r) if klp_convert::rules::Release::parse(r).is_some() => {
                    release = Some(r.clone())
                }
                _ => {
                    return Err(usage_error(
                        "--kernel-release takes a release like 6.1.0-56-amd64",
                    ))
                }
            },
            s if s.starts_with('-') => return Err(usage_error(&format!("unknown option '{s}'"))),
            s => paths.push(PathBuf::from(s)),
        }
    }
    if paths.is_empty() {
        return Err(usage_error("check: missing FILE or DIR"));
    }
    let map = if maps.is_empty() {
        None
    } else {
        Some(load_maps(&maps)?)
    };
    let files = module_file::find_modules(&paths).map_err(|e| {
        eprintln!("klp-convert: error: {e}");
        Fail(2)
    })?;
    let results = check::check_files(&files, release.as_deref(), map.as_ref());
    let mut io_error = false;
    let mut reports = Vec::new();
    for r in results {
        match r {
            Ok(report) => reports.push(report),
            Err(e) => {
                eprintln!("klp-convert: error: {e}");
                io_error = true;
            }
        }
    }
    let errors = reports
        .iter()
        .filter(|r| r.count(Severity::Error) > 0)
        .count();
    if json {
        match serde_json::to_string_pretty(&reports) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("klp-convert: error: {e}");
                return Err(Fail(2));
            }
        }
    } else {
        let many = reports.len() > 1;
        for r in &reports {
            print!("{}", check_text(r, many));
        }
        if many {
            let warned = reports
                .iter()
                .filter(|r| r.count(Severity::Error) == 0 && r.count(Severity::Warning) > 0)
                .count();
            let plain = reports
                .iter()
                .filter(|r| !r.livepatch && r.findings.is_empty())
                .count();
            println!(
                "checked {} modules: {errors} with errors, {warned} with warnings only, {plain} not livepatch modules",
                reports.len()
            );
        }
    }
    if io_error {
        Err(Fail(2))
    } else if errors > 0 {
        Err(Fail(1))
    } else {
        Ok(())
    }
}

/// One module's findings for a person: a summary line, then the findings.
fn check_text(r: &check::ModuleReport, many: bool) -> String {
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
        let sev = match p.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        out.push_str(&format!("  {sev}: {p}\n"));
    }
    out
}

fn s(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
