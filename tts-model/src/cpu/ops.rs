//! Time-major (`[T, C]`, row-major) f32 kernels of the CPU backend: convolutions as GEMM over an
//! implicit or blocked im2col with fused bias, residual accumulation and activations; transposed
//! convolutions as polyphase GEMM; layer norm; elementwise activations. Row blocks run in parallel
//! on the current rayon pool.

use rayon::prelude::*;

use crate::error::{Result, TtsError};
use crate::sys::{MatMut, MatRef, sgemm_bias};
use crate::voice::Weights;

/// Elementwise activation applied to a conv's input (pre) or output (post).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// Identity.
    None,
    /// max(x, 0).
    Relu,
    /// x if x >= 0 else slope * x.
    Leaky(f32),
    /// tanh.
    Tanh,
}

impl Act {
    /// In place, one specialised loop per variant (no per-element dispatch).
    fn apply_slice(self, v: &mut [f32]) {
        match self {
            Act::None => {}
            Act::Relu => v.iter_mut().for_each(|x| *x = x.max(0.0)),
            Act::Leaky(s) => v
                .iter_mut()
                .for_each(|x| *x = if *x >= 0.0 { *x } else { *x * s }),
            Act::Tanh => v.iter_mut().for_each(|x| *x = fast_tanh(*x)),
        }
    }

    /// `dst = act(src)`, one specialised loop per variant.
    fn apply_into(self, dst: &mut [f32], src: &[f32]) {
        match self {
            Act::None => dst.copy_from_slice(src),
            Act::Relu => dst.iter_mut().zip(src).for_each(|(d, x)| *d = x.max(0.0)),
            Act::Leaky(s) => dst
                .iter_mut()
                .zip(src)
                .for_each(|(d, &x)| *d = if x >= 0.0 { x } else { x * s }),
            Act::Tanh => dst
                .iter_mut()
                .zip(src)
                .for_each(|(d, x)| *d = fast_tanh(*x)),
        }
    }
}

/// Rows per parallel block for `rows` output rows.
fn block_rows(rows: usize, cap: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    rows.div_ceil(4 * threads).clamp(32, cap).min(rows.max(1))
}

/// A 1-D convolution (groups = 1) prepared for GEMM: weight rows are `(tap, in-channel)`.
#[derive(Debug, Clone)]
pub struct Conv {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel size.
    pub k: usize,
    /// Dilation.
    pub dil: usize,
    /// Left padding ("same" convs: dil*(k-1)/2).
    pub pad_l: usize,
    /// Right padding.
    pub pad_r: usize,
    /// `[k * cin, cout]`.
    pub w: Vec<f32>,
    /// `[cout]` (zeros when the module has no bias).
    pub b: Vec<f32>,
}

impl Conv {
    /// Load `<module>.weight` `[cout, cin, k]` (and `.bias` if present), "same" padding.
    pub fn load(w: &Weights, module: &str, cin: usize, cout: usize, dil: usize) -> Result<Self> {
        let name = format!("{module}.weight");
        let dims = w.dims(&name)?.to_vec();
        if dims.len() != 3 || dims[0] != cout || dims[1] != cin {
            return Err(TtsError::Weight {
                name,
                detail: format!("shape {dims:?}, expected [{cout}, {cin}, k]"),
            });
        }
        let k = dims[2];
        let raw = w.get(&name)?.to_f32();
        let bname = format!("{module}.bias");
        let b = if w.has(&bname) {
            w.f32(&bname, &[cout])?
        } else {
            vec![0.0; cout]
        };
        let dil = w.conv_attrs(module).map_or(dil, |a| a.dilation);
        let total = dil * (k - 1);
        Ok(Self::from_raw(
            cin,
            cout,
            k,
            dil,
            total / 2,
            total - total / 2,
            &raw,
            b,
        ))
    }

