//! Rule files → a [`RuleSet`], or every problem found on the way.
//!
//! Each file is parsed once into a spanned TOML tree; each `[[rule]]` table is then
//! deserialized on its own, so that one broken rule does not hide the problems of the next.
//! Checks that span files (unique ids, list names, list references) run after all files
//! are read. Nothing is returned unless everything is valid: a half-loaded rule set would
//! silently stop alerting on whatever failed to load.

use super::condition::{self, Condition, PatternTest, Test};
use super::file::{ConditionDef, ForEachDef, RuleDef};
use super::lists::List;
use super::locate;
use super::silence::{self, SilenceDef, Silences};
use super::view::FieldTree;
use super::{ForEach, Rule, RuleSet};
use crate::alert::template::{DEFAULT_SUMMARY, Kind, Templates};
use crate::diagnostic::Diagnostic;
use crate::field::FieldPath;
use jiff::SignedDuration;
use meterwatch_pattern::{Matcher, MatcherBuilder, Pattern, PatternError};
use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Number, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// A rule set that could not be loaded, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in &self.diagnostics {
            writeln!(f, "{diagnostic}")?;
        }
        let n = self.diagnostics.len();
        write!(
            f,
            "{n} error{} in rule files",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for LoadError {}

/// The rule files at `paths`: files as given, directories' `*.toml` files in name order.
///
/// Hidden entries are skipped: a Kubernetes ConfigMap volume keeps its real files under
/// `..data/` and links each visible name to them, so each file is read once.
pub fn rule_files<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<PathBuf>, Vec<Diagnostic>> {
    let mut files = Vec::new();
    let mut diagnostics = Vec::new();
    for path in paths {
        let path = path.as_ref();
        if !path.is_dir() {
            files.push(path.to_owned());
            continue;
        }
        match std::fs::read_dir(path) {
            Ok(entries) => {
                let mut found: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|file| {
                        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or(".");
                        !name.starts_with('.') && name.ends_with(".toml") && file.is_file()
                    })
                    .collect();
                if found.is_empty() {
                    // A rules directory emptied by mistake (or a mount that did not happen)
                    // would otherwise be a daemon that quietly alerts on nothing.
                    diagnostics.push(Diagnostic::new(
                        path,
                        "the directory holds no rule files (`*.toml`)",
                    ));
                }
                found.sort();
                files.extend(found);
            }
            Err(error) => diagnostics.push(Diagnostic::new(
                path,
                format!("cannot read directory: {error}"),
            )),
        }
    }
    if diagnostics.is_empty() {
        Ok(files)
    } else {
        Err(diagnostics)
    }
}

pub(super) fn load<P: AsRef<Path>>(paths: &[P]) -> Result<RuleSet, LoadError> {
    let files = rule_files(paths).map_err(|diagnostics| LoadError { diagnostics })?;
    let mut loader = Loader::default();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => loader.read_file(file, text),
            Err(error) => loader.diagnostics.push(Diagnostic::new(
                &file,
                format!("cannot read rule file: {error}"),
            )),
        }
    }
    let rule_set = loader.finish()?;
    match paths.first() {
        Some(first) => with_rules(rule_set, first.as_ref()),
        None => Ok(rule_set),
    }
}

/// One rule file's `text`, named `path`, loaded as [`load`] loads a file (the fuzz targets').
pub(super) fn load_text(path: &Path, text: &str) -> Result<RuleSet, LoadError> {
    let mut loader = Loader::default();
    loader.read_file(path.to_owned(), text.to_owned());
    with_rules(loader.finish()?, path)
}

/// The span of the dotted key of most parts in `text` (the first of equals): where the TOML
/// parser's one error without a place, "recursion limit" (a key of over 80 parts), belongs.
fn longest_key(text: &str) -> Option<Range<usize>> {
    use toml_parser::parser::{Event, EventKind};
    let tokens = toml_parser::Source::new(text).lex().into_vec();
    // The key being read (start, end, parts), and the longest one so far.
    let mut current: Option<(usize, usize, usize)> = None;
    let mut longest: Option<(usize, usize, usize)> = None;
    let mut receiver = |event: Event| {
        let span = event.span();
        match event.kind() {
            EventKind::SimpleKey => {
                let (start, _, parts) = current.unwrap_or((span.start(), 0, 0));
                current = Some((start, span.end(), parts + 1));
            }
            EventKind::KeySep | EventKind::Whitespace if current.is_some() => {}
            _ => {
                if let Some(key) = current.take()
                    && longest.is_none_or(|(_, _, parts)| key.2 > parts)
                {
                    longest = Some(key);
                }
            }
        }
    };
    toml_parser::parser::parse_document(&tokens, &mut receiver, &mut ());
    longest.map(|(start, end, _)| start..end)
}

/// Lists alone alert on nothing: that is a mistake, not a rule set.
fn with_rules(rule_set: RuleSet, first: &Path) -> Result<RuleSet, LoadError> {
    if rule_set.is_empty() {
        return Err(LoadError {
            diagnostics: vec![Diagnostic::new(
                first,
                "no rules: the rule files define no `[[rule]]`",
            )],
        });
    }
    Ok(rule_set)
}

/// A file's path and text, for placing diagnostics.
#[derive(Debug)]
struct Source {
    path: PathBuf,
    text: String,
}

/// Something read from a file, with where it was read.
#[derive(Debug)]
struct Located<T> {
    source: usize,
    span: Range<usize>,
    item: T,
}

#[derive(Debug, Default)]
struct Loader {
    sources: Vec<Source>,
    lists: Vec<Located<(String, Vec<Spanned<String>>)>>,
    /// Lists defined with a problem (already reported): a rule naming one is not told the
    /// list does not exist.
    broken_lists: HashSet<String>,
    rules: Vec<Located<RuleDef>>,
    /// Every rule's id where it is written, read before the rest of the rule: a rule that
    /// fails to read still claims its id, so a second rule with it is reported too.
    ids: Vec<Located<String>>,
    diagnostics: Vec<Diagnostic>,
    templates: Templates,
    silences: Vec<Located<SilenceDef>>,
}

