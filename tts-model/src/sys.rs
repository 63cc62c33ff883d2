//! The crate's only `unsafe` code: two calls into crates whose entry points are `unsafe fn`
//! (`memmap2::Mmap::map` and `gemm::gemm`) and an AVX-512 f32 GEMM kernel (raw-pointer SIMD loads
//! and stores), each behind a safe wrapper that checks what the callee cannot. The model-side
//! modules are `#![deny(unsafe_code)]`.
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
    sgemm_impl(m, k, n, alpha, a, b, beta, None, c, true);
}

/// `C = A * B + bias + (accumulate ? C : 0)` with `bias` one value per column (`n` values), the
/// bias added in the GEMM's first pass over C instead of a separate one. Panics as [`sgemm`],
/// and if `bias` is shorter than `n`.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_bias(
    m: usize,
    k: usize,
    n: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
    bias: &[f32],
    accumulate: bool,
    c: MatMut<'_>,
) {
    assert!(bias.len() >= n, "sgemm_bias: bias shorter than n");
    let beta = if accumulate { 1.0 } else { 0.0 };
    sgemm_impl(m, k, n, 1.0, a, b, beta, Some(&bias[..n]), c, true);
}

#[allow(clippy::too_many_arguments)]
fn sgemm_impl(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    mut beta: f32,
    bias: Option<&[f32]>,
    c: MatMut<'_>,
    simd: bool,
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
    #[cfg(target_arch = "x86_64")]
    if a.cs == 1
        && b.cs == 1
        && c.cs == 1
        && alpha == 1.0
        && (beta == 0.0 || beta == 1.0)
        && simd
        && avx512::usable()
    {
        // SAFETY: the CPU supports AVX-512F (checked at run time by `usable`); A, B and C have unit
        // column stride and the asserts above put every element (i, l), (l, j), (i, j) for
        // i < m, l < k, j < n inside the borrowed slices, which is all the kernel touches (column
        // tails are masked). C is exclusively borrowed and its rows do not alias (checked above).
        // `bias`, when given, holds exactly n values (checked by `sgemm_bias`).
        unsafe {
            avx512::gemm(
                m,
                k,
                n,
                a.data.as_ptr(),
                a.rs,
                b.data.as_ptr(),
                b.rs,
                bias.map_or(std::ptr::null(), |b| b.as_ptr()),
                beta != 0.0,
                c.data.as_mut_ptr(),
                c.rs,
            );
        }
        return;
    }
    if let Some(bias) = bias {
        // Generic path: add the bias in a pass of its own, then accumulate the product.
        for i in 0..m {
            for (j, bv) in bias.iter().enumerate() {
                let e = &mut c.data[i * c.rs + j * c.cs];
                *e = if beta == 0.0 { *bv } else { *e + bv };
            }
        }
        beta = 1.0;
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

/// A row-major f32 GEMM for CPUs with AVX-512F: `C (+)= A * B` with unit column strides.
///
/// Register tiles of up to `MR` rows by 32 columns (24 accumulators) read A in place (no packing:
/// conv im2col rows overlap and are cheap to re-read) and B in `KC`-row blocks that stay in L1.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    const MR: usize = 12;
    const KC: usize = 256;

    /// AVX-512F present and not disabled with `TTS_CPU_GEMM=generic` (kept for A/B timing).
    pub fn usable() -> bool {
        static USE: OnceLock<bool> = OnceLock::new();
        *USE.get_or_init(|| {
            std::env::var("TTS_CPU_GEMM").map_or(true, |v| v != "generic")
                && std::is_x86_feature_detected!("avx512f")
        })
    }

    fn mask(cols: usize) -> __mmask16 {
        if cols >= 16 {
            0xFFFF
        } else {
            ((1u32 << cols) - 1) as __mmask16
        }
    }

    /// # Safety
    /// AVX-512F must be available; for i < m, l < k, j < n the elements `a[i*ars + l]`,
    /// `b[l*brs + j]` and `c[i*crs + j]` must be valid (C writable, not aliasing A or B) and
    /// distinct C indices must be distinct elements.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: *const f32,
        ars: usize,
        b: *const f32,
        brs: usize,
        bias: *const f32,
        accumulate: bool,
        c: *mut f32,
        crs: usize,
    ) {
        let mut j0 = 0;
        while j0 < n {
            let nw = (n - j0).min(32);
            let (m0, m1) = (mask(nw), mask(nw.saturating_sub(16)));
            let mut k0 = 0;
            loop {
                let kb = (k - k0).min(KC);
                let load_c = accumulate || k0 > 0;
                // The bias (if any) enters with the first depth block only.
                let bp0 = if k0 == 0 && !bias.is_null() {
                    // SAFETY: bias holds n values and j0 < n.
                    unsafe { bias.add(j0) }
                } else {
                    std::ptr::null()
                };
                let mut i0 = 0;
                while i0 < m {
                    let r = (m - i0).min(MR);
                    // SAFETY: rows i0..i0+r, depth k0..k0+kb, columns j0..j0+nw are inside the
                    // caller's bounds; the masks cover exactly the nw valid columns.
                    unsafe {
                        let (ap, bp, cp) = (
                            a.add(i0 * ars + k0),
                            b.add(k0 * brs + j0),
                            c.add(i0 * crs + j0),
                        );
                        macro_rules! go {
                            ($($n:literal)*) => {
                                match r {
                                    $($n => tile::<$n>(kb, ap, ars, bp, brs, bp0, cp, crs, m0, m1, load_c),)*
                                    _ => unreachable!(),
                                }
                            };
                        }
                        go!(1 2 3 4 5 6 7 8 9 10 11 12);
                    }
                    i0 += r;
                }
                k0 += kb;
                if k0 >= k {
                    break;
                }
            }
            j0 += 32;
        }
    }

    /// `R` rows x up to 32 columns: `C = (load_c ? C : 0) + bias + A[.., ..kb] * B[..kb, ..]`
    /// (no bias when `bias` is null).
    ///
    /// # Safety
    /// As [`gemm`], for `R` rows, `kb` depth and the columns selected by `m0`/`m1`; `bias` null or
    /// valid for the selected columns. Pointers to the second 16 columns are formed with
    /// `wrapping_add` (they may point past the data when `m1` selects nothing; masked-off lanes
    /// are never accessed).
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const R: usize>(
        kb: usize,
        a: *const f32,
        ars: usize,
        b: *const f32,
        brs: usize,
        bias: *const f32,
        c: *mut f32,
        crs: usize,
        m0: __mmask16,
        m1: __mmask16,
        load_c: bool,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        // SAFETY (whole body): every pointer formed is inside the caller's bounds (rows < R,
        // depth < kb, masked columns), see `gemm`.
        unsafe {
            if load_c {
                for (r, row) in acc.iter_mut().enumerate() {
                    row[0] = _mm512_maskz_loadu_ps(m0, c.add(r * crs));
                    row[1] = _mm512_maskz_loadu_ps(m1, c.add(r * crs).wrapping_add(16));
                }
            }
            if !bias.is_null() {
                let (b0, b1) = (
                    _mm512_maskz_loadu_ps(m0, bias),
                    _mm512_maskz_loadu_ps(m1, bias.wrapping_add(16)),
                );
                for row in acc.iter_mut() {
                    row[0] = _mm512_add_ps(row[0], b0);
                    row[1] = _mm512_add_ps(row[1], b1);
                }
            }
            for l in 0..kb {
                let b0 = _mm512_maskz_loadu_ps(m0, b.add(l * brs));
                let b1 = _mm512_maskz_loadu_ps(m1, b.add(l * brs).wrapping_add(16));
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*a.add(r * ars + l));
                    row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(av, b1, row[1]);
                }
            }
            for (r, row) in acc.iter().enumerate() {
                _mm512_mask_storeu_ps(c.add(r * crs), m0, row[0]);
                _mm512_mask_storeu_ps(c.add(r * crs).wrapping_add(16), m1, row[1]);
            }
        }
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

    /// Unit column strides (the AVX-512 kernel's case where the CPU has it): row tails (m not a
    /// multiple of 12), column tails (n not a multiple of 16/32), depth over one K block (300, 513
    /// > 256), row strides wider than the rows, overlapping A rows (an im2col view), beta 0 and 1.
    #[test]
    fn sgemm_unit_strides_matches_f64_reference() {
        for &(m, k, n, ars, beta) in &[
            (37, 300, 45, 7, 1.0f32),
            (25, 29, 32, 29, 0.0),
            (13, 513, 67, 64, 1.0),
            (1, 5, 3, 5, 0.0),
        ] {
            let a: Vec<f32> = (0..(m - 1) * ars + k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let brs = n + 5;
            let b: Vec<f32> = (0..k * brs)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 40.0)
                .collect();
            let crs = n + 3;
            let mut c: Vec<f32> = (0..m * crs)
                .map(|i| ((i * 29 % 89) as f32 - 44.0) / 30.0)
                .collect();
            let c0 = c.clone();
            sgemm(
                m,
                k,
                n,
                1.0,
                MatRef {
                    data: &a,
                    rs: ars,
                    cs: 1,
                },
                MatRef {
                    data: &b,
                    rs: brs,
                    cs: 1,
                },
                beta,
                MatMut {
                    data: &mut c,
                    rs: crs,
                    cs: 1,
                },
            );
            for i in 0..m {
                for j in 0..n {
                    let (mut r, mut mag) = (beta as f64 * c0[i * crs + j] as f64, 0f64);
                    for l in 0..k {
                        let p = a[i * ars + l] as f64 * b[l * brs + j] as f64;
                        r += p;
                        mag += p.abs();
                    }
                    // Any f32 summation order: |error| <= (k + 1) * eps * (sum |terms| + |c|).
                    let tol =
                        (k + 2) as f64 * f32::EPSILON as f64 * (mag + c0[i * crs + j].abs() as f64);
                    let got = c[i * crs + j] as f64;
                    assert!(
                        (got - r).abs() <= tol,
                        "({m},{k},{n}) ({i},{j}): {got} vs {r}"
                    );
                }
                for j in n..crs {
                    assert_eq!(c[i * crs + j], c0[i * crs + j], "padding column written");
                }
            }
        }
    }

    /// `sgemm_bias` on both paths (the AVX-512 kernel where the CPU has it, and the generic one)
    /// against f64, with and without accumulation, n with a column tail, depth over one K block.
    #[test]
    fn sgemm_bias_matches_f64_reference_on_both_paths() {
        let (m, k, n, ars) = (29, 270, 37, 11);
        let a: Vec<f32> = (0..(m - 1) * ars + k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 40.0)
            .collect();
        let bias: Vec<f32> = (0..n).map(|j| (j as f32 - 18.0) / 7.0).collect();
        for simd in [true, false] {
            for acc in [false, true] {
                let mut c: Vec<f32> = (0..m * n)
                    .map(|i| ((i * 29 % 89) as f32 - 44.0) / 30.0)
                    .collect();
                let c0 = c.clone();
                sgemm_impl(
                    m,
                    k,
                    n,
                    1.0,
                    MatRef {
                        data: &a,
                        rs: ars,
                        cs: 1,
                    },
                    MatRef {
                        data: &b,
                        rs: n,
                        cs: 1,
                    },
                    if acc { 1.0 } else { 0.0 },
                    Some(&bias),
                    MatMut {
                        data: &mut c,
                        rs: n,
                        cs: 1,
                    },
                    simd,
                );
                for i in 0..m {
                    for j in 0..n {
                        let prev = if acc { c0[i * n + j] as f64 } else { 0.0 };
                        let (mut r, mut mag) =
                            (prev + bias[j] as f64, prev.abs() + bias[j].abs() as f64);
                        for l in 0..k {
                            let p = a[i * ars + l] as f64 * b[l * n + j] as f64;
                            r += p;
                            mag += p.abs();
                        }
                        // Any f32 summation order: |error| <= (k + 2) * eps * sum |terms|.
                        let tol = (k + 3) as f64 * f32::EPSILON as f64 * mag;
                        let got = c[i * n + j] as f64;
                        assert!(
                            (got - r).abs() <= tol,
                            "simd {simd} acc {acc} ({i},{j}): {got} vs {r}"
                        );
                    }
                }
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
