//! The complexity of the wildcard patterns on one field, computed the way aws/event-ruler's
//! `MachineComplexityEvaluator` does, so that we reject exactly the rules EventBridge rejects
//! with "Rule is too complex" (complexity >= 11). Each wildcard value is quoted (`"` + value + `"`,
//! as event-ruler stores string values) and read as a sequence of bytes and stars; the states of
//! its automaton are the prefix lengths of that sequence. The complexity is the largest number of
//! states (other than the start) that some input keeps alive at the same time: a breadth-first
//! walk of the reachable state subsets, scoring each subset. Plain values count one per state
//! (identical values once); an `anything-but` wildcard list is a single pattern whose values share
//! the states of their common prefix up to the first star and whose final states count once. The
//! walk stops as soon as a subset reaches [`MAX_COMPLEXITY`], which is all the caller needs.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

/// One wildcard-bearing pattern on a field: a plain `wildcard` value, or the whole list of an
/// `anything-but: {wildcard: [...]}` (which event-ruler counts as ONE pattern whose values share states).
#[derive(Debug, Clone, Copy)]
pub(crate) enum WildcardPattern<'a> {
    Plain(&'a str),
    AnythingBut(&'a [&'a str]),
}

/// EventBridge's limit: a rule whose complexity reaches this is rejected.
pub(crate) const MAX_COMPLEXITY: usize = 11;

/// How many state subsets the walk may visit before it gives up and reports [`MAX_COMPLEXITY`].
///
/// Uncapped, the walk is exponential in the number of patterns (event-ruler's own corpus needs
/// minutes for 16 leading-star patterns). The cap usually ends it early, because large subsets
/// score high; a field that still needs more than this many subsets to prove that it stays under
/// the limit is treated as too complex. That errs towards rejecting, never towards accepting a rule
/// EventBridge would refuse, and no rule a person writes by hand comes near the bound.
const MAX_SUBSETS: usize = 100_000;

/// The complexity of all wildcard patterns on ONE field (event-ruler sums over the patterns of one field;
/// the caller takes the max over fields). Values are the raw wildcard texts as the user wrote them
/// (escapes `\*` and `\\` still in them; they are already validated: no `**`, no bad escapes).
/// Returns min(complexity, MAX_COMPLEXITY) — stop exploring as soon as the cap is reached.
pub(crate) fn field_complexity(patterns: &[WildcardPattern<'_>]) -> usize {
    Nfa::new(patterns, true).complexity(MAX_COMPLEXITY, MAX_SUBSETS)
}

/// One element of a wildcard value after unescaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Token {
    /// A literal byte of the value's UTF-8 encoding (an escaped `*` or `\` is a literal too).
    Byte(u8),
    /// An unescaped `*`: any run of bytes, the empty one included.
    Star,
}

/// Unescapes a raw wildcard text into tokens, between quotes when `quoted` (always, outside the
/// tests that replay event-ruler's unquoted `ByteMachine` cases).
fn tokenize(raw: &str, quoted: bool) -> Vec<Token> {
    let mut tokens = Vec::with_capacity(raw.len() + 2);
    if quoted {
        tokens.push(Token::Byte(b'"'));
    }
    // Byte by byte is safe: `*` and `\` never occur inside a multi-byte UTF-8 sequence.
    let mut bytes = raw.bytes();
    while let Some(byte) = bytes.next() {
        tokens.push(match byte {
            b'*' => Token::Star,
            // Validation admits only `\*` and `\\`; anything else is taken literally.
            b'\\' => Token::Byte(bytes.next().unwrap_or(b'\\')),
            other => Token::Byte(other),
        });
    }
    if quoted {
        tokens.push(Token::Byte(b'"'));
    }
    tokens
}

