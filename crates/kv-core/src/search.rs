//! Search: keys by pattern, entries by conditions on their JSON values.
//!
//! A [`Filter`] selects entries of one collection by their key — a [glob](Filter::key_glob)
//! or a [regex](Filter::key_regex) — and by [`Condition`]s on fields of their values, all
//! of which must hold. [`KvStoreExt::search`](crate::KvStoreExt::search) streams the matches;
//! take as many as you need (the limit counts matches, not scanned entries):
//!
//! ```
//! # async fn demo(store: kv_core::DynStore) -> kv_core::Result<()> {
//! use futures_util::{StreamExt, TryStreamExt};
//! use kv_core::KvStoreExt;
//! use kv_core::search::{Condition, Filter};
//!
//! let adults_in_paris = Filter::new()
//!     .key_glob("user:*")?
//!     .and(Condition::ge("age", 18))
//!     .and(Condition::eq("address.city", "Paris"));
//! let first_ten: Vec<_> = store.search("users", adults_in_paris).take(10).try_collect().await?;
//! # let _ = first_ten; Ok(()) }
//! ```
//!
//! ## Semantics, exactly
//!
//! - **Glob** patterns match the whole key: `*` any run of characters, `?` one character,
//!   `[abc]`, `[a-z]`, `[!a-z]` (or `[^a-z]`) one character of (or not of) a set, `\` escapes
//!   the next character. **Regex** key patterns use the [`regex`] crate's syntax and match
//!   anywhere in the key unless anchored with `^`/`$` (spoonbill anchored at the start only;
//!   write `^` to get that).
//! - Conditions read the value as JSON; an entry whose value is not JSON matches no
//!   condition. A field is a path of member names (`"address.city"`; a numeric segment also
//!   indexes an array; the empty path `""` is the whole value). A missing field matches no
//!   condition except none — there is no implicit `null`.
//! - `eq` / `is_in`: JSON equality with numbers by value (`1 == 1.0`); `gt`/`ge`/`lt`/`le`:
//!   numbers by value, strings by code point; other types never compare. `regex`: matches a
//!   string's text, or a number's or boolean's JSON text (`15` matches `^1`), anywhere unless
//!   anchored. `exists`: the field is present (even if `null`).
//!
//! ## Pushdown
//!
//! [`KvStoreExt::search`](crate::KvStoreExt::search) hands the filter to the store in
//! [`ScanOptions::filter`](crate::ScanOptions::filter). A store that can filter natively
//! (PostgreSQL's `jsonb`, DuckDB's JSON functions, the memory store) skips what cannot
//! match; every other store ignores the hint. kv checks every returned item against the
//! filter again, so a store may push down all, some or none of it and results are the same
//! either way. Layers that change keys or values (prefixes, compression, encryption) remove
//! the parts of the filter the store below could no longer evaluate.

mod glob;
mod parse;
mod value;

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::{Error, ErrorKind, Result, ScanItem};

/// A key pattern: a whole-key glob or a regex.
#[derive(Clone)]
pub struct KeyPattern {
    source: String,
    kind: KeyPatternKind,
    regex: regex::Regex,
    glob: Option<Arc<glob::Glob>>,
}

/// The dialect of a [`KeyPattern`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyPatternKind {
    /// Whole-key glob: `*`, `?`, `[...]`, `\`.
    Glob,
    /// A [`regex`] crate regular expression, unanchored.
    Regex,
}

