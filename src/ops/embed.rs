//! Embedding gather and duration expansion on device (row gathers of a tiled bf16 matrix).
//!
//! - [`embedding_gather`]: `out[j, :] = table[ids[j], :] * scale` for a `[V, C]` table, with the
//!   optional VITS scale `sqrt(C)` ([`EmbedScale::SqrtChannels`]).
//! - [`expand_durations`]: repeats row `i` of a `[T, C]` matrix `durations[i]` times (the VITS
//!   length regulator). The integer prefix sum of the durations is computed **on device** by the
//!   reader kernel (`kernels/ops/embed/reader_row_gather.cpp`), never in floating point; rows past
//!   the total are zero up to the capacity the caller allocates, and the device reports the total.
//!
//! Both ops build every output tile row by row in the reader (a bf16 tile row is two 32-byte
//! runs, fetched as DRAM-aligned 64-byte chunks), pass it through a compute kernel
//! (`kernels/ops/embed/scale_rows.cpp`: optional SFPU scalar multiply) and write it with the
//! shared `writer_unary`. Output tile rows are split over the cores of the grid.
//!
//! Index buffers (ids, durations) are `u32` in pages of 32 entries (128 bytes); build one with
//! [`index_buffer`].
//!
//! Limits (each returns an [`EmbedError`] naming it): the table/activations must be `Float16_b`
//! tiles (a bf16 row copy is exact; BFP rows share exponents across faces and are not gathered);
//! at most [`MAX_INDEX`] ids or durations; the output capacity is at most [`MAX_INDEX`] rows.

use super::common::{DeviceTensor, OpError};
use crate::kernels;
use thiserror::Error;
use tt_safe::{
    Buffer, CbConfig, CbFormat, ComputeConfig, CoreCoord, DataFormat, Device, KernelKind,
    KernelSpec, Program,
};

/// Most ids / durations / output rows one call handles (the reader walks them with 32-bit
/// counters; 2^24 keeps every row index and prefix sum far from overflow).
pub const MAX_INDEX: usize = 1 << 24;

/// Entries per page of an index buffer.
pub const INDEX_PAGE_ENTRIES: usize = 32;
const INDEX_PAGE_BYTES: u32 = 128;
const AUX_BYTES: u32 = 64;
const TILE: usize = 32;

const CB_IN: u32 = 0;
const CB_SCRATCH: u32 = 8;
const CB_OUT: u32 = 16;

/// Errors of the embedding ops.
#[derive(Debug, Error)]
pub enum EmbedError {
    /// A device call failed.
    #[error("embed: device call failed: {0}")]
    Device(#[from] tt_safe::Error),
    /// A shared op error (tensor wrapping).
    #[error(transparent)]
    Op(#[from] OpError),
    /// The source matrix is not bf16.
    #[error(
        "embed: the source matrix must be Float16_b tiles (got {0:?}); convert it to bf16 \
         (BFP rows share exponents and cannot be gathered row by row)"
    )]
    Format(DataFormat),
    /// A size is zero or over a limit.
    #[error("embed: {what} = {value} is outside the supported range 1..={limit}")]
    Shape {
        /// Which size.
        what: &'static str,
        /// Its value.
        value: usize,
        /// The limit.
        limit: usize,
    },
    /// A buffer is smaller than the shape says.
    #[error("embed: {what} holds {have} bytes but the shape needs {need}")]
    BufferTooSmall {
        /// Which buffer.
        what: &'static str,
        /// Its size.
        have: u64,
        /// Needed size.
        need: u64,
    },
    /// Ids outside the vocabulary (their rows were written as zeros).
    #[error("embed: {count} ids are >= the vocabulary size {vocab}; their rows are zero")]
    IdOutOfRange {
        /// How many.
        count: u32,
        /// Vocabulary size.
        vocab: usize,
    },
    /// The durations add up to more rows than the output can hold.
    #[error(
        "embed: the durations add up to {total} rows but the output capacity is {capacity}; \
         call again with capacity >= {total}"
    )]
    OverCapacity {
        /// Sum of the durations (computed on device).
        total: u64,
        /// The capacity passed.
        capacity: usize,
    },
}

