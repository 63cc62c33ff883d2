//! Matmul acceptance tests on the simulator, through tt-safe and the C ABI.
//!
//! 1. Single core, bit-exact: reader_matmul_single_core -> matmul_single_core -> writer_unary at
//!    LoFi, HiFi2 and HiFi4, with and without fp32 accumulation, on Wormhole and Blackhole,
//!    compared bit for bit with the independent model `tests/support/fpu_model.rs`. M, K, N are
//!    not multiples of 32 (the host pads with zeros); inputs are random and never zero; the model
//!    gets exactly the values the device unpacks (the host-encoded bf16 tiles, decoded). The DEST
//!    result is packed by the device packer: to bf16 from a bf16 DEST (exact) or to Float32 from
//!    an fp32 DEST (exact), so the packed output equals the model's DEST bits.
//! 2. Multi-core with in0/in1 multicast on the full grid (Wormhole n150 8x8, Blackhole p150
//!    11x10): the left column multicasts in0 blocks along rows, the top row multicasts in1 blocks
//!    down columns (tt-safe `McastPlan`), each core runs bmm_large_block over two K blocks with a
//!    spill/reload of partial sums. Checked against an f64 reference with a derived tolerance
//!    (see `mcast_tolerance`) and, bit for bit, against the model; run twice on Wormhole to check
//!    that the same program and inputs give bit-identical outputs.

#[path = "support/fpu_model.rs"]
mod fpu_model;

#[path = "support/common.rs"]
mod common;

use common::{Rng, from_tiles, matrix, pack_bf16_ties_away, read, sim, tile_arrays, to_tiles};
use tt_kernels::kernels;
use tt_safe::mcast::McastPlan;
use tt_safe::{
    Arch, Buffer, CbConfig, ComputeConfig, CoreRange, DataFormat, Device, KernelKind, KernelSpec,
    MathFidelity, Noc, Program, Tensor2d, core, pod_words, range,
};

fn fidelity_code(f: MathFidelity) -> u32 {
    match f {
        MathFidelity::LoFi => 0,
        MathFidelity::HiFi2 => 2,
        MathFidelity::HiFi3 => 3,
        MathFidelity::HiFi4 => 4,
    }
}

/// Random bf16-representable matrices as the device will see them (encoded then decoded).
fn bf16_inputs(m: usize, k: usize, n: usize, seed: u64) -> (Tensor2d, Tensor2d) {
    let mut rng = Rng::new(seed);
    let bf = DataFormat::Float16_b;
    let a = matrix(m, k, || rng.octaves(-3, 2));
    let b = matrix(k, n, || rng.octaves(-3, 2));
    (
        from_tiles(&to_tiles(&a, bf), m, k, bf),
        from_tiles(&to_tiles(&b, bf), k, n, bf),
    )
}

/// The model's output tiles of `a @ b` for the K loop `for kt { matmul_tiles }` into one DEST
/// tile per output tile, starting from zero.
fn model_single_core(
    a: &Tensor2d,
    b: &Tensor2d,
    fidelity: u32,
    fp32_acc: bool,
    wormhole: bool,
) -> Vec<[f32; 1024]> {
    let (mt, kt) = common::tiles_of(a.rows(), a.cols());
    let (_, nt) = common::tiles_of(b.rows(), b.cols());
    let at = tile_arrays(a);
    let bt = tile_arrays(b);
    let mut out = Vec::with_capacity(mt * nt);
    for i in 0..mt {
        for j in 0..nt {
            let mut dest = [0f32; 1024];
            for k in 0..kt {
                dest = fpu_model::model_matmul_tile_arch(
                    &at[i * kt + k],
                    &bt[k * nt + j],
                    &dest,
                    fidelity,
                    fp32_acc,
                    wormhole,
                );
            }
            out.push(dest);
        }
    }
    out
}

/// Runs the single-core matmul on `c`; returns the output tiles decoded (face order).
fn single_core_on_device(
    device: &Device,
    a: &Tensor2d,
    b: &Tensor2d,
    fidelity: MathFidelity,
    fp32_acc: bool,
) -> Vec<[f32; 1024]> {
    single_core_on_device_in(device, a, b, fidelity, fp32_acc, DataFormat::Float16_b)
}

