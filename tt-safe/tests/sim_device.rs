//! tt-safe over the simulator provider: a DRAM -> L1 -> DRAM copy on both architectures, device
//! facts, and every host-side validation path with assertions on what the message tells the user.

use tt_safe::mcast::McastPlan;
use tt_safe::{
    Arch, Args, Buffer, BufferError, CbConfig, CbFormat, ComputeConfig, DataFormat, Device,
    KernelKind, KernelSpec, Noc, Program, ProgramError, ProviderKind, ShardLayout, ShardSpec,
    ShardSpecError, Tensor2d, core, range,
};

const READER: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    const uint32_t src_addr = get_arg_val<uint32_t>(0);
    const uint32_t n = get_arg_val<uint32_t>(1);
    const uint32_t start = get_arg_val<uint32_t>(2);
    constexpr uint32_t cb = 0;
    constexpr auto args = TensorAccessorArgs<0>();
    const auto src = TensorAccessor(args, src_addr, get_tile_size(cb));
    for (uint32_t i = 0; i < n; ++i) {
        cb_reserve_back(cb, 1);
        noc_async_read_page(start + i, src, get_write_ptr(cb));
        noc_async_read_barrier();
        cb_push_back(cb, 1);
    }
}
"#;

const WRITER: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    const uint32_t dst_addr = get_arg_val<uint32_t>(0);
    const uint32_t n = get_arg_val<uint32_t>(1);
    const uint32_t start = get_arg_val<uint32_t>(2);
    constexpr uint32_t cb = 0;
    constexpr auto args = TensorAccessorArgs<0>();
    const auto dst = TensorAccessor(args, dst_addr, get_tile_size(cb));
    for (uint32_t i = 0; i < n; ++i) {
        cb_wait_front(cb, 1);
        noc_async_write_page(start + i, dst, get_read_ptr(cb));
        noc_async_write_barrier();
        cb_pop_front(cb, 1);
    }
}
"#;

/// Deterministic values spread over several octaves, never all zero.
fn data(rows: usize, cols: usize, seed: u64) -> Tensor2d {
    let mut s = seed | 1;
    Tensor2d::from_fn(rows, cols, |_, _| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2f32.powi((s % 9) as i32 - 4)
    })
}

/// Copies a `rows` x `cols` matrix in `format` through DRAM -> L1 (CB 0) -> DRAM over the cores
/// of `cores`, each core moving a contiguous run of pages; returns (input tiles, output tiles).
fn copy(
    device: &Device,
    rows: usize,
    cols: usize,
    format: DataFormat,
    cores: tt_safe::CoreRange,
) -> (Vec<u8>, Vec<u8>) {
    let input = data(rows, cols, 7).to_tiles(format).unwrap();
    let page = format.tile_size_bytes() as u32;
    let pages = (input.len() / page as usize) as u32;
    let src = Buffer::dram(device, input.len() as u64, page).unwrap();
    let dst = Buffer::dram(device, input.len() as u64, page).unwrap();
    src.write(&input).unwrap();
    dst.write(&vec![0xA5; input.len()]).unwrap();

    let mut program = Program::new(device).unwrap();
    program
        .add_circular_buffer(cores, CbConfig::tiles(0, format, 2))
        .unwrap();
    let reader = program
        .add_kernel(
            KernelSpec::new("reader", READER, KernelKind::riscv1(), cores)
                .compile_args(src.accessor_args().unwrap()),
        )
        .unwrap();
    let writer = program
        .add_kernel(
            KernelSpec::new("writer", WRITER, KernelKind::riscv0(), cores)
                .compile_args(dst.accessor_args().unwrap()),
        )
        .unwrap();
    let list: Vec<_> = cores.iter().collect();
    let n = list.len() as u32;
    for (i, c) in list.iter().enumerate() {
        let i = i as u32;
        let start = pages * i / n;
        let count = pages * (i + 1) / n - start;
        program
            .set_runtime_args(
                reader,
                *c,
                &Args::new().addr(&src).unwrap().u32(count).u32(start),
            )
            .unwrap();
        program
            .set_runtime_args(
                writer,
                *c,
                &Args::new().addr(&dst).unwrap().u32(count).u32(start),
            )
            .unwrap();
    }
    let before = program.profile().unwrap_err();
    assert_eq!(before.status, tt_safe::Status::InvalidArgument, "{before}");
    assert!(before.to_string().contains("run it first"), "{before}");
    let (stats, prof) = device.run_profiled(&program).unwrap();
    assert_eq!(Some(prof.device_cycles()), stats.device_cycles);
    // The estimated profile: one entry per core, BRISC (writer) and NCRISC (reader) on each.
    let prof = program.profile().unwrap();
    let per_core = prof.cores();
    assert_eq!(per_core.len(), list.len());
    for c in &per_core {
        let mut th: Vec<_> = c.threads.iter().map(|t| t.thread).collect();
        th.sort();
        assert_eq!(
            th,
            vec![
                tt_safe::ProfileThread::Brisc,
                tt_safe::ProfileThread::Ncrisc
            ]
        );
        assert!(c.threads.iter().all(|t| t.busy_cycles > 0
            && t.busy_cycles + t.wait_cb_cycles + t.wait_sync_cycles <= t.end_cycles));
    }
    assert_eq!(Some(prof.device_cycles()), stats.device_cycles);
    assert!(
        prof.summary().starts_with("ESTIMATED"),
        "{}",
        prof.summary()
    );
    let trace = prof.to_chrome_trace();
    assert!(trace.starts_with('{') && trace.contains("\"traceEvents\":["));
    assert!(trace.contains("NCRISC 'reader'"));
    assert_eq!(stats.provider, ProviderKind::Sim);
    assert!(
        stats.is_estimate,
        "simulator timings must be flagged as estimates"
    );
    assert!(
        stats.to_string().contains("ESTIMATE") || stats.device_ns.is_none(),
        "{stats}"
    );
    (input, dst.read().unwrap())
}

