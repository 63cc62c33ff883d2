//! Compute kernels: DEST and the operations of the compute API, done with [`crate::fpu`].
//!
//! The unpack, math and pack threads of a compute kernel run as one sequential thread (a valid
//! interleaving of the three). DEST holds `capacity` tiles per acquire: 8 (16-bit DEST, half sync),
//! 4 with `fp32_dest_acc_en`, 16 / 8 with `dst_full_sync_en`; an index beyond it is a kernel fault.
//! `tile_regs_acquire` (or `acquire_dst`) hands out a cleared DEST, as the packer's release leaves
//! it on hardware. Tiles are read from a CB at the RISC's read pointer plus the tile index, and only
//! within the pages the kernel waited for; packs go to the write pointer plus the output index,
//! only within the pages it reserved.

use tt_formats::DataFormat;

use crate::error::{SimError, SimResult};
use crate::fpu::{
    self, Bcast, CostOp, DestTile, EltOp, Fidelity, FpuConfig, ReduceDim, ReduceOp, SfpuOp, SrcTile,
};
use crate::program::{ComputeConfig, MathFidelity};
use crate::run::{RiscCtx, RunState};

const OP_ACQUIRE: u32 = 1;
const OP_COMMIT: u32 = 2;
const OP_WAIT: u32 = 3;
const OP_RELEASE: u32 = 4;
const OP_COPY: u32 = 10;
const OP_BINARY: u32 = 11;
const OP_MATMUL: u32 = 12;
const OP_REDUCE: u32 = 14;
const OP_TRANSPOSE: u32 = 15;
const OP_SFPU: u32 = 16;
const OP_PACK: u32 = 17;
const OP_TILIZE: u32 = 18;
const OP_PACK_UNTILIZE: u32 = 20;
const OP_PACK_UNTILIZE_DEST: u32 = 21;
const OP_BINARY_REUSE_DEST: u32 = 22;
const OP_UNARY_BCAST: u32 = 24;
const OP_SFPU_BINARY: u32 = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DestState {
    Idle,
    Acquired,
    Committed,
    Waited,
}

/// Per compute-RISC state.
#[derive(Debug)]
pub(crate) struct ComputeState {
    cfg: FpuConfig,
    capacity: usize,
    mode: &'static str,
    dest: Vec<DestTile>,
    state: DestState,
    unpack_to_dest: Vec<bool>,
}

impl ComputeState {
    pub(crate) fn new(cc: &ComputeConfig, cb_formats: &[DataFormat]) -> SimResult<Self> {
        let fidelity = match cc.math_fidelity {
            MathFidelity::LoFi => Fidelity::LoFi,
            MathFidelity::HiFi2 => Fidelity::HiFi2,
            MathFidelity::HiFi3 => Fidelity::HiFi3,
            MathFidelity::HiFi4 => Fidelity::HiFi4,
        };
        let cfg = FpuConfig::for_program(
            fidelity,
            cc.fp32_dest_acc_en,
            cc.math_approx_mode,
            cc.bfp8_pack_precise,
            cb_formats,
        );
        let (capacity, mode) = match (cc.dst_full_sync_en, cc.fp32_dest_acc_en) {
            (false, false) => (8, "16-bit DEST, half sync"),
            (false, true) => (4, "fp32 DEST (fp32_dest_acc_en), half sync"),
            (true, false) => (16, "16-bit DEST, full sync"),
            (true, true) => (8, "fp32 DEST (fp32_dest_acc_en), full sync"),
        };
        Ok(ComputeState {
            cfg,
            capacity,
            mode,
            dest: vec![DestTile::zero(); capacity],
            state: DestState::Idle,
            unpack_to_dest: cc.unpack_to_dest_fp32.clone(),
        })
    }

    pub(crate) fn exit_problem(&self) -> Option<String> {
        (self.state != DestState::Idle).then(|| {
            "the kernel returned holding DEST (missing tile_regs_release / release_dst)".to_string()
        })
    }
}

fn fmt_of(rc: &RiscCtx, raw: u32, call: &str, line: u32) -> SimResult<DataFormat> {
    DataFormat::from_raw(raw).map_err(|e| rc.fault(call, line, format!("CB data format: {e}")))
}

