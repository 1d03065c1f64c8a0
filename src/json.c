/* json.c - see json.h. */
#include "json.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* Parses a JSON string at p (pointing at '"') into buf; returns the pointer after it or NULL. */
static const char *parse_string(const char *p, char *buf, size_t n) {
    if (*p != '"') return NULL;
    p++;
    size_t k = 0;
    while (*p && *p != '"') {
        char c = *p++;
        if (c == '\\') {
            char e = *p++;
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned u = 0;
                for (int i = 0; i < 4; i++) {
                    if (!isxdigit((unsigned char)p[i])) return NULL;
                    u = u * 16 + (unsigned)(isdigit((unsigned char)p[i]) ? p[i] - '0' : (tolower((unsigned char)p[i]) - 'a' + 10));
                }
                p += 4;
                c = u < 0x80 ? (char)u : '?';
                break;
            }
            case 0: return NULL;
            default: c = e;
            }
        }
        if (k + 1 < n) buf[k++] = c;
    }
    if (*p != '"') return NULL;
    if (n) buf[k] = 0;
    return p + 1;
}

/* Parses any value; scalars are copied as text into buf (strings unquoted), nested values are
 * skipped and give "". Returns the pointer after the value or NULL. */
static const char *parse_value(const char *p, char *buf, size_t n) {
    p = skip_ws(p);
    if (*p == '"') return parse_string(p, buf, n);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        do {
            if (*p == '"') {
                char tmp[1];
                p = parse_string(p, tmp, 0);
                if (!p) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            else if (*p == '}' || *p == ']') depth--;
            else if (!*p) return NULL;
            p++;
        } while (depth > 0);
        if (n) buf[0] = 0;
        return p;
    }
    const char *s = p;
    while (*p && *p != ',' && *p != '}' && *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r') p++;
    if (p == s) return NULL;
    size_t len = (size_t)(p - s);
    if (len >= n) len = n ? n - 1 : 0;
    if (n) {
        memcpy(buf, s, len);
        buf[len] = 0;
    }
    return p;
}

int json_each(const char *json, JsonPairFn fn, void *ctx) {
    char key[256], val[4096];
    const char *p = skip_ws(json);
    if (*p != '{') return sc_error_set("expected a JSON object");
    p = skip_ws(p + 1);
    if (*p == '}') return 0;
    for (;;) {
        p = parse_string(skip_ws(p), key, sizeof key);
        if (!p) return sc_error_set("malformed JSON object (bad key)");
        p = skip_ws(p);
        if (*p != ':') return sc_error_set("malformed JSON object (missing ':' after \"%s\")", key);
        p = parse_value(p + 1, val, sizeof val);
        if (!p) return sc_error_set("malformed JSON object (bad value of \"%s\")", key);
        int r = fn(ctx, key, val);
        if (r) return r;
        p = skip_ws(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '}') return 0;
        return sc_error_set("malformed JSON object (expected ',' or '}' after \"%s\")", key);
    }
}

typedef struct {
    const char *key;
    char *buf;
    size_t n;
    int found;
} GetCtx;

static int get_pair(void *vctx, const char *key, const char *value) {
    GetCtx *c = vctx;
    if (c->found || strcmp(key, c->key)) return 0;
    snprintf(c->buf, c->n, "%s", value);
    c->found = 1;
    return 0;
}

int json_get(const char *json, const char *key, char *buf, size_t n) {
    GetCtx c = {key, buf, n, 0};
    if (json_each(json, get_pair, &c)) return -1;
    return c.found ? 0 : -1;
}
