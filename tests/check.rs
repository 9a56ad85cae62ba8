//! `klp-convert check`: one test per rule, on modules made to break it —
//! compiled by the real compilers where a compiler can produce the case,
//! edited with the library's writer where only a broken tool could.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use klp_convert::convert;
use klp_convert::convert::plan;
use klp_convert::elf::write::Edit;
use klp_convert::elf::{Elf, SHN_LIVEPATCH};

/// Write `elf` converted by `plan` without any checks (what a careless tool
/// would produce) to `out`.
fn write_unchecked(elf: &Elf, plan: &plan::Plan, out: &Path) {
    std::fs::write(out, convert::apply::apply(elf, plan).unwrap()).unwrap();
}

/// Write `elf` to `out` with symbol `sym` renamed `name` and marked
/// `SHN_LIVEPATCH`, as a tool other than this one might leave it.
fn mark_livepatch(elf: &Elf, sym: usize, name: &[u8], out: &Path) {
    let mut edit = Edit::new(elf);
    let st_name = edit.add_symbol_name(name);
    edit.patch_symbol(sym, st_name, SHN_LIVEPATCH);
    std::fs::write(out, edit.finish().unwrap()).unwrap();
}

/// Run `check` with extra arguments; (exit code, stdout).
fn check(file: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["check", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let r = klp_convert(&args);
    (
        r.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&r.stdout).into_owned(),
    )
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The seed's scenario: a ppc64le function calls a `static` function of its
/// own file, so GCC emits `bl helper` with no nop after it. Made a klp
/// relocation, the loader refuses it: "Expected nop after call".
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn ppc64le_local_call_without_nop() {
    let dir = scratch("check_ppc64le_nop");
    let c = dir.join("local.c");
    std::fs::write(
        &c,
        format!(
            "{LIVEPATCH_MODINFO}
static int __attribute__((noinline, noipa)) helper(int x) {{ return x * 3; }}
int caller(int x) {{ return helper(x) + 1; }}
"
        ),
    )
    .unwrap();
    let s = dir.join("local.s");
    run(Command::new("powerpc64le-linux-gnu-gcc")
        .args([
            "-O2",
            "-S",
            "-mcmodel=medium",
            "-ffunction-sections",
            "-fno-pic",
        ])
        .arg(&c)
        .arg("-o")
        .arg(&s));
    // What a converter does to that call: the callee becomes a klp symbol.
    let asm = std::fs::read_to_string(&s).unwrap();
    assert!(
        asm.contains("\tbl helper\n"),
        "GCC's local call changed:\n{asm}"
    );
    let asm = asm.replace(
        "\tbl helper\n",
        "\tbl .klp.sym.rela.vmlinux.vmlinux.helper.0\n",
    );
    std::fs::write(&s, asm).unwrap();
    let obj = dir.join("local.o");
    run(Command::new("powerpc64le-linux-gnu-gcc")
        .arg("-c")
        .arg(&s)
        .arg("-o")
        .arg(&obj));

    // convert refuses, in the kernel's words, naming the caller.
    let out = dir.join("out.o");
    let r = klp_convert(&[
        "convert",
        obj.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains("Expected nop after call, got "), "{err}");
    assert!(err.contains(" at caller+0x"), "{err}");
    assert!(err.contains("call to 'helper'"), "{err}");
    assert!(!out.exists());

    // check says the same of a module converted without checks.
    let data = std::fs::read(&obj).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let unchecked = dir.join("unchecked.o");
    let plan = convert::make_plan_with(&elf, None, false).unwrap().0;
    write_unchecked(&elf, &plan, &unchecked);
    let (code, text) = check(&unchecked, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("error: section .klp.rela.vmlinux..text.caller, offset 0x"),
        "{text}"
    );
    assert!(text.contains("Expected nop after call"), "{text}");
    let (_, json) = check(&unchecked, &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["findings"][0]["severity"], "error");
    assert_eq!(v[0]["findings"][0]["rule"], "ppc64-nop-after-call");
    assert_eq!(v[0]["findings"][0]["symbol"], ".klp.sym.vmlinux.helper,0");
}

/// A call GCC believed external carries its nop and passes.
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn ppc64le_global_call_with_nop_passes() {
    let dir = scratch("check_ppc64le_global");
    let obj = dir.join("global.o");
    compile(
        "powerpc64le-linux-gnu-gcc",
        &["-mcmodel=medium"],
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int helper(int) KLP_RELOC_SYMBOL(vmlinux, vmlinux, helper);\n\
             int caller(int x) {{ return helper(x) + 1; }}\n"
        ),
        &obj,
    );
    let out = dir.join("out.o");
    convert_ok(&obj, &out);
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(": ok"), "{text}");
}

/// ppc64's TOC16 family against a klp symbol: the distance from the
/// livepatch's TOC. `TOC16`/`TOC16_DS` hold 16 bits ("bad TOC16
/// relocation"); the `TOC16_HA`/`TOC16_LO` pair 32, truncated without a
/// word: an error against vmlinux, a warning against another module.
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn ppc64le_toc16_against_klp_symbols() {
    let dir = scratch("check_ppc64le_toc16");
    let build = |obj_name: &str, asm: &str| -> (PathBuf, PathBuf) {
        let a = format!(".klp.sym.rela.{obj_name}.{obj_name}.v.0");
        let obj = dir.join(format!("{obj_name}.o"));
        compile(
            "powerpc64le-linux-gnu-gcc",
            &["-mcmodel=medium"],
            &format!(
                "{LIVEPATCH_MODINFO}__asm__(\".text\\n.globl f\\nf:\\n{}\\nblr\");\n",
                asm.replace("SYM", &a)
            ),
            &obj,
        );
        (obj.clone(), obj.with_extension("ko"))
    };
    // vmlinux: refused by convert, every entry named (while planning: the
    // entries are still in the ordinary section, against the annotation).
    let (obj, out) = build(
        "vmlinux",
        "addis 9,2,SYM@toc@ha\\nlwz 3,SYM@toc@l(9)\\nld 4,SYM@toc(2)",
    );
    let r = convert_o(&obj, &out);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    let err = stderr(&r);
    for (offset, words) in [
        ("0x0", "R_PPC64_TOC16_HA against 'v' in vmlinux: TOC16_HA/TOC16_LO reach 2 GiB from this module's TOC and are truncated without a word beyond"),
        ("0x4", "R_PPC64_TOC16_LO against 'v' in vmlinux: TOC16_HA/TOC16_LO reach 2 GiB"),
        ("0x8", "R_PPC64_TOC16_DS against 'v' in vmlinux: it holds 16 bits of the distance from this module's TOC, and the loader refuses more ('bad TOC16 relocation')"),
    ] {
        assert!(
            err.contains(&format!("section .rela.text, offset {offset}, symbol '.klp.sym.rela.vmlinux.vmlinux.v.0': {words}")),
            "{words}: {err}"
        );
    }
    assert_eq!(err.matches("R_PPC64_TOC16").count(), 3, "{err}");
    assert!(!out.exists());
    // Another module may be within 2 GiB: the pair is a warning.
    let (obj, out) = build("some_mod", "addis 9,2,SYM@toc@ha\\nlwz 3,SYM@toc@l(9)");
    convert_ok(&obj, &out);
    let (code, text) = check(&out, &["--format", "json"]);
    assert_eq!(code, 0, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let found: Vec<&str> = v[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "ppc64-toc16")
        .map(|f| f["severity"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["warning", "warning"], "{text}");
}

/// x86_64 only writes over zero bytes.
#[test]
fn x86_64_nonzero_target_bytes() {
    let dir = scratch("check_x86_nonzero");
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\n\
             int f(void) {{ return v; }}\n"
        ),
        &obj,
    );
    let data = std::fs::read(&obj).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let plan = convert::make_plan(&elf, None).unwrap().0;
    let offset = plan.entries_of(0)[0].offset as usize;
    let text = elf.section_by_name(b".text.f").unwrap().index;
    let mut edit = Edit::new(&elf);
    let mut code = elf.section_data(text).to_vec();
    code[offset] = 0x2a;
    edit.set_contents(text, code);
    let poked = edit.finish().unwrap();
    let poked_elf = Elf::parse(&poked).unwrap();
    let out = dir.join("out.o");
    write_unchecked(&poked_elf, &plan, &out);
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("Invalid relocation target, existing value is nonzero for type 2 (R_X86_64_PC32), val 0x2a"), "{text}");
}

/// A relocation type the x86_64 loader does not know: the assembler's
/// GOT-relative load.
#[test]
fn x86_64_unsupported_relocation_type() {
    let dir = scratch("check_x86_type");
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{LIVEPATCH_MODINFO}long f(void) {{ long v; __asm__(\"movq .klp.sym.rela.vmlinux.vmlinux.v.0@GOTPCREL(%%rip), %0\" : \"=r\"(v)); return v; }}\n"
        ),
        &obj,
    );
    let out = dir.join("out.o");
    let r = klp_convert(&[
        "convert",
        obj.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "Unknown rela relocation: 42: the x86_64 loader does not handle R_X86_64_REX_GOTPCRELX"
        ),
        "{err}"
    );
}

/// ppc64 has no case for type 0: a neutralised relocation is refused.
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn ppc64_relocation_type_zero() {
    let dir = scratch("check_ppc64_none");
    let obj = dir.join("lp.o");
    compile(
        "powerpc64le-linux-gnu-gcc",
        &["-mcmodel=medium"],
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int helper(int) KLP_RELOC_SYMBOL(vmlinux, vmlinux, helper);\n\
             int caller(int x) {{ return helper(x) + 1; }}\n"
        ),
        &obj,
    );
    let data = std::fs::read(&obj).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let mut plan = convert::make_plan(&elf, None).unwrap().0;
    plan.entries[plan.sections[0].entries.start].r_type = 0;
    let out = dir.join("out.o");
    write_unchecked(&elf, &plan, &out);
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("Unknown ADD relocation: 0"), "{text}");
    assert!(text.contains("must be deleted, not kept"), "{text}");
}

