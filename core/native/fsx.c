/*
 * fsx: the few Linux file-system calls Node's fs module lacks and a faithful
 * capture/restore needs:
 *   - utimensat(AT_SYMLINK_NOFOLLOW) with whole nanoseconds (fs.lutimes takes a double,
 *     which cannot hold today's epoch seconds to the nanosecond);
 *   - llistxattr/lgetxattr/lsetxattr (xattrs of the link itself, never its target);
 *   - lseek(SEEK_DATA/SEEK_HOLE) to find the holes of sparse files;
 *   - mknod for character and block devices and fifos;
 *   - openBeneath: open a path below a directory fd without following any symlink on the
 *     way (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
 *     where openat2 is missing (Linux < 5.6, ENOSYS) or refused by a seccomp filter
 *     (EPERM), or the path is longer than PATH_MAX, a walk opens each component with
 *     O_PATH | O_DIRECTORY | O_NOFOLLOW and the last with O_NOFOLLOW, refusing "..");
 *   - fd metadata: fdChown, fdChmod, fdSetxattr, fdUtimesNs act on exactly the inode an
 *     fd holds, also an O_PATH fd (a device node or fifo must not be opened for I/O):
 *     the f* call first, else the same call on /proc/self/fd/N, which names that inode
 *     and nothing else (glibc's fchmodat does the same);
 *   - inode flags (chattr/lsattr: immutable, append-only, nodump, noatime, nocow...):
 *     lgetflags(path) opens the path itself (O_NOFOLLOW, O_NONBLOCK so a fifo never
 *     blocks) for FS_IOC_GETFLAGS; fdGetFlags/fdSetFlags act on an fd, reopening
 *     /proc/self/fd/N read-only when it is an O_PATH fd (an ioctl needs an open file);
 *   - subvolCreate(dirPath, name): a btrfs subvolume in a directory (BTRFS_IOC_SUBVOL_CREATE);
 *   - codec.c: LZ4 (liblz4) and the FastCDC scanner on caller buffers;
 *   - stat.c: lstat into plain numbers (no BigInt).
 * Each function is synchronous, takes plain numbers, strings and (for paths) Buffers, so
 * that file names that are not UTF-8 pass unchanged, and throws an Error carrying `code`
 * (the errno name, as Node's own fs errors do) and `syscall`.
 */
#define _GNU_SOURCE
#include "fsx.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#define PATH_BYTES 4097
#define throw_errno fsx_throw_errno
#define get_args fsx_get_args
#define get_string fsx_get_string
#define NAME_BYTES 256

napi_value fsx_throw_errno(napi_env env, const char *syscall, const char *path) {
  int err = errno;
  const char *code = "EIO";
  switch (err) {
    case ENOENT: code = "ENOENT"; break;
    case EACCES: code = "EACCES"; break;
    case EPERM: code = "EPERM"; break;
    case EEXIST: code = "EEXIST"; break;
    case ENOTDIR: code = "ENOTDIR"; break;
    case ENODATA: code = "ENODATA"; break;
    case ENOTSUP: code = "ENOTSUP"; break;
    case ERANGE: code = "ERANGE"; break;
    case ENXIO: code = "ENXIO"; break;
    case EINVAL: code = "EINVAL"; break;
    case ENOSPC: code = "ENOSPC"; break;
    case E2BIG: code = "E2BIG"; break;
    case ELOOP: code = "ELOOP"; break;
    case EROFS: code = "EROFS"; break;
    case EBADF: code = "EBADF"; break;
    case ENAMETOOLONG: code = "ENAMETOOLONG"; break;
    case EXDEV: code = "EXDEV"; break;
    case EISDIR: code = "EISDIR"; break;
    case EMFILE: code = "EMFILE"; break;
    case ENFILE: code = "ENFILE"; break;
    case ENOSYS: code = "ENOSYS"; break;
    case EAGAIN: code = "EAGAIN"; break;
    case ENOTTY: code = "ENOTTY"; break;
    default: break;
  }
  char message[PATH_BYTES + 128];
  snprintf(message, sizeof message, "%s: %s, %s '%s'", code, strerror(err), syscall, path ? path : "");
  napi_value msg, error, code_value, syscall_value, errno_value;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_create_int32(env, -err, &errno_value);
  napi_set_named_property(env, error, "code", code_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_throw(env, error);
  return NULL;
}

int fsx_get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < want) {
    napi_throw_type_error(env, NULL, "fsx: too few arguments");
    return 0;
  }
  return 1;
}

