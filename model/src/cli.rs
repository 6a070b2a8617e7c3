//! The `bully-model` command line: its definitions (clap) and one function per subcommand.
//!
//! The definitions live in the library so that the docs' examples are parsed by the same code.

use crate::check::{self, Engine, Options, Strategy};
use crate::explorer;
use crate::memory::Budget;
use crate::system::{BullySystem, Channels, Config, NetworkKind, StartMode, Timing};
use crate::trace::{TraceFile, TraceProperty};
use crate::Variant;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde::Serialize;
use stateright::Model;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

/// `bully-model`.
#[derive(Parser)]
#[command(
    name = "bully-model",
    version,
    about = "Exhaustively check the Bully leader-election model"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses `args` (the first is the program's name; a usage error exits 2 with clap's
    /// message), noting which model flags `explore` was given: with `--trace`, they must agree
    /// with the trace's configuration.
    pub fn parse_args<I, T>(args: I) -> Cli
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Cli::command().get_matches_from(args);
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if let (Command::Explore(explore), Some(("explore", given))) =
            (&mut cli.command, matches.subcommand())
        {
            explore.model_flags_given = model_flag_ids()
                .into_iter()
                .filter(|id| given.value_source(id) == Some(ValueSource::CommandLine))
                .collect();
        }
        cli
    }
}

/// The IDs of the model's flags ([`ModelArgs`]): each is its field's name.
fn model_flag_ids() -> Vec<String> {
    ModelArgs::augment_args(clap::Command::new("model"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect()
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Explore every reachable state and check every property.
    Check(CheckArgs),
    /// Serve stateright's web Explorer on the model.
    Explore(ExploreArgs),
    /// Random walks, for sizes beyond exhaustive reach.
    Simulate(SimulateArgs),
}

/// `bully-model check`.
#[derive(Args, Clone)]
pub struct CheckArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The engine: `symbolic` keeps each combination of process states once, with its set
    /// of networks as a decision diagram (for sync timing, a correct protocol and no loss);
    /// `explicit` keeps every state; `auto` is symbolic where it applies and pays (full start,
    /// 4 processes or more).
    #[arg(long, value_enum, default_value_t = Engine::Auto)]
    pub engine: Engine,
    /// Search order (depth first: explicit engine only).
    #[arg(long, value_enum, default_value_t = Strategy::Bfs)]
    pub strategy: Strategy,
    /// Checker threads (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Skip the liveness pass (it keeps the whole state graph in memory; for sizes where
    /// only the safety search fits). The report then says liveness was not checked.
    #[arg(long)]
    pub no_liveness: bool,
    /// Explore on after a counterexample to an `always` property (by default the search
    /// stops at the first one and prints it).
    #[arg(long)]
    pub keep_going: bool,
    /// Stop cleanly, with exit code 3, before using this much memory (e.g. 4GiB; default:
    /// half the machine's memory).
    #[arg(long, value_name = "SIZE", value_parser = Budget::parse)]
    pub max_memory: Option<Budget>,
    /// Write the first counterexample found to FILE as a trace (versioned JSON: the
    /// configuration and every step with every process's state after it), for
    /// `bully-node replay`.
    #[arg(long, value_name = "FILE")]
    pub trace_out: Option<PathBuf>,
}

/// `bully-model explore`.
#[derive(Args, Clone)]
pub struct ExploreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to serve on.
    #[arg(long, default_value = explorer::DEFAULT_ADDRESS)]
    pub address: String,
    /// Serve the model a trace file (`check --trace-out`, `simulate --trace-out`) was made
    /// with, and print the link to its last state. Model flags given as well must agree with
    /// the trace's configuration.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// The model flags given on the command line (IDs; set by [`Cli::parse_args`]).
    #[arg(skip)]
    pub model_flags_given: Vec<String>,
}

