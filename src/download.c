/* download.c - see download.h. */
#define _GNU_SOURCE
#include "download.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static char *fmt(const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0) s = NULL;
    va_end(ap);
    SC_ASSERT(s);
    return s;
}

static long long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* ---- download ----------------------------------------------------------------------------- */

typedef struct {
    FILE *f;
    const char *part;
    int write_errno;
    long long offset;   /* bytes already in the .part when this attempt started */
    int progress, tty;
    int last_decile;
    double t0, last_draw;
} Transfer;

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
    Transfer *t = ud;
    size_t k = fwrite(p, sz, n, t->f);
    if (k != n) t->write_errno = errno ? errno : EIO;
    return k * sz;
}

static void human(char *buf, size_t n, double bytes) {
    const char *u[] = {"B", "kB", "MB", "GB", "TB"};
    int i = 0;
    while (bytes >= 1000 && i < 4) bytes /= 1000, i++;
    snprintf(buf, n, i ? "%.2f %s" : "%.0f %s", bytes, u[i]);
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ut, curl_off_t un) {
    Transfer *t = ud;
    if (!t->progress || dltotal <= 0) return 0;
    double now = sc_now(), total = (double)(t->offset + dltotal), have = (double)(t->offset + dlnow);
    double frac = have / total, rate = dlnow / (now - t->t0 > 1e-3 ? now - t->t0 : 1e-3);
    char a[32], b[32], r[32];
    human(a, sizeof a, have), human(b, sizeof b, total), human(r, sizeof r, rate);
    if (t->tty) {
        if (now - t->last_draw < 0.2 && dlnow < dltotal) return 0;
        t->last_draw = now;
        int w = 30, fill = (int)(frac * w);
        char bar[40];
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = 0;
        double eta = rate > 0 ? (total - have) / rate : 0;
        fprintf(stderr, "\r  [%s] %5.1f%%  %s / %s  %s/s  ETA %dm%02ds ", bar, 100 * frac, a, b, r,
                (int)(eta / 60), (int)eta % 60);
        if (dlnow == dltotal) fputc('\n', stderr);
    } else {
        int dec = (int)(frac * 10);
        if (dec > t->last_decile) {
            t->last_decile = dec;
            fprintf(stderr, "  %3d%%  %s / %s  %s/s\n", dec * 10, a, b, r);
        }
    }
    return 0;
}

/* Content-Length of the URL (HEAD), or -1. */
static long long remote_size(const char *url) {
    CURL *c = curl_easy_init();
    if (!c) return -1;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_off_t len = -1;
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
    }
    curl_easy_cleanup(c);
    return code == 200 ? (long long)len : -1;
}

static const char *http_reason(long code) {
    switch (code) {
    case 401: return " (unauthorized)";
    case 403: return " (forbidden)";
    case 404: return " (not found)";
    case 416: return " (range not satisfiable)";
    case 500: return " (server error)";
    case 503: return " (service unavailable)";
    default: return "";
    }
}

/* One transfer from the current end of the .part. 0 done, 1 retry (cut or range ignored), -1. */
static int attempt(const DownloadOptions *o, const char *part, int *range_ignored) {
    Transfer t = {0};
    t.part = part;
    t.progress = o->progress;
    t.tty = isatty(2);
    t.t0 = t.last_draw = sc_now();
    t.f = fopen(part, *range_ignored ? "wb" : "ab");
    if (!t.f) return sc_error_set("%s: cannot write: %s", part, strerror(errno));
    fseeko(t.f, 0, SEEK_END);
    t.offset = ftello(t.f);
    t.last_decile = -1;
    CURL *c = curl_easy_init();
    if (!c) {
        fclose(t.f);
        return sc_error_set("%s: libcurl could not start", o->url);
    }
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, o->url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1"); /* a local server stays local */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a stalled transfer counts as cut */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "simclr-download/0.1");
    if (t.offset > 0) {
        curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)t.offset);
        fprintf(stderr, "resuming %s at byte %lld\n", part, t.offset);
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    int ok = fflush(t.f) == 0 && fsync(fileno(t.f)) == 0;
    int werr = ok ? 0 : errno;
    if (fclose(t.f) != 0 && ok) ok = 0, werr = errno;
    long long have = file_size(part);
    if (t.write_errno || (rc == CURLE_OK && !ok)) /* a full disk: what was written stays valid */
        return sc_error_set("%s: cannot write: %s (the %lld bytes received are kept: make room and "
                            "run the same command again to resume)", part,
                            strerror(t.write_errno ? t.write_errno : werr), have > 0 ? have : 0);
    switch (rc) {
    case CURLE_OK: return 0;
    case CURLE_RANGE_ERROR: /* the server answered 200 to a Range request: start over */
        fprintf(stderr, "%s: the server ignores HTTP ranges; starting over\n", o->url);
        *range_ignored = 1;
        return 1;
    case CURLE_HTTP_RETURNED_ERROR:
        if (code == 416 && t.offset > 0 && remote_size(o->url) == t.offset) return 0; /* whole */
        if (code == 416)
            return sc_error_set("%s: HTTP 416: %s holds %lld bytes, more than the server's file "
                                "(remove it to start over)", o->url, part, t.offset);
        return sc_error_set("%s: HTTP %ld%s", o->url, code, http_reason(code));
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
        sc_error_set("%s: the connection was cut after %lld bytes (%s)", o->url, have,
                     err[0] ? err : curl_easy_strerror(rc));
        return 1;
    default:
        return sc_error_set("%s: %s", o->url, err[0] ? err : curl_easy_strerror(rc));
    }
}

