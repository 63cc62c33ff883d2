//! Device buffers: DRAM or L1, interleaved or L1-sharded. RAII: the device memory is freed when
//! the [`Buffer`] (and every program that uses it as a circular buffer backing) is dropped.

use std::sync::Arc;

use bytemuck::Pod;

use crate::device::{Device, DeviceInner};
use crate::error::{BufferError, ShardSpecError, Status};
use crate::ffi::{BufferDesc, RawBuffer, ShardDesc};
use crate::grid::{CoreRange, CoreRangeSet, CoreSpec, Grid};

/// Where a buffer lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BufferKind {
    /// Device DRAM, pages interleaved over the banks.
    Dram,
    /// Worker L1, pages interleaved over every worker core, or sharded (see [`ShardSpec`]).
    L1,
}

impl BufferKind {
    fn name(self) -> &'static str {
        match self {
            BufferKind::Dram => "DRAM",
            BufferKind::L1 => "L1",
        }
    }
}

/// How a sharded tensor is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShardLayout {
    /// Shards are full-width row bands; one per core.
    Height,
    /// Shards are full-height column bands; one per core.
    Width,
    /// A 2D grid of shards on a rectangle of cores.
    Block,
}

impl ShardLayout {
    fn name(self) -> &'static str {
        match self {
            ShardLayout::Height => "height sharded",
            ShardLayout::Width => "width sharded",
            ShardLayout::Block => "block sharded",
        }
    }
    fn raw(self) -> u32 {
        use tt_sys::tt_buffer_layout as l;
        match self {
            ShardLayout::Height => l::TT_LAYOUT_HEIGHT_SHARDED,
            ShardLayout::Width => l::TT_LAYOUT_WIDTH_SHARDED,
            ShardLayout::Block => l::TT_LAYOUT_BLOCK_SHARDED,
        }
    }
}

/// Order in which shards are given to cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ShardOrientation {
    /// Along x first (block: shard rows go to core rows).
    #[default]
    RowMajor,
    /// Along y first (block: shard rows go to core columns).
    ColMajor,
}

/// A sharded buffer description (TT-Metal `ShardSpecBuffer`). Shapes are `[height, width]` in
/// elements. Partial shards follow TT-Metal: the last shard along an axis may be partly empty
/// when the shard shape does not divide the tensor, as long as enough cores exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSpec {
    /// Cores holding shards, in shard order (ranges are walked in the given order).
    pub cores: CoreRangeSet,
    /// How the tensor is cut.
    pub layout: ShardLayout,
    /// Shard shape in elements; a multiple of `page_shape`.
    pub shard_shape: [u32; 2],
    /// Page shape in elements (`[32, 32]` for tiles).
    pub page_shape: [u32; 2],
    /// Whole tensor in elements; a multiple of `page_shape`.
    pub tensor_shape: [u32; 2],
    /// Shard order.
    pub orientation: ShardOrientation,
}

/// What a validated [`ShardSpec`] amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardGeometry {
    /// Shards along the tensor height and width.
    pub shards_hw: [u32; 2],
    /// Cores that get a shard.
    pub num_shards: u32,
    /// Pages in one (full) shard.
    pub pages_per_shard: u64,
    /// Pages in the whole tensor.
    pub total_pages: u64,
}

impl ShardSpec {
    /// A tiled spec (`page_shape = [32, 32]`).
    pub fn tiled(
        cores: impl Into<CoreRangeSet>,
        layout: ShardLayout,
        shard_shape: [u32; 2],
        tensor_shape: [u32; 2],
    ) -> ShardSpec {
        ShardSpec {
            cores: cores.into(),
            layout,
            shard_shape,
            page_shape: [32, 32],
            tensor_shape,
            orientation: ShardOrientation::RowMajor,
        }
    }

