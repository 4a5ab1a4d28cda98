//! The `meterwatch` binary, end to end (one test binary: see `autotests = false`).

mod bench_eval;
mod bench_patterns;
mod check;
mod cli;
#[path = "../corpora.rs"]
mod corpora;
mod docs;
mod eval;
mod explain;
mod fuzz_regressions;
mod healthcheck;
mod layers;
mod msrv;
mod preview;
mod run;
mod schema;
mod support;
mod test_cmd;
mod test_event_pattern;
