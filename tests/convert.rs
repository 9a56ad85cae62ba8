//! Conversion behaviour on objects compiled by the host gcc: refusals and
//! their messages, file handling, the command-line forms, `show`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use klp_convert::elf::{Elf, SHN_LIVEPATCH};

/// A livepatch object with one vmlinux and one module reference.
fn good_source() -> String {
    format!(
        "{HEADER}{LIVEPATCH_MODINFO}
extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);
extern int target_value KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, homonym_value, 2);
int lp_read(void) {{ return saved_command_line[0] + target_value; }}
"
    )
}

/// Compile `body` (with header and, unless `livepatch` is false, modinfo).
fn object(test: &str, body: &str, livepatch: bool) -> std::path::PathBuf {
    let dir = scratch(test);
    let out = dir.join("in.o");
    let modinfo = if livepatch { LIVEPATCH_MODINFO } else { "" };
    compile_x86_64(&format!("{HEADER}{modinfo}{body}"), &out);
    out
}

/// Convert and expect a refusal whose message contains every `needle`.
fn expect_refusal(input: &Path, needles: &[&str]) {
    let before = std::fs::read(input).unwrap();
    let out = input.with_file_name("out.o");
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&r);
    assert_eq!(
        r.status.code(),
        Some(1),
        "expected exit 1, got {:?}: {err}",
        r.status
    );
    for n in needles {
        assert!(err.contains(n), "message lacks {n:?}:\n{err}");
    }
    assert!(
        err.contains(input.to_str().unwrap()),
        "message lacks the file name:\n{err}"
    );
    assert!(!out.exists(), "a refused conversion left an output file");
    assert_eq!(std::fs::read(input).unwrap(), before, "input modified");
    let leftovers: Vec<_> = std::fs::read_dir(input.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn converts_and_is_idempotent() {
    let dir = scratch("converts_and_is_idempotent");
    let input = dir.join("lp.o");
    compile_x86_64(&good_source(), &input);
    let out1 = dir.join("lp1.o");
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out1.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let data = std::fs::read(&out1).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let names: Vec<String> = elf
        .symbols
        .iter()
        .filter(|s| s.st_shndx == SHN_LIVEPATCH)
        .map(|s| s.display_name())
        .collect();
    assert_eq!(
        names,
        [
            ".klp.sym.vmlinux.saved_command_line,0",
            ".klp.sym.klp_test_target.homonym_value,2"
        ]
    );
    let klp: Vec<String> = elf
        .sections
        .iter()
        .filter(|s| s.name.starts_with(b".klp.rela."))
        .map(|s| s.display_name())
        .collect();
    assert_eq!(
        klp,
        [
            ".klp.rela.vmlinux..text.lp_read",
            ".klp.rela.klp_test_target..text.lp_read"
        ]
    );

    // A second run changes nothing, in both command-line forms.
    let out2 = dir.join("lp2.o");
    let r = klp_convert(&[out1.to_str().unwrap(), out2.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read(&out2).unwrap(), data);
    let r = klp_convert(&["convert", out2.to_str().unwrap(), "--in-place"]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read(&out2).unwrap(), data);
}

#[test]
fn nothing_to_convert_is_byte_identical() {
    let input = object(
        "nothing_to_convert",
        "extern int printk(const char *, ...);\nint f(void) { return printk(\"hi\"); }\n",
        false,
    );
    let out = input.with_file_name("out.o");
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&input).unwrap());
}

