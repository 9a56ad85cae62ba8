//! The write side: a minimal editor over an [`Elf`]'s original bytes. Its
//! result, an [`Output`], is the new file as pieces (the input's bytes
//! borrowed, the new ones owned), written one after the other: the file
//! is never held whole in memory.
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
use std::mem::{offset_of, size_of};

use object::elf::{
    FileHeader32, FileHeader64, Rela32, Rela64, SectionHeader32, SectionHeader64, Sym32, Sym64,
};
use object::endian::{BigEndian, Endian, Endianness, LittleEndian, I32, I64, U16, U32, U64};
use object::pod::{bytes_of, Pod};

use super::read::{Elf, Reloc, Section};
use super::{SHN_LORESERVE, SHT_NOBITS};

/// Encodes the file's records in its class and byte order, through
/// `object`'s endian-aware record types ([`Rela64`], [`SectionHeader32`],
/// ...), so no field's offset or width is written out by hand.
#[derive(Debug, Clone, Copy)]
pub struct Encoder {
    /// The file's byte order.
    pub endian: Endianness,
    /// ELFCLASS64?
    pub is_64: bool,
}

impl Encoder {
    /// The encoder matching `elf`.
    pub fn of(elf: &Elf) -> Encoder {
        Encoder {
            endian: if elf.big_endian {
                Endianness::Big
            } else {
                Endianness::Little
            },
            is_64: elf.is_64,
        }
    }

    /// Append one RELA entry per relocation. The byte order is chosen once
    /// for the whole slice, not per field: a conversion writes 200,000
    /// entries, and this keeps the loop as tight as hand-written shifts.
    pub fn relas(&self, out: &mut Vec<u8>, entries: &[Reloc]) {
        match self.endian {
            Endianness::Little => relas_in(LittleEndian, self.is_64, out, entries),
            Endianness::Big => relas_in(BigEndian, self.is_64, out, entries),
        }
    }

    /// Append one section header. ELF32 fields take the low 32 bits; the
    /// writer refuses an ELF32 result whose offsets or sizes do not fit.
    pub fn section_header(&self, out: &mut Vec<u8>, s: &Section) {
        let e = self.endian;
        if self.is_64 {
            out.extend_from_slice(bytes_of(&SectionHeader64 {
                sh_name: U32::new(e, s.sh_name),
                sh_type: U32::new(e, s.sh_type),
                sh_flags: U64::new(e, s.sh_flags),
                sh_addr: U64::new(e, s.sh_addr),
                sh_offset: U64::new(e, s.sh_offset),
                sh_size: U64::new(e, s.sh_size),
                sh_link: U32::new(e, s.sh_link),
                sh_info: U32::new(e, s.sh_info),
                sh_addralign: U64::new(e, s.sh_addralign),
                sh_entsize: U64::new(e, s.sh_entsize),
            }));
        } else {
            out.extend_from_slice(bytes_of(&SectionHeader32 {
                sh_name: U32::new(e, s.sh_name),
                sh_type: U32::new(e, s.sh_type),
                sh_flags: U32::new(e, s.sh_flags as u32),
                sh_addr: U32::new(e, s.sh_addr as u32),
                sh_offset: U32::new(e, s.sh_offset as u32),
                sh_size: U32::new(e, s.sh_size as u32),
                sh_link: U32::new(e, s.sh_link),
                sh_info: U32::new(e, s.sh_info),
                sh_addralign: U32::new(e, s.sh_addralign as u32),
                sh_entsize: U32::new(e, s.sh_entsize as u32),
            }));
        }
    }

    /// Set a symbol's `st_name` and `st_shndx` in `symtab`, the symbol
    /// table's bytes; `index` must be one of its entries.
    fn patch_symbol(&self, symtab: &mut [u8], index: usize, st_name: u32, st_shndx: u16) {
        let e = self.endian;
        let (base, name_at, shndx_at) = if self.is_64 {
            type S = Sym64<Endianness>;
            (
                index * size_of::<S>(),
                offset_of!(S, st_name),
                offset_of!(S, st_shndx),
            )
        } else {
            type S = Sym32<Endianness>;
            (
                index * size_of::<S>(),
                offset_of!(S, st_name),
                offset_of!(S, st_shndx),
            )
        };
        put(symtab, base + name_at, U32::new(e, st_name));
        put(symtab, base + shndx_at, U16::new(e, st_shndx));
    }

