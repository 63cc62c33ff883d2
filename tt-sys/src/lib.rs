//! Raw C ABI bindings of `tt-sys/include/tt_shim.h` (crate docs are completed with the loader).

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
        // 2*u32 + name ptr + last_error + 6 device + 5 buffer + 8 program function pointers.
        assert_eq!(size_of::<tt_shim_api>(), 8 + 8 + 20 * 8);
    }
}
