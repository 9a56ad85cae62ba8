//! The read side: parse an ELF relocatable object into plain structs.

use object::elf::{
    FileHeader32, FileHeader64, Rel32, Rel64, Rela32, Rela64, SectionHeader32, SectionHeader64,
    ELFCLASS32, ELFCLASS64, EM_MIPS,
};
use object::read::elf::{FileHeader, SectionHeader, SectionTable, Sym as _, SymbolTable};
use object::{Endianness, ReadRef as _};

use super::{show_name, SHN_XINDEX, SHT_REL, SHT_RELA, SHT_SYMTAB};

/// A parsed ELF file. The symbols are copied out of the file; the section
/// headers ([`Sections`]) and the relocations ([`RelocSection`]) stay in
/// it, as do the raw bytes, which the writer needs to keep untouched
/// regions as they were.
#[derive(Debug)]
pub struct Elf<'a> {
    /// The whole ELF image (without an appended module signature).
    pub data: &'a [u8],
    /// ELFCLASS64?
    pub is_64: bool,
    /// Big endian?
    pub big_endian: bool,
    /// `e_type`.
    pub e_type: u16,
    /// `e_machine`.
    pub machine: u16,
    /// `e_shoff`.
    pub shoff: u64,
    /// `e_shentsize`.
    pub shentsize: u16,
    /// Section index of the section name string table.
    pub shstrndx: u32,
    /// `e_shnum` as the header has it: 0 when the count is in section 0's
    /// `sh_size` (ELF's extended numbering, which a file of 65,280
    /// sections or more must use).
    pub e_shnum: u16,
    /// `e_shstrndx` as the header has it: `SHN_XINDEX` when the index is
    /// in section 0's `sh_link` ([`Elf::shstrndx`] is the index).
    pub e_shstrndx: u16,
    /// All section headers, by section index (0 is the null section).
    pub sections: Sections<'a>,
    /// Index of the (single) `SHT_SYMTAB` section, if any.
    pub symtab: Option<usize>,
    /// The symbols of `.symtab`, indexed by symbol index.
    pub symbols: Vec<Symbol<'a>>,
    /// The relocation sections: every `SHT_REL`/`SHT_RELA` section, read
    /// against `.symtab` whatever its `sh_link` (as the kernel reads it).
    pub relocs: Vec<RelocSection<'a>>,
}

/// The section header table. The headers stay in the file, as the file
/// holds them (borrowed: `object`'s record types over the mapped bytes),
/// and each is decoded when asked for ([`Sections::get`], [`Sections::at`],
/// [`Sections::iter`]); only the names' lengths, and where a few
/// well-known sections are, are found once, on parse.
/// A copy of them all cost 88 bytes a section: 22 MB for a 100,000-section
/// module and its output, which `verify` holds side by side; this costs 4.
#[derive(Debug, Clone)]
pub struct Sections<'a> {
    headers: RawHeaders<'a>,
    endian: Endianness,
    /// The section name table's bytes (`e_shstrndx`), where `sh_name` points.
    strings: &'a [u8],
    /// The length of each section's name.
    name_lens: Vec<u32>,
    /// The first section of each of the [`KNOWN`] names, found on parse:
    /// the rules ask for `.modinfo` a dozen times a conversion, and a scan
    /// of 100,000 names costs what a relocation's checks do.
    known: [Option<usize>; KNOWN.len()],
}

/// The names of the well-known sections [`Sections::position`] answers
/// without a scan.
const KNOWN: [&[u8]; 8] = [
    b".modinfo",
    b".gnu.linkonce.this_module",
    b".init.klp_objects",
    b".stubs",
    b".plt",
    b".init.plt",
    b".got",
    b".plt.idx",
];

/// `for s in &elf.sections`: the sections in index order, decoded.
impl<'s, 'a> IntoIterator for &'s Sections<'a> {
    type Item = Section<'a>;
    type IntoIter = SectionIter<'s, 'a>;

    fn into_iter(self) -> SectionIter<'s, 'a> {
        self.iter()
    }
}

/// The sections of a [`Sections`] in index order, decoded.
#[derive(Debug, Clone)]
pub struct SectionIter<'s, 'a> {
    sections: &'s Sections<'a>,
    left: std::ops::Range<usize>,
}

impl<'a> Iterator for SectionIter<'_, 'a> {
    type Item = Section<'a>;

    #[inline]
    fn next(&mut self) -> Option<Section<'a>> {
        self.left.next().map(|i| self.sections.at(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.left.size_hint()
    }
}

impl DoubleEndedIterator for SectionIter<'_, '_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.left.next_back().map(|i| self.sections.at(i))
    }
}

impl ExactSizeIterator for SectionIter<'_, '_> {}

