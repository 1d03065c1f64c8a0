/* download.h - fetching and unpacking dataset archives: HTTP(S) through libcurl with resume,
 * checksums (OpenSSL's libcrypto), .tar.gz unpacking (libarchive) into a temporary folder that
 * is renamed into place. Used by `simclr download` (cli/cmd_download.c).
 *
 *     DownloadOptions o = {.url = "http://127.0.0.1:8000/x.tar.gz", .path = "data/x.tar.gz",
 *                          .retries = 3, .progress = 1};
 *     if (download_file(&o)) error(sc_error());      // data/x.tar.gz.part -> data/x.tar.gz
 *     char md5[33], sha[65];
 *     file_digests("data/x.tar.gz", md5, sha);
 *     archive_unpack("data/x.tar.gz", "data", "stl10_binary", NULL, NULL); // -> data/stl10_binary/
 *
 * download_file writes to PATH.part with a sidecar PATH.part.src naming the URL, so that a later
 * call resumes it with an HTTP Range request (and refuses a .part that came from another URL);
 * a connection cut mid-transfer is resumed up to `retries` times in the same call. A server that
 * ignores the Range header (status 200) makes it start over. PATH itself appears only complete
 * (rename). Nothing here checks what the bytes are: the caller verifies the checksum.
 */
#ifndef SIMCLR_DOWNLOAD_H
#define SIMCLR_DOWNLOAD_H

#include <stddef.h>

typedef struct {
    const char *url;
    const char *path;   /* final file; PATH.part and PATH.part.src while downloading */
    int retries;        /* resumes after a cut connection within this call */
    int progress;       /* a progress bar on stderr (a line per 10% when it is not a terminal) */
} DownloadOptions;

/* 0, or -1 with sc_error() naming the URL or file: refused or unreachable, HTTP status >= 400,
 * cut connection after the retries (PATH.part kept for a later resume), write error. */
int download_file(const DownloadOptions *o);

/* Lower-case hex MD5 and SHA-256 of a file (either may be NULL). */
int file_digests(const char *path, char md5_hex[33], char sha256_hex[65]);

/* Unpacks a .tar.gz (or .tar) into DIR/.NAME.unpack-PID/, checks that it holds the folder NAME
 * and that verify(that folder, ud) returns 0 (verify may be NULL), then renames it to DIR/NAME.
 * Only regular files and folders are written; absolute paths and ".." are refused. On error
 * nothing is left behind. Returns 0; UNPACK_WRITE_ERROR when writing failed (a full disk, a
 * read-only folder: the archive itself may be fine); -1 for an archive that is not usable. */
#define UNPACK_WRITE_ERROR (-2)
int archive_unpack(const char *archive, const char *dir, const char *name,
                   int (*verify)(const char *folder, void *ud), void *ud);

/* rm -rf (for temporary folders); 0 or -1. */
int remove_tree(const char *path);

#endif
