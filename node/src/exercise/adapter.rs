//! The mapping between the exercise's request/reply pairs and the model's messages.
//!
//! No protocol decision is made here: every function translates one frame into one model
//! message (or nothing) or back, and the model's [`Bully`](bully_model::Bully) handler decides
//! what to do with it. Where a plain exercise peer (a Python node) cannot supply a field the
//! model's message has, the functions below fill it, and `node/PROTOCOL.md` ("Exercise wire")
//! documents each choice and what it costs.
//!
//! | model message (from the node) | exercise frame |
//! |---|---|
//! | `Election{tag}` | request `{'type': 'election', 'origin': me}` (a plain peer's `election_ok` reply answers that tag) |
//! | `Coordinator{epoch, members}` | request `{'type': 'election_won', 'winner': me}` |
//! | `Heartbeat{tag}` | request `{'type': 'heartbeat', 'origin': me}` (a plain peer's `ack` reply answers that tag) |
//! | `Halt`, `HaltAck`, `HaltNack`, `Resign`, `Answer`, `HeartbeatAck` not sent as a reply | request `{'type': 'heartbeat', 'origin': me}` carrying the message under `bully`, to a Rust node or a peer not heard from yet; to a peer known to be a plain exercise node, nothing: the transport drops it and counts `no_exercise_equivalent` ([`has_plain_meaning`]) |
//! | the first message the handler sends back to a requester | the reply: `election_ok` to `election` / `election_won`, `ack` to `heartbeat` |
//!
//! Every frame a Rust node sends also carries the model message itself under the key `bully`
//! (`None` when its handler had nothing to say), so two Rust nodes exchange exactly the model's
//! messages — epochs, the halt phase and all — while a Python node sees only the keys it knows.

use super::codec::{Ext, Frame, Kind};
use crate::wire;
use bully_model::{Epoch, Members, Msg, State, Tag};

/// The request type that carries `msg`: the exercise type with the same meaning, or
/// `heartbeat` for the messages the exercise lacks (they ride under `bully`; a plain peer that
/// got one anyway, before the node knew it was plain, just acks it).
pub fn request_kind(msg: &Msg) -> Kind {
    match msg {
        Msg::Election { .. } => Kind::Election,
        Msg::Coordinator { .. } => Kind::ElectionWon,
        _ => Kind::Heartbeat,
    }
}

/// Whether a plain exercise peer understands `msg` as a request. The others mean nothing to it,
/// so the transport does not send them to a peer known to be plain (it counts them as
/// `no_exercise_equivalent`), as node/PROTOCOL.md's mapping says.
pub fn has_plain_meaning(msg: &Msg) -> bool {
    matches!(
        msg,
        Msg::Election { .. } | Msg::Coordinator { .. } | Msg::Heartbeat { .. }
    )
}

/// The request frame that carries `msg` from `me`.
pub fn request(me: u64, msg: &Msg) -> Frame {
    Frame {
        kind: request_kind(msg),
        sender: Some(me),
        processes: Vec::new(),
        ext: Ext::Msg(msg.clone()),
        queued_ms: None,
        sent: None,
    }
}

/// The reply type a request of type `req` gets.
pub fn reply_kind(req: Kind) -> Kind {
    match req {
        Kind::Heartbeat => Kind::Ack,
        _ => Kind::ElectionOk,
    }
}

/// The reply to a request of type `req`: `msg` is the first message the handler sent back to
/// the requester while handling it, `None` if it sent none (the neutral reply: the REP socket
/// must answer every request exactly once). `members` fill an `ack`'s `processes`.
pub fn reply(me: u64, req: Kind, msg: Option<&Msg>, members: &Members) -> Frame {
    let kind = reply_kind(req);
    let processes = match (kind, msg) {
        (Kind::Ack, Some(Msg::HeartbeatAck { members, .. })) => ids(members),
        (Kind::Ack, _) => ids(members),
        _ => Vec::new(),
    };
    Frame {
        kind,
        sender: (kind == Kind::ElectionOk).then_some(me),
        processes,
        ext: msg.map_or(Ext::Empty, |m| Ext::Msg(m.clone())),
        queued_ms: None,
        sent: None,
    }
}

