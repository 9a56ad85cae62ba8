//! `klp-convert build`: livepatch sources to loadable modules on an unpatched
//! kernel's kbuild, in one command.
//!
//! kbuild cannot do it alone: its modpost stops at every name it cannot
//! resolve, and a livepatch's references to unexported symbols (annotated
//! or plain) are exactly such names. So the build runs modpost in warning
//! mode (`KBUILD_MODPOST_WARN=1`), then converts every livepatch module the
//! build made, in place, with the exports kbuild knows (the kernel's and the
//! directory's `Module.symvers`, `KBUILD_EXTRA_SYMBOLS`) plus the maps given.
//! A name modpost only warned about is caught there: it is converted if a
//! map knows it, refused with the reason if not.
//!
//! Warning mode must not let anything else through, so the build then does
//! modpost's unresolved-symbol check itself ([`refused_names`]), on every
//! module as it stands (a livepatch module once converted), against the
//! export lists modpost read ([`Exports`]): what the patched modpost of
//! `kbuild/` lets through passes, and anything else fails the build. The
//! check reads the modules, not modpost's warnings: those change wording
//! between releases, stop after 10, and are not printed again by a build
//! that has nothing to remake, while the modules and the export lists are
//! there on every run.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::elf::{abi, Elf, SHN_UNDEF};

/// Why a kbuild step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The directory given as the kernel's build directory has no Makefile.
    #[error(
        "{}: not a kernel build directory (no Makefile); install the kernel's headers package or give -C",
        .0.display()
    )]
    NotKbuild(PathBuf),
    /// A file or directory could not be read.
    #[error("{}: {source}{}", path.display(), modules_order_hint(path))]
    Io {
        /// The path.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The running kernel's release could not be read (`/proc`).
    #[error("cannot read the running kernel's release: {0}; give -C")]
    Release(#[source] io::Error),
    /// `make` could not be started.
    #[error("cannot run make: {0}")]
    Spawn(#[source] io::Error),
    /// `make ... modules` failed.
    #[error(
        "make -C {} M={} modules failed ({status})",
        kbuild.display(),
        dir.display()
    )]
    Make {
        /// The kernel's build directory.
        kbuild: PathBuf,
        /// The module directory.
        dir: PathBuf,
        /// How make ended.
        status: ExitStatus,
    },
    /// No kbuild patch fits this release.
    #[error(
        "no kbuild patch for Linux {release}: there are patches for {}",
        PATCHES.iter().map(|p| p.series).collect::<Vec<_>>().join(", ")
    )]
    NoPatch {
        /// The release or tree asked about.
        release: String,
    },
    /// No kbuild patch applies to a kernel tree (the dry run of each).
    #[error(
        "{}: no kbuild patch applies to this tree{}: tried {} (patch --dry-run -p1); a tree that is already patched, or of another series, needs no patch or a new one",
        tree.display(),
        version.as_deref().map(|v| format!(" (Linux {v})")).unwrap_or_default(),
        tried.join(", ")
    )]
    NoPatchFits {
        /// The tree.
        tree: PathBuf,
        /// Its `major.minor`, when its Makefile gives one.
        version: Option<String>,
        /// The series tried, in order.
        tried: Vec<&'static str>,
    },
    /// `patch` could not be run for the dry run.
    #[error("cannot run patch for the dry run: {0}")]
    PatchSpawn(#[source] io::Error),
    /// A kernel tree's Makefile gives no VERSION and PATCHLEVEL.
    #[error(
        "{}: no VERSION and PATCHLEVEL: not a kernel tree's Makefile",
        .0.display()
    )]
    TreeVersion(PathBuf),
    /// `modules.order` names a module that is not there.
    #[error(
        "{}: lists {line}, but {} does not exist",
        order.display(),
        module.display()
    )]
    MissingModule {
        /// The `modules.order` file.
        order: PathBuf,
        /// The line.
        line: String,
        /// The module file expected.
        module: PathBuf,
    },
}

impl Error {
    /// Is this about the command line or the machine (exit 2) rather than
    /// about the build (exit 1)?
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            Error::NotKbuild(_)
                | Error::Release(_)
                | Error::Spawn(_)
                | Error::NoPatch { .. }
                | Error::NoPatchFits { .. }
                | Error::PatchSpawn(_)
                | Error::TreeVersion(_)
        ) || matches!(self, Error::Io { path, .. } if !path.ends_with("modules.order"))
    }
}

