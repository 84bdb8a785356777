//! Typed operations shared by [`KvStoreExt`](crate::KvStoreExt) (JSON) and
//! [`Collection`](crate::Collection) (any codec), so the logic exists once.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    Codec, DeleteOptions, ErrorKind, GetOptions, KvStore, PutManyOptions, PutMode, PutOptions,
    Result,
};

pub(crate) async fn get<S, T>(store: &S, codec: Codec, c: &str, k: &str) -> Result<Option<T>>
where
    S: KvStore + ?Sized,
    T: DeserializeOwned,
{
    match store.get_opts(c, k, GetOptions::default()).await? {
        None => Ok(None),
        Some(e) => codec.decode(&e.value).map(Some).map_err(|err| {
            err.with_context(store.info().kind, crate::Operation::Get, Some(c), Some(k))
        }),
    }
}

pub(crate) async fn get_many<S, T>(
    store: &S,
    codec: Codec,
    c: &str,
    keys: &[&str],
) -> Result<Vec<Option<T>>>
where
    S: KvStore + ?Sized,
    T: DeserializeOwned,
{
    let entries = store.get_many_opts(c, keys, GetOptions::default()).await?;
    entries
        .into_iter()
        .zip(keys)
        .map(|(e, k)| match e {
            None => Ok(None),
            Some(e) => codec.decode(&e.value).map(Some).map_err(|err| {
                err.with_context(
                    store.info().kind,
                    crate::Operation::GetMany,
                    Some(c),
                    Some(k),
                )
            }),
        })
        .collect()
}

pub(crate) fn encode_many<T: Serialize>(
    codec: Codec,
    entries: &[(&str, T)],
) -> Result<Vec<(String, Bytes)>> {
    entries
        .iter()
        .map(|(k, v)| {
            codec
                .encode(v)
                .map(|b| ((*k).to_owned(), b))
                .map_err(|e| e.with_key(k))
        })
        .collect()
}

pub(crate) async fn put_many_encoded<S: KvStore + ?Sized>(
    store: &S,
    c: &str,
    encoded: Vec<(String, Bytes)>,
    ttl: Option<Duration>,
) -> Result<()> {
    let refs: Vec<(&str, Bytes)> = encoded
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    store
        .put_many_opts(c, &refs, PutManyOptions::default().with_ttl_opt(ttl))
        .await
}

/// Inserts if absent; `Ok(false)` if a live entry exists.
pub(crate) async fn put_if_absent_bytes<S: KvStore + ?Sized>(
    store: &S,
    c: &str,
    k: &str,
    value: Bytes,
    ttl: Option<Duration>,
) -> Result<bool> {
    let opts = PutOptions::default()
        .with_ttl_opt(ttl)
        .with_mode(PutMode::IfAbsent);
    match store.put_opts(c, k, value, opts).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::ConditionFailed => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) async fn get_or_insert_with<S, T, F, Fut>(
    store: &S,
    codec: Codec,
    c: &str,
    k: &str,
    ttl: Option<Duration>,
    make: F,
) -> Result<T>
where
    S: KvStore + ?Sized,
    T: Serialize + DeserializeOwned + Send,
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = Result<T>> + Send,
{
    if let Some(v) = get::<S, T>(store, codec, c, k).await? {
        return Ok(v);
    }
    let value = make().await?;
    let bytes = codec.encode(&value)?;
    if store.info().capability.if_absent {
        if put_if_absent_bytes(store, c, k, bytes, ttl).await? {
            return Ok(value);
        }
        // Another writer won the race: return what it stored, so every caller agrees.
        if let Some(v) = get::<S, T>(store, codec, c, k).await? {
            return Ok(v);
        }
        // It expired or was deleted in between; ours is as good as any.
        Ok(value)
    } else {
        store
            .put_opts(c, k, bytes, PutOptions::default().with_ttl_opt(ttl))
            .await?;
        Ok(value)
    }
}

/// Removes an entry and returns its value, if this call is the one that removed it.
pub(crate) async fn pop<S, T>(store: &S, codec: Codec, c: &str, k: &str) -> Result<Option<T>>
where
    S: KvStore + ?Sized,
    T: DeserializeOwned + Send,
{
    let Some(entry) = store.get_opts(c, k, GetOptions::default()).await? else {
        return Ok(None);
    };
    let value: T = codec.decode(&entry.value)?;
    // Only the caller whose delete removed the entry gets the value, so two concurrent pops
    // never both return it.
    if store.delete_opts(c, k, DeleteOptions::default()).await? {
        Ok(Some(value))
    } else {
        Ok(None)
    }
}
