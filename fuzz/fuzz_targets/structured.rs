//! Structure-aware: livepatch modules and the maps of their target kernel
//! built from `arbitrary` input (see `gen/mod.rs` for what is generated
//! and `gen::check_case` for the invariants: no panic, names kept as
//! bytes, what convert writes check passes, convert and check refuse the
//! same modules).
//!
//! `KLP_FUZZ_DUMP=DIR` writes each case's files (`lp.ko`, `target.ko`,
//! `System.map`, `symbols.klp`, `Module.symvers`, `config`) into DIR, to
//! replay a finding with the command line.
#![no_main]

mod gen;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(dir) = std::env::var_os("KLP_FUZZ_DUMP") {
        let mut u = arbitrary::Unstructured::new(data);
        if let Ok(case) = gen::generate(&mut u) {
            case.dump(std::path::Path::new(&dir));
        }
    }
    gen::run(data);
});
