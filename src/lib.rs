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
//! The kernel's side of the contract is written up in `shared/docs/klp-abi.md`.

pub mod arch;
pub mod check;
pub mod convert;
pub mod diag;
pub mod elf;
pub mod names;
pub mod plan;
pub mod show;
