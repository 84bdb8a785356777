//! Batched writes for load and copy: entries are grouped by collection and expiry and written
//! with `put_many`, so plain data costs one round trip per batch, not per entry.
//!
//! Entries written by one `put_many` on the source share their `expires_at`, so grouping by
//! expiry batches TTL'd data too. The lifetime is computed when a group is written (expiry −
//! now), so the time spent buffering never lengthens an entry's life; entries that expired in
//! the meantime are skipped and counted.
//!
//! Order is kept where it matters: a key that is buffered already in another group (the same
//! key twice in a file) flushes everything first, so the last line wins as it would with one
//! put per line.
//!
//! With [`WriteMode::IfAbsent`] nothing is buffered: each entry is one atomic put-if-absent,
//! since no store offers a conditional batch and checking first would race other writers.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;

use super::{Expiry, Summary, WriteMode};
use crate::{ErrorKind, KvStore, PutManyOptions, PutMode, PutOptions, Result, Timestamp};

/// Counts of what a [`BatchWriter`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Written {
    /// Entries written.
    pub written: u64,
    /// Entries skipped because they had expired before they could be written.
    pub expired: u64,
    /// Entries skipped because their key held a live entry ([`WriteMode::IfAbsent`]).
    pub existing: u64,
}

impl Written {
    /// The summary of a load or copy that read `collections` collections.
    pub(super) fn summary(self, collections: u64) -> Summary {
        Summary {
            entries: self.written,
            expired: self.expired,
            existing: self.existing,
            collections,
        }
    }
}

type GroupKey = (String, Option<Timestamp>);

/// Buffers entries and writes them in batches. Call [`BatchWriter::finish`] at the end:
/// dropping it loses what is still buffered.
pub(super) struct BatchWriter<'s, S> {
    store: &'s S,
    batch_size: usize,
    expiry: Expiry,
    mode: WriteMode,
    groups: HashMap<GroupKey, Vec<(String, Bytes)>>,
    /// `(collection, key)` of every buffered entry, to keep the order of rewrites.
    buffered: HashSet<(String, String)>,
    counts: Written,
}

impl<'s, S: KvStore> BatchWriter<'s, S> {
    /// A writer into `store`; `batch_size` must be at least 1.
    pub(super) fn new(store: &'s S, batch_size: usize, expiry: Expiry, mode: WriteMode) -> Self {
        BatchWriter {
            store,
            batch_size: batch_size.max(1),
            expiry,
            mode,
            groups: HashMap::new(),
            buffered: HashSet::new(),
            counts: Written::default(),
        }
    }

    /// Adds an entry; writes a batch when one is full.
    pub(super) async fn push(
        &mut self,
        collection: String,
        key: String,
        value: Bytes,
        expires_at: Option<Timestamp>,
    ) -> Result<()> {
        let expired = expires_at.is_some_and(|t| t <= Timestamp::now());
        if expired && self.expiry != Expiry::PersistAll {
            self.counts.expired += 1;
            return Ok(());
        }
        let expires_at = match self.expiry {
            Expiry::Keep => expires_at,
            Expiry::Persist | Expiry::PersistAll => None,
        };
        if self.mode == WriteMode::IfAbsent {
            return self
                .put_if_absent(&collection, &key, value, expires_at)
                .await;
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
        if group.len() >= self.batch_size {
            let entries = self.groups.remove(&group_key).unwrap_or_default();
            self.write_group(group_key, entries).await?;
        } else if self.buffered.len() >= 2 * self.batch_size {
            // Many small groups (one expiry each): bound the memory they hold.
            self.flush_all().await?;
        }
        Ok(())
    }

    /// Writes everything buffered and returns the totals so far.
    pub(super) async fn finish(&mut self) -> Result<Written> {
        self.flush_all().await?;
        Ok(self.counts)
    }

    async fn flush_all(&mut self) -> Result<()> {
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
    ) -> Result<()> {
        for (key, _) in &entries {
            self.buffered.remove(&(collection.clone(), key.clone()));
        }
        let Some(ttl) = remaining(expires_at) else {
            self.counts.expired += entries.len() as u64;
            return Ok(());
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

    async fn put_if_absent(
        &mut self,
        collection: &str,
        key: &str,
        value: Bytes,
        expires_at: Option<Timestamp>,
    ) -> Result<()> {
        let Some(ttl) = remaining(expires_at) else {
            self.counts.expired += 1;
            return Ok(());
        };
        let opts = PutOptions::default()
            .with_ttl_opt(ttl)
            .with_mode(PutMode::IfAbsent);
        match self.store.put_opts(collection, key, value, opts).await {
            Ok(()) => self.counts.written += 1,
            Err(e) if e.kind() == ErrorKind::ConditionFailed => self.counts.existing += 1,
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// The TTL to write for an expiry time: `Some(None)` = never expires, `None` = expired
/// already (a zero TTL is invalid, and the entry is dead anyway).
fn remaining(expires_at: Option<Timestamp>) -> Option<Option<Duration>> {
    match expires_at {
        None => Some(None),
        Some(t) => t
            .duration_since(Timestamp::now())
            .filter(|d| !d.is_zero())
            .map(Some),
    }
}
