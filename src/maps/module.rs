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
    /// Add a module `.ko`: its symbols in symbol-table order, both of the
    /// lists the livepatch core may count them in (`docs/klp-contract.md`
    /// §4). The symbols a loaded module keeps for kallsyms
    /// (`kallsyms_all`: data symbols too) are the loaded list; the others
    /// are marked [`MapSymbol::coming_only`]: `klp_module_coming` counts
    /// them too, since it runs before the module's init, while
    /// `mod->kallsyms` is still the full symbol table. Fails only past
    /// 4 GiB of names.
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
        let keeps_init = crate::arch::keeps_init_sections(elf.machine);
        // A livepatch module keeps every symbol after its init
        // (`is_livepatch_module` in `add_kallsyms`): one list.
        let keeps_all = elf.is_livepatch();
        let mut syms = Symbols::new();
        for s in &elf.symbols {
            if s.kind() == abi::STT_FILE {
                file = Some(s.name);
            }
            // Both lists skip undefined symbols; a symbol without a name
            // can never match a klp symbol's name.
            if s.st_shndx == SHN_UNDEF || s.st_name == 0 || !self.keeps(s.name) {
                continue;
            }
            // `is_core_symbol` compares the raw index with e_shnum: a
            // symbol of SHN_ABS or SHN_XINDEX is never kept.
            let sec = elf
                .sections
                .get(s.section as usize)
                .filter(|_| u32::from(s.st_shndx) < SHN_LORESERVE);
            let core = keeps_all
                || sec.is_some_and(|sec| {
                    // The loader clears SHF_ALLOC of .modinfo and __versions.
                    let dropped = sec.name == b".modinfo" || sec.name == b"__versions";
                    sec.sh_flags & SHF_ALLOC != 0
                        && !dropped
                        && (kallsyms_all || sec.sh_flags & SHF_EXECINSTR != 0)
                        && (keeps_init || !crate::arch::is_init_section(sec.name))
                });
            syms.push(MapSymbol {
                name: s.name,
                kind: kind_letter(elf, s),
                addr: Some(s.st_value),
                section: sec.map(|sec| sec.name),
                file: file
                    .filter(|_| (s.index as usize) < first_global && s.kind() != abi::STT_FILE),
                coming_only: !core,
            })?;
        }
        syms.set_both_lists(true);
        let name = module_name(name);
        // Exports show in the whole symbol table, kallsyms_all or not.
        for s in &elf.symbols {
            let export = s.name.strip_prefix(b"__ksymtab_");
            if let (Some(export), false) = (export, s.st_shndx == SHN_UNDEF || !self.keeps(s.name))
            {
                self.add_export(export, &name);
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
                wanted: self.wanted.clone(),
                ..SymbolMap::new()
            };
            one.add_file(f).map(|()| one)
        });
        // Every module is read; every one that fails is named.
        let mut errors = Vec::new();
        // Which file gave each module: two files of one name are two
        // candidates for one module the kernel loads once.
        let mut from: std::collections::HashMap<Vec<u8>, &Path> = std::collections::HashMap::new();
        for (one, file) in maps.into_iter().zip(&files) {
            // A panic (a bug) while reading one module is that file's error.
            let one = one.map_err(|p| MapError::Parse {
                path: Some(p.path.clone()),
                line: None,
                message: format!(
                    "internal error: {} (a bug in klp-convert; please report it with this file)",
                    p.message
                ),
            });
            match one {
                Ok(Ok(one)) => {
                    for obj in one.objects.keys() {
                        if let Some(first) = from.insert(obj.clone(), file) {
                            errors.push(MapError::Parse {
                                path: Some(file.clone()),
                                line: None,
                                message: format!(
                                    "module {} again: {} has it too; the kernel loads one of them (depmod's search order decides): give the one it loads with --symbols",
                                    crate::names::show(obj),
                                    first.display()
                                ),
                            });
                        }
                    }
                    self.merge(one)
                }
                Ok(Err(e)) | Err(e) => errors.push(e),
            }
        }
        if errors.len() == 1 {
            return Err(errors.remove(0));
        }
        if !errors.is_empty() {
            return Err(MapError::Tree {
                dir: dir.to_path_buf(),
                errors,
            });
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
