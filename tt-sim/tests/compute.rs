//! Compute end to end: unmodified reader / compute / writer kernels on the simulator, checked
//! against an independent f64 reference.

mod common;
use common::*;
use tt_formats::{bf16_to_f32, f32_to_bf16_host};
use tt_sim::*;

const READER2: &str = include_str!("../../kernels/dataflow/reader_binary_interleaved.cpp");
const BINARY: &str = include_str!("../../kernels/compute/eltwise_binary.cpp");
const BINARY_LEGACY: &str = include_str!("../../kernels/compute/eltwise_binary_legacy.cpp");

/// Random bf16 tiles with values in +-[0.5, 8) (normal numbers, both signs).
fn random_bf16(n: usize, seed: u64) -> Vec<u16> {
    random_bytes(n * 4, seed)
        .chunks(4)
        .map(|b| {
            let u = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let mag = 0.5 + (u >> 8) as f32 / (1u32 << 24) as f32 * 7.5;
            f32_to_bf16_host(if u & 1 == 1 { -mag } else { mag })
        })
        .collect()
}

fn to_bytes(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_bytes(b: &[u8]) -> Vec<u16> {
    b.chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// bf16 unit in the last place of `x` (8 significant bits).
fn ulp_bf16(x: f64) -> f64 {
    if x == 0.0 {
        return f64::MIN_POSITIVE;
    }
    2f64.powi(x.abs().log2().floor() as i32 - 7)
}

/// Runs in0 (op) in1 over `tiles` bf16 tiles on `grid`; returns (a, b, out) as bf16 bits.
fn run_binary(
    arch: SimArch,
    tiles: u32,
    grid: CoreRange,
    source: &str,
    legacy: bool,
    defines: Vec<(String, String)>,
    seed: u64,
) -> SimResult<(Vec<u16>, Vec<u16>, Vec<u16>)> {
    let page = 2048u32;
    let mut dev = SimDevice::open(arch)?;
    let a = random_bf16(tiles as usize * 1024, seed);
    let b = random_bf16(tiles as usize * 1024, seed + 100);
    let (ba, bb, bo) = (
        dram_buffer(&mut dev, tiles as u64, page),
        dram_buffer(&mut dev, tiles as u64, page),
        dram_buffer(&mut dev, tiles as u64, page),
    );
    dev.write_buffer(ba, 0, &to_bytes(&a))?;
    dev.write_buffer(bb, 0, &to_bytes(&b))?;
    let cores: Vec<CoreCoord> = grid.iter().collect();
    let per_core = tiles / cores.len() as u32;
    assert_eq!(
        per_core * cores.len() as u32,
        tiles,
        "test splits tiles evenly"
    );
    let mut p = SimProgram::new(&dev);
    for i in [0, 1, 16] {
        p.add_circular_buffer(&dev, &[grid], &cb(i, 2, page, BF16))?;
    }
    let mut rargs = accessor_args(true, page);
    rargs.extend(accessor_args(true, page));
    let r = p.add_kernel(&dm(
        "reader_binary",
        READER2,
        Risc::Ncrisc,
        vec![grid],
        rargs,
    ))?;
    let mut wargs = vec![16];
    wargs.extend(accessor_args(true, page));
    let w = p.add_kernel(&dm("writer", WRITER, Risc::Brisc, vec![grid], wargs))?;
    let c = p.add_kernel(&KernelConfig {
        name: "eltwise_binary".into(),
        source: source.into(),
        kind: KernelKind::Compute(ComputeConfig::default()),
        cores: vec![grid],
        compile_args: vec![per_core],
        defines,
    })?;
    let addr = |id| dev.buffer_address(id).map(|a| a as u32);
    let (aa, ab, ao) = (addr(ba)?, addr(bb)?, addr(bo)?);
    for (i, core) in cores.iter().enumerate() {
        let start = i as u32 * per_core;
        p.set_runtime_args(r, *core, &[aa, ab, per_core, start])?;
        p.set_runtime_args(w, *core, &[ao, per_core, start])?;
        if legacy {
            p.set_runtime_args(c, *core, &[per_core])?;
        }
    }
    dev.run(&mut p)?;
    let mut out = vec![0u8; (tiles * page) as usize];
    dev.read_buffer(bo, 0, &mut out)?;
    Ok((a, b, from_bytes(&out)))
}

/// `|got - exact| <= ulps` bf16 ulps of the exact value, element by element.
fn check_within_ulps(a: &[u16], b: &[u16], out: &[u16], ulps: f64, f: impl Fn(f64, f64) -> f64) {
    let mut exact_matches = 0;
    for i in 0..out.len() {
        let exact = f(bf16_to_f32(a[i]) as f64, bf16_to_f32(b[i]) as f64);
        let got = bf16_to_f32(out[i]) as f64;
        assert!(
            (got - exact).abs() <= ulps * ulp_bf16(exact),
            "element {i}: got {got}, exact {exact}"
        );
        if got == exact {
            exact_matches += 1;
        }
    }
    assert!(
        exact_matches > 0 && exact_matches < out.len(),
        "rounding never or always exact: suspicious data"
    );
}

#[test]
fn eltwise_add_bf16_wormhole_4_cores() {
    let (a, b, out) = run_binary(
        SimArch::WormholeB0,
        8,
        range(0, 0, 1, 1),
        BINARY,
        false,
        vec![],
        11,
    )
    .unwrap();
    // One ELWADD rounded once into bf16 DEST: within 1 bf16 ulp of the exact sum.
    check_within_ulps(&a, &b, &out, 1.0, |x, y| x + y);
}

#[test]
fn eltwise_mul_bf16_blackhole() {
    let (a, b, out) = run_binary(
        SimArch::Blackhole,
        3,
        range(5, 5, 5, 5),
        BINARY,
        false,
        vec![("ELTWISE_MUL".into(), String::new())],
        12,
    )
    .unwrap();
    // HiFi4 ELWMUL runs 4 phases, each added into the 16-bit DEST with one bf16 rounding
    // (<= 1 ulp each), so the product is within 4 bf16 ulps of the exact one.
    check_within_ulps(&a, &b, &out, 4.0, |x, y| x * y);
}

#[test]
fn legacy_namespace_main_dialect_runs() {
    let (a, b, out) = run_binary(
        SimArch::WormholeB0,
        2,
        range(3, 1, 3, 1),
        BINARY_LEGACY,
        true,
        vec![],
        13,
    )
    .unwrap();
    // One ELWADD rounded once into bf16 DEST: within 1 bf16 ulp of the exact sum.
    check_within_ulps(&a, &b, &out, 1.0, |x, y| x + y);
}

#[test]
fn same_program_twice_gives_identical_bits() {
    let run = || {
        run_binary(
            SimArch::WormholeB0,
            4,
            range(0, 0, 3, 0),
            BINARY,
            false,
            vec![("ELTWISE_SUB".into(), String::new())],
            14,
        )
        .unwrap()
    };
    let (_, _, o1) = run();
    let (_, _, o2) = run();
    assert_eq!(o1, o2);
}

const MM_READER: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    const uint32_t a_addr = get_arg_val<uint32_t>(0), b_addr = get_arg_val<uint32_t>(1);
    const uint32_t na = get_arg_val<uint32_t>(2), nb = get_arg_val<uint32_t>(3);
    const InterleavedAddrGenFast<true> a = {.bank_base_address = a_addr, .page_size = 2048, .data_format = get_dataformat(0)};
    const InterleavedAddrGenFast<true> b = {.bank_base_address = b_addr, .page_size = 2048, .data_format = get_dataformat(1)};
    cb_reserve_back(0, na);
    for (uint32_t i = 0; i < na; i++) noc_async_read_tile(i, a, get_write_ptr(0) + i * 2048);
    cb_reserve_back(1, nb);
    for (uint32_t i = 0; i < nb; i++) noc_async_read_tile(i, b, get_write_ptr(1) + i * 2048);
    noc_async_read_barrier();
    cb_push_back(0, na);
    cb_push_back(1, nb);
}
"#;

/// C[RT x CT tiles] = A[RT x KT] * B[KT x CT], all blocks resident, one DEST acquire.
const MM_COMPUTE: &str = r#"
#include "api/compute/matmul.h"
#include "api/compute/tile_move_copy.h"
void kernel_main() {
    constexpr uint32_t RT = get_compile_time_arg_val(0), CT = get_compile_time_arg_val(1), KT = get_compile_time_arg_val(2);
    compute_kernel_hw_startup<SrcOrder::Reverse>(0, 1, 16);
    matmul_block_init(0, 1, 0, CT, RT, KT);
    cb_wait_front(0, RT * KT);
    cb_wait_front(1, KT * CT);
    tile_regs_acquire();
    for (uint32_t k = 0; k < KT; k++) {
#ifdef USE_MATMUL_TILES
        for (uint32_t r = 0; r < RT; r++)
            for (uint32_t c = 0; c < CT; c++) matmul_tiles(0, 1, r * KT + k, k * CT + c, r * CT + c);
#else
        matmul_block(0, 1, k, k * CT, 0, 0, CT, RT, KT);
#endif
    }
    tile_regs_commit();
    cb_reserve_back(16, RT * CT);
    tile_regs_wait();
    for (uint32_t i = 0; i < RT * CT; i++) pack_tile(i, 16);
    tile_regs_release();
    cb_push_back(16, RT * CT);
    cb_pop_front(0, RT * KT);
    cb_pop_front(1, KT * CT);
}
"#;

fn run_matmul(
    m: usize,
    k: usize,
    n: usize,
    fidelity: MathFidelity,
    tiles_api: bool,
    seed: u64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (rt, kt, ct) = (m / 32, k / 32, n / 32);
    let a: Vec<f32> = random_bf16(m * k, seed)
        .iter()
        .map(|&x| bf16_to_f32(x))
        .collect();
    let b: Vec<f32> = random_bf16(k * n, seed + 1)
        .iter()
        .map(|&x| bf16_to_f32(x))
        .collect();
    let tiles = |rows, cols, v: &[f32]| -> Vec<u8> {
        let t = tt_formats::tilize(rows, cols, v).unwrap();
        t.iter()
            .flat_map(|&x| f32_to_bf16_host(x).to_le_bytes())
            .collect()
    };
    let mut dev = SimDevice::open(SimArch::WormholeB0).unwrap();
    let (ba, bb, bo) = (
        dram_buffer(&mut dev, (rt * kt) as u64, 2048),
        dram_buffer(&mut dev, (kt * ct) as u64, 2048),
        dram_buffer(&mut dev, (rt * ct) as u64, 2048),
    );
    dev.write_buffer(ba, 0, &tiles(m, k, &a)).unwrap();
    dev.write_buffer(bb, 0, &tiles(k, n, &b)).unwrap();
    let g = range(0, 0, 0, 0);
    let mut p = SimProgram::new(&dev);
    p.add_circular_buffer(&dev, &[g], &cb(0, (rt * kt) as u32, 2048, BF16))
        .unwrap();
    p.add_circular_buffer(&dev, &[g], &cb(1, (kt * ct) as u32, 2048, BF16))
        .unwrap();
    p.add_circular_buffer(&dev, &[g], &cb(16, (rt * ct) as u32, 2048, BF16))
        .unwrap();
    let r = p
        .add_kernel(&dm("mm_reader", MM_READER, Risc::Ncrisc, vec![g], vec![]))
        .unwrap();
    let mut wargs = vec![16];
    wargs.extend(accessor_args(true, 2048));
    let w = p
        .add_kernel(&dm("writer", WRITER, Risc::Brisc, vec![g], wargs))
        .unwrap();
    let defines = if tiles_api {
        vec![("USE_MATMUL_TILES".into(), String::new())]
    } else {
        vec![]
    };
    p.add_kernel(&KernelConfig {
        name: "matmul".into(),
        source: MM_COMPUTE.into(),
        kind: KernelKind::Compute(ComputeConfig {
            math_fidelity: fidelity,
            ..Default::default()
        }),
        cores: vec![g],
        compile_args: vec![rt as u32, ct as u32, kt as u32],
        defines,
    })
    .unwrap();
    let addr = |id| dev.buffer_address(id).unwrap() as u32;
    p.set_runtime_args(
        r,
        core(0, 0),
        &[addr(ba), addr(bb), (rt * kt) as u32, (kt * ct) as u32],
    )
    .unwrap();
    p.set_runtime_args(w, core(0, 0), &[addr(bo), (rt * ct) as u32, 0])
        .unwrap();
    dev.run(&mut p).unwrap();
    let mut out = vec![0u8; rt * ct * 2048];
    dev.read_buffer(bo, 0, &mut out).unwrap();
    let vals: Vec<f32> = from_bytes(&out).iter().map(|&x| bf16_to_f32(x)).collect();
    (a, b, tt_formats::untilize(&vals, m, n).unwrap())
}

#[test]
fn matmul_block_bf16_hifi4_matches_f64_reference() {
    let (m, k, n) = (64, 96, 64);
    let (a, b, c) = run_matmul(m, k, n, MathFidelity::HiFi4, false, 31);
    // Error bound: with a bf16 DEST every MVMUL result is rounded to bf16 as it is added
    // (4 phases x 3 K-tiles = 12 roundings of a partial sum bounded by sum|a||b|, each <= 2^-8
    // relative), plus the final pack; 16 * 2^-8 * sum|a||b| covers it.
    for i in 0..m {
        for j in 0..n {
            let (mut exact, mut mag) = (0f64, 0f64);
            for kk in 0..k {
                let p = a[i * k + kk] as f64 * b[kk * n + j] as f64;
                exact += p;
                mag += p.abs();
            }
            let got = c[i * n + j] as f64;
            assert!(
                (got - exact).abs() <= 16.0 * mag / 256.0,
                "C[{i}][{j}] = {got}, exact {exact}"
            );
        }
    }
}

#[test]
fn matmul_block_and_matmul_tiles_give_identical_bits() {
    let (_, _, c1) = run_matmul(64, 64, 96, MathFidelity::LoFi, false, 41);
    let (_, _, c2) = run_matmul(64, 64, 96, MathFidelity::LoFi, true, 41);
    assert_eq!(c1, c2);
}

/// The broadcast-copy API keeps TT-Metal's signature `unary_bcast_init<bcast>(icb, ocb)` (and the
/// older one-argument form): a kernel written against the real headers must build.
#[test]
fn unary_bcast_init_takes_tt_metal_signature() {
    const KERNEL: &str = r#"
#include "api/compute/bcast.h"
#include "api/compute/tile_move_copy.h"
void kernel_main() {
    unary_bcast_init<BroadcastType::ROW>(0, 16);
    unary_bcast_init<BroadcastType::COL>(0);
    tile_regs_acquire();
    unary_bcast<BroadcastType::ROW>(0, 0, 0);
    tile_regs_commit();
    tile_regs_wait();
    tile_regs_release();
}
"#;
    let dev = SimDevice::open(SimArch::WormholeB0).unwrap();
    let grid = range(0, 0, 0, 0);
    let mut p = SimProgram::new(&dev);
    p.add_kernel(&KernelConfig {
        name: "unary_bcast_signature".into(),
        source: KERNEL.into(),
        kind: KernelKind::Compute(ComputeConfig::default()),
        cores: vec![grid],
        compile_args: vec![],
        defines: vec![],
    })
    .expect("a kernel using the TT-Metal unary_bcast_init signature builds");
}

/// `unary_bcast<COL>` runs with only its input and output CBs configured (regression: the timing
/// code once read the broadcast code as a CB index, so COL failed with "CB 2 is not configured"),
/// and broadcasts column 0 of each row: `out[r][c] = in[r][0]`, bit-exact for bf16 data.
#[test]
fn unary_bcast_col_runs_without_other_cbs_and_broadcasts_column_0() {
    const KERNEL: &str = r#"
#include "api/compute/bcast.h"
#include "api/compute/tile_move_copy.h"
#include "api/compute/pack.h"
void kernel_main() {
    unary_bcast_init<BroadcastType::COL>(0, 16);
    cb_wait_front(0, 1);
    cb_reserve_back(16, 1);
    tile_regs_acquire();
    unary_bcast<BroadcastType::COL>(0, 0, 0);
    tile_regs_commit();
    tile_regs_wait();
    pack_tile(0, 16);
    tile_regs_release();
    cb_push_back(16, 1);
    cb_pop_front(0, 1);
}
"#;
    let page = 2048u32;
    let mut dev = SimDevice::open(SimArch::WormholeB0).unwrap();
    let grid = range(0, 0, 0, 0);
    let a = random_bf16(1024, 77);
    let (src, dst) = (
        dram_buffer(&mut dev, 1, page),
        dram_buffer(&mut dev, 1, page),
    );
    dev.write_buffer(src, 0, &to_bytes(&a)).unwrap();
    let mut p = SimProgram::new(&dev);
    for i in [0, 16] {
        p.add_circular_buffer(&dev, &[grid], &cb(i, 2, page, BF16))
            .unwrap();
    }
    let r = p
        .add_kernel(&dm(
            "reader",
            READER,
            Risc::Ncrisc,
            vec![grid],
            accessor_args(true, page),
        ))
        .unwrap();
    let mut wargs = vec![16];
    wargs.extend(accessor_args(true, page));
    let w = p
        .add_kernel(&dm("writer", WRITER, Risc::Brisc, vec![grid], wargs))
        .unwrap();
    p.add_kernel(&KernelConfig {
        name: "unary_bcast_col".into(),
        source: KERNEL.into(),
        kind: KernelKind::Compute(ComputeConfig::default()),
        cores: vec![grid],
        compile_args: vec![],
        defines: vec![],
    })
    .unwrap();
    let (sa, da) = (
        dev.buffer_address(src).unwrap() as u32,
        dev.buffer_address(dst).unwrap() as u32,
    );
    p.set_runtime_args(r, core(0, 0), &[sa, 1, 0]).unwrap();
    p.set_runtime_args(w, core(0, 0), &[da, 1, 0]).unwrap();
    dev.run(&mut p)
        .expect("unary_bcast<COL> with only CBs 0 and 16 runs");
    let mut out = vec![0u8; page as usize];
    dev.read_buffer(dst, 0, &mut out).unwrap();
    let input = tt_formats::untilize(
        &a.iter().map(|&x| bf16_to_f32(x)).collect::<Vec<_>>(),
        32,
        32,
    )
    .unwrap();
    let got = tt_formats::untilize(
        &from_bytes(&out)
            .iter()
            .map(|&x| bf16_to_f32(x))
            .collect::<Vec<_>>(),
        32,
        32,
    )
    .unwrap();
    for r in 0..32 {
        for c in 0..32 {
            assert_eq!(got[r * 32 + c], input[r * 32], "out[{r}][{c}]");
        }
    }
}

/// `hostdevcommon/common_values.hpp` (VALID / INVALID, used by multicast handshakes) is provided.
#[test]
fn hostdevcommon_values_header_is_provided() {
    const KERNEL: &str = r#"
#include "api/dataflow/dataflow_api.h"
#include "hostdevcommon/common_values.hpp"
static_assert(VALID == 1 && INVALID == 0, "TT-Metal values");
void kernel_main() {
    volatile tt_l1_ptr uint32_t* flag = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(get_semaphore(0));
    noc_semaphore_set(flag, VALID);
    noc_semaphore_set(flag, INVALID);
}
"#;
    let mut dev = SimDevice::open(SimArch::WormholeB0).unwrap();
    let grid = range(0, 0, 0, 0);
    let mut p = SimProgram::new(&dev);
    p.add_semaphore(&[grid], 0).unwrap();
    let k = p
        .add_kernel(&dm(
            "hostdevcommon",
            KERNEL,
            Risc::Brisc,
            vec![grid],
            vec![],
        ))
        .expect("a kernel including hostdevcommon/common_values.hpp builds");
    p.set_runtime_args(k, CoreCoord::new(0, 0), &[]).unwrap();
    dev.run(&mut p).expect("the kernel runs");
}
