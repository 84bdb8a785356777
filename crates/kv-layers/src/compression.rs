//! Compresses values with LZ4 (the default) or zstd before they reach the store, and
//! decompresses them on reads.
//!
//! **Which algorithm.** LZ4 ([`lz4_flex`], pure Rust) is very fast and compresses text and
//! JSON about 2×; it suits hot values. zstd ([`CompressionLayer::zstd`], the reference C
//! library through the `zstd` crate) compresses noticeably better at a few times the CPU
//! cost (more at high levels); it suits large, cold or bandwidth-bound values. Reads decode
//! both whatever the layer is configured to write, so switching algorithm needs no migration.
//!
//! Every value the layer writes carries a 2-byte header, so raw and compressed values coexist
//! in one store and values written before the layer existed stay readable:
//!
//! | bytes | content |
//! |---|---|
//! | `0xC2 0x00` + value | stored raw: shorter than the [threshold](CompressionLayer::threshold), or compression would not make it smaller |
//! | `0xC2 0x01` + u32 LE length + LZ4 block | LZ4 block format ([`lz4_flex`]'s size-prepended layout): the uncompressed length, little-endian, then the block |
//! | `0xC2 0x02` + u32 LE length + zstd frame | one standard zstd frame (with its content size and content checksum) after the uncompressed length, little-endian |
//! | `0xC2 0x03`–`0xC2 0x0F` | reserved for future formats: read as [`ErrorKind::Corrupt`], never returned as they are |
//! | anything else | a *foreign* value (written without this layer): returned unchanged |
//!
//! **Why `0xC2` followed by a byte below `0x10`.** In UTF-8, `0xC2` starts a two-byte
//! sequence whose second byte must be `0x80..=0xBF`, so `0xC2 0x00..=0x0F` never occurs in
//! valid UTF-8 text — and therefore never at the start of a JSON document (what the typed API
//! writes), a plain string, a number or anything else textual. (`0xC2` alone is MessagePack's
//! `false`, one byte long, so a MessagePack document is never mistaken either.) The magic also
//! differs from the native [envelope](kv_core::envelope)'s `0xC1`. Values written before the
//! layer existed are thus read back as they are, whatever their length (including the empty
//! value and the single byte `0xC2`). Only arbitrary binary values that happen to start with
//! `0xC2 0x00..=0x0F` are ambiguous: do not put this layer over such pre-existing data.
//!
//! **Corrupt values.** A value carrying the magic that cannot be decoded — a cut-short
//! header, a garbled LZ4 block or zstd frame (zstd also checks its content checksum), data
//! that decompresses to another length than declared, trailing bytes after a zstd frame, a
//! reserved format byte — is [`ErrorKind::Corrupt`] naming the layer, operation, collection
//! and key; decoding never panics. The declared uncompressed length is checked before any
//! memory is allocated: more than [`MAX_DECOMPRESSED_LEN`] (1 GiB; longer values are
//! therefore stored raw), or, for LZ4, more than a block of that size could possibly produce
//! (255 bytes per compressed byte), is `Corrupt`. zstd output is read as a stream cut off one
//! byte past the declared length, into a buffer that grows with the output actually produced
//! (never reserved from the declared length beyond 16 bytes per compressed byte); zstd's own
//! window buffer is bounded by its default window limit (128 MiB).
//!
//! Reads (`get`, `get_many`, scans with entries) decode every value; writes (`put`,
//! `put_many`) encode every value. Keys, TTLs, versions and metadata are untouched. The
//! store's [`Capability::max_value_len`](kv_core::Capability::max_value_len) shrinks by the 2
//! header bytes (a value never grows by more, as incompressible values are stored raw), and
//! the layer rejects longer values itself with [`ErrorKind::ValueTooLarge`].
//!
//! zstd dictionaries (much better ratios on small, similar values) are future work.
//!
//! ```
//! use kv_core::KvStoreExt;
//! use kv_layers::StoreLayerExt;
//! use kv_layers::compression::CompressionLayer;
//! use kv_store_memory::MemoryStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let memory = MemoryStore::new();
//! let store = memory.clone().with(CompressionLayer::new());
//! store.put_bytes("c", "big", vec![b'a'; 10_000]).await?;
//! assert_eq!(store.get_bytes("c", "big").await?.unwrap().len(), 10_000);
//! let stored = memory.get_bytes("c", "big").await?.unwrap();
//! assert_eq!(&stored[..2], &[0xC2, 0x01]);
//! assert!(stored.len() < 100);
//!
//! // Values written without the layer are read back as they are.
//! memory.put_bytes("c", "old", &b"{\"plain\":true}"[..]).await?;
//! assert_eq!(store.get_bytes("c", "old").await?.unwrap(), &b"{\"plain\":true}"[..]);
//! # Ok::<(), kv_core::Error>(()) }).unwrap();
//! ```

