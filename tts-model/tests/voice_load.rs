//! Voice loading: typed errors, hyper-parameter detection for other tiers and multi-speaker voices
//! (synthetic ONNX files written with the crate's own protobuf subset, random weights), and the real
//! voice's weight map (needs the voice; skipped when absent).

use std::path::{Path, PathBuf};

use prost::Message;
use tts_model::onnx::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};
use tts_model::voice::{ResBlockKind, Upsample};
use tts_model::{SynthOptions, Synthesizer, TtsError, Voice};

struct Builder {
    graph: GraphProto,
    seed: u64,
    anon: usize,
}

fn segs(module: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for p in module.split('.') {
        match (p.parse::<usize>(), out.last_mut()) {
            (Ok(_), Some(last)) => {
                last.push('.');
                last.push_str(p);
            }
            _ => out.push(p.to_string()),
        }
    }
    format!("/{}", out.join("/"))
}

impl Builder {
    fn new() -> Self {
        Self {
            graph: GraphProto::default(),
            seed: 1,
            anon: 7000,
        }
    }

    fn tensor(&mut self, name: &str, dims: &[usize]) -> String {
        let n: usize = dims.iter().product();
        let mut raw = Vec::with_capacity(4 * n);
        for _ in 0..n {
            self.seed = self
                .seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = ((self.seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.4;
            raw.extend_from_slice(&v.to_le_bytes());
        }
        self.graph.initializer.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: 1,
            name: name.to_string(),
            raw_data: raw.into(),
            ..Default::default()
        });
        name.to_string()
    }

    /// A conv module: weight (named by module path, or anonymous like the flow's WN convs), bias,
    /// and a node carrying its attributes.
    fn conv(&mut self, module: &str, dims: [usize; 3], bias: bool, dil: usize, anon: bool) {
        let wname = if anon {
            self.anon += 3;
            format!("onnx::Conv_{}", self.anon)
        } else {
            format!("{module}.weight")
        };
        self.tensor(&wname, &dims);
        let mut inputs = vec!["x".to_string(), wname];
        if bias {
            inputs.push(self.tensor(&format!("{module}.bias"), &[dims[0]]));
        }
        let ints = |name: &str, v: Vec<i64>| AttributeProto {
            name: name.into(),
            ints: v,
            r#type: 7,
            ..Default::default()
        };
        let pad = (dil * (dims[2] - 1) / 2) as i64;
        self.graph.node.push(NodeProto {
            input: inputs,
            output: vec![format!("{module}_out")],
            name: format!("{}/Conv", segs(module)),
            op_type: "Conv".into(),
            attribute: vec![
                ints("dilations", vec![dil as i64]),
                ints("pads", vec![pad, pad]),
                ints("strides", vec![1]),
            ],
        });
    }

    fn conv_t(&mut self, module: &str, dims: [usize; 3], stride: usize, pad: usize) {
        let w = self.tensor(&format!("{module}.weight"), &dims);
        let b = self.tensor(&format!("{module}.bias"), &[dims[1]]);
        let ints = |name: &str, v: Vec<i64>| AttributeProto {
            name: name.into(),
            ints: v,
            r#type: 7,
            ..Default::default()
        };
        self.graph.node.push(NodeProto {
            input: vec!["x".into(), w, b],
            output: vec![format!("{module}_out")],
            name: format!("{}/ConvTranspose", segs(module)),
            op_type: "ConvTranspose".into(),
            attribute: vec![
                ints("strides", vec![stride as i64]),
                ints("pads", vec![pad as i64, pad as i64]),
            ],
        });
    }

    fn norm(&mut self, module: &str, c: usize) {
        self.tensor(&format!("{module}.gamma"), &[c]);
        self.tensor(&format!("{module}.beta"), &[c]);
    }

    fn dds(&mut self, prefix: &str, c: usize, layers: usize) {
        for l in 0..layers {
            self.conv(
                &format!("{prefix}.convs_sep.{l}"),
                [c, 1, 3],
                true,
                3usize.pow(l as u32),
                false,
            );
            self.conv(
                &format!("{prefix}.convs_1x1.{l}"),
                [c, c, 1],
                true,
                1,
                false,
            );
            self.norm(&format!("{prefix}.norms_1.{l}"), c);
            self.norm(&format!("{prefix}.norms_2.{l}"), c);
        }
    }
}

