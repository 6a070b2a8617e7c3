//! One step applied level by level: each level's map of values ([`Mdd::transform_by`]), named
//! by everything it reads, so that the maps and their results are shared across steps.
//!
//! A step's map of one level (the two channels of a pair) reads the step's network effects on
//! that pair, which of the pair's channels a timer needs empty, whether the step needs a
//! message of the pair (and what enabling one reads of the processes: which are crashed), and,
//! for the dead-message reduction, the receivers' states after the step. Nothing else: not the
//! rest of the processes, nor the ghost state. So the same map recurs in many combinations of
//! process states (N=4, join start: 525 k combinations), and many of them hold the same
//! sub-diagrams of networks. Named by a [`LevelMap`], each level's image of a value is
//! computed once per map, and [`Mdd::transform_by`] keeps a map's image of a node across
//! steps and combinations.

use crate::mdd::{LevelFn, Mdd, Node, Value};
use crate::system::{Action, BullySystem, Mask, NetOp, NetOps, Network, Proc, Quiet};
use smallvec::SmallVec;
use std::collections::HashMap;

/// The contents one level (the two channels of a pair) has been seen with; index 0 is empty.
#[derive(Default)]
pub(super) struct Dict {
    pub(super) values: Vec<Network>,
    ids: HashMap<Network, Value, ahash::RandomState>,
}

impl Dict {
    pub(super) fn new() -> Dict {
        let mut d = Dict::default();
        d.intern(Network::default());
        d
    }
    pub(super) fn intern(&mut self, net: Network) -> Value {
        if let Some(&v) = self.ids.get(&net) {
            return v;
        }
        let v = self.values.len() as Value;
        self.values.push(net.clone());
        self.ids.insert(net, v);
        v
    }
}

/// One step, channel by channel.
#[derive(Clone, Copy)]
pub(super) struct LevelStep<'s> {
    pub(super) model: &'s BullySystem,
    /// The processes crashed before the step: all that enabling a message step reads of them
    /// ([`BullySystem::message_actions_given`]).
    pub(super) crashed: Mask,
    /// The processes after it (what the dead-message reduction reads).
    pub(super) procs: &'s [Proc],
    pub(super) action: Action,
    pub(super) ops: &'s NetOps,
    /// The channels a timer needs empty, if any.
    pub(super) quiet: Option<&'s Quiet>,
    /// The level whose content must enable the step (a message step's), if it is guarded so.
    pub(super) guard_level: Option<usize>,
}

/// Everything a step's map of one level reads: equal maps mean equal images of every value.
#[derive(Clone, PartialEq, Eq, Hash)]
struct LevelMap {
    level: usize,
    /// The step's network effects on this pair's channels, in order.
    ops: NetOps,
    /// Whether the timer needs the channel from `a` to `b` empty, and the one back.
    quiet: [bool; 2],
    /// For a step that needs a message of this pair: the step, and the crashed processes.
    guard: Option<(Action, Mask)>,
    /// For each [`NetOp::DiscardDeadTo`] of `ops`: its process after the step ([`BullySystem::apply_op`]
    /// reads no other process).
    dead: Vec<Proc>,
}

/// Everything a step's maps read, all levels at once: equal keys mean equal maps, level by
/// level. One lookup of this names every level's map of a step seen before.
#[derive(Clone, PartialEq, Eq, Hash)]
struct StepKey {
    ops: NetOps,
    quiet: Option<Quiet>,
    /// The level whose content must enable the step, the step, and the crashed processes.
    guard: Option<(usize, Action, Mask)>,
    /// The processes after the step of its [`NetOp::DiscardDeadTo`]s.
    dead: SmallVec<[Proc; 2]>,
}

/// A step's maps: each level's id (None where it keeps its values), and their names from
/// each level down ([`Mdd::transform_by`]).
struct StepMaps {
    ids: Box<[Option<u32>]>,
    names: Box<[u32]>,
}

