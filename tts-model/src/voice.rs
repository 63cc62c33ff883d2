//! Loading a Piper voice: `<voice>.onnx` (weights, via the hand-written protobuf subset in
//! [`crate::onnx`], memory-mapped) and `<voice>.onnx.json` (config, via serde).
//!
//! Weights are renamed to their PyTorch module paths following the rules of MODEL.md section 3:
//! conv weights and biases take the name of the Conv/ConvTranspose node that consumes them (this maps
//! the anonymous `onnx::Conv_NNNN` weight-norm-folded tensors of the flow), the embedding table is
//! whatever the `/enc_p/emb/Gather` node reads (it is called `sid` in single-speaker exports), and the
//! folded constant `/dp/flows.0/Exp_output_0` (= exp(-logs)) is kept as `dp.flows.0.exp_neg_logs`.
//! Hyper-parameters are then read off tensor shapes and node attributes ([`Hparams`]), so every
//! quality tier (x_low, low, medium, high) and multi-speaker voices load with the same code.
#![deny(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use prost::Message;
use serde::Deserialize;

use crate::error::{Result, TtsError};
use crate::onnx::{DATA_LOCATION_EXTERNAL, DATA_TYPE_FLOAT, ModelProto, NodeProto, TensorProto};

/// `<voice>.onnx.json`: the parts of Piper's voice config that synthesis needs.
#[derive(Debug, Clone, Deserialize)]
pub struct VoiceConfig {
    /// Audio settings.
    pub audio: AudioConfig,
    /// espeak-ng settings (voice name for the phonemizer).
    #[serde(default)]
    pub espeak: EspeakConfig,
    /// Default synthesis scales.
    #[serde(default)]
    pub inference: InferenceConfig,
    /// `espeak` (IPA through espeak-ng) or `text` (raw code points).
    #[serde(default)]
    pub phoneme_type: Option<String>,
    /// Phoneme (one Unicode code point, as a string) to ids.
    pub phoneme_id_map: HashMap<String, Vec<i64>>,
    /// Number of symbols of the model (if the config states it).
    #[serde(default)]
    pub num_symbols: Option<usize>,
    /// Number of speakers (1 for single-speaker voices).
    #[serde(default = "one")]
    pub num_speakers: usize,
    /// Speaker name to id (multi-speaker voices).
    #[serde(default)]
    pub speaker_id_map: HashMap<String, i64>,
}

fn one() -> usize {
    1
}

/// `audio` section of the config.
#[derive(Debug, Clone, Deserialize)]
pub struct AudioConfig {
    /// Output sample rate in Hz.
    pub sample_rate: u32,
    /// Quality tier name (`x_low`, `low`, `medium`, `high`), informational.
    #[serde(default)]
    pub quality: Option<String>,
}

/// `espeak` section of the config.
#[derive(Debug, Clone, Deserialize)]
pub struct EspeakConfig {
    /// espeak-ng voice, e.g. `en-us`.
    pub voice: String,
}

impl Default for EspeakConfig {
    fn default() -> Self {
        Self {
            voice: "en-us".into(),
        }
    }
}

/// `inference` section of the config: the voice's default scales.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct InferenceConfig {
    /// Scale of the prior noise (0.667 typical).
    #[serde(default = "d_noise_scale")]
    pub noise_scale: f32,
    /// Duration multiplier (1.0 = normal speed, larger = slower).
    #[serde(default = "d_length_scale")]
    pub length_scale: f32,
    /// Scale of the duration predictor's noise (0.8 typical).
    #[serde(default = "d_noise_w")]
    pub noise_w: f32,
}

fn d_noise_scale() -> f32 {
    0.667
}
fn d_length_scale() -> f32 {
    1.0
}
fn d_noise_w() -> f32 {
    0.8
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            noise_scale: d_noise_scale(),
            length_scale: d_length_scale(),
            noise_w: d_noise_w(),
        }
    }
}

impl VoiceConfig {
    /// Parse a config from JSON text (`path` is only used in error messages).
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        let c: VoiceConfig = serde_json::from_str(text).map_err(|e| TtsError::Config {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        if c.audio.sample_rate == 0 {
            return Err(TtsError::Config {
                path: path.to_path_buf(),
                detail: "audio.sample_rate is 0".into(),
            });
        }
        if c.phoneme_id_map.is_empty() {
            return Err(TtsError::Config {
                path: path.to_path_buf(),
                detail: "phoneme_id_map is empty".into(),
            });
        }
        Ok(c)
    }

    /// Read `path` (the `.onnx.json` file).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TtsError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::from_json(&text, path)
    }
}

