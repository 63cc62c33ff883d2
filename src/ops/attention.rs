//! Multi-head self-attention on device: plain scaled-dot-product attention (optional causal
//! mask) and VITS attention with relative positions (MODEL.md section 2 step 1), both with an
//! optional key-padding mask, numerically stable softmax on device.
//!
//! Inputs are the projected `q`, `k`, `v`, each time-major `[T, C]` with head `h` in columns
//! `[h d, (h + 1) d)` (`C = heads * d`); the 1x1 projections before and after are matmuls. Per
//! head and query `i` (scale `1/sqrt(d)` applied to q **once**, so it also scales the relative
//! term, as VITS does):
//!
//! ```text
//! s[i, j] = (q_i / sqrt(d)) . k_j + (|j - i| <= w ? (q_i / sqrt(d)) . rel_k[j - i + w] : 0)
//! p[i, :] = softmax_j over allowed j (j < valid_len; j <= i when causal)
//! out_i   = sum_j p_ij v_j + sum_{|j - i| <= w} p_ij rel_v[j - i + w]
//! ```
//!
//! `rel_k`, `rel_v` are `[2w + 1, d]` (the `[1, 2w+1, d]` embeddings, shared by heads). Rows
//! `i >= valid_len` attend to the valid keys like any other row (VITS also masks the query rows,
//! giving them a uniform average; the model multiplies those rows by the mask afterwards, so the
//! difference never reaches its output).
//!
//! Kernels (`kernels/ops/attention/`): work items (head, query tile row) are split over the
//! cores; per item the compute scales q on the SFPU, transposes K tiles, forms the scores with a
//! bias tile (banded relative term + masks) built by the reader, takes the row max (reduce),
//! `exp(s - max)`, the row sum and its reciprocal, multiplies by V (plus the banded P times
//! rel_v, the band gathered by the writer) and normalises at the end. The element shuffles of
//! the band are data movement; every arithmetic operation runs on the FPU/SFPU.
//!
//! Reciprocal: the hardware `recip_tile` (legacy_compat, as called) is only ~9.4 bits accurate,
//! so the kernels refine it with Newton-Raphson steps in fp32 on the SFPU (exact mul / sub):
//! two in the split kernel (fp32-grade), one in the plain kernel with an fp32 DEST (its FPU
//! broadcast multiply reads the reciprocal as TF32 anyway), none with a 16-bit DEST (every SFPU
//! result is stored as bf16). Under tt-sim's `ideal` SFPU model they change nothing but roundings;
//! `TT_SIM_SFPU=llk` runs the hardware algorithm they correct.
//!
//! Float32: `q`, `k`, `v` and/or the output (`precision.activations`) may be Float32 with
//! `fp32_acc`. Then Float32 q and k are copied / transposed straight to DEST
//! (`UnpackToDestFp32`), the scaled Q, K^T and the relative embeddings are kept as Float32, and
//! the output is packed from the fp32 DEST unrounded; every FPU matmul / reduce still reads its
//! operands as TF32 (2^-10), so the result is TF32-accurate, not fp32-exact.
//!
//! Split operands ([`Precision::activations_lo`]; Float32 q, k, v, `fp32_acc`, HiFi4, else
//! [`OpError::InvalidArgument`]): a second compute kernel (`attention_split_compute.cpp`) makes
//! every step fp32-grade. Each matmul operand x (scaled q, K^T, v, the softmax weights P, the
//! band of P) is split on the device into `hi` = x with its low 14 mantissa bits cleared (x times
//! 1.0 by the FPU with x in SrcA: TF32 less the SrcA bit the multiplier never reads) and
//! `lo = x - hi` (SFPU, exact); rel_k / rel_v are split on the host. A B is formed as
//! `Ah Bh + Al Bh + Ah Bl`, and `Ah Bh` as `sum_r (Ah M_r) Bh` over eight column masks
//! (`k = r mod 8`) so that every MVMUL group of eight products holds one non-zero product and
//! is never aligned (the FPU's alignment costs 2^-12 of the group's largest product otherwise).
//! The score bias, `S - max`, exp and the normalisation run on the SFPU in fp32 on operands
//! unpacked straight to DEST; the row sum is a split matmul with an all-ones tile. Measured on
//! random f32 data (tests/op_attention.rs): about 2^-19 of the output scale against f64, vs
//! 2^-7 without the split; the simulator's device-time estimate grows 2.6x (T = 150, 2 heads of
//! 96).
//!
//! Split L1 plan (`split_cbs`, [`AttentionPlan::l1_bytes`]): only a row of scores and the lo
//! halves of P stay resident, 3 Float32 tiles per key tile (S for the FPU row max, S exact, P_lo
//! for the second half of the row sum). K and V are streamed from DRAM one tile at a time (the
//! reader sends each key tile's K tiles followed by its bias tile, then the V tiles after the
//! last bias) and split one key tile at a time; P = exp(S - max) is recomputed per key tile from
//! the resident S and split (8 masked hi copies, hi, lo) right before its products with V. The
//! running sums (P V per head tile and the masked part of the row sum) leave DEST between key
//! tiles as Float32 and come back through `UnpackToDestFp32` unrounded, so every accumulation
//! sees the same values in the same order as before this plan existed (the outputs are
//! bit-identical to the former resident-K^T/V/P kernel, checked on T = 40..150). About 47
//! Float32 tiles plus 18 per head tile are fixed: with 2 heads of 96 (the Piper encoder) T is
//! at most 2560 on Wormhole B0 (1,362 KiB of CBs; Blackhole has more L1), against 448
//! before.
//!
//! [`Precision::weights_lo`] is ignored (there are no prepared weights, as `precision.weights`
//! is unused).
//!
//! Limits ([`OpError::ShapeUnsupported`] names each): `d` a multiple of 32 (heads on tile
//! boundaries), `w <= 15` (2w + 1 offsets in one tile), the L1 plan of one core
//! ([`AttentionPlan::l1_bytes`]; the error names the longest T that fits: split, a row of scores
//! and P_lo; otherwise K^T and V of a head and a row of scores resident, which for Float32
//! q, k, v with 2 heads of 96 allows T <= 1248 on Wormhole B0), at most
//! [`MAX_ITEMS_PER_CORE`] items per core (runtime args).

