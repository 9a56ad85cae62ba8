//! Bad input never panics: thousands of corrupted variants of a real
//! compiled livepatch object either convert (and then verify) or are refused
//! with an error, and `check` reports on each of them.

mod common;

use common::*;
use klp_convert::convert;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn corrupted_objects_are_refused_not_panicked_on() {
    let dir = scratch("robustness");
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}
extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);
extern int t KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, t, 2);
int f(void) {{ return saved_command_line[0] + t; }}
void *p = &t;
"
        ),
        &obj,
    );
    let good = std::fs::read(&obj).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut converted, mut refused, mut internal) = (0, 0, 0);
    for round in 0..20000 {
        let mut bad = good.clone();
        match round % 4 {
            // A few random bytes anywhere.
            0 | 1 => {
                for _ in 0..1 + rng.next() % 4 {
                    let at = (rng.next() % bad.len() as u64) as usize;
                    bad[at] = rng.next() as u8;
                }
            }
            // Truncation.
            2 => bad.truncate((rng.next() % bad.len() as u64) as usize),
            // A byte of the headers (ELF header or section headers).
            _ => {
                let shoff = u64::from_le_bytes(good[0x28..0x30].try_into().unwrap()) as usize;
                let at = if rng.next() % 2 == 0 {
                    (rng.next() % 64) as usize
                } else {
                    shoff + (rng.next() % (good.len() - shoff) as u64) as usize
                };
                bad[at] = rng.next() as u8;
            }
        }
        let checked =
            std::panic::catch_unwind(|| klp_convert::check::check_bytes("bad", &bad, None, None));
        assert!(checked.is_ok(), "check panicked on variant {round}");
        let result = std::panic::catch_unwind(|| convert::convert_bytes(&bad));
        match result {
            Ok(Ok(_)) => converted += 1,
            Ok(Err(convert::Error::Internal(p))) => {
                internal += 1;
                eprintln!(
                    "variant {round}: output failed verification: {:?}",
                    p.first()
                );
            }
            Ok(Err(_)) => refused += 1,
            Err(_) => panic!("panic on variant {round}"),
        }
    }
    eprintln!("corrupted variants: {converted} converted, {refused} refused, {internal} failed verification");
    assert!(refused > 1000, "the corruptions should mostly be caught");
    assert_eq!(
        internal, 0,
        "corrupt input must be refused by the planner, not by verification"
    );
}

/// The symbol-map readers never panic either: corrupted variants of a real
/// module, a kallsyms dump, a symbols.klp, a Module.symvers and a JSON map
/// are read or refused with an error, and conversion with whatever map came
/// out still answers.
#[test]
fn corrupted_maps_are_refused_not_panicked_on() {
    use klp_convert::maps::SymbolMap;
    let dir = scratch("robustness_maps");
    let ko = dir.join("target.ko");
    compile_x86_64(
        "static int homonym(void) { return 1; }\n\
         int get(void) { static int counter; return homonym() + counter++; }\n\
         const void *__ksymtab_get __attribute__((used)) = get;\n\
         static const char modinfo[] __attribute__((section(\".modinfo\"), used)) = \"name=mod_a\";\n",
        &ko,
    );
    let lp = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int get(void);\nextern char *saved_command_line;\n\
             int f(void) {{ return get() + saved_command_line[0]; }}\n"
        ),
        &lp,
    );
    let lp = std::fs::read(&lp).unwrap();
    let mut good = SymbolMap::new();
    good.add_file(&ko).unwrap();
    good.add_kallsyms("ffffffff81000100 T printk\nffffffff81000200 D saved_command_line\n")
        .unwrap();
    let sources: Vec<(&str, Vec<u8>)> = vec![
        ("target.ko", std::fs::read(&ko).unwrap()),
        (
            "kallsyms",
            b"ffffffff81000100 T printk\nffffffff81000200 D saved_command_line\nffffffffc0000000 t get\t[mod_a]\n"
                .to_vec(),
        ),
        ("symbols.klp", good.to_symbols_klp()),
        (
            "Module.symvers",
            b"0x00000001\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n0x00000002\tget\tdrivers/mod_a\tEXPORT_SYMBOL_GPL\t\n"
                .to_vec(),
        ),
        ("map.json", good.to_json().into_bytes()),
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut read, mut refused) = (0, 0);
    for round in 0..5000 {
        let (name, bytes) = &sources[round % sources.len()];
        let mut bad = bytes.clone();
        if rng.next() % 3 == 0 {
            bad.truncate((rng.next() % bad.len() as u64) as usize);
        } else {
            for _ in 0..1 + rng.next() % 4 {
                let at = (rng.next() % bad.len() as u64) as usize;
                bad[at] = match rng.next() % 4 {
                    0 => b'\n',
                    1 => b'\t',
                    2 => b' ',
                    _ => rng.next() as u8,
                };
            }
        }
        let path = dir.join(name);
        std::fs::write(&path, &bad).unwrap();
        let result = std::panic::catch_unwind(|| {
            let mut map = SymbolMap::new();
            let r = map.add_file(&path);
            let _ = convert::convert_bytes_with(&lp, Some(&map));
            r
        });
        match result {
            Ok(Ok(())) => read += 1,
            Ok(Err(e)) => {
                assert!(
                    !e.to_string().is_empty(),
                    "variant {round} of {name}: empty error"
                );
                refused += 1;
            }
            Err(_) => panic!("panic on variant {round} of {name}"),
        }
    }
    eprintln!("corrupted maps: {read} read, {refused} refused");
    assert!(refused > 500, "the corruptions should often be caught");
}

