//! Faults during writes and reads: whatever happens to a conversion, the
//! destination is the old file or the complete new one, and nothing is lost.
//! Each test prints its counts (`faults: ...` lines on standard error, shown
//! with `--nocapture`): kills tried, faults tried, files lost (always 0).
//!
//! * tier 2: a process killed (SIGKILL) at random points of `convert -o`
//!   and `convert --in-place` on a large module: the destination is never
//!   partial; a killed run's temporary file stays, named by the run, and
//!   the next run neither removes it nor leaves one of its own;
//! * tier 2: `klp-convert build` (Debian's 6.12 kbuild) killed with its
//!   process group (make included) at random points, anywhere or aimed at
//!   the conversion and at its write, on a livepatch module of 100,000
//!   relocations: each `.ko` is always the module make made or the complete
//!   converted one, a killed run's temporary file stays (no run removes
//!   another's: its writer may live in another PID namespace), a finished
//!   run leaves none, and a last build gives the bytes of a clean one;
//! * an input that changes while it is read, made to by a preloaded
//!   `mmap(2)` once the input is mapped: 8 bytes appended, truncated to
//!   half, torn (its second half replaced by another module's of the same
//!   size), or overtaken (another module written over it by a write that
//!   began before the reader looked, so its modification time does not
//!   move): each refused, exit 2, nothing written, the input left
//!   as the change left it, with `-o` and `--in-place` (8 faults); the torn
//!   bytes would have converted into a module that is neither's. An input
//!   that is not a regular file (a FIFO, a device) is refused unopened;
//! * tier 2: an input rewritten by another thread, in place by one
//!   write(2) or by a rename, while `convert -o` runs on it 150 times: each
//!   run converts one version whole or is refused as changed, never
//!   anything in between, and the refusal happens. (What no reader can see:
//!   a write(2) stalled half-way for all of the read. The file is then torn
//!   at rest. The versions differ in a few pages only, so that this test
//!   does not stake its result on the scheduler.)
//! * outputs that would lose something: a directory, the input through a
//!   symbolic or hard link (refused, exit 2), the input through a symbolic
//!   link with `--in-place` (the file it names is converted, the link stays);
//! * another run's temporary files (any process id) and a symbolic link
//!   named like one are left alone, and what the link names is untouched;
//! * tier 2 (root: a private mount namespace): a full filesystem and a
//!   read-only one, each a clear error, exit 2, nothing left behind.

/// The benchmarks' assembler (gcc on generated GNU as source).
#[path = "../benches/common/mod.rs"]
mod bench_common;
mod common;

use std::fmt::Write as _;
use std::io::BufRead as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_klp-convert");

/// Assembly for `n` relocations against `.klp.sym.rela.vmlinux.vmlinux.<stem><i>.0`
/// (1,000 names), in 8 data sections.
fn annotated_data(n: usize, stem: &str) -> String {
    let mut s = String::new();
    for sec in 0..8 {
        let _ = writeln!(s, ".section .data.part{sec},\"aw\"");
        for i in (sec..n).step_by(8) {
            let _ = writeln!(
                s,
                ".quad .klp.sym.rela.vmlinux.vmlinux.{stem}{}.0",
                i % 1000
            );
        }
    }
    s
}

/// An annotated module `<name>.o` with `n` relocations (a few MB for n =
/// 200,000) against names that start with `stem`, assembled by gcc.
fn big_module(dir: &Path, name: &str, n: usize, stem: &str) -> PathBuf {
    let s = format!(
        ".section .modinfo,\"a\"\n.asciz \"livepatch=Y\"\n{}",
        annotated_data(n, stem)
    );
    bench_common::assemble_source(&s, name, dir);
    dir.join(format!("{name}.o"))
}

/// The temporary files klp-convert left in `dir`, sorted.
fn temps(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".klp-convert-"))
        .collect();
    v.sort();
    v
}

/// The temporary files of process `pid` for the output `file` in `dir`:
/// `.{file}.klp-convert-{pid}.XXXXXX.tmp`.
fn temps_of(dir: &Path, file: &str, pid: u32) -> Vec<String> {
    let prefix = format!(".{file}.klp-convert-{pid}.");
    temps(dir)
        .into_iter()
        .filter(|n| {
            n.strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(".tmp"))
                .is_some_and(|r| r.len() == 6 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
        })
        .collect()
}

/// A small deterministic pseudo-random sequence (no dependency needed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }

    /// A pause of up to 5/4 of `span_us` microseconds.
    fn pause(&mut self, span_us: u64) {
        std::thread::sleep(Duration::from_micros(self.below(span_us + span_us / 4)));
    }
}

