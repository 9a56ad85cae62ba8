//! The README's first command, `scripts/demo`, does what it shows: the
//! annotated example converts, the plain-C example is refused while
//! ambiguous (with both candidates) and converts with its KLP_SYMPOS table.

mod common;

use std::process::Command;

use common::*;

#[test]
fn demo_shows_both_forms() {
    let dir = scratch("demo");
    let out = Command::new("bash")
        .arg(root().join("scripts/demo"))
        .env("KLP_CONVERT", env!("CARGO_BIN_EXE_klp-convert"))
        .env("KLP_DEMO_DIR", &dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    for want in [
        "annotated.o: 2 relocations of 2 symbols moved into 2 klp sections",
        ".klp.sym.vmlinux.saved_command_line,0 - 4",
        ".klp.sym.klp_test_target.get_homonym_string,2 - 4",
        "symbol 'get_homonym_string': ambiguous: 2 candidates",
        "KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, get_homonym_string, 1) /* .text.get_homonym_string+0x0 in target_a.c */",
        "KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, get_homonym_string, 2) /* .text.get_homonym_string+0x10 in target_b.c */",
        "plain-ambiguous.o: refused (1 problem); nothing written",
        "plain.o: 2 relocations of 2 symbols moved into 2 klp sections",
    ] {
        assert!(text.contains(want), "demo output lacks {want:?}:\n{text}");
    }
    assert!(!dir.join("plain-ambiguous.klp.o").exists());
    // sprintf is exported by vmlinux: it stays an ordinary relocation.
    let show = klp_convert(&["show", dir.join("plain.klp.o").to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(!shown.contains("sprintf"), "{shown}");
    assert!(shown.contains("get_homonym_string pos 2"), "{shown}");
    assert!(shown.contains("saved_command_line pos 0"), "{shown}");
}
