//! One object's symbols, stored compactly: a map of a whole kernel holds
//! over a million of them, so each costs a few bytes beyond its name.
//!
//! The names (bytes, whatever their encoding) lie back to back in one buffer; a byte a symbol gives the
//! length of its name, and the start of every [`STRIDE`]th name is kept
//! (1.25 bytes a symbol, where an offset each would cost 4). The other fields are columns ([`Column`]) that take no memory
//! while every symbol has the same value (a symbols.klp gives no kinds,
//! addresses, sections or files), and section and file names are stored
//! once an object ([`Symbols::strings`]). [`MapSymbol`] is the view of one.

use std::fmt;
use std::sync::LazyLock;

use serde::ser::SerializeSeq as _;
use serde::{Serialize, Serializer};

use super::MapError;
use crate::fxhash::FxHashMap;
use crate::names::Show;

/// One symbol of an object, as kallsyms shows it: a view into the
/// object's [`Symbols`]. Names are bytes; the JSON map writes them as
/// [`super::json`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapSymbol<'a> {
    /// The name.
    pub name: &'a [u8],
    /// The kallsyms type letter (`t`, `T`, `d`, `D`, `r`, `b`, ...):
    /// lower case for local binding, upper case for global; `?` unknown.
    pub kind: char,
    /// Its address (or, for a `.ko`, its value in its section); `None` when
    /// the map does not know it (a symbols.klp has names only).
    pub addr: Option<u64>,
    /// For a `.ko`, the section the value is relative to.
    pub section: Option<&'a [u8]>,
    /// The source file, where the map knows it (a `.ko`'s local symbols).
    pub file: Option<&'a [u8]>,
    /// A module symbol the loader keeps only while the module is coming:
    /// it is in the full symbol table `klp_module_coming` searches, but not
    /// in the `core_kallsyms` a loaded module keeps (an `.init*` symbol,
    /// one of a section that is not allocated, a data symbol without
    /// `CONFIG_KALLSYMS_ALL`). See [`crate::maps::LoadOrder`].
    pub coming_only: bool,
}

impl<'a> MapSymbol<'a> {
    /// A symbol known by name only (as a symbols.klp gives it).
    pub fn named(name: &'a [u8]) -> Self {
        MapSymbol {
            name,
            kind: '?',
            addr: None,
            section: None,
            file: None,
            coming_only: false,
        }
    }

    /// Where it is, for messages: `0xffffffff81000100`, `.rodata+0x40`,
    /// either followed by ` in <file>` when the file is known; `None` when
    /// the map knows neither address nor file.
    pub fn place(&self) -> Option<String> {
        let at = match (self.section, self.addr) {
            (Some(s), Some(a)) => Some(format!("{}+0x{a:x}", Show(s))),
            (None, Some(a)) => Some(format!("0x{a:x}")),
            (Some(s), None) => Some(Show(s).to_string()),
            (None, None) => None,
        };
        match (at, self.file) {
            (Some(at), Some(f)) => Some(format!("{at} in {}", Show(f))),
            (Some(at), None) => Some(at),
            (None, Some(f)) => Some(format!("in {}", Show(f))),
            (None, None) => None,
        }
    }
}

/// A field of every symbol: one value for all of them until two differ,
/// then one a symbol.
#[derive(Debug, Clone)]
enum Column<T> {
    /// Every symbol so far (the count) has this value.
    Same(T, usize),
    /// The value of each symbol.
    Each(Vec<T>),
}

impl<T: Copy + PartialEq> Column<T> {
    /// Add a value: the common case, one more of the same, inline.
    #[inline]
    fn push(&mut self, value: T) {
        match self {
            Column::Same(v, n) if *v == value => *n += 1,
            _ => self.push_other(value),
        }
    }

    fn push_other(&mut self, value: T) {
        match self {
            Column::Same(v, n) if *n == 0 || *v == value => {
                *v = value;
                *n += 1;
            }
            Column::Same(v, n) => {
                let mut each = Vec::with_capacity(*n + 1);
                each.resize(*n, *v);
                each.push(value);
                *self = Column::Each(each);
            }
            Column::Each(each) => each.push(value),
        }
    }

    /// The value of symbol `i` (`default` past the end).
    fn get(&self, i: usize, default: T) -> T {
        match self {
            Column::Same(v, n) if i < *n => *v,
            Column::Same(..) => default,
            Column::Each(each) => each.get(i).copied().unwrap_or(default),
        }
    }

    fn shrink_to_fit(&mut self) {
        if let Column::Each(each) = self {
            each.shrink_to_fit();
        }
    }
}

/// How many names one kept start covers ([`Symbols`]).
const STRIDE: usize = 16;

/// The length byte of a name of 255 bytes or more.
const LONG: u8 = u8::MAX;

/// No section or file (an index into [`Symbols::strings`] is one more
/// than the string's position).
const NO_STRING: u32 = 0;

