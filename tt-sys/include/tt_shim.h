/*
 * tt_shim.h - the versioned C ABI between host code and a Tenstorrent device provider.
 *
 * Two providers implement this table:
 *   - "metal": tt-sys/shim/metal/tt_shim_metal.cpp over the TT-Metal 0.81-era mesh API, built into
 *     libtt_shim_metal.so where TT-Metal is installed and loaded at run time;
 *   - "sim":   the tt-sim crate, in-process.
 *
 * Contract
 *   - A provider exports `tt_shim_get_api(requested_version, &table)`. It fills a table whose
 *     `abi_version` equals TT_SHIM_ABI_VERSION and whose `struct_size` is sizeof(tt_shim_api) of the
 *     provider. New functions are only ever appended; a caller checks struct_size before using one.
 *   - Every function returns a tt_status. On anything but TT_OK the provider stores a human-readable
 *     message in a per-thread buffer returned by `last_error()` (valid until the next call on that
 *     thread). Messages say what failed and, where possible, what to do about it; errors raised while
 *     running kernels name the core (logical x,y), the RISC, the kernel and the call.
 *   - Handles are opaque; a handle is used from one thread at a time. Destroying a device destroys
 *     nothing else: buffers and programs must be destroyed first (the provider reports misuse).
 *   - Coordinates in the API are LOGICAL worker coordinates unless a name says `noc`.
 *   - No C++ exception ever crosses this boundary.
 *
 * Regenerate the Rust bindings after any change: `tt-sys/regen-bindings.sh`.
 */
#ifndef TT_SHIM_H
#define TT_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TT_SHIM_ABI_VERSION 1u

typedef enum tt_status {
    TT_OK = 0,
    TT_ERR_INVALID_ARGUMENT = 1,  /* a bad value: core outside the grid, bad size, bad index */
    TT_ERR_OUT_OF_MEMORY = 2,     /* L1 or DRAM allocation failed (message says how much is free) */
    TT_ERR_KERNEL_BUILD = 3,      /* a kernel failed to compile (message has the compiler output) */
    TT_ERR_KERNEL_FAULT = 4,      /* a running kernel broke a rule (watcher-grade check) */
    TT_ERR_DEADLOCK = 5,          /* no RISC can make progress (message lists every blocked call) */
    TT_ERR_UNSUPPORTED = 6,       /* the provider does not implement this feature */
    TT_ERR_DEVICE = 7,            /* the device or driver failed */
    TT_ERR_ABI_MISMATCH = 8,      /* caller and provider disagree on the ABI version */
    TT_ERR_INTERNAL = 9           /* a bug in the provider */
} tt_status;

typedef enum tt_arch {
    TT_ARCH_WORMHOLE_B0 = 1,
    TT_ARCH_BLACKHOLE = 2
} tt_arch;

/* TT-Metal DataFormat values (tt_metal/hw/inc/.../tensix_types.h), only those we support. */
typedef enum tt_data_format {
    TT_DF_FLOAT32 = 0,
    TT_DF_FLOAT16 = 1,
    TT_DF_BFP8 = 2,
    TT_DF_BFP4 = 3,
    TT_DF_FLOAT16_B = 5,
    TT_DF_BFP8_B = 6,
    TT_DF_BFP4_B = 7,
    TT_DF_INT32 = 8,
    TT_DF_UINT16 = 9,
    TT_DF_BFP2_B = 15,
    TT_DF_UINT32 = 24,
    TT_DF_UINT8 = 30,
    TT_DF_INVALID = 0xff
} tt_data_format;

typedef enum tt_math_fidelity {
    TT_FIDELITY_LOFI = 0,
    TT_FIDELITY_HIFI2 = 2,
    TT_FIDELITY_HIFI3 = 3,
    TT_FIDELITY_HIFI4 = 4
} tt_math_fidelity;

typedef enum tt_buffer_type { TT_BUFFER_DRAM = 0, TT_BUFFER_L1 = 1 } tt_buffer_type;

typedef enum tt_buffer_layout {
    TT_LAYOUT_INTERLEAVED = 0,
    TT_LAYOUT_HEIGHT_SHARDED = 1,
    TT_LAYOUT_WIDTH_SHARDED = 2,
    TT_LAYOUT_BLOCK_SHARDED = 3
} tt_buffer_layout;

typedef enum tt_shard_orientation { TT_SHARD_ROW_MAJOR = 0, TT_SHARD_COL_MAJOR = 1 } tt_shard_orientation;

typedef enum tt_kernel_kind { TT_KERNEL_DATA_MOVEMENT = 0, TT_KERNEL_COMPUTE = 1 } tt_kernel_kind;

/* Data movement processors; compute kernels ignore this field. */
typedef enum tt_processor { TT_RISCV_0 = 0 /* BRISC */, TT_RISCV_1 = 1 /* NCRISC */ } tt_processor;