/// Symbol names longer than KSYM_NAME_LEN - 1 of the target release.
#[test]
fn symbol_name_length_depends_on_the_release() {
    let dir = scratch("check_name_length");
    let obj = dir.join("lp.o");
    let name = "n".repeat(200);
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, {name});\n\
             int f(void) {{ return v; }}\n"
        ),
        &obj,
    );
    let out = dir.join("out.o");
    assert!(klp_convert(&[
        "convert",
        obj.to_str().unwrap(),
        "-o",
        out.to_str().unwrap()
    ])
    .status
    .success());
    let (code, text) = check(&out, &["--kernel-release", "6.1.0-56-amd64"]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = check(&out, &["--kernel-release", "5.14.0-427.el9.x86_64"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("is 200 bytes; kernel 5.14.0-427.el9.x86_64 reads at most 127"),
        "{text}"
    );
}

/// Before 6.1 the livepatch module's kallsyms keeps at most 127 bytes of a
/// symbol name, and module-specific klp symbols are read from there: the
/// whole `.klp.sym.<obj>.<name>,<pos>` counts (Debian's 5.10 proves the
/// 127/128 boundary in tests/kernel_e2e.rs step 14). Crafted here: the cut
/// inside a position (no test kernel has a symbol at position 12), vmlinux
/// symbols (read from the full table, so only `<name>` counts) and 6.1,
/// which keeps names whole.
#[test]
fn whole_klp_symbol_is_cut_before_6_1() {
    let dir = scratch("check_whole_name");
    // .klp.sym.klp_mod.<name>,12 with the name sized for a total of `len`.
    let module_specific = |len: usize, pos: u32| -> PathBuf {
        let prefix = ".klp.sym.klp_mod.".len() + 1 + pos.to_string().len();
        let name = format!("n{}", "m".repeat(len - prefix - 1));
        let obj = dir.join(format!("lp{len}_{pos}.o"));
        compile_x86_64(
            &format!(
                "{HEADER}{LIVEPATCH_MODINFO}extern int v KLP_RELOC_SYMBOL_POS(klp_mod, klp_mod, {name}, {pos});\n\
                 int f(void) {{ return v; }}\n{}",
                klp_patch_c(&[(Some("klp_mod"), &[("f", 0, "f")])])
            ),
            &obj,
        );
        let out = dir.join(format!("out{len}_{pos}.o"));
        let r = klp_convert(&[
            "convert",
            obj.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(r.status.success(), "{}", stderr(&r));
        out
    };
    let old = ["--kernel-release", "5.10.0-32-amd64"];
    let new = ["--kernel-release", "6.1.0-56-amd64"];
    let fits = module_specific(127, 1);
    let (_, text) = check(&fits, &old);
    assert!(
        !text.contains("klp-symbol-too-long") && !text.contains("KSYM_NAME_LEN"),
        "{text}"
    );
    let cut = module_specific(128, 1);
    let (code, text) = check(&cut, &old);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("is 128 bytes; kernel 5.10.0-32-amd64 keeps at most 127 (KSYM_NAME_LEN - 1) of a symbol name in the livepatch module's kallsyms (add_kallsyms, before 6.1), where it reads 'klp_mod' symbols when that module loads: the name is cut before its position's first digit, so it refuses the symbol: 'symbol ... has an incorrectly formatted name'"),
        "{text}"
    );
    let (_, text) = check(&cut, &new);
    assert!(!text.contains("KSYM_NAME_LEN"), "{text}");
    // ",12" cut to ",1": another position.
    let pos = module_specific(128, 12);
    let (code, text) = check(&pos, &old);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("the name is cut inside its position, which the kernel then reads as '1': the symbol at that position, or none"),
        "{text}"
    );
    // vmlinux: a whole name of 150 bytes, its <name> 127: read whole.
    let name = format!("v{}", "w".repeat(126));
    let obj = dir.join("vmlinux.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, {name});\n\
             int f(void) {{ return v; }}\n"
        ),
        &obj,
    );
    let out = dir.join("vmlinux.out.o");
    let r = klp_convert(&[
        "convert",
        obj.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let (_, text) = check(&out, &old);
    assert!(!text.contains("KSYM_NAME_LEN"), "{text}");
}

/// Build a module whose klp relocations were planned for vmlinux and then
/// retargeted to a module by `edit`, as a broken tool might.
fn retargeted(test: &str, source: &str, edit: impl Fn(&mut plan::Plan)) -> PathBuf {
    let dir = scratch(test);
    let obj = dir.join("lp.o");
    compile_x86_64(&format!("{HEADER}{LIVEPATCH_MODINFO}{source}"), &obj);
    let data = std::fs::read(&obj).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let mut plan = convert::make_plan(&elf, None).unwrap().0;
    edit(&mut plan);
    let out = dir.join("out.o");
    write_unchecked(&elf, &plan, &out);
    out
}

#[test]
fn module_specific_section_referencing_vmlinux() {
    let out = retargeted(
        "check_module_vmlinux",
        "extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);\nint f(void) { return v; }\n",
        |p| p.sections[0].obj = b"klp_test_target".to_vec().into(),
    );
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("section .klp.rela.klp_test_target..text.f, offset 0x"),
        "{text}"
    );
    assert!(text.contains("invalid access to vmlinux symbol 'saved_command_line' from module-specific livepatch relocation section"), "{text}");
}

#[test]
fn module_specific_relocation_in_jump_table() {
    let out = retargeted(
        "check_module_jump_table",
        "extern int key KLP_RELOC_SYMBOL(vmlinux, vmlinux, key);\n\
         static void *entry[2] __attribute__((section(\"__jump_table\"), used)) = {0, &key};\n",
        |p| {
            p.sections[0].obj = b"klp_test_target".to_vec().into();
            p.renames[0].klp.obj = b"klp_test_target".to_vec().into();
        },
    );
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("module-specific klp relocation in special section __jump_table"),
        "{text}"
    );
}

#[test]
fn late_relocation_into_read_only_data_warns() {
    let dir = scratch("check_read_only");
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int t KLP_RELOC_SYMBOL(klp_test_target, klp_test_target, t);\n\
             int *const ptr_in_rodata = &t;\n"
        ),
        &obj,
    );
    let out = dir.join("out.o");
    convert_ok(&obj, &out);
    // x86_64 writes late relocations with text_poke() since 5.8: on 6.12
    // a note says why there is no warning, in this architecture's terms.
    let (code, text) = check(&out, &["--kernel-release", "6.12.117+deb12-amd64"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(": ok"), "{text}");
    assert!(
        text.contains("note: section .klp.rela.klp_test_target..rodata.ptr_in_rodata: late relocation into read-only section .rodata.ptr_in_rodata"),
        "{text}"
    );
    assert!(text.contains("x86_64 writes late relocations with text_poke() since 5.8, so kernel 6.12.117+deb12-amd64 writes it safely"), "{text}");
    // Not another architecture's words (the path, which may name any, aside).
    let words = text.replace(out.to_str().unwrap(), "");
    assert!(
        !words.contains("ppc64") && !words.contains("arm64"),
        "{text}"
    );
    // x86_64 before 6.3: the reload warning.
    let (_, text) = check(&out, &["--kernel-release", "6.1.0-56-amd64"]);
    assert!(text.contains("0 errors, 1 warning"), "{text}");
    assert!(text.contains("before 6.3"), "{text}");
    // Before 5.8 the late write into read-only memory faults.
    let (code, text) = check(&out, &["--kernel-release", "5.4.0"]);
    assert_eq!(code, 0, "warnings do not fail: {text}");
    assert!(text.contains("0 errors, 2 warnings"), "{text}");
    assert!(
        text.contains("warning: section .klp.rela.klp_test_target..rodata.ptr_in_rodata: late relocation into read-only section .rodata.ptr_in_rodata"),
        "{text}"
    );
    assert!(text.contains("since 5.8; kernel 5.4.0 is older"), "{text}");
}

/// A module's `.data.rel.ro` is writable data: only `.data..ro_after_init`
/// is made read-only after init (`layout_and_allocate`), so a late
/// relocation there is no read-only write on any release.
#[test]
fn data_rel_ro_is_writable_in_a_module() {
    let dir = scratch("check_data_rel_ro");
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int t KLP_RELOC_SYMBOL(klp_test_target, klp_test_target, t);\n\
             int *const ptr_in_rel_ro __attribute__((section(\".data.rel.ro\"))) = &t;\n\
             int *const ptr_ro_after_init __attribute__((section(\".data..ro_after_init\"))) = &t;\n"
        ),
        &obj,
    );
    let out = dir.join("out.o");
    convert_ok(&obj, &out);
    let (code, text) = check(&out, &["--kernel-release", "5.4.0"]);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("read-only section .data.rel.ro"), "{text}");
    assert!(
        text.contains("late relocation into read-only section .data..ro_after_init"),
        "{text}"
    );
}

#[test]
fn ordinary_relocation_against_a_livepatch_symbol() {
    // The early klp-convert bug, as a module on disk.
    let out = retargeted(
        "check_left_behind",
        "extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);\n\
         int f(void) { char *a = *(char * volatile *)&saved_command_line; char *b = *(char * volatile *)&saved_command_line; return a[0] + b[1]; }\n",
        |p| {
            let moving = p.moving_mut(0);
            let last = moving.iter().rposition(|m| *m).unwrap();
            moving[last] = false;
            let mut entries = p.entries_of(0).to_vec();
            entries.pop();
            p.set_entries(0, entries);
        },
    );
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("section .rela.text.f, offset 0x"), "{text}");
    assert!(text.contains("ordinary relocation against a livepatch symbol: the module loader applies it with value 0"), "{text}");
}

#[test]
fn missing_livepatch_modinfo_and_unconverted_annotations() {
    let dir = scratch("check_modinfo");
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!("{HEADER}extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\nint f(void) {{ return v; }}\n"),
        &obj,
    );
    let (code, text) = check(&obj, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("unconverted KLP_RELOC_SYMBOL annotation"),
        "{text}"
    );
    // Give it a klp symbol by hand, without livepatch=Y.
    let data = std::fs::read(&obj).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let plan = convert::make_plan(&elf, None);
    assert!(plan.is_err(), "convert refuses it");
    let sym = elf
        .symbols
        .iter()
        .find(|s| s.name.starts_with(b".klp.sym.rela."))
        .unwrap()
        .index as usize;
    let out = dir.join("out.o");
    mark_livepatch(&elf, sym, b".klp.sym.vmlinux.v,0", &out);
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not marked as a livepatch module"), "{text}");
}

