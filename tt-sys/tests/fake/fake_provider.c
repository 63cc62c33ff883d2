/* A minimal tt_shim provider for the loader tests. Behaviour is chosen at compile time:
 *   FAKE_VERSION        abi_version it reports (default TT_SHIM_ABI_VERSION)
 *   FAKE_GETAPI_STATUS  status tt_shim_get_api returns (default TT_OK)
 *   FAKE_DROP_RUN       leave program_run NULL
 *   FAKE_BIG_TABLE      write a table 64 bytes longer than v1 (a later provider that ignores the
 *                       requested version) and report that struct_size
 *   FAKE_NO_SYMBOL      export no tt_shim_get_api at all */
#include <stdio.h>
#include <string.h>
#include "tt_shim.h"

#ifndef FAKE_NO_SYMBOL
#ifndef FAKE_VERSION
#define FAKE_VERSION TT_SHIM_ABI_VERSION
#endif
#ifndef FAKE_GETAPI_STATUS
#define FAKE_GETAPI_STATUS TT_OK
#endif

static _Thread_local char err[256];
static const char* last_error(void) { return err; }

static tt_status device_count(uint32_t* n) {
    err[0] = 0;
    *n = 3;
    return TT_OK;
}
static tt_status device_open(const tt_device_open_options* o, tt_device** d) {
    (void)d;
    snprintf(err, sizeof err, "no device %u (struct_size %u)", o->device_id, o->struct_size);
    return TT_ERR_DEVICE;
}

#define UNSUP(name, ...)                                   \
    static tt_status name(__VA_ARGS__) {                   \
        snprintf(err, sizeof err, "%s is not faked", #name); \
        return TT_ERR_UNSUPPORTED;                         \
    }
UNSUP(device_close, tt_device* d)
UNSUP(device_info, tt_device* d, tt_device_info* i)
UNSUP(worker_core_from_logical, tt_device* d, tt_core_coord l, tt_core_coord* n)
UNSUP(dram_bank_noc_coord, tt_device* d, uint32_t b, tt_core_coord* n)
UNSUP(buffer_create, tt_device* d, const tt_buffer_config* c, tt_buffer** b)
UNSUP(buffer_destroy, tt_buffer* b)
UNSUP(buffer_address, tt_buffer* b, uint64_t* a)
UNSUP(buffer_write, tt_buffer* b, uint64_t o, const void* s, uint64_t n)
UNSUP(buffer_read, tt_buffer* b, uint64_t o, void* s, uint64_t n)
UNSUP(program_create, tt_device* d, tt_program** p)
UNSUP(program_destroy, tt_program* p)
UNSUP(program_add_circular_buffer, tt_program* p, const tt_core_range_set* c, const tt_cb_config* f, uint32_t* h)
UNSUP(program_add_semaphore, tt_program* p, const tt_core_range_set* c, uint32_t v, uint32_t* id)
UNSUP(program_add_kernel, tt_program* p, const tt_kernel_config* c, tt_kernel_id* k)
UNSUP(program_set_runtime_args, tt_program* p, tt_kernel_id k, tt_core_coord c, const uint32_t* a, uint32_t n)
UNSUP(program_set_common_runtime_args, tt_program* p, tt_kernel_id k, const uint32_t* a, uint32_t n)
UNSUP(program_run, tt_device* d, tt_program* p, tt_run_stats* s)

struct big_table {
    tt_shim_api v1;
    char later_functions[64];
};

tt_status tt_shim_get_api(uint32_t requested_version, tt_shim_api* out) {
    (void)requested_version;
    tt_shim_api t = {
        FAKE_VERSION, sizeof(tt_shim_api), "fake", last_error,
        device_count, device_open, device_close, device_info, worker_core_from_logical,
        dram_bank_noc_coord, buffer_create, buffer_destroy, buffer_address, buffer_write,
        buffer_read, program_create, program_destroy, program_add_circular_buffer,
        program_add_semaphore, program_add_kernel, program_set_runtime_args,
        program_set_common_runtime_args, program_run,
    };
#ifdef FAKE_DROP_RUN
    t.program_run = NULL;
#endif
    if (FAKE_GETAPI_STATUS != TT_OK) snprintf(err, sizeof err, "driver not loaded (fake)");
#ifdef FAKE_BIG_TABLE
    struct big_table b;
    b.v1 = t;
    b.v1.struct_size = sizeof(struct big_table);
    memset(b.later_functions, 0xAB, sizeof b.later_functions);
    memcpy(out, &b, sizeof b);
#else
    *out = t;
#endif
    return FAKE_GETAPI_STATUS;
}
#else
int not_a_provider(void) { return 42; }
#endif