    /// Set `sh_offset` in `entry`, one encoded section header. An ELF32
    /// offset must fit in 32 bits (checked by the caller).
    fn patch_section_offset(&self, entry: &mut [u8], offset: u64) {
        let e = self.endian;
        if self.is_64 {
            type S = SectionHeader64<Endianness>;
            put(entry, offset_of!(S, sh_offset), U64::new(e, offset));
        } else {
            type S = SectionHeader32<Endianness>;
            put(entry, offset_of!(S, sh_offset), U32::new(e, offset as u32));
        }
    }

    /// Set the ELF header's `e_shoff` and `e_shnum` in `file`. An ELF32
    /// `shoff` must fit in 32 bits (checked by the caller).
    fn patch_file_header(&self, file: &mut [u8], shoff: u64, shnum: u16) {
        let e = self.endian;
        if self.is_64 {
            type H = FileHeader64<Endianness>;
            put(file, offset_of!(H, e_shoff), U64::new(e, shoff));
            put(file, offset_of!(H, e_shnum), U16::new(e, shnum));
        } else {
            type H = FileHeader32<Endianness>;
            put(file, offset_of!(H, e_shoff), U32::new(e, shoff as u32));
            put(file, offset_of!(H, e_shnum), U16::new(e, shnum));
        }
    }
}

/// [`Encoder::relas`] in one byte order. ELF32 entries take the low 32 bits
/// of the offset and addend and the low 8 of the type, as `ELF32_R_INFO`.
/// MIPS64's own `r_info` layout is never needed: the reader refuses MIPS64.
fn relas_in<E: Endian>(e: E, is_64: bool, out: &mut Vec<u8>, entries: &[Reloc]) {
    if is_64 {
        for r in entries {
            out.extend_from_slice(bytes_of(&Rela64 {
                r_offset: U64::new(e, r.offset),
                r_info: Rela64::r_info(e, false, r.sym, r.r_type),
                r_addend: I64::new(e, r.addend),
            }));
        }
    } else {
        for r in entries {
            out.extend_from_slice(bytes_of(&Rela32 {
                r_offset: U32::new(e, r.offset as u32),
                r_info: Rela32::r_info(e, r.sym, r.r_type as u8),
                r_addend: I32::new(e, r.addend as i32),
            }));
        }
    }
}

/// Write `value`'s bytes over `bytes` at `at`.
fn put<T: Pod>(bytes: &mut [u8], at: usize, value: T) {
    bytes[at..at + size_of::<T>()].copy_from_slice(bytes_of(&value));
}

/// A set of changes to apply to an [`Elf`], then [`Edit::finish`] to get the bytes.
#[derive(Debug)]
pub struct Edit<'e, 'a> {
    elf: &'e Elf<'a>,
    /// New contents by section index (`None`: unchanged); a vector, not a
    /// map: a conversion may rewrite every one of 40,000 sections.
    contents: Vec<Option<Contents>>,
    /// How many of `contents` are `Some`.
    rewritten: usize,
    /// New sections: alignment and where the bytes are in `new_data`.
    new_sections: Vec<NewSection>,
    /// Their section headers, encoded as the table holds them (`sh_offset`
    /// set once the layout is known): 64 bytes a section, not a `Section`
    /// of 88 kept until the table is written.
    new_headers: Vec<u8>,
    /// The bytes of every new section, one after the other: one buffer,
    /// not one a section (a conversion may add 30,000).
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
            .and_then(|s| elf.sections.get(elf.sections.at(s).sh_link as usize))
            .map_or(0, |strtab| strtab.sh_size);
        Edit {
            elf,
            contents: Vec::new(),
            rewritten: 0,
            new_sections: Vec::new(),
            new_headers: Vec::new(),
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
        self.new_headers
            .reserve(sections * usize::from(self.elf.shentsize));
        self.new_data.reserve(bytes);
    }

    /// Make room for new names: `section_names` bytes of section names
    /// ([`Edit::add_section`]) and `symbol_names` of symbol names
    /// ([`Edit::add_symbol_name`]), a NUL a name counted (a hint, as
    /// `Vec::reserve_exact`). Grown by doubling instead, the tables of
    /// 20,000 names held up to twice their bytes, and left each smaller
    /// copy behind in the heap, until the output was written.
    pub fn reserve_names(&mut self, section_names: usize, symbol_names: usize) {
        self.shstr_extra.reserve_exact(section_names);
        self.str_extra.reserve_exact(symbol_names);
    }

    /// Replace the contents of an existing section (its size follows).
    pub fn set_contents(&mut self, index: usize, bytes: Vec<u8>) {
        self.put_contents(index, Contents::Whole(bytes));
    }

