//! The `klp-convert` command line, defined once (clap derive): the binary
//! parses with it, [`crate::app`] runs what it parsed, and the man pages and
//! shell completions (`klp-convert generate ...`) are generated from it.
//!
//! Besides the subcommands, the two drop-in forms of the kernel's build
//! (`klp-convert INPUT.ko OUTPUT.ko`, the minimal/SUSE tool, and
//! `klp-convert SYMBOLS INPUT.ko OUTPUT.ko`, the v7 patchset) are recognised
//! by [`parse`] before clap sees the arguments.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::error::Error;
use crate::maps::{LoadOrder, Orders, SymbolMap, Wanted};
use crate::rules::Release;

/// The program's name, as the man pages and completions know it.
pub const NAME: &str = "klp-convert";

const ABOUT: &str = "\
Turn a livepatch module's references to unexported symbols into
klp relocations (.klp.rela.<obj>.<section>, .klp.sym.<obj>.<name>,<pos>).";

/// The drop-in form of the minimal (SUSE) klp-convert.
const DROP_IN_MINIMAL: &str = "INPUT.ko OUTPUT.ko";

/// The drop-in form of the klp-convert v7 patchset.
const DROP_IN_V7: &str = "SYMBOLS INPUT.ko OUTPUT.ko";

/// Every form of the command line, once: what follows `klp-convert`, and
/// what it does (a `\n` continues the description on the next line).
/// Every command has one; the drop-in forms come last.
const FORMS: &[(&str, &str)] = &[
    ("convert INPUT.ko -o OUTPUT.ko", "convert into a new file"),
    (
        "convert INPUT.ko --in-place",
        "convert and replace INPUT.ko",
    ),
    (
        "convert INPUT.ko -o OUT --symbols MAP...",
        "also resolve unannotated references from maps",
    ),
    (
        "show FILE.ko [--format json]",
        "list klp relocations, annotations, problems",
    ),
    (
        "check FILE.ko|DIR... [--symbols MAP]... [--kernel-release R] [--format human|json]",
        "predict what the kernel will refuse at load",
    ),
    (
        "symbols SOURCE... [-o FILE] [--format klp|json]",
        "write a symbol map (v7 symbols.klp, or JSON\nkeeping order, addresses and source files)",
    ),
    (
        "build [DIR] [-C DIR | --kernel-release R] [--symbols MAP]... [-- MAKE_ARGS]",
        "build DIR's modules with kbuild (M=DIR) and\nconvert every livepatch module in place",
    ),
    (
        "kbuild-patch -C DIR | --kernel-release R",
        "print the kbuild patch that makes a kernel\ntree convert its livepatch modules",
    ),
    (
        "generate man [-o DIR] | generate completions SHELL",
        "write the man pages, or a shell's completion\nscript (bash, zsh, fish, elvish, powershell)",
    ),
    (
        DROP_IN_MINIMAL,
        "drop-in for the minimal (SUSE) klp-convert",
    ),
    (DROP_IN_V7, "drop-in for the klp-convert v7 patchset"),
];

/// The column where a form's description starts.
const FORM_COLUMN: usize = 48;

/// The forms list of the top-level long help, from [`FORMS`].
fn forms() -> String {
    let mut out = String::from("Forms:");
    let indent = " ".repeat(FORM_COLUMN);
    for (form, what) in FORMS {
        let form = format!("  {NAME} {form}");
        let mut lines = what.lines();
        let first = lines.next().unwrap_or_default();
        if form.len() < FORM_COLUMN {
            out += &format!("\n{form:<FORM_COLUMN$}{first}");
        } else {
            out += &format!("\n{form}\n{indent}{first}");
        }
        for line in lines {
            out += &format!("\n{indent}{line}");
        }
    }
    out
}

/// The usage line: the commands, and the drop-in forms.
fn usage() -> String {
    format!(
        "{NAME} <COMMAND> [ARGS]...\n       {NAME} {DROP_IN_MINIMAL}\n       {NAME} {DROP_IN_V7}"
    )
}

fn long_about() -> String {
    format!("{ABOUT}\n\n{}", forms())
}

