/* test.h - the test harness: each tests/test_*.c is one binary of TEST()s.
 *
 *     #include "test.h"
 *     TEST(npy_roundtrip) {
 *         CHECK(x == 3, "x is %d", x);                    // records a failure, test continues
 *         CHECK_CLOSE("loss", got, want, 1e-5, 1e-6);     // |got-want| <= atol + rtol*|want|
 *         CHECK_ARRAY_CLOSE("dW", g, w, n, 1e-4, 1e-5);   // reports the worst element
 *     }
 *
 * The binary runs every TEST in file order (or those named on its command line), prints
 * "ok NAME" or "FAIL NAME" with the failed checks, and ends with "N passed, M failed"; it exits
 * 1 when anything failed. tests/run.sh sums these lines over all binaries.
 * Fixtures live in tests/fixtures/ (found through FIXTURE_DIR, relative to the repo root).
 */
#ifndef SIMCLR_TEST_H
#define SIMCLR_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"

typedef void (*TestFn)(void);
static struct {
    const char *name;
    TestFn fn;
} test_table[512];
static int test_count, test_failed_checks;

#define TEST(tname)                                                                     \
    static void test_##tname(void);                                                     \
    __attribute__((constructor)) static void register_##tname(void) {                   \
        test_table[test_count].name = #tname;                                           \
        test_table[test_count++].fn = test_##tname;                                     \
    }                                                                                   \
    static void test_##tname(void)

#define CHECK(cond, ...)                                                                \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            test_failed_checks++;                                                       \
            fprintf(stderr, "  %s:%d: check '%s' failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
        }                                                                               \
    } while (0)

static inline int test_close(double got, double want, double rtol, double atol) {
    if (isnan(got) || isnan(want)) return isnan(got) && isnan(want);
    return fabs(got - want) <= atol + rtol * fabs(want);
}

#define CHECK_CLOSE(what, got, want, rtol, atol)                                          \
    do {                                                                                  \
        double g_ = (got), w_ = (want);                                                   \
        CHECK(test_close(g_, w_, (rtol), (atol)), "%s: got %.9g, want %.9g", (what), g_, w_); \
    } while (0)

/* Compares n floats; reports the count of mismatches and the worst one. Returns 1 when ok. */
static inline int check_array_close(const char *file, int line, const char *what,
                                    const float *got, const float *want, size_t n, double rtol,
                                    double atol) {
    size_t bad = 0, worst = 0;
    double worst_excess = -1;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        double excess = fabs(g - w) - (atol + rtol * fabs(w));
        if (!test_close(g, w, rtol, atol)) {
            bad++;
            if (isnan(excess) || excess > worst_excess) {
                worst_excess = isnan(excess) ? INFINITY : excess;
                worst = i;
            }
        }
    }
    if (bad) {
        test_failed_checks++;
        fprintf(stderr,
                "  %s:%d: %s: %zu of %zu elements differ (rtol %g, atol %g); worst [%zu] got "
                "%.9g want %.9g\n",
                file, line, what, bad, n, rtol, atol, worst, got[worst], want[worst]);
    }
    return bad == 0;
}
#define CHECK_ARRAY_CLOSE(what, got, want, n, rtol, atol) \
    check_array_close(__FILE__, __LINE__, (what), (got), (want), (n), (rtol), (atol))

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif

/* Path of a fixture file: fixture_path("core/resnet18_small/x.npy"). Static buffer rotation. */
static inline const char *fixture_path(const char *rel) {
    static char bufs[8][1024];
    static int k;
    char *b = bufs[k++ & 7];
    const char *root = getenv("SIMCLR_FIXTURES");
    snprintf(b, 1024, "%s/%s", root ? root : FIXTURE_DIR, rel);
    return b;
}

/* Loads a fixture as float32 (any numeric dtype is converted); a missing or malformed fixture
 * ends the test binary with status 1 and the reason. shape may be NULL. */
static inline float *fixture_f32(const char *rel, int64_t *shape) {
    float *d = NULL;
    int64_t sh[NPY_MAX_DIMS];
    if (npy_load_f32(fixture_path(rel), &d, shape ? shape : sh, NULL)) {
        fprintf(stderr, "cannot load fixture %s: %s\n", rel, sc_error());
        exit(1);
    }
    return d;
}

/* Loads a 1-D integer fixture (class labels) as int; *n receives its length. */
static inline int *fixture_labels(const char *rel, size_t *n) {
    int64_t *d = NULL, sh[NPY_MAX_DIMS];
    if (npy_load_i64(fixture_path(rel), &d, sh, NULL)) {
        fprintf(stderr, "cannot load fixture %s: %s\n", rel, sc_error());
        exit(1);
    }
    int *y = malloc(sizeof(int) * (size_t)sh[0]);
    for (int64_t i = 0; i < sh[0]; i++) y[i] = (int)d[i];
    *n = (size_t)sh[0];
    sc_free(d);
    return y;
}

/* Scratch files: test_tmp("a/b.npy") is a path in this binary's own folder
 * /tmp/simclr_test_XXXXXX (made on first use); test_tmp("") is the folder itself.
 * test_tmp_remove() deletes it (the binaries' last TEST, "cleanup"). */
static inline const char *test_tmp(const char *name) {
    static char dir[256], bufs[8][512];
    static int k;
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/simclr_test_XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    if (!*name) return dir;
    char *b = bufs[k++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}
static inline int test_tmp_remove(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_tmp(""));
    return system(cmd);
}
/* Writes a whole file (atomically), aborting the binary when it cannot. */
static inline void test_write_bytes(const char *path, const void *data, size_t n) {
    if (sc_write_file_atomic(path, data, n)) {
        fprintf(stderr, "cannot write %s: %s\n", path, sc_error());
        abort();
    }
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0;
    for (int i = 0; i < test_count; i++) {
        int selected = argc < 2;
        for (int a = 1; a < argc; a++)
            if (!strcmp(argv[a], test_table[i].name)) selected = 1;
        if (!selected) continue;
        int before = test_failed_checks;
        test_table[i].fn();
        if (test_failed_checks == before) {
            passed++;
            printf("ok %s\n", test_table[i].name);
        } else {
            failed++;
            printf("FAIL %s\n", test_table[i].name);
        }
        fflush(stdout);
    }
    for (int a = 1; a < argc; a++) { /* a name that matches no test is a failure, not a skip */
        int known = 0;
        for (int i = 0; i < test_count; i++) known |= !strcmp(argv[a], test_table[i].name);
        if (!known) failed++, printf("FAIL %s (no such test)\n", argv[a]);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif
