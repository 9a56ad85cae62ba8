//! Module `.ko` files (`.ko.xz` and `.ko.zst` too): the core symbols the
//! module loader keeps for kallsyms, in symbol-table order, and module
//! trees (`/lib/modules/<release>`) read on all cores.

use std::path::Path;

use super::{module_name, MapError, MapSymbol, SymbolMap, Symbols};
use crate::elf::{abi, Elf, SHF_ALLOC, SHF_EXECINSTR, SHN_LORESERVE, SHN_UNDEF};
use crate::module_file;

/// The kallsyms letter of an ELF symbol, from its type, section and binding.
pub fn kind_letter(elf: &Elf, sym: &crate::elf::Symbol) -> char {
    let sec = elf.sections.get(sym.section as usize);
    let flags = sec.map_or(0, |s| s.sh_flags);
    let letter = if sym.kind() == abi::STT_FUNC || flags & SHF_EXECINSTR != 0 {
        't'
    } else if sec.is_some_and(|s| s.sh_type == crate::elf::SHT_NOBITS) {
        'b'
    } else if flags & crate::elf::SHF_WRITE != 0 {
        'd'
    } else {
        'r'
    };
    if sym.bind() == abi::STB_LOCAL {
        letter
    } else {
        letter.to_ascii_uppercase()
    }
}

/// The module name a file name gives: `foo-bar.ko.xz` -> `foo_bar` (the
/// file name's bytes, whatever their encoding).
pub fn module_stem(path: &Path) -> Vec<u8> {
    let name = path.file_name().map_or(&[][..], |n| n.as_encoded_bytes());
    let stem = name.split(|&b| b == b'.').next().unwrap_or(name);
    module_name(stem)
}

impl SymbolMap {
    /// Add a module `.ko`: its core symbols in symbol-table order, as the
    /// loader keeps them for kallsyms (`kallsyms_all`: data symbols too).
    /// Fails only past 4 GiB of names.
    pub fn add_module(
        &mut self,
        name: impl AsRef<[u8]>,
        elf: &Elf,
        kallsyms_all: bool,
    ) -> Result<(), MapError> {
        // Local symbols follow the STT_FILE symbol of their source file;
        // globals come after all locals and have no file.
        let first_global = elf
            .symtab
            .and_then(|i| elf.sections.get(i))
            .map_or(0, |s| s.sh_info as usize);
        let mut file: Option<&[u8]> = None;
        let mut syms = Symbols::new();
        for s in &elf.symbols {
            if s.kind() == abi::STT_FILE {
                file = Some(s.name);
                continue;
            }
            if s.st_shndx == SHN_UNDEF || s.st_name == 0 {
                continue;
            }
            let Some(sec) = elf
                .sections
                .get(s.section as usize)
                .filter(|_| s.section < SHN_LORESERVE)
            else {
                continue;
            };
            // The loader clears SHF_ALLOC of .modinfo and __versions.
            let dropped = sec.name == b".modinfo" || sec.name == b"__versions";
            let core = sec.sh_flags & SHF_ALLOC != 0
                && !dropped
                && (kallsyms_all || sec.sh_flags & SHF_EXECINSTR != 0)
                && !crate::arch::is_init_section(sec.name);
            if core {
                syms.push(MapSymbol {
                    name: s.name,
                    kind: kind_letter(elf, s),
                    addr: Some(s.st_value),
                    section: Some(sec.name),
                    file: file.filter(|_| s.index < first_global),
                })?;
            }
        }
        let name = module_name(name);
        // Exports show in the whole symbol table, kallsyms_all or not.
        for s in &elf.symbols {
            let export = s.name.strip_prefix(b"__ksymtab_");
            if let (Some(export), false) = (export, s.st_shndx == SHN_UNDEF) {
                self.exports.insert(export.to_vec(), name.clone());
            }
        }
        syms.shrink_to_fit();
        self.objects.insert(name, syms);
        Ok(())
    }

    /// Add every `.ko`/`.ko.xz`/`.ko.zst` below `dir`, read on all cores
    /// and taken in in file-name order ([`module_file::find_modules`]).
    pub fn add_module_tree(&mut self, dir: &Path) -> Result<(), MapError> {
        let files = module_file::find_modules(&[dir.to_path_buf()])?;
        let maps = crate::parallel::map_files(&files, |f| {
            let mut one = SymbolMap {
                kallsyms_all: self.kallsyms_all,
                ..SymbolMap::new()
            };
            one.add_file(f).map(|()| one)
        });
        for one in maps {
            // A panic (a bug) while reading one module is that file's error.
            let one = one.map_err(|p| MapError::Parse {
                path: Some(p.path.clone()),
                line: None,
                message: format!(
                    "internal error: {} (a bug in klp-convert; please report it with this file)",
                    p.message
                ),
            })?;
            self.merge(one?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems() {
        assert_eq!(module_stem(Path::new("/x/foo-bar.ko.xz")), b"foo_bar");
        assert_eq!(module_stem(Path::new("loop.ko")), b"loop");
    }
}