/// The symbol map sources, written once: the top-level help, `symbols`'
/// description, the `--symbols` help (`check`, `convert`, `build`) and the
/// man pages all show this paragraph, once in each.
const MAP_SOURCES: &str = "\
Symbol maps (--symbols MAP, the drop-in SYMBOLS, symbols SOURCE): a
/proc/kallsyms dump or a System.map (vmlinux lines, module lines with
[name]); a vmlinux with a symbol table; a module .ko, .ko.xz or .ko.zst
(named by its .modinfo) or a directory of them (/lib/modules/<release>); a
Module.symvers (exports); a v7 symbols.klp; a JSON map written by
'klp-convert symbols --format json'; or the target's kernel .config, read
before the other maps wherever it stands (without CONFIG_KALLSYMS_ALL,
modules read from .ko files keep only their text symbols, as the loader's
kallsyms does). Exports come from Module.symvers or the __ksymtab_<name>
entries of a vmlinux, a kallsyms dump or a module.";

/// Every exit status and what it means, once: the help and the man pages
/// list them from here ([`crate::error::Error::exit_code`] chooses one).
/// A `\n` continues the meaning on the next line.
pub const EXIT_STATUSES: &[(u8, &str)] = &[
    (0, "success"),
    (
        1,
        "a module refused, a check or show that found an error, a failed\nbuild, an input that is not a readable ELF object, or an internal error",
    ),
    (
        2,
        "a usage error, or a file or map that cannot be read or written",
    ),
    (
        141,
        "standard output closed by its reader (klp-convert ... | head), as a\nshell reports a tool killed by SIGPIPE",
    ),
];

/// The exit statuses for the help, from [`EXIT_STATUSES`].
fn exit_statuses() -> String {
    let mut out = String::from("Exit status:");
    for (code, what) in EXIT_STATUSES {
        for (i, line) in what.lines().enumerate() {
            let code = if i == 0 {
                code.to_string()
            } else {
                String::new()
            };
            out += &format!("\n  {code:<5}{line}");
        }
    }
    out
}

const COMMAND_HELP: &str =
    "Run 'klp-convert COMMAND --help' for what a command does and its options.";

const COMPRESSED: &str = "\
Modules may be compressed (.ko.xz, .ko.zst: told by their magic bytes), up
to 1 GiB decompressed; KLP_CONVERT_MAX_DECOMPRESSED=SIZE (bytes, or with K,
M or G: 4G) sets another bound.";

fn after_help() -> String {
    format!("{COMMAND_HELP}\n\n{COMPRESSED}\n\n{}", exit_statuses())
}

fn after_long_help() -> String {
    format!("{MAP_SOURCES}\n\n{}", after_help())
}

const CONVERT_ABOUT: &str = "Turn a livepatch module's references into klp relocations.";

const CONVERT_LONG_ABOUT: &str = "\
Turn a livepatch module's references into klp relocations.

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

With maps, convert also turns every unannotated reference to a symbol that
vmlinux does not export into a klp relocation for the object that owns it
(module exports too); an ambiguous or unknown name is refused with the
candidates as ready-to-paste KLP_RELOC_SYMBOL_POS() lines, or the near
misses. KLP_MODULE_RELOC(obj)/KLP_SYMPOS(sym, pos) annotations (v7 layout)
are read and removed from what the kernel loads.

A compressed INPUT (.ko.xz, .ko.zst) is read like any other; the output is
written uncompressed, so --in-place on a compressed module is refused, and
so is an OUTPUT named *.xz or *.zst: convert into OUTPUT.ko, then compress
that.";

const SHOW_ABOUT: &str = "List a module's klp relocations, annotations and problems.";

const SHOW_LONG_ABOUT: &str = "\
List a module's klp relocations by object and section (type, offset, symbol,
position, addend), the annotations still waiting for conversion with the
klp symbol each would become, and the problems found, with a summary line.
FILE.ko may be compressed (.ko.xz, .ko.zst). Exits 1 when it lists an
error (unconverted annotations are errors), after the report.";

const CHECK_ABOUT: &str = "Predict what the kernel will refuse when it loads a livepatch module.";

const CHECK_LONG_ABOUT: &str = "\
Predict what the kernel will refuse when it loads a livepatch module.

