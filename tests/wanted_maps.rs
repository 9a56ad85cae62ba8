//! Maps read for a module's names only (`maps::Wanted`,
//! `SymbolMap::add_paths_wanted`) answer exactly as maps read whole: the
//! same converted bytes, notes and refusals, the same findings of `check`.
//! Every module the suite ships as a fixture is converted and checked both
//! ways, against maps made from its own names (so the lookups hit, with
//! duplicates, clones, exports and module objects), against the maps of
//! the fuzz regressions, and (tier 2) against Debian's real maps. The
//! binary proves the same for every module the other tests convert or
//! check (`common::PROVE_WANTED`).

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use klp_convert::check::check_bytes;
use klp_convert::convert::convert_bytes_with;
use klp_convert::elf::{signature, Elf};
use klp_convert::maps::{SymbolMap, Wanted};
use klp_convert::names;

/// Every ELF object or module among the fixtures.
fn fixture_modules() -> Vec<PathBuf> {
    let root = common::root();
    let mut out = Vec::new();
    for dir in [
        "fuzz/corpus/elf",
        "fuzz/corpus/convert_map",
        "fuzz/regressions",
    ] {
        for f in common::files_below(&root.join(dir), &[""]) {
            let bytes = std::fs::read(&f).unwrap_or_default();
            if bytes.starts_with(b"\x7fELF") && Elf::parse(signature::split(&bytes).0).is_ok() {
                out.push(f);
            }
        }
    }
    assert!(out.len() > 40, "{} fixtures", out.len());
    out
}

