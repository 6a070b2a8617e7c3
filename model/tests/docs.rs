//! Docs that cannot rot.
//!
//! * Every ```console example in README.md and docs/src/*.md runs, with its output checked
//!   (trycmd: `...` elides lines, `[..]` text within a line, `? 1` states the exit code).
//! * Examples that run real processes or take minutes are marked ```console,ignore; their
//!   command lines, like every `$ bully-model ...` / `$ bully-node ...` line in any code block
//!   of the docs and every complete command in the prose's inline code, are parsed with the
//!   binaries' own clap definitions, so a renamed flag fails.
//! * Every relative link and #anchor in the docs resolves.
//! * The docs, and comments in `*/src`, say what is: no dates, commit hashes, issue numbers or
//!   work-session talk (CHANGELOG.md and bench/results/ hold the history).
//! * The guide's SUMMARY.md lists every page, and every page it lists exists; the README stays
//!   a front door (short, the two main commands first, a table of contents).

use clap::Parser;
use regex::Regex;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The guide's pages (docs/src, recursively), relative to the workspace root.
fn guide_pages() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("docs/src"), &mut out);
    let mut pages: Vec<String> = out
        .iter()
        .map(|p| {
            p.strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    pages.sort();
    pages
}

/// Every Markdown file the checks cover.
fn docs() -> Vec<String> {
    let mut out: Vec<String> = ["README.md", "BENCHMARKS.md", "node/PROTOCOL.md"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    out.extend(guide_pages());
    out
}

/// A fenced code block: its info string, and its lines with their 1-based line numbers.
struct Fence {
    info: String,
    lines: Vec<(usize, String)>,
}

/// The fenced code blocks of a Markdown text, indented ones (inside lists) included.
fn fences(text: &str) -> Vec<Fence> {
    let mut out = Vec::new();
    let mut open: Option<(String, Fence)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let ticks = trimmed.chars().take_while(|&c| c == '`').count();
        match open.take() {
            None if ticks >= 3 => {
                let fence = Fence {
                    info: trimmed[ticks..].trim().to_string(),
                    lines: vec![],
                };
                open = Some((trimmed[..ticks].to_string(), fence));
            }
            None => {}
            Some((marker, fence)) if trimmed.starts_with(&marker) && trimmed.trim() == marker => {
                out.push(fence);
            }
            Some((marker, mut fence)) => {
                fence.lines.push((i + 1, trimmed.to_string()));
                open = Some((marker, fence));
            }
        }
    }
    out
}

/// The text with its fenced code blocks blanked out (line numbers kept).
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut marker: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let ticks = trimmed.chars().take_while(|&c| c == '`').count();
        match &marker {
            None if ticks >= 3 => marker = Some(trimmed[..ticks].to_string()),
            None => out.push_str(line),
            Some(m) if trimmed.trim() == m => marker = None,
            Some(_) => {}
        }
        out.push('\n');
    }
    out
}

