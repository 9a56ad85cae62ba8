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

/// Set for every run of the binary through these helpers: `convert`,
/// `check` and `build` then also read their maps whole and fail unless
/// every answer equals the one from the maps read for the modules' names
/// (`klp_convert::maps::Wanted`), so every module the suite converts or
/// checks proves that filter.
pub const PROVE_WANTED: &str = "KLP_CONVERT_PROVE_WANTED";

/// Run the klp-convert binary.
pub fn klp_convert(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klp-convert"))
        .env(PROVE_WANTED, "1")
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

/// A tool of the trixie chroot scripts/build-kernels makes for LoongArch
/// (`loongarch64-linux-gnu-gcc`, `-readelf`, ...): its wrapper, which runs
/// it in the chroot with the host's paths. Bookworm has no LoongArch cross
/// compiler. A missing chroot fails the test: scripts/test builds it first.
pub fn loongarch_tool(name: &str) -> String {
    let path = cache_dir()
        .join("xkernels/trixie/bin")
        .join(format!("loongarch64-linux-gnu-{name}"));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build-kernels loongarch64 (it makes the trixie chroot with the LoongArch cross compiler)",
        path.display()
    );
    path.display().to_string()
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

/// PATH for the commands that run `make` against `kbuild`: a kernel whose
/// kbuild runs in a chroot (Debian's 7.3, whose kbuild programs need glibc
/// 2.38: scripts/fetch-kernels; the loongarch64 kernel, whose cross
/// compiler is trixie's: scripts/build-kernels) has `bin/make` beside its
/// `build` or `linux`, put first; any other kbuild, the inherited PATH.
pub fn kbuild_path(kbuild: &Path) -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    match kbuild.parent().map(|k| k.join("bin")) {
        Some(bin) if bin.join("make").is_file() => {
            std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path)))
                .expect("PATH")
        }
        _ => path,
    }
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
    let path = kbuild_path(kbuild);
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_klp-convert"))
            .env(PROVE_WANTED, "1")
            .args(&args)
            .env("PATH", &path)
            .output()
            .expect("run klp-convert")
    };
    let r = run();
    if !stderr(&r).contains("symbol 'mcount'") {
        return r;
    }
    eprintln!("{}: built without -mfentry; building again", dir.display());
    let build = klp_convert::kbuild::Kbuild::new(kbuild.to_path_buf(), dir, Vec::new()).unwrap();
    let clean = build
        .make_command("clean")
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(clean.status.success(), "make clean in {}", dir.display());
    run()
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

/// `convert INPUT -o OUT` refuses (exit 1) in words containing `words`,
/// and writes nothing.
pub fn expect_convert_refused(input: &Path, out: &Path, words: &str) {
    let r = convert_o(input, out);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains(words), "{}", stderr(&r));
    assert!(!out.exists());
}