/// [`single_core_on_device`] with inputs in `bf` (Float16_b, or Float32 unpacked as TF32).
fn single_core_on_device_in(
    device: &Device,
    a: &Tensor2d,
    b: &Tensor2d,
    fidelity: MathFidelity,
    fp32_acc: bool,
    bf: DataFormat,
) -> Vec<[f32; 1024]> {
    let c = core(1, 2);
    let out_format = if fp32_acc {
        DataFormat::Float32
    } else {
        DataFormat::Float16_b
    };
    let (mt, kt) = common::tiles_of(a.rows(), a.cols());
    let (_, nt) = common::tiles_of(b.rows(), b.cols());
    let a_bytes = to_tiles(a, bf);
    let b_bytes = to_tiles(b, bf);
    let page = bf.tile_size_bytes() as u32;
    let out_page = out_format.tile_size_bytes() as u32;
    let a_buf = Buffer::dram(device, a_bytes.len() as u64, page).unwrap();
    let b_buf = Buffer::dram(device, b_bytes.len() as u64, page).unwrap();
    let out_size = (mt * nt) as u64 * u64::from(out_page);
    let out_buf = Buffer::dram(device, out_size, out_page).unwrap();
    a_buf.write(&a_bytes).unwrap();
    b_buf.write(&b_bytes).unwrap();
    out_buf.write(&vec![0xA5; out_size as usize]).unwrap();

    let mut program = Program::new(device).unwrap();
    program
        .add_circular_buffer(c, CbConfig::tiles(0, bf, 2))
        .unwrap();
    program
        .add_circular_buffer(c, CbConfig::tiles(1, bf, 2))
        .unwrap();
    program
        .add_circular_buffer(c, CbConfig::tiles(16, out_format, 2))
        .unwrap();
    let mut reader_ct = a_buf.accessor_args().unwrap();
    reader_ct.extend(b_buf.accessor_args().unwrap());
    let reader = program
        .add_kernel(
            KernelSpec::new(
                "reader_matmul_single_core",
                kernels::DATAFLOW_READER_MATMUL_SINGLE_CORE,
                KernelKind::riscv0(),
                c,
            )
            .compile_args(reader_ct),
        )
        .unwrap();
    program
        .add_kernel(
            KernelSpec::new(
                "matmul_single_core",
                kernels::COMPUTE_MATMUL_SINGLE_CORE,
                KernelKind::compute(ComputeConfig {
                    fidelity,
                    fp32_dest_acc: fp32_acc,
                    ..ComputeConfig::default()
                }),
                c,
            )
            .compile_args(vec![mt as u32, kt as u32, nt as u32]),
        )
        .unwrap();
    let mut writer_ct = out_buf.accessor_args().unwrap();
    writer_ct.push(16);
    let writer = program
        .add_kernel(
            KernelSpec::new(
                "writer_unary",
                kernels::DATAFLOW_WRITER_UNARY,
                KernelKind::riscv1(),
                c,
            )
            .compile_args(writer_ct),
        )
        .unwrap();
    program
        .set_runtime_args(
            reader,
            c,
            &[
                a_buf.address_u32().unwrap(),
                b_buf.address_u32().unwrap(),
                mt as u32,
                kt as u32,
                nt as u32,
            ],
        )
        .unwrap();
    program
        .set_runtime_args(
            writer,
            c,
            &[out_buf.address_u32().unwrap(), (mt * nt) as u32, 0],
        )
        .unwrap();
    device.run(&program).unwrap();
    let bytes = read(&out_buf);
    bytes
        .chunks_exact(out_page as usize)
        .map(|p| {
            let v = tt_safe::tiles::from_tiles(p, 32, 32, out_format).unwrap();
            let mut t = [0f32; 1024];
            for r in 0..32 {
                for cc in 0..32 {
                    t[fpu_model::tile_index(r, cc)] = v[r * 32 + cc];
                }
            }
            t
        })
        .collect()
}

