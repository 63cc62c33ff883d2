//! `conv_transpose1d` on the device as a **polyphase** convolution, for any stride, kernel size,
//! padding and output padding (HiFi-GAN: k16 s8 p4, k8 s4 p2, k4 s2 p1), weight `[Cin, Cout, K]`
//! as PyTorch, output length exactly PyTorch's `(T - 1) s - 2 p + k + output_padding`. No CPU
//! fallback, no zero-stuffing.
//!
//! # Derivation
//! PyTorch: `y[o] = sum_{i, j : i s + j - p = o} x[i] W[:, :, j]`. Write `p = a s + b`
//! (`0 <= b < s`) and split the taps by residue `r = j mod s`, `j = r + m s`. For phase `r` the
//! outputs are `o = (q - a) s + (r - b)` with `q = i + m`, so `y_r[q] = sum_m x[q - m] W_{r+ms}`
//! is a stride-1 convolution with `M = ceil(k / s)` taps (missing taps `r + m s >= k` are zero
//! weights). In output super-block `B` (rows `[32 s B, 32 s (B + 1))`) phase `r` covers exactly
//! the rows `32 s B + i s + r'` (`i < 32`), `r' = (r - b) mod s`, with
//! `q = 32 B + a + [r < b] + i`. So the shared gather-conv engine ([`super::conv`]) runs with
//! `P = s` phases, `M` taps, `block_stride = 32`, `row_step = 1`, `tap_step = -1`, phase offsets
//! `a + [r < b]`; its writer interleaves the phases' rows into the output tiles.
//!
//! # Split operands
//! [`Precision::weights_lo`] / [`Precision::activations_lo`] work as in [`super::conv`] (K
//! concatenation over `P` parts per input-channel tile; the dense rows are ordered (phase `r`,
//! tap `m`, input tile, part)). The in0 tiles of a block hold every phase, tap and part, so
//! large strides need much L1: Piper's first upsampler (256->128 k16 s8) does not fit with a
//! split and returns [`OpError::ShapeUnsupported`] naming L1.

use tt_safe::{DataFormat, Device, RunStats};

use super::common::{Activation, DeviceTensor, OpError, Precision, TILE, tiles};
use super::conv::{
    Chunk, ConvFormats, ConvPlan, Gather, Guard, SplitLayout, check_activation,
    check_bf16_activations, check_finite, check_guard_activation, check_input, check_split, plan,
    prepare_chunks, prepare_guard, run_guarded,
};

const OP: &str = "conv_transpose1d";

/// Shape parameters of a 1-D transposed convolution (PyTorch `ConvTranspose1d`, groups 1,
/// dilation 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTranspose1dParams {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride (upsampling factor).
    pub stride: usize,
    /// PyTorch `padding` (removed from both ends).
    pub padding: usize,
    /// PyTorch `output_padding` (added at the end; must be below the stride).
    pub output_padding: usize,
}

impl ConvTranspose1dParams {
    /// `(T - 1) s - 2 p + k + output_padding`, or `None` when that is not positive.
    pub fn output_len(&self, t_in: usize) -> Option<usize> {
        let full = (t_in.checked_sub(1)?) * self.stride + self.kernel + self.output_padding;
        full.checked_sub(2 * self.padding).filter(|&n| n > 0)
    }

    fn validate(&self) -> Result<(), OpError> {
        let bad = |what: String| Err(OpError::InvalidArgument { op: OP, what });
        if self.cin == 0 || self.cout == 0 || self.kernel == 0 || self.stride == 0 {
            return bad(format!(
                "cin {}, cout {}, kernel {} and stride {} must be positive",
                self.cin, self.cout, self.kernel, self.stride
            ));
        }
        if self.output_padding >= self.stride {
            return bad(format!(
                "output_padding {} must be smaller than the stride {} (as in PyTorch)",
                self.output_padding, self.stride
            ));
        }
        Ok(())
    }

    fn taps_per_phase(&self) -> usize {
        self.kernel.div_ceil(self.stride)
    }
}

/// A conv_transpose1d with its polyphase weights prepared on a device.
pub struct ConvTranspose1d {
    device: Device,
    params: ConvTranspose1dParams,
    precision: Precision,
    activation: Activation,
    /// The unchunked, unsplit gather (t_in / t_out filled per run).
    template: Gather,
    chunks: Vec<Chunk>,
    split: Option<SplitLayout>,
    /// The second computation with [`Precision::guard_dest_quirk`].
    guard: Option<Guard>,
}

