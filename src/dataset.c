/* dataset.c - see dataset.h. One Dataset struct covers every format: images live in up to
 * DS_MAX_CHUNKS "chunks" (memory maps or owned buffers) of fixed-size records, or (folders) in
 * a list of files, decoded at open time to validate them and cached while they fit. */
#include "dataset.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common.h"
#include "npy.h"

#define DS_MAX_CHUNKS 8
#define FOLDER_CACHE_BYTES ((size_t)1 << 30) /* decoded folder images kept in memory up to this */

enum { LAYOUT_STL, LAYOUT_CIFAR, LAYOUT_HWC, LAYOUT_FOLDER };

typedef struct {
    MappedFile map;
    uint8_t *owned;
    const uint8_t *base; /* first record */
    size_t count;        /* records */
} Chunk;

struct Dataset {
    int kind, layout;
    size_t n;
    int h, w, c;
    size_t record;  /* bytes per record */
    size_t pix_off; /* offset of the pixels inside a record */
    Chunk chunk[DS_MAX_CHUNKS];
    int nchunks;
    size_t *index;  /* dataset index -> record index over the chunks (STL folds), or NULL */
    int32_t *labels;
    int num_classes;
    char **class_names;
    int nclass_names;
    /* folder */
    char **files;
    ImageU8 *cache; /* (n) or NULL */
    size_t skipped;
    char **skip_files, **skip_reasons; /* (skipped) unreadable files and why */
    int32_t *skip_labels;
    int *sides; /* folder: shorter side of each image (n) */
    char source[4096]; /* the real path of --data (or the default location) */
    char desc[256];
    char split[32];
};

static const char *kind_name(int k) {
    static const char *names[] = {"stl10", "cifar10", "cifar100", "fashion-mnist", "idx", "folder", "npy"};
    return k >= 0 && k < 7 ? names[k] : "?";
}

/* ---- configuration ------------------------------------------------------------------------ */

