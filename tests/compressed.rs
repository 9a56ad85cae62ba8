//! One reader for every command: `show`, `convert` and `check` take
//! `.ko.xz` and `.ko.zst` modules alike, decompression is bounded, and
//! `convert` writes modules uncompressed (so it refuses to replace a
//! compressed module in place).

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// `ko` packed by the zstd tool into `zst` (with the frame's checksum, as
/// kbuild's `zstd -T0 --rm --long=27` writes it): its bytes.
fn zstd_cli(ko: &Path, zst: &Path) -> Vec<u8> {
    let _ = std::fs::remove_file(zst);
    let st = std::process::Command::new("zstd")
        .args(["-q", "--check"])
        .arg(ko)
        .arg("-o")
        .arg(zst)
        .status()
        .expect("zstd (scripts/setup-deps installs it)");
    assert!(st.success());
    std::fs::read(zst).unwrap()
}

/// An annotated livepatch object, unconverted: (its path, its bytes).
fn annotated(test: &str) -> (PathBuf, Vec<u8>) {
    let dir = scratch(test);
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}extern int v KLP_RELOC_SYMBOL(vmlinux, vmlinux, v);\n\
             int f(void) {{ return v; }}\n"
        ),
        &obj,
    );
    let bytes = std::fs::read(&obj).unwrap();
    (obj, bytes)
}

fn run(args: &[&Path]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(|p| p.to_str().unwrap()).collect();
    klp_convert(&args)
}

#[test]
fn show_and_convert_read_xz_and_zstd() {
    let (obj, plain) = annotated("compressed_show_convert");
    let dir = obj.parent().unwrap();
    let want = dir.join("want.ko");
    convert_ok(&obj, &want);
    let want = std::fs::read(&want).unwrap();
    let show = |p: &Path| {
        run(&[
            Path::new("show"),
            p,
            Path::new("--format"),
            Path::new("json"),
        ])
    };
    let want_show = show(&obj);
    // Unconverted: show lists the annotation and the error it is.
    assert_eq!(want_show.status.code(), Some(1), "{}", stderr(&want_show));
    let want_json: serde_json::Value = serde_json::from_slice(&want_show.stdout).unwrap();
    let rules: Vec<&str> = want_json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    // An object file: no note that its patch table was not found.
    assert_eq!(rules, ["unconverted-annotation"]);
    for (name, bytes) in [("lp.ko.xz", xz(&plain)), ("lp.ko.zst", zstd(&plain))] {
        let input = dir.join(name);
        std::fs::write(&input, &bytes).unwrap();

        let r = show(&input);
        assert_eq!(r.status.code(), Some(1), "{name}: {}", stderr(&r));
        let mut json: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        json["file"] = want_json["file"].clone();
        assert_eq!(json, want_json, "{name}");

        let out = dir.join(format!("{name}.klp.ko"));
        let r = run(&[Path::new("convert"), &input, Path::new("-o"), &out]);
        assert!(r.status.success(), "{name}: {}", stderr(&r));
        assert_eq!(std::fs::read(&out).unwrap(), want, "{name}");

        // In place would leave a compressed name on an uncompressed module.
        let r = run(&[Path::new("convert"), &input, Path::new("--in-place")]);
        assert_eq!(r.status.code(), Some(2), "{name}: {}", stderr(&r));
        let format = if name.ends_with("xz") { "xz" } else { "zstd" };
        assert_eq!(
            stderr(&r),
            format!(
                "klp-convert: error: {}: klp-convert writes modules uncompressed and will not write one in place of, or named as, a {format}-compressed module; convert into OUTPUT.ko with -o, then compress that\n",
                input.display()
            )
        );
        assert_eq!(
            std::fs::read(&input).unwrap(),
            bytes,
            "{name}: input changed"
        );

        // So would an output named like a compressed module.
        let named = dir.join(format!("out.{name}"));
        let r = run(&[Path::new("convert"), &obj, Path::new("-o"), &named]);
        assert_eq!(r.status.code(), Some(2), "{name}: {}", stderr(&r));
        assert!(
            stderr(&r).contains(&format!(
                "{}: klp-convert writes modules uncompressed",
                named.display()
            )),
            "{}",
            stderr(&r)
        );
        assert!(!named.exists());

        // And the converted module, compressed, shows without errors.
        let packed = dir.join(format!("converted.{name}"));
        let converted = std::fs::read(&out).unwrap();
        let packed_bytes = if name.ends_with("xz") {
            xz(&converted)
        } else {
            zstd(&converted)
        };
        std::fs::write(&packed, packed_bytes).unwrap();
        let r = show(&packed);
        assert!(r.status.success(), "{name}: {}", stderr(&r));
        let json: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(json["summary"]["klp_relocations"], 1, "{json}");
        assert_eq!(json["summary"]["errors"], 0, "{json}");
    }
}

