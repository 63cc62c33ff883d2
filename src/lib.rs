//! tt-kernels: the typed catalogue of handwritten TT-Metal kernels (`kernels/`) and the host-side op
//! builders (program factories) that plan L1, core grids and multicast and run them on a `tt-safe`
//! device. Ops land with issue #4; this crate currently only re-exports the device stack.
pub use tt_safe;
