//! The write side: a minimal editor over an [`Elf`]'s original bytes.
//!
//! Why not `object::build::elf::Builder`: it refuses `SHT_GROUP` sections
//! (real on s390x), cannot re-read a module whose RELA section has `SHF_ALLOC`
//! (every converted livepatch module), and rebuilds string tables and symbol
//! order. A livepatch module's relocations refer to symbol indices that the
//! kernel keeps as built, so this editor changes only what it is told to:
//!
//! * no section or symbol is renumbered; new sections get the next indices;
//! * a section whose new contents fit is rewritten in place (the rest of its
//!   old extent zeroed); one that grows, and every new section, is appended;
//! * the section header table is written after everything else;
//! * every other byte of the input stays where it was, as it was.

use std::collections::BTreeMap;

use super::read::{Elf, Reloc, Section};
use super::{SHN_LORESERVE, SHT_NOBITS};

/// Byte-order and class aware encoder.
#[derive(Debug, Clone, Copy)]
pub struct Encoder {
    /// Big endian?
    pub big_endian: bool,
    /// ELFCLASS64?
    pub is_64: bool,
}

impl Encoder {
    /// The encoder matching `elf`.
    pub fn of(elf: &Elf) -> Encoder {
        Encoder {
            big_endian: elf.big_endian,
            is_64: elf.is_64,
        }
    }

    fn put(&self, out: &mut Vec<u8>, v: u64, len: usize) {
        let bytes = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        if self.big_endian {
            out.extend_from_slice(&bytes[8 - len..]);
        } else {
            out.extend_from_slice(&bytes[..len]);
        }
    }

    /// Append a 16-bit value.
    pub fn u16(&self, out: &mut Vec<u8>, v: u16) {
        self.put(out, v.into(), 2)
    }
    /// Append a 32-bit value.
    pub fn u32(&self, out: &mut Vec<u8>, v: u32) {
        self.put(out, v.into(), 4)
    }
    /// Append a class-sized word (`Elf32_Addr`/`Elf64_Addr`).
    pub fn word(&self, out: &mut Vec<u8>, v: u64) {
        self.put(out, v, if self.is_64 { 8 } else { 4 })
    }

    /// Encode one RELA entry.
    pub fn rela(&self, out: &mut Vec<u8>, r: &Reloc) {
        self.word(out, r.offset);
        self.word(out, self.r_info(r));
        self.word(out, r.addend as u64);
    }

    /// Encode one REL entry (the addend stays implicit).
    pub fn rel(&self, out: &mut Vec<u8>, r: &Reloc) {
        self.word(out, r.offset);
        self.word(out, self.r_info(r));
    }

    fn r_info(&self, r: &Reloc) -> u64 {
        if self.is_64 {
            (u64::from(r.sym) << 32) | u64::from(r.r_type)
        } else {
            (u64::from(r.sym) << 8) | u64::from(r.r_type & 0xff)
        }
    }

    /// Encode one section header.
    pub fn section_header(&self, out: &mut Vec<u8>, s: &Section) {
        self.u32(out, s.sh_name);
        self.u32(out, s.sh_type);
        self.word(out, s.sh_flags);
        self.word(out, s.sh_addr);
        self.word(out, s.sh_offset);
        self.word(out, s.sh_size);
        self.u32(out, s.sh_link);
        self.u32(out, s.sh_info);
        self.word(out, s.sh_addralign);
        self.word(out, s.sh_entsize);
    }
}

/// A set of changes to apply to an [`Elf`], then [`Edit::finish`] to get the bytes.
#[derive(Debug)]
pub struct Edit<'e, 'a> {
    elf: &'e Elf<'a>,
    /// New contents by section index (`None`: unchanged); a vector, not a
    /// map: a conversion may rewrite every one of 100,000 sections.
    contents: Vec<Option<Vec<u8>>>,
    /// How many of `contents` are `Some`.
    rewritten: usize,
    /// New sections: the header and where its bytes are in `new_data`.
    new_sections: Vec<(Section<'a>, std::ops::Range<usize>)>,
    /// The bytes of every new section, one after the other: one buffer,
    /// not one a section (a conversion may add 50,000).
    new_data: Vec<u8>,
    shstr_extra: Vec<u8>,
    str_extra: Vec<u8>,
    str_base: u64,
    /// (symbol index, st_name, st_shndx), applied in order.
    symbol_patches: Vec<(usize, u32, u16)>,
    flags: BTreeMap<usize, u64>,
}

impl<'e, 'a> Edit<'e, 'a> {
    /// Start an edit of `elf`.
    pub fn new(elf: &'e Elf<'a>) -> Self {
        let str_base = elf
            .symtab
            .and_then(|s| elf.sections.get(elf.sections[s].sh_link as usize))
            .map_or(0, |strtab| strtab.sh_size);
        Edit {
            elf,
            contents: Vec::new(),
            rewritten: 0,
            new_sections: Vec::new(),
            new_data: Vec::new(),
            shstr_extra: Vec::new(),
            str_extra: Vec::new(),
            str_base,
            symbol_patches: Vec::new(),
            flags: BTreeMap::new(),
        }
    }

