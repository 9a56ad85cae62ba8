//! The names the livepatch core parses, and the annotation names that the
//! `KLP_RELOC_SYMBOL` macros produce.
//!
//! Kernel grammar (kernel/livepatch/core.c, parsed with `sscanf`):
//!
//! * section `.klp.rela.<obj>.<anything>`: `<obj>` is the bytes up to the next
//!   `.`, at most `MODULE_NAME_LEN - 1` (55);
//! * symbol `.klp.sym.<obj>.<name>,<pos>`: `<obj>` as above, `<name>` up to the
//!   `,` (may contain dots), at most `KSYM_NAME_LEN - 1`, `<pos>` decimal.
//!
//! Names are bytes, as the kernel compares them (`strcmp`): symbol, section
//! and object names are `[u8]` from the module and the maps to the output,
//! whatever their encoding. The one policy for a name the kernel cannot
//! match, in every path (annotations, `KLP_SYMPOS` tables, names resolved
//! from maps, klp symbols a module has): a name is refused when the grammar
//! cannot hold it, and only then. That is a NUL byte (it ends the name in
//! the string table and in `sscanf`), a `.` in an object name, a `,` in a
//! symbol name, an empty part, and a part longer than `sscanf`'s width.
//! Messages show names with [`Show`]: UTF-8 as it is, other bytes as `\xNN`.

use std::borrow::Cow;
use std::fmt;

/// Prefix of klp relocation sections.
pub const KLP_RELA_PREFIX: &str = ".klp.rela.";
/// Prefix of klp symbols.
pub const KLP_SYM_PREFIX: &str = ".klp.sym.";
/// Prefix of the annotation symbols produced by `KLP_RELOC_SYMBOL`.
pub const ANNOTATION_PREFIX: &str = ".klp.sym.rela.";
/// Prefix of the v7 `KLP_MODULE_RELOC(<obj>)` annotation tables.
pub const SYMPOS_SECTION_PREFIX: &str = ".klp.module_relocs.";
/// `MODULE_NAME_LEN - 1` on 64-bit kernels.
pub const MAX_OBJ_NAME: usize = 55;
/// `KSYM_NAME_LEN - 1` since Linux 6.1.
pub const MAX_SYM_NAME: usize = 511;
/// `KSYM_NAME_LEN - 1` before Linux 6.1.
pub const MAX_SYM_NAME_OLD: usize = 127;
/// The object name of the kernel image.
pub const VMLINUX: &[u8] = b"vmlinux";

/// A name (bytes) for a message: valid UTF-8 as it is, every other byte
/// as `\xNN`. Only messages decode names; nothing reads them back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Show<'a>(pub &'a [u8]);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            for b in chunk.invalid() {
                write!(f, "\\x{b:02X}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// [`Show`] `name`.
pub fn show(name: &[u8]) -> Show<'_> {
    Show(name)
}

/// A parsed `KLP_RELOC_SYMBOL` annotation symbol name
/// (`.klp.sym.rela.<lp_obj>.<sym_obj>.<name>{,|.}<pos>`), its parts
/// borrowed from the name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Annotation<'a> {
    /// The object that must be loaded before the relocation is applied;
    /// names the `.klp.rela.<lp_obj>.*` section.
    pub lp_obj: Cow<'a, [u8]>,
    /// The klp symbol this annotation becomes.
    pub target: KlpSymbol<'a>,
}

/// A klp symbol: `.klp.sym.<obj>.<name>,<pos>`. Its names are borrowed
/// where they come from the module (an annotation's, a symbol's: a large
/// module has 50,000, and a copy of each cost three allocations) and
/// owned where they come from elsewhere (a map's object name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KlpSymbol<'a> {
    /// The object that defines the symbol.
    pub obj: Cow<'a, [u8]>,
    /// The symbol's name in that object's kallsyms.
    pub name: Cow<'a, [u8]>,
    /// 0 for a unique name, else the 1-based position among same-named symbols.
    pub pos: u64,
}

/// The name for messages ([`Show`]); [`KlpSymbol::write_name`] writes it.
impl fmt::Display for KlpSymbol<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}.{},{}",
            KLP_SYM_PREFIX,
            Show(&self.obj),
            Show(&self.name),
            self.pos
        )
    }
}

