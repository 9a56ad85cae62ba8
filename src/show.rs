//! `klp-convert show`: what a livepatch module carries, for people and scripts.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::Serialize;

use crate::arch;
use crate::convert::select;
use crate::elf::{Elf, SHF_RELA_LIVEPATCH, SHN_LIVEPATCH, SHN_UNDEF};
use crate::finding::Finding;
use crate::klp_patch::{self, Form, PatchTable};
use crate::names;
use crate::rules::{contract, Target};

/// Everything `show` reports about one module.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The file shown.
    pub file: String,
    /// Architecture.
    pub machine: String,
    /// `.modinfo` has `livepatch=Y`.
    pub livepatch: bool,
    /// klp relocation sections, grouped by object (sorted), then target.
    pub objects: Vec<ObjectReport>,
    /// The patched functions per object, from the module's `klp_patch`
    /// tables, when they are in its data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<PatchTable>,
    /// Annotations still waiting for conversion: `KLP_RELOC_SYMBOL` names
    /// and `KLP_SYMPOS` table entries.
    pub unconverted: Vec<AnnotationReport>,
    /// The contract's findings (see `check`).
    pub findings: Vec<Finding>,
    /// Totals.
    pub summary: Summary,
}

/// The klp relocation sections of one object.
#[derive(Debug, Serialize)]
pub struct ObjectReport {
    /// `vmlinux` or a module name.
    pub object: String,
    /// Its sections.
    pub sections: Vec<SectionReport>,
}

/// One `.klp.rela.*` section.
#[derive(Debug, Serialize)]
pub struct SectionReport {
    /// The section's name.
    pub name: String,
    /// The section it patches (`sh_info`).
    pub target: String,
    /// Its relocations.
    pub relocations: Vec<RelocReport>,
}

/// One klp relocation.
#[derive(Debug, Serialize)]
pub struct RelocReport {
    /// `r_offset` in the target section.
    pub offset: u64,
    /// Relocation type name.
    #[serde(rename = "type")]
    pub r_type: String,
    /// Object that defines the symbol (from the klp symbol name).
    pub symbol_object: String,
    /// Symbol name.
    pub symbol: String,
    /// Position (0 = unique).
    pub position: u64,
    /// `r_addend`.
    pub addend: i64,
}

/// An annotation symbol not yet converted, with the relocations that use it.
#[derive(Debug, Serialize)]
pub struct AnnotationReport {
    /// The symbol as found.
    pub symbol: String,
    /// The klp symbol and section it becomes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub becomes: Option<String>,
    /// Why it does not parse, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub malformed: Option<String>,
    /// (relocation section, offset) of each use.
    pub uses: Vec<(String, u64)>,
}

/// Totals of a [`Report`].
#[derive(Debug, Serialize)]
pub struct Summary {
    /// klp relocation sections.
    pub klp_sections: usize,
    /// klp relocations.
    pub klp_relocations: usize,
    /// Distinct `SHN_LIVEPATCH` symbols.
    pub klp_symbols: usize,
    /// Unconverted annotations.
    pub unconverted: usize,
    /// Structural errors.
    pub errors: usize,
}

