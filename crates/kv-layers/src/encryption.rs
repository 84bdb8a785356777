//! Encrypts values with XChaCha20-Poly1305 (the default) or AES-256-GCM before they reach the
//! store, and decrypts them on reads, with key rotation.
//!
//! Every value the layer writes is sealed with the *primary* key and carries a header naming
//! the algorithm and the key, so older keys added with [`EncryptionLayer::with_key`] keep
//! decrypting what they wrote, and values of both algorithms are read whichever one the layer
//! writes:
//!
//! | bytes | content |
//! |---|---|
//! | 0 | `0xC3`, the [magic](MAGIC) |
//! | 1 | the format: `0x01` [XChaCha20-Poly1305](FORMAT_XCHACHA20_POLY1305), `0x02` [AES-256-GCM](FORMAT_AES_256_GCM) (`0x00` and `0x03`–`0x0F` are reserved: read as [`ErrorKind::Corrupt`]) |
//! | 2 | the key id (`u8`) of the key the value was sealed with |
//! | 3.. | the random nonce (from the operating system's generator): 24 bytes for XChaCha20-Poly1305, 12 for AES-256-GCM |
//! | then | the ciphertext (as long as the value), then the 16-byte authentication tag |
//!
//! A value thus grows by [`OVERHEAD`] (43) bytes with XChaCha20-Poly1305, or
//! [`AES_256_GCM_OVERHEAD`] (31) with AES-256-GCM, and the store's
//! [`Capability::max_value_len`](kv_core::Capability::max_value_len) shrinks by the overhead of
//! the algorithm the layer writes (it rejects longer values itself with
//! [`ErrorKind::ValueTooLarge`]).
//!
//! **Which algorithm.** Both are authenticated encryption with 256-bit keys. The nonces are
//! random, and that is what sets them apart:
//!
//! - *XChaCha20-Poly1305* (default) has 192-bit nonces: random ones never collide in practice,
//!   however many values one key seals. It is fast in software on every CPU.
//! - *AES-256-GCM* ([`EncryptionLayer::aes_256_gcm`]) is faster where the CPU has AES and
//!   carry-less multiply instructions (most x86-64 and ARMv8 servers; the `aes` crate detects
//!   them at run time), and it is the one FIPS 140 approves, should a compliance regime ask
//!   for it (this pure-Rust implementation is not itself a validated module). Its nonces are
//!   only 96 bits: NIST SP 800-38D caps one key at 2<sup>32</sup> (about 4 billion)
//!   encryptions with random nonces, which keeps the chance that two nonces collide below
//!   about 2<sup>-32</sup>; beyond that the chance grows with the square of the count, and a
//!   collision is catastrophic (it reveals the XOR of two values and lets an attacker forge
//!   values under that key). Count the writes under each key and rotate to a new key id well
//!   before 2<sup>32</sup> (rewriting an entry counts: every write draws a nonce).
//!
//! A key may decrypt values of both algorithms, but give each algorithm its own keys: when
//! switching, add a new primary key id and keep the old key for reading. (The format byte is
//! authenticated, so a value cannot be reinterpreted under the other algorithm either way.)
//!
//! **Why `0xC3` followed by a byte below `0x10`.** In UTF-8, `0xC3` starts a two-byte
//! sequence whose second byte must be `0x80..=0xBF`, so `0xC3 0x00..=0x0F` never occurs in
//! valid UTF-8 text — nor, therefore, at the start of a JSON document (what the typed API
//! writes). (`0xC3` alone is MessagePack's `true`, one byte long.) The magic differs from the
//! native [envelope](kv_core::envelope)'s `0xC1` and the
//! [compression](crate::compression) layer's `0xC2`, so the layers can be stacked either way
//! (compress *inside* encryption — `.with(CompressionLayer::new()).with(EncryptionLayer::new(..))`
//! — as ciphertext does not compress).
//!
//! **Bound to its place.** The associated data of every value is the 3 header bytes, then the
//! collection (as resolved: an empty name means the store's default collection) and the key,
//! each prefixed with its length as a `u64` little-endian. A value copied to another key or
//! collection, or whose header was edited, fails to decrypt.
//!
//! **Errors.** Any value the layer cannot open is [`ErrorKind::Corrupt`] naming the layer,
//! operation, collection and key, never a panic: a cut-short value, a reserved format byte, an
//! unknown key id (the message names the id), or a failed authentication (wrong key, tampered
//! bytes, value moved from elsewhere; the message names the algorithm and the key id).
//!
//! **Values without the header** (written before the layer existed) are `Corrupt` by default;
//! with [`allow_plaintext(true)`](EncryptionLayer::allow_plaintext) they are returned as they
//! are, for a migration (they are encrypted the next time they are written). Once the
//! migration is over turn it off again: while it is on, anyone who can write to the store can
//! plant values the layer returns unauthenticated.
//!
//! Reads (`get`, `get_many`, scans with entries) decrypt every value; writes (`put`,
//! `put_many`) encrypt every value. Keys, collection names, TTLs, versions and metadata are
//! stored in the clear. The keys never appear in `Debug` output or in error messages. (The
//! key material is not zeroed on drop.)
//!
//! ```
//! use kv_core::{ErrorKind, KvStoreExt};
//! use kv_layers::StoreLayerExt;
//! use kv_layers::encryption::EncryptionLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let memory = MemoryStore::new();
//! let old_key = [7u8; 32]; // in practice: 32 random bytes from a secret manager
//! let store = memory.clone().with(EncryptionLayer::new(1, old_key));
//! store.put("users", "alice", &30).await?;
//! let stored = memory.get_bytes("users", "alice").await?.unwrap();
//! assert_eq!(&stored[..3], &[0xC3, 0x01, 1]); // magic, format, key id
//!
//! // Key rotation: new writes use key 2, key 1 still decrypts the older values.
//! let new_key = [9u8; 32];
//! let store = memory.clone().with(EncryptionLayer::new(2, new_key).with_key(1, old_key));
//! assert_eq!(store.get::<u32>("users", "alice").await?, Some(30));
//! store.put("users", "bob", &40).await?;
//! assert_eq!(memory.get_bytes("users", "bob").await?.unwrap()[2], 2);
//!
//! // A value copied to another key does not decrypt.
//! memory.put_bytes("users", "mallory", stored).await?;
//! let err = store.get_bytes("users", "mallory").await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Corrupt);
//!
//! // Switching to AES-256-GCM with a new key; the XChaCha20-Poly1305 values stay readable.
//! let store = memory.clone().with(
//!     EncryptionLayer::new(3, [5u8; 32]).aes_256_gcm().with_key(2, new_key).with_key(1, old_key),
//! );
//! store.put("users", "carol", &50).await?;
//! assert_eq!(&memory.get_bytes("users", "carol").await?.unwrap()[..3], &[0xC3, 0x02, 3]);
//! assert_eq!(store.get::<u32>("users", "bob").await?, Some(40));
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use aes_gcm::Aes256Gcm;
use bytes::Bytes;
use chacha20poly1305::aead::{AeadCore, AeadInPlace, KeyInit, OsRng};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use kv_core::{
    Entry, Error, ErrorKind, GetOptions, KvStore, Layer, Operation, PutManyOptions, PutOptions,
    Result, ScanOptions, ScanPage, StoreInfo,
};

