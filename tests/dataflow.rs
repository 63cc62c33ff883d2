//! Data movement acceptance tests on the simulator, through tt-safe and the C ABI: a DRAM -> L1 ->
//! DRAM copy (through a circular buffer and an interleaved L1 buffer) and sharded-buffer round
//! trips (height, width, block sharded L1 buffers -> CB -> interleaved DRAM), on Wormhole n150
//! and Blackhole p150. Data moves unchanged, so every comparison is exact.

#[path = "support/common.rs"]
mod common;

use common::{Rng, matrix, read, sim, to_tiles};
use tt_kernels::kernels;
use tt_safe::{
    Arch, Buffer, CbConfig, CoreCoord, CoreRange, DataFormat, Device, KernelKind, KernelSpec,
    Program, ShardLayout, ShardSpec, core, range,
};

/// Moves `num_tiles` pages from `src` to `dst` with reader_unary (RISCV_0) and writer_unary
/// (RISCV_1) through a double-buffered CB 0 on every core of `cores`, each core a contiguous run.
fn copy_program(
    device: &Device,
    src: &Buffer,
    dst: &Buffer,
    format: DataFormat,
    cores: CoreRange,
) -> Program {
    let num_tiles = src.num_pages() as u32;
    let mut program = Program::new(device).unwrap();
    program
        .add_circular_buffer(cores, CbConfig::tiles(0, format, 2))
        .unwrap();
    let mut reader_ct = src.accessor_args().unwrap();
    reader_ct.push(0);
    let mut writer_ct = dst.accessor_args().unwrap();
    writer_ct.push(0);
    let reader = program
        .add_kernel(
            KernelSpec::new(
                "reader_unary",
                kernels::DATAFLOW_READER_UNARY,
                KernelKind::riscv0(),
                cores,
            )
            .compile_args(reader_ct),
        )
        .unwrap();
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
    let n_cores = cores.iter().count() as u32;
    let per_core = num_tiles.div_ceil(n_cores);
    for (i, c) in cores.iter().enumerate() {
        let start = (i as u32 * per_core).min(num_tiles);
        let n = per_core.min(num_tiles - start);
        program
            .set_runtime_args(reader, c, &[src.address_u32().unwrap(), n, start])
            .unwrap();
        program
            .set_runtime_args(writer, c, &[dst.address_u32().unwrap(), n, start])
            .unwrap();
    }
    program
}

/// DRAM -> (CB) -> interleaved L1 buffer -> (CB) -> DRAM; every stage compared exactly.
fn dram_l1_dram(arch: Arch, format: DataFormat, rows: usize, cols: usize, cores: CoreRange) {
    let device = sim(arch);
    let mut rng = Rng::new(11);
    let input = to_tiles(&matrix(rows, cols, || rng.octaves(-6, 6)), format);
    let page = format.tile_size_bytes() as u32;
    let size = input.len() as u64;
    let src = Buffer::dram(&device, size, page).unwrap();
    let mid = Buffer::l1(&device, size, page).unwrap();
    let dst = Buffer::dram(&device, size, page).unwrap();
    src.write(&input).unwrap();
    // Poison the destinations so that a page nobody wrote shows up.
    mid.write(&vec![0x5A; input.len()]).unwrap();
    dst.write(&vec![0xA5; input.len()]).unwrap();

    let to_l1 = copy_program(&device, &src, &mid, format, cores);
    device.run(&to_l1).unwrap();
    assert!(
        read(&mid) == input,
        "DRAM -> L1 copy differs ({arch:?}, {format:?})"
    );

    let to_dram = copy_program(&device, &mid, &dst, format, cores);
    device.run(&to_dram).unwrap();
    assert!(
        read(&dst) == input,
        "L1 -> DRAM copy differs ({arch:?}, {format:?})"
    );
}

#[test]
fn copy_dram_l1_dram_wormhole() {
    // 70 x 100 -> 3 x 4 = 12 tiles over 5 cores (uneven split, one core with fewer tiles).
    dram_l1_dram(
        Arch::WormholeB0,
        DataFormat::Float16_b,
        70,
        100,
        range(1, 2, 5, 2),
    );
    // Bfp8_b pages (1088 B) are not a power of two.
    dram_l1_dram(
        Arch::WormholeB0,
        DataFormat::Bfp8_b,
        33,
        65,
        CoreRange::single(core(7, 7)),
    );
}

#[test]
fn copy_dram_l1_dram_blackhole() {
    dram_l1_dram(
        Arch::Blackhole,
        DataFormat::Float16_b,
        70,
        100,
        range(8, 7, 10, 9),
    );
    dram_l1_dram(
        Arch::Blackhole,
        DataFormat::Bfp8_b,
        33,
        65,
        CoreRange::single(core(10, 9)),
    );
}

