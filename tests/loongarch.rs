//! The LoongArch loader rules (src/arch/loongarch64.rs) on objects built by
//! the LoongArch cross compiler of the trixie chroot
//! (`common::loongarch_tool`): the PC-relative reference to vmlinux that
//! the loader writes wrong without a word (`-mdirect-extern-access`), the
//! types it refuses (`-mcmodel=medium`'s `CALL36`, `-mcmodel=extreme`'s
//! `GOT64_PC_*`), the `PCADD` pairs it looks for in one relocation section,
//! the GOT/PLT sections it needs, and the GOT entries a module-specific
//! klp relocation takes anew on each load of its module.

mod common;
mod kernel_common;

use std::path::{Path, PathBuf};

use common::*;
use kernel_common::klp_reloc_types;

/// The livepatch fragment: a vmlinux function, vmlinux data, a module's.
const SOURCE: &str = r#"
extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);
extern int vm_func(int) KLP_RELOC_SYMBOL(vmlinux, vmlinux, vm_func);
extern const char homonym_a[]
	KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, homonym_string, 1);
int f1(int x) { return vm_func(x) + saved_command_line[0]; }
const char *f2(void) { return homonym_a; }
"#;

/// Compile `source` (after the annotation header and livepatch modinfo)
/// with the chroot's gcc, as kbuild compiles LoongArch modules plus `flags`.
fn build(test: &str, source: &str, flags: &[&str]) -> (PathBuf, PathBuf) {
    let dir = scratch(test);
    let obj = dir.join("lp.o");
    let mut all = vec!["-mno-relax"];
    all.extend_from_slice(flags);
    compile(
        &loongarch_tool("gcc"),
        &all,
        &format!("{HEADER}{LIVEPATCH_MODINFO}{source}"),
        &obj,
    );
    (dir, obj)
}

/// `convert IN -o OUT`: (exit code, stderr).
fn convert(input: &Path, out: &Path) -> (i32, String) {
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    (r.status.code().unwrap_or(-1), stderr(&r))
}

/// `check --format json FILE`: (exit code, [(rule, severity, message)]).
fn check(file: &Path) -> (i32, Vec<(String, String, String)>) {
    let r = klp_convert(&["check", "--format", "json", file.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    let v: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("check json: {e}: {out}{}", stderr(&r)));
    let s = |x: &serde_json::Value| x.as_str().unwrap_or_default().to_string();
    let findings = v[0]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings in {v}"))
        .iter()
        .map(|x| (s(&x["rule"]), s(&x["severity"]), s(&x["message"])))
        .collect();
    (r.status.code().unwrap_or(-1), findings)
}

/// The module converted without asking the loader: what a converter that
/// does not know these rules writes.
fn careless(input: &Path, out: &Path) {
    let data = std::fs::read(input).unwrap();
    let elf = klp_convert::elf::Elf::parse(&data).unwrap();
    let plan = klp_convert::convert::make_plan_with(&elf, None, false)
        .unwrap()
        .0;
    std::fs::write(
        out,
        klp_convert::convert::apply::apply(&elf, &plan).unwrap(),
    )
    .unwrap();
}

fn with_rule<'a>(
    findings: &'a [(String, String, String)],
    rule: &str,
) -> Vec<&'a (String, String, String)> {
    findings.iter().filter(|f| f.0 == rule).collect()
}

