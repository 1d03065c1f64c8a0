/* test_safetensors.c - golden bytes from the reference implementation's tests, round trips,
 * interop with a Python spec-following writer (fixture), and malformed files: every one must
 * give an error naming the file, never a crash. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "rng.h"
#include "safetensors.h"
#include "test.h"

/* A file image: u64 len | header | ndata bytes of 0xAB. */
static uint8_t *mk(const char *header, size_t ndata, size_t *len) {
    size_t n = strlen(header);
    *len = 8 + n + ndata;
    uint8_t *b = malloc(*len + 1);
    uint64_t N = n;
    memcpy(b, &N, 8);
    memcpy(b + 8, header, n);
    memset(b + 8 + n, 0xAB, ndata);
    return b;
}

static int parses(const char *header, size_t ndata) {
    size_t len;
    uint8_t *b = mk(header, ndata, &len);
    SafeTensors *st = NULL;
    int rc = safetensors_parse(&st, "x.safetensors", b, len);
    safetensors_close(st);
    free(b);
    return rc == 0;
}

#define EXPECT_BAD(header, ndata, needle)                                                         \
    do {                                                                                          \
        int ok_ = parses(header, ndata);                                                          \
        CHECK(!ok_ && strstr(sc_error(), "x.safetensors") && strstr(sc_error(), needle),         \
              "header %s: %s (wanted an error containing '%s')", header, ok_ ? "accepted" : sc_error(), \
              needle);                                                                            \
    } while (0)

TEST(golden_bytes_from_the_reference_tests) {
    float d[6] = {0, 1, 2, 3, 4, 5};
    StTensorOut t = {"attn.0", ST_F32, 3, {1, 2, 3}, d};
    uint8_t *b;
    size_t len;
    SC_ASSERT(!safetensors_serialize(&t, 1, NULL, 0, &b, &len));
    const char *h = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
    char hp[65];
    snprintf(hp, sizeof hp, "%-64s", h); /* padded with spaces to 64 */
    CHECK(len == 8 + 64 + 24, "length %zu", len);
    CHECK(b[0] == 64 && !memcmp(b + 1, "\0\0\0\0\0\0\0", 7), "header length bytes");
    CHECK(!memcmp(b + 8, hp, 64), "header: %.64s", b + 8);
    const uint8_t one[4] = {0x00, 0x00, 0x80, 0x3f};
    CHECK(!memcmp(b + 72 + 4, one, 4), "1.0f little-endian");
    free(b);
    StTensorOut t2 = {"attn0", ST_F32, 4, {1, 1, 2, 3}, d};
    SC_ASSERT(!safetensors_serialize(&t2, 1, NULL, 0, &b, &len));
    CHECK(b[0] == 72 && len == 8 + 72 + 24, "attn0: N %d", b[0]);
    CHECK(!memcmp(b + 8 + 72 - 7, "       ", 7) && b[8 + 72 - 8] == '}', "7 padding spaces");
    free(b);
    SC_ASSERT(!safetensors_serialize(NULL, 0, NULL, 0, &b, &len));
    CHECK(len == 16 && b[0] == 8 && !memcmp(b + 8, "{}      ", 8), "empty file");
    free(b);
    StMeta m = {"framework", "pt"};
    SC_ASSERT(!safetensors_serialize(NULL, 0, &m, 1, &b, &len));
    CHECK(b[0] == 40 && !memcmp(b + 8, "{\"__metadata__\":{\"framework\":\"pt\"}}     ", 40),
          "metadata only: %.40s", b + 8);
    free(b);
}

/* The tensors of tools/make_opt_fixtures.py's safetensors_fixture(), rebuilt from its formulas. */
typedef struct {
    float conv[108], var[3], quote[1], empty[1];
    int64_t nbt;
    double bias[3];
    uint8_t mask[5];
    int32_t idx[4];
    uint16_t half[2];
} PyTensors;

