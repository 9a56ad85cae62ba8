//! What klp-convert costs against the least any tool could pay for the same
//! job: a `cp` of its input, and its **I/O floor**.
//!
//! Absolute times mean little on a shared machine, so each workload is timed
//! in one `hyperfine` run beside two floors, and reported as ratios (the
//! floors and the command see the same load, give or take the seconds
//! between them):
//!
//! * `cp FLOOR COPY`: the kernel copies the bytes without bringing them into
//!   a process; the cheapest way to touch the input at all;
//! * the I/O floor: this bench re-run as `floor --io-floor OUT SIZE
//!   INPUTS...`, which reads every input the command reads into memory,
//!   writes a file of the command's output size (from the bytes read, so it
//!   allocates nothing more) and renames it into place. No parsing, no work:
//!   what a converter that reads its input and writes its output cannot
//!   avoid. A conversion writes more than it reads (a: 8.1 MB in, 14.5 MB out),
//!   so this floor is itself a few times a `cp`.
//!
//! Every timed run follows a `sync`: without it, a run pays for the
//! writeback of the run before it, and the ratios swing by 2×.
//!
//! Beside the times: peak RSS (`/usr/bin/time -f %M`, one run) as a ratio to
//! the bytes the command reads and writes, and instructions under `valgrind
//! --tool=callgrind`, absolute and per input byte, which repeat to about
//! 0.01% where times on a loaded machine vary by a factor of two.
//!
//! The workloads (the `gen.py` arguments are in [`BENCH`]):
//!
//! * a, the minimal form at scale: 20,000 functions and externs, each
//!   function in a section of its own (40,000 sections in, 60,000 out: the
//!   largest round size whose output the loader numbers, as
//!   `extended-section-numbering` says; until 2026-12-07 it was 50,000, whose
//!   150,000 sections out no kernel loads), `convert IN -o OUT`; floor `cp
//!   IN`. Targets: time ≤ 3× the I/O floor, peak RSS ≤ 1.5× the input and
//!   output (8.1 + 14.5 MB).
//! * b, the v7 drop-in `klp-convert MAP OBJ OUT` against a 1.5-million-line
//!   symbols.klp (27 MB); it must write what `convert OBJ -o OUT --symbols
//!   MAP` writes. Floor `cp MAP`. Target: time ≤ 3× the I/O floor.
//! * c, map loading: `check PROBE --symbols MAP.json`, MAP.json being Debian
//!   6.1's `System.map` and `modules/` as `symbols --format json` writes
//!   them (613,000 symbols, 56 MB; skipped without the kernel that
//!   `scripts/fetch-kernels` caches), PROBE a module whose one klp
//!   relocation resolves in it. Floor `cp MAP.json`.
//! * k, one livepatch module of a kbuild run: tests/kernel's plain-C
//!   livepatch, built against Debian 6.12 (163,000-line System.map, 27,000-
//!   line Module.symvers) and converted with those maps and its target
//!   `.ko`, as `klp-convert build` converts every module of a build. Most of
//!   its time is reading maps that are the same for every module. Floor `cp
//!   System.map`. Target: time ≤ 3× the I/O floor. See [`kbuild_workload`].
//! * d, growth: a at 1/8, 1/4 and 1/2 of its n. Work that grows as the
//!   input does keeps the per-byte columns (RSS ÷ input, Ir / input byte)
//!   level from row to row.
//!
//! The inputs come from `benches/gen.py` and are kept in
//! `${KLP_CACHE:-~/.cache/klp-convert}/bench/`, keyed by the generator's
//! hash and arguments; outputs go to a scratch directory there.
//!
//! `cargo bench --bench floor` measures the binary built with it (the
//! release profile); `KLP_BIN=PATH` measures another. Options after `--`:
//! `--label NAME` (default `run`), `--results FILE` (put this run's report,
//! under `## Run: NAME`, into a file such as `benches/RESULTS.md`, in place
//! of a run of the same name or last), `--runs N` (default 5), `--only
//! a,b,c,d,k`, `--no-callgrind`, `--note TEXT`.
//!
//! Under `cargo test --all-targets` (so in `scripts/test`) it is a smoke
//! test: the same workloads at a tenth of the size, asserted loosely enough
//! not to flake on a busy 2-core machine. It guards against a 10×
//! regression and against work that grows faster than the input; it is not
//! a timing test. See [`Bounds`] and [`assert_loosely`].

