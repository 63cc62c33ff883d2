// Unconstrained rational-quadratic spline inverse (Durkan et al. 2019, as VITS' transforms.py
// with inverse=True and linear tails), one element per time row, in scalar fp32 on a data
// movement RISC (RISCV_0). The inputs are tiny (T rows x 3K-1 parameters), so no Tensix engine
// is involved: the kernel reads the tiles of x [T, 1] and of the parameters p [T, 3K-1] into L1,
// evaluates its rows with ordinary float code and writes them. Work is split in units of two
// time rows (see kernel_main), so up to T / 2 cores share one launch.
//
// Per row t (K = bins, B = tail bound, w/h/d = minimum bin width/height/derivative):
//   x outside [-B, B]  -> y = x (identity tails, bit exact).
//   widths  = w + (1 - w K) softmax(p[0:K] * inv_scale), knots cumw[0] = -B ... cumw[K] = B
//   heights = h + (1 - h K) softmax(p[K:2K] * inv_scale), knots cumh likewise
//   derivatives d_i = d + softplus(u_i), u_0 = u_K = boundary (the host passes
//     log(exp(1 - d) - 1)), u_i = p[2K + i - 1] otherwise
//   bin k = #{i : x >= cumh[i]} - 1 with cumh[K] + 1e-6, clamped to [0, K-1]
//   root = 2c / (-b - sqrt(b^2 - 4ac)) of the bin's quadratic; y = root * width_k + cumw[k].
//   With AFFINE, y is then replaced by (y - aff_m) * aff_s (VITS' reverse ElementwiseAffine).
// The discriminant is clamped at 0 (it is >= 0 in exact arithmetic; VITS asserts it).
//
// Arithmetic uses only fp32 add, sub, mul and compares plus integer bit manipulation: no fdiv,
// no fsqrt and no libm, so the code needs no more than the Blackhole baby RISC-V's partial `F`
// extension (fadd/fmul, no fdiv/fsqrt) and compiles to soft-float on Wormhole's RV32IM.
// Reciprocal and reciprocal square root are bit-trick seeds refined by Newton steps, exp is a
// range reduction by ln 2 with a degree-7 polynomial, log1p an atanh series; each is accurate to
// a few fp32 ulp on the ranges used here.
//
// Tile layout: element (r, c) of a 32x32 tile sits at ((r/16)*2 + c/16)*256 + (r%16)*16 + c%16.
// Formats (compile-time codes): 0 = Float32 (4 bytes), 1 = Float16_b (bf16, 2 bytes; written
// with round-to-nearest-even). Output tiles are fully written: column 0 holds y, every other
// element (and rows >= T) is zero.
//
// With the define DURATIONS the same file builds the alignment kernel instead (it shares the
// exp): for logw [T, 1] (Float32 or bf16 tiles) it writes the integer durations
// d[t] = ceil(exp(logw[t]) * length_scale) (0 when that is <= 0) as u32 index pages of 32
// entries (128 bytes: the layout tt-kernels' expand_durations reads), one page per tile row,
// and the integer total sum(d) to aux word 0. Compile-time args: TensorAccessorArgs of logw,
// the index buffer and the aux buffer, then logw_fmt, cb_scratch. Runtime args: 0 logw_addr,
// 1 index_addr, 2 aux_addr, 3 rows (T), 4 length_scale (bits).
//
// Compile-time args: TensorAccessorArgs of x, p, out, out2 (2 words each; out2 repeats out when
//   unused), then x_fmt, p_fmt, out_fmt, out2_fmt, p_tile_cols, bins, dual (write out2), affine,
//   cb_scratch.
// Runtime args: 0 x_addr, 1 p_addr, 2 out_addr, 3 out2_addr, 4 first_unit, 5 num_units,
//   6 rows (T), 7 tail_bound, 8 min_width, 9 min_height, 10 min_derivative, 11 inv_scale,
//   12 boundary (unnormalised boundary derivative), 13 aff_m, 14 aff_s (floats as bits).
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