/// `bully-model simulate`.
#[derive(Args, Clone)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Seed of the first walk.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Length of each walk.
    #[arg(long, default_value_t = 200)]
    pub depth: usize,
    /// Number of walks (walk r uses seed SEED + r, so `--seed SEED+r --runs 1` takes it
    /// again alone).
    #[arg(long, default_value_t = 1000)]
    pub runs: usize,
    /// Write the walk that violated a property, or else the last walk, to FILE as a trace
    /// (see `check --trace-out`).
    #[arg(long, value_name = "FILE")]
    pub trace_out: Option<PathBuf>,
}

/// The model's configuration as flags, shared by every subcommand. This is also the one text
/// form of a configuration ([`ModelArgs::of`], `Display`, `FromStr`): the flags as the command
/// line takes them, so traces, reports and the proptests' scenarios print what `bully-model`
/// accepts, and read it back with the same parser.
#[derive(Args, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelArgs {
    /// Number of processes (IDs 0..N; higher ID wins).
    #[arg(long, short = 'n', default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub processes: u8,
    /// Total crashes over an execution.
    #[arg(long, default_value_t = 1)]
    pub crashes: u8,
    /// Total recoveries over an execution.
    #[arg(long, default_value_t = 1)]
    pub recoveries: u8,
    #[arg(long, value_enum, default_value_t = NetworkKind::Reliable)]
    pub network: NetworkKind,
    /// Message order: FIFO per connection (ZeroMQ over TCP), or any order.
    #[arg(long, value_enum, default_value_t = Channels::Fifo)]
    pub channels: Channels,
    #[arg(long, value_enum, default_value_t = Timing::Sync)]
    pub timing: Timing,
    #[arg(long, value_enum, default_value_t = StartMode::Full)]
    pub start: StartMode,
    /// A deliberately broken protocol variant (to see the checker reject it).
    #[arg(long, value_enum, default_value_t = Variant::Correct)]
    pub variant: Variant,
    /// Keep messages their receiver ignores forever in flight (the full, unreduced graph; the
    /// verdicts are the same, only the state count differs).
    #[arg(long)]
    pub no_reduction: bool,
    /// Crashes never cut sends short: a crashed process's messages in flight are always
    /// delivered (for comparison; a `kill -9` does lose the frames still queued in libzmq).
    #[arg(long)]
    pub no_truncation: bool,
    /// Keep tags as the processes number them instead of renaming them to "current"
    /// and "stale" (to cross-check the renaming; the graph is then infinite, since tags grow
    /// with every election: only depth-bounded searches end).
    #[arg(long)]
    pub no_tag_renaming: bool,
    /// A recovery may also come back with its storage lost, as if it had never run (a node
    /// without `--data-dir`, or whose data directory is gone): shows what such a loss allows.
    #[arg(long)]
    pub lose_storage: bool,
}

impl ModelArgs {
    /// The flags that select `cfg` (the inverse of [`ModelArgs::config`]; the bounds that
    /// [`Config::new`] derives from the size are not flags).
    pub fn of(cfg: &Config) -> ModelArgs {
        ModelArgs {
            processes: u8::try_from(cfg.processes).unwrap_or(u8::MAX),
            crashes: cfg.crashes,
            recoveries: cfg.recoveries,
            network: cfg.network,
            channels: cfg.channels,
            timing: cfg.timing,
            start: cfg.start,
            variant: cfg.variant,
            no_reduction: !cfg.reduction,
            no_truncation: !cfg.truncation,
            no_tag_renaming: !cfg.tag_renaming,
            lose_storage: cfg.lose_storage,
        }
    }