    /// Make room for `sections` new sections holding `bytes` in all (a
    /// hint, as `Vec::reserve`).
    pub fn reserve_new(&mut self, sections: usize, bytes: usize) {
        self.new_sections.reserve(sections);
        self.new_data.reserve(bytes);
    }

    /// Replace the contents of an existing section (its size follows).
    pub fn set_contents(&mut self, index: usize, bytes: Vec<u8>) {
        if self.contents.len() <= index {
            self.contents
                .resize_with(self.elf.sections.len().max(index + 1), || None);
        }
        if self.contents[index].replace(bytes).is_none() {
            self.rewritten += 1;
        }
    }

    /// Add a section; its name is appended to the section name table.
    /// `header.sh_name`, `sh_offset` and `sh_size` are filled in here.
    /// Returns the new section's index.
    pub fn add_section(&mut self, name: &[u8], header: Section<'a>, bytes: Vec<u8>) -> usize {
        self.add_section_with(name, header, |out| out.extend_from_slice(&bytes))
    }

    /// [`Edit::add_section`], the contents written by `fill`, which appends
    /// them to the vector it is given (and must not touch what is there).
    pub fn add_section_with(
        &mut self,
        name: &[u8],
        mut header: Section<'a>,
        fill: impl FnOnce(&mut Vec<u8>),
    ) -> usize {
        let shstr_size = self
            .elf
            .sections
            .get(self.elf.shstrndx as usize)
            .map_or(0, |s| s.sh_size);
        header.sh_name = (shstr_size + self.shstr_extra.len() as u64) as u32;
        self.shstr_extra.extend_from_slice(name);
        self.shstr_extra.push(0);
        header.index = self.elf.sections.len() + self.new_sections.len();
        // The name lives in the section name table; the header keeps none.
        header.name = &[];
        let start = self.new_data.len();
        fill(&mut self.new_data);
        header.sh_size = (self.new_data.len() - start) as u64;
        let index = header.index;
        self.new_sections.push((header, start..self.new_data.len()));
        index
    }

    /// Change the `sh_flags` of an existing section.
    pub fn set_flags(&mut self, index: usize, flags: u64) {
        self.flags.insert(index, flags);
    }

    /// Append a string to the symbol string table; returns its `st_name`.
    pub fn add_symbol_name(&mut self, name: &[u8]) -> u32 {
        let off = self.str_base + self.str_extra.len() as u64;
        self.str_extra.extend_from_slice(name);
        self.str_extra.push(0);
        off as u32
    }

    /// Change a symbol's `st_name` and `st_shndx` (in place in `.symtab`).
    pub fn patch_symbol(&mut self, index: usize, st_name: u32, st_shndx: u16) {
        self.symbol_patches.push((index, st_name, st_shndx));
    }

    /// Does the edit change anything?
    pub fn is_empty(&self) -> bool {
        self.rewritten == 0
            && self.new_sections.is_empty()
            && self.str_extra.is_empty()
            && self.symbol_patches.is_empty()
            && self.flags.is_empty()
    }