static int py_tensors(PyTensors *p, StTensorOut *t, StMeta *m) {
    for (int i = 0; i < 108; i++) p->conv[i] = i * 0.5f - 3;
    p->var[0] = 1, p->var[1] = 0.25f, p->var[2] = 4, p->quote[0] = 2;
    p->nbt = 7;
    p->bias[0] = 0.1, p->bias[1] = -2.5, p->bias[2] = 1e-300;
    uint8_t mk5[5] = {1, 0, 255, 3, 9};
    memcpy(p->mask, mk5, 5);
    int32_t ix[4] = {1, -2, 3, -4};
    memcpy(p->idx, ix, sizeof ix);
    p->half[0] = 0x3C00, p->half[1] = 0xB800; /* 1.0, -0.5 in IEEE half */
    StTensorOut tt[] = {
        {"conv1.weight", ST_F32, 4, {4, 3, 3, 3}, p->conv},
        {"bn1.num_batches_tracked", ST_I64, 0, {0}, &p->nbt},
        {"bn1.running_var", ST_F32, 1, {3}, p->var},
        {"fc.bias", ST_F64, 1, {3}, p->bias},
        {"mask", ST_U8, 1, {5}, p->mask},
        {"idx", ST_I32, 2, {2, 2}, p->idx},
        {"empty", ST_F32, 2, {0, 3}, p->empty},
        {"half", ST_F16, 1, {2}, p->half},
        {"a\"q\\uote\xc3\xa9", ST_F32, 1, {1}, p->quote},
    };
    memcpy(t, tt, sizeof tt);
    m[0] = (StMeta){"format", "pt"};
    m[1] = (StMeta){"config", "{\"arch\": \"resnet18\",\n\t\"lr\": 0.3}"};
    m[2] = (StMeta){"note", "caf\xc3\xa9\x01"};
    return 9;
}

TEST(reads_the_python_written_file) {
    SafeTensors *st;
    if (safetensors_open(&st, fixture_path("opt/py_written.safetensors"))) {
        CHECK(0, "%s", sc_error());
        return;
    }
    PyTensors p;
    StTensorOut t[9];
    StMeta m[3];
    int n = py_tensors(&p, t, m);
    CHECK(st->n == n, "%d tensors", st->n);
    for (int i = 0; i < n; i++) {
        const StTensor *x = safetensors_find(st, t[i].name);
        CHECK(x != NULL, "tensor '%s' missing", t[i].name);
        if (!x) continue;
        CHECK(x->dtype == t[i].dtype && x->ndim == t[i].ndim, "'%s': dtype %s ndim %d", t[i].name,
              st_dtype_name(x->dtype), x->ndim);
        size_t nb = st_dtype_size(t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++) {
            nb *= t[i].shape[d];
            CHECK(x->shape[d] == t[i].shape[d], "'%s' shape[%d]", t[i].name, d);
        }
        CHECK(x->nbytes == nb && (!nb || !memcmp(x->data, t[i].data, nb)), "'%s': data differs", t[i].name);
    }
    for (int i = 0; i < 3; i++) {
        const char *v = safetensors_meta(st, m[i].key);
        CHECK(v && !strcmp(v, m[i].value), "metadata '%s' = '%s'", m[i].key, v ? v : "(missing)");
    }
    CHECK(safetensors_meta(st, "missing") == NULL && safetensors_find(st, "missing") == NULL, "lookups");
    int64_t nbt = 0, sh0[1] = {0};
    CHECK(!safetensors_read(st, "bn1.num_batches_tracked", ST_I64, 0, sh0, &nbt) && nbt == 7,
          "I64 scalar: %s", sc_error());
    safetensors_close(st);
}

