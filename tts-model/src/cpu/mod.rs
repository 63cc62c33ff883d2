//! The CPU reference backend: f32, time-major, GEMM-based (the `gemm` crate), parallel over row
//! blocks on its own rayon pool. Exact to onnxruntime up to f32 rounding (see tests/golden.rs).
#![deny(unsafe_code)]

pub mod ops;

use rayon::ThreadPool;
use rayon::prelude::*;

use crate::backend::{Backend, Encoded};
use crate::error::{Result, TtsError};
use crate::voice::{Hparams, ResBlockKind, Voice, Weights};
use ops::{Act, Conv, ConvT, DwConv, LayerNorm};

/// Options of the CPU backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuOptions {
    /// Worker threads (0 = all cores).
    pub threads: usize,
}

struct AttnLayer {
    qkv: Conv,
    o: Conv,
    rel_k: Vec<f32>,
    rel_v: Vec<f32>,
    ln1: LayerNorm,
    ffn1: Conv,
    ffn2: Conv,
    ln2: LayerNorm,
}

struct Dds {
    sep: Vec<DwConv>,
    pw: Vec<Conv>,
    n1: Vec<LayerNorm>,
    n2: Vec<LayerNorm>,
}

struct ConvFlow {
    pre_w: Vec<f32>,
    pre_b: Vec<f32>,
    dds: Dds,
    proj: Conv,
}

struct WnLayer {
    inp: Conv,
    res: Option<Conv>,
    skip: Conv,
}

struct Coupling {
    pre: Conv,
    layers: Vec<WnLayer>,
    cond: Option<Conv>,
    post_neg: Conv,
}

#[derive(Default)]
struct DecScratch {
    pad: Vec<f32>,
    x: Vec<f32>,
    y: Vec<f32>,
    r: Vec<f32>,
    xs: Vec<f32>,
    tmp: Vec<f32>,
}

/// Per-tile buffers of the time-tiled decoder stages (one per worker in flight, reused).
#[derive(Default)]
struct TileScratch {
    r: Vec<f32>,
    pad: Vec<f32>,
}

enum ResBlock {
    One(Vec<(Conv, Conv)>),
    Two(Vec<Conv>),
}

/// The CPU backend (weights converted once into GEMM layout at construction).
pub struct CpuBackend {
    hp: Hparams,
    pool: ThreadPool,
    emb: Vec<f32>,
    emb_g: Option<Vec<f32>>,
    layers: Vec<AttnLayer>,
    proj: Conv,
    dp_pre: Conv,
    dp_cond: Option<Conv>,
    dp_dds: Dds,
    dp_proj: Conv,
    dp_flows: Vec<ConvFlow>,
    dp_m: [f32; 2],
    dp_exp_neg_logs: [f32; 2],
    couplings: Vec<Coupling>,
    dec_pre: Conv,
    dec_cond: Option<Conv>,
    ups: Vec<ConvT>,
    resblocks: Vec<Vec<ResBlock>>,
    dec_post: Conv,
    dec_scratch: std::sync::Mutex<Option<DecScratch>>,
    tile_scratch: std::sync::Mutex<Vec<TileScratch>>,
}

