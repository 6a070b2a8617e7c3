//! The Bully protocol: the only place where protocol decisions are made.
//!
//! [`Bully`] is a stateright [`Actor`]. It performs no I/O and reads no clock: every effect is a
//! command in [`Out`] (send, set/cancel a timer, save durable storage). The model checker executes
//! those commands on a simulated network; `bully-node` executes the very same commands on ZeroMQ
//! sockets and real deadlines.
//!
//! # The protocol in one screen
//!
//! * **Election.** A process that starts, recovers, loses its coordinator or hears an ELECTION from
//!   a lower process sends [`Msg::Election`] to every higher member it knows. Any [`Msg::Answer`]
//!   (the textbook OK) means a higher process takes over: the asker waits for the result and
//!   starts again if none comes in time. No answer before the timeout means no higher process is
//!   alive, and the asker becomes a candidate.
//! * **Halt (the safety phase, after Garcia-Molina).** The candidate proposes a new [`Epoch`] and
//!   sends [`Msg::Halt`] to every lower member. A lower process that accepts the proposal stops
//!   acting as coordinator or follower, promises never to accept an older epoch (the promise is
//!   saved) and acknowledges. Only when every live lower member has acknowledged does the
//!   candidate take office. This is what keeps a recovered higher process and the old coordinator
//!   from both acting as coordinator at once: the old one was halted before the new one took
//!   office. A refusal ([`Msg::HaltNack`]) carries the higher epoch the refuser already promised;
//!   the candidate retries above it, or, if that promise names a higher process, asks that
//!   process instead of competing with it. A member silent at the halt timeout gets the HALT
//!   once more (it may have restarted and lost the first); only a second timeout presumes it
//!   down.
//! * **Coordinator.** The new coordinator announces [`Msg::Coordinator`] with its epoch and member
//!   list to every member, and again every [`Durations::announce_period`], so that a member that
//!   missed it (down at the time, or never heard of this coordinator) learns who leads. A
//!   coordinator told of an older one it never knew answers with its own announcement: that is
//!   how two groups that joined through different contacts merge.
//! * **Heartbeats.** Followers send [`Msg::Heartbeat`] to the coordinator every heartbeat period;
//!   the reply [`Msg::HeartbeatAck`] carries the replier's member list (stored by the follower) and
//!   says whether the replier still is coordinator. No reply within the timeout starts an election.
//! * **Tags.** Every request that waits for a reply (ELECTION, HEARTBEAT) carries the asker's
//!   [`Tag`], new for every election and every term followed, and the reply echoes it: a reply
//!   to something the asker has moved past is stale and changes nothing but what it teaches
//!   (members).
//! * **Join.** A process that knows only one contact (the exercise's `<port> <coordinator_port>`)
//!   heartbeats the contact until it answers, learns the members (and the contact's promise)
//!   from the reply, then holds an election like everyone else. It never elects itself before
//!   it has heard from the group: a process that knows nobody would crown itself in a group of
//!   one. A member that sends it ELECTION while its contact is silent becomes its contact; a
//!   candidate that halts it does too, and it stays a joiner until that candidate's
//!   announcement (or its reply) brings the members: a HALT carries none.
//!
//! Every message that carries a member list lets the receiver learn members; every message's
//! sender is learned too. Membership only grows (a crashed process may come back).
//!
//! The epoch is the fencing token: `(round, leader)`, ordered by round and then by leader ID.
//! A candidate proposes a round above every epoch it has seen, so epochs only grow, and two
//! different leaders never share an epoch even when one of them could not learn the other's round
//! (with crashes, a lone survivor may not know the last round; the leader part keeps them apart).

use crate::mutants::Variant;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use stateright::actor::{Actor, Id, Out};
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::time::Duration;

/// The fencing token of a coordinator's term: round first, then the leader's ID.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Epoch {
    pub round: u32,
    pub leader: Id,
}

impl Epoch {
    /// "No coordinator seen yet": below every real epoch (real rounds start at 1).
    pub fn none() -> Epoch {
        Epoch::default()
    }
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round, usize::from(self.leader))
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Names what a process asks about now: its latest election, or the term it follows. Its
/// ELECTIONs and HEARTBEATs carry it and the replies (ANSWER, HEARTBEAT_ACK) echo it, so a
/// process acts only on replies to what it asks now: a reply to an election it has moved
/// past, or to a heartbeat of a term it left, is stale. (A late ANSWER would otherwise stop a
/// later election that nobody answered; a late heartbeat reply would vouch for a coordinator
/// in a later term. And the checker would have to follow every such reply.)
///
/// The high 42 bits are the process's start number ([`State::starts`]: above every earlier
/// start's, so every incarnation's tags are new, even after its storage was lost: see
/// [`Event::Start`](crate::Event::Start)), the low 22 bits count its elections and terms since
/// it started. Nothing but equality is ever asked of a tag, which is what lets the checker
/// rename them (a process's current tag and the stale ones; see `system::state::MsgCode`).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tag(pub u64);

impl Tag {
    /// Bits of the count within one start: 4 million elections and terms before it wraps,
    /// which no reply outlives (a reply is late by at most the delay bound).
    const COUNT_BITS: u32 = 22;
    const COUNT: u64 = (1 << Self::COUNT_BITS) - 1;

    /// The tag of the first election after start number `start` (1 for the first start; a
    /// node's are milliseconds of its clock: 42 bits last until 2159).
    pub fn first(start: u64) -> Tag {
        Tag::of(start, 0)
    }
    /// The next tag of the same start.
    fn next(self) -> Tag {
        Tag((self.0 & !Self::COUNT) | (self.0.wrapping_add(1) & Self::COUNT))
    }
    /// The tag of election or term `count` of start `start`.
    pub fn of(start: u64, count: u64) -> Tag {
        Tag((start << Self::COUNT_BITS) | (count & Self::COUNT))
    }
    /// Its start's number.
    pub fn start(self) -> u64 {
        self.0 >> Self::COUNT_BITS
    }
    /// Its count within its start.
    pub fn count(self) -> u64 {
        self.0 & Self::COUNT
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.start(), self.count())
    }
}

