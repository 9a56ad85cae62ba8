//! This tool's JSON map: a format tag, then the map itself, keeping what
//! `symbols.klp` cannot (order, addresses, sections, source files, kinds).
//!
//! Names are bytes and JSON strings are Unicode, so every name (object and
//! export keys, symbol, section and file names, export owners) is written
//! as a string in one of two forms:
//!
//! * a name that is valid UTF-8 and does not start with a NUL byte: the
//!   name itself (every name a kernel build makes);
//! * any other name: `"\u0000"` followed by its bytes in lower-case hex,
//!   two digits a byte (`get_hom\xE9nym` is `"\u0000676574...e96e796d"`).
//!
//! Every byte string has exactly one form, so a map round-trips byte for
//! byte, and maps written before this rule read the same (none of their
//! names starts with NUL).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::{SerializeMap as _, SerializeStruct as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{MapError, MapSymbol, SymbolMap, Symbols};
use crate::fxhash::FxHashMap;

/// The `format` value of the JSON map this tool writes.
pub const MAP_FORMAT: &str = "klp-convert-map-1";

/// The mark of a name written in hex (see the module doc).
const HEX_MARK: char = '\0';

/// A name as the JSON map writes it (see the module doc).
pub fn encode_name(name: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(name) {
        Ok(text) if !text.starts_with(HEX_MARK) => Cow::Borrowed(text),
        _ => {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            let mut out = String::with_capacity(1 + 2 * name.len());
            out.push(HEX_MARK);
            for &b in name {
                out.push(char::from(DIGITS[usize::from(b >> 4)]));
                out.push(char::from(DIGITS[usize::from(b & 15)]));
            }
            Cow::Owned(out)
        }
    }
}

/// The name a JSON map's string stands for ([`encode_name`] undone).
pub fn decode_name(text: &str) -> Result<Cow<'_, [u8]>, String> {
    let Some(hex) = text.strip_prefix(HEX_MARK) else {
        return Ok(Cow::Borrowed(text.as_bytes()));
    };
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let bad = || format!("a name starting with \\u0000 must be lower-case hex bytes: {hex:?}");
    if hex.len() % 2 != 0 {
        return Err(bad());
    }
    hex.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .map(Cow::Owned)
        .ok_or_else(bad)
}

/// A name to write (see the module doc).
struct Name<'a>(&'a [u8]);

impl Serialize for Name<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&encode_name(self.0))
    }
}

/// The objects, keyed by [`Name`]s.
struct Objects<'m>(&'m BTreeMap<Vec<u8>, Symbols>);

impl Serialize for Objects<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(&Name(k), v)?;
        }
        map.end()
    }
}

/// The exports: [`Name`]s to [`Name`]s, in byte order of the names.
struct Exports<'m>(&'m FxHashMap<Vec<u8>, Vec<u8>>);

impl Serialize for Exports<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sorted: Vec<(&Vec<u8>, &Vec<u8>)> = self.0.iter().collect();
        sorted.sort_unstable();
        let mut map = serializer.serialize_map(Some(sorted.len()))?;
        for (k, v) in sorted {
            map.serialize_entry(&Name(k), &Name(v))?;
        }
        map.end()
    }
}

/// A name as read: borrowed from the JSON text where it has no escapes.
#[derive(Deserialize)]
#[serde(transparent)]
struct NameIn<'a>(#[serde(borrow)] Cow<'a, str>);

impl NameIn<'_> {
    fn bytes<E: de::Error>(&self) -> Result<Cow<'_, [u8]>, E> {
        decode_name(&self.0).map_err(E::custom)
    }
}

/// The symbol's fields in the map's order; `addr` only when known.
impl Serialize for MapSymbol<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = 4 + usize::from(self.addr.is_some()) + usize::from(self.coming_only);
        let mut s = serializer.serialize_struct("MapSymbol", fields)?;
        s.serialize_field("name", &Name(self.name))?;
        s.serialize_field("kind", &self.kind)?;
        if let Some(addr) = self.addr {
            s.serialize_field("addr", &addr)?;
        }
        s.serialize_field("section", &self.section.map(Name))?;
        s.serialize_field("file", &self.file.map(Name))?;
        if self.coming_only {
            s.serialize_field("coming_only", &true)?;
        }
        s.end()
    }
}

/// The JSON map on disk: a format tag, then the map's fields. Spelled out
/// rather than `#[serde(flatten)]`, which makes serde buffer the whole
/// document (a 56 MB map) in an intermediate tree before reading it.
#[derive(Deserialize)]
struct MapFile {
    format: String,
    objects: BTreeMap<String, Symbols>,
    exports: BTreeMap<String, String>,
    has_exports: bool,
    /// The modules whose symbols came from their `.ko`: both of the
    /// kernel's lists, the symbols kept only while coming marked
    /// (`coming_only`). Absent in maps written before it.
    #[serde(default)]
    both_lists: Vec<String>,
}

/// A [`MapSymbol`] as read: its strings borrowed from the JSON text where
/// they have no escapes.
#[derive(Deserialize)]
struct SymbolIn<'a> {
    #[serde(borrow)]
    name: NameIn<'a>,
    #[serde(default = "unknown_kind")]
    kind: char,
    #[serde(default)]
    addr: Option<u64>,
    #[serde(borrow)]
    section: Option<NameIn<'a>>,
    #[serde(borrow)]
    file: Option<NameIn<'a>>,
    #[serde(default)]
    coming_only: bool,
}

fn unknown_kind() -> char {
    '?'
}

