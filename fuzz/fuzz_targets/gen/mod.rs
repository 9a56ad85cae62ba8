//! Livepatch modules and the symbol maps of their target kernel, built
//! from `arbitrary` input, and the invariants the `structured` fuzz target
//! asserts on them ([`check_case`]). `tests/fuzz_regressions.rs` includes
//! this file to replay the target's corpus without a nightly toolchain.
//!
//! What [`generate`] builds: a relocatable ELF (x86_64 mostly; aarch64,
//! ppc64le, s390x and i386 too) with `.text`, `.init.text`, `.data`,
//! `.rodata`, special and debug sections, `.modinfo` (`name=`,
//! `livepatch=Y`, `vermagic=`), local and global, defined and undefined
//! symbols, `KLP_RELOC_SYMBOL` annotations (`.klp.sym.rela.<lp>.<obj>.<name>`
//! with `,` or `.` before the position, clang's quotes), klp symbols
//! (`SHN_LIVEPATCH`) with their `.klp.rela.<obj>.<section>` sections, v7
//! `KLP_MODULE_RELOC` tables, objtool's `.init.klp_objects` patch table,
//! and relocations of the machine's real types over zeroed targets. Names
//! are random bytes, non-UTF-8 ones included, drawn from one pool shared
//! with the maps, so that most references resolve: vmlinux as a
//! System.map or a symbols.klp, the target module as a second generated
//! `.ko`, kallsyms `[module]` lines or a symbols.klp block, Module.symvers
//! for the exports, and sometimes a kernel config line.

#![allow(dead_code)]

pub mod writer;

use arbitrary::{Result, Unstructured};
use klp_convert::convert::{self, Converted};
use klp_convert::elf::{abi, Elf, SHN_LIVEPATCH};
use klp_convert::finding::{Finding, Severity};
use klp_convert::maps::{LoadOrder, Orders, SymbolMap};
use klp_convert::{check, show};

use writer::{Enc, Sec, StrTab, SymEntry};

/// Names with bytes that are not UTF-8 are generated (`false`: every such
/// byte becomes `_`, for a tool that made names `String` lossily, as this
/// one once did).
pub const NON_UTF8_NAMES: bool = true;

/// The text map readers (kallsyms, symbols.klp, Module.symvers) take
/// bytes (`false`: names that are not UTF-8 reach the maps through `.ko`
/// files only).
const TEXT_MAPS_TAKE_BYTES: bool = true;

const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHT_RELA: u32 = 4;
const SHT_NOBITS: u32 = 8;
const SHT_REL: u32 = 9;
const SHF_WRITE: u64 = 1;
const SHF_ALLOC: u64 = 2;
const SHF_EXEC: u64 = 4;
const SHF_MERGE: u64 = 0x10;
const SHF_STRINGS: u64 = 0x20;
const SHF_INFO_LINK: u64 = 0x40;
const SHF_RELA_LIVEPATCH: u64 = 0x10_0000;
const STB_LOCAL: u8 = 0;
const STB_GLOBAL: u8 = 1;
const STB_WEAK: u8 = 2;
const STT_NOTYPE: u8 = 0;
const STT_OBJECT: u8 = 1;
const STT_FUNC: u8 = 2;
const STT_SECTION: u8 = 3;
const STT_FILE: u8 = 4;
const SHN_ABS: u16 = 0xfff1;

/// One machine: encoding, relocation types, the pointer type.
struct Machine {
    em: u16,
    enc: Enc,
    e_flags: u32,
    rela: bool,
    /// Types a compiler emits for references to other objects.
    common: &'static [u32],
    /// Types seen less often, or not handled by the loader.
    rare: &'static [u32],
    /// The absolute pointer type.
    abs: u32,
    /// PC-relative types, whose addend is -4 in code.
    pcrel: &'static [u32],
    /// Sections the loader wants in a linked module.
    extra: &'static [&'static [u8]],
}

const LE64: Enc = Enc {
    is_64: true,
    big_endian: false,
};

const MACHINES: [Machine; 5] = [
    Machine {
        em: abi::EM_X86_64,
        enc: LE64,
        e_flags: 0,
        rela: true,
        common: &[
            abi::R_X86_64_PC32,
            abi::R_X86_64_PLT32,
            abi::R_X86_64_64,
            abi::R_X86_64_32S,
        ],
        rare: &[
            abi::R_X86_64_32,
            abi::R_X86_64_PC64,
            abi::R_X86_64_NONE,
            abi::R_X86_64_GOTPCREL,
            0x55,
        ],
        abs: abi::R_X86_64_64,
        pcrel: &[abi::R_X86_64_PC32, abi::R_X86_64_PLT32],
        extra: &[],
    },
    Machine {
        em: abi::EM_AARCH64,
        enc: LE64,
        e_flags: 0,
        rela: true,
        common: &[
            abi::R_AARCH64_CALL26,
            abi::R_AARCH64_ABS64,
            abi::R_AARCH64_PREL32,
            abi::R_AARCH64_ADR_PREL_PG_HI21,
            abi::R_AARCH64_ADD_ABS_LO12_NC,
        ],
        rare: &[
            abi::R_AARCH64_ABS32,
            abi::R_AARCH64_JUMP26,
            abi::R_AARCH64_LDST64_ABS_LO12_NC,
            abi::R_AARCH64_NONE,
        ],
        abs: abi::R_AARCH64_ABS64,
        pcrel: &[],
        extra: &[b".plt", b".init.plt"],
    },
    Machine {
        em: abi::EM_PPC64,
        enc: LE64,
        e_flags: 2,
        rela: true,
        common: &[
            abi::R_PPC64_REL24,
            abi::R_PPC64_ADDR64,
            abi::R_PPC64_REL64,
            abi::R_PPC64_TOC16_HA,
            abi::R_PPC64_TOC16_LO_DS,
        ],
        rare: &[abi::R_PPC64_ADDR32, abi::R_PPC64_REL32, 118],
        abs: abi::R_PPC64_ADDR64,
        pcrel: &[],
        extra: &[b".stubs"],
    },
    Machine {
        em: abi::EM_S390,
        enc: Enc {
            is_64: true,
            big_endian: true,
        },
        e_flags: 0,
        rela: true,
        common: &[
            abi::R_390_PLT32DBL,
            abi::R_390_PC32DBL,
            abi::R_390_64,
            abi::R_390_GOTENT,
        ],
        rare: &[abi::R_390_PC64, abi::R_390_32],
        abs: abi::R_390_64,
        pcrel: &[],
        extra: &[],
    },
    Machine {
        em: abi::EM_386,
        enc: Enc {
            is_64: false,
            big_endian: false,
        },
        e_flags: 0,
        rela: false,
        common: &[abi::R_386_32, abi::R_386_PC32, abi::R_386_PLT32],
        rare: &[abi::R_386_GOTOFF],
        abs: abi::R_386_32,
        pcrel: &[],
        extra: &[],
    },
];

