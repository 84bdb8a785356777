//! Glob key patterns: parsing, matching (through a compiled regex), SQL `LIKE` translation
//! and the literal prefix that narrows a scan.

use crate::{Error, ErrorKind, Result};

/// One piece of a parsed glob.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(char),
    /// `*`: any run of characters, including none (and including `/`).
    Any,
    /// `?`: exactly one character.
    One,
    /// `[...]`: one character in (or, negated, not in) a set of ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A parsed glob pattern.
#[derive(Clone, Debug)]
pub(crate) struct Glob {
    pieces: Vec<Piece>,
}

impl Glob {
    /// Parses `*`, `?`, `[abc]`, `[a-z]`, `[!a]` / `[^a]` and `\` escapes.
    pub(crate) fn parse(pattern: &str) -> Result<Glob> {
        let invalid = |why: &str| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("invalid glob pattern {pattern:?}: {why}"),
            )
        };
        let mut pieces = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    // `**` means the same as `*`; one piece keeps matching linear.
                    if pieces.last() != Some(&Piece::Any) {
                        pieces.push(Piece::Any);
                    }
                }
                '?' => pieces.push(Piece::One),
                '\\' => match chars.next() {
                    Some(e) => pieces.push(Piece::Literal(e)),
                    None => return Err(invalid("it ends with an unfinished `\\` escape")),
                },
                '[' => {
                    let negated = matches!(chars.peek(), Some('!' | '^'));
                    if negated {
                        chars.next();
                    }
                    let mut ranges = Vec::new();
                    let mut first = true;
                    loop {
                        let Some(mut lo) = chars.next() else {
                            return Err(invalid("a `[` class is not closed by `]`"));
                        };
                        // A `]` right after `[` (or `[!`) is a member, as in POSIX globs.
                        if lo == ']' && !first {
                            break;
                        }
                        if lo == '\\' {
                            lo = chars
                                .next()
                                .ok_or_else(|| invalid("a `[` class is not closed by `]`"))?;
                        }
                        first = false;
                        let mut hi = lo;
                        let mut ahead = chars.clone();
                        if ahead.next() == Some('-') && !matches!(ahead.peek(), Some(']') | None) {
                            chars.next();
                            hi = chars.next().unwrap_or(lo);
                            if hi == '\\' {
                                hi = chars
                                    .next()
                                    .ok_or_else(|| invalid("a `[` class is not closed by `]`"))?;
                            }
                            if hi < lo {
                                return Err(invalid(&format!("the range {lo}-{hi} is reversed")));
                            }
                        }
                        ranges.push((lo, hi));
                    }
                    pieces.push(Piece::Class { negated, ranges });
                }
                c => pieces.push(Piece::Literal(c)),
            }
        }
        Ok(Glob { pieces })
    }

    /// The equivalent anchored regex (the glob's matcher).
    pub(crate) fn to_regex(&self) -> String {
        let mut re = String::from("^(?s:");
        for piece in &self.pieces {
            match piece {
                Piece::Literal(c) => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
                Piece::Any => re.push_str(".*"),
                Piece::One => re.push('.'),
                Piece::Class { negated, ranges } => {
                    re.push('[');
                    if *negated {
                        re.push('^');
                    }
                    for &(lo, hi) in ranges {
                        push_class_char(&mut re, lo);
                        if hi != lo {
                            re.push('-');
                            push_class_char(&mut re, hi);
                        }
                    }
                    re.push(']');
                }
            }
        }
        re.push_str(")$");
        re
    }

    /// The characters every match starts with (before the first wildcard).
    pub(crate) fn literal_prefix(&self) -> String {
        self.pieces
            .iter()
            .map_while(|p| match p {
                Piece::Literal(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// The same pattern as a SQL `LIKE` pattern with `\` as the escape character, or `None`
    /// when it has a `[...]` class (which `LIKE` cannot express).
    pub(crate) fn to_sql_like(&self) -> Option<String> {
        let mut like = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(c @ ('%' | '_' | '\\')) => {
                    like.push('\\');
                    like.push(*c);
                }
                Piece::Literal(c) => like.push(*c),
                Piece::Any => like.push('%'),
                Piece::One => like.push('_'),
                Piece::Class { .. } => return None,
            }
        }
        Some(like)
    }
}

fn push_class_char(re: &mut String, c: char) {
    if matches!(c, '\\' | ']' | '[' | '^' | '-' | '&' | '~') {
        re.push('\\');
    }
    re.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, key: &str) -> bool {
        let re = regex::Regex::new(&Glob::parse(pattern).unwrap().to_regex()).unwrap();
        re.is_match(key)
    }

    #[test]
    fn wildcards() {
        assert!(matches("user:*", "user:"));
        assert!(matches("user:*", "user:alice/x"));
        assert!(!matches("user:*", "users"));
        assert!(matches("a?c", "abc"));
        assert!(matches("a?c", "aéc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("*", ""));
        assert!(matches("a**b", "ab"));
        assert!(matches("line\n*", "line\nbreak"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(matches("[abc]1", "b1"));
        assert!(!matches("[abc]1", "d1"));
        assert!(matches("[a-c]", "b"));
        assert!(matches("[!a-c]", "d"));
        assert!(!matches("[^a-c]", "a"));
        assert!(matches("[]]", "]"));
        assert!(matches("[a-]", "-"));
        assert!(matches(r"\*", "*"));
        assert!(!matches(r"\*", "x"));
        assert!(matches("1+.(x)", "1+.(x)"));
        assert!(matches("[\\]]", "]"));
    }

    #[test]
    fn bad_patterns_are_errors() {
        for p in ["[abc", "a\\", "[z-a]"] {
            let e = Glob::parse(p).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{p}");
        }
    }

    #[test]
    fn prefix_and_like() {
        let g = Glob::parse("user:1*").unwrap();
        assert_eq!(g.literal_prefix(), "user:1");
        assert_eq!(g.to_sql_like().as_deref(), Some("user:1%"));
        let g = Glob::parse("50%_?").unwrap();
        assert_eq!(g.to_sql_like().as_deref(), Some("50\\%\\__"));
        assert_eq!(Glob::parse("[ab]*").unwrap().to_sql_like(), None);
        assert_eq!(Glob::parse("*x").unwrap().literal_prefix(), "");
    }
}
