/* decode_fuzz.c — libFuzzer target for pimg's own entry point: bytes → sniff → header gate →
 * strict decode → analysis → corrections → JPEG encode (what POST /enhance runs), plus the
 * multipart parser on the same bytes. Built by `make fuzz` with clang -fsanitize=fuzzer,
 * address,undefined; tests/service/fuzz_replay_test.c replays the seed corpus and every saved
 * crash in `make test`. Only our code is coverage-instrumented (Debian's libvips is not), so
 * libFuzzer steers by pimg's branches; libvips is exercised but not explored. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "image.h"
#include "pimg.h"
#include "pipeline.h"

#ifdef PIMG_FUZZ_MULTIPART
#include "../../service/http_util.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    if (!inited) {
        if (pimg_init("pimg-fuzz", 1, NULL))
            abort();
        inited = 1;
    }
    /* 4 MP keeps one input well under a second; the gate itself is part of what is tested */
    pimg_load_opts lo = {.max_pixels = 4u * 1000 * 1000};
    pimg_image *img = NULL;
    if (pimg_image_load_buffer(data, size, &lo, &img, NULL) == PIMG_OK) {
        pimg_pipeline_opts o;
        pimg_pipeline_opts_default(&o);
        o.analysis_side = 256;
        o.max_side = 256;
        pimg_analysis a;
        if (pimg_analysis_init(&a) == PIMG_OK) {
            void *jpeg = NULL;
            size_t len = 0;
            if (pimg_pipeline_enhance(NULL, img, &o, &a, &jpeg, &len, NULL) == PIMG_OK) {
                if (len < 3 || ((const uint8_t *)jpeg)[0] != 0xFF)
                    abort(); /* success must mean a JPEG */
                cJSON *j = pimg_analysis_to_json(&a, NULL);
                cJSON_Delete(j);
            }
            free(jpeg);
            pimg_analysis_clear(&a);
        }
        pimg_image_free(img);
    }
#ifdef PIMG_FUZZ_MULTIPART
    pimg_part parts[PIMG_MAX_PARTS];
    int n;
    pimg_multipart_parse("multipart/form-data; boundary=b", data, size, parts, PIMG_MAX_PARTS, &n, NULL);
#endif
    return 0;
}