impl Loader {
    fn error(
        &mut self,
        source: usize,
        span: Option<Range<usize>>,
        rule: Option<&str>,
        message: String,
    ) {
        let Source { path, text } = &self.sources[source];
        let diagnostic = Diagnostic::new(path, message).at(text, span).in_rule(rule);
        self.diagnostics.push(diagnostic);
    }

    /// `path:line:col` of a span, for messages that point at a second place.
    fn place(&self, source: usize, span: Range<usize>) -> String {
        let Source { path, text } = &self.sources[source];
        let position = crate::diagnostic::Position::of(text, span);
        format!("{}:{}:{}", path.display(), position.line, position.column)
    }

    fn read_file(&mut self, path: PathBuf, text: String) {
        let source = self.sources.len();
        self.sources.push(Source { path, text });
        let text = self.sources[source].text.clone();
        let (document, syntax_errors) = DeTable::parse_recoverable(&text);
        if !syntax_errors.is_empty() {
            for error in syntax_errors {
                // The parser places every error but a key of too many parts.
                let span = error.span().or_else(|| longest_key(&text));
                let message = error.message().trim().to_owned();
                self.error(source, span, None, message);
            }
            return;
        }
        for (key, value) in document.get_ref().iter() {
            match key.get_ref().as_ref() {
                "lists" => self.read_lists(source, value),
                "rule" => match value.get_ref() {
                    DeValue::Array(tables) => {
                        for table in tables.iter() {
                            self.read_rule(source, table);
                        }
                    }
                    _ => self.error(
                        source,
                        Some(value.span()),
                        None,
                        "`rule` must be an array of tables: write each rule under `[[rule]]`"
                            .into(),
                    ),
                },
                "silence" => self.read_silences(source, value),
                other => self.error(
                    source,
                    Some(key.span()),
                    None,
                    format!(
                        "unknown top-level key `{other}`, expected `lists`, `[[rule]]` or `[[silence]]`"
                    ),
                ),
            }
        }
    }

    /// Reads `[lists]` a list at a time, so that one bad list is reported alone.
    fn read_lists(&mut self, source: usize, value: &Spanned<DeValue<'_>>) {
        let DeValue::Table(lists) = value.get_ref() else {
            let message = "`lists` must be a table: `[lists]`, then `name = [\"entry\", ...]`";
            return self.error(source, Some(value.span()), None, message.to_owned());
        };
        for (name, list) in lists.iter() {
            let name = name.get_ref().to_string();
            let span = list.span();
            match Vec::<Spanned<String>>::deserialize(ValueDeserializer::from(list.clone())) {
                Ok(entries) => self.lists.push(Located {
                    source,
                    span,
                    item: (name, entries),
                }),
                Err(error) => {
                    let message = format!(
                        "in list `{name}`: {}; a list is an array of strings",
                        error.message().trim()
                    );
                    self.error(source, error.span().or(Some(span)), None, message);
                    self.broken_lists.insert(name);
                }
            }
        }
    }

    fn read_silences(&mut self, source: usize, value: &Spanned<DeValue<'_>>) {
        let DeValue::Array(tables) = value.get_ref() else {
            let message = "`silence` must be an array of tables: write each under `[[silence]]`";
            return self.error(source, Some(value.span()), None, message.to_owned());
        };
        for table in tables.iter() {
            match SilenceDef::deserialize(ValueDeserializer::from(table.clone())) {
                Ok(def) => self.silences.push(Located {
                    source,
                    span: table.span(),
                    item: def,
                }),
                Err(error) => {
                    let span = error.span().or(Some(table.span()));
                    let message = format!("in a silence: {}", error.message().trim());
                    self.error(source, span, None, message);
                }
            }
        }
    }

    /// Compiles every `[[silence]]`, reporting bad ones and repeated ids.
    fn build_silences(&mut self) -> Silences {
        let mut compiled = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        for located in std::mem::take(&mut self.silences) {
            let place = self.place(located.source, located.span.clone());
            let id = located.item.id.clone();
            if let Some(first) = seen.get(&id) {
                let message = format!("duplicate silence id `{id}`: already defined in {first}");
                self.error(located.source, Some(located.span), None, message);
                continue;
            }
            seen.insert(id, place.clone());
            let mut problems = Vec::new();
            let mut report = |span, message| problems.push((span, message));
            if let Some(silence) = silence::compile_def(located.item, place, &mut report) {
                compiled.push(silence);
            }
            for (span, message) in problems {
                let span = Option::or(span, Some(located.span.clone()));
                self.error(located.source, span, None, message);
            }
        }
        Silences::new(compiled)
    }

    fn read_rule(&mut self, source: usize, table: &Spanned<DeValue<'_>>) {
        let id = table
            .get_ref()
            .get("id")
            .and_then(|id| id.get_ref().as_str())
            .map(str::to_owned);
        if let Some(id) = &id {
            self.ids.push(Located {
                source,
                span: table.span(),
                item: id.clone(),
            });
        }
        match RuleDef::deserialize(ValueDeserializer::from(table.clone())) {
            Ok(rule) => self.rules.push(Located {
                source,
                span: table.span(),
                item: rule,
            }),
            Err(error) => {
                let span = error.span().or(Some(table.span()));
                self.error(
                    source,
                    span,
                    id.as_deref(),
                    error.message().trim().to_owned(),
                );
            }
        }
    }

