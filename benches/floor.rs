//! The copy floor (issue 9, point 3): what the tool costs against a `cp` of
//! its input, timed in the same run.
//!
//! Each workload gives three figures:
//!
//! * wall time as a ratio to its floor: the median of `--runs` runs of the
//!   command over the median of as many runs of `cp FLOOR COPY`, the two
//!   interleaved (after one warm-up of each, which also fills the page cache);
//!   and CPU time (user and system) the same way, which the load of a shared
//!   machine changes less;
//! * peak RSS (the child's `ru_maxrss`, from `wait4`) as a ratio to the bytes
//!   the command reads;
//! * instructions under `valgrind --tool=callgrind`, absolute and per input
//!   byte: repeatable to about 0.01% on a noisy machine, where times are not.
//!
//! Beside `cp`, each workload is timed against its **I/O floor**, in the
//! same interleaved rounds: this bench re-run as `floor --io-floor OUT SIZE
//! INPUTS...`, which reads every input the command reads into memory and
//! writes a file of the command's output size (from the bytes read, so it
//! allocates nothing more) and renames it into place. No parsing, no work:
//! the least any tool that reads its input and writes its output pays.
//! `cp` copies inside the kernel and never brings the bytes into a process,
//! and the output of a conversion is larger than its input (a: 21 MB in,
//! 37 MB out), so the I/O floor of a is itself a few times a `cp`.
//!
//! The workloads:
//!
//! * a: minimal form. `gen.py obj --minimal --n 50000 --k 50000` (21 MB,
//!   extended section numbering), `convert IN -o OUT`, floor `cp IN`.
//!   Targets: time ≤ 3×, peak RSS ≤ 2× the input.
//! * b: the v7 drop-in `klp-convert MAP OBJ OUT`, which is `convert OBJ -o OUT
//!   --symbols MAP` (both forms run; they must write the same bytes). MAP:
//!   `gen.py symbols --s 1500000 --k 10000 --modules 3000 --exported 30000`
//!   (27 MB); OBJ: `gen.py obj --full --n 2500 --k 10000`. Floor `cp MAP`.
//!   Targets: time ≤ 5×, peak RSS ≤ 2× the input (MAP and OBJ).
//! * c: map loading. `check PROBE --symbols MAP.json`, MAP.json being Debian
//!   6.1's `System.map` and `modules/` written by `symbols --format json`
//!   (613,000 symbols, 56 MB; from the kernel `scripts/fetch-kernels` keeps
//!   in the cache, skipped without it), PROBE a module whose one klp
//!   relocation resolves in it. Floor `cp MAP.json`. Target: peak RSS ≤ 2×.
//! * d: growth. Workload a at n = 6250, 12500, 25000 and 50000 (a itself):
//!   time, RSS and instructions should grow as the input does.
//!
//! The inputs come from `benches/gen.py` (the project's shared generator,
//! vendored) and are kept in `${KLP_CACHE:-~/.cache/klp-convert}/bench/`,
//! keyed by the generator's hash and arguments; outputs go to a scratch
//! directory there that is removed afterwards.
//!
//! `cargo bench --bench floor` measures the binary built with it (the
//! release profile); `KLP_BIN=PATH` measures another. Options after `--`:
//! `--label NAME` (default `run`), `--results FILE` (put this run, by label,
//! into a results file such as `benches/RESULTS.md` and rebuild its summary:
//! a new label adds a column, a known one is replaced), `--runs N`
//! (default 5), `--only a,b,c,d`, `--no-callgrind`, `--note TEXT`.
//!
//! Under `cargo test --all-targets` (so in `scripts/test`) it is a smoke
//! test: the same workloads at small sizes (15–40 s, plus 10 s of gcc the
//! first time), asserted loosely enough not to flake on a busy 2-core
//! machine: a guard against a 10× regression, not a timing test. For a, b
//! and c: time under [`Bounds::time`] times cp's, peak RSS under 10 times
//! the input plus 16 MiB; for a, instructions per byte under
//! [`Bounds::ir_per_byte`]; and growth, at 4× the input, under 8× the
//! instructions (12× the time without valgrind).

mod common;

use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The sizes of one mode.
struct Sizes {
    /// n (= k) of the minimal-form objects, smallest first; the last one is workload a.
    growth: &'static [usize],
    /// The arguments of `gen.py` for b's map.
    symbols: &'static [&'static str],
    /// The arguments of `gen.py` for b's object.
    full: &'static [&'static str],
}

const BENCH: Sizes = Sizes {
    growth: &[6_250, 12_500, 25_000, 50_000],
    symbols: &[
        "symbols",
        "--s",
        "1500000",
        "--k",
        "10000",
        "--modules",
        "3000",
        "--exported",
        "30000",
    ],
    full: &["obj", "--full", "--n", "2500", "--k", "10000"],
};