/// Cores of a single-range shard spec in shard order (row-major: x fastest; column-major: y
/// fastest), computed here independently of the provider.
fn shard_order(cores: CoreRange, col_major: bool) -> Vec<CoreCoord> {
    let mut out = Vec::new();
    if col_major {
        for x in cores.start.x..=cores.end.x {
            for y in cores.start.y..=cores.end.y {
                out.push(core(x, y));
            }
        }
    } else {
        for y in cores.start.y..=cores.end.y {
            for x in cores.start.x..=cores.end.x {
                out.push(core(x, y));
            }
        }
    }
    out
}

/// Writes a sharded L1 buffer from the host, runs reader_shard + writer_shard_pages on every
/// shard core (the shard into CB 0, then to its pages of an interleaved DRAM buffer), and checks
/// both the host read-back of the sharded buffer and the DRAM buffer exactly.
fn sharded_round_trip(
    device: &Device,
    layout: ShardLayout,
    cores: CoreRange,
    shard_shape: [u32; 2],
    tensor_shape: [u32; 2],
) {
    let format = DataFormat::Float16_b;
    let page = format.tile_size_bytes() as u32;
    let mut rng = Rng::new(u64::from(tensor_shape[0] * 7 + tensor_shape[1]));
    let input = to_tiles(
        &matrix(tensor_shape[0] as usize, tensor_shape[1] as usize, || {
            rng.octaves(-8, 8)
        }),
        format,
    );
    let spec = ShardSpec::tiled(cores, layout, shard_shape, tensor_shape);
    let sharded = Buffer::sharded(device, page, spec).unwrap();
    sharded.write(&input).unwrap();
    assert!(
        read(&sharded) == input,
        "{layout:?}: host round trip of the sharded buffer differs"
    );
    let dst = Buffer::dram(device, input.len() as u64, page).unwrap();
    dst.write(&vec![0xA5; input.len()]).unwrap();

    let (sh, sw) = (shard_shape[0] / 32, shard_shape[1] / 32);
    let (th, tw) = (tensor_shape[0] / 32, tensor_shape[1] / 32);
    let shard_cols = tw.div_ceil(sw);
    let num_shards = th.div_ceil(sh) * shard_cols;

    let mut program = Program::new(device).unwrap();
    program
        .add_circular_buffer(cores, CbConfig::tiles(0, format, 2))
        .unwrap();
    let reader = program
        .add_kernel(
            KernelSpec::new(
                "reader_shard",
                kernels::DATAFLOW_READER_SHARD,
                KernelKind::riscv0(),
                cores,
            )
            .compile_args(vec![0]),
        )
        .unwrap();
    let mut writer_ct = dst.accessor_args().unwrap();
    writer_ct.push(0);
    let writer = program
        .add_kernel(
            KernelSpec::new(
                "writer_shard_pages",
                kernels::DATAFLOW_WRITER_SHARD_PAGES,
                KernelKind::riscv1(),
                cores,
            )
            .compile_args(writer_ct),
        )
        .unwrap();
    for (i, c) in shard_order(cores, false).into_iter().enumerate() {
        let i = i as u32;
        let (rows, cols, start) = if i < num_shards {
            let (sr, sc) = (i / shard_cols, i % shard_cols);
            (
                sh.min(th - sr * sh),
                sw.min(tw - sc * sw),
                sr * sh * tw + sc * sw,
            )
        } else {
            (0, 0, 0)
        };
        program
            .set_runtime_args(
                reader,
                c,
                &[
                    sharded.address_u32().unwrap(),
                    rows,
                    cols,
                    sw,
                    sharded.aligned_page_size(),
                ],
            )
            .unwrap();
        program
            .set_runtime_args(
                writer,
                c,
                &[dst.address_u32().unwrap(), rows, cols, start, tw],
            )
            .unwrap();
    }
    device.run(&program).unwrap();
    assert!(
        read(&dst) == input,
        "{layout:?} {shard_shape:?} of {tensor_shape:?}: shard -> CB -> DRAM differs"
    );
}

fn sharded_suite(arch: Arch) {
    let device = sim(arch);
    // 8 x 2 tiles in four 2 x 2 tile shards.
    sharded_round_trip(
        &device,
        ShardLayout::Height,
        range(0, 1, 3, 1),
        [64, 64],
        [256, 64],
    );
    // 2 x 8 tiles in four 2 x 2 tile shards on a column of cores.
    sharded_round_trip(
        &device,
        ShardLayout::Width,
        range(2, 0, 2, 3),
        [64, 64],
        [64, 256],
    );
    // 4 x 6 tiles in 2 x 2 tile shards on a 3 x 2 rectangle.
    sharded_round_trip(
        &device,
        ShardLayout::Block,
        range(1, 1, 3, 2),
        [64, 64],
        [128, 192],
    );
    // 3 x 5 tiles: the last shard row and column are partial.
    sharded_round_trip(
        &device,
        ShardLayout::Block,
        range(4, 4, 6, 5),
        [64, 64],
        [96, 160],
    );
}

#[test]
fn sharded_round_trip_wormhole() {
    sharded_suite(Arch::WormholeB0);
}

#[test]
fn sharded_round_trip_blackhole() {
    sharded_suite(Arch::Blackhole);
}