/// A sorted, duplicate-free set of process IDs. Small groups are stored inline: the checker
/// clones and hashes member lists in every state and every in-flight message, and a heap
/// allocation per clone would be its largest single cost. On the wire it is a plain list; a
/// received list is sorted and deduplicated, whatever the sender did.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Members(SmallVec<[Id; Members::INLINE]>);

impl Serialize for Members {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Id>::deserialize(d).map(Members::new)
    }
}

impl Members {
    /// Groups up to this size need no allocation (covers every exhaustively checked size).
    pub const INLINE: usize = 6;

    pub fn new(ids: impl IntoIterator<Item = Id>) -> Self {
        let mut v: SmallVec<[Id; Members::INLINE]> = ids.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        Members(v)
    }
    /// From IDs the caller knows to be sorted and distinct (checked in debug builds).
    pub fn from_sorted(ids: impl IntoIterator<Item = Id>) -> Self {
        let v: SmallVec<[Id; Members::INLINE]> = ids.into_iter().collect();
        debug_assert!(v.windows(2).all(|w| w[0] < w[1]), "not sorted: {v:?}");
        Members(v)
    }
    pub fn contains(&self, id: Id) -> bool {
        self.0.binary_search(&id).is_ok()
    }
    /// Adds `id`; true if it was new.
    pub fn insert(&mut self, id: Id) -> bool {
        match self.0.binary_search(&id) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, id);
                true
            }
        }
    }
    pub fn remove(&mut self, id: Id) -> bool {
        match self.0.binary_search(&id) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }
    pub fn extend(&mut self, other: Members) {
        for id in other.0 {
            self.insert(id);
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = Id> + '_ {
        self.0.iter().copied()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn as_slice(&self) -> &[Id] {
        &self.0
    }
}

impl fmt::Debug for Members {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.0.iter().map(|id| usize::from(*id)))
            .finish()
    }
}

impl FromIterator<Id> for Members {
    fn from_iter<T: IntoIterator<Item = Id>>(iter: T) -> Self {
        Members::new(iter)
    }
}

/// Every message of the protocol. Requests and replies are separate messages: nothing in the
/// protocol relies on a request/reply lockstep, so any transport that delivers datagrams works.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// To every higher member: "I am holding election `tag`; are you alive?"
    Election { tag: Tag },
    /// The textbook OK: "I am higher and alive; I take over your election `tag`." Carries the
    /// answerer's members so the asker learns higher processes it did not know.
    Answer { tag: Tag, members: Members },
    /// From a candidate to every lower member: stop, and promise not to accept an epoch below
    /// `epoch`.
    Halt { epoch: Epoch },
    /// "Halted; I promise `epoch`." Carries the acknowledger's members so the candidate can halt
    /// lower processes it did not know about before it takes office.
    HaltAck { epoch: Epoch, members: Members },
    /// "I already promised `promised`, which is not below your proposal."
    HaltNack { promised: Epoch },
    /// "I am the coordinator of `epoch` (`epoch.leader` is the sender); these are the members."
    Coordinator { epoch: Epoch, members: Members },
    /// From a follower to its coordinator (or from a joiner to its contact), tagged with the
    /// term (or the join) it asks about.
    Heartbeat { tag: Tag },
    /// Reply to a heartbeat: the replier's epoch if it is coordinator, the highest epoch it
    /// promised (so a follower whose coordinator was deposed stops accepting its stale
    /// announcements), and its member list.
    HeartbeatAck {
        /// The heartbeat's tag.
        tag: Tag,
        coordinator: Option<Epoch>,
        promised: Epoch,
        members: Members,
    },
    /// A coordinator that shuts down cleanly tells the members, who elect at once instead of
    /// waiting for a heartbeat timeout.
    Resign { epoch: Epoch },
}

impl Msg {
    /// Whether the sender waits for a reply to this message (with a timer).
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            Msg::Election { .. } | Msg::Halt { .. } | Msg::Heartbeat { .. }
        )
    }

    /// The message's name, for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Election { .. } => "election",
            Msg::Answer { .. } => "answer",
            Msg::Halt { .. } => "halt",
            Msg::HaltAck { .. } => "halt_ack",
            Msg::HaltNack { .. } => "halt_nack",
            Msg::Coordinator { .. } => "coordinator",
            Msg::Heartbeat { .. } => "heartbeat",
            Msg::HeartbeatAck { .. } => "heartbeat_ack",
            Msg::Resign { .. } => "resign",
        }
    }
}

/// Timers. Each role sets at most the timers named in its documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timer {
    /// Follower: time to send the next heartbeat (periodic, not a failure detector).
    Heartbeat,
    /// Follower or joiner: the heartbeat reply did not come in time.
    HeartbeatTimeout,
    /// Electing: no higher process answered in time, so none is alive.
    ElectionTimeout,
    /// Halting: the lower processes that did not acknowledge in time lost the HALT (they
    /// restarted since) or are down; ask them once more, then presume them down.
    HaltTimeout,
    /// Waiting: no COORDINATOR arrived in time after an answer or a halt; elect again.
    CoordinatorTimeout,
    /// Coordinator: time to announce again to every member (periodic). A member that missed
    /// the announcement, because it was down or had never heard of this coordinator, learns
    /// who leads; this is what ends a split brain in join mode.
    Announce,
}

impl Timer {
    /// Every timer.
    pub const ALL: [Timer; 6] = [
        Timer::Heartbeat,
        Timer::HeartbeatTimeout,
        Timer::ElectionTimeout,
        Timer::HaltTimeout,
        Timer::CoordinatorTimeout,
        Timer::Announce,
    ];
}

