//! How the loaders write klp relocations after the livepatch module loaded,
//! and where that goes wrong without a refusal:
//!
//! * s390 writes a GOT or PLT entry once (`s390-got-stale`);
//! * ppc64 writes its data types with plain stores, so into read-only
//!   memory they fault (`late-reloc-read-only`, an error there);
//! * the per-CPU section loses `SHF_ALLOC` at load (`percpu-target`).
//!
//! Modules compiled by the host gcc and by the cross compilers the suite
//! uses (s390x with kbuild's `-fPIC` for modules), converted, and checked.

mod common;

use std::path::Path;

use common::*;

/// `check --format json [extra] file`: the status and every finding as
/// (rule, severity, message).
fn check(file: &Path, extra: &[&str]) -> (i32, Vec<(String, String, String)>) {
    let f = file.to_str().unwrap();
    let r = klp_convert(&[&["check", "--format", "json"][..], extra, &[f]].concat());
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{}", stderr(&r)));
    let s = |x: &serde_json::Value| x.as_str().unwrap_or_default().to_string();
    let findings = v[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (s(&x["rule"]), s(&x["severity"]), s(&x["message"])))
        .collect();
    (r.status.code().unwrap_or(-1), findings)
}

/// The findings of one rule.
fn of<'a>(
    findings: &'a [(String, String, String)],
    rule: &str,
) -> Vec<&'a (String, String, String)> {
    findings.iter().filter(|f| f.0 == rule).collect()
}

/// A `.modinfo` vermagic entry for `release`.
fn vermagic(release: &str) -> String {
    format!(
        "static const char __modinfo_vm[] __attribute__((section(\".modinfo\"), used, aligned(1))) = \"vermagic={release} SMP mod_unload \";\n"
    )
}

const S390_STALE: &str = "s390 writes a GOT or PLT entry once and never again (R_390_GOTENT against 'homonym_string' of 'klp_test_target'): if 'klp_test_target' is unloaded and loaded again at another address while this patch stays enabled, the patched code still goes through the old entry, to the old address: it reads what another module has there by then, or faults (both seen on s390x 6.1). Declare those symbols __attribute__((visibility(\"hidden\"))) in the livepatch, so that GCC reaches them relative to the module (R_390_GOTOFF64, R_390_PC32DBL) rather than through a GOT entry, and the loader recomputes them on every application; or never reload that module while the patch is enabled";

/// Item 4: a module's data read through the GOT (kbuild builds s390
/// modules with -fPIC) is a warning, with what happens and what to do;
/// the same symbol declared hidden, a call (brasl, PLT32DBL, direct in
/// the module area) and vmlinux data (which never moves) are not.
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn s390_got_entry_of_a_module_symbol_goes_stale() {
    let dir = scratch("late_writes_s390_got");
    let compile_s390 = |src: &str, name: &str| {
        let obj = dir.join(format!("{name}.o"));
        compile(
            "s390x-linux-gnu-gcc",
            &["-fPIC"],
            &format!("{HEADER}{LIVEPATCH_MODINFO}{src}"),
            &obj,
        );
        let out = dir.join(format!("{name}.out.o"));
        convert_ok(&obj, &out);
        out
    };
    let got = compile_s390(
        "extern const char homonym_a[]\n\
         \tKLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, homonym_string, 1);\n\
         int f(int x) { return homonym_a[x]; }\n",
        "got",
    );
    let (code, findings) = check(&got, &[]);
    assert_eq!(code, 0, "{findings:?}");
    let stale = of(&findings, "s390-got-stale");
    assert_eq!(stale.len(), 1, "{findings:?}");
    assert_eq!(stale[0].1, "warning");
    assert_eq!(stale[0].2, S390_STALE);

    // What the message advises, and what never moves: no warning.
    let fine = compile_s390(
        "extern const char homonym_h[]\n\
         \tKLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, homonym_string, 1)\n\
         \t__attribute__((visibility(\"hidden\")));\n\
         extern int helper(int) KLP_RELOC_SYMBOL(klp_test_target, klp_test_target, helper);\n\
         extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);\n\
         int f(int x) { return homonym_h[x] + helper(x) + saved_command_line[0]; }\n",
        "fine",
    );
    let types = klp_types(&fine);
    assert!(
        types.contains(&("klp_test_target".into(), "R_390_PLT32DBL".into())),
        "{types:?}"
    );
    assert!(
        !types.contains(&("klp_test_target".into(), "R_390_GOTENT".into())),
        "{types:?}"
    );
    assert!(
        types.contains(&("vmlinux".into(), "R_390_GOTENT".into())),
        "{types:?}"
    );
    let (code, findings) = check(&fine, &[]);
    assert_eq!(code, 0, "{findings:?}");
    assert!(of(&findings, "s390-got-stale").is_empty(), "{findings:?}");
}

