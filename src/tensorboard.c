/* tensorboard.c - see tensorboard.h. */
#include "tensorboard.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "common.h"
#include "pbwire.h"

struct TbWriter {
    FILE *f;
    char *path;
    int failed;
};

/* ---- CRC-32C (reflected polynomial 0x82F63B78) -------------------------------------------- */

uint32_t crc32c(uint32_t crc, const void *p, size_t n) {
    static uint32_t table[256];
    static int ready;
    if (!ready) { /* benign race: every thread writes the same values */
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const uint8_t *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ b[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t crc32c_masked(const void *p, size_t n) {
    uint32_t c = crc32c(0, p, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* ---- records ------------------------------------------------------------------------------ */

static void put_u32(uint8_t *d, uint32_t v) {
    for (int i = 0; i < 4; i++) d[i] = (uint8_t)(v >> (8 * i));
}

static int write_record(TbWriter *w, const uint8_t *data, size_t n) {
    uint8_t head[12], tail[4];
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)((uint64_t)n >> (8 * i));
    put_u32(head + 8, crc32c_masked(head, 8));
    put_u32(tail, crc32c_masked(data, n));
    if (fwrite(head, 1, 12, w->f) != 12 || fwrite(data, 1, n, w->f) != n || fwrite(tail, 1, 4, w->f) != 4) {
        w->failed = 1;
        return sc_error_set("%s: cannot write: %s", w->path, strerror(errno));
    }
    return 0;
}

static double wall_time(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + tv.tv_usec * 1e-6;
}

/* Event{wall_time 1, step 2} then the caller's summary */
static size_t event_begin(PbBuf *b, long step) {
    pb_double(b, 1, wall_time());
    pb_int(b, 2, step);
    return pb_begin(b, 5); /* summary */
}

static int event_end(TbWriter *w, PbBuf *b, size_t summary) {
    pb_end(b, summary);
    int rc = write_record(w, b->data, b->n);
    pb_free(b);
    return rc;
}

int tb_scalar(TbWriter *w, const char *tag, long step, double value) {
    PbBuf b = {0};
    size_t s = event_begin(&b, step), v = pb_begin(&b, 1);
    pb_string(&b, 1, tag);
    pb_float(&b, 2, (float)value); /* simple_value */
    pb_end(&b, v);
    return event_end(w, &b, s);
}

int tb_image_png(TbWriter *w, const char *tag, long step, const uint8_t *png, size_t n, int h, int wd, int c) {
    PbBuf b = {0};
    size_t s = event_begin(&b, step), v = pb_begin(&b, 1);
    pb_string(&b, 1, tag);
    size_t im = pb_begin(&b, 4);
    pb_int(&b, 1, h);
    pb_int(&b, 2, wd);
    pb_int(&b, 3, c);
    pb_bytes(&b, 4, png, n);
    pb_end(&b, im);
    pb_end(&b, v);
    return event_end(w, &b, s);
}

/* ---- resume: keep the records of steps <= keep_upto ---------------------------------------- */

static uint64_t get_u64(const uint8_t *d) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | d[i];
    return v;
}

/* The step field (2) of an Event; 0 when absent (proto3 default). -1: not a valid message. */
static long event_step(const uint8_t *p, size_t n) {
    size_t i = 0;
    long step = 0;
    while (i < n) {
        uint64_t key = 0, v = 0;
        for (int sh = 0; i < n; sh += 7) {
            key |= (uint64_t)(p[i] & 0x7f) << sh;
            if (!(p[i++] & 0x80)) break;
        }
        int wt = (int)(key & 7);
        if (wt == PB_VARINT || wt == PB_LEN) {
            for (int sh = 0; i < n; sh += 7) {
                v |= (uint64_t)(p[i] & 0x7f) << sh;
                if (!(p[i++] & 0x80)) break;
            }
            if (wt == PB_VARINT && key >> 3 == 2) step = (long)v;
            if (wt == PB_LEN) i += v;
        } else if (wt == PB_FIXED64) i += 8;
        else if (wt == PB_FIXED32) i += 4;
        else return -1;
    }
    return i == n ? step : -1;
}

/* Bytes of the leading complete, CRC-valid records of steps <= keep_upto. */
static size_t keep_prefix(const uint8_t *d, size_t n, long keep_upto) {
    size_t at = 0;
    while (n - at >= 16) {
        uint64_t len = get_u64(d + at);
        uint32_t hc = (uint32_t)d[at + 8] | (uint32_t)d[at + 9] << 8 | (uint32_t)d[at + 10] << 16 |
                      (uint32_t)d[at + 11] << 24;
        if (hc != crc32c_masked(d + at, 8) || len > n - at - 16) break;
        const uint8_t *data = d + at + 12, *t = data + len;
        uint32_t dc = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
        long step = event_step(data, len);
        if (dc != crc32c_masked(data, len) || step < 0 || step > keep_upto) break;
        at += 16 + len;
    }
    return at;
}

static char *newest_events_file(const char *dir) {
    DIR *dp = opendir(dir);
    if (!dp) return NULL;
    char *best = NULL;
    struct dirent *e;
    while ((e = readdir(dp)))
        if (!strncmp(e->d_name, "events.out.tfevents.", 20) && (!best || strcmp(e->d_name, best) > 0)) {
            free(best);
            best = sc_strdup(e->d_name);
        }
    closedir(dp);
    if (!best) return NULL;
    char *p = sc_xrealloc(NULL, strlen(dir) + strlen(best) + 2);
    sprintf(p, "%s/%s", dir, best);
    free(best);
    return p;
}

int tb_open(TbWriter **out, const char *dir, long keep_upto) {
    *out = NULL;
    if (sc_mkdir_p(dir)) return -1;
    TbWriter *w = calloc(1, sizeof *w);
    SC_ASSERT(w);
    char *old = keep_upto >= 0 ? newest_events_file(dir) : NULL;
    for (char *stale; keep_upto < 0 && (stale = newest_events_file(dir));) { /* a new run */
        int r = unlink(stale);
        free(stale);
        if (r) {
            free(w);
            return sc_error_set("%s: cannot remove an old events file: %s", dir, strerror(errno));
        }
    }
    if (old) {
        char *data;
        size_t n;
        if (sc_read_file(old, &data, &n)) {
            free(old), free(w);
            return -1;
        }
        size_t keep = keep_prefix((const uint8_t *)data, n, keep_upto);
        int rc = keep == n ? 0 : sc_write_file_atomic(old, data, keep);
        free(data);
        if (rc) {
            free(old), free(w);
            return -1;
        }
        w->path = old;
        w->f = fopen(old, "ab");
    } else {
        char host[64] = "localhost";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = 0;
        w->path = sc_xrealloc(NULL, strlen(dir) + 160);
        sprintf(w->path, "%s/events.out.tfevents.%010ld.%s.%d.simclr", dir, (long)wall_time(), host, (int)getpid());
        w->f = fopen(w->path, "wb");
    }
    if (!w->f) {
        sc_error_set("%s: cannot write: %s", w->path, strerror(errno));
        free(w->path), free(w);
        return -1;
    }
    if (!old) { /* the header record */
        PbBuf b = {0};
        pb_double(&b, 1, wall_time());
        pb_string(&b, 3, "brain.Event:2");
        int rc = write_record(w, b.data, b.n);
        pb_free(&b);
        if (rc) {
            tb_close(w);
            return -1;
        }
    }
    *out = w;
    return 0;
}

int tb_flush(TbWriter *w) {
    if (w->failed || fflush(w->f)) return sc_error_set("%s: cannot write: %s", w->path, strerror(errno));
    return 0;
}

const char *tb_path(const TbWriter *w) { return w->path; }

void tb_close(TbWriter *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    free(w->path);
    free(w);
}