/// What a process is doing.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// Heartbeating `contact` until it replies with the member list. Timer: HeartbeatTimeout.
    Joining { contact: Id },
    /// Sent ELECTION to `waiting` (the higher members); no answer yet. Timer: ElectionTimeout.
    Electing { waiting: Members },
    /// A higher process answered or halted us; waiting for its COORDINATOR.
    /// Timer: CoordinatorTimeout.
    Waiting,
    /// Candidate for `epoch`; sent HALT to the lower members, `waiting` have not acknowledged.
    /// `asked_again`: the first timeout passed and the HALT went out once more. Timer:
    /// HaltTimeout.
    Halting {
        epoch: Epoch,
        waiting: Members,
        asked_again: bool,
    },
    /// In office for `epoch`. Timer: Announce.
    Coordinator { epoch: Epoch },
    /// Follows `epoch.leader`. Timer: Heartbeat, or HeartbeatTimeout while a heartbeat is out.
    Follower { epoch: Epoch },
}

/// A process's volatile state.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct State {
    pub role: Role,
    /// Every process this one knows of, itself included.
    pub members: Members,
    /// The highest epoch this process has promised or accepted (saved in [`Storage`]).
    pub promised: Epoch,
    /// What this process asks about now (its latest election, or the term it follows): only
    /// replies that echo it count.
    pub tag: Tag,
    /// This start's number, above every earlier start's (saved; see [`Bully::start`]): the
    /// tags of each start are new.
    pub starts: u64,
}

impl State {
    /// The coordinator this process names, if it is in normal operation.
    pub fn coordinator(&self) -> Option<Id> {
        match self.role {
            Role::Coordinator { epoch } | Role::Follower { epoch } => Some(epoch.leader),
            _ => None,
        }
    }
    pub fn is_coordinator(&self) -> bool {
        matches!(self.role, Role::Coordinator { .. })
    }
    /// The epoch of the coordinator this process is in office for or follows.
    pub fn epoch(&self) -> Option<Epoch> {
        match self.role {
            Role::Coordinator { epoch } | Role::Follower { epoch } => Some(epoch),
            _ => None,
        }
    }
    /// The epoch to credit a COORDINATOR announcement from `leader` that carries none (a peer
    /// speaking the textbook protocol, e.g. the course exercise's Python nodes): the epoch this
    /// process already follows if `leader` is the one it follows, otherwise one round above
    /// everything it promised. So the handler treats a new announcement as new (it follows a
    /// higher leader and takes over from a lower one, as Bully does) and epochs keep growing.
    /// Such an epoch fences nothing: it is made up by the receiver.
    pub fn unfenced_coordinator_epoch(state: Option<&State>, leader: Id) -> Epoch {
        match state {
            Some(s) => match s.role {
                Role::Follower { epoch } if epoch.leader == leader && epoch >= s.promised => epoch,
                _ => Epoch {
                    round: s.promised.round.saturating_add(1),
                    leader,
                },
            },
            None => Epoch { round: 1, leader },
        }
    }
    /// The term a heartbeat reply without an epoch confirms: an answered heartbeat means "the
    /// coordinator is alive", so if this process follows `peer`, that term; otherwise none.
    pub fn unfenced_ack_term(state: Option<&State>, peer: Id) -> Option<Epoch> {
        state.and_then(|s| match s.role {
            Role::Follower { epoch } if epoch.leader == peer => Some(epoch),
            _ => None,
        })
    }
    /// Whether this process has heard from the group (a joiner has not, yet).
    pub fn joined(&self) -> bool {
        !matches!(self.role, Role::Joining { .. })
    }
    /// What `timer` waits for, in this role. The checker's synchronous timing rule uses it to
    /// decide when the timer may fire; the node just waits the configured duration.
    pub fn wait(&self, timer: Timer) -> Wait {
        match (timer, &self.role) {
            (Timer::HeartbeatTimeout, Role::Follower { epoch }) => {
                Wait::Suspect(Members::new([epoch.leader]))
            }
            (Timer::HeartbeatTimeout, Role::Joining { contact }) => {
                Wait::Retry(Members::new([*contact]))
            }
            (Timer::ElectionTimeout, Role::Electing { waiting }) => Wait::Suspect(waiting.clone()),
            (Timer::HaltTimeout, Role::Halting { waiting, .. }) => Wait::Suspect(waiting.clone()),
            (Timer::CoordinatorTimeout, _) => Wait::Outcome,
            _ => Wait::Pace,
        }
    }
    /// What this process saves: its promise, its members and whether it has joined.
    pub fn storage(&self) -> Storage {
        Storage {
            promised: self.promised,
            members: self.members.clone(),
            joined: self.joined(),
            starts: self.starts,
        }
    }
}

/// What a timer waits for (see [`State::wait`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// A failure detector: firing presumes these peers down (unsafe if one is up).
    Suspect(Members),
    /// A retry of a request to these peers: firing presumes nothing, it only asks again.
    Retry(Members),
    /// The outcome of an election run by others: firing starts a new election (always safe).
    Outcome,
    /// Pacing (the heartbeat period): not a wait at all.
    Pace,
}

/// What survives a crash: the epoch promise (so epochs never go back), the members, whether
/// this process ever heard from the group, and the number of its last start (so the election
/// tags of a new start are new: see [`Tag`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Storage {
    pub promised: Epoch,
    pub members: Members,
    pub joined: bool,
    /// Absent from a file saved before tags existed: counted from 0 then.
    #[serde(default)]
    pub starts: u64,
}

/// How a process starts (when it has no saved storage).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Start {
    /// Knows every member (including itself) and holds an election. A process given only itself
    /// wins at once: the exercise's "start as the first coordinator".
    Full { members: Members },
    /// Knows only `contact` and learns the rest from its heartbeat reply.
    Join { contact: Id },
}

/// Durations of the timers. The checker ignores them (its timers fire by the timing rule); the
/// node uses them as real deadlines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Durations {
    /// Period between a follower's heartbeats.
    pub heartbeat: Duration,
    /// How long to wait for any reply (heartbeat ack, answer, halt ack) before presuming the
    /// peer down. Must exceed the worst round trip (request + processing + reply).
    pub timeout: Duration,
}