/// (object of the klp section, relocation type) of every klp relocation.
fn klp_types(file: &Path) -> Vec<(String, String)> {
    use klp_convert::elf::{Elf, SHF_RELA_LIVEPATCH};
    let data = std::fs::read(file).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let mut out = Vec::new();
    for rs in &elf.relocs {
        let sec = &elf.sections.at(rs.index);
        if sec.sh_flags & SHF_RELA_LIVEPATCH == 0 {
            continue;
        }
        let obj = klp_convert::names::klp_section_object(sec.name).unwrap();
        for r in rs.entries() {
            out.push((
                String::from_utf8_lossy(obj).into_owned(),
                klp_convert::arch::reloc_type_name(elf.machine, r.r_type),
            ));
        }
    }
    out
}

/// A pointer to a module's data in read-only memory and in
/// `.data..ro_after_init`, and one in ordinary data. GCC makes a section
/// it must relocate writable, whatever its name: the assembler's flags are
/// forced for `.rodata.ro_ptr` (the `#` comments out GCC's own).
const POINTERS: &str = "extern const char homonym_a[]\n\
    \tKLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, homonym_string, 1);\n\
    const char *const ro_ptr\n\
    \t__attribute__((section(\".rodata.ro_ptr,\\\"a\\\",@progbits #\"))) = homonym_a;\n\
    const char *rai_ptr __attribute__((section(\".data..ro_after_init\"))) = homonym_a;\n\
    const char *rw_ptr = homonym_a;\n";