    /// Build from a PyTorch-layout weight `[cout, cin, k]`.
    #[allow(clippy::too_many_arguments)]
    pub fn from_raw(
        cin: usize,
        cout: usize,
        k: usize,
        dil: usize,
        pad_l: usize,
        pad_r: usize,
        raw: &[f32],
        b: Vec<f32>,
    ) -> Self {
        let mut w = vec![0.0; k * cin * cout];
        for co in 0..cout {
            for ci in 0..cin {
                for kk in 0..k {
                    w[(kk * cin + ci) * cout + co] = raw[(co * cin + ci) * k + kk];
                }
            }
        }
        Self {
            cin,
            cout,
            k,
            dil,
            pad_l,
            pad_r,
            w,
            b,
        }
    }

    /// Multiply weights and bias by `s` (folds a constant scale into the layer).
    pub fn scale(&mut self, s: f32) {
        self.w
            .iter_mut()
            .chain(self.b.iter_mut())
            .for_each(|x| *x *= s);
    }

    /// Keep only output channels `range` (splitting a fused conv).
    pub fn out_slice(&self, range: std::ops::Range<usize>) -> Self {
        let n = range.len();
        let mut w = Vec::with_capacity(self.k * self.cin * n);
        for r in 0..self.k * self.cin {
            w.extend_from_slice(&self.w[r * self.cout + range.start..r * self.cout + range.end]);
        }
        Self {
            cout: n,
            w,
            b: self.b[range].to_vec(),
            ..*self
        }
    }

