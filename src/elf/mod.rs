//! ELF access: a read model that mirrors the format and a writer that never
//! renumbers or rewrites what it was not asked to change.
//!
//! Reading goes through the `object` crate's low-level ELF parsers and gives
//! plain, class-agnostic structs ([`Elf`], [`Section`], [`Symbol`],
//! [`Reloc`]): the symbols copied, the section headers and relocations
//! decoded from the file's bytes when asked for ([`Sections`],
//! [`RelocSection`]). Writing ([`write::Edit`]) patches a copy of the
//! original bytes: sections that shrink are rewritten in place, sections that
//! grow and new sections are appended, and the section header table is written
//! last. Existing section and symbol indices never change.

pub mod read;
pub mod signature;
pub mod write;

pub use read::{Elf, Reloc, RelocSection, Section, SectionIter, Sections, Symbol};

/// The format's constants (machines, relocation types, bindings, ...) as
/// the `object` crate defines them. The rest of the crate reaches them
/// through here, so `crate::elf` is the one ELF namespace it imports.
pub use object::elf as abi;

/// Section flag of a RELA section holding klp relocations (not in `object`).
pub const SHF_RELA_LIVEPATCH: u64 = 0x0010_0000;
/// Symbol section index of a symbol resolved by the livepatch core (not in `object`).
pub const SHN_LIVEPATCH: u16 = 0xff20;
/// `R_PPC64_ENTRY` (not in `object` 0.36): marks a function's global entry
/// code, which a linker may rewrite; never a klp relocation.
pub const R_PPC64_ENTRY: u32 = 118;

// `object`'s section flags and indices, widened to the types of this
// crate's model ([`Section::sh_flags`] is u64 for both ELF classes).
/// `SHF_WRITE`.
pub const SHF_WRITE: u64 = abi::SHF_WRITE as u64;
/// `SHF_ALLOC`: the section occupies memory at run time.
pub const SHF_ALLOC: u64 = abi::SHF_ALLOC as u64;
/// `SHF_EXECINSTR`.
pub const SHF_EXECINSTR: u64 = abi::SHF_EXECINSTR as u64;
/// `SHF_INFO_LINK`: `sh_info` holds a section index.
pub const SHF_INFO_LINK: u64 = abi::SHF_INFO_LINK as u64;
/// First reserved section index.
pub const SHN_LORESERVE: u32 = abi::SHN_LORESERVE as u32;
pub use abi::{SHN_UNDEF, SHN_XINDEX, SHT_NOBITS, SHT_REL, SHT_RELA, SHT_STRTAB, SHT_SYMTAB};

/// Render bytes (an ELF name) for a message ([`crate::names::Show`]: UTF-8
/// as it is, other bytes as `\xNN`).
pub fn show_name(name: &[u8]) -> String {
    crate::names::show(name).to_string()
}