/// The maps seen so far, their names, and their images of values.
#[derive(Default)]
pub(super) struct LevelMaps {
    ids: HashMap<LevelMap, u32, ahash::RandomState>,
    maps: Vec<LevelMap>,
    /// Each level's images: `(map id, value)` → the value after (None: no such step).
    images: Vec<HashMap<(u32, Value), Option<Value>, ahash::RandomState>>,
    /// The names of maps from one level down ([`Mdd::transform_by`]): (level, its map's id + 1
    /// or 0 where it keeps its values, the name below) → name. 0 names the identity.
    names: HashMap<(usize, u32, u32), u32, ahash::RandomState>,
    /// Each step seen so far, by what its maps read: its index in `step_maps`.
    steps: HashMap<StepKey, u32, ahash::RandomState>,
    step_maps: Vec<StepMaps>,
    /// How many steps were found among `steps` (for the test build's checks).
    known_steps: u32,
}

/// How often the test build computes a reused image again, to check that the map's name says
/// all it reads (every time would double the work of the largest checks in `cargo test`).
const CHECK_EVERY: u32 = 8;

impl LevelMaps {
    pub(super) fn new(levels: usize) -> LevelMaps {
        LevelMaps {
            images: (0..levels).map(|_| HashMap::default()).collect(),
            ..LevelMaps::default()
        }
    }