fn assert_bits_equal(what: &str, got: &[[f32; 1024]], want: &[[f32; 1024]]) {
    assert_eq!(got.len(), want.len(), "{what}: tile count");
    let mut mismatches = 0usize;
    let mut first = None;
    for (t, (g, w)) in got.iter().zip(want).enumerate() {
        for i in 0..1024 {
            if g[i].to_bits() != w[i].to_bits() {
                mismatches += 1;
                first.get_or_insert((t, i, g[i], w[i]));
            }
        }
    }
    if let Some((t, i, g, w)) = first {
        panic!(
            "{what}: {mismatches} of {} values differ from the model; first: tile {t} index {i}: device {g:e} ({:#010x}), model {w:e} ({:#010x})",
            got.len() * 1024,
            g.to_bits(),
            w.to_bits()
        );
    }
}

fn single_core_suite(arch: Arch, configs: &[(MathFidelity, bool)]) {
    let device = sim(arch);
    let wormhole = arch == Arch::WormholeB0;
    // M x K x N = 50 x 70 x 40: 2 x 3 x 2 tiles after padding.
    let (a, b) = bf16_inputs(50, 70, 40, 5);
    for &(fidelity, fp32_acc) in configs {
        let what = format!("{arch:?} single-core matmul, {fidelity:?}, fp32 acc {fp32_acc}");
        let got = single_core_on_device(&device, &a, &b, fidelity, fp32_acc);
        let want = model_single_core(&a, &b, fidelity_code(fidelity), fp32_acc, wormhole);
        assert_bits_equal(&what, &got, &want);
    }
}

const ALL_CONFIGS: [(MathFidelity, bool); 6] = [
    (MathFidelity::LoFi, false),
    (MathFidelity::HiFi2, false),
    (MathFidelity::HiFi4, false),
    (MathFidelity::LoFi, true),
    (MathFidelity::HiFi2, true),
    (MathFidelity::HiFi4, true),
];

#[test]
fn single_core_matmul_bit_exact_wormhole() {
    single_core_suite(Arch::WormholeB0, &ALL_CONFIGS);
}

#[test]
fn single_core_matmul_bit_exact_blackhole() {
    single_core_suite(Arch::Blackhole, &ALL_CONFIGS);
}

/// The fidelities really differ on these inputs (so the bit-exact tests are not blind to the
/// fidelity setting): LoFi, HiFi2 and HiFi4 outputs are pairwise different.
#[test]
fn fidelities_give_different_results() {
    let device = sim(Arch::WormholeB0);
    let (a, b) = bf16_inputs(40, 40, 40, 9);
    let lofi = single_core_on_device(&device, &a, &b, MathFidelity::LoFi, true);
    let hifi2 = single_core_on_device(&device, &a, &b, MathFidelity::HiFi2, true);
    let hifi4 = single_core_on_device(&device, &a, &b, MathFidelity::HiFi4, true);
    let differ = |x: &[[f32; 1024]], y: &[[f32; 1024]]| {
        x.iter()
            .zip(y)
            .any(|(p, q)| p.iter().zip(q).any(|(u, v)| u.to_bits() != v.to_bits()))
    };
    assert!(differ(&lofi, &hifi2) && differ(&hifi2, &hifi4) && differ(&lofi, &hifi4));
}

/// Float32 inputs: the unpacker hands SrcA/SrcB TF32 values (the low 13 mantissa bits dropped),
/// which the model takes from the same f32 inputs; HiFi4 then still misses SrcA's lowest TF32 bit.
/// Packed to Float32 from an fp32 DEST: bit-exact against the model.
#[test]
fn single_core_matmul_fp32_inputs_tf32_bit_exact_wormhole() {
    let device = sim(Arch::WormholeB0);
    let mut rng = Rng::new(23);
    let a = matrix(45, 60, || rng.octaves(-3, 2));
    let b = matrix(60, 33, || rng.octaves(-3, 2));
    for fidelity in [MathFidelity::HiFi2, MathFidelity::HiFi4] {
        let got = single_core_on_device_in(&device, &a, &b, fidelity, true, DataFormat::Float32);
        let want = model_single_core(&a, &b, fidelity_code(fidelity), true, true);
        // The inputs use more than bf16's mantissa, so a bf16-only unpack would not match.
        let trunc = |t: &Tensor2d| {
            Tensor2d::from_fn(t.rows(), t.cols(), |r, c| {
                f32::from_bits(t.get(r, c).unwrap().to_bits() & 0xFFFF_0000)
            })
        };
        let bf16_only =
            model_single_core(&trunc(&a), &trunc(&b), fidelity_code(fidelity), true, true);
        assert!(
            bf16_only
                .iter()
                .zip(&want)
                .any(|(x, y)| x.iter().zip(y).any(|(p, q)| p.to_bits() != q.to_bits())),
            "test inputs do not exercise the TF32 bits"
        );
        assert_bits_equal(
            &format!("Wormhole single-core matmul, Float32 inputs (TF32), {fidelity:?}"),
            &got,
            &want,
        );
    }
}

