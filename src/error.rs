//! The command line's errors, and the one place that maps them to exit
//! statuses ([`Error::exit_code`]).

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::elf::read::ReadError;
use crate::kbuild;
use crate::maps::MapError;
use crate::module_file;

/// Why a command failed. [`Error::exit_code`] is the one place that maps a
/// failure to the exit status; `Display` is the message, without the
/// `klp-convert: ` prefix ([`crate::app::report`] adds it). Errors of the layers below
/// are kept whole, as the [`std::error::Error::source`].
#[derive(Debug)]
pub enum Error {
    /// The command line is wrong (exit 2): the message, with a hint.
    Usage(String),
    /// Reading or writing a file failed (exit 2).
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Reading a module file or writing an output failed (exit 2).
    ModuleFile(module_file::Error),
    /// A symbol map could not be read (exit 2).
    Map(MapError),
    /// Writing standard output failed, other than a closed pipe (exit 2).
    Stdout(io::Error),
    /// A JSON report could not be produced (exit 2).
    Json(serde_json::Error),
    /// A kbuild step failed: exit 2 for the setup (no kbuild, no make),
    /// 1 for the build itself.
    Kbuild(kbuild::Error),
    /// Some modules given to `check` could not be read (exit 2); each was
    /// reported as it was met.
    Unreadable(usize),
    /// Checking this many modules hit an internal error, a bug (exit 1);
    /// each was reported as it was met, and the others were checked.
    InternalErrors(usize),
    /// `show` listed this many errors (exit 1); the report said which.
    ShowFound(usize),
    /// The input is not a readable ELF object (exit 1).
    Malformed {
        /// The file.
        file: PathBuf,
        /// What the ELF reader said.
        source: ReadError,
    },
    /// A module was refused; its problems were reported (exit 1).
    Refused {
        /// The module.
        file: String,
        /// How many problems.
        problems: usize,
    },
    /// The converted module failed its own verification, a bug (exit 1).
    Internal {
        /// The module.
        file: String,
    },
    /// `build` left livepatch modules unconverted (exit 1).
    BuildRefused(Vec<String>),
    /// `build` made modules with undefined symbols that kbuild's modpost
    /// would have refused (exit 1); each symbol was reported.
    BuildUndefined {
        /// The modules.
        modules: Vec<String>,
        /// The kernel's `Module.symvers`, when it is missing.
        missing: Option<PathBuf>,
    },
    /// `check` found errors in this many modules (exit 1); the report said so.
    CheckFound(usize),
    /// Standard output was closed by its reader (`| head`): exit quietly
    /// with 141, what a shell reports for a tool killed by SIGPIPE.
    BrokenPipe,
}

impl Error {
    /// A usage error with the hint to `--help`.
    pub fn usage(message: impl fmt::Display) -> Error {
        Error::Usage(format!("{message}\nTry 'klp-convert --help'."))
    }

    /// The process exit status: 0 is success, 1 a module refused, a check
    /// or a show that found an error, a failed build, an unreadable ELF
    /// object or an internal error, 2 a usage or I/O error, 141 a closed
    /// standard output.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_)
            | Error::Io { .. }
            | Error::ModuleFile(_)
            | Error::Map(_)
            | Error::Stdout(_)
            | Error::Json(_)
            | Error::Unreadable(_) => 2,
            Error::Kbuild(e) if e.is_setup() => 2,
            Error::Kbuild(_)
            | Error::Malformed { .. }
            | Error::Refused { .. }
            | Error::Internal { .. }
            | Error::BuildRefused(_)
            | Error::InternalErrors(_)
            | Error::ShowFound(_)
            | Error::BuildUndefined { .. }
            | Error::CheckFound(_) => 1,
            Error::BrokenPipe => 141,
        }
    }

    /// Has everything been said already (or is there nobody to say it to)?
    pub fn is_quiet(&self) -> bool {
        matches!(
            self,
            Error::Unreadable(_)
                | Error::InternalErrors(_)
                | Error::ShowFound(_)
                | Error::CheckFound(_)
                | Error::BrokenPipe
        )
    }

    /// A failed write to standard output: a closed pipe, or an I/O error.
    pub fn stdout(e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Error::BrokenPipe
        } else {
            Error::Stdout(e)
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => f.write_str(m),
            Error::Io { path, source } => write!(f, "error: {}: {source}", path.display()),
            Error::ModuleFile(e) => write!(f, "error: {e}"),
            Error::Map(e) => write!(f, "error: {e}"),
            Error::Stdout(e) => write!(f, "error: standard output: {e}"),
            Error::Json(e) => write!(f, "error: JSON: {e}"),
            Error::Kbuild(e) => write!(f, "error: {e}"),
            Error::Malformed { file, source } => write!(f, "error: {}: {source}", file.display()),
            Error::Unreadable(n) => write!(f, "error: {n} module{} could not be read", s(*n)),
            Error::Refused { file, problems } => write!(
                f,
                "{file}: refused ({problems} problem{}); nothing written",
                s(*problems)
            ),
            Error::Internal { file } => write!(
                f,
                "{file}: internal error: the converted module failed verification; nothing written. Please report this with the input module."
            ),
            Error::BuildRefused(modules) => write!(
                f,
                "build: {} livepatch module{} refused, left unconverted (the kernel would refuse {}): {}",
                modules.len(),
                s(modules.len()),
                if modules.len() == 1 { "it" } else { "them" },
                modules.join(", ")
            ),
            Error::BuildUndefined { modules, missing } => {
                write!(
                    f,
                    "error: build: {} module{} with undefined symbols, which kbuild would not have built: {}",
                    modules.len(),
                    s(modules.len()),
                    modules.join(", ")
                )?;
                match missing {
                    Some(m) => write!(f, " ({} is missing: kbuild knows no export of the kernel)", m.display()),
                    None => Ok(()),
                }
            }
            Error::CheckFound(n) => write!(f, "check: {n} module{} with errors", s(*n)),
            Error::ShowFound(n) => write!(f, "show: {n} error{} listed", s(*n)),
            Error::InternalErrors(n) => write!(
                f,
                "check: {n} module{} not checked (internal error)",
                s(*n)
            ),
            Error::BrokenPipe => f.write_str("standard output closed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Stdout(source) => Some(source),
            Error::ModuleFile(e) => Some(e),
            Error::Map(e) => Some(e),
            Error::Json(e) => Some(e),
            Error::Kbuild(e) => Some(e),
            Error::Malformed { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `s` for plurals.
fn s(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
