//! The `meterwatch` binary, end to end (one test binary: see `autotests = false`).

mod bench_patterns;
mod support;
mod test_event_pattern;
