/* libFuzzer target: auth/dmarc_rua_parse.c's report reader (XML, gzip, zip by
   their first octets). It must never crash or leak, and a report it accepts must
   be consistent: every record has a source IP and begin <= end. */
#include "auth/dmarc_rua_parse.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dmarc_rua_report r;
    char err[256];
    if (dmarc_rua_parse_blob(data, size, &r, err, sizeof err) == 0) {
        if (r.end < r.begin || !r.org_name[0] || !r.report_id[0])
            abort();
        for (size_t i = 0; i < r.nrecords; i++)
            if (!r.records[i].source_ip[0])
                abort();
        dmarc_rua_report_free(&r);
    } else if (!err[0]) {
        abort();
    }
    return 0;
}
