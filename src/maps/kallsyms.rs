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

/// What a byte is to [`plain_vmlinux_line`]: ASCII white space (1), `.`
/// (2), or neither (0).
const CLASS: [u8; 256] = {
    let mut table = [0; 256];
    table[b' ' as usize] = 1;
    table[b'\t' as usize] = 1;
    table[b'\n' as usize] = 1;
    table[0x0c] = 1;
    table[b'\r' as usize] = 1;
    table[b'.' as usize] = 2;
    table
};

/// A [`plain_vmlinux_line`]: (digits, type, name, base).
type PlainLine<'a> = (&'a [u8; 16], char, &'a [u8], &'a [u8]);

/// A line of the shape nearly every line of a System.map has, a vmlinux
/// symbol of a 64-bit kernel (`ffffffff81000000 T _text`: sixteen digits,
/// one space, the type, one space, a name without white space), read in
/// one pass: (its sixteen digits, checked, type, name, the name's base, up
/// to its first `.`). The address is read only for a line kept. `None` for
/// any other line, which the general reader takes: what this accepts, that
/// reader reads the same.
fn plain_vmlinux_line(line: &[u8]) -> Option<PlainLine<'_>> {
    let (digits, rest) = line.split_first_chunk::<16>()?;
    let [b' ', kind, b' ', name @ ..] = rest else {
        return None;
    };
    if name.is_empty() || CLASS[usize::from(*kind)] == 1 {
        return None;
    }
    // One test for all sixteen, without a branch a digit.
    if !digits.iter().fold(true, |ok, b| ok & b.is_ascii_hexdigit()) {
        return None;
    }
    let base = scan_name(name)?;
    let kind = if kind.is_ascii() {
        char::from(*kind)
    } else {
        '?'
    };
    Some((digits, kind, name, &name[..base]))
}

/// The length of `name`'s base (up to its first `.`), or `None` when it
/// holds ASCII white space: eight bytes at a time, and those eight a byte
/// at a time only when one of them may be either (a byte below `!`, or
/// a `.` while none was found yet).
fn scan_name(name: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = ONES * 0x80;
    let mut base: Option<usize> = None;
    let bytewise = |from: usize, bytes: &[u8], base: &mut Option<usize>| {
        for (j, &b) in bytes.iter().enumerate() {
            match CLASS[usize::from(b)] {
                0 => {}
                1 => return false,
                _ => {
                    base.get_or_insert(from + j);
                }
            }
        }
        true
    };
    let mut chunks = name.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // A byte below 0x21 (every ASCII white space is), exactly when one is.
        let low = x.wrapping_sub(ONES * 0x21) & !x & HIGHS;
        let dot = match base {
            None => {
                let d = x ^ (ONES * u64::from(b'.'));
                d.wrapping_sub(ONES) & !d & HIGHS
            }
            Some(_) => 0,
        };
        if low | dot != 0 && !bytewise(at, chunk, &mut base) {
            return None;
        }
        at += 8;
    }
    if !bytewise(at, chunks.remainder(), &mut base) {
        return None;
    }
    Some(base.unwrap_or(name.len()))
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
        // Did any vmlinux line count (some may not be kept), and did any
        // mark an export (`__ksymtab_`: the list is vmlinux's export list)?
        let (mut any_vmlinux, mut any_export) = (false, false);
        let mut read = || -> Result<(), MapError> {
            for (n, line) in lines(text).enumerate() {
                // Most lines: vmlinux's, in one shape, read in one scan.
                // (What kallsyms omits is asked of the lines kept only,
                // and until one counts: no `__ksymtab_` name is omitted.)
                if let Some((digits, kind, name, base)) = plain_vmlinux_line(line) {
                    any_export |= name.starts_with(b"__ksymtab_");
                    let keep = self.keeps_with_base(name, base);
                    if (keep || !any_vmlinux) && !kallsyms_omits(name) {
                        any_vmlinux = true;
                        if let (true, Some(addr)) = (keep, parse_hex(digits)) {
                            vmlinux.push((addr, kind, name));
                        }
                    }
                    continue;
                }
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
                        if let Some((_, list)) = module.as_mut().filter(|_| self.keeps(name)) {
                            list.push(MapSymbol {
                                kind,
                                addr: Some(addr),
                                ..MapSymbol::named(name)
                            })?;
                        }
                    }
                    // System.map also lists kallsyms' own tables.
                    None if kallsyms_omits(name) => {}
                    None => {
                        any_vmlinux = true;
                        any_export |= name.starts_with(b"__ksymtab_");
                        if self.keeps(name) {
                            vmlinux.push((addr, kind, name));
                        }
                    }
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
        if any_vmlinux {
            // Same-named vmlinux symbols count in address order (a stable
            // sort: lines at one address keep their order).
            vmlinux.sort_by_key(|&(addr, ..)| addr);
            let list = Symbols::from_list(vmlinux.iter().map(|&(addr, kind, name)| MapSymbol {
                kind,
                addr: Some(addr),
                ..MapSymbol::named(name)
            }))?;
            self.take_exports(VMLINUX, &list, true);
            self.has_exports |= any_export;
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

    /// The one-pass reader of plain lines reads what the general one reads:
    /// the same lines with tabs (which only the general reader takes) make
    /// the same map; a name with white space in it goes to the general one.
    #[test]
    fn plain_lines_read_as_the_general_reader_reads_them() {
        let plain = "ffffffff81000200 t dup.isra.0\n\
                     ffffffff81000100 T dup\n\
                     FFFFFFFF81000300 \u{e9} caf\u{e9}.cold\n\
                     ffffffff81000400 t a.b.c\n\
                     ffffffff81000500 r __ksymtab_dup\n\
                     ffffffff81000600 t .Lomitted\n\
                     ffffffff81000700 t abcdefghijklmnopqrstuvwxyz.0\n";
        let tabs = plain.replace(' ', "\t");
        let read = |text: &str| {
            let mut m = SymbolMap::new();
            m.add_kallsyms(text).map(|()| m)
        };
        assert_eq!(read(plain).unwrap(), read(&tabs).unwrap());
        assert_eq!(plain_vmlinux_line(b"ffffffff81000100 t a\x0cb"), None);
        let e = read("ffffffff81000100 t a\x0cb\n").unwrap_err();
        assert!(e.to_string().contains("unexpected 'b'"), "{e}");
        for (name, base) in [&b"abc.def"[..], b"abcdefgh.i", b"abcdefghijklmnopq"]
            .iter()
            .zip([&b"abc"[..], b"abcdefgh", b"abcdefghijklmnopq"])
        {
            assert_eq!(scan_name(name), Some(base.len()));
        }
        assert_eq!(scan_name(b"abcdefghijk lmnop"), None);
        assert_eq!(scan_name(b"abc.defghij\rkl"), None);
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
