/* cmd_download.c - `simclr download stl10|cifar10|cifar100 --data DIR`: fetch the published
 * archive (resumable), verify its checksum, unpack it into the layout the readers expect. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dataset.h"
#include "download.h"

SIMCLR_COMMAND(cmd_download, "download", "download and unpack STL-10, CIFAR-10 or CIFAR-100 (checksummed, resumable)")

typedef struct {
    const char *name, *url, *archive, *md5, *folder;
    int kind;
    const char *splits[3];
} Source;

/* The published archives and the md5 sums their authors (and torchvision) give. */
static const Source SOURCES[] = {
    {"stl10", "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz", "stl10_binary.tar.gz",
     "91f7769df0f17e558f3565bffb0c7dfb", "stl10_binary", DATASET_STL10, {"train", "test", "unlabeled"}},
    {"cifar10", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "cifar-10-binary.tar.gz",
     "c32a1d4ab5d03f1284b67883e8d87530", "cifar-10-batches-bin", DATASET_CIFAR10, {"train", "test"}},
    {"cifar100", "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz", "cifar-100-binary.tar.gz",
     "03b5dce01913d631647c71ecec9e9cb8", "cifar-100-binary", DATASET_CIFAR100, {"train", "test"}},
};

/* Opens every split of the unpacked folder with the dataset readers: sizes, labels, headers. */
static int verify_copy(const char *folder, void *ud) {
    const Source *s = ud;
    for (int k = 0; k < 3 && s->splits[k]; k++) {
        DatasetConfig dc;
        dataset_config_default(&dc);
        dc.kind = s->kind, dc.path = folder, dc.split = s->splits[k];
        Dataset *ds;
        if (dataset_open(&ds, &dc)) return -1;
        dataset_close(ds);
    }
    return 0;
}

static int hex_ok(const char *h, size_t n) {
    if (strlen(h) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)h[i])) return 0;
    return 1;
}

int cmd_download(int argc, char **argv) {
    const char *dir = NULL, *url = NULL, *checksum = NULL;
    int retries = 3, keep = 0, quiet = 0;
    Opt own[] = {
        {"data", OPT_STR, &dir, "folder to download into (the dataset lands in DIR/<its folder>, "
         "ready for --data DIR) (required)"},
        {"url", OPT_STR, &url, "download from this URL instead (a mirror); the published checksum "
         "still applies unless --checksum is given"},
        {"checksum", OPT_STR, &checksum, "expected checksum of the archive: sha256:HEX or md5:HEX "
         "(default: the published md5)"},
        {"retries", OPT_INT, &retries, "resume a cut connection this many times", .min = 0, .max = 1000},
        {"keep-archive", OPT_FLAG, &keep, "keep the .tar.gz after unpacking"},
        {"quiet", OPT_FLAG, &quiet, "no progress bar"},
        {0}};
    Opt *tables[] = {own};
    const char *pos[1] = {NULL};
    int npos = 1;
    if (opts_parse("download", "download and unpack a dataset: simclr download stl10|cifar10|cifar100 "
                   "--data DIR", argc, argv, tables, 1, pos, &npos))
        sc_fatal("%s", sc_error());
    if (npos < 1) sc_fatal("download: expected a dataset name (stl10, cifar10 or cifar100)");
    const Source *s = NULL;
    for (size_t i = 0; i < sizeof SOURCES / sizeof *SOURCES; i++)
        if (!strcmp(pos[0], SOURCES[i].name)) s = &SOURCES[i];
    if (!s) sc_fatal("download: expected stl10, cifar10 or cifar100, got '%s'", pos[0]);
    if (!dir) sc_fatal("--data is required (the folder to download into)");
    char algo[8] = "md5", want[65];
    snprintf(want, sizeof want, "%s", s->md5);
    if (checksum) {
        if (!strncmp(checksum, "sha256:", 7) && hex_ok(checksum + 7, 64)) strcpy(algo, "sha256");
        else if (!(!strncmp(checksum, "md5:", 4) && hex_ok(checksum + 4, 32)))
            sc_fatal("--checksum: expected sha256:HEX (64 hex digits) or md5:HEX (32), got '%s'", checksum);
        snprintf(want, sizeof want, "%s", strchr(checksum, ':') + 1);
        for (char *p = want; *p; p++) *p = (char)tolower((unsigned char)*p);
    }
    char final[4096], archive[4096];
    snprintf(final, sizeof final, "%s/%s", dir, s->folder);
    snprintf(archive, sizeof archive, "%s/%s", dir, s->archive);
    if (sc_is_dir(final) || sc_file_exists(final)) {
        if (sc_is_dir(final) && verify_copy(final, (void *)s) == 0)
            sc_fatal("%s: a complete copy is already there; nothing downloaded (remove it to "
                     "download again)", final);
        sc_fatal("%s: exists but is not a complete copy (%s); remove it to download again", final, sc_error());
    }
    if (sc_mkdir_p(dir)) sc_fatal("--data: %s", sc_error());
    if (sc_file_exists(archive)) {
        fprintf(stderr, "%s: already downloaded (kept from an earlier run)\n", archive);
    } else {
        DownloadOptions o = {.url = url ? url : s->url, .path = archive, .retries = retries,
                             .progress = !quiet};
        fprintf(stderr, "downloading %s\n  -> %s\n", o.url, archive);
        if (download_file(&o)) sc_fatal("%s", sc_error());
    }
    char md5[33], sha[65];
    if (file_digests(archive, md5, sha)) sc_fatal("%s", sc_error());
    printf("sha256 %s  %s\nmd5    %s  %s\n", sha, archive, md5, archive);
    const char *got = !strcmp(algo, "md5") ? md5 : sha;
    if (strcmp(got, want)) {
        unlink(archive);
        sc_fatal("%s: checksum mismatch: expected %s %s, got %s (the file was removed)", archive, algo,
                 want, got);
    }
    fprintf(stderr, "%s %s verified; unpacking\n", algo, want);
    int ur = archive_unpack(archive, dir, s->folder, verify_copy, (void *)s);
    if (ur == UNPACK_WRITE_ERROR) /* a full disk: the verified archive is worth keeping */
        sc_fatal("%s (nothing unpacked is left; the verified archive %s is kept: make room and run "
                 "the same command again)", sc_error(), archive);
    if (ur) {
        if (!keep) unlink(archive); /* its bytes are what the checksum says, but unusable */
        sc_fatal("%s%s", sc_error(), keep ? "" : " (the archive was removed)");
    }
    if (!keep) unlink(archive);
    printf("ready: --dataset %s --data %s\n", s->name, dir);
    return 0;
}
