/* common.c - see common.h. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char err_buf[2048];

/* Messages quote file contents and arguments, which may hold anything: control characters are
 * written as \xNN, so every message stays on one line (and cannot move the cursor). */
static void one_line(char *dst, size_t cap, const char *src) {
    size_t k = 0;
    for (; *src && k + 1 < cap; src++) {
        unsigned char c = (unsigned char)*src;
        if (c >= 0x20 && c != 0x7F) dst[k++] = (char)c;
        else if (k + 5 < cap) k += (size_t)snprintf(dst + k, cap - k, "\\x%02x", c);
        else break;
    }
    dst[k] = 0;
}

static void vformat_line(char *dst, size_t cap, const char *fmt, va_list ap) {
    char raw[2048];
    vsnprintf(raw, sizeof raw, fmt, ap);
    one_line(dst, cap, raw);
}

int sc_error_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vformat_line(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return -1;
}

int sc_error_prefix(const char *fmt, ...) {
    char pre[1024], old[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vformat_line(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof old);
    snprintf(err_buf, sizeof err_buf, "%s: %s", pre, old);
    return -1;
}

const char *sc_error(void) { return err_buf[0] ? err_buf : "unknown error"; }

/* "simclr: <kind>: <message>" on stderr, the message on one line */
static void say(const char *kind, const char *fmt, va_list ap) {
    char msg[4096];
    vformat_line(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "simclr: %s: %s\n", kind, msg);
}

void sc_fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    say("error", fmt, ap);
    va_end(ap);
    exit(1);
}

/* say() for warnings and notes, each distinct line once per process (FNV-1a hashes of the
 * lines printed; past SAID_MAX of them everything is printed). */
#define SAID_MAX 512
static void say_once(const char *kind, const char *fmt, va_list ap) {
    static uint64_t said[SAID_MAX];
    static int nsaid;
    char msg[4096];
    vformat_line(msg, sizeof msg, fmt, ap);
    uint64_t h = 1469598103934665603ull;
    for (const char *p = kind; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (const char *p = msg; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    int seen = 0;
#pragma omp critical(sc_say_once)
    {
        for (int i = 0; i < nsaid && !seen; i++) seen = said[i] == h;
        if (!seen && nsaid < SAID_MAX) said[nsaid++] = h;
    }
    if (!seen) fprintf(stderr, "simclr: %s: %s\n", kind, msg);
}

void sc_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    say_once("warning", fmt, ap);
    va_end(ap);
}

void sc_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    say_once("note", fmt, ap);
    va_end(ap);
}

void *sc_alloc(size_t bytes) {
    void *p = NULL;
    size_t n = (bytes + 63) & ~(size_t)63;
    if (n == 0) n = 64;
    if (posix_memalign(&p, 64, n) != 0 || !p)
        sc_fatal("out of memory allocating %zu bytes", bytes);
    memset(p, 0, n);
    return p;
}

void sc_free(void *p) { free(p); }

void *sc_xrealloc(void *p, size_t bytes) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) sc_fatal("out of memory allocating %zu bytes", bytes);
    return q;
}

char *sc_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = sc_xrealloc(NULL, n);
    memcpy(d, s, n);
    return d;
}

size_t sc_peak_rss(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %zu kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

double sc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void sc_set_threads(int n) {
    if (n < 1) n = 1;
    omp_set_num_threads(n);
}

int sc_threads(void) { return omp_get_max_threads(); }

int sc_atomic_open(AtomicFile *af, const char *path) {
    memset(af, 0, sizeof *af);
    af->path = sc_strdup(path);
    size_t n = strlen(path) + 32;
    af->tmp = sc_xrealloc(NULL, n);
    snprintf(af->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        int e = errno;
        free(af->path);
        free(af->tmp);
        memset(af, 0, sizeof *af);
        return sc_error_set("%s: cannot create temporary file: %s", path, strerror(e));
    }
    return 0;
}

static void fsync_dir_of(const char *path) {
    char *copy = sc_strdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int sc_atomic_commit(AtomicFile *af) {
    int rc = 0;
    if (fflush(af->f) != 0 || ferror(af->f) || fsync(fileno(af->f)) != 0)
        rc = sc_error_set("%s: write failed: %s", af->path, strerror(errno));
    if (fclose(af->f) != 0 && rc == 0) rc = sc_error_set("%s: close failed: %s", af->path, strerror(errno));
    af->f = NULL;
    if (rc == 0 && rename(af->tmp, af->path) != 0)
        rc = sc_error_set("%s: rename failed: %s", af->path, strerror(errno));
    if (rc != 0) unlink(af->tmp);
    else fsync_dir_of(af->path);
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
    return rc;
}

void sc_atomic_abort(AtomicFile *af) {
    if (af->f) fclose(af->f);
    if (af->tmp) unlink(af->tmp);
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
}

int sc_output_check(const char *path) {
    if (sc_is_dir(path)) return sc_error_set("%s: is a folder, expected a file name", path);
    AtomicFile af;
    if (sc_atomic_open(&af, path)) return -1;
    sc_atomic_abort(&af);
    return 0;
}

int sc_write_file_atomic(const char *path, const void *data, size_t n) {
    AtomicFile af;
    if (sc_atomic_open(&af, path)) return -1;
    if (n && fwrite(data, 1, n, af.f) != n) {
        int e = errno;
        sc_atomic_abort(&af);
        return sc_error_set("%s: write failed: %s", path, strerror(e));
    }
    return sc_atomic_commit(&af);
}

/* What a non-regular file is, for messages. */
static const char *file_kind(mode_t m) {
    return S_ISDIR(m) ? "a folder" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device"
           : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

int sc_open_regular(const char *path, size_t *size) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return sc_error_set("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sc_error_set("%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sc_error_set("%s: expected a regular file, found %s", path, file_kind(st.st_mode));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (size) *size = (size_t)st.st_size;
    return fd;
}

int sc_read_file(const char *path, char **data, size_t *n) {
    size_t size;
    int fd = sc_open_regular(path, &size);
    if (fd < 0) return -1;
    size_t cap = size + 1, len = 0;
    char *buf = sc_xrealloc(NULL, cap);
    for (;;) {
        if (cap - len - 1 == 0) buf = sc_xrealloc(buf, cap *= 2); /* the file grew */
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return sc_error_set("%s: read error: %s", path, strerror(e));
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = 0;
    *data = buf;
    if (n) *n = len;
    return 0;
}

int sc_mkdir_p(const char *path) {
    char *p = sc_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            return sc_error_set("%s: cannot create directory: %s", path, strerror(e));
        }
        *s = '/';
    }
    int rc = 0;
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        rc = sc_error_set("%s: cannot create directory: %s", path, strerror(errno));
    else if (!sc_is_dir(p))
        rc = sc_error_set("%s: exists and is not a directory", path);
    free(p);
    return rc;
}

int sc_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int sc_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int sc_map_file(MappedFile *m, const char *path) {
    memset(m, 0, sizeof *m);
    int fd = sc_open_regular(path, &m->size);
    if (fd < 0) return -1;
    if (m->size > 0) {
        void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return sc_error_set("%s: mmap failed: %s", path, strerror(errno));
        }
        m->data = p;
    }
    close(fd);
    return 0;
}

void sc_unmap_file(MappedFile *m) {
    if (m->data) munmap((void *)m->data, m->size);
    memset(m, 0, sizeof *m);
}

void sc_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}