fn fpu_err(rc: &RiscCtx, call: &str, line: u32, e: fpu::FpuError) -> SimError {
    rc.fault(call, line, e.to_string())
}

struct Ctx<'a> {
    rc: &'a mut RiscCtx,
    st: &'a mut RunState,
    call: &'static str,
    line: u32,
}

impl Ctx<'_> {
    fn cs(&mut self) -> &mut ComputeState {
        // The scheduler only runs compute hooks on RISCs with compute state.
        self.rc
            .compute
            .as_mut()
            .expect("compute state exists for compute kernels")
    }

    fn fault(&self, msg: impl AsRef<str>) -> SimError {
        self.rc.fault(self.call, self.line, msg)
    }

    fn cb(&mut self, cb: u32) -> SimResult<(u32, u32, u32, DataFormat, u32)> {
        let c = self
            .st
            .cores
            .get(self.rc.core)
            .and_then(|c| c.as_ref())
            .and_then(|c| c.cbs.get(cb as usize))
            .and_then(|c| c.clone())
            .ok_or_else(|| self.fault(format!("CB {cb} is not configured on this core")))?;
        let f = fmt_of(self.rc, c.data_format, self.call, self.line)?;
        Ok((c.addr, c.size, c.page_size, f, c.num_pages))
    }

    fn dest_index(&mut self, d: u32, math: bool) -> SimResult<usize> {
        let (cap, mode, state) = {
            let cs = self.cs();
            (cs.capacity, cs.mode, cs.state)
        };
        if state == DestState::Idle {
            return Err(self.fault("uses DEST without tile_regs_acquire (or acquire_dst)"));
        }
        if math && state != DestState::Acquired {
            return Err(
                self.fault("math into DEST after tile_regs_commit; acquire DEST again first")
            );
        }
        if d as usize >= cap {
            return Err(self.fault(format!(
                "DEST index {d} is beyond the DEST capacity of {cap} tiles ({mode})"
            )));
        }
        Ok(d as usize)
    }

    /// Bytes of tile `idx` at the front of CB `cb` (must have been waited for).
    fn read_tile(&mut self, cb: u32, idx: u32) -> SimResult<(DataFormat, Vec<u8>)> {
        let (addr, size, page, fmt, _) = self.cb(cb)?;
        let l = self.rc.cb_local[cb as usize];
        if idx >= l.waited {
            return Err(self.fault(format!(
                "reads tile {idx} of CB {cb} but the kernel waited for only {} page(s) (cb_wait_front first)",
                l.waited
            )));
        }
        let a = l.rd_ptr as u64 + idx as u64 * page as u64;
        if a + page as u64 > addr as u64 + size as u64 {
            return Err(self.fault(format!(
                "tile {idx} of CB {cb} at {a:#x} runs past the end of the CB ({:#x}); tile indices do not wrap",
                addr + size
            )));
        }
        let tile = fmt.tile_size_bytes();
        if tile > page as usize {
            return Err(self.fault(format!(
                "CB {cb} page size {page} is smaller than one {} tile ({tile} bytes)",
                fmt.name()
            )));
        }
        let mut v = vec![0u8; tile];
        let core = self.rc.core;
        self.dev().l1[core].read(a as u32, &mut v);
        Ok((fmt, v))
    }

    fn dev(&mut self) -> &mut crate::device::DeviceState {
        // SAFETY: see RiscCtx::dev; the scheduler thread is the only user during a hook.
        unsafe { &mut *self.st.dev }
    }

    fn unpack(&mut self, cb: u32, idx: u32) -> SimResult<SrcTile> {
        let (fmt, bytes) = self.read_tile(cb, idx)?;
        let cfg = self.cs().cfg;
        fpu::unpack(fmt, &bytes, &cfg).map_err(|e| fpu_err(self.rc, self.call, self.line, e))
    }

    fn unpacks_to_dest(&mut self, cb: u32) -> SimResult<bool> {
        let (.., fmt, _) = self.cb(cb)?;
        let flag = self
            .cs()
            .unpack_to_dest
            .get(cb as usize)
            .copied()
            .unwrap_or(false);
        Ok(flag && fmt == DataFormat::Float32)
    }

    /// Where tile `idx` of the reserved back of CB `cb` goes.
    fn pack_addr(&mut self, cb: u32, idx: u32) -> SimResult<(u32, DataFormat, usize)> {
        let (addr, size, page, fmt, _) = self.cb(cb)?;
        let l = self.rc.cb_local[cb as usize];
        if idx >= l.reserved {
            return Err(self.fault(format!(
                "packs tile {idx} of CB {cb} but only {} page(s) are reserved (cb_reserve_back first)",
                l.reserved
            )));
        }
        let a = l.wr_ptr as u64 + idx as u64 * page as u64;
        if a + page as u64 > addr as u64 + size as u64 {
            return Err(self.fault(format!(
                "output tile {idx} of CB {cb} at {a:#x} runs past the end of the CB ({:#x})",
                addr + size
            )));
        }
        Ok((a as u32, fmt, page as usize))
    }

    fn pack_to(&mut self, tile: &DestTile, cb: u32, idx: u32) -> SimResult<()> {
        let (a, fmt, _) = self.pack_addr(cb, idx)?;
        let cfg = self.cs().cfg;
        let mut out = vec![0u8; fmt.tile_size_bytes()];
        fpu::pack(tile, fmt, &mut out, &cfg)
            .map_err(|e| fpu_err(self.rc, self.call, self.line, e))?;
        let core = self.rc.core;
        self.dev().l1[core].write(a, &out);
        Ok(())
    }
}