typedef struct tt_device tt_device;
typedef struct tt_buffer tt_buffer;
typedef struct tt_program tt_program;
typedef uint32_t tt_kernel_id;

typedef struct tt_core_coord {
    uint32_t x;
    uint32_t y;
} tt_core_coord;

/* Inclusive rectangle. */
typedef struct tt_core_range {
    tt_core_coord start;
    tt_core_coord end;
} tt_core_range;

typedef struct tt_core_range_set {
    const tt_core_range* ranges;
    uint32_t num_ranges;
} tt_core_range_set;

typedef struct tt_device_open_options {
    uint32_t struct_size;     /* sizeof(tt_device_open_options) */
    uint32_t device_id;       /* physical device index (metal) */
    uint32_t arch;            /* tt_arch requested from the simulator; metal ignores it (0 = default) */
    uint32_t flags;           /* reserved, 0 */
} tt_device_open_options;

typedef struct tt_device_info {
    uint32_t arch;                 /* tt_arch */
    uint32_t grid_x;               /* usable worker grid (compute_with_storage_grid_size) */
    uint32_t grid_y;
    uint32_t clock_mhz;
    uint32_t l1_size;              /* bytes of L1 per worker core */
    uint32_t l1_unreserved_base;   /* first address user allocations may use */
    uint32_t l1_alignment;         /* bytes */
    uint32_t dram_alignment;       /* bytes */
    uint32_t num_dram_banks;
    uint64_t dram_bank_size;       /* bytes per bank */
    uint32_t max_circular_buffers; /* CB indices per core */
    uint32_t max_semaphores;       /* per core */
    uint32_t max_runtime_args;     /* per kernel per core (unique + common) */
    uint32_t is_simulator;         /* 1 for tt-sim */
} tt_device_info;

/* Sharded buffer description (TT-Metal ShardSpecBuffer). Shapes are [height, width] in elements. */
typedef struct tt_shard_spec {
    tt_core_range_set cores;
    uint32_t shard_shape[2];
    uint32_t page_shape[2];             /* elements per page, e.g. {32, 32} for tiles */
    uint32_t tensor_shape_in_pages[2];  /* the whole tensor, in pages */
    uint32_t orientation;               /* tt_shard_orientation */
} tt_shard_spec;

typedef struct tt_buffer_config {
    uint64_t size;        /* bytes */
    uint32_t page_size;   /* bytes; size must be a multiple of it */
    uint32_t buffer_type; /* tt_buffer_type */
    uint32_t layout;      /* tt_buffer_layout */
    const tt_shard_spec* shard; /* required iff layout is sharded; must be NULL otherwise */
} tt_buffer_config;

typedef struct tt_cb_format {
    uint32_t cb_index;    /* 0 .. max_circular_buffers-1 */
    uint32_t data_format; /* tt_data_format */
    uint32_t page_size;   /* bytes */
} tt_cb_format;

typedef struct tt_cb_config {
    uint32_t total_size;            /* bytes, shared by every index in `formats` */
    const tt_cb_format* formats;
    uint32_t num_formats;
    const tt_buffer* globally_allocated; /* optional: back the CB by this L1 (sharded) buffer */
} tt_cb_config;

typedef struct tt_define {
    const char* name;
    const char* value;
} tt_define;

typedef struct tt_kernel_config {
    const char* name;               /* used in error messages and for the build cache */
    const char* source;             /* full C++ source in the TT-Metal kernel dialect */
    uint32_t kind;                  /* tt_kernel_kind */
    uint32_t processor;             /* tt_processor (data movement) */
    uint32_t noc;                   /* 0 or 1 (data movement) */
    tt_core_range_set cores;
    const uint32_t* compile_args;
    uint32_t num_compile_args;
    const tt_define* defines;
    uint32_t num_defines;
    /* compute only */
    uint32_t math_fidelity;         /* tt_math_fidelity */
    bool fp32_dest_acc_en;
    bool dst_full_sync_en;
    bool math_approx_mode;
    bool bfp8_pack_precise;
    const uint32_t* unpack_to_dest_fp32; /* optional: per CB index (max_circular_buffers entries), 1 = UnpackToDestFp32 */
} tt_kernel_config;

/* Filled after a run. Times from the simulator are ESTIMATES of the timing model (0 when none). */
typedef struct tt_run_stats {
    uint32_t struct_size;
    uint32_t is_estimate;     /* 1 when the numbers below come from a model, not hardware */
    uint64_t device_cycles;   /* max over cores */
    uint64_t device_ns;
    uint64_t host_ns;         /* host wall time of the run */
} tt_run_stats;

/* Threads of a run profile (appended to ABI v1). */
typedef enum tt_profile_thread {
    TT_PROFILE_BRISC = 0,
    TT_PROFILE_NCRISC = 1,
    TT_PROFILE_TRISC0_UNPACK = 2,
    TT_PROFILE_TRISC1_MATH = 3,
    TT_PROFILE_TRISC2_PACK = 4
} tt_profile_thread;

