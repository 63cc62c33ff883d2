//! Finding a provider, checking its table, and keeping the library alive while the table is in use.

use std::ffi::{CStr, OsStr, OsString, c_char};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bindings::{TT_SHIM_ABI_VERSION, tt_shim_api, tt_shim_get_api_fn, tt_status};

/// File name of the TT-Metal provider built by `build.rs` (see the crate docs).
pub const METAL_LIBRARY_NAME: &str = "libtt_shim_metal.so";
/// Environment variable naming a provider library to load instead of searching.
pub const LIBRARY_ENV: &str = "TT_SHIM_LIB";
/// The symbol every provider library exports (`tt_shim_get_api_fn`).
pub const GET_API_SYMBOL: &str = "tt_shim_get_api";

/// Where `build.rs` put the metal provider when TT-Metal was found at build time.
const BUILT_METAL_LIBRARY: Option<&str> = option_env!("TT_SHIM_METAL_BUILT");

/// What `build.rs` did about the metal provider (`built PATH`, or why it was not built).
pub const METAL_BUILD_NOTE: &str = match option_env!("TT_SHIM_METAL_NOTE") {
    Some(note) => note,
    None => "no note from build.rs",
};

/// Why a provider could not be loaded. Every variant says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No candidate file exists (or the dynamic loader found nothing under the bare name).
    #[error(
        "no tt_shim provider library found; searched:\n{}\n(tt-sys build: {METAL_BUILD_NOTE})\nBuild tt-sys with TT_METAL_HOME (or \
         TT_METAL_RUNTIME_ROOT) pointing at a TT-Metal build so that build.rs compiles {METAL_LIBRARY_NAME}, \
         or set {LIBRARY_ENV}=/path/to/{METAL_LIBRARY_NAME}",
        list_paths(.searched)
    )]
    LibraryNotFound {
        /// Every path tried, in order (the last may be a bare name handed to the dynamic loader).
        searched: Vec<PathBuf>,
    },
    /// The file exists but the dynamic loader refused it (often a missing dependency such as
    /// `libtt_metal.so`: add TT-Metal's `build/lib` to `LD_LIBRARY_PATH`).
    #[error(
        "could not load {path}: {source}. If a dependency such as libtt_metal.so is missing, add \
         TT-Metal's build/lib directory to LD_LIBRARY_PATH",
        path = .path.display()
    )]
    LoadFailed {
        /// The library that failed to load.
        path: PathBuf,
        /// What the dynamic loader said.
        #[source]
        source: libloading::Error,
    },
    /// The library does not export `tt_shim_get_api`: it is not a tt_shim provider.
    #[error(
        "{path} does not export `{GET_API_SYMBOL}` ({source}); it is not a tt_shim provider: point \
         {LIBRARY_ENV} at {METAL_LIBRARY_NAME}",
        path = .path.display()
    )]
    SymbolMissing {
        /// The library that lacks the symbol.
        path: PathBuf,
        /// What the dynamic loader said.
        #[source]
        source: libloading::Error,
    },
    /// The provider implements another version of the ABI.
    #[error(
        "provider {provider} implements tt_shim ABI v{found}, this crate expects v{expected}: rebuild \
         the provider from this tt-sys (or use a tt-sys matching the provider)"
    )]
    AbiMismatch {
        /// Library path or provider name.
        provider: String,
        /// `TT_SHIM_ABI_VERSION` of this crate.
        expected: u32,
        /// `abi_version` reported by the provider (0 when it did not fill the table).
        found: u32,
    },
    /// The provider's table is shorter than this crate's or lacks functions the ABI requires.
    #[error(
        "provider {provider} returned an incomplete table (struct_size {struct_size}, this crate needs \
         {needed}; missing functions: [{}]): rebuild the provider from this tt-sys",
        .missing.join(", ")
    )]
    IncompleteTable {
        /// Library path or provider name.
        provider: String,
        /// `struct_size` reported by the provider.
        struct_size: u32,
        /// `size_of::<tt_shim_api>()` of this crate.
        needed: u32,
        /// Names of the function pointers that are NULL.
        missing: Vec<&'static str>,
    },
    /// `tt_shim_get_api` itself returned an error.
    #[error("provider {provider}: tt_shim_get_api failed with {} ({status}): {message}", crate::result::status_name(*.status))]
    ProviderFailed {
        /// Library path or provider name.
        provider: String,
        /// The status it returned.
        status: tt_status::Type,
        /// Its last error message, when it filled enough of the table to ask.
        message: String,
    },
}

