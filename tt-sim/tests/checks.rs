//! Watcher-grade checks: each wrong kernel fails loudly, naming core, RISC, kernel and call.

mod common;
use common::*;
use tt_sim::*;

fn prelude(body: &str) -> String {
    format!("#include \"api/dataflow/dataflow_api.h\"\nvoid kernel_main() {{\n{body}\n}}\n")
}

/// One data movement kernel on BRISC of core (1,1) with CB 0 (`cb_pages` pages of 2048 B).
fn run_one(body: &str, rt_args: &[u32], cb_pages: u32) -> SimResult<()> {
    let mut dev = SimDevice::open(SimArch::WormholeB0)?;
    let mut p = SimProgram::new(&dev);
    let g = range(1, 1, 1, 1);
    p.add_circular_buffer(&dev, &[g], &cb(0, cb_pages, 2048, BF16))?;
    let k = p.add_kernel(&dm(
        "bad_kernel",
        &prelude(body),
        Risc::Brisc,
        vec![g],
        vec![],
    ))?;
    p.set_runtime_args(k, core(1, 1), rt_args)?;
    dev.run(&mut p).map(|_| ())
}

fn expect_fault(r: SimResult<()>, needles: &[&str]) {
    let e = r.expect_err("the kernel must fail");
    let msg = e.to_string();
    assert!(
        matches!(e, SimError::KernelFault(_)),
        "expected a kernel fault, got {e:?}"
    );
    assert!(
        msg.contains("core (1,1) BRISC kernel 'bad_kernel'"),
        "{msg}"
    );
    for n in needles {
        assert!(msg.contains(n), "missing {n:?} in: {msg}");
    }
}