    /// New contents for section `index`.
    fn put_contents(&mut self, index: usize, contents: Contents) {
        if self.contents.len() <= index {
            self.contents
                .resize_with(self.elf.sections.len().max(index + 1), || None);
        }
        if self.contents[index].replace(contents).is_none() {
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
        let at = self.new_headers.len();
        Encoder::of(self.elf).section_header(&mut self.new_headers, &header);
        self.new_headers
            .resize(at + usize::from(self.elf.shentsize), 0);
        self.new_sections.push(NewSection {
            align: header.sh_addralign,
            bytes: start..self.new_data.len(),
        });
        header.index
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

    /// Produce the new file in memory: [`Edit::into_output`] written into
    /// a vector, for callers that want the bytes (tests, tools).
    pub fn finish(self) -> Result<Vec<u8>, WriteError> {
        Ok(self.into_output()?.to_vec())
    }

    /// Produce the new file as [`Output`]: the pieces to write, the input's
    /// own bytes borrowed, never copied into one buffer.
    pub fn into_output(mut self) -> Result<Output<'a>, WriteError> {
        let elf = self.elf;
        if self.is_empty() {
            return Ok(Output::whole(elf.data));
        }
        let enc = Encoder::of(elf);
        self.fold_tables()?;

        let old_count = elf.sections.len();
        let count = old_count + self.new_sections.len();
        let ent = elf.shentsize as usize;
        let sht_len = ent * old_count;
        let data_end = elf
            .sections
            .iter()
            .filter(|s| s.index != 0 && s.sh_type != SHT_NOBITS)
            .map(|s| s.sh_offset + s.sh_size)
            .max()
            .unwrap_or(0);
        // The input's bytes, less its section header table when that ends
        // the file: the table is written anew after everything else.
        let base = if elf.shoff + sht_len as u64 == elf.data.len() as u64 && data_end <= elf.shoff {
            elf.shoff as usize
        } else {
            elf.data.len()
        };
        let mut out = Layout {
            base,
            end: base as u64,
            overlays: Vec::with_capacity(self.rewritten + 1),
            tail: Vec::new(),
            owned: Vec::with_capacity(self.rewritten + 3),
        };

        // Old sections with new contents: in place when they fit (the rest
        // of their old extent zeroed), else appended. (index, offset,
        // size), in index order.
        let mut placed: Vec<(usize, u64, u64)> = Vec::with_capacity(self.rewritten);
        let contents = std::mem::take(&mut self.contents);
        for (index, contents) in contents
            .into_iter()
            .enumerate()
            .filter_map(|(i, b)| Some((i, b?)))
        {
            let h = &elf.sections.at(index);
            let bytes = match contents {
                Contents::Whole(bytes) => bytes,
                Contents::Appended(more) => {
                    // The old bytes from the input, the new after them, at
                    // the end: they no longer fit where they were.
                    let old = h.sh_offset as usize..(h.sh_offset + h.sh_size) as usize;
                    let offset =
                        out.append_aligned(Piece::Input(old), h.sh_addralign, || h.display_name())?;
                    let size = h.sh_size + more.len() as u64;
                    let more = out.own(more);
                    out.push(more);
                    placed.push((index, offset, size));
                    continue;
                }
            };
            let size = bytes.len() as u64;
            let offset = if fits(h, &bytes) {
                out.overlays.push(Overlay {
                    start: h.sh_offset as usize,
                    buf: out.owned.len(),
                    end: (h.sh_offset + h.sh_size) as usize,
                });
                out.owned.push(bytes);
                h.sh_offset
            } else {
                let buf = out.own(bytes);
                out.append_aligned(buf, h.sh_addralign, || h.display_name())?
            };
            placed.push((index, offset, size));
        }
        let mut new_offsets = Vec::with_capacity(self.new_sections.len());
        let new_data = out.owned.len();
        out.owned.push(std::mem::take(&mut self.new_data));
        for s in &self.new_sections {
            // New sections are aligned by this tool (to 8 at most).
            let piece = Piece::Owned(new_data, s.bytes.clone());
            new_offsets.push(out.append_aligned(piece, s.align, String::new)?);
        }

        let shoff =
            out.append_aligned(Piece::Zeros(0), if elf.is_64 { 8 } else { 4 }, String::new)?;
        if !elf.is_64 {
            let limit = u64::from(u32::MAX);
            let too_big = placed.iter().any(|&(_, o, s)| o > limit || s > limit)
                || new_offsets.iter().any(|&o| o > limit)
                || self
                    .new_sections
                    .iter()
                    .any(|s| s.bytes.len() as u64 > limit);
            if too_big || shoff > limit {
                return Err(WriteError::Elf32TooLarge);
            }
        }

        // The section header table: the input's, byte for byte, with the
        // entries that changed encoded over theirs; then the new ones.
        let mut table = Vec::with_capacity(sht_len);
        table.extend_from_slice(&elf.data[elf.shoff as usize..][..sht_len]);
        let mut entry = Vec::with_capacity(ent);
        let mut put = |table: &mut Vec<u8>, i: usize, h: &Section| {
            if *h != elf.sections.at(i) {
                entry.clear();
                enc.section_header(&mut entry, h);
                entry.resize(ent, 0);
                table[i * ent..(i + 1) * ent].copy_from_slice(&entry);
            }
        };
        for &(i, offset, size) in &placed {
            let mut h = elf.sections.at(i);
            h.sh_offset = offset;
            h.sh_size = size;
            if let Some(&f) = self.flags.get(&i) {
                h.sh_flags = f;
            }
            put(&mut table, i, &h);
        }
        for (&i, &f) in &self.flags {
            if placed.binary_search_by_key(&i, |p| p.0).is_err() {
                let mut h = elf.sections.at(i);
                h.sh_flags = f;
                put(&mut table, i, &h);
            }
        }
        if count as u64 >= u64::from(SHN_LORESERVE) {
            let mut h = elf.sections.at(0);
            h.sh_size = count as u64;
            put(&mut table, 0, &h);
        }
        let table = out.own(table);
        out.push(table);
        let mut new_headers = std::mem::take(&mut self.new_headers);
        for (entry, &offset) in new_headers.chunks_exact_mut(ent).zip(&new_offsets) {
            enc.patch_section_offset(entry, offset);
        }
        let new_headers = out.own(new_headers);
        out.push(new_headers);

        let shnum = if count as u64 >= u64::from(SHN_LORESERVE) {
            0
        } else {
            count as u16
        };
        let header_len = if elf.is_64 {
            size_of::<FileHeader64<Endianness>>()
        } else {
            size_of::<FileHeader32<Endianness>>()
        };
        Ok(out.into_output(elf.data, header_len, |header| {
            enc.patch_file_header(header, shoff, shnum)
        }))
    }

    /// Turn the string additions and symbol patches into section contents.
    /// The additions are dropped once folded (3 MB of names for 50,000 klp
    /// symbols and sections): the section header table is built next.
    fn fold_tables(&mut self) -> Result<(), WriteError> {
        let elf = self.elf;
        // A table grown: written as its old bytes, borrowed from the input,
        // and the additions after them (not a copy of both: 5 MB for 50,000
        // klp symbols and sections). A table without bytes in the file
        // (`SHT_NOBITS`, however unlikely) is given them.
        let appended = |i: usize, extra: Vec<u8>| match elf.sections.get(i) {
            Some(h) if h.sh_type != SHT_NOBITS => Contents::Appended(extra),
            _ => Contents::Whole(extra),
        };
        if !self.shstr_extra.is_empty() {
            let i = elf.shstrndx as usize;
            let t = appended(i, std::mem::take(&mut self.shstr_extra));
            self.put_contents(i, t);
        }
        if self.str_extra.is_empty() && self.symbol_patches.is_empty() {
            return Ok(());
        }
        let symtab = elf.symtab.ok_or(WriteError::NoSymtab)?;
        if !self.str_extra.is_empty() {
            let i = elf.sections.at(symtab).sh_link as usize;
            let t = appended(i, std::mem::take(&mut self.str_extra));
            self.put_contents(i, t);
        }
        let enc = Encoder::of(elf);
        let mut t = elf.section_data(symtab).to_vec();
        for (index, st_name, st_shndx) in std::mem::take(&mut self.symbol_patches) {
            enc.patch_symbol(&mut t, index, st_name, st_shndx);
        }
        self.set_contents(symtab, t);
        Ok(())
    }
}

/// Why the writer cannot produce the edited file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The module has no symbol table to rename symbols in.
    #[error("no .symtab to patch")]
    NoSymtab,
    /// An ELF32 result would need offsets beyond 4 GiB.
    #[error("the result would exceed the 4 GiB limit of ELF32")]
    Elf32TooLarge,
    /// A section to move has a larger alignment than the writer honours
    /// ([`MAX_ALIGN`]): the input's doing, not the writer's.
    #[error(
        "section {section}: sh_addralign 0x{align:x}; the conversion must move it to let it grow, and moves sections aligned to at most 0x{MAX_ALIGN:x} (a page)"
    )]
    Alignment {
        /// The section's name.
        section: String,
        /// Its `sh_addralign`.
        align: u64,
    },
}