use super::common::{DeviceTensor, OpError, Precision, TILE, tiles};
use crate::kernels;
use tt_safe::{
    CbConfig, ComputeConfig, CoreCoord, CoreRange, DataFormat, Device, KernelKind, KernelSpec,
    MathFidelity, Program, RunStats,
};

const OP: &str = "attention";
/// Most work items (head, query tile row) one core takes (2 runtime args each).
pub const MAX_ITEMS_PER_CORE: usize = 150;
/// Largest relative window (2w + 1 offsets fit one tile).
pub const MAX_WINDOW: usize = 15;

/// Which attention.
#[derive(Debug, Clone, Copy)]
pub enum AttentionKind<'a> {
    /// Scaled dot-product attention; `causal` masks keys after the query.
    Plain {
        /// Mask j > i.
        causal: bool,
    },
    /// VITS relative-position attention with window `window`.
    VitsRelative {
        /// `[2w + 1, d]` row-major relative key embeddings.
        rel_k: &'a [f32],
        /// `[2w + 1, d]` row-major relative value embeddings.
        rel_v: &'a [f32],
        /// w.
        window: usize,
    },
}

/// The per-core plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttentionPlan {
    /// Head tiles (d / 32).
    pub dt: usize,
    /// Key (and query) tiles.
    pub tk: usize,
    /// `(core, items)`; an item is `(head, query tile row)`.
    pub parts: Vec<(CoreCoord, Vec<(u32, u32)>)>,
    /// L1 bytes of circular buffers per core.
    pub l1_bytes: u64,
}

