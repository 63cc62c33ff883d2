//! Semaphores + multicast (the weight-multicast handshake), per-core kernel globals, L1 sharding.

mod common;
use common::*;
use tt_sim::*;

const SENDER: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    const uint32_t src = get_arg_val<uint32_t>(0);
    const uint32_t x0 = get_arg_val<uint32_t>(1), y0 = get_arg_val<uint32_t>(2);
    const uint32_t x1 = get_arg_val<uint32_t>(3), y1 = get_arg_val<uint32_t>(4);
    const uint32_t num_dests = get_arg_val<uint32_t>(5);
    const uint32_t sender_sem = get_semaphore(get_compile_time_arg_val(0));
    const uint32_t flag_sem = get_semaphore(get_compile_time_arg_val(1));
    volatile tt_l1_ptr uint32_t* sender_ptr = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(sender_sem);
    volatile tt_l1_ptr uint32_t* flag_ptr = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(flag_sem);

    cb_reserve_back(0, 1);
    const uint32_t l1 = get_write_ptr(0);
    const InterleavedAddrGen<true> s = {.bank_base_address = src, .page_size = 2048};
    noc_async_read_page(0, s, l1);
    noc_async_read_barrier();
    noc_semaphore_wait(sender_ptr, num_dests);
    noc_semaphore_set(sender_ptr, 0);
    noc_async_write_multicast(l1, get_noc_multicast_addr(x0, y0, x1, y1, l1), 2048, num_dests);
    *flag_ptr = 1;
    noc_semaphore_set_multicast(flag_sem, get_noc_multicast_addr(x0, y0, x1, y1, flag_sem), num_dests);
    noc_async_write_barrier();
}
"#;

const RECEIVER: &str = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    const uint32_t sx = get_arg_val<uint32_t>(0), sy = get_arg_val<uint32_t>(1);
    volatile tt_l1_ptr uint32_t* flag = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(get_semaphore(get_compile_time_arg_val(1)));
    cb_reserve_back(0, 1);
    noc_semaphore_set(flag, 0);
    noc_semaphore_inc(get_noc_addr(sx, sy, get_semaphore(get_compile_time_arg_val(0))), 1);
    noc_semaphore_wait(flag, 1);
    cb_push_back(0, 1);
}
"#;

#[test]
fn multicast_with_semaphore_handshake() {
    multicast_handshake(3);
}

/// Receivers (1,0)..(5,0) are NoC x 2,3,4,6,7: one rectangle spans Wormhole's DRAM column (NoC x 5),
/// which the multicast skips, and num_dests counts the 5 workers only.
#[test]
fn multicast_rectangle_spanning_a_dram_column_reaches_only_workers() {
    multicast_handshake(5);
}

fn multicast_handshake(last: u32) {
    let mut dev = SimDevice::open(SimArch::WormholeB0).unwrap();
    let src = dram_buffer(&mut dev, 1, 2048);
    let dst = dram_buffer(&mut dev, last as u64, 2048);
    let data = random_bytes(2048, 21);
    dev.write_buffer(src, 0, &data).unwrap();
    let all = range(0, 0, last, 0);
    let recv = range(1, 0, last, 0);
    let mut p = SimProgram::new(&dev);
    p.add_circular_buffer(&dev, &[all], &cb(0, 1, 2048, BF16))
        .unwrap();
    let s_sem = p.add_semaphore(&[all], 0).unwrap();
    let f_sem = p.add_semaphore(&[all], 0).unwrap();
    let s = p
        .add_kernel(&dm(
            "sender",
            SENDER,
            Risc::Brisc,
            vec![range(0, 0, 0, 0)],
            vec![s_sem, f_sem],
        ))
        .unwrap();
    let r = p
        .add_kernel(&dm(
            "receiver",
            RECEIVER,
            Risc::Brisc,
            vec![recv],
            vec![s_sem, f_sem],
        ))
        .unwrap();
    let mut wargs = vec![0];
    wargs.extend(accessor_args(true, 2048));
    let w = p
        .add_kernel(&dm("writer", WRITER, Risc::Ncrisc, vec![recv], wargs))
        .unwrap();
    let n0 = dev.worker_core_from_logical(core(1, 0)).unwrap();
    let n1 = dev.worker_core_from_logical(core(last, 0)).unwrap();
    let sn = dev.worker_core_from_logical(core(0, 0)).unwrap();
    let sa = dev.buffer_address(src).unwrap() as u32;
    let da = dev.buffer_address(dst).unwrap() as u32;
    p.set_runtime_args(s, core(0, 0), &[sa, n0.x, n0.y, n1.x, n1.y, last])
        .unwrap();
    for x in 1..=last {
        p.set_runtime_args(r, core(x, 0), &[sn.x, sn.y]).unwrap();
        p.set_runtime_args(w, core(x, 0), &[da, 1, x - 1]).unwrap();
    }
    dev.run(&mut p).unwrap();
    let mut out = vec![0u8; last as usize * 2048];
    dev.read_buffer(dst, 0, &mut out).unwrap();
    for x in 0..last as usize {
        assert_eq!(&out[x * 2048..(x + 1) * 2048], &data[..], "receiver {x}");
    }
}