    /// Produce the new file.
    pub fn finish(mut self) -> Result<Vec<u8>, WriteError> {
        let elf = self.elf;
        if self.is_empty() {
            return Ok(elf.data.to_vec());
        }
        let enc = Encoder::of(elf);
        self.fold_tables()?;

        let old_count = elf.sections.len();
        let count = old_count + self.new_sections.len();
        let ent = elf.shentsize as usize;
        let sht_len = ent * old_count;
        // The output's size is known up to alignment padding: reserve it
        // once, so the file is never copied by a growing vector.
        let padded = |len: usize, align: u64| len + align.clamp(1, MAX_ALIGN) as usize - 1;
        // (An alignment beyond MAX_ALIGN is refused below, once named.)
        let appended: usize = self
            .contents
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let (b, h) = (b.as_ref()?, &elf.sections[i]);
                (!fits(h, b)).then(|| padded(b.len(), h.sh_addralign))
            })
            .chain(
                self.new_sections
                    .iter()
                    .map(|(h, r)| padded(r.len(), h.sh_addralign)),
            )
            .sum();
        let mut out = Vec::with_capacity(elf.data.len() + appended + (count + 1) * ent + 8);
        out.extend_from_slice(elf.data);
        let data_end = elf
            .sections
            .iter()
            .filter(|s| s.index != 0 && s.sh_type != SHT_NOBITS)
            .map(|s| s.sh_offset + s.sh_size)
            .max()
            .unwrap_or(0);
        if elf.shoff + sht_len as u64 == out.len() as u64 && data_end <= elf.shoff {
            out.truncate(elf.shoff as usize);
        }

        // Old sections with new contents: in place when they fit, else
        // appended. (index, offset, size), in index order.
        let mut placed: Vec<(usize, u64, u64)> = Vec::with_capacity(self.rewritten);
        let contents = std::mem::take(&mut self.contents);
        for (index, bytes) in contents
            .iter()
            .enumerate()
            .filter_map(|(i, b)| Some((i, b.as_ref()?)))
        {
            let h = &elf.sections[index];
            let offset = if fits(h, bytes) {
                let start = h.sh_offset as usize;
                let old_end = start + h.sh_size as usize;
                out[start..start + bytes.len()].copy_from_slice(bytes);
                out[start + bytes.len()..old_end].fill(0);
                h.sh_offset
            } else {
                append_aligned(&mut out, bytes, h.sh_addralign, || h.display_name())?
            };
            placed.push((index, offset, bytes.len() as u64));
        }
        drop(contents);
        let mut new_offsets = Vec::with_capacity(self.new_sections.len());
        for (h, range) in &self.new_sections {
            // New sections are aligned by this tool (to 8 at most).
            let bytes = &self.new_data[range.clone()];
            new_offsets.push(append_aligned(
                &mut out,
                bytes,
                h.sh_addralign,
                String::new,
            )?);
        }

        let shoff = append_aligned(&mut out, &[], if elf.is_64 { 8 } else { 4 }, String::new)?;
        if !elf.is_64 {
            let limit = u64::from(u32::MAX);
            let too_big = placed.iter().any(|&(_, o, s)| o > limit || s > limit)
                || new_offsets.iter().any(|&o| o > limit)
                || self.new_sections.iter().any(|(h, _)| h.sh_size > limit);
            if too_big || shoff > limit {
                return Err(WriteError::Elf32TooLarge);
            }
        }

        // The section header table: the input's, byte for byte, with the
        // entries that changed encoded over theirs; then the new ones.
        let table = out.len();
        out.extend_from_slice(&elf.data[elf.shoff as usize..][..sht_len]);
        let mut entry = Vec::with_capacity(ent);
        let mut put = |out: &mut Vec<u8>, i: usize, h: &Section| {
            if *h != elf.sections[i] {
                entry.clear();
                enc.section_header(&mut entry, h);
                entry.resize(ent, 0);
                out[table + i * ent..table + (i + 1) * ent].copy_from_slice(&entry);
            }
        };
        for &(i, offset, size) in &placed {
            let mut h = elf.sections[i].clone();
            h.sh_offset = offset;
            h.sh_size = size;
            if let Some(&f) = self.flags.get(&i) {
                h.sh_flags = f;
            }
            put(&mut out, i, &h);
        }
        for (&i, &f) in &self.flags {
            if placed.binary_search_by_key(&i, |p| p.0).is_err() {
                let mut h = elf.sections[i].clone();
                h.sh_flags = f;
                put(&mut out, i, &h);
            }
        }
        if count as u64 >= u64::from(SHN_LORESERVE) {
            let mut h = elf.sections[0].clone();
            h.sh_size = count as u64;
            put(&mut out, 0, &h);
        }
        for ((h, _), &offset) in self.new_sections.iter().zip(&new_offsets) {
            let before = out.len();
            let mut h = h.clone();
            h.sh_offset = offset;
            enc.section_header(&mut out, &h);
            out.resize(before + ent, 0);
        }

