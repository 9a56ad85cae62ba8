//! The patched functions: `check` and `show` read a module's `klp_patch` →
//! `klp_object` → `klp_func` tables (C's static form and objtool's
//! `.init.klp_objects`), and resolve each `old_name`/`old_sympos` as
//! `klp_find_object_symbol` does; `convert` refuses the same modules.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn check(file: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["check", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let r = klp_convert(&args);
    (
        r.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&r.stdout).into_owned(),
    )
}

/// A livepatch module (no klp references) with `table` appended.
fn module(test: &str, table: &str) -> PathBuf {
    let dir = scratch(test);
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{LIVEPATCH_MODINFO}\
             int new_dup(void) {{ return 1; }}\n\
             int new_uniq(void) {{ return 2; }}\n\
             int new_mod(void) {{ return 3; }}\n\
             {table}"
        ),
        &obj,
    );
    obj
}

/// vmlinux has `dup` twice and `uniq` once; `some_mod` is not in the map.
fn kallsyms(dir: &Path) -> PathBuf {
    let map = dir.join("kallsyms");
    std::fs::write(
        &map,
        "ffffffff81000200 t dup\nffffffff81000100 t dup\nffffffff81000300 T uniq\n",
    )
    .unwrap();
    let symvers = dir.join("Module.symvers");
    std::fs::write(&symvers, "0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n").unwrap();
    map
}

fn table(dup_pos: u64) -> String {
    klp_patch_c(&[
        (
            None,
            &[("dup", dup_pos, "new_dup"), ("uniq", 0, "new_uniq")],
        ),
        (Some("some_mod"), &[("mfn", 0, "new_mod")]),
    ])
}