/// Shape of a multicast matmul run.
#[derive(Clone, Copy, Debug)]
struct McastShape {
    grid: CoreRange,
    m: usize,
    k: usize,
    n: usize,
    per_core_m: u32,
    per_core_n: u32,
    in0_block_w: u32,
    out_subblock_h: u32,
    out_subblock_w: u32,
}

impl McastShape {
    fn gx(&self) -> u32 {
        self.grid.width()
    }
    fn gy(&self) -> u32 {
        self.grid.height()
    }
    /// Padded tile counts: M and N to the whole grid's blocks, K to whole K blocks.
    fn mt(&self) -> u32 {
        self.gy() * self.per_core_m
    }
    fn nt(&self) -> u32 {
        self.gx() * self.per_core_n
    }
    fn kt(&self) -> u32 {
        (self.k.div_ceil(32) as u32).div_ceil(self.in0_block_w) * self.in0_block_w
    }
    fn num_blocks(&self) -> u32 {
        self.kt() / self.in0_block_w
    }
}

/// Pads a matrix with zeros to `rows` x `cols` (multiples of 32).
fn pad(t: &Tensor2d, rows: usize, cols: usize) -> Tensor2d {
    Tensor2d::from_fn(rows, cols, |r, c| t.get(r, c).unwrap_or(0.0))
}

