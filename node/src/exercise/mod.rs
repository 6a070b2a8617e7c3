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

use crate::node::{open_store, Durable, NodeConfig, NodeError, StartSpec};
use crate::runtime::{NodeInfo, RunError, Runtime};
use crate::steplog::StepLog;
use crate::transport::TransportError;
use crate::watchers::Watchers;
use crate::wire;
use bully_model::{Bully, Members, Start};
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tracing::info;
use transport::{ExerciseOptions, ExerciseTransport};

fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "::1" | "[::1]")
}

/// `bully-node run --wire exercise ...`, from the point where the native wire would build its
/// transport (arguments, storage, step log and signals are already set up by `cli::run`). The
/// peers live at `host`, each on the port that is its ID.
pub fn run(
    setup: &NodeConfig,
    host: &str,
    steplog: Option<StepLog>,
    stop: Arc<AtomicBool>,
    wake: UnixStream,
    watchers: Watchers,
) -> Result<(), NodeError> {
    let Durable {
        store,
        saved,
        incarnation,
    } = open_store(setup)?;
    let saved = saved.map(|s| s.storage);
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
    let transport = ExerciseTransport::bind(setup.id, opts, Some(wake)).map_err(|e| match e {
        TransportError::Zmq(_) => NodeError::Runtime(e.to_string()),
        _ => NodeError::Config(e.to_string()),
    })?;
    let start = match &setup.start {
        StartSpec::Full(ids) => Start::Full {
            members: Members::new(ids.iter().map(|&i| wire::id(i))),
        },
        StartSpec::Join(c) => Start::Join {
            contact: wire::id(*c),
        },
        StartSpec::JoinEndpoint(_) => unreachable!("the CLI refuses --join on this wire"),
    };
    let mut actor = Bully::new(start, setup.timing);
    actor.variant = setup.variant;
    info!(
        node = setup.id,
        listen = %listen,
        wire = "exercise",
        heartbeat = ?setup.timing.heartbeat,
        timeout = ?setup.timing.timeout,
        restored = saved.is_some(),
        "starting"
    );
    let info = NodeInfo {
        listen,
        advertise: format!("tcp://{host}:{}", setup.id),
    };
    let rt = Runtime::new(setup.id, actor, transport, store, info, steplog, stop)
        .with_watchers(watchers)
        .with_incarnation(incarnation);
    rt.run(saved).map_err(|e| match e {
        RunError::Save(_) | RunError::Transport(_) => NodeError::Runtime(e.to_string()),
    })?;
    info!(node = setup.id, "stopped");
    Ok(())
}
