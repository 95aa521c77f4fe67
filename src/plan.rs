//! The DAG of a pipeline's steps, built with petgraph.

use std::collections::HashMap;
use std::fmt::Write as _;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::spec::model::{Pipeline, Trigger};

/// Steps are numbered by their position in the file; edges run from a needed step to the step
/// that needs it.
#[derive(Debug, Clone)]
pub struct Plan {
    graph: DiGraph<usize, ()>,
    /// A topological order (ties broken by file position).
    order: Vec<usize>,
    ids: Vec<String>,
    index: HashMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// Step `step`'s `needs[need]` names no step.
    UnknownNeed {
        step: usize,
        need: usize,
        name: String,
    },
    /// A closed walk along `needs`: `[a, b, c, a]` means a needs b, b needs c, c needs a.
    Cycle(Vec<usize>),
}

impl Plan {
    pub fn build(pipeline: &Pipeline) -> Result<Plan, Vec<PlanError>> {
        let mut graph = DiGraph::new();
        let mut index = HashMap::new();
        let nodes: Vec<NodeIndex> = pipeline
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                // A duplicate id keeps its first position; validation reports the duplicate.
                index.entry(step.id.clone()).or_insert(i);
                graph.add_node(i)
            })
            .collect();
        let mut errors = Vec::new();
        for (i, step) in pipeline.steps.iter().enumerate() {
            for (n, need) in step.needs.iter().enumerate() {
                match index.get(need) {
                    Some(&up) => {
                        if graph.find_edge(nodes[up], nodes[i]).is_none() {
                            graph.add_edge(nodes[up], nodes[i], ());
                        }
                    }
                    None => errors.push(PlanError::UnknownNeed {
                        step: i,
                        need: n,
                        name: need.clone(),
                    }),
                }
            }
        }
        errors.extend(find_cycles(&graph).into_iter().map(PlanError::Cycle));
        if !errors.is_empty() {
            return Err(errors);
        }
        let order = stable_topological_order(&graph);
        Ok(Plan {
            graph,
            order,
            ids: pipeline.steps.iter().map(|s| s.id.clone()).collect(),
            index,
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn order(&self) -> &[usize] {
        &self.order
    }

    pub fn id(&self, step: usize) -> &str {
        &self.ids[step]
    }

    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The steps `step` needs directly.
    pub fn upstream(&self, step: usize) -> Vec<usize> {
        let mut up: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(step), petgraph::Direction::Incoming)
            .map(|n| n.index())
            .collect();
        up.sort_unstable();
        up
    }

    /// The steps that need `step` directly.
    pub fn downstream(&self, step: usize) -> Vec<usize> {
        let mut down: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(step), petgraph::Direction::Outgoing)
            .map(|n| n.index())
            .collect();
        down.sort_unstable();
        down
    }

    /// Every step `step` depends on, directly or not.
    pub fn ancestors(&self, step: usize) -> Vec<usize> {
        self.walk(step, petgraph::Direction::Incoming)
    }

    /// Every step that depends on `step`, directly or not.
    pub fn descendants(&self, step: usize) -> Vec<usize> {
        self.walk(step, petgraph::Direction::Outgoing)
    }

    fn walk(&self, step: usize, direction: petgraph::Direction) -> Vec<usize> {
        let mut seen = vec![false; self.len()];
        let mut stack = vec![step];
        while let Some(current) = stack.pop() {
            for next in self
                .graph
                .neighbors_directed(NodeIndex::new(current), direction)
            {
                if !seen[next.index()] {
                    seen[next.index()] = true;
                    stack.push(next.index());
                }
            }
        }
        (0..self.len()).filter(|&i| seen[i]).collect()
    }

    /// The DAG as a Mermaid flowchart.
    pub fn to_mermaid(&self, pipeline: &Pipeline) -> String {
        let mut out = String::from("flowchart LR\n");
        for &i in &self.order {
            let step = &pipeline.steps[i];
            let _ = writeln!(
                out,
                "  {}[\"{}<br/><small>{}</small>\"]",
                step.id, step.id, step.uses
            );
        }
        for edge in self.graph.edge_references() {
            let (from, to) = (edge.source().index(), edge.target().index());
            let arrow = match pipeline.steps[to].trigger {
                Trigger::AllSuccess => "-->".to_string(),
                other => format!("-. {} .->", other.name()),
            };
            let _ = writeln!(out, "  {} {arrow} {}", self.ids[from], self.ids[to]);
        }
        out
    }

    /// The DAG in Graphviz dot.
    pub fn to_dot(&self, pipeline: &Pipeline) -> String {
        let mut out = format!(
            "digraph {:?} {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n",
            pipeline.name
        );
        for &i in &self.order {
            let step = &pipeline.steps[i];
            let _ = writeln!(
                out,
                "  {:?} [label=\"{}\\n{}\"];",
                step.id, step.id, step.uses
            );
        }
        for edge in self.graph.edge_references() {
            let (from, to) = (edge.source().index(), edge.target().index());
            let style = match pipeline.steps[to].trigger {
                Trigger::AllSuccess => String::new(),
                other => format!(" [style=dashed, label={:?}]", other.name()),
            };
            let _ = writeln!(out, "  {:?} -> {:?}{style};", self.ids[from], self.ids[to]);
        }
        out.push_str("}\n");
        out
    }
}

