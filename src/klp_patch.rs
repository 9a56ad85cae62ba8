//! What a livepatch patches: the `klp_patch` → `klp_object` → `klp_func`
//! tables a module hands to `klp_enable_patch`, read back from the ELF.
//!
//! Two forms are read, both from the relocations that fill the pointers
//! (a `.ko` is relocatable: every pointer is a relocation, every other
//! field is literal data):
//!
//! * **static** — a module written in C: a `struct klp_patch` whose `mod`
//!   is `THIS_MODULE`, its `objs` array, each object's `funcs` array, each
//!   ended by a zeroed entry. The arrays' strides depend on the kernel's
//!   `struct kobject` (`CONFIG_DEBUG_KOBJECT_RELEASE` makes it larger), so
//!   each known stride is tried and the one the relocations fit is taken.
//! * **objtool** — `klp-build`'s `.init.klp_objects` (`struct
//!   klp_object_ext`, 64 bytes) and `.init.klp_funcs` (`struct
//!   klp_func_ext`, 24 bytes), which its `init.c` copies into a
//!   `klp_patch` at load time.
//!
//! The layouts are those of Linux 5.x to 7.x (the external fields of the
//! three structs have not moved since `old_sympos` came in 4.5), for 64-bit
//! targets: the architectures with livepatch.

use std::collections::HashMap;

use serde::Serialize;

use crate::elf::{abi, Elf, SHN_LIVEPATCH, SHN_UNDEF};
use crate::names::{Show, VMLINUX};

/// `MODULE_NAME_LEN`: an object name must be shorter.
pub const MODULE_NAME_LEN: usize = 56;

/// Which form the table has (more may come with new generators).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Form {
    /// A static `struct klp_patch` (modules written in C).
    Static,
    /// objtool klp-build's `.init.klp_objects` / `.init.klp_funcs`.
    Objtool,
}

/// Where a table entry is in the module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    /// The section holding the entry.
    pub section: String,
    /// The entry's offset in it.
    pub offset: u64,
}

/// One `struct klp_func` (or `klp_func_ext`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatchedFunc {
    /// `old_name`: the function replaced, its bytes (the kernel compares
    /// them as they are); `None` when the pointer is NULL or does not point
    /// at a string. JSON shows it as [`Show`] does.
    #[serde(serialize_with = "shown")]
    pub old_name: Option<Vec<u8>>,
    /// `old_sympos` (0: the name must be unique in the object).
    pub sympos: u64,
    /// The replacement, by symbol name when the module names it; `None`
    /// when `new_func` is NULL.
    pub new_func: Option<String>,
    /// Where the entry is.
    pub place: Place,
}

/// One `struct klp_object` (or `klp_object_ext`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatchedObject {
    /// `vmlinux` for a NULL `name`, else the module's name as written (its
    /// bytes); `None` when the pointer does not point at a string.
    #[serde(serialize_with = "shown")]
    pub name: Option<Vec<u8>>,
    /// `name` is NULL (vmlinux): the kernel's messages print it `(null)`.
    #[serde(skip)]
    pub null_name: bool,
    /// Its functions, in table order.
    pub funcs: Vec<PatchedFunc>,
    /// `funcs` is NULL (the kernel refuses the patch).
    pub funcs_missing: bool,
    /// objtool form: `nr_funcs` claims more entries than its section holds
    /// after `funcs`: (claimed, room). Only the entries present are read.
    #[serde(skip)]
    pub funcs_overrun: Option<(u64, u64)>,
    /// Where the entry is.
    pub place: Place,
}

/// Why an object's name never matches a loaded object
/// ([`PatchedObject::never_matched`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unmatched {
    /// The string `"vmlinux"`, not NULL: a module of that name.
    VmlinuxString,
    /// A `-` in the name, which no module name has.
    Dash,
}

/// A module's patched functions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatchTable {
    /// Which form was read.
    pub form: Form,
    /// The objects, in table order.
    pub objects: Vec<PatchedObject>,
}

/// A name in the JSON of `show`: as messages show it ([`Show`]).
fn shown<S: serde::Serializer>(name: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match name {
        Some(n) => s.collect_str(&Show(n)),
        None => s.serialize_none(),
    }
}