Any livepatch module (made by this tool, kpatch, objtool or by hand) is
checked against the kernel's livepatch ELF contract (klp section and symbol
names, flags, sh_link/sh_info, SHN_LIVEPATCH, livepatch=Y, module-specific
sections referencing vmlinux or patching special sections, ordinary
relocations against livepatch symbols, name lengths for the release taken
from vermagic or --kernel-release), the same rules convert applies, and
against the loader of its architecture: x86_64 (relocation types, zero
target bytes), ppc64 (types, the nop after every bl to a klp symbol,
.stubs), s390x and aarch64 (types, arm64 PLT sections), and with --symbols
absolute fields too narrow for the resolved address.

Warnings: late relocations into read-only sections on kernels whose loader
does not write them safely; x86_64 kernels before 6.3 refusing a patched
module's reload. Every finding carries a stable rule id (in --format json).

Directories are searched for .ko, .ko.xz and .ko.zst and checked in
parallel, one summary line per module. A file that cannot be read, or whose
check hits an internal error, is reported on standard error and the
others are still checked; the exit status says so at the end.

--symbols MAP (repeatable) resolves every klp symbol as the kernel's
klp_find_object_symbol does (not found / unresolvable ambiguity / position
not found, with the candidates and the address chosen) and every ordinary
undefined symbol against the exports; the maps it takes are listed with
--symbols below.";

const SYMBOLS_ABOUT: &str = "Write a symbol map (v7 symbols.klp, or JSON).";

fn symbols_long_about() -> String {
    format!(
        "Read every SOURCE into one symbol map and write it: the v7 symbols.klp
format, or JSON keeping order, addresses and source files.\n\n{MAP_SOURCES}"
    )
}

const BUILD_ABOUT: &str =
    "Build DIR's modules with kbuild (M=DIR) and convert every livepatch module in place.";

const BUILD_LONG_ABOUT: &str = "\
Build DIR's modules with kbuild and convert every livepatch module in place:

make -C KERNEL_DIR M=DIR KBUILD_MODPOST_WARN=1 [MAKE_ARGS] modules, where
KERNEL_DIR (-C, --kernel-dir) is an unpatched kernel's build directory,
by default /lib/modules/R/build (R: --kernel-release, or the running
kernel's); modpost only warns about the names it cannot resolve.
Then every livepatch module listed in DIR/modules.order is converted in
place, with the maps given plus the exports kbuild knows (KERNEL_DIR's and
DIR's Module.symvers, KBUILD_EXTRA_SYMBOLS), and checked. A reference
that is neither exported nor in a map is refused there. Then every module
of modules.order is checked as modpost would without warning mode: an
undefined symbol that no export list has fails the build, naming the
module and the symbol, unless it is a weak reference or, in a livepatch
module, a .klp.sym.rela.* name (what the kbuild patch lets through). So
what modpost only warned about cannot reach the kernel. Modules without
livepatch=Y are otherwise left as built. DIR defaults to the current
directory (M=DIR is accepted too; a directory inside a kernel tree builds
the same way, with -C pointing at the tree).";

const KBUILD_PATCH_ABOUT: &str =
    "Print the kbuild patch that makes a kernel tree convert its livepatch modules.";

const KBUILD_PATCH_LONG_ABOUT: &str = "\
Print the kbuild patch (GPL-2.0) for a kernel tree, to apply with patch -p1:

  klp-convert kbuild-patch -C DIR | patch -p1 -d DIR

With it, the tree's own `make modules` builds livepatch modules that load:
modpost lets a livepatch=Y module's .klp.sym.rela.* names through (and
nothing else), and each livepatch module is converted once linked
(\"  KLP     path/to/mod.ko\"), with the tree's vmlinux and Module.symvers
as maps (more with KLP_CONVERT_SYMBOLS=...). KLP_CONVERT=<path> names the
tool (default: klp-convert from PATH). With -C, each patch is tried on
the tree (patch --dry-run -p1 --fuzz=0; the tree's own series first, from
its Makefile) and the first that applies is printed, its series said on
stderr; a tree none fits is refused with the series tried. With
--kernel-release, the release's number chooses. Series: 5.10, 6.1, 6.12,
7 (7.0 to 7.2) and 7.3 (7.3 and later).";

/// `-C DIR`: "the kernel tree, as make -C takes it", in every command
/// that has it.
const KERNEL_DIR_HELP: &str = "The kernel tree, as make -C takes it";

const MAP_HELP: &str = "A symbol map to resolve against (repeatable)";

fn map_long_help() -> String {
    format!("{MAP_HELP}.\n\n{MAP_SOURCES}")
}

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    propagate_version = true,
    // `help COMMAND` is `COMMAND --help` (parse), without clap's listing.
    disable_help_subcommand = true,
    about = ABOUT,
    long_about = long_about(),
    override_usage = usage(),
    after_help = after_help(),
    after_long_help = after_long_help(),
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Convert a livepatch module.
    #[command(about = CONVERT_ABOUT, long_about = CONVERT_LONG_ABOUT, after_help = exit_statuses())]
    Convert(ConvertArgs),
    /// List a module's klp relocations.
    #[command(about = SHOW_ABOUT, long_about = SHOW_LONG_ABOUT, after_help = exit_statuses())]
    Show(ShowArgs),
    /// Check modules against the kernel's rules.
    #[command(about = CHECK_ABOUT, long_about = CHECK_LONG_ABOUT, after_help = exit_statuses())]
    Check(CheckArgs),
    /// Write a symbol map.
    #[command(about = SYMBOLS_ABOUT, long_about = symbols_long_about(), after_help = exit_statuses())]
    Symbols(SymbolsArgs),
    /// Build and convert with kbuild.
    #[command(about = BUILD_ABOUT, long_about = BUILD_LONG_ABOUT, after_help = exit_statuses())]
    Build(BuildArgs),
    /// Print the kbuild patch for a kernel tree.
    #[command(about = KBUILD_PATCH_ABOUT, long_about = KBUILD_PATCH_LONG_ABOUT, after_help = exit_statuses())]
    KbuildPatch(KbuildPatchArgs),
    /// Generate the man pages or shell completions.
    #[command(about = GENERATE_ABOUT, after_help = exit_statuses())]
    Generate(GenerateArgs),
}

/// `--symbols MAP`, repeatable: the symbol maps of `convert`, `check` and
/// `build`.
#[derive(Debug, Clone, Default, Args)]
pub struct MapArgs {
    /// The maps, in the order given.
    #[arg(
        long = "symbols",
        value_name = "MAP",
        help = MAP_HELP,
        long_help = map_long_help()
    )]
    pub symbols: Vec<PathBuf>,
    /// The load orders the patch must work in.
    #[arg(
        long = "load-order",
        value_name = "ORDER",
        value_enum,
        default_value_t = LoadOrderArg::Both,
        help = "The load orders a module's symbol positions must hold in",
        long_help = LOAD_ORDER_LONG_HELP
    )]
    pub load_order: LoadOrderArg,
}

