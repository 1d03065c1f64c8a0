/* common.h - errors, memory, time, threads and atomic file output shared by every module.
 *
 * Error convention (all library code): a function that can fail returns int, 0 on success and
 * -1 on failure, after recording a human-readable reason with sc_error_set(). The message names
 * the file or option and what was expected, e.g.
 *     "data/train_X.bin: expected 138240000 bytes (5000 images), found 1000"
 * The CLI prints it with sc_fatal("%s", sc_error()) and exits 1. Library code never exits,
 * except on out-of-memory (sc_alloc) and on broken internal invariants (SC_ASSERT), which stay on
 * in release builds.
 */
#ifndef SIMCLR_COMMON_H
#define SIMCLR_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- errors ---------------------------------------------------------------------------- */
/* Records the reason for the current failure (thread-local); always returns -1. */
int sc_error_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefixes the current message: sc_error_prefix("loading %s", path) -> "loading x: <old>". */
int sc_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *sc_error(void);
/* Prints "simclr: error: <msg>" to stderr and exits with status 1. Messages are always one line:
 * sc_error_set, sc_error_prefix, sc_fatal and sc_warn write control characters of what they
 * quote (a file's contents, an argument) as \xNN. */
void sc_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Prints "simclr: warning: <msg>" to stderr. A warning or note that this process has printed
 * already is not printed again (a dataset opened twice, for training and by the kNN monitor,
 * says its notes once). */
void sc_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "simclr: note: <msg>" to stderr: a fact the user may want, not a problem. */
void sc_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define SC_ASSERT(cond)                                                                         \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "simclr: internal error: %s:%d: assertion '%s' failed\n", __FILE__, \
                    __LINE__, #cond);                                                           \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

/* ---- memory ---------------------------------------------------------------------------- */
/* 64-byte aligned, zero-filled; dies with a clear message when memory runs out. */
void *sc_alloc(size_t bytes);
void sc_free(void *p);
void *sc_xrealloc(void *p, size_t bytes); /* plain realloc that dies on failure */
char *sc_strdup(const char *s);
/* Peak resident set size of this process in bytes (from /proc/self/status VmHWM). */
size_t sc_peak_rss(void);

/* ---- time and threads ------------------------------------------------------------------ */
double sc_now(void); /* monotonic seconds */
/* Sets the number of compute threads (OpenMP and everything built on it). n >= 1. */
void sc_set_threads(int n);
int sc_threads(void);

/* Writes s as a JSON string literal (quotes, backslash and control characters escaped). */
void sc_json_string(FILE *f, const char *s);

/* ---- files ----------------------------------------------------------------------------- */
/* Atomic output: write to "<path>.tmp.<pid>", then sc_atomic_commit fsyncs it, renames it over
 * <path> and fsyncs the directory; sc_atomic_abort removes the temporary. A crash at any moment
 * leaves either the old file or the complete new one. */
typedef struct {
    FILE *f;
    char *path;
    char *tmp;
} AtomicFile;
int sc_atomic_open(AtomicFile *af, const char *path);
int sc_atomic_commit(AtomicFile *af); /* closes; on error the old file is kept */
void sc_atomic_abort(AtomicFile *af);
/* Checks, before any work, that path can be written: creates and removes its temporary file.
 * Fails on a missing or read-only folder and on a path that is a directory. */
int sc_output_check(const char *path);
/* Writes a whole buffer atomically. */
int sc_write_file_atomic(const char *path, const void *data, size_t n);
/* Opens a regular file for reading (never blocks on a FIFO; refuses devices, FIFOs, sockets and
 * folders with a message naming what was found); returns the descriptor and its size, or -1. */
int sc_open_regular(const char *path, size_t *size);
/* Reads a whole regular file into a malloc'ed, NUL-terminated buffer. */
int sc_read_file(const char *path, char **data, size_t *n);
int sc_mkdir_p(const char *path);
int sc_file_exists(const char *path);
int sc_is_dir(const char *path);

/* Read-only memory map of a whole file (for datasets larger than memory). */
typedef struct {
    const uint8_t *data;
    size_t size;
} MappedFile;
int sc_map_file(MappedFile *m, const char *path);
void sc_unmap_file(MappedFile *m);

#endif
