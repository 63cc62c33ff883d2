//! Build script of `tt-kernels`:
//! 1. embeds every file under `kernels/` into the crate (`$OUT_DIR/kernels.rs`: one `pub const`
//!    per file plus a lookup table by path), so a binary never reads the source tree at run time;
//! 2. syntax-checks every kernel (`kernels/**/*.cpp`) with the host C++ compiler
//!    (`g++ -fsyntax-only -std=c++20`) against the simulator's emulation headers (`tt-sim/emu/`),
//!    exactly as the simulator's JIT will see them (force-included prelude, appended entry point,
//!    the simulator's defines). A kernel that does not compile fails the build with the compiler's
//!    message.
//!
//! Kernels under `kernels/compute/`, or that include a compute API header, are checked as compute
//! kernels, all others as data movement
//! kernels (on Wormhole and, when the source mentions `ARCH_`, on Blackhole too). Every
//! `get_compile_time_arg_val(i)` reads 2 during the check (a non-sharded DRAM `TensorAccessorArgs`
//! config word and a small count), so kernels must compile for any argument values.
//!
//! The compiler is `$TT_KERNELS_CXX`, else `g++`, else `c++`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "src/kernel_kind.rs"]
mod kernel_kind;

/// Compile-time args seen by the syntax check.
const CHECK_COMPILE_ARGS: usize = 64;
const CHECK_COMPILE_ARG_VALUE: u32 = 2;

fn main() {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let kernels_dir = manifest.join("kernels");
    let emu_dir = manifest.join("tt-sim").join("emu");

    println!("cargo:rerun-if-changed={}", kernels_dir.display());
    println!("cargo:rerun-if-changed={}", emu_dir.display());
    println!("cargo:rerun-if-env-changed=TT_KERNELS_CXX");

    let mut files = Vec::new();
    if kernels_dir.is_dir() {
        walk(&kernels_dir, &mut files);
    }
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    write_catalogue(&kernels_dir, &files, &out_dir.join("kernels.rs"));
    syntax_check(&kernels_dir, &files, &emu_dir, &out_dir);
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fail(&format!("cargo did not set {name}")))
}

fn fail(msg: &str) -> ! {
    eprintln!("\nerror: {msg}\n");
    std::process::exit(1);
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| fail(&format!("cannot list {}: {e}", dir.display())));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| fail(&format!("cannot list {}: {e}", dir.display())));
        let path = entry.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            walk(&path, out);
        } else if path.is_file() {
            out.push(path);
        }
    }
}

fn rel(kernels_dir: &Path, file: &Path) -> String {
    file.strip_prefix(kernels_dir)
        .unwrap_or(file)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// `dataflow/reader_unary.cpp` -> `DATAFLOW_READER_UNARY`.
fn const_name(rel: &str) -> String {
    let stem = rel
        .rsplit_once('.')
        .map_or(rel, |(s, ext)| if ext.contains('/') { rel } else { s });
    let mut name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

fn write_catalogue(kernels_dir: &Path, files: &[PathBuf], out: &Path) {
    let mut code = String::new();
    let mut names = BTreeSet::new();
    let mut table = Vec::new();
    for f in files {
        let r = rel(kernels_dir, f);
        let name = const_name(&r);
        if !names.insert(name.clone()) {
            fail(&format!(
                "kernels/{r} maps to the constant name {name}, which another file already uses: rename one of them"
            ));
        }
        let _ = writeln!(code, "/// Source of `kernels/{r}`.");
        let _ = writeln!(
            code,
            "pub const {name}: &str = include_str!({:?});",
            f.display().to_string()
        );
        table.push((r, name));
    }
    let _ = writeln!(
        code,
        "/// Every embedded file as `(path under kernels/, source)`, sorted by path."
    );
    let _ = writeln!(code, "pub const ALL: &[(&str, &str)] = &[");
    for (r, name) in &table {
        let _ = writeln!(code, "    ({r:?}, {name}),");
    }
    let _ = writeln!(code, "];");
    std::fs::write(out, code)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", out.display())));
}

fn find_compiler() -> String {
    let candidates: Vec<String> = match std::env::var("TT_KERNELS_CXX") {
        Ok(c) if !c.trim().is_empty() => vec![c],
        _ => vec!["g++".into(), "c++".into()],
    };
    for c in &candidates {
        if Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c.clone();
        }
    }
    fail(&format!(
        "no C++ compiler found (tried {}). tt-kernels syntax-checks its TT-Metal kernels at build time and the \
         simulator JIT-compiles them at run time, so a C++20 compiler is required (see README): install one, \
         e.g. `sudo apt-get install g++`, or point TT_KERNELS_CXX at it",
        candidates.join(", ")
    ))
}

/// Which emulation header an include path forwards to (mirrors the simulator JIT's aliases).
fn forward_target(include: &str) -> Option<&'static str> {
    let dataflow = [
        "api/dataflow/",
        "dataflow_api.h",
        "api/tensor/",
        "tensor_accessor.h",
        "tensor_accessor_args.h",
        "accessor/",
        "debug/assert.h",
    ];
    if dataflow.iter().any(|p| include.starts_with(p)) {
        return Some("tt_sim/dataflow.h");
    }
    if include.starts_with("api/compute/") || include.starts_with("compute_kernel_api") {
        return Some("tt_sim/compute.h");
    }
    if include.starts_with("api/debug/") || include.starts_with("debug/") {
        return Some("tt_sim/common.h");
    }
    None
}

