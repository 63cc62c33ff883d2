//! The compute API's SFPU template flags reach the simulator: an unmodified kernel calling
//! `gelu_tile<true>` / `gelu_tile<false>` (TT-Metal `compute_kernel_api/eltwise_unary/gelu.h`)
//! runs under the `ideal` SFPU model with identical results (ideal ignores approximation flags)
//! and, under `TT_SIM_SFPU=llk`, runs the modelled `<false>` and refuses `<true>` by name.

mod common;
use common::*;
use tt_formats::{bf16_to_f32, f32_to_bf16_host};
use tt_sim::*;

const GELU: &str = r#"
#include <cstdint>
#include "api/compute/eltwise_unary/eltwise_unary.h"
#include "api/compute/eltwise_unary/gelu.h"
#include "api/compute/tile_move_copy.h"

void kernel_main() {
    constexpr uint32_t num_tiles = get_compile_time_arg_val(0);
    constexpr uint32_t cb_in = 0, cb_out = 16;
    init_sfpu(cb_in, cb_out);
    gelu_tile_init<GELU_FAST>();
    for (uint32_t i = 0; i < num_tiles; ++i) {
        cb_wait_front(cb_in, 1);
        tile_regs_acquire();
        copy_tile(cb_in, 0, 0);
        gelu_tile<GELU_FAST>(0);
        tile_regs_commit();
        cb_pop_front(cb_in, 1);
        cb_reserve_back(cb_out, 1);
        tile_regs_wait();
        pack_tile(0, cb_out);
        tile_regs_release();
        cb_push_back(cb_out, 1);
    }
}
"#;

const TILES: u32 = 3;

/// Random bf16 values in +-[0.25, 3) (both signs, never zero; small enough for the erf series
/// of the reference to lose at most ~2 digits to cancellation).
fn input() -> Vec<u16> {
    random_bytes(TILES as usize * 1024 * 4, 0x9e1)
        .chunks(4)
        .map(|b| {
            let u = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let mag = 0.25 + (u >> 8) as f32 / (1u32 << 24) as f32 * 2.75;
            f32_to_bf16_host(if u & 1 == 1 { -mag } else { mag })
        })
        .collect()
}

/// Runs the GELU kernel with `gelu_tile<fast>` over the input; the output as bf16 bits.
fn run_gelu(fast: bool, x: &[u16]) -> SimResult<Vec<u16>> {
    let page = 2048u32;
    let grid = range(0, 0, 0, 0);
    let mut dev = SimDevice::open(SimArch::WormholeB0)?;
    let (bi, bo) = (
        dram_buffer(&mut dev, TILES as u64, page),
        dram_buffer(&mut dev, TILES as u64, page),
    );
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    dev.write_buffer(bi, 0, &bytes)?;
    let mut p = SimProgram::new(&dev);
    for i in [0, 16] {
        p.add_circular_buffer(&dev, &[grid], &cb(i, 2, page, BF16))?;
    }
    let r = p.add_kernel(&dm(
        "reader",
        READER,
        Risc::Ncrisc,
        vec![grid],
        accessor_args(true, page),
    ))?;
    let mut wargs = vec![16];
    wargs.extend(accessor_args(true, page));
    let w = p.add_kernel(&dm("writer", WRITER, Risc::Brisc, vec![grid], wargs))?;
    p.add_kernel(&KernelConfig {
        name: "gelu".into(),
        source: GELU.into(),
        kind: KernelKind::Compute(ComputeConfig::default()),
        cores: vec![grid],
        compile_args: vec![TILES],
        defines: vec![("GELU_FAST".into(), fast.to_string())],
    })?;
    let (ai, ao) = (
        dev.buffer_address(bi)? as u32,
        dev.buffer_address(bo)? as u32,
    );
    p.set_runtime_args(r, core(0, 0), &[ai, TILES, 0])?;
    p.set_runtime_args(w, core(0, 0), &[ao, TILES, 0])?;
    dev.run(&mut p)?;
    let mut out = vec![0u8; (TILES * page) as usize];
    dev.read_buffer(bo, 0, &mut out)?;
    Ok(out
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect())
}

