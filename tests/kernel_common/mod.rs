//! What the real-kernel tests share (tests/kernel_e2e.rs on Debian's x86_64
//! kernels, tests/kernel_xarch.rs on self-built ppc64le, s390x, arm64, ppc32,
//! loongarch64 and big-endian ppc64 kernels): building and converting the
//! modules of tests/kernel/, packing the initramfs, booting qemu, reading the
//! `KLPTEST` lines that tests/kernel/init.sh prints, and the expectations of
//! the scenarios every kernel runs.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Run `cmd`; panic with its output unless it succeeds.
pub fn run(cmd: &mut Command, what: &str) {
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

/// Copy the files of `from` (not recursive) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Does the module reference `mcount` (built without `-mfentry`)?
pub fn calls_mcount(ko: &Path) -> bool {
    let data = std::fs::read(ko).unwrap();
    let elf = klp_convert::elf::Elf::parse(&data).unwrap();
    elf.symbols
        .iter()
        .any(|s| s.name == b"mcount" && s.st_shndx == 0)
}

/// Convert one module with the command line under test and check the result
/// passes the tool's own structural check (`show` reports 0 errors).
pub fn convert(input: &Path, out: &Path, drop_in: bool) {
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
    let strs = if drop_in {
        vec![i, o]
    } else {
        vec!["convert", i, "-o", o]
    };
    let r = klp_convert(&strs);
    assert!(r.status.success(), "klp-convert {strs:?}: {}", stderr(&r));
    let v = show_json(out);
    assert_eq!(v["summary"]["errors"], 0, "{v}");
    assert_eq!(v["summary"]["unconverted"], 0);
}

/// `klp-convert show --format json FILE`.
pub fn show_json(file: &Path) -> serde_json::Value {
    let r = klp_convert(&["show", "--format", "json", file.to_str().unwrap()]);
    serde_json::from_slice(&r.stdout).expect("show --format json")
}

/// The relocation types of every klp section of a module (from `show`).
pub fn klp_reloc_types(file: &Path) -> std::collections::BTreeSet<String> {
    let v = show_json(file);
    let mut out = std::collections::BTreeSet::new();
    for o in v["objects"].as_array().expect("show: objects") {
        for s in o["sections"].as_array().expect("show: sections") {
            for r in s["relocations"].as_array().expect("show: relocations") {
                out.insert(r["type"].as_str().expect("relocation type").to_string());
            }
        }
    }
    out
}

/// What a careless converter would make of lp_modvmlinux: its vmlinux
/// relocation moved into `.klp.rela.klp_test_target.*`. klp-convert refuses
/// to write that, so the library's planner and writer make it directly.
pub fn module_specific_vmlinux(input: &Path, out: &Path) {
    use klp_convert::elf::Elf;
    let data = std::fs::read(input).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let mut plan = klp_convert::convert::make_plan(&elf, None).unwrap().0;
    assert_eq!(plan.sections.len(), 1);
    plan.sections[0].obj = b"klp_test_target".to_vec().into();
    std::fs::write(
        out,
        klp_convert::convert::apply::apply(&elf, &plan).unwrap(),
    )
    .unwrap();
    let (code, text) = check(out, &[]);
    assert_eq!(code, 1, "check accepted it: {text}");
}

/// `klp-convert check FILE [--symbols MAP]...`: (exit code, stdout).
pub fn check(file: &Path, maps: &[PathBuf]) -> (i32, String) {
    let mut args = vec!["check".to_string(), file.display().to_string()];
    for m in maps {
        args.push("--symbols".into());
        args.push(m.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = klp_convert(&args);
    (
        r.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&r.stdout).into_owned(),
    )
}

/// Modules `convert --symbols` must refuse, with the target kernel's maps: a
/// module static key in __jump_table, and an unannotated ambiguous
/// reference. `work/lp_<name>/klp_test_<name>.ko` must be built.
pub fn expect_refused_at_conversion(work: &Path, maps: &[PathBuf]) {
    let refused = |name: &str| -> String {
        let input = work.join(format!("lp_{name}/klp_test_{name}.ko"));
        let out = work.join(format!("klp_test_{name}.refused.ko"));
        let mut args = vec![
            "convert".to_string(),
            input.display().to_string(),
            "-o".into(),
            out.display().to_string(),
        ];
        for map in maps {
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
        err.contains("symbol 'get_homonym_string': ambiguous: 2 candidates"),
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
}

/// The negative controls in the initramfs' /mod, each with the kernel's own
/// words for its refusal (the livepatch core's, then the loader's). The
/// extended-numbering one has words by release: [`expect_extended`].
pub const NEGATIVES: &[(&str, &str)] = &[
    ("klp_test_badpos.ko", "symbol position 3 for symbol 'homonym_string' in object 'klp_test_target' not found"),
    ("klp_test_ambiguous.ko", "unresolvable ambiguity for symbol 'homonym_string' in object 'klp_test_target'"),
    ("klp_test_missing.ko", "symbol 'klp_no_such_symbol' not found in symbol table"),
    ("klp_test_modvmlinux.ko", "invalid access to vmlinux symbol 'saved_command_line' from module-specific livepatch relocation section"),
    ("klp_test_vmlinux.unconverted.ko", "Unknown symbol"),
];

/// 1b. The converted klp_test_vmlinux.ko of `mods` with its section count
/// in section 0 (ELF's extended numbering, every section as it was):
/// `klp_test_vmlinux.extended.ko`, which every release refuses.
pub fn add_extended(mods: &Path) {
    let bytes = std::fs::read(mods.join("klp_test_vmlinux.ko")).unwrap();
    std::fs::write(
        mods.join("klp_test_vmlinux.extended.ko"),
        extended_numbering(&bytes, Extended::Count),
    )
    .unwrap();
}

/// 1b. The loader refused [`add_extended`]'s module in `release`'s words
/// (`uname -r`): 6.13 on (Debian's 6.12 too) check section 0 first, 6.1
/// the name table's index against an `e_shnum` of 0 first, and 5.10 has
/// one message for every failed check.
pub fn expect_extended(r: &Results, release: &str, mods: &Path) {
    r.expect_refused("extended", "klp_test_vmlinux.extended.ko");
    let data = std::fs::read(mods.join("klp_test_vmlinux.extended.ko")).unwrap();
    let elf = klp_convert::elf::Elf::parse(&data).unwrap();
    assert!(elf.extended_numbering() && elf.e_shnum == 0);
    let index = elf.e_shstrndx;
    let mut numbers = release.split(|c: char| !c.is_ascii_digit());
    let mut next = || numbers.next().and_then(|n| n.parse::<u32>().ok()).unwrap();
    let (major, minor) = (next(), next());
    let words = match (major, minor) {
        (6, 12..) | (7.., _) => {
            "ELF Spec violation: section 0 type(0)!=SH_NULL or non-zero len or addr".to_string()
        }
        (6, 1..) => format!(
            "Invalid ELF section name index: {index} || e_shstrndx ({index}) >= e_shnum (0)"
        ),
        _ => "Module has invalid ELF structures".to_string(),
    };
    r.expect_log(&words);
    // check predicted the refusal in those words, the module's release's
    // alone (its vermagic; 6.12's before its stable update differ).
    let (code, text) = check(&mods.join("klp_test_vmlinux.extended.ko"), &[]);
    assert_eq!(code, 1, "{text}");
    let ours = if (major, minor) == (6, 12) {
        format!(": '{words}', or before its stable update took 6.13's checks, 'Invalid")
    } else {
        format!(": '{words}'); a module must have")
    };
    assert!(text.contains(&ours), "check lacks {ours:?}: {text}");
}

/// Before booting: `check --symbols` refuses every negative control of
/// `mods` in the kernel's words, and accepts `loaded` (the modules the
/// kernel is expected to load) without an error.
/// `logged` is the unconverted annotation's name as the loader logs it.
pub fn expect_predictions(mods: &Path, maps: &[PathBuf], loaded: &[&str], logged: &str) {
    for (module, words) in NEGATIVES {
        let (code, text) = check(&mods.join(module), maps);
        assert_eq!(code, 1, "check did not refuse {module}: {text}");
        assert!(
            text.contains(words),
            "check's words for {module} lack {words:?}:\n{text}"
        );
    }
    // The unconverted module: the same symbol the loader names, spelled as
    // the loader logs it (ppc64 drops the leading dot).
    let (_, text) = check(&mods.join("klp_test_vmlinux.unconverted.ko"), maps);
    assert!(
        text.contains(&format!("symbol '{UNCONVERTED_SYMBOL}': unconverted KLP_RELOC_SYMBOL annotation: the loader would fail with 'Unknown symbol {logged}'")),
        "{text}"
    );
    for module in loaded {
        let (code, text) = check(&mods.join(module), maps);
        assert_eq!(code, 0, "{module}: {text}");
        assert!(!text.contains("error:"), "{module}: {text}");
    }
    let (_, json) = {
        let mut args = vec!["check".to_string(), "--format".into(), "json".into()];
        args.push(mods.join("klp_test_mod.ko").display().to_string());
        args.push("--symbols".into());
        args.push(
            maps.iter()
                .find(|m| m.to_string_lossy().ends_with("klp_test_target.ko"))
                .expect("the target module among the maps")
                .display()
                .to_string(),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = klp_convert(&args);
        (
            r.status.code(),
            String::from_utf8_lossy(&r.stdout).into_owned(),
        )
    };
    assert!(json.contains("(position 2 of 2)"), "{json}");
}

/// Pack `rootfs` (with /init and /bin/busybox) into a newc cpio archive with
/// the host's cached busybox.
pub fn pack(rootfs: &Path, cpio: &Path) {
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

/// A fresh rootfs under `work` with the guest's `busybox`, tests/kernel/init.sh
/// as /init (with its helpers, /klptest.sh) and an empty /mod; returns /mod.
pub fn rootfs(work: &Path, busybox: &Path) -> PathBuf {
    let rootfs = work.join("rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("mod")).unwrap();
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    std::fs::copy(root().join("tests/kernel/init.sh"), rootfs.join("init")).unwrap();
    std::fs::copy(
        root().join("tests/kernel/klptest.sh"),
        rootfs.join("klptest.sh"),
    )
    .unwrap();
    rootfs.join("mod")
}

/// One qemu boot.
pub struct Qemu {
    /// The qemu-system-* binary (or a wrapper).
    pub program: PathBuf,
    /// Machine, CPU and accelerator options.
    pub args: Vec<OsString>,
    /// The image `-kernel` boots.
    pub kernel: PathBuf,
    /// The kernel command line.
    pub append: String,
    /// A second serial port whose output `boot` returns (x86's ttyS1).
    pub second_serial: bool,
}

/// Boot `qemu` with the initramfs; return the console log (`\r` stripped)
/// and what the guest wrote to its second serial port, if any.
///
/// A guest that does not power off within 300 s, or falls silent for
/// [`SILENCE`] (150 s), is booted once more, and fails the test if it
/// hangs again. The s390x guest under TCG was seen to stall (an RCU stall,
/// the CPU parked after a call in a module's sysfs handler) in full runs
/// with other guests and builds starving the host, and once in a warm run
/// on an idle one; never in the same boot alone or with two busy loops
/// beside it (3 of 3); a hang that repeats is the module's, and fails. The
/// hung boot's console is kept beside the log (`<log>.hung`): a test that
/// passes on the second boot shows none of its output. That of the stall
/// of 2026-12-07: stuck from 1.9 s of guest time at the return of
/// `klp_test_code_get`'s first call (`brasl`) in `klp_test_vmfunc`, every
/// register the same in five RCU stall reports over 250 s.
pub fn boot(qemu: &Qemu, initrd: &Path, log: &Path) -> (String, String) {
    let mut hung = log.as_os_str().to_owned();
    hung.push(".hung");
    let hung = PathBuf::from(hung);
    let _ = std::fs::remove_file(&hung);
    match boot_once(qemu, initrd, log) {
        Ok(out) => out,
        Err((why, console)) => {
            // The log as the guest wrote it, bytes and all.
            let kept = std::fs::copy(log, &hung).map_or_else(
                |e| format!("not kept ({e})"),
                |_| format!("kept in {}", hung.display()),
            );
            let tail: Vec<&str> = console.lines().rev().take(40).collect();
            eprintln!(
                "the guest {why}; booting once more. Its console is {kept}; last lines:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
            boot_once(qemu, initrd, log).unwrap_or_else(|(why, console)| {
                panic!("the guest {why}, twice; console:\n{console}")
            })
        }
    }
}

/// The longest a guest may go without a new `KLPTEST` line or a byte on
/// its second serial port before it is taken for hung. The scripts' own
/// bounded waits (tests/kernel/klptest.sh: a transition 60 s, a disable 60
/// s and an rmmod 5 s) must be able to run out and report, twice over
/// under a starved host; the longest gap of a warm run is 22.7 s (Debian
/// 7.3's end-to-end scenario, the guest writing /proc/kallsyms to the
/// second port; the others' under 17 s, the cross-architecture ones' under
/// 2.5 s). A hung guest still prints an RCU stall report every minute, so
/// the console's growth alone is no sign of life.
const SILENCE: Duration = Duration::from_secs(150);

/// One boot: the console and second serial port, or why the guest was
/// taken for hung (no power-off in time, or [`SILENCE`]) and its console.
fn boot_once(qemu: &Qemu, initrd: &Path, log: &Path) -> Result<(String, String), (String, String)> {
    let _ = std::fs::remove_file(log);
    let bulk = log.with_extension("ttyS1");
    let _ = std::fs::remove_file(&bulk);
    let mut cmd = Command::new(&qemu.program);
    cmd.args(&qemu.args)
        .args(["-m", "512M", "-smp", "1"])
        .args(["-nographic", "-no-reboot", "-monitor", "none"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()));
    if qemu.second_serial {
        cmd.arg("-serial").arg(format!("file:{}", bulk.display()));
    }
    let mut child = cmd
        .arg("-kernel")
        .arg(&qemu.kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(&qemu.append)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", qemu.program.display()));
    let deadline = Instant::now() + Duration::from_secs(300);
    // `KLPTEST` lines seen and bytes on the second port, and when the
    // last new ones came.
    let (mut said, mut spoke) = ((0, 0), Instant::now());
    let mut polls = 0u32;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for qemu") {
            break status;
        }
        polls += 1;
        if polls % 10 == 0 {
            let bytes = std::fs::read(log).unwrap_or_default();
            let lines = bytes.windows(8).filter(|w| w == b"KLPTEST ").count();
            let bulk = std::fs::metadata(&bulk).map_or(0, |m| m.len());
            let now = (lines, bulk);
            if now != said {
                (said, spoke) = (now, Instant::now());
            }
        }
        let hung = if Instant::now() > deadline {
            Some("did not power off within 300 s".to_string())
        } else if spoke.elapsed() > SILENCE {
            Some(format!(
                "printed no KLPTEST line and no byte on its second port for {} s",
                SILENCE.as_secs()
            ))
        } else {
            None
        };
        if let Some(why) = hung {
            let _ = child.kill();
            let _ = child.wait();
            return Err((why, std::fs::read_to_string(log).unwrap_or_default()));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = |p: &Path| {
        let bytes = std::fs::read(p).unwrap_or_default();
        String::from_utf8_lossy(&bytes).replace('\r', "")
    };
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        panic!(
            "{} exited with {status}: {err}\nconsole:\n{}",
            qemu.program.display(),
            text(log)
        );
    }
    Ok((text(log), text(&bulk)))
}

/// The `KLPTEST` lines of a console log.
pub struct Results {
    pub lines: Vec<(String, String, String)>,
    pub log: String,
}

impl Results {
    pub fn parse(log: String) -> Self {
        let lines = log
            .lines()
            .filter_map(|l| {
                // `[    1.234567] KLPTEST step key=value`: from /dev/kmsg.
                let at = l.find("KLPTEST ")?;
                let rest = l[at + "KLPTEST ".len()..].trim_end_matches('\r');
                let (step, kv) = rest.split_once(' ')?;
                let (k, v) = kv.split_once('=')?;
                Some((step.to_string(), k.to_string(), v.to_string()))
            })
            .collect();
        Results { lines, log }
    }

    /// Every value of `key` at `step`, in order.
    pub fn all(&self, step: &str, key: &str) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(s, k, _)| s == step && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    pub fn one(&self, step: &str, key: &str, n: usize) -> &str {
        match self.all(step, key).get(n) {
            Some(v) => v,
            None => panic!("no value #{n} of {step} {key}; console:\n{}", self.log),
        }
    }

    pub fn expect(&self, step: &str, key: &str, n: usize, want: &str) {
        let got = self.one(step, key, n);
        assert_eq!(got, want, "{step} {key} (#{n}); console:\n{}", self.log);
    }

    pub fn expect_log(&self, needle: &str) {
        assert!(
            self.log.contains(needle),
            "console lacks {needle:?}:\n{}",
            self.log
        );
    }

    /// The insmod of `module` at `step` failed.
    pub fn expect_refused(&self, step: &str, module: &str) {
        assert_ne!(
            self.one(step, &format!("insmod_{module}"), 0),
            "0",
            "{module} loaded; console:\n{}",
            self.log
        );
    }
}

/// The value the target reports under klp_test_mod.
pub const PATCHED: &str = "patched [homonym string A] [homonym string B] [homonym string B]";

/// The boot ran to its end, on `release`.
pub fn expect_started(r: &Results, release: &str) {
    r.expect("start", "kernel", 0, release);
    r.expect("done", "result", 0, "ok");
}

/// The annotation symbol of lp_vmlinux, which the unconverted module leaves
/// undefined (and `check` names).
pub const UNCONVERTED_SYMBOL: &str = ".klp.sym.rela.vmlinux.vmlinux.saved_command_line.0";

/// 1. The unconverted module: refused by the loader, for the symbol check
///    named. `logged` is the name as the loader prints it.
pub fn expect_unconverted(r: &Results, logged: &str) {
    r.expect_refused("unconverted", "klp_test_vmlinux.unconverted.ko");
    r.expect_log(&format!("klp_test_vmlinux: Unknown symbol {logged}"));
}

/// 2. saved_command_line through a vmlinux klp relocation; the command line
///    before the patch.
pub fn expect_vmlinux(r: &Results) -> String {
    let before = r.one("cmdline", "before", 0).to_string();
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
    before
}

/// 3. Target first; positions 1 and 2 reach files A and B.
pub fn expect_target_first(r: &Results) {
    r.expect("target_first", "insmod_klp_test_target.ko", 0, "0");
    r.expect("target_first", "value", 0, "original");
    r.expect("target_first", "insmod_klp_test_mod.ko", 0, "0");
    r.expect("target_first", "value", 1, PATCHED);
    r.expect("reload", "rmmod_rc", 0, "0");
    r.expect_log("livepatch: reverting patch 'klp_test_mod' on unloading module 'klp_test_target'");
}

/// What a kernel does when the target is loaded again while the patch stays
/// enabled.
pub enum Reload<'a> {
    /// The patch is applied to it again.
    Reapplied,
    /// The load is refused, with these console messages.
    Refused(&'a [&'a str]),
}

/// 3b. The reload of the target under the enabled patch, then disabling.
pub fn expect_reload(r: &Results, reload: &Reload) {
    match reload {
        Reload::Reapplied => {
            r.expect("reload", "insmod_klp_test_target.ko", 0, "0");
            r.expect("reload", "value", 0, PATCHED);
            r.expect("reload", "value", 1, "original");
            assert!(
                !r.log.contains("failed to initialize patch 'klp_test_mod'"),
                "{}",
                r.log
            );
        }
        Reload::Refused(messages) => {
            r.expect_refused("reload", "klp_test_target.ko");
            for m in *messages {
                r.expect_log(m);
            }
            r.expect_log("refusing to load module 'klp_test_target'");
            r.expect("reload", "value", 0, "none");
        }
    }
    r.expect("reload", "removed_rc", 0, "0");
}

/// 4. Patch first, then the target: late module patching.
pub fn expect_late(r: &Results) {
    r.expect("late", "insmod_klp_test_mod.ko", 0, "0");
    r.expect("late", "insmod_klp_test_target.ko", 0, "0");
    r.expect_log("livepatch: applying patch 'klp_test_mod' to loading module 'klp_test_target'");
    r.expect("late", "value", 0, PATCHED);
    r.expect("late", "removed_rc", 0, "0");
    r.expect("late", "value", 1, "original");
    r.expect("late", "rmmod_target_rc", 0, "0");
}

/// 5. The negative controls with the target loaded, each refused in the
///    words `check` predicted (see [`NEGATIVES`]).
pub fn expect_negatives(r: &Results) {
    r.expect("badpos", "insmod_klp_test_target.ko", 0, "0");
    for (step, module) in [
        ("badpos", "klp_test_badpos.ko"),
        ("ambiguous", "klp_test_ambiguous.ko"),
        ("missing", "klp_test_missing.ko"),
        ("modvmlinux", "klp_test_modvmlinux.ko"),
    ] {
        r.expect_refused(step, module);
    }
    for (_, words) in &NEGATIVES[..4] {
        r.expect_log(&format!("livepatch: {words}"));
    }
}

/// 6. Plain C, resolved automatically, in both load orders.
pub fn expect_plain(r: &Results) {
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
}

/// 7. The v7 selftest scenarios, in both load orders.
pub fn expect_v7(r: &Results) {
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

/// The name the built target module gives its function-local static
/// (`klp_local_counter.<n>`: the suffix counts the file's local statics),
/// which lp_v7 names as the target's kallsyms does.
pub fn local_counter_name(target: &Path) -> String {
    let mut map = klp_convert::maps::SymbolMap::new();
    map.add_file(target).unwrap();
    let name = map
        .symbols("klp_test_target")
        .iter()
        .find(|s| s.name.starts_with(b"klp_local_counter."))
        .map(|s| String::from_utf8_lossy(s.name).into_owned());
    name.expect("the target's function-local static")
}

/// One self-built kernel of `$KLP_CACHE/xkernels/<arch>`.
pub struct XKernel {
    /// `ppc64le`, `s390x`, `arm64`, `ppc32`, `loongarch64`, `ppc64` (big
    /// endian) or `x86_64`.
    pub arch: &'static str,
    /// `$KLP_CACHE/xkernels/<arch>`.
    pub dir: PathBuf,
    /// Its `env`.
    pub env: BTreeMap<String, String>,
}

impl XKernel {
    /// The kernel of `arch`, built by scripts/build-kernels when the script
    /// is there (it is idempotent). A missing piece fails the test.
    pub fn get(arch: &'static str) -> XKernel {
        let script = root().join("scripts/build-kernels");
        if script.is_file() {
            let out = Command::new("bash")
                .arg(&script)
                .arg(arch)
                .stdin(std::process::Stdio::null())
                .output()
                .expect("run scripts/build-kernels");
            assert!(
                out.status.success(),
                "scripts/build-kernels {arch} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let dir = cache_dir().join("xkernels").join(arch);
        for piece in [
            ".complete",
            "env",
            "boot",
            "busybox",
            "linux/vmlinux",
            "linux/System.map",
            "linux/Module.symvers",
            "linux/.config",
        ] {
            assert!(
                dir.join(piece).exists(),
                "{} is missing: run scripts/build-kernels {arch}",
                dir.join(piece).display()
            );
        }
        let text = std::fs::read_to_string(dir.join("env")).unwrap();
        let env = text
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once('=')?;
                Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            })
            .collect();
        XKernel { arch, dir, env }
    }

    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{}/env has no {key}", self.dir.display()))
    }

    /// The built tree.
    pub fn linux(&self) -> PathBuf {
        self.dir.join("linux")
    }

    /// Its qemu: the machine of `env`, the image `boot`, the console.
    pub fn qemu(&self) -> Qemu {
        Qemu {
            program: PathBuf::from(self.var("QEMU")),
            args: self
                .var("QEMU_MACHINE")
                .split_whitespace()
                .map(Into::into)
                .collect(),
            kernel: self.dir.join("boot"),
            append: format!(
                "console={} panic=-1 loglevel=6 printk.devkmsg=on",
                self.var("CONSOLE")
            ),
            second_serial: false,
        }
    }
}

/// The load-order scenario's module directories under tests/kernel/: the
/// targets klp_test_twin (a static twin() in .init.text, linked first, and
/// one in .text) and klp_test_twinb (the same, the .text twin first), and
/// the patches of twin at position 0 and 2 and in plain C.
pub const TWIN_DIRS: &[&str] = &["twin", "twinb", "lp_twin0", "lp_twin2", "lp_twin_plain"];

/// `klp-convert ARGS... [--symbols MAP]...`: (exit code, stdout, stderr).
pub fn klp_convert_maps(args: &[&str], maps: &[PathBuf]) -> (i32, String, String) {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    for m in maps {
        all.push("--symbols".into());
        all.push(m.display().to_string());
    }
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let r = klp_convert(&all);
    (
        r.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&r.stdout).into_owned(),
        stderr(&r),
    )
}

/// The rule ids and messages of `check --format json` on one module.
fn check_findings(file: &Path, maps: &[PathBuf], extra: &[&str]) -> (i32, Vec<(String, String)>) {
    let f = file.to_str().unwrap();
    let args = [&["check", "--format", "json", f][..], extra].concat();
    let (code, out, err) = klp_convert_maps(&args, maps);
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("check json of {f}: {e}: {out}{err}"));
    let findings = v[0]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings in {v}"))
        .iter()
        .filter(|x| x["severity"] == "error")
        .map(|x| {
            (
                x["rule"].as_str().unwrap_or_default().to_string(),
                x["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (code, findings)
}

/// `check --format json --symbols maps file`: its status, and every finding
/// as (rule, severity, message).
pub fn check_all(file: &Path, maps: &[PathBuf]) -> (i32, Vec<(String, String, String)>) {
    let f = file.to_str().unwrap();
    let (code, out, err) = klp_convert_maps(&["check", "--format", "json", f], maps);
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("check json of {f}: {e}: {out}{err}"));
    let s = |x: &serde_json::Value| x.as_str().unwrap_or_default().to_string();
    let findings = v[0]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings in {v}"))
        .iter()
        .map(|x| (s(&x["rule"]), s(&x["severity"]), s(&x["message"])))
        .collect();
    (code, findings)
}

/// Step 10: build the load-order scenario's modules (`make` runs kbuild's
/// `modules` in a directory), put the targets and the converted patches
/// in `mods`, and assert what `convert` and `check` predict with the
/// target kernel's `base` maps (vmlinux, Module.symvers, .config) and
/// each target's `.ko`:
///
/// * twin,0 and twin,2 in klp_test_twin each work in one order only:
///   `check` says `load-order`, quoting the kernel's words for the other
///   order, and passes with `--load-order` naming the order that works;
/// * plain C: `convert --symbols` picks position 1 in klp_test_twinb, and
///   refuses klp_test_twin, where no position works in both orders.
///
/// `keeps_init`: the loader keeps `.init*` (ppc64), so both twins are in
/// both lists: twin,0 is ambiguous in both orders, twin,2 is the `.text`
/// twin in both, and plain C is ambiguous (no plain module then).
pub fn twins(work: &Path, mods: &Path, base: &[PathBuf], keeps_init: bool, make: impl Fn(&Path)) {
    let src = root().join("tests/kernel");
    for dir in TWIN_DIRS {
        copy_dir(&src.join(dir), &work.join(dir));
        make(&work.join(dir));
    }
    let twin = work.join("twin/klp_test_twin.ko");
    let twinb = work.join("twinb/klp_test_twinb.ko");
    std::fs::copy(&twin, mods.join("klp_test_twin.ko")).unwrap();
    std::fs::copy(&twinb, mods.join("klp_test_twinb.ko")).unwrap();
    let with = |ko: &Path| -> Vec<PathBuf> {
        let mut maps = base.to_vec();
        maps.push(ko.to_path_buf());
        maps
    };
    let (maps_a, maps_b) = (with(&twin), with(&twinb));

    // Annotated: converted as written (without maps, which would refuse).
    for p in ["0", "2"] {
        let f = format!("klp_test_twin{p}.ko");
        convert(&work.join(format!("lp_twin{p}/{f}")), &mods.join(&f), false);
    }
    let plain = work.join("lp_twin_plain/klp_test_twin_plain.ko");
    let p = plain.to_str().unwrap();
    let refused = work.join("klp_test_twin_plain.refused.ko");
    let r = refused.to_str().unwrap();
    // The same C with its klp_object for klp_test_twin, for klp_test_twin's
    // maps: the twinb one's .klp.rela.klp_test_twin.* would never be applied.
    let plain_a = work.join("lp_twin_plain/klp_test_twin_plain_a.ko");
    let pa = plain_a.to_str().unwrap();
    if keeps_init {
        let (code, findings) = check_findings(&mods.join("klp_test_twin0.ko"), &maps_a, &[]);
        assert_eq!(code, 1, "{findings:?}");
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].0, "ambiguous-symbol");
        assert!(
            findings[0].1.starts_with("unresolvable ambiguity for symbol 'twin' in object 'klp_test_twin': 2 candidates (position 1 at .init.text+"),
            "{}",
            findings[0].1
        );
        let (code, findings) = check_findings(&mods.join("klp_test_twin2.ko"), &maps_a, &[]);
        assert_eq!((code, &findings[..]), (0, &[][..]));
        for maps in [&maps_a, &maps_b] {
            let (code, _, err) = klp_convert_maps(&["convert", p, "-o", r], maps);
            assert_eq!(code, 1, "{err}");
            assert!(
                err.contains("symbol 'twin': ambiguous: 2 candidates"),
                "{err}"
            );
        }
        return;
    }
    let (code, findings) = check_findings(&mods.join("klp_test_twin0.ko"), &maps_a, &[]);
    assert_eq!(code, 1, "{findings:?}");
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].0, "load-order");
    for words in [
        "with klp_test_twin loaded after the patch (or reloaded under it), klp_module_coming counts its full symbol table",
        "refuses to load klp_test_twin: unresolvable ambiguity for symbol 'twin' in object 'klp_test_twin'",
        "Position 0 works only with klp_test_twin loaded before the patch",
        "no position means it in both orders",
    ] {
        assert!(findings[0].1.contains(words), "{words:?} in {}", findings[0].1);
    }
    let (code, findings) = check_findings(&mods.join("klp_test_twin2.ko"), &maps_a, &[]);
    assert_eq!(code, 1, "{findings:?}");
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].0, "load-order");
    for words in [
        "with klp_test_twin loaded before the patch, the kernel refuses the patch: symbol position 2 for symbol 'twin' in object 'klp_test_twin' not found",
        "Position 2 works only with klp_test_twin loaded after the patch",
    ] {
        assert!(findings[0].1.contains(words), "{words:?} in {}", findings[0].1);
    }
    for (module, order) in [
        ("klp_test_twin0.ko", "target-first"),
        ("klp_test_twin2.ko", "patch-first"),
    ] {
        let (code, findings) =
            check_findings(&mods.join(module), &maps_a, &["--load-order", order]);
        assert_eq!(
            (code, &findings[..]),
            (0, &[][..]),
            "{module} --load-order {order}"
        );
    }

    // Plain C: position 1 in klp_test_twinb, nothing in klp_test_twin.
    let out = mods.join("klp_test_twin_plain.ko");
    let o = out.to_str().unwrap();
    let (code, _, err) = klp_convert_maps(&["convert", p, "-o", o], &maps_b);
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&out).unwrap();
    let has = |name: &[u8]| bytes.windows(name.len()).any(|w| w == name);
    assert!(
        has(b"\0.klp.sym.klp_test_twinb.twin,1\0"),
        "no twin,1 in {o}"
    );
    let (code, findings) = check_findings(&out, &maps_b, &[]);
    assert_eq!((code, &findings[..]), (0, &[][..]), "{o}");
    let (code, _, err) = klp_convert_maps(&["convert", pa, "-o", r], &maps_a);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no position of 'twin' means the same symbol in both load orders"),
        "{err}"
    );
    assert!(!refused.exists());
    // The twinb patch against klp_test_twin: no object for it.
    let (code, _, err) = klp_convert_maps(
        &["convert", p, "-o", r, "--load-order", "target-first"],
        &maps_a,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("never applied: the patch has no klp_object for klp_test_twin"),
        "{err}"
    );
    let (code, _, err) = klp_convert_maps(
        &["convert", pa, "-o", r, "--load-order", "target-first"],
        &maps_a,
    );
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&refused).unwrap();
    assert!(bytes
        .windows(31)
        .any(|w| w == b"\0.klp.sym.klp_test_twin.twin,0\0"));
}