        // ELF header: e_shoff, e_shnum.
        let (shoff_at, shnum_at) = if elf.is_64 {
            (0x28, 0x3c)
        } else {
            (0x20, 0x30)
        };
        let mut field = Vec::new();
        enc.word(&mut field, shoff);
        out[shoff_at..shoff_at + field.len()].copy_from_slice(&field);
        field.clear();
        let shnum = if count as u64 >= u64::from(SHN_LORESERVE) {
            0
        } else {
            count as u16
        };
        enc.u16(&mut field, shnum);
        out[shnum_at..shnum_at + 2].copy_from_slice(&field);
        Ok(out)
    }

    /// Turn the string additions and symbol patches into section contents.
    fn fold_tables(&mut self) -> Result<(), WriteError> {
        let elf = self.elf;
        if !self.shstr_extra.is_empty() {
            let i = elf.shstrndx as usize;
            let mut t = elf.section_data(i).to_vec();
            t.extend_from_slice(&self.shstr_extra);
            self.set_contents(i, t);
        }
        if self.str_extra.is_empty() && self.symbol_patches.is_empty() {
            return Ok(());
        }
        let symtab = elf.symtab.ok_or(WriteError::NoSymtab)?;
        if !self.str_extra.is_empty() {
            let i = elf.sections[symtab].sh_link as usize;
            let mut t = elf.section_data(i).to_vec();
            t.extend_from_slice(&self.str_extra);
            self.set_contents(i, t);
        }
        let enc = Encoder::of(elf);
        let mut t = elf.section_data(symtab).to_vec();
        let ent = elf.sym_entsize() as usize;
        let shndx_at = if elf.is_64 { 6 } else { 14 };
        for &(index, st_name, st_shndx) in &self.symbol_patches {
            let base = index * ent;
            let mut b = Vec::with_capacity(6);
            enc.u32(&mut b, st_name);
            t[base..base + 4].copy_from_slice(&b);
            b.clear();
            enc.u16(&mut b, st_shndx);
            t[base + shndx_at..base + shndx_at + 2].copy_from_slice(&b);
        }
        self.set_contents(symtab, t);
        Ok(())
    }
}

/// Why the writer cannot produce the edited file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The module has no symbol table to rename symbols in.
    NoSymtab,
    /// An ELF32 result would need offsets beyond 4 GiB.
    Elf32TooLarge,
    /// A section to move has a larger alignment than the writer honours
    /// ([`MAX_ALIGN`]): the input's doing, not the writer's.
    Alignment {
        /// The section's name.
        section: String,
        /// Its `sh_addralign`.
        align: u64,
    },
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::NoSymtab => f.write_str("no .symtab to patch"),
            WriteError::Elf32TooLarge => {
                f.write_str("the result would exceed the 4 GiB limit of ELF32")
            }
            WriteError::Alignment { section, align } => write!(
                f,
                "section {section}: sh_addralign 0x{align:x}; the conversion must move it to let it grow, and moves sections aligned to at most 0x{MAX_ALIGN:x} (a page)"
            ),
        }
    }
}

impl std::error::Error for WriteError {}

/// The largest section alignment the writer honours when moving a section.
/// The sections a conversion moves (string and symbol tables, relocation
/// sections) are aligned to 8 at most in any real module; a page bounds
/// the padding a hostile input can make the output carry.
pub const MAX_ALIGN: u64 = 4096;

/// Do new contents `bytes` fit in section `h`'s extent?
fn fits(h: &Section, bytes: &[u8]) -> bool {
    h.sh_type != SHT_NOBITS && (bytes.len() as u64) <= h.sh_size
}

/// Append `bytes` at the next multiple of `align`, zero-padding; return the
/// offset. `section` names it for the error.
fn append_aligned(
    out: &mut Vec<u8>,
    bytes: &[u8],
    align: u64,
    section: impl FnOnce() -> String,
) -> Result<u64, WriteError> {
    if align > MAX_ALIGN {
        return Err(WriteError::Alignment {
            section: section(),
            align,
        });
    }
    let align = align.max(1) as usize;
    let start = out.len().div_ceil(align) * align;
    out.resize(start, 0);
    out.extend_from_slice(bytes);
    Ok(start as u64)
}
