use bully_node::cli::{self, Cli, Cmd};
use clap::Parser;
use std::process::ExitCode;

/// A command-line error as one line (clap's own message spans several, with a usage block).
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect();
    let msg = parts.join(" ");
    let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
    format!("bully-node: error: {msg} (see --help)")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            eprintln!("{}", one_line(&e));
            return ExitCode::from(2);
        }
        // --help and --version.
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let result = match cli.command {
        Cmd::Run(a) => cli::run(*a),
        Cmd::Status(a) => cli::status(a),
        Cmd::Cluster(a) => bully_node::cluster::main(a),
        Cmd::Replay(a) => cli::replay(a),
        Cmd::Workbench(a) => bully_node::workbench::main(*a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.exit(),
    }
}
