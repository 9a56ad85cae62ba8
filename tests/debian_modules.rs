//! Every module of Debian's real kernels goes through the converter and the
//! writer unharmed: a no-op conversion is byte-identical, and a forced
//! rewrite keeps every existing section and symbol as it was.

mod common;

use std::path::Path;
use std::time::Instant;

use common::*;
use klp_convert::convert;
use klp_convert::elf::write::Edit;
use klp_convert::elf::{signature, Elf, Section};

fn read_module(path: &Path) -> Vec<u8> {
    klp_convert::module_file::read(path).unwrap_or_else(|e| panic!("{e}"))
}

/// Run `check` over the modules with two threads; collect failures.
fn for_all_modules(series: &str, check: fn(&Path, &[u8]) -> Result<(), String>) {
    let dir = kernel_dir(series).join("modules");
    let files = files_below(&dir, &[".ko", ".ko.xz"]);
    assert!(
        files.len() > 3000,
        "only {} modules below {}",
        files.len(),
        dir.display()
    );
    let start = Instant::now();
    let failures: Vec<String> = std::thread::scope(|s| {
        let halves: Vec<_> = files
            .chunks(files.len().div_ceil(2))
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|p| check(p, &read_module(p)).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    eprintln!(
        "{series}: {} modules in {:.1} s",
        files.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} modules failed, first ones:\n{}",
        failures.len(),
        files.len(),
        failures[..failures.len().min(10)].join("\n")
    );
}

fn noop_conversion(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let done = convert::convert_bytes(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if done.changed || done.bytes != bytes {
        return Err(format!("{}: output differs from input", path.display()));
    }
    Ok(())
}

#[test]
#[ignore = "tier 2: needs Debian kernel packages (scripts/fetch-kernels); scripts/test runs it"]
fn noop_conversion_is_byte_identical_debian_6_1() {
    for_all_modules("6.1", noop_conversion);
}

#[test]
#[ignore = "tier 2: needs Debian kernel packages (scripts/fetch-kernels); scripts/test runs it"]
fn noop_conversion_is_byte_identical_debian_6_12() {
    for_all_modules("6.12", noop_conversion);
}

/// Rewrite `.symtab` (same bytes, so in place), grow `.strtab` (appended) and
/// add a section; everything else must stay exactly as it was, and an
/// independent reader (the `object` crate's generic API) must accept it.
fn forced_rewrite(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let fail = |m: String| format!("{}: {m}", path.display());
    let (image, _) = signature::split(bytes);
    let elf = Elf::parse(image).map_err(|e| fail(e.to_string()))?;
    let Some(symtab) = elf.symtab else {
        return Err(fail("no .symtab".into()));
    };
    let mut edit = Edit::new(&elf);
    edit.set_contents(symtab, elf.section_data(symtab).to_vec());
    let st_name = edit.add_symbol_name(b"klp_convert_roundtrip");
    let header = Section {
        index: 0,
        name: &[],
        sh_name: 0,
        sh_type: 1,
        sh_flags: 0,
        sh_addr: 0,
        sh_offset: 0,
        sh_size: 0,
        sh_link: 0,
        sh_info: 0,
        sh_addralign: 1,
        sh_entsize: 0,
    };
    let new_index = edit.add_section(b".klp_convert_test", header, b"hello".to_vec());
    let out = edit.finish().map_err(|e| fail(e.to_string()))?;
    let again = Elf::parse(&out).map_err(|e| fail(format!("output does not parse: {e}")))?;
    if again.sections.len() != elf.sections.len() + 1 || new_index != elf.sections.len() {
        return Err(fail("section count".into()));
    }
    for (a, b) in elf.sections.iter().zip(again.sections.iter()) {
        let same = a.name == b.name
            && a.sh_type == b.sh_type
            && a.sh_flags == b.sh_flags
            && a.sh_link == b.sh_link
            && a.sh_info == b.sh_info
            && a.sh_addralign == b.sh_addralign
            && a.sh_entsize == b.sh_entsize;
        let grown = [
            symtab,
            again.sections.at(symtab).sh_link as usize,
            elf.shstrndx as usize,
        ];
        let data_ok = if grown.contains(&a.index) {
            again
                .section_data(a.index)
                .starts_with(elf.section_data(a.index))
        } else {
            elf.section_data(a.index) == again.section_data(a.index)
        };
        if !same || !data_ok {
            return Err(fail(format!("section {} changed", a.display_name())));
        }
    }
    if again.symbols != elf.symbols {
        return Err(fail("symbols changed".into()));
    }
    if again.section_data(new_index) != b"hello" {
        return Err(fail("new section contents".into()));
    }
    let strtab = again.section_data(again.sections.at(symtab).sh_link as usize);
    if !strtab[st_name as usize..].starts_with(b"klp_convert_roundtrip\0") {
        return Err(fail("added string".into()));
    }
    use object::{Object as _, ObjectSection as _};
    let file = object::File::parse(&*out).map_err(|e| fail(format!("object crate: {e}")))?;
    for s in file.sections() {
        s.data()
            .map_err(|e| fail(format!("object crate, section data: {e}")))?;
    }
    Ok(())
}

#[test]
#[ignore = "tier 2: needs Debian kernel packages (scripts/fetch-kernels); scripts/test runs it"]
fn forced_rewrite_keeps_everything_debian_6_1() {
    for_all_modules("6.1", forced_rewrite);
}

/// `check` over a whole Debian module tree: no false positives, every module
/// reported as not a livepatch module.
fn check_tree(series: &str) {
    let dir = kernel_dir(series).join("modules");
    let files = klp_convert::module_file::find_modules(&[dir]).unwrap();
    assert!(files.len() > 3000);
    let start = Instant::now();
    let reports = klp_convert::check::check_files(&files, None, None);
    eprintln!(
        "check {series}: {} modules in {:.1} s",
        files.len(),
        start.elapsed().as_secs_f64()
    );
    for r in reports {
        let r = r.unwrap();
        assert!(!r.livepatch, "{}: taken for a livepatch module", r.file);
        assert!(r.findings.is_empty(), "{}: {:?}", r.file, r.findings);
    }
}

#[test]
#[ignore = "tier 2: needs Debian kernel packages (scripts/fetch-kernels); scripts/test runs it"]
fn check_reports_no_findings_debian_6_1() {
    check_tree("6.1");
}

#[test]
#[ignore = "tier 2: needs Debian kernel packages (scripts/fetch-kernels); scripts/test runs it"]
fn check_reports_no_findings_debian_6_12() {
    check_tree("6.12");
}

/// The symbol-map readers on Debian's real files.
#[test]
#[ignore = "tier 2: needs Debian kernel packages (scripts/fetch-kernels); scripts/test runs it"]
fn symbol_maps_from_debian_files() {
    use klp_convert::maps::SymbolMap;
    let k61 = kernel_dir("6.1");
    let k612 = kernel_dir("6.12");

    // A /lib/modules tree of plain .ko, and one of .ko.xz.
    for (k, n) in [(&k61, 4000), (&k612, 4200)] {
        let mut map = SymbolMap::new();
        let start = Instant::now();
        map.add_path(&k.join("modules")).unwrap();
        eprintln!(
            "map of {}: {:.1} s",
            k.display(),
            start.elapsed().as_secs_f64()
        );
        assert!(map.objects().count() > n, "{}", map.objects().count());
        let lo = map.find("loop", "lo_release", 0).unwrap();
        assert_eq!(lo.count, 1);
        let s = map
            .symbols("loop")
            .iter()
            .find(|s| s.name == b"lo_release")
            .unwrap();
        assert_eq!(s.kind, 't');
        // Debian strips STT_FILE symbols from its modules: no source files.
        assert_eq!(s.file, None);
    }

    // Module.symvers of the headers: exports and who exports them.
    let mut exports = SymbolMap::new();
    exports.add_file(&k61.join("build/Module.symvers")).unwrap();
    assert_eq!(exports.exporter("_printk"), Some(&b"vmlinux"[..]));
    assert_eq!(exports.is_exported("saved_command_line"), Some(false));

    // Debian's placeholder System.map and stripped vmlinux: clear errors.
    let stub = k61
        .join("image/boot")
        .read_dir()
        .unwrap()
        .flatten()
        .map(|e| e.path());
    let stub: Vec<_> = stub
        .filter(|p| p.to_string_lossy().contains("System.map"))
        .collect();
    let e = SymbolMap::new().add_file(&stub[0]).unwrap_err().to_string();
    assert!(e.contains("linux-image-<version>-dbg"), "{e}");
    let e = SymbolMap::new()
        .add_file(&k61.join("vmlinux"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("stripped"), "{e}");
}

/// Debian's 6.12 ships `.ko.xz`; other distributions ship `.ko.zst`. The same
/// real module, compressed either way (and named so its extension cannot
/// help), reads as the same map and checks the same.
#[test]
#[ignore = "tier 2: needs Debian kernel packages (scripts/fetch-kernels); scripts/test runs it"]
fn compressed_modules_read_like_plain_ones() {
    use klp_convert::check;
    use klp_convert::maps::SymbolMap;
    use klp_convert::module_file;
    let plain = kernel_dir("6.1").join("modules/kernel/drivers/block/loop.ko");
    let dir = scratch("compressed_modules");
    let zst = dir.join("zst/loop.ko.zst");
    let xz = dir.join("xz/loop.ko.xz");
    let odd = dir.join("odd/loop.ko");
    for d in ["zst", "xz", "odd"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let run = |cmd: &mut std::process::Command| {
        let out = cmd.output().expect("run compressor");
        assert!(out.status.success(), "{cmd:?}: {out:?}");
    };
    run(std::process::Command::new("zstd")
        .args(["-q", "-19", "-o"])
        .arg(&zst)
        .arg(&plain));
    run(std::process::Command::new("sh").arg("-c").arg(format!(
        "xz --check=crc32 -c '{}' > '{}'",
        plain.display(),
        xz.display()
    )));
    // A zstd module under a plain name: recognised by its magic bytes.
    std::fs::copy(&zst, &odd).unwrap();

    let bytes = std::fs::read(&plain).unwrap();
    let mut want = SymbolMap::new();
    want.add_file(&plain).unwrap();
    assert!(want.symbols("loop").len() > 50);
    let want_report = check::check_bytes("loop", &bytes, None, None);
    for f in [&zst, &xz, &odd] {
        assert_eq!(module_file::read(f).unwrap(), bytes, "{}", f.display());
        // Directory walk picks the file up, map identical.
        let files = module_file::find_modules(&[f.parent().unwrap().to_path_buf()]).unwrap();
        assert_eq!(files, vec![f.clone()]);
        let mut map = SymbolMap::new();
        map.add_path(f.parent().unwrap()).unwrap();
        assert_eq!(map, want, "{}", f.display());
        let report = &check::check_files(&files, None, None)[0];
        let report = report.as_ref().unwrap();
        assert_eq!(report.findings, want_report.findings);
        assert_eq!(report.livepatch, want_report.livepatch);
    }

    // A truncated zstd file is an error naming the file, not a panic.
    let cut = dir.join("zst/cut.ko.zst");
    let z = std::fs::read(&zst).unwrap();
    std::fs::write(&cut, &z[..z.len() / 2]).unwrap();
    let err = module_file::read(&cut).unwrap_err().to_string();
    assert!(err.contains("cut.ko.zst") && err.contains("zstd"), "{err}");
}

/// The names on which two name → addresses tables disagree.
fn differences(
    a: &std::collections::BTreeMap<String, Vec<u64>>,
    b: &std::collections::BTreeMap<String, Vec<u64>>,
) -> Vec<String> {
    let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    names
        .into_iter()
        .filter(|n| a.get(*n) != b.get(*n))
        .map(|n| format!("{n}: {:x?} vs {:x?}", a.get(n), b.get(n)))
        .collect()
}

/// Debian's debug vmlinux (the ELF of `linux-image-<release>-dbg`, debug
/// info stripped by fetch-kernels) and its real System.map give the same
/// vmlinux map: every name, every address, so every position; and the ELF
/// knows the exports.
fn vmlinux_elf_matches_system_map(series: &str) {
    use klp_convert::maps::SymbolMap;
    let k = kernel_dir(series);
    let start = Instant::now();
    let mut elf = SymbolMap::new();
    elf.add_file(&k.join("dbg/vmlinux")).unwrap();
    eprintln!(
        "{series}: vmlinux ELF map in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let mut sysmap = SymbolMap::new();
    sysmap.add_file(&k.join("dbg/System.map")).unwrap();
    let e = addresses_by_name(&elf, "vmlinux");
    let mut m = addresses_by_name(&sysmap, "vmlinux");
    // System.map keeps the global absolute symbols (linker constants such
    // as `phys_startup_64`) that kallsyms leaves out, as the ELF map does.
    let absolute: Vec<String> = sysmap
        .symbols("vmlinux")
        .iter()
        .filter(|s| s.kind == 'A')
        .map(|s| String::from_utf8_lossy(s.name).into_owned())
        .collect();
    assert!(
        absolute.iter().any(|n| n == "phys_startup_64"),
        "{absolute:?}"
    );
    for name in absolute {
        m.remove(&name);
    }
    assert!(
        m.len() > 80_000,
        "{series}: {} names in System.map",
        m.len()
    );
    let diff = differences(&e, &m);
    assert!(
        diff.is_empty(),
        "{series}: {} names differ between the vmlinux ELF and System.map, first: {:#?}",
        diff.len(),
        &diff[..diff.len().min(10)]
    );
    // Many names are duplicated; each resolves by address order.
    let dup = m.values().filter(|a| a.len() > 1).count();
    assert!(dup > 1000, "{series}: only {dup} duplicated names");
    let (name, addrs) = m.iter().find(|(_, a)| a.len() > 2).unwrap();
    for (i, want) in addrs.iter().enumerate() {
        let r = elf.find("vmlinux", name, i as u64 + 1).unwrap();
        assert_eq!(
            (r.addr, r.count),
            (Some(*want), addrs.len()),
            "{name},{}",
            i + 1
        );
    }
    assert_eq!(elf.exporter("_printk"), Some(&b"vmlinux"[..]));
    assert_eq!(elf.is_exported("saved_command_line"), Some(false));
    assert_eq!(sysmap.exporter("_printk"), Some(&b"vmlinux"[..]));
}

#[test]
#[ignore = "tier 2: needs Debian kernel packages (scripts/fetch-kernels); scripts/test runs it"]
fn vmlinux_elf_matches_system_map_debian_6_1() {
    vmlinux_elf_matches_system_map("6.1");
}

#[test]
#[ignore = "tier 2: needs Debian kernel packages (scripts/fetch-kernels); scripts/test runs it"]
fn vmlinux_elf_matches_system_map_debian_6_12() {
    vmlinux_elf_matches_system_map("6.12");
}
