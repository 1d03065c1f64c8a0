/* test_common.c - shared infrastructure: rng, opts, npy, atomic files. */
#include <unistd.h>

#include "common.h"
#include "npy.h"
#include "opts.h"
#include "rng.h"
#include "test.h"

TEST(rng_streams_are_deterministic_and_distinct) {
    Rng a = rng_derive(42, RNG_STREAM_AUGMENT, 3, 17, 1), b = rng_derive(42, RNG_STREAM_AUGMENT, 3, 17, 1);
    Rng c = rng_derive(42, RNG_STREAM_AUGMENT, 3, 17, 0);
    int same = 1, diff = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = rng_u64(&a), y = rng_u64(&b), z = rng_u64(&c);
        same &= x == y;
        diff += x != z;
    }
    CHECK(same, "same coordinates must give the same stream");
    CHECK(diff > 95, "different view must give a different stream (%d/100 differ)", diff);
}

TEST(rng_uniform_moments) {
    Rng r = rng_derive(1, RNG_STREAM_TEST, 0, 0, 0);
    double s = 0, s2 = 0, n = 200000, ns = 0;
    for (int i = 0; i < n; i++) {
        float u = rng_uniform(&r);
        CHECK(u >= 0 && u < 1, "uniform out of range: %g", u);
        s += u;
        s2 += u * u;
        double g = rng_normal(&r);
        ns += g * g;
    }
    CHECK_CLOSE("mean", s / n, 0.5, 0, 0.005);
    CHECK_CLOSE("var", s2 / n - (s / n) * (s / n), 1.0 / 12, 0, 0.002);
    CHECK_CLOSE("normal second moment", ns / n, 1.0, 0, 0.02);
    uint32_t perm[1000];
    rng_permutation(&r, perm, 1000, 1);
    int seen[1000] = {0}, ok = 1;
    for (int i = 0; i < 1000; i++) ok &= !seen[perm[i]]++;
    CHECK(ok, "permutation repeats an element");
}

TEST(opts_parse_types_and_errors) {
    int batch = 256, flag = 0, choice = 0;
    float lr = 0.1f;
    const char *out = NULL;
    Opt t[] = {{"batch-size", OPT_INT, &batch, "b", .min = 1, .max = 100000},
               {"lr", OPT_FLOAT, &lr, "lr", .min = 0, .max = 100},
               {"force", OPT_FLAG, &flag, "f"},
               {"optimizer", OPT_CHOICE, &choice, "o", .choices = "adam|adamw|sgd|lars"},
               {"out", OPT_STR, &out, "o"},
               {0}};
    Opt *tables[] = {t};
    char *argv1[] = {"x", "--batch-size", "64", "--lr=0.5", "--force", "--optimizer", "lars",
                     "--out", "runs/a", "pos"};
    const char *pos[2];
    int npos = 2;
    CHECK(opts_parse("x", "", 10, argv1, tables, 1, pos, &npos) == 0, "%s", sc_error());
    CHECK(batch == 64 && lr == 0.5f && flag == 1 && choice == 3 && !strcmp(out, "runs/a"),
          "values not parsed");
    CHECK(npos == 1 && !strcmp(pos[0], "pos"), "positional");
    CHECK(opts_was_set(tables, 1, "lr") && !opts_was_set(tables, 1, "nope"), "was_set");
    char *bad1[] = {"x", "--batch-size", "0"};
    CHECK(opts_parse("x", "", 3, bad1, tables, 1, NULL, NULL) != 0 &&
              strstr(sc_error(), "--batch-size"), "range error must name the option: %s", sc_error());
    char *bad2[] = {"x", "--optimizer", "rmsprop"};
    CHECK(opts_parse("x", "", 3, bad2, tables, 1, NULL, NULL) != 0 && strstr(sc_error(), "lars"),
          "choice error lists the choices: %s", sc_error());
    char *bad3[] = {"x", "--bogus", "1"};
    CHECK(opts_parse("x", "", 3, bad3, tables, 1, NULL, NULL) != 0 && strstr(sc_error(), "--bogus"),
          "unknown option named: %s", sc_error());
    char *bad4[] = {"x", "--lr", "abc"};
    CHECK(opts_parse("x", "", 3, bad4, tables, 1, NULL, NULL) != 0, "non-number accepted");
    char *bad5[] = {"x", "--lr"};
    CHECK(opts_parse("x", "", 2, bad5, tables, 1, NULL, NULL) != 0, "missing value accepted");
}