/// A generated test case: the livepatch module and its target's maps.
#[derive(Debug, Clone, Default)]
pub struct Case {
    /// The livepatch module (`.ko`).
    pub module: Vec<u8>,
    /// The target module's name as its `.modinfo` and the maps spell it.
    pub target_name: Vec<u8>,
    /// The target module's `.ko`, when the maps read it.
    pub target_ko: Option<Vec<u8>>,
    /// vmlinux (and maybe the target's `[module]` lines) as a System.map.
    pub kallsyms: Vec<u8>,
    /// A v7 symbols.klp, when the maps have one.
    pub symbols_klp: Option<Vec<u8>>,
    /// Module.symvers, when given.
    pub symvers: Option<Vec<u8>>,
    /// A kernel config line setting `CONFIG_KALLSYMS_ALL`, when given.
    pub config: Option<&'static str>,
    /// Every name the maps were given (objects and symbols), as bytes.
    pub map_names: Vec<Vec<u8>>,
    /// The load orders the patch must work in: `--load-order both`,
    /// `target-first` or `patch-first`.
    pub load_order: &'static str,
}

/// A byte of a name: mostly identifier characters, then `.`, bytes above
/// 0x7f (which may or may not form UTF-8), `-` and `,`.
fn name_byte(u: &mut Unstructured) -> Result<u8> {
    let b: u8 = u.arbitrary()?;
    Ok(match b {
        0..=159 => b"abcdefghijklmnopqrstuvwxyz_0123456789"[usize::from(b) % 37],
        160..=189 => b'.',
        190..=229 if NON_UTF8_NAMES => 0x80 | (b.wrapping_mul(37) & 0x7f),
        190..=229 => b'_',
        230..=239 => b'-',
        240..=245 => b',',
        _ => b"ABZ$[]"[usize::from(b) % 6],
    })
}

/// A random name of 1 to `max` bytes (sometimes a valid multi-byte UTF-8
/// character, sometimes U+FFFD itself).
fn name(u: &mut Unstructured, max: usize) -> Result<Vec<u8>> {
    let len = u.int_in_range(1..=max)?;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        match u.int_in_range(0u8..=40)? {
            0 => v.extend_from_slice("é".as_bytes()),
            1 if NON_UTF8_NAMES => v.extend_from_slice("\u{FFFD}".as_bytes()),
            2 if NON_UTF8_NAMES => v.push(0xe9),
            _ => v.push(name_byte(u)?),
        }
    }
    // A name must not start with what the text maps read as syntax.
    if matches!(v[0], b'*' | b'[') {
        v[0] = b'x';
    }
    Ok(v)
}

/// A symbol name: from the pool (which the maps share) most of the time.
fn pick_name(u: &mut Unstructured, pool: &[Vec<u8>]) -> Result<Vec<u8>> {
    if !pool.is_empty() && u.ratio(7, 8)? {
        Ok(u.choose(pool)?.clone())
    } else if u.ratio(1, 16)? {
        // Long enough for KSYM_NAME_LEN (128 before 6.1, 512 after).
        let mut n = name(u, 8)?;
        let len = *u.choose(&[127usize, 128, 511, 512, 600])?;
        n.resize(len, b'l');
        Ok(n)
    } else {
        name(u, 12)
    }
}

/// `-` to `_`, as the kernel names modules.
fn module_name(n: &[u8]) -> Vec<u8> {
    n.iter()
        .map(|&b| if b == b'-' { b'_' } else { b })
        .collect()
}

/// A symbol of a generated module before the table is ordered.
#[derive(Debug, Clone)]
struct GSym {
    name: Vec<u8>,
    bind: u8,
    kind: u8,
    shndx: u16,
    value: u64,
    size: u64,
}

/// A symbol table under construction; locals are put first on writing.
#[derive(Default)]
struct SymTab {
    syms: Vec<GSym>,
}

impl SymTab {
    fn add(&mut self, s: GSym) -> usize {
        self.syms.push(s);
        self.syms.len() - 1
    }

    /// The order written (locals first) and each symbol's final index.
    fn layout(&self) -> (Vec<usize>, Vec<u32>, u32) {
        let mut order: Vec<usize> = (0..self.syms.len()).collect();
        order.sort_by_key(|&i| self.syms[i].bind != STB_LOCAL);
        let mut index = vec![0u32; self.syms.len()];
        for (n, &i) in order.iter().enumerate() {
            index[i] = n as u32 + 1;
        }
        let first_global = 1 + order
            .iter()
            .take_while(|&&i| self.syms[i].bind == STB_LOCAL)
            .count() as u32;
        (order, index, first_global)
    }

    /// `.symtab` and `.strtab` contents, and `.symtab`'s `sh_info`.
    fn encode(&self, enc: Enc) -> (Vec<u8>, Vec<u8>, u32, Vec<u32>) {
        let (order, index, first_global) = self.layout();
        let mut strtab = StrTab::default();
        let mut data = Vec::new();
        enc.sym(&mut data, &SymEntry::default());
        for &i in &order {
            let s = &self.syms[i];
            enc.sym(
                &mut data,
                &SymEntry {
                    name: strtab.add(&s.name),
                    info: (s.bind << 4) | s.kind,
                    other: 0,
                    shndx: s.shndx,
                    value: s.value,
                    size: s.size,
                },
            );
        }
        (data, strtab.0, first_global, index)
    }
}

/// A content section of the livepatch module under construction.
struct Content {
    sec: Sec,
    /// 8-byte slots handed out to relocations so far.
    slots: u64,
    /// Its section symbol.
    sym: usize,
}

/// A relocation before symbol indices are final: (offset, symbol id,
/// type, addend).
type GReloc = (u64, usize, u32, i64);

/// The kallsyms type letter of a symbol in a section of these flags.
fn kind_letter(flags: u64, nobits: bool, global: bool) -> char {
    let c = if flags & SHF_EXEC != 0 {
        't'
    } else if nobits {
        'b'
    } else if flags & SHF_WRITE != 0 {
        'd'
    } else {
        'r'
    };
    if global {
        c.to_ascii_uppercase()
    } else {
        c
    }
}

