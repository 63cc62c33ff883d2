//! SFPU operations on a DEST tile. NOT bit-exact: the hardware evaluates these with polynomial,
//! LUT and Newton-iteration sequences (different in `math_approx_mode`) that this model does not
//! replicate. Every op here is computed in f64 from the exact DEST value, rounded once to f32
//! (so the f32 result is within 0.5 f32 ulp of the real function, except `Erf`/`Gelu`, see
//! below) and then stored into DEST as the SFPU kernels store: in 16-bit mode rounded to bf16
//! (nearest, ties to even, as the kernels' explicit `float_to_fp16b` rounding does) with
//! denormals flushed to signed zero; in fp32 mode with denormals flushed.
//!
//! Expect hardware results to differ from these by a few bf16 ulp for the transcendental ops
//! (more in approx mode); this model is the "ideal" the hardware approximates, which is what
//! kernel tests should compare against with a format-derived tolerance.
//!
//! # Models (`TT_SIM_SFPU`)
//!
//! Two models are selectable, read once per process from the environment variable
//! `TT_SIM_SFPU` (see [`SfpuModel::from_env`]):
//! - `ideal` (default, also when the variable is unset or empty): the f64-and-round-once model
//!   described above.
//! - `llk`: exp, recip, rsqrt, sigmoid, tanh, softplus and gelu run the algorithm TT-Metal's LLK
//!   runs on the hardware for the flags our kernels use (`math_approx_mode` off, `exp_tile<false>`,
//!   `recip_tile` legacy_compat, `rsqrt_tile` defaults, `gelu_tile<false>`, fast_and_approx off
//!   for sigmoid/tanh), per architecture, in the SFPU's own fp32 arithmetic (ttsim's SFPMAD
//!   models), including its bf16 rounding (`float_to_fp16b` rounds half away from zero) and its
//!   16-bit DEST store (truncation); see `sfpu_llk.rs` for the algorithms and the sources read.
//!   Exact ops (relu, leaky relu, abs, neg, square, add/mul scalar) stay as in `ideal`. Ops whose
//!   LLK program is not modelled (sqrt, log, erf, silu, elu) are an error in `llk` mode.
//!   The compute API's template flags reach the model ([`SfpuFlags`]); a combination the `llk`
//!   model does not implement (e.g. `gelu_tile<true>`, the API default, or
//!   `recip_tile<false>`) is an error naming the op, the flag and what is modelled, never a
//!   silent substitution.
//! - In `ideal` the approximation flags (`approx`, `fast_and_approx`, `legacy_compat`,
//!   `FAST_APPROX`, `skip_positive_check`) do not change the result: it is the ideal function
//!   they approximate. Flags that change the function itself (`exp_tile`'s `scale_en`) are an
//!   error in every mode.
//! - `llk:<ops>` (e.g. `llk:recip,exp`): `llk` for the listed ops (exp, recip, rsqrt, sigmoid,
//!   tanh, softplus, gelu), `ideal` for the rest, to attribute a difference to single ops.
//!
//! Any other value is an error that names the accepted ones.

#[cfg(test)]
use super::TILE_DATUMS;
use super::sfpu_llk::{LlkOp, eval_llk};
use super::{DestTile, FpuConfig};
use std::sync::OnceLock;
use tt_formats::Arch;

/// Which SFPU model evaluates the transcendental ops (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SfpuModel {
    /// f64 evaluation rounded once (the default).
    #[default]
    Ideal,
    /// The LLK's algorithm in the SFPU's fp32 arithmetic.
    Llk,
    /// `llk` for the ops in the set (bit `LlkOp as u8`), `ideal` for the other transcendental
    /// ops: attributes an end-to-end difference to single ops (`TT_SIM_SFPU=llk:recip,exp`).
    LlkOnly(u8),
}

/// Errors of the SFPU models.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SfpuError {
    /// `TT_SIM_SFPU` holds something else than `ideal` or `llk`.
    #[error(
        "TT_SIM_SFPU={0:?} is not a known SFPU model: set it to `ideal` (default), `llk`, or `llk:` and a comma-separated list of exp, recip, rsqrt, sigmoid, tanh, softplus, gelu"
    )]
    BadModel(String),
    /// The `llk` model has no hardware algorithm for this op.
    #[error(
        "{0:?} has no LLK model in tt-sim's `llk` SFPU mode (TT_SIM_SFPU=llk); unset TT_SIM_SFPU or set it to `ideal`"
    )]
    NoLlkModel(SfpuOp),
    /// The `llk` model implements this op for other template flags only.
    #[error(
        "{op:?} with {flag} = {got} has no LLK model in tt-sim's `llk` SFPU mode (modelled: {modelled}); use the modelled flags in the kernel, or run with TT_SIM_SFPU=ideal (which ignores approximation flags)"
    )]
    UnmodelledFlags {
        /// The op.
        op: SfpuOp,
        /// The compute-API template flag.
        flag: &'static str,
        /// The value the kernel passed.
        got: bool,
        /// The flag combination the `llk` model implements for this op.
        modelled: &'static str,
    },
    /// A flag that changes the function itself, which no model implements.
    #[error(
        "{op:?} with {flag} = true is not supported by tt-sim (any SFPU model); leave {flag} false"
    )]
    UnsupportedFlag {
        /// The op.
        op: SfpuOp,
        /// The compute-API template flag.
        flag: &'static str,
    },
}

/// The compute API's template flags of an SFPU call (TT-Metal `compute_kernel_api/eltwise_unary/
/// {exp,recip,rsqrt,gelu}.h` and `compute_kernel_api.h`). Which flags an op reads:
/// - `exp_tile<approx = false, fast_and_approx = true, scale_en = false, skip_positive_check =
///   false>`: `approx`, `fast_and_approx`, `scale_en`, `skip_positive_check`;
/// - `recip_tile<legacy_compat = true>`: `legacy_compat`, and `approx` = APPROX
///   (`math_approx_mode`);
/// - `rsqrt_tile<legacy_compat = false, FAST_APPROX = false>`: `legacy_compat`,
///   `fast_and_approx` (= `FAST_APPROX`), `approx` = APPROX;
/// - `gelu_tile<fast_and_approx = true>`, `sigmoid_tile<vec_mode, fast_and_approx = false>`,
///   `tanh_tile<fast_and_approx = false>`: `fast_and_approx`;
/// - `softplus_tile`: `approx` = APPROX.
///
/// Other ops read none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SfpuFlags {
    /// `exp_tile`'s `approx`; APPROX (`math_approx_mode`) for recip, rsqrt and softplus.
    pub approx: bool,
    /// `fast_and_approx` (exp, gelu, sigmoid, tanh) or rsqrt's `FAST_APPROX`.
    pub fast_and_approx: bool,
    /// `legacy_compat` (recip, rsqrt).
    pub legacy_compat: bool,
    /// `exp_tile`'s `scale_en`.
    pub scale_en: bool,
    /// `exp_tile`'s `skip_positive_check`.
    pub skip_positive_check: bool,
}

impl SfpuFlags {
    /// Bit of the flags word (`tt-sim/emu/tt_sim/compute.h`) saying the header sent flags.
    pub const PRESENT: u32 = 1 << 31;

    /// Decodes the emulation header's flags word (`None` when the call carried no flags).
    pub fn from_word(w: u32) -> Option<SfpuFlags> {
        (w & Self::PRESENT != 0).then_some(SfpuFlags {
            approx: w & 1 != 0,
            fast_and_approx: w & 2 != 0,
            legacy_compat: w & 4 != 0,
            scale_en: w & 8 != 0,
            skip_positive_check: w & 16 != 0,
        })
    }

    /// The compute API's defaults for `op` with `math_approx_mode` off.
    pub fn api_default(op: SfpuOp) -> SfpuFlags {
        SfpuFlags {
            fast_and_approx: matches!(op, SfpuOp::Exp | SfpuOp::Gelu),
            legacy_compat: op == SfpuOp::Recip,
            ..SfpuFlags::default()
        }
    }

    /// The flags the `llk` model implements for `op` (for exp, `fast_and_approx` and
    /// `skip_positive_check` are not read when `approx` is off: either value is modelled).
    pub fn llk_modelled(op: SfpuOp) -> SfpuFlags {
        SfpuFlags {
            legacy_compat: op == SfpuOp::Recip,
            ..SfpuFlags::default()
        }
    }

    /// `Err` when `op` with these flags is a different function than the one every model
    /// computes (`exp_tile`'s `scale_en`).
    fn check_function(self, op: SfpuOp) -> Result<(), SfpuError> {
        if op == SfpuOp::Exp && self.scale_en {
            return Err(SfpuError::UnsupportedFlag {
                op,
                flag: "scale_en",
            });
        }
        Ok(())
    }

