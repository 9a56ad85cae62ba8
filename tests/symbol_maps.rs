//! The symbol-map readers on ELF files linked by the real toolchain: a
//! vmlinux-shaped executable (Debian's own vmlinux is stripped, and its
//! symbols ship only in the 850 MB -dbg package), checked against `nm -n`.

mod common;

use std::process::Command;

use common::*;
use klp_convert::maps::{LoadOrder, SymbolMap, Unresolved};

/// b.o is linked first (a partial link, as kbuild builds vmlinux.a), so its
/// `homonym` comes first in the symbol table; it sits in `.text.zlate`, which
/// follows all of `.text`, so a.c's comes first by address. The kernel
/// counts vmlinux duplicates by address: position 1 is a.c's.
const A: &str = r#"
static int __attribute__((noinline, used)) homonym(void) { return 1; }
int exported_fn(void) { return homonym() + 10; }
/* What EXPORT_SYMBOL leaves in vmlinux: a __ksymtab_<name> entry. */
const void *__ksymtab_exported_fn __attribute__((used, section("___ksymtab+exported_fn"))) = exported_fn;
int from_b(void);
int main(void) { return exported_fn() + from_b(); }
"#;
const B: &str = r#"
static int __attribute__((noinline, used, section(".text.zlate"))) homonym(void) { return 2; }
int from_b(void) { return homonym(); }
"#;

fn link(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::write(dir.join("a.c"), A).unwrap();
    std::fs::write(dir.join("b.c"), B).unwrap();
    let out = dir.join("vmlinux");
    sh(
        dir,
        &[
            "gcc -O1 -c a.c b.c",
            "ld -r -o built-in.o b.o a.o",
            "gcc -no-pie built-in.o -o vmlinux",
        ],
    );
    out
}

/// Run each of `cmds` with sh in `dir`; all must succeed.
fn sh(dir: &std::path::Path, cmds: &[&str]) {
    for cmd in cmds {
        let status = Command::new("sh")
            .current_dir(dir)
            .args(["-c", cmd])
            .status()
            .expect("run sh");
        assert!(status.success(), "{cmd}");
    }
}

/// The values of the symbols called `name`, in symbol-table order.
fn symtab_values(file: &std::path::Path, name: &str) -> Vec<u64> {
    let out = Command::new("readelf")
        .arg("-sW")
        .arg(file)
        .output()
        .expect("run readelf");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 8 && f[7] == name).then(|| u64::from_str_radix(f[1], 16).unwrap())
        })
        .collect()
}

/// `nm -n` addresses of a name, in address order.
fn nm_addresses(file: &std::path::Path, name: &str) -> Vec<u64> {
    let out = Command::new("nm")
        .arg("-n")
        .arg(file)
        .output()
        .expect("run nm");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[2] == name).then(|| u64::from_str_radix(f[0], 16).unwrap())
        })
        .collect()
}

