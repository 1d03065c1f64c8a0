/* json.h - a tiny reader for flat JSON objects (a run's saved configuration, metrics lines):
 * strings, numbers, true/false/null as text; nested values are skipped (given as "").
 * Not a general JSON parser: keys up to 255 bytes, values up to 4095 are cut. */
#ifndef SIMCLR_JSON_H
#define SIMCLR_JSON_H

#include <stddef.h>

typedef int (*JsonPairFn)(void *ctx, const char *key, const char *value);
/* Calls fn(ctx, key, value) for each member in order; a non-zero return stops and is returned.
 * Returns 0, or -1 with sc_error set on a malformed object. */
int json_each(const char *json, JsonPairFn fn, void *ctx);

/* Looks up one key of a flat JSON object: copies its value as text (strings unquoted and
 * unescaped) into buf. Returns 0 when found, -1 when absent or malformed. */
int json_get(const char *json, const char *key, char *buf, size_t n);

#endif
