//! The patch's objects as the livepatch core matches them: a module's klp
//! relocations are applied only through a `klp_object` for that module
//! (`klp_apply_object_relocs`), an object named by the string `"vmlinux"`
//! or with a `-` matches nothing (`klp_find_object_module`), and every
//! object and function needs its own sysfs name (`klp_init_object`,
//! `klp_init_func`: -EEXIST).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use klp_convert::elf::Elf;

fn run(args: &[&str]) -> (i32, String, String) {
    let r = klp_convert(args);
    (
        r.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&r.stdout).into_owned(),
        stderr(&r),
    )
}

fn check(file: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["check", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, out, _) = run(&args);
    (code, out)
}

/// The rule ids of `check --format json`'s findings.
fn rules(file: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["check", "--format", "json", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (_, out, _) = run(&args);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut ids = Vec::new();
    for m in v.as_array().into_iter().flatten() {
        for f in m["findings"].as_array().into_iter().flatten() {
            ids.push(f["rule"].as_str().unwrap().to_string());
        }
    }
    ids
}

/// A vmlinux patch whose new `cmdline_proc_show` calls `helper` of
/// `my_mod` (annotated), with `table` (its `klp_patch`).
fn calling_module(test: &str, table: &str) -> PathBuf {
    let dir = scratch(test);
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}\
             extern int helper(void) KLP_RELOC_SYMBOL(my_mod, my_mod, helper);\n\
             static const char objname[] __attribute__((section(\".rodata.objname\"))) = \"my_mod\";\n\
             int new_show(void) {{ return helper(); }}\n\
             {table}"
        ),
        &obj,
    );
    obj
}

/// The patch's table: vmlinux's `cmdline_proc_show`, and with `my_mod`
/// an object for it without functions (as kpatch writes it), named by
/// `objname`, so a test can rename it in the converted module.
fn table(my_mod: bool) -> String {
    let objs: &[(Option<&str>, &[PatchedFn])] = if my_mod {
        &[
            (None, &[("cmdline_proc_show", 0, "new_show")]),
            (Some("my_mod"), &[]),
        ]
    } else {
        &[(None, &[("cmdline_proc_show", 0, "new_show")])]
    };
    klp_patch_c(objs).replace("\"my_mod\"", "objname")
}

/// Overwrite the object name `objname` in a converted module.
fn rename_object(file: &Path, to: &[u8; 6]) {
    let mut bytes = std::fs::read(file).unwrap();
    let at = {
        let elf = Elf::parse(&bytes).unwrap();
        let s = elf.section_by_name(b".rodata.objname").unwrap();
        assert_eq!(elf.section_data(s.index), b"my_mod\0");
        s.sh_offset as usize
    };
    bytes[at..at + 6].copy_from_slice(to);
    std::fs::write(file, bytes).unwrap();
}

const NEVER_APPLIED: &str = "error: section .klp.rela.my_mod..text.new_show: never applied: the patch has no klp_object for my_mod (klp_apply_object_relocs applies .klp.rela.my_mod.* for that object only); add one, with no functions if it needs none: { .name = \"my_mod\", .funcs = (struct klp_func[]){ { } } }";

/// `klp_apply_object_relocs` applies `.klp.rela.my_mod.*` only for an
/// object named `my_mod`: a vmlinux-only patch calling into `my_mod` keeps
/// the call's displacement 0 (seen on Debian's 6.12: `(null)` printed).
/// `convert` cannot add the object and refuses; `check` finds the section
/// of a converted module whose object is gone.
#[test]
fn a_module_section_without_its_object_is_never_applied() {
    let obj = calling_module("objects_unlisted", &table(false));
    let out = obj.with_file_name("out.o");
    let (code, _, err) = run(&[
        "convert",
        obj.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}; convert cannot add a klp_object to the module's data",
            NEVER_APPLIED.trim_start_matches("error: ")
        )),
        "{err}"
    );
    assert!(!out.exists());

    // With an object for my_mod (no functions: the kernel takes an empty
    // array), it converts and checks clean.
    let obj = calling_module("objects_listed", &table(true));
    let out = obj.with_file_name("out.o");
    convert_ok(&obj, &out);
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(!rules(&out, &[]).contains(&"klp-section-no-object".to_string()));

    // The same module with its object renamed: the section is never applied.
    rename_object(&out, b"my_mox");
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(NEVER_APPLIED), "{text}");
    assert!(rules(&out, &[]).contains(&"klp-section-no-object".to_string()));
    // Nothing left to convert: the module is judged as check judges it.
    let again = out.with_file_name("again.o");
    let (code, _, err) = run(&[
        "convert",
        out.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("never applied: the patch has no klp_object for my_mod"),
        "{err}"
    );
    assert!(!again.exists());
}

