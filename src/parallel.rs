//! One worker per core over a list of files: module trees hold thousands of
//! `.ko.xz`, and decompressing them dominates `check` and `symbols`. A
//! panic while one file is handled (a bug: input never panics by design)
//! is caught and becomes that file's [`Panicked`], so the other files are
//! still handled and reported.
//!
//! It stays on `std::thread::scope` and an atomic work queue rather than
//! `rayon`: `par_iter().map(catch).collect()` was measured in its place and
//! was no faster (`check` of Debian 6.12's 467 drivers/net .ko.xz, 2 cores:
//! 0.53 s here, 0.55 s with rayon; a module tree of 4,230: 2.62 s and
//! 2.60 s), and it would bring six crates (rayon, rayon-core, either and
//! crossbeam's deque, epoch and utils) for the same 40 lines.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A file whose handling panicked: an internal error of this tool, for
/// that file alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{}: internal error: {message} (a bug in klp-convert; please report it with this file)",
    path.display()
)]
pub struct Panicked {
    /// The file being handled.
    pub path: PathBuf,
    /// The panic's message.
    pub message: String,
}

/// `f(path)`, with a panic caught as a [`Panicked`] naming `path`.
pub fn catch<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T, Panicked> {
    // Nothing `f` shares outlives a panic in a state anyone reads: the
    // result of the file that panicked is dropped.
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic".to_string()
        };
        Panicked {
            path: path.to_path_buf(),
            message,
        }
    })
}

/// `f` applied to every file, on all cores; the results in the order of
/// `files`, whatever order the workers finished in. A file whose `f`
/// panicked gets its [`Panicked`]; the others are unaffected.
pub fn map_files<T: Send>(
    files: &[PathBuf],
    f: impl Fn(&PathBuf) -> T + Sync,
) -> Vec<Result<T, Panicked>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1));
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<Result<T, Panicked>>> = Vec::new();
    slots.resize_with(files.len(), || None);
    let done = Mutex::new(slots);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                let result = catch(path, || f(path));
                // No panic happens while the lock is held, so it is never
                // poisoned; a slot left empty is reported below anyway.
                if let Ok(mut slots) = done.lock() {
                    slots[i] = Some(result);
                }
            });
        }
    });
    let slots = done.into_inner().unwrap_or_else(|e| e.into_inner());
    slots
        .into_iter()
        .zip(files)
        .map(|(slot, path)| {
            slot.unwrap_or_else(|| {
                Err(Panicked {
                    path: path.clone(),
                    message: "its worker ended without a result".to_string(),
                })
            })
        })
        .collect()
}

/// `a()` on a second thread while `b()` runs on this one, where there is
/// a second core; else one after the other. Both results, or `a`'s panic
/// carried on on this thread as if it had happened here (a
/// [`crate::mapped::catch_quietly`] around the call sees it as its own).
/// A conversion proves its output in two halves at once this way.
pub fn join<A: Send, B>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if cores < 2 {
        let a = a();
        return (a, b());
    }
    let (a, b) = std::thread::scope(|s| {
        let helper = s.spawn(|| crate::mapped::catch_quietly(a));
        let b = crate::mapped::catch_quietly(b);
        // The helper catches its own panic: joining it never fails.
        let a = helper
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (a, b)
    });
    match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        // This thread's own panic first, as a sequential run would have
        // met it had it come first.
        (_, Err(caught)) | (Err(caught), _) => caught.rethrow(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both results, in order; a panic on either side goes on on the
    /// caller's thread, where `catch_unwind` catches it with its payload.
    #[test]
    fn join_gives_both_results_and_carries_a_panic() {
        assert_eq!(join(|| 1 + 1, || "b"), (2, "b"));
        for side in ["a", "b"] {
            let caught = std::panic::catch_unwind(|| {
                join(
                    || assert_ne!(side, "a", "panic in a"),
                    || assert_ne!(side, "b", "panic in b"),
                )
            });
            let payload = caught.expect_err("the panic is carried");
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default();
            assert!(message.contains(&format!("panic in {side}")), "{message}");
        }
    }

    #[test]
    fn a_panic_is_one_file_s_error() {
        let files: Vec<PathBuf> = ["a", "bad", "c", "bad2", "e"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let out = map_files(&files, |p| {
            let name = p.to_str().unwrap();
            if name == "bad" {
                panic!("boom in {name}");
            }
            if name == "bad2" {
                let v: Vec<u8> = Vec::new();
                let i = name.len();
                return v[i] as usize; // an index out of bounds
            }
            name.len()
        });
        assert_eq!(out.len(), 5);
        assert_eq!(out[0], Ok(1));
        assert_eq!(
            out[1],
            Err(Panicked {
                path: "bad".into(),
                message: "boom in bad".into()
            })
        );
        assert_eq!(out[2], Ok(1));
        let e = out[3].as_ref().unwrap_err();
        assert!(e.message.contains("index out of bounds"), "{e}");
        assert!(
            e.to_string()
                .starts_with("bad2: internal error: index out of bounds"),
            "{e}"
        );
        assert_eq!(out[4], Ok(1));
    }
}
