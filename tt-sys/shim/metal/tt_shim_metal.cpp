// tt_shim_metal.cpp - the "metal" provider of tt_shim.h over the TT-Metal 0.81-era mesh API.
//
// One tt_device is a unit mesh (MeshDevice::create_unit_mesh); buffers are replicated MeshBuffers
// (interleaved or sharded per device); a tt_program is a Program that moves into a MeshWorkload on its
// first run and is re-enqueued (with any updated runtime args) on later runs.
//
// Every entry point catches every exception and turns it into a tt_status plus a per-thread message.
// Built by tt-sys/build.rs only where TT-Metal headers are found; see tt-sys/README.md.

#include "tt_shim.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <tt-metalium/allocator.hpp>
#include <tt-metalium/base_types.hpp>
#include <tt-metalium/buffer.hpp>
#include <tt-metalium/buffer_types.hpp>
#include <tt-metalium/circular_buffer_config.hpp>
#include <tt-metalium/core_coord.hpp>
#include <tt-metalium/data_types.hpp>
#include <tt-metalium/distributed.hpp>
#include <tt-metalium/hal.hpp>
#include <tt-metalium/host_api.hpp>
#include <tt-metalium/kernel_types.hpp>
#include <tt-metalium/mesh_buffer.hpp>
#include <tt-metalium/mesh_command_queue.hpp>
#include <tt-metalium/mesh_coord.hpp>
#include <tt-metalium/mesh_device.hpp>
#include <tt-metalium/mesh_workload.hpp>
#include <tt-metalium/program.hpp>
#include <tt-metalium/tt_backend_api_types.hpp>

namespace mt = tt::tt_metal;
namespace md = tt::tt_metal::distributed;

// ----------------------------------------------------------------------------------------------
// Handles
// ----------------------------------------------------------------------------------------------

struct tt_device {
    std::shared_ptr<md::MeshDevice> mesh;
    std::optional<md::MeshCoordinateRange> range;  // the whole (1x1) mesh
    uint32_t device_id = 0;
    uint32_t live_buffers = 0;
    uint32_t live_programs = 0;
};

struct tt_buffer {
    tt_device* device = nullptr;
    std::shared_ptr<md::MeshBuffer> mesh_buffer;
};

struct tt_program {
    tt_device* device = nullptr;
    // Before the first run the Program lives here; program_run moves it into `workload`.
    std::optional<mt::Program> program;
    std::optional<md::MeshWorkload> workload;
    std::vector<mt::CBHandle> cbs;                       // out_cb_handle indexes this
    std::unordered_map<tt_kernel_id, std::string> kernel_names;
    uint64_t runs = 0;
};