/// One weight tensor: shape and little-endian f32 payload (a slice of the memory map when possible).
#[derive(Debug, Clone)]
pub struct RawTensor {
    /// Shape.
    pub dims: Vec<usize>,
    data: Bytes,
}

impl RawTensor {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    /// The values as f32 (converted from little-endian bytes once).
    pub fn to_f32(&self) -> Vec<f32> {
        self.data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

/// Attributes of a convolution node (read from the graph, so non-default dilations are honoured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvAttrs {
    /// Dilation.
    pub dilation: usize,
    /// Padding on the left / right.
    pub pads: (usize, usize),
    /// Stride.
    pub stride: usize,
    /// Groups.
    pub group: usize,
}

/// All weights of a voice by PyTorch module path, plus the attributes of each conv module.
#[derive(Debug, Clone, Default)]
pub struct Weights {
    tensors: BTreeMap<String, RawTensor>,
    convs: HashMap<String, ConvAttrs>,
}

impl Weights {
    /// Tensor by module path.
    pub fn get(&self, name: &str) -> Result<&RawTensor> {
        self.tensors.get(name).ok_or_else(|| TtsError::Weight {
            name: name.into(),
            detail: "missing from the model".into(),
        })
    }

    /// Whether a tensor exists.
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Shape of a tensor.
    pub fn dims(&self, name: &str) -> Result<&[usize]> {
        Ok(&self.get(name)?.dims)
    }

    /// The tensor as f32 values, checking its shape.
    pub fn f32(&self, name: &str, dims: &[usize]) -> Result<Vec<f32>> {
        let t = self.get(name)?;
        if t.dims != dims {
            return Err(TtsError::Weight {
                name: name.into(),
                detail: format!("shape {:?}, expected {dims:?}", t.dims),
            });
        }
        Ok(t.to_f32())
    }

    /// Conv attributes of a module (e.g. `dec.resblocks.0.convs.1`), if its node was found.
    pub fn conv_attrs(&self, module: &str) -> Option<ConvAttrs> {
        self.convs.get(module).copied()
    }

    /// All module paths (sorted).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// A copy with every tensor passed through `f(name, dims, values)` (same shapes; e.g. to
    /// measure what rounding the weights to a storage format costs on the cpu backend). An
    /// error if `f` returns a different number of values.
    pub fn map_f32(&self, mut f: impl FnMut(&str, &[usize], Vec<f32>) -> Vec<f32>) -> Result<Self> {
        let mut tensors = BTreeMap::new();
        for (name, t) in &self.tensors {
            let v = f(name, &t.dims, t.to_f32());
            if v.len() != t.numel() {
                return Err(TtsError::Weight {
                    name: name.clone(),
                    detail: format!(
                        "map_f32 returned {} values for {} elements",
                        v.len(),
                        t.numel()
                    ),
                });
            }
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            tensors.insert(
                name.clone(),
                RawTensor {
                    dims: t.dims.clone(),
                    data: Bytes::from(bytes),
                },
            );
        }
        Ok(Self {
            tensors,
            convs: self.convs.clone(),
        })
    }

    /// Number of indices `i` for which `format(prefix, i, suffix)` exists, counting from 0 without gaps.
    pub fn count(&self, prefix: &str, suffix: &str) -> usize {
        (0..)
            .take_while(|i| self.has(&format!("{prefix}{i}{suffix}")))
            .count()
    }