/// A tiny VITS with a HiFi-GAN V1-style decoder (ResBlock1, like the `high` tier) and 3 speakers.
fn tiny_voice(dir: &Path, vocab: usize, max_config_id: i64) -> PathBuf {
    let (h, heads, f, layers, inter, d, fh, wn, g) = (8, 2, 16, 2, 6, 8, 8, 2, 4);
    let mut b = Builder::new();
    let emb = b.tensor("sid", &[vocab, h]);
    b.graph.node.push(NodeProto {
        input: vec![emb, "input".into()],
        output: vec!["e".into()],
        name: "/enc_p/emb/Gather".into(),
        op_type: "Gather".into(),
        attribute: vec![],
    });
    for i in 0..layers {
        let a = format!("enc_p.encoder.attn_layers.{i}");
        for c in ["conv_q", "conv_k", "conv_v", "conv_o"] {
            b.conv(&format!("{a}.{c}"), [h, h, 1], true, 1, false);
        }
        b.tensor(&format!("{a}.emb_rel_k"), &[1, 9, h / heads]);
        b.tensor(&format!("{a}.emb_rel_v"), &[1, 9, h / heads]);
        b.norm(&format!("enc_p.encoder.norm_layers_1.{i}"), h);
        b.conv(
            &format!("enc_p.encoder.ffn_layers.{i}.conv_1"),
            [f, h, 3],
            true,
            1,
            false,
        );
        b.conv(
            &format!("enc_p.encoder.ffn_layers.{i}.conv_2"),
            [h, f, 3],
            true,
            1,
            false,
        );
        b.norm(&format!("enc_p.encoder.norm_layers_2.{i}"), h);
    }
    b.conv("enc_p.proj", [2 * inter, h, 1], true, 1, false);
    b.conv("dp.pre", [d, h, 1], true, 1, false);
    b.conv("dp.cond", [d, g, 1], true, 1, false);
    b.dds("dp.convs", d, 3);
    b.conv("dp.proj", [d, d, 1], true, 1, false);
    b.tensor("dp.flows.0.m", &[2, 1]);
    b.tensor("/dp/flows.0/Exp_output_0", &[2, 1]);
    for i in [1, 3, 5, 7] {
        b.conv(&format!("dp.flows.{i}.pre"), [d, 1, 1], true, 1, false);
        b.dds(&format!("dp.flows.{i}.convs"), d, 3);
        b.conv(&format!("dp.flows.{i}.proj"), [29, d, 1], true, 1, false);
    }
    for i in [0, 2, 4, 6] {
        let p = format!("flow.flows.{i}");
        b.conv(&format!("{p}.pre"), [fh, inter / 2, 1], true, 1, false);
        for l in 0..wn {
            b.conv(
                &format!("{p}.enc.in_layers.{l}"),
                [2 * fh, fh, 5],
                true,
                1,
                true,
            );
            let out = if l + 1 == wn { fh } else { 2 * fh };
            b.conv(
                &format!("{p}.enc.res_skip_layers.{l}"),
                [out, fh, 1],
                true,
                1,
                true,
            );
        }
        b.conv(
            &format!("{p}.enc.cond_layer"),
            [2 * fh * wn, g, 1],
            true,
            1,
            true,
        );
        b.conv(&format!("{p}.post"), [inter / 2, fh, 1], true, 1, false);
    }
    b.conv("dec.conv_pre", [16, inter, 7], true, 1, false);
    b.conv("dec.cond", [16, g, 1], true, 1, false);
    let ups = [(16, 8, 4, 2, 1), (8, 4, 9, 3, 3)];
    let (kernels, dils) = ([3, 5], [1, 2]);
    for (i, &(cin, cout, k, s, p)) in ups.iter().enumerate() {
        b.conv_t(&format!("dec.ups.{i}"), [cin, cout, k], s, p);
        for (j, &kk) in kernels.iter().enumerate() {
            let idx = i * kernels.len() + j;
            for (n, &dl) in dils.iter().enumerate() {
                b.conv(
                    &format!("dec.resblocks.{idx}.convs1.{n}"),
                    [cout, cout, kk],
                    true,
                    dl,
                    false,
                );
                b.conv(
                    &format!("dec.resblocks.{idx}.convs2.{n}"),
                    [cout, cout, kk],
                    true,
                    1,
                    false,
                );
            }
        }
    }
    b.conv("dec.conv_post", [1, 4, 7], false, 1, false);
    b.tensor("emb_g.weight", &[3, g]);
    let model = ModelProto {
        ir_version: 8,
        graph: Some(b.graph),
        ..Default::default()
    };
    let path = dir.join("tiny.onnx");
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    let cfg = serde_json::json!({
        "audio": {"sample_rate": 16000, "quality": "high"},
        "espeak": {"voice": "en-us"},
        "inference": {"noise_scale": 0.667, "length_scale": 1, "noise_w": 0.8},
        "phoneme_id_map": {"_": [0], "^": [1], "$": [2], "a": [max_config_id]},
        "num_speakers": 3,
        "speaker_id_map": {"x": 0, "y": 1, "z": 2}
    });
    std::fs::write(dir.join("tiny.onnx.json"), cfg.to_string()).unwrap();
    path
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tts-model-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn synthetic_high_tier_multi_speaker_voice_loads_and_runs() {
    let dir = tmpdir("tiny");
    let path = tiny_voice(&dir, 20, 19);
    let v = Voice::load(&path).expect("tiny voice loads");
    let hp = &v.hparams;
    assert_eq!(
        (
            hp.n_vocab,
            hp.hidden,
            hp.n_heads,
            hp.n_layers,
            hp.window,
            hp.filter
        ),
        (20, 8, 2, 2, 4, 16)
    );
    assert_eq!(
        (hp.inter, hp.dp_filter, hp.dp_layers, hp.dp_bins),
        (6, 8, 3, 10)
    );
    assert_eq!(hp.dp_flows, vec![7, 5, 3]);
    assert_eq!(hp.flow_layers, vec![6, 4, 2, 0]);
    assert_eq!((hp.flow_hidden, hp.wn_layers, hp.wn_kernel), (8, 2, 5));
    assert_eq!(hp.resblock, ResBlockKind::One);
    assert_eq!(hp.resblock_kernels, vec![3, 5]);
    assert_eq!(hp.resblock_dilations, vec![vec![1, 2], vec![1, 2]]);
    assert_eq!(
        hp.ups,
        vec![
            Upsample {
                cin: 16,
                cout: 8,
                kernel: 4,
                stride: 2,
                pad: 1
            },
            Upsample {
                cin: 8,
                cout: 4,
                kernel: 9,
                stride: 3,
                pad: 3
            }
        ]
    );
    assert_eq!((hp.n_speakers, hp.gin, hp.hop()), (3, Some(4), 6));
    // anonymous WN weights were mapped through their Conv nodes
    assert!(v.weights.has("flow.flows.6.enc.in_layers.1.weight"));
    assert!(v.weights.has("flow.flows.0.enc.cond_layer.weight"));

    let (s, _) = Synthesizer::load(&path, 1).expect("synthesizer");
    let ids = [1i64, 0, 5, 0, 19, 0, 7, 0, 2];
    let mut outs = Vec::new();
    for sp in 0..3 {
        let a = s
            .synthesize_ids(
                &ids,
                &SynthOptions {
                    speaker: Some(sp),
                    ..SynthOptions::deterministic()
                },
            )
            .unwrap();
        assert_eq!(a.samples.len(), a.frames * 6);
        assert!(a.frames >= ids.len());
        assert!(a.samples.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
        outs.push(a);
    }
    assert_ne!(
        outs[0].samples, outs[2].samples,
        "speaker conditioning has no effect"
    );
    let err = s.synthesize_ids(
        &ids,
        &SynthOptions {
            speaker: Some(3),
            ..SynthOptions::deterministic()
        },
    );
    assert!(matches!(err, Err(TtsError::Input(_))), "{err:?}");
    // seeded noise: reproducible, and different seeds differ
    let o = |seed| {
        s.synthesize_ids(
            &ids,
            &SynthOptions {
                seed,
                ..s.default_options()
            },
        )
        .unwrap()
        .samples
    };
    assert_eq!(o(5), o(5));
    assert_ne!(o(5), o(6));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn typed_errors() {
    let dir = tmpdir("errors");
    // missing file
    let e = Voice::load(dir.join("nope.onnx")).unwrap_err();
    assert!(matches!(e, TtsError::Io { .. }), "{e}");
    assert!(e.to_string().contains("fetch-voice.sh"));
    // config id beyond the embedding table
    let path = tiny_voice(&dir, 20, 25);
    let e = Voice::load(&path).unwrap_err();
    assert!(matches!(e, TtsError::Mismatch(_)), "{e}");
    // truncated protobuf
    let path = tiny_voice(&dir, 20, 19);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let e = Voice::load(&path).unwrap_err();
    assert!(
        matches!(e, TtsError::CorruptModel { .. } | TtsError::Weight { .. }),
        "{e}"
    );
    // not a VITS model: a valid protobuf without encoder layers
    let m = ModelProto {
        ir_version: 8,
        graph: Some(GraphProto::default()),
        ..Default::default()
    };
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    let e = Voice::load(&path).unwrap_err();
    assert!(
        matches!(e, TtsError::Weight { .. } | TtsError::Unsupported(_)),
        "{e}"
    );
    // broken json
    std::fs::write(dir.join("tiny.onnx.json"), "{\"audio\": 3}").unwrap();
    let e = Voice::load(&path).unwrap_err();
    assert!(matches!(e, TtsError::Config { .. }), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn real_voice_weight_map_and_hparams() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let p = std::env::var_os("TTS_VOICE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("voices/en_US-joe-medium.onnx"));
    if !p.exists() {
        eprintln!(
            "skipped: voice not found, run tts-model/scripts/fetch-voice.sh (or set TTS_VOICE)"
        );
        return;
    }
    let t = std::time::Instant::now();
    let v = Voice::load(&p).expect("voice");
    eprintln!(
        "parse time (test profile): {:.3} s",
        t.elapsed().as_secs_f64()
    );
    let hp = &v.hparams;
    assert_eq!(
        (
            hp.n_vocab,
            hp.hidden,
            hp.filter,
            hp.n_heads,
            hp.n_layers,
            hp.window
        ),
        (256, 192, 768, 2, 6, 4)
    );
    assert_eq!(
        (
            hp.inter,
            hp.dp_filter,
            hp.dp_bins,
            hp.flow_hidden,
            hp.wn_layers,
            hp.wn_kernel
        ),
        (192, 192, 10, 192, 4, 5)
    );
    assert_eq!(hp.resblock, ResBlockKind::Two);
    assert_eq!(
        hp.resblock_dilations,
        vec![vec![1, 2], vec![2, 6], vec![3, 12]]
    );
    assert_eq!(
        hp.ups
            .iter()
            .map(|u| (u.stride, u.kernel))
            .collect::<Vec<_>>(),
        vec![(8, 16), (8, 16), (4, 8)]
    );
    assert_eq!((hp.hop(), hp.n_speakers, hp.gin), (256, 1, None));
    assert_eq!(hp.flow_context(), 32);
    assert_eq!(hp.decoder_context(), 11); // 3 + 1 + 45/8 + 1/8 + 45/64 + 1/64 + 45/256 + 3/256 = 10.66
    // Every parameter of the published weight map (derived independently, with the onnx package)
    // is present under its module path with its shape.
    let tsv = std::fs::read_to_string(
        root.join("tts-model/tests/fixtures/piper-en_US-joe-medium-weight-map.tsv"),
    )
    .unwrap();
    let mut n = 0;
    for line in tsv.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        if c.len() < 5 || c[4] != "param" {
            continue;
        }
        let module = if c[0] == "/dp/flows.0/Exp_output_0" {
            "dp.flows.0.exp_neg_logs"
        } else {
            c[1]
        };
        let dims: Vec<usize> = c[2].split('x').map(|d| d.parse().unwrap()).collect();
        assert_eq!(
            v.weights.dims(module).unwrap_or_else(|e| panic!("{e}")),
            dims.as_slice(),
            "{module}"
        );
        n += 1;
    }
    assert!(n > 300, "weight map has {n} params");
}
