//! What every target shares: an allocator that counts, so a target can
//! assert that no input makes the tool allocate more than a bound linear in
//! the input (a 100-byte file claiming a billion symbols must be refused,
//! not believed).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The system allocator, counting live bytes and their peak.
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                grew(new - l.size());
            } else {
                LIVE.fetch_sub(l.size() - new, Relaxed);
            }
        }
        q
    }
}

/// Bytes a run may hold beyond what was live before it, for an input of
/// `len` bytes: a constant for the fixed map and small tables, plus a
/// multiple of the input (its copy, the output, the parsed tables, and the
/// padding of moved sections: at most a page each, one per 64-byte header).
pub fn bound(len: usize) -> usize {
    (1 << 20) + 64 * len
}

/// Run `f` and assert that its peak allocation stayed within [`bound`].
pub fn bounded<T>(len: usize, f: impl FnOnce() -> T) -> T {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let out = f();
    let used = PEAK.load(Relaxed) - base;
    assert!(
        used <= bound(len),
        "{used} bytes allocated for a {len}-byte input (bound {})",
        bound(len)
    );
    out
}
