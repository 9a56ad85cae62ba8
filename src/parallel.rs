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
//!
//! And two halves of one job at once ([`join`]): a large module's parse
//! (its symbols beside its section headers), a large conversion's steps
//! (the input's contract beside the selection, the plan's relocation
//! sections in two runs, the proof: the output's contract or the maps'
//! resolution beside its comparison with the input), the two halves of a
//! large symbols.klp.

use std::panic::{self, AssertUnwindSafe};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// From how many items (symbols, sections, relocations: a few hundred
/// instructions each) one job's two halves are worth a second thread
/// (`join`'s `worth`): below that, the thread costs about what it saves,
/// and a kbuild run converts its modules on every core already. Measured
/// (benches/RESULTS.md, 2026-12-07) on x86_64 modules of one function and
/// two annotated references per section, every join on two cores against
/// every join on one: up to 11% slower at 10,000 symbols and relocations,
/// even at 15,000, up to 10% faster from 25,000 on. Each join counts its
/// own items (the parse: sections and the symbol table's size ÷ 16).
pub const WORTH_TWO_CORES: usize = 20_000;

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

/// `a()` on a second thread while `b()` runs on this one, when `worth` it
/// (a large module: two thread switches cost more than the halves of a
/// small one save) and there is a second core and a thread to be had;
/// else one after the other. Both results, or a panic carried on on this
/// thread as a sequential run would have met it: `a`'s first. Inside a
/// [`crate::mapped::catch_quietly`] the helper holds its message too, and
/// the caller's catch sees the panic as its own; outside one, the helper's
/// panic is reported where it happened, as any panic is. A conversion
/// proves its output in two halves at once this way.
pub fn join<A: Send, B>(
    worth: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B,
) -> (A, B) {
    let helper = std::thread::Builder::new().name("klp-convert-helper".to_string());
    join_on(helper, worth, a, b)
}

/// [`join`], its helper thread made by `builder` (a test's may fail).
fn join_on<A: Send, B>(
    builder: std::thread::Builder,
    worth: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B,
) -> (A, B) {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if !worth || cores < 2 {
        let a = a();
        return (a, b());
    }
    let quiet = crate::mapped::is_quiet();
    // `a` stays here until the helper takes it: should no thread be had,
    // it runs here after all.
    let task = Mutex::new(Some(a));
    let take = || task.lock().ok().and_then(|mut t| t.take());
    let (a, b) = std::thread::scope(|s| {
        let helper = builder.spawn_scoped(s, || {
            let a = take()?;
            Some(if quiet {
                crate::mapped::catch_quietly(a).map_err(Thrown::Held)
            } else {
                panic::catch_unwind(AssertUnwindSafe(a)).map_err(Thrown::Reported)
            })
        });
        let b = if quiet {
            crate::mapped::catch_quietly(b).map_err(Thrown::Held)
        } else {
            panic::catch_unwind(AssertUnwindSafe(b)).map_err(Thrown::Reported)
        };
        // The helper catches its own panic: joining it fails only if the
        // helper could not take the task, which is then still here.
        let a = helper.ok().and_then(|h| h.join().ok().flatten());
        (a, b)
    });
    let a = match a {
        Some(a) => a,
        None => match take() {
            Some(a) => Ok(a()),
            None => unreachable!("the task runs once, here or on the helper"),
        },
    };
    match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(thrown), _) | (_, Err(thrown)) => thrown.rethrow(),
    }
}

/// A panic one side of [`join`] caught, to carry on on the caller's thread.
enum Thrown {
    /// Caught by [`crate::mapped::catch_quietly`], its message held.
    Held(crate::mapped::Caught),
    /// Reported by the panic hook where it happened.
    Reported(Box<dyn std::any::Any + Send>),
}

impl Thrown {
    fn rethrow(self) -> ! {
        match self {
            Thrown::Held(caught) => caught.rethrow(),
            Thrown::Reported(payload) => panic::resume_unwind(payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A helper thread no machine can make: a stack larger than the
    /// address space.
    fn no_thread() -> std::thread::Builder {
        std::thread::Builder::new().stack_size(usize::MAX / 2)
    }

    /// No thread to be had: `a` runs on the caller's thread after all, and
    /// both results come back in order.
    #[test]
    fn join_without_a_thread_runs_both_here() {
        let here = std::thread::current().id();
        let (a, b) = join_on(no_thread(), true, || std::thread::current().id(), || 2);
        assert_eq!((a, b), (here, 2));
        // And its panic still reaches the caller.
        let caught =
            std::panic::catch_unwind(|| join_on(no_thread(), true, || panic!("in a"), || 2));
        assert!(caught.is_err());
    }

    /// Both results, in order, on two threads or one; a panic on either
    /// side goes on on the caller's thread (`a`'s when both panic, as one
    /// after the other would), where `catch_unwind` catches it with its
    /// payload, and `catch_quietly` with the message the hook held.
    #[test]
    fn join_gives_both_results_and_carries_a_panic() {
        for worth in [true, false] {
            let helper = join(
                worth,
                || std::thread::current().name().map(String::from),
                || 2,
            );
            assert_eq!(helper.1, 2);
            if worth && std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
                assert_eq!(helper.0.as_deref(), Some("klp-convert-helper"));
            }
            for (a, b, want) in [(true, false, "a"), (false, true, "b"), (true, true, "a")] {
                let run = || {
                    join(
                        worth,
                        || assert!(!a, "panic in a"),
                        || assert!(!b, "panic in b"),
                    )
                };
                let payload = std::panic::catch_unwind(run).expect_err("the panic is carried");
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                assert!(message.contains(&format!("panic in {want}")), "{message}");
                let Err(caught) = crate::mapped::catch_quietly(run) else {
                    panic!("not caught quietly");
                };
                assert!(
                    caught.message().contains(&format!("panic in {want}")),
                    "{}",
                    caught.message()
                );
            }
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