const LAYER: &str = "encryption";

/// First byte of every value the layer writes.
pub const MAGIC: u8 = 0xC3;
/// Second byte of a value sealed with XChaCha20-Poly1305.
pub const FORMAT_XCHACHA20_POLY1305: u8 = 0x01;
/// Second byte of a value sealed with AES-256-GCM.
pub const FORMAT_AES_256_GCM: u8 = 0x02;
/// Second bytes up to this one are reserved for the layer (unknown ones are `Corrupt`).
const FORMAT_RESERVED_MAX: u8 = 0x0F;
/// Bytes of the header: magic, format and key id.
pub const HEADER_LEN: usize = 3;
/// Bytes of the XChaCha20-Poly1305 nonce following the header.
pub const NONCE_LEN: usize = 24;
/// Bytes of the AES-256-GCM nonce following the header.
pub const AES_256_GCM_NONCE_LEN: usize = 12;
/// Bytes of the authentication tag ending the value (both algorithms).
pub const TAG_LEN: usize = 16;
/// How many bytes the layer adds to a value sealed with XChaCha20-Poly1305 (the default, and
/// the larger overhead).
pub const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;
/// How many bytes the layer adds to a value sealed with AES-256-GCM.
pub const AES_256_GCM_OVERHEAD: usize = HEADER_LEN + AES_256_GCM_NONCE_LEN + TAG_LEN;

/// The algorithm of a stored value (and of the layer's writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algorithm {
    XChaCha20Poly1305,
    Aes256Gcm,
}

impl Algorithm {
    fn from_format(format: u8) -> Option<Self> {
        match format {
            FORMAT_XCHACHA20_POLY1305 => Some(Algorithm::XChaCha20Poly1305),
            FORMAT_AES_256_GCM => Some(Algorithm::Aes256Gcm),
            _ => None,
        }
    }

    fn format(self) -> u8 {
        match self {
            Algorithm::XChaCha20Poly1305 => FORMAT_XCHACHA20_POLY1305,
            Algorithm::Aes256Gcm => FORMAT_AES_256_GCM,
        }
    }

    fn nonce_len(self) -> usize {
        match self {
            Algorithm::XChaCha20Poly1305 => NONCE_LEN,
            Algorithm::Aes256Gcm => AES_256_GCM_NONCE_LEN,
        }
    }

    fn overhead(self) -> usize {
        HEADER_LEN + self.nonce_len() + TAG_LEN
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::XChaCha20Poly1305 => "XChaCha20-Poly1305",
            Algorithm::Aes256Gcm => "AES-256-GCM",
        }
    }
}