use bytes::Bytes;
use kv_core::{
    Entry, Error, ErrorKind, GetOptions, KvStore, Layer, Operation, PutManyOptions, PutOptions,
    Result, ScanOptions, ScanPage, StoreInfo,
};

const LAYER: &str = "compression";

/// First byte of every value the layer writes.
pub const MAGIC: u8 = 0xC2;
/// Second byte of a value stored raw.
pub const FORMAT_RAW: u8 = 0x00;
/// Second byte of an LZ4 block (u32 LE uncompressed length, then the block).
pub const FORMAT_LZ4: u8 = 0x01;
/// Second byte of a zstd frame (u32 LE uncompressed length, then the frame).
pub const FORMAT_ZSTD: u8 = 0x02;
/// Second bytes up to this one are reserved for the layer (unknown ones are `Corrupt`).
const FORMAT_RESERVED_MAX: u8 = 0x0F;
/// Bytes of the header (magic and format).
pub const HEADER_LEN: usize = 2;
/// The largest uncompressed length a compressed value may declare (1 GiB).
pub const MAX_DECOMPRESSED_LEN: usize = 1 << 30;
/// The default threshold: values shorter than this many bytes are stored raw.
pub const DEFAULT_THRESHOLD: usize = 64;
/// An LZ4 block never expands data more than this many times (a byte of match length
/// extension stands for at most 255 bytes of output).
const MAX_RATIO: usize = 255;

/// zstd's default compression level, used for a level of 0.
pub const ZSTD_DEFAULT_LEVEL: i32 = zstd::DEFAULT_COMPRESSION_LEVEL;

/// The configuration of a [`Compression`] store: the algorithm new values are written with,
/// and the size below which they are stored raw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompressionLayer {
    threshold: usize,
    algorithm: Algorithm,
}

/// The algorithm writes use (reads decode every algorithm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algorithm {
    Lz4,
    /// With a level in zstd's range.
    Zstd(i32),
}

impl Default for CompressionLayer {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD,
            algorithm: Algorithm::Lz4,
        }
    }
}

impl CompressionLayer {
    /// LZ4 compression of values of at least [`DEFAULT_THRESHOLD`] (64) bytes.
    ///
    /// ```
    /// let layer = kv_layers::compression::CompressionLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Values shorter than `bytes` are stored raw (with the 2-byte header); `0` tries to
    /// compress every value. Values that would not shrink are stored raw whatever the
    /// threshold.
    ///
    /// ```
    /// let layer = kv_layers::compression::CompressionLayer::new().threshold(1024);
    /// # let _ = layer;
    /// ```
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// Writes new values with zstd at `level` (format `0x02`): 1 (fastest) to 22 (smallest),
    /// negative levels trade ratio for speed, 0 means zstd's default
    /// ([`ZSTD_DEFAULT_LEVEL`], 3). Levels outside zstd's range are clamped to it; levels
    /// above 19 need much more memory to compress. Values written with LZ4 stay readable.
    ///
    /// ```
    /// let layer = kv_layers::compression::CompressionLayer::new().zstd(3);
    /// # let _ = layer;
    /// ```
    pub fn zstd(mut self, level: i32) -> Self {
        let range = zstd::compression_level_range();
        let level = if level == 0 {
            ZSTD_DEFAULT_LEVEL
        } else {
            level.clamp(*range.start(), *range.end())
        };
        self.algorithm = Algorithm::Zstd(level);
        self
    }