/// Build a case from `u`.
pub fn generate(u: &mut Unstructured) -> Result<Case> {
    let m = if u.ratio(3, 4)? {
        &MACHINES[0]
    } else {
        u.choose(&MACHINES)?
    };
    let enc = m.enc;
    let mut case = Case::default();

    // The names: a pool the module and the maps share.
    let mut pool: Vec<Vec<u8>> = Vec::new();
    for _ in 0..u.int_in_range(1..=6)? {
        pool.push(name(u, 10)?);
    }
    let target = if u.ratio(3, 4)? {
        name(u, 12)?
    } else {
        b"klp_test_target".to_vec()
    };
    let target_obj = module_name(&target);
    case.target_name = target.clone();
    let lp_name = if u.ratio(1, 8)? {
        name(u, 12)?
    } else {
        b"livepatch_fuzz".to_vec()
    };

    // vmlinux: each pool name 0 to 3 times, in address order.
    let mut vmlinux: Vec<(Vec<u8>, char, u64)> = Vec::new();
    let mut addr = 0xffff_ffff_8100_0000u64;
    if u.ratio(1, 2)? {
        vmlinux.push((b"_text".to_vec(), 'T', addr));
    }
    for n in &pool {
        for _ in 0..*u.choose(&[0usize, 0, 1, 1, 1, 2, 3])? {
            addr += 0x40;
            let low = u.ratio(1, 16)?;
            vmlinux.push((
                n.clone(),
                *u.choose(&['T', 't', 'D', 'd', 'R', 'r', 'B', 'b'])?,
                if low { addr & 0xffff } else { addr },
            ));
        }
    }
    if u.ratio(1, 2)? {
        vmlinux.push((b"_end".to_vec(), 'B', 0xffff_ffff_8300_0000));
    }

    // The target module: each pool name 0 to 3 times, anywhere.
    struct TSym {
        name: Vec<u8>,
        sec: usize,
        global: bool,
    }
    // (name, flags, nobits)
    let tsecs: [(&[u8], u64, bool); 6] = [
        (b".text", SHF_ALLOC | SHF_EXEC, false),
        (b".init.text", SHF_ALLOC | SHF_EXEC, false),
        (b".data", SHF_ALLOC | SHF_WRITE, false),
        (b".rodata", SHF_ALLOC, false),
        (b".bss", SHF_ALLOC | SHF_WRITE, true),
        (b".exit.text", SHF_ALLOC | SHF_EXEC, false),
    ];
    let mut tsyms: Vec<TSym> = Vec::new();
    for n in &pool {
        for _ in 0..*u.choose(&[0usize, 1, 1, 1, 2, 2, 3])? {
            tsyms.push(TSym {
                name: n.clone(),
                sec: u.choose_index(tsecs.len())?,
                global: u.ratio(1, 3)?,
            });
        }
    }

    // Exports: some vmlinux names, some global names of the target.
    let mut exports: Vec<(Vec<u8>, bool)> = Vec::new(); // (name, by vmlinux)
    for (n, ..) in &vmlinux {
        if u.ratio(1, 4)? && !exports.iter().any(|(e, _)| e == n) {
            exports.push((n.clone(), true));
        }
    }
    for s in &tsyms {
        if s.global && u.ratio(1, 3)? && !exports.iter().any(|(e, _)| *e == s.name) {
            exports.push((s.name.clone(), false));
        }
    }
    if u.ratio(1, 16)? {
        exports.push((name(u, 8)?, u.arbitrary()?));
    }

    // Which sources the maps read.
    let vmlinux_as_klp = u.ratio(1, 6)?;
    case.load_order = *u.choose(&["both", "both", "target-first", "patch-first"])?;
    let target_source = u.int_in_range(0u8..=5)?; // 0-2 .ko, 3 kallsyms, 4 symbols.klp, 5 none
    let kallsyms_all = match u.int_in_range(0u8..=3)? {
        0 => {
            case.config = Some("# CONFIG_KALLSYMS_ALL is not set\n");
            false
        }
        1 => {
            case.config = Some("CONFIG_KALLSYMS_ALL=y\n");
            true
        }
        _ => true,
    };
    let text_name = |n: &[u8]| TEXT_MAPS_TAKE_BYTES || std::str::from_utf8(n).is_ok();

    // The target's .ko.
    let mut tst = SymTab::default();
    if u.ratio(1, 2)? {
        tst.add(GSym {
            name: b"target.c".to_vec(),
            bind: STB_LOCAL,
            kind: STT_FILE,
            shndx: SHN_ABS,
            value: 0,
            size: 0,
        });
    }
    let mut tsizes = [0u64; 6];
    let ksymtab_index = 7u16;
    let exported_by_target: Vec<&Vec<u8>> =
        exports.iter().filter(|(_, v)| !v).map(|(n, _)| n).collect();
    // (name, kind letter, value) of the symbols a loaded module keeps.
    let mut core: Vec<(Vec<u8>, char, u64)> = Vec::new();
    for s in &tsyms {
        let (sname, flags, nobits) = tsecs[s.sec];
        let value = tsizes[s.sec];
        tsizes[s.sec] += 16;
        tst.add(GSym {
            name: s.name.clone(),
            bind: if s.global { STB_GLOBAL } else { STB_LOCAL },
            kind: if flags & SHF_EXEC != 0 {
                STT_FUNC
            } else {
                STT_OBJECT
            },
            shndx: s.sec as u16 + 1,
            value,
            size: 16,
        });
        let kept = !sname.starts_with(b".init") && (kallsyms_all || flags & SHF_EXEC != 0);
        if kept {
            core.push((s.name.clone(), kind_letter(flags, nobits, s.global), value));
        }
    }
    // Locals come first in a symbol table, and count first.
    core.sort_by_key(|(_, k, _)| k.is_ascii_uppercase());
    for (i, n) in exported_by_target.iter().enumerate() {
        let mut k = b"__ksymtab_".to_vec();
        k.extend_from_slice(n);
        tst.add(GSym {
            name: k,
            bind: STB_LOCAL,
            kind: STT_OBJECT,
            shndx: ksymtab_index,
            value: i as u64 * 12,
            size: 12,
        });
    }
    let mut tsections: Vec<Sec> = tsecs
        .iter()
        .zip(tsizes)
        .map(|((n, flags, nobits), size)| Sec {
            name: n.to_vec(),
            sh_type: if *nobits { SHT_NOBITS } else { SHT_PROGBITS },
            flags: *flags,
            data: if *nobits {
                Vec::new()
            } else {
                vec![0; size as usize]
            },
            size,
            align: 16,
            ..Sec::default()
        })
        .collect();
    tsections.push(Sec {
        name: b"__ksymtab".to_vec(),
        sh_type: SHT_PROGBITS,
        flags: SHF_ALLOC,
        data: vec![0; exported_by_target.len() * 12],
        align: 4,
        ..Sec::default()
    });
    let mut modinfo = b"name=".to_vec();
    modinfo.extend_from_slice(&target);
    modinfo.push(0);
    tsections.push(Sec {
        name: b".modinfo".to_vec(),
        sh_type: SHT_PROGBITS,
        flags: SHF_ALLOC,
        data: modinfo,
        align: 1,
        ..Sec::default()
    });
    let (symtab, strtab, first_global, _) = tst.encode(enc);
    let strtab_index = tsections.len() as u32 + 2;
    tsections.push(Sec {
        name: b".symtab".to_vec(),
        sh_type: SHT_SYMTAB,
        data: symtab,
        link: strtab_index,
        info: first_global,
        align: 8,
        entsize: enc.sym_size(),
        ..Sec::default()
    });
    tsections.push(Sec {
        name: b".strtab".to_vec(),
        sh_type: SHT_STRTAB,
        data: strtab,
        align: 1,
        ..Sec::default()
    });
    let target_ko = writer::write(enc, m.em, m.e_flags, &tsections);

    // The maps' texts.
    let mut kallsyms = Vec::new();
    let mut klp = b"klp-convert-symbol-data.0.1\n".to_vec();
    if vmlinux_as_klp {
        klp.extend_from_slice(b"*vmlinux\n");
        for (n, ..) in &vmlinux {
            if text_name(n) {
                klp.extend_from_slice(n);
                klp.push(b'\n');
            }
        }
        for (n, by_vmlinux) in &exports {
            if *by_vmlinux && text_name(n) {
                klp.extend_from_slice(b"__ksymtab_");
                klp.extend_from_slice(n);
                klp.push(b'\n');
            }
        }
    } else {
        for (n, kind, addr) in &vmlinux {
            if text_name(n) {
                kallsyms.extend_from_slice(format!("{addr:016x} {kind} ").as_bytes());
                kallsyms.extend_from_slice(n);
                kallsyms.push(b'\n');
            }
        }
    }
    case.map_names.push(b"vmlinux".to_vec());
    case.map_names
        .extend(vmlinux.iter().map(|(n, ..)| n.clone()));
    match target_source {
        0..=2 => {
            case.target_ko = Some(target_ko);
            case.map_names.push(target.clone());
            case.map_names.push(target_obj.clone());
            case.map_names.extend(tsyms.iter().map(|s| s.name.clone()));
        }
        3 if text_name(&target) => {
            for (n, kind, value) in &core {
                if text_name(n) {
                    kallsyms.extend_from_slice(format!("{value:016x} {kind} ").as_bytes());
                    kallsyms.extend_from_slice(n);
                    kallsyms.extend_from_slice(b"\t[");
                    kallsyms.extend_from_slice(&target);
                    kallsyms.extend_from_slice(b"]\n");
                }
            }
            case.map_names.push(target.clone());
            case.map_names.push(target_obj.clone());
            case.map_names.extend(core.iter().map(|(n, ..)| n.clone()));
        }
        4 if text_name(&target) => {
            klp.push(b'*');
            klp.extend_from_slice(&target);
            klp.push(b'\n');
            for (n, ..) in &core {
                if text_name(n) {
                    klp.extend_from_slice(n);
                    klp.push(b'\n');
                }
            }
            for n in &exported_by_target {
                if text_name(n) {
                    klp.extend_from_slice(b"__ksymtab_");
                    klp.extend_from_slice(n);
                    klp.push(b'\n');
                }
            }
            case.map_names.push(target.clone());
            case.map_names.push(target_obj.clone());
            case.map_names.extend(core.iter().map(|(n, ..)| n.clone()));
        }
        _ => {}
    }
    case.kallsyms = kallsyms;
    if klp.contains(&b'*') {
        case.symbols_klp = Some(klp);
    }
    if u.ratio(7, 8)? {
        let mut symvers = Vec::new();
        for (n, by_vmlinux) in &exports {
            if !text_name(n) || !text_name(&target) {
                continue;
            }
            symvers.extend_from_slice(b"0x12345678\t");
            symvers.extend_from_slice(n);
            if *by_vmlinux {
                symvers.extend_from_slice(b"\tvmlinux\tEXPORT_SYMBOL\t\n");
            } else {
                symvers.extend_from_slice(b"\tdrivers/misc/");
                symvers.extend_from_slice(&target);
                symvers.extend_from_slice(b"\tEXPORT_SYMBOL_GPL\t\n");
            }
        }
        if symvers.is_empty() {
            // An empty file reads as no list at all (as kallsyms) through
            // the command line, which tells formats apart by the first line.
            symvers.extend_from_slice(b"0x12345678\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n");
            case.map_names.push(b"printk".to_vec());
        }
        case.symvers = Some(symvers);
        case.map_names.push(target.clone());
        case.map_names.push(target_obj.clone());
    }
    case.map_names
        .extend(exports.iter().map(|(n, _)| n.clone()));

    case.module = livepatch(u, m, &pool, &target, &lp_name)?;
    Ok(case)
}

