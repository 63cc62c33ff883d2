//! Which clause terminator espeak-ng reported, recovered from the clause's source text.
//!
//! Piper asks espeak-ng >= 1.52 (`espeak_TextToPhonemesWithTerminator`) which punctuation ended each
//! clause. Older libraries (Debian 12 ships 1.51) only tell where the clause ended, so we look at
//! the clause's text and apply the rules of espeak-ng's clause reader (`ReadClause`):
//! - the clause ends in a run of punctuation; the first character of the run decides (`?!` is a
//!   question, `!!!` an exclamation, `,.` a comma); three or more dots are an ellipsis;
//! - punctuation only ends a clause after a letter or digit was seen in it;
//! - two or more newlines after the clause make it a paragraph end (no terminator, new sentence);
//! - the end of the text ends a sentence without a terminator;
//! - anything else (espeak-ng's buffer was full) ends a clause without a terminator.
//!
//! Piper keeps a terminator only when espeak-ng's clause type is exactly period, question,
//! exclamation, comma, colon or semicolon; the table below maps every character espeak-ng's
//! Unicode data gives a clause property to that outcome (characters whose property also says
//! "no space needed after it", like `。`, end a sentence without a terminator, as in Piper).

/// Outcome of one punctuation character at the end of a clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Punct {
    Period,
    Question,
    Exclamation,
    Comma,
    Colon,
    /// Semicolons and the extended dashes (en dash, em dash, ...).
    Semicolon,
    /// Ends a sentence but Piper keeps no terminator (e.g. `。`, `！`, paragraph separators).
    SentenceOther,
    /// Ends a clause, no terminator kept (ellipsis, `、`, inverted `¿ ¡`, ...).
    ClauseOther,
}

use Punct as P;

