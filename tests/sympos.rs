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
        if elf.sections.at(rs.index).sh_info as usize == ann.index {
            assert!(rs.is_empty());
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
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
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
            "symbol position 3 for symbol 'get_homonym_string' in object 'klp_test_target' not found: it has 2",
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

/// A v7 module that was never converted: its `KLP_MODULE_RELOC` table is
/// still there and its references are plain undefined names. `check`
/// refuses it without maps (rule `unconverted-sympos-table`), and `show`
/// counts the table's entries as unconverted annotations.
#[test]
fn unconverted_v7_module_is_refused_by_check_and_counted_by_show() {
    let dir = scratch("sympos_unconverted");
    let input = dir.join("lp.o");
    compile_x86_64(&format!("{HEADER}{LIVEPATCH_MODINFO}{SOURCE}"), &input);
    let r = klp_convert(&["check", input.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&r.stdout).into_owned();
    assert_eq!(r.status.code(), Some(1), "{text}");
    assert!(
        text.contains("error: section .klp.module_relocs.klp_test_target: unconverted KLP_MODULE_RELOC table (2 KLP_SYMPOS references)"),
        "{text}"
    );
    let r = klp_convert(&["check", "--format", "json", input.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(
        v[0]["findings"][0]["rule"], "unconverted-sympos-table",
        "{v}"
    );

    let r = klp_convert(&["show", input.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&r.stdout).into_owned();
    assert!(
        text.contains("2 unconverted annotations, 1 error"),
        "{text}"
    );
    assert!(
        text.contains("get_homonym_string -> .klp.sym.klp_test_target.get_homonym_string,2 in .klp.rela.klp_test_target.* (KLP_SYMPOS)"),
        "{text}"
    );
    assert!(text.contains("used at .rela.text.f+0x"), "{text}");

    // Converted, the table is emptied: both commands agree it is done.
    let (code, err, out) = convert(&dir, &input);
    assert_eq!(code, Some(0), "{err}");
    let r = klp_convert(&["show", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&r.stdout).into_owned();
    assert!(
        text.contains("0 unconverted annotations, 0 errors"),
        "{text}"
    );
}

/// Compile a livepatch that calls `get_homonym_string` and `value_get`,
/// with `tables` (its `KLP_MODULE_RELOC` tables), and convert it with the
/// maps: (exit code, stderr, output path).
fn convert_v7(test: &str, tables: &str) -> (Option<i32>, String, PathBuf) {
    let dir = scratch(test);
    let input = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}
extern const char *get_homonym_string(void);
extern int value_get(void);
{tables}
int f(void) {{ return get_homonym_string()[0] + value_get(); }}
"
        ),
        &input,
    );
    convert(&dir, &input)
}

/// One conflicting `KLP_SYMPOS` entry is reported alone: the other entries
/// still count as annotations, so their symbols are not called ambiguous.
#[test]
fn a_conflict_does_not_unannotate_the_other_entries() {
    let (code, err, out) = convert_v7(
        "sympos_conflict_alone",
        "KLP_MODULE_RELOC(klp_test_target) a[] = { KLP_SYMPOS(value_get, 0), KLP_SYMPOS(get_homonym_string, 2) };\n\
         KLP_MODULE_RELOC(klp_test_target) b[] = { KLP_SYMPOS(value_get, 1) };\n",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("conflicting annotations for 'value_get'"),
        "{err}"
    );
    assert!(!err.contains("ambiguous"), "{err}");
    assert!(err.contains("refused (1 problem)"), "{err}");
    assert!(!out.exists());
}

/// The fix-it lines for an ambiguous plain reference are written in the
/// annotation style the module uses: `KLP_SYMPOS` table entries for a v7
/// module.
#[test]
fn ambiguity_hints_follow_the_module_style() {
    let (code, err, _) = convert_v7(
        "sympos_hint_style",
        "KLP_MODULE_RELOC(klp_test_target) a[] = { KLP_SYMPOS(value_get, 0) };\n",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("symbol 'get_homonym_string': ambiguous: 2 candidates in the symbol maps; add to the module's KLP_MODULE_RELOC table the entry with the one meant:"),
        "{err}"
    );
    assert!(
        err.contains("KLP_MODULE_RELOC(klp_test_target) { KLP_SYMPOS(get_homonym_string, 2) } /* 0xffffffffc0000100 */"),
        "{err}"
    );
    assert!(!err.contains("KLP_RELOC_SYMBOL_POS"), "{err}");
}