    fn finish(mut self) -> Result<RuleSet, LoadError> {
        let lists = self.build_lists();
        self.check_inhibits();
        let silences = self.build_silences();
        let duplicates = self.duplicate_ids();
        let mut rules = Vec::new();
        let mut builder = MatcherBuilder::default();
        let mut n_patterns = 0;
        for (idx, located) in std::mem::take(&mut self.rules).into_iter().enumerate() {
            if duplicates.contains(&(located.source, located.span.start)) {
                continue;
            }
            let id = located.item.id.clone();
            let mut context = RuleContext {
                loader: &mut self,
                source: located.source,
                span: located.span.clone(),
                id: &id,
                lists: &lists,
                ok: true,
            };
            if let Some((mut rule, pattern)) = context.compile(located.item) {
                if rule.enabled {
                    builder.add(Some(idx), pattern);
                    n_patterns += 1;
                    // The fields its conditions read are captured by the matching pass, and
                    // their `match` value lists are patterns of it (under no rule).
                    let (mut fields, mut patterns) = (Vec::new(), Vec::new());
                    for condition in &mut rule.conditions {
                        condition.parts_mut(&mut fields, &mut patterns);
                    }
                    for field in fields {
                        field.capture = Some(builder.want(field.path.as_str()));
                    }
                    for test in patterns {
                        builder.add(None, test.pattern.clone());
                        test.id = Some(n_patterns);
                        n_patterns += 1;
                    }
                    if let crate::state::Gate::Absence(spec) = &rule.controls.gate {
                        rule.heartbeat_key = spec
                            .group_by
                            .fields
                            .iter()
                            .map(|path| {
                                let mut field = condition::Field::new(path.clone());
                                field.capture = Some(builder.want(path.as_str()));
                                field
                            })
                            .collect();
                    }
                }
                rules.push((idx, rule));
            }
        }
        if !self.diagnostics.is_empty() {
            self.diagnostics.sort_by_key(|d| {
                let position = d.position.as_ref().map(|p| (p.line, p.column));
                (d.file.clone(), position)
            });
            return Err(LoadError {
                diagnostics: self.diagnostics,
            });
        }
        // The matcher refers to rules by their position among all parsed rules; with no
        // errors every parsed rule compiled, so those positions are the final ones.
        debug_assert!(rules.iter().enumerate().all(|(pos, (idx, _))| pos == *idx));
        let mut view = FieldTree::default();
        for path in crate::alert::content::FIELDS {
            view.add(&FieldPath::parse(path).expect("content paths are valid"));
        }
        for (_, rule) in &rules {
            for field in &rule.fields {
                view.add(field);
            }
            for for_each in &rule.for_each {
                view.add(&for_each.array);
            }
        }
        let envelope_fields = crate::envelope::EnvelopeFields::PATHS.map(|path| builder.want(path));
        Ok(RuleSet {
            rules: rules.into_iter().map(|(_, rule)| rule).collect(),
            envelope_fields,
            matcher: builder.build(),
            lists,
            view,
            templates: self.templates,
            silences: Arc::new(silences),
        })
    }

    /// Reports every problem with the rules' `inhibits` (`super::inhibit::check`).
    fn check_inhibits(&mut self) {
        let known: HashSet<&str> = self.ids.iter().map(|id| id.item.as_str()).collect();
        let declared: Vec<_> = (self.rules.iter())
            .map(|located| super::inhibit::Declared {
                source: located.source,
                id: &located.item.id,
                absence: located.item.absence.is_some(),
                inhibits: &located.item.inhibits,
            })
            .collect();
        for problem in super::inhibit::check(&declared, &known) {
            let Source { path, text } = &self.sources[problem.source];
            let diagnostic = Diagnostic::new(path, problem.message)
                .at(text, Some(problem.span))
                .in_rule(Some(&problem.rule));
            self.diagnostics.push(diagnostic);
        }
    }

    /// Reports every rule whose id an earlier rule has (whether or not either read well),
    /// and returns where they are (source, start of the rule's table).
    fn duplicate_ids(&mut self) -> HashSet<(usize, usize)> {
        let mut seen: HashMap<String, (usize, Range<usize>)> = HashMap::new();
        let mut duplicates = HashSet::new();
        for located in std::mem::take(&mut self.ids) {
            let id = located.item;
            match seen.get(&id) {
                Some((first, first_span)) => {
                    let first_path = self.place(*first, first_span.clone());
                    let message = format!(
                        "duplicate rule id `{id}`: already defined in {first_path}; ids must be unique across all rule files"
                    );
                    duplicates.insert((located.source, located.span.start));
                    self.error(located.source, Some(located.span), Some(&id), message);
                }
                None => {
                    seen.insert(id, (located.source, located.span));
                }
            }
        }
        duplicates
    }

    fn build_lists(&mut self) -> BTreeMap<String, Arc<List>> {
        let mut lists = BTreeMap::new();
        let mut defined: HashMap<String, (usize, Range<usize>)> = HashMap::new();
        for located in std::mem::take(&mut self.lists) {
            let (name, entries) = located.item;
            if let Some((first, first_span)) = defined.get(&name) {
                let first_path = self.place(*first, first_span.clone());
                let message = format!(
                    "list `{name}` is already defined in {first_path}; define each list once"
                );
                self.error(located.source, Some(located.span), None, message);
                continue;
            }
            defined.insert(name.clone(), (located.source, located.span.clone()));
            let mut valid = true;
            for entry in &entries {
                if let Err(error) = List::new([entry.get_ref().as_str()]) {
                    let message = format!("in list `{name}`: invalid wildcard: {}", error.reason());
                    self.error(located.source, Some(entry.span()), None, message);
                    valid = false;
                }
            }
            if valid {
                let list = List::new(entries.iter().map(|e| e.get_ref().as_str()))
                    .expect("every entry was checked above");
                lists.insert(name, Arc::new(list));
            } else {
                self.broken_lists.insert(name);
            }
        }
        lists
    }
}

/// Compiling one rule: reports problems in its name, remembers whether any occurred.
pub(super) struct RuleContext<'l> {
    loader: &'l mut Loader,
    source: usize,
    span: Range<usize>,
    id: &'l str,
    pub(super) lists: &'l BTreeMap<String, Arc<List>>,
    ok: bool,
}

