//! Matmul op: `y = act(x W + b)` with `x [M, K]` activations (time-major, bf16, bfp8_b or, with
//! `fp32_acc`, Float32; the FPU reads Float32 as TF32, 2^-10), `W
//! [K, N]` weights prepared once on the device (bf16, bfp8_b or bfp4_b), an optional bias `b [N]`
//! and a fused [`Activation`], at any [`Precision`].
//!
//! # Device plan
//! - **Grid**: `gx` columns split the N tiles (`per_core_n` each), `gy` rows split the M tiles
//!   (`per_core_m` each); the last column/row may have fewer valid tiles (tails: the readers
//!   repeat the last valid row/column, the writer drops those outputs).
//! - **Multicast**: the left column reads activation blocks and multicasts them along its row;
//!   the top row reads weight blocks and multicasts them down its column (tt-safe [`McastPlan`],
//!   `kernels/ops/matmul/in0_mcast.cpp`, `in1_mcast_writer.cpp`). A one-wide grid direction
//!   just reads.
//! - **L1 plan** ([`MatmulPlan`]): each core's rows run in chunks of `chunk_m` tile rows and K in
//!   blocks of `in0_block_w` tiles. When a whole K band of weights fits (`in0_block_w = Kt`),
//!   it is multicast once and stays **resident** for every chunk; otherwise weight blocks stream
//!   per chunk. Partial sums between K blocks spill to an intermediate CB (fp32 with fp32
//!   accumulation). Output sub-blocks fit DEST (8 tiles, 4 with fp32 accumulation). The plan
//!   picks the largest blocks whose circular buffers fit [`L1_BUDGET_FRACTION`] of the core's
//!   free L1, or fails with [`OpError::ShapeUnsupported`] naming the limit.
//! - **Bias** starts DEST (block 0 copies a bias tile replicated over 32 rows); the activation
//!   runs on DEST after the last K block (SFPU), then the output is packed.
//!
//! With `precision.activations == Float32` the output is packed from the fp32 DEST unrounded and
//! the bias is stored as Float32 and unpacked straight to DEST (`UnpackToDestFp32`): the only
//! losses are the TF32 truncation of Float32 inputs, the weights' format and the fidelity.
//!
//! The output's padding (rows past M, columns past N in the last tiles) is finite but not zero
//! when there is a bias or an activation with `f(0) != 0`.

use tt_safe::mcast::McastPlan;
use tt_safe::{
    Buffer, CbConfig, ComputeConfig, CoreCoord, DataFormat, Device, KernelKind, KernelSpec, Noc,
    Program, RunStats, Tensor2d, core, pod_words, range,
};

use super::common::{
    Activation, DeviceTensor, OpError, Precision, TILE, check_activation_format_fp32, tiles,
};
use crate::kernels;

/// Fraction of a core's free L1 the matmul's circular buffers may use.
pub const L1_BUDGET_FRACTION: f64 = 0.75;

/// The block sizes of one matmul on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulPlan {
    /// M, K, N in tiles.
    pub mt: u32,
    /// K tiles.
    pub kt: u32,
    /// N tiles.
    pub nt: u32,
    /// Grid columns (over N).
    pub gx: u32,
    /// Grid rows (over M).
    pub gy: u32,
    /// N tiles per core column.
    pub per_core_n: u32,
    /// M tiles per core row.
    pub per_core_m: u32,
    /// Tile rows per chunk.
    pub chunk_m: u32,
    /// Chunks per core.
    pub num_chunks: u32,
    /// K tiles per block.
    pub in0_block_w: u32,
    /// K blocks.
    pub num_blocks: u32,
    /// Output sub-block height (tiles).
    pub out_subblock_h: u32,
    /// Output sub-block width (tiles).
    pub out_subblock_w: u32,
    /// Weights multicast once and kept in L1.
    pub resident: bool,
    /// Tall-narrow mode: every core (column-major block order) takes its own rows and all N
    /// columns, reading its activations itself; weights still multicast down each column.
    pub m_split: bool,
    /// Circular-buffer bytes per core.
    pub l1_bytes: u64,
}

/// Formats and flags the plan depends on.
#[derive(Debug, Clone, Copy)]
struct PlanFormats {
    in0: DataFormat,
    weights: DataFormat,
    out: DataFormat,
    interm: DataFormat,
    bias: DataFormat,
    has_bias: bool,
    fp32_acc: bool,
}