#[test]
fn copy_wormhole_bf16_three_cores() {
    let device = Device::open_sim(Arch::WormholeB0).unwrap();
    let (input, output) = copy(&device, 50, 70, DataFormat::Float16_b, range(2, 3, 4, 3));
    assert_eq!(output, input);
    // The decoded copy equals the input within bf16 rounding (2^-8 relative).
    let back = Tensor2d::from_tiles(&output, 50, 70, DataFormat::Float16_b).unwrap();
    for (a, b) in data(50, 70, 7).data().iter().zip(back.data()) {
        assert!((a - b).abs() <= a.abs() * 2f32.powi(-8), "{a} vs {b}");
    }
}

#[test]
fn copy_blackhole_bfp8_two_by_two_cores() {
    let device = Device::open_sim(Arch::Blackhole).unwrap();
    let (input, output) = copy(&device, 100, 65, DataFormat::Bfp8_b, range(9, 8, 10, 9));
    assert_eq!(output, input);
}

#[test]
fn device_facts_and_provider_are_reported() {
    for (arch, gx, gy) in [(Arch::WormholeB0, 8, 8), (Arch::Blackhole, 11, 10)] {
        let device = Device::open_sim(arch).unwrap();
        assert_eq!(device.provider(), ProviderKind::Sim);
        assert!(
            device.selection().contains("simulator"),
            "{}",
            device.selection()
        );
        let info = device.info();
        assert_eq!(info.arch, arch);
        assert_eq!((info.grid.size.x, info.grid.size.y), (gx, gy));
        assert!(info.is_simulator);
        assert!(info.l1_user_bytes() > 1_000_000);
        // Logical -> NoC agrees with the architecture tables in tt-formats.
        let spec = arch.spec();
        let noc = device.worker_core(core(gx - 1, 1)).unwrap();
        assert_eq!(
            noc,
            core(spec.worker_noc_x[gx as usize - 1], spec.worker_noc_y[1])
        );
        let err = device.worker_core(core(gx, 0)).unwrap_err().to_string();
        assert!(err.contains(&format!("{gx}x{gy} worker grid")), "{err}");
        assert!(
            device.dram_bank_noc(0).is_some()
                && device.dram_bank_noc(info.num_dram_banks).is_none()
        );
    }
}

