//! The README stays a first read and stays true: at most 10 KiB; every
//! `klp-convert` command its code blocks show has a `--help`, and every flag
//! they give a command is an option of that command (long and short flags
//! checked apart, so a renamed one names itself); its exit statuses are the
//! ones `klp-convert --help` lists. Every relative link of the project's
//! Markdown points at a file (and a heading, for an anchor). No tracked file
//! cites an internal tracker number, which a reader cannot follow. In the
//! second tier, the README's five-minute walk builds and checks on Debian's
//! 5.10, 6.1, 6.12 and 7.3 kbuild (7.3's in scripts/fetch-kernels' trixie
//! chroot).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use common::*;

/// The README's size bound, in bytes.
const README_MAX: usize = 10 * 1024;

/// The exit statuses `Error::exit_code` and `main` give.
const EXIT_STATUSES: [u32; 4] = [0, 1, 2, 141];

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("README.md")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klp-convert"))
        .args(args)
        .output()
        .expect("run klp-convert")
}

/// A command line the README shows: the words after `klp-convert` up to a
/// pipe, a redirection or a comment, with `$(...)` taken out.
#[derive(Debug)]
struct Shown {
    line: String,
    words: Vec<String>,
}

fn shown_commands(text: &str) -> Vec<Shown> {
    let mut out = Vec::new();
    for (_, lines) in code_blocks(text) {
        for line in lines {
            let l = line.trim();
            let l = l.strip_prefix("$ ").unwrap_or(l);
            let Some(rest) = l.strip_prefix("klp-convert ") else {
                continue;
            };
            let mut rest = rest.to_string();
            while let Some(start) = rest.find("$(") {
                let end = rest[start..]
                    .find(')')
                    .map_or(rest.len(), |e| start + e + 1);
                rest.replace_range(start..end, "X");
            }
            for stop in [" #", " | ", " > ", " < ", " && ", " ; ", " 2>"] {
                if let Some(i) = rest.find(stop) {
                    rest.truncate(i);
                }
            }
            out.push(Shown {
                line: line.clone(),
                words: rest.split_whitespace().map(str::to_string).collect(),
            });
        }
    }
    assert!(!out.is_empty(), "the README shows no klp-convert command");
    out
}

/// A command's name: a lower-case word (a drop-in form's first argument is
/// a file: `lp.ko`, `symbols.klp`).
fn is_command_word(w: &str) -> bool {
    !w.is_empty()
        && w.starts_with(|c: char| c.is_ascii_lowercase())
        && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
}

/// The subcommands a help text lists under `Commands:`.
fn subcommands(help: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// The command path of a shown line (`[]` for a drop-in form, `[build]`,
/// `[generate, man]`), its help text, and the words after the path.
fn resolve(shown: &Shown) -> Result<(Vec<String>, String, Vec<String>), String> {
    let mut path: Vec<String> = Vec::new();
    let mut help = help_of(&path)?;
    for w in &shown.words {
        if !is_command_word(w) {
            break;
        }
        let known = if path.is_empty() {
            // Top-level commands may be hidden from the list (generate): a
            // command is what has a help of its own, which names it.
            help_of(std::slice::from_ref(w))
                .is_ok_and(|h| h.contains(&format!("Usage: klp-convert {w} ")))
        } else {
            subcommands(&help).contains(w)
        };
        if !known {
            if path.is_empty() {
                return Err(format!(
                    "'{w}' is not a command: `klp-convert {w} --help` does not describe it"
                ));
            }
            break;
        }
        path.push(w.clone());
        help = help_of(&path)?;
    }
    let rest = shown.words[path.len()..].to_vec();
    Ok((path, help, rest))
}

/// `klp-convert PATH... --help`, which must succeed.
fn help_of(path: &[String]) -> Result<String, String> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let r = run(&args);
    if r.status.success() {
        Ok(String::from_utf8_lossy(&r.stdout).into_owned())
    } else {
        Err(format!(
            "`klp-convert {}` exits {:?}: {}",
            args.join(" "),
            r.status.code(),
            String::from_utf8_lossy(&r.stderr)
        ))
    }
}

/// The flags among `words`, up to a bare `--` (what follows is make's):
/// (long names with their dashes, short ones).
fn flags_in(words: &[String]) -> (Vec<String>, Vec<String>) {
    let (mut long, mut short) = (Vec::new(), Vec::new());
    for w in words {
        if w == "--" {
            break;
        }
        for part in w.split('|') {
            let part = part.trim_matches(|c| "[]().,".contains(c));
            let part = part.split('=').next().unwrap_or_default();
            if let Some(name) = part.strip_prefix("--") {
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    long.push(part.to_string());
                }
            } else if let Some(c) = part.strip_prefix('-') {
                if c.len() == 1 && c.chars().all(|c| c.is_ascii_alphanumeric()) {
                    short.push(part.to_string());
                }
            }
        }
    }
    (long, short)
}

