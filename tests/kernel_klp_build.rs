//! Livepatch modules made by another tool: the kernel's own
//! `scripts/livepatch/klp-build` (objtool `klp diff` and `klp post-link`).
//!
//! `scripts/build-kernels x86_64` builds a small x86_64 Linux 7.x from
//! Debian's `linux-source-7.*` through klp-build, which makes one module of
//! each tests/kernel/klp-build/*.patch:
//!
//! * `cmdline`: `cmdline_proc_show` reads non-exported vmlinux data
//!   (`saved_command_line`);
//! * `stat`: `proc_tgid_stat` calls a static function of its own file
//!   (`do_task_stat`);
//! * `version`: `version_show`, a name vmlinux has twice (arch/x86's
//!   boot_params and the microcode driver): a nonzero `old_sympos`;
//! * `kobject`: a module's function (samples/kobject's `foo_show`, reading
//!   its static `foo`): `.klp.rela.kobject_example..text`.
//!
//! Each must pass `check --symbols` with the tree's maps without an error,
//! `show` must list its klp relocations and patched functions, and
//! `convert` must agree (nothing to convert, the same bytes). Two copies
//! changed as a livepatch author's mistake would: a klp symbol's position
//! 0 → 3, and `version_show`'s `old_sympos` → 0; `check` predicts both
//! refusals in the kernel's words. Then the kernel built from that tree
//! boots under qemu with tests/kernel/klp-build/init.sh: every module loads
//! and patches (the module's patch before and after the module), and both
//! changed copies are refused with the words `check` gave (`convert`, given
//! the maps, refuses them too). The kernel's own samples/livepatch, in C,
//! built out of tree, pass `check` too, and two of them load.

mod common;
mod kernel_common;

use std::path::{Path, PathBuf};

use common::*;
use kernel_common::*;

/// The patches of tests/kernel/klp-build/, each `livepatch-<name>.ko`.
const PATCHES: &[&str] = &["cmdline", "stat", "version", "kobject"];

/// `convert`, without and with maps, leaves a klp-build module as it is.
fn convert_agrees(ko: &Path, maps: &[PathBuf], work: &Path) {
    let out = work.join("converted.ko");
    for with_maps in [false, true] {
        let _ = std::fs::remove_file(&out);
        let mut args = vec!["convert".to_string(), ko.display().to_string()];
        if with_maps {
            for m in maps {
                args.push("--symbols".into());
                args.push(m.display().to_string());
            }
        }
        args.extend(["-o".to_string(), out.display().to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = klp_convert(&args);
        assert!(r.status.success(), "{}: {}", ko.display(), stderr(&r));
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(ko).unwrap(),
            "{}: convert changed a module it had nothing to do for",
            ko.display()
        );
    }
}

/// A copy of `ko` with its unique `from` bytes replaced by `to` (same length).
fn edited(ko: &Path, out: &Path, from: &[u8], to: &[u8]) {
    let mut bytes = std::fs::read(ko).unwrap();
    let at: Vec<usize> = bytes
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        at.len(),
        1,
        "{:?} in {}",
        String::from_utf8_lossy(from),
        ko.display()
    );
    bytes[at[0]..at[0] + to.len()].copy_from_slice(to);
    std::fs::write(out, bytes).unwrap();
}

/// A copy of `ko` with `func`'s `klp_func_ext.sympos` set to `pos`;
/// returns the position it had.
fn with_sympos(ko: &Path, out: &Path, func: &str, pos: u64) -> u64 {
    let mut bytes = std::fs::read(ko).unwrap();
    let (at, old) = {
        let elf = klp_convert::elf::Elf::parse(&bytes).unwrap();
        let table = klp_convert::klp_patch::read(&elf).expect("a patch table");
        let (_, f) = table
            .funcs()
            .find(|(_, f)| f.old_name.as_deref() == Some(func.as_bytes()))
            .unwrap_or_else(|| panic!("no klp_func for {func}"));
        let sec = elf.section_by_name(f.place.section.as_bytes()).unwrap();
        ((sec.sh_offset + f.place.offset + 16) as usize, f.sympos)
    };
    bytes[at..at + 8].copy_from_slice(&pos.to_le_bytes());
    std::fs::write(out, bytes).unwrap();
    old
}

/// The part of a `check` error message the kernel prints too.
fn predicted<'t>(text: &'t str, start: &str) -> &'t str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("check did not predict {start:?}:\n{text}"));
    let rest = &text[from..];
    let end = rest.find(':').unwrap_or(rest.len());
    &rest[..end]
}

