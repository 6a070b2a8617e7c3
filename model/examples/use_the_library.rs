//! How to use `bully-model` as a library: run one handler step of the protocol, then check a
//! small configuration exhaustively and read the report.
//!
//! ```sh
//! cargo run -p bully-model --example use_the_library
//! ```

use bully_model::check::{self, Options};
use bully_model::system::Config;
use bully_model::{Bully, Durations, Event, Id, Members, Start};

fn main() {
    // The protocol is a sans-IO handler: a step returns the state and the commands to execute.
    let members = Members::new([Id::from(0), Id::from(1), Id::from(2)]);
    let actor = Bully::new(Start::Full { members }, Durations::default());
    let stepped = actor
        .step(Id::from(1), None, Event::fresh())
        .expect("a start always runs");
    println!("process 1 starts as {:?}", stepped.after(None).role);
    for command in stepped.out.iter() {
        println!("  then: {command:?}");
    }

    // The checked system: two processes, one crash, one recovery, every interleaving.
    let report = check::run(&Config::new(2), &Options::default());
    println!(
        "{}: {} states, {:?}",
        report.description,
        report.unique_states,
        report.outcome()
    );
}
