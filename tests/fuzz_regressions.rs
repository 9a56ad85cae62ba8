//! What fuzzing found, kept: every `fuzz/corpus/*/regression-*` input (a
//! crash or a broken invariant, fixed since) goes through `show`, `check`
//! (with the `convert_map` target's map) and `convert` without a panic, and
//! a conversion it accepts converts again to the same bytes. The
//! `structured` target's inputs are not modules but what its generator
//! builds modules and maps from: they are replayed through the generator
//! and the target's own invariants (`fuzz/fuzz_targets/gen`).

mod common;

#[path = "../fuzz/fuzz_targets/gen/mod.rs"]
mod gen;

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

/// Run klp-convert with `args` and the two map files.
fn with_maps(args: &[&str], maps: &[std::path::PathBuf; 2]) -> std::process::Output {
    let mut all = args.to_vec();
    for m in maps {
        all.extend(["--symbols", m.to_str().unwrap()]);
    }
    klp_convert(&all)
}

#[test]
fn fuzz_findings_stay_fixed() {
    let dir = scratch("fuzz_regressions");
    let maps = maps(&dir);
    let mut inputs = Vec::new();
    for target in std::fs::read_dir(root().join("fuzz/corpus"))
        .unwrap()
        .flatten()
        .filter(|t| t.file_name() != "structured")
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
        // With the map: check does not panic; what convert accepts, check
        // accepts with the same map, and converting it again changes nothing.
        let r = with_maps(&["check", file], &maps);
        assert!(
            matches!(r.status.code(), Some(0..=2)),
            "{file}: {}",
            stderr(&r)
        );
        let convert = |input: &str, out: &std::path::Path| {
            let _ = std::fs::remove_file(out);
            with_maps(&["convert", input, "-o", out.to_str().unwrap()], &maps)
        };
        let r = convert(file, &out);
        assert!(
            matches!(r.status.code(), Some(0..=2)),
            "{file}: {}",
            stderr(&r)
        );
        assert!(!stderr(&r).contains("panicked"), "{file}: {}", stderr(&r));
        assert_eq!(r.status.success(), out.exists(), "{file}: {}", stderr(&r));
        if out.exists() {
            let o = out.to_str().unwrap();
            let c = with_maps(&["check", o], &maps);
            assert!(
                c.status.success(),
                "{file}: check of its output: {}",
                String::from_utf8_lossy(&c.stdout)
            );
            let again = dir.join("again.o");
            let r = convert(o, &again);
            assert!(r.status.success(), "{file}: {}", stderr(&r));
            assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
        }
    }
}

