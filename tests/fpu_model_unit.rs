//! Runs the unit tests of the independent FPU numerics model (`tests/support/fpu_model.rs`), the
//! reference the matmul acceptance tests compare the simulator against bit for bit.

#[path = "support/fpu_model.rs"]
mod fpu_model;

#[path = "support/common.rs"]
mod common;

/// The helpers the acceptance tests build on agree with the model's own tile layout.
#[test]
fn tile_helpers_use_the_model_layout() {
    let t = common::matrix(40, 70, {
        let mut rng = common::Rng::new(3);
        move || rng.nonzero(0.5, 2.0)
    });
    let tiles = common::tile_arrays(&t);
    assert_eq!(tiles.len(), 2 * 3);
    for (r, c) in [(0, 0), (17, 5), (33, 69), (39, 40), (31, 31)] {
        let tile = &tiles[(r / 32) * 3 + c / 32];
        assert_eq!(
            tile[fpu_model::tile_index(r % 32, c % 32)],
            t.get(r, c).unwrap()
        );
    }
    // Padding is zero.
    assert_eq!(tiles[5][fpu_model::tile_index(31, 31)], 0.0);
    assert_eq!(common::untile(&tiles, 3, 40, 70), t.data());
}

/// The packer rounding model: ties away from zero on the magnitude, denormals flush to +0.
#[test]
fn packer_bf16_model() {
    use common::pack_bf16_ties_away as p;
    assert_eq!(p(f32::from_bits(0x3F80_8000)).to_bits(), 0x3F81_0000); // tie, up
    assert_eq!(p(f32::from_bits(0xBF80_8000)).to_bits(), 0xBF81_0000); // tie, away from zero
    assert_eq!(p(f32::from_bits(0x3F81_8000)).to_bits(), 0x3F82_0000); // tie, odd -> away
    assert_eq!(p(f32::from_bits(0x3F80_7FFF)).to_bits(), 0x3F80_0000);
    assert_eq!(p(f32::from_bits(0x0000_1234)).to_bits(), 0);
    assert_eq!(p(f32::from_bits(0x8000_0000)).to_bits(), 0);
    assert_eq!(p(f32::from_bits(0x7F7F_FFFF)), f32::INFINITY);
}