#[test]
fn a_twice_defined_function_needs_its_position() {
    for (pos, code, expect) in [
        (0, 1, "error: section .data.funcs_0, offset 0x0, symbol 'dup': patched function: unresolvable ambiguity for symbol 'dup' in object '(null)': vmlinux has 2 candidates (position 1 at 0xffffffff81000100, position 2 at 0xffffffff81000200); give the 1-based position [klp_func.old_sympos is 0]"),
        (2, 0, "note: section .data.funcs_0, offset 0x0, symbol 'dup': patched function resolves to 0xffffffff81000200 in vmlinux (position 2 of 2)"),
        (3, 1, "error: section .data.funcs_0, offset 0x0, symbol 'dup': patched function: symbol position 3 for symbol 'dup' in object 'vmlinux' not found: it has 2"),
    ] {
        let obj = module(&format!("patched_dup_{pos}"), &table(pos));
        let map = kallsyms(obj.parent().unwrap());
        let (c, text) = check(&obj, &["--symbols", map.to_str().unwrap()]);
        assert_eq!(c, code, "{pos}: {text}");
        assert!(text.contains(expect), "{pos}: {text}");
        // The second function of the array: the stride was found.
        assert!(
            text.contains("section .data.funcs_0, offset 0x98, symbol 'uniq': patched function resolves to 0xffffffff81000300 in vmlinux (position 1 of 1)"),
            "{pos}: {text}"
        );
        assert!(
            text.contains("warning: section .data.funcs_1, offset 0x0, symbol 'mfn': object 'some_mod' is not in the symbol maps given: patched function 'mfn' was not resolved"),
            "{pos}: {text}"
        );
        // convert judges by the same rules: it refuses what check refuses.
        let out = obj.with_file_name("out.o");
        let symvers = map.with_file_name("Module.symvers");
        let r = klp_convert(&[
            "convert",
            "--symbols",
            map.to_str().unwrap(),
            "--symbols",
            symvers.to_str().unwrap(),
            obj.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(code), "{pos}: {}", stderr(&r));
        assert_eq!(out.exists(), code == 0, "{pos}");
        if code == 1 {
            assert!(
                stderr(&r).contains("patched function:"),
                "{pos}: {}",
                stderr(&r)
            );
        }
    }
}

#[test]
fn a_missing_function_is_not_found() {
    let obj = module(
        "patched_missing",
        &klp_patch_c(&[(None, &[("gone", 0, "new_dup")])]),
    );
    let map = kallsyms(obj.parent().unwrap());
    let (c, text) = check(&obj, &["--symbols", map.to_str().unwrap()]);
    assert_eq!(c, 1, "{text}");
    assert!(
        text.contains("patched function: symbol 'gone' not found in symbol table (object vmlinux)"),
        "{text}"
    );
}

#[test]
fn show_lists_the_patched_functions() {
    let obj = module("patched_show", &table(2));
    let r = klp_convert(&["show", obj.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        text.contains(
            "patched functions (struct klp_patch)\n  object vmlinux\n    dup pos 2 -> new_dup\n    uniq pos 0 -> new_uniq\n  object some_mod\n    mfn pos 0 -> new_mod\n"
        ),
        "{text}"
    );
}

/// `CONFIG_DEBUG_KOBJECT_RELEASE` makes `struct kobject` 152 bytes, so
/// `klp_func` 240 and `klp_object` 256: read as well.
#[test]
fn debug_kobject_layout_is_read() {
    let c = table(2)
        .replace("char internal[128]", "char internal[216]")
        .replace("char internal[112]", "char internal[200]");
    let obj = module("patched_debug_kobject", &c);
    let r = klp_convert(&["show", obj.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        text.contains("    uniq pos 0 -> new_uniq\n  object some_mod\n    mfn pos 0 -> new_mod\n"),
        "{text}"
    );
}

/// The refusals of `klp_init_func` and `klp_init_object`, without maps.
#[test]
fn malformed_tables_are_refused() {
    let long = "m".repeat(56);
    for (name, c, expect) in [
        (
            "no_new_func",
            klp_patch_c(&[(None, &[("uniq", 0, "0")])]),
            "error: section .data.funcs_0, offset 0x0, symbol 'uniq': klp_func for 'uniq' has no new_func: klp_init_func refuses the patch",
        ),
        (
            "null_funcs",
            klp_patch_c(&[
                (None, &[("uniq", 0, "new_uniq")]),
                (Some("some_mod"), &[("mfn", 0, "new_mod")]),
            ])
            .replace(".funcs = funcs_1", ".funcs = 0, .callbacks = { (void *)funcs_1 }"),
            "error: section .data.objs, offset 0xa8: klp_object 'some_mod' has no funcs array (NULL): klp_init_patch_early refuses the patch",
        ),
        (
            "long_object",
            klp_patch_c(&[(Some(long.as_str()), &[("uniq", 0, "new_uniq")])]),
            "is 56 bytes, MODULE_NAME_LEN is 56: klp_init_object refuses it",
        ),
    ] {
        let obj = module(&format!("patched_malformed_{name}"), &c);
        let (code, text) = check(&obj, &[]);
        assert_eq!(code, 1, "{name}: {text}");
        assert!(text.contains(expect), "{name}: {text}");
        let out = obj.with_file_name("out.o");
        let r = klp_convert(&["convert", obj.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        assert_eq!(r.status.code(), Some(1), "{name}: {}", stderr(&r));
        assert!(!out.exists(), "{name}");
    }
}

/// objtool klp-build's form: `.init.klp_objects` (`struct klp_object_ext`)
/// and `.init.klp_funcs` (`struct klp_func_ext`), as its `init.c` reads them.
#[test]
fn objtool_form_is_read() {
    let c = "struct klp_func_ext { const char *old_name; void *new_func; unsigned long sympos; };\n\
             struct klp_callbacks { void *pre_patch, *post_patch, *pre_unpatch, *post_unpatch; _Bool post_unpatch_enabled; };\n\
             struct klp_object_ext { const char *name; struct klp_func_ext *funcs; struct klp_callbacks callbacks; unsigned int nr_funcs; };\n\
             static struct klp_func_ext funcs[] __attribute__((section(\".init.klp_funcs\"), used)) = {\n\
               { .old_name = \"uniq\", .new_func = new_uniq, .sympos = 0 },\n\
               { .old_name = \"dup\", .new_func = new_dup, .sympos = 0 },\n\
             };\n\
             static struct klp_object_ext objs[] __attribute__((section(\".init.klp_objects\"), used)) = {\n\
               { .name = 0, .funcs = funcs, .nr_funcs = 2 },\n\
             };\n";
    let obj = module("patched_objtool", c);
    let r = klp_convert(&["show", obj.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        text.contains("patched functions (objtool .init.klp_objects)\n  object vmlinux\n    uniq pos 0 -> new_uniq\n    dup pos 0 -> new_dup\n"),
        "{text}"
    );
    let map = kallsyms(obj.parent().unwrap());
    let (code, text) = check(&obj, &["--symbols", map.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("error: section .init.klp_funcs, offset 0x18, symbol 'dup': patched function: unresolvable ambiguity for symbol 'dup' in object '(null)': vmlinux has 2 candidates"),
        "{text}"
    );
    assert!(
        text.contains("[klp_func_ext.sympos (objtool) is 0]"),
        "{text}"
    );
}

/// An object with callbacks only has an empty `funcs` array: the kernel
/// takes it (samples/livepatch/livepatch-callbacks-demo.c's vmlinux).
#[test]
fn an_empty_funcs_array_is_fine() {
    let c = klp_patch_c(&[(None, &[]), (Some("some_mod"), &[("mfn", 0, "new_mod")])]);
    let obj = module("patched_empty", &c);
    let (code, text) = check(&obj, &[]);
    assert_eq!(code, 0, "{text}");
    let r = klp_convert(&["show", obj.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        text.contains("  object vmlinux\n  object some_mod\n    mfn pos 0 -> new_mod\n"),
        "{text}"
    );
}

/// A linked livepatch module whose tables cannot be found gets a note, not
/// an error.
#[test]
fn a_table_built_at_run_time_is_a_note() {
    let obj = module("patched_none", THIS_MODULE);
    let (code, text) = check(&obj, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        text,
        format!(
            "{}: ok\n  note: no static klp_patch or objtool .init.klp_objects table found: the patched functions (klp_func old_name, old_sympos) were not checked\n",
            obj.display()
        )
    );
}

/// An object file of a livepatch module gets no such note: its tables may
/// be in another of the module's objects.
#[test]
fn an_object_file_has_no_patch_table_note() {
    let obj = module("patched_object", "");
    let (code, text) = check(&obj, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(text, format!("{}: ok\n", obj.display()));
    let r = klp_convert(&["show", obj.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(0));
    let shown = String::from_utf8_lossy(&r.stdout);
    assert!(!shown.contains("note:"), "{shown}");
}

/// Only a `livepatch=Y` module's tables are read (`klp_enable_patch`
/// refuses any other): an ordinary module's struct that starts with
/// `THIS_MODULE` is not a `klp_patch` (Debian's pata_pcmcia has such).
#[test]
fn ordinary_modules_have_no_patch_table() {
    let dir = scratch("patched_ordinary");
    let obj = dir.join("mod.o");
    compile_x86_64(
        &format!(
            "int new_dup(void) {{ return 1; }}\n{}",
            klp_patch_c(&[(None, &[("dup", 0, "new_dup")])])
        ),
        &obj,
    );
    let r = klp_convert(&["show", "--format", "json", obj.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(v.get("patch").is_none(), "{v}");
    let (code, text) = check(&obj, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("klp_"), "{text}");
}

/// objtool's init allocates each object's `klp_func` array itself: a NULL
/// `funcs` with `nr_funcs` 0 is an object without functions, which the
/// kernel takes; with `nr_funcs` 2, init reads two entries through NULL.
#[test]
fn objtool_null_funcs_with_no_functions_is_fine() {
    let decls = "struct klp_func_ext { const char *old_name; void *new_func; unsigned long sympos; };\n\
             struct klp_callbacks { void *pre_patch, *post_patch, *pre_unpatch, *post_unpatch; _Bool post_unpatch_enabled; };\n\
             struct klp_object_ext { const char *name; struct klp_func_ext *funcs; struct klp_callbacks callbacks; unsigned int nr_funcs; };\n\
             static struct klp_func_ext funcs[] __attribute__((section(\".init.klp_funcs\"), used)) = {\n\
               { .old_name = \"uniq\", .new_func = new_uniq, .sympos = 0 },\n\
             };\n";
    for (nr, code) in [(0, 0), (2, 1)] {
        let c = format!(
            "{decls}static struct klp_object_ext objs[] __attribute__((section(\".init.klp_objects\"), used)) = {{\n\
               {{ .name = 0, .funcs = funcs, .nr_funcs = 1 }},\n\
               {{ .name = \"some_mod\", .funcs = 0, .nr_funcs = {nr} }},\n\
             }};\n"
        );
        let obj = module(&format!("patched_objtool_null_{nr}"), &c);
        let (got, text) = check(&obj, &[]);
        assert_eq!(got, code, "{text}");
        if nr > 0 {
            assert!(
                text.contains("klp_object_ext 'some_mod' has nr_funcs 2, but its funcs section holds 0 more entries"),
                "{text}"
            );
        }
    }
}

/// `klp_patch_func` patches through ftrace: an `old_name` that resolves to
/// data is no ftrace location ("failed to find location for function").
/// The maps' kallsyms types say so; a map without types (symbols.klp)
/// says nothing against it.
#[test]
fn a_data_symbol_cannot_be_patched() {
    let c = klp_patch_c(&[
        (None, &[("jiffies_like", 0, "new_uniq")]),
        (Some("some_mod"), &[("mod_table", 0, "new_mod")]),
    ]);
    let obj = module("patched_data", &c);
    let dir = obj.parent().unwrap();
    let map = dir.join("kallsyms");
    std::fs::write(
        &map,
        "ffffffff82000000 D jiffies_like\nffffffffc0000000 d mod_table\t[some_mod]\n",
    )
    .unwrap();
    let (code, text) = check(
        &obj,
        &[
            "--symbols",
            map.to_str().unwrap(),
            "--load-order",
            "target-first",
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("patched function 'jiffies_like' resolves to a data symbol (kallsyms type 'D') in vmlinux: ftrace cannot patch it, and klp_patch_func fails with 'failed to find location for function 'jiffies_like'' (-EINVAL): the patch is refused"),
        "{text}"
    );
    assert!(
        text.contains("patched function 'mod_table' resolves to a data symbol (kallsyms type 'd') in some_mod: ftrace cannot patch it, and klp_patch_func fails with 'failed to find location for function 'mod_table'' (-EINVAL), refusing the patch, or the module when it loads after it"),
        "{text}"
    );
    let klp = dir.join("symbols.klp");
    std::fs::write(
        &klp,
        "klp-convert-symbol-data.0.1\n*vmlinux\njiffies_like\n*some_mod\nmod_table\n",
    )
    .unwrap();
    let (code, text) = check(
        &obj,
        &[
            "--symbols",
            klp.to_str().unwrap(),
            "--load-order",
            "target-first",
        ],
    );
    assert_eq!(code, 0, "{text}");
}