/// What a conversion and a check of `bytes` give with `map`, as text.
fn outcome(bytes: &[u8], map: &SymbolMap) -> String {
    let mut text = match convert_bytes_with(bytes, Some(map)) {
        Ok(c) => {
            let notes: Vec<String> = c.notes.iter().map(|n| n.to_string()).collect();
            format!(
                "converted {} bytes, hash {:x}, {} {} {}\n{}\n",
                c.bytes.len(),
                fnv(&c.bytes),
                c.symbols,
                c.relocations,
                c.sections,
                notes.join("\n")
            )
        }
        Err(e) => format!("refused: {e}\n"),
    };
    let report = check_bytes("m.ko", bytes, None, Some(map));
    text += &serde_json::to_string_pretty(&report).expect("json");
    text
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// Convert and check `module` with `sources` read whole and read for its
/// names: the same, and the filtered map really is smaller when it can be.
fn same_both_ways(module: &Path, sources: &[PathBuf]) -> (usize, usize) {
    let full = SymbolMap::from_paths(sources).expect("maps");
    same_as(module, sources, &full)
}

/// [`same_both_ways`], `full` being `sources` read whole.
fn same_as(module: &Path, sources: &[PathBuf], full: &SymbolMap) -> (usize, usize) {
    let bytes = std::fs::read(module).expect("read");
    let elf = Elf::parse(signature::split(&bytes).0).expect("parse");
    let filtered = SymbolMap::from_paths_wanted(sources, &Wanted::of_module(&elf)).expect("maps");
    assert!(filtered.answers_for(&elf));
    let objects = |m: &SymbolMap| m.objects().map(<[u8]>::to_vec).collect::<Vec<_>>();
    assert_eq!(objects(full), objects(&filtered), "{}", module.display());
    assert_eq!(full.has_exports(), filtered.has_exports());
    assert_eq!(
        outcome(&bytes, full),
        outcome(&bytes, &filtered),
        "{} with {sources:?}",
        module.display()
    );
    let count = |m: &SymbolMap| m.objects().map(|o| m.symbols(o).len()).sum::<usize>();
    (count(full), count(&filtered))
}

/// A System.map, a Module.symvers and a kallsyms dump of modules made from
/// `elf`'s own names: each twice in vmlinux (ambiguous) or once, with
/// clones, `__ksymtab_` marks and exports for some; the objects its klp
/// names and annotations give, with their names; and noise.
fn maps_from_names(elf: &Elf, dir: &Path) -> Vec<PathBuf> {
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut objects: Vec<Vec<u8>> = vec![b"target_mod".to_vec()];
    for s in &elf.symbols {
        let n = s.name.to_vec();
        if let Ok(k) = names::parse_klp_symbol(&n) {
            names.push(k.name.to_vec());
            objects.push(k.obj.to_vec());
        }
        if let Ok(a) = names::parse_annotation(&n) {
            names.push(a.target.name.to_vec());
            objects.push(a.target.obj.to_vec());
        }
        names.push(n);
    }
    names.retain(|n| {
        !n.is_empty() && n.iter().all(|b| b.is_ascii_graphic()) && !n.starts_with(b"[")
    });
    objects.retain(|o| o.as_slice() != b"vmlinux" && o.iter().all(|b| b.is_ascii_graphic()));
    let mut system_map = String::new();
    let mut kallsyms = String::new();
    let mut symvers = String::new();
    let mut addr = 0xffffffff81000000u64;
    for i in 0..3000 {
        addr += 0x10;
        writeln!(system_map, "{addr:016x} t noise_{}", i % 2000).unwrap();
    }
    writeln!(system_map, "{addr:016x} T _text").unwrap();
    for (i, n) in names.iter().enumerate() {
        let n = String::from_utf8_lossy(n);
        addr += 0x10;
        // Descending addresses for some: the map sorts them.
        let at = if i % 3 == 0 { addr + 0x100000 } else { addr };
        writeln!(system_map, "{at:016x} t {n}").unwrap();
        if i % 2 == 0 {
            writeln!(system_map, "{addr:016x} T {n}").unwrap();
        }
        if i % 4 == 1 {
            writeln!(system_map, "{addr:016x} t {n}.isra.0").unwrap();
            writeln!(system_map, "{addr:016x} t {n}.cold").unwrap();
        }
        if i % 5 == 2 {
            writeln!(system_map, "{addr:016x} r __ksymtab_{n}").unwrap();
        }
        let obj = String::from_utf8_lossy(&objects[i % objects.len()]);
        if i % 3 != 1 {
            writeln!(
                kallsyms,
                "{:016x} t {n}\t[{obj}]",
                0xffffffffc0000000u64 + 0x20 * i as u64
            )
            .unwrap();
        }
        if i % 6 == 0 {
            writeln!(
                kallsyms,
                "{:016x} t {n}\t[{obj}]",
                0xffffffffc0000010u64 + 0x20 * i as u64
            )
            .unwrap();
        }
        if i % 7 == 3 {
            writeln!(symvers, "0x1\t{n}\tdrivers/{obj}\tEXPORT_SYMBOL\t").unwrap();
        }
        if i % 7 == 5 {
            writeln!(symvers, "0x1\t{n}\tvmlinux\tEXPORT_SYMBOL_GPL\t").unwrap();
        }
    }
    writeln!(system_map, "ffffffffffffff00 B _end").unwrap();
    for i in 0..500 {
        writeln!(symvers, "0x2\tnoise_export_{i}\tvmlinux\tEXPORT_SYMBOL\t").unwrap();
    }
    let paths = [
        ("System.map", system_map),
        ("kallsyms", kallsyms),
        ("Module.symvers", symvers),
    ];
    std::fs::create_dir_all(dir).unwrap();
    paths
        .iter()
        .filter(|(_, text)| !text.is_empty())
        .map(|(name, text)| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect()
}

#[test]
fn every_fixture_converts_and_checks_the_same_with_maps_read_for_its_names() {
    let dir = common::scratch("wanted_fixtures");
    let mut smaller = 0;
    for (i, module) in fixture_modules().iter().enumerate() {
        let bytes = std::fs::read(module).unwrap();
        let elf = Elf::parse(signature::split(&bytes).0).unwrap();
        let mut sources = maps_from_names(&elf, &dir.join(i.to_string()));
        // The module itself as a map source too (the .ko reader).
        sources.push(module.clone());
        let (full, filtered) = same_both_ways(module, &sources);
        smaller += usize::from(filtered < full);
        // Each map alone: an export list alone, kallsyms alone.
        for one in &sources {
            same_both_ways(module, std::slice::from_ref(one));
        }
    }
    assert!(smaller > 40, "{smaller}");
}

#[test]
fn the_fuzz_regressions_resolve_the_same_with_their_own_maps() {
    let root = common::root().join("fuzz/regressions/structured");
    let mut n = 0;
    for case in std::fs::read_dir(&root).unwrap().flatten() {
        // `load-order` is the case's --load-order, not a map.
        let mut files = common::files_below(&case.path(), &[""]);
        files.retain(|f| !f.ends_with("load-order"));
        let (modules, maps): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|f| {
            std::fs::read(f).is_ok_and(|b| b.starts_with(b"\x7fELF") && f.extension().is_some())
        });
        if maps
            .iter()
            .any(|m| SymbolMap::from_paths(std::slice::from_ref(m)).is_err())
        {
            continue;
        }
        for m in &modules {
            same_both_ways(m, &maps);
            n += 1;
        }
    }
    assert!(n > 10, "{n}");
}

/// Positions count same-named symbols: the kept names keep every line, in
/// order, so each position means the same symbol.
#[test]
fn positions_of_kept_names_are_unchanged() {
    let text = "ffffffff81000300 t dup\n\
                ffffffff81000100 t dup\n\
                ffffffff81000150 t other\n\
                ffffffff81000200 t dup\n\
                ffffffff81000250 t dup.isra.0\n\
                ffffffffc0000010 t homonym\t[my_mod]\n\
                ffffffffc0000020 t unwanted\t[my_mod]\n\
                ffffffffc0000000 t homonym\t[my_mod]\n\
                ffffffffc0000000 t unwanted\t[only_unwanted]\n";
    let dir = common::scratch("wanted_positions");
    let map = dir.join("kallsyms");
    std::fs::write(&map, text).unwrap();
    let full = SymbolMap::from_paths(std::slice::from_ref(&map)).unwrap();
    let mut w = Wanted::new();
    w.add_name(b"dup");
    w.add_name(b"homonym");
    let filtered = SymbolMap::from_paths_wanted(std::slice::from_ref(&map), &w).unwrap();
    for (obj, name) in [
        ("vmlinux", "dup"),
        ("my_mod", "homonym"),
        ("vmlinux", "dup.isra.0"),
    ] {
        for pos in 0..5 {
            assert_eq!(
                full.find(obj, name, pos),
                filtered.find(obj, name, pos),
                "{obj} {name} {pos}"
            );
        }
    }
    // Objects stay known, an object with no name kept too.
    assert!(filtered.has("only_unwanted") && filtered.symbols("only_unwanted").is_empty());
    assert_eq!(filtered.symbols("vmlinux").len(), 4);
    assert!(full.find("vmlinux", "other", 0).is_ok());
    assert!(filtered.find("vmlinux", "other", 0).is_err());
}

/// Every line is still read and checked: a malformed line is an error
/// whether its name is wanted or not, with the same message.
#[test]
fn an_unwanted_malformed_line_is_still_an_error() {
    let dir = common::scratch("wanted_malformed");
    let w = Wanted::new();
    for (name, text) in [
        ("bad_address", "ffffffff81000100 T _text\nzz t unwanted\n"),
        ("too_few", "ffffffff81000100 T _text\nffffffff81000200 t\n"),
        (
            "after_name",
            "ffffffff81000100 T _text\nffffffff81000200 t unwanted junk\n",
        ),
        (
            "placeholder",
            "Ooops\nThe real System.map is in the linux-image-<version>-dbg package\n",
        ),
        (
            "symvers",
            "0x1\tprintk\tvmlinux\tEXPORT_SYMBOL\n0x2\tunwanted\tvmlinux\n",
        ),
        ("klp", "klp-convert-symbol-data.0.1\nunwanted\n"),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let whole = SymbolMap::from_paths(std::slice::from_ref(&p)).unwrap_err();
        let wanted = SymbolMap::from_paths_wanted(std::slice::from_ref(&p), &w).unwrap_err();
        assert_eq!(whole.to_string(), wanted.to_string(), "{name}");
    }
}

/// A refusal's "similar names" (clones of the name asked) and "the same
/// name is in" (other objects) come from lines a filtered map keeps.
#[test]
fn not_found_details_survive_the_filter() {
    let dir = common::scratch("wanted_details");
    let map = dir.join("kallsyms");
    std::fs::write(
        &map,
        "ffffffff81000100 t counter.4\n\
         ffffffff81000200 t counter.constprop.0\n\
         ffffffff81000300 t unrelated\n\
         ffffffffc0000000 t elsewhere_fn\t[other_mod]\n\
         ffffffffc0000010 t unrelated\t[target_mod]\n",
    )
    .unwrap();
    let mut w = Wanted::new();
    w.add_name(b".klp.sym.vmlinux.counter.0,0");
    w.add_name(b".klp.sym.target_mod.elsewhere_fn,0");
    let filtered = SymbolMap::from_paths_wanted(std::slice::from_ref(&map), &w).unwrap();
    let full = SymbolMap::from_paths(std::slice::from_ref(&map)).unwrap();
    for m in [&full, &filtered] {
        let lookup = m.lookup();
        let k = names::parse_klp_symbol(b".klp.sym.vmlinux.counter.0,0").unwrap();
        let e = klp_convert::rules::resolution::find(&lookup, m, &k).unwrap_err();
        assert!(
            e.message
                .contains("vmlinux has: counter.4, counter.constprop.0"),
            "{}",
            e.message
        );
        let k = names::parse_klp_symbol(b".klp.sym.target_mod.elsewhere_fn,0").unwrap();
        let e = klp_convert::rules::resolution::find(&lookup, m, &k).unwrap_err();
        assert!(
            e.message.contains("the same name is in: other_mod"),
            "{}",
            e.message
        );
    }
}

/// A module that changed since the maps were read for it is refused, not
/// resolved against maps that lack its names.
#[test]
fn maps_read_for_another_module_are_not_trusted() {
    let module = fixture_modules()
        .into_iter()
        .find(|f| f.to_string_lossy().ends_with("lp.ko"))
        .expect("a fixture lp.ko");
    let bytes = std::fs::read(&module).unwrap();
    let dir = common::scratch("wanted_stale");
    let map = dir.join("System.map");
    std::fs::write(&map, "ffffffff81000100 T _text\n").unwrap();
    let filtered =
        SymbolMap::from_paths_wanted(std::slice::from_ref(&map), &Wanted::new()).unwrap();
    let report = check_bytes("m.ko", &bytes, None, Some(&filtered));
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.rule.id() == "maps-not-for-module"),
        "{report:?}"
    );
    let e = convert_bytes_with(&bytes, Some(&filtered)).unwrap_err();
    assert!(e.to_string().contains("nothing was resolved"), "{e}");
}

