/*
 * vmsilo-share-bind SOURCE TARGET PROGRAM [ARG...]
 *
 * Binds the directory SOURCE at TARGET in the caller's mount namespace, then execs PROGRAM. Run as
 * root by the virtiofsd unit (inside its private mount namespace) so that the root virtiofsd only
 * ever serves the directory SOURCE names *now*: SOURCE is opened with openat2(RESOLVE_NO_SYMLINKS),
 * so a symbolic link anywhere in it is refused, and the bind is made from that open file (open_tree
 * + move_mount), never from the path again. A user who owns SOURCE's parent (a share under their
 * home, the shared home under /shared) can then replace SOURCE by a link to /etc as often as they
 * like: either the open sees the link and fails, or it holds the real directory.
 *
 * TARGET must be an existing directory that only root can change (the VM's runtime directory);
 * it is checked without following links as well. Exit status: 1 with a message on stderr when
 * SOURCE or TARGET is refused or the bind fails, 2 on a usage error; otherwise PROGRAM's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif

static const char *prog = "vmsilo-share-bind";

static int fail(const char *what, const char *path) {
  fprintf(stderr, "%s: %s %s: %s\n", prog, what, path, strerror(errno));
  return 1;
}

/*
 * The same walk without openat2: one component at a time from /, each opened with O_NOFOLLOW (a
 * link is refused with ELOOP); ".." is refused too, so the path means what it says.
 */
static int walk_nofollow(const char *path) {
  char buf[4096];
  if (strlen(path) >= sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(buf, path);
  int dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  char *save = NULL;
  for (char *c = strtok_r(buf, "/", &save); c && dir >= 0; c = strtok_r(NULL, "/", &save)) {
    if (!strcmp(c, ".")) continue;
    int next = -1;
    struct stat st;
    if (!strcmp(c, ".."))
      errno = EINVAL;
    else if ((next = openat(dir, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 && errno == ENOTDIR && fstatat(dir, c, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
      errno = ELOOP;
    int saved = errno;
    close(dir);
    errno = saved;
    dir = next;
  }
  return dir;
}

/* An O_PATH descriptor of the directory at `path`, resolved without following any link. */
static int open_dir_nofollow(const char *path) {
  struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
  int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
  /* systemd answers openat2 with ENOSYS where it filters open flags (RestrictSUIDSGID=): it cannot
   * see them inside struct open_how. */
  return fd < 0 && errno == ENOSYS ? walk_nofollow(path) : fd;
}

int main(int argc, char **argv) {
  if (argc < 4 || argv[1][0] != '/' || argv[2][0] != '/' || argv[3][0] != '/') {
    fprintf(stderr, "usage: %s /SOURCE /TARGET /PROGRAM [ARG...]\n", prog);
    return 2;
  }
  const char *source = argv[1], *target = argv[2];
  int src = open_dir_nofollow(source);
  if (src < 0) {
    if (errno == ELOOP) {
      fprintf(stderr, "%s: refusing to share %s: it is, or passes through, a symbolic link; share the directory it points to by its real path\n", prog, source);
      return 1;
    }
    return fail("cannot open the shared directory", source);
  }
  int dst = open_dir_nofollow(target);
  if (dst < 0) return fail("cannot open the mount point", target);
  struct stat st;
  if (fstat(dst, &st) < 0) return fail("cannot stat the mount point", target);
  if (st.st_uid != 0 || (st.st_mode & 022)) {
    fprintf(stderr, "%s: refusing the mount point %s: it must be root's and writable by root only\n", prog, target);
    return 1;
  }
  int tree = (int)syscall(SYS_open_tree, src, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
  if (tree < 0) return fail("cannot clone the mount of", source);
  if (syscall(SYS_move_mount, tree, "", dst, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) return fail("cannot bind the shared directory at", target);
  close(tree);
  close(dst);
  close(src);
  execv(argv[3], argv + 3);
  return fail("cannot run", argv[3]);
}