/// Builds the multicast matmul once and runs that same program `runs` times (the output buffer
/// poisoned before each run); returns each run's (padded) output tiles, decoded bf16, face order.
fn mcast_on_device(
    device: &Device,
    s: McastShape,
    a: &Tensor2d,
    b: &Tensor2d,
    runs: usize,
) -> Vec<Vec<[f32; 1024]>> {
    let bf = DataFormat::Float16_b;
    let page = bf.tile_size_bytes() as u32;
    let (mt, kt, nt) = (s.mt(), s.kt(), s.nt());
    assert!(
        a.rows() <= mt as usize * 32 && b.cols() <= nt as usize * 32,
        "shape does not fit the grid"
    );
    let a_bytes = to_tiles(&pad(a, mt as usize * 32, kt as usize * 32), bf);
    let b_bytes = to_tiles(&pad(b, kt as usize * 32, nt as usize * 32), bf);
    let a_buf = Buffer::dram(device, a_bytes.len() as u64, page).unwrap();
    let b_buf = Buffer::dram(device, b_bytes.len() as u64, page).unwrap();
    let out_size = u64::from(mt * nt) * u64::from(page);
    let out_buf = Buffer::dram(device, out_size, page).unwrap();
    a_buf.write(&a_bytes).unwrap();
    b_buf.write(&b_bytes).unwrap();
    out_buf.write(&vec![0xA5; out_size as usize]).unwrap();

    let grid = s.grid;
    let in0_block_tiles = s.per_core_m * s.in0_block_w;
    let in1_block_tiles = s.in0_block_w * s.per_core_n;
    let out_tiles = s.per_core_m * s.per_core_n;
    let subblock_tiles = s.out_subblock_h * s.out_subblock_w;
    let num_blocks = s.num_blocks();

    let mut program = Program::new(device).unwrap();
    // Same CB layout on every core: the multicast writes the sender's CB address.
    program
        .add_circular_buffer(grid, CbConfig::tiles(0, bf, 2 * in0_block_tiles))
        .unwrap();
    program
        .add_circular_buffer(grid, CbConfig::tiles(1, bf, 2 * in1_block_tiles))
        .unwrap();
    program
        .add_circular_buffer(grid, CbConfig::tiles(16, bf, out_tiles))
        .unwrap();
    program
        .add_circular_buffer(grid, CbConfig::tiles(24, bf, out_tiles))
        .unwrap();

    // in0 along rows on RISCV_1 / NoC 1, in1 down columns on RISCV_0 / NoC 0 (each RISC's default
    // NoC); the plans order the rectangle corners for their NoC.
    let mut in0_plan = McastPlan::along_rows(device.noc_map(), grid, Noc::Noc1).unwrap();
    let mut in1_plan = McastPlan::down_columns(device.noc_map(), grid, Noc::Noc0).unwrap();
    in0_plan.create_semaphores(&mut program).unwrap();
    in1_plan.create_semaphores(&mut program).unwrap();

    let (x0, y0, x1, y1) = (grid.start.x, grid.start.y, grid.end.x, grid.end.y);
    let left = range(x0, y0, x0, y1);
    let rest_cols = range(x0 + 1, y0, x1, y1);
    let top = range(x0, y0, x1, y0);
    let rest_rows = range(x0, y0 + 1, x1, y1);

    let in0_sender = program
        .add_kernel(
            KernelSpec::new(
                "matmul_mcast_in0_sender",
                kernels::DATAFLOW_MATMUL_MCAST_IN0_SENDER,
                KernelKind::riscv1(),
                left,
            )
            .compile_args(a_buf.accessor_args().unwrap()),
        )
        .unwrap();
    let in0_receiver = program
        .add_kernel(KernelSpec::new(
            "matmul_mcast_in0_receiver",
            kernels::DATAFLOW_MATMUL_MCAST_IN0_RECEIVER,
            KernelKind::riscv1(),
            rest_cols,
        ))
        .unwrap();
    let mut in1_sender_ct = b_buf.accessor_args().unwrap();
    in1_sender_ct.extend(out_buf.accessor_args().unwrap());
    let in1_sender = program
        .add_kernel(
            KernelSpec::new(
                "matmul_mcast_in1_sender_writer",
                kernels::DATAFLOW_MATMUL_MCAST_IN1_SENDER_WRITER,
                KernelKind::riscv0(),
                top,
            )
            .compile_args(in1_sender_ct),
        )
        .unwrap();
    let in1_receiver = program
        .add_kernel(
            KernelSpec::new(
                "matmul_mcast_in1_receiver_writer",
                kernels::DATAFLOW_MATMUL_MCAST_IN1_RECEIVER_WRITER,
                KernelKind::riscv0(),
                rest_rows,
            )
            .compile_args(out_buf.accessor_args().unwrap()),
        )
        .unwrap();
    program
        .add_kernel(
            KernelSpec::new(
                "bmm_large_block",
                kernels::COMPUTE_BMM_LARGE_BLOCK,
                KernelKind::compute(ComputeConfig {
                    fidelity: MathFidelity::HiFi4,
                    fp32_dest_acc: true,
                    ..ComputeConfig::default()
                }),
                grid,
            )
            .compile_args(vec![
                s.in0_block_w,
                s.per_core_m / s.out_subblock_h,
                in0_block_tiles,
                s.out_subblock_h * s.in0_block_w,
                s.per_core_n / s.out_subblock_w,
                in1_block_tiles,
                s.per_core_n,
                num_blocks,
                s.out_subblock_h,
                s.out_subblock_w,
                subblock_tiles,
            ]),
        )
        .unwrap();

    let a_addr = a_buf.address_u32().unwrap();
    let b_addr = b_buf.address_u32().unwrap();
    let out_addr = out_buf.address_u32().unwrap();
    for c in grid.iter() {
        let (x, y) = (c.x - x0, c.y - y0);
        let writer = [
            out_addr,
            y * s.per_core_m * nt + x * s.per_core_n,
            1,
            nt,
            s.out_subblock_w,
            s.out_subblock_h * nt,
            s.out_subblock_w,
            s.out_subblock_h,
            subblock_tiles,
            s.per_core_n / s.out_subblock_w,
            s.per_core_m / s.out_subblock_h,
        ];
        if x == 0 {
            let mut args = vec![
                a_addr,
                y * s.per_core_m * kt,
                1,
                kt,
                s.in0_block_w,
                s.in0_block_w,
                s.per_core_m,
                in0_block_tiles,
                num_blocks,
            ];
            args.extend(in0_plan.sender_args(c).unwrap());
            program.set_runtime_args(in0_sender, c, &args).unwrap();
        } else {
            let mut args = vec![in0_block_tiles, num_blocks];
            args.extend(pod_words(&in0_plan.receiver_args(c).unwrap()));
            program.set_runtime_args(in0_receiver, c, &args).unwrap();
        }
        if y == 0 {
            let mut args = vec![
                b_addr,
                x * s.per_core_n,
                1,
                nt,
                s.in0_block_w * nt,
                s.per_core_n,
                s.in0_block_w,
                in1_block_tiles,
                num_blocks,
            ];
            args.extend(writer);
            args.extend(in1_plan.sender_args(c).unwrap());
            program.set_runtime_args(in1_sender, c, &args).unwrap();
        } else {
            let mut args = vec![in1_block_tiles, num_blocks];
            args.extend(pod_words(&in1_plan.receiver_args(c).unwrap()));
            args.extend(writer);
            program.set_runtime_args(in1_receiver, c, &args).unwrap();
        }
    }
    (0..runs)
        .map(|_| {
            out_buf.write(&vec![0xA5; out_size as usize]).unwrap();
            device.run(&program).unwrap();
            let out = from_tiles(&read(&out_buf), mt as usize * 32, nt as usize * 32, bf);
            tile_arrays(&out)
        })
        .collect()
}

