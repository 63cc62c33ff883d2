//! Pure shared device data for the tensix-tts stack: the one place that knows data formats, tile
//! layout, scalar and block-float codecs, architecture constants, core coordinates, NoC address
//! encodings and buffer page placement. Both the simulator (`tt-sim`) and the safe layer (`tt-safe`)
//! use it; nothing here touches a device, allocates device memory or does I/O.
//!
//! # Contract
//! - [`format`]: [`DataFormat`] with TT-Metal's numeric values (`tt_shim.h` `tt_data_format`), page
//!   sizes per 32x32 tile.
//! - [`tile`]: 32x32 tiles made of four 16x16 faces; [`tilize`]/[`untilize`] between row-major
//!   matrices and tile order.
//! - [`scalar`]: bf16 and TF32 conversions. `*_host_*` functions reproduce what TT-Metal's host
//!   library does (round to nearest even); `*_device_*` functions reproduce what the Tensix packer
//!   and unpacker do (as modelled bit-exactly by Tenstorrent's `ttsim`).
//! - [`bfp`]: Bfp8_b / Bfp4_b / Bfp2_b tile codecs (host encoder, device packer, decoder).
//! - [`codec`]: whole-tile pack/unpack for every supported format ([`encode_tile_host`],
//!   [`encode_tile_device`], [`decode_tile`]).
//! - [`arch`]: per-architecture constants ([`ArchSpec`]) and the logical-worker / DRAM-bank / NoC
//!   coordinate maps.
//! - [`coords`]: [`CoreCoord`], [`CoreRange`], [`CoreRangeSet`].
//! - [`noc`]: NoC unicast and multicast address encodings.
//! - [`placement`]: interleaved and sharded page placement.
//!
//! Every function that takes user-controlled sizes returns a `Result` with an error that says what
//! was wrong; nothing here panics on bad input.

pub mod arch;
pub mod bfp;
pub mod codec;
pub mod coords;
pub mod format;
pub mod noc;
pub mod placement;
pub mod scalar;
pub mod tile;

pub use arch::{Arch, ArchSpec, NocTarget};
pub use bfp::PackSrc;
pub use codec::{
    PackerConfig, decode_tile, encode_tile_device, encode_tile_device_with, encode_tile_host,
    encode_tile_host_into,
};
pub use coords::{CoordError, CoreCoord, CoreRange, CoreRangeSet};
pub use format::{DataFormat, FormatError};
pub use noc::{NocAddr, NocMcastAddr, noc_addr, noc_multicast_addr};
pub use placement::{
    PlacementError, ShardLayout, ShardOrientation, ShardSpec, ShardedPageMap,
    interleaved_page_location,
};
pub use scalar::{bf16_to_f32, f32_to_bf16_device, f32_to_bf16_host, tf32_truncate};
pub use tile::{
    FACE_H, FACE_HW, FACE_W, NUM_FACES, TILE_H, TILE_HW, TILE_W, tile_offset, tilize, untilize,
};