impl Durations {
    /// How long to wait for a COORDINATOR after an answer or a halt: the higher process may have
    /// to wait one timeout for its own election and two for its halt phase (it asks twice).
    pub fn coordinator_wait(&self) -> Duration {
        self.timeout * 4
    }
    /// How often a coordinator announces itself again to every member: rarely, since
    /// followers hear from it at every heartbeat anyway; it reaches those that do not.
    pub fn announce_period(&self) -> Duration {
        self.heartbeat * 10
    }

    /// The failover bound: how long after the coordinator is killed (and nothing else fails)
    /// every survivor names the next highest, for messages that take `delay` one way
    /// (processing included). Detection takes at most `heartbeat + timeout + delay` (the last
    /// reply arrives, the next heartbeat leaves a period later and times out); the highest
    /// survivor's election adds `timeout` (it asks only the dead coordinator); the halt round
    /// trip and the announcement add `3 × delay` (docs/src/failover.md). The launcher,
    /// the node's status, the tests and the benchmark all take it from here.
    pub fn failover_bound(&self, delay: Duration) -> Duration {
        self.heartbeat + self.timeout * 2 + delay * 4
    }

    /// After a graceful stop the members hear RESIGN and elect at once: the election's
    /// `timeout` and four one-way delays, no detection.
    pub fn resign_bound(&self, delay: Duration) -> Duration {
        self.timeout + delay * 4
    }

    /// After a second crash (the next highest, during its election): a survivor it answered
    /// or halted waits [`Durations::coordinator_wait`] for its announcement, then elects
    /// (`timeout`) and halts (`3 × delay` with the announcement).
    pub fn double_crash_bound(&self, delay: Duration) -> Duration {
        self.coordinator_wait() + self.timeout + delay * 3
    }
}

impl Default for Durations {
    fn default() -> Self {
        Durations {
            heartbeat: Duration::from_millis(500),
            timeout: Duration::from_millis(1500),
        }
    }
}

/// The Bully actor: one process's configuration. The handlers below are the protocol.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Bully {
    pub start: Start,
    pub timing: Durations,
    /// [`Variant::Correct`] except in the mutation tests.
    pub variant: Variant,
}

impl Bully {
    pub fn new(start: Start, timing: Durations) -> Self {
        Bully {
            start,
            timing,
            variant: Variant::Correct,
        }
    }

    /// Whether `a` outranks `b`: higher ID wins.
    pub(crate) fn outranks(&self, a: Id, b: Id) -> bool {
        self.variant.outranks(a, b)
    }

    fn above(&self, me: Id, members: &Members) -> Members {
        members.iter().filter(|&m| self.outranks(m, me)).collect()
    }

    fn below(&self, me: Id, members: &Members) -> Members {
        members.iter().filter(|&m| self.outranks(me, m)).collect()
    }

    fn after(&self, d: Duration) -> Range<Duration> {
        d..d
    }

    fn cancel_all(o: &mut Out<Self>) {
        for t in Timer::ALL {
            o.cancel_timer(t);
        }
    }

    /// Starts a new election (with a new tag: answers to earlier ones no longer count). Asks
    /// every higher member; with none, becomes a candidate at once.
    fn start_election(&self, me: Id, s: &mut State, o: &mut Out<Self>) {
        Self::cancel_all(o);
        s.tag = s.tag.next();
        let higher = self.above(me, &s.members);
        if higher.is_empty() {
            return self.become_candidate(me, s, o);
        }
        o.broadcast(higher.as_slice(), &Msg::Election { tag: s.tag });
        if !self.variant.waits_for_answers() {
            return self.become_candidate(me, s, o);
        }
        s.role = Role::Electing { waiting: higher };
        o.set_timer(Timer::ElectionTimeout, self.after(self.timing.timeout));
    }

    /// Proposes a fresh epoch and halts every lower member.
    fn become_candidate(&self, me: Id, s: &mut State, o: &mut Out<Self>) {
        Self::cancel_all(o);
        let epoch = Epoch {
            round: self.variant.proposed_round(s.promised),
            leader: me,
        };
        s.promised = s.promised.max(epoch);
        let lower = self.below(me, &s.members);
        if lower.is_empty() || !self.variant.halts_before_office() {
            return self.take_office(me, epoch, s, o);
        }
        o.broadcast(lower.as_slice(), &Msg::Halt { epoch });
        s.role = Role::Halting {
            epoch,
            waiting: lower,
            asked_again: false,
        };
        o.set_timer(Timer::HaltTimeout, self.after(self.timing.timeout));
    }

    fn take_office(&self, me: Id, epoch: Epoch, s: &mut State, o: &mut Out<Self>) {
        Self::cancel_all(o);
        s.role = Role::Coordinator { epoch };
        if self.variant.announces() {
            self.announce(me, epoch, s, o);
        }
    }

    /// Tells every other member that `me` leads in `epoch`, and when to do it again.
    fn announce(&self, me: Id, epoch: Epoch, s: &State, o: &mut Out<Self>) {
        let msg = Msg::Coordinator {
            epoch,
            members: s.members.clone(),
        };
        let others: Vec<Id> = s.members.iter().filter(|&m| m != me).collect();
        o.broadcast(&others, &msg);
        o.set_timer(Timer::Announce, self.after(self.timing.announce_period()));
    }

    fn wait_for_coordinator(&self, s: &mut State, o: &mut Out<Self>) {
        Self::cancel_all(o);
        s.role = Role::Waiting;
        o.set_timer(
            Timer::CoordinatorTimeout,
            self.after(self.timing.coordinator_wait()),
        );
    }

    /// A higher candidate halted us: wait for its announcement. A joiner stays a joiner, with
    /// the candidate as its contact: a HALT carries no members, and a process that joins
    /// without the group's member list may crown itself beside it if the candidate dies
    /// before announcing (when a crash cuts the contact's reply short:
    /// `a_halted_joiner_waits_for_the_members`). The announcement, or the contact's reply to
    /// a retried heartbeat, brings the members.
    fn await_candidate(&self, candidate: Id, s: &mut State, o: &mut Out<Self>) {
        if s.joined() {
            self.wait_for_coordinator(s, o);
        } else {
            Self::cancel_all(o);
            s.role = Role::Joining { contact: candidate };
            o.set_timer(Timer::HeartbeatTimeout, self.after(self.timing.timeout));
        }
    }

