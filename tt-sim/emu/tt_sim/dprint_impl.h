// tt-sim emulation layer: DPRINT, printed to the host's stderr (prefixed with core and RISC).
#pragma once
#include <cstdio>

struct ENDL {};
struct HEX {};
struct DEC {};
struct FIXED {};
struct DEFAULTFLOAT {};
struct SETPRECISION {
    int p;
    explicit SETPRECISION(int v) : p(v) {}
};
struct SETW {
    int w;
    explicit SETW(int v) : w(v) {}
};
struct BF16 {
    uint16_t v;
    explicit BF16(uint16_t x) : v(x) {}
};
struct F32 {
    float v;
    explicit F32(float x) : v(x) {}
};

struct TtSimDprint {
    char buf[512];
    size_t len = 0;
    bool hex = false;
    int precision = 6;
    void put(const char* s, size_t n) {
        for (size_t i = 0; i < n; i++) {
            if (len + 1 >= sizeof(buf)) flush();
            buf[len++] = s[i];
        }
    }
    void flush() {
        if (len) tt_sim_api->dprint(tt_sim_ctx, buf, len);
        len = 0;
    }
    template <typename T>
    TtSimDprint& operator<<(T v) {
        char t[64];
        int n = 0;
        if constexpr (std::is_same_v<T, ENDL>) {
            put("\n", 1);
            flush();
            return *this;
        } else if constexpr (std::is_same_v<T, HEX>) {
            hex = true;
            return *this;
        } else if constexpr (std::is_same_v<T, DEC>) {
            hex = false;
            return *this;
        } else if constexpr (std::is_same_v<T, FIXED> || std::is_same_v<T, DEFAULTFLOAT> ||
                             std::is_same_v<T, SETW>) {
            return *this;
        } else if constexpr (std::is_same_v<T, SETPRECISION>) {
            precision = v.p;
            return *this;
        } else if constexpr (std::is_same_v<T, BF16>) {
            uint32_t b = (uint32_t)v.v << 16;
            float f;
            memcpy(&f, &b, 4);
            n = snprintf(t, sizeof t, "%.*g", precision, (double)f);
        } else if constexpr (std::is_same_v<T, F32>) {
            n = snprintf(t, sizeof t, "%.*g", precision, (double)v.v);
        } else if constexpr (std::is_same_v<T, const char*> || std::is_same_v<T, char*>) {
            put(v, strlen(v));
            return *this;
        } else if constexpr (std::is_same_v<T, char>) {
            put(&v, 1);
            return *this;
        } else if constexpr (std::is_floating_point_v<T>) {
            n = snprintf(t, sizeof t, "%.*g", precision, (double)v);
        } else if constexpr (std::is_pointer_v<T>) {
            n = snprintf(t, sizeof t, "%p", (const void*)v);
        } else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
            if constexpr (std::is_signed_v<T>) {
                n = hex ? snprintf(t, sizeof t, "0x%llx", (unsigned long long)v)
                        : snprintf(t, sizeof t, "%lld", (long long)v);
            } else {
                n = hex ? snprintf(t, sizeof t, "0x%llx", (unsigned long long)v)
                        : snprintf(t, sizeof t, "%llu", (unsigned long long)v);
            }
        } else {
            n = snprintf(t, sizeof t, "<?>");
        }
        if (n > 0) put(t, (size_t)n < sizeof t ? (size_t)n : sizeof t - 1);
        return *this;
    }
};

inline TtSimDprint tt_sim_dprint_stream;
#define DPRINT tt_sim_dprint_stream
#define DPRINT_UNPACK(x) x
#define DPRINT_MATH(x) x
#define DPRINT_PACK(x) x
#define DPRINT_DATA0(x) x
#define DPRINT_DATA1(x) x