/// The model of the multicast program: per output tile, DEST (fp32) accumulates the K tiles of
/// one block in order; between blocks the partial is packed to bf16 (ties away) and reloaded
/// exactly; the final DEST is packed to bf16.
fn mcast_model(s: McastShape, a: &Tensor2d, b: &Tensor2d, wormhole: bool) -> Vec<[f32; 1024]> {
    let (mt, kt, nt) = (s.mt() as usize, s.kt() as usize, s.nt() as usize);
    let at = tile_arrays(&pad(a, mt * 32, kt * 32));
    let bt = tile_arrays(&pad(b, kt * 32, nt * 32));
    let bw = s.in0_block_w as usize;
    let mut out = Vec::with_capacity(mt * nt);
    for i in 0..mt {
        for j in 0..nt {
            let mut dest = [0f32; 1024];
            for block in 0..kt / bw {
                if block > 0 {
                    dest = dest.map(pack_bf16_ties_away);
                }
                for k in block * bw..(block + 1) * bw {
                    dest = fpu_model::model_matmul_tile_arch(
                        &at[i * kt + k],
                        &bt[k * nt + j],
                        &dest,
                        4,
                        true,
                        wormhole,
                    );
                }
            }
            out.push(dest.map(pack_bf16_ties_away));
        }
    }
    out
}

/// Error bound of one output element against the exact f64 product of the bf16 inputs, for
/// HiFi4 with an fp32 DEST, bf16 partials between K blocks and a bf16 output. With
/// `S = sum_k |a_ik b_kj|`:
/// - inputs: bf16 on both sides (the reference uses the same bf16 values), so no input error;
///   HiFi4 multiplies every mantissa bit (4 phases of 5 x 7 bit slices cover the 8-bit bf16
///   mantissas), so the phase products sum to the exact products;
/// - inside an MVMUL each phase product (at most 12 significant bits, at least 2^10 units for
///   the group's largest product in phase 0) is aligned to its group of 8 with round-half-up at
///   one unit of the largest product: error <= 2^-10 |largest product in the group| per product,
///   8 products, phases 1..3 scaled by <= 2^-5: <= 8 * 2^-10 * (1 + 3 * 2^-5) max|a b| <= 2^-6 S;
/// - the fp32 DEST addition of the group sums rounds to 24 bits: <= 2^-23 S per MVMUL
///   (R = 4 phases * 2 K-faces * Kt MVMULs);
/// - every bf16 pack (one per K block: the spills and the final output) rounds to 8 bits,
///   ties away: <= 2^-8 of the partial, <= 2^-8 S each.
///
/// Total: `(2^-6 + R 2^-23 + B 2^-8) S` with B = number of K blocks, plus 2^-126 for underflow.
fn mcast_tolerance(s_abs: f64, kt: u32, num_blocks: u32) -> f64 {
    let r = f64::from(4 * 2 * kt);
    (2f64.powi(-6) + r * 2f64.powi(-23) + f64::from(num_blocks) * 2f64.powi(-8)) * s_abs
        + 2f64.powi(-126)
}

