//! Search pushdown: the part of a [`Filter`] PostgreSQL can evaluate, as a `WHERE` clause.
//!
//! kv checks every returned row against the whole filter again, so the clause only has to
//! keep every row that matches (it may keep more). That freedom keeps it simple and safe:
//!
//! - a glob key pattern becomes `key LIKE ...` on the stored (NUL-escaped) key; rows whose
//!   stored key holds the escape character pass unconditionally, since one character of
//!   theirs is two in storage; regex key patterns are not pushed down;
//! - conditions read `value::jsonb #> path` (only rows in the `json` column can match; its
//!   values are all valid `jsonb`). Numbers compare as `float8`, the way kv compares any
//!   number that is not an integer, with strict comparisons widened (`>` as `>=`): rounding
//!   is monotonic, so no match is lost; kv then compares exactly. Numbers too close to zero
//!   for `float8` (which PostgreSQL would reject) pass unconditionally. Strings compare with
//!   `COLLATE "C"` (code point order, as kv). `null`, booleans and strings use `jsonb`
//!   equality; arrays and objects, regexes and other conditions stay client-side.

use kv_core::search::{Condition, Filter, Op};
use serde_json::Value;

use crate::format::encode_name;

/// A bind parameter of the clause.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Text(String),
    Path(Vec<String>),
    Float(f64),
}

/// `AND ...` fragments and their parameters, numbered from [`FIRST_PARAM`].
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Pushdown {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Pushdown {
    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", FIRST_PARAM + self.params.len() - 1)
    }
}

/// The scan statements use `$1`..`$6`.
const FIRST_PARAM: usize = 7;

/// The clause for `filter` (empty when nothing can be pushed down).
pub(crate) fn pushdown(filter: &Filter) -> Pushdown {
    let mut out = Pushdown::default();
    if let Some(like) = filter.key().and_then(|k| k.to_sql_like()) {
        let p = out.bind(Param::Text(encode_name(&like).into_owned()));
        out.sql.push_str(&format!(
            " AND (key LIKE {p} ESCAPE '\\' OR strpos(key, chr(1)) > 0)"
        ));
    }
    for c in filter.conditions() {
        if let Some(clause) = condition(&mut out, c) {
            out.sql.push_str(" AND ");
            out.sql.push_str(&clause);
        }
    }
    out
}

fn condition(out: &mut Pushdown, c: &Condition) -> Option<String> {
    if !c.sql_pushable() {
        return None;
    }
    let path = out.bind(Param::Path(c.path().to_vec()));
    let x = format!("(value::jsonb #> {path}::text[])");
    Some(match c.op() {
        Op::Eq(v) => eq(out, &x, v),
        Op::In(vs) => {
            let alts: Vec<String> = vs.iter().map(|v| eq(out, &x, v)).collect();
            format!("({})", alts.join(" OR "))
        }
        Op::Gt(v) | Op::Ge(v) => range(out, &x, ">=", v),
        Op::Lt(v) | Op::Le(v) => range(out, &x, "<=", v),
        _ => format!("{x} IS NOT NULL"),
    })
}

fn eq(out: &mut Pushdown, x: &str, v: &Value) -> String {
    match v {
        Value::Number(n) => number_cmp(out, x, "=", n.as_f64().unwrap_or(f64::NAN)),
        _ => {
            let p = out.bind(Param::Text(v.to_string()));
            format!("{x} = {p}::text::jsonb")
        }
    }
}

fn range(out: &mut Pushdown, x: &str, op: &str, v: &Value) -> String {
    match v {
        Value::Number(n) => number_cmp(out, x, op, n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => {
            let p = out.bind(Param::Text(s.clone()));
            format!(
                "(CASE WHEN jsonb_typeof({x}) = 'string' \
                 THEN ({x} #>> '{{}}') COLLATE \"C\" {op} {p}::text COLLATE \"C\" ELSE FALSE END)"
            )
        }
        _ => "FALSE".to_owned(),
    }
}

fn number_cmp(out: &mut Pushdown, x: &str, op: &str, n: f64) -> String {
    let p = out.bind(Param::Float(n));
    format!(
        "(CASE WHEN jsonb_typeof({x}) <> 'number' THEN FALSE \
         WHEN ({x})::numeric <> 0 AND abs(({x})::numeric) < 1e-300 THEN TRUE \
         ELSE ({x})::numeric::float8 {op} {p}::float8 END)"
    )
}

#[cfg(test)]
mod tests {
    use kv_core::search::{Condition, Filter};

    use super::*;

    #[test]
    fn key_globs_become_like_with_the_stored_escape() {
        let f = Filter::new().key_glob("a\0_*").unwrap();
        let p = pushdown(&f);
        assert_eq!(
            p.params,
            [Param::Text("a\u{1}\u{1}\\_%".into())],
            "NUL is stored as U+0001 U+0001; `_` is escaped for LIKE"
        );
        assert!(p.sql.contains("key LIKE $7 ESCAPE"));
        assert!(
            pushdown(&Filter::new().key_regex("^a").unwrap())
                .sql
                .is_empty()
        );
        assert!(
            pushdown(&Filter::new().key_glob("[ab]").unwrap())
                .sql
                .is_empty()
        );
    }

    #[test]
    fn conditions_bind_in_order() {
        let f = Filter::new()
            .and(Condition::gt("a.b", 1))
            .and(Condition::regex("s", "x").unwrap())
            .and(Condition::eq("t", json(r#""x""#)))
            .and(Condition::is_in("u", [1, 2]))
            .and(Condition::eq("o", json("{}")));
        let p = pushdown(&f);
        assert_eq!(
            p.params,
            [
                Param::Path(vec!["a".into(), "b".into()]),
                Param::Float(1.0),
                Param::Path(vec!["t".into()]),
                Param::Text("\"x\"".into()),
                Param::Path(vec!["u".into()]),
                Param::Float(1.0),
                Param::Float(2.0),
            ]
        );
        assert!(p.sql.contains("::float8 >= $8::float8"), "{}", p.sql);
        assert!(p.sql.contains("= $10::text::jsonb"));
        assert!(
            !p.sql.contains("$14"),
            "regex and object conditions bind nothing"
        );
    }

    fn json(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }
}
