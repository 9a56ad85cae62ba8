//! The verification step catches broken output: these tests break a real
//! converted module in the ways earlier tools did and expect the finding.

mod common;

use common::*;
use klp_convert::convert;
use klp_convert::elf::write::Edit;
use klp_convert::elf::{Elf, SHF_RELA_LIVEPATCH};

/// The contract's findings on `elf`, for its own vermagic.
/// The contract's findings, without the note that these test modules
/// have no `klp_patch` table.
fn contract(elf: &Elf) -> Vec<klp_convert::finding::Finding> {
    klp_convert::rules::contract::module(elf, &klp_convert::rules::Target::of(elf, None))
        .into_iter()
        .filter(|f| f.rule != klp_convert::finding::Rule::PatchTableUnread)
        .collect()
}

fn input(test: &str) -> Vec<u8> {
    let dir = scratch(test);
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}
extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);
int f(void) {{ char *a = *(char * volatile *)&saved_command_line; char *b = *(char * volatile *)&saved_command_line; return a[0] + b[1]; }}
void *p = &saved_command_line;
"
        ),
        &obj,
    );
    std::fs::read(obj).unwrap()
}

#[test]
fn verify_accepts_the_real_output() {
    let data = input("verify_accepts");
    let elf = Elf::parse(&data).unwrap();
    let plan = convert::make_plan(&elf, None).unwrap().0;
    assert_eq!(plan.moved(), 3);
    let out = convert::apply::apply(&elf, &plan).unwrap();
    convert::verify::verify(&elf, &plan, &Elf::parse(&out).unwrap()).unwrap();
}

#[test]
fn verify_catches_a_lost_relocation() {
    let data = input("verify_lost");
    let elf = Elf::parse(&data).unwrap();
    let mut plan = convert::make_plan(&elf, None).unwrap().0;
    // A buggy plan: the relocation leaves .rela.text but is not added anywhere.
    let mut entries = plan.entries_of(0).to_vec();
    let dropped = entries.pop().unwrap();
    plan.set_entries(0, entries);
    let out = convert::apply::apply(&elf, &plan).unwrap();
    let problems = convert::verify::verify(&elf, &plan, &Elf::parse(&out).unwrap()).unwrap_err();
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let expected = format!("offset 0x{:x}", dropped.offset);
    assert!(
        text.iter()
            .any(|t| t.contains("relocation lost") && t.contains(&expected)),
        "{text:?}"
    );
}

#[test]
fn verify_catches_a_duplicated_relocation() {
    let data = input("verify_duplicated");
    let elf = Elf::parse(&data).unwrap();
    let mut plan = convert::make_plan(&elf, None).unwrap().0;
    // A buggy plan: one relocation moved twice. The output's copies are
    // matched against the input's one at a time: one matches, one is extra.
    let mut entries = plan.entries_of(0).to_vec();
    let twice = *entries.last().unwrap();
    entries.push(twice);
    plan.set_entries(0, entries);
    let out = convert::apply::apply(&elf, &plan).unwrap();
    let problems = convert::verify::verify(&elf, &plan, &Elf::parse(&out).unwrap()).unwrap_err();
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let expected = format!("offset 0x{:x}", twice.offset);
    let added: Vec<&String> = text
        .iter()
        .filter(|t| t.contains("relocation added") && t.contains(&expected))
        .collect();
    assert_eq!(added.len(), 1, "{text:?}");
    assert!(
        !text.iter().any(|t| t.contains("relocation lost")),
        "{text:?}"
    );
}

#[test]
fn verify_catches_a_reference_left_behind() {
    // The early klp-convert bug: the second of two references stayed in
    // .rela.text after the symbol was renamed, so the loader applied it as 0.
    let data = input("verify_left_behind");
    let elf = Elf::parse(&data).unwrap();
    let mut plan = convert::make_plan(&elf, None).unwrap().0;
    let k = (0..plan.removals.len())
        .find(|&k| plan.moving_of(k).iter().filter(|x| **x).count() == 2)
        .unwrap();
    let moving = plan.moving_mut(k);
    let second = moving.iter().rposition(|x| *x).unwrap();
    moving[second] = false;
    let out = convert::apply::apply(&elf, &plan).unwrap();
    let problems = convert::verify::verify(&elf, &plan, &Elf::parse(&out).unwrap()).unwrap_err();
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(
        text.iter().any(
            |t| t.contains("ordinary relocation against a livepatch symbol")
                && t.contains("section .rela.text.f")
                && t.contains("symbol '.klp.sym.vmlinux.saved_command_line,0'")
        ),
        "{text:?}"
    );
    // ... and the duplicated entry (kept and copied) shows as added.
    assert!(
        text.iter().any(|t| t.contains("relocation added")),
        "{text:?}"
    );
}

