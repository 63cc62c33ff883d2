//! The `tts` command line (work in progress).
fn main() {}
