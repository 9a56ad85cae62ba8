//! Positions in both load orders (`docs/klp-contract.md` §4): a target
//! module with a static `twin()` in `.init.text` and one in `.text`, built
//! by the host gcc and linked in both orders. With the target loaded
//! first, the kernel counts the module's kallsyms after its init (one
//! twin); loaded after the patch, its full symbol table (two). The same
//! modules boot in real kernels in tests/kernel_e2e.rs and
//! tests/kernel_xarch.rs (step 10).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use klp_convert::maps::{LoadOrder, Orders, SymbolMap, Unresolved};

const INIT_TWIN: &str = "static int __attribute__((noinline, used, section(\".init.text\"))) twin(void) { return 2; }\n";
const TEXT_TWIN: &str = "static int __attribute__((noinline, used)) twin(void) { return 1; }\n\
    static int counter __attribute__((used)) = 3;\n";

/// `twin_mod.ko` in `dir`: the init twin first (`init_first`) or the text
/// twin first; a static data `counter` in the text file.
fn target(dir: &Path, init_first: bool) -> PathBuf {
    std::fs::write(dir.join("init.c"), INIT_TWIN).unwrap();
    std::fs::write(
        dir.join("text.c"),
        format!(
            "{TEXT_TWIN}static const char modinfo[] __attribute__((section(\".modinfo\"), used)) = \"name=twin_mod\";\n"
        ),
    )
    .unwrap();
    let order = if init_first {
        "init.o text.o"
    } else {
        "text.o init.o"
    };
    for cmd in [
        "gcc -O1 -c init.c text.c".to_string(),
        format!("ld -r -o twin_mod.ko {order}"),
    ] {
        let ok = Command::new("sh")
            .current_dir(dir)
            .args(["-c", &cmd])
            .status()
            .unwrap()
            .success();
        assert!(ok, "{cmd}");
    }
    dir.join("twin_mod.ko")
}

/// A livepatch calling twin at `pos` in twin_mod, converted without maps.
fn patch(dir: &Path, pos: u64) -> PathBuf {
    let lp = dir.join(format!("lp{pos}.o"));
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int twin_c(void) KLP_RELOC_SYMBOL_POS(twin_mod, twin_mod, twin, {pos});\n\
             int f(void) {{ return twin_c(); }}\n"
        ),
        &lp,
    );
    let out = dir.join(format!("lp{pos}.ko"));
    let r = convert_o(&lp, &out);
    assert!(r.status.success(), "{}", stderr(&r));
    out
}

