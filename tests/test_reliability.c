/* test_reliability.c - regression tests for the fault-finding pass of issue #8 (hand-made
 * hostile files and special files): each TEST names the finding it pins down.
 * The CLI side (run-folder lock, resume overrides, full disk, read-only folders, concurrent
 * runs, fold files, labels through the commands) is tests/cli/faults.sh. */
#include <stdio.h>
#include <jpeglib.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint.h"
#include "common.h"
#include "dataset.h"
#include "eval_io.h"
#include "image.h"
#include "npy.h"
#include "safetensors.h"
#include "test.h"

#define tmp test_tmp
#define write_bytes test_write_bytes
#define tmpdir test_tmp("")

/* A hang (a FIFO opened for reading, /dev/zero read to the end) must fail the test, not the
 * suite: SIGALRM ends the binary with a signal, which tests/run.sh counts as a failure. */
static void watchdog(unsigned seconds) { alarm(seconds); }

static int has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* ---- #1, #15: npy headers ------------------------------------------------------------------ */

/* "\x93NUMPY" v1.0, header text h (not padded), then the data bytes. */
static void write_npy_raw(const char *path, const char *h, const uint8_t *data, size_t n) {
    size_t hl = strlen(h);
    uint8_t *b = malloc(10 + hl + n);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)(hl & 255), b[9] = (uint8_t)(hl >> 8);
    memcpy(b + 10, h, hl);
    if (n) memcpy(b + 10 + hl, data, n);
    write_bytes(path, b, 10 + hl + n);
    free(b);
}

TEST(npy_header_ending_after_descr_is_not_overread) {
    /* finding 1: the header stops right after 'descr': and the data starts with a quote; the
     * old parser computed a negative length and ran memchr over the whole mapping */
    size_t n = (size_t)8 << 20;
    uint8_t *data = calloc(n, 1);
    data[0] = '\'';
    write_npy_raw(tmp("e.npy"), "{'descr':", data, n);
    free(data);
    NpyArray a;
    CHECK(npy_open(&a, tmp("e.npy")) == -1 && has(sc_error(), "descr"), "%s", sc_error());
    /* the same with the other keys cut short */
    write_npy_raw(tmp("f.npy"), "{'descr': '<f4', 'fortran_order':", (const uint8_t *)"True", 4);
    CHECK(npy_open(&a, tmp("f.npy")) == -1 && has(sc_error(), "fortran_order"), "%s", sc_error());
    write_npy_raw(tmp("s.npy"), "{'descr': '<u1', 'fortran_order': False, 'shape': (12",
                  (const uint8_t *)"345678901234", 12);
    CHECK(npy_open(&a, tmp("s.npy")) == -1 && has(sc_error(), "shape"), "%s", sc_error());
}

TEST(npy_shape_overflowing_the_byte_count_is_refused) {
    /* 2^61 float64 elements are 2^64 bytes: the product wraps to 0 = the data present */
    write_npy_raw(tmp("o.npy"), "{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,), }",
                  NULL, 0);
    NpyArray a;
    CHECK(npy_open(&a, tmp("o.npy")) == -1 && has(sc_error(), "data bytes"), "%s", sc_error());
}

TEST(messages_with_newlines_stay_on_one_line) {
    /* finding 15: a quoted value holding a newline split the message over two lines */
    write_npy_raw(tmp("nl.npy"), "{'descr': '<f\n', 'fortran_order': False, 'shape': (1,), }",
                  (const uint8_t *)"abcd", 4);
    NpyArray a;
    CHECK(npy_open(&a, tmp("nl.npy")) == -1 && !strchr(sc_error(), '\n') &&
              has(sc_error(), "'<f\\x0a'"), "%s", sc_error());
    sc_error_set("x '%s' \r \x01", "0 1\n5");
    CHECK(!strcmp(sc_error(), "x '0 1\\x0a5' \\x0d \\x01"), "%s", sc_error());
    sc_error_prefix("--opt\n");
    CHECK(!strchr(sc_error(), '\n'), "%s", sc_error());
}