TEST(writer_output_is_byte_identical_to_the_python_writer) {
    PyTensors p;
    StTensorOut t[9];
    StMeta m[3];
    int n = py_tensors(&p, t, m);
    char *want;
    size_t wlen;
    if (sc_read_file(fixture_path("opt/py_written.safetensors"), &want, &wlen)) {
        CHECK(0, "%s", sc_error());
        return;
    }
    char path[] = "/tmp/test_safetensors_XXXXXX";
    int fd = mkstemp(path);
    SC_ASSERT(fd >= 0);
    close(fd);
    CHECK(!safetensors_write(path, t, n, m, 3), "%s", sc_error());
    char *got;
    size_t glen;
    SC_ASSERT(!sc_read_file(path, &got, &glen));
    CHECK(glen == wlen && !memcmp(got, want, wlen), "C writer: %zu bytes, Python writer: %zu", glen, wlen);
    uint8_t *mem;
    size_t mlen;
    SC_ASSERT(!safetensors_serialize(t, n, m, 3, &mem, &mlen));
    CHECK(mlen == wlen && !memcmp(mem, want, wlen), "serialize differs from write");
    free(mem), free(got), free(want);
    unlink(path);
}

TEST(round_trip_and_checked_read) {
    const char *path = "/tmp/test_safetensors_rt.safetensors";
    float w[64 * 3 * 7 * 7];
    for (int i = 0; i < 64 * 147; i++) w[i] = (float)i / 7;
    StTensorOut t[2] = {{"conv1.weight", ST_F32, 4, {64, 3, 7, 7}, w},
                        {"head.0.bias", ST_F32, 1, {5}, w}};
    StMeta m = {"step", "12"};
    SC_ASSERT(!safetensors_write(path, t, 2, &m, 1));
    SafeTensors *st;
    SC_ASSERT(!safetensors_open(&st, path));
    float *back = malloc(sizeof w);
    int64_t ok[4] = {64, 3, 7, 7}, bad[4] = {64, 3, 3, 3};
    CHECK(!safetensors_read(st, "conv1.weight", ST_F32, 4, ok, back) && !memcmp(back, w, sizeof w),
          "round trip: %s", sc_error());
    CHECK(safetensors_read(st, "conv1.weight", ST_F32, 4, bad, back) == -1 &&
              strstr(sc_error(), "tensor 'conv1.weight' is F32 [64,3,7,7], expected F32 [64,3,3,3]") &&
              strstr(sc_error(), path),
          "shape mismatch message: %s", sc_error());
    CHECK(safetensors_read(st, "conv1.weight", ST_I64, 4, ok, back) == -1, "dtype mismatch accepted");
    CHECK(safetensors_read(st, "fc.weight", ST_F32, 4, ok, back) == -1 && strstr(sc_error(), "no tensor 'fc.weight'"),
          "missing tensor: %s", sc_error());
    CHECK(!strcmp(safetensors_meta(st, "step"), "12"), "metadata");
    safetensors_close(st);
    free(back);
    unlink(path);
}

TEST(writer_rejects_bad_input_and_keeps_the_old_file) {
    const char *path = "/tmp/test_safetensors_keep.safetensors";
    float d[2] = {1, 2};
    StTensorOut good = {"a", ST_F32, 1, {2}, d};
    SC_ASSERT(!safetensors_write(path, &good, 1, NULL, 0));
    StTensorOut dup[2] = {good, good};
    CHECK(safetensors_write(path, dup, 2, NULL, 0) == -1 && strstr(sc_error(), "duplicate") &&
              strstr(sc_error(), path), "duplicate names: %s", sc_error());
    StTensorOut meta_name = {"__metadata__", ST_F32, 1, {2}, d}, empty = {"", ST_F32, 1, {2}, d},
                neg = {"n", ST_F32, 1, {-2}, d}, nodata = {"x", ST_F32, 1, {2}, NULL};
    CHECK(safetensors_write(path, &meta_name, 1, NULL, 0) == -1, "__metadata__ as a name");
    CHECK(safetensors_write(path, &empty, 1, NULL, 0) == -1, "empty name");
    CHECK(safetensors_write(path, &neg, 1, NULL, 0) == -1, "negative dim");
    CHECK(safetensors_write(path, &nodata, 1, NULL, 0) == -1, "NULL data");
    StMeta m2[2] = {{"k", "1"}, {"k", "2"}};
    CHECK(safetensors_write(path, &good, 1, m2, 2) == -1, "duplicate metadata keys");
    CHECK(safetensors_write("/nonexistent-dir/x.safetensors", &good, 1, NULL, 0) == -1 &&
              strstr(sc_error(), "/nonexistent-dir/x.safetensors"), "unwritable: %s", sc_error());
    SafeTensors *st;
    CHECK(!safetensors_open(&st, path), "the old file must be intact: %s", sc_error());
    if (st) safetensors_close(st);
    unlink(path);
}