/// Convert the regression input `name` with the maps; assert that it is
/// refused (exit 1) with every message in `expect` and nothing written.
/// The input and the scratch output path.
fn refused_with_maps(name: &str, expect: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = scratch(&format!("fuzz_regression_{name}"));
    let input = root().join("fuzz/corpus/convert_map").join(name);
    let out = dir.join("out.ko");
    let r = with_maps(
        &[
            "convert",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &maps(&dir),
    );
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    let err = stderr(&r);
    for e in expect {
        assert!(err.contains(e), "{e}: {err}");
    }
    assert!(!out.exists());
    (input, out)
}

/// Fuzz finding: with the map, an `R_X86_64_32` reference to a vmlinux
/// address was converted although the address does not fit; the kernel
/// (and `check`) refuse the result. `convert` now refuses it, naming the
/// field, and writes nothing.
#[test]
fn convert_refuses_an_absolute_field_the_map_overflows() {
    let (input, out) = refused_with_maps(
        "regression-overflow-after-conversion.o",
        &[
            "R_X86_64_32 cannot hold the resolved address",
            "saved_command_line",
        ],
    );
    // Without the map there is nothing to know the address by: accepted.
    let r = convert_o(&input, &out);
    assert!(r.status.success(), "{}", stderr(&r));
}

/// Fuzz finding (allocation bound): a 2,456-byte module whose
/// `.init.klp_objects` claims 27,392 functions made `check` read past the
/// funcs section and report 27,391 findings. The count is now bounded by
/// the bytes present, and the overrun is one error.
#[test]
fn nr_funcs_past_its_section_is_one_error() {
    let input = root().join("fuzz/corpus/elf/regression-nr-funcs-overrun.ko");
    let r = klp_convert(&["check", input.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1));
    let out = String::from_utf8_lossy(&r.stdout).into_owned();
    assert!(
        out.contains("has nr_funcs 27392, but its funcs section holds 2 more entries"),
        "{out}"
    );
    assert!(out.lines().count() < 10, "{out}");
}

/// Fuzz finding: with a map, `convert` accepted a module with undefined
/// symbols no relocation uses (`saved_command_line`, a module's `helper`):
/// nothing to convert, but the loader still resolves every undefined
/// symbol and fails on them. `convert` now refuses what `check` refuses.
#[test]
fn convert_with_maps_refuses_unknown_symbols_no_relocation_uses() {
    refused_with_maps(
        "regression-unreferenced-undefined.ko",
        &["Unknown symbol saved_command_line", "Unknown symbol helper"],
    );
}

/// Fuzz finding (allocation bound): a 1.8 KB module whose `.strtab` claims
/// an alignment of 16 MiB (and one of 1 TiB) made the writer reserve a
/// megabyte of padding before refusing it, and the refusal was reported
/// as an internal error. The writer now moves sections aligned to at most
/// a page, and refuses more as bad input, naming the section.
///
/// The two fuzz inputs' `KLP_SYMPOS` entries name symbols the klp grammar
/// cannot hold (an empty name, a name with `,`): they are now refused while
/// planning, before the writer. A compiled module with the same
/// alignments keeps the writer's refusal covered.
#[test]
fn a_table_aligned_beyond_a_page_is_refused_as_bad_input() {
    let dir = scratch("fuzz_regression_alignment");
    for (target, name, why) in [
        (
            "convert_map",
            "regression-strtab-16m-alignment.ko",
            "symbol '': KLP_SYMPOS: empty symbol name",
        ),
        (
            "elf",
            "regression-strtab-huge-alignment.ko",
            "KLP_SYMPOS: symbol name '.klp.sym,rela.ring' contains ','",
        ),
    ] {
        let input = root().join("fuzz/corpus").join(target).join(name);
        let out = dir.join("out.ko");
        let r = convert_o(&input, &out);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(1), "{err}");
        assert!(err.contains(why), "{err}");
        assert!(!err.contains("internal error"), "{err}");
        assert!(!out.exists());
    }
    let module = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\n\
             int f(void) {{ return v; }}\n"
        ),
        &module,
    );
    let bytes = std::fs::read(&module).unwrap();
    let strtab = klp_convert::elf::Elf::parse(&bytes)
        .unwrap()
        .section_by_name(b".strtab")
        .unwrap()
        .index;
    for align in [0x1000000u64, 0x10000000000] {
        // ELF64 little-endian: e_shoff at 0x28, e_shentsize at 0x3a,
        // sh_addralign at 0x30 of a section header.
        let mut bytes = bytes.clone();
        let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap()) as usize;
        let shentsize = u16::from_le_bytes(bytes[0x3a..0x3c].try_into().unwrap()) as usize;
        let at = shoff + strtab * shentsize + 0x30;
        bytes[at..at + 8].copy_from_slice(&align.to_le_bytes());
        let input = dir.join("aligned.o");
        std::fs::write(&input, &bytes).unwrap();
        let out = dir.join("out.ko");
        let r = convert_o(&input, &out);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "section .strtab: sh_addralign 0x{align:x}; the conversion must move it"
            )),
            "{err}"
        );
        assert!(!err.contains("internal error"), "{err}");
        assert!(!out.exists());
    }
}