    /// Checks the spec against a worker grid and the TT-Metal sharding rules.
    pub fn validate(&self, grid: Grid) -> Result<ShardGeometry, ShardSpecError> {
        let cores = grid.validate("shard spec cores", &self.cores)?;
        let [sh, sw] = self.shard_shape;
        let [ph, pw] = self.page_shape;
        let [th, tw] = self.tensor_shape;
        for (what, [h, w]) in [
            ("shard shape", self.shard_shape),
            ("page shape", self.page_shape),
            ("tensor shape", self.tensor_shape),
        ] {
            if h == 0 || w == 0 {
                return Err(ShardSpecError::ZeroDim { what, h, w });
            }
        }
        if !sh.is_multiple_of(ph) || !sw.is_multiple_of(pw) {
            return Err(ShardSpecError::ShardNotWholePages { sh, sw, ph, pw });
        }
        if !th.is_multiple_of(ph) || !tw.is_multiple_of(pw) {
            return Err(ShardSpecError::TensorNotWholePages { th, tw, ph, pw });
        }
        let shards_hw = [th.div_ceil(sh), tw.div_ceil(sw)];
        let num_cores = cores.num_cores() as u32;
        let too_many = |needed: u32| ShardSpecError::TooManyShards {
            layout: self.layout.name(),
            tensor_h: th,
            tensor_w: tw,
            shard_h: sh,
            shard_w: sw,
            needed,
            cores: num_cores,
        };
        let num_shards = match self.layout {
            ShardLayout::Height => {
                if sw != tw {
                    return Err(ShardSpecError::HeightShardWidth {
                        shard_w: sw,
                        tensor_w: tw,
                    });
                }
                shards_hw[0]
            }
            ShardLayout::Width => {
                if sh != th {
                    return Err(ShardSpecError::WidthShardHeight {
                        shard_h: sh,
                        tensor_h: th,
                    });
                }
                shards_hw[1]
            }
            ShardLayout::Block => {
                if cores.ranges().len() != 1 {
                    return Err(ShardSpecError::BlockNotRectangle {
                        ranges: cores.ranges().len(),
                        cores: num_cores,
                    });
                }
                let r = cores.ranges()[0];
                let (orientation, along_h, along_w) = match self.orientation {
                    ShardOrientation::RowMajor => (
                        "row-major",
                        ("y (tensor height)", r.height()),
                        ("x (tensor width)", r.width()),
                    ),
                    ShardOrientation::ColMajor => (
                        "column-major",
                        ("x (tensor height)", r.width()),
                        ("y (tensor width)", r.height()),
                    ),
                };
                for (needed, (axis, have)) in [(shards_hw[0], along_h), (shards_hw[1], along_w)] {
                    if needed > have {
                        return Err(ShardSpecError::BlockGridTooSmall {
                            orientation,
                            axis,
                            needed,
                            have,
                        });
                    }
                }
                shards_hw[0] * shards_hw[1]
            }
        };
        if num_shards > num_cores {
            return Err(too_many(num_shards));
        }
        Ok(ShardGeometry {
            shards_hw,
            num_shards,
            pages_per_shard: u64::from(sh / ph) * u64::from(sw / pw),
            total_pages: u64::from(th / ph) * u64::from(tw / pw),
        })
    }

    fn desc(&self) -> ShardDesc {
        ShardDesc {
            ranges: self
                .cores
                .ranges()
                .iter()
                .map(|r| tt_sys::tt_core_range {
                    start: tt_sys::tt_core_coord {
                        x: r.start.x,
                        y: r.start.y,
                    },
                    end: tt_sys::tt_core_coord {
                        x: r.end.x,
                        y: r.end.y,
                    },
                })
                .collect(),
            shard_shape: self.shard_shape,
            page_shape: self.page_shape,
            tensor_shape_in_pages: [
                self.tensor_shape[0] / self.page_shape[0],
                self.tensor_shape[1] / self.page_shape[1],
            ],
            orientation: match self.orientation {
                ShardOrientation::RowMajor => tt_sys::tt_shard_orientation::TT_SHARD_ROW_MAJOR,
                ShardOrientation::ColMajor => tt_sys::tt_shard_orientation::TT_SHARD_COL_MAJOR,
            },
        }
    }
}

