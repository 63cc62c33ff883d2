//! Calibration of the timing model against tt-metal's published matmul utilisation
//! (`tech_reports/GEMM_FLOPS/GEMM_FLOPS.md`). Run with
//! `cargo bench -p tt-sim --bench gemm_calibration` (add `-- wh` or `-- bh` for one arch).
//! Prints a markdown table: the estimate is the simulator's ESTIMATED device time.
//! `CAL_ONLY=MxKxN` runs one shape; `CAL_SUMMARY=1` prints each run's profile summary;
//! `CAL_TILES=1` computes with tt-kernels' `bmm_large_block` (matmul_tiles) instead of the
//! matmul_block variant; `CAL_BW=n` overrides in0_block_w; `CAL_TRACE=dir` writes each run's Chrome/Perfetto trace there.

#[path = "common/mcast_matmul.rs"]
mod mcast_matmul;
use mcast_matmul::{Mm, run};
use tt_formats::DataFormat;
use tt_sim::{MathFidelity, SimArch};

/// (M, K, N, format, fidelity, in0_block_w, subblock h, w, published device utilisation %, source).
type Row = (
    u32,
    u32,
    u32,
    DataFormat,
    MathFidelity,
    u32,
    u32,
    u32,
    f64,
    &'static str,
);

const BF16: DataFormat = DataFormat::Float16_b;
const BFP8: DataFormat = DataFormat::Bfp8_b;

fn wh_rows() -> Vec<Row> {
    use MathFidelity::*;
    vec![
        (512, 1024, 1024, BF16, HiFi4, 8, 2, 4, 64.02, "N150 manual"),
        (1024, 1024, 1024, BF16, HiFi4, 8, 2, 4, 79.19, "N150 manual"),
        (1024, 1024, 2048, BF16, HiFi4, 8, 2, 4, 82.43, "N150 manual"),
        (1024, 2048, 2048, BF16, HiFi4, 8, 2, 4, 85.07, "N150 manual"),
        (2048, 2048, 2048, BF16, HiFi4, 8, 2, 4, 89.65, "N150 manual"),
        (1024, 2048, 2048, BFP8, HiFi2, 8, 2, 4, 80.51, "N150 manual"),
        (2048, 2048, 2048, BFP8, HiFi2, 8, 2, 4, 84.56, "N150 manual"),
        (1024, 1024, 1024, BFP8, LoFi, 8, 2, 4, 41.49, "N150 manual"),
        (2048, 2048, 2048, BFP8, LoFi, 8, 2, 4, 59.82, "N150 manual"),
        (
            1024,
            1024,
            1024,
            BF16,
            HiFi2,
            8,
            2,
            4,
            41.69,
            "N150 out-of-box",
        ),
        (
            2048,
            2048,
            2048,
            BF16,
            HiFi2,
            8,
            2,
            4,
            66.74,
            "N150 out-of-box",
        ),
    ]
}

