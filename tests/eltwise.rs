//! Element-wise add on the simulator through tt-safe, in bf16 and in bfp8_b, on Wormhole and
//! Blackhole: reader_binary (RISCV_0) -> eltwise_binary (compute) -> writer_unary (RISCV_1),
//! several cores, shapes that are not multiples of 32.
//!
//! Reference: the exact sum, in f64, of the values the device unpacks (the host-encoded inputs
//! decoded; BFP -> bf16 unpacking is lossless), so input quantisation is not part of the error.
//!
//! Tolerances (derived from the formats):
//! - bf16 output: the FPU adds two bf16 source values and the result is rounded once to the
//!   bf16 DEST (and packed to bf16 unchanged). Whatever the rounding mode (nearest or towards
//!   zero), the result is within one bf16 ulp of the exact sum: `|out - s| <= ulp_bf16(s)`,
//!   `ulp_bf16(s) = 2^(floor(log2|s|) - 7)`.
//! - bfp8_b output: the bf16 DEST value as above, then packed to bfp8_b: each 16-value face row
//!   shares the exponent E of its largest magnitude and keeps 7 magnitude bits, a quantum of
//!   `2^(E - 127 - 6)`; the packer's rounding (nearest, or truncation for lower BFP) costs at most
//!   one quantum. With `m` the largest |exact sum| in the face row, the largest DEST value is at
//!   most `m (1 + 2^-7)`, so `2^(E-127) <= m (1 + 2^-7)` and the bound is
//!   `ulp_bf16(s) + m (1 + 2^-7) 2^-6`.
//!
//! Inputs are random, never zero, spread over several octaves (bf16) or within a face-row-friendly
//! range (bfp8_b, so that most values keep most of their bits).

#[path = "support/common.rs"]
mod common;

use common::{Rng, bf16_ulp, from_tiles, matrix, read, sim, tiles_of, to_tiles};
use tt_kernels::kernels;
use tt_safe::{
    Arch, Buffer, CbConfig, ComputeConfig, CoreRange, DataFormat, Device, KernelKind, KernelSpec,
    Program, Tensor2d, range,
};

/// Tiles per DEST acquisition in the compute kernel (<= 8, the 16-bit half-sync capacity).
const BLOCK: u32 = 2;

/// Runs out = a + b on `cores`; returns the output decoded as `format`.
fn add_on_device(
    device: &Device,
    a: &Tensor2d,
    b: &Tensor2d,
    format: DataFormat,
    cores: CoreRange,
) -> Tensor2d {
    let (rows, cols) = (a.rows(), a.cols());
    let page = format.tile_size_bytes() as u32;
    let a_bytes = to_tiles(a, format);
    let b_bytes = to_tiles(b, format);
    let size = a_bytes.len() as u64;
    let num_tiles = (size / u64::from(page)) as u32;
    let src0 = Buffer::dram(device, size, page).unwrap();
    let src1 = Buffer::dram(device, size, page).unwrap();
    let dst = Buffer::dram(device, size, page).unwrap();
    src0.write(&a_bytes).unwrap();
    src1.write(&b_bytes).unwrap();
    dst.write(&vec![0xA5; a_bytes.len()]).unwrap();

    let mut program = Program::new(device).unwrap();
    for cb in [0, 1, 16] {
        program
            .add_circular_buffer(cores, CbConfig::tiles(cb, format, 2 * BLOCK))
            .unwrap();
    }
    let reader = program
        .add_kernel(KernelSpec::new(
            "reader_binary",
            kernels::DATAFLOW_READER_BINARY,
            KernelKind::riscv0(),
            cores,
        ))
        .unwrap();
    let compute = program
        .add_kernel(
            KernelSpec::new(
                "eltwise_binary_block",
                kernels::COMPUTE_ELTWISE_BINARY_BLOCK,
                KernelKind::compute(ComputeConfig::default()),
                cores,
            )
            .compile_args(vec![BLOCK]),
        )
        .unwrap();
    let mut writer_ct = dst.accessor_args().unwrap();
    writer_ct.push(16);
    let writer = program
        .add_kernel(
            KernelSpec::new(
                "writer_unary",
                kernels::DATAFLOW_WRITER_UNARY,
                KernelKind::riscv1(),
                cores,
            )
            .compile_args(writer_ct),
        )
        .unwrap();
    // Whole blocks per core; the test shapes give a tile count that BLOCK divides.
    assert_eq!(num_tiles % BLOCK, 0, "test shape must give whole blocks");
    let blocks = num_tiles / BLOCK;
    let n_cores = cores.iter().count() as u32;
    let per_core = blocks.div_ceil(n_cores);
    for (i, c) in cores.iter().enumerate() {
        let first = (i as u32 * per_core).min(blocks);
        let n = per_core.min(blocks - first);
        let (start, tiles) = (first * BLOCK, n * BLOCK);
        program
            .set_runtime_args(
                reader,
                c,
                &[
                    src0.address_u32().unwrap(),
                    src1.address_u32().unwrap(),
                    tiles,
                    start,
                ],
            )
            .unwrap();
        program.set_runtime_args(compute, c, &[n]).unwrap();
        program
            .set_runtime_args(writer, c, &[dst.address_u32().unwrap(), tiles, start])
            .unwrap();
    }
    device.run(&program).unwrap();
    from_tiles(&read(&dst), rows, cols, format)
}

