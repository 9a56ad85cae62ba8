//! Step 5 of a conversion: re-read the output and prove it. The contract
//! holds ([`crate::rules::contract`], the rules `check` applies), every
//! input relocation is present exactly once, and nothing else changed.

use super::plan::Plan;
use crate::arch;
use crate::elf::{Elf, RelocSection, SHF_ALLOC, SHN_LIVEPATCH, SHT_RELA};
use crate::finding::{Finding, Rule};
use crate::names::KLP_SYM_PREFIX;
use crate::rules::{contract, Target};

/// Re-read the output and prove it: the contract holds, every input
/// relocation is present exactly once, and nothing else changed.
pub fn verify(input: &Elf, plan: &Plan, out: &Elf) -> Result<(), Vec<Finding>> {
    verdict(
        contract_errors(out, &Target::of(out, None)),
        compare(input, plan, out),
    )
}

/// The first half of [`verify`]: what the output breaks of the contract,
/// for the kernel `target` (the output's release).
pub fn contract_errors(out: &Elf, target: &Target) -> Vec<Finding> {
    contract::module(out, target)
        .into_iter()
        .filter(Finding::is_error)
        .collect()
}

/// [`verify`]'s verdict from its two halves, [`contract_errors`] and
/// [`compare`] (which a caller may run at once).
pub fn verdict(mut contract: Vec<Finding>, mut compared: Vec<Finding>) -> Result<(), Vec<Finding>> {
    contract.append(&mut compared);
    if contract.is_empty() {
        Ok(())
    } else {
        Err(contract)
    }
}

/// Where the run of `k` starts in `sorted` (`sorted.partition_point(|b| *b
/// < k)`), looked for first in the few entries from `hint` on.
fn run_start<T: Ord>(sorted: &[T], k: &T, hint: usize) -> usize {
    const NEAR: usize = 8;
    let after_hint = hint == 0 || sorted.get(hint - 1).is_some_and(|b| b < k);
    if !after_hint {
        return sorted.partition_point(|b| b < k);
    }
    let near = (hint + NEAR).min(sorted.len());
    if near == sorted.len() || sorted[near - 1] >= *k {
        return hint + sorted[hint.min(near)..near].partition_point(|b| b < k);
    }
    near + sorted[near..].partition_point(|b| b < k)
}

/// The second half of [`verify`], the output against the input: every
/// input relocation present exactly once, only the renamed symbols
/// changed, and only the rewritten sections.
pub fn compare(input: &Elf, plan: &Plan, out: &Elf) -> Vec<Finding> {
    compare_applied(input, plan, &Applied::of(input, plan), out)
}

/// What [`compare`] needs of a plan's renames and removals, made once the
/// plan is applied so that those can go before the output is parsed: the
/// names the renamed symbols must have, in symbol order (the renames take
/// 64 bytes each, 1.3 MB for 20,000, where these names take about 32), and
/// the sections that lose entries (the removals take 24 bytes each, and a
/// flag an entry, which only an `SHT_REL` section's implicit addends need).
#[derive(Debug, Default)]
pub struct Applied {
    /// The names, one after another, in symbol order, each without the
    /// [`KLP_SYM_PREFIX`] they all begin with.
    names: Vec<u8>,
    /// (symbol index, length of its name), in symbol order: of two renames
    /// of one symbol, the later in the plan.
    symbols: Vec<(u32, u32)>,
    /// How many renames the plan had.
    count: usize,
    /// The sections that lose entries, in section order.
    removed: Vec<usize>,
    /// Of those, the ones not `SHT_RELA`: (section index, where its flags
    /// are in `moving`), in section order, as [`Plan::removals`].
    rel_removals: Vec<(usize, std::ops::Range<usize>)>,
    /// Their flags, as [`Plan::moving`].
    moving: Vec<bool>,
}

