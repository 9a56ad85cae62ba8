//! The command line without surprises: a typo gets clap's suggestion, not
//! a drop-in call; `-C` means the kernel tree in every command; the exit
//! statuses, the forms and the map sources are written once and shown
//! whole wherever they appear.

mod common;

use std::process::{Command, Output};

use common::*;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The help of `args`, asserting that it succeeds.
fn help(args: &[&str]) -> String {
    let r = klp_convert(args);
    assert_eq!(r.status.code(), Some(0), "{args:?}: {}", stderr(&r));
    stdout(&r)
}

/// Words separated by single spaces: clap indents an option's help.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn a_typo_gets_clap_suggestion() {
    let r = klp_convert(&["chek", "x.o"]);
    assert_eq!(r.status.code(), Some(2));
    let err = stderr(&r);
    assert!(
        err.starts_with(
            "klp-convert: unrecognized subcommand 'chek'\n\n  tip: a similar subcommand exists: 'check'\n"
        ),
        "{err}"
    );
    assert!(!err.contains("No such file"), "{err}");
    // Not a command and nothing like a file: clap's answer too.
    let r = klp_convert(&["frobnicate", "a", "b"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        stderr(&r).starts_with("klp-convert: unrecognized subcommand 'frobnicate'"),
        "{}",
        stderr(&r)
    );
    // `help COMMAND` is the command's help.
    assert_eq!(help(&["help", "check"]), help(&["check", "--help"]));
    assert_eq!(help(&["help"]), help(&["--help"]));
}