/// What [`Error::Io`] adds about `modules.order`: the build may have made
/// no module at all.
fn modules_order_hint(path: &Path) -> &'static str {
    if path.ends_with("modules.order") {
        " (did the build make any module?)"
    } else {
        ""
    }
}

/// One out-of-tree (`M=`) build.
#[derive(Debug, Clone)]
pub struct Kbuild {
    /// The kernel's build directory (`make -C`), e.g. `/lib/modules/<release>/build`.
    pub kbuild: PathBuf,
    /// The module sources (`M=`), absolute.
    pub dir: PathBuf,
    /// Extra `make` arguments (`KCFLAGS=...`, `V=1`, `-j8`, ...).
    pub make_args: Vec<String>,
}

impl Kbuild {
    /// Check the directories and make `dir` absolute (kbuild needs it so).
    pub fn new(kbuild: PathBuf, dir: &Path, make_args: Vec<String>) -> Result<Kbuild, Error> {
        if !kbuild.join("Makefile").is_file() {
            return Err(Error::NotKbuild(kbuild));
        }
        let dir = std::fs::canonicalize(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Kbuild {
            kbuild,
            dir,
            make_args,
        })
    }

    /// The `make` command line kbuild needs for an unpatched modpost.
    pub fn make_command(&self, target: &str) -> Command {
        let mut cmd = Command::new("make");
        cmd.arg("-C")
            .arg(&self.kbuild)
            .arg(format!("M={}", self.dir.display()))
            .arg("KBUILD_MODPOST_WARN=1")
            .args(&self.make_args)
            .arg(target);
        cmd
    }