/// `check --format json FILE --symbols MAP... EXTRA...`: exit code and the
/// (rule, message) of every error.
fn check(file: &Path, maps: &[&Path], extra: &[&str]) -> (i32, Vec<(String, String)>) {
    let mut args = vec![
        "check".to_string(),
        "--format".into(),
        "json".into(),
        file.display().to_string(),
    ];
    for m in maps {
        args.push("--symbols".into());
        args.push(m.display().to_string());
    }
    args.extend(extra.iter().map(|e| e.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = klp_convert(&args);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("check json");
    let errors = v[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "note")
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (r.status.code().unwrap(), errors)
}

fn rules(findings: &[(String, String)]) -> Vec<&str> {
    findings.iter().map(|(r, _)| r.as_str()).collect()
}

/// The map of a .ko holds both lists; each order finds what the kernel
/// finds.
#[test]
fn a_ko_map_gives_both_lists() {
    let dir = scratch("load_order_map");
    let ko = target(&dir, true);
    let map = SymbolMap::from_paths(&[ko]).unwrap();
    let twins: Vec<(bool, Option<&[u8]>)> = map
        .symbols("twin_mod")
        .iter()
        .filter(|s| s.name == b"twin")
        .map(|s| (s.coming_only, s.section))
        .collect();
    assert_eq!(
        twins,
        [
            (true, Some(&b".init.text"[..])),
            (false, Some(&b".text"[..]))
        ]
    );
    assert!(map.symbols("twin_mod").has_both_lists());
    let first = |pos| map.find_in("twin_mod", "twin", pos, LoadOrder::TargetFirst);
    let after = |pos| map.find_in("twin_mod", "twin", pos, LoadOrder::PatchFirst);
    assert_eq!(first(0).unwrap().index, 1);
    assert_eq!(first(1).unwrap().index, 1);
    assert_eq!(first(2), Err(Unresolved::NoSuchPosition(1)));
    assert_eq!(after(0), Err(Unresolved::Ambiguous(2)));
    assert_eq!(after(1).unwrap().index, 0);
    assert_eq!(after(2).unwrap().index, 1);

    // The JSON map keeps both lists; symbols.klp and kallsyms only the first.
    let json = map.to_json();
    assert!(json.contains(r#""coming_only":true"#), "{json}");
    assert!(json.contains(r#""both_lists":["twin_mod"]"#), "{json}");
    let mut back = SymbolMap::new();
    back.add_json(&json).unwrap();
    assert_eq!(back, map);
    let klp = String::from_utf8(map.to_symbols_klp()).unwrap();
    assert_eq!(klp.lines().filter(|l| *l == "twin").count(), 1, "{klp}");
    let mut from_klp = SymbolMap::new();
    from_klp.add_symbols_klp(klp.as_bytes()).unwrap();
    assert!(!from_klp.symbols("twin_mod").has_both_lists());
}

/// check: twin,0 and twin,2 each work in one order only; twin,1 means the
/// init twin with the patch first. Each is `load-order`, in the kernel's
/// words, and passes when `--load-order` names the order that works.
#[test]
fn check_predicts_both_orders() {
    let dir = scratch("load_order_check");
    let ko = target(&dir, true);
    let (p0, p1, p2) = (patch(&dir, 0), patch(&dir, 1), patch(&dir, 2));

    let (code, f) = check(&p0, &[&ko], &[]);
    assert_eq!((code, rules(&f)), (1, vec!["load-order"]), "{f:?}");
    assert_eq!(
        f[0].1,
        "with twin_mod loaded after the patch (or reloaded under it), klp_module_coming counts its full symbol table (.init symbols included) and refuses to load twin_mod: unresolvable ambiguity for symbol 'twin' in object 'twin_mod': 2 candidates (position 1 at .init.text+0x0 in init.c, position 2 at .text+0x0 in text.c); give the 1-based position. Position 0 works only with twin_mod loaded before the patch, where it means .text+0x0 in text.c (position 1 of 1); no position means it in both orders: give the symbol a name unique in twin_mod, or, if twin_mod is always loaded before the patch (and never reloaded under it), say so with --load-order target-first"
    );
    let (code, f) = check(&p2, &[&ko], &[]);
    assert_eq!((code, rules(&f)), (1, vec!["load-order"]), "{f:?}");
    assert!(
        f[0].1.starts_with("with twin_mod loaded before the patch, the kernel refuses the patch: symbol position 2 for symbol 'twin' in object 'twin_mod' not found: it has 1 (position 1 at .text+0x0 in text.c). Position 2 works only with twin_mod loaded after the patch (or reloaded under it), where the full symbol table counts and it means .text+0x0 in text.c (position 2 of 2); no position means it in both orders"),
        "{}",
        f[0].1
    );
    let (code, f) = check(&p1, &[&ko], &[]);
    assert_eq!((code, rules(&f)), (1, vec!["load-order"]), "{f:?}");
    assert!(
        f[0].1.starts_with("position 1 of 'twin' in twin_mod means .text+0x0 in text.c (position 1 of 1) with twin_mod loaded before the patch, but .init.text+0x0 in init.c (position 1 of 2) with twin_mod loaded after the patch"),
        "{}",
        f[0].1
    );

    // One order only.
    for (p, order, ok) in [
        (&p0, "target-first", true),
        (&p0, "patch-first", false),
        (&p2, "patch-first", true),
        (&p2, "target-first", false),
        (&p1, "target-first", true),
        (&p1, "patch-first", true),
    ] {
        let (code, f) = check(p, &[&ko], &["--load-order", order]);
        assert_eq!(code == 0, ok, "{} {order}: {f:?}", p.display());
        if !ok {
            assert_ne!(rules(&f), ["load-order"], "{order}: {f:?}");
        }
    }

    // The text twin first: position 1 holds in both orders, 0 only target
    // first.
    let dir_b = scratch("load_order_check_b");
    let kob = target(&dir_b, false);
    let (code, f) = check(&p1, &[&kob], &[]);
    assert_eq!((code, f.len()), (0, 0), "{f:?}");
    let (code, f) = check(&p0, &[&kob], &[]);
    assert_eq!((code, rules(&f)), (1, vec!["load-order"]), "{f:?}");
    assert!(
        f[0].1.ends_with("; position 1 means it in both orders"),
        "{}",
        f[0].1
    );
}

/// A map that knows only a loaded module's list (kallsyms) cannot prove
/// the patch-first order: a note says so, unless the order is ruled out.
#[test]
fn kallsyms_maps_say_what_they_cannot_know() {
    let dir = scratch("load_order_kallsyms");
    let p0 = patch(&dir, 0);
    let kallsyms = dir.join("kallsyms");
    std::fs::write(&kallsyms, "ffffffffc0000000 t twin\t[twin_mod]\n").unwrap();
    let r = klp_convert(&[
        "check",
        "--format",
        "json",
        p0.to_str().unwrap(),
        "--symbols",
        kallsyms.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let notes: Vec<&serde_json::Value> = v[0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "load-order-unchecked")
        .collect();
    assert_eq!(notes.len(), 1, "{v}");
    assert_eq!(
        notes[0]["message"],
        "the symbol maps give twin_mod's symbols as a loaded module keeps them (kallsyms, symbols.klp): positions with twin_mod loaded after the patch (or reloaded under it) were not checked; add twin_mod.ko to --symbols, or say --load-order target-first"
    );
    let r = klp_convert(&[
        "check",
        p0.to_str().unwrap(),
        "--symbols",
        kallsyms.to_str().unwrap(),
        "--load-order",
        "target-first",
    ]);
    assert!(
        !String::from_utf8_lossy(&r.stdout).contains("load-order-unchecked"),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
}

/// convert --symbols on plain C: position 1 when the text twin comes
/// first; a refusal when the init twin does; a data symbol seen only while
/// coming (no CONFIG_KALLSYMS_ALL) is refused too.
#[test]
fn convert_picks_a_position_that_holds_in_both() {
    let symvers_text = "0x00000001\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n";
    let plain = |dir: &Path, body: &str| -> PathBuf {
        let lp = dir.join("plain.o");
        compile_x86_64(&format!("{LIVEPATCH_MODINFO}{body}"), &lp);
        lp
    };
    let run = |lp: &Path, ko: &Path, extra: &[&str]| {
        let dir = lp.parent().unwrap();
        let symvers = dir.join("Module.symvers");
        std::fs::write(&symvers, symvers_text).unwrap();
        let out = dir.join("plain.ko");
        let _ = std::fs::remove_file(&out);
        let mut args = vec![
            "convert".to_string(),
            lp.display().to_string(),
            "-o".into(),
            out.display().to_string(),
            "--symbols".into(),
            ko.display().to_string(),
            "--symbols".into(),
            symvers.display().to_string(),
        ];
        args.extend(extra.iter().map(|e| e.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = klp_convert(&args);
        let klp: Vec<String> = std::fs::read(&out)
            .ok()
            .map(|d| {
                let elf = klp_convert::elf::Elf::parse(&d).unwrap();
                elf.symbols
                    .iter()
                    .filter(|s| s.st_shndx == klp_convert::elf::SHN_LIVEPATCH)
                    .map(|s| s.display_name())
                    .collect()
            })
            .unwrap_or_default();
        (r.status.code(), stderr(&r), klp)
    };
    let call_twin = "int twin(void);\nint f(void) { return twin(); }\n";

    let dir = scratch("load_order_convert_b");
    let (code, err, klp) = run(&plain(&dir, call_twin), &target(&dir, false), &[]);
    assert_eq!(
        (code, klp),
        (Some(0), vec![".klp.sym.twin_mod.twin,1".to_string()]),
        "{err}"
    );

    let dir = scratch("load_order_convert_a");
    let (lp, ko) = (plain(&dir, call_twin), target(&dir, true));
    let (code, err, klp) = run(&lp, &ko, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(klp.is_empty());
    assert!(
        err.contains("no position of 'twin' means the same symbol in both load orders: twin_mod's full symbol table, which klp_module_coming counts with twin_mod loaded after the patch (or reloaded under it), has 2 (1 .init.text+0x0 in init.c (kept only while coming), 2 .text+0x0 in text.c (kept)), while the kallsyms twin_mod keeps after its init, counted with twin_mod loaded before the patch, has 1"),
        "{err}"
    );
    assert!(
        err.contains("[load-order]") || err.contains("load-order"),
        "{err}"
    );
    let (code, err, klp) = run(&lp, &ko, &["--load-order", "target-first"]);
    assert_eq!(
        (code, klp),
        (Some(0), vec![".klp.sym.twin_mod.twin,0".to_string()]),
        "{err}"
    );
    // Patch first only, both twins exist when the kernel looks: ambiguous,
    // each with the position that means it then.
    let (code, err, _) = run(&lp, &ko, &["--load-order", "patch-first"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("symbol 'twin': ambiguous: 2 candidates"),
        "{err}"
    );
    assert!(
        err.contains(
            "KLP_RELOC_SYMBOL_POS(twin_mod, twin_mod, twin, 1) /* .init.text+0x0 in init.c */"
        ),
        "{err}"
    );
    assert!(
        err.contains("KLP_RELOC_SYMBOL_POS(twin_mod, twin_mod, twin, 2) /* .text+0x0 in text.c */"),
        "{err}"
    );

    // Data without CONFIG_KALLSYMS_ALL: only while coming.
    let config = dir.join("config");
    std::fs::write(
        &config,
        "#\n# Linux/x86 Kernel Configuration\n#\nCONFIG_KALLSYMS=y\n# CONFIG_KALLSYMS_ALL is not set\n",
    )
    .unwrap();
    let lp = plain(
        &dir,
        "extern int counter;\nint f(void) { return counter; }\n",
    );
    let (code, err, _) = run(&lp, &ko, &["--symbols", config.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("symbol 'counter': only in symbols a module keeps while it is coming (.init*, freed after its init)"),
        "{err}"
    );
    let (code, err, klp) = run(
        &lp,
        &ko,
        &[
            "--symbols",
            config.to_str().unwrap(),
            "--load-order",
            "patch-first",
        ],
    );
    assert_eq!(
        (code, klp),
        (Some(0), vec![".klp.sym.twin_mod.counter,0".to_string()]),
        "{err}"
    );
}

/// The position that means one candidate in the orders asked.
#[test]
fn positions_for_orders() {
    use klp_convert::maps::MapSymbol;
    use klp_convert::rules::resolution::position_for;
    let s = |coming_only| MapSymbol {
        coming_only,
        ..MapSymbol::named(b"x")
    };
    let both = Orders::Both;
    let tf = Orders::Only(LoadOrder::TargetFirst);
    let pf = Orders::Only(LoadOrder::PatchFirst);
    // [init, text]
    let c = [s(true), s(false)];
    assert_eq!(position_for(&c, 1, both), None);
    assert_eq!(position_for(&c, 1, tf), Some(0));
    assert_eq!(position_for(&c, 1, pf), Some(2));
    assert_eq!(position_for(&c, 0, tf), None);
    assert_eq!(position_for(&c, 0, pf), Some(1));
    // [text, init]
    let c = [s(false), s(true)];
    assert_eq!(position_for(&c, 0, both), Some(1));
    assert_eq!(position_for(&c, 0, tf), Some(0));
    // [text]
    assert_eq!(position_for(&[s(false)], 0, both), Some(0));
    // [text, text, init]
    let c = [s(false), s(false), s(true)];
    assert_eq!(position_for(&c, 1, both), Some(2));
    assert_eq!(position_for(&c, 2, both), None);
}

/// A module object's `klp_func` `old_name`/`old_sympos` goes through the
/// same lookup, in the same two orders.
#[test]
fn patched_functions_in_both_orders() {
    let dir = scratch("load_order_funcs");
    let ko = target(&dir, true);
    for (pos, rule) in [
        (0, Some("load-order")),
        (2, Some("load-order")),
        (1, Some("load-order")),
    ] {
        let src = format!(
            "{LIVEPATCH_MODINFO}static int new_twin(void) {{ return 9; }}\n{}",
            klp_patch_c(&[(Some("twin_mod"), &[("twin", pos, "new_twin")])])
        );
        let lp = dir.join(format!("funcs{pos}.o"));
        compile_x86_64(&src, &lp);
        let (code, f) = check(&lp, &[&ko], &[]);
        assert_eq!(code, 1, "{pos}: {f:?}");
        assert_eq!(
            rules(&f),
            rule.into_iter().collect::<Vec<_>>(),
            "{pos}: {f:?}"
        );
        assert!(
            f[0].1.starts_with("patched function: "),
            "{pos}: {}",
            f[0].1
        );
        assert!(
            f[0].1.ends_with(&format!("[klp_func.old_sympos is {pos}]")),
            "{}",
            f[0].1
        );
    }
    let dir_b = scratch("load_order_funcs_b");
    let kob = target(&dir_b, false);
    let lp = dir.join("funcs1.o");
    let (code, f) = check(&lp, &[&kob], &[]);
    assert_eq!((code, f.len()), (0, 0), "{f:?}");
}

/// The order of the map sources decides nothing: a kallsyms dump read
/// after a module's `.ko` replaces that module, as a `.ko` read after a
/// dump does (it was appended, doubling every symbol).
#[test]
fn a_later_source_replaces_a_module() {
    let dir = scratch("load_order_sources");
    let ko = target(&dir, false);
    let kallsyms = dir.join("kallsyms");
    std::fs::write(
        &kallsyms,
        "ffffffffc0000000 t twin\t[twin_mod]\nffffffffc0000100 d counter\t[twin_mod]\n",
    )
    .unwrap();
    let both = SymbolMap::from_paths(&[ko.clone(), kallsyms.clone()]).unwrap();
    assert_eq!(both.symbols("twin_mod").len(), 2);
    assert!(!both.symbols("twin_mod").has_both_lists());
    assert_eq!(both.find("twin_mod", "twin", 0).unwrap().count, 1);
    let other = SymbolMap::from_paths(&[kallsyms, ko]).unwrap();
    assert!(other.symbols("twin_mod").has_both_lists());
    assert_eq!(other.find("twin_mod", "twin", 0).unwrap().count, 1);
}

/// A target that is itself a livepatch module keeps every symbol after its
/// init (`is_livepatch_module` in `add_kallsyms`): one list, no load order
/// to tell apart.
#[test]
fn a_livepatch_target_keeps_every_symbol() {
    let dir = scratch("load_order_livepatch_target");
    std::fs::write(dir.join("init.c"), INIT_TWIN).unwrap();
    std::fs::write(
        dir.join("text.c"),
        format!(
            "{TEXT_TWIN}static const char modinfo[] __attribute__((section(\".modinfo\"), used)) = \"name=twin_mod\\0livepatch=Y\";\n"
        ),
    )
    .unwrap();
    sh(
        &dir,
        "gcc -O1 -c init.c text.c && ld -r -o twin_mod.ko init.o text.o",
    );
    let map = SymbolMap::from_paths(&[dir.join("twin_mod.ko")]).unwrap();
    assert!(map.symbols("twin_mod").iter().all(|s| !s.coming_only));
    let p2 = patch(&dir, 2);
    let (code, f) = check(&p2, &[&dir.join("twin_mod.ko")], &[]);
    assert_eq!((code, f.len()), (0, 0), "{f:?}");
}

/// `module_init_section()` is a prefix match on `.init`: a symbol in
/// `.init_array` is freed with the other init sections.
#[test]
fn init_array_is_an_init_section() {
    let dir = scratch("load_order_init_array");
    std::fs::write(
        dir.join("init.c"),
        "static void (*twin)(void) __attribute__((used, section(\".init_array\"))) = 0;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("text.c"),
        format!(
            "{TEXT_TWIN}static const char modinfo[] __attribute__((section(\".modinfo\"), used)) = \"name=twin_mod\";\n"
        ),
    )
    .unwrap();
    sh(
        &dir,
        "gcc -O1 -c init.c text.c && ld -r -o twin_mod.ko init.o text.o",
    );
    let map = SymbolMap::from_paths(&[dir.join("twin_mod.ko")]).unwrap();
    let twins: Vec<bool> = map
        .symbols("twin_mod")
        .iter()
        .filter(|s| s.name == b"twin")
        .map(|s| s.coming_only)
        .collect();
    assert_eq!(twins, [true, false]);
}

/// `convert` with a map that knows only a loaded module's list says what
/// it could not prove, as `check` does.
#[test]
fn convert_warns_what_a_kallsyms_map_cannot_prove() {
    let dir = scratch("load_order_convert_kallsyms");
    let lp = dir.join("plain.o");
    compile_x86_64(
        &format!("{LIVEPATCH_MODINFO}int twin(void);\nint f(void) {{ return twin(); }}\n"),
        &lp,
    );
    let kallsyms = dir.join("kallsyms");
    std::fs::write(&kallsyms, "ffffffffc0000000 t twin\t[twin_mod]\n").unwrap();
    let symvers = dir.join("Module.symvers");
    std::fs::write(&symvers, "0x00000001\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n").unwrap();
    let out = dir.join("plain.ko");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "convert".to_string(),
            lp.display().to_string(),
            "-o".into(),
            out.display().to_string(),
            "--symbols".into(),
            kallsyms.display().to_string(),
            "--symbols".into(),
            symvers.display().to_string(),
        ];
        a.extend(extra.iter().map(|e| e.to_string()));
        a
    };
    let a = args(&[]);
    let r = klp_convert(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(
        stderr(&r)
            .lines()
            .find(|l| l.starts_with("klp-convert: warning:")),
        Some(
            format!(
                "klp-convert: warning: {}: the symbol maps give twin_mod's symbols as a loaded module keeps them (kallsyms, symbols.klp): positions with twin_mod loaded after the patch (or reloaded under it) were not checked; add twin_mod.ko to --symbols, or say --load-order target-first",
                lp.display()
            )
            .as_str()
        ),
    );
    let a = args(&["--load-order", "target-first"]);
    let r = klp_convert(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(!stderr(&r).contains("were not checked"), "{}", stderr(&r));
}

fn sh(dir: &Path, cmd: &str) {
    let ok = Command::new("sh")
        .current_dir(dir)
        .args(["-c", cmd])
        .status()
        .unwrap()
        .success();
    assert!(ok, "{cmd}");
}
