//! Per-field candidate index: given one event value, which branches might match because of
//! it. It may over-approximate (every candidate is verified exactly afterwards) but must
//! never miss a branch whose anchor leaf the value satisfies.

use crate::op::cidr::{Parsed, parse_address, prefix_of};
use crate::op::{NumericRange, Predicate, Wildcard, lowercase};
use crate::value::{Scalar, number_key};
use aho_corasick::AhoCorasick;
use rustc_hash::FxHashMap;

pub(crate) type BranchId = u32;

/// Values → branches for one field.
#[derive(Debug, Default)]
pub(crate) struct FieldIndex {
    /// `exists: true`: any value at all.
    any_value: Vec<BranchId>,
    strings: FxHashMap<Box<str>, Vec<BranchId>>,
    numbers: FxHashMap<u64, Vec<BranchId>>,
    big_ints: FxHashMap<i128, Vec<BranchId>>,
    trues: Vec<BranchId>,
    falses: Vec<BranchId>,
    nulls: Vec<BranchId>,
    prefixes: AffixIndex,
    suffixes: AffixIndex,
    /// Keyed lowercased, probed with the lowercased value.
    prefixes_ignore_case: AffixIndex,
    suffixes_ignore_case: AffixIndex,
    equals_ignore_case: FxHashMap<Box<str>, Vec<BranchId>>,
    wildcards: WildcardIndex,
    ranges: Vec<(NumericRange, Vec<BranchId>)>,
    /// Networks by (IPv6?, prefix length), then prefix bits: an address is looked up once per
    /// prefix length, however many networks there are.
    cidrs: Vec<((bool, u8), Networks)>,
}

impl FieldIndex {
    /// Whether a predicate can serve as an index key. `anything-but` cannot: it matches
    /// almost everything, so it is only ever verified.
    pub(crate) fn indexable(predicate: &Predicate) -> bool {
        !matches!(predicate, Predicate::AnythingBut(_))
    }

    /// Whether every value this index names a branch for through `predicate` satisfies
    /// it, so that a branch with no other leaf needs no verification. Wildcards are found
    /// through one literal only; the case-folding tables are left to verification too.
    pub(crate) fn answers_exactly(predicate: &Predicate) -> bool {
        matches!(
            predicate,
            Predicate::Exact(_)
                | Predicate::Prefix(_)
                | Predicate::Suffix(_)
                | Predicate::Numeric(_)
                | Predicate::Cidr(_)
                | Predicate::Exists
        )
    }

    pub(crate) fn insert(&mut self, predicate: &Predicate, branch: BranchId) {
        use crate::value::Literal;
        match predicate {
            Predicate::Exact(Literal::Str(text)) => {
                self.strings.entry(text.clone()).or_default().push(branch)
            }
            Predicate::Exact(Literal::Num(n)) => {
                self.numbers.entry(number_key(*n)).or_default().push(branch)
            }
            Predicate::Exact(Literal::BigInt(n)) => {
                self.big_ints.entry(*n).or_default().push(branch)
            }
            Predicate::Exact(Literal::Bool(true)) => self.trues.push(branch),
            Predicate::Exact(Literal::Bool(false)) => self.falses.push(branch),
            Predicate::Exact(Literal::Null) => self.nulls.push(branch),
            Predicate::Prefix(prefix) => self.prefixes.insert(prefix, branch),
            Predicate::Suffix(suffix) => self.suffixes.insert(suffix, branch),
            Predicate::PrefixIgnoreCase(prefix) => self.prefixes_ignore_case.insert(prefix, branch),
            Predicate::SuffixIgnoreCase(suffix) => self.suffixes_ignore_case.insert(suffix, branch),
            Predicate::EqualsIgnoreCase(text) => {
                self.equals_ignore_case
                    .entry(text.clone())
                    .or_default()
                    .push(branch);
            }
            Predicate::Wildcard(wildcard) => self.wildcards.insert(wildcard, branch),
            Predicate::Numeric(range) => push_keyed(&mut self.ranges, *range, branch),
            Predicate::Cidr(cidr) => {
                let (is_v6, prefix_len, bits) = cidr.prefix();
                let networks = match self
                    .cidrs
                    .iter()
                    .position(|(kind, _)| *kind == (is_v6, prefix_len))
                {
                    Some(idx) => &mut self.cidrs[idx].1,
                    None => {
                        self.cidrs.push(((is_v6, prefix_len), FxHashMap::default()));
                        &mut self.cidrs.last_mut().expect("just pushed").1
                    }
                };
                networks.entry(bits).or_default().push(branch);
            }
            Predicate::Exists => self.any_value.push(branch),
            Predicate::AnythingBut(_) => unreachable!("anything-but is never indexed"),
        }
    }

