//! Named lists (allowed principals, production accounts, expected product codes), defined
//! once in any rule file's `[lists]` table and used by name from any rule.
//!
//! An entry containing `*` is an EventBridge-style wildcard (`\*` is a literal star), so an
//! allowed-principals list can say `arn:aws:iam::123456789012:role/metering-*`.

use meterwatch_pattern::PatternError;
use meterwatch_pattern::op::Wildcard;
use rustc_hash::FxHashSet;

/// One named list, ready for membership tests.
#[derive(Debug, Clone, Default)]
pub struct List {
    /// The entries as written, for templates and explanations.
    entries: Vec<String>,
    /// Entries are fixed once loaded, so a cheap hash is safe: crafted lookups cannot build
    /// long probe chains.
    exact: FxHashSet<String>,
    wildcards: Vec<Wildcard>,
}

impl List {
    /// Builds a list from its entries; an entry with a malformed wildcard is an error.
    pub fn new<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<List, PatternError> {
        let mut list = List::default();
        for entry in entries {
            list.entries.push(entry.to_owned());
            if entry.contains('*') {
                list.wildcards.push(Wildcard::new(entry)?);
            } else {
                list.exact.insert(entry.to_owned());
            }
        }
        Ok(list)
    }

    /// An empty list means "not configured": conditions on it never hold.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcards.is_empty()
    }

    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    pub fn contains(&self, value: &str) -> bool {
        self.exact.contains(value) || self.wildcards.iter().any(|w| w.matches(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wildcard_entries() {
        let list =
            List::new(["111122223333", "arn:aws:iam::*:role/metering-*"]).expect("valid entries");
        assert!(list.contains("111122223333"));
        assert!(list.contains("arn:aws:iam::123456789012:role/metering-eks"));
        assert!(!list.contains("arn:aws:iam::123456789012:role/admin"));
        assert!(!list.is_empty());
    }

    #[test]
    fn malformed_wildcards_are_errors() {
        assert!(List::new(["a**b"]).is_err());
    }
}
