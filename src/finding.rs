//! Findings about a module: which rule, where (section, offset, symbol) and
//! what. Every finding carries a [`Rule`] with a stable id, so scripts can
//! match on `rule` in the JSON output instead of on message text.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::elf::{Elf, Reloc};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; the module is still accepted.
    Note,
    /// Likely to misbehave on some kernels; the module is still accepted.
    Warning,
    /// The kernel would refuse the module or misapply a relocation.
    Error,
}

impl Severity {
    /// `error`, `warning` or `note`, as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares [`Rule`]: variant, stable id, default severity, and the doc
/// comment (which names the kernel code the rule mirrors).
macro_rules! rules {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $sev:ident; )*) => {
        /// Every rule a finding can come from. The ids are stable: they are
        /// part of the JSON output of `check` and `show`. New rules come
        /// with new kernels and new findings, so a `match` needs a `_` arm.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Rule {
            $( $(#[$doc])* $variant, )*
        }

        impl Rule {
            /// All rules, in declaration order.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant),*];

            /// The stable id (`klp-symbol-name`, `ppc64-nop-after-call`, ...).
            pub fn id(self) -> &'static str {
                match self { $(Rule::$variant => $id,)* }
            }

            /// The severity a finding of this rule has.
            pub fn severity(self) -> Severity {
                match self { $(Rule::$variant => Severity::$sev,)* }
            }
        }
    };
}