mod common;

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The sizes of one mode: `gen.py` arguments.
struct Sizes {
    /// n (= k) of the minimal-form objects, smallest first; the last one is workload a.
    growth: &'static [usize],
    /// b's map.
    symbols: &'static str,
    /// b's object.
    full: &'static str,
}

const BENCH: Sizes = Sizes {
    growth: &[2_500, 5_000, 10_000, 20_000],
    symbols: "symbols --s 1500000 --k 10000 --modules 3000 --exported 30000",
    full: "obj --full --n 2500 --k 10000",
};

/// A tenth of the bench, the growth pair 4× apart: the inputs take about ten
/// seconds to generate, once, and the run 15–40 s.
const SMOKE: Sizes = Sizes {
    growth: &[500, 2_000],
    symbols: "symbols --s 60000 --k 1000 --modules 120 --exported 1200",
    full: "obj --full --n 250 --k 1000",
};

/// The smoke run's bounds for one kind of binary, loose enough for a busy
/// 2-core machine. `time` bounds the command's time over cp's (the lower of
/// the medians' ratio and the best runs' ratio; a, b, c): at the smoke sizes
/// cp takes 1–3 ms under hyperfine, mostly exec, and before the tool's first
/// optimizations the worst of a, b and c was 47× (release) and 163× (the
/// binary `cargo test` built then, unoptimized; its dev profile is now at
/// opt-level 1, and the bounds were kept) at a load average of 5 on two
/// cores, against a cp of 2–8 ms as an earlier driver timed it. `ir_per_byte` bounds the minimal form's instructions per input
/// byte (a, d), which cannot flake; it was 98 and 546 then.
struct Bounds {
    time: f64,
    ir_per_byte: f64,
}

const OPTIMIZED: Bounds = Bounds {
    time: 300.0,
    ir_per_byte: 1e3,
};
const UNOPTIMIZED: Bounds = Bounds {
    time: 1e3,
    ir_per_byte: 5e3,
};
/// Peak RSS below this many times the input, plus [`SMOKE_RSS_SLACK`].
const SMOKE_RSS_PER_INPUT: u64 = 10;
const SMOKE_RSS_SLACK: u64 = 16 << 20;
/// Growth: at s× the input, instructions below 1.1s× (best time below 3s×
/// without valgrind); quadratic work would give s². Instruction counts
/// repeat exactly: linear work reads 4.0× for the smoke pair's 4×, and a
/// quadratic scan in verify (one pass over every removal per relocation
/// section) read 4.74×, inside the 2s× bound this once had.
const SMOKE_GROWTH_IR: f64 = 1.1;
const SMOKE_GROWTH_TIME: f64 = 3.0;

/// An argument vector, from anything that is an `OsStr`.
macro_rules! argv {
    ($($a:expr),* $(,)?) => { vec![$(OsString::from(AsRef::<OsStr>::as_ref(&$a))),*] };
}

/// Run `argv`, the program first; it must succeed. Its stderr.
fn run(argv: impl AsRef<[OsString]>) -> String {
    let argv = argv.as_ref();
    let out = Command::new(&argv[0]).args(&argv[1..]).output();
    let out = out.unwrap_or_else(|e| panic!("run {argv:?}: {e}"));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{argv:?}: {err}");
    err
}

/// `program ARGS`'s stdout, if it runs and succeeds.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    out.status.success().then_some(text)
}

/// The command line after `--`; cargo's own flags (`--bench` aside) and the
/// test harness's are ignored.
struct Options(Vec<String>);

impl Options {
    /// The value after `flag`, if given.
    fn value(&self, flag: &str) -> Option<String> {
        let i = self.0.iter().position(|a| a == flag)?;
        let v = self
            .0
            .get(i + 1)
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        Some(v.clone())
    }

    fn has(&self, flag: &str) -> bool {
        self.0.iter().any(|a| a == flag)
    }

    fn wants(&self, workload: char) -> bool {
        self.value("--only").is_none_or(|w| w.contains(workload))
    }
}

/// `benches/gen.py` and its cache directory, named by the script's FNV-1a
/// hash so that a changed generator makes new inputs.
struct Generator {
    script: PathBuf,
    dir: PathBuf,
}

impl Generator {
    fn new(cache: &Path) -> Generator {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gen.py");
        let bytes = std::fs::read(&script).expect("read benches/gen.py");
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let dir = cache.join(format!("bench/gen-{hash:016x}"));
        Generator { script, dir }
    }

