//! Step 3 of a conversion: the plan. Which symbols become klp symbols and
//! which relocations move into which `.klp.rela.<obj>.<section>`.
//!
//! Planning decides where each relocation goes; whether the kernel would
//! accept it there is asked of [`crate::rules::contract`], the same rules
//! `check` applies. It writes nothing, and collects every refusal, so a
//! refused module gets the full list at once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use super::select::Selection;
use crate::arch;
use crate::elf::{Elf, Reloc, RelocSection, Section, SHF_RELA_LIVEPATCH};
use crate::finding::{Finding, Rule};
use crate::klp_patch;
use crate::names::{self, Annotation, KlpSymbol};
use crate::rules::{contract, kernels, Target};

/// A symbol to rename in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename<'a> {
    /// Symbol index (unchanged by the conversion).
    pub sym: usize,
    /// The klp symbol it becomes.
    pub klp: KlpSymbol<'a>,
}

/// Relocations that go into one klp relocation section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KlpSection<'a> {
    /// The object that must be loaded before these are applied.
    pub obj: Cow<'a, [u8]>,
    /// The section the relocations patch (`sh_info`).
    pub target: usize,
    /// An existing klp section for the same (object, target), extended in place.
    pub existing: Option<usize>,
    /// Where its entries (with explicit addends, in input order) are in
    /// [`Plan::entries`].
    pub entries: Range<usize>,
}

/// Everything the writer must do. What moves is kept flat, in a few large
/// vectors that [`KlpSection::entries`] and [`Plan::removals`] index, not
/// a vector a section: a module may have 30,000 klp sections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan<'a> {
    /// Symbols renamed to `.klp.sym.*` with `SHN_LIVEPATCH`.
    pub renames: Vec<Rename<'a>>,
    /// New or extended klp relocation sections, in order of first use.
    pub sections: Vec<KlpSection<'a>>,
    /// Every entry that moves, section after section of `sections`.
    pub entries: Vec<Reloc>,
    /// For each relocation section losing entries, in section order:
    /// (section index, where its flags are in `moving`).
    pub removals: Vec<(usize, Range<usize>)>,
    /// The removals' flags, one an entry: `true`, the entry moves out.
    pub moving: Vec<bool>,
    /// Notes and warnings (errors refuse the module instead).
    pub notes: Vec<Finding>,
    /// Sections emptied in the output: `KLP_SYMPOS` annotation data and its
    /// relocations (they only told the converter the positions).
    pub emptied: Vec<usize>,
    /// Sections whose `SHF_ALLOC` is cleared, so the kernel never loads them.
    pub unallocated: Vec<usize>,
}

impl Plan<'_> {
    /// Does the plan change nothing?
    pub fn is_empty(&self) -> bool {
        self.renames.is_empty() && self.sections.is_empty()
    }

    /// Number of relocations that move into klp sections.
    pub fn moved(&self) -> usize {
        self.entries.len()
    }

    /// How many klp sections the plan adds (the rest extend the input's).
    pub fn new_sections(&self) -> usize {
        self.sections
            .iter()
            .filter(|s| s.existing.is_none())
            .count()
    }

    /// Let go of what the proof of the applied plan does not need: the
    /// new klp sections and their entries are in the output now, where
    /// [`super::verify`] finds them; of the plan's sections it needs only
    /// those that extend one of the input's (which it may rewrite), their
    /// entries not. (The summary's counts, [`Plan::moved`] and the
    /// sections', are taken before.)
    pub fn trim_for_proof(&mut self) {
        self.sections.retain(|s| s.existing.is_some());
        for s in &mut self.sections {
            s.entries = 0..0;
        }
        self.sections.shrink_to_fit();
        self.entries = Vec::new();
    }

    /// The entries of klp section `k` (of `sections`; panics if there is
    /// none).
    pub fn entries_of(&self, k: usize) -> &[Reloc] {
        &self.entries[self.sections[k].entries.clone()]
    }

    /// The flags of removal `k` (of `removals`; panics if there is none):
    /// one an entry of its section, `true` where the entry moves out.
    pub fn moving_of(&self, k: usize) -> &[bool] {
        &self.moving[self.removals[k].1.clone()]
    }

    /// [`Plan::moving_of`], to change.
    pub fn moving_mut(&mut self, k: usize) -> &mut [bool] {
        &mut self.moving[self.removals[k].1.clone()]
    }

    /// Give klp section `k` the entries `new` instead of its own, the
    /// other sections' entries kept where they follow (for tests that plant
    /// a faulty plan). Panics if there is no section `k`.
    pub fn set_entries(&mut self, k: usize, new: Vec<Reloc>) {
        let old = self.sections[k].entries.clone();
        let grown = new.len() as isize - old.len() as isize;
        self.entries.splice(old.clone(), new);
        self.sections[k].entries = old.start..old.end.saturating_add_signed(grown);
        // The sections' entries lie section after section: those of every
        // later one move by as much.
        for s in &mut self.sections[k + 1..] {
            s.entries = s.entries.start.saturating_add_signed(grown)
                ..s.entries.end.saturating_add_signed(grown);
        }
    }
}