/// A 25th of the bench, the growth pair 4× apart; the inputs take about ten
/// seconds to generate, once.
const SMOKE: Sizes = Sizes {
    growth: &[500, 2_000],
    symbols: &[
        "symbols",
        "--s",
        "60000",
        "--k",
        "1000",
        "--modules",
        "120",
        "--exported",
        "1200",
    ],
    full: &["obj", "--full", "--n", "250", "--k", "1000"],
};

/// The smoke run's bounds for one kind of binary: loose enough for a busy
/// 2-core machine, a guard against a 10× regression, not a timing test.
struct Bounds {
    /// Time over cp's: whichever is lower of the two medians' ratio and the
    /// two best runs' ratio. At the smoke sizes cp takes 2–8 ms, mostly fork
    /// and exec; before issue 9's work the worst of a, b and c was 47× with
    /// the release binary and 163× with the unoptimized one `cargo test`
    /// builds, measured at a load average of 5 on two cores.
    time: f64,
    /// Instructions per input byte of the minimal form (a, d): exact, so
    /// this one cannot flake; before, 98 (release) and 546 (unoptimized).
    ir_per_byte: f64,
}

const OPTIMIZED: Bounds = Bounds {
    time: 300.0,
    ir_per_byte: 1_000.0,
};
const UNOPTIMIZED: Bounds = Bounds {
    time: 1_000.0,
    ir_per_byte: 5_000.0,
};
/// Peak RSS below this many times the input, plus [`SMOKE_RSS_SLACK`].
const SMOKE_RSS_PER_INPUT: u64 = 10;
const SMOKE_RSS_SLACK: u64 = 16 << 20;
/// Growth: at s× the input, instructions below 2s× (time below 3s× when
/// there is no valgrind); quadratic work would give s².
const SMOKE_GROWTH_IR: f64 = 2.0;
const SMOKE_GROWTH_TIME: f64 = 3.0;

/// The command line after `--` (cargo's own `--bench` and test-harness flags are ignored).
struct Options {
    bench: bool,
    label: String,
    results: Option<PathBuf>,
    runs: usize,
    only: Option<String>,
    callgrind: bool,
    note: Option<String>,
}

impl Options {
    fn parse() -> Options {
        let mut o = Options {
            bench: false,
            label: "run".into(),
            results: None,
            runs: 5,
            only: None,
            callgrind: true,
            note: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
            match a.as_str() {
                "--bench" => o.bench = true,
                "--label" => o.label = value(),
                "--results" => o.results = Some(value().into()),
                "--runs" => o.runs = value().parse().expect("--runs N"),
                "--only" => o.only = Some(value()),
                "--no-callgrind" => o.callgrind = false,
                "--note" => o.note = Some(value()),
                _ => {}
            }
        }
        o
    }

    fn wants(&self, workload: char) -> bool {
        self.only.as_ref().is_none_or(|w| w.contains(workload))
    }
}

/// `${KLP_CACHE:-~/.cache/klp-convert}`, as the scripts have it.
fn cache_root() -> PathBuf {
    match std::env::var_os("KLP_CACHE") {
        Some(c) if !c.is_empty() => PathBuf::from(c),
        _ => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/klp-convert"),
    }
}

/// FNV-1a, 64 bits: the generator's hash in its cache directory's name.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `benches/gen.py` and its cache directory.
struct Generator {
    script: PathBuf,
    dir: PathBuf,
}

impl Generator {
    fn new(cache: &Path) -> Generator {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/gen.py");
        let hash = fnv1a(&std::fs::read(&script).expect("read benches/gen.py"));
        let dir = cache.join(format!("bench/gen-{hash:016x}"));
        Generator { script, dir }
    }