    /// Writes new values with LZ4 (format `0x01`, the default). Values written with zstd stay
    /// readable.
    ///
    /// ```
    /// let layer = kv_layers::compression::CompressionLayer::new().zstd(9).lz4();
    /// assert_eq!(layer, kv_layers::compression::CompressionLayer::new());
    /// ```
    pub fn lz4(mut self) -> Self {
        self.algorithm = Algorithm::Lz4;
        self
    }

    /// The stored form of `value`: header, then the value raw or compressed.
    fn encode(&self, value: &[u8]) -> Bytes {
        if value.len() >= self.threshold && value.len() <= MAX_DECOMPRESSED_LEN {
            let compressed = match self.algorithm {
                Algorithm::Lz4 => encode_lz4(value),
                Algorithm::Zstd(level) => encode_zstd(value, level),
            };
            if let Some(out) = compressed {
                return Bytes::from(out);
            }
        }
        let mut out = Vec::with_capacity(HEADER_LEN + value.len());
        out.extend_from_slice(&[MAGIC, FORMAT_RAW]);
        out.extend_from_slice(value);
        Bytes::from(out)
    }
}

/// The header of a compressed form: magic, format and the uncompressed length (at most
/// [`MAX_DECOMPRESSED_LEN`], so it fits a `u32`).
fn compressed_header(format: u8, len: usize, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 4 + capacity);
    out.extend_from_slice(&[MAGIC, format]);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
}

/// The LZ4 form of `value`, or `None` if it would not be smaller than the raw form.
fn encode_lz4(value: &[u8]) -> Option<Vec<u8>> {
    let max = lz4_flex::block::get_maximum_output_size(value.len());
    let mut out = compressed_header(FORMAT_LZ4, value.len(), max);
    out.resize(HEADER_LEN + 4 + max, 0);
    let n = lz4_flex::block::compress_into(value, &mut out[HEADER_LEN + 4..]).ok()?;
    // Only keep it if it is smaller than the raw form.
    (4 + n < value.len()).then(|| {
        out.truncate(HEADER_LEN + 4 + n);
        out
    })
}

/// The zstd form of `value`, or `None` if compression failed or would not be smaller than
/// the raw form.
fn encode_zstd(value: &[u8], level: i32) -> Option<Vec<u8>> {
    let bound = zstd::zstd_safe::compress_bound(value.len());
    let mut out = std::io::Cursor::new(compressed_header(FORMAT_ZSTD, value.len(), bound));
    out.set_position((HEADER_LEN + 4) as u64);
    let mut compressor = zstd::bulk::Compressor::new(level).ok()?;
    // The checksum lets reads tell a garbled frame from another value (4 bytes per value).
    compressor
        .set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
        .ok()?;
    let n = compressor.compress_to_buffer(value, &mut out).ok()?;
    (4 + n < value.len()).then(|| out.into_inner())
}

