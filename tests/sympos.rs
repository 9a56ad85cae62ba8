//! `KLP_MODULE_RELOC` / `KLP_SYMPOS` annotations (the v7 binary layout),
//! compiled by real compilers, little and big endian.

mod common;

use std::path::PathBuf;

use common::*;
use klp_convert::elf::{Elf, SHF_ALLOC, SHN_LIVEPATCH};

const MAP: &str = "\
ffffffffc0000000 t get_homonym_string\t[klp_test_target]
ffffffffc0000100 t get_homonym_string\t[klp_test_target]
ffffffffc0000200 t value_get\t[klp_test_target]
";
const SYMVERS: &str = "0x00000001\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n";

fn maps(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let k = dir.join("kallsyms");
    std::fs::write(&k, MAP).unwrap();
    let s = dir.join("Module.symvers");
    std::fs::write(&s, SYMVERS).unwrap();
    (k, s)
}

fn convert(dir: &std::path::Path, input: &std::path::Path) -> (Option<i32>, String, PathBuf) {
    let (k, s) = maps(dir);
    let out = dir.join("out.o");
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--symbols",
        k.to_str().unwrap(),
        "--symbols",
        s.to_str().unwrap(),
    ]);
    (r.status.code(), stderr(&r), out)
}

const SOURCE: &str = "
extern const char *get_homonym_string(void);
extern int value_get(void);
KLP_MODULE_RELOC(klp_test_target) relocs[] = {
	KLP_SYMPOS(value_get, 0),
	KLP_SYMPOS(get_homonym_string, 2),
};
int f(void) { return get_homonym_string()[0] + value_get(); }
";

fn check_converted(out: &std::path::Path) {
    let data = std::fs::read(out).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let mut syms: Vec<String> = elf
        .symbols
        .iter()
        .filter(|s| s.st_shndx == SHN_LIVEPATCH)
        .map(|s| s.display_name())
        .collect();
    syms.sort();
    assert_eq!(
        syms,
        [
            ".klp.sym.klp_test_target.get_homonym_string,2",
            ".klp.sym.klp_test_target.value_get,0"
        ]
    );
    // The annotation data is gone from what the kernel loads.
    let ann = elf
        .section_by_name(b".klp.module_relocs.klp_test_target")
        .unwrap();
    assert_eq!(ann.sh_size, 0);
    assert_eq!(ann.sh_flags & SHF_ALLOC, 0);
    for rs in &elf.relocs {
        if elf.sections[rs.index].sh_info as usize == ann.index {
            assert!(rs.entries.is_empty());
        }
    }
    let r = klp_convert(&["check", out.to_str().unwrap()]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
}

#[test]
fn x86_64_sympos_annotations() {
    let dir = scratch("sympos_x86_64");
    let input = dir.join("lp.o");
    compile_x86_64(&format!("{HEADER}{LIVEPATCH_MODINFO}{SOURCE}"), &input);
    let (code, err, out) = convert(&dir, &input);
    assert_eq!(code, Some(0), "{err}");
    check_converted(&out);
}

#[test]
fn big_endian_s390x_sympos_annotations() {
    let dir = scratch("sympos_s390x");
    let input = dir.join("lp.o");
    compile(
        "s390x-linux-gnu-gcc",
        &["-fPIC"],
        &format!("{HEADER}{LIVEPATCH_MODINFO}{SOURCE}"),
        &input,
    );
    let (code, err, out) = convert(&dir, &input);
    assert_eq!(code, Some(0), "{err}");
    check_converted(&out);
}

#[test]
fn entries_pair_with_relocations_by_offset() {
    // The relocations filling the pointers come in reverse order.
    let dir = scratch("sympos_order");
    let input = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{LIVEPATCH_MODINFO}
extern const char *get_homonym_string(void);
extern int value_get(void);
int f(void) {{ return get_homonym_string()[0] + value_get(); }}
__asm__(\".section .klp.module_relocs.klp_test_target,\\\"aw\\\"\\n\"
	\".quad 0\\n.long 2\\n.quad 0\\n.long 0\\n\"
	\".reloc 12, R_X86_64_64, value_get\\n\"
	\".reloc 0, R_X86_64_64, get_homonym_string\\n.previous\");
"
        ),
        &input,
    );
    let (code, err, out) = convert(&dir, &input);
    assert_eq!(code, Some(0), "{err}");
    check_converted(&out);
}

#[test]
fn annotation_mistakes_are_refused() {
    for (name, body, words) in [
        (
            "conflict",
            "extern int value_get(void);\n\
             KLP_MODULE_RELOC(klp_test_target) a[] = { KLP_SYMPOS(value_get, 0) };\n\
             KLP_MODULE_RELOC(klp_test_target) b[] = { KLP_SYMPOS(value_get, 1) };\n\
             int f(void) { return value_get(); }\n",
            "conflicting annotations for 'value_get'",
        ),
        (
            "unused",
            "extern int value_get(void);\n\
             KLP_MODULE_RELOC(klp_test_target) a[] = { KLP_SYMPOS(value_get, 0) };\n\
             int f(void) { return 0; }\n",
            "KLP_SYMPOS annotation that nothing in the module uses",
        ),
        (
            "beyond",
            "extern const char *get_homonym_string(void);\n\
             KLP_MODULE_RELOC(klp_test_target) a[] = { KLP_SYMPOS(get_homonym_string, 3) };\n\
             int f(void) { return get_homonym_string()[0]; }\n",
            "annotated 'get_homonym_string' in klp_test_target: position 3 is beyond the count: the object has 2",
        ),
    ] {
        let dir = scratch(&format!("sympos_{name}"));
        let input = dir.join("lp.o");
        compile_x86_64(&format!("{HEADER}{LIVEPATCH_MODINFO}{body}"), &input);
        let (code, err, out) = convert(&dir, &input);
        assert_eq!(code, Some(1), "{name}: {err}");
        assert!(err.contains(words), "{name}: {err}");
        assert!(!out.exists());
    }
}