namespace {

constexpr uint32_t kMaxBins = 32;

inline float as_float(uint32_t b) {
    union {
        uint32_t u;
        float f;
    } v;
    v.u = b;
    return v.f;
}

inline uint32_t as_bits(float f) {
    union {
        float f;
        uint32_t u;
    } v;
    v.f = f;
    return v.u;
}

inline uint32_t tile_index(uint32_t r, uint32_t c) {
    return ((r >> 4) * 2 + (c >> 4)) * 256 + (r & 15) * 16 + (c & 15);
}

inline float load(uint32_t l1, uint32_t fmt, uint32_t idx) {
    if (fmt == 0) {
        return reinterpret_cast<volatile tt_l1_ptr float*>(l1)[idx];
    }
    const uint32_t h = reinterpret_cast<volatile tt_l1_ptr uint16_t*>(l1)[idx];
    return as_float(h << 16);
}

inline void store(uint32_t l1, uint32_t fmt, uint32_t idx, float v) {
    if (fmt == 0) {
        reinterpret_cast<volatile tt_l1_ptr float*>(l1)[idx] = v;
        return;
    }
    const uint32_t b = as_bits(v);
    const uint32_t rounded = (b + 0x7FFFu + ((b >> 16) & 1u)) >> 16;  // round to nearest even
    reinterpret_cast<volatile tt_l1_ptr uint16_t*>(l1)[idx] = static_cast<uint16_t>(rounded);
}

inline void zero_tile(uint32_t l1, uint32_t bytes) {
    volatile tt_l1_ptr uint32_t* w = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(l1);
    for (uint32_t i = 0; i < bytes / 4; ++i) {
        w[i] = 0;
    }
}

inline float fabs_(float x) { return as_float(as_bits(x) & 0x7FFFFFFFu); }

// 1 / a for finite non-zero a: seed from the exponent bits (max relative error ~12%), then four
// Newton steps y <- y (2 - a y) (error squares each step: 0.12, 1.5e-2, 2.3e-4, 5e-8, rounding).
inline float recip(float a) {
    const uint32_t sign = as_bits(a) & 0x80000000u;
    const float m = fabs_(a);
    float y = as_float(0x7EF311C3u - as_bits(m));
    for (int i = 0; i < 4; ++i) {
        y = y * (2.0f - m * y);
    }
    return as_float(as_bits(y) | sign);
}

// sqrt(d) for d >= 0 (0 for d <= 0): reciprocal square root seed, four Newton steps
// y <- y (1.5 - 0.5 d y^2), s = d y, then one Newton correction of s.
inline float sqrt_(float d) {
    if (!(d > 0.0f)) {
        return 0.0f;
    }
    float y = as_float(0x5F375A86u - (as_bits(d) >> 1));
    const float half = 0.5f * d;
    for (int i = 0; i < 4; ++i) {
        y = y * (1.5f - half * y * y);
    }
    const float s = d * y;
    return s + 0.5f * (d - s * s) * y;
}

// e^x: x = k ln2 + r with |r| <= ln2 / 2 (ln 2 split in a high part exact in fp32 and a low
// part), e^r by its Taylor polynomial of degree 7 (truncation < 5e-9 relative), scaled by 2^k
// through the exponent bits. Underflows to 0 below -87.3, saturates above 88 (2^127 scale at most).
inline float exp_(float x) {
    if (x < -87.3f) {
        return 0.0f;
    }
    if (x > 88.0f) {
        x = 88.0f;
    }
    const float t = x * 1.44269504f;
    const int32_t k = static_cast<int32_t>(t + (t >= 0.0f ? 0.5f : -0.5f));
    const float kf = static_cast<float>(k);
    const float r = (x - kf * 0.693145752f) - kf * 1.42860677e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return p * as_float(static_cast<uint32_t>(k + 127) << 23);
}

// ln(1 + y) for 0 <= y <= 1: 2 atanh(s) with s = y / (2 + y) <= 1/3, series to s^17
// (remainder < 2e-9 relative); no cancellation for small y.
inline float log1p_(float y) {
    const float s = y * recip(2.0f + y);
    const float s2 = s * s;
    float p = 1.0f / 17.0f;
    p = p * s2 + 1.0f / 15.0f;
    p = p * s2 + 1.0f / 13.0f;
    p = p * s2 + 1.0f / 11.0f;
    p = p * s2 + 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    p = p * s2 + 1.0f;
    return 2.0f * s * p;
}

// ln(1 + e^v), stable for both signs.
inline float softplus_(float v) {
    const float pos = v > 0.0f ? v : 0.0f;
    return pos + log1p_(exp_(-fabs_(v)));
}

struct Spline {
    uint32_t bins;
    float tail;
    float min_w;
    float min_h;
    float min_d;
    float inv_scale;
    float boundary;
};

// Knots of a softmax-normalised partition of [-B, B]: cum[0] = -B, cum[K] = B.
inline void knots(const Spline& s, const float* u, float min_bin, float* cum) {
    float v[kMaxBins];
    float m = u[0] * s.inv_scale;
    for (uint32_t i = 0; i < s.bins; ++i) {
        v[i] = u[i] * s.inv_scale;
        m = v[i] > m ? v[i] : m;
    }
    float sum = 0.0f;
    for (uint32_t i = 0; i < s.bins; ++i) {
        v[i] = exp_(v[i] - m);
        sum += v[i];
    }
    const float inv_sum = recip(sum);
    const float span = 1.0f - min_bin * static_cast<float>(s.bins);
    float acc = 0.0f;
    cum[0] = -s.tail;
    for (uint32_t i = 0; i < s.bins; ++i) {
        acc += min_bin + span * (v[i] * inv_sum);
        cum[i + 1] = 2.0f * s.tail * acc - s.tail;
    }
    cum[0] = -s.tail;
    cum[s.bins] = s.tail;
}

inline float derivative(const Spline& s, const float* ud, uint32_t i) {
    const float u = (i == 0 || i == s.bins) ? s.boundary : ud[i - 1];
    return s.min_d + softplus_(u);
}

inline float spline_inverse(const Spline& s, float x, const float* p) {
    if (!(x >= -s.tail && x <= s.tail)) {
        return x;
    }
    float cumw[kMaxBins + 1];
    float cumh[kMaxBins + 1];
    knots(s, p, s.min_w, cumw);
    knots(s, p + s.bins, s.min_h, cumh);
    uint32_t k = 0;
    for (uint32_t i = 0; i <= s.bins; ++i) {
        const float c = i == s.bins ? cumh[i] + 1e-6f : cumh[i];
        if (x >= c) {
            k = i;
        }
    }
    if (k > s.bins - 1) {
        k = s.bins - 1;
    }
    const float in_w = cumw[k + 1] - cumw[k];
    const float in_h = cumh[k + 1] - cumh[k];
    const float delta = in_h * recip(in_w);
    const float d0 = derivative(s, p + 2 * s.bins, k);
    const float d1 = derivative(s, p + 2 * s.bins, k + 1);
    const float dy = x - cumh[k];
    const float sum_d = d0 + d1 - 2.0f * delta;
    const float a = dy * sum_d + in_h * (delta - d0);
    const float b = in_h * d0 - dy * sum_d;
    const float c = -delta * dy;
    const float disc = b * b - 4.0f * a * c;
    const float den = -b - sqrt_(disc);
    // den < 0 whenever dy > 0; at dy == 0 the root is 0 (c == 0), so skip the reciprocal.
    const float root = c == 0.0f ? 0.0f : (2.0f * c) * recip(den);
    return root * in_w + cumw[k];
}

// ceil(v) for finite v as an unsigned integer, 0 for v <= 0 (v < 2^31 assumed; larger
// values saturate).
inline uint32_t ceil_u32(float v) {
    if (!(v > 0.0f)) {
        return 0;
    }
    if (v >= 2147483648.0f) {
        return 0x7FFFFFFFu;
    }
    const uint32_t i = static_cast<uint32_t>(v);  // truncation toward zero
    return static_cast<float>(i) < v ? i + 1 : i;
}

}  // namespace