#[test]
fn console_examples_run_with_their_output() {
    let cases = trycmd::TestCases::new();
    cases
        .register_bin("bully-model", Path::new(env!("CARGO_BIN_EXE_bully-model")))
        .timeout(std::time::Duration::from_secs(120));
    for page in std::iter::once("README.md".to_string()).chain(guide_pages()) {
        cases.case(root().join(page));
    }
    // The examples run in a directory of their own: what they write (`--trace-out FILE`) stays
    // there, for the next command of the same page, and goes with it. The other tests of this
    // file use absolute paths only.
    let dir = std::env::temp_dir().join(format!("bully-docs-examples-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::env::set_current_dir(&dir).unwrap();
    let ran = std::panic::catch_unwind(|| cases.run());
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = ran {
        std::panic::resume_unwind(panic);
    }
}

/// Which binary a command line runs, and its arguments: `bully-model ARGS`,
/// `target/release/bully-node ARGS`, `cargo run [...] -p bully-model -- ARGS`. Environment
/// assignments in front, a trailing `&` and `# comments` are not part of it.
fn invocation(words: &[String]) -> Option<(&'static str, Vec<String>)> {
    let words: Vec<&String> = words.iter().skip_while(|w| is_assignment(w)).collect();
    let words: Vec<&String> = words
        .into_iter()
        .take_while(|w| w.as_str() != "&")
        .collect();
    let first = words.first()?;
    let name = Path::new(first.as_str()).file_name()?.to_str()?;
    let (bin, rest) = match name {
        "bully-model" => ("bully-model", &words[1..]),
        "bully-node" => ("bully-node", &words[1..]),
        // `cargo run --example NAME` runs an example, whose arguments are its own.
        "cargo"
            if words.get(1).is_some_and(|w| *w == "run")
                && !words.iter().any(|w| *w == "--example" || *w == "--bin") =>
        {
            let package = words
                .windows(2)
                .find(|w| *w[0] == "-p" || *w[0] == "--package")?;
            let bin = match package[1].as_str() {
                "bully-model" => "bully-model",
                "bully-node" => "bully-node",
                _ => return None,
            };
            let dashes = words.iter().position(|w| *w == "--")?;
            (bin, &words[dashes + 1..])
        }
        _ => return None,
    };
    Some((bin, rest.iter().map(|w| w.to_string()).collect()))
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(k, _)| {
        !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
    })
}

/// The shell command lines of a code block: `$ ` lines with their `> ` continuations.
fn command_lines(fence: &Fence) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (n, line) in &fence.lines {
        if let Some(cmd) = line.strip_prefix("$ ") {
            out.push((*n, cmd.to_string()));
        } else if let (Some(more), Some(last)) = (line.strip_prefix("> "), out.last_mut()) {
            last.1.push(' ');
            last.1.push_str(more);
        }
    }
    out
}

/// Parses a command line with the binary's own clap definitions.
fn parse(bin: &str, args: &[String]) -> Result<(), clap::Error> {
    let argv = std::iter::once(bin.to_string()).chain(args.iter().cloned());
    let parsed = match bin {
        "bully-model" => bully_model::cli::Cli::try_parse_from(argv).map(|_| ()),
        _ => bully_node::cli::Cli::try_parse_from(argv).map(|_| ()),
    };
    match parsed {
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => Ok(()),
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => Ok(()),
        other => other,
    }
}

/// The complete command lines in the prose's inline code (`` `bully-model check -n 4` ``), with
/// their line numbers. A span with a placeholder (`...`, `<port>`, `[ARGS]`, `ENDPOINT`) or
/// with no argument after the subcommand names a command rather than showing one.
fn inline_commands(text: &str) -> Vec<(usize, String)> {
    let span = Regex::new(r"`((?:bully-model|bully-node) [^`]+)`").unwrap();
    let placeholder = Regex::new(r"\.\.\.|[<\[]|\b[A-Z][A-Z_]{2,}\b").unwrap();
    let mut out = Vec::new();
    for (n, line) in prose(text).lines().enumerate() {
        for c in span.captures_iter(line) {
            let cmd = &c[1];
            if !placeholder.is_match(cmd) && cmd.split_whitespace().count() > 2 {
                out.push((n + 1, cmd.to_string()));
            }
        }
    }
    out
}

