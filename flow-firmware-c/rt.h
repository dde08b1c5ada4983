/* The firmware's run-time services (startup.c). */
#ifndef RT_H
#define RT_H

/* Prints the NUL-terminated `s` through semihosting. */
void rt_puts(const char *s);
/* Ends the run: QEMU exits with status 0 if `ok`, else 1. */
void rt_exit(int ok);

#endif