/// One key, ready for either algorithm (which one a value uses is in its header).
struct Ciphers {
    xchacha: XChaCha20Poly1305,
    aes: Aes256Gcm,
}

impl Ciphers {
    fn new(key: &[u8; 32]) -> Arc<Self> {
        Arc::new(Ciphers {
            xchacha: XChaCha20Poly1305::new(Key::from_slice(key)),
            aes: Aes256Gcm::new(aes_gcm::Key::<Aes256Gcm>::from_slice(key)),
        })
    }
}

/// The configuration of an [`Encryption`] store: the algorithm of writes, the primary key,
/// older keys, and whether values without the header are returned. Its `Debug` output shows
/// key ids, never keys.
#[derive(Clone)]
pub struct EncryptionLayer {
    algorithm: Algorithm,
    primary: u8,
    keys: BTreeMap<u8, Arc<Ciphers>>,
    allow_plaintext: bool,
}

impl fmt::Debug for EncryptionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionLayer")
            .field("algorithm", &self.algorithm.name())
            .field("primary_key_id", &self.primary)
            .field("key_ids", &self.key_ids())
            .field("keys", &"<redacted>")
            .field("allow_plaintext", &self.allow_plaintext)
            .finish()
    }
}

impl EncryptionLayer {
    /// Encryption with `key` (256 bits; XChaCha20-Poly1305 unless
    /// [`aes_256_gcm`](Self::aes_256_gcm) is chosen), stored under `key_id` in every value's
    /// header. Every write uses this key.
    ///
    /// ```
    /// let layer = kv_layers::encryption::EncryptionLayer::new(1, [42u8; 32]);
    /// # let _ = layer;
    /// ```
    pub fn new(key_id: u8, key: [u8; 32]) -> Self {
        let mut keys = BTreeMap::new();
        keys.insert(key_id, Ciphers::new(&key));
        Self {
            algorithm: Algorithm::XChaCha20Poly1305,
            primary: key_id,
            keys,
            allow_plaintext: false,
        }
    }

    /// Writes seal values with AES-256-GCM (format `0x02`). Mind its nonce limit: rotate to a
    /// new key id well before 2<sup>32</sup> writes under one key (see the
    /// [module documentation](self)). Values of both algorithms stay readable.
    ///
    /// ```
    /// let layer = kv_layers::encryption::EncryptionLayer::new(1, [42u8; 32]).aes_256_gcm();
    /// # let _ = layer;
    /// ```
    pub fn aes_256_gcm(mut self) -> Self {
        self.algorithm = Algorithm::Aes256Gcm;
        self
    }

    /// Writes seal values with XChaCha20-Poly1305 (format `0x01`, the default). Values of both
    /// algorithms stay readable.
    ///
    /// ```
    /// let layer = kv_layers::encryption::EncryptionLayer::new(1, [42u8; 32])
    ///     .aes_256_gcm()
    ///     .xchacha20_poly1305();
    /// # let _ = layer;
    /// ```
    pub fn xchacha20_poly1305(mut self) -> Self {
        self.algorithm = Algorithm::XChaCha20Poly1305;
        self
    }

    /// Adds an older key, used only to decrypt values whose header names `key_id`. A second
    /// key under the same (non-primary) id replaces the first.
    ///
    /// # Panics
    ///
    /// If `key_id` is the primary key's id: that is a configuration mistake (two keys for one
    /// id), caught when the layer is built.
    ///
    /// ```
    /// use kv_layers::encryption::EncryptionLayer;
    /// let layer = EncryptionLayer::new(3, [3u8; 32]).with_key(2, [2u8; 32]).with_key(1, [1u8; 32]);
    /// assert_eq!(layer.key_ids(), vec![1, 2, 3]);
    /// ```
    pub fn with_key(mut self, key_id: u8, key: [u8; 32]) -> Self {
        assert_ne!(
            key_id, self.primary,
            "EncryptionLayer::with_key: key id {key_id} is the primary key's id"
        );
        self.keys.insert(key_id, Ciphers::new(&key));
        self
    }

    /// Whether values without the header are returned as they are (`true`, for a migration
    /// from unencrypted data) or are [`ErrorKind::Corrupt`] (`false`, the default).
    ///
    /// ```
    /// use kv_layers::encryption::EncryptionLayer;
    /// let layer = EncryptionLayer::new(1, [42u8; 32]).allow_plaintext(true);
    /// # let _ = layer;
    /// ```
    pub fn allow_plaintext(mut self, allow: bool) -> Self {
        self.allow_plaintext = allow;
        self
    }

    /// The id of the key every write uses.
    ///
    /// ```
    /// let layer = kv_layers::encryption::EncryptionLayer::new(5, [42u8; 32]);
    /// assert_eq!(layer.primary_key_id(), 5);
    /// ```
    pub fn primary_key_id(&self) -> u8 {
        self.primary
    }

