//! The voice's `phoneme_id_map`: phoneme symbol -> model input ids.

use std::collections::HashMap;

use super::PhonemizeError;

/// Beginning-of-sentence symbol.
pub const BOS: &str = "^";
/// Padding symbol, inserted after every phoneme.
pub const PAD: &str = "_";
/// End-of-sentence symbol.
pub const EOS: &str = "$";

/// Maps phoneme symbols (single Unicode code points for espeak voices) to model input ids, as in
/// the `phoneme_id_map` object of a Piper `.onnx.json`. Each symbol maps to one or more ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhonemeIdMap {
    map: HashMap<String, Vec<i64>>,
    bos: Vec<i64>,
    pad: Vec<i64>,
    eos: Vec<i64>,
}

/// Ids for one sentence, plus the symbols that were not in the map (dropped, in input order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoded {
    pub ids: Vec<i64>,
    pub unknown: Vec<char>,
}

impl PhonemeIdMap {
    /// Builds a map from `(symbol, ids)` pairs. The map must contain `^`, `_` and `$`.
    pub fn new<I, S>(pairs: I) -> Result<Self, PhonemizeError>
    where
        I: IntoIterator<Item = (S, Vec<i64>)>,
        S: Into<String>,
    {
        let mut map = HashMap::new();
        for (symbol, ids) in pairs {
            let symbol = symbol.into();
            if ids.is_empty() {
                return Err(PhonemizeError::IdMap(format!(
                    "symbol {symbol:?} maps to no ids"
                )));
            }
            if let Some(bad) = ids.iter().find(|&&id| id < 0) {
                return Err(PhonemizeError::IdMap(format!(
                    "symbol {symbol:?} maps to negative id {bad}"
                )));
            }
            map.insert(symbol, ids);
        }
        let get = |s: &str| {
            map.get(s).cloned().ok_or_else(|| {
                PhonemizeError::IdMap(format!(
                    "the map has no {s:?} (needed for sentence start, pad and end)"
                ))
            })
        };
        let (bos, pad, eos) = (get(BOS)?, get(PAD)?, get(EOS)?);
        Ok(PhonemeIdMap { map, bos, pad, eos })
    }

    /// Parses the `phoneme_id_map` JSON object (`{"_": [0], "^": [1], ...}`).
    pub fn from_json_value(value: &serde_json::Value) -> Result<Self, PhonemizeError> {
        let obj = value
            .as_object()
            .ok_or_else(|| PhonemizeError::IdMap("phoneme_id_map is not a JSON object".into()))?;
        let mut pairs = Vec::with_capacity(obj.len());
        for (symbol, ids) in obj {
            let arr = ids.as_array().ok_or_else(|| {
                PhonemizeError::IdMap(format!("ids of {symbol:?} are not a JSON array"))
            })?;
            let ids = arr
                .iter()
                .map(|v| {
                    v.as_i64().ok_or_else(|| {
                        PhonemizeError::IdMap(format!("id {v} of {symbol:?} is not an integer"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            pairs.push((symbol.clone(), ids));
        }
        Self::new(pairs)
    }

    /// Reads `phoneme_id_map` from a whole voice config (`.onnx.json`) text.
    pub fn from_voice_config_json(text: &str) -> Result<Self, PhonemizeError> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| PhonemizeError::IdMap(format!("voice config is not JSON: {e}")))?;
        let m = v
            .get("phoneme_id_map")
            .ok_or_else(|| PhonemizeError::IdMap("voice config has no phoneme_id_map".into()))?;
        Self::from_json_value(m)
    }

    /// Ids of one symbol.
    pub fn get(&self, symbol: &str) -> Option<&[i64]> {
        self.map.get(symbol).map(Vec::as_slice)
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty (never true for a map built by [`PhonemeIdMap::new`]).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The largest id in the map.
    pub fn max_id(&self) -> i64 {
        self.map.values().flatten().copied().max().unwrap_or(0)
    }

    /// Piper's encoding of one sentence: `^ _ p1 _ p2 _ ... pn _ $`; symbols missing from the map
    /// are dropped and reported in [`Encoded::unknown`].
    pub fn encode(&self, phonemes: &[char]) -> Encoded {
        let mut out = Encoded::default();
        out.ids.reserve(2 * phonemes.len() + 3);
        out.ids.extend_from_slice(&self.bos);
        out.ids.extend_from_slice(&self.pad);
        let mut buf = [0u8; 4];
        for &p in phonemes {
            match self.map.get(&*p.encode_utf8(&mut buf)) {
                Some(ids) => {
                    out.ids.extend_from_slice(ids);
                    out.ids.extend_from_slice(&self.pad);
                }
                None => out.unknown.push(p),
            }
        }
        out.ids.extend_from_slice(&self.eos);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> PhonemeIdMap {
        PhonemeIdMap::new([
            ("_", vec![0]),
            ("^", vec![1]),
            ("$", vec![2]),
            ("a", vec![14]),
            ("ˈ", vec![120, 121]),
        ])
        .unwrap()
    }

    #[test]
    fn encode_interleaves_pad() {
        let e = small().encode(&['a', 'ˈ', 'a']);
        assert_eq!(e.ids, vec![1, 0, 14, 0, 120, 121, 0, 14, 0, 2]);
        assert!(e.unknown.is_empty());
    }

    #[test]
    fn unknown_symbols_are_dropped_and_reported() {
        let e = small().encode(&['a', 'Z', 'a', 'Z']);
        assert_eq!(e.ids, vec![1, 0, 14, 0, 14, 0, 2]);
        assert_eq!(e.unknown, vec!['Z', 'Z']);
    }

    #[test]
    fn empty_sentence_is_bos_pad_eos() {
        assert_eq!(small().encode(&[]).ids, vec![1, 0, 2]);
    }

    #[test]
    fn missing_special_symbol_is_an_error() {
        let err = PhonemeIdMap::new([("_", vec![0]), ("^", vec![1])]).unwrap_err();
        assert!(err.to_string().contains("\"$\""), "{err}");
    }

    #[test]
    fn json_parsing() {
        let m = PhonemeIdMap::from_voice_config_json(
            r#"{"phoneme_id_map": {"_": [0], "^": [1], "$": [2], "a": [14]}}"#,
        )
        .unwrap();
        assert_eq!(m.get("a"), Some(&[14][..]));
        assert_eq!(m.max_id(), 14);
        assert!(PhonemeIdMap::from_voice_config_json(r#"{"phoneme_id_map": {"_": 0}}"#).is_err());
        assert!(PhonemeIdMap::from_voice_config_json("{}").is_err());
        assert!(PhonemeIdMap::from_voice_config_json("not json").is_err());
    }
}