fn list_paths(paths: &[PathBuf]) -> String {
    let lines: Vec<String> = paths.iter().map(|p| format!("  {}", p.display())).collect();
    lines.join("\n")
}

/// A checked provider function table, plus the library that holds its code (kept alive by the `Arc`
/// for as long as any clone of this `Api` exists).
#[derive(Clone)]
pub struct Api {
    lib: Option<Arc<libloading::Library>>,
    table: tt_shim_api,
    origin: String,
}

// SAFETY: the table is immutable after construction; its function pointers and `provider_name` refer
// to code and static data of a provider that (by the tt_shim.h contract) may be called from any
// thread. The per-handle "one thread at a time" rule is a precondition of the `unsafe` wrappers in
// `result`, which take the handles. `libloading::Library` is itself Send + Sync.
unsafe impl Send for Api {}
// SAFETY: see `Send`: shared references only read the immutable table.
unsafe impl Sync for Api {}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("provider", &self.provider_name())
            .field("origin", &self.origin)
            .field("abi_version", &self.table.abi_version)
            .field("struct_size", &self.table.struct_size)
            .finish()
    }
}

/// Room for a provider table up to 64 times the v1 size: a provider that (wrongly) writes a table of a
/// later ABI into our buffer cannot overrun it. Only the prefix we know is kept.
#[repr(C, align(16))]
struct TableBuffer([u8; 64 * size_of::<tt_shim_api>()]);

/// The v1 function pointers, by name, and whether each is present.
fn missing_functions(t: &tt_shim_api) -> Vec<&'static str> {
    let present: [(&'static str, bool); 20] = [
        ("last_error", t.last_error.is_some()),
        ("device_count", t.device_count.is_some()),
        ("device_open", t.device_open.is_some()),
        ("device_close", t.device_close.is_some()),
        ("device_info", t.device_info.is_some()),
        (
            "worker_core_from_logical",
            t.worker_core_from_logical.is_some(),
        ),
        ("dram_bank_noc_coord", t.dram_bank_noc_coord.is_some()),
        ("buffer_create", t.buffer_create.is_some()),
        ("buffer_destroy", t.buffer_destroy.is_some()),
        ("buffer_address", t.buffer_address.is_some()),
        ("buffer_write", t.buffer_write.is_some()),
        ("buffer_read", t.buffer_read.is_some()),
        ("program_create", t.program_create.is_some()),
        ("program_destroy", t.program_destroy.is_some()),
        (
            "program_add_circular_buffer",
            t.program_add_circular_buffer.is_some(),
        ),
        ("program_add_semaphore", t.program_add_semaphore.is_some()),
        ("program_add_kernel", t.program_add_kernel.is_some()),
        (
            "program_set_runtime_args",
            t.program_set_runtime_args.is_some(),
        ),
        (
            "program_set_common_runtime_args",
            t.program_set_common_runtime_args.is_some(),
        ),
        ("program_run", t.program_run.is_some()),
    ];
    present
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| *name)
        .collect()
}

impl Api {
    /// Loads the provider library at `path` (a path, or a bare file name for the dynamic loader's own
    /// search) and checks its table.
    ///
    /// Trust: loading runs the library's initialisers and later calls its functions; like linking
    /// against it, this trusts the file to be a tt_shim provider. Name only libraries you trust.
    pub fn load(path: impl AsRef<OsStr>) -> Result<Api, LoadError> {
        let path = PathBuf::from(path.as_ref());
        // SAFETY: loading a shared library runs its initialisers; the caller chose this library as a
        // tt_shim provider (documented trust decision above). We hold no locks and pass a valid path.
        let lib = unsafe { libloading::Library::new(path.as_os_str()) }.map_err(|source| {
            LoadError::LoadFailed {
                path: path.clone(),
                source,
            }
        })?;
        Self::from_library(lib, &path)
    }

    /// Loads the first provider found by [`Api::search_paths`]: `$TT_SHIM_LIB` alone when set;
    /// otherwise the library `build.rs` built, `libtt_shim_metal.so` beside the executable (and its
    /// parent directory, for test binaries in `target/*/deps`), in TT-Metal's build directories under
    /// `$TT_METAL_RUNTIME_ROOT` and `$TT_METAL_HOME`, and finally the bare name for the dynamic loader
    /// (`LD_LIBRARY_PATH`, rpath, ld.so.cache).
    pub fn load_default() -> Result<Api, LoadError> {
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let explicit = env(LIBRARY_ENV).is_some();
        Self::load_first(&Self::search_paths_with(&env), explicit)
    }

