//! `klp-convert build` on Debian's real, unpatched kbuild (6.1 lists `.ko` in
//! modules.order, 6.12 `.o`): plain C to a converted, checked livepatch in
//! one command; what modpost only warned about is refused, in a livepatch
//! module and in an ordinary one beside it; a second build changes
//! nothing. tests/kernel_e2e.rs loads modules built this way.
//!
//! In the fast tier, a stand-in kbuild (a Makefile that makes nothing, a
//! `Module.symvers`, modules compiled by the test) checks what `build` lets
//! through of the undefined names, as kbuild's modpost with the kbuild
//! patch would.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

const LIVEPATCH: &str = r#"// A livepatch fragment in plain C.
#include <linux/module.h>
extern char *saved_command_line;
extern int SYMBOL(const char *fmt, ...);
const char *klp_build_cmdline(void);
int klp_build_value(void);
const char *klp_build_cmdline(void) { return saved_command_line; }
int klp_build_value(void) { return SYMBOL("%s", "value"); }
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
"#;

const HELPER: &str = r#"// Not a livepatch: left as built.
#include <linux/module.h>
int klp_build_helper(void);
int klp_build_helper(void) { return 42; }
MODULE_LICENSE("GPL");
"#;

/// A module directory: the livepatch (referencing `symbol`) and a helper.
fn sources(dir: &Path, symbol: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("Kbuild"),
        "obj-m := klp_build_lp.o klp_build_helper.o\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("klp_build_lp.c"),
        LIVEPATCH.replace("SYMBOL", symbol),
    )
    .unwrap();
    std::fs::write(dir.join("klp_build_helper.c"), HELPER).unwrap();
}

fn build(kernel: &Path, dir: &Path, maps: &[PathBuf]) -> Output {
    klp_convert_build(&kernel.join("build"), dir, maps, &[])
}

fn show(ko: &Path) -> serde_json::Value {
    let r = klp_convert(&["show", "--format", "json", ko.to_str().unwrap()]);
    serde_json::from_slice(&r.stdout).expect("show --format json")
}

fn builds(series: &str) {
    let kernel = kernel_dir(series);
    let vmlinux = kernel.join("dbg/vmlinux");
    let work = scratch(&format!("build-{series}"));

    // Plain C against the target kernel's vmlinux: converted and checked.
    // `_printk` is exported and stays an ordinary relocation.
    let dir = work.join("good");
    sources(&dir, "_printk");
    let r = build(&kernel, &dir, std::slice::from_ref(&vmlinux));
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(0), "{err}");
    let lp = dir.join("klp_build_lp.ko");
    assert!(
        err.contains("klp_build_helper.ko: not a livepatch module (no livepatch=Y): left as built"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "build: 1 livepatch module ready: {}",
            lp.display()
        )),
        "{err}"
    );
    let v = show(&lp);
    let text = v.to_string();
    assert_eq!(v["summary"]["errors"], 0, "{text}");
    assert!(text.contains("saved_command_line"), "{text}");
    assert!(!text.contains("_printk"), "{text}");
    assert!(!show(&dir.join("klp_build_helper.ko"))
        .to_string()
        .contains("saved_command_line"));
    let r = klp_convert(&[
        "check",
        lp.to_str().unwrap(),
        "--symbols",
        vmlinux.to_str().unwrap(),
        "--symbols",
        kernel.join("build/Module.symvers").to_str().unwrap(),
    ]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );

    // A second build changes nothing.
    let before = std::fs::read(&lp).unwrap();
    let r = build(&kernel, &dir, std::slice::from_ref(&vmlinux));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    assert_eq!(std::fs::read(&lp).unwrap(), before);

    // A name nothing has: modpost only warned, the build refuses it.
    let dir = work.join("missing");
    sources(&dir, "klp_build_no_such_symbol");
    let r = build(&kernel, &dir, std::slice::from_ref(&vmlinux));
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("symbol 'klp_build_no_such_symbol': not exported, and no object in the symbol maps has it"),
        "{err}"
    );
    assert!(
        err.contains("1 livepatch module refused, left unconverted"),
        "{err}"
    );

    // An ordinary module calling a function that exists nowhere: modpost
    // only warned, the build fails as kbuild's would, naming it. The
    // livepatch beside it, with real klp references, is converted.
    let dir = work.join("undefined");
    sources(&dir, "_printk");
    std::fs::write(
        dir.join("klp_build_helper.c"),
        "#include <linux/module.h>\nint klp_build_nowhere(void);\n\
         int klp_build_helper(void);\n\
         int klp_build_helper(void) { return klp_build_nowhere(); }\n\
         MODULE_LICENSE(\"GPL\");\n",
    )
    .unwrap();
    let r = build(&kernel, &dir, std::slice::from_ref(&vmlinux));
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    let helper = dir.join("klp_build_helper.ko");
    assert!(
        err.contains(&format!(
            "klp-convert: error: {}: undefined symbol 'klp_build_nowhere' (in no Module.symvers or KBUILD_EXTRA_SYMBOLS list): kbuild would stop here, and the kernel would refuse the module",
            helper.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "klp-convert: error: build: 1 module with undefined symbols, which kbuild would not have built: {}",
            helper.display()
        )),
        "{err}"
    );
    assert_eq!(err.matches("undefined symbol '").count(), 1, "{err}");
    let lp = dir.join("klp_build_lp.ko");
    let converted = format!("klp-convert: {}: ", lp.display());
    assert!(
        err.lines()
            .any(|l| l.starts_with(&converted) && l.contains("moved into")),
        "{err}"
    );
    assert!(show(&lp).to_string().contains("saved_command_line"));
    // A second build, with nothing to remake (modpost says nothing now),
    // fails the same way.
    let r = build(&kernel, &dir, std::slice::from_ref(&vmlinux));
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains("undefined symbol 'klp_build_nowhere'"));

    // No map of the target's symbols: only kbuild's exports to go on.
    let dir = work.join("nomap");
    sources(&dir, "_printk");
    let r = build(&kernel, &dir, &[]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "symbol 'saved_command_line': not exported, and the symbol maps hold exports only"
        ),
        "{err}"
    );

    // Warning mode relaxes unresolved names only: modpost's other errors
    // still stop the build.
    let dir = work.join("gpl");
    sources(&dir, "_printk");
    std::fs::write(
        dir.join("klp_build_helper.c"),
        "#include <linux/module.h>\n#include <linux/livepatch.h>\n\
         int klp_build_helper(void);\n\
         int klp_build_helper(void) { return klp_enable_patch(NULL); }\n\
         MODULE_LICENSE(\"Proprietary\");\n",
    )
    .unwrap();
    let r = build(&kernel, &dir, std::slice::from_ref(&vmlinux));
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "GPL-incompatible module klp_build_helper.ko uses GPL-only symbol 'klp_enable_patch'"
        ),
        "{err}"
    );

    // A compile error is the build's failure, reported as such.
    let dir = work.join("broken");
    sources(&dir, "_printk");
    std::fs::write(dir.join("klp_build_helper.c"), "this is not C;\n").unwrap();
    let r = build(&kernel, &dir, std::slice::from_ref(&vmlinux));
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains("modules failed"), "{err}");
}