/// The largest section alignment the writer honours when moving a section.
/// The sections a conversion moves (string and symbol tables, relocation
/// sections) are aligned to 8 at most in any real module; a page bounds
/// the padding a hostile input can make the output carry.
pub const MAX_ALIGN: u64 = 4096;

/// Do new contents `bytes` fit in section `h`'s extent?
fn fits(h: &Section, bytes: &[u8]) -> bool {
    h.sh_type != SHT_NOBITS && (bytes.len() as u64) <= h.sh_size
}

/// New contents of an existing section.
#[derive(Debug)]
enum Contents {
    /// These bytes.
    Whole(Vec<u8>),
    /// The section's bytes in the input, then these.
    Appended(Vec<u8>),
}

/// A new section as [`Edit`] keeps it until the output is laid out.
#[derive(Debug)]
struct NewSection {
    /// `sh_addralign`.
    align: u64,
    /// Its bytes in [`Edit`]'s `new_data`.
    bytes: std::ops::Range<usize>,
}

/// One piece of an [`Output`].
#[derive(Debug, Clone)]
enum Piece {
    /// Bytes of the input, by range.
    Input(std::ops::Range<usize>),
    /// Bytes of one of the output's own buffers: (buffer, range).
    Owned(usize, std::ops::Range<usize>),
    /// So many zero bytes.
    Zeros(u64),
}