#[test]
fn batch_over_a_directory() {
    let dir = scratch("check_batch");
    let good = dir.join("good.o");
    compile_x86_64(
        &format!("{HEADER}{LIVEPATCH_MODINFO}extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\nint f(void) {{ return v; }}\n"),
        &good,
    );
    let converted = dir.join("a_good.ko");
    assert!(klp_convert(&[
        "convert",
        good.to_str().unwrap(),
        "-o",
        converted.to_str().unwrap()
    ])
    .status
    .success());
    std::fs::rename(&good, dir.join("b_unconverted.ko")).unwrap();
    let plain = dir.join("c_plain.o");
    compile_x86_64("int g(void) { return 1; }\n", &plain);
    std::fs::rename(&plain, dir.join("c_plain.ko")).unwrap();
    let (code, text) = check(&dir, &[]);
    assert_eq!(code, 1, "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("  ")).collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].ends_with("a_good.ko: ok"), "{text}");
    assert!(
        lines[1].ends_with("b_unconverted.ko: 1 error, 0 warnings"),
        "{text}"
    );
    assert!(
        lines[2].ends_with("c_plain.ko: ok (not a livepatch module)"),
        "{text}"
    );
    assert_eq!(
        lines[3],
        "checked 3 modules: 1 with errors, 0 with warnings only, 1 not livepatch modules"
    );
}

/// A converted x86_64 module and the index of its first klp section.
fn converted_x86(test: &str, source: &str) -> (PathBuf, Vec<u8>) {
    let dir = scratch(test);
    let obj = dir.join("lp.o");
    compile_x86_64(&format!("{HEADER}{LIVEPATCH_MODINFO}{source}"), &obj);
    let out = dir.join("out.o");
    convert_ok(&obj, &out);
    let bytes = std::fs::read(&out).unwrap();
    (out, bytes)
}

/// `f` reading vmlinux's `v`, converted: the file, its bytes, and its klp
/// section `.klp.rela.vmlinux..text.f`.
fn converted_v(test: &str) -> (PathBuf, Vec<u8>, klp_convert::elf::Section<'static>) {
    converted_in(test, "vmlinux")
}

/// `f` reading `v` of `obj` (vmlinux or a module), converted: the file, its
/// bytes, and its klp section `.klp.rela.<obj>..text.f`.
fn converted_in(test: &str, obj: &str) -> (PathBuf, Vec<u8>, klp_convert::elf::Section<'static>) {
    let (out, bytes) = converted_x86(
        test,
        &format!("extern int v KLP_RELOC_SYMBOL({obj}, {obj}, v);\nint f(void) {{ return v; }}\n"),
    );
    let name: &'static [u8] = format!(".klp.rela.{obj}..text.f").into_bytes().leak();
    let klp = klp_convert::elf::Section {
        name,
        ..Elf::parse(&bytes).unwrap().section_by_name(name).unwrap()
    };
    (out, bytes, klp)
}

/// Overwrite a little-endian field of section `index`'s header.
fn poke_header(bytes: &mut [u8], index: usize, field: usize, value: &[u8]) {
    let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap()) as usize;
    let at = shoff + index * 64 + field;
    bytes[at..at + value.len()].copy_from_slice(value);
}

#[test]
fn klp_section_headers() {
    let (out, good, klp) = converted_v("check_headers");
    let target = klp.sh_info as usize;
    let cases: [(usize, Vec<u8>, usize, &str); 3] = [
        (
            klp.index,
            1u32.to_le_bytes().to_vec(),
            4,
            "klp relocation section is not SHT_RELA (sh_type 1)",
        ),
        (
            klp.index,
            0u32.to_le_bytes().to_vec(),
            44,
            "sh_info 0 is not a valid target section",
        ),
        (
            target,
            0u64.to_le_bytes().to_vec(),
            8,
            "target section .text.f is not SHF_ALLOC",
        ),
    ];
    for (index, value, field, words) in cases {
        let mut bad = good.clone();
        poke_header(&mut bad, index, field, &value);
        std::fs::write(&out, &bad).unwrap();
        let (code, text) = check(&out, &[]);
        assert_eq!(code, 1, "{words}: {text}");
        assert!(text.contains(words), "{words}: {text}");
        assert!(text.contains("section .klp.rela.vmlinux..text.f"), "{text}");
    }
    // What the kernel does not read: a vmlinux klp section's SHF_ALLOC (it
    // is applied from the load image while the module loads), and sh_link
    // (klp_write_section_relocs always passes the module's .symtab).
    let mut unalloc = good.clone();
    poke_header(
        &mut unalloc,
        klp.index,
        8,
        &(klp.sh_flags & !2).to_le_bytes(),
    );
    std::fs::write(&out, &unalloc).unwrap();
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 0, "{text}");
    let mut link = good.clone();
    poke_header(&mut link, klp.index, 40, &1u32.to_le_bytes());
    std::fs::write(&out, &link).unwrap();
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("note: section .klp.rela.vmlinux..text.f: sh_link is 1, not the index of .symtab: the kernel ignores sh_link"),
        "{text}"
    );
    // A module's klp section is applied after the load: it must be allocated.
    let (out, good, klp) = converted_in("check_headers_module", "my_mod");
    let mut unalloc = good.clone();
    poke_header(
        &mut unalloc,
        klp.index,
        8,
        &(klp.sh_flags & !2).to_le_bytes(),
    );
    std::fs::write(&out, &unalloc).unwrap();
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("error: section .klp.rela.my_mod..text.f: klp relocation section for a module lacks SHF_ALLOC: it is applied after the module's load (klp_apply_object_relocs)"),
        "{text}"
    );
}

#[test]
fn section_name_the_kernel_misreads() {
    // The minimal klp-convert wrote `.klp.rela.vmlinux__jump_table`.
    let (out, mut bytes) = converted_x86(
        "check_misread",
        "extern int key KLP_RELOC_SYMBOL(vmlinux, vmlinux, key);\n\
         static void *entry[2] __attribute__((section(\"__jump_table\"), used)) = {0, &key};\n",
    );
    let good = b".klp.rela.vmlinux.__jump_table\0";
    let at = bytes.windows(good.len()).position(|w| w == good).unwrap();
    bytes[at..at + good.len()].copy_from_slice(b".klp.rela.vmlinux__jump_table\0\0");
    std::fs::write(&out, &bytes).unwrap();
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("the kernel reads the object of this section as 'vmlinux__jump_table' (no '.' before the target __jump_table)"),
        "{text}"
    );
    assert!(
        text.contains("name it .klp.rela.vmlinux.__jump_table"),
        "{text}"
    );
}

/// A converted module whose klp section is `.klp.rela.\u{e9}\u{e9}` (object
/// `\u{e9}\u{e9}`, UTF-8 `c3 a9 c3 a9`) and whose `sh_info` target is a
/// section named by the one byte `a9`: the object ends with the target's
/// bytes, and the target's display name (U+FFFD) is longer than its bytes.
/// The misread rule once sliced the object by that display length and
/// panicked.
fn non_utf8_target(test: &str) -> (PathBuf, Vec<u8>) {
    let (out, mut bytes, klp) = converted_v(test);
    let name = b".klp.rela.vmlinux..text.f\0";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap();
    let new = b".klp.rela.\xc3\xa9\xc3\xa9\0\xa9\0";
    bytes[at..at + name.len()].fill(0);
    bytes[at..at + new.len()].copy_from_slice(new);
    let target_name = klp.sh_name + 15;
    poke_header(
        &mut bytes,
        klp.sh_info as usize,
        0,
        &target_name.to_le_bytes(),
    );
    let elf = Elf::parse(&bytes).unwrap();
    assert_eq!(
        elf.sections.at(klp.index).name,
        b".klp.rela.\xc3\xa9\xc3\xa9"
    );
    assert_eq!(elf.sections.at(klp.sh_info as usize).name, b"\xa9");
    drop(elf);
    std::fs::write(&out, &bytes).unwrap();
    (out, bytes)
}

/// What `check` finds in [`non_utf8_target`]'s module: the misread object,
/// which is not vmlinux and so may not reach vmlinux's symbols (an object
/// file: no note that it has no patch table to read).
const BROKEN: &[&str] = &["klp-section-object", "vmlinux-from-module-section"];

fn rules(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// The rule ids of `check --format json` for each file, in order.
fn check_json(paths: &[&Path]) -> (i32, Vec<(String, Vec<String>)>, String) {
    let mut args = vec!["check", "--format", "json"];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    let r = klp_convert(&args);
    let json: serde_json::Value = serde_json::from_slice(&r.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&r.stdout)));
    let files = json
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let file = m["file"].as_str().unwrap().to_string();
            let rules = m["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["rule"].as_str().unwrap().to_string())
                .collect();
            (file, rules)
        })
        .collect();
    (r.status.code().unwrap_or(-1), files, stderr(&r))
}

#[test]
fn non_utf8_names_the_kernel_misreads_do_not_panic() {
    let (out, _) = non_utf8_target("check_non_utf8_misread");
    let (code, files, err) = check_json(&[&out]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(files, [(out.display().to_string(), rules(BROKEN))]);
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("  error: section .klp.rela.\u{e9}\u{e9}: the kernel reads the object of this section as '\u{e9}\u{e9}' (no '.' before the target \\xA9): its relocations are never applied; name it .klp.rela.\u{e9}\\xC3.\\xA9\n"),
        "{text}"
    );
    let show = klp_convert(&["show", out.to_str().unwrap(), "--format", "json"]);
    assert_eq!(show.status.code(), Some(1), "{}", stderr(&show));
    let json: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let mut found: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    found.sort_unstable();
    let mut want = BROKEN.to_vec();
    want.sort_unstable();
    assert_eq!(found, want);
    assert_eq!(json["summary"]["errors"], 2);
    let converted = out.with_extension("klp.o");
    expect_convert_refused(
        &out,
        &converted,
        "the kernel reads the object of this section as",
    );
}