/// `--load-order`: see [`crate::maps::Orders`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LoadOrderArg {
    /// Whichever loads first, the patch or the target module.
    #[default]
    Both,
    /// The target module is always loaded before the patch.
    TargetFirst,
    /// The target module always loads after the patch.
    PatchFirst,
}

impl LoadOrderArg {
    /// The orders it names.
    pub fn orders(self) -> Orders {
        match self {
            LoadOrderArg::Both => Orders::Both,
            LoadOrderArg::TargetFirst => Orders::Only(LoadOrder::TargetFirst),
            LoadOrderArg::PatchFirst => Orders::Only(LoadOrder::PatchFirst),
        }
    }
}

const LOAD_ORDER_LONG_HELP: &str = "\
The load orders a module's symbol positions must hold in. The livepatch \
core counts a target module's symbols in two lists: when the module is \
loaded before the patch, the kallsyms it kept after its init; when it \
loads after the patch (or is reloaded while the patch is enabled), its \
whole symbol table, .init symbols included, because klp_module_coming runs \
before the module's init. 'both' (the default) proves every position in \
both; 'target-first' or 'patch-first' when the deployment guarantees the \
order. A reload of the target under an enabled patch counts as \
patch-first.";

impl MapArgs {
    /// Read the maps given, then `extra` ones, into one map: `None` without
    /// any. Every command loads its maps here, through
    /// [`SymbolMap::add_paths`], so kernel configs apply before the modules
    /// whatever the order of the flags. `wanted` (called only when there
    /// are maps to read) gives the names of the modules the command
    /// converts or checks, and the map keeps only those
    /// ([`SymbolMap::add_paths_wanted`]: a few hundred of a kernel's
    /// hundreds of thousands); `None` keeps every name.
    pub fn load(
        &self,
        extra: &[PathBuf],
        wanted: impl FnOnce() -> Option<Wanted>,
    ) -> Result<Option<SymbolMap>, Error> {
        let paths: Vec<PathBuf> = self.symbols.iter().chain(extra).cloned().collect();
        if paths.is_empty() {
            return Ok(None);
        }
        let mut map = match wanted() {
            Some(w) => SymbolMap::from_paths_wanted(&paths, &w).map_err(Error::Map)?,
            None => load_maps(&paths)?,
        };
        map.set_orders(self.load_order.orders());
        Ok(Some(map))
    }
}