/// New contents written over the input's bytes `start..end`: buffer `buf`,
/// then zeros to `end`.
#[derive(Debug)]
struct Overlay {
    start: usize,
    buf: usize,
    end: usize,
}

/// An [`Output`] being laid out by [`Edit::into_output`]: the input's
/// first `base` bytes with `overlays` over them, then `tail`.
#[derive(Debug)]
struct Layout {
    base: usize,
    /// The output's length so far.
    end: u64,
    /// In the order written (a later one wins where two overlap).
    overlays: Vec<Overlay>,
    tail: Vec<Piece>,
    owned: Vec<Vec<u8>>,
}

impl Layout {
    /// Keep `bytes` as one of the output's buffers; the piece of all of it.
    fn own(&mut self, bytes: Vec<u8>) -> Piece {
        let piece = Piece::Owned(self.owned.len(), 0..bytes.len());
        self.owned.push(bytes);
        piece
    }

    fn push(&mut self, piece: Piece) {
        self.end += piece_len(&piece);
        push_merged(&mut self.tail, piece);
    }

    /// Append `piece` at the next multiple of `align`, zero-padding;
    /// return its offset. `section` names it for the error.
    fn append_aligned(
        &mut self,
        piece: Piece,
        align: u64,
        section: impl FnOnce() -> String,
    ) -> Result<u64, WriteError> {
        if align > MAX_ALIGN {
            return Err(WriteError::Alignment {
                section: section(),
                align,
            });
        }
        let start = self.end.next_multiple_of(align.max(1));
        if start > self.end {
            self.push(Piece::Zeros(start - self.end));
        }
        self.push(piece);
        Ok(start)
    }