rules! {
    /// The file is not an ELF object this tool can read.
    ///
    /// Audit: `docs/klp-contract.md` §9 row T-input.
    NotElf = "not-elf", Error;
    // --- the livepatch core and the module loader (rules::contract) ---
    /// The module loader's ELF checks read `e_shnum` and `e_shstrndx` as
    /// they stand: a module in ELF's extended section numbering (65,280
    /// sections or more) is refused (-ENOEXEC).
    ///
    /// Audit: `docs/klp-contract.md` §9 row M17.
    ExtendedSectionNumbering = "extended-section-numbering", Error;
    /// `klp_enable_patch`: "module %s is not marked as a livepatch module".
    ///
    /// Audit: `docs/klp-contract.md` §9 rows C3, M1.
    NotLivepatch = "not-livepatch", Error;
    /// `klp_resolve_symbols`: "symbol %s has an incorrectly formatted name".
    ///
    /// Audit: `docs/klp-contract.md` §9 row C18.
    KlpSymbolName = "klp-symbol-name", Error;
    /// `klp_resolve_symbols`' `sscanf` reads at most `KSYM_NAME_LEN - 1` bytes.
    ///
    /// Audit: `docs/klp-contract.md` §9 row C18.
    KlpSymbolTooLong = "klp-symbol-too-long", Error;
    /// `klp_resolve_symbols` reads the position with `%lu`: `1x` is 1.
    KlpSymbolPosition = "klp-symbol-position", Warning;
    /// `klp_resolve_symbols`: "symbol %s is not marked as a livepatch symbol".
    ///
    /// Audit: `docs/klp-contract.md` §9 row C17.
    NotLivepatchSymbol = "not-livepatch-symbol", Error;
    /// `klp_apply_section_relocs`: "section %s has an incorrectly formatted name".
    ///
    /// Audit: `docs/klp-contract.md` §9 row C21.
    KlpSectionName = "klp-section-name", Error;
    /// `klp_apply_section_relocs` reads the object up to the first `.`; a
    /// name without that `.` names an object that never loads.
    ///
    /// Audit: `docs/klp-contract.md` §9 row C22.
    KlpSectionObject = "klp-section-object", Error;
    /// `klp_apply_section_relocs` and `apply_relocate_add` take RELA only;
    /// a module's klp section must be allocated (applied after the load).
    ///
    /// Audit: `docs/klp-contract.md` §9 rows C20, C25, M9.
    KlpSectionHeader = "klp-section-header", Error;
    /// A klp section whose `sh_link` is not `.symtab`: the kernel ignores
    /// it, other tools do not.
    KlpSectionLink = "klp-section-link", Note;
    /// The module loader applies a `.klp.rela.*` section without
    /// `SHF_RELA_LIVEPATCH` as an ordinary one.
    ///
    /// Audit: `docs/klp-contract.md` §9 row C24.
    KlpSectionNotFlagged = "klp-section-not-flagged", Error;
    /// `sh_info` must name the section the relocations patch.
    ///
    /// Audit: `docs/klp-contract.md` §9 row M10.
    KlpSectionTarget = "klp-section-target", Error;
    /// A klp relocation section whose target lacks `SHF_ALLOC`: a vmlinux
    /// one is skipped silently (`apply_relocations`), a module-specific one
    /// written late into the freed load image (`klp_apply_object_relocs`
    /// tests no flags).
    ///
    /// Audit: `docs/klp-contract.md` §9 row M7.
    TargetNotAlloc = "target-not-alloc", Error;
    /// `klp_resolve_symbols`: "invalid access to vmlinux symbol '%s' from
    /// module-specific livepatch relocation section".
    ///
    /// Audit: `docs/klp-contract.md` §9 row C19.
    VmlinuxFromModuleSection = "vmlinux-from-module-section", Error;
    /// `module_finalize` processes special sections once, at the livepatch
    /// module's load: a late (module-specific) relocation there is never seen.
    ///
    /// Audit: `docs/klp-contract.md` §9 rows M12, X8, Q13, S6.
    SpecialSection = "special-section", Error;
    /// `do_init_module` frees `.init.*`: a late relocation would write into
    /// freed memory.
    ///
    /// Audit: `docs/klp-contract.md` §9 row M11.
    InitSection = "init-section", Error;
    /// `apply_relocate_add` writes at `sh_addr + r_offset` without a bound.
    ///
    /// Audit: `docs/klp-contract.md` §9 row T-arith.
    OffsetBeyondTarget = "offset-beyond-target", Error;
    /// `simplify_symbols` leaves `SHN_LIVEPATCH` symbols at 0 and
    /// `apply_relocations` applies ordinary sections with that value.
    ///
    /// Audit: `docs/klp-contract.md` §9 row M3.
    OrdinaryRelocToLivepatchSymbol = "ordinary-reloc-to-livepatch-symbol", Error;
    /// What another tool left behind that the kernel ignores (objtool's
    /// `__klp_relocs.<obj>` table).
    ///
    /// Audit: `docs/klp-contract.md` §9 rows X5, T-output.
    ToolLeftover = "tool-leftover", Note;
    /// `klp_init_patch_early`, `klp_init_object`, `klp_init_func`: a
    /// `klp_object` without functions, a `klp_func` without `old_name` or
    /// `new_func`, an over-long name (-EINVAL).
    ///
    /// Audit: `docs/klp-contract.md` §9 rows C1, C2, C7, C10.
    PatchTable = "patch-table", Error;
    /// `klp_find_object_module`, `klp_module_coming`: a `klp_object` named
    /// by the string `"vmlinux"` or with a `-` in its name matches no
    /// module; the patch enables and patches nothing of it.
    ObjectNeverMatched = "object-never-matched", Error;
    /// `klp_init_object`, `klp_init_func`: a second object or function with
    /// the same sysfs name (`<old_name>,<old_sympos ?: 1>`; the module, or
    /// `vmlinux` for NULL): `kobject_add` fails with -EEXIST.
    DuplicateSysfsName = "duplicate-sysfs-name", Error;
    /// `klp_apply_object_relocs` applies `.klp.rela.<obj>.*` for the
    /// patch's object `<obj>` only: a section for a module the patch has
    /// no `klp_object` for is never applied (a note when the tables are
    /// built at run time).
    KlpSectionNoObject = "klp-section-no-object", Error;
    /// A livepatch module whose `klp_patch` tables are not in its data (built
    /// at run time): its patched functions were not checked.
    ///
    /// Audit: `docs/klp-contract.md` §9 row T-output.
    PatchTableUnread = "patch-table-unread", Note;
    /// `simplify_symbols`: "Unknown symbol" for an annotation left unconverted.
    ///
    /// Audit: `docs/klp-contract.md` §9 row M4.
    UnconvertedAnnotation = "unconverted-annotation", Error;
    /// A v7 `KLP_MODULE_RELOC` table left in the module: its references were
    /// never converted.
    ///
    /// Audit: `docs/klp-contract.md` §9 row M4.
    UnconvertedSymposTable = "unconverted-sympos-table", Error;
    // --- symbol resolution (rules::resolution) ---
    /// `klp_find_object_symbol`: "symbol '%s' not found in symbol table".
    ///
    /// Audit: `docs/klp-contract.md` §9 rows C12, M16.
    SymbolNotFound = "symbol-not-found", Error;
    /// `klp_find_object_symbol`: "unresolvable ambiguity for symbol '%s' in
    /// object '%s'".
    ///
    /// Audit: `docs/klp-contract.md` §9 row C13.
    AmbiguousSymbol = "ambiguous-symbol", Error;
    /// `klp_find_object_symbol`: "symbol position %lu for symbol '%s' in
    /// object '%s' not found".
    ///
    /// Audit: `docs/klp-contract.md` §9 row C14.
    PositionNotFound = "position-not-found", Error;
    /// `klp_find_object_symbol` counts a module's `core_kallsyms` when the
    /// module is loaded before the patch, its full symbol table when it
    /// loads after (`klp_module_coming`): a position that fails, or means
    /// another symbol, in one of the two orders.
    ///
    /// Audit: `docs/klp-contract.md` §9 rows C15, M15.
    LoadOrder = "load-order", Error;
    /// The maps give a module's symbols as a loaded module keeps them
    /// (kallsyms, symbols.klp): positions while it is coming were not checked.
    ///
    /// Audit: `docs/klp-contract.md` §9 row C15.
    LoadOrderUnchecked = "load-order-unchecked", Warning;
    /// The object of a klp symbol is not in the maps given: not checked.
    ///
    /// Audit: `docs/klp-contract.md` §9 rows T-maps, M16.
    ObjectNotInMaps = "object-not-in-maps", Warning;
    /// Where a klp symbol resolves.
    ///
    /// Audit: `docs/klp-contract.md` §9 row T-maps.
    Resolves = "resolves", Note;
    /// `klp_patch_func`: "failed to find location for function '%s'": the
    /// patched function resolves to a symbol ftrace cannot patch (data).
    PatchedNotFunction = "patched-not-function", Error;
    /// `simplify_symbols`: "Unknown symbol %s (err -2)".
    ///
    /// Audit: `docs/klp-contract.md` §9 row M4.
    UnknownSymbol = "unknown-symbol", Error;
    /// Resolution from maps needs an export list to tell exports apart.
    ///
    /// Audit: `docs/klp-contract.md` §9 row T-maps.
    NoExportList = "no-export-list", Error;
    /// A map names an object or symbol the klp name grammar cannot carry.
    ///
    /// Audit: `docs/klp-contract.md` §9 row T-maps.
    NameNotRepresentable = "name-not-representable", Error;
    /// A module's export left an ordinary reference, linked by the loader:
    /// its klp form would be refused or cannot be chosen.
    ///
    /// Audit: `docs/klp-contract.md` §9 row T-maps.
    ModuleExportLinked = "module-export-linked", Warning;
    // --- annotations in the input (convert::select) ---
    /// A `KLP_RELOC_SYMBOL` name that does not parse.
    ///
    /// Audit: `docs/klp-contract.md` §9 row T-input.
    MalformedAnnotation = "malformed-annotation", Error;
    /// A `KLP_RELOC_SYMBOL` name the module defines: its references bind
    /// to the module's own copy, never to the target's symbol.
    ///
    /// Audit: `docs/klp-contract.md` §9 row T-input.
    DefinedAnnotation = "defined-annotation", Error;
    /// A malformed, conflicting or unused `KLP_SYMPOS` entry.
    ///
    /// Audit: `docs/klp-contract.md` §9 row T-input.
    SymposTable = "sympos-table", Error;
    /// A klp relocation section that references an annotation symbol.
    ///
    /// Audit: `docs/klp-contract.md` §9 row T-input.
    KlpSectionAnnotation = "klp-section-annotation", Error;
    /// A REL entry whose implicit addend cannot be read.
    ///
    /// Audit: `docs/klp-contract.md` §9 row T-input.
    RelAddend = "rel-addend", Error;
    /// Left in place: a debug section, which the loader never relocates.
    ///
    /// Audit: `docs/klp-contract.md` §9 row T-output.
    DebugSectionLeft = "debug-section-left", Note;
    /// The appended module signature is invalid after conversion.
    ///
    /// Audit: `docs/klp-contract.md` §9 rows M19, T-output.
    SignatureDropped = "signature-dropped", Warning;
    // --- each architecture's apply_relocate_add (arch::*) ---
    /// `apply_relocate_add`: a relocation type the loader does not handle.
    ///
    /// Audit: `docs/klp-contract.md` §9 rows X1, Q5, S2, A3, L2.
    RelocType = "reloc-type", Error;
    /// x86 `apply_relocate_add`: "Invalid relocation target, existing value
    /// is nonzero for type %d".
    ///
    /// Audit: `docs/klp-contract.md` §9 row X2.
    X86TargetNonzero = "x86-target-nonzero", Error;
    /// ppc64 `restore_r2`: "Expected nop after call, got %08x".
    ///
    /// Audit: `docs/klp-contract.md` §9 row Q3.
    Ppc64NopAfterCall = "ppc64-nop-after-call", Error;
    /// ppc64 `apply_relocate_add`: the TOC16 family against a klp symbol,
    /// "bad TOC16 relocation" or truncated without a word.
    Ppc64Toc16 = "ppc64-toc16", Error;
    /// ppc64 `module_frob_arch_sections`: a module without `.stubs`.
    ///
    /// Audit: `docs/klp-contract.md` §9 row Q1.
    Ppc64Stubs = "ppc64-stubs", Error;
    /// arm64 `module_frob_arch_sections`: a module without its PLT sections.
    ///
    /// Audit: `docs/klp-contract.md` §9 row A1.
    Arm64Plt = "arm64-plt", Error;
    /// ppc32 `module_frob_arch_sections`: a module without `.plt` or
    /// `.init.plt`, "Module doesn't contain .plt or .init.plt sections.".
    ///
    /// Audit: `docs/klp-contract.md` §9 row R1.
    Ppc32Plt = "ppc32-plt", Error;
    /// ppc32 `get_plt_size`/`do_plt_call`: a relocation section with ".init"
    /// in its name whose calls are in core text: counted for `.init.plt`,
    /// served from `.plt`, written past its end when the slack runs out
    /// (a warning while it fits).
    ///
    /// Audit: `docs/klp-contract.md` §9 row R3.
    Ppc32InitPlt = "ppc32-init-plt", Error;
    /// "overflow in relocation type %d val %Lx" (ppc64: silent truncation).
    ///
    /// Audit: `docs/klp-contract.md` §9 rows X3, Q10, S3, A4.
    AbsoluteOverflow = "absolute-overflow", Error;
    /// A PC-relative klp relocation whose symbol no module placement reaches:
    /// "overflow in relocation type %d val %Lx".
    ///
    /// Audit: `docs/klp-contract.md` §9 rows X4, S3, A4.
    PcRelativeRange = "pc-relative-range", Error;
    /// s390 `apply_rela` writes a GOT or PLT entry once per symbol
    /// (`got_initialized`, `plt_initialized`): a module-specific one keeps
    /// the old address when its module is loaded again elsewhere.
    S390GotStale = "s390-got-stale", Warning;
    /// LoongArch `module_frob_arch_sections`: a module without `.got`,
    /// `.plt` or `.plt.idx` ("module GOT section(s) missing").
    ///
    /// Audit: `docs/klp-contract.md` §9 row L1.
    LoongarchGotPlt = "loongarch-got-plt", Error;
    /// LoongArch `apply_r_larch_pcala`/`pcadd`: a PC-relative klp
    /// relocation against vmlinux, written without a range check and wrong.
    ///
    /// Audit: `docs/klp-contract.md` §9 row L3.
    LoongarchPcrelFar = "loongarch-pcrel-far", Error;
    /// LoongArch `apply_relocate_add`: a `PCADD_LO12` whose `HI20` is not in
    /// its relocation section, "Can not find HI20 relocation information".
    ///
    /// Audit: `docs/klp-contract.md` §9 row L4.
    LoongarchPcaddPair = "loongarch-pcadd-pair", Error;
    /// LoongArch `module_emit_got_entry`: module-specific GOT entries
    /// taken anew on each load of their module, from a table sized once
    /// ("module contains bad GOT relocation").
    ///
    /// Audit: `docs/klp-contract.md` §9 row L5.
    LoongarchGotReload = "loongarch-got-reload", Warning;
    /// The loader of this machine is not modelled.
    ///
    /// Audit: `docs/klp-contract.md` §9 rows R1, R2, T-output.
    LoaderNotModelled = "loader-not-modelled", Note;
    // --- what depends on the kernel version (rules::kernels) ---
    /// A late relocation into read-only memory, on kernels that wrote it
    /// without their code-patching helper.
    ///
    /// Audit: `docs/klp-contract.md` §9 rows M13, X7, S5, A7, L7.
    LateRelocReadOnly = "late-reloc-read-only", Warning;
    /// `apply_relocations` skips the per-CPU section (its `SHF_ALLOC` is
    /// cleared) before 6.16; late relocations write into the freed load image.
    PercpuTarget = "percpu-target", Error;
    /// Ordinary relocations into the per-CPU section, which the loader
    /// drops before 6.16 as it drops klp ones: any module's per-CPU
    /// initialisers keep their unrelocated bytes.
    ///
    /// Audit: `docs/klp-contract.md` §9 row M8.
    PercpuUnrelocated = "percpu-unrelocated", Warning;
    /// x86_64 and ppc64 before 6.3 (no `clear_relocate_add`): reloading a
    /// patched module under an enabled patch is refused.
    ///
    /// Audit: `docs/klp-contract.md` §9 rows C29, X6, Q4.
    ReloadBefore63 = "reload-before-6.3", Warning;
    // --- the converter's own proof (convert::verify) ---
    /// The converted output failed verification: a bug of this tool.
    ///
    /// Audit: `docs/klp-contract.md` §9 rows M14, T-output.
    Verify = "verify", Error;
    /// The symbol maps were read keeping only the names of other modules
    /// ([`crate::maps::SymbolMap::add_paths_wanted`]): the module changed
    /// after they were read for it. Nothing is resolved against them.
    MapsNotForModule = "maps-not-for-module", Error;
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One finding, located as precisely as the rule allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule, by stable id.
    pub rule: Rule,
    /// Error, warning or note.
    pub severity: Severity,
    /// The section concerned (a relocation section or a target section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// Offset inside `section` (a relocation's `r_offset`, or an entry offset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The symbol concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
}

