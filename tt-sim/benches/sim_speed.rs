//! Simulator speed: simulated matmul FLOP per host second (BFP8 LoFi and bf16 HiFi4, Wormhole
//! 8x8 multicast matmul) and host seconds per DRAM-bound copy program. Run with
//! `cargo bench -p tt-sim --bench sim_speed` (`-- copy` / `-- matmul` for one part). Each figure times `SimDevice::run` of an already
//! built program (kernel builds cached, images loaded by a first run), best of 3 runs.

#[path = "common/mcast_matmul.rs"]
mod mcast_matmul;
use mcast_matmul::{Mm, run};
use tt_formats::DataFormat;
use tt_sim::*;

const READER: &str = include_str!("../../kernels/dataflow/reader_unary_interleaved.cpp");
const WRITER: &str = include_str!("../../kernels/dataflow/writer_unary_interleaved.cpp");

fn matmul(name: &str, format: DataFormat, fidelity: MathFidelity, size: u32) {
    let c = Mm {
        arch: SimArch::WormholeB0,
        m: size,
        k: size,
        n: size,
        format,
        fidelity,
        in0_block_w: 4,
        out_subblock_h: 2,
        out_subblock_w: 4,
        matmul_block: true,
    };
    let runs = run(&c, 4).expect("matmul runs");
    let best = runs[1..].iter().map(|r| r.stats.host_ns).min().unwrap_or(1) as f64 / 1e9;
    println!(
        "{name}: {size}x{size}x{size} on 8x8 Wormhole cores: {:.3} s per run, {:.2} GFLOP/s simulated \
         (ESTIMATED device time {:.1} us)",
        best,
        c.flops() / best / 1e9,
        runs[0].stats.device_ns as f64 / 1000.0
    );
}

fn copy(pages: u32) {
    let mut dev = SimDevice::open(SimArch::WormholeB0).expect("device");
    let page = 2048u32;
    let buf = |dev: &mut SimDevice| {
        dev.create_buffer(&BufferConfig {
            size: pages as u64 * page as u64,
            page_size: page,
            buffer_type: BufferType::Dram,
            layout: BufferLayout::Interleaved,
            shard: None,
        })
        .expect("buffer")
    };
    let (src, dst) = (buf(&mut dev), buf(&mut dev));
    dev.write_buffer(src, 0, &vec![0x3c; (pages * page) as usize])
        .expect("write");
    let grid = CoreRange {
        start: CoreCoord { x: 0, y: 0 },
        end: CoreCoord { x: 7, y: 7 },
    };
    let mut p = SimProgram::new(&dev);
    p.add_circular_buffer(
        &dev,
        &[grid],
        &CbConfig {
            total_size: 2 * page,
            formats: vec![CbFormat {
                index: 0,
                data_format: DataFormat::Float16_b.as_raw(),
                page_size: page,
            }],
            globally_allocated: None,
        },
    )
    .expect("cb");
    let k = |name: &str, src: &str, risc: Risc, args: Vec<u32>| KernelConfig {
        name: name.into(),
        source: src.into(),
        kind: KernelKind::DataMovement {
            risc,
            noc: if risc == Risc::Brisc { 0 } else { 1 },
        },
        cores: vec![grid],
        compile_args: args,
        defines: vec![],
    };
    let r = p
        .add_kernel(&k("reader", READER, Risc::Ncrisc, vec![2, page]))
        .expect("reader");
    let w = p
        .add_kernel(&k("writer", WRITER, Risc::Brisc, vec![0, 2, page]))
        .expect("writer");
    let (sa, da) = (
        dev.buffer_address(src).expect("addr") as u32,
        dev.buffer_address(dst).expect("addr") as u32,
    );
    let per = pages / 64;
    for (i, c) in grid.iter().enumerate() {
        let start = i as u32 * per;
        p.set_runtime_args(r, c, &[sa, per, start]).expect("args");
        p.set_runtime_args(w, c, &[da, per, start]).expect("args");
    }
    let mut best = f64::MAX;
    let mut est = 0;
    for _ in 0..4 {
        let s = dev.run(&mut p).expect("copy run");
        best = best.min(s.host_ns as f64 / 1e9);
        est = s.device_ns;
    }
    println!(
        "DRAM-bound copy: {pages} pages of 2 KiB over 8x8 Wormhole cores: {best:.4} s per program \
         (ESTIMATED device time {:.1} us)",
        est as f64 / 1000.0
    );
}

fn main() {
    // `-- copy` or `-- matmul` runs only that part (e.g. under perf).
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |w: &str| args.is_empty() || args.iter().any(|a| a == w);
    if want("matmul") {
        let lofi = (DataFormat::Bfp8_b, MathFidelity::LoFi);
        matmul("BFP8 LoFi matmul", lofi.0, lofi.1, 1024);
        let hifi = (DataFormat::Float16_b, MathFidelity::HiFi4);
        matmul("bf16 HiFi4 matmul", hifi.0, hifi.1, 1024);
    }
    if want("copy") {
        copy(64 * 64);
    }
}