/// `bytes` as an xz stream, made as kbuild makes `.ko.xz` modules
/// (scripts/Makefile.modinst: `xz --check=crc32 --lzma2=dict=1MiB`).
pub fn xz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("xz")
        .args(["--check=crc32", "--lzma2=dict=1MiB", "--stdout"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run xz (xz-utils)");
    let mut stdin = child.stdin.take().expect("xz's stdin");
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("xz");
    writer.join().expect("xz writer").expect("write to xz");
    assert!(out.status.success(), "xz failed");
    out.stdout
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

/// Which field of the ELF header [`extended_numbering`] moves into section
/// 0's header.
#[derive(Clone, Copy)]
pub enum Extended {
    /// `e_shnum` 0, the count in section 0's `sh_size`.
    Count,
    /// `e_shstrndx` `SHN_XINDEX`, the index in section 0's `sh_link`.
    NameIndex,
}

/// The relocatable object `elf` with one header field in ELF's extended
/// section numbering (the form a file of 65,280 sections or more must
/// take), every section as it was: what the module loader reads as it
/// stands.
pub fn extended_numbering(elf: &[u8], field: Extended) -> Vec<u8> {
    let mut out = elf.to_vec();
    let is_64 = elf[4] == 2;
    let big = elf[5] == 2;
    let get = |at: usize, n: usize| -> u64 {
        let b = &elf[at..at + n];
        b.iter().enumerate().fold(0, |v, (i, &x)| {
            let shift = if big { 8 * (n - 1 - i) } else { 8 * i };
            v | u64::from(x) << shift
        })
    };
    let mut put = |at: usize, n: usize, v: u64| {
        for i in 0..n {
            let shift = if big { 8 * (n - 1 - i) } else { 8 * i };
            out[at + i] = (v >> shift) as u8;
        }
    };
    // e_shoff, e_shnum, e_shstrndx; sh_link and sh_size of a section header.
    let (shoff, shnum, shstrndx, sh_link, sh_size, size_len) = if is_64 {
        (get(40, 8) as usize, 60, 62, 40, 32, 8)
    } else {
        (get(32, 4) as usize, 48, 50, 24, 20, 4)
    };
    match field {
        Extended::Count => {
            put(shoff + sh_size, size_len, get(shnum, 2));
            put(shnum, 2, 0);
        }
        Extended::NameIndex => {
            put(shoff + sh_link, 4, get(shstrndx, 2));
            put(shstrndx, 2, 0xffff);
        }
    }
    out
}

/// The fenced code blocks of a Markdown text: (info string, lines).
pub fn code_blocks(text: &str) -> Vec<(String, Vec<String>)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, Vec<String>)> = None;
    for line in text.lines() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => open = Some((info.trim().to_string(), Vec::new())),
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some((_, lines)), None) => lines.push(line.to_string()),
            (None, None) => {}
        }
    }
    blocks
}

/// What [`readme_walk`] did.
pub struct Walk {
    /// The index of the walk's block among the README's code blocks.
    pub block: usize,
    /// `klp-convert build`'s standard error.
    pub build_stderr: String,
    /// `klp-convert check`'s standard output.
    pub check_stdout: String,
}

