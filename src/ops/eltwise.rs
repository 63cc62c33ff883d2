//! Elementwise ops on [`DeviceTensor`]s, multi-core over output tiles (each core a contiguous
//! range of tiles in row-major tile order): add / sub / mul with broadcast of the second operand
//! (row vector, column vector, scalar), unary SFPU functions (ReLU, leaky ReLU, exact-erf GELU,
//! tanh, sigmoid, exp, softplus), the WaveNet gate `tanh(a) * sigmoid(b)` and scaled sums of up
//! to [`MAX_SUM_INPUTS`] tensors (e.g. the mean of HiFi-GAN's resblocks, scale 1/3).
//!
//! Kernels: `kernels/ops/eltwise/{reader,compute,writer}.cpp`. Products run at HiFi4 (exact for
//! bf16 operands); [`Precision::fp32_acc`] selects an fp32 DEST; the output is written in
//! [`Precision::activations`]. Output padding is finite; it is zero only where the op maps zero
//! padding to zero ([`DeviceTensor::pad_is_zero`] says so).
//!
//! # Float32
//! Inputs and the output may be `Float32` (needs `fp32_acc`; mixing Float32, bf16 and bfp8_b
//! inputs and outputs is allowed). When any input or the output is Float32 the op runs the
//! **exact-fp32 path**: every input tile goes to DEST without loss (Float32 CBs unpack straight
//! to DEST, `UnpackToDestFp32`; bf16 / bfp8_b are exact in fp32), add / sub / mul, the gate
//! product and the sums are fp32 SFPU operations (`add/sub/mul_binary_tile`, correctly rounded
//! fp32 in the simulator), SFPU functions read and write fp32, and a Float32 output is packed
//! unrounded. The FPU path (`add_tiles` etc.) would truncate Float32 operands to TF32 (2^-10).
//! A broadcast operand is expanded to full tiles by the reader; it must be Float32 or
//! Float16_b there.

use tt_safe::{
    CbConfig, ComputeConfig, DataFormat, Device, KernelKind, KernelSpec, MathFidelity, Program,
    RunStats, core,
};

use super::common::{DeviceTensor, OpError, Precision, check_activation_format_fp32};
use crate::kernels;

/// Most tensors one scaled sum reads.
pub const MAX_SUM_INPUTS: usize = 4;

/// A binary FPU operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// a + b.
    Add,
    /// a - b.
    Sub,
    /// a * b.
    Mul,
}

/// How the second operand of a binary op is broadcast to the first's `[rows, cols]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broadcast {
    /// Same shape.
    None,
    /// `b` is `[1, cols]`: one value per channel, the same for every time row.
    Row,
    /// `b` is `[rows, 1]`: one value per time row (e.g. a mask), the same for every channel.
    Col,
    /// `b` is `[1, 1]`.
    Scalar,
}

/// A unary SFPU function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    /// max(x, 0).
    Relu,
    /// x if x >= 0 else slope x.
    LeakyRelu(f32),
    /// x Phi(x) with the exact erf.
    Gelu,
    /// tanh(x).
    Tanh,
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// e^x.
    Exp,
    /// ln(1 + e^x) (beta 1, linear above 20).
    Softplus,
}

impl UnaryOp {
    fn code(self) -> u32 {
        match self {
            UnaryOp::Relu => 1,
            UnaryOp::LeakyRelu(_) => 2,
            UnaryOp::Gelu => 3,
            UnaryOp::Tanh => 4,
            UnaryOp::Sigmoid => 5,
            UnaryOp::Exp => 6,
            UnaryOp::Softplus => 7,
        }
    }

    /// True when f(0) = 0 (zero padding stays zero).
    fn keeps_zero(self) -> bool {
        matches!(
            self,
            UnaryOp::Relu | UnaryOp::LeakyRelu(_) | UnaryOp::Gelu | UnaryOp::Tanh
        )
    }

    /// The function in f64 (reference).
    pub fn apply(self, x: f64) -> f64 {
        use super::common::reference as r;
        match self {
            UnaryOp::Relu => x.max(0.0),
            UnaryOp::LeakyRelu(s) => {
                if x >= 0.0 {
                    x
                } else {
                    f64::from(s) * x
                }
            }
            UnaryOp::Gelu => r::gelu(x),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Sigmoid => r::sigmoid(x),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Softplus => r::softplus(x),
        }
    }
}

/// Elementwise ops on one device with one precision.
#[derive(Debug, Clone)]
pub struct Eltwise {
    device: Device,
    precision: Precision,
    max_cores: usize,
}

