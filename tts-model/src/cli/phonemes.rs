//! `tts phonemize`: phonemes and ids of a text, sentence by sentence.

use anyhow::Result;

use super::args::PhonemizeArgs;
use super::input;
use super::synth::warn_unknown;

pub fn run(a: &PhonemizeArgs) -> Result<()> {
    let inp = input::read_input(&a.input)?;
    let config = input::load_config(&a.voice)?;
    for (k, s) in input::sentences(inp, &config, &a.input)?.enumerate() {
        let s = s?;
        warn_unknown(&s, k);
        if let Some(p) = &s.phonemes {
            println!("phonemes: {p}");
        }
        let ids: Vec<String> = s.ids.iter().map(i64::to_string).collect();
        println!("ids: {}", ids.join(","));
    }
    Ok(())
}
