//! The real metal provider through the loader. Needs `libtt_shim_metal.so` (build tt-sys with
//! TT_METAL_HOME set, or point TT_SHIM_LIB at one); uses a device when one is present.
//! Run: `cargo test -p tt-sys --test metal -- --ignored`.

use tt_sys::{
    Api, tt_buffer_config, tt_buffer_layout, tt_buffer_type, tt_core_coord, tt_device_open_options,
    tt_status,
};

#[test]
#[ignore = "needs libtt_shim_metal.so: build tt-sys with TT_METAL_HOME set (or set TT_SHIM_LIB), then run with --ignored"]
fn metal_provider_loads_and_answers() {
    let api = match Api::load_default() {
        Ok(api) => api,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(api.provider_name(), "metal");

    let count = match api.device_count() {
        Ok(n) => n,
        Err(e) => {
            // No driver / no device: the provider must say so cleanly, not crash.
            assert!(!e.message.is_empty(), "an error without a message: {e:?}");
            eprintln!("no usable TT device here; the provider reported: {e}");
            return;
        }
    };
    eprintln!("metal provider sees {count} device(s)");

    let bad = tt_device_open_options {
        device_id: count + 1000,
        ..Default::default()
    };
    let err = api
        .device_open(&bad)
        .expect_err("a device id past the count must be refused");
    assert_eq!(err.status, tt_status::TT_ERR_INVALID_ARGUMENT, "{err}");
    if count == 0 {
        return;
    }

    let dev = api
        .device_open(&tt_device_open_options::default())
        .expect("open device 0");
    // SAFETY: `dev` is live until device_close below; buffers are destroyed before it.
    unsafe {
        let info = api.device_info(dev).expect("device_info");
        assert!(info.arch == 1 || info.arch == 2, "{info:?}");
        assert!(info.grid_x > 0 && info.grid_y > 0, "{info:?}");
        assert!(
            info.l1_unreserved_base > 0 && info.l1_unreserved_base < info.l1_size,
            "{info:?}"
        );
        let noc = api
            .worker_core_from_logical(dev, tt_core_coord { x: 0, y: 0 })
            .expect("noc of (0,0)");
        eprintln!("{info:?}; logical (0,0) is NoC {noc:?}");

        let page = 1024u32;
        let size = 5 * u64::from(page);
        let cfg = tt_buffer_config {
            size,
            page_size: page,
            buffer_type: tt_buffer_type::TT_BUFFER_DRAM,
            layout: tt_buffer_layout::TT_LAYOUT_INTERLEAVED,
            shard: std::ptr::null(),
        };
        let buf = api.buffer_create(dev, &cfg).expect("DRAM buffer");
        // Deterministic non-zero pattern (xorshift), different in every byte position.
        let mut x = 0x9E37_79B9u32;
        let data: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect();
        api.buffer_write(buf, 0, &data).expect("write");
        let mut back = vec![0u8; data.len()];
        api.buffer_read(buf, 0, &mut back).expect("read");
        assert_eq!(back, data, "DRAM round trip");
        api.buffer_destroy(buf).expect("buffer_destroy");
        api.device_close(dev).expect("device_close");
    }
}
