//! Scale benchmark: conversion time and output size for modules with many
//! relocations, to show the work grows linearly. Run with `cargo bench`;
//! under `cargo test` it runs one small size as a smoke test.
//!
//! Each module is assembled by the real GNU as from generated source: N
//! relocations against 1,000 annotation symbols in `.data` and `.text`
//! sections, plus as many ordinary relocations.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
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
    let src = dir.join(format!("scale-{n}.s"));
    let obj = dir.join(format!("scale-{n}.o"));
    std::fs::write(&src, s).expect("write assembly");
    let st = Command::new("gcc")
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .expect("run gcc");
    assert!(st.success(), "assembling {}", src.display());
    std::fs::read(&obj).expect("read object")
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
        let ratio = match first {
            Some((n0, t0)) => format!(
                "  time ratio {:.2} for size ratio {:.0}",
                best / t0,
                n as f64 / n0 as f64
            ),
            None => String::new(),
        };
        println!(
            "scale: {n:>7} klp relocations ({:>6} KiB in): {:>8.1} ms, {per:>6.0} ns/relocation{ratio}",
            input.len() / 1024,
            best * 1e3
        );
        first.get_or_insert((n, best));
    }
}