    /// Build from a decoded model (`path` for error messages).
    pub fn from_model(model: &ModelProto, path: &Path) -> Result<Self> {
        let graph = model.graph.as_ref().ok_or_else(|| TtsError::CorruptModel {
            path: path.to_path_buf(),
            detail: "no graph in the model".into(),
        })?;
        let mut raw: HashMap<&str, &TensorProto> = graph
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        for n in &graph.node {
            if n.op_type == "Constant"
                && let (Some(out), Some(t)) = (
                    n.output.first(),
                    n.attribute
                        .iter()
                        .find(|a| a.name == "value")
                        .and_then(|a| a.t.as_ref()),
                )
            {
                raw.entry(out.as_str()).or_insert(t);
            }
        }
        let mut w = Weights::default();
        let add = |w: &mut Weights, module_path: String, t: &TensorProto| -> Result<()> {
            if t.data_type != DATA_TYPE_FLOAT {
                return Ok(()); // graph constants (shapes, indices) are not weights
            }
            let rt = tensor(t, &module_path)?;
            w.tensors.insert(module_path, rt);
            Ok(())
        };
        // 1. initializers already named by module path.
        for t in &graph.initializer {
            let n = t.name.as_str();
            if ["enc_p.", "dp.", "flow.", "dec.", "emb_g."]
                .iter()
                .any(|p| n.starts_with(p))
            {
                add(&mut w, n.to_string(), t)?;
            }
        }
        // 2. names through consuming nodes.
        for n in &graph.node {
            match n.op_type.as_str() {
                "Conv" | "ConvTranspose" => {
                    let Some(module) = module_of(n) else { continue };
                    for (slot, suffix) in [(1, "weight"), (2, "bias")] {
                        if let Some(t) = n.input.get(slot).and_then(|i| raw.get(i.as_str())) {
                            let name = format!("{module}.{suffix}");
                            if !w.has(&name) {
                                add(&mut w, name, t)?;
                            }
                        }
                    }
                    w.convs.insert(module, conv_attrs(n));
                }
                "Gather" => {
                    let Some(module) = module_of(n) else { continue };
                    if (module == "enc_p.emb" || module == "emb_g")
                        && let Some(t) = n.input.first().and_then(|i| raw.get(i.as_str()))
                    {
                        let name = format!("{module}.weight");
                        if !w.has(&name) {
                            add(&mut w, name, t)?;
                        }
                    }
                }
                _ => {}
            }
        }
        // 3. the ElementwiseAffine scale of the duration predictor.
        if let Some(t) = raw.get("/dp/flows.0/Exp_output_0") {
            add(&mut w, "dp.flows.0.exp_neg_logs".into(), t)?;
        } else if let Some(logs) = w.tensors.get("dp.flows.0.logs") {
            let v: Vec<u8> = logs
                .to_f32()
                .iter()
                .flat_map(|l| (-l).exp().to_le_bytes())
                .collect();
            let dims = logs.dims.clone();
            w.tensors.insert(
                "dp.flows.0.exp_neg_logs".into(),
                RawTensor {
                    dims,
                    data: Bytes::from(v),
                },
            );
        }
        Ok(w)
    }
}

/// `/flow/flows.6/enc/in_layers.0/Conv` -> `flow.flows.6.enc.in_layers.0`.
fn module_of(n: &NodeProto) -> Option<String> {
    let name = n.name.strip_prefix('/')?;
    let (module, _op) = name.rsplit_once('/')?;
    Some(module.replace('/', "."))
}

fn conv_attrs(n: &NodeProto) -> ConvAttrs {
    let first = |k: &str, d: usize| {
        n.ints(k)
            .and_then(|v| v.first())
            .map_or(d, |&x| x.max(0) as usize)
    };
    let pads = n.ints("pads").map_or((0, 0), |p| {
        (
            p.first().copied().unwrap_or(0).max(0) as usize,
            p.get(1).copied().unwrap_or(0).max(0) as usize,
        )
    });
    let group = n
        .attribute
        .iter()
        .find(|a| a.name == "group")
        .map_or(1, |a| a.i.max(1) as usize);
    ConvAttrs {
        dilation: first("dilations", 1),
        pads,
        stride: first("strides", 1),
        group,
    }
}

fn tensor(t: &TensorProto, name: &str) -> Result<RawTensor> {
    let bad = |detail: String| TtsError::Weight {
        name: name.into(),
        detail,
    };
    if t.data_location == DATA_LOCATION_EXTERNAL {
        return Err(bad(
            "stored as external data, which Piper voices never use; re-export the voice".into(),
        ));
    }
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("negative dimension {d}"))))
        .collect::<Result<_>>()?;
    let numel: usize = dims.iter().product();
    let data = if !t.raw_data.is_empty() {
        t.raw_data.clone()
    } else {
        Bytes::from(
            t.float_data
                .iter()
                .flat_map(|f| f.to_le_bytes())
                .collect::<Vec<u8>>(),
        )
    };
    if data.len() != numel * 4 {
        return Err(bad(format!(
            "{} bytes of data for shape {dims:?} (model file truncated or corrupt?)",
            data.len()
        )));
    }
    Ok(RawTensor { dims, data })
}

