//! Conformance of real nodes to the model: a validator for `bully-node`'s NDJSON step logs
//! (`--log-format json`, see `node/src/steplog.rs`).
//!
//! The validator makes no protocol decision of its own: it replays each logged step through the
//! model's [`Bully`] handlers and evaluates the model's property functions
//! ([`properties::single_coordinator_of`], [`properties::agreement_of`]). What it checks,
//! exactly:
//!
//! **0. Well-formed logs.** Lines are grouped by their `node` field (a node's lines may be spread
//! over several files; they are taken in argument order, then line order). Each node's log is a
//! sequence of *incarnations*: an incarnation begins with a `start` step with `seq` 0 and
//! `before: null`; every later step of it has `seq` one above the previous one.
//!
//! **1. Replay.** Every step is reproduced exactly by the handler: the logged event, run through
//! the model's one dispatch ([`Bully::step`], the node's too) of the incarnation's logged actor
//! configuration (or of the same configuration with another [`Variant`], see
//! [`Options::variant`]) from the logged `before` state, yields the logged `after` state and the
//! logged commands, in order. The lines are the model's [`LoggedStep`], the type the node
//! writes.
//! Besides: each step's `before` is the previous step's `after` (the state is not changed
//! between handler calls), and a restarted incarnation's `storage`, if any, is the last `save`
//! that node logged (nothing stale is loaded).
//!
//! **2. Messages.** Every message a node logs as received (`event.kind = msg`, from `src`) names
//! the send it is (`event.sent`, a [`SendId`] the wire carried: `src`'s start number, step and
//! command), and that command is a `send` of this very message to this node in `src`'s log;
//! no send is received twice (losses are allowed: a node may be down; duplicates are not: the
//! wire is reliable while both ends are up). Receipts are never paired by content: a
//! coordinator sends equal announcements again and again, and which of them arrived is what
//! decides whether one was lost between live processes. A log whose receipts carry no identity
//! is refused ([`LoadError::NoIdentity`]).
//! And no message is lost between live processes: a send on channel q → p that was never
//! received, although a *later* send of the same incarnation of q to p was received by the
//! incarnation of p that had (causally) started before the lost send, is a violation (the wire
//! is FIFO within a connection and an incarnation is one continuous process life, so both were
//! up all along). Losses to a process that is down are allowed, as in the model, and so is the
//! tail of what a crashed incarnation sent (a `kill -9` discards libzmq's queue; the model's
//! `CutShort`).
//! Receipts from processes named in [`Options::foreign`] (which write no log: plain exercise
//! peers, the workbench's observer) are taken as sent.
//!
//! **3. Properties over the merged run.** The matching of step 2 and each node's step order give
//! the happens-before order (vector clocks over all steps; a node's incarnations are one
//! sequence). Then:
//!
//! * *epoch order*, the model's rule ([`check_epoch_order`], the very function the model's
//!   ghost state applies) per node over its whole log (all incarnations, as the model's ghost
//!   state survives crashes), at each step that enters a term (the role differs from `before`,
//!   or it is a `start`): a node takes office only with its own epoch, strictly above every
//!   epoch it accepted before, and never follows one below;
//! * *terms are totally ordered by causality*: no two steps that take office (any nodes) have
//!   the same epoch, and if one happens before the other its epoch is smaller;
//! * *single coordinator* and *agreement* on every consistent cut: each node's state after step
//!   k holds until its step k+1 of the same incarnation. Two such intervals of different nodes
//!   coexist in some consistent cut unless one's ending step happens before the other's
//!   beginning step; for every coexisting pair the model's `single_coordinator_of` and
//!   `agreement_of` must hold. (Both properties are pairwise, so pairs cover every cut.) The
//!   state after the *last* step of an incarnation is not checked: the log does not say when
//!   the process died (SIGKILL), so whether that state was still live is unknown. For the same
//!   reason neither is a state of a killed incarnation that ends in its *unobserved tail*, the
//!   steps after the last one whose messages anyone received ([`unobserved_tails`]).
//!
//! **Assumption breaches** ([`breaches`]). The model assumes bounded delay and an accurate
//! failure detector. Where the logs show a run leaving that assumption, the breach is named,
//! with where and for how long: a process *stalled past the timeout* (between two of its steps
//! a timer it had set was due longer than the timeout before it ran: SIGSTOP, or a starved
//! CPU), and a *frame lost to a stalled receiver* (a loss between live processes, as above,
//! whose send falls within a stall of the receiver). Replay, messages, epoch order and terms
//! must hold regardless. Single coordinator and agreement may then fail, but only on pairs with
//! a state in a stall's *shadow* (of the stalled process, from one timeout before the stall to
//! one timeout after the process ran again);
//! each says whether it held. A failure outside every shadow is a violation.
//!
//! The verdict names the first bad step: nodes in ID order, steps in log order, and checks in
//! the order above (a malformed log is reported before replay, replay before messages, ...).
//! Its [`Outcome`] is one of three: conforms, violation, or conforms only after leaving an
//! assumption (the `conformance` tool exits 0, 1 and 3).

use crate::properties::{agreement_of, check_epoch_order, single_coordinator_of, Entered};
use crate::{Bully, Epoch, Id, LoggedStep, Msg, SendId, State, Storage, Variant};
use std::collections::{BTreeMap, HashMap};

pub mod breaches;
pub use breaches::{Breach, BreachKind};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

pub use crate::{Cmd, Event};

/// One logged handler step ([`LoggedStep`], the node's step-log line), and where its line
/// came from (file, 1-based line number).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub line: LoggedStep,
    pub source: (PathBuf, usize),
}

impl Deref for Step {
    type Target = LoggedStep;
    fn deref(&self) -> &LoggedStep {
        &self.line
    }
}

impl DerefMut for Step {
    fn deref_mut(&mut self) -> &mut LoggedStep {
        &mut self.line
    }
}

/// A log that cannot be read at all (exit code 2 of the tool).
#[derive(Debug)]
pub enum LoadError {
    Io(PathBuf, std::io::Error),
    Parse {
        file: PathBuf,
        line: usize,
        error: String,
    },
    /// A receipt without its send's identity: a log of a node that did not carry it.
    NoIdentity {
        file: PathBuf,
        line: usize,
    },
    Empty,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            LoadError::Parse { file, line, error } => {
                write!(f, "{}:{line}: not a step line: {error}", file.display())
            }
            LoadError::NoIdentity { file, line } => write!(
                f,
                "{}:{line}: a receipt without its send's identity (\"sent\"): this log was \
                 written by a bully-node that did not carry message identity, and receipts are \
                 paired with sends exactly, never by content; run the nodes again with this version",
                file.display()
            ),
            LoadError::Empty => write!(f, "no step lines in the given logs"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Parses NDJSON step lines (blank lines are skipped). `file` only labels errors and steps.
pub fn parse_steps(text: &str, file: &Path) -> Result<Vec<Step>, LoadError> {
    let mut steps = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let logged: LoggedStep = serde_json::from_str(line).map_err(|e| LoadError::Parse {
            file: file.to_owned(),
            line: n + 1,
            error: e.to_string(),
        })?;
        steps.push(Step {
            line: logged,
            source: (file.to_owned(), n + 1),
        });
    }
    Ok(steps)
}

/// Reads and parses every file, in order.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Step>, LoadError> {
    let mut steps = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| LoadError::Io(p.clone(), e))?;
        steps.extend(parse_steps(&text, p)?);
    }
    if steps.is_empty() {
        return Err(LoadError::Empty);
    }
    Ok(steps)
}