    /// The pieces in file order, the ELF header patched by `header`. The
    /// overlays of a sane file are disjoint and leave the ELF header alone:
    /// the header becomes one more overlay, and the input's bytes between
    /// them are borrowed. Any other file (sections overlapping each other
    /// or the header, a header table where the header is) is laid out in
    /// memory as written, later bytes over earlier ones.
    fn into_output<'a>(
        mut self,
        input: &'a [u8],
        header_len: usize,
        header: impl FnOnce(&mut [u8]),
    ) -> Output<'a> {
        let header_len = header_len.min(input.len());
        let mut order: Vec<usize> = (0..self.overlays.len()).collect();
        order.sort_by_key(|&i| (self.overlays[i].start, self.overlays[i].end));
        let disjoint = order
            .iter()
            .map(|&i| &self.overlays[i])
            .filter(|o| o.end > o.start)
            .try_fold(header_len, |at, o| (o.start >= at).then_some(o.end))
            .is_some_and(|end| end <= self.base)
            && header_len <= self.base;
        if !disjoint {
            return self.in_memory(input, header);
        }
        let head = self.owned.len();
        let mut bytes = input[..header_len].to_vec();
        header(&mut bytes);
        self.owned.push(bytes);
        // The pieces over the input's first `base` bytes, in file order,
        // given to `put`: counted first, then pushed into a vector of
        // exactly that many (100,000 of them for 50,000 emptied sections).
        let overlays = |put: &mut dyn FnMut(Piece)| {
            put(Piece::Owned(head, 0..header_len));
            let mut at = header_len;
            for &i in &order {
                let o = &self.overlays[i];
                if o.end == o.start {
                    continue;
                }
                if o.start > at {
                    put(Piece::Input(at..o.start));
                }
                // An emptied section (50,000 relocation sections whose every
                // entry moved) is all zeros: no piece of its empty buffer.
                let len = self.owned[o.buf].len();
                if len > 0 {
                    put(Piece::Owned(o.buf, 0..len));
                }
                if o.end > o.start + len {
                    put(Piece::Zeros((o.end - o.start - len) as u64));
                }
                at = o.end;
            }
            if self.base > at {
                put(Piece::Input(at..self.base));
            }
        };
        let mut count = 0;
        overlays(&mut |_| count += 1);
        let mut pieces = Vec::with_capacity(count + self.tail.len());
        overlays(&mut |p| pieces.push(p));
        pieces.append(&mut self.tail);
        Output {
            input,
            pieces,
            owned: self.owned,
            len: self.end,
        }
    }

    /// [`Layout::into_output`] for a file whose pieces overlap: the whole
    /// output built in memory, in the order the pieces were written.
    fn in_memory<'a>(self, input: &'a [u8], header: impl FnOnce(&mut [u8])) -> Output<'a> {
        let mut out = Vec::with_capacity(self.end as usize);
        out.extend_from_slice(&input[..self.base]);
        for o in &self.overlays {
            let bytes = &self.owned[o.buf];
            out[o.start..o.start + bytes.len()].copy_from_slice(bytes);
            out[o.start + bytes.len()..o.end].fill(0);
        }
        let tail = Output {
            input,
            pieces: self.tail,
            owned: self.owned,
            len: 0,
        };
        for p in &tail.pieces {
            match tail.slice(p) {
                Some(bytes) => out.extend_from_slice(bytes),
                None => out.resize(out.len() + piece_len(p) as usize, 0),
            }
        }
        header(&mut out);
        let len = out.len() as u64;
        Output {
            input,
            pieces: vec![Piece::Owned(0, 0..out.len())],
            owned: vec![out],
            len,
        }
    }
}

/// Append `piece` to `pieces`, as part of the last one where it continues
/// it: the bytes of 50,000 new sections, one after the other in one
/// buffer, are written as one piece, not 50,000.
fn push_merged(pieces: &mut Vec<Piece>, piece: Piece) {
    let merged = match (pieces.last_mut(), &piece) {
        (Some(Piece::Owned(b, r)), Piece::Owned(nb, nr)) if b == nb && r.end == nr.start => {
            r.end = nr.end;
            true
        }
        (Some(Piece::Input(r)), Piece::Input(nr)) if r.end == nr.start => {
            r.end = nr.end;
            true
        }
        (Some(Piece::Zeros(n)), Piece::Zeros(m)) => {
            *n += m;
            true
        }
        _ => false,
    };
    if !merged {
        pieces.push(piece);
    }
}

fn piece_len(p: &Piece) -> u64 {
    match p {
        Piece::Input(r) | Piece::Owned(_, r) => r.len() as u64,
        Piece::Zeros(n) => *n,
    }
}

/// An edited file as the pieces to write, in order: ranges of the input
/// (borrowed), the output's own buffers (new and rewritten sections, the
/// section header table, the ELF header) and zero padding. A conversion
/// writes them to the output file one after the other
/// ([`Output::write_to`]) and never holds the whole output in memory:
/// a 37 MB output cost 37 MB of fresh pages and their faults.
#[derive(Debug)]
pub struct Output<'a> {
    input: &'a [u8],
    pieces: Vec<Piece>,
    owned: Vec<Vec<u8>>,
    len: u64,
}

/// Zeros to write padding from.
static ZEROS: [u8; 1 << 16] = [0; 1 << 16];