#[test]
fn in_place_keeps_mode_and_converts() {
    let dir = scratch("in_place");
    let input = dir.join("lp.o");
    compile_x86_64(&good_source(), &input);
    std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o640)).unwrap();
    let r = klp_convert(&["convert", "--in-place", input.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let meta = std::fs::metadata(&input).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    let data = std::fs::read(&input).unwrap();
    let elf = Elf::parse(&data).unwrap();
    assert!(elf.symbols.iter().any(|s| s.st_shndx == SHN_LIVEPATCH));
}

#[test]
fn refuses_module_without_livepatch_modinfo() {
    let input = object(
        "no_modinfo",
        "extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\nint f(void) { return v; }\n",
        false,
    );
    expect_refusal(
        &input,
        &[
            "not marked as a livepatch module",
            "livepatch=Y",
            ".modinfo",
        ],
    );
}

#[test]
fn refuses_long_object_name() {
    let long = "m".repeat(56);
    let input = object(
        "long_object",
        &format!(
            "extern int v KLP_RELOC_SYMBOL({long}, {long}, v);\nint f(void) {{ return v; }}\n"
        ),
        true,
    );
    expect_refusal(
        &input,
        &["is 56 bytes", "at most 55", "symbol '.klp.sym.rela."],
    );
}

#[test]
fn refuses_dash_in_object_name() {
    let input = object(
        "dash_object",
        "extern int v __asm__(\"\\\".klp.sym.rela.my-mod.my-mod.v.0\\\"\");\nint f(void) { return v; }\n",
        true,
    );
    expect_refusal(&input, &["contains '-'", "my_mod"]);
}

#[test]
fn refuses_long_symbol_name() {
    let name = "s".repeat(512);
    let input = object(
        "long_symbol",
        &format!("extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, {name});\nint f(void) {{ return v; }}\n"),
        true,
    );
    expect_refusal(&input, &["is 512 bytes", "at most 511", "KSYM_NAME_LEN"]);
}

#[test]
fn refuses_comma_in_symbol_name() {
    let input = object(
        "comma_symbol",
        "extern int v __asm__(\"\\\".klp.sym.rela.vmlinux.vmlinux.a,b,0\\\"\");\nint f(void) { return v; }\n",
        true,
    );
    expect_refusal(&input, &["'a,b' contains ','"]);
}

#[test]
fn refuses_module_specific_reference_to_vmlinux() {
    let input = object(
        "module_to_vmlinux",
        "extern int v KLP_RELOC_SYMBOL(klp_test_target, vmlinux, saved_command_line);\nint f(void) { return v; }\n",
        true,
    );
    expect_refusal(
        &input,
        &[
            "invalid access to vmlinux symbol 'saved_command_line' from module-specific livepatch relocation section",
            "section .rela.text.f, offset 0x",
        ],
    );
}

#[test]
fn refuses_module_specific_relocation_in_jump_table() {
    // What static_branch_*() on a module's key leaves behind: an entry of
    // __jump_table pointing at the key.
    let input = object(
        "module_jump_table",
        "extern int key KLP_RELOC_SYMBOL(klp_test_target, klp_test_target, key);\n\
         static void *entry[2] __attribute__((section(\"__jump_table\"), used)) = {0, &key};\n\
         int f(void) { return 0; }\n",
        true,
    );
    expect_refusal(
        &input,
        &[
            "special section __jump_table",
            "section .rela__jump_table, offset 0x8",
            "static_key_enabled()",
        ],
    );
}

#[test]
fn vmlinux_relocation_in_jump_table_is_allowed() {
    let dir = scratch("vmlinux_jump_table");
    let input = dir.join("in.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int key KLP_RELOC_SYMBOL(vmlinux, vmlinux, key);\n\
             static void *entry[2] __attribute__((section(\"__jump_table\"), used)) = {{0, &key}};\n"
        ),
        &input,
    );
    let out = dir.join("out.o");
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let data = std::fs::read(&out).unwrap();
    let elf = Elf::parse(&data).unwrap();
    // The object part must parse as `vmlinux`, not `vmlinux__jump_table`.
    assert!(elf
        .section_by_name(b".klp.rela.vmlinux.__jump_table")
        .is_some());
}

#[test]
fn refuses_module_specific_relocation_in_init_text() {
    let input = object(
        "module_init_text",
        "extern int v KLP_RELOC_SYMBOL(klp_test_target, klp_test_target, v);\n\
         __attribute__((section(\".init.text\"))) int init_f(void) { return v; }\n",
        true,
    );
    expect_refusal(&input, &["in .init.text, which is freed after module init"]);
}

#[test]
fn refuses_target_section_without_alloc() {
    let input = object(
        "non_alloc_target",
        "extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\n\
         int f(void) { return v; }\n\
         __asm__(\".section .klp_noalloc,\\\"\\\",@progbits\\n.quad .klp.sym.rela.vmlinux.vmlinux.v.0\\n.previous\");\n",
        true,
    );
    expect_refusal(
        &input,
        &[
            "target section .klp_noalloc is not SHF_ALLOC",
            "section .rela.klp_noalloc, offset 0x0",
        ],
    );
}

