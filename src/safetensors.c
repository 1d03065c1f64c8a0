/* safetensors.c - safetensors writer (byte-compatible with huggingface's) and validating reader.
 * Contents: dtype table | a strict JSON parser for the header (RFC 8259: UTF-8 checked,
 * duplicate keys rejected, depth limited) | the reader's checks | the writer.
 * Not here: big-endian hosts (asserted), dtype conversion (the caller copies raw elements).
 */
#define _GNU_SOURCE
#include "safetensors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtypes ----------------------------------------------------------------------------- */

static const char *const DT_NAME[ST_NUM_DTYPES] = {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3",
                                                   "I16",  "U16", "F16", "BF16",    "I32",
                                                   "U32",  "F32", "F64", "I64",     "U64"};
static const size_t DT_SIZE[ST_NUM_DTYPES] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8};

const char *st_dtype_name(StDtype t) { return (unsigned)t < ST_NUM_DTYPES ? DT_NAME[t] : "?"; }
size_t st_dtype_size(StDtype t) { return (unsigned)t < ST_NUM_DTYPES ? DT_SIZE[t] : 0; }

static void assert_little_endian(void) {
    const uint16_t one = 1;
    SC_ASSERT(*(const uint8_t *)&one == 1);
}

/* "[64,3,7,7]" into buf */
static const char *shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t k = 0;
    k += snprintf(buf + k, cap - k, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += snprintf(buf + k, cap - k, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* ---- strict JSON ------------------------------------------------------------------------ */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
#define J_MAX_DEPTH 32

/* The header is read in one pass straight into the tensor table (no JSON tree: memory is the
 * table's, a small multiple of the header's size). Syntax errors stop at once; the first error of
 * content (a wrong type, an unknown field or dtype) is kept in `content` and reported when the
 * whole header has parsed, so that a syntax error anywhere wins, as with a parse-then-check
 * reader. */
typedef struct {
    const char *what; /* file name for messages */
    const uint8_t *p, *end, *start;
    int depth;
    char content[512]; /* the first error of content, "" while none */
} JParser;

static void jcontent(JParser *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jcontent(JParser *j, const char *fmt, ...) {
    if (j->content[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->content, sizeof j->content, fmt, ap);
    va_end(ap);
}

static int jerr(JParser *j, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sc_error_set("%s: invalid JSON header at byte %ld of the header: %s", j->what,
                        (long)(j->p - j->start), msg);
}

static void jws(JParser *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

/* Decodes one UTF-8 sequence at p (validated: no overlong forms, no surrogates, <= U+10FFFF).
 * Returns its length, 0 when invalid. */
static int utf8_len(const uint8_t *p, const uint8_t *end) {
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    int n;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if (end - p < n) return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static int hex4(const uint8_t *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000)
        return o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | (cp >> 6 & 0x3F)),
               o[2] = (char)(0x80 | (cp & 0x3F)), 3;
    return o[0] = (char)(0xF0 | cp >> 18), o[1] = (char)(0x80 | (cp >> 12 & 0x3F)),
           o[2] = (char)(0x80 | (cp >> 6 & 0x3F)), o[3] = (char)(0x80 | (cp & 0x3F)), 4;
}

/* At the opening quote. */
static int jstring(JParser *j, char **out, size_t *outlen) {
    j->p++;
    const uint8_t *q = j->p;
    size_t cap = 0;
    while (q < j->end && *q != '"') q += (*q == '\\' && q + 1 < j->end) ? 2 : 1;
    cap = (size_t)(q - j->p) + 1; /* decoded text is never longer than the escaped one */
    char *s = malloc(cap), *o = s;
    if (!s) return jerr(j, "out of memory");
    for (;;) {
        if (j->p >= j->end) { free(s); return jerr(j, "unterminated string"); }
        uint8_t c = *j->p;
        if (c == '"') { j->p++; break; }
        if (c < 0x20) { free(s); return jerr(j, "control character 0x%02x in a string", c); }
        if (c == '\\') {
            if (j->end - j->p < 2) { free(s); return jerr(j, "unterminated escape"); }
            uint8_t e = j->p[1];
            j->p += 2;
            switch (e) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '/': *o++ = '/'; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u': {
                uint32_t cp, lo;
                if (j->end - j->p < 4 || hex4(j->p, &cp)) { free(s); return jerr(j, "bad \\u escape"); }
                j->p += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF) { free(s); return jerr(j, "lone low surrogate"); }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || hex4(j->p + 2, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF) {
                        free(s);
                        return jerr(j, "lone high surrogate");
                    }
                    j->p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                o += put_utf8(o, cp);
                break;
            }
            default: free(s); return jerr(j, "unknown escape '\\%c'", e >= 0x20 && e < 0x7F ? e : '?');
            }
            continue;
        }
        int n = utf8_len(j->p, j->end);
        if (!n) { free(s); return jerr(j, "invalid UTF-8"); }
        memcpy(o, j->p, n);
        o += n, j->p += n;
    }
    *o = 0;
    *out = s, *outlen = (size_t)(o - s);
    return 0;
}

/* A number: validated; *is_uint and *u when it is a non-negative integer that fits in 64 bits. */
static int jnumber(JParser *j, int *is_uint, uint64_t *u) {
    const uint8_t *a = j->p;
    int neg = 0, frac = 0;
    if (j->p < j->end && *j->p == '-') neg = 1, j->p++;
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') return jerr(j, "bad number");
    if (*j->p == '0') {
        j->p++;
        if (j->p < j->end && *j->p >= '0' && *j->p <= '9') return jerr(j, "leading zero in a number");
    } else
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    const uint8_t *int_end = j->p;
    if (j->p < j->end && *j->p == '.') {
        frac = 1, j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9') return jerr(j, "bad fraction");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        frac = 1, j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9') return jerr(j, "bad exponent");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    }
    *is_uint = 0, *u = 0;
    if (!neg && !frac) {
        uint64_t v = 0;
        *is_uint = 1;
        for (const uint8_t *q = a; q < int_end; q++) {
            uint64_t d = (uint64_t)(*q - '0');
            if (v > (UINT64_MAX - d) / 10) { *is_uint = 0; break; }
            v = v * 10 + d;
        }
        *u = v;
    }
    return 0;
}

