/* A background load for bench/oauth/login_interference.py, run at SCHED_IDLE like sipreg's
 * Argon2 pool: "spin" keeps a core busy in registers only; "mem" walks a buffer the size
 * of one Argon2id hash (19 MiB by default) the way Argon2 does (1 KiB blocks, each mixed
 * with a data-dependent earlier block), so caches and memory bandwidth are shared too.
 * Usage: hog spin|mem [KiB]. Runs until killed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "mem") == 0) {
        size_t kib = argc > 2 ? strtoul(argv[2], 0, 10) : 19456;
        size_t words = kib * 128; /* 1 KiB = 128 u64 */
        uint64_t *m = calloc(words, 8);
        if (!m) return 1;
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (;;) {
            for (size_t b = 1; b < kib; b++) {
                size_t ref = (size_t)(x % b); /* an earlier block, data-dependent */
                uint64_t *dst = m + b * 128, *src = m + ref * 128, *prev = dst - 128;
                for (int i = 0; i < 128; i++) {
                    uint64_t v = src[i] ^ prev[i];
                    v = (v << 13 | v >> 51) * 0xff51afd7ed558ccdull;
                    dst[i] ^= v;
                }
                x = x * 6364136223846793005ull + dst[0];
            }
        }
    }
    volatile uint64_t x = 1;
    for (;;) x = x * 6364136223846793005ull + 1442695040888963407ull;
}