    /// Follows the term of `epoch`, with a new tag: replies to heartbeats of an earlier term no
    /// longer count.
    fn follow(&self, epoch: Epoch, s: &mut State, o: &mut Out<Self>) {
        Self::cancel_all(o);
        s.tag = s.tag.next();
        s.promised = s.promised.max(epoch);
        s.role = Role::Follower { epoch };
        o.set_timer(Timer::Heartbeat, self.after(self.timing.heartbeat));
    }

    /// A lower process is electing (or, not knowing us, trying to halt us): answer, and take
    /// over unless we are already coordinator or already running an election ourselves.
    /// `tag` names the asker's election (a HALT names none: its answer is then stale, but the
    /// asker learns who we are from it and the COORDINATOR that follows).
    fn on_lower_election(&self, me: Id, s: &mut State, src: Id, tag: Tag, o: &mut Out<Self>) {
        if !self.variant.answers_elections() {
            return;
        }
        // A coordinator's answer is its COORDINATOR announcement: it proves it is alive and
        // higher, and tells the asker whom to follow, in one message. Everyone else, a
        // candidate halting the asker too, answers: one answer per election asked. (A
        // candidate still waiting for the asker's acknowledgement asks again at its halt
        // timeout; answering each ELECTION with the HALT instead filled the channels with
        // copies of one HALT.)
        let answer = match &s.role {
            Role::Coordinator { epoch } if self.variant.announces() => Msg::Coordinator {
                epoch: *epoch,
                members: s.members.clone(),
            },
            _ => Msg::Answer {
                tag,
                members: s.members.clone(),
            },
        };
        o.send(src, answer);
        if let Role::Joining { contact } = s.role {
            if contact != src {
                // A joiner whose contact is silent (it may be down for good) has just heard
                // from a member of the group: ask that one for the members instead.
                s.role = Role::Joining { contact: src };
                o.send(src, Msg::Heartbeat { tag: s.tag });
                o.set_timer(Timer::HeartbeatTimeout, self.after(self.timing.timeout));
            }
        }
        match s.role {
            Role::Coordinator { .. } => {}
            // Already in an election (waiting counts: a higher process took it over).
            Role::Electing { .. } | Role::Halting { .. } | Role::Joining { .. } | Role::Waiting => {
            }
            Role::Follower { .. } => self.start_election(me, s, o),
        }
    }

    /// Members learned while halting: halt new lower ones too; a new higher one means we may not
    /// be the highest after all, so ask it first.
    fn learn_while_halting(
        &self,
        me: Id,
        s: &mut State,
        learned: &Members,
        o: &mut Out<Self>,
    ) -> bool {
        if learned.iter().any(|m| self.outranks(m, me)) {
            self.start_election(me, s, o);
            return true;
        }
        if let Role::Halting { epoch, waiting, .. } = &mut s.role {
            for m in learned.iter() {
                waiting.insert(m);
                o.send(m, Msg::Halt { epoch: *epoch });
            }
        }
        false
    }

    /// Adds members; returns the ones that were new.
    fn learn(s: &mut State, members: impl IntoIterator<Item = Id>) -> Members {
        members
            .into_iter()
            .filter(|&m| s.members.insert(m))
            .collect()
    }

    /// Saves `s`'s storage if it changed, as the step's *first* command: a node executes
    /// commands in order, so what the step promises is durable before any of its messages
    /// leaves (raft's rule; a `kill -9` between the two then loses sends, never a promise).
    fn save_if_changed(before: &Storage, s: &State, o: &mut Out<Self>) {
        let after = s.storage();
        if &after != before {
            Self::save_first(after, o);
        }
    }

    fn save_first(storage: Storage, o: &mut Out<Self>) {
        let mut rest = std::mem::take(o);
        o.save(storage);
        o.append(&mut rest);
    }

    /// Graceful shutdown (SIGTERM on a node): a coordinator tells the members so they elect at
    /// once. Not an `Actor` handler because stateright has no "stop" event; the node calls it.
    pub fn on_shutdown(&self, me: Id, s: &State, o: &mut Out<Self>) {
        if let Role::Coordinator { epoch } = s.role {
            let others: Vec<Id> = s.members.iter().filter(|&m| m != me).collect();
            o.broadcast(&others, &Msg::Resign { epoch });
        }
    }
    /// ELECTION: a lower asker is answered (and this process elects); a higher one only taught
    /// us its ID.
    fn on_election(&self, me: Id, s: &mut State, src: Id, tag: Tag, o: &mut Out<Self>) {
        if self.outranks(me, src) {
            self.on_lower_election(me, s, src, tag, o);
        }
    }

    /// ANSWER (OK) to our current election: a higher process takes it over; we wait for its
    /// outcome. An answer to an earlier election is stale: that election is over.
    fn on_answer(&self, me: Id, s: &mut State, src: Id, tag: Tag, o: &mut Out<Self>) {
        match s.role {
            Role::Electing { .. } | Role::Halting { .. }
                if self.outranks(src, me) && tag == s.tag =>
            {
                self.wait_for_coordinator(s, o)
            }
            _ => {}
        }
    }

