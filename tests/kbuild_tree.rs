//! Kbuild inside a kernel tree, with the project's kbuild patch
//! (`kbuild/linux-<series>.patch`, printed by `klp-convert kbuild-patch`).
//!
//! The trees are the ones scripts/build-kernels builds (x86_64 7.2, s390x
//! 6.1), seen through an overlay: the cached tree stays read-only below,
//! this test's changes (the patch, `klptests/`, every build product) land in
//! its scratch directory. Every command runs in a private mount namespace
//! (`unshare -m`), so the mount never outlives it.
//!
//! Per tree:
//!
//! 1. the patch applies (`klp-convert kbuild-patch -C . | patch -p1`);
//! 2. `make modules` builds tests/kernel's target and two livepatches in
//!    `klptests/`, prints `KLP` for the livepatch modules only, and they
//!    pass `check` with the tree's maps;
//! 3. a second `make modules` changes no byte; a touched livepatch source
//!    is relinked and converted again;
//! 4. without the tool, only the livepatch module fails, with the reason;
//! 5. a misspelled unexported name fails the build naming the symbol, an
//!    ordinary unresolved symbol still fails modpost, and so does an
//!    annotation in a module without livepatch=Y (the `,<pos>` form passes);
//! 6. the same tree without the patch fails modpost on the annotation,
//!    and `klp-convert build -C <tree>` builds the livepatch there, for a
//!    directory inside the tree and one outside it;
//! 7. the kernel built from the tree boots under qemu and the in-tree
//!    modules load and patch, the target before and after the patch.
//!
//! 6.12 has no tree here (no cross-architecture kernel is 6.12): its patch
//! is applied to the pristine files of Debian's `linux-source-6.12`, and
//! modpost is built from them (`kbuild_patch_for_6_12_applies_and_builds`).

mod common;
mod kernel_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use kernel_common::*;

const BIN: &str = env!("CARGO_BIN_EXE_klp-convert");

/// A kernel tree through an overlay: `lower` read-only, changes in `upper`.
struct Tree {
    arch: &'static str,
    lower: PathBuf,
    work: PathBuf,
    make_args: Vec<String>,
}

impl Tree {
    /// A fresh overlay of `k`'s tree with `klptests/` added, and the kbuild
    /// patch applied when `patched`.
    fn new(k: &XKernel, name: &str, patched: bool) -> Tree {
        let work = scratch(&format!("kbuild-tree-{}-{name}", k.arch));
        for d in ["upper", "ovwork", "merged"] {
            std::fs::create_dir_all(work.join(d)).unwrap();
        }
        let lower = k.linux();
        let tests = root().join("tests/kernel");
        let klptests = work.join("upper/klptests");
        for d in ["target", "lp_vmlinux", "lp_mod", "include"] {
            copy_tree(&tests.join(d), &klptests.join(d));
        }
        for d in [
            "lp_comma",
            "lp_misspelled",
            "lp_unresolved",
            "lp_notlivepatch",
        ] {
            copy_tree(&tests.join("kbuild").join(d), &klptests.join(d));
        }
        std::fs::copy(tests.join("kbuild/Kbuild"), klptests.join("Kbuild")).unwrap();
        let kbuild = std::fs::read_to_string(lower.join("Kbuild")).unwrap();
        std::fs::write(
            work.join("upper/Kbuild"),
            format!("{kbuild}obj-m += klptests/\n"),
        )
        .unwrap();
        let mut make_args = vec![
            format!("ARCH={}", k.var("ARCH")),
            format!("CROSS_COMPILE={}", k.var("CROSS_COMPILE")),
            format!("KLP_CONVERT_INCLUDE={}", root().join("include").display()),
        ];
        if k.arch == "x86_64" {
            // The flags klp-build built this tree with, so nothing else rebuilds.
            make_args.push("KCFLAGS=-ffunction-sections -fdata-sections".into());
            make_args.push("KLP_SYMIDS=1".into());
        }
        let t = Tree {
            arch: k.arch,
            lower,
            work,
            make_args,
        };
        if patched {
            let r = t.sh(&format!("{BIN} kbuild-patch -C . | patch -p1 -s"));
            assert!(r.status.success(), "patch: {}", text(&r));
        }
        t
    }