TEST(rejects_malformed_headers) {
    const char *T = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    CHECK(parses(T, 8), "valid header rejected: %s", sc_error());
    CHECK(parses("{}", 0) && parses("  {}  ", 0), "empty header: %s", sc_error());
    /* size and tiling */
    EXPECT_BAD(T, 7, "");
    EXPECT_BAD(T, 9, "trailing");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
               "tensor 'a' has 4 bytes, expected 8 for F32 [2]");
    EXPECT_BAD("{\"conv1.weight\":{\"dtype\":\"F32\",\"shape\":[64,3,7,7],\"data_offsets\":[0,120]}}",
               120, "x.safetensors: tensor 'conv1.weight' has 120 bytes, expected 37632 for F32 [64,3,7,7]");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "tile");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, "tile");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "tile");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "tile");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}", 8,
               "overflow");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551615]}}", 8, "");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551616]}}", 8,
               "non-negative integers");
    /* content */
    EXPECT_BAD("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype 'F33'");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing field 'data_offsets'");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, "unknown field");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "non-negative");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, "non-negative");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", 8, "data_offsets");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8, "shape");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, "dimensions");
    EXPECT_BAD("{\"a\":[1]}", 0, "expected an object");
    EXPECT_BAD("{\"__metadata__\":{\"k\":1}}", 0, "not a string");
    EXPECT_BAD("{\"__metadata__\":[]}", 0, "__metadata__");
    /* duplicates */
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, "duplicate key 'a'");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "duplicate");
    EXPECT_BAD("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "duplicate");
    EXPECT_BAD("{\"a\\u0062\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
               "\"ab\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, "duplicate");
    /* JSON syntax */
    EXPECT_BAD("[]", 0, "object");
    EXPECT_BAD("{", 0, "JSON");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],}}", 8, "JSON");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,],\"data_offsets\":[0,8]}}", 8, "JSON");
    EXPECT_BAD("{} x", 0, "trailing");
    EXPECT_BAD("{}{}", 0, "trailing");
    EXPECT_BAD("{\"a\" {}}", 0, "':'");
    EXPECT_BAD("{'a':{}}", 0, "JSON");
    EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8, "leading zero");
    EXPECT_BAD("{\"__metadata__\":{\"k\":\"a\nb\"}}", 0, "control character");
    EXPECT_BAD("{\"__metadata__\":{\"k\":\"\xff\"}}", 0, "UTF-8");
    EXPECT_BAD("{\"__metadata__\":{\"k\":\"\xc0\xaf\"}}", 0, "UTF-8"); /* overlong '/' */
    EXPECT_BAD("{\"__metadata__\":{\"k\":\"\xed\xa0\x80\"}}", 0, "UTF-8"); /* encoded surrogate */
    EXPECT_BAD("{\"__metadata__\":{\"k\":\"\\ud800\"}}", 0, "surrogate");
    EXPECT_BAD("{\"__metadata__\":{\"k\":\"\\udc00x\"}}", 0, "surrogate");
    EXPECT_BAD("{\"__metadata__\":{\"k\":\"\\x41\"}}", 0, "escape");
    EXPECT_BAD("{\"__metadata__\":{\"k\":\"\\u12G4\"}}", 0, "escape");
    EXPECT_BAD("{\"__metadata__\":{\"k\":\"abc}}", 0, "unterminated");
    EXPECT_BAD("{\"__metadata__\":{\"k\":tru}}", 0, "JSON");
    EXPECT_BAD("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, "NUL");
    char deep[200] = "{\"__metadata__\":";
    for (int i = 0; i < 40; i++) strcat(deep, "[");
    EXPECT_BAD(deep, 0, "nested");
    /* valid escapes decode */
    size_t len;
    uint8_t *b = mk("{\"__metadata__\":{\"k\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}}", 0, &len);
    SafeTensors *st;
    CHECK(!safetensors_parse(&st, "x", b, len), "escapes: %s", sc_error());
    if (st) {
        const char *v = safetensors_meta(st, "k");
        CHECK(v && !strcmp(v, "\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80"), "decoded '%s'", v ? v : "");
        safetensors_close(st);
    }
    free(b);
}

TEST(rejects_bad_header_lengths) {
    uint8_t b[64];
    memset(b, ' ', sizeof b);
    SafeTensors *st;
    CHECK(safetensors_parse(&st, "x.safetensors", b, 5) == -1 && strstr(sc_error(), "too short"),
          "5 bytes: %s", sc_error());
    uint64_t N = 100000001;
    memcpy(b, &N, 8);
    CHECK(safetensors_parse(&st, "x.safetensors", b, 64) == -1 && strstr(sc_error(), "exceeds"),
          "huge N: %s", sc_error());
    N = 57;
    memcpy(b, &N, 8);
    CHECK(safetensors_parse(&st, "x.safetensors", b, 64) == -1 && strstr(sc_error(), "past the end"),
          "N past the end: %s", sc_error());
    N = UINT64_MAX;
    memcpy(b, &N, 8);
    CHECK(safetensors_parse(&st, "x.safetensors", b, 64) == -1, "N = 2^64-1 accepted");
    N = 0;
    memcpy(b, &N, 8);
    CHECK(safetensors_parse(&st, "x.safetensors", b, 64) == -1, "N = 0 accepted");
    /* files: missing, empty */
    CHECK(safetensors_open(&st, "/nonexistent/x.safetensors") == -1 &&
              strstr(sc_error(), "/nonexistent/x.safetensors"), "missing file: %s", sc_error());
    const char *empty = "/tmp/test_safetensors_empty.safetensors";
    SC_ASSERT(!sc_write_file_atomic(empty, "", 0));
    CHECK(safetensors_open(&st, empty) == -1 && strstr(sc_error(), empty), "empty file: %s", sc_error());
    unlink(empty);
}

/* Every truncation of a valid file fails cleanly; random byte corruption never crashes and
 * anything accepted is self-consistent. */
TEST(truncations_and_random_corruption) {
    PyTensors p;
    StTensorOut t[9];
    StMeta m[3];
    int n = py_tensors(&p, t, m);
    uint8_t *b;
    size_t len;
    SC_ASSERT(!safetensors_serialize(t, n, m, 3, &b, &len));
    int accepted = 0;
    for (size_t k = 0; k < len; k++) {
        SafeTensors *st;
        accepted += safetensors_parse(&st, "x.safetensors", b, k) == 0;
    }
    CHECK(accepted == 0, "%d truncated files accepted", accepted);
    Rng r = rng_derive(9, RNG_STREAM_TEST, 2, 0, 0);
    uint8_t *c = malloc(len);
    int ok = 0, bad_consistency = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(c, b, len);
        int flips = 1 + (int)rng_below(&r, 3);
        for (int f = 0; f < flips; f++) {
            size_t at = rng_below(&r, 8 + (it % 2 ? 16 : len - 8)); /* often the length field */
            c[at] = (uint8_t)rng_u32(&r);
        }
        SafeTensors *st;
        if (safetensors_parse(&st, "x.safetensors", c, len) == 0) {
            ok++;
            for (int i = 0; i < st->n; i++) {
                const uint8_t *d = st->t[i].data;
                if (st->t[i].nbytes && (d < c || d + st->t[i].nbytes > c + len)) bad_consistency++;
            }
            safetensors_close(st);
        }
    }
    CHECK(bad_consistency == 0, "%d accepted tensors point outside the file", bad_consistency);
    CHECK(ok < 3000, "corruption never detected");
    free(c), free(b);
}
