//! The dead-message reduction is exact: the checker may discard a message its receiver ignores
//! forever (`Bully::ignores_forever`) without losing or adding any behaviour.
//!
//! Two checks over the *unreduced* graph, each with a broken rule it must reject:
//! * **Induction.** In every reachable state, delivering a message the rule calls dead changes
//!   nothing but the network, and after any other step that message, if still in flight to a
//!   live process, is still dead. Together: a no-op in every future state.
//! * **Same states.** With the rule applied after each step, the reachable states, with the
//!   network left out, are exactly those of the unreduced graph, and the checker's reduced
//!   model reaches exactly the states this test reaches by applying the rule itself. (In a
//!   bounded run, fewer messages count against the bound: there it must see at least as much.)

use bully_model::system::{
    BullySystem, Channels, Config, Env, NetworkKind, StartMode, SysAction, SysState,
};
use bully_model::{Bully, Id, Msg, State};
use stateright::Model;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};

type Rule = fn(&Bully, Id, &State, Id, &Msg) -> bool;

fn real_rule(b: &Bully, me: Id, s: &State, src: Id, m: &Msg) -> bool {
    b.ignores_forever(me, s, src, m)
}

/// Broken on purpose: a stale ANSWER is ignored *now*, but counts again in a later election.
fn answers_are_dead(b: &Bully, me: Id, s: &State, src: Id, m: &Msg) -> bool {
    matches!(m, Msg::Answer { .. }) || b.ignores_forever(me, s, src, m)
}

/// Broken on purpose: a HALT_ACK for the candidacy in progress is not dead.
fn halt_acks_are_dead(b: &Bully, me: Id, s: &State, src: Id, m: &Msg) -> bool {
    matches!(m, Msg::HaltAck { .. }) || b.ignores_forever(me, s, src, m)
}

fn in_flight(s: &SysState) -> Vec<Env> {
    s.network
        .deliverable(Channels::Unordered)
        .copied()
        .collect()
}

fn without(s: &SysState, e: &Env) -> SysState {
    let mut t = s.clone();
    assert!(t.network.remove(e), "in flight");
    t
}

fn is_dead(cfg: &Config, rule: Rule, s: &SysState, e: &Env) -> bool {
    let i = e.dst as usize;
    !s.is_crashed(i) && rule(&cfg.actor(i), e.dst(), &s.state(i), e.src(), &e.msg())
}

fn discard(cfg: &Config, rule: Rule, s: &mut SysState) {
    let snapshot = s.clone();
    s.network.retain(|e| !is_dead(cfg, rule, &snapshot, e));
}