#[test]
fn metal_is_never_a_silent_fallback() {
    // On a machine without the metal shim this is an error naming what to do; with it, a device.
    match Device::open_metal(0) {
        Ok(d) => assert_eq!(d.provider(), ProviderKind::Metal),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("TT_SHIM_LIB") || msg.contains("device"),
                "{msg}"
            );
        }
    }
}

#[test]
fn core_outside_grid_names_the_grid() {
    let device = Device::open_sim(Arch::WormholeB0).unwrap();
    let mut program = Program::new(&device).unwrap();
    let err = program
        .add_kernel(KernelSpec::new(
            "reader",
            READER,
            KernelKind::riscv0(),
            range(0, 0, 8, 0),
        ))
        .unwrap_err();
    assert!(matches!(err, ProgramError::Grid(_)));
    let msg = err.to_string();
    assert!(
        msg.contains("kernel reader") && msg.contains("(8, 0)") && msg.contains("8x8 worker grid"),
        "{msg}"
    );
    let err = program
        .add_semaphore(core(3, 9), 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("(3, 9)") && err.contains("8x8"), "{err}");
}

#[test]
fn circular_buffer_index_checks() {
    let device = Device::open_sim(Arch::WormholeB0).unwrap();
    let mut program = Program::new(&device).unwrap();
    program
        .add_circular_buffer(
            range(0, 0, 1, 1),
            CbConfig::tiles(0, DataFormat::Float16_b, 2),
        )
        .unwrap();
    // Same index on a disjoint range is fine; on an overlapping one it is not.
    program
        .add_circular_buffer(
            range(2, 0, 3, 1),
            CbConfig::tiles(0, DataFormat::Float16_b, 2),
        )
        .unwrap();
    let err = program
        .add_circular_buffer(range(1, 1, 2, 2), CbConfig::tiles(0, DataFormat::Bfp8_b, 1))
        .unwrap_err();
    assert!(
        matches!(err, ProgramError::CbIndexReused { index: 0, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("index 0") && msg.contains("(1, 1)") && msg.contains("another index"),
        "{msg}"
    );

    let max = device.info().max_circular_buffers;
    let err = program
        .add_circular_buffer(core(5, 5), CbConfig::tiles(max, DataFormat::Float32, 1))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("{max} CB indices per core")),
        "{err}"
    );

    let two = CbConfig {
        total_size: 4096,
        formats: vec![
            CbFormat {
                index: 4,
                format: DataFormat::Float16_b,
                page_size: 2048,
            },
            CbFormat {
                index: 4,
                format: DataFormat::Float16_b,
                page_size: 2048,
            },
        ],
        globally_allocated: None,
    };
    assert!(matches!(
        program.add_circular_buffer(core(5, 5), two),
        Err(ProgramError::CbDuplicateIndex { index: 4 })
    ));
    let ragged = CbConfig {
        total_size: 3000,
        ..CbConfig::tiles(5, DataFormat::Float16_b, 1)
    };
    let msg = program
        .add_circular_buffer(core(5, 5), ragged)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("3000") && msg.contains("2048"), "{msg}");
}

#[test]
fn circular_buffer_too_large_for_l1() {
    let device = Device::open_sim(Arch::WormholeB0).unwrap();
    let mut program = Program::new(&device).unwrap();
    let free = device.info().l1_user_bytes();
    let tiles = (free / 2048 + 1) as u32;
    let err = program
        .add_circular_buffer(core(0, 0), CbConfig::tiles(0, DataFormat::Float16_b, tiles))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&free.to_string()) && msg.contains("fewer or smaller pages"),
        "{msg}"
    );
}

