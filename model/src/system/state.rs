//! The checked system's state, stored compactly.
//!
//! The checker keeps every state of its frontier in memory and hashes and clones each state it
//! reaches, so the representation matters. In the model the process IDs are `0..N` (N ≤ 32), so
//! a set of processes is a 32-bit mask and an epoch packs into 32 bits; a process state is a few
//! words, a message in flight is one small copyable value, and the whole system state is one
//! flat value (no pointer, no hash map, no allocation up to N = 6 processes and 8 messages).
//!
//! The protocol itself only ever sees its own types: before a handler runs, the process's state
//! and the message are decoded into [`State`] and [`Msg`], and what the handler returns is encoded
//! again ([`Proc::decode`], [`Proc::encode`], [`MsgCode::decode`], [`MsgCode::encode`]).

use crate::protocol::{Epoch, Members, Msg, Role, State, Storage, Tag, Timer};
use smallvec::SmallVec;
use stateright::actor::Id;
use std::fmt;

/// The most processes a model can have (a [`Mask`] has 32 bits).
pub const MAX_PROCESSES: usize = 32;

/// A set of process IDs `0..32`.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mask(pub u32);

impl Mask {
    pub fn of(ids: impl IntoIterator<Item = usize>) -> Mask {
        Mask(ids.into_iter().fold(0, |m, i| m | 1 << i))
    }
    pub fn contains(self, i: usize) -> bool {
        self.0 & (1 << i) != 0
    }
    pub fn with(self, i: usize) -> Mask {
        Mask(self.0 | 1 << i)
    }
    pub fn without(self, i: usize) -> Mask {
        Mask(self.0 & !(1 << i))
    }
    pub fn intersect(self, other: Mask) -> Mask {
        Mask(self.0 & other.0)
    }
    pub fn is_subset(self, other: Mask) -> bool {
        self.0 & !other.0 == 0
    }
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The IDs in ascending order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut rest = self.0;
        std::iter::from_fn(move || {
            (rest != 0).then(|| {
                let i = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                i
            })
        })
    }
    pub fn encode(members: &Members) -> Mask {
        Mask::of(members.iter().map(pid))
    }
    fn decode(self) -> Members {
        Members::from_sorted(self.iter().map(Id::from))
    }
}

impl fmt::Debug for Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A process ID of the model as an index (panics on an ID outside `0..32`: the handlers only
/// ever name members they were given, which are all model processes).
fn pid(id: Id) -> usize {
    let i = usize::from(id);
    assert!(i < MAX_PROCESSES, "process ID {i} is outside the model");
    i
}

/// An [`Epoch`] packed into 32 bits: the round above, the leader in the low 5 bits, so the order
/// of the codes is the order of the epochs.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ep(pub u32);

impl Ep {
    pub fn encode(e: Epoch) -> Ep {
        assert!(e.round < 1 << 27, "epoch round {} is too large", e.round);
        Ep(e.round << 5 | pid(e.leader) as u32)
    }
    pub fn decode(self) -> Epoch {
        Epoch {
            round: self.round(),
            leader: Id::from(self.leader()),
        }
    }
    pub fn round(self) -> u32 {
        self.0 >> 5
    }
    pub fn leader(self) -> usize {
        (self.0 & 31) as usize
    }
}

impl fmt::Debug for Ep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round(), self.leader())
    }
}

/// A process's [`Role`], compactly.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleCode {
    Joining {
        contact: u8,
    },
    Electing {
        waiting: Mask,
    },
    Waiting,
    Halting {
        epoch: Ep,
        waiting: Mask,
        asked_again: bool,
    },
    Coordinator {
        epoch: Ep,
    },
    Follower {
        epoch: Ep,
    },
}