    /// Run `make ... modules`, its output going to ours.
    pub fn make_modules(&self) -> Result<(), Error> {
        let mut cmd = self.make_command("modules");
        let status = cmd.status().map_err(Error::Spawn)?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Make {
                kbuild: self.kbuild.clone(),
                dir: self.dir.clone(),
                status,
            })
        }
    }

    /// The modules the build made, from its `modules.order` (6.1 lists the
    /// `.ko`, later kernels the `.o`; paths absolute or relative to `M=`).
    pub fn modules(&self) -> Result<Vec<PathBuf>, Error> {
        let order = self.dir.join("modules.order");
        let text = std::fs::read_to_string(&order).map_err(|source| Error::Io {
            path: order.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let ko = match line.strip_suffix(".o") {
                Some(stem) => self.dir.join(format!("{stem}.ko")),
                None => self.dir.join(line),
            };
            if !ko.is_file() {
                return Err(Error::MissingModule {
                    order,
                    line: line.to_string(),
                    module: ko,
                });
            }
            out.push(ko);
        }
        Ok(out)
    }

    /// The export lists kbuild itself would use: the kernel's and this
    /// directory's `Module.symvers`, and `KBUILD_EXTRA_SYMBOLS` (among the
    /// make arguments, in the environment, and as modpost last read it:
    /// the `-i` files of `.Module.symvers.cmd`, which include those the
    /// module's own Kbuild or Makefile sets). Only those that exist, each
    /// once.
    pub fn export_maps(&self) -> Vec<PathBuf> {
        let mut out = vec![
            self.kbuild.join("Module.symvers"),
            self.dir.join("Module.symvers"),
        ];
        let mut extra: Vec<String> = self
            .make_args
            .iter()
            .filter_map(|a| a.strip_prefix("KBUILD_EXTRA_SYMBOLS="))
            .map(str::to_string)
            .collect();
        extra.extend(std::env::var("KBUILD_EXTRA_SYMBOLS"));
        for list in &extra {
            out.extend(list.split_whitespace().map(PathBuf::from));
        }
        out.extend(self.modpost_inputs());
        out.retain(|p| p.is_file());
        let mut seen = HashSet::new();
        out.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
        out
    }

    /// The export lists modpost read in this directory's last build (its
    /// `-i FILE` arguments, from kbuild's `.Module.symvers.cmd`); a relative
    /// path is taken from the kernel's build directory (where make ran
    /// until 6.12), else from this directory (6.13 on). Nothing when the
    /// file is not there.
    fn modpost_inputs(&self) -> Vec<PathBuf> {
        let Ok(text) = std::fs::read_to_string(self.dir.join(".Module.symvers.cmd")) else {
            return Vec::new();
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        words
            .windows(2)
            .filter(|w| w[0] == "-i")
            .map(|w| {
                let p = Path::new(w[1]);
                let from_kbuild = self.kbuild.join(p);
                if p.is_absolute() || from_kbuild.is_file() {
                    from_kbuild
                } else {
                    self.dir.join(p)
                }
            })
            .collect()
    }
}

/// The names kbuild's modpost knows are exported: the second column of
/// every export list it reads ([`Kbuild::export_maps`]).
#[derive(Debug, Default)]
pub struct Exports {
    names: HashSet<Vec<u8>>,
    /// The kernel's `Module.symvers` when it is missing: then kbuild knows
    /// none of the kernel's exports, and every name of them is undefined.
    pub missing: Option<PathBuf>,
}

impl Exports {
    /// Read the export lists at `paths` (`crc<TAB>symbol<TAB>module<TAB>...`
    /// lines; `build` has read them as maps already, which checks their
    /// form); `kernel` is the kernel's own, which should be among them.
    pub fn read(paths: &[PathBuf], kernel: &Path) -> Result<Exports, Error> {
        let mut out = Exports::default();
        for path in paths {
            let text = std::fs::read(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            out.add(&text);
        }
        if !paths.iter().any(|p| p == kernel) {
            out.missing = Some(kernel.to_path_buf());
        }
        Ok(out)
    }

    /// Add the names of one export list's text.
    pub fn add(&mut self, text: &[u8]) {
        for line in text.split(|&b| b == b'\n') {
            if let Some(name) = line.split(|&b| b == b'\t').nth(1) {
                self.names.insert(name.to_vec());
            }
        }
    }

    /// Does an export list have `name`?
    pub fn contains(&self, name: &[u8]) -> bool {
        self.names.contains(name)
    }
}

/// Undefined names modpost never reports (`ignore_undef_symbol` in
/// `scripts/mod/modpost.c`): `__this_module` and the GOT everywhere; on
/// PowerPC the register save and restore functions the final link adds,
/// and ppc64's `.TOC.`, which the module loader provides.
fn modpost_ignores(machine: u16, name: &[u8]) -> bool {
    const PPC32: &[&[u8]] = &[
        b"_restgpr_",
        b"_savegpr_",
        b"_rest32gpr_",
        b"_save32gpr_",
        b"_restvr_",
        b"_savevr_",
    ];
    const PPC64: &[&[u8]] = &[
        b"_restgpr0_",
        b"_savegpr0_",
        b"_restgpr1_",
        b"_savegpr1_",
        b"_restfpr_",
        b"_savefpr_",
        b"_restvr_",
        b"_savevr_",
    ];
    let starts = |list: &[&[u8]]| list.iter().any(|p| name.starts_with(p));
    name == b"__this_module"
        || name == b"_GLOBAL_OFFSET_TABLE_"
        || (machine == abi::EM_PPC && starts(PPC32))
        || (machine == abi::EM_PPC64 && (starts(PPC64) || name == b".TOC."))
}

/// The name of a symbol `KLP_RELOC_SYMBOL` gives, as the kbuild patch's
/// modpost (`is_klp_annotation` in `kbuild/*.patch`) lets it stay undefined
/// in a livepatch module: `.klp.sym.rela.`, then at least two dots before
/// the position, then the position, digits only, after the last `.` or `,`.
pub fn modpost_klp_annotation(name: &[u8]) -> bool {
    let Some(p) = name.strip_prefix(b".klp.sym.rela.") else {
        return false;
    };
    let Some(sep) = p.iter().rposition(|&b| b == b'.' || b == b',') else {
        return false;
    };
    let pos = &p[sep + 1..];
    !pos.is_empty()
        && pos.iter().all(u8::is_ascii_digit)
        && p[..sep].iter().filter(|&&b| b == b'.').count() >= 2
}

/// The undefined names of a built module that kbuild's modpost, without
/// `KBUILD_MODPOST_WARN` and with the kbuild patch, would refuse: each
/// global (not weak) undefined symbol that no export list has, that modpost
/// does not ignore, and, in a livepatch module, that is not an annotation
/// ([`modpost_klp_annotation`]). The module loader refuses the module for
/// any of them ("Unknown symbol"). In a converted livepatch module, the
/// names conversion resolved are klp symbols, no longer undefined.
pub fn refused_names<'a>(elf: &Elf<'a>, exports: &Exports) -> Vec<&'a [u8]> {
    let livepatch = elf.is_livepatch();
    elf.symbols
        .iter()
        .filter(|s| s.st_shndx == SHN_UNDEF && s.bind() == abi::STB_GLOBAL)
        .map(|s| s.name)
        .filter(|&name| {
            let passes = exports.contains(name)
                || modpost_ignores(elf.machine, name)
                || (livepatch && modpost_klp_annotation(name));
            !passes
        })
        .collect()
}

