//! Links into stateright's web Explorer (`bully-model explore`).
//!
//! The Explorer addresses a path by positions: `#/steps/I/A1/A2/…` is the path from initial
//! state number `I` (in [`Model::init_states`] order) through the action at position `A1` among
//! those enabled there ([`Model::actions`] order), then `A2`, and so on. Its JSON endpoint
//! `/.states/I/A1/…/Ak` answers with every step enabled after that prefix, each with its
//! `actionIndex`. A path of the model is a link, then, as long as the model's action order is
//! deterministic (it is: the network is kept in a canonical order).

use crate::system::BullySystem;
use crate::trace::{Path, TraceFile};
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