    /// `out[t] (+)= post(bias + extra + sum_{tap, ci} w * pre(x[t + tap*dil - pad_l, ci]))`.
    ///
    /// `x`: `t_len` rows of `cin` values with row stride `x_rs`; `out`: rows of `cout` values with
    /// row stride `out_rs`. With `accumulate`, the result is added to `out` (post must be `None`).
    /// `pad` is a scratch buffer reused across calls.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        x: &[f32],
        x_rs: usize,
        t_len: usize,
        pre: Act,
        out: &mut [f32],
        out_rs: usize,
        accumulate: bool,
        post: Act,
        extra_bias: Option<&[f32]>,
        pad: &mut Vec<f32>,
    ) {
        if t_len == 0 {
            return;
        }
        let bias: Vec<f32>;
        let bias: &[f32] = match extra_bias {
            Some(e) => {
                bias = self.b.iter().zip(e).map(|(a, b)| a + b).collect();
                &bias
            }
            None => &self.b,
        };
        // Source rows: either x itself (1x1 conv, no pre-activation) or a padded, activated copy.
        let direct = self.k == 1 && pre == Act::None && self.pad_l == 0;
        if direct {
            self.gemm_from(
                x, x_rs, false, t_len, out, out_rs, accumulate, post, bias, false,
            );
        } else {
            self.fill_pad(x, x_rs, t_len, pre, pad);
            self.gemm_from(
                pad, self.cin, true, t_len, out, out_rs, accumulate, post, bias, false,
            );
        }
    }

    /// In-place residual step `x += conv(pre(x))` (`cin == cout`, contiguous rows).
    pub fn residual(&self, x: &mut [f32], t_len: usize, pre: Act, pad: &mut Vec<f32>) {
        assert_eq!(
            self.cin, self.cout,
            "residual conv must keep the channel count"
        );
        if t_len == 0 {
            return;
        }
        self.fill_pad(x, self.cin, t_len, pre, pad);
        self.gemm_from(
            pad,
            self.cin,
            true,
            t_len,
            x,
            self.cout,
            true,
            Act::None,
            &self.b,
            false,
        );
    }

    /// Serial windowed step for time tiles (no rayon inside): fill `pad` with `pre(x)` for the
    /// padded input of output rows `oa..ob` (global row indices). `x` holds global rows `xa..xb`
    /// (contiguous, `cin` per row); rows outside `xa..xb` read as zeros, which is exact when
    /// `xa..xb` covers every row of the sequence that the window needs (its ends are the sequence
    /// ends or lie at least `pad_l` / `pad_r` rows beyond the window).
    #[allow(clippy::too_many_arguments)]
    pub fn fill_window(
        &self,
        x: &[f32],
        xa: usize,
        xb: usize,
        oa: usize,
        ob: usize,
        pre: Act,
        pad: &mut Vec<f32>,
    ) {
        let (cin, d) = (self.cin, self.dil);
        let rows = self.pad_l + (ob - oa) + self.pad_r;
        let seg_rows = rows.div_ceil(d);
        pad.resize(seg_rows * d * cin, 0.0);
        let g0 = oa as isize - self.pad_l as isize;
        for p in 0..seg_rows * d {
            let dst = (p % d * seg_rows + p / d) * cin;
            let row = &mut pad[dst..dst + cin];
            let g = g0 + p as isize;
            if g >= xa as isize && g < xb as isize {
                let s = (g as usize - xa) * cin;
                pre.apply_into(row, &x[s..s + cin]);
            } else {
                row.fill(0.0);
            }
        }
    }

    /// Serial: `out[t] = post(bias + conv(pre(x)))` for output rows `oa..ob` (global indices) from
    /// `x` holding global rows `xa..xb` (see [`Conv::fill_window`] for when that is exact).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_window(
        &self,
        x: &[f32],
        xa: usize,
        xb: usize,
        oa: usize,
        ob: usize,
        pre: Act,
        out: &mut [f32],
        out_rs: usize,
        post: Act,
        pad: &mut Vec<f32>,
    ) {
        if ob <= oa {
            return;
        }
        self.fill_window(x, xa, xb, oa, ob, pre, pad);
        self.gemm_from(
            pad,
            self.cin,
            true,
            ob - oa,
            out,
            out_rs,
            false,
            post,
            &self.b,
            true,
        );
    }

    /// Serial: `out[t] += bias + conv(pad)` for the `ob - oa` rows of the window `pad` was filled
    /// for by [`Conv::fill_window`] (`out` rows of stride `out_rs`).
    pub fn gemm_window(&self, pad: &[f32], t_len: usize, out: &mut [f32], out_rs: usize) {
        if t_len == 0 {
            return;
        }
        self.gemm_from(
            pad,
            self.cin,
            true,
            t_len,
            out,
            out_rs,
            true,
            Act::None,
            &self.b,
            true,
        );
    }

    /// Write `pre(x)` with zero padding into `pad`, split by dilation phase: padded row `p` goes to
    /// segment `p % dil`, row `p / dil`. Within a segment the taps of a dilated conv are adjacent rows,
    /// so every conv (dilated or not) reads its im2col rows straight from `pad` (no im2col copy).
    fn fill_pad(&self, x: &[f32], x_rs: usize, t_len: usize, pre: Act, pad: &mut Vec<f32>) {
        let (cin, d) = (self.cin, self.dil);
        let rows = self.pad_l + t_len + self.pad_r;
        let seg_rows = rows.div_ceil(d);
        pad.clear();
        pad.resize(seg_rows * d * cin, 0.0);
        if d == 1 {
            let body = &mut pad[self.pad_l * cin..(self.pad_l + t_len) * cin];
            body.par_chunks_mut(cin * 256)
                .enumerate()
                .for_each(|(bi, chunk)| {
                    let t0 = bi * 256;
                    if x_rs == cin {
                        pre.apply_into(chunk, &x[t0 * cin..t0 * cin + chunk.len()]);
                    } else {
                        for (r, row) in chunk.chunks_mut(cin).enumerate() {
                            let t = t0 + r;
                            pre.apply_into(row, &x[t * x_rs..t * x_rs + cin]);
                        }
                    }
                });
        } else {
            let pl = self.pad_l;
            pad.par_chunks_mut(seg_rows * cin)
                .enumerate()
                .for_each(|(r, seg)| {
                    for (j, row) in seg.chunks_mut(cin).enumerate() {
                        let p = r + d * j;
                        if p >= pl && p < pl + t_len {
                            let t = p - pl;
                            pre.apply_into(row, &x[t * x_rs..t * x_rs + cin]);
                        }
                    }
                });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn gemm_from(
        &self,
        src: &[f32],
        src_rs: usize,
        padded: bool,
        t_len: usize,
        out: &mut [f32],
        out_rs: usize,
        accumulate: bool,
        post: Act,
        bias: &[f32],
        serial: bool,
    ) {
        let (cin, cout, k) = (self.cin, self.cout, self.k);
        let out = &mut out[..(t_len - 1) * out_rs + cout];
        let d = if padded { self.dil } else { 1 };
        let seg_rows = if padded {
            (self.pad_l + t_len + self.pad_r).div_ceil(d)
        } else {
            0
        };
        let kk = k * cin;
        // Blocks of `ub` rows per phase = `ub * d` output rows, each a contiguous chunk of `out`.
        let ub = if serial {
            t_len.div_ceil(d)
        } else {
            block_rows(t_len.div_ceil(d), 1024)
        };
        out.par_chunks_mut(ub * d * out_rs)
            .enumerate()
            .for_each(|(bi, c)| {
                let t0 = bi * ub * d;
                let rows = (ub * d).min(t_len - t0);
                if cout == 1 {
                    // The GEMV path below adds to the rows; the GEMM path adds the bias itself.
                    for r in 0..rows {
                        let row = &mut c[r * out_rs..r * out_rs + cout];
                        if accumulate {
                            row.iter_mut().zip(bias).for_each(|(o, b)| *o += b);
                        } else {
                            row.copy_from_slice(bias);
                        }
                    }
                }
                let u0 = bi * ub;
                for ph in 0..d {
                    // Output rows t = ph + d*u (u0 <= u < u0 + ub, t < t_len) read segment `ph`'s
                    // rows u .. u + k (padded index t + tap*d = ph + d*(u + tap)).
                    let n_u = t_len
                        .saturating_sub(ph)
                        .div_ceil(d)
                        .saturating_sub(u0)
                        .min(ub);
                    if n_u == 0 {
                        continue;
                    }
                    let (a, a_rs) = if padded {
                        (&src[(ph * seg_rows + u0) * cin..], cin)
                    } else {
                        (&src[t0 * src_rs..], src_rs)
                    };
                    if cout == 1 {
                        // GEMV: contiguous dot products beat a 1-column GEMM.
                        for u in 0..n_u {
                            c[(ph + d * u) * out_rs] += dot(&a[u * a_rs..u * a_rs + kk], &self.w);
                        }
                    } else {
                        // Each output row belongs to exactly one phase: the bias enters once.
                        sgemm_bias(
                            n_u,
                            kk,
                            cout,
                            MatRef {
                                data: a,
                                rs: a_rs,
                                cs: 1,
                            },
                            MatRef {
                                data: &self.w,
                                rs: cout,
                                cs: 1,
                            },
                            bias,
                            accumulate,
                            MatMut {
                                data: &mut c[ph * out_rs..],
                                rs: d * out_rs,
                                cs: 1,
                            },
                        );
                    }
                }
                if post != Act::None {
                    for r in 0..rows {
                        post.apply_slice(&mut c[r * out_rs..r * out_rs + cout]);
                    }
                }
            });
    }

    /// Convenience: contiguous input and output, returns a new `[t_len, cout]` buffer.
    pub fn run(
        &self,
        x: &[f32],
        t_len: usize,
        pre: Act,
        post: Act,
        pad: &mut Vec<f32>,
    ) -> Vec<f32> {
        let mut out = vec![0.0; t_len * self.cout];
        self.forward(
            x, self.cin, t_len, pre, &mut out, self.cout, false, post, None, pad,
        );
        out
    }
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// A transposed 1-D convolution with `kernel - 2*pad == stride`, run as `stride` phase GEMMs.
#[derive(Debug, Clone)]
pub struct ConvT {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Stride (upsampling factor).
    pub s: usize,
    /// Per phase: (smallest input offset, number of taps, weight `[taps*cin, cout]`).
    phases: Vec<(isize, usize, Vec<f32>)>,
    /// Rows of zero padding needed before / after the input.
    front: usize,
    back: usize,
    b: Vec<f32>,
}

impl ConvT {
    /// Load `<module>.weight` `[cin, cout, k]` and `.bias`.
    pub fn load(
        w: &Weights,
        module: &str,
        cin: usize,
        cout: usize,
        k: usize,
        s: usize,
        p: usize,
    ) -> Result<Self> {
        let raw = w.f32(&format!("{module}.weight"), &[cin, cout, k])?;
        let b = w.f32(&format!("{module}.bias"), &[cout])?;
        Ok(Self::from_raw(cin, cout, k, s, p, &raw, b))
    }

    /// Build from the PyTorch layout `[cin, cout, k]`. Output length is `stride * input length`.
    pub fn from_raw(
        cin: usize,
        cout: usize,
        k: usize,
        s: usize,
        p: usize,
        raw: &[f32],
        b: Vec<f32>,
    ) -> Self {
        // Output o = q*s + r receives input t = q + (r + p - tap)/s for taps with tap = r + p (mod s).
        let mut phases = Vec::with_capacity(s);
        let (mut front, mut back) = (0usize, 0usize);
        for r in 0..s {
            let mut taps: Vec<(isize, usize)> = (0..k)
                .filter(|&tap| tap % s == (r + p) % s)
                .map(|tap| (((r + p) as isize - tap as isize) / s as isize, tap))
                .collect();
            taps.sort();
            let off0 = taps.first().map_or(0, |t| t.0);
            let n = taps.len();
            let mut wr = vec![0.0; n * cin * cout];
            for (j, &(off, tap)) in taps.iter().enumerate() {
                debug_assert_eq!(off, off0 + j as isize);
                for ci in 0..cin {
                    for co in 0..cout {
                        wr[(j * cin + ci) * cout + co] = raw[(ci * cout + co) * k + tap];
                    }
                }
            }
            if n > 0 {
                front = front.max((-off0).max(0) as usize);
                back = back.max((off0 + n as isize - 1).max(0) as usize);
            }
            phases.push((off0, n, wr));
        }
        Self {
            cin,
            cout,
            s,
            phases,
            front,
            back,
            b,
        }
    }

    /// `out [t_len*s, cout] = bias + convT(pre(x))`, `x` `[t_len, cin]` contiguous.
    pub fn forward(&self, x: &[f32], t_len: usize, pre: Act, pad: &mut Vec<f32>) -> Vec<f32> {
        let mut out = Vec::new();
        self.forward_into(x, t_len, pre, pad, &mut out);
        out
    }

    /// As [`ConvT::forward`], writing into `out` (resized; its allocation is reused).
    pub fn forward_into(
        &self,
        x: &[f32],
        t_len: usize,
        pre: Act,
        pad: &mut Vec<f32>,
        out: &mut Vec<f32>,
    ) {
        let (cin, cout, s) = (self.cin, self.cout, self.s);
        let rows = self.front + t_len + self.back;
        pad.clear();
        pad.resize(rows * cin, 0.0);
        pad[self.front * cin..(self.front + t_len) * cin]
            .par_chunks_mut(cin * 256)
            .zip(x[..t_len * cin].par_chunks(cin * 256))
            .for_each(|(d, s)| pre.apply_into(d, s));
        out.clear();
        out.resize(t_len * s * cout, 0.0);
        let rb = block_rows(t_len, 1024);
        let src = pad.as_slice();
        out.par_chunks_mut(rb * s * cout)
            .enumerate()
            .for_each(|(bi, c)| {
                let q0 = bi * rb;
                let rows = rb.min(t_len - q0);
                for (r, (off0, n, wr)) in self.phases.iter().enumerate() {
                    if *n == 0 {
                        // No taps land on this phase: its rows are the bias alone.
                        for row in c.chunks_mut(cout).skip(r).step_by(s) {
                            row.copy_from_slice(&self.b);
                        }
                        continue;
                    }
                    let start = (q0 as isize + off0 + self.front as isize) as usize * cin;
                    // Phase r writes output rows q*s + r only: the bias enters once per row.
                    sgemm_bias(
                        rows,
                        n * cin,
                        cout,
                        MatRef {
                            data: &src[start..],
                            rs: cin,
                            cs: 1,
                        },
                        MatRef {
                            data: wr,
                            rs: cout,
                            cs: 1,
                        },
                        &self.b,
                        false,
                        MatMut {
                            data: &mut c[r * cout..],
                            rs: s * cout,
                            cs: 1,
                        },
                    );
                }
            });
    }
}

/// Depthwise 1-D convolution (groups = channels) with "same" padding, direct loops.
#[derive(Debug, Clone)]
pub struct DwConv {
    c: usize,
    k: usize,
    dil: usize,
    /// `[k, c]`.
    w: Vec<f32>,
    b: Vec<f32>,
}

impl DwConv {
    /// Load `<module>.weight` `[c, 1, k]` and `.bias`.
    pub fn load(w: &Weights, module: &str, c: usize, k: usize, dil: usize) -> Result<Self> {
        let raw = w.f32(&format!("{module}.weight"), &[c, 1, k])?;
        let b = w.f32(&format!("{module}.bias"), &[c])?;
        let dil = w.conv_attrs(module).map_or(dil, |a| a.dilation);
        let mut wt = vec![0.0; k * c];
        for ch in 0..c {
            for kk in 0..k {
                wt[kk * c + ch] = raw[ch * k + kk];
            }
        }
        Ok(Self {
            c,
            k,
            dil,
            w: wt,
            b,
        })
    }

    /// `[t_len, c]` -> `[t_len, c]`.
    pub fn run(&self, x: &[f32], t_len: usize) -> Vec<f32> {
        let (c, pad) = (self.c, self.dil * (self.k - 1) / 2);
        let mut out = vec![0.0; t_len * c];
        out.par_chunks_mut(c * 32)
            .enumerate()
            .for_each(|(bi, blk)| {
                for (r, o) in blk.chunks_mut(c).enumerate() {
                    let t = bi * 32 + r;
                    o.copy_from_slice(&self.b);
                    for kk in 0..self.k {
                        let src = t as isize + (kk * self.dil) as isize - pad as isize;
                        if src < 0 || src as usize >= t_len {
                            continue;
                        }
                        let xs = &x[src as usize * c..(src as usize + 1) * c];
                        for ((o, xv), wv) in o.iter_mut().zip(xs).zip(&self.w[kk * c..(kk + 1) * c])
                        {
                            *o += xv * wv;
                        }
                    }
                }
            });
        out
    }
}

/// Layer norm over channels (biased variance, eps 1e-5), computed as ONNX's decomposition does.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl LayerNorm {
    /// Load `<module>.gamma` / `.beta`.
    pub fn load(w: &Weights, module: &str, c: usize) -> Result<Self> {
        Ok(Self {
            gamma: w.f32(&format!("{module}.gamma"), &[c])?,
            beta: w.f32(&format!("{module}.beta"), &[c])?,
        })
    }

    /// Normalise each row of `x` (`[t, c]`) in place.
    pub fn run(&self, x: &mut [f32]) {
        self.run_act(x, false);
    }

    /// Normalise each row, then apply GELU ([`gelu`]) elementwise.
    pub fn run_gelu(&self, x: &mut [f32]) {
        self.run_act(x, true);
    }

    fn run_act(&self, x: &mut [f32], gelu: bool) {
        let c = self.gamma.len();
        x.par_chunks_mut(c * 32).for_each(|blk| {
            for row in blk.chunks_mut(c) {
                let mean = row.iter().sum::<f32>() / c as f32;
                let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / c as f32;
                let den = (var + 1e-5).sqrt();
                for ((v, g), b) in row.iter_mut().zip(&self.gamma).zip(&self.beta) {
                    *v = (*v - mean) / den * g + b;
                }
                if gelu {
                    gelu_slice(row);
                }
            }
        });
    }
}

/// `v = gelu(v)` elementwise, compiled per x86-64 SIMD level (picked at run time).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+sse4.1"
))]
pub fn gelu_slice(v: &mut [f32]) {
    for x in v.iter_mut() {
        *x = gelu(*x);
    }
}

