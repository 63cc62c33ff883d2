//! tts-model (see crate docs once written).