impl KeyPattern {
    /// A glob pattern; see the [module docs](self) for the syntax.
    ///
    /// ```
    /// let p = kv_core::search::KeyPattern::glob("user:[0-9]*")?;
    /// assert!(p.matches("user:42"));
    /// assert!(!p.matches("user:x"));
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn glob(pattern: &str) -> Result<KeyPattern> {
        let glob = glob::Glob::parse(pattern)?;
        let regex = regex::Regex::new(&glob.to_regex()).map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("invalid glob pattern {pattern:?}: {e}"),
            )
        })?;
        Ok(KeyPattern {
            source: pattern.to_owned(),
            kind: KeyPatternKind::Glob,
            regex,
            glob: Some(Arc::new(glob)),
        })
    }

    /// A regular expression, matched anywhere in the key unless anchored.
    ///
    /// ```
    /// let p = kv_core::search::KeyPattern::regex("^1+")?;
    /// assert!(p.matches("10") && p.matches("1") && !p.matches("21"));
    /// assert!(kv_core::search::KeyPattern::regex("(").is_err());
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn regex(pattern: &str) -> Result<KeyPattern> {
        let regex = compile_regex(pattern, "key")?;
        Ok(KeyPattern {
            source: pattern.to_owned(),
            kind: KeyPatternKind::Regex,
            regex,
            glob: None,
        })
    }

    /// True if `key` matches.
    pub fn matches(&self, key: &str) -> bool {
        self.regex.is_match(key)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Its dialect.
    pub fn kind(&self) -> KeyPatternKind {
        self.kind
    }

    /// The text every matching key starts with (for a glob, what precedes its first
    /// wildcard; for a regex, nothing), which a scan can use as its prefix.
    ///
    /// ```
    /// let p = kv_core::search::KeyPattern::glob("user:1*")?;
    /// assert_eq!(p.literal_prefix(), "user:1");
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn literal_prefix(&self) -> String {
        self.glob
            .as_ref()
            .map(|g| g.literal_prefix())
            .unwrap_or_default()
    }

    /// For SQL stores: the glob as a `LIKE` pattern with `\` as its escape character, or
    /// `None` for a regex or a glob with a `[...]` class.
    ///
    /// ```
    /// let p = kv_core::search::KeyPattern::glob("a_b*")?;
    /// assert_eq!(p.to_sql_like().as_deref(), Some("a\\_b%"));
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn to_sql_like(&self) -> Option<String> {
        self.glob.as_ref().and_then(|g| g.to_sql_like())
    }
}

impl PartialEq for KeyPattern {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.source == other.source
    }
}

impl Eq for KeyPattern {}

impl fmt::Debug for KeyPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}({:?})", self.kind, self.source)
    }
}

fn compile_regex(pattern: &str, what: &str) -> Result<regex::Regex> {
    // The size limit bounds the memory a hostile pattern can make the regex engine use.
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            // The regex crate's syntax errors span several lines (the pattern, a caret, the
            // reason); an error message here is one line, so keep the reason.
            let text = e.to_string();
            let why = text
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map_or(text.as_str(), |l| l.trim_start_matches("error: "));
            Error::new(
                ErrorKind::InvalidArgument,
                format!("invalid {what} regex {pattern:?}: {why}"),
            )
        })
}

/// What a [`Condition`] tests.
#[derive(Clone)]
#[non_exhaustive]
pub enum Op {
    /// Equal (numbers by value).
    Eq(Value),
    /// Greater than (numbers or strings).
    Gt(Value),
    /// Greater than or equal.
    Ge(Value),
    /// Less than.
    Lt(Value),
    /// Less than or equal.
    Le(Value),
    /// Equal to one of these.
    In(Vec<Value>),
    /// A string (or a number's or boolean's JSON text) matches this regex.
    Regex(FieldRegex),
    /// The field is present.
    Exists,
}

/// A compiled regex of an [`Op::Regex`] condition, compared by its source.
#[derive(Clone)]
pub struct FieldRegex {
    regex: regex::Regex,
}

impl FieldRegex {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }
}

impl PartialEq for Op {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Op::Eq(a), Op::Eq(b))
            | (Op::Gt(a), Op::Gt(b))
            | (Op::Ge(a), Op::Ge(b))
            | (Op::Lt(a), Op::Lt(b))
            | (Op::Le(a), Op::Le(b)) => a == b,
            (Op::In(a), Op::In(b)) => a == b,
            (Op::Regex(a), Op::Regex(b)) => a.as_str() == b.as_str(),
            (Op::Exists, Op::Exists) => true,
            _ => false,
        }
    }
}

impl Eq for Op {}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Eq(v) => write!(f, "= {v}"),
            Op::Gt(v) => write!(f, "> {v}"),
            Op::Ge(v) => write!(f, ">= {v}"),
            Op::Lt(v) => write!(f, "< {v}"),
            Op::Le(v) => write!(f, "<= {v}"),
            Op::In(vs) => write!(f, "in {}", Value::Array(vs.clone())),
            Op::Regex(r) => write!(f, "~ {:?}", r.as_str()),
            Op::Exists => f.write_str("exists"),
        }
    }
}

/// One test on a field of a JSON value. Build with [`Condition::eq`], [`Condition::ge`], ...,
/// or parse one from text (`"age>=18"`, see [`Condition::parse`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Condition {
    field: String,
    path: Vec<String>,
    op: Op,
}