/// Everything needed to create a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferConfig {
    /// Bytes; a multiple of `page_size`.
    pub size: u64,
    /// Bytes per page (a tile in its data format, or a row).
    pub page_size: u32,
    /// DRAM or L1.
    pub kind: BufferKind,
    /// `Some` for an L1-sharded buffer.
    pub shard: Option<ShardSpec>,
}

impl BufferConfig {
    /// DRAM, interleaved.
    pub fn dram(size: u64, page_size: u32) -> BufferConfig {
        BufferConfig {
            size,
            page_size,
            kind: BufferKind::Dram,
            shard: None,
        }
    }
    /// L1, interleaved over all workers.
    pub fn l1(size: u64, page_size: u32) -> BufferConfig {
        BufferConfig {
            size,
            page_size,
            kind: BufferKind::L1,
            shard: None,
        }
    }
    /// L1, sharded; the size is the whole tensor (`total_pages * page_size`).
    pub fn sharded(page_size: u32, spec: ShardSpec) -> BufferConfig {
        let pages = u64::from(spec.tensor_shape[0] / spec.page_shape[0].max(1))
            * u64::from(spec.tensor_shape[1] / spec.page_shape[1].max(1));
        BufferConfig {
            size: pages * u64::from(page_size),
            page_size,
            kind: BufferKind::L1,
            shard: Some(spec),
        }
    }
}

pub(crate) struct BufferInner {
    pub(crate) device: Arc<DeviceInner>,
    raw: Option<RawBuffer>,
    pub(crate) config: BufferConfig,
    pub(crate) address: u64,
    pub(crate) per_core_bytes: u64,
}

impl BufferInner {
    pub(crate) fn raw(&self) -> &RawBuffer {
        // `raw` is `Some` from construction until drop.
        self.raw
            .as_ref()
            .unwrap_or_else(|| unreachable!("buffer handle used after destroy"))
    }
}

impl Drop for BufferInner {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            // Nothing useful can be done with a destroy failure in drop.
            let _ = self.device.ffi.buffer_destroy(raw);
        }
    }
}

/// A device buffer.
pub struct Buffer {
    pub(crate) inner: Arc<BufferInner>,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer")
            .field("kind", &self.inner.config.kind)
            .field("size", &self.inner.config.size)
            .field("page_size", &self.inner.config.page_size)
            .field("address", &format_args!("{:#x}", self.inner.address))
            .field(
                "sharded",
                &self.inner.config.shard.as_ref().map(|s| s.layout),
            )
            .finish()
    }
}

fn align(v: u64, a: u32) -> u64 {
    let a = u64::from(a.max(1));
    v.div_ceil(a) * a
}