fn ids(m: &Members) -> Vec<u64> {
    m.iter().map(wire::num).collect()
}

/// What a request means to the model, with its sender.
pub fn request_msg(frame: &Frame, state: Option<&State>) -> Option<(u64, Msg)> {
    let sender = frame.sender?;
    if let Ext::Msg(m) = &frame.ext {
        return Some((sender, m.clone()));
    }
    let msg = match frame.kind {
        // A plain peer's election names no tag: our answer goes back as the reply to this
        // very request, so the tag is never read.
        Kind::Election => Msg::Election {
            tag: Tag::default(),
        },
        Kind::Heartbeat => Msg::Heartbeat {
            tag: Tag::default(),
        },
        Kind::ElectionWon => Msg::Coordinator {
            // Python nodes have no epochs: the model says what such an announcement is worth.
            epoch: State::unfenced_coordinator_epoch(state, wire::id(sender)),
            members: Members::new([wire::id(sender)]),
        },
        Kind::ElectionOk | Kind::Ack => return None,
    };
    Some((sender, msg))
}

/// Why a reply was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyError {
    /// A reply of the wrong type for the request (`ack` to an `election`, a request type...).
    Unexpected,
}

/// What the reply `frame` from `peer` to our request carrying `sent` means to the model:
/// the message it carries (a Rust peer), or for a plain peer an `Answer` (its `election_ok` to
/// our `election`) or a `HeartbeatAck` (its `ack` to our heartbeat); nothing otherwise.
pub fn reply_msg(
    peer: u64,
    sent: &Msg,
    frame: &Frame,
    state: Option<&State>,
) -> Result<Option<Msg>, ReplyError> {
    if frame.kind != reply_kind(request_kind(sent)) {
        return Err(ReplyError::Unexpected);
    }
    Ok(match &frame.ext {
        Ext::Msg(m) => Some(m.clone()),
        Ext::Empty => None,
        Ext::Plain => match (sent, frame.kind) {
            // The reply to this very request: it answers the election the request named.
            (Msg::Election { tag }, Kind::ElectionOk) => Some(Msg::Answer {
                tag: *tag,
                members: Members::default(),
            }),
            (Msg::Heartbeat { tag }, Kind::Ack) => {
                Some(plain_ack(peer, &frame.processes, state, *tag))
            }
            _ => None,
        },
    })
}

