//! Embedding gather and duration expansion on the simulator vs the f64 CPU references in
//! `tt_kernels::ops::embed`.
//!
//! Tolerances:
//! - Unscaled gather and duration expansion copy bf16 bit patterns: the device output must equal
//!   the (bf16-rounded) input exactly, so the tolerance is 0.
//! - Scaled gather: the SFPU computes x * s (x exact bf16, s = sqrt(C) as f32, relative error
//!   2^-24) in f32 and the result is rounded to the bf16 DEST and again when packed to bf16:
//!   at most two roundings of half a bf16 ulp each, i.e. |err| <= 2 * 2^-8 * |x s| (+2^-24
//!   relative for s), so we check |err| <= (2^-7 + 2^-23) * |ref|.

#[path = "support/common.rs"]
mod common;

use common::{Rng, from_tiles, matrix, sim, to_tiles};
use tt_kernels::ops::common::DeviceTensor;
use tt_kernels::ops::embed::{
    EmbedError, EmbedScale, embedding_gather, embedding_gather_with_stats, expand_durations,
    expand_durations_with_stats, expand_reference, gather_reference, index_buffer,
};
use tt_safe::{Arch, DataFormat, Device, Tensor2d};

fn upload(device: &Device, t: &Tensor2d) -> DeviceTensor {
    DeviceTensor::from_host(device, t.rows(), t.cols(), t.data(), DataFormat::Float16_b).unwrap()
}

/// Random bf16-exact matrix (never zero).
fn random_bf16(rows: usize, cols: usize, seed: u64) -> Tensor2d {
    let mut rng = Rng::new(seed);
    let t = matrix(rows, cols, || rng.octaves(-4, 3));
    from_tiles(
        &to_tiles(&t, DataFormat::Float16_b),
        rows,
        cols,
        DataFormat::Float16_b,
    )
}

fn download(m: &DeviceTensor) -> Vec<f32> {
    m.to_host().unwrap()
}

fn check_gather(arch: Arch, vocab: usize, channels: usize, n: usize, scale: EmbedScale, seed: u64) {
    let device = sim(arch);
    let table = random_bf16(vocab, channels, seed);
    let mut rng = Rng::new(seed ^ 0x55);
    let ids: Vec<u32> = (0..n)
        .map(|_| (rng.next_u64() % vocab as u64) as u32)
        .collect();
    let tm = upload(&device, &table);
    let ib = index_buffer(&device, &ids).unwrap();
    let (out, stats) = embedding_gather_with_stats(&device, &tm, &ib, n, scale).unwrap();
    assert_eq!((out.rows(), out.cols()), (n, channels));
    let got = download(&out);
    let s = match scale {
        EmbedScale::None => 1.0,
        EmbedScale::SqrtChannels => f64::from((channels as f64).sqrt() as f32),
        EmbedScale::Factor(f) => f64::from(f),
    };
    let want = gather_reference(table.data(), channels, &ids, s);
    let rel = if scale == EmbedScale::None {
        0.0
    } else {
        2f64.powi(-7) + 2f64.powi(-23)
    };
    let mut max_err = 0f64;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let err = (f64::from(*g) - w).abs();
        max_err = max_err.max(err);
        assert!(
            err <= rel * w.abs(),
            "{arch:?} gather {vocab}x{channels} n={n}: element ({}, {}) = {g}, want {w} (err {err:e})",
            i / channels,
            i % channels
        );
    }
    eprintln!(
        "gather {arch:?} V={vocab} C={channels} n={n} {scale:?}: max abs err {max_err:e}; {stats}"
    );
}

#[test]
fn gather_unaligned_exact() {
    check_gather(Arch::WormholeB0, 77, 70, 45, EmbedScale::None, 1);
}

#[test]
fn gather_aligned_scaled() {
    check_gather(Arch::WormholeB0, 64, 64, 96, EmbedScale::SqrtChannels, 2);
}

#[test]
fn gather_blackhole_unaligned_scaled() {
    // Blackhole's DRAM alignment is 64 B: every row run is fetched as an aligned 64 B chunk.
    check_gather(Arch::Blackhole, 50, 40, 70, EmbedScale::Factor(-0.75), 3);
}

