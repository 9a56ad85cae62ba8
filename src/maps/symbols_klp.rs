//! The klp-convert v7 `symbols.klp`: a header line, then `*<object>` lines
//! each opening a block of names. Names only: no addresses, no order of
//! duplicates beyond the file's own. Lines are bytes: a name is kept as it
//! is, whatever its encoding, and written back the same.

use std::io::Read;
use std::path::Path;

#[cfg(test)]
use super::Wanted;
use super::{module_name, MapError, SymbolMap, Symbols};
use crate::fxhash::{FxHashMap, FxHashSet};
use crate::names::VMLINUX;
#[cfg(test)]
use std::sync::Arc;

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

/// The size from which a plain symbols.klp is read on two cores
/// ([`SymbolMap::read_symbols_klp_split`]): a kernel's is 10–30 MB.
const SPLIT_AT_LEAST: u64 = 4 << 20;

/// Where the first line that starts at or after `at` starts in `file`:
/// the byte after the first `\n` from `at - 1` on, looked for in the next
/// 64 KiB. `None` if there is none there.
fn line_start_after(file: &std::fs::File, at: u64) -> Option<u64> {
    use std::os::unix::fs::FileExt as _;
    let from = at.checked_sub(1)?;
    let mut window = vec![0; 1 << 16];
    let n = file.read_at(&mut window, from).ok()?;
    let nl = memchr::memchr(b'\n', &window[..n])?;
    Some(from + nl as u64 + 1)
}

/// `file` read from `at` on by position (pread), so that two threads read
/// their parts of one open file.
struct ReadAt<'f> {
    file: &'f std::fs::File,
    at: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt as _;
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// The names a second half of a symbols.klp begins with, before its first
/// `*` line: they belong to the object the first half ended in.
#[derive(Default)]
struct Head {
    /// The names kept, in order.
    symbols: Symbols,
    /// The names their `__ksymtab_` marks among them export.
    exports: Vec<Vec<u8>>,
    /// The line (of the half) of the first name, kept or not: a name
    /// before any object is an error.
    first_name: Option<usize>,
}

/// A line and where its first `.` is ([`Lines::next_line_dot`]).
type LineDot<'a> = (&'a [u8], Option<usize>);

