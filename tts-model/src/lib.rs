//! tts-model: Piper/VITS voices, the phonemizer, the TTS pipeline on backends, and the `tts` binary.
//! (Crate documentation is being written; see README.)

pub mod phonemize;