/// What each step depends on through `needs`, directly or not, found by name so that it works
/// on pipelines with unknown needs or cycles (validation reports those separately).
pub struct NeededSteps {
    needs: Vec<Vec<usize>>,
}

impl NeededSteps {
    pub fn new(pipeline: &Pipeline) -> Self {
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, step) in pipeline.steps.iter().enumerate() {
            index.entry(step.id.as_str()).or_insert(i);
        }
        let needs = pipeline
            .steps
            .iter()
            .map(|s| {
                s.needs
                    .iter()
                    .filter_map(|n| index.get(n.as_str()).copied())
                    .collect()
            })
            .collect();
        NeededSteps { needs }
    }

    /// Every step `step` depends on, in file order.
    pub fn of(&self, step: usize) -> Vec<usize> {
        let mut seen = vec![false; self.needs.len()];
        let mut stack = vec![step];
        while let Some(current) = stack.pop() {
            for &up in &self.needs[current] {
                if !seen[up] {
                    seen[up] = true;
                    stack.push(up);
                }
            }
        }
        (0..self.needs.len()).filter(|&i| seen[i]).collect()
    }
}

/// Kahn's algorithm, always taking the ready step that comes first in the file, so the order
/// is the same on every run.
fn stable_topological_order(graph: &DiGraph<usize, ()>) -> Vec<usize> {
    let n = graph.node_count();
    let mut indegree: Vec<usize> = (0..n)
        .map(|i| {
            graph
                .neighbors_directed(NodeIndex::new(i), petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(next) = ready.pop_first() {
        order.push(next);
        for down in graph.neighbors_directed(NodeIndex::new(next), petgraph::Direction::Outgoing) {
            indegree[down.index()] -= 1;
            if indegree[down.index()] == 0 {
                ready.insert(down.index());
            }
        }
    }
    order
}

/// One named cycle per strongly connected component that has one (a step needing itself
/// included), written along `needs`: `[a, b, a]` = a needs b, b needs a.
fn find_cycles(graph: &DiGraph<usize, ()>) -> Vec<Vec<usize>> {
    let mut cycles = Vec::new();
    for component in tarjan_scc(graph) {
        let members: Vec<usize> = component.iter().map(|n| n.index()).collect();
        let start = *members.iter().min().expect("components are never empty");
        if members.len() == 1 {
            let node = NodeIndex::new(start);
            if graph.find_edge(node, node).is_some() {
                cycles.push(vec![start, start]);
            }
            continue;
        }
        // Walk `needs` (edges backwards) inside the component, from its first step back to it.
        let in_component = |i: usize| members.contains(&i);
        let mut path = vec![start];
        let mut visited = vec![start];
        if walk_back(graph, start, start, &in_component, &mut path, &mut visited) {
            cycles.push(path);
        }
    }
    cycles.sort();
    cycles
}

fn walk_back(
    graph: &DiGraph<usize, ()>,
    current: usize,
    target: usize,
    in_component: &dyn Fn(usize) -> bool,
    path: &mut Vec<usize>,
    visited: &mut Vec<usize>,
) -> bool {
    let mut needs: Vec<usize> = graph
        .neighbors_directed(NodeIndex::new(current), petgraph::Direction::Incoming)
        .map(|n| n.index())
        .filter(|&i| in_component(i))
        .collect();
    needs.sort_unstable();
    for need in needs {
        if need == target {
            path.push(target);
            return true;
        }
        if visited.contains(&need) {
            continue;
        }
        visited.push(need);
        path.push(need);
        if walk_back(graph, need, target, in_component, path, visited) {
            return true;
        }
        path.pop();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(yaml: &str) -> Pipeline {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn names_a_whole_cycle() {
        let p = pipeline(
            "name: p\nsteps:\n- {id: a, uses: noop, needs: [c]}\n- {id: b, uses: noop, needs: [a]}\n- {id: c, uses: noop, needs: [b]}\n- {id: d, uses: noop, needs: [d]}\n",
        );
        let errors = Plan::build(&p).unwrap_err();
        assert_eq!(
            errors,
            vec![
                PlanError::Cycle(vec![0, 2, 1, 0]),
                PlanError::Cycle(vec![3, 3])
            ]
        );
    }

    #[test]
    fn orders_steps_stably() {
        let p = pipeline(
            "name: p\nsteps:\n- {id: z, uses: noop, needs: [b]}\n- {id: a, uses: noop}\n- {id: b, uses: noop, needs: [a]}\n- {id: c, uses: noop}\n",
        );
        let plan = Plan::build(&p).unwrap();
        let ids: Vec<&str> = plan.order().iter().map(|&i| plan.id(i)).collect();
        assert_eq!(ids, ["a", "b", "z", "c"]);
        assert_eq!(plan.descendants(1), vec![0, 2]);
        assert_eq!(plan.ancestors(0), vec![1, 2]);
    }
}