impl<'a> Output<'a> {
    /// The unchanged file: all of `input`.
    pub fn whole(input: &'a [u8]) -> Output<'a> {
        Output {
            input,
            pieces: vec![Piece::Input(0..input.len())],
            owned: Vec::new(),
            len: input.len() as u64,
        }
    }

    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Is the file empty?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes of a piece, `None` for zeros.
    fn slice(&self, p: &Piece) -> Option<&[u8]> {
        match p {
            Piece::Input(r) => Some(&self.input[r.clone()]),
            Piece::Owned(b, r) => Some(&self.owned[*b][r.clone()]),
            Piece::Zeros(_) => None,
        }
    }

    /// Write the file to `w`, the pieces gathered into `write_vectored`
    /// calls (up to 1,024 at a time, as `writev` takes them).
    pub fn write_to(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        use std::io::IoSlice;
        const BATCH: usize = 1024;
        let mut batch: Vec<IoSlice<'_>> = Vec::with_capacity(BATCH);
        for p in &self.pieces {
            match self.slice(p) {
                Some([]) => {}
                Some(bytes) => batch.push(IoSlice::new(bytes)),
                None => {
                    let mut n = piece_len(p) as usize;
                    while n > 0 {
                        let take = n.min(ZEROS.len());
                        batch.push(IoSlice::new(&ZEROS[..take]));
                        n -= take;
                        if batch.len() == BATCH {
                            write_all_vectored(w, &mut batch)?;
                        }
                    }
                }
            }
            if batch.len() == BATCH {
                write_all_vectored(w, &mut batch)?;
            }
        }
        write_all_vectored(w, &mut batch)
    }

    /// The file in memory.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len as usize);
        for p in &self.pieces {
            match self.slice(p) {
                Some(bytes) => out.extend_from_slice(bytes),
                None => out.resize(out.len() + piece_len(p) as usize, 0),
            }
        }
        out
    }
}

