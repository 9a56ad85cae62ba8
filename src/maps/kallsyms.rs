//! `/proc/kallsyms` dumps and System.map files: `address type name
//! [module]` lines; vmlinux symbols sorted into address order.

use super::vmlinux::kallsyms_omits;
use super::{lines, module_name, MapError, MapSymbol, SymbolMap, Symbols};
use crate::fxhash::FxHashSet;
use crate::names::{Show, VMLINUX};

/// The module of a kallsyms line: `[name]` without its brackets.
fn bracketed(m: &[u8]) -> Option<&[u8]> {
    m.strip_prefix(b"[")?.strip_suffix(b"]")
}

/// The fields of a line: the runs of bytes between ASCII white space.
/// A System.map has a hundred thousand lines and more: a scan a field, not
/// a split and a filter a byte.
fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut i = 0;
    std::iter::from_fn(move || {
        while line.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let start = i;
        while line.get(i).is_some_and(|b| !b.is_ascii_whitespace()) {
            i += 1;
        }
        (i > start).then(|| &line[start..i])
    })
}

/// A hexadecimal address as `u64::from_str_radix(_, 16)` reads it (a `+`
/// allowed before the digits), without a UTF-8 check first.
fn parse_hex(text: &[u8]) -> Option<u64> {
    let digits = text.strip_prefix(b"+").unwrap_or(text);
    if digits.is_empty() {
        return None;
    }
    if digits.len() <= 16 {
        // No overflow to check: 16 digits fill a u64.
        let mut v = 0u64;
        for &b in digits {
            v = v << 4 | u64::from(hex_digit(b)?);
        }
        return Some(v);
    }
    digits.iter().try_fold(0u64, |v, &b| {
        v.checked_mul(16)?.checked_add(u64::from(hex_digit(b)?))
    })
}

fn hex_digit(b: u8) -> Option<u8> {
    Some(HEX_DIGITS[usize::from(b)]).filter(|&d| d < 16)
}

/// The value of each byte as a hexadecimal digit, 0xff for other bytes: a
/// table, as an address has 16 digits and a map a hundred thousand lines.
const HEX_DIGITS: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            d @ b'0'..=b'9' => d - b'0',
            d @ b'a'..=b'f' => d - b'a' + 10,
            d @ b'A'..=b'F' => d - b'A' + 10,
            _ => 0xff,
        };
        b += 1;
    }
    table
};