    /// HALT: from a higher candidate, promise (and acknowledge) or refuse; from a lower one, it
    /// did not know us: we outrank it.
    fn on_halt(&self, me: Id, s: &mut State, src: Id, epoch: Epoch, o: &mut Out<Self>) {
        if !self.outranks(src, me) {
            // A lower candidate that did not know us: we outrank it (unless the halt is
            // stale: then that candidacy is already over).
            if epoch > s.promised {
                self.on_lower_election(me, s, src, Tag::default(), o);
            }
        } else if epoch >= s.promised && epoch.leader == src {
            s.promised = epoch;
            o.send(
                src,
                Msg::HaltAck {
                    epoch,
                    members: s.members.clone(),
                },
            );
            self.await_candidate(src, s, o);
        } else {
            // We promised at least as much already: refuse, so the candidate retries
            // above it. It outranks us all the same, so we stop competing and wait.
            o.send(
                src,
                Msg::HaltNack {
                    promised: s.promised,
                },
            );
            if !matches!(s.role, Role::Waiting) {
                self.await_candidate(src, s, o);
            }
        }
    }

    /// HALT_ACK: one awaited member fewer for the candidacy of `epoch` (taking office, once
    /// none is left, is [`Bully::after_learning`]'s).
    fn on_halt_ack(s: &mut State, src: Id, epoch: Epoch) {
        if let Role::Halting {
            epoch: mine,
            waiting,
            ..
        } = &mut s.role
        {
            if *mine == epoch {
                waiting.remove(src);
            }
        }
    }

    /// HALT_NACK: someone promised a later candidate than ours.
    fn on_halt_nack(&self, me: Id, s: &mut State, promised: Epoch, o: &mut Out<Self>) {
        if let Role::Coordinator { epoch } = s.role {
            if promised > epoch {
                // Someone promised a later candidate than us: our term is over. Elect
                // again; we win with a higher epoch if that candidate is gone.
                s.promised = s.promised.max(promised);
                self.start_election(me, s, o);
            }
        } else if let Role::Halting { .. } = s.role {
            if promised > s.promised {
                s.promised = promised;
                if self.outranks(promised.leader, me) {
                    // A higher process is candidate or coordinator: ask it (and every
                    // higher member) rather than compete; if it waits for our halt
                    // acknowledgement, it asks again at its halt timeout.
                    self.start_election(me, s, o);
                } else {
                    // A lower one held office while we were away: bid above it.
                    self.become_candidate(me, s, o);
                }
            }
        }
    }

    /// COORDINATOR: follow a higher leader at or above our promise; take over from a lower
    /// one; refuse a stale one.
    fn on_coordinator(
        &self,
        me: Id,
        s: &mut State,
        src: Id,
        epoch: Epoch,
        learned: &Members,
        o: &mut Out<Self>,
    ) {
        if epoch.leader != src {
            // Malformed: only the leader itself announces its epoch.
        } else if self.outranks(me, src) {
            // A lower process crowned itself without halting us: take over. (A stale
            // announcement, below what we promised since, is over already.)
            if epoch >= s.promised
                && !matches!(s.role, Role::Electing { .. } | Role::Halting { .. })
            {
                self.start_election(me, s, o);
            } else if let Role::Coordinator { epoch: mine } = s.role {
                // A stale coordinator we never heard of (two groups that joined
                // through different contacts, each with its own coordinator): it
                // cannot know us, so tell it who leads. It follows us, or, if it
                // promised more since, refuses and we elect above it.
                if learned.contains(src) {
                    o.send(
                        src,
                        Msg::Coordinator {
                            epoch: mine,
                            members: s.members.clone(),
                        },
                    );
                }
            }
        } else if epoch >= s.promised || self.variant.follows_below_promise() {
            if s.epoch() != Some(epoch) {
                self.follow(epoch, s, o);
            }
        } else {
            // Stale: we promised a later candidate. Tell the sender, which may still
            // think it leads (that candidate may have died before taking office).
            o.send(
                src,
                Msg::HaltNack {
                    promised: s.promised,
                },
            );
            if matches!(s.role, Role::Electing { .. }) {
                // It proves a higher process is alive: that is an answer.
                self.wait_for_coordinator(s, o);
            }
        }
    }

    /// HEARTBEAT: always answered, with whether we lead, our promise and our members.
    fn on_heartbeat(s: &State, src: Id, tag: Tag, o: &mut Out<Self>) {
        let coordinator = match s.role {
            Role::Coordinator { epoch } => Some(epoch),
            _ => None,
        };
        o.send(
            src,
            Msg::HeartbeatAck {
                tag,
                coordinator,
                promised: s.promised,
                members: s.members.clone(),
            },
        );
    }

    /// HEARTBEAT_ACK to what we ask now: our coordinator still leads (heartbeat again later) or
    /// not (elect); a joiner's contact answered (it has joined: elect).
    fn on_heartbeat_ack(
        &self,
        me: Id,
        s: &mut State,
        src: Id,
        coordinator: Option<Epoch>,
        promised: Epoch,
        o: &mut Out<Self>,
    ) {
        match s.role {
            Role::Follower { epoch } if epoch.leader == src => {
                if coordinator == Some(epoch) {
                    o.cancel_timer(Timer::HeartbeatTimeout);
                    o.set_timer(Timer::Heartbeat, self.after(self.timing.heartbeat));
                } else {
                    // Our coordinator no longer is one: its term is over (never accept
                    // it again) and we elect.
                    s.promised = s.promised.max(promised);
                    self.start_election(me, s, o);
                }
            }
            Role::Joining { contact } if contact == src => {
                // Joined. The group's fence comes with the members: a candidacy the
                // contact promised to may be under way, and its candidate may not know
                // us yet, so never follow a coordinator it is deposing.
                s.promised = s.promised.max(promised);
                self.start_election(me, s, o);
            }
            _ => {}
        }
    }

    /// RESIGN: our coordinator stepped down gracefully: elect at once.
    fn on_resign(&self, me: Id, s: &mut State, src: Id, epoch: Epoch, o: &mut Out<Self>) {
        if s.epoch() == Some(epoch) && epoch.leader == src {
            self.start_election(me, s, o);
        }
    }

