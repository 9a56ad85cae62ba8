//! A small ELF writer for relocatable objects of either class and byte
//! order: sections given in index order, each with its bytes; the section
//! name table is built here and appended last.

/// The encoding of a file: class and byte order.
#[derive(Debug, Clone, Copy)]
pub struct Enc {
    /// ELFCLASS64?
    pub is_64: bool,
    /// Big endian?
    pub big_endian: bool,
}

impl Enc {
    pub fn u16(self, out: &mut Vec<u8>, v: u16) {
        if self.big_endian {
            out.extend_from_slice(&v.to_be_bytes());
        } else {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    pub fn u32(self, out: &mut Vec<u8>, v: u32) {
        if self.big_endian {
            out.extend_from_slice(&v.to_be_bytes());
        } else {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    pub fn u64(self, out: &mut Vec<u8>, v: u64) {
        if self.big_endian {
            out.extend_from_slice(&v.to_be_bytes());
        } else {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A word of the class (`Elf64_Addr`, `Elf32_Addr`, ...), truncated.
    pub fn word(self, out: &mut Vec<u8>, v: u64) {
        if self.is_64 {
            self.u64(out, v);
        } else {
            self.u32(out, v as u32);
        }
    }

    /// Store `v` as a `len`-byte integer at `at` of `bytes` (if it fits).
    pub fn put(self, bytes: &mut [u8], at: usize, len: usize, v: u64) {
        let Some(field) = bytes.get_mut(at..at.saturating_add(len)) else {
            return;
        };
        for (i, b) in field.iter_mut().enumerate() {
            let shift = if self.big_endian { len - 1 - i } else { i };
            *b = (v >> (8 * shift)) as u8;
        }
    }

    /// One symbol table entry.
    pub fn sym(self, out: &mut Vec<u8>, s: &SymEntry) {
        if self.is_64 {
            self.u32(out, s.name);
            out.push(s.info);
            out.push(s.other);
            self.u16(out, s.shndx);
            self.u64(out, s.value);
            self.u64(out, s.size);
        } else {
            self.u32(out, s.name);
            self.u32(out, s.value as u32);
            self.u32(out, s.size as u32);
            out.push(s.info);
            out.push(s.other);
            self.u16(out, s.shndx);
        }
    }

    /// Size of a symbol table entry.
    pub fn sym_size(self) -> u64 {
        if self.is_64 {
            24
        } else {
            16
        }
    }

    /// One relocation entry; `rela` adds the explicit addend.
    pub fn reloc(
        self,
        out: &mut Vec<u8>,
        rela: bool,
        offset: u64,
        sym: u32,
        r_type: u32,
        addend: i64,
    ) {
        if self.is_64 {
            self.u64(out, offset);
            self.u64(out, (u64::from(sym) << 32) | u64::from(r_type));
            if rela {
                self.u64(out, addend as u64);
            }
        } else {
            self.u32(out, offset as u32);
            self.u32(out, (sym << 8) | (r_type & 0xff));
            if rela {
                self.u32(out, addend as u32);
            }
        }
    }

    /// Size of a relocation entry.
    pub fn reloc_size(self, rela: bool) -> u64 {
        match (self.is_64, rela) {
            (true, true) => 24,
            (true, false) => 16,
            (false, true) => 12,
            (false, false) => 8,
        }
    }
}

/// A symbol as written.
#[derive(Debug, Clone, Default)]
pub struct SymEntry {
    pub name: u32,
    pub info: u8,
    pub other: u8,
    pub shndx: u16,
    pub value: u64,
    pub size: u64,
}

/// A section as written (the null section is implied at index 0).
#[derive(Debug, Clone, Default)]
pub struct Sec {
    pub name: Vec<u8>,
    pub sh_type: u32,
    pub flags: u64,
    /// The contents (for `SHT_NOBITS`, only `size` counts).
    pub data: Vec<u8>,
    /// `sh_size` for `SHT_NOBITS`.
    pub size: u64,
    pub link: u32,
    pub info: u32,
    pub align: u64,
    pub entsize: u64,
}

/// A string table under construction: offset 0 is the empty string.
#[derive(Debug, Clone)]
pub struct StrTab(pub Vec<u8>);

impl Default for StrTab {
    fn default() -> Self {
        StrTab(vec![0])
    }
}

impl StrTab {
    /// Add `s` (a NUL ends it in the table) and return its offset.
    pub fn add(&mut self, s: &[u8]) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let at = self.0.len() as u32;
        self.0.extend_from_slice(s);
        self.0.push(0);
        at
    }
}

const SHT_NOBITS: u32 = 8;
const SHT_STRTAB: u32 = 3;

/// Write an `ET_REL` object: the sections in order from index 1, then
/// `.shstrtab`, then the section header table.
pub fn write(enc: Enc, machine: u16, e_flags: u32, sections: &[Sec]) -> Vec<u8> {
    let ehsize: u64 = if enc.is_64 { 64 } else { 52 };
    let shentsize: u64 = if enc.is_64 { 64 } else { 40 };
    let mut shstr = StrTab::default();
    let names: Vec<u32> = sections.iter().map(|s| shstr.add(&s.name)).collect();
    let shstrtab_name = shstr.add(b".shstrtab");
    let mut out = vec![0u8; ehsize as usize];
    let mut offsets = Vec::with_capacity(sections.len());
    for s in sections {
        let align = s.align.clamp(1, 64) as usize;
        while out.len() % align != 0 {
            out.push(0);
        }
        offsets.push(out.len() as u64);
        if s.sh_type != SHT_NOBITS {
            out.extend_from_slice(&s.data);
        }
    }
    let shstr_off = out.len() as u64;
    out.extend_from_slice(&shstr.0);
    while out.len() % 8 != 0 {
        out.push(0);
    }
    let shoff = out.len() as u64;
    let shnum = sections.len() as u16 + 2;
    // The header.
    let mut h = Vec::with_capacity(ehsize as usize);
    h.extend_from_slice(b"\x7fELF");
    h.push(if enc.is_64 { 2 } else { 1 });
    h.push(if enc.big_endian { 2 } else { 1 });
    h.push(1);
    h.extend_from_slice(&[0; 9]);
    enc.u16(&mut h, 1); // ET_REL
    enc.u16(&mut h, machine);
    enc.u32(&mut h, 1);
    enc.word(&mut h, 0); // e_entry
    enc.word(&mut h, 0); // e_phoff
    enc.word(&mut h, shoff);
    enc.u32(&mut h, e_flags);
    enc.u16(&mut h, ehsize as u16);
    enc.u16(&mut h, 0);
    enc.u16(&mut h, 0);
    enc.u16(&mut h, shentsize as u16);
    enc.u16(&mut h, shnum);
    enc.u16(&mut h, shnum - 1);
    out[..h.len()].copy_from_slice(&h);
    // The section headers: null, the sections, .shstrtab.
    let shdr = |out: &mut Vec<u8>,
                name: u32,
                t: u32,
                flags: u64,
                off: u64,
                size: u64,
                link: u32,
                info: u32,
                align: u64,
                entsize: u64| {
        enc.u32(out, name);
        enc.u32(out, t);
        enc.word(out, flags);
        enc.word(out, 0);
        enc.word(out, off);
        enc.word(out, size);
        enc.u32(out, link);
        enc.u32(out, info);
        enc.word(out, align);
        enc.word(out, entsize);
    };
    shdr(&mut out, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    for ((s, name), off) in sections.iter().zip(&names).zip(&offsets) {
        let size = if s.sh_type == SHT_NOBITS {
            s.size
        } else {
            s.data.len() as u64
        };
        shdr(
            &mut out, *name, s.sh_type, s.flags, *off, size, s.link, s.info, s.align, s.entsize,
        );
    }
    shdr(
        &mut out,
        shstrtab_name,
        SHT_STRTAB,
        0,
        shstr_off,
        shstr.0.len() as u64,
        0,
        0,
        1,
        0,
    );
    out
}