/// The section header table in the file's class.
#[derive(Debug, Clone, Copy)]
enum RawHeaders<'a> {
    H32(&'a [SectionHeader32<Endianness>]),
    H64(&'a [SectionHeader64<Endianness>]),
}

impl<'a> Sections<'a> {
    /// How many sections there are (with the null section).
    pub fn len(&self) -> usize {
        self.name_lens.len()
    }

    /// Are there none?
    pub fn is_empty(&self) -> bool {
        self.name_lens.is_empty()
    }

    /// Section `index`, decoded (`None` past the end).
    #[inline]
    pub fn get(&self, index: usize) -> Option<Section<'a>> {
        (index < self.len()).then(|| self.at(index))
    }

    /// Section `index`, decoded: for an index known to be one, as a slice
    /// is indexed (past the end, a panic).
    #[inline]
    pub fn at(&self, index: usize) -> Section<'a> {
        // The byte order as a constant in each arm, so that each field's
        // read is a plain load (or one byte swap), not a test of the order.
        match self.endian {
            Endianness::Little => self.decode(index, Endianness::Little),
            Endianness::Big => self.decode(index, Endianness::Big),
        }
    }

    #[inline(always)]
    fn decode(&self, index: usize, e: Endianness) -> Section<'a> {
        match self.headers {
            RawHeaders::H32(h) => Section::of(index, self.name(index, &h[index], e), &h[index], e),
            RawHeaders::H64(h) => Section::of(index, self.name(index, &h[index], e), &h[index], e),
        }
    }

    /// The name of section `index`, whose header is `h`.
    #[inline(always)]
    fn name<H: SectionHeader<Endian = Endianness>>(
        &self,
        index: usize,
        h: &H,
        e: Endianness,
    ) -> &'a [u8] {
        let at = h.sh_name(e) as usize;
        let len = self.name_lens[index] as usize;
        self.strings.get(at..at.saturating_add(len)).unwrap_or(&[])
    }

    /// The index of the first section named `name`: a [`KNOWN`] name's was
    /// found on parse; for any other, each name's length is compared first,
    /// and no header is decoded but for the name.
    pub fn position(&self, name: &[u8]) -> Option<usize> {
        if let Some(k) = KNOWN.iter().position(|n| *n == name) {
            return self.known[k];
        }
        let e = self.endian;
        (0..self.len()).find(|&i| {
            self.name_lens[i] as usize == name.len()
                && match self.headers {
                    RawHeaders::H32(h) => self.name(i, &h[i], e) == name,
                    RawHeaders::H64(h) => self.name(i, &h[i], e) == name,
                }
        })
    }

    /// The length of section `index`'s name (as [`Section::name`] has it),
    /// without decoding its header; panics past the end, as
    /// [`Sections::at`].
    pub fn name_len(&self, index: usize) -> usize {
        self.name_lens[index] as usize
    }

    /// The (index, `sh_info`: the target) of each `SHT_REL` and `SHT_RELA`
    /// section, in index order: of each header only the type and the info
    /// decoded.
    pub fn relocation_sections(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        (1..self.len()).filter_map(move |i| {
            let (kind, info) = match (self.headers, self.endian) {
                (RawHeaders::H64(h), e) => (h[i].sh_type(e), h[i].sh_info(e)),
                (RawHeaders::H32(h), e) => (h[i].sh_type(e), h[i].sh_info(e)),
            };
            (kind == SHT_REL || kind == SHT_RELA).then_some((i, info))
        })
    }

    /// The (start, end, index) in the file of each section that has bytes
    /// there, in index order: of each header only the type, offset and size
    /// decoded. For a parse that has checked that each lies in the file.
    fn extents(&self) -> impl Iterator<Item = (u64, u64, usize)> + '_ {
        (1..self.len()).filter_map(move |i| {
            let (kind, start, size) = match (self.headers, self.endian) {
                (RawHeaders::H64(h), e) => (h[i].sh_type(e), h[i].sh_offset(e), h[i].sh_size(e)),
                (RawHeaders::H32(h), e) => (
                    h[i].sh_type(e),
                    u64::from(h[i].sh_offset(e)),
                    u64::from(h[i].sh_size(e)),
                ),
            };
            (kind != super::SHT_NOBITS && size != 0).then(|| (start, start.saturating_add(size), i))
        })
    }

    /// The sections in index order, decoded.
    pub fn iter(&self) -> SectionIter<'_, 'a> {
        SectionIter {
            sections: self,
            left: 0..self.len(),
        }
    }
}

/// One section header, fields widened to 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section<'a> {
    /// Section index.
    pub index: usize,
    /// Name, from `.shstrtab` (borrowed from the file).
    pub name: &'a [u8],
    /// Offset of the name in `.shstrtab`.
    pub sh_name: u32,
    /// `sh_type`.
    pub sh_type: u32,
    /// `sh_flags`.
    pub sh_flags: u64,
    /// `sh_addr`.
    pub sh_addr: u64,
    /// `sh_offset`.
    pub sh_offset: u64,
    /// `sh_size`.
    pub sh_size: u64,
    /// `sh_link`.
    pub sh_link: u32,
    /// `sh_info`.
    pub sh_info: u32,
    /// `sh_addralign`.
    pub sh_addralign: u64,
    /// `sh_entsize`.
    pub sh_entsize: u64,
}

impl<'a> Section<'a> {
    /// Section `index`, named `name`, from its header `h` in the file.
    #[inline(always)]
    fn of<H: SectionHeader<Endian = Endianness>>(
        index: usize,
        name: &'a [u8],
        h: &H,
        e: Endianness,
    ) -> Section<'a> {
        Section {
            index,
            name,
            sh_name: h.sh_name(e),
            sh_type: h.sh_type(e),
            sh_flags: h.sh_flags(e).into(),
            sh_addr: h.sh_addr(e).into(),
            sh_offset: h.sh_offset(e).into(),
            sh_size: h.sh_size(e).into(),
            sh_link: h.sh_link(e),
            sh_info: h.sh_info(e),
            sh_addralign: h.sh_addralign(e).into(),
            sh_entsize: h.sh_entsize(e).into(),
        }
    }

    /// The name for messages.
    pub fn display_name(&self) -> String {
        show_name(self.name)
    }
    /// Is the section loaded into memory?
    pub fn is_alloc(&self) -> bool {
        self.sh_flags & super::SHF_ALLOC != 0
    }
}

/// One symbol of `.symtab`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol<'a> {
    /// Symbol index.
    pub index: u32,
    /// Name, from the symbol string table.
    pub name: &'a [u8],
    /// `st_name`.
    pub st_name: u32,
    /// `st_info`.
    pub st_info: u8,
    /// `st_other`.
    pub st_other: u8,
    /// `st_shndx` as stored (may be reserved: `SHN_UNDEF`, `SHN_LIVEPATCH`, ...).
    pub st_shndx: u16,
    /// The section index, resolved through `SHT_SYMTAB_SHNDX` when `st_shndx`
    /// is `SHN_XINDEX`; otherwise equal to `st_shndx`.
    pub section: u32,
    /// `st_value`.
    pub st_value: u64,
    /// `st_size`.
    pub st_size: u64,
}

