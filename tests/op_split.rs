//! `tt_kernels::ops::split::split_operand` against an independent host reference, on the
//! simulator (or hardware with `TT_DEVICE=metal`).
//!
//! Reference (all bit-exact except the reconstruction bound):
//! - `a = pre(x)` in f32: `x`, `max(x, 0)`, or `x` / `slope * x` (one f32 rounding) for leaky
//!   ReLU, on the values the device holds (`x` host-encoded to the input format and decoded).
//! - Full == `a` bit for bit.
//! - Lo == `a - tf32(a)` bit for bit, where `tf32` is the unpacker's documented Float32 -> TF32
//!   conversion: the low 13 mantissa bits dropped, no rounding (tt-formats
//!   `scalar::tf32_truncate`; tt-sim `fpu/pack.rs` `fp32_to_src`, `Fp32SrcFormat::Tf32`:
//!   `x >> 13`). Written out here as a bit mask; the kernel derives it through the unpacker.
//! - Reconstruction: the FPU reads Full as `tf32(a)` and Lo as `tf32(lo)`; with `a` in
//!   `[2^e, 2^(e+1))`, `|lo| < 2^(e-10)` and `tf32(lo)` drops less than `2^(e-21) <= 2^-21 |a|`,
//!   so `|a - (tf32(Full) + tf32(Lo))| <= 2^-21 |a|` (checked in f64).
//! - Padding (columns past C of every part tile, rows past T) is zero, also when the input's
//!   padding holds non-zero values.
//!
//! Data: random, never zero, magnitudes `(1 + u) 2^e` with `e` in [-40, 40] (no denormals: DEST
//! flushes them, see the op's docs), full random f32 mantissas.

use tt_kernels::ops::common::{Activation, DeviceTensor, OpError, TILE};
use tt_kernels::ops::split::{Part, split_operand, split_operand_range};
use tt_safe::{Arch, Buffer, DataFormat, Device};

#[path = "support/common.rs"]
mod common;
use common::{Rng, default_device as device, quantise};

/// The unpacker's Float32 -> TF32 conversion (see the module docs).
fn tf32(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & 0xFFFF_E000)
}

fn pre_ref(x: f32, pre: Activation) -> f32 {
    match pre {
        Activation::None => x,
        Activation::Relu => {
            if x > 0.0 {
                x
            } else {
                0.0
            }
        }
        Activation::LeakyRelu(s) => {
            if x >= 0.0 {
                x
            } else {
                s * x
            }
        }
        other => panic!("no reference for {other:?}"),
    }
}

/// An input `[rows, cols]` in `format` whose padding holds the (non-zero) values of `full`
/// (`[32 mt, 32 ct]`, row-major), or zero padding when `garbage_pad` is false.
fn upload(
    dev: &Device,
    full: &[f32],
    rows: usize,
    cols: usize,
    format: DataFormat,
    garbage_pad: bool,
) -> DeviceTensor {
    let (pr, pc) = (rows.div_ceil(TILE) * TILE, cols.div_ceil(TILE) * TILE);
    if garbage_pad {
        let bytes = tt_safe::tiles::to_tiles(full, pr, pc, format).unwrap();
        let page = format.tile_size_bytes();
        let buf = Buffer::dram(dev, bytes.len() as u64, page as u32).unwrap();
        buf.write(&bytes).unwrap();
        DeviceTensor::from_parts(buf, rows, cols, format, false).unwrap()
    } else {
        let logical: Vec<f32> = (0..rows)
            .flat_map(|r| full[r * pc..r * pc + cols].iter().copied())
            .collect();
        DeviceTensor::from_host(dev, rows, cols, &logical, format).unwrap()
    }
}

struct Case {
    rows: usize,
    cols: usize,
    format: DataFormat,
    pre: Activation,
    parts: &'static [Part],
    garbage_pad: bool,
    /// Input tile columns to split (`split_operand_range`); `None`: all (`split_operand`).
    range: Option<(usize, usize)>,
}

