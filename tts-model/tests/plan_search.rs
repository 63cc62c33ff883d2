//! The auto planner on the real voice: the layer groups partition the voice's layers and every
//! plan the search can write resolves on it; `tts plan --search` argument errors. The search on
//! the simulator is exercised by the ignored test only (one evaluation, ~1-2 min on 2 cores). The
//! search logic itself is unit-tested with a fake evaluator in `src/precision/search.rs`.
//! Needs the voice (env `TTS_VOICE` or `<workspace>/voices/en_US-joe-medium.onnx`) where noted;
//! skipped without it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tts_model::Voice;
use tts_model::precision::search::{
    Gates, Granularity, SearchConfig, default_ladder, groups, plan_of,
};
use tts_model::precision::{self, Fidelity, Plan};

const TTS: &str = env!("CARGO_BIN_EXE_tts");

fn voice_path() -> Option<PathBuf> {
    let p = std::env::var_os("TTS_VOICE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../voices/en_US-joe-medium.onnx")
        });
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("SKIPPED: no voice (set TTS_VOICE or run tts-model/scripts/fetch-voice.sh)");
        None
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(TTS).args(args).output().expect("run tts")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn groups_partition_the_voice_and_every_searched_plan_resolves() {
    let Some(p) = voice_path() else { return };
    let v = Voice::load(&p).expect("voice loads");
    let layers = precision::layers(&v);
    let per_stage = v.hparams.resblock_kernels.len();
    for (granularity, want) in [(Granularity::Fine, 39), (Granularity::Coarse, 15)] {
        let g = groups(&layers, per_stage, granularity).expect("a partition");
        // Fine: emb, 6 attention, 6 FFN, proj, dp, 4 couplings x 4 parts, conv_pre, 3 ups,
        // 3 resblock stages, conv_post. Coarse: emb, attn, ffn, proj, dp, 4 flow parts,
        // conv_pre, ups, 3 stages, conv_post.
        assert_eq!(g.len(), want, "{granularity:?}");
        let n: usize = g.iter().map(|x| x.layers.len()).sum();
        assert_eq!(n, layers.len());
        let compute: usize = g.iter().map(|x| x.compute_layers).sum();
        assert_eq!(compute, layers.iter().filter(|l| l.is_compute()).count());
        let ladder = default_ladder();
        let cfg = SearchConfig {
            name: "auto".into(),
            gates: Gates::default(),
            groups: g,
            ladder: ladder.clone(),
            max_evaluations: 1,
            fallback_slack: None,
            fixed: Vec::new(),
        };
        // Every group at a different level: each layer gets its group's setting.
        let levels: Vec<usize> = (0..cfg.groups.len()).map(|i| i % ladder.len()).collect();
        let plan = plan_of(&cfg, &levels, &HashMap::new(), "test");
        let text = plan.to_toml(&["header".into()]);
        let back = Plan::from_toml(&text, "written").expect("reads back");
        assert_eq!(back, plan);
        let r = back.resolve(&layers).expect("every rule matches a layer");
        for (grp, &l) in cfg.groups.iter().zip(&levels) {
            for name in &grp.layers {
                assert_eq!(r.get(name), Some(ladder[l]), "{name} in {}", grp.name);
            }
        }
        // The top plan (the `hifi` preset's setting everywhere) isolates every compute layer;
        // the isolated groups of the mixed plan are exactly those at the top rung.
        let top = vec![ladder.len() - 1; cfg.groups.len()];
        let top_plan = plan_of(&cfg, &top, &HashMap::new(), "test");
        // What no group names (layer norms, eltwise glue) runs at the plan's default: the top
        // plan must be the `hifi` preset there too, not only on the compute layers (the default
        // was once the floor, so even the top candidate ran its norms in bf16 / LoFi).
        let hifi = Plan::preset("hifi").expect("preset");
        assert_eq!(top_plan.default, hifi.default);
        assert_eq!(plan.default, hifi.default);
        let rep = top_plan
            .resolve(&layers)
            .expect("resolves")
            .report(40, 200, 0);
        assert_eq!(rep.isolated_products, compute);
        let isolated: usize = cfg
            .groups
            .iter()
            .zip(&levels)
            .filter(|(_, l)| ladder[**l].isolate_products)
            .map(|(g, _)| g.compute_layers)
            .sum();
        assert_eq!(r.report(40, 200, 0).isolated_products, isolated);
    }
}

