//! The kernel's rules called one by one: on objects gcc builds here, and on
//! sections and symbols made by hand where a rule looks at one header only.
//! Each rule gives its finding, with its id, exactly when the kernel would
//! refuse (or misapply), and nothing otherwise.

mod common;

use common::*;
use klp_convert::convert;
use klp_convert::elf::abi::{EM_PPC64, EM_X86_64};
use klp_convert::elf::{Elf, Section, SHF_ALLOC, SHF_EXECINSTR, SHN_LIVEPATCH, SHT_NOBITS};
use klp_convert::finding::Rule;
use klp_convert::names::KlpSymbol;
use klp_convert::rules::{contract, kernels, Target};

/// A section header with the given name, flags and size.
fn section(name: &str, flags: u64, size: u64) -> Section<'_> {
    Section {
        index: 1,
        name: name.as_bytes(),
        sh_name: 0,
        sh_type: klp_convert::elf::abi::SHT_PROGBITS,
        sh_flags: flags,
        sh_addr: 0,
        sh_offset: 0,
        sh_size: size,
        sh_link: 0,
        sh_info: 0,
        sh_addralign: 1,
        sh_entsize: 0,
    }
}

fn klp<'a>(obj: &'a str, name: &'a str) -> KlpSymbol<'a> {
    KlpSymbol {
        obj: obj.as_bytes().into(),
        name: name.as_bytes().into(),
        pos: 0,
    }
}

/// `(input, converted)` bytes of a livepatch that reads a vmlinux symbol and
/// a module symbol through annotations, the module one from `.rodata`.
fn livepatch(test: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = scratch(test);
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}\
             extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);\n\
             extern int t KLP_RELOC_SYMBOL(klp_test_target, klp_test_target, t);\n\
             extern int printk(const char *, ...);\n\
             extern int maybe(void) __attribute__((weak));\n\
             int *const ptr_in_rodata = &t;\n\
             int f(void) {{ return saved_command_line[0] + printk(\"x\") + (maybe ? maybe() : 0); }}\n"
        ),
        &obj,
    );
    let input = std::fs::read(&obj).unwrap();
    let converted = convert::convert_bytes(&input).expect("converts").bytes;
    (input, converted)
}

