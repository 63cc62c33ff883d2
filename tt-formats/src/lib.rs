//! Pure shared data for the device stack (see crate docs once written).
