//! Leadership hooks: shell commands run when this node takes office, steps down, or changes
//! role (like keepalived's notify scripts).
//!
//! Hooks run on their own thread, one at a time and in the order of the changes, so a slow
//! hook never delays the protocol (a coordinator that stopped answering heartbeats while a
//! script ran would be deposed). A hook that runs longer than its timeout is killed with its
//! whole process group; a failed or killed hook is logged and counted, and the node carries on.

use crate::leadership::{Change, Leadership};
use crate::metrics::Metrics;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{info, warn};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The commands, each run with `sh -c`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hooks {
    /// When this node takes office.
    pub on_coordinator: Option<String>,
    /// When it stops acting as coordinator: deposed, halted, or shutting down.
    pub on_step_down: Option<String>,
    /// On every change of role, of whom it follows, or of the epoch.
    pub on_change: Option<String>,
    /// A hook still running after this long is killed.
    pub timeout: Duration,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            on_coordinator: None,
            on_step_down: None,
            on_change: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.on_coordinator.is_none() && self.on_step_down.is_none() && self.on_change.is_none()
    }
}

struct Job {
    hook: &'static str,
    command: String,
    change: Change,
}

/// The hook thread. Dropping it waits for the hooks already queued (each bounded by the
/// timeout), so a hook for the last change (e.g. the step-down at shutdown) still runs.
pub struct HookRunner {
    hooks: Hooks,
    queue: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl HookRunner {
    pub fn start(hooks: Hooks, metrics: Metrics) -> HookRunner {
        let (tx, rx) = channel::<Job>();
        let timeout = hooks.timeout;
        let thread = std::thread::Builder::new()
            .name("hooks".into())
            .spawn(move || {
                for job in rx {
                    let outcome = run(&job, timeout);
                    metrics.hook_run(job.hook, outcome);
                }
            })
            .expect("spawn the hook thread");
        HookRunner {
            hooks,
            queue: Some(tx),
            thread: Some(thread),
        }
    }

    /// Queues the hooks `change` calls for: the step-down first, then taking office, then the
    /// change itself.
    pub fn notify(&self, change: &Change) {
        let mut jobs = Vec::new();
        if change.stepped_down() {
            jobs.push(("on-step-down", &self.hooks.on_step_down));
        }
        if change.took_office() {
            jobs.push(("on-coordinator", &self.hooks.on_coordinator));
        }
        jobs.push(("on-change", &self.hooks.on_change));
        for (hook, command) in jobs {
            if let (Some(command), Some(queue)) = (command, &self.queue) {
                let _ = queue.send(Job {
                    hook,
                    command: command.clone(),
                    change: *change,
                });
            }
        }
    }
}

impl Drop for HookRunner {
    fn drop(&mut self) {
        self.queue = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn epoch_text(l: &Leadership) -> String {
    l.epoch.map(|e| e.to_string()).unwrap_or_default()
}

/// Runs one hook to its end or its timeout; the outcome for the metrics.
fn run(job: &Job, timeout: Duration) -> &'static str {
    let c = &job.change;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(&job.command)
        .env("BULLY_ID", c.id.to_string())
        .env("BULLY_ROLE", c.current.role.as_str())
        .env("BULLY_PREVIOUS_ROLE", c.previous.role.as_str())
        .env(
            "BULLY_COORDINATOR",
            c.current
                .coordinator
                .map(|x| x.to_string())
                .unwrap_or_default(),
        )
        .env("BULLY_EPOCH", epoch_text(&c.current))
        .stdin(Stdio::null())
        // Its own process group, so a timeout kills what the shell started too.
        .process_group(0);
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            warn!(node = c.id, hook = job.hook, "hook could not start: {e}");
            return "failed";
        }
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => {
                info!(node = c.id, hook = job.hook, took = ?started.elapsed(), "hook ran");
                return "ok";
            }
            Ok(Some(status)) => {
                warn!(node = c.id, hook = job.hook, "hook failed: {status}");
                return "failed";
            }
            Ok(None) if started.elapsed() >= timeout => {
                // SAFETY: signalling the process group the hook leads; no memory is touched.
                unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
                let _ = child.wait();
                warn!(
                    node = c.id,
                    hook = job.hook,
                    "hook killed after {timeout:?} (--hook-timeout)"
                );
                return "timeout";
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                warn!(node = c.id, hook = job.hook, "hook: {e}");
                return "failed";
            }
        }
    }
}