#[test]
fn structural_rules_catch_hand_broken_sections() {
    let data = input("structural");
    let done = convert::convert_bytes(&data).unwrap();
    let elf = Elf::parse(&done.bytes).unwrap();
    assert!(contract(&elf).is_empty());

    // Drop SHF_RELA_LIVEPATCH from a klp section by editing its header through
    // the raw bytes: rename is not possible, so rewrite the flags field.
    let klp = elf.section_by_name(b".klp.rela.vmlinux..text.f").unwrap();
    let mut bytes = done.bytes.clone();
    let flags_at = (elf.shoff + klp.index as u64 * elf.shentsize as u64 + 8) as usize;
    let flags = klp.sh_flags & !SHF_RELA_LIVEPATCH;
    bytes[flags_at..flags_at + 8].copy_from_slice(&flags.to_le_bytes());
    let broken = Elf::parse(&bytes).unwrap();
    let text: Vec<String> = contract(&broken).iter().map(|p| p.to_string()).collect();
    assert!(
        text.iter().any(|t| t.contains("lacks SHF_RELA_LIVEPATCH")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("ordinary relocation against a livepatch symbol")),
        "{text:?}"
    );

    // Without livepatch=Y.
    let mut edit = Edit::new(&elf);
    let modinfo = elf.section_by_name(b".modinfo").unwrap().index;
    edit.set_contents(modinfo, b"license=GPL\0".to_vec());
    let out = edit.finish().unwrap();
    let text: Vec<String> = contract(&Elf::parse(&out).unwrap())
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert!(
        text.iter()
            .any(|t| t.contains("not marked as a livepatch module")),
        "{text:?}"
    );
}

#[test]
fn a_second_pass_extends_existing_klp_sections() {
    // A module that already has .klp.rela.vmlinux..text.f and still carries an
    // annotation for the same target: made by converting only one of two
    // annotated symbols, then running the real conversion on the result.
    let dir = scratch("extend_existing");
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}
extern int a KLP_RELOC_SYMBOL(vmlinux, vmlinux, a);
extern int b KLP_RELOC_SYMBOL(vmlinux, vmlinux, b);
int f(void) {{ return a + b; }}
"
        ),
        &obj,
    );
    let data = std::fs::read(obj).unwrap();
    let elf = Elf::parse(&data).unwrap();
    let mut partial = convert::make_plan(&elf, None).unwrap().0;
    let keep_sym = partial.renames[0].sym as u32;
    partial.renames.truncate(1);
    let rel_index = partial.removals[0].0;
    let entries: Vec<_> = elf
        .relocs
        .iter()
        .find(|r| r.index == rel_index)
        .unwrap()
        .entries()
        .collect();
    for (n, m) in partial.moving_mut(0).iter_mut().enumerate() {
        *m = *m && entries[n].sym == keep_sym;
    }
    let mut kept = partial.entries_of(0).to_vec();
    kept.retain(|r| r.sym == keep_sym);
    partial.set_entries(0, kept);
    let half = convert::apply::apply(&elf, &partial).unwrap();
    let half_elf = Elf::parse(&half).unwrap();
    let klp = half_elf
        .section_by_name(b".klp.rela.vmlinux..text.f")
        .unwrap();

    let done = convert::convert_bytes(&half).unwrap();
    assert!(done.changed);
    assert_eq!(done.sections, 1);
    let out = Elf::parse(&done.bytes).unwrap();
    // Extended in place of a new section: same index, one section more than
    // the input had before the first pass.
    assert_eq!(out.sections.len(), half_elf.sections.len());
    let ext = &out.sections.at(klp.index);
    assert_eq!(ext.name, b".klp.rela.vmlinux..text.f");
    assert_eq!(ext.sh_size, 2 * 24);
    assert!(contract(&out).is_empty());
    // The same result as converting everything at once, up to layout.
    let direct = convert::convert_bytes(&data).unwrap();
    let direct = Elf::parse(&direct.bytes).unwrap();
    let mut a: Vec<_> = out.relocs.iter().flat_map(|r| r.entries()).collect();
    let mut b: Vec<_> = direct.relocs.iter().flat_map(|r| r.entries()).collect();
    a.sort_by_key(|r| (r.offset, r.sym));
    b.sort_by_key(|r| (r.offset, r.sym));
    assert_eq!(a, b);
}

#[test]
fn verify_catches_a_symbol_renamed_otherwise_than_planned() {
    let data = input("verify_renamed_otherwise");
    let elf = Elf::parse(&data).unwrap();
    let mut plan = convert::make_plan(&elf, None).unwrap().0;
    let out = convert::apply::apply(&elf, &plan).unwrap();
    let out = Elf::parse(&out).unwrap();
    convert::verify::verify(&elf, &plan, &out).unwrap();
    // The output gives the symbol another position than the plan checked.
    plan.renames[0].klp.pos += 1;
    let problems = convert::verify::verify(&elf, &plan, &out).unwrap_err();
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(
        text.iter()
            .any(|t| t.contains("symbol changed unexpectedly") && t.contains("saved_command_line")),
        "{text:?}"
    );
}