impl KlpSymbol<'_> {
    /// Append the symbol's name, the bytes the kernel parses, to `out`
    /// without formatting machinery: a conversion writes one per symbol.
    pub fn write_name(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(KLP_SYM_PREFIX.as_bytes());
        out.extend_from_slice(&self.obj);
        out.push(b'.');
        out.extend_from_slice(&self.name);
        out.push(b',');
        push_decimal(out, self.pos);
    }

    /// The length of the name [`KlpSymbol::write_name`] writes, without
    /// writing it.
    pub fn name_len(&self) -> usize {
        let digits = self.pos.checked_ilog10().map_or(1, |d| d as usize + 1);
        KLP_SYM_PREFIX.len() + self.obj.len() + 1 + self.name.len() + 1 + digits
    }
}

/// Append `v` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut n = digits.len();
    loop {
        n -= 1;
        digits[n] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[n..]);
}

/// A name that does not follow the grammar, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

/// Is this symbol name an annotation (in any accepted spelling)?
pub fn is_annotation(name: &[u8]) -> bool {
    unquote(name).starts_with(ANNOTATION_PREFIX.as_bytes())
}

/// clang keeps the quotes of an asm label in the symbol name.
fn unquote(name: &[u8]) -> &[u8] {
    match name {
        [b'"', inner @ .., b'"'] => inner,
        _ => name,
    }
}

/// `s` split around its first `c`.
fn split_first(s: &[u8], c: u8) -> Option<(&[u8], &[u8])> {
    let i = memchr::memchr(c, s)?;
    Some((&s[..i], &s[i + 1..]))
}

/// `s` split around its last `c`.
fn split_last(s: &[u8], c: u8) -> Option<(&[u8], &[u8])> {
    let i = memchr::memrchr(c, s)?;
    Some((&s[..i], &s[i + 1..]))
}

/// Parse an annotation symbol name. Accepts the `,<pos>` separator (v1, v2),
/// the `.<pos>` separator (v3, old GNU as) and clang's quoted form.
pub fn parse_annotation(name: &[u8]) -> Result<Annotation<'_>, NameError> {
    let raw = unquote(name);
    let rest = raw
        .strip_prefix(ANNOTATION_PREFIX.as_bytes())
        .ok_or_else(|| NameError(format!("does not start with {ANNOTATION_PREFIX}")))?;
    let (lp_obj, rest) = split_first(rest, b'.')
        .ok_or_else(|| NameError("expected <lp_obj>.<sym_obj>.<name>,<pos>".into()))?;
    let (sym_obj, rest) = split_first(rest, b'.')
        .ok_or_else(|| NameError("expected <sym_obj>.<name>,<pos> after the object".into()))?;
    let (sym, pos) = match split_last(rest, b',') {
        Some(split) => split,
        None => split_last(rest, b'.').ok_or_else(|| {
            NameError("no position: expected <name>,<pos> or <name>.<pos>".into())
        })?,
    };
    let pos = parse_pos(pos)?;
    check_obj_name(lp_obj)?;
    check_parts(sym_obj, sym, MAX_SYM_NAME)?;
    Ok(Annotation {
        lp_obj: Cow::Borrowed(lp_obj),
        target: KlpSymbol {
            obj: Cow::Borrowed(sym_obj),
            name: Cow::Borrowed(sym),
            pos,
        },
    })
}

