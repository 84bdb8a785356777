//! Search pushdown: the part of a [`Filter`] DuckDB can evaluate, as a `WHERE` clause.
//!
//! kv checks every returned row against the whole filter again, so the clause only has to
//! keep every row that matches (it may keep more):
//!
//! - a glob key pattern without `?` becomes `key LIKE ...` (`?` stays client-side, so a
//!   multi-byte character never depends on how `LIKE` counts); regexes are not pushed down;
//! - conditions read the `value` column (only JSON values can match) with `json_type` and
//!   `json_extract_string` at a JSON Pointer. Numbers compare as `DOUBLE` (as kv compares any
//!   number that is not an integer), strict comparisons widened (`>` as `>=`) since rounding is
//!   monotonic; a number DuckDB cannot cast passes. Strings compare byte-wise (code point
//!   order, as kv); booleans and `null` by type. Arrays, objects and regexes stay client-side.

use duckdb::types::Value as DbValue;
use kv_core::search::{Condition, Filter, Op};
use serde_json::Value;

/// `AND ...` fragments and their parameters, numbered from `first`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Pushdown {
    pub sql: String,
    pub params: Vec<DbValue>,
    first: usize,
}

impl Pushdown {
    fn bind(&mut self, v: DbValue) -> String {
        self.params.push(v);
        format!("${}", self.first + self.params.len() - 1)
    }
}

/// The clause for `filter`, with parameters numbered from `first` (empty when nothing can be
/// pushed down).
pub(crate) fn pushdown(filter: &Filter, first: usize) -> Pushdown {
    let mut out = Pushdown {
        first,
        ..Pushdown::default()
    };
    let like = filter.key().and_then(|k| k.to_sql_like());
    if let Some(like) = like.filter(|l| !has_one_char_wildcard(l)) {
        let p = out.bind(DbValue::Text(like));
        out.sql.push_str(&format!(" AND key LIKE {p} ESCAPE '\\'"));
    }
    for c in filter.conditions() {
        if let Some(clause) = condition(&mut out, c) {
            out.sql.push_str(" AND ");
            out.sql.push_str(&clause);
        }
    }
    out
}

/// True if a `LIKE` pattern (with `\` escapes) has an unescaped `_`.
fn has_one_char_wildcard(like: &str) -> bool {
    let mut escaped = false;
    for c in like.chars() {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, '_') => return true,
            _ => escaped = false,
        }
    }
    false
}

/// A JSON Pointer (RFC 6901) for a path; `$` (the root) for the empty one.
fn pointer(path: &[String]) -> String {
    if path.is_empty() {
        return "$".to_owned();
    }
    path.iter()
        .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
        .collect()
}

fn condition(out: &mut Pushdown, c: &Condition) -> Option<String> {
    if !c.sql_pushable() {
        return None;
    }
    let p = out.bind(DbValue::Text(pointer(c.path())));
    Some(match c.op() {
        Op::Eq(v) => cmp(out, &p, "=", v),
        Op::In(vs) => {
            let alts: Vec<String> = vs.iter().map(|v| cmp(out, &p, "=", v)).collect();
            format!("({})", alts.join(" OR "))
        }
        Op::Gt(v) | Op::Ge(v) => cmp(out, &p, ">=", v),
        Op::Lt(v) | Op::Le(v) => cmp(out, &p, "<=", v),
        _ => format!("json_type(value, {p}) IS NOT NULL"),
    })
}

fn cmp(out: &mut Pushdown, p: &str, op: &str, v: &Value) -> String {
    let ty = format!("json_type(value, {p})");
    let text = format!("json_extract_string(value, {p})");
    match v {
        Value::Number(n) => {
            let n = out.bind(DbValue::Double(n.as_f64().unwrap_or(f64::NAN)));
            format!(
                "(coalesce({ty} IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT'), FALSE) \
                 AND coalesce(TRY_CAST({text} AS DOUBLE) {op} {n}, TRUE))"
            )
        }
        Value::String(s) => {
            let s = out.bind(DbValue::Text(s.clone()));
            format!("(coalesce({ty} = 'VARCHAR', FALSE) AND {text} {op} {s})")
        }
        Value::Bool(b) => format!("(coalesce({ty} = 'BOOLEAN', FALSE) AND {text} = '{b}')"),
        Value::Null => format!("coalesce({ty} = 'NULL', FALSE)"),
        _ => "TRUE".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_and_root() {
        assert_eq!(pointer(&[]), "$");
        assert_eq!(
            pointer(&["a/b".into(), "~".into(), "0".into()]),
            "/a~1b/~0/0"
        );
    }

    #[test]
    fn question_marks_stay_client_side() {
        let f = Filter::new().key_glob("a?*").unwrap();
        assert!(pushdown(&f, 6).sql.is_empty());
        let f = Filter::new().key_glob("a_*").unwrap();
        let p = pushdown(&f, 6);
        assert_eq!(p.params, [DbValue::Text("a\\_%".into())]);
        assert!(p.sql.contains("LIKE $6"));
    }

    #[test]
    fn conditions_bind_in_order() {
        let f = Filter::new()
            .and(Condition::gt("a", 1))
            .and(Condition::regex("s", "x").unwrap())
            .and(Condition::is_in("t", ["x"]));
        let p = pushdown(&f, 4);
        assert_eq!(
            p.params,
            [
                DbValue::Text("/a".into()),
                DbValue::Double(1.0),
                DbValue::Text("/t".into()),
                DbValue::Text("x".into()),
            ]
        );
        assert!(p.sql.contains(">= $5"), "{}", p.sql);
    }
}