/// CB formats that depend on Float32: the relative embeddings, the scaled Q and K^T, the output.
struct Formats {
    fp32: bool,
    rel: DataFormat,
    qk: DataFormat,
    out: DataFormat,
}

fn formats(input: DataFormat, precision: &Precision) -> Formats {
    let fp32 = precision.fp32_acc
        && (input == DataFormat::Float32 || precision.activations == DataFormat::Float32);
    let f = if fp32 {
        DataFormat::Float32
    } else {
        DataFormat::Float16_b
    };
    Formats {
        fp32,
        rel: f,
        qk: f,
        out: if precision.activations == DataFormat::Float32 {
            DataFormat::Float32
        } else {
            DataFormat::Float16_b
        },
    }
}

fn unsupported(what: String, limit: String) -> OpError {
    OpError::ShapeUnsupported {
        op: OP,
        what,
        limit,
    }
}

/// L1 bytes of circular buffers per core for `dt` head tiles and `tk` key tiles.
fn cb_bytes(dt64: u64, tk64: u64, in_format: DataFormat, precision: &Precision) -> u64 {
    let inb = in_format.tile_size_bytes() as u64;
    let bf = DataFormat::Float16_b.tile_size_bytes() as u64;
    let im = precision.intermediate_format().tile_size_bytes() as u64;
    let f = formats(in_format, precision);
    let (rel, qk, out) = (
        f.rel.tile_size_bytes() as u64,
        f.qk.tile_size_bytes() as u64,
        f.out.tile_size_bytes() as u64,
    );
    if precision.activations_lo {
        // Float32 tiles only (the split path needs Float32 q, k, v and an fp32 DEST): the CBs
        // of `split_cbs`. Per key tile only S, Sx and P_lo stay resident.
        let f = DataFormat::Float32.tile_size_bytes() as u64;
        (dt64 + 2 + 2) * inb                            // Q, K and V streams
            + bf + 2 * out                              // scaler, out
            + (2 + 2 * 2 * dt64 + 1 + 9 + 2             // bias, RelK^T / RelV hi + lo, pu, masks, staging
                + 10 * dt64 + 2 * dt64                  // Qs split, K^T / V split of one key tile
                + 8 + 1 + tk64 + tk64                   // P split of one key tile, P_lo row, Sx
                + 10 + dt64 + 1                         // Pband split, running O~, running Rm
                + 1 + tk64 + 1 + 1 + 3)                 // r, S, max, rsum, pb
                * f
    } else {
        (dt64 + 2 + tk64 * dt64) * inb                  // Q, K stream, V
        + 2 * dt64 * rel + bf                           // RelK^T, RelV, scaler
        + (dt64 + tk64 * dt64) * qk + 2 * out           // Qs, K^T, out
        + (2 + 1 + 1 + 1 + 2 * tk64 + 1 + 1 + 3) * im // bias, pu, o1, r, S, P, max, rsum, pb
    }
}