impl RoleCode {
    fn encode(r: &Role) -> RoleCode {
        match r {
            Role::Joining { contact } => RoleCode::Joining {
                contact: pid(*contact) as u8,
            },
            Role::Electing { waiting } => RoleCode::Electing {
                waiting: Mask::encode(waiting),
            },
            Role::Waiting => RoleCode::Waiting,
            Role::Halting {
                epoch,
                waiting,
                asked_again,
            } => RoleCode::Halting {
                epoch: Ep::encode(*epoch),
                waiting: Mask::encode(waiting),
                asked_again: *asked_again,
            },
            Role::Coordinator { epoch } => RoleCode::Coordinator {
                epoch: Ep::encode(*epoch),
            },
            Role::Follower { epoch } => RoleCode::Follower {
                epoch: Ep::encode(*epoch),
            },
        }
    }
    fn decode(self) -> Role {
        match self {
            RoleCode::Joining { contact } => Role::Joining {
                contact: Id::from(contact as usize),
            },
            RoleCode::Electing { waiting } => Role::Electing {
                waiting: waiting.decode(),
            },
            RoleCode::Waiting => Role::Waiting,
            RoleCode::Halting {
                epoch,
                waiting,
                asked_again,
            } => Role::Halting {
                epoch: epoch.decode(),
                waiting: waiting.decode(),
                asked_again,
            },
            RoleCode::Coordinator { epoch } => Role::Coordinator {
                epoch: epoch.decode(),
            },
            RoleCode::Follower { epoch } => Role::Follower {
                epoch: epoch.decode(),
            },
        }
    }
}

/// The bit of each timer in [`Proc::timers`].
pub fn timer_bit(t: Timer) -> u8 {
    1 << match t {
        Timer::Heartbeat => 0,
        Timer::HeartbeatTimeout => 1,
        Timer::ElectionTimeout => 2,
        Timer::HaltTimeout => 3,
        Timer::CoordinatorTimeout => 4,
        Timer::Announce => 5,
    }
}

/// Every timer, in the order of their bits (checked by `timer_bits_follow_the_timer_order`).
pub const TIMERS: [Timer; 6] = Timer::ALL;

/// One process of the checked system.
///
/// While the process is up, `role`, `members` and `promised` are its [`State`] and `timers` the
/// timers it has set; what it saved is always `State::storage` of that state (every handler
/// saves exactly when that changes). While it is crashed only what it saved survives: the role
/// is then `Waiting` (or `Joining` if it never joined), so crashed processes that saved the
/// same thing are the same state.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Proc {
    pub role: RoleCode,
    pub members: Mask,
    pub promised: Ep,
    pub timers: u8,
    /// Peers this process waits for (a failure-detector timer) whose copy of its last request
    /// was lost because they crashed, even if they are up again: the node's timer fires for
    /// them whatever they do now, so the synchronous timing rule lets it fire too.
    pub lost: Mask,
    pub crashed: bool,
    /// How many times it has started ([`State::starts`]; saved).
    pub starts: u8,
    /// Its tag ([`State::tag`]): [`CURRENT`] unless tags are not renamed (see [`MsgCode`]).
    pub tag: TagCode,
    /// Ghost: the highest epoch this process has taken office with or followed, over all its
    /// lives (see [`Ghost`](super::Ghost)).
    pub accepted: Ep,
}