impl Applied {
    /// What [`compare`] needs of `plan`, made for `input`.
    pub fn of(input: &Elf, plan: &Plan) -> Applied {
        let (names, symbols) = renamed_names(plan);
        let mut rel_removals = Vec::new();
        let mut moving = Vec::new();
        for (k, &(i, _)) in plan.removals.iter().enumerate() {
            if input.sections.get(i).is_some_and(|s| s.sh_type != SHT_RELA) {
                let flags = plan.moving_of(k);
                rel_removals.push((i, moving.len()..moving.len() + flags.len()));
                moving.extend_from_slice(flags);
            }
        }
        Applied {
            names,
            symbols,
            count: plan.renames.len(),
            removed: plan.removals.iter().map(|&(i, _)| i).collect(),
            rel_removals,
            moving,
        }
    }

    /// How many renames the plan had.
    pub fn renames(&self) -> usize {
        self.count
    }
}

/// The names `plan`'s renames give their symbols, each without the
/// [`KLP_SYM_PREFIX`], one after another in symbol order, and (symbol
/// index, length of its name) for each: [`Applied`]'s.
fn renamed_names(plan: &Plan) -> (Vec<u8>, Vec<(u32, u32)>) {
    // The renames in symbol order, the later of one symbol's last.
    // (Positions in `renames`, of which there are no more than symbols,
    // whose indices are u32; a symbol index past u32 names no symbol.)
    let mut order: Vec<u32> = (0..plan.renames.len()).map(|k| k as u32).collect();
    order.sort_by_key(|&k| plan.renames[k as usize].sym);
    let mut names = Vec::with_capacity(
        order
            .iter()
            .map(|&k| plan.renames[k as usize].klp.name_len() - KLP_SYM_PREFIX.len())
            .sum(),
    );
    let mut symbols: Vec<(u32, u32)> = Vec::with_capacity(order.len());
    for (n, &k) in order.iter().enumerate() {
        let r = &plan.renames[k as usize];
        let later = order
            .get(n + 1)
            .is_some_and(|&l| plan.renames[l as usize].sym == r.sym);
        let Ok(sym) = u32::try_from(r.sym) else {
            continue;
        };
        if later {
            continue;
        }
        let start = names.len();
        r.klp.write_name(&mut names);
        names.drain(start..start + KLP_SYM_PREFIX.len());
        // A name of 4 GiB or more (past what the writer's 32-bit string
        // offsets reach) is not kept: the bare prefix, which no klp
        // symbol's name is, is looked for instead, and the symbol
        // reported.
        let len = u32::try_from(names.len() - start).unwrap_or_else(|_| {
            names.truncate(start);
            0
        });
        symbols.push((sym, len));
    }
    (names, symbols)
}

/// [`compare`], what it needs of the plan's renames and removals given as
/// `applied` (made from `plan`, whose renames and removals may be gone
/// since).
pub fn compare_applied(input: &Elf, plan: &Plan, applied: &Applied, out: &Elf) -> Vec<Finding> {
    let mut problems = Vec::new();
    compare_relocations(input, plan, applied, out, &mut problems);

    // Symbols: only the renamed ones differ, and only in name and st_shndx.
    // The input's are decoded again from the file, one at a time: a
    // conversion lets them go before the output is parsed (1.9 MB for
    // 40,000), so that the proof holds one file's, not both.
    compare_symbols(input, applied, out, &mut problems);

    // Sections: the ones not rewritten keep header fields and bytes.
    let mut rewritten = vec![false; input.sections.len()];
    let mut rewrite = |i: usize| {
        if let Some(r) = rewritten.get_mut(i) {
            *r = true;
        }
    };
    applied.removed.iter().for_each(|&i| rewrite(i));
    plan.sections
        .iter()
        .filter_map(|s| s.existing)
        .for_each(&mut rewrite);
    plan.emptied.iter().for_each(|&i| rewrite(i));
    rewrite(input.shstrndx as usize);
    if let Some(st) = input.symtab {
        rewrite(st);
        rewrite(input.sections.at(st).sh_link as usize);
    }
    for a in input.sections.iter() {
        let Some(b) = out.sections.get(a.index) else {
            problems.push(
                Finding::new(Rule::Verify, "section missing from output")
                    .in_section(a.display_name()),
            );
            continue;
        };
        let flags = if plan.unallocated.contains(&a.index) {
            a.sh_flags & !SHF_ALLOC
        } else {
            a.sh_flags
        };
        let same_header = a.name == b.name
            && a.sh_type == b.sh_type
            && flags == b.sh_flags
            && a.sh_link == b.sh_link
            && a.sh_info == b.sh_info;
        let same_bytes = rewritten[a.index]
            || (a.index == 0 || input.section_data(a.index) == out.section_data(a.index));
        if !same_header || !same_bytes {
            problems.push(
                Finding::new(Rule::Verify, "section changed unexpectedly")
                    .in_section(a.display_name()),
            );
        }
    }
    problems
}