    /// `Err` naming the first flag of `op` whose value the `llk` model does not implement.
    fn check_llk(self, op: SfpuOp) -> Result<(), SfpuError> {
        let (checks, modelled): (&[(&'static str, bool, bool)], &'static str) = match op {
            SfpuOp::Exp => (
                &[("approx", self.approx, false)],
                "exp_tile<approx = false> (any fast_and_approx, skip_positive_check)",
            ),
            SfpuOp::Recip => (
                &[
                    ("legacy_compat", self.legacy_compat, true),
                    ("APPROX (math_approx_mode)", self.approx, false),
                ],
                "recip_tile<legacy_compat = true> with math_approx_mode off",
            ),
            SfpuOp::Rsqrt => (
                &[
                    ("legacy_compat", self.legacy_compat, false),
                    ("FAST_APPROX", self.fast_and_approx, false),
                    ("APPROX (math_approx_mode)", self.approx, false),
                ],
                "rsqrt_tile<legacy_compat = false, FAST_APPROX = false> with math_approx_mode off",
            ),
            SfpuOp::Gelu => (
                &[("fast_and_approx", self.fast_and_approx, false)],
                "gelu_tile<fast_and_approx = false>",
            ),
            SfpuOp::Sigmoid => (
                &[("fast_and_approx", self.fast_and_approx, false)],
                "sigmoid_tile<VectorMode::RC, fast_and_approx = false>",
            ),
            SfpuOp::Tanh => (
                &[("fast_and_approx", self.fast_and_approx, false)],
                "tanh_tile<fast_and_approx = false>",
            ),
            SfpuOp::Softplus => (
                &[("APPROX (math_approx_mode)", self.approx, false)],
                "softplus_tile with math_approx_mode off",
            ),
            _ => (&[], ""),
        };
        match checks.iter().find(|(_, got, want)| got != want) {
            Some(&(flag, got, _)) => Err(SfpuError::UnmodelledFlags {
                op,
                flag,
                got,
                modelled,
            }),
            None => Ok(()),
        }
    }
}

impl SfpuModel {
    /// Parses a `TT_SIM_SFPU` value (`None`/empty = `ideal`).
    pub fn parse(v: Option<&str>) -> Result<SfpuModel, SfpuError> {
        match v.map(str::trim) {
            None | Some("") | Some("ideal") => Ok(SfpuModel::Ideal),
            Some("llk") => Ok(SfpuModel::Llk),
            Some(o) => {
                let bad = || SfpuError::BadModel(o.to_string());
                let list = o.strip_prefix("llk:").ok_or_else(bad)?;
                let mut set = 0u8;
                for name in list.split(',').map(str::trim) {
                    let op = LlkOp::ALL
                        .iter()
                        .find(|op| op.name() == name)
                        .ok_or_else(bad)?;
                    set |= 1 << *op as u8;
                }
                Ok(SfpuModel::LlkOnly(set))
            }
        }
    }

    /// The model `TT_SIM_SFPU` selects, read once per process.
    pub fn from_env() -> Result<SfpuModel, SfpuError> {
        static MODEL: OnceLock<Result<SfpuModel, SfpuError>> = OnceLock::new();
        MODEL
            .get_or_init(|| {
                let v = std::env::var("TT_SIM_SFPU").ok();
                SfpuModel::parse(v.as_deref())
            })
            .clone()
    }
}

/// Applies `op` to a DEST tile of a device of architecture `arch` with the model `TT_SIM_SFPU`
/// selects. `flags_word` is the emulation header's encoding of the call's template flags
/// ([`SfpuFlags::from_word`]); a call without flags gets the compute API's defaults.
pub fn sfpu_for_arch(
    dst: &mut DestTile,
    op: SfpuOp,
    flags_word: u32,
    cfg: &FpuConfig,
    arch: Arch,
) -> Result<(), SfpuError> {
    let flags = SfpuFlags::from_word(flags_word).unwrap_or_else(|| SfpuFlags::api_default(op));
    sfpu_with_flags(dst, op, flags, cfg, arch, SfpuModel::from_env()?)
}

/// Applies `op` with an explicit model and the flags the `llk` model implements
/// ([`SfpuFlags::llk_modelled`]).
pub fn sfpu_with_model(
    dst: &mut DestTile,
    op: SfpuOp,
    cfg: &FpuConfig,
    arch: Arch,
    model: SfpuModel,
) -> Result<(), SfpuError> {
    sfpu_with_flags(dst, op, SfpuFlags::llk_modelled(op), cfg, arch, model)
}

/// Applies `op` called with the template flags `flags` with an explicit model: `ideal` ignores
/// the approximation flags, `llk` refuses a combination it does not implement
/// ([`SfpuError::UnmodelledFlags`]); the tile is unchanged on error.
pub fn sfpu_with_flags(
    dst: &mut DestTile,
    op: SfpuOp,
    flags: SfpuFlags,
    cfg: &FpuConfig,
    arch: Arch,
    model: SfpuModel,
) -> Result<(), SfpuError> {
    flags.check_function(op)?;
    if model == SfpuModel::Ideal {
        sfpu(dst, op, cfg);
        return Ok(());
    }
    let lop = match op {
        SfpuOp::Exp => LlkOp::Exp,
        SfpuOp::Recip => LlkOp::Recip,
        SfpuOp::Rsqrt => LlkOp::Rsqrt,
        SfpuOp::Sigmoid => LlkOp::Sigmoid,
        SfpuOp::Tanh => LlkOp::Tanh,
        SfpuOp::Softplus => LlkOp::Softplus,
        SfpuOp::Gelu => LlkOp::Gelu,
        SfpuOp::Relu
        | SfpuOp::LeakyRelu(_)
        | SfpuOp::Abs
        | SfpuOp::Neg
        | SfpuOp::Square
        | SfpuOp::MulScalar(_)
        | SfpuOp::AddScalar(_) => {
            sfpu(dst, op, cfg);
            return Ok(());
        }
        SfpuOp::Sqrt | SfpuOp::Log | SfpuOp::Erf | SfpuOp::Silu | SfpuOp::Elu(_) => {
            return Err(SfpuError::NoLlkModel(op));
        }
    };
    if let SfpuModel::LlkOnly(set) = model
        && set & (1 << lop as u8) == 0
    {
        sfpu(dst, op, cfg);
        return Ok(());
    }
    flags.check_llk(op)?;
    let fp32 = cfg.fp32_dest_acc;
    for v in dst.v.iter_mut() {
        *v = eval_llk(lop, arch, fp32, *v);
    }
    dst.set_all_valid();
    Ok(())
}

/// An SFPU operation (`<op>_tile` in TT-Metal's compute API).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SfpuOp {
    /// e^x.
    Exp,
    /// 1/x (1/0 = +inf with the sign of the zero).
    Recip,
    /// sqrt(x) (NaN for x < 0).
    Sqrt,
    /// 1/sqrt(x).
    Rsqrt,
    /// GELU: x * Phi(x) with the exact erf unless `approx`, then the tanh form
    /// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Erf error < 1e-13 absolute.
    Gelu,
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// tanh(x).
    Tanh,
    /// max(x, 0).
    Relu,
    /// x if x >= 0 else slope * x.
    LeakyRelu(f32),
    /// ln(x) (-inf at 0, NaN below).
    Log,
    /// |x|.
    Abs,
    /// -x.
    Neg,
    /// x^2.
    Square,
    /// ln(1 + e^x) (x itself above 20, where the difference is below f32 precision).
    Softplus,
    /// erf(x), absolute error < 1e-13 before rounding (series below 2.5, continued fraction above).
    Erf,
    /// x * sigmoid(x).
    Silu,
    /// x if x > 0 else alpha (e^x - 1).
    Elu(f32),
    /// x * s (`mul_unary_tile`).
    MulScalar(f32),
    /// x + s (`add_unary_tile`).
    AddScalar(f32),
}

impl SfpuOp {
    /// Estimated SFPU instructions per 32-lane row pair (cost model, not measured).
    pub fn instructions(self, approx: bool) -> u32 {
        match self {
            SfpuOp::Relu
            | SfpuOp::Abs
            | SfpuOp::Neg
            | SfpuOp::MulScalar(_)
            | SfpuOp::AddScalar(_) => 3,
            SfpuOp::LeakyRelu(_) | SfpuOp::Square => 4,
            SfpuOp::Exp => {
                if approx {
                    6
                } else {
                    16
                }
            }
            SfpuOp::Recip | SfpuOp::Sqrt | SfpuOp::Rsqrt | SfpuOp::Log => 14,
            SfpuOp::Sigmoid | SfpuOp::Tanh | SfpuOp::Erf | SfpuOp::Elu(_) => 20,
            SfpuOp::Silu => 24,
            SfpuOp::Gelu => {
                if approx {
                    10
                } else {
                    30
                }
            }
            SfpuOp::Softplus => 30,
        }
    }
}

/// erf in f64: Maclaurin series for |x| < 2.5, the Laplace continued fraction of erfc above.
fn erf(x: f64) -> f64 {
    let ax = x.abs();
    if ax.is_nan() {
        return x;
    }
    let r = if ax < 2.5 {
        // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
        let x2 = ax * ax;
        let mut term = ax; // (-1)^n x^(2n+1) / n!
        let mut sum = ax;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -x2 / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else if ax > 6.0 {
        1.0
    } else {
        // erfc(x) = exp(-x^2) / sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
        let mut k = ax;
        for n in (1..=80).rev() {
            k = ax + (n as f64 / 2.0) / k;
        }
        1.0 - (-ax * ax).exp() / (std::f64::consts::PI.sqrt() * k)
    };
    if x < 0.0 { -r } else { r }
}

#[inline(always)]
fn eval(op: SfpuOp, x: f64, approx: bool) -> f64 {
    match op {
        SfpuOp::Exp => x.exp(),
        SfpuOp::Recip => 1.0 / x,
        SfpuOp::Sqrt => x.sqrt(),
        SfpuOp::Rsqrt => 1.0 / x.sqrt(),
        SfpuOp::Gelu => {
            if approx {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            } else {
                0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
            }
        }
        SfpuOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        SfpuOp::Tanh => x.tanh(),
        SfpuOp::Relu => {
            if x > 0.0 {
                x
            } else {
                0.0
            }
        }
        SfpuOp::LeakyRelu(s) => {
            if x >= 0.0 {
                x
            } else {
                s as f64 * x
            }
        }
        SfpuOp::Log => x.ln(),
        SfpuOp::Abs => x.abs(),
        SfpuOp::Neg => -x,
        SfpuOp::Square => x * x,
        SfpuOp::Softplus => {
            if x > 20.0 {
                x
            } else {
                x.exp().ln_1p()
            }
        }
        SfpuOp::Erf => erf(x),
        SfpuOp::Silu => x / (1.0 + (-x).exp()),
        SfpuOp::Elu(a) => {
            if x > 0.0 {
                x
            } else {
                a as f64 * x.exp_m1()
            }
        }
        SfpuOp::MulScalar(s) => x * s as f64,
        SfpuOp::AddScalar(s) => x + s as f64,
    }
}

/// fp32 bits -> what DEST stores after an SFPU store (see the module docs).
#[inline(always)]
pub(crate) fn store_to_dest(bits: u32, fp32: bool) -> u32 {
    let flush = |b: u32| {
        if b & 0x7F80_0000 == 0 {
            b & 0x8000_0000
        } else {
            b
        }
    };
    if fp32 {
        return flush(bits);
    }
    let b = flush(bits);
    if b & 0x7FFF_FFFF > 0x7F80_0000 {
        return 0x7FC0_0000; // NaN
    }
    let r = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF_0000;
    flush(r)
}

/// `f` on every datum (f32 -> f64 -> `f` -> f32 -> DEST store), every row marked written.
#[inline(always)]
fn apply(dst: &mut DestTile, fp32: bool, f: impl Fn(f64) -> f64) {
    for v in dst.v.iter_mut() {
        // A signalling NaN input comes out quiet (as the f32 -> f64 conversion of the per-datum
        // evaluation does); done explicitly because the compiler may fold a conversion pair away
        // (e.g. for Neg and Abs) once the loop is specialised.
        let q = if *v & 0x7FFF_FFFF > 0x7F80_0000 {
            0x0040_0000
        } else {
            0
        };
        let y = f(f32::from_bits(*v | q) as f64) as f32;
        *v = store_to_dest(y.to_bits(), fp32);
    }
    dst.set_all_valid();
}

/// Applies `op` in place to every datum of a DEST tile.
pub fn sfpu(dst: &mut DestTile, op: SfpuOp, cfg: &FpuConfig) {
    let (fp32, approx) = (cfg.fp32_dest_acc, cfg.approx);
    // One loop per op (the match is resolved once per tile, not per datum), each the same
    // arithmetic as `eval`, so results are identical; the cheap ops' loops vectorise.
    macro_rules! each {
        ($($pat:pat => $op:expr),* $(,)?) => {
            match op {
                $($pat => apply(dst, fp32, |x| eval($op, x, approx)),)*
            }
        };
    }
    each! {
        SfpuOp::Exp => SfpuOp::Exp,
        SfpuOp::Recip => SfpuOp::Recip,
        SfpuOp::Sqrt => SfpuOp::Sqrt,
        SfpuOp::Rsqrt => SfpuOp::Rsqrt,
        SfpuOp::Gelu => SfpuOp::Gelu,
        SfpuOp::Sigmoid => SfpuOp::Sigmoid,
        SfpuOp::Tanh => SfpuOp::Tanh,
        SfpuOp::Relu => SfpuOp::Relu,
        SfpuOp::LeakyRelu(s) => SfpuOp::LeakyRelu(s),
        SfpuOp::Log => SfpuOp::Log,
        SfpuOp::Abs => SfpuOp::Abs,
        SfpuOp::Neg => SfpuOp::Neg,
        SfpuOp::Square => SfpuOp::Square,
        SfpuOp::Softplus => SfpuOp::Softplus,
        SfpuOp::Erf => SfpuOp::Erf,
        SfpuOp::Silu => SfpuOp::Silu,
        SfpuOp::Elu(a) => SfpuOp::Elu(a),
        SfpuOp::MulScalar(s) => SfpuOp::MulScalar(s),
        SfpuOp::AddScalar(s) => SfpuOp::AddScalar(s),
    }
}

/// The per-datum loop `sfpu` had before the per-op loops: the reference the test compares with.
#[cfg(test)]
fn sfpu_per_datum(dst: &mut DestTile, op: SfpuOp, cfg: &FpuConfig) {
    for i in 0..TILE_DATUMS {
        let x = f32::from_bits(dst.read(i)) as f64;
        let y = eval(op, x, cfg.approx) as f32;
        dst.write(i, store_to_dest(y.to_bits(), cfg.fp32_dest_acc));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpu::Fidelity;

    #[test]
    fn erf_against_known_values() {
        // Reference values (Abramowitz & Stegun table 7.1 / high-precision tables).
        let cases = [
            (0.1, 0.112_462_916_018_284_9),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (2.5, 0.999_593_047_982_555),
            (3.0, 0.999_977_909_503_001_4),
            (4.0, 0.999_999_984_582_742_1),
        ];
        for (x, want) in cases {
            assert!(
                (erf(x) - want).abs() < 1e-13,
                "erf({x}) = {} want {want}",
                erf(x)
            );
            assert!((erf(-x) + want).abs() < 1e-13);
        }
    }

    /// The per-op loops give the bits of the per-datum evaluation for every op, on random bit
    /// patterns (NaNs, infinities, denormals included), in both DEST modes.
    #[test]
    fn per_op_loops_match_the_per_datum_evaluation_bit_for_bit() {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let ops = [
            SfpuOp::Exp,
            SfpuOp::Recip,
            SfpuOp::Sqrt,
            SfpuOp::Rsqrt,
            SfpuOp::Gelu,
            SfpuOp::Sigmoid,
            SfpuOp::Tanh,
            SfpuOp::Relu,
            SfpuOp::LeakyRelu(0.1),
            SfpuOp::Log,
            SfpuOp::Abs,
            SfpuOp::Neg,
            SfpuOp::Square,
            SfpuOp::Softplus,
            SfpuOp::Erf,
            SfpuOp::Silu,
            SfpuOp::Elu(0.7),
            SfpuOp::MulScalar(-1.7),
            SfpuOp::AddScalar(3.25),
        ];
        for fp32 in [false, true] {
            for approx in [false, true] {
                let mut cfg = FpuConfig::new(Fidelity::LoFi, fp32, false);
                cfg.approx = approx;
                for op in ops {
                    let mut a = DestTile::zero();
                    for (i, v) in a.v.iter_mut().enumerate() {
                        let r = next() as u32;
                        // Mostly moderate values, some raw bit patterns (NaN, inf, denormal).
                        *v = if i % 8 == 0 {
                            r
                        } else {
                            (((next() % 2000) as f32 - 1000.0) / 97.0).to_bits()
                        };
                        if !fp32 {
                            *v &= 0xFFFF_0000;
                        }
                    }
                    let mut b = a.clone();
                    sfpu(&mut a, op, &cfg);
                    sfpu_per_datum(&mut b, op, &cfg);
                    assert_eq!(a.valid, b.valid, "{op:?}");
                    for i in 0..TILE_DATUMS {
                        assert_eq!(
                            a.v[i], b.v[i],
                            "{op:?} fp32 {fp32} approx {approx} datum {i}"
                        );
                    }
                }
            }
        }
    }

    /// (c) The `ideal` model through the model switch is today's `sfpu`, bit for bit, on both
    /// archs; `llk` leaves the exact ops on that path too and refuses the unmodelled ops.
    #[test]
    fn ideal_model_is_unchanged_and_llk_refuses_unmodelled_ops() {
        let mut s = 0x0123_4567_89AB_CDEFu64;
        let ops = [
            SfpuOp::Exp,
            SfpuOp::Recip,
            SfpuOp::Rsqrt,
            SfpuOp::Gelu,
            SfpuOp::Sigmoid,
            SfpuOp::Tanh,
            SfpuOp::Softplus,
            SfpuOp::Relu,
            SfpuOp::LeakyRelu(0.1),
            SfpuOp::MulScalar(-1.7),
            SfpuOp::AddScalar(3.25),
            SfpuOp::Sqrt,
            SfpuOp::Log,
        ];
        for fp32 in [false, true] {
            let cfg = FpuConfig::new(Fidelity::HiFi4, fp32, false);
            let mut a = DestTile::zero();
            for v in a.v.iter_mut() {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                *v = (((s % 4000) as f32 - 2000.0) / 173.0).to_bits();
                if !fp32 {
                    *v &= 0xFFFF_0000;
                }
            }
            for op in ops {
                for arch in [Arch::WormholeB0, Arch::Blackhole] {
                    let (mut x, mut y) = (a.clone(), a.clone());
                    sfpu(&mut x, op, &cfg);
                    sfpu_with_model(&mut y, op, &cfg, arch, SfpuModel::Ideal).unwrap();
                    assert_eq!(x.v, y.v, "{op:?}");
                    let mut z = a.clone();
                    let r = sfpu_with_model(&mut z, op, &cfg, arch, SfpuModel::Llk);
                    match op {
                        SfpuOp::Sqrt | SfpuOp::Log => {
                            assert_eq!(r, Err(SfpuError::NoLlkModel(op)));
                        }
                        SfpuOp::Relu
                        | SfpuOp::LeakyRelu(_)
                        | SfpuOp::MulScalar(_)
                        | SfpuOp::AddScalar(_) => {
                            assert_eq!(r, Ok(()));
                            assert_eq!(z.v, x.v, "{op:?} exact ops keep the ideal path");
                        }
                        _ => {
                            assert_eq!(r, Ok(()));
                            // The llk model is a different computation: it must differ from
                            // ideal somewhere on 1024 random inputs, and stay close.
                            assert_ne!(z.v, x.v, "{op:?} llk gave the ideal bits");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn model_names_parse_and_bad_names_say_what_to_do() {
        assert_eq!(SfpuModel::parse(None), Ok(SfpuModel::Ideal));
        assert_eq!(SfpuModel::parse(Some("")), Ok(SfpuModel::Ideal));
        assert_eq!(SfpuModel::parse(Some("ideal")), Ok(SfpuModel::Ideal));
        assert_eq!(SfpuModel::parse(Some("llk")), Ok(SfpuModel::Llk));
        assert_eq!(
            SfpuModel::parse(Some("llk:recip, exp")),
            Ok(SfpuModel::LlkOnly(
                (1 << LlkOp::Recip as u8) | (1 << LlkOp::Exp as u8)
            ))
        );
        for bad in ["hw", "llk:", "llk:sqrt", "llk:exp,,tanh"] {
            let e = SfpuModel::parse(Some(bad)).unwrap_err();
            assert!(e.to_string().contains("`ideal` (default), `llk`"), "{e}");
        }
        // llk:exp changes exp only.
        let cfg = FpuConfig::new(Fidelity::HiFi4, true, false);
        let mut a = DestTile::zero();
        for (i, v) in a.v.iter_mut().enumerate() {
            *v = ((i as f32 - 500.0) / 37.0).to_bits();
        }
        let only_exp = SfpuModel::parse(Some("llk:exp")).unwrap();
        for (op, model) in [
            (SfpuOp::Exp, SfpuModel::Llk),
            (SfpuOp::Tanh, SfpuModel::Ideal),
        ] {
            let (mut x, mut y) = (a.clone(), a.clone());
            sfpu_with_model(&mut x, op, &cfg, Arch::WormholeB0, only_exp).unwrap();
            sfpu_with_model(&mut y, op, &cfg, Arch::WormholeB0, model).unwrap();
            assert_eq!(x.v, y.v, "{op:?}");
        }
    }

    /// Every combination of the five flags (scale_en off).
    fn all_flags() -> impl Iterator<Item = SfpuFlags> {
        (0u32..16)
            .map(|w| SfpuFlags::from_word(SfpuFlags::PRESENT | (w & 7) | ((w & 8) << 1)).unwrap())
    }

    fn random_tile(seed: u64) -> DestTile {
        let mut s = seed;
        let mut a = DestTile::zero();
        for v in a.v.iter_mut() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *v = (((s % 4000) as f32 - 2000.0) / 173.0).to_bits() & 0xFFFF_0000;
        }
        a
    }

    const FLAGGED: [SfpuOp; 7] = [
        SfpuOp::Exp,
        SfpuOp::Recip,
        SfpuOp::Rsqrt,
        SfpuOp::Gelu,
        SfpuOp::Sigmoid,
        SfpuOp::Tanh,
        SfpuOp::Softplus,
    ];

    #[test]
    fn flags_word_decodes_and_absent_flags_are_the_api_defaults() {
        assert_eq!(SfpuFlags::from_word(0), None);
        assert_eq!(SfpuFlags::from_word(0x1F), None);
        let f = SfpuFlags::from_word(SfpuFlags::PRESENT | 0x2 | 0x8).unwrap();
        assert!(f.fast_and_approx && f.scale_en);
        assert!(!f.approx && !f.legacy_compat && !f.skip_positive_check);
        // TT-Metal defaults: gelu_tile<fast_and_approx = true>, recip_tile<legacy_compat = true>,
        // exp_tile<approx = false, fast_and_approx = true>, the others all false.
        assert!(SfpuFlags::api_default(SfpuOp::Gelu).fast_and_approx);
        assert!(SfpuFlags::api_default(SfpuOp::Recip).legacy_compat);
        assert!(!SfpuFlags::api_default(SfpuOp::Rsqrt).legacy_compat);
        assert!(!SfpuFlags::api_default(SfpuOp::Sigmoid).fast_and_approx);
    }

    #[test]
    fn ideal_ignores_approximation_flags_bit_for_bit() {
        for fp32 in [false, true] {
            let cfg = FpuConfig::new(Fidelity::HiFi4, fp32, false);
            let a = random_tile(0x5eed_f1a9);
            for op in FLAGGED {
                let mut want = a.clone();
                sfpu(&mut want, op, &cfg);
                for flags in all_flags() {
                    let mut y = a.clone();
                    sfpu_with_flags(&mut y, op, flags, &cfg, Arch::WormholeB0, SfpuModel::Ideal)
                        .unwrap();
                    assert_eq!(y.v, want.v, "{op:?} {flags:?}");
                }
            }
        }
    }

    #[test]
    fn llk_refuses_unmodelled_flags_and_runs_the_modelled_ones() {
        let cfg = FpuConfig::new(Fidelity::HiFi4, false, false);
        let a = random_tile(0x0dd_ba11);
        // gelu_tile<true> (the API default): an error naming op, flag and the modelled form;
        // the tile is left as it was.
        let mut x = a.clone();
        let fast = SfpuFlags::api_default(SfpuOp::Gelu);
        let e = sfpu_with_flags(
            &mut x,
            SfpuOp::Gelu,
            fast,
            &cfg,
            Arch::WormholeB0,
            SfpuModel::Llk,
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("Gelu")
                && msg.contains("fast_and_approx = true")
                && msg.contains("gelu_tile<fast_and_approx = false>"),
            "{msg}"
        );
        assert_eq!(x.v, a.v);
        // recip_tile<false> is refused; the default recip_tile<true> runs.
        let no_legacy = SfpuFlags::default();
        let e = sfpu_with_flags(
            &mut x,
            SfpuOp::Recip,
            no_legacy,
            &cfg,
            Arch::Blackhole,
            SfpuModel::Llk,
        )
        .unwrap_err();
        assert!(e.to_string().contains("legacy_compat = false"), "{e}");
        // llk:gelu refuses gelu<true> too; llk:exp leaves gelu to ideal, flags and all.
        let only_gelu = SfpuModel::parse(Some("llk:gelu")).unwrap();
        assert!(
            sfpu_with_flags(
                &mut x,
                SfpuOp::Gelu,
                fast,
                &cfg,
                Arch::WormholeB0,
                only_gelu
            )
            .is_err()
        );
        let only_exp = SfpuModel::parse(Some("llk:exp")).unwrap();
        let mut ideal = a.clone();
        sfpu(&mut ideal, SfpuOp::Gelu, &cfg);
        sfpu_with_flags(&mut x, SfpuOp::Gelu, fast, &cfg, Arch::WormholeB0, only_exp).unwrap();
        assert_eq!(x.v, ideal.v);
        // Every modelled combination runs the llk program (which differs from ideal), and so
        // does exp with the flags its non-approximate path does not read.
        for op in FLAGGED {
            for arch in [Arch::WormholeB0, Arch::Blackhole] {
                let mut y = a.clone();
                sfpu_with_flags(
                    &mut y,
                    op,
                    SfpuFlags::llk_modelled(op),
                    &cfg,
                    arch,
                    SfpuModel::Llk,
                )
                .unwrap();
                let mut i = a.clone();
                sfpu(&mut i, op, &cfg);
                assert_ne!(y.v, i.v, "{op:?} llk gave the ideal bits");
                let mut n_ok = 0;
                for flags in all_flags() {
                    let mut z = a.clone();
                    match sfpu_with_flags(&mut z, op, flags, &cfg, arch, SfpuModel::Llk) {
                        Ok(()) => {
                            n_ok += 1;
                            assert_eq!(z.v, y.v, "{op:?} {flags:?}");
                        }
                        Err(e) => {
                            assert!(
                                matches!(e, SfpuError::UnmodelledFlags { op: o, .. } if o == op),
                                "{e}"
                            );
                            assert_eq!(z.v, a.v);
                        }
                    }
                }
                // 16 combinations of approx, fast_and_approx, legacy_compat, skip_positive_check;
                // a flag an op does not read is free: exp, gelu, sigmoid, tanh and softplus
                // require one flag (8 pass), recip two (4), rsqrt three (2).
                let want = match op {
                    SfpuOp::Recip => 4,
                    SfpuOp::Rsqrt => 2,
                    _ => 8,
                };
                assert_eq!(n_ok, want, "{op:?}");
            }
        }
    }

    #[test]
    fn exp_scale_en_is_refused_in_every_model() {
        let cfg = FpuConfig::new(Fidelity::HiFi4, true, false);
        let flags = SfpuFlags {
            scale_en: true,
            ..SfpuFlags::default()
        };
        for model in [SfpuModel::Ideal, SfpuModel::Llk] {
            let mut x = random_tile(7);
            let e = sfpu_with_flags(&mut x, SfpuOp::Exp, flags, &cfg, Arch::WormholeB0, model)
                .unwrap_err();
            assert_eq!(
                e,
                SfpuError::UnsupportedFlag {
                    op: SfpuOp::Exp,
                    flag: "scale_en"
                }
            );
        }
    }

    #[test]
    fn store_rounds_to_bf16_nearest_even_in_16_bit_mode() {
        assert_eq!(store_to_dest(0x3F80_8000, false), 0x3F80_0000); // tie -> even
        assert_eq!(store_to_dest(0x3F81_8000, false), 0x3F82_0000); // tie -> even
        assert_eq!(store_to_dest(0x3F80_8001, false), 0x3F81_0000);
        assert_eq!(store_to_dest(0x0000_1234, false), 0); // denormal
        assert_eq!(store_to_dest(0x3F80_8001, true), 0x3F80_8001);
    }

    #[test]
    fn ops_on_a_tile_match_f64_within_bf16() {
        let cfg = FpuConfig::new(Fidelity::LoFi, false, false);
        let mut vals = [0f32; TILE_DATUMS];
        for (i, v) in vals.iter_mut().enumerate() {
            *v = (i as f32 - 511.5) / 97.0;
        }
        for op in [
            SfpuOp::Exp,
            SfpuOp::Gelu,
            SfpuOp::Sigmoid,
            SfpuOp::Tanh,
            SfpuOp::LeakyRelu(0.1),
            SfpuOp::Softplus,
            SfpuOp::Silu,
        ] {
            let mut d = DestTile::from_f32(&vals, &cfg);
            let input = d.to_f32(&cfg);
            sfpu(&mut d, op, &cfg);
            let out = d.to_f32(&cfg);
            for i in 0..TILE_DATUMS {
                let want = eval(op, input[i] as f64, false);
                // bf16 keeps 8 significant bits: half an ulp is 2^(e-8) <= 2^-8 |want| for
                // 2^e <= |want|; plus the f32 rounding before it (2^-24 relative).
                let tol = want.abs() * (2f64.powi(-8) + 2f64.powi(-24)) + 1e-30;
                assert!(
                    (out[i] as f64 - want).abs() <= tol,
                    "{op:?}({}) = {} want {want}",
                    input[i],
                    out[i]
                );
            }
        }
    }
}