/// The lines of a reader, read a block at a time: each block's `\n`s are
/// found eight bytes at a time (a symbols.klp has 1.5 million lines).
struct Lines<R> {
    input: R,
    /// The current block: whole lines, each ending in `\n`.
    text: Vec<u8>,
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
            text: Vec::new(),
            pos: 0,
            rest: Vec::new(),
            eof: false,
            n: 0,
        }
    }

    /// The next line (without its `\n`); `None` at the end.
    fn next_line(&mut self) -> Result<Option<&[u8]>, MapError> {
        Ok(self.next_line_dot()?.map(|(line, _)| line))
    }

    /// [`Lines::next_line`], and where its first `.` is.
    fn next_line_dot(&mut self) -> Result<Option<LineDot<'_>>, MapError> {
        if self.pos >= self.text.len() && !self.next_block()? {
            return Ok(None);
        }
        let start = self.pos;
        let rest = self.text.get(start..).unwrap_or_default();
        let (end, dot) = super::newline_and_dot(rest);
        let len = end.unwrap_or(rest.len());
        self.pos = start + len + 1;
        self.n += 1;
        Ok(Some((&rest[..len], dot)))
    }

    /// Read the next block of whole lines into `text`; false at the end.
    fn next_block(&mut self) -> Result<bool, MapError> {
        loop {
            if let Some(i) = memchr::memrchr(b'\n', &self.rest) {
                // The block becomes the text, and the old text's memory
                // takes the bytes after it: two buffers, never a new one.
                let mut tail = std::mem::take(&mut self.text);
                tail.clear();
                tail.extend_from_slice(&self.rest[i + 1..]);
                self.rest.truncate(i + 1);
                self.text = std::mem::replace(&mut self.rest, tail);
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
    pub fn add_symbols_klp(&mut self, text: impl AsRef<[u8]>) -> Result<(), MapError> {
        self.read_symbols_klp(text.as_ref())
    }

    /// [`SymbolMap::add_symbols_klp`] reading a line at a time, so that a
    /// file's text is never held whole next to the map made of it.
    pub fn read_symbols_klp(&mut self, input: impl Read) -> Result<(), MapError> {
        let mut lines = Lines::new(input);
        self.read_header(&mut lines)?;
        // The current block's object is out of the map while its names are
        // added: one map lookup a block, not a line (a 1.5-million-line
        // file has a few thousand blocks). It goes back in whatever happens.
        let mut current: Option<(Vec<u8>, Symbols)> = None;
        let mut begun = FxHashSet::default();
        let read = self.read_blocks(&mut lines, &mut current, &mut begun);
        self.fill_next(&mut current, None, &mut begun);
        read?;
        self.has_exports = true;
        Ok(())
    }

    /// [`SymbolMap::read_symbols_klp`] of the plain symbols.klp at `path`
    /// on two cores, when it is large enough to gain ([`SPLIT_AT_LEAST`]):
    /// its first half read here, the rest at once into a second map, which
    /// is then merged into this one as reading on would have added it.
    /// `None`: not such a file (the caller reads it as before).
    pub(super) fn read_symbols_klp_split(&mut self, path: &Path) -> Option<Result<(), MapError>> {
        use std::os::unix::fs::FileExt as _;
        // One open file, read by position: both halves are of that file,
        // whatever is renamed over its path meanwhile.
        let file = std::fs::File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        let len = meta.len();
        if !meta.is_file() || len < SPLIT_AT_LEAST {
            return None;
        }
        let mut head = [0; SYMBOLS_KLP_HEADER.len()];
        file.read_exact_at(&mut head, 0).ok()?;
        if head != SYMBOLS_KLP_HEADER.as_bytes() {
            return None;
        }
        let split = line_start_after(&file, len / 2)?;
        Some(self.read_split_at(&file, split))
    }

    /// [`SymbolMap::read_symbols_klp_split`] at `split`, the start of a
    /// line of `file`.
    fn read_split_at(&mut self, file: &std::fs::File, split: u64) -> Result<(), MapError> {
        let mut rest = SymbolMap {
            wanted: self.wanted.clone(),
            ..SymbolMap::default()
        };
        let ((head, later), (read, lines, last, begun)) = crate::parallel::join(
            true,
            || rest.read_rest(ReadAt { file, at: split }),
            || {
                let mut lines = Lines::new(ReadAt { file, at: 0 }.take(split));
                let mut current: Option<(Vec<u8>, Symbols)> = None;
                let mut begun = FxHashSet::default();
                let read = self
                    .read_header(&mut lines)
                    .and_then(|()| self.read_blocks(&mut lines, &mut current, &mut begun));
                let last = current.as_ref().map(|(obj, _)| obj.clone());
                self.fill_next(&mut current, None, &mut begun);
                (read, lines.n, last, begun)
            },
        );
        // The errors in the order of their lines.
        read?;
        if let (None, Some(n)) = (&last, head.first_name) {
            return Err(MapError::parse(
                Some(lines + n),
                "symbol before the first *object line",
            ));
        }
        later.map_err(|e| e.after_lines(lines))?;
        self.merge_rest(rest, head, last, &begun)?;
        self.has_exports = true;
        Ok(())
    }

    /// Read the rest of a symbols.klp from a line start: the names before
    /// its first `*` line (which belong to the object the first half ended
    /// in) apart, the blocks after into this map. The names apart come
    /// with any error after them, which a name among them precedes.
    fn read_rest(&mut self, input: impl Read) -> (Head, Result<(), MapError>) {
        let mut lines = Lines::new(input);
        let mut head = Head::default();
        let read = self.read_rest_into(&mut lines, &mut head);
        (head, read)
    }

    /// [`SymbolMap::read_rest`], the names apart into `head`.
    fn read_rest_into(
        &mut self,
        lines: &mut Lines<impl Read>,
        head: &mut Head,
    ) -> Result<(), MapError> {
        let mut current: Option<(Vec<u8>, Symbols)> = None;
        let mut begun = FxHashSet::default();
        // The line number (lines.n, which the line borrowed from `lines`
        // keeps from being read).
        let mut n = 0;
        while let Some((line, dot)) = lines.next_line_dot()? {
            n += 1;
            if let Some(obj) = line.strip_prefix(b"*") {
                self.fill_next(
                    &mut current,
                    Some(module_name(obj.trim_ascii())),
                    &mut begun,
                );
                break;
            }
            if line.trim_ascii().is_empty() {
                continue;
            }
            head.first_name.get_or_insert(n);
            let Some((name, exported)) = self.take_name(line, dot) else {
                continue;
            };
            if let Some(exported) = exported {
                head.exports.push(exported.to_vec());
            }
            head.symbols.push_named(name)?;
        }
        let read = self.read_blocks(lines, &mut current, &mut begun);
        self.fill_next(&mut current, None, &mut begun);
        read
    }

    /// Take in `rest`, the map of a file's second half, and `head`, the
    /// names it began with, after the first half this map read (ending in
    /// the block of `last`, the objects `begun`): as
    /// reading on would have. The head's names go on `last`'s list; an
    /// object the first half began goes on, any other replaces what an
    /// earlier source gave; an export's last owner wins.
    fn merge_rest(
        &mut self,
        rest: SymbolMap,
        head: Head,
        last: Option<Vec<u8>>,
        begun: &FxHashSet<Vec<u8>>,
    ) -> Result<(), MapError> {
        if let Some(last) = last {
            if let Some(symbols) = self.objects.get_mut(&last) {
                for name in head.symbols.names() {
                    symbols.push_named(name)?;
                }
                symbols.shrink_to_fit();
            }
            for name in &head.exports {
                self.add_export(name, &last);
            }
        }
        for (obj, symbols) in rest.objects {
            match self.objects.get_mut(&obj).filter(|_| begun.contains(&obj)) {
                Some(earlier) => {
                    for name in symbols.names() {
                        earlier.push_named(name)?;
                    }
                    earlier.shrink_to_fit();
                }
                None => {
                    self.objects.insert(obj, symbols);
                }
            }
        }
        for (name, owner) in rest.exports {
            self.add_export(&name, &owner);
        }
        Ok(())
    }

    /// The header line of a symbols.klp, checked.
    fn read_header(&mut self, lines: &mut Lines<impl Read>) -> Result<(), MapError> {
        match lines.next_line()? {
            Some(h) if h.starts_with(SYMBOLS_KLP_HEADER.as_bytes()) => Ok(()),
            _ => Err(MapError::parse(
                None,
                format!("not a symbols.klp file (no '{SYMBOLS_KLP_HEADER}' header)"),
            )),
        }
    }

    /// A name line the map keeps (`dot`: where its first `.` is), and the
    /// name it marks exported when it is a `__ksymtab_` mark; `None` for a
    /// line the map does not keep (or an empty one).
    #[inline(always)]
    fn take_name<'l>(
        &self,
        line: &'l [u8],
        dot: Option<usize>,
    ) -> Option<(&'l [u8], Option<&'l [u8]>)> {
        let name = line.trim_ascii();
        if name.is_empty() {
            return None;
        }
        // The base was found with the line's end, unless trimming
        // moved the name's start.
        let keep = match (name.len() == line.len(), dot) {
            (true, Some(d)) => self.keeps_with_base(name, &name[..d]),
            (true, None) => self.keeps_with_base(name, name),
            (false, _) => self.keeps(name),
        };
        if !keep {
            return None;
        }
        // (The first byte first: a call to memcmp a line costs more.)
        let exported = match name.first() {
            Some(b'_') => name.strip_prefix(b"__ksymtab_"),
            _ => None,
        };
        Some((name, exported))
    }

    /// The blocks of a symbols.klp after its header ([`SymbolMap::read_symbols_klp`]).
    fn read_blocks(
        &mut self,
        lines: &mut Lines<impl Read>,
        current: &mut Option<(Vec<u8>, Symbols)>,
        begun: &mut FxHashSet<Vec<u8>>,
    ) -> Result<(), MapError> {
        while let Some((line, dot)) = lines.next_line_dot()? {
            if let Some(obj) = line.strip_prefix(b"*") {
                self.fill_next(current, Some(module_name(obj.trim_ascii())), begun);
                continue;
            }
            if line.trim_ascii().is_empty() {
                continue;
            }
            let Some((obj, symbols)) = current else {
                return Err(MapError::parse(
                    Some(lines.n),
                    "symbol before the first *object line",
                ));
            };
            let Some((name, exported)) = self.take_name(line, dot) else {
                continue;
            };
            if let Some(exported) = exported {
                self.add_export(exported, obj);
            }
            symbols.push_named(name)?;
        }
        Ok(())
    }

    /// Write the map as a v7 `symbols.klp`: vmlinux first, then modules by
    /// name; names sorted as `nm` sorts them (byte order); exports as
    /// `__ksymtab_<x>`. Names are written as their bytes.
    pub fn to_symbols_klp(&self) -> Vec<u8> {
        let mut objs: Vec<(&Vec<u8>, &Symbols)> = self.objects.iter().collect();
        objs.sort_by_key(|(o, _)| (o.as_slice() != VMLINUX, o.as_slice()));
        // Each object's exports, as `__ksymtab_<name>`.
        let mut exports: FxHashMap<&[u8], Vec<Vec<u8>>> = FxHashMap::default();
        for (name, owner) in &self.exports {
            exports
                .entry(owner.as_slice())
                .or_default()
                .push([&b"__ksymtab_"[..], name].concat());
        }
        let mut out = SYMBOLS_KLP_HEADER.as_bytes().to_vec();
        out.push(b'\n');
        for (obj, symbols) in objs {
            out.push(b'*');
            out.extend_from_slice(obj);
            out.push(b'\n');
            // The list of a loaded module: a symbols.klp has no way to
            // mark the symbols kept only while it is coming.
            let mut names: Vec<&[u8]> = symbols
                .names()
                .enumerate()
                .filter(|&(i, _)| !symbols.is_coming_only(i))
                .map(|(_, n)| n)
                .collect();
            if let Some(marks) = exports.get(obj.as_slice()) {
                let known: FxHashSet<&[u8]> = names.iter().copied().collect();
                names.extend(
                    marks
                        .iter()
                        .map(Vec::as_slice)
                        .filter(|m| !known.contains(m)),
                );
            }
            names.sort_unstable();
            for n in names {
                out.extend_from_slice(n);
                out.push(b'\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::Unresolved;
    use super::*;

    /// A file read in two halves at any line start gives the map, or the
    /// error (and its line), that reading it whole gives: an object
    /// continued across the split or begun again after it, an export
    /// whose last owner wins, an object an earlier source gave replaced,
    /// names before any object, with and without a set of wanted names.
    #[test]
    fn read_in_two_halves_is_read_whole() {
        let good = "klp-convert-symbol-data.0.1\n*vmlinux\n__ksymtab_printk\nprintk\n  dup\n\ndup\nkeep.cold\n*mod_a\nx\n__ksymtab_x\n*vmlinux\ndup\n__ksymtab_x\n*mod_b\ny\n*mod_a\nx\nz\n";
        let orphan = "klp-convert-symbol-data.0.1\n\nprintk\n*vmlinux\ndup\n";
        let no_header = "*vmlinux\nprintk\n";
        let mut wanted = Wanted::new();
        for name in ["dup", "x", "keep", "printk"] {
            wanted.add_name(name.as_bytes());
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("symbols.klp");
        for text in [good, orphan, no_header] {
            std::fs::write(&path, text).unwrap();
            for filter in [None, Some(Arc::new(wanted.clone()))] {
                // An earlier source gave mod_b and mod_c.
                let mut before = SymbolMap::new();
                before
                    .add_symbols_klp("klp-convert-symbol-data.0.1\n*mod_b\nold\n*mod_c\nc\n")
                    .unwrap();
                before.wanted = filter.clone();
                let mut whole = before.clone();
                let want = whole
                    .read_symbols_klp(text.as_bytes())
                    .map_err(|e| e.to_string());
                let starts = (1..=text.len()).filter(|&i| text.as_bytes()[i - 1] == b'\n');
                let file = std::fs::File::open(&path).unwrap();
                for split in starts {
                    let mut halves = before.clone();
                    let got = halves
                        .read_split_at(&file, split as u64)
                        .map_err(|e| e.to_string());
                    assert_eq!(got, want, "{text:?} split at {split}");
                    if want.is_ok() {
                        assert_eq!(halves, whole, "{text:?} split at {split}");
                    }
                }
            }
        }
        // The split is found from the middle, at a line start.
        std::fs::write(&path, good).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        assert_eq!(line_start_after(&file, 30), Some(37));
        assert_eq!(&good.as_bytes()[36..42], b"\n__ksy");
        assert_eq!(line_start_after(&file, 28), Some(28), "a line start itself");
        assert_eq!(line_start_after(&file, 0), None);
        let end = good.len() as u64;
        assert_eq!(line_start_after(&file, end), Some(end), "the end");
        assert_eq!(line_start_after(&file, end + 1), None, "past the end");
    }

    #[test]
    fn read_and_write_back() {
        let text = "klp-convert-symbol-data.0.1\n*vmlinux\n__ksymtab_printk\nprintk\nsaved_command_line\n*my-mod\ndup\ndup\n";
        let mut k = SymbolMap::new();
        k.add_symbols_klp(text).unwrap();
        assert_eq!(k.exporter("printk"), Some(&b"vmlinux"[..]));
        let found = k.find("vmlinux", "saved_command_line", 0).unwrap();
        assert_eq!((found.count, found.addr, found.place), (1, None, None));
        assert_eq!(k.find("my_mod", "dup", 0), Err(Unresolved::Ambiguous(2)));
        // Written back byte for byte (names were already in nm order).
        assert_eq!(
            k.to_symbols_klp(),
            text.replace("my-mod", "my_mod").as_bytes()
        );
        let e = SymbolMap::new().add_symbols_klp("*vmlinux\n").unwrap_err();
        assert!(e.to_string().contains("not a symbols.klp file"), "{e}");
        let e = SymbolMap::new()
            .add_symbols_klp("klp-convert-symbol-data.0.1\nprintk\n")
            .unwrap_err();
        assert!(matches!(e, MapError::Parse { line: Some(2), .. }), "{e:?}");
    }

    /// Lines across the reader's blocks: a name longer than a block, many
    /// short ones, no `\n` at the end; a name that is not UTF-8 is kept.
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
        assert_eq!(names.name(0), long.as_bytes());
        assert_eq!(names.name(77_778), b"s77777");
        assert_eq!(names.name(100_001), b"last");

        let mut bad = format!("{SYMBOLS_KLP_HEADER}\n*vmlinux\n").into_bytes();
        for i in 0..50_000 {
            bad.extend_from_slice(format!("s{i}\n").as_bytes());
        }
        bad.extend_from_slice(b"caf\xe9\n__ksymtab_caf\xe9\n");
        let mut k = SymbolMap::new();
        k.read_symbols_klp(&bad[..]).unwrap();
        assert_eq!(k.symbols("vmlinux").name(50_000), b"caf\xe9");
        assert_eq!(k.find("vmlinux", b"caf\xe9", 0).unwrap().position, 1);
        assert_eq!(k.exporter(b"caf\xe9"), Some(&b"vmlinux"[..]));
        // Written back byte for byte, in byte order.
        let back = k.to_symbols_klp();
        assert!(memchr::memmem::find(&back, b"\ncaf\xe9\n").is_some());
        let mut again = SymbolMap::new();
        again.read_symbols_klp(&back[..]).unwrap();
        assert_eq!(again.to_symbols_klp(), back);
    }
}