#[test]
fn every_command_line_in_the_docs_parses_with_the_cli() {
    let mut problems = Vec::new();
    let mut parsed: HashMap<&str, usize> = HashMap::new();
    for doc in docs() {
        let text = read(&doc);
        let mut lines: Vec<(usize, String, bool)> = Vec::new();
        for fence in fences(&text) {
            let runs = fence.info == "console" || fence.info == "trycmd";
            lines.extend(command_lines(&fence).into_iter().map(|(n, l)| (n, l, runs)));
        }
        lines.extend(
            inline_commands(&text)
                .into_iter()
                .map(|(n, l)| (n, l, false)),
        );
        for (n, line, runs) in lines {
            let Some(words) = shlex::split(&line) else {
                problems.push(format!("{doc}:{n}: unbalanced quotes: {line}"));
                continue;
            };
            let Some((bin, args)) = invocation(&words) else {
                continue;
            };
            if runs && bin != "bully-model" {
                problems.push(format!(
                    "{doc}:{n}: `{bin}` runs real processes: mark the block ```console,ignore"
                ));
            }
            match parse(bin, &args) {
                Ok(()) => *parsed.entry(bin).or_default() += 1,
                Err(e) => {
                    let why = e.to_string();
                    let why = why.lines().next().unwrap_or_default().to_string();
                    problems.push(format!("{doc}:{n}: `{line}`: {why}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The docs show both binaries at work: a parser that matched nothing would prove nothing.
    assert!(
        parsed.get("bully-model").copied().unwrap_or(0) >= 30,
        "{parsed:?}"
    );
    assert!(
        parsed.get("bully-node").copied().unwrap_or(0) >= 10,
        "{parsed:?}"
    );
}

#[test]
fn a_renamed_flag_is_caught() {
    let words = shlex::split("bully-model check -n 3 --crashes 1").unwrap();
    let (bin, args) = invocation(&words).unwrap();
    assert!(parse(bin, &args).is_ok());
    let words = shlex::split("cargo run --release -p bully-node -- run 5003 5001 &").unwrap();
    let (bin, args) = invocation(&words).unwrap();
    assert_eq!((bin, args.len()), ("bully-node", 3));
    assert!(parse(bin, &args).is_ok());
    let words = shlex::split("bully-model check -n 3 --crash 1").unwrap();
    let (bin, args) = invocation(&words).unwrap();
    assert!(parse(bin, &args).is_err());
}

/// GitHub's anchors of a Markdown file's headings (and explicit `<a name=...>` / `id=`).
fn anchors(text: &str) -> BTreeSet<String> {
    let heading = Regex::new(r"^#{1,6}\s+(.*?)\s*#*\s*$").unwrap();
    let link = Regex::new(r"\[([^\]]*)\]\([^)]*\)").unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    for line in prose(text).lines() {
        let Some(m) = heading.captures(line) else {
            continue;
        };
        let title = link.replace_all(&m[1], "$1").trim().to_lowercase();
        let slug: String = title
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '_' || *c == '-' || *c == ' ')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_default();
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    let explicit = Regex::new(r#"<a\s+(?:name|id)="([^"]+)""#).unwrap();
    out.extend(explicit.captures_iter(text).map(|c| c[1].to_string()));
    out
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let link = Regex::new(r#"\]\(([^)\s]+)(?:\s+"[^"]*")?\)"#).unwrap();
    let scheme = Regex::new(r"^[a-z]+:").unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in docs() {
        let dir = Path::new(&doc).parent().unwrap().to_path_buf();
        for (n, line) in prose(&read(&doc)).lines().enumerate() {
            for m in link.captures_iter(line) {
                let target = &m[1];
                if scheme.is_match(target) {
                    continue;
                }
                checked += 1;
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let rel = if path.is_empty() {
                    PathBuf::from(&doc)
                } else {
                    dir.join(path)
                };
                let full = root().join(&rel);
                if !full.exists() {
                    problems.push(format!("{doc}:{}: link to missing {target}", n + 1));
                } else if !anchor.is_empty() && full.extension().is_some_and(|e| e == "md") {
                    let text = std::fs::read_to_string(&full).unwrap();
                    if !anchors(&text).contains(anchor) {
                        problems.push(format!("{doc}:{}: no heading for #{anchor}", n + 1));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked > 50, "only {checked} links found");
}

/// What a page that says what *is* never holds.
fn history_patterns() -> Vec<(Regex, &'static str)> {
    let mon = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*";
    vec![
        (
            Regex::new(&format!(
                r"\b(?:[0-3]?\d {mon}\b|{mon} [0-3]?\d\b|20\d\d-[01]\d-[0-3]\d)"
            ))
            .unwrap(),
            "date",
        ),
        // Hex words of 7 to 40 digits with a letter and a digit, not inside a path or a word.
        (Regex::new(r"(?:^|[^\w/.#-])([0-9a-f]{7,40})(?:$|[^\w-])").unwrap(), "commit hash"),
        (
            Regex::new(r"(?i)\b(?:issues? #?\d+|this stop|previous stop|last stop|this session|last session)\b")
                .unwrap(),
            "work-history talk",
        ),
    ]
}

fn history_in(line: &str, patterns: &[(Regex, &'static str)]) -> Option<String> {
    for (rx, kind) in patterns {
        for c in rx.captures_iter(line) {
            let hit = c.get(1).unwrap_or_else(|| c.get(0).unwrap()).as_str();
            let is_hash = *kind == "commit hash";
            let hexy = hit.chars().any(|c| c.is_ascii_digit())
                && hit.chars().any(|c| c.is_ascii_alphabetic());
            if !is_hash || hexy {
                return Some(format!("{kind} '{hit}'"));
            }
        }
    }
    None
}

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn docs_and_source_comments_say_what_is_not_when() {
    let patterns = history_patterns();
    let mut problems = Vec::new();
    for doc in docs().into_iter().filter(|d| d != "node/PROTOCOL.md") {
        for (n, line) in read(&doc).lines().enumerate() {
            // BENCHMARKS.md says once per table when and where it was measured.
            if doc == "BENCHMARKS.md" && line.to_lowercase().starts_with("measured on") {
                continue;
            }
            if let Some(p) = history_in(line, &patterns) {
                problems.push(format!("{doc}:{}: {p}", n + 1));
            }
        }
    }
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(root()).unwrap() {
        let src = entry.unwrap().path().join("src");
        if src.is_dir() {
            rust_sources(&src, &mut sources);
        }
    }
    assert!(sources.len() > 20, "{} sources", sources.len());
    // The start of the node's clock (milliseconds since 2020-01-01) is a constant, not a date.
    let epoch_of_the_clock = Regex::new(r"20\d\d-01-01").unwrap();
    for file in sources {
        let text = std::fs::read_to_string(&file).unwrap();
        let rel = file.strip_prefix(root()).unwrap().display().to_string();
        for (n, line) in text.lines().enumerate() {
            let Some((_, comment)) = line.split_once("//") else {
                continue;
            };
            if epoch_of_the_clock.is_match(comment) {
                continue;
            }
            if let Some(p) = history_in(comment, &patterns) {
                problems.push(format!("{rel}:{}: {p}", n + 1));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn history_patterns_catch_what_they_should() {
    let patterns = history_patterns();
    for bad in [
        "(CI, 30 Nov)",
        "since Dec 1",
        "commit `5959a60`",
        "issue 17",
        "this session",
    ] {
        assert!(history_in(bad, &patterns).is_some(), "{bad}");
    }
    for fine in [
        "epoch 2.5004",
        "tcp://127.0.0.1:5001",
        "0.12s",
        "deadbeef.json/x",
        "N=5",
    ] {
        assert!(history_in(fine, &patterns).is_none(), "{fine}");
    }
}

#[test]
fn the_summary_lists_every_page_and_only_pages_that_exist() {
    let summary = read("docs/src/SUMMARY.md");
    let link = Regex::new(r"\]\(([^)#\s]+)\)").unwrap();
    let listed: BTreeSet<String> = link
        .captures_iter(&summary)
        .map(|c| format!("docs/src/{}", &c[1]))
        .collect();
    let pages: BTreeSet<String> = guide_pages()
        .into_iter()
        .filter(|p| p != "docs/src/SUMMARY.md")
        .collect();
    let missing: Vec<_> = listed.difference(&pages).collect();
    let unlisted: Vec<_> = pages.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "SUMMARY.md lists pages that do not exist: {missing:?}"
    );
    assert!(unlisted.is_empty(), "pages not in SUMMARY.md: {unlisted:?}");
    assert!(read("docs/book.toml").contains("[book]"));
}

#[test]
fn the_readme_is_a_front_door() {
    let readme = read("README.md");
    let lines: Vec<&str> = readme.lines().collect();
    assert!(
        lines.len() <= 250,
        "README.md has {} lines (at most 250)",
        lines.len()
    );
    let first = lines[..25.min(lines.len())].join("\n");
    let main = Regex::new(r"bully-model (-- )?check").unwrap();
    assert!(
        main.is_match(&first),
        "the main command in the first 25 lines"
    );
    assert!(
        first.contains("cargo test"),
        "the test command in the first 25 lines"
    );
    assert!(readme.contains("## Contents"), "a table of contents");
    let long: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].chars().count() > 200)
        .collect();
    assert!(
        long.is_empty(),
        "README lines over 200 characters: {long:?}"
    );
}