/// An object's list of symbols, each added as it is read: no list of
/// [`SymbolIn`]s in between.
impl<'de> Deserialize<'de> for Symbols {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = Symbols;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of symbols")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Symbols, A::Error> {
                let mut out = Symbols::new();
                while let Some(s) = seq.next_element::<SymbolIn>()? {
                    let section = s.section.as_ref().map(NameIn::bytes).transpose()?;
                    let file = s.file.as_ref().map(NameIn::bytes).transpose()?;
                    out.push(MapSymbol {
                        name: &s.name.bytes()?,
                        kind: s.kind,
                        addr: s.addr,
                        section: section.as_deref(),
                        file: file.as_deref(),
                        coming_only: s.coming_only,
                    })
                    .map_err(de::Error::custom)?;
                }
                out.shrink_to_fit();
                Ok(out)
            }
        }
        deserializer.deserialize_seq(List)
    }
}

/// [`MapFile`] for writing, borrowing the map.
#[derive(Serialize)]
struct MapFileOut<'m> {
    format: &'static str,
    objects: Objects<'m>,
    exports: Exports<'m>,
    has_exports: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    both_lists: Vec<Name<'m>>,
}

impl SymbolMap {
    /// Write the map in this tool's JSON format, which keeps what
    /// `symbols.klp` cannot: order, addresses, sections, source files, kinds.
    pub fn to_json(&self) -> String {
        let file = MapFileOut {
            format: MAP_FORMAT,
            objects: Objects(&self.objects),
            exports: Exports(&self.exports),
            has_exports: self.has_exports,
            both_lists: self
                .objects
                .iter()
                .filter(|(_, s)| s.has_both_lists())
                .map(|(o, _)| Name(o))
                .collect(),
        };
        // Serialising plain data cannot fail.
        serde_json::to_string(&file).unwrap_or_default()
    }

    /// Add a map written by [`SymbolMap::to_json`].
    pub fn add_json(&mut self, text: &str) -> Result<(), MapError> {
        let file: MapFile =
            serde_json::from_str(text).map_err(|source| MapError::Json { path: None, source })?;
        if file.format != MAP_FORMAT {
            return Err(MapError::parse(
                None,
                format!(
                    "JSON map: format '{}', expected '{MAP_FORMAT}'",
                    file.format
                ),
            ));
        }
        let name = |text: String| match decode_name(&text) {
            Ok(Cow::Borrowed(_)) => Ok(text.into_bytes()),
            Ok(Cow::Owned(bytes)) => Ok(bytes),
            Err(e) => Err(MapError::parse(None, format!("JSON map: {e}"))),
        };
        let both: Vec<Vec<u8>> = file
            .both_lists
            .into_iter()
            .map(name)
            .collect::<Result<_, _>>()?;
        for (obj, mut symbols) in file.objects {
            let obj = name(obj)?;
            if both.contains(&obj) {
                symbols.set_both_lists(true);
            }
            self.objects.insert(obj, symbols);
        }
        for (export, owner) in file.exports {
            self.exports.insert(name(export)?, name(owner)?);
        }
        self.has_exports |= file.has_exports;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name has one form, which reads back as its bytes; UTF-8 names
    /// are written as they are.
    #[test]
    fn names_round_trip() {
        let all: Vec<u8> = (0..=255).collect();
        for name in [
            &b""[..],
            b"printk",
            "caf\u{e9}".as_bytes(),
            b"get_hom\xe9nym",
            b"\0",
            b"\0abc",
            b"a\0b",
            b"\xff",
            &all,
        ] {
            let text = encode_name(name);
            assert_eq!(decode_name(&text).unwrap(), name, "{text:?}");
            let utf8 = std::str::from_utf8(name).ok();
            let plain = utf8.filter(|t| !t.starts_with('\0'));
            assert_eq!(plain.is_some(), text == utf8.unwrap_or(""), "{text:?}");
        }
        assert_eq!(encode_name(b"caf\xe9"), "\u{0}636166e9");
        for bad in ["\u{0}6", "\u{0}6G", "\u{0}AB"] {
            assert!(decode_name(bad).is_err(), "{bad:?}");
        }
    }

    /// Addresses written as before; a map without them (from a symbols.klp)
    /// writes none; maps written with `"addr":0` read back as they were.
    #[test]
    fn addresses_round_trip() {
        let mut m = SymbolMap::new();
        m.add_kallsyms("ffffffff81000100 T printk\n").unwrap();
        let json = m.to_json();
        assert_eq!(
            json,
            r#"{"format":"klp-convert-map-1","objects":{"vmlinux":[{"name":"printk","kind":"T","addr":18446744071578845440,"section":null,"file":null}]},"exports":{},"has_exports":false}"#
        );
        let mut back = SymbolMap::new();
        back.add_json(&json).unwrap();
        assert_eq!(back, m);

        let mut k = SymbolMap::new();
        k.add_symbols_klp("klp-convert-symbol-data.0.1\n*vmlinux\nprintk\n")
            .unwrap();
        let json = k.to_json();
        assert!(!json.contains("addr"), "{json}");
        let mut back = SymbolMap::new();
        back.add_json(&json).unwrap();
        assert_eq!(back, k);

        let old = json.replace(r#""kind":"?""#, r#""kind":"?","addr":0"#);
        let mut back = SymbolMap::new();
        back.add_json(&old).unwrap();
        assert_eq!(back.symbols("vmlinux").get(0).unwrap().addr, Some(0));
        assert_eq!(back.to_json(), old);

        let e = SymbolMap::new().add_json("{").unwrap_err();
        assert!(e.to_string().starts_with("JSON map: "), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
