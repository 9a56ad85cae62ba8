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

use std::path::{Path, PathBuf};
use std::process::Command;

/// One out-of-tree (`M=`) build.
#[derive(Debug, Clone)]
pub struct Build {
    /// The kernel's build directory (`make -C`), e.g. `/lib/modules/<release>/build`.
    pub kbuild: PathBuf,
    /// The module sources (`M=`), absolute.
    pub dir: PathBuf,
    /// Extra `make` arguments (`KCFLAGS=...`, `V=1`, `-j8`, ...).
    pub make_args: Vec<String>,
}

impl Build {
    /// Check the directories and make `dir` absolute (kbuild needs it so).
    pub fn new(kbuild: PathBuf, dir: &Path, make_args: Vec<String>) -> Result<Build, String> {
        if !kbuild.join("Makefile").is_file() {
            return Err(format!(
                "{}: not a kernel build directory (no Makefile); install the kernel's \
                 headers package or give -C",
                kbuild.display()
            ));
        }
        let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Build {
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
    pub fn make_modules(&self) -> Result<(), String> {
        let mut cmd = self.make_command("modules");
        let status = cmd.status().map_err(|e| format!("cannot run make: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "make -C {} M={} modules failed ({status})",
                self.kbuild.display(),
                self.dir.display()
            ))
        }
    }

    /// The modules the build made, from its `modules.order` (6.1 lists the
    /// `.ko`, later kernels the `.o`; paths absolute or relative to `M=`).
    pub fn modules(&self) -> Result<Vec<PathBuf>, String> {
        let order = self.dir.join("modules.order");
        let text = std::fs::read_to_string(&order)
            .map_err(|e| format!("{}: {e} (did the build make any module?)", order.display()))?;
        let mut out = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let ko = match line.strip_suffix(".o") {
                Some(stem) => self.dir.join(format!("{stem}.ko")),
                None => self.dir.join(line),
            };
            if !ko.is_file() {
                return Err(format!(
                    "{}: lists {line}, but {} does not exist",
                    order.display(),
                    ko.display()
                ));
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
pub fn default_kbuild(release: Option<&str>) -> Result<PathBuf, String> {
    let release = match release {
        Some(r) => r.to_string(),
        None => std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|r| r.trim().to_string())
            .map_err(|e| format!("cannot read the running kernel's release: {e}; give -C"))?,
    };
    Ok(PathBuf::from(format!("/lib/modules/{release}/build")))
}