/// The bias is stored as Float32 when the activations are Float32, else bf16.
fn bias_format(precision: &Precision) -> DataFormat {
    if precision.activations == DataFormat::Float32 {
        DataFormat::Float32
    } else {
        DataFormat::Float16_b
    }
}

fn largest_divisor_at_most(n: u32, cap: u32) -> u32 {
    (1..=cap.min(n).max(1))
        .rev()
        .find(|d| n.is_multiple_of(*d))
        .unwrap_or(1)
}

fn divisors_desc(n: u32) -> Vec<u32> {
    (1..=n).rev().filter(|d| n.is_multiple_of(*d)).collect()
}

impl MatmulPlan {
    /// Plans `[mt, kt] x [kt, nt]` tiles on a `grid_x` x `grid_y` grid within `budget` bytes.
    fn new(
        mt: u32,
        kt: u32,
        nt: u32,
        grid: (u32, u32),
        budget: u64,
        f: PlanFormats,
    ) -> Result<MatmulPlan, OpError> {
        // Tall and narrow (most grid columns would idle): split M over every core instead, each
        // core computing all N columns of its rows.
        let m_split = nt * 2 <= grid.0 && mt > grid.1;
        let (gx, gy, per_core_n, per_core_m) = if m_split {
            let cores = (grid.0 * grid.1).min(mt).max(1);
            let per_core_m = mt.div_ceil(cores);
            let blocks = mt.div_ceil(per_core_m);
            let gy = grid.1.min(blocks).max(1);
            (blocks.div_ceil(gy), gy, nt, per_core_m)
        } else {
            let gx0 = grid.0.min(nt).max(1);
            let per_core_n = nt.div_ceil(gx0);
            let gy0 = grid.1.min(mt).max(1);
            let per_core_m = mt.div_ceil(gy0);
            (
                nt.div_ceil(per_core_n),
                mt.div_ceil(per_core_m),
                per_core_n,
                per_core_m,
            )
        };
        let dest_cap: u32 = if f.fp32_acc { 4 } else { 8 };
        let out_subblock_w = largest_divisor_at_most(per_core_n, dest_cap);
        let b = |fmt: DataFormat| fmt.tile_size_bytes() as u64;
        let mut best_need = u64::MAX;
        for in0_block_w in divisors_desc(kt) {
            let resident = in0_block_w == kt;
            let num_blocks = kt / in0_block_w;
            for chunk_m in (1..=per_core_m).rev() {
                let osh = largest_divisor_at_most(chunk_m, dest_cap / out_subblock_w);
                let chunk = u64::from(chunk_m);
                let pcn = u64::from(per_core_n);
                let ib = u64::from(in0_block_w);
                let need = 2 * chunk * ib * b(f.in0)
                    + if resident { 1 } else { 2 } * ib * pcn * b(f.weights)
                    + if f.has_bias { pcn * b(f.bias) } else { 0 }
                    + 2 * u64::from(osh * out_subblock_w) * b(f.out)
                    + if num_blocks > 1 {
                        chunk * pcn * b(f.interm)
                    } else {
                        0
                    };
                best_need = best_need.min(need);
                if need <= budget {
                    // Rebalance: the same number of chunks with the rows spread evenly.
                    let num_chunks = per_core_m.div_ceil(chunk_m);
                    let chunk_m = per_core_m.div_ceil(num_chunks);
                    let osh = largest_divisor_at_most(chunk_m, dest_cap / out_subblock_w);
                    return Ok(MatmulPlan {
                        mt,
                        kt,
                        nt,
                        gx,
                        gy,
                        per_core_n,
                        per_core_m,
                        chunk_m,
                        num_chunks,
                        in0_block_w,
                        num_blocks,
                        out_subblock_h: osh,
                        out_subblock_w,
                        resident,
                        m_split,
                        l1_bytes: need,
                    });
                }
            }
        }
        Err(OpError::ShapeUnsupported {
            op: "matmul",
            what: format!(
                "a weight band of {per_core_n} N tiles per core (N = {nt} tiles over {gx} grid columns)"
            ),
            limit: format!(
                "L1: even 1-tile blocks need {best_need} bytes of circular buffers per core, the budget is {budget}"
            ),
        })
    }
}