/// The symbols of [`compare`]: only the renamed ones differ from the
/// input's, and only in name and `st_shndx`.
fn compare_symbols(input: &Elf, renamed: &Applied, out: &Elf, problems: &mut Vec<Finding>) {
    // Their names are compared where they are, in the input's string
    // table, not read first (a scan for the end of each).
    let strings = input.symbol_strings();
    let name_is = |st_name: u32, name: &[u8]| {
        if st_name == 0 {
            return name.is_empty();
        }
        let at = st_name as usize;
        // The name, then its NUL (a name read from a table holds none).
        strings.get(at..at.saturating_add(name.len())) == Some(name)
            && strings.get(at.saturating_add(name.len())) == Some(&0)
    };
    let unreadable = |e: crate::elf::read::ReadError| {
        Finding::new(
            Rule::Verify,
            format!("the input's symbols cannot be read again: {e}"),
        )
    };
    let (count, symbols) = match input.symbols_again(false) {
        Ok(again) => again,
        Err(e) => return problems.push(unreadable(e)),
    };
    // The renamed symbols, walked beside the symbols.
    let (mut next, mut at) = (0, 0);
    if out.symbols.len() != count {
        problems.push(Finding::new(Rule::Verify, "symbol count changed"));
    }
    for (a, b) in symbols.zip(&out.symbols) {
        let a = match a {
            Ok(a) => a,
            Err(e) => return problems.push(unreadable(e)),
        };
        let mut name = None;
        while let Some(&(sym, len)) = renamed.symbols.get(next).filter(|(s, _)| *s <= a.index) {
            let end = at + len as usize;
            if sym == a.index {
                name = Some(renamed.names.get(at..end).unwrap_or(&[]));
            }
            (next, at) = (next + 1, end);
        }
        let same_rest = a.st_info == b.st_info
            && a.st_other == b.st_other
            && a.st_value == b.st_value
            && a.st_size == b.st_size;
        let ok = match name {
            Some(name) => {
                same_rest
                    && b.name.strip_prefix(KLP_SYM_PREFIX.as_bytes()) == Some(name)
                    && b.st_shndx == SHN_LIVEPATCH
            }
            None => same_rest && name_is(a.st_name, b.name) && a.st_shndx == b.st_shndx,
        };
        if !ok {
            let name = match a.st_name {
                0 => &[][..],
                at => crate::elf::read::c_string(strings, at).unwrap_or_default(),
            };
            problems.push(
                Finding::new(Rule::Verify, "symbol changed unexpectedly")
                    .in_section(".symtab")
                    .symbol(crate::elf::show_name(name)),
            );
        }
    }
}

/// A relocation as the loader sees it: (target section, offset, type,
/// symbol, addend). Keys sort by target section first.
type Key = (u32, u64, u32, u32, i64);