static int jlit(JParser *j, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n)) return jerr(j, "unexpected character");
    j->p += n;
    return 0;
}

static int jskip(JParser *j);

/* Container syntax shared by the readers: at '{' or '[' (with obj), calls item(j, key, ctx) for
 * every member (key NULL in arrays; the key is the callee's to keep or free) with j->p at the
 * value. */
static int jeach(JParser *j, int obj, int (*item)(JParser *, char *key, size_t klen, void *ctx),
                 void *ctx) {
    if (++j->depth > J_MAX_DEPTH) return jerr(j, "nested deeper than %d", J_MAX_DEPTH);
    j->p++;
    jws(j);
    if (j->p < j->end && *j->p == (obj ? '}' : ']')) { j->p++; j->depth--; return 0; }
    for (;;) {
        char *k = NULL;
        size_t kl = 0;
        if (obj) {
            jws(j);
            if (j->p >= j->end || *j->p != '"') return jerr(j, "expected a string key");
            if (jstring(j, &k, &kl)) return -1;
            jws(j);
            if (j->p >= j->end || *j->p != ':') { free(k); return jerr(j, "expected ':'"); }
            j->p++;
        }
        jws(j);
        if (j->p >= j->end) { free(k); return jerr(j, "unexpected end"); }
        if (item(j, k, kl, ctx)) return -1;
        jws(j);
        if (j->p >= j->end) return jerr(j, "unterminated %s", obj ? "object" : "array");
        if (*j->p == ',') { j->p++; continue; }
        if (*j->p == (obj ? '}' : ']')) { j->p++; break; }
        return jerr(j, "expected ',' or '%c'", obj ? '}' : ']');
    }
    j->depth--;
    return 0;
}

static int skip_item(JParser *j, char *key, size_t klen, void *ctx) {
    free(key);
    return jskip(j);
}

/* Any JSON value, validated and dropped. */
static int jskip(JParser *j) {
    jws(j);
    if (j->p >= j->end) return jerr(j, "unexpected end");
    switch (*j->p) {
    case '{': return jeach(j, 1, skip_item, NULL);
    case '[': return jeach(j, 0, skip_item, NULL);
    case '"': {
        char *s;
        size_t n;
        if (jstring(j, &s, &n)) return -1;
        free(s);
        return 0;
    }
    case 't': return jlit(j, "true");
    case 'f': return jlit(j, "false");
    case 'n': return jlit(j, "null");
    default: {
        int is_uint;
        uint64_t u;
        return jnumber(j, &is_uint, &u);
    }
    }
}