fn parse_pos(pos: &[u8]) -> Result<u64, NameError> {
    if pos.is_empty() || !pos.iter().all(u8::is_ascii_digit) {
        return Err(NameError(format!(
            "position '{}' is not a decimal number",
            Show(pos)
        )));
    }
    pos.iter()
        .try_fold(0u64, |v, d| {
            v.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or_else(|| NameError(format!("position '{}' is too large", Show(pos))))
}

/// A klp symbol's position as `klp_resolve_symbols`' `sscanf("%lu")`
/// reads it: white space skipped, then the digits up to the first other
/// byte (`1x` is 1). No digit at all, a sign included, is refused.
fn parse_pos_as_kernel(pos: &[u8]) -> Result<u64, NameError> {
    let start = pos
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(pos.len());
    let digits = pos[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    parse_pos(&pos[start..start + digits])
        .map_err(|_| NameError(format!("position '{}' is not a decimal number", Show(pos))))
}

/// Check an object name against what the kernel can parse.
pub fn check_obj_name(obj: &[u8]) -> Result<(), NameError> {
    if obj.is_empty() {
        return Err(NameError("empty object name".into()));
    }
    if obj.len() > MAX_OBJ_NAME {
        return Err(NameError(format!(
            "object name '{}' is {} bytes; the kernel reads at most {MAX_OBJ_NAME} (MODULE_NAME_LEN)",
            Show(obj),
            obj.len()
        )));
    }
    // One pass for the common case (this runs once per converted symbol).
    if !obj.iter().any(|&b| b == b'.' || b == b'-' || b == 0) {
        return Ok(());
    }
    if obj.contains(&0) {
        return Err(NameError(format!(
            "object name '{}' contains a NUL byte, which ends a name for the kernel",
            Show(obj)
        )));
    }
    if obj.contains(&b'.') {
        return Err(NameError(format!(
            "object name '{}' contains '.', which ends the object part of a klp name",
            Show(obj)
        )));
    }
    let underscored: Vec<u8> = obj
        .iter()
        .map(|&b| if b == b'-' { b'_' } else { b })
        .collect();
    Err(NameError(format!(
        "object name '{}' contains '-'; the kernel names modules with '_' ('{}')",
        Show(obj),
        Show(&underscored)
    )))
}

/// Check a klp symbol's parts against what the kernel can parse.
/// `max_name` is `KSYM_NAME_LEN - 1` of the target kernel.
pub fn check_symbol(sym: &KlpSymbol, max_name: usize) -> Result<(), NameError> {
    check_parts(&sym.obj, &sym.name, max_name)
}

/// [`check_symbol`] on borrowed parts.
fn check_parts(obj: &[u8], name: &[u8], max_name: usize) -> Result<(), NameError> {
    check_obj_name(obj)?;
    if name.is_empty() {
        return Err(NameError("empty symbol name".into()));
    }
    if name.contains(&0) {
        return Err(NameError(format!(
            "symbol name '{}' contains a NUL byte, which ends a name for the kernel",
            Show(name)
        )));
    }
    if name.contains(&b',') {
        return Err(NameError(format!(
            "symbol name '{}' contains ',', which ends the name part of a klp symbol",
            Show(name)
        )));
    }
    if name.len() > max_name {
        return Err(NameError(format!(
            "symbol name '{}' is {} bytes; the kernel reads at most {max_name} (KSYM_NAME_LEN - 1)",
            Show(name),
            name.len()
        )));
    }
    Ok(())
}

/// A klp symbol name's parts, borrowed from the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KlpSymbolRef<'a> {
    /// The object that defines the symbol.
    pub obj: &'a [u8],
    /// The symbol's name in that object's kallsyms.
    pub name: &'a [u8],
    /// 0 for a unique name, else the 1-based position.
    pub pos: u64,
    /// The position as written: the kernel's `%lu` skips leading white
    /// space and stops at the first byte that is not a digit, so `1x` is 1.
    pub pos_text: &'a [u8],
}

impl<'a> KlpSymbolRef<'a> {
    /// Is the position written as plain digits, as every tool writes it?
    pub fn pos_is_plain(&self) -> bool {
        !self.pos_text.is_empty() && self.pos_text.iter().all(u8::is_ascii_digit)
    }

    /// The [`KlpSymbol`], its names borrowed as these are.
    pub fn to_symbol(self) -> KlpSymbol<'a> {
        KlpSymbol {
            obj: Cow::Borrowed(self.obj),
            name: Cow::Borrowed(self.name),
            pos: self.pos,
        }
    }
}

/// Parse a klp symbol name `.klp.sym.<obj>.<name>,<pos>` the way the kernel does.
pub fn parse_klp_symbol(name: &[u8]) -> Result<KlpSymbol<'_>, NameError> {
    parse_klp_symbol_ref(name).map(KlpSymbolRef::to_symbol)
}

/// [`parse_klp_symbol`] without copying the parts (`check` and the
/// verification parse every klp symbol of a module).
pub fn parse_klp_symbol_ref(name: &[u8]) -> Result<KlpSymbolRef<'_>, NameError> {
    let rest = name
        .strip_prefix(KLP_SYM_PREFIX.as_bytes())
        .ok_or_else(|| NameError(format!("does not start with {KLP_SYM_PREFIX}")))?;
    let (obj, rest) = split_first(rest, b'.')
        .ok_or_else(|| NameError("expected .klp.sym.<obj>.<name>,<pos>".into()))?;
    let (sym, pos_text) = split_first(rest, b',')
        .ok_or_else(|| NameError("no ',<pos>' after the symbol name".into()))?;
    let pos = parse_pos_as_kernel(pos_text)?;
    check_parts(obj, sym, MAX_SYM_NAME)?;
    Ok(KlpSymbolRef {
        obj,
        name: sym,
        pos,
        pos_text,
    })
}

