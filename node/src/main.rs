use bully_node::cli::{self, Cli, Cmd};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(a) => cli::run(a),
        Cmd::Status(a) => cli::status(a),
        Cmd::Cluster(a) => bully_node::cluster::main(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.exit(),
    }
}
