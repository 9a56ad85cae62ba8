//! ELF access: a read model that mirrors the format and a writer that never
//! renumbers or rewrites what it was not asked to change.
//!
//! Reading goes through the `object` crate's low-level ELF parsers and copies
//! the headers into plain, class-agnostic structs ([`Elf`], [`Section`],
//! [`Symbol`], [`Reloc`]). Writing ([`write::Edit`]) patches a copy of the
//! original bytes: sections that shrink are rewritten in place, sections that
//! grow and new sections are appended, and the section header table is written
//! last. Existing section and symbol indices never change.

pub mod read;
pub mod signature;
pub mod write;

pub use read::{Elf, Reloc, RelocSection, Section, Symbol};

/// Section flag of a RELA section holding klp relocations.
pub const SHF_RELA_LIVEPATCH: u64 = 0x0010_0000;
/// Symbol section index of a symbol resolved by the livepatch core.
pub const SHN_LIVEPATCH: u16 = 0xff20;
/// `SHF_ALLOC`: the section occupies memory at run time.
pub const SHF_ALLOC: u64 = 0x2;
/// `SHF_INFO_LINK`: `sh_info` holds a section index.
pub const SHF_INFO_LINK: u64 = 0x40;
/// `SHF_EXECINSTR`.
pub const SHF_EXECINSTR: u64 = 0x4;
/// `SHF_WRITE`.
pub const SHF_WRITE: u64 = 0x1;
/// `SHT_SYMTAB`.
pub const SHT_SYMTAB: u32 = 2;
/// `SHT_STRTAB`.
pub const SHT_STRTAB: u32 = 3;
/// `SHT_RELA`.
pub const SHT_RELA: u32 = 4;
/// `SHT_NOBITS`.
pub const SHT_NOBITS: u32 = 8;
/// `SHT_REL`.
pub const SHT_REL: u32 = 9;
/// `SHN_UNDEF`.
pub const SHN_UNDEF: u16 = 0;
/// First reserved section index.
pub const SHN_LORESERVE: u32 = 0xff00;
/// `SHN_XINDEX`: the real index is in `SHT_SYMTAB_SHNDX` or section 0.
pub const SHN_XINDEX: u16 = 0xffff;

/// Render bytes (an ELF name) for a message: lossy UTF-8.
pub fn show_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}