#[test]
#[ignore = "tier 2: needs the trixie chroot's LoongArch cross compiler (scripts/build-kernels loongarch64); scripts/test runs it"]
fn pc_relative_reference_to_vmlinux_is_refused_and_reported() {
    // -mdirect-extern-access: saved_command_line through pcalau12i
    // (PCALA_HI20/LO12) instead of the GOT.
    let (dir, obj) = build("loongarch_pcrel_far", SOURCE, &["-mdirect-extern-access"]);
    let out = dir.join("lp.klp.o");
    let (code, err) = convert(&obj, &out);
    assert_eq!(code, 1, "{err}");
    assert!(!out.exists());
    assert!(
        err.contains("R_LARCH_PCALA_HI20 against vmlinux's 'saved_command_line' is PC-relative and the LoongArch loader does not range-check it"),
        "{err}"
    );
    assert!(err.contains("without -mdirect-extern-access"), "{err}");
    // Only the vmlinux symbol: the module's homonym_string is within reach.
    assert!(!err.contains("homonym_string"), "{err}");

    // Written anyway: check reports each PCALA_HI20, an error.
    let bad = dir.join("lp.careless.o");
    careless(&obj, &bad);
    let (code, findings) = check(&bad);
    assert_eq!(code, 1, "{findings:?}");
    let far = with_rule(&findings, "loongarch-pcrel-far");
    assert!(!far.is_empty(), "{findings:?}");
    for f in &far {
        assert_eq!(f.1, "error");
        assert!(
            f.2.starts_with("R_LARCH_PCALA_HI20 against vmlinux's 'saved_command_line'"),
            "{f:?}"
        );
    }

    // The fixed form: the GOT, converted and accepted.
    let (dir, obj) = build("loongarch_pcrel_far_fixed", SOURCE, &[]);
    let out = dir.join("lp.klp.o");
    let (code, err) = convert(&obj, &out);
    assert_eq!(code, 0, "{err}");
    let types = klp_reloc_types(&out);
    assert!(types.contains("R_LARCH_GOT_PC_HI20"), "{types:?}");
    assert!(!types.contains("R_LARCH_PCALA_HI20"), "{types:?}");
    let (_, findings) = check(&out);
    assert!(
        with_rule(&findings, "loongarch-pcrel-far").is_empty(),
        "{findings:?}"
    );
    assert!(findings.iter().all(|f| f.1 != "error"), "{findings:?}");
}

#[test]
#[ignore = "tier 2: needs the trixie chroot's LoongArch cross compiler (scripts/build-kernels loongarch64); scripts/test runs it"]
fn types_the_loader_does_not_handle() {
    for (flags, ty, words) in [
        (
            "-mcmodel=medium",
            "R_LARCH_CALL36",
            "Unsupport relocation type 110, please add its support.",
        ),
        (
            "-mcmodel=extreme",
            "R_LARCH_GOT64_PC_LO20",
            "Unsupport relocation type 77, please add its support.",
        ),
    ] {
        let (dir, obj) = build(&format!("loongarch_types{flags}"), SOURCE, &[flags]);
        let out = dir.join("lp.klp.o");
        let (code, err) = convert(&obj, &out);
        assert_eq!(code, 1, "{flags}: {err}");
        assert!(
            err.contains(&format!(
                "{words}: the loongarch loader does not handle {ty}"
            )),
            "{flags}: {err}"
        );
        let bad = dir.join("lp.careless.o");
        careless(&obj, &bad);
        let (code, findings) = check(&bad);
        assert_eq!(code, 1, "{findings:?}");
        assert!(
            with_rule(&findings, "reloc-type")
                .iter()
                .any(|f| f.2.contains(words)),
            "{flags}: {findings:?}"
        );
    }
}

/// The bytes of `file` with every relocation of `from` made `to` (ELF64
/// little endian RELA: the type is the low word of `r_info`).
fn retype(file: &Path, pairs: &[(u32, u32)]) {
    use object::{Object as _, ObjectSection as _};
    let mut data = std::fs::read(file).unwrap();
    let ranges: Vec<(usize, usize)> = {
        let f = object::File::parse(&*data).unwrap();
        f.sections()
            .filter(|s| s.name().is_ok_and(|n| n.starts_with(".rela")))
            .filter_map(|s| s.file_range())
            .map(|(o, n)| (o as usize, n as usize))
            .collect()
    };
    for (start, len) in ranges {
        for e in (start..start + len).step_by(24) {
            let at = e + 8;
            let t = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
            if let Some((_, to)) = pairs.iter().find(|(from, _)| *from == t) {
                data[at..at + 4].copy_from_slice(&to.to_le_bytes());
            }
        }
    }
    std::fs::write(file, data).unwrap();
}