impl RuleContext<'_> {
    pub(super) fn error(&mut self, span: Option<Range<usize>>, message: String) {
        self.ok = false;
        let span = span.or(Some(self.span.clone()));
        let id = self.id.to_owned();
        self.loader.error(self.source, span, Some(&id), message);
    }

    fn compile(&mut self, def: RuleDef) -> Option<(Rule, Pattern)> {
        if !is_kebab_case(&def.id) {
            self.error(
                None,
                format!(
                    "rule id `{}` must be kebab-case: lowercase letters, digits and single dashes",
                    def.id
                ),
            );
        }
        let pattern = match (&def.pattern, &def.match_json) {
            (Some(toml_pattern), None) => self.toml_pattern("match", toml_pattern),
            (None, Some(json)) => match Pattern::parse(json.get_ref()) {
                // A pattern that parsed is JSON.
                Ok(pattern) => serde_json::from_str(json.get_ref())
                    .ok()
                    .map(|value| (pattern, value)),
                Err(error) => {
                    self.error(Some(json.span()), pattern_message("match_json", &error));
                    None
                }
            },
            (Some(_), Some(json)) => {
                self.error(
                    Some(json.span()),
                    "give either `match` or `match_json`, not both".into(),
                );
                None
            }
            (None, None) => {
                self.error(None, "missing `match` (an EventBridge pattern as TOML) or `match_json` (one as JSON text)".into());
                None
            }
        };
        let conditions: Vec<Condition> = def
            .conditions
            .into_iter()
            .filter_map(|condition| self.condition(condition))
            .collect();
        let for_each: Vec<ForEach> = def
            .for_each
            .into_iter()
            .filter_map(|for_each| self.for_each(for_each))
            .collect();
        let controls = self.controls(
            &def.dedup,
            &def.throttle,
            &def.group,
            &def.threshold,
            &def.absence,
        );
        let (pattern, pattern_json) = pattern?;
        if !self.ok {
            return None;
        }
        let mut fields: Vec<FieldPath> = Vec::new();
        let mut add_field = |field: &FieldPath| {
            if !fields.contains(field) {
                fields.push(field.clone());
            }
        };
        let branches = pattern
            .branches()
            .expect("a parsed pattern's branches were checked when it was parsed");
        for leaf in branches.iter().flatten() {
            if let Ok(path) = FieldPath::parse(&leaf.path) {
                add_field(&path);
            }
        }
        for field in conditions.iter().flat_map(Condition::fields) {
            add_field(&field.path);
        }
        // Group keys are read from the same parsed fields (and shown in `matched`).
        for field in controls.group_by().into_iter().flat_map(|g| &g.fields) {
            add_field(field);
        }
        self.template(&def.id, Kind::Title, &def.title);
        match &def.summary {
            Some(summary) => self.template(&def.id, Kind::Summary, summary),
            None => {
                let default = Spanned::new(self.span.clone(), DEFAULT_SUMMARY.to_owned());
                self.template(&def.id, Kind::Summary, &default);
            }
        }
        if let Some(body) = &def.body {
            self.template(&def.id, Kind::Body, body);
        }
        if !self.ok {
            return None;
        }
        let rule = Rule {
            pattern_json,
            next_steps: def.next_steps,
            id: def.id.as_str().into(),
            title: def.title.get_ref().as_str().into(),
            description: def.description,
            severity: def.severity,
            enabled: def.enabled,
            file: self.loader.sources[self.source].path.clone(),
            conditions,
            for_each,
            fields,
            controls: Arc::new(controls),
            heartbeat_key: Vec::new(),
            inhibits: def
                .inhibits
                .iter()
                .map(|id| id.get_ref().as_str().into())
                .collect(),
        };
        Some((rule, pattern))
    }

    /// Compiles one of the rule's templates (and renders it against a sample event).
    fn template(&mut self, id: &str, kind: Kind, source: &Spanned<String>) {
        if let Err(message) = self.loader.templates.add(id, kind, source.get_ref()) {
            self.error(
                Some(source.span()),
                format!("invalid `{}` template: {message}", kind.as_str()),
            );
        }
    }

    /// A pattern written as TOML, e.g. `match.detail.errorCode = [{ exists = true }]`.
    fn toml_pattern(
        &mut self,
        key: &str,
        value: &Spanned<toml::Value>,
    ) -> Option<(Pattern, Value)> {
        let json = match to_json(value.get_ref(), key) {
            Ok(json) => json,
            Err(message) => {
                self.error(Some(value.span()), message);
                return None;
            }
        };
        match Pattern::from_json(&json) {
            Ok(pattern) => Some((pattern, json)),
            Err(error) => {
                let keys: Vec<&str> = key.split('.').collect();
                let text = &self.loader.sources[self.source].text;
                let span =
                    locate::pattern_key(text, &self.span, &keys, error.path(), error.reason());
                self.error(span.or(Some(value.span())), pattern_message(key, &error));
                None
            }
        }
    }

    pub(super) fn field(&mut self, text: &str, span: &Range<usize>) -> Option<FieldPath> {
        match FieldPath::parse(text) {
            Ok(path) => Some(path),
            Err(message) => {
                self.error(Some(span.clone()), message);
                None
            }
        }
    }

    fn condition(&mut self, def: Spanned<ConditionDef>) -> Option<Condition> {
        let span = def.span();
        let mut def = def.into_inner();
        let group = match (def.any.take(), def.all.take()) {
            (Some(_), Some(_)) => {
                self.error(
                    Some(span),
                    "give either `any` or `all`, not both: nest one in the other".into(),
                );
                return None;
            }
            (Some(entries), None) => Some(("any", entries, Condition::Any as fn(_) -> _)),
            (None, Some(entries)) => Some(("all", entries, Condition::All as fn(_) -> _)),
            (None, None) => None,
        };
        if let Some((kind, entries, group)) = group {
            if def.field.is_some() || has_test(&def) {
                self.error(Some(span), format!("an `{kind}` entry holds only other entries: move `field` and its test into one of them"));
                return None;
            }
            if entries.is_empty() {
                self.error(Some(span), format!("`{kind}` needs at least one entry"));
                return None;
            }
            let compiled: Vec<Condition> = entries
                .into_iter()
                .filter_map(|entry| self.condition(entry))
                .collect();
            return Some(group(compiled));
        }
        let Some(field) = def.field.clone() else {
            self.error(
                Some(span),
                "missing `field`: the dotted path of the field to test (or `any = [...]`, `all = [...]`)".into(),
            );
            return None;
        };
        let field_texts = field.into_vec();
        if field_texts.is_empty() {
            self.error(Some(span), "`field` lists no paths".into());
            return None;
        }
        let mut fields = Vec::new();
        for text in &field_texts {
            fields.push(condition::Field::new(self.field(text, &span)?));
        }
        let tests = test_names(&def);
        if tests.len() != 1 {
            let found = if tests.is_empty() {
                "none".to_owned()
            } else {
                tests.join(", ")
            };
            self.error(Some(span), format!("a `where` entry needs exactly one test (regex, not_regex, in_list, not_in_list, equals_field, not_equals_field, older_than, newer_than, match); found {found}"));
            return None;
        }
        let text = describe(&def, tests[0]);
        let test = self.test(def, &field_texts)?;
        Some(Condition::Test {
            fields,
            test: Box::new(test),
            text,
        })
    }

    fn test(&mut self, def: ConditionDef, fields: &[String]) -> Option<Test> {
        let negatable = |positive: Option<Spanned<String>>, negative: Option<Spanned<String>>| {
            positive.map(|p| (p, false)).or(negative.map(|n| (n, true)))
        };
        if let Some((text, negated)) = negatable(def.regex, def.not_regex) {
            return match Regex::new(text.get_ref()) {
                Ok(regex) => Some(Test::Regex { regex, negated }),
                Err(error) => {
                    self.error(
                        Some(text.span()),
                        format!("invalid regular expression: {error}"),
                    );
                    None
                }
            };
        }
        if let Some((name, negated)) = negatable(def.in_list, def.not_in_list) {
            return match self.lists.get(name.get_ref()) {
                Some(list) => Some(Test::InList {
                    list: Arc::clone(list),
                    negated,
                }),
                // Its definition's problem is reported already.
                None if self.loader.broken_lists.contains(name.get_ref()) => {
                    self.ok = false;
                    None
                }
                None => {
                    let known: Vec<&str> = self.lists.keys().map(String::as_str).collect();
                    let known = if known.is_empty() {
                        "none (define lists under `[lists]` in any rule file)".to_owned()
                    } else {
                        known.join(", ")
                    };
                    let message =
                        format!("no list named `{}`; lists defined: {known}", name.get_ref());
                    self.error(Some(name.span()), message);
                    None
                }
            };
        }
        if let Some((other, negated)) = negatable(def.equals_field, def.not_equals_field) {
            let other = self.field(other.get_ref(), &other.span())?;
            return Some(Test::EqualsField {
                other: condition::Field::new(other),
                negated,
            });
        }
        if let Some(text) = &def.older_than {
            return self.duration(text).map(Test::OlderThan);
        }
        if let Some(text) = &def.newer_than {
            return self.duration(text).map(Test::NewerThan);
        }
        let values = def
            .values
            .expect("test_names found exactly one test, and it is `match`");
        let value_span = values.span();
        let json_values = match to_json(values.get_ref(), "match") {
            Ok(json) => json,
            Err(message) => {
                self.error(Some(value_span), message);
                return None;
            }
        };
        // `{field: values}`, or one alternative per field when values are pooled from several.
        let per_field = |field: &String| {
            let mut object = Map::new();
            object.insert(field.clone(), json_values.clone());
            Value::Object(object)
        };
        let pattern_json = match fields {
            [field] => per_field(field),
            many => {
                let mut object = Map::new();
                object.insert(
                    "$or".into(),
                    Value::Array(many.iter().map(per_field).collect()),
                );
                Value::Object(object)
            }
        };
        match Pattern::from_json(&pattern_json) {
            Ok(pattern) => Some(Test::Pattern(PatternTest { pattern, id: None })),
            Err(error) => {
                self.error(Some(value_span), pattern_message("where.match", &error));
                None
            }
        }
    }

    pub(super) fn duration(&mut self, text: &Spanned<String>) -> Option<SignedDuration> {
        match text.get_ref().parse::<SignedDuration>() {
            Ok(duration) if duration.is_positive() => Some(duration),
            _ => {
                let message = format!(
                    "`{}` is not a positive duration: expected e.g. \"90m\", \"6h\" or \"2d\"",
                    text.get_ref()
                );
                self.error(Some(text.span()), message);
                None
            }
        }
    }

    fn for_each(&mut self, def: Spanned<ForEachDef>) -> Option<ForEach> {
        let span = def.span();
        let def = def.into_inner();
        let array = self.field(&def.array, &span)?;
        let pattern = match &def.pattern {
            None => None,
            Some(value) => Some(single(self.toml_pattern("for_each.match", value)?.0)),
        };
        Some(ForEach { array, pattern })
    }
}

