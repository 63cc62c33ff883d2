//! Precision plans (in progress).
