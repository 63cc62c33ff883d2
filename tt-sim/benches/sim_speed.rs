//! Simulator speed: simulated matmul FLOP per host second (BFP8 LoFi and bf16 HiFi4, Wormhole
//! 8x8 multicast matmul), host seconds per DRAM-bound copy program, and the per-launch cost of a
//! small program built afresh every time (as an op launch does). Run with
//! `cargo bench -p tt-sim --bench sim_speed` (`-- copy` / `-- matmul` / `-- launch` for one
//! part). The matmul and copy figures time `SimDevice::run` of an already built program (kernel
//! builds cached, images loaded by a first run), best of 3 runs; the launch figure times
//! building and running a new program (kernel builds cached), mean of 200 launches.

#[path = "common/mcast_matmul.rs"]
mod mcast_matmul;
use mcast_matmul::{Mm, run};
use tt_formats::DataFormat;
use tt_sim::*;

const READER: &str = include_str!("../../kernels/dataflow/reader_unary_interleaved.cpp");
const WRITER: &str = include_str!("../../kernels/dataflow/writer_unary_interleaved.cpp");
const COPY: &str = include_str!("../../kernels/compute/eltwise_copy.cpp");

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

/// CPU seconds of this thread (robust against other load on a shared machine, unlike wall time).
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own; CLOCK_THREAD_CPUTIME_ID is always valid.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// One tile per core through reader -> compute copy -> writer on 8x8 cores, in a program built
/// for every launch (what an elementwise op launch costs besides its math).
fn launch(launches: u32) {
    let mut dev = SimDevice::open(SimArch::WormholeB0).expect("device");
    let page = 2048u32;
    let buf = |dev: &mut SimDevice| {
        dev.create_buffer(&BufferConfig {
            size: 64 * page as u64,
            page_size: page,
            buffer_type: BufferType::Dram,
            layout: BufferLayout::Interleaved,
            shard: None,
        })
        .expect("buffer")
    };
    let (src, dst) = (buf(&mut dev), buf(&mut dev));
    // bf16 values that a copy through DEST keeps exactly (normal, 8 significant bits).
    let data: Vec<u8> = (0..64 * page / 2)
        .flat_map(|i| {
            ((1.0 + (i % 128) as f32 / 128.0).to_bits() >> 16).to_le_bytes()[..2].to_vec()
        })
        .collect();
    dev.write_buffer(src, 0, &data).expect("write");
    let grid = CoreRange {
        start: CoreCoord { x: 0, y: 0 },
        end: CoreCoord { x: 7, y: 7 },
    };
    let cb = |index: u32| CbConfig {
        total_size: 2 * page,
        formats: vec![CbFormat {
            index,
            data_format: DataFormat::Float16_b.as_raw(),
            page_size: page,
        }],
        globally_allocated: None,
    };
    let k = |name: &str, src: &str, kind: KernelKind, args: Vec<u32>| KernelConfig {
        name: name.into(),
        source: src.into(),
        kind,
        cores: vec![grid],
        compile_args: args,
        defines: vec![],
    };
    let (sa, da) = (
        dev.buffer_address(src).expect("addr") as u32,
        dev.buffer_address(dst).expect("addr") as u32,
    );
    let once = |dev: &mut SimDevice| -> RunStats {
        let mut p = SimProgram::new(dev);
        p.add_circular_buffer(dev, &[grid], &cb(0)).expect("cb");
        p.add_circular_buffer(dev, &[grid], &cb(16)).expect("cb");
        let dm = |risc| KernelKind::DataMovement {
            risc,
            noc: if risc == Risc::Brisc { 0 } else { 1 },
        };
        let r = p
            .add_kernel(&k("reader", READER, dm(Risc::Ncrisc), vec![2, page]))
            .expect("reader");
        p.add_kernel(&k(
            "copy",
            COPY,
            KernelKind::Compute(ComputeConfig::default()),
            vec![1],
        ))
        .expect("compute");
        let w = p
            .add_kernel(&k("writer", WRITER, dm(Risc::Brisc), vec![16, 2, page]))
            .expect("writer");
        for (i, c) in grid.iter().enumerate() {
            p.set_runtime_args(r, c, &[sa, 1, i as u32]).expect("args");
            p.set_runtime_args(w, c, &[da, 1, i as u32]).expect("args");
        }
        dev.run(&mut p).expect("launch run")
    };
    let first = once(&mut dev);
    let mut back = vec![0u8; data.len()];
    dev.read_buffer(dst, 0, &mut back).expect("read");
    assert!(back == data, "the copy program must copy");
    let t = std::time::Instant::now();
    let cpu0 = thread_cpu_s();
    let mut run_ns = 0u64;
    for _ in 0..launches {
        run_ns += once(&mut dev).host_ns;
    }
    let cpu = (thread_cpu_s() - cpu0) / launches as f64;
    let per = t.elapsed().as_secs_f64() / launches as f64;
    println!(
        "launch: new 3-kernel program on 8x8 Wormhole cores, 1 tile per core: {:.3} ms CPU per \
         launch (build + run; wall {:.3} ms, of which run {:.3} ms) (ESTIMATED device time {:.1} us)",
        cpu * 1e3,
        per * 1e3,
        run_ns as f64 / launches as f64 / 1e6,
        first.device_ns as f64 / 1000.0
    );
}

fn main() {
    // `-- copy`, `-- matmul` or `-- launch` runs only that part (e.g. under perf).
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
    if want("launch") {
        launch(200);
    }
}
