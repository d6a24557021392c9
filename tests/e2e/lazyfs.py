#!/usr/bin/python3
"""A FUSE pass-through file system that can forget everything not synced,
as a power loss would (RELIABILITY A4, after LazyFS): a small model of the
page cache in front of a disk, for testing the real binary.

Usage: lazyfs.py BACKING MOUNTPOINT   (root; Debian python3-fusepy, libfuse2)

Every operation goes straight to BACKING (what a running process sees), and
the file system remembers what would survive a power loss:
- a file's bytes as of its last fsync/fdatasync (a file never synced: empty);
- a directory's entries as of its last fsync (a new name that was never
  made durable by an fsync of its directory disappears; a name removed or
  renamed away without one comes back, pointing at what it pointed to).
Everything present when it starts counts as synced.

`touch MOUNTPOINT/.lazyfs-drop` (a utime on that name) is the power loss:
BACKING is rebuilt from the durable state alone. Only do it while no
process has files open under the mount (e.g. after kill -9 of the Writer).
Strict POSIX: no ext4 heuristics (such as rename-over committing data).
Single-threaded (nothreads): simple, and fast enough for a smoke test.
"""
import errno
import os
import shutil
import stat
import sys
import threading

from fusepy import FUSE, FuseOSError, Operations

DROP = "/.lazyfs-drop"