impl CpuBackend {
    /// Convert a loaded voice's weights (the voice, and its memory map, can be dropped afterwards).
    pub fn new(voice: &Voice, opts: CpuOptions) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.threads)
            .build()
            .map_err(|e| TtsError::Threads {
                threads: opts.threads,
                detail: e.to_string(),
            })?;
        let hp = voice.hparams.clone();
        let w = &voice.weights;
        pool.install(|| Self::build(hp.clone(), w)).map(|mut b| {
            b.pool = pool;
            b
        })
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    fn build(hp: Hparams, w: &Weights) -> Result<Self> {
        let (h, inter) = (hp.hidden, hp.inter);
        let dk = h / hp.n_heads;
        let nrel = 2 * hp.window + 1;
        let emb = w.f32("enc_p.emb.weight", &[hp.n_vocab, h])?;
        let mut layers = Vec::new();
        for i in 0..hp.n_layers {
            let a = format!("enc_p.encoder.attn_layers.{i}");
            let mut q = Conv::load(w, &format!("{a}.conv_q"), h, h, 1)?;
            q.scale(1.0 / (dk as f32).sqrt());
            let k = Conv::load(w, &format!("{a}.conv_k"), h, h, 1)?;
            let v = Conv::load(w, &format!("{a}.conv_v"), h, h, 1)?;
            let mut qkv = q.clone();
            qkv.cout = 3 * h;
            qkv.w = (0..h)
                .flat_map(|r| {
                    [
                        &q.w[r * h..(r + 1) * h],
                        &k.w[r * h..(r + 1) * h],
                        &v.w[r * h..(r + 1) * h],
                    ]
                    .concat()
                })
                .collect();
            qkv.b = [q.b.as_slice(), &k.b, &v.b].concat();
            let f = format!("enc_p.encoder.ffn_layers.{i}");
            layers.push(AttnLayer {
                qkv,
                o: Conv::load(w, &format!("{a}.conv_o"), h, h, 1)?,
                rel_k: w.f32(&format!("{a}.emb_rel_k"), &[1, nrel, dk])?,
                rel_v: w.f32(&format!("{a}.emb_rel_v"), &[1, nrel, dk])?,
                ln1: LayerNorm::load(w, &format!("enc_p.encoder.norm_layers_1.{i}"), h)?,
                ffn1: Conv::load(w, &format!("{f}.conv_1"), h, hp.filter, 1)?,
                ffn2: Conv::load(w, &format!("{f}.conv_2"), hp.filter, h, 1)?,
                ln2: LayerNorm::load(w, &format!("enc_p.encoder.norm_layers_2.{i}"), h)?,
            });
        }
        let proj = Conv::load(w, "enc_p.proj", h, 2 * inter, 1)?;

        let f = hp.dp_filter;
        let gin = hp.gin;
        let dds = |prefix: &str| -> Result<Dds> {
            let mut d = Dds {
                sep: vec![],
                pw: vec![],
                n1: vec![],
                n2: vec![],
            };
            for i in 0..hp.dp_layers {
                let dil = hp.dp_kernel.pow(i as u32);
                d.sep.push(DwConv::load(
                    w,
                    &format!("{prefix}.convs_sep.{i}"),
                    f,
                    hp.dp_kernel,
                    dil,
                )?);
                d.pw.push(Conv::load(w, &format!("{prefix}.convs_1x1.{i}"), f, f, 1)?);
                d.n1.push(LayerNorm::load(w, &format!("{prefix}.norms_1.{i}"), f)?);
                d.n2.push(LayerNorm::load(w, &format!("{prefix}.norms_2.{i}"), f)?);
            }
            Ok(d)
        };
        let mut dp_flows = Vec::new();
        for &i in &hp.dp_flows {
            let p = format!("dp.flows.{i}");
            dp_flows.push(ConvFlow {
                pre_w: w.f32(&format!("{p}.pre.weight"), &[f, 1, 1])?,
                pre_b: w.f32(&format!("{p}.pre.bias"), &[f])?,
                dds: dds(&format!("{p}.convs"))?,
                proj: Conv::load(w, &format!("{p}.proj"), f, 3 * hp.dp_bins - 1, 1)?,
            });
        }
        let m = w.f32("dp.flows.0.m", &[2, 1])?;
        let e = w.f32("dp.flows.0.exp_neg_logs", &[2, 1])?;

        let fh = hp.flow_hidden;
        let half = inter / 2;
        let mut couplings = Vec::new();
        for &i in &hp.flow_layers {
            let p = format!("flow.flows.{i}");
            let mut wn = Vec::new();
            for l in 0..hp.wn_layers {
                let inp = Conv::load(w, &format!("{p}.enc.in_layers.{l}"), fh, 2 * fh, 1)?;
                let last = l + 1 == hp.wn_layers;
                let rs = Conv::load(
                    w,
                    &format!("{p}.enc.res_skip_layers.{l}"),
                    fh,
                    if last { fh } else { 2 * fh },
                    1,
                )?;
                let (res, skip) = if last {
                    (None, rs)
                } else {
                    (Some(rs.out_slice(0..fh)), rs.out_slice(fh..2 * fh))
                };
                wn.push(WnLayer { inp, res, skip });
            }
            let mut post_neg = Conv::load(w, &format!("{p}.post"), fh, half, 1)?;
            post_neg.scale(-1.0);
            let cond = match gin {
                Some(g) => Some(Conv::load(
                    w,
                    &format!("{p}.enc.cond_layer"),
                    g,
                    2 * fh * hp.wn_layers,
                    1,
                )?),
                None => None,
            };
            couplings.push(Coupling {
                pre: Conv::load(w, &format!("{p}.pre"), half, fh, 1)?,
                layers: wn,
                cond,
                post_neg,
            });
        }

        let mut ups = Vec::new();
        let mut resblocks = Vec::new();
        let nk = hp.resblock_kernels.len();
        for (i, u) in hp.ups.iter().enumerate() {
            ups.push(ConvT::load(
                w,
                &format!("dec.ups.{i}"),
                u.cin,
                u.cout,
                u.kernel,
                u.stride,
                u.pad,
            )?);
            let mut stage = Vec::new();
            for j in 0..nk {
                let idx = i * nk + j;
                let c = u.cout;
                let ds = &hp.resblock_dilations[j];
                stage.push(match hp.resblock {
                    ResBlockKind::Two => ResBlock::Two(
                        ds.iter()
                            .enumerate()
                            .map(|(n, &d)| {
                                Conv::load(w, &format!("dec.resblocks.{idx}.convs.{n}"), c, c, d)
                            })
                            .collect::<Result<_>>()?,
                    ),
                    ResBlockKind::One => ResBlock::One(
                        ds.iter()
                            .enumerate()
                            .map(|(n, &d)| {
                                Ok((
                                    Conv::load(
                                        w,
                                        &format!("dec.resblocks.{idx}.convs1.{n}"),
                                        c,
                                        c,
                                        d,
                                    )?,
                                    Conv::load(
                                        w,
                                        &format!("dec.resblocks.{idx}.convs2.{n}"),
                                        c,
                                        c,
                                        1,
                                    )?,
                                ))
                            })
                            .collect::<Result<_>>()?,
                    ),
                });
            }
            resblocks.push(stage);
        }
        let last_c = hp.ups.last().map_or(hp.dec_initial, |u| u.cout);
        let cond = |name: &str, cout: usize| -> Result<Option<Conv>> {
            match gin {
                Some(g) => Conv::load(w, name, g, cout, 1).map(Some),
                None => Ok(None),
            }
        };
        Ok(Self {
            emb,
            emb_g: match gin {
                Some(g) => Some(w.f32("emb_g.weight", &[hp.n_speakers, g])?),
                None => None,
            },
            layers,
            proj,
            dp_pre: Conv::load(w, "dp.pre", h, f, 1)?,
            dp_cond: cond("dp.cond", f)?,
            dp_dds: dds("dp.convs")?,
            dp_proj: Conv::load(w, "dp.proj", f, f, 1)?,
            dp_flows,
            dp_m: [m[0], m[1]],
            dp_exp_neg_logs: [e[0], e[1]],
            couplings,
            dec_pre: Conv::load(w, "dec.conv_pre", inter, hp.dec_initial, 1)?,
            dec_cond: cond("dec.cond", hp.dec_initial)?,
            ups,
            resblocks,
            dec_post: Conv::load(w, "dec.conv_post", last_c, 1, 1)?,
            dec_scratch: std::sync::Mutex::new(None),
            tile_scratch: std::sync::Mutex::new(Vec::new()),
            pool: rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .map_err(|e| TtsError::Threads {
                    threads: 1,
                    detail: e.to_string(),
                })?,
            hp,
        })
    }

    /// Speaker embedding row, or `None` for single-speaker voices.
    fn speaker(&self, speaker: Option<usize>) -> Result<Option<&[f32]>> {
        match (&self.emb_g, self.hp.gin) {
            (Some(t), Some(g)) => {
                let s = speaker.unwrap_or(0);
                if s >= self.hp.n_speakers {
                    return Err(TtsError::Input(format!(
                        "speaker {s} out of range (voice has {})",
                        self.hp.n_speakers
                    )));
                }
                Ok(Some(&t[s * g..(s + 1) * g]))
            }
            _ => Ok(None),
        }
    }

    fn attention(&self, l: &AttnLayer, x: &[f32], t: usize, pad: &mut Vec<f32>) -> Vec<f32> {
        let h = self.hp.hidden;
        let heads = self.hp.n_heads;
        let dk = h / heads;
        let w = self.hp.window;
        let nrel = 2 * w + 1;
        let qkv = l.qkv.run(x, t, Act::None, Act::None, pad);
        let head_out = |hd: usize| -> Vec<f32> {
            let q = &qkv[hd * dk..];
            let k = &qkv[h + hd * dk..];
            let v = &qkv[2 * h + hd * dk..];
            let mut s = vec![0.0f32; t * t];
            crate::sys::sgemm(
                t,
                dk,
                t,
                1.0,
                crate::sys::MatRef {
                    data: q,
                    rs: 3 * h,
                    cs: 1,
                },
                crate::sys::MatRef {
                    data: k,
                    rs: 1,
                    cs: 3 * h,
                },
                0.0,
                crate::sys::MatMut {
                    data: &mut s,
                    rs: t,
                    cs: 1,
                },
            );
            // Banded relative keys: s[i, i+r-w] += q_i . rel_k[r].
            let mut qr = vec![0.0f32; t * nrel];
            crate::sys::sgemm(
                t,
                dk,
                nrel,
                1.0,
                crate::sys::MatRef {
                    data: q,
                    rs: 3 * h,
                    cs: 1,
                },
                crate::sys::MatRef {
                    data: &l.rel_k,
                    rs: 1,
                    cs: dk,
                },
                0.0,
                crate::sys::MatMut {
                    data: &mut qr,
                    rs: nrel,
                    cs: 1,
                },
            );
            for i in 0..t {
                for r in 0..nrel {
                    let j = i as isize + r as isize - w as isize;
                    if j >= 0 && (j as usize) < t {
                        s[i * t + j as usize] += qr[i * nrel + r];
                    }
                }
            }
            for row in s.chunks_mut(t) {
                let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                ops::exp_sub_slice(row, m);
                let sum: f32 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= sum);
            }
            let mut o = vec![0.0f32; t * dk];
            crate::sys::sgemm(
                t,
                t,
                dk,
                1.0,
                crate::sys::MatRef {
                    data: &s,
                    rs: t,
                    cs: 1,
                },
                crate::sys::MatRef {
                    data: v,
                    rs: 3 * h,
                    cs: 1,
                },
                0.0,
                crate::sys::MatMut {
                    data: &mut o,
                    rs: dk,
                    cs: 1,
                },
            );
            // Banded relative values: o_i += sum_r p[i, i+r-w] rel_v[r].
            let mut pr = vec![0.0f32; t * nrel];
            for i in 0..t {
                for r in 0..nrel {
                    let j = i as isize + r as isize - w as isize;
                    if j >= 0 && (j as usize) < t {
                        pr[i * nrel + r] = s[i * t + j as usize];
                    }
                }
            }
            crate::sys::sgemm(
                t,
                nrel,
                dk,
                1.0,
                crate::sys::MatRef {
                    data: &pr,
                    rs: nrel,
                    cs: 1,
                },
                crate::sys::MatRef {
                    data: &l.rel_v,
                    rs: dk,
                    cs: 1,
                },
                1.0,
                crate::sys::MatMut {
                    data: &mut o,
                    rs: dk,
                    cs: 1,
                },
            );
            o
        };
        let outs: Vec<Vec<f32>> = (0..heads).into_par_iter().map(head_out).collect();
        let mut cat = vec![0.0f32; t * h];
        for (hd, o) in outs.iter().enumerate() {
            for i in 0..t {
                cat[i * h + hd * dk..i * h + (hd + 1) * dk]
                    .copy_from_slice(&o[i * dk..(i + 1) * dk]);
            }
        }
        l.o.run(&cat, t, Act::None, Act::None, pad)
    }

    fn dds(&self, d: &Dds, x: &mut [f32], t: usize, pad: &mut Vec<f32>) {
        for i in 0..d.sep.len() {
            let mut y = d.sep[i].run(x, t);
            d.n1[i].run_gelu(&mut y);
            let mut y = d.pw[i].run(&y, t, Act::None, Act::None, pad);
            d.n2[i].run_gelu(&mut y);
            x.par_chunks_mut(1 << 12)
                .zip(y.par_chunks(1 << 12))
                .for_each(|(a, b)| {
                    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                });
        }
    }

    fn encode_impl(&self, ids: &[i64]) -> Result<Encoded> {
        let h = self.hp.hidden;
        let t = ids.len();
        let scale = (h as f32).sqrt();
        let mut x = Vec::with_capacity(t * h);
        for &id in ids {
            let id = usize::try_from(id)
                .ok()
                .filter(|&i| i < self.hp.n_vocab)
                .ok_or_else(|| {
                    TtsError::Input(format!("phoneme id {id} outside 0..{}", self.hp.n_vocab))
                })?;
            x.extend(self.emb[id * h..(id + 1) * h].iter().map(|v| v * scale));
        }
        let mut pad = Vec::new();
        for l in &self.layers {
            let y = self.attention(l, &x, t, &mut pad);
            x.iter_mut().zip(&y).for_each(|(a, b)| *a += b);
            l.ln1.run(&mut x);
            let f = l.ffn1.run(&x, t, Act::None, Act::Relu, &mut pad);
            l.ffn2.forward(
                &f,
                self.hp.filter,
                t,
                Act::None,
                &mut x,
                h,
                true,
                Act::None,
                None,
                &mut pad,
            );
            l.ln2.run(&mut x);
        }
        let stats = self.proj.run(&x, t, Act::None, Act::None, &mut pad);
        Ok(Encoded { t, x, stats })
    }

    fn durations_impl(&self, enc: &Encoded, noise: &[f32], g: Option<&[f32]>) -> Result<Vec<f32>> {
        let t = enc.t;
        if noise.len() != 2 * t {
            return Err(TtsError::Input(format!(
                "duration noise has {} values, expected {}",
                noise.len(),
                2 * t
            )));
        }
        let f = self.hp.dp_filter;
        let mut pad = Vec::new();
        let extra = match (&self.dp_cond, g) {
            (Some(c), Some(g)) => Some(c.run(g, 1, Act::None, Act::None, &mut pad)),
            _ => None,
        };
        let mut hx = vec![0.0; t * f];
        self.dp_pre.forward(
            &enc.x,
            self.hp.hidden,
            t,
            Act::None,
            &mut hx,
            f,
            false,
            Act::None,
            extra.as_deref(),
            &mut pad,
        );
        self.dds(&self.dp_dds, &mut hx, t, &mut pad);
        let hcond = self.dp_proj.run(&hx, t, Act::None, Act::None, &mut pad);
        let mut z0: Vec<f32> = (0..t).map(|i| noise[2 * i]).collect();
        let mut z1: Vec<f32> = (0..t).map(|i| noise[2 * i + 1]).collect();
        let bins = self.hp.dp_bins;
        let np = 3 * bins - 1;
        for cf in &self.dp_flows {
            std::mem::swap(&mut z0, &mut z1); // Flip
            let mut u = vec![0.0; t * f];
            for i in 0..t {
                for c in 0..f {
                    u[i * f + c] = cf.pre_w[c] * z0[i] + cf.pre_b[c] + hcond[i * f + c];
                }
            }
            self.dds(&cf.dds, &mut u, t, &mut pad);
            let p = cf.proj.run(&u, t, Act::None, Act::None, &mut pad);
            let sq = (f as f32).sqrt();
            for i in 0..t {
                z1[i] = spline_inverse(z1[i], &p[i * np..(i + 1) * np], bins, sq);
            }
        }
        std::mem::swap(&mut z0, &mut z1);
        Ok(z0
            .iter()
            .map(|&z| (z - self.dp_m[0]) * self.dp_exp_neg_logs[0])
            .collect())
    }

    fn flow_impl(&self, z_p: &[f32], frames: usize, g: Option<&[f32]>) -> Result<Vec<f32>> {
        let inter = self.hp.inter;
        if z_p.len() != frames * inter {
            return Err(TtsError::Input(format!(
                "flow input has {} values, expected {}",
                z_p.len(),
                frames * inter
            )));
        }
        let half = inter / 2;
        let fh = self.hp.flow_hidden;
        let mut z = z_p.to_vec();
        let mut pad = Vec::new();
        let mut hbuf = vec![0.0; frames * fh];
        let mut out = vec![0.0; frames * fh];
        let mut a = vec![0.0; frames * 2 * fh];
        let mut acts = vec![0.0; frames * fh];
        for c in &self.couplings {
            z.chunks_mut(inter).for_each(|r| r.reverse()); // Flip
            let cond = match (&c.cond, g) {
                (Some(cl), Some(g)) => Some(cl.run(g, 1, Act::None, Act::None, &mut pad)),
                _ => None,
            };
            c.pre.forward(
                &z,
                inter,
                frames,
                Act::None,
                &mut hbuf,
                fh,
                false,
                Act::None,
                None,
                &mut pad,
            );
            out.iter_mut().for_each(|v| *v = 0.0);
            for (li, l) in c.layers.iter().enumerate() {
                let extra = cond.as_ref().map(|v| &v[li * 2 * fh..(li + 1) * 2 * fh]);
                l.inp.forward(
                    &hbuf,
                    fh,
                    frames,
                    Act::None,
                    &mut a,
                    2 * fh,
                    false,
                    Act::None,
                    extra,
                    &mut pad,
                );
                {
                    acts.par_chunks_mut(fh * 64)
                        .zip(a.par_chunks(2 * fh * 64))
                        .for_each(|(o, a)| {
                            for (orow, arow) in o.chunks_mut(fh).zip(a.chunks(2 * fh)) {
                                ops::gate_slice(orow, &arow[..fh], &arow[fh..]);
                            }
                        });
                }
                if let Some(res) = &l.res {
                    res.forward(
                        &acts,
                        fh,
                        frames,
                        Act::None,
                        &mut hbuf,
                        fh,
                        true,
                        Act::None,
                        None,
                        &mut pad,
                    );
                }
                l.skip.forward(
                    &acts,
                    fh,
                    frames,
                    Act::None,
                    &mut out,
                    fh,
                    true,
                    Act::None,
                    None,
                    &mut pad,
                );
            }
            // x1 -= post(out): post weights are negated, accumulate into the second half of z.
            c.post_neg.forward(
                &out,
                fh,
                frames,
                Act::None,
                &mut z[half..],
                inter,
                true,
                Act::None,
                None,
                &mut pad,
            );
        }
        Ok(z)
    }

    fn decode_impl(&self, z: &[f32], frames: usize, g: Option<&[f32]>) -> Result<Vec<f32>> {
        let inter = self.hp.inter;
        if z.len() != frames * inter {
            return Err(TtsError::Input(format!(
                "decoder input has {} values, expected {}",
                z.len(),
                frames * inter
            )));
        }
        // Buffers reused across stages and across calls (chunks): no page faults in steady state.
        let mut sc = self
            .dec_scratch
            .lock()
            .map(|mut g| g.take())
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut pad = std::mem::take(&mut sc.pad);
        let mut x = std::mem::take(&mut sc.x);
        let extra = match (&self.dec_cond, g) {
            (Some(c), Some(g)) => Some(c.run(g, 1, Act::None, Act::None, &mut pad)),
            _ => None,
        };
        // Every row is written (no accumulation), so stale contents need no clearing.
        x.resize(frames * self.hp.dec_initial, 0.0);
        self.dec_pre.forward(
            z,
            inter,
            frames,
            Act::None,
            &mut x,
            self.hp.dec_initial,
            false,
            Act::None,
            extra.as_deref(),
            &mut pad,
        );
        let mut n = frames;
        let nk = self.hp.resblock_kernels.len() as f32;
        for (up, stage) in self.ups.iter().zip(&self.resblocks) {
            up.forward_into(&x, n, Act::Leaky(0.1), &mut pad, &mut sc.y);
            n *= up.s;
            let c = up.cout;
            if stage.iter().all(|rb| matches!(rb, ResBlock::Two(_))) {
                x.resize(n * c, 0.0);
                self.resblocks_tiled(stage, &sc.y, n, c, &mut x);
                continue;
            }
            for (j, rb) in stage.iter().enumerate() {
                // The first block works directly in `xs`, later ones in `r` and are added to `xs`.
                let r = if j == 0 { &mut sc.xs } else { &mut sc.r };
                r.resize(sc.y.len(), 0.0);
                par_copy(r, &sc.y);
                match rb {
                    ResBlock::Two(convs) => {
                        for conv in convs {
                            conv.residual(r, n, Act::Leaky(0.1), &mut pad);
                        }
                    }
                    ResBlock::One(pairs) => {
                        sc.tmp.resize(n * c, 0.0);
                        for (c1, c2) in pairs {
                            c1.forward(
                                r,
                                c,
                                n,
                                Act::Leaky(0.1),
                                &mut sc.tmp,
                                c,
                                false,
                                Act::None,
                                None,
                                &mut pad,
                            );
                            c2.forward(
                                &sc.tmp,
                                c,
                                n,
                                Act::Leaky(0.1),
                                r,
                                c,
                                true,
                                Act::None,
                                None,
                                &mut pad,
                            );
                        }
                    }
                }
                if j > 0 {
                    sc.xs
                        .par_chunks_mut(1 << 14)
                        .zip(sc.r.par_chunks(1 << 14))
                        .for_each(|(a, b)| {
                            a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                        });
                }
            }
            x.resize(sc.xs.len(), 0.0);
            x.par_chunks_mut(1 << 14)
                .zip(sc.xs.par_chunks(1 << 14))
                .for_each(|(d, s)| {
                    d.iter_mut().zip(s).for_each(|(d, s)| *d = s / nk);
                });
        }
        // conv_post in parallel windows of rows, each through a small cached pad buffer.
        let mut out = vec![0.0; n];
        let post = &self.dec_post;
        let rows = 4096;
        out.par_chunks_mut(rows).enumerate().for_each(|(bi, o)| {
            let mut s = self
                .tile_scratch
                .lock()
                .ok()
                .and_then(|mut v| v.pop())
                .unwrap_or_default();
            let (oa, ob) = (bi * rows, bi * rows + o.len());
            let (xa, xb) = (oa.saturating_sub(post.pad_l), (ob + post.pad_r).min(n));
            post.forward_window(
                &x[xa * post.cin..xb * post.cin],
                xa,
                xb,
                oa,
                ob,
                Act::Leaky(0.01),
                o,
                1,
                Act::Tanh,
                &mut s.pad,
            );
            if let Ok(mut v) = self.tile_scratch.lock() {
                v.push(s);
            }
        });
        sc.pad = pad;
        sc.x = x;
        if let Ok(mut g) = self.dec_scratch.lock() {
            *g = Some(sc);
        }
        Ok(out)
    }
}

