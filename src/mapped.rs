//! Files mapped into memory, read-only, and the one `SIGBUS` handler that
//! turns a file truncated under its mapping into a torn read instead of the
//! end of the process; glibc's allocator tuned for a conversion
//! ([`tune_allocator_for_conversion`]); and the binary's global allocator,
//! which maps the largest blocks in huge pages ([`HugeBlocks`]). The crate's only
//! unsafe code is here.
//!
//! Why map: a conversion of a 21 MB module read into a vector paid for the
//! vector's pages twice (the kernel's copy, then page faults of fresh heap
//! memory); a mapping shares the page cache's pages. Why the handler: a
//! page of a mapping that lies past the end of a file truncated meanwhile
//! raises `SIGBUS` when touched, and "no input ends the program abnormally"
//! must hold for such a file too.
//!
//! The handler is installed once per process ([`Mapping::new`]). Every live
//! mapping holds one of [`SLOTS`] registration slots, atomic words the
//! handler reads without locks or allocation. A `SIGBUS` the kernel raises
//! for an address inside a registered mapping has a private page of zeros
//! mapped over the faulting page (`MAP_FIXED`), marks the mapping torn and
//! returns: the access is retried and reads zeros, and the caller, which
//! asks [`Mapping::torn`] before it trusts what it read, refuses the file as
//! changed. Any other `SIGBUS` goes to the handler installed before (Rust's
//! own, which reports a stack overflow, then falls back to the default), or
//! restores the default action and returns, so the fault recurs and ends
//! the process as it would have without this module.
//!
//! What a mapping cannot promise, and its callers therefore check: the
//! bytes may change under a reader while another process writes the file.
//! [`crate::module_file`] digests them before it parses and compares a
//! second digest after, as it compared two reads before.

use std::fs::File;
use std::os::fd::AsRawFd as _;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Once;

/// How many mappings may be live at once: one per worker of
/// [`crate::parallel`] and a few more; past that, callers read instead.
pub const SLOTS: usize = 64;

/// One registration: a mapping's address range and its torn flag.
struct Slot {
    /// Held by a live [`Mapping`] (claimed by compare-and-swap).
    busy: AtomicBool,
    /// The mapping's first byte; 0 when the slot is free (the handler
    /// skips it).
    start: AtomicUsize,
    /// The mapping's length in bytes.
    len: AtomicUsize,
    /// Set by the handler: a page was past the file's end.
    torn: AtomicBool,
}

static SLOT: [Slot; SLOTS] = [const {
    Slot {
        busy: AtomicBool::new(false),
        start: AtomicUsize::new(0),
        len: AtomicUsize::new(0),
        torn: AtomicBool::new(false),
    }
}; SLOTS];

/// The page size, read once before the handler is installed
/// (`sysconf` is not async-signal-safe).
static PAGE: AtomicUsize = AtomicUsize::new(0);
/// The `SIGBUS` action before ours: its handler (`sa_sigaction`) and flags.
static PREVIOUS: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
static PREVIOUS_FLAGS: AtomicI32 = AtomicI32::new(0);
/// Did the installation succeed? (Without the handler nothing is mapped.)
static INSTALLED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Install [`on_sigbus`] for the process, once; is it installed?
fn install() -> bool {
    INSTALL.call_once(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let Ok(page) = usize::try_from(page) else {
            return;
        };
        if !page.is_power_of_two() {
            return;
        }
        PAGE.store(page, Ordering::Relaxed);
        // SAFETY: all-zero is a valid `sigaction` (an empty mask, no
        // flags, SIG_DFL), and sigaction only reads `action` and writes
        // `old`, both valid for the call.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
                return;
            }
            PREVIOUS.store(old.sa_sigaction, Ordering::Relaxed);
            PREVIOUS_FLAGS.store(old.sa_flags, Ordering::Relaxed);
            let mut action: libc::sigaction = std::mem::zeroed();
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                on_sigbus;
            action.sa_sigaction = handler as usize;
            // SA_ONSTACK: on the alternate stack where Rust has one, as
            // Rust's own handler runs (a stack overflow must still be
            // reported through it).
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) != 0 {
                return;
            }
        }
        INSTALLED.store(true, Ordering::Release);
    });
    INSTALLED.load(Ordering::Acquire)
}