    /// The model configuration these flags describe.
    pub fn config(&self) -> Config {
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

/// The flags as text, defaults left out, except the size (`-n`), which a reader looks for
/// first. Each flag's name, default and value names come from its clap definition (the values
/// through serde, whose names are the clap ones: `text_form_round_trips` checks it).
impl fmt::Display for ModelArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = serde_json::to_value(self).expect("plain data");
        let command = ModelArgs::augment_args(clap::Command::new("bully-model"));
        let mut sep = "";
        for arg in command.get_arguments() {
            let value = &values[arg.get_id().as_str()];
            if value.is_null() {
                continue;
            }
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let default = arg.get_default_values().first();
            let flag = match (arg.get_short(), arg.get_long()) {
                (Some(short), _) => format!("-{short}"),
                (None, Some(long)) => format!("--{long}"),
                (None, None) => continue,
            };
            if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
                if value == &serde_json::Value::Bool(true) {
                    write!(f, "{sep}{flag}")?;
                    sep = " ";
                }
            } else if arg.get_short().is_some() || default.is_none_or(|d| *d != *text) {
                write!(f, "{sep}{flag} {text}")?;
                sep = " ";
            }
        }
        Ok(())
    }
}

/// Reads flags as text (the form `Display` writes, or any the command line accepts) with the
/// command line's own parser.
impl FromStr for ModelArgs {
    type Err = String;
    fn from_str(text: &str) -> Result<ModelArgs, String> {
        #[derive(Parser)]
        #[command(name = "bully-model", no_binary_name = true)]
        struct Flags {
            #[command(flatten)]
            model: ModelArgs,
        }
        Flags::try_parse_from(text.split_whitespace())
            .map(|flags| flags.model)
            .map_err(|e| e.render().to_string().trim_end().to_string())
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

/// Runs one subcommand; the exit code is the process's.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check(args),
        Command::Explore(args) => explore(args),
        Command::Simulate(args) => simulate(args),
    }
}

/// Why `--engine symbolic` cannot check this configuration, if it cannot.
fn symbolic_refusal(args: &CheckArgs, cfg: &Config) -> Option<String> {
    if args.engine != Engine::Symbolic {
        None
    } else if args.strategy == Strategy::Dfs {
        Some("it has its own search order (drop --strategy dfs)".to_string())
    } else if !crate::engine::symbolic::Engine::supports(cfg) {
        Some(format!(
            "it needs a finite graph without a bound: sync timing, a correct protocol and no loss ({cfg}); use --engine explicit"
        ))
    } else {
        None
    }
}

/// The checker's options these flags ask for.
fn check_options(args: &CheckArgs) -> Options {
    let mut opts = Options {
        engine: args.engine,
        strategy: args.strategy,
        progress_every: Some(Duration::from_secs(5)),
        liveness: !args.no_liveness,
        keep_going: args.keep_going,
        // The text report shows counterexamples only; the JSON one has every path.
        example_paths: args.json,
        ..Options::default()
    };
    if args.max_memory.is_some() {
        opts.max_memory = args.max_memory;
    }
    if let Some(t) = args.threads {
        opts.threads = t as usize;
    }
    opts
}

/// `bully-model check`.
pub fn check(args: CheckArgs) -> ExitCode {
    let cfg = args.model.config();
    if let Some(why) = symbolic_refusal(&args, &cfg) {
        eprintln!("bully-model: error: --engine symbolic: {why}");
        return ExitCode::from(2);
    }
    let opts = check_options(&args);
    if !args.json {
        println!(
            "Checking {cfg} (memory budget {}) …",
            opts.max_memory.map_or("none".into(), |b| b.to_string())
        );
    }
    let report = check::run(&cfg, &opts);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serialisable")
        );
    } else {
        print!("{}", check::render(&report));
    }
    let model = cfg.clone().into_model();
    let command = format!("bully-model check {}", cfg.cli_args());
    let trace = report
        .counterexample()
        .and_then(|p| p.trace(&model, command));
    let written = match (&args.trace_out, &trace) {
        (Some(file), Some(trace)) => match write_trace(file, trace) {
            Ok(()) => Some(file.as_path()),
            Err(code) => return code,
        },
        (Some(file), None) => {
            eprintln!(
                "bully-model: no counterexample found: {} not written",
                file.display()
            );
            None
        }
        (None, _) => None,
    };
    if let (Some(trace), false) = (&trace, args.json) {
        print_browser_hint(&model, trace, written);
    }
    ExitCode::from(report.outcome().exit_code())
}