TEST(npy_roundtrip_and_header_bytes) {
    char path[] = "/tmp/simclr_test_npyXXXXXX";
    int fd = mkstemp(path);
    close(fd);
    float v[6] = {0, 1, 2, 3, 4, 5};
    int64_t shape[2] = {2, 3};
    CHECK(npy_write(path, NPY_F32, 2, shape, v) == 0, "%s", sc_error());
    char *raw;
    size_t n;
    CHECK(sc_read_file(path, &raw, &n) == 0, "read back");
    /* numpy 1.24 writes exactly 152 bytes for arange(6,'<f4').reshape(2,3) (shared/notes 3.2). */
    CHECK(n == 152, "file size %zu, numpy writes 152", n);
    static const char want_head[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    CHECK(!memcmp(raw + 10, want_head, sizeof want_head - 1),
          "header text differs from numpy's: %.60s", raw + 10);
    free(raw);
    float *back;
    int64_t sh[8];
    int nd;
    CHECK(npy_load_f32(path, &back, sh, &nd) == 0, "%s", sc_error());
    CHECK(nd == 2 && sh[0] == 2 && sh[1] == 3, "shape");
    CHECK_ARRAY_CLOSE("data", back, v, 6, 0, 0);
    sc_free(back);
    /* truncated file -> clear error naming the file */
    FILE *f = fopen(path, "r+b");
    CHECK(ftruncate(fileno(f), 140) == 0, "truncate");
    fclose(f);
    CHECK(npy_load_f32(path, &back, NULL, NULL) != 0 && strstr(sc_error(), path),
          "truncated npy must fail naming the file: %s", sc_error());
    unlink(path);
}

TEST(error_messages_are_one_line) {
    /* fuzz_config / fuzz_safetensors: messages quoting a key or a tensor name with a newline */
    sc_error_set("x.json: bad key '%s'", "a\nb\r\x1b");
    CHECK(!strcmp(sc_error(), "x.json: bad key 'a\\x0ab\\x0d\\x1b'"), "got [%s]", sc_error());
    sc_error_prefix("--resume %s", "run\n1");
    CHECK(!strcmp(sc_error(), "--resume run\\x0a1: x.json: bad key 'a\\x0ab\\x0d\\x1b'"), "got [%s]",
          sc_error());
    sc_error_set("%s", "caf\xc3\xa9 ok"); /* UTF-8 file names are kept */
    CHECK(!strcmp(sc_error(), "caf\xc3\xa9 ok"), "got [%s]", sc_error());
}

static const char *test_names(const char *key) {
    return !strcmp(key, "loader.batch_size") ? "--batch-size" : !strcmp(key, "run.dir") ? "--out" : NULL;
}

TEST(error_names_rewrite_library_parameters) {
    /* the library names its parameters; a front end (cli/option_tables.c) names its options */
    sc_error_set("loader.batch_size: expected >= 1, got 0");
    CHECK(!strcmp(sc_error(), "loader.batch_size: expected >= 1, got 0"), "no hook: [%s]", sc_error());
    sc_error_names(test_names);
    sc_error_set("loader.batch_size: %d is larger (see run.dir x; model.width, a/run.dir, "
                 "x.run.dir, run.dirty, config.json)", 9);
    CHECK(!strcmp(sc_error(), "--batch-size: 9 is larger (see --out x; model.width, a/run.dir, "
                              "x.run.dir, run.dirty, config.json)"), "got [%s]", sc_error());
    sc_error_set("x.npy: bad");
    sc_error_prefix("run.dir %s", "r");
    CHECK(!strcmp(sc_error(), "--out r: x.npy: bad"), "prefix: [%s]", sc_error());
    sc_error_names(NULL);
}

TEST(npy_parse_buffer_rejects_truncated_headers) {
    /* issue #8 table #1: a header ending right after 'descr': with the data starting with a
     * quote made the dtype scan run past the buffer (fuzz/regress/npy/descr_at_header_end) */
    static const char bad[] = "\x93NUMPY\x01\x00\x09\x00{'descr':'\0\0\0";
    NpyArray a;
    CHECK(npy_parse(&a, "e.npy", bad, sizeof bad - 1) == -1 && strstr(sc_error(), "e.npy: "),
          "accepted or wrong message: %s", sc_error());
    /* 2^61 float64 elements: the byte count wraps to 0, which the empty data used to match */
    static const char big[] = "{'descr': '<f8', 'fortran_order': False, "
                              "'shape': (2305843009213693952,), }\n";
    char h[128] = "\x93NUMPY\x01";
    size_t hl = sizeof big - 1;
    h[7] = 0, h[8] = (char)hl, h[9] = 0;
    memcpy(h + 10, big, hl);
    CHECK(npy_parse(&a, "big.npy", h, 10 + hl) == -1 && strstr(sc_error(), "big.npy: expected"),
          "accepted a shape whose size overflows: %s", sc_error());
    /* and a valid one, parsed in place */
    static const char ok[] = "\x93NUMPY\x01\x00\x3a\x00{'descr': '|u1', 'fortran_order': False, "
                             "'shape': (3,), }\n\x07\x08\x09";
    CHECK(npy_parse(&a, "ok.npy", ok, sizeof ok - 1) == 0 && a.count == 3 &&
              (const char *)a.data == ok + sizeof ok - 4 && npy_get_i64(&a, 2) == 9,
          "valid buffer: %s", sc_error());
    npy_close(&a);
}

TEST(atomic_write_keeps_old_file_on_abort) {
    const char *p = "/tmp/simclr_test_atomic.txt";
    CHECK(sc_write_file_atomic(p, "old", 3) == 0, "%s", sc_error());
    AtomicFile af;
    CHECK(sc_atomic_open(&af, p) == 0, "%s", sc_error());
    fputs("half-written", af.f);
    sc_atomic_abort(&af);
    char *d;
    CHECK(sc_read_file(p, &d, NULL) == 0 && !strcmp(d, "old"), "old content must survive");
    free(d);
    unlink(p);
}