fn elt(op: u32) -> EltOp {
    match op {
        0 => EltOp::Add,
        1 => EltOp::Sub,
        _ => EltOp::Mul,
    }
}

fn bcast(b: u32) -> Bcast {
    match b {
        1 => Bcast::Rows,
        2 => Bcast::Cols,
        3 => Bcast::Scalar,
        _ => Bcast::None,
    }
}

fn elem_size(fmt: DataFormat) -> Option<usize> {
    match fmt {
        DataFormat::Float32 => Some(4),
        DataFormat::Float16_b => Some(2),
        _ => None,
    }
}

fn arg(a: &[u32], i: usize) -> u32 {
    a.get(i).copied().unwrap_or(0)
}

/// Executes one compute operation. Compute operations never block.
pub(crate) fn dispatch(
    rc: &mut RiscCtx,
    st: &mut RunState,
    op: u32,
    a: &[u32],
    line: u32,
) -> SimResult<Option<u32>> {
    let call: &'static str = match op {
        OP_ACQUIRE => "tile_regs_acquire",
        OP_COMMIT => "tile_regs_commit",
        OP_WAIT => "tile_regs_wait",
        OP_RELEASE => "tile_regs_release",
        OP_COPY => "copy_tile",
        OP_BINARY => "eltwise binary (add/sub/mul_tiles)",
        OP_MATMUL => "matmul_tiles/matmul_block",
        OP_REDUCE => "reduce_tile",
        OP_TRANSPOSE => "transpose_tile",
        OP_SFPU => "SFPU op",
        OP_PACK => "pack_tile",
        OP_TILIZE => "tilize_block",
        OP_PACK_UNTILIZE => "pack_untilize_block/untilize_block",
        OP_PACK_UNTILIZE_DEST => "pack_untilize_dest",
        OP_BINARY_REUSE_DEST => "binary_dest_reuse_tiles",
        OP_UNARY_BCAST => "unary_bcast",
        OP_SFPU_BINARY => "SFPU binary (add/sub/mul_binary_tile)",
        _ => "compute",
    };
    if rc.compute.is_none() {
        return Err(rc.fault(call, line, "compute API called from a data movement kernel"));
    }
    let mut c = Ctx { rc, st, call, line };
    let mut sfpu_cycles = 0u64;
    match op {
        OP_ACQUIRE => {
            let cs = c.cs();
            if cs.state != DestState::Idle {
                return Err(c.fault("DEST acquired again without tile_regs_release / release_dst"));
            }
            cs.state = DestState::Acquired;
            for t in cs.dest.iter_mut() {
                *t = DestTile::zero();
            }
        }
        OP_COMMIT => {
            if c.cs().state != DestState::Acquired {
                return Err(c.fault("tile_regs_commit without tile_regs_acquire"));
            }
            c.cs().state = DestState::Committed;
        }
        OP_WAIT => {
            if c.cs().state != DestState::Committed {
                return Err(c.fault("tile_regs_wait without tile_regs_commit"));
            }
            c.cs().state = DestState::Waited;
        }
        OP_RELEASE => {
            if c.cs().state == DestState::Idle {
                return Err(c.fault("DEST released without being acquired"));
            }
            c.cs().state = DestState::Idle;
        }
        OP_COPY => {
            let (cb, t, d) = (arg(a, 0), arg(a, 1), arg(a, 2));
            let d = c.dest_index(d, true)?;
            if c.unpacks_to_dest(cb)? {
                let (fmt, bytes) = c.read_tile(cb, t)?;
                let cfg = c.cs().cfg;
                let tile = fpu::unpack_to_dest(fmt, &bytes, &cfg)
                    .map_err(|e| fpu_err(c.rc, call, line, e))?;
                c.cs().dest[d] = tile;
            } else {
                let s = c.unpack(cb, t)?;
                let cs = c.cs();
                let cfg = cs.cfg;
                fpu::datacopy(&mut cs.dest[d], &s, &cfg);
            }
        }
        OP_BINARY => {
            let (op, cb0, cb1, t0, t1, d, bc, acc) = (
                arg(a, 0),
                arg(a, 1),
                arg(a, 2),
                arg(a, 3),
                arg(a, 4),
                arg(a, 5),
                arg(a, 6),
                arg(a, 7),
            );
            let d = c.dest_index(d, true)?;
            let sa = c.unpack(cb0, t0)?;
            let sb = c.unpack(cb1, t1)?;
            let cs = c.cs();
            let cfg = cs.cfg;
            fpu::eltwise(
                &mut cs.dest[d],
                elt(op),
                &sa,
                &sb,
                bcast(bc),
                acc != 0,
                &cfg,
            );
        }
        OP_BINARY_REUSE_DEST => {
            // DEST tile moves to SrcA (1) or SrcB (2); the CB tile takes the other operand.
            let (op, cb, t, d, reuse) = (arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4));
            let d = c.dest_index(d, true)?;
            let s = c.unpack(cb, t)?;
            let cs = c.cs();
            let cfg = cs.cfg;
            let bits: Vec<u32> = cs.dest[d]
                .bits()
                .iter()
                .map(|&x| (x >> 13) & 0x7FFFF)
                .collect();
            let mut raw = [0u32; fpu::TILE_DATUMS];
            raw.copy_from_slice(&bits);
            let from_dest = SrcTile::from_raw19(raw, cfg.fp32_dest_acc);
            cs.dest[d] = DestTile::zero();
            let (x, y) = if reuse == 1 {
                (&from_dest, &s)
            } else {
                (&s, &from_dest)
            };
            fpu::eltwise(&mut cs.dest[d], elt(op), x, y, Bcast::None, false, &cfg);
        }
        OP_UNARY_BCAST => {
            let (bc, cb, t, d) = (arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3));
            let d = c.dest_index(d, true)?;
            let s = c.unpack(cb, t)?;
            let v = s.raw19();
            let mut o = [0u32; fpu::TILE_DATUMS];
            for r in 0..32 {
                for col in 0..32 {
                    let src = match bcast(bc) {
                        Bcast::None => fpu::face_index(r, col),
                        Bcast::Rows => fpu::face_index(0, col),
                        Bcast::Cols => fpu::face_index(r, 0),
                        Bcast::Scalar => 0,
                    };
                    o[fpu::face_index(r, col)] = v[src];
                }
            }
            let cs = c.cs();
            let cfg = cs.cfg;
            let src = SrcTile::from_raw19(
                o,
                cfg.fp32_dest_acc && cfg.fp32_src == fpu::Fp32SrcFormat::Tf32,
            );
            fpu::datacopy(&mut cs.dest[d], &src, &cfg);
        }
        OP_MATMUL => {
            let (cb0, cb1, t0, t1, d0, tr) = (
                arg(a, 0),
                arg(a, 1),
                arg(a, 2),
                arg(a, 3),
                arg(a, 4),
                arg(a, 5),
            );
            let (ct, rt, kt) = (arg(a, 6).max(1), arg(a, 7).max(1), arg(a, 8).max(1));
            for r in 0..rt {
                for col in 0..ct {
                    let d = c.dest_index(d0 + r * ct + col, true)?;
                    let in0 = c.unpack(cb0, t0 + r * kt)?;
                    let in1 = c.unpack(cb1, t1 + col)?;
                    let cs = c.cs();
                    let cfg = cs.cfg;
                    fpu::matmul(&mut cs.dest[d], &in0, &in1, tr != 0, &cfg);
                }
            }
        }
        OP_REDUCE => {
            let (pool, dim, cb, cbs, t, ts, d) = (
                arg(a, 0),
                arg(a, 1),
                arg(a, 2),
                arg(a, 3),
                arg(a, 4),
                arg(a, 5),
                arg(a, 6),
            );
            let d = c.dest_index(d, true)?;
            let x = c.unpack(cb, t)?;
            let s = c.unpack(cbs, ts)?;
            let op = match pool {
                0 => ReduceOp::Sum,
                1 => ReduceOp::Avg,
                _ => ReduceOp::Max,
            };
            let dim = match dim {
                0 => ReduceDim::Row,
                1 => ReduceDim::Col,
                _ => ReduceDim::Scalar,
            };
            let cs = c.cs();
            let cfg = cs.cfg;
            fpu::reduce(&mut cs.dest[d], op, dim, &x, &s, &cfg);
        }
        OP_TRANSPOSE => {
            let (cb, t, d) = (arg(a, 0), arg(a, 1), arg(a, 2));
            let d = c.dest_index(d, true)?;
            if c.unpacks_to_dest(cb)? {
                let (fmt, bytes) = c.read_tile(cb, t)?;
                let cfg = c.cs().cfg;
                let mut tile = fpu::unpack_to_dest(fmt, &bytes, &cfg)
                    .map_err(|e| fpu_err(c.rc, call, line, e))?;
                fpu::transpose_dest(&mut tile);
                c.cs().dest[d] = tile;
            } else {
                let s = c.unpack(cb, t)?;
                let cs = c.cs();
                let cfg = cs.cfg;
                fpu::transpose(&mut cs.dest[d], &s, &cfg);
            }
        }
        OP_SFPU => {
            let (code, d, p0, p1) = (arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3));
            let d = c.dest_index(d, true)?;
            let f = f32::from_bits;
            let op = match code {
                1 => SfpuOp::Exp,
                2 => SfpuOp::Recip,
                3 => SfpuOp::Sqrt,
                4 => SfpuOp::Rsqrt,
                5 => SfpuOp::Gelu,
                6 => SfpuOp::Sigmoid,
                7 => SfpuOp::Tanh,
                8 => SfpuOp::Relu,
                9 => SfpuOp::LeakyRelu(f(p0)),
                10 => SfpuOp::Log,
                11 => SfpuOp::Abs,
                12 => SfpuOp::Neg,
                13 => SfpuOp::Square,
                14 => {
                    if f(p0) != 1.0 || f(p1) != 1.0 || f(arg(a, 4)) != 20.0 {
                        return Err(c.fault(format!(
                            "softplus_tile with beta {} threshold {} is not supported by the simulator \
                             (beta = 1, threshold = 20 only)",
                            f(p0),
                            f(arg(a, 4))
                        )));
                    }
                    SfpuOp::Softplus
                }
                15 => SfpuOp::Erf,
                16 => SfpuOp::Silu,
                17 => SfpuOp::Elu(f(p0)),
                18 => SfpuOp::MulScalar(f(p0)),
                19 => SfpuOp::AddScalar(f(p0)),
                20 => SfpuOp::AddScalar(-f(p0)),
                21 => {
                    let float = |v: u32| matches!(v, 0 | 5);
                    if float(p0) && float(p1) {
                        return Ok(Some(0));
                    }
                    return Err(c.fault(format!(
                        "typecast_tile<{p0}, {p1}> is not supported by the simulator (Float32 <-> Float16_b only; \
                         the packer does the format conversion)"
                    )));
                }
                _ => return Err(c.fault(format!("unknown SFPU operation code {code}"))),
            };
            let arch = c.dev().arch.arch;
            let cs = c.cs();
            let cfg = cs.cfg;
            // a[5]: the compute API's template flags (emu compute.h `tt_sim_sfpu_flags`).
            let r = fpu::sfpu_for_arch(&mut cs.dest[d], op, arg(a, 5), &cfg, arch);
            r.map_err(|e| c.fault(e.to_string()))?;
            sfpu_cycles = fpu::cost_cycles(CostOp::Sfpu(op), &cfg);
        }
        OP_SFPU_BINARY => {
            // TT-Metal `add/sub/mul_binary_tile(idst0, idst1, odst)` (eltwise_binary_sfpu.h): DEST
            // tiles combined on the SFPU in fp32 (denormal operands flushed), stored like every
            // SFPU result (fp32 DEST: denormals flushed; 16-bit DEST: rounded to bf16).
            let (op, d0, d1, dout) = (arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3));
            if op > 2 {
                return Err(c.fault(format!("unknown SFPU binary operation {op}")));
            }
            let (d0, d1, dout) = (
                c.dest_index(d0, true)?,
                c.dest_index(d1, true)?,
                c.dest_index(dout, true)?,
            );
            let cs = c.cs();
            let cfg = cs.cfg;
            let flush = |b: u32| {
                f32::from_bits(if b & 0x7F80_0000 == 0 {
                    b & 0x8000_0000
                } else {
                    b
                })
            };
            let mut bits = [0u32; fpu::TILE_DATUMS];
            for (i, o) in bits.iter_mut().enumerate() {
                let x = flush(cs.dest[d0].bits()[i]);
                let y = flush(cs.dest[d1].bits()[i]);
                let r = match op {
                    0 => x + y,
                    1 => x - y,
                    _ => x * y,
                };
                *o = r.to_bits();
            }
            cs.dest[dout] = DestTile::from_bits(&bits, &cfg);
            sfpu_cycles = fpu::cost_cycles(CostOp::Sfpu(SfpuOp::MulScalar(1.0)), &cfg);
        }
        OP_PACK => {
            let (d, cb, idx, ooo) = (arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3));
            let d = c.dest_index(d, false)?;
            let out_idx = if ooo != 0 {
                idx
            } else {
                c.rc.cb_local
                    .get(cb as usize)
                    .map(|l| l.pack_offset)
                    .unwrap_or(0)
            };
            let tile = c.cs().dest[d].clone();
            c.pack_to(&tile, cb, out_idx)?;
            if ooo == 0 {
                c.rc.cb_local[cb as usize].pack_offset += 1;
            }
        }
        OP_TILIZE => {
            let (icb, block, ocb, in_idx, out_idx) =
                (arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4));
            let (.., page, fmt, _) = c.cb(icb)?;
            let es = elem_size(fmt).ok_or_else(|| {
                c.fault(format!(
                    "tilize of {} data is not supported (Float32 / Float16_b)",
                    fmt.name()
                ))
            })?;
            // block tiles' worth of row-major rows: 32 rows of block*32 elements.
            let mut rows = Vec::with_capacity(block as usize * page as usize);
            for i in 0..block {
                let (_, b) = c.read_tile(icb, in_idx + i)?;
                rows.extend_from_slice(&b);
            }
            let width = block as usize * 32;
            let cfg = c.cs().cfg;
            let base = c.rc.cb_local[ocb as usize].pack_offset + out_idx;
            for t in 0..block as usize {
                let mut tb = vec![0u8; 1024 * es];
                for r in 0..32 {
                    for col in 0..32 {
                        let src = (r * width + t * 32 + col) * es;
                        let dst = fpu::face_index(r, col) * es;
                        tb[dst..dst + es].copy_from_slice(&rows[src..src + es]);
                    }
                }
                let s = fpu::unpack(fmt, &tb, &cfg).map_err(|e| fpu_err(c.rc, call, line, e))?;
                let mut dt = DestTile::zero();
                fpu::datacopy(&mut dt, &s, &cfg);
                c.pack_to(&dt, ocb, base + t as u32)?;
            }
            c.rc.cb_local[ocb as usize].pack_offset += block;
        }
        OP_PACK_UNTILIZE | OP_PACK_UNTILIZE_DEST => {
            let from_dest = op == OP_PACK_UNTILIZE_DEST;
            let (icb, block_rt, ocb, c_index, block_ct, full_ct) = if from_dest {
                (
                    0,
                    arg(a, 1).max(1),
                    arg(a, 0),
                    arg(a, 2),
                    arg(a, 3).max(1),
                    arg(a, 4).max(1),
                )
            } else {
                (
                    arg(a, 0),
                    arg(a, 1).max(1),
                    arg(a, 2),
                    arg(a, 3),
                    arg(a, 4).max(1),
                    arg(a, 5).max(1),
                )
            };
            let (oaddr, osize, opage, ofmt, _) = c.cb(ocb)?;
            let es = elem_size(ofmt).ok_or_else(|| {
                c.fault(format!(
                    "untilize to {} is not supported (Float32 / Float16_b)",
                    ofmt.name()
                ))
            })?;
            let cfg = c.cs().cfg;
            let l = c.rc.cb_local[ocb as usize];
            let row_bytes = full_ct as usize * 32 * es;
            let needed_pages = (block_rt as usize * 32 * row_bytes).div_ceil(opage as usize) as u32;
            if needed_pages > l.reserved.max(full_ct * block_rt) || l.reserved == 0 {
                return Err(c.fault(format!(
                    "untilize writes {needed_pages} page(s) of CB {ocb} but {} are reserved",
                    l.reserved
                )));
            }
            let base = l.wr_ptr as usize;
            for r in 0..block_rt {
                for col in 0..block_ct {
                    let tile = if from_dest {
                        let d = c.dest_index(r * block_ct + col, false)?;
                        c.cs().dest[d].clone()
                    } else {
                        let s = c.unpack(icb, col)?;
                        let mut dt = DestTile::zero();
                        fpu::datacopy(&mut dt, &s, &cfg);
                        dt
                    };
                    let mut tb = vec![0u8; ofmt.tile_size_bytes()];
                    fpu::pack(&tile, ofmt, &mut tb, &cfg)
                        .map_err(|e| fpu_err(c.rc, call, line, e))?;
                    for rr in 0..32usize {
                        let dst = base
                            + (r as usize * 32 + rr) * row_bytes
                            + ((c_index * block_ct + col) as usize * 32) * es;
                        if dst + 32 * es > oaddr as usize + osize as usize {
                            return Err(
                                c.fault(format!("untilized rows run past the end of CB {ocb}"))
                            );
                        }
                        let mut row = vec![0u8; 32 * es];
                        for cc in 0..32 {
                            let s = fpu::face_index(rr, cc) * es;
                            row[cc * es..(cc + 1) * es].copy_from_slice(&tb[s..s + es]);
                        }
                        let core = c.rc.core;
                        c.dev().l1[core].write(dst as u32, &row);
                    }
                }
            }
        }
        _ => return Err(c.fault(format!("unknown compute operation {op}"))),
    }
    charge(&mut c, op, a, sfpu_cycles)?;
    Ok(Some(0))
}

