//! Helpers shared by the integration tests: compile C with a real compiler,
//! run the built `klp-convert`, read ELF with the library.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty scratch directory under target/ for one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = root().join("target").join("test-scratch").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Compile `source` (C) into `out` with `compiler` and extra flags; panics
/// with the compiler's message on failure (a missing compiler is a failure).
pub fn compile(compiler: &str, flags: &[&str], source: &str, out: &Path) {
    let src = out.with_extension("c");
    std::fs::write(&src, source).expect("write C source");
    let include = root().join("include");
    let result = Command::new(compiler)
        .args([
            "-O2",
            "-c",
            "-fno-pic",
            "-ffunction-sections",
            "-fdata-sections",
        ])
        .args(flags)
        .arg("-I")
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e} (run scripts/setup-deps)"));
    assert!(
        result.status.success(),
        "{compiler} failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
}

/// Compile for the host (x86_64, kernel code model).
pub fn compile_x86_64(source: &str, out: &Path) {
    compile("gcc", &["-mcmodel=kernel", "-mno-red-zone"], source, out)
}

/// Run the klp-convert binary.
pub fn klp_convert(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klp-convert"))
        .args(args)
        .output()
        .expect("run klp-convert")
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `.modinfo` line that marks a livepatch module.
pub const LIVEPATCH_MODINFO: &str = "static const char __modinfo_lp[] \
    __attribute__((section(\".modinfo\"), used, aligned(1))) = \"livepatch=Y\";\n";

/// The annotation header.
pub const HEADER: &str = "#include \"klp_convert.h\"\n";
