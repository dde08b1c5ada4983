/* The C firmware: loads a model header written by `flow-train export-c` through flow.h, scores
   points, samples, flags anomalies, exercises the error statuses, and measures instructions
   per flow_log_prob (SysTick under QEMU's -icount shift=0), stack and the flow_model's size.
   Prints one result per line through semihosting; the host test (tests/tests/capi.rs) checks
   every number against flow-core's own, bit for bit.

   Lines: `lp <i> <bits>`, `lp_raw <i> <bits>`, `sample <i> <bits>...`,
   `sample_raw <i> <bits>...`, `threshold <per_mille> <bits>|none`, `flag <i> <0|1>`,
   `status <name> <code>`, `<metric> <n>`, then `done`. <bits>: an f32's bits in hex. */
#include <stdbool.h>
#include <stdint.h>

#include "flow.h"
#include "rt.h"
#include MODEL_H

/* The model's array and lengths, named by the build (MODEL_NAME, MODEL_UPPER). */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define MODEL_BYTES MODEL_NAME
#define MODEL_LEN CAT(MODEL_UPPER, _LEN)
#define MODEL_TABLES CAT(MODEL_NAME, _tables)
#define MODEL_TABLES_LEN CAT(MODEL_UPPER, _TABLES_LEN)

/* The Rust firmware's points (flow-firmware-example/src/workload.rs): coordinate j of a
   point is column j % 2. The first INSIDE_POINTS lie inside the spline box. */
static const float POINTS[20][2] = {
    {0.0f, 0.0f},      {0.5f, -0.25f},     {-1.2f, 2.1f},       {2.5f, -2.9f},
    {-0.01f, 0.7f},    {1.75f, 1.75f},     {3.0f, 0.0f},        {-3.0f, 1.0f},
    {0.4f, 3.0f},      {1.0f, -3.0f},      {3.0f, -3.0f},       {-3.0f, -3.0f},
    {2.999999f, -2.999999f}, {3.000001f, 0.5f}, {-0.5f, -3.000001f}, {5.0f, 0.0f},
    {0.0f, -7.5f},     {-12.0f, 40.0f},    {1.0e3f, -1.0e3f},   {-1.0e6f, 2.0f},
};
#define N_POINTS 20
#define INSIDE_POINTS 6
static const float RAW_POINTS[8][2] = {
    {0.1f, -0.2f}, {0.35f, 0.1f}, {-0.6f, -1.1f}, {1.2f, 0.8f},
    {-1.4f, 1.6f}, {2.0f, -2.0f}, {0.0f, 0.0f},   {25.0f, -40.0f},
};
#define N_RAW 8
/* The context of a conditional model: coordinate j is column j % 2 of this. */
static const float CONTEXT[2] = {0.5f, -1.0f};
#define SAMPLE_SEED 0x5EEDF10Eu
#define N_SAMPLES 16
#define REPS 20

static flow_model model;

/* --- output ------------------------------------------------------------------------------ */

static char line[160];
static unsigned pos;

static void put(const char *s)
{
    while (*s && pos < sizeof line - 2) {
        line[pos++] = *s++;
    }
}

static void put_hex(uint32_t v)
{
    char b[10];
    int i;
    b[0] = ' ';
    for (i = 0; i < 8; i++) {
        b[1 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 0xF];
    }
    b[9] = 0;
    put(b);
}

static void put_dec(uint32_t v)
{
    char b[12];
    int i = 11;
    b[i] = 0;
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    b[--i] = ' ';
    put(b + i);
}

static uint32_t bits(float f)
{
    union {
        float f;
        uint32_t u;
    } u;
    u.f = f;
    return u.u;
}

static void start(const char *tag)
{
    pos = 0;
    put(tag);
}

static void send(void)
{
    line[pos++] = '\n';
    line[pos] = 0;
    rt_puts(line);
}

/* `tag idx bits` or `tag idx err <code>`. */
static void result(const char *tag, uint32_t idx, flow_status s, const float *v, uint32_t n)
{
    uint32_t j;
    start(tag);
    put_dec(idx);
    if (s != FLOW_OK) {
        put(" err");
        put_dec((uint32_t)s);
    } else {
        for (j = 0; j < n; j++) {
            put_hex(bits(v[j]));
        }
    }
    send();
}

static void metric(const char *key, uint32_t v)
{
    start(key);
    put_dec(v);
    send();
}