/// Advances the unpack/math/pack clocks for one completed compute call (timing model ESTIMATE;
/// see [`crate::timing`]).
fn charge(c: &mut Ctx<'_>, op: u32, a: &[u32], sfpu_cycles: u64) -> SimResult<()> {
    use crate::timing::SpanKind;
    let p = c.st.noc.p.clone();
    let cfg = c.cs().cfg;
    let llk = p.llk_call_cycles;
    let cost = |o: CostOp| fpu::cost_cycles(o, &cfg);
    let ufmt = |c: &mut Ctx<'_>, cb: u32| -> SimResult<u64> { Ok(p.unpack_cycles(c.cb(cb)?.3)) };
    match op {
        OP_ACQUIRE => {
            let tm = &mut c.rc.tm;
            tm.busy(1, llk);
            // Half-sync double buffering: acquire k reuses the half released by release k-2.
            let t = tm.dest_release[(tm.acquires % 2) as usize];
            tm.wait_until(1, t, SpanKind::WaitSync);
            tm.acquires += 1;
        }
        OP_COMMIT => {
            let tm = &mut c.rc.tm;
            tm.busy(1, llk);
            tm.dest_commit = tm.clk[1];
        }
        OP_WAIT => {
            let tm = &mut c.rc.tm;
            tm.busy(2, llk);
            let t = tm.dest_commit.max(tm.clk[1]);
            tm.wait_until(2, t, SpanKind::WaitSync);
        }
        OP_RELEASE => {
            let tm = &mut c.rc.tm;
            tm.busy(2, llk);
            tm.dest_release[(tm.releases % 2) as usize] = tm.clk[2];
            tm.releases += 1;
        }
        OP_COPY | OP_UNARY_BCAST => {
            // copy_tile(cb, ...), unary_bcast(bcast, cb, ...).
            let u = ufmt(c, arg(a, if op == OP_COPY { 0 } else { 1 }))?;
            let m = cost(CostOp::Datacopy);
            c.rc.tm.unpack_math(llk, 1, u, m, m);
        }
        OP_BINARY => {
            let u = ufmt(c, arg(a, 1))?.max(ufmt(c, arg(a, 2))?);
            let m = cost(if arg(a, 0) >= 2 {
                CostOp::EltwiseMul
            } else {
                CostOp::EltwiseAddSub
            });
            c.rc.tm.unpack_math(llk, 1, u, m, m);
        }
        OP_BINARY_REUSE_DEST => {
            let m = cost(if arg(a, 0) >= 2 {
                CostOp::EltwiseMul
            } else {
                CostOp::EltwiseAddSub
            });
            c.rc.tm.unpack_math(llk, 1, p.unpack_tile_cycles, m, m);
        }
        OP_MATMUL => {
            let (ct, rt) = (arg(a, 6).max(1) as u64, arg(a, 7).max(1) as u64);
            // Unpackers A (in1, ct tiles) and B (in0, rt tiles) run in parallel.
            let u = ufmt(c, arg(a, 0))?.max(ufmt(c, arg(a, 1))?);
            let m = cost(CostOp::Matmul);
            c.rc.tm.unpack_math(llk, rt.max(ct), u, rt * ct * m, m);
        }
        OP_REDUCE => {
            let u = ufmt(c, arg(a, 2))?;
            let m = cost(CostOp::Reduce);
            c.rc.tm.unpack_math(llk, 1, u, m, m);
        }
        OP_TRANSPOSE => {
            let u = ufmt(c, arg(a, 0))?;
            let m = cost(CostOp::Transpose);
            c.rc.tm.unpack_math(llk, 1, u, m, m);
        }
        OP_SFPU | OP_SFPU_BINARY => c.rc.tm.busy(1, llk + sfpu_cycles),
        OP_PACK => {
            let pc = p.pack_cycles(c.cb(arg(a, 1))?.3);
            let tm = &mut c.rc.tm;
            let t = tm.clk[1];
            tm.wait_until(2, t, SpanKind::WaitSync);
            tm.busy(2, llk + pc);
        }
        OP_TILIZE => {
            let n = arg(a, 1).max(1) as u64;
            let u = ufmt(c, arg(a, 0))?;
            let pc = p.pack_cycles(c.cb(arg(a, 2))?.3);
            let m = cost(CostOp::Datacopy);
            let tm = &mut c.rc.tm;
            tm.unpack_math(llk, n, u, n * m, m);
            let t = tm.clk[1];
            tm.wait_until(2, t, SpanKind::WaitSync);
            tm.busy(2, llk + n * pc);
        }
        OP_PACK_UNTILIZE | OP_PACK_UNTILIZE_DEST => {
            let from_dest = op == OP_PACK_UNTILIZE_DEST;
            let (ocb, n) = if from_dest {
                (arg(a, 0), (arg(a, 1).max(1) * arg(a, 3).max(1)) as u64)
            } else {
                (arg(a, 2), (arg(a, 1).max(1) * arg(a, 4).max(1)) as u64)
            };
            let pc = p.pack_cycles(c.cb(ocb)?.3);
            if !from_dest {
                let u = ufmt(c, arg(a, 0))?;
                let m = cost(CostOp::Datacopy);
                c.rc.tm.unpack_math(llk, n, u, n * m, m);
            }
            let tm = &mut c.rc.tm;
            let t = tm.clk[1];
            tm.wait_until(2, t, SpanKind::WaitSync);
            tm.busy(2, llk + n * pc);
        }
        _ => {}
    }
    Ok(())
}