/// Read map sources into one map ([`SymbolMap::add_paths`]).
pub fn load_maps(paths: &[PathBuf]) -> Result<SymbolMap, Error> {
    let mut map = SymbolMap::new();
    map.add_paths(paths).map_err(Error::Map)?;
    Ok(map)
}

/// `--kernel-release R`: the release the rules apply to (`check`), or whose
/// kbuild to use (`build`).
#[derive(Debug, Clone, Default, Args)]
pub struct ReleaseArgs {
    /// The release, validated by [`Release::parse`].
    #[arg(
        long = "kernel-release",
        value_name = "R",
        value_parser = parse_release,
        help = "The target kernel's release (6.1.0-56-amd64)"
    )]
    pub kernel_release: Option<Release>,
}

impl ReleaseArgs {
    /// The release as given, if any.
    pub fn text(&self) -> Option<&str> {
        self.kernel_release.as_ref().map(|r| r.text.as_str())
    }
}

fn parse_release(text: &str) -> Result<Release, String> {
    Release::parse(text).ok_or_else(|| "expected a release like 6.1.0-56-amd64".to_string())
}

/// The output format of a report (`show`, `check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Text for a person.
    #[default]
    Human,
    /// JSON for a program.
    Json,
}

/// The format of a written symbol map (`symbols`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum MapFormat {
    /// The v7 patchset's symbols.klp.
    #[default]
    Klp,
    /// JSON keeping order, addresses and source files.
    Json,
}

/// `klp-convert convert`.
#[derive(Debug, Clone, Args)]
#[group(id = "destination", required = true, multiple = false, args = ["output", "in_place"])]
pub struct ConvertArgs {
    /// The livepatch module to convert.
    #[arg(value_name = "INPUT.ko")]
    pub input: PathBuf,
    /// Write the converted module here.
    #[arg(short = 'o', long = "output", value_name = "OUTPUT.ko")]
    pub output: Option<PathBuf>,
    /// Replace INPUT.ko with the converted module.
    #[arg(short = 'i', long = "in-place")]
    pub in_place: bool,
    /// Print only warnings and errors, no summary line (kbuild's KLP step).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Symbol maps.
    #[command(flatten)]
    pub maps: MapArgs,
}

impl ConvertArgs {
    /// Where the converted module goes: `-o`, or the input itself.
    pub fn destination(&self) -> PathBuf {
        self.output.clone().unwrap_or_else(|| self.input.clone())
    }
}

/// `klp-convert kbuild-patch`: a tree or a release, one of them.
#[derive(Debug, Clone, Args)]
#[group(id = "series", required = true, multiple = false, args = ["kernel_dir", "kernel_release"])]
pub struct KbuildPatchArgs {
    /// The kernel source tree to patch (each patch is tried on it with a
    /// dry run); `--tree` is the old name.
    #[arg(
        short = 'C',
        long = "kernel-dir",
        alias = "tree",
        value_name = "DIR",
        help = format!("{KERNEL_DIR_HELP}: the kernel source tree to patch (the patch that applies is chosen)")
    )]
    pub kernel_dir: Option<PathBuf>,
    /// The release the patch is for, instead of a tree.
    #[command(flatten)]
    pub release: ReleaseArgs,
}

/// `klp-convert show`.
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// The module to list.
    #[arg(value_name = "FILE.ko")]
    pub file: PathBuf,
    /// The output format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Human)]
    pub format: Format,
}

/// `klp-convert check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Modules, or directories searched for .ko, .ko.xz and .ko.zst.
    #[arg(value_name = "FILE.ko|DIR", required = true)]
    pub paths: Vec<PathBuf>,
    /// Symbol maps.
    #[command(flatten)]
    pub maps: MapArgs,
    /// The release the rules apply to (default: the module's vermagic).
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// The output format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Human)]
    pub format: Format,
}