/* --- SysTick instruction counting --------------------------------------------------------- */

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define RELOAD 0x00FFFFFFu

static uint32_t now(void)
{
    return SYST_CVR;
}

static uint32_t since(uint32_t t0)
{
    return (t0 - now()) & RELOAD;
}

/* n iterations of `subs; bne`: exactly 2n instructions. */
__attribute__((noinline)) static void spin(uint32_t n)
{
    __asm__ volatile(".syntax unified\n1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
}

/* Instructions per tick, measured as the Rust firmware does (src/rt.rs): two loop lengths. */
static uint64_t calib_instr, calib_ticks;

static void calibrate(void)
{
    uint32_t t0, a, b;
    SYST_RVR = RELOAD;
    SYST_CVR = 0;
    SYST_CSR = (1u << 2) | 1u; /* core clock, enabled, no interrupt */
    t0 = now();
    spin(100000);
    a = since(t0);
    t0 = now();
    spin(4100000);
    b = since(t0);
    calib_instr = 2ull * (4100000 - 100000);
    calib_ticks = b > a ? b - a : 1; /* never 0: it divides */
    metric("instr_per_tick_milli", (uint32_t)((calib_instr * 1000 + calib_ticks / 2) / calib_ticks));
}

static uint32_t instructions(uint32_t ticks, uint32_t calls)
{
    return (uint32_t)(((uint64_t)ticks * calib_instr + calib_ticks / 2) / calib_ticks / calls);
}

/* --- stack measurement ---------------------------------------------------------------------- */

extern uint32_t _ebss;
#define PAINT 0xCCCCCCCCu

static uint32_t *sp(void)
{
    uint32_t *p;
    __asm__ volatile("mov %0, sp" : "=r"(p));
    return p;
}

/* Paints the free stack below the caller's frame (leaving 64 bytes of margin). */
__attribute__((noinline)) static uint32_t *paint(void)
{
    uint32_t *top = sp() - 16, *p;
    for (p = &_ebss; p < top; p++) {
        *p = PAINT;
    }
    return top;
}

/* Bytes used below `top` since `paint`. */
static uint32_t used_below(uint32_t *top)
{
    uint32_t *p = &_ebss;
    while (p < top && *p == PAINT) {
        p++;
    }
    return (uint32_t)((char *)top - (char *)p);
}

/* --- the workload -------------------------------------------------------------------------- */

static float x[FLOW_MAX_DIM], ctx[FLOW_MAX_CONTEXT > 0 ? FLOW_MAX_CONTEXT : 1];

static void widen(float *out, const float *row, uint32_t n)
{
    uint32_t j;
    for (j = 0; j < n; j++) {
        out[j] = row[j % 2];
    }
}

__attribute__((noinline)) static void score(uint32_t n, uint32_t reps, const float *c)
{
    static volatile float sink;
    (void)sink;
    uint32_t r, i, d = flow_dim(&model);
    float lp;
    for (r = 0; r < reps; r++) {
        for (i = 0; i < n; i++) {
            widen(x, POINTS[i], d);
            (void)flow_log_prob(&model, x, c, &lp);
            sink = lp;
        }
    }
}

static void status(const char *name, flow_status s)
{
    start("status ");
    put(name);
    put_dec((uint32_t)s);
    send();
}

int main(void)
{
    flow_status s;
    flow_rng rng;
    uint32_t i, d, c, t0, t, used, *top;
    static const uint32_t QUANTILES[3] = {1, 10, 50};
    const float *cp;
    float v[FLOW_MAX_DIM], lp;
    bool flag;

    calibrate();
    if (!FLOW_HEADER_MATCHES_LIBRARY()) {
        rt_puts("header-mismatch\n");
        return 1;
    }

    /* Load, timed and measured for its stack. */
    top = paint();
    t0 = now();
    s = flow_model_init(&model, MODEL_BYTES, MODEL_LEN);
    t = since(t0);
    used = used_below(top);
    if (s != FLOW_OK) {
        start("load-error ");
        put(flow_status_str(s));
        send();
        return 1;
    }
    metric("stack_load_bytes", used);
    /* Instructions per load (parse and build), as the Rust firmware times it: 4 loads. */
    t0 = now();
    for (i = 0; i < 4; i++) {
        s = flow_model_init(&model, MODEL_BYTES, MODEL_LEN);
    }
    t = since(t0);
    metric("icount_load", instructions(t, 4));
    s = flow_model_set_tables(&model, MODEL_TABLES, MODEL_TABLES_LEN);
    if (s != FLOW_OK) {
        start("load-error ");
        put(flow_status_str(s));
        send();
        return 1;
    }
    d = flow_dim(&model);
    c = flow_context_dim(&model);
    widen(ctx, CONTEXT, c);
    cp = c > 0 ? ctx : 0;
    start("geometry");
    put_dec(flow_model_kind(&model));
    put_dec(d);
    put_dec(c);
    send();
    metric("flow_model_bytes", (uint32_t)sizeof(flow_model));

    /* Results, compared with the host's. */
    for (i = 0; i < N_POINTS; i++) {
        widen(x, POINTS[i], d);
        s = flow_log_prob(&model, x, cp, &lp);
        result("lp", i, s, &lp, 1);
    }
    for (i = 0; i < N_RAW; i++) {
        widen(x, RAW_POINTS[i], d);
        s = flow_log_prob_raw(&model, x, cp, &lp);
        result("lp_raw", i, s, &lp, 1);
    }
    flow_rng_seed(&rng, SAMPLE_SEED);
    for (i = 0; i < N_SAMPLES; i++) {
        s = flow_sample(&model, &rng, cp, v);
        result("sample", i, s, v, d);
    }
    flow_rng_seed(&rng, SAMPLE_SEED);
    for (i = 0; i < N_SAMPLES; i++) {
        s = flow_sample_raw(&model, &rng, cp, v);
        result("sample_raw", i, s, v, d);
    }
    for (i = 0; i < 3; i++) {
        s = flow_threshold(&model, QUANTILES[i], &lp);
        result("threshold", QUANTILES[i], s, &lp, 1);
    }
    for (i = 0; i < N_RAW; i++) {
        widen(x, RAW_POINTS[i], d);
        s = flow_is_anomaly(&model, x, cp, 10, &flag);
        start("flag");
        put_dec(i);
        if (s == FLOW_OK) {
            put_dec(flag ? 1 : 0);
        } else {
            put(" err");
            put_dec((uint32_t)s);
        }
        send();
    }

    /* Error statuses on the device. */
    {
        static flow_model blank;
        static const uint8_t bad[8] __attribute__((aligned(4))) = {'N', 'F', 'L', 'X', 1, 0, 0, 0};
        widen(x, POINTS[0], d);
        status("null_model", flow_log_prob(0, x, cp, &lp));
        status("null_x", flow_log_prob(&model, 0, cp, &lp));
        status("null_out", flow_log_prob(&model, x, cp, 0));
        status("not_initialized", flow_log_prob(&blank, x, cp, &lp));
        status("bad_magic", flow_model_init(&blank, bad, sizeof bad));
        status("truncated", flow_model_init(&blank, MODEL_BYTES, MODEL_LEN - 1));
        status("misaligned", flow_model_init(&blank, MODEL_BYTES + 1, MODEL_LEN - 1));
        x[0] = x[0] / 0.0f * 0.0f; /* NaN */
        status("nan_input", flow_log_prob(&model, x, cp, &lp));
        status("no_threshold", flow_threshold(&model, 500, &lp));
    }

    /* Instructions per flow_log_prob on the points inside the box, as the Rust firmware
       measures them (REPS passes over its first INSIDE_POINTS points). */
    t0 = now();
    score(INSIDE_POINTS, REPS, cp);
    t = since(t0);
    metric("icount_per_log_prob", instructions(t, REPS * INSIDE_POINTS));
    t0 = now();
    score(N_POINTS, REPS, cp);
    t = since(t0);
    metric("icount_per_log_prob_all", instructions(t, REPS * N_POINTS));
    flow_rng_seed(&rng, SAMPLE_SEED);
    t0 = now();
    for (i = 0; i < 64; i++) {
        (void)flow_sample(&model, &rng, cp, v);
    }
    t = since(t0);
    metric("icount_per_sample", instructions(t, 64));

    top = paint();
    score(N_POINTS, 1, cp);
    metric("stack_log_prob_bytes", used_below(top));
    top = paint();
    (void)flow_sample(&model, &rng, cp, v);
    metric("stack_sample_bytes", used_below(top));
    rt_puts("done\n");
    return 0;
}