/// The options a help text defines, from the option lines of its
/// `Options:` section (`  -C, --kernel-dir <DIR>`, `      --symbols <MAP>`;
/// descriptions are indented further): (long, short).
fn options_of(help: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut long, mut short) = (BTreeSet::new(), BTreeSet::new());
    let mut options = false;
    for line in help.lines() {
        let l = line.trim_start();
        if !line.is_empty() && l.len() == line.len() {
            options = line.trim_end() == "Options:";
            continue;
        }
        if !options || line.len() - l.len() > 6 || !l.starts_with('-') {
            continue;
        }
        for w in l
            .split([',', ' '])
            .take_while(|w| w.starts_with('-') || w.is_empty())
        {
            let w = w.split('=').next().unwrap_or_default();
            if w.starts_with("--") && w.len() > 2 {
                long.insert(w.to_string());
            } else if w.len() == 2 && w.starts_with('-') {
                short.insert(w.to_string());
            }
        }
    }
    (long, short)
}

#[test]
fn readme_is_at_most_10_kib() {
    let n = readme().len();
    assert!(
        n <= README_MAX,
        "README.md is {n} bytes, over {README_MAX}: move detail to docs/ or CONTRIBUTING.md"
    );
}

#[test]
fn every_command_the_readme_shows_has_a_help() {
    let mut bad = Vec::new();
    for shown in shown_commands(&readme()) {
        if let Err(e) = resolve(&shown) {
            bad.push(format!("{}\n    {e}", shown.line));
        }
    }
    assert!(
        bad.is_empty(),
        "README commands without a --help:\n{}",
        bad.join("\n")
    );
}

/// Every flag of `which` kind (long or short) the README gives a command is
/// an option in that command's help.
fn flags_are_options(long_flags: bool) {
    let mut bad = Vec::new();
    for shown in shown_commands(&readme()) {
        let Ok((path, help, rest)) = resolve(&shown) else {
            continue; // every_command_the_readme_shows_has_a_help says why
        };
        let (long, short) = flags_in(&rest);
        let (have_long, have_short) = options_of(&help);
        let (flags, have) = if long_flags {
            (long, have_long)
        } else {
            (short, have_short)
        };
        for f in flags {
            if !have.contains(&f) {
                bad.push(format!(
                    "{}\n    {f} is no option of `klp-convert {} --help` (it has {})",
                    shown.line,
                    path.join(" "),
                    have.iter().cloned().collect::<Vec<_>>().join(" ")
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "README flags the tool does not have:\n{}",
        bad.join("\n")
    );
}

#[test]
fn long_flags_in_the_readme_are_options() {
    flags_are_options(true);
}

#[test]
fn short_flags_in_the_readme_are_options() {
    flags_are_options(false);
}

/// The numbers of a text that stand alone (`141`, not `x86_64` or `0x10`).
fn numbers(text: &str) -> BTreeSet<u32> {
    text.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[test]
fn exit_statuses_in_the_readme_are_those_of_the_help() {
    let text = readme();
    let section = text
        .split("\n## Exit status")
        .nth(1)
        .expect("README has an '## Exit status' section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let readme: BTreeSet<u32> = section
        .lines()
        .filter_map(|l| l.strip_prefix('|')?.split('|').next()?.trim().parse().ok())
        .collect();
    assert_eq!(
        readme,
        BTreeSet::from(EXIT_STATUSES),
        "README's exit statuses"
    );

    let help = help_of(&[]).expect("klp-convert --help");
    let at = help.find("Exit status").expect("--help has 'Exit status'");
    let paragraph = help[at..].split("\n\n").next().unwrap_or_default();
    assert_eq!(
        numbers(paragraph),
        readme,
        "`klp-convert --help` lists other exit statuses than README.md:\n{paragraph}"
    );
}

/// The project's Markdown: the top-level *.md and docs/*.md.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [root(), root().join("docs")] {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
    }
    files.sort();
    for must in ["README.md", "CONTRIBUTING.md"] {
        assert!(files.contains(&root().join(must)), "{must} is missing");
    }
    files
}

/// Markdown without its fenced code blocks and inline code spans.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Inline code: drop what stands between backticks.
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                out.push_str(part);
            }
        }
        out.push('\n');
    }
    out
}

/// A heading's anchor as GitHub makes it: lower case, spaces to '-',
/// anything but letters, digits, '-' and '_' dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (repeats get -1, -2, ...).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let a = anchor(line.trim_start_matches('#'));
        let mut name = a.clone();
        let mut n = 0;
        while out.contains(&name) {
            n += 1;
            name = format!("{a}-{n}");
        }
        out.insert(name);
    }
    out
}

