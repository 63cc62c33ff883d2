//! Text to phoneme ids, following Piper's rules exactly.
//!
//! Pipeline (Piper's `phonemize_espeak.py` + `phoneme_ids.py`):
//! 1. espeak-ng, loaded at run time (see [`LIBRARY_CANDIDATES`], override with `TTS_ESPEAK_LIB`),
//!    turns the text into IPA one clause per call, with the voice named by the `.onnx.json`'s
//!    `espeak.voice`.
//! 2. Per clause: language-switch flags like `(fr)` are removed; the clause terminator
//!    (`. ? ! , : ;` only) is appended, followed by a space after `, : ;`.
//! 3. Clauses are grouped into sentences: a clause that espeak-ng classifies as a sentence end
//!    (after `. ? !`, a paragraph break or the end of the text) closes the sentence.
//! 4. Each sentence is NFD-normalised and split into Unicode code points; the ids are
//!    `^ _ p1 _ p2 _ ... pn _ $` through the voice's [`PhonemeIdMap`]; symbols missing from the map
//!    are dropped and reported (not printed: callers decide how to warn).
//!
//! espeak-ng >= 1.52 reports the clause terminator directly; older libraries (Debian 12 has 1.51)
//! do not, so it is recovered from the input text by the rules of espeak-ng's clause reader
//! (module `clause`). Pronunciations differ slightly between espeak-ng releases; see
//! `tts-model/docs/phonemizer.md`. For exact control, callers can skip espeak-ng and pass an IPA
//! phoneme string ([`sentences_from_phoneme_string`]) or ids directly.
//!
//! espeak-ng is not thread-safe: all calls go through one process-wide lock, held for one
//! sentence at a time, so a long text is phonemized lazily, sentence by sentence
//! ([`Phonemizer::sentences`]), and other threads can interleave between sentences.

mod clause;
mod espeak;
mod id_map;

use std::ffi::CString;
use std::fmt;
use std::path::{Path, PathBuf};

use unicode_normalization::UnicodeNormalization;

pub use clause::Terminator;
pub use espeak::{LIBRARY_CANDIDATES, LIBRARY_ENV};
pub use id_map::{BOS, EOS, Encoded, PAD, PhonemeIdMap};

/// The command that installs what the phonemizer needs on Debian/Ubuntu.
pub const INSTALL_HINT: &str = "apt-get install libespeak-ng1 espeak-ng-data";

/// Errors of the phonemizer.
#[derive(Debug, thiserror::Error)]
pub enum PhonemizeError {
    #[error(
        "espeak-ng is not installed (could not load it: {tried}). Install it with `{INSTALL_HINT}`, \
         or set {LIBRARY_ENV} to the path of libespeak-ng.so, or give phonemes or ids instead of text"
    )]
    LibraryNotFound { tried: String },
    #[error(
        "the loaded espeak-ng library lacks `{symbol}` ({detail}); install espeak-ng >= 1.49 (`{INSTALL_HINT}`)"
    )]
    MissingSymbol { symbol: String, detail: String },
    #[error(
        "espeak-ng failed to initialise (library {library}, data path {}, code {code}); \
         install its data with `{INSTALL_HINT}` or point ESPEAK_DATA_PATH at an espeak-ng-data directory",
        data_path.as_ref().map_or_else(|| "built-in default".to_string(), |p| p.display().to_string())
    )]
    Initialize {
        library: String,
        data_path: Option<PathBuf>,
        code: i32,
    },
    #[error("espeak-ng data path {}: {detail}", path.display())]
    DataPath { path: PathBuf, detail: String },
    #[error(
        "espeak-ng has no voice {voice:?}: the voice config's espeak.voice must name an installed \
         espeak-ng voice (list them with `espeak-ng --voices`)"
    )]
    UnknownVoice { voice: String },
    #[error("espeak-ng failed: {detail}")]
    Espeak { detail: String },
    #[error("the text contains a NUL character; remove it")]
    TextContainsNul,
    #[error("invalid phoneme_id_map: {0}")]
    IdMap(String),
}

