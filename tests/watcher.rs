//! One test per watcher-grade check, each a deliberately broken kernel run on the simulator
//! through tt-safe and the C ABI. Every test asserts that the error names the core (logical
//! coordinates), the RISC and the offending call, plus what makes the message actionable. The
//! broken kernels live here as string constants; they are never part of `kernels/`.

#[path = "support/common.rs"]
mod common;

use common::{assert_names, sim};
use tt_safe::mcast::McastPlan;
use tt_safe::{
    Arch, Buffer, BufferError, CbConfig, ComputeConfig, CoreCoord, DataFormat, Device, KernelKind,
    KernelSpec, Noc, Program, RunError, core, range,
};

const BF16: DataFormat = DataFormat::Float16_b;

/// Runs `program`, expecting a kernel fault or deadlock; returns the provider's message.
fn run_err(device: &Device, program: &Program) -> String {
    match device.run(program) {
        Ok(stats) => panic!("the broken program ran to completion ({stats})"),
        Err(e @ (RunError::KernelFault { .. } | RunError::Deadlock { .. })) => {
            let msg = e.to_string();
            eprintln!("{msg}");
            msg
        }
        Err(other) => panic!("expected a kernel fault or deadlock, got: {other}"),
    }
}

fn dm_kernel(
    program: &mut Program,
    name: &str,
    source: &str,
    riscv0: bool,
    c: CoreCoord,
    args: &[u32],
) {
    let kind = if riscv0 {
        KernelKind::riscv0()
    } else {
        KernelKind::riscv1()
    };
    let k = program
        .add_kernel(KernelSpec::new(name, source, kind, c))
        .unwrap();
    program.set_runtime_args(k, c, args).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Straddling CB push: a 3-page ring; the producer moves 2 pages at a time, so its second
// reservation would run past the end of the ring.

const STRADDLE_PRODUCER: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    constexpr uint32_t cb = 0;
    for (uint32_t i = 0; i < 2; ++i) {
        cb_reserve_back(cb, 2);
        cb_push_back(cb, 2);
    }
}
"#;

const STRADDLE_CONSUMER: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    constexpr uint32_t cb = 0;
    for (uint32_t i = 0; i < 2; ++i) {
        cb_wait_front(cb, 2);
        cb_pop_front(cb, 2);
    }
}
"#;