fn quoted_includes(source: &str) -> Vec<String> {
    source
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let rest = l.strip_prefix('#')?.trim_start().strip_prefix("include")?;
            let rest = rest.trim_start().strip_prefix('"')?;
            rest.split_once('"').map(|(p, _)| p.to_owned())
        })
        .collect()
}

fn copy_emu_headers(emu_dir: &Path, include: &Path) {
    let src = emu_dir.join("tt_sim");
    let dst = include.join("tt_sim");
    std::fs::create_dir_all(&dst)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", dst.display())));
    let entries = std::fs::read_dir(&src).unwrap_or_else(|e| {
        fail(&format!(
            "cannot read the simulator's emulation headers in {}: {e}. tt-kernels checks its kernels \
             against them; the directory is part of the workspace (tt-sim/emu/tt_sim)",
            src.display()
        ))
    });
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_file() {
            println!("cargo:rerun-if-changed={}", p.display());
            let to = dst.join(entry.file_name());
            std::fs::copy(&p, &to).unwrap_or_else(|e| {
                fail(&format!(
                    "cannot copy {} to {}: {e}",
                    p.display(),
                    to.display()
                ))
            });
        }
    }
}

struct Check {
    kernel: String,
    variant: &'static str,
    command: Command,
}

fn syntax_check(kernels_dir: &Path, files: &[PathBuf], emu_dir: &Path, out_dir: &Path) {
    let kernels: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "cpp"))
        .collect();
    if kernels.is_empty() {
        return;
    }
    let cxx = find_compiler();
    let include = out_dir.join("emu-include");
    let _ = std::fs::remove_dir_all(&include);
    copy_emu_headers(emu_dir, &include);

    let wrappers = out_dir.join("syntax-check");
    let _ = std::fs::remove_dir_all(&wrappers);
    std::fs::create_dir_all(&wrappers)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", wrappers.display())));

    let cta = vec![CHECK_COMPILE_ARG_VALUE.to_string(); CHECK_COMPILE_ARGS].join(",");
    let mut checks = Vec::new();
    for (i, k) in kernels.iter().enumerate() {
        let r = rel(kernels_dir, k);
        let source = std::fs::read_to_string(k)
            .unwrap_or_else(|e| fail(&format!("cannot read kernels/{r}: {e}")));
        for inc in quoted_includes(&source) {
            if let Some(target) = forward_target(&inc) {
                let path = include.join(&inc);
                if !path.exists() {
                    if let Some(parent) = path.parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    let text = format!("#pragma once\n#include \"{target}\"\n");
                    std::fs::write(&path, text)
                        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
                }
            }
        }
        let compute = kernel_kind::is_compute(&r, &source);
        let wrapper = wrappers.join(format!("k{i}.cpp"));
        let text = format!(
            "#include \"{}\"\n#include \"tt_sim/entry.h\"\n",
            k.display()
        );
        std::fs::write(&wrapper, text)
            .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", wrapper.display())));

        let mut variants: Vec<(&'static str, Vec<String>)> = Vec::new();
        if compute {
            variants.push((
                "compute",
                [
                    "-DARCH_WORMHOLE",
                    "-DCOMPILE_FOR_TRISC",
                    "-DTT_SIM_COMPUTE=1",
                    "-DTT_SIM_APPROX=0",
                    "-DTT_SIM_FP32_DEST_ACC=0",
                    "-DTT_SIM_DST_FULL_SYNC=0",
                    "-DTT_SIM_MATH_FIDELITY=4",
                    "-DNOC_MAX_BURST_SIZE=8192",
                ]
                .map(String::from)
                .to_vec(),
            ));
        } else {
            variants.push((
                "data movement, Wormhole",
                [
                    "-DARCH_WORMHOLE",
                    "-DCOMPILE_FOR_BRISC",
                    "-DNOC_INDEX=0",
                    "-DNOC_MAX_BURST_SIZE=8192",
                ]
                .map(String::from)
                .to_vec(),
            ));
            if source.contains("ARCH_") {
                variants.push((
                    "data movement, Blackhole",
                    [
                        "-DARCH_BLACKHOLE",
                        "-DCOMPILE_FOR_NCRISC",
                        "-DNOC_INDEX=1",
                        "-DNOC_MAX_BURST_SIZE=16384",
                    ]
                    .map(String::from)
                    .to_vec(),
                ));
            }
        }
        for (variant, defines) in variants {
            let mut c = Command::new(&cxx);
            c.arg("-fsyntax-only")
                .arg("-std=c++20")
                .arg("-Wall")
                .arg("-Wno-unused-variable")
                .arg("-Wno-unused-but-set-variable")
                // entry.h tests `&kernel_main != nullptr` (weak symbol): not the kernel's business.
                .arg("-Wno-address")
                .arg("-Werror=return-type")
                .arg(format!("-I{}", include.display()))
                .arg("-include")
                .arg("tt_sim/prelude.h")
                .arg(format!("-DKERNEL_COMPILE_TIME_ARGS={cta}"))
                .args(&defines)
                .arg(&wrapper);
            checks.push(Check {
                kernel: r.clone(),
                variant,
                command: c,
            });
        }
    }

    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8));
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    for chunk in checks.chunks_mut(parallel) {
        let children: Vec<_> = chunk
            .iter_mut()
            .map(|c| {
                c.command
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
            })
            .collect();
        for (check, child) in chunk.iter().zip(children) {
            let output: std::io::Result<Output> = child.and_then(|c| c.wait_with_output());
            match output {
                Err(e) => failures.push(format!(
                    "kernels/{} ({}): cannot run {cxx}: {e}",
                    check.kernel, check.variant
                )),
                Ok(o) => {
                    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
                    if !o.status.success() {
                        failures.push(format!(
                            "kernels/{} ({}) does not compile against the simulator's emulation headers:\n{}",
                            check.kernel,
                            check.variant,
                            stderr.trim_end()
                        ));
                    } else if !stderr.trim().is_empty() {
                        warnings.push(format!(
                            "kernels/{} ({}): {}",
                            check.kernel,
                            check.variant,
                            stderr.lines().next().unwrap_or_default()
                        ));
                    }
                }
            }
        }
    }
    for w in warnings {
        println!("cargo:warning={w}");
    }
    if !failures.is_empty() {
        fail(&format!(
            "{} kernel syntax check(s) failed ({cxx} -fsyntax-only -std=c++20):\n\n{}",
            failures.len(),
            failures.join("\n\n")
        ));
    }
}