/* The keys of one object, for the duplicate check: (pointer, length) pairs. */
typedef struct {
    const char *s;
    size_t n;
} KeyRef;

static int keyref_cmp(const void *a, const void *b) {
    const KeyRef *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->s, y->s, n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Duplicate keys, found by sorting: O(n log n). (Comparing each key with all earlier ones took
 * a minute for a 5.7 MB header of 100k keys.) keys is reordered. */
static int jcheck_dups(JParser *j, KeyRef *keys, size_t n) {
    if (n < 2) return 0;
    qsort(keys, n, sizeof *keys, keyref_cmp);
    for (size_t i = 1; i < n; i++)
        if (!keyref_cmp(&keys[i - 1], &keys[i])) return jerr(j, "duplicate key '%s'", keys[i].s);
    return 0;
}

/* ---- the header's schema ------------------------------------------------------------------ */

typedef struct {
    JParser *j;
    const char *name; /* the tensor's */
    int count, ok;    /* array entries seen; all of them non-negative integers */
    uint64_t v[ST_MAX_DIMS > 2 ? ST_MAX_DIMS : 2];
    uint64_t big;     /* an entry above INT64_MAX (shapes) */
} UintArray;

static int uint_item(JParser *j, char *key, size_t klen, void *ctx) {
    UintArray *a = ctx;
    int is_uint = 0;
    uint64_t u = 0;
    if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) {
        if (jnumber(j, &is_uint, &u)) return -1;
    } else if (jskip(j))
        return -1;
    if (!is_uint) a->ok = 0;
    if (u > (uint64_t)INT64_MAX) a->big = 1;
    if (a->count < (int)(sizeof a->v / sizeof *a->v)) a->v[a->count] = u;
    a->count++;
    return 0;
}

/* One tensor's info object {dtype, shape, data_offsets}, into t, begin and end. */
typedef struct {
    StTensor *t;
    uint64_t begin, end;
    int seen; /* bits: dtype 1, shape 2, data_offsets 4 */
    int content_ok;
    KeyRef keys[8];
    int nkeys;
    char *keep[8]; /* the key strings, freed after the duplicate check */
} TensorInfo;

static int tensor_field(JParser *j, char *key, size_t klen, void *ctx) {
    TensorInfo *ti = ctx;
    StTensor *t = ti->t;
    const char *name = t->name;
    if (ti->nkeys < 8) {
        ti->keep[ti->nkeys] = key;
        ti->keys[ti->nkeys++] = (KeyRef){key, klen};
    } else { /* more than 8 fields: unknown ones, an error of content anyway */
        jcontent(j, "%s: tensor '%s': unknown field '%s'", j->what, name, key);
        free(key);
        return jskip(j);
    }
    if (!strcmp(key, "dtype")) {
        ti->seen |= 1;
        if (*j->p != '"') {
            jcontent(j, "%s: tensor '%s': dtype must be a string", j->what, name);
            return jskip(j);
        }
        char *s;
        size_t n;
        if (jstring(j, &s, &n)) return -1;
        t->dtype = ST_NUM_DTYPES;
        for (int k = 0; k < ST_NUM_DTYPES; k++)
            if (!strcmp(s, DT_NAME[k]) && strlen(DT_NAME[k]) == n) t->dtype = (StDtype)k;
        if (t->dtype == ST_NUM_DTYPES) jcontent(j, "%s: tensor '%s': unknown dtype '%s'", j->what, name, s);
        free(s);
        return 0;
    }
    if (!strcmp(key, "shape")) {
        ti->seen |= 2;
        if (*j->p != '[') {
            jcontent(j, "%s: tensor '%s': shape must be an array", j->what, name);
            return jskip(j);
        }
        UintArray a = {.j = j, .name = name, .ok = 1};
        if (jeach(j, 0, uint_item, &a)) return -1;
        if (a.count > ST_MAX_DIMS) {
            jcontent(j, "%s: tensor '%s': %d dimensions, at most %d supported", j->what, name, a.count,
                     ST_MAX_DIMS);
            return 0;
        }
        if (!a.ok || a.big) {
            jcontent(j, "%s: tensor '%s': shape entries must be non-negative integers", j->what, name);
            return 0;
        }
        t->ndim = a.count;
        for (int i = 0; i < a.count; i++) t->shape[i] = (int64_t)a.v[i];
        return 0;
    }
    if (!strcmp(key, "data_offsets")) {
        ti->seen |= 4;
        UintArray a = {.j = j, .name = name, .ok = 1};
        if (*j->p == '[') {
            if (jeach(j, 0, uint_item, &a)) return -1;
        } else {
            a.ok = 0;
            if (jskip(j)) return -1;
        }
        if (!a.ok || a.count != 2) {
            jcontent(j, "%s: tensor '%s': data_offsets must be [begin, end] (non-negative integers)",
                     j->what, name);
            return 0;
        }
        ti->begin = a.v[0], ti->end = a.v[1];
        return 0;
    }
    jcontent(j, "%s: tensor '%s': unknown field '%s'", j->what, name, key);
    return jskip(j);
}