/* One thread of one core in a run profile. All cycle counts are ESTIMATES of a timing model. */
typedef struct tt_thread_profile {
    tt_core_coord core;        /* logical */
    uint32_t thread;           /* tt_profile_thread */
    uint32_t reserved;
    uint64_t end_cycles;       /* cycle at which the thread finished */
    uint64_t busy_cycles;      /* executing */
    uint64_t wait_cb_cycles;   /* waiting on circular buffers (or on the unpacker) */
    uint64_t wait_sync_cycles; /* waiting on NoC transfers, semaphores or DEST */
} tt_thread_profile;

typedef struct tt_shim_api {
    uint32_t abi_version; /* TT_SHIM_ABI_VERSION of the provider */
    uint32_t struct_size; /* sizeof(tt_shim_api) of the provider */
    const char* provider_name; /* "sim" or "metal" */

    /* Per-thread text of the last error; never NULL (empty when none). */
    const char* (*last_error)(void);

    tt_status (*device_count)(uint32_t* out_count);
    tt_status (*device_open)(const tt_device_open_options* options, tt_device** out_device);
    tt_status (*device_close)(tt_device* device);
    tt_status (*device_info)(tt_device* device, tt_device_info* out_info);
    tt_status (*worker_core_from_logical)(tt_device* device, tt_core_coord logical, tt_core_coord* out_noc);
    /* Physical (NoC) coordinates of DRAM bank `bank` as kernels address it. */
    tt_status (*dram_bank_noc_coord)(tt_device* device, uint32_t bank, tt_core_coord* out_noc);

    tt_status (*buffer_create)(tt_device* device, const tt_buffer_config* config, tt_buffer** out_buffer);
    tt_status (*buffer_destroy)(tt_buffer* buffer);
    /* Device address (DRAM offset inside each bank, or L1 address, identical on every core). */
    tt_status (*buffer_address)(tt_buffer* buffer, uint64_t* out_address);
    /* Host data is in page order of the whole tensor; the provider distributes pages to banks/cores. */
    tt_status (*buffer_write)(tt_buffer* buffer, uint64_t offset, const void* src, uint64_t size);
    tt_status (*buffer_read)(tt_buffer* buffer, uint64_t offset, void* dst, uint64_t size);

    tt_status (*program_create)(tt_device* device, tt_program** out_program);
    tt_status (*program_destroy)(tt_program* program);
    tt_status (*program_add_circular_buffer)(tt_program* program, const tt_core_range_set* cores,
                                             const tt_cb_config* config, uint32_t* out_cb_handle);
    tt_status (*program_add_semaphore)(tt_program* program, const tt_core_range_set* cores,
                                       uint32_t initial_value, uint32_t* out_semaphore_id);
    /* Builds (or takes from the cache) the kernel binary. */
    tt_status (*program_add_kernel)(tt_program* program, const tt_kernel_config* config, tt_kernel_id* out_kernel);
    tt_status (*program_set_runtime_args)(tt_program* program, tt_kernel_id kernel, tt_core_coord core,
                                          const uint32_t* args, uint32_t num_args);
    tt_status (*program_set_common_runtime_args)(tt_program* program, tt_kernel_id kernel,
                                                 const uint32_t* args, uint32_t num_args);
    /* Enqueue the program and wait for it to finish. */
    tt_status (*program_run)(tt_device* device, tt_program* program, tt_run_stats* out_stats /* nullable */);

    /* ---- Appended to v1 (optional: NULL when the provider has no timing model). ----
     * Profile of the last successful run of `program`; every number is an ESTIMATE.
     * Text functions: write at most `len` bytes including the terminating NUL into `buf` (which may
     * be NULL when len == 0) and set *out_needed to the full size including the NUL; a short buffer
     * is not an error (call again with *out_needed bytes). TT_ERR_INVALID_ARGUMENT when the program
     * has not run yet. */
    /* Chrome / Perfetto trace JSON ({"traceEvents": [...]}, one track per core and RISC thread). */
    tt_status (*program_profile_json)(tt_program* program, char* buf, uint64_t len, uint64_t* out_needed);
    /* A short human-readable summary. */
    tt_status (*program_profile_summary)(tt_program* program, char* buf, uint64_t len, uint64_t* out_needed);
    /* Per-thread totals: writes min(capacity, count) entries to `out` (nullable when capacity == 0)
     * and sets *out_count to the number of threads. */
    tt_status (*program_profile_threads)(tt_program* program, tt_thread_profile* out, uint32_t capacity,
                                         uint32_t* out_count);
} tt_shim_api;

/* Exported by a provider shared library. */
typedef tt_status (*tt_shim_get_api_fn)(uint32_t requested_version, tt_shim_api* out_api);
tt_status tt_shim_get_api(uint32_t requested_version, tt_shim_api* out_api);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TT_SHIM_H */