int download_file(const DownloadOptions *o) {
    static int curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT)) return sc_error_set("libcurl: cannot initialise");
        curl_ready = 1;
    }
    char *part = fmt("%s.part", o->path), *src = fmt("%s.part.src", o->path);
    int rc = -1;
    if (sc_file_exists(part)) {
        char *prev = NULL;
        size_t n = 0;
        if (!sc_file_exists(src) || sc_read_file(src, &prev, &n)) {
            sc_error_set("%s: a partial download of unknown origin (no %s); remove it to start over", part, src);
            goto done;
        }
        while (n && (prev[n - 1] == '\n' || prev[n - 1] == '\r')) prev[--n] = 0;
        int same = !strcmp(prev, o->url);
        if (!same)
            sc_error_set("%s: a partial download of another archive (%s); remove it to start over", part, prev);
        free(prev);
        if (!same) goto done;
    } else {
        char *line = fmt("%s\n", o->url);
        int w = sc_write_file_atomic(src, line, strlen(line));
        free(line);
        if (w) goto done;
    }
    int range_ignored = 0;
    for (int k = 0;; k++) {
        int r = attempt(o, part, &range_ignored);
        if (r < 0) goto done;
        if (r == 0) break;
        if (range_ignored == 1) { /* start over once; a second refusal counts as an attempt */
            range_ignored = 2;
            continue;
        }
        range_ignored = 0;
        if (k >= o->retries) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", sc_error());
            sc_error_set("%s; %s is kept: run the same command again to resume", msg, part);
            goto done;
        }
        fprintf(stderr, "%s; resuming (retry %d of %d)\n", sc_error(), k + 1, o->retries);
    }
    if (rename(part, o->path)) {
        sc_error_set("%s: cannot rename to %s: %s", part, o->path, strerror(errno));
        goto done;
    }
    unlink(src);
    rc = 0;
done:
    if (rc && file_size(part) == 0) unlink(part), unlink(src); /* nothing to resume */
    free(part), free(src);
    return rc;
}

/* ---- checksums ---------------------------------------------------------------------------- */