fn bh_rows() -> Vec<Row> {
    use MathFidelity::*;
    vec![
        (
            640,
            1408,
            1408,
            BF16,
            HiFi2,
            11,
            2,
            4,
            41.77,
            "P150 out-of-box 11x10",
        ),
        (
            1280,
            1408,
            1408,
            BF16,
            HiFi2,
            11,
            2,
            4,
            61.41,
            "P150 out-of-box 11x10",
        ),
        (
            640,
            1408,
            2816,
            BF16,
            HiFi2,
            11,
            2,
            4,
            51.42,
            "P150 out-of-box 11x10",
        ),
        (
            1280,
            2816,
            2816,
            BF16,
            HiFi2,
            11,
            2,
            4,
            80.39,
            "P150 out-of-box 11x10",
        ),
        (
            2560,
            2816,
            2816,
            BF16,
            HiFi2,
            11,
            2,
            4,
            85.08,
            "P150 out-of-box 11x10",
        ),
        (
            640,
            1408,
            1408,
            BFP8,
            LoFi,
            11,
            2,
            4,
            24.85,
            "P150 out-of-box 11x10",
        ),
        (
            1280,
            1408,
            1408,
            BFP8,
            LoFi,
            11,
            2,
            4,
            43.39,
            "P150 out-of-box 11x10",
        ),
        (
            640,
            1408,
            2816,
            BFP8,
            LoFi,
            11,
            2,
            4,
            32.93,
            "P150 out-of-box 11x10",
        ),
        (
            1280,
            2816,
            2816,
            BFP8,
            LoFi,
            11,
            2,
            4,
            72.55,
            "P150 out-of-box 11x10",
        ),
        (
            2560,
            2816,
            2816,
            BFP8,
            LoFi,
            11,
            2,
            4,
            80.56,
            "P150 out-of-box 11x10",
        ),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let only =
        |a: &str| !args.iter().any(|x| x == "wh" || x == "bh") || args.iter().any(|x| x == a);
    let mut rows = Vec::new();
    if only("wh") {
        rows.extend(wh_rows().into_iter().map(|r| (SimArch::WormholeB0, r)));
    }
    if only("bh") {
        rows.extend(bh_rows().into_iter().map(|r| (SimArch::Blackhole, r)));
    }
    println!(
        "| arch | M x K x N | format / fidelity | source | published util % | published device us (derived) | ESTIMATED device us | ESTIMATED util % | error % | host s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (arch, (m, k, n, format, fidelity, bw, sh, sw, util, src)) in rows {
        let c = Mm {
            arch,
            m,
            k,
            n,
            format,
            fidelity,
            in0_block_w: std::env::var("CAL_BW")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(bw),
            out_subblock_h: sh,
            out_subblock_w: sw,
            matmul_block: std::env::var_os("CAL_TILES").is_none(),
        };
        if let Ok(f) = std::env::var("CAL_ONLY")
            && f != format!("{m}x{k}x{n}")
        {
            continue;
        }
        let t = std::time::Instant::now();
        let r = match run(&c, 1) {
            Ok(mut v) => v.remove(0),
            Err(e) => {
                println!("| {arch:?} | {m}x{k}x{n} | failed: {e} |");
                continue;
            }
        };
        let host = t.elapsed().as_secs_f64();
        let phases = match fidelity {
            MathFidelity::LoFi => 1.0,
            MathFidelity::HiFi2 => 2.0,
            MathFidelity::HiFi3 => 3.0,
            MathFidelity::HiFi4 => 4.0,
        };
        // Published definition: ideal cycles = tiles(M*K*N) * 16 * phases / cores.
        let tiles = (m as f64 / 32.0) * (k as f64 / 32.0) * (n as f64 / 32.0);
        let ideal = tiles * 16.0 * phases / r.cores as f64;
        let mhz = if arch == SimArch::Blackhole {
            1350.0
        } else {
            1000.0
        };
        let pub_us = ideal / (util / 100.0) / mhz;
        let est_us = r.stats.device_cycles as f64 / mhz;
        let est_util = ideal / r.stats.device_cycles as f64 * 100.0;
        let err = (est_us - pub_us) / pub_us * 100.0;
        println!(
            "| {} | {m}x{k}x{n} | {} {:?} | {src} | {util:.2} | {pub_us:.1} | {est_us:.1} | {est_util:.1} | {err:+.1} | {host:.1} |",
            if arch == SimArch::Blackhole {
                "BH p150"
            } else {
                "WH n150"
            },
            format.name(),
            fidelity
        );
        if std::env::var_os("CAL_SUMMARY").is_some() {
            eprintln!("{}", r.profile.summary());
        }
        if let Some(dir) = std::env::var_os("CAL_TRACE") {
            let path = std::path::Path::new(&dir).join(format!(
                "{}_{m}x{k}x{n}_{}_{fidelity:?}.json",
                if arch == SimArch::Blackhole {
                    "bh"
                } else {
                    "wh"
                },
                format.name()
            ));
            if let Err(e) = std::fs::write(&path, r.profile.to_chrome_trace()) {
                eprintln!("cannot write {}: {e}", path.display());
            }
        }
    }
}