impl Symbol<'_> {
    /// The name for messages.
    pub fn display_name(&self) -> String {
        show_name(self.name)
    }
    /// `STB_*` binding.
    pub fn bind(&self) -> u8 {
        self.st_info >> 4
    }
    /// `STT_*` type.
    pub fn kind(&self) -> u8 {
        self.st_info & 0xf
    }
}

/// A relocation section. Its entries stay in the file, as the file holds
/// them (borrowed: `object`'s record types over the mapped bytes), and are
/// decoded one at a time ([`RelocSection::entries`]): a copy of a large
/// module's 200,000 entries cost 4.8 MB, and as much again for the output
/// that `verify` parses beside it.
#[derive(Debug, Clone)]
pub struct RelocSection<'a> {
    /// Index of the `SHT_REL`/`SHT_RELA` section.
    pub index: usize,
    raw: RawRelocs<'a>,
}

/// The entries of a relocation section in the file's class and kind, and
/// the file's byte order (beside the variant's tag: 24 bytes, so that a
/// [`RelocSection`] is 32, for 60,000 of them in `verify`).
#[derive(Debug, Clone, Copy)]
enum RawRelocs<'a> {
    Rel32(&'a [Rel32<Endianness>], Endianness),
    Rela32(&'a [Rela32<Endianness>], Endianness),
    Rel64(&'a [Rel64<Endianness>], Endianness),
    Rela64(&'a [Rela64<Endianness>], Endianness),
}

impl<'a> RelocSection<'a> {
    /// `SHT_RELA` (explicit addends) or `SHT_REL`?
    pub fn is_rela(&self) -> bool {
        matches!(self.raw, RawRelocs::Rela32(..) | RawRelocs::Rela64(..))
    }

    /// How many entries the section holds.
    pub fn len(&self) -> usize {
        match self.raw {
            RawRelocs::Rel32(r, _) => r.len(),
            RawRelocs::Rela32(r, _) => r.len(),
            RawRelocs::Rel64(r, _) => r.len(),
            RawRelocs::Rela64(r, _) => r.len(),
        }
    }

    /// Does the section hold no entries?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `n`, decoded (`None` past the end).
    pub fn get(&self, n: usize) -> Option<Reloc> {
        (n < self.len()).then(|| self.at(n))
    }

    /// Entry `n` (below [`RelocSection::len`]), decoded. `SHT_REL` entries
    /// have a zero addend. MIPS64's own `r_info` layout never applies: the
    /// reader refuses MIPS64.
    #[inline]
    fn at(&self, n: usize) -> Reloc {
        match self.raw {
            RawRelocs::Rel32(r, e) => {
                let r = &r[n];
                Reloc {
                    offset: r.r_offset.get(e).into(),
                    sym: r.r_sym(e),
                    r_type: r.r_type(e),
                    addend: 0,
                }
            }
            RawRelocs::Rela32(r, e) => {
                let r = &r[n];
                Reloc {
                    offset: r.r_offset.get(e).into(),
                    sym: r.r_sym(e),
                    r_type: r.r_type(e),
                    addend: r.r_addend.get(e).into(),
                }
            }
            RawRelocs::Rel64(r, e) => {
                let r = &r[n];
                Reloc {
                    offset: r.r_offset.get(e),
                    sym: r.r_sym(e),
                    r_type: r.r_type(e),
                    addend: 0,
                }
            }
            RawRelocs::Rela64(r, e) => {
                let r = &r[n];
                Reloc {
                    offset: r.r_offset.get(e),
                    sym: r.r_sym(e, false),
                    r_type: r.r_type(e, false),
                    addend: r.r_addend.get(e),
                }
            }
        }
    }

    /// The entries in file order, decoded.
    pub fn entries(
        &self,
    ) -> impl ExactSizeIterator<Item = Reloc> + DoubleEndedIterator + Clone + '_ {
        (0..self.len()).map(move |n| self.at(n))
    }
}

/// One relocation entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Reloc {
    /// `r_offset`: where in the target section.
    pub offset: u64,
    /// Symbol index.
    pub sym: u32,
    /// Relocation type (machine specific).
    pub r_type: u32,
    /// Explicit addend (0 for `SHT_REL` entries).
    pub addend: i64,
}

/// A reason the file could not be read as an ELF relocatable object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

fn err<T>(what: impl Into<String>) -> Result<T, ReadError> {
    Err(ReadError(what.into()))
}

impl<'a> Elf<'a> {
    /// Parse `data` (32 or 64 bit, either endianness). A large module's
    /// symbols are read on a second core while its section headers are
    /// checked ([`crate::parallel::join`]).
    pub fn parse(data: &'a [u8]) -> Result<Elf<'a>, ReadError> {
        if data.len() < 16 || &data[..4] != b"\x7fELF" {
            return err("not an ELF file (bad magic)");
        }
        match data[4] {
            ELFCLASS64 => parse_generic::<FileHeader64<Endianness>>(data),
            ELFCLASS32 => parse_generic::<FileHeader32<Endianness>>(data),
            c => err(format!("unknown ELF class {c}")),
        }
    }

    /// The symbols of `.symtab` decoded again from the file, one at a
    /// time, as [`Elf::parse`] decoded [`Elf::symbols`]: their number, and
    /// each symbol in index order (or why it cannot be read, should the
    /// file have changed). For a caller that let `symbols` go (the proof
    /// of a conversion holds the output's, not the input's too). Without
    /// `names`, each `name` is left empty, unread: `st_name` says where it
    /// is in [`Elf::symbol_strings`].
    #[allow(clippy::type_complexity)]
    pub fn symbols_again(
        &self,
        names: bool,
    ) -> Result<
        (
            usize,
            Box<dyn Iterator<Item = Result<Symbol<'a>, ReadError>> + 'a>,
        ),
        ReadError,
    > {
        let Some(si) = self.symtab else {
            return Ok((0, Box::new(std::iter::empty())));
        };
        let (endian, data) = (self.sections.endian, self.data);
        let strings = object::StringTable::default();
        Ok(match self.sections.headers {
            RawHeaders::H64(h) => {
                let table = SectionTable::<FileHeader64<Endianness>, _>::new(h, strings);
                let (count, decoded) = decode_symbols(&table, endian, data, si, names)?;
                (count, Box::new(decoded))
            }
            RawHeaders::H32(h) => {
                let table = SectionTable::<FileHeader32<Endianness>, _>::new(h, strings);
                let (count, decoded) = decode_symbols(&table, endian, data, si, names)?;
                (count, Box::new(decoded))
            }
        })
    }

    /// The string table of `.symtab`'s names, where each `st_name` points
    /// (empty without one).
    pub fn symbol_strings(&self) -> &'a [u8] {
        self.symtab.map_or(&[], |s| {
            self.section_data(self.sections.at(s).sh_link as usize)
        })
    }

    /// The bytes of a section (empty for `SHT_NOBITS`).
    pub fn section_data(&self, index: usize) -> &'a [u8] {
        match self.sections.get(index) {
            Some(s) => self.section_bytes(&s),
            None => &[],
        }
    }

    /// The bytes of section `s`, one of this file's, decoded already
    /// ([`Elf::section_data`] without decoding its header again: a loop
    /// over 200,000 relocations asks it of each one's target).
    pub fn section_bytes(&self, s: &Section) -> &'a [u8] {
        // Section 0 has no contents (its sh_size may hold the section count).
        if s.index == 0 || s.sh_type == super::SHT_NOBITS {
            return &[];
        }
        // Bounds were validated at parse time (for this file's sections).
        let start = s.sh_offset as usize;
        let bytes = self
            .data
            .get(start..start.saturating_add(s.sh_size as usize));
        debug_assert!(bytes.is_some(), "section #{} is not this file's", s.index);
        bytes.unwrap_or_default()
    }

    /// Relocation section `index` decoded again from the file, as
    /// [`Elf::parse`] read it into [`Elf::relocs`] (`None` when it is not
    /// one, or there is no `.symtab` to read it against). For a caller that
    /// let `relocs` go (the proof of a conversion holds the output's, not
    /// the input's too).
    pub fn reloc_section_again(&self, index: usize) -> Option<RelocSection<'a>> {
        self.symtab?;
        let kind = self.sections.get(index)?.sh_type;
        let (e, data) = (self.sections.endian, self.data);
        let raw = match (self.sections.headers, kind) {
            (RawHeaders::H32(h), SHT_REL) => {
                RawRelocs::Rel32(h[index].data_as_array(e, data).ok()?, e)
            }
            (RawHeaders::H32(h), SHT_RELA) => {
                RawRelocs::Rela32(h[index].data_as_array(e, data).ok()?, e)
            }
            (RawHeaders::H64(h), SHT_REL) => {
                RawRelocs::Rel64(h[index].data_as_array(e, data).ok()?, e)
            }
            (RawHeaders::H64(h), SHT_RELA) => {
                RawRelocs::Rela64(h[index].data_as_array(e, data).ok()?, e)
            }
            _ => return None,
        };
        Some(RelocSection { index, raw })
    }

    /// The entries of relocation section `index` (none when it is not one):
    /// `relocs` is in section order, so one binary search, not a scan.
    pub fn reloc_entries(&self, index: usize) -> impl Iterator<Item = Reloc> + '_ {
        self.relocs
            .binary_search_by_key(&index, |rs| rs.index)
            .ok()
            .into_iter()
            .flat_map(|i| self.relocs[i].entries())
    }

    /// The section with this name (first match). For lookups of well-known
    /// sections such as `.modinfo`, never for relocation targets.
    pub fn section_by_name(&self, name: &[u8]) -> Option<Section<'a>> {
        self.sections.position(name).map(|i| self.sections.at(i))
    }

    /// The name of a section index for messages (`#N` when out of range).
    pub fn section_name(&self, index: usize) -> String {
        match self.sections.get(index) {
            Some(s) => s.display_name(),
            None => format!("#{index}"),
        }
    }

    /// Size of one relocation entry of this class.
    pub fn reloc_entsize(&self, rela: bool) -> u64 {
        match (self.is_64, rela) {
            (true, true) => 24,
            (true, false) => 16,
            (false, true) => 12,
            (false, false) => 8,
        }
    }

    /// Size of one symbol entry of this class.
    pub fn sym_entsize(&self) -> u64 {
        if self.is_64 {
            24
        } else {
            16
        }
    }

    /// Read an unsigned integer of `len` bytes (1, 2, 4 or 8) in the file's byte order.
    pub fn read_uint(&self, bytes: &[u8]) -> u64 {
        let mut v: u64 = 0;
        if self.big_endian {
            for b in bytes {
                v = (v << 8) | u64::from(*b);
            }
        } else {
            for b in bytes.iter().rev() {
                v = (v << 8) | u64::from(*b);
            }
        }
        v
    }

    /// Values of the `.modinfo` section as `key=value` strings.
    pub fn modinfo(&self) -> Vec<&'a [u8]> {
        match self.section_by_name(b".modinfo") {
            Some(s) => self
                .section_data(s.index)
                .split(|b| *b == 0)
                .filter(|e| !e.is_empty())
                .collect(),
            None => Vec::new(),
        }
    }

    /// The value of a `.modinfo` key, if present.
    pub fn modinfo_value(&self, key: &str) -> Option<&'a [u8]> {
        self.modinfo().into_iter().find_map(|e| {
            let rest = e.strip_prefix(key.as_bytes())?;
            rest.strip_prefix(b"=")
        })
    }

    /// Does `.modinfo` say `livepatch=Y`?
    pub fn is_livepatch(&self) -> bool {
        self.modinfo_value("livepatch").is_some()
    }

    /// Does the header use ELF's extended section numbering (`e_shnum` 0,
    /// or `e_shstrndx` `SHN_XINDEX`)? The module loader reads both fields
    /// as they stand, never through section 0.
    pub fn extended_numbering(&self) -> bool {
        self.e_shnum == 0 || self.e_shstrndx == SHN_XINDEX
    }

    /// Is this a module as kbuild links it (it has the module structure,
    /// `.gnu.linkonce.this_module`), rather than one of its object files?
    pub fn is_linked_module(&self) -> bool {
        self.section_by_name(b".gnu.linkonce.this_module").is_some()
    }
}

