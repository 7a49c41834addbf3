//! Dependency graphs between transactions and the cycle search that turns
//! them into named anomalies (Adya's phenomena, as Elle reports them).
//!
//! Nodes are committed transactions (by history index). An edge says "must
//! come before in any serial order" and carries why:
//!
//! - `ww(k)`: the source wrote a version of `k` the target overwrote;
//! - `wr(k)`: the target read a version of `k` the source wrote;
//! - `rw(k)`: the source read a version of `k` the target overwrote (an
//!   anti-dependency).
//!
//! A serializable history has an acyclic graph. A cycle is classified by
//! the edges it needs, weakest anomaly first: `G0` (ww only: dirty
//! write), `G1c` (ww and wr: circular information flow), `G-single` (exactly
//! one rw: read skew, lost update) and `G2` (two or more rw: write skew).
//! The search: strongly connected components (Tarjan), then inside each
//! component a breadth-first search for the shortest cycle of each class,
//! so the explanation is as short as the graph allows.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// Why one transaction precedes another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Write-write: a version and the version that overwrote it.
    Ww,
    /// Write-read: a version and a read of it.
    Wr,
    /// Read-write (anti-dependency): a read and the write that overwrote
    /// the version read.
    Rw,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ww => "ww",
            Kind::Wr => "wr",
            Kind::Rw => "rw",
        }
    }
}

/// One dependency edge.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Edge {
    /// The earlier transaction.
    pub from: usize,
    /// The later transaction.
    pub to: usize,
    /// Why.
    pub kind: Kind,
    /// The key (object) that gives the edge.
    pub key: String,
}

/// A dependency graph; parallel edges of different kinds are kept.
#[derive(Default, Debug)]
pub struct Graph {
    edges: BTreeSet<Edge>,
}

/// A cycle found in the graph, classified and explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// `G0`, `G1c`, `G-single` or `G2`.
    pub anomaly: &'static str,
    /// The edges, each one's `to` the next one's `from`, the last one's
    /// `to` the first one's `from`.
    pub edges: Vec<Edge>,
}

impl Cycle {
    /// The path: `T3 -wr(x)-> T7 -rw(y)-> T3`.
    pub fn explain(&self) -> String {
        let mut s = String::new();
        for (i, e) in self.edges.iter().enumerate() {
            if i == 0 {
                s.push_str(&format!("T{}", e.from));
            }
            s.push_str(&format!(" -{}({})-> T{}", e.kind.name(), e.key, e.to));
        }
        s
    }
}

impl Graph {
    /// Adds an edge; self-loops are ignored (a transaction's own reads and
    /// writes order nothing).
    pub fn add(&mut self, from: usize, to: usize, kind: Kind, key: impl Into<String>) {
        if from != to {
            self.edges.insert(Edge {
                from,
                to,
                kind,
                key: key.into(),
            });
        }
    }

    /// Number of edges.
    pub fn len(&self) -> usize {
        self.edges.len()
    }

    /// True without edges.
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    /// One shortest cycle of each anomaly class present, per strongly
    /// connected component (at most `max` in all).
    pub fn cycles(&self, max: usize) -> Vec<Cycle> {
        let mut out = Vec::new();
        for comp in self.components() {
            if out.len() >= max {
                break;
            }
            let inside: Vec<&Edge> = self
                .edges
                .iter()
                .filter(|e| comp.contains(&e.from) && comp.contains(&e.to))
                .collect();
            let only = |kinds: &[Kind]| -> Vec<&Edge> {
                inside
                    .iter()
                    .copied()
                    .filter(|e| kinds.contains(&e.kind))
                    .collect()
            };
            // G0: ww only.
            let ww = only(&[Kind::Ww]);
            if let Some(c) = shortest_cycle(&ww) {
                out.push(Cycle {
                    anomaly: "G0",
                    edges: c,
                });
                continue;
            }
            // G1c: ww and wr, at least one wr (else it would be G0).
            let wwr = only(&[Kind::Ww, Kind::Wr]);
            if let Some(c) = shortest_cycle(&wwr) {
                out.push(Cycle {
                    anomaly: "G1c",
                    edges: c,
                });
                continue;
            }
            // G-single: one rw edge closed by a ww/wr path back.
            let mut best: Option<Vec<Edge>> = None;
            for rw in inside.iter().filter(|e| e.kind == Kind::Rw) {
                if let Some(path) = shortest_path(&wwr, rw.to, rw.from) {
                    let mut c = vec![(*rw).clone()];
                    c.extend(path);
                    if best.as_ref().is_none_or(|b| c.len() < b.len()) {
                        best = Some(c);
                    }
                }
            }
            if let Some(c) = best {
                out.push(Cycle {
                    anomaly: "G-single",
                    edges: c,
                });
                continue;
            }
            // G2: anything else (two or more rw edges).
            if let Some(c) = shortest_cycle(&inside) {
                out.push(Cycle {
                    anomaly: "G2",
                    edges: c,
                });
            }
        }
        out
    }

