//! The cluster config file (`bully-node run --config FILE --id ID`): one TOML file that every
//! host can share, like etcd's `--initial-cluster` or ZooKeeper's `server.N` lines. Each node
//! finds itself in `[members]` by its `--id`; flags given on the command line win over the file.
//!
//! ```toml
//! heartbeat = "100ms"
//! timeout = "300ms"
//! cluster-key = "/etc/bully/cluster.key"   # optional
//! data-dir = "/var/lib/bully"             # optional
//! metrics = "127.0.0.1:9464"              # optional
//! [members]
//! 1 = "tcp://10.0.0.1:7000"
//! 2 = "tcp://10.0.0.2:7000"
//! 3 = "tcp://10.0.0.3:7000"
//! ```
//!
//! Every mistake is reported in one line naming the file, the key and the problem.

use crate::wire;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the file says; every key is optional except `[members]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterFile {
    pub heartbeat: Option<Duration>,
    pub timeout: Option<Duration>,
    pub cluster_key: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub metrics: Option<SocketAddr>,
    pub on_coordinator: Option<String>,
    pub on_step_down: Option<String>,
    pub on_change: Option<String>,
    pub hook_timeout: Option<Duration>,
    /// Every member, this node included: ID → endpoint.
    pub members: BTreeMap<u64, String>,
}

const KEYS: &str = "heartbeat, timeout, cluster-key, data-dir, metrics, on-coordinator, on-step-down, on-change, hook-timeout, [members]";

impl ClusterFile {
    pub fn load(path: &Path) -> Result<ClusterFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--config {}: {e}", path.display()))?;
        ClusterFile::parse(&text).map_err(|e| format!("--config {}: {e}", path.display()))
    }

    /// Parses the file's text; the error names the key (or the line of a syntax error).
    pub fn parse(text: &str) -> Result<ClusterFile, String> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let what = e.message().trim().replace('\n', " ");
            match line {
                Some(l) => format!("line {l}: {what}"),
                None => what,
            }
        })?;
        let mut f = ClusterFile::default();
        for (key, value) in &table {
            let err = |problem: String| format!("key `{key}`: {problem}");
            let text = || {
                value
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| err(format!("expected a string, found {}", value.type_str())))
            };
            let duration = || text().and_then(|t| parse_duration(&t).map_err(&err));
            match key.as_str() {
                "heartbeat" => f.heartbeat = Some(duration()?),
                "timeout" => f.timeout = Some(duration()?),
                "hook-timeout" => f.hook_timeout = Some(duration()?),
                "cluster-key" => f.cluster_key = Some(text()?.into()),
                "data-dir" => f.data_dir = Some(text()?.into()),
                "metrics" => {
                    let t = text()?;
                    f.metrics =
                        Some(t.parse().map_err(|_| {
                            err(format!("{t:?} is not an address like 127.0.0.1:9464"))
                        })?)
                }
                "on-coordinator" => f.on_coordinator = Some(text()?),
                "on-step-down" => f.on_step_down = Some(text()?),
                "on-change" => f.on_change = Some(text()?),
                "members" => f.members = members(value).map_err(err)?,
                other => return Err(format!("unknown key `{other}` (known: {KEYS})")),
            }
        }
        if f.members.is_empty() {
            return Err("key `members`: missing; list every member as `ID = \"tcp://HOST:PORT\"` under [members]".into());
        }
        Ok(f)
    }
}

fn members(value: &toml::Value) -> Result<BTreeMap<u64, String>, String> {
    let table = value
        .as_table()
        .ok_or_else(|| format!("expected a table [members], found {}", value.type_str()))?;
    let mut m = BTreeMap::new();
    for (id, ep) in table {
        let n: u64 = id
            .parse()
            .map_err(|_| format!("member ID {id:?} is not an unsigned integer"))?;
        let ep = ep.as_str().ok_or_else(|| {
            format!(
                "member {id}: expected an endpoint string, found {}",
                ep.type_str()
            )
        })?;
        if !wire::valid_connect_endpoint(ep) {
            return Err(format!(
                "member {id}: invalid endpoint {ep:?} (expected tcp://HOST:PORT or ipc://PATH)"
            ));
        }
        m.insert(n, ep.to_string());
    }
    Ok(m)
}

/// A duration as the flags and the config file give it (`500ms`, `1.5s`): more than zero and
/// at most a day.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 1.5s, 2s)"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    if d > Duration::from_secs(24 * 3600) {
        return Err("must be at most 24h".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses() {
        let f = ClusterFile::parse(
            r#"
heartbeat = "100ms"
timeout = "300ms"
cluster-key = "/etc/bully/cluster.key"
data-dir = "/var/lib/bully"
metrics = "127.0.0.1:9464"
[members]
1 = "tcp://10.0.0.1:7000"
2 = "tcp://10.0.0.2:7000"
3 = "tcp://10.0.0.3:7000"
"#,
        )
        .unwrap();
        assert_eq!(f.heartbeat, Some(Duration::from_millis(100)));
        assert_eq!(f.timeout, Some(Duration::from_millis(300)));
        assert_eq!(f.metrics, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(f.members.len(), 3);
        assert_eq!(f.members[&2], "tcp://10.0.0.2:7000");
    }

    #[test]
    fn each_mistake_names_its_key_in_one_line() {
        let cases = [
            (
                "heartbeat = 100\n[members]\n1 = \"tcp://a:1\"",
                "key `heartbeat`: expected a string",
            ),
            (
                "heartbeat = \"soon\"\n[members]\n1 = \"tcp://a:1\"",
                "key `heartbeat`:",
            ),
            (
                "metrics = \"here\"\n[members]\n1 = \"tcp://a:1\"",
                "key `metrics`:",
            ),
            (
                "colour = \"red\"\n[members]\n1 = \"tcp://a:1\"",
                "unknown key `colour`",
            ),
            (
                "[members]\nx = \"tcp://a:1\"",
                "key `members`: member ID \"x\"",
            ),
            (
                "[members]\n1 = \"http://a\"",
                "key `members`: member 1: invalid endpoint",
            ),
            ("heartbeat = \"1s\"", "key `members`: missing"),
            ("heartbeat = \n", "line 1:"),
        ];
        for (text, expected) in cases {
            let e = ClusterFile::parse(text).unwrap_err();
            assert!(e.contains(expected), "{text:?}: {e}");
            assert!(!e.contains('\n'), "{text:?}: not one line: {e}");
        }
    }
}