#[test]
fn runtime_arg_limits_are_checked_before_the_provider() {
    let device = Device::open_sim(Arch::WormholeB0).unwrap();
    let max = device.info().max_runtime_args as usize;
    let mut program = Program::new(&device).unwrap();
    let k = program
        .add_kernel(
            KernelSpec::new("reader", READER, KernelKind::riscv0(), range(0, 0, 1, 0))
                .compile_args([2, 2048]),
        )
        .unwrap();
    let too_many = vec![1u32; max + 1];
    let err = program
        .set_runtime_args(k, core(0, 0), &too_many)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ProgramError::TooManyRuntimeArgs { .. }));
    assert!(
        msg.contains(&format!("{} runtime args", max + 1))
            && msg.contains(&format!("limit of {max}")),
        "{msg}"
    );

    program
        .set_runtime_args(k, core(0, 0), &vec![1u32; 100])
        .unwrap();
    let err = program
        .set_common_runtime_args(k, &vec![2u32; max - 99])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("100 runtime args") && err.contains(&format!("plus {} common", max - 99)),
        "{err}"
    );
    program
        .set_common_runtime_args(k, &vec![2u32; max - 100])
        .unwrap();
    let err = program
        .set_runtime_args(k, core(1, 0), &vec![1u32; 101])
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("{} common", max - 100)), "{err}");

    let err = program.set_runtime_args(k, core(2, 0), &[1]).unwrap_err();
    assert!(matches!(err, ProgramError::CoreNotInKernel { .. }));
    assert!(
        err.to_string()
            .contains("(2, 0) is not one of the kernel's cores"),
        "{err}"
    );
}

#[test]
fn kernels_may_not_share_a_risc() {
    let device = Device::open_sim(Arch::WormholeB0).unwrap();
    let mut program = Program::new(&device).unwrap();
    let dram_accessor = [2u32, 2048];
    program
        .add_kernel(
            KernelSpec::new("a", READER, KernelKind::riscv0(), range(0, 0, 2, 2))
                .compile_args(dram_accessor),
        )
        .unwrap();
    program
        .add_kernel(
            KernelSpec::new("b", WRITER, KernelKind::riscv1(), range(0, 0, 2, 2))
                .compile_args(dram_accessor),
        )
        .unwrap();
    let err = program
        .add_kernel(KernelSpec::new(
            "c",
            READER,
            KernelKind::riscv0(),
            range(2, 2, 3, 3),
        ))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("kernel c") && msg.contains("runs kernel a") && msg.contains("RISCV_0"),
        "{msg}"
    );
    let bad = KernelSpec::new("d", READER, KernelKind::riscv0(), core(7, 7)).define("1X", "2");
    assert!(matches!(
        program.add_kernel(bad),
        Err(ProgramError::BadDefine { .. })
    ));
    let nul = KernelSpec::new("e\0", READER, KernelKind::riscv0(), core(7, 7));
    assert!(matches!(
        program.add_kernel(nul),
        Err(ProgramError::NulInString { position: 1, .. })
    ));
    let compute = ComputeConfig {
        unpack_to_dest_fp32: vec![99],
        ..ComputeConfig::default()
    };
    let err = program
        .add_kernel(KernelSpec::new(
            "f",
            "void kernel_main() {}",
            KernelKind::compute(compute),
            core(7, 7),
        ))
        .unwrap_err();
    assert!(
        matches!(err, ProgramError::UnpackToDestIndex { index: 99, .. }),
        "{err:?}"
    );
}

