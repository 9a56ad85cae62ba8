//! The kernel's rules for a livepatch module, each written once.
//!
//! * [`contract`] — the livepatch core's and the module loader's ELF rules
//!   (klp names, section headers, `SHN_LIVEPATCH`, `livepatch=Y`, what a
//!   late relocation may patch);
//! * [`resolution`] — klp symbols and linked names against the target
//!   kernel's symbol maps;
//! * [`kernels`] — the target release, and what holds on some releases only;
//! * [`crate::arch`] — each architecture's `apply_relocate_add`.
//!
//! `convert` calls the same functions while planning and on its output;
//! `check` runs them all through [`all`].

pub mod contract;
pub mod kernels;
pub mod resolution;

pub use kernels::{Release, Target};

use crate::arch;
use crate::elf::Elf;
use crate::finding::Finding;
use crate::maps::SymbolMap;

/// Every rule on `elf` for the kernel `target`: the contract, the
/// release-dependent rules, the loader of its architecture and, given
/// symbol maps, resolution of every klp symbol and linked name.
pub fn all(elf: &Elf, target: &Target, map: Option<&SymbolMap>) -> Vec<Finding> {
    let mut out = contract::module(elf, target);
    out.extend(kernels::late_reloc_read_only(elf, target));
    out.extend(kernels::reload_before_6_3(elf, target));
    out.extend(kernels::percpu_targets(elf, target));
    out.extend(kernels::percpu_unrelocated(elf, target));
    out.extend(arch::loader_rules(elf, target.relocates_percpu()));
    if let Some(map) = map {
        out.extend(resolution::module(elf, map, target));
        let table = crate::klp_patch::read(elf);
        if let Some(table) = &table {
            out.extend(resolution::patched_functions(map, table));
        }
        out.extend(resolution::unchecked_orders(elf, map, table.as_ref()));
    }
    out
}