class LazyFS(Operations):
    def __init__(self, backing):
        self.backing = os.path.realpath(backing)
        self.mu = threading.Lock()
        self.content = {}  # inode -> bytes as of its last sync
        self.entries = {}  # directory inode -> {name: inode} as of its last sync
        self.kinds = {}  # inode -> "dir" | "file"
        self.drops = 0
        self.scan()

    # -- the durable state
    def full(self, path):
        return os.path.join(self.backing, path.lstrip("/"))

    def scan(self):
        """Everything in BACKING is durable (at the start, after a drop)."""
        self.content, self.entries, self.kinds = {}, {}, {}
        for root, dirs, files in os.walk(self.backing):
            ino = os.lstat(root).st_ino
            self.kinds[ino] = "dir"
            self.entries[ino] = {}
            for name in dirs + files:
                st = os.lstat(os.path.join(root, name))
                self.entries[ino][name] = st.st_ino
                if stat.S_ISDIR(st.st_mode):
                    self.kinds[st.st_ino] = "dir"
                elif stat.S_ISREG(st.st_mode):
                    self.kinds[st.st_ino] = "file"
                    with open(os.path.join(root, name), "rb") as f:
                        self.content[st.st_ino] = f.read()

    def sync_file(self, fh):
        st = os.fstat(fh)
        self.kinds[st.st_ino] = "file"
        # Through a read-only descriptor of the same file (fh may be
        # write-only; the name may be gone).
        rfd = os.open(f"/proc/self/fd/{fh}", os.O_RDONLY)
        try:
            parts, offset = [], 0
            while offset < st.st_size:
                b = os.pread(rfd, st.st_size - offset, offset)
                if not b:
                    break
                parts.append(b)
                offset += len(b)
            self.content[st.st_ino] = b"".join(parts)
        finally:
            os.close(rfd)

    def sync_dir(self, path):
        full = self.full(path)
        ino = os.lstat(full).st_ino
        self.kinds[ino] = "dir"
        names = {}
        for name in os.listdir(full):
            st = os.lstat(os.path.join(full, name))
            names[name] = st.st_ino
            self.kinds.setdefault(st.st_ino, "dir" if stat.S_ISDIR(st.st_mode) else "file")
        self.entries[ino] = names

    def drop(self):
        """BACKING := what a power loss now would leave."""
        root_ino = os.lstat(self.backing).st_ino
        staged = self.backing + ".lazyfs-staged"
        shutil.rmtree(staged, ignore_errors=True)

        def build(dir_ino, target, seen):
            os.makedirs(target, exist_ok=True)
            for name, ino in self.entries.get(dir_ino, {}).items():
                path = os.path.join(target, name)
                if self.kinds.get(ino) == "dir":
                    if ino not in seen:
                        build(ino, path, seen | {ino})
                else:
                    with open(path, "wb") as f:
                        f.write(self.content.get(ino, b""))

        build(root_ino, staged, {root_ino})
        for name in os.listdir(self.backing):
            p = os.path.join(self.backing, name)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        for name in os.listdir(staged):
            os.rename(os.path.join(staged, name), os.path.join(self.backing, name))
        os.rmdir(staged)
        self.drops += 1
        self.scan()

    # -- FUSE operations (pass-through)
    def getattr(self, path, fh=None):
        if path == DROP:
            return {"st_mode": stat.S_IFREG | 0o600, "st_nlink": 1, "st_size": 0}
        try:
            st = os.lstat(self.full(path))
        except OSError as e:
            raise FuseOSError(e.errno)
        return {k: getattr(st, k) for k in ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink",
                                            "st_size", "st_uid", "st_ino")}

    def utimens(self, path, times=None):
        with self.mu:
            if path == DROP:
                self.drop()
                return 0
            os.utime(self.full(path), times=times)
            return 0

    def access(self, path, mode):
        if path != DROP and not os.access(self.full(path), mode):
            raise FuseOSError(errno.EACCES)

    def chmod(self, path, mode):
        return os.chmod(self.full(path), mode)

    def chown(self, path, uid, gid):
        return os.chown(self.full(path), uid, gid)

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self.full(path))

    def readlink(self, path):
        return os.readlink(self.full(path))

    def mknod(self, path, mode, dev):
        raise FuseOSError(errno.EPERM)

    def mkdir(self, path, mode):
        return self.call(os.mkdir, self.full(path), mode)

    def rmdir(self, path):
        return self.call(os.rmdir, self.full(path))

    def unlink(self, path):
        return self.call(os.unlink, self.full(path))

    def symlink(self, target, source):
        return self.call(os.symlink, source, self.full(target))

    def rename(self, old, new):
        return self.call(os.rename, self.full(old), self.full(new))

    def link(self, target, source):
        return self.call(os.link, self.full(source), self.full(target))

    def statfs(self, path):
        sv = os.statvfs(self.full(path))
        return {k: getattr(sv, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
                                            "f_files", "f_flag", "f_frsize", "f_namemax")}

    def open(self, path, flags):
        return self.call(os.open, self.full(path), flags & ~os.O_CREAT)

    def create(self, path, mode, fi=None):
        return self.call(os.open, self.full(path), os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode)

    def read(self, path, length, offset, fh):
        return self.call(os.pread, fh, length, offset)

    def write(self, path, data, offset, fh):
        return self.call(os.pwrite, fh, data, offset)

    def truncate(self, path, length, fh=None):
        if fh is not None:
            return self.call(os.ftruncate, fh, length)
        return self.call(os.truncate, self.full(path), length)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return self.call(os.close, fh)

    def fsync(self, path, datasync, fh):
        with self.mu:
            self.sync_file(fh)
        return 0

    def opendir(self, path):
        return 0

    def releasedir(self, path, fh):
        return 0

    def fsyncdir(self, path, datasync, fh):
        with self.mu:
            self.sync_dir(path)
        return 0

    @staticmethod
    def call(fn, *args):
        try:
            r = fn(*args)
        except OSError as e:
            raise FuseOSError(e.errno)
        return 0 if r is None else r


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    backing, mountpoint = sys.argv[1:3]
    fs = LazyFS(backing)
    # No kernel caching of data or names: after a drop, the next start must
    # see the rebuilt BACKING, not what the kernel remembered.
    FUSE(fs, mountpoint, foreground=True, nothreads=True, direct_io=True, attr_timeout=0, entry_timeout=0,
         negative_timeout=0, ac_attr_timeout=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