#[test]
fn vmlinux_elf_positions_files_and_exports() {
    let dir = scratch("vmlinux_elf");
    let vmlinux = link(&dir);
    let mut map = SymbolMap::new();
    map.add_file(&vmlinux).unwrap();

    let nm = nm_addresses(&vmlinux, "homonym");
    assert_eq!(nm.len(), 2);
    // The case is only a test if the two orders disagree.
    assert_eq!(symtab_values(&vmlinux, "homonym"), [nm[1], nm[0]]);
    let first = map.find("vmlinux", "homonym", 1).unwrap();
    let second = map.find("vmlinux", "homonym", 2).unwrap();
    assert_eq!((first.addr, second.addr), (Some(nm[0]), Some(nm[1])));
    assert_eq!((first.count, first.position), (2, 1));
    // Address order, not symbol-table order: a.c's comes first.
    let places = (first.place.unwrap(), second.place.unwrap());
    assert!(places.0.ends_with(" in a.c"), "{}", places.0);
    assert!(places.1.ends_with(" in b.c"), "{}", places.1);
    // Position 0 is the kernel's "unique or fail".
    assert!(map.find("vmlinux", "homonym", 0).is_err());
    assert!(map.find("vmlinux", "homonym", 3).is_err());

    // Globals carry no file; kinds as kallsyms writes them.
    let e = map
        .symbols("vmlinux")
        .iter()
        .find(|s| s.name == b"exported_fn")
        .unwrap();
    assert_eq!((e.kind, e.file), ('T', None));
    let h = map
        .symbols("vmlinux")
        .iter()
        .find(|s| s.name == b"homonym")
        .unwrap();
    assert_eq!(h.kind, 't');

    // The __ksymtab_ entry makes the export list: exported_fn is vmlinux's,
    // everything else is not exported.
    assert_eq!(map.exporter("exported_fn"), Some(&b"vmlinux"[..]));
    assert_eq!(map.is_exported("homonym"), Some(false));

    // The same through the command line, in both map formats.
    let json = dir.join("map.json");
    let o = klp_convert(&[
        "symbols",
        vmlinux.to_str().unwrap(),
        "--format",
        "json",
        "-o",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut back = SymbolMap::new();
    back.add_file(&json).unwrap();
    assert_eq!(back, map);
    let o = klp_convert(&["symbols", vmlinux.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let klp = String::from_utf8_lossy(&o.stdout);
    assert!(
        klp.starts_with("klp-convert-symbol-data.0.1\n*vmlinux\n"),
        "{klp}"
    );
    assert_eq!(klp.lines().filter(|l| *l == "homonym").count(), 2);
    assert_eq!(
        klp.lines()
            .filter(|l| *l == "__ksymtab_exported_fn")
            .count(),
        1
    );
}

/// A kallsyms dump alone carries vmlinux's export list (its `__ksymtab_`
/// lines), so an engineer with only /proc/kallsyms of the target can convert.
#[test]
fn kallsyms_gives_exports() {
    let mut map = SymbolMap::new();
    map.add_kallsyms(
        "ffffffff81000000 T printk\n\
         ffffffff82000000 r __ksymtab_printk\n\
         ffffffff81000100 t local_fn\n\
         ffffffffc0000000 t mod_fn\t[my-mod]\n\
         ffffffffc0001000 r __ksymtab_mod_export\t[my-mod]\n",
    )
    .unwrap();
    assert!(map.has_exports());
    assert_eq!(map.exporter("printk"), Some(&b"vmlinux"[..]));
    assert_eq!(map.exporter("mod_export"), Some(&b"my_mod"[..]));
    assert_eq!(map.is_exported("local_fn"), Some(false));

    // Without vmlinux __ksymtab_ lines (no CONFIG_KALLSYMS_ALL) the export
    // list is unknown, not empty.
    let mut bare = SymbolMap::new();
    bare.add_kallsyms("ffffffff81000000 T printk\n").unwrap();
    assert!(!bare.has_exports());
    assert_eq!(bare.is_exported("printk"), None);
}

/// Without `CONFIG_KALLSYMS_ALL` the module loader's kallsyms keeps a
/// module's text symbols only, so a static variable and a static function
/// of the same name are not two candidates: the target's kernel config,
/// given as one more map source (anywhere in the list), says which.
#[test]
fn module_data_symbols_follow_kallsyms_all() {
    let dir = scratch("kallsyms_all");
    std::fs::write(
        dir.join("a.c"),
        "static int twin __attribute__((used)) = 1;\n\
         static const char modinfo[] __attribute__((section(\".modinfo\"), used)) = \"name=twin_mod\";\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.c"),
        "static int __attribute__((noinline, used)) twin(void) { return 2; }\n",
    )
    .unwrap();
    sh(
        &dir,
        &["gcc -O1 -c a.c b.c", "ld -r -o twin_mod.ko a.o b.o"],
    );
    let ko = dir.join("twin_mod.ko");
    let all = dir.join("config-all");
    std::fs::write(
        &all,
        "#\n# Linux/x86 Kernel Configuration\n#\nCONFIG_KALLSYMS=y\nCONFIG_KALLSYMS_ALL=y\n",
    )
    .unwrap();
    let text_only = dir.join("config-text");
    std::fs::write(&text_only, "#\n# Linux/x86 Kernel Configuration\n#\nCONFIG_KALLSYMS=y\n# CONFIG_KALLSYMS_ALL is not set\n").unwrap();

    let twins = |sources: &[std::path::PathBuf]| {
        let mut map = SymbolMap::new();
        map.add_paths(sources).unwrap();
        map.symbols("twin_mod")
            .iter()
            .filter(|s| s.name == b"twin")
            .map(|s| (s.kind, s.coming_only))
            .collect::<Vec<(char, bool)>>()
    };
    // Unknown config, or KALLSYMS_ALL: the data symbol counts (position 1).
    assert_eq!(
        twins(std::slice::from_ref(&ko)),
        [('d', false), ('t', false)]
    );
    assert_eq!(twins(&[ko.clone(), all]), [('d', false), ('t', false)]);
    // Text only, with the config after the module: once loaded, twin is
    // unique; the data twin counts only while the module is coming.
    assert_eq!(
        twins(&[ko.clone(), text_only.clone()]),
        [('d', true), ('t', false)]
    );

    // The command line reads the config the same way.
    let out = dir.join("map.json");
    let r = klp_convert(&[
        "symbols",
        ko.to_str().unwrap(),
        text_only.to_str().unwrap(),
        "--format",
        "json",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let mut map = SymbolMap::new();
    map.add_file(&out).unwrap();
    assert_eq!(map.find("twin_mod", "twin", 0).unwrap().count, 1);
    assert_eq!(
        map.find_in("twin_mod", "twin", 0, LoadOrder::PatchFirst),
        Err(Unresolved::Ambiguous(2))
    );
    assert!(map.symbols("twin_mod").has_both_lists());
}

/// `symbols DIR` over a module tree with two broken modules among good
/// ones: both are named, in file-name order, nothing is written, and the
/// exit status says so (one bad module does not hide another).
#[test]
fn a_module_tree_names_every_broken_module() {
    let dir = scratch("symbols_tree_broken");
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(dir.join("m.c"), "int f(void) { return 1; }\n").unwrap();
    sh(&dir, &["gcc -O1 -c m.c -o tree/b_good.ko"]);
    // Not an ELF, and an ELF cut short.
    std::fs::write(tree.join("a_text.ko"), b"not a module\n").unwrap();
    let good = std::fs::read(tree.join("b_good.ko")).unwrap();
    std::fs::write(tree.join("c_cut.ko"), &good[..100]).unwrap();
    let out = dir.join("map.json");
    let r = klp_convert(&[
        "symbols",
        tree.to_str().unwrap(),
        "--format",
        "json",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    let err = stderr(&r);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].ends_with(&format!("{}: 2 modules could not be read:", tree.display())),
        "{err}"
    );
    assert!(
        lines[1].starts_with(&format!("  {}: ", tree.join("a_text.ko").display())),
        "{err}"
    );
    assert!(
        lines[2].starts_with(&format!("  {}: ", tree.join("c_cut.ko").display())),
        "{err}"
    );
    assert!(!out.exists());
}

/// A module tree: a symbolic link to a module is read (RHEL's
/// weak-updates/), one that leads nowhere is an error; two files of one
/// module name are an error naming both (the kernel loads one of them).
#[test]
fn module_trees_follow_links_and_refuse_two_of_a_name() {
    let dir = scratch("symbols_tree_links");
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("kernel")).unwrap();
    std::fs::create_dir_all(tree.join("weak-updates")).unwrap();
    std::fs::write(
        dir.join("m.c"),
        "static int __attribute__((used)) only_here(void) { return 1; }\n\
         static const char modinfo[] __attribute__((section(\".modinfo\"), used)) = \"name=linked_mod\";\n",
    )
    .unwrap();
    sh(&dir, &["gcc -O1 -c m.c -o real.ko"]);
    std::os::unix::fs::symlink(dir.join("real.ko"), tree.join("weak-updates/linked_mod.ko"))
        .unwrap();
    let mut map = SymbolMap::new();
    map.add_path(&tree).unwrap();
    assert!(map.has(b"linked_mod"), "the linked module is read");

    std::os::unix::fs::symlink(dir.join("gone.ko"), tree.join("weak-updates/gone.ko")).unwrap();
    let e = SymbolMap::new().add_path(&tree).unwrap_err().to_string();
    assert!(e.contains("gone.ko"), "{e}");
    std::fs::remove_file(tree.join("weak-updates/gone.ko")).unwrap();

    std::fs::copy(dir.join("real.ko"), tree.join("kernel/linked_mod.ko")).unwrap();
    let e = SymbolMap::new().add_path(&tree).unwrap_err().to_string();
    assert!(
        e.contains("module linked_mod again: ") && e.contains("kernel/linked_mod.ko has it too"),
        "{e}"
    );
}