extern "C" {
    /// kill(2): `Child::kill` reaches the child only, not its process group.
    fn kill(pid: i32, sig: i32) -> i32;
}

/// `cmd` started as the leader of a new process group, so that a kill
/// reaches what it runs (make, the compilers) as a timeout or ^C would.
fn spawn_group(cmd: &mut Command) -> Child {
    cmd.process_group(0).spawn().expect("run klp-convert")
}

/// Does a process of group `pgid` still run (zombies do not count)?
fn group_runs(pgid: u32) -> bool {
    let pgid = pgid.to_string();
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp ...
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        fields.len() > 2 && !matches!(fields[0], "Z" | "X") && fields[2] == pgid
    })
}

/// SIGKILL `child` with its process group unless it has ended; reap it and
/// wait until nothing of the group runs. Did the kill land?
fn kill_unless_done(child: &mut Child) -> bool {
    if child.try_wait().unwrap().is_some() {
        return false;
    }
    let pgid = child.id();
    // SAFETY: kill(2) touches no memory of ours; the group is our child's,
    // and it cannot be reused before the child (its leader) is reaped.
    unsafe { kill(-(pgid as i32), 9) };
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while group_runs(pgid) {
        assert!(Instant::now() < deadline, "group {pgid} outlived SIGKILL");
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Kill `args` at random points `rounds` times; `reset` restores the
/// destination's old bytes before each round. A killed run's temporary file
/// stays, under its own name; a finished run neither leaves one nor
/// removes another's. Returns (kills, finished, kills that left a file).
fn kill_at_random(
    args: &[&str],
    dest: &Path,
    old: &[u8],
    new: &[u8],
    rounds: u32,
    reset: &dyn Fn(),
) -> (u32, u32, u32) {
    // How long one conversion takes here, to kill within it.
    reset();
    let start = Instant::now();
    let st = Command::new(BIN)
        .args(args)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let span = start.elapsed().as_micros() as u64;
    assert_eq!(std::fs::read(dest).unwrap(), new);
    let mut rng = Lcg(0x6b6c_702d_636f_6e76);
    let (mut kills, mut finished, mut left) = (0, 0, 0);
    let dir = dest.parent().unwrap();
    let name = dest.file_name().unwrap().to_str().unwrap();
    for _ in 0..rounds {
        reset();
        let before = temps(dir);
        let mut child = spawn_group(Command::new(BIN).args(args).stderr(Stdio::null()));
        let pid = child.id();
        rng.pause(span);
        if kill_unless_done(&mut child) {
            kills += 1;
            let own = temps_of(dir, name, pid);
            assert!(own.len() <= 1, "{own:?}");
            left += own.len() as u32;
            let mut want = [before, own].concat();
            want.sort();
            assert_eq!(temps(dir), want, "a killed run removed a file");
        } else {
            finished += 1;
            assert_eq!(temps(dir), before, "a finished run left or removed a file");
        }
        let now = std::fs::read(dest).unwrap();
        assert!(
            now == old || now == new,
            "{}: neither the old nor the new file after a kill ({} bytes)",
            dest.display(),
            now.len()
        );
    }
    (kills, finished, left)
}

#[test]
#[ignore = "tier 2: kills about 80 conversions of a 200,000-relocation module (40 s); scripts/test runs it"]
fn killed_conversions_leave_the_old_file_or_the_new_one() {
    let dir = scratch("faults_kill");
    let input = big_module(&dir, "big", 200_000, "sym");
    let pristine = std::fs::read(&input).unwrap();
    // The new file, made once cleanly.
    let expected = dir.join("expected.o");
    let st = Command::new(BIN)
        .args([
            "convert",
            input.to_str().unwrap(),
            "-o",
            expected.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let new = std::fs::read(&expected).unwrap();
    assert_ne!(new, pristine);

    // -o over an existing older file.
    let out = dir.join("out.o");
    let old = b"an older output".to_vec();
    let reset_out = || std::fs::write(&out, &old).unwrap();
    let args = [
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    let (k1, f1, l1) = kill_at_random(&args, &out, &old, &new, 40, &reset_out);

    // --in-place.
    let inplace = dir.join("inplace.o");
    let reset_in = || std::fs::write(&inplace, &pristine).unwrap();
    let args = ["convert", inplace.to_str().unwrap(), "--in-place"];
    let (k2, f2, l2) = kill_at_random(&args, &inplace, &pristine, &new, 40, &reset_in);

    eprintln!(
        "faults: {} kills during convert -o ({f1} runs finished first), {} during --in-place ({f2}); {} temporary files left by kills, each named by its run and kept; 0 files lost",
        k1, k2, l1 + l2
    );
    assert!(k1 + k2 > 20, "too few kills landed: {k1} + {k2}");
    // What the kills left stays: the next run to the same files adds
    // nothing and removes nothing.
    let left = temps(&dir);
    assert_eq!(left.len(), (l1 + l2) as usize, "{left:?}");
    reset_out();
    reset_in();
    for args in [
        vec![
            "convert",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        vec!["convert", inplace.to_str().unwrap(), "--in-place"],
    ] {
        let st = Command::new(BIN).args(&args).status().unwrap();
        assert!(st.success());
    }
    assert_eq!(temps(&dir), left);
    assert_eq!(std::fs::read(&out).unwrap(), new);
    assert_eq!(std::fs::read(&inplace).unwrap(), new);
}

/// Where a kill round aims in a `build`: the delay is random from there.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// The start: make, the reading, the conversion or the write.
    Start,
    /// make's last line (`make: Leaving directory`): the conversion.
    Converting,
    /// The module's temporary file appears: the write and the rename.
    Writing,
}

/// `klp-convert build dir -C kbuild -- -w`, in its own process group,
/// make's output piped to be watched (`-w`: make's last line is `make:
/// Leaving directory`, whatever the Makefile).
fn spawn_build(kbuild: &Path, dir: &Path) -> Child {
    spawn_group(
        Command::new(BIN)
            .arg("build")
            .arg(dir)
            .arg("-C")
            .arg(kbuild)
            .args(["--", "-w"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
}

/// Wait until `child`, a build that converts `ko`, reaches `moment`;
/// false if it ended first.
fn reach(child: &mut Child, moment: Moment, ko: &Path) -> bool {
    if let Moment::Start = moment {
        return true;
    }
    let mut out = std::io::BufReader::new(child.stdout.as_mut().expect("piped"));
    let mut line = String::new();
    while !line.starts_with("make: Leaving directory") {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
    }
    if let Moment::Converting = moment {
        return true;
    }
    let name = ko.file_name().unwrap().to_str().unwrap();
    let dir = ko.parent().unwrap();
    while temps_of(dir, name, child.id()).is_empty() {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    true
}

/// The livepatch module and the plain one of [`build_sources`].
const BUILT: [&str; 2] = ["klp_fault_lp.ko", "klp_fault_helper.ko"];

/// A module directory for kbuild: `klp_fault_lp` (a livepatch whose
/// `lp_data.S` holds `n` annotated relocations) and `klp_fault_helper`
/// (not a livepatch: left as built).
fn build_sources(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (file, text) in [
        (
            "Kbuild",
            "obj-m := klp_fault_lp.o klp_fault_helper.o\nklp_fault_lp-y := lp_main.o lp_data.o\n"
                .to_string(),
        ),
        (
            "lp_main.c",
            "#include <linux/module.h>\nMODULE_LICENSE(\"GPL\");\nMODULE_INFO(livepatch, \"Y\");\n"
                .to_string(),
        ),
        (
            "klp_fault_helper.c",
            "#include <linux/module.h>\nint klp_fault_helper(void);\n\
             int klp_fault_helper(void) { return 42; }\nMODULE_LICENSE(\"GPL\");\n"
                .to_string(),
        ),
        ("lp_data.S", annotated_data(n, "sym")),
    ] {
        std::fs::write(dir.join(file), text).unwrap();
    }
}

/// What the kill rounds of a `build` saw.
#[derive(Default)]
struct BuildKills {
    kills: u32,
    finished: u32,
    /// Kills after which the livepatch was still the module make made.
    as_made: u32,
    /// Kills after which it was the converted module.
    converted: u32,
    /// Kills that left a temporary file (kept: no run removes another's).
    temps_left: u32,
}

#[test]
#[ignore = "tier 2: Debian's 6.12 kbuild (scripts/fetch-kernels); kills about 20 builds (about a minute); scripts/test runs it"]
fn killed_builds_leave_each_module_as_made_or_converted() {
    let kernel = kernel_dir("6.12");
    let kbuild = kernel.join("build");
    let work = scratch("faults_build");
    let dir = work.join("m");
    build_sources(&dir, 100_000);
    let [lp, helper] = BUILT.map(|m| dir.join(m));

    // A clean build: the converted bytes, which check accepts.
    let r = klp_convert_build(&kbuild, &dir, &[], &[]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let conv = std::fs::read(&lp).unwrap();
    let plain = std::fs::read(&helper).unwrap();
    let r = klp_convert(&["check", lp.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stdout));
    // What make made: link it again, unconverted. (Each round's timing run
    // below converts it and must give the clean build's bytes.)
    std::fs::remove_file(&lp).unwrap();
    let made = klp_convert::kbuild::Kbuild::new(kbuild.clone(), &dir, Vec::new())
        .unwrap()
        .make_command("modules")
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let raw = std::fs::read(&lp).unwrap();
    assert_ne!(raw, conv);

    // Each round starts from what make made (the module is newer than its
    // objects: make has nothing to do). Kills aimed anywhere use the real
    // kbuild, make included; those aimed at the conversion and its write
    // use a kbuild whose `make modules` does nothing, to spend the time
    // converting (make's own behaviour under SIGKILL is kbuild's business).
    let noop = work.join("noop-kbuild");
    std::fs::create_dir(&noop).unwrap();
    // (It prints a line: make -w names the directory only around output.)
    std::fs::write(
        noop.join("Makefile"),
        "modules:\n\t@echo '  nothing to make'\n",
    )
    .unwrap();
    // The kernel's exports, which build checks the modules against.
    std::fs::copy(kbuild.join("Module.symvers"), noop.join("Module.symvers")).unwrap();
    let mut rng = Lcg(0x6275_696c_6420_6b6c);
    let mut seen = BuildKills::default();
    // The temporary files that killed runs left: they stay.
    let mut left: Vec<String> = Vec::new();
    let mut by_moment = Vec::new();
    // (moment, kbuild, kills wanted, rounds at most)
    for (moment, kb, wanted, most) in [
        (Moment::Start, &kbuild, 3, 6),
        (Moment::Converting, &noop, 8, 16),
        (Moment::Writing, &noop, 10, 20),
    ] {
        // How long a build runs from `moment` on, here and now; shortened
        // whenever a run finishes before its kill (the machine is shared).
        std::fs::write(&lp, &raw).unwrap();
        let mut child = spawn_build(kb, &dir);
        assert!(reach(&mut child, moment, &lp), "{moment:?} not reached");
        let start = Instant::now();
        if let Moment::Writing = moment {
            // The write: until its temporary file is renamed. What the
            // build does after it (checking every module's names) would
            // make most kills land past the write.
            let name = lp.file_name().unwrap().to_str().unwrap();
            while !temps_of(&dir, name, child.id()).is_empty()
                && child.try_wait().unwrap().is_none()
            {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        let mut span = start.elapsed().as_micros() as u64;
        assert!(child.wait().unwrap().success());
        assert_eq!(
            std::fs::read(&lp).unwrap(),
            conv,
            "{moment:?}: not the clean build's bytes"
        );
        let (mut kills, mut rounds) = (0, 0);
        while kills < wanted && rounds < most {
            rounds += 1;
            std::fs::write(&lp, &raw).unwrap();
            let mut child = spawn_build(kb, &dir);
            let pid = child.id();
            let aimed = reach(&mut child, moment, &lp);
            if aimed {
                rng.pause(span);
            }
            let killed = aimed && kill_unless_done(&mut child);
            if !killed {
                assert!(
                    child.wait().unwrap().success(),
                    "{moment:?}: a build failed"
                );
                seen.finished += 1;
                span = span * 3 / 4;
                assert_eq!(temps(&dir), left, "a finished run left or removed a file");
            }
            let now = std::fs::read(&lp).unwrap();
            assert!(
                now == raw || now == conv,
                "{}: neither as made nor converted after a kill {moment:?} ({} bytes)",
                lp.display(),
                now.len()
            );
            assert_eq!(
                std::fs::read(&helper).unwrap(),
                plain,
                "{}",
                helper.display()
            );
            if killed {
                kills += 1;
                seen.as_made += u32::from(now == raw);
                seen.converted += u32::from(now == conv);
                let own = temps_of(&dir, BUILT[0], pid);
                seen.temps_left += own.len() as u32;
                left.extend(own);
                left.sort();
                assert_eq!(temps(&dir), left, "a killed run removed a file");
            }
        }
        seen.kills += kills;
        by_moment.push(format!("{kills} {moment:?}"));
        assert!(kills * 2 >= wanted, "{moment:?}: {kills} kills landed");
    }

    // A last build, not killed, on what the last kill left.
    let r = klp_convert_build(&kbuild, &dir, &[], &[]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    assert_eq!(std::fs::read(&lp).unwrap(), conv);
    assert_eq!(std::fs::read(&helper).unwrap(), plain);
    assert_eq!(temps(&dir), left);
    eprintln!(
        "faults: {} kills during build ({}), {} runs finished first; after the kills {} modules as made, {} converted, 0 partial; {} temporary files left by kills, each named by its run and kept by the next runs; 0 files lost",
        seen.kills,
        by_moment.join(", "),
        seen.finished,
        seen.as_made,
        seen.converted,
        seen.temps_left
    );
    assert!(seen.temps_left > 0, "no kill landed in a write");
}

/// A small annotated module converted by these tests.
fn small_module(test: &str) -> (PathBuf, PathBuf) {
    let dir = scratch(test);
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}\
             extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\nint f(void) {{ return v; }}\n"
        ),
        &obj,
    );
    (dir, obj)
}

/// A preloaded `mmap(2)` that changes the file `KLP_FAULT_FILE` (an
/// absolute path) once it has mapped it, the first time, as `KLP_FAULT_HOW`
/// says: `append` 8 bytes; `truncate` it to half; `tear`: copy the second
/// half of `KLP_FAULT_OTHER` (a file of the same size) over the file's,
/// which the mapping shows; `overtake`: the same for both halves, by a
/// write that began before the reader looked (its time stamp set then, so
/// the time is put back after each half).
const CHANGE_ON_MAP: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int fired;

/* Copy bytes [at, end) of `from` over those of `to`. */
static void copy_range(const char *from, const char *to, off_t at, off_t end)
{
	char buf[65536];
	ssize_t n;
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY);

	while (in >= 0 && out >= 0 && at < end &&
	       (n = pread(in, buf, end - at < (off_t)sizeof buf ? end - at : (off_t)sizeof buf, at)) > 0) {
		if (pwrite(out, buf, n, at) != n)
			break;
		at += n;
	}
	close(in);
	close(out);
}

/* Is `fd` the file to change, not changed yet? Then `st` is its state,
 * and the change about to be made is told. */
static int target(int fd, struct stat *st)
{
	const char *file = getenv("KLP_FAULT_FILE"), *how = getenv("KLP_FAULT_HOW");
	char link[64], path[4096];
	ssize_t len;

	if (fired || !file || !how || fd < 0)
		return 0;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	len = readlink(link, path, sizeof path - 1);
	if (len <= 0)
		return 0;
	path[len] = 0;
	if (strcmp(path, file) || fstat(fd, st))
		return 0;
	fired = 1;
	fprintf(stderr, "change-on-map: %s %s\n", how, file);
	return 1;
}

/* The file mapped, then changed: the mapping shows the change. */
static void *mapped(void *p, int fd)
{
	const char *file = getenv("KLP_FAULT_FILE"), *how = getenv("KLP_FAULT_HOW");
	struct stat st;

	if (p == MAP_FAILED || !target(fd, &st))
		return p;
	if (!strcmp(how, "append")) {
		int w = open(file, O_WRONLY | O_APPEND);
		if (w >= 0 && write(w, "appended", 8) == 8)
			close(w);
	} else if (!strcmp(how, "truncate")) {
		if (truncate(file, st.st_size / 2))
			perror("truncate");
	} else if (!strcmp(how, "tear")) {
		copy_range(getenv("KLP_FAULT_OTHER"), file, st.st_size / 2, st.st_size);
	} else if (!strcmp(how, "overtake")) {
		struct timespec began[2] = { { 0, UTIME_OMIT }, st.st_mtim };
		copy_range(getenv("KLP_FAULT_OTHER"), file, 0, st.st_size / 2);
		utimensat(AT_FDCWD, file, began, 0);
		copy_range(getenv("KLP_FAULT_OTHER"), file, st.st_size / 2, st.st_size);
		utimensat(AT_FDCWD, file, began, 0);
	}
	return p;
}

void *mmap(void *addr, size_t n, int prot, int flags, int fd, off_t off)
{
	static void *(*real)(void *, size_t, int, int, int, off_t);

	if (!real)
		real = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
	return mapped(real(addr, n, prot, flags, fd, off), fd);
}

void *mmap64(void *addr, size_t n, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, n, prot, flags, fd, off);
}
"#;

/// [`CHANGE_ON_MAP`] built as a shared object in `dir`.
fn change_on_map(dir: &Path) -> PathBuf {
    let src = dir.join("change_on_map.c");
    let so = dir.join("change_on_map.so");
    std::fs::write(&src, CHANGE_ON_MAP).unwrap();
    let r = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-o"])
        .arg(&so)
        .arg(&src)
        .arg("-ldl")
        .output()
        .expect("run gcc");
    assert!(r.status.success(), "{}", stderr(&r));
    so
}

#[test]
fn an_input_that_changes_while_it_is_read_is_refused_and_nothing_written() {
    let dir = scratch("faults_changing_input");
    let shim = change_on_map(&dir);
    // Two modules of the same size that differ in both halves (the code
    // near the start, the symbol's name near the end, after 2 KiB of data).
    let module = |name: &str, sym: &str, k: u32| {
        let obj = dir.join(format!("{name}.o"));
        compile_x86_64(
            &format!(
                "{HEADER}{LIVEPATCH_MODINFO}\
                 extern int {sym} KLP_RELOC_SYMBOL(vmlinux, vmlinux, {sym});\n\
                 int f(void) {{ return {sym} + {k}; }}\n\
                 __attribute__((used)) static const char pad[2048] = {{ 1 }};\n"
            ),
            &obj,
        );
        std::fs::read(&obj).unwrap()
    };
    let a = module("a", "v", 1);
    let b_path = dir.join("b.o");
    let b = module("b", "w", 2);
    assert_eq!(a.len(), b.len());
    let half = a.len() / 2;
    assert!(a[..half] != b[..half] && a[half..] != b[half..]);
    let conversion = |bytes: &[u8], name: &str| {
        let (i, o) = (
            dir.join(format!("{name}.o")),
            dir.join(format!("{name}.out")),
        );
        std::fs::write(&i, bytes).unwrap();
        convert_ok(&i, &o);
        std::fs::read(&o).unwrap()
    };
    let (conv_a, conv_b) = (conversion(&a, "a"), conversion(&b, "b"));

    let input = dir.join("input.o");
    let out = dir.join("out.o");
    let old = b"an older output";
    let run = |args: &[&str], how: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("LD_PRELOAD", &shim)
            .env("KLP_FAULT_FILE", std::fs::canonicalize(&input).unwrap())
            .env("KLP_FAULT_OTHER", &b_path);
        if let Some(how) = how {
            cmd.env("KLP_FAULT_HOW", how);
        }
        cmd.output().unwrap()
    };
    let mut faults = 0;
    for (how, changed) in [
        ("append", [&a[..], b"appended"].concat()),
        ("truncate", a[..half].to_vec()),
        ("tear", [&a[..half], &b[half..]].concat()),
        ("overtake", b.clone()),
    ] {
        for in_place in [false, true] {
            std::fs::write(&input, &a).unwrap();
            // An old time, so that any write moves it, however coarse the clock.
            std::fs::File::options()
                .write(true)
                .open(&input)
                .unwrap()
                .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
                .unwrap();
            std::fs::write(&out, old).unwrap();
            let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
            let r = if in_place {
                run(&["convert", i, "--in-place"], Some(how))
            } else {
                run(&["convert", i, "-o", o], Some(how))
            };
            let err = stderr(&r);
            // A plain file is mapped, not read: the change lands after
            // the mapping.
            assert!(err.contains(&format!("change-on-map: {how}")), "{err}");
            assert_eq!(r.status.code(), Some(2), "{how}: {err}");
            assert!(
                err.contains(&format!(
                    "klp-convert: error: {i}: changed while it was being read; nothing written"
                )),
                "{how}: {err}"
            );
            // Nothing written: the input as the change left it, the old
            // output, no temporary file.
            assert!(std::fs::read(&input).unwrap() == changed, "{how}");
            assert_eq!(std::fs::read(&out).unwrap(), old, "{how}");
            assert_eq!(temps(&dir), Vec::<String>::new(), "{how}");
            faults += 1;
        }
    }
    // What the torn reads would have converted: modules, but neither's.
    for torn in [[&a[..half], &b[half..]], [&b[..half], &a[half..]]] {
        let torn = conversion(&torn.concat(), "torn");
        assert!(torn != conv_a && torn != conv_b);
    }
    // The control: the same preloaded mmap, changing nothing, converts.
    std::fs::write(&input, &a).unwrap();
    let r = run(
        &[
            "convert",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read(&out).unwrap(), conv_a);
    eprintln!(
        "faults: {faults} inputs changed during the read (appended, truncated, torn, overtaken; -o and --in-place), {faults} refused; 0 files written, 0 lost"
    );
}

/// Sets its flag when dropped: a panicking test still stops its threads.
struct RaiseOnDrop<'a>(&'a AtomicBool);

impl Drop for RaiseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
#[ignore = "tier 2: converts an input rewritten meanwhile 150 times (about 20 s); scripts/test runs it"]
fn an_input_rewritten_meanwhile_is_converted_whole_or_refused() {
    const RUNS: u32 = 150;
    let dir = scratch("faults_rewritten");
    // Three versions: two of one size (their names differ: `sym...` and
    // `tym...`), and a shorter one.
    let versions = [
        ("v1", 60_000, "sym"),
        ("v2", 60_000, "tym"),
        ("v3", 50_000, "sym"),
    ]
    .map(|(name, n, stem)| std::fs::read(big_module(&dir, name, n, stem)).unwrap());
    assert_eq!(versions[0].len(), versions[1].len());
    assert_ne!(versions[0].len(), versions[2].len());
    let conversions = ["v1", "v2", "v3"].map(|name| {
        let out = dir.join(format!("{name}.out"));
        convert_ok(&dir.join(format!("{name}.o")), &out);
        std::fs::read(out).unwrap()
    });
    let input = dir.join("input.o");
    let out = dir.join("out.o");
    std::fs::write(&input, &versions[0]).unwrap();
    let refused_as = format!(
        "klp-convert: error: {}: changed while it was being read; nothing written",
        input.display()
    );
    let stop = AtomicBool::new(false);
    let (mut converted, mut refused) = ([0; 3], 0);
    let (writes, last) = std::thread::scope(|s| {
        let _stop = RaiseOnDrop(&stop);
        // Rewrites the input: in place with one write(2) when the size
        // stays (a reader sees the bytes change under it, and the time stamp
        // moves when the write begins, not when it ends), else by a rename
        // over it (in place, a write that grows or shrinks the file leaves
        // one that is neither version while it runs). Then it rests.
        let writer = s.spawn(|| {
            use std::os::unix::fs::FileExt as _;
            let mut rng = Lcg(0x7772_6974_6572);
            let (mut writes, mut last) = (0, 0);
            let staged = dir.join("staged.o");
            while !stop.load(Ordering::Relaxed) {
                let next = rng.below(3) as usize;
                if versions[next].len() == versions[last].len() {
                    let f = std::fs::File::options().write(true).open(&input).unwrap();
                    f.write_all_at(&versions[next], 0).unwrap();
                } else {
                    std::fs::write(&staged, &versions[next]).unwrap();
                    std::fs::rename(&staged, &input).unwrap();
                }
                last = next;
                writes += 1;
                std::thread::sleep(Duration::from_micros(rng.below(4_000)));
            }
            (writes, last)
        });
        for _ in 0..RUNS {
            let _ = std::fs::remove_file(&out);
            let r = convert_o(&input, &out);
            let err = stderr(&r);
            if r.status.success() {
                let now = std::fs::read(&out).unwrap();
                let Some(v) = conversions.iter().position(|c| *c == now) else {
                    panic!("converted, but not one version's conversion: {err}");
                };
                converted[v] += 1;
            } else {
                assert_eq!(r.status.code(), Some(2), "{err}");
                assert!(err.contains(&refused_as), "{err}");
                assert!(!out.exists(), "refused, but wrote {}", out.display());
                refused += 1;
            }
            assert_eq!(temps(&dir), Vec::<String>::new());
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap()
    });
    // klp-convert never wrote to its input: it holds the last version written.
    assert!(std::fs::read(&input).unwrap() == versions[last]);
    let whole: u32 = converted.iter().sum();
    eprintln!(
        "faults: {RUNS} conversions of an input rewritten {writes} times meanwhile: {refused} refused as changed, {whole} converted whole ({converted:?} of each version), 0 wrong outputs, 0 files left"
    );
    assert!(refused > 0, "no read overlapped a rewrite");
    assert!(whole > 0, "every read overlapped a rewrite");
}

#[test]
fn an_input_that_is_not_a_regular_file_is_refused_unopened() {
    let dir = scratch("faults_not_a_file");
    let fifo = dir.join("fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let out = dir.join("out.o");
    // A character device (some sandboxes make /dev/null a plain file).
    let device = ["/dev/zero", "/dev/urandom", "/dev/null"]
        .map(Path::new)
        .into_iter()
        .find(|d| {
            use std::os::unix::fs::FileTypeExt as _;
            std::fs::metadata(d).is_ok_and(|m| m.file_type().is_char_device())
        })
        .expect("a character device in /dev");
    for input in [fifo.as_path(), device] {
        // Without the refusal the FIFO would wait for a writer, and the
        // device would be read until memory ran out (here 2 GB of it).
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 2000000 && exec \"$0\" convert \"$1\" -o \"$2\"")
            .args([Path::new(BIN), input, &out])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{}: still reading after 10 s", input.display());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let r = child.wait_with_output().unwrap();
        assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
        assert!(
            stderr(&r).contains(&format!(
                "{}: not a regular file (a FIFO, a device or a socket)",
                input.display()
            )),
            "{}",
            stderr(&r)
        );
        assert!(!out.exists());
    }
}

#[test]
fn outputs_that_would_lose_something_are_refused() {
    let (dir, input) = small_module("faults_outputs");
    let original = std::fs::read(&input).unwrap();

    // An output that is a directory.
    let d = dir.join("outdir");
    std::fs::create_dir(&d).unwrap();
    let r = convert_o(&input, &d);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("outdir: Is a directory"),
        "{}",
        stderr(&r)
    );
    assert!(d.is_dir() && std::fs::read_dir(&d).unwrap().next().is_none());

    // The input through a symbolic link, and through a hard link.
    let sym = dir.join("sym.o");
    std::os::unix::fs::symlink(&input, &sym).unwrap();
    let hard = dir.join("hard.o");
    std::fs::hard_link(&input, &hard).unwrap();
    for (out, how) in [(&sym, "a symbolic link"), (&hard, "a hard link")] {
        let r = convert_o(&input, out);
        assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
        assert!(
            stderr(&r).contains(&format!("is the input {} through {how}; writing it would replace the link, not the module (use --in-place)", input.display())),
            "{}",
            stderr(&r)
        );
        assert_eq!(std::fs::read(&input).unwrap(), original);
    }
    assert!(std::fs::symlink_metadata(&sym)
        .unwrap()
        .file_type()
        .is_symlink());

    // --in-place through the symbolic link: the file it names is converted.
    let r = klp_convert(&["convert", sym.to_str().unwrap(), "--in-place"]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(std::fs::symlink_metadata(&sym)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_ne!(std::fs::read(&input).unwrap(), original);
    assert_eq!(temps(&dir), Vec::<String>::new());
}

#[test]
fn other_runs_temporary_files_and_links_at_such_names_are_left_alone() {
    let (dir, input) = small_module("faults_foreign_temp");
    let out = dir.join("out.o");
    let victim = dir.join("victim");
    std::fs::write(&victim, b"not a module").unwrap();
    // pid_max is at most 2^22: no process here has this id, as for a build
    // in another PID namespace, whose write is still in progress.
    let foreign = [
        ".out.o.klp-convert-4194305.AbC123.tmp",
        ".out.o.klp-convert-4194305.tmp",
        ".other.o.klp-convert-4194305.xyz789.tmp",
    ];
    for f in foreign {
        std::fs::write(dir.join(f), b"half a module").unwrap();
    }
    let link = ".out.o.klp-convert-4194305.L1nk00.tmp";
    std::os::unix::fs::symlink(&victim, dir.join(link)).unwrap();
    let before = temps(&dir);
    for args in [
        vec![
            "convert",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        vec!["convert", out.to_str().unwrap(), "--in-place"],
    ] {
        let r = klp_convert(&args);
        assert!(r.status.success(), "{}", stderr(&r));
        assert_eq!(temps(&dir), before, "{args:?}");
    }
    for f in foreign {
        assert_eq!(std::fs::read(dir.join(f)).unwrap(), b"half a module", "{f}");
    }
    assert_eq!(std::fs::read_link(dir.join(link)).unwrap(), victim);
    assert_eq!(std::fs::read(&victim).unwrap(), b"not a module");
}

/// Run `script` in a private mount namespace with a small tmpfs at `mnt`.
fn in_tmpfs(mnt: &Path, options: &str, script: &str) -> String {
    let r = Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            &format!(
                "mount -t tmpfs -o {options} tmpfs {} && {script}",
                mnt.display()
            ),
        ])
        .output()
        .expect("run unshare");
    format!(
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    )
}

#[test]
#[ignore = "tier 2: mounts a small tmpfs (root, a private mount namespace); scripts/test runs it"]
fn a_full_or_read_only_filesystem_is_a_clear_error() {
    let dir = scratch("faults_fs");
    let input = big_module(&dir, "big", 200_000, "sym");
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let out = mnt.join("out.o");
    let convert = format!("{BIN} convert {} -o {}", input.display(), out.display());
    // Full: 64 KiB for a module of megabytes. The old output stays.
    let text = in_tmpfs(
        &mnt,
        "size=64k",
        &format!(
            "echo old > {o} && {convert}; rc=$?; echo \"rc=$rc\"; cat {o}; ls -a {m}",
            o = out.display(),
            m = mnt.display()
        ),
    );
    assert!(text.contains("rc=2"), "{text}");
    assert!(text.contains("No space left on device"), "{text}");
    assert!(text.contains("\nold\n"), "the old output was lost: {text}");
    assert!(
        !text.contains("klp-convert-"),
        "a temporary file was left: {text}"
    );
    // Read-only.
    let text = in_tmpfs(
        &mnt,
        "ro",
        &format!("{convert}; echo \"rc=$?\"; ls -a {}", mnt.display()),
    );
    assert!(text.contains("rc=2"), "{text}");
    assert!(text.contains("Read-only file system"), "{text}");
    assert!(!text.contains("klp-convert-"), "{text}");
}