/// The `SIGBUS` handler. Async-signal-safe: atomic loads and stores,
/// `mmap` and `sigaction` (system calls), no allocation, no lock.
extern "C" fn on_sigbus(
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t. Only a
    // fault the kernel raised (si_code BUS_ADRERR or BUS_OBJERR: a page
    // past the end of the file, or one that could not be read) carries an
    // address; a SIGBUS sent by kill(2) is never taken for ours.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    if code == libc::BUS_ADRERR || code == libc::BUS_OBJERR {
        let page = PAGE.load(Ordering::Relaxed);
        for slot in &SLOT {
            let start = slot.start.load(Ordering::Acquire);
            if start == 0 || addr < start || addr - start >= slot.len.load(Ordering::Acquire) {
                continue;
            }
            let at = addr & !(page - 1);
            // SAFETY: `at..at + page` lies inside a live mapping of this
            // module (registered, not yet unregistered: a Mapping
            // unregisters before it unmaps, and nothing reads it after),
            // which is read-only and owned by that Mapping alone; no Rust
            // reference promises its bytes stay as they were (module_file
            // checks them again after). Replacing the page with zeros
            // changes no other memory.
            let p = unsafe {
                libc::mmap(
                    at as *mut libc::c_void,
                    page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                slot.torn.store(true, Ordering::Release);
                return;
            }
            break;
        }
    }
    let previous = PREVIOUS.load(Ordering::Relaxed);
    if previous == libc::SIG_DFL || previous == libc::SIG_IGN {
        // SAFETY: an all-zero sigaction is SIG_DFL with an empty mask.
        // Returning retries the access, which faults again and now takes
        // the default action (the kernel does not let a fault's SIGBUS be
        // ignored either).
        unsafe {
            let dfl: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
        }
        return;
    }
    // SAFETY: `previous` is the handler that was installed for SIGBUS
    // before ours, called as its flags say it expects to be.
    unsafe {
        if PREVIOUS_FLAGS.load(Ordering::Relaxed) & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(previous);
            f(signum, info, context);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(previous);
            f(signum);
        }
    }
}

/// A file mapped read-only, whole, registered with the `SIGBUS` handler.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    slot: usize,
}

// SAFETY: the mapping is read-only memory owned by this value; sharing or
// sending it shares nothing mutable (the slot is atomics).
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Map the first `len` bytes of `file` (its size), read-only, with its
    /// pages populated up front (one system call, not a fault a page).
    /// `None` when it cannot be: `len` is 0, the handler could not be
    /// installed, all [`SLOTS`] are taken, or the system refuses (a file
    /// system without mappings); the caller reads the file instead.
    pub fn new(file: &File, len: usize) -> Option<Mapping> {
        if len == 0 || !install() {
            return None;
        }
        let slot = SLOT.iter().position(|s| {
            s.busy
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })?;
        // SAFETY: a new mapping at an address of the system's choosing: no
        // existing memory is touched. The file's descriptor is valid for
        // the call; the mapping outlives it as mappings do.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        let Some(ptr) = NonNull::new(p.cast::<u8>()).filter(|_| p != libc::MAP_FAILED) else {
            SLOT[slot].busy.store(false, Ordering::Release);
            return None;
        };
        let s = &SLOT[slot];
        s.torn.store(false, Ordering::Relaxed);
        s.len.store(len, Ordering::Release);
        s.start.store(ptr.as_ptr() as usize, Ordering::Release);
        Some(Mapping { ptr, len, slot })
    }

    /// The file's bytes. They are the file's as it is now: another
    /// process's write shows through, and pages past a truncation read as
    /// zeros once [`Mapping::torn`] says so.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` is a live read-only mapping owned by
        // self, unmapped only in drop, which the borrow outlives no
        // longer than self. The handler only replaces pages of it with
        // zeros; the range stays mapped and readable. (The contents may
        // change under a reader while another process writes the file:
        // the callers check them again before they trust them.)
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// Did a read fault past the file's end (the file was truncated while
    /// mapped, or a page could not be read)? What was read is then not
    /// the file's.
    pub fn torn(&self) -> bool {
        SLOT[self.slot].torn.load(Ordering::Acquire)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let s = &SLOT[self.slot];
        // Unregistered before unmapped: the handler never maps over an
        // address range that may be reused.
        s.start.store(0, Ordering::Release);
        s.len.store(0, Ordering::Release);
        // SAFETY: the mapping made in `new`, unmapped once; no borrow of
        // its bytes outlives self.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
        s.busy.store(false, Ordering::Release);
    }
}