/// What becomes of a relocation against a symbol that takes the klp form
/// `a` ([`klp_move`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Move {
    /// It moves into `.klp.rela.<a.lp_obj>.<target>`, with this explicit
    /// addend.
    Klp(i64),
    /// It stays where it is, which is harmless (a debug section, which
    /// the loader never relocates); the note says so.
    Left(Finding),
}

/// Can relocation `r` of the ordinary relocation section `rs` move into
/// the klp section for `a`? The kernel's refusal when it cannot: a target
/// that is not a section or not allocated, an offset beyond it, a vmlinux
/// symbol from a module's section, a late relocation into a special or
/// `.init` section, a type the machine's loader does not handle or bytes
/// it will not write over ([`arch::klp_entry_rule`]), a REL addend that
/// cannot be read.
///
/// `loader`: ask the machine's loader too. Its refusals hold of an ordinary
/// relocation against another object's symbol as much as of a klp one
/// (x86_64 will not write over nonzero bytes, ppc64 wants the nop after a
/// call to another object), so they make no difference between leaving a
/// relocation ordinary and moving it.
pub fn klp_move(
    elf: &Elf,
    rs: &RelocSection,
    r: &Reloc,
    a: &Annotation,
    loader: bool,
) -> Result<Move, Finding> {
    let sec = &elf.sections.at(rs.index);
    let target = contract::relocation_target(elf, sec)?;
    klp_move_into(elf, rs, &target, r, a, loader)
}

/// [`klp_move`] with the relocation section's target section already
/// found ([`contract::relocation_target`], once a section, not an entry).
fn klp_move_into(
    elf: &Elf,
    rs: &RelocSection,
    target: &Section,
    r: &Reloc,
    a: &Annotation,
    loader: bool,
) -> Result<Move, Finding> {
    if !target.is_alloc() && arch::is_debug_section(target.name) {
        return Ok(Move::Left(Finding::new(
            Rule::DebugSectionLeft,
            format!(
                "left in place: {} is a debug section, which the module loader never relocates",
                target.display_name()
            ),
        )));
    }
    let refusal = contract::offset_within(target, r.offset)
        .or_else(|| contract::target_alloc(Some(&a.lp_obj), target))
        .or_else(|| contract::vmlinux_access(&a.lp_obj, &a.target))
        .or_else(|| contract::late_target(&a.lp_obj, target, elf.machine))
        .or_else(|| {
            // The release only matters for the per-CPU section.
            kernels::is_percpu_section(target)
                .then(|| kernels::percpu_target(&a.lp_obj, target, &Target::of(elf, None)))
                .flatten()
        })
        .or_else(|| {
            // A warning (a distance that may fit) does not stop the move;
            // `check` reports it on the output.
            loader
                .then(|| arch::klp_entry_rule(elf, target, r, &elf.symbols[r.sym as usize]))
                .flatten()
                .filter(Finding::is_error)
        })
        .or_else(|| {
            loader
                .then(|| arch::klp_move_rule(elf, target, r, &a.target))
                .flatten()
        });
    if let Some(p) = refusal {
        return Err(p);
    }
    if rs.is_rela() {
        return Ok(Move::Klp(r.addend));
    }
    let bytes = elf
        .section_bytes(target)
        .get(r.offset as usize..)
        .unwrap_or(&[]);
    arch::rel_implicit_addend(elf.machine, r.r_type, bytes, elf.big_endian)
        .map(Move::Klp)
        .ok_or_else(|| {
            Finding::new(
                Rule::RelAddend,
                format!(
                    "cannot read the implicit addend of REL relocation {} on {}",
                    arch::reloc_type_name(elf.machine, r.r_type),
                    arch::machine_name(elf.machine)
                ),
            )
        })
}

