//! Multi-valued decision diagrams: sets of fixed-length vectors of small integers, stored as a
//! shared, reduced DAG (Bryant's BDDs with more than two values per level).
//!
//! The symbolic engine ([`crate::engine::symbolic`]) keeps sets of networks this way: one level per
//! channel, the value of a level an index into that channel's dictionary of contents. A set of
//! millions of networks that differ channel by channel, independently, is a DAG of a few
//! thousand nodes: that independence is exactly what makes the explicit state graph large.
//!
//! The diagrams are *quasi-reduced*: every path visits every level, no node has two identical
//! children lists at one level (a unique table), and no node has no edge (that is the empty
//! set, [`Mdd::EMPTY`]). So equal sets are equal node IDs, and set equality is `==`. Nodes are
//! never freed; the operation caches are.

use hashbrown::HashTable;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

/// A node: a set of vectors, from its level down.
pub type Node = u32;

/// A value at one level.
pub type Value = u32;

/// A map of one level's values ([`Mdd::transform`]): `None` drops the vector.
pub type LevelFn<'a> = &'a mut dyn FnMut(Value) -> Option<Value>;

#[derive(Clone, Copy)]
struct Entry {
    level: u32,
    start: u32,
    len: u32,
    /// The unique table's hash of (level, edges), kept so that growing the table does not
    /// hash every node's edges again.
    hash: u64,
}

/// A lossy operation cache (as in CUDD and Sylvan): one slot per hash, a newer result
/// overwrites an older one. It never grows or rehashes, and a miss only costs a recomputation.
struct Cache {
    slots: Vec<(Node, Node, Node)>,
    mask: usize,
}

impl Cache {
    /// No operation's operands are (EMPTY, EMPTY): the mark of a free slot.
    const FREE: (Node, Node, Node) = (Mdd::EMPTY, Mdd::EMPTY, Mdd::EMPTY);

    fn new(size: usize) -> Cache {
        let size = size.next_power_of_two();
        Cache {
            slots: vec![Self::FREE; size],
            mask: size - 1,
        }
    }
    fn slot(&self, a: Node, b: Node) -> usize {
        let h = (u64::from(a) << 32 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 32) as usize & self.mask
    }
    fn get(&self, a: Node, b: Node) -> Option<Node> {
        let (x, y, r) = self.slots[self.slot(a, b)];
        (x == a && y == b).then_some(r)
    }
    /// Emptied, with `size` slots (rounded up to a power of two); the same memory if the size
    /// stays.
    fn reset(&mut self, size: usize) {
        if size.next_power_of_two() == self.slots.len() {
            self.slots.fill(Self::FREE);
        } else {
            *self = Cache::new(size);
        }
    }
    fn put(&mut self, a: Node, b: Node, r: Node) {
        let i = self.slot(a, b);
        self.slots[i] = (a, b, r);
    }
}

/// Where [`Mdd::transform_rec`] remembers its results.
enum Memo<'a> {
    /// For one call: maps below level `last` keep every value.
    Call {
        last: usize,
        memo: &'a mut HashMap<Node, Node, ahash::RandomState>,
    },
    /// Across calls, by the maps' names ([`Mdd::transform_by`]).
    Named(&'a [u32]),
}

/// A diagram outside any store ([`Mdd::export`]): its nodes, children first, each as its level
/// and its edges' range; a child is `FULL` or `FIRST + i` for the node at `i`.
pub struct Portable {
    nodes: Vec<(u32, u32, u32)>,
    /// `(value, child)`, node after node.
    pub edges: Vec<(Value, u32)>,
    root: u32,
}

impl Portable {
    const EMPTY: u32 = 0;
    const FULL: u32 = 1;
    const FIRST: u32 = 2;

    /// Each edge's level and value (values repeat).
    pub fn values(&self) -> impl Iterator<Item = (usize, Value)> + '_ {
        self.nodes.iter().flat_map(|&(level, start, end)| {
            self.edges[start as usize..end as usize]
                .iter()
                .map(move |&(v, _)| (level as usize, v))
        })
    }
}