    /// The ids of every key the layer can decrypt with, in increasing order.
    ///
    /// ```
    /// let layer = kv_layers::encryption::EncryptionLayer::new(5, [42u8; 32]);
    /// assert_eq!(layer.key_ids(), vec![5]);
    /// ```
    pub fn key_ids(&self) -> Vec<u8> {
        self.keys.keys().copied().collect()
    }

    /// The stored form of `value` at `(collection, key)` (`collection` resolved).
    fn seal(&self, collection: &str, key: &str, value: &[u8]) -> Result<Bytes> {
        let algorithm = self.algorithm;
        let ciphers = &self.keys[&self.primary];
        let header = [MAGIC, algorithm.format(), self.primary];
        let aad = associated_data(&header, collection, key);
        let mut out = Vec::with_capacity(algorithm.overhead() + value.len());
        out.extend_from_slice(&header);
        let body = HEADER_LEN + algorithm.nonce_len();
        let sealed = match algorithm {
            Algorithm::XChaCha20Poly1305 => {
                let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(value);
                let c = &ciphers.xchacha;
                c.encrypt_in_place_detached(&nonce, &aad, &mut out[body..])
            }
            Algorithm::Aes256Gcm => {
                let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(value);
                let c = &ciphers.aes;
                c.encrypt_in_place_detached(&nonce, &aad, &mut out[body..])
            }
        };
        let tag = sealed.map_err(|_| {
            Error::new(
                ErrorKind::ValueTooLarge,
                format!("value of {} bytes is too large to encrypt", value.len()),
            )
        })?;
        out.extend_from_slice(&tag);
        Ok(Bytes::from(out))
    }

    /// The value of the stored form at `(collection, key)` (`collection` resolved). Errors are
    /// `Corrupt` (without context).
    fn open(&self, collection: &str, key: &str, stored: Bytes) -> Result<Bytes> {
        let corrupt = |what: String| Error::new(ErrorKind::Corrupt, what);
        if stored.len() < 2 || stored[0] != MAGIC || stored[1] > FORMAT_RESERVED_MAX {
            return if self.allow_plaintext {
                Ok(stored)
            } else {
                Err(corrupt(format!(
                    "value is not encrypted (no 0x{MAGIC:02X} header); \
                     use allow_plaintext(true) to read values written without the layer"
                )))
            };
        }
        let Some(algorithm) = Algorithm::from_format(stored[1]) else {
            return Err(corrupt(format!(
                "unknown encryption format byte 0x{:02X}",
                stored[1]
            )));
        };
        let overhead = algorithm.overhead();
        if stored.len() < overhead {
            return Err(corrupt(format!(
                "{} value cut short ({} bytes, at least {overhead} expected)",
                algorithm.name(),
                stored.len()
            )));
        }
        let key_id = stored[2];
        let Some(ciphers) = self.keys.get(&key_id) else {
            return Err(corrupt(format!(
                "value is encrypted with unknown key id {key_id} (known key ids: {:?})",
                self.key_ids()
            )));
        };
        let (header, rest) = stored.split_at(HEADER_LEN);
        let (nonce, rest) = rest.split_at(algorithm.nonce_len());
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let aad = associated_data(header, collection, key);
        let tag = Tag::from_slice(tag);
        let mut out = ciphertext.to_vec();
        let opened = match algorithm {
            Algorithm::XChaCha20Poly1305 => ciphers.xchacha.decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                &aad,
                &mut out,
                tag,
            ),
            Algorithm::Aes256Gcm => ciphers.aes.decrypt_in_place_detached(
                aes_gcm::Nonce::from_slice(nonce),
                &aad,
                &mut out,
                tag,
            ),
        };
        opened.map_err(|_| {
            corrupt(format!(
                "{} decryption with key id {key_id} failed: wrong key, tampered value, \
                 or value moved from another collection or key",
                algorithm.name()
            ))
        })?;
        Ok(Bytes::from(out))
    }
}