/// The object part of a klp relocation section name, as the kernel reads it:
/// the bytes after `.klp.rela.` up to the next `.`.
pub fn klp_section_object(name: &[u8]) -> Result<&[u8], NameError> {
    let rest = name
        .strip_prefix(KLP_RELA_PREFIX.as_bytes())
        .ok_or_else(|| NameError(format!("does not start with {KLP_RELA_PREFIX}")))?;
    // The kernel reads only the object part; the rest may be any bytes.
    let obj = split_first(rest, b'.').map_or(rest, |(obj, _)| obj);
    check_obj_name(obj)?;
    Ok(obj)
}

/// The name of the klp relocation section for `obj` and a target section:
/// `.klp.rela.<obj>.<target>`, always with a `.` after the object, so a target
/// without a leading dot (`__jump_table`) still parses as object `<obj>`.
pub fn klp_section_name(obj: &[u8], target: &[u8]) -> Vec<u8> {
    let mut n = Vec::with_capacity(klp_section_name_len(obj, target.len()));
    write_klp_section_name(&mut n, obj, target);
    n
}

/// [`klp_section_name`], appended to `out`.
pub fn write_klp_section_name(out: &mut Vec<u8>, obj: &[u8], target: &[u8]) {
    out.extend_from_slice(KLP_RELA_PREFIX.as_bytes());
    out.extend_from_slice(obj);
    out.push(b'.');
    out.extend_from_slice(target);
}

