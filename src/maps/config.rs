//! The target's kernel `.config` (its headers' `.config`,
//! `/boot/config-<release>`): `CONFIG_KALLSYMS_ALL` decides whether the
//! modules read from `.ko` files keep their data symbols.

use std::path::Path;

use super::SymbolMap;

/// A kernel `.config`: its first line that is not a plain comment sets or
/// unsets a `CONFIG_` option.
/// The text is read as bytes (a config is ASCII where it matters).
pub fn looks_like_kernel_config(text: impl AsRef<[u8]>) -> bool {
    text.as_ref()
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .find(|l| !l.is_empty() && (!l.starts_with(b"#") || l.starts_with(b"# CONFIG_")))
        .is_some_and(|l| l.starts_with(b"CONFIG_") || l.starts_with(b"# CONFIG_"))
}

/// Is `path` a kernel config? Its first 4 KiB tell (ELF and compressed
/// files are not).
pub fn is_kernel_config(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(4096).read_to_end(&mut head));
    read.is_ok() && looks_like_kernel_config(&head)
}

impl SymbolMap {
    /// Take the target's `CONFIG_KALLSYMS_ALL` from its kernel config (the
    /// `.config` of its headers, `/boot/config-<release>`).
    pub fn add_kernel_config(&mut self, text: impl AsRef<[u8]>) {
        let mut lines = text.as_ref().split(|&b| b == b'\n');
        self.kallsyms_all = Some(lines.any(|l| l.trim_ascii() == b"CONFIG_KALLSYMS_ALL=y"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs() {
        assert!(looks_like_kernel_config(
            "#\n# Linux/x86 Kernel Configuration\n#\nCONFIG_KALLSYMS=y\n"
        ));
        assert!(looks_like_kernel_config(
            "# CONFIG_KALLSYMS_ALL is not set\n"
        ));
        assert!(!looks_like_kernel_config("ffffffff81000100 T printk\n"));
        assert!(!looks_like_kernel_config("# a comment\nprintk\n"));
    }
}