/// A matcher for one pattern.
fn single(pattern: Pattern) -> Matcher<()> {
    let mut builder = MatcherBuilder::default();
    builder.add((), pattern);
    builder.build()
}

fn pattern_message(key: &str, error: &PatternError) -> String {
    let mut message = if error.path().is_empty() {
        format!("invalid EventBridge pattern in `{key}`: {}", error.reason())
    } else {
        format!(
            "invalid EventBridge pattern in `{key}` at `{}`: {}",
            error.path(),
            error.reason()
        )
    };
    // AWS's reason names only the culprit: say what is expected too.
    if error.reason().starts_with("Unrecognized match type") {
        let operators = meterwatch_pattern::pattern::OPERATORS.join("`, `");
        message.push_str(&format!("; expected one of `{operators}`"));
    }
    message
}

fn test_names(def: &ConditionDef) -> Vec<&'static str> {
    [
        ("regex", def.regex.is_some()),
        ("not_regex", def.not_regex.is_some()),
        ("in_list", def.in_list.is_some()),
        ("not_in_list", def.not_in_list.is_some()),
        ("equals_field", def.equals_field.is_some()),
        ("not_equals_field", def.not_equals_field.is_some()),
        ("older_than", def.older_than.is_some()),
        ("newer_than", def.newer_than.is_some()),
        ("match", def.values.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, present)| present.then_some(name))
    .collect()
}