/// The livepatch module itself.
fn livepatch(
    u: &mut Unstructured,
    m: &Machine,
    pool: &[Vec<u8>],
    target: &[u8],
    lp_name: &[u8],
) -> Result<Vec<u8>> {
    let enc = m.enc;
    let target_obj = module_name(target);
    let mut st = SymTab::default();
    if u.ratio(1, 2)? {
        st.add(GSym {
            name: b"livepatch.c".to_vec(),
            bind: STB_LOCAL,
            kind: STT_FILE,
            shndx: SHN_ABS,
            value: 0,
            size: 0,
        });
    }

    // The content sections, each with its section symbol.
    let mut contents: Vec<Content> = Vec::new();
    let text = add_section(
        &mut contents,
        &mut st,
        b".text",
        SHT_PROGBITS,
        SHF_ALLOC | SHF_EXEC,
    );
    let init_text = add_section(
        &mut contents,
        &mut st,
        b".init.text",
        SHT_PROGBITS,
        SHF_ALLOC | SHF_EXEC,
    );
    let data = add_section(
        &mut contents,
        &mut st,
        b".data",
        SHT_PROGBITS,
        SHF_ALLOC | SHF_WRITE,
    );
    let rodata = add_section(&mut contents, &mut st, b".rodata", SHT_PROGBITS, SHF_ALLOC);
    let mut targets = vec![text, init_text, data, rodata];
    for (n, flags) in [
        (&b".data..ro_after_init"[..], SHF_ALLOC | SHF_WRITE),
        (b"__jump_table", SHF_ALLOC | SHF_WRITE),
        (b".altinstructions", SHF_ALLOC),
        (b".debug_info", 0),
        (b".exit.text", SHF_ALLOC | SHF_EXEC),
    ] {
        if u.ratio(1, 6)? {
            targets.push(add_section(&mut contents, &mut st, n, SHT_PROGBITS, flags));
        }
    }
    let linked = u.ratio(1, 2)?;
    if linked {
        add_section(
            &mut contents,
            &mut st,
            b".gnu.linkonce.this_module",
            SHT_PROGBITS,
            SHF_ALLOC | SHF_WRITE,
        );
        for n in m.extra {
            if u.ratio(7, 8)? {
                add_section(&mut contents, &mut st, n, SHT_NOBITS, SHF_ALLOC | SHF_EXEC);
            }
        }
    }
    let strings = add_section(
        &mut contents,
        &mut st,
        b".rodata.str1.1",
        SHT_PROGBITS,
        SHF_ALLOC | SHF_MERGE | SHF_STRINGS,
    );
    contents[strings].sec.align = 1;
    let modinfo = add_section(&mut contents, &mut st, b".modinfo", SHT_PROGBITS, SHF_ALLOC);
    contents[modinfo].sec.align = 1;
    let mut mi = Vec::new();
    if u.ratio(15, 16)? {
        mi.extend_from_slice(b"name=");
        mi.extend_from_slice(lp_name);
        mi.push(0);
    }
    if u.ratio(7, 8)? {
        mi.extend_from_slice(b"livepatch=Y\0");
    }
    if u.ratio(1, 2)? {
        let r = u.choose(&["5.10.0", "6.1.0-57-amd64", "6.12.0", "7.2.13"])?;
        mi.extend_from_slice(format!("vermagic={r} SMP mod_unload \0").as_bytes());
    }
    contents[modinfo].sec.data = mi;

    // Defined symbols: functions in .text, data.
    let mut defined: Vec<usize> = Vec::new();
    let mut functions: Vec<usize> = Vec::new();
    for _ in 0..u.int_in_range(1..=3)? {
        let global = u.ratio(1, 2)?;
        let in_text = u.ratio(2, 3)?;
        let sec = if in_text { text } else { data };
        let value = contents[sec].slots * 8;
        contents[sec].slots += 2;
        let mut n = pick_name(u, pool)?;
        if u.ratio(1, 2)? {
            n.splice(0..0, b"livepatch_".iter().copied());
        }
        let id = st.add(GSym {
            name: n,
            bind: if global { STB_GLOBAL } else { STB_LOCAL },
            kind: if in_text { STT_FUNC } else { STT_OBJECT },
            shndx: sec as u16 + 1,
            value,
            size: 16,
        });
        defined.push(id);
        if in_text {
            functions.push(id);
        }
    }

    // Undefined plain references.
    let mut plain: Vec<usize> = Vec::new();
    for _ in 0..u.int_in_range(0..=5)? {
        let n = pick_name(u, pool)?;
        let bind = if u.ratio(1, 16)? {
            STB_WEAK
        } else {
            STB_GLOBAL
        };
        plain.push(st.add(GSym {
            name: n,
            bind,
            kind: STT_NOTYPE,
            shndx: 0,
            value: 0,
            size: 0,
        }));
    }

    // The objects a klp name may name.
    let object = |u: &mut Unstructured| -> Result<Vec<u8>> {
        Ok(match u.int_in_range(0u8..=9)? {
            0..=3 => b"vmlinux".to_vec(),
            4..=6 => target_obj.clone(),
            7 => target.to_vec(),
            8 => lp_name.to_vec(),
            _ => name(u, 8)?,
        })
    };

    // KLP_RELOC_SYMBOL annotations.
    let mut annotations: Vec<usize> = Vec::new();
    for _ in 0..u.int_in_range(0..=4)? {
        let lp = object(u)?;
        let so = if u.ratio(3, 4)? {
            lp.clone()
        } else {
            object(u)?
        };
        let mut n = b".klp.sym.rela.".to_vec();
        n.extend_from_slice(&lp);
        n.push(b'.');
        n.extend_from_slice(&so);
        n.push(b'.');
        n.extend_from_slice(&pick_name(u, pool)?);
        if u.ratio(15, 16)? {
            n.push(if u.ratio(1, 2)? { b',' } else { b'.' });
            let pos: u64 = match u.int_in_range(0u8..=9)? {
                0..=4 => 0,
                5..=7 => 1,
                8 => 2,
                _ => u.arbitrary()?,
            };
            n.extend_from_slice(pos.to_string().as_bytes());
        }
        if u.ratio(1, 10)? {
            n.insert(0, b'"');
            n.push(b'"');
        }
        let shndx = if u.ratio(1, 32)? { text as u16 + 1 } else { 0 };
        annotations.push(st.add(GSym {
            name: n,
            bind: STB_GLOBAL,
            kind: STT_NOTYPE,
            shndx,
            value: 0,
            size: 0,
        }));
    }

    // klp symbols already converted, with their klp relocations.
    let mut klp_syms: Vec<(usize, Vec<u8>)> = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let obj = object(u)?;
        let mut n = b".klp.sym.".to_vec();
        n.extend_from_slice(&obj);
        n.push(b'.');
        n.extend_from_slice(&pick_name(u, pool)?);
        n.push(b',');
        n.extend_from_slice(u.int_in_range(0u8..=3)?.to_string().as_bytes());
        let id = st.add(GSym {
            name: n,
            bind: STB_GLOBAL,
            kind: STT_NOTYPE,
            shndx: SHN_LIVEPATCH,
            value: 0,
            size: 0,
        });
        klp_syms.push((id, obj));
    }

    // Ordinary relocations, by target.
    let mut ordinary: Vec<(usize, Vec<GReloc>)> = Vec::new();
    let mut nonzero: Vec<(usize, u64)> = Vec::new();
    let mut calls: Vec<(usize, u64, bool)> = Vec::new();
    let all_syms = st.syms.len();
    for &t in &targets {
        let mut list = Vec::new();
        for _ in 0..u.int_in_range(0..=5)? {
            let sym = match u.int_in_range(0u8..=19)? {
                0..=5 if !plain.is_empty() => *u.choose(&plain)?,
                6..=12 if !annotations.is_empty() => *u.choose(&annotations)?,
                13..=14 => contents[*u.choose(&[text, data, rodata])?].sym,
                15..=16 if !defined.is_empty() => *u.choose(&defined)?,
                17 if !klp_syms.is_empty() => u.choose(&klp_syms)?.0,
                _ => u.choose_index(all_syms)?,
            };
            let r_type = if u.ratio(15, 16)? {
                *u.choose(m.common)?
            } else {
                *u.choose(m.rare)?
            };
            let mut offset = contents[t].slots * 8;
            contents[t].slots += 1;
            if u.ratio(1, 32)? {
                offset += 0x1000;
            }
            let addend = if u.ratio(1, 16)? {
                i64::from(u.arbitrary::<i16>()?)
            } else if m.pcrel.contains(&r_type) {
                -4
            } else {
                0
            };
            if u.ratio(1, 32)? {
                nonzero.push((t, offset));
            }
            if m.em == abi::EM_PPC64 && r_type == abi::R_PPC64_REL24 && u.ratio(1, 2)? {
                calls.push((t, offset, u.ratio(3, 4)?));
            }
            list.push((offset, sym, r_type, addend));
        }
        if !list.is_empty() {
            ordinary.push((t, list));
        }
    }
    // Every annotation is used somewhere, most of the time.
    for &a in &annotations {
        if u.ratio(3, 4)? {
            let t = if u.ratio(7, 8)? {
                text
            } else {
                *u.choose(&targets)?
            };
            let offset = contents[t].slots * 8;
            contents[t].slots += 1;
            let r_type = *u.choose(m.common)?;
            let addend = if m.pcrel.contains(&r_type) { -4 } else { 0 };
            match ordinary.iter_mut().find(|(x, _)| *x == t) {
                Some((_, list)) => list.push((offset, a, r_type, addend)),
                None => ordinary.push((t, vec![(offset, a, r_type, addend)])),
            }
        }
    }

    // klp sections: (object in the name, target, entries).
    // (object in the name, target, entries, flags, no '.' before the target)
    type KlpSec = (Vec<u8>, usize, Vec<GReloc>, u64, bool);
    let mut klp_secs: Vec<KlpSec> = Vec::new();
    for (id, obj) in &klp_syms {
        for _ in 0..u.int_in_range(0..=2)? {
            let t = *u.choose(&targets)?;
            let sec_obj = if u.ratio(7, 8)? {
                obj.clone()
            } else {
                object(u)?
            };
            let offset = contents[t].slots * 8;
            contents[t].slots += 1;
            let r_type = *u.choose(m.common)?;
            let sym = if u.ratio(31, 32)? {
                *id
            } else {
                u.choose_index(all_syms)?
            };
            let entry = (
                offset,
                sym,
                r_type,
                if m.pcrel.contains(&r_type) { -4 } else { 0 },
            );
            match klp_secs
                .iter_mut()
                .find(|(o, x, ..)| *o == sec_obj && *x == t)
            {
                Some((_, _, list, ..)) => list.push(entry),
                None => {
                    let flags = match u.int_in_range(0u8..=31)? {
                        0 => SHF_ALLOC | SHF_INFO_LINK,
                        1 => SHF_RELA_LIVEPATCH | SHF_INFO_LINK,
                        _ => SHF_ALLOC | SHF_RELA_LIVEPATCH | SHF_INFO_LINK,
                    };
                    klp_secs.push((sec_obj, t, vec![entry], flags, u.ratio(1, 16)?));
                }
            }
        }
    }

    // A v7 KLP_MODULE_RELOC table naming some plain references.
    let mut tables: Vec<(usize, Vec<GReloc>)> = Vec::new();
    if enc.is_64 && !plain.is_empty() && u.ratio(1, 6)? {
        let obj = object(u)?;
        let mut n = b".klp.module_relocs.".to_vec();
        n.extend_from_slice(&obj);
        let sec = add_section(
            &mut contents,
            &mut st,
            &n,
            SHT_PROGBITS,
            SHF_ALLOC | SHF_WRITE,
        );
        let mut bytes = Vec::new();
        let mut list = Vec::new();
        for i in 0..u.int_in_range(1..=3)? {
            bytes.extend_from_slice(&[0; 8]);
            enc.u32(&mut bytes, u.int_in_range(0..=3)?);
            list.push((i * 12, *u.choose(&plain)?, m.abs, 0));
        }
        contents[sec].sec.data = bytes;
        contents[sec].sec.align = 4;
        tables.push((sec, list));
    }

    // objtool's patch table: objects and functions, names in .rodata.str1.1.
    let mut str_data: Vec<u8> = Vec::new();
    let mut add_string = |s: &[u8]| {
        let at = str_data.len() as i64;
        str_data.extend_from_slice(s);
        str_data.push(0);
        at
    };
    if enc.is_64 && !functions.is_empty() && u.ratio(1, 5)? {
        let objs = add_section(
            &mut contents,
            &mut st,
            b".init.klp_objects",
            SHT_PROGBITS,
            SHF_ALLOC | SHF_WRITE,
        );
        let funcs = add_section(
            &mut contents,
            &mut st,
            b".init.klp_funcs",
            SHT_PROGBITS,
            SHF_ALLOC | SHF_WRITE,
        );
        let (mut obytes, mut fbytes) = (Vec::new(), Vec::new());
        let (mut orel, mut frel) = (Vec::new(), Vec::new());
        for i in 0..u.int_in_range(1..=2)? {
            let at = i * 64;
            obytes.resize(at as usize + 64, 0);
            if u.ratio(2, 3)? {
                let o = if u.ratio(3, 4)? {
                    target.to_vec()
                } else {
                    object(u)?
                };
                orel.push((at, contents[strings].sym, m.abs, add_string(&o)));
            }
            let first = fbytes.len() as i64;
            let nr = u.int_in_range(1..=2)?;
            for _ in 0..nr {
                let f = fbytes.len() as u64;
                fbytes.resize(f as usize + 24, 0);
                let old = pick_name(u, pool)?;
                frel.push((f, contents[strings].sym, m.abs, add_string(&old)));
                frel.push((f + 8, *u.choose(&functions)?, m.abs, 0));
                let pos = u.int_in_range(0u64..=3)?;
                enc.put(&mut fbytes, f as usize + 16, 8, pos);
            }
            orel.push((at + 8, contents[funcs].sym, m.abs, first));
            enc.put(&mut obytes, at as usize + 56, 4, nr);
        }
        contents[objs].sec.data = obytes;
        contents[funcs].sec.data = fbytes;
        tables.push((objs, orel));
        tables.push((funcs, frel));
    }
    contents[strings].sec.data = str_data;

    // Sizes and bytes of the relocated sections.
    for c in &mut contents {
        if c.sec.data.is_empty() && c.sec.sh_type == SHT_PROGBITS {
            c.sec.data = vec![0; (c.slots.max(2) * 8) as usize];
        }
        if c.sec.sh_type == SHT_NOBITS {
            c.sec.size = 64;
        }
    }
    for (t, offset) in nonzero {
        if let Some(b) = contents[t].sec.data.get_mut(offset as usize) {
            *b = 1;
        }
    }
    for (t, offset, nop) in calls {
        let d = &mut contents[t].sec.data;
        enc.put(d, offset as usize, 4, 0x4800_0001);
        enc.put(
            d,
            offset as usize + 4,
            4,
            if nop { 0x6000_0000 } else { 0x3860_0000 },
        );
    }

    // The table, then the relocation sections, klp sections, .symtab, .strtab.
    let (symtab, strtab, first_global, index) = st.encode(enc);
    let n_rel = ordinary.len() + tables.len() + klp_secs.len();
    let symtab_index = (contents.len() + n_rel + 1) as u32;
    let mut sections: Vec<Sec> = contents.into_iter().map(|c| c.sec).collect();
    let rel_name = |t: &[u8], rela: bool| {
        let mut n = if rela {
            b".rela".to_vec()
        } else {
            b".rel".to_vec()
        };
        n.extend_from_slice(t);
        n
    };
    let encode = |list: &[GReloc], rela: bool| {
        let mut d = Vec::new();
        for &(offset, sym, r_type, addend) in list {
            enc.reloc(&mut d, rela, offset, index[sym], r_type, addend);
        }
        d
    };
    // Now and then a relocation section linked to section 0, not .symtab:
    // the loader never reads sh_link, and neither may the tool. (Drawn
    // last, so that the draws before decide what they decided before.)
    // An input used up draws the start of the range: `.symtab`.
    let mut link = || -> Result<u32> { Ok(if u.ratio(31, 32)? { symtab_index } else { 0 }) };
    for (t, list) in ordinary.iter().chain(&tables) {
        let name = rel_name(&sections[*t].name, m.rela);
        sections.push(Sec {
            name,
            sh_type: if m.rela { SHT_RELA } else { SHT_REL },
            flags: SHF_INFO_LINK,
            data: encode(list, m.rela),
            link: link()?,
            info: *t as u32 + 1,
            align: 8,
            entsize: enc.reloc_size(m.rela),
            ..Sec::default()
        });
    }
    for (obj, t, list, flags, no_dot) in &klp_secs {
        let mut name = b".klp.rela.".to_vec();
        name.extend_from_slice(obj);
        let tname = &sections[*t].name;
        if !*no_dot || tname.first() != Some(&b'.') {
            name.push(b'.');
        }
        name.extend_from_slice(if *no_dot { &tname[1..] } else { tname });
        sections.push(Sec {
            name,
            sh_type: SHT_RELA,
            flags: *flags,
            data: encode(list, true),
            link: link()?,
            info: *t as u32 + 1,
            align: 8,
            entsize: enc.reloc_size(true),
            ..Sec::default()
        });
    }
    sections.push(Sec {
        name: b".symtab".to_vec(),
        sh_type: SHT_SYMTAB,
        data: symtab,
        link: symtab_index + 1,
        info: first_global,
        align: 8,
        entsize: enc.sym_size(),
        ..Sec::default()
    });
    sections.push(Sec {
        name: b".strtab".to_vec(),
        sh_type: SHT_STRTAB,
        data: strtab,
        align: 1,
        ..Sec::default()
    });
    Ok(writer::write(enc, m.em, m.e_flags, &sections))
}