/// `/lib/modules/<release>/build`, for `release` or the running kernel.
pub fn default_kbuild(release: Option<&str>) -> Result<PathBuf, Error> {
    let release = match release {
        Some(r) => r.to_string(),
        None => std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|r| r.trim().to_string())
            .map_err(Error::Release)?,
    };
    Ok(PathBuf::from(format!("/lib/modules/{release}/build")))
}

/// A kbuild patch for kernel trees (`kbuild/linux-<series>.patch`): modpost
/// lets a livepatch module's `.klp.sym.rela.*` names through, and
/// `Makefile.modfinal` converts livepatch modules once linked.
#[derive(Debug, Clone, Copy)]
pub struct TreePatch {
    /// The series it is made for: `5.10`, `6.1`, `6.12`, `7` (7.0 to 7.2),
    /// `7.3`.
    pub series: &'static str,
    /// The patch, for `patch -p1` in the tree.
    pub text: &'static str,
}

/// Every kbuild patch, oldest series first.
pub const PATCHES: &[TreePatch] = &[
    TreePatch {
        series: "5.10",
        text: include_str!("../kbuild/linux-5.10.patch"),
    },
    TreePatch {
        series: "6.1",
        text: include_str!("../kbuild/linux-6.1.patch"),
    },
    TreePatch {
        series: "6.12",
        text: include_str!("../kbuild/linux-6.12.patch"),
    },
    TreePatch {
        series: "7",
        text: include_str!("../kbuild/linux-7.patch"),
    },
    TreePatch {
        series: "7.3",
        text: include_str!("../kbuild/linux-7.3.patch"),
    },
];

/// The patch for Linux `major.minor` by its number alone: its series
/// exactly (5.10, 6.1, 6.12), 7.0 to 7.2 the `7` patch (made on 7.2), 7.3
/// and later the 7.3 one (7.3's modpost reports with `mod_error`, which the
/// `7` patch's context does not match). [`choose_patch`] tries them on a
/// tree instead.
pub fn patch_for(major: u32, minor: u32) -> Result<&'static TreePatch, Error> {
    let series = match (major, minor) {
        (7, 0..=2) => "7".to_string(),
        (7.., _) => "7.3".to_string(),
        _ => format!("{major}.{minor}"),
    };
    PATCHES
        .iter()
        .find(|p| p.series == series)
        .ok_or(Error::NoPatch {
            release: format!("{major}.{minor}"),
        })
}

/// The kbuild patch that applies to `tree`, found by a dry run of each
/// (`patch --dry-run -p1 --fuzz=0 -d TREE`: every hunk must apply, its
/// context unchanged, at most moved), and the series tried. The patch of the
/// tree's own release (its Makefile, [`patch_for`]) is tried first, then the
/// others, newest first; the first that applies is chosen.
pub fn choose_patch(tree: &Path) -> Result<(&'static TreePatch, Vec<&'static str>), Error> {
    let version = tree_version(tree).ok();
    let mut order: Vec<&'static TreePatch> = Vec::new();
    if let Some(p) = version.and_then(|(major, minor)| patch_for(major, minor).ok()) {
        order.push(p);
    }
    for p in PATCHES.iter().rev() {
        if !order.iter().any(|q| q.series == p.series) {
            order.push(p);
        }
    }
    let mut tried = Vec::new();
    for p in order {
        tried.push(p.series);
        if dry_run(tree, p.text)? {
            return Ok((p, tried));
        }
    }
    Err(Error::NoPatchFits {
        tree: tree.to_path_buf(),
        version: version.map(|(major, minor)| format!("{major}.{minor}")),
        tried,
    })
}

/// Does `patch` apply `text` to `tree` (changing nothing)?
fn dry_run(tree: &Path, text: &str) -> Result<bool, Error> {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new("patch")
        .args(["--dry-run", "-p1", "--fuzz=0", "--force", "--silent", "-d"])
        .arg(tree)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(Error::PatchSpawn)?;
    // patch may stop reading early (a missing file): its status decides.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(text.as_bytes());
    }
    let status = child.wait().map_err(Error::PatchSpawn)?;
    Ok(status.success())
}

