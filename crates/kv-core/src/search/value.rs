//! How conditions read JSON values: path lookup, numeric-aware equality and ordering.
//!
//! Numbers compare by value (`1`, `1.0` and `1e0` are equal), as they do in PostgreSQL's
//! `jsonb`, so a condition means the same whether a store filters natively or kv filters
//! client-side. Strings order by their UTF-8 bytes (code point order). Values of different
//! types are never equal and never ordered.

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// The value at `path` (object member names; a segment that is a non-negative integer also
/// indexes an array), or `None` when any step is missing.
pub(crate) fn lookup<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, segment| match v {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment
            .parse::<usize>()
            .ok()
            .filter(|_| !segment.starts_with('+'))
            .and_then(|i| items.get(i)),
        _ => None,
    })
}

/// JSON equality, with numbers compared by value (recursively inside arrays and objects).
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// The order of two numbers or two strings; `None` for anything else.
pub(crate) fn json_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y),
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    }
}

/// Compares integers exactly and anything involving a float as `f64`.
fn num_cmp(x: &Number, y: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (as_i128(x), as_i128(y)) {
        return Some(a.cmp(&b));
    }
    x.as_f64()?.partial_cmp(&y.as_f64()?)
}

fn as_i128(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// The text a regex condition reads: a string's content, or a number's or boolean's JSON
/// text; `None` for null, arrays and objects (which never match a regex).
pub(crate) fn regex_subject(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match value {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(std::borrow::Cow::Borrowed(if *b {
            "true"
        } else {
            "false"
        })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths() {
        let v = json!({"a": {"b": [10, {"c": true}]}, "x.y": 1});
        let p = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(lookup(&v, &p(&["a", "b", "0"])), Some(&json!(10)));
        assert_eq!(lookup(&v, &p(&["a", "b", "1", "c"])), Some(&json!(true)));
        assert_eq!(lookup(&v, &p(&["a", "b", "2"])), None);
        assert_eq!(lookup(&v, &p(&["a", "b", "-1"])), None);
        assert_eq!(lookup(&v, &p(&["a", "b", "+1"])), None);
        assert_eq!(lookup(&v, &p(&["x.y"])), Some(&json!(1)));
        assert_eq!(lookup(&v, &p(&[])), Some(&v));
        assert_eq!(lookup(&json!(3), &p(&["a"])), None);
    }

    #[test]
    fn numbers_by_value() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(&json!([1, {"a": 2}]), &json!([1.0, {"a": 2.0}])));
        assert!(!json_eq(&json!(1), &json!("1")));
        assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert_eq!(json_cmp(&json!(2), &json!(10.5)), Some(Ordering::Less));
        assert_eq!(
            json_cmp(&json!(u64::MAX), &json!(i64::MIN)),
            Some(Ordering::Greater)
        );
        assert_eq!(json_cmp(&json!("b"), &json!("ab")), Some(Ordering::Greater));
        assert_eq!(json_cmp(&json!(1), &json!("1")), None);
        assert_eq!(json_cmp(&json!(null), &json!(null)), None);
    }

    #[test]
    fn regex_subjects() {
        assert_eq!(regex_subject(&json!("x")).as_deref(), Some("x"));
        assert_eq!(regex_subject(&json!(15)).as_deref(), Some("15"));
        assert_eq!(regex_subject(&json!(false)).as_deref(), Some("false"));
        assert_eq!(regex_subject(&json!(null)), None);
        assert_eq!(regex_subject(&json!([1])), None);
    }
}