#[test]
fn drop_in_forms_apply_to_file_like_arguments() {
    // Looks like a module (.ko, .o, .klp) or a path: a drop-in form, which
    // then names the missing file.
    for (args, missing) in [
        (&["a.ko", "b.ko"][..], "a.ko"),
        (&["lp.o", "out.o"], "lp.o"),
        (&["symbols.klp", "lp.o", "out.o"], "symbols.klp"),
        (&["maps/System.map", "lp.o", "out.o"], "maps/System.map"),
    ] {
        let r = klp_convert(args);
        assert_eq!(r.status.code(), Some(2), "{args:?}");
        assert_eq!(
            stderr(&r),
            format!("klp-convert: error: {missing}: No such file or directory (os error 2)\n"),
            "{args:?}"
        );
    }
    // An existing file, whatever its name: converted.
    let dir = scratch("cli_surface_drop_in");
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\n\
             int f(void) {{ return v; }}\n"
        ),
        &obj,
    );
    std::fs::copy(&obj, dir.join("livepatch")).unwrap();
    let r = Command::new(env!("CARGO_BIN_EXE_klp-convert"))
        .current_dir(&dir)
        .args(["livepatch", "converted"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    assert_eq!(
        stderr(&r),
        "klp-convert: livepatch: 1 relocation of 1 symbol moved into 1 klp section -> converted\n"
    );
    let want = dir.join("want.o");
    convert_ok(&obj, &want);
    assert_eq!(
        std::fs::read(dir.join("converted")).unwrap(),
        std::fs::read(&want).unwrap()
    );
}

#[test]
fn dash_c_is_the_kernel_tree_everywhere() {
    let tree = scratch("cli_surface_tree");
    std::fs::write(
        tree.join("Makefile"),
        "# SPDX-License-Identifier: GPL-2.0\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 158\n",
    )
    .unwrap();
    let six_one = klp_convert::kbuild::PATCHES
        .iter()
        .find(|p| p.series == "6.1")
        .unwrap();
    tree_for_patch(&tree, six_one.text);
    let tree = tree.to_str().unwrap();
    let want = help(&["kbuild-patch", "--kernel-release", "6.1.0-56-amd64"]);
    assert!(want.contains("(Linux 6.1)"), "{want}");
    for flag in ["-C", "--kernel-dir", "--tree"] {
        assert_eq!(help(&["kbuild-patch", flag, tree]), want, "{flag}");
    }

    let missing = "/nonexistent/kernel";
    for flag in ["-C", "--kernel-dir", "--kbuild"] {
        let dir = scratch("cli_surface_build");
        let r = klp_convert(&["build", dir.to_str().unwrap(), flag, missing]);
        assert_eq!(r.status.code(), Some(2), "{flag}");
        assert!(
            stderr(&r).starts_with(&format!("klp-convert: error: {missing}: ")),
            "{flag}: {}",
            stderr(&r)
        );
    }

    // The same words in both helps; the old names stay hidden.
    for (command, what) in [
        (
            "build",
            "the kernel's build directory (default: /lib/modules/R/build)",
        ),
        (
            "kbuild-patch",
            "the kernel source tree to patch (the patch that applies is chosen)",
        ),
    ] {
        let text = help(&[command, "-h"]);
        let line = format!("-C, --kernel-dir <DIR> The kernel tree, as make -C takes it: {what}");
        assert!(words(&text).contains(&line), "{command}: {text}");
        assert!(!text.contains("--kbuild"), "{command}: {text}");
        assert!(!text.contains("--tree"), "{command}: {text}");
    }
    // -o, -i and -q mean the same wherever they are.
    for (command, short, long) in [
        ("convert", "-o", "--output"),
        ("symbols", "-o", "--output"),
        ("convert", "-i", "--in-place"),
        ("convert", "-q", "--quiet"),
    ] {
        let text = help(&[command, "-h"]);
        assert!(
            text.contains(&format!("{short}, {long}")),
            "{command}: {text}"
        );
    }
}

/// The exit statuses, as every help shows them.
const EXIT_STATUS: &str = "\
Exit status:
  0    success
  1    a module refused, a check or show that found an error, a failed
       build, an input that is not a readable ELF object, or an internal error
  2    a usage error, or a file or map that cannot be read or written
  141  standard output closed by its reader (klp-convert ... | head), as a
       shell reports a tool killed by SIGPIPE
";

#[test]
fn exit_statuses_are_listed_whole() {
    for flag in ["-h", "--help"] {
        let text = help(&[flag]);
        assert!(text.ends_with(EXIT_STATUS), "{flag}: {text}");
        for command in [
            "convert",
            "show",
            "check",
            "symbols",
            "build",
            "kbuild-patch",
            "generate",
        ] {
            let text = help(&[command, flag]);
            assert!(text.ends_with(EXIT_STATUS), "{command} {flag}: {text}");
        }
    }
    // Every man page has them, the main page and each command's.
    let main = help(&["generate", "man"]);
    let section = ".SH \"EXIT STATUS\"\n.TP\n0\nsuccess\n.TP\n1\na module refused, a check or show that found an error, a failed build, an input that is not a readable ELF object, or an internal error\n.TP\n2\na usage error, or a file or map that cannot be read or written\n.TP\n141\nstandard output closed by its reader (klp\\-convert ... | head), as a shell reports a tool killed by SIGPIPE\n";
    assert!(main.contains(section), "{main}");
    let dir = scratch("cli_surface_man");
    help(&["generate", "man", "-o", dir.to_str().unwrap()]);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "klp-convert-build.1",
            "klp-convert-check.1",
            "klp-convert-convert.1",
            "klp-convert-generate.1",
            "klp-convert-kbuild-patch.1",
            "klp-convert-show.1",
            "klp-convert-symbols.1",
            "klp-convert.1",
        ]
    );
    for page in &pages {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(section), "{page}: {text}");
        // clap_mangen's preamble once, and no EXTRA section.
        assert_eq!(text.matches(".ie \\n(.g .ds Aq").count(), 1, "{page}");
        assert!(!text.contains(".SH EXTRA"), "{page}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("klp-convert.1")).unwrap(),
        main
    );
}