#[test]
fn the_floor_plan_meets_the_share_targets_on_paper() {
    let Some(p) = voice_path() else { return };
    let v = Voice::load(&p).expect("voice loads");
    let layers = precision::layers(&v);
    let g =
        groups(&layers, v.hparams.resblock_kernels.len(), Granularity::Fine).expect("partition");
    let cfg = SearchConfig {
        name: "auto".into(),
        gates: Gates::default(),
        groups: g,
        ladder: default_ladder(),
        max_evaluations: 1,
        fallback_slack: None,
        fixed: Vec::new(),
    };
    let plan = plan_of(&cfg, &vec![0; cfg.groups.len()], &HashMap::new(), "t");
    let rep = plan.resolve(&layers).expect("resolves").report(
        40,
        200,
        precision::vector_params(&v, &layers),
    );
    // The search starts from here: all LoFi, every weight in bfp4_b.
    assert_eq!(rep.layer_share(Fidelity::LoFi), 1.0);
    assert!(rep.bfp8_or_smaller_byte_share() > 0.98);
}

#[test]
fn search_argument_errors_are_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("auto.toml");
    let out_s = out.display().to_string();
    let o = run(&["plan", "--voice", "x.onnx", "--search", "auto"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--out"), "{}", text(&o));
    let o = run(&[
        "plan",
        "--voice",
        "x.onnx",
        "--search",
        "auto",
        "--out",
        &out_s,
        "--backend",
        "cpu",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--backend sim"), "{}", text(&o));
    let o = run(&[
        "plan",
        "--voice",
        "x.onnx",
        "--search",
        "auto",
        "--out",
        &out_s,
        "--max-mcd",
        "0",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--max-mcd"), "{}", text(&o));
    let empty = dir.path().join("calib.txt");
    std::fs::write(&empty, "# only a comment\n\n").expect("write");
    let o = run(&[
        "plan",
        "--voice",
        "x.onnx",
        "--search",
        "auto",
        "--out",
        &out_s,
        "--calibration",
        &empty.display().to_string(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("calibration set is empty"),
        "{}",
        text(&o)
    );
    let o = run(&[
        "plan",
        "--voice",
        "x.onnx",
        "--search",
        "auto",
        "--out",
        "/nonexistent-dir/auto.toml",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("does not exist"), "{}", text(&o));
    assert!(!out.exists(), "nothing written on errors");
}

#[test]
#[ignore = "expensive: one simulator evaluation (~1-2 min on 2 cores); run with cargo test -p tts-model --test plan_search -- --ignored"]
fn one_evaluation_writes_an_honest_plan() {
    let Some(p) = voice_path() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let calib = dir.path().join("calib.txt");
    std::fs::write(&calib, "Hello world.\n").expect("write");
    let out = dir.path().join("auto.toml");
    let o = run(&[
        "plan",
        "--voice",
        &p.display().to_string(),
        "--search",
        "auto",
        "--out",
        &out.display().to_string(),
        "--calibration",
        &calib.display().to_string(),
        "--max-evals",
        "1",
    ]);
    let t = text(&o);
    assert!(t.contains("[  1] floor"), "{t}");
    let written = std::fs::read_to_string(&out).expect("the best plan is written either way");
    let plan = Plan::from_toml(&written, "written").expect("reads back");
    assert_eq!(plan.name, "auto");
    // Success only when the gates are met, and the header says which.
    if o.status.success() {
        assert!(written.contains("# GATES MET"), "{written}");
    } else {
        assert!(written.contains("# GATES NOT MET"), "{written}");
        assert!(t.contains("gates NOT MET"), "{t}");
    }
    assert!(
        written.contains("calibration 1: \"Hello world.\""),
        "{written}"
    );
}
