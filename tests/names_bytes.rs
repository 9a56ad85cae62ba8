//! Names are bytes: a symbol name that is not UTF-8
//! goes from the module and the maps to the output exactly as it is, in
//! `convert`, `check` and every map reader. It was once decoded lossily:
//! byte 0xE9 became U+FFFD (`\xEF\xBF\xBD`) in the klp symbol `convert`
//! wrote, `verify` compared against the same lossy plan, and `check` said
//! "resolves".

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use klp_convert::elf::{Elf, SHN_LIVEPATCH};

/// The static function's name: `get_hom`, byte 0xE9, `nym_string`.
const NAME: &[u8] = b"get_hom\xe9nym_string";
/// The same name as a lossy decoding spells it (U+FFFD).
const LOSSY: &str = "get_hom\u{fffd}nym_string";

/// A static function named `asm_name` (a C string literal's contents).
fn static_fn(asm_name: &str, value: &str) -> String {
    format!(
        "static const char * __attribute__((used, noinline)) get(void) __asm__(\"{asm_name}\");\n\
         static const char *get(void) {{ return \"{value}\"; }}\n"
    )
}

/// `klp_test_target.ko`, linked with `ld -r` from `a.c` and `b.c`, each
/// with a static `get_hom\xE9nym_string`, and `a.c` with one named as the
/// lossy decoding spells it: a lookup that decodes names finds that one.
fn target(dir: &Path) -> PathBuf {
    let a = dir.join("a.o");
    let b = dir.join("b.o");
    compile_x86_64(
        &format!(
            "{}{}static const char __attribute__((used, section(\".modinfo\"))) n[] = \"name=klp_test_target\";\n",
            static_fn("get_hom\\351nym_string", "a"),
            static_fn(LOSSY, "lossy").replace("get(", "get_lossy("),
        ),
        &a,
    );
    compile_x86_64(&static_fn("get_hom\\351nym_string", "b"), &b);
    let ko = dir.join("klp_test_target.ko");
    let st = Command::new("ld")
        .args(["-r", "-o"])
        .arg(&ko)
        .arg(&a)
        .arg(&b)
        .status()
        .unwrap();
    assert!(st.success());
    ko
}

/// The klp symbols of a module file, as bytes, sorted.
fn klp_symbols(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let elf = Elf::parse(&bytes).unwrap();
    let mut out: Vec<Vec<u8>> = elf
        .symbols
        .iter()
        .filter(|s| s.st_shndx == SHN_LIVEPATCH)
        .map(|s| s.name.to_vec())
        .collect();
    out.sort();
    out
}

