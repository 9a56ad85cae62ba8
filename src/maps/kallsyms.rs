//! `/proc/kallsyms` dumps and System.map files: `address type name
//! [module]` lines; vmlinux symbols sorted into address order.

use super::vmlinux::kallsyms_omits;
use super::{module_name, MapError, MapSymbol, SymbolMap, Symbols};

impl SymbolMap {
    /// Add the lines of a `/proc/kallsyms` dump or a System.map:
    /// `address type name [module]`. Lines without `[module]` are vmlinux.
    pub fn add_kallsyms(&mut self, text: &str) -> Result<(), MapError> {
        // vmlinux lines wait here to be sorted: (address, kind, name).
        let mut vmlinux: Vec<(u64, char, &str)> = Vec::new();
        // Module lines come grouped by module: one map lookup a group.
        let mut module: Option<(String, Symbols)> = None;
        let mut read = || -> Result<(), MapError> {
            for (n, line) in text.lines().enumerate() {
                let mut parts = line.split_whitespace();
                let (Some(addr), Some(kind), Some(name)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    if line.trim().is_empty() {
                        continue;
                    }
                    return Err(MapError::parse(
                        Some(n + 1),
                        "expected 'address type name [module]'",
                    ));
                };
                let addr = u64::from_str_radix(addr, 16)
                    .map_err(|_| MapError::parse(Some(n + 1), format!("bad address '{addr}'")))?;
                let kind = kind.chars().next().unwrap_or('?');
                match parts.next() {
                    Some(m) if m.starts_with('[') && m.ends_with(']') => {
                        let m = module_name(&m[1..m.len() - 1]);
                        if module.as_ref().is_none_or(|(o, _)| *o != m) {
                            self.fill_next(&mut module, Some(m));
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
                    None if kallsyms_omits(name.as_bytes()) => {}
                    None => vmlinux.push((addr, kind, name)),
                    Some(_) if line.contains("The real System.map is in") => {
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
                                "unexpected '{other}' after the name (a module is written [name])"
                            ),
                        ))
                    }
                }
            }
            Ok(())
        };
        let read = read();
        self.fill_next(&mut module, None);
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
            self.take_exports("vmlinux", &list, true);
            self.objects.insert("vmlinux".into(), list);
        }
        let modules: Vec<String> = self
            .objects
            .keys()
            .filter(|o| *o != "vmlinux")
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
    fn errors_carry_lines() {
        let e = SymbolMap::new()
            .add_kallsyms("ffffffff81000100 T a\nzz T b\n")
            .unwrap_err();
        assert!(matches!(e, MapError::Parse { line: Some(2), .. }), "{e:?}");
        assert_eq!(e.to_string(), "line 2: bad address 'zz'");
    }
}