/// Step 10: what the kernel did with the twins, in both load orders: what
/// [`twins`] had `check` predict (`keeps_init`: ppc64, see there).
pub fn expect_twins(r: &Results, keeps_init: bool) {
    let ambiguity = "livepatch: unresolvable ambiguity for symbol 'twin' in object 'klp_test_twin'";
    if keeps_init {
        // twin,0: ambiguous in both orders.
        r.expect("twin0", "insmod_klp_test_twin.ko", 0, "0");
        r.expect_refused("twin0", "klp_test_twin0.ko");
        r.expect("twin0_late", "insmod_klp_test_twin0.ko", 0, "0");
        r.expect_refused("twin0_late", "klp_test_twin.ko");
        r.expect_log(ambiguity);
        r.expect_log("refusing to load module 'klp_test_twin'");
        // twin,2: the .text twin in both orders.
        for step in ["twin2", "twin2_late"] {
            r.expect(step, "insmod_klp_test_twin.ko", 0, "0");
            r.expect(step, "insmod_klp_test_twin2.ko", 0, "0");
            r.expect(step, "value", 0, "twin=1");
            r.expect(step, "removed_rc", 0, "0");
        }
        return;
    }
    // twin,0: target first, the .text twin (1) is called.
    r.expect("twin0", "insmod_klp_test_twin.ko", 0, "0");
    r.expect("twin0", "insmod_klp_test_twin0.ko", 0, "0");
    r.expect("twin0", "value", 0, "twin=1");
    r.expect("twin0", "removed_rc", 0, "0");
    // twin,0, patch first: the target is refused.
    r.expect("twin0_late", "insmod_klp_test_twin0.ko", 0, "0");
    r.expect_refused("twin0_late", "klp_test_twin.ko");
    r.expect("twin0_late", "value", 0, "none");
    r.expect_log(ambiguity);
    r.expect_log("refusing to load module 'klp_test_twin'");
    r.expect("twin0_late", "removed_rc", 0, "0");
    // twin,2: target first, the patch is refused.
    r.expect("twin2", "insmod_klp_test_twin.ko", 0, "0");
    r.expect_refused("twin2", "klp_test_twin2.ko");
    r.expect_log(
        "livepatch: symbol position 2 for symbol 'twin' in object 'klp_test_twin' not found",
    );
    // twin,2, patch first: the .text twin.
    r.expect("twin2_late", "insmod_klp_test_twin2.ko", 0, "0");
    r.expect("twin2_late", "insmod_klp_test_twin.ko", 0, "0");
    r.expect("twin2_late", "value", 0, "twin=1");
    r.expect("twin2_late", "removed_rc", 0, "0");
    // Plain C, position 1 in klp_test_twinb: both orders.
    for step in ["twin_plain", "twin_plain_late"] {
        r.expect(step, "insmod_klp_test_twinb.ko", 0, "0");
        r.expect(step, "insmod_klp_test_twin_plain.ko", 0, "0");
        r.expect(step, "value", 0, "twin=1");
        r.expect(step, "removed_rc", 0, "0");
    }
}