/// Item 5: ppc64 stores `R_PPC64_ADDR64` with a plain store on every
/// release, so a late one into `.rodata` or `.data..ro_after_init` faults
/// (an error, whatever the release); into writable data it is fine. x86_64
/// writes the same through text_poke() since 5.8 (a note on 6.1).
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn ppc64_late_data_stores_into_read_only_memory_fault() {
    let dir = scratch("late_writes_ppc64");
    let obj = dir.join("lp.o");
    compile(
        "powerpc64le-linux-gnu-gcc",
        &["-mcmodel=medium"],
        &format!("{HEADER}{LIVEPATCH_MODINFO}{POINTERS}"),
        &obj,
    );
    // convert refuses it: what it writes, check passes.
    let out = dir.join("out.o");
    let r = convert_o(&obj, &out);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("late relocation into read-only section .rodata.ro_ptr: ppc64 writes R_PPC64_ADDR64 with a plain store"),
        "{}",
        stderr(&r)
    );
    assert!(!out.exists());
    // check, on what a converter that does not ask would write.
    let data = std::fs::read(&obj).unwrap();
    let elf = klp_convert::elf::Elf::parse(&data).unwrap();
    let plan = klp_convert::convert::make_plan_with(&elf, None, false)
        .unwrap()
        .0;
    std::fs::write(
        &out,
        klp_convert::convert::apply::apply(&elf, &plan).unwrap(),
    )
    .unwrap();
    for release in ["6.1.0", "7.2.0"] {
        let (code, findings) = check(&out, &["--kernel-release", release]);
        assert_eq!(code, 1, "{findings:?}");
        let late = of(&findings, "late-reloc-read-only");
        assert_eq!(late.len(), 2, "{findings:?}");
        assert!(late.iter().all(|f| f.1 == "error"), "{late:?}");
        assert_eq!(
            late[1].2,
            "late relocation into read-only section .rodata.ro_ptr: ppc64 writes R_PPC64_ADDR64 with a plain store, not through patch_instruction(), on every release; the section is read-only from the livepatch module's load on, so the store faults when the relocation is applied (when 'klp_test_target' is loaded). Keep what the patch relocates against 'klp_test_target' in writable data (not const, not __ro_after_init)"
        );
        assert_eq!(
            late[0].2,
            "late relocation into read-only section .data..ro_after_init: ppc64 writes R_PPC64_ADDR64 with a plain store, not through patch_instruction(), on every release; the section is made read-only when the livepatch module's init ends, so the store faults whenever 'klp_test_target' loads after the patch or is loaded again under it (it succeeds only while the patch's own init applies it, 'klp_test_target' being loaded first). Keep what the patch relocates against 'klp_test_target' in writable data (not const, not __ro_after_init)"
        );
    }

    // The same on x86_64: text_poke() since 5.8, a note.
    let obj = dir.join("x86.o");
    compile_x86_64(&format!("{HEADER}{LIVEPATCH_MODINFO}{POINTERS}"), &obj);
    let out = dir.join("x86.out.o");
    convert_ok(&obj, &out);
    let (code, findings) = check(&out, &["--kernel-release", "6.1.0"]);
    assert_eq!(code, 0, "{findings:?}");
    let late = of(&findings, "late-reloc-read-only");
    assert_eq!(late.len(), 2, "{findings:?}");
    assert!(late.iter().all(|f| f.1 == "note"), "{late:?}");
}

/// Per-CPU data of the livepatch module that points at a vmlinux symbol
/// and at a module symbol.
fn percpu_source(obj: &str) -> String {
    format!(
        "extern int target_int KLP_RELOC_SYMBOL({obj}, {obj}, target_int);\n\
         int *pcpu_ptr __attribute__((section(\".data..percpu\"))) = &target_int;\n"
    )
}