/// `klp-convert symbols`.
#[derive(Debug, Clone, Args)]
pub struct SymbolsArgs {
    /// The map sources.
    #[arg(value_name = "SOURCE", required = true)]
    pub sources: Vec<PathBuf>,
    /// Write the map here (atomically) instead of to standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The map format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = MapFormat::Klp)]
    pub format: MapFormat,
}

/// `klp-convert build`.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// The module sources (M=DIR is accepted too; default: the current directory).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The kernel's build directory (default: /lib/modules/R/build);
    /// `--kbuild` is the old name.
    #[arg(
        short = 'C',
        long = "kernel-dir",
        alias = "kbuild",
        value_name = "DIR",
        conflicts_with = "kernel_release",
        help = format!("{KERNEL_DIR_HELP}: the kernel's build directory (default: /lib/modules/R/build)")
    )]
    pub kernel_dir: Option<PathBuf>,
    /// The release whose kbuild to use (default: the running kernel's).
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// Symbol maps, besides the exports kbuild knows.
    #[command(flatten)]
    pub maps: MapArgs,
    /// Arguments for make, after `--` (KCFLAGS=..., V=1, -j8, ...).
    #[arg(last = true, value_name = "MAKE_ARGS", allow_hyphen_values = true)]
    pub make_args: Vec<String>,
}

impl BuildArgs {
    /// The module directory, without a leading `M=`.
    pub fn dir(&self) -> PathBuf {
        match &self.dir {
            None => PathBuf::from("."),
            Some(d) => match d.to_str().and_then(|s| s.strip_prefix("M=")) {
                Some(stripped) => PathBuf::from(stripped),
                None => d.clone(),
            },
        }
    }
}

const GENERATE_ABOUT: &str =
    "Write the man pages, or a shell's completion script, from this command line's definition.";

/// `klp-convert generate`: documentation from this definition, for an
/// install without the Debian package.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// What to generate.
    #[command(subcommand)]
    pub what: Generate,
}

/// What `klp-convert generate` writes.
#[derive(Debug, Clone, Subcommand)]
pub enum Generate {
    /// The man pages: klp-convert.1 and one page per command into DIR, or
    /// the main page to standard output.
    Man {
        /// The directory to write the pages into.
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: Option<PathBuf>,
    },
    /// A completion script for a shell, to standard output.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// Run a command (the drop-in forms are [`Command::Convert`]).
    Run(Command),
    /// Print this text (help or version) to standard output and succeed.
    Print(String),
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Text for a man page: roff's special characters escaped, a blank line a
/// new paragraph. Lines are filled, as in the other sections.
fn roff_text(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            out += ".PP\n";
            continue;
        }
        let line = line.replace('\\', "\\e").replace('-', "\\-");
        if line.starts_with(['.', '\'']) {
            out += "\\&";
        }
        out += &line;
        out.push('\n');
    }
    out
}

/// The main man page's DESCRIPTION: [`ABOUT`], then [`FORMS`] as a list
/// (filled as text, their columns would not survive).
fn main_description() -> String {
    let mut out = format!(".SH DESCRIPTION\n{}.PP\nForms:\n", roff_text(ABOUT));
    for (form, what) in FORMS {
        out += &format!(
            ".TP\n\\fB{}\\fR\n",
            roff_text(&format!("{NAME} {form}")).trim_end()
        );
        out += &roff_text(&what.replace('\n', " "));
    }
    out
}

/// The sections a man page has besides clap_mangen's: for the main page
/// the symbol maps and the environment, for every page the exit statuses
/// ([`EXIT_STATUSES`]).
fn man_sections(main: bool) -> String {
    let mut out = String::new();
    if main {
        out += ".SH \"SYMBOL MAPS\"\n";
        out += &roff_text(MAP_SOURCES);
        out += ".SH ENVIRONMENT\n";
        out += &roff_text(COMPRESSED);
    }
    out += ".SH \"EXIT STATUS\"\n";
    for (code, what) in EXIT_STATUSES {
        out += &format!(".TP\n{code}\n");
        out += &roff_text(&what.replace('\n', " "));
    }
    out
}

