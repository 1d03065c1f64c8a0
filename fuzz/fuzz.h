/* fuzz.h - shared helpers of the libFuzzer harnesses (fuzz/fuzz_*.c, one per parser).
 *
 * Each harness defines LLVMFuzzerTestOneInput and feeds the input to the library's own entry
 * point: a buffer API where the parser has one (npy_parse, safetensors_parse, image_decode,
 * dataset_parse_folds, opts_apply_json), otherwise files written into a private temporary
 * folder and opened the way the CLI opens them (dataset_open, runlog_open, metrics_read).
 * Besides crashes (ASan, UBSan, leaks, out-of-memory, timeouts), a harness aborts when a
 * rejected input leaves a message that is not one clean line (fuzz_check).
 *
 * `make fuzz` builds them with clang -fsanitize=fuzzer,address,undefined (build/fuzz/) and runs
 * each for FUZZ_SECONDS; `make` builds the same files with gcc against fuzz/replay.c
 * (build/fuzz-replay/), and tests/cli/fuzz_replay.sh replays every seed and every past crash
 * (fuzz/regress/NAME/) through them in the normal suite.
 */
#ifndef SIMCLR_FUZZ_H
#define SIMCLR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* rc 0: accepted. rc != 0: the library must have said why, in one line. */
static inline void fuzz_check(int rc) {
    if (!rc) return;
    const char *e = sc_error();
    if (!e[0] || !strcmp(e, "unknown error") || strchr(e, '\n') || strchr(e, '\r')) {
        fprintf(stderr, "fuzz: rejected input without a one-line message: [%s]\n", e);
        abort();
    }
}

static char fuzz_dir_path[256];
static void fuzz_dir_remove(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path);
    if (system(cmd)) {}
}

/* A private temporary folder for this process (removed at exit); returns dir/name. */
static inline const char *fuzz_path(const char *name) {
    if (!fuzz_dir_path[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/simclr-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fuzz_dir_path)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_dir_remove);
    }
    static char ring[4][512]; /* the last four paths stay valid */
    static int k;
    char *p = ring[k++ & 3];
    snprintf(p, 512, "%s/%s", fuzz_dir_path, name);
    return p;
}

/* Writes n bytes to dir/name (NULL data: remove the file); returns the path (valid for the
 * next three fuzz_path calls). */
static inline const char *fuzz_write(const char *name, const void *data, size_t n) {
    const char *p = fuzz_path(name);
    unlink(p);
    if (!data) return p;
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f)) {
        perror("fuzz: write");
        abort();
    }
    return p;
}

/* Splits an input at the first occurrence of the 4-byte separator "\n##\n" (for harnesses that
 * need two files): returns the length of the first part; *rest and *nrest the second (NULL, 0 when
 * absent). */
static inline size_t fuzz_split(const uint8_t *d, size_t n, const uint8_t **rest, size_t *nrest) {
    for (size_t i = 0; i + 4 <= n; i++)
        if (!memcmp(d + i, "\n##\n", 4)) {
            *rest = d + i + 4, *nrest = n - i - 4;
            return i;
        }
    *rest = NULL, *nrest = 0;
    return n;
}

#endif