/// Plans `heads` heads of size `d` over `t` steps.
pub fn plan(
    device: &Device,
    t: usize,
    heads: usize,
    d: usize,
    in_format: DataFormat,
    precision: &Precision,
) -> Result<AttentionPlan, OpError> {
    if d == 0 || !d.is_multiple_of(TILE) {
        return Err(unsupported(
            format!("head size {d}"),
            "a multiple of 32 (heads start on tile boundaries)".into(),
        ));
    }
    let dt = d / TILE;
    let tk = tiles(t);
    let l1_bytes = cb_bytes(dt as u64, tk as u64, in_format, precision);
    let have = device.info().l1_user_bytes();
    if l1_bytes > have {
        // The cost grows with the key tiles: the longest T that fits.
        let max_tk = (0..tk as u64)
            .take_while(|&n| cb_bytes(dt as u64, n, in_format, precision) <= have)
            .last()
            .unwrap_or(0);
        let resident = if precision.activations_lo {
            "split operands: a row of scores and P_lo resident, 3 Float32 tiles per key tile"
        } else {
            "K^T and V of a head and a score row resident"
        };
        return Err(unsupported(
            format!("T = {t} with head size {d}: {l1_bytes} bytes of L1 per core"),
            format!(
                "{have} bytes of L1 per core ({resident}: T <= {} with head size {d})",
                32 * max_tk
            ),
        ));
    }
    let items: Vec<(u32, u32)> = (0..heads)
        .flat_map(|h| (0..tk).map(move |q| (h as u32, q as u32)))
        .collect();
    let grid = device.grid();
    let ncores = items.len().min(grid.num_cores()).max(1);
    let per = items.len().div_ceil(ncores);
    if per > MAX_ITEMS_PER_CORE {
        return Err(unsupported(
            format!("{} work items on {ncores} cores", items.len()),
            format!("{MAX_ITEMS_PER_CORE} items (head, query tile row) per core"),
        ));
    }
    let parts = items
        .chunks(per)
        .enumerate()
        .map(|(i, c)| {
            (
                CoreCoord::new(i as u32 % grid.size.x, i as u32 / grid.size.x),
                c.to_vec(),
            )
        })
        .collect();
    Ok(AttentionPlan {
        dt,
        tk,
        parts,
        l1_bytes,
    })
}

/// Runs attention over `[q, k, v]` (`[T, heads * d]`, bf16, bfp8_b or, with `fp32_acc`, Float32
/// tiles). `valid_len` masks keys `j >= valid_len` (None: all T). `precision.fidelity`,
/// `fp32_acc` and `activations_lo` (module doc) apply (there are no weights here, so
/// `precision.weights` and `weights_lo` are unused). Returns `[T, heads * d]` bf16, or Float32
/// when `precision.activations` is Float32.
pub fn attention(
    device: &Device,
    qkv: [&DeviceTensor; 3],
    heads: usize,
    kind: AttentionKind<'_>,
    valid_len: Option<usize>,
    precision: &Precision,
) -> Result<DeviceTensor, OpError> {
    Ok(attention_with_stats(device, qkv, heads, kind, valid_len, precision)?.0)
}

