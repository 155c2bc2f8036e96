/* libFuzzer target: delivery/tlsrpt_report.c's JSON writer with strings taken
   from the input (any bytes but NUL, in pieces split at 0xff). Whatever it
   writes, json-c parses back, and the organization name reads back unchanged. */
#include "delivery/tlsrpt_report.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char text[4097];
    memcpy(text, data, size);
    text[size] = '\0';
    const char *s[6];
    char *p = text;
    for (int i = 0; i < 6; i++) {
        s[i] = p;
        char *cut = strchr(p, '\xff');
        if (cut) {
            *cut = '\0';
            p = cut + 1;
        } else {
            p += strlen(p);
        }
    }
    struct tlsrpt_failure f = { s[5][0] ? "validation-failure" : "made-up", s[1], s[2], s[3], s[4], 2, s[5], NULL };
    const char *strs[] = { s[1], s[2] };
    struct tlsrpt_policy pol = { "sts", strs, 2, s[0], strs, 1, 7, 2, &f, 1 };
    struct tlsrpt_report r = { s[0], 0, 86400, s[1], s[2], &pol, 1 };
    struct buf b;
    buf_init(&b, 1 << 20);
    char err[128];
    if (tlsrpt_report_json(&r, &b, err, sizeof err) == 0) {
        json_object *o = json_tokener_parse(b.data), *org = NULL;
        if (!o || !json_object_object_get_ex(o, "organization-name", &org) ||
            strcmp(json_object_get_string(org), s[0]) != 0)
            abort();
        json_object_put(o);
    } else if (s[5][0]) {
        abort();
    }
    buf_free(&b);
    return 0;
}
