//! Runtime-argument helpers: kernels read 32-bit words (`get_arg_val<uint32_t>(i)`), so host
//! values are turned into `u32` words here.
//!
//! ```
//! use tt_safe::args::{Args, pod_words};
//! #[repr(C)]
//! #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
//! struct ReaderArgs { src_addr: u32, num_tiles: u32, scale: f32 }
//! let words = pod_words(&ReaderArgs { src_addr: 0x1000, num_tiles: 4, scale: 0.5 });
//! assert_eq!(words, vec![0x1000, 4, 0.5f32.to_bits()]);
//! let args = Args::new().u32(7).f32(1.0).u64(0x1_0000_0002).into_vec();
//! assert_eq!(args, vec![7, 1.0f32.to_bits(), 2, 1]);
//! ```

use bytemuck::{NoUninit, Pod};

use crate::buffer::Buffer;
use crate::error::BufferError;
use crate::grid::CoreCoord;

/// The words of a plain-old-data value whose size is a multiple of 4 bytes (checked at compile
/// time by the assertion below; a `#[repr(C)]` struct of `u32`/`i32`/`f32` fields always is).
pub fn pod_words<T: Pod>(value: &T) -> Vec<u32> {
    const {
        assert!(
            size_of::<T>().is_multiple_of(4),
            "runtime-arg structs must be a whole number of 32-bit words"
        )
    };
    bytemuck::pod_collect_to_vec(bytemuck::bytes_of(value))
}

/// The words of a slice of plain-old-data values (see [`pod_words`]).
pub fn pod_slice_words<T: NoUninit>(values: &[T]) -> Vec<u32> {
    const {
        assert!(
            size_of::<T>().is_multiple_of(4),
            "runtime-arg structs must be a whole number of 32-bit words"
        )
    };
    bytemuck::pod_collect_to_vec(bytemuck::cast_slice::<T, u8>(values))
}

/// A runtime-argument list builder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args(Vec<u32>);

impl Args {
    /// An empty list.
    pub fn new() -> Args {
        Args(Vec::new())
    }
    /// Appends a word.
    pub fn u32(mut self, v: u32) -> Args {
        self.0.push(v);
        self
    }
    /// Appends an `i32` (two's complement).
    pub fn i32(mut self, v: i32) -> Args {
        self.0.push(v as u32);
        self
    }
    /// Appends an `f32` bit pattern (`get_arg_val<float>` or `std::bit_cast`).
    pub fn f32(mut self, v: f32) -> Args {
        self.0.push(v.to_bits());
        self
    }
    /// Appends a `u64` as two words, low word first.
    pub fn u64(mut self, v: u64) -> Args {
        self.0.push(v as u32);
        self.0.push((v >> 32) as u32);
        self
    }
    /// Appends a bool as 0/1.
    pub fn bool(mut self, v: bool) -> Args {
        self.0.push(u32::from(v));
        self
    }
    /// Appends NoC coordinates as two words (x, y).
    pub fn noc(mut self, c: CoreCoord) -> Args {
        self.0.push(c.x);
        self.0.push(c.y);
        self
    }
    /// Appends a buffer's device address (must fit 32 bits).
    pub fn addr(mut self, buffer: &Buffer) -> Result<Args, BufferError> {
        self.0.push(buffer.address_u32()?);
        Ok(self)
    }
    /// Appends the words of a Pod value.
    pub fn pod<T: Pod>(mut self, v: &T) -> Args {
        self.0.extend(pod_words(v));
        self
    }
    /// Appends words.
    pub fn extend(mut self, words: &[u32]) -> Args {
        self.0.extend_from_slice(words);
        self
    }
    /// Number of words.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The words.
    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }
    /// The words, owned.
    pub fn into_vec(self) -> Vec<u32> {
        self.0
    }
}

impl AsRef<[u32]> for Args {
    fn as_ref(&self) -> &[u32] {
        &self.0
    }
}

impl std::ops::Deref for Args {
    type Target = [u32];
    fn deref(&self) -> &[u32] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_words_little_endian_fields_in_order() {
        #[repr(C)]
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
        struct A {
            a: u32,
            b: i32,
            c: f32,
        }
        let w = pod_words(&A {
            a: 1,
            b: -2,
            c: 3.5,
        });
        assert_eq!(w, vec![1, (-2i32) as u32, 3.5f32.to_bits()]);
        let s = pod_slice_words(&[[1u16, 2u16], [3, 4]]);
        assert_eq!(s, vec![1 | (2 << 16), 3 | (4 << 16)]);
    }

    #[test]
    fn builder() {
        let a = Args::new()
            .i32(-1)
            .bool(true)
            .noc(CoreCoord::new(3, 9))
            .extend(&[5, 6]);
        assert_eq!(a.as_slice(), &[u32::MAX, 1, 3, 9, 5, 6]);
        assert_eq!(a.len(), 6);
    }
}
