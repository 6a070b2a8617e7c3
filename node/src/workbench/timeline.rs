//! The timeline picture (SVG): one lane per node, who led when, the faults marked, the
//! verdicts beside it.

use super::observer::Seen;
use super::report::escape;
use super::scenario::{Act, Trace};
use super::verdict::{Outcome, Verdict};
use std::fmt::Write as _;
use std::time::Duration;

const LABEL: f64 = 110.0;
const PLOT: f64 = 620.0;
const SIDE: f64 = 330.0;
const LANE: f64 = 30.0;
const TOP: f64 = 34.0;

/// Who led when, from the announcements (before the first, the first node): `(from, to, who)`.
fn tenures(tr: &Trace) -> Vec<(Duration, Duration, u16)> {
    let first = tr.nodes.iter().map(|n| n.0).max().unwrap_or(0);
    let up = tr
        .acts
        .iter()
        .find(|a| a.act == Act::Up { port: first })
        .map_or(Duration::ZERO, |a| a.t);
    let mut claims = vec![(up, first)];
    claims.extend(tr.seen.iter().filter_map(|o| match o.seen {
        Seen::Announced { winner } => Some((o.t, winner)),
        _ => None,
    }));
    let mut out: Vec<(Duration, Duration, u16)> = Vec::new();
    for (i, &(from, who)) in claims.iter().enumerate() {
        if out.last().is_some_and(|l| l.2 == who && l.1 >= from) {
            continue; // the same leader announcing again
        }
        let next = claims[i + 1..]
            .iter()
            .find(|c| c.1 != who)
            .map_or(tr.end, |c| c.0);
        let gone = tr
            .acts
            .iter()
            .find(|a| {
                a.t >= from
                    && matches!(a.act, Act::Kill { port } | Act::Pause { port } | Act::Exited { port, .. } if port == who)
            })
            .map_or(tr.end, |a| a.t);
        out.push((from, next.min(gone), who));
    }
    out
}

/// Intervals `(from, to)` between an opening and a closing act of `port`.
fn spans(
    tr: &Trace,
    port: u16,
    opens: fn(&Act) -> Option<u16>,
    closes: fn(&Act) -> Option<u16>,
) -> Vec<(Duration, Duration)> {
    let mut out = Vec::new();
    let mut open = None;
    for a in &tr.acts {
        if opens(&a.act) == Some(port) && open.is_none() {
            open = Some(a.t);
        } else if closes(&a.act) == Some(port) {
            if let Some(from) = open.take() {
                out.push((from, a.t));
            }
        }
    }
    if let Some(from) = open {
        out.push((from, tr.end));
    }
    out
}

fn running_open(a: &Act) -> Option<u16> {
    match a {
        Act::Start { port, .. } => Some(*port),
        _ => None,
    }
}

fn running_close(a: &Act) -> Option<u16> {
    match a {
        Act::Kill { port } | Act::Exited { port, .. } => Some(*port),
        _ => None,
    }
}

fn paused_open(a: &Act) -> Option<u16> {
    match a {
        Act::Pause { port } => Some(*port),
        _ => None,
    }
}

fn paused_close(a: &Act) -> Option<u16> {
    match a {
        Act::Resume { port } | Act::Kill { port } => Some(*port),
        _ => None,
    }
}

/// The picture of one scenario.
pub fn svg(tr: &Trace, verdicts: &[Verdict]) -> String {
    let mut lanes: Vec<u16> = tr.nodes.iter().map(|n| n.0).collect();
    lanes.sort_unstable_by(|a, b| b.cmp(a));
    let span = tr.end.as_secs_f64().max(0.001);
    let x = |t: Duration| LABEL + PLOT * t.as_secs_f64() / span;
    let y = |port: u16| TOP + LANE * lanes.iter().position(|&p| p == port).unwrap_or(0) as f64;
    let height =
        (TOP + LANE * lanes.len() as f64 + 30.0).max(TOP + 20.0 * verdicts.len() as f64 + 20.0);
    let width = LABEL + PLOT + SIDE;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<text x="4" y="18" font-weight="bold" font-size="14">{}</text>"#,
        tr.scenario.name()
    );
    for &port in &lanes {
        let yy = y(port);
        let _ = writeln!(s, r#"<text x="4" y="{}">{port}</text>"#, yy + 17.0);
        for (a, b) in spans(tr, port, running_open, running_close) {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="10" fill="#d0d0d0"/>"##,
                x(a),
                yy + 8.0,
                (x(b) - x(a)).max(1.0)
            );
        }
        for (a, b) in spans(tr, port, paused_open, paused_close) {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="10" fill="#f2c14e"><title>paused</title></rect>"##,
                x(a),
                yy + 8.0,
                (x(b) - x(a)).max(1.0)
            );
        }
    }
    for (a, b, who) in tenures(tr) {
        if lanes.contains(&who) {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="18" fill="#2b6cb0" opacity="0.8"><title>{who} leads</title></rect>"##,
                x(a),
                y(who) + 4.0,
                (x(b) - x(a)).max(1.0)
            );
        }
    }
    for o in &tr.seen {
        if let Seen::Announced { winner } = o.seen {
            let _ = writeln!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="#0b2545"><title>{winner} announced itself</title></circle>"##,
                x(o.t),
                y(winner) + 13.0
            );
        }
    }
    for a in &tr.acts {
        let (port, mark, color, what) = match a.act {
            Act::Kill { port } => (port, "✕", "#c53030", "kill -9"),
            Act::Pause { port } => (port, "‖", "#b7791f", "SIGSTOP"),
            Act::Resume { port } => (port, "▶", "#2f855a", "SIGCONT"),
            Act::BadFrame { port } => (port, "!", "#dd6b20", "malformed frame"),
            Act::Exited { port, .. } => (port, "☠", "#000000", "ended by itself"),
            _ => continue,
        };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" fill="{color}" font-size="16" text-anchor="middle" font-weight="bold">{mark}<title>{what} at {:.2} s</title></text>"#,
            x(a.t),
            y(port) + 19.0,
            a.t.as_secs_f64()
        );
    }
    let axis = TOP + LANE * lanes.len() as f64 + 6.0;
    let _ = writeln!(
        s,
        r##"<line x1="{LABEL}" y1="{axis}" x2="{}" y2="{axis}" stroke="#555"/>"##,
        LABEL + PLOT
    );
    let step = if span > 20.0 {
        5.0
    } else if span > 6.0 {
        1.0
    } else {
        0.5
    };
    let mut t = 0.0;
    while t <= span {
        let xx = LABEL + PLOT * t / span;
        let _ = writeln!(
            s,
            r##"<text x="{xx:.1}" y="{}" font-size="10" text-anchor="middle" fill="#555">{t}s</text>"##,
            axis + 14.0
        );
        t += step;
    }
    for (i, v) in verdicts.iter().enumerate() {
        let color = match v.outcome {
            Outcome::Pass => "#2f855a",
            Outcome::Fail => "#c53030",
            _ => "#777777",
        };
        let word = match v.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::NotJudged => "not judged",
            Outcome::NotApplicable => "n/a",
        };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" fill="{color}">{}: {word}<title>{}</title></text>"#,
            LABEL + PLOT + 16.0,
            TOP + 14.0 + 20.0 * i as f64,
            v.name,
            escape(&v.reason)
        );
    }
    s.push_str("</svg>\n");
    s
}
