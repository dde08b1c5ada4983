/* Start-up for Cortex-M (mps2-an386's M4F, microbit's M0): the vector table, the reset handler
   (copies .data, zeroes .bss, enables the FPU if there is one, calls main) and semihosting
   for output and exit. */
#include <stddef.h>
#include <stdint.h>

#include "rt.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _stack_top;
int main(void);

/* Semihosting call `op` with argument `arg` (the debugger, here QEMU, services `bkpt 0xab`). */
static uintptr_t semihost(uintptr_t op, const void *arg)
{
    register uintptr_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* The host's standard output: ":tt" opened for writing (SYS_OPEN, mode 4 "w"); 0 until then. */
static uintptr_t out_handle;

void rt_puts(const char *s)
{
    uintptr_t args[3];
    size_t n = 0;
    if (!out_handle) {
        args[0] = (uintptr_t)":tt";
        args[1] = 4;
        args[2] = 3;
        out_handle = semihost(0x01 /* SYS_OPEN */, args);
    }
    while (s[n]) {
        n++;
    }
    args[0] = out_handle;
    args[1] = (uintptr_t)s;
    args[2] = n;
    semihost(0x05 /* SYS_WRITE */, args);
}

void rt_exit(int ok)
{
    /* ADP_Stopped_ApplicationExit (QEMU exits 0) or ADP_Stopped_RunTimeErrorUnknown (1). */
    semihost(0x18 /* SYS_EXIT */, (const void *)(uintptr_t)(ok ? 0x20026 : 0x20023));
    for (;;) {
    }
}

void reset_handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss; dst++) {
        *dst = 0;
    }
#if defined(__ARM_FP)
    /* CPACR: full access to CP10 and CP11 (the FPU). */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    rt_exit(main() == 0);
}

static void fault_handler(void)
{
    rt_puts("fault\n");
    rt_exit(0);
}

/* The vector table: the initial stack pointer, then the exceptions (no interrupts used). */
typedef void (*handler)(void);
__attribute__((section(".vectors"), used)) static const struct {
    const void *stack_top;
    handler exceptions[15];
} vectors = {
    &_stack_top,
    {reset_handler, fault_handler, fault_handler, fault_handler, fault_handler, fault_handler,
     0, 0, 0, 0, fault_handler, fault_handler, 0, fault_handler, fault_handler},
};
