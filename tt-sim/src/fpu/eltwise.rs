//! Eltwise binary (ELWADD/ELWSUB/ELWMUL), datacopy (MOVA2D / ELWADD), transpose and reduce
//! (GAPOOL/GMPOOL) for one tile, in the order the Wormhole B0 LLK issues them.

use super::core as dp;
use super::matmul::{DestLanes, accum_step, mulhi, split16};
use super::{
    Bcast, DestTile, EltOp, FpuConfig, ReduceDim, ReduceOp, SrcTile, TILE_DATUMS, dest_store,
    face_index,
};

/// Datacopy of one source datum to DEST (copy_tile): denormals and -0 flush to +0; a 16-bit DEST
/// keeps the bf16 (MOVA2D), a 32-bit DEST the full source value (the LLK uses ELWADD A + 0 there,
/// which is exact).
#[inline(always)]
fn copy_datum(v: u32, fp32: bool) -> u32 {
    if dp::src_is_zero(v) {
        0
    } else {
        dest_store(v << 13, fp32)
    }
}

/// copy_tile: SrcA -> DEST.
pub fn datacopy(dst: &mut DestTile, src: &SrcTile, cfg: &FpuConfig) {
    let fp32 = cfg.fp32_dest_acc;
    for (o, &v) in dst.v.iter_mut().zip(src.v.iter()) {
        *o = copy_datum(v, fp32);
    }
    dst.set_all_valid();
}

/// transpose_wh_tile through SrcA (the unpacker transposes, math copies): DEST = A^T.
pub fn transpose(dst: &mut DestTile, a: &SrcTile, cfg: &FpuConfig) {
    datacopy(dst, &a.transposed(), cfg);
}

/// Transposes a DEST tile in place (the fp32 / unpack-to-DEST `transpose_wh_tile` path, which
/// moves values without changing them).
pub fn transpose_dest(dst: &mut DestTile) {
    let old = dst.v;
    for r in 0..32 {
        for c in 0..32 {
            dst.v[face_index(c, r)] = old[face_index(r, c)];
        }
    }
    dst.set_all_valid();
}

/// Eltwise binary on one tile: DEST = A op B' where B' is B broadcast per `bcast`.
///
/// - `Add`/`Sub`: one ELWADD/ELWSUB per datum; with `accumulate` (the LLK's `acc_to_dest`) the
///   result is added to DEST's current value in the same rounding step, otherwise DEST is
///   overwritten.
/// - `Mul`: one ELWMUL per fidelity phase, each accumulated onto DEST. ELWMUL always accumulates
///   on hardware (the LLK relies on the packer's release having cleared DEST), so `accumulate` is
///   ignored: pass a cleared DEST ([`DestTile::zero`]) for a plain product. In 16-bit mode every
///   phase result is rounded to bf16 before the next phase is added.
///
/// Datums are independent, so the tile is processed 32 datums at a time as SIMD lanes
/// (`dp::elwadd` / `dp::elwmul` rewritten without branches, DEST rounding by the matmul's
/// lane normalisation); `tests::eltwise_slow` is the datum-by-datum reference it is checked
/// against.
pub fn eltwise(
    dst: &mut DestTile,
    op: EltOp,
    a: &SrcTile,
    b: &SrcTile,
    bcast: Bcast,
    accumulate: bool,
    cfg: &FpuConfig,
) {
    let gathered;
    let bv: &[u32; TILE_DATUMS] = match bcast {
        Bcast::None => &b.v,
        _ => {
            let mut g = super::zeroed_tile();
            for r in 0..32 {
                for c in 0..32 {
                    g[face_index(r, c)] = b.v[match bcast {
                        Bcast::Rows => face_index(0, c),
                        Bcast::Cols => face_index(r, 0),
                        _ => 0,
                    }];
                }
            }
            gathered = g;
            &gathered
        }
    };
    eltwise_lanes(
        &mut dst.v,
        op,
        &a.v,
        bv,
        accumulate,
        cfg.fp32_dest_acc,
        cfg.fidelity.phases(),
    );
    dst.set_all_valid();
}

