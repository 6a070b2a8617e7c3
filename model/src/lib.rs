//! Bully leader election, written once as a stateright [`Actor`](stateright::actor::Actor)
//! ([`protocol::Bully`]), and the exhaustively checked model of it ([`system::BullySystem`]).

pub mod check;
pub mod cli;
pub mod conformance;
pub mod engine;
pub mod epochs;
pub mod explorer;
pub mod invariants;
pub mod liveness;
pub mod mdd;
pub mod memory;
pub mod mutants;
pub mod properties;
pub mod protocol;
pub mod simulate;
pub mod stateright_model;
pub mod step;
pub mod system;
pub mod trace;

pub use mutants::Variant;
pub use protocol::{
    Bully, Durations, Epoch, Members, Msg, Role, Start, State, Storage, Tag, Timer, Wait,
};
pub use stateright::actor::{Id, Out};
pub use step::{timer_name, Cmd, Event, LoggedEvent, LoggedStep, SendId, Stepped};