/// Validator options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Replay with this variant instead of the verified protocol (`None`: `Variant::Correct`,
    /// whatever the log's `actor` says). The tests use it to give the validator a mutant
    /// handler: real logs must then fail replay.
    pub variant: Option<Variant>,
    /// Processes that write no step log (plain exercise peers, the workbench's observer): what
    /// a node logs as received from one of them is taken as sent, since nothing can be
    /// matched. Every other check still applies.
    pub foreign: std::collections::BTreeSet<Id>,
}

/// Which check found a violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckKind {
    /// 0: the log's structure (incarnations, sequence numbers).
    Log,
    /// 1: the handler does not reproduce the step.
    Replay,
    /// 2: a receipt without a matching send.
    Messages,
    /// 3: epoch order, term order, single coordinator, agreement.
    Properties,
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckKind::Log => "log",
            CheckKind::Replay => "replay",
            CheckKind::Messages => "messages",
            CheckKind::Properties => "properties",
        })
    }
}

/// The first bad step.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    pub check: CheckKind,
    pub node: u64,
    pub seq: u64,
    /// 0-based incarnation of the node (restarts count up).
    pub incarnation: usize,
    pub file: PathBuf,
    pub line: usize,
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} check failed at node {} seq {} (incarnation {}, {}:{}): {}",
            self.check,
            self.node,
            self.seq,
            self.incarnation,
            self.file.display(),
            self.line,
            self.what
        )
    }
}

/// What was checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub nodes: usize,
    pub steps: usize,
    pub incarnations: usize,
    pub sent: usize,
    pub received: usize,
    /// Receipts of a send earlier on its channel than one received before (allowed, reported
    /// for information).
    pub reordered: usize,
    /// Terms (take-office steps).
    pub terms: usize,
    /// Pairs of coexisting intervals on which the properties were evaluated.
    pub pairs_checked: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} nodes, {} incarnations, {} steps replayed; {} sends, {} receipts matched ({} out of FIFO order); {} terms; {} coexisting state pairs checked",
            self.nodes,
            self.incarnations,
            self.steps,
            self.sent,
            self.received,
            self.reordered,
            self.terms,
            self.pairs_checked
        )
    }
}

/// The three outcomes (the tool's exit codes 0, 3 and 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every check held, and the run stayed within the model's assumptions.
    Conforms,
    /// The run left an assumption ([`Verdict::breaches`]); every property that must hold
    /// regardless held (replay, messages, epoch order, terms), and each of the others says
    /// whether it held ([`Verdict::properties`]).
    ConformsOnlyAfterLeavingAnAssumption,
    /// A check failed ([`Verdict::violation`]).
    Violation,
}

impl Outcome {
    /// The `conformance` tool's exit status for this outcome.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Conforms => 0,
            Outcome::Violation => 1,
            Outcome::ConformsOnlyAfterLeavingAnAssumption => 3,
        }
    }
}

/// Whether one property held over the whole run.
#[derive(Clone, Debug, PartialEq)]
pub struct PropertyCheck {
    pub name: &'static str,
    pub held: bool,
    /// What was found (counts; for a property that did not hold, that every failure was in the
    /// shadow of a breach).
    pub note: String,
}

/// The validator's verdict.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub summary: Summary,
    /// The first bad step, if any.
    pub violation: Option<Violation>,
    /// Every node's first replay mismatch (there is at most one per node: later steps of a
    /// node whose replay diverged are not meaningful).
    pub replay_mismatches: Vec<Violation>,
    /// Where the run left the model's assumptions (each named, with where and how long).
    pub breaches: Vec<Breach>,
    /// Each property and whether it held (filled when there is no violation).
    pub properties: Vec<PropertyCheck>,
}

impl Verdict {
    /// No violation (the run conforms, maybe only after leaving an assumption).
    pub fn ok(&self) -> bool {
        self.violation.is_none()
    }

    pub fn outcome(&self) -> Outcome {
        match (&self.violation, self.breaches.is_empty()) {
            (Some(_), _) => Outcome::Violation,
            (None, true) => Outcome::Conforms,
            (None, false) => Outcome::ConformsOnlyAfterLeavingAnAssumption,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.violation, self.outcome()) {
            (Some(v), _) => write!(f, "VIOLATION: {v}")?,
            (None, Outcome::Conforms) => write!(f, "CONFORMS: {}", self.summary)?,
            (None, _) => write!(
                f,
                "CONFORMS ONLY AFTER LEAVING AN ASSUMPTION ({} breach{}): {}",
                self.breaches.len(),
                if self.breaches.len() == 1 { "" } else { "es" },
                self.summary
            )?,
        }
        for other in self.replay_mismatches.iter().skip(1) {
            write!(f, "\n  also: {other}")?;
        }
        for b in &self.breaches {
            write!(f, "\n  breach: {b}")?;
        }
        if !self.breaches.is_empty() {
            for p in &self.properties {
                let held = if p.held { "held" } else { "did NOT hold" };
                write!(f, "\n  {}: {held} ({})", p.name, p.note)?;
            }
        }
        Ok(())
    }
}

fn n(id: Id) -> u64 {
    usize::from(id) as u64
}

/// A node's steps with their incarnation numbers.
struct NodeLog<'a> {
    id: Id,
    steps: Vec<(&'a Step, usize)>,
    /// Per incarnation: its start number (the start step's `incarnation`, which the wire's
    /// [`SendId`] names) and the position of its start step.
    starts: Vec<(u64, usize)>,
}

fn violation(check: CheckKind, step: &Step, inc: usize, what: String) -> Violation {
    Violation {
        check,
        node: n(step.node),
        seq: step.seq,
        incarnation: inc,
        file: step.source.0.clone(),
        line: step.source.1,
        what,
    }
}

