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
//! **2. Messages.** Every message a node logs as received (`event.kind = msg`, from `src`) was
//! sent by `src` to that node (a `send` command in `src`'s log with the same `msg`), and no
//! (src, dst, msg) is received more often than it was sent (losses are allowed: a node may be
//! down; duplicates are not: the wire is reliable while both ends are up). Receipts are matched
//! to sends channel by channel (src → dst) in FIFO order where possible (the earliest unmatched
//! equal send after the previous match), otherwise to any earlier unmatched equal send.
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
//! The verdict names the first bad step: nodes in ID order, steps in log order, and checks in
//! the order above (a malformed log is reported before replay, replay before messages, ...).

use bully_model::properties::{agreement_of, check_epoch_order, single_coordinator_of, Entered};
use bully_model::{Bully, Epoch, Id, LoggedStep, Msg, State, Storage, Variant};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};

pub use bully_model::{Cmd, Event};

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
    Empty,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            LoadError::Parse { file, line, error } => {
                write!(f, "{}:{line}: not a step line: {error}", file.display())
            }
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
    /// Receipts matched out of FIFO order (allowed, reported for information).
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

/// The validator's verdict.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub summary: Summary,
    /// The first bad step, if any.
    pub violation: Option<Violation>,
    /// Every node's first replay mismatch (there is at most one per node: later steps of a
    /// node whose replay diverged are not meaningful).
    pub replay_mismatches: Vec<Violation>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.violation.is_none()
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.violation {
            None => write!(f, "CONFORMS: {}", self.summary),
            Some(v) => {
                write!(f, "VIOLATION: {v}")?;
                for other in self.replay_mismatches.iter().skip(1) {
                    write!(f, "\n  also: {other}")?;
                }
                Ok(())
            }
        }
    }
}

fn n(id: Id) -> u64 {
    usize::from(id) as u64
}