/// `convert --symbols target.ko`, then `check --symbols target.ko --format
/// json`: the klp symbols written and check's JSON.
fn convert_and_check(dir: &Path, source: &str) -> (Vec<Vec<u8>>, serde_json::Value) {
    let ko = target(dir);
    let input = dir.join("lp.o");
    compile_x86_64(&format!("{HEADER}{LIVEPATCH_MODINFO}{source}"), &input);
    let out = dir.join("lp.klp.o");
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--symbols",
        ko.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let r = klp_convert(&[
        "check",
        out.to_str().unwrap(),
        "--symbols",
        ko.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let json: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    (klp_symbols(&out), json)
}

/// check's findings for the one file, without the notes that the patch
/// table was not read (these modules have none).
fn findings(json: &serde_json::Value) -> serde_json::Value {
    let list = json[0]["findings"].as_array().unwrap();
    serde_json::Value::Array(
        list.iter()
            .filter(|f| f["rule"] != "patch-table-unread" && f["rule"] != "klp-section-no-object")
            .cloned()
            .collect(),
    )
}

/// The position 2 `resolves` finding, as check writes it: the name shown
/// with `\xE9`, the place in b.c's section.
fn resolves_second() -> serde_json::Value {
    serde_json::json!({
        "rule": "resolves",
        "severity": "note",
        "section": ".symtab",
        "symbol": ".klp.sym.klp_test_target.get_hom\\xE9nym_string,2",
        "message": "resolves to .text.get_hom\\xE9nym_string+0x10 in b.c in klp_test_target (position 2 of 2)"
    })
}

/// The issue's case: a v7 `KLP_SYMPOS` table names the plain extern at
/// position 2 of the two homonyms.
#[test]
fn a_non_utf8_name_from_a_sympos_table_is_written_and_resolved_as_bytes() {
    let dir = scratch("names_bytes_sympos");
    let (syms, json) = convert_and_check(
        &dir,
        "extern const char *get(void) __asm__(\"get_hom\\351nym_string\");\n\
         KLP_MODULE_RELOC(klp_test_target) relocs[] = { KLP_SYMPOS(get, 2) };\n\
         int f(void) { return get()[0]; }\n",
    );
    assert_eq!(
        syms,
        [b".klp.sym.klp_test_target.get_hom\xe9nym_string,2".to_vec()]
    );
    assert_eq!(findings(&json), serde_json::json!([resolves_second()]));
}

/// The annotation path reads the same bytes (it once refused any name that
/// was not UTF-8, a second policy), in both separators (`,` in a quoted
/// name, `.`), and the klp symbols carry them.
#[test]
fn a_non_utf8_name_from_an_annotation_is_written_and_resolved_as_bytes() {
    let dir = scratch("names_bytes_annotation");
    let (syms, json) = convert_and_check(
        &dir,
        "extern const char *one(void) __asm__(\"\\\".klp.sym.rela.klp_test_target.klp_test_target.get_hom\\351nym_string,1\\\"\");\n\
         extern const char *two(void) __asm__(\".klp.sym.rela.klp_test_target.klp_test_target.get_hom\\351nym_string.2\");\n\
         int f(void) { return one()[0] + two()[0]; }\n",
    );
    let mut want = Vec::new();
    for pos in [b'1', b'2'] {
        let mut n = b".klp.sym.klp_test_target.".to_vec();
        n.extend_from_slice(NAME);
        n.extend_from_slice(&[b',', pos]);
        want.push(n);
    }
    assert_eq!(syms, want);
    assert_eq!(
        findings(&json),
        serde_json::json!([
            {
                "rule": "resolves",
                "severity": "note",
                "section": ".symtab",
                "symbol": ".klp.sym.klp_test_target.get_hom\\xE9nym_string,1",
                "message": "resolves to .text.get_hom\\xE9nym_string+0x0 in a.c in klp_test_target (position 1 of 2)"
            },
            resolves_second()
        ])
    );
}

/// The grammar's limits hold for every name, whatever its bytes: a name
/// the kernel would read differently (here with a `,`) is refused, with
/// its rule id, in the annotation path as in the others.
#[test]
fn names_the_grammar_cannot_hold_are_refused() {
    let dir = scratch("names_bytes_grammar");
    let input = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}\
             extern int v __asm__(\"\\\".klp.sym.rela.vmlinux.vmlinux.a\\351,b,1\\\"\");\n\
             extern int w KLP_RELOC_SYMBOL(vmlinux, vmlinux, w);\n\
             int f(void) {{ return v + w; }}\n"
        ),
        &input,
    );
    let out = dir.join("out.o");
    let r = convert_o(&input, &out);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(
        stderr(&r).contains(
            "symbol '.klp.sym.rela.vmlinux.vmlinux.a\\xE9,b,1': malformed annotation: symbol name 'a\\xE9,b' contains ',', which ends the name part of a klp symbol"
        ),
        "{}",
        stderr(&r)
    );
    assert!(!out.exists());
}