/// Ends a report with a counterexample: how to see it in the Explorer, served on the trace
/// file if one was written, else on the same model's flags.
fn print_browser_hint(model: &BullySystem, trace: &TraceFile, written: Option<&Path>) {
    match explorer::trace_positions(model, trace) {
        Ok(positions) => {
            let serve = match written {
                Some(file) => format!("--trace {}", file.display()),
                None => model.cfg.cli_args(),
            };
            println!("{}", explorer::hint(&serve, &positions));
        }
        Err(why) => eprintln!("bully-model: no Explorer link: the path does not replay ({why})"),
    }
}

/// `bully-model explore`.
pub fn explore(args: ExploreArgs) -> ExitCode {
    let addr: std::net::SocketAddr = match args.address.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bully-model: invalid --address {:?}: {e}", args.address);
            return ExitCode::from(2);
        }
    };
    let (cfg, trace) = match &args.trace {
        None => (args.model.config(), None),
        Some(file) => match open_trace(file, &args) {
            Ok((trace, positions)) => (trace.config.clone(), Some((trace, positions))),
            Err(why) => {
                eprintln!("bully-model: error: {why}");
                return ExitCode::from(2);
            }
        },
    };
    // `serve` panics if it cannot bind: check first, for a clear message.
    if let Err(e) = std::net::TcpListener::bind(addr) {
        eprintln!("bully-model: cannot listen on {addr}: {e}");
        return ExitCode::from(1);
    }
    println!("Exploring {cfg}");
    println!("Explorer: http://{addr}/");
    if let Some((trace, positions)) = trace {
        println!(
            "The trace's last state ({} steps{}): {}",
            trace.steps.len(),
            trace
                .property
                .map_or(String::new(), |p| format!(", `{}` {}", p.name, p.verdict)),
            explorer::url(&addr.to_string(), &positions)
        );
    }
    cfg.into_model().checker().serve(addr);
    ExitCode::SUCCESS
}

/// The trace in `file` and its Explorer positions, or why it cannot be explored (one line):
/// unreadable, another format or version, a model flag given that disagrees with its
/// configuration, or a step its model does not allow.
fn open_trace(file: &Path, args: &ExploreArgs) -> Result<(TraceFile, Vec<usize>), String> {
    let shown = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let trace = TraceFile::parse(&text).map_err(|e| format!("{shown}: {e}"))?;
    if let Some(flag) = flag_disagreeing(&args.model, &args.model_flags_given, &trace.config) {
        return Err(format!(
            "{flag} disagrees with {shown}, made with `{}` (leave the flag out)",
            trace.config.cli_args()
        ));
    }
    let model = trace.config.clone().into_model();
    let positions = explorer::trace_positions(&model, &trace)
        .map_err(|e| format!("{shown} does not replay in its model: {e}"))?;
    Ok((trace, positions))
}

/// The first model flag among `given` (IDs) whose value in `flags` differs from `trace`'s
/// configuration, as typed (`--processes 3`, `--no-reduction`). A flag's ID names its
/// configuration field, without `no_` for a switch that turns something off.
fn flag_disagreeing(flags: &ModelArgs, given: &[String], trace: &Config) -> Option<String> {
    let ours = serde_json::to_value(flags.config()).expect("serialisable");
    let theirs = serde_json::to_value(trace).expect("serialisable");
    given.iter().find_map(|id| {
        let field = id.strip_prefix("no_").unwrap_or(id);
        if ours.get(field) == theirs.get(field) {
            return None;
        }
        let flag = format!("--{}", id.replace('_', "-"));
        Some(match &ours[field] {
            serde_json::Value::Bool(_) => flag,
            serde_json::Value::String(v) => format!("{flag} {v}"),
            v => format!("{flag} {v}"),
        })
    })
}

