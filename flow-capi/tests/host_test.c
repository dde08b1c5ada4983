/* Host C test of flow.h, compiled with the system cc against the host's libflow_capi.a by
   tests/tests/capi.rs, which gives it the files and checks every printed number against
   flow-core's own, bit for bit, and every status against the one expected.

   host_test <model file> <points file> <seed>
   The points file: little-endian f32 rows of flow_dim + flow_context_dim values (x, then
   the context). Prints `geometry <kind> <dim> <context>`, then per row `lp <i> <bits>` and
   `lp_raw <i> <bits>` (or `... err <code>`), `sample <i> <bits>...`, `sample_raw ...`,
   `threshold <per_mille> <bits>|err <code>`, `flag <i> <0|1>|err <code>`, and
   `status <name> <code>` for the error paths; `init <code>` alone if the load fails. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* The whole file at `path` in 4-byte aligned memory (malloc's); its length in *len. */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b;
    long n;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    b = malloc((size_t)n + 8);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void result(const char *tag, size_t i, flow_status s, const float *v, uint32_t n)
{
    uint32_t j;
    printf("%s %zu", tag, i);
    if (s != FLOW_OK) {
        printf(" err %d\n", (int)s);
        return;
    }
    for (j = 0; j < n; j++) {
        printf(" %08x", (unsigned)bits(v[j]));
    }
    printf("\n");
}

static void status(const char *name, flow_status s)
{
    printf("status %s %d\n", name, (int)s);
}

int main(int argc, char **argv)
{
    flow_model m;
    flow_rng rng;
    size_t len, plen, rows, i, row;
    uint8_t *bytes, *copy;
    float *pts, out[FLOW_MAX_DIM], lp;
    const float *ctx;
    uint32_t d, c;
    flow_status s;
    bool flag;
    static const uint32_t Q[4] = {1, 10, 50, 500};

    if (argc != 4) {
        fprintf(stderr, "usage: host_test <model> <points> <seed>\n");
        return 2;
    }
    if (!FLOW_HEADER_MATCHES_LIBRARY()) {
        printf("header-mismatch %zu %zu\n", flow_model_size(), sizeof(flow_model));
        return 1;
    }
    bytes = read_file(argv[1], &len);
    s = flow_model_init(&m, bytes, len);
    if (s != FLOW_OK) {
        printf("init %d %s\n", (int)s, flow_status_str(s));
        return 0;
    }
    d = flow_dim(&m);
    c = flow_context_dim(&m);
    printf("geometry %u %u %u\n", (unsigned)flow_model_kind(&m), (unsigned)d, (unsigned)c);
    pts = (float *)read_file(argv[2], &plen);
    row = d + c;
    rows = plen / (4 * row);
    for (i = 0; i < rows; i++) {
        const float *x = pts + i * row;
        ctx = c ? x + d : NULL;
        result("lp", i, flow_log_prob(&m, x, ctx, &lp), &lp, 1);
        result("lp_raw", i, flow_log_prob_raw(&m, x, ctx, &lp), &lp, 1);
        s = flow_is_anomaly(&m, x, ctx, 10, &flag);
        if (s == FLOW_OK) {
            printf("flag %zu %d\n", i, flag ? 1 : 0);
        } else {
            printf("flag %zu err %d\n", i, (int)s);
        }
    }
    ctx = c ? pts + d : NULL; /* the first row's context */
    flow_rng_seed(&rng, strtoull(argv[3], NULL, 0));
    for (i = 0; i < 8; i++) {
        result("sample", i, flow_sample(&m, &rng, ctx, out), out, d);
    }
    flow_rng_seed(&rng, strtoull(argv[3], NULL, 0));
    for (i = 0; i < 8; i++) {
        result("sample_raw", i, flow_sample_raw(&m, &rng, ctx, out), out, d);
    }
    for (i = 0; i < 4; i++) {
        result("threshold", Q[i], flow_threshold(&m, Q[i], &lp), &lp, 1);
    }

    /* The error paths. */
    status("null_model", flow_log_prob(NULL, pts, ctx, &lp));
    status("null_x", flow_log_prob(&m, NULL, ctx, &lp));
    status("null_out", flow_log_prob(&m, pts, ctx, NULL));
    status("null_rng", flow_sample(&m, NULL, ctx, out));
    status("null_threshold_out", flow_threshold(&m, 10, NULL));
    status("null_flag_out", flow_is_anomaly(&m, pts, ctx, 10, NULL));
    status("null_init_model", flow_model_init(NULL, bytes, len));
    status("null_init_bytes", flow_model_init(&m, NULL, len));
    /* m was marked uninitialized by the failed init above; load it again. */
    status("reload", flow_model_init(&m, bytes, len));
    if (c) {
        status("null_context", flow_log_prob(&m, pts, NULL, &lp));
    } else {
        status("context_without_model_context", flow_log_prob(&m, pts, pts, &lp));
    }
    {
        float nan_x[FLOW_MAX_DIM + FLOW_MAX_CONTEXT];
        memcpy(nan_x, pts, 4 * row);
        nan_x[0] = NAN;
        status("nan_input", flow_log_prob(&m, nan_x, c ? nan_x + d : NULL, &lp));
        memcpy(nan_x, pts, 4 * row);
        nan_x[d - 1] = INFINITY;
        status("inf_input", flow_log_prob(&m, nan_x, c ? nan_x + d : NULL, &lp));
    }
    {
        flow_model blank;
        memset(&blank, 0, sizeof blank);
        status("not_initialized", flow_log_prob(&blank, pts, ctx, &lp));
        status("not_initialized_dim", (flow_status)flow_dim(&blank));
    }
    copy = malloc(len + 8);
    memcpy(copy, bytes, len);
    status("truncated_header", flow_model_init(&m, copy, 3));
    status("truncated", flow_model_init(&m, copy, len - 1));
    copy[len / 2] ^= 0x10;
    status("bit_flipped", flow_model_init(&m, copy, len));
    memcpy(copy, bytes, len);
    copy[0] = 'X';
    status("bad_magic", flow_model_init(&m, copy, len));
    memcpy(copy + 1, bytes, len);
    status("misaligned", flow_model_init(&m, copy + 1, len));
    status("null_tables", flow_model_set_tables(&m, NULL, 0));
    status("reload_after_failures", flow_model_init(&m, bytes, len));
    status("bad_tables", flow_model_set_tables(&m, bytes, 8));
    printf("status_text %s\n", flow_status_str(FLOW_ERR_CHECKSUM));
    printf("status_text_unknown %s\n", flow_status_str((flow_status)999));
    free(copy);
    free(pts);
    free(bytes);
    return 0;
}
