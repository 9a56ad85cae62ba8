//! The same annotated livepatch fragment compiled by the real compilers for
//! x86_64, i386 (ELF32, REL), ppc64le, big-endian ppc64 (ELFv2, as a BE
//! ELFv2 kernel builds its modules), s390x (big endian), aarch64,
//! loongarch64 (the trixie chroot's compiler, `common::loongarch_tool`) and
//! 32-bit PowerPC (ELF32, big endian, RELA),
//! converted, and checked with independent readers: GNU readelf of each
//! architecture's binutils for relocations, sections and symbols, and the
//! `object` crate's high-level API for section contents.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::*;
use object::{Object as _, ObjectSection as _};

/// The fragment: every kind of reference a livepatch makes.
const SOURCE: &str = r#"
extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);
extern int vm_func(int) KLP_RELOC_SYMBOL(vmlinux, vmlinux, vm_func);
extern const char *get_homonym_string(void)
	KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, get_homonym_string, 2);
extern int dotted KLP_RELOC_SYMBOL(vmlinux, vmlinux, klp_string.12345);
extern int printk(const char *, ...);
static int local_counter;
int f1(int x) { local_counter++; printk("f1"); return vm_func(x) + saved_command_line[0] + dotted; }
int f2(void) { return saved_command_line[1] + get_homonym_string()[0] + local_counter; }
char **ptr_to_cmdline = &saved_command_line;
"#;

struct Arch {
    name: &'static str,
    cc: &'static str,
    readelf: &'static str,
    flags: &'static [&'static str],
    is_64: bool,
    /// (klp symbol, relocation type) pairs that must appear in klp sections.
    expect: &'static [(&'static str, &'static str)],
}

/// One line of `readelf -rW`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rel {
    section: String,
    offset: u64,
    r_type: String,
    symbol: String,
    addend: String,
}

fn readelf(tool: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(tool)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e} (run scripts/setup-deps)"));
    assert!(out.status.success(), "{tool} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn relocations(tool: &str, file: &Path) -> Vec<Rel> {
    let text = readelf(tool, &["-rW"], file);
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Relocation section '") {
            section = rest.split('\'').next().unwrap().to_string();
            continue;
        }
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.len() < 5 || !t[2].starts_with("R_") {
            continue;
        }
        let Ok(offset) = u64::from_str_radix(t[0], 16) else {
            continue;
        };
        out.push(Rel {
            section: section.clone(),
            offset,
            r_type: t[2].to_string(),
            symbol: t[4].to_string(),
            addend: t[5..].join(" "),
        });
    }
    out
}

/// `readelf -SW`: name -> (index, type, flags, entsize, link, info).
fn sections(
    tool: &str,
    file: &Path,
) -> BTreeMap<String, (usize, String, String, String, usize, usize)> {
    let text = readelf(tool, &["-SW"], file);
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.trim_start().strip_prefix('[') else {
            continue;
        };
        let Some((idx, rest)) = rest.split_once(']') else {
            continue;
        };
        let Ok(idx) = idx.trim().parse::<usize>() else {
            continue;
        };
        let t: Vec<&str> = rest.split_whitespace().collect();
        if t.len() < 9 {
            continue;
        }
        // Name Type Address Off Size ES [Flg] Lk Inf Al
        let (flags, lk, inf) = if t.len() >= 10 {
            (t[6], t[7], t[8])
        } else {
            ("", t[6], t[7])
        };
        out.insert(
            t[0].to_string(),
            (
                idx,
                t[1].to_string(),
                flags.to_string(),
                t[5].to_string(),
                lk.parse().unwrap(),
                inf.parse().unwrap(),
            ),
        );
    }
    out
}

/// `readelf -sW`: name -> (index, Ndx column).
fn symbols(tool: &str, file: &Path) -> BTreeMap<String, (usize, String)> {
    let text = readelf(tool, &["-sW"], file);
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        let Some(num) = t.first().and_then(|n| n.strip_suffix(':')) else {
            continue;
        };
        let Ok(num) = num.parse::<usize>() else {
            continue;
        };
        // Num Value Size Type Bind Vis Ndx Name; Ndx "OS [0xff20]" is two tokens.
        let (ndx, name) = if t.get(6) == Some(&"OS") {
            (format!("{} {}", t[6], t[7]), t.get(8))
        } else {
            (t.get(6).unwrap_or(&"").to_string(), t.get(7))
        };
        if let Some(name) = name {
            out.insert(name.to_string(), (num, ndx));
        }
    }
    out
}

