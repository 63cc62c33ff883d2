//! Shared helpers of the root crate's integration tests: devices, deterministic random data,
//! tile bookkeeping, and assertions on fault messages. Included by each test file with
//! `#[path = "support/common.rs"] mod common;`.

#![allow(dead_code)]

use tt_safe::{Arch, Buffer, CoreCoord, DataFormat, Device, Tensor2d};

/// Elements in a 32x32 tile.
pub const TILE: usize = 32;

/// Opens the default device (`TT_DEVICE` / `TT_SIM_ARCH`, the simulator when unset).
pub fn default_device() -> Device {
    Device::open_default().unwrap_or_else(|e| panic!("cannot open a device: {e}"))
}

/// `data` `[rows, cols]` as the device stores it in `format` (a host round trip through tiles).
pub fn quantise(data: &[f32], rows: usize, cols: usize, format: DataFormat) -> Vec<f32> {
    let bytes = tt_safe::tiles::to_tiles(data, rows, cols, format).unwrap();
    tt_safe::tiles::from_tiles(&bytes, rows, cols, format).unwrap()
}

/// Opens the simulator of `arch` through tt-safe (the C ABI path).
pub fn sim(arch: Arch) -> Device {
    match Device::open_sim(arch) {
        Ok(d) => d,
        Err(e) => panic!("cannot open the simulator ({}): {e}", arch.name()),
    }
}

/// xorshift64* generator: deterministic test data without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Never zero: magnitude uniform in [lo, hi), random sign.
    pub fn nonzero(&mut self, lo: f64, hi: f64) -> f32 {
        let m = lo + (hi - lo) * self.unit();
        let s = if self.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
        (s * m) as f32
    }
    /// Never zero: magnitude uniform in [lo, hi), then the sign from a second draw
    /// (`unit() < 0.5` negative). A different stream from [`Rng::nonzero`].
    pub fn signed(&mut self, lo: f64, hi: f64) -> f32 {
        let m = lo + (hi - lo) * self.unit();
        (if self.unit() < 0.5 { -m } else { m }) as f32
    }
    /// `n` values of [`Rng::signed`].
    pub fn signed_vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n).map(|_| self.signed(lo, hi)).collect()
    }
    /// Never zero, spread over octaves: sign * (1 + u) * 2^e with e in [e_lo, e_hi].
    pub fn octaves(&mut self, e_lo: i32, e_hi: i32) -> f32 {
        let e = e_lo + (self.next_u64() % (e_hi - e_lo + 1) as u64) as i32;
        let s = if self.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
        (s * (1.0 + self.unit()) * 2f64.powi(e)) as f32
    }
}

/// A `rows` x `cols` matrix from `f`.
pub fn matrix(rows: usize, cols: usize, mut f: impl FnMut() -> f32) -> Tensor2d {
    Tensor2d::from_fn(rows, cols, |_, _| f())
}

/// Tiles (row tiles, column tiles) of a `rows` x `cols` matrix padded to whole tiles.
pub fn tiles_of(rows: usize, cols: usize) -> (usize, usize) {
    (rows.div_ceil(TILE), cols.div_ceil(TILE))
}

/// Tile pages of `t` in `format` (host rounding, zero padding).
pub fn to_tiles(t: &Tensor2d, format: DataFormat) -> Vec<u8> {
    t.to_tiles(format)
        .unwrap_or_else(|e| panic!("host tile conversion to {format:?} failed: {e}"))
}

/// Decodes tile pages back to the values they hold (exactly what the device unpacks for bf16 and
/// BFP formats), cropped to `rows` x `cols`.
pub fn from_tiles(bytes: &[u8], rows: usize, cols: usize, format: DataFormat) -> Tensor2d {
    Tensor2d::from_tiles(bytes, rows, cols, format)
        .unwrap_or_else(|e| panic!("decoding {format:?} tiles failed: {e}"))
}

/// The tiles of a padded matrix in tile order: `tiles[tr * tc + c]` is tile (tr, c), elements in
/// the device's face order (`fpu_model::tile_index`), padding zero.
pub fn tile_arrays(t: &Tensor2d) -> Vec<[f32; 1024]> {
    let (tr, tc) = tiles_of(t.rows(), t.cols());
    let mut out = vec![[0f32; 1024]; tr * tc];
    for r in 0..t.rows() {
        for c in 0..t.cols() {
            let tile = &mut out[(r / TILE) * tc + c / TILE];
            let (rr, cc) = (r % TILE, c % TILE);
            tile[((rr / 16) * 2 + cc / 16) * 256 + (rr % 16) * 16 + cc % 16] =
                t.get(r, c).unwrap_or_default();
        }
    }
    out
}

/// Row-major `rows` x `cols` values of a list of face-ordered tiles (`tc` tiles per tile row).
pub fn untile(tiles: &[[f32; 1024]], tc: usize, rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let (rr, cc) = (r % TILE, c % TILE);
            out[r * cols + c] = tiles[(r / TILE) * tc + c / TILE]
                [((rr / 16) * 2 + cc / 16) * 256 + (rr % 16) * 16 + cc % 16];
        }
    }
    out
}

/// The device packer's f32 -> bf16 conversion as documented (TENSTORRENT.md section 3): round
/// the magnitude to nearest with ties away from zero; denormal inputs and results flush to +0.
/// Independent of the simulator (a model of the rule, used to predict a packed DEST value).
pub fn pack_bf16_ties_away(x: f32) -> f32 {
    let bits = x.to_bits();
    if bits & 0x7F80_0000 == 0 {
        return 0.0;
    }
    let sign = bits & 0x8000_0000;
    let mag = ((bits & 0x7FFF_FFFF) + 0x8000) & 0x7FFF_0000;
    f32::from_bits(sign | mag)
}

/// One unit in the last place of bf16 at the magnitude of `x` (2^(floor(log2|x|) - 7)).
pub fn bf16_ulp(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    2f64.powi(x.abs().log2().floor() as i32 - 7)
}

/// Reads a buffer, panicking with context.
pub fn read(buffer: &Buffer) -> Vec<u8> {
    buffer
        .read()
        .unwrap_or_else(|e| panic!("reading {buffer:?} failed: {e}"))
}

/// Every way the simulator may spell a RISC in a message.
pub fn risc_names(risc: &str) -> &'static [&'static str] {
    match risc {
        "brisc" => &["BRISC", "RISCV_0", "riscv0"],
        "ncrisc" => &["NCRISC", "RISCV_1", "riscv1"],
        "trisc" => &["TRISC", "compute", "unpack", "math", "pack"],
        other => panic!("unknown RISC {other}"),
    }
}

/// Asserts that a fault message names the core (logical coordinates, `(x,y)` or `(x, y)`), the
/// RISC and the API call.
pub fn assert_names(message: &str, core: CoreCoord, risc: &str, call: &str) {
    let coords = [
        format!("({},{})", core.x, core.y),
        format!("({}, {})", core.x, core.y),
    ];
    assert!(
        coords.iter().any(|c| message.contains(c.as_str())),
        "the message does not name core {core}:\n{message}"
    );
    assert!(
        risc_names(risc).iter().any(|r| message.contains(r)),
        "the message does not name the RISC ({risc}):\n{message}"
    );
    assert!(
        message.contains(call),
        "the message does not name the call `{call}`:\n{message}"
    );
}