    /// The input `gen.py ARGS` makes, generated on first use. gcc records
    /// the file's name in the object, so it is generated under its final
    /// name in a private directory and then renamed into the cache.
    fn input(&self, args: &[&str], ext: &str) -> PathBuf {
        let words: Vec<&str> = args.iter().map(|a| a.trim_start_matches('-')).collect();
        let name = format!("{}.{ext}", words.join("-"));
        let path = self.dir.join(&name);
        if path.exists() {
            return path;
        }
        let tmp = self.dir.join(format!("tmp-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).expect("cache directory");
        eprintln!("floor: generating {name} into {}", self.dir.display());
        let st = Command::new("python3")
            .arg(&self.script)
            .args(args)
            .arg("-o")
            .arg(tmp.join(&name))
            .status()
            .expect("run python3 benches/gen.py");
        assert!(st.success(), "gen.py {}", args.join(" "));
        std::fs::rename(tmp.join(&name), &path).expect("rename into the cache");
        std::fs::remove_dir_all(&tmp).expect("remove the generator's directory");
        path
    }
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One run of a command: wall time, CPU time (user and system) and peak RSS.
struct Sample {
    secs: f64,
    cpu_secs: f64,
    rss_kib: u64,
}

/// Run `argv` (stdout discarded, stderr to `log`) and wait for it with
/// `wait4`, which gives this child's own CPU time and peak RSS; it must succeed.
fn run_measured(argv: &[OsString], log: &Path) -> Sample {
    let err = std::fs::File::create(log).expect("stderr log");
    let start = Instant::now();
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", argv[0]));
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    let mut status = 0;
    // SAFETY: rusage is plain data, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our child, not yet reaped (`child` is never
        // waited for); `status` and `usage` are valid for writes.
        let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if got == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "wait4: {e}");
    }
    let secs = start.elapsed().as_secs_f64();
    drop(child);
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    assert!(
        ok,
        "{argv:?} failed (wait status {status}):\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    Sample {
        secs,
        cpu_secs: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        rss_kib: u64::try_from(usage.ru_maxrss).expect("ru_maxrss"),
    }
}

/// Run a command that prepares something; it must succeed.
fn run_checked(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Instructions executed by `argv` under callgrind.
fn instructions(argv: &[OsString], scratch: &Path) -> u64 {
    let profile = scratch.join("callgrind.out");
    let out = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", profile.display()))
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .expect("run valgrind");
    let _ = std::fs::remove_file(&profile);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "callgrind {argv:?}:\n{err}");
    err.lines()
        .find_map(|l| l.split_once("Collected :")?.1.trim().parse().ok())
        .unwrap_or_else(|| panic!("no instruction count in callgrind's output:\n{err}"))
}

fn have_valgrind() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What to run, and against which floor.
struct Workload {
    id: String,
    what: String,
    /// The command, the binary first.
    argv: Vec<OsString>,
    /// The file `cp` copies.
    floor: PathBuf,
    /// The bytes the command reads.
    input_bytes: u64,
    /// The files the command reads, for its I/O floor.
    reads: Vec<PathBuf>,
    /// n, for the growth rows.
    growth: Option<usize>,
    time_target: Option<f64>,
    rss_target: Option<f64>,
}

/// The figures of one workload in one run.
#[derive(Clone, Serialize, Deserialize)]
struct Row {
    id: String,
    what: String,
    input_bytes: u64,
    floor_bytes: u64,
    runs: usize,
    floor_median_s: f64,
    floor_min_s: f64,
    median_s: f64,
    min_s: f64,
    /// Medians of user and system time: what the load on a shared machine
    /// changes least; the gap to the wall time is mostly waiting (fsync).
    #[serde(default)]
    floor_cpu_median_s: f64,
    #[serde(default)]
    cpu_median_s: f64,
    rss_kib: u64,
    ir: Option<u64>,
    growth: Option<usize>,
    time_target: Option<f64>,
    rss_target: Option<f64>,
    /// The command's output size (0: it writes none).
    #[serde(default)]
    out_bytes: Option<u64>,
    /// Median wall time of the I/O floor (none in runs made before it was measured).
    #[serde(default)]
    io_median_s: Option<f64>,
    /// Peak RSS of the I/O floor.
    #[serde(default)]
    io_rss_kib: Option<u64>,
}

impl Row {
    /// The command's time over its I/O floor's.
    fn io_ratio(&self) -> Option<f64> {
        self.io_median_s.map(|io| self.median_s / io)
    }

    /// The I/O floor's time over cp's.
    fn io_over_cp(&self) -> Option<f64> {
        self.io_median_s.map(|io| io / self.floor_median_s)
    }

    fn time_ratio(&self) -> f64 {
        self.median_s / self.floor_median_s
    }

    fn cpu_ratio(&self) -> f64 {
        self.cpu_median_s / self.floor_cpu_median_s
    }

    fn rss_bytes(&self) -> u64 {
        self.rss_kib * 1024
    }

    fn rss_ratio(&self) -> f64 {
        self.rss_bytes() as f64 / self.input_bytes as f64
    }

