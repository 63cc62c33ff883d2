//! espeak-ng, loaded at run time with `libloading` (no build-time dependency).
//!
//! espeak-ng keeps all of its state in globals (the selected voice, the clause reader's one-character
//! look-ahead, ...), so every call goes through one process-wide mutex. A caller that phonemizes a
//! long text clause by clause may be interleaved with other callers between two clauses; the
//! [`Session`] bookkeeping below detects that and re-synchronises espeak-ng before continuing (see
//! [`Engine::next_clause`]).

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::PhonemizeError;

/// `AUDIO_OUTPUT_SYNCHRONOUS` from `speak_lib.h`.
const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
/// `espeakINITIALIZE_DONT_EXIT`: report errors instead of calling `exit()`.
const ESPEAK_INITIALIZE_DONT_EXIT: c_int = 0x8000;
/// `espeakCHARS_AUTO`: UTF-8, falling back to 8-bit for invalid sequences (what Piper passes).
const ESPEAK_CHARS_AUTO: c_int = 0;
/// `espeakPHONEMES_IPA`: phonemes as IPA (UTF-8) instead of espeak's ASCII mnemonics.
const ESPEAK_PHONEMES_IPA: c_int = 0x02;
/// `EE_OK`.
const EE_OK: c_int = 0;

type InitializeFn = unsafe extern "C" fn(c_int, c_int, *const c_char, c_int) -> c_int;
type SetVoiceByNameFn = unsafe extern "C" fn(*const c_char) -> c_int;
type TextToPhonemesFn = unsafe extern "C" fn(*mut *const c_void, c_int, c_int) -> *const c_char;
type InfoFn = unsafe extern "C" fn(*mut *const c_char) -> *const c_char;

/// Library names tried in order when `TTS_ESPEAK_LIB` is not set.
pub const LIBRARY_CANDIDATES: &[&str] = &[
    "libespeak-ng.so.1",
    "libespeak-ng.so",
    "libespeak-ng.1.dylib",
    "libespeak-ng.dylib",
];

/// Environment variable naming an explicit espeak-ng shared library to load.
pub const LIBRARY_ENV: &str = "TTS_ESPEAK_LIB";

/// One loaded and initialised espeak-ng.
pub(crate) struct Engine {
    initialize_done: bool,
    set_voice: SetVoiceByNameFn,
    text_to_phonemes: TextToPhonemesFn,
    version: String,
    /// Voice most recently selected with `espeak_SetVoiceByName`.
    current_voice: Option<String>,
    /// The session whose clause reader state espeak-ng currently holds (0: none / clean).
    owner: u64,
    /// Keeps the library mapped for as long as the function pointers above are used.
    _lib: libloading::Library,
}

static ENGINE: Mutex<Option<Engine>> = Mutex::new(None);
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// Locks the global engine, loading and initialising espeak-ng on first use.
pub(crate) fn lock(data_path: Option<&Path>) -> Result<EngineGuard, PhonemizeError> {
    // A panic while the lock was held cannot leave espeak-ng in a state we rely on (sessions
    // re-synchronise anyway), so a poisoned lock is taken over.
    let mut guard = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = Some(Engine::load(data_path)?);
    }
    Ok(EngineGuard(guard))
}

/// A locked engine; dereferences to [`Engine`].
pub(crate) struct EngineGuard(MutexGuard<'static, Option<Engine>>);

impl std::ops::Deref for EngineGuard {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        // `lock` only returns a guard after storing `Some`.
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("engine stored before guard returned"))
    }
}

impl std::ops::DerefMut for EngineGuard {
    fn deref_mut(&mut self) -> &mut Engine {
        self.0
            .as_mut()
            .unwrap_or_else(|| unreachable!("engine stored before guard returned"))
    }
}

