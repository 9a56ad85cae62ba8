//! The `klp-convert` command line: parse ([`cli`]), run ([`app`]), say
//! what failed once and exit with its status ([`error`]). The command line
//! is the binary's; the library (`klp_convert`) does the work.

mod app;
mod cli;
mod error;

use std::io::{self, BufWriter};
use std::process::ExitCode;

// The library's modules, by the names the command line's modules use
// (`crate::maps`, `crate::convert`, ...).
use klp_convert::{check, convert, elf, finding, kbuild, maps, module_file, names, rules, show};

/// Large blocks in huge pages: far fewer page faults for a large
/// module's vectors ([`klp_convert::HugeBlocks`]).
#[global_allocator]
static ALLOCATOR: klp_convert::HugeBlocks = klp_convert::HugeBlocks;

/// A panic is a bug, reported after Rust's own message and exiting 1 as
/// the help says of an internal error (not Rust's 101).
fn main() -> ExitCode {
    match std::panic::catch_unwind(run) {
        Ok(code) => code,
        Err(_) => {
            eprintln!("klp-convert: internal error (a bug, the panic above): please report it");
            ExitCode::from(1)
        }
    }
}

/// Parse, run, report.
fn run() -> ExitCode {
    let mut out = BufWriter::new(io::stdout().lock());
    let mut err = io::stderr().lock();
    let result = cli::parse(std::env::args_os().skip(1))
        .and_then(|invocation| app::run(invocation, &mut out, &mut err));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            app::report(&e, &mut err);
            ExitCode::from(e.exit_code())
        }
    }
}
