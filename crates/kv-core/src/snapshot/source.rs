//! Reading a store for save and copy: which collections, how many entries they hold, and
//! every entry as one stream, page by page, so a collection is never held in memory.

use futures_core::Stream;
use futures_util::{StreamExt, stream};

use crate::{Entry, Error, ErrorKind, KvStore, KvStoreExt, Operation, Result, ScanOptions};

/// The collections to read: the selected ones (resolved, each once, in the given order), or
/// every collection of the store in name order, so that a snapshot is reproducible.
pub(super) async fn collections<S: KvStore>(
    store: &S,
    selected: Option<&[String]>,
) -> Result<Vec<String>> {
    let Some(names) = selected else {
        let mut all = store.collections().await?;
        all.sort_unstable();
        return Ok(all);
    };
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let name = store.info().resolve(name);
        if !out.iter().any(|seen| seen == name) {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

/// The number of live entries in the collections if `wanted` (a keys-only scan of each).
pub(super) async fn total<S: KvStore>(
    store: &S,
    collections: &[String],
    wanted: bool,
) -> Result<Option<u64>> {
    if !wanted {
        return Ok(None);
    }
    let mut total = 0;
    for collection in collections {
        total += store.len(collection).await?;
    }
    Ok(Some(total))
}

/// Every entry of the collections, one collection after the other, as
/// `(collection, key, entry)`.
pub(super) fn entries<'a, S: KvStore>(
    store: &'a S,
    collections: &'a [String],
    page_size: usize,
) -> impl Stream<Item = Result<(&'a str, String, Entry)>> + Send + 'a {
    stream::iter(collections).flat_map(move |collection| {
        let opts = ScanOptions::default().with_page_size(page_size.max(1));
        store.scan(collection, opts).map(move |item| {
            let item = item?;
            match item.entry {
                Some(entry) => Ok((collection.as_str(), item.key, entry)),
                None => Err(Error::new(
                    ErrorKind::Backend,
                    "the store returned a scan item without its entry",
                )
                .with_context(
                    store.info().kind,
                    Operation::Scan,
                    Some(collection),
                    Some(&item.key),
                )),
            }
        })
    })
}