fn mcast_check(arch: Arch, s: McastShape, runs: usize) {
    let device = sim(arch);
    let bf = DataFormat::Float16_b;
    let mut rng = Rng::new(17);
    let a = matrix(s.m, s.k, || rng.nonzero(0.25, 1.0));
    let b = matrix(s.k, s.n, || rng.nonzero(0.25, 1.0));
    let a = from_tiles(&to_tiles(&a, bf), s.m, s.k, bf);
    let b = from_tiles(&to_tiles(&b, bf), s.k, s.n, bf);

    let outputs = mcast_on_device(&device, s, &a, &b, runs);
    let first = &outputs[0];
    for (run, again) in outputs.iter().enumerate().skip(1) {
        assert!(
            again
                .iter()
                .zip(first)
                .all(|(x, y)| x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())),
            "{arch:?}: run {run} of the same program on the same inputs differs from run 0"
        );
    }

    // f64 reference with the derived tolerance.
    let nt = s.nt() as usize;
    let out = common::untile(first, nt, s.m, s.n);
    let mut worst = 0f64;
    for i in 0..s.m {
        for j in 0..s.n {
            let (mut exact, mut s_abs) = (0f64, 0f64);
            for k in 0..s.k {
                let p = f64::from(a.get(i, k).unwrap()) * f64::from(b.get(k, j).unwrap());
                exact += p;
                s_abs += p.abs();
            }
            let got = f64::from(out[i * s.n + j]);
            let tol = mcast_tolerance(s_abs, s.kt(), s.num_blocks());
            let err = (got - exact).abs();
            assert!(
                err <= tol,
                "{arch:?} multicast matmul ({i}, {j}): device {got}, exact {exact}, error {err} > {tol}"
            );
            worst = worst.max(err / tol);
        }
    }
    eprintln!("{arch:?} multicast matmul: worst error / tolerance = {worst:.4}");

    // Bit for bit against the model of the same block/spill order.
    let want = mcast_model(s, &a, &b, arch == Arch::WormholeB0);
    assert_bits_equal(&format!("{arch:?} multicast matmul"), first, &want);
}

#[test]
fn mcast_matmul_full_grid_wormhole_twice() {
    let device = sim(Arch::WormholeB0);
    let grid = device.grid().all();
    assert_eq!((grid.width(), grid.height()), (8, 8), "n150 worker grid");
    drop(device);
    // 8 x 8 cores, each 1 x 2 output tiles in two 1 x 1 sub-blocks, K = 4 tiles in 2 blocks.
    let s = McastShape {
        grid,
        m: 250,
        k: 100,
        n: 500,
        per_core_m: 1,
        per_core_n: 2,
        in0_block_w: 2,
        out_subblock_h: 1,
        out_subblock_w: 1,
    };
    mcast_check(Arch::WormholeB0, s, 2);
}

#[test]
fn mcast_matmul_full_grid_blackhole() {
    let device = sim(Arch::Blackhole);
    let grid = device.grid().all();
    assert_eq!((grid.width(), grid.height()), (11, 10), "p150 worker grid");
    drop(device);
    // 11 x 10 cores, each 1 x 1 output tile, K = 4 tiles in 2 blocks.
    let s = McastShape {
        grid,
        m: 300,
        k: 120,
        n: 345,
        per_core_m: 1,
        per_core_n: 1,
        in0_block_w: 2,
        out_subblock_h: 1,
        out_subblock_w: 1,
    };
    mcast_check(Arch::Blackhole, s, 1);
}