fn parse_generic<'a, H: FileHeader<Endian = Endianness, SectionHeader: Sync, Sym: Sync> + Sync>(
    data: &'a [u8],
) -> Result<Elf<'a>, ReadError> {
    let bad = |e: object::read::Error| ReadError(e.to_string());
    let header = H::parse(data).map_err(bad)?;
    let endian = header.endian().map_err(bad)?;
    if header.is_type_64() && header.e_machine(endian) == EM_MIPS {
        // r_info of MIPS64 has its own layout; the writer does not encode it.
        return err("MIPS64 objects are not supported");
    }
    let table = header.sections(endian, data).map_err(bad)?;
    // The table `object` read, kept in the file's class.
    let shoff: u64 = header.e_shoff(endian).into();
    let headers = if header.is_type_64() {
        RawHeaders::H64(
            data.read_slice_at(shoff, table.len())
                .map_err(|()| ReadError("section header table lies outside the file".into()))?,
        )
    } else {
        RawHeaders::H32(
            data.read_slice_at(shoff, table.len())
                .map_err(|()| ReadError("section header table lies outside the file".into()))?,
        )
    };
    // Where `object` finds the names (`section_strings`): the file range
    // of section `e_shstrndx`. Where that is not in the file, no name is.
    let strings = match table
        .iter()
        .nth(header.shstrndx(endian, data).unwrap_or(0) as usize)
    {
        Some(sh) => sh
            .file_range(endian)
            .and_then(|(at, size)| {
                let end = at.checked_add(size)?;
                data.get(usize::try_from(at).ok()?..usize::try_from(end).ok()?)
            })
            .unwrap_or(&[]),
        _ => &[],
    };
    // The first symbol table, found ahead of the pass over the headers so
    // that a large module's symbols are read on a second core beside it.
    let symtab_index = table.iter().position(|sh| sh.sh_type(endian) == SHT_SYMTAB);
    // At most a symbol per 16 bytes of the table (ELF32's size).
    let symbols_at_most = symtab_index.map_or(0, |si| {
        let sh = &table.iter().as_slice()[si];
        let size: u64 = sh.sh_size(endian).into();
        usize::try_from(size / 16).unwrap_or(usize::MAX)
    });
    let (symbols, checked) = crate::parallel::join(
        table.len().saturating_add(symbols_at_most) >= crate::parallel::WORTH_TWO_CORES,
        || symtab_index.map(|si| read_symbols(&table, endian, data, si)),
        || check_sections(header, &table, endian, data, headers, strings, symtab_index),
    );
    // What the pass over the headers found wrong first, as it was read
    // first.
    let (sections, rel_sections, shstrndx) = checked?;
    let symbols = symbols.transpose()?.unwrap_or_default();

    // Every relocation section is read against `.symtab`, whatever its
    // `sh_link` says: the module loader and the livepatch core never read
    // it (`info->index.sym` is the one symbol table), so a section linked
    // elsewhere is applied all the same.
    let is_reloc =
        |s: &Section| (s.sh_type == SHT_REL || s.sh_type == SHT_RELA) && symtab_index.is_some();
    // Every entry must name a symbol of `.symtab`, even in a section the
    // kernel never applies (`.rela.debug_info`): the architectures' own
    // passes over the relocation sections read them all the same, before
    // `apply_relocations` (s390's `check_rela` writes through the symbol
    // index of every `SHT_RELA` section's entries; arm64's `count_plts`
    // reads it in those of any executable target).
    let mut relocs = Vec::with_capacity(rel_sections);
    for s in sections.iter().filter(is_reloc) {
        let sh = table.section(object::SectionIndex(s.index)).map_err(bad)?;
        let where_ = |_| {
            ReadError(format!(
                "section {}: size 0x{:x} is not a whole number of relocation entries",
                s.display_name(),
                s.sh_size
            ))
        };
        let is_rela = s.sh_type == SHT_RELA;
        let raw = match (header.is_type_64(), is_rela) {
            (false, false) => {
                RawRelocs::Rel32(sh.data_as_array(endian, data).map_err(where_)?, endian)
            }
            (false, true) => {
                RawRelocs::Rela32(sh.data_as_array(endian, data).map_err(where_)?, endian)
            }
            (true, false) => {
                RawRelocs::Rel64(sh.data_as_array(endian, data).map_err(where_)?, endian)
            }
            (true, true) => {
                RawRelocs::Rela64(sh.data_as_array(endian, data).map_err(where_)?, endian)
            }
        };
        let rs = RelocSection {
            index: s.index,
            raw,
        };
        for (n, r) in rs.entries().enumerate() {
            if r.sym as usize >= symbols.len() {
                return err(format!(
                    "section {}: entry {n} (offset 0x{:x}) references symbol #{} but .symtab has {}",
                    s.display_name(),
                    r.offset,
                    r.sym,
                    symbols.len()
                ));
            }
        }
        relocs.push(rs);
    }

    Ok(Elf {
        data,
        is_64: header.is_type_64(),
        big_endian: !header.is_little_endian(),
        e_type: header.e_type(endian),
        machine: header.e_machine(endian),
        shoff: header.e_shoff(endian).into(),
        shentsize: header.e_shentsize(endian),
        shstrndx,
        e_shnum: header.e_shnum(endian),
        e_shstrndx: header.e_shstrndx(endian),
        sections,
        symtab: symtab_index,
        symbols,
        relocs,
    })
}

