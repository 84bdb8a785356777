//! Typed tensor values: [`Dtype`], [`Tensor`] and the [`Element`] types they convert from and to.

use std::fmt;
use std::str::FromStr;

use kv_core::{Bytes, Error, ErrorKind, Result};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The element type of a tensor: the dtypes of the safetensors format (0.8), with the same
/// names (`"F32"`, `"BF16"`, `"F8_E4M3"` ...). Multi-byte types are little-endian.
///
/// ```
/// use kv_store_safetensors::Dtype;
///
/// assert_eq!("BF16".parse::<Dtype>().unwrap(), Dtype::BF16);
/// assert_eq!(Dtype::F32.bitsize(), 32);
/// assert_eq!(Dtype::F4.to_string(), "F4");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(non_camel_case_types)]
#[non_exhaustive]
pub enum Dtype {
    /// Boolean, one byte (0 or 1).
    BOOL,
    /// 4-bit float (MXF4); two elements per byte.
    F4,
    /// 6-bit float (MXF6 E2M3).
    F6_E2M3,
    /// 6-bit float (MXF6 E3M2).
    F6_E3M2,
    /// Unsigned byte.
    U8,
    /// Signed byte.
    I8,
    /// 8-bit float E5M2.
    F8_E5M2,
    /// 8-bit float E4M3.
    F8_E4M3,
    /// 8-bit scale E8M0.
    F8_E8M0,
    /// 8-bit float E4M3 (FNUZ).
    F8_E4M3FNUZ,
    /// 8-bit float E5M2 (FNUZ).
    F8_E5M2FNUZ,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 16-bit integer.
    U16,
    /// IEEE half precision (bits as `u16`).
    F16,
    /// bfloat16 (bits as `u16`).
    BF16,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// IEEE single precision.
    F32,
    /// Complex number of two `F32` parts.
    C64,
    /// IEEE double precision.
    F64,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 64-bit integer.
    U64,
}

const ALL: [Dtype; 22] = [
    Dtype::BOOL,
    Dtype::F4,
    Dtype::F6_E2M3,
    Dtype::F6_E3M2,
    Dtype::U8,
    Dtype::I8,
    Dtype::F8_E5M2,
    Dtype::F8_E4M3,
    Dtype::F8_E8M0,
    Dtype::F8_E4M3FNUZ,
    Dtype::F8_E5M2FNUZ,
    Dtype::I16,
    Dtype::U16,
    Dtype::F16,
    Dtype::BF16,
    Dtype::I32,
    Dtype::U32,
    Dtype::F32,
    Dtype::C64,
    Dtype::F64,
    Dtype::I64,
    Dtype::U64,
];