impl Buffer {
    /// Creates a buffer. Validates sizes, the shard spec, and that L1 could hold it at all before
    /// asking the provider; the provider's out-of-memory message (how much is free) is surfaced in
    /// [`BufferError::OutOfMemory`].
    pub fn new(device: &Device, config: BufferConfig) -> Result<Buffer, BufferError> {
        let info = device.info();
        let BufferConfig {
            size,
            page_size,
            kind,
            ref shard,
        } = config;
        if size == 0 || page_size == 0 {
            return Err(BufferError::Zero { size, page_size });
        }
        if !size.is_multiple_of(u64::from(page_size)) {
            return Err(BufferError::NotWholePages { size, page_size });
        }
        let pages = size / u64::from(page_size);
        let per_core_bytes = match (kind, shard) {
            (BufferKind::Dram, Some(_)) => return Err(ShardSpecError::NotL1.into()),
            (BufferKind::Dram, None) => {
                pages.div_ceil(u64::from(info.num_dram_banks.max(1)))
                    * align(u64::from(page_size), info.dram_alignment)
            }
            (BufferKind::L1, None) => {
                pages.div_ceil(info.grid.num_cores() as u64)
                    * align(u64::from(page_size), info.l1_alignment)
            }
            (BufferKind::L1, Some(spec)) => {
                let g = spec.validate(info.grid)?;
                if g.total_pages * u64::from(page_size) != size {
                    return Err(ShardSpecError::SizeMismatch {
                        pages: g.total_pages,
                        page_size,
                        expected: g.total_pages * u64::from(page_size),
                        size,
                    }
                    .into());
                }
                g.pages_per_shard * align(u64::from(page_size), info.l1_alignment)
            }
        };
        if kind == BufferKind::L1 && per_core_bytes > info.l1_user_bytes() {
            return Err(BufferError::TooLargeForL1 {
                per_core: per_core_bytes,
                available: info.l1_user_bytes(),
                l1_size: info.l1_size,
                base: info.l1_unreserved_base,
            });
        }
        let desc = BufferDesc {
            size,
            page_size,
            buffer_type: match kind {
                BufferKind::Dram => tt_sys::tt_buffer_type::TT_BUFFER_DRAM,
                BufferKind::L1 => tt_sys::tt_buffer_type::TT_BUFFER_L1,
            },
            layout: shard
                .as_ref()
                .map_or(tt_sys::tt_buffer_layout::TT_LAYOUT_INTERLEAVED, |s| {
                    s.layout.raw()
                }),
            shard: shard.as_ref().map(ShardSpec::desc),
        };
        let ffi = &device.inner.ffi;
        let raw = ffi.buffer_create(&desc).map_err(|e| {
            if e.status == Status::OutOfMemory {
                BufferError::OutOfMemory {
                    memory: kind.name(),
                    size,
                    message: e.message,
                    alternative: match kind {
                        BufferKind::L1 => "DRAM",
                        BufferKind::Dram => "smaller tensors",
                    },
                }
            } else {
                BufferError::Provider(e)
            }
        })?;
        let mut inner = BufferInner {
            device: device.inner.clone(),
            raw: Some(raw),
            config,
            address: 0,
            per_core_bytes,
        };
        inner.address = ffi.buffer_address(inner.raw())?;
        Ok(Buffer {
            inner: Arc::new(inner),
        })
    }

    /// An interleaved DRAM buffer.
    pub fn dram(device: &Device, size: u64, page_size: u32) -> Result<Buffer, BufferError> {
        Self::new(device, BufferConfig::dram(size, page_size))
    }

    /// An interleaved L1 buffer.
    pub fn l1(device: &Device, size: u64, page_size: u32) -> Result<Buffer, BufferError> {
        Self::new(device, BufferConfig::l1(size, page_size))
    }

    /// An L1-sharded buffer holding the whole tensor of `spec`.
    pub fn sharded(
        device: &Device,
        page_size: u32,
        spec: ShardSpec,
    ) -> Result<Buffer, BufferError> {
        Self::new(device, BufferConfig::sharded(page_size, spec))
    }

    /// Device address: DRAM offset inside each bank, or the L1 address (the same on every core).
    pub fn address(&self) -> u64 {
        self.inner.address
    }

    /// [`Buffer::address`] as a 32-bit runtime argument.
    pub fn address_u32(&self) -> Result<u32, BufferError> {
        u32::try_from(self.inner.address)
            .map_err(|_| BufferError::AddressTooWide(self.inner.address))
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.inner.config.size
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> u32 {
        self.inner.config.page_size
    }

    /// Number of pages.
    pub fn num_pages(&self) -> u64 {
        self.inner.config.size / u64::from(self.inner.config.page_size)
    }

    /// DRAM or L1.
    pub fn kind(&self) -> BufferKind {
        self.inner.config.kind
    }

    /// The shard spec of a sharded buffer.
    pub fn shard_spec(&self) -> Option<&ShardSpec> {
        self.inner.config.shard.as_ref()
    }

    /// The cores a sharded buffer lives on, or `None` when interleaved.
    pub fn shard_cores(&self) -> Option<&CoreRangeSet> {
        self.inner.config.shard.as_ref().map(|s| &s.cores)
    }

    /// Bytes the buffer occupies on its busiest core (L1) or bank (DRAM).
    pub fn bytes_per_core(&self) -> u64 {
        self.inner.per_core_bytes
    }

    /// The device this buffer belongs to.
    pub fn device(&self) -> Device {
        Device {
            inner: self.inner.device.clone(),
        }
    }

    fn check_range(&self, op: &'static str, offset: u64, len: usize) -> Result<(), BufferError> {
        let size = self.size();
        let len = len as u64;
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(BufferError::OutOfRange {
                op,
                offset,
                len,
                size,
            });
        }
        Ok(())
    }