    /// Run `script` with sh in the mounted tree.
    fn sh(&self, script: &str) -> Output {
        let mount = format!(
            "mount -t overlay overlay -o lowerdir={},upperdir={},workdir={} {m} && cd {m} && {script}",
            self.lower.display(),
            self.work.join("upper").display(),
            self.work.join("ovwork").display(),
            m = self.work.join("merged").display(),
        );
        Command::new("unshare")
            .args(["-m", "sh", "-c", &mount])
            .stdin(Stdio::null())
            .output()
            .expect("run unshare (util-linux)")
    }

    /// `make modules` in the tree with `extra` arguments (shell words).
    fn make(&self, extra: &str) -> Output {
        let args: Vec<String> = self.make_args.iter().map(|a| format!("'{a}'")).collect();
        self.sh(&format!(
            "make -j{} {} KLP_CONVERT={BIN} {extra} modules",
            std::thread::available_parallelism().map_or(2, |n| n.get()),
            args.join(" ")
        ))
    }

    /// A file of the tree as this overlay has it.
    fn file(&self, rel: &str) -> PathBuf {
        let upper = self.work.join("upper").join(rel);
        if upper.exists() {
            upper
        } else {
            self.lower.join(rel)
        }
    }

    /// The in-tree modules, as built.
    fn module(&self, name: &str) -> PathBuf {
        let dir = match name {
            "klp_test_target" => "target",
            "klp_test_vmlinux" => "lp_vmlinux",
            "klp_test_comma" => "lp_comma",
            _ => "lp_mod",
        };
        self.work.join(format!("upper/klptests/{dir}/{name}.ko"))
    }

    /// Give a source in the overlay a new modification time.
    fn touch(&self, rel: &str) {
        let r = self.sh(&format!("touch {rel}"));
        assert!(r.status.success(), "touch {rel}: {}", text(&r));
    }
}

/// stdout and stderr of `o`.
fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let path = e.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(e.file_name()));
        } else {
            std::fs::copy(&path, to.join(e.file_name())).unwrap();
        }
    }
}

const MODULES: [&str; 3] = ["klp_test_target", "klp_test_vmlinux", "klp_test_mod"];

