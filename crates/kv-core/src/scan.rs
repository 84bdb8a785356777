//! Shared scan helpers for stores whose keys are ordered (or can be ordered): one cursor
//! format, one paging rule.
//!
//! The cursor of a key-ordered scan is the last key returned, prefixed with `k:` so the
//! format can evolve. A page continues strictly after it.

use std::collections::BinaryHeap;

use crate::{Cursor, Error, ErrorKind, Result, ScanOptions};

const KEY_CURSOR_PREFIX: &str = "k:";

/// A cursor that resumes after `key`.
pub fn cursor_after(key: &str) -> Cursor {
    let mut s = String::with_capacity(KEY_CURSOR_PREFIX.len() + key.len());
    s.push_str(KEY_CURSOR_PREFIX);
    s.push_str(key);
    Cursor::new(s)
}

/// The key a cursor resumes after, checked against the scan's prefix.
pub fn key_after(opts: &ScanOptions) -> Result<Option<&str>> {
    let Some(cursor) = &opts.cursor else {
        return Ok(None);
    };
    let key = cursor
        .as_str()
        .strip_prefix(KEY_CURSOR_PREFIX)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                "scan cursor was not produced by this store",
            )
        })?;
    if !key.starts_with(opts.prefix.as_str()) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "scan cursor does not belong to a scan with this prefix",
        ));
    }
    Ok(Some(key))
}

/// Selects the next page from keys in **any** order: the `page_size` smallest keys that
/// start with the prefix and sort after the cursor, in ascending order, plus whether more
/// remain. O(n log page_size); for stores without an ordered index (hash maps).
pub fn select_page<'k, I>(keys: I, opts: &ScanOptions) -> Result<(Vec<&'k str>, bool)>
where
    I: IntoIterator<Item = &'k str>,
{
    let after = key_after(opts)?;
    let limit = opts.page_size.max(1);
    // Capped: page_size may be usize::MAX ("everything").
    let mut heap: BinaryHeap<&'k str> =
        BinaryHeap::with_capacity(limit.saturating_add(1).min(1024));
    let mut more = false;
    for k in keys {
        if !k.starts_with(opts.prefix.as_str()) || after.is_some_and(|a| k <= a) {
            continue;
        }
        if heap.len() < limit {
            heap.push(k);
        } else if let Some(&top) = heap.peek() {
            more = true;
            if k < top {
                heap.pop();
                heap.push(k);
            }
        }
    }
    Ok((heap.into_sorted_vec(), more))
}

/// The smallest string greater than every string starting with `prefix`, for range scans
/// (`None` when there is none, i.e. the prefix is empty or all `char::MAX`).
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value after `last`, skipping the surrogate gap.
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(prefix: &str, after: Option<&str>, size: usize) -> ScanOptions {
        ScanOptions::default()
            .with_prefix(prefix)
            .with_cursor(after.map(cursor_after))
            .with_page_size(size)
    }

    #[test]
    fn unlimited_page_size_does_not_overflow() {
        let keys = ["b", "a", "c"];
        let (page, more) = select_page(keys, &opts("", None, usize::MAX)).unwrap();
        assert_eq!(page, ["a", "b", "c"]);
        assert!(!more);
    }

    #[test]
    fn pages_cover_everything_once_in_order() {
        let keys: Vec<String> = (0..103).rev().map(|i| format!("k{i:03}")).collect();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let o = opts("", cursor.as_deref(), 10);
            let (page, more) = select_page(keys.iter().map(String::as_str), &o).unwrap();
            seen.extend(page.iter().map(|s| s.to_string()));
            if !more {
                break;
            }
            cursor = page.last().map(|s| s.to_string());
        }
        let mut expected = keys.clone();
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn prefix_filter_and_cursor_checks() {
        let keys = ["a1", "b1", "a2", "ab"];
        let (page, more) = select_page(keys, &opts("a", None, 10)).unwrap();
        assert_eq!(page, vec!["a1", "a2", "ab"]);
        assert!(!more);
        let bad = opts("a", Some("b1"), 10);
        assert_eq!(
            select_page(keys, &bad).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        let foreign = ScanOptions::default().with_cursor(Some(Cursor::new("zzz")));
        assert!(select_page(keys, &foreign).is_err());
    }

    #[test]
    fn exact_page_size_reports_no_more() {
        let keys = ["a", "b"];
        let (page, more) = select_page(keys, &opts("", None, 2)).unwrap();
        assert_eq!(page.len(), 2);
        assert!(!more);
    }

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{D7FF}").as_deref(), Some("\u{E000}"));
    }
}