fn fingerprint<T: Hash>(t: &T) -> u64 {
    let mut h = DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

/// What the properties see: everything but the network.
fn without_network(s: &SysState) -> u64 {
    fingerprint(&(&s.procs, &s.ghost))
}

/// The reachable graph, as fingerprints of its states and of their network-free parts.
struct Graph {
    states: HashSet<u64>,
    without_network: HashSet<u64>,
}

/// Explores breadth first, applying `discard_by` after each step if given, and checking the
/// induction for `induction` in every state if given (stopping at the first failure).
fn explore(
    model: &BullySystem,
    discard_by: Option<Rule>,
    induction: Option<Rule>,
) -> Result<Graph, String> {
    let mut g = Graph {
        states: HashSet::new(),
        without_network: HashSet::new(),
    };
    let mut queue = VecDeque::new();
    for s in model.init_states() {
        if g.states.insert(fingerprint(&s)) {
            queue.push_back(s);
        }
    }
    let mut actions = Vec::new();
    while let Some(s) = queue.pop_front() {
        g.without_network.insert(without_network(&s));
        model.actions(&s, &mut actions);
        if let Some(rule) = induction {
            induction_step(model, rule, &s, &actions)?;
        }
        for a in actions.drain(..) {
            if let Some(mut next) = model.next_state(&s, a) {
                if let Some(rule) = discard_by {
                    discard(&model.cfg, rule, &mut next);
                }
                if model.within_boundary(&next) && g.states.insert(fingerprint(&next)) {
                    queue.push_back(next);
                }
            }
        }
    }
    Ok(g)
}

/// The induction at one state `s` of the unreduced graph, whose enabled steps are `actions`.
fn induction_step(
    model: &BullySystem,
    rule: Rule,
    s: &SysState,
    actions: &[SysAction],
) -> Result<(), String> {
    let cfg = &model.cfg;
    let dead: Vec<_> = in_flight(s)
        .into_iter()
        .filter(|e| is_dead(cfg, rule, s, e))
        .collect();
    for e in &dead {
        let deliver = SysAction::Deliver(*e);
        let next = model
            .next_state(s, deliver)
            .expect("a delivery always steps");
        if next != without(s, e) {
            return Err(format!("delivering dead {e:?} changed something in {s:?}"));
        }
    }
    if dead.is_empty() {
        return Ok(());
    }
    for a in actions {
        let Some(next) = model.next_state(s, *a) else {
            continue;
        };
        for e in &dead {
            let delivered = *a == SysAction::Deliver(*e);
            let still = next.network.contains(e);
            if !delivered
                && still
                && !next.is_crashed(e.dst as usize)
                && !is_dead(cfg, rule, &next, e)
            {
                return Err(format!("{e:?} came back to life after {a:?} from {s:?}"));
            }
        }
    }
    Ok(())
}

fn assert_exact(cfg: Config) {
    let full = explore(
        &cfg.clone().reduction(false).into_model(),
        None,
        Some(real_rule),
    )
    .unwrap_or_else(|why| panic!("{cfg}: the rule is wrong: {why}"));
    let by_rule = explore(
        &cfg.clone().reduction(false).into_model(),
        Some(real_rule),
        None,
    )
    .unwrap();
    let reduced = explore(&cfg.clone().into_model(), None, None).unwrap();
    assert!(
        reduced.states.len() < full.states.len(),
        "{cfg}: nothing was reduced ({} states)",
        full.states.len()
    );
    assert!(
        reduced.states == by_rule.states,
        "{cfg}: the checker's reduction differs from the rule"
    );
    if cfg.is_bounded() {
        // Fewer messages count against `max_in_flight`: a bounded run sees at least as far.
        assert!(
            full.without_network.is_subset(&reduced.without_network),
            "{cfg}: the reduction lost a network-free state"
        );
    } else {
        // With unordered channels `s − dead` is reachable from `s` by delivering the dead
        // messages, so the reduced graph is a subgraph. With FIFO channels a dead message
        // behind a live one cannot be delivered yet, so its removal gives a state the full
        // graph never holds (with the same processes); only the network-free states compare.
        if cfg.effective_channels() == Channels::Unordered {
            assert!(
                reduced.states.is_subset(&full.states),
                "{cfg}: the reduction reached a state the full graph does not"
            );
        }
        assert!(
            reduced.without_network == full.without_network,
            "{cfg}: the reduction lost or added a network-free state"
        );
    }
    println!(
        "{cfg}: {} states unreduced, {} reduced ({:.1}x), {} network-free, {}",
        full.states.len(),
        reduced.states.len(),
        full.states.len() as f64 / reduced.states.len() as f64,
        full.without_network.len(),
        if cfg.is_bounded() {
            "all covered"
        } else {
            "all equal"
        }
    );
}

#[test]
fn exact_for_three_processes_full_start() {
    assert_exact(Config::new(3));
}

#[test]
fn exact_with_unordered_channels() {
    assert_exact(Config::new(3).channels(Channels::Unordered));
}

#[test]
fn exact_for_three_processes_join_start() {
    assert_exact(Config::new(3).start(StartMode::Join));
}

#[test]
fn exact_for_two_processes_with_more_faults() {
    assert_exact(Config::new(2).crashes(2).recoveries(2));
    assert_exact(
        Config::new(2)
            .crashes(2)
            .recoveries(2)
            .start(StartMode::Join),
    );
}

// Bounded runs without Bully's assumptions: the rule must hold there too.
#[test]
fn exact_with_async_timing() {
    // Timeouts at any moment make even two processes huge: a tighter bound keeps it small.
    let mut cfg = Config::new(2)
        .crashes(1)
        .recoveries(0)
        .timing(bully_model::system::Timing::Async);
    cfg.max_in_flight = 3;
    cfg.max_round = 3;
    assert_exact(cfg);
}

#[test]
fn exact_on_a_lossy_network() {
    assert_exact(Config::new(2).network(NetworkKind::Lossy));
}

#[test]
fn a_broken_rule_is_caught() {
    for (name, rule) in [
        ("answers are dead", answers_are_dead as Rule),
        ("halt acks are dead", halt_acks_are_dead as Rule),
    ] {
        let cfg = Config::new(3);
        let unreduced = || cfg.clone().reduction(false).into_model();
        let why = match explore(&unreduced(), None, Some(rule)) {
            Ok(_) => panic!("the induction accepted the rule {name:?}"),
            Err(why) => why,
        };
        let full = explore(&unreduced(), None, None).unwrap();
        let broken = explore(&unreduced(), Some(rule), None).unwrap();
        assert!(
            broken.without_network != full.without_network,
            "the rule {name:?} kept every network-free state"
        );
        println!("{name}: {}", why.chars().take(200).collect::<String>());
    }
}