impl From<tt_safe::BufferError> for EmbedError {
    fn from(e: tt_safe::BufferError) -> Self {
        EmbedError::Device(e.into())
    }
}
impl From<tt_safe::ProgramError> for EmbedError {
    fn from(e: tt_safe::ProgramError) -> Self {
        EmbedError::Device(e.into())
    }
}
impl From<tt_safe::RunError> for EmbedError {
    fn from(e: tt_safe::RunError) -> Self {
        EmbedError::Device(e.into())
    }
}

/// Optional scale of the gathered rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EmbedScale {
    /// Rows copied exactly.
    None,
    /// Rows multiplied by `sqrt(C)` (VITS text encoder).
    SqrtChannels,
    /// Rows multiplied by this factor.
    Factor(f32),
}

/// Uploads `values` (ids or durations) as an index buffer: `u32`, pages of 32 entries.
pub fn index_buffer(device: &Device, values: &[u32]) -> Result<Buffer, EmbedError> {
    check("number of indices", values.len(), MAX_INDEX)?;
    let pages = values.len().div_ceil(INDEX_PAGE_ENTRIES);
    let mut words = values.to_vec();
    words.resize(pages * INDEX_PAGE_ENTRIES, 0);
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let buffer = Buffer::dram(device, bytes.len() as u64, INDEX_PAGE_BYTES)?;
    buffer.write(&bytes)?;
    Ok(buffer)
}

fn check(what: &'static str, value: usize, limit: usize) -> Result<(), EmbedError> {
    if value == 0 || value > limit {
        return Err(EmbedError::Shape { what, value, limit });
    }
    Ok(())
}

fn check_size(what: &'static str, b: &Buffer, need: u64) -> Result<(), EmbedError> {
    if b.size() < need {
        return Err(EmbedError::BufferTooSmall {
            what,
            have: b.size(),
            need,
        });
    }
    Ok(())
}

/// `out[j, :] = table[ids[j], :] * scale` for `j < n_ids`; `table` is `[vocab, channels]`.
/// Ids `>= vocab` give zero rows and an [`EmbedError::IdOutOfRange`] after the run.
pub fn embedding_gather(
    device: &Device,
    table: &DeviceTensor,
    ids: &Buffer,
    n_ids: usize,
    scale: EmbedScale,
) -> Result<DeviceTensor, EmbedError> {
    embedding_gather_with_stats(device, table, ids, n_ids, scale).map(|(out, _)| out)
}

/// [`embedding_gather`] that also returns the run statistics (on the simulator: the timing
/// model's device-time ESTIMATE).
pub fn embedding_gather_with_stats(
    device: &Device,
    table: &DeviceTensor,
    ids: &Buffer,
    n_ids: usize,
    scale: EmbedScale,
) -> Result<(DeviceTensor, tt_safe::RunStats), EmbedError> {
    let factor = match scale {
        EmbedScale::None => None,
        EmbedScale::SqrtChannels => Some((table.cols() as f64).sqrt() as f32),
        EmbedScale::Factor(f) => Some(f),
    };
    let (out, word, stats) = row_gather(device, table, ids, n_ids, n_ids, 0, factor)?;
    if word != 0 {
        return Err(EmbedError::IdOutOfRange {
            count: word,
            vocab: table.rows(),
        });
    }
    Ok((out, stats))
}

/// Repeats row `i` of `x` (`[T, C]`) `durations[i]` times (`T` = `n_durations`). The output has
/// `capacity` rows; rows past the total are zero. Returns the output and the total number of rows
/// (the integer sum of the durations, computed on device); a total over `capacity` is an
/// [`EmbedError::OverCapacity`].
pub fn expand_durations(
    device: &Device,
    x: &DeviceTensor,
    durations: &Buffer,
    n_durations: usize,
    capacity: usize,
) -> Result<(DeviceTensor, usize), EmbedError> {
    expand_durations_with_stats(device, x, durations, n_durations, capacity)
        .map(|(out, total, _)| (out, total))
}

