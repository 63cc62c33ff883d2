//! The timing model end to end: estimates are bounded by the model's documented bandwidths and
//! FPU rates (derived here from the published constants, not read back from the simulator), and the
//! profile exports a well-formed Chrome/Perfetto trace.

mod common;
use common::*;
use tt_sim::*;

/// Reader/writer DRAM copy of `pages` pages over `grid`; returns the stats and the profile.
fn copy(arch: SimArch, pages: u64, page: u32, grid: CoreRange) -> (RunStats, Profile) {
    let mut dev = SimDevice::open(arch).unwrap();
    let src = dram_buffer(&mut dev, pages, page);
    let dst = dram_buffer(&mut dev, pages, page);
    let input = random_bytes((pages * page as u64) as usize, 7);
    dev.write_buffer(src, 0, &input).unwrap();
    let mut p = SimProgram::new(&dev);
    p.add_circular_buffer(&dev, &[grid], &cb(0, 2, page, BF16))
        .unwrap();
    let r = p
        .add_kernel(&dm(
            "reader",
            READER,
            Risc::Ncrisc,
            vec![grid],
            accessor_args(true, page),
        ))
        .unwrap();
    let mut wargs = vec![0];
    wargs.extend(accessor_args(true, page));
    let w = p
        .add_kernel(&dm("writer", WRITER, Risc::Brisc, vec![grid], wargs))
        .unwrap();
    let cores: Vec<CoreCoord> = grid.iter().collect();
    let n = cores.len() as u64;
    let sa = dev.buffer_address(src).unwrap() as u32;
    let da = dev.buffer_address(dst).unwrap() as u32;
    for (i, c) in cores.iter().enumerate() {
        let i = i as u64;
        let start = pages * i / n;
        let count = pages * (i + 1) / n - start;
        p.set_runtime_args(r, *c, &[sa, count as u32, start as u32])
            .unwrap();
        p.set_runtime_args(w, *c, &[da, count as u32, start as u32])
            .unwrap();
    }
    let stats = dev.run(&mut p).unwrap();
    let mut out = vec![0u8; input.len()];
    dev.read_buffer(dst, 0, &mut out).unwrap();
    assert_eq!(out, input);
    (stats, p.profile().expect("a profile after a run").clone())
}

#[test]
fn single_core_copy_is_latency_bound() {
    let (s, prof) = copy(SimArch::WormholeB0, 48, 2048, range(0, 0, 0, 0));
    // Each page: a DRAM read whose result is awaited (barrier) before the next one is issued, so at
    // least one DRAM access latency (published WH DRAM latency is several hundred ns; the model
    // uses >= 250 cycles) plus the 2 KiB at one bank's 24 B/cycle (288 GB/s / 12 banks at 1 GHz).
    let per_page_min = 250 + 2048 / 24;
    assert!(s.device_cycles >= 48 * per_page_min, "{s:?}");
    assert!(s.device_cycles <= 48 * 3 * per_page_min, "{s:?}");
    assert_eq!(s.device_ns, s.device_cycles, "Wormhole runs at 1 GHz");
    assert_eq!(prof.device_cycles, s.device_cycles);
    // Two threads (reader, writer); the writer mostly waits on the CB.
    assert_eq!(prof.threads.len(), 2);
    let w = prof.threads.iter().find(|t| t.kernel == "writer").unwrap();
    assert!(w.wait_cb_cycles > w.busy_cycles, "{w:?}");
    for t in &prof.threads {
        assert!(t.busy_cycles + t.wait_cb_cycles + t.wait_sync_cycles <= t.end_cycles);
    }
}

