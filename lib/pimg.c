/* pimg.c — libvips start-up policy shared by the CLI, the server and the tests. */
#include "pimg.h"

#include <vips/vips.h>

/* lib/ never prints: libvips' warnings (e.g. "premature end of JPEG") become errors through
 * fail_on where they matter and are dropped otherwise. */
static void drop_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer data)
{
    (void)domain;
    (void)level;
    (void)msg;
    (void)data;
}

pimg_status pimg_init(const char *argv0, int vips_threads, pimg_error *err)
{
    if (VIPS_INIT(argv0 ? argv0 : "pimg"))
        return pimg_error_vips(err, PIMG_ERR_INTERNAL, "libvips init failed");
    /* ImageMagick, PDF, SVG, JXL and friends are flagged untrusted: pimg never decodes them. */
    vips_block_untrusted_set(TRUE);
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO, drop_log, NULL);
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    if (vips_threads > 0)
        vips_concurrency_set(vips_threads);
    return PIMG_OK;
}

void pimg_shutdown(void)
{
    vips_shutdown();
}