fn describe_cmds(c: &[Cmd]) -> String {
    let parts: Vec<String> = c
        .iter()
        .map(|c| match c {
            Cmd::Send { dst, msg } => format!("send {} {:?}", n(*dst), msg),
            Cmd::SetTimer { timer, range, .. } => format!("set {timer:?} {range:?}"),
            Cmd::CancelTimer { timer } => format!("cancel {timer:?}"),
            Cmd::Save { storage } => format!("save {storage:?}"),
            Cmd::ChooseRandom { key } => format!("random {key}"),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// The first difference between two command lists.
fn diff_cmds(logged: &[Cmd], replayed: &[Cmd]) -> String {
    for (i, (a, b)) in logged.iter().zip(replayed).enumerate() {
        if a != b {
            return format!(
                "command {i} differs: logged {}, handler gives {} (logged {}, handler {})",
                describe_cmds(std::slice::from_ref(a)),
                describe_cmds(std::slice::from_ref(b)),
                describe_cmds(logged),
                describe_cmds(replayed)
            );
        }
    }
    format!(
        "{} commands logged, the handler gives {} (logged {}, handler {})",
        logged.len(),
        replayed.len(),
        describe_cmds(logged),
        describe_cmds(replayed)
    )
}

/// Groups steps per node and checks the incarnation structure (check 0).
fn group(steps: &[Step]) -> Result<Vec<NodeLog<'_>>, Violation> {
    let mut by_node: BTreeMap<Id, Vec<&Step>> = BTreeMap::new();
    for s in steps {
        by_node.entry(s.node).or_default().push(s);
    }
    let mut logs = Vec::new();
    for (id, list) in by_node {
        let mut out = Vec::with_capacity(list.len());
        let mut starts = Vec::new();
        let mut inc: Option<usize> = None;
        let mut last_seq = 0;
        for s in list {
            let is_start = matches!(s.event.event, Event::Start { .. });
            if is_start {
                if s.seq != 0 || s.before.is_some() {
                    return Err(violation(
                        CheckKind::Log,
                        s,
                        inc.map_or(0, |i| i + 1),
                        "a start step must have seq 0 and before = null".into(),
                    ));
                }
                inc = Some(inc.map_or(0, |i| i + 1));
                if let Event::Start { incarnation, .. } = s.event.event {
                    starts.push((incarnation, out.len()));
                }
            } else {
                let Some(i) = inc else {
                    return Err(violation(
                        CheckKind::Log,
                        s,
                        0,
                        "the node's log does not begin with a start step".into(),
                    ));
                };
                if s.seq != last_seq + 1 {
                    return Err(violation(
                        CheckKind::Log,
                        s,
                        i,
                        format!(
                            "seq {} follows seq {last_seq} (a step is missing or repeated)",
                            s.seq
                        ),
                    ));
                }
                if s.before.is_none() {
                    return Err(violation(
                        CheckKind::Log,
                        s,
                        i,
                        "before = null on a step that is not a start".into(),
                    ));
                }
            }
            last_seq = s.seq;
            out.push((s, inc.expect("set above")));
        }
        logs.push(NodeLog {
            id,
            steps: out,
            starts,
        });
    }
    Ok(logs)
}

/// Check 1 for one node: the first step the handler does not reproduce.
fn replay_node(log: &NodeLog<'_>, opts: &Options) -> Option<Violation> {
    let mut actor: Option<Bully> = None;
    let mut prev_after: Option<&State> = None;
    let mut last_saved: Option<&Storage> = None;
    for &(s, inc) in &log.steps {
        let bad = |what: String| Some(violation(CheckKind::Replay, s, inc, what));
        let before = match &s.event.event {
            Event::Start { storage, .. } => {
                if let (Some(loaded), Some(saved)) = (storage, last_saved) {
                    if loaded != saved {
                        return bad(format!(
                            "restarted with storage {loaded:?}, but the last save was {saved:?}"
                        ));
                    }
                }
                let Some(logged) = &s.event.actor else {
                    return bad("a start step without the actor configuration".into());
                };
                // Replay with the verified protocol whatever variant the log claims: a node
                // running anything else must fail conformance.
                let mut a = logged.clone();
                a.variant = opts.variant.unwrap_or(Variant::Correct);
                actor = Some(a);
                None
            }
            _ => {
                let (Some(_), Some(before)) = (&actor, &s.before) else {
                    return bad("no start step before this one".into());
                };
                if prev_after != Some(before) {
                    return bad(format!(
                        "before-state {before:?} is not the previous step's after-state {prev_after:?}"
                    ));
                }
                Some(before)
            }
        };
        let a = actor.as_ref().expect("set by the start step");
        // A logged state may be tampered with or a mutant's: stepping from it must not trip
        // the protocol's assertions (the comparison below reports the difference).
        let Some(stepped) = a.step_judged(s.node, before, s.event.event.clone()) else {
            return bad("no start step before this one".into());
        };
        let after = stepped.after(before);
        if after != s.after {
            return bad(format!(
                "after-state differs: logged {:?}, handler gives {:?} (event {:?})",
                s.after, after, s.event
            ));
        }
        let cmds: Vec<Cmd> = stepped.out.into_iter().map(Cmd::from).collect();
        if cmds != s.commands {
            return bad(format!(
                "commands differ (event {:?}): {}",
                s.event,
                diff_cmds(&s.commands, &cmds)
            ));
        }
        for c in &s.commands {
            if let Cmd::Save { storage } = c {
                last_saved = Some(storage);
            }
        }
        prev_after = Some(&s.after);
    }
    None
}

/// A step in the merged run: (node index, position in that node's log).
type Pos = (usize, usize);

/// One send on a channel: the step, the command's position in it, the message, and the
/// receipt it was paired with (if any).
#[derive(Clone, Copy)]
struct Send<'a> {
    at: Pos,
    cmd: u32,
    msg: &'a Msg,
    receipt: Option<Pos>,
}

/// One channel's sends in the sender's order.
struct Channel<'a> {
    dst: Id,
    sends: Vec<Send<'a>>,
}

/// Per step, the send a receipt was paired with (`None`: not a receipt).
type Matched = Vec<Vec<Option<Pos>>>;