impl Proc {
    pub fn new(s: &State) -> Proc {
        let mut p = Proc {
            role: RoleCode::Waiting,
            members: Mask::default(),
            promised: Ep::default(),
            timers: 0,
            lost: Mask::default(),
            crashed: false,
            starts: 0,
            tag: TagCode::default(),
            accepted: Ep::default(),
        };
        p.encode(s);
        p
    }
    /// The protocol state of this process.
    pub fn decode(&self) -> State {
        State {
            role: self.role.decode(),
            members: self.members.decode(),
            promised: self.promised.decode(),
            tag: self.tag.decode(),
            starts: u64::from(self.starts),
        }
    }
    /// Stores `s` as this process's state (timers, crash flag and ghost unchanged).
    pub fn encode(&mut self, s: &State) {
        self.tag = TagCode::encode(s.tag);
        self.role = RoleCode::encode(&s.role);
        self.members = Mask::encode(&s.members);
        self.promised = Ep::encode(s.promised);
        self.starts = u8::try_from(s.starts).unwrap_or(u8::MAX);
    }
    /// What the process has saved.
    pub fn storage(&self) -> Storage {
        self.decode().storage()
    }
    /// Crashes the process: its volatile state and timers are gone, its storage stays.
    pub fn crash(&mut self) {
        self.crashed = true;
        self.timers = 0;
        self.lost = Mask::default();
        if !matches!(self.role, RoleCode::Joining { .. }) {
            self.role = RoleCode::Waiting;
        }
    }
    pub fn has_timer(&self, t: Timer) -> bool {
        self.timers & timer_bit(t) != 0
    }
    pub fn timers(&self) -> impl Iterator<Item = Timer> + '_ {
        TIMERS.into_iter().filter(|&t| self.has_timer(t))
    }
    /// The epoch of the term this process is in office for or follows.
    pub fn epoch(&self) -> Option<Ep> {
        match self.role {
            RoleCode::Coordinator { epoch } | RoleCode::Follower { epoch } => Some(epoch),
            _ => None,
        }
    }
}

/// The tag every process holds in the checked system: its current election's.
pub const CURRENT: Tag = Tag(1);
/// The tag of every message that names an election its process has moved past.
pub const STALE: Tag = Tag(0);

/// A [`Tag`], compactly: its start number and its election count, 16 bits each (the checker
/// numbers starts 1, 2, …, and its runs stay far below; debug builds check).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TagCode(u32);

impl TagCode {
    pub fn encode(t: Tag) -> TagCode {
        let (start, count) = (t.start(), t.count());
        debug_assert!(start <= 0xffff && count <= 0xffff, "tag {t:?} out of range");
        TagCode(((start as u32) << 16) | (count as u32 & 0xffff))
    }
    pub fn decode(self) -> Tag {
        Tag::of(u64::from(self.0 >> 16), u64::from(self.0 & 0xffff))
    }
}

/// The process whose tag `msg` (from `src` to `dst`) carries, if it carries one: the sender
/// of a request (ELECTION, HEARTBEAT), the receiver of a reply (ANSWER, HEARTBEAT_ACK); see
/// [`MsgCode`].
pub fn asker(msg: &Msg, src: Id, dst: Id) -> Option<Id> {
    match msg {
        Msg::Election { .. } | Msg::Heartbeat { .. } => Some(src),
        Msg::Answer { .. } | Msg::HeartbeatAck { .. } => Some(dst),
        _ => None,
    }
}

/// `msg` of a real run as the checker names it (see [`MsgCode`]): a tag equal to its asker's
/// current one (`asker_tag`: that of the asker's latest start, up or down) is [`CURRENT`],
/// any other [`STALE`]. The node's replayer matches real frames to a trace's with it.
pub fn renamed(msg: &Msg, asker_tag: Tag) -> Msg {
    let mut msg = msg.clone();
    if let Some(tag) = tag_mut(&mut msg) {
        *tag = if *tag == asker_tag { CURRENT } else { STALE };
    }
    msg
}

/// The tag `msg` carries, if any.
pub fn tag_mut(msg: &mut Msg) -> Option<&mut Tag> {
    match msg {
        Msg::Election { tag }
        | Msg::Answer { tag, .. }
        | Msg::Heartbeat { tag }
        | Msg::HeartbeatAck { tag, .. } => Some(tag),
        _ => None,
    }
}

/// A process state of a real run as the checker names it: its own tag is [`CURRENT`], and its
/// start number is `start`, the ordinal of the run (the checker numbers a process's starts
/// 1, 2, …; a node numbers them from its clock).
pub fn renamed_state(s: &State, start: u64) -> State {
    State {
        tag: CURRENT,
        starts: start,
        ..s.clone()
    }
}

/// What a crashed real process saved, as the checker names it (see [`renamed_state`]).
pub fn renamed_storage(s: &Storage, start: u64) -> Storage {
    Storage {
        starts: start,
        ..s.clone()
    }
}