fn scenario(arch: &'static str) {
    let k = XKernel::get(arch);
    let t = Tree::new(&k, "patched", true);

    // 2. make modules converts the livepatch modules, and only those.
    let r = t.make("");
    let out = text(&r);
    assert!(r.status.success(), "{arch}: make modules:\n{out}");
    for m in [
        "lp_vmlinux/klp_test_vmlinux.ko",
        "lp_mod/klp_test_mod.ko",
        "lp_comma/klp_test_comma.ko",
    ] {
        assert!(
            out.contains(&format!("  KLP     klptests/{m}\n")),
            "{arch}: {m}:\n{out}"
        );
    }
    assert!(!out.contains("KLP     klptests/target"), "{out}");
    assert!(
        !out.contains("klp-convert:"),
        "{arch}: the KLP step is quiet:\n{out}"
    );
    let maps = [
        t.file("vmlinux"),
        t.file("Module.symvers"),
        t.module("klp_test_target"),
    ];
    for m in ["klp_test_vmlinux", "klp_test_mod", "klp_test_comma"] {
        let (code, report) = check(&t.module(m), &maps);
        assert_eq!(code, 0, "{arch}: {m}: {report}");
        // s390 reaches the target's data through a GOT entry written once
        // (s390-got-stale): the one warning these modules may have.
        let warnings: Vec<&str> = report
            .lines()
            .filter(|l| l.contains("warning:"))
            .filter(|l| !(arch == "s390x" && l.contains("s390 writes a GOT or PLT entry once")))
            .collect();
        assert!(warnings.is_empty(), "{arch}: {m}: {report}");
        assert!(!klp_reloc_types(&t.module(m)).is_empty(), "{arch}: {m}");
    }

    // 3. Nothing changed: no byte changes. A touched source: converted again.
    let before: Vec<Vec<u8>> = MODULES
        .iter()
        .map(|m| std::fs::read(t.module(m)).unwrap())
        .collect();
    let r = t.make("");
    assert!(r.status.success(), "{}", text(&r));
    assert!(!text(&r).contains("KLP "), "{arch}: {}", text(&r));
    for (m, b) in MODULES.iter().zip(&before) {
        assert_eq!(
            &std::fs::read(t.module(m)).unwrap(),
            b,
            "{arch}: {m} changed"
        );
    }
    t.touch("klptests/lp_mod/klp_test_mod.c");
    let r = t.make("");
    let out = text(&r);
    assert!(r.status.success(), "{out}");
    assert!(
        out.contains("  KLP     klptests/lp_mod/klp_test_mod.ko\n"),
        "{arch}: {out}"
    );
    assert!(
        !out.contains("KLP     klptests/lp_vmlinux"),
        "{arch}: {out}"
    );
    let (code, report) = check(&t.module("klp_test_mod"), &maps);
    assert_eq!(code, 0, "{report}");

    // 7 (before the refusals below rebuild the tree). The kernel built from
    // the tree, with the modules its own make converted.
    let boot_dir = t.work.join("boot");
    let mods = rootfs(&boot_dir, &k.dir.join("busybox"));
    for m in MODULES {
        std::fs::copy(t.module(m), mods.join(format!("{m}.ko"))).unwrap();
    }
    let cpio = boot_dir.join("initrd.cpio");
    pack(&boot_dir.join("rootfs"), &cpio);
    let (log, _) = boot(&k.qemu(), &cpio, &boot_dir.join("console.log"));
    let r = Results::parse(log);
    expect_started(&r, k.var("RELEASE"));
    expect_vmlinux(&r);
    expect_target_first(&r);
    // s390x 6.1 and x86_64 7.2 both apply the patch to a reloaded target.
    expect_reload(&r, &Reload::Reapplied);
    expect_late(&r);

    // 4. No tool: the livepatch module fails with the reason; the target,
    // relinked in the same run, does not.
    t.touch("klptests/lp_vmlinux/klp_test_vmlinux.c");
    t.touch("klptests/target/target_a.c");
    let r = t.make("-k KLP_CONVERT=/nonexistent/klp-convert");
    let out = text(&r);
    assert!(!r.status.success(), "{out}");
    assert!(
        out.contains("klptests/lp_vmlinux/klp_test_vmlinux.ko: a livepatch module, but no /nonexistent/klp-convert: install klp-convert or set KLP_CONVERT=<path>"),
        "{arch}: {out}"
    );
    assert!(
        out.contains("LD [M]  klptests/target/klp_test_target.ko"),
        "{out}"
    );
    assert!(
        !t.module("klp_test_vmlinux").exists(),
        "an unconverted module was left"
    );
    let r = t.make("");
    assert!(r.status.success(), "{}", text(&r));
    assert!(text(&r).contains("  KLP     klptests/lp_vmlinux/klp_test_vmlinux.ko"));

    // 5. What the build must refuse.
    let r = t.make("KLPTESTS=lp_misspelled/");
    let out = text(&r);
    assert!(!r.status.success(), "{out}");
    assert!(
        out.contains("symbol 'saved_command_lin' not found in symbol table (object vmlinux)"),
        "{arch}: {out}"
    );
    let r = t.make("KLPTESTS=lp_unresolved/");
    let out = text(&r);
    assert!(!r.status.success(), "{out}");
    assert!(
        out.contains("\"klp_test_no_such_function\" [klptests/lp_unresolved/klp_test_unresolved.ko] undefined!"),
        "{arch}: {out}"
    );
    assert!(!out.contains("\".klp.sym.rela."), "{arch}: {out}");
    // Only livepatch modules may keep the annotations undefined.
    let r = t.make("KLPTESTS=lp_notlivepatch/");
    let out = text(&r);
    assert!(!r.status.success(), "{out}");
    assert!(
        out.contains("\".klp.sym.rela.vmlinux.vmlinux.saved_command_line.0\" [klptests/lp_notlivepatch/klp_test_notlivepatch.ko] undefined!"),
        "{arch}: {out}"
    );

    // 6. The tree without the patch: modpost refuses the annotation, and
    // klp-convert build builds the same livepatch there, in the tree and
    // out of it.
    let u = Tree::new(&k, "unpatched", false);
    let r = u.make("KLPTESTS=lp_vmlinux/");
    let out = text(&r);
    assert!(!r.status.success(), "{out}");
    assert!(
        out.contains("\".klp.sym.rela.vmlinux.vmlinux.saved_command_line.0\" [klptests/lp_vmlinux/klp_test_vmlinux.ko] undefined!"),
        "{arch}: {out}"
    );
    let outside = u.work.join("outside");
    copy_tree(
        &root().join("tests/kernel/lp_vmlinux"),
        &outside.join("lp_vmlinux"),
    );
    copy_tree(
        &root().join("tests/kernel/include"),
        &outside.join("include"),
    );
    let make: Vec<String> = u.make_args.iter().map(|a| format!("'{a}'")).collect();
    for (dir, ko) in [
        (
            "klptests/lp_vmlinux".to_string(),
            u.work.join("upper/klptests/lp_vmlinux/klp_test_vmlinux.ko"),
        ),
        (
            outside.join("lp_vmlinux").display().to_string(),
            outside.join("lp_vmlinux/klp_test_vmlinux.ko"),
        ),
    ] {
        let r = u.sh(&format!(
            "{BIN} build -C . {dir} --symbols vmlinux -- {}",
            make.join(" ")
        ));
        let out = text(&r);
        assert!(r.status.success(), "{arch}: build -C {dir}:\n{out}");
        assert!(out.contains("build: 1 livepatch module ready"), "{out}");
        let (code, report) = check(&ko, &maps[..2]);
        assert_eq!(code, 0, "{arch}: {dir}: {report}");
    }
    eprintln!("{}: in-tree kbuild proven ({})", t.arch, k.var("RELEASE"));
}