    /// Writes `data` at byte `offset` (host data in page order of the whole tensor).
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), BufferError> {
        self.check_range("write", offset, data.len())?;
        Ok(self
            .inner
            .device
            .ffi
            .buffer_write(self.inner.raw(), offset, data)?)
    }

    /// Writes `data` from the start of the buffer (it may be shorter than the buffer).
    pub fn write(&self, data: &[u8]) -> Result<(), BufferError> {
        self.write_at(0, data)
    }

    /// Writes a slice of plain values (`f32`, `u16`, `u32`, ...).
    pub fn write_slice<T: Pod>(&self, data: &[T]) -> Result<(), BufferError> {
        self.write_at(0, bytemuck::cast_slice(data))
    }

    /// Reads `out.len()` bytes from byte `offset`.
    pub fn read_at(&self, offset: u64, out: &mut [u8]) -> Result<(), BufferError> {
        self.check_range("read", offset, out.len())?;
        Ok(self
            .inner
            .device
            .ffi
            .buffer_read(self.inner.raw(), offset, out)?)
    }

    /// Reads the whole buffer.
    pub fn read(&self) -> Result<Vec<u8>, BufferError> {
        let len = usize::try_from(self.size()).map_err(|_| BufferError::OutOfRange {
            op: "read",
            offset: 0,
            len: self.size(),
            size: self.size(),
        })?;
        let mut out = vec![0u8; len];
        self.read_at(0, &mut out)?;
        Ok(out)
    }

    /// Reads the whole buffer as plain values.
    pub fn read_vec<T: Pod>(&self) -> Result<Vec<T>, BufferError> {
        let elem = size_of::<T>();
        if elem == 0 || !self.size().is_multiple_of(elem as u64) {
            return Err(BufferError::NotWholeElements {
                size: self.size(),
                elem,
            });
        }
        let bytes = self.read()?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Page size rounded up to the buffer's alignment (DRAM or L1), the stride between pages in a
    /// bank or core (TT-Metal `Buffer::aligned_page_size`).
    pub fn aligned_page_size(&self) -> u32 {
        let info = &self.inner.device.info;
        let a = match self.kind() {
            BufferKind::Dram => info.dram_alignment,
            BufferKind::L1 => info.l1_alignment,
        };
        align(u64::from(self.page_size()), a) as u32
    }

    /// Compile-time args of a `TensorAccessorArgs<offset>()` for this (interleaved) buffer, in
    /// TT-Metal 0.81's layout: `[ArgsConfig bits (IsDram = 2), aligned page size]`. Append them to
    /// a kernel's compile args at the offset the kernel reads them from.
    pub fn accessor_args(&self) -> Result<Vec<u32>, BufferError> {
        if self.shard_spec().is_some() {
            return Err(BufferError::ShardedAccessor);
        }
        let config = match self.kind() {
            BufferKind::Dram => 2,
            BufferKind::L1 => 0,
        };
        Ok(vec![config, self.aligned_page_size()])
    }

    /// The single core range of a sharded buffer's cores, for block-sharded programs.
    pub fn shard_rectangle(&self) -> Option<CoreRange> {
        self.shard_cores()
            .filter(|c| c.ranges().len() == 1)
            .map(|c| c.ranges()[0])
    }
}