/// A kernel tree's `major.minor`, from the `VERSION` and `PATCHLEVEL` lines
/// of its top-level Makefile (configured or not).
pub fn tree_version(tree: &Path) -> Result<(u32, u32), Error> {
    let path = tree.join("Makefile");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let value = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().parse::<u32>().ok())?
        })
    };
    match (value("VERSION"), value("PATCHLEVEL")) {
        (Some(major), Some(minor)) => Ok((major, minor)),
        _ => Err(Error::TreeVersion(path)),
    }
}

#[cfg(test)]
mod modpost_tests {
    use super::*;

    /// `is_klp_annotation` of the kbuild patch, case by case.
    #[test]
    fn annotations_as_the_patched_modpost_reads_them() {
        for yes in [
            ".klp.sym.rela.vmlinux.vmlinux.saved_command_line,0",
            ".klp.sym.rela.vmlinux.vmlinux.saved_command_line.0",
            ".klp.sym.rela.lp.target_mod.get_name.2",
            ".klp.sym.rela.lp.target_mod.name.with.dots,12",
            ".klp.sym.rela.a.b.,3",
        ] {
            assert!(modpost_klp_annotation(yes.as_bytes()), "{yes}");
        }
        for no in [
            "printk",
            ".klp.sym.vmlinux.saved_command_line,0",
            "\".klp.sym.rela.vmlinux.vmlinux.v.0\"",
            ".klp.sym.rela.vmlinux.v,0",
            ".klp.sym.rela.vmlinux.vmlinux.v",
            ".klp.sym.rela.vmlinux.vmlinux.v,",
            ".klp.sym.rela.vmlinux.vmlinux.v,1a",
            ".klp.sym.rela.vmlinux.vmlinux.v,-1",
            ".klp.sym.rela.",
        ] {
            assert!(!modpost_klp_annotation(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn names_modpost_ignores() {
        for m in [abi::EM_X86_64, abi::EM_PPC64, abi::EM_S390] {
            assert!(modpost_ignores(m, b"__this_module"));
            assert!(modpost_ignores(m, b"_GLOBAL_OFFSET_TABLE_"));
            assert!(!modpost_ignores(m, b"printk"));
        }
        assert!(modpost_ignores(abi::EM_PPC64, b".TOC."));
        assert!(modpost_ignores(abi::EM_PPC64, b"_restgpr0_14"));
        assert!(!modpost_ignores(abi::EM_X86_64, b".TOC."));
        assert!(!modpost_ignores(abi::EM_PPC, b".TOC."));
        assert!(modpost_ignores(abi::EM_PPC, b"_savegpr_14"));
    }

    #[test]
    fn exports_are_the_second_column() {
        let mut e = Exports::default();
        e.add(b"0x1\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n0x2\tfoo\xe9\tdrivers/x\tEXPORT_SYMBOL_GPL\tNS\n\n");
        assert!(e.contains(b"printk") && e.contains(b"foo\xe9"));
        assert!(!e.contains(b"vmlinux") && !e.contains(b"") && !e.contains(b"foo"));
    }
}

#[cfg(test)]
mod patch_tests {
    use super::*;

    #[test]
    fn each_series_has_its_patch() {
        assert_eq!(patch_for(6, 1).unwrap().series, "6.1");
        assert_eq!(patch_for(6, 12).unwrap().series, "6.12");
        assert_eq!(patch_for(5, 10).unwrap().series, "5.10");
        assert_eq!(patch_for(7, 0).unwrap().series, "7");
        assert_eq!(patch_for(7, 2).unwrap().series, "7");
        assert_eq!(patch_for(7, 3).unwrap().series, "7.3");
        assert_eq!(patch_for(7, 5).unwrap().series, "7.3");
        let e = patch_for(6, 6).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no kbuild patch for Linux 6.6: there are patches for 5.10, 6.1, 6.12, 7, 7.3"
        );
        for p in PATCHES {
            assert!(p.text.contains("SPDX-License-Identifier: GPL-2.0"));
            assert!(p.text.contains("+++ b/scripts/mod/modpost.c"));
            assert!(p.text.contains("+++ b/scripts/Makefile.modfinal"));
        }
    }
}