#[test]
fn decompression_is_bounded() {
    let (obj, plain) = annotated("compressed_bound");
    let dir = obj.parent().unwrap();
    let files = [
        ("lp.ko.xz", "xz", xz(&plain)),
        ("lp.ko.zst", "zstd", zstd(&plain)),
    ];
    let limit = plain.len() - 1;
    for (name, format, bytes) in files {
        let input = dir.join(name);
        std::fs::write(&input, bytes).unwrap();
        let want = format!(
            "klp-convert: error: {}: {format}: decompresses to more than {limit} bytes, the limit (KLP_CONVERT_MAX_DECOMPRESSED=BYTES raises it)\n",
            input.display()
        );
        let out = dir.join("out.ko");
        let commands: [&[&str]; 3] = [
            &["show"],
            &["check"],
            &["convert", "-o", out.to_str().unwrap()],
        ];
        for command in commands {
            let mut args: Vec<&str> = command.to_vec();
            args.insert(1, input.to_str().unwrap());
            let r = std::process::Command::new(env!("CARGO_BIN_EXE_klp-convert"))
                .args(&args)
                .env("KLP_CONVERT_MAX_DECOMPRESSED", limit.to_string())
                .output()
                .unwrap();
            assert_eq!(r.status.code(), Some(2), "{args:?}: {}", stderr(&r));
            assert_eq!(stderr(&r), want, "{args:?}");
            assert!(r.stdout.is_empty() || command[0] == "check", "{args:?}");
        }
        // Exactly the size is within the bound; a raised bound reads it.
        for bound in [plain.len().to_string(), "1M".to_string()] {
            let r = std::process::Command::new(env!("CARGO_BIN_EXE_klp-convert"))
                .args(["show", input.to_str().unwrap()])
                .env("KLP_CONVERT_MAX_DECOMPRESSED", &bound)
                .output()
                .unwrap();
            assert_eq!(r.status.code(), Some(1), "{bound}: {}", stderr(&r));
            assert!(String::from_utf8_lossy(&r.stdout).contains("unconverted annotations"));
        }
    }
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_klp-convert"))
        .args(["show", obj.to_str().unwrap()])
        .env("KLP_CONVERT_MAX_DECOMPRESSED", "lots")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(
        stderr(&r).starts_with(
            "klp-convert: KLP_CONVERT_MAX_DECOMPRESSED='lots': expected a size in bytes, or with K, M or G (4G)\n"
        ),
        "{}",
        stderr(&r)
    );
}

#[test]
fn show_exit_status_follows_its_errors() {
    let (obj, _) = annotated("compressed_show_status");
    let out = obj.with_file_name("out.ko");
    convert_ok(&obj, &out);
    let r = run(&[Path::new("show"), &out]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(String::from_utf8_lossy(&r.stdout).contains(", 0 errors\n"));
    let r = run(&[Path::new("show"), &obj]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).is_empty(), "{}", stderr(&r));
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        text.contains("\n  error: section .symtab, symbol '.klp.sym.rela.vmlinux.vmlinux.v.0': unconverted KLP_RELOC_SYMBOL annotation"),
        "{text}"
    );
    assert!(text.ends_with(", 1 error\n"), "{text}");
}

/// Concatenated xz streams and stream padding decode to the whole module,
/// as `xz -d` and kmod read them, and the bound counts every stream;
/// anything else after a stream, a cut stream and a changed byte are
/// refused.
#[test]
fn xz_streams_are_read_whole_and_checked() {
    let (obj, plain) = annotated("compressed_streams");
    let dir = obj.parent().unwrap();
    let (head, tail) = plain.split_at(plain.len() / 2);
    let one = xz(&plain);
    let mut flipped = one.clone();
    flipped[one.len() / 2] ^= 0x55;
    let cases = [
        ("two", [xz(head), xz(tail)].concat(), true),
        ("padded", [one.clone(), vec![0; 8]].concat(), true),
        (
            "garbage",
            [one.clone(), b"garbage".to_vec()].concat(),
            false,
        ),
        ("cut", one[..one.len() - 1].to_vec(), false),
        ("flipped", flipped, false),
    ];
    for (name, bytes, whole) in cases {
        let path = dir.join(format!("{name}.ko.xz"));
        std::fs::write(&path, &bytes).unwrap();
        match klp_convert::module_file::read(&path) {
            Ok(read) => {
                assert!(whole, "{name}: read {} bytes", read.len());
                assert!(read == plain, "{name}: not the module");
            }
            Err(e) => {
                assert!(!whole, "{name}: {e}");
                assert!(
                    e.to_string()
                        .starts_with(&format!("{}: xz: ", path.display())),
                    "{name}: {e}"
                );
                if name == "cut" {
                    assert!(e.to_string().ends_with(": xz: premature eof"), "{e}");
                }
            }
        }
    }
    // Each stream is within the bound; the module is not.
    let two = dir.join("two.ko.xz");
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_klp-convert"))
        .args(["show", two.to_str().unwrap()])
        .env(
            "KLP_CONVERT_MAX_DECOMPRESSED",
            (plain.len() - 1).to_string(),
        )
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("xz: decompresses to more than"),
        "{}",
        stderr(&r)
    );
}

