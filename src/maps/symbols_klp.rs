//! The klp-convert v7 `symbols.klp`: a header line, then `*<object>` lines
//! each opening a block of names. Names only: no addresses, no order of
//! duplicates beyond the file's own.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::{module_name, MapError, SymbolMap, Symbols};
use crate::fxhash::{FxHashMap, FxHashSet};

/// The first line of a v7 `symbols.klp` (only these bytes are compared).
pub const SYMBOLS_KLP_HEADER: &str = "klp-convert-symbol-data.0.1";

/// `path` opened for [`SymbolMap::read_symbols_klp`] when it is a plain
/// (not compressed) symbols.klp; `None` for anything else, or when it
/// cannot be read (the caller's own reading reports that).
pub(super) fn open_plain(path: &Path) -> Option<impl BufRead> {
    let file = std::fs::File::open(path).ok()?;
    let mut input = BufReader::with_capacity(1 << 16, file);
    let mut head = Vec::with_capacity(SYMBOLS_KLP_HEADER.len());
    (&mut input)
        .take(SYMBOLS_KLP_HEADER.len() as u64)
        .read_to_end(&mut head)
        .ok()?;
    let is_klp = head == SYMBOLS_KLP_HEADER.as_bytes();
    is_klp.then(|| std::io::Cursor::new(head).chain(input))
}

/// The next line of `input` into `line` (without its `\n`); false at the
/// end. `n` counts the lines, for messages.
fn next_line<'b>(
    input: &mut impl BufRead,
    buf: &'b mut Vec<u8>,
    n: &mut usize,
) -> Result<Option<&'b str>, MapError> {
    buf.clear();
    *n += 1;
    let read = input
        .read_until(b'\n', buf)
        .map_err(|e| MapError::parse(Some(*n), format!("cannot read: {e}")))?;
    if read == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    std::str::from_utf8(buf)
        .map(Some)
        .map_err(|_| MapError::parse(Some(*n), "not UTF-8 text"))
}

impl SymbolMap {
    /// Add a klp-convert v7 `symbols.klp`: a header line, then `*<object>`
    /// lines opening a block of names (nm's order). `__ksymtab_<x>` marks
    /// `<x>` as exported by the block's object. The file has no addresses:
    /// positions of duplicates cannot be known from it.
    pub fn add_symbols_klp(&mut self, text: &str) -> Result<(), MapError> {
        self.read_symbols_klp(text.as_bytes())
    }

    /// [`SymbolMap::add_symbols_klp`] reading a line at a time, so that a
    /// file's text is never held whole next to the map made of it.
    pub fn read_symbols_klp(&mut self, mut input: impl BufRead) -> Result<(), MapError> {
        let (mut buf, mut n) = (Vec::new(), 0);
        match next_line(&mut input, &mut buf, &mut n)? {
            Some(h) if h.starts_with(SYMBOLS_KLP_HEADER) => {}
            _ => {
                return Err(MapError::parse(
                    None,
                    format!("not a symbols.klp file (no '{SYMBOLS_KLP_HEADER}' header)"),
                ))
            }
        }
        // The current block's object is out of the map while its names are
        // added: one map lookup a block, not a line (a 1.5-million-line
        // file has a few thousand blocks). It goes back in whatever happens.
        let mut current: Option<(String, Symbols)> = None;
        let read = self.read_blocks(&mut input, &mut buf, &mut n, &mut current);
        if let Some((obj, mut symbols)) = current {
            symbols.shrink_to_fit();
            self.objects.insert(obj, symbols);
        }
        read?;
        self.has_exports = true;
        Ok(())
    }

    /// The blocks of a symbols.klp after its header ([`SymbolMap::read_symbols_klp`]).
    fn read_blocks(
        &mut self,
        input: &mut impl BufRead,
        buf: &mut Vec<u8>,
        n: &mut usize,
        current: &mut Option<(String, Symbols)>,
    ) -> Result<(), MapError> {
        while let Some(line) = next_line(input, buf, n)? {
            if let Some(obj) = line.strip_prefix('*') {
                let obj = module_name(obj.trim());
                if let Some((done, mut symbols)) = current.take() {
                    symbols.shrink_to_fit();
                    self.objects.insert(done, symbols);
                }
                let symbols = self.objects.remove(&obj).unwrap_or_default();
                *current = Some((obj, symbols));
                continue;
            }
            let name = line.trim();
            if name.is_empty() {
                continue;
            }
            let Some((obj, symbols)) = current else {
                return Err(MapError::parse(
                    Some(*n),
                    "symbol before the first *object line",
                ));
            };
            if let Some(exported) = name.strip_prefix("__ksymtab_") {
                self.exports.insert(exported.to_string(), obj.clone());
            }
            symbols.push_named(name)?;
        }
        Ok(())
    }

    /// Write the map as a v7 `symbols.klp`: vmlinux first, then modules by
    /// name; names sorted as `nm` sorts them; exports as `__ksymtab_<x>`.
    pub fn to_symbols_klp(&self) -> String {
        let mut objs: Vec<(&String, &Symbols)> = self.objects.iter().collect();
        objs.sort_by_key(|(o, _)| (o.as_str() != "vmlinux", o.as_str()));
        // Each object's exports, as `__ksymtab_<name>`.
        let mut exports: FxHashMap<&str, Vec<String>> = FxHashMap::default();
        for (name, owner) in &self.exports {
            exports
                .entry(owner.as_str())
                .or_default()
                .push(format!("__ksymtab_{name}"));
        }
        let mut out = String::from(SYMBOLS_KLP_HEADER);
        out.push('\n');
        for (obj, symbols) in objs {
            out.push('*');
            out.push_str(obj);
            out.push('\n');
            let mut names: Vec<&str> = symbols.names().collect();
            if let Some(marks) = exports.get(obj.as_str()) {
                let known: FxHashSet<&str> = names.iter().copied().collect();
                names.extend(
                    marks
                        .iter()
                        .map(String::as_str)
                        .filter(|m| !known.contains(m)),
                );
            }
            names.sort_unstable();
            for n in names {
                out.push_str(n);
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
