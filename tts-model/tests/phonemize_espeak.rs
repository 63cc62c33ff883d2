//! Phonemizer behaviour with the real espeak-ng (`apt-get install libespeak-ng1 espeak-ng-data`).
//! Without espeak-ng each test prints why it is skipped and returns.
//! Expected phonemes come from piper-tts 1.8.0 (see fixtures/piper_ids.tsv and MODEL.md).

use std::time::Instant;

use tts_model::phonemize::{
    PhonemeIdMap, PhonemizeError, Phonemizer, sentences_from_phoneme_string,
};

fn phonemizer() -> Option<Phonemizer> {
    match Phonemizer::new("en-us") {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("SKIPPED: espeak-ng unavailable: {e}");
            None
        }
    }
}

fn id_map() -> PhonemeIdMap {
    let fixture = include_str!("fixtures/piper_ids.tsv");
    let line = fixture
        .lines()
        .find_map(|l| l.strip_prefix("# phoneme_id_map "))
        .expect("map line");
    PhonemeIdMap::from_json_value(&serde_json::from_str(line).expect("json")).expect("map")
}

fn strings(p: &Phonemizer, text: &str) -> Vec<String> {
    p.phonemize(text)
        .expect("phonemize")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn hello_world_to_ids() {
    let Some(p) = phonemizer() else { return };
    let s = p.phonemize("Hello world.").unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].to_string(), "həlˈoʊ wˈɜːld.");
    let e = s[0].encode(&id_map());
    assert!(e.unknown.is_empty());
    assert_eq!(
        e.ids,
        vec![
            1, 0, 20, 0, 59, 0, 24, 0, 120, 0, 27, 0, 100, 0, 3, 0, 35, 0, 120, 0, 62, 0, 122, 0,
            24, 0, 17, 0, 10, 0, 2
        ]
    );
}

#[test]
fn clause_punctuation_and_sentences() {
    let Some(p) = phonemizer() else { return };
    // piper-tts: [həlˈoʊ, wˈɜːld!] [hˈaʊ ɑːɹ juː?] [fˈaɪn: θˈæŋks; bˈaɪ.]
    assert_eq!(
        strings(&p, "Hello, world! How are you? Fine: thanks; bye."),
        vec!["həlˈoʊ, wˈɜːld!", "hˈaʊ ɑːɹ juː?", "fˈaɪn: θˈæŋks; bˈaɪ."]
    );
    // A trailing comma is kept, with its space, and the text end closes the sentence.
    assert_eq!(strings(&p, "Hello world,"), vec!["həlˈoʊ wˈɜːld, "]);
    // No punctuation at the end: no terminator.
    assert_eq!(strings(&p, "Hello world"), vec!["həlˈoʊ wˈɜːld"]);
    // A blank line ends a sentence without a terminator.
    assert_eq!(strings(&p, "Hello.\n\nWorld."), vec!["həlˈoʊ", "wˈɜːld."]);
}

#[test]
fn empty_and_whitespace_text_give_no_sentences() {
    let Some(p) = phonemizer() else { return };
    assert!(p.phonemize("").unwrap().is_empty());
    assert!(p.phonemize("   \n\t ").unwrap().is_empty());
}

#[test]
fn only_punctuation_is_read_like_piper() {
    let Some(p) = phonemizer() else { return };
    // piper-tts 1.8.0 gives [('ˈɛkskləmˌeɪʃən', '', True)]: espeak-ng names the last mark.
    assert_eq!(strings(&p, "  . , ! "), vec!["ˈɛkskləmˌeɪʃən"]);
    // A lone ellipsis gives nothing to say (piper: one empty clause).
    assert!(p.phonemize("\u{2026}").unwrap().is_empty());
}

#[test]
fn unknown_symbols_are_reported_not_fatal() {
    let map = id_map();
    let s = sentences_from_phoneme_string("həlˈoʊ ☃ wˈɜːld.");
    let e = s[0].encode(&map);
    assert_eq!(e.unknown, vec!['☃']);
    // The ids are those of the sentence without the snowman and one of its spaces.
    let clean = sentences_from_phoneme_string("həlˈoʊ wˈɜːld.");
    let mut expected = clean[0].encode(&map).ids;
    // "həlˈoʊ ☃ wˈɜːld." has two spaces around the dropped symbol: one more (space, pad) pair.
    let space = map.get(" ").unwrap()[0];
    let pos = expected.iter().position(|&x| x == space).unwrap();
    expected.splice(pos..pos, [space, 0]);
    assert_eq!(e.ids, expected);
}