/// Write all of `batch` to `w`, and empty it.
fn write_all_vectored<'b>(
    w: &mut dyn std::io::Write,
    batch: &mut Vec<std::io::IoSlice<'b>>,
) -> std::io::Result<()> {
    let mut left: &mut [std::io::IoSlice<'b>] = batch;
    while !left.is_empty() {
        match w.write_vectored(left) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => std::io::IoSlice::advance_slices(&mut left, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    batch.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(big: bool, is_64: bool) -> Encoder {
        let endian = if big {
            Endianness::Big
        } else {
            Endianness::Little
        };
        Encoder { endian, is_64 }
    }

    /// The bytes of `ELF32_R_INFO`/`ELF64_R_INFO` and the truncations of
    /// ELF32, in both byte orders, written out by hand once.
    #[test]
    fn relas_in_each_class_and_byte_order() {
        let r = Reloc {
            offset: 0x1122_3344_5566_7788,
            sym: 0x00ab_cdef,
            r_type: 0x1234_5602,
            addend: -2,
        };
        let cases: [(bool, bool, &[u8]); 4] = [
            (false, true, b"\x88\x77\x66\x55\x44\x33\x22\x11\x02\x56\x34\x12\xef\xcd\xab\x00\xfe\xff\xff\xff\xff\xff\xff\xff"),
            (true, true, b"\x11\x22\x33\x44\x55\x66\x77\x88\x00\xab\xcd\xef\x12\x34\x56\x02\xff\xff\xff\xff\xff\xff\xff\xfe"),
            (false, false, b"\x88\x77\x66\x55\x02\xef\xcd\xab\xfe\xff\xff\xff"),
            (true, false, b"\x55\x66\x77\x88\xab\xcd\xef\x02\xff\xff\xff\xfe"),
        ];
        for (big, is_64, want) in cases {
            let mut out = vec![0xaa];
            enc(big, is_64).relas(&mut out, std::slice::from_ref(&r));
            assert_eq!(&out[1..], want, "big endian {big}, ELF64 {is_64}");
        }
    }

    /// A layout: `base` bytes of `input`, `overlays` (start, contents,
    /// end), `tail` pieces of owned buffers after the overlays' ones.
    type Overlays<'a> = &'a [(usize, &'a [u8], usize)];

    fn layout(base: usize, overlays: Overlays, tail: &[&[u8]]) -> Layout {
        let mut l = Layout {
            base,
            end: base as u64,
            overlays: Vec::new(),
            tail: Vec::new(),
            owned: Vec::new(),
        };
        for &(start, bytes, end) in overlays {
            l.overlays.push(Overlay {
                start,
                buf: l.owned.len(),
                end,
            });
            l.owned.push(bytes.to_vec());
        }
        for t in tail {
            let p = l.own(t.to_vec());
            l.append_aligned(p, 8, String::new).unwrap();
        }
        l
    }

    fn written(out: &Output) -> Vec<u8> {
        let mut w = Vec::new();
        out.write_to(&mut w).unwrap();
        assert_eq!(w.len() as u64, out.len());
        assert_eq!(w, out.to_vec());
        w
    }

    /// The pieces of a file whose overlays are disjoint give the bytes the
    /// file laid out in memory has, written or collected; overlays that
    /// overlap (each other or the ELF header) are laid out in memory,
    /// later bytes over earlier ones, as the writer always wrote them.
    #[test]
    fn pieces_give_the_bytes_of_the_file_laid_out_in_memory() {
        let input: Vec<u8> = (0..200u8).collect();
        let header = |h: &mut [u8]| h[3..5].copy_from_slice(b"HH");
        let cases: [(usize, Overlays, &[&[u8]]); 5] = [
            (
                200,
                &[(100, b"abc", 110), (40, b"x", 41), (150, b"", 150)],
                &[b"tail", b"more"],
            ),
            (
                160,
                &[(16, b"0123456789abcdef", 32), (60, b"", 64)],
                &[b"t"],
            ),
            (200, &[], &[]),
            // Overlapping each other: the later wins.
            (200, &[(100, b"aaaa", 120), (110, b"bb", 112)], &[b"t"]),
            // Over the ELF header.
            (200, &[(4, b"zz", 8)], &[]),
        ];
        for (n, (base, overlays, tail)) in cases.into_iter().enumerate() {
            let want = layout(base, overlays, tail)
                .in_memory(&input, header)
                .to_vec();
            let out = layout(base, overlays, tail).into_output(&input, 16, header);
            assert_eq!(written(&out), want, "case {n}");
            let disjoint = n < 3;
            assert_eq!(out.pieces.len() > 1, disjoint, "case {n}: {:?}", out.pieces);
            assert_eq!(&want[3..5], b"HH");
        }
    }

    /// Zero runs longer than the buffer they are written from, and more
    /// pieces than one `writev` takes.
    #[test]
    fn long_zero_runs_and_many_pieces_are_written_whole() {
        let input = vec![7u8; 64];
        let mut l = layout(64, &[], &[]);
        l.push(Piece::Zeros(3 * ZEROS.len() as u64 + 5));
        for i in 0..3000u32 {
            let p = l.own(i.to_le_bytes()[..(i % 4) as usize].to_vec());
            l.push(p);
        }
        let out = l.into_output(&input, 16, |_| {});
        let w = written(&out);
        assert!(w[64..64 + 3 * ZEROS.len() + 5].iter().all(|&b| b == 0));
    }

    /// A piece that continues the last one (the same buffer or the input,
    /// the next byte; zeros after zeros) joins it; any other is its own.
    #[test]
    fn contiguous_pieces_are_merged() {
        let mut p = Vec::new();
        for piece in [
            Piece::Owned(0, 0..4),
            Piece::Owned(0, 4..8),
            Piece::Owned(0, 9..10),
            Piece::Owned(1, 10..12),
            Piece::Zeros(2),
            Piece::Zeros(3),
            Piece::Input(5..6),
            Piece::Input(6..9),
            Piece::Input(10..11),
        ] {
            push_merged(&mut p, piece);
        }
        let got: Vec<String> = p.iter().map(|p| format!("{p:?}")).collect();
        assert_eq!(
            got,
            [
                "Owned(0, 0..8)",
                "Owned(0, 9..10)",
                "Owned(1, 10..12)",
                "Zeros(5)",
                "Input(5..9)",
                "Input(10..11)"
            ]
        );
    }

    /// `e_shoff`/`e_shnum` and `st_name`/`st_shndx` land where the ELF
    /// specification puts them.
    #[test]
    fn patched_fields_at_their_offsets() {
        for (is_64, shoff_at, shnum_at, sym_size, shndx_at) in
            [(true, 0x28, 0x3c, 24, 6), (false, 0x20, 0x30, 16, 14)]
        {
            let e = enc(true, is_64);
            let mut header = vec![0; 64];
            e.patch_file_header(&mut header, 0x0102_0304, 0x0506);
            let word = if is_64 { 8 } else { 4 };
            assert_eq!(&header[shoff_at + word - 4..shoff_at + word], [1, 2, 3, 4]);
            assert_eq!(&header[shnum_at..shnum_at + 2], [5, 6]);
            let mut symtab = vec![0; 2 * sym_size];
            e.patch_symbol(&mut symtab, 1, 0x0a0b_0c0d, 0xfff2);
            assert_eq!(&symtab[sym_size..sym_size + 4], [10, 11, 12, 13]);
            let shndx = sym_size + shndx_at;
            assert_eq!(&symtab[shndx..shndx + 2], [0xff, 0xf2]);
            assert_eq!(symtab.iter().filter(|&&b| b != 0).count(), 6);
        }
    }
}