/// [`attention`] plus the run statistics (estimates on the simulator).
pub fn attention_with_stats(
    device: &Device,
    [q, k, v]: [&DeviceTensor; 3],
    heads: usize,
    kind: AttentionKind<'_>,
    valid_len: Option<usize>,
    precision: &Precision,
) -> Result<(DeviceTensor, RunStats), OpError> {
    let (t, c) = (q.rows(), q.cols());
    for (name, x) in [("k", k), ("v", v)] {
        if x.rows() != t || x.cols() != c || x.format() != q.format() {
            return Err(OpError::ShapeMismatch {
                op: OP,
                what: format!(
                    "{name} is [{}, {}] {:?}, q is [{t}, {c}] {:?}",
                    x.rows(),
                    x.cols(),
                    x.format(),
                    q.format()
                ),
            });
        }
    }
    // `weights_lo` is ignored: there are no prepared weights here (like `precision.weights`);
    // the relative embeddings are split on the host whenever `activations_lo` is set.
    let split = precision.activations_lo;
    if split {
        if q.format() != DataFormat::Float32 || !precision.fp32_acc {
            return Err(OpError::InvalidArgument {
                op: OP,
                what: format!(
                    "activations_lo (TF32 hi + lo split) needs Float32 q, k, v and fp32_acc = true, \
                     got {:?} inputs and fp32_acc = {}; convert the inputs to Float32 or clear \
                     activations_lo",
                    q.format(),
                    precision.fp32_acc
                ),
            });
        }
        if precision.fidelity != MathFidelity::HiFi4 {
            return Err(OpError::InvalidArgument {
                op: OP,
                what: format!(
                    "activations_lo needs HiFi4 (every product of the split operands exact), not \
                     {:?}",
                    precision.fidelity
                ),
            });
        }
    }
    super::common::check_activation_format_fp32(OP, "input", q.format(), precision.fp32_acc)?;
    super::common::check_activation_format_fp32(
        OP,
        "output (precision.activations)",
        precision.activations,
        precision.fp32_acc,
    )?;
    if heads == 0 || c % heads != 0 {
        return Err(OpError::ShapeMismatch {
            op: OP,
            what: format!("{c} channels do not split into {heads} heads"),
        });
    }
    let d = c / heads;
    let valid = valid_len.unwrap_or(t);
    if valid == 0 || valid > t {
        return Err(OpError::InvalidArgument {
            op: OP,
            what: format!("valid_len {valid} must be in 1..={t}"),
        });
    }
    let p = plan(device, t, heads, d, q.format(), precision)?;
    let bf = DataFormat::Float16_b;
    let fm = formats(q.format(), precision);
    let (has_rel, w, causal, relkt, relv) = match kind {
        AttentionKind::Plain { causal } => (false, 0, causal, None, None),
        AttentionKind::VitsRelative {
            rel_k,
            rel_v,
            window,
        } => {
            if window > MAX_WINDOW {
                return Err(unsupported(
                    format!("relative window {window}"),
                    format!("0..={MAX_WINDOW} (2w + 1 offsets in one tile)"),
                ));
            }
            let n = 2 * window + 1;
            if rel_k.len() != n * d || rel_v.len() != n * d {
                return Err(OpError::ShapeMismatch {
                    op: OP,
                    what: format!(
                        "rel_k / rel_v have {} / {} values, [{n}, {d}] needs {}",
                        rel_k.len(),
                        rel_v.len(),
                        n * d
                    ),
                });
            }
            // RelK^T [d, 32] (column m = offset) and RelV [32, d] (row m), zero padded. Split:
            // RelK^T [d, 64] (columns 32 + m: the lo halves) and RelV [64, d] (rows 32 + m).
            let halves = if split { 2 } else { 1 };
            let (kw, vh) = (halves * TILE, halves * TILE);
            let mut kt = vec![0f32; d * kw];
            let mut vv = vec![0f32; vh * d];
            for m in 0..n {
                for e in 0..d {
                    let (k, v) = (rel_k[m * d + e], rel_v[m * d + e]);
                    if split {
                        let (kh, vhi) = (split_hi(k), split_hi(v));
                        kt[e * kw + m] = kh;
                        kt[e * kw + TILE + m] = k - kh;
                        vv[m * d + e] = vhi;
                        vv[(TILE + m) * d + e] = v - vhi;
                    } else {
                        kt[e * kw + m] = k;
                        vv[m * d + e] = v;
                    }
                }
            }
            (
                true,
                window,
                false,
                Some(DeviceTensor::from_host(device, d, kw, &kt, fm.rel)?),
                Some(DeviceTensor::from_host(device, vh, d, &vv, fm.rel)?),
            )
        }
    };
    let out = DeviceTensor::alloc(device, t, c, fm.out)?;
    // Without relative terms the RelK/RelV accessors point at q (never read).
    let relkt_buf = relkt.as_ref().map_or(q.buffer(), |x| x.buffer());
    let relv_buf = relv.as_ref().map_or(q.buffer(), |x| x.buffer());
    let im = precision.intermediate_format();
    let elem_bytes: u32 = if im == DataFormat::Float32 { 4 } else { 2 };
    let (dt, tk) = (p.dt as u32, p.tk as u32);
    let ct = tiles(c) as u32;

    let mut program = Program::new(device)?;
    let ranges: Vec<CoreRange> = p.parts.iter().map(|(c, _)| CoreRange::single(*c)).collect();
    let inf = q.format();
    for r in &ranges {
        let core = r.start;
        if split {
            for (idx, fmt, n) in split_cbs(inf, fm.out, dt, tk) {
                program.add_circular_buffer(core, CbConfig::tiles(idx, fmt, n))?;
            }
            continue;
        }
        for (idx, fmt, n) in [
            (0, inf, dt),
            (1, inf, 2),
            (2, inf, tk * dt),
            (3, im, 2),
            (4, fm.rel, dt),
            (5, fm.rel, dt),
            (6, bf, 1),
            (7, im, 1),
            (16, fm.out, 2),
            (17, im, 1),
            (24, fm.qk, dt),
            (25, fm.qk, tk * dt),
            (26, im, 1),
            (27, im, tk),
            (28, im, 1),
            (29, im, tk),
            (30, im, 1),
            (31, im, 3),
        ] {
            program.add_circular_buffer(core, CbConfig::tiles(idx, fmt, n))?;
        }
    }
    let mut reader_ct = q.buffer().accessor_args()?;
    for b in [k.buffer(), v.buffer(), relkt_buf, relv_buf] {
        reader_ct.extend(b.accessor_args()?);
    }
    reader_ct.extend([
        ct,
        dt,
        tk,
        t as u32,
        u32::from(has_rel),
        w as u32,
        u32::from(causal),
        elem_bytes,
        u32::from(split),
    ]);
    let reader = program.add_kernel(
        KernelSpec::new(
            "attention_reader",
            kernels::OPS_ATTENTION_ATTENTION_READER,
            KernelKind::riscv0(),
            ranges.clone(),
        )
        .compile_args(reader_ct),
    )?;
    let scale = (1.0 / (d as f64).sqrt()) as f32;
    let (name, source, unpack_to_dest_fp32) = if split {
        // The CBs the split kernel only copies / transposes into DEST (exact fp32).
        (
            "attention_split_compute",
            kernels::OPS_ATTENTION_ATTENTION_SPLIT_COMPUTE,
            vec![0, 1, 2, 3, 7, 9, 21, 25, 29, 30],
        )
    } else {
        (
            "attention_compute",
            kernels::OPS_ATTENTION_ATTENTION_COMPUTE,
            // Float32 q and k are only copied / transposed into DEST.
            if fm.fp32 && inf == DataFormat::Float32 {
                vec![0, 1]
            } else {
                Vec::new()
            },
        )
    };
    let compute = program.add_kernel(
        KernelSpec::new(
            name,
            source,
            KernelKind::compute(ComputeConfig {
                fidelity: precision.fidelity,
                fp32_dest_acc: precision.fp32_acc,
                unpack_to_dest_fp32,
                ..ComputeConfig::default()
            }),
            ranges.clone(),
        )
        .compile_args(vec![
            dt,
            tk,
            u32::from(has_rel),
            scale.to_bits(),
            // Newton-Raphson steps after recip_tile in the plain kernel (the split kernel always
            // takes two): one with an fp32 DEST, none with a 16-bit one (kernel header).
            u32::from(precision.fp32_acc),
        ]),
    )?;
    let mut writer_ct = out.buffer().accessor_args()?;
    writer_ct.extend([ct, dt, tk, u32::from(has_rel), w as u32, elem_bytes]);
    let writer = program.add_kernel(
        KernelSpec::new(
            "attention_writer",
            kernels::OPS_ATTENTION_ATTENTION_WRITER,
            KernelKind::riscv1(),
            ranges,
        )
        .compile_args(writer_ct),
    )?;
    for (core, items) in &p.parts {
        let pairs: Vec<u32> = items.iter().flat_map(|&(h, qi)| [h, qi]).collect();
        let mut ra = vec![
            q.buffer().address_u32()?,
            k.buffer().address_u32()?,
            v.buffer().address_u32()?,
            relkt_buf.address_u32()?,
            relv_buf.address_u32()?,
            valid as u32,
            items.len() as u32,
        ];
        ra.extend(&pairs);
        program.set_runtime_args(reader, *core, &ra)?;
        let mut ca = vec![items.len() as u32];
        ca.extend(items.iter().map(|&(_, qi)| qi));
        program.set_runtime_args(compute, *core, &ca)?;
        let mut wa = vec![out.buffer().address_u32()?, items.len() as u32];
        wa.extend(&pairs);
        program.set_runtime_args(writer, *core, &wa)?;
    }
    let stats = device.run(&program)?;
    Ok((out, stats))
}

