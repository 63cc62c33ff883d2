//! Loader and `result` wrapper tests against fake providers built from `tests/fake/fake_provider.c`
//! with the system C compiler (`cc`). Tests that need it say so and pass vacuously only when `cc` is
//! absent, printing why.

use std::path::{Path, PathBuf};
use std::process::Command;

use tt_sys::loader::METAL_LIBRARY_NAME;
use tt_sys::{Api, LoadError, TT_SHIM_ABI_VERSION, tt_device_open_options, tt_shim_api, tt_status};

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the fake provider with `defines` into a uniquely named shared object; `None` (with a note
/// on stderr) when no C compiler is available.
fn build_fake(tag: &str, defines: &[&str]) -> Option<PathBuf> {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tt_sys_fake_{tag}.so"));
    let mut cmd = Command::new("cc");
    cmd.args(["-shared", "-fPIC", "-std=c11", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(crate_dir().join("tests/fake/fake_provider.c"));
    for d in defines {
        cmd.arg(format!("-D{d}"));
    }
    match cmd.output() {
        Ok(o) if o.status.success() => Some(out),
        Ok(o) => panic!(
            "cc failed to build the fake provider {tag}: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            eprintln!("SKIPPED: no C compiler `cc` to build the fake provider ({e})");
            None
        }
    }
}

#[test]
fn missing_library_lists_every_searched_path() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let a = dir.join("does-not-exist-a").join(METAL_LIBRARY_NAME);
    let b = dir.join("does-not-exist-b").join(METAL_LIBRARY_NAME);
    let err = Api::load_first(&[a.clone(), b.clone()], false).unwrap_err();
    match &err {
        LoadError::LibraryNotFound { searched } => {
            assert_eq!(searched, &vec![a.clone(), b.clone()])
        }
        other => panic!("expected LibraryNotFound, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&a.display().to_string()), "{text}");
    assert!(text.contains(&b.display().to_string()), "{text}");
    assert!(
        text.contains("TT_SHIM_LIB"),
        "the message must say how to fix it: {text}"
    );
}

#[test]
fn search_order_follows_the_environment() {
    let env_explicit = |name: &str| (name == "TT_SHIM_LIB").then(|| "/opt/x/libshim.so".into());
    assert_eq!(
        Api::search_paths_with(&env_explicit),
        vec![PathBuf::from("/opt/x/libshim.so")],
        "TT_SHIM_LIB alone is tried when set"
    );

    let env_roots = |name: &str| match name {
        "TT_METAL_RUNTIME_ROOT" => Some("/rt".into()),
        "TT_METAL_HOME" => Some("/home/tt-metal".into()),
        _ => None,
    };
    let paths = Api::search_paths_with(&env_roots);
    let pos = |p: &str| {
        paths
            .iter()
            .position(|x| x == Path::new(p))
            .unwrap_or_else(|| panic!("{p} not in {paths:?}"))
    };
    let exe_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let beside = exe_dir.join(METAL_LIBRARY_NAME);
    let beside_pos = paths
        .iter()
        .position(|x| *x == beside)
        .expect("beside the executable");
    assert!(beside_pos < pos("/rt/build/lib/libtt_shim_metal.so"));
    assert!(
        pos("/rt/build/lib/libtt_shim_metal.so")
            < pos("/home/tt-metal/build/lib/libtt_shim_metal.so")
    );
    assert_eq!(
        paths.last().unwrap(),
        Path::new(METAL_LIBRARY_NAME),
        "bare name last"
    );
}

#[test]
fn a_file_that_is_not_a_library_fails_to_load() {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tt_sys_not_a_library.so");
    std::fs::write(&path, b"this is text, not ELF").unwrap();
    match Api::load_first(std::slice::from_ref(&path), false) {
        Err(LoadError::LoadFailed { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected LoadFailed, got {other:?}"),
    }
}

#[test]
fn library_without_the_symbol_is_symbol_missing() {
    let Some(lib) = build_fake("nosym", &["FAKE_NO_SYMBOL"]) else {
        return;
    };
    match Api::load(&lib) {
        Err(LoadError::SymbolMissing { path, .. }) => assert_eq!(path, lib),
        other => panic!("expected SymbolMissing, got {other:?}"),
    }
}

#[test]
fn provider_of_another_version_is_abi_mismatch() {
    let Some(lib) = build_fake("v2", &["FAKE_VERSION=2"]) else {
        return;
    };
    match Api::load(&lib) {
        Err(LoadError::AbiMismatch {
            expected, found, ..
        }) => {
            assert_eq!((expected, found), (TT_SHIM_ABI_VERSION, 2))
        }
        other => panic!("expected AbiMismatch, got {other:?}"),
    }
}

#[test]
fn provider_refusing_the_version_is_abi_mismatch() {
    let Some(lib) = build_fake(
        "refuse",
        &["FAKE_VERSION=7", "FAKE_GETAPI_STATUS=TT_ERR_ABI_MISMATCH"],
    ) else {
        return;
    };
    match Api::load(&lib) {
        Err(LoadError::AbiMismatch {
            expected, found, ..
        }) => {
            assert_eq!((expected, found), (TT_SHIM_ABI_VERSION, 7))
        }
        other => panic!("expected AbiMismatch, got {other:?}"),
    }
}

#[test]
fn failing_get_api_is_provider_failed_with_its_message() {
    let Some(lib) = build_fake("fail", &["FAKE_GETAPI_STATUS=TT_ERR_DEVICE"]) else {
        return;
    };
    match Api::load(&lib) {
        Err(LoadError::ProviderFailed {
            status, message, ..
        }) => {
            assert_eq!(status, tt_status::TT_ERR_DEVICE);
            assert_eq!(message, "driver not loaded (fake)");
        }
        other => panic!("expected ProviderFailed, got {other:?}"),
    }
}

#[test]
fn table_with_a_null_function_is_incomplete() {
    let Some(lib) = build_fake("droprun", &["FAKE_DROP_RUN"]) else {
        return;
    };
    match Api::load(&lib) {
        Err(LoadError::IncompleteTable { missing, .. }) => assert_eq!(missing, vec!["program_run"]),
        other => panic!("expected IncompleteTable, got {other:?}"),
    }
}

#[test]
fn a_longer_table_from_a_later_provider_is_accepted() {
    let Some(lib) = build_fake("big", &["FAKE_BIG_TABLE"]) else {
        return;
    };
    let api = Api::load(&lib).expect("a longer table keeps the v1 prefix");
    assert_eq!(
        api.table().struct_size as usize,
        size_of::<tt_shim_api>() + 64
    );
    assert_eq!(api.device_count().unwrap(), 3);
}

#[test]
fn result_wrappers_carry_status_and_message() {
    let Some(lib) = build_fake("ok", &[]) else {
        return;
    };
    let api = Api::load(&lib).expect("the fake provider loads");
    assert_eq!(api.provider_name(), "fake");
    assert_eq!(api.origin(), lib.display().to_string());

    // A clone keeps the library mapped after the original is dropped.
    let clone = api.clone();
    drop(api);
    assert_eq!(clone.device_count().unwrap(), 3);

    let opts = tt_device_open_options {
        device_id: 7,
        ..Default::default()
    };
    let err = clone.device_open(&opts).unwrap_err();
    assert_eq!(err.status, tt_status::TT_ERR_DEVICE);
    assert_eq!(err.call, "device_open");
    // The wrapper fills struct_size for the caller.
    let expected = format!(
        "no device 7 (struct_size {})",
        size_of::<tt_device_open_options>()
    );
    assert_eq!(err.message, expected);
    assert!(err.to_string().contains("TT_ERR_DEVICE"), "{err}");

    // Api can move to another thread; the message is per thread and read on the calling one.
    let handle = std::thread::spawn(move || {
        // SAFETY (test): a NULL device handle is never dereferenced by the fake's unsupported stub.
        let e = unsafe { clone.device_info(std::ptr::null_mut()) }.unwrap_err();
        (e.status, e.message)
    });
    let (status, message) = handle.join().unwrap();
    assert_eq!(status, tt_status::TT_ERR_UNSUPPORTED);
    assert_eq!(message, "device_info is not faked");
}

unsafe extern "C" fn get_api_v9(_requested: u32, out: *mut tt_shim_api) -> tt_status::Type {
    let t = tt_shim_api {
        abi_version: 9,
        struct_size: size_of::<tt_shim_api>() as u32,
        ..Default::default()
    };
    // SAFETY: the loader passes a buffer with room for a table.
    unsafe { out.write(t) };
    tt_status::TT_OK
}

#[test]
fn in_process_providers_are_checked_too() {
    match Api::from_get_api(get_api_v9) {
        Err(LoadError::AbiMismatch { found: 9, .. }) => {}
        other => panic!("expected AbiMismatch, got {other:?}"),
    }
    let empty = tt_shim_api {
        abi_version: TT_SHIM_ABI_VERSION,
        struct_size: size_of::<tt_shim_api>() as u32,
        ..Default::default()
    };
    // SAFETY: the table has no function pointers and a NULL name; it is rejected before any use.
    match unsafe { Api::from_table(empty) } {
        Err(LoadError::IncompleteTable { missing, .. }) => assert_eq!(missing.len(), 20),
        other => panic!("expected IncompleteTable, got {other:?}"),
    }
}