/// Add a content section of the livepatch module, with its section symbol.
fn add_section(
    contents: &mut Vec<Content>,
    st: &mut SymTab,
    name: &[u8],
    sh_type: u32,
    flags: u64,
) -> usize {
    let index = contents.len() as u16 + 1;
    let sym = st.add(GSym {
        name: Vec::new(),
        bind: STB_LOCAL,
        kind: STT_SECTION,
        shndx: index,
        value: 0,
        size: 0,
    });
    contents.push(Content {
        sec: Sec {
            name: name.to_vec(),
            sh_type,
            flags,
            align: 8,
            ..Sec::default()
        },
        slots: 0,
        sym,
    });
    contents.len() - 1
}

/// Text for the map readers.
fn text(bytes: &[u8]) -> &[u8] {
    bytes
}

impl Case {
    /// The symbol map of the case, read as `--symbols` would read its
    /// files: the config first, then the rest. Every generated map reads.
    pub fn map(&self) -> SymbolMap {
        let mut map = SymbolMap::new();
        map.set_orders(match self.load_order {
            "target-first" => Orders::Only(LoadOrder::TargetFirst),
            "patch-first" => Orders::Only(LoadOrder::PatchFirst),
            _ => Orders::Both,
        });
        let mut kallsyms_all = true;
        if let Some(c) = self.config {
            map.add_kernel_config(c);
            kallsyms_all = c.starts_with("CONFIG_KALLSYMS_ALL=y");
        }
        map.add_kallsyms(text(&self.kallsyms))
            .expect("the generated System.map reads");
        if let Some(k) = &self.symbols_klp {
            map.add_symbols_klp(text(k))
                .expect("the generated symbols.klp reads");
        }
        if let Some(ko) = &self.target_ko {
            let elf = Elf::parse(ko).expect("the generated target module parses");
            let name = elf.modinfo_value("name").unwrap_or_default();
            map.add_module(name, &elf, kallsyms_all)
                .expect("the generated target module reads as a map");
        }
        if let Some(s) = &self.symvers {
            map.add_symvers(text(s))
                .expect("the generated Module.symvers reads");
        }
        map
    }
}

fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

/// Every finding of `check` on `bytes` with `map`, for the release the
/// module's vermagic gives (as `convert` judges it).
fn check_errors(bytes: &[u8], map: Option<&SymbolMap>) -> Vec<Finding> {
    let report = check::check_bytes("lp.ko", bytes, None, map);
    report
        .findings
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

const FFFD: &[u8] = "\u{FFFD}".as_bytes();

fn has_fffd(name: &[u8]) -> bool {
    name.windows(3).any(|w| w == FFFD)
}

/// `<a>.<b>` split at the first `.`.
fn split_dot(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == b'.')?;
    Some((&s[..i], &s[i + 1..]))
}

/// An annotation's (symbol object, name, position), as bytes.
fn annotation_parts(name: &[u8]) -> Option<(&[u8], &[u8], u64)> {
    let name = match name {
        [b'"', inner @ .., b'"'] => inner,
        _ => name,
    };
    let rest = name.strip_prefix(b".klp.sym.rela.")?;
    let (_lp, rest) = split_dot(rest)?;
    let (obj, rest) = split_dot(rest)?;
    let cut = rest
        .iter()
        .rposition(|&b| b == b',')
        .or_else(|| rest.iter().rposition(|&b| b == b'.'))?;
    let pos = std::str::from_utf8(&rest[cut + 1..]).ok()?.parse().ok()?;
    Some((obj, &rest[..cut], pos))
}