#[test]
fn kernel_build_errors_carry_the_compiler_output() {
    let device = Device::open_sim(Arch::WormholeB0).unwrap();
    let mut program = Program::new(&device).unwrap();
    let broken = "#include \"api/dataflow/dataflow_api.h\"\nvoid kernel_main() { this_is_not_declared(); }\n";
    let err = program
        .add_kernel(KernelSpec::new(
            "broken",
            broken,
            KernelKind::riscv0(),
            core(0, 0),
        ))
        .unwrap_err();
    assert!(matches!(err, ProgramError::KernelBuild { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("broken") && msg.contains("this_is_not_declared"),
        "{msg}"
    );
}

#[test]
fn bad_shard_specs_are_rejected_with_reasons() {
    let device = Device::open_sim(Arch::WormholeB0).unwrap();
    // Height sharding with a shard narrower than the tensor.
    let spec = ShardSpec::tiled(range(0, 0, 3, 0), ShardLayout::Height, [64, 32], [256, 64]);
    let err = Buffer::sharded(&device, 2048, spec).unwrap_err();
    assert!(
        matches!(
            err,
            BufferError::Shard(ShardSpecError::HeightShardWidth { .. })
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("as wide as the tensor (64"),
        "{err}"
    );
    // More shards than cores.
    let spec = ShardSpec::tiled(range(0, 0, 1, 0), ShardLayout::Height, [64, 64], [256, 64]);
    let msg = Buffer::sharded(&device, 2048, spec)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("needs 4 shards") && msg.contains("only 2 cores"),
        "{msg}"
    );
    // Shard not made of whole tiles.
    let spec = ShardSpec::tiled(range(0, 0, 3, 0), ShardLayout::Width, [64, 40], [64, 160]);
    let msg = Buffer::sharded(&device, 2048, spec)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("64x40") && msg.contains("64x64"), "{msg}");
    // A valid block-sharded buffer with a partial last shard is accepted and round-trips.
    let spec = ShardSpec::tiled(range(0, 0, 1, 1), ShardLayout::Block, [64, 64], [96, 128]);
    let buf = Buffer::sharded(&device, 2048, spec).unwrap();
    assert_eq!(buf.num_pages(), 12);
    let bytes: Vec<u8> = (0..buf.size()).map(|i| (i * 7 % 251) as u8).collect();
    buf.write(&bytes).unwrap();
    assert_eq!(buf.read().unwrap(), bytes);
    assert!(matches!(
        buf.accessor_args(),
        Err(BufferError::ShardedAccessor)
    ));
}

#[test]
fn l1_overflow_reports_what_is_free() {
    let device = Device::open_sim(Arch::WormholeB0).unwrap();
    let info = device.info().clone();
    let cores = info.grid.num_cores() as u64;
    // More than a core's whole user L1: rejected on the host.
    let page = 4096u32;
    let too_big = (info.l1_user_bytes() / u64::from(page) + 1) * u64::from(page) * cores;
    let msg = Buffer::l1(&device, too_big, page).unwrap_err().to_string();
    assert!(
        msg.contains(&info.l1_user_bytes().to_string()) && msg.contains("use DRAM"),
        "{msg}"
    );
    // Two buffers of 70% of L1 each: the second fails in the provider, whose message is surfaced.
    let share = info.l1_user_bytes() * 7 / 10 / u64::from(page) * u64::from(page);
    let first = Buffer::l1(&device, share * cores, page).unwrap();
    let err = Buffer::l1(&device, share * cores, page).unwrap_err();
    match &err {
        BufferError::OutOfMemory {
            memory, message, ..
        } => {
            assert_eq!(*memory, "L1");
            assert!(!message.is_empty());
        }
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
    assert!(err.to_string().contains("use DRAM"), "{err}");
    drop(first);
    // Freed memory is reusable.
    Buffer::l1(&device, share * cores, page).unwrap();
}

#[test]
fn reads_and_writes_are_bounds_checked() {
    let device = Device::open_sim(Arch::Blackhole).unwrap();
    let buf = Buffer::dram(&device, 4 * 2048, 2048).unwrap();
    let err = buf
        .write_at(3 * 2048 + 1, &[0u8; 2048])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("out of range") && err.contains("8192"),
        "{err}"
    );
    let mut out = [0u8; 16];
    assert!(buf.read_at(8192, &mut out).is_err());
    let words: Vec<u32> = (0..(4 * 2048 / 4))
        .map(|i: u32| i.wrapping_mul(2654435761))
        .collect();
    buf.write_slice(&words).unwrap();
    assert_eq!(buf.read_vec::<u32>().unwrap(), words);
    assert!(matches!(
        Buffer::dram(&device, 3000, 2048),
        Err(BufferError::NotWholePages { .. })
    ));
}

#[test]
fn multicast_plan_from_the_device_map() {
    let wh = Device::open_sim(Arch::WormholeB0).unwrap();
    let plan = McastPlan::along_rows(wh.noc_map(), range(0, 0, 7, 7), Noc::Noc0).unwrap();
    // One NoC rectangle per row, spanning Wormhole's DRAM column (the NoC skips it).
    assert!(
        plan.groups()
            .iter()
            .all(|g| g.rects.len() == 1 && g.num_dests() == 7)
    );
    let bh = Device::open_sim(Arch::Blackhole).unwrap();
    let plan = McastPlan::down_columns(bh.noc_map(), range(0, 0, 10, 9), Noc::Noc1).unwrap();
    assert!(
        plan.groups()
            .iter()
            .all(|g| g.rects.len() == 1 && g.num_dests() == 9)
    );
}

#[test]
fn buffers_and_programs_keep_the_device_alive() {
    let device = Device::open_sim(Arch::WormholeB0).unwrap();
    let buf = Buffer::dram(&device, 2048, 2048).unwrap();
    let program = Program::new(&device).unwrap();
    drop(device);
    buf.write(&[1u8; 2048]).unwrap();
    assert_eq!(buf.read().unwrap(), vec![1u8; 2048]);
    drop(program);
    assert_eq!(buf.device().provider(), ProviderKind::Sim);
}

/// One kernel for both roles of a multicast plan: the sender reads one page from DRAM and
/// multicasts it with the plan's handshake to every rectangle; each receiver writes what it got to
/// its own output page. Runtime args: role (1 = sender), DRAM address, page id, then the plan's
/// sender args or receiver args.
const MCAST: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    const uint32_t role = get_arg_val<uint32_t>(0);
    const uint32_t dram = get_arg_val<uint32_t>(1);
    const uint32_t page_id = get_arg_val<uint32_t>(2);
    constexpr uint32_t cb = 0;
    const uint32_t bytes = get_tile_size(cb);
    constexpr auto args = TensorAccessorArgs<0>();
    const auto acc = TensorAccessor(args, dram, bytes);
    cb_reserve_back(cb, 1);
    const uint32_t l1 = get_write_ptr(cb);
    if (role == 1) {
        const uint32_t sender_sem = get_semaphore(get_arg_val<uint32_t>(3));
        const uint32_t recv_sem = get_semaphore(get_arg_val<uint32_t>(4));
        const uint32_t total = get_arg_val<uint32_t>(5);
        const uint32_t nrects = get_arg_val<uint32_t>(6);
        noc_async_read_page(page_id, acc, l1);
        noc_async_read_barrier();
        volatile tt_l1_ptr uint32_t* s = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(sender_sem);
        noc_semaphore_wait(s, total);
        noc_semaphore_set(s, 0);
        volatile tt_l1_ptr uint32_t* r = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(recv_sem);
        *r = 1;
        for (uint32_t i = 0; i < nrects; ++i) {
            const uint32_t b = 7 + i * 5;
            const uint64_t data = get_noc_multicast_addr(get_arg_val<uint32_t>(b), get_arg_val<uint32_t>(b + 1),
                get_arg_val<uint32_t>(b + 2), get_arg_val<uint32_t>(b + 3), l1);
            noc_async_write_multicast(l1, data, bytes, get_arg_val<uint32_t>(b + 4));
        }
        noc_async_write_barrier();
        for (uint32_t i = 0; i < nrects; ++i) {
            const uint32_t b = 7 + i * 5;
            const uint64_t flag = get_noc_multicast_addr(get_arg_val<uint32_t>(b), get_arg_val<uint32_t>(b + 1),
                get_arg_val<uint32_t>(b + 2), get_arg_val<uint32_t>(b + 3), recv_sem);
            noc_semaphore_set_multicast(recv_sem, flag, get_arg_val<uint32_t>(b + 4));
        }
        noc_async_write_barrier();
    } else {
        const uint32_t sx = get_arg_val<uint32_t>(3);
        const uint32_t sy = get_arg_val<uint32_t>(4);
        const uint32_t sender_sem = get_semaphore(get_arg_val<uint32_t>(5));
        const uint32_t recv_sem = get_semaphore(get_arg_val<uint32_t>(6));
        volatile tt_l1_ptr uint32_t* r = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(recv_sem);
        noc_semaphore_set(r, 0);
        noc_semaphore_inc(get_noc_addr(sx, sy, sender_sem), 1);
        noc_semaphore_wait(r, 1);
        noc_async_write_page(page_id, acc, l1);
        noc_async_write_barrier();
    }
}
"#;