#[test]
#[ignore = "tier 2: builds in self-built kernel trees and boots them (scripts/build-kernels; root for the overlay); scripts/test runs it"]
fn in_tree_x86_64_7() {
    scenario("x86_64");
}

#[test]
#[ignore = "tier 2: builds in self-built kernel trees and boots them (scripts/build-kernels; root for the overlay); scripts/test runs it"]
fn in_tree_s390x_6_1() {
    scenario("s390x");
}

/// The patch for `series` (5.10, 6.12, 7.3) on Debian's `linux-source-<series>`
/// (fetched by scripts/fetch-kernels): `kbuild-patch -C` chooses it by a
/// dry run (its series the only one tried) and says so on stderr, it
/// applies exactly (no offset, no fuzz), the tree then patched is refused
/// with every series listed, and the patched modpost builds there (`make
/// modules_prepare` on an x86_64 allnoconfig). Returns the work directory
/// (the tree is `linux-source-<series>` in it). No tree of these series is
/// built whole (see the README).
fn debian_source(series: &str, patch_series: &str) -> PathBuf {
    let tarball = cache_dir().join(format!("kernels/{series}/linux-source.tar.xz"));
    assert!(
        tarball.is_file(),
        "{} is missing: run scripts/fetch-kernels",
        tarball.display()
    );
    let work = scratch(&format!("kbuild-tree-{series}"));
    let run_sh = |script: &str| {
        let o = Command::new("sh")
            .args(["-c", script])
            .current_dir(&work)
            .stdin(Stdio::null())
            .output()
            .expect("run sh");
        assert!(o.status.success(), "{script}:\n{}", text(&o));
        text(&o)
    };
    run_sh(&format!("tar -xJf '{}'", tarball.display()));
    let dir = format!("linux-source-{series}");
    let tree = work.join(&dir);
    let chosen = Command::new(BIN)
        .args(["kbuild-patch", "-C"])
        .arg(&tree)
        .output()
        .expect("run klp-convert");
    assert!(chosen.status.success(), "{}", text(&chosen));
    assert!(
        String::from_utf8_lossy(&chosen.stderr).contains(&format!(
            "{}: the {patch_series} kbuild patch applies (patch --dry-run; tried {patch_series})",
            tree.display()
        )),
        "{}",
        text(&chosen)
    );
    let out = run_sh(&format!(
        "cd {dir} && {BIN} kbuild-patch -C . 2>/dev/null | patch -p1"
    ));
    for f in [
        "scripts/Makefile.modfinal",
        "scripts/mod/modpost.c",
        "scripts/mod/modpost.h",
    ] {
        assert!(out.contains(&format!("patching file {f}")), "{out}");
    }
    assert!(!out.contains("offset") && !out.contains("fuzz"), "{out}");
    // Patched: no patch applies any more, and the refusal lists them all.
    let again = Command::new(BIN)
        .args(["kbuild-patch", "-C"])
        .arg(&tree)
        .output()
        .expect("run klp-convert");
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains(&format!(
            "{}: no kbuild patch applies to this tree (Linux {series}): tried {patch_series}, ",
            tree.display()
        )),
        "{}",
        text(&again)
    );
    for p in ["5.10", "6.1", "6.12", "7", "7.3"] {
        assert!(
            text(&again).contains(&format!(" {p},")) || text(&again).contains(&format!(" {p} (")),
            "{p}: {}",
            text(&again)
        );
    }
    run_sh(&format!(
        "cd {dir} && make -s ARCH=x86_64 allnoconfig && \
         scripts/config --enable MODULES && make -s ARCH=x86_64 olddefconfig && \
         make -s -j{} ARCH=x86_64 modules_prepare",
        std::thread::available_parallelism().map_or(2, |n| n.get())
    ));
    let modpost = std::fs::read(tree.join("scripts/mod/modpost")).expect("modpost built");
    assert!(
        modpost
            .windows(b".klp.sym.rela.".len())
            .any(|w| w == b".klp.sym.rela."),
        "modpost was not built from the patched source"
    );
    work
}