/// A klp symbol's (object, name, position), as bytes.
fn klp_parts(name: &[u8]) -> Option<(&[u8], &[u8], u64)> {
    let rest = name.strip_prefix(b".klp.sym.")?;
    let (obj, rest) = split_dot(rest)?;
    let cut = rest.iter().position(|&b| b == b',')?;
    let pos = std::str::from_utf8(&rest[cut + 1..]).ok()?.parse().ok()?;
    Some((obj, &rest[..cut], pos))
}

/// The names invariant: every symbol the conversion renamed carries the
/// bytes of its annotation, or its own name and an object of the maps or
/// of a `KLP_MODULE_RELOC` table; every new section is
/// `.klp.rela.<object>.<its target's name>`; no name has U+FFFD unless an
/// input name had it.
fn assert_names(case: &Case, input: &Elf, out: &Elf) {
    let mut objects: Vec<Vec<u8>> = case.map_names.clone();
    for s in &input.sections {
        if let Some(o) = s.name.strip_prefix(b".klp.module_relocs.") {
            objects.push(o.to_vec());
        }
    }
    for s in &input.symbols {
        let name = match s.name {
            [b'"', inner @ .., b'"'] => inner,
            n => n,
        };
        if let Some(lp) = name
            .strip_prefix(b".klp.sym.rela.")
            .and_then(split_dot)
            .map(|(lp, _)| lp)
        {
            objects.push(lp.to_vec());
        }
    }
    let input_fffd = input.symbols.iter().any(|s| has_fffd(s.name))
        || input.sections.iter().any(|s| has_fffd(s.name))
        || case.map_names.iter().any(|n| has_fffd(n));
    for (a, b) in input.symbols.iter().zip(&out.symbols) {
        assert!(
            input_fffd || !has_fffd(b.name),
            "output symbol {:?} has U+FFFD, no input name had it",
            String::from_utf8_lossy(b.name)
        );
        if a.name == b.name {
            continue;
        }
        let (obj, name, pos) = klp_parts(b.name).unwrap_or_else(|| {
            panic!(
                "symbol {:?} became {:?}, not a klp symbol",
                a.name.escape_ascii().to_string(),
                b.name.escape_ascii().to_string()
            )
        });
        assert_eq!(
            b.st_shndx,
            SHN_LIVEPATCH,
            "{:?}",
            b.name.escape_ascii().to_string()
        );
        match annotation_parts(a.name) {
            Some((o, n, p)) => assert!(
                (o, n, p) == (obj, name, pos),
                "annotation {:?} became {:?}",
                a.name.escape_ascii().to_string(),
                b.name.escape_ascii().to_string()
            ),
            None => assert!(
                name == a.name && objects.iter().any(|o| o == obj),
                "symbol {:?} became {:?}: not its name in an object of the input or the maps",
                a.name.escape_ascii().to_string(),
                b.name.escape_ascii().to_string()
            ),
        }
    }
    for s in &out.sections {
        assert!(
            input_fffd || !has_fffd(s.name),
            "output section {:?} has U+FFFD, no input name had it",
            String::from_utf8_lossy(s.name)
        );
        if input
            .sections
            .get(s.index)
            .is_some_and(|a| a.name == s.name)
        {
            continue;
        }
        let t = input
            .sections
            .get(s.sh_info as usize)
            .map_or(&b""[..], |t| t.name);
        let ok = s
            .name
            .strip_prefix(b".klp.rela.")
            .and_then(|rest| {
                let (obj, tname) = split_dot(rest)?;
                Some(tname == t && objects.iter().any(|o| o == obj))
            })
            .unwrap_or(false);
        assert!(
            ok,
            "new or renamed section {:?} (target {:?}) is not .klp.rela.<object>.<target>",
            s.name.escape_ascii().to_string(),
            t.escape_ascii().to_string()
        );
    }
}