/// A symbol whose `st_shndx` is `SHN_XINDEX` in an object without an
/// `SHT_SYMTAB_SHNDX` table has no section. It is a parse error naming the
/// symbol, never section 0 (which the module map then dropped silently).
#[test]
fn shn_xindex_without_its_table_is_an_error() {
    use klp_convert::elf::Elf;
    let dir = scratch("robustness_xindex");
    let obj = dir.join("target.ko");
    compile_x86_64(
        "int visible(void) { return 1; }\n\
         static const char modinfo[] __attribute__((section(\".modinfo\"), used)) = \"name=xmod\";\n",
        &obj,
    );
    let mut bytes = std::fs::read(&obj).unwrap();
    let elf = Elf::parse(&bytes).unwrap();
    let symtab = &elf.sections.at(elf.symtab.unwrap());
    let sym = elf.symbols.iter().find(|s| s.name == b"visible").unwrap();
    let at = symtab.sh_offset as usize + sym.index as usize * 24 + 6;
    let index = sym.index;
    bytes[at..at + 2].copy_from_slice(&0xffffu16.to_le_bytes());
    std::fs::write(&obj, &bytes).unwrap();
    let want = format!(
        "section .symtab: symbol #{index} (visible): st_shndx is SHN_XINDEX but the object has no SHT_SYMTAB_SHNDX entry for it"
    );
    assert_eq!(Elf::parse(&bytes).unwrap_err().to_string(), want);

    // Every command names the file.
    let r = klp_convert(&["show", obj.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(
        stderr(&r),
        format!("klp-convert: error: {}: {want}\n", obj.display())
    );
    let r = klp_convert(&["symbols", obj.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert_eq!(
        stderr(&r),
        format!("klp-convert: error: {}: {want}\n", obj.display())
    );
    let r = klp_convert(&["check", obj.to_str().unwrap(), "--format", "json"]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    let json: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(json[0]["findings"][0]["rule"], "not-elf");
    assert_eq!(
        json[0]["findings"][0]["message"],
        format!("not a readable ELF object: {want}")
    );
}

/// The binary run with `args` on one core (`taskset`: the tool then does
/// everything on this thread) or on all the machine's.
fn klp_convert_on(one_core: bool, args: &[&str]) -> std::process::Output {
    let mut cmd = if one_core {
        let mut c = std::process::Command::new("taskset");
        c.args(["-c", "0"]).arg(env!("CARGO_BIN_EXE_klp-convert"));
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_klp-convert"))
    };
    cmd.env(PROVE_WANTED, "1")
        .args(args)
        .output()
        .expect("run klp-convert")
}

/// A module large enough for the work a large module gets on two cores
/// (its symbols read beside its section headers, its contract beside the
/// selection, the plan's relocation sections in two runs, the proof's two
/// halves: 10,500 functions, 21,012 sections, 31,500 relocations of which
/// 21,000 move, past `WORTH_TWO_CORES` at every step) converts to
/// the same bytes, and is refused with the same words, as on one core:
/// the section headers' fault reported before the symbols'. For x86_64's
/// RELA and i386's REL (whose moved entries carry their implicit addends).
#[test]
fn a_large_module_converts_on_two_cores_as_on_one() {
    assert!(
        std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2,
        "this test compares two cores with one"
    );
    let dir = scratch("two-cores");
    let mut source = format!("{HEADER}{LIVEPATCH_MODINFO}");
    for i in 0..100 {
        source.push_str(&format!(
            "extern int v{i} KLP_RELOC_SYMBOL(vmlinux, vmlinux, v{i});\n"
        ));
    }
    for i in 0..10_500 {
        source.push_str(&format!(
            "int f{i}(void) {{ return v{} + v{}; }}\n",
            i % 100,
            (i * 7 + 3) % 100
        ));
    }
    for (machine, flags) in [
        ("x86_64", &["-mcmodel=kernel", "-mno-red-zone"][..]),
        ("i386", &["-m32"][..]),
    ] {
        let obj = dir.join(format!("lp-{machine}.o"));
        compile("gcc", flags, &source, &obj);
        let good = std::fs::read(&obj).unwrap();
        let elf = klp_convert::elf::Elf::parse(&good).unwrap();
        let relocations: usize = elf.relocs.iter().map(|r| r.len()).sum();
        assert!(
            elf.sections.len() >= klp_convert::WORTH_TWO_CORES
                && relocations >= klp_convert::WORTH_TWO_CORES,
            "{machine}: {} sections, {relocations} relocations",
            elf.sections.len()
        );
        let symtab = elf.sections.at(elf.symtab.unwrap()).sh_offset as usize;
        let (shoff, shentsize) = (elf.shoff as usize, usize::from(elf.shentsize));
        let (symentsize, align_at) = if elf.is_64 { (24, 48) } else { (16, 32) };
        // Symbol #5's name far past the string table; section #3's
        // alignment not a power of two; section #4's name past the section
        // name table.
        let bad_symbol = |b: &mut Vec<u8>| {
            let at = symtab + 5 * symentsize;
            b[at..at + 4].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        };
        let mut section_name = good.clone();
        let at = shoff + 4 * shentsize;
        section_name[at..at + 4].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        let bad_section = |b: &mut Vec<u8>| {
            let at = shoff + 3 * shentsize + align_at;
            b[at..at + 4].copy_from_slice(&3u32.to_le_bytes());
        };
        let mut symbol_only = good.clone();
        bad_symbol(&mut symbol_only);
        let mut both = symbol_only.clone();
        bad_section(&mut both);
        // The names' faults in `object`'s words, as before the reader
        // checked them itself.
        let cases: [(&str, &[u8], Option<&str>); 4] = [
            ("good", &good, None),
            (
                "symbol",
                &symbol_only,
                Some("section .symtab: symbol #5: cannot read its name: Invalid ELF symbol name offset"),
            ),
            (
                "section-name",
                &section_name,
                Some("section #4: cannot read its name: Invalid ELF section name offset"),
            ),
            (
                "both",
                &both,
                Some("sh_addralign 0x3 is not a power of two"),
            ),
        ];
        for (case, bytes, refused) in cases {
            let name = format!("{machine}-{case}");
            let input = dir.join(format!("{name}.o"));
            std::fs::write(&input, bytes).unwrap();
            let run = |one_core: bool| {
                let out = dir.join(format!("{name}-{one_core}.ko"));
                let _ = std::fs::remove_file(&out);
                let o = klp_convert_on(
                    one_core,
                    &[
                        "convert",
                        input.to_str().unwrap(),
                        "-o",
                        out.to_str().unwrap(),
                    ],
                );
                let written = std::fs::read(&out).ok();
                (
                    o.status.code(),
                    stderr(&o).replace(&format!("{name}-{one_core}.ko"), "OUT"),
                    written,
                )
            };
            let (one, two) = (run(true), run(false));
            assert_eq!(one, two, "{name}: one core, then two");
            match refused {
                None => {
                    assert_eq!(two.0, Some(0), "{name}: {}", two.1);
                    assert!(two.1.contains("21000 relocations"), "{name}: {}", two.1);
                    assert!(two.2.is_some());
                }
                Some(message) => {
                    assert_ne!(two.0, Some(0), "{name}");
                    assert!(two.1.contains(message), "{name}: {}", two.1);
                    assert!(two.2.is_none(), "{name}: nothing written");
                }
            }
        }
    }
}