/// [`eltwise`] on the datum arrays (B already broadcast), compiled per SIMD level.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma+bmi1+bmi2+lzcnt+popcnt",
    "x86_64+avx2+fma+bmi1+bmi2+lzcnt+popcnt",
    "x86_64+sse4.1",
))]
fn eltwise_lanes(
    dst: &mut [u32; TILE_DATUMS],
    op: EltOp,
    a: &[u32; TILE_DATUMS],
    b: &[u32; TILE_DATUMS],
    accumulate: bool,
    fp32: bool,
    phases: u32,
) {
    const LZCNT: bool = multiversion::target::selected_target!().supports_feature_str("avx512cd");
    match (op, fp32, phases) {
        (EltOp::Mul, true, 1) => elt_chunks::<true, LZCNT, 1>(dst, a, b, false, true),
        (EltOp::Mul, true, 2) => elt_chunks::<true, LZCNT, 2>(dst, a, b, false, true),
        (EltOp::Mul, true, 3) => elt_chunks::<true, LZCNT, 3>(dst, a, b, false, true),
        (EltOp::Mul, true, _) => elt_chunks::<true, LZCNT, 4>(dst, a, b, false, true),
        (EltOp::Mul, false, 1) => elt_chunks::<false, LZCNT, 1>(dst, a, b, false, true),
        (EltOp::Mul, false, 2) => elt_chunks::<false, LZCNT, 2>(dst, a, b, false, true),
        (EltOp::Mul, false, 3) => elt_chunks::<false, LZCNT, 3>(dst, a, b, false, true),
        (EltOp::Mul, false, _) => elt_chunks::<false, LZCNT, 4>(dst, a, b, false, true),
        // P = 0: add/sub.
        (_, true, _) => elt_chunks::<true, LZCNT, 0>(dst, a, b, op == EltOp::Sub, accumulate),
        (_, false, _) => elt_chunks::<false, LZCNT, 0>(dst, a, b, op == EltOp::Sub, accumulate),
    }
}

/// ELWADD/ELWSUB (`P == 0`) or `P` phases of ELWMUL over the tile, 32 datums at a time.
#[inline(always)]
fn elt_chunks<const FP32: bool, const LZCNT: bool, const P: usize>(
    dst: &mut [u32; TILE_DATUMS],
    a: &[u32; TILE_DATUMS],
    b: &[u32; TILE_DATUMS],
    sub: bool,
    accumulate: bool,
) {
    let flip = if sub { 1u32 << 18 } else { 0 };
    for ch in 0..TILE_DATUMS / 32 {
        let base = ch * 32;
        let mut bits = [0u32; 32];
        if accumulate {
            bits.copy_from_slice(&dst[base..base + 32]);
        }
        let mut d = DestLanes::decode(&bits);
        if P == 0 {
            for n in 0..32 {
                let (s, e) = elwadd_term(a[base + n], b[base + n] ^ flip);
                (d.neg[n], d.exp[n], d.man[n]) =
                    accum_step::<FP32, LZCNT>(s, e, 0, 0, d.neg[n], d.exp[n], d.man[n]);
            }
        } else {
            for p in 0..P {
                for n in 0..32 {
                    let (s, e) = elwmul_term(a[base + n], b[base + n], p as u32);
                    (d.neg[n], d.exp[n], d.man[n]) =
                        accum_step::<FP32, LZCNT>(s, e, 0, 0, d.neg[n], d.exp[n], d.man[n]);
                }
            }
        }
        d.encode(&mut bits);
        dst[base..base + 32].copy_from_slice(&bits);
    }
}

/// The term `dp::elwadd` accumulates, as (signed magnitude `s`, exponent `e`) with the
/// reference's magnitude `|s| << 13` (the form `accum_step` takes); branch-free.
#[inline(always)]
fn elwadd_term(a: u32, b: u32) -> (i32, i32) {
    let a = if dp::src_is_zero(a) { 0 } else { a };
    let b = if dp::src_is_zero(b) { 0 } else { b };
    let swap = (a & dp::SRC_MAG_MASK) < (b & dp::SRC_MAG_MASK);
    let (hi, lo) = if swap { (b, a) } else { (a, b) };
    let exp_a = ((hi >> 10) & 255) as i32;
    let exp_b = ((lo >> 10) & 255) as i32;
    let man_a = if hi != 0 {
        ((hi & 0x3FF) | 0x400) as i32
    } else {
        0
    };
    let man_b = if lo != 0 {
        ((lo & 0x3FF) | 0x400) as i32
    } else {
        0
    };
    // |hi| >= |lo|: exp_a >= exp_b. Shifting by d >= 12 leaves 0, as does the clamp at 12.
    let d = ((exp_a - exp_b) as u32).min(12);
    let man_b = ((man_b << 1) + (1 << d)) >> (d + 1);
    let same = ((hi ^ lo) >> 18) & 1 == 0;
    let man = if same { man_a + man_b } else { man_a - man_b };
    let s = if (hi >> 18) & 1 != 0 { -man } else { man };
    (s, exp_a)
}