/// Which HiFi-GAN residual block the decoder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResBlockKind {
    /// `ResBlock1`: pairs of (dilated conv, conv) per dilation (V1/V2 generators, `high` tier).
    One,
    /// `ResBlock2`: one dilated conv per dilation (V3 generator, `medium`/`low`/`x_low`).
    Two,
}

/// One transposed-conv upsampling layer of the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upsample {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride (upsampling factor).
    pub stride: usize,
    /// Padding (both sides).
    pub pad: usize,
}

/// Hyper-parameters of a VITS voice, detected from tensor shapes and node attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Hparams {
    /// Embedding table rows (phoneme ids must be below this).
    pub n_vocab: usize,
    /// Text encoder width.
    pub hidden: usize,
    /// Text encoder FFN width.
    pub filter: usize,
    /// Attention heads.
    pub n_heads: usize,
    /// Transformer layers.
    pub n_layers: usize,
    /// Relative attention window (4: offsets -4..=4).
    pub window: usize,
    /// FFN conv kernel size.
    pub ffn_kernel: usize,
    /// Latent channels (`inter_channels`, 192).
    pub inter: usize,
    /// Duration predictor width.
    pub dp_filter: usize,
    /// Duration predictor DDSConv kernel.
    pub dp_kernel: usize,
    /// Duration predictor DDSConv layers.
    pub dp_layers: usize,
    /// Indices of the ConvFlows that run in reverse, in run order (7, 5, 3 for 4 flows).
    pub dp_flows: Vec<usize>,
    /// Spline bins of the ConvFlows.
    pub dp_bins: usize,
    /// Indices of the flow's coupling layers in reverse run order (6, 4, 2, 0).
    pub flow_layers: Vec<usize>,
    /// Coupling WN width.
    pub flow_hidden: usize,
    /// WN layers per coupling.
    pub wn_layers: usize,
    /// WN kernel size.
    pub wn_kernel: usize,
    /// Decoder channels after conv_pre.
    pub dec_initial: usize,
    /// conv_pre kernel.
    pub dec_pre_kernel: usize,
    /// Upsampling layers.
    pub ups: Vec<Upsample>,
    /// Residual block type.
    pub resblock: ResBlockKind,
    /// Residual block kernels (per stage, the same list).
    pub resblock_kernels: Vec<usize>,
    /// Residual block dilations, per kernel.
    pub resblock_dilations: Vec<Vec<usize>>,
    /// conv_post kernel.
    pub dec_post_kernel: usize,
    /// Speakers (1 = single speaker).
    pub n_speakers: usize,
    /// Speaker embedding width (multi-speaker voices).
    pub gin: Option<usize>,
}

impl Hparams {
    /// Samples per frame (product of the upsampling strides; 256 for Piper voices).
    pub fn hop(&self) -> usize {
        self.ups.iter().map(|u| u.stride).product()
    }