/// A `.ko.zst` as the zstd tool writes it (with the frame's checksum, as
/// kbuild's `zstd -T0 --rm --long=27` does): a cut frame is a premature
/// end, and a changed byte fails the checksum (kmod's libzstd checks it)
/// rather than decoding to another module.
#[test]
fn zstd_frames_are_checked() {
    let (obj, plain) = annotated("compressed_zstd_check");
    let dir = obj.parent().unwrap();
    let ko = dir.join("lp.ko");
    std::fs::write(&ko, &plain).unwrap();
    let zst = dir.join("lp.ko.zst");
    let one = zstd_cli(&ko, &zst);
    assert_eq!(klp_convert::module_file::read(&zst).unwrap(), plain);
    // The last block's content: a literal byte of a raw or compressed
    // block, before the 4-byte checksum.
    let mut flipped = one.clone();
    let at = one.len() - 8;
    flipped[at] ^= 0x01;
    for (name, bytes, want) in [
        ("cut", one[..one.len() - 9].to_vec(), "zstd: premature eof"),
        (
            "flipped",
            flipped,
            "zstd: checksum mismatch: the frame says ",
        ),
    ] {
        let path = dir.join(format!("{name}.ko.zst"));
        std::fs::write(&path, &bytes).unwrap();
        let e = klp_convert::module_file::read(&path).expect_err(name);
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("{}: {want}", path.display())),
            "{name}: {text}"
        );
        assert!(!text.contains("Error {"), "{name}: Debug text: {text}");
    }
}

/// Every failure of a mutated `.ko.zst` (a byte changed at each offset, or
/// the file cut there) is said in words: no panic, and none of ruzstd's
/// Debug text (`DecompressLiteralsError(DecodedLiteralCountMismatch {
/// decoded: 3, expected: 9 })`), which the reviewer found in 70% of 1,900
/// mutations.
#[test]
fn zstd_mutations_fail_in_words() {
    let (obj, plain) = annotated("compressed_zstd_mutations");
    let dir = obj.parent().unwrap();
    let ko = dir.join("lp.ko");
    std::fs::write(&ko, &plain).unwrap();
    let one = zstd_cli(&ko, &dir.join("lp.ko.zst"));
    let path = dir.join("m.ko.zst");
    let mut failures = 0;
    for at in 0..one.len() {
        let mut cases = Vec::new();
        for flip in [0x01, 0x10, 0x80, 0xff] {
            let mut bytes = one.clone();
            bytes[at] ^= flip;
            cases.push((format!("byte {at} ^ {flip:#x}"), bytes));
        }
        cases.push((format!("cut at {at}"), one[..at].to_vec()));
        for (name, bytes) in cases {
            let got = std::panic::catch_unwind(|| {
                klp_convert::module_file::decompress(&path, bytes).map_err(|e| e.to_string())
            });
            match got {
                Err(_) => panic!("{name}: panicked"),
                Ok(Ok(_)) => {}
                Ok(Err(text)) => {
                    failures += 1;
                    assert!(
                        !text.contains('{') && !text.contains("Error("),
                        "{name}: Debug text: {text}"
                    );
                    if name.starts_with("cut at ") && at >= 4 {
                        assert!(text.ends_with(": zstd: premature eof"), "{name}: {text}");
                    }
                }
            }
        }
    }
    assert!(failures > one.len() * 4, "{failures} failures");
}