/// Runs the plan's handshake on the simulator: every receiver must end up with its sender's page.
fn run_mcast(arch: Arch, cores: tt_safe::CoreRange, rows: bool, noc: Noc) {
    use tt_safe::mcast::McastRole;
    let device = Device::open_sim(arch).unwrap();
    let mut plan = if rows {
        McastPlan::along_rows(device.noc_map(), cores, noc).unwrap()
    } else {
        McastPlan::down_columns(device.noc_map(), cores, noc).unwrap()
    };
    let page = 2048u32;
    let senders: Vec<_> = plan.senders().collect();
    let receivers: Vec<_> = plan.receivers().collect();
    let src = Buffer::dram(&device, u64::from(page) * senders.len() as u64, page).unwrap();
    let dst = Buffer::dram(&device, u64::from(page) * receivers.len() as u64, page).unwrap();
    let input: Vec<u8> = (0..src.size())
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    src.write(&input).unwrap();
    let mut program = Program::new(&device).unwrap();
    program
        .add_circular_buffer(cores, CbConfig::tiles(0, DataFormat::Float16_b, 1))
        .unwrap();
    plan.create_semaphores(&mut program).unwrap();
    let kind = match noc {
        Noc::Noc0 => KernelKind::riscv0(),
        Noc::Noc1 => KernelKind::riscv1(),
    };
    let k = program
        .add_kernel(KernelSpec::new("mcast", MCAST, kind, cores).compile_args([2, page]))
        .unwrap();
    let mut expected = vec![0u8; dst.size() as usize];
    for c in cores.iter() {
        match plan.role(c) {
            Some(McastRole::Sender(_)) => {
                let i = senders.iter().position(|s| *s == c).unwrap() as u32;
                let args = Args::new()
                    .u32(1)
                    .addr(&src)
                    .unwrap()
                    .u32(i)
                    .extend(&plan.sender_args(c).unwrap());
                program.set_runtime_args(k, c, &args).unwrap();
            }
            Some(McastRole::Receiver(g)) => {
                let o = receivers.iter().position(|r| *r == c).unwrap();
                let i = senders.iter().position(|s| *s == g.sender).unwrap();
                let p = page as usize;
                expected[o * p..(o + 1) * p].copy_from_slice(&input[i * p..(i + 1) * p]);
                let r = plan.receiver_args(c).unwrap();
                let args = Args::new().u32(0).addr(&dst).unwrap().u32(o as u32).pod(&r);
                program.set_runtime_args(k, c, &args).unwrap();
            }
            None => panic!("{c} has no role"),
        }
    }
    device.run(&program).unwrap();
    assert_eq!(dst.read().unwrap(), expected);
}