/// `.klp.sym.rela.<lp>.<obj>.<name>.<pos>` -> (lp, `.klp.sym.<obj>.<name>,<pos>`).
fn expected_klp(annotation: &str) -> (String, String) {
    let rest = annotation.strip_prefix(".klp.sym.rela.").unwrap();
    let (lp, rest) = rest.split_once('.').unwrap();
    let (obj, rest) = rest.split_once('.').unwrap();
    let (name, pos) = rest.rsplit_once('.').unwrap();
    (lp.to_string(), format!(".klp.sym.{obj}.{name},{pos}"))
}

/// The section a relocation section applies to, by the naming convention
/// the compilers use (`.rela.text.f1` -> `.text.f1`).
fn target_of(section: &str) -> &str {
    section
        .strip_prefix(".rela")
        .or_else(|| section.strip_prefix(".rel"))
        .unwrap()
}

fn run_arch(arch: &Arch) {
    let dir = scratch(&format!("multiarch-{}", arch.name));
    let input = dir.join("lp.o");
    compile(
        arch.cc,
        arch.flags,
        &format!("{HEADER}{LIVEPATCH_MODINFO}{SOURCE}"),
        &input,
    );
    let output = dir.join("lp.klp.o");
    let r = klp_convert(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}: {}", arch.name, stderr(&r));

    // Relocations: annotated ones moved and renamed, everything else as it was.
    let before = relocations(arch.readelf, &input);
    let after = relocations(arch.readelf, &output);
    let mut want_other = Vec::new();
    let mut want_klp = Vec::new();
    for r in &before {
        if r.symbol.starts_with(".klp.sym.rela.") {
            let (lp, sym) = expected_klp(&r.symbol);
            let section = format!(".klp.rela.{lp}.{}", target_of(&r.section));
            want_klp.push((section, r.offset, r.r_type.clone(), sym, r.addend.clone()));
        } else {
            want_other.push(r.clone());
        }
    }
    assert!(
        want_klp.len() >= 5,
        "{}: only {} annotated relocations",
        arch.name,
        want_klp.len()
    );
    let mut got_other: Vec<Rel> = after
        .iter()
        .filter(|r| !r.section.starts_with(".klp.rela."))
        .cloned()
        .collect();
    let mut got_klp: Vec<_> = after
        .iter()
        .filter(|r| r.section.starts_with(".klp.rela."))
        .map(|r| {
            (
                r.section.clone(),
                r.offset,
                r.r_type.clone(),
                r.symbol.clone(),
                r.addend.clone(),
            )
        })
        .collect();
    for r in &got_other {
        assert!(
            !r.symbol.starts_with(".klp.sym."),
            "{}: left behind: {r:?}",
            arch.name
        );
    }
    want_other.sort();
    got_other.sort();
    assert_eq!(
        got_other, want_other,
        "{}: ordinary relocations changed",
        arch.name
    );
    got_klp.sort();
    want_klp.sort();
    if arch.is_64 {
        assert_eq!(got_klp, want_klp, "{}: klp relocations", arch.name);
    } else {
        // REL input: readelf shows no addend before, the explicit one after.
        let strip =
            |v: &[(String, u64, String, String, String)]| -> Vec<(String, u64, String, String)> {
                v.iter()
                    .map(|(a, b, c, d, _)| (a.clone(), *b, c.clone(), d.clone()))
                    .collect()
            };
        assert_eq!(
            strip(&got_klp),
            strip(&want_klp),
            "{}: klp relocations",
            arch.name
        );
        assert!(
            got_klp.iter().all(|k| !k.4.is_empty()),
            "{}: RELA addends",
            arch.name
        );
    }
    for (sym, ty) in arch.expect {
        assert!(
            got_klp.iter().any(|k| k.3 == *sym && k.2 == *ty),
            "{}: no {ty} against {sym} in {got_klp:#?}",
            arch.name
        );
    }

    // Sections: klp ones obey the contract; old indices unchanged.
    let s_in = sections(arch.readelf, &input);
    let s_out = sections(arch.readelf, &output);
    for (name, (idx, ..)) in &s_in {
        assert_eq!(
            s_out.get(name).map(|s| s.0),
            Some(*idx),
            "{}: section {name} renumbered",
            arch.name
        );
    }
    let symtab = s_out[".symtab"].0;
    let entsize = if arch.is_64 { "18" } else { "0c" };
    let klp_names: std::collections::BTreeSet<&String> = got_klp.iter().map(|k| &k.0).collect();
    for name in klp_names {
        let (idx, ty, flags, es, link, info) = &s_out[name];
        assert!(
            *idx >= s_in.len(),
            "{}: {name} is not a new section",
            arch.name
        );
        assert_eq!(ty, "RELA", "{}: {name}", arch.name);
        assert_eq!(flags, "AIo", "{}: {name} flags", arch.name);
        assert_eq!(es, entsize, "{}: {name} entsize", arch.name);
        assert_eq!(*link, symtab, "{}: {name} sh_link", arch.name);
        let target = name
            .strip_prefix(".klp.rela.")
            .unwrap()
            .split_once('.')
            .unwrap()
            .1;
        assert_eq!(*info, s_out[target].0, "{}: {name} sh_info", arch.name);
    }

    // Symbols: renamed in place, SHN_LIVEPATCH.
    let y_in = symbols(arch.readelf, &input);
    let y_out = symbols(arch.readelf, &output);
    for (name, (num, _)) in y_in.iter().filter(|(n, _)| n.starts_with(".klp.sym.rela.")) {
        let (_, klp) = expected_klp(name);
        assert_eq!(
            y_out.get(&klp),
            Some(&(*num, "OS [0xff20]".to_string())),
            "{}: {klp}",
            arch.name
        );
    }

    // Contents of untouched sections, through the object crate's generic API.
    let a = std::fs::read(&input).unwrap();
    let b = std::fs::read(&output).unwrap();
    let fa = object::File::parse(&*a).unwrap();
    let fb = object::File::parse(&*b).unwrap();
    for name in [".text.f1", ".text.f2", ".modinfo", ".eh_frame"] {
        let da = fa.section_by_name(name).unwrap().data().unwrap();
        let db = fb.section_by_name(name).unwrap().data().unwrap();
        assert_eq!(da, db, "{}: {name} contents", arch.name);
    }
    assert_eq!(fa.is_little_endian(), fb.is_little_endian());

    // Idempotent.
    let again = dir.join("lp.klp2.o");
    let r = klp_convert(&[
        "convert",
        output.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(
        std::fs::read(&again).unwrap(),
        b,
        "{}: second run changed the file",
        arch.name
    );
}

#[test]
fn x86_64() {
    run_arch(&Arch {
        name: "x86_64",
        cc: "gcc",
        readelf: "readelf",
        flags: &["-mcmodel=kernel", "-mno-red-zone"],
        is_64: true,
        expect: &[
            (".klp.sym.vmlinux.vm_func,0", "R_X86_64_PLT32"),
            (".klp.sym.vmlinux.saved_command_line,0", "R_X86_64_PC32"),
            (".klp.sym.vmlinux.saved_command_line,0", "R_X86_64_64"),
            (
                ".klp.sym.klp_test_target.get_homonym_string,2",
                "R_X86_64_PLT32",
            ),
            (".klp.sym.vmlinux.klp_string.12345,0", "R_X86_64_PC32"),
        ],
    });
}

#[test]
fn i386() {
    run_arch(&Arch {
        name: "i386",
        cc: "gcc",
        readelf: "readelf",
        flags: &["-m32"],
        is_64: false,
        expect: &[
            (".klp.sym.vmlinux.vm_func,0", "R_386_PC32"),
            (".klp.sym.vmlinux.saved_command_line,0", "R_386_32"),
            (
                ".klp.sym.klp_test_target.get_homonym_string,2",
                "R_386_PC32",
            ),
        ],
    });
}

/// ppc64's klp relocations, in both byte orders: calls through stubs, data
/// through the TOC (the klp relocation patches `.toc`).
const PPC64_EXPECT: &[(&str, &str)] = &[
    (".klp.sym.vmlinux.vm_func,0", "R_PPC64_REL24"),
    (
        ".klp.sym.klp_test_target.get_homonym_string,2",
        "R_PPC64_REL24",
    ),
    (".klp.sym.vmlinux.saved_command_line,0", "R_PPC64_ADDR64"),
    (".klp.sym.vmlinux.klp_string.12345,0", "R_PPC64_ADDR64"),
];

#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn ppc64le() {
    run_arch(&Arch {
        name: "ppc64le",
        cc: "powerpc64le-linux-gnu-gcc",
        readelf: "powerpc64le-linux-gnu-readelf",
        flags: &["-mcmodel=medium"],
        is_64: true,
        expect: PPC64_EXPECT,
    });
    local_call("ppc64le", "powerpc64le-linux-gnu-gcc", &["-mcmodel=medium"]);
}

#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn ppc64_big_endian_elfv2() {
    run_arch(&Arch {
        name: "ppc64",
        cc: "powerpc64-linux-gnu-gcc",
        readelf: "powerpc64-linux-gnu-readelf",
        // As kbuild builds modules for a big-endian ELFv2 kernel
        // (CONFIG_PPC64_BIG_ENDIAN_ELF_ABI_V2): the compiler's default is
        // ELFv1, whose modules that kernel refuses (module_elf_check_arch).
        flags: &["-mabi=elfv2", "-mbig-endian", "-mcmodel=large"],
        is_64: true,
        expect: PPC64_EXPECT,
    });
    // Big endian, ELFv2 (e_flags 2), and the calls' nops read in that order:
    // `check` finds every call through a klp symbol followed by its nop.
    let out = root().join("target/test-scratch/multiarch-ppc64/lp.klp.o");
    let data = std::fs::read(&out).unwrap();
    let file = object::File::parse(&*data).unwrap();
    assert!(!file.is_little_endian(), "not big endian");
    let object::FileFlags::Elf { e_flags, .. } = file.flags() else {
        panic!("not ELF");
    };
    assert_eq!(e_flags & 3, 2, "not ELFv2");
    let r = klp_convert(&["check", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(!stderr(&r).contains("Expected nop"), "{}", stderr(&r));
    local_call(
        "ppc64",
        "powerpc64-linux-gnu-gcc",
        &["-mabi=elfv2", "-mbig-endian", "-mcmodel=large"],
    );
}

/// ppc64 (both byte orders): a call GCC compiled as a local one (no nop
/// after it) made a call through a klp symbol, in the assembly, the way
/// tests/kernel_xarch.rs makes one for the real kernel. `convert` refuses
/// it and names the word after the call as the kernel's loader would read
/// it: in the file's byte order (read in the other, the `bl` is no call and
/// the rule would say nothing).
fn local_call(name: &str, cc: &str, flags: &[&str]) {
    let dir = root().join(format!("target/test-scratch/multiarch-{name}/localcall"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let c = dir.join("lc.c");
    std::fs::write(
        &c,
        format!(
            "{LIVEPATCH_MODINFO}static __attribute__((noinline)) int helper(int x) {{ return x * 3; }}\n\
             int lp_call(int x) {{ return helper(x) + 7; }}\n"
        ),
    )
    .unwrap();
    // `cc FLAGS... ARGS... IN -o OUT`, which must succeed.
    let cc_run = |args: &[&str], input: &Path, output: &Path| {
        let out = Command::new(cc)
            .args(flags)
            .args(args)
            .arg(input)
            .arg("-o")
            .arg(output)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
        assert!(
            out.status.success(),
            "{cc}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let asm = dir.join("lc.s");
    cc_run(&["-O2", "-S", "-ffunction-sections"], &c, &asm);
    let text = std::fs::read_to_string(&asm).unwrap();
    assert_eq!(text.matches("\tbl helper\n").count(), 1, "{text}");
    let text = text.replace(
        "\tbl helper\n",
        "\tbl .klp.sym.rela.vmlinux.vmlinux.vm_func.0\n",
    );
    std::fs::write(&asm, text).unwrap();
    let obj = dir.join("lc.o");
    cc_run(&["-c"], &asm, &obj);
    // The word after the call, in the file's byte order.
    let data = std::fs::read(&obj).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let text = file.section_by_name(".text.lp_call").unwrap();
    let (at, _) = text
        .relocations()
        .find(|(_, r)| matches!(r.flags(), object::RelocationFlags::Elf { r_type } if r_type == object::elf::R_PPC64_REL24))
        .expect("the call's R_PPC64_REL24");
    let bytes: [u8; 4] = text.data().unwrap()[at as usize + 4..at as usize + 8]
        .try_into()
        .unwrap();
    let next = if file.is_little_endian() {
        u32::from_le_bytes(bytes)
    } else {
        u32::from_be_bytes(bytes)
    };
    assert_ne!(
        next, 0x6000_0000,
        "{name}: GCC left a nop after the local call"
    );
    let refused = dir.join("lc.klp.o");
    let r = klp_convert(&[
        "convert",
        obj.to_str().unwrap(),
        "-o",
        refused.to_str().unwrap(),
    ]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(1), "{name}: {err}");
    assert!(
        err.contains(&format!(
            "Expected nop after call, got {next:08x} at lp_call+0x"
        )),
        "{name}: {err}"
    );
    assert!(!refused.exists());
}

#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn s390x() {
    run_arch(&Arch {
        name: "s390x",
        cc: "s390x-linux-gnu-gcc",
        readelf: "s390x-linux-gnu-readelf",
        // s390 modules are position independent (arch/s390 builds them -fPIC).
        flags: &["-fPIC"],
        is_64: true,
        expect: &[
            (".klp.sym.vmlinux.vm_func,0", "R_390_PLT32DBL"),
            (".klp.sym.vmlinux.saved_command_line,0", "R_390_GOTENT"),
            (".klp.sym.vmlinux.saved_command_line,0", "R_390_64"),
            (
                ".klp.sym.klp_test_target.get_homonym_string,2",
                "R_390_PLT32DBL",
            ),
        ],
    });
}

#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn aarch64() {
    run_arch(&Arch {
        name: "aarch64",
        cc: "aarch64-linux-gnu-gcc",
        readelf: "aarch64-linux-gnu-readelf",
        flags: &["-mcmodel=small"],
        is_64: true,
        expect: &[
            (".klp.sym.vmlinux.vm_func,0", "R_AARCH64_CALL26"),
            (
                ".klp.sym.vmlinux.saved_command_line,0",
                "R_AARCH64_ADR_PREL_PG_HI21",
            ),
            (
                ".klp.sym.vmlinux.saved_command_line,0",
                "R_AARCH64_LDST64_ABS_LO12_NC",
            ),
            (".klp.sym.vmlinux.saved_command_line,0", "R_AARCH64_ABS64"),
            (
                ".klp.sym.klp_test_target.get_homonym_string,2",
                "R_AARCH64_CALL26",
            ),
        ],
    });
}

#[test]
#[ignore = "tier 2: needs the trixie chroot's LoongArch cross compiler (scripts/build-kernels loongarch64); scripts/test runs it"]
fn loongarch64() {
    // Leaked: the Arch table holds static names, and these are paths.
    let cc: &'static str = Box::leak(loongarch_tool("gcc").into_boxed_str());
    let readelf: &'static str = Box::leak(loongarch_tool("readelf").into_boxed_str());
    run_arch(&Arch {
        name: "loongarch64",
        cc,
        readelf,
        // As kbuild compiles LoongArch modules: no linker relaxation, extern
        // data through the GOT (GCC's default).
        flags: &["-mno-relax", "-mcmodel=normal"],
        is_64: true,
        expect: &[
            (".klp.sym.vmlinux.vm_func,0", "R_LARCH_B26"),
            (
                ".klp.sym.vmlinux.saved_command_line,0",
                "R_LARCH_GOT_PC_HI20",
            ),
            (
                ".klp.sym.vmlinux.saved_command_line,0",
                "R_LARCH_GOT_PC_LO12",
            ),
            (".klp.sym.vmlinux.saved_command_line,0", "R_LARCH_64"),
            (
                ".klp.sym.klp_test_target.get_homonym_string,2",
                "R_LARCH_B26",
            ),
        ],
    });
}

#[test]
#[ignore = "tier 2: needs the cross compilers (scripts/setup-deps); scripts/test runs it"]
fn ppc32() {
    run_arch(&Arch {
        name: "ppc32",
        cc: "powerpc-linux-gnu-gcc",
        readelf: "powerpc-linux-gnu-readelf",
        // As kbuild builds 32-bit PowerPC modules: no small data, no PIE.
        flags: &["-G0", "-fno-pie", "-msoft-float"],
        // ELF32, big endian, RELA: the addends are there before and after.
        is_64: false,
        expect: &[
            (".klp.sym.vmlinux.vm_func,0", "R_PPC_REL24"),
            (".klp.sym.vmlinux.saved_command_line,0", "R_PPC_ADDR16_HA"),
            (".klp.sym.vmlinux.saved_command_line,0", "R_PPC_ADDR16_LO"),
            (".klp.sym.vmlinux.saved_command_line,0", "R_PPC_ADDR32"),
            (
                ".klp.sym.klp_test_target.get_homonym_string,2",
                "R_PPC_REL24",
            ),
            (".klp.sym.vmlinux.klp_string.12345,0", "R_PPC_ADDR16_HA"),
        ],
    });
}