    pub(crate) fn finish(&mut self) {
        self.wildcards.build();
    }

    /// Calls `found` with every branch this value may satisfy (possibly more than once).
    pub(crate) fn candidates(&self, value: &Scalar<'_>, found: &mut impl FnMut(&[BranchId])) {
        found(&self.any_value);
        match value {
            Scalar::Str(text) => self.string_candidates(text, found),
            Scalar::Num(n) => {
                if let Some(branches) = self.numbers.get(&number_key(*n)) {
                    found(branches);
                }
                for (range, branches) in &self.ranges {
                    if range.contains(*n) {
                        found(branches);
                    }
                }
            }
            Scalar::BigInt(n) => {
                if let Some(branches) = self.big_ints.get(n) {
                    found(branches);
                }
            }
            Scalar::Bool(true) => found(&self.trues),
            Scalar::Bool(false) => found(&self.falses),
            Scalar::Null => found(&self.nulls),
        }
    }

    fn string_candidates(&self, text: &str, found: &mut impl FnMut(&[BranchId])) {
        if let Some(branches) = self.strings.get(text) {
            found(branches);
        }
        self.prefixes.probe_prefix(text, found);
        self.suffixes.probe_suffix(text, found);
        if !self.equals_ignore_case.is_empty()
            && let Some(branches) = self.equals_ignore_case.get(&*lowercase(text))
        {
            found(branches);
        }
        if !(self.prefixes_ignore_case.is_empty() && self.suffixes_ignore_case.is_empty()) {
            if text.is_ascii() {
                // Fold only the bytes each length bucket looks at: no copy of the value.
                self.prefixes_ignore_case
                    .probe_ascii_folded(text.as_bytes(), Affix::Prefix, found);
                self.suffixes_ignore_case
                    .probe_ascii_folded(text.as_bytes(), Affix::Suffix, found);
            } else {
                let folded = lowercase(text);
                self.prefixes_ignore_case.probe_prefix(&folded, found);
                self.suffixes_ignore_case.probe_suffix(&folded, found);
            }
        }
        self.wildcards.probe(text, found);
        if !self.cidrs.is_empty()
            && let Parsed::Address(address) = parse_address(text)
        {
            for ((is_v6, prefix_len), networks) in &self.cidrs {
                // A network of the other family never holds the address.
                if address.is_ipv6() != *is_v6 {
                    continue;
                }
                if let Some(branches) = networks.get(&prefix_of(address, *prefix_len).2) {
                    found(branches);
                }
            }
        }
    }
}

fn push_keyed<K: PartialEq>(entries: &mut Vec<(K, Vec<BranchId>)>, key: K, branch: BranchId) {
    match entries.iter_mut().find(|(existing, _)| *existing == key) {
        Some((_, branches)) => branches.push(branch),
        None => entries.push((key, vec![branch])),
    }
}

/// Prefixes (or suffixes) grouped by length: a probe is one hash lookup per distinct
/// length, whatever the number of patterns.
#[derive(Debug, Default)]
struct AffixIndex {
    by_len: Vec<(usize, BytesMap)>,
}

type BytesMap = FxHashMap<Box<[u8]>, Vec<BranchId>>;

/// Networks of one family and prefix length, by their prefix bits.
type Networks = FxHashMap<u128, Vec<BranchId>>;

#[derive(Clone, Copy)]
enum Affix {
    Prefix,
    Suffix,
}