impl CpuBackend {
    /// One decoder stage of `ResBlock::Two` blocks, time-tiled: `out = mean_j block_j(y)`, `y` and
    /// `out` `[n, c]`. Each tile of output rows runs every block on its own rows plus the halo the
    /// block's convs need (recomputed, exact), in per-tile buffers that stay in cache, so the
    /// stage makes one pass over `y` per block instead of several full-size passes per conv;
    /// tiles run in parallel.
    fn resblocks_tiled(&self, stage: &[ResBlock], y: &[f32], n: usize, c: usize, out: &mut [f32]) {
        if n == 0 {
            return;
        }
        let threads = rayon::current_num_threads().max(1);
        // About 256 KiB of rows per tile buffer; a multiple of the thread count of tiles.
        let max_rows = ((1usize << 16) / c).max(64);
        let tiles = n.div_ceil(max_rows).div_ceil(threads) * threads;
        let tile = n.div_ceil(tiles);
        let nk = stage.len() as f32;
        out.par_chunks_mut(tile * c)
            .enumerate()
            .for_each(|(ti, o)| {
                let mut s = self
                    .tile_scratch
                    .lock()
                    .ok()
                    .and_then(|mut v| v.pop())
                    .unwrap_or_default();
                let t0 = ti * tile;
                let t1 = t0 + o.len() / c;
                for (j, rb) in stage.iter().enumerate() {
                    let ResBlock::Two(convs) = rb else {
                        unreachable!("resblocks_tiled is only called for ResBlock::Two stages")
                    };
                    // Halo still needed after conv i: the later convs' paddings.
                    let left = |i: usize| convs[i..].iter().map(|cv| cv.pad_l).sum::<usize>();
                    let right = |i: usize| convs[i..].iter().map(|cv| cv.pad_r).sum::<usize>();
                    let (a, b) = (t0.saturating_sub(left(0)), (t1 + right(0)).min(n));
                    s.r.clear();
                    s.r.extend_from_slice(&y[a * c..b * c]);
                    let (mut xa, mut xb) = (a, b);
                    for (i, conv) in convs.iter().enumerate() {
                        let (oa, ob) = (t0.saturating_sub(left(i + 1)), (t1 + right(i + 1)).min(n));
                        conv.fill_window(
                            &s.r[(xa - a) * c..],
                            xa,
                            xb,
                            oa,
                            ob,
                            Act::Leaky(0.1),
                            &mut s.pad,
                        );
                        conv.gemm_window(&s.pad, ob - oa, &mut s.r[(oa - a) * c..], c);
                        (xa, xb) = (oa, ob);
                    }
                    let r = &s.r[(t0 - a) * c..(t1 - a) * c];
                    let last = j + 1 == stage.len();
                    match (j, last) {
                        (0, true) => o.iter_mut().zip(r).for_each(|(o, r)| *o = r / nk),
                        (0, false) => o.copy_from_slice(r),
                        (_, false) => o.iter_mut().zip(r).for_each(|(o, r)| *o += r),
                        (_, true) => o.iter_mut().zip(r).for_each(|(o, r)| *o = (*o + r) / nk),
                    }
                }
                if let Ok(mut v) = self.tile_scratch.lock() {
                    v.push(s);
                }
            });
    }
}

