//! Helpers shared by the benchmarks (`scale.rs`, `floor.rs`).

use std::path::Path;
use std::process::Command;

/// Assemble `source` (GNU as syntax) into `dir/name.o` with the host gcc; its bytes.
pub fn assemble_source(source: &str, name: &str, dir: &Path) -> Vec<u8> {
    let src = dir.join(format!("{name}.s"));
    let obj = dir.join(format!("{name}.o"));
    std::fs::write(&src, source).expect("write assembly");
    let st = Command::new("gcc")
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .expect("run gcc");
    assert!(st.success(), "assembling {}", src.display());
    std::fs::read(&obj).expect("read object")
}