/* At a tensor's value: reads it into t (name set). */
static int tensor_info(JParser *j, StTensor *t, uint64_t *begin, uint64_t *end) {
    const char *name = t->name;
    if (*j->p != '{') {
        jcontent(j, "%s: tensor '%s': expected an object {dtype, shape, data_offsets}", j->what, name);
        return jskip(j);
    }
    const char *before = j->content;
    int had = before[0] != 0;
    TensorInfo ti = {.t = t};
    int rc = jeach(j, 1, tensor_field, &ti);
    if (!rc) rc = jcheck_dups(j, ti.keys, (size_t)ti.nkeys);
    for (int i = 0; i < ti.nkeys; i++) free(ti.keep[i]);
    if (rc) return -1;
    *begin = ti.begin, *end = ti.end;
    if (had || j->content[0]) return 0; /* this tensor (or an earlier one) is wrong already */
    if (ti.seen != 7) {
        jcontent(j, "%s: tensor '%s': missing field '%s'", j->what, name,
                 !(ti.seen & 1) ? "dtype" : !(ti.seen & 2) ? "shape" : "data_offsets");
        return 0;
    }
    uint64_t numel = 1;
    int overflow = 0;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d = (uint64_t)t->shape[i];
        if (d && numel > UINT64_MAX / d) overflow = 1;
        numel *= d;
    }
    size_t es = DT_SIZE[t->dtype];
    char sb[160];
    if (overflow || numel > SIZE_MAX / es) {
        jcontent(j, "%s: tensor '%s': shape %s overflows", j->what, name,
                 shape_str(sb, sizeof sb, t->ndim, t->shape));
        return 0;
    }
    t->numel = (size_t)numel, t->nbytes = (size_t)numel * es;
    return 0;
}

/* The root object: tensors into st (growing its arrays), __metadata__ into its key/value lists. */
typedef struct {
    SafeTensors *st;
    int cap, meta_cap, meta_seen;
    uint64_t *beg, *end;
} HeaderRead;

typedef struct {
    char *k, *v;
} MetaPair;

static int meta_pair_cmp(const void *a, const void *b) {
    return strcmp(((const MetaPair *)a)->k, ((const MetaPair *)b)->k);
}

static int meta_item(JParser *j, char *key, size_t klen, void *ctx) {
    HeaderRead *h = ctx;
    SafeTensors *st = h->st;
    if (*j->p != '"') {
        jcontent(j, "%s: __metadata__ value of '%s' is not a string", j->what, key);
        free(key);
        return jskip(j);
    }
    char *v;
    size_t vn;
    if (jstring(j, &v, &vn)) {
        free(key);
        return -1;
    }
    if (st->nmeta == h->meta_cap) {
        h->meta_cap = h->meta_cap ? 2 * h->meta_cap : 8;
        st->meta_key = sc_xrealloc(st->meta_key, sizeof(char *) * (size_t)h->meta_cap);
        st->meta_val = sc_xrealloc(st->meta_val, sizeof(char *) * (size_t)h->meta_cap);
    }
    st->meta_key[st->nmeta] = key;
    st->meta_val[st->nmeta++] = v;
    (void)klen;
    return 0;
}

