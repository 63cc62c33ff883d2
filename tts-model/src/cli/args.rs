//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Default limit on the input text size (bytes); ~4 hours of speech.
pub const DEFAULT_MAX_TEXT_BYTES: usize = 256 * 1024;

#[derive(Debug, Parser)]
#[command(
    name = "tts",
    version,
    about = "Piper (VITS) text-to-speech: synthesize, benchmark, phonemize"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Synthesize speech into a 16-bit PCM WAV file.
    Synth(SynthArgs),
    /// Measure load time, real-time factor, time to first audio and peak memory.
    Bench(BenchArgs),
    /// Print the phonemes and ids of a text (no synthesis).
    Phonemize(PhonemizeArgs),
    /// Compare a backend against the cpu reference with noise off: frame counts, MCD, log-mel L1,
    /// SNR, PCC; the precision plan's shares; the on-device share; device-time ESTIMATES.
    Eval(EvalArgs),
    /// Print a precision plan applied to a voice: every layer's setting and the shares.
    Plan(PlanArgs),
}

/// What to speak. Without any of `--text`, `--phonemes`, `--ids` the text is read from stdin.
#[derive(Debug, Args, Clone)]
pub struct InputArgs {
    /// Text to speak (phonemized with espeak-ng).
    #[arg(long, group = "input")]
    pub text: Option<String>,
    /// IPA phonemes (skips espeak-ng); a new sentence starts after `.`, `?` or `!` and a space.
    #[arg(long, group = "input")]
    pub phonemes: Option<String>,
    /// Phoneme ids, comma-separated (one sentence, used as given).
    #[arg(long, group = "input", allow_hyphen_values = true)]
    pub ids: Option<String>,
    /// Refuse texts larger than this many bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_TEXT_BYTES)]
    pub max_text_bytes: usize,
    /// With --phonemes: drop symbols missing from the voice's phoneme_id_map (as Piper does)
    /// instead of failing.
    #[arg(long)]
    pub drop_unknown: bool,
    /// espeak-ng data directory (default: the library's own).
    #[arg(long)]
    pub espeak_data: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Reference f32 CPU backend.
    Cpu,
    /// Tensix ops on the tt-sim simulator (no hardware needed; slow: a few seconds per frame).
    Sim,
    /// Tensix ops on TT-Metal hardware (needs the metal shim and a device).
    Metal,
}

/// Simulated chip for `--backend sim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchKind {
    /// Wormhole B0 (n150).
    Wormhole,
    /// Blackhole (p150).
    Blackhole,
}

/// Synthesis settings shared by `synth` and `bench`.
#[derive(Debug, Args, Clone)]
pub struct VoiceArgs {
    /// Piper voice model (`<name>.onnx`, with `<name>.onnx.json` beside it).
    #[arg(long)]
    pub voice: PathBuf,
    /// Speaker id or name (multi-speaker voices).
    #[arg(long)]
    pub speaker: Option<String>,
    /// Prior noise scale (voice default if omitted; 0 = deterministic).
    #[arg(long, allow_negative_numbers = true)]
    pub noise_scale: Option<f32>,
    /// Duration multiplier (voice default if omitted; > 1 is slower).
    #[arg(long, allow_negative_numbers = true)]
    pub length_scale: Option<f32>,
    /// Duration noise scale (voice default if omitted; 0 = deterministic).
    #[arg(long, allow_negative_numbers = true)]
    pub noise_w: Option<f32>,
    /// Seed of the noise generator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    pub backend: BackendKind,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Precision plan of the sim/metal backends: a preset (hifi, bfp8-lofi, hifi-bf16, auto) or
    /// a TOML file.
    #[arg(long, default_value = "hifi")]
    pub precision: String,
    /// Chip simulated by `--backend sim` (wormhole = n150, blackhole = p150).
    #[arg(long, value_enum, default_value_t = ArchKind::Wormhole)]
    pub arch: ArchKind,
    /// Metal device id for `--backend metal`.
    #[arg(long, default_value_t = 0)]
    pub device_id: u32,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    #[command(flatten)]
    pub voice: VoiceArgs,
    #[command(flatten)]
    pub input: InputArgs,
    /// Output WAV file (16-bit PCM, each sentence peak-normalised as Piper does).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the raw model output as little-endian f32 samples (no normalisation).
    #[arg(long)]
    pub out_f32: Option<PathBuf>,
    /// No summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub voice: VoiceArgs,
    #[command(flatten)]
    pub input: InputArgs,
    /// Timed runs after loading.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

#[derive(Debug, Args)]
pub struct PhonemizeArgs {
    /// Piper voice (`.onnx`; only its `.onnx.json` is read) or the `.onnx.json` itself.
    #[arg(long)]
    pub voice: PathBuf,
    #[command(flatten)]
    pub input: InputArgs,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub voice: VoiceArgs,
    #[command(flatten)]
    pub input: InputArgs,
    /// A text file with one sentence per line (instead of --text/--phonemes/--ids).
    #[arg(long)]
    pub sentences: Option<PathBuf>,
    /// Diagnostic: also run the tested backend with the cpu reference's durations (teacher
    /// forcing) and report the frame-aligned metrics of that run, so they stay defined when a
    /// duration flips; the frame counts shown are still the free-running ones.
    #[arg(long)]
    pub durations_from_cpu: bool,
}

/// Plan searches of `tts plan --search`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SearchKind {
    /// Cheapest per-group settings (LoFi, BFP8/BFP4 first) that meet the quality gates against
    /// the cpu backend on the calibration sentences.
    Auto,
}