/// Step 12: the target loaded again at another address under the enabled
/// patch (klp_test_gotent, which shows the address it reaches the target's
/// first homonym_string at, then reads through it, before and after
/// klp_test_twinb, which took the target's old place, is unloaded). With
/// `stale` (s390: the GOT entry is written once), the patch keeps the old
/// address, reads klp_test_twinb's bytes there, and then faults; otherwise
/// it follows the target. Returns the two addresses of the target (first
/// load, second load).
pub fn expect_gotent(r: &Results, stale: bool) -> (String, String) {
    for n in 0..2 {
        r.expect("gotent", "insmod_klp_test_target.ko", n, "0");
    }
    r.expect("gotent", "insmod_klp_test_gotent.ko", 0, "0");
    r.expect("gotent", "rmmod_rc", 0, "0");
    r.expect("gotent", "insmod_klp_test_twinb.ko", 0, "0");
    let (old, new) = (r.one("gotent", "real", 0), r.one("gotent", "real", 1));
    // kallsyms prints an address in the target's width (ppc32: 8 digits).
    assert!(
        old.len() == 16 || old.len() == 8,
        "{old}; console:\n{}",
        r.log
    );
    // Otherwise the test shows nothing: the address must have changed.
    assert_ne!(old, new, "the target came back at the same address");
    // The patch prints the address in 16 digits ("%016lx").
    let (old16, new16) = (format!("{old:0>16}"), format!("{new:0>16}"));
    // Before the reload the patch reaches the target where it is.
    r.expect("gotent", "value", 0, &old16);
    r.expect("gotent", "rmmod_twinb_rc", 0, "0");
    if stale {
        r.expect("gotent", "value", 1, &old16);
        // Through the old address: what klp_test_twinb has there now, then,
        // with klp_test_twinb gone, a fault.
        let other = r.one("gotent", "deref", 0);
        assert_ne!(other, "homonym string A", "{}", r.log);
        assert_ne!(other, "failed", "{}", r.log);
        // The cat is killed by the oops ("failed"); once, in a command
        // substitution, it never came back ("hung").
        let last = r.one("gotent", "deref", 1);
        assert!(last == "failed" || last == "hung", "{last}: {}", r.log);
        // The read faulted at the old address, once, in the last step.
        let page = u64::from_str_radix(old, 16).unwrap() & !0xfff;
        r.expect_log(&format!("Failing address: {page:016x} "));
        assert_eq!(r.log.matches("Oops").count(), 1, "{}", r.log);
        let reread = r.log.rfind("KLPTEST gotent value=").unwrap();
        assert!(r.log[reread..].contains("Oops"), "{}", r.log);
    } else {
        r.expect("gotent", "value", 1, &new16);
        for n in 0..2 {
            r.expect("gotent", "deref", n, "homonym string A");
        }
    }
    (old.to_string(), new.to_string())
}