/// `dst.copy_from_slice(src)` in parallel blocks.
fn par_copy(dst: &mut [f32], src: &[f32]) {
    dst.par_chunks_mut(1 << 14)
        .zip(src.par_chunks(1 << 14))
        .for_each(|(d, s)| d.copy_from_slice(s));
}

/// Inverse rational-quadratic spline (tails linear outside [-5, 5]) exactly as VITS' `transforms.py`
/// with min bin width/height/derivative 1e-3: `p` holds `bins` widths, `bins` heights and `bins - 1`
/// derivatives (unnormalised); widths and heights are divided by `sq` = sqrt(filter channels).
pub fn spline_inverse(x: f32, p: &[f32], bins: usize, sq: f32) -> f32 {
    const TB: f32 = 5.0;
    const MIN: f32 = 1e-3;
    if !(-TB..=TB).contains(&x) {
        return x;
    }
    let softmax_cum = |u: &[f32]| -> (Vec<f32>, Vec<f32>) {
        let v: Vec<f32> = u.iter().map(|a| a / sq).collect();
        let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f32> = v.iter().map(|a| (a - m).exp()).collect();
        let s: f32 = e.iter().sum();
        let mut cum = vec![0.0f32; bins + 1];
        let mut acc = 0.0f32;
        for i in 0..bins {
            acc += MIN + (1.0 - MIN * bins as f32) * (e[i] / s);
            cum[i + 1] = acc;
        }
        for c in cum.iter_mut() {
            *c = 2.0 * TB * *c - TB;
        }
        cum[0] = -TB;
        cum[bins] = TB;
        let widths: Vec<f32> = (0..bins).map(|i| cum[i + 1] - cum[i]).collect();
        (cum, widths)
    };
    let (cumw, widths) = softmax_cum(&p[..bins]);
    let (cumh, heights) = softmax_cum(&p[bins..2 * bins]);
    let constant = (((1.0 - MIN) as f64).exp() - 1.0).ln() as f32;
    let softplus = |v: f32| {
        if v > 0.0 {
            v + (-v).exp().ln_1p()
        } else {
            v.exp().ln_1p()
        }
    };
    let deriv = |i: usize| -> f32 {
        let u = if i == 0 || i == bins {
            constant
        } else {
            p[2 * bins + i - 1]
        };
        MIN + softplus(u)
    };
    // searchsorted with the last edge nudged by 1e-6.
    let mut idx = 0usize;
    for (i, &c) in cumh.iter().enumerate() {
        let c = if i == bins { c + 1e-6 } else { c };
        if x >= c {
            idx = i;
        }
    }
    let idx = idx.min(bins - 1);
    let in_cumw = cumw[idx];
    let in_w = widths[idx];
    let in_cumh = cumh[idx];
    let in_h = heights[idx];
    let delta = in_h / in_w;
    let d0 = deriv(idx);
    let d1 = deriv(idx + 1);
    let dy = x - in_cumh;
    let a = dy * (d0 + d1 - 2.0 * delta) + in_h * (delta - d0);
    let b = in_h * d0 - dy * (d0 + d1 - 2.0 * delta);
    let c = -delta * dy;
    let disc = b * b - 4.0 * a * c;
    let root = (2.0 * c) / (-b - disc.sqrt());
    root * in_w + in_cumw
}

