//! The `tts` command line: argument parsing, input validation, atomic output, and the
//! `synth`, `bench`, `phonemize`, `eval` and `plan` (with `--search auto`, the plan search)
//! subcommands. Compiled into the binary only (declared from
//! `src/bin/tts.rs`), on top of the library's public API.

pub mod args;
mod bench;
mod eval;
pub mod input;
pub mod output;
mod phonemes;
mod plan_search;
mod synth;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// Parses the arguments, runs the command, prints errors; never panics on bad input.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            // Printing the help/usage can only fail if stdout/stderr are closed: nothing to do then.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Synth(a) => synth::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Phonemize(a) => phonemes::run(&a),
        Command::Eval(a) => eval::run(&a),
        Command::Plan(a) if a.search.is_some() => plan_search::run(&a),
        Command::Plan(a) => eval::plan(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tts: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