    /// The input `gen.py ARGS` makes, generated on first use. gcc records
    /// the file's name in the object, so it is generated under its final
    /// name in a private directory and then renamed into the cache.
    fn input(&self, args: &str, ext: &str) -> PathBuf {
        let words: Vec<&str> = args.split(' ').map(|a| a.trim_start_matches('-')).collect();
        let name = format!("{}.{ext}", words.join("-"));
        let path = self.dir.join(&name);
        if !path.exists() {
            let tmp = self.dir.join(format!("tmp-{}", std::process::id()));
            std::fs::create_dir_all(&tmp).expect("cache directory");
            eprintln!("floor: generating {name} into {}", self.dir.display());
            let mut cmd = argv!["python3", self.script];
            cmd.extend(args.split(' ').map(OsString::from));
            cmd.extend(argv!["-o", tmp.join(&name)]);
            run(&cmd);
            std::fs::rename(tmp.join(&name), &path).expect("rename into the cache");
            std::fs::remove_dir_all(&tmp).expect("remove the generator's directory");
        }
        path
    }
}

/// A scratch directory, removed when dropped (so also when an assertion
/// fails).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One command's times from hyperfine, in seconds.
#[derive(Clone, Copy)]
struct Timing {
    median: f64,
    min: f64,
    /// Mean user plus system time: what the load on a shared machine
    /// changes least; the gap to the wall time is mostly waiting.
    cpu: f64,
}

/// Time `commands` in one hyperfine run, each after a warm-up (which also
/// fills the page cache), with `remove` deleted and the system synced
/// before every run. No shell (`-N`): at the smoke sizes a `cp`
/// takes a few milliseconds, and a shell's start would be much of it.
fn hyperfine(commands: &[&[OsString]], remove: &[&Path], runs: usize, dir: &Path) -> Vec<Timing> {
    let quote = |a: &OsStr| format!("'{}'", a.to_string_lossy().replace('\'', r"'\''"));
    let line = |argv: &[OsString]| argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
    let json = dir.join("hyperfine.json");
    // Before every run: remove the outputs, so that each run writes a new
    // file, and `sync`, so that no run pays for the writeback of the one
    // before it (without it the floor's ratio swings by 2×).
    let files: Vec<String> = remove.iter().map(|p| quote(p.as_os_str())).collect();
    let prepare = format!("rm -f {} && sync", files.join(" "));
    let rm = argv!["sh", "-c", prepare];
    let mut cmd = argv![
        "hyperfine",
        "-N",
        "--style=none",
        "--warmup=1",
        "--export-json",
        json
    ];
    cmd.extend(argv![
        format!("--runs={runs}"),
        format!("--prepare={}", line(&rm))
    ]);
    cmd.extend(commands.iter().map(|argv| line(argv).into()));
    run(&cmd);
    let text = std::fs::read_to_string(&json).expect("hyperfine's JSON");
    let v: serde_json::Value = serde_json::from_str(&text).expect("hyperfine's JSON");
    let results = v["results"].as_array().expect("hyperfine's results");
    assert_eq!(results.len(), commands.len(), "one result a command");
    let secs = |r: &serde_json::Value, k: &str| r[k].as_f64().expect("a time from hyperfine");
    let timing = |r| Timing {
        median: secs(r, "median"),
        min: secs(r, "min"),
        cpu: secs(r, "user") + secs(r, "system"),
    };
    results.iter().map(timing).collect()
}

/// Peak RSS of one run of `argv`, in KiB: GNU time's `%M`, the child's
/// `ru_maxrss`.
fn peak_rss_kib(argv: &[OsString], dir: &Path) -> u64 {
    let out = dir.join("time.out");
    run([argv!["/usr/bin/time", "-f", "%M", "-o", out], argv.to_vec()].concat());
    let text = std::fs::read_to_string(&out).expect("GNU time's output");
    let last = text.lines().last().unwrap_or_default().trim();
    last.parse().expect("a peak RSS from GNU time")
}

/// Instructions executed by `argv` under callgrind.
fn instructions(argv: &[OsString], dir: &Path) -> u64 {
    let profile = format!(
        "--callgrind-out-file={}",
        dir.join("callgrind.out").display()
    );
    let err = run([
        argv!["valgrind", "--tool=callgrind", profile],
        argv.to_vec(),
    ]
    .concat());
    let _ = std::fs::remove_file(dir.join("callgrind.out"));
    err.lines()
        .find_map(|l| l.split_once("Collected :")?.1.trim().parse().ok())
        .unwrap_or_else(|| panic!("no instruction count in callgrind's output:\n{err}"))
}

