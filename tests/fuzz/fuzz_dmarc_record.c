/* libFuzzer target: auth/dmarc_record.c on bytes from DNS. A record that parses
   keeps its lists within bounds, its URIs terminated and its notes terminated. */
#include "auth/dmarc_record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dmarc_record r;
    enum dmarc_record_status st = dmarc_record_parse((const char *)data, size, &r);
    if ((st == DMARC_REC_OK) != dmarc_record_is_dmarc((const char *)data, size))
        abort();
    if (r.nrua > DMARC_URI_MAX || r.nruf > DMARC_URI_MAX || strlen(r.notes) >= DMARC_NOTES_MAX)
        abort();
    for (size_t i = 0; i < r.nrua; i++)
        if (strlen(r.rua[i].uri) > DMARC_URI_LEN || !strchr(r.rua[i].uri, ':'))
            abort();
    if (r.policy_state != DMARC_POLICY_OK && (r.p != DMARC_P_NONE || r.sp != DMARC_P_NONE))
        abort();
    char fo[16];
    dmarc_fo_text(r.fo, fo, sizeof fo);
    return 0;
}
