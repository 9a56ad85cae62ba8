//! The JSON that scripts read: `check --format json` and `show --format
//! json`, keys and rule ids pinned. A change here is a change for every CI
//! script that matches on them.

mod common;

use common::*;
use klp_convert::finding::Rule;
use serde_json::Value;

/// Every rule id, in declaration order. Ids are never renamed or reused.
const RULE_IDS: &[&str] = &[
    "not-elf",
    "extended-section-numbering",
    "not-livepatch",
    "klp-symbol-name",
    "klp-symbol-too-long",
    "klp-symbol-position",
    "not-livepatch-symbol",
    "klp-section-name",
    "klp-section-object",
    "klp-section-header",
    "klp-section-link",
    "klp-section-not-flagged",
    "klp-section-target",
    "target-not-alloc",
    "vmlinux-from-module-section",
    "special-section",
    "init-section",
    "offset-beyond-target",
    "ordinary-reloc-to-livepatch-symbol",
    "tool-leftover",
    "patch-table",
    "object-never-matched",
    "duplicate-sysfs-name",
    "klp-section-no-object",
    "patch-table-unread",
    "unconverted-annotation",
    "unconverted-sympos-table",
    "symbol-not-found",
    "ambiguous-symbol",
    "position-not-found",
    "load-order",
    "load-order-unchecked",
    "object-not-in-maps",
    "resolves",
    "patched-not-function",
    "unknown-symbol",
    "no-export-list",
    "name-not-representable",
    "module-export-linked",
    "malformed-annotation",
    "defined-annotation",
    "sympos-table",
    "klp-section-annotation",
    "rel-addend",
    "debug-section-left",
    "signature-dropped",
    "reloc-type",
    "x86-target-nonzero",
    "ppc64-nop-after-call",
    "ppc64-toc16",
    "ppc64-stubs",
    "arm64-plt",
    "ppc32-plt",
    "ppc32-init-plt",
    "absolute-overflow",
    "pc-relative-range",
    "s390-got-stale",
    "loongarch-got-plt",
    "loongarch-pcrel-far",
    "loongarch-pcadd-pair",
    "loongarch-got-reload",
    "loader-not-modelled",
    "late-reloc-read-only",
    "percpu-target",
    "percpu-unrelocated",
    "reload-before-6.3",
    "verify",
    "maps-not-for-module",
];

#[test]
fn rule_ids_are_pinned() {
    let ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
    assert_eq!(ids, RULE_IDS);
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// A finding: rule and severity always, location where known, message.
fn assert_finding(f: &Value) {
    for k in keys(f) {
        assert!(
            ["rule", "severity", "section", "offset", "symbol", "message"].contains(&k),
            "unexpected key {k} in {f}"
        );
    }
    assert!(RULE_IDS.contains(&f["rule"].as_str().unwrap()), "{f}");
    assert!(["error", "warning", "note"].contains(&f["severity"].as_str().unwrap()));
    assert!(f["message"].is_string());
}

/// A module with a vmlinux reference annotated but never converted and a
/// module-specific one converted: findings of several rules in both reports.
fn module(test: &str) -> std::path::PathBuf {
    let dir = scratch(test);
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}\
             extern int t KLP_RELOC_SYMBOL(klp_test_target, klp_test_target, t);\n\
             int *const ptr_in_rodata = &t;\n\
             extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);\n\
             char *f(void) {{ return saved_command_line; }}\n{}",
            klp_patch_c(&[
                (None, &[("cmdline_proc_show", 0, "f")]),
                (Some("klp_test_target"), &[])
            ])
        ),
        &obj,
    );
    obj
}

#[test]
fn check_json_schema() {
    let obj = module("schema_check");
    let r = klp_convert(&[
        "check",
        "--format",
        "json",
        "--kernel-release",
        "6.1.0-56-amd64",
        obj.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    let reports = v.as_array().unwrap();
    assert_eq!(reports.len(), 1);
    let m = &reports[0];
    assert_eq!(keys(m), ["file", "findings", "livepatch", "release"]);
    assert_eq!(m["release"], "6.1.0-56-amd64");
    assert_eq!(m["livepatch"], true);
    let findings = m["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    findings.iter().for_each(assert_finding);
    let rules: Vec<&str> = findings
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["unconverted-annotation", "unconverted-annotation"]);
    let mut symbols: Vec<&str> = findings
        .iter()
        .map(|f| f["symbol"].as_str().unwrap())
        .collect();
    symbols.sort_unstable();
    assert_eq!(
        symbols,
        [
            ".klp.sym.rela.klp_test_target.klp_test_target.t.0",
            ".klp.sym.rela.vmlinux.vmlinux.saved_command_line.0"
        ]
    );
    assert_eq!(findings[0]["section"], ".symtab");
}

#[test]
fn show_json_schema() {
    let obj = module("schema_show");
    let out = obj.with_file_name("out.o");
    let r = klp_convert(&[
        "convert",
        obj.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    for (file, unconverted) in [(&obj, 2), (&out, 0)] {
        let r = klp_convert(&["show", "--format", "json", file.to_str().unwrap()]);
        // Unconverted annotations are errors: show exits 1 after its report.
        let status = if unconverted > 0 { 1 } else { 0 };
        assert_eq!(r.status.code(), Some(status), "{}", stderr(&r));
        let v: Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(
            keys(&v),
            [
                "file",
                "findings",
                "livepatch",
                "machine",
                "objects",
                "patch",
                "summary",
                "unconverted"
            ]
        );
        assert_eq!(
            keys(&v["summary"]),
            [
                "errors",
                "klp_relocations",
                "klp_sections",
                "klp_symbols",
                "unconverted"
            ]
        );
        assert_eq!(v["summary"]["unconverted"], unconverted);
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .for_each(assert_finding);
        assert_eq!(keys(&v["patch"]), ["form", "objects"]);
        assert_eq!(v["patch"]["form"], "static");
        let o = &v["patch"]["objects"][0];
        assert_eq!(keys(o), ["funcs", "funcs_missing", "name", "place"]);
        assert_eq!(o["name"], "vmlinux");
        assert_eq!(keys(&o["place"]), ["offset", "section"]);
        let f = &o["funcs"][0];
        assert_eq!(keys(f), ["new_func", "old_name", "place", "sympos"]);
        assert_eq!(
            (&f["old_name"], &f["new_func"], &f["sympos"]),
            (&"cmdline_proc_show".into(), &"f".into(), &0.into())
        );
        for a in v["unconverted"].as_array().unwrap() {
            assert_eq!(keys(a), ["becomes", "symbol", "uses"]);
        }
        for o in v["objects"].as_array().unwrap() {
            assert_eq!(keys(o), ["object", "sections"]);
            for s in o["sections"].as_array().unwrap() {
                assert_eq!(keys(s), ["name", "relocations", "target"]);
                for r in s["relocations"].as_array().unwrap() {
                    assert_eq!(
                        keys(r),
                        [
                            "addend",
                            "offset",
                            "position",
                            "symbol",
                            "symbol_object",
                            "type"
                        ]
                    );
                }
            }
        }
    }
    let r = klp_convert(&["show", "--format", "json", out.to_str().unwrap()]);
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    let objects: Vec<&str> = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["object"].as_str().unwrap())
        .collect();
    assert_eq!(objects, ["klp_test_target", "vmlinux"]);
}