impl SymbolMap {
    /// Add the lines of a `/proc/kallsyms` dump or a System.map:
    /// `address type name [module]`. Lines without `[module]` are vmlinux.
    /// Lines are bytes: a name is kept as it is, whatever its encoding.
    pub fn add_kallsyms(&mut self, text: impl AsRef<[u8]>) -> Result<(), MapError> {
        let text = text.as_ref();
        // vmlinux lines wait here to be sorted: (address, kind, name).
        let mut vmlinux: Vec<(u64, char, &[u8])> = Vec::new();
        // Module lines come grouped by module: one map lookup a group.
        let mut module: Option<(Vec<u8>, Symbols)> = None;
        let mut begun = FxHashSet::default();
        let mut read = || -> Result<(), MapError> {
            for (n, line) in lines(text).enumerate() {
                let mut parts = fields(line);
                let (Some(addr), Some(kind), Some(name)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    if line.trim_ascii().is_empty() {
                        continue;
                    }
                    return Err(MapError::parse(
                        Some(n + 1),
                        "expected 'address type name [module]'",
                    ));
                };
                let addr = parse_hex(addr).ok_or_else(|| {
                    MapError::parse(Some(n + 1), format!("bad address '{}'", Show(addr)))
                })?;
                let kind = match kind {
                    [k] if k.is_ascii() => char::from(*k),
                    _ => std::str::from_utf8(kind)
                        .ok()
                        .and_then(|k| k.chars().next())
                        .unwrap_or('?'),
                };
                match parts.next() {
                    Some(m) if bracketed(m).is_some() => {
                        let m = module_name(bracketed(m).unwrap_or_default());
                        if module.as_ref().is_none_or(|(o, _)| *o != m) {
                            self.fill_next(&mut module, Some(m), &mut begun);
                        }
                        if let Some((_, list)) = &mut module {
                            list.push(MapSymbol {
                                kind,
                                addr: Some(addr),
                                ..MapSymbol::named(name)
                            })?;
                        }
                    }
                    // System.map also lists kallsyms' own tables.
                    None if kallsyms_omits(name) => {}
                    None => vmlinux.push((addr, kind, name)),
                    Some(_)
                        if memchr::memmem::find(line, b"The real System.map is in").is_some() =>
                    {
                        return Err(MapError::parse(
                            None,
                            "this is Debian's placeholder System.map; the real one is in the \
                             linux-image-<version>-dbg package (or dump /proc/kallsyms of the \
                             running kernel)",
                        ));
                    }
                    Some(other) => {
                        return Err(MapError::parse(
                            Some(n + 1),
                            format!(
                                "unexpected '{}' after the name (a module is written [name])",
                                Show(other)
                            ),
                        ))
                    }
                }
            }
            Ok(())
        };
        let read = read();
        self.fill_next(&mut module, None, &mut FxHashSet::default());
        read?;
        if !vmlinux.is_empty() {
            // Same-named vmlinux symbols count in address order (a stable
            // sort: lines at one address keep their order).
            vmlinux.sort_by_key(|&(addr, ..)| addr);
            let list = Symbols::from_list(vmlinux.iter().map(|&(addr, kind, name)| MapSymbol {
                kind,
                addr: Some(addr),
                ..MapSymbol::named(name)
            }))?;
            self.take_exports(VMLINUX, &list, true);
            self.objects.insert(VMLINUX.to_vec(), list);
        }
        let modules: Vec<Vec<u8>> = self
            .objects
            .keys()
            .filter(|o| *o != VMLINUX)
            .cloned()
            .collect();
        for m in modules {
            let list = self.objects.remove(&m).unwrap_or_default();
            self.take_exports(&m, &list, false);
            self.objects.insert(m, list);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Unresolved;
    use super::*;

    #[test]
    fn kallsyms_order_and_resolution() {
        let mut m = SymbolMap::new();
        m.add_kallsyms(
            "ffffffff81000200 t dup\n\
             ffffffff81000100 t dup\n\
             ffffffff81000300 T unique\n\
             ffffffffc0000010 t homonym\t[my-mod]\n\
             ffffffffc0000000 t homonym\t[my-mod]\n",
        )
        .unwrap();
        // vmlinux: address order.
        assert_eq!(
            m.find("vmlinux", "dup", 1).unwrap().addr,
            Some(0xffffffff81000100)
        );
        assert_eq!(
            m.find("vmlinux", "dup", 2).unwrap().addr,
            Some(0xffffffff81000200)
        );
        assert_eq!(m.find("vmlinux", "dup", 0), Err(Unresolved::Ambiguous(2)));
        assert_eq!(
            m.find("vmlinux", "dup", 3),
            Err(Unresolved::NoSuchPosition(2))
        );
        assert_eq!(m.find("vmlinux", "nope", 0), Err(Unresolved::NotFound));
        assert_eq!(m.find("vmlinux", "unique", 0).unwrap().position, 1);
        assert_eq!(m.find("vmlinux", "unique", 1).unwrap().position, 1);
        // modules: file (symbol table) order, '-' normalised.
        assert_eq!(
            m.find("my_mod", "homonym", 1).unwrap().addr,
            Some(0xffffffffc0000010)
        );
        assert!(m.has("my_mod") && !m.has("my-mod"));
        // The indexed finder agrees with the scan on every case.
        let lookup = m.lookup();
        for (obj, name) in [
            ("vmlinux", "dup"),
            ("vmlinux", "unique"),
            ("vmlinux", "nope"),
            ("my_mod", "homonym"),
            ("no_such_module", "dup"),
        ] {
            for pos in 0..4 {
                assert_eq!(
                    lookup.find(obj, name, pos),
                    m.find(obj, name, pos),
                    "{obj} {name} {pos}"
                );
            }
        }
    }

    #[test]
    fn addresses_read_as_from_str_radix() {
        for text in ["0", "ffffffff81000100", "+1f", "FfFf", "ffffffffffffffff"] {
            let want = u64::from_str_radix(text, 16).ok();
            assert_eq!(parse_hex(text.as_bytes()), want, "{text}");
        }
        for text in ["", "+", "-1", "++1", "1g", "10000000000000000", "\u{e9}"] {
            assert_eq!(parse_hex(text.as_bytes()), None, "{text}");
        }
        let split: Vec<&[u8]> = fields(b" \tffff t\x0cname  [m]\r ").collect();
        assert_eq!(split, [&b"ffff"[..], b"t", b"name", b"[m]"]);
        assert_eq!(fields(b" \t ").count(), 0);
    }

    #[test]
    fn errors_carry_lines() {
        let e = SymbolMap::new()
            .add_kallsyms("ffffffff81000100 T a\nzz T b\n")
            .unwrap_err();
        assert!(matches!(e, MapError::Parse { line: Some(2), .. }), "{e:?}");
        assert_eq!(e.to_string(), "line 2: bad address 'zz'");
    }
}