#[test]
fn gather_piper_text_encoder_shape() {
    // Piper: ~130 phoneme ids, hidden 192, emb * sqrt(192), T = 300.
    check_gather(Arch::WormholeB0, 130, 192, 300, EmbedScale::SqrtChannels, 4);
}

#[test]
fn gather_piper_text_encoder_shape_blackhole() {
    // The same Piper shape on the p150 grid.
    check_gather(Arch::Blackhole, 130, 192, 300, EmbedScale::SqrtChannels, 4);
}

#[test]
fn gather_rejects_out_of_range_ids() {
    let device = sim(Arch::WormholeB0);
    let table = random_bf16(10, 33, 5);
    let tm = upload(&device, &table);
    let ib = index_buffer(&device, &[1, 2, 10, 3, 99]).unwrap();
    match embedding_gather(&device, &tm, &ib, 5, EmbedScale::None) {
        Err(EmbedError::IdOutOfRange { count, vocab }) => {
            assert_eq!((count, vocab), (2, 10));
        }
        other => panic!("expected IdOutOfRange, got {other:?}"),
    }
}

#[test]
fn gather_rejects_bfp8_table() {
    let device = sim(Arch::WormholeB0);
    let t = random_bf16(32, 32, 6);
    let tm = DeviceTensor::from_host(&device, 32, 32, t.data(), DataFormat::Bfp8_b).unwrap();
    let ib = index_buffer(&device, &[0]).unwrap();
    let err = embedding_gather(&device, &tm, &ib, 1, EmbedScale::None).unwrap_err();
    assert!(
        matches!(err, EmbedError::Format(DataFormat::Bfp8_b)),
        "{err}"
    );
    assert!(err.to_string().contains("Float16_b"), "{err}");
}

fn check_expand(arch: Arch, t: usize, channels: usize, max_dur: u64, slack: usize, seed: u64) {
    let device = sim(arch);
    let x = random_bf16(t, channels, seed);
    let mut rng = Rng::new(seed ^ 0xD0);
    let durations: Vec<u32> = (0..t)
        .map(|_| (rng.next_u64() % (max_dur + 1)) as u32)
        .collect();
    let total: usize = durations.iter().map(|&d| d as usize).sum();
    let capacity = total + slack;
    let xm = upload(&device, &x);
    let db = index_buffer(&device, &durations).unwrap();
    let (out, got_total, stats) =
        expand_durations_with_stats(&device, &xm, &db, t, capacity).unwrap();
    assert_eq!(got_total, total);
    let (want, want_total) = expand_reference(x.data(), channels, &durations, capacity);
    assert_eq!(want_total, total);
    let got = download(&out);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            f64::from(*g),
            *w,
            "{arch:?} expand T={t} C={channels}: element ({}, {})",
            i / channels,
            i % channels
        );
    }
    eprintln!("expand {arch:?} T={t} C={channels} total={total}: exact; {stats}");
}

#[test]
fn expand_unaligned_with_zero_durations() {
    check_expand(Arch::WormholeB0, 37, 50, 5, 7, 11);
}

#[test]
fn expand_aligned_blackhole() {
    check_expand(Arch::Blackhole, 64, 64, 3, 0, 12);
}

#[test]
fn expand_piper_shape() {
    // Piper: T = 300 phonemes, hidden 192, durations 0..=4 frames (about 600 frames).
    check_expand(Arch::WormholeB0, 300, 192, 4, 40, 13);
}

#[test]
fn expand_piper_shape_blackhole() {
    check_expand(Arch::Blackhole, 300, 192, 4, 40, 13);
}

#[test]
fn expand_reports_over_capacity() {
    let device = sim(Arch::WormholeB0);
    let x = random_bf16(5, 32, 14);
    let xm = upload(&device, &x);
    let db = index_buffer(&device, &[3, 4, 5, 6, 7]).unwrap();
    match expand_durations(&device, &xm, &db, 5, 20) {
        Err(EmbedError::OverCapacity { total, capacity }) => {
            assert_eq!((total, capacity), (25, 20));
        }
        other => panic!("expected OverCapacity, got {other:?}"),
    }
}