/// The term `dp::elwmul` accumulates in fidelity phase `phase`, as in [`elwadd_term`]: zero
/// (exponent 0) for a zero or denormal operand or a product exponent <= 0.
#[inline(always)]
fn elwmul_term(a: u32, b: u32, phase: u32) -> (i32, i32) {
    let e = dp::exp8(a) + dp::exp8(b) + dp::exp_prod_adj(phase);
    let dead = dp::src_is_zero(a) || dp::src_is_zero(b) || e <= 0;
    let p = (dp::a_slice(dp::man11(a), phase) * dp::b_slice(dp::man11(b), phase)) as i32;
    let s = if ((a ^ b) >> 18) & 1 != 0 { -p } else { p };
    if dead { (0, 0) } else { (s, e) }
}

/// One GAPOOL datum: `dst + sum_i scaler[i] * col[i]` (SrcB = scaler row, SrcA = data column),
/// all fidelity phases in order. The scalar reference for [`pool_sum_lanes`].
#[cfg(test)]
fn pool_sum(col: &[u32; 16], scaler: &[u32; 16], mut d: u32, cfg: &FpuConfig) -> u32 {
    let fp32 = cfg.fp32_dest_acc;
    for p in 0..cfg.fidelity.phases() {
        d = dest_store(dp::mvmul_ref(col, scaler, d, fp32, p), fp32);
    }
    d
}

/// GAPOOL of 16 lanes, all fidelity phases: `row[n] += sum_k scaler[k] * at[k][n]`, each
/// phase one MVMUL (two groups of eight products, rounded into DEST). The 16-lane form of the
/// matmul's row kernel (same product alignment and DEST rounding, see `matmul_row`).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma+bmi1+bmi2+lzcnt+popcnt",
    "x86_64+avx2+fma+bmi1+bmi2+lzcnt+popcnt",
    "x86_64+sse4.1",
))]
fn pool_sum_lanes(
    at: &[[u32; 16]; 16],
    scaler: &[u32; 16],
    row: &mut [u32; 16],
    fp32: bool,
    phases: u32,
) {
    const LZCNT: bool = multiversion::target::selected_target!().supports_feature_str("avx512cd");
    match (fp32, phases) {
        (true, 1) => pool_sum_p::<true, LZCNT, 1>(at, scaler, row),
        (true, 2) => pool_sum_p::<true, LZCNT, 2>(at, scaler, row),
        (true, 3) => pool_sum_p::<true, LZCNT, 3>(at, scaler, row),
        (true, _) => pool_sum_p::<true, LZCNT, 4>(at, scaler, row),
        (false, 1) => pool_sum_p::<false, LZCNT, 1>(at, scaler, row),
        (false, 2) => pool_sum_p::<false, LZCNT, 2>(at, scaler, row),
        (false, 3) => pool_sum_p::<false, LZCNT, 3>(at, scaler, row),
        (false, _) => pool_sum_p::<false, LZCNT, 4>(at, scaler, row),
    }
}

#[inline(always)]
fn pool_sum_p<const FP32: bool, const LZCNT: bool, const P: usize>(
    at: &[[u32; 16]; 16],
    scaler: &[u32; 16],
    row: &mut [u32; 16],
) {
    // Decompose: SrcA (data) lanes, SrcB (scaler) scalars; see `matmul::split16`.
    let mut ae = [[0i16; 16]; 16];
    let mut an = [[0i16; 16]; 16];
    let mut am = [[[0i16; 16]; 16]; 2];
    for k in 0..16 {
        let [hi, lo] = &mut am;
        split16(&at[k], true, &mut ae[k], &mut an[k], &mut hi[k], &mut lo[k]);
    }
    let (mut be, mut bn) = ([0i16; 16], [0i16; 16]);
    let mut bm = [[0i16; 16]; 2];
    {
        let [hi, lo] = &mut bm;
        split16(scaler, false, &mut be, &mut bn, hi, lo);
    }
    let mut s = [[[0i16; 16]; 2]; P];
    let mut emax = [[0i16; 16]; 2];
    for g in 0..2 {
        let mut e = [[0i16; 16]; 8];
        let mut mx = [i16::MIN; 16];
        for kk in 0..8 {
            let k = 8 * g + kk;
            for n in 0..16 {
                e[kk][n] = ae[k][n] + be[k];
                mx[n] = mx[n].max(e[kk][n]);
            }
        }
        let mut acc = [[0i16; 16]; P];
        for kk in 0..8 {
            let k = 8 * g + kk;
            let mut scale = [0i16; 16];
            let mut bias = [0i16; 16];
            for n in 0..16 {
                let d = ((mx[n] - e[kk][n]) as u16).min(13);
                scale[n] = (16384u16 >> d) as i16;
                bias[n] = ((2u16 << d) as i16) + (an[k][n] ^ bn[k]);
            }
            for p in 0..P {
                let bk = bm[p >> 1][k];
                for n in 0..16 {
                    acc[p][n] += mulhi(am[p & 1][k][n] * bk + bias[n], scale[n]);
                }
            }
        }
        for p in 0..P {
            s[p][g] = acc[p];
        }
        emax[g] = mx;
    }
    let mut bits = [0u32; 32];
    bits[..16].copy_from_slice(row);
    let mut d = DestLanes::decode(&bits);
    for p in 0..P {
        let adj = dp::exp_prod_adj(p as u32) as i16;
        for n in 0..16 {
            let (x0, x1) = (emax[0][n] + adj, emax[1][n] + adj);
            let (s0, e0) = if x0 > 0 { (s[p][0][n], x0) } else { (0, 0) };
            let (s1, e1) = if x1 > 0 { (s[p][1][n], x1) } else { (0, 0) };
            (d.neg[n], d.exp[n], d.man[n]) = accum_step::<FP32, LZCNT>(
                s0 as i32, e0 as i32, s1 as i32, e1 as i32, d.neg[n], d.exp[n], d.man[n],
            );
        }
    }
    d.encode(&mut bits);
    row.copy_from_slice(&bits[..16]);
}

