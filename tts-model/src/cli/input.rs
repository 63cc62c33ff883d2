//! Input: text, phonemes or ids, validated, turned into one id sequence per sentence.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tts_model::VoiceConfig;
use tts_model::phonemize::{
    PhonemeIdMap, PhonemeSentence, Phonemizer, sentences_from_phoneme_string,
};
use unicode_normalization::UnicodeNormalization;

use super::args::InputArgs;

/// The input as given.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Text(String),
    Phonemes(String),
    Ids(Vec<i64>),
}

/// Reads the input from the arguments or, without `--text/--phonemes/--ids`, from stdin.
pub fn read_input(a: &InputArgs) -> Result<Input> {
    if let Some(t) = &a.text {
        check_text(t, a.max_text_bytes)?;
        return Ok(Input::Text(t.clone()));
    }
    if let Some(p) = &a.phonemes {
        check_size(p.len(), a.max_text_bytes)?;
        check_controls(p)?;
        if p.trim().is_empty() {
            bail!("--phonemes is empty: give IPA phonemes such as \"həlˈoʊ wˈɜːld.\"");
        }
        return Ok(Input::Phonemes(p.clone()));
    }
    if let Some(ids) = &a.ids {
        return Ok(Input::Ids(parse_ids(ids)?));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        bail!("no input: give --text, --phonemes or --ids, or pipe the text on stdin");
    }
    let mut buf = Vec::new();
    // Read one byte more than allowed to detect oversized input without reading it all.
    stdin
        .lock()
        .take(a.max_text_bytes as u64 + 1)
        .read_to_end(&mut buf)
        .context("cannot read the text from stdin")?;
    check_size(buf.len(), a.max_text_bytes)?;
    let text = String::from_utf8(buf).map_err(|e| {
        anyhow::anyhow!(
            "the text on stdin is not valid UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    check_text(&text, a.max_text_bytes)?;
    Ok(Input::Text(text))
}

fn check_size(len: usize, max: usize) -> Result<()> {
    if len > max {
        bail!(
            "the text is too long ({}{} bytes; the limit is {max}): split it into several files or raise --max-text-bytes",
            if len == max + 1 { "more than " } else { "" },
            if len == max + 1 { max } else { len }
        );
    }
    Ok(())
}

fn check_controls(t: &str) -> Result<()> {
    if let Some((i, c)) = t
        .char_indices()
        .find(|&(_, c)| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        bail!(
            "the text contains the control character U+{:04X} at byte {i}; remove it",
            c as u32
        );
    }
    Ok(())
}

/// Rejects texts that cannot be spoken: too large, control characters, empty, or nothing but
/// punctuation/symbols (no letter or digit).
pub fn check_text(t: &str, max: usize) -> Result<()> {
    check_size(t.len(), max)?;
    check_controls(t)?;
    if t.trim().is_empty() {
        bail!("the text is empty: give something to say with --text, or on stdin");
    }
    if !t.chars().any(char::is_alphanumeric) {
        bail!(
            "the text has only punctuation or symbols ({:?}): nothing to say",
            truncate(t, 40)
        );
    }
    Ok(())
}

fn truncate(t: &str, n: usize) -> String {
    let mut s: String = t.trim().chars().take(n).collect();
    if t.trim().chars().count() > n {
        s.push('…');
    }
    s
}

/// Parses `1,0,20,...` (spaces allowed).
pub fn parse_ids(s: &str) -> Result<Vec<i64>> {
    let ids = s
        .split(',')
        .map(str::trim)
        .enumerate()
        .map(|(i, x)| {
            x.parse::<i64>().ok().filter(|&v| v >= 0).ok_or_else(|| {
                anyhow::anyhow!(
                    "--ids: item {} ({x:?}) is not a non-negative integer",
                    i + 1
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if ids.is_empty() {
        bail!("--ids is empty");
    }
    Ok(ids)
}

/// The config path of a voice: `V.onnx` -> `V.onnx.json`; a `.json` path is used as is.
pub fn config_path(voice: &Path) -> PathBuf {
    if voice.extension().is_some_and(|e| e == "json") {
        voice.to_path_buf()
    } else {
        let mut s = voice.as_os_str().to_owned();
        s.push(".json");
        PathBuf::from(s)
    }
}

/// Reads the voice config, with a message naming the file.
pub fn load_config(voice: &Path) -> Result<VoiceConfig> {
    if !voice.exists() {
        bail!(
            "voice file {} does not exist (tts-model/scripts/fetch-voice.sh fetches en_US-joe-medium)",
            voice.display()
        );
    }
    let path = config_path(voice);
    if !path.exists() {
        bail!(
            "the voice config {} is missing: a Piper voice is <name>.onnx plus <name>.onnx.json",
            path.display()
        );
    }
    Ok(VoiceConfig::load(&path)?)
}

/// One sentence ready for the model.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceIds {
    /// The phonemes (absent for id input).
    pub phonemes: Option<String>,
    pub ids: Vec<i64>,
    /// Symbols dropped because the voice's map lacks them.
    pub unknown: Vec<char>,
}

/// The sentences of an input, lazily (text is phonemized sentence by sentence).
pub type SentenceIter = Box<dyn Iterator<Item = Result<SentenceIds>>>;

/// Prepares the sentences of `input` for a voice with `config`.
pub fn sentences(input: Input, config: &VoiceConfig, a: &InputArgs) -> Result<SentenceIter> {
    let map = PhonemeIdMap::new(config.phoneme_id_map.clone())
        .context("the voice config's phoneme_id_map")?;
    let encode = move |s: PhonemeSentence, map: &PhonemeIdMap| {
        let e = s.encode(map);
        SentenceIds {
            phonemes: Some(s.to_string()),
            ids: e.ids,
            unknown: e.unknown,
        }
    };
    match input {
        Input::Ids(ids) => Ok(Box::new(std::iter::once(Ok(SentenceIds {
            phonemes: None,
            ids,
            unknown: vec![],
        })))),
        Input::Phonemes(p) => {
            let sents: Vec<SentenceIds> = sentences_from_phoneme_string(&p)
                .into_iter()
                .map(|s| encode(s, &map))
                .collect();
            let mut unknown: Vec<char> = sents
                .iter()
                .flat_map(|s| s.unknown.iter().copied())
                .collect();
            unknown.sort_unstable();
            unknown.dedup();
            if !unknown.is_empty() && !a.drop_unknown {
                bail!(
                    "--phonemes has symbols the voice does not know: {}; fix them or pass --drop-unknown to skip them",
                    describe_chars(&unknown)
                );
            }
            Ok(Box::new(sents.into_iter().map(Ok)))
        }
        Input::Text(t) => {
            if config.phoneme_type.as_deref() == Some("text") {
                // Piper: the phonemes of a "text" voice are the NFD code points of the text.
                let s = PhonemeSentence {
                    phonemes: t.nfd().collect(),
                };
                return Ok(Box::new(std::iter::once(Ok(encode(s, &map)))));
            }
            if let Some(other) = config.phoneme_type.as_deref().filter(|&p| p != "espeak") {
                bail!(
                    "phoneme_type {other:?} is not supported (only espeak and text); give --phonemes or --ids"
                );
            }
            let ph = Phonemizer::with_data_path(&config.espeak.voice, a.espeak_data.as_deref())
                .context("cannot phonemize the text")?;
            let it = ph.sentences(&t)?;
            Ok(Box::new(it.map(move |r| {
                r.map(|s| encode(s, &map)).map_err(anyhow::Error::from)
            })))
        }
    }
}

/// `'x' (U+0078), ...`
pub fn describe_chars(cs: &[char]) -> String {
    cs.iter()
        .map(|c| format!("{c:?} (U+{:04X})", *c as u32))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse() {
        assert_eq!(parse_ids("1,0, 20 ,2").unwrap(), vec![1, 0, 20, 2]);
        assert!(parse_ids("1,,2").is_err());
        assert!(parse_ids("1,-3").is_err());
        assert!(parse_ids("a").unwrap_err().to_string().contains("item 1"));
    }

    #[test]
    fn text_checks() {
        assert!(check_text("Hello.", 100).is_ok());
        assert!(
            check_text("  \n", 100)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        assert!(
            check_text("?!...", 100)
                .unwrap_err()
                .to_string()
                .contains("only punctuation")
        );
        assert!(
            check_text("a\u{7}b", 100)
                .unwrap_err()
                .to_string()
                .contains("U+0007")
        );
        assert!(
            check_text("abcdef", 3)
                .unwrap_err()
                .to_string()
                .contains("too long")
        );
        assert!(check_text("Line\nline\ttab\r\n", 100).is_ok());
    }

    #[test]
    fn config_paths() {
        assert_eq!(
            config_path(Path::new("v/a.onnx")),
            PathBuf::from("v/a.onnx.json")
        );
        assert_eq!(
            config_path(Path::new("v/a.onnx.json")),
            PathBuf::from("v/a.onnx.json")
        );
    }
}