#[test]
fn reports_every_problem_at_once() {
    let input = object(
        "many_problems",
        "extern int a KLP_RELOC_SYMBOL(klp_test_target, vmlinux, a);\n\
         extern int b KLP_RELOC_SYMBOL(klp_test_target, vmlinux, b);\n\
         int f(void) { return a + b; }\n",
        false,
    );
    let out = input.with_file_name("out.o");
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1));
    assert!(err.contains("refused (3 problems)"), "{err}");
    assert!(
        err.contains("vmlinux symbol 'a'") && err.contains("vmlinux symbol 'b'"),
        "{err}"
    );
}

#[test]
fn i386_rel_becomes_rela_with_the_implicit_addend() {
    let dir = scratch("i386_rel");
    let input = dir.join("in.o");
    compile(
        "gcc",
        &["-m32"],
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int arr[4] KLP_RELOC_SYMBOL(vmlinux, vmlinux, arr);\n\
             int f(void) {{ return arr[3]; }}\nint *p = &arr[2];\n"
        ),
        &input,
    );
    let out = dir.join("out.o");
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let data = std::fs::read(&out).unwrap();
    let elf = Elf::parse(&data).unwrap();
    assert!(!elf.is_64);
    let text = elf
        .section_by_name(b".klp.rela.vmlinux..text.f")
        .expect("text klp section");
    let data_sec = elf
        .section_by_name(b".klp.rela.vmlinux..data.p")
        .expect("data klp section");
    assert_eq!((text.sh_type, text.sh_entsize), (4, 12));
    let addends = |i: usize| -> Vec<i64> {
        elf.relocs
            .iter()
            .find(|r| r.index == i)
            .unwrap()
            .entries()
            .map(|r| r.addend)
            .collect()
    };
    assert_eq!(addends(text.index), [12]);
    assert_eq!(addends(data_sec.index), [8]);
}

