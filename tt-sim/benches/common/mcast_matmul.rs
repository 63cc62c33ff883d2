//! A 2D-multicast matmul program (the tt-kernels `matmul_mcast_*` + `bmm_large_block` kernels,
//! read from `kernels/` at build time) built directly on the simulator's Rust API, for the
//! calibration and speed benches (`Mm::matmul_block` swaps in the bench-local compute variant
//! `benches/kernels/bmm_large_block_matmul_block.cpp`). The left column reads in0 blocks from DRAM and multicasts them
//! along each row (NCRISC, NoC 1); the top row reads in1 blocks and multicasts them down each
//! column (BRISC, NoC 0); every core computes a `per_core_m x per_core_n` block of tiles and writes
//! it to DRAM. All buffers are DRAM-interleaved. One rectangle per row/column (the NoC skips
//! non-worker nodes inside it).
#![allow(dead_code)]

use tt_formats::DataFormat;
use tt_sim::*;

const IN0_SENDER: &str = include_str!("../../../kernels/dataflow/matmul_mcast_in0_sender.cpp");
const IN0_RECEIVER: &str = include_str!("../../../kernels/dataflow/matmul_mcast_in0_receiver.cpp");
const IN1_SENDER: &str =
    include_str!("../../../kernels/dataflow/matmul_mcast_in1_sender_writer.cpp");
const IN1_RECEIVER: &str =
    include_str!("../../../kernels/dataflow/matmul_mcast_in1_receiver_writer.cpp");
const COMPUTE: &str = include_str!("../../../kernels/compute/bmm_large_block.cpp");
const COMPUTE_BLOCK: &str = include_str!("../kernels/bmm_large_block_matmul_block.cpp");

/// One matmul configuration.
#[derive(Debug, Clone, Copy)]
pub struct Mm {
    pub arch: SimArch,
    pub m: u32,
    pub k: u32,
    pub n: u32,
    pub format: DataFormat,
    pub fidelity: MathFidelity,
    pub in0_block_w: u32,
    pub out_subblock_h: u32,
    pub out_subblock_w: u32,
    /// Compute with one `matmul_block` per sub-block and K step (TT-NN's production kernels)
    /// instead of tt-kernels' `bmm_large_block` (one `matmul_tiles` per tile).
    pub matmul_block: bool,
}

impl Mm {
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.k as f64 * self.n as f64
    }
}

/// Result of one run.
pub struct MmRun {
    pub stats: RunStats,
    /// The output buffer (tiles) after the run.
    pub output: Vec<u8>,
    pub profile: Profile,
    pub cores: u32,
}

fn data(bytes: usize, format: DataFormat, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    match format {
        // bf16 values in (-2, 2): sign, exponent 120..127, random mantissa.
        DataFormat::Float16_b => (0..bytes / 2)
            .flat_map(|_| {
                let r = next();
                let v = ((r & 0x8000) | ((120 + (r >> 20) % 8) << 7) | ((r >> 32) & 0x7f)) as u16;
                v.to_le_bytes()
            })
            .collect(),
        // Block-float: 64 shared exponents near 127, then mantissa bytes.
        _ => {
            let tile = format.tile_size_bytes();
            (0..bytes)
                .map(|i| {
                    if i % tile < 64 {
                        (124 + next() % 4) as u8
                    } else {
                        next() as u8
                    }
                })
                .collect()
        }
    }
}

fn dram(dev: &mut SimDevice, pages: u32, page: u32) -> SimResult<BufferId> {
    dev.create_buffer(&BufferConfig {
        size: pages as u64 * page as u64,
        page_size: page,
        buffer_type: BufferType::Dram,
        layout: BufferLayout::Interleaved,
        shard: None,
    })
}

fn cb(index: u32, tiles: u32, format: DataFormat) -> CbConfig {
    let page = format.tile_size_bytes() as u32;
    CbConfig {
        total_size: tiles * page,
        formats: vec![CbFormat {
            index,
            data_format: format.as_raw(),
            page_size: page,
        }],
        globally_allocated: None,
    }
}

fn rng(x0: u32, y0: u32, x1: u32, y1: u32) -> CoreRange {
    CoreRange {
        start: CoreCoord { x: x0, y: y0 },
        end: CoreCoord { x: x1, y: y1 },
    }
}