/// The object an entry names, `vmlinux` for NULL.
impl PatchedObject {
    /// The object's name for messages.
    pub fn object(&self) -> Show<'_> {
        Show(self.name.as_deref().unwrap_or(b"(unreadable name)"))
    }

    /// Why the kernel never matches this object with anything loaded: a
    /// `name` that is not NULL is a module's (`klp_is_module()` is
    /// `obj->name != NULL`), found by `find_module()` and
    /// `klp_module_coming()`'s `strcmp` against `mod->name`. No module is
    /// named `vmlinux`, and kbuild's module names never hold a `-`
    /// (`KBUILD_MODNAME` has `_` for it). `None` for vmlinux (NULL), for a
    /// name a module can have, and for an unreadable name.
    pub fn never_matched(&self) -> Option<Unmatched> {
        let name = self.name.as_deref().filter(|_| !self.null_name)?;
        if name == VMLINUX {
            Some(Unmatched::VmlinuxString)
        } else if name.contains(&b'-') {
            Some(Unmatched::Dash)
        } else {
            None
        }
    }

    /// The name the kernel gives the object's sysfs directory
    /// (`klp_init_object`: the name, or `vmlinux` for NULL); `None` when
    /// the name is unreadable.
    pub fn sysfs_name(&self) -> Option<&[u8]> {
        if self.null_name {
            Some(VMLINUX)
        } else {
            self.name.as_deref()
        }
    }
}

/// `struct klp_func` and `struct klp_object` sizes on 64-bit targets: with
/// the usual 64-byte `struct kobject`, and with
/// `CONFIG_DEBUG_KOBJECT_RELEASE`'s delayed work in it (152 bytes).
const FUNC_STRIDES: [u64; 2] = [152, 240];
const OBJECT_STRIDES: [u64; 2] = [168, 256];
/// The same on 32-bit targets (ppc32 7.2: `sizeof(struct klp_func)` 80,
/// `sizeof(struct klp_object)` 88, measured with the kernel's headers).
const FUNC_STRIDES_32: [u64; 1] = [80];
const OBJECT_STRIDES_32: [u64; 1] = [88];
/// The external (caller-filled) part of `klp_func` (`old_name`, `new_func`,
/// `old_sympos`) and of `klp_object` (`name`, `funcs`, the callbacks and
/// what follows up to the `kobj`), in pointer-sized words.
const FUNC_EXTERNAL_WORDS: u64 = 3;
const OBJECT_EXTERNAL_WORDS: u64 = 7;
/// `struct klp_object_ext` / `klp_func_ext` (include/linux/livepatch_external.h).
const OBJECT_EXT_SIZE: u64 = 64;
const FUNC_EXT_SIZE: u64 = 24;
/// Offset of `nr_funcs` in `klp_object_ext`.
const OBJECT_EXT_NR_FUNCS: u64 = 56;
/// Most entries read from one array: a bound against hostile input.
const MAX_ENTRIES: u64 = 1 << 16;
/// Most pointers to `__this_module` tried as a `klp_patch`.
const MAX_CANDIDATES: usize = 64;

/// Read the module's patch table: the objtool form when
/// `.init.klp_objects` is present, else a static `klp_patch`. `None` when
/// neither is found (a table built at run time), and for modules that are
/// not `livepatch=Y`. The objtool form is read on 64-bit targets only (the
/// architectures klp-build supports), the static one on both classes.
pub fn read(elf: &Elf) -> Option<PatchTable> {
    // klp_enable_patch takes nothing from a module without livepatch=Y.
    if !elf.is_livepatch() {
        return None;
    }
    if let Some(objs) = elf.section_by_name(b".init.klp_objects") {
        if !elf.is_64 {
            return None;
        }
        return Some(Memory::new(elf).objtool(objs.index));
    }
    // A static klp_patch names THIS_MODULE: without `__this_module` there
    // is none, and the relocations need not be indexed.
    if !elf.symbols.iter().any(|s| s.name == b"__this_module") {
        return None;
    }
    Memory::new(elf).static_patch()
}

/// A pointer's target: section index and offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ptr {
    section: usize,
    offset: u64,
}

