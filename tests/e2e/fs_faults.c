// fs_faults.so: libfiu failure points for the file-system calls that
// libfiu's POSIX preload (fiu_posix_preload.so, Debian fiu-utils) does not
// wrap but the Writer uses: openat, the openat2 system call (through
// syscall(2)), renameat, unlinkat, mkdirat and mkdir. RELIABILITY A8 asks for
// failing opens and renames; without this only reads, writes, truncates and
// syncs would fail.
//
// Preloaded after libfiu's preloads (fiu_run_preload.so enables the points
// from FIU_ENABLE, as fiu-run does). Each wrapper asks fiu_fail() whether its
// point fails this time; if so it returns -1 with an errno the call may return
// (the point's failinfo if one was given, else one picked at random from the
// call's list), otherwise it calls the next definition (RTLD_NEXT).
//
// Points: posix/io/oc/openat, posix/io/oc/openat2, posix/io/dir/renameat,
// posix/io/dir/unlinkat, posix/io/dir/mkdirat, posix/io/dir/mkdir.
//
// EH_FS_FAULTS_LOG=PATH appends one line "<call> <errno name>" per injected
// failure to PATH (O_APPEND: safe across threads and processes, and the
// count survives kill -9), so a test can report what it injected.
//
// Test code only: never linked into the product.

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#define FIU_ENABLE 1  // fiu.h turns fiu_fail() into 0 without it
#include <fiu.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*openat_fn)(int, const char*, int, ...);
typedef long (*syscall_fn)(long, ...);
typedef int (*renameat_fn)(int, const char*, int, const char*);
typedef int (*unlinkat_fn)(int, const char*, int);
typedef int (*mkdirat_fn)(int, const char*, mode_t);
typedef int (*mkdir_fn)(const char*, mode_t);

// Calls made by this file (the log) or while a wrapper decides never fail.
static __thread int t_inside = 0;

static void* next_symbol(const char* name) {
  void* f = dlsym(RTLD_NEXT, name);
  if (f == NULL) abort();  // a libc without the call: nothing sensible to do
  return f;
}

// The next definition of a wrapped call, looked up once (threads may race to
// store the same pointer: atomics keep that defined).
#define NEXT(type, name)                                       \
  static type real_ = NULL;                                    \
  type real = __atomic_load_n(&real_, __ATOMIC_ACQUIRE);       \
  if (real == NULL) {                                          \
    real = (type)next_symbol(name);                            \
    __atomic_store_n(&real_, real, __ATOMIC_RELEASE);          \
  }

static const char* errno_name(int e) {
  switch (e) {
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOMEM: return "ENOMEM";
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    case EBUSY: return "EBUSY";
    default: return "other";
  }
}

static void log_injection(const char* call, int e) {
  const char* path = getenv("EH_FS_FAULTS_LOG");
  if (path == NULL || path[0] == '\0') return;
  syscall_fn real_syscall = (syscall_fn)next_symbol("syscall");
  char line[64];
  size_t n = 0;
  for (const char* s = call; *s != '\0' && n < 40; ++s) line[n++] = *s;
  line[n++] = ' ';
  for (const char* s = errno_name(e); *s != '\0' && n < 62; ++s) line[n++] = *s;
  line[n++] = '\n';
  // Raw system calls: nothing here may reach a wrapper (ours or libfiu's).
  long fd = real_syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  (void)real_syscall(SYS_write, fd, line, n);
  (void)real_syscall(SYS_close, fd);
}

// 0: call through; otherwise the errno to fail with.
static int injected(const char* point, const char* call, const int* errnos, size_t count) {
  if (t_inside) return 0;
  t_inside = 1;
  int e = 0;
  if (fiu_fail(point)) {
    intptr_t info = (intptr_t)fiu_failinfo();
    if (info > 0) {
      e = (int)info;
    } else {
      static __thread unsigned seed = 0;
      if (seed == 0) seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)&seed;
      e = errnos[(size_t)rand_r(&seed) % count];
    }
    log_injection(call, e);
  }
  t_inside = 0;
  return e;
}

static const int kOpenErrnos[] = {EINTR, EIO, EMFILE, ENFILE, ENOMEM, ENOSPC, EDQUOT};
static const int kRenameErrnos[] = {EIO, ENOMEM, ENOSPC, EDQUOT};
static const int kUnlinkErrnos[] = {EIO, ENOMEM, EBUSY};
static const int kMkdirErrnos[] = {EIO, ENOMEM, ENOSPC, EDQUOT};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int openat(int dirfd, const char* path, int flags, ...) {
  NEXT(openat_fn, "openat");
  mode_t mode = 0;
  if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
    va_list ap;
    va_start(ap, flags);
    mode = (mode_t)va_arg(ap, int);
    va_end(ap);
  }
  int e = injected("posix/io/oc/openat", "openat", kOpenErrnos, COUNT(kOpenErrnos));
  if (e != 0) {
    errno = e;
    return -1;
  }
  return real(dirfd, path, flags, mode);
}

// openat2 has no libc wrapper in glibc 2.36: the Writer calls syscall(2).
long syscall(long number, ...) {
  NEXT(syscall_fn, "syscall");
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (int i = 0; i < 6; ++i) a[i] = va_arg(ap, long);
  va_end(ap);
  if (number == SYS_openat2) {
    int e = injected("posix/io/oc/openat2", "openat2", kOpenErrnos, COUNT(kOpenErrnos));
    if (e != 0) {
      errno = e;
      return -1;
    }
  }
  return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int renameat(int olddirfd, const char* oldpath, int newdirfd, const char* newpath) {
  NEXT(renameat_fn, "renameat");
  int e = injected("posix/io/dir/renameat", "renameat", kRenameErrnos, COUNT(kRenameErrnos));
  if (e != 0) {
    errno = e;
    return -1;
  }
  return real(olddirfd, oldpath, newdirfd, newpath);
}

int unlinkat(int dirfd, const char* path, int flags) {
  NEXT(unlinkat_fn, "unlinkat");
  int e = injected("posix/io/dir/unlinkat", "unlinkat", kUnlinkErrnos, COUNT(kUnlinkErrnos));
  if (e != 0) {
    errno = e;
    return -1;
  }
  return real(dirfd, path, flags);
}

int mkdirat(int dirfd, const char* path, mode_t mode) {
  NEXT(mkdirat_fn, "mkdirat");
  int e = injected("posix/io/dir/mkdirat", "mkdirat", kMkdirErrnos, COUNT(kMkdirErrnos));
  if (e != 0) {
    errno = e;
    return -1;
  }
  return real(dirfd, path, mode);
}

int mkdir(const char* path, mode_t mode) {
  NEXT(mkdir_fn, "mkdir");
  int e = injected("posix/io/dir/mkdir", "mkdir", kMkdirErrnos, COUNT(kMkdirErrnos));
  if (e != 0) {
    errno = e;
    return -1;
  }
  return real(path, mode);
}