/// Write the man page of `cmd` (the main page when `main`): clap_mangen's
/// sections from the definition, then [`man_sections`] in place of its
/// EXTRA section (the after-help text, which the help has for a terminal).
fn man_page(mut cmd: clap::Command, main: bool, out: &mut dyn Write) -> io::Result<()> {
    // Built, for the arguments clap adds (--help, --version).
    cmd.build();
    let has_args = cmd.get_arguments().any(|a| !a.is_hide_set());
    let has_commands = cmd.get_subcommands().any(|c| !c.is_hide_set());
    let man = clap_mangen::Man::new(cmd);
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    if main {
        out.write_all(main_description().as_bytes())?;
    } else {
        man.render_description_section(out)?;
    }
    if has_args {
        man.render_options_section(out)?;
    }
    if has_commands {
        man.render_subcommands_section(out)?;
    }
    out.write_all(man_sections(main).as_bytes())?;
    man.render_version_section(out)
}

/// [`man_page`], with clap_mangen's preamble (which each of its sections
/// repeats) once.
pub fn man_page_text(cmd: clap::Command, main: bool) -> io::Result<Vec<u8>> {
    let mut text = Vec::new();
    man_page(cmd, main, &mut text)?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for line in text.split_inclusive(|&b| b == b'\n') {
        let preamble = line.starts_with(b".ie ") || line.starts_with(b".el ");
        if !preamble || seen.insert(line) {
            out.extend_from_slice(line);
        }
    }
    Ok(out)
}

/// Every man page: its file name, the command, and whether it is the main
/// page (klp-convert.1, then klp-convert-COMMAND.1 for each command).
pub fn man_pages() -> Vec<(String, clap::Command, bool)> {
    let mut main = command();
    main.build();
    let mut pages = vec![(format!("{NAME}.1"), main.clone(), true)];
    for c in main.get_subcommands().filter(|c| !c.is_hide_set()) {
        let name = c.get_display_name().unwrap_or_else(|| c.get_name());
        pages.push((format!("{name}.1"), c.clone(), false));
    }
    pages
}

/// Parse the arguments (without the program name). A first argument that
/// is neither a command nor an option, and names an existing file or looks
/// like one ([`looks_like_a_file`]), starts a drop-in form: `INPUT OUTPUT`
/// or `SYMBOLS INPUT OUTPUT`, converted as `convert INPUT -o OUTPUT
/// [--symbols SYMBOLS]`. Any other first argument is clap's to answer (a
/// typo of a command gets its suggestion). `help [COMMAND]` is
/// `[COMMAND] --help`.
pub fn parse<I>(args: I) -> Result<Invocation, Error>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let Some(first) = args.first() else {
        return Err(Error::usage("missing arguments"));
    };
    if first == "help" {
        // `help build -C X -- -j2` must not run the build: keep the command
        // words only, then ask for their help.
        let words = args[1..]
            .iter()
            .take_while(|a| !a.as_encoded_bytes().starts_with(b"-"))
            .cloned();
        args = words.chain(["--help".into()]).collect();
    } else if !first.as_encoded_bytes().starts_with(b"-")
        && !is_command(first)
        && looks_like_a_file(first)
    {
        return drop_in(&args);
    }
    let argv = std::iter::once(OsString::from(NAME)).chain(args);
    match Cli::try_parse_from(argv) {
        Ok(cli) => Ok(Invocation::Run(cli.command)),
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp => Ok(Invocation::Print(e.render().to_string())),
            // The program's version, whichever command asks.
            clap::error::ErrorKind::DisplayVersion => Ok(Invocation::Print(format!(
                "{NAME} {}\n",
                env!("CARGO_PKG_VERSION")
            ))),
            _ => {
                let text = e.render().to_string();
                let text = text.strip_prefix("error: ").unwrap_or(&text);
                Err(Error::Usage(text.trim_end().to_string()))
            }
        },
    }
}

/// Is `name` a subcommand?
fn is_command(name: &OsStr) -> bool {
    command().get_subcommands().any(|c| c.get_name() == name)
}

/// The names a drop-in form's first argument has: a module, an object or
/// a v7 symbol map, by its suffix.
const FILE_SUFFIXES: &[&[u8]] = &[b".ko", b".o", b".ko.xz", b".ko.zst", b".klp"];

