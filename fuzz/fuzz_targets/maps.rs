//! Any bytes through each map reader (the first byte picks it): kallsyms /
//! System.map, symbols.klp, Module.symvers, JSON (as lossy text: JSON is
//! UTF-8), a kernel .config. The text formats read bytes, so names in any
//! encoding reach the map. A map that reads writes a symbols.klp and a JSON
//! map that read back the same.
//! Allocation stays within a bound linear in the input.
#![no_main]

mod common;

use klp_convert::maps::SymbolMap;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let mut m = SymbolMap::new();
    let read = common::bounded(data.len(), || match which % 5 {
        0 => m.add_kallsyms(rest),
        1 => m.add_symbols_klp(rest),
        2 => m.add_symvers(rest),
        3 => m.add_json(&String::from_utf8_lossy(rest)),
        _ => {
            m.add_kernel_config(rest);
            Ok(())
        }
    });
    if read.is_ok() {
        let json = m.to_json();
        let mut back = SymbolMap::new();
        back.add_json(&json)
            .expect("a JSON map this tool wrote does not read back");
        assert_eq!(back.to_json(), json, "the JSON map does not round-trip");
        let _ = m.to_symbols_klp();
    }
});
