//! py-key-value's key/collection sanitization strategies, byte for byte.
//!
//! Stores map user names onto backend-legal names with these strategies. A
//! Rust store that shares data with a Python one must produce exactly the same
//! names, or existing entries become unreachable. Common rules:
//!
//! * hashes are SHA-256 of the UTF-8 bytes of the *original* name, as
//!   lowercase hex;
//! * lengths are counted in code points (Python `len(str)`) unless stated;
//! * sanitized names carry an `H_` (hashed) or `S_` (substituted) prefix, and
//!   strategies that produce them reject user names with those prefixes in
//!   [`Sanitizer::validate`], so a sanitized name can never collide with a
//!   user name.

use std::fmt;

use sha2::{Digest, Sha256};

/// Why a name or a strategy configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SanitizeError {
    /// The name starts with `H_` or `S_`, which are reserved for sanitized names.
    ReservedPrefix {
        /// The rejected name.
        value: String,
        /// The reserved prefix it starts with.
        prefix: &'static str,
    },
    /// The strategy parameters are out of range.
    InvalidConfig(String),
}

impl fmt::Display for SanitizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SanitizeError::ReservedPrefix { value, prefix } => write!(
                f,
                "invalid key or collection {value:?}: names starting with `{prefix}` are \
                 reserved for sanitized names (`H_` and `S_`)"
            ),
            SanitizeError::InvalidConfig(why) => write!(f, "invalid sanitization strategy: {why}"),
        }
    }
}

impl std::error::Error for SanitizeError {}

/// A key or collection sanitization strategy.
pub trait Sanitizer {
    /// Maps a user name onto the name stored in the backend.
    fn sanitize(&self, s: &str) -> String;
    /// Checks a user name before it is sanitized; the default accepts all.
    fn validate(&self, s: &str) -> Result<(), SanitizeError> {
        let _ = s;
        Ok(())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex SHA-256 of the UTF-8 bytes of `s` (64 ASCII characters).
pub fn sha256_hex(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xF)]));
    }
    out
}

/// The first `n` hex digits of [`sha256_hex`] (all 64 if `n >= 64`).
fn hash_prefix(s: &str, n: usize) -> String {
    let mut h = sha256_hex(s);
    h.truncate(n.min(64)); // ASCII, so any index is a char boundary
    h
}

/// Keeps at most `n` code points of `s` (Python `s[:n]`).
fn truncate_chars(s: &mut String, n: usize) {
    if let Some((idx, _)) = s.char_indices().nth(n) {
        s.truncate(idx);
    }
}

/// The longest prefix of `s` of at most `n` UTF-8 bytes that does not split
/// a code point.
fn prefix_bytes(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1; // terminates: 0 is always a boundary
    }
    &s[..end]
}

fn reject_reserved(s: &str) -> Result<(), SanitizeError> {
    for prefix in ["H_", "S_"] {
        if s.starts_with(prefix) {
            return Err(SanitizeError::ReservedPrefix {
                value: s.to_owned(),
                prefix,
            });
        }
    }
    Ok(())
}

/// Identity; accepts every name. py-key-value's default for every store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Passthrough;

impl Sanitizer for Passthrough {
    fn sanitize(&self, s: &str) -> String {
        s.to_owned()
    }
}

/// `sha256hex(s)[..hash_length]` for every name, no prefix, no validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlwaysHash {
    hash_length: usize,
}

impl AlwaysHash {
    /// Requires `8 < hash_length <= 64`, as py-key-value's constructor does.
    pub fn new(hash_length: usize) -> Result<Self, SanitizeError> {
        if hash_length <= 8 || hash_length > 64 {
            return Err(SanitizeError::InvalidConfig(format!(
                "AlwaysHash hash_length must be in 9..=64, got {hash_length}"
            )));
        }
        Ok(AlwaysHash { hash_length })
    }

    /// Number of hex digits kept.
    pub fn hash_length(&self) -> usize {
        self.hash_length
    }
}

impl Sanitizer for AlwaysHash {
    fn sanitize(&self, s: &str) -> String {
        hash_prefix(s, self.hash_length)
    }
}