/* ---- #8: special files ---------------------------------------------------------------------- */

TEST(special_files_are_refused_without_blocking) {
    watchdog(60);
    char *d;
    size_t n;
    CHECK(sc_read_file("/dev/zero", &d, &n) == -1 && has(sc_error(), "character device"), "%s",
          sc_error());
    SC_ASSERT(mkfifo(tmp("fifo"), 0644) == 0);
    CHECK(sc_read_file(tmp("fifo"), &d, &n) == -1 && has(sc_error(), "FIFO"), "%s", sc_error());
    MappedFile m;
    CHECK(sc_map_file(&m, tmp("fifo")) == -1 && has(sc_error(), "FIFO"), "%s", sc_error());
    CHECK(sc_read_file(tmpdir, &d, &n) == -1 && has(sc_error(), "folder"), "%s", sc_error());
    alarm(0);
}

/* ---- #14: outputs checked before the work -------------------------------------------------- */

TEST(output_paths_are_checked_up_front) {
    CHECK(sc_output_check("/nonexistent-dir/x.npy") == -1 && has(sc_error(), "x.npy"), "%s",
          sc_error());
    CHECK(sc_output_check(tmpdir) == -1 && has(sc_error(), "folder"), "%s", sc_error());
    CHECK(sc_output_check(tmp("fine.npy")) == 0, "%s", sc_error());
    CHECK(!sc_file_exists(tmp("fine.npy")), "the check leaves no file behind");
    /* through the option table: an output option is checked by opts_parse */
    const char *out = NULL;
    Opt t[] = {{"output", OPT_STR, &out, "x", .output = 1}, {0}};
    Opt *tabs[] = {t};
    char *argv[] = {"cmd", "--output", "/nonexistent-dir/y.png"};
    CHECK(opts_parse("cmd", NULL, 3, argv, tabs, 1, NULL, NULL) == -1 &&
              has(sc_error(), "--output") && has(sc_error(), "y.png"), "%s", sc_error());
}

/* ---- #4: safetensors headers with many keys ---------------------------------------------- */

/* A header of n empty F32 tensors "tNNNNNNN" (zero bytes each, so they tile trivially); with
 * dup, the last name repeats the first. */
static uint8_t *many_keys(int n, int dup, size_t *len) {
    size_t cap = (size_t)n * 64 + 64, k = 8;
    uint8_t *b = malloc(cap);
    k += (size_t)snprintf((char *)b + k, cap - k, "{");
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf((char *)b + k, cap - k,
                              "%s\"t%07d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                              i ? "," : "", dup && i == n - 1 ? 0 : i);
    k += (size_t)snprintf((char *)b + k, cap - k, "}");
    uint64_t N = k - 8;
    memcpy(b, &N, 8);
    *len = k;
    return b;
}

TEST(safetensors_with_200k_keys_parses_in_n_log_n) {
    /* finding 4: the duplicate-key check compared every key with all earlier ones: 100k keys
     * took 57 s, 200k more than 4 minutes. Sorted, 200k take well under a second. */
    size_t len;
    uint8_t *b = many_keys(200000, 0, &len);
    double t0 = sc_now();
    SafeTensors *st = NULL;
    int rc = safetensors_parse(&st, "many", b, len);
    double dt = sc_now() - t0;
    CHECK(rc == 0 && st && st->n == 200000, "%s", sc_error());
    CHECK(dt < 20, "200k keys took %.1f s", dt);
    if (st) {
        CHECK(safetensors_find(st, "t0123456") && !safetensors_find(st, "t0123456x") &&
                  !safetensors_find(st, "a"), "binary search finds names");
        safetensors_close(st);
    }
    free(b);
    b = many_keys(200000, 1, &len);
    t0 = sc_now();
    CHECK(safetensors_parse(&st, "dup", b, len) == -1 && has(sc_error(), "duplicate key 't0000000'"),
          "%s", sc_error());
    CHECK(sc_now() - t0 < 20, "duplicate search took %.1f s", sc_now() - t0);
    free(b);
}

TEST(safetensors_header_memory_is_a_small_multiple_of_its_size) {
    /* the header used to be parsed into a JSON tree of 72-byte nodes with a malloc per string and
     * number: about 1.4 KB per 68-byte tensor entry, 280 MB for this 13.6 MB header (and its
     * realloc peaks). Read straight into the tensor table it takes a few times its size. The
     * parse runs in a child, whose peak resident size the kernel reports. */
#ifdef __SANITIZE_ADDRESS__
    printf("  (skipped under AddressSanitizer: its shadow memory and quarantine count too)\n");
#else
    size_t len;
    uint8_t *b = many_keys(200000, 0, &len);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        SafeTensors *st = NULL;
        int rc = safetensors_parse(&st, "many", b, len);
        _exit(rc == 0 && st && st->n == 200000 ? 0 : 1);
    }
    int status = 0;
    struct rusage ru;
    CHECK(pid > 0 && wait4(pid, &status, 0, &ru) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0, "the child's parse failed");
    double mb = ru.ru_maxrss / 1024.0, header_mb = len / 1e6;
    printf("  %.1f MB header: peak resident size %.1f MB (the header itself included)\n", header_mb, mb);
    CHECK(mb < 8 * header_mb, "%.1f MB for a %.1f MB header", mb, header_mb);
    free(b);
#endif
}

