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