/// The NUL-terminated string at offset `at` of `table`, without its NUL;
/// `None` when `at` is past the end or no NUL follows. Names are a few
/// dozen bytes: eight at a time, a zero byte found by the borrow trick,
/// costs a quarter of what `memchr`'s setup does, 450,000 times a parse of
/// a large module and its output.
pub(crate) fn c_string(table: &[u8], at: u32) -> Option<&[u8]> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let rest = table.get(usize::try_from(at).ok()?..)?;
    let mut words = rest.chunks_exact(8);
    let mut skipped = 0;
    for w in words.by_ref() {
        let w = u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        // Nonzero exactly when some byte of `w` is zero.
        if w.wrapping_sub(ONES) & !w & HIGHS != 0 {
            break;
        }
        skipped += 8;
    }
    let len = skipped + rest[skipped..].iter().position(|&b| b == 0)?;
    Some(&rest[..len])
}

/// The pass over the section headers of `data` (`table`, as `object` read
/// them; `headers`, the same in the file's class; `strings`, their names):
/// each name, alignment and extent in the file checked, no two sections
/// overlapping, `e_shstrndx` and the symbol table's link (`symtab_index`)
/// valid. Returns the [`Sections`], how many relocation sections there
/// are, and `e_shstrndx`.
fn check_sections<'a, H: FileHeader<Endian = Endianness>>(
    header: &H,
    table: &SectionTable<'a, H, &'a [u8]>,
    endian: Endianness,
    data: &'a [u8],
    headers: RawHeaders<'a>,
    strings: &'a [u8],
    symtab_index: Option<usize>,
) -> Result<(Sections<'a>, usize, u32), ReadError> {
    let mut name_lens = Vec::with_capacity(table.len());
    // Found in the same pass: how many relocation sections there are
    // (each read below, against the symbol table).
    let mut rel_sections = 0;
    let mut known = [None; KNOWN.len()];
    for (i, sh) in table.iter().enumerate() {
        let at = sh.sh_name(endian);
        let name = c_string(strings, at).ok_or_else(|| {
            ReadError(format!(
                "section #{i}: cannot read its name: Invalid ELF section name offset"
            ))
        })?;
        let s = Section::of(i, name, sh, endian);
        if s.sh_addralign > 1 && !s.sh_addralign.is_power_of_two() {
            return err(format!(
                "section {} (#{i}): sh_addralign 0x{:x} is not a power of two",
                s.display_name(),
                s.sh_addralign
            ));
        }
        if i != 0 && s.sh_type != super::SHT_NOBITS {
            let end = s.sh_offset.checked_add(s.sh_size);
            if end.is_none_or(|e| e > data.len() as u64) {
                return err(format!(
                    "section {} (#{i}): contents at 0x{:x}+0x{:x} lie outside the file",
                    s.display_name(),
                    s.sh_offset,
                    s.sh_size
                ));
            }
        }
        if s.sh_type == SHT_REL || s.sh_type == SHT_RELA {
            rel_sections += 1;
        }
        let len = u32::try_from(name.len())
            .map_err(|_| ReadError(format!("section #{i}: its name is longer than 4 GiB")))?;
        name_lens.push(len);
        if let Some(k) = KNOWN.iter().position(|n| *n == name) {
            known[k] = known[k].or(Some(i));
        }
    }
    let sections = Sections {
        headers,
        endian,
        strings,
        name_lens,
        known,
    };
    debug_assert!(
        sections
            .iter()
            .zip(table.iter())
            .all(|(s, sh)| table.section_name(endian, sh) == Ok(s.name)),
        "section names as object reads them"
    );
    debug_assert!(
        KNOWN
            .iter()
            .zip(sections.known)
            .all(|(name, found)| found == sections.iter().position(|s| s.name == *name)),
        "the well-known sections as a scan finds them"
    );

    debug_assert!(
        sections.extents().eq(sections
            .iter()
            .filter(|s| s.index != 0 && s.sh_type != super::SHT_NOBITS && s.sh_size != 0)
            .map(|s| (s.sh_offset, s.sh_offset + s.sh_size, s.index))),
        "the extents as the decoded sections give them"
    );
    check_overlaps(
        || sections.extents(),
        if header.is_type_64() { 64 } else { 52 },
        |index| {
            sections
                .get(index)
                .map_or_else(String::new, |s| s.display_name())
        },
    )?;
    let shstrndx = header
        .shstrndx(endian, data)
        .map_err(|e| ReadError(e.to_string()))?;
    if shstrndx as usize >= sections.len() || shstrndx == 0 {
        return err(format!("e_shstrndx {shstrndx} is not a section index"));
    }
    if let Some(si) = symtab_index {
        let link = sections.at(si).sh_link as usize;
        if link == 0 || link >= sections.len() {
            return err(format!(
                "section .symtab: sh_link {link} is not a section index"
            ));
        }
    }
    Ok((sections, rel_sections, shstrndx))
}