/// The phonemes of one sentence: Unicode code points after NFD normalisation, terminators and
/// the spaces between words included.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PhonemeSentence {
    pub phonemes: Vec<char>,
}

impl fmt::Display for PhonemeSentence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.phonemes.iter().try_for_each(|c| write!(f, "{c}"))
    }
}

impl PhonemeSentence {
    /// Ids through `map` (see [`PhonemeIdMap::encode`]).
    pub fn encode(&self, map: &PhonemeIdMap) -> Encoded {
        map.encode(&self.phonemes)
    }
}

/// Removes espeak-ng's language-switch flags: every `(` followed by one or more characters other
/// than `)` and then `)` (Piper's regex `\([^)]+\)`).
pub fn remove_language_flags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(')') {
            Some(close) if close > 0 => rest = &after[close + 1..],
            _ => {
                out.push('(');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Piper's per-clause rule: flags removed, terminator appended (plus a space after `, : ;`).
pub fn clause_phonemes(ipa: &str, terminator: Option<char>) -> String {
    let mut s = remove_language_flags(ipa);
    if let Some(t) = terminator {
        s.push(t);
        if matches!(t, ',' | ':' | ';') {
            s.push(' ');
        }
    }
    s
}

/// Splits an IPA phoneme string given by the user (no espeak-ng) into sentences: NFD, code
/// points, a new sentence after `.`, `?` or `!` followed by whitespace or the end; whitespace
/// between sentences is dropped. Empty sentences are skipped.
pub fn sentences_from_phoneme_string(ipa: &str) -> Vec<PhonemeSentence> {
    let chars: Vec<char> = ipa.nfd().collect();
    let mut out = Vec::new();
    let mut cur: Vec<char> = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        if cur.is_empty() && c.is_whitespace() {
            continue;
        }
        cur.push(c);
        let next_is_break = chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if matches!(c, '.' | '?' | '!') && next_is_break {
            out.push(PhonemeSentence {
                phonemes: std::mem::take(&mut cur),
            });
        }
    }
    while cur.last().is_some_and(|c| c.is_whitespace()) {
        cur.pop();
    }
    if !cur.is_empty() {
        out.push(PhonemeSentence { phonemes: cur });
    }
    out
}

/// A phonemizer for one espeak-ng voice (e.g. `en-us`).
#[derive(Debug, Clone)]
pub struct Phonemizer {
    voice: String,
    data_path: Option<PathBuf>,
}

impl Phonemizer {
    /// Loads espeak-ng (once per process) with its default data path and checks the voice.
    pub fn new(espeak_voice: &str) -> Result<Self, PhonemizeError> {
        Self::with_data_path(espeak_voice, None)
    }

    /// Like [`Phonemizer::new`] with an explicit `espeak-ng-data` directory. espeak-ng is
    /// initialised once per process: the data path of the first phonemizer created wins.
    pub fn with_data_path(
        espeak_voice: &str,
        data_path: Option<&Path>,
    ) -> Result<Self, PhonemizeError> {
        let mut engine = espeak::lock(data_path)?;
        engine.select_voice(espeak_voice)?;
        Ok(Phonemizer {
            voice: espeak_voice.to_string(),
            data_path: data_path.map(Path::to_path_buf),
        })
    }

    /// The espeak-ng voice name.
    pub fn voice(&self) -> &str {
        &self.voice
    }

    /// The loaded espeak-ng's version string.
    pub fn espeak_version(&self) -> Result<String, PhonemizeError> {
        Ok(espeak::lock(self.data_path.as_deref())?
            .version()
            .to_string())
    }

    /// Phonemizes `text` lazily, one sentence per iteration (empty sentences are skipped).
    pub fn sentences(&self, text: &str) -> Result<Sentences, PhonemizeError> {
        let text_str = text;
        let text = CString::new(text).map_err(|_| PhonemizeError::TextContainsNul)?;
        let session = espeak::Session::new(&self.voice, text.as_bytes().len());
        Ok(Sentences {
            phonemizer: self.clone(),
            source: text_str.to_string(),
            text,
            session,
            failed: false,
        })
    }

    /// Phonemizes all of `text` (see [`Phonemizer::sentences`]).
    pub fn phonemize(&self, text: &str) -> Result<Vec<PhonemeSentence>, PhonemizeError> {
        self.sentences(text)?.collect()
    }

    /// Phonemizes all of `text` and returns each clause as espeak-ng split it, with the recovered
    /// terminator (for debugging and tests).
    pub fn clauses(&self, text: &str) -> Result<Vec<(String, Terminator)>, PhonemizeError> {
        let ctext = CString::new(text).map_err(|_| PhonemizeError::TextContainsNul)?;
        let mut session = espeak::Session::new(&self.voice, ctext.as_bytes().len());
        let mut engine = espeak::lock(self.data_path.as_deref())?;
        let mut out = Vec::new();
        while !session.finished {
            let raw = engine.next_clause(&mut session, &ctext)?;
            let term = clause::classify(clause_text(text, &raw)?, raw.at_end);
            out.push((raw.phonemes, term));
        }
        Ok(out)
    }
}

fn clause_text<'a>(text: &'a str, raw: &espeak::RawClause) -> Result<&'a str, PhonemizeError> {
    text.get(raw.start..raw.end)
        .ok_or_else(|| PhonemizeError::Espeak {
            detail: format!(
                "clause boundary {}..{} is not at a character boundary",
                raw.start, raw.end
            ),
        })
}