/// The plan's part for a run of relocation sections ([`plan_with`]), kept
/// flat as the plan is; [`Part::gather`] joins two parts into the plan's
/// vectors.
struct Part<'a> {
    /// The klp sections, in order of first use; their entries are in
    /// `entries` until gathered (their ranges set then).
    sections: Vec<KlpSection<'a>>,
    /// For each target section, its first klp section in `sections`; the
    /// others chained through `next_group` (a target rarely has two
    /// objects).
    group_of: Vec<usize>,
    next_group: Vec<usize>,
    /// Every entry that moves, in input order, with its klp section's
    /// place in `sections`.
    entries: Vec<(usize, Reloc)>,
    /// Each relocation section losing entries, with where its flags (one
    /// an entry, `true` = the entry moves out) are in `moving`.
    removals: Vec<(usize, std::ops::Range<usize>)>,
    moving: Vec<bool>,
    notes: Vec<Finding>,
    problems: Vec<Finding>,
}

impl<'a> Part<'a> {
    /// The klp section for (`target`, `obj`) in `sections`, if any.
    fn group(&self, target: usize, obj: &[u8]) -> Option<usize> {
        let mut g = self.group_of[target];
        while g != usize::MAX && *self.sections[g].obj != *obj {
            g = self.next_group[g];
        }
        (g != usize::MAX).then_some(g)
    }

    /// A new klp section, last in `sections`.
    fn push(&mut self, section: KlpSection<'a>) -> usize {
        let g = self.sections.len();
        self.next_group.push(self.group_of[section.target]);
        self.group_of[section.target] = g;
        self.sections.push(section);
        g
    }

    /// This part and `later`, planned from the relocation sections after
    /// these, as one run through all of them would have planned them:
    /// `later`'s entries join the klp sections this part began (after
    /// their own), its new sections follow, and so do its removals, notes
    /// and problems. The entries are sorted by section (counted, then
    /// placed: stable) into one vector. Into `plan`: its klp sections,
    /// entries, removals and flags, and the notes after its own; the
    /// problems are returned.
    fn gather(mut self, later: Part<'a>, plan: &mut Plan<'a>) -> Vec<Finding> {
        let place: Vec<usize> = later
            .sections
            .into_iter()
            .map(|s| match self.group(s.target, &s.obj) {
                Some(g) => g,
                None => self.push(s),
            })
            .collect();
        // Where each section's entries begin (`at[g]`), and end (`at[g + 1]`).
        let mut at = vec![0; self.sections.len() + 1];
        self.entries.iter().for_each(|&(g, _)| at[g + 1] += 1);
        later
            .entries
            .iter()
            .for_each(|&(g, _)| at[place[g] + 1] += 1);
        for g in 1..at.len() {
            at[g] += at[g - 1];
        }
        for (s, w) in self.sections.iter_mut().zip(at.windows(2)) {
            s.entries = w[0]..w[1];
        }
        let mut entries = vec![Reloc::default(); self.entries.len() + later.entries.len()];
        let mut put = |g: usize, r: Reloc| {
            entries[at[g]] = r;
            at[g] += 1;
        };
        self.entries.into_iter().for_each(|(g, r)| put(g, r));
        later
            .entries
            .into_iter()
            .for_each(|(g, r)| put(place[g], r));
        let shift = self.moving.len();
        // Room for exactly both halves: grown by doubling, 20,000 removals
        // held room for 32,768 (24 bytes each) until the output was proven.
        let mut removals = self.removals;
        removals.reserve_exact(later.removals.len());
        removals
            .extend((later.removals.into_iter()).map(|(i, f)| (i, f.start + shift..f.end + shift)));
        let mut moving = self.moving;
        moving.reserve_exact(later.moving.len());
        moving.extend(later.moving);
        plan.sections = self.sections;
        plan.entries = entries;
        plan.removals = removals;
        plan.moving = moving;
        plan.notes.extend(self.notes);
        plan.notes.extend(later.notes);
        let mut problems = self.problems;
        problems.extend(later.problems);
        problems
    }

