//! GRU on the simulator vs the f64 reference `tt_kernels::ops::gru::reference`.

#[path = "support/common.rs"]
mod common;

use common::{Rng, sim};
use tt_kernels::ops::common::{DeviceTensor, Precision};
use tt_kernels::ops::gru::{GruWeights, gru, reference};
use tt_safe::{Arch, DataFormat};

struct Case {
    x: Vec<f32>,
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    b_ih: Vec<f32>,
    b_hh: Vec<f32>,
    h0: Option<Vec<f32>>,
}

fn case(steps: usize, batch: usize, input: usize, hidden: usize, with_h0: bool, seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let s = 1.0 / (hidden as f64).sqrt();
    let mut v = |n: usize, a: f64| {
        (0..n)
            .map(|_| rng.nonzero(0.05 * a, a))
            .collect::<Vec<f32>>()
    };
    Case {
        x: v(steps * batch * input, 1.0),
        w_ih: v(3 * hidden * input, s),
        w_hh: v(3 * hidden * hidden, s),
        b_ih: v(3 * hidden, s),
        b_hh: v(3 * hidden, s),
        h0: if with_h0 {
            Some(v(batch * hidden, 0.9))
        } else {
            None
        },
    }
}

fn run(
    arch: Arch,
    steps: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    with_h0: bool,
    p: Precision,
    seed: u64,
) -> (f64, f64) {
    let device = sim(arch);
    let c = case(steps, batch, input, hidden, with_h0, seed);
    let w = GruWeights::from_pytorch(
        &device, input, hidden, &c.w_ih, &c.w_hh, &c.b_ih, &c.b_hh, p,
    )
    .unwrap();
    let x = DeviceTensor::from_host(&device, steps * batch, input, &c.x, DataFormat::Float16_b)
        .unwrap();
    let h0 = c.h0.as_ref().map(|h| {
        DeviceTensor::from_host(&device, batch, hidden, h, DataFormat::Float16_b).unwrap()
    });
    let out = gru(&device, &x, batch, &w, h0.as_ref()).unwrap();
    let got = out.to_host().unwrap();
    let want = reference(
        &c.x,
        batch,
        input,
        hidden,
        &c.w_ih,
        &c.w_hh,
        &c.b_ih,
        &c.b_hh,
        c.h0.as_deref(),
    );
    let mut max = 0f64;
    let mut sum = 0f64;
    for (g, w) in got.iter().zip(&want) {
        let e = (f64::from(*g) - w).abs();
        max = max.max(e);
        sum += e;
    }
    (max, sum / want.len() as f64)
}

#[test]
fn smoke() {
    let (max, mean) = run(Arch::WormholeB0, 10, 3, 20, 40, true, Precision::hifi(), 1);
    eprintln!("max {max:e} mean {mean:e}");
    assert!(max < 0.05);
}

#[test]
fn survey() {
    for (name, p) in Precision::presets() {
        let (max, mean) = run(Arch::WormholeB0, 50, 2, 24, 70, false, p, 2);
        eprintln!("{name}: max {max:e} mean {mean:e}");
    }
}
