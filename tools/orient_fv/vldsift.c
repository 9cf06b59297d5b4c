/* scratch: VLFeat dense SIFT of the dumped 128px thumbnails, 4 turns, 2 scales -> uint8 */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <time.h>
#include <vl/dsift.h>
#define S 128
int main(int argc, char **argv)
{
    FILE *f = fopen(argv[1], "rb"), *o = fopen(argv[2], "wb");
    static unsigned char buf[S * S * 3 + 4];
    float g[S * S], r[S * S];
    int n = 0, nd = -1;
    double tsum = 0;
    while (fread(buf, sizeof buf, 1, f) == 1) {
        for (int i = 0; i < S * S; i++)
            g[i] = (0.299f * buf[3 * i] + 0.587f * buf[3 * i + 1] + 0.114f * buf[3 * i + 2]) / 255.0f;
        for (int k = 0; k < 4; k++) {
            /* version needing k turns = upright turned clockwise j=(4-k)%4 times */
            int j = (4 - k) % 4;
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    int sx = x, sy = y;
                    /* clockwise turn j: out(x,y) = in(...) */
                    for (int t = 0; t < j; t++) { int nx = sy, ny = S - 1 - sx; sx = nx; sy = ny; }
                    r[y * S + x] = g[sy * S + sx];
                }
            clock_t c0 = clock();
            int tot = 0;
            for (int sc = 0; sc < 2; sc++) {
                int bin = sc ? 6 : 4;
                VlDsiftFilter *d = vl_dsift_new_basic(S, S, 8, bin);
                vl_dsift_set_flat_window(d, VL_TRUE);
                vl_dsift_process(d, r);
                int nk = vl_dsift_get_keypoint_num(d);
                const float *desc = vl_dsift_get_descriptors(d);
                const VlDsiftKeypoint *kp = vl_dsift_get_keypoints(d);
                for (int i = 0; i < nk; i++) {
                    unsigned char q[130];
                    double s = 0;
                    for (int b = 0; b < 128; b++) s += desc[i * 128 + b];
                    for (int b = 0; b < 128; b++) {
                        double v = sqrt(desc[i * 128 + b] / (s + 1e-9)) * 255.0;
                        q[b] = v > 255 ? 255 : (unsigned char)v;
                    }
                    q[128] = (unsigned char)kp[i].x; q[129] = (unsigned char)kp[i].y;
                    fwrite(q, 130, 1, o);
                }
                tot += nk;
                vl_dsift_delete(d);
            }
            tsum += (double)(clock() - c0) / CLOCKS_PER_SEC;
            if (nd < 0) { nd = tot; fprintf(stderr, "%d keypoints per image\n", nd); }
        }
        n++;
    }
    fclose(o);
    fprintf(stderr, "%d images, dsift %.2f ms per turn\n", n, 1000 * tsum / (4 * n));
    return 0;
}