/// Names longer than `max_length` code points become
/// `"H_" + sha256hex(s)[..max_length - 2]` (at most 66 characters); shorter
/// or equal names are unchanged. Rejects `H_`/`S_` prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashExcessLength {
    max_length: usize,
}

impl HashExcessLength {
    /// Requires `max_length >= 2` so that the `H_` prefix fits.
    pub fn new(max_length: usize) -> Result<Self, SanitizeError> {
        if max_length < 2 {
            return Err(SanitizeError::InvalidConfig(format!(
                "HashExcessLength max_length must be at least 2, got {max_length}"
            )));
        }
        Ok(HashExcessLength { max_length })
    }

    /// Longest name kept unchanged, in code points.
    pub fn max_length(&self) -> usize {
        self.max_length
    }
}

impl Sanitizer for HashExcessLength {
    fn sanitize(&self, s: &str) -> String {
        if s.chars().count() <= self.max_length {
            return s.to_owned();
        }
        format!("H_{}", hash_prefix(s, self.max_length - 2))
    }

    fn validate(&self, s: &str) -> Result<(), SanitizeError> {
        reject_reserved(s)
    }
}

/// When [`Hybrid`] appends a hash fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashFragmentMode {
    /// Always: every name becomes `S_<cleaned>-<hash>`.
    Always,
    /// Only if character replacement changed the name (py-key-value default).
    #[default]
    OnlyIfChanged,
    /// Never; changed or over-long names get only the `S_` prefix.
    Never,
}

/// Character replacement plus optional hash fragment (py-key-value's
/// `HybridSanitizationStrategy`):
///
/// 1. with an `allowed` class, every run of disallowed characters becomes one
///    `replacement` character; if the whole result is exactly one
///    replacement character, it becomes the empty string;
/// 2. `changed` = the result differs from the input;
/// 3. in mode `Always`, or `OnlyIfChanged` when changed, the result is cut to
///    `max_length - (3 + hash_fragment_length)` code points and the name is
///    `"S_" + result + "-" + sha256hex(original)[..hash_fragment_length]`;
/// 4. otherwise a result longer than `max_length` is cut to `max_length` and
///    counts as changed; a changed result becomes `"S_" + result` with the
///    result cut to `max_length - 2`; an unchanged one is returned as is.
///    (So an over-long but valid name gets `S_` and a truncation but *no*
///    hash: collision-prone, but that is what py-key-value does.)
///
/// `validate` rejects `H_`/`S_` prefixes.
#[derive(Debug, Clone, Copy)]
pub struct Hybrid {
    max_length: usize,
    allowed: Option<fn(char) -> bool>,
    replacement: char,
    mode: HashFragmentMode,
    hash_fragment_length: usize,
}

impl Default for Hybrid {
    /// py-key-value's defaults: max 240, no character class, `_`,
    /// `OnlyIfChanged`, 8-digit fragment.
    fn default() -> Self {
        Hybrid {
            max_length: 240,
            allowed: None,
            replacement: '_',
            mode: HashFragmentMode::OnlyIfChanged,
            hash_fragment_length: 8,
        }
    }
}

impl Hybrid {
    /// Builds a strategy; `allowed` = `None` means every character is allowed.
    ///
    /// Requires `1 <= hash_fragment_length <= 64` and
    /// `max_length >= hash_fragment_length + 3` (room for `S_`, `-` and the
    /// fragment), so that every output fits in `max_length` code points.
    pub fn new(
        max_length: usize,
        allowed: Option<fn(char) -> bool>,
        replacement: char,
        mode: HashFragmentMode,
        hash_fragment_length: usize,
    ) -> Result<Self, SanitizeError> {
        if !(1..=64).contains(&hash_fragment_length) {
            return Err(SanitizeError::InvalidConfig(format!(
                "Hybrid hash_fragment_length must be in 1..=64, got {hash_fragment_length}"
            )));
        }
        if max_length < hash_fragment_length + 3 {
            return Err(SanitizeError::InvalidConfig(format!(
                "Hybrid max_length must be at least hash_fragment_length + 3 = {}, got {max_length}",
                hash_fragment_length + 3
            )));
        }
        Ok(Hybrid {
            max_length,
            allowed,
            replacement,
            mode,
            hash_fragment_length,
        })
    }

