//! How typed values become bytes.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, ErrorKind, Result};

/// A serde codec for typed values.
///
/// - [`Codec::Json`] (default): readable, interoperable (the CLI and py-key-value speak it);
/// - [`Codec::Postcard`]: compact and fast, Rust-only, not self-describing (the reading type
///   must match the writing type);
/// - [`Codec::MessagePack`]: compact, self-describing, readable from other languages
///   (structs are written as maps with field names).
///
/// bincode is deliberately absent: unmaintained (RUSTSEC-2025-0141).
///
/// ```
/// use kv_core::Codec;
///
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct User { name: String, age: u32 }
///
/// let alice = User { name: "alice".into(), age: 30 };
/// for codec in [Codec::Json, Codec::Postcard, Codec::MessagePack] {
///     let bytes = codec.encode(&alice).unwrap();
///     assert_eq!(codec.decode::<User>(&bytes).unwrap(), alice);
/// }
/// assert_eq!(&Codec::Json.encode(&alice).unwrap()[..], br#"{"name":"alice","age":30}"#);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// JSON via `serde_json`.
    #[default]
    Json,
    /// postcard (compact binary, stable wire format in 1.x).
    Postcard,
    /// MessagePack via `rmp-serde`, structs as maps.
    MessagePack,
}

impl Codec {
    /// The codec's name: `json`, `postcard` or `msgpack`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Json => "json",
            Codec::Postcard => "postcard",
            Codec::MessagePack => "msgpack",
        }
    }

    /// Encodes a value.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Bytes> {
        let out = match self {
            Codec::Json => serde_json::to_vec(value).map_err(|e| ser_err(self, e)),
            Codec::Postcard => postcard::to_stdvec(value).map_err(|e| ser_err(self, e)),
            Codec::MessagePack => rmp_serde::to_vec_named(value).map_err(|e| ser_err(self, e)),
        }?;
        Ok(Bytes::from(out))
    }

    /// Decodes a value. Bytes that do not decode as `T` are a
    /// [`ErrorKind::Serialization`] error.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T> {
        match self {
            Codec::Json => serde_json::from_slice(bytes).map_err(|e| de_err(self, e)),
            Codec::Postcard => postcard::from_bytes(bytes).map_err(|e| de_err(self, e)),
            Codec::MessagePack => rmp_serde::from_slice(bytes).map_err(|e| de_err(self, e)),
        }
    }
}

fn ser_err(codec: Codec, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(
        ErrorKind::Serialization,
        format!("cannot encode the value as {}", codec.name()),
    )
    .with_source(e)
}

fn de_err(codec: Codec, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(
        ErrorKind::Serialization,
        format!(
            "stored value does not decode as the requested type ({})",
            codec.name()
        ),
    )
    .with_source(e)
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Codec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Codec::Json),
            "postcard" => Ok(Codec::Postcard),
            "msgpack" | "messagepack" | "rmp" => Ok(Codec::MessagePack),
            _ => Err(Error::new(
                ErrorKind::Config,
                format!("unknown codec {s:?} (expected json, postcard or msgpack)"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn json_rejects_non_string_map_keys() {
        let mut m = HashMap::new();
        m.insert((1, 2), "x");
        let err = Codec::Json.encode(&m).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Serialization);
    }

    #[test]
    fn decode_garbage_is_an_error_not_a_panic() {
        for codec in [Codec::Json, Codec::Postcard, Codec::MessagePack] {
            let err = codec
                .decode::<Vec<String>>(&[0xff, 0x00, 0x13])
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Serialization, "{codec}");
        }
    }

    #[test]
    fn parse_names() {
        assert_eq!("JSON".parse::<Codec>().unwrap(), Codec::Json);
        assert_eq!("msgpack".parse::<Codec>().unwrap(), Codec::MessagePack);
        assert!("bincode".parse::<Codec>().is_err());
    }
}