#[test]
#[ignore = "tier 2: needs Debian kernel packages (scripts/fetch-kernels); scripts/test runs it"]
fn build_debian_6_1() {
    builds("6.1");
}

#[test]
#[ignore = "tier 2: needs Debian kernel packages (scripts/fetch-kernels); scripts/test runs it"]
fn build_debian_6_12() {
    builds("6.12");
}

/// An ordinary module for the stand-in kbuild: an exported function, a
/// weak reference, `__this_module`, and `extra` (C) in its function.
fn plain_module(extra: &str) -> String {
    format!(
        "extern int printk(const char *, ...);\n\
         extern int klp_build_maybe(void) __attribute__((weak));\n\
         extern char __this_module[];\n\
         {extra}\n\
         long klp_build_helper(void);\n\
         long klp_build_helper(void) {{ return printk(\"x\") + (long)__this_module\n\
         + (klp_build_maybe ? klp_build_maybe() : 0) + EXTRA; }}\n"
    )
}

/// A stand-in kbuild whose `make modules` makes nothing, with a
/// `Module.symvers` that exports `printk`; and a module directory with
/// `modules`, each (name, C source) compiled for it, listed in
/// modules.order.
fn stand_in(test: &str, modules: &[(&str, String)]) -> (PathBuf, PathBuf) {
    let work = scratch(test);
    let kb = work.join("kbuild");
    let dir = work.join("m");
    std::fs::create_dir_all(&kb).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(kb.join("Makefile"), "modules:\n\t@true\n").unwrap();
    std::fs::write(
        kb.join("Module.symvers"),
        "0x00000000\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n",
    )
    .unwrap();
    let mut order = String::new();
    for (name, source) in modules {
        compile_x86_64(source, &dir.join(format!("{name}.ko")));
        order += &format!("{name}.o\n");
    }
    std::fs::write(dir.join("modules.order"), order).unwrap();
    (kb, dir)
}

/// A livepatch with a real klp reference (an annotation), and `extra` C.
fn annotated_livepatch(extra: &str) -> String {
    format!(
        "{HEADER}{LIVEPATCH_MODINFO}\
         extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);\n\
         extern int printk(const char *, ...);\n{extra}\n\
         long klp_build_lp(void);\n\
         long klp_build_lp(void) {{ return printk(saved_command_line) + EXTRA; }}\n"
    )
}