/// Relocations: the output holds the input's, the same multiset of
/// [`Key`]s; each one lost or added is a problem, reported in key order.
///
/// One target section at a time: a relocation stays with its target (it
/// moves only between the relocation sections that apply to it), so the
/// multisets of two targets never meet. Only one target's keys are sorted
/// and held at once, not the 200,000 of a large module (6.4 MB beside
/// both parsed files); and as keys sort by target first, the targets in
/// order report in key order.
fn compare_relocations(
    input: &Elf,
    plan: &Plan,
    applied: &Applied,
    out: &Elf,
    problems: &mut Vec<Finding>,
) {
    debug_assert!(
        applied.rel_removals.windows(2).all(|w| w[0].0 < w[1].0),
        "plan.removals not in section order"
    );
    // The relocation sections of each side by (target, position): the
    // input's by section index, each decoded again from the file when its
    // entries are keyed ([`Elf::reloc_section_again`]: a conversion lets
    // the input's `relocs` go before the output is parsed), the output's by
    // position in `relocs`. (u32, u32): 8 bytes, not 16, for 60,000
    // relocation sections. Each sorted stably, which merges the runs
    // already in order: the sections come in runs of ascending targets
    // (the input's, then the klp sections the conversion appended).
    // (The sections `Elf::parse` read into `relocs`: those of type
    // SHT_REL or SHT_RELA, read against `.symtab`.)
    // Room for the output's number, which holds every input relocation
    // section: grown by doubling, the vector left its smaller copies
    // behind in the heap.
    let mut ins: Vec<(u32, u32)> = Vec::with_capacity(out.relocs.len());
    if input.symtab.is_some() {
        ins.extend(
            input
                .sections
                .relocation_sections()
                .filter(|(i, _)| !plan.emptied.contains(i))
                .map(|(i, target)| (target, i as u32)),
        );
    }
    ins.sort();
    let mut outs: Vec<(u32, u32)> = Vec::with_capacity(out.relocs.len());
    outs.extend(
        out.relocs
            .iter()
            .enumerate()
            .map(|(n, rs)| (out.sections.at(rs.index).sh_info, n as u32)),
    );
    outs.sort();
    let (mut i, mut o) = (0, 0);
    let (mut before, mut used, mut added, mut lost) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // The input's symbols, for the names of what is reported: decoded
    // again once, when the first target has a problem (not for each).
    let names = std::cell::OnceCell::new();
    while i < ins.len() || o < outs.len() {
        let target = match (ins.get(i), outs.get(o)) {
            (Some(a), Some(b)) => a.0.min(b.0),
            (Some(a), None) => a.0,
            (None, Some(b)) => b.0,
            (None, None) => break,
        };
        before.clear();
        while let Some(&(_, n)) = ins.get(i).filter(|(t, _)| *t == target) {
            match input.reloc_section_again(n as usize) {
                Some(rs) => input_keys(input, applied, &rs, &mut before),
                // Read once by `Elf::parse`: the input changed since.
                None => problems.push(
                    Finding::new(
                        Rule::Verify,
                        "the input's relocation section cannot be read again: the input changed while it was converted",
                    )
                    .in_section(input.section_name(n as usize)),
                ),
            }
            i += 1;
        }
        // Each output entry is matched against the sorted input entries.
        // `used[first]` counts the matches of the run of equal keys that
        // starts at `first`.
        // A section's entries mostly come in offset order already.
        if !before.is_sorted() {
            before.sort_unstable();
        }
        used.clear();
        used.resize(before.len(), 0u32);
        added.clear();
        // Where the last key's run started: the output's entries come
        // mostly in key order (a section's by offset), so the next key's
        // run is found among the few input entries after it.
        let mut last = 0;
        while let Some(&(_, n)) = outs.get(o).filter(|(t, _)| *t == target) {
            for r in out.relocs[n as usize].entries() {
                let k = (target, r.offset, r.r_type, r.sym, r.addend);
                // The first unmatched entry of k's run, if the run has one.
                let first = run_start(&before, &k, last);
                last = first;
                match before.get(first + used.get(first).map_or(0, |&u| u as usize)) {
                    Some(b) if *b == k => used[first] += 1,
                    _ => added.push(k),
                }
            }
            o += 1;
        }
        // The unmatched input entries: the tail of each run.
        lost.clear();
        let mut first = 0;
        while first < before.len() {
            let mut end = first + 1;
            while end < before.len() && before[end] == before[first] {
                end += 1;
            }
            lost.extend_from_slice(&before[first + used[first] as usize..end]);
            first = end;
        }
        if !lost.is_empty() || !added.is_empty() {
            added.sort_unstable();
            report_relocations(input, &names, &lost, &added, problems);
        }
    }
}

