//! AWS EventBridge event patterns, matched exactly as AWS matches them, with many patterns
//! compiled into one matcher whose cost stays nearly flat as patterns are added.
//!
//! ```
//! use meterwatch_pattern::{MatcherBuilder, Pattern};
//!
//! let pattern = Pattern::parse(r#"{"detail": {"errorCode": [{"exists": true}]}}"#)?;
//! let mut builder = MatcherBuilder::default();
//! builder.add("failed-call", pattern);
//! let matcher = builder.build();
//! let event = r#"{"detail": {"eventName": "MeterUsage", "errorCode": "ThrottlingException"}}"#;
//! assert_eq!(matcher.matches(event)?, vec![&"failed-call"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//! - [`pattern`]: pattern text → a checked tree of leaves and `$or` groups; errors worded as AWS's.
//! - `pattern_json`: pattern text as JSON that keeps duplicate keys, as AWS reads them.
//! - [`op`]: the operators (one file each where there is more than a line to say) and how
//!   each judges a value.
//! - `flatten`: event text → the leaf values of wanted fields, with array trails; unwanted
//!   parts are skipped by the JSON parser without building values.
//! - `index`: per-field value → candidate branches (hash maps, affix tables, substring
//!   search for wildcard literals).
//! - [`matcher`]: builds the index from many patterns; matches = candidates, then exact verify.
//!   Callers may also register fields without patterns and read their values from the same
//!   pass ([`MatcherBuilder::want`], [`Matcher::capture`]).
//! - `reference` (feature `reference`): the brute-force oracle for property tests.
//!
//! This crate does no I/O and knows nothing of AWS SDKs or async runtimes.

mod error;
mod flatten;
mod index;
pub mod matcher;
pub mod op;
pub mod pattern;
mod pattern_json;
#[cfg(feature = "reference")]
pub mod reference;
mod value;

pub use error::{ErrorKind, EventError, PatternError};
pub use matcher::{Captures, Field, Matcher, MatcherBuilder, Scratch};
pub use pattern::{Leaf, Pattern};
pub use value::{Literal, Scalar};