fn run_case(dev: &Device, rng: &mut Rng, case: &Case) {
    let Case {
        rows,
        cols,
        format,
        pre,
        parts,
        garbage_pad,
        range,
    } = *case;
    let what = format!(
        "[{rows}, {cols}] {format:?} pre {pre:?} parts {parts:?} garbage pad {garbage_pad} \
         tile range {range:?}"
    );
    let (mt, ct) = (rows.div_ceil(TILE), cols.div_ceil(TILE));
    let (pr, pc) = (mt * TILE, ct * TILE);
    let full: Vec<f32> = (0..pr * pc).map(|_| rng.octaves(-40, 40)).collect();
    let input = upload(dev, &full, rows, cols, format, garbage_pad);
    // The values the device holds (bf16: host rounding, decoded back).
    let x = quantise(&full, pr, pc, format);

    let (c0, c1) = range.unwrap_or((0, ct));
    let (out, _stats) = match range {
        None => split_operand(dev, &input, pre, parts),
        Some(_) => split_operand_range(dev, &input, pre, parts, c0..c1),
    }
    .unwrap_or_else(|e| panic!("{what}: split_operand failed: {e}"));
    let p = parts.len();
    let rt = c1 - c0;
    assert_eq!(out.shape(), [rows, p * rt * TILE], "{what}: output shape");
    assert_eq!(out.format(), DataFormat::Float32, "{what}: output format");
    assert!(out.pad_is_zero(), "{what}: output padding marked zero");
    let oc = p * rt * TILE;
    let got =
        tt_safe::tiles::from_tiles(&out.buffer().read().unwrap(), pr, oc, out.format()).unwrap();

    let (mut lo_nonzero, mut lo_count, mut worst) = (0usize, 0usize, 0f64);
    for r in 0..pr {
        for c in c0 * TILE..c1 * TILE {
            let a = pre_ref(x[r * pc + c], pre);
            let valid = r < rows && c < cols;
            let hi_col = parts.iter().position(|&q| q == Part::Full);
            let lo_col = parts.iter().position(|&q| q == Part::Lo);
            let at = |s: usize| got[r * oc + ((c / TILE - c0) * p + s) * TILE + c % TILE];
            for (s, part) in parts.iter().enumerate() {
                let v = at(s);
                if !valid {
                    assert_eq!(v, 0.0, "{what}: padding ({r}, {c}) of part {s} is {v}");
                    continue;
                }
                let want = match part {
                    Part::Full => a,
                    Part::Lo => a - tf32(a),
                };
                assert_eq!(
                    v.to_bits(),
                    want.to_bits(),
                    "{what}: ({r}, {c}) part {s} ({part:?}): got {v:e}, want {want:e} (a = {a:e})"
                );
                if *part == Part::Lo && a != 0.0 {
                    lo_count += 1;
                    lo_nonzero += usize::from(v != 0.0);
                }
            }
            if let (true, Some(h), Some(l)) = (valid, hi_col, lo_col) {
                let recon = f64::from(tf32(at(h))) + f64::from(tf32(at(l)));
                let err = (f64::from(a) - recon).abs();
                let bound = 2f64.powi(-21) * f64::from(a).abs();
                assert!(
                    err <= bound,
                    "{what}: ({r}, {c}) a = {a:e}: |a - (tf32(Full) + tf32(Lo))| = {err:e} > {bound:e}"
                );
                if a != 0.0 {
                    worst = worst.max(err / f64::from(a).abs());
                }
            }
        }
    }
    // A Float32 input with full random mantissas has a non-zero Lo almost everywhere a != 0 (a
    // zero Lo needs the low 13 bits all zero); a bf16 input has none unless the slope adds bits.
    if lo_count > 0 && format == DataFormat::Float32 {
        assert!(
            lo_nonzero * 10 > lo_count * 9,
            "{what}: only {lo_nonzero} of {lo_count} Lo values are non-zero"
        );
    }
    eprintln!(
        "{what}: ok; {lo_nonzero}/{lo_count} Lo non-zero, worst relative reconstruction error {worst:.3e}"
    );
}

/// The parts of `isolate_products` with both split flags (conv.rs `SplitLayout`).
const ISO: [Part; 10] = [
    Part::Full,
    Part::Full,
    Part::Full,
    Part::Full,
    Part::Full,
    Part::Full,
    Part::Full,
    Part::Full,
    Part::Lo,
    Part::Full,
];