/// The CBs of the split kernel (`attention_split_compute.cpp`): `(index, format, tiles)`; what
/// [`plan`] counts.
fn split_cbs(inf: DataFormat, out: DataFormat, dt: u32, tk: u32) -> [(u32, DataFormat, u32); 31] {
    let f = DataFormat::Float32;
    [
        (0, inf, dt),   // Q
        (1, inf, 2),    // K stream
        (2, inf, 2),    // V stream
        (3, f, 2),      // score bias
        (4, f, 2 * dt), // RelK^T hi, lo
        (5, f, 2 * dt), // RelV hi, lo
        (6, DataFormat::Float16_b, 1),
        (7, f, 1),       // Pband from the writer
        (8, f, 9),       // ones, column masks
        (9, f, 1),       // staging (exact)
        (10, f, 1),      // staging (FPU)
        (11, f, 8 * dt), // Qs hi masked
        (12, f, dt),     // Qs hi
        (13, f, dt),     // Qs lo
        (14, f, dt),     // K^T[kj] / V[kj] hi
        (15, f, dt),     // K^T[kj] / V[kj] lo
        (16, out, 2),    // output
        (18, f, 8),      // P[kj] hi masked
        (19, f, 1),      // P[kj] hi
        (20, f, tk),     // P lo (the row)
        (21, f, tk),     // Sx (exact)
        (22, f, 8),      // Pband hi masked
        (23, f, 1),      // Pband hi
        (24, f, 1),      // Pband lo
        (25, f, dt),     // running O~ (exact)
        (26, f, 1),      // R
        (27, f, tk),     // S (FPU)
        (28, f, 1),      // row max
        (29, f, 1),      // running Rm (exact)
        (30, f, 1),      // 1 / row sum (exact)
        (31, f, 3),      // P tiles for the band
    ]
}