/// Counts the vectors of diagrams of one store ([`Mdd::counter`]).
pub struct Counter<'a> {
    mdd: &'a Mdd,
    memo: HashMap<Node, u128, ahash::RandomState>,
}

impl Counter<'_> {
    /// How many vectors `a` holds.
    pub fn count(&mut self, a: Node) -> u128 {
        self.mdd.count_rec(a, &mut self.memo)
    }
}

/// The operation caches' size: at least this many slots...
const CACHE_MIN: usize = 1 << 12;
/// ...and at most this many (24 MiB each).
const CACHE_MAX: usize = 1 << 21;

/// The node store: every node of every diagram, shared.
pub struct Mdd {
    levels: usize,
    nodes: Vec<Entry>,
    /// Every node's edges, `(value, child)` sorted by value, back to back.
    edges: Vec<(Value, Node)>,
    unique: HashTable<Node>,
    hasher: ahash::RandomState,
    union_cache: Cache,
    diff_cache: Cache,
    /// [`Mdd::transform_by`]'s results: `(map id, node)`.
    map_cache: Cache,
    /// Scratch memos of one `transform` / `preimage` call (kept for their capacity).
    memo: HashMap<Node, Node, ahash::RandomState>,
    memo2: HashMap<(Node, Node), Node, ahash::RandomState>,
}

/// A node's edges, copied out (most nodes have a few).
type Edges = SmallVec<[(Value, Node); 8]>;

impl Mdd {
    /// The empty set.
    pub const EMPTY: Node = 0;
    /// The set holding the empty vector (below the last level).
    pub const FULL: Node = 1;

    /// A store for vectors of `levels` values.
    pub fn new(levels: usize) -> Mdd {
        let entry = Entry {
            level: levels as u32,
            start: 0,
            len: 0,
            hash: 0,
        };
        Mdd {
            levels,
            nodes: vec![entry, entry],
            edges: Vec::new(),
            unique: HashTable::new(),
            hasher: ahash::RandomState::with_seeds(7, 11, 13, 17),
            union_cache: Cache::new(CACHE_MIN),
            diff_cache: Cache::new(CACHE_MIN),
            map_cache: Cache::new(CACHE_MIN),
            memo: HashMap::default(),
            memo2: HashMap::default(),
        }
    }

    /// Caches about as large as the node store (within bounds), emptied.
    fn resize_caches(&mut self) {
        let size = self.nodes.len().clamp(CACHE_MIN, CACHE_MAX);
        for cache in [
            &mut self.union_cache,
            &mut self.diff_cache,
            &mut self.map_cache,
        ] {
            cache.reset(size);
        }
    }

