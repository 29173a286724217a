/*
 * LD_PRELOAD shim: syscall(SYS_openat2, ...) fails with ENOSYS, as systemd makes it fail in a unit
 * with RestrictSUIDSGID= (it cannot filter the flags inside struct open_how); every other call is
 * passed on. share-bind.test.ts runs vmsilo-share-bind's fallback with it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

long syscall(long n, ...) {
  va_list ap;
  va_start(ap, n);
  long a[6];
  for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
  va_end(ap);
  if (n == SYS_openat2) {
    errno = ENOSYS;
    return -1;
  }
  long r;
  register long r10 __asm__("r10") = a[3];
  register long r8 __asm__("r8") = a[4];
  register long r9 __asm__("r9") = a[5];
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a[0]), "S"(a[1]), "d"(a[2]), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  if (r < 0 && r > -4096) {
    errno = (int)-r;
    return -1;
  }
  return r;
}
