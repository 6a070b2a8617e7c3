//! The nodes' step logs against the model, with the `conformance` checker of the proptests
//! crate. That crate depends on this one, so the checker runs as a child process: the
//! `conformance` binary beside this executable (where cargo builds both), else on `PATH`.

use super::report::Conformance;
use std::path::{Path, PathBuf};
use std::process::Command;

fn checker(exe: &Path) -> Option<PathBuf> {
    let beside = exe.parent()?.join("conformance");
    if beside.is_file() {
        return Some(beside);
    }
    // `cargo test` runs this executable from target/<profile>/; the checker is built there too.
    let up = exe.parent()?.parent()?.join("conformance");
    if up.is_file() {
        return Some(up);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("conformance"))
            .find(|p| p.is_file())
    })
}

/// Checks every step log written; `None` when no node wrote one. `foreign` are the processes
/// that write none (the observer, plain exercise nodes): what the nodes got from them cannot be
/// matched to a send.
///
/// A run that froze a process (`froze`) is not checked: freezing a process past the timeout
/// breaks the bounded-delay assumption under which the model's properties hold, and the
/// checker duly reports what the assumption excludes (a reply the requester gave up on, lost
/// between live processes; a resumed coordinator in a consistent cut with the next one's
/// followers).
pub fn check(exe: &Path, logs: &[PathBuf], foreign: &[u16], froze: bool) -> Option<Conformance> {
    if logs.is_empty() {
        return None;
    }
    if froze {
        return Some(Conformance {
            logs: logs.len(),
            conforms: None,
            detail: "a frozen process breaks the bounded-delay assumption the model's properties rest on".into(),
        });
    }
    let Some(bin) = checker(exe) else {
        return Some(Conformance {
            logs: logs.len(),
            conforms: None,
            detail: "the conformance checker is not installed (cargo build -p bully-proptests --bin conformance)".into(),
        });
    };
    let foreign: Vec<String> = foreign.iter().map(u16::to_string).collect();
    let mut cmd = Command::new(&bin);
    cmd.arg("--foreign").arg(foreign.join(","));
    let out = match cmd.args(logs).output() {
        Ok(o) => o,
        Err(e) => {
            return Some(Conformance {
                logs: logs.len(),
                conforms: None,
                detail: format!("{}: {e}", bin.display()),
            })
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string();
    let conforms = match out.status.code() {
        Some(0) => Some(true),
        Some(1) => Some(false),
        _ => None,
    };
    Some(Conformance {
        logs: logs.len(),
        conforms,
        detail: line,
    })
}