fn check_add(arch: Arch, format: DataFormat, rows: usize, cols: usize, cores: CoreRange) {
    let device = sim(arch);
    let mut rng = Rng::new(rows as u64 * 1000 + cols as u64);
    let (a, b) = match format {
        DataFormat::Float16_b => (
            matrix(rows, cols, || rng.octaves(-5, 5)),
            matrix(rows, cols, || rng.octaves(-5, 5)),
        ),
        _ => (
            matrix(rows, cols, || rng.nonzero(0.5, 4.0)),
            matrix(rows, cols, || rng.nonzero(0.5, 4.0)),
        ),
    };
    // What the device sees: the host-encoded inputs, decoded.
    let a = from_tiles(&to_tiles(&a, format), rows, cols, format);
    let b = from_tiles(&to_tiles(&b, format), rows, cols, format);
    let out = add_on_device(&device, &a, &b, format, cores);

    let exact: Vec<f64> = a
        .data()
        .iter()
        .zip(b.data())
        .map(|(&x, &y)| f64::from(x) + f64::from(y))
        .collect();
    // Largest |exact| per 16-value face row: (row, column / 16).
    let (_, tc) = tiles_of(rows, cols);
    let mut row_max = vec![0f64; rows * tc * 2];
    for r in 0..rows {
        for c in 0..cols {
            let m = &mut row_max[r * tc * 2 + c / 16];
            *m = m.max(exact[r * cols + c].abs());
        }
    }
    let mut worst = 0f64;
    for r in 0..rows {
        for c in 0..cols {
            let s = exact[r * cols + c];
            let got = f64::from(out.get(r, c).unwrap());
            let tol = match format {
                DataFormat::Float16_b => bf16_ulp(s),
                _ => bf16_ulp(s) + row_max[r * tc * 2 + c / 16] * (1.0 + 2f64.powi(-7)) / 64.0,
            };
            let err = (got - s).abs();
            assert!(
                err <= tol,
                "{arch:?} {format:?} ({r}, {c}): {} + {} = {s}, device {got}, error {err} > {tol}",
                a.get(r, c).unwrap(),
                b.get(r, c).unwrap()
            );
            worst = worst.max(err / tol.max(f64::MIN_POSITIVE));
        }
    }
    // The result is not trivially exact input passing: it must differ from both inputs.
    assert!(
        out.data().iter().zip(a.data()).any(|(o, x)| o != x),
        "output equals in0"
    );
    eprintln!("{arch:?} {format:?}: worst error / tolerance = {worst:.3}");
}

#[test]
fn eltwise_add_bf16_wormhole() {
    // 3 x 4 = 12 tiles = 6 blocks over 4 cores.
    check_add(
        Arch::WormholeB0,
        DataFormat::Float16_b,
        90,
        100,
        range(0, 0, 1, 1),
    );
}

#[test]
fn eltwise_add_bfp8_wormhole() {
    check_add(
        Arch::WormholeB0,
        DataFormat::Bfp8_b,
        60,
        70,
        range(3, 3, 5, 3),
    );
}