/// The symbols of one object in counting order (see the module doc).
#[derive(Clone)]
pub struct Symbols {
    /// Every name, back to back.
    names: Vec<u8>,
    /// The length of each name; [`LONG`] for one of that length or more,
    /// whose length is in `long`.
    lens: Vec<u8>,
    /// Where names 0, [`STRIDE`], 2 × [`STRIDE`], ... start in `names`.
    starts: Vec<u32>,
    /// (symbol, length) of the names of [`LONG`] bytes or more, by symbol.
    long: Vec<(u32, u32)>,
    kinds: Column<char>,
    addrs: Column<Option<u64>>,
    /// Sections and files: [`NO_STRING`] or one more than the position in
    /// `strings`.
    sections: Column<u32>,
    files: Column<u32>,
    coming_only: Column<bool>,
    /// Does the list hold both of the kernel's lists of a module (read
    /// from its `.ko`), the symbols kept only while it is coming marked?
    /// A kallsyms dump, a symbols.klp or a JSON map written without it
    /// gives only what a loaded module keeps.
    both_lists: bool,
    /// The section and file names, each once.
    strings: Vec<Box<[u8]>>,
    /// `strings` -> their index, for adding symbols.
    ids: FxHashMap<Box<[u8]>, u32>,
}

impl Default for Symbols {
    fn default() -> Self {
        Symbols::new()
    }
}

/// An object's names add up to more than `u32` can count.
fn too_large() -> MapError {
    MapError::parse(
        None,
        "the symbols of one object exceed 4 GiB of names or 4 G symbols",
    )
}

impl Symbols {
    /// No symbols.
    pub fn new() -> Self {
        Symbols {
            names: Vec::new(),
            lens: Vec::new(),
            starts: Vec::new(),
            long: Vec::new(),
            kinds: Column::Same('?', 0),
            addrs: Column::Same(None, 0),
            sections: Column::Same(NO_STRING, 0),
            files: Column::Same(NO_STRING, 0),
            coming_only: Column::Same(false, 0),
            both_lists: false,
            strings: Vec::new(),
            ids: FxHashMap::default(),
        }
    }

    /// How many symbols.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// No symbols at all?
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// The length of name `i` (0 past the end).
    fn name_len(&self, i: usize) -> usize {
        match self.lens.get(i) {
            Some(&LONG) => {
                let found = self.long.binary_search_by_key(&i, |&(j, _)| j as usize);
                found.map_or(0, |k| self.long[k].1 as usize)
            }
            Some(&len) => len as usize,
            None => 0,
        }
    }

    /// The name of symbol `i` (empty past the end).
    pub fn name(&self, i: usize) -> &[u8] {
        let first = i - i % STRIDE;
        let start = self.starts.get(i / STRIDE).map_or(0, |&s| s as usize);
        let start = start + (first..i).map(|j| self.name_len(j)).sum::<usize>();
        let end = start + self.name_len(i);
        self.names.get(start..end).unwrap_or_default()
    }

    /// Every name in counting order: cheaper than [`Symbols::iter`] for a
    /// pass that looks at names only.
    pub fn names(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut start = 0;
        (0..self.len()).map(move |i| {
            let end = start + self.name_len(i);
            let name = self.names.get(start..end).unwrap_or_default();
            start = end;
            name
        })
    }

    /// Is symbol `i` one kept only while its module is coming
    /// ([`MapSymbol::coming_only`])?
    pub fn is_coming_only(&self, i: usize) -> bool {
        self.coming_only.get(i, false)
    }