/// What to run, against which floors, with which targets.
struct Workload {
    id: String,
    what: String,
    /// The command, the binary first.
    argv: Vec<OsString>,
    /// The file `cp` copies.
    floor: PathBuf,
    /// The files the command reads, for its I/O floor.
    reads: Vec<PathBuf>,
    /// n, for the growth rows.
    growth: Option<usize>,
    /// Time over the I/O floor's, peak RSS over input plus output.
    targets: (Option<f64>, Option<f64>),
}

/// The figures of one workload.
struct Row {
    w: Workload,
    input_bytes: u64,
    out_bytes: u64,
    /// cp, the I/O floor and the command; none without hyperfine.
    times: Option<[Timing; 3]>,
    rss_kib: u64,
    ir: Option<u64>,
}

impl Row {
    /// The command's median time over cp's (`floor` 0) or the I/O floor's (1).
    fn time_ratio(&self, floor: usize) -> Option<f64> {
        self.times.map(|t| t[2].median / t[floor].median)
    }

    fn ir_per_byte(&self) -> Option<f64> {
        self.ir.map(|ir| ir as f64 / self.input_bytes as f64)
    }
}

/// Everything a measurement needs.
struct Bench {
    bin: PathBuf,
    scratch: PathBuf,
    runs: usize,
    callgrind: bool,
    hyperfine: bool,
}

impl Bench {
    fn out(&self) -> PathBuf {
        self.scratch.join("out")
    }

    /// Peak RSS (a run that also gives the output size the I/O floor
    /// writes), the three timed commands, then callgrind.
    fn measure(&self, w: Workload, callgrind: bool) -> Row {
        let _ = std::fs::remove_file(self.out());
        let rss_kib = peak_rss_kib(&w.argv, &self.scratch);
        let out_bytes = std::fs::metadata(self.out()).map_or(0, |m| m.len());
        let copy = self.scratch.join("copy");
        let cp = argv!["cp", w.floor, copy];
        let this = std::env::current_exe().expect("this bench");
        let mut io = argv![this, "--io-floor", copy, out_bytes.to_string()];
        io.extend(w.reads.iter().map(OsString::from));
        let times = self.hyperfine.then(|| {
            let t = hyperfine(
                &[&cp, &io, &w.argv],
                &[&copy, &self.out()],
                self.runs,
                &self.scratch,
            );
            [t[0], t[1], t[2]]
        });
        let ir = (self.callgrind && callgrind).then(|| instructions(&w.argv, &self.scratch));
        let input_bytes = w.reads.iter().map(|p| size(p)).sum();
        let row = Row {
            w,
            input_bytes,
            out_bytes,
            times,
            rss_kib,
            ir,
        };
        let line = table(std::slice::from_ref(&row));
        eprintln!("floor: {}", line.lines().last().unwrap_or_default());
        row
    }
}

fn size(p: &Path) -> u64 {
    let meta = std::fs::metadata(p);
    meta.unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .len()
}

/// Workloads a and d, as far as `opts` wants them: the minimal form at
/// each size; the largest is a.
fn minimal_workloads(b: &Bench, gen: &Generator, sizes: &Sizes, opts: &Options) -> Vec<Workload> {
    let (smallest, largest) = (sizes.growth[0], sizes.growth[sizes.growth.len() - 1]);
    let wanted = |n: &&usize| opts.wants(if **n == largest { 'a' } else { 'd' });
    let workload = |&n: &usize| {
        let args = format!("obj --minimal --n {n} --k {n}");
        let input = gen.input(&args, "o");
        let a = n == largest;
        Workload {
            id: if a {
                "a".into()
            } else {
                format!("d {}×", n / smallest)
            },
            what: format!("`gen.py {args}`: `convert IN -o OUT`"),
            argv: argv![b.bin, "convert", input, "-o", b.out()],
            reads: vec![input.clone()],
            floor: input,
            growth: Some(n),
            targets: (a.then_some(3.0), a.then_some(1.5)),
        }
    };
    sizes.growth.iter().filter(wanted).map(workload).collect()
}