/// The symbols of the symbol table `si` of `data` (`table`, its sections),
/// copied out. Read beside the pass over the section headers, which has
/// not yet checked them: whatever it finds wrong is reported first, and
/// this reads nothing out of bounds (every read is checked) either way.
fn read_symbols<'a, H: FileHeader<Endian = Endianness>>(
    table: &SectionTable<'a, H, &'a [u8]>,
    endian: Endianness,
    data: &'a [u8],
    si: usize,
) -> Result<Vec<Symbol<'a>>, ReadError> {
    let (symtab, names) = symbol_table(table, endian, data, si)?;
    let mut symbols = Vec::with_capacity(symtab.len());
    for (i, sym) in symtab.symbols().iter().enumerate() {
        symbols.push(decode_symbol(&symtab, names, endian, i, sym, true)?);
    }
    Ok(symbols)
}

/// The symbol table `si` of `data` (`table`, its sections), and the bytes
/// of its string table (`None` without one).
#[allow(clippy::type_complexity)]
fn symbol_table<'a, H: FileHeader<Endian = Endianness>>(
    table: &SectionTable<'a, H, &'a [u8]>,
    endian: Endianness,
    data: &'a [u8],
    si: usize,
) -> Result<(SymbolTable<'a, H, &'a [u8]>, Option<&'a [u8]>), ReadError> {
    let symtab = table
        .symbol_table_by_index(endian, data, object::SectionIndex(si))
        .map_err(|e| ReadError(format!("section .symtab: {e}")))?;
    // The linked string table (`object` checked it is one); with no link
    // (0), no name can be read.
    let link = symtab.string_section();
    let names = (link.0 != 0)
        .then(|| table.section(link).ok()?.file_range(endian))
        .flatten()
        .and_then(|(at, size)| {
            data.get(usize::try_from(at).ok()?..)?
                .get(..usize::try_from(size).ok()?)
        });
    Ok((symtab, names))
}