/// erf by its Taylor series in f64 (|x| <= 2.2 here: terms stay below e^(x^2) ~ 130, so the
/// sum keeps ~13 significant digits).
fn erf(x: f64) -> f64 {
    let (mut term, mut sum, x2) = (x, x, x * x);
    for n in 1..200 {
        term *= -x2 / n as f64;
        let t = term / (2 * n + 1) as f64;
        sum += t;
        if t.abs() < 1e-17 {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// bf16 ulp at |v| (8 significant bits).
fn ulp_bf16(v: f64) -> f64 {
    2f64.powi(v.abs().log2().floor() as i32 - 7)
}

/// `|got - gelu(x)| <= ulps` bf16 ulps (at the larger magnitude of the two) plus `abs` plus
/// 1e-12 for the reference series; returns how many were bit-exact after rounding.
fn check(x: &[u16], out: &[u16], ulps: f64, abs: f64) -> usize {
    let mut exact = 0;
    for (i, (&a, &o)) in x.iter().zip(out).enumerate() {
        let want = gelu(bf16_to_f32(a) as f64);
        let got = bf16_to_f32(o) as f64;
        let tol = ulps * ulp_bf16(want.abs().max(got.abs())) + abs + 1e-12;
        assert!(
            (got - want).abs() <= tol,
            "element {i}: x {} got {got} want {want}",
            bf16_to_f32(a)
        );
        exact += (f32_to_bf16_host(want as f32) == o) as usize;
    }
    exact
}

fn sfpu_model_is_llk() -> bool {
    std::env::var("TT_SIM_SFPU").is_ok_and(|v| v.trim() == "llk")
}

#[test]
fn ideal_gelu_true_and_false_give_the_same_bits_and_the_exact_function() {
    if sfpu_model_is_llk() {
        return; // this process runs the llk child below; the ideal test needs the default model
    }
    let x = input();
    let fast = run_gelu(true, &x).unwrap();
    let precise = run_gelu(false, &x).unwrap();
    assert_eq!(fast, precise, "ideal must ignore fast_and_approx");
    // ideal: f64 GELU rounded once to f32, then to the nearest bf16: within half a bf16 ulp.
    let exact = check(&x, &precise, 0.5, 0.0);
    assert!(exact > 0, "no output matched the rounded reference");
}

#[test]
fn llk_runs_gelu_false_and_refuses_gelu_true() {
    // TT_SIM_SFPU is read once per process: run the check in a child process of this binary.
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .env("TT_SIM_SFPU", "llk")
        .args([
            "--ignored",
            "--exact",
            "llk_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "llk child failed:\n{text}");
    assert!(text.contains("1 passed"), "llk child did not run:\n{text}");
}

#[test]
#[ignore = "child of llk_runs_gelu_false_and_refuses_gelu_true (needs TT_SIM_SFPU=llk)"]
fn llk_child() {
    assert!(sfpu_model_is_llk(), "run with TT_SIM_SFPU=llk");
    let x = input();
    let precise = run_gelu(false, &x).unwrap();
    // The LLK's gelu<false> is a polynomial/erf approximation stored by truncation into the
    // 16-bit DEST: allow 2 bf16 ulps plus 2e-4 absolute (its error in the negative tail, where
    // GELU is ~-0.01, is ~1e-4 absolute); it must not be the ideal bits everywhere.
    let exact = check(&x, &precise, 2.0, 2e-4);
    assert!(
        exact < x.len(),
        "llk gave the ideal (correctly rounded) result everywhere"
    );
    let e = run_gelu(true, &x).unwrap_err().to_string();
    assert!(
        e.contains("Gelu")
            && e.contains("fast_and_approx = true")
            && e.contains("gelu_tile<fast_and_approx = false>"),
        "{e}"
    );
}