/// One eltwise operation, for [`Eltwise::run_op`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EltwiseOp {
    /// `a (op) b`, `b` broadcast: inputs `[a, b]`.
    Binary(BinaryOp, Broadcast),
    /// `f(a)`: inputs `[a]`.
    Unary(UnaryOp),
    /// `tanh(a) * sigmoid(b)`: inputs `[a, b]`.
    Gate,
    /// `scale * sum(inputs)`: 2..=[`MAX_SUM_INPUTS`] inputs.
    Sum(f32),
}

impl Eltwise {
    /// Elementwise ops writing `precision.activations` (`Float16_b`, `Bfp8_b`, or `Float32` with
    /// `fp32_acc`), with an fp32 DEST when `precision.fp32_acc`.
    pub fn new(device: &Device, precision: Precision) -> Result<Eltwise, OpError> {
        check_activation_format_fp32(
            "eltwise",
            "output (precision.activations)",
            precision.activations,
            precision.fp32_acc,
        )?;
        Ok(Eltwise {
            device: device.clone(),
            precision,
            max_cores: device.grid().num_cores(),
        })
    }

    /// Uses at most `n` cores (at least 1).
    pub fn with_max_cores(mut self, n: usize) -> Eltwise {
        self.max_cores = n.clamp(1, self.device.grid().num_cores());
        self
    }

    /// `a (op) b` with `b` broadcast as `bcast` says.
    pub fn binary(
        &self,
        op: BinaryOp,
        a: &DeviceTensor,
        b: &DeviceTensor,
        bcast: Broadcast,
    ) -> Result<DeviceTensor, OpError> {
        Ok(self.run_op(EltwiseOp::Binary(op, bcast), &[a, b])?.0)
    }

    /// `f(a)`.
    pub fn unary(&self, op: UnaryOp, a: &DeviceTensor) -> Result<DeviceTensor, OpError> {
        Ok(self.run_op(EltwiseOp::Unary(op), &[a])?.0)
    }

    /// The WaveNet gate `tanh(a) * sigmoid(b)` (same shapes).
    pub fn gate(&self, a: &DeviceTensor, b: &DeviceTensor) -> Result<DeviceTensor, OpError> {
        Ok(self.run_op(EltwiseOp::Gate, &[a, b])?.0)
    }

    /// `scale * (x_0 + ... + x_{n-1})` for 2..=[`MAX_SUM_INPUTS`] same-shape tensors.
    pub fn scaled_sum(
        &self,
        inputs: &[&DeviceTensor],
        scale: f32,
    ) -> Result<DeviceTensor, OpError> {
        Ok(self.run_op(EltwiseOp::Sum(scale), inputs)?.0)
    }

    /// `a` converted to `precision.activations` (e.g. bf16 -> Float32 exactly, Float32 -> bf16
    /// rounded by the packer): `a * 1` with a broadcast scalar, which is exact on both paths.
    pub fn convert(&self, a: &DeviceTensor) -> Result<DeviceTensor, OpError> {
        let one = DeviceTensor::from_host(&self.device, 1, 1, &[1.0], DataFormat::Float16_b)?;
        self.binary(BinaryOp::Mul, a, &one, Broadcast::Scalar)
    }

    /// The mean of 2..=[`MAX_SUM_INPUTS`] same-shape tensors.
    pub fn mean(&self, inputs: &[&DeviceTensor]) -> Result<DeviceTensor, OpError> {
        self.scaled_sum(inputs, 1.0 / inputs.len().max(1) as f32)
    }

    /// Runs `op` on `inputs` and returns the output with the device's run statistics
    /// (estimates on the simulator).
    pub fn run_op(
        &self,
        op: EltwiseOp,
        inputs: &[&DeviceTensor],
    ) -> Result<(DeviceTensor, RunStats), OpError> {
        let zero = validate(op, inputs)?;
        self.run(op, inputs, zero)
    }

