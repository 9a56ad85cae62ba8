//! Real kernels: build livepatch modules with Debian's kbuild, convert them
//! with klp-convert, boot Debian's 5.10, 6.1, 6.12 and 7.3 kernels under
//! qemu (TCG), load the modules and assert what the kernel did. 7.3 has
//! `CONFIG_X86_KERNEL_IBT=y`; qemu's TCG does not implement IBT, so its
//! `ENDBR` checks are not exercised here.
//!
//! The scenarios run in one boot per kernel, driven by
//! `tests/kernel/init.sh`, which prints `KLPTEST <step> <key>=<value>` lines:
//!
//! 1. the unconverted livepatch fails with `Unknown symbol` (negative control);
//!    the converted one in ELF's extended section numbering is refused too
//!    (1b);
//! 2. vmlinux's non-exported `saved_command_line` is read by a patched
//!    `/proc/cmdline` handler; disabling restores the original;
//! 3. target module first, then the patch: static homonyms at positions 1 and 2
//!    reach file A's and file B's symbols; the target is unloaded and loaded
//!    again while the patch stays enabled (6.12 and 7.3 re-apply; 5.10 and 6.1 refuse);
//! 4. patch first, then the target (late module patching);
//! 5. a position the target does not have fails with the kernel's message;
//! 6. plain C and 7. the v7 tables, resolved from the maps, both orders;
//! 10. load orders: a target with a static twin() in .init.text (first in
//!     its symbol table) and in .text; twin,0 works only with the target
//!     loaded first, twin,2 only with the patch loaded first, as `check`
//!     predicted; plain C against the other link order gets position 1,
//!     which works in both;
//! 11. the patch's objects: a patch without the klp_object its relocations
//!     name, and two klp_func entries sharing a sysfs name;
//!     11b. per-CPU data with an ordinary relocation over non-zero bytes:
//!     loaded unrelocated before 6.16 (5.10, 6.1, 6.12), refused by 7.3,
//!     as `check` predicted;
//! 13. the README's walk: its module built from the README's source as the
//!     README says, then loaded, seen, disabled and removed by the README's
//!     own commands, whose outputs are the ones the README shows;
//! 14. module-specific klp symbols (`.klp.sym.<obj>.<name>,<pos>`) of 127
//!     and 128 bytes: 5.10 (KSYM_NAME_LEN 128 before 6.1) cuts the longer
//!     in the livepatch module's kallsyms and refuses it, as `convert` and
//!     `check` predicted; 6.1 and later take both.

mod common;
mod kernel_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use kernel_common::*;

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
    ("lp_noobj", "klp_test_noobj.ko"),
    ("lp_dupfunc", "klp_test_dupfunc.ko"),
    ("lp_percpu", "klp_test_percpu.ko"),
    ("lp_percpu_klp", "klp_test_percpu_klp.ko"),
    ("longname", "klp_test_long.ko"),
    ("lp_long127", "klp_test_long127.ko"),
    ("lp_long128", "klp_test_long128.ko"),
];

/// The modules built and converted in one step by `klp-convert build`, with
/// the target kernel's vmlinux (the -dbg package's) and the target module.
const BUILT_BY_KLP_CONVERT: &[&str] = &["lp_plain", "lp_v7"];

/// `klp-convert build` of `m` (see [`klp_convert_build`] for kbuild's
/// flaky -mfentry probe).
fn build_with_klp_convert(kernel: &Path, work: &Path, m: &Path) {
    let target = work.join("target/klp_test_target.ko");
    let local = local_counter_name(&target);
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

/// `make M=m modules` with `kernel`'s kbuild; again, should kbuild's
/// `-mfentry` probe have failed.
fn make_module(kernel: &Path, m: &Path) {
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
                .arg(target)
                .env("PATH", kbuild_path(&kernel.join("build"))),
            &format!("make M={} {target}", m.display()),
        )
    };
    make("modules");
    // Seen once under load: kbuild's `cc-option -mfentry` probe failed and
    // the module came out calling mcount, which the kernel does not have.
    // Build again rather than boot a module the kernel will refuse.
    let built = || -> Vec<PathBuf> {
        std::fs::read_dir(m)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "ko"))
            .collect()
    };
    if built().iter().any(|ko| calls_mcount(ko)) {
        eprintln!(
            "{}: built without -mfentry (kbuild probe failed); building again",
            m.display()
        );
        make("clean");
        make("modules");
        assert!(
            !built().iter().any(|ko| calls_mcount(ko)),
            "{}: kbuild keeps building without -mfentry",
            m.display()
        );
    }
}