/* ---- #10: checkpoint values ----------------------------------------------------------------- */

TEST(checkpoint_with_nan_inf_or_negative_variance_is_refused) {
    float w[4] = {1, 2, 3, 4}, var[2] = {1, 0}, v[4] = {0, 0, 0, 0};
    int64_t nbt = 3;
    CkTensor t[4] = {{"conv1.weight", ST_F32, 2, {2, 2}, w},
                     {"bn1.running_var", ST_F32, 1, {2}, var},
                     {"bn1.num_batches_tracked", ST_I64, 0, {0}, &nbt},
                     {"optim.conv1.weight.v", ST_F32, 2, {2, 2}, v}};
    CkMeta meta = {.step = 1, .config_json = "{}"};
    float rw[4], rvar[2], rv[4];
    int64_t rnbt;
    CkTensor r[4];
    memcpy(r, t, sizeof r);
    r[0].data = rw, r[1].data = rvar, r[2].data = &rnbt, r[3].data = rv;
    SC_ASSERT(checkpoint_write(tmp("good.safetensors"), t, 4, &meta) == 0);
    CHECK(checkpoint_read(tmp("good.safetensors"), r, 4, NULL, 0) == 0, "%s", sc_error());
    struct {
        float *at, val;
        const char *want;
    } bad[] = {{&w[2], NAN, "NaN at element 2"},
               {&w[0], INFINITY, "infinity"},
               {&var[1], -0.5f, "negative variance"},
               {&v[3], -1e-9f, "negative variance"}};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        float keep = *bad[k].at;
        *bad[k].at = bad[k].val;
        SC_ASSERT(checkpoint_write(tmp("bad.safetensors"), t, 4, &meta) == 0);
        CHECK(checkpoint_read(tmp("bad.safetensors"), r, 4, NULL, 0) == -1 &&
                  has(sc_error(), bad[k].want) && has(sc_error(), "bad.safetensors"),
              "case %zu: %s", k, sc_error());
        *bad[k].at = keep;
    }
    nbt = -1;
    SC_ASSERT(checkpoint_write(tmp("bad.safetensors"), t, 4, &meta) == 0);
    CHECK(checkpoint_read(tmp("bad.safetensors"), r, 4, NULL, 0) == -1 &&
              has(sc_error(), "num_batches_tracked"), "%s", sc_error());
}

/* ---- #7, #8, #13: image folders --------------------------------------------------------- */