/// Tier 2: Debian's real maps, System.map and Module.symvers, for every
/// fixture and the modules of the kbuild benchmark when cached.
#[test]
#[ignore = "tier 2: needs the cached Debian kernels (scripts/fetch-kernels)"]
fn real_maps_give_the_same_answers() {
    let mut modules = fixture_modules();
    let bench = common::cache_dir().join("bench");
    modules.extend(common::files_below(&bench, &[".ko"]));
    for series in ["6.12", "6.1"] {
        let k = common::kernel_dir(series);
        let sources = vec![k.join("dbg/System.map"), k.join("build/Module.symvers")];
        // Read whole once for the modules without a target of their own
        // (all but the benchmark's): the same for each of them.
        let kernel_only = SymbolMap::from_paths(&sources).expect("maps");
        let mut smaller = 0;
        for m in &modules {
            let mut with_target = sources.clone();
            if let Some(t) = m
                .parent()
                .and_then(|d| d.parent())
                .map(|d| d.join("target"))
            {
                with_target.extend(common::files_below(&t, &[".ko"]));
            }
            let (full, filtered) = if with_target == sources {
                same_as(m, &with_target, &kernel_only)
            } else {
                same_both_ways(m, &with_target)
            };
            smaller += usize::from(filtered * 10 < full);
        }
        assert_eq!(smaller, modules.len(), "{series}");
    }
}