#[test]
fn full_grid_copy_is_dram_bandwidth_bound() {
    // 64 cores each keep one read and one write in flight: demand exceeds the DRAM bandwidth, so
    // the estimate approaches bytes moved (read + write) / 288 B/cycle (Wormhole: 288 GB/s at 1 GHz).
    let pages = 64 * 24;
    let (s, _) = copy(SimArch::WormholeB0, pages, 2048, range(0, 0, 7, 7));
    let bound = (2 * pages * 2048) as f64 / 288.0;
    let c = s.device_cycles as f64;
    assert!(c >= bound * 0.97, "{c} cycles < DRAM bound {bound}");
    assert!(c <= bound * 2.0, "{c} cycles vs DRAM bound {bound}");
    // Blackhole: 512 GB/s at 1.35 GHz = 379 B/cycle.
    let (b, _) = copy(SimArch::Blackhole, pages, 2048, range(0, 0, 7, 7));
    let bound = (2 * pages * 2048) as f64 / (512.0 / 1.35);
    let c = b.device_cycles as f64;
    assert!(c >= bound * 0.97, "{c} cycles < DRAM bound {bound}");
    assert!(c <= bound * 2.0, "{c} cycles vs DRAM bound {bound}");
    assert_eq!(b.device_ns, b.device_cycles * 1000 / 1350);
}

#[test]
fn chrome_trace_is_well_formed_json_with_a_track_per_thread() {
    let (_, prof) = copy(SimArch::WormholeB0, 12, 2048, range(0, 0, 1, 0));
    let j: serde_json::Value = serde_json::from_str(&prof.to_chrome_trace()).expect("valid JSON");
    let ev = j["traceEvents"].as_array().expect("traceEvents array");
    let names: Vec<&str> = ev
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .filter_map(|e| e["args"]["name"].as_str())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("NCRISC 'reader'")));
    let mut end = 0.0f64;
    for e in ev.iter().filter(|e| e["ph"] == "X") {
        let (ts, dur) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
        assert!(ts >= 0.0 && dur > 0.0, "{e}");
        end = end.max(ts + dur);
    }
    // The last span ends at the program time (us at 1 GHz), within the printed precision.
    assert!((end - prof.device_cycles as f64 / 1000.0).abs() < 1e-3);
    assert!(
        j["otherData"]["note"]
            .as_str()
            .unwrap()
            .contains("ESTIMATE")
    );
    let s = prof.summary();
    assert!(s.starts_with("ESTIMATED device time"), "{s}");
    assert!(s.contains("NCRISC"), "{s}");
}

#[path = "../benches/common/mcast_matmul.rs"]
mod mcast_matmul;

#[test]
fn multicast_matmul_estimate_is_bounded_by_the_fpu_rate() {
    use mcast_matmul::{Mm, run};
    // 8x8 Wormhole cores, each a 2x2-tile output block, K = 16 tiles in 4 blocks; LoFi BFP8.
    let mut c = Mm {
        arch: SimArch::WormholeB0,
        m: 512,
        k: 512,
        n: 512,
        format: tt_formats::DataFormat::Bfp8_b,
        fidelity: MathFidelity::LoFi,
        in0_block_w: 4,
        out_subblock_h: 2,
        out_subblock_w: 2,
        matmul_block: true,
    };
    let blocked = run(&c, 1).unwrap().remove(0);
    c.matmul_block = false;
    let tiles = run(&c, 1).unwrap().remove(0);
    // Same accumulation order per tile (K ascending within a block, spill between blocks).
    assert!(
        blocked.output == tiles.output,
        "matmul_block and matmul_tiles variants differ"
    );
    // Lower bound: 16 cycles per 32x32x32 tile matmul (LoFi), 16^3 tile matmuls over 64 cores.
    let ideal = 16u64 * 16 * 16 * 16 / 64;
    for r in [&blocked, &tiles] {
        assert!(
            r.stats.device_cycles > ideal,
            "{:?} vs ideal {ideal}",
            r.stats
        );
        // Math-thread busy time covers at least its share of the FPU work on every core.
        for t in r
            .profile
            .threads
            .iter()
            .filter(|t| t.thread == "TRISC1 (math)")
        {
            assert!(t.busy_cycles >= ideal, "{t:?}");
        }
    }
    // One LLK call per sub-block and K step is cheaper than one per tile.
    assert!(blocked.stats.device_cycles < tiles.stats.device_cycles);
}