static void write_png(const char *path, int w, int h) {
    uint8_t px[3 * 16 * 16];
    for (int i = 0; i < 3 * w * h; i++) px[i] = (uint8_t)(i * 37);
    SC_ASSERT(image_write_png(path, px, w, h, 3) == 0);
}

static DatasetConfig folder_cfg(const char *path) {
    DatasetConfig c;
    dataset_config_default(&c);
    c.kind = DATASET_FOLDER, c.path = path;
    return c;
}

TEST(folder_symlinks_to_folders_are_not_followed) {
    /* finding 7: photos/a/loop -> .. made 902 files of 15, class-b images labelled a */
    sc_mkdir_p(tmp("photos/a"));
    sc_mkdir_p(tmp("photos/b"));
    write_png(tmp("photos/a/1.png"), 8, 8);
    write_png(tmp("photos/a/2.png"), 8, 8);
    write_png(tmp("photos/b/1.png"), 8, 8);
    SC_ASSERT(symlink("..", tmp("photos/a/loop")) == 0);
    SC_ASSERT(symlink("../b", tmp("photos/a/alias")) == 0);
    SC_ASSERT(symlink("b", tmp("photos/c")) == 0);            /* a class folder as a link */
    SC_ASSERT(symlink("../a/1.png", tmp("photos/b/link.png")) == 0); /* a file link is fine */
    DatasetConfig c = folder_cfg(tmp("photos"));
    Dataset *ds = NULL;
    CHECK(dataset_open(&ds, &c) == 0, "%s", sc_error());
    if (!ds) return;
    CHECK(dataset_size(ds) == 4 && dataset_num_classes(ds) == 2, "%zu images, %d classes",
          dataset_size(ds), dataset_num_classes(ds));
    int na = 0;
    for (size_t i = 0; i < dataset_size(ds); i++) na += dataset_label(ds, i) == 0;
    CHECK(na == 2, "class a has %d images, want 2", na);
    dataset_close(ds);
}

TEST(folder_fifo_and_device_files_are_skipped_or_fatal) {
    /* finding 8: a FIFO named x.png hung the reader; z.png -> /dev/zero ran out of memory */
    watchdog(60);
    sc_mkdir_p(tmp("special"));
    write_png(tmp("special/ok.png"), 8, 8);
    SC_ASSERT(mkfifo(tmp("special/x.png"), 0644) == 0);
    SC_ASSERT(symlink("/dev/zero", tmp("special/z.png")) == 0);
    DatasetConfig c = folder_cfg(tmp("special"));
    Dataset *ds = NULL;
    CHECK(dataset_open(&ds, &c) == 0 && ds && dataset_size(ds) == 1, "%s", sc_error());
    dataset_close(ds);
    c.strict_images = 1;
    ds = NULL;
    CHECK(dataset_open(&ds, &c) == -1 && has(sc_error(), "special/x.png") &&
              has(sc_error(), "expected a regular file, found a FIFO"), "%s", sc_error());
    dataset_close(ds);
    alarm(0);
}

TEST(empty_folder_is_an_error) {
    /* finding 13: qsort(NULL, 0) on an empty folder (undefined behaviour, UBSan) */
    sc_mkdir_p(tmp("empty"));
    DatasetConfig c = folder_cfg(tmp("empty"));
    Dataset *ds = NULL;
    CHECK(dataset_open(&ds, &c) == -1 && has(sc_error(), "no readable"), "%s", sc_error());
}

/* ---- #9: decompression bombs --------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v; }

/* A PNG signature, an IHDR declaring w x h RGB, an empty IDAT and an IEND: no pixel data. */
static size_t png_header_only(uint8_t *b, uint32_t w, uint32_t h) {
    memcpy(b, "\x89PNG\r\n\x1a\n", 8);
    put32(b + 8, 13);
    memcpy(b + 12, "IHDR", 4);
    put32(b + 16, w);
    put32(b + 20, h);
    b[24] = 8, b[25] = 2, b[26] = 0, b[27] = 0, b[28] = 0;
    put32(b + 29, (uint32_t)crc32(0, b + 12, 17));
    size_t k = 33;
    static const char *const tail[2] = {"IDAT", "IEND"};
    for (int c = 0; c < 2; c++, k += 12) {
        put32(b + k, 0);
        memcpy(b + k + 4, tail[c], 4);
        put32(b + k + 8, (uint32_t)crc32(0, b + k + 4, 4));
    }
    return k;
}