/* A string (as UTF-8) or a Buffer (its bytes as they are: file names need not be UTF-8). */
int fsx_get_string(napi_env env, napi_value value, char *buf, size_t size) {
  size_t len = 0;
  bool is_buffer = false;
  napi_is_buffer(env, value, &is_buffer);
  if (is_buffer) {
    void *data;
    if (napi_get_buffer_info(env, value, &data, &len) != napi_ok) return 0;
    if (len >= size - 1) {
      napi_throw_range_error(env, "ENAMETOOLONG", "fsx: path or name too long");
      return 0;
    }
    if (memchr(data, 0, len)) {
      napi_throw_type_error(env, NULL, "fsx: a path holds a NUL byte");
      return 0;
    }
    memcpy(buf, data, len);
    buf[len] = 0;
    return 1;
  }
  if (napi_get_value_string_utf8(env, value, buf, size, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "fsx: expected a string or a Buffer");
    return 0;
  }
  if (len >= size - 1) {
    napi_throw_range_error(env, "ENAMETOOLONG", "fsx: path or name too long");
    return 0;
  }
  return 1;
}

static int get_int64(napi_env env, napi_value value, int64_t *out) {
  if (napi_get_value_int64(env, value, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "fsx: expected a number");
    return 0;
  }
  return 1;
}

/* lutimesNs(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec) */
static napi_value lutimes_ns(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  char path[PATH_BYTES];
  int64_t v[4];
  if (!get_args(env, info, 5, argv) || !get_string(env, argv[0], path, sizeof path)) return NULL;
  for (int i = 0; i < 4; i++) if (!get_int64(env, argv[i + 1], &v[i])) return NULL;
  struct timespec ts[2] = {{.tv_sec = v[0], .tv_nsec = v[1]}, {.tv_sec = v[2], .tv_nsec = v[3]}};
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0) return throw_errno(env, "utimensat", path);
  return NULL;
}

/* llistxattr(path): string[] */
static napi_value llistxattr_js(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  char path[PATH_BYTES];
  if (!get_args(env, info, 1, argv) || !get_string(env, argv[0], path, sizeof path)) return NULL;
  ssize_t size = llistxattr(path, NULL, 0);
  if (size < 0) return throw_errno(env, "llistxattr", path);
  char *names = malloc(size > 0 ? size : 1);
  if (!names) return throw_errno(env, "malloc", path);
  size = llistxattr(path, names, size);
  if (size < 0) {
    free(names);
    return throw_errno(env, "llistxattr", path);
  }
  napi_create_array(env, &result);
  uint32_t index = 0;
  for (ssize_t pos = 0; pos < size;) {
    size_t len = strnlen(names + pos, size - pos);
    napi_value name;
    napi_create_string_utf8(env, names + pos, len, &name);
    napi_set_element(env, result, index++, name);
    pos += len + 1;
  }
  free(names);
  return result;
}

/* lgetxattr(path, name): Buffer */
static napi_value lgetxattr_js(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  char path[PATH_BYTES], name[NAME_BYTES];
  if (!get_args(env, info, 2, argv) || !get_string(env, argv[0], path, sizeof path) ||
      !get_string(env, argv[1], name, sizeof name))
    return NULL;
  for (int attempt = 0; attempt < 4; attempt++) {
    ssize_t size = lgetxattr(path, name, NULL, 0);
    if (size < 0) return throw_errno(env, "lgetxattr", path);
    void *data;
    napi_create_buffer(env, size, &data, &result);
    ssize_t got = lgetxattr(path, name, data, size);
    if (got == size) return result;
    if (got >= 0 || errno != ERANGE) {
      if (got >= 0) {
        napi_value copy;
        void *copy_data;
        napi_create_buffer_copy(env, got, data, &copy_data, &copy);
        return copy;
      }
      return throw_errno(env, "lgetxattr", path);
    }
  }
  errno = ERANGE;
  return throw_errno(env, "lgetxattr", path);
}

/* lsetxattr(path, name, value: Buffer) */
static napi_value lsetxattr_js(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[PATH_BYTES], name[NAME_BYTES];
  void *data;
  size_t len;
  if (!get_args(env, info, 3, argv) || !get_string(env, argv[0], path, sizeof path) ||
      !get_string(env, argv[1], name, sizeof name))
    return NULL;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "fsx: expected a Buffer value");
    return NULL;
  }
  if (lsetxattr(path, name, data, len, 0) != 0) return throw_errno(env, "lsetxattr", path);
  return NULL;
}