#[test]
fn forms_list_every_command_and_usage_the_drop_in_forms() {
    let short = help(&["-h"]);
    let commands: Vec<&str> = short
        .split("Commands:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        commands,
        [
            "convert",
            "show",
            "check",
            "symbols",
            "build",
            "kbuild-patch",
            "generate"
        ]
    );
    let usage = "Usage: klp-convert <COMMAND> [ARGS]...\n       klp-convert INPUT.ko OUTPUT.ko\n       klp-convert SYMBOLS INPUT.ko OUTPUT.ko\n";
    assert!(short.contains(usage), "{short}");
    let long = help(&["--help"]);
    assert!(long.contains(usage), "{long}");
    let forms = long.split("Forms:\n").nth(1).unwrap();
    let forms = &forms[..forms.find("\n\n").unwrap()];
    for c in commands {
        assert!(
            forms.contains(&format!("  klp-convert {c} ")),
            "{c}: {forms}"
        );
    }
    for drop_in in ["INPUT.ko OUTPUT.ko  ", "SYMBOLS INPUT.ko OUTPUT.ko  "] {
        assert!(
            forms.contains(&format!("  klp-convert {drop_in}")),
            "{forms}"
        );
    }
    // The man page lists the same forms.
    let man = help(&["generate", "man"]);
    assert!(
        man.contains(
            ".TP\n\\fBklp\\-convert kbuild\\-patch \\-C DIR | \\-\\-kernel\\-release R\\fR\n"
        ),
        "{man}"
    );
}

/// The map sources, as every help that lists them says it.
const MAP_SOURCES: &str = "Symbol maps (--symbols MAP, the drop-in SYMBOLS, symbols SOURCE): a \
/proc/kallsyms dump or a System.map (vmlinux lines, module lines with [name]); a vmlinux with a \
symbol table; a module .ko, .ko.xz or .ko.zst (named by its .modinfo) or a directory of them \
(/lib/modules/<release>); a Module.symvers (exports); a v7 symbols.klp; a JSON map written by \
'klp-convert symbols --format json'; or the target's kernel .config, read before the other maps \
wherever it stands (without CONFIG_KALLSYMS_ALL, modules read from .ko files keep only their text \
symbols, as the loader's kallsyms does). Exports come from Module.symvers or the __ksymtab_<name> \
entries of a vmlinux, a kallsyms dump or a module.";

#[test]
fn map_sources_are_written_once() {
    // The top-level help, symbols' description, and the --symbols help of
    // every command that has it: once in each.
    for args in [
        &["--help"][..],
        &["check", "--help"],
        &["symbols", "--help"],
        &["convert", "--help"],
        &["build", "--help"],
    ] {
        let text = words(&help(args));
        assert_eq!(text.matches(MAP_SOURCES).count(), 1, "{args:?}: {text}");
    }
    let man = words(
        &help(&["generate", "man"])
            .replace("\\-", "-")
            .replace("\\&", ""),
    );
    assert!(
        man.contains(&format!(".SH \"SYMBOL MAPS\" {MAP_SOURCES}")),
        "{man}"
    );
}

