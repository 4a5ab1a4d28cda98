//! Timed passes as the benchmark commands run them (`bench-patterns`, `bench-eval`,
//! `bench-pipeline`): untimed warm-up passes, then timed ones, each reported on stderr. Every
//! pass must count what the first counted, so a figure never comes from a pass that did
//! different work.

#![allow(
    clippy::disallowed_types,
    reason = "a benchmark pass measures wall time"
)]

use anyhow::bail;
use std::time::Instant;

/// How many passes to run.
#[derive(Debug, Clone, clap::Args)]
pub struct Passes {
    /// Timed passes; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub passes: u32,
    /// Untimed passes first.
    #[arg(long, default_value_t = 1)]
    pub warmup_passes: u32,
}

/// The timed passes' durations in seconds, in order, and what every pass counted.
#[derive(Debug)]
pub struct Timed<C> {
    pub seconds: Vec<f64>,
    pub counts: C,
}

impl<C> Timed<C> {
    pub fn median(&self) -> f64 {
        let mut sorted = self.seconds.clone();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        }
    }
}

impl Passes {
    /// Runs `pass`, which handles `n_events` events, as many times as asked; `name` heads its
    /// progress lines (`{name}: pass 2: 0.261s, 383142 events/s`).
    pub fn run<C: PartialEq>(
        &self,
        name: &str,
        n_events: usize,
        mut pass: impl FnMut() -> anyhow::Result<C>,
    ) -> anyhow::Result<Timed<C>> {
        let mut first = None;
        let mut seconds = Vec::with_capacity(self.passes as usize);
        for idx in 0..self.warmup_passes + self.passes {
            let timed = idx >= self.warmup_passes;
            let label = if timed {
                format!("pass {}", idx - self.warmup_passes + 1)
            } else {
                format!("warm-up {}", idx + 1)
            };
            let started = Instant::now();
            let counts = pass()?;
            let elapsed = started.elapsed().as_secs_f64();
            eprintln!(
                "{name}: {label}: {elapsed:.3}s, {:.0} events/s",
                n_events as f64 / elapsed
            );
            match &first {
                Some(expected) if *expected != counts => {
                    bail!("{name}: {label} counted differently from the first pass")
                }
                Some(_) => {}
                None => first = Some(counts),
            }
            if timed {
                seconds.push(elapsed);
            }
        }
        Ok(Timed {
            seconds,
            counts: first.expect("at least one timed pass"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_of_the_timed_passes_and_counts_must_agree() {
        let passes = Passes {
            passes: 4,
            warmup_passes: 1,
        };
        let timed = passes.run("test", 1, || Ok(7)).expect("same counts");
        assert_eq!((timed.seconds.len(), timed.counts), (4, 7));
        let timed = Timed {
            seconds: vec![4.0, 1.0, 3.0, 2.0],
            counts: (),
        };
        assert_eq!(timed.median(), 2.5);
        let mut n = 0;
        let error = passes
            .run("test", 1, || {
                n += 1;
                Ok(n.min(2))
            })
            .expect_err("the second pass counts differently");
        assert!(
            error.to_string().contains("pass 1 counted differently"),
            "{error}"
        );
    }
}
