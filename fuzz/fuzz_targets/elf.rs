//! Any bytes as a module: read, show, check, convert (through files, as the
//! command line does). What convert accepts it writes, the result passes
//! check's structural rules, and converting the result again changes
//! nothing; what it refuses leaves no output file and the input as it was.
//! No input makes it allocate beyond a bound linear in the input.
#![no_main]

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use klp_convert::elf::Elf;
use klp_convert::{check, convert, rules, show};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

/// A private scratch directory, in memory where the system has one.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("klp-fuzz-elf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    common::bounded(data.len(), || {
        if let Ok(elf) = Elf::parse(data) {
            let _ = show::report("fuzz.ko", &elf).to_text();
        }
        let _ = check::check_bytes("fuzz.ko", data, None, None);
    });
    let input = scratch().join("in.ko");
    let output = scratch().join("out.ko");
    std::fs::write(&input, data).expect("write the input");
    let _ = std::fs::remove_file(&output);
    let done = common::bounded(data.len(), || convert::convert_file(&input, &output, None));
    assert_eq!(
        std::fs::read(&input).expect("read the input"),
        data,
        "the input was modified"
    );
    let Ok(done) = done else {
        assert!(!output.exists(), "a refused conversion left an output file");
        return;
    };
    let written = std::fs::read(&output).expect("an accepted conversion wrote no file");
    // What the file was written in pieces, the same conversion makes in
    // memory.
    let plain = klp_convert::module_file::decompress(&input, data.to_vec())
        .expect("convert_file converted a file that does not decompress");
    let direct = common::bounded(data.len(), || convert::convert_bytes(&plain))
        .expect("convert_file converted what convert_bytes refuses");
    assert_eq!(written, direct.bytes);
    assert_eq!(done.changed, direct.changed);
    let out = Elf::parse(&written).expect("convert wrote an ELF it cannot read");
    let target = rules::Target::of(&out, None);
    let errors: Vec<_> = rules::contract::module(&out, &target)
        .into_iter()
        .filter(|f| f.is_error())
        .collect();
    assert!(
        errors.is_empty(),
        "convert wrote a module check refuses: {errors:?}"
    );
    let again = convert::convert_bytes(&written).expect("a converted module is refused");
    assert!(!again.changed, "a second conversion changed the module");
    assert_eq!(again.bytes, written);
});