/// Each text map format reads a line with a name that is not UTF-8 as its
/// bytes (the whole file was once refused as "neither ELF nor text", or
/// its line as "not UTF-8 text"), and the JSON map writes it so that it
/// reads back the same.
#[test]
fn every_map_format_reads_non_utf8_names_as_bytes() {
    let dir = scratch("names_bytes_maps");
    let mut kallsyms = b"ffffffff81000100 T printk\n".to_vec();
    kallsyms.extend_from_slice(b"ffffffff81000300 t get_hom\xe9nym_string\n");
    kallsyms.extend_from_slice(b"ffffffff81000200 t get_hom\xe9nym_string\n");
    kallsyms.extend_from_slice(b"ffffffffc0000000 t caf\xe9\t[m\xe9-mod]\n");
    let mut symbols_klp = b"klp-convert-symbol-data.0.1\n*vmlinux\n".to_vec();
    symbols_klp.extend_from_slice(b"__ksymtab_exp\xe9\nexp\xe9\nget_hom\xe9nym_string\n");
    let symvers = b"0x1\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n0x2\texp\xe9\tdrivers/m\xe9-mod\tEXPORT_SYMBOL\t\n";
    let files = [
        ("kallsyms", &kallsyms[..]),
        ("symbols.klp", &symbols_klp[..]),
        ("Module.symvers", &symvers[..]),
    ];
    let mut paths = Vec::new();
    for (name, bytes) in files {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        paths.push(p);
    }
    let symbols = |sources: &[&Path], format: &str| {
        let mut args = vec!["symbols", "--format", format];
        args.extend(sources.iter().map(|p| p.to_str().unwrap()));
        let r = klp_convert(&args);
        assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
        r.stdout
    };

    // kallsyms: vmlinux in address order, the module's name normalised.
    let map = klp_convert::maps::SymbolMap::from_paths(&paths[..1]).unwrap();
    let second = map.find("vmlinux", NAME, 2).unwrap();
    assert_eq!(second.addr, Some(0xffffffff81000300));
    assert!(map.has(b"m\xe9_mod"));
    let json = symbols(&[&paths[0]], "json");
    assert_eq!(
        String::from_utf8(json.clone()).unwrap(),
        concat!(
            r#"{"format":"klp-convert-map-1","objects":{"#,
            r#""\u00006de95f6d6f64":[{"name":"\u0000636166e9","kind":"t","#,
            r#""addr":18446744072635809792,"section":null,"file":null}],"#,
            r#""vmlinux":[{"name":"printk","kind":"T","#,
            r#""addr":18446744071578845440,"section":null,"file":null},"#,
            r#"{"name":"\u00006765745f686f6de96e796d5f737472696e67","kind":"t","#,
            r#""addr":18446744071578845696,"section":null,"file":null},"#,
            r#"{"name":"\u00006765745f686f6de96e796d5f737472696e67","kind":"t","#,
            r#""addr":18446744071578845952,"section":null,"file":null}]},"#,
            r#""exports":{},"has_exports":false}"#
        )
    );
    // The JSON map reads back as the same map, written the same.
    let json_path = dir.join("map.json");
    std::fs::write(&json_path, &json).unwrap();
    assert_eq!(symbols(&[&json_path], "json"), json);
    let back = klp_convert::maps::SymbolMap::from_paths(&[json_path]).unwrap();
    assert_eq!(back, map);

    // symbols.klp: names and exports as bytes, written back byte for byte.
    let klp = symbols(&[&paths[1]], "klp");
    assert_eq!(klp, symbols_klp);
    let map = klp_convert::maps::SymbolMap::from_paths(&paths[1..2]).unwrap();
    assert_eq!(map.exporter(b"exp\xe9"), Some(&b"vmlinux"[..]));
    assert_eq!(map.find("vmlinux", NAME, 0).unwrap().position, 1);

    // Module.symvers: the exported name and its module as bytes.
    let map = klp_convert::maps::SymbolMap::from_paths(&paths[2..]).unwrap();
    assert_eq!(map.exporter(b"exp\xe9"), Some(&b"m\xe9_mod"[..]));
    assert_eq!(map.is_exported(LOSSY), Some(false));
    let json = String::from_utf8(symbols(&[&paths[2]], "json")).unwrap();
    assert!(
        json.ends_with(
            r#""exports":{"\u0000657870e9":"\u00006de95f6d6f64","printk":"vmlinux"},"has_exports":true}"#
        ),
        "{json}"
    );
}
