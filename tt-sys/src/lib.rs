//! Raw C ABI bindings (see crate docs once written).
