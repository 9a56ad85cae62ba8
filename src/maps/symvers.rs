//! `Module.symvers`: the export list kbuild writes,
//! `crc<TAB>symbol<TAB>module<TAB>export-type[<TAB>namespace]` a line.

use super::{module_name, MapError, SymbolMap};

/// Does a file whose first line is `first` look like a `Module.symvers`?
pub(super) fn looks_like_symvers(first: &str) -> bool {
    first.starts_with("0x") && first.split('\t').count() >= 4
}

impl SymbolMap {
    /// Add a `Module.symvers`: `crc<TAB>symbol<TAB>module<TAB>export-type[<TAB>namespace]`.
    pub fn add_symvers(&mut self, text: &str) -> Result<(), MapError> {
        for (n, line) in text.lines().enumerate() {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() < 4 {
                if line.trim().is_empty() {
                    continue;
                }
                return Err(MapError::parse(
                    Some(n + 1),
                    "expected crc, symbol, module, export type",
                ));
            }
            // The module column is `vmlinux` or the module's path in the tree.
            let owner = fields[2].rsplit('/').next().unwrap_or(fields[2]);
            self.exports
                .insert(fields[1].to_string(), module_name(owner));
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
        assert_eq!(m.exporter("printk"), Some("vmlinux"));
        assert_eq!(m.exporter("foo_fn"), Some("foo_bar"));
        assert_eq!(m.is_exported("nope"), Some(false));
        let e = m.add_symvers("0x1\tprintk\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: expected crc, symbol, module, export type"
        );
        assert!(looks_like_symvers("0x1\tprintk\tvmlinux\tEXPORT_SYMBOL"));
    }
}