/// A matmul with its weights (and bias) prepared on the device.
pub struct Matmul {
    device: Device,
    k: usize,
    n: usize,
    precision: Precision,
    activation: Activation,
    weights: DeviceTensor,
    bias: Option<DeviceTensor>,
    grid: (u32, u32),
    budget: Option<u64>,
}

impl std::fmt::Debug for Matmul {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matmul")
            .field("k", &self.k)
            .field("n", &self.n)
            .field("precision", &self.precision)
            .field("activation", &self.activation)
            .field("has_bias", &self.bias.is_some())
            .field("grid", &self.grid)
            .finish()
    }
}

impl Matmul {
    /// Prepares `weights [K, N]` (row-major `Tensor2d`) in `precision.weights` and the optional
    /// `bias [N]` (bf16; Float32 when `precision.activations` is Float32) on `device`.
    pub fn new(
        device: &Device,
        weights: &Tensor2d,
        bias: Option<&[f32]>,
        precision: Precision,
        activation: Activation,
    ) -> Result<Matmul, OpError> {
        precision.validate_fp32("matmul")?;
        precision.check_no_split("matmul")?;
        if let Activation::LeakyRelu(s) = activation
            && !s.is_finite()
        {
            return Err(OpError::InvalidArgument {
                op: "matmul",
                what: format!("leaky ReLU slope {s} is not finite"),
            });
        }
        let (k, n) = (weights.rows(), weights.cols());
        if weights.data().iter().any(|v| !v.is_finite()) {
            return Err(OpError::InvalidArgument {
                op: "matmul",
                what: "weights contain NaN or infinity".into(),
            });
        }
        let w = DeviceTensor::from_host(device, k, n, weights.data(), precision.weights)?;
        let bias = match bias {
            None => None,
            Some(b) => {
                if b.len() != n {
                    return Err(OpError::ShapeMismatch {
                        op: "matmul",
                        what: format!(
                            "bias has {} values, the weights have N = {n} columns",
                            b.len()
                        ),
                    });
                }
                // Replicated over one tile row of 32 rows: block 0 copies it into DEST.
                let mut rep = Vec::with_capacity(TILE * n);
                for _ in 0..TILE {
                    rep.extend_from_slice(b);
                }
                Some(DeviceTensor::from_host(
                    device,
                    TILE,
                    n,
                    &rep,
                    bias_format(&precision),
                )?)
            }
        };
        let g = device.grid();
        Ok(Matmul {
            device: device.clone(),
            k,
            n,
            precision,
            activation,
            weights: w,
            bias,
            grid: (g.size.x, g.size.y),
            budget: None,
        })
    }

    /// Restricts the core grid to at most `x` columns by `y` rows (clamped to the device grid).
    pub fn with_max_grid(mut self, x: u32, y: u32) -> Matmul {
        let g = self.device.grid();
        self.grid = (x.clamp(1, g.size.x), y.clamp(1, g.size.y));
        self
    }

    /// Caps the circular-buffer bytes per core (default: [`L1_BUDGET_FRACTION`] of free L1);
    /// smaller budgets force K streaming and row chunking.
    pub fn with_l1_budget(mut self, bytes: u64) -> Matmul {
        self.budget = Some(bytes);
        self
    }

