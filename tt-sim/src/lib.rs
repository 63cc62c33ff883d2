//! The simulator (see crate docs once written).
