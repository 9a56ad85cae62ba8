//! `klp-convert build` on Debian's real, unpatched kbuild (6.1 lists `.ko` in
//! modules.order, 6.12 `.o`): plain C to a converted, checked livepatch in
//! one command; what modpost only warned about is refused; a second build
//! changes nothing. tests/kernel_e2e.rs loads modules built this way.

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
        err.contains("symbol 'klp_build_no_such_symbol': 'klp_build_no_such_symbol' is not exported and no object in the symbol maps has it"),
        "{err}"
    );
    assert!(
        err.contains("1 livepatch module refused, left unconverted"),
        "{err}"
    );

    // No map of the target's symbols: only kbuild's exports to go on.
    let dir = work.join("nomap");
    sources(&dir, "_printk");
    let r = build(&kernel, &dir, &[]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("'saved_command_line' is not exported, and the symbol maps hold exports only"),
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