    /// `step` applied to the set `nets`: the networks after it (forward), or with
    /// `back = Some(target)`, the networks of `nets` that it takes into `target`.
    pub(super) fn apply(
        &mut self,
        mdd: &mut Mdd,
        step: LevelStep<'_>,
        ends: &[(usize, usize)],
        dicts: &mut [Dict],
        nets: Node,
        back: Option<Node>,
    ) -> Node {
        let index = self.step_index(&step, ends);
        let LevelMaps {
            maps,
            images,
            step_maps,
            ..
        } = self;
        let StepMaps { ids, names } = &step_maps[index as usize];
        // Each level's map: its images, computed once per map id.
        let mut closures: SmallVec<[_; 16]> = dicts
            .iter_mut()
            .zip(images)
            .zip(ids.iter())
            .zip(ends)
            .map(|(((dict, images), id), &pair)| {
                let id = (*id)?;
                let map = &maps[id as usize];
                // The test build checks one in `CHECK_EVERY` of the images it reuses.
                let mut reused = 0u32;
                Some(move |v: Value| {
                    if let Some(&image) = images.get(&(id, v)) {
                        reused = reused.wrapping_add(1);
                        if cfg!(debug_assertions) && reused % CHECK_EVERY == 1 {
                            let fresh = step.image(pair, map, dict, v);
                            assert_eq!(image, fresh, "maps named alike agree");
                        }
                        return image;
                    }
                    let image = step.image(pair, map, dict, v);
                    images.insert((id, v), image);
                    image
                })
            })
            .collect();
        let mut refs: SmallVec<[Option<LevelFn<'_>>; 16]> = closures
            .iter_mut()
            .map(|m| m.as_mut().map(|f| f as LevelFn<'_>))
            .collect();
        match back {
            None => mdd.transform_by(nets, names, &mut refs),
            Some(target) => mdd.preimage(nets, &mut refs, target),
        }
    }

    /// The index in `step_maps` of `step`'s maps: found by what they read, or made.
    fn step_index(&mut self, step: &LevelStep<'_>, ends: &[(usize, usize)]) -> u32 {
        let key = StepKey {
            ops: step.ops.clone(),
            quiet: step.quiet.cloned(),
            guard: step
                .guard_level
                .map(|level| (level, step.action, step.crashed)),
            dead: dead_receivers(step.ops, step.procs).collect(),
        };
        let known = self.steps.get(&key).copied();
        self.known_steps = self.known_steps.wrapping_add(u32::from(known.is_some()));
        match known {
            Some(index) => {
                // The test build checks one in `CHECK_EVERY` of the steps it knows.
                if cfg!(debug_assertions) && self.known_steps % CHECK_EVERY == 1 {
                    let ids = self.ids_of(step, ends);
                    assert_eq!(
                        self.step_maps[index as usize].ids, ids,
                        "steps keyed alike agree"
                    );
                }
                index
            }
            None => {
                let ids = self.ids_of(step, ends);
                let names = self.names(&ids).into_boxed_slice();
                let index = self.step_maps.len() as u32;
                self.step_maps.push(StepMaps { ids, names });
                self.steps.insert(key, index);
                index
            }
        }
    }

    /// The ids of `step`'s maps, level by level.
    fn ids_of(&mut self, step: &LevelStep<'_>, ends: &[(usize, usize)]) -> Box<[Option<u32>]> {
        (0..ends.len())
            .map(|level| self.map_of(step, level, ends[level]))
            .collect()
    }

    /// The names of the maps `ids` from each level down ([`Mdd::transform_by`]).
    fn names(&mut self, ids: &[Option<u32>]) -> Vec<u32> {
        let mut names = vec![0u32; ids.len()];
        let mut below = 0;
        for level in (0..ids.len()).rev() {
            if ids[level].is_some() || below != 0 {
                let key = (level, ids[level].map_or(0, |id| id + 1), below);
                let next = self.names.len() as u32 + 1;
                below = *self.names.entry(key).or_insert(next);
            }
            names[level] = below;
        }
        names
    }

    /// The id of `step`'s map of `level` (the channels between `a` and `b`), if it has one.
    fn map_of(
        &mut self,
        step: &LevelStep<'_>,
        level: usize,
        (a, b): (usize, usize),
    ) -> Option<u32> {
        let ops: NetOps = step
            .ops
            .iter()
            .copied()
            .filter(|op| touches(op, a, b) || touches(op, b, a))
            .collect();
        let quiet = step
            .quiet
            .map_or([false; 2], |q| [q.requires(a, b), q.requires(b, a)]);
        let guard = (step.guard_level == Some(level)).then_some((step.action, step.crashed));
        if ops.is_empty() && quiet == [false; 2] && guard.is_none() {
            return None;
        }
        let dead = dead_receivers(&ops, step.procs).collect();
        let map = LevelMap {
            level,
            ops,
            quiet,
            guard,
            dead,
        };
        if let Some(&id) = self.ids.get(&map) {
            return Some(id);
        }
        let id = self.maps.len() as u32;
        self.maps.push(map.clone());
        self.ids.insert(map, id);
        Some(id)
    }
}

impl LevelStep<'_> {
    /// The image of value `v` of the level of `pair` under `map` (this step's map of that
    /// level): None where the step cannot be taken from that content.
    fn image(
        &self,
        (a, b): (usize, usize),
        map: &LevelMap,
        dict: &mut Dict,
        v: Value,
    ) -> Option<Value> {
        let content = &dict.values[v as usize];
        if map.quiet != [false; 2] {
            let mut quiet = Quiet::none(self.procs.len());
            if map.quiet[0] {
                quiet.require(a, b);
            }
            if map.quiet[1] {
                quiet.require(b, a);
            }
            if !quiet.holds(content) {
                return None;
            }
        }
        if let Some((action, crashed)) = map.guard {
            let mut enabled = Vec::new();
            self.model
                .message_actions_given(crashed, content, &mut enabled);
            if !enabled.contains(&action) {
                return None;
            }
        }
        let mut net = content.clone();
        for op in &map.ops {
            self.model.apply_op(&mut net, op, self.procs);
        }
        Some(dict.intern(net))
    }
}

/// For each [`NetOp::DiscardDeadTo`] of `ops`, its process in `procs` (the processes after
/// the step): all that the dead-message reduction reads of them ([`BullySystem::apply_op`]).
fn dead_receivers<'a>(ops: &'a [NetOp], procs: &'a [Proc]) -> impl Iterator<Item = Proc> + 'a {
    ops.iter().filter_map(|op| match op {
        NetOp::DiscardDeadTo(i) => Some(procs[*i as usize]),
        _ => None,
    })
}

/// Whether `op` acts on the channel from `src` to `dst`.
fn touches(op: &NetOp, src: usize, dst: usize) -> bool {
    let on = |e: &crate::system::Env| e.src as usize == src && e.dst as usize == dst;
    match op {
        NetOp::Remove(e)
        | NetOp::Delivered(e)
        | NetOp::RemoveLast(e)
        | NetOp::RemoveAll(e)
        | NetOp::Add(e) => on(e),
        NetOp::ClearTo(i) | NetOp::DiscardDeadTo(i) => *i as usize == dst,
        NetOp::Restarted(i) => *i as usize == src,
        NetOp::NewTag(i) => *i as usize == src || *i as usize == dst,
    }
}
