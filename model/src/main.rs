//! `bully-model`: check, explore or simulate the Bully model.

use bully_model::check::{self, Engine, Options, Strategy};
use bully_model::memory::Budget;
use bully_model::system::{Channels, Config, NetworkKind, StartMode, Timing};
use bully_model::Variant;
use clap::{Args, Parser, Subcommand};
use stateright::{Checker, Model};
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
        /// Number of walks.
        #[arg(long, default_value_t = 1000)]
        runs: usize,
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
        } => {
            let cfg = model.config();
            if engine == Engine::Symbolic {
                let why = if strategy == Strategy::Dfs {
                    Some("it searches breadth first (drop --strategy dfs)".to_string())
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
        } => {
            let cfg = model.config();
            println!("Simulating {cfg}: {runs} walks of up to {depth} steps from seed {seed}");
            let started = std::time::Instant::now();
            // One simulation checker: random walks of up to `depth` steps from the initial
            // state, until about `runs * depth` states have been visited (stateright's
            // simulation otherwise walks forever) or a safety property fails.
            let checker = cfg
                .clone()
                .into_model()
                .checker()
                .target_max_depth(depth)
                .target_state_count(runs.saturating_mul(depth).max(1))
                .finish_when(stateright::HasDiscoveries::AnyFailures)
                .spawn_simulation(seed, stateright::UniformChooser)
                .join();
            let m = cfg.clone().into_model();
            let mut failed = false;
            for (name, path) in checker.discoveries() {
                if m.property(name).expectation == stateright::Expectation::Always {
                    failed = true;
                    println!("`{name}` VIOLATED:");
                    for (i, a) in path.into_actions().iter().enumerate() {
                        println!("  {}. {}", i + 1, m.format_action(a));
                    }
                }
            }
            println!("{} states visited", checker.state_count());
            println!(
                "{} in {:.2}s",
                if failed {
                    "FAILED"
                } else {
                    "no safety violation found"
                },
                started.elapsed().as_secs_f64()
            );
            if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