#[test]
fn multicast_along_rows_wormhole_noc0_crosses_the_dram_column() {
    run_mcast(Arch::WormholeB0, range(0, 0, 7, 1), true, Noc::Noc0);
}

#[test]
fn multicast_down_columns_wormhole_noc1_swaps_corners() {
    run_mcast(Arch::WormholeB0, range(2, 0, 3, 7), false, Noc::Noc1);
}

#[test]
fn multicast_along_rows_blackhole_noc1() {
    run_mcast(Arch::Blackhole, range(0, 3, 10, 4), true, Noc::Noc1);
}

#[test]
fn globally_allocated_circular_buffers() {
    let device = Device::open_sim(Arch::WormholeB0).unwrap();
    let cores = range(0, 0, 1, 0);
    let spec = ShardSpec::tiled(cores, ShardLayout::Height, [64, 32], [128, 32]);
    let sharded = Buffer::sharded(&device, 2048, spec).unwrap();
    assert_eq!(sharded.bytes_per_core(), 2 * 2048);
    let dram = Buffer::dram(&device, 4 * 2048, 2048).unwrap();
    let mut program = Program::new(&device).unwrap();
    let err = program
        .add_circular_buffer(
            cores,
            CbConfig::tiles(1, DataFormat::Float16_b, 2).backed_by(&dram),
        )
        .unwrap_err();
    assert!(matches!(err, ProgramError::CbBackingNotL1), "{err:?}");
    let err = program
        .add_circular_buffer(
            cores,
            CbConfig::tiles(1, DataFormat::Float16_b, 3).backed_by(&sharded),
        )
        .unwrap_err();
    assert!(err.to_string().contains("exceeds the 4096 bytes"), "{err}");
    program
        .add_circular_buffer(
            cores,
            CbConfig::tiles(1, DataFormat::Float16_b, 2).backed_by(&sharded),
        )
        .unwrap();
    // The program keeps the backing buffer's memory alive after the Buffer handle is dropped.
    drop(sharded);
    drop(program);
}
