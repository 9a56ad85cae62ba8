//! Any bytes as a module: read, show, check, convert. What convert accepts
//! it writes, the result passes check's structural rules, and converting
//! the result again changes nothing.
#![no_main]

use klp_convert::elf::Elf;
use klp_convert::{check, convert, rules, show};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(elf) = Elf::parse(data) {
        let _ = show::report("fuzz.ko", &elf).to_text();
    }
    let _ = check::check_bytes("fuzz.ko", data, None, None);
    if let Ok(done) = convert::convert_bytes(data) {
        let out = Elf::parse(&done.bytes).expect("convert wrote an ELF it cannot read");
        let target = rules::Target::of(&out, None);
        let errors: Vec<_> = rules::contract::module(&out, &target)
            .into_iter()
            .filter(|f| f.is_error())
            .collect();
        assert!(errors.is_empty(), "convert wrote a module check refuses: {errors:?}");
        let again = convert::convert_bytes(&done.bytes).expect("a converted module is refused");
        assert!(!again.changed, "a second conversion changed the module");
        assert_eq!(again.bytes, done.bytes);
    }
});
