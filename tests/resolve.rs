//! Automatic resolution (`convert --symbols`, the v7 drop-in) on objects
//! compiled by gcc, against symbol maps written for each case.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use klp_convert::elf::{Elf, SHN_LIVEPATCH};

/// vmlinux: `printk` exported, `saved_command_line` not, `dup` twice;
/// module `mod_a`: `helper` (unique), `shared`, `exp_fn` (exported);
/// module `mod_b`: `shared`; clones of `inlined` only.
const KALLSYMS: &str = "\
ffffffff81000100 T printk
ffffffff81000200 D saved_command_line
ffffffff81000400 t dup
ffffffff81000300 t dup
ffffffff81000500 t inlined.constprop.0
ffffffffc0000000 t helper\t[mod_a]
ffffffffc0000010 t shared\t[mod_a]
ffffffffc0000020 T exp_fn\t[mod_a]
ffffffffc0001000 t shared\t[mod_b]
";
const SYMVERS: &str = "0x00000001\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n0x00000002\texp_fn\tdrivers/misc/mod_a\tEXPORT_SYMBOL_GPL\t\n";

struct Case {
    dir: PathBuf,
    input: PathBuf,
    kallsyms: PathBuf,
    symvers: PathBuf,
}

fn case(test: &str, body: &str) -> Case {
    let dir = scratch(test);
    let input = dir.join("lp.o");
    compile_x86_64(&format!("{HEADER}{LIVEPATCH_MODINFO}{body}"), &input);
    Case::with_maps(dir, input)
}

impl Case {
    /// The case of `input` in `dir`, with the standard maps written there.
    fn with_maps(dir: PathBuf, input: PathBuf) -> Case {
        let kallsyms = dir.join("kallsyms");
        std::fs::write(&kallsyms, KALLSYMS).unwrap();
        let symvers = dir.join("Module.symvers");
        std::fs::write(&symvers, SYMVERS).unwrap();
        Case {
            dir,
            input,
            kallsyms,
            symvers,
        }
    }

