//! The results: a table on stdout, the same as JSON, and the report directory.

use super::args::{Program, Scenario, Settings};
use super::observer::Observation;
use super::scenario::Timed;
use super::verdict::{Outcome, Times, Verdict, NAMES};
use serde::Serializer;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

pub fn ser_ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

pub fn ser_opt_ms<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&(d.as_millis() as u64)),
        None => s.serialize_none(),
    }
}

/// What the conformance checker said about the nodes' step logs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Conformance {
    pub logs: usize,
    /// `None` when the checker is not available (the reason is in `detail`).
    pub conforms: Option<bool>,
    pub detail: String,
}

/// One scenario's results.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScenarioResult {
    pub scenario: Scenario,
    pub passed: bool,
    pub verdicts: Vec<Verdict>,
    pub times: Times,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conformance: Option<Conformance>,
    /// The run's acts and observations (in results.json only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub acts: Vec<Timed>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<Observation>,
    #[serde(serialize_with = "ser_ms")]
    pub end_ms: Duration,
}

impl ScenarioResult {
    pub fn new(
        scenario: Scenario,
        verdicts: Vec<Verdict>,
        times: Times,
        conformance: Option<Conformance>,
    ) -> ScenarioResult {
        let conforms = conformance
            .as_ref()
            .is_none_or(|c| c.conforms != Some(false));
        let passed = conforms && verdicts.iter().all(|v| v.outcome != Outcome::Fail);
        ScenarioResult {
            scenario,
            passed,
            verdicts,
            times,
            conformance,
            acts: Vec::new(),
            seen: Vec::new(),
            end_ms: Duration::ZERO,
        }
    }
}

/// A whole run's results.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Results {
    pub implementation: String,
    pub nodes: Vec<NodeEntry>,
    pub observer_port: u16,
    #[serde(serialize_with = "ser_ms")]
    pub heartbeat_ms: Duration,
    #[serde(serialize_with = "ser_ms")]
    pub timeout_ms: Duration,
    #[serde(serialize_with = "ser_ms")]
    pub slack_ms: Duration,
    pub seed: u64,
    pub passed: bool,
    pub scenarios: Vec<ScenarioResult>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct NodeEntry {
    pub port: u16,
    pub program: Program,
}

impl Results {
    pub fn new(s: &Settings, scenarios: Vec<ScenarioResult>) -> Results {
        Results {
            implementation: s.template.clone(),
            nodes: s
                .nodes
                .iter()
                .map(|&(port, program)| NodeEntry { port, program })
                .collect(),
            observer_port: s.observer_port,
            heartbeat_ms: s.heartbeat,
            timeout_ms: s.timeout,
            slack_ms: s.slack(),
            seed: s.seed,
            passed: scenarios.iter().all(|r| r.passed),
            scenarios,
        }
    }

    /// Without the raw acts and observations (for stdout).
    pub fn summary(&self) -> Results {
        let mut r = self.clone();
        for s in &mut r.scenarios {
            s.acts.clear();
            s.seen.clear();
        }
        r
    }
}

fn cell(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "FAIL",
        Outcome::NotJudged => "-",
        Outcome::NotApplicable => "n/a",
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_string(), |d| format!("{:.2}s", d.as_secs_f64()))
}

/// The table of scenarios by verdicts, the times, and every reason that is not a pass.
pub fn table(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "workbench: {} | nodes {} | heartbeat {:?}, timeout {:?}, slack {:?} | seed {}",
        r.implementation,
        r.nodes
            .iter()
            .map(|n| match n.program {
                Program::UnderTest => n.port.to_string(),
                Program::Reference => format!("{}(ref)", n.port),
            })
            .collect::<Vec<_>>()
            .join(" "),
        r.heartbeat_ms,
        r.timeout_ms,
        r.slack_ms,
        r.seed
    );
    let _ = write!(out, "{:<20}", "scenario");
    for n in NAMES {
        let _ = write!(out, " {n:<w$}", w = n.len().max(5));
    }
    let _ = writeln!(out, " {:>7} {:>7} {:>8}", "detect", "elect", "notified");
    for s in &r.scenarios {
        let _ = write!(out, "{:<20}", s.scenario.name());
        for (n, v) in NAMES.iter().zip(&s.verdicts) {
            let _ = write!(out, " {:<w$}", cell(v.outcome), w = n.len().max(5));
        }
        let t = &s.times;
        let _ = writeln!(
            out,
            " {:>7} {:>7} {:>8}",
            ms(t.detect),
            ms(t.elect),
            ms(t.notified)
        );
    }
    for s in &r.scenarios {
        for v in s.verdicts.iter().filter(|v| v.outcome == Outcome::Fail) {
            let _ = writeln!(out, "{} {}: FAIL: {}", s.scenario.name(), v.name, v.reason);
        }
        if let Some(c) = &s.conformance {
            let word = match c.conforms {
                Some(true) => "conforms",
                Some(false) => "FAIL",
                None => "not checked",
            };
            let _ = writeln!(
                out,
                "{} conformance: {word}: {}",
                s.scenario.name(),
                c.detail
            );
        }
    }
    let passed = r.scenarios.iter().filter(|s| s.passed).count();
    let _ = writeln!(
        out,
        "result: {passed} of {} scenarios passed{}",
        r.scenarios.len(),
        if r.passed {
            ""
        } else {
            " (the reasons are above; --json for every verdict's reason)"
        }
    );
    out
}

/// Writes results.json and timeline.html (with one SVG per scenario) to `dir`.
pub fn write_dir(dir: &Path, r: &Results, svgs: &[(Scenario, String)]) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let json = dir.join("results.json");
    let text = serde_json::to_string_pretty(r).expect("results are JSON");
    std::fs::write(&json, text).map_err(|e| io(&json, e))?;
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Bully workbench</title>\n<style>body{font-family:sans-serif;margin:2em} svg{display:block;margin-bottom:2em}</style></head><body>\n",
    );
    let _ = writeln!(
        html,
        "<h1>Bully workbench</h1><p><code>{}</code>, heartbeat {:?}, timeout {:?}, seed {}</p>",
        escape(&r.implementation),
        r.heartbeat_ms,
        r.timeout_ms,
        r.seed
    );
    for (sc, svg) in svgs {
        let path = dir.join(format!("{}.svg", sc.name()));
        std::fs::write(&path, svg).map_err(|e| io(&path, e))?;
        html.push_str(svg);
        html.push('\n');
    }
    html.push_str("</body></html>\n");
    let page = dir.join("timeline.html");
    std::fs::write(&page, html).map_err(|e| io(&page, e))
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