    /// The candidates [`Api::load_default`] tries, in order, under the current environment.
    pub fn search_paths() -> Vec<PathBuf> {
        Self::search_paths_with(&|name: &str| std::env::var_os(name).filter(|v| !v.is_empty()))
    }

    /// The candidates [`Api::load_default`] tries, reading environment variables through `env`.
    pub fn search_paths_with(env: &dyn Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
        if let Some(explicit) = env(LIBRARY_ENV) {
            return vec![PathBuf::from(explicit)];
        }
        let mut out = Vec::new();
        if let Some(built) = BUILT_METAL_LIBRARY {
            out.push(PathBuf::from(built));
        }
        if let Ok(exe) = std::env::current_exe()
            && let Some(dir) = exe.parent()
        {
            out.push(dir.join(METAL_LIBRARY_NAME));
            if dir.file_name() == Some(OsStr::new("deps"))
                && let Some(up) = dir.parent()
            {
                out.push(up.join(METAL_LIBRARY_NAME));
            }
        }
        for var in ["TT_METAL_RUNTIME_ROOT", "TT_METAL_HOME"] {
            if let Some(root) = env(var) {
                let root = PathBuf::from(root);
                for sub in ["build/lib", "build_Release/lib", "build_Debug/lib", "lib"] {
                    out.push(root.join(sub).join(METAL_LIBRARY_NAME));
                }
            }
        }
        out.push(PathBuf::from(METAL_LIBRARY_NAME));
        out
    }

    /// Loads the first candidate that exists. A candidate equal to the bare [`METAL_LIBRARY_NAME`]
    /// goes to the dynamic loader's own search. A file that exists but fails to load is reported as
    /// such (no further search). With `explicit` (the user named one library), a bare-name failure is
    /// reported as it is rather than as "not found".
    pub fn load_first(candidates: &[PathBuf], explicit: bool) -> Result<Api, LoadError> {
        let mut searched = Vec::new();
        for candidate in candidates {
            let is_bare = candidate.as_os_str() == OsStr::new(METAL_LIBRARY_NAME);
            if !is_bare && !candidate.is_file() {
                searched.push(candidate.clone());
                continue;
            }
            match Self::load(candidate) {
                // The bare name goes through the dynamic loader's search; if that finds nothing, the
                // library is simply not installed.
                Err(LoadError::LoadFailed { source, .. })
                    if is_bare && !explicit && is_not_found(&source) =>
                {
                    searched.push(PathBuf::from(format!(
                        "{METAL_LIBRARY_NAME} (dynamic loader search: LD_LIBRARY_PATH, rpath, ld.so.cache)"
                    )));
                }
                other => return other,
            }
        }
        Err(LoadError::LibraryNotFound { searched })
    }

    fn from_library(lib: libloading::Library, path: &Path) -> Result<Api, LoadError> {
        let origin = path.display().to_string();
        // SAFETY: `tt_shim_get_api_fn` is the type tt_shim.h declares for this symbol; the library is
        // trusted to be a provider (see `load`). The copied function pointer is used only while `lib`
        // is alive (it is moved into the returned `Api` or dropped after the call).
        let get_api: tt_shim_get_api_fn = unsafe {
            lib.get::<tt_shim_get_api_fn>(GET_API_SYMBOL.as_bytes())
                .map(|sym| *sym)
                .map_err(|source| LoadError::SymbolMissing {
                    path: path.to_path_buf(),
                    source,
                })?
        };
        let Some(get_api) = get_api else {
            return Err(LoadError::IncompleteTable {
                provider: origin,
                struct_size: 0,
                needed: size_of::<tt_shim_api>() as u32,
                missing: vec![GET_API_SYMBOL],
            });
        };
        let table = call_get_api(get_api, &origin)?;
        Self::checked(Some(Arc::new(lib)), table, origin)
    }

    /// Wraps the table of an in-process provider (the simulator), with the same checks as
    /// [`Api::load`].
    ///
    /// # Safety
    /// Every function pointer in `table` must implement the tt_shim.h contract for as long as the
    /// returned `Api` (or a clone) lives, and `provider_name` must be NULL or a NUL-terminated string
    /// that lives as long. Prefer [`Api::from_get_api`], which has no such precondition of its own.
    pub unsafe fn from_table(table: tt_shim_api) -> Result<Api, LoadError> {
        let origin = format!("in-process table {:p}", table.provider_name);
        Self::checked(None, table, origin)
    }