/// The send a receipt at node `me` names (`sent`): its step and command, which must be a send of
/// this very message to `me` in `src`'s log. The error says why not.
fn resolve_send(
    logs: &[NodeLog<'_>],
    index: &HashMap<Id, usize>,
    me: Id,
    (src, msg): (Id, &Msg),
    sent: Option<SendId>,
) -> Result<(Pos, u32), String> {
    let Some(&i) = index.get(&src) else {
        return Err(format!(
            "received {msg:?} from {}, which has no log (nothing it sent can be matched)",
            n(src)
        ));
    };
    let id = sent.ok_or("a receipt without its send's identity (\"sent\")")?;
    let lives: Vec<usize> = (0..logs[i].starts.len())
        .filter(|&x| logs[i].starts[x].0 == id.inc)
        .collect();
    let life = match lives[..] {
        [x] => x,
        [] => {
            return Err(format!(
                "received {msg:?} from {} as its send ({id}), but no incarnation of {} has start number {}",
                n(src),
                n(src),
                id.inc
            ))
        }
        _ => {
            return Err(format!(
                "received {msg:?} from {} as its send ({id}), but several incarnations of {} have start number {}: the identity is ambiguous",
                n(src),
                n(src),
                id.inc
            ))
        }
    };
    let pos = logs[i].starts[life].1 + id.seq as usize;
    let step = logs[i]
        .steps
        .get(pos)
        .filter(|&&(s, inc)| inc == life && s.seq == id.seq)
        .ok_or_else(|| {
            format!(
                "received {msg:?} from {} as its send ({id}), a step its log does not have",
                n(src)
            )
        })?;
    match step.0.commands.get(id.cmd as usize) {
        Some(Cmd::Send { dst, msg: m }) if *dst == me && m == msg => Ok(((i, pos), id.cmd)),
        other => Err(format!(
            "received {msg:?} from {} as its send ({id}), but that command is {}",
            n(src),
            other.map_or("missing".to_string(), |c| describe_cmds(
                std::slice::from_ref(c)
            ))
        )),
    }
}

/// Check 2: pairs every receipt with the one send it names ([`SendId`]); returns, per step,
/// the paired send (if a receipt), and the channels with each send's receipt (if any).
fn match_messages<'a>(
    logs: &[NodeLog<'a>],
    opts: &Options,
    summary: &mut Summary,
) -> Result<(Matched, Vec<Channel<'a>>), Violation> {
    let index: HashMap<Id, usize> = logs.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
    let mut channels: BTreeMap<(usize, Id), Vec<Send<'a>>> = BTreeMap::new();
    // (send step, command) -> (channel, position in it).
    let mut sends: HashMap<(Pos, u32), ((usize, Id), usize)> = HashMap::new();
    for (i, l) in logs.iter().enumerate() {
        for (k, (s, _)) in l.steps.iter().enumerate() {
            for (c, cmd) in s.commands.iter().enumerate() {
                if let Cmd::Send { dst, msg } = cmd {
                    summary.sent += 1;
                    let list = channels.entry((i, *dst)).or_default();
                    sends.insert(((i, k), c as u32), ((i, *dst), list.len()));
                    list.push(Send {
                        at: (i, k),
                        cmd: c as u32,
                        msg,
                        receipt: None,
                    });
                }
            }
        }
    }
    let mut matched: Matched = logs.iter().map(|l| vec![None; l.steps.len()]).collect();
    // Per channel, the latest send received so far (for the reordering count).
    let mut latest: HashMap<(usize, Id), usize> = HashMap::new();
    for (j, l) in logs.iter().enumerate() {
        for (k, &(s, inc)) in l.steps.iter().enumerate() {
            let Event::Msg { src, msg } = &s.event.event else {
                continue;
            };
            let bad = |what: String| Err(violation(CheckKind::Messages, s, inc, what));
            if opts.foreign.contains(src) && !index.contains_key(src) {
                continue;
            }
            let (at, cmd) = match resolve_send(logs, &index, l.id, (*src, msg), s.event.sent) {
                Ok(found) => found,
                Err(what) => return bad(what),
            };
            let (key, u) = sends[&(at, cmd)];
            let send = &mut channels.get_mut(&key).expect("listed")[u];
            if let Some((_, earlier)) = send.receipt {
                return bad(format!(
                    "received {msg:?} from {} twice: this send ({}) was received already at seq {}",
                    n(*src),
                    s.event.sent.expect("resolved"),
                    l.steps[earlier].0.seq
                ));
            }
            send.receipt = Some((j, k));
            summary.received += 1;
            matched[j][k] = Some(at);
            let last = latest.entry(key).or_insert(u);
            if u < *last {
                summary.reordered += 1;
            }
            *last = (*last).max(u);
        }
    }
    let list = channels
        .into_iter()
        .map(|((_, dst), sends)| Channel { dst, sends })
        .collect();
    Ok((matched, list))
}

/// Check 2, continued (needs the causal order): no message is lost between live processes.
/// A send on channel q → p that was never received, followed by a send of the *same*
/// incarnation of q to p that the incarnation of p which had started before the first send
/// (causally) did receive, was lost while both ends were up: the channel is FIFO within a
/// connection, and an incarnation is one continuous process life. (What a crash of q cuts
/// short is lost with q: a suffix of each of its connections, which the model allows too.)
/// Such a loss is a breach, not a violation, when it falls within a stall of that incarnation
/// of p (neither the send happens before the stall's first step, nor the step after the stall
/// before the send): the receiver was not running, and its sender gave it up.
fn check_no_live_loss(
    logs: &[NodeLog<'_>],
    channels: &[Channel<'_>],
    vc: &[Vec<Vec<u32>>],
    stalls: &mut Vec<breaches::Stall>,
) -> Result<Vec<Breach>, Violation> {
    let index: HashMap<Id, usize> = logs.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
    let hb = |a: Pos, b: Pos| vc[b.0][b.1][a.0] > a.1 as u32;
    let mut first: Option<(Pos, Violation)> = None;
    let mut excused = Vec::new();
    for ch in channels {
        let Some(&j) = index.get(&ch.dst) else {
            continue;
        };
        for (u, lost) in ch.sends.iter().enumerate() {
            let sp = lost.at;
            if lost.receipt.is_some() {
                continue;
            }
            let sender_life = logs[sp.0].steps[sp.1].1;
            let Some((later, rp)) = ch.sends[u + 1..].iter().find_map(|e| {
                let rp = e.receipt?;
                (logs[e.at.0].steps[e.at.1].1 == sender_life).then_some((e, rp))
            }) else {
                continue;
            };
            let inc = logs[j].steps[rp.1].1;
            let start = logs[j].starts[inc].1;
            if !hb((j, start), sp) {
                continue;
            }
            let (s, sinc) = logs[sp.0].steps[sp.1];
            let (r, _) = logs[j].steps[rp.1];
            let (ls, _) = logs[later.at.0].steps[later.at.1];
            let what = format!(
                "{:?} to {} (command {}) was lost between live processes: {}'s incarnation {inc} had started before it was sent and received this node's later message (sent at seq {}) at its seq {}, but never this one",
                lost.msg,
                n(ch.dst),
                lost.cmd,
                n(ch.dst),
                ls.seq,
                r.seq
            );
            let during = |from: Pos, to: Pos| !hb(sp, from) && !hb(to, sp);
            let known = stalls.iter().copied().find(|st| {
                st.from.0 == j && logs[j].steps[st.from.1].1 == inc && during(st.from, st.to())
            });
            let stall = known.or_else(|| {
                let gap = breaches::silent_gap(logs, (j, inc), during)?;
                stalls.push(gap);
                Some(gap)
            });
            if let Some(st) = stall {
                let (stalled, _) = logs[j].steps[st.from.1];
                excused.push(breaches::breach(
                    BreachKind::LostToStall,
                    s,
                    sinc,
                    st.late_ms,
                    format!(
                        "{what}; it was sent while {} was stalled after its seq {}",
                        n(ch.dst),
                        stalled.seq
                    ),
                ));
                continue;
            }
            if first.as_ref().is_some_and(|(p, _)| *p <= sp) {
                continue;
            }
            first = Some((sp, violation(CheckKind::Messages, s, sinc, what)));
        }
    }
    match first {
        Some((_, v)) => Err(v),
        None => Ok(excused),
    }
}

/// Vector clocks of every step (component i = how many of node i's steps happen before or are
/// the step). Fails on a causal cycle (a receipt matched to a send that depends on it).
fn vector_clocks(
    logs: &[NodeLog<'_>],
    matched: &[Vec<Option<Pos>>],
) -> Result<Vec<Vec<Vec<u32>>>, Violation> {
    let nn = logs.len();
    let mut vc: Vec<Vec<Vec<u32>>> = logs
        .iter()
        .map(|l| Vec::with_capacity(l.steps.len()))
        .collect();
    loop {
        let mut progressed = false;
        let mut done = true;
        for j in 0..nn {
            while vc[j].len() < logs[j].steps.len() {
                let k = vc[j].len();
                let mut clock = match k {
                    0 => vec![0; nn],
                    _ => vc[j][k - 1].clone(),
                };
                if let Some((i, p)) = matched[j][k] {
                    let Some(send) = vc[i].get(p) else { break };
                    for (c, s) in clock.iter_mut().zip(send) {
                        *c = (*c).max(*s);
                    }
                }
                clock[j] = k as u32 + 1;
                vc[j].push(clock);
                progressed = true;
            }
            if vc[j].len() < logs[j].steps.len() {
                done = false;
            }
        }
        if done {
            return Ok(vc);
        }
        if !progressed {
            let j = (0..nn)
                .find(|&j| vc[j].len() < logs[j].steps.len())
                .expect("not done");
            let (s, inc) = logs[j].steps[vc[j].len()];
            return Err(violation(
                CheckKind::Messages,
                s,
                inc,
                "causal cycle: this receipt's send depends on the receipt".into(),
            ));
        }
    }
}

/// Where each incarnation's unobserved tail begins (`tails[node][incarnation]`, a position
/// in the node's log; past its end if there is none).
///
/// A killed incarnation (its last step is not a `shutdown`: a `kill -9`) may have taken steps
/// after the last one whose messages anybody received; their frames died in libzmq's queue.
/// Nothing in any log depends on those steps, and the log does not say when the process died,
/// so nothing orders them against the other nodes' steps: the first step after the last
/// received send begins the tail. A state whose interval *ends* in the tail may have ended
/// long before what the others did next (under the model's timing, the others' election began
/// only after the death), so the cut check leaves it out, as it leaves out the last state of
/// every incarnation. An incarnation that shut down cleanly has no tail: two nodes that never
/// hear from each other (a split brain) are still compared.
fn unobserved_tails(logs: &[NodeLog<'_>], channels: &[Channel<'_>]) -> Vec<Vec<usize>> {
    let mut tails: Vec<Vec<usize>> = logs
        .iter()
        .map(|l| vec![usize::MAX; l.steps.last().map_or(0, |&(_, inc)| inc + 1)])
        .collect();
    // The last received send of each incarnation.
    let mut last_seen: Vec<Vec<Option<usize>>> =
        tails.iter().map(|t| vec![None; t.len()]).collect();
    for ch in channels {
        for &Send {
            at: (i, k),
            receipt,
            ..
        } in &ch.sends
        {
            if receipt.is_some() {
                let inc = logs[i].steps[k].1;
                let seen = &mut last_seen[i][inc];
                *seen = (*seen).max(Some(k));
            }
        }
    }
    for (i, l) in logs.iter().enumerate() {
        for inc in 0..tails[i].len() {
            let Some(last) = l.steps.iter().rposition(|&(_, c)| c == inc) else {
                continue;
            };
            if matches!(l.steps[last].0.event.event, Event::Shutdown) {
                continue;
            }
            let first = l
                .steps
                .iter()
                .position(|&(_, c)| c == inc)
                .expect("some step");
            tails[i][inc] = last_seen[i][inc].map_or(first, |k| k + 1);
        }
    }
    tails
}

/// Check 3, what must hold whatever the timing: epoch order per node (the model's ghost rule),
/// and terms totally ordered by causality. Returns the take-office steps.
fn check_epochs_and_terms(
    logs: &[NodeLog<'_>],
    vc: &[Vec<Vec<u32>>],
) -> Result<Vec<(Epoch, Pos)>, Violation> {
    let mut terms: Vec<(Epoch, Pos)> = Vec::new();
    for (i, l) in logs.iter().enumerate() {
        let mut accepted = Epoch::none();
        for (k, &(s, inc)) in l.steps.iter().enumerate() {
            let Some(term) = Entered::on_step(s.before.as_ref(), &s.after) else {
                continue;
            };
            if let Err(broken) = check_epoch_order(l.id, &mut accepted, term) {
                return Err(violation(CheckKind::Properties, s, inc, broken.to_string()));
            }
            if let Entered::Office(epoch) = term {
                terms.push((epoch, (i, k)));
            }
        }
    }
    // a happens before (or is) b.
    let hb = |a: Pos, b: Pos| vc[b.0][b.1][a.0] > a.1 as u32;
    for (x, &(ea, a)) in terms.iter().enumerate() {
        for &(eb, b) in &terms[x + 1..] {
            let (late, what) = if ea == eb {
                (b, format!("two terms share epoch {ea}"))
            } else if hb(a, b) && ea > eb {
                (
                    b,
                    format!("takes office with epoch {eb} after (causally) a term of {ea}"),
                )
            } else if hb(b, a) && eb > ea {
                (
                    a,
                    format!("takes office with epoch {ea} after (causally) a term of {eb}"),
                )
            } else {
                continue;
            };
            let (s, inc) = logs[late.0].steps[late.1];
            return Err(violation(CheckKind::Properties, s, inc, what));
        }
    }
    Ok(terms)
}

/// A coexisting pair of intervals on which a cut property failed: the later-beginning
/// interval's begin, the other's begin, whether single coordinator held, whether agreement
/// held.
type CutFailure = (Pos, Pos, bool, bool);

/// Check 3, single coordinator and agreement on coexisting intervals: every failing pair.
/// Only intervals that name a coordinator can break either property (both need two states
/// that name one).
fn cut_failures(
    logs: &[NodeLog<'_>],
    channels: &[Channel<'_>],
    vc: &[Vec<Vec<u32>>],
    summary: &mut Summary,
) -> Vec<CutFailure> {
    let hb = |a: Pos, b: Pos| vc[b.0][b.1][a.0] > a.1 as u32;
    let tails = unobserved_tails(logs, channels);
    let mut intervals: Vec<(Pos, Pos, &State)> = Vec::new(); // (begin, end, state)
    for (i, l) in logs.iter().enumerate() {
        for k in 0..l.steps.len().saturating_sub(1) {
            let (s, inc) = l.steps[k];
            let (_, next_inc) = l.steps[k + 1];
            if next_inc == inc && s.after.coordinator().is_some() && k + 1 < tails[i][inc] {
                intervals.push(((i, k), (i, k + 1), &s.after));
            }
        }
    }
    let mut failures = Vec::new();
    for (x, &(ba, ea, sa)) in intervals.iter().enumerate() {
        for &(bb, eb, sb) in &intervals[x + 1..] {
            if ba.0 == bb.0 || hb(ea, bb) || hb(eb, ba) {
                continue;
            }
            summary.pairs_checked += 1;
            let single = single_coordinator_of([sa, sb]);
            let agree = agreement_of([sa, sb]);
            if !(single && agree) {
                let (later, other) = if hb(ba, bb) { (bb, ba) } else { (ba, bb) };
                failures.push((later, other, single, agree));
            }
        }
    }
    // The pair whose later-beginning interval comes first (by log position) first.
    failures.sort_by_key(|f| (f.0, f.1));
    failures
}

/// The violation a cut failure is.
fn cut_violation(logs: &[NodeLog<'_>], (p, q, single, _): CutFailure) -> Violation {
    let (s, inc) = logs[p.0].steps[p.1];
    let (o, _) = logs[q.0].steps[q.1];
    let prop = if single {
        "agreement"
    } else {
        "single coordinator"
    };
    violation(
        CheckKind::Properties,
        s,
        inc,
        format!(
            "{prop}: the state after this step ({:?}) coexists in a consistent cut with node {}'s state after its seq {} ({:?})",
            s.after.role,
            n(o.node),
            o.seq,
            o.after.role
        ),
    )
}

/// Check 3 as a whole. Cut failures are violations, unless each involves a state in a stall's
/// shadow (the run left the timing assumption there): then the property is reported as not
/// holding, and the run still conforms after leaving an assumption.
fn check_properties(
    logs: &[NodeLog<'_>],
    channels: &[Channel<'_>],
    vc: &[Vec<Vec<u32>>],
    stalls: &[breaches::Stall],
    summary: &mut Summary,
) -> Result<Vec<PropertyCheck>, Violation> {
    let terms = check_epochs_and_terms(logs, vc)?;
    summary.terms = terms.len();
    let failures = cut_failures(logs, channels, vc, summary);
    let shadowed = |p: Pos| stalls.iter().any(|st| st.shadows(logs, p));
    if let Some(&f) = failures.iter().find(|f| !shadowed(f.0) && !shadowed(f.1)) {
        return Err(cut_violation(logs, f));
    }
    let held = |name: &'static str, failed: usize, note: String| PropertyCheck {
        name,
        held: failed == 0,
        note: if failed == 0 {
            note
        } else {
            format!("{failed} coexisting state pairs broke it, each with a state in the shadow of a stall")
        },
    };
    let single = failures.iter().filter(|f| !f.2).count();
    let agree = failures.iter().filter(|f| !f.3).count();
    let pairs = format!("{} coexisting state pairs", summary.pairs_checked);
    Ok(vec![
        held(
            "epoch order",
            0,
            "every term entered above all accepted before".into(),
        ),
        held(
            "terms",
            0,
            format!(
                "{} terms, no epoch shared, rising along causality",
                terms.len()
            ),
        ),
        held("single coordinator", single, pairs.clone()),
        held("agreement", agree, pairs),
    ])
}

/// Validates a set of steps (from any number of nodes' logs).
pub fn validate(steps: &[Step], opts: &Options) -> Verdict {
    let mut summary = Summary {
        steps: steps.len(),
        ..Summary::default()
    };
    let finish = |summary: Summary, violation, replay_mismatches| Verdict {
        summary,
        violation,
        replay_mismatches,
        breaches: Vec::new(),
        properties: Vec::new(),
    };
    let logs = match group(steps) {
        Ok(l) => l,
        Err(v) => return finish(summary, Some(v), Vec::new()),
    };
    summary.nodes = logs.len();
    summary.incarnations = logs.iter().map(|l| l.starts.len()).sum();
    let mismatches: Vec<Violation> = logs.iter().filter_map(|l| replay_node(l, opts)).collect();
    if let Some(v) = mismatches.first() {
        return finish(summary, Some(v.clone()), mismatches);
    }
    match judge(&logs, opts, &mut summary) {
        Ok((breaches, properties)) => Verdict {
            breaches,
            properties,
            ..finish(summary, None, Vec::new())
        },
        Err(v) => finish(summary, Some(v), Vec::new()),
    }
}

/// Checks 2 and 3 on logs that replay: the breaches found, and each property's result.
fn judge(
    logs: &[NodeLog<'_>],
    opts: &Options,
    summary: &mut Summary,
) -> Result<(Vec<Breach>, Vec<PropertyCheck>), Violation> {
    let (matched, channels) = match_messages(logs, opts, summary)?;
    let vc = vector_clocks(logs, &matched)?;
    let mut stalls = breaches::stalls(logs);
    let lost = check_no_live_loss(logs, &channels, &vc, &mut stalls)?;
    let mut properties = vec![
        PropertyCheck {
            name: "replay",
            held: true,
            note: format!("{} steps are the handler's", summary.steps),
        },
        PropertyCheck {
            name: "messages",
            held: true,
            note: format!(
                "every receipt paired with its one send; {} lost to stalls",
                lost.len()
            ),
        },
    ];
    properties.extend(check_properties(logs, &channels, &vc, &stalls, summary)?);
    let mut found: Vec<Breach> = stalls.iter().map(|st| st.describe(logs)).collect();
    found.extend(lost);
    Ok((found, properties))
}

/// Loads the files and validates them.
pub fn validate_files(paths: &[PathBuf], opts: &Options) -> Result<Verdict, LoadError> {
    let steps = load(paths)?;
    // A receipt from a logged process without its send's identity: an older node's log.
    let old = steps.iter().find(|s| {
        matches!(&s.event.event, Event::Msg { src, .. } if !opts.foreign.contains(src))
            && s.event.sent.is_none()
    });
    if let Some(s) = old {
        return Err(LoadError::NoIdentity {
            file: s.source.0.clone(),
            line: s.source.1,
        });
    }
    Ok(validate(&steps, opts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Durations, LoggedEvent, Members, Start, Timer};

    /// A node's log, produced by the model's own handlers from `events` (so replay holds). A
    /// start numbered 0 gets the number `1000 * id + 1`: the same in every drive of the node
    /// (so steps of two drives from the same start join up), and distinct across nodes.
    fn drive(id: usize, members: &[usize], events: Vec<Event>) -> Vec<Step> {
        let actor = Bully::new(
            Start::Full {
                members: Members::new(members.iter().map(|&m| Id::from(m))),
            },
            Durations::default(),
        );
        let me = Id::from(id);
        let mut state: Option<State> = None;
        let mut steps = Vec::new();
        for (seq, mut event) in events.into_iter().enumerate() {
            if let Event::Start { incarnation, .. } = &mut event {
                if *incarnation == 0 {
                    *incarnation = 1000 * id as u64 + 1;
                }
            }
            let stepped = actor
                .step(me, state.as_ref(), event.clone())
                .expect("a start first");
            let after = stepped.after(state.as_ref());
            let is_start = matches!(event, Event::Start { .. });
            steps.push(Step {
                line: LoggedStep {
                    node: me,
                    seq: seq as u64,
                    t_ms: 0,
                    event: LoggedEvent {
                        event,
                        actor: is_start.then(|| actor.clone()),
                        sent: None,
                    },
                    before: state.take(),
                    after: after.clone(),
                    commands: stepped.out.into_iter().map(Cmd::from).collect(),
                },
                source: (PathBuf::from(format!("node-{id}")), seq + 1),
            });
            state = Some(after);
        }
        steps
    }

    /// Node 1 of {1, 2} starts, times out its election (presuming 2 down) and shuts down.
    fn lone_bid_of_1() -> Vec<Step> {
        drive(
            1,
            &[1, 2],
            vec![
                start(),
                Event::Timeout {
                    timer: Timer::ElectionTimeout,
                },
                Event::Shutdown,
            ],
        )
    }

    fn start() -> Event {
        Event::fresh()
    }

    /// Names each receipt's send as a wire would: the first equal send to it not named yet,
    /// else (a duplicate) the last one named, else (an invented message) a step nobody took.
    fn link(steps: &[Step]) -> Vec<Step> {
        let mut out = steps.to_vec();
        // Every send: (src, dst, msg) -> identities in order, with a taken flag.
        let mut sends: Vec<(Id, Id, Msg, SendId, bool)> = Vec::new();
        let mut start_of: BTreeMap<Id, u64> = BTreeMap::new();
        for s in steps {
            if let Event::Start { incarnation, .. } = s.event.event {
                start_of.insert(s.node, incarnation);
            }
            for (c, cmd) in s.commands.iter().enumerate() {
                if let Cmd::Send { dst, msg } = cmd {
                    let id = SendId {
                        inc: start_of[&s.node],
                        seq: s.seq,
                        cmd: c as u32,
                    };
                    sends.push((s.node, *dst, msg.clone(), id, false));
                }
            }
        }
        for s in &mut out {
            let Event::Msg { src, msg } = &s.event.event else {
                continue;
            };
            let me = s.node;
            let same =
                |e: &&mut (Id, Id, Msg, SendId, bool)| e.0 == *src && e.1 == me && e.2 == *msg;
            let id = match sends.iter_mut().filter(same).find(|e| !e.4) {
                Some(e) => {
                    e.4 = true;
                    e.3
                }
                None => sends.iter_mut().filter(same).last().map_or(
                    SendId {
                        inc: start_of.get(src).copied().unwrap_or(0),
                        seq: 999,
                        cmd: 0,
                    },
                    |e| e.3,
                ),
            };
            s.event.sent = Some(id);
        }
        out
    }

    /// Links the receipts ([`link`]) and validates.
    fn check(steps: &[Step]) -> Verdict {
        validate(&link(steps), &Options::default())
    }

    /// Two nodes that never hear from each other both take office by timeout (each presumes
    /// the other down): every step replays, nothing is received, but the two terms coexist.
    #[test]
    fn concurrent_coordinators_are_caught() {
        let mut steps = lone_bid_of_1();
        steps.extend(drive(
            2,
            &[1, 2],
            vec![
                start(),
                // The first timeout asks again, the second presumes 1 down.
                Event::Timeout {
                    timer: Timer::HaltTimeout,
                },
                Event::Timeout {
                    timer: Timer::HaltTimeout,
                },
                Event::Shutdown,
            ],
        ));
        assert!(steps[1].after.is_coordinator() && steps[5].after.is_coordinator());
        let v = check(&steps);
        let bad = v.violation.expect("two coexisting coordinators");
        assert_eq!(
            (bad.check, bad.node, bad.seq),
            (CheckKind::Properties, 1, 1)
        );
        assert!(bad.what.starts_with("single coordinator"), "{bad}");
        assert_eq!(v.summary.terms, 2);
    }

    /// A receipt from a process without a log cannot be matched: a violation, unless that
    /// process is named foreign (a plain exercise peer, the workbench's observer).
    #[test]
    fn receipts_from_foreign_processes_are_taken_as_sent() {
        let from_plain_peer = Event::Msg {
            src: Id::from(7),
            msg: Msg::Election {
                tag: Default::default(),
            },
        };
        let steps = drive(2, &[2, 7], vec![start(), from_plain_peer]);
        let bad = validate(&steps, &Options::default()).violation.unwrap();
        assert_eq!((bad.check, bad.node, bad.seq), (CheckKind::Messages, 2, 1));
        let opts = Options {
            foreign: [Id::from(7)].into(),
            ..Options::default()
        };
        let v = validate(&steps, &opts);
        assert!(v.ok(), "{:?}", v.violation);
    }

    /// A receipt logged twice for one send is a duplicate; one never sent is invented.
    #[test]
    fn duplicated_and_invented_receipts_are_caught() {
        let a = drive(1, &[1, 2], vec![start()]);
        let election = Event::Msg {
            src: Id::from(1),
            msg: sends_to(&a, 2).remove(0),
        };
        let once = drive(2, &[1, 2], vec![start(), election.clone()]);
        let ok: Vec<Step> = a.iter().chain(&once).cloned().collect();
        assert!(check(&ok).ok());

        let twice = drive(2, &[1, 2], vec![start(), election.clone(), election]);
        let dup: Vec<Step> = a.iter().chain(&twice).cloned().collect();
        let bad = check(&dup).violation.unwrap();
        assert_eq!((bad.check, bad.node, bad.seq), (CheckKind::Messages, 2, 2));

        let invented = drive(
            2,
            &[1, 2],
            vec![
                start(),
                Event::Msg {
                    src: Id::from(1),
                    msg: Msg::Resign {
                        epoch: Epoch::none(),
                    },
                },
            ],
        );
        let inv: Vec<Step> = a.iter().chain(&invented).cloned().collect();
        let bad = check(&inv).violation.unwrap();
        assert_eq!((bad.check, bad.node, bad.seq), (CheckKind::Messages, 2, 1));
    }

    /// The messages `steps` send to `dst`, in order.
    fn sends_to(steps: &[Step], dst: usize) -> Vec<Msg> {
        steps
            .iter()
            .flat_map(|s| &s.commands)
            .filter_map(|c| match c {
                Cmd::Send { dst: d, msg } if usize::from(*d) == dst => Some(msg.clone()),
                _ => None,
            })
            .collect()
    }

    /// A message lost while both ends were up is caught; what a crash cut short is not a
    /// violation (the model loses it too: `CutShort`). Node 2 halts node 1, which sends
    /// ELECTION, then its HALT_ACK, which never arrives; node 2 then receives another ELECTION
    /// from node 1: from the same incarnation (lost between live processes), or from node 1's
    /// next one after a crash (lost in the crash).
    #[test]
    fn live_losses_are_caught_and_crash_cut_sends_are_not() {
        let two = drive(2, &[1, 2], vec![start()]);
        let halt = sends_to(&two, 1).remove(0);
        assert!(matches!(halt, Msg::Halt { .. }), "{halt:?}");
        let first_life = drive(
            1,
            &[1, 2],
            vec![
                start(),
                Event::Msg {
                    src: Id::from(2),
                    msg: halt,
                },
            ],
        );
        let sent = sends_to(&first_life, 2);
        assert!(
            matches!(sent[..], [Msg::Election { .. }, Msg::HaltAck { .. }]),
            "{sent:?}"
        );
        // Node 2 receives the first life's ELECTION, then `then`.
        let receipts = |then: &Msg| {
            let mut events = vec![start()];
            events.extend([&sent[0], then].map(|msg| Event::Msg {
                src: Id::from(1),
                msg: msg.clone(),
            }));
            drive(2, &[1, 2], events)
        };

        // The same life asks again: its HALT_ACK was lost while both were up.
        let mut same_life = first_life.clone();
        let more = drive(
            1,
            &[1, 2],
            vec![
                start(),
                Event::Msg {
                    src: Id::from(2),
                    msg: sends_to(&two, 1).remove(0),
                },
                Event::Timeout {
                    timer: Timer::CoordinatorTimeout,
                },
            ],
        );
        same_life.push(more[2].clone());
        let again = &sends_to(&same_life, 2)[2..];
        assert!(matches!(again, [Msg::Election { .. }]), "{again:?}");
        let steps: Vec<Step> = same_life
            .iter()
            .chain(&receipts(&again[0]))
            .cloned()
            .collect();
        let bad = check(&steps).violation.expect("a live loss");
        assert_eq!((bad.check, bad.node, bad.seq), (CheckKind::Messages, 1, 1));
        assert!(bad.what.contains("lost between live processes"), "{bad}");

        // Node 1 crashes and its next life asks: the HALT_ACK was cut short by the crash.
        let saved = first_life
            .iter()
            .rev()
            .flat_map(|s| &s.commands)
            .filter_map(|c| match c {
                Cmd::Save { storage } => Some(storage.clone()),
                _ => None,
            })
            .next();
        let second_life = drive(
            1,
            &[1, 2],
            vec![Event::Start {
                storage: saved,
                incarnation: 2,
            }],
        );
        let again = sends_to(&second_life, 2);
        assert!(matches!(again[..], [Msg::Election { .. }]), "{again:?}");
        let steps: Vec<Step> = first_life
            .iter()
            .chain(&second_life)
            .chain(&receipts(&again[0]))
            .cloned()
            .collect();
        let v = check(&steps);
        assert!(v.ok(), "{v}");
    }

    /// A coordinator killed right after answering a heartbeat whose reply died with it: the
    /// follower times out and takes office. Nothing orders the coordinator's last interval
    /// (from its announcement to the lost reply) against the new term, but that interval ends
    /// in the killed incarnation's unobserved tail, so it is not a violation. The same logs
    /// with the coordinator shut down cleanly instead are one: it was alive and in office.
    #[test]
    fn a_killed_coordinators_unobserved_tail_is_not_compared() {
        let msg = |src: usize, msg: Msg| Event::Msg {
            src: Id::from(src),
            msg,
        };
        let timeout = |timer| Event::Timeout { timer };
        let halt = sends_to(&drive(2, &[1, 2], vec![start()]), 1).remove(0);
        let one = drive(1, &[1, 2], vec![start(), msg(2, halt.clone())]);
        let [election, halt_ack] = <[Msg; 2]>::try_from(sends_to(&one, 2)).unwrap();
        let two = drive(
            2,
            &[1, 2],
            vec![start(), msg(1, election.clone()), msg(1, halt_ack.clone())],
        );
        let [_, answer, coordinator] = <[Msg; 3]>::try_from(sends_to(&two, 1)).unwrap();
        let follower = vec![
            start(),
            msg(2, halt),
            msg(2, answer),
            msg(2, coordinator),
            timeout(Timer::Heartbeat),
        ];
        let heartbeat = sends_to(&drive(1, &[1, 2], follower.clone()), 2).remove(2);
        let coordinator_life = |end: Option<Event>| {
            let mut events = vec![
                start(),
                msg(1, election.clone()),
                msg(1, halt_ack.clone()),
                msg(1, heartbeat.clone()),
            ];
            events.extend(end);
            drive(2, &[1, 2], events)
        };
        let mut events = follower;
        events.extend([
            timeout(Timer::HeartbeatTimeout),
            timeout(Timer::ElectionTimeout),
            Event::Shutdown,
        ]);
        let one = drive(1, &[1, 2], events);
        assert!(one[6].after.is_coordinator(), "{:?}", one[6].after);

        let killed: Vec<Step> = coordinator_life(None)
            .into_iter()
            .chain(one.clone())
            .collect();
        assert!(killed[2].after.is_coordinator() && killed[3].after.is_coordinator());
        let v = check(&killed);
        assert!(v.ok(), "{v}");

        let shut_down: Vec<Step> = coordinator_life(Some(Event::Shutdown))
            .into_iter()
            .chain(one)
            .collect();
        let bad = check(&shut_down)
            .violation
            .expect("two coordinators alive at once");
        assert_eq!(
            (bad.check, bad.node, bad.seq),
            (CheckKind::Properties, 1, 6)
        );
        assert!(bad.what.starts_with("single coordinator"), "{bad}");
    }

    /// A coordinator announces the same COORDINATOR periodically, and once more in reply to a
    /// restarted follower's ELECTION. The periodic one went to the follower while it was down;
    /// the restarted follower received the reply. Paired by identity the run conforms; paired
    /// by content (the earliest equal send), the receipt would be the periodic announcement and
    /// the reply, sent after the new incarnation started, would look lost between live
    /// processes.
    #[test]
    fn a_receipt_is_paired_with_the_send_it_names_not_an_equal_one() {
        let msg = |src: usize, msg: Msg| Event::Msg {
            src: Id::from(src),
            msg,
        };
        let halt = sends_to(&drive(2, &[1, 2], vec![start()]), 1).remove(0);
        let one = drive(1, &[1, 2], vec![start(), msg(2, halt.clone())]);
        let [election, halt_ack] = <[Msg; 2]>::try_from(sends_to(&one, 2)).unwrap();
        let two = drive(
            2,
            &[1, 2],
            vec![start(), msg(1, election.clone()), msg(1, halt_ack.clone())],
        );
        let [_, answer, coordinator] = <[Msg; 3]>::try_from(sends_to(&two, 1)).unwrap();
        let first_life = drive(
            1,
            &[1, 2],
            vec![
                start(),
                msg(2, halt),
                msg(2, answer),
                msg(2, coordinator.clone()),
            ],
        );
        let saved = first_life
            .iter()
            .rev()
            .flat_map(|s| s.commands.iter().rev())
            .find_map(|c| match c {
                Cmd::Save { storage } => Some(storage.clone()),
                _ => None,
            });
        // The second life: asks, takes the reply in, sends a heartbeat, gets its ack.
        let second_life = |then: Vec<Event>| {
            let mut events = vec![Event::Start {
                storage: saved.clone(),
                incarnation: 2,
            }];
            events.extend(then);
            drive(1, &[1, 2], events)
        };
        let asks = sends_to(&second_life(vec![]), 2).remove(0);
        assert!(matches!(asks, Msg::Election { .. }), "{asks:?}");
        let beat = Event::Timeout {
            timer: Timer::Heartbeat,
        };
        let heartbeat = sends_to(
            &second_life(vec![msg(2, coordinator.clone()), beat.clone()]),
            2,
        )
        .remove(1);
        let coordinator_steps = drive(
            2,
            &[1, 2],
            vec![
                start(),
                msg(1, election),
                msg(1, halt_ack),
                Event::Timeout {
                    timer: Timer::Announce,
                },
                msg(1, asks),
                msg(1, heartbeat),
            ],
        );
        let to_one = sends_to(&coordinator_steps, 1);
        assert_eq!(to_one[2..5], [0, 1, 2].map(|_| coordinator.clone()));
        let ack = to_one[5].clone();
        let life = second_life(vec![msg(2, coordinator), beat, msg(2, ack)]);
        let steps: Vec<Step> = coordinator_steps
            .iter()
            .chain(&first_life)
            .chain(&life)
            .cloned()
            .collect();
        let receipt_at = steps.len() - 3;
        // By content: the receipt takes the periodic announcement (seq 3).
        let by_content = link(&steps);
        let receipt = by_content[receipt_at].event.sent.unwrap();
        assert_eq!(receipt.seq, 3);
        let bad = validate(&by_content, &Options::default())
            .violation
            .expect("the reply looks lost");
        assert!(bad.what.contains("lost between live processes"), "{bad}");
        // By identity: it is the reply (seq 4); the announcement was lost to a down process.
        let mut exact = by_content;
        exact[receipt_at].event.sent = Some(SendId { seq: 4, ..receipt });
        let v = validate(&exact, &Options::default());
        assert_eq!(v.outcome(), Outcome::Conforms, "{v}");
        // A receipt naming a command that is not this send is refused.
        exact[receipt_at].event.sent = Some(SendId {
            seq: 4,
            cmd: 99,
            ..receipt
        });
        let bad = validate(&exact, &Options::default()).violation.unwrap();
        assert_eq!((bad.check, bad.node, bad.seq), (CheckKind::Messages, 1, 1));
        assert!(bad.what.contains("but that command is"), "{bad}");
    }

    /// A gap in a node's sequence numbers and a before-state that is not the previous
    /// after-state are caught.
    #[test]
    fn broken_logs_are_caught() {
        let mut steps = lone_bid_of_1();
        let mut gap = steps.clone();
        gap.remove(1);
        let bad = check(&gap).violation.unwrap();
        assert_eq!((bad.check, bad.node, bad.seq), (CheckKind::Log, 1, 2));

        steps[2].before.as_mut().unwrap().promised = Epoch::none();
        steps[2].after = steps[2].before.clone().unwrap();
        let bad = check(&steps).violation.unwrap();
        assert_eq!((bad.check, bad.node, bad.seq), (CheckKind::Replay, 1, 2));
        assert!(
            bad.what.contains("not the previous step's after-state"),
            "{bad}"
        );
    }
}