/// Workload b: the v7 drop-in; the `convert --symbols` form must write the same bytes.
fn dropin_workload(b: &Bench, gen: &Generator, sizes: &Sizes) -> Workload {
    let map = gen.input(sizes.symbols, "klp");
    let obj = gen.input(sizes.full, "o");
    let argv = argv![b.bin, map, obj, b.out()];
    let long = b.scratch.join("long");
    run(&argv);
    run(argv![b.bin, "convert", obj, "-o", long, "--symbols", map]);
    assert!(
        std::fs::read(b.out()).expect("drop-in output") == std::fs::read(&long).expect("output"),
        "`klp-convert MAP OBJ OUT` and `convert OBJ -o OUT --symbols MAP` differ"
    );
    Workload {
        id: "b".into(),
        what: format!(
            "v7 drop-in `klp-convert MAP OBJ OUT`, MAP `gen.py {}`, OBJ `gen.py {}`; floor: cp MAP",
            sizes.symbols, sizes.full
        ),
        reads: vec![map.clone(), obj],
        argv,
        floor: map,
        growth: None,
        targets: (Some(3.0), None),
    }
}

/// Workload c: `check PROBE --symbols MAP.json`, PROBE referring to one
/// vmlinux symbol. For the bench, MAP.json is Debian 6.1's map, made once
/// from the cached kernel; for the smoke, b's map as JSON.
fn map_workload(b: &Bench, gen: &Generator, cache: &Path, bench: bool) -> Option<Workload> {
    let (json, name, what) = if bench {
        let kernel = cache.join("kernels/6.1");
        let Ok(release) = std::fs::read_to_string(kernel.join("release")) else {
            let kernel = kernel.display();
            eprintln!("floor: c skipped: no Debian 6.1 kernel in {kernel} (scripts/fetch-kernels)");
            return None;
        };
        let json = cache.join(format!("bench/debian-{}.json", release.trim()));
        if !json.exists() {
            let (map, modules) = (kernel.join("dbg/System.map"), kernel.join("modules"));
            run(argv![
                b.bin,
                "symbols",
                map,
                modules,
                "--format=json",
                "-o",
                json
            ]);
        }
        let what = format!("`symbols System.map modules/ --format json` of Debian {release}");
        (
            json,
            "saved_command_line".to_string(),
            what.trim().to_string(),
        )
    } else {
        let klp = gen.input(SMOKE.symbols, "klp");
        let json = b.scratch.join("map.json");
        run(argv![b.bin, "symbols", klp, "--format=json", "-o", json]);
        let text = std::fs::read_to_string(&klp).expect("read the map");
        let mut vmlinux = text.lines().skip_while(|l| *l != "*vmlinux");
        let name = vmlinux.nth(1).expect("a vmlinux symbol").to_string();
        (json, name, "`symbols` of b's map as JSON".to_string())
    };
    let source = format!(
        ".section .modinfo,\"a\"\n.asciz \"livepatch=Y\"\n.section .data.refs,\"aw\"\n\
         .quad .klp.sym.rela.vmlinux.vmlinux.{name}.0\n"
    );
    common::assemble_source(&source, "probe", &b.scratch);
    let probe = b.scratch.join("probe.ko");
    run(argv![
        b.bin,
        "convert",
        b.scratch.join("probe.o"),
        "-o",
        probe
    ]);
    Some(Workload {
        id: "c".into(),
        what: format!("map loading, `check PROBE --symbols MAP.json`: MAP.json = {what}"),
        argv: argv![b.bin, "check", probe, "--symbols", json],
        reads: vec![json.clone(), probe],
        floor: json,
        growth: None,
        targets: (None, None),
    })
}

