//! Helpers the layers share: collision-free name joins and clearing by scan.

use kv_core::{Capability, DeleteOptions, Error, KvStore, Result, ScanOptions};

/// The separator between a namespace part (a prefix or a collection name) and the rest, as in
/// py-key-value (`app__key`).
pub(crate) const SEP: &str = "__";

/// Escapes a namespace part so that `escape(part) + "__"` is never a prefix of
/// `escape(other) + "__"` for a different part: the escaped form contains no `"__"` and does
/// not end with `_`, so the first `"__"` of a joined name always ends the part.
///
/// `%` becomes `%25`, and an `_` that is followed by `_` or ends the part becomes `%5F`. Every
/// other character is kept, so names without `%`, `"__"` or a trailing `_` are stored exactly
/// as py-key-value stores them (`app__c1`).
pub(crate) fn escape_part(part: &str) -> String {
    let mut out = String::with_capacity(part.len() + 2);
    let mut chars = part.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '%' => out.push_str("%25"),
            '_' if matches!(chars.peek(), None | Some('_')) => out.push_str("%5F"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape_part`]; `None` if `s` is not an escaped part.
pub(crate) fn unescape_part(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("%25") {
            out.push('%');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("%5F") {
            out.push('_');
            rest = t;
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

/// `escape(part) + "__"`: the namespace every joined name of `part` starts with.
pub(crate) fn namespace(part: &str) -> String {
    let mut ns = escape_part(part);
    ns.push_str(SEP);
    ns
}

/// Splits a joined name at its first `"__"` into the (unescaped) part and the rest.
pub(crate) fn split_joined(joined: &str) -> Option<(String, &str)> {
    let i = joined.find(SEP)?;
    let part = unescape_part(&joined[..i])?;
    Some((part, &joined[i + SEP.len()..]))
}

/// Deletes every live key of `collection` that starts with `prefix`, page by page, and returns
/// how many were removed. Each page is read from the beginning (deleted keys are gone), so it
/// works with any cursor scheme; it stops if a page could not be deleted at all (a store whose
/// scans list keys its deletes do not find).
pub(crate) async fn clear_prefix<S: KvStore + ?Sized>(
    store: &S,
    collection: &str,
    prefix: &str,
) -> Result<u64> {
    let mut total = 0;
    let mut previous: Vec<String> = Vec::new();
    loop {
        let page = store
            .scan_opts(
                collection,
                ScanOptions::default()
                    .with_prefix(prefix)
                    .with_page_size(1000)
                    .keys_only(),
            )
            .await?;
        if page.items.is_empty() {
            return Ok(total);
        }
        let keys: Vec<String> = page.items.into_iter().map(|i| i.key).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let removed = store
            .delete_many_opts(collection, &refs, DeleteOptions::default())
            .await?;
        total += removed;
        if removed == 0 && keys == previous {
            return Ok(total);
        }
        previous = keys;
    }
}

/// True if `collection` holds at least one live key starting with `prefix`.
pub(crate) async fn has_prefix<S: KvStore + ?Sized>(
    store: &S,
    collection: &str,
    prefix: &str,
) -> Result<bool> {
    let page = store
        .scan_opts(
            collection,
            ScanOptions::default()
                .with_prefix(prefix)
                .with_page_size(1)
                .keys_only(),
        )
        .await?;
    Ok(!page.items.is_empty())
}

/// What two stores can both do: the capability of a layer that may send an operation to
/// either.
pub(crate) fn intersect(a: Capability, b: Capability) -> Capability {
    fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, None) => a,
            (None, b) => b,
        }
    }
    Capability {
        stores_data: a.stores_data && b.stores_data,
        ttl: a.ttl && b.ttl,
        ttl_native: a.ttl_native && b.ttl_native,
        ttl_granularity: a.ttl_granularity.max(b.ttl_granularity),
        ttl_max: min_opt(a.ttl_max, b.ttl_max),
        batch_native: a.batch_native && b.batch_native,
        batch_max: min_opt(a.batch_max, b.batch_max),
        scan: a.scan && b.scan,
        scan_ordered: a.scan_ordered && b.scan_ordered,
        list_collections: a.list_collections && b.list_collections,
        clear: a.clear && b.clear,
        destroy: a.destroy && b.destroy,
        if_absent: a.if_absent && b.if_absent,
        compare_and_swap: a.compare_and_swap && b.compare_and_swap,
        created_at: a.created_at && b.created_at,
        durable: a.durable && b.durable,
        shared: a.shared && b.shared,
        read_only: a.read_only || b.read_only,
        evicts: a.evicts || b.evicts,
        max_key_len: min_opt(a.max_key_len, b.max_key_len),
        max_collection_len: min_opt(a.max_collection_len, b.max_collection_len),
        max_value_len: min_opt(a.max_value_len, b.max_value_len),
    }
}

/// Shortens a length limit by the bytes a layer adds.
pub(crate) fn shrink(limit: Option<usize>, by: usize) -> Option<usize> {
    limit.map(|l| l.saturating_sub(by))
}

/// Rewrites the collection and key an error names, from the inner store's names to the ones
/// the caller used. `map` gets the error's (collection, key) and returns the caller's, or
/// `None` to keep the error as it is.
/// Everything else about the error is kept ([`Error::rename`]).
pub(crate) fn rename_context(
    err: Error,
    map: impl FnOnce(Option<&str>, Option<&str>) -> Option<(Option<String>, Option<String>)>,
) -> Error {
    let Some((collection, key)) = map(err.collection(), err.key()) else {
        return err;
    };
    err.rename(collection.as_deref(), key.as_deref())
}

/// `ValueTooLarge` if a value of `len` bytes exceeds the store's value limit — for layers that
/// grow values (a header, a nonce, a tag) and so shrink the limit their callers see.
pub(crate) fn check_value_len(capability: &Capability, len: usize) -> Result<()> {
    match capability.max_value_len {
        Some(max) if len > max => Err(Error::new(
            kv_core::ErrorKind::ValueTooLarge,
            format!("value of {len} bytes is larger than the limit of {max} bytes"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_kept() {
        assert_eq!(namespace("app"), "app__");
        assert_eq!(namespace("default_collection"), "default_collection__");
    }

    #[test]
    fn escaped_parts_round_trip_and_never_overlap() {
        let parts = [
            "", "a", "a_", "a__", "a__b", "_", "__", "___", "%", "%5F", "a%25", "x_y_", "é_",
        ];
        for p in parts {
            let e = escape_part(p);
            assert!(!e.contains("__") && !e.ends_with('_'), "{p:?} -> {e:?}");
            assert_eq!(unescape_part(&e).as_deref(), Some(p));
            let joined = format!("{}{}", namespace(p), "k__x");
            let (part, rest) = split_joined(&joined).unwrap();
            assert_eq!((part.as_str(), rest), (p, "k__x"));
        }
        for p in parts {
            for q in parts {
                if p != q {
                    assert!(!namespace(p).starts_with(&namespace(q)), "{p:?} / {q:?}");
                }
            }
        }
    }
}
