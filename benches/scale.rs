//! Scale benchmark: the work must grow linearly with the module. Run with
//! `cargo bench`; under `cargo test` it runs one small size as a smoke test.
//!
//! 1. Conversion: N relocations against 1,000 annotation symbols in `.data`
//!    sections, plus as many ordinary relocations.
//! 2. Resolution against a map (convert with `--symbols`, then `check`): N
//!    distinct klp symbols against a vmlinux of 200,000 symbols, the size of
//!    Debian 6.12's. Each klp symbol is looked up, so a per-symbol scan of
//!    the map would make this quadratic.
//!
//! Modules are assembled by the real GNU as from generated source.

mod common;

use common::assemble_source;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

fn assemble(n: usize, dir: &Path) -> Vec<u8> {
    let mut s = String::new();
    s.push_str(".section .modinfo,\"a\"\n.asciz \"livepatch=Y\"\n");
    for sec in 0..8 {
        let _ = writeln!(s, ".section .data.part{sec},\"aw\"");
        for i in (sec..n).step_by(8) {
            let _ = writeln!(s, ".quad .klp.sym.rela.vmlinux.vmlinux.sym{}.0", i % 1000);
            let _ = writeln!(s, ".quad local_{sec}");
        }
        let _ = writeln!(s, "local_{sec}: .quad 0");
    }
    assemble_source(&s, &format!("scale-{n}"), dir)
}

/// `n` distinct annotated vmlinux symbols, one relocation each.
fn assemble_distinct(n: usize, dir: &Path) -> Vec<u8> {
    let mut s = String::new();
    s.push_str(".section .modinfo,\"a\"\n.asciz \"livepatch=Y\"\n.section .data.refs,\"aw\"\n");
    for i in 0..n {
        let _ = writeln!(s, ".quad .klp.sym.rela.vmlinux.vmlinux.sym{i}.0");
    }
    assemble_source(&s, &format!("distinct-{n}"), dir)
}

/// A vmlinux of `n` symbols `sym0`.. at increasing addresses.
fn big_map(n: usize) -> klp_convert::maps::SymbolMap {
    let mut map = klp_convert::maps::SymbolMap::new();
    let mut symbols = klp_convert::maps::Symbols::new();
    for i in 0..n {
        let name = format!("sym{i}");
        symbols
            .push(klp_convert::maps::MapSymbol {
                kind: 'T',
                addr: Some(0xffff_ffff_8100_0000 + 16 * i as u64),
                ..klp_convert::maps::MapSymbol::named(name.as_bytes())
            })
            .expect("a small map");
    }
    map.set("vmlinux", symbols);
    map
}

/// "time ratio T for size ratio N" against the first (smallest) run: work
/// that grows linearly keeps T close to N.
fn ratio(first: Option<(usize, f64)>, n: usize, took: f64) -> String {
    match first {
        Some((n0, t0)) => format!(
            "  time ratio {:.2} for size ratio {:.0}",
            took / t0,
            n as f64 / n0 as f64
        ),
        None => String::new(),
    }
}

/// Part 2: convert with a map, then check with it.
fn resolution(bench: bool, dir: &Path) {
    let sizes: &[usize] = if bench {
        &[5_000, 20_000, 80_000]
    } else {
        &[1_000]
    };
    let map = big_map(200_000);
    let mut first: Option<(usize, f64)> = None;
    for &n in sizes {
        let input = assemble_distinct(n, dir);
        let t = Instant::now();
        let done = klp_convert::convert::convert_bytes_with(&input, Some(&map))
            .expect("conversion with a map");
        let report = klp_convert::check::check_bytes("bench", &done.bytes, None, Some(&map));
        let took = t.elapsed().as_secs_f64();
        assert_eq!(done.symbols, n, "every klp symbol converted");
        let errors = report.count(klp_convert::finding::Severity::Error);
        assert_eq!(errors, 0, "{:?}", report.findings.first());
        let ratio = ratio(first, n, took);
        println!(
            "resolution: {n:>6} klp symbols against 200,000 map symbols: {:>8.1} ms, {:>6.0} ns/symbol{ratio}",
            took * 1e3,
            took / n as f64 * 1e9
        );
        first.get_or_insert((n, took));
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if bench {
        &[25_000, 100_000, 400_000]
    } else {
        &[2_000]
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-scale");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let mut first: Option<(usize, f64)> = None;
    for &n in sizes {
        let input = assemble(n, &dir);
        let runs = if bench { 3 } else { 1 };
        let mut best = f64::MAX;
        let mut moved = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let done = klp_convert::convert::convert_bytes(&input).expect("conversion");
            best = best.min(t.elapsed().as_secs_f64());
            moved = done.relocations;
        }
        assert_eq!(moved, n, "every annotated relocation moves");
        let per = best / n as f64 * 1e9;
        let ratio = ratio(first, n, best);
        println!(
            "scale: {n:>7} klp relocations ({:>6} KiB in): {:>8.1} ms, {per:>6.0} ns/relocation{ratio}",
            input.len() / 1024,
            best * 1e3
        );
        first.get_or_insert((n, best));
    }
    resolution(bench, &dir);
}
