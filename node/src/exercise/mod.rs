//! The course exercise's wire: `bully-node run --wire exercise <port> [<coordinator_port>]`.
//!
//! The node speaks exactly what the Python exercise nodes speak (pickled dicts on REQ/REP,
//! port = ID, see `node/PROTOCOL.md`, section "Exercise wire"), and runs the same verified
//! handler as on the native wire. [`codec`] reads and writes the frames (safely: no pickle ever
//! runs code), [`adapter`] maps them to and from the model's messages, [`transport`] owns the
//! sockets.

pub mod adapter;
pub mod codec;
pub mod transport;

use crate::node::{assemble, Bound, Controls, NodeConfig, NodeError};
use crate::runtime::NodeInfo;
use transport::{ExerciseOptions, ExerciseTransport};

fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "::1" | "[::1]")
}

/// `bully-node run --wire exercise ...`, from the point where the native wire would build its
/// transport (arguments, step log and signals are already set up by `cli::run`). The peers
/// live at `host`, each on the port that is its ID.
pub fn run(setup: &NodeConfig, host: &str, controls: Controls) -> Result<(), NodeError> {
    assemble(setup, "exercise", controls, |_, wake, _| {
        // Like the exercise's `tcp://*:<port>`, but only on loopback when the peers are local.
        let listen = if is_loopback(host) {
            setup.listen.clone()
        } else {
            format!("tcp://*:{}", setup.id)
        };
        let opts = ExerciseOptions {
            listen: listen.clone(),
            host: host.to_string(),
            max_frame: setup.max_frame,
            timeout: setup.timing.timeout,
        };
        let transport = ExerciseTransport::bind(setup.id, opts, Some(wake))?;
        let info = NodeInfo {
            listen,
            advertise: format!("tcp://{host}:{}", setup.id),
        };
        Ok(Some(Bound {
            transport,
            info,
            start: setup.start.clone(),
        }))
    })
}