impl Backend for CpuBackend {
    fn name(&self) -> &str {
        "cpu"
    }

    fn hparams(&self) -> &Hparams {
        &self.hp
    }

    fn encode(&self, ids: &[i64]) -> Result<Encoded> {
        if ids.is_empty() {
            return Err(TtsError::Input("empty id sequence".into()));
        }
        self.pool.install(|| self.encode_impl(ids))
    }

    fn log_durations(
        &self,
        enc: &Encoded,
        noise: &[f32],
        speaker: Option<usize>,
    ) -> Result<Vec<f32>> {
        let g = self.speaker(speaker)?;
        self.pool.install(|| self.durations_impl(enc, noise, g))
    }

    fn flow_reverse(&self, z_p: &[f32], frames: usize, speaker: Option<usize>) -> Result<Vec<f32>> {
        let g = self.speaker(speaker)?;
        self.pool.install(|| self.flow_impl(z_p, frames, g))
    }

    fn decode(&self, z: &[f32], frames: usize, speaker: Option<usize>) -> Result<Vec<f32>> {
        let g = self.speaker(speaker)?;
        self.pool.install(|| self.decode_impl(z, frames, g))
    }
}

#[cfg(test)]
mod tests {
    use super::spline_inverse;

    /// Forward rational-quadratic spline in f64 from the paper's formula (Durkan et al. 2019), with
    /// the same parameterisation as VITS (softmax widths/heights with 1e-3 minimum, softplus
    /// derivatives with 1e-3 minimum, boundary derivatives 1).
    fn forward(x: f64, p: &[f32], bins: usize, sq: f64) -> f64 {
        let tb = 5.0;
        let norm = |u: &[f32]| {
            let v: Vec<f64> = u.iter().map(|&a| a as f64 / sq).collect();
            let m = v.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = v.iter().map(|a| (a - m).exp()).collect();
            let s: f64 = e.iter().sum();
            let mut cum = vec![-tb];
            let mut acc = 0.0;
            for a in &e {
                acc += 1e-3 + (1.0 - 1e-3 * bins as f64) * a / s;
                cum.push(2.0 * tb * acc - tb);
            }
            cum[bins] = tb;
            cum
        };
        let (cw, ch) = (norm(&p[..bins]), norm(&p[bins..2 * bins]));
        let d = |i: usize| {
            if i == 0 || i == bins {
                1.0
            } else {
                1e-3 + (1.0 + (p[2 * bins + i - 1] as f64).exp()).ln()
            }
        };
        let k = (0..bins).rfind(|&k| x >= cw[k]).unwrap_or(0);
        let (w, h) = (cw[k + 1] - cw[k], ch[k + 1] - ch[k]);
        let s = h / w;
        let th = (x - cw[k]) / w;
        let t1 = th * (1.0 - th);
        ch[k] + h * (s * th * th + d(k) * t1) / (s + (d(k + 1) + d(k) - 2.0 * s) * t1)
    }