/// A zstd frame header is read before anything is decoded: a window over
/// 128 MiB (libzstd's limit, which kmod inherits) is refused, and a
/// declared content size over the bound is over it at once. A 32 KiB frame
/// declaring a 2^40-byte window used to cost a gigabyte of memory. The
/// content must match its declared size, and the file must be one frame.
#[test]
fn zstd_headers_and_trailers_are_checked() {
    let dir = scratch("compressed_zstd_headers");
    // `n` blocks of 128 KiB of 'A' (RLE blocks), the last one marked.
    let rle = |n: usize| -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            let header = u32::from(i == n - 1) | 1 << 1 | (1 << 17) << 3;
            out.extend_from_slice(&header.to_le_bytes()[..3]);
            out.push(b'A');
        }
        out
    };
    let magic = [0x28, 0xb5, 0x2f, 0xfd];
    let frame = |header: &[u8], n: usize| [&magic[..], header, &rle(n)].concat();
    let module = zstd(b"\x7fELF not really");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "window 2^40",
            frame(&[0x00, 0xf0], 8192),
            "zstd: the frame needs a 1099511627776-byte window; zstd's decoders, kmod's included, accept at most 128 MiB",
        ),
        (
            "window 256 MiB",
            frame(&[0x00, 0x90], 1),
            "zstd: the frame needs a 268435456-byte window",
        ),
        (
            "content size 2^40",
            frame(&[0xe0, 0, 0, 0, 0, 0, 1, 0, 0], 8192),
            "zstd: decompresses to more than 1073741824 bytes, the limit",
        ),
        (
            "content size 100",
            frame(&[0xe0, 100, 0, 0, 0, 0, 0, 0, 0], 1),
            "zstd: corrupt data: the frame declares 100 bytes and holds 131072",
        ),
        (
            "reserved bit",
            frame(&[0x08, 0x50], 1),
            "zstd: corrupt data in the frame header (a reserved bit is set)",
        ),
        (
            "garbage after",
            [module.clone(), b"garbage!".to_vec()].concat(),
            "zstd: 8 bytes of data after the frame; the kernel and kmod read one frame",
        ),
        (
            "two frames",
            [module.clone(), module.clone()].concat(),
            "bytes of a second frame after the frame; the kernel and kmod read one frame",
        ),
    ];
    for (name, bytes, want) in cases {
        let path = dir.join("x.ko.zst");
        let e = klp_convert::module_file::decompress(&path, bytes).expect_err(name);
        assert!(e.to_string().contains(want), "{name}: {e}");
    }
    // The reviewer's bomb through the binary: refused, in little memory.
    let bomb = dir.join("bomb.ko.zst");
    std::fs::write(&bomb, frame(&[0x00, 0xf0], 8192)).unwrap();
    let r = klp_convert(&["show", bomb.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("window"), "{}", stderr(&r));
}

/// xz: a small module packed by `xz -9` (a 64 MiB dictionary) is read under
/// a bound far below that, and a dictionary over the bound and its slack
/// is refused in words naming the variable that raises it.
#[test]
fn xz_dictionaries_are_bounded_in_words() {
    let (obj, plain) = annotated("compressed_xz_dict");
    let dir = obj.parent().unwrap();
    let packed = |args: &[&str]| -> Vec<u8> {
        let out = std::process::Command::new("xz")
            .args(args)
            .args(["--stdout", obj.to_str().unwrap()])
            .output()
            .expect("xz");
        assert!(out.status.success());
        out.stdout
    };
    let path = dir.join("lp.ko.xz");
    std::fs::write(&path, packed(&["-9"])).unwrap();
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_klp-convert"))
        .args(["show", path.to_str().unwrap()])
        .env("KLP_CONVERT_MAX_DECOMPRESSED", "50K")
        .output()
        .unwrap();
    assert!(plain.len() < 50 << 10);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(!stderr(&r).contains("xz:"), "{}", stderr(&r));
    // A 1536 MiB dictionary, over 1 MiB + the slack: the block header of
    // `xz --lzma2=dict=1MiB` (no sizes: size byte, flags, filter 0x21, one
    // property byte, padding, CRC32) with its dictionary byte changed.
    let mut big = xz(&plain);
    assert_eq!(big[12..16], [0x02, 0x00, 0x21, 0x01], "xz's block header");
    big[16] = 37; // 3 << 29
    let crc = crc32(&big[12..20]);
    big[20..24].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &big).unwrap();
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_klp-convert"))
        .args(["show", path.to_str().unwrap()])
        .env("KLP_CONVERT_MAX_DECOMPRESSED", "1M")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("xz: the stream's dictionary of 1536 MiB is over the limit of 66 MiB (KLP_CONVERT_MAX_DECOMPRESSED raises it)"),
        "{}",
        stderr(&r)
    );
}

/// The CRC32 of xz's headers (IEEE, reflected).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                crc >> 1 ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