static void hex(char *out, const unsigned char *d, unsigned n) {
    for (unsigned i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", d[i]);
    out[2 * n] = 0;
}

int file_digests(const char *path, char md5_hex[33], char sha256_hex[65]) {
    FILE *f = fopen(path, "rb");
    if (!f) return sc_error_set("%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *m = EVP_MD_CTX_new(), *s = EVP_MD_CTX_new();
    SC_ASSERT(m && s);
    EVP_DigestInit_ex(m, EVP_md5(), NULL);
    EVP_DigestInit_ex(s, EVP_sha256(), NULL);
    size_t cap = 1 << 20, k;
    unsigned char *buf = sc_alloc(cap);
    while ((k = fread(buf, 1, cap, f)) > 0) {
        if (md5_hex) EVP_DigestUpdate(m, buf, k);
        if (sha256_hex) EVP_DigestUpdate(s, buf, k);
    }
    int err = ferror(f);
    fclose(f);
    free(buf);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n;
    EVP_DigestFinal_ex(m, d, &n);
    if (md5_hex) hex(md5_hex, d, n);
    EVP_DigestFinal_ex(s, d, &n);
    if (sha256_hex) hex(sha256_hex, d, n);
    EVP_MD_CTX_free(m), EVP_MD_CTX_free(s);
    return err ? sc_error_set("%s: read error", path) : 0;
}

/* ---- unpacking ---------------------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) { return remove(p); }

int remove_tree(const char *path) {
    if (!sc_file_exists(path) && !sc_is_dir(path)) return 0;
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A relative path without "..": what the archive may create. */
static int safe_path(const char *p) {
    if (!*p || p[0] == '/') return 0;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') return 0;
        s += n + (e ? 1 : 0);
    }
    return 1;
}

/* 0, UNPACK_WRITE_ERROR (the disk), or -1 (the archive). */
static int write_entry(struct archive *a, const char *archive, const char *dst) {
    char *slash = strrchr(dst, '/');
    if (slash) {
        *slash = 0;
        int r = sc_mkdir_p(dst);
        *slash = '/';
        if (r) return UNPACK_WRITE_ERROR;
    }
    FILE *f = fopen(dst, "wb");
    if (!f) {
        sc_error_set("%s: cannot write: %s", dst, strerror(errno));
        return UNPACK_WRITE_ERROR;
    }
    const void *blk;
    size_t n;
    la_int64_t off, pos = 0;
    int r;
    while ((r = archive_read_data_block(a, &blk, &n, &off)) == ARCHIVE_OK) {
        if (off > pos && fseeko(f, off, SEEK_SET)) break; /* sparse entries */
        if (fwrite(blk, 1, n, f) != n) {
            int e = errno;
            fclose(f);
            sc_error_set("%s: cannot write: %s", dst, strerror(e));
            return UNPACK_WRITE_ERROR;
        }
        pos = off + (la_int64_t)n;
    }
    if (r != ARCHIVE_EOF) {
        fclose(f);
        return sc_error_set("%s: truncated or damaged archive: %s", archive, archive_error_string(a));
    }
    if (fflush(f) || fsync(fileno(f)) || fclose(f)) {
        sc_error_set("%s: cannot write: %s", dst, strerror(errno));
        return UNPACK_WRITE_ERROR;
    }
    return 0;
}

int archive_unpack(const char *archive, const char *dir, const char *name,
                   int (*verify)(const char *folder, void *ud), void *ud) {
    char *tmp = fmt("%s/.%s.unpack-%d", dir, name, (int)getpid()), *final = fmt("%s/%s", dir, name);
    char *inside = fmt("%s/%s", tmp, name), *dst = NULL;
    int rc = -1;
    struct archive *a = archive_read_new();
    SC_ASSERT(a);
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    remove_tree(tmp);
    if (sc_mkdir_p(tmp)) {
        rc = UNPACK_WRITE_ERROR;
        goto done;
    }
    if (archive_read_open_filename(a, archive, 1 << 16) != ARCHIVE_OK) {
        sc_error_set("%s: not a .tar.gz archive: %s", archive, archive_error_string(a));
        goto done;
    }
    struct archive_entry *e;
    int r;
    size_t files = 0;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *p = archive_entry_pathname(e);
        while (p && p[0] == '.' && p[1] == '/') p += 2;
        if (!p || !*p || !strcmp(p, ".")) continue;
        if (!safe_path(p)) {
            sc_error_set("%s: refusing the entry '%s' (absolute or with '..')", archive, p);
            goto done;
        }
        free(dst);
        dst = fmt("%s/%s", tmp, p);
        unsigned type = archive_entry_filetype(e);
        if (type == AE_IFDIR) {
            if (sc_mkdir_p(dst)) {
                rc = UNPACK_WRITE_ERROR;
                goto done;
            }
        } else if (type == AE_IFREG) {
            int w = write_entry(a, archive, dst);
            if (w) {
                rc = w;
                goto done;
            }
            files++;
        } else {
            sc_warn("%s: skipping '%s' (not a regular file or folder)", archive, p);
        }
    }
    if (r != ARCHIVE_EOF) {
        sc_error_set("%s: truncated or damaged archive: %s", archive, archive_error_string(a));
        goto done;
    }
    if (!sc_is_dir(inside)) {
        sc_error_set("%s: expected the folder %s/ in the archive, found %zu files without it", archive, name, files);
        goto done;
    }
    if (verify && verify(inside, ud)) {
        sc_error_prefix("%s: the unpacked files are not a usable copy", archive);
        goto done;
    }
    if (sc_is_dir(final) || sc_file_exists(final)) {
        sc_error_set("%s: already exists; not overwritten", final);
        goto done;
    }
    if (rename(inside, final)) {
        sc_error_set("%s: cannot rename to %s: %s", inside, final, strerror(errno));
        rc = UNPACK_WRITE_ERROR;
        goto done;
    }
    rc = 0;
done:
    archive_read_free(a);
    remove_tree(tmp);
    free(tmp), free(final), free(inside), free(dst);
    return rc;
}