    fn ir_per_byte(&self) -> Option<f64> {
        self.ir.map(|ir| ir as f64 / self.input_bytes as f64)
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Everything a measurement needs.
struct Bench {
    bin: PathBuf,
    scratch: PathBuf,
    runs: usize,
    callgrind: bool,
}

impl Bench {
    fn bin_cmd(&self, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
        std::iter::once(self.bin.as_os_str())
            .chain(args.iter().map(|a| a.as_ref()))
            .map(OsString::from)
            .collect()
    }

    fn out(&self) -> PathBuf {
        self.scratch.join("out")
    }

    /// Interleaved runs of the command and of its floor, then callgrind.
    fn measure(&self, w: &Workload, callgrind: bool) -> Row {
        let copy = self.scratch.join("copy");
        let cp: Vec<OsString> = vec!["cp".into(), w.floor.clone().into(), copy.clone().into()];
        let log = self.scratch.join("stderr");
        // A warm-up of the command (which fills the page cache) gives the
        // output size the I/O floor writes.
        let _ = std::fs::remove_file(self.out());
        run_measured(&w.argv, &log);
        let out_bytes = std::fs::metadata(self.out()).map_or(0, |m| m.len());
        let io: Vec<OsString> = [
            std::env::current_exe()
                .expect("this bench")
                .into_os_string(),
            "--io-floor".into(),
            copy.clone().into(),
            out_bytes.to_string().into(),
        ]
        .into_iter()
        .chain(w.reads.iter().map(|p| p.clone().into()))
        .collect();
        let (mut floor, mut times, mut rss) = (Vec::new(), Vec::new(), 0);
        let (mut floor_cpu, mut cpu) = (Vec::new(), Vec::new());
        let (mut io_times, mut io_rss) = (Vec::new(), 0);
        for round in 0..=self.runs {
            // The three in a rotating order: none always runs first.
            for k in 0..3 {
                let which = (round + k) % 3;
                let _ = std::fs::remove_file(&copy);
                let _ = std::fs::remove_file(self.out());
                let argv = [&cp, &w.argv, &io][which];
                let s = run_measured(argv, &log);
                match (round, which) {
                    (0, _) => {}
                    (_, 0) => {
                        floor.push(s.secs);
                        floor_cpu.push(s.cpu_secs);
                    }
                    (_, 1) => {
                        times.push(s.secs);
                        cpu.push(s.cpu_secs);
                        rss = rss.max(s.rss_kib);
                    }
                    _ => {
                        io_times.push(s.secs);
                        io_rss = io_rss.max(s.rss_kib);
                    }
                }
            }
        }
        let ir = (self.callgrind && callgrind).then(|| instructions(&w.argv, &self.scratch));
        let row = Row {
            id: w.id.clone(),
            what: w.what.clone(),
            input_bytes: w.input_bytes,
            floor_bytes: size(&w.floor),
            runs: self.runs,
            floor_median_s: median(&mut floor.clone()),
            floor_min_s: min(&floor),
            median_s: median(&mut times.clone()),
            min_s: min(&times),
            floor_cpu_median_s: median(&mut floor_cpu),
            cpu_median_s: median(&mut cpu),
            rss_kib: rss,
            ir,
            growth: w.growth,
            time_target: w.time_target,
            rss_target: w.rss_target,
            out_bytes: Some(out_bytes),
            io_median_s: Some(median(&mut io_times)),
            io_rss_kib: Some(io_rss),
        };
        eprintln!(
            "floor: {:<6} {:>8} ms against cp {:>7} ms: {:>5.1}× (best runs {:.1}×), against the I/O floor {} ms: {:.1}×; peak RSS {:>6} MB, {:.1}× the input{}",
            row.id,
            ms(row.median_s),
            ms(row.floor_median_s),
            row.time_ratio(),
            row.min_s / row.floor_min_s,
            row.io_median_s.map_or("—".into(), ms),
            row.io_ratio().unwrap_or(f64::NAN),
            mb(row.rss_bytes()),
            row.rss_ratio(),
            row.ir.map(|ir| format!("; {} Ir", thousands(ir))).unwrap_or_default()
        );
        row
    }
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .len()
}

/// Workloads a and d, as far as `opts` wants them: the minimal form at
/// each size; the largest is a.
fn minimal_workloads(b: &Bench, gen: &Generator, sizes: &Sizes, opts: &Options) -> Vec<Workload> {
    let smallest = *sizes.growth.first().expect("a size");
    let largest = *sizes.growth.last().expect("a size");
    sizes
        .growth
        .iter()
        .filter(|&&n| opts.wants(if n == largest { 'a' } else { 'd' }))
        .map(|&n| {
            let ns = n.to_string();
            let args = ["obj", "--minimal", "--n", &ns, "--k", &ns];
            let input = gen.input(&args, "o");
            let id = if n == largest {
                "a".to_string()
            } else {
                format!("d {}×", n / smallest)
            };
            let (time_target, rss_target) = if n == largest {
                (Some(3.0), Some(2.0))
            } else {
                (None, None)
            };
            Workload {
                id,
                what: format!("`gen.py {}`: `convert IN -o OUT`", args.join(" ")),
                argv: b.bin_cmd(&[&"convert", &input, &"-o", &b.out()]),
                input_bytes: size(&input),
                reads: vec![input.clone()],
                floor: input,
                growth: Some(n),
                time_target,
                rss_target,
            }
        })
        .collect()
}

/// Workload b: the v7 drop-in; the `convert --symbols` form must write the same bytes.
fn dropin_workload(b: &Bench, gen: &Generator, sizes: &Sizes) -> Workload {
    let map = gen.input(sizes.symbols, "klp");
    let obj = gen.input(sizes.full, "o");
    let argv = b.bin_cmd(&[&map, &obj, &b.out()]);
    let long = b.scratch.join("long");
    run_checked(Command::new(&argv[0]).args(&argv[1..]));
    run_checked(
        Command::new(&b.bin)
            .arg("convert")
            .arg(&obj)
            .arg("-o")
            .arg(&long)
            .arg("--symbols")
            .arg(&map),
    );
    assert!(
        std::fs::read(b.out()).expect("drop-in output")
            == std::fs::read(&long).expect("convert output"),
        "`klp-convert MAP OBJ OUT` and `convert OBJ -o OUT --symbols MAP` differ"
    );
    std::fs::remove_file(&long).expect("remove");
    Workload {
        id: "b".into(),
        what: format!(
            "v7 drop-in `klp-convert MAP OBJ OUT`, MAP `gen.py {}`, OBJ `gen.py {}`; floor: cp MAP",
            sizes.symbols.join(" "),
            sizes.full.join(" ")
        ),
        input_bytes: size(&map) + size(&obj),
        reads: vec![map.clone(), obj],
        argv,
        floor: map,
        growth: None,
        time_target: Some(5.0),
        rss_target: Some(2.0),
    }
}

/// Workload c: `check PROBE --symbols MAP.json`, PROBE referring to `name` in vmlinux.
fn map_workload(b: &Bench, json: PathBuf, name: &str, what: String) -> Workload {
    let source = format!(
        ".section .modinfo,\"a\"\n.asciz \"livepatch=Y\"\n.section .data.refs,\"aw\"\n\
         .quad .klp.sym.rela.vmlinux.vmlinux.{name}.0\n"
    );
    common::assemble_source(&source, "probe", &b.scratch);
    let probe = b.scratch.join("probe.ko");
    run_checked(
        Command::new(&b.bin)
            .arg("convert")
            .arg(b.scratch.join("probe.o"))
            .arg("-o")
            .arg(&probe),
    );
    Workload {
        id: "c".into(),
        what,
        argv: b.bin_cmd(&[&"check", &probe, &"--symbols", &json]),
        input_bytes: size(&json) + size(&probe),
        reads: vec![json.clone(), probe],
        floor: json,
        growth: None,
        time_target: None,
        rss_target: Some(2.0),
    }
}

/// c for the bench: Debian 6.1's map, made once from the cached kernel.
fn debian_map_workload(b: &Bench, cache: &Path) -> Option<Workload> {
    let kernel = cache.join("kernels/6.1");
    let (system_map, modules) = (kernel.join("dbg/System.map"), kernel.join("modules"));
    let Ok(release) = std::fs::read_to_string(kernel.join("release")) else {
        eprintln!(
            "floor: c skipped: no Debian 6.1 kernel in {} (scripts/fetch-kernels)",
            kernel.display()
        );
        return None;
    };
    let json = cache.join(format!("bench/debian-{}.json", release.trim()));
    if !json.exists() {
        eprintln!("floor: writing {}", json.display());
        run_checked(
            Command::new(&b.bin)
                .arg("symbols")
                .arg(&system_map)
                .arg(&modules)
                .arg("--format")
                .arg("json")
                .arg("-o")
                .arg(&json),
        );
    }
    let what = format!(
        "map loading, `check PROBE --symbols MAP.json`: MAP.json = `symbols System.map modules/ --format json` of Debian {}",
        release.trim()
    );
    Some(map_workload(b, json, "saved_command_line", what))
}

/// c for the smoke: b's map as JSON; the probe refers to its first vmlinux symbol.
fn smoke_map_workload(b: &Bench, gen: &Generator) -> Workload {
    let klp = gen.input(SMOKE.symbols, "klp");
    let json = b.scratch.join("map.json");
    run_checked(
        Command::new(&b.bin)
            .arg("symbols")
            .arg(&klp)
            .args(["--format", "json", "-o"])
            .arg(&json),
    );
    let text = std::fs::read_to_string(&klp).expect("read the map");
    let name = text
        .lines()
        .skip_while(|l| *l != "*vmlinux")
        .nth(1)
        .expect("a vmlinux symbol")
        .to_string();
    let what =
        "map loading, `check PROBE --symbols MAP.json`: MAP.json = `symbols` of b's map as JSON"
            .to_string();
    map_workload(b, json, &name, what)
}

/// The machine and the binary, for the results file.
#[derive(Clone, Serialize, Deserialize)]
struct Machine {
    date: String,
    nproc: usize,
    cpu: String,
    kernel: String,
    rustc: String,
    valgrind: Option<String>,
    binary: String,
    source: String,
    load_before: String,
    load_after: String,
    note: Option<String>,
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Where the binary was built: the git tree around it, its commit, and
/// whether its src/ differs from that commit.
fn source_of(bin: &Path) -> String {
    let dir = bin.parent().unwrap_or(Path::new("."));
    let dir = dir.to_str().unwrap_or(".");
    let git = |args: &[&str]| command_line("git", &[&["-C", dir], args].concat());
    let (Some(top), Some(commit)) = (
        git(&["rev-parse", "--show-toplevel"]),
        git(&["rev-parse", "--short", "HEAD"]),
    ) else {
        return "outside a git tree".into();
    };
    let clean = Command::new("git")
        .args(["-C", dir, "diff", "--quiet", "HEAD", "--", ":/src"])
        .status()
        .is_ok_and(|s| s.success());
    let changed = if clean { "" } else { ", src/ changed since" };
    format!("built in {top} at {commit}{changed}")
}

fn machine(bin: &Path, load_before: String, note: Option<String>) -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    Machine {
        date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default(),
        nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        rustc: command_line("rustc", &["--version"]).unwrap_or_default(),
        valgrind: command_line("valgrind", &["--version"]),
        binary: bin.display().to_string(),
        source: source_of(bin),
        load_before,
        load_after: loadavg(),
        note,
    }
}

/// One labelled run, as kept in the results file.
#[derive(Clone, Serialize, Deserialize)]
struct Run {
    label: String,
    machine: Machine,
    rows: Vec<Row>,
}

fn ms(secs: f64) -> String {
    let ms = secs * 1e3;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.1}")
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn target(t: Option<f64>) -> String {
    t.map(|t| format!("≤{t}×")).unwrap_or_else(|| "—".into())
}

/// The figures of one run, one workload a line.
fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| workload | input MB | output MB | cp ms | I/O floor ms | klp-convert ms | time ÷ cp | target | time ÷ I/O floor | CPU ÷ cp's | peak RSS MB | RSS ÷ input | target | Ir | Ir / input byte |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.1}× | {} | {} | {:.1}× | {} | {:.1}× | {} | {} | {} |",
            r.id,
            mb(r.input_bytes),
            r.out_bytes.map_or("—".into(), mb),
            ms(r.floor_median_s),
            r.io_median_s.map_or("—".into(), ms),
            ms(r.median_s),
            r.time_ratio(),
            target(r.time_target),
            r.io_ratio().map_or("—".into(), |x| format!("{x:.1}×")),
            r.cpu_ratio(),
            mb(r.rss_bytes()),
            r.rss_ratio(),
            target(r.rss_target),
            r.ir.map_or("—".into(), thousands),
            r.ir_per_byte().map_or("—".into(), |i| format!("{i:.0}")),
        );
    }
    s
}