impl Dtype {
    /// Every dtype, in safetensors' order (increasing alignment).
    ///
    /// ```
    /// assert_eq!(kv_store_safetensors::Dtype::all().len(), 22);
    /// ```
    pub fn all() -> &'static [Dtype] {
        &ALL
    }

    /// The size of one element in bits (4 and 6 for the sub-byte float types).
    pub fn bitsize(self) -> usize {
        match self {
            Dtype::F4 => 4,
            Dtype::F6_E2M3 | Dtype::F6_E3M2 => 6,
            Dtype::BOOL
            | Dtype::U8
            | Dtype::I8
            | Dtype::F8_E5M2
            | Dtype::F8_E4M3
            | Dtype::F8_E8M0
            | Dtype::F8_E4M3FNUZ
            | Dtype::F8_E5M2FNUZ => 8,
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 16,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 32,
            Dtype::C64 | Dtype::F64 | Dtype::I64 | Dtype::U64 => 64,
        }
    }

    /// The name used in safetensors headers (`"F32"`).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::BOOL => "BOOL",
            Dtype::F4 => "F4",
            Dtype::F6_E2M3 => "F6_E2M3",
            Dtype::F6_E3M2 => "F6_E3M2",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::F8_E5M2 => "F8_E5M2",
            Dtype::F8_E4M3 => "F8_E4M3",
            Dtype::F8_E8M0 => "F8_E8M0",
            Dtype::F8_E4M3FNUZ => "F8_E4M3FNUZ",
            Dtype::F8_E5M2FNUZ => "F8_E5M2FNUZ",
            Dtype::I16 => "I16",
            Dtype::U16 => "U16",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I32 => "I32",
            Dtype::U32 => "U32",
            Dtype::F32 => "F32",
            Dtype::C64 => "C64",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
            Dtype::U64 => "U64",
        }
    }

    /// The number of data bytes of a tensor of this dtype and shape, or an error if the shape
    /// overflows or (for sub-byte types) does not end on a byte boundary.
    ///
    /// ```
    /// use kv_store_safetensors::Dtype;
    ///
    /// assert_eq!(Dtype::F32.byte_len(&[2, 3]).unwrap(), 24);
    /// assert_eq!(Dtype::F4.byte_len(&[4]).unwrap(), 2);
    /// assert!(Dtype::F4.byte_len(&[3]).is_err());
    /// assert!(Dtype::U64.byte_len(&[usize::MAX, 2]).is_err());
    /// ```
    pub fn byte_len(self, shape: &[usize]) -> Result<usize> {
        let overflow = || {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("a {self} tensor of shape {shape:?} is too large"),
            )
        };
        let elements = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(overflow)?;
        let bits = elements.checked_mul(self.bitsize()).ok_or_else(overflow)?;
        if !bits.is_multiple_of(8) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "a {self} tensor of shape {shape:?} has {bits} bits, not a whole number of bytes"
                ),
            ));
        }
        Ok(bits / 8)
    }

    pub(crate) fn to_safetensors(self) -> safetensors::Dtype {
        use safetensors::Dtype as S;
        match self {
            Dtype::BOOL => S::BOOL,
            Dtype::F4 => S::F4,
            Dtype::F6_E2M3 => S::F6_E2M3,
            Dtype::F6_E3M2 => S::F6_E3M2,
            Dtype::U8 => S::U8,
            Dtype::I8 => S::I8,
            Dtype::F8_E5M2 => S::F8_E5M2,
            Dtype::F8_E4M3 => S::F8_E4M3,
            Dtype::F8_E8M0 => S::F8_E8M0,
            Dtype::F8_E4M3FNUZ => S::F8_E4M3FNUZ,
            Dtype::F8_E5M2FNUZ => S::F8_E5M2FNUZ,
            Dtype::I16 => S::I16,
            Dtype::U16 => S::U16,
            Dtype::F16 => S::F16,
            Dtype::BF16 => S::BF16,
            Dtype::I32 => S::I32,
            Dtype::U32 => S::U32,
            Dtype::F32 => S::F32,
            Dtype::C64 => S::C64,
            Dtype::F64 => S::F64,
            Dtype::I64 => S::I64,
            Dtype::U64 => S::U64,
        }
    }

    /// The dtype of a safetensors header entry (by name, so a dtype added to a later
    /// safetensors release is an error rather than a misreading).
    pub(crate) fn from_safetensors(d: safetensors::Dtype) -> Result<Self> {
        d.to_string().parse()
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dtype {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        ALL.iter().copied().find(|d| d.name() == s).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("unknown tensor dtype {s:?}"),
            )
        })
    }
}

impl Serialize for Dtype {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Dtype {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// A Rust type that is the element type of a [`Dtype`]: tensors convert from and to slices of
/// it, little-endian.
pub trait Element: Copy + Sized + sealed::Sealed {
    /// The dtype of tensors of this element type.
    const DTYPE: Dtype;
    /// Size in bytes.
    const SIZE: usize;
    /// Appends the little-endian bytes of `self`.
    fn write_le(self, out: &mut Vec<u8>);
    /// Reads one element from exactly [`Element::SIZE`] little-endian bytes (`None` if the
    /// bytes are not a valid value, such as a `bool` byte other than 0 or 1).
    fn read_le(bytes: &[u8]) -> Option<Self>;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! element {
    ($t:ty, $d:ident, $n:expr) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: Dtype = Dtype::$d;
            const SIZE: usize = $n;
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read_le(bytes: &[u8]) -> Option<Self> {
                Some(<$t>::from_le_bytes(bytes.try_into().ok()?))
            }
        }
    };
}

element!(u8, U8, 1);
element!(i8, I8, 1);
element!(u16, U16, 2);
element!(i16, I16, 2);
element!(u32, U32, 4);
element!(i32, I32, 4);
element!(u64, U64, 8);
element!(i64, I64, 8);
element!(f32, F32, 4);
element!(f64, F64, 8);

impl sealed::Sealed for bool {}
impl Element for bool {
    const DTYPE: Dtype = Dtype::BOOL;
    const SIZE: usize = 1;
    fn write_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
    fn read_le(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [0] => Some(false),
            [1] => Some(true),
            _ => None,
        }
    }
}

