//! Links into stateright's web Explorer (`bully-model explore`).
//!
//! The Explorer addresses a path by positions: `#/steps/I/A1/A2/…` is the path from initial
//! state number `I` (in [`Model::init_states`] order) through the action at position `A1` among
//! those enabled there ([`Model::actions`] order), then `A2`, and so on. Its JSON endpoint
//! `/.states/I/A1/…/Ak` answers with every step enabled after that prefix, each with its
//! `actionIndex`. A path of the model is a link, then, as long as the model's action order is
//! deterministic (it is: the network is kept in a canonical order).

use crate::properties::summarize_state;
use crate::protocol::{Msg, Storage, Timer};
use crate::system::{Action, BullySystem, SysState};
use crate::trace::{Path, TraceFile};
use stateright::actor::Command;
use stateright::Model;

/// Where the Explorer listens unless told otherwise (`bully-model explore --address`).
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:3000";

/// The Explorer's positions of `path`: the initial state's, then each action's among those
/// enabled where it is taken. `None` if the path is not one of `model`'s (an action not
/// enabled).
pub fn positions(model: &BullySystem, path: &Path) -> Option<Vec<usize>> {
    let mut out = vec![model.init_states().iter().position(|s| *s == path.init)?];
    let mut state = path.init.clone();
    let mut enabled = Vec::new();
    for action in &path.actions {
        enabled.clear();
        model.actions(&state, &mut enabled);
        out.push(enabled.iter().position(|a| a == action)?);
        state = model.next_state(&state, *action)?;
    }
    Some(out)
}

/// The Explorer's positions of `trace`'s path, replayed through `model` (so a trace of any
/// engine has them); why not, in one line, if the model does not allow it.
pub fn trace_positions(model: &BullySystem, trace: &TraceFile) -> Result<Vec<usize>, String> {
    let path = trace.path(model)?;
    Ok(positions(model, &path).expect("a replayed trace takes enabled actions"))
}

/// The Explorer's page at the end of `positions`, served on `address`: every step in its
/// history, and the sequence diagram of the whole path.
pub fn url(address: &str, positions: &[usize]) -> String {
    let steps: String = positions.iter().map(|i| format!("/{i}")).collect();
    format!("http://{address}/#/steps{steps}")
}

/// The line that ends a report with a counterexample: the command that serves the Explorer
/// on it and the link to open. `serve` is the command's arguments after `bully-model explore`
/// (the trace file, or the model's flags).
pub fn hint(serve: &str, positions: &[usize]) -> String {
    format!(
        "To see it in the browser: run `bully-model explore {serve}` and open {}",
        url(DEFAULT_ADDRESS, positions)
    )
}

/// What the Explorer shows of a step (its "outcome"): the summary of the state reached, the
/// handler's commands, then the full state reached. None if the step changes nothing.
pub fn describe_step(model: &BullySystem, last: &SysState, action: Action) -> Option<String> {
    let next = model.next_state(last, action)?;
    let mut text = summarize_state(&next) + "\n\n";
    let commands = model.commands(last, &action);
    if !commands.is_empty() {
        text += "The handler's commands:\n";
        for line in command_lines(&commands) {
            text += &format!("  {line}\n");
        }
        text += "\n";
    }
    Some(format!("{text}Next state: {:#?}", next.in_full()))
}

/// The handler's commands, one a line; a run of cancels is one line that names each timer once
/// (a role change cancels every timer, some more than once).
fn command_lines(commands: &[Command<Msg, Timer, (), Storage>]) -> Vec<String> {
    fn flush(lines: &mut Vec<String>, cancelled: &mut Vec<String>) {
        if !cancelled.is_empty() {
            lines.push(format!("cancel timers {}", cancelled.join(", ")));
            cancelled.clear();
        }
    }
    let mut lines = Vec::new();
    let mut cancelled = Vec::new();
    for c in commands {
        if let Command::CancelTimer(t) = c {
            let name = format!("{t:?}");
            if !cancelled.contains(&name) {
                cancelled.push(name);
            }
            continue;
        }
        flush(&mut lines, &mut cancelled);
        match c {
            Command::Send(dst, msg) => {
                lines.push(format!("send to {}: {msg:?}", usize::from(*dst)))
            }
            Command::SetTimer(t, _) => lines.push(format!("set timer {t:?}")),
            Command::Save(s) => lines.push(format!("save {s:?}")),
            Command::CancelTimer(_) | Command::ChooseRandom(..) => {}
        }
    }
    flush(&mut lines, &mut cancelled);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateright::actor::Id;

    #[test]
    fn a_run_of_cancels_is_one_line_naming_each_timer_once() {
        let commands = [
            Command::CancelTimer(Timer::Heartbeat),
            Command::CancelTimer(Timer::Announce),
            Command::CancelTimer(Timer::Heartbeat),
            Command::Send(
                Id::from(0),
                Msg::Resign {
                    epoch: crate::Epoch::none(),
                },
            ),
            Command::CancelTimer(Timer::Announce),
            Command::SetTimer(Timer::Heartbeat, Default::default()),
        ];
        assert_eq!(
            command_lines(&commands),
            [
                "cancel timers Heartbeat, Announce".to_string(),
                format!(
                    "send to 0: {:?}",
                    Msg::Resign {
                        epoch: crate::Epoch::none()
                    }
                ),
                "cancel timers Announce".to_string(),
                "set timer Heartbeat".to_string(),
            ]
        );
    }

    #[test]
    fn a_link_lists_the_positions_after_the_address() {
        assert_eq!(
            url("127.0.0.1:3000", &[0, 3, 1]),
            "http://127.0.0.1:3000/#/steps/0/3/1"
        );
    }
}