/// Item 6: a vmlinux klp relocation into `.data..percpu` is dropped before
/// 6.16 (the loader cleared the section's SHF_ALLOC and skips it) and
/// applied from 6.16; a module-specific one writes into the freed load
/// image on every release. `convert` refuses both where `check` does.
#[test]
fn percpu_targets_depend_on_the_release() {
    let dir = scratch("late_writes_percpu");
    let build = |obj: &str, release: &str| {
        let o = dir.join(format!("{obj}-{release}.o"));
        compile_x86_64(
            &format!(
                "{HEADER}{LIVEPATCH_MODINFO}{}{}",
                vermagic(release),
                percpu_source(obj)
            ),
            &o,
        );
        o
    };
    let dropped = "klp relocation into .data..percpu: kernel 6.12.0 (before 6.16) drops it silently: the loader clears the per-CPU section's SHF_ALLOC and skips relocations into sections without it, so the per-CPU copies keep the unrelocated bytes. Keep the reference out of per-CPU data: store it in ordinary data and copy it in at init";
    let freed = "klp relocation into .data..percpu: it is applied late, when 'klp_test_target' loads, at the section's address in the module's load image, which the loader freed after loading: it never reaches the per-CPU copies, and writes into freed memory (every release). Keep the reference out of per-CPU data: store it in ordinary data and copy it in at init";

    // vmlinux, 6.12: convert refuses; check, given a module converted
    // for 7.2, says the same for 6.12 and 6.1, and nothing for 7.2.
    let old = build("vmlinux", "6.12.0");
    let out = dir.join("vmlinux-6.12.out.o");
    let r = klp_convert(&[
        "convert",
        old.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains(dropped), "{}", stderr(&r));
    assert!(!out.exists());
    let new = build("vmlinux", "7.2.0");
    let out = dir.join("vmlinux-7.2.out.o");
    convert_ok(&new, &out);
    let (code, findings) = check(&out, &[]);
    assert_eq!(code, 0, "{findings:?}");
    assert!(of(&findings, "percpu-target").is_empty(), "{findings:?}");
    for (release, code_wanted) in [("6.12.0", 1), ("6.1.0", 1), ("6.16.0", 0)] {
        let (code, findings) = check(&out, &["--kernel-release", release]);
        assert_eq!(code, code_wanted, "{release}: {findings:?}");
        let p = of(&findings, "percpu-target");
        if code_wanted == 0 {
            assert!(p.is_empty(), "{release}: {findings:?}");
            continue;
        }
        assert_eq!(p.len(), 1, "{findings:?}");
        assert_eq!(p[0].1, "error");
        assert_eq!(p[0].2, dropped.replace("6.12.0", release));
    }

    // A module's symbol: refused on every release.
    let m = build("klp_test_target", "7.2.0");
    let out = dir.join("mod.out.o");
    let r = klp_convert(&["convert", m.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains(freed), "{}", stderr(&r));
    // As another tool would write it: check says the same.
    let data = std::fs::read(&m).unwrap();
    let elf = klp_convert::elf::Elf::parse(&data).unwrap();
    let plan = klp_convert::convert::make_plan(&elf, None);
    assert!(plan.is_err(), "convert plans it");
    let (code, findings) = check(&build_unchecked(&dir), &[]);
    assert_eq!(code, 1, "{findings:?}");
    let p = of(&findings, "percpu-target");
    assert_eq!(p.len(), 1, "{findings:?}");
    assert_eq!(p[0].2, freed);
}

/// The loader judges only what it applies. A vmlinux klp relocation into
/// `.data..percpu` over non-zero bytes is dropped before 6.16: `check`
/// gives `percpu-target` alone, not x86_64's refusal of the bytes, which
/// comes from 6.16 on, when the loader applies it. One into a section
/// without `SHF_ALLOC` is never applied (`target-not-alloc` alone); a
/// module-specific one there is, late, and its bytes are judged too.
/// Converted for 7.2 over zero bytes into an allocated section, then made
/// so by hand (`convert` refuses both).
#[test]
fn only_what_the_loader_applies_is_judged() {
    use klp_convert::elf::Elf;
    let dir = scratch("late_writes_applied");
    let build = |name: &str, obj: &str, section: &str, unalloc: bool| {
        let o = dir.join(format!("{name}.o"));
        compile_x86_64(
            &format!(
                "{HEADER}{LIVEPATCH_MODINFO}{}__asm__(\".section {section},\\\"aw\\\"\\n\\
                 1: .quad 0\\n.reloc 1b, R_X86_64_64, \\\".klp.sym.rela.{obj}.{obj}.target_int.0\\\"\\n\\
                 .previous\\n\");\n",
                vermagic("7.2.0"),
            ),
            &o,
        );
        let out = dir.join(format!("{name}.out.o"));
        convert_ok(&o, &out);
        let mut data = std::fs::read(&out).unwrap();
        let elf = Elf::parse(&data).unwrap();
        let target = elf.section_by_name(section.as_bytes()).unwrap();
        let (at, header) = (target.sh_offset as usize, target.index);
        let shoff = u64::from_le_bytes(data[0x28..0x30].try_into().unwrap()) as usize;
        data[at] = 1;
        if unalloc {
            data[shoff + header * 64 + 8] &= !2; // SHF_ALLOC
        }
        std::fs::write(&out, data).unwrap();
        out
    };
    let nonzero =
        "Invalid relocation target, existing value is nonzero for type 1 (R_X86_64_64), val 0x1";
    let judged = |findings: &[(String, String, String)]| {
        findings
            .iter()
            .any(|f| f.0 == "x86-target-nonzero" && f.2.contains(nonzero))
    };
    let percpu = build("percpu", "vmlinux", ".data..percpu", false);
    for (release, dropped) in [("6.12.0", true), ("6.15.0", true), ("6.16.0", false)] {
        let (code, findings) = check(&percpu, &["--kernel-release", release]);
        assert_eq!(code, 1, "{release}: {findings:?}");
        assert_eq!(of(&findings, "percpu-target").len(), usize::from(dropped));
        assert_eq!(judged(&findings), !dropped, "{release}: {findings:?}");
    }
    let unalloc = build("unalloc", "vmlinux", ".data.klp_unalloc", true);
    let (code, findings) = check(&unalloc, &[]);
    assert_eq!(code, 1, "{findings:?}");
    assert_eq!(of(&findings, "target-not-alloc").len(), 1, "{findings:?}");
    assert!(!judged(&findings), "{findings:?}");
    assert_eq!(
        of(&findings, "target-not-alloc")[0].2,
        "target section .data.klp_unalloc is not SHF_ALLOC: the module loader skips these klp relocations silently"
    );
    let late = build("late", "klp_test_target", ".data.klp_unalloc", true);
    let (code, findings) = check(&late, &[]);
    assert_eq!(code, 1, "{findings:?}");
    let p = of(&findings, "target-not-alloc");
    assert_eq!(p.len(), 1, "{findings:?}");
    assert_eq!(
        p[0].2,
        "target section .data.klp_unalloc is not SHF_ALLOC: the livepatch core applies these klp relocations late, when 'klp_test_target' loads, at the section's address in the module's load image, which the loader freed after loading: they write into freed memory"
    );
    assert!(judged(&findings), "{findings:?}");
}

/// The module-specific case converted without the refusals, the way a tool
/// that does not know the rule would: the vmlinux build's plan (accepted
/// for 7.2), its object renamed.
fn build_unchecked(dir: &Path) -> std::path::PathBuf {
    let src = dir.join("vmlinux-7.2.0.o");
    let data = std::fs::read(src).unwrap();
    let elf = klp_convert::elf::Elf::parse(&data).unwrap();
    let mut plan = klp_convert::convert::make_plan(&elf, None).unwrap().0;
    for s in &mut plan.sections {
        s.obj = b"klp_test_target".to_vec().into();
    }
    for r in plan.renames.iter_mut() {
        r.klp.obj = b"klp_test_target".to_vec().into();
    }
    let out = dir.join("mod.unchecked.o");
    std::fs::write(
        &out,
        klp_convert::convert::apply::apply(&elf, &plan).unwrap(),
    )
    .unwrap();
    out
}

/// s390's `apply_rela` refuses a type it does not handle ("module %s:
/// unknown relocation: %u"): a TLS type in a livepatch is refused by
/// `convert` in those words (audit row S2).
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn s390_unknown_relocation_type_is_refused() {
    let dir = scratch("late_writes_s390_type");
    let obj = dir.join("lp.o");
    compile(
        "s390x-linux-gnu-gcc",
        &[],
        &format!(
            "{LIVEPATCH_MODINFO}__asm__(\".data\\n.globl d\\nd: .quad 0\\n.reloc d, R_390_TLS_GD64, .klp.sym.rela.vmlinux.vmlinux.v.0\\n\");\n"
        ),
        &obj,
    );
    let out = dir.join("out.o");
    let r = convert_o(&obj, &out);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("section .rela.data, offset 0x0, symbol '.klp.sym.rela.vmlinux.vmlinux.v.0': unknown relocation: 41: the s390 loader does not handle type 41"),
        "{}",
        stderr(&r)
    );
    assert!(!out.exists());
}
