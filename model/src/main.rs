//! `bully-model`: check, explore or simulate the Bully model.

use bully_model::check::{self, Engine, Options, Strategy};
use bully_model::memory::Budget;
use bully_model::simulate;
use bully_model::system::{Channels, Config, NetworkKind, StartMode, Timing};
use bully_model::trace::{TraceFile, TraceProperty};
use bully_model::Variant;
use clap::{Args, Parser, Subcommand};
use stateright::Model;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "bully-model",
    version,
    about = "Exhaustively check the Bully leader-election model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Explore every reachable state and check every property.
    Check {
        #[command(flatten)]
        model: ModelArgs,
        /// The engine: `symbolic` keeps each combination of process states once, with its set
        /// of networks as a decision diagram (for sync timing, a correct protocol and no loss);
        /// `explicit` keeps every state; `auto` is symbolic where it applies and pays (full start,
        /// 4 processes or more).
        #[arg(long, value_enum, default_value_t = Engine::Auto)]
        engine: Engine,
        /// Search order (depth first: explicit engine only).
        #[arg(long, value_enum, default_value_t = Strategy::Bfs)]
        strategy: Strategy,
        /// Checker threads (default: all cores).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Skip the liveness pass (it keeps the whole state graph in memory; for sizes where
        /// only the safety search fits). The report then says liveness was not checked.
        #[arg(long)]
        no_liveness: bool,
        /// Explore on after a counterexample to an `always` property (by default the search
        /// stops at the first one and prints it).
        #[arg(long)]
        keep_going: bool,
        /// Stop cleanly, with exit code 3, before using this much memory (e.g. 4GiB; default:
        /// half the machine's memory).
        #[arg(long, value_name = "SIZE", value_parser = Budget::parse)]
        max_memory: Option<Budget>,
        /// Write the first counterexample found to FILE as a trace (versioned JSON: the
        /// configuration and every step with every process's state after it), for
        /// `bully-node replay`.
        #[arg(long, value_name = "FILE")]
        trace_out: Option<PathBuf>,
    },
    /// Serve stateright's web Explorer on the model.
    Explore {
        #[command(flatten)]
        model: ModelArgs,
        /// Address to serve on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        address: String,
    },
    /// Random walks, for sizes beyond exhaustive reach.
    Simulate {
        #[command(flatten)]
        model: ModelArgs,
        /// Seed of the first walk.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Length of each walk.
        #[arg(long, default_value_t = 200)]
        depth: usize,
        /// Number of walks (walk r uses seed SEED + r, so `--seed SEED+r --runs 1` takes it
        /// again alone).
        #[arg(long, default_value_t = 1000)]
        runs: usize,
        /// Write the walk that violated a property, or else the last walk, to FILE as a trace
        /// (see `check --trace-out`).
        #[arg(long, value_name = "FILE")]
        trace_out: Option<PathBuf>,
    },
}

#[derive(Args, Clone)]
struct ModelArgs {
    /// Number of processes (IDs 0..N; higher ID wins).
    #[arg(long, short = 'n', default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=16))]
    processes: u8,
    /// Total crashes over an execution.
    #[arg(long, default_value_t = 1)]
    crashes: u8,
    /// Total recoveries over an execution.
    #[arg(long, default_value_t = 1)]
    recoveries: u8,
    #[arg(long, value_enum, default_value_t = NetworkKind::Reliable)]
    network: NetworkKind,
    /// Message order: FIFO per connection (ZeroMQ over TCP), or any order.
    #[arg(long, value_enum, default_value_t = Channels::Fifo)]
    channels: Channels,
    #[arg(long, value_enum, default_value_t = Timing::Sync)]
    timing: Timing,
    #[arg(long, value_enum, default_value_t = StartMode::Full)]
    start: StartMode,
    /// A deliberately broken protocol variant (to see the checker reject it).
    #[arg(long, value_enum, default_value_t = Variant::Correct)]
    variant: Variant,
    /// Keep messages their receiver ignores forever in flight (the full, unreduced graph; the
    /// verdicts are the same, only the state count differs).
    #[arg(long)]
    no_reduction: bool,
    /// Crashes never cut sends short: a crashed process's messages in flight are always
    /// delivered (for comparison; a `kill -9` does lose the frames still queued in libzmq).
    #[arg(long)]
    no_truncation: bool,
    /// Keep tags as the processes number them instead of renaming them to "current"
    /// and "stale" (to cross-check the renaming; the graph is then infinite, since tags grow
    /// with every election: only depth-bounded searches end).
    #[arg(long)]
    no_tag_renaming: bool,
    /// A recovery may also come back with its storage lost, as if it had never run (a node
    /// without `--data-dir`, or whose data directory is gone): shows what such a loss allows.
    #[arg(long)]
    lose_storage: bool,
}

impl ModelArgs {
    fn config(&self) -> Config {
        Config::new(self.processes as usize)
            .crashes(self.crashes)
            .recoveries(self.recoveries)
            .network(self.network)
            .channels(self.channels)
            .timing(self.timing)
            .start(self.start)
            .variant(self.variant)
            .reduction(!self.no_reduction)
            .truncation(!self.no_truncation)
            .tag_renaming(!self.no_tag_renaming)
            .lose_storage(self.lose_storage)
    }
}