/// A tensor: element type, shape (row-major, C order) and little-endian data, as in a
/// `.safetensors` file.
///
/// A `Tensor` always satisfies `data.len() == product(shape) * dtype size` (checked by every
/// constructor, including deserialisation).
///
/// # Serde encoding
///
/// A struct of three fields, `dtype` (its name), `shape` (list of integers) and `data`. In
/// human-readable formats (JSON) `data` is a **base64** string (standard alphabet, padded); in
/// binary formats (postcard, MessagePack) it is a byte string. With kv's default JSON codec a
/// tensor is therefore the self-describing, canonical text
/// `{"dtype":"F32","shape":[2],"data":"AACAPwAAAEA="}`, which the safetensors store
/// recognises on `put` and keeps as a real tensor in its file.
///
/// ```
/// use kv_store_safetensors::{Dtype, Tensor};
///
/// let t = Tensor::from_slice(&[2, 2], &[1.0f32, 2.0, 3.0, 4.0])?;
/// assert_eq!(t.dtype(), Dtype::F32);
/// assert_eq!(t.to_vec::<f32>()?, vec![1.0, 2.0, 3.0, 4.0]);
/// assert!(t.to_vec::<f64>().is_err()); // dtype mismatch
/// assert!(Tensor::from_slice(&[3], &[1i32, 2]).is_err()); // shape mismatch
///
/// let json = serde_json::to_string(&Tensor::from_slice(&[2], &[1.0f32, 2.0])?).unwrap();
/// assert_eq!(json, r#"{"dtype":"F32","shape":[2],"data":"AACAPwAAAEA="}"#);
/// # Ok::<(), kv_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Bytes,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .finish()
    }
}

impl Tensor {
    /// A tensor from raw little-endian data; an [`ErrorKind::InvalidArgument`] error if
    /// `data.len()` is not `product(shape) * dtype size`.
    ///
    /// ```
    /// use kv_store_safetensors::{Dtype, Tensor};
    ///
    /// let t = Tensor::new(Dtype::BF16, vec![2], vec![0x80, 0x3f, 0x00, 0x40])?;
    /// assert_eq!(t.data().len(), 4);
    /// assert!(Tensor::new(Dtype::BF16, vec![2], vec![0; 3]).is_err());
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn new(dtype: Dtype, shape: Vec<usize>, data: impl Into<Bytes>) -> Result<Self> {
        let data = data.into();
        let expected = dtype.byte_len(&shape)?;
        if data.len() != expected {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "a {dtype} tensor of shape {shape:?} needs {expected} bytes of data, got {}",
                    data.len()
                ),
            ));
        }
        Ok(Tensor { dtype, shape, data })
    }

    /// A tensor of `shape` from elements in row-major order.
    ///
    /// ```
    /// let t = kv_store_safetensors::Tensor::from_slice(&[3], &[1i64, 2, 3])?;
    /// assert_eq!(t.shape(), &[3]);
    /// # Ok::<(), kv_core::Error>(())
    /// ```
    pub fn from_slice<T: Element>(shape: &[usize], values: &[T]) -> Result<Self> {
        let mut data = Vec::with_capacity(values.len().saturating_mul(T::SIZE));
        for v in values {
            v.write_le(&mut data);
        }
        Tensor::new(T::DTYPE, shape.to_vec(), data)
    }

    /// A one-dimensional tensor of the elements.
    ///
    /// ```
    /// let t = kv_store_safetensors::Tensor::vector(&[1.5f64, 2.5]);
    /// assert_eq!(t.shape(), &[2]);
    /// ```
    pub fn vector<T: Element>(values: &[T]) -> Self {
        let mut data = Vec::with_capacity(values.len().saturating_mul(T::SIZE));
        for v in values {
            v.write_le(&mut data);
        }
        Tensor {
            dtype: T::DTYPE,
            shape: vec![values.len()],
            data: Bytes::from(data),
        }
    }

    /// A `U8` tensor of shape `[len]` holding `bytes`: how the safetensors store keeps values
    /// that are not tensors.
    ///
    /// ```
    /// let t = kv_store_safetensors::Tensor::from_bytes(b"hello".to_vec());
    /// assert_eq!(t.shape(), &[5]);
    /// ```
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let data = bytes.into();
        Tensor {
            dtype: Dtype::U8,
            shape: vec![data.len()],
            data,
        }
    }

    /// The elements, in row-major order; an [`ErrorKind::Serialization`] error if the tensor's
    /// dtype is not `T`'s (no conversion is made) or an element is invalid (a `BOOL` byte
    /// other than 0 or 1).
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if self.dtype != T::DTYPE {
            return Err(Error::new(
                ErrorKind::Serialization,
                format!(
                    "the tensor's dtype is {}, not {} ({})",
                    self.dtype,
                    T::DTYPE,
                    std::any::type_name::<T>()
                ),
            ));
        }
        self.data
            .chunks_exact(T::SIZE)
            .map(|c| {
                T::read_le(c).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Serialization,
                        format!("the tensor holds an invalid {} element", self.dtype),
                    )
                })
            })
            .collect()
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The shape (empty for a scalar).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements (1 for a scalar).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True if the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw little-endian data.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The parts: dtype, shape and data.
    pub fn into_parts(self) -> (Dtype, Vec<usize>, Bytes) {
        (self.dtype, self.shape, self.data)
    }

    /// The canonical JSON encoding (what kv's JSON codec writes for a `Tensor`).
    pub(crate) fn to_json(&self) -> Bytes {
        let mut out = Vec::with_capacity(48 + self.data.len() * 4 / 3);
        out.extend_from_slice(b"{\"dtype\":\"");
        out.extend_from_slice(self.dtype.name().as_bytes());
        out.extend_from_slice(b"\",\"shape\":[");
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(d.to_string().as_bytes());
        }
        out.extend_from_slice(b"],\"data\":\"");
        base64::encode_into(&self.data, &mut out);
        out.extend_from_slice(b"\"}");
        Bytes::from(out)
    }

    /// Recognises the canonical JSON encoding of a tensor: `Some` only if `bytes` is exactly
    /// what [`Tensor::to_json`] writes for the tensor it decodes to.
    pub(crate) fn from_canonical_json(bytes: &[u8]) -> Option<Tensor> {
        if !bytes.starts_with(b"{\"dtype\":\"") {
            return None;
        }
        let t: Tensor = serde_json::from_slice(bytes).ok()?;
        (t.to_json() == bytes).then_some(t)
    }
}

