/* pbwire.h - a minimal protocol-buffers WRITER (wire format only), for the ONNX export and the
 * TensorBoard event files.
 *
 *     PbBuf b = {0};
 *     pb_string(&b, 1, "graph");               // field 1, length-delimited
 *     size_t at = pb_begin(&b, 7);             // field 7: a nested message ...
 *     pb_int(&b, 1, 42);                       //   ... its fields ...
 *     pb_end(&b, at);                          // ... closed: its length is filled in
 *     fwrite(b.data, 1, b.n, f);
 *     pb_free(&b);
 *
 * Why not Debian's protobuf-c: generating C from onnx.proto gives 4341 lines (onnx.pb-c.[ch])
 * plus a build-time protoc-c step, a runtime library and the .proto in the tree, and the calling
 * code still fills every struct by hand; writing needs only the five encodings below (see
 * doc/ecosystem.md for the measurement). Nothing here parses: the tests decode the output with
 * independent readers (onnx.checker, OpenCV, python3-protobuf).
 *
 * Encodings: varint (int32/int64/enum/bool; negative values as 10-byte two's complement, as
 * protobuf does for int32/int64), fixed32 (float), fixed64 (double), length-delimited (string,
 * bytes, nested message). Repeated scalars are written unpacked (one key per value) unless
 * pb_packed_floats is used; every parser accepts both. Allocation failures abort (sc_xrealloc).
 */
#ifndef SIMCLR_PBWIRE_H
#define SIMCLR_PBWIRE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;
    size_t n, cap;
} PbBuf;

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2, PB_FIXED32 = 5 };

void pb_free(PbBuf *b);
void pb_raw(PbBuf *b, const void *p, size_t n);       /* appends bytes as they are */
void pb_varint(PbBuf *b, uint64_t v);                 /* a bare varint */
void pb_key(PbBuf *b, int field, int wire_type);
void pb_int(PbBuf *b, int field, int64_t v);          /* int32/int64/enum/bool field */
void pb_float(PbBuf *b, int field, float v);          /* fixed32 */
void pb_double(PbBuf *b, int field, double v);        /* fixed64 */
void pb_bytes(PbBuf *b, int field, const void *p, size_t n);
void pb_string(PbBuf *b, int field, const char *s);
void pb_packed_floats(PbBuf *b, int field, const float *v, size_t n);
/* Nested message: pb_begin writes the key and returns where the body starts; pb_end moves the
 * body to make room for its length and writes it. Nesting is any depth (ends in LIFO order). */
size_t pb_begin(PbBuf *b, int field);
void pb_end(PbBuf *b, size_t start);

#endif