/// The module's initialised data as the kernel would see it after the
/// loader's relocation: pointers through the relocations that fill them.
struct Memory<'e, 'a> {
    elf: &'e Elf<'a>,
    /// (target section, offset) → (symbol index, addend) of every ordinary
    /// RELA relocation.
    relocs: HashMap<(usize, u64), (u32, i64)>,
    /// Pointer size: 8, or 4 on 32-bit targets.
    w: u64,
}

impl<'e, 'a> Memory<'e, 'a> {
    fn new(elf: &'e Elf<'a>) -> Self {
        let mut relocs = HashMap::new();
        for rs in &elf.relocs {
            let sec = &elf.sections.at(rs.index);
            if !rs.is_rela() || sec.sh_flags & crate::elf::SHF_RELA_LIVEPATCH != 0 {
                continue;
            }
            // The tables are data: code's relocations (most of a module's)
            // never fill one of their pointers.
            let target = elf.sections.get(sec.sh_info as usize);
            if target.is_none_or(|t| t.sh_flags & abi::SHF_EXECINSTR as u64 != 0) {
                continue;
            }
            for r in rs.entries() {
                relocs.insert((sec.sh_info as usize, r.offset), (r.sym, r.addend));
            }
        }
        let w = if elf.is_64 { 8 } else { 4 };
        Memory { elf, relocs, w }
    }

    /// Is a pointer stored at `section + offset`?
    fn has_reloc(&self, section: usize, offset: u64) -> bool {
        self.relocs.contains_key(&(section, offset))
    }

    /// Does any relocation fill a byte in `start..end` of `section`?
    fn any_reloc_in(&self, section: usize, start: u64, end: u64) -> bool {
        (start..end).any(|o| self.relocs.contains_key(&(section, o)))
    }

    /// The pointer stored at `section + offset`, when it points into a
    /// section of the module.
    fn ptr(&self, section: usize, offset: u64) -> Option<Ptr> {
        let (sym, addend) = *self.relocs.get(&(section, offset))?;
        let s = self.elf.symbols.get(sym as usize)?;
        if matches!(
            s.st_shndx,
            SHN_UNDEF | SHN_LIVEPATCH | abi::SHN_ABS | abi::SHN_COMMON
        ) {
            return None;
        }
        let target = s.st_value.checked_add_signed(addend)?;
        Some(Ptr {
            section: s.section as usize,
            offset: target,
        })
    }

    /// The name of what the pointer at `section + offset` points to: the
    /// symbol itself, or the function symbol at that place of a section.
    fn ptr_name(&self, section: usize, offset: u64) -> Option<String> {
        let (sym, _) = *self.relocs.get(&(section, offset))?;
        let s = self.elf.symbols.get(sym as usize)?;
        if s.kind() != abi::STT_SECTION && !s.name.is_empty() {
            return Some(s.display_name());
        }
        let p = self.ptr(section, offset)?;
        self.elf
            .symbols
            .iter()
            .find(|f| {
                f.kind() == abi::STT_FUNC
                    && f.section as usize == p.section
                    && f.st_value == p.offset
            })
            .map(|f| f.display_name())
            .or_else(|| {
                Some(format!(
                    "{}+0x{:x}",
                    self.elf.section_name(p.section),
                    p.offset
                ))
            })
    }

    /// The NUL-terminated string a pointer points to: its bytes, whatever
    /// their encoding.
    fn string(&self, p: Ptr) -> Option<Vec<u8>> {
        let data = self.elf.section_data(p.section);
        let rest = data.get(usize::try_from(p.offset).ok()?..)?;
        let end = memchr::memchr(0, rest)?;
        Some(rest[..end].to_vec())
    }

    /// The `len`-byte integer at `section + offset` (0 for NOBITS or out
    /// of range).
    fn uint(&self, section: usize, offset: u64, len: usize) -> u64 {
        let data = self.elf.section_data(section);
        let at = usize::try_from(offset).unwrap_or(usize::MAX);
        match data.get(at..at.saturating_add(len)) {
            Some(b) => self.elf.read_uint(b),
            None => 0,
        }
    }

    /// The pointer-sized word at `section + offset`.
    fn word(&self, section: usize, offset: u64) -> u64 {
        self.uint(section, offset, self.w as usize)
    }

    fn place(&self, section: usize, offset: u64) -> Place {
        Place {
            section: self.elf.section_name(section),
            offset,
        }
    }