impl AffixIndex {
    /// Probes with the value's head (or tail) lowercased, for ASCII values.
    fn probe_ascii_folded(&self, bytes: &[u8], affix: Affix, found: &mut impl FnMut(&[BranchId])) {
        let mut buffer = [0u8; 64];
        for (len, map) in &self.by_len {
            let Some(start) = bytes.len().checked_sub(*len) else {
                continue;
            };
            let part = match affix {
                Affix::Prefix => &bytes[..*len],
                Affix::Suffix => &bytes[start..],
            };
            let owned;
            let folded: &[u8] = if !part.iter().any(u8::is_ascii_uppercase) {
                part
            } else if let Some(buffer) = buffer.get_mut(..*len) {
                buffer.copy_from_slice(part);
                buffer.make_ascii_lowercase();
                buffer
            } else {
                owned = part.to_ascii_lowercase();
                &owned
            };
            if let Some(branches) = map.get(folded) {
                found(branches);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.by_len.is_empty()
    }

    fn insert(&mut self, affix: &str, branch: BranchId) {
        let len = affix.len();
        let map = match self.by_len.iter_mut().position(|(l, _)| *l == len) {
            Some(idx) => &mut self.by_len[idx].1,
            None => {
                self.by_len.push((len, FxHashMap::default()));
                &mut self.by_len.last_mut().expect("just pushed").1
            }
        };
        map.entry(affix.as_bytes().into()).or_default().push(branch);
    }

    fn probe_prefix(&self, text: &str, found: &mut impl FnMut(&[BranchId])) {
        let bytes = text.as_bytes();
        for (len, map) in &self.by_len {
            if let Some(head) = bytes.get(..*len)
                && let Some(branches) = map.get(head)
            {
                found(branches);
            }
        }
    }

    fn probe_suffix(&self, text: &str, found: &mut impl FnMut(&[BranchId])) {
        let bytes = text.as_bytes();
        for (len, map) in &self.by_len {
            if let Some(start) = bytes.len().checked_sub(*len)
                && let Some(branches) = map.get(&bytes[start..])
            {
                found(branches);
            }
        }
    }
}

/// Wildcards, found through the longest literal each one requires (one pass over the value
/// for all of them); those with no literal (`*`) are candidates for every string.
#[derive(Debug, Default)]
struct WildcardIndex {
    literals: Vec<String>,
    literal_branches: Vec<Vec<BranchId>>,
    unanchored: Vec<BranchId>,
    searcher: Option<LiteralSearch>,
}

/// Finds which literals occur in a value.
#[derive(Debug)]
enum LiteralSearch {
    /// The usual case of one literal per field: a substring search that stops at the first
    /// occurrence.
    One(Box<memchr::memmem::Finder<'static>>),
    /// Overlapping matches, so that no literal hides another.
    Many(AhoCorasick),
}

impl WildcardIndex {
    fn insert(&mut self, wildcard: &Wildcard, branch: BranchId) {
        let literal = wildcard.required_literal();
        if literal.is_empty() {
            self.unanchored.push(branch);
            return;
        }
        match self.literals.iter().position(|l| l == literal) {
            Some(idx) => self.literal_branches[idx].push(branch),
            None => {
                self.literals.push(literal.to_owned());
                self.literal_branches.push(vec![branch]);
            }
        }
    }

    fn build(&mut self) {
        self.searcher = match &self.literals[..] {
            [] => None,
            [literal] => Some(LiteralSearch::One(Box::new(
                memchr::memmem::Finder::new(literal.as_bytes()).into_owned(),
            ))),
            // Literals are plain strings; building cannot fail for inputs this small.
            literals => AhoCorasick::new(literals).ok().map(LiteralSearch::Many),
        };
    }

    fn probe(&self, text: &str, found: &mut impl FnMut(&[BranchId])) {
        found(&self.unanchored);
        match &self.searcher {
            Some(LiteralSearch::One(finder)) => {
                if finder.find(text.as_bytes()).is_some() {
                    found(&self.literal_branches[0]);
                }
            }
            Some(LiteralSearch::Many(automaton)) => {
                for hit in automaton.find_overlapping_iter(text) {
                    found(&self.literal_branches[hit.pattern().as_usize()]);
                }
            }
            // Could not build: every wildcard is a candidate (still exact after verify).
            None => self
                .literal_branches
                .iter()
                .for_each(|branches| found(branches)),
        }
    }
}