    /// The membership follow-up of every message: new members change what some roles must
    /// do. A candidate must halt every lower member before taking office, including those it
    /// just heard of (and takes office once none is awaited); a new higher one means an
    /// elector may not be the highest; a coordinator tells newcomers who leads.
    fn after_learning(&self, me: Id, s: &mut State, src: Id, learned: Members, o: &mut Out<Self>) {
        let mut learned = learned;
        if let Role::Halting { .. } = s.role {
            if !self.learn_while_halting(me, s, &learned, o) {
                if let Role::Halting { epoch, waiting, .. } = &s.role {
                    if waiting.is_empty() {
                        let epoch = *epoch;
                        self.take_office(me, epoch, s, o);
                    }
                }
            }
            learned = Members::default();
        }
        match &s.role {
            Role::Electing { .. } => {
                let higher = self.above(me, &learned);
                if !higher.is_empty() {
                    o.broadcast(higher.as_slice(), &Msg::Election { tag: s.tag });
                    if let Role::Electing { waiting } = &mut s.role {
                        for h in higher.iter() {
                            waiting.insert(h);
                        }
                    }
                }
            }
            Role::Coordinator { .. } if !self.variant.announces() => {}
            Role::Coordinator { epoch } => {
                // Tell newly learned members who leads. A newly learned higher member will
                // take over through its own election (it learns us from this message).
                let epoch = *epoch;
                let msg = Msg::Coordinator {
                    epoch,
                    members: s.members.clone(),
                };
                let to: Vec<Id> = learned.iter().filter(|&m| m != src).collect();
                o.broadcast(&to, &msg);
            }
            _ => {}
        }
    }
}

impl Bully {
    /// Starts process `id`: fresh (`storage` is `None`) or restarted with what it saved.
    ///
    /// `incarnation` is the environment's number for this start (0: none): the node's clock,
    /// the checker's count of the process's starts. The start's number is the larger of it and
    /// the saved one plus one, and it is saved: so a start's tags are new even when its storage
    /// was lost (a node without `--data-dir`, or whose directory is gone) or is an older copy.
    pub fn start(
        &self,
        id: Id,
        storage: &Option<Storage>,
        incarnation: u64,
        o: &mut Out<Self>,
    ) -> State {
        let starts = storage
            .as_ref()
            .map_or(0, |saved| saved.starts)
            .wrapping_add(1)
            .max(incarnation);
        let mut s = State {
            role: Role::Waiting,
            members: Members::new([id]),
            promised: Epoch::none(),
            tag: Tag::first(starts),
            starts,
        };
        let join_contact = match (storage, &self.start) {
            (Some(saved), _) => {
                s.members = saved.members.clone();
                s.members.insert(id);
                if self.variant.restores_promise() {
                    s.promised = saved.promised;
                }
                match &self.start {
                    Start::Join { contact } if !saved.joined => Some(*contact),
                    _ => None,
                }
            }
            (None, Start::Full { members }) => {
                Self::learn(&mut s, members.iter());
                None
            }
            (None, Start::Join { contact }) => {
                s.members.insert(*contact);
                Some(*contact)
            }
        };
        match join_contact {
            Some(contact) => {
                s.role = Role::Joining { contact };
                o.send(contact, Msg::Heartbeat { tag: s.tag });
                o.set_timer(Timer::HeartbeatTimeout, self.after(self.timing.timeout));
            }
            None => self.start_election(id, &mut s, o),
        }
        if storage.as_ref() != Some(&s.storage()) {
            Self::save_first(s.storage(), o);
        }
        s
    }
}

impl Actor for Bully {
    type Msg = Msg;
    type Timer = Timer;
    type State = State;
    type Storage = Storage;
    type Random = ();

    /// A start with no number from the environment: see [`Bully::start`].
    fn on_start(&self, id: Id, storage: &Option<Storage>, o: &mut Out<Self>) -> State {
        self.start(id, storage, 0, o)
    }

    fn on_msg(&self, me: Id, state: &mut Cow<State>, src: Id, msg: Msg, o: &mut Out<Self>) {
        // Work on a copy and write it back only if it changed: an ignored message must leave
        // the state borrowed (stateright treats such a delivery as a no-op).
        let mut s = (**state).clone();
        let before = s.storage();
        // Every message teaches its sender; those with a member list teach it too.
        let mut learned = Self::learn(&mut s, [src]);
        match msg {
            Msg::Election { tag } => self.on_election(me, &mut s, src, tag, o),
            Msg::Answer { tag, members } => {
                learned.extend(Self::learn(&mut s, members.iter()));
                self.on_answer(me, &mut s, src, tag, o);
            }
            Msg::Halt { epoch } => self.on_halt(me, &mut s, src, epoch, o),
            Msg::HaltAck { epoch, members } => {
                learned.extend(Self::learn(&mut s, members.iter()));
                Self::on_halt_ack(&mut s, src, epoch);
            }
            Msg::HaltNack { promised } => {
                // The promised epoch names its candidate: a member we may not have known.
                if promised != Epoch::none() {
                    learned.extend(Self::learn(&mut s, [promised.leader]));
                }
                self.on_halt_nack(me, &mut s, promised, o);
            }
            Msg::Coordinator { epoch, members } => {
                learned.extend(Self::learn(&mut s, members.iter()));
                self.on_coordinator(me, &mut s, src, epoch, &learned, o);
            }
            Msg::Heartbeat { tag } => Self::on_heartbeat(&s, src, tag, o),
            Msg::HeartbeatAck {
                tag,
                coordinator,
                promised,
                members,
            } => {
                learned.extend(Self::learn(&mut s, members.iter()));
                // A reply to a heartbeat of a term we left, or of a join we finished, is
                // stale: only its members count.
                if tag == s.tag {
                    self.on_heartbeat_ack(me, &mut s, src, coordinator, promised, o);
                }
            }
            Msg::Resign { epoch } => self.on_resign(me, &mut s, src, epoch, o),
        }
        self.after_learning(me, &mut s, src, learned, o);
        Self::save_if_changed(&before, &s, o);
        if s != **state {
            *state = Cow::Owned(s);
        }
    }

