//! Real kernels: build livepatch modules with Debian's kbuild, convert them
//! with klp-convert, boot Debian's 6.1 and 6.12 kernels under qemu (TCG),
//! load the modules and assert what the kernel did.
//!
//! The scenarios run in one boot per kernel, driven by
//! `tests/kernel/init.sh`, which prints `KLPTEST <step> <key>=<value>` lines:
//!
//! 1. the unconverted livepatch fails with `Unknown symbol` (negative control);
//! 2. vmlinux's non-exported `saved_command_line` is read by a patched
//!    `/proc/cmdline` handler; disabling restores the original;
//! 3. target module first, then the patch: static homonyms at positions 1 and 2
//!    reach file A's and file B's symbols; the target is unloaded and loaded
//!    again while the patch stays enabled (6.12 re-applies; 6.1 refuses);
//! 4. patch first, then the target (late module patching);
//! 5. a position the target does not have fails with the kernel's message.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The modules under tests/kernel/: (directory, module file name).
const MODULES: &[(&str, &str)] = &[
    ("target", "klp_test_target.ko"),
    ("lp_vmlinux", "klp_test_vmlinux.ko"),
    ("lp_mod", "klp_test_mod.ko"),
    ("lp_badpos", "klp_test_badpos.ko"),
    ("lp_ambiguous", "klp_test_ambiguous.ko"),
    ("lp_missing", "klp_test_missing.ko"),
    ("lp_modvmlinux", "klp_test_modvmlinux.ko"),
    ("lp_plain", "klp_test_plain.ko"),
    ("lp_v7", "klp_test_v7.ko"),
    ("lp_modkey", "klp_test_modkey.ko"),
    ("lp_ambiguous_plain", "klp_test_ambiguous_plain.ko"),
];

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The modules built and converted in one step by `klp-convert build`, with
/// the target kernel's vmlinux (the -dbg package's) and the target module.
const BUILT_BY_KLP_CONVERT: &[&str] = &["lp_plain", "lp_v7"];

/// `klp-convert build` of `m` (see [`klp_convert_build`] for kbuild's
/// flaky -mfentry probe).
fn build_with_klp_convert(kernel: &Path, work: &Path, m: &Path) {
    let target = work.join("target/klp_test_target.ko");
    // lp_v7 names the target's function-local static as its kallsyms does.
    let mut map = klp_convert::maps::SymbolMap::new();
    map.add_file(&target).unwrap();
    let local = map
        .symbols("klp_test_target")
        .iter()
        .find(|s| s.name.starts_with("klp_local_counter."))
        .map(|s| s.name.clone())
        .expect("the target's function-local static");
    let r = klp_convert_build(
        &kernel.join("build"),
        m,
        &[kernel.join("dbg/vmlinux"), target, kernel.join("config")],
        &[
            format!("KLP_CONVERT_INCLUDE={}", root().join("include").display()),
            format!("KCFLAGS=-DKLP_LOCAL_COUNTER={local}"),
        ],
    );
    assert!(
        r.status.success(),
        "klp-convert build {}: {}",
        m.display(),
        stderr(&r)
    );
    assert!(
        stderr(&r).contains("build: 1 livepatch module ready"),
        "{}",
        stderr(&r)
    );
}

/// Build every test module against `kernel`'s kbuild, out of tree (`M=`).
fn build_modules(kernel: &Path, work: &Path) -> PathBuf {
    let src = root().join("tests/kernel");
    copy_dir(&src.join("include"), &work.join("include"));
    for (dir, module) in MODULES {
        let m = work.join(dir);
        copy_dir(&src.join(dir), &m);
        if BUILT_BY_KLP_CONVERT.contains(dir) {
            build_with_klp_convert(kernel, work, &m);
            continue;
        }
        let make = |target: &str| {
            run(
                Command::new("make")
                    .arg("-C")
                    .arg(kernel.join("build"))
                    .arg(format!("M={}", m.display()))
                    .arg(format!(
                        "KLP_CONVERT_INCLUDE={}",
                        root().join("include").display()
                    ))
                    // The unpatched modpost stops at the annotation names.
                    .arg("KBUILD_MODPOST_WARN=1")
                    .arg(target),
                &format!("make M={dir} {target}"),
            )
        };
        make("modules");
        // Seen once under load: kbuild's `cc-option -mfentry` probe failed and
        // the module came out calling mcount, which the kernel does not have.
        // Build again rather than boot a module the kernel will refuse.
        if calls_mcount(&m.join(module)) {
            eprintln!("{dir}: built without -mfentry (kbuild probe failed); building again");
            make("clean");
            make("modules");
            assert!(
                !calls_mcount(&m.join(module)),
                "{dir}: kbuild keeps building without -mfentry"
            );
        }
    }
    work.to_path_buf()
}