/// The union of the patterns' automata. A pattern with tokens `t` has states `0..=t.len()`
/// (state `j` = the prefix `t[..j]` matched); the states of all patterns are numbered one after
/// the other.
#[derive(Debug)]
struct Nfa {
    /// Per state: the token that leads out of it (`None` at the end of its pattern).
    next: Vec<Option<Token>>,
    /// Per state: whether it comes right after a star, and so stays alive on every byte.
    loops: Vec<bool>,
    /// Per state: what it counts as when scored. States of different values of one anything-but
    /// list may share an id; a start state has none (it is never alive after a byte).
    ids: Vec<Option<usize>>,
    /// How many ids there are.
    n_ids: usize,
    /// States followed by a star, ascending: being in one means being past the star too.
    before_star: Vec<usize>,
    /// The start state of every pattern.
    starts: Vec<usize>,
    /// Every byte that occurs in a pattern, plus one that occurs in none (it stands for all of
    /// them: they lead to the same subset).
    alphabet: Vec<u8>,
}

impl Nfa {
    fn new(patterns: &[WildcardPattern<'_>], quoted: bool) -> Nfa {
        let mut nfa = Nfa {
            next: Vec::new(),
            loops: Vec::new(),
            ids: Vec::new(),
            n_ids: 0,
            before_star: Vec::new(),
            starts: Vec::new(),
            alphabet: Vec::new(),
        };
        // event-ruler keeps one `Patterns` object per distinct pattern on a field: identical plain
        // values, or identical anything-but sets, are stored (and counted) once.
        let mut plain_seen = HashSet::new();
        let mut sets_seen = HashSet::new();
        for pattern in patterns {
            match pattern {
                WildcardPattern::Plain(raw) => {
                    let tokens = tokenize(raw, quoted);
                    if plain_seen.insert(tokens.clone()) {
                        let ids: Vec<usize> = (0..tokens.len()).map(|_| nfa.fresh_id()).collect();
                        nfa.add(&tokens, &ids);
                    }
                }
                WildcardPattern::AnythingBut(raws) => {
                    let values: BTreeSet<Vec<Token>> =
                        raws.iter().map(|raw| tokenize(raw, quoted)).collect();
                    if !values.is_empty() && sets_seen.insert(values.clone()) {
                        nfa.add_anything_but(&values);
                    }
                }
            }
        }
        let mut present = [false; 256];
        for token in nfa.next.iter().flatten() {
            if let Token::Byte(byte) = token {
                present[usize::from(*byte)] = true;
            }
        }
        let absent = (0..=u8::MAX).find(|byte| !present[usize::from(*byte)]);
        nfa.alphabet = (0..=u8::MAX)
            .filter(|byte| present[usize::from(*byte)])
            .chain(absent)
            .collect();
        nfa
    }

    fn fresh_id(&mut self) -> usize {
        self.n_ids += 1;
        self.n_ids - 1
    }

    /// One anything-but list as one pattern: a state whose prefix holds no star, or ends with the
    /// first star, is shared by every value with that prefix (event-ruler's `ByteMachine` does not
    /// reuse a state once a star has made its prefix indeterminate), and all final states are one.
    /// The sharing of the state right after the first star and the merged final states are the
    /// hypothesis that reproduces event-ruler's pinned value (7 for its four leading-star strings).
    fn add_anything_but(&mut self, values: &BTreeSet<Vec<Token>>) {
        let final_id = self.fresh_id();
        let mut shared: HashMap<&[Token], usize> = HashMap::new();
        for tokens in values {
            let first_star = tokens
                .iter()
                .position(|token| *token == Token::Star)
                .unwrap_or(tokens.len());
            let mut ids = Vec::with_capacity(tokens.len());
            for j in 1..=tokens.len() {
                let id = if j == tokens.len() {
                    final_id
                } else if j <= first_star + 1 {
                    match shared.get(&tokens[..j]) {
                        Some(id) => *id,
                        None => {
                            let id = self.fresh_id();
                            shared.insert(&tokens[..j], id);
                            id
                        }
                    }
                } else {
                    self.fresh_id()
                };
                ids.push(id);
            }
            self.add(tokens, &ids);
        }
    }

    /// Adds the states of one value; `ids[j - 1]` is what state `j` counts as.
    fn add(&mut self, tokens: &[Token], ids: &[usize]) {
        let offset = self.next.len();
        self.starts.push(offset);
        for j in 0..=tokens.len() {
            self.next.push(tokens.get(j).copied());
            self.loops
                .push(j > 0 && tokens.get(j - 1).is_some_and(|t| *t == Token::Star));
            self.ids.push(j.checked_sub(1).map(|i| ids[i]));
            if tokens.get(j) == Some(&Token::Star) {
                self.before_star.push(offset + j);
            }
        }
    }

    /// The largest score of a subset reachable on a non-empty input, or `cap` as soon as a subset
    /// scores `cap` or more, or more than `max_subsets` subsets are reachable.
    fn complexity(&self, cap: usize, max_subsets: usize) -> usize {
        let mut start = Subset::new(self.next.len());
        for state in &self.starts {
            start.insert(*state);
        }
        self.close(&mut start);

        let mut stamps = vec![0_usize; self.n_ids];
        let mut visited = HashSet::new();
        let mut queue = VecDeque::from([start]);
        let mut max = 0;
        while let Some(subset) = queue.pop_front() {
            for byte in &self.alphabet {
                let successor = self.step(&subset, *byte);
                if successor.is_empty() || visited.contains(&successor) {
                    continue;
                }
                let score = self.score(&successor, &mut stamps, visited.len() + 1);
                if score >= cap || visited.len() >= max_subsets {
                    return cap;
                }
                max = max.max(score);
                visited.insert(successor.clone());
                queue.push_back(successor);
            }
        }
        max
    }

    /// The states alive after reading `byte` in `subset`.
    fn step(&self, subset: &Subset, byte: u8) -> Subset {
        let mut successor = Subset::new(self.next.len());
        for state in subset.iter() {
            if self.next[state] == Some(Token::Byte(byte)) {
                successor.insert(state + 1);
            }
            if self.loops[state] {
                successor.insert(state);
            }
        }
        self.close(&mut successor);
        successor
    }

    /// A star may match nothing: a state before a star implies the state after it. (Ascending
    /// order would also follow chains of stars, which validation rules out anyway.)
    fn close(&self, subset: &mut Subset) {
        for state in &self.before_star {
            if subset.contains(*state) {
                subset.insert(state + 1);
            }
        }
    }

    /// The number of distinct ids among the subset's states; `stamp` must differ from every
    /// earlier call's.
    fn score(&self, subset: &Subset, stamps: &mut [usize], stamp: usize) -> usize {
        let mut score = 0;
        for id in subset.iter().filter_map(|state| self.ids[state]) {
            if stamps[id] != stamp {
                stamps[id] = stamp;
                score += 1;
            }
        }
        score
    }
}

/// A set of states as a bitset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Subset(Vec<u64>);

impl Subset {
    fn new(n_states: usize) -> Subset {
        Subset(vec![0; n_states.div_ceil(64)])
    }