#[test]
fn relative_links_point_at_files() {
    let mut bad = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(root()).unwrap().display().to_string();
        let prose = prose(&text);
        for (i, _) in prose.match_indices("](") {
            let rest = &prose[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split_whitespace().next().unwrap_or_default();
            let target = target.trim_matches(|c| c == '<' || c == '>');
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target, None),
            };
            let dest = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !dest.exists() {
                bad.push(format!("{name}: ({target}): no {}", dest.display()));
                continue;
            }
            if let (Some(f), true) = (fragment, dest.extension().is_some_and(|x| x == "md")) {
                let there = std::fs::read_to_string(&dest).unwrap();
                if !anchors(&there).contains(f) {
                    bad.push(format!("{name}: ({target}): no heading #{f} there"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

/// The places in `text` that match `[Ii]ssues? [0-9]+`.
fn issue_numbers(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let b = line.as_bytes();
        for (i, _) in line.match_indices("ssue") {
            if i == 0 || !matches!(b[i - 1], b'I' | b'i') {
                continue;
            }
            let mut j = i + 4;
            if b.get(j) == Some(&b's') {
                j += 1;
            }
            if b.get(j) == Some(&b' ') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
                // The match with some context, not a whole long line.
                let mut from = i.saturating_sub(40);
                while !line.is_char_boundary(from) {
                    from -= 1;
                }
                let mut to = (j + 40).min(line.len());
                while !line.is_char_boundary(to) {
                    to += 1;
                }
                out.push((n + 1, line[from..to].trim().to_string()));
                break;
            }
        }
    }
    out
}

#[test]
fn no_tracked_file_cites_an_internal_issue_number() {
    // Spelt in pieces, or this file would match itself.
    let sample = concat!("see iss", "ue 12, iss", "ues 3\nand Iss", "ue 4");
    assert_eq!(
        issue_numbers(sample),
        [
            (1, concat!("see iss", "ue 12, iss", "ues 3").to_string()),
            (2, concat!("and Iss", "ue 4").to_string())
        ]
    );
    assert!(issue_numbers("an issue with 9 parts; issues\n").is_empty());

    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .expect("run git ls-files");
    assert!(
        out.status.success(),
        "git ls-files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut bad = Vec::new();
    for name in out.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if name.starts_with("fuzz/corpus/") {
            continue;
        }
        let Ok(bytes) = std::fs::read(root().join(&name)) else {
            continue; // deleted in the work tree
        };
        if bytes.contains(&0) {
            continue; // binary
        }
        for (line, text) in issue_numbers(&String::from_utf8_lossy(&bytes)) {
            bad.push(format!("{name}:{line}: {text}"));
        }
    }
    assert!(
        bad.is_empty(),
        "internal issue numbers (say what the case is instead):\n{}",
        bad.join("\n")
    );
}

/// The README's walk, on a Debian kernel from the cache (see
/// [`readme_walk`]: `/proc/kallsyms` replaced by the `-dbg` System.map, its
/// `klp-convert` lines run with `-C` at the cached kbuild). The output it
/// shows is the output it gets. tests/kernel_e2e.rs loads the module.
fn walk(series: &str) {
    let kernel = kernel_dir(series);
    let dir = scratch(&format!("readme-walk-{series}"));
    let walk = readme_walk(&dir, &kernel.join("build"), &kernel.join("dbg/System.map"));
    // The output the README shows after the walk, with its directory.
    let blocks = code_blocks(&readme());
    let shown = blocks[walk.block + 1..]
        .iter()
        .find(|(info, lines)| info.is_empty() && lines.iter().any(|l| l.contains("/home/you/lp")))
        .expect("the README shows the walk's output");
    for l in &shown.1 {
        let want = l.replace("/home/you/lp", &dir.display().to_string());
        assert!(
            walk.build_stderr.contains(&want),
            "README shows\n{want}\nbuild said\n{}",
            walk.build_stderr
        );
    }
}

#[test]
#[ignore = "needs Debian's 5.10 kernel (scripts/fetch-kernels)"]
fn the_readme_walk_builds_on_debian_5_10() {
    walk("5.10");
}

#[test]
#[ignore = "needs Debian's 6.1 kernel (scripts/fetch-kernels)"]
fn the_readme_walk_builds_on_debian_6_1() {
    walk("6.1");
}

#[test]
#[ignore = "needs Debian's 6.12 kernel (scripts/fetch-kernels)"]
fn the_readme_walk_builds_on_debian_6_12() {
    walk("6.12");
}

#[test]
#[ignore = "needs Debian's 7.3 kernel and its trixie chroot (scripts/fetch-kernels)"]
fn the_readme_walk_builds_on_debian_7_3() {
    walk("7.3");
}
