//! The Debian package that `scripts/package` builds (cargo-deb, with
//! `[package.metadata.deb]` in Cargo.toml): unpacked with `dpkg-deb -x`, its
//! binary runs, its man pages read, its bash completion registers, and the
//! header, the kbuild patches and the copyright file are where the README
//! says.
//!
//! Tier 2: it builds the release binary and needs cargo-deb, which
//! `scripts/package --tool` installs into the cache (scripts/test runs that
//! first). A missing cargo-deb fails the test; nothing is downloaded here.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).expect("UTF-8 output")
}

/// `scripts/package`, with cargo-deb required to be installed already.
fn build_package() -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join("scripts/package"))
        .env("KLP_PACKAGE_NO_INSTALL", "1")
        .output()
        .expect("run scripts/package");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/package failed ({}). Is cargo-deb installed? `bash scripts/package --tool` \
         installs it (scripts/test runs that first).\n{stderr}",
        out.status
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 path");
    let deb = PathBuf::from(text.trim_end());
    assert!(
        deb.extension().is_some_and(|e| e == "deb") && deb.is_file(),
        "scripts/package printed {text:?}, not a .deb\n{stderr}"
    );
    deb
}

const EXPECTED: &[&str] = &[
    "./usr/bin/klp-convert",
    "./usr/share/man/man1/klp-convert.1.gz",
    "./usr/share/man/man1/klp-convert-convert.1.gz",
    "./usr/share/man/man1/klp-convert-check.1.gz",
    "./usr/share/man/man1/klp-convert-show.1.gz",
    "./usr/share/man/man1/klp-convert-symbols.1.gz",
    "./usr/share/man/man1/klp-convert-build.1.gz",
    "./usr/share/man/man1/klp-convert-kbuild-patch.1.gz",
    "./usr/share/bash-completion/completions/klp-convert",
    "./usr/share/zsh/vendor-completions/_klp-convert",
    "./usr/share/fish/vendor_completions.d/klp-convert.fish",
    "./usr/share/klp-convert/include/klp_convert.h",
    "./usr/share/klp-convert/kbuild/README.md",
    "./usr/share/klp-convert/kbuild/linux-5.10.patch",
    "./usr/share/klp-convert/kbuild/linux-6.1.patch",
    "./usr/share/klp-convert/kbuild/linux-6.12.patch",
    "./usr/share/klp-convert/kbuild/linux-7.3.patch",
    "./usr/share/klp-convert/kbuild/linux-7.patch",
    "./usr/share/doc/klp-convert/copyright",
    "./usr/share/doc/klp-convert/COPYING",
    "./usr/share/doc/klp-convert/LICENSE-MIT",
    "./usr/share/doc/klp-convert/LICENSE-APACHE",
    "./usr/share/doc/klp-convert/LICENSE-GPL-2.0",
    "./usr/share/doc/klp-convert/CHANGELOG.md",
    "./usr/share/doc/klp-convert/README.md",
];

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A man page from the unpacked tree, rendered by `man -l` (man-db:
/// scripts/setup-deps installs it): it must show `wants`.
fn check_man_page(page: &Path, wants: &[&str]) {
    let source = stdout(Command::new("gzip").arg("-dc").arg(page));
    assert!(
        source.contains(".TH"),
        "{}: no .TH:\n{source}",
        page.display()
    );
    assert!(
        have("man"),
        "man is missing (scripts/setup-deps installs man-db)"
    );
    let text = stdout(
        Command::new("man")
            .arg("-l")
            .arg(page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .env("LC_ALL", "C.UTF-8"),
    );
    for want in wants.iter().chain(&["EXIT STATUS"]) {
        assert!(
            text.contains(want),
            "man -l {} lacks {want:?}:\n{text}",
            page.display()
        );
    }
}

#[test]
#[ignore = "tier 2: builds the release binary and the .deb with cargo-deb (scripts/package --tool installs it); scripts/test runs it"]
fn debian_package_installs_a_working_tool() {
    let deb = build_package();

    // The control fields: computed Depends, the section, a description.
    let info = stdout(Command::new("dpkg-deb").arg("-I").arg(&deb));
    for want in [
        "Package: klp-convert",
        "Section: devel",
        "Depends: libc6",
        "Description: ",
    ] {
        assert!(info.contains(want), "dpkg-deb -I lacks {want:?}:\n{info}");
    }

    let listing = stdout(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let paths: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for want in EXPECTED {
        assert!(paths.contains(want), "the .deb lacks {want}:\n{listing}");
    }
    // Every command has its page, and nothing is left uncompressed.
    let pages: Vec<&&str> = paths
        .iter()
        .filter(|p| p.starts_with("./usr/share/man/"))
        .filter(|p| !p.ends_with('/'))
        .collect();
    assert!(
        pages.iter().all(|p| p.ends_with(".1.gz")),
        "uncompressed man pages: {pages:?}"
    );

    let dir = scratch("package");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir));
    let usr = dir.join("usr");

    // The binary runs.
    let bin = usr.join("bin/klp-convert");
    let version = stdout(Command::new(&bin).arg("--version"));
    assert!(
        version.starts_with(&format!("klp-convert {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let help = stdout(Command::new(&bin).arg("--help"));
    for command in ["convert", "check", "show", "build", "kbuild-patch"] {
        assert!(help.contains(command), "--help lacks {command}:\n{help}");
    }
    // It carries the same kbuild patches as the package's files.
    let printed = stdout(Command::new(&bin).args(["kbuild-patch", "--kernel-release", "6.12.57"]));
    let shipped = std::fs::read_to_string(usr.join("share/klp-convert/kbuild/linux-6.12.patch"))
        .expect("read the shipped 6.12 patch");
    assert_eq!(
        printed, shipped,
        "kbuild-patch prints what the package ships"
    );

    // The man pages.
    let man1 = usr.join("share/man/man1");
    check_man_page(
        &man1.join("klp-convert.1.gz"),
        &["klp-convert", "SYMBOL MAPS"],
    );
    for command in [
        "convert",
        "show",
        "check",
        "symbols",
        "build",
        "kbuild-patch",
    ] {
        let page = man1.join(format!("klp-convert-{command}.1.gz"));
        check_man_page(&page, &[&format!("klp-convert-{command}"), "OPTIONS"]);
    }

    // The bash completion, sourced from the unpacked tree, completes a
    // command and an option.
    let bash = usr.join("share/bash-completion/completions/klp-convert");
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let script = format!(
            "source '{}' && COMP_WORDS=({}) && COMP_CWORD={} && COMP_LINE='{line}' && COMP_POINT={} && \
             $(complete -p klp-convert | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p') klp-convert '{}' '{}' && \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            bash.display(),
            words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
            words.len() - 1,
            line.len(),
            words[words.len() - 1],
            words[words.len() - 2],
        );
        stdout(Command::new("bash").arg("-c").arg(script))
    };
    let commands = complete("klp-convert ch");
    assert_eq!(commands.trim(), "check", "{commands}");
    let options = complete("klp-convert check --sy");
    assert_eq!(options.trim(), "--symbols", "{options}");
    // zsh's and fish's scripts are generated by the same clap_complete
    // (bash's is the one run here).
    let zsh = usr.join("share/zsh/vendor-completions/_klp-convert");
    let zsh_text = std::fs::read_to_string(&zsh).expect("read the zsh completion");
    assert!(zsh_text.starts_with("#compdef klp-convert"), "{zsh_text}");
    let fish = usr.join("share/fish/vendor_completions.d/klp-convert.fish");
    let fish_text = std::fs::read_to_string(&fish).expect("read the fish completion");
    assert!(fish_text.contains("complete -c klp-convert"), "{fish_text}");

    // The header, and the licences.
    let header = std::fs::read_to_string(usr.join("share/klp-convert/include/klp_convert.h"))
        .expect("read the shipped header");
    assert!(header.contains("KLP_RELOC_SYMBOL"), "{header}");
    let patch = std::fs::read_to_string(usr.join("share/klp-convert/kbuild/linux-7.patch"))
        .expect("read the shipped 7.x patch");
    assert!(patch.contains("SPDX-License-Identifier: GPL-2.0"));
    let copyright = std::fs::read_to_string(usr.join("share/doc/klp-convert/copyright"))
        .expect("read the copyright file");
    for want in [
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
        "Files: kbuild/*.patch",
        "License: GPL-2.0-only",
        "License: MIT or Apache-2.0",
        "/usr/share/common-licenses/GPL-2",
    ] {
        assert!(
            copyright.contains(want),
            "copyright lacks {want:?}:\n{copyright}"
        );
    }
}