/// A panic caught by [`catch_quietly`]: its payload, and the message the
/// panic hook would have printed.
pub struct Caught {
    payload: Box<dyn std::any::Any + Send>,
    message: String,
}

impl Caught {
    /// Print the message the hook held back, then go on unwinding: the
    /// panic was not a mapping's doing after all (a bug).
    pub fn resume(self) -> ! {
        eprintln!("{}", self.message);
        std::panic::resume_unwind(self.payload)
    }

    /// The message the panic hook held back.
    #[cfg(test)]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Go on unwinding on this thread, as if the panic had happened here: a
    /// [`catch_quietly`] around it holds the message, else it is printed
    /// (the panic of a helper thread, [`crate::parallel::join`]).
    pub fn rethrow(self) -> ! {
        if QUIET.with(std::cell::Cell::get) {
            HELD.with(|h| *h.borrow_mut() = Some(self.message));
        } else {
            eprintln!("{}", self.message);
        }
        std::panic::resume_unwind(self.payload)
    }
}

std::thread_local! {
    /// Inside [`catch_quietly`] on this thread: the hook holds its message.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static HELD: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The most heap [`tune_allocator_for_conversion`] reserves in huge pages:
/// under glibc's largest mmap threshold (32 MiB on 64-bit), so that the
/// reservation comes from the heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HEAP_RESERVE_MAX: usize = 24 << 20;

/// The smallest input whose conversion is given a heap in huge pages: a
/// module of a few functions allocates less than one huge page.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HEAP_RESERVE_FROM: u64 = 4 << 20;

/// Has [`tune_allocator_for_conversion`] run? [`release_free_memory`] trims
/// only a heap that was tuned, which never shrinks on its own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
static TUNED: AtomicBool = AtomicBool::new(false);

/// The heap's range asked for huge pages (start, end; empty if none), which
/// [`release_free_memory`] returns to ordinary pages.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
static HUGE_HEAP: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// Tune glibc's allocator for the conversion of one module of `input_len`
/// bytes, for the rest of the process (the binary calls it before it
/// converts, once its maps are read; glibc only, else nothing):
///
/// * every block under [`HUGE_BLOCK`] (the larger ones are [`HugeBlocks`]')
///   comes from the heap, not a mapping of its own that is unmapped when
///   freed and faulted in again by the next vector (on 64-bit glibc: a
///   32-bit one refuses thresholds over 512 KiB);
/// * threads started from now on share the main heap, not an arena of
///   their own whose pages the main thread could not reuse (those of
///   threads that read the maps before, which glibc keeps for reuse,
///   excepted);
/// * for a large module, the heap grows once by up to the input's size,
///   and that range is asked for transparent huge pages: one fault and one
///   clear for 512 pages. Its pages are not touched here (no memory is
///   used until a vector is). Should the block come from a mapping of its
///   own all the same (a threshold refused, a heap that cannot grow), no
///   range is advised;
/// * the heap never shrinks on its own: [`release_free_memory`] gives its
///   free pages back before the output is proven, where the peak RSS is,
///   and the range back to ordinary pages.
///
/// Measured on a 50,000-function module (21 MB; medians of 20 runs, the
/// two builds interleaved, one machine): 9,200 page faults and 128 ms
/// with glibc's mmap threshold at 128 KiB as before; 3,500 to 4,000 faults
/// and 111 ms so. Peak RSS the same, the proof's with the output mapped
/// (82.2 to 82.8 MB under GNU time, with the trim and the range returned
/// to ordinary pages: [`release_free_memory`]).
pub fn tune_allocator_for_conversion(input_len: u64) {
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = input_len;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets a parameter of the allocator under its own lock
    // (and may consolidate free blocks; its result, 0 when refused,
    // changes nothing but memory use); the block malloc returns is freed
    // once, untouched; sbrk(0) only reads the program break; madvise only
    // advises, on whole pages inside that block (the advice stays on the
    // heap's range once it is freed, as meant).
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        // Trimmed once, by `release_free_memory`.
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        let reserve = usize::try_from(input_len)
            .unwrap_or(usize::MAX)
            .min(HEAP_RESERVE_MAX);
        // Served by the heap, under the threshold: the heap grows by it;
        // freed, it stays the heap's (no trim above). A threshold refused
        // (32-bit glibc), or a block mapped on its own all the same (a heap
        // that cannot grow, below the program break): no range is advised
        // or kept, which `release_free_memory` would advise again later,
        // over whatever is mapped there by then.
        if input_len >= HEAP_RESERVE_FROM
            && libc::mallopt(libc::M_MMAP_THRESHOLD, (reserve + (1 << 20)) as i32) == 1
        {
            let p = libc::malloc(reserve);
            if !p.is_null() {
                let start = (p as usize).next_multiple_of(huge::HUGE_PAGE);
                let end = (p as usize + reserve) & !(huge::HUGE_PAGE - 1);
                let in_heap = (p as usize) < libc::sbrk(0) as usize;
                if in_heap && end > start {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
                    HUGE_HEAP[0].store(start, Ordering::Relaxed);
                    HUGE_HEAP[1].store(end, Ordering::Relaxed);
                }
                libc::free(p);
            }
        }
        libc::mallopt(libc::M_MMAP_THRESHOLD, HUGE_BLOCK as i32);
        TUNED.store(true, Ordering::Relaxed);
    }
}