/* A real 8x8 JPEG whose SOF0 then claims w x h. */
static size_t jpeg_claiming(uint8_t **out, int w, int h) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    unsigned char *mem = NULL;
    unsigned long n = 0;
    jpeg_mem_dest(&ci, &mem, &n);
    ci.image_width = 8, ci.image_height = 8, ci.input_components = 3, ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_start_compress(&ci, TRUE);
    uint8_t row[24] = {0};
    JSAMPROW r = row;
    for (int y = 0; y < 8; y++) jpeg_write_scanlines(&ci, &r, 1);
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    for (unsigned long i = 0; i + 8 < n; i++)
        if (mem[i] == 0xFF && mem[i + 1] == 0xC0) { /* SOF0: len(2) precision(1) h(2) w(2) */
            mem[i + 5] = (uint8_t)(h >> 8), mem[i + 6] = (uint8_t)h;
            mem[i + 7] = (uint8_t)(w >> 8), mem[i + 8] = (uint8_t)w;
            break;
        }
    *out = mem;
    return n;
}

TEST(decoded_image_size_is_bounded_before_allocation) {
    /* finding 9: a 4.6 MB PNG of 40000 x 40000 took 4.7 GB; a 673-byte JPEG claiming
     * 30000 x 30000 allocated 2.6 GB before "truncated". Both are refused from the header. */
    uint8_t png[64];
    size_t n = png_header_only(png, 40000, 40000);
    ImageU8 im = {0};
    CHECK(image_decode(png, n, "bomb.png", &im) == -1 && has(sc_error(), "bomb.png") &&
              has(sc_error(), "1600000000 pixels") && has(sc_error(), "--max-image-pixels"),
          "%s", sc_error());
    CHECK(im.cap == 0, "no pixel memory was reserved (%zu bytes)", im.cap);
    uint8_t *jpg;
    n = jpeg_claiming(&jpg, 30000, 30000);
    CHECK(image_decode(jpg, n, "bomb.jpg", &im) == -1 && has(sc_error(), "900000000 pixels"),
          "%s", sc_error());
    CHECK(im.cap == 0, "no pixel memory was reserved (%zu bytes)", im.cap);
    free(jpg);
    /* the limit is a setting: 8x8 = 64 pixels pass a limit of 64 and fail one of 63 */
    n = jpeg_claiming(&jpg, 8, 8);
    image_set_max_pixels(64);
    CHECK(image_decode(jpg, n, "ok.jpg", &im) == 0 && im.w == 8, "%s", sc_error());
    image_set_max_pixels(63);
    CHECK(image_decode(jpg, n, "ok.jpg", &im) == -1 && has(sc_error(), "--max-image-pixels 63"),
          "%s", sc_error());
    image_set_max_pixels(0);
    CHECK(image_max_pixels() == IMAGE_MAX_PIXELS_DEFAULT, "0 restores the default");
    free(jpg);
    image_free(&im);
    /* through the dataset option */
    sc_mkdir_p(tmp("big"));
    write_png(tmp("big/a.png"), 16, 16);
    write_png(tmp("big/b.png"), 8, 8);
    DatasetConfig c = folder_cfg(tmp("big"));
    c.max_image_pixels = 100;
    Dataset *ds = NULL;
    CHECK(dataset_open(&ds, &c) == 0 && ds && dataset_size(ds) == 1, "%s", sc_error());
    dataset_close(ds);
    image_set_max_pixels(0);
}