/// [`expand_durations`] that also returns the run statistics (on the simulator: the timing
/// model's device-time ESTIMATE).
pub fn expand_durations_with_stats(
    device: &Device,
    x: &DeviceTensor,
    durations: &Buffer,
    n_durations: usize,
    capacity: usize,
) -> Result<(DeviceTensor, usize, tt_safe::RunStats), EmbedError> {
    if n_durations != x.rows() {
        return Err(EmbedError::Shape {
            what: "number of durations (must equal the rows of x)",
            value: n_durations,
            limit: x.rows(),
        });
    }
    let (out, total, stats) = row_gather(device, x, durations, n_durations, capacity, 1, None)?;
    if total as usize > capacity {
        return Err(EmbedError::OverCapacity {
            total: u64::from(total),
            capacity,
        });
    }
    Ok((out, total as usize, stats))
}

/// How output tile rows are split over cores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSplit {
    /// `(core, first tile row, number of tile rows)` per core used.
    pub parts: Vec<(CoreCoord, u32, u32)>,
}

/// Splits `tile_rows` output tile rows over at most `max_cores` cores of a `grid_x`-wide grid
/// (row-major), balanced to within one tile row.
pub fn split_rows(tile_rows: usize, max_cores: usize, grid_x: u32) -> RowSplit {
    let cores = tile_rows.min(max_cores).max(1);
    let base = tile_rows / cores;
    let extra = tile_rows % cores;
    let mut parts = Vec::with_capacity(cores);
    let mut first = 0u32;
    for i in 0..cores {
        let n = (base + usize::from(i < extra)) as u32;
        let c = CoreCoord::new(i as u32 % grid_x, i as u32 / grid_x);
        parts.push((c, first, n));
        first += n;
    }
    RowSplit { parts }
}

fn row_gather(
    device: &Device,
    src: &DeviceTensor,
    index: &Buffer,
    n_index: usize,
    out_rows: usize,
    mode: u32,
    factor: Option<f32>,
) -> Result<(DeviceTensor, u32, tt_safe::RunStats), EmbedError> {
    check("source rows", src.rows(), MAX_INDEX)?;
    check("channels", src.cols(), MAX_INDEX)?;
    check("number of indices", n_index, MAX_INDEX)?;
    check("output rows", out_rows, MAX_INDEX)?;
    let bf = DataFormat::Float16_b;
    let tile_bytes = bf.tile_size_bytes() as u64;
    if src.format() != bf {
        return Err(EmbedError::Format(src.format()));
    }
    let src_tr = src.rows().div_ceil(TILE);
    let tc = src.cols().div_ceil(TILE);
    check_size(
        "source matrix",
        src.buffer(),
        (src_tr * tc) as u64 * tile_bytes,
    )?;
    check_size(
        "index buffer",
        index,
        (n_index.div_ceil(INDEX_PAGE_ENTRIES) as u64) * u64::from(INDEX_PAGE_BYTES),
    )?;
    let out_tr = out_rows.div_ceil(TILE);
    let out = Buffer::dram(device, (out_tr * tc) as u64 * tile_bytes, tile_bytes as u32)?;
    let aux = Buffer::dram(device, u64::from(AUX_BYTES), AUX_BYTES)?;

    let grid = device.grid();
    let split = split_rows(out_tr, grid.num_cores(), grid.size.x);
    let mut program = Program::new(device)?;
    let mut reader_ct = src.buffer().accessor_args()?;
    reader_ct.extend(index.accessor_args()?);
    reader_ct.extend(aux.accessor_args()?);
    reader_ct.extend([mode, CB_IN, CB_SCRATCH]);
    let mut writer_ct = out.accessor_args()?;
    writer_ct.push(CB_OUT);
    let cores: Vec<_> = split
        .parts
        .iter()
        .map(|(c, _, _)| tt_safe::CoreRange::single(*c))
        .collect();
    for range in &cores {
        let c = range.start;
        program.add_circular_buffer(c, CbConfig::tiles(CB_IN, bf, 2))?;
        program.add_circular_buffer(c, CbConfig::tiles(CB_OUT, bf, 2))?;
        program.add_circular_buffer(
            c,
            CbConfig {
                total_size: 512,
                formats: vec![CbFormat {
                    index: CB_SCRATCH,
                    format: DataFormat::UInt32,
                    page_size: 512,
                }],
                globally_allocated: None,
            },
        )?;
    }
    let reader = program.add_kernel(
        KernelSpec::new(
            "embed_reader_row_gather",
            kernels::OPS_EMBED_READER_ROW_GATHER,
            KernelKind::riscv0(),
            cores.clone(),
        )
        .compile_args(reader_ct),
    )?;
    let compute = program.add_kernel(
        KernelSpec::new(
            "embed_scale_rows",
            kernels::OPS_EMBED_SCALE_ROWS,
            KernelKind::compute(ComputeConfig::default()),
            cores.clone(),
        )
        .compile_args(vec![
            u32::from(factor.is_some()),
            factor.unwrap_or(1.0).to_bits(),
            CB_IN,
            CB_OUT,
        ]),
    )?;
    let writer = program.add_kernel(
        KernelSpec::new(
            "writer_unary",
            kernels::DATAFLOW_WRITER_UNARY,
            KernelKind::riscv1(),
            cores,
        )
        .compile_args(writer_ct),
    )?;
    for (i, (c, first, n)) in split.parts.iter().enumerate() {
        program.set_runtime_args(
            reader,
            *c,
            &[
                src.buffer().address_u32()?,
                index.address_u32()?,
                aux.address_u32()?,
                *first,
                *n,
                tc as u32,
                src.rows() as u32,
                n_index as u32,
                u32::from(i == 0),
            ],
        )?;
        program.set_runtime_args(compute, *c, &[*n * tc as u32])?;
        program.set_runtime_args(
            writer,
            *c,
            &[out.address_u32()?, *n * tc as u32, *first * tc as u32],
        )?;
    }
    let stats = device.run(&program)?;
    let aux_bytes = aux.read()?;
    let word = u32::from_le_bytes([aux_bytes[0], aux_bytes[1], aux_bytes[2], aux_bytes[3]]);
    // Zero rows fill the row padding; the column padding is copied from the source.
    let out = DeviceTensor::from_parts(out, out_rows, src.cols(), bf, src.pad_is_zero())?;
    Ok((out, word, stats))
}