fn load_library() -> Result<(libloading::Library, String), PhonemizeError> {
    let candidates: Vec<String> = match std::env::var(LIBRARY_ENV) {
        Ok(path) if !path.is_empty() => vec![path],
        _ => LIBRARY_CANDIDATES.iter().map(|s| s.to_string()).collect(),
    };
    let mut errors = Vec::new();
    for name in &candidates {
        // SAFETY: loading espeak-ng runs its (trivial) ELF constructors only; we load the library
        // by the names espeak-ng is installed under, or the one the user named explicitly.
        match unsafe { libloading::Library::new(name) } {
            Ok(lib) => return Ok((lib, name.clone())),
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    Err(PhonemizeError::LibraryNotFound {
        tried: errors.join("; "),
    })
}

fn symbol<T: Copy>(lib: &libloading::Library, name: &str) -> Result<T, PhonemizeError> {
    let cname = format!("{name}\0");
    // SAFETY: `T` is the exact C signature of `name` as declared in espeak-ng's `speak_lib.h`
    // (stable since espeak 1.48); the pointer is used only while `lib` stays loaded (Engine owns it).
    unsafe { lib.get::<T>(cname.as_bytes()) }
        .map(|s| *s)
        .map_err(|e| PhonemizeError::MissingSymbol {
            symbol: name.to_string(),
            detail: e.to_string(),
        })
}

impl Engine {
    fn load(data_path: Option<&Path>) -> Result<Self, PhonemizeError> {
        let (lib, lib_name) = load_library()?;
        let initialize: InitializeFn = symbol(&lib, "espeak_Initialize")?;
        let set_voice: SetVoiceByNameFn = symbol(&lib, "espeak_SetVoiceByName")?;
        let text_to_phonemes: TextToPhonemesFn = symbol(&lib, "espeak_TextToPhonemes")?;
        let info: InfoFn = symbol(&lib, "espeak_Info")?;

        let path_c = match data_path {
            Some(p) => {
                if !p.join("phontab").is_file() {
                    return Err(PhonemizeError::DataPath {
                        path: p.to_path_buf(),
                        detail: "no `phontab` in it (is it an espeak-ng-data directory?)".into(),
                    });
                }
                let s = p.to_str().ok_or_else(|| PhonemizeError::DataPath {
                    path: p.to_path_buf(),
                    detail: "path is not valid UTF-8".into(),
                })?;
                Some(CString::new(s).map_err(|_| PhonemizeError::DataPath {
                    path: p.to_path_buf(),
                    detail: "path contains a NUL byte".into(),
                })?)
            }
            None => None,
        };
        let path_ptr = path_c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        // SAFETY: synchronous mode needs no callback; `path_ptr` is NULL (library default) or a
        // NUL-terminated string that outlives the call; DONT_EXIT makes failures return -1.
        let rate = unsafe {
            initialize(
                AUDIO_OUTPUT_SYNCHRONOUS,
                0,
                path_ptr,
                ESPEAK_INITIALIZE_DONT_EXIT,
            )
        };
        if rate <= 0 {
            return Err(PhonemizeError::Initialize {
                library: lib_name,
                data_path: data_path.map(Path::to_path_buf),
                code: rate,
            });
        }
        // SAFETY: `espeak_Info` returns a pointer to a static NUL-terminated version string; the
        // out-parameter may be NULL.
        let version = unsafe {
            let v = info(std::ptr::null_mut());
            if v.is_null() {
                String::from("unknown")
            } else {
                CStr::from_ptr(v).to_string_lossy().into_owned()
            }
        };
        Ok(Engine {
            initialize_done: true,
            set_voice,
            text_to_phonemes,
            version,
            current_voice: None,
            owner: 0,
            _lib: lib,
        })
    }

    /// espeak-ng's version string, e.g. `1.51`.
    pub(crate) fn version(&self) -> &str {
        &self.version
    }

    /// Selects `voice` (e.g. `en-us`) unless it is already selected.
    pub(crate) fn select_voice(&mut self, voice: &str) -> Result<(), PhonemizeError> {
        debug_assert!(self.initialize_done);
        if self.current_voice.as_deref() == Some(voice) {
            return Ok(());
        }
        let c = CString::new(voice).map_err(|_| PhonemizeError::UnknownVoice {
            voice: voice.into(),
        })?;
        // SAFETY: `c` is a NUL-terminated string valid for the duration of the call.
        let rc = unsafe { (self.set_voice)(c.as_ptr()) };
        if rc != EE_OK {
            self.current_voice = None;
            return Err(PhonemizeError::UnknownVoice {
                voice: voice.into(),
            });
        }
        self.current_voice = Some(voice.to_string());
        Ok(())
    }

    /// Runs `espeak_TextToPhonemes` once on `text[start..]` (which must be NUL-terminated).
    /// Returns the IPA of one clause and the byte offset where espeak-ng stopped reading, or `None`
    /// when it reached the end of the text.
    fn raw_clause(
        &mut self,
        text: &CStr,
        start: usize,
    ) -> Result<(String, Option<usize>), PhonemizeError> {
        let bytes = text.to_bytes_with_nul();
        debug_assert!(start < bytes.len());
        let base = bytes.as_ptr();
        // SAFETY: `start` is within the NUL-terminated buffer, so `ptr` points at a valid C string.
        let mut ptr: *const c_void = unsafe { base.add(start) }.cast();
        // SAFETY: espeak reads the C string at `ptr` and advances `ptr` within it (or sets it to
        // NULL at the end); the returned phoneme string is owned by espeak and valid until its
        // next call, which cannot happen before we copy it (we hold the global lock).
        let phonemes = unsafe {
            let out = (self.text_to_phonemes)(&mut ptr, ESPEAK_CHARS_AUTO, ESPEAK_PHONEMES_IPA);
            if out.is_null() {
                return Err(PhonemizeError::Espeak {
                    detail: "espeak_TextToPhonemes returned NULL".into(),
                });
            }
            CStr::from_ptr(out).to_string_lossy().into_owned()
        };
        let next = if ptr.is_null() {
            None
        } else {
            let off = (ptr as usize).wrapping_sub(base as usize);
            if off > bytes.len() {
                return Err(PhonemizeError::Espeak {
                    detail: format!("text pointer moved outside the text ({off})"),
                });
            }
            // espeak may leave the pointer on the terminating NUL: that is the end as well.
            if off >= bytes.len() - 1 {
                None
            } else {
                Some(off)
            }
        };
        Ok((phonemes, next))
    }

    /// Phonemizes the next clause of a session's text.
    ///
    /// espeak-ng reads one character past the end of a clause and keeps it in an internal
    /// "unget" slot for the next call. If another session used espeak-ng since this session's last
    /// call, that slot holds someone else's character: we flush it with a throw-away call and
    /// restart reading at this session's own look-ahead character instead.
    pub(crate) fn next_clause(
        &mut self,
        session: &mut Session,
        text: &CStr,
    ) -> Result<RawClause, PhonemizeError> {
        self.select_voice(&session.voice)?;
        let start = if self.owner == session.id {
            session.resume
        } else {
            if self.owner != 0 {
                self.flush()?;
            }
            session.clause_start
        };
        self.owner = session.id;
        let (phonemes, next) = match self.raw_clause(text, start) {
            Ok(v) => v,
            Err(e) => {
                self.owner = 0;
                return Err(e);
            }
        };
        let len = text.to_bytes().len();
        let clause_start = session.clause_start;
        let clause_end = match next {
            None => {
                // The reader consumed everything; its unget slot is empty again.
                self.owner = 0;
                len
            }
            Some(off) => {
                session.resume = off;
                // The last character read is the look-ahead that belongs to the next clause.
                let s = std::str::from_utf8(&text.to_bytes()[..off]).map_err(|_| {
                    PhonemizeError::Espeak {
                        detail: "espeak-ng stopped inside a UTF-8 sequence".into(),
                    }
                })?;
                let la = s.chars().next_back().map_or(0, char::len_utf8);
                off - la
            }
        };
        session.clause_start = clause_end;
        session.finished = next.is_none();
        Ok(RawClause {
            phonemes,
            start: clause_start,
            end: clause_end,
            at_end: next.is_none(),
        })
    }

    fn flush(&mut self) -> Result<(), PhonemizeError> {
        let dummy = c"a";
        self.raw_clause(dummy, 0).map(|_| ())
    }
}

/// One clause as espeak-ng returned it.
pub(crate) struct RawClause {
    /// IPA phonemes (may contain language-switch flags like `(fr)`).
    pub phonemes: String,
    /// Byte range of the clause's source text (the look-ahead character excluded).
    pub start: usize,
    pub end: usize,
    /// espeak-ng reached the end of the text with this clause.
    pub at_end: bool,
}

/// Reading position of one text being phonemized clause by clause.
pub(crate) struct Session {
    id: u64,
    voice: String,
    /// Where the next clause's text starts (including the previous look-ahead character).
    clause_start: usize,
    /// Where espeak-ng stopped reading (after the look-ahead character).
    resume: usize,
    pub finished: bool,
}

impl Session {
    pub(crate) fn new(voice: &str, text_len: usize) -> Self {
        Session {
            id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            voice: voice.to_string(),
            clause_start: 0,
            resume: 0,
            finished: text_len == 0,
        }
    }
}