static int root_item(JParser *j, char *key, size_t klen, void *ctx) {
    HeaderRead *h = ctx;
    SafeTensors *st = h->st;
    if (klen == 12 && !memcmp(key, "__metadata__", 12)) {
        free(key);
        if (h->meta_seen++) return jerr(j, "duplicate key '__metadata__'");
        if (*j->p != '{') {
            jcontent(j, "%s: __metadata__ must be an object of strings", j->what);
            return jskip(j);
        }
        if (jeach(j, 1, meta_item, h)) return -1;
        KeyRef *keys = sc_xrealloc(NULL, sizeof(KeyRef) * (size_t)(st->nmeta ? st->nmeta : 1));
        for (int i = 0; i < st->nmeta; i++) keys[i] = (KeyRef){st->meta_key[i], strlen(st->meta_key[i])};
        int rc = jcheck_dups(j, keys, (size_t)st->nmeta);
        free(keys);
        if (rc) return -1;
        /* sorted by key (as C strings) for safetensors_meta's binary search */
        MetaPair *mp = sc_xrealloc(NULL, sizeof(MetaPair) * (size_t)(st->nmeta ? st->nmeta : 1));
        for (int i = 0; i < st->nmeta; i++) mp[i] = (MetaPair){st->meta_key[i], st->meta_val[i]};
        qsort(mp, (size_t)st->nmeta, sizeof *mp, meta_pair_cmp);
        for (int i = 0; i < st->nmeta; i++) st->meta_key[i] = mp[i].k, st->meta_val[i] = mp[i].v;
        free(mp);
        return 0;
    }
    if (strlen(key) != klen) jcontent(j, "%s: a tensor name contains a NUL character", j->what);
    if (st->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 16;
        st->t = sc_xrealloc(st->t, sizeof(StTensor) * (size_t)h->cap);
        h->beg = sc_xrealloc(h->beg, sizeof(uint64_t) * (size_t)h->cap);
        h->end = sc_xrealloc(h->end, sizeof(uint64_t) * (size_t)h->cap);
    }
    StTensor *t = &st->t[st->n];
    memset(t, 0, sizeof *t);
    t->name = key;
    h->beg[st->n] = h->end[st->n] = 0;
    st->n++; /* owned by st from here (freed by safetensors_close) */
    return tensor_info(j, t, &h->beg[st->n - 1], &h->end[st->n - 1]);
}

/* ---- reader ----------------------------------------------------------------------------- */

void safetensors_close(SafeTensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) free(st->t[i].name);
    for (int i = 0; i < st->nmeta; i++) free(st->meta_key[i]), free(st->meta_val[i]);
    free(st->t), free(st->by_name), free(st->meta_key), free(st->meta_val), free(st->path);
    if (st->map.data) sc_unmap_file(&st->map);
    free(st);
}

static int sort_by_begin(const void *a, const void *b, void *ctx) {
    const uint64_t *beg = ctx;
    uint64_t x = beg[*(const int *)a], y = beg[*(const int *)b];
    return x < y ? -1 : x > y;
}

static int name_cmp(const void *a, const void *b, void *ctx) {
    const StTensor *t = ctx;
    return strcmp(t[*(const int *)a].name, t[*(const int *)b].name);
}