/// The symbols of the symbol table `si` of `data` (`table`, its sections),
/// decoded one at a time, in index order: their number, and each symbol or
/// why it cannot be read ([`read_symbols`] stops at the first error).
/// Without `named`, names are neither read nor checked (left empty).
fn decode_symbols<'a, H: FileHeader<Endian = Endianness>>(
    table: &SectionTable<'a, H, &'a [u8]>,
    endian: Endianness,
    data: &'a [u8],
    si: usize,
    named: bool,
) -> Result<
    (
        usize,
        impl Iterator<Item = Result<Symbol<'a>, ReadError>> + 'a,
    ),
    ReadError,
> {
    let (symtab, names) = symbol_table(table, endian, data, si)?;
    let raw = symtab.symbols();
    let decoded = raw
        .iter()
        .enumerate()
        .map(move |(i, sym)| decode_symbol(&symtab, names, endian, i, sym, named));
    Ok((raw.len(), decoded))
}

/// Symbol `i` of `symtab`, `sym`, its name read from `names` (with
/// `named`; else left empty).
#[inline(always)]
fn decode_symbol<'a, H: FileHeader<Endian = Endianness>>(
    symtab: &SymbolTable<'a, H, &'a [u8]>,
    names: Option<&'a [u8]>,
    endian: Endianness,
    i: usize,
    sym: &H::Sym,
    named: bool,
) -> Result<Symbol<'a>, ReadError> {
    let at = sym.st_name(endian);
    let name = if at == 0 || !named {
        &[][..]
    } else {
        names.and_then(|t| c_string(t, at)).ok_or_else(|| {
            ReadError(format!(
                "section .symtab: symbol #{i}: cannot read its name: Invalid ELF symbol name offset"
            ))
        })?
    };
    let st_shndx = sym.st_shndx(endian);
    let section = if st_shndx == SHN_XINDEX {
        // Its section index is in SHT_SYMTAB_SHNDX; without that
        // table the symbol has no section, and no guess is made.
        symtab.shndx(endian, object::SymbolIndex(i)).ok_or_else(|| {
            ReadError(format!(
                "section .symtab: symbol #{i} ({}): st_shndx is SHN_XINDEX but the object has no SHT_SYMTAB_SHNDX entry for it",
                show_name(name)
            ))
        })?
    } else {
        u32::from(st_shndx)
    };
    Ok(Symbol {
        // The file holds the symbols: it would need to exceed 64
        // GiB for their number not to fit (16 bytes the least a one).
        index: u32::try_from(i)
            .map_err(|_| ReadError("section .symtab: more than 2^32 symbols".to_string()))?,
        name,
        st_name: at,
        st_info: sym.st_info(),
        st_other: sym.st_other(),
        st_shndx,
        section,
        st_value: sym.st_value(endian).into(),
        st_size: sym.st_size(endian).into(),
    })
}

/// Sections must not overlap each other or the ELF header: the writer
/// rewrites sections in place and would otherwise clobber a neighbour.
/// `extents` gives the (start, end, index) of each section that has bytes
/// in the file, in index order, as often as asked ([`Sections::extents`]);
/// `name` names a section for the message.
///
/// A file whose sections lie in index order is proven by one pass. One
/// that interleaves a few runs in file order (GNU as puts each relocation
/// section after all the others, in the order of their sections) is dealt
/// into those runs, a byte a section, and they are merged as they are read
/// again: no copy of 100,000 extents. Only a file in no such order has its
/// extents collected and sorted. Either way they are taken in order of
/// (start, index), so the overlap named is the same whichever way it is
/// found.
fn check_overlaps<I: Iterator<Item = (u64, u64, usize)>>(
    extents: impl Fn() -> I,
    header_size: u64,
    name: impl Fn(usize) -> String,
) -> Result<(), ReadError> {
    let mut end = header_size;
    let in_order = extents().all(|(start, next_end, _)| {
        let apart = start >= end;
        end = next_end;
        apart
    });
    if in_order {
        return Ok(());
    }
    // Within a chain, sections come in index order: equal starts too.
    const CHAINS: usize = 8;
    let mut last: Vec<u64> = Vec::new();
    let mut chain_of: Vec<u8> = Vec::new();
    for (start, _, _) in extents() {
        if let Some(c) = last.iter().position(|&l| l <= start) {
            last[c] = start;
            chain_of.push(c as u8);
        } else if last.len() < CHAINS {
            chain_of.push(last.len() as u8);
            last.push(start);
        } else {
            let mut all: Vec<(u64, u64, usize)> = extents().collect();
            all.sort_unstable_by_key(|&(start, _, index)| (start, index));
            return apart(all.into_iter(), header_size, name);
        }
    }
    let chain = |c: usize| {
        extents()
            .zip(chain_of.iter())
            .filter(move |(_, &k)| usize::from(k) == c)
            .map(|(e, _)| e)
    };
    let mut heads: Vec<_> = (0..last.len())
        .map(|c| {
            let mut it = chain(c);
            (it.next(), it)
        })
        .collect();
    let merged = std::iter::from_fn(|| {
        let (_, c) = heads
            .iter()
            .enumerate()
            .filter_map(|(c, (head, _))| head.map(|(start, _, index)| ((start, index), c)))
            .min()?;
        let (head, it) = &mut heads[c];
        std::mem::replace(head, it.next())
    });
    apart(merged, header_size, name)
}