/// The associated data: the header, then collection and key, each prefixed with its length
/// (u64 little-endian).
fn associated_data(header: &[u8], collection: &str, key: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + 16 + collection.len() + key.len());
    aad.extend_from_slice(header);
    for part in [collection, key] {
        aad.extend_from_slice(&(part.len() as u64).to_le_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

impl<S: KvStore> Layer<S> for EncryptionLayer {
    type Store = Encryption<S>;

    fn layer(&self, inner: S) -> Encryption<S> {
        let mut info = inner.info().clone();
        let cap = &mut info.capability;
        let overhead = self.algorithm.overhead();
        cap.max_value_len = cap.max_value_len.map(|m| m.saturating_sub(overhead));
        Encryption {
            inner,
            config: self.clone(),
            info,
        }
    }
}

/// A store encrypting values with XChaCha20-Poly1305 or AES-256-GCM; see [`EncryptionLayer`] and the
/// [module documentation](self) for the stored format. Its `Debug` output hides the keys.
#[derive(Clone, Debug)]
pub struct Encryption<S> {
    inner: S,
    config: EncryptionLayer,
    info: StoreInfo,
}

impl<S> Encryption<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::encryption::EncryptionLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(EncryptionLayer::new(1, [42u8; 32]));
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn check_len(&self, len: usize) -> Result<()> {
        crate::util::check_value_len(&self.info.capability, len)
    }

    fn open_entry(&self, collection: &str, key: &str, mut entry: Entry) -> Result<Entry> {
        let stored = std::mem::take(&mut entry.value);
        entry.value = self.config.open(collection, key, stored)?;
        Ok(entry)
    }
}

impl<S: KvStore> KvStore for Encryption<S> {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    async fn get_opts(
        &self,
        collection: &str,
        key: &str,
        opts: GetOptions,
    ) -> Result<Option<Entry>> {
        let entry = self.inner.get_opts(collection, key, opts).await?;
        let resolved = self.info.resolve(collection);
        entry
            .map(|e| self.open_entry(resolved, key, e))
            .transpose()
            .map_err(|e| e.with_context(LAYER, Operation::Get, Some(collection), Some(key)))
    }

    async fn get_many_opts(
        &self,
        collection: &str,
        keys: &[&str],
        opts: GetOptions,
    ) -> Result<Vec<Option<Entry>>> {
        let entries = self.inner.get_many_opts(collection, keys, opts).await?;
        let resolved = self.info.resolve(collection);
        entries
            .into_iter()
            .zip(keys)
            .map(|(entry, key)| {
                entry
                    .map(|e| self.open_entry(resolved, key, e))
                    .transpose()
                    .map_err(|e| {
                        e.with_context(LAYER, Operation::GetMany, Some(collection), Some(key))
                    })
            })
            .collect()
    }

    async fn put_opts(
        &self,
        collection: &str,
        key: &str,
        value: Bytes,
        opts: PutOptions,
    ) -> Result<()> {
        let stored = self
            .check_len(value.len())
            .and_then(|()| self.config.seal(self.info.resolve(collection), key, &value))
            .map_err(|e| e.with_context(LAYER, Operation::Put, Some(collection), Some(key)))?;
        self.inner.put_opts(collection, key, stored, opts).await
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        let resolved = self.info.resolve(collection);
        let mut stored = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let sealed = self
                .check_len(value.len())
                .and_then(|()| self.config.seal(resolved, key, value))
                .map_err(|e| {
                    e.with_context(LAYER, Operation::PutMany, Some(collection), Some(key))
                })?;
            stored.push((*key, sealed));
        }
        self.inner.put_many_opts(collection, &stored, opts).await
    }

    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        // Conditions cannot be evaluated on encrypted bytes below.
        let mut page = self
            .inner
            .scan_opts(collection, opts.without_filter())
            .await?;
        let resolved = self.info.resolve(collection);
        for item in &mut page.items {
            if let Some(entry) = item.entry.take() {
                let entry = self.open_entry(resolved, &item.key, entry).map_err(|e| {
                    e.with_context(LAYER, Operation::Scan, Some(collection), Some(&item.key))
                })?;
                item.entry = Some(entry);
            }
        }
        Ok(page)
    }

    forward!(inner; delete_opts, delete_many_opts, ttl_opts, collections_opts, clear_opts,
        destroy_opts, cull_opts, close);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreLayerExt;
    use kv_core::KvStoreExt;
    use kv_store_memory::MemoryStore;

    const K1: [u8; 32] = [0x11; 32];
    const K2: [u8; 32] = [0x5A; 32];

    async fn get_many_bytes<S: KvStore>(s: &S, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let entries = s.get_many_opts("c", keys, GetOptions::default()).await?;
        Ok(entries.into_iter().map(|e| e.map(|e| e.value)).collect())
    }

    fn assert_corrupt(r: Result<Option<Bytes>>, what: &str) -> Error {
        let err = r.expect_err(what);
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{what}: {err}");
        err
    }

    #[tokio::test]
    async fn round_trips_every_size_through_get_many_and_scans() {
        round_trip(
            EncryptionLayer::new(1, K1),
            FORMAT_XCHACHA20_POLY1305,
            OVERHEAD,
        )
        .await;
        let aes = EncryptionLayer::new(1, K1).aes_256_gcm();
        round_trip(aes, FORMAT_AES_256_GCM, AES_256_GCM_OVERHEAD).await;
    }

    async fn round_trip(layer: EncryptionLayer, format: u8, overhead: usize) {
        let memory = MemoryStore::new();
        let s = memory.clone().with(layer);
        let lens = [0usize, 1, 15, 16, 17, 1000, 1 << 20];
        for len in lens {
            let value: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let key = format!("k{len}");
            s.put_bytes("c", &key, value.clone()).await.unwrap();
            assert_eq!(s.get_bytes("c", &key).await.unwrap().unwrap(), value);
            let stored = memory.get_bytes("c", &key).await.unwrap().unwrap();
            assert_eq!(&stored[..3], &[MAGIC, format, 1]);
            assert_eq!(stored.len(), len + overhead);
            if len >= 16 {
                // The plaintext does not appear in the stored form.
                let needle = &value[..16];
                assert!(!stored.windows(16).any(|w| w == needle), "len {len}");
            }
        }
        // A fresh nonce on every write.
        s.put_bytes("c", "same", &b"v"[..]).await.unwrap();
        let first = memory.get_bytes("c", "same").await.unwrap().unwrap();
        s.put_bytes("c", "same", &b"v"[..]).await.unwrap();
        let second = memory.get_bytes("c", "same").await.unwrap().unwrap();
        assert_ne!(first, second);
        // get_many, put_many and scans.
        let batch = [
            ("m1", Bytes::from_static(b"one")),
            ("m2", Bytes::from_static(b"")),
        ];
        s.put_many_opts("c", &batch, PutManyOptions::default())
            .await
            .unwrap();
        let got = get_many_bytes(&s, &["k0", "m1", "m2", "none", "k1000"])
            .await
            .unwrap();
        assert_eq!(got[0].as_deref(), Some(&b""[..]));
        assert_eq!(got[1].as_deref(), Some(&b"one"[..]));
        assert_eq!(got[2].as_deref(), Some(&b""[..]));
        assert_eq!(got[3], None);
        assert_eq!(got[4].as_ref().unwrap().len(), 1000);
        let page = s.scan_opts("c", ScanOptions::default()).await.unwrap();
        assert_eq!(page.items.len(), lens.len() + 3);
        for item in page.items {
            let value = item.entry.unwrap().value;
            match item.key.strip_prefix('k') {
                Some(len) => assert_eq!(value.len(), len.parse::<usize>().unwrap()),
                None if item.key == "same" => assert_eq!(value, &b"v"[..]),
                None => assert!(value == b"one"[..] || value.is_empty()),
            }
        }
        // The typed API and the default collection (resolved on both sides).
        s.put("", "alice", &serde_json::json!({"age": 30}))
            .await
            .unwrap();
        let back: serde_json::Value = s.get(DEFAULT, "alice").await.unwrap().unwrap();
        assert_eq!(back["age"], 30);
    }

    const DEFAULT: &str = kv_core::DEFAULT_COLLECTION;

    #[tokio::test]
    async fn rotation_reads_old_keys_and_writes_with_the_primary() {
        let memory = MemoryStore::new();
        let v1 = memory.clone().with(EncryptionLayer::new(1, K1));
        v1.put_bytes("c", "old", &b"written with 1"[..])
            .await
            .unwrap();
        let v2 = memory
            .clone()
            .with(EncryptionLayer::new(2, K2).with_key(1, K1));
        assert_eq!(
            v2.get_bytes("c", "old").await.unwrap().unwrap(),
            &b"written with 1"[..]
        );
        v2.put_bytes("c", "new", &b"written with 2"[..])
            .await
            .unwrap();
        assert_eq!(memory.get_bytes("c", "new").await.unwrap().unwrap()[2], 2);
        // Rewriting an old value re-encrypts it with the primary key.
        let old = v2.get_bytes("c", "old").await.unwrap().unwrap();
        v2.put_bytes("c", "old", old).await.unwrap();
        assert_eq!(memory.get_bytes("c", "old").await.unwrap().unwrap()[2], 2);
        // The old layer does not know key 2.
        let err = assert_corrupt(v1.get_bytes("c", "new").await, "unknown id");
        assert!(err.to_string().contains("unknown key id 2"), "{err}");
        assert_eq!((err.store(), err.key()), (Some("encryption"), Some("new")));
        // The same id with another key fails authentication, not a panic.
        let wrong = memory.clone().with(EncryptionLayer::new(2, K1));
        let err = assert_corrupt(wrong.get_bytes("c", "new").await, "wrong key");
        assert!(err.to_string().contains("key id 2"), "{err}");
        // Unknown ids in get_many and scans.
        let err = get_many_bytes(&v1, &["new"]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        let err = v1.scan_opts("c", ScanOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
    }

    #[test]
    #[should_panic(expected = "primary key's id")]
    fn a_second_key_for_the_primary_id_panics() {
        let _ = EncryptionLayer::new(1, K1).with_key(1, K2);
    }

    #[test]
    fn every_flipped_byte_is_corrupt() {
        every_flipped_byte_is_corrupt_with(EncryptionLayer::new(7, K1));
        every_flipped_byte_is_corrupt_with(EncryptionLayer::new(7, K1).aes_256_gcm());
    }

    fn every_flipped_byte_is_corrupt_with(layer: EncryptionLayer) {
        let good = layer.seal("c", "k", b"a secret value").unwrap().to_vec();
        assert_eq!(
            layer.open("c", "k", Bytes::from(good.clone())).unwrap(),
            &b"a secret value"[..]
        );
        for i in 0..good.len() {
            for x in [0x01u8, 0x80, 0xFF] {
                let mut bad = good.clone();
                bad[i] ^= x;
                let err = layer.open("c", "k", Bytes::from(bad)).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Corrupt, "byte {i} ^ {x:#x}");
            }
        }
        // Cut short anywhere, or extended.
        for cut in 0..good.len() {
            let err = layer
                .open("c", "k", Bytes::from(good[..cut].to_vec()))
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupt, "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(layer.open("c", "k", Bytes::from(longer)).is_err());
        // Reserved formats.
        for format in [0x00, 0x03, 0x0F] {
            let mut bad = good.clone();
            bad[1] = format;
            let err = layer.open("c", "k", Bytes::from(bad)).unwrap_err();
            assert!(err.to_string().contains("format"), "{err}");
        }
        // The other algorithm's format byte: authentication fails (or the value is too
        // short for the other layout), never a panic.
        let mut other = good.clone();
        other[1] ^= FORMAT_XCHACHA20_POLY1305 ^ FORMAT_AES_256_GCM;
        let err = layer.open("c", "k", Bytes::from(other)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
    }

    #[tokio::test]
    async fn both_algorithms_are_read_whichever_one_writes() {
        let memory = MemoryStore::new();
        let chacha = memory
            .clone()
            .with(EncryptionLayer::new(1, K1).with_key(2, K2));
        let aes = memory
            .clone()
            .with(EncryptionLayer::new(2, K2).aes_256_gcm().with_key(1, K1));
        chacha
            .put_bytes("c", "x", &b"by xchacha"[..])
            .await
            .unwrap();
        aes.put_bytes("c", "a", &b"by aes"[..]).await.unwrap();
        let batch = [("b", Bytes::from_static(b"by aes too"))];
        aes.put_many_opts("c", &batch, PutManyOptions::default())
            .await
            .unwrap();
        let stored = get_many_bytes(&memory, &["x", "a", "b"]).await.unwrap();
        let headers: Vec<&[u8]> = stored.iter().map(|v| &v.as_ref().unwrap()[..3]).collect();
        assert_eq!(
            headers,
            [
                &[MAGIC, FORMAT_XCHACHA20_POLY1305, 1][..],
                &[MAGIC, FORMAT_AES_256_GCM, 2][..],
                &[MAGIC, FORMAT_AES_256_GCM, 2][..],
            ]
        );
        for s in [&chacha, &aes] {
            let got = get_many_bytes(s, &["x", "a", "b"]).await.unwrap();
            assert_eq!(got[0].as_deref(), Some(&b"by xchacha"[..]));
            assert_eq!(got[1].as_deref(), Some(&b"by aes"[..]));
            assert_eq!(got[2].as_deref(), Some(&b"by aes too"[..]));
            let page = s.scan_opts("c", ScanOptions::default()).await.unwrap();
            assert_eq!(page.items.len(), 3);
        }
        // AES-GCM values are bound to their place and key like the others.
        memory
            .put_bytes("c", "moved", stored[1].clone().unwrap())
            .await
            .unwrap();
        let err = assert_corrupt(aes.get_bytes("c", "moved").await, "moved");
        assert!(err.to_string().contains("AES-256-GCM"), "{err}");
        let wrong = memory.clone().with(EncryptionLayer::new(2, K1));
        let err = assert_corrupt(wrong.get_bytes("c", "a").await, "wrong key");
        assert!(err.to_string().contains("key id 2"), "{err}");
        let old = memory.clone().with(EncryptionLayer::new(1, K1));
        let err = assert_corrupt(old.get_bytes("c", "a").await, "unknown id");
        assert!(err.to_string().contains("unknown key id 2"), "{err}");
    }

    #[tokio::test]
    async fn moved_values_are_corrupt() {
        let memory = MemoryStore::new();
        let s = memory.clone().with(EncryptionLayer::new(1, K1));
        s.put_bytes("c", "ab", &b"value"[..]).await.unwrap();
        let stored = memory.get_bytes("c", "ab").await.unwrap().unwrap();
        // Another key, another collection, and the length-prefix ambiguity ("c"+"ab" vs "ca"+"b").
        for (collection, key) in [("c", "other"), ("d", "ab"), ("ca", "b"), ("", "ab")] {
            memory
                .put_bytes(collection, key, stored.clone())
                .await
                .unwrap();
            let err = assert_corrupt(s.get_bytes(collection, key).await, key);
            assert_eq!(err.key(), Some(key));
            assert!(err.to_string().contains("moved"), "{err}");
        }
        // Values written to the default collection by name or by "" are the same place.
        s.put_bytes("", "d", &b"default"[..]).await.unwrap();
        assert_eq!(
            s.get_bytes(DEFAULT, "d").await.unwrap().unwrap(),
            &b"default"[..]
        );
        s.put_bytes(DEFAULT, "e", &b"named"[..]).await.unwrap();
        assert_eq!(s.get_bytes("", "e").await.unwrap().unwrap(), &b"named"[..]);
    }

    #[tokio::test]
    async fn plaintext_is_corrupt_unless_allowed() {
        let memory = MemoryStore::new();
        let strict = memory.clone().with(EncryptionLayer::new(1, K1));
        let migrating = memory
            .clone()
            .with(EncryptionLayer::new(1, K1).allow_plaintext(true));
        let olds: &[&[u8]] = &[
            b"",
            b"x",
            &[MAGIC],
            &[MAGIC, 0x80],
            &[MAGIC, 0x10, 1, 2],
            &[0xC2, 0x01, 0x00], // a compression header
            b"{\"plain\":true}",
            "ünïcode".as_bytes(),
        ];
        for (i, old) in olds.iter().enumerate() {
            let key = format!("old{i}");
            memory.put_bytes("c", &key, old.to_vec()).await.unwrap();
            assert_eq!(migrating.get_bytes("c", &key).await.unwrap().unwrap(), old);
            let err = assert_corrupt(strict.get_bytes("c", &key).await, &key);
            assert!(err.to_string().contains("allow_plaintext"), "{err}");
        }
        // Migrating: rewrites encrypt, and the strict layer reads them afterwards.
        let old = migrating.get_bytes("c", "old6").await.unwrap().unwrap();
        migrating.put_bytes("c", "old6", old).await.unwrap();
        assert_eq!(
            strict.get_bytes("c", "old6").await.unwrap().unwrap(),
            &b"{\"plain\":true}"[..]
        );
        // Headers with the magic are never passed through, even when migrating.
        memory
            .put_bytes("c", "bad", vec![MAGIC, FORMAT_XCHACHA20_POLY1305, 1, 0])
            .await
            .unwrap();
        assert_corrupt(migrating.get_bytes("c", "bad").await, "cut short");
    }

    #[tokio::test]
    async fn debug_output_hides_the_keys() {
        let layer = EncryptionLayer::new(2, K2).with_key(1, K1);
        let store = MemoryStore::new().with(layer.clone());
        for text in [
            format!("{layer:?}"),
            format!("{layer:#?}"),
            format!("{store:?}"),
        ] {
            assert!(text.contains("redacted"), "{text}");
            assert!(text.contains("primary_key_id: 2"), "{text}");
            for needle in ["90", "5a", "5A", "17", "0x11", "[17", "Z"] {
                assert!(!text.contains(needle), "{needle} in {text}");
            }
        }
        assert!(format!("{layer:?}").contains("XChaCha20-Poly1305"));
        let aes = format!("{:?}", layer.clone().aes_256_gcm());
        assert!(
            aes.contains("AES-256-GCM") && aes.contains("redacted"),
            "{aes}"
        );
        // Errors do not carry them either.
        let err = EncryptionLayer::new(2, K1)
            .open("c", "k", layer.seal("c", "k", b"v").unwrap())
            .unwrap_err();
        assert!(!err.to_string().contains("90"), "{err}");
    }

    #[tokio::test]
    async fn corrupt_entries_keep_their_ttl_and_can_be_replaced_and_limits_shrink() {
        let memory = MemoryStore::new();
        let s = memory.clone().with(EncryptionLayer::new(1, K1));
        memory.put_bytes("c", "bad", &b"junk"[..]).await.unwrap();
        // Keys-only scans do not look at values.
        let keys = s.scan_opts("c", ScanOptions::default().keys_only()).await;
        assert_eq!(keys.unwrap().items.len(), 1);
        assert_eq!(s.ttl("c", "bad").await.unwrap(), Some(kv_core::Ttl::Never));
        s.put_bytes("c", "bad", &b"fixed"[..]).await.unwrap();
        assert_eq!(
            s.get_bytes("c", "bad").await.unwrap().unwrap(),
            &b"fixed"[..]
        );
        assert!(s.delete("c", "bad").await.unwrap());

        let limited = crate::limit_size::LimitSizeLayer::new().max(100);
        let s = MemoryStore::new()
            .with(limited)
            .with(EncryptionLayer::new(1, K1));
        assert_eq!(s.info().capability.max_value_len, Some(100 - OVERHEAD));
        s.put_bytes("c", "ok", vec![7u8; 100 - OVERHEAD])
            .await
            .unwrap();
        let err = s
            .put_bytes("c", "big", vec![7u8; 101 - OVERHEAD])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
        assert_eq!(err.key(), Some("big"));
        // AES-256-GCM adds less.
        let aes = EncryptionLayer::new(1, K1).aes_256_gcm();
        let s = MemoryStore::new().with(limited).with(aes);
        assert_eq!(
            s.info().capability.max_value_len,
            Some(100 - AES_256_GCM_OVERHEAD)
        );
        s.put_bytes("c", "ok", vec![7u8; 100 - AES_256_GCM_OVERHEAD])
            .await
            .unwrap();
        let err = s
            .put_bytes("c", "big", vec![7u8; 101 - AES_256_GCM_OVERHEAD])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
    }
}
