//! `Module.symvers`: the export list kbuild writes,
//! `crc<TAB>symbol<TAB>module<TAB>export-type[<TAB>namespace]` a line.

use super::{lines, write_module_name, MapError, SymbolMap};

/// Does a file whose first line is `first` look like a `Module.symvers`?
pub(super) fn looks_like_symvers(first: &[u8]) -> bool {
    first.starts_with(b"0x") && first.split(|&b| b == b'\t').count() >= 4
}

impl SymbolMap {
    /// Add a `Module.symvers`: `crc<TAB>symbol<TAB>module<TAB>export-type[<TAB>namespace]`.
    /// Lines are bytes: a name is kept as it is, whatever its encoding.
    pub fn add_symvers(&mut self, text: impl AsRef<[u8]>) -> Result<(), MapError> {
        let mut owner_name = Vec::new();
        for (n, line) in lines(text.as_ref()).enumerate() {
            // Four fields are three tabs; the rest of the line is not read.
            let mut tabs = memchr::memchr_iter(b'\t', line);
            let (Some(t1), Some(t2), Some(t3)) = (tabs.next(), tabs.next(), tabs.next()) else {
                if line.trim_ascii().is_empty() {
                    continue;
                }
                return Err(MapError::parse(
                    Some(n + 1),
                    "expected crc, symbol, module, export type",
                ));
            };
            let symbol = &line[t1 + 1..t2];
            if !self.keeps(symbol) {
                continue;
            }
            let owner = &line[t2 + 1..t3];
            // The module column is `vmlinux` or the module's path in the tree.
            let owner = owner.rsplit(|&b| b == b'/').next().unwrap_or(owner);
            owner_name.clear();
            write_module_name(&mut owner_name, owner);
            self.add_export(symbol, &owner_name);
        }
        self.has_exports = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symvers() {
        let mut m = SymbolMap::new();
        assert_eq!(m.is_exported("printk"), None);
        m.add_symvers("0x1\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n0x2\tfoo_fn\tdrivers/net/foo-bar\tEXPORT_SYMBOL_GPL\t\n")
            .unwrap();
        assert_eq!(m.exporter("printk"), Some(&b"vmlinux"[..]));
        assert_eq!(m.exporter("foo_fn"), Some(&b"foo_bar"[..]));
        assert_eq!(m.is_exported("nope"), Some(false));
        let e = m.add_symvers("0x1\tprintk\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: expected crc, symbol, module, export type"
        );
        assert!(looks_like_symvers(b"0x1\tprintk\tvmlinux\tEXPORT_SYMBOL"));
    }
}