/// 6.12: Debian's `linux-source-6.12` ([`debian_source`]).
#[test]
#[ignore = "tier 2: needs Debian's linux-source-6.12 (scripts/fetch-kernels); scripts/test runs it"]
fn kbuild_patch_for_6_12_applies_and_builds() {
    debian_source("6.12", "6.12");
}

/// 7.3: Debian's `linux-source-7.3` from trixie-backports ([`debian_source`]):
/// its modpost reports through `mod_error`, so the `7` patch (made on 7.2)
/// does not apply and the 7.3 one does.
#[test]
#[ignore = "tier 2: needs Debian's linux-source-7.3 (scripts/fetch-kernels); scripts/test runs it"]
fn kbuild_patch_for_7_3_applies_and_builds() {
    debian_source("7.3", "7.3");
}

/// The choice is the dry run's, not the version's: trees of the other
/// series (the 6.1 and 7.2 trees scripts/build-kernels unpacked, the 5.10
/// source's scripts under a Makefile that claims 6.1) get the patch that
/// applies, the version's tried first.
#[test]
#[ignore = "tier 2: needs scripts/build-kernels' trees and Debian's linux-source-5.10; scripts/test runs it"]
fn kbuild_patch_choice_is_the_dry_run() {
    let files = [
        "Makefile",
        "scripts/Makefile.modfinal",
        "scripts/mod/modpost.c",
        "scripts/mod/modpost.h",
    ];
    let work = scratch("kbuild-patch-choice");
    let mini = |name: &str, from: &Path| -> PathBuf {
        let t = work.join(name);
        for f in files {
            std::fs::create_dir_all(t.join(f).parent().unwrap()).unwrap();
            std::fs::copy(from.join(f), t.join(f)).unwrap();
        }
        t
    };
    let choose = |tree: &Path| -> (Option<i32>, String, String) {
        let o = Command::new(BIN)
            .args(["kbuild-patch", "-C"])
            .arg(tree)
            .output()
            .expect("run klp-convert");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    for (arch, series) in [("s390x", "6.1"), ("x86_64", "7")] {
        let t = mini(arch, &XKernel::get(arch).linux());
        let (code, out, err) = choose(&t);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            err.contains(&format!(
                "the {series} kbuild patch applies (patch --dry-run; tried {series})"
            )),
            "{err}"
        );
        let want = klp_convert::kbuild::PATCHES
            .iter()
            .find(|p| p.series == series)
            .unwrap();
        assert_eq!(out, want.text);
    }
    // 5.10's files under a Makefile that says 6.1.
    let src = scratch("kbuild-patch-choice-src");
    let o = Command::new("tar")
        .arg("-xJf")
        .arg(cache_dir().join("kernels/5.10/linux-source.tar.xz"))
        .args(files.map(|f| format!("linux-source-5.10/{f}")))
        .current_dir(&src)
        .output()
        .expect("run tar");
    assert!(o.status.success(), "{}", text(&o));
    let t = mini("claims-6.1", &src.join("linux-source-5.10"));
    let makefile = std::fs::read_to_string(t.join("Makefile")).unwrap();
    std::fs::write(
        t.join("Makefile"),
        makefile
            .replacen("PATCHLEVEL = 10", "PATCHLEVEL = 1", 1)
            .replacen("VERSION = 5", "VERSION = 6", 1),
    )
    .unwrap();
    let (code, out, err) = choose(&t);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(
            "the 5.10 kbuild patch applies (patch --dry-run; tried 6.1, 7.3, 7, 6.12, 5.10)"
        ),
        "{err}"
    );
    assert!(out.contains("(Linux 5.10)"), "{out}");
    // A tree with no scripts/mod: none fits, each named.
    std::fs::remove_dir_all(t.join("scripts/mod")).unwrap();
    let (code, _, err) = choose(&t);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(
            "no kbuild patch applies to this tree (Linux 6.1): tried 6.1, 7.3, 7, 6.12, 5.10"
        ),
        "{err}"
    );
}

