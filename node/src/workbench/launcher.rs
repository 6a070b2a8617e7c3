//! The nodes' processes: started from the `--impl` template (or as verified nodes), signalled
//! as a whole process group, killed when the launcher is dropped, and dying with the workbench
//! in any case (`child::die_with_parent`).

use super::args::{Program, Settings};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// One node's process (the current incarnation of its port).
struct Proc {
    child: Child,
    paused: bool,
}

/// Every process of one scenario's cluster.
pub struct Launcher {
    settings: Settings,
    /// This executable, for the reference nodes.
    exe: PathBuf,
    /// Where each node's log, directory and step log live.
    dir: PathBuf,
    procs: BTreeMap<u16, Proc>,
}

/// What became of a process that was not stopped by the workbench.
pub struct Exit {
    pub port: u16,
    pub status: ExitStatus,
}

impl Launcher {
    pub fn new(settings: &Settings, exe: PathBuf, dir: PathBuf) -> Launcher {
        Launcher {
            settings: settings.clone(),
            exe,
            dir,
            procs: BTreeMap::new(),
        }
    }

    pub fn log_path(&self, port: u16) -> PathBuf {
        self.dir.join(format!("node-{port}.log"))
    }

    pub fn node_dir(&self, port: u16) -> PathBuf {
        self.dir.join(format!("node-{port}"))
    }

    pub fn steps_path(&self, port: u16) -> PathBuf {
        self.node_dir(port).join("steps.ndjson")
    }

    /// The shell command that starts `port`, joining through `contact`.
    pub fn command_line(&self, port: u16, contact: Option<u16>) -> String {
        let secs = |d: std::time::Duration| format!("{}", d.as_secs_f64());
        let ms = |d: std::time::Duration| format!("{}ms", d.as_millis());
        let program = self.program(port);
        let template = match program {
            Program::UnderTest => self.settings.template.clone(),
            Program::Reference => format!(
                "{} run --wire exercise {{port}} {{contact}} --heartbeat {} --timeout {} --data-dir {{dir}} --step-log {{steps}}",
                shell_quote(&self.exe.display().to_string()),
                ms(self.settings.heartbeat),
                ms(self.settings.timeout)
            ),
        };
        template
            .replace("{port}", &port.to_string())
            .replace(
                "{contact}",
                &contact.map(|c| c.to_string()).unwrap_or_default(),
            )
            .replace(
                "{heartbeat_ms}",
                &self.settings.heartbeat.as_millis().to_string(),
            )
            .replace(
                "{timeout_ms}",
                &self.settings.timeout.as_millis().to_string(),
            )
            .replace("{heartbeat}", &secs(self.settings.heartbeat))
            .replace("{timeout}", &secs(self.settings.timeout))
            .replace(
                "{dir}",
                &shell_quote(&self.node_dir(port).display().to_string()),
            )
            .replace(
                "{steps}",
                &shell_quote(&self.steps_path(port).display().to_string()),
            )
    }

    pub fn program(&self, port: u16) -> Program {
        self.settings
            .nodes
            .iter()
            .find(|n| n.0 == port)
            .map_or(Program::UnderTest, |n| n.1)
    }

    /// Starts the node on `port`; its stdout and stderr go (appended) to its log.
    pub fn start(&mut self, port: u16, contact: Option<u16>) -> Result<(), String> {
        fs::create_dir_all(self.node_dir(port)).map_err(|e| e.to_string())?;
        let line = self.command_line(port, contact);
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path(port))
            .map_err(|e| format!("{}: {e}", self.log_path(port).display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!("exec {line}"));
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        crate::child::die_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(|e| format!("cannot run sh: {e}"))?;
        self.procs.insert(
            port,
            Proc {
                child,
                paused: false,
            },
        );
        Ok(())
    }

    fn signal(&self, port: u16, sig: libc::c_int) {
        if let Some(p) = self.procs.get(&port) {
            // The node's own process group (die_with_parent): a shell template's children too.
            unsafe {
                libc::killpg(p.child.id() as libc::pid_t, sig);
            }
        }
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill(&mut self, port: u16) {
        self.signal(port, libc::SIGKILL);
        if let Some(mut p) = self.procs.remove(&port) {
            let _ = p.child.wait();
        }
    }

    pub fn pause(&mut self, port: u16) {
        self.signal(port, libc::SIGSTOP);
        if let Some(p) = self.procs.get_mut(&port) {
            p.paused = true;
        }
    }

    pub fn resume(&mut self, port: u16) {
        self.signal(port, libc::SIGCONT);
        if let Some(p) = self.procs.get_mut(&port) {
            p.paused = false;
        }
    }

    /// The ports whose process runs and is not paused, ascending.
    pub fn live(&self) -> Vec<u16> {
        self.procs
            .iter()
            .filter(|(_, p)| !p.paused)
            .map(|(&port, _)| port)
            .collect()
    }

    /// The ports whose process runs (paused or not).
    pub fn running(&self) -> Vec<u16> {
        self.procs.keys().copied().collect()
    }

    /// The processes that ended by themselves since the last call (they are forgotten).
    pub fn reap(&mut self) -> Vec<Exit> {
        let mut gone = Vec::new();
        for (&port, p) in self.procs.iter_mut() {
            if let Ok(Some(status)) = p.child.try_wait() {
                gone.push(Exit { port, status });
            }
        }
        for e in &gone {
            self.procs.remove(&e.port);
        }
        gone
    }

    /// Kills every process (their whole groups) and waits for them.
    pub fn stop_all(&mut self) {
        for port in self.running() {
            // A stopped process dies of SIGKILL too.
            self.kill(port);
        }
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Quotes `s` for `sh` (single quotes).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=,".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The lines of a node's log that show it crashed: a Python traceback or a Rust panic.
pub fn crash_lines(log: &Path) -> Vec<String> {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("Traceback (most recent call last)") || l.contains("panicked at"))
        .map(str::to_string)
        .collect()
}

/// The last non-empty line of a log (for a one-line error about a node that would not start).
pub fn last_line(log: &Path) -> Option<String> {
    let text = fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| crate::wire::clip(l.to_string()))
}
