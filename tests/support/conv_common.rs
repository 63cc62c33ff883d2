//! Helpers shared by the conv1d and conv_transpose1d integration tests (`op_conv.rs`,
//! `op_conv_transpose.rs`): devices, deterministic non-zero data, host format round trips, the
//! two-bound element check, and the Piper-shape reporting. Included with
//! `#[path = "support/conv_common.rs"] mod conv_common;`.

#![allow(dead_code)]

use tt_kernels::ops::common::{Activation, Precision};
use tt_kernels::ops::conv::{ConvFormats, ConvTerms, conv_error_bound, conv_error_bound_formats};
use tt_safe::{Arch, DataFormat, Device, RunStats, Tensor2d};

/// The Wormhole n150 simulator.
pub fn sim() -> Device {
    Device::open_sim(Arch::WormholeB0).unwrap_or_else(|e| panic!("cannot open the simulator: {e}"))
}

/// The device of the Piper tests: Wormhole n150 by default, `PIPER_ARCH=blackhole` for p150.
pub fn piper_device() -> Device {
    let arch = match std::env::var("PIPER_ARCH").as_deref() {
        Ok("blackhole") => Arch::Blackhole,
        _ => Arch::WormholeB0,
    };
    Device::open_sim(arch).unwrap_or_else(|e| panic!("cannot open the simulator: {e}"))
}

/// xorshift; values never zero: magnitude in [0.1, 1), random sign.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let u = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        let v = (0.1 + 0.9 * u) as f32;
        if (self.0 >> 3) & 1 == 0 { v } else { -v }
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// `data` (`rows x cols`) encoded to `format` tiles on the host and decoded back: the values the
/// device holds.
pub fn round_trip(rows: usize, cols: usize, data: &[f32], format: DataFormat) -> Vec<f32> {
    let t = Tensor2d::new(rows, cols, data.to_vec()).expect("tensor");
    let bytes = t.to_tiles(format).expect("encode");
    Tensor2d::from_tiles(&bytes, rows, cols, format)
        .expect("decode")
        .into_data()
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Errors {
    pub max: f64,
    pub mean: f64,
    /// Largest error / bound (<= 1 when the check passes).
    pub worst_ratio: f64,
    /// Largest |reference| (to read the errors relative to the output scale).
    pub ref_max: f64,
}

/// f64 references of one conv: `y` the output, `s` the sum of |products| and `q` the weight
/// quantisation term per output element (as `conv_error_bound` takes them), on the original
/// inputs (`y`, `s`, `q`) and on the values the device holds (`yq`, `sq`).
pub struct References<'a> {
    pub y: &'a [f64],
    pub s: &'a [f64],
    pub q: &'a [f64],
    pub yq: &'a [f64],
    pub sq: &'a [f64],
}

/// Checks every output element twice: against f64 on the original inputs with the full derived
/// bound, and against f64 on the device-held values with the compute-only bound. `bias` is
/// `(original, bf16-rounded)` when the op has one; `kt` is the number of DEST tile matmuls per
/// output tile. Returns the errors against the original inputs.
#[allow(clippy::too_many_arguments)]
pub fn check_both_bounds(
    got: &[f32],
    cout: usize,
    kt: usize,
    precision: &Precision,
    act: Activation,
    bias: Option<(&[f32], &[f32])>,
    r: &References,
    what: &str,
) -> Errors {
    assert_eq!(got.len(), r.y.len(), "{what}: output length");
    let mut e = Errors::default();
    for (i, &g) in got.iter().enumerate() {
        let g = f64::from(g);
        let (t, c) = (i / cout, i % cout);
        let bias_i = bias.map(|(b, _)| f64::from(b[c]));
        let bound = conv_error_bound(
            precision,
            act,
            kt,
            r.s[i],
            r.q[i],
            bias_i,
            r.y[i].abs(),
            false,
        );
        let err = (g - r.y[i]).abs();
        assert!(
            err <= bound,
            "{what}: y[{t}, {c}] = {g}, f64 reference {} (|err| {err:e} > derived bound {bound:e})",
            r.y[i]
        );
        let bias_q = bias.map(|(_, bq)| f64::from(bq[c]));
        let bound_q = conv_error_bound(
            precision,
            act,
            kt,
            r.sq[i],
            0.0,
            bias_q,
            r.yq[i].abs(),
            true,
        );
        let err_q = (g - r.yq[i]).abs();
        assert!(
            err_q <= bound_q,
            "{what}: y[{t}, {c}] = {g}, f64 on the device's input values {} (|err| {err_q:e} > \
             compute bound {bound_q:e})",
            r.yq[i]
        );
        e.max = e.max.max(err);
        e.mean += err;
        e.worst_ratio = e.worst_ratio.max(err / bound);
        e.ref_max = e.ref_max.max(r.y[i].abs());
    }
    e.mean /= r.y.len() as f64;
    e
}

