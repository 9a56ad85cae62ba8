//! What fuzzing found, kept: every `fuzz/corpus/*/regression-*` input (a
//! crash or a broken invariant, fixed since) goes through `show`, `check`
//! (with the `convert_map` target's map) and `convert` without a panic, and
//! a conversion it accepts converts again to the same bytes.

mod common;

use common::*;

/// The map of fuzz/fuzz_targets/convert_map.rs, as files.
fn maps(dir: &std::path::Path) -> [std::path::PathBuf; 2] {
    let kallsyms = dir.join("kallsyms");
    std::fs::write(
        &kallsyms,
        "ffffffff81000000 T _text\nffffffff81000100 t dup\nffffffff81000200 t dup\n\
         ffffffff81000300 D saved_command_line\nffffffff81000400 T printk\n\
         ffffffff82000000 B _end\n0000000000000010 t helper\t[some_mod]\n",
    )
    .unwrap();
    let symvers = dir.join("Module.symvers");
    std::fs::write(&symvers, "0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n").unwrap();
    [kallsyms, symvers]
}

#[test]
fn fuzz_findings_stay_fixed() {
    let dir = scratch("fuzz_regressions");
    let [kallsyms, symvers] = maps(&dir);
    let mut inputs = Vec::new();
    for target in std::fs::read_dir(root().join("fuzz/corpus"))
        .unwrap()
        .flatten()
    {
        for e in std::fs::read_dir(target.path()).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("regression-") {
                inputs.push(e.path());
            }
        }
    }
    assert!(inputs.len() >= 2, "{inputs:?}");
    for input in &inputs {
        let file = input.to_str().unwrap();
        let out = dir.join("out.o");
        let _ = std::fs::remove_file(&out);
        for args in [
            vec!["show", file],
            vec!["check", file],
            vec![
                "check",
                file,
                "--symbols",
                kallsyms.to_str().unwrap(),
                "--symbols",
                symvers.to_str().unwrap(),
            ],
            vec!["convert", file, "-o", out.to_str().unwrap()],
        ] {
            let r = klp_convert(&args);
            assert!(
                matches!(r.status.code(), Some(0..=2)),
                "{args:?}: {:?}\n{}",
                r.status,
                stderr(&r)
            );
            assert!(!stderr(&r).contains("panicked"), "{args:?}: {}", stderr(&r));
        }
        if out.exists() {
            let again = dir.join("again.o");
            let r = convert_o(&out, &again);
            assert!(r.status.success(), "{file}: {}", stderr(&r));
            assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
        }
    }
}
