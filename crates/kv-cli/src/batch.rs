//! Batched writes for `import` and `copy`: entries are grouped by collection and expiry and
//! written with `put_many`, so plain data costs one round trip per batch, not per entry.
//!
//! Entries written by one `put_many` on the source share their `expires_at`, so grouping by
//! expiry batches TTL'd data too. The lifetime is computed when a group is written (expiry −
//! now), so the time spent buffering never lengthens an entry's life; entries that expired in
//! the meantime are skipped and counted.
//!
//! Order is kept where it matters: a key that is buffered already in another group (the same
//! key twice in an import file) flushes everything first, so the last line wins as it would
//! with one put per line.

use std::collections::{HashMap, HashSet};

use kv::{Bytes, KvStore, PutManyOptions, Store, Timestamp};

use crate::error::CliResult;

/// Entries per `put_many` call.
pub const BATCH_SIZE: usize = 500;

/// Entries buffered in total before everything is written.
const MAX_BUFFERED: usize = 2 * BATCH_SIZE;

/// Counts of what a [`BatchWriter`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Entries written.
    pub written: u64,
    /// Entries skipped because they had expired before they could be written.
    pub expired: u64,
}

type GroupKey = (String, Option<Timestamp>);

/// Buffers entries and writes them in batches. Call [`BatchWriter::finish`] at the end:
/// dropping it loses what is still buffered.
pub struct BatchWriter<'s> {
    store: &'s Store,
    groups: HashMap<GroupKey, Vec<(String, Bytes)>>,
    /// `(collection, key)` of every buffered entry, to keep the order of rewrites.
    buffered: HashSet<(String, String)>,
    counts: Written,
}

impl<'s> BatchWriter<'s> {
    /// A writer into `store`.
    pub fn new(store: &'s Store) -> Self {
        BatchWriter {
            store,
            groups: HashMap::new(),
            buffered: HashSet::new(),
            counts: Written::default(),
        }
    }

    /// Adds an entry; writes a batch when one is full.
    pub async fn push(
        &mut self,
        collection: String,
        key: String,
        value: Bytes,
        expires_at: Option<Timestamp>,
    ) -> CliResult<()> {
        if expires_at.is_some_and(|t| t <= Timestamp::now()) {
            self.counts.expired += 1;
            return Ok(());
        }
        let id = (collection, key);
        if self.buffered.contains(&id) {
            self.flush_all().await?;
        }
        let (collection, key) = id.clone();
        self.buffered.insert(id);
        let group_key = (collection, expires_at);
        let group = self.groups.entry(group_key.clone()).or_default();
        group.push((key, value));
        if group.len() >= BATCH_SIZE {
            let entries = self.groups.remove(&group_key).unwrap_or_default();
            self.write_group(group_key, entries).await?;
        } else if self.buffered.len() >= MAX_BUFFERED {
            self.flush_all().await?;
        }
        Ok(())
    }

    /// Writes everything buffered and returns the totals so far.
    pub async fn finish(&mut self) -> CliResult<Written> {
        self.flush_all().await?;
        Ok(self.counts)
    }

    async fn flush_all(&mut self) -> CliResult<()> {
        // The order of groups does not matter: a key is never buffered in two groups.
        let groups: Vec<_> = self.groups.drain().collect();
        for (group_key, entries) in groups {
            self.write_group(group_key, entries).await?;
        }
        Ok(())
    }

    async fn write_group(
        &mut self,
        (collection, expires_at): GroupKey,
        entries: Vec<(String, Bytes)>,
    ) -> CliResult<()> {
        for (key, _) in &entries {
            self.buffered.remove(&(collection.clone(), key.clone()));
        }
        let ttl = match expires_at {
            None => None,
            Some(t) => match t.duration_since(Timestamp::now()).filter(|d| !d.is_zero()) {
                Some(d) => Some(d),
                None => {
                    self.counts.expired += entries.len() as u64;
                    return Ok(());
                }
            },
        };
        let refs: Vec<(&str, Bytes)> = entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        self.store
            .put_many_opts(
                &collection,
                &refs,
                PutManyOptions::default().with_ttl_opt(ttl),
            )
            .await?;
        self.counts.written += entries.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kv::KvStoreExt;

    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn batches_keep_the_last_write_and_the_expiry() {
        rt().block_on(async {
            let store = kv::open("memory://").await.unwrap();
            let mut w = BatchWriter::new(&store);
            let later = Timestamp::now().checked_add(Duration::from_secs(100));
            let past = Timestamp::now().checked_add(Duration::ZERO);
            for i in 0..1200 {
                let k = format!("k{i}");
                w.push("c".into(), k, Bytes::from("1"), None).await.unwrap();
            }
            w.push("c".into(), "k1".into(), Bytes::from("2"), later)
                .await
                .unwrap();
            w.push("c".into(), "k1".into(), Bytes::from("3"), None)
                .await
                .unwrap();
            w.push("c".into(), "k2".into(), Bytes::from("4"), later)
                .await
                .unwrap();
            w.push("c".into(), "gone".into(), Bytes::from("5"), past)
                .await
                .unwrap();
            let counts = w.finish().await.unwrap();
            assert_eq!(
                counts,
                Written {
                    written: 1203,
                    expired: 1
                }
            );
            assert_eq!(store.len("c").await.unwrap(), 1200);
            assert_eq!(store.get::<i32>("c", "k1").await.unwrap(), Some(3));
            assert_eq!(store.get::<i32>("c", "k2").await.unwrap(), Some(4));
            let ttl = store.ttl("c", "k2").await.unwrap().unwrap().remaining();
            assert!(ttl.is_some_and(|d| d > Duration::from_secs(90)), "{ttl:?}");
            assert_eq!(store.ttl("c", "k1").await.unwrap(), Some(kv::Ttl::Never));
        });
    }
}