/// A message of the protocol ([`Msg`]), compactly.
///
/// **Tags are renamed** (unless [`Config::tag_renaming`](super::Config::tag_renaming) is off,
/// to cross-check it). The protocol asks nothing of an election [`Tag`] but whether it is
/// the asker's current one, and a new election's tag differs from every earlier tag of its
/// process (a start's number is above every earlier start's, an election's count is the
/// previous one plus one). So the
/// checker keeps only that bit: a process's tag is always [`CURRENT`], an ELECTION or ANSWER
/// is current (its asker is still in that election) or stale. When a step gives its process
/// a new tag (a new election, a restart), every message naming the old one becomes stale
/// ([`NetOp::NewTag`](super::NetOp::NewTag)) and the new tag is renamed
/// [`CURRENT`]. Two states that differ only in tag values behave alike, so this loses
/// nothing and keeps the count of states finite.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MsgCode {
    Election {
        tag: TagCode,
    },
    Answer {
        tag: TagCode,
        members: Mask,
    },
    Halt {
        epoch: Ep,
    },
    HaltAck {
        epoch: Ep,
        members: Mask,
    },
    HaltNack {
        promised: Ep,
    },
    Coordinator {
        epoch: Ep,
        members: Mask,
    },
    Heartbeat {
        tag: TagCode,
    },
    HeartbeatAck {
        tag: TagCode,
        coordinator: Option<Ep>,
        promised: Ep,
        members: Mask,
    },
    Resign {
        epoch: Ep,
    },
}

impl MsgCode {
    pub fn encode(m: &Msg) -> MsgCode {
        match m {
            Msg::Election { tag } => MsgCode::Election {
                tag: TagCode::encode(*tag),
            },
            Msg::Answer { tag, members } => MsgCode::Answer {
                tag: TagCode::encode(*tag),
                members: Mask::encode(members),
            },
            Msg::Halt { epoch } => MsgCode::Halt {
                epoch: Ep::encode(*epoch),
            },
            Msg::HaltAck { epoch, members } => MsgCode::HaltAck {
                epoch: Ep::encode(*epoch),
                members: Mask::encode(members),
            },
            Msg::HaltNack { promised } => MsgCode::HaltNack {
                promised: Ep::encode(*promised),
            },
            Msg::Coordinator { epoch, members } => MsgCode::Coordinator {
                epoch: Ep::encode(*epoch),
                members: Mask::encode(members),
            },
            Msg::Heartbeat { tag } => MsgCode::Heartbeat {
                tag: TagCode::encode(*tag),
            },
            Msg::HeartbeatAck {
                tag,
                coordinator,
                promised,
                members,
            } => MsgCode::HeartbeatAck {
                tag: TagCode::encode(*tag),
                coordinator: coordinator.map(Ep::encode),
                promised: Ep::encode(*promised),
                members: Mask::encode(members),
            },
            Msg::Resign { epoch } => MsgCode::Resign {
                epoch: Ep::encode(*epoch),
            },
        }
    }
    /// The same message, with a stale tag.
    pub fn stale(mut self) -> MsgCode {
        match &mut self {
            MsgCode::Election { tag }
            | MsgCode::Answer { tag, .. }
            | MsgCode::Heartbeat { tag }
            | MsgCode::HeartbeatAck { tag, .. } => *tag = TagCode::encode(STALE),
            _ => {}
        }
        self
    }
    pub fn decode(self) -> Msg {
        match self {
            MsgCode::Election { tag } => Msg::Election { tag: tag.decode() },
            MsgCode::Answer { tag, members } => Msg::Answer {
                tag: tag.decode(),
                members: members.decode(),
            },
            MsgCode::Halt { epoch } => Msg::Halt {
                epoch: epoch.decode(),
            },
            MsgCode::HaltAck { epoch, members } => Msg::HaltAck {
                epoch: epoch.decode(),
                members: members.decode(),
            },
            MsgCode::HaltNack { promised } => Msg::HaltNack {
                promised: promised.decode(),
            },
            MsgCode::Coordinator { epoch, members } => Msg::Coordinator {
                epoch: epoch.decode(),
                members: members.decode(),
            },
            MsgCode::Heartbeat { tag } => Msg::Heartbeat { tag: tag.decode() },
            MsgCode::HeartbeatAck {
                tag,
                coordinator,
                promised,
                members,
            } => Msg::HeartbeatAck {
                tag: tag.decode(),
                coordinator: coordinator.map(Ep::decode),
                promised: promised.decode(),
                members: members.decode(),
            },
            MsgCode::Resign { epoch } => Msg::Resign {
                epoch: epoch.decode(),
            },
        }
    }
}