/// Sign-magnitude total order of an fp32 pattern (GMPOOL's comparison).
#[inline]
fn total_order(x: u32) -> i32 {
    if x & 0x8000_0000 != 0 {
        (x ^ 0x7FFF_FFFF) as i32
    } else {
        x as i32
    }
}

/// One GMPOOL datum: max of DEST (a cleared row counts as the most negative value; an fp32 value
/// is truncated to TF32 first) and the 16 source values of one column.
fn pool_max(col: &[u32; 16], d: u32, d_valid: bool, fp32: bool) -> u32 {
    let mut m = if !d_valid {
        if fp32 { 0xFFFF_E000 } else { 0xFFFF_0000 }
    } else if fp32 {
        d & 0xFFFF_E000
    } else {
        d
    };
    for &v in col {
        let x = if dp::src_is_zero(v) { 0 } else { v << 13 };
        if total_order(x) > total_order(m) {
            m = x;
        }
    }
    m
}

/// Column `c` (0..16) of face `f` of a source tile, optionally transposed within the face.
fn face_col(t: &SrcTile, f: usize, c: usize, within_face_transpose: bool) -> [u32; 16] {
    let mut o = [0u32; 16];
    for (i, x) in o.iter_mut().enumerate() {
        *x = if within_face_transpose {
            t.v[f * 256 + c * 16 + i]
        } else {
            t.v[f * 256 + i * 16 + c]
        };
    }
    o
}

/// Runs one pool op (all phases) of input face `f` into DEST row `drow` (a DEST row index 0..64).
fn pool_face(
    dst: &mut DestTile,
    op: ReduceOp,
    a: &SrcTile,
    f: usize,
    tr: bool,
    scaler: &[u32; 16],
    drow: usize,
    cfg: &FpuConfig,
) {
    let fp32 = cfg.fp32_dest_acc;
    let valid = dst.valid & (1u64 << drow) != 0;
    if op == ReduceOp::Max {
        for c in 0..16 {
            let col = face_col(a, f, c, tr);
            let i = drow * 16 + c;
            dst.write(
                i,
                dest_store(pool_max(&col, dst.read(i), valid, fp32), fp32),
            );
        }
    } else {
        // GAPOOL: one MVMUL per phase with the 16 face columns as lanes: SrcA[k][n] is element
        // k of column n, SrcB[k] the scaler.
        let mut cols = [[0u32; 16]; 16];
        for (n, col) in cols.iter_mut().enumerate() {
            *col = face_col(a, f, n, tr);
        }
        let mut at = [[0u32; 16]; 16];
        for k in 0..16 {
            for n in 0..16 {
                at[k][n] = cols[n][k];
            }
        }
        let mut row = [0u32; 16];
        row.copy_from_slice(&dst.v[drow * 16..drow * 16 + 16]);
        pool_sum_lanes(&at, scaler, &mut row, fp32, cfg.fidelity.phases());
        dst.v[drow * 16..drow * 16 + 16].copy_from_slice(&row);
        dst.valid |= 1u64 << drow;
    }
    if op == ReduceOp::Max {
        // GMPOOL zeroes the three DEST rows after the result row.
        for r in drow + 1..drow + 4 {
            for c in 0..16 {
                dst.write(r * 16 + c, 0);
            }
        }
    }
}