/// Build every test module against `kernel`'s kbuild, out of tree (`M=`).
fn build_modules(kernel: &Path, work: &Path) -> PathBuf {
    let src = root().join("tests/kernel");
    copy_dir(&src.join("include"), &work.join("include"));
    for (dir, _) in MODULES {
        let m = work.join(dir);
        copy_dir(&src.join(dir), &m);
        if BUILT_BY_KLP_CONVERT.contains(dir) {
            build_with_klp_convert(kernel, work, &m);
            continue;
        }
        make_module(kernel, &m);
    }
    work.to_path_buf()
}

/// Step 11b: lp_percpu's per-CPU data holds an ordinary relocation against
/// jiffies over the bytes 1. Before 6.16 the loader applies no relocation
/// there: `check` with the kernel's maps passes the module, and the kernel
/// loads it, its per-CPU copy still 1. 7.3 relocates the section: `check`
/// refuses the non-zero bytes, and so does the kernel.
fn expect_percpu(r: &Results, series: &str, mods: &Path, maps: &[PathBuf]) {
    let (code, text) = check(&mods.join("klp_test_percpu.ko"), maps);
    let nonzero = "error: section .rela.data..percpu, offset 0x0, symbol 'jiffies': Invalid relocation target, existing value is nonzero for type 1 (R_X86_64_64), val 0x1";
    if series == "7.3" {
        assert_eq!(code, 1, "{text}");
        assert!(text.contains(nonzero), "{text}");
        r.expect_refused("percpu", "klp_test_percpu.ko");
        // The kernel names the section and the value: .rela.data..percpu's
        // first entry, jiffies' address (the boot is nokaslr).
        let data = std::fs::read(mods.join("klp_test_percpu.ko")).unwrap();
        let elf = klp_convert::elf::Elf::parse(&data).unwrap();
        let sec = elf.section_by_name(b".rela.data..percpu").unwrap().index;
        let mut vmlinux = klp_convert::maps::SymbolMap::new();
        vmlinux.add_file(&maps[0]).unwrap();
        let jiffies = vmlinux.find("vmlinux", "jiffies", 0).unwrap().addr.unwrap();
        r.expect_log(&format!(
            "x86/modules: Invalid relocation target, existing value is nonzero for sec {sec}, idx 0, type 1, loc "
        ));
        r.expect_log(&format!(", val {jiffies:x}"));
    } else {
        // Loaded, and the per-CPU copy is left unrelocated, as `check`
        // warns (percpu-unrelocated).
        assert_eq!(code, 0, "{text}");
        assert!(
            text.contains(
                "warning: section .rela.data..percpu: 1 relocation into .data..percpu: kernel "
            ) && text.contains(" (before 6.16) drops it silently"),
            "{text}"
        );
        assert!(
            !text.contains("error: section .rela.data..percpu"),
            "{text}"
        );
        r.expect("percpu", "insmod_klp_test_percpu.ko", 0, "0");
        r.expect("percpu", "patched", 0, "klp-convert percpu: 1");
        r.expect("percpu", "removed_rc", 0, "0");
    }
}