#[test]
fn show_has_one_way_to_ask_for_json() {
    let r = klp_convert(&["show", "--json", "x.ko"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        stderr(&r).starts_with("klp-convert: unexpected argument '--json' found"),
        "{}",
        stderr(&r)
    );
    let text = help(&["show", "--help"]);
    assert!(!text.contains("--json"), "{text}");
    assert!(text.contains("--format <FORMAT>"), "{text}");
}

#[test]
fn messages_count_in_words() {
    let dir = scratch("cli_surface_plural");
    for (map, want) in [
        ("ffffffff81000000 T foo\n", "1 symbol of 1 object (vmlinux)"),
        (
            "ffffffff81000000 T foo\nffffffff81000010 t bar\nffffffff81000020 t baz\t[mod_a]\n",
            "3 symbols of 2 objects (mod_a, vmlinux)",
        ),
    ] {
        let kallsyms = dir.join("kallsyms");
        std::fs::write(&kallsyms, map).unwrap();
        let out = dir.join("symbols.klp");
        let r = klp_convert(&[
            "symbols",
            kallsyms.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
        assert_eq!(
            stderr(&r),
            format!("klp-convert: {}: {want}\n", out.display())
        );
    }
    // The check help counts per module.
    assert!(help(&["check", "--help"]).contains("one summary line per module"));
}

/// `help COMMAND ...` prints the help and runs nothing: not the build
/// whose make arguments follow (`-- -j2` once reached make as `-j2 --help`).
#[test]
fn help_command_only_helps() {
    let dir = scratch("cli_surface_help_build");
    let r = klp_convert(&[
        "help",
        "build",
        dir.to_str().unwrap(),
        "-C",
        "/nonexistent/kernel",
        "--",
        "-j2",
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    assert_eq!(stdout(&r), help(&["build", "--help"]));
    assert_eq!(stderr(&r), "");
}

/// A kernel tree and a release name the kernel twice: refused, not one of
/// them silently ignored.
#[test]
fn a_tree_and_a_release_are_refused_together() {
    let both = [
        vec![
            "kbuild-patch",
            "-C",
            "/tmp",
            "--kernel-release",
            "6.1.0-56-amd64",
        ],
        vec![
            "build",
            ".",
            "-C",
            "/tmp",
            "--kernel-release",
            "6.1.0-56-amd64",
        ],
    ];
    for args in both {
        let r = klp_convert(&args);
        assert_eq!(r.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&r).starts_with(
                "klp-convert: the argument '--kernel-dir <DIR>' cannot be used with '--kernel-release <R>'\n"
            ),
            "{args:?}: {}",
            stderr(&r)
        );
    }
    let r = klp_convert(&["kbuild-patch"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        stderr(&r).starts_with(
            "klp-convert: the following required arguments were not provided:\n  <--kernel-dir <DIR>|--kernel-release <R>>\n"
        ),
        "{}",
        stderr(&r)
    );
}

/// Options after a drop-in form's file: the command that takes them.
#[test]
fn a_drop_in_form_with_options_points_at_convert() {
    let r = klp_convert(&["x.ko", "-o", "y.ko"]);
    assert_eq!(r.status.code(), Some(2));
    assert_eq!(
        stderr(&r),
        "klp-convert: unknown option '-o' in a drop-in form (INPUT OUTPUT, SYMBOLS INPUT OUTPUT); \
         options belong to a command: klp-convert convert x.ko -o y.ko\nTry 'klp-convert --help'.\n"
    );
    // The hint is built from the positions (the words as typed would not
    // parse as `convert`), shell-quoted.
    for (args, hint) in [
        (
            &["m.ko", "out.ko", "-q"][..],
            "klp-convert convert m.ko -o out.ko -q",
        ),
        (
            &["syms.klp", "m.ko", "out.ko", "--bogus"][..],
            "klp-convert convert m.ko -o out.ko --symbols syms.klp --bogus",
        ),
        (
            &[
                "syms.klp",
                "m.ko",
                "-q",
                "-o",
                "out.ko",
                "--load-order",
                "both",
            ][..],
            "klp-convert convert m.ko -o out.ko --symbols syms.klp -q --load-order=both",
        ),
        (
            &["a b.ko", "-o", "c d.ko"][..],
            "klp-convert convert 'a b.ko' -o 'c d.ko'",
        ),
        (
            &["it's.ko", "$HOME.ko", "-q"][..],
            "klp-convert convert 'it'\\''s.ko' -o '$HOME.ko' -q",
        ),
    ] {
        let r = klp_convert(args);
        assert_eq!(r.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&r).contains(&format!("options belong to a command: {hint}\n")),
            "{args:?}: {}",
            stderr(&r)
        );
    }
}
