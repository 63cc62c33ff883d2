//! Kernel JIT: TT-Metal kernel source -> host shared object, in a content-addressed cache.
//!
//! The emulation headers (`tt-sim/emu/`) are embedded in this binary and written to
//! `<cache>/emu-<hash>/include` on first use; the source tree is never read at run time. A kernel is
//! compiled with the host C++ compiler (`$TT_SIM_CXX`, else `c++`) as C++20, `-O2 -fPIC -shared`,
//! with `-DKERNEL_COMPILE_TIME_ARGS=a,b,c`, the kernel's defines and the simulator's own defines. The
//! output is keyed by SHA-256 of compiler, flags, source and headers, and moved into the cache with an
//! atomic rename, so concurrent processes can share one cache.
//!
//! Cache directory: `$TT_SIM_CACHE_DIR`, else `$XDG_CACHE_HOME/tt-sim`, else `~/.cache/tt-sim`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::error::{SimError, SimResult};

/// Embedded emulation headers: (path under include/, contents).
const HEADERS: &[(&str, &str)] = &[
    (
        "tt_sim/host_api.h",
        include_str!("../emu/tt_sim/host_api.h"),
    ),
    ("tt_sim/common.h", include_str!("../emu/tt_sim/common.h")),
    (
        "tt_sim/dprint_impl.h",
        include_str!("../emu/tt_sim/dprint_impl.h"),
    ),
    (
        "tt_sim/dataflow.h",
        include_str!("../emu/tt_sim/dataflow.h"),
    ),
    (
        "tt_sim/tensor_accessor.h",
        include_str!("../emu/tt_sim/tensor_accessor.h"),
    ),
    ("tt_sim/compute.h", include_str!("../emu/tt_sim/compute.h")),
    ("tt_sim/prelude.h", include_str!("../emu/tt_sim/prelude.h")),
    ("tt_sim/entry.h", include_str!("../emu/tt_sim/entry.h")),
];

/// Public include paths that forward to the data movement API.
const DATAFLOW_ALIASES: &[&str] = &[
    "api/dataflow/dataflow_api.h",
    "dataflow_api.h",
    "api/tensor/tensor_accessor.h",
    "api/tensor/tensor_accessor_args.h",
    "tensor_accessor.h",
    "tensor_accessor_args.h",
    "accessor/tensor_accessor.h",
    "debug/assert.h",
];

/// Public include paths that forward to the compute API (0.81 `api/compute/...` and the older
/// `compute_kernel_api/...`).
const COMPUTE_HEADER_NAMES: &[&str] = &[
    "common.h",
    "tile_move_copy.h",
    "eltwise_binary.h",
    "eltwise_binary_sfpu.h",
    "matmul.h",
    "bcast.h",
    "reduce.h",
    "transpose_wh.h",
    "transpose.h",
    "tilize.h",
    "untilize.h",
    "pack_untilize.h",
    "pack.h",
    "reg_api.h",
    "cb_api.h",
    "reconfig_data_format.h",
    "compute_kernel_hw_startup.h",
    "eltwise_unary/eltwise_unary.h",
    "eltwise_unary/exp.h",
    "eltwise_unary/recip.h",
    "eltwise_unary/sqrt.h",
    "eltwise_unary/rsqrt.h",
    "eltwise_unary/gelu.h",
    "eltwise_unary/sigmoid.h",
    "eltwise_unary/tanh.h",
    "eltwise_unary/relu.h",
    "eltwise_unary/log.h",
    "eltwise_unary/typecast.h",
    "eltwise_unary/negative.h",
    "eltwise_unary/softplus.h",
    "eltwise_unary/activations.h",
    "eltwise_unary/sfpu_split_includes.h",
    "eltwise_unary/trigonometry.h",
    "eltwise_unary/binop_with_scalar.h",
    "eltwise_unary/fill.h",
    "eltwise_unary/square.h",
    "eltwise_unary/abs.h",
];