#[test]
fn split_operand_matches_host_reference() {
    use Part::{Full, Lo};
    let dev = device();
    let mut rng = Rng::new(0x5b11_7a11);
    let f32f = DataFormat::Float32;
    let bf = DataFormat::Float16_b;
    let cases = [
        (45, 70, f32f, Activation::None, &[Full, Lo, Full][..], true),
        (
            33,
            200,
            f32f,
            Activation::Relu,
            &[Full, Lo, Full][..],
            false,
        ),
        (
            45,
            70,
            f32f,
            Activation::LeakyRelu(0.1),
            &[Full, Lo][..],
            true,
        ),
        (
            33,
            200,
            f32f,
            Activation::LeakyRelu(0.01),
            &[Full, Full][..],
            false,
        ),
        (
            33,
            200,
            bf,
            Activation::LeakyRelu(0.1),
            &[Full, Lo, Full][..],
            true,
        ),
        (45, 70, bf, Activation::None, &[Full, Lo][..], false),
        (45, 70, bf, Activation::Relu, &[Full, Full][..], true),
        (
            33,
            200,
            bf,
            Activation::LeakyRelu(0.01),
            &[Full, Lo][..],
            false,
        ),
        // More tiles than most grids have cores, uneven split; Lo alone.
        (300, 250, f32f, Activation::LeakyRelu(0.01), &[Lo][..], true),
    ];
    let cases = cases.into_iter().map(|c| (c, None)).chain([
        // isolate_products with both flags: [Full x 8, Lo, Full] of input-channel chunks (a
        // middle range, and one holding the last, partial tile column with garbage padding).
        (
            (45, 200, f32f, Activation::LeakyRelu(0.1), &ISO[..], true),
            Some((2, 5)),
        ),
        (
            (45, 200, f32f, Activation::None, &ISO[..], true),
            Some((5, 7)),
        ),
        (
            (33, 70, bf, Activation::Relu, &[Full, Lo][..], false),
            Some((1, 3)),
        ),
    ]);
    for ((rows, cols, format, pre, parts, garbage_pad), range) in cases {
        run_case(
            &dev,
            &mut rng,
            &Case {
                rows,
                cols,
                format,
                pre,
                parts,
                garbage_pad,
                range,
            },
        );
    }
}

#[test]
fn tf32_reference_is_the_documented_unpacker_conversion() {
    for bits in [0x3F80_1FFFu32, 0xBF80_3FFF, 0x4049_0FDB, 0x0123_4567] {
        let x = f32::from_bits(bits);
        assert_eq!(
            tf32(x).to_bits(),
            tt_formats::tf32_truncate(x).to_bits(),
            "{x:e}"
        );
    }
}