    /// K (input channels).
    pub fn k(&self) -> usize {
        self.k
    }
    /// N (output channels).
    pub fn n(&self) -> usize {
        self.n
    }
    /// The precision.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    fn formats(&self, input: DataFormat) -> PlanFormats {
        PlanFormats {
            in0: input,
            weights: self.precision.weights,
            out: self.precision.activations,
            interm: self.precision.intermediate_format(),
            bias: bias_format(&self.precision),
            has_bias: self.bias.is_some(),
            fp32_acc: self.precision.fp32_acc,
        }
    }

    /// The block plan for `m` rows of `input`-format activations.
    pub fn plan(&self, m: usize, input: DataFormat) -> Result<MatmulPlan, OpError> {
        let budget = self
            .budget
            .unwrap_or((self.device.info().l1_user_bytes() as f64 * L1_BUDGET_FRACTION) as u64);
        let t = |v: usize, what: &str| {
            u32::try_from(tiles(v)).map_err(|_| OpError::ShapeUnsupported {
                op: "matmul",
                what: format!("{what} = {v}"),
                limit: "2^32 tiles per dimension".into(),
            })
        };
        MatmulPlan::new(
            t(m, "M")?,
            t(self.k, "K")?,
            t(self.n, "N")?,
            self.grid,
            budget,
            self.formats(input),
        )
    }

    /// `act(x W + b)` for `x [M, K]`; the output is `[M, N]` in `precision.activations`.
    pub fn run(&self, x: &DeviceTensor) -> Result<DeviceTensor, OpError> {
        Ok(self.run_with_stats(x)?.0)
    }

    /// [`Matmul::run`] plus the device's run statistics (estimates on the simulator).
    pub fn run_with_stats(&self, x: &DeviceTensor) -> Result<(DeviceTensor, RunStats), OpError> {
        check_activation_format_fp32("matmul", "input", x.format(), self.precision.fp32_acc)?;
        if x.cols() != self.k {
            return Err(OpError::ShapeMismatch {
                op: "matmul",
                what: format!(
                    "input is [{}, {}] but the weights are [{}, {}]; the input needs K = {} columns",
                    x.rows(),
                    x.cols(),
                    self.k,
                    self.n,
                    self.k
                ),
            });
        }
        let plan = self.plan(x.rows(), x.format())?;
        let out = DeviceTensor::alloc(&self.device, x.rows(), self.n, self.precision.activations)?;
        let program = self.build(&plan, x, &out)?;
        let stats = self.device.run(&program)?;
        let mut out = out;
        out.set_pad_is_zero(
            self.bias.is_none()
                && matches!(
                    self.activation,
                    Activation::None
                        | Activation::Relu
                        | Activation::LeakyRelu(_)
                        | Activation::Gelu
                        | Activation::Tanh
                )
                && x.pad_is_zero(),
        );
        Ok((out, stats))
    }

    fn build(
        &self,
        p: &MatmulPlan,
        x: &DeviceTensor,
        out: &DeviceTensor,
    ) -> Result<Program, OpError> {
        let f = self.formats(x.format());
        let device = &self.device;
        let mut program = Program::new(device)?;
        let grid = range(0, 0, p.gx - 1, p.gy - 1);
        let in0_block_tiles = p.chunk_m * p.in0_block_w;
        let in1_block_tiles = p.in0_block_w * p.per_core_n;
        let subblock_tiles = p.out_subblock_h * p.out_subblock_w;

        program.add_circular_buffer(grid, CbConfig::tiles(0, f.in0, 2 * in0_block_tiles))?;
        let in1_bufs = if p.resident { 1 } else { 2 };
        program.add_circular_buffer(
            grid,
            CbConfig::tiles(1, f.weights, in1_bufs * in1_block_tiles),
        )?;
        if f.has_bias {
            program.add_circular_buffer(grid, CbConfig::tiles(2, f.bias, p.per_core_n))?;
        }
        program.add_circular_buffer(grid, CbConfig::tiles(16, f.out, 2 * subblock_tiles))?;
        if p.num_blocks > 1 {
            program.add_circular_buffer(
                grid,
                CbConfig::tiles(24, f.interm, p.chunk_m * p.per_core_n),
            )?;
        }

        // Multicast plans (a one-wide direction has senders only, with an empty plan).
        let sems = (
            program.add_semaphore(grid, 0)?,
            program.add_semaphore(grid, 0)?,
        );
        let sems2 = (
            program.add_semaphore(grid, 0)?,
            program.add_semaphore(grid, 0)?,
        );
        let in0_plan = if p.gx > 1 && !p.m_split {
            let mut pl = McastPlan::along_rows(device.noc_map(), grid, Noc::Noc1)?;
            pl.set_semaphores(tt_safe::McastSemaphores {
                sender: sems.0,
                receiver: sems.1,
            });
            Some(pl)
        } else {
            None
        };
        let in1_plan = if p.gy > 1 {
            let mut pl = McastPlan::down_columns(device.noc_map(), grid, Noc::Noc0)?;
            pl.set_semaphores(tt_safe::McastSemaphores {
                sender: sems2.0,
                receiver: sems2.1,
            });
            Some(pl)
        } else {
            None
        };
        let no_plan =
            |s: &(tt_safe::SemaphoreId, tt_safe::SemaphoreId)| vec![s.0.id(), s.1.id(), 0, 0];

        let left = if p.m_split {
            grid
        } else {
            range(0, 0, 0, p.gy - 1)
        };
        let top = range(0, 0, p.gx - 1, 0);
        let in0_sender = program.add_kernel(
            KernelSpec::new(
                "ops_matmul_in0_sender",
                kernels::OPS_MATMUL_IN0_MCAST,
                KernelKind::riscv1(),
                left,
            )
            .compile_args(x.buffer().accessor_args()?)
            .define("IN0_SENDER", "1"),
        )?;
        let in0_receiver = if p.gx > 1 && !p.m_split {
            Some(program.add_kernel(KernelSpec::new(
                "ops_matmul_in0_receiver",
                kernels::OPS_MATMUL_IN0_MCAST,
                KernelKind::riscv1(),
                range(1, 0, p.gx - 1, p.gy - 1),
            ))?)
        } else {
            None
        };
        let bias_buf: &Buffer = self.bias.as_ref().map_or(out.buffer(), |b| b.buffer());
        let mut sender_ct = self.weights.buffer().accessor_args()?;
        sender_ct.extend(bias_buf.accessor_args()?);
        sender_ct.extend(out.buffer().accessor_args()?);
        let in1_sender = program.add_kernel(
            KernelSpec::new(
                "ops_matmul_in1_sender",
                kernels::OPS_MATMUL_IN1_MCAST_WRITER,
                KernelKind::riscv0(),
                top,
            )
            .compile_args(sender_ct)
            .define("IN1_SENDER", "1"),
        )?;
        let in1_receiver = if p.gy > 1 {
            let mut ct = bias_buf.accessor_args()?;
            ct.extend(out.buffer().accessor_args()?);
            Some(
                program.add_kernel(
                    KernelSpec::new(
                        "ops_matmul_in1_receiver",
                        kernels::OPS_MATMUL_IN1_MCAST_WRITER,
                        KernelKind::riscv0(),
                        range(0, 1, p.gx - 1, p.gy - 1),
                    )
                    .compile_args(ct),
                )?,
            )
        } else {
            None
        };
        let compute_cfg = ComputeConfig {
            fidelity: self.precision.fidelity,
            fp32_dest_acc: self.precision.fp32_acc,
            // Copy-only Float32 CBs go straight to DEST: the spilled partials, a Float32 bias.
            unpack_to_dest_fp32: [
                (24, f.fp32_acc && p.num_blocks > 1),
                (2, f.has_bias && f.bias == DataFormat::Float32),
            ]
            .iter()
            .filter(|(_, on)| *on)
            .map(|(cb, _)| *cb)
            .collect(),
            ..ComputeConfig::default()
        };
        program.add_kernel(
            KernelSpec::new(
                "ops_matmul_compute",
                kernels::OPS_MATMUL_COMPUTE,
                KernelKind::compute(compute_cfg),
                grid,
            )
            .compile_args(vec![
                p.in0_block_w,
                p.chunk_m / p.out_subblock_h,
                in0_block_tiles,
                p.out_subblock_h * p.in0_block_w,
                p.per_core_n / p.out_subblock_w,
                in1_block_tiles,
                p.per_core_n,
                p.num_blocks,
                p.out_subblock_h,
                p.out_subblock_w,
                subblock_tiles,
                p.num_chunks,
                u32::from(f.has_bias),
                u32::from(p.resident),
            ])
            .define("ACTIVATION", self.activation.code().to_string())
            .define("ACT_PARAM", format!("{}u", self.activation.param_bits())),
        )?;

        let x_addr = x.buffer().address_u32()?;
        let w_addr = self.weights.buffer().address_u32()?;
        let out_addr = out.buffer().address_u32()?;
        let bias_addr = bias_buf.address_u32()?;
        for cy in 0..p.gy {
            for cx in 0..p.gx {
                let c: CoreCoord = core(cx, cy);
                // (first row, rows to read (>= 1), rows to write, first column, columns)
                let (first_row, read_rows, core_rows, first_col, core_cols) = if p.m_split {
                    let first = (cx * p.gy + cy) * p.per_core_m;
                    if first >= p.mt {
                        // An idle core: it takes part in the weight multicast, writes nothing.
                        (0, 1, 0, 0, p.nt)
                    } else {
                        let rows = p.per_core_m.min(p.mt - first);
                        (first, rows, rows, 0, p.nt)
                    }
                } else {
                    let first_row = cy * p.per_core_m;
                    let rows = p.per_core_m.min(p.mt - first_row);
                    let first_col = cx * p.per_core_n;
                    (
                        first_row,
                        rows,
                        rows,
                        first_col,
                        p.per_core_n.min(p.nt - first_col),
                    )
                };
                if cx == 0 || p.m_split {
                    let mut args = vec![
                        x_addr,
                        p.kt,
                        first_row,
                        read_rows,
                        p.chunk_m,
                        p.num_chunks,
                        p.in0_block_w,
                        p.num_blocks,
                    ];
                    match &in0_plan {
                        Some(pl) => args.extend(pl.sender_args(c)?),
                        None => args.extend(no_plan(&sems)),
                    }
                    program.set_runtime_args(in0_sender, c, &args)?;
                } else if let (Some(k), Some(pl)) = (in0_receiver, &in0_plan) {
                    let mut args = vec![in0_block_tiles, p.num_blocks * p.num_chunks];
                    args.extend(pod_words(&pl.receiver_args(c)?));
                    program.set_runtime_args(k, c, &args)?;
                }
                let mut args = vec![
                    p.nt,
                    first_col,
                    core_cols,
                    p.per_core_n,
                    p.in0_block_w,
                    p.num_blocks,
                    p.num_chunks,
                    u32::from(p.resident),
                    u32::from(f.has_bias),
                    bias_addr,
                    out_addr,
                    first_row,
                    core_rows,
                    p.chunk_m,
                    p.out_subblock_h,
                    p.out_subblock_w,
                    w_addr,
                ];
                if cy == 0 {
                    match &in1_plan {
                        Some(pl) => args.extend(pl.sender_args(c)?),
                        None => args.extend(no_plan(&sems2)),
                    }
                    program.set_runtime_args(in1_sender, c, &args)?;
                } else if let (Some(k), Some(pl)) = (in1_receiver, &in1_plan) {
                    args.extend(pod_words(&pl.receiver_args(c)?));
                    program.set_runtime_args(k, c, &args)?;
                }
            }
        }
        Ok(program)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmts(fp32: bool) -> PlanFormats {
        PlanFormats {
            in0: DataFormat::Float16_b,
            weights: DataFormat::Bfp8_b,
            out: DataFormat::Float16_b,
            interm: if fp32 {
                DataFormat::Float32
            } else {
                DataFormat::Float16_b
            },
            bias: DataFormat::Float16_b,
            has_bias: true,
            fp32_acc: fp32,
        }
    }

    #[test]
    fn plans_piper_shapes_resident_with_tails() {
        // T = 300 (10 tiles) x 192 -> 768 on an 8x8 grid.
        let p = MatmulPlan::new(10, 6, 24, (8, 8), 700_000, fmts(true)).unwrap();
        assert_eq!((p.gx, p.per_core_n, p.gy, p.per_core_m), (8, 3, 5, 2));
        assert!(p.resident && p.num_blocks == 1 && !p.m_split);
        assert!(p.out_subblock_h * p.out_subblock_w <= 4);
        // 100k samples x 32 channels: every core takes rows.
        let p = MatmulPlan::new(3125, 2, 1, (8, 8), 700_000, fmts(false)).unwrap();
        assert!(p.m_split);
        assert_eq!((p.gx, p.gy, p.per_core_m, p.per_core_n), (8, 8, 49, 1));
        // 11 tile rows on 8 grid rows: 2 per core row, 6 rows used, the last with 1 valid row.
        let p = MatmulPlan::new(11, 6, 6, (8, 8), 700_000, fmts(false)).unwrap();
        assert_eq!((p.gy, p.per_core_m, p.gx, p.per_core_n), (6, 2, 6, 1));
    }

    #[test]
    fn small_budget_streams_and_chunks_or_fails_naming_l1() {
        let p = MatmulPlan::new(64, 48, 8, (1, 1), 200_000, fmts(false)).unwrap();
        assert!(!p.resident && p.num_blocks > 1);
        assert!(p.l1_bytes <= 200_000);
        assert!(p.chunk_m * p.num_chunks >= 64);
        let e = MatmulPlan::new(1, 1, 4000, (1, 1), 200_000, fmts(false)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("L1") && msg.contains("budget"), "{msg}");
    }
}