/// One size of workload d against the smallest: each figure's ratio beside
/// the input's (linear work keeps them equal).
struct Growth {
    n: usize,
    input: f64,
    time: f64,
    rss: f64,
    ir: Option<f64>,
}

fn growth(rows: &[Row]) -> Vec<Growth> {
    let grown: Vec<&Row> = rows.iter().filter(|r| r.growth.is_some()).collect();
    let Some(first) = grown.first() else {
        return Vec::new();
    };
    grown
        .iter()
        .map(|r| Growth {
            n: r.growth.unwrap_or(0),
            input: r.input_bytes as f64 / first.input_bytes as f64,
            time: r.median_s / first.median_s,
            rss: r.rss_kib as f64 / first.rss_kib as f64,
            ir: r.ir.zip(first.ir).map(|(a, b)| a as f64 / b as f64),
        })
        .collect()
}

fn growth_table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| n | input × | time × | peak RSS × | Ir × |\n| ---: | ---: | ---: | ---: | ---: |\n",
    );
    for g in growth(rows) {
        let ir = g.ir.map_or("—".into(), |i| format!("{i:.2}"));
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {:.2} | {ir} |",
            g.n, g.input, g.time, g.rss
        );
    }
    s
}

fn machine_lines(m: &Machine) -> String {
    let mut s = format!(
        "- date: {}\n- machine: {} cores (`nproc`), {}, Linux {}, load average {} before and {} after\n\
         - built by: {}; {}\n- binary: `{}`, {}\n",
        m.date,
        m.nproc,
        m.cpu,
        m.kernel,
        m.load_before,
        m.load_after,
        m.rustc,
        m.valgrind.as_deref().unwrap_or("no valgrind"),
        m.binary,
        m.source
    );
    if let Some(note) = &m.note {
        let _ = writeln!(s, "- note: {note}");
    }
    s
}