    /// Plan the relocation sections `runs` (in section order) of `elf`.
    fn of(
        elf: &Elf<'a>,
        sel: &Selection<'a>,
        runs: &[&RelocSection<'a>],
        existing: &HashMap<usize, Vec<(&[u8], usize)>>,
        loader: bool,
    ) -> Part<'a> {
        let mut part = Part {
            sections: Vec::new(),
            group_of: vec![
                usize::MAX;
                if runs.is_empty() {
                    0
                } else {
                    elf.sections.len()
                }
            ],
            next_group: Vec::new(),
            entries: Vec::new(),
            removals: Vec::new(),
            moving: Vec::new(),
            notes: Vec::new(),
            problems: Vec::new(),
        };
        for rs in runs {
            let sec = &elf.sections.at(rs.index);
            let is_klp = sec.sh_flags & SHF_RELA_LIVEPATCH != 0;
            let target_index = sec.sh_info as usize;
            let flags = part.moving.len()..part.moving.len() + rs.len();
            part.moving.resize(flags.end, false);
            let mut any = false;
            // Decoded once a section: a module may have 30,000 of them.
            let target = elf.sections.get(target_index);
            let mut moves_into: Option<Result<Section, Finding>> = None;
            for (n, r) in rs.entries().enumerate() {
                let sym = &elf.symbols[r.sym as usize];
                let here = |p: Finding| p.at_entry(elf, rs.index, &r);
                if !is_klp {
                    if let Some(p) = contract::ordinary_reloc_to_livepatch_symbol(
                        elf,
                        sym,
                        target.as_ref(),
                        r.r_type,
                    ) {
                        if p.is_error() {
                            part.problems.push(here(p));
                        } else {
                            part.notes.push(here(p));
                        }
                        continue;
                    }
                }
                let Some(a) = &sel.annotations[r.sym as usize] else {
                    continue;
                };
                if is_klp {
                    part.problems.push(here(Finding::new(
                        Rule::KlpSectionAnnotation,
                        "klp relocation section references an unconverted annotation symbol",
                    )));
                    continue;
                }
                let into = moves_into.get_or_insert_with(|| contract::relocation_target(elf, sec));
                let moved = match into {
                    Ok(t) => klp_move_into(elf, rs, t, &r, a, loader),
                    Err(p) => Err(p.clone()),
                };
                let addend = match moved {
                    Ok(Move::Klp(addend)) => addend,
                    Ok(Move::Left(note)) => {
                        part.notes.push(here(note));
                        continue;
                    }
                    Err(p) => {
                        part.problems.push(here(p));
                        continue;
                    }
                };
                let g = match part.group(target_index, &a.lp_obj) {
                    Some(g) => g,
                    None => part.push(KlpSection {
                        obj: a.lp_obj.clone(),
                        target: target_index,
                        existing: existing.get(&target_index).and_then(|list| {
                            list.iter().find(|(o, _)| **o == *a.lp_obj).map(|(_, i)| *i)
                        }),
                        entries: 0..0,
                    }),
                };
                part.entries.push((g, Reloc { addend, ..r }));
                part.moving[flags.start + n] = true;
                any = true;
            }
            if any {
                part.removals.push((rs.index, flags));
            } else {
                part.moving.truncate(flags.start);
            }
        }
        part
    }
}