/// The `structured` target's committed inputs (seeds and regressions),
/// replayed through its generator and invariants: no panic, names kept as
/// bytes, what convert writes check passes, convert and check refuse the
/// same modules.
#[test]
fn structured_corpus_keeps_its_invariants() {
    let dir = root().join("fuzz/corpus/structured");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let data = std::fs::read(e.path()).unwrap();
        gen::run(&data);
        n += 1;
    }
    assert!(n >= 10, "{n} inputs in {}", dir.display());
}

/// The generator on inputs no fuzzer chose: a few hundred cases from a
/// fixed pseudo-random sequence, each through every invariant.
#[test]
fn structured_generator_on_fixed_random_inputs() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for len in 0..300usize {
        let data: Vec<u8> = (0..len * 4)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        gen::run(&data);
    }
}

/// A case of the `structured` target, as it dumped its files
/// (`KLP_FUZZ_DUMP`) into `fuzz/regressions/structured/<name>`: the
/// module, the `--load-order` and `--symbols` arguments for its maps, and
/// a scratch output path. The generator may change; these files do not.
fn structured_case(name: &str) -> (std::path::PathBuf, Vec<String>, std::path::PathBuf) {
    let dir = root().join("fuzz/regressions/structured").join(name);
    let order = std::fs::read_to_string(dir.join("load-order")).unwrap();
    let mut maps = vec!["--load-order".to_string(), order];
    for f in [
        "config",
        "System.map",
        "symbols.klp",
        "target.ko",
        "Module.symvers",
    ] {
        if dir.join(f).exists() {
            maps.push("--symbols".to_string());
            maps.push(dir.join(f).to_str().unwrap().to_string());
        }
    }
    let out = scratch(&format!("fuzz_regression_{name}")).join("out.ko");
    (dir.join("lp.ko"), maps, out)
}

/// Run klp-convert with `args`, then `extra`.
fn run(args: &[&str], extra: &[String]) -> std::process::Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(extra.iter().map(String::as_str));
    klp_convert(&all)
}

/// The rule ids and severities `check --format json` reports, notes left out.
fn check_rules(module: &std::path::Path, extra: &[String]) -> Vec<(String, String)> {
    let r = run(
        &["check", module.to_str().unwrap(), "--format", "json"],
        extra,
    );
    let json: serde_json::Value = serde_json::from_slice(&r.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&r.stdout)));
    json[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "note")
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Structured fuzz finding: a module that defines a `KLP_RELOC_SYMBOL`
/// name (the asm label on a definition, not on an extern declaration) was
/// refused by `convert` (`defined-annotation`), while `check` passed it.
/// The kernel loads it, and the module uses its own copy instead of the
/// target's symbol: `check` now reports the same rule.
#[test]
fn check_reports_a_defined_annotation_as_convert_refuses_it() {
    let (lp, _, out) = structured_case("defined-annotation");
    let rules = check_rules(&lp, &[]);
    assert!(
        rules.iter().all(|(r, _)| r == "defined-annotation") && !rules.is_empty(),
        "{rules:?}"
    );
    let r = convert_o(&lp, &out);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr(&r).contains("annotation symbol is defined"),
        "{}",
        stderr(&r)
    );
    assert!(!out.exists());
}