/// The README's five-minute walk, as the README writes it, in `dir`: the
/// block that writes a file with `cat > FILE <<'EOF'` (the source), its
/// `echo '...' > FILE` (the Kbuild), `/proc/kallsyms > FILE` replaced by a
/// copy of `kallsyms` (the kernel's -dbg System.map: tests/kernel_e2e.rs
/// proves it equal to the booted kernel's kallsyms), and its `klp-convert`
/// lines run in `dir`, `build` with `-C kbuild`. Each must succeed, and
/// `check` say `lp_cmdline.ko: ok`. Panics if the README has no such block
/// or the block lacks a step.
pub fn readme_walk(dir: &Path, kbuild: &Path, kallsyms: &Path) -> Walk {
    let text = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let blocks = code_blocks(&text);
    let (block, walk) = blocks
        .iter()
        .enumerate()
        .find(|(_, (_, lines))| {
            lines
                .iter()
                .any(|l| l.starts_with("cat > ") && l.contains("<<'EOF'"))
        })
        .map(|(i, (_, lines))| (i, lines))
        .expect("the README's walk: a block writing a file with cat <<'EOF'");
    let mut seen: std::collections::BTreeSet<String> = Default::default();
    let mut lines = walk.iter();
    let (mut build_stderr, mut check_stdout) = (String::new(), String::new());
    while let Some(line) = lines.next() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("cat > ") {
            let file = rest.split_whitespace().next().unwrap();
            let body: Vec<&str> = lines
                .by_ref()
                .take_while(|l| l.trim() != "EOF")
                .map(String::as_str)
                .collect();
            std::fs::write(dir.join(file), body.join("\n") + "\n").unwrap();
            seen.insert("source".into());
        } else if let Some(rest) = line.strip_prefix("echo '") {
            let (content, file) = rest.split_once("' > ").expect("echo 'TEXT' > FILE");
            std::fs::write(dir.join(file.trim()), format!("{content}\n")).unwrap();
            seen.insert("kbuild".into());
        } else if let Some((_, file)) = line.split_once("/proc/kallsyms > ") {
            std::fs::copy(kallsyms, dir.join(file.trim())).unwrap();
            seen.insert("kallsyms".into());
        } else if let Some(rest) = line.strip_prefix("klp-convert ") {
            let mut args: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
            let build = args[0] == "build";
            if build {
                args.extend(["-C".to_string(), kbuild.display().to_string()]);
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let run_here = || {
                Command::new(env!("CARGO_BIN_EXE_klp-convert"))
                    .env(PROVE_WANTED, "1")
                    .args(&argv)
                    .current_dir(dir)
                    .env("PATH", kbuild_path(kbuild))
                    .output()
                    .unwrap()
            };
            let mut r = run_here();
            if build && stderr(&r).contains("symbol 'mcount'") {
                // kbuild's -mfentry probe, seen failing under load (see
                // klp_convert_build): clean and build once more.
                let clean = Command::new("make")
                    .arg("-C")
                    .arg(kbuild)
                    .arg(format!("M={}", dir.display()))
                    .arg("clean")
                    .env("PATH", kbuild_path(kbuild))
                    .output()
                    .unwrap();
                assert!(clean.status.success());
                r = run_here();
            }
            let out = String::from_utf8_lossy(&r.stdout).into_owned();
            assert_eq!(r.status.code(), Some(0), "{line}\n{out}{}", stderr(&r));
            if build {
                build_stderr = stderr(&r);
            } else if args[0] == "check" {
                assert!(out.starts_with("lp_cmdline.ko: ok\n"), "{line}\n{out}");
                check_stdout = out;
            }
            seen.insert(args[0].clone());
        }
    }
    for step in ["source", "kbuild", "kallsyms", "build", "check"] {
        assert!(
            seen.contains(step),
            "the README's walk has no {step} step: {seen:?}"
        );
    }
    Walk {
        block,
        build_stderr,
        check_stdout,
    }
}

/// The README's commands that load the walk's module, see it work and
/// remove it: the first code block after the walk's (`block`) with an
/// `insmod`. Each as (command, its `# comment`), `sudo ` taken out (the
/// guest runs as root).
pub fn readme_load_commands(block: usize) -> Vec<(String, Option<String>)> {
    let text = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let blocks = code_blocks(&text);
    let (_, lines) = blocks[block + 1..]
        .iter()
        .find(|(_, lines)| lines.iter().any(|l| l.contains("insmod ")))
        .expect("the README loads the walk's module: a block with insmod after the walk's");
    lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (cmd, comment) = match l.split_once(" #") {
                Some((c, m)) => (c, Some(m.trim().to_string())),
                None => (l.as_str(), None),
            };
            (cmd.trim().replace("sudo ", ""), comment)
        })
        .collect()
}

/// Make `dir` a tree that `patch` (a kbuild patch) applies to: for each
/// file it changes, the lines its hunks expect (context and removed lines,
/// the hunks in order), so `kbuild-patch -C` finds it by its dry run
/// without a kernel tree.
pub fn tree_for_patch(dir: &Path, patch: &str) {
    let mut file: Option<PathBuf> = None;
    let mut text = String::new();
    let flush = |file: &Option<PathBuf>, text: &mut String| {
        if let Some(f) = file {
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, std::mem::take(text)).unwrap();
        }
    };
    for line in patch.lines() {
        if let Some(name) = line.strip_prefix("--- a/") {
            flush(&file, &mut text);
            file = Some(dir.join(name));
        } else if line.starts_with("+++ ") || line.starts_with("@@") || line.starts_with("diff ") {
        } else if file.is_some() {
            if let Some(l) = line.strip_prefix(' ').or_else(|| line.strip_prefix('-')) {
                text.push_str(l);
                text.push('\n');
            } else if line.is_empty() {
                text.push('\n');
            }
        }
    }
    flush(&file, &mut text);
}
