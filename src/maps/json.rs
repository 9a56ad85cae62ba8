//! This tool's JSON map: a format tag, then the map itself, keeping what
//! `symbols.klp` cannot (order, addresses, sections, source files, kinds).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{MapError, MapSymbol, SymbolMap};

/// The `format` value of the JSON map this tool writes.
pub const MAP_FORMAT: &str = "klp-convert-map-1";

/// The JSON map on disk: a format tag, then the map's fields. Spelled out
/// rather than `#[serde(flatten)]`, which makes serde buffer the whole
/// document (a 56 MB map) in an intermediate tree before reading it.
#[derive(Deserialize)]
struct MapFile {
    format: String,
    objects: BTreeMap<String, Vec<MapSymbol>>,
    exports: BTreeMap<String, String>,
    has_exports: bool,
}

/// [`MapFile`] for writing, borrowing the map.
#[derive(Serialize)]
struct MapFileOut<'m> {
    format: &'static str,
    objects: &'m BTreeMap<String, Vec<MapSymbol>>,
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
        assert_eq!(back.symbols("vmlinux")[0].addr, Some(0));
        assert_eq!(back.to_json(), old);

        let e = SymbolMap::new().add_json("{").unwrap_err();
        assert!(e.to_string().starts_with("JSON map: "), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