/// Iterator over the sentences of one text; see [`Phonemizer::sentences`].
pub struct Sentences {
    phonemizer: Phonemizer,
    /// The text, and the same as a C string for espeak-ng.
    source: String,
    text: CString,
    session: espeak::Session,
    failed: bool,
}

impl Sentences {
    fn next_sentence(&mut self) -> Result<Option<PhonemeSentence>, PhonemizeError> {
        let mut engine = espeak::lock(self.phonemizer.data_path.as_deref())?;
        let mut cur = String::new();
        while !self.session.finished {
            let raw = engine.next_clause(&mut self.session, &self.text)?;
            // Clause boundaries are at character boundaries (checked by next_clause).
            let src = clause_text(&self.source, &raw)?;
            let term = clause::classify(src, raw.at_end);
            cur.push_str(&clause_phonemes(&raw.phonemes, term.symbol));
            if term.sentence_end && !cur.is_empty() {
                break;
            }
        }
        if cur.is_empty() {
            return Ok(None);
        }
        Ok(Some(PhonemeSentence {
            phonemes: cur.nfd().collect(),
        }))
    }
}

impl Iterator for Sentences {
    type Item = Result<PhonemeSentence, PhonemizeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_sentence() {
            Ok(s) => s.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_flags_are_removed() {
        assert_eq!(
            remove_language_flags("(en)hˈɛloʊ(fr) bɔ̃ʒuʁ"),
            "hˈɛloʊ bɔ̃ʒuʁ"
        );
        assert_eq!(remove_language_flags("a()b"), "a()b");
        assert_eq!(remove_language_flags("a(b"), "a(b");
        assert_eq!(remove_language_flags("a(x(y)b"), "ab");
    }

    #[test]
    fn clause_rules() {
        assert_eq!(clause_phonemes("həlˈoʊ", Some(',')), "həlˈoʊ, ");
        assert_eq!(clause_phonemes("wˈɜːld", Some('.')), "wˈɜːld.");
        assert_eq!(clause_phonemes("(fr)wˈɜːld", None), "wˈɜːld");
    }

    #[test]
    fn phoneme_string_sentences() {
        let s = sentences_from_phoneme_string("həlˈoʊ wˈɜːld. haʊ ɑːɹ juː?  ");
        let strs: Vec<String> = s.iter().map(ToString::to_string).collect();
        assert_eq!(strs, vec!["həlˈoʊ wˈɜːld.", "haʊ ɑːɹ juː?"]);
        // NFD splits precomposed characters into base + combining mark.
        assert_eq!(
            sentences_from_phoneme_string("ã")[0].phonemes,
            vec!['a', '\u{303}']
        );
        assert!(sentences_from_phoneme_string("   ").is_empty());
        // A dot inside a token does not end a sentence.
        assert_eq!(sentences_from_phoneme_string("a.b c.").len(), 1);
    }
}