/// Decompresses one zstd frame that must produce exactly `len` bytes (the caller checks the
/// length). The output buffer grows with what the frame really produces; reading stops one
/// byte past `len`.
fn decode_zstd(frame: &[u8], len: usize) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let decoder = zstd::stream::read::Decoder::with_buffer(frame).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(len.min(frame.len().saturating_mul(16).max(4096)));
    decoder
        .take(len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// The value of a stored form: foreign values unchanged, raw ones without their header,
/// compressed ones decompressed. Errors are `Corrupt` (without context).
pub fn decode(stored: Bytes) -> Result<Bytes> {
    if stored.len() < HEADER_LEN || stored[0] != MAGIC || stored[1] > FORMAT_RESERVED_MAX {
        return Ok(stored);
    }
    let corrupt = |what: String| {
        Error::new(
            ErrorKind::Corrupt,
            format!("invalid compressed value: {what}"),
        )
    };
    match stored[1] {
        FORMAT_RAW => Ok(stored.slice(HEADER_LEN..)),
        format @ (FORMAT_LZ4 | FORMAT_ZSTD) => {
            let body = &stored[HEADER_LEN..];
            let Some((len, block)) = body.split_first_chunk::<4>() else {
                return Err(corrupt(format!(
                    "length prefix cut short ({} of 4 bytes)",
                    body.len()
                )));
            };
            let len = u32::from_le_bytes(*len) as usize;
            if len > MAX_DECOMPRESSED_LEN {
                return Err(corrupt(format!(
                    "declared length {len} is above the limit of {MAX_DECOMPRESSED_LEN} bytes"
                )));
            }
            let out = if format == FORMAT_LZ4 {
                if len > block.len().saturating_mul(MAX_RATIO) {
                    return Err(corrupt(format!(
                        "declared length {len} is more than a {}-byte block can hold",
                        block.len()
                    )));
                }
                lz4_flex::block::decompress(block, len).map_err(|e| corrupt(format!("lz4: {e}")))?
            } else {
                decode_zstd(block, len).map_err(|e| corrupt(format!("zstd: {e}")))?
            };
            if out.len() > len {
                return Err(corrupt(format!(
                    "decompresses to more than the {len} bytes declared"
                )));
            }
            if out.len() < len {
                return Err(corrupt(format!(
                    "decompressed to {} bytes, {len} declared",
                    out.len()
                )));
            }
            Ok(Bytes::from(out))
        }
        other => Err(corrupt(format!("unknown format byte 0x{other:02X}"))),
    }
}

impl<S: KvStore> Layer<S> for CompressionLayer {
    type Store = Compression<S>;

    fn layer(&self, inner: S) -> Compression<S> {
        let mut info = inner.info().clone();
        let cap = &mut info.capability;
        cap.max_value_len = cap.max_value_len.map(|m| m.saturating_sub(HEADER_LEN));
        Compression {
            inner,
            config: *self,
            info,
        }
    }
}

/// A store compressing values with LZ4 or zstd; see [`CompressionLayer`] and the
/// [module documentation](self) for the stored format.
#[derive(Clone, Debug)]
pub struct Compression<S> {
    inner: S,
    config: CompressionLayer,
    info: StoreInfo,
}

impl<S> Compression<S> {
    /// The wrapped store.
    ///
    /// ```
    /// use kv_layers::StoreLayerExt;
    /// use kv_layers::compression::CompressionLayer;
    /// let store = kv_store_memory::MemoryStore::new().with(CompressionLayer::new());
    /// let _memory: &kv_store_memory::MemoryStore = store.inner();
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn check_len(&self, len: usize) -> Result<()> {
        crate::util::check_value_len(&self.info.capability, len)
    }
}

fn decode_entry(mut entry: Entry) -> Result<Entry> {
    entry.value = decode(std::mem::take(&mut entry.value))?;
    Ok(entry)
}

impl<S: KvStore> KvStore for Compression<S> {
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
        entry
            .map(decode_entry)
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
        entries
            .into_iter()
            .zip(keys)
            .map(|(entry, key)| {
                entry.map(decode_entry).transpose().map_err(|e| {
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
        self.check_len(value.len())
            .map_err(|e| e.with_context(LAYER, Operation::Put, Some(collection), Some(key)))?;
        let stored = self.config.encode(&value);
        self.inner.put_opts(collection, key, stored, opts).await
    }

    async fn put_many_opts(
        &self,
        collection: &str,
        entries: &[(&str, Bytes)],
        opts: PutManyOptions,
    ) -> Result<()> {
        let mut stored = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            self.check_len(value.len()).map_err(|e| {
                e.with_context(LAYER, Operation::PutMany, Some(collection), Some(key))
            })?;
            stored.push((*key, self.config.encode(value)));
        }
        self.inner.put_many_opts(collection, &stored, opts).await
    }

    async fn scan_opts(&self, collection: &str, opts: ScanOptions) -> Result<ScanPage> {
        // Conditions cannot be evaluated on compressed bytes below.
        let mut page = self
            .inner
            .scan_opts(collection, opts.without_filter())
            .await?;
        for item in &mut page.items {
            if let Some(entry) = item.entry.take() {
                let entry = decode_entry(entry).map_err(|e| {
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

    fn lz4(value: &[u8]) -> Vec<u8> {
        let mut out = vec![MAGIC, FORMAT_LZ4];
        out.extend(lz4_flex::block::compress_prepend_size(value));
        out
    }

    /// A zstd form declaring `len` (a frame of `value` at level 1, with its checksum).
    fn zstd_declaring(value: &[u8], len: u32) -> Vec<u8> {
        let mut c = zstd::bulk::Compressor::new(1).unwrap();
        c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
            .unwrap();
        let mut out = vec![MAGIC, FORMAT_ZSTD];
        out.extend(len.to_le_bytes());
        out.extend(c.compress(value).unwrap());
        out
    }

    fn zstd(value: &[u8]) -> Vec<u8> {
        zstd_declaring(value, value.len() as u32)
    }

    /// Data that compresses, but not to nothing.
    fn text(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| b"lorem ipsum dolor sit amet "[(i * 7 + i / 13) % 27])
            .collect()
    }

    async fn get_many_bytes<S: KvStore>(s: &S, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let entries = s.get_many_opts("c", keys, GetOptions::default()).await?;
        Ok(entries.into_iter().map(|e| e.map(|e| e.value)).collect())
    }

    fn corrupt(stored: Vec<u8>) -> Error {
        let err = decode(Bytes::from(stored)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        err
    }

    #[tokio::test]
    async fn round_trips_every_size() {
        round_trip(CompressionLayer::new(), FORMAT_LZ4).await;
        round_trip(CompressionLayer::new().zstd(0), FORMAT_ZSTD).await;
        round_trip(CompressionLayer::new().zstd(19), FORMAT_ZSTD).await;
        round_trip(CompressionLayer::new().zstd(-5), FORMAT_ZSTD).await;
    }

    async fn round_trip(layer: CompressionLayer, format_compressed: u8) {
        let memory = MemoryStore::new();
        let s = memory.clone().with(layer);
        let t = DEFAULT_THRESHOLD;
        for (len, compressed) in [(0, false), (1, false), (t - 1, false), (t, true)]
            .into_iter()
            .chain([(1 << 20, true)])
        {
            let value: Vec<u8> = (0..len).map(|i| b"abcd"[i % 4]).collect();
            let key = format!("k{len}");
            s.put_bytes("c", &key, value.clone()).await.unwrap();
            assert_eq!(s.get_bytes("c", &key).await.unwrap().unwrap(), value);
            let stored = memory.get_bytes("c", &key).await.unwrap().unwrap();
            let format = if compressed {
                format_compressed
            } else {
                FORMAT_RAW
            };
            assert_eq!(&stored[..2], &[MAGIC, format], "len {len}");
            if compressed {
                assert!(stored.len() < value.len(), "len {len}");
            }
        }
        // get_many and scans decode too.
        let got = get_many_bytes(&s, &["k0", "k64", "none"]).await.unwrap();
        assert_eq!(got[0].as_deref(), Some(&b""[..]));
        assert_eq!(got[1].as_ref().unwrap().len(), 64);
        assert_eq!(got[2], None);
        let page = s.scan_opts("c", ScanOptions::default()).await.unwrap();
        assert_eq!(page.items.len(), 5);
        for item in page.items {
            let len: usize = item.key[1..].parse().unwrap();
            assert_eq!(item.entry.unwrap().value.len(), len);
        }
    }

    #[tokio::test]
    async fn threshold_zero_compresses_and_incompressible_stays_raw() {
        let memory = MemoryStore::new();
        let s = memory.clone().with(CompressionLayer::new().threshold(0));
        let batch = [
            ("zeros", Bytes::from(vec![0u8; 100])),
            ("tiny", Bytes::from_static(b"1")),
        ];
        s.put_many_opts("c", &batch, PutManyOptions::default())
            .await
            .unwrap();
        let raw = get_many_bytes(&memory, &["zeros", "tiny"]).await.unwrap();
        assert_eq!(&raw[0].as_ref().unwrap()[..2], &[MAGIC, FORMAT_LZ4]);
        assert_eq!(raw[1].as_deref(), Some(&[MAGIC, FORMAT_RAW, b'1'][..]));
        assert_eq!(
            s.get_bytes("c", "zeros").await.unwrap().unwrap(),
            vec![0u8; 100]
        );
        assert_eq!(s.get_bytes("c", "tiny").await.unwrap().unwrap(), &b"1"[..]);
    }

    #[tokio::test]
    async fn old_raw_and_json_values_are_read_as_they_are() {
        let memory = MemoryStore::new();
        let s = memory.clone().with(CompressionLayer::new());
        let olds: &[&[u8]] = &[
            b"",
            b"x",
            &[MAGIC],
            &[MAGIC, 0x80],
            &[MAGIC, 0xA9, b'!'], // "©!" in UTF-8
            &[MAGIC, 0x10, 0xFF],
            &[0xC1, 0x01, 0x00], // a native envelope
            b"plain text",
            "© 2026 – ünïcode".as_bytes(),
        ];
        for (i, old) in olds.iter().enumerate() {
            let key = format!("old{i}");
            memory.put_bytes("c", &key, old.to_vec()).await.unwrap();
            assert_eq!(s.get_bytes("c", &key).await.unwrap().unwrap(), old);
        }
        let json = [
            serde_json::json!(null),
            serde_json::json!(0),
            serde_json::json!(-1.5e300),
            serde_json::json!("\u{0}\u{1}©"),
            serde_json::json!([1, "two", {"three": 3}]),
            serde_json::json!({"name": "alice", "age": 30}),
        ];
        for (i, v) in json.iter().enumerate() {
            let key = format!("json{i}");
            memory.put("c", &key, v).await.unwrap();
            let back: serde_json::Value = s.get("c", &key).await.unwrap().unwrap();
            assert_eq!(&back, v);
            let text = serde_json::to_vec(v).unwrap();
            assert_eq!(decode(Bytes::from(text.clone())).unwrap(), text);
        }
        // Every first byte of valid UTF-8 text followed by anything valid is foreign.
        for c in ['\u{80}', '\u{BF}', '\u{A9}'] {
            let text = format!("{c}rest");
            assert_eq!(text.as_bytes()[0], MAGIC);
            assert_eq!(decode(Bytes::from(text.clone())).unwrap(), text.as_bytes());
        }
    }

    #[test]
    fn truncated_or_garbled_values_are_corrupt() {
        let value: Vec<u8> = (0..10_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 97) as u8)
            .collect();
        let good = lz4(&value);
        assert_eq!(decode(Bytes::from(good.clone())).unwrap(), value);
        // Cut short anywhere after the header.
        for cut in 2..good.len() {
            let r = decode(Bytes::from(good[..cut].to_vec()));
            let err = r.expect_err(&format!("cut at {cut}"));
            assert_eq!(err.kind(), ErrorKind::Corrupt);
        }
        // Garbled bytes: never a panic; a changed length or block is an error or other data.
        for i in HEADER_LEN..good.len().min(400) {
            for x in [0x01u8, 0x80, 0xFF] {
                let mut bad = good.clone();
                bad[i] ^= x;
                if let Err(e) = decode(Bytes::from(bad)) {
                    assert_eq!(e.kind(), ErrorKind::Corrupt);
                }
            }
        }
        // A wrong declared length.
        let mut longer = good.clone();
        longer[2..6].copy_from_slice(&(value.len() as u32 + 1).to_le_bytes());
        corrupt(longer);
        let mut shorter = good.clone();
        shorter[2..6].copy_from_slice(&(value.len() as u32 - 1).to_le_bytes());
        corrupt(shorter);
        // Garbage block, reserved formats.
        corrupt(vec![MAGIC, FORMAT_LZ4, 8, 0, 0, 0, 0xFF, 0xFF, 0xFF]);
        corrupt(vec![MAGIC, FORMAT_LZ4, 0, 0]);
        corrupt(vec![MAGIC, FORMAT_LZ4]);
        corrupt(vec![MAGIC, 0x03, 1, 2, 3]);
        corrupt(vec![MAGIC, 0x0F]);
    }

    #[tokio::test]
    async fn lz4_and_zstd_values_are_read_whatever_the_configured_algorithm() {
        let memory = MemoryStore::new();
        let with_lz4 = memory.clone().with(CompressionLayer::new());
        let with_zstd = memory.clone().with(CompressionLayer::new().zstd(3));
        let value = text(5000);
        with_lz4.put_bytes("c", "a", value.clone()).await.unwrap();
        with_zstd.put_bytes("c", "b", value.clone()).await.unwrap();
        let batch = [
            ("c", Bytes::from(value.clone())),
            ("d", Bytes::from_static(b"x")),
        ];
        with_zstd
            .put_many_opts("c", &batch, PutManyOptions::default())
            .await
            .unwrap();
        memory.put_bytes("c", "e", &b"foreign"[..]).await.unwrap();
        let stored = get_many_bytes(&memory, &["a", "b", "c", "d"])
            .await
            .unwrap();
        let formats: Vec<u8> = stored.iter().map(|v| v.as_ref().unwrap()[1]).collect();
        assert_eq!(formats, [FORMAT_LZ4, FORMAT_ZSTD, FORMAT_ZSTD, FORMAT_RAW]);
        // zstd compresses this text better than LZ4.
        let (a, b) = (stored[0].as_ref().unwrap(), stored[1].as_ref().unwrap());
        assert!(b.len() < a.len(), "zstd {} / lz4 {}", b.len(), a.len());
        for s in [&with_lz4, &with_zstd] {
            let got = get_many_bytes(s, &["a", "b", "c", "d", "e"]).await.unwrap();
            for v in &got[..3] {
                assert_eq!(v.as_deref(), Some(&value[..]));
            }
            assert_eq!(got[3].as_deref(), Some(&b"x"[..]));
            assert_eq!(got[4].as_deref(), Some(&b"foreign"[..]));
            let page = s.scan_opts("c", ScanOptions::default()).await.unwrap();
            assert_eq!(page.items.len(), 5);
        }
    }

    #[test]
    fn garbled_zstd_values_are_corrupt_never_other_data() {
        let value = text(10_000);
        let good = zstd(&value);
        assert_eq!(decode(Bytes::from(good.clone())).unwrap(), value);
        for cut in HEADER_LEN..good.len() {
            let err = decode(Bytes::from(good[..cut].to_vec())).expect_err(&format!("cut {cut}"));
            assert_eq!(err.kind(), ErrorKind::Corrupt);
        }
        // The frame's checksum catches flipped bytes: an error, or (a flip in a field that
        // does not change the output, like the window size) the value itself.
        for i in HEADER_LEN..good.len() {
            for x in [0x01u8, 0x80, 0xFF] {
                let mut bad = good.clone();
                bad[i] ^= x;
                match decode(Bytes::from(bad)) {
                    Ok(v) => assert_eq!(v, value, "byte {i} ^ {x:#x}"),
                    Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupt),
                }
            }
        }
        // Trailing bytes, a wrong declared length either way, garbage.
        let mut trailing = good.clone();
        trailing.extend([0, 1, 2, 3, 4, 5, 6, 7]);
        corrupt(trailing);
        let err = corrupt(zstd_declaring(&value, value.len() as u32 + 1));
        assert!(
            err.to_string().contains("decompressed to 10000 bytes"),
            "{err}"
        );
        let err = corrupt(zstd_declaring(&value, value.len() as u32 - 1));
        assert!(
            err.to_string().contains("more than the 9999 bytes"),
            "{err}"
        );
        let err = corrupt(vec![MAGIC, FORMAT_ZSTD, 8, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(err.to_string().contains("zstd"), "{err}");
        corrupt(vec![MAGIC, FORMAT_ZSTD, 0, 0]);
        corrupt(vec![MAGIC, FORMAT_ZSTD]);
    }

    #[test]
    fn zstd_output_is_bounded_by_the_declared_length() {
        // Above the cap: rejected before decoding.
        let err = corrupt(zstd_declaring(b"tiny", u32::MAX));
        assert!(err.to_string().contains("limit"), "{err}");
        // A small frame that expands to 16 MiB, declared as 1000 bytes: decoding stops just
        // past the declared length instead of producing (and allocating) the whole output.
        let bomb = zstd_declaring(&vec![0u8; 16 << 20], 1000);
        assert!(bomb.len() < 4096, "{} bytes", bomb.len());
        let err = corrupt(bomb);
        assert!(
            err.to_string().contains("more than the 1000 bytes"),
            "{err}"
        );
    }

    #[test]
    fn zstd_levels_are_clamped_and_zero_is_the_default() {
        let level = |l: CompressionLayer| match l.algorithm {
            Algorithm::Zstd(level) => level,
            Algorithm::Lz4 => panic!("not zstd"),
        };
        assert_eq!(level(CompressionLayer::new().zstd(0)), ZSTD_DEFAULT_LEVEL);
        assert_eq!(level(CompressionLayer::new().zstd(1000)), 22);
        let min = *zstd::compression_level_range().start();
        assert_eq!(level(CompressionLayer::new().zstd(i32::MIN)), min);
        // Incompressible values are stored raw with zstd too.
        let mut x = 1u64;
        let noise: Vec<u8> = (0..1000)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (x >> 56) as u8
            })
            .collect();
        let stored = CompressionLayer::new().zstd(3).encode(&noise);
        assert_eq!(&stored[..2], &[MAGIC, FORMAT_RAW]);
    }

    #[test]
    fn huge_declared_length_is_corrupt_before_allocating() {
        // u32::MAX and just above the cap: rejected by the cap.
        for len in [u32::MAX, (MAX_DECOMPRESSED_LEN + 1) as u32] {
            let mut v = vec![MAGIC, FORMAT_LZ4];
            v.extend(len.to_le_bytes());
            v.extend([0x10, b'a']);
            let err = corrupt(v);
            assert!(err.to_string().contains("limit"), "{err}");
        }
        // Within the cap but more than the block can hold: rejected before allocation too.
        let mut v = vec![MAGIC, FORMAT_LZ4];
        v.extend((MAX_DECOMPRESSED_LEN as u32).to_le_bytes());
        v.extend([0x10, b'a']);
        let err = corrupt(v);
        assert!(err.to_string().contains("can hold"), "{err}");
        // The ratio bound holds for the most compressible input.
        let zeros = vec![0u8; 4 << 20];
        assert_eq!(decode(Bytes::from(lz4(&zeros))).unwrap(), zeros);
    }

    #[tokio::test]
    async fn corrupt_reads_name_the_key_and_limits_shrink() {
        let memory = MemoryStore::new();
        let s = memory.clone().with(CompressionLayer::new());
        memory
            .put_bytes("c", "bad", vec![MAGIC, FORMAT_LZ4, 9, 0])
            .await
            .unwrap();
        let err = s.get_bytes("c", "bad").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        assert_eq!((err.store(), err.key()), (Some("compression"), Some("bad")));
        let err = get_many_bytes(&s, &["bad"]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        let err = s.scan_opts("c", ScanOptions::default()).await.unwrap_err();
        assert_eq!((err.kind(), err.key()), (ErrorKind::Corrupt, Some("bad")));
        // Keys-only scans do not look at values.
        let keys = s.scan_opts("c", ScanOptions::default().keys_only()).await;
        assert_eq!(keys.unwrap().items.len(), 1);
        // The TTL is intact, and a corrupt entry can be overwritten and deleted.
        assert_eq!(s.ttl("c", "bad").await.unwrap(), Some(kv_core::Ttl::Never));
        s.put_bytes("c", "bad", &b"fixed"[..]).await.unwrap();
        assert_eq!(
            s.get_bytes("c", "bad").await.unwrap().unwrap(),
            &b"fixed"[..]
        );
        memory
            .put_bytes("c", "bad", vec![MAGIC, 0x03])
            .await
            .unwrap();
        assert!(s.delete("c", "bad").await.unwrap());

        let limited = crate::limit_size::LimitSizeLayer::new().max(10);
        let s = MemoryStore::new()
            .with(limited)
            .with(CompressionLayer::new());
        assert_eq!(s.info().capability.max_value_len, Some(8));
        s.put_bytes("c", "ok", vec![7u8; 8]).await.unwrap();
        let err = s.put_bytes("c", "big", vec![7u8; 9]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
        assert_eq!(err.key(), Some("big"));
    }
}