fn report(run: &Run) -> String {
    let r = run.rows.first().map_or(0, |r| r.runs);
    let mut inputs = String::new();
    for row in &run.rows {
        let _ = writeln!(inputs, "- {}: {}", row.id, row.what);
    }
    format!(
        "{}\nMedians of {r} runs, each interleaved with a `cp` of the floor file; Ir from one run under callgrind.\n\n{}\n{inputs}\nGrowth (workload d; the last row is a):\n\n{}",
        machine_lines(&run.machine),
        table(&run.rows),
        growth_table(&run.rows)
    )
}

const DATA: &str = "<!-- klp-convert-bench-run ";

/// The summary: one line a figure, one column a run.
fn summary(runs: &[Run]) -> String {
    let mut s = String::from("| figure | target |");
    for run in runs {
        let _ = write!(s, " {} |", run.label);
    }
    s.push_str("\n| --- | --- |");
    s.push_str(&" ---: |".repeat(runs.len()));
    s.push('\n');
    let Some(first) = runs.first() else { return s };
    /// A line of the summary: its name, the figure from a row, its target.
    struct Figure(&'static str, fn(&Row) -> Option<String>, fn(&Row) -> String);
    let figures = [
        Figure(
            "time ÷ cp",
            |r| Some(format!("{:.1}×", r.time_ratio())),
            |r| target(r.time_target),
        ),
        Figure(
            "I/O floor ÷ cp",
            |r| r.io_over_cp().map(|x| format!("{x:.1}×")),
            |_| "—".into(),
        ),
        Figure(
            "time ÷ I/O floor",
            |r| r.io_ratio().map(|x| format!("{x:.1}×")),
            |_| "—".into(),
        ),
        Figure(
            "peak RSS ÷ input",
            |r| Some(format!("{:.1}×", r.rss_ratio())),
            |r| target(r.rss_target),
        ),
        Figure(
            "Ir / input byte",
            |r| r.ir_per_byte().map(|i| format!("{i:.0}")),
            |_| "—".into(),
        ),
    ];
    let headline = first
        .rows
        .iter()
        .filter(|r| r.growth.is_none() || r.id == "a");
    for row in headline {
        for Figure(name, figure, goal) in &figures {
            let _ = write!(s, "| {}: {name} | {} |", row.id, goal(row));
            for run in runs {
                let cell = run.rows.iter().find(|r| r.id == row.id).and_then(figure);
                let _ = write!(s, " {} |", cell.unwrap_or_else(|| "—".into()));
            }
            s.push('\n');
        }
    }
    // Growth from the first run's smallest size to its largest; a run
    // measured from another smallest size has no figure here.
    if let [base, .., last] = growth(&first.rows).as_slice() {
        type Pick = fn(&Growth) -> Option<f64>;
        let picks: [(&str, Pick); 3] = [
            ("time", |g| Some(g.time)),
            ("peak RSS", |g| Some(g.rss)),
            ("Ir", |g| g.ir),
        ];
        for (name, pick) in picks {
            let _ = write!(
                s,
                "| d: {name} at {:.1}× the input (n = {}) | ≈{:.1}× |",
                last.input, last.n, last.input
            );
            for run in runs {
                let grown = growth(&run.rows);
                let cell = match grown.first() {
                    Some(b) if b.n == base.n => grown.iter().find(|g| g.n == last.n),
                    _ => None,
                };
                let cell = cell.and_then(pick);
                let _ = write!(s, " {} |", cell.map_or("—".into(), |c| format!("{c:.1}×")));
            }
            s.push('\n');
        }
    }
    s
}

const HEADER: &str = "\
# Benchmarks: klp-convert against its copy floor

Written by `benches/floor.rs` (issue 9, point 3); its doc comment describes
the workloads, and `benches/gen.py` makes the inputs. To add or replace a
run (a new label adds a column to the summary):

```sh
KLP_BIN=/path/to/klp-convert cargo bench --bench floor -- --label after --results benches/RESULTS.md
```

Without `KLP_BIN` it measures the release binary cargo builds. Each time is
a median of interleaved runs, divided by the median `cp` of the floor file
(a, d: the object; b: the map; c: the JSON map) in the same run, and by
the median of the workload's I/O floor: a process that reads what the
command reads and writes a file of the command's output size, with no work
between (`cp` copies inside the kernel; a conversion must bring its input
into memory and write a larger output). Peak RSS is
the child's `ru_maxrss`, divided by the bytes the command reads. CPU is user and
system time (medians), which the load of a shared machine changes less than
wall time; the gap between the two is mostly waiting (the output's fsync).
Ir is the instruction count under `valgrind --tool=callgrind`, repeatable
to about 0.01% where times on these shared machines are not.

- a: minimal form, 50,000 functions and externs, 200,000 relocations, 100,000 sections (extended numbering): `convert IN -o OUT`
- b: the v7 drop-in `klp-convert symbols.klp in.o out.o` against a 1.5-million-line symbols.klp
- c: map loading: `check PROBE --symbols MAP.json`, Debian 6.1's 613,000 symbols as JSON
- d: growth: a at 1×, 2×, 4× and 8× the input
";

fn render(runs: &[Run]) -> String {
    let mut s = format!("{HEADER}\n## Summary\n\n{}", summary(runs));
    for run in runs {
        let json = serde_json::to_string(run).expect("serialize a run");
        assert!(!json.contains("-->"), "a run's data would end its comment");
        let _ = write!(
            s,
            "\n## Run: {}\n\n{}\n{DATA}{json} -->\n",
            run.label,
            report(run)
        );
    }
    s
}

/// Put `run` into the results file: in place of the run with its label, or last.
fn write_results(path: &Path, run: Run) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut runs: Vec<Run> = text
        .lines()
        .filter_map(|l| l.strip_prefix(DATA)?.strip_suffix(" -->"))
        .map(|j| serde_json::from_str(j).expect("a run in the results file"))
        .collect();
    match runs.iter_mut().find(|r| r.label == run.label) {
        Some(old) => *old = run,
        None => runs.push(run),
    }
    std::fs::write(path, render(&runs)).expect("write the results file");
    eprintln!("floor: wrote {}", path.display());
}

/// The smoke run's assertions.
fn assert_loosely(rows: &[Row], optimized: bool) {
    let bounds = if optimized { &OPTIMIZED } else { &UNOPTIMIZED };
    for r in rows {
        let time = r.time_ratio().min(r.min_s / r.floor_min_s);
        if r.growth.is_none() || r.id == "a" {
            assert!(
                time < bounds.time,
                "{}: {time:.1}× the time of cp (bound {}×)",
                r.id,
                bounds.time
            );
        }
        if let Some(ir) = r.ir_per_byte() {
            assert!(
                ir < bounds.ir_per_byte,
                "{}: {ir:.0} instructions per input byte (bound {})",
                r.id,
                bounds.ir_per_byte
            );
        }
        let limit = SMOKE_RSS_PER_INPUT * r.input_bytes + SMOKE_RSS_SLACK;
        assert!(
            r.rss_bytes() < limit,
            "{}: peak RSS {} MB, bound {} MB",
            r.id,
            mb(r.rss_bytes()),
            mb(limit)
        );
    }
    let grown: Vec<&Row> = rows.iter().filter(|r| r.growth.is_some()).collect();
    if let (Some(first), Some(last)) = (grown.first(), grown.last()) {
        let size = last.input_bytes as f64 / first.input_bytes as f64;
        let (what, ratio, bound) = match (last.ir, first.ir) {
            (Some(l), Some(f)) => ("instructions", l as f64 / f as f64, SMOKE_GROWTH_IR * size),
            _ => (
                "best time",
                last.min_s / first.min_s,
                SMOKE_GROWTH_TIME * size,
            ),
        };
        assert!(
            ratio < bound,
            "growth: {what} {ratio:.1}× for {size:.1}× the input (bound {bound:.1}×)"
        );
    }
}

/// `--io-floor OUT SIZE INPUTS...`: read every input into memory, write
/// SIZE bytes (the inputs' bytes over and over) to a temporary file beside
/// OUT and rename it to OUT. What a converter cannot do without.
fn io_floor(args: &[String]) {
    let [out, size, inputs @ ..] = args else {
        panic!("--io-floor OUT SIZE INPUTS...");
    };
    let size: usize = size.parse().expect("SIZE");
    let read: Vec<Vec<u8>> = inputs
        .iter()
        .map(|p| std::fs::read(p).expect("read an input"))
        .collect();
    let out = Path::new(out);
    let tmp = out.with_extension("io-floor-tmp");
    let mut file = std::fs::File::create(&tmp).expect("create the output");
    let mut left = size;
    while left > 0 {
        let before = left;
        for bytes in read.iter().filter(|b| !b.is_empty()) {
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
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--io-floor") {
        return io_floor(&args[2..]);
    }
    let opts = Options::parse();
    let load_before = loadavg();
    let given = std::env::var_os("KLP_BIN").filter(|b| !b.is_empty());
    let optimized = given.is_some() || !cfg!(debug_assertions);
    let bin =
        std::fs::canonicalize(given.unwrap_or_else(|| env!("CARGO_BIN_EXE_klp-convert").into()))
            .expect("the klp-convert binary (KLP_BIN)");
    let cache = cache_root();
    let gen = Generator::new(&cache);
    let scratch = Scratch(cache.join(format!("bench/scratch-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0).expect("scratch directory");
    let callgrind = opts.callgrind && have_valgrind();
    if opts.callgrind && !callgrind {
        eprintln!("floor: no valgrind: no instruction counts (scripts/setup-deps installs it)");
    }
    let b = Bench {
        bin: bin.clone(),
        scratch: scratch.0.clone(),
        runs: if opts.bench { opts.runs } else { 5 },
        callgrind,
    };
    let sizes = if opts.bench { &BENCH } else { &SMOKE };
    eprintln!("floor: measuring {}", bin.display());
    let mut rows = Vec::new();
    // Under the smoke run, callgrind (slow on the debug binary) counts only
    // what the growth assertion needs.
    for w in minimal_workloads(&b, &gen, sizes, &opts) {
        rows.push(b.measure(&w, true));
    }
    if opts.wants('b') {
        rows.push(b.measure(&dropin_workload(&b, &gen, sizes), opts.bench));
    }
    if opts.wants('c') {
        let w = if opts.bench {
            debian_map_workload(&b, &cache)
        } else {
            Some(smoke_map_workload(&b, &gen))
        };
        if let Some(w) = w {
            rows.push(b.measure(&w, opts.bench));
        }
    }
    let run = Run {
        label: opts.label.clone(),
        machine: machine(&bin, load_before, opts.note.clone()),
        rows,
    };
    println!("{}", report(&run));
    if let Some(path) = &opts.results {
        write_results(path, run.clone());
    }
    if !opts.bench {
        assert_loosely(&run.rows, optimized);
    }
}