/// What a conversion wrote: it parses, `show` reads it, `check` with the
/// same maps finds no error, its names come from the input and the maps,
/// and converting it again changes nothing.
fn assert_output(case: &Case, input: &Elf, done: &Converted, map: Option<&SymbolMap>) {
    let out = Elf::parse(&done.bytes).expect("convert wrote an ELF it cannot read");
    let _ = show::report("out.ko", &out).to_text();
    let errs = check_errors(&done.bytes, map);
    assert!(
        errs.is_empty(),
        "convert (maps: {}) wrote a module check refuses: {errs:#?}",
        map.is_some()
    );
    assert_names(case, input, &out);
    match convert::convert_bytes_with(&done.bytes, map) {
        Ok(again) => assert!(!again.changed, "a second conversion changed the module"),
        Err(e) => panic!("a converted module is refused: {e}"),
    }
}

/// Every invariant on one case (a panic is a finding):
///
/// 1. Nothing panics: `show`, `check` (`rules::all`) with and without the
///    maps, `convert` with and without them, on the input and the outputs.
/// 2. `convert` fails only by refusing: never `Internal` (its own proof
///    failed: a bug), never `Malformed` (the generator writes valid ELF).
/// 3. What `convert` writes, `check` with the same maps passes (no error
///    finding), and a second conversion leaves it as it is.
/// 4. Every name in an output is the input's bytes or the maps' bytes
///    ([`assert_names`]): no lossy decoding, no U+FFFD made up.
/// 5. `convert` and `check` refuse the same modules. Not literally: `check`
///    on the input reports what `convert` is there to mend (unconverted
///    annotations and `KLP_SYMPOS` tables, names the loader cannot link),
///    so they are compared where they judge the same thing:
///    - a. `convert` refuses ⇒ `check` on the input, with the same maps or
///      none, finds an error: every refusal has a reason `check` sees. (The
///      converse is false: an unconverted annotation is an error for
///      `check` and work for `convert`.)
///    - b. `convert` without maps only translates what the author wrote;
///      let `o` be its output. With the maps, `convert` refuses ⇒ `check`
///      with the maps finds an error in `o`. And `convert` with the maps
///      accepts ⇒ `check` with them finds in `o` no error but
///      `unknown-symbol`, the one thing resolution from the maps mends.
///    - c. The maps only add: `convert` without maps refuses ⇒ `convert`
///      with them refuses.
///    - One refusal of `convert` has no counterpart in `check`: an output
///      of 65,280 sections or more (`extended-section-numbering`), which
///      `check` of the input cannot foresee when the maps make klp
///      sections of its exports. The generator's modules are far smaller.
///    - A refusal for want of an export list (`no-export-list`) is about
///      the maps, not the module: there `check` with the same maps must
///      say, as a warning, that it could not check what the loader links.
pub fn check_case(case: &Case) {
    let map = case.map();
    let input = Elf::parse(&case.module).expect("the generated module parses");
    let report = show::report("lp.ko", &input);
    let _ = report.to_text();
    let check_map = check_errors(&case.module, Some(&map));
    let check_plain = check_errors(&case.module, None);
    let plain = convert::convert_bytes_with(&case.module, None);
    let with = convert::convert_bytes_with(&case.module, Some(&map));
    for (r, maps) in [(&plain, false), (&with, true)] {
        match r {
            Err(convert::Error::Refused(_)) => {}
            Err(e) => panic!("convert (maps: {maps}) failed other than by refusing: {e:?}"),
            Ok(done) => assert_output(case, &input, done, maps.then_some(&map)),
        }
    }
    if let Err(convert::Error::Refused(why)) = &plain {
        assert!(
            !check_plain.is_empty(),
            "convert refuses a module check passes: {why:#?}"
        );
        assert!(
            with.is_err(),
            "convert refuses without the maps, accepts with them: {why:#?}"
        );
    }
    // A refusal for want of an export list is about the maps, not the
    // module: `check` with the same maps warns that it could not check.
    let no_exports = |why: &[Finding]| why.iter().all(|f| f.rule.id() == "no-export-list");
    let warns_no_exports = |bytes: &[u8]| {
        check::check_bytes("lp.ko", bytes, None, Some(&map))
            .findings
            .iter()
            .any(|f| f.rule.id() == "no-export-list")
    };
    if let Err(convert::Error::Refused(why)) = &with {
        if no_exports(why) {
            assert!(
                warns_no_exports(&case.module),
                "convert refuses for want of an export list, check does not say so: {why:#?}"
            );
        } else {
            assert!(
                !check_map.is_empty(),
                "convert with the maps refuses a module check with them passes: {why:#?}"
            );
        }
    }
    if let Ok(o) = &plain {
        let in_o = check_errors(&o.bytes, Some(&map));
        match &with {
            Err(convert::Error::Refused(why)) if no_exports(why) => assert!(
                warns_no_exports(&o.bytes),
                "convert refuses for want of an export list, check does not say so: {why:#?}"
            ),
            Err(convert::Error::Refused(why)) => assert!(
                !in_o.is_empty(),
                "convert with the maps refuses, but check with them passes what convert \
                 without them wrote: {why:#?}"
            ),
            Ok(_) => {
                let left: Vec<&Finding> = in_o
                    .iter()
                    .filter(|f| f.rule.id() != "unknown-symbol")
                    .collect();
                assert!(
                    left.is_empty(),
                    "check with the maps refuses what convert without them wrote, \
                     but convert with them accepts: {left:#?}"
                );
            }
            Err(_) => {}
        }
    }
    let _ = errors(&check_map);
}

/// Generate a case from `data` and check it.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    if let Ok(case) = generate(&mut u) {
        check_case(&case);
    }
}

impl Case {
    /// Write the case's files into `dir`, for the command line:
    /// `klp-convert convert lp.ko -o out.ko --symbols config --symbols
    /// System.map ...`.
    pub fn dump(&self, dir: &std::path::Path) {
        let _ = std::fs::create_dir_all(dir);
        let write = |name: &str, bytes: &[u8]| {
            std::fs::write(dir.join(name), bytes).expect("write a dumped file");
        };
        write("lp.ko", &self.module);
        write("System.map", &self.kallsyms);
        if let Some(ko) = &self.target_ko {
            write("target.ko", ko);
        }
        if let Some(k) = &self.symbols_klp {
            write("symbols.klp", k);
        }
        if let Some(s) = &self.symvers {
            write("Module.symvers", s);
        }
        if let Some(c) = self.config {
            write("config", c.as_bytes());
        }
        write("load-order", self.load_order.as_bytes());
    }
}