/// Build the report for a parsed module.
pub fn report(file: &str, elf: &Elf) -> Report {
    let mut objects: BTreeMap<String, Vec<SectionReport>> = BTreeMap::new();
    let mut klp_relocations = 0;
    let mut klp_sections = 0;
    let (selection, _) = select::select(elf);
    let mut uses: HashMap<u32, Vec<(String, u64)>> = HashMap::new();
    for rs in &elf.relocs {
        let sec = &elf.sections.at(rs.index);
        if selection.table_relocs.contains(&rs.index) {
            continue;
        }
        if sec.sh_flags & SHF_RELA_LIVEPATCH == 0 {
            for r in rs.entries() {
                let i = r.sym as usize;
                let annotated = selection.annotations.get(i).is_some_and(Option::is_some);
                if names::is_annotation(elf.symbols[i].name) || annotated {
                    uses.entry(r.sym)
                        .or_default()
                        .push((sec.display_name(), r.offset));
                }
            }
            continue;
        }
        klp_sections += 1;
        let obj = names::klp_section_object(sec.name)
            .map_or_else(|_| "?".to_string(), |o| names::show(o).to_string());
        let relocations: Vec<RelocReport> = rs
            .entries()
            .map(|r| {
                let sym = &elf.symbols[r.sym as usize];
                let parsed = names::parse_klp_symbol(sym.name).ok();
                RelocReport {
                    offset: r.offset,
                    r_type: arch::reloc_type_name(elf.machine, r.r_type),
                    symbol_object: parsed
                        .as_ref()
                        .map(|k| names::show(&k.obj).to_string())
                        .unwrap_or_default(),
                    symbol: parsed
                        .as_ref()
                        .map(|k| names::show(&k.name).to_string())
                        .unwrap_or_else(|| sym.display_name()),
                    position: parsed.map(|k| k.pos).unwrap_or(0),
                    addend: r.addend,
                }
            })
            .collect();
        klp_relocations += relocations.len();
        objects.entry(obj).or_default().push(SectionReport {
            name: sec.display_name(),
            target: elf.section_name(sec.sh_info as usize),
            relocations,
        });
    }
    let mut unconverted: Vec<AnnotationReport> = elf
        .symbols
        .iter()
        .filter(|s| s.st_shndx == SHN_UNDEF && names::is_annotation(s.name))
        .map(|s| {
            let parsed = names::parse_annotation(s.name);
            AnnotationReport {
                symbol: s.display_name(),
                becomes: parsed
                    .as_ref()
                    .ok()
                    .map(|a| format!("{} in .klp.rela.{}.*", a.target, names::show(&a.lp_obj))),
                malformed: parsed.err().map(|e| e.0),
                uses: uses.remove(&s.index).unwrap_or_default(),
            }
        })
        .collect();
    for &sym in &selection.sympos_symbols {
        let Some(a) = &selection.annotations[sym] else {
            continue;
        };
        unconverted.push(AnnotationReport {
            symbol: elf.symbols[sym].display_name(),
            becomes: Some(format!(
                "{} in .klp.rela.{}.* (KLP_SYMPOS)",
                a.target,
                names::show(&a.lp_obj)
            )),
            malformed: None,
            uses: uses.remove(&(sym as u32)).unwrap_or_default(),
        });
    }
    let findings = contract::module(elf, &Target::of(elf, None));
    let summary = Summary {
        klp_sections,
        klp_relocations,
        klp_symbols: elf
            .symbols
            .iter()
            .filter(|s| s.st_shndx == SHN_LIVEPATCH)
            .count(),
        unconverted: unconverted.len(),
        errors: findings.iter().filter(|p| p.is_error()).count(),
    };
    Report {
        file: file.to_string(),
        machine: arch::machine_name(elf.machine),
        livepatch: elf.is_livepatch(),
        objects: objects
            .into_iter()
            .map(|(object, sections)| ObjectReport { object, sections })
            .collect(),
        patch: klp_patch::read(elf),
        unconverted,
        findings,
        summary,
    }
}

impl Report {
    /// The human form.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let lp = if self.livepatch {
            "livepatch=Y"
        } else {
            "not a livepatch module"
        };
        let _ = writeln!(s, "{}: {}, {}", self.file, self.machine, lp);
        for o in &self.objects {
            let _ = writeln!(s, "\nobject {}", o.object);
            for sec in o.sections.iter() {
                let _ = writeln!(
                    s,
                    "  {} -> {} ({} relocation{})",
                    sec.name,
                    sec.target,
                    sec.relocations.len(),
                    plural(sec.relocations.len())
                );
                for r in &sec.relocations {
                    let sym = if r.symbol_object.is_empty() || r.symbol_object == o.object {
                        r.symbol.clone()
                    } else {
                        format!("{}:{}", r.symbol_object, r.symbol)
                    };
                    let _ = writeln!(
                        s,
                        "    0x{:08x}  {:<28} {} pos {} addend {}",
                        r.offset, r.r_type, sym, r.position, r.addend
                    );
                }
            }
        }
        if let Some(t) = &self.patch {
            let form = match t.form {
                Form::Static => "struct klp_patch",
                Form::Objtool => "objtool .init.klp_objects",
            };
            let _ = writeln!(s, "\npatched functions ({form})");
            for o in &t.objects {
                let _ = writeln!(s, "  object {}", o.object());
                for f in &o.funcs {
                    let _ = writeln!(
                        s,
                        "    {} pos {} -> {}",
                        names::show(f.old_name.as_deref().unwrap_or(b"(no old_name)")),
                        f.sympos,
                        f.new_func.as_deref().unwrap_or("(no new_func)")
                    );
                }
            }
        }
        if !self.unconverted.is_empty() {
            let _ = writeln!(s, "\nunconverted annotations");
            for a in &self.unconverted {
                let becomes = match (&a.becomes, &a.malformed) {
                    (Some(b), _) => format!("-> {b}"),
                    (None, e) => format!("(malformed: {})", e.as_deref().unwrap_or("?")),
                };
                let _ = writeln!(s, "  {} {}", a.symbol, becomes);
                for (sec, off) in &a.uses {
                    let _ = writeln!(s, "    used at {sec}+0x{off:x}");
                }
            }
        }
        if !self.findings.is_empty() {
            let _ = writeln!(s, "\nproblems");
            for p in &self.findings {
                let _ = writeln!(s, "  {}: {p}", p.severity);
            }
        }
        let m = &self.summary;
        let _ = writeln!(
            s,
            "\nsummary: {} klp relocation{} in {} section{} for {} object{}, {} klp symbol{}, {} unconverted annotation{}, {} error{}",
            m.klp_relocations,
            plural(m.klp_relocations),
            m.klp_sections,
            plural(m.klp_sections),
            self.objects.len(),
            plural(self.objects.len()),
            m.klp_symbols,
            plural(m.klp_symbols),
            m.unconverted,
            plural(m.unconverted),
            m.errors,
            plural(m.errors)
        );
        s
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