#[test]
fn split_operand_rejects_bad_arguments() {
    let dev = device();
    let data: Vec<f32> = (0..40 * 3).map(|i| 1.0 + i as f32).collect();
    let x = DeviceTensor::from_host(&dev, 40, 3, &data, DataFormat::Float32).unwrap();
    let parts = [Part::Full, Part::Lo];

    let e = split_operand(&dev, &x, Activation::None, &[]).unwrap_err();
    assert!(
        matches!(e, OpError::InvalidArgument { .. }) && e.to_string().contains("parts is empty"),
        "{e}"
    );
    let many = [Part::Full; 33];
    let e = split_operand(&dev, &x, Activation::None, &many).unwrap_err();
    assert!(matches!(e, OpError::InvalidArgument { .. }), "{e}");
    for bad in [Activation::Gelu, Activation::Tanh, Activation::Sigmoid] {
        let e = split_operand(&dev, &x, bad, &parts).unwrap_err();
        assert!(
            matches!(e, OpError::InvalidArgument { .. }) && e.to_string().contains("LeakyRelu"),
            "{e}"
        );
    }
    for slope in [f32::NAN, f32::INFINITY] {
        let e = split_operand(&dev, &x, Activation::LeakyRelu(slope), &parts).unwrap_err();
        assert!(
            matches!(e, OpError::InvalidArgument { .. }) && e.to_string().contains("not finite"),
            "{e}"
        );
    }
    // x has one tile column: empty ranges and ranges past it are refused.
    for range in [0..0, 1..1, 0..2, 1..2] {
        let e = split_operand_range(&dev, &x, Activation::None, &parts, range.clone()).unwrap_err();
        assert!(
            matches!(e, OpError::InvalidArgument { .. }) && e.to_string().contains("tile-column"),
            "{range:?}: {e}"
        );
    }
    let b8 = DeviceTensor::from_host(&dev, 40, 3, &data, DataFormat::Bfp8_b).unwrap();
    let e = split_operand(&dev, &b8, Activation::None, &parts).unwrap_err();
    assert!(
        matches!(
            e,
            OpError::FormatUnsupported {
                format: DataFormat::Bfp8_b,
                ..
            }
        ),
        "{e}"
    );
    let other_arch = if dev.arch() == Arch::Blackhole {
        Arch::WormholeB0
    } else {
        Arch::Blackhole
    };
    let other = common::sim(other_arch);
    let foreign = DeviceTensor::from_host(&other, 40, 3, &data, DataFormat::Float32).unwrap();
    let e = split_operand(&dev, &foreign, Activation::None, &parts).unwrap_err();
    assert!(matches!(e, OpError::ForeignDevice { .. }), "{e}");
}

/// The premise, through the real matmul path: a Float32 matmul of the split `[Full, Lo]` input
/// against weights that select, for each output column `c`, both parts of input column `c`
/// (weight 1.0 on the Full and the Lo row of `c`, 0 elsewhere) computes `TF32(a) + TF32(lo)` in
/// the fp32 DEST. Each group of eight K products holds one non-zero product (no alignment loss)
/// and the two-term sum needs at most 22 significant bits (exact in fp32), so the result is
/// within the split's `2^-21 |a|` of `a`, against up to `2^-10 |a|` for the unsplit input.
#[test]
fn split_parts_reconstruct_through_the_fpu_matmul() {
    use tt_kernels::ops::common::Precision;
    use tt_kernels::ops::matmul::Matmul;
    let dev = device();
    let mut rng = Rng::new(0x0dd_ba11);
    let (rows, cols) = (45usize, 70usize);
    let ct = cols.div_ceil(TILE);
    let data: Vec<f32> = (0..rows * cols).map(|_| rng.octaves(-20, 20)).collect();
    let x = DeviceTensor::from_host(&dev, rows, cols, &data, DataFormat::Float32).unwrap();
    let parts = [Part::Full, Part::Lo];
    let (split, _) = split_operand(&dev, &x, Activation::None, &parts).unwrap();
    let k = split.cols();
    let mut w = vec![0f32; k * cols];
    for c in 0..cols {
        for s in 0..parts.len() {
            let row = ((c / TILE) * parts.len() + s) * TILE + c % TILE;
            w[row * cols + c] = 1.0;
        }
    }
    assert_eq!(k, 2 * ct * TILE);
    let weights = tt_safe::Tensor2d::new(k, cols, w).unwrap();
    let mm = Matmul::new(
        &dev,
        &weights,
        None,
        Precision::hifi_fp32(),
        Activation::None,
    )
    .unwrap();
    let y = mm.run(&split).unwrap().to_host().unwrap();
    let (mut worst, mut worst_tf32) = (0f64, 0f64);
    for (i, (&a, &v)) in data.iter().zip(&y).enumerate() {
        let (a, v) = (f64::from(a), f64::from(v));
        let err = (v - a).abs();
        assert!(
            err <= 2f64.powi(-21) * a.abs(),
            "element {i}: a = {a:e}, matmul of the parts = {v:e}, error {err:e}"
        );
        worst = worst.max(err / a.abs());
        worst_tf32 = worst_tf32.max((a - f64::from(tf32(a as f32))).abs() / a.abs());
    }
    eprintln!("worst relative error: split {worst:.3e}, TF32 alone {worst_tf32:.3e}");
    assert!(
        worst_tf32 > 2f64.powi(-12),
        "the data must exercise the TF32 loss"
    );
}