const GLOBALS: &str = r#"
#include "api/dataflow/dataflow_api.h"
static uint32_t counter = 5;
void kernel_main() {
    counter += 1 + get_absolute_logical_x();
    const uint32_t out = get_arg_val<uint32_t>(0);
    cb_reserve_back(0, 1);
    volatile tt_l1_ptr uint32_t* p = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(get_write_ptr(0));
    p[0] = counter;
    const InterleavedAddrGen<true> d = {.bank_base_address = out, .page_size = 32};
    noc_async_write(get_write_ptr(0), d.get_noc_addr(get_absolute_logical_x()), 32);
    noc_async_write_barrier();
}
"#;

#[test]
fn kernel_globals_are_per_core_and_start_fresh_every_run() {
    let mut dev = SimDevice::open(SimArch::WormholeB0).unwrap();
    let out = dram_buffer(&mut dev, 4, 32);
    let g = range(0, 0, 3, 0);
    let mut p = SimProgram::new(&dev);
    p.add_circular_buffer(&dev, &[g], &cb(0, 1, 2048, BF16))
        .unwrap();
    let k = p
        .add_kernel(&dm("globals", GLOBALS, Risc::Brisc, vec![g], vec![]))
        .unwrap();
    let oa = dev.buffer_address(out).unwrap() as u32;
    for x in 0..4 {
        p.set_runtime_args(k, core(x, 0), &[oa]).unwrap();
    }
    for _ in 0..2 {
        dev.run(&mut p).unwrap();
        let mut b = vec![0u8; 4 * 32];
        dev.read_buffer(out, 0, &mut b).unwrap();
        for x in 0..4u32 {
            let v = u32::from_le_bytes(b[x as usize * 32..x as usize * 32 + 4].try_into().unwrap());
            assert_eq!(v, 5 + 1 + x, "core ({x},0)");
        }
    }
}

#[test]
fn height_sharded_l1_buffer_round_trips_and_places_shards_per_core() {
    let mut dev = SimDevice::open(SimArch::Blackhole).unwrap();
    // 10 x 1 tiles, shards of 4 tile rows on 3 cores (the last shard is partial).
    let spec = ShardSpec {
        cores: tt_formats::CoreRangeSet::new(vec![range(0, 0, 2, 0)]).unwrap(),
        shard_shape: [128, 32],
        page_shape: [32, 32],
        tensor_shape_in_pages: [10, 1],
        orientation: ShardOrientation::RowMajor,
    };
    let b = dev
        .create_buffer(&BufferConfig {
            size: 10 * 2048,
            page_size: 2048,
            buffer_type: BufferType::L1,
            layout: BufferLayout::HeightSharded,
            shard: Some(spec),
        })
        .unwrap();
    let data = random_bytes(10 * 2048, 5);
    dev.write_buffer(b, 0, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    dev.read_buffer(b, 0, &mut back).unwrap();
    assert_eq!(back, data);
    // A kernel on core (1,0) copies its first local shard page (tensor page 4) to DRAM.
    let out = dram_buffer(&mut dev, 1, 2048);
    let body = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    const uint32_t shard = get_arg_val<uint32_t>(0), out = get_arg_val<uint32_t>(1);
    const InterleavedAddrGen<true> d = {.bank_base_address = out, .page_size = 2048};
    noc_async_write(shard, d.get_noc_addr(0), 2048);
    noc_async_write_barrier();
}"#;
    let mut p = SimProgram::new(&dev);
    let k = p
        .add_kernel(&dm(
            "shard_reader",
            body,
            Risc::Brisc,
            vec![range(1, 0, 1, 0)],
            vec![],
        ))
        .unwrap();
    let sa = dev.buffer_address(b).unwrap() as u32;
    let oa = dev.buffer_address(out).unwrap() as u32;
    p.set_runtime_args(k, core(1, 0), &[sa, oa]).unwrap();
    dev.run(&mut p).unwrap();
    let mut o = vec![0u8; 2048];
    dev.read_buffer(out, 0, &mut o).unwrap();
    assert_eq!(&o[..], &data[4 * 2048..5 * 2048]);
}