/// The part of `x` the FPU multiplies when `x` sits in SrcA: TF32 (10 explicit mantissa bits)
/// less SrcA's unused lowest bit, i.e. `x` with the low 14 mantissa bits cleared; `x - hi` is
/// exact in f32.
fn split_hi(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & !0x3FFF)
}

/// f64 CPU reference: `q`, `k`, `v` row-major `[t, heads * d]`; returns `[t, heads * d]`.
#[allow(clippy::too_many_arguments)]
pub fn reference(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    t: usize,
    heads: usize,
    kind: AttentionKind<'_>,
    valid_len: Option<usize>,
) -> Vec<f64> {
    let c = q.len() / t;
    let d = c / heads;
    let valid = valid_len.unwrap_or(t);
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![0f64; t * c];
    for h in 0..heads {
        let col = |x: &[f32], i: usize, e: usize| f64::from(x[i * c + h * d + e]);
        for i in 0..t {
            let qs: Vec<f64> = (0..d).map(|e| col(q, i, e) * scale).collect();
            let mut s = vec![f64::NEG_INFINITY; t];
            for (j, sj) in s.iter_mut().enumerate() {
                let allowed = j < valid
                    && match kind {
                        AttentionKind::Plain { causal } => !causal || j <= i,
                        AttentionKind::VitsRelative { .. } => true,
                    };
                if !allowed {
                    continue;
                }
                let mut acc: f64 = (0..d).map(|e| qs[e] * col(k, j, e)).sum();
                if let AttentionKind::VitsRelative { rel_k, window, .. } = kind
                    && j + window >= i
                    && j <= i + window
                {
                    let m = j + window - i;
                    acc += (0..d)
                        .map(|e| qs[e] * f64::from(rel_k[m * d + e]))
                        .sum::<f64>();
                }
                *sj = acc;
            }
            let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - mx).exp()).collect();
            let sum: f64 = e.iter().sum();
            for (j, ej) in e.iter().enumerate() {
                let p = ej / sum;
                if p == 0.0 {
                    continue;
                }
                for x in 0..d {
                    out[i * c + h * d + x] += p * col(v, j, x);
                }
                if let AttentionKind::VitsRelative { rel_v, window, .. } = kind
                    && j + window >= i
                    && j <= i + window
                {
                    let m = j + window - i;
                    for x in 0..d {
                        out[i * c + h * d + x] += p * f64::from(rel_v[m * d + x]);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_plan_counts_the_split_kernel_cbs() {
        // The L1 formula of the plan is the sum of the CBs the split kernel is given.
        let p = Precision {
            activations_lo: true,
            ..Precision::hifi_fp32()
        };
        let f = DataFormat::Float32;
        for (dt, tk) in [(1u32, 1u32), (3, 35), (2, 80)] {
            let cbs: u64 = split_cbs(f, f, dt, tk)
                .iter()
                .map(|&(_, fmt, n)| u64::from(n) * fmt.tile_size_bytes() as u64)
                .sum();
            assert_eq!(
                cbs,
                cb_bytes(u64::from(dt), u64::from(tk), f, &p),
                "dt {dt} tk {tk}"
            );
        }
        // Three Float32 tiles per key tile.
        let step = cb_bytes(3, 36, f, &p) - cb_bytes(3, 35, f, &p);
        assert_eq!(step, 3 * 4096);
    }

    #[test]
    fn reference_identical_keys_average_the_values() {
        // Equal keys: uniform weights over the allowed keys.
        let (t, c) = (4, 2);
        let q: Vec<f32> = (0..t * c).map(|i| i as f32 * 0.1).collect();
        let k = vec![0.5f32; t * c];
        let v: Vec<f32> = (0..t * c).map(|i| i as f32).collect();
        let plain = reference(
            &q,
            &k,
            &v,
            t,
            1,
            AttentionKind::Plain { causal: false },
            None,
        );
        for i in 0..t {
            assert!((plain[i * c] - 3.0).abs() < 1e-12 && (plain[i * c + 1] - 4.0).abs() < 1e-12);
        }
        let causal = reference(
            &q,
            &k,
            &v,
            t,
            1,
            AttentionKind::Plain { causal: true },
            None,
        );
        assert!((causal[2 * c] - 2.0).abs() < 1e-12, "{}", causal[2 * c]);
        let masked = reference(
            &q,
            &k,
            &v,
            t,
            1,
            AttentionKind::Plain { causal: false },
            Some(2),
        );
        assert!((masked[3 * c] - 1.0).abs() < 1e-12, "{}", masked[3 * c]);
    }

    #[test]
    fn reference_relative_terms_are_banded() {
        // Zero q: uniform weights; rel_v adds the mean of rel_v over the in-band offsets.
        let (t, d, w) = (5, 1, 1);
        let q = vec![0f32; t];
        let k = vec![1f32; t];
        let v = vec![0f32; t];
        let rel_k = vec![9f32; 3];
        let rel_v = vec![1f32, 10.0, 100.0];
        let kind = AttentionKind::VitsRelative {
            rel_k: &rel_k,
            rel_v: &rel_v,
            window: w,
        };
        let out = reference(&q, &k, &v, t, 1, kind, None);
        // Row 0: offsets 0 (j = 0) and +1 (j = 1) in band, weights 1/5 each.
        assert!((out[0] - (10.0 + 100.0) / 5.0).abs() < 1e-12, "{}", out[0]);
        assert!((out[2] - 111.0 / 5.0).abs() < 1e-12, "{}", out[2]);
        let _ = d;
    }
}