/// Structured fuzz finding: a module with something to convert and a klp
/// section of its own that breaks the contract (a module-specific klp
/// relocation into `.init.text`, a klp symbol whose name the kernel cannot
/// parse, a vmlinux symbol from a module's klp section) made `convert`
/// fail its own verification, reported as an internal error ("please
/// report this"). The input's contract is now checked before the
/// conversion: a refusal in the words of the rule `check` reports.
#[test]
fn convert_refuses_what_the_input_breaks_rather_than_failing_its_proof() {
    for (name, rule, message, with_maps) in [
        (
            "existing-klp-section-init",
            "init-section",
            "module-specific klp relocation in .init.text, which is freed",
            false,
        ),
        (
            "existing-klp-symbol-malformed",
            "klp-symbol-name",
            "has an incorrectly formatted name",
            false,
        ),
        (
            "existing-klp-section-vmlinux-access",
            "vmlinux-from-module-section",
            "invalid access to vmlinux symbol",
            true,
        ),
    ] {
        let (lp, maps, out) = structured_case(name);
        let maps = if with_maps { maps } else { Vec::new() };
        let r = run(
            &["convert", lp.to_str().unwrap(), "-o", out.to_str().unwrap()],
            &maps,
        );
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(message), "{name}: {err}");
        assert!(!err.contains("internal error"), "{name}: {err}");
        assert!(!out.exists());
        let rules = check_rules(&lp, &maps);
        assert!(
            rules.contains(&(rule.to_string(), "error".to_string())),
            "{name}: {rules:?}"
        );
    }
}

/// Structured fuzz finding: `convert --symbols` gave a module's export the
/// klp form even where the kernel refuses it, and then refused the module,
/// which `check` (with the same maps) passes and the kernel loads: a
/// reference from `.init.text` (freed before the exporting module can
/// load), a name the exporting module has several times, an exporting
/// module whose name the klp grammar cannot carry, an exporting module the
/// maps know without that name. Such an export now
/// stays an ordinary reference, which the loader links, with a warning.
#[test]
fn a_module_export_that_cannot_be_a_klp_symbol_stays_linked() {
    for (name, why) in [
        (
            "module-export-init",
            "module-specific klp relocation in .init.text",
        ),
        ("module-export-ambiguous", "no position names its symbol in"),
        (
            "module-export-unrepresentable",
            "its klp name cannot be written",
        ),
        (
            "module-export-missing-from-maps",
            "has no symbol of that name in the symbol maps",
        ),
    ] {
        let (lp, maps, out) = structured_case(name);
        // What the author wrote, converted without maps, passes check
        // with them: the export is linked by the loader.
        let plain = out.with_file_name("plain.ko");
        let r = convert_o(&lp, &plain);
        assert!(r.status.success(), "{name}: {}", stderr(&r));
        let rules = check_rules(&plain, &maps);
        assert!(rules.iter().all(|(_, s)| s != "error"), "{name}: {rules:?}");
        let r = run(
            &["convert", lp.to_str().unwrap(), "-o", out.to_str().unwrap()],
            &maps,
        );
        let err = stderr(&r);
        assert!(r.status.success(), "{name}: {err}");
        assert!(
            err.contains("left an ordinary reference, which the module loader links"),
            "{name}: {err}"
        );
        assert!(err.contains(why), "{name}: {err}");
        let rules = check_rules(&out, &maps);
        assert!(rules.iter().all(|(_, s)| s != "error"), "{name}: {rules:?}");
        let r = run(&["show", out.to_str().unwrap(), "--format", "json"], &[]);
        let json: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(json["summary"]["errors"], 0, "{name}: {json}");
    }
}

/// Structured fuzz finding: with maps that have no export list,
/// `convert --symbols` refuses (`no-export-list`), while `check` with the
/// same maps passed the names the loader must link without a word. It
/// now warns that it could not check them, under the same rule.
#[test]
fn check_says_when_the_maps_have_no_export_list() {
    let (lp, maps, out) = structured_case("no-export-list");
    assert_eq!(
        check_rules(&lp, &maps),
        [("no-export-list".to_string(), "warning".to_string())]
    );
    let r = run(
        &["convert", lp.to_str().unwrap(), "-o", out.to_str().unwrap()],
        &maps,
    );
    assert_eq!(r.status.code(), Some(1));
    assert!(stderr(&r).contains("no export list"), "{}", stderr(&r));
}