/// Code point ranges with a clause property in espeak-ng's Unicode data (ucd-tools `proplist.c`),
/// sorted, non-overlapping. Characters with properties espeak-ng does not treat as a clause end
/// (punctuation inside a word, `?` and `!` combined in one character) are left out.
const TABLE: &[(u32, u32, Punct)] = &[
    (0x0021, 0x0021, P::Exclamation),
    (0x002C, 0x002C, P::Comma),
    (0x002E, 0x002E, P::Period),
    (0x003A, 0x003A, P::Colon),
    (0x003B, 0x003B, P::Semicolon),
    (0x003F, 0x003F, P::Question),
    (0x00A1, 0x00A1, P::ClauseOther),
    (0x00BF, 0x00BF, P::ClauseOther),
    (0x037E, 0x037E, P::Question),
    (0x0387, 0x0387, P::Semicolon),
    (0x055D, 0x055D, P::Comma),
    (0x0589, 0x0589, P::SentenceOther),
    (0x060C, 0x060C, P::Comma),
    (0x061B, 0x061B, P::Semicolon),
    (0x061F, 0x061F, P::Question),
    (0x06D4, 0x06D4, P::Period),
    (0x0700, 0x0700, P::SentenceOther),
    (0x0701, 0x0701, P::Period),
    (0x0702, 0x0702, P::Comma),
    (0x0703, 0x0703, P::Exclamation),
    (0x0704, 0x0704, P::Period),
    (0x0706, 0x0707, P::Colon),
    (0x0708, 0x0708, P::Semicolon),
    (0x0709, 0x0709, P::Question),
    (0x07F8, 0x07F8, P::Comma),
    (0x07F9, 0x07F9, P::Exclamation),
    (0x0964, 0x0964, P::SentenceOther),
    (0x0965, 0x0965, P::SentenceOther),
    (0x0DF4, 0x0DF4, P::SentenceOther),
    (0x0EAF, 0x0EAF, P::ClauseOther),
    (0x0F0D, 0x0F0D, P::SentenceOther),
    (0x0F0E, 0x0F0E, P::SentenceOther),
    (0x0F14, 0x0F14, P::Comma),
    (0x10FB, 0x10FB, P::SentenceOther),
    (0x1362, 0x1362, P::Period),
    (0x1363, 0x1363, P::Comma),
    (0x1364, 0x1364, P::Semicolon),
    (0x1365, 0x1366, P::Colon),
    (0x1367, 0x1367, P::Question),
    (0x1368, 0x1368, P::SentenceOther),
    (0x166E, 0x166E, P::Period),
    (0x1801, 0x1801, P::ClauseOther),
    (0x1802, 0x1802, P::Comma),
    (0x1803, 0x1803, P::Period),
    (0x1804, 0x1804, P::Colon),
    (0x1808, 0x1808, P::Comma),
    (0x1809, 0x1809, P::Period),
    (0x1944, 0x1944, P::Exclamation),
    (0x1945, 0x1945, P::Question),
    (0x2013, 0x2014, P::Semicolon),
    (0x2026, 0x2026, P::ClauseOther),
    (0x2029, 0x2029, P::SentenceOther),
    (0x203C, 0x203C, P::Exclamation),
    (0x2047, 0x2047, P::Question),
    (0x204F, 0x204F, P::Semicolon),
    (0x22EE, 0x22F1, P::ClauseOther),
    (0x2488, 0x249B, P::Period),
    (0x2753, 0x2754, P::Question),
    (0x2755, 0x2755, P::Exclamation),
    (0x2757, 0x2757, P::Exclamation),
    (0x2762, 0x2762, P::Exclamation),
    (0x2763, 0x2763, P::Exclamation),
    (0x2982, 0x2982, P::Colon),
    (0x2CF9, 0x2CF9, P::Period),
    (0x2CFA, 0x2CFB, P::Question),
    (0x2CFE, 0x2CFE, P::Period),
    (0x2E32, 0x2E32, P::Comma),
    (0x2E33, 0x2E33, P::Period),
    (0x2E34, 0x2E34, P::Comma),
    (0x2E35, 0x2E35, P::Semicolon),
    (0x2E3A, 0x2E3B, P::Semicolon),
    (0x2E3C, 0x2E3C, P::Period),
    (0x2E41, 0x2E41, P::Comma),
    (0x3001, 0x3001, P::ClauseOther),
    (0x3002, 0x3002, P::SentenceOther),
    (0xA4FE, 0xA4FE, P::Comma),
    (0xA4FF, 0xA4FF, P::Period),
    (0xA60D, 0xA60D, P::Comma),
    (0xA60E, 0xA60E, P::Period),
    (0xA60F, 0xA60F, P::Question),
    (0xA6F3, 0xA6F3, P::Period),
    (0xA6F4, 0xA6F4, P::Colon),
    (0xA6F5, 0xA6F5, P::Comma),
    (0xA6F6, 0xA6F6, P::Semicolon),
    (0xA6F7, 0xA6F7, P::Question),
    (0xFE10, 0xFE11, P::Comma),
    (0xFE12, 0xFE12, P::Period),
    (0xFE13, 0xFE13, P::Colon),
    (0xFE14, 0xFE14, P::Semicolon),
    (0xFE15, 0xFE15, P::Exclamation),
    (0xFE16, 0xFE16, P::Question),
    (0xFE19, 0xFE19, P::ClauseOther),
    (0xFE31, 0xFE32, P::Semicolon),
    (0xFE50, 0xFE51, P::Comma),
    (0xFE52, 0xFE52, P::Period),
    (0xFE54, 0xFE54, P::Semicolon),
    (0xFE55, 0xFE55, P::Colon),
    (0xFE56, 0xFE56, P::Question),
    (0xFE57, 0xFE57, P::Exclamation),
    (0xFF01, 0xFF01, P::SentenceOther),
    (0xFF0C, 0xFF0C, P::ClauseOther),
    (0xFF0E, 0xFF0E, P::SentenceOther),
    (0xFF1A, 0xFF1A, P::ClauseOther),
    (0xFF1B, 0xFF1B, P::ClauseOther),
    (0xFF1F, 0xFF1F, P::SentenceOther),
    (0xFF61, 0xFF61, P::Period),
    (0xFF64, 0xFF64, P::Comma),
    (0x11143, 0x11143, P::Question),
    (0x1144D, 0x1144D, P::Comma),
    (0x12471, 0x12472, P::Colon),
    (0x16AF5, 0x16AF5, P::Period),
    (0x1BC9F, 0x1BC9F, P::Period),
    (0x1DA87, 0x1DA87, P::Comma),
    (0x1DA88, 0x1DA88, P::Period),
    (0x1DA89, 0x1DA89, P::Semicolon),
    (0x1DA8A, 0x1DA8A, P::Colon),
    (0x1E95E, 0x1E95E, P::Exclamation),
    (0x1E95F, 0x1E95F, P::Question),
    (0x1F100, 0x1F100, P::Period),
    (0x1F101, 0x1F10A, P::Comma),
    (0xE0021, 0xE0021, P::Exclamation),
    (0xE002C, 0xE002C, P::Comma),
    (0xE002E, 0xE002E, P::Period),
    (0xE003A, 0xE003A, P::Colon),
    (0xE003B, 0xE003B, P::Semicolon),
    (0xE003F, 0xE003F, P::Question),
];

/// The clause class of `c`, if it is clause punctuation.
pub(crate) fn punct_class(c: char) -> Option<Punct> {
    let c = c as u32;
    let i = TABLE.partition_point(|&(_, hi, _)| hi < c);
    match TABLE.get(i) {
        Some(&(lo, _, p)) if lo <= c => Some(p),
        _ => None,
    }
}

/// How a clause ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminator {
    /// The punctuation Piper appends to the clause's phonemes (`. ? ! , : ;`), if any.
    pub symbol: Option<char>,
    /// espeak-ng's clause type says "sentence": the next clause starts a new sentence.
    pub sentence_end: bool,
}