int safetensors_parse(SafeTensors **out, const char *what, const uint8_t *buf, size_t len) {
    assert_little_endian();
    *out = NULL;
    if (len < 8) return sc_error_set("%s: %zu bytes, too short for a safetensors file (needs an "
                                     "8-byte header length)", what, len);
    uint64_t N;
    memcpy(&N, buf, 8);
    if (N > ST_MAX_HEADER)
        return sc_error_set("%s: header length %llu exceeds the limit of %llu bytes (not a "
                            "safetensors file?)", what, (unsigned long long)N, ST_MAX_HEADER);
    if (N > len - 8)
        return sc_error_set("%s: header length %llu runs past the end of the file (%zu bytes)",
                            what, (unsigned long long)N, len);
    if (N < 2) return sc_error_set("%s: header length %llu, too short for a JSON object", what,
                                   (unsigned long long)N);
    JParser j = {what, buf + 8, buf + 8 + N, buf + 8, 0, ""};
    jws(&j);
    if (j.p >= j.end || *j.p != '{') {
        jerr(&j, "the header must be a JSON object");
        return -1;
    }
    SafeTensors *st = calloc(1, sizeof *st);
    if (!st) return sc_error_set("%s: out of memory", what);
    st->path = sc_strdup(what);
    HeaderRead h = {.st = st};
    int *order = NULL;
    uint64_t *beg = NULL, *end = NULL;
    int rc = jeach(&j, 1, root_item, &h);
    beg = h.beg, end = h.end;
    if (!rc) {
        jws(&j);
        if (j.p != j.end) rc = jerr(&j, "trailing characters after the JSON object");
    }
    if (!rc) { /* tensor names: duplicates (sorted), then the lookup order */
        st->by_name = malloc(sizeof(int) * (size_t)(st->n ? st->n : 1));
        if (!st->by_name) { rc = sc_error_set("%s: out of memory", what); goto done; }
        for (int i = 0; i < st->n; i++) st->by_name[i] = i;
        qsort_r(st->by_name, (size_t)st->n, sizeof(int), name_cmp, st->t);
        for (int i = 1; i < st->n && !rc; i++)
            if (!strcmp(st->t[st->by_name[i - 1]].name, st->t[st->by_name[i]].name))
                rc = jerr(&j, "duplicate key '%s'", st->t[st->by_name[i]].name);
    }
    if (!rc && j.content[0]) rc = sc_error_set("%s", j.content);
    if (rc) goto done;
    order = calloc(st->n ? st->n : 1, sizeof *order);
    if (!order) { rc = sc_error_set("%s: out of memory", what); goto done; }
    for (int i = 0; i < st->n; i++) order[i] = i;
    /* tiling: sorted by begin, each tensor starts where the previous ended */
    qsort_r(order, st->n, sizeof *order, sort_by_begin, beg);
    const uint64_t buflen = len - 8 - N;
    uint64_t at = 0;
    for (int k = 0; k < st->n; k++) {
        int i = order[k];
        StTensor *t = &st->t[i];
        char sb[160];
        if (beg[i] != at || end[i] < beg[i]) {
            rc = sc_error_set("%s: tensor '%s' has data_offsets [%llu, %llu], expected it to start "
                              "at %llu (tensors must tile the data buffer with no gap or overlap)",
                              what, t->name, (unsigned long long)beg[i], (unsigned long long)end[i],
                              (unsigned long long)at);
            goto done;
        }
        if (end[i] - beg[i] != t->nbytes) {
            rc = sc_error_set("%s: tensor '%s' has %llu bytes, expected %zu for %s %s", what, t->name,
                              (unsigned long long)(end[i] - beg[i]), t->nbytes, DT_NAME[t->dtype],
                              shape_str(sb, sizeof sb, t->ndim, t->shape));
            goto done;
        }
        if (end[i] > buflen) {
            rc = sc_error_set("%s: tensor '%s' ends at byte %llu of the data buffer, but the file "
                              "holds only %llu bytes of data (truncated file?)", what, t->name,
                              (unsigned long long)end[i], (unsigned long long)buflen);
            goto done;
        }
        t->data = buf + 8 + N + beg[i];
        at = end[i];
    }
    if (at != buflen) {
        rc = sc_error_set("%s: the tensors hold %llu bytes of data but the file has %llu after the "
                          "header (trailing or missing bytes)", what, (unsigned long long)at,
                          (unsigned long long)buflen);
        goto done;
    }
done:
    free(beg), free(end), free(order);
    if (rc) { safetensors_close(st); return -1; }
    *out = st;
    return 0;
}

int safetensors_open(SafeTensors **out, const char *path) {
    *out = NULL;
    MappedFile m;
    if (sc_map_file(&m, path)) return -1;
    static const uint8_t empty[1];
    if (safetensors_parse(out, path, m.data ? m.data : empty, m.size)) {
        sc_unmap_file(&m);
        return -1;
    }
    (*out)->map = m;
    return 0;
}

