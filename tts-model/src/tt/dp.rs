//! The stochastic duration predictor on the device (work in progress: not yet wired into
//! [`super::TtBackend`]; the backend still runs this stage on the cpu backend, see
//! [`super::HOST_STEPS`]).