#[test]
fn build_fails_like_kbuild_on_an_undefined_symbol() {
    let ok = "#define EXTRA 0";
    let calls_nothing =
        "extern long klp_build_no_such_fn(void);\n#define EXTRA klp_build_no_such_fn()";
    let (kb, dir) = stand_in(
        "build_undefined",
        &[
            ("klp_build_lp", annotated_livepatch(ok)),
            ("klp_build_helper", plain_module(calls_nothing)),
        ],
    );
    let r = klp_convert_build(&kb, &dir, &[], &[]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    let (lp, helper) = (dir.join("klp_build_lp.ko"), dir.join("klp_build_helper.ko"));
    assert!(
        err.contains(&format!(
            "klp-convert: error: {}: undefined symbol 'klp_build_no_such_fn' (in no Module.symvers or KBUILD_EXTRA_SYMBOLS list): kbuild would stop here, and the kernel would refuse the module\n",
            helper.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "klp-convert: error: build: 1 module with undefined symbols, which kbuild would not have built: {}\n",
            helper.display()
        )),
        "{err}"
    );
    // Only that name: the export, the weak reference and __this_module pass.
    assert_eq!(err.matches("undefined symbol '").count(), 1, "{err}");
    assert!(!err.contains("ready"), "{err}");
    // The livepatch beside it was converted all the same, and loads.
    assert!(
        err.contains(&format!(
            "{}: 1 relocation of 1 symbol moved into 1 klp section",
            lp.display()
        )),
        "{err}"
    );
    let r = klp_convert(&["check", lp.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stdout));

    // The same build once the name is exported by a list kbuild reads
    // (KBUILD_EXTRA_SYMBOLS set in the module's own Kbuild: modpost's
    // command line, in .Module.symvers.cmd, says so).
    let extra = dir.join("other.symvers");
    std::fs::write(
        &extra,
        "0x00000000\tklp_build_no_such_fn\tother/mod\tEXPORT_SYMBOL\t\n",
    )
    .unwrap();
    std::fs::write(
        dir.join(".Module.symvers.cmd"),
        format!(
            "savedcmd_{0}/Module.symvers := scripts/mod/modpost -M -m -a -E -w -o {0}/Module.symvers -T modules.order -i Module.symvers -e -i {1}\n",
            dir.display(),
            extra.display()
        ),
    )
    .unwrap();
    let r = klp_convert_build(&kb, &dir, &[], &[]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "{}: not a livepatch module (no livepatch=Y): left as built",
            helper.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "build: 1 livepatch module ready: {}",
            lp.display()
        )),
        "{err}"
    );
}

#[test]
fn build_fails_on_what_a_livepatch_module_keeps_undefined() {
    // Referenced from a section the loader does not relocate only, the name
    // is not converted, and the loader would not find it.
    let unconverted = "asm(\".section .klp_build_notes,\\\"\\\",@progbits\\n.quad klp_build_unlinked\\n.previous\");\n#define EXTRA 0";
    // An annotation in an ordinary module: modpost lets it through in
    // livepatch modules only.
    let annotation = "#include \"klp_convert.h\"\n\
        extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\n#define EXTRA v";
    let (kb, dir) = stand_in(
        "build_undefined_lp",
        &[
            ("klp_build_lp", annotated_livepatch(unconverted)),
            ("klp_build_helper", plain_module(annotation)),
        ],
    );
    let r = klp_convert_build(&kb, &dir, &[], &[]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    let (lp, helper) = (dir.join("klp_build_lp.ko"), dir.join("klp_build_helper.ko"));
    // The conversion refuses what it leaves undefined (its own rule)...
    assert!(
        err.contains(&format!(
            "{}: section .symtab, symbol 'klp_build_unlinked': the module: Unknown symbol klp_build_unlinked (err -2)",
            lp.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "build: 1 livepatch module refused, left unconverted (the kernel would refuse it): {}",
            lp.display()
        )),
        "{err}"
    );
    // ... and the ordinary module beside it fails on the annotation.
    assert!(
        err.contains(&format!(
            "{}: undefined symbol '.klp.sym.rela.vmlinux.vmlinux.v.0' (in no Module.symvers or KBUILD_EXTRA_SYMBOLS list): kbuild would stop here",
            helper.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "build: 1 module with undefined symbols, which kbuild would not have built: {}",
            helper.display()
        )),
        "{err}"
    );

    // Without the kernel's Module.symvers kbuild knows no export at all,
    // and the conversion has no map to check against: a livepatch module
    // that converts keeps an undefined name, and the build fails on it.
    let (kb, dir) = stand_in(
        "build_no_symvers",
        &[("klp_build_lp", annotated_livepatch("#define EXTRA 0"))],
    );
    std::fs::remove_file(kb.join("Module.symvers")).unwrap();
    let lp = dir.join("klp_build_lp.ko");
    let r = klp_convert_build(&kb, &dir, &[], &[]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{}: undefined symbol 'printk' (in no Module.symvers or KBUILD_EXTRA_SYMBOLS list, and not a klp symbol)",
            lp.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "({}/Module.symvers is missing: kbuild knows no export of the kernel)",
            kb.display()
        )),
        "{err}"
    );
}

#[test]
fn build_needs_a_kernel_build_directory() {
    let dir = scratch("build-no-kbuild");
    let r = klp_convert(&["build", dir.to_str().unwrap(), "-C", dir.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        stderr(&r).contains("not a kernel build directory (no Makefile)"),
        "{}",
        stderr(&r)
    );
}