/// The [`Key`]s of the input's relocation section `rs`, appended to `keys`.
fn input_keys(input: &Elf, applied: &Applied, rs: &RelocSection, keys: &mut Vec<Key>) {
    let target = input.sections.at(rs.index).sh_info;
    // A REL entry that moves into a (RELA) klp section carries its
    // implicit addend there; one left in place keeps it in its bytes.
    // One binary search (`removals` is in section order), not a scan:
    // a conversion may shorten 30,000 relocation sections.
    let moved = (!rs.is_rela())
        .then(|| {
            applied
                .rel_removals
                .binary_search_by_key(&rs.index, |(i, _)| *i)
        })
        .and_then(Result::ok)
        .map(|k| &applied.moving[applied.rel_removals[k].1.clone()]);
    for (n, r) in rs.entries().enumerate() {
        let mut addend = r.addend;
        if moved.is_some_and(|m| m.get(n).copied().unwrap_or(false)) {
            let bytes = input
                .section_data(target as usize)
                .get(r.offset as usize..)
                .unwrap_or(&[]);
            addend = arch::rel_implicit_addend(input.machine, r.r_type, bytes, input.big_endian)
                .unwrap_or(0);
        }
        keys.push((target, r.offset, r.r_type, r.sym, addend));
    }
}

/// Report the relocations `lost` and `added` (each sorted) by the
/// conversion, in key order, as one sorted list. `again`: the input's
/// symbols decoded again, if the conversion let them go, once for every
/// target reported (a failed proof of 20,000 klp sections decoded them
/// 20,000 times).
fn report_relocations<'a>(
    input: &Elf<'a>,
    again: &std::cell::OnceCell<Vec<crate::elf::Symbol<'a>>>,
    lost: &[Key],
    added: &[Key],
    problems: &mut Vec<Finding>,
) {
    let symbols = if input.symbols.is_empty() {
        again.get_or_init(|| {
            input
                .symbols_again(true)
                .map(|(_, symbols)| symbols.map_while(Result::ok).collect())
                .unwrap_or_default()
        })
    } else {
        &input.symbols
    };
    let mut report = |k: &Key, what: &str| {
        let (target, offset, r_type, sym, addend) = *k;
        problems.push(
            Finding::new(
                Rule::Verify,
                format!(
                    "relocation {what} by the conversion ({} addend {addend})",
                    arch::reloc_type_name(input.machine, r_type)
                ),
            )
            .in_section(input.section_name(target as usize))
            .at(offset)
            .symbol(
                symbols
                    .get(sym as usize)
                    .map(|s| s.display_name())
                    .unwrap_or_default(),
            ),
        );
    };
    let (mut i, mut j) = (0, 0);
    while i < lost.len() || j < added.len() {
        if j == added.len() || (i < lost.len() && lost[i] <= added[j]) {
            report(&lost[i], "lost");
            i += 1;
        } else {
            report(&added[j], "added");
            j += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{renamed_names, run_start, Applied};
    use crate::convert::plan::{Plan, Rename};
    use crate::names::KlpSymbol;
    use std::borrow::Cow;

    /// The names in symbol order, of two renames of one symbol the later
    /// in the plan.
    #[test]
    fn renamed_holds_the_last_name_of_each_symbol_in_symbol_order() {
        let rename = |sym: usize, name: &'static [u8], pos: u64| Rename {
            sym,
            klp: KlpSymbol {
                obj: Cow::Borrowed(b"vmlinux"),
                name: Cow::Borrowed(name),
                pos,
            },
        };
        let plan = Plan {
            renames: vec![rename(3, b"a", 0), rename(1, b"bb", 2), rename(3, b"c", 1)],
            ..Plan::default()
        };
        let (names, symbols) = renamed_names(&plan);
        assert_eq!(symbols, [(1, 12), (3, 11)]);
        assert_eq!(names, b"vmlinux.bb,2vmlinux.c,1");
        assert_eq!(Applied::default().renames(), 0);
    }

    /// Wherever the hint is, the answer is the partition point's.
    #[test]
    fn run_start_is_the_partition_point() {
        let sorted: Vec<u32> = (0..40).map(|i| i / 3 * 2).collect();
        for k in 0..90 {
            let want = sorted.partition_point(|b| *b < k);
            for hint in 0..=sorted.len() + 2 {
                assert_eq!(run_start(&sorted, &k, hint), want, "k {k} hint {hint}");
            }
        }
        assert_eq!(run_start::<u32>(&[], &1, 0), 0);
        assert_eq!(run_start::<u32>(&[], &1, 5), 0);
    }
}