impl Finding {
    /// A finding of `rule`, with the rule's severity, without location.
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        Finding {
            rule,
            severity: rule.severity(),
            section: None,
            offset: None,
            symbol: None,
            message: message.into(),
        }
    }

    /// The same finding at another severity (a rule whose weight depends on
    /// the target kernel).
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Attach a section.
    pub fn in_section(mut self, section: impl Into<String>) -> Self {
        self.section = Some(section.into());
        self
    }

    /// Attach an offset.
    pub fn at(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Attach a symbol.
    pub fn symbol(mut self, symbol: impl Into<String>) -> Self {
        self.symbol = Some(symbol.into());
        self
    }

    /// Attach the place of relocation entry `r` of section `section`:
    /// the relocation section, `r_offset` and the symbol it references.
    pub fn at_entry(self, elf: &Elf, section: usize, r: &Reloc) -> Self {
        let symbol = elf
            .symbols
            .get(r.sym as usize)
            .map(|s| s.display_name())
            .unwrap_or_default();
        self.in_section(elf.section_name(section))
            .at(r.offset)
            .symbol(symbol)
    }

    /// Is this an error?
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Finding {
    /// `section S, offset 0xN, symbol 'X': message`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(s) = &self.section {
            parts.push(format!("section {s}"));
        }
        if let Some(o) = self.offset {
            parts.push(format!("offset 0x{o:x}"));
        }
        if let Some(s) = &self.symbol {
            parts.push(format!("symbol '{s}'"));
        }
        if parts.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", parts.join(", "), self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique_and_kebab_case() {
        let mut ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
        for id in &ids {
            assert!(
                id.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'.'),
                "{id}"
            );
        }
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
