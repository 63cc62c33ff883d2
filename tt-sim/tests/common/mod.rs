//! Helpers shared by the simulator's integration tests.
#![allow(dead_code)]

use tt_sim::*;

pub const READER: &str = include_str!("../../../kernels/dataflow/reader_unary_interleaved.cpp");
pub const WRITER: &str = include_str!("../../../kernels/dataflow/writer_unary_interleaved.cpp");

/// TensorAccessorArgs compile-time words of an interleaved buffer (0.81 layout: config, aligned page size).
pub fn accessor_args(dram: bool, page: u32) -> Vec<u32> {
    vec![if dram { 2 } else { 0 }, page]
}

pub fn core(x: u32, y: u32) -> CoreCoord {
    CoreCoord { x, y }
}

pub fn range(x0: u32, y0: u32, x1: u32, y1: u32) -> CoreRange {
    CoreRange {
        start: core(x0, y0),
        end: core(x1, y1),
    }
}

/// Deterministic pseudo-random bytes (xorshift), never all zero.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

pub fn dram_buffer(dev: &mut SimDevice, pages: u64, page: u32) -> BufferId {
    dev.create_buffer(&BufferConfig {
        size: pages * page as u64,
        page_size: page,
        buffer_type: BufferType::Dram,
        layout: BufferLayout::Interleaved,
        shard: None,
    })
    .expect("dram buffer")
}

pub fn dm(
    name: &str,
    source: &str,
    risc: Risc,
    cores: Vec<CoreRange>,
    compile_args: Vec<u32>,
) -> KernelConfig {
    KernelConfig {
        name: name.into(),
        source: source.into(),
        kind: KernelKind::DataMovement {
            risc,
            noc: if risc == Risc::Brisc { 0 } else { 1 },
        },
        cores,
        compile_args,
        defines: vec![],
    }
}

pub fn cb(index: u32, pages: u32, page: u32, fmt: u32) -> CbConfig {
    CbConfig {
        total_size: pages * page,
        formats: vec![CbFormat {
            index,
            data_format: fmt,
            page_size: page,
        }],
        globally_allocated: None,
    }
}

pub const BF16: u32 = 5;

/// A DRAM -> L1 -> DRAM copy of `pages` pages of `page` bytes over the cores of `grid` (row-major),
/// each core copying a contiguous run of pages. Returns the output bytes.
pub fn run_copy(
    arch: SimArch,
    pages: u64,
    page: u32,
    grid: CoreRange,
    seed: u64,
) -> Result<(Vec<u8>, Vec<u8>), SimError> {
    let mut dev = SimDevice::open(arch)?;
    let src = dram_buffer(&mut dev, pages, page);
    let dst = dram_buffer(&mut dev, pages, page);
    let input = random_bytes((pages * page as u64) as usize, seed);
    dev.write_buffer(src, 0, &input)?;
    let mut p = SimProgram::new(&dev);
    p.add_circular_buffer(&dev, &[grid], &cb(0, 2, page, BF16))?;
    let r = p.add_kernel(&dm(
        "reader",
        READER,
        Risc::Ncrisc,
        vec![grid],
        accessor_args(true, page),
    ))?;
    let mut wargs = vec![0];
    wargs.extend(accessor_args(true, page));
    let w = p.add_kernel(&dm("writer", WRITER, Risc::Brisc, vec![grid], wargs))?;
    let cores: Vec<CoreCoord> = grid.iter().collect();
    let n = cores.len() as u64;
    let (sa, da) = (
        dev.buffer_address(src)? as u32,
        dev.buffer_address(dst)? as u32,
    );
    for (i, c) in cores.iter().enumerate() {
        let i = i as u64;
        let start = pages * i / n;
        let count = pages * (i + 1) / n - start;
        p.set_runtime_args(r, *c, &[sa, count as u32, start as u32])?;
        p.set_runtime_args(w, *c, &[da, count as u32, start as u32])?;
    }
    dev.run(&mut p)?;
    let mut out = vec![0u8; input.len()];
    dev.read_buffer(dst, 0, &mut out)?;
    Ok((input, out))
}