    fn on_timeout(&self, me: Id, state: &mut Cow<State>, timer: &Timer, o: &mut Out<Self>) {
        let mut s = (**state).clone();
        let before = s.storage();
        match (timer, &s.role) {
            (Timer::Heartbeat, Role::Follower { epoch }) => {
                o.send(epoch.leader, Msg::Heartbeat { tag: s.tag });
                o.set_timer(Timer::HeartbeatTimeout, self.after(self.timing.timeout));
            }
            (Timer::HeartbeatTimeout, Role::Follower { .. })
                if self.variant.heeds_heartbeat_timeouts() =>
            {
                self.start_election(me, &mut s, o);
            }
            (Timer::HeartbeatTimeout, Role::Joining { contact }) => {
                // Never elect without having heard from the group: retry the contact.
                o.send(*contact, Msg::Heartbeat { tag: s.tag });
                o.set_timer(Timer::HeartbeatTimeout, self.after(self.timing.timeout));
            }
            (Timer::ElectionTimeout, Role::Electing { .. }) => self.become_candidate(me, &mut s, o),
            (
                Timer::HaltTimeout,
                Role::Halting {
                    epoch,
                    waiting,
                    asked_again: false,
                },
            ) => {
                // A member that restarted after our HALT lost it, and may since follow an
                // older coordinator: taking office without it would leave two coordinators
                // named. Ask once more; one that is up acknowledges this time.
                let (epoch, waiting) = (*epoch, waiting.clone());
                o.broadcast(waiting.as_slice(), &Msg::Halt { epoch });
                s.role = Role::Halting {
                    epoch,
                    waiting,
                    asked_again: true,
                };
                o.set_timer(Timer::HaltTimeout, self.after(self.timing.timeout));
            }
            (Timer::HaltTimeout, Role::Halting { epoch, .. }) => {
                // Lower members that did not acknowledge twice are down.
                let epoch = *epoch;
                self.take_office(me, epoch, &mut s, o);
            }
            (Timer::CoordinatorTimeout, Role::Waiting) => self.start_election(me, &mut s, o),
            (Timer::Announce, Role::Coordinator { epoch }) if self.variant.announces() => {
                let epoch = *epoch;
                self.announce(me, epoch, &s, o);
            }
            _ => {}
        }
        Self::save_if_changed(&before, &s, o);
        if s != **state {
            *state = Cow::Owned(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_from_the_wire_are_sorted_and_deduplicated() {
        let m: Members = serde_json::from_str("[7, 3, 7, 1]").unwrap();
        assert_eq!(m.as_slice(), &[Id::from(1), Id::from(3), Id::from(7)]);
        assert!(m.contains(Id::from(3)) && !m.contains(Id::from(2)));
        assert_eq!(serde_json::to_string(&m).unwrap(), "[1,3,7]");
    }

    /// A restart numbers itself before anything leaves, so every tag of the new start is
    /// above every tag of the old one (and the number is saved first: persist before send).
    #[test]
    fn tags_of_a_restart_are_new() {
        use crate::step::Event;
        use stateright::actor::Command;
        let (me, other) = (Id::from(0), Id::from(1));
        let b = Bully::new(
            Start::Full {
                members: Members::new([me, other]),
            },
            Durations::default(),
        );
        let sent_tags = |out: &Out<Bully>| -> Vec<Tag> {
            out.iter()
                .filter_map(|c| match c {
                    Command::Send(_, Msg::Election { tag }) => Some(*tag),
                    _ => None,
                })
                .collect()
        };
        let first = b.step(me, None, Event::fresh()).unwrap();
        let s1 = first.after(None);
        assert_eq!(s1.starts, 1);
        assert_eq!(sent_tags(&first.out), [s1.tag]);
        // The same start elects again: a new tag, of the same start.
        let again = b
            .step(
                me,
                Some(&s1),
                Event::Timeout {
                    timer: Timer::ElectionTimeout,
                },
            )
            .unwrap()
            .after(Some(&s1));
        let again = b
            .step(
                me,
                Some(&again),
                Event::Msg {
                    src: other,
                    msg: Msg::HaltNack {
                        promised: Epoch {
                            round: 5,
                            leader: other,
                        },
                    },
                },
            )
            .unwrap();
        let s1b = again.after(None);
        assert_ne!(s1b.tag, s1.tag);
        assert_eq!(sent_tags(&again.out), [s1b.tag]);
        // A restart: a new start number, saved first, and tags above all of the first start's.
        let restart = b
            .step(
                me,
                None,
                Event::Start {
                    storage: Some(s1b.storage()),
                    incarnation: 0,
                },
            )
            .unwrap();
        let s2 = restart.after(None);
        assert_eq!(s2.starts, 2);
        assert!(matches!(&restart.out[0], Command::Save(saved) if saved.starts == 2));
        for old in [s1.tag, s1b.tag] {
            assert!(s2.tag > old, "{:?} after {:?}", s2.tag, old);
        }
        assert_eq!(sent_tags(&restart.out), [s2.tag]);
        // Storage lost, or an older copy: the environment's number keeps the tags new.
        for storage in [None, Some(s1b.storage())] {
            let s3 = b
                .step(
                    me,
                    None,
                    Event::Start {
                        storage,
                        incarnation: 1_000,
                    },
                )
                .unwrap()
                .after(None);
            assert_eq!(s3.starts, 1_000);
            assert!(s3.tag > s2.tag, "{:?} after {:?}", s3.tag, s2.tag);
        }
        // Within one start, the count wraps without touching the start's number.
        let last = Tag::of(7, Tag::COUNT);
        assert_eq!(last.next(), Tag::first(7));
    }

    #[test]
    fn members_beyond_the_inline_size_still_work() {
        let big = Members::new((0..3 * Members::INLINE).rev().map(Id::from));
        assert_eq!(big.len(), 3 * Members::INLINE);
        assert!(big.as_slice().windows(2).all(|w| w[0] < w[1]));
        let mut m = big.clone();
        assert!(m.remove(Id::from(4)) && !m.contains(Id::from(4)));
        assert!(m.insert(Id::from(4)));
        assert_eq!(m, big);
    }
}
