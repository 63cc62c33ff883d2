//! The versioned C ABI between host code and a Tenstorrent device provider (`include/tt_shim.h`).
//!
//! A provider fills a table of C function pointers (`tt_shim_api`) with opaque handles for devices,
//! buffers and programs. Two providers exist: **metal** (`shim/metal/tt_shim_metal.cpp` over the
//! TT-Metal 0.81-era mesh API, a shared library loaded at run time) and **sim** (the `tt-sim` crate,
//! in process). This crate has three levels:
//!
//! 1. **Raw bindings** (crate root): bindgen output of `tt_shim.h`, committed in `src/bindings.rs`.
//!    Enums are modules of constants (`tt_status::Type`, `tt_status::TT_OK`, ...), struct fields that
//!    hold enum values are plain `u32`. Regenerate with `tt-sys/regen-bindings.sh` after changing the
//!    header; the build never needs libclang. Struct layouts are checked at compile time (bindgen) and
//!    by unit tests.
//! 2. **Loader** ([`loader`]): [`Api`] is a checked table plus the `Arc`-held library that contains its
//!    code. [`Api::load`] opens a library by path, [`Api::load_default`] searches `$TT_SHIM_LIB`, the
//!    library `build.rs` built, the executable's directory, TT-Metal build directories and finally the
//!    dynamic loader's path; [`Api::from_get_api`] / [`Api::from_table`] wrap an in-process provider.
//!    Every table is checked for ABI version, size and completeness; failures are [`LoadError`]s that
//!    say what to do.
//! 3. **Result wrappers** ([`result`]): one method per table function on [`Api`], returning
//!    `Result<_, ShimError>` with the status and the provider's per-thread message. Methods that take
//!    handles are `unsafe fn`: the caller (the safe layer, `tt-safe`) guarantees handle validity,
//!    one-thread-at-a-time use and destruction order.
//!
//! The metal provider is compiled by `build.rs` only where `TT_METAL_HOME` / `TT_METAL_RUNTIME_ROOT`
//! names a TT-Metal tree with headers and `libtt_metal.so`; elsewhere the build stays quiet and
//! [`loader::METAL_BUILD_NOTE`] says why it was skipped. See `tt-sys/README.md` for the details and
//! for what has and has not been verified against real TT-Metal.

#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    missing_docs,
    clippy::all
)]
mod bindings;

pub use bindings::*;

pub mod loader;
pub mod result;

pub use loader::{Api, LoadError};
pub use result::{ShimError, status_name};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Api>();
    }

    #[test]
    fn abi_version_is_exported() {
        // The header says `#define TT_SHIM_ABI_VERSION 1u`.
        assert_eq!(TT_SHIM_ABI_VERSION, 1);
        assert_eq!(tt_status::TT_OK, 0);
        assert_eq!(tt_status::TT_ERR_INTERNAL, 9);
        assert_eq!(tt_data_format::TT_DF_FLOAT16_B, 5);
        assert_eq!(tt_data_format::TT_DF_INVALID, 0xff);
    }

    #[test]
    fn struct_sizes_match_lp64_c() {
        // Sizes worked out by hand from the C declarations under LP64 (pointers 8 bytes, u64 aligned 8).
        // bindgen's compile-time asserts check every field offset against libclang; these pin the totals.
        assert_eq!(size_of::<tt_core_coord>(), 8);
        assert_eq!(size_of::<tt_core_range>(), 16);
        assert_eq!(size_of::<tt_core_range_set>(), 16); // ptr + u32 + pad
        assert_eq!(size_of::<tt_device_open_options>(), 16);
        assert_eq!(size_of::<tt_device_info>(), 64); // 9*u32 + pad + u64 + 4*u32
        assert_eq!(size_of::<tt_run_stats>(), 32);
        // core (2*u32) + 2*u32 + 4*u64.
        assert_eq!(size_of::<tt_thread_profile>(), 48);
        // 2*u32 + name ptr + last_error + 6 device + 5 buffer + 8 program function pointers
        // + 3 appended profile functions.
        assert_eq!(size_of::<tt_shim_api>(), 8 + 8 + 23 * 8);
    }
}
