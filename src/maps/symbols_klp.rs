//! The klp-convert v7 `symbols.klp`: a header line, then `*<object>` lines
//! each opening a block of names. Names only: no addresses, no order of
//! duplicates beyond the file's own.

use super::{module_name, MapError, MapSymbol, SymbolMap};

/// The first line of a v7 `symbols.klp` (only these bytes are compared).
pub const SYMBOLS_KLP_HEADER: &str = "klp-convert-symbol-data.0.1";

impl SymbolMap {
    /// Add a klp-convert v7 `symbols.klp`: a header line, then `*<object>`
    /// lines opening a block of names (nm's order). `__ksymtab_<x>` marks
    /// `<x>` as exported by the block's object. The file has no addresses:
    /// positions of duplicates cannot be known from it.
    pub fn add_symbols_klp(&mut self, text: &str) -> Result<(), MapError> {
        let mut lines = text.lines();
        match lines.next() {
            Some(h) if h.starts_with(SYMBOLS_KLP_HEADER) => {}
            _ => {
                return Err(MapError::parse(
                    None,
                    format!("not a symbols.klp file (no '{SYMBOLS_KLP_HEADER}' header)"),
                ))
            }
        }
        // The current block's symbols collect in `list` and join their
        // object's list when the block ends: one map lookup a block, not a
        // line (a 1.5-million-line file has a few thousand blocks).
        let mut current: Option<String> = None;
        let mut list: Vec<MapSymbol> = Vec::new();
        for (n, line) in lines.enumerate() {
            if let Some(obj) = line.strip_prefix('*') {
                let obj = module_name(obj.trim());
                self.end_block(current.take(), &mut list);
                self.objects.entry(obj.clone()).or_default();
                current = Some(obj);
                continue;
            }
            let name = line.trim();
            if name.is_empty() {
                continue;
            }
            let Some(obj) = &current else {
                return Err(MapError::parse(
                    Some(n + 2),
                    "symbol before the first *object line",
                ));
            };
            if let Some(exported) = name.strip_prefix("__ksymtab_") {
                self.exports.insert(exported.to_string(), obj.clone());
            }
            list.push(MapSymbol {
                name: name.to_string(),
                kind: '?',
                addr: None,
                section: None,
                file: None,
            });
        }
        self.end_block(current, &mut list);
        self.has_exports = true;
        Ok(())
    }

    /// Append the symbols of a block to its object's list (`list` is left
    /// empty).
    fn end_block(&mut self, obj: Option<String>, list: &mut Vec<MapSymbol>) {
        if let Some(obj) = obj {
            let all = self.objects.entry(obj).or_default();
            if all.is_empty() {
                std::mem::swap(all, list);
            } else {
                all.append(list);
            }
        }
    }

    /// Write the map as a v7 `symbols.klp`: vmlinux first, then modules by
    /// name; names sorted as `nm` sorts them; exports as `__ksymtab_<x>`.
    pub fn to_symbols_klp(&self) -> String {
        let mut objs: Vec<(&String, &Vec<MapSymbol>)> = self.objects.iter().collect();
        objs.sort_by_key(|(o, _)| (o.as_str() != "vmlinux", o.as_str()));
        let mut out = String::from(SYMBOLS_KLP_HEADER);
        out.push('\n');
        for (obj, symbols) in objs {
            out.push('*');
            out.push_str(obj);
            out.push('\n');
            let mut names: Vec<String> = symbols.iter().map(|s| s.name.clone()).collect();
            for (name, owner) in &self.exports {
                if owner == obj && !names.iter().any(|n| n == &format!("__ksymtab_{name}")) {
                    names.push(format!("__ksymtab_{name}"));
                }
            }
            names.sort();
            for n in names {
                out.push_str(&n);
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::Unresolved;
    use super::*;

    #[test]
    fn read_and_write_back() {
        let text = "klp-convert-symbol-data.0.1\n*vmlinux\n__ksymtab_printk\nprintk\nsaved_command_line\n*my-mod\ndup\ndup\n";
        let mut k = SymbolMap::new();
        k.add_symbols_klp(text).unwrap();
        assert_eq!(k.exporter("printk"), Some("vmlinux"));
        let found = k.find("vmlinux", "saved_command_line", 0).unwrap();
        assert_eq!((found.count, found.addr, found.place), (1, None, None));
        assert_eq!(k.find("my_mod", "dup", 0), Err(Unresolved::Ambiguous(2)));
        // Written back byte for byte (names were already in nm order).
        assert_eq!(k.to_symbols_klp(), text.replace("my-mod", "my_mod"));
        let e = SymbolMap::new().add_symbols_klp("*vmlinux\n").unwrap_err();
        assert!(e.to_string().contains("not a symbols.klp file"), "{e}");
        let e = SymbolMap::new()
            .add_symbols_klp("klp-convert-symbol-data.0.1\nprintk\n")
            .unwrap_err();
        assert!(matches!(e, MapError::Parse { line: Some(2), .. }), "{e:?}");
    }
}
