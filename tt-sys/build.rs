//! Builds the TT-Metal provider `libtt_shim_metal.so` when TT-Metal is present; otherwise does nothing.
//!
//! The Rust crate never needs TT-Metal, libclang or a C++ compiler: the bindings are committed and the
//! provider is loaded at run time. This script only adds the provider where `TT_METAL_HOME` (or
//! `TT_METAL_RUNTIME_ROOT`) names a TT-Metal tree whose headers and `libtt_metal.so` are found.
//!
//! Environment:
//! - `TT_METAL_HOME` / `TT_METAL_RUNTIME_ROOT`: the TT-Metal tree (source tree with `build*/lib`).
//! - `TT_SHIM_EXTRA_INCLUDES`, `CPM_SOURCE_CACHE`: where third-party headers are (see include-dirs.sh).
//! - `TT_SHIM_CXXFLAGS`: extra compiler flags; `TT_SHIM_LDFLAGS`: extra linker flags.
//! - `TT_SHIM_REQUIRE_METAL=1`: fail the build instead of skipping when TT-Metal is not found.
//! - `TT_SHIM_SKIP_METAL=1`: never build the provider.
//!
//! Outcome, visible to the crate: cfg `tt_shim_metal_built` and env `TT_SHIM_METAL_BUILT` (the path of
//! the library) when built; env `TT_SHIM_METAL_NOTE` always says what happened.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const WATCHED_ENV: &[&str] = &[
    "TT_METAL_HOME",
    "TT_METAL_RUNTIME_ROOT",
    "TT_SHIM_EXTRA_INCLUDES",
    "CPM_SOURCE_CACHE",
    "TT_SHIM_CXXFLAGS",
    "TT_SHIM_LDFLAGS",
    "TT_SHIM_REQUIRE_METAL",
    "TT_SHIM_SKIP_METAL",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tt_shim_metal_built)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=include/tt_shim.h");
    println!("cargo::rerun-if-changed=shim/metal");
    for var in WATCHED_ENV {
        println!("cargo::rerun-if-env-changed={var}");
    }

    match build_metal() {
        Ok(lib) => {
            println!("cargo::rustc-cfg=tt_shim_metal_built");
            println!("cargo::rustc-env=TT_SHIM_METAL_BUILT={}", lib.display());
            println!("cargo::metadata=metal_lib={}", lib.display());
            note(&format!("built {}", lib.display()));
        }
        Err(Skip::Quietly(why)) => {
            if flag("TT_SHIM_REQUIRE_METAL") {
                panic!("TT_SHIM_REQUIRE_METAL is set but the metal provider was not built: {why}");
            }
            note(&format!("metal provider not built: {why}"));
        }
        Err(Skip::Failed(why)) => panic!(
            "building the TT-Metal provider libtt_shim_metal.so failed: {why}\n\
             Fix the TT-Metal installation (headers and libtt_metal.so of the same version), or set \
             TT_SHIM_SKIP_METAL=1 to build without the provider."
        ),
    }
}

enum Skip {
    /// Nothing to build here (no TT-Metal): the normal case on most machines.
    Quietly(String),
    /// TT-Metal was found but the provider did not build.
    Failed(String),
}

/// Prints the note in the build script's output (seen with `cargo build -vv`) and hands it to the crate.
fn note(text: &str) {
    let one_line = text.replace('\n', " ");
    println!("tt-sys: {one_line}");
    println!("cargo::rustc-env=TT_SHIM_METAL_NOTE={one_line}");
}

fn flag(name: &str) -> bool {
    env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn env_path(name: &str) -> Option<PathBuf> {
    env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn build_metal() -> Result<PathBuf, Skip> {
    if flag("TT_SHIM_SKIP_METAL") {
        return Err(Skip::Quietly("TT_SHIM_SKIP_METAL is set".into()));
    }
    let roots: Vec<PathBuf> = ["TT_METAL_HOME", "TT_METAL_RUNTIME_ROOT"]
        .iter()
        .filter_map(|v| env_path(v))
        .collect();
    if roots.is_empty() {
        return Err(Skip::Quietly(
            "neither TT_METAL_HOME nor TT_METAL_RUNTIME_ROOT is set".into(),
        ));
    }
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let script = manifest.join("shim/metal/include-dirs.sh");

    let mut problems = Vec::new();
    for root in &roots {
        let out = Command::new("bash").arg(&script).arg(root).output();
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                return Err(Skip::Quietly(format!(
                    "cannot run bash for include-dirs.sh: {e}"
                )));
            }
        };
        if !out.status.success() {
            problems.push(format!(
                "{}: {}",
                root.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        let includes: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect();
        let Some(lib_dir) = find_lib_dir(&roots) else {
            problems.push(format!(
                "headers found under {} but no libtt_metal.so in build/lib, build_Release/lib, \
                 build_Debug/lib or lib of {}",
                root.display(),
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            break;
        };
        return compile(&manifest, &includes, &lib_dir).map_err(Skip::Failed);
    }
    Err(Skip::Quietly(format!(
        "TT-Metal headers not found ({})",
        problems.join("; ")
    )))
}

fn find_lib_dir(roots: &[PathBuf]) -> Option<PathBuf> {
    roots.iter().find_map(|root| {
        ["build/lib", "build_Release/lib", "build_Debug/lib", "lib"]
            .iter()
            .map(|sub| root.join(sub))
            .find(|dir| dir.join("libtt_metal.so").is_file())
    })
}

fn compile(manifest: &Path, includes: &[PathBuf], lib_dir: &Path) -> Result<PathBuf, String> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let has_fmt_lib = ["libfmt.so", "libfmt.a"]
        .iter()
        .any(|f| lib_dir.join(f).is_file());

    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++20")
        .pic(true)
        .cargo_metadata(false)
        .warnings(false)
        .file(manifest.join("shim/metal/tt_shim_metal.cpp"))
        .include(manifest.join("include"))
        .define("SPDLOG_FMT_EXTERNAL", "1")
        .flag("-fvisibility=hidden");
    if !has_fmt_lib {
        // libtt_metal.so carries fmt's symbols itself in some packagings; header-only fmt is safe.
        build.define("FMT_HEADER_ONLY", "1");
    }
    for dir in includes {
        build
            .flag("-isystem")
            .flag(dir.as_os_str().to_str().ok_or("non-UTF-8 include path")?);
    }
    for f in env::var("TT_SHIM_CXXFLAGS")
        .unwrap_or_default()
        .split_whitespace()
    {
        build.flag(f);
    }
    let objects = build
        .try_compile_intermediates()
        .map_err(|e| e.to_string())?;

    let lib = out_dir.join("libtt_shim_metal.so");
    let compiler = build.try_get_compiler().map_err(|e| e.to_string())?;
    let mut link = compiler.to_command();
    link.arg("-shared")
        .arg("-o")
        .arg(&lib)
        .args(&objects)
        .arg(format!("-L{}", lib_dir.display()))
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .args(["-ltt_metal", "-ltt_stl"])
        .args(["-Wl,--no-undefined", "-Wl,--allow-shlib-undefined"]);
    if has_fmt_lib {
        link.arg("-lfmt");
    }
    for f in env::var("TT_SHIM_LDFLAGS")
        .unwrap_or_default()
        .split_whitespace()
    {
        link.arg(f);
    }
    let out = link
        .output()
        .map_err(|e| format!("cannot run the linker: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "linking {} failed (a TT-Metal symbol the shim calls is missing: headers and library differ?):\n{}",
            lib.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(lib)
}