    /// One function entry: `old_name` at 0, `new_func` one word on, the
    /// position one more.
    fn func(&self, section: usize, offset: u64) -> PatchedFunc {
        PatchedFunc {
            old_name: self.ptr(section, offset).and_then(|p| self.string(p)),
            new_func: self.ptr_name(section, offset.saturating_add(self.w)),
            sympos: self.word(section, offset.saturating_add(2 * self.w)),
            place: self.place(section, offset),
        }
    }

    /// Is the pointer at `section + offset` NULL?
    fn is_null(&self, section: usize, offset: u64) -> bool {
        !self.has_reloc(section, offset) && self.word(section, offset) == 0
    }

    /// An object's name pointer at `section + offset`: NULL is vmlinux.
    fn object_name(&self, section: usize, offset: u64) -> Option<Vec<u8>> {
        if !self.has_reloc(section, offset) {
            return self.is_null(section, offset).then(|| VMLINUX.to_vec());
        }
        self.ptr(section, offset).and_then(|p| self.string(p))
    }

    /// objtool's form: `.init.klp_objects` entries, each with `nr_funcs`
    /// `klp_func_ext` entries where `funcs` points.
    fn objtool(&self, objs: usize) -> PatchTable {
        // Entries are read from the bytes the file has (none for NOBITS):
        // a hostile sh_size or nr_funcs cannot make work beyond the input.
        let size = self.elf.section_data(objs).len() as u64;
        let mut objects = Vec::new();
        for i in 0..(size / OBJECT_EXT_SIZE).min(MAX_ENTRIES) {
            let at = i * OBJECT_EXT_SIZE;
            let nr = self.uint(objs, at + OBJECT_EXT_NR_FUNCS, 4);
            let funcs_ptr = self.ptr(objs, at + 8);
            let mut overrun = None;
            let funcs = match funcs_ptr {
                Some(p) => {
                    let room = (self.elf.section_data(p.section).len() as u64)
                        .saturating_sub(p.offset)
                        / FUNC_EXT_SIZE;
                    if nr > room {
                        overrun = Some((nr, room));
                    }
                    (0..nr.min(room).min(MAX_ENTRIES))
                        .map(|j| {
                            let at = p.offset.saturating_add(j * FUNC_EXT_SIZE);
                            self.func(p.section, at)
                        })
                        .collect()
                }
                // objtool's init allocates the klp_func array itself: a
                // NULL funcs with nr_funcs 0 is an object without
                // functions; with more, init reads through NULL.
                None => {
                    if nr > 0 {
                        overrun = Some((nr, 0));
                    }
                    Vec::new()
                }
            };
            objects.push(PatchedObject {
                name: self.object_name(objs, at),
                null_name: self.is_null(objs, at),
                funcs,
                funcs_missing: false,
                funcs_overrun: overrun,
                place: self.place(objs, at),
            });
        }
        PatchTable {
            form: Form::Objtool,
            objects,
        }
    }

    /// A static `struct klp_patch`: a pointer to `__this_module` (its `mod`)
    /// followed by a pointer (its `objs`) to an object array the
    /// relocations fit.
    fn static_patch(&self) -> Option<PatchTable> {
        let this_module = self
            .elf
            .symbols
            .iter()
            .position(|s| s.name == b"__this_module")?;
        let mut candidates: Vec<(usize, u64)> = self
            .relocs
            .iter()
            .filter(|(_, (sym, _))| *sym as usize == this_module)
            .map(|(k, _)| *k)
            .collect();
        candidates.sort_unstable();
        // A module has one klp_patch; other structs naming THIS_MODULE
        // (file_operations and the like) come first at most a few times.
        candidates
            .into_iter()
            .take(MAX_CANDIDATES)
            .find_map(|(sec, off)| self.objects_at(self.ptr(sec, off.saturating_add(self.w))?))
    }

