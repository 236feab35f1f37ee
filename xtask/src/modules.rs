//! `cargo xtask ci` step `modules`: no cycle among the broker's modules.
//!
//! Owns reading `crates/broker/src` into a graph of its top-level modules
//! (`router/queues.rs` belongs to `router`), with an edge for each
//! `crate::<module>` a file names outside comments and `#[cfg(test)]` code,
//! and finding the cycles in it (Tarjan's strongly connected components). It
//! does not judge which way a dependency should point; any cycle fails.

use crate::cmd;
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The crate whose module graph is checked.
const CRATE_SRC: &str = "crates/broker/src";

/// Module → the modules it names.
pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// Runs the check; fails naming each cycle's modules and edges.
pub fn check() -> Result<String> {
    let graph = read_graph(&cmd::root().join(CRATE_SRC))?;
    let cycles = cycles(&graph);
    if cycles.is_empty() {
        return Ok(format!("{} broker modules, no cycle", graph.len()));
    }
    for cycle in &cycles {
        let edges: Vec<String> = cycle
            .iter()
            .flat_map(|a| {
                graph[a]
                    .iter()
                    .filter(|b| cycle.contains(*b))
                    .map(move |b| format!("{a} -> {b}"))
            })
            .collect();
        println!("module cycle: {}", edges.join(", "));
    }
    bail!("{} module cycle(s) in {CRATE_SRC}", cycles.len())
}

/// The graph of the top-level modules under `src` (`lib.rs` and `main.rs` left out).
fn read_graph(src: &Path) -> Result<Graph> {
    let mut graph = Graph::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let rel = path.strip_prefix(src)?.with_extension("");
            let parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            let module = parts[0].clone();
            let is_test = parts.iter().any(|p| p == "tests");
            if is_test
                || path.extension().is_none_or(|e| e != "rs")
                || ["lib", "main"].contains(&module.as_str())
            {
                continue;
            }
            let text = std::fs::read_to_string(&path)?;
            let deps = graph.entry(module.clone()).or_default();
            deps.extend(named_modules(&text).into_iter().filter(|m| *m != module));
        }
    }
    Ok(graph)
}

/// The modules `text` names as `crate::<module>`, outside comments and test code.
fn named_modules(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut names = BTreeSet::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            let before = line[..at].chars().next_back();
            if !name.is_empty() && before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
                names.insert(name);
            }
        }
    }
    names
}

/// The cycles of `graph`: its strongly connected components of two or more modules.
pub fn cycles(graph: &Graph) -> Vec<BTreeSet<String>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        found: Vec<BTreeSet<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    self.low.insert(v, self.low[v].min(self.low[w]));
                } else if self.stack.contains(&w) {
                    self.low.insert(v, self.low[v].min(self.index[w]));
                }
            }
            if self.low[v] == self.index[v] {
                let at = self.stack.iter().rposition(|m| *m == v).unwrap_or(0);
                let component: BTreeSet<String> =
                    self.stack.drain(at..).map(str::to_owned).collect();
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut tarjan = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !tarjan.index.contains_key(v.as_str()) {
            tarjan.visit(v);
        }
    }
    tarjan.found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> Graph {
        let mut graph = Graph::new();
        for (a, b) in edges {
            graph.entry((*a).into()).or_default().insert((*b).into());
            graph.entry((*b).into()).or_default();
        }
        graph
    }

    #[test]
    fn a_cycle_is_found_and_a_chain_is_not() {
        let chain = graph(&[
            ("server", "serve"),
            ("serve", "connection"),
            ("connection", "shared"),
        ]);
        assert!(cycles(&chain).is_empty());
        let cycle = graph(&[
            ("server", "serve"),
            ("serve", "connection"),
            ("connection", "server"),
            ("connection", "shared"),
        ]);
        let found = cycles(&cycle);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].iter().map(String::as_str).collect::<Vec<_>>(),
            ["connection", "serve", "server"]
        );
    }

    #[test]
    fn names_outside_comments_and_tests_count() {
        let text = "use crate::router::Router;\n// see crate::server\nfn f() { crate::flow::x(); }\n\
                    /// [`Outbox`](crate::outbox::Outbox)\n#[cfg(test)]\nmod tests { use crate::session; }";
        let names: Vec<String> = named_modules(text).into_iter().collect();
        assert_eq!(names, ["flow", "router"]);
    }

    #[test]
    fn the_broker_has_no_module_cycle() -> Result<()> {
        let graph = read_graph(&cmd::root().join(CRATE_SRC))?;
        assert!(graph.contains_key("router") && graph.contains_key("session"));
        assert_eq!(cycles(&graph), Vec::<BTreeSet<String>>::new());
        Ok(())
    }
}
