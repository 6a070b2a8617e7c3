//! `conformance [--variant VARIANT] [--foreign ID,...] LOG...`: validates `bully-node` NDJSON step logs against the
//! model (see `bully_proptests::conformance` for exactly what is checked).
//!
//! Exit status: 0 the logs conform, 1 a violation (the first bad step is named), 2 usage or I/O
//! error (including a line that is not a step, and a log without message identity), 3 the logs
//! conform only after leaving an assumption (each breach named, each property said to hold or
//! not).

use bully_model::Variant;
use bully_proptests::conformance::{validate_files, Options};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: conformance [--variant VARIANT] [--foreign ID,...] LOG...

Validates bully-node step logs (`bully-node run --log-format json [--step-log FILE]`, or
`bully-node cluster --step-logs`: DIR/node-<ID>.steps) against the model:
  1. every step is reproduced exactly by the model's handler;
  2. every receipt is paired with the one send it names (sender, start, step, command),
     received once, and nothing is lost between live processes;
  3. epoch order, term order, single coordinator and agreement on consistent cuts.
Assumption breaches are named (a process stalled past the timeout; a frame lost to a
stalled receiver); epoch order, terms, replay and messages must hold regardless.
A node's lines may be spread over several files, and a file may hold several nodes.

  --variant VARIANT   replay with this protocol variant instead of the logged one
                      (correct, never-answer, lowest-wins, ...): a mutant must fail.
  --foreign ID,...    processes that write no log (plain exercise peers, the workbench's
                      observer): what nodes received from them is taken as sent.

Exit status: 0 conforms, 1 violation, 2 usage or I/O error (or a log without message
identity), 3 conforms only after leaving an assumption.";

fn main() -> ExitCode {
    let mut opts = Options::default();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--variant" => {
                let Some(v) = args.next() else {
                    eprintln!("--variant needs a value\n\n{USAGE}");
                    return ExitCode::from(2);
                };
                match serde_json::from_value::<Variant>(serde_json::Value::String(v.clone())) {
                    Ok(v) => opts.variant = Some(v),
                    Err(_) => {
                        eprintln!("unknown variant {v:?}\n\n{USAGE}");
                        return ExitCode::from(2);
                    }
                }
            }
            "--foreign" => {
                let Some(list) = args.next() else {
                    eprintln!("--foreign needs a value\n\n{USAGE}");
                    return ExitCode::from(2);
                };
                for id in list.split(',') {
                    match id.trim().parse::<usize>() {
                        Ok(id) => {
                            opts.foreign.insert(bully_model::Id::from(id));
                        }
                        Err(_) => {
                            eprintln!(
                                "--foreign {list:?}: expected IDs separated by commas\n\n{USAGE}"
                            );
                            return ExitCode::from(2);
                        }
                    }
                }
            }
            "--" => files.extend(args.by_ref().map(PathBuf::from)),
            s if s.starts_with('-') && s.len() > 1 => {
                eprintln!("unknown option {s}\n\n{USAGE}");
                return ExitCode::from(2);
            }
            _ => files.push(PathBuf::from(a)),
        }
    }
    if files.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    match validate_files(&files, &opts) {
        Ok(verdict) => {
            println!("{verdict}");
            ExitCode::from(verdict.outcome().exit_code())
        }
        Err(e) => {
            eprintln!("conformance: {e}");
            ExitCode::from(2)
        }
    }
}