    fn run(
        &self,
        kind: EltwiseOp,
        inputs: &[&DeviceTensor],
        pad_zero: bool,
    ) -> Result<(DeviceTensor, RunStats), OpError> {
        let a = inputs[0];
        let fp32_acc = self.precision.fp32_acc;
        for t in inputs {
            check_activation_format_fp32("eltwise", "input", t.format(), fp32_acc)?;
        }
        // The exact-fp32 path (see the module docs).
        let exact = fp32_acc
            && (self.precision.activations == DataFormat::Float32
                || inputs.iter().any(|t| t.format() == DataFormat::Float32));
        let expand = match kind {
            EltwiseOp::Binary(_, b) if exact && b != Broadcast::None => {
                let f = inputs[1].format();
                if !matches!(f, DataFormat::Float32 | DataFormat::Float16_b) {
                    return Err(OpError::FormatUnsupported {
                        op: "eltwise binary",
                        role: "broadcast operand of the fp32 path",
                        format: f,
                        supported: "Float32 or Float16_b (the reader expands it to full tiles)",
                    });
                }
                true
            }
            _ => false,
        };
        let mut out =
            DeviceTensor::alloc(&self.device, a.rows(), a.cols(), self.precision.activations)?;
        let n_tiles = a.num_tiles();
        let n_cores = self.max_cores.min(n_tiles).max(1);
        let grid = self.device.grid();
        let gx = grid.size.x as usize;
        let cores: Vec<_> = (0..n_cores)
            .map(|i| core((i % gx) as u32, (i / gx) as u32))
            .collect();
        let set: Vec<tt_safe::CoreRange> = cores
            .iter()
            .map(|&c| tt_safe::CoreRange::single(c))
            .collect();

        let mut program = Program::new(&self.device)?;
        for (i, t) in inputs.iter().enumerate() {
            program.add_circular_buffer(set.clone(), CbConfig::tiles(i as u32, t.format(), 2))?;
        }
        program.add_circular_buffer(
            set.clone(),
            CbConfig::tiles(16, self.precision.activations, 2),
        )?;
        let tmp_fmt = if self.precision.fp32_acc {
            DataFormat::Float32
        } else {
            DataFormat::Float16_b
        };
        if matches!(kind, EltwiseOp::Gate) && !exact {
            program.add_circular_buffer(set.clone(), CbConfig::tiles(24, tmp_fmt, 2))?;
        }

        let mut reader_ct = Vec::new();
        for i in 0..4 {
            reader_ct.extend(inputs[i.min(inputs.len() - 1)].buffer().accessor_args()?);
        }
        let reader = program.add_kernel(
            KernelSpec::new(
                "ops_eltwise_reader",
                kernels::OPS_ELTWISE_READER,
                KernelKind::riscv0(),
                set.clone(),
            )
            .compile_args(reader_ct),
        )?;
        let writer = program.add_kernel(
            KernelSpec::new(
                "ops_eltwise_writer",
                kernels::OPS_ELTWISE_WRITER,
                KernelKind::riscv1(),
                set.clone(),
            )
            .compile_args(out.buffer().accessor_args()?),
        )?;
        let mut spec = KernelSpec::new(
            "ops_eltwise_compute",
            kernels::OPS_ELTWISE_COMPUTE,
            KernelKind::compute(ComputeConfig {
                fidelity: MathFidelity::HiFi4,
                fp32_dest_acc: self.precision.fp32_acc,
                // Float32 inputs are only ever copied to DEST on the exact path.
                unpack_to_dest_fp32: if exact {
                    (0..inputs.len() as u32)
                        .filter(|&i| inputs[i as usize].format() == DataFormat::Float32)
                        .collect()
                } else {
                    Vec::new()
                },
                ..ComputeConfig::default()
            }),
            set.clone(),
        );
        if exact {
            spec = spec.define("ELT_FP32", "1");
        }
        let mut bcast_mode = 0u32;
        match kind {
            EltwiseOp::Binary(op, b) => {
                let binop = match op {
                    BinaryOp::Add => "EltwiseBinaryType::ELWADD",
                    BinaryOp::Sub => "EltwiseBinaryType::ELWSUB",
                    BinaryOp::Mul => "EltwiseBinaryType::ELWMUL",
                };
                let (bc, mode) = match b {
                    Broadcast::None => ("BroadcastType::NONE", 0),
                    Broadcast::Row => ("BroadcastType::ROW", 1),
                    Broadcast::Col => ("BroadcastType::COL", 2),
                    Broadcast::Scalar => ("BroadcastType::SCALAR", 3),
                };
                bcast_mode = mode;
                spec = spec
                    .define("ELT_BINARY", "1")
                    .define("BINOP", binop)
                    .define("BCAST", bc);
            }
            EltwiseOp::Unary(op) => {
                let param = match op {
                    UnaryOp::LeakyRelu(s) => s.to_bits(),
                    _ => 0,
                };
                spec = spec
                    .define("ELT_UNARY", "1")
                    .define("SFPU_OP", op.code().to_string())
                    .define("SFPU_PARAM", format!("{param}u"));
            }
            EltwiseOp::Gate => spec = spec.define("ELT_GATE", "1"),
            EltwiseOp::Sum(scale) => {
                spec = spec
                    .define("ELT_SUM", "1")
                    .define("NUM_INPUTS", inputs.len().to_string())
                    .define("SCALE", format!("{}u", scale.to_bits()));
            }
        }
        let compute = program.add_kernel(spec)?;

        let per = n_tiles.div_ceil(n_cores);
        let mut addrs = Vec::new();
        for i in 0..4 {
            addrs.push(inputs[i.min(inputs.len() - 1)].buffer().address_u32()?);
        }
        let out_addr = out.buffer().address_u32()?;
        for (i, &c) in cores.iter().enumerate() {
            let start = (i * per).min(n_tiles) as u32;
            let count = (per.min(n_tiles.saturating_sub(i * per))) as u32;
            let mut args = vec![
                inputs.len() as u32,
                start,
                count,
                a.tile_cols() as u32,
                bcast_mode,
            ];
            args.extend(&addrs);
            args.push(u32::from(expand));
            program.set_runtime_args(reader, c, &args)?;
            program.set_runtime_args(writer, c, &[out_addr, start, count])?;
            program.set_runtime_args(compute, c, &[count])?;
        }
        let stats = self.device.run(&program)?;
        out.set_pad_is_zero(pad_zero);
        Ok((out, stats))
    }
}