    fn convert(&self, extra: &[&Path]) -> (Option<i32>, String, PathBuf) {
        let out = self.dir.join("out.o");
        let _ = std::fs::remove_file(&out);
        let mut args = vec![
            "convert",
            self.input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        for m in [&self.kallsyms, &self.symvers]
            .into_iter()
            .map(PathBuf::as_path)
            .chain(extra.iter().copied())
        {
            args.push("--symbols");
            args.push(m.to_str().unwrap());
        }
        let r = klp_convert(&args);
        (r.status.code(), stderr(&r), out)
    }

    /// [`Case::convert`] with more kallsyms `lines` as one more map.
    fn convert_with_kallsyms(&self, lines: &str) -> (Option<i32>, String, PathBuf) {
        let more = self.dir.join("more-kallsyms");
        std::fs::write(&more, lines).unwrap();
        self.convert(&[&more])
    }
}

/// (klp symbol names, klp section names) of a converted file.
fn klp_parts(path: &Path) -> (Vec<String>, Vec<String>) {
    let data = std::fs::read(path).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let mut syms: Vec<String> = elf
        .symbols
        .iter()
        .filter(|s| s.st_shndx == SHN_LIVEPATCH)
        .map(|s| s.display_name())
        .collect();
    let mut secs: Vec<String> = elf
        .sections
        .iter()
        .filter(|s| s.name.starts_with(b".klp.rela."))
        .map(|s| s.display_name())
        .collect();
    syms.sort();
    secs.sort();
    (syms, secs)
}

#[test]
fn plain_c_references_resolve_by_owner() {
    let c = case(
        "resolve_owner",
        "extern int printk(const char *, ...);\n\
         extern char *saved_command_line;\n\
         extern int helper(void);\n\
         extern int exp_fn(void);\n\
         int f(void) { return printk(\"x\") + saved_command_line[0] + helper() + exp_fn(); }\n",
    );
    let (code, err, out) = c.convert(&[]);
    assert_eq!(code, Some(0), "{err}");
    let (syms, secs) = klp_parts(&out);
    // printk is exported by vmlinux: it stays; a module's export becomes klp.
    assert_eq!(
        syms,
        [
            ".klp.sym.mod_a.exp_fn,0",
            ".klp.sym.mod_a.helper,0",
            ".klp.sym.vmlinux.saved_command_line,0"
        ]
    );
    assert_eq!(
        secs,
        [".klp.rela.mod_a..text.f", ".klp.rela.vmlinux..text.f"]
    );
    let data = std::fs::read(&out).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let printk = elf.symbols.iter().find(|s| s.name == b"printk").unwrap();
    assert_eq!(
        printk.st_shndx, 0,
        "printk must stay an ordinary undefined symbol"
    );
    // check agrees with the result, against the same maps.
    let r = klp_convert(&[
        "check",
        out.to_str().unwrap(),
        "--symbols",
        c.kallsyms.to_str().unwrap(),
        "--symbols",
        c.symvers.to_str().unwrap(),
    ]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
}

#[test]
fn ambiguous_names_list_candidates_with_annotations() {
    let c = case(
        "resolve_ambiguous",
        "extern int dup(void);\nextern int shared(void);\nint f(void) { return dup() + shared(); }\n",
    );
    let (code, err, out) = c.convert(&[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(!out.exists());
    // Inside one object: 1-based positions in address order.
    assert!(
        err.contains("symbol 'dup': ambiguous: 2 candidates"),
        "{err}"
    );
    assert!(
        err.contains("KLP_RELOC_SYMBOL_POS(vmlinux, vmlinux, dup, 1) /* 0xffffffff81000300 */"),
        "{err}"
    );
    assert!(
        err.contains("KLP_RELOC_SYMBOL_POS(vmlinux, vmlinux, dup, 2) /* 0xffffffff81000400 */"),
        "{err}"
    );
    // Across objects: position 0 in each, the object decides.
    assert!(
        err.contains("KLP_RELOC_SYMBOL_POS(mod_a, mod_a, shared, 0) /* 0xffffffffc0000010 */"),
        "{err}"
    );
    assert!(
        err.contains("KLP_RELOC_SYMBOL_POS(mod_b, mod_b, shared, 0) /* 0xffffffffc0001000 */"),
        "{err}"
    );
    assert!(err.contains("refused (2 problems)"), "{err}");
}

#[test]
fn annotated_and_automatic_references_mix() {
    let c = case(
        "resolve_mix",
        "extern int dup(void) KLP_RELOC_SYMBOL_POS(vmlinux, vmlinux, dup, 2);\n\
         extern char *saved_command_line;\n\
         int f(void) { return dup() + saved_command_line[0]; }\n",
    );
    let (code, err, out) = c.convert(&[]);
    assert_eq!(code, Some(0), "{err}");
    let (syms, secs) = klp_parts(&out);
    assert_eq!(
        syms,
        [
            ".klp.sym.vmlinux.dup,2",
            ".klp.sym.vmlinux.saved_command_line,0"
        ]
    );
    assert_eq!(secs, [".klp.rela.vmlinux..text.f"]);
}

#[test]
fn unknown_names_show_near_misses() {
    let c = case(
        "resolve_missing",
        "extern int inlined(void);\nint f(void) { return inlined(); }\n",
    );
    let (code, err, _) = c.convert(&[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("symbol 'inlined': not exported, and no object in the symbol maps has it"),
        "{err}"
    );
    assert!(err.contains("near misses (compiler clones: the original may be inlined or renamed): vmlinux:inlined.constprop.0"), "{err}");
}

#[test]
fn maps_without_exports_are_refused() {
    let c = case(
        "resolve_no_exports",
        "extern char *saved_command_line;\nint f(void) { return saved_command_line[0]; }\n",
    );
    let out = c.dir.join("out.o");
    let r = klp_convert(&[
        "convert",
        c.input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--symbols",
        c.kallsyms.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(stderr(&r).contains("no export list"), "{}", stderr(&r));
}

#[test]
fn v7_drop_in_with_symbols_klp() {
    let c = case(
        "resolve_v7",
        "extern int printk(const char *, ...);\n\
         extern char *saved_command_line;\n\
         extern int helper(void);\n\
         int f(void) { return printk(\"x\") + saved_command_line[0] + helper(); }\n",
    );
    // The v7 format, as its kbuild wrote it: nm's order, exports as __ksymtab_.
    let symbols_klp = c.dir.join("symbols.klp");
    std::fs::write(
        &symbols_klp,
        "klp-convert-symbol-data.0.1\n*vmlinux\n__ksymtab_printk\nprintk\nsaved_command_line\n*mod_a\nhelper\n",
    )
    .unwrap();
    let out = c.dir.join("out.ko");
    let r = klp_convert(&[
        symbols_klp.to_str().unwrap(),
        c.input.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let (syms, _) = klp_parts(&out);
    assert_eq!(
        syms,
        [
            ".klp.sym.mod_a.helper,0",
            ".klp.sym.vmlinux.saved_command_line,0"
        ]
    );
}

#[test]
fn symbols_command_writes_a_readable_symbols_klp() {
    let c = case("resolve_symbols_cmd", "int f(void) { return 0; }\n");
    let out = c.dir.join("symbols.klp");
    let r = klp_convert(&[
        "symbols",
        c.kallsyms.to_str().unwrap(),
        c.symvers.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.starts_with("klp-convert-symbol-data.0.1\n*vmlinux\n"),
        "{text}"
    );
    assert!(text.contains("\n__ksymtab_printk\n"), "{text}");
    assert!(
        text.contains("*mod_a\n__ksymtab_exp_fn\nexp_fn\nhelper\nshared\n"),
        "{text}"
    );
    // Read back and written again: the same bytes.
    let again = c.dir.join("symbols2.klp");
    let r = klp_convert(&[
        "symbols",
        out.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read_to_string(&again).unwrap(), text);
}

/// A symbols.klp has names only: `check` and the ambiguity hints say where
/// a symbol is only when a map knows it, and never make up `0x0`.
#[test]
fn symbols_klp_maps_give_no_made_up_addresses() {
    let c = case(
        "resolve_v7_no_address",
        "extern char *saved_command_line;\n\
         extern int helper(void);\n\
         int f(void) { return saved_command_line[0] + helper(); }\n",
    );
    let symbols_klp = c.dir.join("symbols.klp");
    std::fs::write(
        &symbols_klp,
        "klp-convert-symbol-data.0.1\n*vmlinux\n__ksymtab_printk\ndup\ndup\nprintk\nsaved_command_line\n*mod_a\nhelper\n",
    )
    .unwrap();
    let out = c.dir.join("out.ko");
    let r = convert_then_check(&c.input, &out, &symbols_klp);
    let report = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.status.code(), Some(0), "{report}");
    assert!(
        report.contains("resolves in vmlinux (position 1 of 1; the symbol maps give no address)")
            && report.contains("resolves in mod_a (position 1 of 1;"),
        "{report}"
    );
    assert!(!report.contains("0x0 in"), "{report}");

    // The ambiguity hints: the annotation alone, no /* place */ comment.
    let dup = case(
        "resolve_v7_no_address_dup",
        "extern int dup(void);\nint f(void) { return dup(); }\n",
    );
    let r = klp_convert(&[
        "convert",
        dup.input.to_str().unwrap(),
        "-o",
        dup.dir.join("out.ko").to_str().unwrap(),
        "--symbols",
        symbols_klp.to_str().unwrap(),
    ]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("KLP_RELOC_SYMBOL_POS(vmlinux, vmlinux, dup, 1)\n")
            && err.contains("KLP_RELOC_SYMBOL_POS(vmlinux, vmlinux, dup, 2)"),
        "{err}"
    );
    assert!(!err.contains("/*"), "{err}");
}

#[test]
fn json_map_keeps_positions_addresses_and_files() {
    let c = case("resolve_json", "extern int dup(void) KLP_RELOC_SYMBOL_POS(vmlinux, vmlinux, dup, 2);\nint f(void) { return dup(); }\n");
    let json = c.dir.join("map.json");
    let r = klp_convert(&[
        "symbols",
        "--format",
        "json",
        c.kallsyms.to_str().unwrap(),
        c.symvers.to_str().unwrap(),
        "-o",
        json.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let mut from_json = klp_convert::maps::SymbolMap::new();
    from_json.add_file(&json).unwrap();
    let mut direct = klp_convert::maps::SymbolMap::new();
    direct.add_file(&c.kallsyms).unwrap();
    direct.add_file(&c.symvers).unwrap();
    assert_eq!(from_json, direct);
    let dup2 = from_json.find("vmlinux", "dup", 2).unwrap();
    assert_eq!(dup2.addr, Some(0xffffffff81000400));
    assert_eq!(from_json.symbols("vmlinux").get(0).unwrap().kind, 'T');
    // Deterministic: the same bytes again.
    let again = c.dir.join("map2.json");
    let r = klp_convert(&[
        "symbols",
        "--format",
        "json",
        json.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&json).unwrap()
    );
    // And usable by convert and check.
    let out = c.dir.join("out.o");
    let r = convert_then_check(&c.input, &out, &json);
    assert!(String::from_utf8_lossy(&r.stdout)
        .contains("resolves to 0xffffffff81000400 in vmlinux (position 2 of 2)"));
}

#[test]
fn source_files_of_module_symbols() {
    // A two-file module linked with ld -r: the ambiguity names each file.
    let dir = scratch("resolve_files");
    let a = dir.join("a.o");
    let b = dir.join("b.o");
    compile_x86_64(&format!("{LIVEPATCH_MODINFO}static int __attribute__((used)) twin(void) {{ return 1; }}\nstatic const char __attribute__((used, section(\".modinfo\"))) n[] = \"name=two_files\";\n"), &a);
    compile_x86_64(
        "static int __attribute__((used)) twin(void) { return 2; }\n",
        &b,
    );
    let ko = dir.join("two_files.ko");
    let st = std::process::Command::new("ld")
        .args(["-r", "-o"])
        .arg(&ko)
        .arg(&a)
        .arg(&b)
        .status()
        .unwrap();
    assert!(st.success());
    let mut map = klp_convert::maps::SymbolMap::new();
    map.add_file(&ko).unwrap();
    let twins: Vec<String> = map
        .symbols("two_files")
        .iter()
        .filter(|s| s.name == b"twin")
        .filter_map(|s| s.place())
        .collect();
    assert_eq!(twins.len(), 2, "{twins:?}");
    assert!(
        twins[0].ends_with("in a.c") && twins[1].ends_with("in b.c"),
        "{twins:?}"
    );
    assert_eq!(
        map.symbols("two_files")
            .iter()
            .find(|s| s.name == b"twin")
            .unwrap()
            .kind,
        't'
    );
}

#[test]
fn annotated_name_in_the_wrong_object() {
    let c = case(
        "resolve_wrong_object",
        "extern int helper(void) KLP_RELOC_SYMBOL(mod_b, mod_b, helper);\nint f(void) { return helper(); }\n",
    );
    let (code, err, _) = c.convert(&[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "symbol 'helper' not found in symbol table (object mod_b); the same name is in: mod_a"
        ),
        "{err}"
    );
}

/// A function-local static goes by the compiler's name for it (`counter.4`,
/// the suffix counting the file's local statics, macros' included): an
/// annotation with another suffix is refused, naming the one there is.
#[test]
fn annotated_local_static_with_the_wrong_suffix() {
    let c = case(
        "resolve_local_static",
        "extern int counter KLP_RELOC_SYMBOL(mod_a, mod_a, counter.0);\nint f(void) { return counter; }\n",
    );
    let (code, err, out) = c.convert_with_kallsyms("ffffffffc0000030 d counter.4\t[mod_a]\n");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "symbol 'counter.0' not found in symbol table (object mod_a); mod_a has: counter.4"
        ),
        "{err}"
    );
    assert!(!out.exists());
}

/// A map can name an object the klp grammar cannot carry (`[my.mod]`): the
/// reference is refused as an annotation naming it would be.
#[test]
fn object_names_from_maps_follow_the_klp_grammar() {
    let c = case(
        "resolve_dotted_object",
        "extern int dotted_fn(void);\nint f(void) { return dotted_fn(); }\n",
    );
    let (code, err, out) = c.convert_with_kallsyms("ffffffffc0002000 t dotted_fn\t[my.mod]\n");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("symbol 'dotted_fn': resolves to object 'my.mod' in the symbol maps, but object name 'my.mod' contains '.'"),
        "{err}"
    );
    assert!(!out.exists());
}

/// ppc64le: the TOC pointer setup (`R_PPC64_REL16_HA/LO` against `.TOC.`)
/// and `R_PPC64_ENTRY` are the module's own business and stay ordinary; the
/// unexported data reference (through the `.toc` entry) converts.
#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn ppc64le_toc_and_entry_relocations_stay() {
    let dir = scratch("resolve_ppc64le_toc");
    let obj = dir.join("lp.o");
    compile(
        "powerpc64le-linux-gnu-gcc",
        &["-mcmodel=medium", "-ffunction-sections"],
        &format!(
            "{LIVEPATCH_MODINFO}extern char *saved_command_line;\n\
             extern int printk(const char *, ...);\n\
             int f(void) {{ printk(\"%s\", saved_command_line); return saved_command_line[0]; }}\n\
             __asm__(\".section .text.f\\n.reloc f, R_PPC64_ENTRY\\n.previous\");\n"
        ),
        &obj,
    );
    let types = |path: &Path| -> Vec<(String, u32)> {
        let data = std::fs::read(path).unwrap();
        let elf = Elf::parse(&data).unwrap();
        let rs = elf
            .relocs
            .iter()
            .find(|rs| elf.sections.at(rs.index).name == b".rela.text.f")
            .expect(".rela.text.f");
        rs.entries()
            .map(|r| (elf.symbols[r.sym as usize].display_name(), r.r_type))
            .collect()
    };
    let before = types(&obj);
    for (name, t) in [(".TOC.", 250), (".TOC.", 252), ("", 118)] {
        assert!(before.contains(&(name.to_string(), t)), "{before:?}");
    }
    let (code, err, out) = Case::with_maps(dir, obj).convert(&[]);
    assert_eq!(code, Some(0), "{err}");
    // .text.f's relocations are untouched (saved_command_line is reached
    // through .toc, whose entry became the klp relocation).
    assert_eq!(types(&out), before);
    let (syms, secs) = klp_parts(&out);
    assert_eq!(syms, [".klp.sym.vmlinux.saved_command_line,0"]);
    assert_eq!(secs, [".klp.rela.vmlinux..toc"]);
}