#[test]
fn reading_l1_before_the_read_barrier_sees_stale_data() {
    let mut dev = SimDevice::open(SimArch::WormholeB0).unwrap();
    let src = dram_buffer(&mut dev, 1, 2048);
    let out = dram_buffer(&mut dev, 1, 32);
    let mut data = random_bytes(2048, 77);
    data[..4].copy_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
    dev.write_buffer(src, 0, &data).unwrap();
    let body = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    const uint32_t src = get_arg_val<uint32_t>(0), out = get_arg_val<uint32_t>(1);
    volatile tt_l1_ptr uint32_t* p = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(get_write_ptr(0));
    volatile tt_l1_ptr uint32_t* r = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(get_write_ptr(0) + 2048);
    p[0] = 7;
    const InterleavedAddrGen<true> s = {.bank_base_address = src, .page_size = 2048};
    noc_async_read_page(0, s, get_write_ptr(0));
    r[0] = p[0];  // no barrier yet: the read has not landed
    noc_async_read_barrier();
    r[1] = p[0];
    const InterleavedAddrGen<true> d = {.bank_base_address = out, .page_size = 32};
    noc_async_write(get_write_ptr(0) + 2048, d.get_noc_addr(0), 32);
    noc_async_write_barrier();
}"#;
    let g = range(0, 0, 0, 0);
    let mut p = SimProgram::new(&dev);
    p.add_circular_buffer(&dev, &[g], &cb(0, 2, 2048, BF16))
        .unwrap();
    let k = p
        .add_kernel(&dm("stale", body, Risc::Brisc, vec![g], vec![]))
        .unwrap();
    let (sa, oa) = (
        dev.buffer_address(src).unwrap() as u32,
        dev.buffer_address(out).unwrap() as u32,
    );
    p.set_runtime_args(k, core(0, 0), &[sa, oa]).unwrap();
    dev.run(&mut p).unwrap();
    let mut o = vec![0u8; 32];
    dev.read_buffer(out, 0, &mut o).unwrap();
    assert_eq!(
        u32::from_le_bytes(o[0..4].try_into().unwrap()),
        7,
        "before the barrier"
    );
    assert_eq!(
        u32::from_le_bytes(o[4..8].try_into().unwrap()),
        0xDEAD_BEEF,
        "after the barrier"
    );
}

