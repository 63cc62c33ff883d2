//! Host tile conversions: f32 -> tiles in each format -> f32, against error bounds derived from
//! each format's definition (not from the code under test). Shapes are deliberately not
//! multiples of 32; data is random with magnitudes spread over several octaves.

use tt_safe::tiles::{Tensor2d, from_tiles, tiled_size, to_tiles};
use tt_safe::{DataFormat, TileError};

/// Small deterministic generator (xorshift64*), so the test needs no extra crate.
struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1) times 2^k with k uniform in [-6, 6].
    fn value(&mut self) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        let k = (self.next_u64() % 13) as i32 - 6;
        (2.0 * u - 1.0) * 2f32.powi(k)
    }
}

fn random(rows: usize, cols: usize, seed: u64) -> Tensor2d {
    let mut rng = Rng(seed);
    Tensor2d::from_fn(rows, cols, |_, _| rng.value())
}

/// Exponent of the largest magnitude among the 16 values sharing a BFP exponent with (r, c):
/// one face row = the same matrix row and the same 16-column block.
fn group_exponent(t: &Tensor2d, r: usize, c: usize) -> i32 {
    let c0 = c / 16 * 16;
    let max = (c0..(c0 + 16).min(t.cols()))
        .map(|cc| t.get(r, cc).unwrap_or(0.0).abs())
        .fold(0.0f32, f32::max);
    if max == 0.0 {
        i32::MIN / 2
    } else {
        max.log2().floor() as i32
    }
}

const SHAPES: [(usize, usize); 4] = [(45, 77), (1, 1), (32, 32), (70, 33)];

#[test]
fn float32_is_exact() {
    for (i, &(r, c)) in SHAPES.iter().enumerate() {
        let t = random(r, c, 11 + i as u64);
        let bytes = t.to_tiles(DataFormat::Float32).unwrap();
        assert_eq!(bytes.len(), tiled_size(r, c, DataFormat::Float32));
        assert_eq!(
            Tensor2d::from_tiles(&bytes, r, c, DataFormat::Float32).unwrap(),
            t
        );
    }
}

#[test]
fn bf16_within_half_ulp() {
    // bf16 keeps 8 significant bits; round-to-nearest-even errs by at most half an ulp:
    // |x' - x| <= 2^-8 * |x| (relative, for normal numbers; our data has no denormals).
    for (i, &(r, c)) in SHAPES.iter().enumerate() {
        let t = random(r, c, 101 + i as u64);
        let back = Tensor2d::from_tiles(
            &t.to_tiles(DataFormat::Float16_b).unwrap(),
            r,
            c,
            DataFormat::Float16_b,
        )
        .unwrap();
        let mut max_rel = 0.0f64;
        for (a, b) in t.data().iter().zip(back.data()) {
            let err = (f64::from(*a) - f64::from(*b)).abs();
            assert!(err <= f64::from(a.abs()) * 2f64.powi(-8), "{a} -> {b}");
            if *a != 0.0 {
                max_rel = max_rel.max(err / f64::from(a.abs()));
            }
            // bf16 values have zero low 16 bits.
            assert_eq!(b.to_bits() & 0xFFFF, 0);
        }
        if r * c > 100 {
            assert!(
                max_rel > 2f64.powi(-12),
                "bf16 conversion lost nothing: is it really bf16?"
            );
        }
    }
}

/// BFP with `m` magnitude bits: values are `k / 2^(m-1) * 2^E` with the group's max exponent E,
/// so the step is `2^(E - (m - 1))`; truncating shift then rounding to nearest (with saturation of
/// the largest value at `(2^m - 1) / 2^(m-1) * 2^E`) errs by less than one step.
fn check_bfp(format: DataFormat, magnitude_bits: i32, seed: u64) {
    for (i, &(r, c)) in SHAPES.iter().enumerate() {
        let t = random(r, c, seed + i as u64);
        let bytes = to_tiles(t.data(), r, c, format).unwrap();
        assert_eq!(bytes.len(), tiled_size(r, c, format));
        let back = from_tiles(&bytes, r, c, format).unwrap();
        let mut saw_loss = false;
        for row in 0..r {
            for col in 0..c {
                let a = t.get(row, col).unwrap();
                let b = back[row * c + col];
                let step = 2f64.powi(group_exponent(&t, row, col) - (magnitude_bits - 1));
                let err = (f64::from(a) - f64::from(b)).abs();
                assert!(
                    err <= step,
                    "{format} ({row}, {col}): {a} -> {b}, step {step}"
                );
                // Decoded values lie on the group's grid.
                assert_eq!(
                    (f64::from(b) / step).fract(),
                    0.0,
                    "{b} not a multiple of {step}"
                );
                saw_loss |= err > 0.0;
            }
        }
        if r * c > 100 {
            assert!(saw_loss, "{format}: nothing was rounded on random data");
        }
    }
}

#[test]
fn bfp8_b_within_one_step_of_the_shared_exponent() {
    check_bfp(DataFormat::Bfp8_b, 7, 1001);
}

#[test]
fn bfp4_b_within_one_step_of_the_shared_exponent() {
    check_bfp(DataFormat::Bfp4_b, 3, 2001);
}

#[test]
fn bfp_exact_values_survive() {
    // A group whose values are small integers times a common power of two is exactly
    // representable in Bfp8_b (|k| <= 127 over 64 * 2^E) and must come back unchanged.
    let t = Tensor2d::from_fn(3, 40, |r, c| ((r * 40 + c) % 64) as f32 * 0.125 - 4.0);
    let back = Tensor2d::from_tiles(
        &t.to_tiles(DataFormat::Bfp8_b).unwrap(),
        3,
        40,
        DataFormat::Bfp8_b,
    )
    .unwrap();
    assert_eq!(back, t);
}

#[test]
fn unsupported_formats_and_bad_lengths_are_errors() {
    assert!(matches!(
        to_tiles(&[1.0; 4], 2, 2, DataFormat::UInt16),
        Err(TileError::UnsupportedFormat(_))
    ));
    let e = to_tiles(&[1.0; 3], 2, 2, DataFormat::Float32)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("2x2") && e.contains('4') && e.contains('3'),
        "{e}"
    );
    assert!(Tensor2d::new(2, 3, vec![0.0; 5]).is_err());
}