impl Condition {
    /// A condition on `field` (a dotted path, `""` for the whole value).
    ///
    /// ```
    /// use kv_core::search::{Condition, Op};
    /// let c = Condition::new("a.b", Op::Exists);
    /// assert_eq!(c.path(), ["a", "b"]);
    /// ```
    pub fn new(field: &str, op: Op) -> Condition {
        let path = if field.is_empty() {
            Vec::new()
        } else {
            field.split('.').map(str::to_owned).collect()
        };
        Condition {
            field: field.to_owned(),
            path,
            op,
        }
    }

    /// A condition on a path given segment by segment (for member names containing dots).
    ///
    /// ```
    /// use kv_core::search::{Condition, Op};
    /// let c = Condition::at_path(["a.b", "c"], Op::Eq(1.into()));
    /// assert_eq!(c.path(), ["a.b", "c"]);
    /// ```
    pub fn at_path<I, P>(path: I, op: Op) -> Condition
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        let path: Vec<String> = path.into_iter().map(Into::into).collect();
        Condition {
            field: path.join("."),
            path,
            op,
        }
    }

    /// `field == value` (numbers by value).
    ///
    /// ```
    /// let c = kv_core::search::Condition::eq("age", 30);
    /// assert!(c.matches(&serde_json::json!({"age": 30.0})));
    /// ```
    pub fn eq(field: &str, value: impl Into<Value>) -> Condition {
        Condition::new(field, Op::Eq(value.into()))
    }

    /// `field > value`.
    pub fn gt(field: &str, value: impl Into<Value>) -> Condition {
        Condition::new(field, Op::Gt(value.into()))
    }

    /// `field >= value`.
    ///
    /// ```
    /// let c = kv_core::search::Condition::ge("age", 18);
    /// assert!(c.matches(&serde_json::json!({"age": 18})));
    /// assert!(!c.matches(&serde_json::json!({"age": "99"}))); // a string is not a number
    /// ```
    pub fn ge(field: &str, value: impl Into<Value>) -> Condition {
        Condition::new(field, Op::Ge(value.into()))
    }

    /// `field < value`.
    pub fn lt(field: &str, value: impl Into<Value>) -> Condition {
        Condition::new(field, Op::Lt(value.into()))
    }

    /// `field <= value`.
    pub fn le(field: &str, value: impl Into<Value>) -> Condition {
        Condition::new(field, Op::Le(value.into()))
    }

    /// `field` equals one of `values`.
    ///
    /// ```
    /// let c = kv_core::search::Condition::is_in("tier", ["gold", "silver"]);
    /// assert!(c.matches(&serde_json::json!({"tier": "gold"})));
    /// ```
    pub fn is_in<I, V>(field: &str, values: I) -> Condition
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        Condition::new(field, Op::In(values.into_iter().map(Into::into).collect()))
    }

    /// `field` matches `pattern` (anywhere unless anchored); an invalid pattern is an
    /// [`ErrorKind::InvalidArgument`] error.
    ///
    /// ```
    /// let c = kv_core::search::Condition::regex("name", "^A")?;
    /// assert!(c.matches(&serde_json::json!({"name": "Alice"})));
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn regex(field: &str, pattern: &str) -> Result<Condition> {
        let regex = compile_regex(pattern, &format!("field {field:?}"))?;
        Ok(Condition::new(field, Op::Regex(FieldRegex { regex })))
    }

    /// `field` is present (even as `null`).
    pub fn exists(field: &str) -> Condition {
        Condition::new(field, Op::Exists)
    }

    /// Parses `FIELD OP VALUE`, the form the CLI's `--where` takes: OP is one of `=`, `>`,
    /// `>=`, `<`, `<=`, `~` (regex) or `in`; VALUE is JSON if it parses as JSON, else a string;
    /// for `in`, a JSON array or comma-separated values. `FIELD?` alone tests presence.
    ///
    /// ```
    /// use kv_core::search::Condition;
    /// assert_eq!(Condition::parse("age>=18")?, Condition::ge("age", 18));
    /// assert_eq!(Condition::parse("city = Paris")?, Condition::eq("city", "Paris"));
    /// assert_eq!(Condition::parse("tier in gold,silver")?, Condition::is_in("tier", ["gold", "silver"]));
    /// assert!(Condition::parse("age").is_err());
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Condition> {
        parse::condition(text)
    }

    /// The field as written (dotted).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The field's path, segment by segment (empty: the whole value).
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// What is tested.
    pub fn op(&self) -> &Op {
        &self.op
    }

    /// True if a SQL store can push this condition down with typed JSON comparisons:
    /// equality or `in` with scalars (not arrays or objects), ranges on a number or a string,
    /// presence. Regexes (dialects differ) and container equality stay client-side.
    ///
    /// ```
    /// use kv_core::search::Condition;
    /// assert!(Condition::ge("age", 18).sql_pushable());
    /// assert!(!Condition::regex("name", "^A")?.sql_pushable());
    /// assert!(!Condition::eq("tags", serde_json::json!(["a"])).sql_pushable());
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn sql_pushable(&self) -> bool {
        let scalar = |v: &Value| !matches!(v, Value::Array(_) | Value::Object(_));
        match &self.op {
            Op::Eq(v) => scalar(v),
            Op::Gt(v) | Op::Ge(v) | Op::Lt(v) | Op::Le(v) => v.is_number() || v.is_string(),
            Op::In(vs) => !vs.is_empty() && vs.iter().all(scalar),
            Op::Exists => true,
            Op::Regex(_) => false,
        }
    }

    /// True if the JSON `value` satisfies this condition.
    pub fn matches(&self, value: &Value) -> bool {
        let Some(field) = value::lookup(value, &self.path) else {
            return false;
        };
        use std::cmp::Ordering::*;
        match &self.op {
            Op::Eq(v) => value::json_eq(field, v),
            Op::Gt(v) => value::json_cmp(field, v) == Some(Greater),
            Op::Ge(v) => matches!(value::json_cmp(field, v), Some(Greater | Equal)),
            Op::Lt(v) => value::json_cmp(field, v) == Some(Less),
            Op::Le(v) => matches!(value::json_cmp(field, v), Some(Less | Equal)),
            Op::In(vs) => vs.iter().any(|v| value::json_eq(field, v)),
            Op::Regex(r) => value::regex_subject(field).is_some_and(|s| r.regex.is_match(&s)),
            Op::Exists => true,
        }
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {:?}", self.field, self.op)
    }
}