/// The test as written, e.g. `not_in_list = "allowed_principals"`, for explanations.
fn describe(def: &ConditionDef, name: &str) -> String {
    let text = [
        &def.regex,
        &def.not_regex,
        &def.in_list,
        &def.not_in_list,
        &def.equals_field,
        &def.not_equals_field,
        &def.older_than,
        &def.newer_than,
    ]
    .into_iter()
    .flatten()
    .next()
    .map(|text| Value::String(text.get_ref().clone()));
    let value = text
        .or_else(|| {
            def.values
                .as_ref()
                .and_then(|values| to_json(values.get_ref(), "match").ok())
        })
        .unwrap_or(Value::Null);
    format!("{name} = {value}")
}

fn has_test(def: &ConditionDef) -> bool {
    !test_names(def).is_empty()
}

fn is_kebab_case(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && !id.ends_with('-')
        && !id.contains("--")
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A TOML value as the JSON EventBridge patterns are written in.
fn to_json(value: &toml::Value, at: &str) -> Result<Value, String> {
    Ok(match value {
        toml::Value::String(text) => Value::String(text.clone()),
        toml::Value::Integer(number) => Value::Number((*number).into()),
        toml::Value::Float(number) => Number::from_f64(*number)
            .map(Value::Number)
            .ok_or_else(|| format!("`{at}` holds {number}, which JSON cannot express"))?,
        toml::Value::Boolean(flag) => Value::Bool(*flag),
        toml::Value::Datetime(datetime) => {
            return Err(format!(
                "`{at}` holds the TOML date-time {datetime}; EventBridge patterns compare strings: quote it"
            ));
        }
        toml::Value::Array(elements) => Value::Array(
            elements
                .iter()
                .map(|element| to_json(element, at))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(table) => {
            let mut object = Map::new();
            for (key, child) in table {
                object.insert(key.clone(), to_json(child, &format!("{at}.{key}"))?);
            }
            Value::Object(object)
        }
    })
}

/// Loads rule files given as (name, text): the rules tests load rules without files.
#[cfg(test)]
pub(super) fn load_texts(files: &[(&str, &str)]) -> Result<RuleSet, LoadError> {
    let mut loader = Loader::default();
    for (name, text) in files {
        loader.read_file(PathBuf::from(name), (*text).to_owned());
    }
    loader.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::{HEAD, fired, record, rule};

    fn load_one(text: &str) -> Result<RuleSet, LoadError> {
        load_texts(&[("r.toml", text)])
    }

    #[test]
    fn issue_20_a_key_of_too_many_parts_is_placed_at_the_key() {
        let key = vec!["a"; 90].join(".");
        for text in [
            format!("[[rule]]\nid = \"x\"\n{key} = 1\n"),
            format!("# {key}\n[{key}]\nx = 1\n"),
        ] {
            let error = load_one(&text).expect_err("too deep for the TOML parser");
            let [diagnostic] = error.diagnostics.as_slice() else {
                panic!("one diagnostic: {error}");
            };
            assert!(
                diagnostic.message.contains("recursion limit"),
                "{diagnostic}"
            );
            let position = diagnostic.position.as_ref().expect("a place");
            let line = text
                .lines()
                .position(|line| !line.starts_with('#') && line.contains(&key));
            assert_eq!(Some(position.line - 1), line, "{diagnostic}");
            assert!(position.column <= 2, "{diagnostic}");
        }
    }

    /// The diagnostics' first lines.
    fn errors(text: &str) -> Vec<String> {
        let error = load_one(text).expect_err("the rules are invalid");
        error
            .diagnostics
            .iter()
            .map(|d| d.to_string().lines().next().unwrap_or("").to_owned())
            .collect()
    }

    #[test]
    fn match_json_and_match_are_the_same_pattern() {
        let toml_rule = rule("match.detail.errorCode = [{ prefix = \"Throttl\" }]\n");
        let json_rule =
            rule("match_json = '''{\"detail\": {\"errorCode\": [{\"prefix\": \"Throttl\"}]}}'''\n");
        let event = record(serde_json::json!({"errorCode": "ThrottlingException"}));
        assert_eq!(fired(&toml_rule, event.clone()), ["r"]);
        assert_eq!(fired(&json_rule, event), ["r"]);
    }

    #[test]
    fn disabled_rules_are_checked_but_never_fire() {
        let rule_set = rule("enabled = false\nmatch.detail.eventName = [\"MeterUsage\"]\n");
        assert_eq!(rule_set.len(), 1);
        assert!(fired(&rule_set, record(serde_json::json!({}))).is_empty());
        let broken = errors(&format!(
            "{HEAD}enabled = false\nmatch.detail.x = [{{ nope = 1 }}]\n"
        ));
        assert_eq!(broken.len(), 1, "{broken:?}");
    }

    #[test]
    fn problems_are_all_reported_with_positions() {
        let text = format!(
            "{HEAD}match.detail.x = [1]\nmatch_json = '{{}}'\n\
             [[rule]]\nid = \"Bad_Id\"\ntitle = \"B\"\nseverity = \"low\"\nmatch.detail.x = [1]\n\
             [[rule]]\nid = \"no-match\"\ntitle = \"N\"\nseverity = \"low\"\n\
             [[rule]]\nid = \"bad-where\"\ntitle = \"W\"\nseverity = \"low\"\nmatch.detail.x = [1]\n\
             [[rule.where]]\nfield = \"detail..x\"\nregex = \"(\"\n\
             [[rule.where]]\nfield = \"detail.t\"\nolder_than = \"soon\"\n\
             [[rule.where]]\nfield = \"detail.t\"\n\
             [[rule.where]]\nfield = \"detail.t\"\nregex = \"a\"\nnot_regex = \"b\"\n"
        );
        let found = errors(&text);
        let expected = [
            "r.toml:6:14: error[r]: give either `match` or `match_json`, not both",
            "r.toml:7:1: error[Bad_Id]: rule id `Bad_Id` must be kebab-case: lowercase letters, digits and single dashes",
            "r.toml:12:1: error[no-match]: missing `match` (an EventBridge pattern as TOML) or `match_json` (one as JSON text)",
            "r.toml:21:1: error[bad-where]: `detail..x` is not a field path: expected names separated by single dots, e.g. `detail.errorCode`",
            "r.toml:26:14: error[bad-where]: `soon` is not a positive duration: expected e.g. \"90m\", \"6h\" or \"2d\"",
            "r.toml:27:1: error[bad-where]: a `where` entry needs exactly one test (regex, not_regex, in_list, not_in_list, equals_field, not_equals_field, older_than, newer_than, match); found none",
            "r.toml:29:1: error[bad-where]: a `where` entry needs exactly one test (regex, not_regex, in_list, not_in_list, equals_field, not_equals_field, older_than, newer_than, match); found regex, not_regex",
        ];
        assert_eq!(found, expected);
    }

    #[test]
    fn toml_syntax_errors_and_unknown_top_level_keys() {
        let found = errors("[[rule]]\nid = \"x\nseverity = 1\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found,
            ["r.toml:2:8: error: invalid basic string, expected `\"`"]
        );
        let found = errors("[rules]\nx = 1\n");
        assert_eq!(
            found,
            [
                "r.toml:1:2: error: unknown top-level key `rules`, expected `lists`, `[[rule]]` or `[[silence]]`"
            ]
        );
    }

    #[test]
    fn date_times_in_patterns_are_errors() {
        let found = errors(&format!(
            "{HEAD}match.detail.eventTime = [2020-07-10T23:06:42Z]\n"
        ));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("quote it"), "{found:?}");
    }

    #[test]
    fn lists_are_defined_once_with_valid_wildcards() {
        let found = load_texts(&[
            ("a.toml", "[lists]\nx = [\"a\"]\n"),
            ("b.toml", "[lists]\nx = [\"b\"]\ny = [\"c**\"]\n"),
        ])
        .expect_err("invalid lists");
        let lines: Vec<String> = found
            .diagnostics
            .iter()
            .map(|d| d.to_string().lines().next().unwrap_or("").to_owned())
            .collect();
        assert_eq!(
            lines,
            [
                "b.toml:2:5: error: list `x` is already defined in a.toml:2:5; define each list once",
                "b.toml:3:6: error: in list `y`: invalid wildcard: Consecutive wildcard characters at pos 2",
            ]
        );
    }

    /// One mistake does not hide another: a rule that fails to read still claims its id,
    /// and a broken list is reported once, not again by each rule naming it.
    #[test]
    fn a_mistake_does_not_hide_or_repeat_others() {
        let text = format!(
            "[lists]\ngood = [\"a\"]\nbad = [1]\nwild = [\"c**\"]\n\
             {HEAD}titel = \"typo\"\nmatch.detail.x = [1]\n\
             {HEAD}match.detail.x = [1]\n\
             [[rule]]\nid = \"uses-lists\"\ntitle = \"U\"\nseverity = \"low\"\nmatch.detail.x = [1]\n\
             [[rule.where]]\nfield = \"detail.a\"\nin_list = \"good\"\n\
             [[rule.where]]\nfield = \"detail.b\"\nin_list = \"bad\"\n\
             [[rule.where]]\nfield = \"detail.c\"\nin_list = \"wild\"\n"
        );
        let found = errors(&text);
        let expected = [
            "r.toml:3:8: error: in list `bad`: invalid type: integer `1`, expected a string; a list is an array of strings",
            "r.toml:4:9: error: in list `wild`: invalid wildcard: Consecutive wildcard characters at pos 2",
            "r.toml:9:1: error[r]: unknown field `titel`, expected one of `id`, `title`, `summary`, `body`, `next_steps`, `description`, `severity`, `enabled`, `match`, `match_json`, `where`, `for_each`, `dedup`, `throttle`, `group`, `threshold`, `absence`, `inhibits`",
            "r.toml:11:1: error[r]: duplicate rule id `r`: already defined in r.toml:5:1; ids must be unique across all rule files",
        ];
        assert_eq!(found, expected);
    }

    #[test]
    fn empty_or_doubled_groups_are_errors() {
        let found = errors(&format!(
            "{HEAD}match.detail.x = [1]\n[[rule.where]]\nall = []\n\
             [[rule.where]]\nany = [{{ field = \"detail.a\", match = [1] }}]\nall = [{{ field = \"detail.a\", match = [1] }}]\n"
        ));
        assert_eq!(
            found,
            [
                "r.toml:6:1: error[r]: `all` needs at least one entry",
                "r.toml:8:1: error[r]: give either `any` or `all`, not both: nest one in the other",
            ]
        );
    }

    #[test]
    fn a_severity_of_the_wrong_type_is_told_the_names() {
        let found =
            errors("[[rule]]\nid = \"r\"\ntitle = \"R\"\nseverity = 3\nmatch.detail.x = [1]\n");
        assert_eq!(
            found,
            [
                "r.toml:4:12: error[r]: invalid type: integer `3`, expected one of `info`, `low`, `medium`, `high`, `critical`"
            ]
        );
    }

    #[test]
    fn noise_controls_are_compiled_with_their_defaults() {
        use crate::state::{Gate, absence, dedup, group};
        use std::time::Duration;
        let rule_set = rule("match.detail.x = [1]\n");
        assert_eq!(
            rule_set.rules()[0].controls.dedup,
            Some(dedup::DEFAULT_WINDOW)
        );
        let rule_set = rule(
            "match.detail.x = [1]\n[rule.dedup]\nwindow = \"2h\"\n[rule.group]\ngroup_by = [\"account\"]\n",
        );
        let controls = &rule_set.rules()[0].controls;
        assert_eq!(controls.dedup, Some(Duration::from_secs(7200)));
        let Gate::Group(spec) = &controls.gate else {
            panic!("expected a group, got {:?}", controls.gate);
        };
        assert_eq!(
            (spec.wait, spec.interval),
            (group::DEFAULT_WAIT, group::DEFAULT_INTERVAL)
        );
        assert_eq!(spec.group_by.fields[0].as_str(), "account");
        let rule_set = load_one(&format!(
            "[lists]\nexpected = [\"p\"]\n{HEAD}match.detail.x = [1]\n[rule.absence]\ngroup_by = [\"detail.p\"]\nexpected_list = \"expected\"\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let controls = &rule_set.rules()[0].controls;
        assert_eq!(controls.dedup, None, "heartbeats are not deduplicated");
        let Gate::Absence(spec) = &controls.gate else {
            panic!("expected an absence, got {:?}", controls.gate);
        };
        assert_eq!(
            (spec.interval, spec.grace),
            (absence::DEFAULT_INTERVAL, absence::DEFAULT_GRACE)
        );
        assert_eq!(
            spec.expected,
            Some(("expected".to_owned(), vec!["p".to_owned()]))
        );
    }

    #[test]
    fn mistakes_in_noise_controls_are_precise_errors() {
        let text = format!(
            "[lists]\nstars = [\"a*\"]\n\
             {HEAD}match.detail.x = [1]\n[rule.dedup]\nwindow = \"forever\"\n\
             [rule.throttle]\ngroup_by = [\"detail..x\"]\ninterval = \"1h\"\n\
             [[rule]]\nid = \"two\"\ntitle = \"T\"\nseverity = \"low\"\nmatch.detail.x = [1]\n\
             [rule.throttle]\ninterval = \"1h\"\n[rule.group]\nwait = \"1s\"\n\
             [[rule]]\nid = \"count\"\ntitle = \"C\"\nseverity = \"low\"\nmatch.detail.x = [1]\n\
             [rule.threshold]\ncount = 0\nwindow = \"10m\"\n\
             [[rule]]\nid = \"absent\"\ntitle = \"A\"\nseverity = \"low\"\nmatch.detail.x = [1]\n\
             [rule.absence]\ngroup_by = [\"detail.p\"]\nexpected_list = \"nope\"\n\
             [[rule]]\nid = \"starred\"\ntitle = \"S\"\nseverity = \"low\"\nmatch.detail.x = [1]\n\
             [rule.absence]\ngroup_by = [\"detail.p\"]\nexpected_list = \"stars\"\n\
             [[rule]]\nid = \"nothing\"\ntitle = \"N\"\nseverity = \"low\"\nmatch.detail.x = [1]\n\
             [rule.absence]\ngroup_by = [\"detail.p\"]\ninterval = \"1h\"\nsomething = 1\n"
        );
        let found = errors(&text);
        let expected = [
            "r.toml:9:10: error[r]: `forever` is not a positive duration: expected e.g. \"90m\", \"6h\" or \"2d\"",
            "r.toml:11:13: error[r]: `detail..x` is not a field path: expected names separated by single dots, e.g. `detail.errorCode`",
            "r.toml:20:1: error[two]: a rule takes one of `throttle`, `group`, `threshold` and `absence`; found `throttle` and `group`: split it into two rules",
            "r.toml:28:9: error[count]: `count` must be between 1 and 1000, not 0",
            "r.toml:37:17: error[absent]: unknown list `nope`; defined lists: stars",
            "r.toml:45:17: error[starred]: list `stars` has the wildcard entry `a*`; an expected list names keys exactly",
            "r.toml:54:1: error[nothing]: unknown field `something`, expected one of `group_by`, `interval`, `grace`, `expected_list`, `learn`",
        ];
        assert_eq!(found, expected);
    }
}

#[cfg(test)]
mod robustness {
    use super::*;
    use proptest::prelude::*;

    /// Pieces of rule files, so that generated text is often nearly valid and reaches deep
    /// into loading rather than failing at the first byte.
    fn fragment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "[[rule]]\n",
            "id = \"a\"\n",
            "id = \"a\"\n",
            "title = \"{{ event_name }}\"\n",
            "summary = \"{% if x %}\"\n",
            "severity = \"high\"\n",
            "severity = 3\n",
            "match.detail.x = [1]\n",
            "match.detail.x = [{ prefix = \"\" }]\n",
            "match.detail = 5\n",
            "match_json = '{\"a\": [\"b\"]}'\n",
            "match_json = '{'\n",
            "[[rule.where]]\n",
            "field = \"detail.x\"\n",
            "field = []\n",
            "regex = \"(\"\n",
            "in_list = \"l\"\n",
            "older_than = \"6h\"\n",
            "any = [{ field = \"a\", match = [1] }]\n",
            "[[rule.for_each]]\n",
            "array = \"detail.r\"\n",
            "[lists]\n",
            "l = [\"a*\", \"b\"]\n",
            "l = [\"**\"]\n",
            "= \n",
            "\"\n",
            "é\n",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn loading_never_panics_and_errors_have_positions_inside_the_file(
            pieces in prop::collection::vec(fragment(), 0..24)
        ) {
            let text: String = pieces.concat();
            let mut loader = Loader::default();
            loader.read_file(PathBuf::from("p.toml"), text.clone());
            if let Err(error) = loader.finish() {
                prop_assert!(!error.diagnostics.is_empty());
                let n_lines = text.lines().count().max(1);
                for diagnostic in &error.diagnostics {
                    if let Some(position) = &diagnostic.position {
                        prop_assert!(position.line >= 1 && position.line <= n_lines + 1, "{}", diagnostic);
                    }
                }
            }
        }

        #[test]
        fn loading_arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let mut loader = Loader::default();
            loader.read_file(PathBuf::from("p.toml"), text);
            let _ = loader.finish();
        }
    }
}