void dataset_config_default(DatasetConfig *c) {
    memset(c, 0, sizeof *c);
    c->kind = DATASET_FASHION_MNIST;
    c->fold = -1;
    c->max_image_pixels = IMAGE_MAX_PIXELS_DEFAULT;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = sc_xrealloc(NULL, n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static Dataset *ds_new(int kind, const char *split) {
    Dataset *d = calloc(1, sizeof *d);
    SC_ASSERT(d);
    d->kind = kind;
    snprintf(d->split, sizeof d->split, "%s", split);
    return d;
}

static int map_chunk(Dataset *d, const char *path) {
    SC_ASSERT(d->nchunks < DS_MAX_CHUNKS);
    Chunk *ch = &d->chunk[d->nchunks];
    if (!sc_file_exists(path)) return sc_error_set("%s: file not found", path);
    if (sc_map_file(&ch->map, path)) return -1;
    d->nchunks++;
    ch->base = ch->map.data;
    return 0;
}

static const uint8_t *record_ptr(const Dataset *d, size_t j) {
    for (int k = 0; k < d->nchunks; k++) {
        if (j < d->chunk[k].count) return d->chunk[k].base + j * d->record;
        j -= d->chunk[k].count;
    }
    SC_ASSERT(0);
    return NULL;
}

static int read_names(Dataset *d, const char *path) {
    char *text;
    size_t n;
    if (!sc_file_exists(path) || sc_read_file(path, &text, &n)) return 0; /* optional */
    int cap = 16;
    d->class_names = sc_xrealloc(NULL, sizeof(char *) * cap);
    for (char *s = strtok(text, "\r\n"); s; s = strtok(NULL, "\r\n")) {
        while (*s == ' ') s++;
        if (!*s) continue;
        if (d->nclass_names == cap) d->class_names = sc_xrealloc(d->class_names, sizeof(char *) * (cap *= 2));
        d->class_names[d->nclass_names++] = sc_strdup(s);
    }
    free(text);
    return 0;
}

/* ---- STL-10 ------------------------------------------------------------------------------- */

#define STL_SIDE 96
#define STL_BYTES (3 * STL_SIDE * STL_SIDE)

/* Maps an X file, checks its size, returns the image count. */
static int stl_map_x(Dataset *d, const char *dir, const char *name, size_t *count) {
    char *p = path_join(dir, name);
    int rc = map_chunk(d, p);
    if (rc == 0) {
        Chunk *ch = &d->chunk[d->nchunks - 1];
        if (ch->map.size == 0 || ch->map.size % STL_BYTES != 0)
            rc = sc_error_set("%s: expected a non-zero multiple of %d bytes (3x96x96 images), found %zu",
                              p, STL_BYTES, ch->map.size);
        else ch->count = *count = ch->map.size / STL_BYTES;
    }
    free(p);
    return rc;
}

static int stl_read_y(const char *dir, const char *name, size_t n, int32_t *out) {
    char *p = path_join(dir, name);
    MappedFile m;
    int rc = sc_map_file(&m, p);
    if (rc == 0) {
        if (m.size != n) rc = sc_error_set("%s: expected %zu bytes (one label per image), found %zu", p, n, m.size);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if (m.data[i] < 1 || m.data[i] > 10)
                rc = sc_error_set("%s: label %d at index %zu is out of range 1..10", p, m.data[i], i);
            out[i] = (int32_t)m.data[i] - 1;
        }
        sc_unmap_file(&m);
    }
    free(p);
    return rc;
}

static int open_stl(Dataset *d, const DatasetConfig *cfg, const char *split) {
    if (!cfg->path) return sc_error_set("dataset.path: STL-10 needs the folder holding stl10_binary/");
    char *dir = path_join(cfg->path, "stl10_binary");
    if (!sc_is_dir(dir)) free(dir), dir = sc_strdup(cfg->path);
    int rc = -1;
    d->layout = LAYOUT_STL, d->h = d->w = STL_SIDE, d->c = 3, d->record = STL_BYTES;
    size_t ntrain = 0, nun = 0;
    int train = !strcmp(split, "train"), test = !strcmp(split, "test");
    int unl = !strcmp(split, "unlabeled"), both = !strcmp(split, "train+unlabeled");
    if (!train && !test && !unl && !both) {
        sc_error_set("dataset.split: STL-10 has train, test, unlabeled, train+unlabeled; got '%s'", split);
        goto done;
    }
    if (cfg->fold >= 0 && !train) {
        sc_error_set("dataset.fold: STL-10 folds select from the train split, not '%s'", split);
        goto done;
    }
    if (train || both || test) {
        if (stl_map_x(d, dir, test ? "test_X.bin" : "train_X.bin", &ntrain)) goto done;
        d->labels = sc_xrealloc(NULL, sizeof(int32_t) * ntrain);
        if (stl_read_y(dir, test ? "test_y.bin" : "train_y.bin", ntrain, d->labels)) goto done;
        d->num_classes = 10;
    }
    if (unl || both) {
        if (stl_map_x(d, dir, "unlabeled_X.bin", &nun)) goto done;
        d->labels = sc_xrealloc(d->labels, sizeof(int32_t) * (ntrain + nun));
        for (size_t i = 0; i < nun; i++) d->labels[ntrain + i] = -1;
        if (unl) d->num_classes = 0;
    }
    d->n = ntrain + nun;
    if (unl) free(d->labels), d->labels = NULL;
    if (cfg->fold >= 0) {
        char *fp = path_join(dir, "fold_indices.txt");
        char *text = NULL;
        size_t len = 0, *idx[10] = {0}, cnt[10];
        int nf = sc_read_file(fp, &text, &len) ? -1 : dataset_parse_folds(fp, text, len, ntrain, 10, idx, cnt);
        free(text);
        if (nf >= 0 && cfg->fold >= nf)
            sc_error_set("%s: expected 10 lines of fold indices, fold %d is missing", fp, cfg->fold);
        free(fp);
        if (nf < 0 || cfg->fold >= nf) {
            for (int f = 0; f < nf; f++) free(idx[f]);
            goto done;
        }
        d->index = idx[cfg->fold];
        size_t m = cnt[cfg->fold];
        for (int f = 0; f < nf; f++)
            if (f != cfg->fold) free(idx[f]);
        int32_t *lab = sc_xrealloc(NULL, sizeof(int32_t) * m);
        for (size_t i = 0; i < m; i++) lab[i] = d->labels[d->index[i]];
        free(d->labels);
        d->labels = lab;
        d->n = m;
    }
    char *names = path_join(dir, "class_names.txt");
    read_names(d, names);
    free(names);
    rc = 0;
done:
    free(dir);
    return rc;
}

/* ---- CIFAR-10 and CIFAR-100 -------------------------------------------------------------- */

/* CIFAR-10 records are <label><3072 pixels>, CIFAR-100 records <coarse><fine><3072 pixels>;
 * the pixels are R, G, B planes of 32x32, each row-major. */
static int open_cifar(Dataset *d, const DatasetConfig *cfg, const char *split) {
    int c100 = cfg->kind == DATASET_CIFAR100;
    const char *what = c100 ? "CIFAR-100" : "CIFAR-10", *sub = c100 ? "cifar-100-binary" : "cifar-10-batches-bin";
    if (!cfg->path) return sc_error_set("dataset.path: %s needs the folder holding %s/", what, sub);
    char *dir = path_join(cfg->path, sub);
    if (!sc_is_dir(dir)) free(dir), dir = sc_strdup(cfg->path);
    int rc = -1, train = !strcmp(split, "train");
    if (!train && strcmp(split, "test")) {
        sc_error_set("dataset.split: %s has train and test; got '%s'", what, split);
        goto done;
    }
    int nlab = c100 ? 2 : 1, lab_at = c100 && !cfg->coarse_labels ? 1 : 0;
    int maxl = c100 ? (cfg->coarse_labels ? 19 : 99) : 9;
    d->layout = LAYOUT_CIFAR, d->h = d->w = 32, d->c = 3, d->record = nlab + 3072, d->pix_off = nlab;
    d->num_classes = maxl + 1;
    int nfiles = train && !c100 ? 5 : 1;
    for (int f = 0; f < nfiles; f++) {
        char name[64];
        if (c100) snprintf(name, sizeof name, "%s.bin", split);
        else if (train) snprintf(name, sizeof name, "data_batch_%d.bin", f + 1);
        else snprintf(name, sizeof name, "test_batch.bin");
        char *p = path_join(dir, name);
        if (map_chunk(d, p)) {
            free(p);
            goto done;
        }
        Chunk *ch = &d->chunk[d->nchunks - 1];
        if (ch->map.size == 0 || ch->map.size % d->record) {
            sc_error_set("%s: expected a non-zero multiple of %zu bytes (%s + 3x32x32 records), found %zu",
                         p, d->record, c100 ? "coarse and fine label" : "label", ch->map.size);
            free(p);
            goto done;
        }
        ch->count = ch->map.size / d->record;
        d->labels = sc_xrealloc(d->labels, sizeof(int32_t) * (d->n + ch->count));
        for (size_t i = 0; i < ch->count; i++) {
            for (int k = 0; k < nlab; k++) { /* both label bytes are checked, whichever is used */
                int l = ch->base[i * d->record + k], lim = c100 && k == 0 ? 19 : c100 ? 99 : 9;
                if (l > lim) {
                    sc_error_set("%s: %slabel %d of record %zu is out of range 0..%d", p,
                                 c100 ? (k ? "fine " : "coarse ") : "", l, i, lim);
                    free(p);
                    goto done;
                }
            }
            d->labels[d->n + i] = ch->base[i * d->record + lab_at];
        }
        d->n += ch->count;
        free(p);
    }
    char *names = path_join(dir, !c100 ? "batches.meta.txt"
                                 : cfg->coarse_labels ? "coarse_label_names.txt" : "fine_label_names.txt");
    read_names(d, names);
    free(names);
    rc = 0;
done:
    free(dir);
    return rc;
}

/* ---- IDX ---------------------------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

/* gzread of exactly n bytes (fewer only at the end of the data); -1 with sc_error on a
 * decompression error. */
static long long gz_read_full(gzFile f, const char *path, uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        size_t want = n - got < (1u << 30) ? n - got : (1u << 30);
        int r = gzread(f, buf + got, (unsigned)want);
        if (r < 0) {
            int e;
            return sc_error_set("%s: cannot decompress: %s", path, gzerror(f, &e));
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    /* gzread reports a truncated or corrupt stream only through gzerror */
    int e = Z_OK;
    const char *msg = gzerror(f, &e);
    if (e != Z_OK && e != Z_STREAM_END) return sc_error_set("%s: cannot decompress: %s", path, msg);
    return (long long)got;
}

/* Reads an IDX ubyte file, raw or gzip-compressed (zlib reads both), header first: the magic,
 * the element type and the dimensions are checked before any data is read, the data buffer
 * grows only as data arrives (a header claiming more than the file holds costs no memory), and
 * a file holding more data than its header declares is refused as soon as the first extra byte
 * is seen, without decompressing the rest (a gzip bomb). */
static int idx_read(const char *path, int want_ndim_min, int want_ndim_max, uint32_t *dims,
                    int *ndim, uint8_t **data, size_t *count_out) {
    *data = NULL;
    if (!sc_file_exists(path)) return sc_error_set("%s: file not found", path);
    size_t fsize;
    int fd = sc_open_regular(path, &fsize);
    if (fd < 0) return -1;
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return sc_error_set("%s: cannot open: out of memory", path);
    }
    gzbuffer(f, 1 << 17);
    uint8_t h[4 + 4 * 4];
    int rc = -1;
    uint8_t *buf = NULL;
    long long r = gz_read_full(f, path, h, 4);
    if (r < 0) goto done;
    if (r < 4) {
        sc_error_set("%s: too short for an IDX header (%lld bytes)", path, r);
        goto done;
    }
    if (h[0] != 0 || h[1] != 0) {
        sc_error_set("%s: bad IDX magic %02x %02x %02x %02x (expected 00 00 08 0N)", path, h[0],
                     h[1], h[2], h[3]);
        goto done;
    }
    if (h[2] != 0x08) {
        sc_error_set("%s: IDX element type 0x%02x is not supported (expected 0x08, ubyte)", path, h[2]);
        goto done;
    }
    int nd = h[3];
    if (nd < want_ndim_min || nd > want_ndim_max) {
        sc_error_set("%s: IDX has %d dimensions, expected %d..%d", path, nd, want_ndim_min, want_ndim_max);
        goto done;
    }
    r = gz_read_full(f, path, h + 4, 4 * (size_t)nd);
    if (r < 0) goto done;
    if (r < 4 * nd) {
        sc_error_set("%s: truncated IDX header", path);
        goto done;
    }
    size_t count = 1;
    for (int i = 0; i < nd; i++) {
        dims[i] = be32(h + 4 + 4 * i);
        if (dims[i] == 0) {
            sc_error_set("%s: IDX dimension %d is zero", path, i);
            goto done;
        }
        if (count > ((size_t)1 << 48) / dims[i]) {
            sc_error_set("%s: IDX dimensions %u x ... describe more than 2^48 bytes", path, dims[0]);
            goto done;
        }
        count *= dims[i];
    }
    size_t off = 4 + 4 * (size_t)nd;
    if (gzdirect(f) && fsize - off != count) { /* raw file: its size is known up front */
        sc_error_set("%s: expected %zu data bytes after the header, found %zu%s", path, count,
                     fsize - off, fsize - off < count ? " (truncated)" : "");
        goto done;
    }
    size_t cap = count < ((size_t)1 << 20) ? count : ((size_t)1 << 20), len = 0;
    buf = sc_xrealloc(NULL, cap);
    while (len < count) {
        if (len == cap) buf = sc_xrealloc(buf, cap = cap * 2 < count ? cap * 2 : count);
        size_t want = cap - len;
        r = gz_read_full(f, path, buf + len, want);
        if (r < 0) goto done;
        len += (size_t)r;
        if ((size_t)r < want) break; /* end of the data */
    }
    if (len < count) {
        sc_error_set("%s: expected %zu data bytes after the header, found %zu (truncated)", path,
                     count, len);
        goto done;
    }
    uint8_t extra;
    r = gz_read_full(f, path, &extra, 1);
    if (r < 0) goto done;
    if (r > 0) {
        sc_error_set("%s: more data than the %zu bytes its IDX header declares (the rest was not "
                     "read)", path, count);
        goto done;
    }
    *ndim = nd;
    *data = buf;
    *count_out = count;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    gzclose(f);
    return rc;
}

static char *find_idx_file(const char *dir, const char *base) {
    char *p = path_join(dir, base);
    if (sc_file_exists(p)) return p;
    size_t n = strlen(p) + 4;
    p = sc_xrealloc(p, n);
    strcat(p, ".gz");
    return p; /* may not exist: idx_read reports it */
}

static int open_idx(Dataset *d, const DatasetConfig *cfg, const char *split) {
    const char *root = cfg->path ? cfg->path : (cfg->kind == DATASET_FASHION_MNIST ? FASHION_MNIST_DIR : NULL);
    if (!root) return sc_error_set("dataset.path: idx needs a folder with the IDX files or an image file");
    char *img_path, *lab_path = NULL;
    if (sc_is_dir(root)) {
        int train = !strcmp(split, "train");
        if (!train && strcmp(split, "test"))
            return sc_error_set("dataset.split: %s has train and test; got '%s'", kind_name(cfg->kind), split);
        img_path = find_idx_file(root, train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte");
        lab_path = cfg->labels ? sc_strdup(cfg->labels)
                               : find_idx_file(root, train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte");
    } else {
        img_path = sc_strdup(root);
        lab_path = cfg->labels ? sc_strdup(cfg->labels) : NULL;
    }
    uint8_t *data = NULL, *ldata = NULL;
    size_t n, ln;
    uint32_t dims[4], ldims[4];
    int nd, lnd, rc = -1;
    if (idx_read(img_path, 3, 4, dims, &nd, &data, &n)) goto done;
    if (dims[1] > 65535 || dims[2] > 65535) {
        sc_error_set("%s: IDX images of %ux%u pixels; at most 65535 per side", img_path, dims[1], dims[2]);
        goto done;
    }
    if (nd == 4 && dims[3] != 1 && dims[3] != 3) {
        sc_error_set("%s: expected 1 or 3 channels in the last IDX dimension, found %u", img_path, dims[3]);
        goto done;
    }
    d->layout = LAYOUT_HWC, d->n = dims[0], d->h = (int)dims[1], d->w = (int)dims[2];
    d->c = nd == 4 ? (int)dims[3] : 1;
    d->record = (size_t)d->h * d->w * d->c;
    d->chunk[0].owned = data, d->chunk[0].base = data, d->chunk[0].count = d->n;
    d->nchunks = 1;
    data = NULL;
    if (lab_path) {
        if (idx_read(lab_path, 1, 1, ldims, &lnd, &ldata, &ln)) goto done;
        if (ldims[0] != d->n) {
            sc_error_set("%s: %u labels for %zu images in %s", lab_path, ldims[0], d->n, img_path);
            goto done;
        }
        d->labels = sc_xrealloc(NULL, sizeof(int32_t) * d->n);
        int maxl = 0;
        for (size_t i = 0; i < d->n; i++) {
            d->labels[i] = ldata[i];
            if (d->labels[i] > maxl) maxl = d->labels[i];
        }
        d->num_classes = maxl + 1;
        if (cfg->kind == DATASET_FASHION_MNIST && maxl > 9) {
            sc_error_set("%s: label %d is out of range 0..9", lab_path, maxl);
            goto done;
        }
        if (cfg->kind == DATASET_FASHION_MNIST) {
            static const char *fm[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                       "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
            d->num_classes = 10;
            d->class_names = sc_xrealloc(NULL, sizeof(char *) * 10);
            for (int k = 0; k < 10; k++) d->class_names[k] = sc_strdup(fm[k]);
            d->nclass_names = 10;
        }
    }
    rc = 0;
done:
    free(data);
    free(ldata);
    free(img_path);
    free(lab_path);
    return rc;
}

/* ---- NumPy -------------------------------------------------------------------------------- */

static int open_npy(Dataset *d, const DatasetConfig *cfg) {
    if (!cfg->path) return sc_error_set("dataset.path: npy needs the images file (uint8 N x H x W [x C])");
    NpyArray a;
    if (npy_open(&a, cfg->path)) return -1;
    int rc = -1;
    if (a.dtype != NPY_U8) {
        sc_error_set("%s: expected uint8 images, found dtype %s", cfg->path, npy_dtype_name(a.dtype));
        goto fail;
    }
    if (a.fortran_order) {
        sc_error_set("%s: expected C order, found Fortran order (use np.ascontiguousarray)", cfg->path);
        goto fail;
    }
    if (!(a.ndim == 3 || (a.ndim == 4 && (a.shape[3] == 1 || a.shape[3] == 3)))) {
        sc_error_set("%s: expected shape (N, H, W) or (N, H, W, C) with C 1 or 3, found %d dims%s", cfg->path,
                     a.ndim, a.ndim == 4 ? " with another channel count" : "");
        goto fail;
    }
    if (a.shape[0] < 1 || a.shape[1] < 1 || a.shape[2] < 1) {
        sc_error_set("%s: empty image array", cfg->path);
        goto fail;
    }
    d->layout = LAYOUT_HWC, d->n = (size_t)a.shape[0], d->h = (int)a.shape[1], d->w = (int)a.shape[2];
    d->c = a.ndim == 4 ? (int)a.shape[3] : 1;
    d->record = (size_t)d->h * d->w * d->c;
    d->chunk[0].map = a.map, d->chunk[0].base = a.data, d->chunk[0].count = d->n;
    d->nchunks = 1;
    if (cfg->labels) {
        int64_t *lab, shape[NPY_MAX_DIMS];
        int nd;
        if (npy_load_i64(cfg->labels, &lab, shape, &nd)) return -1;
        if (nd != 1 || (size_t)shape[0] != d->n) {
            free(lab);
            return sc_error_set("%s: expected %zu labels of shape (N,), found %d dims, %lld", cfg->labels,
                                d->n, nd, nd ? (long long)shape[0] : 0);
        }
        d->labels = sc_xrealloc(NULL, sizeof(int32_t) * d->n);
        int maxl = 0;
        for (size_t i = 0; i < d->n; i++) {
            if (lab[i] < 0 || lab[i] > 65535) {
                long long v = lab[i];
                free(lab);
                return sc_error_set("%s: label %lld at index %zu is out of range 0..65535", cfg->labels, v, i);
            }
            d->labels[i] = (int32_t)lab[i];
            if (lab[i] > maxl) maxl = (int)lab[i];
        }
        free(lab);
        d->num_classes = maxl + 1;
    }
    return 0;
fail:
    npy_close(&a);
    return rc;
}

/* ---- image folder ------------------------------------------------------------------------- */

static int has_image_ext(const char *name) {
    const char *e = strrchr(name, '.');
    return e && (!strcasecmp(e, ".png") || !strcasecmp(e, ".jpg") || !strcasecmp(e, ".jpeg"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct {
    char **v;
    size_t n, cap;
} StrList;
static void sl_push(StrList *l, char *s) {
    if (l->n == l->cap) l->v = sc_xrealloc(l->v, sizeof(char *) * (l->cap = l->cap ? 2 * l->cap : 64));
    l->v[l->n++] = s;
}

/* Files (recursive) with an image extension under dir, sorted; subdirectories in *subdirs when
 * non-NULL (first level only, then files directly in dir are listed in *files).
 * Symbolic links to folders are not followed (a link to an ancestor would loop, a link to a
 * sibling class would label its images twice): a warning names each. Links to files are kept.
 * Names with an image extension that are not regular files (FIFOs, devices) are listed anyway,
 * so that reading them fails with a per-file message (skipped, or fatal with --strict-images). */
static int list_dir(const char *dir, StrList *files, StrList *subdirs, int recurse) {
    DIR *dp = opendir(dir);
    if (!dp) return sc_error_set("%s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    StrList local = {0};
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        char *p = path_join(dir, e->d_name);
        struct stat ls;
        if (lstat(p, &ls) == 0 && S_ISLNK(ls.st_mode) && sc_is_dir(p)) {
            sc_warn("%s: a symbolic link to a folder; not followed", p);
            free(p);
            continue;
        }
        if (sc_is_dir(p)) {
            if (subdirs) sl_push(subdirs, sc_strdup(e->d_name));
            else if (recurse) sl_push(&local, p), p = NULL;
        } else if (has_image_ext(e->d_name)) {
            sl_push(files, p);
            p = NULL;
        }
        free(p);
    }
    closedir(dp);
    if (local.n) qsort(local.v, local.n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < local.n; i++) {
        if (list_dir(local.v[i], files, NULL, 1)) return -1;
        free(local.v[i]);
    }
    free(local.v);
    return 0;
}

/* Decodes every file once (validation; cache while it fits). Takes files and labels (may be
 * NULL); unreadable files are skipped and remembered with the reason, or fatal with --strict-images. */
static int folder_decode(Dataset *d, const DatasetConfig *cfg, StrList *files, int32_t *labels) {
    d->files = sc_xrealloc(NULL, sizeof(char *) * (files->n ? files->n : 1));
    d->cache = calloc(files->n ? files->n : 1, sizeof(ImageU8));
    if (labels) d->labels = sc_xrealloc(NULL, sizeof(int32_t) * (files->n ? files->n : 1));
    size_t cached = 0, kept = 0;
    int cache_on = 1;
    for (size_t i = 0; i < files->n; i++) {
        ImageU8 im = {0};
        if (image_read(files->v[i], &im)) {
            if (cfg->strict_images) {
                image_free(&im);
                for (size_t j = i; j < files->n; j++) free(files->v[j]);
                free(files->v), free(labels);
                d->n = kept;
                return sc_error_prefix("dataset.strict_images");
            }
            sc_warn("skipping unreadable image: %s", sc_error());
            size_t s = d->skipped++;
            d->skip_files = sc_xrealloc(d->skip_files, sizeof(char *) * d->skipped);
            d->skip_reasons = sc_xrealloc(d->skip_reasons, sizeof(char *) * d->skipped);
            d->skip_labels = sc_xrealloc(d->skip_labels, sizeof(int32_t) * d->skipped);
            d->skip_files[s] = files->v[i];
            d->skip_reasons[s] = sc_strdup(sc_error());
            d->skip_labels[s] = labels ? labels[i] : -1;
            image_free(&im);
            continue;
        }
        size_t bytes = (size_t)im.h * im.w * im.c;
        int side = im.h < im.w ? im.h : im.w;
        if (cache_on && cached + bytes <= FOLDER_CACHE_BYTES) {
            d->cache[kept] = im;
            cached += bytes;
        } else {
            cache_on = 0;
            image_free(&im);
        }
        if (labels) d->labels[kept] = labels[i];
        d->sides = sc_xrealloc(d->sides, sizeof(int) * (kept + 1));
        d->sides[kept] = side;
        d->files[kept++] = files->v[i];
    }
    free(files->v);
    free(labels);
    d->n = kept;
    if (!cache_on) { /* all or nothing keeps dataset_image simple */
        for (size_t i = 0; i < kept; i++) image_free(&d->cache[i]);
        free(d->cache);
        d->cache = NULL;
    }
    if (d->skipped) sc_warn("%s: %zu of %zu image files were unreadable and skipped", cfg->path, d->skipped, files->n);
    if (d->n == 0) return sc_error_set("%s: no readable PNG/JPEG images found", cfg->path);
    int h0 = d->cache ? d->cache[0].h : 0, w0 = d->cache ? d->cache[0].w : 0;
    int c0 = d->cache ? d->cache[0].c : 0;
    for (size_t i = 0; d->cache && i < d->n; i++) {
        if (d->cache[i].h != h0 || d->cache[i].w != w0) h0 = w0 = 0;
        if (d->cache[i].c != c0) c0 = 0;
    }
    d->h = h0, d->w = w0, d->c = c0;
    return 0;
}

/* One root of a folder dataset (the folder itself, or one of its train/ val/ test/): the
 * non-empty class folders (sorted by name) with their files, or a flat list of unlabeled files. */
typedef struct {
    char *dir;
    StrList files;   /* class by class, each class's files sorted */
    int32_t *cls;    /* (files.n) index into classes, NULL when flat */
    StrList classes; /* non-empty class folder names, sorted */
} FolderRoot;

static void root_free(FolderRoot *r) {
    for (size_t i = 0; i < r->files.n; i++) free(r->files.v[i]);
    for (size_t i = 0; i < r->classes.n; i++) free(r->classes.v[i]);
    free(r->files.v), free(r->classes.v), free(r->cls), free(r->dir);
    memset(r, 0, sizeof *r);
}

static int root_collect(FolderRoot *r) {
    StrList top = {0}, subdirs = {0};
    int rc = list_dir(r->dir, &top, &subdirs, 0);
    if (rc == 0 && subdirs.n == 0) {
        if (top.n) qsort(top.v, top.n, sizeof(char *), cmp_str); /* qsort(NULL, 0) is UB */
        r->files = top;
        free(subdirs.v);
        return 0;
    }
    if (rc == 0 && top.n) sc_warn("%s: %zu image files beside the class folders are ignored", r->dir, top.n);
    for (size_t i = 0; i < top.n; i++) free(top.v[i]);
    free(top.v);
    if (subdirs.n) qsort(subdirs.v, subdirs.n, sizeof(char *), cmp_str);
    size_t cap = 0;
    for (size_t k = 0; rc == 0 && k < subdirs.n; k++) {
        char *sd = path_join(r->dir, subdirs.v[k]);
        StrList sub = {0};
        rc = list_dir(sd, &sub, NULL, 1);
        if (rc == 0 && sub.n == 0) sc_note("%s: empty class folder skipped", sd);
        free(sd);
        if (rc || sub.n == 0) {
            free(sub.v);
            free(subdirs.v[k]);
            continue;
        }
        qsort(sub.v, sub.n, sizeof(char *), cmp_str);
        int c = (int)r->classes.n;
        sl_push(&r->classes, subdirs.v[k]);
        if (r->files.n + sub.n > cap) r->cls = sc_xrealloc(r->cls, sizeof(int32_t) * (cap = 2 * (r->files.n + sub.n)));
        for (size_t i = 0; i < sub.n; i++) r->cls[r->files.n] = c, sl_push(&r->files, sub.v[i]);
        free(sub.v);
    }
    for (size_t k = 0; rc && k < subdirs.n; k++) free(subdirs.v[k]); /* the rest after an error */
    free(subdirs.v);
    if (r->classes.n == 0 && rc == 0) { /* only empty class folders: nothing labeled */
        free(r->cls);
        r->cls = NULL;
    }
    return rc;
}

static const char *const folder_splits[3] = {"train", "val", "test"};

/* Which of train/ val/ test/ a folder holds (has[3]); 1 when it is a split layout: it holds
 * train/ and val/ or test/, and no other subfolder. */
static int folder_layout(const char *path, int has[3]) {
    StrList top = {0}, subdirs = {0};
    has[0] = has[1] = has[2] = 0;
    int other = 0;
    if (list_dir(path, &top, &subdirs, 0)) return -1;
    for (size_t i = 0; i < subdirs.n; i++) {
        int j = 0;
        while (j < 3 && strcmp(subdirs.v[i], folder_splits[j])) j++;
        if (j < 3) has[j] = 1;
        else other = 1;
        free(subdirs.v[i]);
    }
    for (size_t i = 0; i < top.n; i++) free(top.v[i]);
    free(top.v), free(subdirs.v);
    return has[0] && (has[1] || has[2]) && !other;
}

static int find_name(const StrList *l, const char *s) {
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s)) return (int)i;
    return -1;
}

/* Up to 8 names of l that are not in `in`, comma-separated, into buf; returns how many. */
static int missing_names(const StrList *l, const StrList *in, char *buf, size_t n) {
    int cnt = 0;
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (find_name(in, l->v[i]) >= 0) continue;
        if (cnt < 8 && k < n) k += (size_t)snprintf(buf + k, n - k, "%s'%s'", cnt ? ", " : "", l->v[i]);
        cnt++;
    }
    if (cnt > 8 && k < n) snprintf(buf + k, n - k, " and %d more", cnt - 8);
    return cnt;
}

static int open_folder(Dataset *d, const DatasetConfig *cfg, const char *split) {
    if (!cfg->path || !sc_is_dir(cfg->path))
        return sc_error_set("dataset.path: expected a folder of PNG/JPEG images, got '%s'", cfg->path ? cfg->path : "");
    d->layout = LAYOUT_FOLDER;
    int has[3], layout = folder_layout(cfg->path, has);
    if (layout < 0) return -1;
    const char *want = split ? split : layout ? "train" : "all";
    snprintf(d->split, sizeof d->split, "%s", want);
    FolderRoot roots[3] = {{0}};
    int pick[3] = {0}, nroots = 0, rc = -1;
    StrList names = {0}; /* the class names of every split: the union, sorted */
    if (!layout) {
        if (strcmp(want, "all")) {
            if (has[0] && (has[1] || has[2]))
                return sc_error_set("dataset.split: %s holds train/ and %s/ beside other folders, so it is "
                                    "read as one set of classes with the only split 'all' (a folder "
                                    "with splits holds only train/, val/, test/); got '%s'",
                                    cfg->path, has[2] ? "test" : "val", want);
            return sc_error_set("dataset.split: %s has no train/ and test/ (or val/) subfolders, so its "
                                "only split is 'all'; got '%s'", cfg->path, want);
        }
        roots[0].dir = sc_strdup(cfg->path);
        pick[0] = 1, nroots = 1;
        if (root_collect(&roots[0])) goto done;
        for (size_t i = 0; i < roots[0].classes.n; i++) sl_push(&names, sc_strdup(roots[0].classes.v[i]));
    } else {
        int all = !strcmp(want, "all"), found = 0;
        for (int j = 0; j < 3; j++) {
            pick[j] = has[j] && (all || !strcmp(want, folder_splits[j]));
            found |= pick[j];
        }
        if (!found)
            return sc_error_set("dataset.split: %s has the splits %s%s%s and all; got '%s'", cfg->path,
                                has[0] ? "train, " : "", has[1] ? "val, " : "", has[2] ? "test" : "", want);
        nroots = 3;
        for (int j = 0; j < 3; j++) {
            if (!has[j]) continue;
            roots[j].dir = path_join(cfg->path, folder_splits[j]);
            if (root_collect(&roots[j])) goto done;
            for (size_t i = 0; i < roots[j].classes.n; i++)
                if (find_name(&names, roots[j].classes.v[i]) < 0) sl_push(&names, sc_strdup(roots[j].classes.v[i]));
        }
        if (names.n) qsort(names.v, names.n, sizeof(char *), cmp_str);
        char buf[512];
        for (int j = 1; j < 3; j++) { /* a class the training split lacks cannot be learned */
            if (!pick[j] || !roots[0].classes.n || !roots[j].classes.n) continue;
            if (missing_names(&roots[j].classes, &roots[0].classes, buf, sizeof buf)) {
                sc_error_set("%s: class folder(s) %s have no images in %s/train (classes are matched by "
                             "folder name; a class the training split lacks cannot be learned)",
                             roots[j].dir, buf, cfg->path);
                goto done;
            }
        }
    }
    /* a class of the other splits that this split lacks is fine: say so */
    for (int j = 0; j < 3; j++) {
        if (!pick[j] || !roots[j].classes.n) continue;
        char buf[512];
        int miss = missing_names(&names, &roots[j].classes, buf, sizeof buf);
        if (miss) sc_note("%s: no images of class %s (%d of %zu classes)", roots[j].dir, buf, miss, names.n);
    }
    /* the chosen roots, train then val then test, labels as indices into the union */
    StrList files = {0};
    int32_t *labels = NULL;
    int labeled = names.n > 0;
    for (int j = 0; j < nroots; j++) {
        if (!pick[j]) continue;
        size_t before = files.n;
        for (size_t i = 0; i < roots[j].files.n; i++) sl_push(&files, roots[j].files.v[i]);
        if (labeled) labels = sc_xrealloc(labels, sizeof(int32_t) * (files.n ? files.n : 1));
        for (size_t i = 0; labeled && i < roots[j].files.n; i++)
            labels[before + i] = roots[j].cls ? find_name(&names, roots[j].classes.v[roots[j].cls[i]]) : -1;
        free(roots[j].files.v);
        roots[j].files = (StrList){0};
    }
    if (labeled) {
        d->class_names = names.v;
        d->nclass_names = d->num_classes = (int)names.n;
        names = (StrList){0};
    }
    rc = folder_decode(d, cfg, &files, labels);
done:
    for (int j = 0; j < 3; j++) root_free(&roots[j]);
    for (size_t i = 0; i < names.n; i++) free(names.v[i]);
    free(names.v);
    return rc;
}

/* ---- public ------------------------------------------------------------------------------- */

/* The error of a failed open under the default --dataset, when --data points elsewhere: name the
 * format that was tried and how to choose another. */
static void default_kind_hint(const DatasetConfig *cfg) {
    const char *p = cfg->path, *e = p ? strrchr(p, '.') : NULL;
    const char *guess = "";
    if (p && sc_is_dir(p)) {
        StrList files = {0}, subdirs = {0};
        if (list_dir(p, &files, &subdirs, 0) == 0 && (files.n || subdirs.n))
            guess = files.n ? " (it holds image files: dataset.kind folder)"
                            : " (it holds subfolders: dataset.kind folder for folders of images)";
        for (size_t i = 0; i < files.n; i++) free(files.v[i]);
        for (size_t i = 0; i < subdirs.n; i++) free(subdirs.v[i]);
        free(files.v), free(subdirs.v);
    } else if (e && !strcasecmp(e, ".npy"))
        guess = " (a .npy file: dataset.kind npy)";
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", sc_error());
    sc_error_set("dataset.path %s: read as Fashion-MNIST, the default dataset.kind; choose the format with "
                 "dataset.kind " DATASET_CHOICES "%s. (%s)", p, guess, msg);
}

static void describe(Dataset *d) {
    char shape[64];
    if (d->h && d->c) snprintf(shape, sizeof shape, "%dx%dx%d", d->h, d->w, d->c);
    else if (d->h) snprintf(shape, sizeof shape, "%dx%d, gray and colour", d->h, d->w);
    else snprintf(shape, sizeof shape, "various sizes");
    snprintf(d->desc, sizeof d->desc, "%s %s (%zu images, %s, %d classes%s)", kind_name(d->kind),
             d->split, d->n, shape, d->num_classes, d->skipped ? ", some files skipped" : "");
}

int dataset_open(Dataset **out, const DatasetConfig *cfg) {
    *out = NULL;
    const char *split = cfg->split ? cfg->split : (cfg->kind == DATASET_FOLDER ? NULL : "train");
    if (cfg->kind == DATASET_NPY) split = "file";
    if (cfg->fold >= 0 && cfg->kind != DATASET_STL10)
        return sc_error_set("dataset.fold: only STL-10 has predefined folds");
    Dataset *d = ds_new(cfg->kind, split ? split : "all");
    image_set_max_pixels(cfg->max_image_pixels > 0 ? (size_t)cfg->max_image_pixels
                                                   : IMAGE_MAX_PIXELS_DEFAULT);
    int rc;
    switch (cfg->kind) {
    case DATASET_STL10: rc = open_stl(d, cfg, split); break;
    case DATASET_CIFAR10:
    case DATASET_CIFAR100: rc = open_cifar(d, cfg, split); break;
    case DATASET_FASHION_MNIST:
    case DATASET_IDX: rc = open_idx(d, cfg, split); break;
    case DATASET_FOLDER: rc = open_folder(d, cfg, split); break;
    case DATASET_NPY: rc = open_npy(d, cfg); break;
    default: rc = sc_error_set("dataset.kind: unknown kind %d", cfg->kind);
    }
    if (rc == 0 && d->n == 0) rc = sc_error_set("%s: the dataset is empty", cfg->path ? cfg->path : "dataset.path");
    if (rc) {
        if (cfg->kind == DATASET_FASHION_MNIST && cfg->path) default_kind_hint(cfg);
        dataset_close(d);
        return -1;
    }
    const char *src = cfg->path ? cfg->path : cfg->kind == DATASET_FASHION_MNIST ? FASHION_MNIST_DIR : "";
    if (!realpath(src, d->source)) snprintf(d->source, sizeof d->source, "%s", src);
    describe(d);
    *out = d;
    return 0;
}

const char *dataset_default_split(const DatasetConfig *cfg, int test) {
    switch (cfg->kind) {
    case DATASET_NPY: return "file";
    case DATASET_FOLDER: {
        int has[3] = {0};
        if (!cfg->path || folder_layout(cfg->path, has) != 1) return "all";
        return !test ? "train" : has[2] ? "test" : "val";
    }
    default: return test ? "test" : "train";
    }
}

static int cmp_int(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

int dataset_typical_side(const Dataset *d) {
    if (!d->sides || !d->n) return d->h < d->w ? d->h : d->w;
    int *s = sc_xrealloc(NULL, sizeof(int) * d->n);
    memcpy(s, d->sides, sizeof(int) * d->n);
    qsort(s, d->n, sizeof(int), cmp_int);
    int m = s[d->n / 2];
    free(s);
    return m;
}

void dataset_warn_image_size(const Dataset *d, int S) {
    int t = dataset_typical_side(d);
    if (t > 0 && S > t)
        sc_warn("dataset.image_size %d is larger than %s images (%s %d px): every view is upsampled, which "
                "costs compute and adds no detail; dataset.image_size %d matches the data", S,
                d->sides ? "most" : "the", d->sides ? "median shorter side" : "side", t, t);
}

const char *dataset_split(const Dataset *d) { return d->split; }
const char *dataset_source(const Dataset *d) { return d->source; }

int dataset_same_images(const Dataset *a, const Dataset *b) {
    if (a->kind != b->kind || strcmp(a->source, b->source)) return 0;
    if (!strcmp(a->split, b->split)) return a->n == b->n;
    /* a split and the union that contains it share images */
    return !strcmp(a->split, "all") || !strcmp(b->split, "all") || !strcmp(a->split, "train+unlabeled") ||
           !strcmp(b->split, "train+unlabeled");
}

const char *dataset_file(const Dataset *d, size_t i) {
    return d->files && i < d->n ? d->files[i] : NULL;
}

const char *dataset_skipped_file(const Dataset *d, size_t k, const char **reason, int *label) {
    if (k >= d->skipped || !d->skip_files) return NULL;
    if (reason) *reason = d->skip_reasons[k];
    if (label) *label = d->skip_labels[k];
    return d->skip_files[k];
}

int dataset_align_classes(Dataset *d, const Dataset *ref, const char *what) {
    if (!d->labels || !ref->num_classes) return 0;
    if (!d->nclass_names || !ref->nclass_names) {
        if (d->num_classes > ref->num_classes)
            return sc_error_set("%s: %d classes, but the training data has %d", what, d->num_classes,
                                ref->num_classes);
        d->num_classes = ref->num_classes;
        return 0;
    }
    int *map = sc_xrealloc(NULL, sizeof(int) * d->nclass_names);
    int *seen = calloc((size_t)ref->nclass_names, sizeof(int));
    for (int k = 0; k < d->nclass_names; k++) {
        map[k] = -1;
        for (int j = 0; j < ref->nclass_names; j++)
            if (!strcmp(d->class_names[k], ref->class_names[j])) map[k] = j;
    }
    for (size_t i = 0; i < d->n; i++) {
        int l = d->labels[i];
        if (l < 0) continue;
        if (l >= d->nclass_names || map[l] < 0) {
            int rc = sc_error_set("%s: class '%s' (%s) is not among the %d training classes "
                                  "(classes are matched by name)", what,
                                  l < d->nclass_names ? d->class_names[l] : "?",
                                  d->files ? d->files[i] : d->desc, ref->nclass_names);
            free(map), free(seen);
            return rc;
        }
        d->labels[i] = map[l];
        seen[map[l]] = 1;
    }
    char buf[512];
    size_t k = 0;
    int miss = 0;
    buf[0] = 0;
    for (int j = 0; j < ref->nclass_names; j++) {
        if (seen[j]) continue;
        if (miss < 8 && k < sizeof buf)
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s'%s'", miss ? ", " : "", ref->class_names[j]);
        miss++;
    }
    if (miss) sc_note("%s: no images of class %s%s (%d of %d training classes)", what, buf,
                      miss > 8 ? " and more" : "", miss, ref->nclass_names);
    for (int j = 0; j < d->nclass_names; j++) free(d->class_names[j]);
    d->class_names = sc_xrealloc(d->class_names, sizeof(char *) * ref->nclass_names);
    for (int j = 0; j < ref->nclass_names; j++) d->class_names[j] = sc_strdup(ref->class_names[j]);
    d->nclass_names = d->num_classes = ref->nclass_names;
    describe(d);
    free(map), free(seen);
    return 0;
}

void dataset_close(Dataset *d) {
    if (!d) return;
    for (int k = 0; k < d->nchunks; k++) {
        sc_unmap_file(&d->chunk[k].map);
        free(d->chunk[k].owned);
    }
    if (d->cache)
        for (size_t i = 0; i < d->n; i++) image_free(&d->cache[i]);
    free(d->cache);
    if (d->files)
        for (size_t i = 0; i < d->n; i++) free(d->files[i]);
    free(d->files);
    for (size_t k = 0; k < d->skipped && d->skip_files; k++) free(d->skip_files[k]), free(d->skip_reasons[k]);
    free(d->skip_files), free(d->skip_reasons), free(d->skip_labels), free(d->sides);
    for (int k = 0; k < d->nclass_names; k++) free(d->class_names[k]);
    free(d->class_names);
    free(d->index);
    free(d->labels);
    free(d);
}

int dataset_select(Dataset *d, const size_t *idx, size_t n) {
    if (n == 0) return sc_error_set("dataset: selecting no image");
    for (size_t i = 0; i < n; i++)
        if (idx[i] >= d->n)
            return sc_error_set("dataset: selected index %zu out of range (size %zu)", idx[i], d->n);
    int32_t *lab = d->labels ? sc_xrealloc(NULL, sizeof(int32_t) * n) : NULL;
    for (size_t i = 0; i < n; i++)
        if (lab) lab[i] = d->labels[idx[i]];
    if (d->layout == LAYOUT_FOLDER) { /* the file list (and cache) in the selected order */
        char **files = sc_xrealloc(NULL, sizeof(char *) * n);
        ImageU8 *cache = d->cache ? calloc(n, sizeof(ImageU8)) : NULL;
        for (size_t i = 0; i < n; i++) {
            files[i] = sc_strdup(d->files[idx[i]]);
            if (cache) {
                const ImageU8 *c = &d->cache[idx[i]];
                size_t bytes = (size_t)c->h * c->w * c->c;
                memcpy(image_reserve(&cache[i], bytes), c->px, bytes);
                cache[i].h = c->h, cache[i].w = c->w, cache[i].c = c->c;
            }
        }
        for (size_t i = 0; i < d->n; i++) {
            free(d->files[i]);
            if (d->cache) image_free(&d->cache[i]);
        }
        free(d->files);
        free(d->cache);
        d->files = files;
        d->cache = cache;
    } else { /* compose with the existing record index */
        size_t *index = sc_xrealloc(NULL, sizeof(size_t) * n);
        for (size_t i = 0; i < n; i++) index[i] = d->index ? d->index[idx[i]] : idx[i];
        free(d->index);
        d->index = index;
    }
    free(d->labels);
    d->labels = lab;
    d->n = n;
    size_t len = strlen(d->desc);
    snprintf(d->desc + len, sizeof d->desc - len, ", %zu selected", n);
    return 0;
}

size_t dataset_size(const Dataset *d) { return d->n; }
int dataset_num_classes(const Dataset *d) { return d->num_classes; }
int dataset_label(const Dataset *d, size_t i) { return d->labels && i < d->n ? d->labels[i] : -1; }
const int32_t *dataset_labels(const Dataset *d) { return d->labels; }
size_t dataset_skipped(const Dataset *d) { return d->skipped; }
const char *dataset_describe(const Dataset *d) { return d->desc; }
void dataset_image_size(const Dataset *d, int *h, int *w) { *h = d->h, *w = d->w; }
const char *dataset_class_name(const Dataset *d, int k) {
    return k >= 0 && k < d->nclass_names ? d->class_names[k] : NULL;
}

int dataset_image(const Dataset *d, size_t i, ImageU8 *out) {
    if (i >= d->n) return sc_error_set("dataset: image index %zu out of range (size %zu)", i, d->n);
    if (d->layout == LAYOUT_FOLDER) {
        if (d->cache) {
            out->px = d->cache[i].px, out->h = d->cache[i].h, out->w = d->cache[i].w, out->c = d->cache[i].c;
            return 0;
        }
        return image_read(d->files[i], out);
    }
    size_t j = d->index ? d->index[i] : i;
    const uint8_t *rec = record_ptr(d, j) + d->pix_off;
    out->h = d->h, out->w = d->w, out->c = d->c;
    if (d->layout == LAYOUT_HWC) {
        out->px = (uint8_t *)rec; /* read-only view into the map */
        return 0;
    }
    int h = d->h, w = d->w, plane = h * w;
    uint8_t *px = image_reserve(out, (size_t)plane * 3);
    if (d->layout == LAYOUT_STL) {
        /* channel-planar, column-major: byte c*H*W + x*H + y is pixel (y, x) of channel c */
        for (int c = 0; c < 3; c++)
            for (int x = 0; x < w; x++) {
                const uint8_t *col = rec + (size_t)c * plane + (size_t)x * h;
                for (int y = 0; y < h; y++) px[((size_t)y * w + x) * 3 + c] = col[y];
            }
    } else { /* CIFAR: channel-planar, row-major */
        for (int p = 0; p < plane; p++) {
            px[3 * p] = rec[p], px[3 * p + 1] = rec[plane + p], px[3 * p + 2] = rec[2 * plane + p];
        }
    }
    return 0;
}

int dataset_parse_folds(const char *what, const char *text, size_t len, size_t n_train,
                        int max_folds, size_t **idx, size_t *count) {
    int nf = 0, line = 1;
    const char *p = text, *end = text + len;
    while (p < end) {
        size_t cap = 0, m = 0, *v = NULL;
        for (;;) { /* the indices of one line */
            while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
            if (p >= end || *p == '\n') break;
            const char *s = p;
            size_t x = 0;
            int ok = 1;
            for (; p < end && *p >= '0' && *p <= '9'; p++) {
                x = x * 10 + (size_t)(*p - '0');
                if (x >= n_train) ok = 0; /* also keeps x from overflowing */
            }
            if (p == s || (p < end && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')) ok = 0;
            if (!ok) {
                int k = 0;
                while (s + k < end && k < 12 && s[k] != ' ' && s[k] != '\n') k++;
                free(v);
                for (int f = 0; f < nf; f++) free(idx[f]), idx[f] = NULL;
                if (n_train == 0) return sc_error_set("%s: line %d: no train images to index", what, line);
                return sc_error_set("%s: line %d: expected indices 0..%zu, found '%.*s'", what, line,
                                    n_train - 1, k, s);
            }
            if (m == cap) v = sc_xrealloc(v, sizeof(size_t) * (cap = cap ? 2 * cap : 1024));
            v[m++] = x;
        }
        if (m) {
            if (nf == max_folds) {
                free(v);
                for (int f = 0; f < nf; f++) free(idx[f]), idx[f] = NULL;
                return sc_error_set("%s: line %d: more than %d folds", what, line, max_folds);
            }
            idx[nf] = v, count[nf++] = m;
        }
        if (p < end) p++, line++; /* past the newline */
    }
    if (nf == 0) return sc_error_set("%s: no folds found (expected lines of train indices)", what);
    return nf;
}

int dataset_channel_stats(const Dataset *d, size_t max_images, float mean[3], float std[3]) {
    size_t m = max_images == 0 || max_images > d->n ? d->n : max_images;
    double s[3] = {0}, s2[3] = {0}, cnt = 0;
    ImageU8 im = {0};
    for (size_t k = 0; k < m; k++) {
        size_t i = (size_t)((double)k * d->n / m);
        if (dataset_image(d, i, &im)) {
            image_free(&im);
            return -1;
        }
        size_t np = (size_t)im.h * im.w;
        for (int c = 0; c < 3; c++) {
            int cc = im.c == 1 ? 0 : c;
            uint64_t a = 0, a2 = 0; /* exact integer sums per image */
            for (size_t p = 0; p < np; p++) {
                unsigned v = im.px[p * im.c + cc];
                a += v, a2 += v * v;
            }
            s[c] += a / 255.0, s2[c] += a2 / (255.0 * 255.0);
        }
        cnt += (double)np;
    }
    image_free(&im);
    for (int c = 0; c < 3; c++) {
        double mu = s[c] / cnt, var = s2[c] / cnt - mu * mu;
        mean[c] = (float)mu;
        std[c] = (float)sqrt(var > 0 ? var : 0);
        if (std[c] < 1e-6f) std[c] = 1.0f; /* a constant channel: do not divide by zero */
    }
    return 0;
}