/// `bully-model simulate`.
pub fn simulate(args: SimulateArgs) -> ExitCode {
    let SimulateArgs {
        model,
        seed,
        depth,
        runs,
        trace_out,
    } = args;
    let cfg = model.config();
    println!("Simulating {cfg}: {runs} walks of up to {depth} steps from seed {seed}");
    let started = std::time::Instant::now();
    let m = cfg.clone().into_model();
    let found = crate::simulate::simulate(&m, seed, runs, depth);
    let walk_seed = seed.wrapping_add(found.walks as u64 - 1);
    if let Some((name, path)) = &found.violation {
        println!(
            "`{name}` VIOLATED (walk {} of {runs}, seed {walk_seed}):",
            found.walks
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
    let written = match &trace_out {
        Some(file) => match write_trace(file, &trace) {
            Ok(()) => Some(file.as_path()),
            Err(code) => return code,
        },
        None => None,
    };
    if found.violation.is_some() {
        print_browser_hint(&m, &trace, written);
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flag that names no configuration field would never be compared with a trace's.
    #[test]
    fn every_model_flag_names_a_configuration_field() {
        let cfg = serde_json::to_value(Config::new(3)).unwrap();
        let ids = model_flag_ids();
        assert!(ids.len() >= 12, "{ids:?}");
        for id in ids {
            let field = id.strip_prefix("no_").unwrap_or(&id);
            assert!(
                cfg.get(field).is_some(),
                "--{id}: no field {field} in {cfg}"
            );
        }
    }

    #[test]
    fn explore_notes_the_model_flags_given_and_compares_only_those() {
        let cli = Cli::parse_args([
            "bully-model",
            "explore",
            "--trace",
            "t.json",
            "-n",
            "3",
            "--no-reduction",
        ]);
        let Command::Explore(args) = cli.command else {
            panic!("explore")
        };
        assert_eq!(args.model_flags_given, ["processes", "no_reduction"]);
        let trace = Config::new(2).variant(Variant::NoHalt).reduction(false);
        // The variant differs, but was not given (its default stands): only -n disagrees.
        assert_eq!(
            flag_disagreeing(&args.model, &args.model_flags_given, &trace),
            Some("--processes 3".to_string())
        );
        let agreeing = Config::new(3).reduction(false).crashes(2);
        assert_eq!(
            flag_disagreeing(&args.model, &args.model_flags_given, &agreeing),
            None
        );
    }

    use clap::ValueEnum;

    fn args(text: &str) -> ModelArgs {
        text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    /// Every value of every flag reads back as written (so serde's names are clap's), and the
    /// defaults are left out but the size.
    #[test]
    fn text_form_round_trips() {
        let defaults = args("");
        assert_eq!(defaults.to_string(), "-n 3");
        let mut all = vec![defaults.clone()];
        for &variant in Variant::value_variants() {
            all.push(ModelArgs {
                variant,
                ..defaults.clone()
            });
        }
        for &network in NetworkKind::value_variants() {
            all.push(ModelArgs {
                network,
                ..defaults.clone()
            });
        }
        for (&timing, &start) in Timing::value_variants()
            .iter()
            .zip(StartMode::value_variants())
        {
            all.push(ModelArgs {
                timing,
                start,
                channels: Channels::Unordered,
                ..defaults.clone()
            });
        }
        all.push(args("-n 5 --crashes 0 --recoveries 2 --no-reduction --no-truncation --no-tag-renaming --lose-storage"));
        for a in all {
            assert_eq!(args(&a.to_string()), a, "{a}");
            assert_eq!(ModelArgs::of(&a.config()), a, "{a}");
        }
        let cfg = Config::new(2).variant(Variant::NoHalt);
        assert_eq!(cfg.cli_args(), "-n 2 --variant no-halt");
        assert!("-n 3 --variant nonsense".parse::<ModelArgs>().is_err());
    }
}