/// A plain peer's `ack` to our heartbeat tagged `tag` (the reply to this very request) as the
/// model's `HeartbeatAck`: the term it confirms is the model's rule
/// ([`State::unfenced_ack_term`]); with none it names no coordinator and no promise (a joiner
/// only needs the members).
pub fn plain_ack(peer: u64, processes: &[u64], state: Option<&State>, tag: Tag) -> Msg {
    let leader = wire::id(peer);
    let followed = State::unfenced_ack_term(state, leader);
    let mut members: Members = processes.iter().map(|&p| wire::id(p)).collect();
    members.insert(leader);
    Msg::HeartbeatAck {
        tag,
        coordinator: followed,
        promised: followed.unwrap_or_else(Epoch::none),
        members,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bully_model::Role;

    fn m(ids: &[u64]) -> Members {
        ids.iter().map(|&i| wire::id(i)).collect()
    }

    fn follower(leader: u64, round: u32) -> State {
        let epoch = Epoch {
            round,
            leader: wire::id(leader),
        };
        State {
            role: Role::Follower { epoch },
            members: m(&[5001, leader]),
            promised: epoch,
            tag: Tag::first(1),
            starts: 1,
        }
    }

    #[test]
    fn requests_use_only_exercise_types() {
        let e = Epoch {
            round: 1,
            leader: wire::id(5),
        };
        let e1 = Msg::Election { tag: Tag::first(1) };
        assert_eq!(request(5, &e1).kind, Kind::Election);
        let c = Msg::Coordinator {
            epoch: e,
            members: m(&[5]),
        };
        assert_eq!(request(5, &c).kind, Kind::ElectionWon);
        assert_eq!(request(5, &c).sender, Some(5));
        for msg in [
            Msg::Heartbeat { tag: Tag::first(1) },
            Msg::Halt { epoch: e },
            Msg::Resign { epoch: e },
        ] {
            assert_eq!(request(5, &msg).kind, Kind::Heartbeat);
        }
    }

    #[test]
    fn plain_requests_map_to_model_messages() {
        let st = follower(5003, 4);
        let f = Frame::new(Kind::Election, Some(5001));
        let untagged = Msg::Election {
            tag: Tag::default(),
        };
        assert_eq!(request_msg(&f, Some(&st)), Some((5001, untagged)));
        let f = Frame::new(Kind::Heartbeat, Some(5001));
        let untagged = Msg::Heartbeat {
            tag: Tag::default(),
        };
        assert_eq!(request_msg(&f, Some(&st)), Some((5001, untagged)));
        // A new winner: one round above the promise. The followed winner again: same epoch.
        let f = Frame::new(Kind::ElectionWon, Some(5004));
        let Some((5004, Msg::Coordinator { epoch, .. })) = request_msg(&f, Some(&st)) else {
            panic!()
        };
        assert_eq!((epoch.round, wire::num(epoch.leader)), (5, 5004));
        let f = Frame::new(Kind::ElectionWon, Some(5003));
        let Some((_, Msg::Coordinator { epoch, .. })) = request_msg(&f, Some(&st)) else {
            panic!()
        };
        assert_eq!(Some(epoch), st.epoch());
        // Replies are not requests.
        assert_eq!(request_msg(&Frame::new(Kind::Ack, None), Some(&st)), None);
    }

    #[test]
    fn plain_replies_map_to_answers_and_acks() {
        let st = follower(5003, 4);
        let ok = Frame::new(Kind::ElectionOk, Some(5003));
        let tag = Tag::first(1);
        assert_eq!(
            reply_msg(5003, &Msg::Election { tag }, &ok, Some(&st)),
            Ok(Some(Msg::Answer {
                tag,
                members: Members::default()
            }))
        );
        let mut ack = Frame::new(Kind::Ack, None);
        ack.processes = vec![5001, 5002];
        let heartbeat = Msg::Heartbeat { tag };
        let Ok(Some(Msg::HeartbeatAck {
            tag: echoed,
            coordinator,
            members,
            ..
        })) = reply_msg(5003, &heartbeat, &ack, Some(&st))
        else {
            panic!()
        };
        assert_eq!(echoed, tag);
        assert_eq!(coordinator, st.epoch());
        assert_eq!(members, m(&[5001, 5002, 5003]));
        // From someone we do not follow: no coordinator claimed.
        let Ok(Some(Msg::HeartbeatAck { coordinator, .. })) =
            reply_msg(5002, &heartbeat, &ack, Some(&st))
        else {
            panic!()
        };
        assert_eq!(coordinator, None);
        // election_ok to an announcement, ack to a halt: nothing to deliver.
        let c = Msg::Coordinator {
            epoch: st.promised,
            members: m(&[5003]),
        };
        assert_eq!(reply_msg(5001, &c, &ok, Some(&st)), Ok(None));
        let h = Msg::Halt { epoch: st.promised };
        assert_eq!(reply_msg(5001, &h, &ack, Some(&st)), Ok(None));
        // Mismatched types are errors.
        assert_eq!(
            reply_msg(5003, &Msg::Election { tag }, &ack, Some(&st)),
            Err(ReplyError::Unexpected)
        );
    }

    #[test]
    fn replies_carry_the_handlers_message_or_a_neutral_one() {
        let members = m(&[5001, 5002]);
        let r = reply(5002, Kind::Heartbeat, None, &members);
        assert_eq!(
            (r.kind, &r.processes, &r.ext),
            (Kind::Ack, &vec![5001, 5002], &Ext::Empty)
        );
        let r = reply(5002, Kind::ElectionWon, None, &members);
        assert_eq!((r.kind, r.sender), (Kind::ElectionOk, Some(5002)));
        let a = Msg::Answer {
            tag: Tag::first(1),
            members: members.clone(),
        };
        let r = reply(5002, Kind::Election, Some(&a), &members);
        assert_eq!((r.kind, r.ext), (Kind::ElectionOk, Ext::Msg(a)));
    }
}