/// [`check_both_bounds`] for any input / output formats (`conv_error_bound_formats`): against
/// f64 on the original inputs with the full bound, and against f64 on the device-held values
/// (the input and bias decoded from their formats, weights decoded) with the compute-only bound.
#[allow(clippy::too_many_arguments)]
pub fn check_both_bounds_formats(
    got: &[f32],
    cout: usize,
    kt: usize,
    precision: &Precision,
    act: Activation,
    formats: &ConvFormats,
    bias: Option<(&[f32], &[f32])>,
    r: &References,
    what: &str,
) -> Errors {
    assert_eq!(got.len(), r.y.len(), "{what}: output length");
    let mut e = Errors::default();
    for (i, &g) in got.iter().enumerate() {
        let g = f64::from(g);
        let (t, c) = (i / cout, i % cout);
        let terms = |s_abs: f64, wq: f64, b: Option<f64>, y: f64, quantised: bool| ConvTerms {
            kt,
            s_abs,
            wq,
            bias: b,
            residual: None,
            y_post_abs: y,
            y_abs: y,
            inputs_quantised: quantised,
        };
        let t1 = terms(
            r.s[i],
            r.q[i],
            bias.map(|(b, _)| f64::from(b[c])),
            r.y[i].abs(),
            false,
        );
        let bound = conv_error_bound_formats(precision, Activation::None, act, &t1, formats);
        let err = (g - r.y[i]).abs();
        assert!(
            err <= bound,
            "{what}: y[{t}, {c}] = {g}, f64 reference {} (|err| {err:e} > derived bound {bound:e})",
            r.y[i]
        );
        let t2 = terms(
            r.sq[i],
            0.0,
            bias.map(|(_, b)| f64::from(b[c])),
            r.yq[i].abs(),
            true,
        );
        let bound_q = conv_error_bound_formats(precision, Activation::None, act, &t2, formats);
        let err_q = (g - r.yq[i]).abs();
        assert!(
            err_q <= bound_q,
            "{what}: y[{t}, {c}] = {g}, f64 on the device's input values {} (|err| {err_q:e} > \
             compute bound {bound_q:e})",
            r.yq[i]
        );
        e.max = e.max.max(err);
        e.mean += err;
        e.worst_ratio = e.worst_ratio.max(err / bound);
        e.ref_max = e.ref_max.max(r.y[i].abs());
    }
    e.mean /= r.y.len() as f64;
    e
}

/// The format the conv ops store their bias in: Float32 with Float32 activations, else bf16.
pub fn bias_format(precision: &Precision) -> DataFormat {
    if precision.activations == DataFormat::Float32 {
        DataFormat::Float32
    } else {
        DataFormat::Float16_b
    }
}

/// Utilisation of the matmul engine (as docs/ops.md defines it for every op): useful FLOPs
/// (conv: `2 T_out Cout Cin k / groups`; conv-transpose: `2 T_in Cin Cout k`) over the whole
/// grid's FPU peak at the fidelity (4096 FLOP/cycle/core at LoFi, divided by the phases) in the
/// estimated cycles.
pub fn utilisation(device: &Device, precision: &Precision, flops: f64, stats: &RunStats) -> f64 {
    let per_cycle =
        device.grid().num_cores() as f64 * 4096.0 / f64::from(precision.fidelity.phases());
    stats
        .device_cycles
        .map_or(f64::NAN, |c| flops / (c as f64 * per_cycle))
}
