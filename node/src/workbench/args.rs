//! The workbench's command line, and the checked settings a run works from.

use crate::config::parse_duration;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// What happens to a fresh cluster after every node has joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Form the cluster (the first node alone, the others joining through it); no fault.
    Join,
    /// `kill -9` the coordinator.
    KillCoordinator,
    /// Kill the coordinator, let the others elect, start it again with the same port.
    RestartCoordinator,
    /// Kill the coordinator, then the next in line during the election.
    KillTwo,
    /// `SIGSTOP` the coordinator past the timeout, then `SIGCONT`.
    PauseCoordinator,
    /// One malformed frame to each node, then kill the coordinator.
    BadFrame,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::Join,
        Scenario::KillCoordinator,
        Scenario::RestartCoordinator,
        Scenario::KillTwo,
        Scenario::PauseCoordinator,
        Scenario::BadFrame,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Join => "join",
            Scenario::KillCoordinator => "kill-coordinator",
            Scenario::RestartCoordinator => "restart-coordinator",
            Scenario::KillTwo => "kill-two",
            Scenario::PauseCoordinator => "pause-coordinator",
            Scenario::BadFrame => "bad-frame",
        }
    }
}

#[derive(Args, Debug)]
pub struct WorkbenchArgs {
    /// The command that starts one node of the implementation under test, run by `sh -c`.
    /// `{port}` is the node's port (= its ID), `{contact}` the port of the node it joins through
    /// (empty for the first node). Also available: `{heartbeat}` and `{timeout}` in seconds,
    /// `{heartbeat_ms}` and `{timeout_ms}` in milliseconds, `{dir}` (a directory for this node)
    /// and `{steps}` (a step-log path in it, checked with the conformance checker when the
    /// file is written).
    #[arg(long = "impl", value_name = "TEMPLATE")]
    pub template: String,
    /// Nodes of the implementation under test.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(2..=16))]
    pub nodes: u16,
    /// Verified nodes (`bully-node run --wire exercise`) added to the cluster, between the
    /// implementation's nodes in port order.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=16))]
    pub reference: u16,
    /// The workbench's own observer listens on this port; the nodes take the ports after it
    /// (the default lies below the range Linux hands out to outgoing connections).
    #[arg(long, default_value_t = 25100)]
    pub base_port: u16,
    /// The implementation's heartbeat period.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub heartbeat: Duration,
    /// The implementation's reply timeout (after which a silent peer is presumed down).
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub timeout: Duration,
    /// Run this scenario (repeat for several, in the order given) [default: every scenario].
    #[arg(long = "scenario", value_enum, value_name = "NAME")]
    pub scenarios: Vec<Scenario>,
    /// Draws the fault times; the same seed gives the same times [default: from the clock,
    /// printed in the report].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write every node's log, the results (results.json) and the timeline pictures
    /// (timeline.html, <scenario>.svg) to DIR.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Which program a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Program {
    /// The implementation under test (`--impl`).
    UnderTest,
    /// A verified node (`--reference`).
    Reference,
}

/// The checked settings of one workbench run.
#[derive(Clone, Debug)]
pub struct Settings {
    pub template: String,
    /// Every node's port and program, ascending by port.
    pub nodes: Vec<(u16, Program)>,
    pub observer_port: u16,
    pub heartbeat: Duration,
    pub timeout: Duration,
    pub scenarios: Vec<Scenario>,
    pub seed: u64,
    pub report: Option<PathBuf>,
    pub json: bool,
}

impl Settings {
    /// Checks the arguments (every error is a usage error: one line, exit 2).
    pub fn from_args(a: &WorkbenchArgs) -> Result<Settings, String> {
        for needed in ["{port}", "{contact}"] {
            if !a.template.contains(needed) {
                return Err(format!(
                    "--impl {:?}: the template needs {needed} (e.g. 'python3 my_bully.py {{port}} {{contact}}')",
                    a.template
                ));
            }
        }
        let count = a.nodes + a.reference;
        if u32::from(a.base_port) + u32::from(count) > 65535 || a.base_port < 1024 {
            return Err(format!(
                "--base-port {}: the observer and {count} nodes need ports {}..={} within 1024..=65535",
                a.base_port,
                a.base_port,
                u32::from(a.base_port) + u32::from(count)
            ));
        }
        if a.timeout < Duration::from_millis(50) {
            return Err("--timeout must be at least 50ms".into());
        }
        let ports = (1..=count).map(|i| a.base_port + i);
        // From the highest port down: the implementation's nodes, with a reference node in
        // every second place until there are `reference` of them.
        let mut nodes: Vec<(u16, Program)> = Vec::new();
        let mut refs_left = a.reference;
        let mut impls_left = a.nodes;
        for (i, port) in ports.rev().enumerate() {
            let reference = refs_left > 0 && (i % 2 == 1 || impls_left == 0);
            if reference {
                refs_left -= 1;
                nodes.push((port, Program::Reference));
            } else {
                impls_left -= 1;
                nodes.push((port, Program::UnderTest));
            }
        }
        nodes.reverse();
        let mut scenarios = a.scenarios.clone();
        if scenarios.is_empty() {
            scenarios = Scenario::ALL.to_vec();
        }
        let seed = a.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                % 1_000_000
        });
        Ok(Settings {
            template: a.template.clone(),
            nodes,
            observer_port: a.base_port,
            heartbeat: a.heartbeat,
            timeout: a.timeout,
            scenarios,
            seed,
            report: a.report.clone(),
            json: a.json,
        })
    }

    /// The ports that must be free before a run: the observer's and every node's.
    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        std::iter::once(self.observer_port).chain(self.nodes.iter().map(|n| n.0))
    }

    /// A grace period on top of the implementation's own bounds: scheduling on a busy machine,
    /// process start-up, one round trip.
    pub fn slack(&self) -> Duration {
        Duration::from_millis(250).max(self.timeout / 2)
    }

    /// The bound on noticing a dead or frozen coordinator: the next heartbeat goes out within
    /// one period and is given up after one timeout. When only the new coordinator's
    /// announcement shows the election (a frozen coordinator has no tombstone), the election
    /// is in it too: one timeout waiting for the old coordinator's answer, and up to two for
    /// lower processes' halt acknowledgements (the verified node's halt phase; the observer, a
    /// plain exercise process, never acknowledges one). Then the slack.
    pub fn detect_bound(&self) -> Duration {
        detect_bound(self.heartbeat, self.timeout, self.slack())
    }

    /// The bound on a new coordinator's announcement after the last fault: the detection bound,
    /// then up to four timeouts waiting for a candidate that died during its election (the
    /// verified node's wait) before electing again.
    pub fn elect_bound(&self) -> Duration {
        self.detect_bound() + 4 * self.timeout
    }
}

/// See [`Settings::detect_bound`].
pub fn detect_bound(heartbeat: Duration, timeout: Duration, slack: Duration) -> Duration {
    heartbeat + timeout + 3 * timeout + slack
}

/// Reproducible fault times: the chaos schedule's generator.
pub use crate::chaos::Draw;