/// Plan the conversion of what `sel` selected. Returns the plan and every
/// refusal found (the plan is only to be carried out when there is none).
pub fn plan<'a>(elf: &Elf<'a>, sel: Selection<'a>) -> (Plan<'a>, Vec<Finding>) {
    plan_with(elf, sel, true)
}

/// [`plan`], with (`loader`) or without the machine's loader's per-entry
/// rules: without, the plan is what a converter that does not ask the
/// loader would write (the tests' stand-in for other tools).
pub fn plan_with<'a>(elf: &Elf<'a>, sel: Selection<'a>, loader: bool) -> (Plan<'a>, Vec<Finding>) {
    // A patch table the livepatch core refuses is refused here too, even
    // when there is nothing to convert (`check` reports the same).
    let table = klp_patch::read(elf);
    let target = Target::of(elf, None);
    let mut problems: Vec<Finding> = contract::patch_table(elf, table.as_ref(), &target)
        .into_iter()
        .filter(Finding::is_error)
        .collect();
    let mut plan = Plan {
        emptied: [&sel.table_sections[..], &sel.table_relocs[..]].concat(),
        unallocated: sel.table_sections.clone(),
        ..Plan::default()
    };
    if sel.order.is_empty() {
        return (plan, problems);
    }
    problems.extend(contract::livepatch_modinfo(elf));

    // Existing klp sections, to extend rather than duplicate: by target,
    // (object, section index), the first one of each object.
    let mut existing: HashMap<usize, Vec<(&[u8], usize)>> = HashMap::new();
    for s in elf.sections.iter() {
        if s.sh_flags & SHF_RELA_LIVEPATCH != 0 {
            match contract::klp_section_name_format(&s) {
                Ok(obj) => {
                    let list = existing.entry(s.sh_info as usize).or_default();
                    if !list.iter().any(|(o, _)| *o == obj) {
                        list.push((obj, s.index));
                    }
                }
                Err(p) => problems.push(p),
            }
        }
    }
    // Every relocation against a selected symbol moves: the relocation
    // sections in two runs of about as many entries at once, for a large
    // module, the second run's sections then added to the first's as one
    // run through all of them would have.
    let relocs: Vec<&RelocSection> = elf
        .relocs
        .iter()
        .filter(|rs| !plan.emptied.contains(&rs.index)) // KLP_SYMPOS data: dropped, not moved
        .collect();
    let total: usize = relocs.iter().map(|rs| rs.len()).sum();
    let mut half = 0;
    let split = relocs
        .iter()
        .position(|rs| {
            half += rs.len();
            2 * half >= total
        })
        .map_or(relocs.len(), |i| i + 1);
    let (first, second) = relocs.split_at(split);
    let part = |runs: &[&RelocSection<'a>]| Part::of(elf, &sel, runs, &existing, loader);
    let (first, later) = crate::parallel::join(
        total >= crate::parallel::WORTH_TWO_CORES,
        || part(first),
        || part(second),
    );
    problems.extend(first.gather(later, &mut plan));

    // A section for a module the patch has no klp_object for is never
    // applied; convert cannot add an object to the module's C data. Once
    // per object: the fix is one entry.
    // The input's klp sections count too: the output keeps them.
    let objects = klp_patch::ModuleObjects::of(elf, table.as_ref());
    let mut refused_objs: Vec<&[u8]> = Vec::new();
    let mut kept: Vec<(usize, &[u8])> = existing.values().flatten().map(|&(o, i)| (i, o)).collect();
    kept.sort_unstable();
    // Each section's name, made only for a message (30,000 a large module).
    enum Named {
        Planned(usize),
        Kept(usize),
    }
    let kept = kept.into_iter().map(|(i, obj)| (obj, Named::Kept(i)));
    let planned = (plan.sections.iter().enumerate()).map(|(k, s)| (&s.obj[..], Named::Planned(k)));
    let livepatch = elf.is_livepatch();
    for (obj, named) in planned.chain(kept) {
        if refused_objs.contains(&obj) || !livepatch {
            continue;
        }
        if let Some(p) = contract::klp_section_no_object(obj, &objects) {
            refused_objs.push(obj);
            let name = match named {
                Named::Planned(k) => {
                    let s = &plan.sections[k];
                    names::klp_section_name(&s.obj, elf.sections.at(s.target).name)
                }
                Named::Kept(i) => elf.sections.at(i).name.to_vec(),
            };
            let p = p.in_section(names::show(&name).to_string());
            if p.is_error() {
                problems.push(Finding {
                    message: format!(
                        "{}; convert cannot add a klp_object to the module's data",
                        p.message
                    ),
                    ..p
                });
            } else {
                plan.notes.push(p);
            }
        }
    }

    // A KLP_SYMPOS annotation that no relocation uses is a mistake.
    let mut used = vec![false; elf.symbols.len()];
    for r in &plan.entries {
        used[r.sym as usize] = true;
    }
    for &sym in &sel.sympos_symbols {
        if !used[sym] {
            problems.push(
                Finding::new(
                    Rule::SymposTable,
                    "KLP_SYMPOS annotation that nothing in the module uses",
                )
                .in_section(".symtab")
                .symbol(elf.symbols[sym].display_name()),
            );
        }
    }
    // The selected symbols are renamed, in the order they were selected
    // (their klp forms move from the selection into the plan).
    // Collected into a vector of the selection's size: grown by doubling,
    // 50,000 renames held room for 65,536 until the output was proven
    // (measured when the benchmark's module had 50,000 functions).
    let mut sel = sel;
    let mut renames = Vec::with_capacity(sel.order.len());
    renames.extend(sel.order.iter().filter_map(|&sym| {
        Some(Rename {
            sym,
            klp: sel.annotations[sym].take()?.target,
        })
    }));
    plan.renames = renames;
    // The release's limit on names (the module's vermagic): the grammar
    // allows the longest, KSYM_NAME_LEN of 6.1 and later.
    let mut whole = Vec::new();
    let max = target.max_symbol_name();
    for r in &plan.renames {
        // Only a whole klp name past the limit (and so any whose name
        // alone is) can be refused: no other is written out to be looked at.
        if r.klp.name_len() <= max {
            continue;
        }
        whole.clear();
        r.klp.write_name(&mut whole);
        if let Some(p) = contract::klp_symbol_too_long(&r.klp.obj, &r.klp.name, &whole, &target) {
            problems.push(
                p.in_section(".symtab")
                    .symbol(elf.symbols[r.sym].display_name()),
            );
        }
    }
    (plan, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A part with `sections` (target, object, entry offsets), grouped as
    /// [`Part::of`] groups them, for a module of `n` sections; one removal,
    /// of section `removed`, its one entry moving.
    fn part(n: usize, removed: usize, sections: &[(usize, &'static str, &[u64])]) -> Part<'static> {
        let mut p = Part {
            sections: Vec::new(),
            group_of: vec![usize::MAX; n],
            next_group: Vec::new(),
            entries: Vec::new(),
            removals: vec![(removed, 0..1)],
            moving: vec![true],
            notes: Vec::new(),
            problems: Vec::new(),
        };
        for &(target, obj, offsets) in sections {
            assert!(p.group(target, obj.as_bytes()).is_none());
            let g = p.push(KlpSection {
                obj: Cow::Borrowed(obj.as_bytes()),
                target,
                existing: None,
                entries: 0..0,
            });
            p.entries.extend(offsets.iter().map(|&offset| {
                let r = Reloc {
                    offset,
                    sym: 1,
                    r_type: 1,
                    addend: 0,
                };
                (g, r)
            }));
        }
        p
    }

    /// `first` and `later` gathered into an empty plan, and the problems.
    fn gathered(first: Part<'static>, later: Part<'static>) -> (Plan<'static>, Vec<Finding>) {
        let mut plan = Plan::default();
        let problems = first.gather(later, &mut plan);
        (plan, problems)
    }

    /// The later part's sections join those the earlier one began for the
    /// same target and object (their entries after the earlier ones'),
    /// and the rest follow in their order: what one run through both
    /// parts' relocation sections plans. The entries are gathered section
    /// by section into one vector; the later part's flags follow the
    /// earlier's.
    #[test]
    fn a_later_part_joins_as_one_run_would_have() {
        let first = part(8, 2, &[(1, "vmlinux", &[0, 8]), (2, "vmlinux", &[4])]);
        let later = part(
            8,
            4,
            &[
                (2, "vmlinux", &[12]),
                (3, "ext4", &[0]),
                (1, "ext4", &[16]),
                (1, "vmlinux", &[24]),
            ],
        );
        let (got, problems) = gathered(first, later);
        let whole = part(
            8,
            2,
            &[
                (1, "vmlinux", &[0, 8, 24]),
                (2, "vmlinux", &[4, 12]),
                (3, "ext4", &[0]),
                (1, "ext4", &[16]),
            ],
        );
        let (want, _) = gathered(whole, part(8, 4, &[]));
        assert_eq!(got.sections, want.sections);
        assert_eq!(got.entries, want.entries);
        let ranges: Vec<Range<usize>> = got.sections.iter().map(|s| s.entries.clone()).collect();
        assert_eq!(ranges, [0..3, 3..5, 5..6, 6..7]);
        let offsets: Vec<u64> = got.entries.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [0, 8, 24, 4, 12, 0, 16]);
        assert_eq!(got.removals, vec![(2, 0..1), (4, 1..2)]);
        assert_eq!(got.moving, [true, true]);
        assert!(got.notes.is_empty() && problems.is_empty());
    }

    /// A section's entries replaced, longer and shorter: the others keep
    /// theirs, wherever they lie.
    #[test]
    fn set_entries_moves_the_other_sections_ranges() {
        let first = part(
            8,
            2,
            &[
                (1, "vmlinux", &[0, 8]),
                (2, "vmlinux", &[4]),
                (3, "ext4", &[2]),
            ],
        );
        let (mut plan, _) = gathered(first, part(8, 4, &[]));
        let offsets =
            |p: &Plan, k: usize| -> Vec<u64> { p.entries_of(k).iter().map(|r| r.offset).collect() };
        let mut first = plan.entries_of(0).to_vec();
        first.push(first[0]);
        plan.set_entries(0, first);
        assert_eq!(offsets(&plan, 0), [0, 8, 0]);
        assert_eq!(offsets(&plan, 1), [4]);
        assert_eq!(offsets(&plan, 2), [2]);
        plan.set_entries(1, Vec::new());
        assert_eq!(offsets(&plan, 1), Vec::<u64>::new());
        assert_eq!(offsets(&plan, 2), [2]);
        assert_eq!(plan.moved(), 4);
        // An empty section given entries: the next one, its range
        // starting where the empty one's does, moves past them.
        plan.set_entries(1, plan.entries_of(2).to_vec());
        assert_eq!(offsets(&plan, 1), [2]);
        assert_eq!(offsets(&plan, 2), [2]);
        let ranges: Vec<Range<usize>> = plan.sections.iter().map(|s| s.entries.clone()).collect();
        assert_eq!(ranges, [0..3, 3..4, 4..5]);
    }
}
