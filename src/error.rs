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
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is wrong (exit 2): the message, with a hint.
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a file failed (exit 2).
    #[error("error: {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Reading a module file or writing an output failed (exit 2).
    #[error("error: {0}")]
    ModuleFile(#[source] module_file::Error),
    /// A symbol map could not be read (exit 2).
    #[error("error: {0}")]
    Map(#[source] MapError),
    /// Writing standard output failed, other than a closed pipe (exit 2).
    #[error("error: standard output: {0}")]
    Stdout(#[source] io::Error),
    /// A JSON report could not be produced (exit 2).
    #[error("error: JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A kbuild step failed: exit 2 for the setup (no kbuild, no make),
    /// 1 for the build itself.
    #[error("error: {0}")]
    Kbuild(#[source] kbuild::Error),
    /// Some modules given to `check` could not be read (exit 2); each was
    /// reported as it was met.
    #[error("error: {} module{} could not be read", .0, s(*.0))]
    Unreadable(usize),
    /// Checking this many modules hit an internal error, a bug (exit 1);
    /// each was reported as it was met, and the others were checked.
    #[error("check: {} module{} not checked (internal error)", .0, s(*.0))]
    InternalErrors(usize),
    /// `show` listed this many errors (exit 1); the report said which.
    #[error("show: {} error{} listed", .0, s(*.0))]
    ShowFound(usize),
    /// The input is not a readable ELF object (exit 1).
    #[error("error: {}: {source}", file.display())]
    Malformed {
        /// The file.
        file: PathBuf,
        /// What the ELF reader said.
        source: ReadError,
    },
    /// A module was refused; its problems were reported (exit 1).
    #[error("{file}: refused ({problems} problem{}); nothing written", s(*problems))]
    Refused {
        /// The module.
        file: String,
        /// How many problems.
        problems: usize,
    },
    /// The converted module failed its own verification, a bug (exit 1).
    #[error(
        "{file}: internal error: the converted module failed verification; nothing written. Please report this with the input module."
    )]
    Internal {
        /// The module.
        file: String,
    },
    /// Converting a module failed in a way this command line does not know:
    /// a `convert::Error` variant added to the library after it (exit 1).
    /// Its message is the library's; nothing is claimed about the cause.
    #[error("error: {file}: {message}; nothing written")]
    ConvertFailed {
        /// The module.
        file: String,
        /// What the library said.
        message: String,
    },
    /// `build` left livepatch modules unconverted (exit 1).
    #[error(
        "build: {} livepatch module{} refused, left unconverted (the kernel would refuse {}): {}",
        .0.len(),
        s(.0.len()),
        them(.0.len()),
        .0.join(", ")
    )]
    BuildRefused(Vec<String>),
    /// `build` made modules with undefined symbols that kbuild's modpost
    /// would have refused (exit 1); each symbol was reported.
    #[error(
        "error: build: {} module{} with undefined symbols, which kbuild would not have built: {}{}",
        modules.len(),
        s(modules.len()),
        modules.join(", "),
        missing_symvers(missing)
    )]
    BuildUndefined {
        /// The modules.
        modules: Vec<String>,
        /// The kernel's `Module.symvers`, when it is missing.
        missing: Option<PathBuf>,
    },
    /// `check` found errors in this many modules (exit 1); the report said so.
    #[error("check: {} module{} with errors", .0, s(*.0))]
    CheckFound(usize),
    /// Standard output was closed by its reader (`| head`): exit quietly
    /// with 141, what a shell reports for a tool killed by SIGPIPE.
    #[error("standard output closed")]
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
            | Error::ConvertFailed { .. }
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

/// The end of [`Error::BuildUndefined`]'s message: why modpost had no export.
fn missing_symvers(missing: &Option<PathBuf>) -> String {
    match missing {
        Some(m) => format!(
            " ({} is missing: kbuild knows no export of the kernel)",
            m.display()
        ),
        None => String::new(),
    }
}

/// `it` or `them`.
fn them(n: usize) -> &'static str {
    if n == 1 {
        "it"
    } else {
        "them"
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