    /// Detect from the weights.
    pub fn detect(w: &Weights) -> Result<Self> {
        let unsup = |s: String| TtsError::Unsupported(s);
        let emb = w.dims("enc_p.emb.weight")?;
        let d2 = |n: &str| -> Result<[usize; 2]> {
            let d = w.dims(n)?;
            <[usize; 2]>::try_from(d).map_err(|_| TtsError::Weight {
                name: n.into(),
                detail: format!("rank {}, expected 2", d.len()),
            })
        };
        let d3 = |n: &str| -> Result<[usize; 3]> {
            let d = w.dims(n)?;
            <[usize; 3]>::try_from(d).map_err(|_| TtsError::Weight {
                name: n.into(),
                detail: format!("rank {}, expected 3", d.len()),
            })
        };
        let [n_vocab, hidden] =
            <[usize; 2]>::try_from(emb).map_err(|_| unsup("embedding is not 2-D".into()))?;
        let n_layers = w.count("enc_p.encoder.attn_layers.", ".conv_q.weight");
        if n_layers == 0 {
            return Err(unsup(
                "no text encoder attention layers (not a VITS/Piper voice?)".into(),
            ));
        }
        let [_, nrel, dk] = d3("enc_p.encoder.attn_layers.0.emb_rel_k")?;
        if dk == 0 || hidden % dk != 0 || nrel % 2 == 0 {
            return Err(unsup(format!(
                "relative embedding shape [1, {nrel}, {dk}] with hidden {hidden}"
            )));
        }
        let [filter, _, ffn_kernel] = d3("enc_p.encoder.ffn_layers.0.conv_1.weight")?;
        let [proj_out, _, _] = d3("enc_p.proj.weight")?;
        let inter = proj_out / 2;

        if !w.has("dp.flows.0.exp_neg_logs") || !w.has("dp.convs.convs_sep.0.weight") {
            return Err(unsup(
                "no stochastic duration predictor (dp.flows / dp.convs); deterministic-duration VITS is not supported"
                    .into(),
            ));
        }
        let [dp_filter, _, _] = d3("dp.pre.weight")?;
        let [_, _, dp_kernel] = d3("dp.convs.convs_sep.0.weight")?;
        let dp_layers = w.count("dp.convs.convs_sep.", ".weight");
        let mut dp_flows: Vec<usize> = (2..32)
            .filter(|i| w.has(&format!("dp.flows.{i}.proj.weight")))
            .collect();
        dp_flows.reverse();
        let Some(&first) = dp_flows.first() else {
            return Err(unsup("duration predictor without ConvFlows".into()));
        };
        let [pout, _, _] = d3(&format!("dp.flows.{first}.proj.weight"))?;
        if (pout + 1) % 3 != 0 {
            return Err(unsup(format!(
                "ConvFlow projection with {pout} outputs (expected 3*bins-1)"
            )));
        }
        let dp_bins = (pout + 1) / 3;

        let mut flow_layers: Vec<usize> = (0..64)
            .filter(|i| w.has(&format!("flow.flows.{i}.pre.weight")))
            .collect();
        flow_layers.reverse();
        let Some(&f0) = flow_layers.first() else {
            return Err(unsup("no flow coupling layers".into()));
        };
        let [flow_hidden, half, _] = d3(&format!("flow.flows.{f0}.pre.weight"))?;
        if half * 2 != inter {
            return Err(unsup(format!(
                "coupling half width {half} for {inter} latent channels"
            )));
        }
        let wn_layers = w.count(&format!("flow.flows.{f0}.enc.in_layers."), ".weight");
        let [_, _, wn_kernel] = d3(&format!("flow.flows.{f0}.enc.in_layers.0.weight"))?;

        let [dec_initial, _, dec_pre_kernel] = d3("dec.conv_pre.weight")?;
        let n_ups = w.count("dec.ups.", ".weight");
        let mut ups = Vec::new();
        for i in 0..n_ups {
            let [cin, cout, kernel] = d3(&format!("dec.ups.{i}.weight"))?;
            let a = w.conv_attrs(&format!("dec.ups.{i}"));
            let stride = a.map_or(kernel / 2, |a| a.stride);
            let pad = a.map_or((kernel - stride) / 2, |a| a.pads.0);
            if stride == 0
                || kernel + 2 * pad < stride
                || kernel < 2 * pad
                || kernel - 2 * pad != stride
            {
                return Err(unsup(format!(
                    "upsampling layer {i}: kernel {kernel}, stride {stride}, pad {pad}"
                )));
            }
            ups.push(Upsample {
                cin,
                cout,
                kernel,
                stride,
                pad,
            });
        }
        let n_res = w
            .count("dec.resblocks.", ".convs1.0.weight")
            .max(w.count("dec.resblocks.", ".convs.0.weight"));
        if n_ups == 0 || n_res == 0 || !n_res.is_multiple_of(n_ups) {
            return Err(unsup(format!(
                "{n_ups} upsampling layers and {n_res} residual blocks"
            )));
        }
        let nk = n_res / n_ups;
        let resblock = if w.has("dec.resblocks.0.convs1.0.weight") {
            ResBlockKind::One
        } else {
            ResBlockKind::Two
        };
        let conv_list = if resblock == ResBlockKind::One {
            "convs1"
        } else {
            "convs"
        };
        let mut resblock_kernels = Vec::new();
        let mut resblock_dilations = Vec::new();
        for j in 0..nk {
            let nconv = w.count(&format!("dec.resblocks.{j}.{conv_list}."), ".weight");
            let [_, _, k] = d3(&format!("dec.resblocks.{j}.{conv_list}.0.weight"))?;
            resblock_kernels.push(k);
            let defaults: &[usize] = match (resblock, j) {
                (ResBlockKind::One, _) => &[1, 3, 5],
                (ResBlockKind::Two, 0) => &[1, 2],
                (ResBlockKind::Two, 1) => &[2, 6],
                (ResBlockKind::Two, _) => &[3, 12],
            };
            let dil = (0..nconv)
                .map(|c| {
                    w.conv_attrs(&format!("dec.resblocks.{j}.{conv_list}.{c}"))
                        .map_or(defaults.get(c).copied().unwrap_or(1), |a| a.dilation)
                })
                .collect();
            resblock_dilations.push(dil);
        }
        let [_, _, dec_post_kernel] = d3("dec.conv_post.weight")?;
        let (n_speakers, gin) = if w.has("emb_g.weight") {
            let [n, g] = d2("emb_g.weight")?;
            (n, Some(g))
        } else {
            (1, None)
        };
        Ok(Self {
            n_vocab,
            hidden,
            filter,
            n_heads: hidden / dk,
            n_layers,
            window: nrel / 2,
            ffn_kernel,
            inter,
            dp_filter,
            dp_kernel,
            dp_layers,
            dp_flows,
            dp_bins,
            flow_layers,
            flow_hidden,
            wn_layers,
            wn_kernel,
            dec_initial,
            dec_pre_kernel,
            ups,
            resblock,
            resblock_kernels,
            resblock_dilations,
            dec_post_kernel,
            n_speakers,
            gin,
        })
    }
}