    /// How many nodes exist (all diagrams together).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    fn level(&self, n: Node) -> usize {
        self.nodes[n as usize].level as usize
    }

    /// The edges of `n`.
    pub fn edges(&self, n: Node) -> &[(Value, Node)] {
        let e = self.nodes[n as usize];
        &self.edges[e.start as usize..(e.start + e.len) as usize]
    }

    /// How many edges `n` has.
    fn degree(&self, n: Node) -> usize {
        self.nodes[n as usize].len as usize
    }

    /// Edge `i` of `n`. (Operations read edges one at a time, not as a slice: their recursive
    /// calls may grow the store, which never moves an existing node's edges within it.)
    fn edge(&self, n: Node, i: usize) -> (Value, Node) {
        let e = self.nodes[n as usize];
        debug_assert!(i < e.len as usize);
        self.edges[e.start as usize + i]
    }

    fn hash_key(&self, level: usize, edges: &[(Value, Node)]) -> u64 {
        let mut h = self.hasher.build_hasher();
        level.hash(&mut h);
        edges.hash(&mut h);
        h.finish()
    }

    /// The node at `level` with these edges (sorted by value, distinct values, no empty
    /// child): the existing one if there is one.
    fn make(&mut self, level: usize, edges: &[(Value, Node)]) -> Node {
        if edges.is_empty() {
            return Self::EMPTY;
        }
        debug_assert!(edges.windows(2).all(|w| w[0].0 < w[1].0));
        debug_assert!(edges.iter().all(|&(_, c)| c != Self::EMPTY));
        let hash = self.hash_key(level, edges);
        let (nodes, all) = (&self.nodes, &self.edges);
        let found = self.unique.find(hash, |&n| {
            let e = nodes[n as usize];
            e.hash == hash
                && e.level as usize == level
                && &all[e.start as usize..(e.start + e.len) as usize] == edges
        });
        if let Some(&n) = found {
            return n;
        }
        let n = self.nodes.len() as Node;
        self.nodes.push(Entry {
            level: level as u32,
            start: self.edges.len() as u32,
            len: edges.len() as u32,
            hash,
        });
        self.edges.extend_from_slice(edges);
        let nodes = &self.nodes;
        self.unique
            .insert_unique(hash, n, |&m| nodes[m as usize].hash);
        // Caches that have become small for the store grow (and start empty).
        if self.nodes.len() > 4 * self.union_cache.slots.len()
            && self.union_cache.slots.len() < CACHE_MAX
        {
            self.resize_caches();
        }
        n
    }

    /// Frees every node not reachable from `roots`, which are renumbered in place (node IDs
    /// keep their order, so children still come before parents). The caches are emptied.
    pub fn collect(&mut self, roots: &mut [&mut Node]) {
        let mut live = vec![false; self.nodes.len()];
        live[Self::EMPTY as usize] = true;
        live[Self::FULL as usize] = true;
        let mut stack: Vec<Node> = roots.iter().map(|r| **r).collect();
        while let Some(n) = stack.pop() {
            if live[n as usize] {
                continue;
            }
            live[n as usize] = true;
            stack.extend(self.edges(n).iter().map(|&(_, c)| c));
        }
        // Compacted in place, in order: a node's new place and its edges' are never after the
        // old ones, so nothing is overwritten before it is read, and the vectors keep their
        // memory (fresh memory costs a page fault per page on first use).
        let mut renumber = vec![Self::EMPTY; self.nodes.len()];
        let (mut kept, mut kept_edges) = (0usize, 0usize);
        for (old, &alive) in live.iter().enumerate() {
            if !alive {
                continue;
            }
            renumber[old] = kept as Node;
            let e = self.nodes[old];
            let start = kept_edges;
            for i in e.start as usize..(e.start + e.len) as usize {
                let (v, c) = self.edges[i];
                self.edges[kept_edges] = (v, renumber[c as usize]);
                kept_edges += 1;
            }
            // A child's new number differs from its old one, so the hash is taken again.
            let hash = self.hash_key(e.level as usize, &self.edges[start..kept_edges]);
            self.nodes[kept] = Entry {
                level: e.level,
                start: start as u32,
                len: e.len,
                hash,
            };
            kept += 1;
        }
        self.nodes.truncate(kept);
        self.edges.truncate(kept_edges);
        // Room to double before the next collection (the engines collect once the store has
        // doubled), so that growing never copies the store.
        self.nodes.reserve(kept);
        self.edges.reserve(kept_edges);
        self.unique.clear();
        self.unique
            .reserve(2 * kept, |&m| self.nodes[m as usize].hash);
        let nodes = &self.nodes;
        for n in 2..nodes.len() as Node {
            self.unique
                .insert_unique(nodes[n as usize].hash, n, |&m| nodes[m as usize].hash);
        }
        for r in roots.iter_mut() {
            **r = renumber[**r as usize];
        }
        self.resize_caches();
        self.memo = HashMap::default();
        self.memo2 = HashMap::default();
    }

    /// The set holding just `vector`.
    pub fn singleton(&mut self, vector: &[Value]) -> Node {
        assert_eq!(vector.len(), self.levels);
        let mut n = Self::FULL;
        for (level, &v) in vector.iter().enumerate().rev() {
            n = self.make(level, &[(v, n)]);
        }
        n
    }

    /// `a ∪ b`.
    pub fn union(&mut self, a: Node, b: Node) -> Node {
        if a == Self::EMPTY || a == b {
            return b;
        }
        if b == Self::EMPTY {
            return a;
        }
        let (lo, hi) = (a.min(b), a.max(b));
        if let Some(r) = self.union_cache.get(lo, hi) {
            return r;
        }
        let level = self.level(a);
        let (na, nb) = (self.degree(a), self.degree(b));
        let mut out = Edges::new();
        // Whether `out` is still `a`'s edges, and `b`'s.
        let (mut is_a, mut is_b) = (true, true);
        let (mut i, mut j) = (0, 0);
        while i < na || j < nb {
            let x = (i < na).then(|| self.edge(a, i));
            let y = (j < nb).then(|| self.edge(b, j));
            match (x, y) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    let c = self.union(x.1, y.1);
                    is_a &= c == x.1;
                    is_b &= c == y.1;
                    out.push((x.0, c));
                    i += 1;
                    j += 1;
                }
                (Some(x), y) if y.is_none_or(|y| x.0 < y.0) => {
                    is_b = false;
                    out.push(x);
                    i += 1;
                }
                (_, Some(y)) => {
                    is_a = false;
                    out.push(y);
                    j += 1;
                }
                (_, None) => unreachable!("the loop runs while one side has edges, a's first"),
            }
        }
        // A union that adds nothing to one side is that side: no lookup needed.
        let r = if is_a {
            a
        } else if is_b {
            b
        } else {
            self.make(level, &out)
        };
        self.union_cache.put(lo, hi, r);
        r
    }

    /// `a − b`.
    pub fn diff(&mut self, a: Node, b: Node) -> Node {
        if a == Self::EMPTY || a == b {
            return Self::EMPTY;
        }
        if b == Self::EMPTY {
            return a;
        }
        if let Some(r) = self.diff_cache.get(a, b) {
            return r;
        }
        let level = self.level(a);
        let nb = self.degree(b);
        let mut out = Edges::new();
        // Whether `out` is still `a`'s edges.
        let mut is_a = true;
        let mut j = 0;
        for i in 0..self.degree(a) {
            let (v, c) = self.edge(a, i);
            while j < nb && self.edge(b, j).0 < v {
                j += 1;
            }
            let d = match (j < nb).then(|| self.edge(b, j)) {
                Some((w, cb)) if w == v => self.diff(c, cb),
                _ => c,
            };
            is_a &= d == c;
            if d != Self::EMPTY {
                out.push((v, d));
            }
        }
        let r = if is_a { a } else { self.make(level, &out) };
        self.diff_cache.put(a, b, r);
        r
    }

    /// `a ∩ b`.
    pub fn intersect(&mut self, a: Node, b: Node) -> Node {
        let a_minus_b = self.diff(a, b);
        self.diff(a, a_minus_b)
    }

    /// The image of `a` under a map applied level by level: at level `l`, each value `v`
    /// becomes `maps[l](v)`, or the vector is dropped where that is `None`; a level without a
    /// map keeps its values. Vectors that become equal merge.
    pub fn transform(&mut self, a: Node, maps: &mut [Option<LevelFn<'_>>]) -> Node {
        let Some(last) = maps.iter().rposition(Option::is_some) else {
            return a;
        };
        let mut memo = std::mem::take(&mut self.memo);
        memo.clear();
        let r = self.transform_rec(
            a,
            maps,
            &mut Memo::Call {
                last,
                memo: &mut memo,
            },
        );
        self.memo = memo;
        r
    }

    /// [`Mdd::transform`] for maps that have names, remembered across calls: `ids[l]` names
    /// what the maps do from level `l` down (0: nothing, every level keeps its values). Equal
    /// names must mean equal maps, for as long as the store lives; two calls with the same
    /// maps below some level then share their work there.
    pub fn transform_by(&mut self, a: Node, ids: &[u32], maps: &mut [Option<LevelFn<'_>>]) -> Node {
        debug_assert_eq!(ids.len(), self.levels);
        self.transform_rec(a, maps, &mut Memo::Named(ids))
    }

    fn transform_rec(
        &mut self,
        a: Node,
        maps: &mut [Option<LevelFn<'_>>],
        memo: &mut Memo<'_>,
    ) -> Node {
        if a == Self::EMPTY {
            return a;
        }
        let level = self.level(a);
        let known = match memo {
            // Below the last map every level keeps its values.
            Memo::Call { last, .. } if level > *last => return a,
            Memo::Call { memo, .. } => memo.get(&a).copied(),
            // Name 0 (and the level below the last, FULL's): every level keeps its values.
            Memo::Named(ids) => match ids.get(level).copied().unwrap_or(0) {
                0 => return a,
                id => self.map_cache.get(id, a),
            },
        };
        if let Some(r) = known {
            return r;
        }
        let mut out = Edges::new();
        for i in 0..self.degree(a) {
            let (v, c) = self.edge(a, i);
            let v2 = match &mut maps[level] {
                None => Some(v),
                Some(f) => f(v),
            };
            let Some(v2) = v2 else { continue };
            let c2 = self.transform_rec(c, maps, memo);
            if c2 != Self::EMPTY {
                out.push((v2, c2));
            }
        }
        out.sort_unstable_by_key(|&(v, _)| v);
        // Merge the children of values that became equal.
        let mut merged = Edges::new();
        for (v, c) in out {
            match merged.last_mut() {
                Some((w, d)) if *w == v => *d = self.union(*d, c),
                _ => merged.push((v, c)),
            }
        }
        // A node the map leaves as it was is itself: no lookup needed.
        let r = if merged.as_slice() == self.edges(a) {
            a
        } else {
            self.make(level, &merged)
        };
        match memo {
            Memo::Call { memo, .. } => {
                memo.insert(a, r);
            }
            Memo::Named(ids) => self.map_cache.put(ids[level], a, r),
        }
        r
    }

    /// The vectors of `domain` whose image under `maps` (as in [`Mdd::transform`]) is in
    /// `target`: one step back.
    pub fn preimage(
        &mut self,
        domain: Node,
        maps: &mut [Option<LevelFn<'_>>],
        target: Node,
    ) -> Node {
        let mut memo = std::mem::take(&mut self.memo2);
        memo.clear();
        let r = self.preimage_rec(domain, maps, target, &mut memo);
        self.memo2 = memo;
        r
    }

    fn preimage_rec(
        &mut self,
        d: Node,
        maps: &mut [Option<LevelFn<'_>>],
        t: Node,
        memo: &mut HashMap<(Node, Node), Node, ahash::RandomState>,
    ) -> Node {
        if d == Self::EMPTY || t == Self::EMPTY {
            return Self::EMPTY;
        }
        if d == Self::FULL {
            return Self::FULL;
        }
        if let Some(&r) = memo.get(&(d, t)) {
            return r;
        }
        let level = self.level(d);
        let mut out = Edges::new();
        for i in 0..self.degree(d) {
            let (v, cd) = self.edge(d, i);
            let image = match &mut maps[level] {
                None => Some(v),
                Some(f) => f(v),
            };
            let Some(image) = image else { continue };
            let te = self.edges(t);
            let Ok(i) = te.binary_search_by_key(&image, |&(w, _)| w) else {
                continue;
            };
            let ct = te[i].1;
            let r = self.preimage_rec(cd, maps, ct, memo);
            if r != Self::EMPTY {
                out.push((v, r));
            }
        }
        let r = self.make(level, &out);
        memo.insert((d, t), r);
        r
    }

    /// The diagram `a`, outside the store: to be rebuilt in another store ([`Mdd::import`]).
    pub fn export(&self, a: Node) -> Portable {
        let mut out = Portable {
            nodes: Vec::new(),
            edges: Vec::new(),
            root: Portable::EMPTY,
        };
        let mut index: HashMap<Node, u32, ahash::RandomState> = HashMap::default();
        out.root = self.export_rec(a, &mut index, &mut out);
        out
    }

    fn export_rec(
        &self,
        a: Node,
        index: &mut HashMap<Node, u32, ahash::RandomState>,
        out: &mut Portable,
    ) -> u32 {
        match a {
            Self::EMPTY => return Portable::EMPTY,
            Self::FULL => return Portable::FULL,
            _ => {}
        }
        if let Some(&i) = index.get(&a) {
            return i;
        }
        let edges: Vec<(Value, u32)> = self
            .edges(a)
            .iter()
            .map(|&(v, c)| (v, self.export_rec(c, index, out)))
            .collect();
        let start = out.edges.len() as u32;
        out.edges.extend(edges);
        out.nodes
            .push((self.level(a) as u32, start, out.edges.len() as u32));
        let i = Portable::FIRST + out.nodes.len() as u32 - 1;
        index.insert(a, i);
        i
    }

    /// Rebuilds an exported diagram in this store, each value `v` at level `l` becoming
    /// `value(l, v)` (distinct values must stay distinct).
    pub fn import(&mut self, p: &Portable, mut value: impl FnMut(usize, Value) -> Value) -> Node {
        let mut built: Vec<Node> = Vec::with_capacity(p.nodes.len());
        let mut edges = Edges::new();
        for &(level, start, end) in &p.nodes {
            edges.clear();
            for &(v, c) in &p.edges[start as usize..end as usize] {
                let child = match c {
                    Portable::FULL => Self::FULL,
                    _ => built[(c - Portable::FIRST) as usize],
                };
                edges.push((value(level as usize, v), child));
            }
            edges.sort_unstable_by_key(|&(v, _)| v);
            let n = self.make(level as usize, &edges);
            built.push(n);
        }
        match p.root {
            Portable::EMPTY => Self::EMPTY,
            Portable::FULL => Self::FULL,
            r => built[(r - Portable::FIRST) as usize],
        }
    }

    /// How many vectors `a` holds.
    pub fn count(&self, a: Node) -> u128 {
        self.counter().count(a)
    }

    /// A counter for many diagrams of this store: what they share is counted once. It holds
    /// the store, so no node is renumbered while it counts.
    pub fn counter(&self) -> Counter<'_> {
        Counter {
            mdd: self,
            memo: HashMap::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4)),
        }
    }

    fn count_rec(&self, a: Node, memo: &mut HashMap<Node, u128, ahash::RandomState>) -> u128 {
        match a {
            Self::EMPTY => 0,
            Self::FULL => 1,
            _ => {
                if let Some(&c) = memo.get(&a) {
                    return c;
                }
                let c = self
                    .edges(a)
                    .iter()
                    .map(|&(_, child)| self.count_rec(child, memo))
                    .sum();
                memo.insert(a, c);
                c
            }
        }
    }

    /// For each level, the values some vector of `a` has there (sorted).
    pub fn values_by_level(&self, a: Node) -> Vec<Vec<Value>> {
        let mut seen =
            std::collections::HashSet::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4));
        let mut out = vec![Vec::new(); self.levels];
        let mut stack = vec![a];
        while let Some(n) = stack.pop() {
            if n <= Self::FULL || !seen.insert(n) {
                continue;
            }
            let level = self.level(n);
            for &(v, c) in self.edges(n) {
                out[level].push(v);
                stack.push(c);
            }
        }
        for values in &mut out {
            values.sort_unstable();
            values.dedup();
        }
        out
    }

    /// Some vector of `a` (the smallest values first), if any.
    pub fn pick(&self, a: Node) -> Option<Vec<Value>> {
        if a == Self::EMPTY {
            return None;
        }
        let mut v = Vec::with_capacity(self.levels);
        let mut n = a;
        while n != Self::FULL {
            let (value, child) = self.edges(n)[0];
            v.push(value);
            n = child;
        }
        Some(v)
    }

    /// Whether `a` holds `vector`.
    pub fn contains(&self, a: Node, vector: &[Value]) -> bool {
        let mut n = a;
        for &value in vector {
            if n == Self::EMPTY {
                return false;
            }
            match self.edges(n).binary_search_by_key(&value, |&(v, _)| v) {
                Ok(i) => n = self.edges(n)[i].1,
                Err(_) => return false,
            }
        }
        n == Self::FULL
    }

    /// Every vector of `a`, in order (for tests and small sets).
    pub fn vectors(&self, a: Node) -> Vec<Vec<Value>> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.vectors_rec(a, &mut prefix, &mut out);
        out
    }

    fn vectors_rec(&self, a: Node, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
        match a {
            Self::EMPTY => {}
            Self::FULL => out.push(prefix.clone()),
            _ => {
                for &(v, c) in self.edges(a) {
                    prefix.push(v);
                    self.vectors_rec(c, prefix, out);
                    prefix.pop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn set(m: &mut Mdd, vs: &[[Value; 3]]) -> Node {
        vs.iter().fold(Mdd::EMPTY, |acc, v| {
            let s = m.singleton(v);
            m.union(acc, s)
        })
    }

    #[test]
    fn set_operations_agree_with_btreesets() {
        let mut m = Mdd::new(3);
        let a_vs = [[0, 1, 2], [0, 1, 3], [1, 1, 2], [2, 0, 0]];
        let b_vs = [[0, 1, 3], [1, 1, 2], [3, 3, 3]];
        let a = set(&mut m, &a_vs);
        let b = set(&mut m, &b_vs);
        let sa: BTreeSet<Vec<Value>> = a_vs.iter().map(|v| v.to_vec()).collect();
        let sb: BTreeSet<Vec<Value>> = b_vs.iter().map(|v| v.to_vec()).collect();
        let u = m.union(a, b);
        let d = m.diff(a, b);
        assert_eq!(m.vectors(u), sa.union(&sb).cloned().collect::<Vec<_>>());
        assert_eq!(
            m.vectors(d),
            sa.difference(&sb).cloned().collect::<Vec<_>>()
        );
        assert_eq!(m.count(u), 5);
        assert_eq!(m.union(b, a), u, "canonical: equal sets are equal nodes");
        assert!(m.contains(a, &[2, 0, 0]) && !m.contains(a, &[2, 0, 1]));
        assert_eq!(
            m.values_by_level(a),
            vec![vec![0, 1, 2], vec![0, 1], vec![0, 2, 3]]
        );
        assert_eq!(m.pick(a), Some(vec![0, 1, 2]));
    }

    #[test]
    fn a_diagram_moves_to_another_store() {
        let mut m = Mdd::new(3);
        let vs = [[0, 1, 2], [0, 1, 3], [1, 1, 2], [2, 0, 0]];
        let a = set(&mut m, &vs);
        let p = m.export(a);
        // Another store, where every value is shifted by 10 at level 1.
        let mut other = Mdd::new(3);
        let _unrelated = set(&mut other, &[[5, 5, 5]]);
        let b = other.import(&p, |l, v| if l == 1 { v + 10 } else { v });
        let shifted: Vec<Vec<Value>> = vs
            .iter()
            .map(|v| vec![v[0], v[1] + 10, v[2]])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(other.vectors(b), shifted);
        assert_eq!(other.import(&m.export(Mdd::EMPTY), |_, v| v), Mdd::EMPTY);
        assert_eq!(p.values().filter(|&(l, _)| l == 0).count(), 3);
    }

    #[test]
    fn transform_maps_filters_and_merges() {
        let mut m = Mdd::new(3);
        let a = set(&mut m, &[[0, 1, 2], [0, 2, 2], [1, 1, 5]]);
        // Level 1: 2 becomes 1 (merging two vectors), level 2: drop 5.
        let mut mid = |v: Value| Some(if v == 2 { 1 } else { v });
        let mut low = |v: Value| (v != 5).then_some(v);
        let t = m.transform(a, &mut [None, Some(&mut mid), Some(&mut low)]);
        assert_eq!(m.vectors(t), vec![vec![0, 1, 2]]);
        // Collecting keeps what the roots reach, renumbered.
        let (mut keep, dropped) = (t, m.node_count());
        let before = m.vectors(keep);
        m.collect(&mut [&mut keep]);
        assert!(m.node_count() < dropped);
        assert_eq!(m.vectors(keep), before);
        let a = set(&mut m, &[[0, 1, 2], [0, 2, 2], [1, 1, 5]]);
        let t = keep;
        let mut mid = |v: Value| Some(if v == 2 { 1 } else { v });
        let mut low = |v: Value| (v != 5).then_some(v);
        // One step back: the vectors of `a` that map into `t` (the dropped one does not).
        let back = m.preimage(a, &mut [None, Some(&mut mid), Some(&mut low)], t);
        assert_eq!(m.vectors(back), vec![vec![0, 1, 2], vec![0, 2, 2]]);
    }
}
