//! One worker per core over a list of files: module trees hold thousands of
//! `.ko.xz`, and decompressing them dominates `check` and `symbols`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// `f` applied to every file, on all cores; the results in the order of
/// `files`, whatever order the workers finished in.
pub fn map_files<T: Send>(files: &[PathBuf], f: impl Fn(&PathBuf) -> T + Sync) -> Vec<T> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1));
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<T>> = Vec::new();
    slots.resize_with(files.len(), || None);
    let done = Mutex::new(slots);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                let result = f(path);
                if let Ok(mut slots) = done.lock() {
                    slots[i] = Some(result);
                }
            });
        }
    });
    // A worker can only fail to fill its slot by panicking, which the scope
    // has already propagated; flatten keeps this total anyway.
    done.into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}
