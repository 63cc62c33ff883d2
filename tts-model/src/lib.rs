//! tts-model: Piper/VITS voices, the phonemizer, the TTS pipeline on backends, and the `tts` binary.
//!
//! Contract of the model side:
//! - [`voice::Voice::load`] reads any Piper voice (`<voice>.onnx` + `<voice>.onnx.json`): the ONNX
//!   protobuf is memory-mapped and decoded with a hand-written message subset ([`onnx`]), weights are
//!   renamed to their PyTorch module paths and hyper-parameters are detected from tensor shapes, so
//!   all quality tiers and multi-speaker voices load. Failures are typed ([`TtsError`]).
//! - [`backend::Backend`] is the stage interface (encoder, duration predictor, flow, decoder) that the
//!   `cpu` (reference, [`cpu::CpuBackend`]), `tt` and `cuda` backends implement.
//! - [`synth::Synthesizer`] turns phoneme ids into audio on a backend: integer alignment, seeded
//!   noise, and a chunked flow + decoder with exact context that can be streamed
//!   ([`synth::Synthesizer::stream_ids`]). With noise off the CPU backend matches onnxruntime
//!   (tests/golden.rs).
//! - [`phonemize`] turns text into ids (espeak-ng, Piper's rules).

pub mod backend;
pub mod cpu;
pub mod error;
pub mod onnx;
pub mod phonemize;
pub mod precision;
pub mod quality;
pub mod synth;
mod sys;
pub mod tt;
pub mod voice;

pub use backend::{Backend, Encoded};
pub use error::TtsError;
pub use synth::{Audio, AudioStream, ChunkOptions, SynthOptions, Synthesizer};
pub use voice::{Hparams, Voice, VoiceConfig};
