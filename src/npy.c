/* npy.c - see npy.h. The header is a Python dict literal; we parse exactly the three keys numpy
 * writes and reject anything else rather than guessing. */
#include "npy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    NpyDtype t;
    char kind;
    int size;
} dtypes[] = {{NPY_BOOL, 'b', 1}, {NPY_U8, 'u', 1},  {NPY_I8, 'i', 1},  {NPY_I16, 'i', 2},
              {NPY_U16, 'u', 2},  {NPY_I32, 'i', 4}, {NPY_U32, 'u', 4}, {NPY_I64, 'i', 8},
              {NPY_U64, 'u', 8},  {NPY_F16, 'f', 2}, {NPY_F32, 'f', 4}, {NPY_F64, 'f', 8}};

size_t npy_dtype_size(NpyDtype t) {
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (dtypes[i].t == t) return dtypes[i].size;
    return 0;
}

const char *npy_dtype_name(NpyDtype t) {
    static const char *names[] = {"|b1", "|u1", "|i1", "<i2", "<u2", "<i4",
                                  "<u4", "<i8", "<u8", "<f2", "<f4", "<f8"};
    return names[t];
}

static const char *skip_ws(const char *s, const char *e) {
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    return s;
}

/* Finds 'key': in the header and returns a pointer just past the colon. */
static const char *find_key(const char *h, const char *e, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    size_t n = strlen(pat);
    for (const char *s = h; s + n <= e; s++)
        if (!memcmp(s, pat, n)) {
            s = skip_ws(s + n, e);
            if (s < e && *s == ':') return skip_ws(s + 1, e);
            return NULL;
        }
    return NULL;
}

/* h is the header copied into a NUL-terminated string of hl bytes: every scan below stops at
 * the NUL at worst, so no pattern in the header (or after it) can make it read further. */
static int parse_header(NpyArray *a, const char *path, const char *h, size_t hl) {
    const char *e = h + hl;
    const char *d = find_key(h, e, "descr");
    if (!d || *d != '\'') return sc_error_set("%s: npy header has no 'descr' string", path);
    d++;
    const char *dq = memchr(d, '\'', (size_t)(e - d));
    if (!dq || dq - d < 3 || dq - d > 4)
        return sc_error_set("%s: unsupported npy dtype (only plain numeric dtypes are read)", path);
    char endian = d[0], kind = d[1];
    int size = 0;
    for (const char *q = d + 2; q < dq; q++) {
        if (*q < '0' || *q > '9') { size = -1; break; }
        size = size * 10 + (*q - '0');
    }
    if (endian != '<' && endian != '>' && endian != '|' && endian != '=')
        return sc_error_set("%s: bad npy byte order '%c'", path, endian);
    int found = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (dtypes[i].kind == kind && dtypes[i].size == size) {
            a->dtype = dtypes[i].t;
            found = 1;
        }
    if (!found)
        return sc_error_set("%s: unsupported npy dtype '%.*s'", path, (int)(dq - d), d);
    a->elem_size = size;
    a->big_endian = endian == '>' && size > 1;

    const char *f = find_key(h, e, "fortran_order");
    if (!f) return sc_error_set("%s: npy header has no 'fortran_order'", path);
    if (!strncmp(f, "True", 4)) a->fortran_order = 1;
    else if (!strncmp(f, "False", 5)) a->fortran_order = 0;
    else return sc_error_set("%s: bad fortran_order in npy header", path);

    const char *s = find_key(h, e, "shape");
    if (!s || *s != '(') return sc_error_set("%s: npy header has no 'shape' tuple", path);
    s++;
    a->ndim = 0;
    a->count = 1;
    for (;;) {
        s = skip_ws(s, e);
        if (s >= e) return sc_error_set("%s: unterminated shape in npy header", path);
        if (*s == ')') break;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || errno) return sc_error_set("%s: bad shape in npy header", path);
        if (a->ndim >= NPY_MAX_DIMS)
            return sc_error_set("%s: more than %d dimensions", path, NPY_MAX_DIMS);
        a->shape[a->ndim++] = v;
        if (v && a->count > SIZE_MAX / (size_t)v) return sc_error_set("%s: shape overflows", path);
        a->count *= (size_t)v;
        s = skip_ws(end, e);
        if (s < e && *s == 'L') s = skip_ws(s + 1, e); /* Python 2 long suffix */
        if (s < e && *s == ',') s++;
    }
    return 0;
}