fn all_files() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = HEADERS
        .iter()
        .map(|(p, c)| (p.to_string(), c.to_string()))
        .collect();
    for a in DATAFLOW_ALIASES {
        v.push((
            a.to_string(),
            "#pragma once\n#include \"tt_sim/dataflow.h\"\n".into(),
        ));
    }
    for d in [
        "api/debug/dprint.h",
        "debug/dprint.h",
        "api/debug/waypoint.h",
        "debug/waypoint.h",
    ] {
        v.push((
            d.to_string(),
            "#pragma once\n#include \"tt_sim/common.h\"\n".into(),
        ));
    }
    let fwd = "#pragma once\n#include \"tt_sim/compute.h\"\n";
    for n in COMPUTE_HEADER_NAMES {
        v.push((format!("api/compute/{n}"), fwd.into()));
        v.push((format!("compute_kernel_api/{n}"), fwd.into()));
    }
    // TT-Metal's shared host/device constants; kernels use VALID/INVALID for multicast flags.
    v.push((
        "hostdevcommon/common_values.hpp".into(),
        "#pragma once\n#include <cstdint>\n\
         constexpr static std::uint32_t INVALID = 0;\n\
         constexpr static std::uint32_t VALID = 1;\n"
            .into(),
    ));
    v.push(("compute_kernel_api.h".into(), fwd.into()));
    v.push(("api/compute/compute_kernel_api.h".into(), fwd.into()));
    v
}

/// Root of the kernel cache.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("TT_SIM_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("tt-sim");
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".cache").join("tt-sim");
    }
    std::env::temp_dir().join("tt-sim-cache")
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A unique scratch path next to `dir`.
pub(crate) fn scratch_name(dir: &Path, stem: &str) -> PathBuf {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{stem}-{}-{n}", std::process::id()))
}

fn io_err(what: &str, p: &Path, e: std::io::Error) -> SimError {
    SimError::Device(format!(
        "{what} {}: {e} (set TT_SIM_CACHE_DIR to a writable directory)",
        p.display()
    ))
}

struct HeaderDir {
    include: PathBuf,
    hash: String,
}

static HEADER_DIR: OnceLock<Result<HeaderDir, SimError>> = OnceLock::new();

fn header_dir() -> SimResult<&'static HeaderDir> {
    let r = HEADER_DIR.get_or_init(|| {
        let files = all_files();
        let mut h = Sha256::new();
        for (p, c) in &files {
            h.update(p.as_bytes());
            h.update([0]);
            h.update(c.as_bytes());
            h.update([0]);
        }
        let hash = hex(&h.finalize())[..16].to_string();
        let root = cache_dir();
        let dir = root.join(format!("emu-{hash}"));
        let include = dir.join("include");
        if !include.is_dir() {
            std::fs::create_dir_all(&root)
                .map_err(|e| io_err("cannot create the kernel cache", &root, e))?;
            let tmp = scratch_name(&root, "emu");
            for (p, c) in &files {
                let f = tmp.join("include").join(p);
                if let Some(parent) = f.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| io_err("cannot create", parent, e))?;
                }
                std::fs::write(&f, c).map_err(|e| io_err("cannot write", &f, e))?;
            }
            if std::fs::rename(&tmp, &dir).is_err() {
                // Another process won the race; use its copy.
                let _ = std::fs::remove_dir_all(&tmp);
                if !include.is_dir() {
                    return Err(SimError::Device(format!(
                        "cannot install the emulation headers into {}",
                        dir.display()
                    )));
                }
            }
        }
        Ok(HeaderDir { include, hash })
    });
    r.as_ref().map_err(|e| e.clone())
}

/// Writes the embedded emulation headers into the cache (once per process) and returns the include
/// directory to pass with `-I`, together with `-include tt_sim/prelude.h` (and, at the end of the
/// source, `#include "tt_sim/entry.h"`), e.g. to syntax-check kernels with the host compiler.
pub fn emulation_include_dir() -> SimResult<PathBuf> {
    Ok(header_dir()?.include.clone())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What to compile.
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    /// Kernel name (for messages).
    pub name: &'a str,
    /// Full source.
    pub source: &'a str,
    /// Compile-time args.
    pub compile_args: &'a [u32],
    /// User defines (name, value).
    pub defines: &'a [(String, String)],
    /// Simulator defines (name, value): RISC, NoC, compute config.
    pub sim_defines: Vec<(String, String)>,
}

