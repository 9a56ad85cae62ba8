//! klp-convert: turn a built Linux livepatch module's references to
//! unexported symbols into klp relocations, and prove the result will load.
//!
//! The data flows one way:
//!
//! 1. [`elf::Elf::parse`] reads the module into a plain model;
//! 2. [`plan::build`] decides which symbols and relocations become klp ones,
//!    refusing what the kernel would refuse;
//! 3. [`convert::write`] applies the plan with [`elf::write::Edit`], which never
//!    renumbers sections or symbols and leaves untouched bytes as they were;
//! 4. [`convert::verify`] re-reads the result and checks it against the
//!    contract ([`check::structural`]) and against the input.
//!
//! With symbol maps ([`symbols::SymbolMap`]: kallsyms, System.map, vmlinux,
//! modules, Module.symvers, symbols.klp, JSON), [`plan::build_with`] also
//! turns plain references into klp ones ([`resolve`]) and reads the v7
//! `KLP_SYMPOS` table ([`sympos`]). [`check`] applies the same contract and
//! each architecture's loader rules to any livepatch module; [`kbuild`]
//! drives an unpatched kbuild before the conversion.
//!
//! The kernel's side of the contract is written up in `shared/docs/klp-abi.md`.
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

pub mod app;
pub mod arch;
pub mod check;
pub mod cli;
pub mod convert;
pub mod elf;
pub mod error;
pub mod finding;
pub mod kbuild;
pub mod maps;
pub mod module_file;
pub mod names;
pub mod parallel;
pub mod rules;
pub mod show;