#[test]
fn module_level_rules() {
    let (input, converted) = livepatch("rules_module");
    let before = Elf::parse(&input).unwrap();
    let after = Elf::parse(&converted).unwrap();
    assert!(contract::livepatch_modinfo(&after).is_none());

    // Annotations are unconverted before, gone after.
    let unconverted: Vec<_> = before
        .symbols
        .iter()
        .filter_map(|s| contract::unconverted_annotation(&before, s))
        .collect();
    assert_eq!(unconverted.len(), 2);
    assert!(unconverted
        .iter()
        .all(|f| f.rule == Rule::UnconvertedAnnotation));
    assert!(after
        .symbols
        .iter()
        .all(|s| contract::unconverted_annotation(&after, s).is_none()));

    // What the loader must link: printk, not the weak symbol, not the
    // annotations, not the module's own.
    let linked: Vec<String> = before
        .symbols
        .iter()
        .filter(|s| contract::needs_linking(s))
        .map(|s| s.display_name())
        .collect();
    assert_eq!(linked, ["printk"]);

    // Every klp symbol is well formed and marked; its name fits 6.1 and 5.14.
    let old = Target {
        release: klp_convert::rules::Release::parse("5.14.0"),
    };
    for s in after.symbols.iter().filter(|s| s.st_shndx == SHN_LIVEPATCH) {
        assert!(contract::klp_symbol_name_format(s, &Target::default()).is_none());
        assert!(contract::klp_symbol_name_format(s, &old).is_none());
        assert!(contract::livepatch_symbol_marked(s).is_none());
    }
    // Every klp section: name, header, flag, target.
    let klp_sections: Vec<Section> = after
        .sections
        .iter()
        .filter(|s| s.name.starts_with(b".klp.rela."))
        .collect();
    assert_eq!(klp_sections.len(), 2);
    for sec in klp_sections {
        let obj = contract::klp_section_name_format(&sec).unwrap();
        assert!(contract::klp_section_header(&after, &sec).is_empty());
        assert!(contract::klp_section_flagged(&sec).is_none());
        let target = contract::relocation_target(&after, &sec).unwrap();
        assert!(contract::klp_section_object_misread(&sec, obj, &target).is_none());
        assert!(contract::target_alloc(Some(b"vmlinux"), &target).is_none());
        assert!(contract::late_target(obj, &target, EM_X86_64).is_none());
    }
    // The same object fails the flag rule once it loses SHF_RELA_LIVEPATCH,
    // and a plain object is not a livepatch module.
    let mut unflagged = after.sections.at(after.sections.len() - 1);
    unflagged.sh_flags &= !klp_convert::elf::SHF_RELA_LIVEPATCH;
    assert_eq!(
        contract::klp_section_flagged(&unflagged).map(|f| f.rule),
        Some(Rule::KlpSectionNotFlagged)
    );

    // The module-specific relocation into .rodata: safe on 6.12's x86_64
    // (a note), a warning on 5.4; the reload warning only before 6.3.
    let on = |r: &str| Target::of(&after, Some(r));
    let f = kernels::late_reloc_read_only(&after, &on("6.12.0"));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, Rule::LateRelocReadOnly);
    assert_eq!(f[0].severity, klp_convert::finding::Severity::Note);
    let f = kernels::late_reloc_read_only(&after, &on("5.4.0"));
    assert_eq!(f[0].severity, klp_convert::finding::Severity::Warning);
    assert!(kernels::reload_before_6_3(&after, &on("6.12.0")).is_none());
    assert_eq!(
        kernels::reload_before_6_3(&after, &on("6.1.0")).map(|f| f.rule),
        Some(Rule::ReloadBefore63)
    );
}

#[test]
fn a_plain_object_is_not_a_livepatch_module() {
    let dir = scratch("rules_plain");
    let obj = dir.join("plain.o");
    compile_x86_64("int f(void) { return 1; }\n", &obj);
    let data = std::fs::read(&obj).unwrap();
    let elf = Elf::parse(&data).unwrap();
    assert_eq!(
        contract::livepatch_modinfo(&elf).map(|f| f.rule),
        Some(Rule::NotLivepatch)
    );
}

#[test]
fn late_targets() {
    let text = section(".text.f", SHF_ALLOC | SHF_EXECINSTR, 16);
    let jump = section("__jump_table", SHF_ALLOC, 16);
    let init = section(".init.text", SHF_ALLOC | SHF_EXECINSTR, 16);
    // vmlinux relocations are applied early: anything goes.
    for s in [&text, &jump, &init] {
        assert!(contract::late_target(b"vmlinux", s, EM_X86_64).is_none());
    }
    assert!(contract::late_target(b"mod", &text, EM_X86_64).is_none());
    let f = contract::late_target(b"mod", &jump, EM_X86_64).unwrap();
    assert_eq!(f.rule, Rule::SpecialSection);
    assert!(f.message.contains("static_key_enabled()"), "{}", f.message);
    assert_eq!(
        contract::late_target(b"mod", &init, EM_X86_64).map(|f| f.rule),
        Some(Rule::InitSection)
    );
    // x86 6.12+ module_finalize consumes .cfi_sites at the patch's load.
    let cfi = section(".cfi_sites", SHF_ALLOC, 16);
    assert_eq!(
        contract::late_target(b"mod", &cfi, EM_X86_64).map(|f| f.rule),
        Some(Rule::SpecialSection)
    );
    // ppc64 never frees .init*: the late write lands.
    assert!(contract::late_target(b"mod", &init, EM_PPC64).is_none());
}

