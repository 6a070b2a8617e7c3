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

/// Where things go in one scenario's picture.
struct Layout {
    lanes: Vec<u16>,
    span: f64,
}

impl Layout {
    fn x(&self, t: Duration) -> f64 {
        LABEL + PLOT * t.as_secs_f64() / self.span
    }

    fn y(&self, port: u16) -> f64 {
        TOP + LANE * self.lanes.iter().position(|&p| p == port).unwrap_or(0) as f64
    }

    fn bar(&self, s: &mut String, (a, b): (Duration, Duration), y: f64, style: &str, title: &str) {
        let _ = writeln!(
            s,
            r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" {style}><title>{title}</title></rect>"#,
            self.x(a),
            (self.x(b) - self.x(a)).max(1.0)
        );
    }
}

/// Each node's lane: running, paused, leading, announcements.
fn lanes(s: &mut String, f: &Layout, tr: &Trace) {
    for &port in &f.lanes {
        let y = f.y(port);
        let _ = writeln!(s, r#"<text x="4" y="{}">{port}</text>"#, y + 17.0);
        for span in spans(tr, port, running_open, running_close) {
            f.bar(
                s,
                span,
                y + 8.0,
                r##"height="10" fill="#d0d0d0""##,
                "running",
            );
        }
        for span in spans(tr, port, paused_open, paused_close) {
            f.bar(
                s,
                span,
                y + 8.0,
                r##"height="10" fill="#f2c14e""##,
                "paused",
            );
        }
    }
    for (a, b, who) in tenures(tr) {
        if f.lanes.contains(&who) {
            let style = r##"height="18" fill="#2b6cb0" opacity="0.8""##;
            f.bar(s, (a, b), f.y(who) + 4.0, style, &format!("{who} leads"));
        }
    }
    for o in &tr.seen {
        if let Seen::Announced { winner } = o.seen {
            let _ = writeln!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="#0b2545"><title>{winner} announced itself</title></circle>"##,
                f.x(o.t),
                f.y(winner) + 13.0
            );
        }
    }
}

/// The faults and unexpected exits, as marks on the lanes.
fn marks(s: &mut String, f: &Layout, tr: &Trace) {
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
            f.x(a.t),
            f.y(port) + 19.0,
            a.t.as_secs_f64()
        );
    }
}

fn axis(s: &mut String, f: &Layout) {
    let y = TOP + LANE * f.lanes.len() as f64 + 6.0;
    let _ = writeln!(
        s,
        r##"<line x1="{LABEL}" y1="{y}" x2="{}" y2="{y}" stroke="#555"/>"##,
        LABEL + PLOT
    );
    let step = if f.span > 20.0 {
        5.0
    } else if f.span > 6.0 {
        1.0
    } else {
        0.5
    };
    let mut t = 0.0;
    while t <= f.span {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle" fill="#555">{t}s</text>"##,
            LABEL + PLOT * t / f.span,
            y + 14.0
        );
        t += step;
    }
}

fn verdict_list(s: &mut String, verdicts: &[Verdict]) {
    for (i, v) in verdicts.iter().enumerate() {
        let (color, word) = match v.outcome {
            Outcome::Pass => ("#2f855a", "pass"),
            Outcome::Fail => ("#c53030", "FAIL"),
            Outcome::NotJudged => ("#777777", "not judged"),
            Outcome::NotApplicable => ("#777777", "n/a"),
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
}

/// The picture of one scenario.
pub fn svg(tr: &Trace, verdicts: &[Verdict]) -> String {
    let mut lanes_desc: Vec<u16> = tr.nodes.iter().map(|n| n.0).collect();
    lanes_desc.sort_unstable_by(|a, b| b.cmp(a));
    let f = Layout {
        span: tr.end.as_secs_f64().max(0.001),
        lanes: lanes_desc,
    };
    let height =
        (TOP + LANE * f.lanes.len() as f64 + 30.0).max(TOP + 20.0 * verdicts.len() as f64 + 20.0);
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
    lanes(&mut s, &f, tr);
    marks(&mut s, &f, tr);
    axis(&mut s, &f);
    verdict_list(&mut s, verdicts);
    s.push_str("</svg>\n");
    s
}