/// Classifies the clause whose source text is `clause` (look-ahead character excluded);
/// `at_end`: espeak-ng reached the end of the whole text with it.
pub(crate) fn classify(clause: &str, at_end: bool) -> Terminator {
    let body = clause.trim_end_matches(char::is_whitespace);
    let newlines = clause[body.len()..].chars().filter(|&c| c == '\n').count();
    let paragraph = newlines >= 2;

    // Trailing run of clause punctuation.
    let run_start = body
        .char_indices()
        .rev()
        .take_while(|&(_, c)| punct_class(c).is_some())
        .last()
        .map(|(i, _)| i);
    if let Some(start) = run_start {
        let before = &body[..start];
        if before.chars().any(char::is_alphanumeric) {
            if paragraph {
                return Terminator {
                    symbol: None,
                    sentence_end: true,
                };
            }
            let run = &body[start..];
            let class = if run.starts_with("...") {
                P::ClauseOther // three or more dots are read as an ellipsis
            } else {
                // The run is non-empty and all of it is punctuation.
                run.chars()
                    .next()
                    .and_then(punct_class)
                    .unwrap_or(P::ClauseOther)
            };
            let (symbol, sentence_end) = match class {
                P::Period => (Some('.'), true),
                P::Question => (Some('?'), true),
                P::Exclamation => (Some('!'), true),
                P::Comma => (Some(','), false),
                P::Colon => (Some(':'), false),
                P::Semicolon => (Some(';'), false),
                P::SentenceOther => (None, true),
                P::ClauseOther => (None, false),
            };
            return Terminator {
                symbol,
                sentence_end,
            };
        }
    }
    Terminator {
        symbol: None,
        sentence_end: at_end || paragraph,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(symbol: Option<char>, sentence_end: bool) -> Terminator {
        Terminator {
            symbol,
            sentence_end,
        }
    }

    #[test]
    fn table_is_sorted_and_disjoint() {
        for w in TABLE.windows(2) {
            assert!(
                w[0].0 <= w[0].1 && w[0].1 < w[1].0,
                "{:x?} / {:x?}",
                w[0],
                w[1]
            );
        }
    }

    #[test]
    fn ascii_classes() {
        assert_eq!(punct_class('.'), Some(P::Period));
        assert_eq!(punct_class('?'), Some(P::Question));
        assert_eq!(punct_class('!'), Some(P::Exclamation));
        assert_eq!(punct_class(','), Some(P::Comma));
        assert_eq!(punct_class(':'), Some(P::Colon));
        assert_eq!(punct_class(';'), Some(P::Semicolon));
        assert_eq!(punct_class('\u{2014}'), Some(P::Semicolon)); // em dash
        assert_eq!(punct_class('\u{2026}'), Some(P::ClauseOther)); // ellipsis
        assert_eq!(punct_class('\u{3002}'), Some(P::SentenceOther)); // ideographic full stop
        assert_eq!(punct_class('a'), None);
        assert_eq!(punct_class('"'), None);
        assert_eq!(punct_class('-'), None);
    }

    // Expected values below are what piper-tts 1.8.0 (espeak-ng 1.52 with terminators) reports
    // for these clauses; see docs/phonemizer.md.
    #[test]
    fn terminators() {
        assert_eq!(classify("Hello world.", true), t(Some('.'), true));
        assert_eq!(classify("Hello world", true), t(None, true));
        assert_eq!(classify("Hello world,", true), t(Some(','), false));
        assert_eq!(classify("Hello, ", false), t(Some(','), false));
        assert_eq!(classify("Really?! ", false), t(Some('?'), true));
        assert_eq!(classify("Hello world!!! ", false), t(Some('!'), true));
        assert_eq!(classify("Hi,. ", false), t(Some(','), false));
        assert_eq!(classify("Wait \u{2014} ", false), t(Some(';'), false));
        assert_eq!(classify("dollars... ", false), t(None, false));
        assert_eq!(classify("Wait\u{2026} ", false), t(None, false));
        assert_eq!(classify("Hello.\n\n", false), t(None, true));
        assert_eq!(classify("Hello.\n\n", true), t(None, true));
        assert_eq!(classify("Hello.\n", true), t(Some('.'), true));
        assert_eq!(classify("Is it?\n\n", false), t(None, true));
        assert_eq!(classify("Hello\n\n", false), t(None, true));
        assert_eq!(classify("Hello\u{3002}", false), t(None, true));
        assert_eq!(classify("  . , ! ", true), t(None, true));
        assert_eq!(classify("(Hello.", false), t(Some('.'), true));
        assert_eq!(classify("Time: ", false), t(Some(':'), false));
        assert_eq!(
            classify("some long clause cut by a full buffer ", false),
            t(None, false)
        );
    }
}