#[test]
fn targets_and_offsets() {
    let data = section(".data", SHF_ALLOC, 16);
    let debug = section(".debug_info", 0, 16);
    let mut bss = section(".bss", SHF_ALLOC, 16);
    bss.sh_type = SHT_NOBITS;
    assert!(contract::target_alloc(None, &data).is_none());
    assert_eq!(
        contract::target_alloc(None, &debug).map(|f| f.rule),
        Some(Rule::TargetNotAlloc)
    );
    assert!(contract::offset_within(&data, 15).is_none());
    assert_eq!(
        contract::offset_within(&data, 16).map(|f| f.rule),
        Some(Rule::OffsetBeyondTarget)
    );
    assert!(contract::offset_within(&bss, 64).is_none());
}

#[test]
fn vmlinux_access_from_module_sections() {
    assert!(contract::vmlinux_access(b"vmlinux", &klp("vmlinux", "x")).is_none());
    assert!(contract::vmlinux_access(b"mod", &klp("mod", "x")).is_none());
    assert!(contract::vmlinux_access(b"mod", &klp("other", "x")).is_none());
    let f = contract::vmlinux_access(b"mod", &klp("vmlinux", "x")).unwrap();
    assert_eq!(f.rule, Rule::VmlinuxFromModuleSection);
    assert!(f.message.starts_with(
        "invalid access to vmlinux symbol 'x' from module-specific livepatch relocation section"
    ));
}

#[test]
fn section_object_misread() {
    let jump = section("__jump_table", SHF_ALLOC, 16);
    let bad = section(".klp.rela.vmlinux__jump_table", SHF_ALLOC, 24);
    let good = section(".klp.rela.vmlinux.__jump_table", SHF_ALLOC, 24);
    let obj = contract::klp_section_name_format(&bad).unwrap();
    assert_eq!(obj, b"vmlinux__jump_table");
    assert_eq!(
        contract::klp_section_object_misread(&bad, obj, &jump).map(|f| f.rule),
        Some(Rule::KlpSectionObject)
    );
    let obj = contract::klp_section_name_format(&good).unwrap();
    assert!(contract::klp_section_object_misread(&good, obj, &jump).is_none());
    // Names are compared as bytes: a target whose display name is longer
    // than its bytes (0xA9 shows as `\xA9`, once U+FFFD) once panicked here.
    let odd = Section {
        name: b"\xA9",
        ..section("", SHF_ALLOC, 16)
    };
    let e_acute = section(".klp.rela.\u{e9}\u{e9}", SHF_ALLOC, 24);
    let obj = contract::klp_section_name_format(&e_acute).unwrap();
    let f = contract::klp_section_object_misread(&e_acute, obj, &odd).unwrap();
    assert_eq!(f.rule, Rule::KlpSectionObject);
    assert_eq!(
        f.message,
        "the kernel reads the object of this section as '\u{e9}\u{e9}' (no '.' before the target \\xA9): its relocations are never applied; name it .klp.rela.\u{e9}\\xC3.\\xA9"
    );
    let malformed = section(".klp.rela.my-mod.text", SHF_ALLOC, 24);
    assert_eq!(
        contract::klp_section_name_format(&malformed)
            .unwrap_err()
            .rule,
        Rule::KlpSectionName
    );
}

/// arm64's `apply_relocate_add` takes `R_ARM_NONE` (0, the ELF ABI's
/// `R_AARCH64_NONE`) and the kernel's `R_AARCH64_NONE` (256) alike: both
/// write nothing; ppc64 has no such type.
#[test]
fn types_that_write_nothing() {
    use klp_convert::arch::writes_nothing;
    use klp_convert::elf::abi::{EM_AARCH64, R_AARCH64_NONE, R_X86_64_NONE};
    assert_eq!(R_AARCH64_NONE, 0);
    assert!(writes_nothing(EM_AARCH64, 0));
    assert!(writes_nothing(EM_AARCH64, 256));
    assert!(!writes_nothing(EM_AARCH64, 257));
    assert!(writes_nothing(EM_X86_64, R_X86_64_NONE));
    assert!(!writes_nothing(EM_PPC64, 0));
}