    /// The object array at `p`, when one of the known strides fits.
    fn objects_at(&self, p: Ptr) -> Option<PatchTable> {
        let strides: &[u64] = if self.w == 8 {
            &OBJECT_STRIDES
        } else {
            &OBJECT_STRIDES_32
        };
        strides.iter().find_map(|&stride| {
            let n = self.entries(p, stride, OBJECT_EXTERNAL_WORDS * self.w)?;
            let objects: Option<Vec<PatchedObject>> = (0..n)
                .map(|i| {
                    let at = p.offset + i * stride;
                    // Not a klp_object array when a name is not a string.
                    let name = Some(self.object_name(p.section, at)?);
                    let funcs = match self.ptr(p.section, at + self.w) {
                        Some(f) => Some(self.funcs_at(f)?),
                        None => None,
                    };
                    Some(PatchedObject {
                        name,
                        null_name: self.is_null(p.section, at),
                        funcs_missing: funcs.is_none(),
                        funcs_overrun: None,
                        funcs: funcs.unwrap_or_default(),
                        place: self.place(p.section, at),
                    })
                })
                .collect();
            objects
                .filter(|o| o.iter().any(|o| !o.funcs_missing))
                .map(|objects| PatchTable {
                    form: Form::Static,
                    objects,
                })
        })
    }

    /// The function array at `p`, when one of the known strides fits and
    /// every `old_name` that is not NULL is a string.
    fn funcs_at(&self, p: Ptr) -> Option<Vec<PatchedFunc>> {
        let strides: &[u64] = if self.w == 8 {
            &FUNC_STRIDES
        } else {
            &FUNC_STRIDES_32
        };
        strides.iter().find_map(|&stride| {
            let n = self.entries(p, stride, FUNC_EXTERNAL_WORDS * self.w)?;
            let funcs: Vec<PatchedFunc> = (0..n)
                .map(|i| self.func(p.section, p.offset + i * stride))
                .collect();
            let strings = funcs
                .iter()
                .all(|f| f.old_name.is_some() || !self.has_reloc(p.section, f.place.offset));
            strings.then_some(funcs)
        })
    }

    /// How many entries of `stride` bytes an array at `p` has before its
    /// zeroed terminator, if the relocations fit that stride: nothing is
    /// relocated in an entry's internal part (from `external` on), and the
    /// terminator is the first entry whose external part has no pointer and
    /// only zeros (the kernel's `klp_for_each_*_static` stops there).
    fn entries(&self, p: Ptr, stride: u64, external: u64) -> Option<u64> {
        let size = self.elf.sections.get(p.section)?.sh_size;
        for i in 0..MAX_ENTRIES {
            let at = p.offset.checked_add(i.checked_mul(stride)?)?;
            if at.checked_add(stride)? > size {
                return None;
            }
            if self.any_reloc_in(p.section, at + external, at + stride) {
                return None;
            }
            let zero = !self.any_reloc_in(p.section, at, at + external)
                && (0..external / self.w).all(|w| self.word(p.section, at + w * self.w) == 0);
            if zero {
                return Some(i);
            }
        }
        None
    }
}

/// The modules a patch has a `klp_object` for, as
/// `klp_apply_section_relocs` compares a klp section's object with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleObjects<'t> {
    /// No table was read from a linked module: it is built at run time.
    Unread,
    /// No table was read from an object file: it may be in another of the
    /// module's objects.
    Elsewhere,
    /// An object's name is unreadable: it could be any module.
    Unknown,
    /// The names of the objects that are not NULL.
    Named(std::collections::HashSet<&'t [u8]>),
}

impl<'t> ModuleObjects<'t> {
    /// The module objects of `table`, read from `elf`.
    pub fn of(elf: &Elf, table: Option<&'t PatchTable>) -> Self {
        let Some(table) = table else {
            return if elf.is_linked_module() {
                ModuleObjects::Unread
            } else {
                ModuleObjects::Elsewhere
            };
        };
        let mut names = std::collections::HashSet::new();
        for o in table.objects.iter().filter(|o| !o.null_name) {
            match &o.name {
                Some(n) => names.insert(n.as_slice()),
                None => return ModuleObjects::Unknown,
            };
        }
        ModuleObjects::Named(names)
    }
}

impl PatchTable {
    /// Every function with its object, in table order.
    pub fn funcs(&self) -> impl Iterator<Item = (&PatchedObject, &PatchedFunc)> {
        self.objects
            .iter()
            .flat_map(|o| o.funcs.iter().map(move |f| (o, f)))
    }
}