    /// Asks an in-process provider's `tt_shim_get_api` for its table and checks it.
    ///
    /// `get_api` must behave as tt_shim.h says `tt_shim_get_api` does (fill at most the table of the
    /// requested version, with pointers valid for the life of the process).
    pub fn from_get_api(
        get_api: unsafe extern "C" fn(u32, *mut tt_shim_api) -> tt_status::Type,
    ) -> Result<Api, LoadError> {
        let table = call_get_api(get_api, "in-process provider")?;
        Self::checked(None, table, "in-process provider".to_owned())
    }

    fn checked(
        lib: Option<Arc<libloading::Library>>,
        table: tt_shim_api,
        origin: String,
    ) -> Result<Api, LoadError> {
        if table.abi_version != TT_SHIM_ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                provider: origin,
                expected: TT_SHIM_ABI_VERSION,
                found: table.abi_version,
            });
        }
        let needed = size_of::<tt_shim_api>() as u32;
        let missing = missing_functions(&table);
        if table.struct_size < needed || !missing.is_empty() {
            return Err(LoadError::IncompleteTable {
                provider: origin,
                struct_size: table.struct_size,
                needed,
                missing,
            });
        }
        let api = Api { lib, table, origin };
        Ok(api)
    }

    /// The raw table (for calls the `result` wrappers do not cover).
    pub fn table(&self) -> &tt_shim_api {
        &self.table
    }

    /// The library the table lives in; `None` for an in-process provider.
    pub fn library(&self) -> Option<&Arc<libloading::Library>> {
        self.lib.as_ref()
    }

    /// Where the table came from: the library path, or a description of the in-process provider.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The provider's name (`"metal"`, `"sim"`, ...); `"?"` if it gave none.
    pub fn provider_name(&self) -> String {
        c_string(self.table.provider_name).unwrap_or_else(|| "?".to_owned())
    }

    /// The calling thread's last error message of this provider (empty when none).
    pub fn last_error(&self) -> String {
        match self.table.last_error {
            // SAFETY: `last_error` takes no arguments and, by contract, returns NULL-or-a-string valid
            // until the next call on this thread; we copy it at once.
            Some(f) => c_string(unsafe { f() }).unwrap_or_default(),
            None => String::new(),
        }
    }
}

/// Copies a C string owned by the provider (valid by contract at the time of the call).
pub(crate) fn c_string(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL strings handed out by a provider are NUL-terminated and valid until the next
    // call on this thread (tt_shim.h); we copy before making another call.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

fn call_get_api(
    get_api: unsafe extern "C" fn(u32, *mut tt_shim_api) -> tt_status::Type,
    origin: &str,
) -> Result<tt_shim_api, LoadError> {
    let mut buffer = Box::new(TableBuffer([0; 64 * size_of::<tt_shim_api>()]));
    let out = buffer.0.as_mut_ptr().cast::<tt_shim_api>();
    // SAFETY: `out` points to zeroed, 16-aligned memory with room for 64 v1 tables; the provider writes
    // at most its table there (contract of tt_shim_get_api).
    let status = unsafe { get_api(TT_SHIM_ABI_VERSION, out) };
    // SAFETY: the buffer is large and aligned enough for a `tt_shim_api`, and every bit pattern the
    // provider can leave is valid for it (integers, raw pointers, and `Option<fn>` where all-zero is
    // `None`; non-zero function pointers are the provider's responsibility per its contract).
    let table = unsafe { out.read() };
    if status == tt_status::TT_ERR_ABI_MISMATCH {
        return Err(LoadError::AbiMismatch {
            provider: origin.to_owned(),
            expected: TT_SHIM_ABI_VERSION,
            found: table.abi_version,
        });
    }
    if status != tt_status::TT_OK {
        let message = if table.abi_version == TT_SHIM_ABI_VERSION {
            match table.last_error {
                // SAFETY: as in `Api::last_error`.
                Some(f) => c_string(unsafe { f() }).unwrap_or_default(),
                None => String::new(),
            }
        } else {
            String::new()
        };
        return Err(LoadError::ProviderFailed {
            provider: origin.to_owned(),
            status,
            message: if message.is_empty() {
                "(the provider left no message)".to_owned()
            } else {
                message
            },
        });
    }
    Ok(table)
}

fn is_not_found(err: &libloading::Error) -> bool {
    // dlopen's message for a bare name that nothing provides:
    // "libtt_shim_metal.so: cannot open shared object file: No such file or directory".
    let text = err.to_string();
    text.contains(METAL_LIBRARY_NAME) && text.contains("No such file or directory")
}