/// Could `arg` be the first file of a drop-in form? It exists, or it looks
/// like a path (a `/`) or a module, an object or a symbols.klp
/// ([`FILE_SUFFIXES`]).
fn looks_like_a_file(arg: &OsStr) -> bool {
    let bytes = arg.as_encoded_bytes();
    Path::new(arg).exists()
        || bytes.contains(&b'/')
        || FILE_SUFFIXES.iter().any(|s| bytes.ends_with(s))
}

/// The `convert` command a drop-in form with options meant:
/// `klp-convert convert INPUT -o OUTPUT [--symbols SYMBOLS] OPTIONS`, the
/// files taken from their positions (the arguments as typed would not
/// parse: `convert m.ko out.ko` has one positional too many), each word
/// shell-quoted so that the line can be pasted.
fn convert_hint(args: &[OsString]) -> String {
    // convert's options that take a value, as separate words.
    const VALUED: &[&str] = &["-o", "--output", "--symbols", "--load-order"];
    let mut files = Vec::new();
    let mut output = None;
    let mut symbols = Vec::new();
    let mut options = Vec::new();
    let mut words = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(word) = words.next() {
        if !word.starts_with('-') {
            files.push(word);
            continue;
        }
        let (name, value) = match word.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_string(), Some(value.to_string()))
            }
            _ if word.starts_with("-o") && word.len() > 2 && !word.starts_with("--") => {
                ("-o".to_string(), Some(word[2..].to_string()))
            }
            _ => (word.clone(), None),
        };
        let value = if VALUED.contains(&name.as_str()) {
            value.or_else(|| words.next())
        } else {
            value
        };
        match (name.as_str(), value) {
            ("-o" | "--output", Some(v)) => output = Some(v),
            ("--symbols", Some(v)) => symbols.push(v),
            (_, Some(v)) => options.push(format!("{name}={v}")),
            (_, None) => options.push(name),
        }
    }
    // SYMBOLS INPUT OUTPUT, INPUT OUTPUT, or INPUT with -o.
    let mut files = files.into_iter();
    let (first, second, third) = (files.next(), files.next(), files.next());
    let (input, positional_output, map) = match (first, second, third) {
        (Some(s), Some(i), Some(o)) => (Some(i), Some(o), Some(s)),
        (Some(i), Some(o), None) if output.is_none() => (Some(i), Some(o), None),
        (Some(s), Some(i), None) => (Some(i), None, Some(s)),
        (i, _, _) => (i, None, None),
    };
    let output = output.or(positional_output);
    let mut line = vec!["klp-convert".to_string(), "convert".to_string()];
    line.push(shell_quote(input.as_deref().unwrap_or("INPUT")));
    line.push("-o".to_string());
    line.push(shell_quote(output.as_deref().unwrap_or("OUTPUT")));
    for s in map.iter().chain(&symbols) {
        line.push("--symbols".to_string());
        line.push(shell_quote(s));
    }
    line.extend(files.chain(options).map(|w| shell_quote(&w)));
    line.join(" ")
}

/// `word` as a POSIX shell reads it back: as it is when it holds only
/// characters no shell treats specially, else in single quotes.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=+,:@%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The drop-in forms: positional arguments only (`-h`/`--help` among them
/// is the help).
fn drop_in(args: &[OsString]) -> Result<Invocation, Error> {
    for a in args {
        let a = a.to_string_lossy();
        if a == "-h" || a == "--help" {
            return parse([a.as_ref()]);
        }
        if a.starts_with('-') {
            // `klp-convert x.ko -o y.ko`: options belong to a command.
            return Err(Error::usage(format!(
                "unknown option '{a}' in a drop-in form (INPUT OUTPUT, SYMBOLS INPUT OUTPUT); \
                 options belong to a command: {}",
                convert_hint(args)
            )));
        }
    }
    let (symbols, input, output) = match args {
        [input, output] => (None, input, output),
        [symbols, input, output] => (Some(PathBuf::from(symbols)), input, output),
        _ => return Err(Error::usage("expected INPUT OUTPUT, or a command")),
    };
    Ok(Invocation::Run(Command::Convert(ConvertArgs {
        input: PathBuf::from(input),
        output: Some(PathBuf::from(output)),
        in_place: false,
        quiet: false,
        maps: MapArgs {
            symbols: symbols.into_iter().collect(),
            load_order: LoadOrderArg::Both,
        },
    })))
}
