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

/// One `klp_func`: (old_name, old_sympos, new_func).
pub type PatchedFn<'a> = (&'a str, u64, &'a str);

/// C for a static `struct klp_patch`, as a livepatch module written in C
/// has it, without kernel headers: the kernel's 64-bit layouts (external
/// fields, then padding for the internal ones: `klp_func` 152 bytes,
/// `klp_object` 168). `objects`: (object name or `None` for vmlinux,
/// [(old_name, old_sympos, new_func)]).
/// The module structure section kbuild links into a module: with it, an
/// object counts as a linked module, not as one of a module's objects.
#[allow(dead_code)]
pub const THIS_MODULE: &str =
    "char __this_module[64] __attribute__((section(\".gnu.linkonce.this_module\")));\n";

#[allow(dead_code)]
pub fn klp_patch_c(objects: &[(Option<&str>, &[PatchedFn])]) -> String {
    let mut c = String::from(
        "struct klp_func { const char *old_name; void *new_func; unsigned long old_sympos; char internal[128]; };\n\
         struct klp_object { const char *name; struct klp_func *funcs; void *callbacks[4]; _Bool post_unpatch_enabled; char internal[112]; };\n\
         struct klp_patch { void *mod; struct klp_object *objs; void *states; _Bool replace; char internal[200]; };\n\
         char __this_module[64] __attribute__((section(\".gnu.linkonce.this_module\")));\n",
    );
    let mut objs = String::new();
    for (i, (name, funcs)) in objects.iter().enumerate() {
        c.push_str(&format!("static struct klp_func funcs_{i}[] = {{\n"));
        for (old, pos, new) in funcs.iter() {
            c.push_str(&format!(
                "  {{ .old_name = \"{old}\", .new_func = {new}, .old_sympos = {pos} }},\n"
            ));
        }
        c.push_str("  { }\n};\n");
        let name = match name {
            Some(n) => format!("\"{n}\""),
            None => "0".into(),
        };
        objs.push_str(&format!("  {{ .name = {name}, .funcs = funcs_{i} }},\n"));
    }
    c.push_str(&format!(
        "static struct klp_object objs[] = {{\n{objs}  {{ }}\n}};\n\
         struct klp_patch patch = {{ .mod = __this_module, .objs = objs }};\n"
    ));
    c
}

/// `klp-convert convert INPUT -o OUTPUT`.
#[allow(dead_code)]
pub fn convert_o(input: &Path, output: &Path) -> Output {
    klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ])
}

/// The annotation header.
pub const HEADER: &str = "#include \"klp_convert.h\"\n";

/// The download cache (`$KLP_CACHE`, default `~/.cache/klp-convert`).
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("KLP_CACHE") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/klp-convert")
        }
    }
}

/// The cached Debian kernel of a series ("6.1", "6.12"), fetched on first use
/// by `scripts/fetch-kernels`. Missing pieces fail the test: never skipped.
pub fn kernel_dir(series: &str) -> PathBuf {
    static FETCHED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let fetched = FETCHED.get_or_init(|| {
        let out = Command::new("bash")
            .arg(root().join("scripts/fetch-kernels"))
            .output()
            .map_err(|e| format!("cannot run scripts/fetch-kernels: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "scripts/fetch-kernels failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = fetched {
        panic!("{e}");
    }
    let dir = cache_dir().join("kernels").join(series);
    assert!(
        dir.join("release").is_file(),
        "{} is incomplete after scripts/fetch-kernels",
        dir.display()
    );
    dir
}

/// Every file below `dir` whose name ends in one of `suffixes`, sorted.
pub fn files_below(dir: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                let name = p.to_string_lossy();
                if suffixes.iter().any(|s| name.ends_with(s)) {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

/// Name → addresses in kernel order (so positions), for one object of a map.
pub fn addresses_by_name(
    map: &klp_convert::maps::SymbolMap,
    obj: &str,
) -> std::collections::BTreeMap<String, Vec<u64>> {
    let mut out: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for s in map.symbols(obj) {
        out.entry(String::from_utf8_lossy(s.name).into_owned())
            .or_default()
            .push(s.addr.expect("a map with addresses"));
    }
    out
}

/// `klp-convert build DIR -C KBUILD maps... [-- make_args]`. Seen under load:
/// kbuild's `cc-option -mfentry` probe fails and the module calls mcount,
/// which the build then rightly refuses. That is kbuild's flake, not the
/// tool's: clean (kbuild's own `make` line) and build once more.
pub fn klp_convert_build(
    kbuild: &Path,
    dir: &Path,
    maps: &[PathBuf],
    make_args: &[String],
) -> Output {
    let mut args = vec![
        "build".to_string(),
        dir.display().to_string(),
        "-C".into(),
        kbuild.display().to_string(),
    ];
    for m in maps {
        args.push("--symbols".into());
        args.push(m.display().to_string());
    }
    if !make_args.is_empty() {
        args.push("--".into());
        args.extend(make_args.iter().cloned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = klp_convert(&args);
    if !stderr(&r).contains("symbol 'mcount'") {
        return r;
    }
    eprintln!("{}: built without -mfentry; building again", dir.display());
    let build = klp_convert::kbuild::Kbuild::new(kbuild.to_path_buf(), dir, Vec::new()).unwrap();
    let clean = build.make_command("clean").output().unwrap();
    assert!(clean.status.success(), "make clean in {}", dir.display());
    klp_convert(&args)
}

/// Convert `input` into `out` with the map `map` (asserting that it
/// converts), then `check` the result with the same map; `check`'s output.
pub fn convert_then_check(input: &Path, out: &Path, map: &Path) -> Output {
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--symbols",
        map.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}: {}", input.display(), stderr(&r));
    klp_convert(&[
        "check",
        out.to_str().unwrap(),
        "--symbols",
        map.to_str().unwrap(),
    ])
}

/// Convert `input` into `out`, asserting that it converts.
pub fn convert_ok(input: &Path, out: &Path) {
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}: {}", input.display(), stderr(&r));
}

/// `bytes` as an xz stream (as `.ko.xz` modules are shipped).
pub fn xz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut out = Vec::new();
    xz2::read::XzEncoder::new(bytes, 6)
        .read_to_end(&mut out)
        .expect("xz");
    out
}

/// `bytes` as one zstd frame of raw (stored) blocks, as `.ko.zst` modules
/// are shipped: the format's simplest valid form, no encoder needed.
pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 1 << 17;
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd];
    // Frame header: single segment, a 4-byte content size.
    out.push(0b1010_0000);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    let mut chunks: Vec<&[u8]> = bytes.chunks(BLOCK).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    for (i, c) in chunks.iter().enumerate() {
        // Block header: last flag, type 0 (raw), size.
        let header = (c.len() as u32) << 3 | u32::from(i == last);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(c);
    }
    out
}