impl std::str::FromStr for Condition {
    type Err = Error;

    fn from_str(s: &str) -> Result<Condition> {
        Condition::parse(s)
    }
}

/// A selection of entries: an optional key pattern and conditions that must all hold.
///
/// ```
/// use kv_core::search::{Condition, Filter};
///
/// let f = Filter::new().key_glob("1*")?.and(Condition::eq("b", "1"));
/// assert!(f.matches("1", Some(br#"{"a":1,"b":"1"}"#)));
/// assert!(!f.matches("2", Some(br#"{"a":2,"b":"1"}"#)));
/// assert!(!f.matches("1", Some(b"not json")));
/// # Ok::<(), kv_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    key: Option<KeyPattern>,
    conditions: Vec<Condition>,
}

impl Filter {
    /// A filter that matches everything.
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Keys must match this glob (replacing any earlier key pattern).
    pub fn key_glob(self, pattern: &str) -> Result<Filter> {
        Ok(self.key_pattern(KeyPattern::glob(pattern)?))
    }

    /// Keys must match this regex (replacing any earlier key pattern).
    pub fn key_regex(self, pattern: &str) -> Result<Filter> {
        Ok(self.key_pattern(KeyPattern::regex(pattern)?))
    }

    /// Keys must match `pattern` (replacing any earlier key pattern).
    pub fn key_pattern(mut self, pattern: KeyPattern) -> Filter {
        self.key = Some(pattern);
        self
    }

    /// Values must also satisfy `condition`.
    pub fn and(mut self, condition: Condition) -> Filter {
        self.conditions.push(condition);
        self
    }

    /// The key pattern, if any.
    pub fn key(&self) -> Option<&KeyPattern> {
        self.key.as_ref()
    }

    /// The conditions on values.
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// True if the filter matches everything.
    pub fn is_empty(&self) -> bool {
        self.key.is_none() && self.conditions.is_empty()
    }

    /// True if values are needed to decide (there are conditions).
    pub fn needs_values(&self) -> bool {
        !self.conditions.is_empty()
    }

    /// The same filter without its key pattern — what a layer that renames keys passes down.
    ///
    /// ```
    /// use kv_core::search::{Condition, Filter};
    /// let f = Filter::new().key_glob("a*")?.and(Condition::exists("x"));
    /// assert_eq!(f.without_key(), Filter::new().and(Condition::exists("x")));
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn without_key(&self) -> Filter {
        Filter {
            key: None,
            conditions: self.conditions.clone(),
        }
    }