/// Step 11: the patch's objects. lp_noobj, a vmlinux-only patch reading
/// klp_test_target's data through `.klp.rela.klp_test_target.*`: `convert`
/// refuses it (no klp_object for klp_test_target), so the library's planner
/// and writer make it, and `check` predicts the relocation is never
/// applied. lp_dupfunc, two entries for cmdline_proc_show at positions 0
/// and 1: nothing to convert, `check` predicts -EEXIST.
fn objects(work: &Path, mods: &Path) {
    use klp_convert::elf::Elf;
    let input = work.join("lp_noobj/klp_test_noobj.ko");
    let refused = work.join("klp_test_noobj.refused.ko");
    expect_convert_refused(
        &input,
        &refused,
        "never applied: the patch has no klp_object for klp_test_target",
    );
    let data = std::fs::read(&input).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let (sel, problems) = klp_convert::convert::select::select(&elf);
    assert!(problems.is_empty(), "{problems:?}");
    let (plan, problems) = klp_convert::convert::plan::plan(&elf, sel);
    let rules: Vec<&str> = problems.iter().map(|p| p.rule.id()).collect();
    assert_eq!(rules, ["klp-section-no-object"], "{problems:?}");
    let out = mods.join("klp_test_noobj.ko");
    std::fs::write(
        &out,
        klp_convert::convert::apply::apply(&elf, &plan).unwrap(),
    )
    .unwrap();
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(": never applied: the patch has no klp_object for klp_test_target (klp_apply_object_relocs applies .klp.rela.klp_test_target.* for that object only)"),
        "{text}"
    );

    let dup = mods.join("klp_test_dupfunc.ko");
    std::fs::copy(work.join("lp_dupfunc/klp_test_dupfunc.ko"), &dup).unwrap();
    let (code, text) = check(&dup, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("symbol 'cmdline_proc_show': klp_func 'cmdline_proc_show' with old_sympos 1 gets the sysfs name 'cmdline_proc_show,1' in 'vmlinux', as an earlier one with old_sympos 0 did (klp_init_func names them \"<old_name>,<old_sympos ?: 1>\"): kobject_add fails with -EEXIST (\"sysfs: cannot create duplicate filename '/kernel/livepatch/klp_test_dupfunc/vmlinux/cmdline_proc_show,1'\") and klp_enable_patch refuses the patch"),
        "{text}"
    );
}

/// Step 11: what the kernel did with [`objects`]' modules, as `check`
/// predicted: lp_noobj loads and enables, and its read of klp_test_target's
/// string was never relocated (NULL); lp_dupfunc is refused with -EEXIST.
fn expect_objects(r: &Results) {
    r.expect("noobj", "insmod_klp_test_noobj.ko", 0, "0");
    r.expect("noobj", "enabled", 0, "1");
    r.expect("noobj", "patched", 0, "klp-convert noobj: (null)");
    r.expect("noobj", "removed_rc", 0, "0");
    r.expect_refused("dupfunc", "klp_test_dupfunc.ko");
    r.expect_log(
        "sysfs: cannot create duplicate filename '/kernel/livepatch/klp_test_dupfunc/vmlinux/cmdline_proc_show,1'",
    );
    r.expect_log("kobject_add_internal failed for cmdline_proc_show,1 with -EEXIST");
}

/// Step 13: the README's walk. Its source and Kbuild line, read from
/// README.md at test time, built by its `klp-convert build` with `-C` at the
/// kernel's kbuild and checked by its `klp-convert check` ([`readme_walk`]).
/// The map stands for the README's `/proc/kallsyms`: the -dbg System.map,
/// which [`scenario`] proves equal to the booted kernel's kallsyms (dumping
/// the guest's own would take a second boot). The module goes into `mods`;
/// the README's load commands into the guest's /walk, for init.sh to run
/// one by one. Returns those commands with their comments.
fn walk(kernel: &Path, work: &Path, mods: &Path) -> Vec<(String, Option<String>)> {
    let dir = work.join("readme-walk");
    std::fs::create_dir_all(&dir).unwrap();
    let walk = readme_walk(&dir, &kernel.join("build"), &kernel.join("dbg/System.map"));
    assert!(
        walk.build_stderr
            .contains("build: 1 livepatch module ready"),
        "{}",
        walk.build_stderr
    );
    std::fs::copy(dir.join("lp_cmdline.ko"), mods.join("lp_cmdline.ko")).unwrap();
    let commands = readme_load_commands(walk.block);
    let mut script = String::new();
    for (cmd, comment) in &commands {
        // "# once PATH is gone": wait for it, as the reader does.
        let gone = comment
            .as_deref()
            .and_then(|c| c.strip_prefix("once "))
            .and_then(|c| c.strip_suffix(" is gone"));
        if let Some(path) = gone {
            script += &format!("@gone {path}\n");
        }
        script += &format!("{cmd}\n");
    }
    std::fs::write(mods.parent().unwrap().join("walk"), script).unwrap();
    commands
}