/// A compiled kernel image (the bytes of the shared object).
#[derive(Debug)]
pub struct KernelBinary {
    /// The cache key.
    pub key: String,
    /// The shared object's bytes.
    pub bytes: Vec<u8>,
}

static BUILT: OnceLock<Mutex<std::collections::HashMap<String, Arc<KernelBinary>>>> =
    OnceLock::new();

fn compiler() -> String {
    std::env::var("TT_SIM_CXX").unwrap_or_else(|_| "c++".to_string())
}

/// Builds (or takes from the cache) a kernel.
pub fn build(req: &BuildRequest<'_>) -> SimResult<Arc<KernelBinary>> {
    let hd = header_dir()?;
    let cxx = compiler();
    let mut flags: Vec<String> = vec![
        "-std=c++20".into(),
        "-O2".into(),
        "-fPIC".into(),
        "-shared".into(),
        "-fvisibility=hidden".into(),
        "-Wl,-z,now".into(),
        "-Wno-deprecated-declarations".into(),
        format!("-I{}", hd.include.display()),
        "-include".into(),
        "tt_sim/prelude.h".into(),
    ];
    let cta = if req.compile_args.is_empty() {
        String::new()
    } else {
        req.compile_args
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    flags.push(format!("-DKERNEL_COMPILE_TIME_ARGS={cta}"));
    for (k, v) in req.sim_defines.iter().chain(req.defines.iter()) {
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(SimError::InvalidArgument(format!(
                "kernel '{}': define name {k:?} is not a C identifier",
                req.name
            )));
        }
        flags.push(if v.is_empty() {
            format!("-D{k}")
        } else {
            format!("-D{k}={v}")
        });
    }
    let mut h = Sha256::new();
    h.update(cxx.as_bytes());
    h.update([0]);
    h.update(hd.hash.as_bytes());
    for f in &flags {
        if f.starts_with("-I") {
            continue;
        }
        h.update(f.as_bytes());
        h.update([0]);
    }
    h.update(req.source.as_bytes());
    let key = hex(&h.finalize())[..32].to_string();

    let built = BUILT.get_or_init(|| Mutex::new(Default::default()));
    if let Some(b) = built.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(b.clone());
    }
    let root = cache_dir();
    let kdir = root.join("kernels");
    let so = kdir.join(format!("{key}.so"));
    if !so.is_file() {
        std::fs::create_dir_all(&kdir).map_err(|e| io_err("cannot create", &kdir, e))?;
        let tmp = scratch_name(&kdir, "build");
        std::fs::create_dir_all(&tmp).map_err(|e| io_err("cannot create", &tmp, e))?;
        let src = tmp.join("kernel.cpp");
        let mut text = String::with_capacity(req.source.len() + 64);
        text.push_str(req.source);
        text.push_str("\n#include \"tt_sim/entry.h\"\n");
        std::fs::write(&src, text).map_err(|e| io_err("cannot write", &src, e))?;
        let out = tmp.join("kernel.so");
        let res = Command::new(&cxx)
            .args(&flags)
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .output();
        let res = match res {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(SimError::KernelBuild(format!(
                    "kernel '{}': cannot run the C++ compiler '{cxx}': {e}. The simulator JIT-compiles kernels \
                     and needs a C++20 compiler at run time (install g++ or set TT_SIM_CXX)",
                    req.name
                )));
            }
        };
        if !res.status.success() {
            let _ = std::fs::remove_dir_all(&tmp);
            let msg =
                String::from_utf8_lossy(&res.stderr).replace(&*src.to_string_lossy(), req.name);
            return Err(SimError::KernelBuild(format!(
                "kernel '{}' failed to compile:\n{}",
                req.name,
                msg.trim_end()
            )));
        }
        if std::fs::rename(&out, &so).is_err() && !so.is_file() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(SimError::Device(format!(
                "cannot move the built kernel into {}",
                so.display()
            )));
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let bytes = std::fs::read(&so).map_err(|e| io_err("cannot read", &so, e))?;
    let bin = Arc::new(KernelBinary {
        key: key.clone(),
        bytes,
    });
    built
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, bin.clone());
    Ok(bin)
}