#[test]
fn deadlock_names_every_blocked_call() {
    let mut dev = SimDevice::open(SimArch::WormholeB0).unwrap();
    let mut p = SimProgram::new(&dev);
    let g = range(2, 3, 2, 3);
    p.add_circular_buffer(&dev, &[g], &cb(0, 2, 2048, BF16))
        .unwrap();
    p.add_circular_buffer(&dev, &[g], &cb(1, 2, 2048, BF16))
        .unwrap();
    // Both wait for a page the other would push only afterwards.
    let a = prelude("cb_wait_front(1, 1); cb_reserve_back(0, 1); cb_push_back(0, 1);");
    let b = prelude("cb_reserve_back(0, 2); cb_reserve_back(0, 3);");
    p.add_kernel(&dm("consumer", &a, Risc::Ncrisc, vec![g], vec![]))
        .unwrap();
    let r = p.add_kernel(&dm("reader", &b, Risc::Brisc, vec![g], vec![]));
    // cb_reserve_back(0, 3) can never fit a 2-page CB: that is reported as a fault, not a hang.
    r.unwrap();
    let e = dev.run(&mut p).unwrap_err();
    assert!(e.to_string().contains("can never fit"), "{e}");

    let mut p = SimProgram::new(&dev);
    p.add_circular_buffer(&dev, &[g], &cb(0, 2, 2048, BF16))
        .unwrap();
    p.add_circular_buffer(&dev, &[g], &cb(1, 2, 2048, BF16))
        .unwrap();
    let b = prelude("cb_reserve_back(0, 2); cb_push_back(0, 2); cb_reserve_back(0, 1);");
    p.add_kernel(&dm("consumer", &a, Risc::Ncrisc, vec![g], vec![]))
        .unwrap();
    p.add_kernel(&dm("reader", &b, Risc::Brisc, vec![g], vec![]))
        .unwrap();
    let e = dev.run(&mut p).unwrap_err();
    assert!(matches!(e, SimError::Deadlock(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("core (2,3) BRISC kernel 'reader' blocked in cb_reserve_back(cb=0, 1 pages)"),
        "{msg}"
    );
    assert!(msg.contains("0 free of 2"), "{msg}");
    assert!(
        msg.contains("core (2,3) NCRISC kernel 'consumer' blocked in cb_wait_front(cb=1, 1 pages)"),
        "{msg}"
    );
}

#[test]
fn missing_read_barrier_before_push_is_reported() {
    let body = "uint64_t src = get_noc_addr(my_x[0], my_y[0], get_write_ptr(0) + 2048);
        cb_reserve_back(0, 1);
        noc_async_read(src, get_write_ptr(0), 2048);
        cb_push_back(0, 1);";
    expect_fault(
        run_one(body, &[], 4),
        &["cb_push_back", "noc_async_read_barrier", "line"],
    );
}

#[test]
fn kernel_exit_with_outstanding_writes_is_reported() {
    let body = "uint64_t dst = get_noc_addr(my_x[0], my_y[0], get_write_ptr(0) + 2048);
        noc_async_write(get_write_ptr(0), dst, 64);";
    expect_fault(
        run_one(body, &[], 2),
        &["kernel exit", "outstanding", "noc_async_write"],
    );
}

#[test]
fn noc_address_out_of_range() {
    let body = "noc_async_read(get_noc_addr(my_x[0], my_y[0], 0x200000), get_write_ptr(0), 64); noc_async_read_barrier();";
    expect_fault(run_one(body, &[], 2), &["noc_async_read", "out of range"]);
}

#[test]
fn zero_length_transfer() {
    let body =
        "noc_async_read(get_noc_addr(my_x[0], my_y[0], get_write_ptr(0)), get_write_ptr(0), 0);";
    expect_fault(run_one(body, &[], 2), &["zero-length"]);
}

#[test]
fn invalid_noc_coordinates() {
    let body = "noc_async_read(get_noc_addr(0, 0, 0x20000), get_write_ptr(0), 64);";
    expect_fault(
        run_one(body, &[], 2),
        &["neither a worker core nor a DRAM bank"],
    );
}

#[test]
fn unaligned_transfer() {
    let body = "noc_async_read(get_noc_addr(my_x[0], my_y[0], get_write_ptr(0) + 1024), get_write_ptr(0) + 4, 64);";
    expect_fault(run_one(body, &[], 2), &["unaligned"]);
}

#[test]
fn multicast_corner_on_a_non_worker() {
    // NoC x = 5 is a DRAM column on Wormhole: a rectangle may span it, but not end on it.
    let body = "uint64_t m = get_noc_multicast_addr(4, 1, 5, 1, get_write_ptr(0));
        noc_async_write_multicast(get_write_ptr(0), m, 64, 1); noc_async_write_barrier();";
    expect_fault(run_one(body, &[], 2), &["end corner", "not a worker"]);
}

#[test]
fn multicast_num_dests_counts_workers_only() {
    // (4,1)..(6,1) spans the DRAM column x = 5: 2 workers, so num_dests = 3 is wrong.
    let body = "uint64_t m = get_noc_multicast_addr(4, 1, 6, 1, get_write_ptr(0));
        noc_async_write_multicast(get_write_ptr(0), m, 64, 3); noc_async_write_barrier();";
    expect_fault(
        run_one(body, &[], 2),
        &["num_dests is 3", "2 destination worker cores"],
    );
}

#[test]
fn multicast_inverted_rectangle() {
    let body = "uint64_t m = get_noc_multicast_addr(4, 1, 3, 1, get_write_ptr(0));
        noc_async_write_multicast(get_write_ptr(0), m, 64, 2); noc_async_write_barrier();";
    expect_fault(run_one(body, &[], 2), &["inverted"]);
}

#[test]
fn multicast_num_dests_mismatch() {
    // (1,1)..(4,1) holds 4 workers; the sender (NoC (2,2)) is outside, so num_dests must be 4.
    let body = "uint64_t m = get_noc_multicast_addr(1, 1, 4, 1, get_write_ptr(0));
        noc_async_write_multicast(get_write_ptr(0), m, 64, 3); noc_async_write_barrier();";
    expect_fault(
        run_one(body, &[], 2),
        &["num_dests is 3", "4 destination worker cores"],
    );
}

#[test]
fn write_into_firmware_region() {
    let body = "noc_async_write(get_write_ptr(0), get_noc_addr(my_x[0], my_y[0], 0x11000), 64); noc_async_write_barrier();";
    expect_fault(run_one(body, &[], 2), &["firmware-reserved"]);
}

#[test]
fn cb_push_straddling_the_ring_end() {
    // A 3-page ring filled in chunks of 2: the second chunk would cover pages 2 and 3.
    let body = "cb_reserve_back(0, 2); cb_push_back(0, 2); cb_wait_front(0, 2); cb_pop_front(0, 2);
        cb_reserve_back(0, 2); cb_push_back(0, 2);";
    expect_fault(run_one(body, &[], 3), &["cb_push_back", "straddle"]);
}

#[test]
fn cb_push_exceeding_reserve() {
    let body = "cb_reserve_back(0, 1); cb_push_back(0, 2);";
    expect_fault(run_one(body, &[], 4), &["only 1 were reserved"]);
}

#[test]
fn runtime_arg_index_out_of_range() {
    let body = "uint32_t v = get_arg_val<uint32_t>(2); (void)v;";
    expect_fault(
        run_one(body, &[7, 8], 2),
        &["get_arg_val", "out of range", "line 3"],
    );
}

#[test]
fn unconfigured_cb_and_semaphore() {
    expect_fault(
        run_one("cb_reserve_back(5, 1);", &[], 2),
        &["CB 5 is not configured"],
    );
    expect_fault(
        run_one("uint32_t s = get_semaphore(0); (void)s;", &[], 2),
        &["semaphore 0 was not created"],
    );
}

#[test]
fn l1_overflow_says_how_much_is_free() {
    let mut dev = SimDevice::open(SimArch::WormholeB0).unwrap();
    let mut p = SimProgram::new(&dev);
    let e = p
        .add_circular_buffer(&dev, &[range(0, 0, 0, 0)], &cb(0, 1000, 2048, BF16))
        .unwrap_err();
    assert!(matches!(e, SimError::OutOfMemory(_)), "{e:?}");
    // CBs that fit alone but collide with an L1 buffer are refused at run time.
    let info = dev.info();
    let big = (info.l1_size - info.l1_unreserved_base) / 2048 / 2 * 2048;
    let b = dev
        .create_buffer(&BufferConfig {
            size: big as u64 * 64,
            page_size: big,
            buffer_type: BufferType::L1,
            layout: BufferLayout::Interleaved,
            shard: None,
        })
        .unwrap();
    let mut p = SimProgram::new(&dev);
    let g = range(0, 0, 0, 0);
    p.add_circular_buffer(&dev, &[g], &cb(0, big / 2048 + 8, 2048, BF16))
        .unwrap();
    p.add_kernel(&dm("k", &prelude(""), Risc::Brisc, vec![g], vec![]))
        .unwrap();
    let e = dev.run(&mut p).unwrap_err();
    assert!(
        matches!(e, SimError::OutOfMemory(_)) && e.to_string().contains("bytes too many"),
        "{e}"
    );
    dev.destroy_buffer(b).unwrap();
    dev.run(&mut p).unwrap();
}

#[test]
fn dest_index_beyond_capacity() {
    let mut dev = SimDevice::open(SimArch::WormholeB0).unwrap();
    let src = "#include \"api/compute/tile_move_copy.h\"
void kernel_main() {
    cb_reserve_back(0, 1); cb_push_back(0, 1);
    cb_wait_front(0, 1);
    tile_regs_acquire();
    copy_tile(0, 0, DST_INDEX);
    tile_regs_commit(); tile_regs_wait(); tile_regs_release();
    cb_pop_front(0, 1);
}";
    for (fp32, idx, ok) in [
        (false, 7, true),
        (false, 8, false),
        (true, 3, true),
        (true, 4, false),
    ] {
        let mut p = SimProgram::new(&dev);
        let g = range(0, 0, 0, 0);
        p.add_circular_buffer(&dev, &[g], &cb(0, 2, 2048, BF16))
            .unwrap();
        p.add_kernel(&KernelConfig {
            name: "dest".into(),
            source: src.into(),
            kind: KernelKind::Compute(ComputeConfig {
                fp32_dest_acc_en: fp32,
                ..Default::default()
            }),
            cores: vec![g],
            compile_args: vec![],
            defines: vec![("DST_INDEX".into(), idx.to_string())],
        })
        .unwrap();
        let r = dev.run(&mut p);
        if ok {
            r.unwrap();
        } else {
            let msg = r.unwrap_err().to_string();
            let cap = if fp32 {
                "capacity of 4 tiles"
            } else {
                "capacity of 8 tiles"
            };
            assert!(
                msg.contains("TRISC (compute) kernel 'dest'")
                    && msg.contains("copy_tile")
                    && msg.contains(cap),
                "{msg}"
            );
        }
    }
}
