//! The crate's only `unsafe` code: two calls into crates whose entry points are `unsafe fn`
//! (`memmap2::Mmap::map` and `gemm::gemm`), each behind a safe wrapper that checks what
//! the callee cannot. The model-side modules are `#![deny(unsafe_code)]`.
#![allow(unsafe_code)]

use bytes::Bytes;

/// Memory-map a whole file read-only and hand it out as [`Bytes`] (slices of it are zero-copy).
pub fn map_file(file: &std::fs::File) -> std::io::Result<Bytes> {
    // SAFETY: the map is read-only and private to this process. The remaining hazard of mmap is the
    // file being truncated or rewritten by another process while mapped; voices are read-only
    // model files that users do not modify while a program is loading them (the same contract as
    // every mmap-based model loader), and the weights are converted to owned buffers right after
    // loading, so the map is short-lived.
    let map = unsafe { memmap2::Mmap::map(file)? };
    Ok(Bytes::from_owner(map))
}

/// A read-only strided matrix view: element (i, j) is `data[i * rs + j * cs]`.
/// Rows may overlap (e.g. an im2col view of a padded signal); the view is never written.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    /// Backing storage.
    pub data: &'a [f32],
    /// Row stride (elements).
    pub rs: usize,
    /// Column stride (elements).
    pub cs: usize,
}

/// A writable strided matrix view: element (i, j) is `data[i * rs + j * cs]`; distinct (i, j)
/// must map to distinct elements, which [`sgemm`] checks.
pub struct MatMut<'a> {
    /// Backing storage.
    pub data: &'a mut [f32],
    /// Row stride (elements).
    pub rs: usize,
    /// Column stride (elements).
    pub cs: usize,
}

fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// `C = alpha * A * B + beta * C` with A `m x k`, B `k x n`, C `m x n` (f32, single-threaded;
/// with `beta == 0` C is not read).
///
/// Panics if a view is too small for its shape or if C's strides make two elements alias; both
/// are programming errors of this crate (shapes come from validated hyper-parameters).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: f32,
    c: MatMut<'_>,
) {
    assert!(
        fits(a.data.len(), m, k, a.rs, a.cs),
        "sgemm: A view out of bounds"
    );
    assert!(
        fits(b.data.len(), k, n, b.rs, b.cs),
        "sgemm: B view out of bounds"
    );
    assert!(
        fits(c.data.len(), m, n, c.rs, c.cs),
        "sgemm: C view out of bounds"
    );
    let c_unique = (m <= 1 || c.rs >= 1)
        && (n <= 1 || c.cs >= 1)
        && (m <= 1 || n <= 1 || c.rs >= n * c.cs || c.cs >= m * c.rs);
    assert!(c_unique, "sgemm: C strides alias");
    if m == 0 || n == 0 {
        return;
    }
    let ip = |x: usize| x as isize;
    // SAFETY: the asserts above guarantee that every element gemm reads from A and B
    // ((i, l) and (l, j) for i < m, l < k, j < n) lies inside the borrowed slices, that every C
    // element it reads and writes lies inside `c.data`, which is exclusively borrowed, and that no
    // two C elements alias. A and B may overlap themselves (read only) but cannot overlap C,
    // because C is a `&mut` borrow.
    unsafe {
        // gemm's convention: dst = alpha * dst + beta * lhs * rhs, strides given as (column, row).
        gemm::gemm(
            m,
            n,
            k,
            c.data.as_mut_ptr(),
            ip(c.cs),
            ip(c.rs),
            beta != 0.0,
            a.data.as_ptr(),
            ip(a.cs),
            ip(a.rs),
            b.data.as_ptr(),
            ip(b.cs),
            ip(b.rs),
            beta,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgemm_matches_f64_reference_with_strides() {
        let (m, k, n) = (37, 29, 23);
        let a: Vec<f32> = (0..m * k * 2)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 40.0)
            .collect();
        // A is read with row stride 2k (every other row), B transposed (rs 1, cs k).
        let mut c = vec![0.5f32; m * (n + 3)];
        let c0 = c.clone();
        sgemm(
            m,
            k,
            n,
            1.0,
            MatRef {
                data: &a,
                rs: 2 * k,
                cs: 1,
            },
            MatRef {
                data: &b,
                rs: 1,
                cs: k,
            },
            1.0,
            MatMut {
                data: &mut c,
                rs: n + 3,
                cs: 1,
            },
        );
        for i in 0..m {
            for j in 0..n {
                let r: f64 = (0..k)
                    .map(|l| a[i * 2 * k + l] as f64 * b[l + j * k] as f64)
                    .sum::<f64>()
                    + c0[i * (n + 3) + j] as f64;
                // f32 accumulation of k=29 products of magnitude <= 1.6: error well below 1e-4.
                assert!((c[i * (n + 3) + j] as f64 - r).abs() < 1e-4, "({i},{j})");
            }
            for j in n..n + 3 {
                assert_eq!(c[i * (n + 3) + j], 0.5, "padding column written");
            }
        }
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn sgemm_rejects_short_views() {
        let a = vec![0f32; 5];
        let mut c = vec![0f32; 4];
        sgemm(
            2,
            3,
            2,
            1.0,
            MatRef {
                data: &a,
                rs: 3,
                cs: 1,
            },
            MatRef {
                data: &a,
                rs: 2,
                cs: 1,
            },
            0.0,
            MatMut {
                data: &mut c,
                rs: 2,
                cs: 1,
            },
        );
    }
}
