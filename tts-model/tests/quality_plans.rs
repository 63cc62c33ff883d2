//! Precision plans applied to the real voice: layer list, parameter totals and FLOP counts checked
//! against MODEL.md's independently derived costs (decoder 22.68 M MAC per frame, flow 7.08 M per
//! frame, encoder 6.27 M per id). Needs the voice: env `TTS_VOICE` or
//! `<workspace>/voices/en_US-joe-medium.onnx` (tts-model/scripts/fetch-voice.sh); skipped otherwise.

use std::path::PathBuf;

use tts_model::Voice;
use tts_model::precision::{self, ActivationFormat, Fidelity, LayerKind, Plan, Rate, WeightFormat};

fn voice() -> Option<Voice> {
    let p = std::env::var_os("TTS_VOICE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../voices/en_US-joe-medium.onnx")
        });
    if !p.exists() {
        eprintln!(
            "skipped: voice not found, run tts-model/scripts/fetch-voice.sh (or set TTS_VOICE)"
        );
        return None;
    }
    Some(Voice::load(&p).expect("voice loads"))
}

#[test]
fn layer_costs_match_model_md() {
    let Some(v) = voice() else { return };
    let layers = precision::layers(&v);
    let macs = |prefix: &str, ids: usize, frames: usize| -> f64 {
        layers
            .iter()
            .filter(|l| {
                l.name.starts_with(prefix)
                    && matches!(
                        l.kind,
                        LayerKind::Conv { .. } | LayerKind::ConvTranspose { .. }
                    )
            })
            .map(|l| l.flops(ids, frames) / 2.0)
            .sum()
    };
    // MODEL.md section 5 (rounded to 0.01 M): check to 0.5%.
    let dec = macs("dec.", 0, 1);
    assert!(
        (dec / 22.68e6 - 1.0).abs() < 0.005,
        "decoder {dec} MAC/frame"
    );
    let flow = macs("flow.", 0, 1);
    assert!((flow / 7.08e6 - 1.0).abs() < 0.005, "flow {flow} MAC/frame");
    let enc = macs("enc_p.", 1, 0);
    assert!((enc / 6.27e6 - 1.0).abs() < 0.005, "encoder {enc} MAC/id");
    // 6 layers x (rel_k + rel_v) attention cores, 3 upsampling conv-transposes.
    let cores = layers
        .iter()
        .filter(|l| matches!(l.kind, LayerKind::AttentionCore { .. }))
        .count();
    assert_eq!(cores, 12);
    let ups: Vec<_> = layers
        .iter()
        .filter(|l| l.name.starts_with("dec.ups."))
        .collect();
    assert_eq!(ups.len(), 3);
    assert_eq!(ups[2].rate, Rate::Frames(64));
    let post = layers
        .iter()
        .find(|l| l.name == "dec.conv_post")
        .expect("conv_post");
    assert_eq!(post.rate, Rate::Frames(256));
    // All parameters are accounted for: layers + vectors = 15.65 M (MODEL.md).
    let total =
        layers.iter().map(|l| l.params).sum::<usize>() + precision::vector_params(&v, &layers);
    assert!(
        (total as f64 / 15.65e6 - 1.0).abs() < 0.005,
        "{total} parameters"
    );
}

#[test]
fn presets_on_the_voice() {
    let Some(v) = voice() else { return };
    let layers = precision::layers(&v);
    let vec_params = precision::vector_params(&v, &layers);
    let hifi = Plan::preset("hifi")
        .expect("preset")
        .resolve(&layers)
        .expect("resolves");
    let r = hifi.report(40, 200, vec_params);
    assert_eq!(r.layer_share(Fidelity::HiFi4), 1.0);
    assert_eq!(r.bfp8_or_smaller_byte_share(), 0.0);
    // hifi: every layer's weights in bf16x2 (4 bytes per parameter), the bias/norm vectors in
    // bf16 (2 bytes); every compute layer with fp32x2 activations.
    let layer_params: usize = layers.iter().map(|l| l.params).sum();
    let fmt = |r: &precision::PlanReport, w: WeightFormat| {
        r.by_format.iter().find(|e| e.0 == w).map(|e| (e.1, e.2))
    };
    assert_eq!(
        fmt(&r, WeightFormat::Bf16x2),
        Some((layer_params, 4.0 * layer_params as f64))
    );
    assert_eq!(
        fmt(&r, WeightFormat::Bf16),
        Some((vec_params, 2.0 * vec_params as f64))
    );
    let x2 = 4.0 * layer_params as f64;
    let share = r.byte_share(WeightFormat::Bf16x2);
    assert!(
        (share - x2 / (x2 + 2.0 * vec_params as f64)).abs() < 1e-12,
        "{share}"
    );
    assert_eq!(
        r.activation_layers(ActivationFormat::Fp32x2),
        r.compute_layers
    );
    // ... and isolated products on every compute layer.
    assert_eq!(r.isolated_products, r.compute_layers);
    // hifi-bf16 (the previous hifi): the same layers in bf16 with fp32 activations.
    let r = Plan::preset("hifi-bf16")
        .expect("preset")
        .resolve(&layers)
        .expect("resolves")
        .report(40, 200, vec_params);
    assert_eq!(r.layer_share(Fidelity::HiFi4), 1.0);
    assert_eq!(
        fmt(&r, WeightFormat::Bf16),
        Some((
            layer_params + vec_params,
            2.0 * (layer_params + vec_params) as f64
        ))
    );
    assert_eq!(fmt(&r, WeightFormat::Bf16x2), Some((0, 0.0)));
    assert_eq!(
        r.activation_layers(ActivationFormat::Fp32),
        r.compute_layers
    );
    assert_eq!(r.isolated_products, 0);
    let lofi = Plan::preset("bfp8-lofi")
        .expect("preset")
        .resolve(&layers)
        .expect("resolves");
    let r = lofi.report(40, 200, vec_params);
    assert_eq!(r.layer_share(Fidelity::LoFi), 1.0);
    assert!(r.exceptions.is_empty());
    // Only bias/norm vectors stay bf16: their bytes are < 1% of the total.
    let share = r.bfp8_or_smaller_byte_share();
    assert!(share > 0.99 && share < 1.0, "bfp8 byte share {share}");
    let bf16 = r
        .by_format
        .iter()
        .find(|e| e.0 == WeightFormat::Bf16)
        .map(|e| e.1);
    assert_eq!(bf16, Some(vec_params));
}