#ifdef DURATIONS
void kernel_main() {
    const uint32_t logw_addr = get_arg_val<uint32_t>(0);
    const uint32_t index_addr = get_arg_val<uint32_t>(1);
    const uint32_t aux_addr = get_arg_val<uint32_t>(2);
    const uint32_t rows = get_arg_val<uint32_t>(3);
    const float length_scale = as_float(get_arg_val<uint32_t>(4));
    constexpr auto logw_args = TensorAccessorArgs<0>();
    constexpr auto index_args = TensorAccessorArgs<logw_args.next_compile_time_args_offset()>();
    constexpr auto aux_args = TensorAccessorArgs<index_args.next_compile_time_args_offset()>();
    constexpr uint32_t base = aux_args.next_compile_time_args_offset();
    constexpr uint32_t logw_fmt = get_compile_time_arg_val(base);
    constexpr uint32_t cb_scratch = get_compile_time_arg_val(base + 1);
    const auto logw_acc = TensorAccessor(logw_args, logw_addr, logw_fmt == 0 ? 4096 : 2048);
    const auto index_acc = TensorAccessor(index_args, index_addr, 128);
    const auto aux_acc = TensorAccessor(aux_args, aux_addr, 64);

    // Scratch: logw tile (4096), index page (128), aux chunk (64).
    cb_reserve_back(cb_scratch, 1);
    const uint32_t tile_l1 = get_write_ptr(cb_scratch);
    const uint32_t page_l1 = tile_l1 + 4096;
    const uint32_t aux_l1 = page_l1 + 128;
    volatile tt_l1_ptr uint32_t* page = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(page_l1);
    uint32_t total = 0;
    const uint32_t tile_rows = (rows + 31) / 32;
    for (uint32_t tr = 0; tr < tile_rows; ++tr) {
        noc_async_read_tile(tr, logw_acc, tile_l1);
        noc_async_read_barrier();
        for (uint32_t r = 0; r < 32; ++r) {
            uint32_t d = 0;
            if (tr * 32 + r < rows) {
                d = ceil_u32(exp_(load(tile_l1, logw_fmt, tile_index(r, 0))) * length_scale);
            }
            page[r] = d;
            total += d;
        }
        noc_async_write_tile(tr, index_acc, page_l1);
        noc_async_write_barrier();
    }
    volatile tt_l1_ptr uint32_t* aux = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(aux_l1);
    for (uint32_t w = 0; w < 16; ++w) {
        aux[w] = 0;
    }
    aux[0] = total;
    noc_async_write_tile(0, aux_acc, aux_l1);
    noc_async_write_barrier();
}
#else
void kernel_main() {
    const uint32_t x_addr = get_arg_val<uint32_t>(0);
    const uint32_t p_addr = get_arg_val<uint32_t>(1);
    const uint32_t out_addr = get_arg_val<uint32_t>(2);
    const uint32_t out2_addr = get_arg_val<uint32_t>(3);
    const uint32_t first_unit = get_arg_val<uint32_t>(4);
    const uint32_t num_units = get_arg_val<uint32_t>(5);
    const uint32_t rows = get_arg_val<uint32_t>(6);
    Spline s;
    s.tail = as_float(get_arg_val<uint32_t>(7));
    s.min_w = as_float(get_arg_val<uint32_t>(8));
    s.min_h = as_float(get_arg_val<uint32_t>(9));
    s.min_d = as_float(get_arg_val<uint32_t>(10));
    s.inv_scale = as_float(get_arg_val<uint32_t>(11));
    s.boundary = as_float(get_arg_val<uint32_t>(12));
    const float aff_m = as_float(get_arg_val<uint32_t>(13));
    const float aff_s = as_float(get_arg_val<uint32_t>(14));

    constexpr auto x_args = TensorAccessorArgs<0>();
    constexpr auto p_args = TensorAccessorArgs<x_args.next_compile_time_args_offset()>();
    constexpr auto out_args = TensorAccessorArgs<p_args.next_compile_time_args_offset()>();
    constexpr auto out2_args = TensorAccessorArgs<out_args.next_compile_time_args_offset()>();
    constexpr uint32_t base = out2_args.next_compile_time_args_offset();
    constexpr uint32_t x_fmt = get_compile_time_arg_val(base);
    constexpr uint32_t p_fmt = get_compile_time_arg_val(base + 1);
    constexpr uint32_t out_fmt = get_compile_time_arg_val(base + 2);
    constexpr uint32_t out2_fmt = get_compile_time_arg_val(base + 3);
    constexpr uint32_t p_tile_cols = get_compile_time_arg_val(base + 4);
    constexpr uint32_t bins = get_compile_time_arg_val(base + 5);
    constexpr uint32_t dual = get_compile_time_arg_val(base + 6);
    constexpr uint32_t affine = get_compile_time_arg_val(base + 7);
    constexpr uint32_t cb_scratch = get_compile_time_arg_val(base + 8);
    s.bins = bins > kMaxBins ? kMaxBins : (bins == 0 ? 1 : bins);
    const uint32_t n_params = 3 * s.bins - 1;

    const uint32_t x_tile = x_fmt == 0 ? 4096 : 2048;
    const uint32_t p_tile = p_fmt == 0 ? 4096 : 2048;
    const uint32_t out_tile = out_fmt == 0 ? 4096 : 2048;
    const uint32_t out2_tile = out2_fmt == 0 ? 4096 : 2048;
    const auto x_acc = TensorAccessor(x_args, x_addr, x_tile);
    const auto p_acc = TensorAccessor(p_args, p_addr, p_tile);
    const uint32_t out_esize = out_fmt == 0 ? 4 : 2;
    const uint32_t out2_esize = out2_fmt == 0 ? 4 : 2;
    const auto out_acc = TensorAccessor(out_args, out_addr, out_tile);
    const auto out2_acc = TensorAccessor(out2_args, out2_addr, out2_tile);

    // Scratch: x tile, p tiles (4096 bytes each, the largest tile), then 1024 zero bytes and
    // two 128-byte row-pair chunks (out, out2).
    cb_reserve_back(cb_scratch, 1);
    const uint32_t x_l1 = get_write_ptr(cb_scratch);
    const uint32_t p_l1 = x_l1 + 4096;
    const uint32_t zero_l1 = p_l1 + 4096 * p_tile_cols;
    const uint32_t chunk_l1 = zero_l1 + 1024;
    const uint32_t chunk2_l1 = chunk_l1 + 128;
    zero_tile(zero_l1, 1024);

    // Work unit u = rows 2 (u % 16) and 2 (u % 16) + 1 of tile row u / 16: in a tile those two
    // rows' columns 0-15 are 32 contiguous elements of face 0 (rows < 16) or face 2, so every
    // unit writes its own aligned 128-byte (fp32) / 64-byte (bf16) chunk, and units on different
    // cores never share bytes. The unit starting a face half also zeroes the neighbouring
    // face (columns 16-31, pure padding). Rows >= T are written as zeros.
    float params[3 * kMaxBins];
    uint32_t loaded = 0xFFFFFFFFu;
    for (uint32_t u = first_unit; u < first_unit + num_units; ++u) {
        const uint32_t tr = u / 16;
        const uint32_t r0 = 2 * (u % 16);
        if (tr != loaded) {
            noc_async_read_tile(tr, x_acc, x_l1);
            for (uint32_t j = 0; j < p_tile_cols; ++j) {
                noc_async_read_tile(tr * p_tile_cols + j, p_acc, p_l1 + j * 4096);
            }
            noc_async_read_barrier();
            loaded = tr;
        }
        zero_tile(chunk_l1, 256);
        for (uint32_t d = 0; d < 2; ++d) {
            const uint32_t r = r0 + d;
            if (tr * 32 + r >= rows) {
                break;
            }
            for (uint32_t i = 0; i < n_params; ++i) {
                const uint32_t tile = i / 32;
                params[i] = load(p_l1 + tile * 4096, p_fmt, tile_index(r, i % 32));
            }
            const float x = load(x_l1, x_fmt, tile_index(r, 0));
            float y = spline_inverse(s, x, params);
            if (affine) {
                y = (y - aff_m) * aff_s;
            }
            store(chunk_l1, out_fmt, d * 16, y);
            if (dual) {
                store(chunk2_l1, out2_fmt, d * 16, y);
            }
        }
        const uint32_t face = (r0 / 16) * 2;
        const uint32_t elem = face * 256 + (r0 % 16) * 16;
        noc_async_write(chunk_l1, out_acc.get_noc_addr(tr, elem * out_esize), 32 * out_esize);
        if (dual) {
            noc_async_write(chunk2_l1, out2_acc.get_noc_addr(tr, elem * out2_esize), 32 * out2_esize);
        }
        if (r0 % 16 == 0) {
            const uint32_t pad = (face + 1) * 256;
            noc_async_write(zero_l1, out_acc.get_noc_addr(tr, pad * out_esize), 256 * out_esize);
            if (dual) {
                noc_async_write(zero_l1, out2_acc.get_noc_addr(tr, pad * out2_esize), 256 * out2_esize);
            }
        }
        noc_async_write_barrier();
    }
}
#endif