static napi_value seek_whence(napi_env env, napi_callback_info info, int whence, const char *syscall) {
  napi_value argv[2], result;
  int64_t fd, offset;
  if (!get_args(env, info, 2, argv) || !get_int64(env, argv[0], &fd) || !get_int64(env, argv[1], &offset)) return NULL;
  off_t pos = lseek((int)fd, (off_t)offset, whence);
  if (pos < 0) {
    if (errno == ENXIO) pos = -1; /* no data (or hole) at or after offset */
    else return throw_errno(env, syscall, NULL);
  }
  napi_create_int64(env, (int64_t)pos, &result);
  return result;
}

/* seekData(fd, offset): next data offset, or -1 past the last data */
static napi_value seek_data(napi_env env, napi_callback_info info) { return seek_whence(env, info, SEEK_DATA, "lseek(SEEK_DATA)"); }
/* seekHole(fd, offset): next hole offset (the file size at the end) */
static napi_value seek_hole(napi_env env, napi_callback_info info) { return seek_whence(env, info, SEEK_HOLE, "lseek(SEEK_HOLE)"); }

/* mknod(path, mode, major, minor) */
static napi_value mknod_js(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char path[PATH_BYTES];
  int64_t mode, major_number, minor_number;
  if (!get_args(env, info, 4, argv) || !get_string(env, argv[0], path, sizeof path) || !get_int64(env, argv[1], &mode) ||
      !get_int64(env, argv[2], &major_number) || !get_int64(env, argv[3], &minor_number))
    return NULL;
  if (mknod(path, (mode_t)mode, makedev((unsigned)major_number, (unsigned)minor_number)) != 0) return throw_errno(env, "mknod", path);
  return NULL;
}

/* The fallback of open_beneath: one component at a time, never following a symlink. */
static int walk_beneath(int dirfd, char *path, int flags, mode_t mode) {
  int cur = dirfd;
  char *save = NULL;
  char *part = strtok_r(path, "/", &save);
  if (!part) {
    errno = EINVAL;
    return -1;
  }
  for (;;) {
    char *next = strtok_r(NULL, "/", &save);
    if (strcmp(part, "..") == 0) {
      if (cur != dirfd) close(cur);
      errno = EXDEV; /* what RESOLVE_BENEATH answers */
      return -1;
    }
    int fd;
    if (next) fd = openat(cur, part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    else fd = openat(cur, part, flags | O_NOFOLLOW | O_CLOEXEC, mode);
    int saved = errno;
    if (cur != dirfd) close(cur);
    if (fd < 0) {
      /* A symlink on the way: O_DIRECTORY|O_NOFOLLOW gives ENOTDIR, O_NOFOLLOW gives ELOOP. */
      errno = saved;
      return -1;
    }
    if (!next) return fd;
    cur = fd;
    part = next;
  }
}

/* openBeneath(dirfd, path, flags, mode): fd. `path` is relative to dirfd; no symlink is followed
 * on the way or at the end, and ".." cannot leave dirfd (EXDEV); a symlink anywhere gives ELOOP
 * (openat2) or ELOOP/ENOTDIR (the walk). O_NOFOLLOW and O_CLOEXEC are always added. */
static napi_value open_beneath(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  static char path[1 << 16];
  int64_t dirfd, flags, mode;
  if (!get_args(env, info, 4, argv) || !get_int64(env, argv[0], &dirfd) || !get_string(env, argv[1], path, sizeof path) ||
      !get_int64(env, argv[2], &flags) || !get_int64(env, argv[3], &mode))
    return NULL;
  if (path[0] == '/' || path[0] == 0) {
    errno = EINVAL;
    return throw_errno(env, "openat2", path);
  }
  int fd = -1;
  int use_walk = strlen(path) >= 4096;
  if (!use_walk) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)flags | O_NOFOLLOW | O_CLOEXEC;
    how.mode = (how.flags & (O_CREAT | __O_TMPFILE)) ? (uint64_t)mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    fd = (int)syscall(SYS_openat2, (int)dirfd, path, &how, sizeof how);
    if (fd < 0 && (errno == ENOSYS || errno == EPERM || errno == E2BIG)) use_walk = 1;
    else if (fd < 0 && errno == EAGAIN) use_walk = 1; /* a concurrent rename: the walk decides */
  }
  if (use_walk) {
    fd = walk_beneath((int)dirfd, path, (int)flags, (mode_t)mode);
    if (fd < 0) return throw_errno(env, "openat(beneath)", path);
  } else if (fd < 0) {
    return throw_errno(env, "openat2", path);
  }
  napi_create_int32(env, fd, &result);
  return result;
}