/// Structured fuzz finding (s390x): an `R_390_32` in `.rodata` against a
/// symbol module é exports, which the maps (kallsyms) place at an address
/// the field cannot hold with its addend. `convert --symbols` makes the
/// export a klp relocation, and its proof refuses the overflow, while
/// `check` with the same maps passed the ordinary relocation: the loader
/// links an export at the same address and refuses it the same way. `check`
/// now applies the overflow rule to relocations against exports too.
#[test]
fn check_sees_an_export_whose_address_overflows_its_field() {
    let (lp, maps, out) = structured_case("module-export-absolute-overflow");
    let errors: Vec<(String, String)> = check_rules(&lp, &maps)
        .into_iter()
        .filter(|(_, severity)| severity == "error")
        .collect();
    assert_eq!(
        errors,
        [("absolute-overflow".to_string(), "error".to_string())]
    );
    let r = run(
        &["convert", lp.to_str().unwrap(), "-o", out.to_str().unwrap()],
        &maps,
    );
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("overflow in relocation type 4 val ffffffffffff8d5e"),
        "{}",
        stderr(&r)
    );
}

/// Structured fuzz finding (i386, the one REL machine): a REL relocation
/// against an annotation in a debug section stays where it is, its addend
/// in the section's bytes, but `verify` expected the implicit addend to
/// move with it, and reported its own proof failed. It now expects the
/// implicit addend of exactly the entries that move into klp sections.
#[test]
fn a_rel_entry_left_in_place_keeps_its_addend_in_the_proof() {
    let (lp, _, out) = structured_case("rel-addend-left-in-place");
    let r = convert_o(&lp, &out);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("left in place: .debug_info"),
        "{}",
        stderr(&r)
    );
    let again = out.with_file_name("again.ko");
    let r = convert_o(&out, &again);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
}

/// Structured fuzz finding: an annotation whose name is longer than the
/// module's release reads (its vermagic says 5.10: 127 bytes) was
/// converted, and `verify` found `klp-symbol-too-long` in the output: an
/// internal error. `convert` now refuses it while planning, under the
/// same rule as `check`.
#[test]
fn a_name_too_long_for_the_release_is_refused_not_an_internal_error() {
    let (lp, _, out) = structured_case("annotation-too-long-for-release");
    let r = convert_o(&lp, &out);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bytes; kernel 5.10.0 reads at most 127"),
        "{err}"
    );
    assert!(!err.contains("internal error"), "{err}");
    assert!(!out.exists());
}

/// Structured fuzz finding: a reference to another object's symbol over
/// bytes x86_64's loader will not write over (nonzero), of a type it does
/// not handle, or a ppc64 call to one without the nop after it: `convert --symbols` gave it the klp
/// form and refused it, while `check` passed the module, because it
/// applied the loader's checks to klp relocations only. The kernel's
/// `apply_relocate_add` makes the same checks of the ordinary relocation
/// sections: `check` now reports them there too (for references to
/// other objects' symbols), and `convert` refuses them with or without
/// the maps.
#[test]
fn the_loader_checks_ordinary_relocations_against_other_objects() {
    for (name, rule, message) in [
        (
            "module-export-nonzero-target",
            "x86-target-nonzero",
            "existing value is nonzero for type 4 (R_X86_64_PLT32)",
        ),
        (
            "module-export-call-without-nop",
            "ppc64-nop-after-call",
            "Expected nop after call, got 38600000",
        ),
        (
            "module-export-unknown-type",
            "reloc-type",
            "Unknown rela relocation: 85",
        ),
    ] {
        let (lp, maps, out) = structured_case(name);
        for extra in [&[][..], &maps[..]] {
            let rules = check_rules(&lp, extra);
            assert!(
                rules.contains(&(rule.to_string(), "error".to_string())),
                "{name}: {rules:?}"
            );
            let r = run(
                &["convert", lp.to_str().unwrap(), "-o", out.to_str().unwrap()],
                extra,
            );
            let err = stderr(&r);
            assert_eq!(r.status.code(), Some(1), "{name}: {err}");
            assert!(err.contains(message), "{name}: {err}");
            assert!(!out.exists());
        }
    }
}
