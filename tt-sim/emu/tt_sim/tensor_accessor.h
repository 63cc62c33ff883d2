// tt-sim emulation layer: TensorAccessorArgs / TensorAccessor (0.81 compile-time layout).
// Compile-time args at CTA_OFFSET: [ArgsConfig bits, aligned page size] for interleaved tensors
// (one word when the page size is a runtime argument). Sharded accessors are rejected at run time.
#pragma once
#include <cstddef>
#include <tuple>
#include <utility>

namespace tensor_accessor {
inline constexpr size_t UNKNOWN = static_cast<size_t>(-1);
enum class ArgConfig : uint8_t {
    None = 0,
    Sharded = 1 << 0,
    IsDram = 1 << 1,
    RuntimeRank = 1 << 2,
    RuntimeNumBanks = 1 << 3,
    RuntimeTensorShape = 1 << 4,
    RuntimeShardShape = 1 << 5,
    RuntimeBankCoords = 1 << 6,
    RuntimePageSize = 1 << 7,
};
}  // namespace tensor_accessor

template <std::size_t CTA_OFFSET, std::size_t CRTA_OFFSET = tensor_accessor::UNKNOWN>
struct TensorAccessorArgs {
    static constexpr uint32_t config = get_compile_time_arg_val(CTA_OFFSET);
    static constexpr bool is_sharded = (config & 1u) != 0;
    static constexpr bool is_dram = (config & 2u) != 0;
    static constexpr bool page_size_is_crta = (config & 0x80u) != 0;
    static constexpr uint32_t AlignedPageSize = [] {
        if constexpr (page_size_is_crta || is_sharded) {
            return 0u;
        } else {
            return get_compile_time_arg_val(CTA_OFFSET + 1);
        }
    }();
    static constexpr uint32_t NumArgsCT = page_size_is_crta ? 1u : 2u;

    uint32_t crta_offset_rt_ = 0;
    constexpr TensorAccessorArgs() = default;
    constexpr explicit TensorAccessorArgs(uint32_t crta_offset) : crta_offset_rt_(crta_offset) {}
    constexpr uint32_t crta_offset() const {
        if constexpr (CRTA_OFFSET != tensor_accessor::UNKNOWN) {
            return CRTA_OFFSET;
        } else {
            return crta_offset_rt_;
        }
    }
    uint32_t get_aligned_page_size() const {
        if constexpr (page_size_is_crta) {
            return get_common_arg_val<uint32_t>(crta_offset());
        } else {
            return AlignedPageSize;
        }
    }
    static constexpr uint32_t num_compile_time_args() {
        static_assert(!is_sharded, "tt-sim: sharded TensorAccessorArgs are not supported yet");
        return NumArgsCT;
    }
    static constexpr uint32_t next_compile_time_args_offset() { return CTA_OFFSET + num_compile_time_args(); }
    constexpr uint32_t num_common_runtime_args() const { return page_size_is_crta ? 1u : 0u; }
    constexpr uint32_t next_common_runtime_args_offset() const { return crta_offset() + num_common_runtime_args(); }
};

template <typename Args>
struct TensorAccessor : InterleavedAddrGen<Args::is_dram> {
    static_assert(!Args::is_sharded, "tt-sim: sharded TensorAccessor is not supported yet");
    static constexpr bool is_dram = Args::is_dram;
    uint32_t aligned_page_size;
    TensorAccessor(const Args& args, const uint32_t bank_base_address_in, const uint32_t page_size_in)
        : InterleavedAddrGen<Args::is_dram>({.bank_base_address = bank_base_address_in, .page_size = page_size_in}),
          aligned_page_size(page_size_in) {
        (void)args;
    }
    TensorAccessor(const Args& args, const uint32_t bank_base_address_in)
        : TensorAccessor(args, bank_base_address_in, args.get_aligned_page_size()) {}
    FORCE_INLINE uint32_t get_aligned_page_size() const { return aligned_page_size; }
    FORCE_INLINE uint64_t get_noc_addr(const uint32_t id, const uint32_t offset = 0, uint8_t noc = noc_index) const {
        return InterleavedAddrGen<Args::is_dram>::get_noc_addr(id, offset, noc);
    }
};
template <std::size_t C, std::size_t R>
TensorAccessor(const TensorAccessorArgs<C, R>&, uint32_t, uint32_t) -> TensorAccessor<TensorAccessorArgs<C, R>>;
template <std::size_t C, std::size_t R>
TensorAccessor(const TensorAccessorArgs<C, R>&, uint32_t) -> TensorAccessor<TensorAccessorArgs<C, R>>;