impl CoreSpec for Buffer {
    /// The cores of a sharded buffer (empty for interleaved buffers).
    fn to_ranges(&self) -> Vec<CoreRange> {
        self.shard_cores()
            .map(|c| c.ranges().to_vec())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::range;

    fn grid() -> Grid {
        Grid::new(8, 8)
    }

    #[test]
    fn height_sharding_rules() {
        let ok = ShardSpec::tiled(range(0, 0, 3, 0), ShardLayout::Height, [64, 96], [256, 96]);
        let g = ok.validate(grid()).unwrap();
        assert_eq!((g.num_shards, g.pages_per_shard, g.total_pages), (4, 6, 24));
        // Partial last shard: 224 rows in 64-row shards = 4 shards, the last half full.
        let partial = ShardSpec::tiled(range(0, 0, 3, 0), ShardLayout::Height, [64, 96], [224, 96]);
        assert_eq!(partial.validate(grid()).unwrap().num_shards, 4);
        let wide = ShardSpec::tiled(range(0, 0, 3, 0), ShardLayout::Height, [64, 64], [256, 96]);
        let msg = wide.validate(grid()).unwrap_err().to_string();
        assert!(
            msg.contains("as wide as the tensor (96") && msg.contains("64 wide"),
            "{msg}"
        );
        let many = ShardSpec::tiled(range(0, 0, 2, 0), ShardLayout::Height, [64, 96], [256, 96]);
        let msg = many.validate(grid()).unwrap_err().to_string();
        assert!(
            msg.contains("needs 4 shards") && msg.contains("only 3 cores"),
            "{msg}"
        );
    }

    #[test]
    fn shard_shape_must_be_whole_pages() {
        let s = ShardSpec::tiled(range(0, 0, 3, 0), ShardLayout::Height, [48, 96], [192, 96]);
        let msg = s.validate(grid()).unwrap_err().to_string();
        assert!(
            msg.contains("48x96") && msg.contains("32x32") && msg.contains("64x96"),
            "{msg}"
        );
        let z = ShardSpec::tiled(range(0, 0, 3, 0), ShardLayout::Width, [0, 32], [32, 96]);
        assert!(matches!(
            z.validate(grid()),
            Err(ShardSpecError::ZeroDim { .. })
        ));
    }

    #[test]
    fn width_and_block_rules() {
        let w = ShardSpec::tiled(range(0, 0, 2, 0), ShardLayout::Width, [64, 32], [64, 96]);
        assert_eq!(w.validate(grid()).unwrap().num_shards, 3);
        let bad = ShardSpec::tiled(range(0, 0, 2, 0), ShardLayout::Width, [32, 32], [64, 96]);
        assert!(
            bad.validate(grid())
                .unwrap_err()
                .to_string()
                .contains("as tall as the tensor (64")
        );

        let b = ShardSpec::tiled(range(0, 0, 2, 1), ShardLayout::Block, [32, 64], [64, 192]);
        let g = b.validate(grid()).unwrap();
        assert_eq!((g.shards_hw, g.num_shards), ([2, 3], 6));
        let mut col = b.clone();
        col.orientation = ShardOrientation::ColMajor;
        let msg = col.validate(grid()).unwrap_err().to_string();
        assert!(
            msg.contains("column-major") && msg.contains("puts 3 shards") && msg.contains("only 2"),
            "{msg}"
        );
        let two = ShardSpec {
            cores: CoreRangeSet::new(vec![range(0, 0, 1, 0), range(0, 1, 1, 1)]).unwrap(),
            ..b.clone()
        };
        assert!(matches!(
            two.validate(grid()),
            Err(ShardSpecError::BlockNotRectangle { .. })
        ));
        let outside = ShardSpec::tiled(range(6, 0, 8, 1), ShardLayout::Block, [32, 64], [64, 192]);
        assert!(
            outside
                .validate(grid())
                .unwrap_err()
                .to_string()
                .contains("8x8 worker grid")
        );
    }
}
