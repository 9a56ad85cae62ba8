//! A vmlinux ELF with a symbol table: the symbols the running kernel's
//! kallsyms holds, in address order, local ones with their source file.

use super::module::kind_letter;
use super::{MapError, MapSymbol, SymbolMap, Symbols};
use crate::elf::{abi, Elf, SHN_UNDEF};
use crate::names::VMLINUX;

/// Names in a vmlinux symbol table that the running kernel's kallsyms does
/// not hold: assembler-local labels, arm64 mapping symbols, the export
/// machinery's string and CRC symbols, and kallsyms' own tables (System.map
/// lists those; `/proc/kallsyms` does not). A map keeping them would accept
/// names `klp_find_object_symbol` cannot find.
pub fn kallsyms_omits(name: &[u8]) -> bool {
    const PREFIXES: [&[u8]; 5] = [b".L", b"$", b"__crc_", b"__kstrtab_", b"__kstrtabns_"];
    PREFIXES.iter().any(|p| name.starts_with(p))
        || (name.starts_with(b"kallsyms_")
            && matches!(
                &name[9..],
                b"addresses"
                    | b"offsets"
                    | b"relative_base"
                    | b"num_syms"
                    | b"names"
                    | b"markers"
                    | b"token_table"
                    | b"token_index"
                    | b"seqs_of_names"
            ))
}

impl SymbolMap {
    /// Add a vmlinux ELF (needs a symbol table) as object `vmlinux`.
    pub fn add_vmlinux(&mut self, elf: &Elf) -> Result<(), MapError> {
        if elf.symbols.is_empty() {
            return Err(MapError::parse(
                None,
                "vmlinux has no symbol table (stripped): use System.map or /proc/kallsyms",
            ));
        }
        // Local symbols follow the STT_FILE symbol of their source file.
        let first_global = elf
            .symtab
            .and_then(|i| elf.sections.get(i))
            .map_or(0, |s| s.sh_info as usize);
        // (address, kind, name, file) of each symbol kept, sorted below.
        let mut file: Option<&[u8]> = None;
        let mut kept: Vec<(u64, char, &[u8], Option<u32>)> = Vec::new();
        let mut files: Vec<&[u8]> = Vec::new();
        // Does the whole list carry exports (`__ksymtab_` symbols), those of
        // names not kept included?
        let mut any_export = false;
        for s in &elf.symbols {
            if s.kind() == abi::STT_FILE {
                file = Some(s.name);
                continue;
            }
            // Absolute symbols (linker constants) are not in kallsyms either.
            if s.st_shndx == SHN_UNDEF
                || s.st_shndx == abi::SHN_ABS
                || s.name.is_empty()
                || s.kind() == abi::STT_SECTION
                || kallsyms_omits(s.name)
            {
                continue;
            }
            any_export |= s.name.starts_with(b"__ksymtab_");
            if !self.keeps(s.name) {
                continue;
            }
            let file = match file {
                Some(f) if (s.index as usize) < first_global => {
                    if files.last() != Some(&f) {
                        files.push(f);
                    }
                    Some(files.len() as u32 - 1)
                }
                _ => None,
            };
            kept.push((s.st_value, kind_letter(elf, s), s.name, file));
        }
        // Same-named vmlinux symbols count in address order (a stable sort:
        // symbols at one address keep their symbol-table order).
        kept.sort_by_key(|&(addr, ..)| addr);
        let syms = Symbols::from_list(kept.iter().map(|(addr, kind, name, file)| MapSymbol {
            kind: *kind,
            addr: Some(*addr),
            file: file.and_then(|f| files.get(f as usize)).copied(),
            ..MapSymbol::named(name)
        }))?;
        self.take_exports(VMLINUX, &syms, true);
        self.has_exports |= any_export;
        self.objects.insert(VMLINUX.to_vec(), syms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omitted_names() {
        for name in [".Ltmp1", "$x", "__crc_printk", "kallsyms_names"] {
            assert!(kallsyms_omits(name.as_bytes()), "{name}");
        }
        for name in ["printk", "kallsyms_lookup_name", "kallsyms_"] {
            assert!(!kallsyms_omits(name.as_bytes()), "{name}");
        }
    }
}