#[test]
#[ignore = "tier 2: builds an x86_64 kernel with klp-build and boots it under qemu (scripts/build-kernels); scripts/test runs it"]
fn klp_build_modules_in_their_kernel() {
    let k = XKernel::get("x86_64");
    let linux = k.linux();
    let klp = k.dir.join("klp");
    let target = linux.join("samples/kobject/kobject-example.ko");
    let maps = vec![
        linux.join("System.map"),
        linux.join("Module.symvers"),
        target.clone(),
    ];
    let work = scratch("kernel-klp-build");
    let mods = rootfs(&work, &k.dir.join("busybox"));
    std::fs::copy(
        root().join("tests/kernel/klp-build/init.sh"),
        work.join("rootfs/init"),
    )
    .unwrap();
    std::fs::copy(&target, mods.join("kobject-example.ko")).unwrap();

    // Before booting: check, show and convert on every module.
    for name in PATCHES {
        let file = format!("livepatch-{name}.ko");
        let ko = klp.join(&file);
        let (code, text) = check(&ko, &maps);
        assert_eq!(code, 0, "{file}: {text}");
        assert!(!text.contains("error:"), "{file}: {text}");
        assert!(!text.contains("warning:"), "{file}: {text}");
        let show = show_json(&ko);
        let relocs: usize = show["objects"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|o| o["sections"].as_array().unwrap())
            .map(|s| s["relocations"].as_array().unwrap().len())
            .sum();
        assert!(relocs > 0, "{file}: show lists no klp relocation: {show}");
        assert_eq!(show["patch"]["form"], "objtool", "{file}: {show}");
        convert_agrees(&ko, &maps, &work);
        std::fs::copy(&ko, mods.join(&file)).unwrap();
        let expect: &[&str] = match *name {
            "cmdline" => &[
                "symbol '.klp.sym.vmlinux.saved_command_line,0': resolves to 0x",
                "symbol 'cmdline_proc_show': patched function resolves to 0x",
            ],
            "stat" => &[
                "symbol '.klp.sym.vmlinux.do_task_stat,0': resolves to 0x",
                "symbol 'proc_tgid_stat': patched function resolves to 0x",
            ],
            "version" => &["symbol 'version_show': patched function resolves to 0x"],
            _ => &[
                "symbol '.klp.sym.kobject_example.foo,0': resolves to .bss+",
                "symbol 'foo_show': patched function resolves to .text+",
            ],
        };
        for e in expect {
            assert!(text.contains(e), "{file}: no {e:?} in:\n{text}");
        }
        // objtool's leftovers are named, never errors.
        assert!(
            text.contains("note: section .rela__klp_relocs."),
            "{file}: {text}"
        );
    }
    // version_show: vmlinux has two, klp-build chose one by position.
    let version = show_json(&klp.join("livepatch-version.ko"));
    let f = &version["patch"]["objects"][0]["funcs"][0];
    assert_eq!(f["old_name"], "version_show", "{version}");
    let pos = f["sympos"].as_u64().unwrap();
    assert!(pos > 0, "{version}");
    let (_, text) = check(&klp.join("livepatch-version.ko"), &maps);
    assert!(
        text.contains(&format!("in vmlinux (position {pos} of 2)")),
        "{text}"
    );
    // The kobject patch's section is the module's.
    let kobject = show_json(&klp.join("livepatch-kobject.ko"));
    assert_eq!(
        kobject["objects"][0]["object"], "kobject_example",
        "{kobject}"
    );
    assert_eq!(
        kobject["patch"]["objects"][0]["name"], "kobject_example",
        "{kobject}"
    );

    // The kernel's own samples/livepatch, built out of tree: livepatches in
    // C (a static struct klp_patch, callbacks, module objects), and the
    // modules they patch, which serve as maps.
    let samples = work.join("samples");
    std::fs::create_dir_all(&samples).unwrap();
    let mut kbuild = String::new();
    for e in std::fs::read_dir(linux.join("samples/livepatch")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "c") {
            std::fs::copy(&path, samples.join(path.file_name().unwrap())).unwrap();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            kbuild.push_str(&format!("obj-m += {stem}.o\n"));
        }
    }
    std::fs::write(samples.join("Kbuild"), kbuild).unwrap();
    run(
        std::process::Command::new("make")
            .arg("-C")
            .arg(&linux)
            .arg(format!("M={}", samples.display()))
            .arg("modules"),
        "make samples/livepatch",
    );
    let mut sample_maps = maps.clone();
    for target in [
        "livepatch-callbacks-mod",
        "livepatch-callbacks-busymod",
        "livepatch-shadow-mod",
    ] {
        sample_maps.push(samples.join(format!("{target}.ko")));
    }
    for (name, patched) in [
        ("livepatch-sample", &["cmdline_proc_show"][..]),
        ("livepatch-callbacks-demo", &["busymod_work_func"][..]),
        ("livepatch-shadow-fix1", &["dummy_alloc", "dummy_free"][..]),
        ("livepatch-shadow-fix2", &["dummy_check", "dummy_free"][..]),
    ] {
        let ko = samples.join(format!("{name}.ko"));
        let (code, text) = check(&ko, &sample_maps);
        assert_eq!(code, 0, "{name}: {text}");
        assert!(
            !text.contains("error:") && !text.contains("warning:"),
            "{name}: {text}"
        );
        for f in patched {
            assert!(
                text.contains(&format!("symbol '{f}': patched function resolves to ")),
                "{name}: {f}: {text}"
            );
        }
        assert_eq!(show_json(&ko)["patch"]["form"], "static", "{name}");
    }
    for name in [
        "livepatch-sample",
        "livepatch-callbacks-demo",
        "livepatch-callbacks-mod",
    ] {
        let file = format!("{name}.ko");
        std::fs::copy(samples.join(&file), mods.join(&file)).unwrap();
    }

    // Two mistakes check must predict in the kernel's words.
    let badpos = mods.join("livepatch-cmdline.badpos.ko");
    edited(
        &klp.join("livepatch-cmdline.ko"),
        &badpos,
        b".klp.sym.vmlinux.saved_command_line,0\0",
        b".klp.sym.vmlinux.saved_command_line,3\0",
    );
    let (code, text) = check(&badpos, &maps);
    assert_eq!(code, 1, "{text}");
    let badpos_words = predicted(&text, "symbol position 3 for symbol 'saved_command_line'");
    let sympos0 = mods.join("livepatch-version.sympos0.ko");
    assert_eq!(
        with_sympos(
            &klp.join("livepatch-version.ko"),
            &sympos0,
            "version_show",
            0
        ),
        pos
    );
    let (code, text) = check(&sympos0, &maps);
    assert_eq!(code, 1, "{text}");
    let sympos0_words = predicted(&text, "unresolvable ambiguity for symbol 'version_show'");
    assert!(text.contains("2 candidates"), "{text}");
    // convert, given the maps, refuses both for the same reasons.
    for (ko, words) in [(&badpos, badpos_words), (&sympos0, sympos0_words)] {
        let r = klp_convert(&[
            "convert",
            ko.to_str().unwrap(),
            "--symbols",
            maps[0].to_str().unwrap(),
            "--symbols",
            maps[1].to_str().unwrap(),
            "-o",
            work.join("refused.ko").to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
        assert!(stderr(&r).contains(words), "{}", stderr(&r));
        assert!(!work.join("refused.ko").exists());
    }

    // The kernel built from the same tree.
    let cpio = work.join("initrd.cpio");
    pack(&work.join("rootfs"), &cpio);
    let qemu = k.qemu();
    let (log, _) = boot(&qemu, &cpio, &work.join("console.log"));
    let r = Results::parse(log);
    expect_started(&r, k.var("RELEASE"));

    let before = r.one("cmdline", "before", 0).to_string();
    r.expect("cmdline", "insmod_livepatch-cmdline.ko", 0, "0");
    r.expect("cmdline", "enabled", 0, "1");
    r.expect("cmdline", "patched", 0, &format!("{before} klp-build"));
    r.expect("cmdline", "removed_rc", 0, "0");
    r.expect("cmdline", "after", 0, &before);

    r.expect("stat", "insmod_livepatch-stat.ko", 0, "0");
    r.expect("stat", "patched", 0, "klp-build");
    r.expect("stat", "removed_rc", 0, "0");
    r.expect("stat", "after", 0, "0");

    let version = r.one("version", "before", 0).to_string();
    assert!(version.starts_with("0x"), "{version}");
    r.expect("version", "insmod_livepatch-version.ko", 0, "0");
    r.expect("version", "patched", 0, &format!("{version} klp-build"));
    r.expect("version", "after", 0, &version);

    let step = "kobject_patch_first";
    r.expect(step, "insmod_livepatch-kobject.ko", 0, "0");
    r.expect(step, "enabled", 0, "1");
    r.expect(step, "insmod_kobject-example.ko", 0, "0");
    r.expect(step, "patched", 0, "0 klp-build");
    r.expect(step, "unpatched", 0, "0");
    let step = "kobject_module_first";
    r.expect(step, "insmod_kobject-example.ko", 0, "0");
    r.expect(step, "before", 0, "0");
    r.expect(step, "insmod_livepatch-kobject.ko", 0, "0");
    r.expect(step, "patched", 0, "0 klp-build");
    r.expect(step, "removed_rc", 0, "0");

    r.expect("sample", "insmod_livepatch-sample.ko", 0, "0");
    r.expect("sample", "patched", 0, "this has been live patched");
    r.expect("sample", "removed_rc", 0, "0");
    r.expect("callbacks", "insmod_livepatch-callbacks-mod.ko", 0, "0");
    r.expect("callbacks", "insmod_livepatch-callbacks-demo.ko", 0, "0");
    r.expect("callbacks", "enabled", 0, "1");
    r.expect("callbacks", "removed_rc", 0, "0");

    // Refused, in the words check gave.
    r.expect_refused("badpos", "livepatch-cmdline.badpos.ko");
    r.expect_log(badpos_words);
    r.expect_refused("sympos0", "livepatch-version.sympos0.ko");
    r.expect_log(sympos0_words);

    assert!(!r.log.contains("Oops"), "{}", r.log);
    assert!(!r.log.contains("BUG:"), "{}", r.log);
}
