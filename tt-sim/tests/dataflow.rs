//! Data movement end to end: unmodified TT-Metal reader/writer kernels copy DRAM -> L1 -> DRAM.

mod common;
use common::*;
use tt_sim::*;

#[test]
fn copy_one_core_wormhole() {
    let (input, out) = run_copy(SimArch::WormholeB0, 13, 2048, range(0, 0, 0, 0), 1).unwrap();
    assert_eq!(out, input);
}

#[test]
fn copy_many_cores_wormhole() {
    let (input, out) = run_copy(SimArch::WormholeB0, 37, 2048, range(1, 2, 4, 4), 2).unwrap();
    assert_eq!(out, input);
}

#[test]
fn copy_blackhole_bfp8_pages() {
    // 1088-byte pages (bfp8_b tiles) are a multiple of Blackhole's 64-byte DRAM alignment.
    let (input, out) = run_copy(SimArch::Blackhole, 21, 1088, range(0, 0, 10, 1), 3).unwrap();
    assert_eq!(out, input);
}

#[test]
fn copy_full_wormhole_grid() {
    let t = std::time::Instant::now();
    let (input, out) = run_copy(SimArch::WormholeB0, 640, 2048, range(0, 0, 7, 7), 4).unwrap();
    assert_eq!(out, input);
    eprintln!("full-grid copy of 640 tiles: {:?}", t.elapsed());
}