/// Does the kernel `release` relocate its modules' per-CPU section (6.16
/// on)?
pub fn relocates_percpu(release: &str) -> bool {
    let r = klp_convert::rules::Release::parse(release).unwrap();
    !r.before(6, 16)
}

/// Step 11c (kernel_e2e and kernel_xarch): lp_percpu_klp's per-CPU pointer to saved_command_line, a klp
/// relocation into `.data..percpu`. For a kernel that relocates that
/// section `convert` converts it. Before 6.16 it refuses it
/// (`percpu-target`: dropped silently), so the module is converted as for
/// such a kernel (its vermagic's first digit made 9, and put back in the
/// output, whose `.modinfo` bytes `convert` never moves) for the kernel to
/// show what it does.
pub fn percpu_klp(input: &Path, work: &Path, mods: &Path, release: &str) {
    let input = input.to_path_buf();
    let out = mods.join("klp_test_percpu_klp.ko");
    if relocates_percpu(release) {
        convert(&input, &out, false);
        return;
    }
    expect_convert_refused(
        &input,
        &out,
        &format!(
            "klp relocation into .data..percpu: kernel {release} (before 6.16) drops it silently"
        ),
    );
    let swap = |bytes: &mut Vec<u8>, from: u8, to: u8| {
        let at = bytes
            .windows(9)
            .position(|w| w == b"vermagic=")
            .expect("a vermagic")
            + 9;
        assert_eq!(bytes[at], from, "vermagic's first digit");
        bytes[at] = to;
    };
    let mut bytes = std::fs::read(&input).unwrap();
    let digit = bytes[bytes.windows(9).position(|w| w == b"vermagic=").unwrap() + 9];
    swap(&mut bytes, digit, b'9');
    let later = work.join("klp_test_percpu_klp.later.ko");
    std::fs::write(&later, &bytes).unwrap();
    convert(&later, &out, false);
    let mut bytes = std::fs::read(&out).unwrap();
    swap(&mut bytes, b'9', digit);
    std::fs::write(&out, &bytes).unwrap();
}

/// Step 11c: what the kernel did with [`percpu_klp`]'s module, as `check`
/// predicted: before 6.16 it loads, and its per-CPU pointer was never
/// relocated (NULL); from 6.16 it points at saved_command_line.
pub fn expect_percpu_klp(r: &Results, release: &str, mods: &Path, maps: &[PathBuf]) {
    let (code, text) = check(&mods.join("klp_test_percpu_klp.ko"), maps);
    r.expect("percpu_klp", "insmod_klp_test_percpu_klp.ko", 0, "0");
    r.expect("percpu_klp", "removed_rc", 0, "0");
    let relocated = relocates_percpu(release);
    let shown = if relocated { "relocated" } else { "dropped" };
    r.expect(
        "percpu_klp",
        "patched",
        0,
        &format!("klp-convert percpu-klp: {shown}"),
    );
    if relocated {
        assert_eq!(code, 0, "{text}");
        assert!(!text.contains(".data..percpu"), "{text}");
    } else {
        assert_eq!(code, 1, "{text}");
        assert!(
            text.contains(&format!(
                "error: section .klp.rela.vmlinux..data..percpu: klp relocation into .data..percpu: kernel {release} (before 6.16) drops it silently"
            )),
            "{text}"
        );
    }
}
