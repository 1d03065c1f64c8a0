/* safetensors.h - the safetensors weight format (huggingface/safetensors), written atomically and
 * read by memory map with full validation.
 *
 * Format: u64 little-endian N | N bytes of JSON header | byte buffer to the end of the file.
 * Header: {"__metadata__":{"k":"v",...}, "NAME":{"dtype":"F32","shape":[..],"data_offsets":[b,e]}}
 * with offsets relative to the buffer. Every rule of the reference reader is checked: header
 * length <= 100,000,000 and inside the file, strict JSON (UTF-8, no duplicate keys), known
 * dtypes, e - b == prod(shape) * dtype size (overflow-checked), tensors tiling the buffer from 0
 * with no gap or overlap, and the buffer ending exactly at the end of the file.
 *
 *     StTensorOut t[] = {{"conv1.weight", ST_F32, 4, {64, 3, 7, 7}, w},
 *                        {"bn1.num_batches_tracked", ST_I64, 0, {0}, &nbt}};
 *     StMeta meta[] = {{"step", "1200"}};
 *     if (safetensors_write("last.safetensors", t, 2, meta, 1)) sc_fatal("%s", sc_error());
 *
 *     SafeTensors *st;
 *     if (safetensors_open(&st, "last.safetensors")) sc_fatal("%s", sc_error());
 *     const StTensor *w = safetensors_find(st, "conv1.weight");      // NULL when absent
 *     int64_t shape[4] = {64, 3, 7, 7};
 *     if (safetensors_read(st, "conv1.weight", ST_F32, 4, shape, dst)) ...  // checked copy
 *     const char *step = safetensors_meta(st, "step");
 *     safetensors_close(st);
 *
 * The writer produces the bytes huggingface's writer produces: tensors sorted by dtype (in
 * the reference's enum order, descending) then name, compact JSON with __metadata__ first,
 * header padded with spaces to a multiple of 8. Data is little-endian (this code assumes a
 * little-endian host, asserted at run time).
 */
#ifndef SIMCLR_SAFETENSORS_H
#define SIMCLR_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* In the reference implementation's enum order. */
typedef enum {
    ST_BOOL, ST_U8, ST_I8, ST_F8_E5M2, ST_F8_E4M3, ST_I16, ST_U16, ST_F16, ST_BF16, ST_I32,
    ST_U32, ST_F32, ST_F64, ST_I64, ST_U64, ST_NUM_DTYPES
} StDtype;

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER 100000000ull

const char *st_dtype_name(StDtype t); /* "F32" */
size_t st_dtype_size(StDtype t);      /* bytes per element */

/* ---- writing ---- */
typedef struct {
    const char *name;
    StDtype dtype;
    int ndim; /* 0..ST_MAX_DIMS; 0 = scalar */
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* prod(shape) * st_dtype_size(dtype) bytes, little-endian */
} StTensorOut;

typedef struct {
    const char *key, *value;
} StMeta;

/* Writes the file atomically (temporary, fsync, rename). Names must be unique and non-empty and
 * not "__metadata__"; metadata keys unique. Returns 0 or -1 with sc_error() naming path. */
int safetensors_write(const char *path, const StTensorOut *t, int n, const StMeta *meta, int nmeta);
/* The same bytes into a malloc'ed buffer (*out, *len); for tests and in-memory use. */
int safetensors_serialize(const StTensorOut *t, int n, const StMeta *meta, int nmeta,
                          uint8_t **out, size_t *len);

/* ---- reading ---- */
typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel, nbytes;
    const void *data; /* into the mapping, read only; NOT necessarily aligned: copy before use */
} StTensor;

typedef struct SafeTensors {
    char *path;
    MappedFile map;       /* when opened from a file */
    int n;                /* tensors, in header order */
    StTensor *t;
    int *by_name;         /* indices of t sorted by name (safetensors_find's binary search) */
    int nmeta;
    char **meta_key, **meta_val;
} SafeTensors;

int safetensors_open(SafeTensors **st, const char *path);
/* Parses an in-memory file image (not copied: buf must outlive *st). `what` names it in errors. */
int safetensors_parse(SafeTensors **st, const char *what, const uint8_t *buf, size_t len);
void safetensors_close(SafeTensors *st);
const StTensor *safetensors_find(const SafeTensors *st, const char *name);
const char *safetensors_meta(const SafeTensors *st, const char *key); /* NULL when absent */
/* Copies tensor `name` into dst after checking it exists with this dtype and shape:
 * "x.safetensors: tensor 'conv1.weight' is F32 [64,3,3,3], expected F32 [64,3,7,7]". */
int safetensors_read(const SafeTensors *st, const char *name, StDtype dtype, int ndim,
                     const int64_t *shape, void *dst);

#endif