/// Builds and runs the program once on a fresh device; `runs` times on the same program.
pub fn run(c: &Mm, runs: usize) -> SimResult<Vec<MmRun>> {
    let mut dev = SimDevice::open(c.arch)?;
    let a = ArchParams::new(c.arch);
    let (gx, gy) = (a.grid_x, a.grid_y);
    let (mt, kt, nt) = (c.m / 32, c.k / 32, c.n / 32);
    assert!(
        mt % gy == 0 && nt % gx == 0 && kt % c.in0_block_w == 0,
        "{c:?}"
    );
    let (pm, pn) = (mt / gy, nt / gx);
    assert!(
        pm % c.out_subblock_h == 0 && pn % c.out_subblock_w == 0,
        "{c:?}"
    );
    let page = c.format.tile_size_bytes() as u32;
    let fmt = c.format;
    let a_buf = dram(&mut dev, mt * kt, page)?;
    let b_buf = dram(&mut dev, kt * nt, page)?;
    let o_buf = dram(&mut dev, mt * nt, page)?;
    dev.write_buffer(a_buf, 0, &data((mt * kt * page) as usize, fmt, 1))?;
    dev.write_buffer(b_buf, 0, &data((kt * nt * page) as usize, fmt, 2))?;

    let grid = rng(0, 0, gx - 1, gy - 1);
    let in0_tiles = pm * c.in0_block_w;
    let in1_tiles = c.in0_block_w * pn;
    let out_tiles = pm * pn;
    let sub_tiles = c.out_subblock_h * c.out_subblock_w;
    let num_blocks = kt / c.in0_block_w;
    let mut p = SimProgram::new(&dev);
    p.add_circular_buffer(&dev, &[grid], &cb(0, 2 * in0_tiles, fmt))?;
    p.add_circular_buffer(&dev, &[grid], &cb(1, 2 * in1_tiles, fmt))?;
    p.add_circular_buffer(&dev, &[grid], &cb(16, out_tiles, fmt))?;
    p.add_circular_buffer(&dev, &[grid], &cb(24, out_tiles, fmt))?;
    let (s0, r0) = (p.add_semaphore(&[grid], 0)?, p.add_semaphore(&[grid], 0)?);
    let (s1, r1) = (p.add_semaphore(&[grid], 0)?, p.add_semaphore(&[grid], 0)?);

    let dm = |name: &str, src: &str, risc: Risc, cores: CoreRange, args: Vec<u32>| KernelConfig {
        name: name.into(),
        source: src.into(),
        kind: KernelKind::DataMovement {
            risc,
            noc: if risc == Risc::Brisc { 0 } else { 1 },
        },
        cores: vec![cores],
        compile_args: args,
        defines: vec![],
    };
    // TensorAccessorArgs of a DRAM-interleaved buffer: config word, aligned page size.
    let acc = vec![2, page];
    let k_in0s = p.add_kernel(&dm(
        "in0_sender",
        IN0_SENDER,
        Risc::Ncrisc,
        rng(0, 0, 0, gy - 1),
        acc.clone(),
    ))?;
    let k_in0r = p.add_kernel(&dm(
        "in0_receiver",
        IN0_RECEIVER,
        Risc::Ncrisc,
        rng(1, 0, gx - 1, gy - 1),
        vec![],
    ))?;
    let k_in1s = p.add_kernel(&dm(
        "in1_sender_writer",
        IN1_SENDER,
        Risc::Brisc,
        rng(0, 0, gx - 1, 0),
        [acc.clone(), acc.clone()].concat(),
    ))?;
    let k_in1r = p.add_kernel(&dm(
        "in1_receiver_writer",
        IN1_RECEIVER,
        Risc::Brisc,
        rng(0, 1, gx - 1, gy - 1),
        acc.clone(),
    ))?;
    p.add_kernel(&KernelConfig {
        name: "bmm_large_block".into(),
        source: if c.matmul_block {
            COMPUTE_BLOCK
        } else {
            COMPUTE
        }
        .into(),
        kind: KernelKind::Compute(ComputeConfig {
            math_fidelity: c.fidelity,
            ..Default::default()
        }),
        cores: vec![grid],
        compile_args: vec![
            c.in0_block_w,
            pm / c.out_subblock_h,
            in0_tiles,
            c.out_subblock_h * c.in0_block_w,
            pn / c.out_subblock_w,
            in1_tiles,
            pn,
            num_blocks,
            c.out_subblock_h,
            c.out_subblock_w,
            sub_tiles,
        ],
        defines: vec![],
    })?;
    let noc = |x: u32, y: u32| dev.worker_core_from_logical(CoreCoord { x, y });
    let (aa, ba, oa) = (
        dev.buffer_address(a_buf)? as u32,
        dev.buffer_address(b_buf)? as u32,
        dev.buffer_address(o_buf)? as u32,
    );
    for y in 0..gy {
        for x in 0..gx {
            let core = CoreCoord { x, y };
            let writer = [
                oa,
                y * pm * nt + x * pn,
                1,
                nt,
                c.out_subblock_w,
                c.out_subblock_h * nt,
                c.out_subblock_w,
                c.out_subblock_h,
                sub_tiles,
                pn / c.out_subblock_w,
                pm / c.out_subblock_h,
            ];
            let me = noc(x, y)?;
            if x == 0 {
                // Row multicast on NoC 1: corners swapped (end first).
                let (st, en) = (noc(1, y)?, noc(gx - 1, y)?);
                let mut args = vec![
                    aa,
                    y * pm * kt,
                    1,
                    kt,
                    c.in0_block_w,
                    c.in0_block_w,
                    pm,
                    in0_tiles,
                    num_blocks,
                ];
                args.extend([s0, r0, gx - 1, 1, en.x, en.y, st.x, st.y, gx - 1]);
                p.set_runtime_args(k_in0s, core, &args)?;
            } else {
                let sn = noc(0, y)?;
                p.set_runtime_args(k_in0r, core, &[in0_tiles, num_blocks, sn.x, sn.y, s0, r0])?;
            }
            if y == 0 {
                let (st, en) = (noc(x, 1)?, noc(x, gy - 1)?);
                let mut args = vec![
                    ba,
                    x * pn,
                    1,
                    nt,
                    c.in0_block_w * nt,
                    pn,
                    c.in0_block_w,
                    in1_tiles,
                    num_blocks,
                ];
                args.extend(writer);
                args.extend([s1, r1, gy - 1, 1, st.x, st.y, en.x, en.y, gy - 1]);
                p.set_runtime_args(k_in1s, core, &args)?;
            } else {
                let sn = noc(x, 0)?;
                let mut args = vec![in1_tiles, num_blocks, sn.x, sn.y, s1, r1];
                args.extend(writer);
                p.set_runtime_args(k_in1r, core, &args)?;
            }
            let _ = me;
        }
    }
    let mut out = Vec::new();
    for _ in 0..runs {
        let stats = dev.run(&mut p)?;
        let mut output = vec![0u8; (mt * nt * page) as usize];
        dev.read_buffer(o_buf, 0, &mut output)?;
        out.push(MmRun {
            stats,
            output,
            profile: p.profile().cloned().expect("profile after a run"),
            cores: gx * gy,
        });
    }
    Ok(out)
}
