//! The liveness pass's backward fixpoint: each combination's networks from which fault-free
//! steps can still reach a goal, grown from the states where it holds by taking steps back
//! ([`Engine::step_back`]) until nothing new is found.
//!
//! Only the news travel: a preimage of a union is the union of the preimages, so what a
//! combination learns is passed on once, not with everything it knew before. The most
//! advanced combination with news goes first ([`progress`], then the highest number): no step
//! lowers progress, so this goes against the graph's flow, and most combinations pass their
//! news on a few times, not once per step back. On several threads each worker runs this on
//! the combinations it owns (module `parallel`).

use super::{progress, Engine};
use crate::mdd::{Mdd, Node};
use crate::system::{Action, SysState};
use std::collections::BinaryHeap;

/// The fixpoint's state over one engine's combinations.
pub(super) struct Backward {
    /// Each combination's networks known to reach the goal.
    pub(super) good: Vec<Node>,
    /// What of `good` is not passed on yet.
    news: Vec<Node>,
    rank: Vec<u64>,
    /// The combinations with news (exactly those whose `news` is not empty), the most
    /// advanced first.
    work: BinaryHeap<(u64, u32)>,
}

impl Backward {
    /// The start: every network of the combinations where `goal` holds.
    pub(super) fn new(engine: &Engine<'_>, goal: &impl Fn(&SysState) -> bool) -> Backward {
        let good: Vec<Node> = engine
            .entries
            .iter()
            .map(|e| {
                if goal(&e.state) {
                    e.reached
                } else {
                    Mdd::EMPTY
                }
            })
            .collect();
        let rank: Vec<u64> = engine.entries.iter().map(|e| progress(&e.state)).collect();
        let mut back = Backward {
            news: vec![Mdd::EMPTY; good.len()],
            work: BinaryHeap::new(),
            good,
            rank,
        };
        for k in 0..back.good.len() {
            let good = back.good[k];
            back.learn(k as u32, good);
        }
        back
    }

    /// The next combination to go back from, and its news.
    pub(super) fn next(&mut self) -> Option<(u32, Node)> {
        let (_, k) = self.work.pop()?;
        let news = std::mem::replace(&mut self.news[k as usize], Mdd::EMPTY);
        debug_assert_ne!(news, Mdd::EMPTY, "only combinations with news are queued");
        Some((k, news))
    }

    /// How many combinations have news to pass on.
    pub(super) fn waiting(&self) -> usize {
        self.work.len()
    }

    /// Step `a` from this engine's combination `from` reaches networks `target` known good:
    /// the networks of `from` it takes there are good too.
    pub(super) fn take_back(
        &mut self,
        engine: &mut Engine<'_>,
        from: u32,
        a: Action,
        target: Node,
    ) {
        let f = from as usize;
        // Only what is not known good yet (most often nothing: then the step is not even
        // computed).
        let domain = engine.mdd.diff(engine.entries[f].reached, self.good[f]);
        if domain == Mdd::EMPTY {
            return;
        }
        if let Some(back) = engine.step_back(from, a, domain, target) {
            self.good[f] = engine.mdd.union(self.good[f], back);
            let news = engine.mdd.union(self.news[f], back);
            self.learn(from, news);
        }
    }

    /// `k`'s news are now `news` (what it had, and more): queued once they are not empty.
    fn learn(&mut self, k: u32, news: Node) {
        let had = std::mem::replace(&mut self.news[k as usize], news);
        if had == Mdd::EMPTY && news != Mdd::EMPTY {
            self.work.push((self.rank[k as usize], k));
        }
    }
}
