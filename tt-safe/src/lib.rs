//! Safe layer (see crate docs once written).