fn same_shapes(op: &'static str, inputs: &[&DeviceTensor]) -> Result<(), OpError> {
    let s = inputs[0].shape();
    if let Some(t) = inputs.iter().find(|t| t.shape() != s) {
        return Err(OpError::ShapeMismatch {
            op,
            what: format!("inputs must have the same shape: {s:?} and {:?}", t.shape()),
        });
    }
    Ok(())
}

/// Checks `inputs` for `op`; returns whether the output's padding will be zero.
fn validate(op: EltwiseOp, inputs: &[&DeviceTensor]) -> Result<bool, OpError> {
    let want_inputs = match op {
        EltwiseOp::Binary(..) | EltwiseOp::Gate => 2..=2,
        EltwiseOp::Unary(_) => 1..=1,
        EltwiseOp::Sum(_) => 2..=MAX_SUM_INPUTS,
    };
    if !want_inputs.contains(&inputs.len()) {
        return Err(OpError::ShapeUnsupported {
            op: "eltwise",
            what: format!("{op:?} with {} input tensors", inputs.len()),
            limit: format!(
                "{}..={} inputs per call (chain calls for more)",
                want_inputs.start(),
                want_inputs.end()
            ),
        });
    }
    let a = inputs[0];
    match op {
        EltwiseOp::Binary(bop, bcast) => {
            let b = inputs[1];
            let want = match bcast {
                Broadcast::None => [a.rows(), a.cols()],
                Broadcast::Row => [1, a.cols()],
                Broadcast::Col => [a.rows(), 1],
                Broadcast::Scalar => [1, 1],
            };
            if b.shape() != want {
                return Err(OpError::ShapeMismatch {
                    op: "eltwise binary",
                    what: format!(
                        "with {bcast:?} broadcast of a [{}, {}] tensor the second operand must be {want:?}, it is {:?}",
                        a.rows(),
                        a.cols(),
                        b.shape()
                    ),
                });
            }
            Ok(a.pad_is_zero()
                && (bop == BinaryOp::Mul || (b.pad_is_zero() && bcast == Broadcast::None)))
        }
        EltwiseOp::Unary(u) => {
            if let UnaryOp::LeakyRelu(s) = u
                && !s.is_finite()
            {
                return Err(OpError::InvalidArgument {
                    op: "eltwise unary",
                    what: format!("leaky ReLU slope {s} is not finite"),
                });
            }
            Ok(a.pad_is_zero() && u.keeps_zero())
        }
        EltwiseOp::Gate => {
            same_shapes("eltwise gate", inputs)?;
            Ok(a.pad_is_zero())
        }
        EltwiseOp::Sum(scale) => {
            if !scale.is_finite() {
                return Err(OpError::InvalidArgument {
                    op: "eltwise scaled_sum",
                    what: format!("scale {scale} is not finite"),
                });
            }
            same_shapes("eltwise scaled_sum", inputs)?;
            Ok(inputs.iter().all(|t| t.pad_is_zero()))
        }
    }
}
