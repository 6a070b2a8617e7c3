//! Durable [`Storage`]: the model's `Save` command, executed as an atomic file replacement.
//!
//! The file `<data-dir>/bully-<id>.json` holds `{"v":1,"id":..,"storage":{..},"peers":{..}}`.
//! `storage` is exactly the last `Storage` the protocol saved; `peers` is the transport's address
//! book (so a node that joined through one contact can reach the others after a restart).
//!
//! Writes go to a temporary file in the same directory, which is fsynced, renamed over the old
//! file, and the directory is fsynced: after a crash the file holds either the old or the new
//! content, never a mix.
//!
//! A file that exists but does not parse is an error ([`StoreError::Corrupt`]): the node refuses
//! to start (exit 2) rather than silently forget the epoch it promised, which could let an old
//! epoch win again. Moving the file away is the explicit way to start fresh.

use bully_model::Storage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const FILE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct OnDisk {
    v: u32,
    id: u64,
    storage: Storage,
    #[serde(default)]
    peers: BTreeMap<u64, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("data directory {dir}: {source}")]
    Dir { dir: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("storage file {path} is corrupt ({reason}); refusing to start because the epoch promised in it would be lost; move the file away to start this node fresh")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// What a previous run left.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub storage: Storage,
    pub peers: BTreeMap<u64, String>,
}

/// The storage file of one node.
#[derive(Debug, Clone)]
pub struct Store {
    id: u64,
    dir: PathBuf,
    path: PathBuf,
}

impl Store {
    /// Creates `dir` if needed and checks that it is writable.
    pub fn open(dir: &Path, id: u64) -> Result<Store, StoreError> {
        let err = |source| StoreError::Dir {
            dir: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(err)?;
        let probe = dir.join(format!(".bully-{id}.probe"));
        File::create(&probe).map_err(err)?;
        let _ = fs::remove_file(&probe);
        Ok(Store {
            id,
            dir: dir.to_path_buf(),
            path: dir.join(format!("bully-{id}.json")),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved storage, `None` if this node never saved any.
    pub fn load(&self) -> Result<Option<Saved>, StoreError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        let disk: OnDisk = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if disk.v != FILE_VERSION {
            return Err(corrupt(format!("unknown file version {}", disk.v)));
        }
        if disk.id != self.id {
            return Err(corrupt(format!(
                "it belongs to node {}, not {}",
                disk.id, self.id
            )));
        }
        Ok(Some(Saved {
            storage: disk.storage,
            peers: disk.peers,
        }))
    }

    /// Atomically replaces the file: temp file, fsync, rename, fsync of the directory.
    pub fn save(&self, storage: &Storage, peers: &BTreeMap<u64, String>) -> Result<(), StoreError> {
        let disk = OnDisk {
            v: FILE_VERSION,
            id: self.id,
            storage: storage.clone(),
            peers: peers.clone(),
        };
        let mut bytes = serde_json::to_vec_pretty(&disk).expect("storage serialises");
        bytes.push(b'\n');
        let tmp = self.dir.join(format!(".bully-{}.json.tmp", self.id));
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, &self.path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|source| StoreError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

/// Nanoseconds since the Unix epoch.
pub fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().min(u128::from(u64::MAX)) as u64)
        .unwrap_or(0)
}

/// Where [`next_incarnation`] keeps the last run's incarnation: its presence says this node
/// ran before with this data directory.
pub fn incarnation_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("bully-{id}.incarnation"))
}

/// The incarnation of this run: the clock in nanoseconds, and, with a data directory, above
/// every earlier run's even if the clock went back (`DIR/bully-<ID>.incarnation`, replaced
/// atomically and fsynced before the node sends anything). Authentication stamps frames with
/// it, and the protocol numbers the run's start with it ([`start_number`]).
pub fn next_incarnation(dir: Option<&Path>, id: u64) -> io::Result<u64> {
    let now = unix_nanos();
    let Some(dir) = dir else {
        return Ok(now);
    };
    let path = incarnation_path(dir, id);
    let last = fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let inc = now.max(last.saturating_add(1));
    let tmp = dir.join(format!(".bully-{id}.incarnation.tmp"));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    writeln!(f, "{inc}")?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, &path)?;
    File::open(dir)?.sync_all()?;
    Ok(inc)
}

/// Milliseconds since 2020-01-01 (the Unix time 1,577,836,800 s).
const MS_BEFORE_2020: u64 = 1_577_836_800_000;

/// The number the protocol gives this run's start ([`bully_model::Event::Start`]): its
/// incarnation in milliseconds since 2020 (42 bits of it last until 2159). So a start's tags are
/// new even when the storage file was lost or is an older copy: a reply still on its way to an
/// earlier run never matches what this one asks.
pub fn start_number(incarnation: u64) -> u64 {
    (incarnation / 1_000_000).saturating_sub(MS_BEFORE_2020)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bully_model::{Epoch, Members};
    use stateright::actor::Id;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bully-store-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn save_then_load() {
        let d = tmpdir("rt");
        let s = Store::open(&d, 7).unwrap();
        assert_eq!(s.load().unwrap(), None);
        let st = Storage {
            promised: Epoch {
                round: 4,
                leader: Id::from(9),
            },
            members: Members::new([Id::from(7), Id::from(9)]),
            joined: true,
            starts: 3,
        };
        let peers = [(9, "tcp://127.0.0.1:9".to_string())].into();
        s.save(&st, &peers).unwrap();
        assert_eq!(
            s.load().unwrap(),
            Some(Saved {
                storage: st.clone(),
                peers
            })
        );
        // Another node's file is refused.
        let other = Store::open(&d, 8).unwrap();
        fs::copy(s.path(), other.path()).unwrap();
        assert!(matches!(other.load(), Err(StoreError::Corrupt { .. })));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn incarnations_grow_even_if_the_clock_goes_back() {
        let dir = tmpdir("incarnation");
        fs::create_dir_all(&dir).unwrap();
        let a = next_incarnation(Some(&dir), 9).unwrap();
        fs::write(
            dir.join("bully-9.incarnation"),
            format!("{}\n", u64::MAX - 5),
        )
        .unwrap();
        let b = next_incarnation(Some(&dir), 9).unwrap();
        assert!(
            b > a && b == u64::MAX - 4,
            "survives a clock that went back"
        );
        let _ = fs::remove_dir_all(&dir);
        // A start number from today's clock is far above any count of restarts.
        let now = start_number(unix_nanos());
        assert!(now > 200_000_000_000 && now < 1 << 42, "{now}");
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let d = tmpdir("corrupt");
        let s = Store::open(&d, 7).unwrap();
        fs::write(s.path(), b"{\"v\":1,\"id\":7,\"stor").unwrap();
        let e = s.load().unwrap_err();
        assert!(e.to_string().contains("corrupt"), "{e}");
        fs::remove_dir_all(&d).unwrap();
    }
}