    fn insert(&mut self, state: usize) {
        self.0[state / 64] |= 1 << (state % 64);
    }

    fn contains(&self, state: usize) -> bool {
        self.0[state / 64] & (1 << (state % 64)) != 0
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|word| *word == 0)
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(index, word)| {
            let mut bits = *word;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(index * 64 + bit)
            })
        })
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_types,
    reason = "the cap is checked to bound real compile time"
)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// The capped complexity of one field holding the `plain` wildcards and one anything-but
    /// wildcard list per element of `anything_but`.
    fn complexity(plain: &[&str], anything_but: &[&[&str]]) -> usize {
        let patterns: Vec<WildcardPattern<'_>> = plain
            .iter()
            .map(|raw| WildcardPattern::Plain(raw))
            .chain(
                anything_but
                    .iter()
                    .map(|list| WildcardPattern::AnythingBut(list)),
            )
            .collect();
        field_complexity(&patterns)
    }

    const LEADING_STAR_STRINGS: [&str; 4] = [
        "*kiwi*",
        "*BASE_QuxB*",
        "*Delta*",
        "*a/example-lake-abc98765432*",
    ];

    #[test]
    fn single_values_from_the_notes() {
        assert_eq!(complexity(&["*"], &[]), 2);
        assert_eq!(complexity(&["*a*a*a*"], &[]), 7);
        assert_eq!(complexity(&["a*a*a*a*a*a*"], &[]), 11);
        assert_eq!(
            complexity(&["arn:aws:events:us-east-1:*:event-bus/*"], &[]),
            3
        );
        assert_eq!(
            complexity(&["/Users/*/dir/dir/dir/dir/dir/doc.txt"], &[]),
            7
        );
    }

    #[test]
    fn boundary_probes_around_the_limit() {
        assert_eq!(complexity(&["*:*:*:*:x"], &[]), 8);
        assert_eq!(complexity(&["*:*:*:*:*x"], &[]), 9);
        assert_eq!(complexity(&["*:*:*:*:*:"], &[]), 10);
        assert_eq!(complexity(&["*:*:*:*:*:event-bus/*"], &[]), MAX_COMPLEXITY);
    }

    #[test]
    fn plain_wildcards_on_one_field_add_up() {
        // 12 uncapped, per event-ruler's corpus.
        assert_eq!(complexity(&LEADING_STAR_STRINGS, &[]), MAX_COMPLEXITY);
        // m patterns `*Xy*` with distinct X (and X != y): 3m.
        for m in 1..=5_u8 {
            let values: Vec<String> = (0..m)
                .map(|i| format!("*{}y*", char::from(b'A' + i)))
                .collect();
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            let expected = (3 * usize::from(m)).min(MAX_COMPLEXITY);
            assert_eq!(complexity(&values, &[]), expected, "m = {m}");
        }
    }

    #[test]
    fn an_anything_but_list_is_one_pattern() {
        assert_eq!(complexity(&[], &[&LEADING_STAR_STRINGS]), 7);
    }

    #[test]
    fn identical_values_count_once() {
        assert_eq!(complexity(&["1*2345"; 10], &[]), 2);
    }

    #[test]
    fn escaped_star_is_a_literal() {
        assert_eq!(complexity(&["a\\*b"], &[]), complexity(&["axb"], &[]));
        assert_eq!(complexity(&["a\\*b"], &[]), 1);
        assert_eq!(complexity(&["a\\\\b"], &[]), 1);
        assert_eq!(complexity(&["\\**"], &[]), complexity(&["x*"], &[]));
    }

    #[test]
    fn no_patterns_no_complexity() {
        assert_eq!(complexity(&[], &[]), 0);
        assert_eq!(complexity(&[], &[&[]]), 0);
    }

    #[test]
    fn many_leading_star_patterns_stop_at_the_cap() {
        let values: Vec<String> = (0..16_u8)
            .map(|i| format!("*{}a*", char::from(b'a' + i)))
            .collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let started = Instant::now();
        assert_eq!(complexity(&values, &[]), MAX_COMPLEXITY);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn too_many_subsets_count_as_too_complex() {
        let values: Vec<String> = (0..16_u8)
            .map(|i| format!("*{}a*", char::from(b'a' + i)))
            .collect();
        let patterns: Vec<WildcardPattern<'_>> = values
            .iter()
            .map(|raw| WildcardPattern::Plain(raw))
            .collect();
        assert_eq!(
            Nfa::new(&patterns, true).complexity(usize::MAX, 1_000),
            usize::MAX
        );
    }

    /// Uncapped complexity of plain wildcards, quoted (as on EventBridge) or not (as in
    /// event-ruler's `ByteMachine` unit tests).
    fn uncapped(plain: &[&str], quoted: bool) -> usize {
        let patterns: Vec<WildcardPattern<'_>> = plain
            .iter()
            .map(|raw| WildcardPattern::Plain(raw))
            .collect();
        Nfa::new(&patterns, quoted).complexity(usize::MAX, MAX_SUBSETS)
    }

    #[test]
    fn uncapped_values_of_event_ruler_corpus() {
        assert_eq!(uncapped(&LEADING_STAR_STRINGS, true), 12);
        let multi_star = format!("{}*", "*a".repeat(50));
        assert_eq!(uncapped(&[&multi_star], true), 101);
        for m in [4_u8, 8] {
            let values: Vec<String> = (0..m)
                .map(|i| format!("*{}a*", char::from(b'a' + i)))
                .collect();
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            assert_eq!(uncapped(&values, true), 3 * usize::from(m));
        }
        let exploder = [
            "aahed*", "aal*ii", "aargh*", "aarti*", "a*baca", "*abaci", "a*back", "ab*acs",
            "abaf*t", "*abaka", "ab*amp", "a*band", "*abase", "abash*", "abas*k", "ab*ate",
            "aba*ya", "abbas*", "abbed*", "ab*bes", "abbey*", "*abbot", "ab*cee", "abea*m",
            "abe*ar", "a*bele", "a*bers", "abet*s", "*abhor", "abi*de", "a*bies", "*abled",
        ];
        assert_eq!(uncapped(&exploder, true), 45);
        assert_eq!(uncapped(&exploder, false), 45);
    }

    /// event-ruler's `MachineComplexityEvaluatorTest`, on bare (unquoted) ByteMachines.
    #[test]
    fn unquoted_byte_machine_cases() {
        let cases: &[(&[&str], usize)] = &[
            (&["*"], 1),
            (&["*", "ab*c"], 3),
            (&["abc"], 1),
            (&["*ab"], 2),
            (&["*aa"], 3),
            (&["a*b"], 2),
            (&["aa*"], 2),
            (&["a*bc"], 2),
            (&["a*bb"], 3),
            (&["a*bcb"], 3),
            (&["a*bbb"], 4),
            (&["*ab*ad"], 4),
            (&["*ab*d"], 3),
            (&["*aba*"], 4),
            (&["a*b*bb"], 5),
            (&["a*b*cb"], 4),
            (&["a*b*cd"], 3),
            (&["a*b*b"], 4),
            (&["a*bb*"], 4),
            (&["ab*b*"], 3),
            (&["ab*c", "x*xx"], 3),
            (&["*abc", "*abcde"], 4),
            (&["a*bcd", "ab*cd"], 4),
            (&["a*bc", "a*bcde"], 4),
            (&["a*aaa", "aa*aa"], 7),
            (&["a*bc", "abc*d"], 4),
            (&["a*aaa", "aaa*a"], 6),
            (&["a*aax", "aaa*x"], 5),
            (&["a*bc", "abc*"], 4),
            (&["a*aa", "aaa*"], 5),
            (&["abc*", "abcde*"], 3),
            (&["ab*cd", "ab*wx", "ab*yz"], 6),
            (&["*ab*b*b*"], 7),
            (&["*a*a*a*a*a*a*a*a*"], 17),
            (&["ab*c", "ab*c"], 2),
            (
                &["F*eatureFeature", "Fe*atureFeature", "Fea*tureFeature"],
                10,
            ),
        ];
        for (plain, expected) in cases {
            assert_eq!(uncapped(plain, false), *expected, "{plain:?}");
        }
    }

    #[test]
    fn quoted_two_wildcards_all_same_character() {
        // Pinned at 7 unquoted (above); quoting does not change it.
        assert_eq!(complexity(&["a*aaa", "aa*aa"], &[]), 7);
    }
}
