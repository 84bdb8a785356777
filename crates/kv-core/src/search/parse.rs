//! The text form of a condition, `FIELD OP VALUE`, as the CLI's `--where` takes it.

use serde_json::Value;

use super::{Condition, Op};
use crate::{Error, ErrorKind, Result};

pub(super) fn condition(text: &str) -> Result<Condition> {
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "invalid condition {text:?}: {why} (expected FIELD OP VALUE with OP one of \
                 = > >= < <= ~ in, or FIELD? for presence)"
            ),
        )
    };
    let trimmed = text.trim();
    if let Some(field) = trimmed.strip_suffix('?') {
        let field = field.trim();
        if field.is_empty() || field.contains(['=', '<', '>', '~']) {
            return Err(invalid("the field is missing"));
        }
        return Ok(Condition::exists(field));
    }

    // The first operator character ends the field name.
    if let Some(at) = trimmed.find(['=', '<', '>', '~', '!']) {
        let field = trimmed[..at].trim();
        let rest = &trimmed[at..];
        let (op, value_text) = if let Some(v) = rest.strip_prefix(">=") {
            (">=", v)
        } else if let Some(v) = rest.strip_prefix("<=") {
            ("<=", v)
        } else if let Some(v) = rest.strip_prefix("==") {
            ("=", v)
        } else if rest.starts_with("!=") {
            return Err(invalid("`!=` is not supported"));
        } else {
            let (op, v) = rest.split_at(1);
            (op, v)
        };
        let value_text = value_text.trim();
        if value_text.is_empty() {
            return Err(invalid("the value is missing"));
        }
        return match op {
            "=" => Ok(Condition::eq(field, scalar(value_text))),
            ">" => Ok(Condition::gt(field, scalar(value_text))),
            ">=" => Ok(Condition::ge(field, scalar(value_text))),
            "<" => Ok(Condition::lt(field, scalar(value_text))),
            "<=" => Ok(Condition::le(field, scalar(value_text))),
            "~" => Condition::regex(field, value_text),
            _ => Err(invalid("`!` is not an operator")),
        };
    }

    // `FIELD in VALUES`: `in` is a word, so it needs spaces around it.
    let mut words = trimmed.splitn(3, char::is_whitespace);
    if let (Some(field), Some("in"), Some(values)) = (words.next(), words.next(), words.next()) {
        let values = values.trim();
        let list = match serde_json::from_str::<Value>(values) {
            Ok(Value::Array(items)) => items,
            _ => values.split(',').map(|v| scalar(v.trim())).collect(),
        };
        if values.is_empty() {
            return Err(invalid("the list of values is empty"));
        }
        return Ok(Condition::new(field, Op::In(list)));
    }
    Err(invalid("no operator"))
}

/// JSON if it parses as JSON (`18`, `true`, `"x"`, `[1]`), else the text as a string.
fn scalar(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn operators() {
        assert_eq!(condition("a=1").unwrap(), Condition::eq("a", 1));
        assert_eq!(condition("a == 1").unwrap(), Condition::eq("a", 1));
        assert_eq!(condition("a>1.5").unwrap(), Condition::gt("a", 1.5));
        assert_eq!(condition("a >= 1").unwrap(), Condition::ge("a", 1));
        assert_eq!(condition("a<x").unwrap(), Condition::lt("a", "x"));
        assert_eq!(condition("a<=\"1\"").unwrap(), Condition::le("a", "1"));
        assert_eq!(
            condition("name ~ ^A.*e$").unwrap(),
            Condition::regex("name", "^A.*e$").unwrap()
        );
        assert_eq!(condition("a.b?").unwrap(), Condition::exists("a.b"));
        assert_eq!(condition("x = a=b").unwrap(), Condition::eq("x", "a=b"));
        assert_eq!(condition("=3").unwrap(), Condition::eq("", 3));
        assert_eq!(condition("f = true").unwrap(), Condition::eq("f", true));
    }

    #[test]
    fn lists() {
        assert_eq!(
            condition("t in [1, \"a\"]").unwrap(),
            Condition::is_in("t", [json!(1), json!("a")])
        );
        assert_eq!(
            condition("t in a, b,3").unwrap(),
            Condition::is_in("t", [json!("a"), json!("b"), json!(3)])
        );
    }

    #[test]
    fn errors() {
        for bad in ["a", "a !=1", "a=", "a ~ (", "?", "a in", ""] {
            let e = condition(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad:?}");
        }
    }
}
