//! Renaming election tags is exact: the checker's system, which calls each process's tag
//! "current" and every other tag "stale" (`MsgCode`), reaches exactly the renamed states of
//! the system that keeps the tags the processes number (`--no-tag-renaming`).
//!
//! The system with real tags is infinite (a tag grows with every election, and elections can
//! repeat), so the two are compared depth by depth: for every depth `d` up to the renamed
//! graph's own depth, renaming the states the real-tag system reaches within `d` steps gives
//! exactly the states the checker reaches within `d` steps, network included. Two broken
//! renamings must fail that comparison: one that calls every tag current, and one that
//! forgets that a restart starts new tags (it compares only the election count).

use bully_model::system::state::{asker, renamed, tag_mut, TagCode, CURRENT};
use bully_model::system::{BullySystem, Channels, Config, Network, StartMode, SysState};
use bully_model::{Msg, Tag};
use stateright::Model;
use std::collections::{HashMap, VecDeque};

/// Renames a message, given its asker's current tag.
type Rename = fn(&Msg, Tag) -> Msg;

/// Broken on purpose: every tag is current (as if answers carried no tag).
fn all_current(msg: &Msg, _asker_tag: Tag) -> Msg {
    renamed(msg, tag_of(msg).unwrap_or(CURRENT))
}

/// Broken on purpose: a tag is current if its election count matches, whatever the start.
fn count_only(msg: &Msg, asker_tag: Tag) -> Msg {
    let count = |t: Tag| t.count();
    match tag_of(msg) {
        Some(t) if count(t) == count(asker_tag) => renamed(msg, t),
        _ => renamed(msg, asker_tag),
    }
}

fn tag_of(msg: &Msg) -> Option<Tag> {
    tag_mut(&mut msg.clone()).copied()
}

/// `s` (real tags) as the checker names it, renaming each message with `rename`.
fn rename_state(s: &SysState, channels: Channels, rename: Rename) -> SysState {
    let mut t = s.clone();
    let mut network = Network::default();
    for e in s.network.iter() {
        let msg = e.msg();
        let mut r = *e;
        if let Some(p) = asker(&msg, e.src(), e.dst()) {
            let asker_tag = s.procs[usize::from(p)].tag.decode();
            r.msg = bully_model::system::MsgCode::encode(&rename(&msg, asker_tag));
        }
        network.add(r, channels);
    }
    t.network = network;
    for p in t.procs.iter_mut() {
        p.tag = TagCode::encode(CURRENT);
    }
    t
}

/// Every state within `depth` steps, with its distance, each mapped by `map` (the smallest
/// distance among states mapped to the same one).
fn within(
    model: &BullySystem,
    depth: usize,
    map: impl Fn(&SysState) -> SysState,
) -> HashMap<SysState, usize> {
    let mut seen: HashMap<SysState, usize> = HashMap::new();
    let mut queue = VecDeque::new();
    for s in model.init_states() {
        if !seen.contains_key(&s) {
            seen.insert(s.clone(), 0);
            queue.push_back((s, 0));
        }
    }
    let mut actions = Vec::new();
    while let Some((s, d)) = queue.pop_front() {
        if d == depth {
            continue;
        }
        model.actions(&s, &mut actions);
        for a in actions.drain(..) {
            if let Some(next) = model.next_state(&s, a) {
                if model.within_boundary(&next) && !seen.contains_key(&next) {
                    seen.insert(next.clone(), d + 1);
                    queue.push_back((next, d + 1));
                }
            }
        }
    }
    let mut mapped: HashMap<SysState, usize> = HashMap::new();
    for (s, d) in seen {
        let m = map(&s);
        let e = mapped.entry(m).or_insert(d);
        *e = (*e).min(d);
    }
    mapped
}

/// The renamed graph's depth (it is finite).
fn depth_of(model: &BullySystem) -> usize {
    within(model, usize::MAX, |s| s.clone())
        .into_values()
        .max()
        .unwrap_or(0)
}

/// Whether renaming the real-tag system with `rename` gives the checker's states, depth by
/// depth; the first difference otherwise.
fn compare(cfg: &Config, rename: Rename) -> Result<usize, String> {
    let renamed_model = cfg.clone().into_model();
    let real = cfg.clone().tag_renaming(false).into_model();
    let depth = depth_of(&renamed_model);
    let channels = cfg.effective_channels();
    let checker = within(&renamed_model, depth, |s| s.clone());
    let from_real = within(&real, depth, |s| rename_state(s, channels, rename));
    if let Some((s, d)) = from_real.iter().find(|(s, d)| checker.get(*s) != Some(*d)) {
        return Err(format!(
            "the real-tag system reaches, renamed, in {d} steps a state the checker reaches in {:?}: {s:?}",
            checker.get(s)
        ));
    }
    if let Some((s, d)) = checker.iter().find(|(s, _)| !from_real.contains_key(*s)) {
        return Err(format!(
            "the checker reaches in {d} steps a state the real-tag system does not: {s:?}"
        ));
    }
    Ok(checker.len())
}

fn assert_exact(cfg: Config) {
    match compare(&cfg, renamed) {
        Ok(n) => println!("{cfg}: {n} states, the same renamed at every depth"),
        Err(why) => panic!("{cfg}: the renaming is not exact: {why}"),
    }
}

#[test]
fn exact_for_three_processes_full_start() {
    assert_exact(Config::new(3));
}

#[test]
fn exact_for_three_processes_join_start() {
    assert_exact(Config::new(3).start(StartMode::Join));
}

#[test]
fn exact_for_more_faults() {
    assert_exact(Config::new(3).crashes(2).recoveries(1));
    assert_exact(Config::new(2).crashes(2).recoveries(2));
}

/// A recovery that lost its storage starts from tag count 1 again: only the start number the
/// environment gives it (the node's clock) keeps its tags new, as the renaming assumes.
#[test]
fn exact_when_recoveries_lose_their_storage() {
    assert_exact(Config::new(3).lose_storage(true));
    assert_exact(Config::new(2).crashes(2).recoveries(2).lose_storage(true));
}

#[test]
fn exact_with_unordered_channels() {
    assert_exact(Config::new(3).channels(Channels::Unordered));
}

#[test]
fn a_broken_renaming_is_caught() {
    // A restart is what tells the two broken ones apart from the real one (`count_only`),
    // and a late answer (`all_current`): both happen with two crashes and two recoveries.
    let cfg = Config::new(2).crashes(2).recoveries(2);
    for (name, rename) in [
        ("every tag current", all_current as Rename),
        ("election count only", count_only as Rename),
    ] {
        let why = compare(&cfg, rename).expect_err(name);
        println!("{name}: rejected: {why}");
    }
}