const StTensor *safetensors_find(const SafeTensors *st, const char *name) {
    int lo = 0, hi = st->n; /* binary search over by_name */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(st->t[st->by_name[mid]].name, name);
        if (!c) return &st->t[st->by_name[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *safetensors_meta(const SafeTensors *st, const char *key) {
    int lo = 0, hi = st->nmeta; /* binary search: the keys are sorted */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(st->meta_key[mid], key);
        if (!c) return st->meta_val[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

int safetensors_read(const SafeTensors *st, const char *name, StDtype dtype, int ndim,
                     const int64_t *shape, void *dst) {
    const StTensor *t = safetensors_find(st, name);
    char a[160], b[160];
    if (!t) return sc_error_set("%s: no tensor '%s'", st->path, name);
    int same = t->dtype == dtype && t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same)
        return sc_error_set("%s: tensor '%s' is %s %s, expected %s %s", st->path, name,
                            DT_NAME[t->dtype], shape_str(a, sizeof a, t->ndim, t->shape),
                            st_dtype_name(dtype), shape_str(b, sizeof b, ndim, shape));
    if (t->nbytes) memcpy(dst, t->data, t->nbytes);
    return 0;
}

/* ---- writer ----------------------------------------------------------------------------- */

typedef struct {
    char *s;
    size_t n, cap;
} Buf;

static void bput(Buf *b, const void *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = sc_xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void bputs(Buf *b, const char *s) { bput(b, s, strlen(s)); }

/* serde_json's escaping: '"', '\\' and control characters; everything else verbatim. */
static void bput_jstr(Buf *b, const char *s) {
    bputs(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[8];
        switch (*p) {
        case '"': bputs(b, "\\\""); break;
        case '\\': bputs(b, "\\\\"); break;
        case '\n': bputs(b, "\\n"); break;
        case '\r': bputs(b, "\\r"); break;
        case '\t': bputs(b, "\\t"); break;
        case '\b': bputs(b, "\\b"); break;
        case '\f': bputs(b, "\\f"); break;
        default:
            if (*p < 0x20) snprintf(e, sizeof e, "\\u%04x", *p), bputs(b, e);
            else bput(b, p, 1);
        }
    }
    bputs(b, "\"");
}

static int sort_for_write(const void *a, const void *b, void *ctx) {
    const StTensorOut *t = ctx;
    const StTensorOut *x = &t[*(const int *)a], *y = &t[*(const int *)b];
    if (x->dtype != y->dtype) return x->dtype > y->dtype ? -1 : 1; /* descending dtype */
    return strcmp(x->name, y->name);
}

static int valid_utf8(const char *s) {
    const uint8_t *p = (const uint8_t *)s, *e = p + strlen(s);
    while (p < e) {
        int n = utf8_len(p, e);
        if (!n) return 0;
        p += n;
    }
    return 1;
}

/* Validates the inputs and builds the padded JSON header; order[] is the write order. */
static int build_header(const StTensorOut *t, int n, const StMeta *meta, int nmeta, Buf *h,
                        int **order_out, size_t **nbytes_out, size_t *data_len) {
    assert_little_endian();
    if (n < 0 || nmeta < 0) return sc_error_set("safetensors: negative tensor count");
    size_t *nbytes = sc_alloc((n ? n : 1) * sizeof *nbytes);
    int *order = sc_alloc((n ? n : 1) * sizeof *order);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        order[i] = i;
        if (!t[i].name || !t[i].name[0] || !strcmp(t[i].name, "__metadata__") || !valid_utf8(t[i].name))
            rc = sc_error_set("safetensors: tensor %d has an invalid name '%s'", i, t[i].name ? t[i].name : "(null)");
        else if ((unsigned)t[i].dtype >= ST_NUM_DTYPES || t[i].ndim < 0 || t[i].ndim > ST_MAX_DIMS)
            rc = sc_error_set("safetensors: tensor '%s': bad dtype or rank", t[i].name);
        for (int k = 0; k < i && !rc; k++)
            if (!strcmp(t[k].name, t[i].name)) rc = sc_error_set("safetensors: duplicate tensor name '%s'", t[i].name);
        uint64_t ne = 1;
        for (int d = 0; d < t[i].ndim && !rc; d++) {
            if (t[i].shape[d] < 0) rc = sc_error_set("safetensors: tensor '%s': negative dimension", t[i].name);
            else if (t[i].shape[d] && ne > (uint64_t)(SIZE_MAX / 16) / (uint64_t)t[i].shape[d])
                rc = sc_error_set("safetensors: tensor '%s': too large", t[i].name);
            else ne *= (uint64_t)t[i].shape[d];
        }
        if (!rc) nbytes[i] = (size_t)ne * DT_SIZE[t[i].dtype];
        if (!rc && nbytes[i] && !t[i].data) rc = sc_error_set("safetensors: tensor '%s' has no data", t[i].name);
    }
    for (int i = 0; i < nmeta && !rc; i++) {
        if (!meta[i].key || !meta[i].value || !valid_utf8(meta[i].key) || !valid_utf8(meta[i].value))
            rc = sc_error_set("safetensors: metadata entry %d is not a pair of UTF-8 strings", i);
        for (int k = 0; k < i && !rc; k++)
            if (!strcmp(meta[k].key, meta[i].key)) rc = sc_error_set("safetensors: duplicate metadata key '%s'", meta[i].key);
    }
    if (rc) { sc_free(nbytes), sc_free(order); return -1; }
    qsort_r(order, n, sizeof *order, sort_for_write, (void *)t);

    bputs(h, "{");
    int first = 1;
    if (nmeta) {
        bputs(h, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) bputs(h, ",");
            bput_jstr(h, meta[i].key), bputs(h, ":"), bput_jstr(h, meta[i].value);
        }
        bputs(h, "}");
        first = 0;
    }
    size_t at = 0;
    for (int k = 0; k < n; k++) {
        const StTensorOut *x = &t[order[k]];
        char num[64];
        if (!first) bputs(h, ",");
        first = 0;
        bput_jstr(h, x->name);
        bputs(h, ":{\"dtype\":\""), bputs(h, DT_NAME[x->dtype]), bputs(h, "\",\"shape\":[");
        for (int d = 0; d < x->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)x->shape[d]);
            bputs(h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", at, at + nbytes[order[k]]);
        bputs(h, num);
        at += nbytes[order[k]];
    }
    bputs(h, "}");
    while (h->n % 8) bputs(h, " ");
    *order_out = order, *nbytes_out = nbytes, *data_len = at;
    return 0;
}

int safetensors_serialize(const StTensorOut *t, int n, const StMeta *meta, int nmeta,
                          uint8_t **out, size_t *len) {
    *out = NULL, *len = 0;
    Buf h = {0};
    int *order;
    size_t *nbytes, at;
    if (build_header(t, n, meta, nmeta, &h, &order, &nbytes, &at)) { free(h.s); return -1; }
    size_t total = 8 + h.n + at;
    uint8_t *o = malloc(total);
    if (!o) { free(h.s), sc_free(nbytes), sc_free(order); return sc_error_set("safetensors: out of memory (%zu bytes)", total); }
    uint64_t N = h.n;
    memcpy(o, &N, 8);
    memcpy(o + 8, h.s, h.n);
    size_t w = 8 + h.n;
    for (int k = 0; k < n; k++) {
        size_t nb = nbytes[order[k]];
        if (nb) memcpy(o + w, t[order[k]].data, nb);
        w += nb;
    }
    free(h.s), sc_free(nbytes), sc_free(order);
    *out = o, *len = total;
    return 0;
}

/* Streams header and tensors into the temporary file: no copy of the data in memory. */
int safetensors_write(const char *path, const StTensorOut *t, int n, const StMeta *meta, int nmeta) {
    Buf h = {0};
    int *order;
    size_t *nbytes, at;
    if (build_header(t, n, meta, nmeta, &h, &order, &nbytes, &at)) {
        free(h.s);
        return sc_error_prefix("%s", path);
    }
    AtomicFile af;
    int rc = sc_atomic_open(&af, path);
    if (!rc) {
        uint64_t N = h.n;
        int ok = fwrite(&N, 8, 1, af.f) == 1 && fwrite(h.s, 1, h.n, af.f) == h.n;
        for (int k = 0; k < n && ok; k++) {
            size_t nb = nbytes[order[k]];
            ok = !nb || fwrite(t[order[k]].data, 1, nb, af.f) == nb;
        }
        if (!ok) {
            int e = errno;
            sc_atomic_abort(&af);
            rc = sc_error_set("%s: write failed: %s", path, strerror(e));
        } else
            rc = sc_atomic_commit(&af);
    }
    free(h.s), sc_free(nbytes), sc_free(order);
    return rc;
}