/// A message in flight: sender, receiver and message.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Env {
    pub src: u8,
    pub dst: u8,
    /// How many times the sender has restarted since it sent this message (0: sent by its
    /// current incarnation). A restarted process talks over new connections, so its new
    /// messages are not ordered after its old ones (see [`Channels::Fifo`]).
    pub age: u8,
    pub msg: MsgCode,
    /// On a duplicating network, whether a copy of it has arrived already. Duplication is
    /// about later copies: the first one still arrives within the bound, so the synchronous
    /// timing rule waits for it ([`Quiet::holds`](super::Quiet::holds)) and not for the
    /// copies after it, which may come at any time. Always false on other networks.
    pub delivered: bool,
}

impl Env {
    pub fn new(src: Id, dst: Id, msg: &Msg) -> Env {
        Env {
            src: pid(src) as u8,
            dst: pid(dst) as u8,
            age: 0,
            msg: MsgCode::encode(msg),
            delivered: false,
        }
    }
    pub fn src(&self) -> Id {
        Id::from(self.src as usize)
    }
    pub fn dst(&self) -> Id {
        Id::from(self.dst as usize)
    }
    pub fn msg(&self) -> Msg {
        self.msg.decode()
    }
    /// Whether it carries process `p`'s current tag (see [`MsgCode`]).
    pub fn carries_current_tag_of(&self, p: u8) -> bool {
        let current = TagCode::encode(CURRENT);
        match self.msg {
            MsgCode::Election { tag } | MsgCode::Heartbeat { tag } => {
                tag == current && self.src == p
            }
            MsgCode::Answer { tag, .. } | MsgCode::HeartbeatAck { tag, .. } => {
                tag == current && self.dst == p
            }
            _ => false,
        }
    }
    /// The connection it travels on: sender, receiver and the sender's incarnation.
    pub fn channel(&self) -> (u8, u8, u8) {
        (self.src, self.dst, self.age)
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}: {:?}", self.src, self.dst, self.msg())?;
        if self.age > 0 {
            write!(f, " (sent before {} restart(s))", self.age)?;
        }
        if self.delivered {
            write!(f, " (a copy: delivered before)")?;
        }
        Ok(())
    }
}

/// The order in which messages travel.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Channels {
    /// First in, first out on each connection: the messages one incarnation of a process sends
    /// to one receiver arrive in the order sent (ZeroMQ over TCP). Different senders, and the
    /// old and new incarnations of a restarted sender, are not ordered with each other.
    Fifo,
    /// Any message in flight may arrive next (a stronger adversary than TCP).
    Unordered,
}

/// The messages in flight.
///
/// A multiset kept in a canonical order, so equal networks are equal values: with
/// [`Channels::Unordered`] sorted; with [`Channels::Fifo`] grouped by channel (sorted by
/// [`Env::channel`]) and in send order within a channel. A duplicating network keeps each
/// message once (a set).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Network(SmallVec<[Env; 8]>);