/// Are `extents`, in order of their start, apart from one another and
/// from the ELF header (its first `header_size` bytes)? `name` names a
/// section by its index for the error.
fn apart(
    extents: impl Iterator<Item = (u64, u64, usize)>,
    header_size: u64,
    name: impl Fn(usize) -> String,
) -> Result<(), ReadError> {
    let mut prev_end = header_size;
    let mut prev: Option<usize> = None;
    for (start, end, index) in extents {
        if start < prev_end {
            let other = match prev {
                Some(p) => format!("section {}", name(p)),
                None => "the ELF header".to_string(),
            };
            return err(format!(
                "section {} (#{index}) at 0x{start:x} overlaps {other}",
                name(index)
            ));
        }
        prev_end = end;
        prev = Some(index);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Section `index`, named `.s<index>`.
    fn section(index: usize, sh_offset: u64, sh_size: u64) -> Section<'static> {
        Section {
            index,
            name: Box::leak(format!(".s{index}").into_bytes().into_boxed_slice()),
            sh_name: 0,
            sh_type: crate::elf::abi::SHT_PROGBITS,
            sh_flags: 0,
            sh_addr: 0,
            sh_offset,
            sh_size,
            sh_link: 0,
            sh_info: 0,
            sh_addralign: 1,
            sh_entsize: 0,
        }
    }

    /// The read model's per-section records stay small: a large module
    /// and its output hold 100,000 of them side by side.
    #[test]
    fn relocation_sections_are_32_bytes() {
        assert_eq!(std::mem::size_of::<RelocSection>(), 32);
    }

    /// The extents of the sections that have bytes in the file: (start,
    /// end, index), as [`Sections::extents`] gives them.
    fn extents_in_index_order<'s, I: Iterator<Item = Section<'s>>>(
        sections: I,
    ) -> impl Iterator<Item = (u64, u64, usize)> + use<'s, I> {
        sections
            .filter(|s| s.index != 0 && s.sh_type != super::super::SHT_NOBITS && s.sh_size != 0)
            .map(|s| (s.sh_offset, s.sh_offset + s.sh_size, s.index))
    }

    /// [`check_overlaps`] of `sections`, as a parse asks it.
    fn overlaps(sections: &[Section], header_size: u64) -> Result<(), ReadError> {
        check_overlaps(
            || extents_in_index_order(sections.iter().cloned()),
            header_size,
            |index| {
                sections
                    .get(index)
                    .map_or_else(String::new, |s| s.display_name())
            },
        )
    }

    /// In index order or not, the same sections pass, and an overlap is
    /// named the same way.
    #[test]
    fn overlaps_in_any_order() {
        let null = section(0, 0, 0);
        let in_order = [null, section(1, 64, 16), section(2, 80, 8)];
        assert!(overlaps(&in_order, 64).is_ok());
        let reordered = [null, section(1, 80, 8), section(2, 64, 16)];
        assert!(overlaps(&reordered, 64).is_ok());
        let overlap = [null, section(1, 90, 8), section(2, 64, 30)];
        let e = overlaps(&overlap, 64).unwrap_err();
        assert_eq!(e.0, "section .s1 (#1) at 0x5a overlaps section .s2");
        let header = [null, section(1, 60, 8)];
        let e = overlaps(&header, 64).unwrap_err();
        assert_eq!(e.0, "section .s1 (#1) at 0x3c overlaps the ELF header");
    }

    /// Sections interleaving two chains in file order (a compiler's
    /// `.text.f` and `.rela.text.f`), and more chains than are dealt (the
    /// extents sorted whole): apart, or the overlap found, as in any order.
    #[test]
    fn overlaps_in_interleaved_chains() {
        let null = section(0, 0, 0);
        // Two chains: 64, 96, 128, ... and 1000, 1016, 1032, ...
        let chains = |n: usize, overlap_at: Option<usize>| {
            let mut v = vec![null];
            for i in 0..n {
                let text = 64 + 32 * i as u64;
                let rela = 1000 + 16 * i as u64;
                v.push(section(v.len(), text, 32));
                let size = if Some(i) == overlap_at { 17 } else { 16 };
                v.push(section(v.len(), rela, size));
            }
            v
        };
        assert!(overlaps(&chains(20, None), 64).is_ok());
        let e = overlaps(&chains(20, Some(7)), 64).unwrap_err();
        assert_eq!(e.0, "section .s18 (#18) at 0x468 overlaps section .s16");
        // The ELF header, reached by the second chain's first extent.
        let mut header = chains(3, None);
        header[2].sh_offset = 40;
        let e = overlaps(&header, 64).unwrap_err();
        assert_eq!(e.0, "section .s2 (#2) at 0x28 overlaps the ELF header");
        // Two extents at one start (one chain: it takes equal starts in
        // index order): the lower index first.
        let mut tie = chains(3, None);
        tie[4].sh_offset = 1000;
        let e = overlaps(&tie, 64).unwrap_err();
        assert_eq!(e.0, "section .s4 (#4) at 0x3e8 overlaps section .s2");
        // Eleven chains, one section each, in falling order, then an
        // extent that overlaps the ELF header's neighbour.
        let mut many = vec![null];
        for i in 0..11u64 {
            many.push(section(many.len(), 4000 - 100 * i, 10));
        }
        assert!(overlaps(&many, 64).is_ok());
        many.push(section(many.len(), 3005, 10));
        let e = overlaps(&many, 64).unwrap_err();
        assert_eq!(e.0, "section .s12 (#12) at 0xbbd overlaps section .s11");
        // Sorted whole, ties are taken by index too: of 40 sections in
        // falling order, the 35th starts where the 5th does.
        let mut falling = vec![null];
        for i in 0..40u64 {
            falling.push(section(falling.len(), 10_000 - 100 * i, 10));
        }
        falling[35].sh_offset = falling[5].sh_offset;
        let e = overlaps(&falling, 64).unwrap_err();
        assert_eq!(e.0, "section .s35 (#35) at 0x2580 overlaps section .s5");
    }
}