#[test]
fn eltwise_add_bf16_blackhole() {
    check_add(
        Arch::Blackhole,
        DataFormat::Float16_b,
        90,
        100,
        range(9, 8, 10, 9),
    );
}

#[test]
fn eltwise_add_bfp8_blackhole() {
    check_add(
        Arch::Blackhole,
        DataFormat::Bfp8_b,
        60,
        70,
        range(0, 9, 2, 9),
    );
}

/// The device packer rounds f32 -> bf16 with ties away from zero (the host rounds ties to even):
/// Float32 tiles are unpacked straight into an fp32 DEST (`UnpackToDestFp32`, so no TF32 loss),
/// copied (copy_tiles) and packed into a bf16 CB. Half of the values are exact ties, where the two
/// rules disagree whenever the kept mantissa is even.
#[test]
fn packer_rounds_fp32_to_bf16_ties_away() {
    let device = sim(Arch::WormholeB0);
    let c = tt_safe::core(2, 3);
    let (rows, cols) = (40, 50);
    let mut rng = Rng::new(99);
    let mut n = 0u32;
    let input = matrix(rows, cols, || {
        n += 1;
        let x = rng.octaves(-4, 4);
        if n.is_multiple_of(2) {
            // An exact tie: keep the bf16 part, set the first dropped bit only.
            f32::from_bits((x.to_bits() & 0xFFFF_0000) | 0x8000)
        } else {
            x
        }
    });
    let f32_fmt = DataFormat::Float32;
    let bf = DataFormat::Float16_b;
    let in_bytes = to_tiles(&input, f32_fmt);
    let tiles = (in_bytes.len() / f32_fmt.tile_size_bytes()) as u32;
    let src = Buffer::dram(&device, in_bytes.len() as u64, 4096).unwrap();
    let out_size = u64::from(tiles) * 2048;
    let dst = Buffer::dram(&device, out_size, 2048).unwrap();
    src.write(&in_bytes).unwrap();
    dst.write(&vec![0xA5; out_size as usize]).unwrap();

    let mut program = Program::new(&device).unwrap();
    program
        .add_circular_buffer(c, CbConfig::tiles(0, f32_fmt, 2))
        .unwrap();
    program
        .add_circular_buffer(c, CbConfig::tiles(16, bf, 2))
        .unwrap();
    let mut reader_ct = src.accessor_args().unwrap();
    reader_ct.push(0);
    let reader = program
        .add_kernel(
            KernelSpec::new(
                "reader_unary",
                kernels::DATAFLOW_READER_UNARY,
                KernelKind::riscv0(),
                c,
            )
            .compile_args(reader_ct),
        )
        .unwrap();
    let compute = program
        .add_kernel(
            KernelSpec::new(
                "copy_tiles",
                kernels::COMPUTE_COPY_TILES,
                KernelKind::compute(ComputeConfig {
                    fp32_dest_acc: true,
                    unpack_to_dest_fp32: vec![0],
                    ..ComputeConfig::default()
                }),
                c,
            )
            .compile_args(vec![1]),
        )
        .unwrap();
    let mut writer_ct = dst.accessor_args().unwrap();
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
        .set_runtime_args(reader, c, &[src.address_u32().unwrap(), tiles, 0])
        .unwrap();
    program.set_runtime_args(compute, c, &[tiles]).unwrap();
    program
        .set_runtime_args(writer, c, &[dst.address_u32().unwrap(), tiles, 0])
        .unwrap();
    device.run(&program).unwrap();

    let out = from_tiles(&read(&dst), rows, cols, bf);
    let host_rne = from_tiles(&to_tiles(&input, bf), rows, cols, bf);
    let mut disagreements = 0;
    for r in 0..rows {
        for col in 0..cols {
            let x = input.get(r, col).unwrap();
            let want = common::pack_bf16_ties_away(x);
            let got = out.get(r, col).unwrap();
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "({r}, {col}): {x:e} ({:#010x}) packed to {got:e}, expected {want:e}",
                x.to_bits()
            );
            if host_rne.get(r, col).unwrap().to_bits() != want.to_bits() {
                disagreements += 1;
            }
        }
    }
    // About a quarter of the values are ties on an even mantissa.
    assert!(
        disagreements > rows * cols / 8,
        "only {disagreements} values tell ties-away from ties-to-even"
    );
}
