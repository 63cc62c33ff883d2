//! Throughput of the FPU numerics model's tile matmul (simulated math per host core).
//!
//! Run with `cargo bench -p tt-sim --bench fpu_matmul` (release build, one thread). A 32x32x32
//! tile matmul counts 2 * 32^3 FLOP. Each figure is the best of several timed batches, so that
//! other load on a shared machine disturbs it as little as possible; it still depends on the
//! SIMD level `fpu::matmul` dispatches to on this CPU.

use std::hint::black_box;
use std::time::Instant;

use tt_formats::DataFormat;
use tt_sim::fpu::{
    self, Bcast, DestTile, EltOp, Fidelity, FpuConfig, ReduceDim, ReduceOp, SrcTile,
};

const FLOP_PER_TILE: f64 = 2.0 * 32.0 * 32.0 * 32.0;

/// Small deterministic PRNG (xorshift64*).
struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((r >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// Seconds per call of `f`, best of `batches` batches of `n` calls.
fn best(batches: usize, n: usize, mut f: impl FnMut()) -> f64 {
    let mut dt = f64::MAX;
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        dt = dt.min(t.elapsed().as_secs_f64() / n as f64);
    }
    dt
}

fn tile_bytes(fmt: DataFormat, rng: &mut Rng) -> Vec<u8> {
    let mut v = [0f32; 1024];
    for x in v.iter_mut() {
        *x = rng.unit() * 3.0;
    }
    match tt_formats::codec::encode_tile_host(fmt, &v) {
        Ok(b) => b,
        Err(e) => panic!("encoding a {fmt:?} tile: {e}"),
    }
}

fn tile_bytes_from(fmt: DataFormat, v: &[f32; 1024]) -> Vec<u8> {
    match tt_formats::codec::encode_tile_host(fmt, v) {
        Ok(b) => b,
        Err(e) => panic!("encoding a {fmt:?} tile: {e}"),
    }
}

fn unpack(fmt: DataFormat, bytes: &[u8], cfg: &FpuConfig) -> SrcTile {
    match fpu::unpack(fmt, bytes, cfg) {
        Ok(t) => t,
        Err(e) => panic!("unpacking a {fmt:?} tile: {e}"),
    }
}

fn main() {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let batches = 15;
    let n = 200;
    println!("fpu::matmul, 32x32x32 tiles, best of {batches} batches of {n} calls");
    for (name, fmt, fid, fp32) in [
        (
            "bf16 HiFi4 fp32-acc",
            DataFormat::Float16_b,
            Fidelity::HiFi4,
            true,
        ),
        (
            "bf16 HiFi4 16-bit DEST",
            DataFormat::Float16_b,
            Fidelity::HiFi4,
            false,
        ),
        (
            "bf16 HiFi2 16-bit DEST",
            DataFormat::Float16_b,
            Fidelity::HiFi2,
            false,
        ),
        (
            "bfp8 LoFi 16-bit DEST",
            DataFormat::Bfp8_b,
            Fidelity::LoFi,
            false,
        ),
        (
            "bfp8 LoFi fp32-acc",
            DataFormat::Bfp8_b,
            Fidelity::LoFi,
            true,
        ),
    ] {
        let cfg = FpuConfig::new(fid, fp32, false);
        let b0 = tile_bytes(fmt, &mut rng);
        let b1 = tile_bytes(fmt, &mut rng);
        let in0 = unpack(fmt, &b0, &cfg);
        let in1 = unpack(fmt, &b1, &cfg);
        let mut d = DestTile::zero();
        let mm = best(batches, n, || {
            fpu::matmul(&mut d, black_box(&in0), black_box(&in1), false, &cfg)
        });
        let up = best(batches, n, || {
            black_box(unpack(fmt, black_box(&b0), &cfg));
        });
        // A 2 x 4 block (in0 and in1 decomposed once per block, not per tile).
        let in0s = vec![in0.clone(), in1.clone()];
        let in1s = vec![in1.clone(), in0.clone(), in1.clone(), in0.clone()];
        let mut ds = vec![DestTile::zero(); 8];
        let blk = best(batches, n / 8, || {
            if let Err(e) =
                fpu::matmul_block(&mut ds, black_box(&in0s), black_box(&in1s), false, &cfg)
            {
                panic!("{e}");
            }
        }) / 8.0;
        println!(
            "{name:24} matmul {:6.2} us/tile {:6.2} GFLOP/s | matmul_block 2x4 {:6.2} GFLOP/s | unpack {:5.2} us/tile",
            mm * 1e6,
            FLOP_PER_TILE / mm / 1e9,
            FLOP_PER_TILE / blk / 1e9,
            up * 1e6
        );
    }

    // The `hifi` conv plan of tt-kernels: Float32 activations unpacked as TF32, HiFi4, fp32
    // DEST; 8 of its 10 passes multiply weight tiles with only the K rows k = j mod 8 non-zero
    // (isolated products: one live product per group of 8 K), the others dense weights.
    println!("hifi conv passes (TF32 x TF32/bf16, HiFi4, fp32 DEST), best of {batches} x {n}");
    {
        let cfg = FpuConfig::new(Fidelity::HiFi4, true, false);
        let fmt = DataFormat::Float32;
        let in0 = unpack(fmt, &tile_bytes(fmt, &mut rng), &cfg);
        let mut w = [0f32; 1024];
        for x in w.iter_mut() {
            *x = rng.unit() * 0.5;
        }
        let dense = unpack(
            DataFormat::Float16_b,
            &tile_bytes_from(DataFormat::Float16_b, &w),
            &cfg,
        );
        for (r, row) in w.chunks_mut(32).enumerate() {
            if r % 8 != 3 {
                row.fill(0.0);
            }
        }
        // `w` is row-major [k][n]; the codec takes row-major values.
        let masked = unpack(
            DataFormat::Float16_b,
            &tile_bytes_from(DataFormat::Float16_b, &w),
            &cfg,
        );
        for (name, in1) in [("isolated (K = 3 mod 8)", &masked), ("dense", &dense)] {
            let mut d = DestTile::zero();
            let mm = best(batches, n, || {
                fpu::matmul(&mut d, black_box(&in0), black_box(in1), false, &cfg)
            });
            println!("{name:24} matmul {:6.2} us/tile", mm * 1e6);
        }
    }

    println!("other tile operations, us per tile, best of {batches} batches of {n} calls");
    for (name, fid, fp32) in [
        ("HiFi4 fp32-acc", Fidelity::HiFi4, true),
        ("LoFi 16-bit DEST", Fidelity::LoFi, false),
    ] {
        let cfg = FpuConfig::new(fid, fp32, false);
        let fmt = DataFormat::Float16_b;
        let a = unpack(fmt, &tile_bytes(fmt, &mut rng), &cfg);
        let b = unpack(fmt, &tile_bytes(fmt, &mut rng), &cfg);
        let mut d = DestTile::zero();
        let add = best(batches, n, || {
            fpu::eltwise(
                &mut d,
                EltOp::Add,
                black_box(&a),
                black_box(&b),
                Bcast::None,
                false,
                &cfg,
            )
        });
        let mul = best(batches, n, || {
            let mut d = DestTile::zero();
            fpu::eltwise(
                &mut d,
                EltOp::Mul,
                black_box(&a),
                black_box(&b),
                Bcast::None,
                false,
                &cfg,
            );
            black_box(&d);
        });
        let red = best(batches, n, || {
            fpu::reduce(
                &mut d,
                ReduceOp::Sum,
                ReduceDim::Row,
                black_box(&a),
                black_box(&b),
                &cfg,
            )
        });
        let mut out = vec![0u8; DataFormat::Bfp8_b.tile_size_bytes()];
        let pk = best(batches, n, || {
            if let Err(e) = fpu::pack(black_box(&d), DataFormat::Bfp8_b, &mut out, &cfg) {
                panic!("{e}");
            }
        });
        println!(
            "{name:24} eltwise add {:5.2} | eltwise mul {:5.2} | reduce row sum {:5.2} | pack bfp8 {:5.2}",
            add * 1e6,
            mul * 1e6,
            red * 1e6,
            pk * 1e6
        );
    }
}
