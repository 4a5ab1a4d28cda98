//! The top-level modules of `src/` depend on each other one way (ARCHITECTURE.md's layers):
//! read from every `crate::module` path in each module's code (tests included, comments
//! not), the graph has no cycle, and `state` reaches neither the sinks nor the daemon.

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The modules `src/lib.rs` declares, each with the other ones its code names.
fn module_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let declared = Regex::new(r"(?m)^pub mod (\w+);").expect("valid regex");
    let modules: BTreeSet<String> = declared
        .captures_iter(&lib)
        .map(|captures| captures[1].to_owned())
        .collect();
    assert!(modules.len() >= 10, "modules read from lib.rs: {modules:?}");
    // `crate::rules::…`, and each name in `crate::{rules, state::…}`.
    let path = Regex::new(r"\bcrate::(?:(\w+)|\{([^}]*)\})").expect("valid regex");
    let word = Regex::new(r"\w+").expect("valid regex");
    modules
        .iter()
        .map(|module| {
            let mut uses = BTreeSet::new();
            for file in rust_files(&src, module) {
                let text = std::fs::read_to_string(&file).expect("readable source");
                for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                    for captures in path.captures_iter(line) {
                        let names = match (captures.get(1), captures.get(2)) {
                            (Some(one), _) => vec![one.as_str()],
                            (None, Some(group)) => word
                                .find_iter(group.as_str())
                                .map(|name| name.as_str())
                                .collect(),
                            (None, None) => Vec::new(),
                        };
                        uses.extend(
                            names
                                .into_iter()
                                .filter(|name| name != module && modules.contains(*name))
                                .map(str::to_owned),
                        );
                    }
                }
            }
            (module.clone(), uses)
        })
        .collect()
}

/// `src/module.rs`, or every `.rs` file under `src/module/`.
fn rust_files(src: &Path, module: &str) -> Vec<PathBuf> {
    let file = src.join(format!("{module}.rs"));
    if file.is_file() {
        return vec![file];
    }
    let mut files = Vec::new();
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("module directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "no source for module `{module}`");
    files
}

/// A cycle of `graph` (its modules in order, the first repeated at the end), if it has one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        graph: &Graph,
        module: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(graph, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(graph, module, &mut Vec::new(), &mut done))
}

#[test]
fn a_cycle_is_found_with_its_modules_in_order() {
    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .into_iter()
        .map(|(from, to)| (from.to_owned(), BTreeSet::from([to.to_owned()])))
        .collect();
    assert_eq!(
        find_cycle(&graph),
        Some(["a", "b", "c", "a"].map(str::to_owned).to_vec())
    );
    let mut acyclic = graph;
    acyclic.remove("c");
    assert_eq!(find_cycle(&acyclic), None);
}

#[test]
fn top_level_modules_import_each_other_without_a_cycle() {
    let graph = module_graph();
    // The graph is read at all: the daemon calls the rules.
    assert!(
        graph
            .get("daemon")
            .is_some_and(|uses| uses.contains("rules")),
        "{graph:#?}"
    );
    assert_eq!(find_cycle(&graph), None, "module graph: {graph:#?}");
}

#[test]
fn state_reaches_neither_sinks_nor_the_daemon() {
    let graph = module_graph();
    let state = graph.get("state").expect("a state module");
    for above in ["sink", "daemon", "noise"] {
        assert!(!state.contains(above), "state uses {above}: {state:?}");
    }
}