/// A node's steps with their incarnation numbers.
struct NodeLog<'a> {
    id: Id,
    steps: Vec<(&'a Step, usize)>,
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
        logs.push(NodeLog { id, steps: out });
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

/// One channel's sends in the sender's order: (send step, message, matched receipt).
struct Channel<'a> {
    dst: Id,
    sends: Vec<(Pos, &'a Msg, Option<Pos>)>,
}

/// Check 2: matches receipts to sends; returns, per step, the matched send (if a receipt), and
/// the channels with each send's receipt (if any).
#[allow(clippy::type_complexity)]
fn match_messages<'a>(
    logs: &[NodeLog<'a>],
    opts: &Options,
    summary: &mut Summary,
) -> Result<(Vec<Vec<Option<Pos>>>, Vec<Channel<'a>>), Violation> {
    let index: HashMap<Id, usize> = logs.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
    // Per channel (src index, dst id): the sends in the sender's order, with a matched flag.
    let mut channels: HashMap<(usize, Id), (Vec<(Pos, &Msg, Option<Pos>)>, usize)> = HashMap::new();
    for (i, l) in logs.iter().enumerate() {
        for (k, (s, _)) in l.steps.iter().enumerate() {
            for c in &s.commands {
                if let Cmd::Send { dst, msg } = c {
                    summary.sent += 1;
                    channels
                        .entry((i, *dst))
                        .or_default()
                        .0
                        .push(((i, k), msg, None));
                }
            }
        }
    }
    let mut matched: Vec<Vec<Option<Pos>>> =
        logs.iter().map(|l| vec![None; l.steps.len()]).collect();
    for (j, l) in logs.iter().enumerate() {
        for (k, (s, inc)) in l.steps.iter().enumerate() {
            let Event::Msg { src, msg } = &s.event.event else {
                continue;
            };
            let bad = |what: String| Err(violation(CheckKind::Messages, s, *inc, what));
            let Some(&i) = index.get(src) else {
                if opts.foreign.contains(src) {
                    continue;
                }
                return bad(format!(
                    "received {msg:?} from {}, which has no log (nothing it sent can be matched)",
                    n(*src)
                ));
            };
            let Some((sends, next)) = channels.get_mut(&(i, l.id)) else {
                return bad(format!(
                    "received {msg:?} from {}, which never sent anything to {}",
                    n(*src),
                    n(l.id)
                ));
            };
            let fifo = (*next..sends.len()).find(|&p| sends[p].2.is_none() && sends[p].1 == msg);
            let p = match fifo {
                Some(p) => {
                    *next = p + 1;
                    p
                }
                None => match (0..*next).find(|&p| sends[p].2.is_none() && sends[p].1 == msg) {
                    Some(p) => {
                        summary.reordered += 1;
                        p
                    }
                    None => {
                        let sent = sends.iter().filter(|e| e.1 == msg).count();
                        return bad(format!(
                            "received {msg:?} from {}, which sent it to {} only {sent} time(s), all matched to earlier receipts",
                            n(*src),
                            n(l.id)
                        ));
                    }
                },
            };
            sends[p].2 = Some((j, k));
            summary.received += 1;
            matched[j][k] = Some(sends[p].0);
        }
    }
    let mut list: Vec<((usize, Id), Channel<'a>)> = channels
        .into_iter()
        .map(|((i, dst), (sends, _))| ((i, dst), Channel { dst, sends }))
        .collect();
    list.sort_by_key(|(k, _)| *k);
    Ok((matched, list.into_iter().map(|(_, c)| c).collect()))
}

/// Check 2, continued (needs the causal order): no message is lost between live processes.
/// A send on channel q → p that was never received, followed by a send of the *same*
/// incarnation of q to p that the incarnation of p which had started before the first send
/// (causally) did receive, was lost while both ends were up: the channel is FIFO within a
/// connection, and an incarnation is one continuous process life. (What a crash of q cuts
/// short is lost with q: a suffix of each of its connections, which the model allows too.)
fn check_no_live_loss(
    logs: &[NodeLog<'_>],
    channels: &[Channel<'_>],
    vc: &[Vec<Vec<u32>>],
) -> Option<Violation> {
    let index: HashMap<Id, usize> = logs.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
    let hb = |a: Pos, b: Pos| vc[b.0][b.1][a.0] > a.1 as u32;
    let mut first: Option<(Pos, Violation)> = None;
    for ch in channels {
        let Some(&j) = index.get(&ch.dst) else {
            continue;
        };
        for (u, &(sp, msg, receipt)) in ch.sends.iter().enumerate() {
            if receipt.is_some() {
                continue;
            }
            let sender_life = logs[sp.0].steps[sp.1].1;
            let Some(&(later_send, _, Some(rp))) = ch.sends[u + 1..]
                .iter()
                .find(|e| e.2.is_some() && logs[e.0 .0].steps[e.0 .1].1 == sender_life)
            else {
                continue;
            };
            let inc = logs[j].steps[rp.1].1;
            let start = (0..=rp.1)
                .rev()
                .find(|&k| logs[j].steps[k].1 != inc)
                .map_or(0, |k| k + 1);
            if !hb((j, start), sp) {
                continue;
            }
            if first.as_ref().is_some_and(|(p, _)| *p <= sp) {
                continue;
            }
            let (s, sinc) = logs[sp.0].steps[sp.1];
            let (r, _) = logs[j].steps[rp.1];
            let (ls, _) = logs[later_send.0].steps[later_send.1];
            let v = violation(
                CheckKind::Messages,
                s,
                sinc,
                format!(
                    "{msg:?} to {} was lost between live processes: {}'s incarnation {inc} had started before it was sent and received this node's later message (sent at seq {}) at its seq {}, but never this one",
                    n(ch.dst),
                    n(ch.dst),
                    ls.seq,
                    r.seq
                ),
            );
            first = Some((sp, v));
        }
    }
    first.map(|(_, v)| v)
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
        for &((i, k), _, receipt) in &ch.sends {
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

/// Check 3.
fn check_properties(
    logs: &[NodeLog<'_>],
    channels: &[Channel<'_>],
    vc: &[Vec<Vec<u32>>],
    summary: &mut Summary,
) -> Option<Violation> {
    // Epoch order per node (the model's ghost rule), and the take-office steps.
    let mut terms: Vec<(Epoch, Pos)> = Vec::new();
    for (i, l) in logs.iter().enumerate() {
        let mut accepted = Epoch::none();
        for (k, &(s, inc)) in l.steps.iter().enumerate() {
            let Some(term) = Entered::on_step(s.before.as_ref(), &s.after) else {
                continue;
            };
            if let Err(broken) = check_epoch_order(l.id, &mut accepted, term) {
                return Some(violation(CheckKind::Properties, s, inc, broken.to_string()));
            }
            if let Entered::Office(epoch) = term {
                terms.push((epoch, (i, k)));
            }
        }
    }
    summary.terms = terms.len();
    // a happens before (or is) b.
    let hb = |a: Pos, b: Pos| vc[b.0][b.1][a.0] > a.1 as u32;
    let step = |p: Pos| logs[p.0].steps[p.1];
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
            let (s, inc) = step(late);
            return Some(violation(CheckKind::Properties, s, inc, what));
        }
    }
    // Single coordinator and agreement on coexisting intervals. Only intervals that name a
    // coordinator can break either property (both need two states that name one).
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
    let mut first: Option<(Pos, Pos)> = None;
    for (x, &(ba, ea, sa)) in intervals.iter().enumerate() {
        for &(bb, eb, sb) in &intervals[x + 1..] {
            if ba.0 == bb.0 || hb(ea, bb) || hb(eb, ba) {
                continue;
            }
            summary.pairs_checked += 1;
            if single_coordinator_of([sa, sb]) && agreement_of([sa, sb]) {
                continue;
            }
            // Report the pair whose later-beginning interval comes first (by log position).
            let (later, other) = if hb(ba, bb) { (bb, ba) } else { (ba, bb) };
            if !matches!(first, Some((l, _)) if l <= later) {
                first = Some((later, other));
            }
        }
    }
    if let Some((p, q)) = first {
        let (s, inc) = step(p);
        let (o, _) = step(q);
        let prop = if single_coordinator_of([&s.after, &o.after]) {
            "agreement"
        } else {
            "single coordinator"
        };
        return Some(violation(
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
        ));
    }
    None
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
    };
    let logs = match group(steps) {
        Ok(l) => l,
        Err(v) => return finish(summary, Some(v), Vec::new()),
    };
    summary.nodes = logs.len();
    summary.incarnations = logs
        .iter()
        .map(|l| l.steps.last().map_or(0, |(_, inc)| inc + 1))
        .sum();
    let mismatches: Vec<Violation> = logs.iter().filter_map(|l| replay_node(l, opts)).collect();
    if let Some(v) = mismatches.first() {
        return finish(summary, Some(v.clone()), mismatches);
    }
    let (matched, channels) = match match_messages(&logs, opts, &mut summary) {
        Ok(m) => m,
        Err(v) => return finish(summary, Some(v), Vec::new()),
    };
    let vc = match vector_clocks(&logs, &matched) {
        Ok(vc) => vc,
        Err(v) => return finish(summary, Some(v), Vec::new()),
    };
    if let Some(v) = check_no_live_loss(&logs, &channels, &vc) {
        return finish(summary, Some(v), Vec::new());
    }
    let v = check_properties(&logs, &channels, &vc, &mut summary);
    finish(summary, v, Vec::new())
}

/// Loads the files and validates them.
pub fn validate_files(paths: &[PathBuf], opts: &Options) -> Result<Verdict, LoadError> {
    Ok(validate(&load(paths)?, opts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bully_model::{Durations, LoggedEvent, Members, Start, Timer};

    /// A node's log, produced by the model's own handlers from `events` (so replay holds).
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
        for (seq, event) in events.into_iter().enumerate() {
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

    fn start() -> Event {
        Event::fresh()
    }

    /// Two nodes that never hear from each other both take office by timeout (each presumes
    /// the other down): every step replays, nothing is received, but the two terms coexist.
    #[test]
    fn concurrent_coordinators_are_caught() {
        let mut steps = drive(
            1,
            &[1, 2],
            vec![
                start(),
                Event::Timeout {
                    timer: Timer::ElectionTimeout,
                },
                Event::Shutdown,
            ],
        );
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
        let v = validate(&steps, &Options::default());
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
        assert!(validate(&ok, &Options::default()).ok());

        let twice = drive(2, &[1, 2], vec![start(), election.clone(), election]);
        let dup: Vec<Step> = a.iter().chain(&twice).cloned().collect();
        let bad = validate(&dup, &Options::default()).violation.unwrap();
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
        let bad = validate(&inv, &Options::default()).violation.unwrap();
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
        let bad = validate(&steps, &Options::default())
            .violation
            .expect("a live loss");
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
                incarnation: 0,
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
        let v = validate(&steps, &Options::default());
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
        let v = validate(&killed, &Options::default());
        assert!(v.ok(), "{v}");

        let shut_down: Vec<Step> = coordinator_life(Some(Event::Shutdown))
            .into_iter()
            .chain(one)
            .collect();
        let bad = validate(&shut_down, &Options::default())
            .violation
            .expect("two coordinators alive at once");
        assert_eq!(
            (bad.check, bad.node, bad.seq),
            (CheckKind::Properties, 1, 6)
        );
        assert!(bad.what.starts_with("single coordinator"), "{bad}");
    }

    /// A gap in a node's sequence numbers and a before-state that is not the previous
    /// after-state are caught.
    #[test]
    fn broken_logs_are_caught() {
        let mut steps = drive(
            1,
            &[1, 2],
            vec![
                start(),
                Event::Timeout {
                    timer: Timer::ElectionTimeout,
                },
                Event::Shutdown,
            ],
        );
        let mut gap = steps.clone();
        gap.remove(1);
        let bad = validate(&gap, &Options::default()).violation.unwrap();
        assert_eq!((bad.check, bad.node, bad.seq), (CheckKind::Log, 1, 2));

        steps[2].before.as_mut().unwrap().promised = Epoch::none();
        steps[2].after = steps[2].before.clone().unwrap();
        let bad = validate(&steps, &Options::default()).violation.unwrap();
        assert_eq!((bad.check, bad.node, bad.seq), (CheckKind::Replay, 1, 2));
        assert!(
            bad.what.contains("not the previous step's after-state"),
            "{bad}"
        );
    }
}
