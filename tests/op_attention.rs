//! Attention on the simulator vs the f64 reference.

#[path = "support/common.rs"]
mod common;

use common::{Rng, sim};
use tt_kernels::ops::attention::{AttentionKind, attention, reference};
use tt_kernels::ops::common::{DeviceTensor, Precision};
use tt_safe::{Arch, DataFormat};

#[test]
fn smoke() {
    let device = sim(Arch::WormholeB0);
    let (t, heads, d, w) = (45usize, 2usize, 64usize, 4usize);
    let c = heads * d;
    let mut rng = Rng::new(1);
    let mut v = |n: usize| {
        (0..n)
            .map(|_| common::pack_bf16_ties_away(rng.nonzero(0.05, 1.5)))
            .collect::<Vec<f32>>()
    };
    let (q, k, vv, rk, rv) = (
        v(t * c),
        v(t * c),
        v(t * c),
        v((2 * w + 1) * d),
        v((2 * w + 1) * d),
    );
    let bf = DataFormat::Float16_b;
    let up = |x: &[f32]| DeviceTensor::from_host(&device, t, c, x, bf).unwrap();
    let p = Precision::hifi();
    for kind in [
        AttentionKind::Plain { causal: false },
        AttentionKind::Plain { causal: true },
        AttentionKind::VitsRelative {
            rel_k: &rk,
            rel_v: &rv,
            window: w,
        },
    ] {
        for valid in [None, Some(37)] {
            let out =
                attention(&device, &up(&q), &up(&k), &up(&vv), heads, kind, valid, &p).unwrap();
            let got = out.to_host().unwrap();
            let want = reference(&q, &k, &vv, t, heads, kind, valid);
            let max = got
                .iter()
                .zip(&want)
                .map(|(g, w)| (f64::from(*g) - w).abs())
                .fold(0f64, f64::max);
            eprintln!("{kind:?} valid {valid:?}: max err {max:e}");
        }
    }
}