impl Network {
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Env> + '_ {
        self.0.iter()
    }
    /// The messages that can arrive next, each once: with FIFO channels the head of each
    /// channel, otherwise every distinct message.
    pub fn deliverable(&self, channels: Channels) -> impl Iterator<Item = &Env> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(move |(i, e)| {
                *i == 0
                    || match channels {
                        Channels::Fifo => self.0[i - 1].channel() != e.channel(),
                        Channels::Unordered => self.0[i - 1] != **e,
                    }
            })
            .map(|(_, e)| e)
    }
    /// The messages that can be cut short by their sender's crash, each once: with FIFO
    /// channels the last of each channel (what was queued last leaves last), otherwise every
    /// distinct message.
    pub fn unsent(&self, channels: Channels) -> impl Iterator<Item = &Env> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(move |(i, e)| match self.0.get(i + 1) {
                None => true,
                Some(next) => match channels {
                    Channels::Fifo => next.channel() != e.channel(),
                    Channels::Unordered => next != *e,
                },
            })
            .map(|(_, e)| e)
    }
    pub fn contains(&self, e: &Env) -> bool {
        self.0.contains(e)
    }
    /// Sends `e`.
    pub fn add(&mut self, e: Env, channels: Channels) {
        let at = match channels {
            Channels::Fifo => self.0.partition_point(|x| x.channel() <= e.channel()),
            Channels::Unordered => self.0.partition_point(|x| x <= &e),
        };
        self.0.insert(at, e);
    }
    /// Adds `e` unless a copy is in flight (a duplicating network: a set).
    pub fn add_once(&mut self, e: Env) {
        if let Err(at) = self.0.binary_search(&e) {
            self.0.insert(at, e);
        }
    }
    /// The first copy of `e` arrived (a duplicating network): it stays, as delivered.
    pub fn delivered_once(&mut self, e: &Env) {
        if self.remove(e) {
            self.add_once(Env {
                delivered: true,
                ..*e
            });
        }
    }
    /// Removes the first copy of `e` (with FIFO channels, the first in its channel); false if
    /// there was none.
    pub fn remove(&mut self, e: &Env) -> bool {
        self.remove_at(self.0.iter().position(|x| x == e))
    }
    /// Removes the last copy of `e` (with FIFO channels, the last in its channel).
    pub fn remove_last(&mut self, e: &Env) -> bool {
        self.remove_at(self.0.iter().rposition(|x| x == e))
    }
    fn remove_at(&mut self, at: Option<usize>) -> bool {
        at.map(|at| self.0.remove(at)).is_some()
    }
    pub fn retain(&mut self, keep: impl FnMut(&mut Env) -> bool) {
        self.0.retain(keep)
    }
    /// Process `p` restarted: every message it sent so far is now from an older incarnation.
    /// (Its channels keep their relative order, so the network stays canonical.)
    pub fn sender_restarted(&mut self, p: usize) {
        for e in self.0.iter_mut().filter(|e| e.src as usize == p) {
            e.age += 1;
        }
    }
    /// Process `p` has a new tag (a new election, a new term, a restart): every message that
    /// carries its tag so far is now stale (see [`MsgCode`]). The order stays canonical.
    pub fn new_tag(&mut self, p: u8, channels: Channels, set: bool) {
        let mut changed = false;
        for e in self.0.iter_mut().filter(|e| e.carries_current_tag_of(p)) {
            e.msg = e.msg.stale();
            changed = true;
        }
        // FIFO channels keep send order (a message's channel did not change); the others are
        // sorted, and a set holds each message once.
        if changed && channels == Channels::Unordered {
            self.0.sort();
            if set {
                self.0.dedup();
            }
        }
    }
    /// Appends `e` as it is (the caller keeps the order canonical: the symbolic engine joins
    /// channels that are each canonical, in channel order).
    pub fn push_raw(&mut self, e: Env) {
        self.0.push(e);
    }
    /// Whether a message from `src` to `dst` is in flight.
    pub fn any_between(&self, src: usize, dst: usize) -> bool {
        self.0
            .iter()
            .any(|e| e.src as usize == src && e.dst as usize == dst)
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_bits_follow_the_timer_order() {
        for (i, t) in TIMERS.into_iter().enumerate() {
            assert_eq!(timer_bit(t), 1 << i, "{t:?}");
        }
    }
}
