//! The `klp-convert` command line: parse ([`klp_convert::cli`]), run
//! ([`klp_convert::app`]), say what failed once and exit with its status.

use std::io::{self, BufWriter};
use std::process::ExitCode;

use klp_convert::{app, cli};

fn main() -> ExitCode {
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
