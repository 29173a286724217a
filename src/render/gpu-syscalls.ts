/** The GPU backend's syscall allowlist: the original vmsilo's 118 entries without io_uring_*
 * (io_uring operations are not seen by seccomp, E.2.5). Sorted. */
export const GPU_SYSCALLS = [
  "accept4", "access", "arch_prctl", "bind", "brk", "capget", "capset", "clock_gettime", "clock_nanosleep",
  "clone", "clone3", "close", "connect", "dup", "dup2", "epoll_create1", "epoll_ctl", "epoll_pwait",
  "epoll_wait", "eventfd2", "execve", "exit", "exit_group", "fallocate", "fcntl", "flock", "fstat",
  "fstatfs", "ftruncate", "futex", "getcwd", "getdents", "getdents64", "getegid", "geteuid", "getgid",
  "getpgrp", "getpid", "getppid", "getrandom", "getresgid", "getresuid", "getsockopt", "gettid",
  "gettimeofday", "getuid", "inotify_add_watch", "inotify_init1", "inotify_rm_watch", "ioctl",
  "kcmp", "kill", "listen", "lseek", "lstat", "madvise", "membarrier", "memfd_create", "mkdir",
  "mknodat", "mmap", "mprotect", "mremap", "munmap", "nanosleep", "newfstatat", "open", "openat",
  "pipe2", "poll", "ppoll", "prctl", "pread64", "prlimit64", "read", "readlink", "readlinkat",
  "readv", "recvfrom", "recvmsg", "rename", "restart_syscall", "rseq", "rt_sigaction", "rt_sigprocmask",
  "rt_sigreturn", "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity", "sched_setaffinity",
  "sched_setscheduler", "sched_yield", "sendmmsg", "sendmsg", "sendto", "set_robust_list", "set_tid_address",
  "setpriority", "setsockopt", "shutdown", "sigaltstack", "socket", "socketpair", "stat", "statfs",
  "statx", "sysinfo", "tgkill", "uname", "unlink", "unlinkat", "userfaultfd", "wait4", "write",
  "writev",
] as const;
