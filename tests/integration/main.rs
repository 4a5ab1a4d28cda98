//! The `meterwatch` binary, end to end (one test binary: see `autotests = false`).

mod bench_patterns;
mod check;
mod eval;
mod run;
mod support;
mod test_event_pattern;