/// A linked module's table built at run time cannot be read: a note, not
/// an error. An object file's may be in another object: nothing.
#[test]
fn a_table_built_at_run_time_is_a_note() {
    let obj = calling_module("objects_elsewhere", "");
    let out = obj.with_file_name("out.o");
    convert_ok(&obj, &out);
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("note:"), "{text}");

    let obj = calling_module("objects_run_time", THIS_MODULE);
    let out = obj.with_file_name("out.o");
    convert_ok(&obj, &out);
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("note: section .klp.rela.my_mod..text.new_show: applied only if the patch has a klp_object for my_mod: its klp_patch table is built at run time and was not read"),
        "{text}"
    );
}

/// A livepatch module with `table`, its functions `new_a` and `new_b`.
fn module(test: &str, table: &str) -> PathBuf {
    let dir = scratch(test);
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{LIVEPATCH_MODINFO}\
             static const char __modinfo_name[] __attribute__((section(\".modinfo\"), used, aligned(1))) = \"name=lp_test\";\n\
             int new_a(void) {{ return 1; }}\n\
             int new_b(void) {{ return 2; }}\n\
             {table}"
        ),
        &obj,
    );
    obj
}

/// vmlinux has `foo` once.
fn kallsyms(dir: &Path) -> PathBuf {
    let map = dir.join("kallsyms");
    std::fs::write(&map, "ffffffff81000100 t foo\n").unwrap();
    map
}

/// `check` (exit 1, `expect` in its report, `rule` among its ids) and
/// `convert` (refused, no output) on `table`.
fn refused(test: &str, table: &str, expect: &[&str], rule: &str) {
    let obj = module(test, table);
    let map = kallsyms(obj.parent().unwrap());
    let symbols = ["--symbols", map.to_str().unwrap()];
    let (code, text) = check(&obj, &symbols);
    assert_eq!(code, 1, "{test}: {text}");
    for e in expect {
        assert!(text.contains(e), "{test}: {e}\n{text}");
    }
    assert!(rules(&obj, &symbols).contains(&rule.to_string()), "{test}");
    let out = obj.with_file_name("out.o");
    let (code, _, err) = run(&[
        "convert",
        obj.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{test}: {err}");
    let message = expect[0].trim_start_matches("error: ").trim_end();
    assert!(err.contains(message), "{test}: {err}");
    assert!(!out.exists(), "{test}");
}

/// `klp_is_module()` is `obj->name != NULL`: the string "vmlinux" is a
/// module's name, one no module has, and kbuild's module names have `_`
/// for `-`. The patch enables and patches nothing of either object, so its
/// functions are not resolved against vmlinux.
#[test]
fn objects_the_kernel_never_matches() {
    refused(
        "objects_vmlinux_string",
        &klp_patch_c(&[(Some("vmlinux"), &[("foo", 0, "new_a")])]),
        &["error: section .data.objs, offset 0x0: klp_object name is the string \"vmlinux\", not NULL: klp_is_module() takes it for a module, find_module(\"vmlinux\") finds none, and the patch enables and patches nothing of vmlinux; vmlinux is .name = NULL\n"],
        "object-never-matched",
    );
    refused(
        "objects_dash",
        &klp_patch_c(&[(Some("my-mod"), &[("foo", 0, "new_a")])]),
        &["error: section .data.objs, offset 0x0: klp_object name 'my-mod' contains '-': module names never do (kbuild names the module 'my_mod'), so find_module() and klp_module_coming() never match it, and the patch enables and patches nothing of it\n"],
        "object-never-matched",
    );
    // Not resolved as vmlinux: no "resolves" for foo, which vmlinux has.
    let obj = module(
        "objects_vmlinux_string_unresolved",
        &klp_patch_c(&[(Some("vmlinux"), &[("foo", 0, "new_a")])]),
    );
    let map = kallsyms(obj.parent().unwrap());
    let (_, text) = check(&obj, &["--symbols", map.to_str().unwrap()]);
    assert!(!text.contains("patched function resolves"), "{text}");
    // NULL is vmlinux, and resolves.
    let obj = module(
        "objects_vmlinux_null",
        &klp_patch_c(&[(None, &[("foo", 0, "new_a")])]),
    );
    let (code, text) = check(&obj, &["--symbols", map.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("patched function resolves to 0xffffffff81000100 in vmlinux"),
        "{text}"
    );
}

/// `klp_init_func` names a function's sysfs directory `"%s,%lu"` from
/// `old_name` and `old_sympos ?: 1`, `klp_init_object` an object's by its
/// name or `vmlinux`: a second entry of one name fails with -EEXIST.
#[test]
fn duplicate_sysfs_names_are_refused() {
    refused(
        "objects_dup_func",
        &klp_patch_c(&[(None, &[("foo", 0, "new_a"), ("foo", 1, "new_b")])]),
        &["error: section .data.funcs_0, offset 0x98, symbol 'foo': klp_func 'foo' with old_sympos 1 gets the sysfs name 'foo,1' in 'vmlinux', as an earlier one with old_sympos 0 did (klp_init_func names them \"<old_name>,<old_sympos ?: 1>\"): kobject_add fails with -EEXIST (\"sysfs: cannot create duplicate filename '/kernel/livepatch/lp_test/vmlinux/foo,1'\") and klp_enable_patch refuses the patch\n"],
        "duplicate-sysfs-name",
    );
    refused(
        "objects_dup_module",
        &klp_patch_c(&[
            (Some("my_mod"), &[("foo", 0, "new_a")]),
            (Some("my_mod"), &[("bar", 0, "new_b")]),
        ]),
        &["error: section .data.objs, offset 0xa8: a second klp_object for 'my_mod': kobject_add fails with -EEXIST (\"sysfs: cannot create duplicate filename '/kernel/livepatch/lp_test/my_mod'\") and klp_enable_patch refuses the patch\n"],
        "duplicate-sysfs-name",
    );
    refused(
        "objects_dup_vmlinux",
        &klp_patch_c(&[
            (None, &[("foo", 0, "new_a")]),
            (Some("vmlinux"), &[("bar", 0, "new_b")]),
        ]),
        &[
            "error: section .data.objs, offset 0xa8: a second klp_object named 'vmlinux' in sysfs (klp_init_object names NULL 'vmlinux', as it does the string \"vmlinux\"): kobject_add fails with -EEXIST (\"sysfs: cannot create duplicate filename '/kernel/livepatch/lp_test/vmlinux'\") and klp_enable_patch refuses the patch\n",
            "error: section .data.objs, offset 0xa8: klp_object name is the string \"vmlinux\"",
        ],
        "duplicate-sysfs-name",
    );
    // Distinct positions are distinct names.
    let obj = module(
        "objects_two_positions",
        &klp_patch_c(&[(None, &[("foo", 1, "new_a"), ("foo", 2, "new_b")])]),
    );
    assert!(!rules(&obj, &[]).contains(&"duplicate-sysfs-name".to_string()));
}