/// 5.10: Debian's `linux-source-5.10` ([`debian_source`]), and its patched
/// modpost and `Makefile.modfinal` in a copy of Debian's 5.10 headers: an
/// `M=` build of tests/kernel/kbuild there converts the livepatch modules
/// (`KLP`), lets their annotations through and refuses an ordinary
/// unresolved symbol and an annotation outside a livepatch module; the
/// modules it made load in Debian's 5.10 kernel under qemu.
#[test]
#[ignore = "tier 2: needs Debian's 5.10 kernel, headers and linux-source-5.10 (scripts/fetch-kernels); scripts/test runs it"]
fn kbuild_patch_for_5_10_applies_builds_and_loads() {
    let work = debian_source("5.10", "5.10");
    let kernel = kernel_dir("5.10");
    let release = std::fs::read_to_string(kernel.join("release")).unwrap();
    let release = release.trim();
    // The headers, copied (with their kbuild) so the patched files replace
    // Debian's: scripts/Makefile.modfinal from the patch, modpost built above.
    let copy = work.join("root");
    let o = Command::new("cp")
        .arg("-a")
        .arg(kernel.join("root"))
        .arg(&copy)
        .output()
        .expect("run cp");
    assert!(o.status.success(), "{}", text(&o));
    let hdrs = copy.join(format!("usr/src/linux-headers-{release}"));
    let makefile = std::fs::read_to_string(hdrs.join("Makefile")).unwrap();
    std::fs::write(
        hdrs.join("Makefile"),
        makefile.replace(
            &kernel.join("root").display().to_string(),
            &copy.display().to_string(),
        ),
    )
    .unwrap();
    let scripts = std::fs::canonicalize(hdrs.join("scripts")).unwrap();
    assert!(scripts.starts_with(&copy), "{}", scripts.display());
    let patch = klp_convert::kbuild::PATCHES
        .iter()
        .find(|p| p.series == "5.10")
        .unwrap();
    let modfinal = patch
        .text
        .split("diff -Nurp ")
        .find(|part| part.starts_with("a/scripts/Makefile.modfinal"))
        .expect("the patch changes Makefile.modfinal");
    let mut child = Command::new("patch")
        .args(["-p2", "-s", "-d"])
        .arg(&scripts)
        .stdin(Stdio::piped())
        .spawn()
        .expect("run patch");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("diff -Nurp {modfinal}").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "Makefile.modfinal");
    std::fs::copy(
        work.join("linux-source-5.10/scripts/mod/modpost"),
        scripts.join("mod/modpost.real-lsb-64"),
    )
    .unwrap();

    let m = work.join("klptests");
    let tests = root().join("tests/kernel");
    for d in ["target", "lp_vmlinux", "lp_mod", "include"] {
        copy_tree(&tests.join(d), &m.join(d));
    }
    for d in ["lp_comma", "lp_unresolved", "lp_notlivepatch"] {
        copy_tree(&tests.join("kbuild").join(d), &m.join(d));
    }
    std::fs::copy(tests.join("kbuild/Kbuild"), m.join("Kbuild")).unwrap();
    let make = |extra: &[&str]| {
        Command::new("make")
            .arg("-C")
            .arg(&hdrs)
            .arg(format!("M={}", m.display()))
            .arg(format!("KLP_CONVERT={BIN}"))
            .arg(format!(
                "KLP_CONVERT_INCLUDE={}",
                root().join("include").display()
            ))
            .arg(format!(
                "KLP_CONVERT_SYMBOLS={} {}",
                kernel.join("dbg/vmlinux").display(),
                kernel.join("config").display()
            ))
            .args(extra)
            .arg("modules")
            .stdin(Stdio::null())
            .output()
            .expect("run make")
    };
    let r = make(&[]);
    let out = text(&r);
    assert!(r.status.success(), "make M= modules:\n{out}");
    for ko in [
        "lp_vmlinux/klp_test_vmlinux.ko",
        "lp_mod/klp_test_mod.ko",
        "lp_comma/klp_test_comma.ko",
    ] {
        assert!(
            out.contains(&format!("  KLP     {}\n", m.join(ko).display())),
            "{ko}:\n{out}"
        );
    }
    assert!(
        !out.contains(&format!("KLP     {}", m.join("target").display())),
        "{out}"
    );
    let maps = [
        kernel.join("dbg/vmlinux"),
        kernel.join("build/Module.symvers"),
        m.join("target/klp_test_target.ko"),
    ];
    for ko in ["lp_vmlinux/klp_test_vmlinux.ko", "lp_mod/klp_test_mod.ko"] {
        let (code, report) = check(&m.join(ko), &maps);
        assert_eq!(code, 0, "{ko}: {report}");
    }
    let r = make(&["KLPTESTS=lp_unresolved/"]);
    let out = text(&r);
    assert!(!r.status.success(), "{out}");
    assert!(
        out.contains("\"klp_test_no_such_function\" [")
            && out.contains("lp_unresolved/klp_test_unresolved.ko] undefined!"),
        "{out}"
    );
    assert!(!out.contains("\".klp.sym.rela."), "{out}");
    let r = make(&["KLPTESTS=lp_notlivepatch/"]);
    let out = text(&r);
    assert!(!r.status.success(), "{out}");
    assert!(
        out.contains("\".klp.sym.rela.vmlinux.vmlinux.saved_command_line.0\" [")
            && out.contains("lp_notlivepatch/klp_test_notlivepatch.ko] undefined!"),
        "{out}"
    );

    // Debian's 5.10 loads them: tests/kernel/init.sh's steps 2 to 4.
    let boot_dir = work.join("boot");
    let mods = rootfs(&boot_dir, &cache_dir().join("busybox"));
    for ko in [
        "target/klp_test_target.ko",
        "lp_vmlinux/klp_test_vmlinux.ko",
        "lp_mod/klp_test_mod.ko",
    ] {
        let name = Path::new(ko).file_name().unwrap();
        std::fs::copy(m.join(ko), mods.join(name)).unwrap();
    }
    let cpio = boot_dir.join("initrd.cpio");
    pack(&boot_dir.join("rootfs"), &cpio);
    let qemu = Qemu {
        program: cache_dir().join("qemu/qemu-system-x86_64"),
        args: ["-accel", "tcg", "-cpu", "max"]
            .iter()
            .map(Into::into)
            .collect(),
        kernel: kernel.join("vmlinux"),
        append: "console=ttyS0 nokaslr panic=-1 oops=panic loglevel=6 printk.devkmsg=on".into(),
        second_serial: false,
    };
    let (log, _) = boot(&qemu, &cpio, &boot_dir.join("console.log"));
    let r = Results::parse(log);
    expect_started(&r, release);
    expect_vmlinux(&r);
    expect_target_first(&r);
    expect_reload(
        &r,
        &Reload::Refused(&["livepatch: failed to initialize patch 'klp_test_mod' for module 'klp_test_target' (-8)"]),
    );
    expect_late(&r);
}