    #[test]
    fn spline_inverse_inverts_an_independent_forward_spline() {
        let bins = 10;
        let sq = (192f32).sqrt();
        let mut seed = 99u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        };
        let mut worst = 0f64;
        for _ in 0..200 {
            let p: Vec<f32> = (0..3 * bins - 1).map(|_| rnd() * 4.0).collect();
            for i in 0..=100 {
                let x = -4.999 + 9.998 * i as f64 / 100.0;
                let y = forward(x, &p, bins, sq as f64) as f32;
                let back = spline_inverse(y, &p, bins, sq);
                // f32 evaluation of a monotone spline whose slopes lie in [1e-3, 1e3]: 1e-3 abs.
                worst = worst.max((back as f64 - x).abs());
            }
            // tails: identity outside [-5, 5]
            for x in [-7.5f32, -5.0001, 5.0001, 12.0] {
                assert_eq!(spline_inverse(x, &p, bins, sq), x);
            }
            // the bounds themselves are inside and map to themselves
            assert!((spline_inverse(5.0, &p, bins, sq) - 5.0).abs() < 1e-4);
            assert!((spline_inverse(-5.0, &p, bins, sq) + 5.0).abs() < 1e-4);
        }
        eprintln!("worst |inverse(forward(x)) - x| = {worst:.2e}");
        // f32 evaluation: y carries ~1e-7 relative rounding and the inverse slope is at most
        // 1/min_derivative = 1e3 near knots, so errors up to ~1e-4 are rounding, not a bug.
        assert!(worst < 2e-4, "worst error {worst}");
    }
}