namespace {

thread_local std::string g_last_error;

// A failure we detected ourselves, with the status to report.
struct ShimFail : std::runtime_error {
    tt_status status;
    ShimFail(tt_status s, const std::string& msg) : std::runtime_error(msg), status(s) {}
};

[[noreturn]] void fail(tt_status s, const std::string& msg) { throw ShimFail(s, msg); }

bool contains(const std::string& text, const char* needle) { return text.find(needle) != std::string::npos; }

// TT-Metal reports everything as std::runtime_error (TT_THROW / TT_FATAL); sort the common cases.
tt_status classify(const std::string& what, tt_status fallback) {
    if (contains(what, "Out of Memory") || contains(what, "out of memory") || contains(what, "Not enough space")) {
        return TT_ERR_OUT_OF_MEMORY;
    }
    if (contains(what, "Failed to generate binaries") || contains(what, "build failed") ||
        contains(what, "Build failed") || contains(what, "compile failed") || contains(what, "error:")) {
        return TT_ERR_KERNEL_BUILD;
    }
    return fallback;
}

const char* hint(tt_status s) {
    switch (s) {
        case TT_ERR_OUT_OF_MEMORY: return " (free buffers or use smaller circular buffers / shards)";
        case TT_ERR_KERNEL_BUILD: return " (fix the kernel source; the compiler output is above)";
        case TT_ERR_DEVICE:
            return " (check the device with tt-smi, TT_METAL_RUNTIME_ROOT/TT_METAL_HOME and the sfpi toolchain)";
        default: return "";
    }
}

// Runs `body` with every exception turned into a status and this thread's message.
template <class F>
tt_status guarded(const char* call, tt_status fallback, F&& body) noexcept {
    try {
        g_last_error.clear();
        body();
        return TT_OK;
    } catch (const ShimFail& e) {
        try {
            g_last_error = std::string("metal ") + call + ": " + e.what();
        } catch (...) {
        }
        return e.status;
    } catch (const std::bad_alloc&) {
        try {
            g_last_error = std::string("metal ") + call + ": host out of memory";
        } catch (...) {
        }
        return TT_ERR_OUT_OF_MEMORY;
    } catch (const std::exception& e) {
        tt_status s = TT_ERR_INTERNAL;
        try {
            std::string what = e.what();
            s = classify(what, fallback);
            g_last_error = std::string("metal ") + call + ": TT-Metal raised: " + what + hint(s);
        } catch (...) {
        }
        return s;
    } catch (...) {
        try {
            g_last_error = std::string("metal ") + call + ": unknown C++ exception from TT-Metal";
        } catch (...) {
        }
        return TT_ERR_INTERNAL;
    }
}

template <class T>
T* need(T* p, const char* what) {
    if (p == nullptr) {
        fail(TT_ERR_INVALID_ARGUMENT, std::string(what) + " is NULL");
    }
    return p;
}

std::string coord_str(uint32_t x, uint32_t y) { return "(" + std::to_string(x) + "," + std::to_string(y) + ")"; }

mt::CoreCoord grid_of(const tt_device* d) { return d->mesh->compute_with_storage_grid_size(); }

void check_core(const tt_device* d, tt_core_coord c) {
    auto g = grid_of(d);
    if (c.x >= g.x || c.y >= g.y) {
        fail(
            TT_ERR_INVALID_ARGUMENT,
            "logical core " + coord_str(c.x, c.y) + " is outside the worker grid " + std::to_string(g.x) + "x" +
                std::to_string(g.y));
    }
}

mt::CoreRangeSet to_core_range_set(const tt_device* d, const tt_core_range_set* set) {
    need(set, "core range set");
    if (set->num_ranges == 0) {
        fail(TT_ERR_INVALID_ARGUMENT, "core range set is empty");
    }
    need(set->ranges, "core range set ranges");
    std::vector<mt::CoreRange> ranges;
    ranges.reserve(set->num_ranges);
    for (uint32_t i = 0; i < set->num_ranges; ++i) {
        const tt_core_range& r = set->ranges[i];
        if (r.start.x > r.end.x || r.start.y > r.end.y) {
            fail(
                TT_ERR_INVALID_ARGUMENT,
                "core range " + std::to_string(i) + " has start " + coord_str(r.start.x, r.start.y) + " after end " +
                    coord_str(r.end.x, r.end.y));
        }
        check_core(d, r.start);
        check_core(d, r.end);
        ranges.emplace_back(mt::CoreCoord{r.start.x, r.start.y}, mt::CoreCoord{r.end.x, r.end.y});
    }
    return mt::CoreRangeSet(std::move(ranges));  // throws on overlapping ranges
}

tt::DataFormat to_data_format(uint32_t f) {
    switch (f) {
        case TT_DF_FLOAT32: return tt::DataFormat::Float32;
        case TT_DF_FLOAT16: return tt::DataFormat::Float16;
        case TT_DF_BFP8: return tt::DataFormat::Bfp8;
        case TT_DF_BFP4: return tt::DataFormat::Bfp4;
        case TT_DF_FLOAT16_B: return tt::DataFormat::Float16_b;
        case TT_DF_BFP8_B: return tt::DataFormat::Bfp8_b;
        case TT_DF_BFP4_B: return tt::DataFormat::Bfp4_b;
        case TT_DF_INT32: return tt::DataFormat::Int32;
        case TT_DF_UINT16: return tt::DataFormat::UInt16;
        case TT_DF_BFP2_B: return tt::DataFormat::Bfp2_b;
        case TT_DF_UINT32: return tt::DataFormat::UInt32;
        case TT_DF_UINT8: return tt::DataFormat::UInt8;
        default: fail(TT_ERR_INVALID_ARGUMENT, "unsupported data format " + std::to_string(f));
    }
}

MathFidelity to_fidelity(uint32_t f) {
    switch (f) {
        case TT_FIDELITY_LOFI: return MathFidelity::LoFi;
        case TT_FIDELITY_HIFI2: return MathFidelity::HiFi2;
        case TT_FIDELITY_HIFI3: return MathFidelity::HiFi3;
        case TT_FIDELITY_HIFI4: return MathFidelity::HiFi4;
        default: fail(TT_ERR_INVALID_ARGUMENT, "math_fidelity " + std::to_string(f) + " is not 0, 2, 3 or 4");
    }
}

mt::Program& program_of(tt_program* p) {
    if (p->program) {
        return *p->program;
    }
    if (p->workload) {
        auto& programs = p->workload->get_programs();
        if (!programs.empty()) {
            return programs.begin()->second;
        }
    }
    fail(TT_ERR_INTERNAL, "program has neither a Program nor a workload");
}

std::string kernel_label(const tt_program* p, tt_kernel_id k) {
    auto it = p->kernel_names.find(k);
    if (it == p->kernel_names.end()) {
        fail(TT_ERR_INVALID_ARGUMENT, "kernel id " + std::to_string(k) + " was not returned by program_add_kernel");
    }
    return "kernel '" + it->second + "' (id " + std::to_string(k) + ")";
}

uint32_t nominal_clock_mhz(tt::ARCH arch) {
    // TT-Metal's public API does not expose AICLK; these are the nominal clocks of the boards.
    switch (arch) {
        case tt::ARCH::WORMHOLE_B0: return 1000;
        case tt::ARCH::BLACKHOLE: return 1350;
        default: return 0;
    }
}

// Number of devices; 0 (not an error) when TT-Metal's cluster finds no chips on this machine.
size_t available_devices() {
    try {
        return mt::GetNumAvailableDevices();
    } catch (const std::exception& e) {
        if (contains(e.what(), "No chips detected")) {
            return 0;
        }
        throw;
    }
}

// Semaphores per core (TT-Metal NUM_SEMAPHORES; not part of the public host API).
constexpr uint32_t kMaxSemaphores = 16;

// ----------------------------------------------------------------------------------------------
// Table functions
// ----------------------------------------------------------------------------------------------

const char* shim_last_error(void) { return g_last_error.c_str(); }

tt_status shim_device_count(uint32_t* out_count) {
    return guarded("device_count", TT_ERR_DEVICE, [&] {
        need(out_count, "out_count");
        *out_count = static_cast<uint32_t>(available_devices());
    });
}

tt_status shim_device_open(const tt_device_open_options* options, tt_device** out_device) {
    return guarded("device_open", TT_ERR_DEVICE, [&] {
        need(options, "options");
        need(out_device, "out_device");
        if (options->struct_size < sizeof(tt_device_open_options)) {
            fail(TT_ERR_ABI_MISMATCH, "tt_device_open_options.struct_size is " + std::to_string(options->struct_size));
        }
        const size_t available = available_devices();
        if (options->device_id >= available) {
            fail(
                TT_ERR_INVALID_ARGUMENT,
                "device " + std::to_string(options->device_id) + " requested but " + std::to_string(available) +
                    " device(s) are available (see tt-smi)");
        }
        auto dev = std::make_unique<tt_device>();
        dev->device_id = options->device_id;
        dev->mesh = md::MeshDevice::create_unit_mesh(static_cast<int>(options->device_id));
        dev->range.emplace(dev->mesh->shape());
        *out_device = dev.release();
    });
}

tt_status shim_device_close(tt_device* device) {
    return guarded("device_close", TT_ERR_DEVICE, [&] {
        need(device, "device");
        if (device->live_buffers != 0 || device->live_programs != 0) {
            fail(
                TT_ERR_INVALID_ARGUMENT,
                "device " + std::to_string(device->device_id) + " still has " + std::to_string(device->live_buffers) +
                    " buffer(s) and " + std::to_string(device->live_programs) +
                    " program(s): destroy them before closing the device");
        }
        std::unique_ptr<tt_device> owned(device);
        if (!owned->mesh->close()) {
            fail(TT_ERR_DEVICE, "MeshDevice::close() reported failure");
        }
    });
}

tt_status shim_device_info(tt_device* device, tt_device_info* out_info) {
    return guarded("device_info", TT_ERR_DEVICE, [&] {
        need(device, "device");
        need(out_info, "out_info");
        auto& mesh = *device->mesh;
        const auto& alloc = mesh.allocator();
        tt_device_info info{};
        const tt::ARCH arch = mesh.arch();
        info.arch = arch == tt::ARCH::WORMHOLE_B0 ? TT_ARCH_WORMHOLE_B0
                    : arch == tt::ARCH::BLACKHOLE ? TT_ARCH_BLACKHOLE
                                                  : 0;
        auto grid = mesh.compute_with_storage_grid_size();
        info.grid_x = static_cast<uint32_t>(grid.x);
        info.grid_y = static_cast<uint32_t>(grid.y);
        info.clock_mhz = nominal_clock_mhz(arch);
        info.l1_size = mesh.l1_size_per_core();
        info.l1_unreserved_base = static_cast<uint32_t>(alloc->get_base_allocator_addr(mt::HalMemType::L1));
        info.l1_alignment = alloc->get_alignment(mt::BufferType::L1);
        info.dram_alignment = alloc->get_alignment(mt::BufferType::DRAM);
        info.num_dram_banks = alloc->get_num_banks(mt::BufferType::DRAM);
        info.dram_bank_size = alloc->get_bank_size(mt::BufferType::DRAM);
        info.max_circular_buffers = mt::hal::get_arch_num_circular_buffers();
        info.max_semaphores = kMaxSemaphores;
        info.max_runtime_args = mt::max_runtime_args;
        const char* sim = std::getenv("TT_METAL_SIMULATOR");
        info.is_simulator = (sim != nullptr && sim[0] != '\0') ? 1 : 0;
        *out_info = info;
    });
}

tt_status shim_worker_core_from_logical(tt_device* device, tt_core_coord logical, tt_core_coord* out_noc) {
    return guarded("worker_core_from_logical", TT_ERR_INVALID_ARGUMENT, [&] {
        need(device, "device");
        need(out_noc, "out_noc");
        check_core(device, logical);
        auto noc = device->mesh->worker_core_from_logical_core(mt::CoreCoord{logical.x, logical.y});
        *out_noc = tt_core_coord{static_cast<uint32_t>(noc.x), static_cast<uint32_t>(noc.y)};
    });
}

tt_status shim_dram_bank_noc_coord(tt_device* device, uint32_t bank, tt_core_coord* out_noc) {
    return guarded("dram_bank_noc_coord", TT_ERR_INVALID_ARGUMENT, [&] {
        need(device, "device");
        need(out_noc, "out_noc");
        auto& mesh = *device->mesh;
        const uint32_t banks = mesh.allocator()->get_num_banks(mt::BufferType::DRAM);
        if (bank >= banks) {
            fail(TT_ERR_INVALID_ARGUMENT, "DRAM bank " + std::to_string(bank) + " >= " + std::to_string(banks) + " banks");
        }
        // TT-Metal's allocator maps DRAM bank i to channel i. This is the channel's DRAM core in virtual
        // (translated) coordinates; firmware may prefer another endpoint of the same channel per NoC, so
        // kernels should address DRAM by bank (InterleavedAddrGen / TensorAccessor) where they can.
        auto logical = mesh.logical_core_from_dram_channel(bank);
        auto noc = mesh.virtual_core_from_logical_core(logical, tt::CoreType::DRAM);
        *out_noc = tt_core_coord{static_cast<uint32_t>(noc.x), static_cast<uint32_t>(noc.y)};
    });
}

tt_status shim_buffer_create(tt_device* device, const tt_buffer_config* config, tt_buffer** out_buffer) {
    return guarded("buffer_create", TT_ERR_INVALID_ARGUMENT, [&] {
        need(device, "device");
        need(config, "config");
        need(out_buffer, "out_buffer");
        if (config->size == 0 || config->page_size == 0 || config->size % config->page_size != 0) {
            fail(
                TT_ERR_INVALID_ARGUMENT,
                "size " + std::to_string(config->size) + " must be a non-zero multiple of page_size " +
                    std::to_string(config->page_size));
        }
        mt::BufferType type;
        switch (config->buffer_type) {
            case TT_BUFFER_DRAM: type = mt::BufferType::DRAM; break;
            case TT_BUFFER_L1: type = mt::BufferType::L1; break;
            default: fail(TT_ERR_INVALID_ARGUMENT, "buffer_type " + std::to_string(config->buffer_type));
        }
        mt::TensorMemoryLayout layout;
        switch (config->layout) {
            case TT_LAYOUT_INTERLEAVED: layout = mt::TensorMemoryLayout::INTERLEAVED; break;
            case TT_LAYOUT_HEIGHT_SHARDED: layout = mt::TensorMemoryLayout::HEIGHT_SHARDED; break;
            case TT_LAYOUT_WIDTH_SHARDED: layout = mt::TensorMemoryLayout::WIDTH_SHARDED; break;
            case TT_LAYOUT_BLOCK_SHARDED: layout = mt::TensorMemoryLayout::BLOCK_SHARDED; break;
            default: fail(TT_ERR_INVALID_ARGUMENT, "layout " + std::to_string(config->layout));
        }
        md::DeviceLocalBufferConfig local;
        local.page_size = config->page_size;
        local.buffer_type = type;
        if (layout == mt::TensorMemoryLayout::INTERLEAVED) {
            if (config->shard != nullptr) {
                fail(TT_ERR_INVALID_ARGUMENT, "shard must be NULL for an interleaved buffer");
            }
        } else {
            const tt_shard_spec* s = need(config->shard, "shard (required for a sharded layout)");
            mt::ShardOrientation orientation;
            switch (s->orientation) {
                case TT_SHARD_ROW_MAJOR: orientation = mt::ShardOrientation::ROW_MAJOR; break;
                case TT_SHARD_COL_MAJOR: orientation = mt::ShardOrientation::COL_MAJOR; break;
                default: fail(TT_ERR_INVALID_ARGUMENT, "shard orientation " + std::to_string(s->orientation));
            }
            mt::ShardSpecBuffer spec(
                to_core_range_set(device, &s->cores),
                {s->shard_shape[0], s->shard_shape[1]},
                orientation,
                {s->page_shape[0], s->page_shape[1]},
                {s->tensor_shape_in_pages[0], s->tensor_shape_in_pages[1]});
            local.sharding_args = mt::BufferShardingArgs(std::move(spec), layout);
        }
        md::ReplicatedBufferConfig replicated{.size = config->size};
        auto buf = std::make_unique<tt_buffer>();
        buf->device = device;
        buf->mesh_buffer = md::MeshBuffer::create(replicated, local, device->mesh.get());
        device->live_buffers++;
        *out_buffer = buf.release();
    });
}

tt_status shim_buffer_destroy(tt_buffer* buffer) {
    return guarded("buffer_destroy", TT_ERR_INTERNAL, [&] {
        need(buffer, "buffer");
        std::unique_ptr<tt_buffer> owned(buffer);
        owned->device->live_buffers--;
        owned->mesh_buffer->deallocate();
    });
}

tt_status shim_buffer_address(tt_buffer* buffer, uint64_t* out_address) {
    return guarded("buffer_address", TT_ERR_INTERNAL, [&] {
        need(buffer, "buffer");
        need(out_address, "out_address");
        *out_address = buffer->mesh_buffer->address();
    });
}

void check_region(const tt_buffer* b, uint64_t offset, uint64_t size) {
    const uint64_t total = b->mesh_buffer->size();
    if (offset > total || size > total - offset) {
        fail(
            TT_ERR_INVALID_ARGUMENT,
            "bytes [" + std::to_string(offset) + ", " + std::to_string(offset + size) + ") are outside the " +
                std::to_string(total) + "-byte buffer");
    }
}

tt_status shim_buffer_write(tt_buffer* buffer, uint64_t offset, const void* src, uint64_t size) {
    return guarded("buffer_write", TT_ERR_DEVICE, [&] {
        need(buffer, "buffer");
        check_region(buffer, offset, size);
        if (size == 0) {
            return;
        }
        need(src, "src");
        auto& cq = buffer->device->mesh->mesh_command_queue();
        if (offset == 0 && size == buffer->mesh_buffer->size()) {
            cq.enqueue_write_mesh_buffer(buffer->mesh_buffer, src, /*blocking=*/true);
        } else {
            std::vector<md::ShardDataTransfer> transfers;
            transfers.push_back(md::ShardDataTransfer(md::MeshCoordinate(0, 0))
                                    .host_data(const_cast<void*>(src))
                                    .region(mt::BufferRegion(offset, size)));
            cq.enqueue_write_shards(buffer->mesh_buffer, transfers, /*blocking=*/true);
        }
    });
}

tt_status shim_buffer_read(tt_buffer* buffer, uint64_t offset, void* dst, uint64_t size) {
    return guarded("buffer_read", TT_ERR_DEVICE, [&] {
        need(buffer, "buffer");
        check_region(buffer, offset, size);
        if (size == 0) {
            return;
        }
        need(dst, "dst");
        auto& cq = buffer->device->mesh->mesh_command_queue();
        if (offset == 0 && size == buffer->mesh_buffer->size()) {
            cq.enqueue_read_mesh_buffer(dst, buffer->mesh_buffer, /*blocking=*/true);
        } else {
            std::vector<md::ShardDataTransfer> transfers;
            transfers.push_back(
                md::ShardDataTransfer(md::MeshCoordinate(0, 0)).host_data(dst).region(mt::BufferRegion(offset, size)));
            cq.enqueue_read_shards(transfers, buffer->mesh_buffer, /*blocking=*/true);
        }
    });
}

tt_status shim_program_create(tt_device* device, tt_program** out_program) {
    return guarded("program_create", TT_ERR_INTERNAL, [&] {
        need(device, "device");
        need(out_program, "out_program");
        auto p = std::make_unique<tt_program>();
        p->device = device;
        p->program.emplace(mt::CreateProgram());
        device->live_programs++;
        *out_program = p.release();
    });
}

tt_status shim_program_destroy(tt_program* program) {
    return guarded("program_destroy", TT_ERR_INTERNAL, [&] {
        need(program, "program");
        std::unique_ptr<tt_program> owned(program);
        owned->device->live_programs--;
    });
}

tt_status shim_program_add_circular_buffer(
    tt_program* program, const tt_core_range_set* cores, const tt_cb_config* config, uint32_t* out_cb_handle) {
    return guarded("program_add_circular_buffer", TT_ERR_INVALID_ARGUMENT, [&] {
        need(program, "program");
        need(config, "config");
        need(out_cb_handle, "out_cb_handle");
        if (config->num_formats == 0) {
            fail(TT_ERR_INVALID_ARGUMENT, "a circular buffer needs at least one format");
        }
        need(config->formats, "formats");
        const uint32_t max_cbs = mt::hal::get_arch_num_circular_buffers();
        std::map<uint8_t, tt::DataFormat> formats;
        for (uint32_t i = 0; i < config->num_formats; ++i) {
            const tt_cb_format& f = config->formats[i];
            if (f.cb_index >= max_cbs) {
                fail(TT_ERR_INVALID_ARGUMENT, "cb_index " + std::to_string(f.cb_index) + " >= " + std::to_string(max_cbs));
            }
            if (!formats.emplace(static_cast<uint8_t>(f.cb_index), to_data_format(f.data_format)).second) {
                fail(TT_ERR_INVALID_ARGUMENT, "cb_index " + std::to_string(f.cb_index) + " listed twice");
            }
        }
        mt::CircularBufferConfig cfg(config->total_size, formats);
        for (uint32_t i = 0; i < config->num_formats; ++i) {
            cfg.set_page_size(static_cast<uint8_t>(config->formats[i].cb_index), config->formats[i].page_size);
        }
        if (config->globally_allocated != nullptr) {
            const mt::Buffer* backing = config->globally_allocated->mesh_buffer->get_reference_buffer();
            cfg.set_globally_allocated_address(*need(backing, "globally allocated buffer's device buffer"));
        }
        auto ranges = to_core_range_set(program->device, cores);
        mt::CBHandle h = mt::CreateCircularBuffer(program_of(program), ranges, cfg);
        program->cbs.push_back(h);
        *out_cb_handle = static_cast<uint32_t>(program->cbs.size() - 1);
    });
}

tt_status shim_program_add_semaphore(
    tt_program* program, const tt_core_range_set* cores, uint32_t initial_value, uint32_t* out_semaphore_id) {
    return guarded("program_add_semaphore", TT_ERR_INVALID_ARGUMENT, [&] {
        need(program, "program");
        need(out_semaphore_id, "out_semaphore_id");
        auto ranges = to_core_range_set(program->device, cores);
        *out_semaphore_id = mt::CreateSemaphore(program_of(program), ranges, initial_value);
    });
}

tt_status shim_program_add_kernel(tt_program* program, const tt_kernel_config* config, tt_kernel_id* out_kernel) {
    return guarded("program_add_kernel", TT_ERR_INVALID_ARGUMENT, [&] {
        need(program, "program");
        need(config, "config");
        need(out_kernel, "out_kernel");
        const std::string name = config->name != nullptr ? config->name : "<unnamed>";
        const std::string source = need(config->source, "source");
        if (config->num_compile_args != 0) {
            need(config->compile_args, "compile_args");
        }
        std::vector<uint32_t> compile_args(config->compile_args, config->compile_args + config->num_compile_args);
        std::map<std::string, std::string> defines;
        if (config->num_defines != 0) {
            need(config->defines, "defines");
        }
        for (uint32_t i = 0; i < config->num_defines; ++i) {
            const tt_define& d = config->defines[i];
            defines[need(d.name, "define name")] = d.value != nullptr ? d.value : "";
        }
        auto ranges = to_core_range_set(program->device, &config->cores);
        std::variant<mt::DataMovementConfig, mt::ComputeConfig> kernel_config;
        if (config->kind == TT_KERNEL_DATA_MOVEMENT) {
            mt::DataMovementConfig dm;
            switch (config->processor) {
                case TT_RISCV_0: dm.processor = mt::DataMovementProcessor::RISCV_0; break;
                case TT_RISCV_1: dm.processor = mt::DataMovementProcessor::RISCV_1; break;
                default: fail(TT_ERR_INVALID_ARGUMENT, "processor " + std::to_string(config->processor) + " is not 0 or 1");
            }
            if (config->noc > 1) {
                fail(TT_ERR_INVALID_ARGUMENT, "noc " + std::to_string(config->noc) + " is not 0 or 1");
            }
            dm.noc = config->noc == 0 ? mt::NOC::NOC_0 : mt::NOC::NOC_1;
            dm.compile_args = std::move(compile_args);
            dm.defines = std::move(defines);
            kernel_config = std::move(dm);
        } else if (config->kind == TT_KERNEL_COMPUTE) {
            mt::ComputeConfig c;
            c.math_fidelity = to_fidelity(config->math_fidelity);
            c.fp32_dest_acc_en = config->fp32_dest_acc_en;
            c.dst_full_sync_en = config->dst_full_sync_en;
            c.math_approx_mode = config->math_approx_mode;
            c.bfp8_pack_precise = config->bfp8_pack_precise;
            if (config->unpack_to_dest_fp32 != nullptr) {
                const uint32_t n = mt::hal::get_arch_num_circular_buffers();
                c.unpack_to_dest_mode.assign(n, UnpackToDestMode::Default);
                for (uint32_t i = 0; i < n; ++i) {
                    if (config->unpack_to_dest_fp32[i] == 1) {
                        c.unpack_to_dest_mode[i] = UnpackToDestMode::UnpackToDestFp32;
                    }
                }
            }
            c.compile_args = std::move(compile_args);
            c.defines = std::move(defines);
            kernel_config = std::move(c);
        } else {
            fail(TT_ERR_INVALID_ARGUMENT, "kernel kind " + std::to_string(config->kind) + " is not 0 or 1");
        }
        mt::KernelHandle k = std::visit(
            [&](auto& cfg) { return mt::CreateKernelFromString(program_of(program), source, ranges, cfg); },
            kernel_config);
        program->kernel_names[k] = name;
        *out_kernel = k;
    });
}

tt_status shim_program_set_runtime_args(
    tt_program* program, tt_kernel_id kernel, tt_core_coord core, const uint32_t* args, uint32_t num_args) {
    return guarded("program_set_runtime_args", TT_ERR_INVALID_ARGUMENT, [&] {
        need(program, "program");
        const std::string label = kernel_label(program, kernel);
        check_core(program->device, core);
        if (num_args > mt::max_runtime_args) {
            fail(
                TT_ERR_INVALID_ARGUMENT,
                label + " at core " + coord_str(core.x, core.y) + ": " + std::to_string(num_args) +
                    " runtime args exceed the limit of " + std::to_string(mt::max_runtime_args));
        }
        if (num_args != 0) {
            need(args, "args");
        }
        mt::SetRuntimeArgs(
            program_of(program),
            kernel,
            mt::CoreCoord{core.x, core.y},
            tt::stl::Span<const uint32_t>(args, num_args));
    });
}

tt_status shim_program_set_common_runtime_args(
    tt_program* program, tt_kernel_id kernel, const uint32_t* args, uint32_t num_args) {
    return guarded("program_set_common_runtime_args", TT_ERR_INVALID_ARGUMENT, [&] {
        need(program, "program");
        const std::string label = kernel_label(program, kernel);
        if (num_args > mt::max_runtime_args) {
            fail(
                TT_ERR_INVALID_ARGUMENT,
                label + ": " + std::to_string(num_args) + " common runtime args exceed the limit of " +
                    std::to_string(mt::max_runtime_args));
        }
        if (num_args != 0) {
            need(args, "args");
        }
        mt::SetCommonRuntimeArgs(program_of(program), kernel, tt::stl::Span<const uint32_t>(args, num_args));
    });
}

tt_status shim_program_run(tt_device* device, tt_program* program, tt_run_stats* out_stats) {
    return guarded("program_run", TT_ERR_DEVICE, [&] {
        need(device, "device");
        need(program, "program");
        if (program->device != device) {
            fail(TT_ERR_INVALID_ARGUMENT, "the program was created on another device");
        }
        if (out_stats != nullptr && out_stats->struct_size < sizeof(tt_run_stats)) {
            fail(TT_ERR_ABI_MISMATCH, "tt_run_stats.struct_size is " + std::to_string(out_stats->struct_size));
        }
        const auto t0 = std::chrono::steady_clock::now();
        if (!program->workload) {
            md::MeshWorkload workload;
            workload.add_program(*device->range, std::move(*program->program));
            program->program.reset();
            program->workload.emplace(std::move(workload));
        }
        auto& cq = device->mesh->mesh_command_queue();
        md::EnqueueMeshWorkload(cq, *program->workload, /*blocking=*/false);
        md::Finish(cq);
        program->runs++;
        const auto t1 = std::chrono::steady_clock::now();
        if (out_stats != nullptr) {
            out_stats->is_estimate = 0;
            out_stats->device_cycles = 0;  // unknown without the device profiler
            out_stats->device_ns = 0;
            out_stats->host_ns =
                static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
        }
    });
}

tt_shim_api make_table() {
    tt_shim_api t{};
    t.abi_version = TT_SHIM_ABI_VERSION;
    t.struct_size = sizeof(tt_shim_api);
    t.provider_name = "metal";
    t.last_error = shim_last_error;
    t.device_count = shim_device_count;
    t.device_open = shim_device_open;
    t.device_close = shim_device_close;
    t.device_info = shim_device_info;
    t.worker_core_from_logical = shim_worker_core_from_logical;
    t.dram_bank_noc_coord = shim_dram_bank_noc_coord;
    t.buffer_create = shim_buffer_create;
    t.buffer_destroy = shim_buffer_destroy;
    t.buffer_address = shim_buffer_address;
    t.buffer_write = shim_buffer_write;
    t.buffer_read = shim_buffer_read;
    t.program_create = shim_program_create;
    t.program_destroy = shim_program_destroy;
    t.program_add_circular_buffer = shim_program_add_circular_buffer;
    t.program_add_semaphore = shim_program_add_semaphore;
    t.program_add_kernel = shim_program_add_kernel;
    t.program_set_runtime_args = shim_program_set_runtime_args;
    t.program_set_common_runtime_args = shim_program_set_common_runtime_args;
    t.program_run = shim_program_run;
    return t;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) tt_status tt_shim_get_api(
    uint32_t requested_version, tt_shim_api* out_api) {
    try {
        g_last_error.clear();
        if (out_api == nullptr) {
            g_last_error = "metal tt_shim_get_api: out_api is NULL";
            return TT_ERR_INVALID_ARGUMENT;
        }
        if (requested_version != TT_SHIM_ABI_VERSION) {
            // Only the two leading fields are common to every version of the table.
            out_api->abi_version = TT_SHIM_ABI_VERSION;
            out_api->struct_size = sizeof(tt_shim_api);
            g_last_error = "metal tt_shim_get_api: caller wants ABI v" + std::to_string(requested_version) +
                           ", this provider implements v" + std::to_string(TT_SHIM_ABI_VERSION);
            return TT_ERR_ABI_MISMATCH;
        }
        *out_api = make_table();
        return TT_OK;
    } catch (...) {
        return TT_ERR_INTERNAL;
    }
}