    /// Longest output, in code points.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Steps 1 and 2: replaced text and whether it differs from `s`.
    fn replace_disallowed(&self, s: &str) -> (String, bool) {
        let Some(allowed) = self.allowed else {
            return (s.to_owned(), false);
        };
        let mut out = String::with_capacity(s.len());
        let mut in_run = false;
        for c in s.chars() {
            if allowed(c) {
                out.push(c);
                in_run = false;
            } else if !in_run {
                out.push(self.replacement);
                in_run = true;
            }
        }
        let mut chars = out.chars();
        if chars.next() == Some(self.replacement) && chars.next().is_none() {
            out.clear();
        }
        let changed = out != s;
        (out, changed)
    }
}

impl Sanitizer for Hybrid {
    fn sanitize(&self, s: &str) -> String {
        let (mut result, mut changed) = self.replace_disallowed(s);
        let with_hash = match self.mode {
            HashFragmentMode::Always => true,
            HashFragmentMode::OnlyIfChanged => changed,
            HashFragmentMode::Never => false,
        };
        if with_hash {
            // The constructor guarantees max_length >= hash_fragment_length + 3.
            truncate_chars(
                &mut result,
                self.max_length - (3 + self.hash_fragment_length),
            );
            return format!("S_{result}-{}", hash_prefix(s, self.hash_fragment_length));
        }
        if result.chars().count() > self.max_length {
            truncate_chars(&mut result, self.max_length);
            changed = true;
        }
        if changed {
            truncate_chars(&mut result, self.max_length - 2);
            format!("S_{result}")
        } else {
            result
        }
    }

    fn validate(&self, s: &str) -> Result<(), SanitizeError> {
        reject_reserved(s)
    }
}

/// py-key-value's `hash_excess_length(value, max_length, length_is_bytes)`:
/// unchanged if its length (code points, or UTF-8 bytes when
/// `length_is_bytes`) is `<= max_length`; otherwise the value cut to
/// `max_length - 8` (code points or bytes, never splitting a code point)
/// followed by the first 8 hex digits of its SHA-256. No prefix.
///
/// For `max_length < 8` the kept part is empty, so the result is the bare
/// 8-digit hash (Python's negative slice would behave differently; no store
/// uses such a limit).
pub fn hash_excess_length(value: &str, max_length: usize, length_is_bytes: bool) -> String {
    let keep = max_length.saturating_sub(8);
    let head = if length_is_bytes {
        if value.len() <= max_length {
            return value.to_owned();
        }
        prefix_bytes(value, keep).to_owned()
    } else {
        if value.chars().count() <= max_length {
            return value.to_owned();
        }
        let mut head = value.to_owned();
        truncate_chars(&mut head, keep);
        head
    };
    format!("{head}{}", hash_prefix(value, 8))
}

/// [`hash_excess_length`] as a [`Sanitizer`] (py-key-value's S3 strategies);
/// accepts every name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashSuffix {
    /// Longest name kept unchanged.
    pub max_length: usize,
    /// Count `max_length` in UTF-8 bytes instead of code points.
    pub length_is_bytes: bool,
}

impl Sanitizer for HashSuffix {
    fn sanitize(&self, s: &str) -> String {
        hash_excess_length(s, self.max_length, self.length_is_bytes)
    }
}