/// CPU reference of [`embedding_gather`] in f64: `table` row-major `[vocab, channels]`.
/// Out-of-range ids give zero rows.
pub fn gather_reference(table: &[f32], channels: usize, ids: &[u32], scale: f64) -> Vec<f64> {
    let vocab = table.len() / channels.max(1);
    let mut out = vec![0f64; ids.len() * channels];
    for (j, &id) in ids.iter().enumerate() {
        if (id as usize) < vocab {
            for c in 0..channels {
                out[j * channels + c] = f64::from(table[id as usize * channels + c]) * scale;
            }
        }
    }
    out
}

/// CPU reference of [`expand_durations`] in f64: `x` row-major `[T, channels]`, output
/// `[capacity, channels]` (zero past the total). Returns the output and the total.
pub fn expand_reference(
    x: &[f32],
    channels: usize,
    durations: &[u32],
    capacity: usize,
) -> (Vec<f64>, usize) {
    let mut out = vec![0f64; capacity * channels];
    let mut j = 0usize;
    for (i, &d) in durations.iter().enumerate() {
        for _ in 0..d {
            if j < capacity {
                for c in 0..channels {
                    out[j * channels + c] = f64::from(x[i * channels + c]);
                }
            }
            j += 1;
        }
    }
    (out, j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_balanced_and_covers_all_rows() {
        let s = split_rows(10, 4, 8);
        let ns: Vec<u32> = s.parts.iter().map(|p| p.2).collect();
        assert_eq!(ns, vec![3, 3, 2, 2]);
        let firsts: Vec<u32> = s.parts.iter().map(|p| p.1).collect();
        assert_eq!(firsts, vec![0, 3, 6, 8]);
        let s = split_rows(100, 64, 8);
        assert_eq!(s.parts.len(), 64);
        assert_eq!(s.parts.iter().map(|p| p.2).sum::<u32>(), 100);
        assert_eq!(s.parts[63].0, CoreCoord::new(7, 7));
    }

    #[test]
    fn references() {
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (out, total) = expand_reference(&x, 2, &[2, 0, 1], 4);
        assert_eq!(total, 3);
        assert_eq!(out, vec![1.0, 2.0, 1.0, 2.0, 5.0, 6.0, 0.0, 0.0]);
        let g = gather_reference(&x, 2, &[2, 0, 9], 2.0);
        assert_eq!(g, vec![10.0, 12.0, 2.0, 4.0, 0.0, 0.0]);
    }
}