/// Workload k: what one livepatch module costs in a kbuild run.
/// tests/kernel's plain-C livepatch (no annotations) and its target module,
/// built once with Debian 6.12's kbuild and kept in the cache, converted
/// against that kernel's System.map, Module.symvers and the target `.ko`,
/// the maps `klp-convert build` passes for every module of a build. Both
/// the bench and the smoke run use it at full size: it is small already.
/// Without the kernel (`scripts/fetch-kernels`) it is skipped, unless
/// `required` (the suite's tier 2, `--include-ignored`).
fn kbuild_workload(b: &Bench, cache: &Path, required: bool) -> Option<Workload> {
    let kernel = cache.join("kernels/6.12");
    let Ok(release) = std::fs::read_to_string(kernel.join("release")) else {
        let kernel = kernel.display();
        assert!(
            !required,
            "floor: k needs the Debian 6.12 kernel in {kernel} (scripts/fetch-kernels)"
        );
        eprintln!("floor: k skipped: no Debian 6.12 kernel in {kernel} (scripts/fetch-kernels)");
        return None;
    };
    let release = release.trim();
    let dir = cache.join(format!("bench/k-{release}"));
    let (lp, target) = (
        dir.join("lp_plain/klp_test_plain.ko"),
        dir.join("target/klp_test_target.ko"),
    );
    if !lp.exists() || !target.exists() {
        // Built under a private name, then renamed into the cache whole.
        let tmp = cache.join(format!("bench/k-tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel");
        std::fs::create_dir_all(&tmp).expect("a build directory");
        for sub in ["include", "target", "lp_plain"] {
            run(argv!["cp", "-r", src.join(sub), tmp.join(sub)]);
        }
        let kbuild = kernel.join("build");
        let path = kbuild_path(&kernel);
        for m in ["target", "lp_plain"] {
            eprintln!("floor: building {m} against Debian {release}");
            let out = Command::new("make")
                .arg("-C")
                .arg(&kbuild)
                .arg(format!("M={}", tmp.join(m).display()))
                // Unpatched modpost stops at the symbols the livepatch
                // leaves undefined for klp-convert.
                .arg("KBUILD_MODPOST_WARN=1")
                .arg("modules")
                .env("PATH", &path)
                .output()
                .expect("run make");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "make M={m}: {err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).expect("rename the modules into the cache");
    }
    let maps = [
        kernel.join("dbg/System.map"),
        kernel.join("build/Module.symvers"),
        target,
    ];
    let mut argv = argv![b.bin, "convert", lp, "-o", b.out()];
    for m in &maps {
        argv.extend(argv!["--symbols", m]);
    }
    let mut reads = vec![lp.clone()];
    reads.extend(maps.iter().cloned());
    Some(Workload {
        id: "k".into(),
        what: format!(
            "one livepatch in a kbuild run: `convert LP.ko -o OUT --symbols System.map \
             --symbols Module.symvers --symbols TARGET.ko`, tests/kernel's lp_plain and \
             target built against Debian {release}; floor: cp System.map"
        ),
        argv,
        floor: maps[0].clone(),
        reads,
        growth: None,
        targets: (Some(3.0), None),
    })
}

/// The `PATH` kbuild runs with: the cached kernel's own tools first, where
/// it has them (a newer `make` for a newer kernel, as the tests use).
fn kbuild_path(kernel: &Path) -> OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let bin = kernel.join("bin");
    if !bin.join("make").is_file() {
        return path;
    }
    let dirs = std::iter::once(bin).chain(std::env::split_paths(&path));
    std::env::join_paths(dirs).expect("PATH")
}

fn ms(t: Option<Timing>) -> String {
    t.map_or("—".into(), |t| match t.median * 1e3 {
        ms if ms < 10.0 => format!("{ms:.2}"),
        ms => format!("{ms:.1}"),
    })
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// `x` as a ratio (`1.5×`), or a dash.
fn times(x: Option<f64>) -> String {
    x.map_or("—".into(), |x| format!("{x:.1}×"))
}

/// The figures of a run, one workload a line, in the columns of the runs
/// already recorded in `benches/RESULTS.md`.
fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| workload | input MB | output MB | cp ms | I/O floor ms | klp-convert ms | time ÷ cp | time ÷ I/O floor | target | CPU ÷ cp's | peak RSS MB | RSS ÷ (in + out) | target | Ir | Ir / input byte |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: |\n",
    );
    let target = |t: Option<f64>| t.map_or("—".into(), |t| format!("≤{t}×"));
    for r in rows {
        let time = |i: usize| r.times.map(|t| t[i]);
        let rss = r.rss_kib * 1024;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1}× | {} | {} | {} |",
            r.w.id,
            mb(r.input_bytes),
            mb(r.out_bytes),
            ms(time(0)),
            ms(time(1)),
            ms(time(2)),
            times(r.time_ratio(0)),
            times(r.time_ratio(1)),
            target(r.w.targets.0),
            times(r.times.map(|t| t[2].cpu / t[0].cpu)),
            mb(rss),
            rss as f64 / (r.input_bytes + r.out_bytes) as f64,
            target(r.w.targets.1),
            r.ir.map_or("—".into(), |ir| ir.to_string()),
            r.ir_per_byte().map_or("—".into(), |i| format!("{i:.0}")),
        );
    }
    s
}

fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The run's report: the machine and binary, the table, the inputs.
fn report(
    rows: &[Row],
    bin: &Path,
    runs: usize,
    load_before: &str,
    note: Option<String>,
) -> String {
    let dir = bin.parent().and_then(Path::to_str).unwrap_or(".");
    let tool = |t: &str| command_line(t, &["--version"]).unwrap_or(format!("no {t}"));
    let git = command_line("git", &["-C", dir, "describe", "--always", "--dirty"]);
    let mut s = format!(
        "- date: {}\n- machine: {} cores (`nproc`), load average {load_before} before and {} after\n\
         - tools: {}; {}; {}\n- binary: `{}`, {}\n",
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg(),
        tool("rustc"),
        tool("hyperfine"),
        tool("valgrind"),
        bin.display(),
        git.map_or("outside a git tree".into(), |c| format!("git tree at {c}")),
    );
    if let Some(note) = note {
        let _ = writeln!(s, "- note: {note}");
    }
    let _ = write!(
        s,
        "\nMedians of {runs} runs under hyperfine after a warm-up, cp and the I/O floor in the same \
         hyperfine run; CPU from mean user and system times; peak RSS and Ir from one run each.\n\n{}\n",
        table(rows)
    );
    for r in rows {
        let _ = writeln!(s, "- {}: {}", r.w.id, r.w.what);
    }
    s
}

/// Put `report` into the results file under `## Run: label`: in place of
/// the run of that name (up to the next `## ` heading), or last.
fn write_results(path: &Path, label: &str, report: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let heading = format!("## Run: {label}\n");
    let section = format!("{heading}\n{report}\n");
    let text = match text.find(&heading) {
        Some(start) => {
            let body = start + heading.len();
            let end = text[body..]
                .find("\n## ")
                .map_or(text.len(), |e| body + e + 1);
            format!("{}{section}{}", &text[..start], &text[end..])
        }
        None => format!("{}\n\n{section}", text.trim_end()),
    };
    std::fs::write(path, text).expect("write the results file");
    eprintln!("floor: wrote {}", path.display());
}

/// The smoke run's assertions: time against cp, instructions a byte and
/// peak RSS under [`Bounds`], and growth under [`SMOKE_GROWTH_IR`] (or
/// [`SMOKE_GROWTH_TIME`]) times the input's.
fn assert_loosely(rows: &[Row], optimized: bool) {
    let bounds = if optimized { &OPTIMIZED } else { &UNOPTIMIZED };
    for r in rows {
        let id = &r.w.id;
        if let (Some(t), true) = (r.times, r.w.growth.is_none() || id == "a") {
            let time = (t[2].median / t[0].median).min(t[2].min / t[0].min);
            let bound = bounds.time;
            assert!(
                time < bound,
                "{id}: {time:.1}× the time of cp (bound {bound}×)"
            );
        }
        if let Some(ir) = r.ir_per_byte() {
            let bound = bounds.ir_per_byte;
            assert!(
                ir < bound,
                "{id}: {ir:.0} instructions per input byte (bound {bound})"
            );
        }
        let (rss, limit) = (
            r.rss_kib * 1024,
            SMOKE_RSS_PER_INPUT * r.input_bytes + SMOKE_RSS_SLACK,
        );
        assert!(
            rss < limit,
            "{id}: peak RSS {} MB, bound {} MB",
            mb(rss),
            mb(limit)
        );
    }
    let grown: Vec<&Row> = rows.iter().filter(|r| r.w.growth.is_some()).collect();
    let (Some(first), Some(last)) = (grown.first(), grown.last()) else {
        return;
    };
    let size = last.input_bytes as f64 / first.input_bytes as f64;
    let best = |r: &Row| r.times.map(|t| t[2].min);
    let (what, ratio, bound) = match (last.ir.zip(first.ir), best(last).zip(best(first))) {
        (Some((l, f)), _) => ("instructions", l as f64 / f as f64, SMOKE_GROWTH_IR),
        (None, Some((l, f))) => ("best time", l / f, SMOKE_GROWTH_TIME),
        (None, None) => return eprintln!("floor: growth unchecked: no valgrind, no hyperfine"),
    };
    let bound = bound * size;
    assert!(
        ratio < bound,
        "growth: {what} {ratio:.1}× for {size:.1}× the input (bound {bound:.1}×)"
    );
}