/// `[A-Za-z0-9]`.
pub fn is_ascii_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// `[A-Za-z0-9_]`.
pub fn is_ascii_alnum_underscore(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `[A-Za-z0-9_.-]` (Elasticsearch/OpenSearch collection names).
pub fn is_ascii_alnum_underscore_dash_dot(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn hybrid(max_length: usize, allowed: fn(char) -> bool, mode: HashFragmentMode) -> Hybrid {
    Hybrid {
        max_length,
        allowed: Some(allowed),
        replacement: '_',
        mode,
        hash_fragment_length: 8,
    }
}

/// MongoDB V1 collection names: `Hybrid(200, [A-Za-z0-9_])`.
pub fn mongodb_v1_collection() -> Hybrid {
    hybrid(
        200,
        is_ascii_alnum_underscore,
        HashFragmentMode::OnlyIfChanged,
    )
}

/// Elasticsearch/OpenSearch V1 collection names: `Hybrid(200,
/// [A-Za-z0-9_.-], Always)` (the store lower-cases the index name afterwards).
pub fn elasticsearch_v1_collection() -> Hybrid {
    hybrid(
        200,
        is_ascii_alnum_underscore_dash_dot,
        HashFragmentMode::Always,
    )
}

/// Elasticsearch/OpenSearch V1 document ids: the full 64-digit SHA-256 hex.
pub fn elasticsearch_v1_key() -> AlwaysHash {
    AlwaysHash { hash_length: 64 }
}

/// Keyring V1 keys and collections: `Hybrid(256, [A-Za-z0-9])`.
pub fn keyring_v1() -> Hybrid {
    hybrid(256, is_ascii_alnum, HashFragmentMode::OnlyIfChanged)
}

/// Windows Registry V1 collections: `Hybrid(96, [A-Za-z0-9])`.
pub fn windows_registry_v1_collection() -> Hybrid {
    hybrid(96, is_ascii_alnum, HashFragmentMode::OnlyIfChanged)
}

/// Memcached V1 keys: `HashExcessLength(240)`, applied to the compound
/// `collection::key`.
pub fn memcached_v1_key() -> HashExcessLength {
    HashExcessLength { max_length: 240 }
}

/// FileTree V1 keys: `Hybrid(max_len, [A-Za-z0-9_])`. py-key-value derives
/// `max_len` from the filesystem: `min(PATH_MAX - len(dir path), NAME_MAX - 5)`
/// (room for `.json`); the caller computes it.
pub fn filetree_v1_key(max_len: usize) -> Result<Hybrid, SanitizeError> {
    Hybrid::new(
        max_len,
        Some(is_ascii_alnum_underscore),
        '_',
        HashFragmentMode::OnlyIfChanged,
        8,
    )
}

/// FileTree V1 collections: `Hybrid(max_len, [A-Za-z0-9_])`, with py-key-value
/// using `max_len = NAME_MAX - 10` (room for `-info.json`).
pub fn filetree_v1_collection(max_len: usize) -> Result<Hybrid, SanitizeError> {
    filetree_v1_key(max_len)
}

/// S3 keys and collections: [`hash_excess_length`] with 500 UTF-8 bytes.
pub fn s3_v1() -> HashSuffix {
    HashSuffix {
        max_length: 500,
        length_is_bytes: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECIAL: &str = "test_collection!@#$%^&*()";
    const HASH_X300: &str = "0d4e2ca9e9cbced7a7a5380eb29e1a3783b9b6d0db72de36a1051038e1c1fbc7";

    fn x(n: usize) -> String {
        "x".repeat(n)
    }

    #[test]
    fn sha256_vectors() {
        assert_eq!(
            sha256_hex(SPECIAL),
            "daf4a2ec8a095c064b5884e6c539592222ae9e77273779f4a942c1d304ecf7f4"
        );
        assert_eq!(
            sha256_hex("users"),
            "7dfb4cf67742cb0660305e56ef816c53fcec892cae7f6ee39b75f34e659d672c"
        );
        assert_eq!(sha256_hex(&x(300)), HASH_X300);
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// Every cell of the study's §6 test-vector table, one column at a time.
    fn table_column(s: &dyn Sanitizer, want: [&str; 6]) {
        let inputs = [
            SPECIAL.to_owned(),
            "users".into(),
            "Users".into(),
            "a/b".into(),
            "été".into(),
            x(300),
        ];
        for (input, want) in inputs.iter().zip(want) {
            assert_eq!(s.sanitize(input), want, "input {input:?}");
        }
    }

    #[test]
    fn table_mongodb_v1_collection() {
        let x198 = format!("S_{}", x(198));
        table_column(
            &mongodb_v1_collection(),
            [
                "S_test_collection_-daf4a2ec",
                "users",
                "Users",
                "S_a_b-c14cddc0",
                "S__t_-bd010c64",
                &x198,
            ],
        );
        assert_eq!(x198.len(), 200);
    }

    #[test]
    fn table_elasticsearch_v1_collection() {
        let long = format!("S_{}-0d4e2ca9", x(189));
        table_column(
            &elasticsearch_v1_collection(),
            [
                "S_test_collection_-daf4a2ec",
                "S_users-7dfb4cf6",
                "S_Users-6b0cc904",
                "S_a_b-c14cddc0",
                "S__t_-bd010c64",
                &long,
            ],
        );
        assert_eq!(long.len(), 200);
    }

    #[test]
    fn table_elasticsearch_v1_key() {
        let s = elasticsearch_v1_key();
        let first16 = [
            "daf4a2ec8a095c06",
            "7dfb4cf67742cb06",
            "6b0cc904d081a8c1",
            "c14cddc033f64b9d",
            "bd010c64132bf5ca",
            "0d4e2ca9e9cbced7",
        ];
        let inputs = [
            SPECIAL.to_owned(),
            "users".into(),
            "Users".into(),
            "a/b".into(),
            "été".into(),
            x(300),
        ];
        for (input, want) in inputs.iter().zip(first16) {
            let out = s.sanitize(input);
            assert_eq!(out.len(), 64);
            assert!(out.starts_with(want));
            assert_eq!(out, sha256_hex(input));
        }
        assert_eq!(s.sanitize(&x(300)), HASH_X300);
        assert_eq!(s.validate("S_x"), Ok(()));
    }

    #[test]
    fn table_keyring_v1() {
        let long = format!("S_{}", x(254));
        table_column(
            &keyring_v1(),
            [
                "S_test_collection_-daf4a2ec",
                "users",
                "Users",
                "S_a_b-c14cddc0",
                "S__t_-bd010c64",
                &long,
            ],
        );
        assert_eq!(long.len(), 256);
    }

    #[test]
    fn table_memcached_v1() {
        let long = format!("H_{HASH_X300}");
        table_column(
            &memcached_v1_key(),
            [SPECIAL, "users", "Users", "a/b", "été", &long],
        );
        assert_eq!(long.len(), 66);
        assert!(long.starts_with("H_0d4e2ca9") && long.ends_with("c1fbc7"));
    }

    #[test]
    fn table_always_hash_16() {
        let s = AlwaysHash::new(16).unwrap();
        table_column(
            &s,
            [
                "daf4a2ec8a095c06",
                "7dfb4cf67742cb06",
                "6b0cc904d081a8c1",
                "c14cddc033f64b9d",
                "bd010c64132bf5ca",
                "0d4e2ca9e9cbced7",
            ],
        );
    }

    #[test]
    fn table_hash_excess_length_16() {
        let s = HashExcessLength::new(16).unwrap();
        table_column(
            &s,
            [
                "H_daf4a2ec8a095c",
                "users",
                "Users",
                "a/b",
                "été",
                "H_0d4e2ca9e9cbce",
            ],
        );
        // Boundary: exactly max_length code points stays unchanged.
        assert_eq!(s.sanitize(&x(16)), x(16));
        assert_eq!(s.sanitize(&"é".repeat(16)), "é".repeat(16));
        assert_eq!(s.sanitize(&x(17)).len(), 16);
    }

    #[test]
    fn memcached_compound_key() {
        let compound = format!("users::{}", "k".repeat(300));
        assert_eq!(compound.chars().count(), 307);
        assert_eq!(
            memcached_v1_key().sanitize(&compound),
            "H_1ab7ec618d2919cd0e6141a86d73b605ac8f434df26de712fb216e6e78cb9d26"
        );
        let k240 = x(240);
        assert_eq!(memcached_v1_key().sanitize(&k240), k240);
    }

    #[test]
    fn filetree_vectors() {
        let coll = filetree_v1_collection(245).unwrap();
        let key = filetree_v1_key(250).unwrap();
        assert_eq!(coll.sanitize("Odd Coll"), "S_Odd_Coll-64e802b7");
        assert_eq!(key.sanitize("we!rd key"), "S_we_rd_key-8a4832f1");
        for plain in ["users", "alice", "default_collection"] {
            assert_eq!(coll.sanitize(plain), plain);
            assert_eq!(key.sanitize(plain), plain);
        }
        assert!(filetree_v1_key(10).is_err());
        assert!(filetree_v1_key(11).is_ok());
    }

    #[test]
    fn hybrid_edge_cases() {
        let m = mongodb_v1_collection();
        let h = |s: &str| hash_prefix(s, 8);
        // A run collapses to one replacement; a lone replacement becomes "".
        assert_eq!(m.sanitize("!!!"), format!("S_-{}", h("!!!")));
        assert_eq!(m.sanitize("_"), format!("S_-{}", h("_")));
        assert_eq!(m.sanitize("a!!b__c"), format!("S_a_b__c-{}", h("a!!b__c")));
        assert_eq!(m.sanitize("a_!b"), format!("S_a__b-{}", h("a_!b")));
        assert_eq!(m.sanitize("🌍x🌍"), format!("S__x_-{}", h("🌍x🌍")));
        assert_eq!(m.sanitize(""), "");
        assert_eq!(
            elasticsearch_v1_collection().sanitize(""),
            format!("S_-{}", h(""))
        );
        // The whole name is one disallowed run: "_" -> "" -> "S_-<hash>".
        let long = format!("{}!", "é".repeat(300));
        assert_eq!(m.sanitize(&long), format!("S_-{}", h(&long)));
        // Changed and over-long: cut to 200 - 11 = 189 code points, then the hash.
        let long = format!("{}!{}", x(100), "y".repeat(200));
        let out = m.sanitize(&long);
        assert_eq!(out, format!("S_{}_{}-{}", x(100), "y".repeat(88), h(&long)));
        assert_eq!(out.chars().count(), 200);
        let none = Hybrid::new(10, None, '_', HashFragmentMode::OnlyIfChanged, 4).unwrap();
        assert_eq!(none.sanitize("a/b c"), "a/b c");
        assert_eq!(none.sanitize("ééééééééééé"), "S_éééééééé");
        assert_eq!(none.sanitize("éééééééééé"), "éééééééééé");
        let never = Hybrid::new(10, Some(is_ascii_alnum), '-', HashFragmentMode::Never, 4).unwrap();
        assert_eq!(never.sanitize("a b"), "S_a-b");
        assert_eq!(never.sanitize("abc def ghi"), "S_abc-def-");
        assert_eq!(never.sanitize("abcdefghij"), "abcdefghij");
        assert_eq!(never.sanitize("abcdefghijk"), "S_abcdefgh");
        assert_eq!(never.sanitize("-"), "S_");
        let always =
            Hybrid::new(11, Some(is_ascii_alnum), '_', HashFragmentMode::Always, 8).unwrap();
        assert_eq!(always.sanitize("abc"), format!("S_-{}", h("abc")));
        assert_eq!(Hybrid::default().sanitize(&x(241)), format!("S_{}", x(238)));
        assert_eq!(Hybrid::default().sanitize(&x(240)), x(240));
        assert_eq!(
            windows_registry_v1_collection().sanitize(&x(97)),
            format!("S_{}", x(94))
        );
        // `_` is disallowed here but replaced by `_`, so "a_b" counts as
        // unchanged (as in py-key-value); "a__b" collapses and does change.
        let w = windows_registry_v1_collection();
        assert_eq!(w.sanitize("a_b"), "a_b");
        assert_eq!(w.sanitize("a__b"), format!("S_a_b-{}", h("a__b")));
    }

    #[test]
    fn outputs_fit_max_length() {
        let inputs = [
            "",
            "_",
            "é",
            "a b",
            "🌍🌍🌍",
            &x(500),
            &"é!".repeat(300),
            &"ab".repeat(150),
        ];
        for max in [11usize, 12, 20, 96, 200, 256] {
            for mode in [
                HashFragmentMode::Always,
                HashFragmentMode::OnlyIfChanged,
                HashFragmentMode::Never,
            ] {
                for allowed in [None, Some(is_ascii_alnum as fn(char) -> bool)] {
                    let s = Hybrid::new(max, allowed, '_', mode, 8).unwrap();
                    for input in inputs {
                        assert!(
                            s.sanitize(input).chars().count() <= max,
                            "{max} {mode:?} {input:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn validation() {
        for s in [
            &mongodb_v1_collection() as &dyn Sanitizer,
            &memcached_v1_key(),
            &keyring_v1(),
        ] {
            assert!(matches!(
                s.validate("H_abc"),
                Err(SanitizeError::ReservedPrefix { prefix: "H_", .. })
            ));
            assert!(matches!(
                s.validate("S_"),
                Err(SanitizeError::ReservedPrefix { prefix: "S_", .. })
            ));
            assert_eq!(s.validate("h_abc"), Ok(()));
            assert_eq!(s.validate("xS_"), Ok(()));
            assert_eq!(s.validate("H"), Ok(()));
        }
        let e = memcached_v1_key().validate("S_users::k").unwrap_err();
        assert!(e.to_string().contains("reserved"), "{e}");
        assert_eq!(Passthrough.validate("H_x"), Ok(()));
        assert_eq!(Passthrough.sanitize("a/b"), "a/b");
        assert_eq!(s3_v1().validate("S_x"), Ok(()));
        assert!(AlwaysHash::new(8).is_err());
        assert!(AlwaysHash::new(9).is_ok());
        assert!(AlwaysHash::new(64).is_ok());
        assert!(AlwaysHash::new(65).is_err());
        assert!(HashExcessLength::new(1).is_err());
        assert_eq!(HashExcessLength::new(2).unwrap().sanitize("abc"), "H_");
        assert!(Hybrid::new(200, None, '_', HashFragmentMode::Always, 0).is_err());
        assert!(Hybrid::new(200, None, '_', HashFragmentMode::Always, 65).is_err());
        assert!(
            Hybrid::new(10, None, '_', HashFragmentMode::Always, 8)
                .unwrap_err()
                .to_string()
                .contains("at least")
        );
    }

    #[test]
    fn hash_excess_length_vectors() {
        let s3 = s3_v1();
        assert_eq!(s3.sanitize(&x(500)), x(500));
        assert_eq!(
            s3.sanitize(&x(501)),
            format!("{}{}", x(492), hash_prefix(&x(501), 8))
        );
        // 250 two-byte chars = 500 bytes: unchanged; one more byte: truncated.
        let e250 = "é".repeat(250);
        assert_eq!(s3.sanitize(&e250), e250);
        let odd = format!("a{e250}");
        assert_eq!(odd.len(), 501);
        // keep 492 bytes = "a" + 245 "é" (491 bytes); never split a code point.
        assert_eq!(
            s3.sanitize(&odd),
            format!("a{}{}", "é".repeat(245), hash_prefix(&odd, 8))
        );
        let astral = "🌍".repeat(200);
        let out = s3.sanitize(&astral);
        assert_eq!(
            out,
            format!("{}{}", "🌍".repeat(123), hash_prefix(&astral, 8))
        );
        assert!(out.len() <= 500);
        // Code-point mode.
        assert_eq!(
            hash_excess_length(&"é".repeat(20), 20, false),
            "é".repeat(20)
        );
        assert_eq!(
            hash_excess_length(&"é".repeat(21), 20, false),
            format!("{}{}", "é".repeat(12), hash_prefix(&"é".repeat(21), 8))
        );
        assert_eq!(
            hash_excess_length("abcdef", 3, false),
            hash_prefix("abcdef", 8)
        );
        assert_eq!(hash_excess_length("", 0, true), "");
    }
}