#[test]
#[ignore = "tier 2: needs the trixie chroot's LoongArch cross compiler (scripts/build-kernels loongarch64); scripts/test runs it"]
fn pcadd_pairs_stay_in_one_relocation_section() {
    // binutils 2.44 has no PCADD relocations: assemble a GOT_PC pair whose
    // LO12 names the HI20's place by a label, as GOT_PCADD_LO12 does, and
    // retype it (GOT_PC_HI20/LO12 75/76 -> GOT_PCADD_HI20/LO12 130/131).
    // Through the GOT, so in reach: only the pair is in question.
    let dir = scratch("loongarch_pcadd");
    let asm = dir.join("lp.s");
    std::fs::write(
        &asm,
        r#"	.section .modinfo,"a"
	.string "livepatch=Y"
	.text
	.globl f
f:
hi_label:
	.reloc ., R_LARCH_GOT_PC_HI20, ".klp.sym.rela.vmlinux.vmlinux.saved_command_line.0"
	pcaddu12i $t0, 0
	.reloc ., R_LARCH_GOT_PC_LO12, hi_label
	ld.d $t0, $t0, 0
	jr $ra
"#,
    )
    .unwrap();
    let obj = dir.join("lp.o");
    let r = std::process::Command::new(loongarch_tool("as"))
        .arg(&asm)
        .arg("-o")
        .arg(&obj)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", stderr(&r));
    retype(&obj, &[(75, 130), (76, 131)]);

    // As compiled, the pair is whole: nothing to say.
    let (_, findings) = check(&obj);
    assert!(
        with_rule(&findings, "loongarch-pcadd-pair").is_empty(),
        "{findings:?}"
    );
    // convert cannot keep the pair together: it refuses the HI20.
    let out = dir.join("lp.klp.o");
    let (code, err) = convert(&obj, &out);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("R_LARCH_GOT_PCADD_HI20 against 'saved_command_line' of 'vmlinux' cannot become a klp relocation: its R_LARCH_GOT_PCADD_LO12 partner names it by a label in this module"),
        "{err}"
    );
    // Split anyway: the LO12 left in .rela.text has lost its partner.
    let bad = dir.join("lp.careless.o");
    careless(&obj, &bad);
    let (code, findings) = check(&bad);
    assert_eq!(code, 1, "{findings:?}");
    let split = with_rule(&findings, "loongarch-pcadd-pair");
    assert_eq!(split.len(), 1, "{findings:?}");
    assert!(
        split[0].2.starts_with("Can not find HI20 relocation information: the loader looks for the R_LARCH_GOT_PCADD_HI20 partner of this R_LARCH_GOT_PCADD_LO12 (at the place its symbol 'hi_label' names) in the same relocation section only"),
        "{split:?}"
    );
}

#[test]
#[ignore = "tier 2: needs the trixie chroot's LoongArch cross compiler (scripts/build-kernels loongarch64); scripts/test runs it"]
fn linked_module_needs_got_and_plt_sections() {
    // A linked module is one with .gnu.linkonce.this_module.
    let this_module =
        "int this_module __attribute__((section(\".gnu.linkonce.this_module\"))) = 1;\n";
    let (dir, obj) = build(
        "loongarch_got_plt",
        &format!("{this_module}int f(void) {{ return 0; }}\n"),
        &[],
    );
    let (_, findings) = check(&obj);
    let missing = with_rule(&findings, "loongarch-got-plt");
    assert_eq!(missing.len(), 1, "{findings:?}");
    assert_eq!(missing[0].1, "error");
    assert!(
        missing[0]
            .2
            .starts_with("module GOT section(s) missing (.got, .plt, .plt.idx): the LoongArch loader refuses the module"),
        "{missing:?}"
    );
    drop(dir);
    // With the three sections (kbuild's module.lds.h makes them): none.
    let sections = "char got[1] __attribute__((section(\".got\"))), plt[1] __attribute__((section(\".plt\"))), idx[1] __attribute__((section(\".plt.idx\")));\n";
    let (_, obj) = build(
        "loongarch_got_plt_present",
        &format!("{this_module}{sections}int f(void) {{ return 0; }}\n"),
        &[],
    );
    let (_, findings) = check(&obj);
    assert!(
        with_rule(&findings, "loongarch-got-plt").is_empty(),
        "{findings:?}"
    );
}

#[test]
#[ignore = "tier 2: needs the trixie chroot's LoongArch cross compiler (scripts/build-kernels loongarch64); scripts/test runs it"]
fn module_specific_got_entries_warn() {
    let (dir, obj) = build("loongarch_got_reload", SOURCE, &[]);
    let out = dir.join("lp.klp.o");
    let (code, err) = convert(&obj, &out);
    assert_eq!(code, 0, "{err}");
    let (code, findings) = check(&out);
    assert_eq!(code, 0, "{findings:?}");
    let warned = with_rule(&findings, "loongarch-got-reload");
    assert_eq!(warned.len(), 1, "{findings:?}");
    assert_eq!(warned[0].1, "warning");
    assert!(
        warned[0]
            .2
            .contains("R_LARCH_GOT_PC_HI20 against 'homonym_string' of 'klp_test_target'")
            && warned[0]
                .2
                .contains("\"module contains bad GOT relocation\""),
        "{warned:?}"
    );
    // vmlinux symbols never move: saved_command_line's GOT entry is fine.
    assert!(!warned[0].2.contains("saved_command_line"), "{warned:?}");
}