/// Writes `trace` to `file`; on failure says why in one line (exit 1: the check ran, its
/// result could not be kept).
fn write_trace(file: &std::path::Path, trace: &TraceFile) -> Result<(), ExitCode> {
    let text = serde_json::to_string_pretty(trace).expect("serialisable");
    match std::fs::write(file, text + "\n") {
        Ok(()) => {
            eprintln!(
                "trace written to {} ({} steps)",
                file.display(),
                trace.steps.len()
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("bully-model: cannot write {}: {e}", file.display());
            Err(ExitCode::from(1))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            model,
            engine,
            strategy,
            threads,
            json,
            no_liveness,
            keep_going,
            max_memory,
            trace_out,
        } => {
            let cfg = model.config();
            if engine == Engine::Symbolic {
                let why = if strategy == Strategy::Dfs {
                    Some("it has its own search order (drop --strategy dfs)".to_string())
                } else if !bully_model::symbolic::Engine::supports(&cfg) {
                    Some(format!(
                        "it needs a finite graph without a bound: sync timing, a correct protocol and no loss ({cfg}); use --engine explicit"
                    ))
                } else {
                    None
                };
                if let Some(why) = why {
                    eprintln!("bully-model: error: --engine symbolic: {why}");
                    return ExitCode::from(2);
                }
            }
            let mut opts = Options {
                engine,
                strategy,
                progress_every: Some(Duration::from_secs(5)),
                liveness: !no_liveness,
                keep_going,
                // The text report shows counterexamples only; the JSON one has every path.
                example_paths: json,
                ..Options::default()
            };
            if max_memory.is_some() {
                opts.max_memory = max_memory;
            }
            if let Some(t) = threads {
                opts.threads = t as usize;
            }
            if !json {
                println!(
                    "Checking {cfg} (memory budget {}) …",
                    opts.max_memory.map_or("none".into(), |b| b.to_string())
                );
            }
            let report = check::run(&cfg, &opts);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serialisable")
                );
            } else {
                print!("{}", check::render(&report));
            }
            if let Some(file) = trace_out {
                let model = cfg.clone().into_model();
                let command = format!("bully-model check {}", cfg.cli_args());
                match report
                    .counterexample()
                    .and_then(|p| p.trace(&model, command))
                {
                    Some(trace) => {
                        if let Err(code) = write_trace(&file, &trace) {
                            return code;
                        }
                    }
                    None => eprintln!(
                        "bully-model: no counterexample found: {} not written",
                        file.display()
                    ),
                }
            }
            ExitCode::from(report.outcome().exit_code())
        }
        Command::Explore { model, address } => {
            let cfg = model.config();
            let addr: std::net::SocketAddr = match address.parse() {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("bully-model: invalid --address {address:?}: {e}");
                    return ExitCode::from(2);
                }
            };
            // `serve` panics if it cannot bind: check first, for a clear message.
            if let Err(e) = std::net::TcpListener::bind(addr) {
                eprintln!("bully-model: cannot listen on {addr}: {e}");
                return ExitCode::from(1);
            }
            println!("Exploring {cfg}");
            println!("Explorer: http://{addr}/");
            cfg.into_model().checker().serve(addr);
            ExitCode::SUCCESS
        }
        Command::Simulate {
            model,
            seed,
            depth,
            runs,
            trace_out,
        } => {
            let cfg = model.config();
            println!("Simulating {cfg}: {runs} walks of up to {depth} steps from seed {seed}");
            let started = std::time::Instant::now();
            let m = cfg.clone().into_model();
            let found = simulate::simulate(&m, seed, runs, depth);
            if let Some((name, path)) = &found.violation {
                println!(
                    "`{name}` VIOLATED (walk {} of {}, seed {}):",
                    found.walks,
                    runs,
                    seed.wrapping_add(found.walks as u64 - 1)
                );
                for step in path.steps(&m) {
                    println!("  {step}");
                }
            }
            println!("{} states visited in {} walk(s)", found.states, found.walks);
            println!(
                "{} in {:.2}s",
                if found.violation.is_some() {
                    "FAILED"
                } else {
                    "no safety violation found"
                },
                started.elapsed().as_secs_f64()
            );
            if let Some(file) = trace_out {
                let walk_seed = seed.wrapping_add(found.walks as u64 - 1);
                let trace = TraceFile::new(
                    &m,
                    &found.last,
                    format!(
                        "bully-model simulate {} --seed {walk_seed} --depth {depth} --runs 1",
                        cfg.cli_args()
                    ),
                    found.violation.as_ref().map(|(name, _)| TraceProperty {
                        name: name.to_string(),
                        kind: "always".to_string(),
                        verdict: "violated".to_string(),
                    }),
                );
                if let Err(code) = write_trace(&file, &trace) {
                    return code;
                }
            }
            if found.violation.is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