/// Does the module reference `mcount` (built without `-mfentry`)?
fn calls_mcount(ko: &Path) -> bool {
    let data = std::fs::read(ko).unwrap();
    let elf = klp_convert::elf::Elf::parse(&data).unwrap();
    elf.symbols
        .iter()
        .any(|s| s.name == b"mcount" && s.st_shndx == 0)
}

/// Convert one module with the command line under test and check the result
/// passes the tool's own structural check (`show` reports 0 errors).
fn convert(input: &Path, out: &Path, drop_in: bool) {
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
    let strs = if drop_in {
        vec![i, o]
    } else {
        vec!["convert", i, "-o", o]
    };
    let r = klp_convert(&strs);
    assert!(r.status.success(), "klp-convert {strs:?}: {}", stderr(&r));
    let r = klp_convert(&["show", "--format", "json", out.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("show --format json");
    assert_eq!(
        v["summary"]["errors"],
        0,
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
    assert_eq!(v["summary"]["unconverted"], 0);
}

/// What a careless converter would make of lp_modvmlinux: its vmlinux
/// relocation moved into `.klp.rela.klp_test_target.*`. klp-convert refuses
/// to write that, so the library's planner and writer make it directly.
fn module_specific_vmlinux(input: &Path, out: &Path) {
    use klp_convert::elf::Elf;
    let data = std::fs::read(input).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let mut plan = klp_convert::convert::make_plan(&elf, None).unwrap().0;
    assert_eq!(plan.sections.len(), 1);
    plan.sections[0].obj = "klp_test_target".into();
    std::fs::write(
        out,
        klp_convert::convert::apply::apply(&elf, &plan).unwrap(),
    )
    .unwrap();
    let (code, text) = check(out);
    assert_eq!(code, 1, "check accepted it: {text}");
}

/// `klp-convert check FILE`: (exit code, stdout).
fn check(file: &Path) -> (i32, String) {
    let r = klp_convert(&["check", file.to_str().unwrap()]);
    (
        r.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&r.stdout).into_owned(),
    )
}

/// Pack the initramfs: busybox, /init, the modules.
fn initramfs(work: &Path) -> PathBuf {
    let rootfs = work.join("rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("mod")).unwrap();
    let busybox = cache_dir().join("busybox");
    std::fs::copy(&busybox, rootfs.join("bin/busybox")).unwrap();
    std::fs::copy(root().join("tests/kernel/init.sh"), rootfs.join("init")).unwrap();
    let m = rootfs.join("mod");
    std::fs::copy(
        work.join("target/klp_test_target.ko"),
        m.join("klp_test_target.ko"),
    )
    .unwrap();
    let lp_vmlinux = work.join("lp_vmlinux/klp_test_vmlinux.ko");
    std::fs::copy(&lp_vmlinux, m.join("klp_test_vmlinux.unconverted.ko")).unwrap();
    convert(&lp_vmlinux, &m.join("klp_test_vmlinux.ko"), false);
    convert(
        &work.join("lp_mod/klp_test_mod.ko"),
        &m.join("klp_test_mod.ko"),
        false,
    );
    // The drop-in command line of the minimal klp-convert (INPUT OUTPUT).
    let badpos = work.join("lp_badpos/klp_test_badpos.ko");
    convert(&badpos, &m.join("klp_test_badpos.ko"), true);
    for name in ["ambiguous", "missing"] {
        let f = format!("klp_test_{name}.ko");
        convert(&work.join(format!("lp_{name}/{f}")), &m.join(&f), false);
    }
    module_specific_vmlinux(
        &work.join("lp_modvmlinux/klp_test_modvmlinux.ko"),
        &m.join("klp_test_modvmlinux.ko"),
    );
    // Plain C and the v7 scenarios: built and converted by `klp-convert
    // build`, resolved from the target kernel's maps.
    for dir in BUILT_BY_KLP_CONVERT {
        let f = format!("klp_test_{}.ko", dir.trim_start_matches("lp_"));
        std::fs::copy(work.join(dir).join(&f), m.join(&f)).unwrap();
    }

    let cpio = work.join("initrd.cpio");
    pack(&rootfs, &cpio);
    cpio
}

/// Pack `rootfs` into a newc cpio archive with the cached busybox.
fn pack(rootfs: &Path, cpio: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for f in ["init", "bin/busybox"] {
        std::fs::set_permissions(rootfs.join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let busybox = cache_dir().join("busybox");
    let list = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd '{}' && find . | '{}' cpio -o -H newc > '{}'",
            rootfs.display(),
            busybox.display(),
            cpio.display()
        ))
        .stderr(Stdio::null())
        .status()
        .expect("run cpio");
    assert!(list.success(), "packing the initramfs failed");
}

/// Boot the kernel with the initramfs; return the console log and what the
/// guest wrote to its second serial port.
fn boot(kernel: &Path, initrd: &Path, log: &Path) -> (String, String) {
    let _ = std::fs::remove_file(log);
    let bulk = log.with_extension("ttyS1");
    let _ = std::fs::remove_file(&bulk);
    let mut child = Command::new(cache_dir().join("qemu/qemu-system-x86_64"))
        .args(["-accel", "tcg", "-cpu", "max", "-m", "512M", "-smp", "1"])
        .args(["-nographic", "-no-reboot", "-monitor", "none"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .arg("-serial")
        .arg(format!("file:{}", bulk.display()))
        .arg("-kernel")
        .arg(kernel.join("vmlinux"))
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg("console=ttyS0 nokaslr panic=-1 oops=panic loglevel=6")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if child.try_wait().expect("wait for qemu").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("qemu did not power off within 300 s; console:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = |p: &Path| {
        let bytes = std::fs::read(p).unwrap_or_default();
        String::from_utf8_lossy(&bytes).replace('\r', "")
    };
    (text(log), text(&bulk))
}

/// The `KLPTEST` lines of a console log.
struct Results {
    lines: Vec<(String, String, String)>,
    log: String,
}

impl Results {
    fn parse(log: String) -> Self {
        let lines = log
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("KLPTEST ")?;
                let (step, kv) = rest.split_once(' ')?;
                let (k, v) = kv.split_once('=')?;
                Some((step.to_string(), k.to_string(), v.to_string()))
            })
            .collect();
        Results { lines, log }
    }

    /// Every value of `key` at `step`, in order.
    fn all(&self, step: &str, key: &str) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(s, k, _)| s == step && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    fn one(&self, step: &str, key: &str, n: usize) -> &str {
        match self.all(step, key).get(n) {
            Some(v) => v,
            None => panic!("no value #{n} of {step} {key}; console:\n{}", self.log),
        }
    }

    fn expect(&self, step: &str, key: &str, n: usize, want: &str) {
        let got = self.one(step, key, n);
        assert_eq!(got, want, "{step} {key} (#{n}); console:\n{}", self.log);
    }

    fn expect_log(&self, needle: &str) {
        assert!(
            self.log.contains(needle),
            "console lacks {needle:?}:\n{}",
            self.log
        );
    }
}

fn scenario(series: &str) {
    let kernel = kernel_dir(series);
    let release = std::fs::read_to_string(kernel.join("release")).unwrap();
    let work = scratch(&format!("kernel-e2e-{series}"));
    build_modules(&kernel, &work);
    // The target kernel's symbol maps, all from Debian's packages and the
    // build: vmlinux (the ELF of linux-image-<release>-dbg), the target
    // module, the exports, the kernel config.
    let maps = [
        kernel.join("dbg/vmlinux"),
        work.join("target/klp_test_target.ko"),
        kernel.join("build/Module.symvers"),
        // Its .config: CONFIG_KALLSYMS_ALL (Debian: y) decides whether the
        // target's data symbols count.
        kernel.join("config"),
    ];
    // Refused at conversion, with the maps: a module static key in
    // __jump_table, and an unannotated ambiguous reference.
    let refused = |name: &str| -> String {
        let input = work.join(format!("lp_{name}/klp_test_{name}.ko"));
        let out = work.join(format!("klp_test_{name}.refused.ko"));
        let mut args = vec![
            "convert".to_string(),
            input.display().to_string(),
            "-o".into(),
            out.display().to_string(),
        ];
        for map in &maps {
            args.push("--symbols".into());
            args.push(map.display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = klp_convert(&args);
        assert_eq!(
            r.status.code(),
            Some(1),
            "{name} was not refused: {}",
            stderr(&r)
        );
        assert!(!out.exists());
        stderr(&r)
    };
    let err = refused("modkey");
    assert!(
        err.contains("module-specific klp relocation in special section __jump_table")
            && err.contains("static_key_enabled()")
            && err.contains("symbol 'klp_test_key'"),
        "{err}"
    );
    let err = refused("ambiguous_plain");
    assert!(
        err.contains("'get_homonym_string' is ambiguous: 2 candidates"),
        "{err}"
    );
    assert!(
        err.contains("KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, get_homonym_string, 1) /* .text+0x")
            && err.contains(" in target_a.c */"),
        "{err}"
    );
    assert!(
        err.contains("get_homonym_string, 2) /* .text+0x") && err.contains(" in target_b.c */"),
        "{err}"
    );

    let initrd = initramfs(&work);
    let mods = work.join("rootfs/mod");

    // Before booting: what check predicts with those maps.
    let predict = |module: &str| -> (i32, String) {
        let mut args = vec!["check".to_string(), mods.join(module).display().to_string()];
        for m in &maps {
            args.push("--symbols".into());
            args.push(m.display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = klp_convert(&args);
        (
            r.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&r.stdout).into_owned(),
        )
    };
    // The kernel's own words for each negative case, predicted.
    let negatives = [
        ("klp_test_badpos.ko", "symbol position 3 for symbol 'homonym_string' in object 'klp_test_target' not found"),
        ("klp_test_ambiguous.ko", "unresolvable ambiguity for symbol 'homonym_string' in object 'klp_test_target'"),
        ("klp_test_missing.ko", "symbol 'klp_no_such_symbol' not found in symbol table"),
        ("klp_test_modvmlinux.ko", "invalid access to vmlinux symbol 'saved_command_line' from module-specific livepatch relocation section"),
        ("klp_test_vmlinux.unconverted.ko", "Unknown symbol"),
    ];
    for (module, words) in negatives {
        let (code, text) = predict(module);
        assert_eq!(code, 1, "check did not refuse {module}: {text}");
        assert!(
            text.contains(words),
            "check's words for {module} lack {words:?}:\n{text}"
        );
    }
    for module in ["klp_test_vmlinux.ko", "klp_test_mod.ko"] {
        let (code, text) = predict(module);
        assert_eq!(code, 0, "{module}: {text}");
    }
    let (_, text) = predict("klp_test_mod.ko");
    let (_, json) = {
        let r = klp_convert(&[
            "check",
            "--format",
            "json",
            mods.join("klp_test_mod.ko").to_str().unwrap(),
            "--symbols",
            maps[1].to_str().unwrap(),
        ]);
        (
            r.status.code(),
            String::from_utf8_lossy(&r.stdout).into_owned(),
        )
    };
    assert!(json.contains("(position 2 of 2)"), "{json}");
    let _ = text;

    let (log, bulk) = boot(&kernel, &initrd, &work.join("console.log"));
    let r = Results::parse(log);

    r.expect("start", "kernel", 0, release.trim());
    r.expect("done", "result", 0, "ok");

    // 1. The unconverted module: refused by the loader.
    assert_ne!(
        r.one("unconverted", "insmod_klp_test_vmlinux.unconverted.ko", 0),
        "0"
    );
    r.expect_log(
        "klp_test_vmlinux: Unknown symbol .klp.sym.rela.vmlinux.vmlinux.saved_command_line.0",
    );
    // ... which check predicted, for the same symbol.
    let mods = work.join("rootfs/mod");
    let (code, text) = check(&mods.join("klp_test_vmlinux.unconverted.ko"));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("symbol '.klp.sym.rela.vmlinux.vmlinux.saved_command_line.0': unconverted KLP_RELOC_SYMBOL annotation: the loader would fail with 'Unknown symbol'"),
        "{text}"
    );
    // Every module the kernel loaded passes check (warnings allowed).
    for m in [
        "klp_test_vmlinux.ko",
        "klp_test_mod.ko",
        "klp_test_target.ko",
    ] {
        let (code, text) = check(&mods.join(m));
        assert_eq!(code, 0, "{m}: {text}");
        assert!(
            text.contains(" 0 errors") || text.contains(": ok"),
            "{m}: {text}"
        );
    }

    // 2. saved_command_line through a vmlinux klp relocation.
    let before = r.one("cmdline", "before", 0).to_string();
    assert!(before.contains("nokaslr"), "{before}");
    r.expect("vmlinux", "insmod_klp_test_vmlinux.ko", 0, "0");
    r.expect(
        "vmlinux",
        "patched",
        0,
        &format!("klp-convert patched: {before}"),
    );
    r.expect("vmlinux", "removed_rc", 0, "0");
    r.expect("vmlinux", "after", 0, &before);
    r.expect_log("livepatch: 'klp_test_vmlinux': patching complete");

    // 3. Target first; positions 1 and 2 reach files A and B.
    let patched = "patched [homonym string A] [homonym string B] [homonym string B]";
    r.expect("target_first", "insmod_klp_test_target.ko", 0, "0");
    r.expect("target_first", "value", 0, "original");
    r.expect("target_first", "insmod_klp_test_mod.ko", 0, "0");
    r.expect("target_first", "value", 1, patched);
    // Reload of the target while the patch stays enabled.
    r.expect("reload", "rmmod_rc", 0, "0");
    r.expect_log("livepatch: reverting patch 'klp_test_mod' on unloading module 'klp_test_target'");
    let (_, text) = check(&mods.join("klp_test_mod.ko"));
    let predicted = text.contains("before 6.3) does not clear module-specific klp relocations");
    if series == "6.1" {
        // 6.1 has no clear_relocate_add on x86: the old bytes are still there.
        assert!(
            predicted,
            "check did not warn about the reload on 6.1: {text}"
        );
        assert_ne!(r.one("reload", "insmod_klp_test_target.ko", 0), "0");
        r.expect_log("livepatch: failed to initialize patch 'klp_test_mod' for module 'klp_test_target' (-8)");
        r.expect_log("refusing to load module 'klp_test_target'");
        r.expect("reload", "value", 0, "none");
    } else {
        r.expect("reload", "insmod_klp_test_target.ko", 0, "0");
        r.expect("reload", "value", 0, patched);
        r.expect("reload", "value", 1, "original");
        assert!(!r.log.contains("failed to initialize patch"), "{}", r.log);
        assert!(
            !predicted,
            "check warned about the reload on {series}: {text}"
        );
    }
    r.expect("reload", "removed_rc", 0, "0");

    // 4. Patch first, then the target: late module patching.
    r.expect("late", "insmod_klp_test_mod.ko", 0, "0");
    r.expect("late", "insmod_klp_test_target.ko", 0, "0");
    r.expect_log("livepatch: applying patch 'klp_test_mod' to loading module 'klp_test_target'");
    r.expect("late", "value", 0, patched);
    r.expect("late", "removed_rc", 0, "0");
    r.expect("late", "value", 1, "original");
    r.expect("late", "rmmod_target_rc", 0, "0");

    // 5. A position that does not exist: the kernel's own message.
    r.expect("badpos", "insmod_klp_test_target.ko", 0, "0");
    assert_ne!(r.one("badpos", "insmod_klp_test_badpos.ko", 0), "0");
    r.expect_log(
        "livepatch: symbol position 3 for symbol 'homonym_string' in object 'klp_test_target' not found",
    );
    // ... and the other negative cases, each as check predicted.
    for (step, module) in [
        ("ambiguous", "klp_test_ambiguous.ko"),
        ("missing", "klp_test_missing.ko"),
        ("modvmlinux", "klp_test_modvmlinux.ko"),
    ] {
        assert_ne!(
            r.one(step, &format!("insmod_{module}"), 0),
            "0",
            "{module} loaded"
        );
    }
    for (module, words) in &negatives[..4] {
        r.expect_log(&format!("livepatch: {words}"));
        let _ = module;
    }

    // The maps agree with the booted kernel's own kallsyms. vmlinux: every
    // name the running kernel lists has the same addresses, so the same
    // positions, in the package's vmlinux ELF and in its System.map (the
    // boot is nokaslr), and the ELF map holds no name kallsyms lacks.
    let mut live = klp_convert::maps::SymbolMap::new();
    live.add_kallsyms(&bulk).expect("guest kallsyms");
    let guest = addresses_by_name(&live, "vmlinux");
    assert!(
        guest.len() > 80_000,
        "{} vmlinux names in the guest",
        guest.len()
    );
    for file in ["dbg/vmlinux", "dbg/System.map"] {
        let mut map = klp_convert::maps::SymbolMap::new();
        map.add_file(&kernel.join(file)).unwrap();
        let map = addresses_by_name(&map, "vmlinux");
        let wrong: Vec<_> = guest
            .iter()
            .filter(|(name, addrs)| map.get(*name) != Some(*addrs))
            .map(|(name, addrs)| format!("{name}: guest {addrs:x?}, {file} {:x?}", map.get(name)))
            .collect();
        assert!(
            wrong.is_empty(),
            "{series}: {} of {} guest kallsyms names differ in {file}: {:#?}",
            wrong.len(),
            guest.len(),
            &wrong[..wrong.len().min(10)]
        );
        if file == "dbg/vmlinux" {
            let extra: Vec<_> = map.keys().filter(|n| !guest.contains_key(*n)).collect();
            assert!(
                extra.is_empty(),
                "{series}: {} names in the vmlinux ELF map the guest lacks: {:?}",
                extra.len(),
                &extra[..extra.len().min(20)]
            );
        }
    }
    let mut from_ko = klp_convert::maps::SymbolMap::new();
    from_ko
        .add_file(&work.join("target/klp_test_target.ko"))
        .unwrap();
    let names = |m: &klp_convert::maps::SymbolMap| -> Vec<String> {
        m.symbols("klp_test_target")
            .iter()
            .map(|s| s.name.clone())
            .collect()
    };
    assert!(
        !names(&live).is_empty(),
        "no klp_test_target lines in the guest's kallsyms"
    );
    assert_eq!(
        names(&from_ko),
        names(&live),
        "module symbol order: .ko map vs guest kallsyms"
    );
    // Position 1 and 2 of homonym_string: the live addresses are distinct and
    // the kernel's choice matched (the patched value showed A then B).
    let a = live.find("klp_test_target", "homonym_string", 1).unwrap();
    let b = live.find("klp_test_target", "homonym_string", 2).unwrap();
    assert_ne!(a.addr, b.addr);

    // 6. Plain C, resolved automatically, in both load orders.
    let plain = "plain [homonym string B] [console]";
    r.expect("plain", "insmod_klp_test_plain.ko", 0, "0");
    r.expect("plain", "value", 0, plain);
    r.expect("plain", "removed_rc", 0, "0");
    r.expect("plain", "value", 1, "original");
    r.expect("plain_late", "insmod_klp_test_plain.ko", 0, "0");
    r.expect("plain_late", "insmod_klp_test_target.ko", 0, "0");
    r.expect("plain_late", "value", 0, plain);
    r.expect("plain_late", "removed_rc", 0, "0");
    r.expect_log("livepatch: applying patch 'klp_test_plain' to loading module 'klp_test_target'");

    // 7. The v7 selftest scenarios: every storage class, renamed statics,
    //    three text sections, pointers in .data and .rodata, a vmlinux
    //    static key in __jump_table; both load orders.
    let v7 = "v7 data=101,103,105,204,303 rodata=102,104,402 text=203,207,509 \
              sections=99,99,99 strings=klp string A|klp string B \
              fn=homonym string B key=0 local=606 percpu=ok";
    r.expect("v7", "insmod_klp_test_v7.ko", 0, "0");
    r.expect("v7", "value", 0, v7);
    r.expect("v7", "removed_rc", 0, "0");
    r.expect("v7", "value", 1, "original");
    r.expect("v7_late", "insmod_klp_test_v7.ko", 0, "0");
    r.expect("v7_late", "insmod_klp_test_target.ko", 0, "0");
    r.expect("v7_late", "value", 0, v7);
    r.expect("v7_late", "removed_rc", 0, "0");
    r.expect_log("livepatch: applying patch 'klp_test_v7' to loading module 'klp_test_target'");
}

#[test]
#[ignore = "tier 2: boots Debian kernels under qemu (scripts/fetch-kernels); scripts/test runs it"]
fn debian_6_1() {
    scenario("6.1");
}

#[test]
#[ignore = "tier 2: boots Debian kernels under qemu (scripts/fetch-kernels); scripts/test runs it"]
fn debian_6_12() {
    scenario("6.12");
}