#[test]
fn verify_reads_the_input_again_when_its_symbols_and_relocations_went() {
    // A conversion lets the input's symbols and relocation sections go
    // before its output is parsed: the proof decodes them from the file,
    // and finds what it finds with them held.
    let data = input("verify_read_again");
    let full = Elf::parse(&data).unwrap();
    let mut plan = convert::make_plan(&full, None).unwrap().0;
    let mut entries = plan.entries_of(0).to_vec();
    entries.pop().unwrap();
    plan.set_entries(0, entries);
    let out = convert::apply::apply(&full, &plan).unwrap();
    let out = Elf::parse(&out).unwrap();
    let mut bare = Elf::parse(&data).unwrap();
    bare.symbols = Vec::new();
    bare.relocs = Vec::new();
    let text = |elf: &Elf| -> Vec<String> {
        let problems = convert::verify::verify(elf, &plan, &out).unwrap_err();
        problems.iter().map(|p| p.to_string()).collect()
    };
    let held = text(&full);
    assert!(
        held.iter()
            .any(|t| t.contains("relocation lost") && t.contains("saved_command_line")),
        "{held:?}"
    );
    assert_eq!(text(&bare), held);
}

/// The proof of a conversion (`prepare`, `write_to`, `prove`: the input's
/// symbols and relocation sections and the plan's renames gone by then)
/// refuses an output changed after it was written, in each of the ways a
/// writer could get it wrong, naming the symbol.
#[test]
fn the_proof_refuses_a_tampered_output() {
    let data = input("verify_prove_tampered");
    let written = {
        let mut pending = convert::prepare(&data, None).unwrap();
        let mut buf = Vec::new();
        pending.write_to(&mut buf).unwrap();
        pending.prove(&buf).unwrap();
        buf
    };
    let out = Elf::parse(&written).unwrap();
    let symtab = out.section_by_name(b".symtab").unwrap().sh_offset as usize;
    let symbol = |name: &[u8]| {
        let s = out.symbols.iter().find(|s| s.name == name).unwrap();
        symtab + s.index as usize * 24
    };
    let klp = out
        .sections
        .iter()
        .find(|s| s.sh_flags & SHF_RELA_LIVEPATCH != 0)
        .unwrap();
    let renamed = b".klp.sym.vmlinux.saved_command_line,0";
    let cases: [(&str, usize, &str); 4] = [
        (
            "addend",
            klp.sh_offset as usize + 16,
            "relocation lost by the conversion",
        ),
        ("value", symbol(renamed) + 8, "symbol changed unexpectedly"),
        ("size", symbol(b"f") + 16, "symbol changed unexpectedly"),
        ("info", symbol(b"f") + 4, "symbol changed unexpectedly"),
    ];
    for (what, at, words) in cases {
        let mut bytes = written.clone();
        bytes[at] ^= 1;
        let mut pending = convert::prepare(&data, None).unwrap();
        pending.write_to(&mut Vec::new()).unwrap();
        let text = match pending.prove(&bytes) {
            Err(convert::Error::Internal(problems)) => problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            other => panic!("{what}: {other:?}"),
        };
        assert!(text.contains(words), "{what}: {text}");
        let name = if what == "addend" || what == "value" {
            "saved_command_line"
        } else {
            "'f'"
        };
        assert!(text.contains(name), "{what}: {text}");
    }
}

/// What the proof decodes again from the input is what `Elf::parse` read:
/// the symbols (with their names, and without, the names then found at
/// `st_name` in `Elf::symbol_strings`) and every relocation section, for
/// each module of the ELF fuzz corpus (x86_64, i386, s390x big-endian,
/// ppc64le, arm64, ELF32 and ELF64) that parses.
#[test]
fn what_the_proof_reads_again_is_what_was_read() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/elf");
    let mut read = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let Ok(elf) = Elf::parse(&data) else {
            continue;
        };
        let p = path.display();
        let (n, again) = elf.symbols_again(true).unwrap();
        assert_eq!(n, elf.symbols.len(), "{p}");
        let again: Vec<_> = again.map(Result::unwrap).collect();
        assert_eq!(again, elf.symbols, "{p}");
        let strings = elf.symbol_strings();
        let (_, bare) = elf.symbols_again(false).unwrap();
        for (a, b) in bare.map(Result::unwrap).zip(&elf.symbols) {
            assert!(a.name.is_empty(), "{p}");
            let at = a.st_name as usize;
            let name = if a.st_name == 0 {
                &[][..]
            } else {
                &strings[at..at + b.name.len()]
            };
            assert_eq!(
                (name, a.st_value, a.st_size, a.section),
                (b.name, b.st_value, b.st_size, b.section),
                "{p}"
            );
        }
        let listed: Vec<_> = if elf.symtab.is_some() {
            elf.sections.relocation_sections().collect()
        } else {
            Vec::new()
        };
        let held: Vec<_> = elf
            .relocs
            .iter()
            .map(|r| (r.index, elf.sections.at(r.index).sh_info))
            .collect();
        assert_eq!(listed, held, "{p}");
        for r in &elf.relocs {
            let a = elf.reloc_section_again(r.index).unwrap();
            assert_eq!(a.is_rela(), r.is_rela(), "{p}");
            assert!(a.entries().eq(r.entries()), "{p}");
        }
        read += 1;
    }
    assert!(read >= 10, "{read} modules of {}", dir.display());
}