    /// Strongly connected components with more than one node (Tarjan,
    /// iterative).
    fn components(&self) -> Vec<BTreeSet<usize>> {
        let mut adj: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for e in &self.edges {
            adj.entry(e.from).or_default().push(e.to);
            adj.entry(e.to).or_default();
        }
        let nodes: Vec<usize> = adj.keys().copied().collect();
        let mut index: HashMap<usize, usize> = HashMap::new();
        let mut low: HashMap<usize, usize> = HashMap::new();
        let mut on_stack: BTreeSet<usize> = BTreeSet::new();
        let mut stack: Vec<usize> = Vec::new();
        let mut next = 0;
        let mut out = Vec::new();
        for &root in &nodes {
            if index.contains_key(&root) {
                continue;
            }
            // (node, position in its adjacency list)
            let mut work: Vec<(usize, usize)> = vec![(root, 0)];
            index.insert(root, next);
            low.insert(root, next);
            next += 1;
            stack.push(root);
            on_stack.insert(root);
            while let Some(&mut (v, ref mut pos)) = work.last_mut() {
                let succ = &adj[&v];
                if *pos < succ.len() {
                    let w = succ[*pos];
                    *pos += 1;
                    if let std::collections::hash_map::Entry::Vacant(slot) = index.entry(w) {
                        slot.insert(next);
                        low.insert(w, next);
                        next += 1;
                        stack.push(w);
                        on_stack.insert(w);
                        work.push((w, 0));
                    } else if on_stack.contains(&w) {
                        let lw = index[&w];
                        let lv = low.get_mut(&v).expect("visited");
                        *lv = (*lv).min(lw);
                    }
                } else {
                    work.pop();
                    if let Some(&(parent, _)) = work.last() {
                        let lv = low[&v];
                        let lp = low.get_mut(&parent).expect("visited");
                        *lp = (*lp).min(lv);
                    }
                    if low[&v] == index[&v] {
                        let mut comp = BTreeSet::new();
                        while let Some(w) = stack.pop() {
                            on_stack.remove(&w);
                            comp.insert(w);
                            if w == v {
                                break;
                            }
                        }
                        if comp.len() > 1 {
                            out.push(comp);
                        }
                    }
                }
            }
        }
        out
    }
}

/// The shortest path from `from` to `to` over `edges` (breadth first).
fn shortest_path(edges: &[&Edge], from: usize, to: usize) -> Option<Vec<Edge>> {
    let mut adj: HashMap<usize, Vec<&Edge>> = HashMap::new();
    for e in edges {
        adj.entry(e.from).or_default().push(e);
    }
    let mut prev: HashMap<usize, &Edge> = HashMap::new();
    let mut seen: BTreeSet<usize> = BTreeSet::from([from]);
    let mut q = VecDeque::from([from]);
    while let Some(v) = q.pop_front() {
        if v == to && v != from {
            break;
        }
        for e in adj.get(&v).map(Vec::as_slice).unwrap_or(&[]) {
            if e.to == to && !prev.contains_key(&to) {
                prev.insert(to, e);
                q.clear();
                break;
            }
            if seen.insert(e.to) {
                prev.insert(e.to, e);
                q.push_back(e.to);
            }
        }
    }
    let mut path = Vec::new();
    let mut at = to;
    loop {
        let e = prev.get(&at)?;
        path.push((*e).clone());
        at = e.from;
        if at == from {
            break;
        }
    }
    path.reverse();
    Some(path)
}

/// A shortest cycle over `edges`, if any.
fn shortest_cycle(edges: &[&Edge]) -> Option<Vec<Edge>> {
    let mut best: Option<Vec<Edge>> = None;
    for e in edges {
        if let Some(back) = shortest_path(edges, e.to, e.from) {
            let mut c = vec![(*e).clone()];
            c.extend(back);
            if best.as_ref().is_none_or(|b| c.len() < b.len()) {
                best = Some(c);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acyclic_graphs_have_no_anomalies() {
        let mut g = Graph::default();
        g.add(1, 2, Kind::Ww, "x");
        g.add(2, 3, Kind::Wr, "x");
        g.add(1, 3, Kind::Rw, "y");
        g.add(3, 3, Kind::Rw, "y");
        assert!(g.cycles(10).is_empty());
    }

    #[test]
    fn cycles_are_classified_by_the_edges_they_need() {
        let mut g0 = Graph::default();
        g0.add(1, 2, Kind::Ww, "x");
        g0.add(2, 1, Kind::Ww, "y");
        assert_eq!(g0.cycles(10)[0].anomaly, "G0");

        let mut g1c = Graph::default();
        g1c.add(1, 2, Kind::Ww, "x");
        g1c.add(2, 1, Kind::Wr, "y");
        g1c.add(2, 1, Kind::Rw, "z");
        assert_eq!(g1c.cycles(10)[0].anomaly, "G1c");

        let mut single = Graph::default();
        single.add(1, 2, Kind::Wr, "x");
        single.add(2, 1, Kind::Rw, "y");
        let c = &single.cycles(10)[0];
        assert_eq!(c.anomaly, "G-single");
        assert_eq!(c.explain(), "T2 -rw(y)-> T1 -wr(x)-> T2");

        let mut g2 = Graph::default();
        g2.add(1, 2, Kind::Rw, "x");
        g2.add(2, 1, Kind::Rw, "y");
        assert_eq!(g2.cycles(10)[0].anomaly, "G2");
    }

    #[test]
    fn the_shortest_cycle_is_reported_and_components_are_separate() {
        let mut g = Graph::default();
        // A long ww cycle 1->2->3->4->1 and a short one 1->5->1.
        g.add(1, 2, Kind::Ww, "a");
        g.add(2, 3, Kind::Ww, "a");
        g.add(3, 4, Kind::Ww, "a");
        g.add(4, 1, Kind::Ww, "a");
        g.add(1, 5, Kind::Ww, "b");
        g.add(5, 1, Kind::Ww, "b");
        // A separate G2 between 10 and 11.
        g.add(10, 11, Kind::Rw, "c");
        g.add(11, 10, Kind::Rw, "d");
        let cs = g.cycles(10);
        assert_eq!(cs.len(), 2);
        let g0 = cs.iter().find(|c| c.anomaly == "G0").expect("G0");
        assert_eq!(g0.edges.len(), 2);
        assert!(cs.iter().any(|c| c.anomaly == "G2"));
    }
}
