//! `tts`: Piper voices from the command line.
//!
//! - `tts synth --voice V.onnx (--text T | --phonemes P | --ids 1,0,20,... | stdin) --out out.wav`
//! - `tts bench --voice V.onnx [--text T | --ids ...] [--threads N] [--runs N]`
//! - `tts phonemize --voice V.onnx --text T` (phonemes and ids, for debugging)
//!
//! Errors are printed as one clear message and exit with status 1 (2 for bad arguments); output
//! files are written atomically, so a failed run leaves none behind.

#[path = "../cli/mod.rs"]
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
