//! `bully-model`: check, explore or simulate the Bully model (the definitions: [`bully_model::cli`]).

use bully_model::cli::{self, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run(Cli::parse_args(std::env::args_os()))
}
