//! klp-convert: turn a built Linux livepatch module's references to
//! unexported symbols into klp relocations, and prove the result will load.
//!
//! The data flows one way, read → plan → verify → write:
//!
//! 1. [`elf::Elf::parse`] reads the module into a plain model
//!    ([`module_file`] reads it from disk, compressed or not);
//! 2. [`convert`] runs its steps: [`convert::select`] the annotated
//!    references, [`convert::resolve`] the rest against symbol maps
//!    ([`maps::SymbolMap`]: kallsyms, System.map, vmlinux, modules,
//!    Module.symvers, symbols.klp, JSON, `.config`), [`convert::plan`]
//!    where each relocation goes, [`convert::apply`] the plan with
//!    [`elf::write::Edit`] (nothing renumbered, untouched bytes untouched),
//!    [`convert::verify`] the result;
//! 3. [`module_file::write_proven`] writes it in pieces to a temporary
//!    file, which [`convert::Pending::prove`] verifies as read back before
//!    it replaces the destination; or nothing is written.
//!
//! The kernel's rules are each written once, as functions returning a
//! [`finding::Finding`] with a stable [`finding::Rule`] id: the livepatch
//! core's and the loader's in [`rules`], each architecture's
//! `apply_relocate_add` in [`arch`]. `convert` asks them while planning and
//! of its output; [`check`] runs them all on any module; [`show`] reports
//! what a module carries. [`kbuild`] drives an unpatched kbuild before the
//! conversion. The command line (its parser, its commands and their exit
//! statuses) belongs to the `klp-convert` binary, not to this library.
//!
//! The kernel's side of the contract, in this project's words:
//! `docs/klp-contract.md`; the layout: `ARCHITECTURE.md`.
//!
//! ```
//! use klp_convert::names;
//!
//! // What `KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, get_name, 2)`
//! // leaves in the object, and what the kernel will see after conversion:
//! let a = names::parse_annotation(b".klp.sym.rela.klp_test_target.klp_test_target.get_name.2")?;
//! assert_eq!(a.target.to_string(), ".klp.sym.klp_test_target.get_name,2");
//! assert_eq!(
//!     names::klp_section_name(&a.lp_obj, b".text"),
//!     b".klp.rela.klp_test_target..text"
//! );
//! # Ok::<(), names::NameError>(())
//! ```

pub mod arch;
pub mod check;
pub mod convert;
pub mod elf;
pub mod finding;
pub(crate) mod fxhash;
pub mod kbuild;
pub mod klp_patch;
pub(crate) mod mapped;
pub mod maps;
pub mod module_file;
pub mod names;
pub(crate) mod parallel;
pub mod rules;
pub mod show;

pub use mapped::{tune_allocator_for_conversion, HugeBlocks, HUGE_BLOCK};
// For tests/robustness.rs, which must stay past it; not an interface.
#[doc(hidden)]
pub use parallel::WORTH_TWO_CORES;