#[test]
fn stateful_noc_reads_and_writes() {
    let mut dev = SimDevice::open(SimArch::WormholeB0).unwrap();
    let out = dram_buffer(&mut dev, 1, 64);
    let body = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    const uint32_t out = get_arg_val<uint32_t>(0);
    const uint32_t a = get_write_ptr(0), b = a + 2048;
    volatile tt_l1_ptr uint32_t* pa = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(a);
    for (uint32_t i = 0; i < 16; i++) pa[i] = 1000 + i;
    noc_async_read_one_packet_set_state(get_noc_addr(my_x[0], my_y[0], 0), 64);
    noc_async_read_one_packet_with_state(a, b);
    noc_async_read_barrier();
    const InterleavedAddrGen<true> d = {.bank_base_address = out, .page_size = 64};
    noc_async_write_one_packet_set_state(d.get_noc_addr(0), 64);
    noc_async_write_one_packet_with_state(b, (uint32_t)d.get_noc_addr(0));
    noc_async_write_barrier();
}"#;
    let g = range(6, 6, 6, 6);
    let mut p = SimProgram::new(&dev);
    p.add_circular_buffer(&dev, &[g], &cb(0, 2, 2048, BF16))
        .unwrap();
    let k = p
        .add_kernel(&dm("stateful", body, Risc::Ncrisc, vec![g], vec![]))
        .unwrap();
    p.set_runtime_args(k, core(6, 6), &[dev.buffer_address(out).unwrap() as u32])
        .unwrap();
    dev.run(&mut p).unwrap();
    let mut o = vec![0u8; 64];
    dev.read_buffer(out, 0, &mut o).unwrap();
    for i in 0..16u32 {
        assert_eq!(
            u32::from_le_bytes(o[i as usize * 4..i as usize * 4 + 4].try_into().unwrap()),
            1000 + i
        );
    }
}

#[test]
fn polling_kernels_let_others_run_and_hang_is_a_deadlock() {
    let mut dev = SimDevice::open(SimArch::WormholeB0).unwrap();
    let g = range(0, 0, 0, 0);
    let poller = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    while (!cb_pages_available_at_front(0, 1)) {}
    cb_wait_front(0, 1);
    cb_pop_front(0, 1);
    volatile tt_l1_ptr uint32_t* s = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(get_semaphore(0));
    while (*s == 0) { invalidate_l1_cache(); }
}"#;
    let producer = r#"
#include "api/dataflow/dataflow_api.h"
void kernel_main() {
    cb_reserve_back(0, 1);
    cb_push_back(0, 1);
    if (get_arg_val<uint32_t>(0)) {
        noc_semaphore_inc(get_noc_addr(my_x[0], my_y[0], get_semaphore(0)), 1);
        noc_async_atomic_barrier();
    }
}"#;
    for release in [1u32, 0] {
        let mut p = SimProgram::new(&dev);
        p.add_circular_buffer(&dev, &[g], &cb(0, 1, 2048, BF16))
            .unwrap();
        p.add_semaphore(&[g], 0).unwrap();
        p.add_kernel(&dm("poller", poller, Risc::Brisc, vec![g], vec![]))
            .unwrap();
        let k = p
            .add_kernel(&dm("producer", producer, Risc::Ncrisc, vec![g], vec![]))
            .unwrap();
        p.set_runtime_args(k, core(0, 0), &[release]).unwrap();
        let r = dev.run(&mut p);
        if release == 1 {
            r.unwrap();
        } else {
            let e = r.unwrap_err();
            assert!(matches!(e, SimError::Deadlock(_)), "{e:?}");
            assert!(
                e.to_string()
                    .contains("BRISC kernel 'poller' spinning in invalidate_l1_cache"),
                "{e}"
            );
        }
    }
}

#[test]
fn dprint_runs_in_data_movement_and_compute_kernels() {
    let mut dev = SimDevice::open(SimArch::WormholeB0).unwrap();
    let g = range(0, 0, 0, 0);
    let mut p = SimProgram::new(&dev);
    let dmk = r#"
#include "api/dataflow/dataflow_api.h"
#include "api/debug/dprint.h"
void kernel_main() { DPRINT << "dm " << 42u << " " << HEX() << 255u << DEC() << " " << -3 << " " << BF16(0x3f80) << ENDL(); }"#;
    let ck = r#"
#include "api/compute/common.h"
#include "debug/dprint.h"
namespace NAMESPACE { void MAIN { DPRINT_MATH(DPRINT << "math " << 1.5f << ENDL()); } }"#;
    p.add_kernel(&dm("printer", dmk, Risc::Brisc, vec![g], vec![]))
        .unwrap();
    p.add_kernel(&KernelConfig {
        name: "cprinter".into(),
        source: ck.into(),
        kind: KernelKind::Compute(ComputeConfig::default()),
        cores: vec![g],
        compile_args: vec![],
        defines: vec![],
    })
    .unwrap();
    dev.run(&mut p).unwrap();
}