/// One module that once panicked `check` and a good one, in one
/// directory: both are reported, and the run fails.
#[test]
fn batch_reports_every_module_around_a_broken_one() {
    let (bad, _) = non_utf8_target("check_batch_broken");
    let dir = bad.parent().unwrap().to_path_buf();
    std::fs::rename(&bad, dir.join("a_broken.ko")).unwrap();
    let (good, _) = converted_x86(
        "check_batch_broken_good",
        "extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\nint f(void) { return v; }\n",
    );
    std::fs::rename(&good, dir.join("b_good.ko")).unwrap();
    let (code, files, err) = check_json(&[&dir]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        files,
        [
            (dir.join("a_broken.ko").display().to_string(), rules(BROKEN)),
            (dir.join("b_good.ko").display().to_string(), rules(&[])),
        ]
    );
    let (code, text) = check(&dir, &[]);
    assert_eq!(code, 1, "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("  ")).collect();
    assert_eq!(
        lines,
        [
            format!(
                "{}: 2 errors, 0 warnings",
                dir.join("a_broken.ko").display()
            )
            .as_str(),
            format!("{}: ok", dir.join("b_good.ko").display()).as_str(),
            "checked 2 modules: 1 with errors, 0 with warnings only, 0 not livepatch modules",
        ]
    );
}

/// An ordinary relocation against vmlinux's export: the loader links it
/// at the address the maps give, and a field that cannot hold it is
/// refused as a klp relocation's would be (the s390x module-export case
/// is a fuzz regression, `tests/fuzz_regressions.rs`). `convert` leaves a
/// vmlinux export as it is, and refuses the module for the same reason.
#[test]
fn x86_64_absolute_overflow_of_an_exported_symbol() {
    let dir = scratch("check_export_32s");
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!("{HEADER}{LIVEPATCH_MODINFO}extern int v;\nint *f(void) {{ return &v; }}\n"),
        &obj,
    );
    let symvers = dir.join("Module.symvers");
    std::fs::write(&symvers, "0x12345678\tv\tvmlinux\tEXPORT_SYMBOL\t\n").unwrap();
    let (fits, far) = (dir.join("System.map-fits"), dir.join("System.map-far"));
    std::fs::write(&fits, "ffffffff81a00000 D v\n").unwrap();
    std::fs::write(&far, "0000000100000000 D v\n").unwrap();
    let with = |map: &Path| -> Vec<String> {
        [
            "--symbols",
            map.to_str().unwrap(),
            "--symbols",
            symvers.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let (code, text) = check(&obj, &refs(&with(&fits)));
    assert!(
        !text.contains("absolute-overflow") && !text.contains("overflow in"),
        "{text}"
    );
    assert!(
        code == 0 || !text.contains("error: section .rela.text"),
        "{text}"
    );
    let (code, text) = check(&obj, &refs(&with(&far)));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(
            "error: section .rela.text.f, offset 0x3, symbol 'v': overflow in relocation type 11 val 100000000: R_X86_64_32S cannot hold the resolved address; the loader refuses the module"
        ),
        "{text}"
    );
    let out = dir.join("out.o");
    let mut args = vec![
        "convert",
        obj.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let far_args = with(&far);
    args.extend(refs(&far_args));
    let r = klp_convert(&args);
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("overflow in relocation type 11 val 100000000"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn x86_64_absolute_relocation_overflow_with_a_map() {
    // -mcmodel=kernel takes the address as a sign-extended 32-bit immediate.
    let (out, bytes) = converted_x86(
        "check_32s",
        "extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\nint *f(void) { return &v; }\n",
    );
    let elf = Elf::parse(&bytes).unwrap();
    let rel = elf
        .relocs
        .iter()
        .find(|r| elf.sections.at(r.index).name.starts_with(b".klp.rela."))
        .unwrap();
    assert_eq!(rel.get(0).unwrap().r_type, object::elf::R_X86_64_32S);
    let dir = out.parent().unwrap();
    let kernel_map = dir.join("kallsyms-good");
    std::fs::write(&kernel_map, "ffffffff81a00000 D v\n").unwrap();
    let (code, text) = check(&out, &["--symbols", kernel_map.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let bad_map = dir.join("kallsyms-bad");
    std::fs::write(&bad_map, "0000000100000000 D v\n").unwrap();
    let (code, text) = check(&out, &["--symbols", bad_map.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("overflow in relocation type 11 val 100000000"),
        "{text}"
    );
    // The module through a pipe (`check --symbols MAP <(cat lp.ko)`): not
    // read for its names first (that would drain the pipe), so the maps
    // are read whole and the pipe once, by the check.
    let mut child = Command::new(env!("CARGO_BIN_EXE_klp-convert"))
        .args(["check", "/dev/stdin", "--symbols"])
        .arg(&bad_map)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let module = std::fs::read(&out).unwrap();
    std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &module));
    let r = child.wait_with_output().unwrap();
    let piped = String::from_utf8_lossy(&r.stdout);
    assert_eq!(
        r.status.code(),
        Some(1),
        "{piped}{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(
        piped.contains("overflow in relocation type 11 val 100000000"),
        "{piped}"
    );
}

#[test]
fn resolution_against_maps() {
    let (out, _) = converted_x86(
        "check_resolution",
        "extern int a KLP_RELOC_SYMBOL(vmlinux, vmlinux, dup);\n\
         extern int b KLP_RELOC_SYMBOL_POS(vmlinux, vmlinux, dup, 2);\n\
         extern int c KLP_RELOC_SYMBOL(vmlinux, vmlinux, gone);\n\
         extern int d KLP_RELOC_SYMBOL(some_mod, some_mod, x);\n\
         extern int printk(const char *, ...);\n\
         extern int hidden(void);\n\
         int f(void) { return a + b + c + d + printk(\"\") + hidden(); }\n",
    );
    let dir = out.parent().unwrap();
    let kallsyms = dir.join("kallsyms");
    std::fs::write(
        &kallsyms,
        "ffffffff81000200 t dup\nffffffff81000100 t dup\n",
    )
    .unwrap();
    let symvers = dir.join("Module.symvers");
    std::fs::write(&symvers, "0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n").unwrap();
    let (code, text) = check(
        &out,
        &[
            "--symbols",
            kallsyms.to_str().unwrap(),
            "--symbols",
            symvers.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("unresolvable ambiguity for symbol 'dup' in object 'vmlinux': 2 candidates (position 1 at 0xffffffff81000100, position 2 at 0xffffffff81000200)"), "{text}");
    assert!(
        text.contains("symbol 'gone' not found in symbol table"),
        "{text}"
    );
    assert!(
        text.contains("object 'some_mod' is not in the symbol maps given"),
        "{text}"
    );
    assert!(text.contains("Unknown symbol hidden (err -2)"), "{text}");
    assert!(!text.contains("Unknown symbol printk"), "{text}");
    let (_, json) = check(
        &out,
        &["--format", "json", "--symbols", kallsyms.to_str().unwrap()],
    );
    assert!(
        json.contains("resolves to 0xffffffff81000200 in vmlinux (position 2 of 2)"),
        "{json}"
    );
}

/// `convert`, given maps, judges the klp symbols a module already has as
/// `check` does: a second pass over a module converted without maps
/// refuses the ambiguous position 0 the kernel would refuse.
#[test]
fn convert_with_maps_judges_existing_klp_symbols() {
    let (out, _) = converted_x86(
        "convert_existing_klp",
        "extern int a KLP_RELOC_SYMBOL(vmlinux, vmlinux, dup);\nint f(void) { return a; }\n",
    );
    let dir = out.parent().unwrap();
    let kallsyms = dir.join("kallsyms");
    std::fs::write(
        &kallsyms,
        "ffffffff81000200 t dup\nffffffff81000100 t dup\n",
    )
    .unwrap();
    let symvers = dir.join("Module.symvers");
    std::fs::write(&symvers, "0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n").unwrap();
    let again = dir.join("again.o");
    let r = klp_convert(&[
        "convert",
        out.to_str().unwrap(),
        "--symbols",
        kallsyms.to_str().unwrap(),
        "--symbols",
        symvers.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("unresolvable ambiguity for symbol 'dup' in object 'vmlinux'"),
        "{}",
        stderr(&r)
    );
    assert!(!again.exists());
}

/// A module with nothing to convert goes out as it came only if `check`
/// accepts it: a module's klp section without `SHF_ALLOC` is refused by both.
#[test]
fn convert_refuses_what_check_refuses_with_nothing_to_convert() {
    let (out, mut bytes, klp) = converted_in("convert_nothing_but_broken", "my_mod");
    let elf = Elf::parse(&bytes).unwrap();
    let flags = (elf.shoff + klp.index as u64 * u64::from(elf.shentsize) + 8) as usize;
    let value = u64::from_le_bytes(bytes[flags..flags + 8].try_into().unwrap()) & !2; // SHF_ALLOC
    bytes[flags..flags + 8].copy_from_slice(&value.to_le_bytes());
    std::fs::write(&out, &bytes).unwrap();
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("klp relocation section for a module lacks SHF_ALLOC"),
        "{text}"
    );
    let again = out.with_file_name("again.o");
    let r = klp_convert(&[
        "convert",
        out.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("klp relocation section for a module lacks SHF_ALLOC"),
        "{}",
        stderr(&r)
    );
    assert!(!again.exists());
}

#[test]
fn unknown_machine_gets_the_structural_rules_and_a_note() {
    let (out, mut bytes) = converted_x86(
        "check_machine",
        "extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\nint f(void) { return v; }\n",
    );
    bytes[0x12..0x14].copy_from_slice(&243u16.to_le_bytes()); // EM_RISCV
    std::fs::write(&out, &bytes).unwrap();
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("note: loader rules for riscv are not modelled"),
        "{text}"
    );
}

/// A 32-bit absolute reference (`.long sym`) on each 64-bit architecture,
/// checked with a map that puts the symbol above 4 GiB and one below.
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn absolute_32_bit_fields_with_a_map() {
    for (cc, flags, words) in [
        (
            "s390x-linux-gnu-gcc",
            &["-fPIC"][..],
            "R_390_32 cannot hold the resolved address; the loader refuses",
        ),
        (
            "aarch64-linux-gnu-gcc",
            &[][..],
            "R_AARCH64_ABS32 cannot hold the resolved address; the loader refuses",
        ),
        (
            "powerpc64le-linux-gnu-gcc",
            &["-mcmodel=medium"][..],
            "R_PPC64_ADDR32 cannot hold the resolved address; the ppc64 loader stores it truncated",
        ),
    ] {
        let dir = scratch(&format!("check_abs32_{}", cc.split('-').next().unwrap()));
        let obj = dir.join("lp.o");
        compile(
            cc,
            flags,
            &format!(
                "{LIVEPATCH_MODINFO}__asm__(\".section .data.abs,\\\"aw\\\"\\n.long .klp.sym.rela.vmlinux.vmlinux.v.0\\n.previous\");\n"
            ),
            &obj,
        );
        let out = dir.join("out.o");
        convert_ok(&obj, &out);
        let low = dir.join("low");
        std::fs::write(&low, "0000000000a00000 D v\n").unwrap();
        let (code, text) = check(&out, &["--symbols", low.to_str().unwrap()]);
        assert_eq!(code, 0, "{cc}: {text}");
        let high = dir.join("high");
        std::fs::write(&high, "0000001000000000 D v\n").unwrap();
        let (code, text) = check(&out, &["--symbols", high.to_str().unwrap()]);
        assert_eq!(code, 1, "{cc}: {text}");
        assert!(text.contains(words), "{cc}: {text}");
        assert!(
            text.contains("section .klp.rela.vmlinux..data.abs, offset 0x0"),
            "{cc}: {text}"
        );
    }
}

/// A linked module (it has `.gnu.linkonce.this_module`) calling vmlinux's
/// `f`, with `sections` (assembler `.section` lines) added.
fn linked_module_source(sections: &[&str]) -> String {
    let asm: String = sections
        .iter()
        .map(|s| format!("__asm__(\"{s}\\n.previous\");\n"))
        .collect();
    format!(
        "{HEADER}{LIVEPATCH_MODINFO}{asm}\
         char this_module[64] __attribute__((section(\".gnu.linkonce.this_module\")));\n\
         extern int f(int) KLP_RELOC_SYMBOL(vmlinux, vmlinux, f);\nint g(int x) {{ return f(x) + 1; }}\n"
    )
}

/// [`linked_module_source`] compiled by `compiler` into a scratch directory
/// named after `test`: (directory, object).
fn compile_linked_module(
    test: &str,
    compiler: &str,
    flags: &[&str],
    sections: &[&str],
) -> (PathBuf, PathBuf) {
    let dir = scratch(test);
    let obj = dir.join("lp.o");
    compile(compiler, flags, &linked_module_source(sections), &obj);
    (dir, obj)
}

/// A linked arm64 module needs its PLT sections.
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn aarch64_module_plt_sections() {
    for with_plt in [false, true] {
        let sections: &[&str] = if with_plt {
            &[".section .plt,\\\"ax\\\"", ".section .init.plt,\\\"ax\\\""]
        } else {
            &[]
        };
        let (_, obj) = compile_linked_module(
            &format!("check_arm64_plt_{with_plt}"),
            "aarch64-linux-gnu-gcc",
            &[],
            sections,
        );
        let (code, text) = check(&obj, &[]);
        let missing = text.contains("module PLT section(s) missing (.plt, .init.plt)");
        assert_eq!(missing, !with_plt, "{text}");
        if !with_plt {
            assert_eq!(code, 1, "{text}");
        }
    }
}

/// A linked ppc64 module needs its `.stubs` section: the loader routes every
/// call to another object through a stub there and refuses a module without.
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn ppc64le_module_stubs_section() {
    for with_stubs in [false, true] {
        let sections: &[&str] = if with_stubs {
            &[".section .stubs,\\\"ax\\\",@nobits"]
        } else {
            &[]
        };
        let (dir, obj) = compile_linked_module(
            &format!("check_ppc64le_stubs_{with_stubs}"),
            "powerpc64le-linux-gnu-gcc",
            &["-mcmodel=medium"],
            sections,
        );
        let out = dir.join("out.o");
        let r = klp_convert(&[
            "convert",
            obj.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        let words = "no .stubs section: the ppc64 loader refuses the module";
        if with_stubs {
            assert!(r.status.success(), "{}", stderr(&r));
            let (code, text) = check(&out, &[]);
            assert_eq!(code, 0, "{text}");
            assert!(!text.contains(words), "{text}");
        } else {
            // convert runs the same check on its output and writes nothing.
            assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
            assert!(stderr(&r).contains(words), "{}", stderr(&r));
            assert!(!out.exists());
            let (code, text) = check(&obj, &[]);
            assert_eq!(code, 1, "{text}");
            assert!(text.contains(words), "{text}");
        }
    }
}

/// The rules on klp symbols and entries that the kernel checks while
/// resolving (`klp_resolve_symbols`, `klp_apply_section_relocs`), each broken
/// in a converted module by patching its bytes.
#[test]
fn klp_symbol_and_entry_rules() {
    let (out, good, klp) = converted_v("check_klp_symbols");
    let elf = Elf::parse(&good).unwrap();
    let sym = elf
        .symbols
        .iter()
        .find(|s| s.name == b".klp.sym.vmlinux.v,0")
        .unwrap()
        .index as usize;
    let replace = |bytes: &mut Vec<u8>, from: &[u8], to: &[u8]| {
        let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
        bytes[at..at + to.len()].copy_from_slice(to);
    };
    let check_with = |bytes: &[u8], words: &str| {
        std::fs::write(&out, bytes).unwrap();
        let (code, text) = check(&out, &[]);
        assert_eq!(code, 1, "{words}: {text}");
        assert!(text.contains(words), "{words}: {text}");
    };

    // A klp relocation against a symbol that is not SHN_LIVEPATCH.
    let mut edit = Edit::new(&elf);
    let name = edit.add_symbol_name(b".klp.sym.vmlinux.v,0");
    edit.patch_symbol(sym, name, klp.sh_info as u16);
    check_with(
        &edit.finish().unwrap(),
        "symbol .klp.sym.vmlinux.v,0 is not marked as a livepatch symbol",
    );

    // A klp symbol name without its position.
    let mut bad = good.clone();
    replace(
        &mut bad,
        b".klp.sym.vmlinux.v,0\0",
        b".klp.sym.vmlinux.v;0\0",
    );
    check_with(
        &bad,
        "symbol .klp.sym.vmlinux.v;0 has an incorrectly formatted name",
    );

    // A klp section name without an object.
    let mut bad = good.clone();
    replace(
        &mut bad,
        b".klp.rela.vmlinux..text.f\0",
        b".klp.rela.........text.f\0",
    );
    check_with(
        &bad,
        "section .klp.rela.........text.f has an incorrectly formatted name",
    );

    // An entry whose offset lies beyond its target section.
    let mut bad = good.clone();
    let at = klp.sh_offset as usize;
    bad[at..at + 8].copy_from_slice(&0x10000u64.to_le_bytes());
    check_with(
        &bad,
        "offset lies beyond the end of the target section .text.f",
    );
}

/// PC-relative klp relocations against a symbol no module placement can
/// reach: modules are loaded within 2 GiB of the kernel image on x86_64,
/// arm64 and s390, so a map that puts the symbol farther than the field
/// reaches from there predicts the loader's overflow. Real kernels never
/// get there (their symbols are all near the image); crafted maps do.
/// x86's zero-based per-CPU offsets are near the kernel modulo 2^64.
#[test]
fn pc_relative_range_with_a_map() {
    let dir = scratch("check_pc_range_x86_64");
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{LIVEPATCH_MODINFO}__asm__(\".section .data.pc,\\\"aw\\\"\\n.long .klp.sym.rela.vmlinux.vmlinux.v.0 - .\\n.previous\");\n"
        ),
        &obj,
    );
    let out = dir.join("out.o");
    convert_ok(&obj, &out);
    let image = "ffffffff81000000 T _text\nffffffff83000000 B _end\n";
    let map = |v: &str| {
        let p = dir.join(format!("map-{v}"));
        std::fs::write(&p, format!("{image}{v} D v\n")).unwrap();
        p
    };
    for near in ["ffffffff82000000", "ffffffffc0001000", "0000000000012340"] {
        let (code, text) = check(&out, &["--symbols", map(near).to_str().unwrap()]);
        assert_eq!(code, 0, "{near}: {text}");
    }
    let far = map("0000100000000000");
    let (code, text) = check(&out, &["--symbols", far.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("section .klp.rela.vmlinux..data.pc, offset 0x0, symbol '.klp.sym.vmlinux.v,0': silent overflow: R_X86_64_PC32 reaches 0x80000000 bytes"),
        "{text}"
    );
    // x86_64's loader writes the low 32 bits without a check.
    assert!(
        text.contains("the loader does not range-check this type: it writes the low 32 bits, and the code reaches another address"),
        "{text}"
    );
    let (_, json) = check(
        &out,
        &["--symbols", far.to_str().unwrap(), "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["findings"][0]["rule"], "pc-relative-range", "{v}");
    // Without the kernel image's extent in the maps, nothing is assumed.
    let bare = dir.join("bare");
    std::fs::write(&bare, "0000100000000000 D v\n").unwrap();
    let (code, text) = check(&out, &["--symbols", bare.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
}

/// The same rule on arm64 (ADRP reaches ±4 GiB; CALL26 falls back to a
/// PLT and is never refused) and s390 (PC32DBL reaches ±4 GiB).
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn pc_relative_range_arm64_and_s390x() {
    for (cc, flags, source, words) in [
        (
            "aarch64-linux-gnu-gcc",
            &[][..],
            "extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\nextern int g(void) KLP_RELOC_SYMBOL(vmlinux, vmlinux, g);\nint f(void) { return v + g(); }\n",
            "R_AARCH64_ADR_PREL_PG_HI21 reaches 0x100000000 bytes",
        ),
        (
            "s390x-linux-gnu-gcc",
            &["-fno-PIC", "-march=z10"][..],
            "extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\nint *f(void) { return &v; }\n",
            "R_390_PC32DBL reaches 0x100000000 bytes",
        ),
    ] {
        let dir = scratch(&format!("check_pc_range_{}", cc.split('-').next().unwrap()));
        let obj = dir.join("lp.o");
        compile(cc, flags, &format!("{HEADER}{LIVEPATCH_MODINFO}{source}"), &obj);
        let out = dir.join("out.o");
        convert_ok(&obj, &out);
        let map = |v: &str| {
            let p = dir.join(format!("map-{v}"));
            std::fs::write(
                &p,
                format!("ffff800080000000 T _text\nffff800082000000 B _end\n{v} D v\n{v} T g\n"),
            )
            .unwrap();
            p
        };
        let (code, text) = check(&out, &["--symbols", map("ffff800081000000").to_str().unwrap()]);
        assert_eq!(code, 0, "{cc}: {text}");
        let (code, text) = check(&out, &["--symbols", map("ffff810000000000").to_str().unwrap()]);
        assert_eq!(code, 1, "{cc}: {text}");
        assert!(text.contains(words), "{cc}: {text}");
        assert!(!text.contains("CALL26"), "{cc}: a call is never refused: {text}");
    }
}

/// What objtool's `klp post-link` leaves in a module that the kernel
/// ignores, so `check` and `convert` must too: the original target renamed
/// `.klp.tombstone.<name>` (SHN_LIVEPATCH, referenced by no klp section, so
/// `klp_resolve_symbols` never parses its name), the original relocation
/// turned into `R_X86_64_NONE` (the loader writes nothing), and the
/// intermediate `__klp_relocs.vmlinux` table (written, never read: a note).
#[test]
fn objtool_leftovers_are_not_errors() {
    let dir = scratch("check_objtool_leftovers");
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}\
             extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);\n\
             char *f(void) {{ return saved_command_line; }}\n\
             __asm__(\".section .text.g,\\\"ax\\\"\\ng: .reloc ., R_X86_64_NONE, .klp.tombstone.saved_command_line\\n.long 0\\n.previous\");\n\
             __asm__(\".section __klp_relocs.vmlinux,\\\"a\\\"\\n.quad .klp.tombstone.saved_command_line\\n.previous\");\n"
        ),
        &obj,
    );
    let converted = dir.join("converted.o");
    convert_ok(&obj, &converted);
    // Mark the tombstone as objtool does: SHN_LIVEPATCH, name unparsable.
    let data = std::fs::read(&converted).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let tomb = elf
        .symbols
        .iter()
        .find(|s| s.name == b".klp.tombstone.saved_command_line")
        .unwrap()
        .index as usize;
    let out = dir.join("objtool.o");
    mark_livepatch(&elf, tomb, b".klp.tombstone.saved_command_line", &out);

    let (code, text) = check(&out, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("incorrectly formatted"), "{text}");
    assert!(
        text.contains("note: section .rela__klp_relocs.vmlinux, offset 0x0, symbol '.klp.tombstone.saved_command_line': objtool's intermediate section __klp_relocs.vmlinux is left in the module"),
        "{text}"
    );
    // convert judges it by the same rules: nothing to do, nothing refused.
    let again = dir.join("again.o");
    convert_ok(&out, &again);
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&out).unwrap());
}

/// ppc64 before 6.3 refuses a patched module's reload when the patch calls
/// into it (the loader finds its own `ld r2,24(r1)` where it wants a nop;
/// seen on a ppc64le 6.1 built from Debian's source); data references
/// re-apply. 6.3 and later re-apply both.
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn ppc64_reload_before_6_3() {
    for (name, source, refused) in [
        (
            "call",
            "extern int g(void) KLP_RELOC_SYMBOL(mod, mod, g);\nint f(void) { return g() + 1; }\n",
            true,
        ),
        (
            "data",
            "extern int v KLP_RELOC_SYMBOL(mod, mod, v);\nint f(void) { return v + 1; }\n",
            false,
        ),
    ] {
        let dir = scratch(&format!("check_ppc64_reload_{name}"));
        let obj = dir.join("lp.o");
        compile(
            "powerpc64le-linux-gnu-gcc",
            &["-mcmodel=medium"],
            &format!("{HEADER}{LIVEPATCH_MODINFO}{source}"),
            &obj,
        );
        let out = dir.join("out.o");
        convert_ok(&obj, &out);
        let (code, text) = check(&out, &["--kernel-release", "6.1.192"]);
        assert_eq!(code, 0, "{name}: {text}");
        assert_eq!(
            text.contains("kernel 6.1.192 (before 6.3) does not clear module-specific klp relocations when the patched module unloads, and ppc64 finds the TOC restore it wrote after a call ('Expected nop after call, got e8410018')"),
            refused,
            "{name}: {text}"
        );
        let (_, text) = check(&out, &["--kernel-release", "6.12.0"]);
        assert!(!text.contains("does not clear"), "{name}: {text}");
    }
}

/// The loader marks a livepatch module by the `livepatch` key of
/// `.modinfo`, whatever its value (`check_modinfo_livepatch`).
#[test]
fn any_livepatch_value_marks_a_livepatch_module() {
    let dir = scratch("check_livepatch_value");
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}static const char __modinfo_lp[] __attribute__((section(\".modinfo\"), used, aligned(1))) = \"livepatch=N\";\n\
             extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\nint f(void) {{ return v; }}\n"
        ),
        &obj,
    );
    let out = dir.join("out.o");
    convert_ok(&obj, &out);
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("not marked as a livepatch module"), "{text}");
}

/// `klp_resolve_symbols` reads the position with `%lu`: leading white space
/// skipped, digits up to the first other byte. `1x` is position 1: a
/// warning, not the refusal the kernel would not make; no digit is refused.
#[test]
fn positions_as_the_kernel_reads_them() {
    let (out, good, _) = converted_v("check_klp_position_form");
    let elf = Elf::parse(&good).unwrap();
    let sym = elf
        .symbols
        .iter()
        .find(|s| s.name == b".klp.sym.vmlinux.v,0")
        .unwrap()
        .index as usize;
    for (name, code, words) in [
        (&b".klp.sym.vmlinux.v,0x"[..], 0, "warning: section .symtab, symbol '.klp.sym.vmlinux.v,0x': position '0x' is not plain digits: the kernel's sscanf (%lu) reads it as 0"),
        (b".klp.sym.vmlinux.v, 0", 0, "position ' 0' is not plain digits: the kernel's sscanf (%lu) reads it as 0"),
        (b".klp.sym.vmlinux.v,x", 1, "has an incorrectly formatted name: position 'x' is not a decimal number"),
        (b".klp.sym.vmlinux.v,-1", 1, "has an incorrectly formatted name: position '-1' is not a decimal number"),
    ] {
        mark_livepatch(&elf, sym, name, &out);
        let (c, text) = check(&out, &[]);
        assert_eq!(c, code, "{text}");
        assert!(text.contains(words), "{words}: {text}");
    }
}

/// `check --format json file`: its status, and every finding as (rule,
/// severity, message).
fn findings(file: &Path) -> (i32, Vec<(String, String, String)>) {
    let (code, json) = check(file, &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let s = |x: &serde_json::Value| x.as_str().unwrap_or_default().to_string();
    let found = v[0]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings in {v}"))
        .iter()
        .map(|x| (s(&x["rule"]), s(&x["severity"]), s(&x["message"])))
        .collect();
    (code, found)
}

/// A linked 32-bit PowerPC module needs `.plt` and `.init.plt`:
/// `module_frob_arch_sections` refuses a module without either.
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn ppc32_module_plt_sections() {
    for with_plt in [false, true] {
        let sections: &[&str] = if with_plt {
            &[".section .plt,\\\"ax\\\"", ".section .init.plt,\\\"ax\\\""]
        } else {
            &[]
        };
        let (_, obj) = compile_linked_module(
            &format!("check_ppc32_plt_{with_plt}"),
            "powerpc-linux-gnu-gcc",
            &["-G0", "-fno-pie", "-msoft-float"],
            sections,
        );
        let (code, findings) = findings(&obj);
        let missing: Vec<_> = findings.iter().filter(|f| f.0 == "ppc32-plt").collect();
        assert_eq!(missing.len(), usize::from(!with_plt), "{findings:?}");
        if !with_plt {
            assert_eq!(code, 1, "{findings:?}");
            assert!(
                missing[0]
                    .2
                    .starts_with("Module doesn't contain .plt or .init.plt sections."),
                "{missing:?}"
            );
        }
    }
}

/// The 32-bit PowerPC loader handles ADDR32, ADDR16_LO/HI/HA, REL24 and
/// REL32 only: a call compiled position independent (`R_PPC_PLTREL24`) into
/// a klp section is refused by `convert`, in the kernel's words.
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn ppc32_unknown_add_relocation() {
    let dir = scratch("check_ppc32_reloc_type");
    let obj = dir.join("lp.o");
    compile(
        "powerpc-linux-gnu-gcc",
        &["-G0", "-fPIC", "-msoft-float"],
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}\
             extern int f(int) KLP_RELOC_SYMBOL(vmlinux, vmlinux, f);\n\
             int g(int x) {{ return f(x) + 1; }}\n"
        ),
        &obj,
    );
    let out = dir.join("out.o");
    let r = klp_convert(&[
        "convert",
        obj.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("unknown ADD relocation: 18: the ppc32 loader does not handle R_PPC_PLTREL24"),
        "{err}"
    );
    assert!(!out.exists());
}

/// `get_plt_size` counts a relocation section's calls for `.init.plt` when
/// its name contains ".init"; `do_plt_call` serves calls in core text from
/// `.plt`. A klp section for a function named `init_*` (under
/// -ffunction-sections) is counted for the wrong PLT: a warning while the
/// per-section spare entries absorb it, an error once they cannot (the
/// trampolines would be written past the end of `.plt`). `foo_init` has no
/// ".init" in its section name and is fine.
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn ppc32_init_plt() {
    // A linked module's form (its PLT sections and module structure): the
    // room in .plt is counted over the linked module's sections.
    let source = |func: &str, calls: usize| {
        let mut s =
            linked_module_source(&[".section .plt,\\\"ax\\\"", ".section .init.plt,\\\"ax\\\""]);
        for i in 0..calls {
            s.push_str(&format!(
                "extern int f{i}(int) KLP_RELOC_SYMBOL(vmlinux, vmlinux, vm_f{i});\n"
            ));
        }
        s.push_str(&format!("int {func}(int x) {{ int r = 0;\n"));
        for i in 0..calls {
            s.push_str(&format!("r += f{i}(x);\n"));
        }
        s.push_str("return r; }\n");
        s
    };
    for (func, calls, want) in [
        ("init_few", 1, Some("warning")),
        ("init_many", 40, Some("error")),
        ("many_init", 40, None),
    ] {
        let dir = scratch(&format!("check_ppc32_init_plt_{func}"));
        let obj = dir.join("lp.o");
        compile(
            "powerpc-linux-gnu-gcc",
            &["-G0", "-fno-pie", "-msoft-float"],
            &source(func, calls),
            &obj,
        );
        let out = dir.join("out.o");
        let r = klp_convert(&[
            "convert",
            obj.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        let err = stderr(&r);
        let section = format!(".klp.rela.vmlinux..text.{func}");
        match want {
            Some("error") => {
                // convert checks its output and writes nothing.
                assert_eq!(r.status.code(), Some(1), "{func}: {err}");
                assert!(err.contains(&section), "{func}: {err}");
                assert!(err.contains("past the end of .plt"), "{func}: {err}");
                assert!(!out.exists());
            }
            _ => {
                assert!(r.status.success(), "{func}: {err}");
                let (code, findings) = findings(&out);
                let found: Vec<_> = findings
                    .iter()
                    .filter(|f| f.0 == "ppc32-init-plt")
                    .collect();
                match want {
                    Some(sev) => {
                        assert_eq!(code, 0, "{findings:?}");
                        assert_eq!(found.len(), 1, "{findings:?}");
                        assert_eq!(found[0].1, sev, "{found:?}");
                        assert!(found[0].2.contains(&section), "{found:?}");
                        assert!(
                            found[0]
                                .2
                                .contains("it fits only thanks to the spare entry"),
                            "{found:?}"
                        );
                    }
                    None => assert!(found.is_empty(), "{findings:?}"),
                }
            }
        }
    }
    // The same module converted without the loader's rules, as a converter
    // that does not ask them writes it: check says error.
    let dir = root().join("target/test-scratch/check_ppc32_init_plt_init_many");
    let data = std::fs::read(dir.join("lp.o")).unwrap();
    let elf = klp_convert::elf::Elf::parse(&data).unwrap();
    let plan = klp_convert::convert::make_plan_with(&elf, None, false)
        .unwrap()
        .0;
    let careless = dir.join("careless.o");
    std::fs::write(
        &careless,
        klp_convert::convert::apply::apply(&elf, &plan).unwrap(),
    )
    .unwrap();
    let (code, findings) = findings(&careless);
    assert_eq!(code, 1, "{findings:?}");
    let found: Vec<_> = findings
        .iter()
        .filter(|f| f.0 == "ppc32-init-plt")
        .collect();
    assert_eq!(found.len(), 1, "{findings:?}");
    assert_eq!(found[0].1, "error", "{found:?}");
}

/// The module loader reads `e_shnum` and `e_shstrndx` as they stand: a
/// module in ELF's extended section numbering is refused by every release
/// (the words differ; tests/kernel_e2e.rs and kernel_xarch.rs load one).
/// `check` refuses either field moved into section 0, and so does
/// `convert`, before it writes anything.
#[test]
fn extended_section_numbering_is_refused() {
    let (converted, bytes) = converted_x86(
        "check_extended_numbering",
        "extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\nint f(void) { return v; }\n",
    );
    let dir = converted.parent().unwrap().to_path_buf();
    let (code, files, _) = check_json(&[&converted]);
    assert_eq!(code, 0);
    assert!(!files[0].1.iter().any(|r| r == "extended-section-numbering"));
    let (count, index) = {
        let elf = Elf::parse(&bytes).unwrap();
        (elf.sections.len(), elf.shstrndx)
    };
    // The count in section 0: 6.13 finds section 0 not empty first, 6.1
    // the name table's index not below an e_shnum of 0. The index in
    // section 0: every 6.x finds SHN_XINDEX not below e_shnum.
    let count_words = format!(
        "(extended numbering: e_shnum 0, for {count} sections): the module loader reads e_shnum and e_shstrndx as they stand and refuses the module (6.13 on and Debian's 6.12: 'ELF Spec violation: section 0 type(0)!=SH_NULL or non-zero len or addr'; 6.1: 'Invalid ELF section name index: {index} || e_shstrndx ({index}) >= e_shnum (0)'; 5.10: 'Module has invalid ELF structures')"
    );
    let index_words = format!(
        "(extended numbering: e_shstrndx SHN_XINDEX, for {count} sections): the module loader reads e_shnum and e_shstrndx as they stand and refuses the module (6.1 on: 'Invalid ELF section name index: 65535 || e_shstrndx (65535) >= e_shnum ({count})'; 5.10: 'Module has invalid ELF structures')"
    );
    for (field, name, words) in [
        (Extended::Count, "count", count_words),
        (Extended::NameIndex, "index", index_words),
    ] {
        let moved = dir.join(format!("lp.{name}.ko"));
        std::fs::write(&moved, extended_numbering(&bytes, field)).unwrap();
        // The reader sees the same sections.
        let data = std::fs::read(&moved).unwrap();
        assert_eq!(Elf::parse(&data).unwrap().sections.len(), count);
        let (code, text) = check(&moved, &[]);
        assert_eq!(code, 1, "{text}");
        assert!(
            text.contains(&format!(
                "error: the ELF header gives the section count or the section name table's index through section 0 {words}; a module must have fewer than 65280 sections"
            )),
            "{text}"
        );
        let (_, files, _) = check_json(&[&moved]);
        assert_eq!(files[0].1, ["extended-section-numbering"]);
        // For a known release, that release's words alone.
        let spec = "'ELF Spec violation: section 0 type(0)!=SH_NULL or non-zero len or addr'";
        let old = "'Module has invalid ELF structures'";
        let shnum = if name == "count" { 0 } else { count };
        let shstrndx = if name == "count" { index } else { 65535 };
        let index_words = format!(
            "'Invalid ELF section name index: {shstrndx} || e_shstrndx ({shstrndx}) >= e_shnum ({shnum})'"
        );
        let by_release = [
            ("5.10.0-33-amd64", old.to_string()),
            ("6.1.0-28-amd64", index_words.clone()),
            (
                "6.12.57+deb13-amd64",
                if name == "count" {
                    format!("{spec}, or before its stable update took 6.13's checks, {index_words}")
                } else {
                    index_words.clone()
                },
            ),
            (
                "7.3.0-1-amd64",
                if name == "count" {
                    spec.to_string()
                } else {
                    index_words.clone()
                },
            ),
        ];
        for (release, words) in by_release {
            let (code, text) = check(&moved, &["--kernel-release", release]);
            assert_eq!(code, 1, "{text}");
            assert!(
                text.contains(&format!(
                    "as they stand and refuses the module ({release}: {words}); a module must have fewer than 65280 sections"
                )),
                "{release}: {text}"
            );
        }
        // convert refuses it as it refuses any module check refuses.
        let out = dir.join(format!("out.{name}.ko"));
        expect_convert_refused(&moved, &out, "extended numbering");
    }
}

/// `convert` counts the sections its output will have before it writes
/// it: 65,279 is the most `e_shnum` holds, and the output is written and
/// checked; one more would need ELF's extended numbering, which the
/// loader refuses, and is refused with nothing written.
#[test]
fn convert_refuses_an_output_the_loader_cannot_number() {
    let dir = scratch("check_section_count");
    // A livepatch module whose one function gains one klp section, and
    // `fill` sections of a byte each (`.section` in a top-level asm).
    let module = |fill: usize| -> PathBuf {
        let mut asm = String::new();
        for n in 0..fill {
            asm.push_str(&format!(".section .fill.{n},\\\"a\\\"\\n.byte 0\\n"));
        }
        let obj = dir.join(format!("lp{fill}.o"));
        compile_x86_64(
            &format!(
                "{HEADER}{LIVEPATCH_MODINFO}extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\n\
                 int f(void) {{ return v; }}\n__asm__(\"{asm}.previous\\n\");\n"
            ),
            &obj,
        );
        obj
    };
    let sections = |p: &Path| {
        let data = std::fs::read(p).unwrap();
        Elf::parse(&data).unwrap().sections.len()
    };
    let base = module(0);
    let out = dir.join("base.ko");
    convert_ok(&base, &out);
    let added = sections(&out) - sections(&base);
    assert_eq!(added, 1);
    let fill = 65_279 - sections(&out);

    // 65,279 sections out: written, e_shnum says so, check accepts it.
    let largest = module(fill);
    let out = dir.join("largest.ko");
    convert_ok(&largest, &out);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(Elf::parse(&bytes).unwrap().e_shnum, 65_279);
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 0, "{text}");

    // 65,280: refused before anything is written.
    let over = module(fill + 1);
    let out = dir.join("over.ko");
    let index = Elf::parse(&std::fs::read(&over).unwrap())
        .unwrap()
        .e_shstrndx;
    expect_convert_refused(&over, &out, &format!("the converted module would have 65280 sections (65279 and 1 new klp relocation sections): 65280 or more need ELF's extended numbering, and the module loader reads e_shnum and e_shstrndx as they stand and refuses the module (6.13 on and Debian's 6.12: 'ELF Spec violation: section 0 type(0)!=SH_NULL or non-zero len or addr'; 6.1: 'Invalid ELF section name index: {index} || e_shstrndx ({index}) >= e_shnum (0)'; 5.10: 'Module has invalid ELF structures'); split the patch into smaller modules"));
}

/// Ordinary relocations into `.data..percpu` against other objects'
/// symbols: an export whose address its field cannot hold, and bytes the
/// x86_64 loader wants zero. Before 6.16 the loader has cleared the per-CPU
/// section's `SHF_ALLOC` when it applies relocations, so it applies neither,
/// and the module loads (its per-CPU copies keep the unrelocated bytes);
/// 6.16 relocates the section, and refuses both. An unknown release is
/// judged. `convert`, which has nothing to convert here, agrees.
#[test]
fn per_cpu_relocations_depend_on_the_release() {
    let dir = scratch("check_export_percpu");
    let module = |name: &str, vermagic: Option<&str>| -> PathBuf {
        let obj = dir.join(format!("{name}.o"));
        let vermagic = vermagic.map_or(String::new(), |v| {
            format!(
                "static const char __modinfo_vermagic[] \
                 __attribute__((section(\".modinfo\"), used, aligned(1))) = \"vermagic={v} \";\n"
            )
        });
        compile_x86_64(
            &format!(
                "{HEADER}{LIVEPATCH_MODINFO}{vermagic}extern int v, w;\n\
                 __asm__(\".section .data..percpu,\\\"aw\\\"\\n.long v\\n\\
                 1: .long 1\\n.reloc 1b, R_X86_64_32, w\\n.previous\\n\");\n"
            ),
            &obj,
        );
        obj
    };
    let maps = far_export(&dir);
    let mut maps: Vec<&str> = maps.iter().map(String::as_str).collect();
    let symvers = dir.join("Module.symvers");
    std::fs::write(
        &symvers,
        "0x12345678\tv\tvmlinux\tEXPORT_SYMBOL\t\n0x12345678\tw\tvmlinux\tEXPORT_SYMBOL\t\n",
    )
    .unwrap();
    // far_export's System.map, among `maps`, given the addresses of v and w.
    let system_map = dir.join("System.map");
    std::fs::write(&system_map, "0000000100000000 D v\n0000000000002000 D w\n").unwrap();
    maps[3] = symvers.to_str().unwrap();
    let refused = [
        "error: section .rela.data..percpu, offset 0x0, symbol 'v': overflow in relocation type 10 val 100000000",
        "error: section .rela.data..percpu, offset 0x4, symbol 'w': Invalid relocation target, existing value is nonzero for type 10 (R_X86_64_32), val 0x1",
    ];
    let old = module(
        "old",
        Some("6.1.0-28-amd64 SMP preempt mod_unload modversions"),
    );
    let new = module(
        "new",
        Some("7.2.0-1-amd64 SMP preempt mod_unload modversions"),
    );
    let unknown = module("unknown", None);
    // 6.1, from the module's vermagic, and 6.12, 6.15 as asked: never
    // applied, nothing to refuse.
    for release in [None, Some("6.12.0-1-amd64"), Some("6.15.9")] {
        let mut args = maps.clone();
        args.extend(
            release
                .map(|r| ["--kernel-release", r])
                .into_iter()
                .flatten(),
        );
        let (code, text) = check(&old, &args);
        assert_eq!(code, 0, "{release:?}: {text}");
        let shown = release.unwrap_or("6.1.0-28-amd64");
        let warning = format!(
            "warning: section .rela.data..percpu: 2 relocations into .data..percpu: kernel {shown} (before 6.16) drops them silently: the loader clears the per-CPU section's SHF_ALLOC and skips relocations into sections without it, so every CPU's copy keeps the unrelocated bytes of the file. Initialise such per-CPU data at init rather than statically"
        );
        assert!(text.contains(&warning), "{text}");
        assert!(text.contains(": 0 errors, 1 warning"), "{text}");
        assert!(
            !text.contains("error: section .rela.data..percpu"),
            "{text}"
        );
    }
    // 6.16 as asked, 7.2 from vermagic, and an unknown release: judged.
    for (module, release) in [(&old, Some("6.16.0")), (&new, None), (&unknown, None)] {
        let mut args = maps.clone();
        args.extend(
            release
                .map(|r| ["--kernel-release", r])
                .into_iter()
                .flatten(),
        );
        let (code, text) = check(module, &args);
        assert_eq!(code, 1, "{text}");
        for words in refused {
            assert!(text.contains(words), "{words}: {text}");
        }
        // An unknown release may be older than 6.16: the warning too.
        let warned = usize::from(module == &unknown);
        assert!(
            text.contains(&format!(": 2 errors, {warned} warning")),
            "{text}"
        );
        assert_eq!(
            text.matches("drops them silently").count(),
            warned,
            "{text}"
        );
        assert_eq!(
            text.matches("2 relocations into .data..percpu: a kernel before 6.16 (the release is unknown) drops them silently").count(),
            warned,
            "{text}"
        );
        assert!(!text.contains("val 2000"), "w fits its field: {text}");
    }
    // convert (no maps: the loader's own rules) writes 6.1's and refuses 7.2's.
    convert_ok(&old, &dir.join("old.ko"));
    expect_convert_refused(
        &new,
        &dir.join("new.ko"),
        "section .rela.data..percpu, offset 0x4, symbol 'w': Invalid relocation target, existing value is nonzero",
    );
}

/// A livepatch module whose `.klp_notes`, a section without `SHF_ALLOC`,
/// holds an `R_X86_64_64` against `f` (in `.rela.klp_notes`), beside an
/// annotated reference from `f`.
fn with_notes(dir: &Path) -> Vec<u8> {
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\n\
             int f(void) {{ return v; }}\n\
             __asm__(\".section .klp_notes,\\\"\\\"\\n.quad f\\n.previous\\n\");\n"
        ),
        &obj,
    );
    std::fs::read(&obj).unwrap()
}

/// The file offsets of section `name`'s contents and of its header.
fn section_at(bytes: &[u8], name: &[u8]) -> (usize, usize) {
    let elf = Elf::parse(bytes).unwrap();
    let s = elf.section_by_name(name).unwrap();
    (
        s.sh_offset as usize,
        elf.shoff as usize + s.index * elf.shentsize as usize,
    )
}

/// A relocation section the kernel never applies (its target not
/// allocated) must be readable all the same: s390's `check_rela` writes
/// through the symbol index of every `SHT_RELA` section's entries, and
/// arm64's `count_plts` reads it for any executable target, before
/// `apply_relocations` skips the section. A symbol index beyond `.symtab`
/// or a partial entry there refuses the file, as in an applied section.
#[test]
fn relocation_sections_never_applied_are_read_all_the_same() {
    let dir = scratch("check_rela_unapplied");
    let bytes = with_notes(&dir);
    // The symbol index of `section`'s first entry made #0xffffff, or its
    // size made one byte short of its entries.
    let broken = |section: &[u8], name: &str, partial: bool| -> PathBuf {
        let mut b = bytes.clone();
        let (at, header) = section_at(&bytes, section);
        if partial {
            let size = u64::from_le_bytes(b[header + 32..header + 40].try_into().unwrap());
            b[header + 32..header + 40].copy_from_slice(&(size - 1).to_le_bytes());
        } else {
            b[at + 12..at + 16].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
        }
        let out = dir.join(name);
        std::fs::write(&out, &b).unwrap();
        out
    };
    for section in [&b".rela.klp_notes"[..], b".rela.text.f"] {
        let name = String::from_utf8_lossy(section).into_owned();
        for (partial, words) in [
            (
                false,
                format!("error: not a readable ELF object: section {name}: entry 0 (offset 0x"),
            ),
            (
                true,
                format!("error: not a readable ELF object: section {name}: size 0x"),
            ),
        ] {
            let file = broken(section, &format!("{name}.{partial}.o"), partial);
            let (code, text) = check(&file, &[]);
            assert_eq!(code, 1, "{text}");
            assert!(text.contains(&words), "{text}");
            let out = dir.join(format!("{name}.{partial}.ko"));
            let what = "error: not a readable ELF object: ".len();
            expect_convert_refused(&file, &out, &words[what..]);
        }
    }
}

/// A relocation section whose `sh_info` names no section is skipped by the
/// loader, but the klp sections `convert` appends would give it one, which
/// the loader would then patch: `convert` refuses such a module; `check`
/// passes what it converted from the same module with `sh_info` past the
/// new sections too.
#[test]
fn a_dangling_target_gains_no_section() {
    let dir = scratch("check_rela_dangling");
    let bytes = with_notes(&dir);
    let dangle = |info: u32, name: &str| -> PathBuf {
        let mut b = bytes.clone();
        let (_, header) = section_at(&bytes, b".rela.klp_notes");
        b[header + 44..header + 48].copy_from_slice(&info.to_le_bytes());
        let out = dir.join(name);
        std::fs::write(&out, &b).unwrap();
        out
    };
    let count = Elf::parse(&bytes).unwrap().sections.len() as u32;
    let file = dangle(count, "at-count.o");
    expect_convert_refused(
        &file,
        &dir.join("at-count.ko"),
        &format!("section .rela.klp_notes: sh_info {count} names no section (the module has {count}); the loader skips it, but the 1 section this conversion adds would give it a target: give it a valid sh_info, or 0"),
    );
    // Past the output's sections as well: converted, and nothing to judge.
    let file = dangle(count + 1, "past.o");
    let out = dir.join("past.ko");
    convert_ok(&file, &out);
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 0, "{text}");
}

/// The loader and the livepatch core read every relocation section against
/// the module's one symbol table, whatever its `sh_link` says: a section
/// linked elsewhere (here to section 0) is applied all the same, so
/// `check` judges it and `convert` converts its references.
#[test]
fn relocation_sections_are_read_whatever_their_link() {
    let dir = scratch("check_rela_link");
    let unlink = |input: &Path, section: &[u8], out: &Path| {
        let mut bytes = std::fs::read(input).unwrap();
        let (at, index) = {
            let elf = Elf::parse(&bytes).unwrap();
            let index = elf.section_by_name(section).unwrap().index;
            (
                elf.shoff as usize + index * elf.shentsize as usize + 40,
                index,
            )
        };
        bytes[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
        std::fs::write(out, &bytes).unwrap();
        index
    };
    // An ordinary reference to an export whose address overflows its field.
    let obj = dir.join("export.o");
    compile_x86_64(
        &format!("{HEADER}{LIVEPATCH_MODINFO}extern int v;\nint *f(void) {{ return &v; }}\n"),
        &obj,
    );
    let unlinked = dir.join("export.unlinked.o");
    unlink(&obj, b".rela.text.f", &unlinked);
    let maps = far_export(&dir);
    let maps: Vec<&str> = maps.iter().map(String::as_str).collect();
    let (code, text) = check(&unlinked, &maps);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("error: section .rela.text.f, offset 0x3, symbol 'v': overflow in relocation type 11 val 100000000"),
        "{text}"
    );
    // An annotated reference: converted from the unlinked section too.
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\n\
             int f(void) {{ return v; }}\n"
        ),
        &obj,
    );
    let unlinked = dir.join("lp.unlinked.o");
    let index = unlink(&obj, b".rela.text.f", &unlinked);
    let out = dir.join("lp.ko");
    convert_ok(&unlinked, &out);
    let bytes = std::fs::read(&out).unwrap();
    let elf = Elf::parse(&bytes).unwrap();
    let klp = elf
        .relocs
        .iter()
        .find(|r| elf.sections.at(r.index).name == b".klp.rela.vmlinux..text.f")
        .expect("the klp section");
    assert_eq!(klp.len(), 1);
    assert_eq!(
        elf.symbols[klp.get(0).unwrap().sym as usize].name,
        b".klp.sym.vmlinux.v,0"
    );
    let rest = elf.relocs.iter().find(|r| r.index == index).unwrap();
    assert_eq!(rest.len(), 0, "the reference stayed in .rela.text.f");
    let (code, text) = check(&out, &[]);
    assert_eq!(code, 0, "{text}");
}

/// `--symbols` arguments giving an export `v` of vmlinux at 4 GiB, where no
/// 32-bit field holds it (files written into `dir`).
fn far_export(dir: &Path) -> Vec<String> {
    let symvers = dir.join("Module.symvers");
    std::fs::write(&symvers, "0x12345678\tv\tvmlinux\tEXPORT_SYMBOL\t\n").unwrap();
    let far = dir.join("System.map");
    std::fs::write(&far, "0000000100000000 D v\n").unwrap();
    [far, symvers]
        .iter()
        .flat_map(|p| ["--symbols".to_string(), p.display().to_string()])
        .collect()
}