#[test]
fn malformed_and_missing_inputs() {
    let dir = scratch("malformed");
    let junk = dir.join("junk.ko");
    std::fs::write(&junk, b"\x7fELF\x02\x01\x01garbage").unwrap();
    let out = dir.join("out.ko");
    let r = klp_convert(&[
        "convert",
        junk.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains("junk.ko"), "{}", stderr(&r));
    assert!(!out.exists());

    let missing = dir.join("missing.ko");
    let r = klp_convert(&[
        "convert",
        missing.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr(&r).contains("missing.ko"), "{}", stderr(&r));

    // Truncated real object.
    let input = object("malformed_truncated", "int f(void) { return 1; }\n", true);
    let bytes = std::fs::read(&input).unwrap();
    let cut = dir.join("cut.o");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let r = klp_convert(&[
        "convert",
        cut.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(!out.exists());
}

#[test]
fn unwritable_output_is_an_io_error_and_leaves_nothing() {
    let dir = scratch("unwritable");
    let input = dir.join("lp.o");
    compile_x86_64(&good_source(), &input);
    let out = dir.join("no-such-dir").join("out.o");
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("no-such-dir"), "{}", stderr(&r));
}

#[test]
fn signature_is_dropped_with_a_warning() {
    let dir = scratch("signature");
    let input = dir.join("lp.o");
    compile_x86_64(&good_source(), &input);
    let mut signed = std::fs::read(&input).unwrap();
    let plain_len = signed.len();
    signed.extend_from_slice(b"0123456789");
    signed.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 10]);
    signed.extend_from_slice(b"~Module signature appended~\n");
    let signed_path = dir.join("signed.o");
    std::fs::write(&signed_path, &signed).unwrap();
    let out = dir.join("out.o");
    let r = klp_convert(&[
        "convert",
        signed_path.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("signature was dropped"),
        "{}",
        stderr(&r)
    );
    let converted = std::fs::read(&out).unwrap();
    assert!(!converted.ends_with(b"~Module signature appended~\n"));
    // The same as converting the unsigned module.
    let out2 = dir.join("out2.o");
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out2.to_str().unwrap(),
    ]);
    assert!(r.status.success());
    assert_eq!(converted, std::fs::read(&out2).unwrap());
    assert!(plain_len > 0);

    // A signed module with nothing to convert keeps its signature.
    let plain = object("signature_plain", "int f(void) { return 1; }\n", false);
    let mut s = std::fs::read(&plain).unwrap();
    s.extend_from_slice(&signed[plain_len..]);
    std::fs::write(&plain, &s).unwrap();
    let out3 = dir.join("out3.o");
    let r = klp_convert(&[plain.to_str().unwrap(), out3.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read(&out3).unwrap(), s);
}

#[test]
fn command_line_forms() {
    let r = klp_convert(&["--help"]);
    assert!(r.status.success());
    let help = String::from_utf8_lossy(&r.stdout);
    for needle in [
        "convert INPUT.ko -o OUTPUT.ko",
        "--in-place",
        "show FILE.ko",
        "SYMBOLS INPUT.ko OUTPUT.ko",
        "build [DIR]",
        "Symbol maps",
        "Exit status",
    ] {
        assert!(help.contains(needle), "help lacks {needle}");
    }
    // Help after a command is that command's, with only its own options.
    let r = klp_convert(&["build", "--help"]);
    assert!(r.status.success());
    let build_help = String::from_utf8_lossy(&r.stdout);
    assert!(
        build_help.contains("make -C KERNEL_DIR M=DIR KBUILD_MODPOST_WARN=1"),
        "{build_help}"
    );
    assert!(
        build_help.contains("-C, --kernel-dir <DIR>"),
        "{build_help}"
    );
    assert!(!build_help.contains("--in-place"), "{build_help}");
    let r = klp_convert(&["convert", "x.ko", "-h"]);
    assert!(r.status.success());
    let convert_help = String::from_utf8_lossy(&r.stdout);
    assert!(convert_help.contains("--in-place"), "{convert_help}");
    assert!(!convert_help.contains("--kernel-dir"), "{convert_help}");
    // One version, whichever command asks.
    for args in [&["--version"][..], &["check", "-V"]] {
        let r = klp_convert(args);
        assert_eq!(
            String::from_utf8_lossy(&r.stdout),
            format!("klp-convert {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
    assert_eq!(klp_convert(&[]).status.code(), Some(2));
    assert_eq!(klp_convert(&["convert", "x.ko"]).status.code(), Some(2));
    assert_eq!(
        klp_convert(&["convert", "x.ko", "-o", "y", "--in-place"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(klp_convert(&["--bogus"]).status.code(), Some(2));
    // A format that does not exist is a usage error, never the default.
    for args in [
        &["show", "--format=xml", "x.ko"][..],
        &["show", "--format", "xml", "x.ko"],
        &["check", "--format=xml", "x.ko"],
        &["symbols", "--format", "xml", "x"],
        &["check", "--kernel-release", "foo", "x.ko"],
    ] {
        let r = klp_convert(args);
        assert_eq!(r.status.code(), Some(2), "{args:?}");
        assert!(stderr(&r).starts_with("klp-convert: "), "{}", stderr(&r));
    }
    // A first argument that is not a command starts a drop-in form, with
    // two or three arguments.
    let r = klp_convert(&["x.ko", "--help"]);
    assert!(r.status.success());
    assert_eq!(String::from_utf8_lossy(&r.stdout), help);
    assert_eq!(klp_convert(&["x.ko", "--bogus"]).status.code(), Some(2));
    assert!(!std::path::Path::new("--bogus").exists());
    let r = klp_convert(&["a.ko", "b.ko", "c.ko", "d.ko"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        stderr(&r).contains("expected INPUT OUTPUT, or a command"),
        "{}",
        stderr(&r)
    );

    let dir = scratch("cli_forms");
    let input = dir.join("lp.o");
    compile_x86_64(&good_source(), &input);
    let r = klp_convert(&[
        "symbols.klp",
        input.to_str().unwrap(),
        dir.join("o.ko").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        stderr(&r).contains("symbols.klp: No such file"),
        "{}",
        stderr(&r)
    );
    assert!(!dir.join("o.ko").exists());
}

#[test]
fn show_lists_klp_relocations_and_annotations() {
    let dir = scratch("show");
    let input = dir.join("lp.o");
    compile_x86_64(&good_source(), &input);
    // Before conversion: unconverted annotations and an error (exit 1).
    let r = klp_convert(&["show", input.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.contains("unconverted annotations"), "{text}");
    assert!(
        text.contains("-> .klp.sym.klp_test_target.homonym_value,2 in .klp.rela.klp_test_target.*"),
        "{text}"
    );
    assert!(text.contains("used at .rela.text.lp_read+0x"), "{text}");

    let out = dir.join("out.o");
    assert!(klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap()
    ])
    .status
    .success());
    let r = klp_convert(&["show", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.contains("object vmlinux"), "{text}");
    assert!(
        text.contains(".klp.rela.vmlinux..text.lp_read -> .text.lp_read (1 relocation)"),
        "{text}"
    );
    assert!(text.contains("R_X86_64_PC32"), "{text}");
    assert!(text.contains("homonym_value pos 2 addend -4"), "{text}");
    assert!(text.contains("summary: 2 klp relocations in 2 sections for 2 objects, 2 klp symbols, 0 unconverted annotations, 0 errors"), "{text}");

    let r = klp_convert(&["show", "--format", "json", out.to_str().unwrap()]);
    assert!(r.status.success());
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("valid JSON");
    assert_eq!(v["livepatch"], true);
    assert_eq!(v["summary"]["klp_relocations"], 2);
    let objects: Vec<&str> = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["object"].as_str().unwrap())
        .collect();
    assert_eq!(objects, ["klp_test_target", "vmlinux"]);
    let rel = &v["objects"][0]["sections"][0]["relocations"][0];
    assert_eq!(rel["symbol"], "homonym_value");
    assert_eq!(rel["position"], 2);
    assert_eq!(rel["type"], "R_X86_64_PC32");
}

#[test]
fn debug_section_references_stay_with_a_note() {
    let dir = scratch("debug_reference");
    let input = dir.join("in.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\n\
             int f(void) {{ return v; }}\n\
             __asm__(\".section .debug_klp,\\\"\\\",@progbits\\n.quad .klp.sym.rela.vmlinux.vmlinux.v.0\\n.previous\");\n"
        ),
        &input,
    );
    let out = dir.join("out.o");
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("note: ")
            && stderr(&r).contains("section .rela.debug_klp, offset 0x0")
            && stderr(&r).contains("left in place: .debug_klp is a debug section"),
        "{}",
        stderr(&r)
    );
    let data = std::fs::read(&out).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let debug = elf.section_by_name(b".rela.debug_klp").unwrap();
    let entries: Vec<_> = elf
        .relocs
        .iter()
        .find(|r| r.index == debug.index)
        .unwrap()
        .entries()
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(elf.symbols[entries[0].sym as usize].st_shndx, SHN_LIVEPATCH);
    let r = klp_convert(&["check", out.to_str().unwrap()]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
}

/// Found by fuzzing (fuzz/corpus/elf/regression-object-rela.o): a module
/// named `rela` makes a converted klp symbol, `.klp.sym.rela.<name>,<pos>`,
/// read like an annotation. A second conversion must leave it alone.
#[test]
fn a_module_named_rela_converts_once() {
    let dir = scratch("object_named_rela");
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}\
             extern int x KLP_RELOC_SYMBOL(rela, rela, x);\nint f(void) {{ return x; }}\n"
        ),
        &obj,
    );
    let once = dir.join("once.o");
    let r = convert_o(&obj, &once);
    assert!(r.status.success(), "{}", stderr(&r));
    let twice = dir.join("twice.o");
    let r = convert_o(&once, &twice);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(
        std::fs::read(&once).unwrap(),
        std::fs::read(&twice).unwrap()
    );
    let r = klp_convert(&["check", once.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stdout));
}

/// What `convert` writes to its file, piece by piece (the input's bytes
/// borrowed from its mapping, the new sections', the section header table)
/// and proven as read back, is byte for byte what the library converts in
/// memory: for a module whose tables grow (appended), whose relocation
/// sections shrink in place, and with nothing to convert. The same
/// conversion in place gives the same bytes.
#[test]
fn the_file_written_in_pieces_is_the_conversion_in_memory() {
    let mut body = String::new();
    for i in 0..40 {
        body.push_str(&format!(
            "extern int v{i} KLP_RELOC_SYMBOL(vmlinux, vmlinux, v{i});\n\
             int f{i}(void) {{ return v{i} + {i}; }}\n\
             int g{i}(void) {{ return f{i}() * 2; }}\n"
        ));
    }
    for (test, body, changes) in [
        ("pieces_annotated", body.as_str(), true),
        ("pieces_plain", "int f(void) { return 1; }\n", false),
    ] {
        let input = object(test, body, true);
        let bytes = std::fs::read(&input).unwrap();
        let direct = klp_convert::convert::convert_bytes(&bytes).unwrap();
        assert_eq!(direct.changed, changes, "{test}");
        let out = input.with_file_name("out.o");
        convert_ok(&input, &out);
        assert!(std::fs::read(&out).unwrap() == direct.bytes, "{test}");
        let r = klp_convert(&["convert", input.to_str().unwrap(), "--in-place"]);
        assert!(r.status.success(), "{test}: {}", stderr(&r));
        assert!(std::fs::read(&input).unwrap() == direct.bytes, "{test}");
    }
}
