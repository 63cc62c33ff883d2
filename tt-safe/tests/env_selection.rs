//! Provider selection from the environment. Each case runs this test binary again as a child
//! process with the variables set (setting variables in-process would race other tests), and the
//! child reports what `Device::open_default()` chose.

use std::process::Command;

const CHILD: &str = "TT_SAFE_ENV_CHILD";

/// In a child (`TT_SAFE_ENV_CHILD=1`) prints the outcome of `Device::open_default()`; in a normal
/// run it does nothing.
#[test]
fn env_child_probe() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    match tt_safe::Device::open_default() {
        Ok(d) => println!(
            "RESULT provider={} arch={:?} why={}",
            d.provider(),
            d.arch(),
            d.selection()
        ),
        Err(e) => println!("RESULT error={}", e.to_string().replace('\n', " | ")),
    }
}

fn probe(vars: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "env_child_probe",
        "--nocapture",
        "--test-threads=1",
    ]);
    for v in ["TT_DEVICE", "TT_SIM_ARCH", "TT_DEVICE_ID", "TT_SHIM_LIB"] {
        cmd.env_remove(v);
    }
    cmd.env(CHILD, "1");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r.to_owned()))
        .unwrap_or_else(|| {
            panic!(
                "child printed no result:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

#[test]
fn tt_device_sim_with_arch() {
    let r = probe(&[("TT_DEVICE", "sim"), ("TT_SIM_ARCH", "blackhole")]);
    assert!(
        r.starts_with("provider=sim arch=Blackhole") && r.contains("TT_DEVICE=sim"),
        "{r}"
    );
    let r = probe(&[("TT_DEVICE", "sim")]);
    assert!(r.starts_with("provider=sim arch=WormholeB0"), "{r}");
}

#[test]
fn bad_values_are_errors_that_list_the_choices() {
    let r = probe(&[("TT_DEVICE", "gpu")]);
    assert!(
        r.contains("TT_DEVICE=\"gpu\"") && r.contains("sim or metal"),
        "{r}"
    );
    let r = probe(&[("TT_SIM_ARCH", "grayskull")]);
    assert!(
        r.contains("TT_SIM_ARCH") && r.contains("wormhole or blackhole"),
        "{r}"
    );
    let r = probe(&[("TT_DEVICE", "metal"), ("TT_DEVICE_ID", "one")]);
    assert!(r.contains("TT_DEVICE_ID"), "{r}");
}

#[test]
fn metal_requested_but_missing_is_an_error_not_a_fallback() {
    let r = probe(&[
        ("TT_DEVICE", "metal"),
        ("TT_SHIM_LIB", "/nonexistent/libtt_shim_metal.so"),
    ]);
    assert!(
        r.starts_with("error=") && r.contains("metal provider is not available"),
        "{r}"
    );
    // Naming a library that does not load is an error even without TT_DEVICE.
    let r = probe(&[("TT_SHIM_LIB", "/nonexistent/libtt_shim_metal.so")]);
    assert!(
        r.starts_with("error=") && r.contains("/nonexistent/libtt_shim_metal.so"),
        "{r}"
    );
}

#[test]
fn automatic_choice_says_why() {
    let r = probe(&[("TT_SIM_ARCH", "wormhole")]);
    // With no metal shim installed the simulator is chosen and the reason is recorded; on a host
    // with TT-Metal the metal provider is chosen.
    assert!(
        (r.starts_with("provider=sim") && r.contains("automatic: no metal shim"))
            || (r.starts_with("provider=metal") && r.contains("automatic: metal shim")),
        "{r}"
    );
}