/* The /proc/self/fd/N name of an fd: the inode the fd holds, reached without a path walk. */
static void proc_fd_path(char *buf, size_t size, int fd) { snprintf(buf, size, "/proc/self/fd/%d", fd); }

/* fdChown(fd, uid, gid): fchown, else fchownat(fd, "", AT_EMPTY_PATH) (an O_PATH fd). */
static napi_value fd_chown(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t fd, uid, gid;
  if (!get_args(env, info, 3, argv) || !get_int64(env, argv[0], &fd) || !get_int64(env, argv[1], &uid) || !get_int64(env, argv[2], &gid)) return NULL;
  if (fchown((int)fd, (uid_t)uid, (gid_t)gid) == 0) return NULL;
  if (errno == EBADF && fchownat((int)fd, "", (uid_t)uid, (gid_t)gid, AT_EMPTY_PATH) == 0) return NULL;
  return throw_errno(env, "fchown", NULL);
}

/* fdChmod(fd, mode): fchmod, else chmod of /proc/self/fd/N (an O_PATH fd). */
static napi_value fd_chmod(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t fd, mode;
  char proc[64];
  if (!get_args(env, info, 2, argv) || !get_int64(env, argv[0], &fd) || !get_int64(env, argv[1], &mode)) return NULL;
  if (fchmod((int)fd, (mode_t)mode) == 0) return NULL;
  if (errno == EBADF) {
    proc_fd_path(proc, sizeof proc, (int)fd);
    if (chmod(proc, (mode_t)mode) == 0) return NULL;
  }
  return throw_errno(env, "fchmod", NULL);
}

/* fdSetxattr(fd, name, value): fsetxattr, else setxattr of /proc/self/fd/N (an O_PATH fd). */
static napi_value fd_setxattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t fd;
  char name[NAME_BYTES], proc[64];
  void *data;
  size_t len;
  if (!get_args(env, info, 3, argv) || !get_int64(env, argv[0], &fd) || !get_string(env, argv[1], name, sizeof name)) return NULL;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "fsx: expected a Buffer value");
    return NULL;
  }
  if (fsetxattr((int)fd, name, data, len, 0) == 0) return NULL;
  if (errno == EBADF) {
    proc_fd_path(proc, sizeof proc, (int)fd);
    if (setxattr(proc, name, data, len, 0) == 0) return NULL;
  }
  return throw_errno(env, "fsetxattr", name);
}

/* fdUtimesNs(fd, atimeSec, atimeNsec, mtimeSec, mtimeNsec): futimens, else utimensat of /proc/self/fd/N. */
static napi_value fd_utimes_ns(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int64_t fd, v[4];
  char proc[64];
  if (!get_args(env, info, 5, argv) || !get_int64(env, argv[0], &fd)) return NULL;
  for (int i = 0; i < 4; i++) if (!get_int64(env, argv[i + 1], &v[i])) return NULL;
  struct timespec ts[2] = {{.tv_sec = v[0], .tv_nsec = v[1]}, {.tv_sec = v[2], .tv_nsec = v[3]}};
  if (futimens((int)fd, ts) == 0) return NULL;
  if (errno == EBADF) {
    proc_fd_path(proc, sizeof proc, (int)fd);
    if (utimensat(AT_FDCWD, proc, ts, 0) == 0) return NULL;
  }
  return throw_errno(env, "futimens", NULL);
}

