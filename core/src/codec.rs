//! Canonical, bounded binary encoding (SPEC §1).
//!
//! Integers are fixed-width big-endian; byte strings and vectors carry a `u32` length prefix that
//! is checked against the field's maximum *before* anything is allocated; `Option` is `0x00` or
//! `0x01` + value. [`Decode::decode`] rejects trailing bytes, and every type rejects its own
//! non-canonical forms, so `encode(decode(b)) == b` for every accepted `b`.
//!
//! This is the only place where bytes become objects.

use thiserror::Error;

/// Why a byte string could not be decoded. Every variant names the field it failed in.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The input ended inside a field.
    #[error("unexpected end of input in {field}")]
    UnexpectedEnd {
        /// Field being read.
        field: &'static str,
    },
    /// A length prefix is larger than the field's limit.
    #[error("{field}: length {len} exceeds limit {max}")]
    TooLong {
        /// Field being read.
        field: &'static str,
        /// Claimed length.
        len: u64,
        /// The field's maximum.
        max: u64,
    },
    /// Input remained after a complete value.
    #[error("{0} trailing bytes after a complete value")]
    TrailingBytes(usize),
    /// An enum or option tag with no meaning.
    #[error("{field}: invalid tag {tag}")]
    InvalidTag {
        /// Field being read.
        field: &'static str,
        /// The tag byte found.
        tag: u8,
    },
    /// A well-formed but non-canonical encoding (unsorted, duplicate, non-maximal, ...).
    #[error("{field}: non-canonical encoding ({reason})")]
    NonCanonical {
        /// Field being read.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A value outside its allowed range.
    #[error("{field}: invalid value ({reason})")]
    InvalidValue {
        /// Field being read.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// A type with one canonical encoding.
pub trait Encode {
    /// Append the encoding of `self` to `out`.
    fn encode_to(&self, out: &mut Vec<u8>);

    /// The encoding of `self` as a new vector.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_to(&mut out);
        out
    }

    /// Length of the encoding in bytes.
    fn encoded_len(&self) -> usize {
        self.encode().len()
    }
}

/// A type that can be read back from its canonical encoding.
pub trait Decode: Sized {
    /// Read one value from `r`, leaving the reader after it.
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError>;

    /// Decode exactly one value from `bytes`; trailing bytes are an error.
    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

/// A cursor over input bytes that never reads past the end and never allocates beyond the
/// limit a caller passes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Start reading `buf` from its first byte.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Error unless every byte has been read.
    pub fn finish(&self) -> Result<(), CodecError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(CodecError::TrailingBytes(n)),
        }
    }

    /// Borrow the next `n` bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], CodecError> {
        if self.remaining() < n {
            return Err(CodecError::UnexpectedEnd { field });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], CodecError> {
        let s = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// One byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// Big-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Big-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A `u32` length prefix checked against `max` (before any allocation).
    pub fn len_prefix(&mut self, max: usize, field: &'static str) -> Result<usize, CodecError> {
        let len = self.u32(field)? as usize;
        if len > max {
            return Err(CodecError::TooLong { field, len: len as u64, max: max as u64 });
        }
        Ok(len)
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn var_bytes(&mut self, max: usize, field: &'static str) -> Result<Vec<u8>, CodecError> {
        let len = self.len_prefix(max, field)?;
        Ok(self.take(len, field)?.to_vec())
    }

    /// An option tag: `false` for 0x00, `true` for 0x01.
    pub fn option_tag(&mut self, field: &'static str) -> Result<bool, CodecError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(CodecError::InvalidTag { field, tag }),
        }
    }

    /// A length-prefixed vector of at most `max` elements, each read by `f`.
    pub fn vec<T>(
        &mut self,
        max: usize,
        field: &'static str,
        mut f: impl FnMut(&mut Reader<'a>) -> Result<T, CodecError>,
    ) -> Result<Vec<T>, CodecError> {
        let n = self.len_prefix(max, field)?;
        // Every element takes at least one byte: never reserve more than the input could hold.
        let mut v = Vec::with_capacity(n.min(self.remaining()));
        for _ in 0..n {
            v.push(f(self)?);
        }
        Ok(v)
    }
}

/// Append a big-endian `u32` length prefix.
pub fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u32).to_be_bytes());
}

/// Append a length-prefixed byte string.
pub fn put_var_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

/// Append a length-prefixed vector.
pub fn put_vec<T: Encode>(out: &mut Vec<u8>, v: &[T]) {
    put_len(out, v.len());
    for x in v {
        x.encode_to(out);
    }
}

/// Append an option.
pub fn put_option<T: Encode>(out: &mut Vec<u8>, v: &Option<T>) {
    match v {
        None => out.push(0),
        Some(x) => {
            out.push(1);
            x.encode_to(out);
        }
    }
}

impl Encode for u8 {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
}
impl Decode for u8 {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.u8("u8")
    }
}
impl Encode for u32 {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}
impl Decode for u32 {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.u32("u32")
    }
}
impl Encode for u64 {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}
impl Decode for u64 {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.u64("u64")
    }
}
impl<const N: usize> Encode for [u8; N] {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}
impl<const N: usize> Decode for [u8; N] {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.array("bytes")
    }
}
impl Encode for crate::U256 {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes::<32>());
    }
}
impl Decode for crate::U256 {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(crate::U256::from_be_bytes(r.array::<32>("u256")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_checked_before_allocation() {
        // Claims 4 GiB; limit 16: rejected without reading further.
        let b = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let mut r = Reader::new(&b);
        assert!(matches!(r.var_bytes(16, "x"), Err(CodecError::TooLong { len: 0xffff_ffff, .. })));
        let mut r = Reader::new(&b);
        assert!(matches!(r.vec(8, "v", |r| r.u8("e")), Err(CodecError::TooLong { .. })));
    }

    #[test]
    fn trailing_and_truncated() {
        assert_eq!(u64::decode(&[0; 9]), Err(CodecError::TrailingBytes(1)));
        assert!(matches!(u64::decode(&[0; 7]), Err(CodecError::UnexpectedEnd { .. })));
        assert_eq!(u64::decode(&7u64.encode()), Ok(7));
    }

    #[test]
    fn option_tags() {
        let mut r = Reader::new(&[2]);
        assert_eq!(r.option_tag("o"), Err(CodecError::InvalidTag { field: "o", tag: 2 }));
    }
}
