/*
 * The publish body's scan (the path without jansson) is static in api.c:
 * this unit includes the file and lends the fuzzer a way in.  Nothing of
 * worker/ is changed for it.
 */

#include "../../worker/api.c"

int fuzz_api_scan_publish(wh_str_t body, wh_str_t *type, wh_str_t *data);

int
fuzz_api_scan_publish(wh_str_t body, wh_str_t *type, wh_str_t *data)
{
    return wh_api_scan_publish(body, type, data);
}