/// Step 13: what the kernel did with the README's commands. No patch was
/// enabled before; each command succeeds; a command the README comments
/// with its output (`# 1`, `# patched: BOOT_IMAGE=...`, where `...` is any
/// end and `BOOT_IMAGE=...` the command line) printed it. And exactly: the
/// patch is enabled, `/proc/cmdline` is `patched: ` and the command line;
/// the patch is gone before `rmmod`, and `/proc/cmdline` is back.
fn expect_walk(r: &Results, commands: &[(String, Option<String>)], before: &str) {
    r.expect("walk", "patches", 0, "");
    r.expect("walk", "before", 0, before);
    let ran = r.all("walk", "cmd");
    let want: Vec<&str> = commands.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(ran, want, "the README's commands; console:\n{}", r.log);
    let has = |cmd: &str| want.iter().position(|c| *c == cmd);
    for (i, (cmd, comment)) in commands.iter().enumerate() {
        let out = r.one("walk", "out", i);
        assert_eq!(
            r.one("walk", "rc", i),
            "0",
            "{cmd}: {out}; console:\n{}",
            r.log
        );
        let Some(shown) = comment.as_deref().filter(|c| !c.starts_with("once ")) else {
            continue;
        };
        // GRUB puts BOOT_IMAGE first in Debian's command line; qemu boots
        // without it: "BOOT_IMAGE=..." stands for the whole command line.
        let shown = shown.replace("BOOT_IMAGE=...", before);
        let ok = match shown.strip_suffix("...") {
            Some(start) => out.starts_with(start),
            None => out == shown,
        };
        assert!(
            ok,
            "{cmd}: the README shows {shown:?}, the kernel gave {out:?}"
        );
    }
    let insmod = has("insmod lp_cmdline.ko").expect("the README's walk: insmod lp_cmdline.ko");
    let enabled = has("cat /sys/kernel/livepatch/lp_cmdline/enabled")
        .expect("the README's walk: cat .../enabled");
    let cmdline = has("cat /proc/cmdline").expect("the README's walk: cat /proc/cmdline");
    let disable = has("echo 0 | tee /sys/kernel/livepatch/lp_cmdline/enabled")
        .expect("the README's walk: echo 0 | sudo tee .../enabled");
    let rmmod = has("rmmod lp_cmdline").expect("the README's walk: rmmod lp_cmdline");
    assert!(insmod < enabled && enabled < cmdline && cmdline < disable && disable < rmmod);
    r.expect("walk", "out", enabled, "1");
    r.expect("walk", "out", cmdline, &format!("patched: {before}"));
    r.expect("walk", "gone", 0, "yes");
    r.expect("walk", "after", 0, before);
    r.expect("walk", "patches_after", 0, "");
    r.expect("walk", "loaded", 0, "0");
    r.expect_log("livepatch: enabling patch 'lp_cmdline'");
    r.expect_log("livepatch: 'lp_cmdline': patching complete");
    r.expect_log("livepatch: 'lp_cmdline': unpatching complete");
}

/// Step 14: klp symbols one byte either side of what Linux before 6.1 keeps
/// of a livepatch module's symbol name (`KSYM_NAME_LEN - 1`, 127): the
/// 127-byte one converts and `check` passes it everywhere. The 128-byte one:
/// on 5.10, `convert` refuses it in the kernel's words, so the library's
/// planner and writer make the module, and `check` predicts the same
/// refusal; on 6.1 and later it converts and passes.
fn long_names(work: &Path, mods: &Path, release: &str) {
    let old = release.starts_with("5.");
    use klp_convert::elf::Elf;
    std::fs::copy(
        work.join("longname/klp_test_long.ko"),
        mods.join("klp_test_long.ko"),
    )
    .unwrap();
    convert(
        &work.join("lp_long127/klp_test_long127.ko"),
        &mods.join("klp_test_long127.ko"),
        false,
    );
    let (code, text) = check(&mods.join("klp_test_long127.ko"), &[]);
    assert!(!text.contains("KSYM_NAME_LEN"), "{text}");
    assert!(code == 0 || !text.contains("error"), "{text}");
    let input = work.join("lp_long128/klp_test_long128.ko");
    let out = mods.join("klp_test_long128.ko");
    let words = format!("is 128 bytes; kernel {release} keeps at most 127 (KSYM_NAME_LEN - 1) of a symbol name in the livepatch module's kallsyms (add_kallsyms, before 6.1), where it reads 'klp_test_long' symbols when that module loads: the name is cut before its position's first digit, so it refuses the symbol: 'symbol ... has an incorrectly formatted name'");
    if !old {
        convert(&input, &out, false);
        let (_, text) = check(&out, &[]);
        assert!(!text.contains("KSYM_NAME_LEN"), "{text}");
        return;
    }
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains(&words), "{}", stderr(&r));
    let data = std::fs::read(&input).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let (sel, problems) = klp_convert::convert::select::select(&elf);
    assert!(problems.is_empty(), "{problems:?}");
    // The planner refuses it too (the same rule); its plan is written anyway.
    let (plan, problems) = klp_convert::convert::plan::plan(&elf, sel);
    let rules: Vec<&str> = problems.iter().map(|p| p.rule.id()).collect();
    assert_eq!(
        rules,
        [klp_convert::finding::Rule::KlpSymbolTooLong.id()],
        "{problems:?}"
    );
    std::fs::write(
        &out,
        klp_convert::convert::apply::apply(&elf, &plan).unwrap(),
    )
    .unwrap();
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(&words), "{text}");
}