impl safetensors::View for &Tensor {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype.to_safetensors()
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }
}

impl Serialize for Tensor {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let readable = s.is_human_readable();
        let mut st = s.serialize_struct("Tensor", 3)?;
        st.serialize_field("dtype", &self.dtype)?;
        st.serialize_field("shape", &self.shape)?;
        if readable {
            let mut text = Vec::with_capacity(self.data.len() * 4 / 3 + 4);
            base64::encode_into(&self.data, &mut text);
            // base64 output is ASCII.
            let text = String::from_utf8(text).map_err(serde::ser::Error::custom)?;
            st.serialize_field("data", &text)?;
        } else {
            st.serialize_field("data", &ByteStr(&self.data))?;
        }
        st.end()
    }
}

/// Serialises a byte slice as a byte string (not a sequence of numbers).
struct ByteStr<'a>(&'a [u8]);

impl Serialize for ByteStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// The `data` field: base64 text, a byte string or a sequence of bytes.
struct Data(Vec<u8>);

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Data;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("tensor data as base64 text or bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Data, E> {
                base64::decode(v.as_bytes())
                    .map(Data)
                    .ok_or_else(|| E::custom("tensor data is not valid base64"))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> std::result::Result<Data, E> {
                Ok(Data(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> std::result::Result<Data, E> {
                Ok(Data(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Data, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Data(out))
            }
        }
        if d.is_human_readable() {
            d.deserialize_any(V)
        } else {
            d.deserialize_byte_buf(V)
        }
    }
}

impl<'de> Deserialize<'de> for Tensor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        const FIELDS: &[&str] = &["dtype", "shape", "data"];
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tensor;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a tensor {dtype, shape, data}")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Tensor, A::Error> {
                let dtype: Dtype = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let shape: Vec<usize> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let data: Data = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(2, &self))?;
                Tensor::new(dtype, shape, data.0).map_err(de::Error::custom)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Tensor, A::Error> {
                let (mut dtype, mut shape, mut data) = (None, None, None);
                while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match &*k {
                        "dtype" if dtype.is_none() => dtype = Some(map.next_value::<Dtype>()?),
                        "shape" if shape.is_none() => shape = Some(map.next_value::<Vec<usize>>()?),
                        "data" if data.is_none() => data = Some(map.next_value::<Data>()?),
                        "dtype" | "shape" | "data" => {
                            return Err(de::Error::custom(format!("duplicate field `{k}`")));
                        }
                        other => return Err(de::Error::unknown_field(other, FIELDS)),
                    }
                }
                let dtype = dtype.ok_or_else(|| de::Error::missing_field("dtype"))?;
                let shape = shape.ok_or_else(|| de::Error::missing_field("shape"))?;
                let data = data.ok_or_else(|| de::Error::missing_field("data"))?;
                Tensor::new(dtype, shape, data.0).map_err(de::Error::custom)
            }
        }
        d.deserialize_struct("Tensor", FIELDS, V)
    }
}

