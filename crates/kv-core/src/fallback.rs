//! One-line fallbacks for stores without a native batch: they call the single-key operation
//! once per key, in order. A store opts in explicitly (the trait has no default bodies), so
//! no store silently loses a native path.

use bytes::Bytes;

use crate::{DeleteOptions, Entry, GetOptions, KvStore, PutManyOptions, PutOptions, Result};

/// `get_many` as a loop of `get`.
pub async fn get_many<S: KvStore + ?Sized>(
    store: &S,
    collection: &str,
    keys: &[&str],
    opts: GetOptions,
) -> Result<Vec<Option<Entry>>> {
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        out.push(store.get_opts(collection, key, opts.clone()).await?);
    }
    Ok(out)
}

/// `put_many` as a loop of `put` (not atomic: a failure leaves the earlier entries written).
pub async fn put_many<S: KvStore + ?Sized>(
    store: &S,
    collection: &str,
    entries: &[(&str, Bytes)],
    opts: PutManyOptions,
) -> Result<()> {
    let put = PutOptions::default().with_ttl_opt(opts.ttl);
    for (key, value) in entries {
        store
            .put_opts(collection, key, value.clone(), put.clone())
            .await?;
    }
    Ok(())
}

/// `delete_many` as a loop of `delete`, counting each distinct key once.
pub async fn delete_many<S: KvStore + ?Sized>(
    store: &S,
    collection: &str,
    keys: &[&str],
    opts: DeleteOptions,
) -> Result<u64> {
    let mut n = 0;
    for key in keys {
        if store.delete_opts(collection, key, opts.clone()).await? {
            n += 1;
        }
    }
    Ok(n)
}