    /// Symbol `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<MapSymbol<'_>> {
        (i < self.len()).then(|| MapSymbol {
            name: self.name(i),
            kind: self.kinds.get(i, '?'),
            addr: self.addrs.get(i, None),
            section: self.string(self.sections.get(i, NO_STRING)),
            file: self.string(self.files.get(i, NO_STRING)),
            coming_only: self.coming_only.get(i, false),
        })
    }

    /// Every symbol in counting order.
    pub fn iter(&self) -> impl Iterator<Item = MapSymbol<'_>> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    fn string(&self, id: u32) -> Option<&[u8]> {
        match id {
            NO_STRING => None,
            _ => self.strings.get(id as usize - 1).map(|s| &**s),
        }
    }

    fn intern(&mut self, s: Option<&[u8]>) -> u32 {
        let Some(s) = s else {
            return NO_STRING;
        };
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        self.strings.push(s.into());
        let id = self.strings.len() as u32;
        self.ids.insert(s.into(), id);
        id
    }

    /// Add a symbol at the end. Fails only past 4 GiB of names.
    pub fn push(&mut self, symbol: MapSymbol<'_>) -> Result<(), MapError> {
        self.push_name(symbol.name)?;
        self.kinds.push(symbol.kind);
        self.addrs.push(symbol.addr);
        let section = self.intern(symbol.section);
        self.sections.push(section);
        let file = self.intern(symbol.file);
        self.files.push(file);
        self.coming_only.push(symbol.coming_only);
        Ok(())
    }

    /// Add the name of a symbol; the caller pushes its other fields.
    fn push_name(&mut self, name: &[u8]) -> Result<(), MapError> {
        let i = self.len();
        let start = u32::try_from(self.names.len()).map_err(|_| too_large())?;
        let index = u32::try_from(i).map_err(|_| too_large())?;
        if i % STRIDE == 0 {
            self.starts.push(start);
        }
        match u8::try_from(name.len()) {
            Ok(len) if len < LONG => self.lens.push(len),
            _ => {
                self.lens.push(LONG);
                self.long.push((index, name.len() as u32));
            }
        }
        self.names.extend_from_slice(name);
        Ok(())
    }

    /// Add a symbol known by name only ([`MapSymbol::named`]).
    pub fn push_named(&mut self, name: &[u8]) -> Result<(), MapError> {
        // [`Symbols::push`] without the interning: a symbols.klp adds a
        // million of these.
        self.push_name(name)?;
        self.kinds.push('?');
        self.addrs.push(None);
        self.sections.push(NO_STRING);
        self.files.push(NO_STRING);
        self.coming_only.push(false);
        Ok(())
    }

    /// Give back the memory reserved for more symbols.
    pub fn shrink_to_fit(&mut self) {
        self.names.shrink_to_fit();
        self.lens.shrink_to_fit();
        self.starts.shrink_to_fit();
        self.long.shrink_to_fit();
        self.kinds.shrink_to_fit();
        self.addrs.shrink_to_fit();
        self.sections.shrink_to_fit();
        self.files.shrink_to_fit();
        self.coming_only.shrink_to_fit();
    }

    /// Does the list hold both of the kernel's lists of the module (see
    /// [`MapSymbol::coming_only`])? Only a `.ko` read as a map gives both.
    pub fn has_both_lists(&self) -> bool {
        self.both_lists
    }

    /// Say whether the list holds both of the kernel's lists of the module.
    pub fn set_both_lists(&mut self, both: bool) {
        self.both_lists = both;
    }

    /// The symbols of `list`, in its order.
    pub fn from_list<'s>(
        list: impl IntoIterator<Item = MapSymbol<'s>>,
    ) -> Result<Symbols, MapError> {
        let mut out = Symbols::new();
        for s in list {
            out.push(s)?;
        }
        out.shrink_to_fit();
        Ok(out)
    }
}

/// The object the map does not know: no symbols.
pub(super) static EMPTY: LazyLock<Symbols> = LazyLock::new(Symbols::new);

impl PartialEq for Symbols {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.both_lists == other.both_lists
            && self.iter().eq(other.iter())
    }
}

impl Eq for Symbols {}

impl fmt::Debug for Symbols {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A list of [`MapSymbol`]s, as the JSON map writes it.
impl Serialize for Symbols {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for s in self.iter() {
            seq.serialize_element(&s)?;
        }
        seq.end()
    }
}

impl<'a> IntoIterator for &'a Symbols {
    type Item = MapSymbol<'a>;
    type IntoIter = Box<dyn Iterator<Item = MapSymbol<'a>> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_and_views() {
        let mut s = Symbols::new();
        s.push_named(b"a").unwrap();
        s.push_named(b"bc").unwrap();
        assert!(matches!(s.kinds, Column::Same('?', 2)));
        s.push(MapSymbol {
            name: b"",
            kind: 't',
            addr: Some(0x40),
            section: Some(b".text"),
            file: Some(b"x.c"),
            coming_only: false,
        })
        .unwrap();
        s.push(MapSymbol {
            section: Some(b".text"),
            ..MapSymbol::named(b"d")
        })
        .unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s.names().collect::<Vec<_>>(), [&b"a"[..], b"bc", b"", b"d"]);
        assert_eq!(s.get(1), Some(MapSymbol::named(b"bc")));
        let third = s.get(2).unwrap();
        assert_eq!(third.place().as_deref(), Some(".text+0x40 in x.c"));
        assert_eq!(s.get(3).unwrap().section, Some(&b".text"[..]));
        assert_eq!(s.strings.len(), 2);
        assert_eq!(s.get(4), None);
        assert_eq!(s.name(9), b"");
        // Long names, past a stride.
        let long = "x".repeat(300);
        let names: Vec<String> = (0..40)
            .map(|i| format!("{i}{}", if i % 7 == 0 { &long } else { "" }))
            .collect();
        let many =
            Symbols::from_list(names.iter().map(|n| MapSymbol::named(n.as_bytes()))).unwrap();
        assert!(many.names().eq(names.iter().map(String::as_bytes)));
        assert!((0..40).all(|i| many.name(i) == names[i].as_bytes()));
        let copy = Symbols::from_list(s.iter()).unwrap();
        assert_eq!(copy, s);
        assert_ne!(copy, Symbols::new());
    }
}