#[test]
fn nul_and_unknown_voice_are_errors() {
    let Some(p) = phonemizer() else { return };
    assert!(matches!(
        p.phonemize("a\0b"),
        Err(PhonemizeError::TextContainsNul)
    ));
    let err = Phonemizer::new("xx-no-such-voice").unwrap_err();
    assert!(matches!(err, PhonemizeError::UnknownVoice { .. }), "{err}");
    assert!(err.to_string().contains("espeak-ng --voices"));
    // The failed voice change does not break the working phonemizer.
    assert_eq!(strings(&p, "Hello world."), vec!["həlˈoʊ wˈɜːld."]);
}

#[test]
fn interleaved_iterators_give_the_same_sentences() {
    let Some(p) = phonemizer() else { return };
    let a = "Time: 3:30, ok. One more sentence here! And a third? Yes.";
    let b = "Another text entirely. With sentences, clauses; and more: stuff. End";
    let (ea, eb) = (strings(&p, a), strings(&p, b));
    let (mut ia, mut ib) = (p.sentences(a).unwrap(), p.sentences(b).unwrap());
    let (mut ga, mut gb) = (Vec::new(), Vec::new());
    loop {
        let x = ia.next().map(|r| r.unwrap().to_string());
        let y = ib.next().map(|r| r.unwrap().to_string());
        if x.is_none() && y.is_none() {
            break;
        }
        ga.extend(x);
        gb.extend(y);
    }
    assert_eq!(ga, ea);
    assert_eq!(gb, eb);
    // The look-ahead digit of "Time: 3:30" survives interleaving: piper reads "three thirty".
    assert!(ga[0].contains("θɹˈiː θˈɜːɾi"), "{}", ga[0]);
}

#[test]
fn threads_share_espeak_safely() {
    let Some(p) = phonemizer() else { return };
    let texts = [
        "The quick brown fox jumps over the lazy dog. Again, and again!",
        "She sells sea shells by the sea shore. Really? Yes.",
        "To be, or not to be: that is the question.",
    ];
    let expected: Vec<Vec<String>> = texts.iter().map(|t| strings(&p, t)).collect();
    std::thread::scope(|s| {
        for (t, e) in texts.iter().zip(&expected) {
            let p = p.clone();
            s.spawn(move || {
                for _ in 0..20 {
                    assert_eq!(&strings(&p, t), e);
                }
            });
        }
    });
}

#[test]
fn one_megabyte_of_text_streams() {
    let Some(p) = phonemizer() else { return };
    let sentence = "The quick brown fox jumps over the lazy dog. ";
    let text = sentence.repeat((1 << 20) / sentence.len() + 1);
    assert!(text.len() > 1 << 20);
    let t0 = Instant::now();
    let mut it = p.sentences(&text).unwrap();
    let first = it.next().unwrap().unwrap();
    let first_latency = t0.elapsed();
    assert_eq!(
        first.to_string(),
        "ðə kwˈɪk bɹˈaʊn fˈɑːks dʒˈʌmps ˌoʊvɚ ðə lˈeɪzi dˈɑːɡ."
    );
    // The first sentence must not wait for the whole megabyte.
    assert!(
        first_latency.as_secs_f64() < 2.0,
        "first sentence took {first_latency:?}"
    );
    // Read a few hundred more sentences lazily: same phonemes every time.
    for _ in 0..300 {
        assert_eq!(it.next().unwrap().unwrap(), first);
    }
}

#[test]

fn one_megabyte_of_text_completes() {
    let Some(p) = phonemizer() else { return };
    let sentence = "The quick brown fox jumps over the lazy dog. ";
    let n = (1 << 20) / sentence.len() + 1;
    let text = sentence.repeat(n);
    let t0 = Instant::now();
    let mut count = 0;
    for s in p.sentences(&text).unwrap() {
        s.unwrap();
        count += 1;
    }
    eprintln!("{n} sentences in {:?}", t0.elapsed());
    assert_eq!(count, n);
}
