//! The Explorer's sequence diagram of a path: one timeline per process, an arrow from each
//! message's send to its delivery, a mark for every timer, crash, recovery and loss.

use super::{Action, BullySystem, Env, SysState};
use stateright::actor::Command;
use stateright::Path;
use std::collections::HashMap;
use std::fmt::Write as _;

const COLUMN: usize = 150;
const ROW: usize = 30;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
}

/// Where process `process` is at row `row`.
fn at(process: usize, row: usize) -> (usize, usize) {
    (process * COLUMN, row * ROW)
}

/// Which rows sent the messages in flight (row 0: at start). A message sent twice has two
/// entries; a delivery takes the earliest.
type Sent = HashMap<Env, Vec<usize>>;

pub(crate) fn sequence_diagram(model: &BullySystem, path: Path<SysState, Action>) -> String {
    let steps = path.into_vec();
    let mut svg = canvas(model.cfg.processes, steps.len());
    let mut sent: Sent = HashMap::new();
    if let Some((first, _)) = steps.first() {
        for e in first.network.iter() {
            sent.entry(*e).or_default().push(0);
        }
    }
    let mut labels = String::new();
    for (row, (state, action)) in steps.iter().enumerate() {
        let Some(action) = action else { continue };
        let row = row + 1;
        let (label, process) = mark(&mut svg, &mut sent, action, row);
        let (x, y) = at(process, row);
        let _ = writeln!(
            labels,
            "<text x='{x}' y='{y}' class='svg-event-label'>{}</text>",
            escape(&label)
        );
        for c in model.commands(state, action) {
            if let Command::Send(dst, msg) = c {
                let e = Env::new(stateright::actor::Id::from(process), dst, &msg);
                sent.entry(e).or_default().push(row);
            }
        }
    }
    // Labels last, so they are drawn over the shapes.
    svg += &labels;
    svg += "</svg>";
    svg
}

/// The drawing's header and one timeline per process, `rows` rows long.
fn canvas(processes: usize, rows: usize) -> String {
    let (width, height) = at(processes, rows);
    let width = width + 300; // room for the labels of the last column
    let mut svg = format!(
        "<svg version='1.1' baseProfile='full' width='{width}' height='{height}' \
         viewbox='-20 -20 {} {}' xmlns='http://www.w3.org/2000/svg'>\
         <defs><marker class='svg-event-shape' id='arrow' markerWidth='12' markerHeight='10' \
         refX='12' refY='5' orient='auto'><polygon points='0 0, 12 5, 0 10' /></marker></defs>",
        width + 20,
        height + 20
    );
    for p in 0..processes {
        let (x, y1) = at(p, 0);
        let (_, y2) = at(p, rows);
        let _ = writeln!(
            svg,
            "<line x1='{x}' y1='{y1}' x2='{x}' y2='{y2}' class='svg-actor-timeline' />\
             <text x='{x}' y='{y1}' class='svg-actor-label'>{p}</text>"
        );
    }
    svg
}

/// Draws `action` at `row` (an arrow from its send for a delivery, a circle otherwise) and
/// says what it is and on whose timeline.
fn mark(svg: &mut String, sent: &mut Sent, action: &Action, row: usize) -> (String, usize) {
    let (label, process) = match action {
        Action::Deliver(e) => {
            let from = sent
                .get_mut(e)
                .filter(|rows| !rows.is_empty())
                .map_or(0, |rows| rows.remove(0));
            let (x1, y1) = at(e.src as usize, from);
            let (x2, y2) = at(e.dst as usize, row);
            let _ = writeln!(
                svg,
                "<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' marker-end='url(#arrow)' class='svg-event-line' />"
            );
            return (format!("{:?}", e.msg()), e.dst as usize);
        }
        Action::Drop(e) => {
            if let Some(rows) = sent.get_mut(e).filter(|rows| !rows.is_empty()) {
                rows.remove(0);
            }
            (format!("lost: {:?}", e.msg()), e.dst as usize)
        }
        // The last copy sent is the one cut short.
        Action::CutShort(e) => {
            if let Some(rows) = sent.get_mut(e).filter(|rows| !rows.is_empty()) {
                rows.pop();
            }
            (
                format!("never left {}: {:?}", e.src, e.msg()),
                e.dst as usize,
            )
        }
        Action::Timeout(p, t) => (format!("timer {t:?}"), usize::from(*p)),
        Action::Crash(p) => ("crash".into(), usize::from(*p)),
        Action::Recover(p) => ("recover".into(), usize::from(*p)),
        Action::RecoverLost(p) => ("recover, storage lost".into(), usize::from(*p)),
    };
    let (x, y) = at(process, row);
    let _ = writeln!(
        svg,
        "<circle cx='{x}' cy='{y}' r='10' class='svg-event-shape' />"
    );
    (label, process)
}