TEST(idx_gz_header_is_checked_before_the_rest_is_decompressed) {
    /* finding 9: an IDX .gz was decompressed whole (6 GB of zeros) before its header was
     * looked at. Here a header declaring 2x2x2 bytes is followed by 64 MiB of zeros and then a
     * corrupt gzip member: reading it all would end in "cannot decompress"; the reader must
     * stop at the first byte beyond the declared 8. */
    const char *p = tmp("bomb-idx3-ubyte.gz");
    gzFile f = gzopen(p, "wb");
    uint8_t hdr[16] = {0, 0, 8, 3};
    put32(hdr + 4, 2), put32(hdr + 8, 2), put32(hdr + 12, 2);
    gzwrite(f, hdr, 16);
    uint8_t *zeros = calloc(1 << 20, 1);
    for (int i = 0; i < 65; i++) gzwrite(f, zeros, 1 << 20);
    free(zeros);
    gzclose(f);
    FILE *a = fopen(p, "ab");
    fwrite("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage-not-deflate", 1, 29, a);
    fclose(a);
    DatasetConfig c;
    dataset_config_default(&c);
    c.kind = DATASET_IDX, c.path = p;
    Dataset *ds = NULL;
    CHECK(dataset_open(&ds, &c) == -1 && has(sc_error(), "more data than the 8 bytes"), "%s",
          sc_error());
    /* a bad magic is reported from the first 4 bytes */
    f = gzopen(p, "wb");
    uint8_t bad[4] = {'P', 'K', 3, 4};
    gzwrite(f, bad, 4);
    gzclose(f);
    CHECK(dataset_open(&ds, &c) == -1 && has(sc_error(), "bad IDX magic"), "%s", sc_error());
    /* a header claiming far more than the file holds: memory grows only with the data read */
    f = gzopen(p, "wb");
    put32(hdr + 4, 60000), put32(hdr + 8, 65535), put32(hdr + 12, 65535);
    gzwrite(f, hdr, 16);
    gzwrite(f, "abc", 3);
    gzclose(f);
    CHECK(dataset_open(&ds, &c) == -1 && has(sc_error(), "found 3 (truncated)"), "%s", sc_error());
}

/* ---- #5, #6: labels --------------------------------------------------------------------- */

TEST(class_count_is_bounded_and_overflow_free) {
    int K = 0;
    int y1[5] = {1000000, 0, 1, 2, 3}, yte[2] = {0, 1};
    /* finding 5: one huge label made a million classes (> 60 s, or 41 GB for 1e7) */
    CHECK(eval_num_classes(y1, 5, yte, 2, "--test-labels", 0, &K) == -1 &&
              has(sc_error(), "largest label is 1000000 (row 0)") && has(sc_error(), "--num-classes"),
          "%s", sc_error());
    /* finding 6: INT_MAX + 1 overflowed into "need at least 2 classes, got -2147483648" */
    int y2[3] = {INT_MAX, 0, 1};
    CHECK(eval_num_classes(y2, 3, yte, 2, "--test-labels", 0, &K) == -1 &&
              has(sc_error(), "2147483647"), "%s", sc_error());
    /* with --num-classes: labels below it, empty classes allowed */
    int y3[3] = {4, 0, 1};
    CHECK(eval_num_classes(y3, 3, yte, 2, "--test-labels", 5, &K) == 0 && K == 5, "%s", sc_error());
    CHECK(eval_num_classes(y3, 3, yte, 2, "--test-labels", 4, &K) == -1 &&
              has(sc_error(), "not below --num-classes 4"), "%s", sc_error());
    int y4[4] = {0, 1, 2, 1}, yte2[1] = {4};
    CHECK(eval_num_classes(y4, 4, yte, 2, "--test-labels", 0, &K) == 0 && K == 3, "%s", sc_error());
    CHECK(eval_num_classes(y4, 4, yte2, 1, "--test-labels", 0, &K) == -1 &&
              has(sc_error(), "--test-labels: label 4 at row 0 is outside the train classes 0..2"),
          "%s", sc_error());
}

TEST(cleanup) { CHECK(test_tmp_remove() == 0, "rm"); }