/// The embedded `auto` plan (written by `tts plan --search auto`) resolves on the voice, and the
/// shares its header states are those of the plan as it stands (a hand edit that changes the
/// rules without re-running the search makes this fail: re-run the search or fix the header).
#[test]
fn auto_preset_resolves_and_its_header_shares_are_current() {
    let Some(v) = voice() else { return };
    let layers = precision::layers(&v);
    let auto = Plan::preset("auto").expect("embedded auto plan parses");
    let r = auto
        .resolve(&layers)
        .expect("every rule of auto.toml matches a layer");
    let rep = r.report(40, 200, precision::vector_params(&v, &layers));
    let text = precision::PRESETS
        .iter()
        .find(|(n, _)| *n == "auto")
        .map(|(_, t)| *t)
        .expect("auto preset");
    let shares = text
        .lines()
        .find_map(|l| l.strip_prefix("# shares: "))
        .expect("header has a shares line");
    let pct = |after: &str| -> f64 {
        let i = shares.find(after).expect("share in the header");
        let head = &shares[..i];
        let start = head
            .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map_or(0, |p| p + 1);
        head[start..].parse().expect("a number before the % sign")
    };
    let lofi = pct("% of compute layers in LoFi");
    let bfp8 = pct("% of weight bytes in BFP8 or smaller");
    // The header rounds to 0.1%.
    assert!(
        (lofi - 100.0 * rep.layer_share(Fidelity::LoFi)).abs() <= 0.051,
        "{shares}"
    );
    assert!(
        (bfp8 - 100.0 * rep.bfp8_or_smaller_byte_share()).abs() <= 0.051,
        "{shares}"
    );
    assert!(
        text.contains("# GATES "),
        "the header states whether the gates were met"
    );
}

/// `tts plan --layers` prints every layer's setting in the plan-file spelling: `hifi` is
/// bf16x2 / fp32x2 with isolated products (`/iso`) on every layer, `hifi-bf16` bf16 / fp32
/// without, and the shares list bf16x2 as its own weight format and count the isolated layers.
#[test]
fn tts_plan_layers_prints_the_split_formats() {
    let Some(v) = voice() else { return };
    let path = std::env::var_os("TTS_VOICE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../voices/en_US-joe-medium.onnx")
        });
    let n_layers = precision::layers(&v).len();
    let compute = precision::layers(&v)
        .iter()
        .filter(|l| l.is_compute())
        .count();
    for (preset, setting, isolated) in [
        ("hifi", "bf16x2/HiFi4/fp32acc/fp32x2act/iso", compute),
        ("hifi-bf16", "bf16/HiFi4/fp32acc/fp32act", 0),
    ] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_tts"))
            .args(["plan", "--voice"])
            .arg(&path)
            .args(["--precision", preset, "--layers"])
            .output()
            .expect("run tts");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        // One line per layer, `name setting` (the report's exception lines are indented).
        let listed = out
            .lines()
            .filter(|l| !l.starts_with(' ') && l.split_whitespace().nth(1) == Some(setting))
            .count();
        assert_eq!(listed, n_layers, "{preset}: {out}");
        assert!(out.contains("  bf16x2 "), "{out}");
        assert!(out.contains("activations (compute layers): "), "{out}");
        assert!(
            out.contains(&format!(
                "isolated products (8 masked passes of the main term, ~8x its FPU work): {isolated}/{compute} compute layers"
            )),
            "{out}"
        );
    }
}
