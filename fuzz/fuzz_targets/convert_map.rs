//! Any bytes as a module, checked and converted against a small fixed map
//! (vmlinux symbols with a duplicate, a module, exports). What convert
//! accepts, check accepts with the same map, and converting it again
//! changes nothing. Allocation stays within a bound linear in the input.
#![no_main]

mod common;

use std::sync::OnceLock;

use klp_convert::maps::SymbolMap;
use klp_convert::{check, convert};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

fn map() -> &'static SymbolMap {
    static MAP: OnceLock<SymbolMap> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut m = SymbolMap::new();
        m.add_kallsyms(
            "ffffffff81000000 T _text\nffffffff81000100 t dup\nffffffff81000200 t dup\n\
             ffffffff81000300 D saved_command_line\nffffffff81000400 T printk\n\
             ffffffff82000000 B _end\n0000000000000010 t helper\t[some_mod]\n",
        )
        .expect("the fixed kallsyms parses");
        m.add_symvers("0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n")
            .expect("the fixed Module.symvers parses");
        m
    })
}

fuzz_target!(|data: &[u8]| {
    let map = map();
    let done = common::bounded(data.len(), || {
        let _ = check::check_bytes("fuzz.ko", data, Some("6.1.0"), Some(map));
        convert::convert_bytes_with(data, Some(map))
    });
    if let Ok(done) = done {
        let report = check::check_bytes("fuzz.ko", &done.bytes, Some("6.1.0"), Some(map));
        let errors: Vec<_> = report.findings.iter().filter(|f| f.is_error()).collect();
        assert!(
            errors.is_empty(),
            "convert wrote a module check refuses: {errors:?}"
        );
        let again = convert::convert_bytes_with(&done.bytes, Some(map))
            .expect("a converted module is refused");
        assert!(!again.changed, "a second conversion changed the module");
    }
});