/* FS_IOC_GETFLAGS/SETFLAGS on fd, or on a read-only reopen of it when it is an O_PATH fd. */
static int flags_ioctl(int fd, unsigned long request, int *flags) {
  if (ioctl(fd, request, flags) == 0) return 0;
  if (errno != EBADF) return -1;
  char proc[64];
  proc_fd_path(proc, sizeof proc, fd);
  int real = open(proc, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (real < 0) return -1;
  int rc = ioctl(real, request, flags);
  int saved = errno;
  close(real);
  errno = saved;
  return rc;
}

/* lgetflags(path) -> the inode flags of path itself (never a symlink's target). */
static napi_value lgetflags_js(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  char path[PATH_BYTES];
  int flags = 0;
  if (!get_args(env, info, 1, argv) || !get_string(env, argv[0], path, sizeof path)) return NULL;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return throw_errno(env, "open", path);
  int rc = ioctl(fd, FS_IOC_GETFLAGS, &flags);
  int saved = errno;
  close(fd);
  errno = saved;
  if (rc != 0) return throw_errno(env, "ioctl(FS_IOC_GETFLAGS)", path);
  napi_create_int64(env, (uint32_t)flags, &result);
  return result;
}

/* fdGetFlags(fd) -> the inode flags of the inode fd holds. */
static napi_value fd_get_flags(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int64_t fd;
  int flags = 0;
  if (!get_args(env, info, 1, argv) || !get_int64(env, argv[0], &fd)) return NULL;
  if (flags_ioctl((int)fd, FS_IOC_GETFLAGS, &flags) != 0) return throw_errno(env, "ioctl(FS_IOC_GETFLAGS)", NULL);
  napi_create_int64(env, (uint32_t)flags, &result);
  return result;
}

/* fdSetFlags(fd, flags): sets the inode flags of the inode fd holds. */
static napi_value fd_set_flags(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t fd, value;
  if (!get_args(env, info, 2, argv) || !get_int64(env, argv[0], &fd) || !get_int64(env, argv[1], &value)) return NULL;
  int flags = (int)(uint32_t)value;
  if (flags_ioctl((int)fd, FS_IOC_SETFLAGS, &flags) != 0) return throw_errno(env, "ioctl(FS_IOC_SETFLAGS)", NULL);
  return NULL;
}

/* subvolCreate(dirPath, name): creates the btrfs subvolume `name` in the directory dirPath. */
static napi_value subvol_create(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char dir[PATH_BYTES], name[NAME_BYTES];
  if (!get_args(env, info, 2, argv) || !get_string(env, argv[0], dir, sizeof dir) || !get_string(env, argv[1], name, sizeof name)) return NULL;
  if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
    errno = EINVAL;
    return throw_errno(env, "subvolCreate", name);
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "open", dir);
  struct btrfs_ioctl_vol_args args;
  memset(&args, 0, sizeof args);
  strncpy(args.name, name, BTRFS_PATH_NAME_MAX);
  int rc = ioctl(fd, BTRFS_IOC_SUBVOL_CREATE, &args);
  int saved = errno;
  close(fd);
  errno = saved;
  if (rc != 0) return throw_errno(env, "ioctl(BTRFS_IOC_SUBVOL_CREATE)", name);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"lutimesNs", NULL, lutimes_ns, NULL, NULL, NULL, napi_default, NULL},
      {"llistxattr", NULL, llistxattr_js, NULL, NULL, NULL, napi_default, NULL},
      {"lgetxattr", NULL, lgetxattr_js, NULL, NULL, NULL, napi_default, NULL},
      {"lsetxattr", NULL, lsetxattr_js, NULL, NULL, NULL, napi_default, NULL},
      {"seekData", NULL, seek_data, NULL, NULL, NULL, napi_default, NULL},
      {"seekHole", NULL, seek_hole, NULL, NULL, NULL, napi_default, NULL},
      {"mknod", NULL, mknod_js, NULL, NULL, NULL, napi_default, NULL},
      {"openBeneath", NULL, open_beneath, NULL, NULL, NULL, napi_default, NULL},
      {"fdChown", NULL, fd_chown, NULL, NULL, NULL, napi_default, NULL},
      {"fdChmod", NULL, fd_chmod, NULL, NULL, NULL, napi_default, NULL},
      {"fdSetxattr", NULL, fd_setxattr, NULL, NULL, NULL, napi_default, NULL},
      {"fdUtimesNs", NULL, fd_utimes_ns, NULL, NULL, NULL, napi_default, NULL},
      {"lgetflags", NULL, lgetflags_js, NULL, NULL, NULL, napi_default, NULL},
      {"fdGetFlags", NULL, fd_get_flags, NULL, NULL, NULL, napi_default, NULL},
      {"fdSetFlags", NULL, fd_set_flags, NULL, NULL, NULL, napi_default, NULL},
      {"subvolCreate", NULL, subvol_create, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  fsx_init_codec(env, exports);
  fsx_init_stat(env, exports);
  fsx_pin_malloc(env, exports);
  /* Flags node:fs does not export. */
  napi_value o_path;
  napi_create_int32(env, O_PATH, &o_path);
  napi_set_named_property(env, exports, "O_PATH", o_path);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