/// Step 14: what the kernel did with [`long_names`]' modules: the 127-byte
/// name is read on every release; 5.10 refuses the 128-byte one with the
/// message `check` quoted, 6.1 and later read it.
fn expect_long_names(r: &Results, old: bool) {
    r.expect("longname", "insmod_klp_test_long.ko", 0, "0");
    r.expect("longname", "insmod_klp_test_long127.ko", 0, "0");
    r.expect("long127", "value", 0, "name of 127 bytes");
    r.expect("long127", "removed_rc", 0, "0");
    if old {
        r.expect_refused("longname", "klp_test_long128.ko");
        // The name as the kernel kept it: its first 127 bytes.
        let whole = format!(
            ".klp.sym.klp_test_long.klp_test_long_name_128_{},0",
            "y".repeat(80)
        );
        r.expect_log(&format!(
            "livepatch: symbol {} has an incorrectly formatted name",
            &whole[..127]
        ));
    } else {
        r.expect("longname", "insmod_klp_test_long128.ko", 0, "0");
        r.expect("long128", "value", 0, "name of 128 bytes");
        r.expect("long128", "removed_rc", 0, "0");
    }
}

/// Pack the initramfs: busybox, /init, the modules; the load-order
/// scenario's built and predicted with `base` maps ([`twins`]); the
/// README's walk ([`walk`], whose load commands it returns).
fn initramfs(
    kernel: &Path,
    work: &Path,
    base: &[PathBuf],
) -> (PathBuf, Vec<(String, Option<String>)>) {
    let m = rootfs(work, &cache_dir().join("busybox"));
    std::fs::copy(
        work.join("target/klp_test_target.ko"),
        m.join("klp_test_target.ko"),
    )
    .unwrap();
    let lp_vmlinux = work.join("lp_vmlinux/klp_test_vmlinux.ko");
    std::fs::copy(&lp_vmlinux, m.join("klp_test_vmlinux.unconverted.ko")).unwrap();
    convert(&lp_vmlinux, &m.join("klp_test_vmlinux.ko"), false);
    add_extended(&m);
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
    twins(work, &m, base, false, |d| make_module(kernel, d));
    objects(work, &m);
    std::fs::copy(
        work.join("lp_percpu/klp_test_percpu.ko"),
        m.join("klp_test_percpu.ko"),
    )
    .unwrap();
    let release = std::fs::read_to_string(kernel.join("release")).unwrap();
    percpu_klp(
        &work.join("lp_percpu_klp/klp_test_percpu_klp.ko"),
        work,
        &m,
        release.trim(),
    );
    long_names(work, &m, release.trim());
    let commands = walk(kernel, work, &m);

    let cpio = work.join("initrd.cpio");
    pack(&work.join("rootfs"), &cpio);
    (cpio, commands)
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
    expect_refused_at_conversion(&work, &maps);

    let base = [
        kernel.join("dbg/vmlinux"),
        kernel.join("build/Module.symvers"),
        kernel.join("config"),
    ];
    let (initrd, walk_commands) = initramfs(&kernel, &work, &base);
    let mods = work.join("rootfs/mod");

    // Before booting: what check predicts with those maps, for the negative
    // controls (the kernel's own words) and the modules the kernel loads.
    expect_predictions(
        &mods,
        &maps,
        &[
            "klp_test_vmlinux.ko",
            "klp_test_mod.ko",
            "klp_test_target.ko",
            "klp_test_plain.ko",
            "klp_test_v7.ko",
        ],
        UNCONVERTED_SYMBOL,
    );

    let qemu = Qemu {
        program: cache_dir().join("qemu/qemu-system-x86_64"),
        args: ["-accel", "tcg", "-cpu", "max"]
            .iter()
            .map(Into::into)
            .collect(),
        kernel: kernel.join("vmlinux"),
        append: "console=ttyS0 nokaslr panic=-1 oops=panic loglevel=6 printk.devkmsg=on".into(),
        second_serial: true,
    };
    let (log, bulk) = boot(&qemu, &initrd, &work.join("console.log"));
    let r = Results::parse(log);

    expect_started(&r, release.trim());
    expect_unconverted(&r, UNCONVERTED_SYMBOL);
    expect_extended(&r, release.trim(), &mods);
    let before = expect_vmlinux(&r);
    assert!(before.contains("nokaslr"), "{before}");
    expect_target_first(&r);
    // Reload of the target while the patch stays enabled.
    let (_, text) = check(&mods.join("klp_test_mod.ko"), &[]);
    let predicted = text.contains("before 6.3) does not clear module-specific klp relocations");
    if matches!(series, "5.10" | "6.1") {
        // 5.10 and 6.1 have no clear_relocate_add on x86: the old bytes are
        // still there.
        assert!(
            predicted,
            "check did not warn about the reload on {series}: {text}"
        );
        expect_reload(
            &r,
            &Reload::Refused(&["livepatch: failed to initialize patch 'klp_test_mod' for module 'klp_test_target' (-8)"]),
        );
    } else {
        expect_reload(&r, &Reload::Reapplied);
        assert!(
            !predicted,
            "check warned about the reload on {series}: {text}"
        );
    }
    expect_late(&r);
    expect_negatives(&r);

    // The maps agree with the booted kernel's own kallsyms. vmlinux: every
    // name the running kernel lists has the same addresses, so the same
    // positions, in the package's vmlinux ELF and in its System.map (the
    // boot is nokaslr), and the ELF map holds no name kallsyms lacks.
    let mut live = klp_convert::maps::SymbolMap::new();
    live.add_kallsyms(&bulk).expect("guest kallsyms");
    let guest = addresses_by_name(&live, "vmlinux");
    // 5.10 lists 79 thousand, 6.x over 80.
    assert!(
        guest.len() > 70_000,
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
    // The list a loaded module keeps (the .ko map also has the symbols
    // kept only while it is coming).
    let names = |m: &klp_convert::maps::SymbolMap| -> Vec<String> {
        m.symbols("klp_test_target")
            .iter()
            .filter(|s| !s.coming_only)
            .map(|s| String::from_utf8_lossy(s.name).into_owned())
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

    expect_plain(&r);
    expect_v7(&r);
    expect_twins(&r, false);
    expect_objects(&r);
    expect_percpu(&r, series, &mods, &maps);
    expect_percpu_klp(&r, release.trim(), &mods, &maps);
    expect_walk(&r, &walk_commands, &before);
    expect_long_names(&r, series == "5.10");
}

#[test]
#[ignore = "tier 2: boots Debian kernels under qemu (scripts/fetch-kernels); scripts/test runs it"]
fn debian_5_10() {
    scenario("5.10");
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

/// trixie-backports' 7.3 (CONFIG_KLP_BUILD=y, CONFIG_X86_KERNEL_IBT=y): its
/// kbuild runs in scripts/fetch-kernels' trixie chroot (glibc 2.38,
/// gcc-14), through kernels/7.3/bin/make, which the test requires.
#[test]
#[ignore = "tier 2: boots Debian kernels under qemu (scripts/fetch-kernels); scripts/test runs it"]
fn debian_7_3() {
    let make = kernel_dir("7.3").join("bin/make");
    assert!(
        make.is_file(),
        "{}: missing (scripts/fetch-kernels)",
        make.display()
    );
    scenario("7.3");
}
