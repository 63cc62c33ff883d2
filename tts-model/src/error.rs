//! Errors of the model side of the crate (voice loading and synthesis).
#![deny(unsafe_code)]

use std::path::PathBuf;

/// Everything that can go wrong while loading a voice or synthesizing with it.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    /// The voice file (or its `.onnx.json` config) could not be opened or read.
    #[error(
        "cannot read voice file {path}: {source} (pass the path of a Piper `.onnx` voice; \
             its `.onnx.json` config must sit beside it; tts-model/scripts/fetch-voice.sh fetches one)"
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The `.onnx` file is not a complete ONNX protobuf (truncated download, wrong file).
    #[error("{path} is not a valid ONNX model ({detail}); re-download the voice")]
    CorruptModel {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        detail: String,
    },
    /// The `.onnx.json` config could not be parsed.
    #[error("invalid voice config {path}: {detail}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The config and the weights disagree (e.g. a phoneme id beyond the embedding table).
    #[error(
        "voice config and weights disagree: {0}; the .onnx and .onnx.json are probably from different voices"
    )]
    Mismatch(String),
    /// The model is not a Piper VITS export this crate knows how to run.
    #[error("unsupported voice architecture: {0}")]
    Unsupported(String),
    /// A weight tensor is missing or has an unexpected shape or type.
    #[error("weight {name}: {detail}")]
    Weight {
        /// Module path of the weight (e.g. `dec.conv_pre.weight`).
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// Bad input to synthesis (empty id list, id out of range, unknown speaker, bad scale).
    #[error("invalid synthesis input: {0}")]
    Input(String),
    /// The thread pool could not be created.
    #[error("cannot start {threads} worker threads: {detail}")]
    Threads {
        /// Requested thread count.
        threads: usize,
        /// What rayon said.
        detail: String,
    },
}

/// Result alias for this crate's model side.
pub type Result<T, E = TtsError> = std::result::Result<T, E>;
