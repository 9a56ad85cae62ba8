//! The command line itself: documentation generated from its one
//! definition, a closed standard output, and symbol maps applied in one
//! order whatever the order of the flags.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

#[test]
fn man_pages_and_completions_come_from_the_definition() {
    let commands = [
        "convert",
        "show",
        "check",
        "symbols",
        "build",
        "kbuild-patch",
        "generate",
    ];

    // The main page on standard output names every command.
    let r = klp_convert(&["generate", "man"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let page = String::from_utf8_lossy(&r.stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    for c in commands {
        let roff = c.replace('-', "\\-");
        assert!(page.contains(&roff), "man page lacks {c}:\n{page}");
    }

    // Into a directory: the main page and one a command.
    let dir = scratch("cli_man");
    let r = klp_convert(&["generate", "man", "-o", dir.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(dir.join("klp-convert.1").is_file());
    for c in commands {
        let file = dir.join(format!("klp-convert-{c}.1"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        assert!(text.contains(".TH"), "{file:?}");
    }
    let check = std::fs::read_to_string(dir.join("klp-convert-check.1")).unwrap();
    assert!(check.contains("kernel\\-release"), "{check}");

    let r = klp_convert(&["generate", "completions", "bash"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let bash = String::from_utf8_lossy(&r.stdout);
    assert!(bash.contains("--symbols"), "{bash}");
    assert!(bash.contains("--kernel-release"), "{bash}");
    for shell in ["zsh", "fish"] {
        let r = klp_convert(&["generate", "completions", shell]);
        assert!(r.status.success(), "{shell}: {}", stderr(&r));
        assert!(
            String::from_utf8_lossy(&r.stdout).contains("symbols"),
            "{shell}"
        );
    }
    assert_eq!(
        klp_convert(&["generate", "completions", "nosuchshell"])
            .status
            .code(),
        Some(2)
    );
}

/// `klp-convert show big.ko | head -1`: the reader goes away after one
/// line; the writer ends quietly with 141, as if SIGPIPE had killed it.
#[test]
fn closed_stdout_ends_quietly_with_141() {
    let dir = scratch("cli_broken_pipe");
    let obj = dir.join("big.o");
    // Enough annotations for reports far larger than a pipe's buffer.
    let n = 2000;
    let mut source = format!("{HEADER}{LIVEPATCH_MODINFO}");
    for i in 0..n {
        source += &format!("extern int v{i} KLP_RELOC_SYMBOL(vmlinux, vmlinux, v{i});\n");
    }
    source += "int f(void) { return 0";
    for i in 0..n {
        source += &format!(" + v{i}");
    }
    source += "; }\n";
    compile_x86_64(&source, &obj);
    let obj = obj.to_str().unwrap();

    for args in [
        &["show", "--format", "json", obj][..],
        &["show", obj],
        &["check", obj],
        &["check", "--format=json", obj],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_klp-convert"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run klp-convert");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("read one line");
        assert!(!first.is_empty(), "{args:?}");
        // The reader (and with it the pipe) is gone here.
        let r = child.wait_with_output().expect("wait for klp-convert");
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(141), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

/// A module target with a static variable and a static function both
/// called `twin`: without `CONFIG_KALLSYMS_ALL` only the function is in the
/// loader's kallsyms, so `twin` at position 0 is unique. `check` reads the
/// config first wherever `--symbols config` stands, as `convert` does.
#[test]
fn check_applies_the_config_before_the_modules() {
    let dir = scratch("cli_map_order");
    let target = dir.join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(
        target.join("a.c"),
        "static int twin __attribute__((used)) = 1;\n\
         static const char modinfo[] __attribute__((section(\".modinfo\"), used)) = \"name=twin_mod\";\n",
    )
    .unwrap();
    std::fs::write(
        target.join("b.c"),
        "static int __attribute__((noinline, used)) twin(void) { return 2; }\n",
    )
    .unwrap();
    for cmd in ["gcc -O1 -c a.c b.c", "ld -r -o twin_mod.ko a.o b.o"] {
        let status = Command::new("sh")
            .current_dir(&target)
            .args(["-c", cmd])
            .status()
            .expect("run sh");
        assert!(status.success(), "{cmd}");
    }
    let ko = target.join("twin_mod.ko");
    let config = dir.join("config-text");
    std::fs::write(
        &config,
        "#\n# Linux/x86 Kernel Configuration\n#\nCONFIG_KALLSYMS=y\n# CONFIG_KALLSYMS_ALL is not set\n",
    )
    .unwrap();

    let lp = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int twin(void) KLP_RELOC_SYMBOL(twin_mod, twin_mod, twin);\n\
             int f(void) {{ return twin(); }}\n"
        ),
        &lp,
    );
    let out = dir.join("out.o");
    let r = klp_convert(&["convert", lp.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let (out, ko, config) = (
        out.to_str().unwrap(),
        ko.to_str().unwrap(),
        config.to_str().unwrap(),
    );

    // Without the config both twins count: position 0 is ambiguous.
    let r = klp_convert(&["check", out, "--symbols", ko]);
    assert_eq!(
        r.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
    // With it, in either order of the flags, only the function counts
    // once twin_mod is loaded: position 0 holds with twin_mod loaded first.
    for args in [
        ["check", out, "--symbols", ko, "--symbols", config],
        ["check", out, "--symbols", config, "--symbols", ko],
    ] {
        let args = [&args[..], &["--load-order", "target-first"]].concat();
        let r = klp_convert(&args);
        assert_eq!(
            r.status.code(),
            Some(0),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&r.stdout),
            stderr(&r)
        );
    }
    // While twin_mod is coming (the patch loaded first), its full symbol
    // table counts, the data twin too: position 0 is ambiguous then.
    let r = klp_convert(&[
        "check",
        out,
        "--symbols",
        config,
        "--symbols",
        ko,
        "--format",
        "json",
    ]);
    assert_eq!(r.status.code(), Some(1));
    let json = String::from_utf8_lossy(&r.stdout);
    assert!(json.contains(r#""rule": "load-order""#), "{json}");
}

/// `kbuild-patch`: the patch for a tree's series, or a clear refusal.
#[test]
fn kbuild_patch_fits_the_series() {
    let r = klp_convert(&["kbuild-patch", "--kernel-release", "6.12.117+deb12-amd64"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.contains("(Linux 6.12)"), "{text}");
    assert!(text.contains("SPDX-License-Identifier: GPL-2.0"), "{text}");
    let dir = scratch("cli_kbuild_patch");
    std::fs::write(
        dir.join("Makefile"),
        "# SPDX\nVERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 13\n",
    )
    .unwrap();
    // A Makefile alone: no patch applies, each series is tried.
    let r = klp_convert(&["kbuild-patch", "-C", dir.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        stderr(&r).contains(": no kbuild patch applies to this tree (Linux 7.2): tried 7, 7.3, 6.12, 6.1, 5.10 (patch --dry-run -p1)"),
        "{}",
        stderr(&r)
    );
    // The files the 7 patch expects: chosen by the dry run, said on stderr.
    let seven = klp_convert::kbuild::PATCHES
        .iter()
        .find(|p| p.series == "7")
        .unwrap();
    tree_for_patch(&dir, seven.text);
    let r = klp_convert(&["kbuild-patch", "-C", dir.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&r.stdout).contains("(Linux 7.x)"));
    assert!(
        stderr(&r).contains(": the 7 kbuild patch applies (patch --dry-run; tried 7)"),
        "{}",
        stderr(&r)
    );
    let r = klp_convert(&["kbuild-patch", "--kernel-release", "5.14.0"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        stderr(&r).contains(
            "no kbuild patch for Linux 5.14: there are patches for 5.10, 6.1, 6.12, 7, 7.3"
        ),
        "{}",
        stderr(&r)
    );
    let r = klp_convert(&["kbuild-patch", "--kernel-release", "7.3.4+deb13-amd64"]);
    assert!(String::from_utf8_lossy(&r.stdout).contains("(Linux 7.3)"));
    let r = klp_convert(&["kbuild-patch", "--kernel-release", "5.10.0-32-amd64"]);
    assert!(String::from_utf8_lossy(&r.stdout).contains("(Linux 5.10)"));
    let r = klp_convert(&["kbuild-patch"]);
    assert_eq!(r.status.code(), Some(2));
}
