//! The klp-convert v7 `symbols.klp`: a header line, then `*<object>` lines
//! each opening a block of names. Names only: no addresses, no order of
//! duplicates beyond the file's own.

use std::io::Read;
use std::path::Path;

use super::{module_name, MapError, SymbolMap, Symbols};
use crate::fxhash::{FxHashMap, FxHashSet};

/// The first line of a v7 `symbols.klp` (only these bytes are compared).
pub const SYMBOLS_KLP_HEADER: &str = "klp-convert-symbol-data.0.1";

/// `path` opened for [`SymbolMap::read_symbols_klp`] when it is a plain
/// (not compressed) symbols.klp; `None` for anything else, or when it
/// cannot be read (the caller's own reading reports that).
pub(super) fn open_plain(path: &Path) -> Option<impl Read> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut head = Vec::with_capacity(SYMBOLS_KLP_HEADER.len());
    (&mut file)
        .take(SYMBOLS_KLP_HEADER.len() as u64)
        .read_to_end(&mut head)
        .ok()?;
    let is_klp = head == SYMBOLS_KLP_HEADER.as_bytes();
    is_klp.then(|| std::io::Cursor::new(head).chain(file))
}

/// The lines of a reader, read a block at a time: each block's `\n`s are
/// found with `memchr`, and its text is checked as UTF-8 once, not line by
/// line (a symbols.klp has 1.5 million lines).
struct Lines<R> {
    input: R,
    /// The current block: whole lines, each ending in `\n`.
    text: String,
    /// Where the next line starts in `text`.
    pos: usize,
    /// Bytes read after the block's last whole line.
    rest: Vec<u8>,
    eof: bool,
    /// Lines returned so far, for messages.
    n: usize,
}

/// How much a read asks for.
const BLOCK: usize = 1 << 18;

impl<R: Read> Lines<R> {
    fn new(input: R) -> Self {
        Lines {
            input,
            text: String::new(),
            pos: 0,
            rest: Vec::new(),
            eof: false,
            n: 0,
        }
    }

    /// The next line (without its `\n`); `None` at the end.
    fn next_line(&mut self) -> Result<Option<&str>, MapError> {
        if self.pos == self.text.len() && !self.next_block()? {
            return Ok(None);
        }
        let start = self.pos;
        let len = memchr::memchr(b'\n', &self.text.as_bytes()[start..])
            .unwrap_or(self.text.len() - start);
        self.pos = start + len + 1;
        self.n += 1;
        // A `\n` never splits a character.
        Ok(Some(&self.text[start..start + len]))
    }

    /// Read the next block of whole lines into `text`; false at the end.
    fn next_block(&mut self) -> Result<bool, MapError> {
        loop {
            if let Some(i) = memchr::memrchr(b'\n', &self.rest) {
                // The block becomes the text, and the old text's memory
                // takes the bytes after it: two buffers, never a new one.
                let mut tail = std::mem::take(&mut self.text).into_bytes();
                tail.clear();
                tail.extend_from_slice(&self.rest[i + 1..]);
                self.rest.truncate(i + 1);
                let block = std::mem::replace(&mut self.rest, tail);
                self.text = String::from_utf8(block).map_err(|e| {
                    let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                    let line = self.n + 1 + memchr::memchr_iter(b'\n', good).count();
                    MapError::parse(Some(line), "not UTF-8 text")
                })?;
                self.pos = 0;
                return Ok(true);
            }
            if self.eof {
                if self.rest.is_empty() {
                    return Ok(false);
                }
                // The last line has no `\n`: it gets one.
                self.rest.push(b'\n');
                continue;
            }
            // Into the vector's spare room, which is not zeroed first.
            let read = (&mut self.input)
                .take(BLOCK as u64)
                .read_to_end(&mut self.rest);
            match read {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(MapError::parse(
                        Some(self.n + 1),
                        format!("cannot read: {e}"),
                    ))
                }
            }
        }
    }
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
    pub fn read_symbols_klp(&mut self, input: impl Read) -> Result<(), MapError> {
        let mut lines = Lines::new(input);
        match lines.next_line()? {
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
        let read = self.read_blocks(&mut lines, &mut current);
        self.fill_next(&mut current, None);
        read?;
        self.has_exports = true;
        Ok(())
    }

    /// The blocks of a symbols.klp after its header ([`SymbolMap::read_symbols_klp`]).
    fn read_blocks(
        &mut self,
        lines: &mut Lines<impl Read>,
        current: &mut Option<(String, Symbols)>,
    ) -> Result<(), MapError> {
        while let Some(line) = lines.next_line()? {
            if let Some(obj) = line.strip_prefix('*') {
                self.fill_next(current, Some(module_name(obj.trim_ascii())));
                continue;
            }
            let name = line.trim_ascii();
            if name.is_empty() {
                continue;
            }
            let Some((obj, symbols)) = current else {
                return Err(MapError::parse(
                    Some(lines.n),
                    "symbol before the first *object line",
                ));
            };
            // (The first byte first: a call to memcmp a line costs more.)
            let exported = match name.as_bytes().first() {
                Some(b'_') => name.strip_prefix("__ksymtab_"),
                _ => None,
            };
            if let Some(exported) = exported {
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

    /// Lines across the reader's blocks: a name longer than a block, many
    /// short ones, no `\n` at the end; a line that is not text is named.
    #[test]
    fn lines_across_blocks() {
        let long = "x".repeat(BLOCK + 10);
        let mut text = format!("{SYMBOLS_KLP_HEADER}\n*vmlinux\n{long}\n");
        for i in 0..100_000 {
            text.push_str(&format!("s{i}\n"));
        }
        text.push_str("last");
        let mut k = SymbolMap::new();
        k.read_symbols_klp(text.as_bytes()).unwrap();
        let names = k.symbols("vmlinux");
        assert_eq!(names.len(), 100_002);
        assert_eq!(names.name(0), long);
        assert_eq!(names.name(77_778), "s77777");
        assert_eq!(names.name(100_001), "last");

        let mut bad = format!("{SYMBOLS_KLP_HEADER}\n*vmlinux\n").into_bytes();
        for i in 0..50_000 {
            bad.extend_from_slice(format!("s{i}\n").as_bytes());
        }
        bad.extend_from_slice(b"caf\xe9\n");
        let e = SymbolMap::new().read_symbols_klp(&bad[..]).unwrap_err();
        assert!(
            matches!(
                e,
                MapError::Parse {
                    line: Some(50_003),
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