#[test]
fn straddling_cb_push() {
    let device = sim(Arch::WormholeB0);
    let c = core(2, 1);
    let mut program = Program::new(&device).unwrap();
    program
        .add_circular_buffer(c, CbConfig::tiles(0, BF16, 3))
        .unwrap();
    dm_kernel(&mut program, "producer", STRADDLE_PRODUCER, true, c, &[]);
    dm_kernel(&mut program, "consumer", STRADDLE_CONSUMER, false, c, &[]);
    let msg = run_err(&device, &program);
    assert!(
        msg.contains("cb_reserve_back") || msg.contains("cb_push_back"),
        "the message names neither cb_reserve_back nor cb_push_back:\n{msg}"
    );
    let call = if msg.contains("cb_reserve_back") {
        "cb_reserve_back"
    } else {
        "cb_push_back"
    };
    assert_names(&msg, c, "brisc", call);
    assert!(
        msg.contains("producer") && (msg.contains("straddl") || msg.contains("end of the")),
        "the message should say the chunk straddles the ring end:\n{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// DEST overflow: a 16-bit DEST in half-sync mode holds 8 tiles per acquire; the kernel copies a
// tile into DEST index 8.

const DEST_FEEDER: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    cb_reserve_back(0, 1);
    cb_push_back(0, 1);
}
"#;

const DEST_OVERFLOW: &str = r#"
#include "api/compute/compute_kernel_hw_startup.h"
#include "api/compute/tile_move_copy.h"
void kernel_main() {
    compute_kernel_hw_startup(0, 16);
    copy_init(0);
    cb_wait_front(0, 1);
    tile_regs_acquire();
    copy_tile(0, 0, 8);
    tile_regs_commit();
    tile_regs_wait();
    tile_regs_release();
    cb_pop_front(0, 1);
}
"#;

#[test]
fn dest_overflow() {
    let device = sim(Arch::WormholeB0);
    let c = core(3, 4);
    let mut program = Program::new(&device).unwrap();
    program
        .add_circular_buffer(c, CbConfig::tiles(0, BF16, 1))
        .unwrap();
    program
        .add_circular_buffer(c, CbConfig::tiles(16, BF16, 1))
        .unwrap();
    dm_kernel(&mut program, "feeder", DEST_FEEDER, true, c, &[]);
    program
        .add_kernel(KernelSpec::new(
            "dest_overflow",
            DEST_OVERFLOW,
            KernelKind::compute(ComputeConfig::default()),
            c,
        ))
        .unwrap();
    let msg = run_err(&device, &program);
    assert_names(&msg, c, "trisc", "copy_tile");
    assert!(
        msg.contains('8') && msg.contains("DEST"),
        "the message should name DEST index 8 and the capacity:\n{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// NoC out of range: a read of 2 KiB that starts 1 KiB before the end of the target's L1.

const NOC_OUT_OF_RANGE: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    const uint32_t x = get_arg_val<uint32_t>(0);
    const uint32_t y = get_arg_val<uint32_t>(1);
    const uint32_t addr = get_arg_val<uint32_t>(2);
    cb_reserve_back(0, 1);
    noc_async_read(get_noc_addr(x, y, addr), get_write_ptr(0), 2048);
    noc_async_read_barrier();
    cb_push_back(0, 1);
}
"#;

#[test]
fn noc_address_out_of_range() {
    let device = sim(Arch::WormholeB0);
    let c = core(5, 6);
    let target = device.worker_core(core(1, 1)).unwrap();
    let l1_end = device.info().l1_size;
    let mut program = Program::new(&device).unwrap();
    program
        .add_circular_buffer(c, CbConfig::tiles(0, BF16, 1))
        .unwrap();
    dm_kernel(
        &mut program,
        "noc_oob",
        NOC_OUT_OF_RANGE,
        false,
        c,
        &[target.x, target.y, l1_end - 1024],
    );
    let msg = run_err(&device, &program);
    assert_names(&msg, c, "ncrisc", "noc_async_read");
    let end_hex = format!("{l1_end:#x}");
    assert!(
        msg.contains(&end_hex) || msg.contains("outside") || msg.contains("out of range"),
        "the message should say the range leaves L1:\n{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// Multicast with the wrong num_dests: the rectangle holds 3 receivers, the kernel says 5.

const MCAST_WRONG_DESTS: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    const uint32_t sx = get_arg_val<uint32_t>(0);
    const uint32_t sy = get_arg_val<uint32_t>(1);
    const uint32_t ex = get_arg_val<uint32_t>(2);
    const uint32_t ey = get_arg_val<uint32_t>(3);
    const uint32_t num_dests = get_arg_val<uint32_t>(4);
    cb_reserve_back(0, 1);
    const uint32_t l1 = get_write_ptr(0);
    noc_async_write_multicast(l1, get_noc_multicast_addr(sx, sy, ex, ey, l1), 2048, num_dests);
    noc_async_write_barrier();
}
"#;

#[test]
fn multicast_with_wrong_num_dests() {
    let device = sim(Arch::WormholeB0);
    let sender = core(0, 3);
    let receivers = range(1, 3, 3, 3);
    let mut program = Program::new(&device).unwrap();
    program
        .add_circular_buffer(range(0, 3, 3, 3), CbConfig::tiles(0, BF16, 1))
        .unwrap();
    let mut plan = McastPlan::one_to_many(device.noc_map(), sender, receivers, Noc::Noc0).unwrap();
    plan.create_semaphores(&mut program).unwrap();
    // [sender sem, receiver sem, total, num_rects, rect: sx, sy, ex, ey, num_dests]
    let words = plan.sender_args(sender).unwrap();
    assert_eq!(words[3], 1, "one rectangle expected for {receivers}");
    assert_eq!(words[8], 3, "the plan counts 3 receivers");
    let args = [words[4], words[5], words[6], words[7], 5];
    dm_kernel(
        &mut program,
        "mcast_sender",
        MCAST_WRONG_DESTS,
        true,
        sender,
        &args,
    );
    let msg = run_err(&device, &program);
    assert_names(&msg, sender, "brisc", "noc_async_write_multicast");
    assert!(
        msg.contains("num_dests") && msg.contains('5') && msg.contains('3'),
        "the message should give the wrong and the right count:\n{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// Missing barrier: the reader pushes a page whose NoC read has not been waited for.

const NO_BARRIER_READER: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    const uint32_t src = get_arg_val<uint32_t>(0);
    constexpr auto args = TensorAccessorArgs<0>();
    const auto s = TensorAccessor(args, src, get_tile_size(0));
    cb_reserve_back(0, 1);
    noc_async_read_tile(0, s, get_write_ptr(0));
    // noc_async_read_barrier() is missing here.
    cb_push_back(0, 1);
}
"#;

const DRAIN: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    cb_wait_front(0, 1);
    cb_pop_front(0, 1);
}
"#;

#[test]
fn missing_read_barrier() {
    let device = sim(Arch::WormholeB0);
    let c = core(7, 0);
    let src = Buffer::dram(&device, 2048, 2048).unwrap();
    src.write(&[1u8; 2048]).unwrap();
    let mut program = Program::new(&device).unwrap();
    program
        .add_circular_buffer(c, CbConfig::tiles(0, BF16, 2))
        .unwrap();
    let k = program
        .add_kernel(
            KernelSpec::new(
                "no_barrier_reader",
                NO_BARRIER_READER,
                KernelKind::riscv0(),
                c,
            )
            .compile_args(src.accessor_args().unwrap()),
        )
        .unwrap();
    program
        .set_runtime_args(k, c, &[src.address_u32().unwrap()])
        .unwrap();
    dm_kernel(&mut program, "drain", DRAIN, false, c, &[]);
    let msg = run_err(&device, &program);
    assert_names(&msg, c, "brisc", "cb_push_back");
    assert!(
        msg.contains("noc_async_read") && msg.contains("barrier"),
        "the message should name the outstanding read and the missing barrier:\n{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// Deadlock: BRISC waits for a semaphore NCRISC sets only after a CB page BRISC would push.

const DEADLOCK_BRISC: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    volatile tt_l1_ptr uint32_t* sem =
        reinterpret_cast<volatile tt_l1_ptr uint32_t*>(get_semaphore(get_arg_val<uint32_t>(0)));
    noc_semaphore_wait(sem, 1);
    cb_reserve_back(0, 1);
    cb_push_back(0, 1);
}
"#;

const DEADLOCK_NCRISC: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    volatile tt_l1_ptr uint32_t* sem =
        reinterpret_cast<volatile tt_l1_ptr uint32_t*>(get_semaphore(get_arg_val<uint32_t>(0)));
    cb_wait_front(0, 1);
    cb_pop_front(0, 1);
    noc_semaphore_set(sem, 1);
}
"#;

#[test]
fn deadlock_names_every_blocked_call() {
    let device = sim(Arch::WormholeB0);
    let c = core(4, 2);
    let mut program = Program::new(&device).unwrap();
    program
        .add_circular_buffer(c, CbConfig::tiles(0, BF16, 1))
        .unwrap();
    let sem = program.add_semaphore(c, 0).unwrap();
    dm_kernel(
        &mut program,
        "waits_for_sem",
        DEADLOCK_BRISC,
        true,
        c,
        &[sem.id()],
    );
    dm_kernel(
        &mut program,
        "waits_for_cb",
        DEADLOCK_NCRISC,
        false,
        c,
        &[sem.id()],
    );
    let err = device.run(&program).unwrap_err();
    assert!(
        matches!(err, RunError::Deadlock { .. }),
        "expected a deadlock: {err}"
    );
    let msg = err.to_string();
    eprintln!("{msg}");
    let lines: Vec<&str> = msg.lines().collect();
    let brisc = lines
        .iter()
        .find(|l| l.contains("waits_for_sem"))
        .unwrap_or_else(|| panic!("BRISC's kernel is not listed:\n{msg}"));
    assert_names(brisc, c, "brisc", "noc_semaphore_wait");
    let ncrisc = lines
        .iter()
        .find(|l| l.contains("waits_for_cb"))
        .unwrap_or_else(|| panic!("NCRISC's kernel is not listed:\n{msg}"));
    assert_names(ncrisc, c, "ncrisc", "cb_wait_front");
}

// ---------------------------------------------------------------------------------------------
// Runtime-arg index out of range: two args set, the kernel reads index 5.

const ARG_OUT_OF_RANGE: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    const uint32_t a = get_arg_val<uint32_t>(0);
    const uint32_t b = get_arg_val<uint32_t>(5);
    if (a == b) {
        cb_reserve_back(0, 1);
    }
}
"#;

#[test]
fn runtime_arg_index_out_of_range() {
    let device = sim(Arch::WormholeB0);
    let c = core(6, 5);
    let mut program = Program::new(&device).unwrap();
    program
        .add_circular_buffer(c, CbConfig::tiles(0, BF16, 1))
        .unwrap();
    dm_kernel(
        &mut program,
        "arg_reader",
        ARG_OUT_OF_RANGE,
        false,
        c,
        &[1, 2],
    );
    let msg = run_err(&device, &program);
    assert_names(&msg, c, "ncrisc", "get_arg_val");
    assert!(
        msg.contains("out of range") && msg.contains("arg_reader"),
        "the message should say the index is out of range and name the kernel:\n{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// L1 overflow is a host-side allocation error: it must say how much L1 is free.

#[test]
fn l1_overflow_says_how_much_is_free() {
    let device = sim(Arch::WormholeB0);
    let info = device.info().clone();
    let user = info.l1_user_bytes();
    let cores = device.grid().num_cores() as u64;
    let page = 2048u32;

    // A buffer that cannot fit even in empty L1: rejected before the provider.
    let too_big = (user / u64::from(page) + 1) * u64::from(page) * cores;
    let err = Buffer::l1(&device, too_big, page).unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, BufferError::TooLargeForL1 { .. }), "{err:?}");
    assert!(
        msg.contains(&user.to_string()),
        "the message should give the {user} bytes of L1 a core has:\n{msg}"
    );

    // Fill most of L1 on every core, then ask for more than what is left: the provider's
    // out-of-memory message says how much is free.
    let pages_per_core = user / u64::from(page) - 4;
    let big = Buffer::l1(&device, pages_per_core * cores * u64::from(page), page).unwrap();
    let err = Buffer::l1(&device, 8 * cores * u64::from(page), page).unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, BufferError::OutOfMemory { .. }), "{err:?}");
    assert!(
        msg.contains("free") || msg.contains("available"),
        "the message should say how much L1 is free:\n{msg}"
    );
    let free = user - pages_per_core * u64::from(page);
    assert!(
        msg.contains(&free.to_string())
            || msg.contains(&format!("{free:#x}"))
            || msg.contains(&format!("{} KiB", free / 1024)),
        "the message should give the {free} free bytes:\n{msg}"
    );

    // A circular buffer that no longer fits next to the big buffer: the provider places CBs
    // when the program runs, and says how much room the CBs have.
    let mut program = Program::new(&device).unwrap();
    program
        .add_circular_buffer(core(0, 0), CbConfig::tiles(0, BF16, 8))
        .unwrap();
    let err = device.run(&program).unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, RunError::OutOfMemory { .. }), "{err:?}");
    assert!(
        msg.contains(&format!("{free} bytes")) && msg.contains("(0, 0)"),
        "the CB error should name the core and the {free} bytes the CBs may use:\n{msg}"
    );
    drop(big);
}
