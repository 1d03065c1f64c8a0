/* npy.h - NumPy .npy files (format versions 1.0, 2.0, 3.0), read by memory map, written atomically.
 *
 * Reading accepts what numpy writes (64-byte aligned headers) and what older writers wrote
 * (16-byte alignment), little- and big-endian numeric dtypes, C or Fortran order; it rejects
 * object/structured dtypes and any size mismatch with a message naming the file. Writing always
 * produces version 1.0, C order, little-endian, 64-byte aligned, exactly as numpy 1.24 does.
 * Fixture files for the tests are .npy files written by the tools/ scripts.
 */
#ifndef SIMCLR_NPY_H
#define SIMCLR_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

typedef enum { NPY_BOOL, NPY_U8, NPY_I8, NPY_I16, NPY_U16, NPY_I32, NPY_U32, NPY_I64, NPY_U64,
               NPY_F16, NPY_F32, NPY_F64 } NpyDtype;

#define NPY_MAX_DIMS 8

typedef struct {
    NpyDtype dtype;
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    size_t count;      /* product of shape (1 for a scalar) */
    size_t elem_size;
    int big_endian;    /* data as stored; npy_read_f32 etc. convert */
    int fortran_order;
    const void *data;  /* points into the mapping: read-only */
    MappedFile map;
} NpyArray;

int npy_open(NpyArray *a, const char *path);
/* Parses an in-memory file image (not copied: a->data points into buf, which must outlive it;
 * a->map stays empty). `what` names it in errors. npy_close is harmless on it. */
int npy_parse(NpyArray *a, const char *what, const void *buf, size_t n);
void npy_close(NpyArray *a);
size_t npy_dtype_size(NpyDtype t);
const char *npy_dtype_name(NpyDtype t); /* "<f4", "|u1", ... */

/* Element i (C order when the file is C order) converted to double / int64. */
double npy_get_f64(const NpyArray *a, size_t i);
int64_t npy_get_i64(const NpyArray *a, size_t i);

/* Whole-file conveniences: malloc'ed, converted to C order and native type.
 * shape/ndim may be NULL. Any numeric dtype is accepted for _f32; _i64 needs an integer dtype. */
int npy_load_f32(const char *path, float **data, int64_t *shape, int *ndim);
int npy_load_i64(const char *path, int64_t **data, int64_t *shape, int *ndim);

/* Writes data (native little-endian, C order) atomically. */
int npy_write(const char *path, NpyDtype dtype, int ndim, const int64_t *shape, const void *data);

#endif