impl std::fmt::Debug for ConvTranspose1d {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConvTranspose1d")
            .field("params", &self.params)
            .field("precision", &self.precision)
            .field("activation", &self.activation)
            .finish()
    }
}

impl ConvTranspose1d {
    /// Prepares the op: `weight` is PyTorch's `[cin, cout, kernel]` row-major, `bias` `[cout]`.
    pub fn new(
        device: &Device,
        params: ConvTranspose1dParams,
        weight: &[f32],
        bias: Option<&[f32]>,
        precision: Precision,
        activation: Activation,
    ) -> Result<ConvTranspose1d, OpError> {
        params.validate()?;
        precision.validate_fp32(OP)?;
        check_bf16_activations(OP, &precision)?;
        check_activation(OP, activation)?;
        check_guard_activation(OP, &precision, activation)?;
        let (cin, cout, k, s) = (params.cin, params.cout, params.kernel, params.stride);
        if weight.len() != cin * cout * k {
            return Err(OpError::ShapeMismatch {
                op: OP,
                what: format!(
                    "weight has {} values, [cin {cin}, cout {cout}, k {k}] needs {}",
                    weight.len(),
                    cin * cout * k
                ),
            });
        }
        check_finite(OP, "weight", weight)?;
        let split = check_split(OP, &precision)?;
        if let Some(b) = bias {
            if b.len() != cout {
                return Err(OpError::ShapeMismatch {
                    op: OP,
                    what: format!("bias has {} values, cout is {cout}", b.len()),
                });
            }
            check_finite(OP, "bias", b)?;
        }
        let m_taps = params.taps_per_phase();
        let (a, b) = ((params.padding / s) as i64, params.padding % s);
        let template = Gather {
            op: OP,
            t_in: 1,
            t_out: 1,
            cin,
            cout,
            phases: s,
            taps: m_taps,
            block_stride: TILE as i64,
            row_step: 1,
            tap_step: -1,
            offsets: (0..s).map(|r| a + i64::from(r < b)).collect(),
            out_rows: (0..s).map(|r| ((r + s - b) % s) as u32).collect(),
            cin_ranges: vec![(0, tiles(cin) as u32); tiles(cout)],
            pre: Activation::None,
            residual: false,
            // Per run the input's format replaces this (see run).
            formats: ConvFormats::uniform(precision.activations),
            exact: ConvFormats::uniform(precision.activations).exact(&precision, false),
        };
        // Dense rows ((r * M + m) * cin_p + ci), columns co: W[ci, co, r + m s].
        let cin_p = tiles(cin) * TILE;
        let mut dense = vec![0f32; s * m_taps * cin_p * cout];
        for r in 0..s {
            for m in 0..m_taps {
                let j = r + m * s;
                if j >= k {
                    continue;
                }
                for ci in 0..cin {
                    let row = (r * m_taps + m) * cin_p + ci;
                    for co in 0..cout {
                        dense[row * cout + co] = weight[(ci * cout + co) * k + j];
                    }
                }
            }
        }
        // With a split: row blocks (r * M + m, input tile, part), see SplitLayout::expand.
        let guard = prepare_guard(
            device,
            &template,
            &precision,
            &dense,
            s * m_taps,
            bias,
            false,
        )?;
        let chunks = prepare_chunks(
            device,
            &template,
            split.as_ref(),
            &precision,
            dense,
            s * m_taps,
            bias,
            false,
        )?;
        Ok(ConvTranspose1d {
            device: device.clone(),
            params,
            precision,
            activation,
            template,
            chunks,
            split,
            guard,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &ConvTranspose1dParams {
        &self.params
    }

    fn gather(&self, t_in: usize) -> Result<Gather, OpError> {
        let t_out = self
            .params
            .output_len(t_in)
            .ok_or_else(|| OpError::ShapeMismatch {
                op: OP,
                what: format!(
                    "input length {t_in} gives no output with kernel {}, stride {}, padding {}",
                    self.params.kernel, self.params.stride, self.params.padding
                ),
            })?;
        Ok(Gather {
            t_in,
            t_out,
            ..self.template.clone()
        })
    }

    /// The device plan for an input of `t_in` steps (input and output in
    /// `precision.activations`).
    pub fn plan(&self, t_in: usize) -> Result<ConvPlan, OpError> {
        let g = self.gather(t_in)?;
        let mut g = Gather {
            t_in: g.t_in,
            t_out: g.t_out,
            ..self.chunks[0].template.clone()
        };
        if self.chunks.len() > 1 {
            g.formats.output = DataFormat::Float32;
            g.exact = true;
        }
        plan(
            &g,
            &self.precision,
            self.device.grid().num_cores(),
            self.device.info().l1_user_bytes(),
            self.device.info().max_runtime_args as usize,
        )
    }

    /// Runs on `input` (`[T_in, cin]`, time-major, bf16 or with `fp32_acc` Float32); returns
    /// `[T_out, cout]` in `precision.activations`. With split operands the stats cover the split
    /// launch and the conv launch.
    pub fn run(&self, input: &DeviceTensor) -> Result<(DeviceTensor, RunStats), OpError> {
        check_input(OP, &self.device, input, self.params.cin, &self.precision)?;
        let g = self.gather(input.rows())?;
        run_guarded(
            &self.device,
            &self.chunks,
            self.guard.as_ref(),
            g.t_in,
            g.t_out,
            Activation::None,
            self.split.as_ref(),
            &self.precision,
            self.activation,
            input,
            None,
            false,
        )
    }

    /// Input-channel chunks the op runs as (one gather launch each, partial sums added by
    /// exact fp32 eltwise launches): 1 unless split operands do not fit L1 in one launch.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }
}

/// f64 reference of PyTorch `ConvTranspose1d` (groups 1, dilation 1) on a time-major input
/// `x [t_in, cin]`, weight `[cin, cout, k]`: `(y [t_out, cout], s_abs [t_out, cout])`.
pub fn conv_transpose1d_reference(
    p: &ConvTranspose1dParams,
    x: &[f32],
    t_in: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
) -> (Vec<f64>, Vec<f64>) {
    let t_out = p.output_len(t_in).unwrap_or(0);
    let mut y = vec![0f64; t_out * p.cout];
    let mut s = vec![0f64; t_out * p.cout];
    if let Some(b) = bias {
        for t in 0..t_out {
            for co in 0..p.cout {
                y[t * p.cout + co] = f64::from(b[co]);
            }
        }
    }
    // Scatter form, straight from the definition: input i, tap j lands on o = i s + j - p.
    for i in 0..t_in {
        for j in 0..p.kernel {
            let o = (i * p.stride + j) as i64 - p.padding as i64;
            if o < 0 || o >= t_out as i64 {
                continue;
            }
            let o = o as usize;
            for ci in 0..p.cin {
                let xv = f64::from(x[i * p.cin + ci]);
                for co in 0..p.cout {
                    let prod = xv * f64::from(weight[(ci * p.cout + co) * p.kernel + j]);
                    y[o * p.cout + co] += prod;
                    s[o * p.cout + co] += prod.abs();
                }
            }
        }
    }
    (y, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_len_is_pytorch_formula() {
        let p = |k, s, pad, op| ConvTranspose1dParams {
            cin: 1,
            cout: 1,
            kernel: k,
            stride: s,
            padding: pad,
            output_padding: op,
        };
        assert_eq!(p(16, 8, 4, 0).output_len(345), Some(2760));
        assert_eq!(p(8, 4, 2, 0).output_len(2760 * 8), Some(88320));
        assert_eq!(p(4, 2, 1, 1).output_len(5), Some(11));
        assert_eq!(p(2, 1, 3, 0).output_len(2), None);
    }

    #[test]
    fn phase_rows_cover_each_output_once() {
        // Every output row of a super-block is produced by exactly one (phase, i).
        for (s, pad) in [(8usize, 4usize), (4, 2), (2, 1), (3, 5), (1, 0), (5, 0)] {
            let b = pad % s;
            let mut seen = vec![0u32; 32 * s];
            for r in 0..s {
                let rp = (r + s - b) % s;
                for i in 0..32 {
                    seen[i * s + rp] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "s {s} p {pad}");
        }
    }

    #[test]
    fn reference_small_case_by_hand() {
        // cin = cout = 1, k 2, s 2, p 0: y = [x0 w0, x0 w1, x1 w0, x1 w1] + b.
        let p = ConvTranspose1dParams {
            cin: 1,
            cout: 1,
            kernel: 2,
            stride: 2,
            padding: 0,
            output_padding: 0,
        };
        let (y, _) = conv_transpose1d_reference(&p, &[1.0, 2.0], 2, &[3.0, 5.0], Some(&[1.0]));
        assert_eq!(y, vec![4.0, 6.0, 7.0, 11.0]);
    }
}