/// Standard base64 (RFC 4648 alphabet, padded), enough for tensor data.
pub(crate) mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// Appends the base64 text of `data` to `out`.
    pub fn encode_into(data: &[u8], out: &mut Vec<u8>) {
        out.reserve(data.len().div_ceil(3) * 4);
        let mut chunks = data.chunks_exact(3);
        for c in &mut chunks {
            let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
            out.extend_from_slice(&[
                ALPHABET[(n >> 18) as usize & 63],
                ALPHABET[(n >> 12) as usize & 63],
                ALPHABET[(n >> 6) as usize & 63],
                ALPHABET[n as usize & 63],
            ]);
        }
        match *chunks.remainder() {
            [a] => {
                let n = u32::from(a) << 16;
                out.extend_from_slice(&[
                    ALPHABET[(n >> 18) as usize & 63],
                    ALPHABET[(n >> 12) as usize & 63],
                    b'=',
                    b'=',
                ]);
            }
            [a, b] => {
                let n = u32::from(a) << 16 | u32::from(b) << 8;
                out.extend_from_slice(&[
                    ALPHABET[(n >> 18) as usize & 63],
                    ALPHABET[(n >> 12) as usize & 63],
                    ALPHABET[(n >> 6) as usize & 63],
                    b'=',
                ]);
            }
            _ => {}
        }
    }

    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }

    /// Decodes padded base64; `None` for anything else (so the encoding is canonical: the
    /// unused bits of the last group must be zero).
    pub fn decode(text: &[u8]) -> Option<Vec<u8>> {
        if !text.len().is_multiple_of(4) {
            return None;
        }
        let mut out = Vec::with_capacity(text.len() / 4 * 3);
        let groups = text.len() / 4;
        for (i, g) in text.chunks_exact(4).enumerate() {
            let last = i + 1 == groups;
            let pad = if last {
                g.iter().rev().take_while(|&&c| c == b'=').count()
            } else {
                0
            };
            if pad > 2 {
                return None;
            }
            let mut n = 0u32;
            for &c in &g[..4 - pad] {
                n = n << 6 | value(c)?;
            }
            n <<= 6 * pad as u32;
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            match pad {
                0 => out.extend_from_slice(&bytes),
                1 if n & 0xff == 0 => out.extend_from_slice(&bytes[..2]),
                2 if n & 0xffff == 0 => out.push(bytes[0]),
                _ => return None,
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Element + PartialEq + fmt::Debug>(values: &[T]) {
        let t = Tensor::from_slice(&[values.len()], values).unwrap();
        assert_eq!(t.dtype(), T::DTYPE);
        assert_eq!(t.data().len(), values.len() * T::SIZE);
        assert_eq!(t.to_vec::<T>().unwrap(), values);
        // Every serde form.
        let json = serde_json::to_vec(&t).unwrap();
        assert_eq!(serde_json::from_slice::<Tensor>(&json).unwrap(), t);
        assert_eq!(Tensor::from_canonical_json(&json), Some(t.clone()));
        assert_eq!(&t.to_json()[..], &json[..]);
        let pc = postcard::to_stdvec(&t).unwrap();
        assert_eq!(postcard::from_bytes::<Tensor>(&pc).unwrap(), t);
        let mp = rmp_serde::to_vec_named(&t).unwrap();
        assert_eq!(rmp_serde::from_slice::<Tensor>(&mp).unwrap(), t);
        let mp = rmp_serde::to_vec(&t).unwrap();
        assert_eq!(rmp_serde::from_slice::<Tensor>(&mp).unwrap(), t);
    }

    #[test]
    fn every_element_type_round_trips() {
        round_trip(&[0u8, 1, 255]);
        round_trip(&[i8::MIN, -1, 0, i8::MAX]);
        round_trip(&[0u16, 1, u16::MAX]);
        round_trip(&[i16::MIN, 0, i16::MAX]);
        round_trip(&[0u32, 7, u32::MAX]);
        round_trip(&[i32::MIN, -7, i32::MAX]);
        round_trip(&[0u64, u64::MAX]);
        round_trip(&[i64::MIN, -1, i64::MAX]);
        round_trip(&[0.0f32, -1.5, f32::MAX, f32::MIN_POSITIVE, f32::INFINITY]);
        round_trip(&[0.0f64, -1.5, f64::MAX, f64::NEG_INFINITY]);
        round_trip(&[true, false, true]);
        round_trip::<f32>(&[]);
        // NaN survives bit for bit (JSON would lose it as a number).
        let t = Tensor::vector(&[f32::NAN]);
        let back: Tensor = serde_json::from_slice(&serde_json::to_vec(&t).unwrap()).unwrap();
        assert!(back.to_vec::<f32>().unwrap()[0].is_nan());
    }

    #[test]
    fn every_dtype_round_trips_raw() {
        for &d in Dtype::all() {
            assert_eq!(d.name().parse::<Dtype>().unwrap(), d);
            assert_eq!(Dtype::from_safetensors(d.to_safetensors()).unwrap(), d);
            let shape = vec![2, 4];
            let len = d.byte_len(&shape).unwrap();
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let t = Tensor::new(d, shape, data).unwrap();
            let json = serde_json::to_vec(&t).unwrap();
            assert_eq!(serde_json::from_slice::<Tensor>(&json).unwrap(), t, "{d}");
            let pc = postcard::to_stdvec(&t).unwrap();
            assert_eq!(postcard::from_bytes::<Tensor>(&pc).unwrap(), t, "{d}");
        }
    }

    #[test]
    fn mismatches_are_errors() {
        let t = Tensor::vector(&[1i32, 2]);
        assert_eq!(
            t.to_vec::<u32>().unwrap_err().kind(),
            ErrorKind::Serialization
        );
        assert_eq!(
            t.to_vec::<i64>().unwrap_err().kind(),
            ErrorKind::Serialization
        );
        let e = Tensor::from_slice(&[3], &[1i32, 2]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(Tensor::new(Dtype::F32, vec![usize::MAX, 8], vec![]).is_err());
        assert!(Tensor::new(Dtype::F6_E2M3, vec![3], vec![0; 2]).is_err());
        assert!(Tensor::new(Dtype::F6_E2M3, vec![4], vec![0; 3]).is_ok());
        let bad_bool = Tensor::new(Dtype::BOOL, vec![1], vec![2]).unwrap();
        assert!(bad_bool.to_vec::<bool>().is_err());
        // Decoding checks the length too, and rejects bad base64 and unknown dtypes.
        for bad in [
            r#"{"dtype":"F32","shape":[2],"data":"AAAA"}"#,
            r#"{"dtype":"F32","shape":[1],"data":"AAA"}"#,
            r#"{"dtype":"F99","shape":[1],"data":"AAAAAA=="}"#,
            r#"{"dtype":"F32","shape":[1]}"#,
            r#"{"dtype":"F32","shape":[1],"data":"AAAAAA==","x":1}"#,
            r#"{"dtype":"U8","shape":[1],"data":"AB=="}"#,
        ] {
            assert!(serde_json::from_str::<Tensor>(bad).is_err(), "{bad}");
        }
        // Not canonical (whitespace): decodes, but is not recognised as a stored tensor.
        let spaced = r#"{"dtype": "U8","shape":[1],"data":"AA=="}"#;
        assert!(serde_json::from_str::<Tensor>(spaced).is_ok());
        assert_eq!(Tensor::from_canonical_json(spaced.as_bytes()), None);
    }

    #[test]
    fn base64_matches_the_rfc() {
        for (plain, text) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = Vec::new();
            base64::encode_into(plain.as_bytes(), &mut out);
            assert_eq!(out, text.as_bytes());
            assert_eq!(base64::decode(text.as_bytes()).unwrap(), plain.as_bytes());
        }
        for bad in ["Z", "Zg=", "Z===", "Zh==", "Zm9=Yg==", "Zm9v\n"] {
            assert_eq!(base64::decode(bad.as_bytes()), None, "{bad}");
        }
    }
}
