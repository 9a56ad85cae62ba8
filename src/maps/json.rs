//! This tool's JSON map: a format tag, then the map itself, keeping what
//! `symbols.klp` cannot (order, addresses, sections, source files, kinds).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::{MapError, MapSymbol, SymbolMap, Symbols};

/// The `format` value of the JSON map this tool writes.
pub const MAP_FORMAT: &str = "klp-convert-map-1";

/// The JSON map on disk: a format tag, then the map's fields. Spelled out
/// rather than `#[serde(flatten)]`, which makes serde buffer the whole
/// document (a 56 MB map) in an intermediate tree before reading it.
#[derive(Deserialize)]
struct MapFile {
    format: String,
    objects: BTreeMap<String, Symbols>,
    exports: BTreeMap<String, String>,
    has_exports: bool,
}

/// A [`MapSymbol`] as read: its strings borrowed from the JSON text where
/// they have no escapes.
#[derive(Deserialize)]
struct SymbolIn<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default = "unknown_kind")]
    kind: char,
    #[serde(default)]
    addr: Option<u64>,
    #[serde(borrow)]
    section: Option<Cow<'a, str>>,
    #[serde(borrow)]
    file: Option<Cow<'a, str>>,
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
                    out.push(MapSymbol {
                        name: &s.name,
                        kind: s.kind,
                        addr: s.addr,
                        section: s.section.as_deref(),
                        file: s.file.as_deref(),
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
    objects: &'m BTreeMap<String, Symbols>,
    exports: &'m BTreeMap<String, String>,
    has_exports: bool,
}

impl SymbolMap {
    /// Write the map in this tool's JSON format, which keeps what
    /// `symbols.klp` cannot: order, addresses, sections, source files, kinds.
    pub fn to_json(&self) -> String {
        let file = MapFileOut {
            format: MAP_FORMAT,
            objects: &self.objects,
            exports: &self.exports,
            has_exports: self.has_exports,
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
        self.objects.extend(file.objects);
        self.exports.extend(file.exports);
        self.has_exports |= file.has_exports;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