/// Give the heap's free pages back to the system, if
/// [`tune_allocator_for_conversion`] ran (glibc only): between a
/// conversion's output, written and dropped, and its proof, which then
/// reuses them as fresh pages rather than adding its own to theirs. The
/// range asked for huge pages is asked for ordinary ones again first: the
/// proof's blocks, at the peak RSS, then hold what they use, not whole huge
/// pages (peak RSS under GNU time 82.2 to 82.8 MB in ten runs, against 82.2
/// to 84.7; medians of 20 interleaved runs the same time).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if TUNED.load(Ordering::Relaxed) {
        // SAFETY: madvise only advises, on the range the tuning advised;
        // malloc_trim only gives back memory no block holds.
        unsafe {
            let (start, end) = (
                HUGE_HEAP[0].load(Ordering::Relaxed),
                HUGE_HEAP[1].load(Ordering::Relaxed),
            );
            if end > start {
                libc::madvise(
                    start as *mut libc::c_void,
                    end - start,
                    libc::MADV_NOHUGEPAGE,
                );
            }
            libc::malloc_trim(0);
        }
    }
}

/// Is this thread inside [`catch_quietly`]?
pub fn is_quiet() -> bool {
    QUIET.with(std::cell::Cell::get)
}

/// Run `f`, catching a panic without printing it yet. A parse of a mapping
/// validates the file's headers once and decodes them again where they are
/// used; should another process rewrite the file in between, a decoded
/// index may lie past what was validated, and the parse panics. Whether
/// that was the change's doing only the caller can tell (the file's stamp
/// and digest, afterwards): if so, the panic is dropped and the file
/// refused as changed; if not, [`Caught::resume`] reports it as any panic.
pub fn catch_quietly<T>(f: impl FnOnce() -> T) -> Result<T, Caught> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(std::cell::Cell::get) {
                let thread = std::thread::current();
                let name = thread.name().unwrap_or("<unnamed>");
                HELD.with(|h| *h.borrow_mut() = Some(format!("thread '{name}' {info}")));
            } else {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|payload| Caught {
        payload,
        message: HELD.with(|h| h.borrow_mut().take()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// A block's bytes survive every resize [`HugeBlocks`] makes: grown
    /// and shrunk on its own side of [`HUGE_BLOCK`] and across it, both
    /// ways; a zeroed block is zeroed on either side; a large block lies on
    /// a 2 MiB boundary.
    #[test]
    fn huge_blocks_keep_their_bytes_through_every_resize() {
        use std::alloc::{GlobalAlloc as _, Layout};
        let a = HugeBlocks;
        let fill = |p: *mut u8, n: usize| {
            for i in (0..n).step_by(4093) {
                // SAFETY: within the block of `n` bytes.
                unsafe { *p.add(i) = (i % 251) as u8 };
            }
        };
        let check = |p: *const u8, n: usize| {
            for i in (0..n).step_by(4093) {
                // SAFETY: within the block, written by `fill`.
                assert_eq!(unsafe { *p.add(i) }, (i % 251) as u8, "byte {i}");
            }
        };
        let small = 64 << 10;
        let large = HUGE_BLOCK + 12345;
        // Sizes in turn: small, small larger, large, larger, large
        // smaller, small again.
        let steps = [small, small * 3, large, 3 * large, large + 1, small / 2];
        // SAFETY: each layout is valid and nonzero; each pointer is the
        // block's latest, used within its size, freed once.
        unsafe {
            let mut layout = Layout::from_size_align(steps[0], 8).unwrap();
            let mut p = a.alloc(layout);
            assert!(!p.is_null());
            fill(p, layout.size());
            for &n in &steps[1..] {
                let q = a.realloc(p, layout, n);
                assert!(!q.is_null(), "{n}");
                let kept = layout.size().min(n);
                check(q, kept);
                if n >= HUGE_BLOCK {
                    assert_eq!(q as usize % (2 << 20), 0, "{n}: a large block at 2 MiB");
                }
                layout = Layout::from_size_align(n, 8).unwrap();
                p = q;
                fill(p, n);
            }
            a.dealloc(p, layout);
            for n in [small, large] {
                let layout = Layout::from_size_align(n, 16).unwrap();
                let z = a.alloc_zeroed(layout);
                assert!(!z.is_null());
                assert!(std::slice::from_raw_parts(z, n).iter().all(|&b| b == 0));
                a.dealloc(z, layout);
            }
            // Alignments up to a huge page's are a large block's; a larger
            // one is the system's. Either way the block is so aligned, and
            // keeps its bytes grown across the threshold and back.
            for align in [4096, 1 << 20, 2 << 20, 4 << 20] {
                let mut layout = Layout::from_size_align(small, align).unwrap();
                let mut p = a.alloc(layout);
                for n in [large, 2 * large, small] {
                    assert!(!p.is_null() && p as usize % align == 0, "{align} {n}");
                    fill(p, layout.size());
                    let q = a.realloc(p, layout, n);
                    assert!(!q.is_null() && q as usize % align == 0, "{align} {n}");
                    check(q, layout.size().min(n));
                    layout = Layout::from_size_align(n, align).unwrap();
                    p = q;
                }
                a.dealloc(p, layout);
            }
        }
    }

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        (dir, path)
    }

    /// A file truncated under its mapping: the pages past the new end
    /// raise SIGBUS for real, read as zeros, and the mapping says torn.
    #[test]
    fn a_truncated_file_reads_zeros_and_is_torn() {
        let page = 4096;
        let data: Vec<u8> = (0..4 * page).map(|i| (i % 251) as u8 + 1).collect();
        let (_dir, path) = file_with(&data);
        let f = File::open(&path).unwrap();
        let m = Mapping::new(&f, data.len()).expect("mapped");
        assert_eq!(m.bytes(), &data[..]);
        assert!(!m.torn());
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(page as u64)
            .unwrap();
        // The last page is past the end now: touching it faults.
        let last = std::hint::black_box(m.bytes()[4 * page - 1]);
        assert_eq!(last, 0);
        assert!(m.torn());
        assert_eq!(&m.bytes()[..page], &data[..page]);
        drop(m);
        // The slot is free again, and a new mapping is not torn.
        let m = Mapping::new(&f, page).expect("mapped");
        assert!(!m.torn());
    }

    /// A panic inside `catch_quietly` is caught, with its message held.
    #[test]
    fn a_panic_is_caught_with_its_message() {
        let caught = catch_quietly(|| -> u32 { panic!("torn at {}", 7) });
        let Err(caught) = caught else {
            panic!("not caught")
        };
        assert!(caught.message.contains("torn at 7"), "{}", caught.message);
        assert_eq!(catch_quietly(|| 5).ok(), Some(5));
    }

    #[test]
    fn nothing_to_map() {
        let (_dir, path) = file_with(b"");
        let f = File::open(&path).unwrap();
        assert!(Mapping::new(&f, 0).is_none());
    }
}

/// The binary's global allocator: the system's, but for blocks of
/// [`HUGE_BLOCK`] or more, which are mapped on their own at a huge page's
/// (2 MiB) boundary and the kernel asked to back with transparent huge pages
/// (`MADV_HUGEPAGE`).
///
/// Why: a conversion's large vectors (the symbols, the new section header
/// table, the output's sections) are fresh memory, and each 4 KiB page of
/// it costs a fault. A huge page costs one fault and one clear for 512
/// pages (measured here: 64 MiB touched in 24 ms a page at a time, 5.5 ms
/// in huge pages). Where the kernel has no huge page to give, or transparent
/// huge pages are off, the block is an ordinary mapping, as glibc makes
/// one for a large block. Only whole huge pages inside a block become huge
/// pages, so a block's tail costs no more memory than before; a vector's
/// unused capacity within a touched huge page does.
///
/// A block keeps its size's side of [`HUGE_BLOCK`]: it is freed the way
/// it was allocated because Rust hands `dealloc` and `realloc` the layout
/// it was allocated with. A large block grows by `mremap` (its pages move,
/// nothing is copied), into a new place at a huge page's boundary.
#[derive(Debug, Clone, Copy, Default)]
pub struct HugeBlocks;

/// The smallest block [`HugeBlocks`] maps on its own: one huge page.
/// Measured on a 50,000-function module (medians of 25 runs, one machine):
/// no block in huge pages, 21,900 page faults and 133 ms; from 4 MiB,
/// 14,900 and 114 ms; from 2 MiB, 11,600 faults, no faster, and a wider
/// spread of times. Peak RSS was the same for all three. Measured again
/// once the plan had become a few large vectors instead of 100,000 small
/// ones (medians of 30 runs, twice): from 4 MiB, 12,900 faults and 132–142
/// ms; from 2 MiB, 9,200 faults and 124–129 ms, peak RSS the same (82
/// MB). From 1 MiB: 11,500 faults (a block under 2 MiB holds no whole
/// huge page, and is no longer glibc's to reuse). Other commands pay a
/// little: `symbols` of Debian 6.12's 4,230 modules, 38,000–40,000
/// faults instead of 28,000, in the same 3.5 s, 105 MB of peak RSS
/// against 110.
pub const HUGE_BLOCK: usize = 2 << 20;

#[cfg(target_os = "linux")]
mod huge {
    use super::HUGE_BLOCK;
    use std::ptr::null_mut;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A huge page of x86_64 (and of 4 KiB-page arm64 and ppc64le's radix
    /// MMU): a block starts at a multiple of it, so that its first whole
    /// huge pages begin where it does.
    pub(super) const HUGE_PAGE: usize = 2 << 20;

    /// Is a block of `size` bytes aligned to `align` one of ours? (Any
    /// alignment up to a huge page's is a block's.)
    pub fn ours(size: usize, align: usize) -> bool {
        size >= HUGE_BLOCK && align <= HUGE_PAGE
    }

    /// The base page size, read once (`sysconf` does not allocate); 64 KiB,
    /// the largest of the architectures Linux livepatches, should it fail.
    /// The same for the whole process: a block's length is found again
    /// from its size when freed.
    fn page() -> usize {
        static PAGE: AtomicUsize = AtomicUsize::new(0);
        match PAGE.load(Ordering::Relaxed) {
            0 => {
                // SAFETY: sysconf has no preconditions.
                let read = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
                let page = usize::try_from(read)
                    .ok()
                    .filter(|p| p.is_power_of_two() && *p <= HUGE_PAGE)
                    .unwrap_or(64 << 10);
                PAGE.store(page, Ordering::Relaxed);
                page
            }
            page => page,
        }
    }

    /// The mapping's length for a block of `size` bytes: whole pages.
    pub fn length(size: usize) -> usize {
        size.next_multiple_of(page())
    }

    /// A fresh mapping of `len` bytes (a multiple of the page) at a huge
    /// page's boundary, zeroed, asked for huge pages; null when there is no
    /// memory for it.
    pub fn map(len: usize) -> *mut u8 {
        let Some(reserve) = len.checked_add(HUGE_PAGE) else {
            return null_mut();
        };
        // SAFETY: a new private anonymous mapping; nothing else refers to
        // its range, so unmapping its unaligned ends (whole pages: the
        // mapping starts at a page, `aligned` is a multiple of one, and so
        // is `len`) touches no one's memory. madvise only advises (its
        // failure changes nothing).
        unsafe {
            let raw = libc::mmap(
                null_mut(),
                reserve,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if raw == libc::MAP_FAILED {
                return null_mut();
            }
            let start = raw as usize;
            let aligned = start.next_multiple_of(HUGE_PAGE);
            let head = aligned - start;
            if head > 0 {
                libc::munmap(raw, head);
            }
            let tail = reserve - head - len;
            if tail > 0 {
                libc::munmap((aligned + len) as *mut libc::c_void, tail);
            }
            libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
            aligned as *mut u8
        }
    }

    /// Give back the mapping of `len` bytes at `ptr`.
    ///
    /// # Safety
    /// `ptr` and `len` are a mapping [`map`] or [`remap`] returned, not
    /// used afterwards.
    pub unsafe fn unmap(ptr: *mut u8, len: usize) {
        // SAFETY: by the caller's promise, the range is ours alone.
        unsafe {
            libc::munmap(ptr.cast(), len);
        }
    }

    /// The mapping of `old` bytes at `ptr`, grown or shrunk to `new` bytes
    /// (both multiples of the page): shrunk in place, or moved whole into a
    /// fresh place at a huge page's boundary, its pages unchanged and
    /// uncopied; null (and the old mapping as it was) when there is no
    /// room.
    ///
    /// # Safety
    /// `ptr` and `old` are a mapping [`map`] or [`remap`] returned; when
    /// the result is not null, the old range is no longer the caller's.
    pub unsafe fn remap(ptr: *mut u8, old: usize, new: usize) -> *mut u8 {
        if new <= old {
            if new < old {
                // SAFETY: the tail, whole pages, is part of the caller's
                // mapping.
                unsafe { libc::munmap(ptr.add(new).cast(), old - new) };
            }
            return ptr;
        }
        let place = map(new);
        if place.is_null() {
            return place;
        }
        // SAFETY: `place` is a fresh mapping of `new` bytes, replaced by
        // the old pages (MREMAP_FIXED unmaps what was there); the old
        // range is the caller's, and is gone from its address on success.
        unsafe {
            let moved = libc::mremap(
                ptr.cast(),
                old,
                new,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                place.cast::<libc::c_void>(),
            );
            if moved == libc::MAP_FAILED {
                // Left mapped: the kernel may have unmapped `place` before
                // it failed, and another thread's mapping may be there now.
                return null_mut();
            }
            moved.cast()
        }
    }
}

#[cfg(target_os = "linux")]
// SAFETY: every block is either the system allocator's, or a mapping of
// its own (`huge`), chosen by the size and alignment of its layout, which
// Rust passes back unchanged to `dealloc` and (as the old layout) to
// `realloc`. Mappings are fresh, so zeroed, aligned to a huge page (at
// least the alignment `huge::ours` accepts), and never shared.
unsafe impl std::alloc::GlobalAlloc for HugeBlocks {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if huge::ours(layout.size(), layout.align()) {
            huge::map(huge::length(layout.size()))
        } else {
            // SAFETY: the caller's promises are the system allocator's.
            unsafe { std::alloc::System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        if huge::ours(layout.size(), layout.align()) {
            huge::map(huge::length(layout.size()))
        } else {
            // SAFETY: as for `alloc`.
            unsafe { std::alloc::System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        if huge::ours(layout.size(), layout.align()) {
            // SAFETY: allocated by `huge::map` for this layout.
            unsafe { huge::unmap(ptr, huge::length(layout.size())) }
        } else {
            // SAFETY: allocated by the system allocator for this layout.
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        let align = layout.align();
        match (huge::ours(layout.size(), align), huge::ours(new, align)) {
            // SAFETY: the caller's promises are the system allocator's.
            (false, false) => unsafe { std::alloc::System.realloc(ptr, layout, new) },
            // SAFETY: a mapping of ours, for this layout.
            (true, true) => unsafe {
                huge::remap(ptr, huge::length(layout.size()), huge::length(new))
            },
            _ => {
                // Across the threshold: a new block, the bytes copied.
                // SAFETY: `new` is nonzero and, with `align`, a valid
                // layout (the caller's promise); the blocks are distinct.
                unsafe {
                    let to = std::alloc::Layout::from_size_align_unchecked(new, align);
                    let fresh = self.alloc(to);
                    if !fresh.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new));
                        self.dealloc(ptr, layout);
                    }
                    fresh
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
// SAFETY: the system allocator's, unchanged.
unsafe impl std::alloc::GlobalAlloc for HugeBlocks {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}