/// Layer grouping of the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GranularityArg {
    /// Per encoder layer (attention, FFN), per flow coupling part, per decoder `ups.i`; resblocks
    /// per stage.
    Fine,
    /// Encoder attention / FFN, each flow part across couplings, all `ups` as one group each.
    Coarse,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Piper voice model (`<name>.onnx`).
    #[arg(long)]
    pub voice: PathBuf,
    /// A preset (hifi, bfp8-lofi, hifi-bf16, auto) or a TOML plan file.
    #[arg(long, default_value = "hifi")]
    pub precision: String,
    /// Print every layer's setting.
    #[arg(long)]
    pub layers: bool,
    /// Search a plan instead of printing one (needs --out). Each step synthesizes the calibration
    /// sentences on the tt backend (minutes on the simulator).
    #[arg(long, value_enum, requires = "out")]
    pub search: Option<SearchKind>,
    /// With --search: where the plan is written (atomically; provenance and metrics in its header).
    #[arg(long, requires = "search")]
    pub out: Option<PathBuf>,
    /// With --search: calibration sentences, one per line (`#` lines ignored); default: two short
    /// built-in sentences.
    #[arg(long, requires = "search")]
    pub calibration: Option<PathBuf>,
    /// With --search: backend measured against cpu (sim or metal).
    #[arg(long, value_enum, default_value_t = BackendKind::Sim)]
    pub backend: BackendKind,
    /// With --search --backend sim: the simulated chip.
    #[arg(long, value_enum, default_value_t = ArchKind::Wormhole)]
    pub arch: ArchKind,
    /// With --search --backend metal: the device id.
    #[arg(long, default_value_t = 0)]
    pub device_id: u32,
    /// Gate: largest MCD (dB) against cpu on the worst calibration sentence.
    #[arg(long, default_value_t = 0.3)]
    pub max_mcd: f64,
    /// Gate: largest log-mel L1 against cpu on the worst calibration sentence.
    #[arg(long, default_value_t = 0.02)]
    pub max_log_mel_l1: f64,
    /// Layer grouping of the search.
    #[arg(long, value_enum, default_value_t = GranularityArg::Fine)]
    pub granularity: GranularityArg,
    /// With --search: keep the activations of the layers matching this glob in bf16 in every plan
    /// (for ops without fp32 activations), e.g. `enc_p.encoder.attn_layers.*.emb_rel_?`;
    /// repeatable.
    #[arg(long, value_name = "GLOB")]
    pub bf16_activations: Vec<String>,
    /// With --search: when even the top plan misses the gates (frame counts kept), continue with
    /// the gates relaxed to the top plan's MCD and L1 times 1 + this, to find the cheapest plan
    /// about as good as the best possible (the plan is still reported as missing the gates).
    #[arg(long, default_value_t = 0.25)]
    pub fallback_slack: f64,
    /// With --search: no fallback search; stop when the top plan misses the gates.
    #[arg(long)]
    pub no_fallback: bool,
    /// Stop after this many evaluations and write the best plan found so far.
    #[arg(long, default_value_t = 400)]
    pub max_evals: usize,
    /// Worker threads of the host stages (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// espeak-ng data directory for phonemizing the calibration sentences.
    #[arg(long)]
    pub espeak_data: Option<PathBuf>,
}
