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

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// Why a kbuild step failed.
#[derive(Debug)]
pub enum Error {
    /// The directory given as the kernel's build directory has no Makefile.
    NotKbuild(PathBuf),
    /// A file or directory could not be read.
    Io {
        /// The path.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The running kernel's release could not be read (`/proc`).
    Release(io::Error),
    /// `make` could not be started.
    Spawn(io::Error),
    /// `make ... modules` failed.
    Make {
        /// The kernel's build directory.
        kbuild: PathBuf,
        /// The module directory.
        dir: PathBuf,
        /// How make ended.
        status: ExitStatus,
    },
    /// No kbuild patch fits this release.
    NoPatch {
        /// The release or tree asked about.
        release: String,
    },
    /// A kernel tree's Makefile gives no VERSION and PATCHLEVEL.
    TreeVersion(PathBuf),
    /// `modules.order` names a module that is not there.
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
                | Error::TreeVersion(_)
        ) || matches!(self, Error::Io { path, .. } if !path.ends_with("modules.order"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotKbuild(dir) => write!(
                f,
                "{}: not a kernel build directory (no Makefile); install the kernel's \
                 headers package or give -C",
                dir.display()
            ),
            Error::Io { path, source } if path.ends_with("modules.order") => write!(
                f,
                "{}: {source} (did the build make any module?)",
                path.display()
            ),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Release(e) => {
                write!(f, "cannot read the running kernel's release: {e}; give -C")
            }
            Error::Spawn(e) => write!(f, "cannot run make: {e}"),
            Error::NoPatch { release } => write!(
                f,
                "no kbuild patch for Linux {release}: there are patches for {}",
                PATCHES
                    .iter()
                    .map(|p| p.series)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Error::TreeVersion(path) => write!(
                f,
                "{}: no VERSION and PATCHLEVEL: not a kernel tree's Makefile",
                path.display()
            ),
            Error::Make {
                kbuild,
                dir,
                status,
            } => write!(
                f,
                "make -C {} M={} modules failed ({status})",
                kbuild.display(),
                dir.display()
            ),
            Error::MissingModule {
                order,
                line,
                module,
            } => write!(
                f,
                "{}: lists {line}, but {} does not exist",
                order.display(),
                module.display()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Release(e) | Error::Spawn(e) => Some(e),
            _ => None,
        }
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
    /// directory's `Module.symvers`, and `KBUILD_EXTRA_SYMBOLS` among the
    /// make arguments. Only those that exist.
    pub fn export_maps(&self) -> Vec<PathBuf> {
        let mut out = vec![
            self.kbuild.join("Module.symvers"),
            self.dir.join("Module.symvers"),
        ];
        for a in &self.make_args {
            if let Some(list) = a.strip_prefix("KBUILD_EXTRA_SYMBOLS=") {
                out.extend(list.split_whitespace().map(PathBuf::from));
            }
        }
        out.retain(|p| p.is_file());
        out
    }
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
    /// The series it is made for: `6.1`, `6.12`, `7` (7.x).
    pub series: &'static str,
    /// The patch, for `patch -p1` in the tree.
    pub text: &'static str,
}

/// Every kbuild patch, oldest series first.
pub const PATCHES: &[TreePatch] = &[
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
];

/// The patch for Linux `major.minor`: its series exactly (6.1, 6.12), or
/// any 7.x.
pub fn patch_for(major: u32, minor: u32) -> Result<&'static TreePatch, Error> {
    let series = if major >= 7 {
        major.to_string()
    } else {
        format!("{major}.{minor}")
    };
    PATCHES
        .iter()
        .find(|p| p.series == series)
        .ok_or(Error::NoPatch {
            release: format!("{major}.{minor}"),
        })
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
mod patch_tests {
    use super::*;

    #[test]
    fn each_series_has_its_patch() {
        assert_eq!(patch_for(6, 1).unwrap().series, "6.1");
        assert_eq!(patch_for(6, 12).unwrap().series, "6.12");
        assert_eq!(patch_for(7, 2).unwrap().series, "7");
        let e = patch_for(6, 6).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no kbuild patch for Linux 6.6: there are patches for 6.1, 6.12, 7"
        );
        for p in PATCHES {
            assert!(p.text.contains("SPDX-License-Identifier: GPL-2.0"));
            assert!(p.text.contains("+++ b/scripts/mod/modpost.c"));
            assert!(p.text.contains("+++ b/scripts/Makefile.modfinal"));
        }
    }
}