int npy_parse(NpyArray *a, const char *what, const void *buf, size_t n) {
    memset(a, 0, sizeof *a);
    const uint8_t *p = buf;
    if (n < 10 || memcmp(p, "\x93NUMPY", 6) != 0)
        return sc_error_set("%s: not a .npy file (bad magic)", what);
    int major = p[6];
    size_t hl, off;
    if (major == 1) {
        hl = p[8] | (size_t)p[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (n < 12) return sc_error_set("%s: truncated .npy header", what);
        hl = p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24;
        off = 12;
    } else
        return sc_error_set("%s: unsupported .npy version %d", what, major);
    if (hl > n - off)
        return sc_error_set("%s: truncated .npy header (%zu bytes declared, file has %zu)", what,
                            hl, n);
    char *h = sc_xrealloc(NULL, hl + 1);
    memcpy(h, p + off, hl);
    h[hl] = 0;
    int rc = parse_header(a, what, h, hl);
    free(h);
    if (rc) return -1;
    size_t need = a->count * a->elem_size, have = n - off - hl;
    if (a->count > SIZE_MAX / a->elem_size || have != need)
        return sc_error_set("%s: expected %zu data bytes for the shape in its header, found %zu",
                            what, need, have);
    a->data = p + off + hl;
    return 0;
}

int npy_open(NpyArray *a, const char *path) {
    MappedFile m;
    if (sc_map_file(&m, path)) {
        memset(a, 0, sizeof *a);
        return -1;
    }
    if (npy_parse(a, path, m.data, m.size)) {
        sc_unmap_file(&m);
        return -1;
    }
    a->map = m;
    return 0;
}

void npy_close(NpyArray *a) {
    sc_unmap_file(&a->map);
    memset(a, 0, sizeof *a);
}

/* Maps C-order index i to the storage index for Fortran-order files. */
static size_t storage_index(const NpyArray *a, size_t i) {
    if (!a->fortran_order || a->ndim < 2) return i;
    size_t idx = 0, stride = 1, rem = i;
    size_t coord[NPY_MAX_DIMS];
    for (int d = a->ndim - 1; d >= 0; d--) {
        coord[d] = rem % (size_t)a->shape[d];
        rem /= (size_t)a->shape[d];
    }
    for (int d = 0; d < a->ndim; d++) {
        idx += coord[d] * stride;
        stride *= (size_t)a->shape[d];
    }
    return idx;
}

static void load_elem(const NpyArray *a, size_t i, uint8_t out[8]) {
    const uint8_t *src = (const uint8_t *)a->data + storage_index(a, i) * a->elem_size;
    for (size_t k = 0; k < a->elem_size; k++)
        out[k] = a->big_endian ? src[a->elem_size - 1 - k] : src[k];
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else {
            exp = 127 - 14;
            while (!(man & 1024)) {
                man <<= 1;
                exp--;
            }
            bits = sign | exp << 23 | (man & 1023) << 13;
        }
    } else if (exp == 31) bits = sign | 0x7F800000u | man << 13;
    else bits = sign | (exp + 112) << 23 | man << 13;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

double npy_get_f64(const NpyArray *a, size_t i) {
    uint8_t b[8];
    load_elem(a, i, b);
    switch (a->dtype) {
    case NPY_BOOL: case NPY_U8: return b[0];
    case NPY_I8: return (int8_t)b[0];
    case NPY_I16: { int16_t v; memcpy(&v, b, 2); return v; }
    case NPY_U16: { uint16_t v; memcpy(&v, b, 2); return v; }
    case NPY_I32: { int32_t v; memcpy(&v, b, 4); return v; }
    case NPY_U32: { uint32_t v; memcpy(&v, b, 4); return v; }
    case NPY_I64: { int64_t v; memcpy(&v, b, 8); return (double)v; }
    case NPY_U64: { uint64_t v; memcpy(&v, b, 8); return (double)v; }
    case NPY_F16: { uint16_t v; memcpy(&v, b, 2); return half_to_float(v); }
    case NPY_F32: { float v; memcpy(&v, b, 4); return v; }
    case NPY_F64: { double v; memcpy(&v, b, 8); return v; }
    }
    return 0;
}

int64_t npy_get_i64(const NpyArray *a, size_t i) {
    uint8_t b[8];
    load_elem(a, i, b);
    switch (a->dtype) {
    case NPY_I64: { int64_t v; memcpy(&v, b, 8); return v; }
    case NPY_U64: { uint64_t v; memcpy(&v, b, 8); return (int64_t)v; }
    default: return (int64_t)npy_get_f64(a, i);
    }
}

static int is_integer(NpyDtype t) { return t != NPY_F16 && t != NPY_F32 && t != NPY_F64; }

static void copy_shape(const NpyArray *a, int64_t *shape, int *ndim) {
    if (shape) memcpy(shape, a->shape, sizeof(int64_t) * a->ndim);
    if (ndim) *ndim = a->ndim;
}

int npy_load_f32(const char *path, float **data, int64_t *shape, int *ndim) {
    NpyArray a;
    if (npy_open(&a, path)) return -1;
    float *d = sc_alloc(a.count * sizeof(float));
    if (a.dtype == NPY_F32 && !a.big_endian && !a.fortran_order) memcpy(d, a.data, a.count * 4);
    else
        for (size_t i = 0; i < a.count; i++) d[i] = (float)npy_get_f64(&a, i);
    copy_shape(&a, shape, ndim);
    *data = d;
    npy_close(&a);
    return 0;
}

int npy_load_i64(const char *path, int64_t **data, int64_t *shape, int *ndim) {
    NpyArray a;
    if (npy_open(&a, path)) return -1;
    if (!is_integer(a.dtype)) {
        NpyDtype t = a.dtype;
        npy_close(&a);
        return sc_error_set("%s: expected an integer array, found dtype %s", path,
                            npy_dtype_name(t));
    }
    int64_t *d = sc_alloc(a.count * sizeof(int64_t));
    for (size_t i = 0; i < a.count; i++) d[i] = npy_get_i64(&a, i);
    copy_shape(&a, shape, ndim);
    *data = d;
    npy_close(&a);
    return 0;
}

int npy_write(const char *path, NpyDtype dtype, int ndim, const int64_t *shape, const void *data) {
    char dict[512];
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                       npy_dtype_name(dtype));
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        len += snprintf(dict + len, sizeof dict - len, "%lld,%s", (long long)shape[i],
                        i + 1 < ndim ? " " : "");
        count *= (size_t)shape[i];
    }
    if (ndim > 1) len--; /* numpy writes (2, 3) but (5,) */
    len += snprintf(dict + len, sizeof dict - len, "), }");
    size_t total = 10 + len + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t hl = padded - 10;
    uint8_t head[600];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    head[8] = hl & 0xFF;
    head[9] = hl >> 8;
    memcpy(head + 10, dict, len);
    memset(head + 10 + len, ' ', hl - len - 1);
    head[padded - 1] = '\n';
    AtomicFile af;
    if (sc_atomic_open(&af, path)) return -1;
    size_t bytes = count * npy_dtype_size(dtype);
    if (fwrite(head, 1, padded, af.f) != padded ||
        (bytes && fwrite(data, 1, bytes, af.f) != bytes)) {
        sc_atomic_abort(&af);
        return sc_error_set("%s: write failed", path);
    }
    return sc_atomic_commit(&af);
}
