//! Faults across hosts: four "hosts", each a Linux network namespace with its own address on
//! a bridge (veth pairs into a hub namespace), one authenticated node per host. The test kills
//! a host's node, cuts a host off the bridge and heals it (first the coordinator, then a
//! follower), and (where the kernel has
//! `sch_netem`) adds loss and delay. Everything it creates is named after the test's PID and
//! removed in `Drop`, also when the test fails. Where namespaces cannot be created (not root,
//! no `ip`), the test prints why and passes without running.

mod common;

use common::{agreement_of, epoch, id_u64, Epoch, Status, BIN};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HOSTS: u64 = 4;
const PORT: u16 = 7000;
const H: &str = "100ms";
const T: &str = "500ms";

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespaces, links and processes of one test run.
struct Lab {
    hub: String,
    hosts: BTreeMap<u64, String>,
    dir: PathBuf,
    procs: BTreeMap<u64, Child>,
}

impl Lab {
    fn ns(&self, id: u64) -> &str {
        &self.hosts[&id]
    }

    fn addr(id: u64) -> String {
        format!("10.77.0.{id}")
    }

    fn endpoint(id: u64) -> String {
        format!("tcp://{}:{PORT}", Lab::addr(id))
    }

    /// Removes namespaces an earlier run left behind when it was killed before its `Drop` ran
    /// (named `bully<PID>-...` after a process that no longer exists).
    fn remove_leftovers() {
        let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
            return;
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            let pid = name
                .strip_prefix("bully")
                .and_then(|r| r.split_once('-'))
                .and_then(|(p, _)| p.parse::<u32>().ok());
            if let Some(pid) = pid {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = ip(&["netns", "del", name]);
                }
            }
        }
    }

    /// Builds hub + hosts, or says why it cannot.
    fn build() -> Result<Lab, String> {
        Lab::remove_leftovers();
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("bully-node-test-{pid}-netns"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut lab = Lab {
            hub: format!("bully{pid}-hub"),
            hosts: BTreeMap::new(),
            dir,
            procs: BTreeMap::new(),
        };
        // From here on, `lab`'s Drop removes whatever was made.
        ip(&["netns", "add", &lab.hub])?;
        let hub = lab.hub.clone();
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for id in 1..=HOSTS {
            let ns = format!("bully{pid}-h{id}");
            ip(&["netns", "add", &ns])?;
            lab.hosts.insert(id, ns.clone());
            let port = format!("h{id}");
            ip(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", Lab::addr(id)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        let key = lab.dir.join("cluster.key");
        std::fs::write(&key, "netns test cluster key, 32 bytes").map_err(|e| e.to_string())?;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        Ok(lab)
    }

    fn start(&mut self, id: u64) {
        let mut args: Vec<String> = vec![
            "netns".into(),
            "exec".into(),
            self.ns(id).into(),
            BIN.into(),
            "run".into(),
            "--id".into(),
            id.to_string(),
            "--listen".into(),
            Lab::endpoint(id),
            "--data-dir".into(),
            self.dir.display().to_string(),
            "--cluster-key".into(),
            self.dir.join("cluster.key").display().to_string(),
            "--heartbeat".into(),
            H.into(),
            "--timeout".into(),
            T.into(),
        ];
        for p in (1..=HOSTS).filter(|&p| p != id) {
            args.push("--peer".into());
            args.push(format!("{p}={}", Lab::endpoint(p)));
        }
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{id}.log")))
            .unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // `ip netns exec` execs the node, so this is the node's own death signal.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn ip netns exec");
        assert!(self.procs.insert(id, child).is_none());
    }

    fn kill9(&mut self, id: u64) {
        let mut c = self.procs.remove(&id).expect("running");
        let _ = c.kill();
        let _ = c.wait();
    }

    /// `bully-node status --json` run inside the host's namespace, read as the `Status` it
    /// prints.
    fn status(&self, id: u64) -> Option<Status> {
        let out = Command::new("ip")
            .args(["netns", "exec", self.ns(id), BIN, "status", "--json"])
            .args(["--timeout", "400ms", &Lab::endpoint(id)])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    fn agreement(&self, ids: &[u64]) -> Option<(u64, Epoch)> {
        let st: BTreeMap<u64, Option<Status>> = ids.iter().map(|&i| (i, self.status(i))).collect();
        agreement_of(&st)
    }

    fn wait<T>(&self, what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
        let t0 = Instant::now();
        loop {
            if let Some(v) = f() {
                eprintln!("netns: {what}: after {:?}", t0.elapsed());
                return v;
            }
            if t0.elapsed() > limit {
                let dump: Vec<String> = self
                    .procs
                    .keys()
                    .map(|&id| {
                        let s = self.status(id);
                        format!(
                            "{id}: {}",
                            s.map(|s| format!(
                                "{} coordinator={} epoch={} dropped={:?}",
                                s.role_text.as_deref().unwrap_or("-"),
                                s.coordinator
                                    .map_or_else(|| "-".into(), |c| id_u64(c).to_string()),
                                s.epoch_text.as_deref().unwrap_or("-"),
                                s.dropped
                            ))
                            .unwrap_or_else(|| "no answer".into())
                        )
                    })
                    .collect();
                panic!(
                    "timed out after {limit:?} waiting for {what}\n{}",
                    dump.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_agreement(
        &self,
        what: &str,
        ids: &[u64],
        limit: Duration,
        ok: impl Fn(u64, Epoch) -> bool,
    ) -> (u64, Epoch) {
        self.wait(what, limit, || {
            self.agreement(ids).filter(|&(c, e)| ok(c, e))
        })
    }

    /// Takes host `id` off the bridge (`up = false`) or puts it back.
    fn link(&self, id: u64, up: bool) {
        ip(&[
            "-n",
            &self.hub,
            "link",
            "set",
            &format!("h{id}"),
            if up { "up" } else { "down" },
        ])
        .unwrap();
    }

    /// `tc qdisc ... netem` on every host's interface (`None`: remove it).
    fn netem(&self, spec: Option<&[&str]>) -> Result<(), String> {
        for ns in self.hosts.values() {
            let mut args = vec!["netns", "exec", ns, "tc", "qdisc"];
            match spec {
                Some(s) => {
                    args.extend(["add", "dev", "eth0", "root", "netem"]);
                    args.extend(s);
                }
                None => args.extend(["del", "dev", "eth0", "root"]),
            }
            ip(&args)?;
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.procs) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            for id in 1..=HOSTS {
                if let Ok(text) = std::fs::read_to_string(self.dir.join(format!("node-{id}.log"))) {
                    let lines: Vec<&str> = text.lines().collect();
                    eprintln!("---- node {id} log (tail) ----");
                    for l in &lines[lines.len().saturating_sub(20)..] {
                        eprintln!("{l}");
                    }
                }
            }
        }
        // Deleting a namespace deletes its interfaces, and a veth pair goes with either end.
        for ns in self.hosts.values() {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["netns", "del", &self.hub]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn epoch_text(e: Epoch) -> String {
    format!("{}.{}", e.0, e.1)
}

#[test]
fn hosts_in_namespaces_survive_kill_partition_and_heal() {
    let mut lab = match Lab::build() {
        Ok(l) => l,
        Err(why) => {
            eprintln!("skipped: cannot build network namespaces here ({why})");
            return;
        }
    };
    let all: Vec<u64> = (1..=HOSTS).collect();
    for id in all.clone() {
        lab.start(id);
    }
    let settle = Duration::from_secs(30);
    let (_, e1) = lab.wait_agreement("all four hosts name host 4", &all, settle, |c, _| c == 4);

    // 1. Kill host 4's node: the highest live node (3) leads.
    lab.kill9(4);
    let (_, e2) = lab.wait_agreement(
        "after kill -9 of 4, host 3 leads",
        &all[..3],
        settle,
        |c, _| c == 3,
    );
    assert!(e2 > e1);
    lab.start(4);
    let (_, e3) = lab.wait_agreement("restarted 4 takes over", &all, settle, |c, _| c == 4);
    assert!(e3 > e2);

    // 2. Cut host 4 off the bridge. Bully has no quorum: the majority side elects its highest
    //    (3), and 4, alone, still considers itself coordinator.
    lab.link(4, false);
    let (_, side_a) =
        lab.wait_agreement("partition: hosts 1-3 elect 3", &all[..3], settle, |c, e| {
            c == 3 && e > e3
        });
    let s4 = lab.status(4).expect("4 answers inside its own namespace");
    assert!(s4.is_coordinator, "{s4:?}");
    let side_b = s4.epoch.map(epoch).unwrap();
    eprintln!(
        "netns: during the partition two coordinators: 3 at {} and 4 at {}",
        epoch_text(side_a),
        epoch_text(side_b)
    );

    // 3. Heal: exactly one coordinator remains, the highest, at an epoch above both sides'.
    lab.link(4, true);
    let (_, healed) = lab.wait_agreement(
        "after healing, one coordinator: 4",
        &all,
        Duration::from_secs(60),
        |c, e| c == 4 && e > side_a && e > side_b,
    );
    eprintln!(
        "netns: healed at epoch {} (sides were {} and {})",
        epoch_text(healed),
        epoch_text(side_a),
        epoch_text(side_b)
    );
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(200));
        let claims: Vec<u64> = all
            .iter()
            .copied()
            .filter(|&id| lab.status(id).is_some_and(|s| s.is_coordinator))
            .collect();
        assert_eq!(claims, vec![4], "exactly one coordinator after healing");
    }

    // 4. Cut off a follower instead: alone, it elects itself (its own side's highest), while
    //    the others keep 4. After healing: one coordinator, 4, above both epochs.
    lab.link(2, false);
    let lone = lab.wait("partition: host 2, alone, elects itself", settle, || {
        lab.status(2)
            .filter(|s| s.is_coordinator)
            .and_then(|s| s.epoch.map(epoch))
    });
    let (_, others) =
        lab.wait_agreement("the other side keeps 4", &[1, 3, 4], settle, |c, _| c == 4);
    assert!(lone > healed, "2 bid above every promise it had made");
    eprintln!(
        "netns: during the second partition two coordinators: 2 at {} and 4 at {}",
        epoch_text(lone),
        epoch_text(others)
    );
    lab.link(2, true);
    let (_, healed2) = lab.wait_agreement(
        "after healing, one coordinator: 4",
        &all,
        Duration::from_secs(60),
        |c, e| c == 4 && e > lone && e > others,
    );
    eprintln!("netns: healed at epoch {}", epoch_text(healed2));

    // 5. Loss and delay (tc netem): the cluster still fails over and recovers, only slower.
    match lab.netem(Some(&["delay", "20ms", "5ms", "loss", "2%"])) {
        Err(why) => eprintln!("skipped the netem part: tc netem is not available here ({why})"),
        Ok(()) => {
            lab.kill9(4);
            lab.wait_agreement(
                "with netem, after kill of 4, 3 leads",
                &all[..3],
                settle,
                |c, _| c == 3,
            );
            lab.start(4);
            lab.wait_agreement("with netem, restarted 4 leads", &all, settle, |c, _| c == 4);
            lab.netem(None).unwrap();
        }
    }
}