/// What a DEST value becomes when it is moved through SrcB (MOVD2B) and back: a 16-bit DEST value
/// is unchanged; an fp32 value is truncated to TF32 when `tf32`, else to bf16. Denormals flush.
#[inline]
fn through_src(x: u32, fp32: bool, tf32: bool) -> u32 {
    let y = if !fp32 {
        x
    } else if tf32 {
        x & 0xFFFF_E000
    } else {
        x & 0xFFFF_0000
    };
    if y & 0x7F80_0000 == 0 { 0 } else { y }
}

/// reduce_tile<op, dim>: reduces tile `a` with the scaler tile (row 0 of its face 0, 16 values,
/// multiplies the data; TT-Metal fills it with the scale factor, 1/N for averages, 1.0 for max).
///
/// Result placement and accumulation follow the LLK: `Col` accumulates column sums (faces 0
/// then 2 into DEST face 0 row 0, faces 1 then 3 into DEST face 1 row 0); `Row` pools the
/// within-face-transposed faces 0,1 (2,3) into row 0 of DEST face 0 (2), then moves that row
/// through SrcB into column 0 of the face (it also stays in row 0, where the next reduce_tile
/// accumulates onto it); `Scalar` pools all four faces into DEST row 4, moves the 16 partial
/// sums through SrcB into a SrcA column and pools them once more into `[0][0]`. Rows that the
/// hardware fills with values the packer's reduce mask hides are left as they were (zero in a
/// cleared DEST), except that the transposed faces' other entries are zeroed.
/// For `Max` hardware requires a 1.0 scaler; it is not read here.
pub fn reduce(
    dst: &mut DestTile,
    op: ReduceOp,
    dim: ReduceDim,
    a: &SrcTile,
    scaler: &SrcTile,
    cfg: &FpuConfig,
) {
    let mut s = [0u32; 16];
    s.copy_from_slice(&scaler.v[..16]);
    let fp32 = cfg.fp32_dest_acc;
    match dim {
        ReduceDim::Col => {
            for f in [0, 1, 2, 3] {
                let dface = f & 1;
                pool_face(dst, op, a, f, false, &s, dface * 16, cfg);
            }
        }
        ReduceDim::Row => {
            let tf32 = a.tf32 && scaler.tf32;
            for dface in [0, 2] {
                for f in [dface, dface + 1] {
                    pool_face(dst, op, a, f, true, &s, dface * 16, cfg);
                }
                // Row 0 of the face -> SrcB -> transposed -> DEST column 0 (row 0 rewritten too).
                let base = dface * 256;
                let mut v = [0u32; 16];
                for (c, x) in v.iter_mut().enumerate() {
                    *x = through_src(dst.read(base + c), fp32, tf32);
                }
                for r in 0..16 {
                    for c in 0..16 {
                        let x = if r == 0 {
                            v[c]
                        } else if c == 0 {
                            v[r]
                        } else {
                            0
                        };
                        dst.write(base + r * 16 + c, x);
                    }
                }
            }
        }
        ReduceDim::Scalar => {
            for f in 0..4 {
                pool_face(dst, op, a, f, false, &s, 4, cfg);
            }
            let mut col = [0u32; 16];
            for (c, x) in col.iter_mut().enumerate() {
                *x = through_src(dst.read(4 * 16 + c), fp32, a.tf32) >> 13;
            }
            for c in 0..16 {
                dst.v[4 * 16 + c] = 0;
            }
            dst.valid &= !(1u64 << 4);
            let valid = dst.valid & 1 != 0;
            let out = match op {
                ReduceOp::Sum | ReduceOp::Avg => {
                    // One output datum: lane 0 of a GAPOOL over this column (other lanes zero).
                    let mut at = [[0u32; 16]; 16];
                    for k in 0..16 {
                        at[k][0] = col[k];
                    }
                    let mut row = [0u32; 16];
                    row[0] = dst.read(0);
                    pool_sum_lanes(&at, &s, &mut row, fp32, cfg.fidelity.phases());
                    row[0]
                }
                ReduceOp::Max => dest_store(pool_max(&col, dst.read(0), valid, fp32), fp32),
            };
            dst.write(0, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpu::matmul::tests::{Rng, rand_dest, rand_raw_tile};
    use crate::fpu::{Fidelity, Fp32SrcFormat};

    /// The datum-by-datum model (scalar `core::elwadd` / `core::elwmul`, the form the lane code
    /// was derived from).
    fn eltwise_slow(
        dst: &mut DestTile,
        op: EltOp,
        a: &SrcTile,
        b: &SrcTile,
        bcast: Bcast,
        accumulate: bool,
        cfg: &FpuConfig,
    ) {
        let fp32 = cfg.fp32_dest_acc;
        for r in 0..32 {
            for c in 0..32 {
                let i = face_index(r, c);
                let bi = match bcast {
                    Bcast::None => i,
                    Bcast::Rows => face_index(0, c),
                    Bcast::Cols => face_index(r, 0),
                    Bcast::Scalar => 0,
                };
                let (av, bv) = (a.v[i], b.v[bi]);
                let out = match op {
                    EltOp::Add | EltOp::Sub => {
                        let bv = if op == EltOp::Sub { bv ^ (1 << 18) } else { bv };
                        let d = if accumulate { dst.read(i) } else { 0 };
                        dp::elwadd(av, bv, d, fp32)
                    }
                    EltOp::Mul => {
                        let mut d = dst.read(i);
                        for p in 0..cfg.fidelity.phases() {
                            d = dest_store(dp::elwmul(av, bv, d, fp32, p), fp32);
                        }
                        d
                    }
                };
                dst.write(i, dest_store(out, fp32));
            }
        }
    }

    #[test]
    fn pool_sum_lanes_equal_scalar_gapool() {
        // The 16-lane GAPOOL against the scalar MVMUL reference per lane, on random raw columns
        // and scalers (every exponent kind incl. special values) and random DEST rows.
        let mut rng = Rng::new(31);
        for kind in 0..4 {
            for fid in [
                Fidelity::LoFi,
                Fidelity::HiFi2,
                Fidelity::HiFi3,
                Fidelity::HiFi4,
            ] {
                for fp32 in [false, true] {
                    let cfg = FpuConfig::new(fid, fp32, false);
                    let t = rand_raw_tile(&mut rng, fp32, kind);
                    let sc = rand_raw_tile(&mut rng, fp32, kind);
                    let (center, spread) =
                        [(127, 126), (128, 12), (3, 3), (160, 30)][kind as usize];
                    let d = rand_dest(&mut rng, fp32, center, spread);
                    for rep in 0..16 {
                        let mut at = [[0u32; 16]; 16];
                        let mut scaler = [0u32; 16];
                        for k in 0..16 {
                            scaler[k] = sc.v[rep * 16 + k];
                            for n in 0..16 {
                                at[k][n] = t.v[(rep * 256 + k * 16 + n) % TILE_DATUMS];
                            }
                        }
                        let mut row = [0u32; 16];
                        row.copy_from_slice(&d.v[rep * 16..rep * 16 + 16]);
                        let start = row;
                        pool_sum_lanes(&at, &scaler, &mut row, fp32, fid.phases());
                        for n in 0..16 {
                            let col: [u32; 16] = std::array::from_fn(|k| at[k][n]);
                            let want = pool_sum(&col, &scaler, start[n], &cfg);
                            assert_eq!(
                                row[n], want,
                                "kind {kind} {fid:?} fp32 {fp32} rep {rep} lane {n}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn lanes_equal_datum_by_datum_model_on_raw_tiles() {
        // Random raw datums (kinds: wide with infinities/NaNs, clustered, tiny, huge; zeros,
        // denormals and signed zeros throughout), every op, broadcast, fidelity, DEST width and
        // accumulate flag, onto a random DEST.
        let mut rng = Rng::new(77);
        for kind in 0..4 {
            for fid in [
                Fidelity::LoFi,
                Fidelity::HiFi2,
                Fidelity::HiFi3,
                Fidelity::HiFi4,
            ] {
                for fp32 in [false, true] {
                    let cfg = FpuConfig::new(fid, fp32, false);
                    let a = rand_raw_tile(&mut rng, fp32, kind);
                    let b = rand_raw_tile(&mut rng, fp32, kind);
                    let (center, spread) =
                        [(127, 126), (128, 12), (3, 3), (160, 30)][kind as usize];
                    let start = rand_dest(&mut rng, fp32, center, spread);
                    for op in [EltOp::Add, EltOp::Sub, EltOp::Mul] {
                        for bcast in [Bcast::None, Bcast::Rows, Bcast::Cols, Bcast::Scalar] {
                            for acc in [false, true] {
                                let mut fast = start.clone();
                                let mut slow = start.clone();
                                eltwise(&mut fast, op, &a, &b, bcast, acc, &cfg);
                                eltwise_slow(&mut slow, op, &a, &b, bcast, acc, &cfg);
                                let bad = (0..TILE_DATUMS).find(|&i| fast.v[i] != slow.v[i]);
                                assert!(
                                    bad.is_none(),
                                    "kind {kind} {fid:?} fp32 {fp32} {op:?} {bcast:?} acc {acc}: \
                                     datum {bad:?}: a {:#x} b {:#x} dst {:#x}: fast {:#x} slow {:#x}",
                                    a.v[bad.unwrap_or(0)],
                                    b.v[bad.unwrap_or(0)],
                                    start.v[bad.unwrap_or(0)],
                                    fast.v[bad.unwrap_or(0)],
                                    slow.v[bad.unwrap_or(0)]
                                );
                                assert_eq!(fast.valid, u64::MAX);
                            }
                        }
                    }
                }
            }
        }
    }

    fn tile(f: impl Fn(usize, usize) -> f32, fmt: Fp32SrcFormat) -> SrcTile {
        let mut v = [0f32; TILE_DATUMS];
        for r in 0..32 {
            for c in 0..32 {
                v[face_index(r, c)] = f(r, c);
            }
        }
        SrcTile::from_f32(&v, fmt).unwrap()
    }

    #[test]
    fn add_sub_bcast_on_small_integers_are_exact() {
        let cfg = FpuConfig::new(Fidelity::LoFi, false, false);
        let a = tile(|r, c| (r * 3 + c) as f32 - 40.0, Fp32SrcFormat::Bf16);
        let b = tile(|r, c| (r as f32) - (c as f32) * 0.5, Fp32SrcFormat::Bf16);
        for (bc, bf) in [
            (
                Bcast::None,
                (|r, c| (r, c)) as fn(usize, usize) -> (usize, usize),
            ),
            (Bcast::Rows, |_, c| (0, c)),
            (Bcast::Cols, |r, _| (r, 0)),
            (Bcast::Scalar, |_, _| (0, 0)),
        ] {
            let mut d = DestTile::zero();
            eltwise(&mut d, EltOp::Sub, &a, &b, bc, false, &cfg);
            for r in 0..32 {
                for c in 0..32 {
                    let (br, bcol) = bf(r, c);
                    let want = ((r * 3 + c) as f32 - 40.0) - ((br as f32) - (bcol as f32) * 0.5);
                    assert_eq!(d.get(r, c), want, "{bc:?} ({r},{c})");
                }
            }
        }
    }

    #[test]
    fn add_accumulate_adds_dest() {
        let cfg = FpuConfig::new(Fidelity::LoFi, true, false);
        let a = tile(|r, _| r as f32, Fp32SrcFormat::Tf32);
        let b = tile(|_, c| c as f32, Fp32SrcFormat::Tf32);
        let mut d = DestTile::zero();
        eltwise(&mut d, EltOp::Add, &a, &b, Bcast::None, false, &cfg);
        eltwise(&mut d, EltOp::Add, &a, &b, Bcast::None, true, &cfg);
        assert_eq!(d.get(5, 7), 24.0);
    }

    #[test]
    fn mul_fidelity_differences_on_crafted_values() {
        // a = 1 + 2^-4 + 2^-7 (0x3F89): A slices: p0 bits 10..6 = 10001, p1 bits 5..1 = 00100.
        // b = 1 + 2^-7 (0x3F81): B slices: p0 = 1000000, p2 = 1000 << 3.
        let a = SrcTile::from_bf16_bits(&[0x3F89; TILE_DATUMS]);
        let b = SrcTile::from_bf16_bits(&[0x3F81; TILE_DATUMS]);
        let exact = (1.0 + 1.0 / 16.0 + 1.0 / 128.0) * (1.0 + 1.0 / 128.0);
        let run = |fid| {
            let cfg = FpuConfig::new(fid, true, false);
            let mut d = DestTile::zero();
            eltwise(&mut d, EltOp::Mul, &a, &b, Bcast::None, false, &cfg);
            d.get(3, 3) as f64
        };
        // LoFi: (1 + 1/16) * 1 (B's top 7 bits are 1.000000).
        assert_eq!(run(Fidelity::LoFi), 1.0 + 1.0 / 16.0);
        // HiFi2 adds A's low slice x B's top: 1/128.
        assert_eq!(run(Fidelity::HiFi2), 1.0 + 1.0 / 16.0 + 1.0 / 128.0);
        // HiFi3 adds A's top x B's low slice: (1 + 1/16) / 128.
        assert_eq!(
            run(Fidelity::HiFi3),
            1.0 + 1.0 / 16.0 + 1.0 / 128.0 + (1.0 + 1.0 / 16.0) / 128.0
        );
        assert_eq!(run(Fidelity::HiFi4), exact);
    }

    #[test]
    fn datacopy_and_transpose_are_exact() {
        let cfg = FpuConfig::new(Fidelity::LoFi, false, false);
        let a = tile(|r, c| (r as f32) * 100.0 + c as f32, Fp32SrcFormat::Bf16);
        let mut d = DestTile::zero();
        transpose(&mut d, &a, &cfg);
        assert_eq!(
            d.get(3, 17),
            f32::from_bits(1703.0_f32.to_bits() & 0xFFFF_0000)
        );
        let mut d2 = DestTile::zero();
        datacopy(&mut d2, &a, &cfg);
        transpose_dest(&mut d2);
        assert_eq!(d, d2);
    }

    fn scaler(v: f32) -> SrcTile {
        tile(
            move |r, c| if r == 0 && c < 16 { v } else { 0.0 },
            Fp32SrcFormat::Bf16,
        )
    }

    #[test]
    fn reduce_sum_row_col_scalar_small_integers() {
        let cfg = FpuConfig::new(Fidelity::HiFi4, true, false);
        let a = tile(
            |r, c| ((r * 7 + c * 3) % 11) as f32 - 5.0,
            Fp32SrcFormat::Bf16,
        );
        let s = scaler(1.0);
        let f = |r: usize, c: usize| ((r * 7 + c * 3) % 11) as f64 - 5.0;
        let mut d = DestTile::zero();
        reduce(&mut d, ReduceOp::Sum, ReduceDim::Row, &a, &s, &cfg);
        for r in 0..32 {
            let want: f64 = (0..32).map(|c| f(r, c)).sum();
            assert_eq!(d.get(r, 0) as f64, want, "row {r}");
        }
        let mut d = DestTile::zero();
        reduce(&mut d, ReduceOp::Sum, ReduceDim::Col, &a, &s, &cfg);
        for c in 0..32 {
            let want: f64 = (0..32).map(|r| f(r, c)).sum();
            assert_eq!(d.get(0, c) as f64, want, "col {c}");
        }
        let mut d = DestTile::zero();
        reduce(&mut d, ReduceOp::Sum, ReduceDim::Scalar, &a, &s, &cfg);
        let want: f64 = (0..32).flat_map(|r| (0..32).map(move |c| f(r, c))).sum();
        assert_eq!(d.get(0, 0) as f64, want);
    }

    #[test]
    fn reduce_row_accumulates_across_tiles() {
        // fp32 DEST: with a 16-bit DEST each fidelity phase is rounded to bf16 on its own, which
        // legitimately moves these sums (e.g. 312 -> 314) away from the exact value.
        let cfg = FpuConfig::new(Fidelity::HiFi4, true, false);
        let a = tile(|r, c| (r + c) as f32, Fp32SrcFormat::Bf16);
        let s = scaler(0.5);
        let mut d = DestTile::zero();
        reduce(&mut d, ReduceOp::Sum, ReduceDim::Row, &a, &s, &cfg);
        reduce(&mut d, ReduceOp::Sum, ReduceDim::Row, &a, &s, &cfg);
        for r in 0..32 {
            // Two tiles x 0.5 = the plain row sum; it passes through bf16 between the tiles
            // (REDUCE_ROW's SrcB transpose), which is exact for these integers.
            let want: f64 = (0..32).map(|c| (r + c) as f64).sum::<f64>();
            assert_eq!(d.get(r, 0) as f64, want, "row {r}");
        }
    }

    #[test]
    fn reduce_max() {
        let cfg = FpuConfig::new(Fidelity::LoFi, false, false);
        let a = tile(
            |r, c| -(((r * 13 + c * 7) % 29) as f32) - 1.0,
            Fp32SrcFormat::Bf16,
        );
        let f = |r: usize, c: usize| -(((r * 13 + c * 7) % 29) as f32) - 1.0;
        let s = scaler(1.0);
        for dim in [ReduceDim::Row, ReduceDim::Col, ReduceDim::Scalar] {
            let mut d = DestTile::zero();
            reduce(&mut d, ReduceOp::Max, dim, &a, &s, &cfg);
            match dim {
                ReduceDim::Row => {
                    for r in 0..32 {
                        let want = (0..32).map(|c| f(r, c)).fold(f32::MIN, f32::max);
                        assert_eq!(d.get(r, 0), want);
                    }
                }
                ReduceDim::Col => {
                    for c in 0..32 {
                        let want = (0..32).map(|r| f(r, c)).fold(f32::MIN, f32::max);
                        assert_eq!(d.get(0, c), want);
                    }
                }
                ReduceDim::Scalar => {
                    let want = (0..1024)
                        .map(|i| f(i / 32, i % 32))
                        .fold(f32::MIN, f32::max);
                    assert_eq!(d.get(0, 0), want);
                }
            }
        }
    }
}