/// A loaded voice: config, detected hyper-parameters and weights (borrowing the memory map).
#[derive(Debug, Clone)]
pub struct Voice {
    /// Path of the `.onnx` file.
    pub path: PathBuf,
    /// The `.onnx.json` config.
    pub config: VoiceConfig,
    /// Detected hyper-parameters.
    pub hparams: Hparams,
    /// Weights by module path.
    pub weights: Weights,
}

impl Voice {
    /// Load `<voice>.onnx` and the config beside it (`<voice>.onnx.json`).
    pub fn load(onnx_path: impl AsRef<Path>) -> Result<Self> {
        let path = onnx_path.as_ref();
        let mut json = path.as_os_str().to_owned();
        json.push(".json");
        let config = VoiceConfig::load(Path::new(&json))?;
        let weights = Self::load_weights(path)?;
        Self::from_parts(path, config, weights)
    }

    /// Decode the `.onnx` file's weights (memory-mapped, tensor payloads stay in the map).
    pub fn load_weights(path: &Path) -> Result<Weights> {
        let io = |e| TtsError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let bytes = crate::sys::map_file(&file).map_err(io)?;
        let model = ModelProto::decode(bytes).map_err(|e| TtsError::CorruptModel {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        Weights::from_model(&model, path)
    }

    /// Assemble a voice from an already parsed config and weights, checking that they agree.
    pub fn from_parts(path: &Path, config: VoiceConfig, weights: Weights) -> Result<Self> {
        let hparams = Hparams::detect(&weights)?;
        let max_id = config
            .phoneme_id_map
            .values()
            .flatten()
            .copied()
            .max()
            .unwrap_or(0);
        if max_id < 0 || max_id as usize >= hparams.n_vocab {
            return Err(TtsError::Mismatch(format!(
                "phoneme_id_map uses id {max_id} but the embedding table has {} rows",
                hparams.n_vocab
            )));
        }
        if config.num_speakers != hparams.n_speakers
            && !(config.num_speakers <= 1 && hparams.n_speakers == 1)
        {
            return Err(TtsError::Mismatch(format!(
                "config says {} speakers, weights have {}",
                config.num_speakers, hparams.n_speakers
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            config,
            hparams,
            weights,
        })
    }

    /// Output sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.config.audio.sample_rate
    }
}