    /// True if `key` matches the key pattern (or there is none).
    pub fn matches_key(&self, key: &str) -> bool {
        self.key.as_ref().is_none_or(|p| p.matches(key))
    }

    /// True if the stored `value` satisfies every condition: it must be JSON unless there
    /// are none.
    pub fn matches_value(&self, value: &[u8]) -> bool {
        if self.conditions.is_empty() {
            return true;
        }
        match serde_json::from_slice::<Value>(value) {
            Ok(v) => self.matches_json(&v),
            Err(_) => false,
        }
    }

    /// True if a parsed JSON value satisfies every condition.
    pub fn matches_json(&self, value: &Value) -> bool {
        self.conditions.iter().all(|c| c.matches(value))
    }

    /// True if an entry matches: `value` is `None` only when there are no conditions to test
    /// (a keys-only scan); with conditions, a missing value does not match.
    pub fn matches(&self, key: &str, value: Option<&[u8]>) -> bool {
        self.matches_key(key)
            && match value {
                Some(v) => self.matches_value(v),
                None => self.conditions.is_empty(),
            }
    }

    /// True if a scan item matches.
    pub fn matches_item(&self, item: &ScanItem) -> bool {
        self.matches(&item.key, item.entry.as_ref().map(|e| &e.value[..]))
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(k) = &self.key {
            write!(f, "key {:?} {:?}", k.kind, k.source)?;
            sep = " and ";
        }
        for c in &self.conditions {
            write!(f, "{sep}{c:?}")?;
            sep = " and ";
        }
        if sep.is_empty() {
            f.write_str("everything")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// spoonbill's shared search contract, restated with explicit semantics.
    #[test]
    fn spoonbill_contract() {
        let items: Vec<(String, Value)> = (0..22)
            .map(|i| (i.to_string(), json!({"a": i, "b": i.to_string()})))
            .collect();
        let hits = |f: &Filter| -> Vec<String> {
            items
                .iter()
                .filter(|(k, v)| f.matches_key(k) && f.matches_json(v))
                .map(|(k, _)| k.clone())
                .collect()
        };
        let f = Filter::new()
            .and(Condition::eq("b", "1"))
            .and(Condition::eq("a", 1));
        assert_eq!(hits(&f), ["1"]);
        let f = Filter::new().key_regex("^1+").unwrap();
        assert_eq!(hits(&f).len(), 11); // 1 and 10..=19
        let f = Filter::new().key_glob("1*").unwrap();
        assert_eq!(hits(&f).len(), 11);
        let f = Filter::new().and(Condition::regex("a", "^1").unwrap());
        assert_eq!(hits(&f).len(), 11);
        let f = Filter::new()
            .and(Condition::ge("a", 5))
            .and(Condition::lt("a", 8.5));
        assert_eq!(hits(&f), ["5", "6", "7", "8"]);
        let f = Filter::new().and(Condition::is_in("a", [3, 30, 4]));
        assert_eq!(hits(&f), ["3", "4"]);
    }

    #[test]
    fn missing_fields_and_non_json() {
        let f = Filter::new().and(Condition::exists("x"));
        assert!(f.matches_value(br#"{"x":null}"#));
        assert!(!f.matches_value(br#"{"y":1}"#));
        assert!(!f.matches_value(b"\xff"));
        assert!(Filter::new().matches_value(b"\xff"));
        let f = Filter::new().and(Condition::eq("", 3));
        assert!(f.matches_value(b"3"));
        assert!(!f.matches("k", None));
        assert!(Filter::new().matches("k", None));
    }

    #[test]
    fn equality_ignores_regex_engine_identity() {
        let a = Filter::new().and(Condition::regex("n", "^a").unwrap());
        let b = Filter::new().and(Condition::regex("n", "^a").unwrap());
        assert_eq!(a, b);
        assert_ne!(a, Filter::new().and(Condition::regex("n", "^b").unwrap()));
        assert_eq!(
            a.to_string(),
            r#""n" ~ "^a""#,
            "Display names the conditions"
        );
    }

    #[test]
    fn bad_regexes_are_errors() {
        let e = Condition::regex("f", "(").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(e.to_string().lines().count(), 1, "{e}");
        assert!(e.to_string().contains("unclosed group"), "{e}");
        assert!(Filter::new().key_regex("[").is_err());
        assert!(Filter::new().key_glob("[").is_err());
        // A pattern that would compile to a huge automaton is refused, not built.
        assert!(
            Filter::new()
                .key_regex(r"\w{1000}\w{1000}\w{1000}")
                .is_err()
        );
    }
}