/// WaveNet gate `o = tanh(t) * sigmoid(s)` elementwise, compiled per x86-64 SIMD level.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+sse4.1"
))]
pub fn gate_slice(o: &mut [f32], t: &[f32], s: &[f32]) {
    for ((o, t), s) in o.iter_mut().zip(t).zip(s) {
        *o = fast_tanh(*t) * sigmoid(*s);
    }
}

/// `v = exp(v - m)` elementwise (softmax numerator), compiled per x86-64 SIMD level.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+sse4.1"
))]
pub fn exp_sub_slice(v: &mut [f32], m: f32) {
    for x in v.iter_mut() {
        *x = exp_fast(*x - m);
    }
}

/// GELU: 0.5 x (1 + erf(x / sqrt 2)) with [`erf_fast`] (absolute error below 1e-6 (1 + |gelu|),
/// checked against f64 in the tests).
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    x * 0.5 * (1.0 + erf_fast(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7 in exact arithmetic) on
/// [`exp_fast`]; plain arithmetic, so loops over it vectorise.
#[inline(always)]
pub fn erf_fast(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let p = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_7) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    (1.0 - p * exp_fast(-a * a)).copysign(x)
}

/// `exp` in plain f32 arithmetic (Cephes' `expf`: rounding to the nearest power of two with a
/// magic constant, a two-part ln 2, a degree-6 polynomial on [-ln2/2, ln2/2], the power of two built
/// from its bits). No calls or branches, so loops over it vectorise; about 1 ulp (checked against
/// f64 in the tests). Inputs are clamped to [-87, 88] (results stay normal and finite: exp(-87) is
/// 1.6e-38 where the true value may be smaller, which no caller can tell from 0).
#[inline(always)]
pub fn exp_fast(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: x + MAGIC - MAGIC rounds x to an integer
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    let r = (x - n * 0.693_359_4) - n * -2.121_944_4e-4;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5; // Cephes: 5.0000001201e-1, which is 0.5 in f32
    let y = p * (r * r) + r + 1.0;
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// tanh through one `exp`: `sign(x) (1 - e) / (1 + e)` with `e = exp(-2|x|)` ([`exp_fast`]);
/// absolute error below 2e-7 (checked against f64 in the tests).
#[inline(always)]
pub fn fast_tanh(x: f32) -> f32 {
    let e = exp_fast(-2.0 * x.abs());
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

/// Logistic sigmoid ([`exp_fast`]).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_fast(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rnd(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Direct f64 reference of a PyTorch Conv1d ([cout, cin, k] weight) with zero padding.
    #[allow(clippy::too_many_arguments)]
    fn conv_ref(
        x: &[f32],
        t: usize,
        cin: usize,
        cout: usize,
        k: usize,
        dil: usize,
        pl: usize,
        w: &[f32],
        b: &[f32],
    ) -> Vec<f64> {
        let mut y = vec![0f64; t * cout];
        for tt in 0..t {
            for co in 0..cout {
                let mut acc = b[co] as f64;
                for ci in 0..cin {
                    for kk in 0..k {
                        let s = tt as isize + (kk * dil) as isize - pl as isize;
                        if s >= 0 && (s as usize) < t {
                            acc += w[(co * cin + ci) * k + kk] as f64
                                * x[s as usize * cin + ci] as f64;
                        }
                    }
                }
                y[tt * cout + co] = acc;
            }
        }
        y
    }

    #[test]
    fn conv_matches_reference_all_paths() {
        // (cin, cout, k, dil, t): implicit im2col (dil 1), blocked im2col (dil > 1), 1x1, GEMV (cout 1).
        for &(cin, cout, k, dil, t) in &[
            (13, 7, 5, 1, 301),
            (9, 11, 7, 3, 517),
            (17, 5, 1, 1, 77),
            (19, 1, 7, 1, 300),
        ] {
            let raw = rnd(cout * cin * k, 1);
            let b = rnd(cout, 2);
            let x = rnd(t * cin, 3);
            let pad = dil * (k - 1) / 2;
            let conv = Conv::from_raw(cin, cout, k, dil, pad, dil * (k - 1) - pad, &raw, b.clone());
            let mut scratch = Vec::new();
            let y = conv.run(&x, t, Act::None, Act::None, &mut scratch);
            let r = conv_ref(&x, t, cin, cout, k, dil, pad, &raw, &b);
            // f32 sums of <= 133 products of magnitude < 1: |error| < 1e-5.
            for (a, b) in y.iter().zip(&r) {
                assert!(
                    (*a as f64 - b).abs() < 1e-5,
                    "{a} vs {b} for {:?}",
                    (cin, cout, k, dil, t)
                );
            }
            // accumulate + pre-activation + extra bias
            let xa: Vec<f32> = x
                .iter()
                .map(|v| if *v >= 0.0 { *v } else { 0.1 * v })
                .collect();
            let ra = conv_ref(&xa, t, cin, cout, k, dil, pad, &raw, &b);
            let extra = rnd(cout, 4);
            let mut acc = rnd(t * cout, 5);
            let acc0 = acc.clone();
            conv.forward(
                &x,
                cin,
                t,
                Act::Leaky(0.1),
                &mut acc,
                cout,
                true,
                Act::None,
                Some(&extra),
                &mut scratch,
            );
            for i in 0..t * cout {
                let want = ra[i] + acc0[i] as f64 + extra[i % cout] as f64;
                assert!((acc[i] as f64 - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn fast_tanh_and_gelu_match_f64() {
        for i in -40000..=40000 {
            let x = i as f32 * 2.5e-4 * (1.0 + (i as f32 * 0.37).sin() * 0.1);
            let t = (x as f64).tanh();
            assert!((fast_tanh(x) as f64 - t).abs() < 2e-7, "tanh({x})");
            let g = 0.5 * x as f64 * (1.0 + libm::erf(x as f64 / std::f64::consts::SQRT_2));
            assert!(
                (gelu(x) as f64 - g).abs() < 1e-6 * (1.0 + g.abs()),
                "gelu({x})"
            );
        }
        // exp: relative error against f64 over the whole useful range (and the clamped ends).
        let mut worst = 0f64;
        for i in -870_000..=880_000 {
            let x = i as f32 * 1e-4;
            let want = (x as f64).exp();
            worst = worst.max(((exp_fast(x) as f64 - want) / want).abs());
        }
        // f32 has 2^-24 = 6e-8 relative rounding; Cephes' expf is within about 2 of those.
        assert!(worst < 2.5e-7, "exp_fast worst relative error {worst:e}");
        assert!(exp_fast(-1000.0) < 2e-38 && exp_fast(-1000.0) >= 0.0);
        assert!(exp_fast(f32::NAN).is_nan());
        let mut worst_erf = 0f64;
        for i in -5000..=5000 {
            let x = i as f32 * 1e-3;
            worst_erf = worst_erf.max((erf_fast(x) as f64 - libm::erf(x as f64)).abs());
        }
        eprintln!(
            "exp_fast worst relative error {worst:e}, erf_fast worst absolute error {worst_erf:e}"
        );
        // A&S 7.1.26's 1.5e-7 plus f32 rounding of `1 - p e` (a few 6e-8 steps).
        assert!(
            worst_erf < 6e-7,
            "erf_fast worst absolute error {worst_erf:e}"
        );
        assert_eq!(fast_tanh(100.0), 1.0);
        assert_eq!(fast_tanh(-100.0), -1.0);
    }

    #[test]
    fn conv_transpose_matches_reference() {
        for &(cin, cout, k, s, p, t) in &[
            (6, 5, 16, 8, 4, 37),
            (7, 3, 8, 4, 2, 50),
            (4, 5, 4, 2, 1, 33),
        ] {
            let raw = rnd(cin * cout * k, 7);
            let b = rnd(cout, 8);
            let x = rnd(t * cin, 9);
            let ct = ConvT::from_raw(cin, cout, k, s, p, &raw, b.clone());
            let y = ct.forward(&x, t, Act::None, &mut Vec::new());
            let n_out = (t - 1) * s + k - 2 * p;
            assert_eq!(y.len(), n_out * cout);
            let mut r = vec![0f64; n_out * cout];
            for (o, rv) in r.iter_mut().enumerate() {
                *rv = b[o % cout] as f64;
            }
            for ti in 0..t {
                for kk in 0..k {
                    let o = (ti * s + kk) as isize - p as isize;
                    if o < 0 || o as usize >= n_out {
                        continue;
                    }
                    for ci in 0..cin {
                        for co in 0..cout {
                            r[o as usize * cout + co] +=
                                x[ti * cin + ci] as f64 * raw[(ci * cout + co) * k + kk] as f64;
                        }
                    }
                }
            }
            for (a, b) in y.iter().zip(&r) {
                assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
    }
}
