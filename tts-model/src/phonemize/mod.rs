//! Text to phoneme ids with espeak-ng loaded at run time and Piper's rules (work in progress).