/// `--io-floor OUT SIZE INPUTS...`: read every input into memory, write
/// SIZE bytes (the inputs' bytes over and over) to a temporary file beside
/// OUT and rename it to OUT. What a converter cannot do without.
fn io_floor(args: &[String]) {
    let [out, size, inputs @ ..] = args else {
        panic!("--io-floor OUT SIZE INPUTS...");
    };
    let mut left: usize = size.parse().expect("SIZE");
    let read: Vec<Vec<u8>> = inputs
        .iter()
        .map(|p| std::fs::read(p).expect("read an input"))
        .collect();
    let tmp = Path::new(out).with_extension("io-floor-tmp");
    let mut file = std::fs::File::create(&tmp).expect("create the output");
    while left > 0 {
        let before = left;
        for bytes in &read {
            let n = bytes.len().min(left);
            file.write_all(&bytes[..n]).expect("write the output");
            left -= n;
        }
        assert!(
            left < before,
            "an output but no input bytes to write it from"
        );
    }
    drop(file);
    std::fs::rename(&tmp, out).expect("rename the output");
}

fn main() {
    let opts = Options(std::env::args().skip(1).collect());
    if opts.0.first().map(String::as_str) == Some("--io-floor") {
        return io_floor(&opts.0[1..]);
    }
    let load_before = loadavg();
    let bench = opts.has("--bench");
    let given = std::env::var_os("KLP_BIN").filter(|b| !b.is_empty());
    let optimized = given.is_some() || !cfg!(debug_assertions);
    let bin = given.unwrap_or_else(|| env!("CARGO_BIN_EXE_klp-convert").into());
    let bin = std::fs::canonicalize(bin).expect("the klp-convert binary (KLP_BIN)");
    let cache = match std::env::var_os("KLP_CACHE") {
        Some(c) if !c.is_empty() => PathBuf::from(c),
        _ => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/klp-convert"),
    };
    let gen = Generator::new(&cache);
    let scratch = Scratch(cache.join(format!("bench/scratch-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0).expect("scratch directory");
    let have = |tool: &str| {
        let found = command_line(tool, &["--version"]).is_some();
        if !found {
            eprintln!("floor: no {tool}: figures without it (scripts/setup-deps installs it)");
        }
        found
    };
    let runs = opts
        .value("--runs")
        .map_or(5, |r| r.parse().expect("--runs N"));
    let b = Bench {
        bin: bin.clone(),
        scratch: scratch.0.clone(),
        runs: if bench { runs } else { 5 },
        callgrind: !opts.has("--no-callgrind") && have("valgrind"),
        hyperfine: have("hyperfine"),
    };
    // The suite's smoke run measures everything: scripts/setup-deps installs
    // both tools, and a guard that quietly measured less would not guard.
    if !bench {
        for (tool, present) in [("valgrind", b.callgrind), ("hyperfine", b.hyperfine)] {
            assert!(
                present,
                "floor: {tool} missing (scripts/setup-deps installs it)"
            );
        }
    }
    let sizes = if bench { &BENCH } else { &SMOKE };
    eprintln!("floor: measuring {}", bin.display());
    // Under the smoke run, callgrind (slow on the debug binary) counts only
    // what the growth assertion needs.
    let minimal = minimal_workloads(&b, &gen, sizes, &opts);
    let mut rows: Vec<Row> = minimal.into_iter().map(|w| b.measure(w, true)).collect();
    if opts.wants('b') {
        rows.push(b.measure(dropin_workload(&b, &gen, sizes), bench));
    }
    if let Some(w) = opts
        .wants('c')
        .then(|| map_workload(&b, &gen, &cache, bench))
        .flatten()
    {
        rows.push(b.measure(w, bench));
    }
    if let Some(w) = opts
        .wants('k')
        .then(|| kbuild_workload(&b, &cache, opts.has("--include-ignored")))
        .flatten()
    {
        rows.push(b.measure(w, bench));
    }
    let report = report(&rows, &bin, b.runs, &load_before, opts.value("--note"));
    println!("{report}");
    if let Some(path) = opts.value("--results") {
        let label = opts.value("--label").unwrap_or("run".into());
        write_results(Path::new(&path), &label, &report);
    }
    if !bench {
        assert_loosely(&rows, optimized);
    }
}