/// The length of the name [`write_klp_section_name`] writes for a target
/// section whose name is `target_len` bytes, without writing it.
pub fn klp_section_name_len(obj: &[u8], target_len: usize) -> usize {
    KLP_RELA_PREFIX.len() + obj.len() + 1 + target_len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(name: &str) -> Annotation<'_> {
        parse_annotation(name.as_bytes()).expect(name)
    }

    #[test]
    fn written_names_are_displayed_names() {
        for pos in [0, 7, 9, 10, 99, 100, 1234567, u64::MAX] {
            let k = KlpSymbol {
                obj: Cow::Borrowed(b"vmlinux"),
                name: Cow::Borrowed(b"saved_command_line"),
                pos,
            };
            let mut out = b"x".to_vec();
            k.write_name(&mut out);
            assert_eq!(out, format!("x{k}").into_bytes());
            assert_eq!(k.name_len(), out.len() - 1, "{pos}");
        }
    }

    #[test]
    fn annotation_spellings() {
        let comma = ann(".klp.sym.rela.vmlinux.vmlinux.saved_command_line,0");
        let dot = ann(".klp.sym.rela.vmlinux.vmlinux.saved_command_line.0");
        let clang = ann("\".klp.sym.rela.vmlinux.vmlinux.saved_command_line,0\"");
        assert_eq!(comma, dot);
        assert_eq!(comma, clang);
        assert_eq!(*comma.lp_obj, *b"vmlinux");
        assert_eq!(
            comma.target.to_string(),
            ".klp.sym.vmlinux.saved_command_line,0"
        );
    }

    #[test]
    fn dotted_names_and_positions() {
        let a = ann(".klp.sym.rela.mod_a.mod_b.klp_string.12345.2");
        assert_eq!(
            (&a.lp_obj[..], &a.target.obj[..]),
            (&b"mod_a"[..], &b"mod_b"[..])
        );
        assert_eq!(
            (&a.target.name[..], a.target.pos),
            (&b"klp_string.12345"[..], 2)
        );
        let c = ann(".klp.sym.rela.vmlinux.vmlinux.foo.constprop.0,3");
        assert_eq!(
            (&c.target.name[..], c.target.pos),
            (&b"foo.constprop.0"[..], 3)
        );
    }

    #[test]
    fn bad_annotations() {
        for (name, why) in [
            (".klp.sym.rela.vmlinux.vmlinux.foo", "no position"),
            (".klp.sym.rela.vmlinux.vmlinux.foo.x", "position 'x'"),
            (".klp.sym.rela.vmlinux", "expected"),
            (".klp.sym.rela.my-mod.my-mod.f.0", "contains '-'"),
        ] {
            let e = parse_annotation(name.as_bytes()).unwrap_err();
            assert!(e.0.contains(why), "{name}: {e}");
        }
        let long = format!(".klp.sym.rela.{}.vmlinux.f.0", "m".repeat(56));
        assert!(parse_annotation(long.as_bytes())
            .unwrap_err()
            .0
            .contains("55"));
        let long = format!(".klp.sym.rela.vmlinux.vmlinux.{}.0", "f".repeat(512));
        assert!(parse_annotation(long.as_bytes())
            .unwrap_err()
            .0
            .contains("511"));
    }

    #[test]
    fn object_names() {
        assert!(check_obj_name(b"klp_test_target").is_ok());
        assert!(check_obj_name(b"a.b")
            .unwrap_err()
            .0
            .contains("contains '.'"));
        assert!(check_obj_name("m".repeat(55).as_bytes()).is_ok());
        assert!(check_obj_name("m".repeat(56).as_bytes())
            .unwrap_err()
            .0
            .contains("MODULE_NAME_LEN"));
        assert!(check_obj_name(b"").is_err());
    }

    #[test]
    fn klp_symbols_and_sections() {
        let s = parse_klp_symbol(b".klp.sym.vmlinux.foo.isra.0,2").unwrap();
        assert_eq!(
            (&s.obj[..], &s.name[..], s.pos),
            (&b"vmlinux"[..], &b"foo.isra.0"[..], 2)
        );
        assert!(parse_klp_symbol(b".klp.sym.vmlinux.foo").is_err());
        assert_eq!(
            klp_section_name(b"vmlinux", b".text"),
            b".klp.rela.vmlinux..text"
        );
        assert_eq!(
            klp_section_name(b"vmlinux", b"__jump_table"),
            b".klp.rela.vmlinux.__jump_table"
        );
        assert_eq!(
            klp_section_object(b".klp.rela.vmlinux..text").unwrap(),
            b"vmlinux"
        );
        // The minimal tool's bug: the kernel reads object `vmlinux__jump_table`.
        assert_eq!(
            klp_section_object(b".klp.rela.vmlinux__jump_table").unwrap(),
            b"vmlinux__jump_table"
        );
    }

    /// One policy for names the kernel cannot match: any bytes but those
    /// the grammar cannot hold, in annotations and klp symbols alike.
    #[test]
    fn names_are_bytes() {
        let a = parse_annotation(b".klp.sym.rela.mod_\xe9.mod_\xe9.get_hom\xe9nym,2").unwrap();
        assert_eq!(*a.lp_obj, *b"mod_\xe9");
        assert_eq!(*a.target.name, *b"get_hom\xe9nym");
        let mut out = Vec::new();
        a.target.write_name(&mut out);
        assert_eq!(out, b".klp.sym.mod_\xe9.get_hom\xe9nym,2");
        assert_eq!(a.target.to_string(), ".klp.sym.mod_\\xE9.get_hom\\xE9nym,2");
        let k = parse_klp_symbol_ref(&out).unwrap();
        assert_eq!(
            (k.obj, k.name, k.pos),
            (&b"mod_\xe9"[..], &b"get_hom\xe9nym"[..], 2)
        );
        assert_eq!(
            klp_section_object(b".klp.rela.\xe9\xe9..text\xa9").unwrap(),
            b"\xe9\xe9"
        );
        for (name, why) in [
            (&b".klp.sym.vmlinux.a\0b,0"[..], "NUL byte"),
            (b".klp.sym.vm\0linux.ab,0", "NUL byte"),
            (b".klp.sym.vmlinux.ab,\xe9", "position '\\xE9'"),
        ] {
            let e = parse_klp_symbol_ref(name).unwrap_err();
            assert!(e.0.contains(why), "{e}");
        }
        let e = parse_annotation(b".klp.sym.rela.vmlinux.vmlinux.a\0b,1").unwrap_err();
        assert!(e.0.contains("NUL byte"), "{e}");
        assert_eq!(show(b"caf\xc3\xa9 \xff").to_string(), "caf\u{e9} \\xFF");
    }
}
