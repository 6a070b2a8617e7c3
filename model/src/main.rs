//! `bully-model`: check, explore or simulate the Bully model (the definitions: [`bully_model::cli`]).

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    bully_model::cli::run(bully_model::cli::Cli::parse())
}
