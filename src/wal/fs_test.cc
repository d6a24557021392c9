// Tests of the Fs interface: one conformance suite run against PosixFs and
// SimFs, then the SimFs crash/fault model, DirLock and the failpoints.
#include "wal/fs.h"
#include "wal/harness_test_util.h"

#include "wal/failpoint.h"
#include "wal/sim_fs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace horizon::wal {
namespace {

using failpoint::SimulatedCrash;

// --- helpers ------------------------------------------------------------------

template <class T>
std::string error_text(const Result<T>& r) {
  return r.has_value() ? std::string("(ok)") : r.error().to_string();
}

std::unique_ptr<File> open_ok(Fs& fs, const std::string& path, OpenMode mode) {
  Result<std::unique_ptr<File>> f = fs.open(path, mode);
  if (!f) {
    ADD_FAILURE() << "open " << path << ": " << error_text(f);
    return nullptr;
  }
  return std::move(*f);
}

void write_ok(File& f, std::string_view data, std::uint64_t offset) {
  Result<void> r = f.pwrite(data, offset);
  EXPECT_TRUE(r.has_value()) << error_text(r);
}

void sync_ok(File& f) {
  Result<void> r = f.sync();
  EXPECT_TRUE(r.has_value()) << error_text(r);
}

// Creates (or overwrites from offset 0) `path` with `data` and syncs it.
void put_file(Fs& fs, const std::string& path, std::string_view data) {
  std::unique_ptr<File> f = open_ok(fs, path, OpenMode::create);
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(f->truncate(0).has_value());
  write_ok(*f, data, 0);
  sync_ok(*f);
}

// The whole content of `path`, read through the Fs.
std::string get_file(Fs& fs, const std::string& path) {
  std::unique_ptr<File> f = open_ok(fs, path, OpenMode::read_only);
  if (f == nullptr) return "<missing>";
  Result<std::uint64_t> size = f->size();
  if (!size) return "<size failed>";
  Result<std::string> data = f->pread(0, static_cast<std::size_t>(*size));
  return data ? *data : std::string("<read failed>");
}

std::vector<std::string> list_ok(Fs& fs, const std::string& dir) {
  Result<std::vector<std::string>> r = fs.list(dir);
  EXPECT_TRUE(r.has_value()) << error_text(r);
  return r ? *r : std::vector<std::string>{};
}

bool exists_ok(Fs& fs, const std::string& path) {
  Result<bool> r = fs.exists(path);
  EXPECT_TRUE(r.has_value()) << error_text(r);
  return r && *r;
}

// A fresh directory under /tmp, removed (recursively) at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/eh_fs_test.XXXXXX";
    char* made = ::mkdtemp(tmpl.data());
    if (made == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// --- the conformance suite ------------------------------------------------------

struct PosixEnv {
  static constexpr const char* kName = "PosixFs";
  PosixEnv() {
    Result<std::unique_ptr<Fs>> r = open_posix_fs(dir.path() + "/root");
    if (!r) throw std::runtime_error(r.error().to_string());
    fs = std::move(*r);
  }
  TempDir dir;
  std::unique_ptr<Fs> fs;
};

struct SimEnv {
  static constexpr const char* kName = "SimFs";
  std::unique_ptr<Fs> fs = std::make_unique<SimFs>(42);
};

template <class Env>
class FsTest : public ::testing::Test {
 protected:
  Fs& fs() { return *env_.fs; }
  Env env_;
};

struct EnvNames {
  template <class Env>
  static std::string GetName(int) {
    return Env::kName;
  }
};

using FsEnvs = ::testing::Types<PosixEnv, SimEnv>;

template <class Env>
class FsReadWrite : public FsTest<Env> {};
TYPED_TEST_SUITE(FsReadWrite, FsEnvs, EnvNames);

TYPED_TEST(FsReadWrite, ReadReturnsWhatWasWritten) {
  std::unique_ptr<File> f = open_ok(this->fs(), "a.log", OpenMode::create);
  ASSERT_NE(f, nullptr);
  write_ok(*f, "hello", 0);
  write_ok(*f, "XY", 1);
  EXPECT_EQ(*f->pread(0, 5), "hXYlo");
  EXPECT_EQ(*f->pread(2, 2), "Yl");
  EXPECT_EQ(*f->size(), 5u);
  sync_ok(*f);
}

TYPED_TEST(FsReadWrite, ReadsAreShortOnlyAtEndOfFile) {
  put_file(this->fs(), "a.log", "hello");
  std::unique_ptr<File> f = open_ok(this->fs(), "a.log", OpenMode::read_only);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(*f->pread(3, 100), "lo");
  EXPECT_EQ(*f->pread(5, 10), "");
  EXPECT_EQ(*f->pread(1000, 1), "");
  EXPECT_EQ(*f->pread(0, 0), "");
}

TYPED_TEST(FsReadWrite, WritePastEndFillsTheGapWithZeros) {
  std::unique_ptr<File> f = open_ok(this->fs(), "a.log", OpenMode::create);
  ASSERT_NE(f, nullptr);
  write_ok(*f, "x", 4);
  EXPECT_EQ(*f->size(), 5u);
  EXPECT_EQ(*f->pread(0, 5), std::string("\0\0\0\0x", 5));
}

TYPED_TEST(FsReadWrite, DataIsVisibleThroughANewHandle) {
  put_file(this->fs(), "a.log", "payload");
  EXPECT_EQ(get_file(this->fs(), "a.log"), "payload");
}

TYPED_TEST(FsReadWrite, CreateKeepsAnExistingFile) {
  put_file(this->fs(), "a.log", "abc");
  std::unique_ptr<File> f = open_ok(this->fs(), "a.log", OpenMode::create);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(*f->size(), 3u);
}

TYPED_TEST(FsReadWrite, ReadOnlyHandleRefusesWrites) {
  put_file(this->fs(), "a.log", "abc");
  std::unique_ptr<File> f = open_ok(this->fs(), "a.log", OpenMode::read_only);
  ASSERT_NE(f, nullptr);
  Result<void> r = f->pwrite("x", 0);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::storage_failed);
  EXPECT_EQ(get_file(this->fs(), "a.log"), "abc");
}

TYPED_TEST(FsReadWrite, ReadWriteHandleCanWriteAnExistingFile) {
  put_file(this->fs(), "a.log", "abc");
  std::unique_ptr<File> f = open_ok(this->fs(), "a.log", OpenMode::read_write);
  ASSERT_NE(f, nullptr);
  write_ok(*f, "Z", 2);
  sync_ok(*f);
  EXPECT_EQ(get_file(this->fs(), "a.log"), "abZ");
}

template <class Env>
class FsTruncate : public FsTest<Env> {};
TYPED_TEST_SUITE(FsTruncate, FsEnvs, EnvNames);

TYPED_TEST(FsTruncate, ShrinksAndExtendsWithZeros) {
  put_file(this->fs(), "a.log", "abcdef");
  std::unique_ptr<File> f = open_ok(this->fs(), "a.log", OpenMode::read_write);
  ASSERT_NE(f, nullptr);
  ASSERT_TRUE(f->truncate(2).has_value());
  EXPECT_EQ(*f->size(), 2u);
  EXPECT_EQ(*f->pread(0, 10), "ab");
  ASSERT_TRUE(f->truncate(4).has_value());
  EXPECT_EQ(*f->pread(0, 10), std::string("ab\0\0", 4));
}

template <class Env>
class FsMissingFiles : public FsTest<Env> {};
TYPED_TEST_SUITE(FsMissingFiles, FsEnvs, EnvNames);

TYPED_TEST(FsMissingFiles, OpenWithoutCreateGivesChunkNotFound) {
  for (OpenMode mode : {OpenMode::read_only, OpenMode::read_write}) {
    Result<std::unique_ptr<File>> f = this->fs().open("missing.log", mode);
    ASSERT_FALSE(f.has_value());
    EXPECT_EQ(f.error().code, errc::chunk_not_found);
    EXPECT_EQ(f.error().message, "open missing.log: No such file or directory");
  }
  Result<std::unique_ptr<File>> in_dir = this->fs().open("nodir/missing.log", OpenMode::read_only);
  ASSERT_FALSE(in_dir.has_value());
  EXPECT_EQ(in_dir.error().code, errc::chunk_not_found);
}

TYPED_TEST(FsMissingFiles, CreateInAMissingDirectoryIsStorageFailed) {
  Result<std::unique_ptr<File>> f = this->fs().open("nodir/a.log", OpenMode::create);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code, errc::storage_failed);
  EXPECT_EQ(f.error().message, "open nodir/a.log: No such file or directory");
}

TYPED_TEST(FsMissingFiles, OpeningADirectoryAsAFileFails) {
  ASSERT_TRUE(this->fs().mkdirs("d").has_value());
  for (OpenMode mode : {OpenMode::read_only, OpenMode::read_write, OpenMode::create}) {
    Result<std::unique_ptr<File>> f = this->fs().open("d", mode);
    ASSERT_FALSE(f.has_value());
    EXPECT_EQ(f.error().code, errc::storage_failed) << f.error().message;
  }
}

TYPED_TEST(FsMissingFiles, RenameOfAMissingFileFails) {
  Result<void> r = this->fs().rename("missing", "b");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::storage_failed);
  EXPECT_EQ(r.error().message, "rename missing -> b: No such file or directory");
}

TYPED_TEST(FsMissingFiles, ListOfAMissingDirectoryFails) {
  Result<std::vector<std::string>> r = this->fs().list("nodir");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::storage_failed);
}

TYPED_TEST(FsMissingFiles, SyncDirOfAMissingDirectoryFails) {
  Result<void> r = this->fs().sync_dir("nodir");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::storage_failed);
}

template <class Env>
class FsRename : public FsTest<Env> {};
TYPED_TEST_SUITE(FsRename, FsEnvs, EnvNames);

TYPED_TEST(FsRename, MovesTheFile) {
  put_file(this->fs(), "a.tmp", "new");
  ASSERT_TRUE(this->fs().rename("a.tmp", "a").has_value());
  EXPECT_FALSE(exists_ok(this->fs(), "a.tmp"));
  EXPECT_EQ(get_file(this->fs(), "a"), "new");
}

TYPED_TEST(FsRename, ReplacesAnExistingTarget) {
  put_file(this->fs(), "a", "old");
  put_file(this->fs(), "a.tmp", "new");
  ASSERT_TRUE(this->fs().rename("a.tmp", "a").has_value());
  EXPECT_EQ(get_file(this->fs(), "a"), "new");
  EXPECT_EQ(list_ok(this->fs(), ""), std::vector<std::string>{"a"});
}

TYPED_TEST(FsRename, MovesBetweenDirectories) {
  ASSERT_TRUE(this->fs().mkdirs("x").has_value());
  ASSERT_TRUE(this->fs().mkdirs("y/z").has_value());
  put_file(this->fs(), "x/f", "data");
  ASSERT_TRUE(this->fs().rename("x/f", "y/z/g").has_value());
  EXPECT_FALSE(exists_ok(this->fs(), "x/f"));
  EXPECT_EQ(get_file(this->fs(), "y/z/g"), "data");
}

TYPED_TEST(FsRename, AnOpenFileFollowsItsInode) {
  std::unique_ptr<File> f = open_ok(this->fs(), "a.tmp", OpenMode::create);
  ASSERT_NE(f, nullptr);
  write_ok(*f, "one", 0);
  ASSERT_TRUE(this->fs().rename("a.tmp", "a").has_value());
  write_ok(*f, "two", 3);
  sync_ok(*f);
  EXPECT_EQ(get_file(this->fs(), "a"), "onetwo");
}

TYPED_TEST(FsRename, RenameOntoItselfKeepsTheFile) {
  put_file(this->fs(), "a", "same");
  ASSERT_TRUE(this->fs().rename("a", "a").has_value());
  EXPECT_EQ(get_file(this->fs(), "a"), "same");
}

template <class Env>
class FsRemove : public FsTest<Env> {};
TYPED_TEST_SUITE(FsRemove, FsEnvs, EnvNames);

TYPED_TEST(FsRemove, DeletesTheFile) {
  put_file(this->fs(), "a", "x");
  ASSERT_TRUE(this->fs().remove("a").has_value());
  EXPECT_FALSE(exists_ok(this->fs(), "a"));
  EXPECT_EQ(this->fs().open("a", OpenMode::read_only).error().code, errc::chunk_not_found);
}

TYPED_TEST(FsRemove, RemovingAMissingFileIsNotAnError) {
  EXPECT_TRUE(this->fs().remove("missing").has_value());
  EXPECT_TRUE(this->fs().remove("nodir/missing").has_value());
}

TYPED_TEST(FsRemove, AnOpenFileKeepsWorkingAfterRemove) {
  std::unique_ptr<File> f = open_ok(this->fs(), "a", OpenMode::create);
  ASSERT_NE(f, nullptr);
  write_ok(*f, "abc", 0);
  ASSERT_TRUE(this->fs().remove("a").has_value());
  write_ok(*f, "def", 3);
  EXPECT_EQ(*f->pread(0, 10), "abcdef");
  sync_ok(*f);
  EXPECT_FALSE(exists_ok(this->fs(), "a"));
}

TYPED_TEST(FsRemove, RemovingADirectoryFails) {
  ASSERT_TRUE(this->fs().mkdirs("d").has_value());
  Result<void> r = this->fs().remove("d");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::storage_failed);
}

template <class Env>
class FsList : public FsTest<Env> {};
TYPED_TEST_SUITE(FsList, FsEnvs, EnvNames);

TYPED_TEST(FsList, ReturnsRegularFileNamesSorted) {
  put_file(this->fs(), "b", "");
  put_file(this->fs(), "c", "");
  put_file(this->fs(), "a", "");
  ASSERT_TRUE(this->fs().mkdirs("dir").has_value());
  put_file(this->fs(), "dir/inner", "");
  std::vector<std::string> expected{"a", "b", "c"};
  EXPECT_EQ(list_ok(this->fs(), ""), expected);
  EXPECT_EQ(list_ok(this->fs(), "."), expected);
  EXPECT_EQ(list_ok(this->fs(), "dir"), std::vector<std::string>{"inner"});
}

TYPED_TEST(FsList, EmptyDirectoryListsNothing) {
  ASSERT_TRUE(this->fs().mkdirs("empty").has_value());
  EXPECT_TRUE(list_ok(this->fs(), "empty").empty());
}

template <class Env>
class FsExists : public FsTest<Env> {};
TYPED_TEST_SUITE(FsExists, FsEnvs, EnvNames);

TYPED_TEST(FsExists, SeesFilesAndDirectories) {
  put_file(this->fs(), "f", "x");
  ASSERT_TRUE(this->fs().mkdirs("d").has_value());
  EXPECT_TRUE(exists_ok(this->fs(), "f"));
  EXPECT_TRUE(exists_ok(this->fs(), "d"));
  EXPECT_FALSE(exists_ok(this->fs(), "g"));
  EXPECT_FALSE(exists_ok(this->fs(), "nodir/g"));
  EXPECT_FALSE(exists_ok(this->fs(), "f/g"));
}

template <class Env>
class FsMkdirs : public FsTest<Env> {};
TYPED_TEST_SUITE(FsMkdirs, FsEnvs, EnvNames);

TYPED_TEST(FsMkdirs, CreatesMissingParents) {
  ASSERT_TRUE(this->fs().mkdirs("a/b/c").has_value());
  put_file(this->fs(), "a/b/c/f", "deep");
  EXPECT_EQ(get_file(this->fs(), "a/b/c/f"), "deep");
  EXPECT_TRUE(exists_ok(this->fs(), "a/b"));
}

TYPED_TEST(FsMkdirs, ExistingDirectoryIsNotAnError) {
  ASSERT_TRUE(this->fs().mkdirs("a/b").has_value());
  EXPECT_TRUE(this->fs().mkdirs("a/b").has_value());
  EXPECT_TRUE(this->fs().mkdirs("a").has_value());
  EXPECT_TRUE(this->fs().mkdirs("").has_value());
}

TYPED_TEST(FsMkdirs, AFileInTheWayIsAnError) {
  put_file(this->fs(), "f", "x");
  Result<void> r = this->fs().mkdirs("f/sub");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::storage_failed);
  EXPECT_EQ(r.error().message, "mkdirs f/sub: Not a directory");
}

template <class Env>
class FsSyncDir : public FsTest<Env> {};
TYPED_TEST_SUITE(FsSyncDir, FsEnvs, EnvNames);

TYPED_TEST(FsSyncDir, SyncsTheRootAndSubdirectories) {
  ASSERT_TRUE(this->fs().mkdirs("wal").has_value());
  EXPECT_TRUE(this->fs().sync_dir("").has_value());
  EXPECT_TRUE(this->fs().sync_dir(".").has_value());
  EXPECT_TRUE(this->fs().sync_dir("wal").has_value());
}

TYPED_TEST(FsSyncDir, AFileIsNotADirectory) {
  put_file(this->fs(), "f", "x");
  Result<void> r = this->fs().sync_dir("f");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::storage_failed);
}

template <class Env>
class FsPathValidation : public FsTest<Env> {};
TYPED_TEST_SUITE(FsPathValidation, FsEnvs, EnvNames);

TYPED_TEST(FsPathValidation, RejectsEscapingEmptyAndAbsolutePaths) {
  Fs& fs = this->fs();
  ASSERT_TRUE(fs.mkdirs("a").has_value());
  put_file(fs, "a/x", "x");
  const std::vector<std::string> bad_paths = {"../x", "a/../b", "",   "/abs", "/tmp/x", "a//x",
                                              "./x",  "a/./x",  "a/", ".",    "..",     std::string("a\0b", 3)};
  for (const std::string& bad : bad_paths) {
    SCOPED_TRACE("path \"" + bad + "\"");
    for (OpenMode mode : {OpenMode::read_only, OpenMode::read_write, OpenMode::create}) {
      Result<std::unique_ptr<File>> f = fs.open(bad, mode);
      ASSERT_FALSE(f.has_value());
      EXPECT_EQ(f.error().code, errc::invalid_argument) << f.error().message;
    }
    EXPECT_EQ(fs.rename(bad, "y").error().code, errc::invalid_argument);
    EXPECT_EQ(fs.rename("a/x", bad).error().code, errc::invalid_argument);
    EXPECT_EQ(fs.remove(bad).error().code, errc::invalid_argument);
  }
  for (std::string bad : std::vector<std::string>{"../x", "a/../b", "/abs", "a//b", "a/", ".."}) {
    SCOPED_TRACE("dir \"" + bad + "\"");
    EXPECT_EQ(fs.mkdirs(bad).error().code, errc::invalid_argument);
    EXPECT_EQ(fs.sync_dir(bad).error().code, errc::invalid_argument);
    EXPECT_EQ(fs.list(bad).error().code, errc::invalid_argument);
    EXPECT_EQ(fs.exists(bad).error().code, errc::invalid_argument);
  }
  EXPECT_EQ(get_file(fs, "a/x"), "x");
}

TYPED_TEST(FsPathValidation, MessageNamesTheOperationAndPath) {
  Result<std::unique_ptr<File>> f = this->fs().open("../etc/passwd", OpenMode::read_only);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().message,
            "open \"../etc/passwd\": the path must be relative, with no empty, \".\" or \"..\" component");
}

// --- PosixFs only ----------------------------------------------------------------

TEST(PosixFsSandbox, EscapingPathsCreateNothingOutsideTheRoot) {
  TempDir dir;
  Result<std::unique_ptr<Fs>> fs = open_posix_fs(dir.path() + "/root");
  ASSERT_TRUE(fs.has_value()) << error_text(fs);
  for (const char* bad : {"../escaped", "../root/../escaped", "/tmp/eh_fs_test_escaped_abs"}) {
    EXPECT_FALSE((*fs)->open(bad, OpenMode::create).has_value());
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/escaped"));
  EXPECT_FALSE(std::filesystem::exists("/tmp/eh_fs_test_escaped_abs"));
}

void symlink_checks() {
  TempDir dir;
  std::string root = dir.path() + "/root";
  Result<std::unique_ptr<Fs>> opened = open_posix_fs(root);
  ASSERT_TRUE(opened.has_value()) << error_text(opened);
  Fs& fs = **opened;
  // A file and a directory outside the root, and symlinks to them inside it.
  std::string secret = dir.path() + "/secret";
  std::string outside = dir.path() + "/outside";
  {
    Result<std::unique_ptr<Fs>> outer = open_posix_fs(dir.path());
    ASSERT_TRUE(outer.has_value());
    put_file(**outer, "secret", "top secret");
    ASSERT_TRUE((*outer)->mkdirs("outside").has_value());
  }
  ASSERT_EQ(::symlink(secret.c_str(), (root + "/link").c_str()), 0);
  ASSERT_EQ(::symlink(outside.c_str(), (root + "/dirlink").c_str()), 0);

  for (OpenMode mode : {OpenMode::read_only, OpenMode::read_write, OpenMode::create}) {
    Result<std::unique_ptr<File>> f = fs.open("link", mode);
    ASSERT_FALSE(f.has_value()) << "opened the symlink target";
    EXPECT_EQ(f.error().code, errc::storage_failed);
    EXPECT_NE(f.error().message.find("open link: "), std::string::npos) << f.error().message;
  }
  Result<std::unique_ptr<File>> through_dir = fs.open("dirlink/new", OpenMode::create);
  EXPECT_FALSE(through_dir.has_value());
  EXPECT_FALSE(fs.list("dirlink").has_value());
  EXPECT_FALSE(fs.sync_dir("dirlink").has_value());
  EXPECT_FALSE(fs.rename("dirlink/new", "x").has_value());
  EXPECT_FALSE(fs.mkdirs("dirlink/sub").has_value());
  Result<bool> through_link = fs.exists("dirlink/new");
  EXPECT_TRUE(!through_link.has_value() || !*through_link);
  EXPECT_TRUE(std::filesystem::is_empty(outside));
  // The link itself is not a regular file, so list() skips it.
  EXPECT_TRUE(list_ok(fs, "").empty());
  std::unique_ptr<Fs> outer = std::move(*open_posix_fs(dir.path()));
  EXPECT_EQ(get_file(*outer, "secret"), "top secret");
}


TEST(PosixFsSandbox, SymlinkInTheRootIsNotFollowed) { symlink_checks(); }

// RELIABILITY H: the check above fails when paths are resolved without
// RESOLVE_BENEATH / RESOLVE_NO_SYMLINKS (the follow_symlinks mutant).
TEST(HarnessH, FollowingSymlinksIsCaught) {
  horizon::testing::expect_mutant_caught(mutant::Id::follow_symlinks, symlink_checks);
}

TEST(PosixFsErrors, MessagesNameTheOperationPathAndErrno) {
  TempDir dir;
  Result<std::unique_ptr<Fs>> fs = open_posix_fs(dir.path());
  ASSERT_TRUE(fs.has_value());
  ASSERT_TRUE((*fs)->mkdirs("wal").has_value());
  Result<void> r = (*fs)->rename("wal/a", "wal/b");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "rename wal/a -> wal/b: No such file or directory");
}

TEST(PosixFsRoot, IsCreatedWithParentsAndMode0700) {
  TempDir dir;
  std::string root = dir.path() + "/a/b/data";
  Result<std::unique_ptr<Fs>> fs = open_posix_fs(root);
  ASSERT_TRUE(fs.has_value()) << error_text(fs);
  struct stat st {};
  ASSERT_EQ(::stat(root.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(open_posix_fs(root).has_value()) << "reopening an existing root";
  EXPECT_EQ(open_posix_fs("").error().code, errc::invalid_argument);
}

TEST(PosixFsRoot, FilesAreOnDiskUnderTheRoot) {
  TempDir dir;
  Result<std::unique_ptr<Fs>> fs = open_posix_fs(dir.path());
  ASSERT_TRUE(fs.has_value());
  ASSERT_TRUE((*fs)->mkdirs("wal").has_value());
  put_file(**fs, "wal/0001.log", "abc");
  EXPECT_EQ(std::filesystem::file_size(dir.path() + "/wal/0001.log"), 3u);
}

TEST(DirLockExclusion, SecondAcquireFailsWithNotReadyNamingTheLock) {
  TempDir dir;
  std::string root = dir.path() + "/data";
  Result<std::unique_ptr<DirLock>> first = DirLock::acquire(root);
  ASSERT_TRUE(first.has_value()) << error_text(first);
  Result<std::unique_ptr<DirLock>> second = DirLock::acquire(root);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, errc::not_ready);
  EXPECT_EQ(second.error().message,
            "data directory " + root + " is in use by another Writer (lock " + root + "/LOCK is held)");
}

TEST(DirLockExclusion, SucceedsAgainAfterTheHolderIsDestroyed) {
  TempDir dir;
  std::string root = dir.path() + "/data";
  {
    Result<std::unique_ptr<DirLock>> first = DirLock::acquire(root);
    ASSERT_TRUE(first.has_value()) << error_text(first);
  }
  Result<std::unique_ptr<DirLock>> again = DirLock::acquire(root);
  EXPECT_TRUE(again.has_value()) << error_text(again);
  EXPECT_TRUE(std::filesystem::exists(root + "/LOCK"));
}

// --- SimFs: the crash model ---------------------------------------------------------

constexpr std::uint64_t kSeeds = 300;

// A deterministic byte pattern that differs at every offset.
std::string pattern(std::size_t n, std::size_t start = 0) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (start + i) % 26);
  return s;
}

TEST(SimFsDurability, SyncedDataSurvivesEveryRestartAndTheTailVaries) {
  int changed = 0;
  int extended = 0;
  for (std::uint64_t seed = 0; seed < kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    SimFs fs(seed);
    std::unique_ptr<File> f = open_ok(fs, "log", OpenMode::create);
    ASSERT_NE(f, nullptr);
    ASSERT_TRUE(fs.sync_dir("").has_value());
    // Appends in records of varying size; sync once after the first half.
    std::string all = pattern(4000);
    std::size_t at = 0;
    std::size_t synced = 0;
    for (std::size_t i = 0; at < all.size(); ++i) {
      std::size_t n = std::min<std::size_t>(all.size() - at, 100 + (i * 37) % 300);
      write_ok(*f, std::string_view(all).substr(at, n), at);
      at += n;
      if (at >= all.size() / 2 && synced == 0) {
        sync_ok(*f);
        synced = at;
      }
    }
    fs.restart();
    Result<std::string> after = fs.read_all("log");
    ASSERT_TRUE(after.has_value()) << error_text(after);
    ASSERT_GE(after->size(), synced);
    ASSERT_EQ(after->substr(0, synced), all.substr(0, synced)) << "synced bytes changed";
    ASSERT_LE(after->size(), all.size());
    if (*after != all) ++changed;
    if (after->size() > synced) ++extended;
  }
  EXPECT_GT(changed, 0) << "no seed lost or tore unsynced data";
  EXPECT_GT(extended, 0) << "no seed kept any unsynced data";
}

TEST(SimFsDurability, AnUnsyncedWriteIsDroppedAppliedOrTorn) {
  const std::string base = "base";
  const std::string data = "0123456789abcdef";
  int dropped = 0;
  int applied = 0;
  int torn_prefix = 0;
  int torn_filled = 0;
  for (std::uint64_t seed = 0; seed < kSeeds; ++seed) {
    SimFs fs(seed);
    fs.set_content("f", base);
    std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::read_write);
    ASSERT_NE(f, nullptr);
    write_ok(*f, data, base.size());
    fs.restart();
    std::string after = *fs.read_all("f");
    ASSERT_EQ(after.substr(0, base.size()), base);
    std::string tail = after.substr(base.size());
    if (tail.empty()) {
      ++dropped;
    } else if (tail == data) {
      ++applied;
    } else if (tail == data.substr(0, tail.size())) {
      ++torn_prefix;
    } else {
      ASSERT_EQ(tail.size(), data.size()) << "a filled torn write covers the whole range";
      ++torn_filled;
    }
  }
  EXPECT_GT(dropped, 0);
  EXPECT_GT(applied, 0);
  EXPECT_GT(torn_prefix, 0);
  EXPECT_GT(torn_filled, 0);
}

TEST(SimFsDurability, SyncMakesEverythingWrittenSoFarDurable) {
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    SimFs fs(seed);
    put_file(fs, "f", "abcdef");
    ASSERT_TRUE(fs.sync_dir("").has_value());
    std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::read_write);
    ASSERT_TRUE(f->truncate(3).has_value());
    write_ok(*f, "XYZW", 2);
    sync_ok(*f);
    fs.restart();
    EXPECT_EQ(*fs.read_all("f"), "abXYZW");
  }
}

TEST(SimFsDurability, UnsyncedTruncateMayOrMayNotHappen) {
  bool truncated = false;
  bool kept = false;
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    SimFs fs(seed);
    put_file(fs, "f", "abcdef");
    ASSERT_TRUE(fs.sync_dir("").has_value());
    std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::read_write);
    ASSERT_TRUE(f->truncate(2).has_value());
    fs.restart();
    std::string after = *fs.read_all("f");
    ASSERT_TRUE(after == "ab" || after == "abcdef") << after;
    (after == "ab" ? truncated : kept) = true;
  }
  EXPECT_TRUE(truncated);
  EXPECT_TRUE(kept);
}

TEST(SimFsDirectoryDurability, CreatedFileCanVanishUntilItsDirectoryIsSynced) {
  bool vanished = false;
  bool survived = false;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    SimFs fs(seed);
    put_file(fs, "f", "synced data");  // file synced, directory not
    fs.restart();
    bool there = exists_ok(fs, "f");
    (there ? survived : vanished) = true;
    if (there) {
      EXPECT_EQ(*fs.read_all("f"), "synced data");
    }
  }
  EXPECT_TRUE(vanished) << "no seed lost the unsynced directory entry";
  EXPECT_TRUE(survived);

  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    SimFs fs(seed);
    put_file(fs, "f", "synced data");
    ASSERT_TRUE(fs.sync_dir("").has_value());
    fs.restart();
    ASSERT_TRUE(exists_ok(fs, "f")) << "seed " << seed;
    EXPECT_EQ(*fs.read_all("f"), "synced data");
  }
}

TEST(SimFsDirectoryDurability, MkdirsIsDurableOnlyAfterTheParentIsSynced) {
  bool vanished = false;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    SimFs fs(seed);
    ASSERT_TRUE(fs.mkdirs("wal").has_value());
    put_file(fs, "wal/1.log", "x");
    ASSERT_TRUE(fs.sync_dir("wal").has_value());
    fs.restart();
    if (!exists_ok(fs, "wal")) {
      vanished = true;
      EXPECT_FALSE(exists_ok(fs, "wal/1.log"));
    }
  }
  EXPECT_TRUE(vanished);
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    SimFs fs(seed);
    ASSERT_TRUE(fs.mkdirs("wal").has_value());
    ASSERT_TRUE(fs.sync_dir("").has_value());
    put_file(fs, "wal/1.log", "x");
    ASSERT_TRUE(fs.sync_dir("wal").has_value());
    fs.restart();
    EXPECT_EQ(*fs.read_all("wal/1.log"), "x") << "seed " << seed;
  }
}

TEST(SimFsDirectoryDurability, RenameIsAtomicAndDurableOnlyAfterDirSync) {
  bool undone = false;
  bool done = false;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    SimFs fs(seed);
    fs.set_content("meta", "old");
    put_file(fs, "meta.tmp", "new");
    ASSERT_TRUE(fs.sync_dir("").has_value());
    ASSERT_TRUE(fs.rename("meta.tmp", "meta").has_value());
    fs.restart();
    std::string meta = *fs.read_all("meta");
    if (meta == "old") {
      undone = true;
      EXPECT_EQ(*fs.read_all("meta.tmp"), "new");
    } else {
      done = true;
      EXPECT_EQ(meta, "new");
      EXPECT_FALSE(exists_ok(fs, "meta.tmp"));
    }
  }
  EXPECT_TRUE(undone);
  EXPECT_TRUE(done);

  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    SimFs fs(seed);
    fs.set_content("meta", "old");
    put_file(fs, "meta.tmp", "new");
    ASSERT_TRUE(fs.rename("meta.tmp", "meta").has_value());
    ASSERT_TRUE(fs.sync_dir("").has_value());
    fs.restart();
    EXPECT_EQ(*fs.read_all("meta"), "new") << "seed " << seed;
    EXPECT_FALSE(exists_ok(fs, "meta.tmp"));
  }
}

TEST(SimFsDirectoryDurability, UnsyncedRemoveCanBeUndone) {
  bool back = false;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    SimFs fs(seed);
    fs.set_content("old.log", "kept");
    ASSERT_TRUE(fs.remove("old.log").has_value());
    fs.restart();
    if (exists_ok(fs, "old.log")) {
      back = true;
      EXPECT_EQ(*fs.read_all("old.log"), "kept");
    }
  }
  EXPECT_TRUE(back);
}

TEST(SimFsCrash, CrashAfterOpsThrowsAtExactlyThatOperation) {
  SimFs fs(7);
  std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::create);
  ASSERT_NE(f, nullptr);
  std::uint64_t before = fs.mutating_ops();
  fs.crash_after_ops(2);
  write_ok(*f, "a", 0);
  write_ok(*f, "b", 1);
  EXPECT_EQ(fs.mutating_ops(), before + 2);
  EXPECT_FALSE(fs.crashed());
  EXPECT_THROW((void)f->sync(), SimulatedCrash);
  EXPECT_TRUE(fs.crashed());
  EXPECT_EQ(fs.mutating_ops(), before + 3);
  // Everything throws now, reads included.
  EXPECT_THROW((void)f->pread(0, 1), SimulatedCrash);
  EXPECT_THROW((void)f->size(), SimulatedCrash);
  EXPECT_THROW((void)f->pwrite("c", 2), SimulatedCrash);
  EXPECT_THROW((void)f->truncate(0), SimulatedCrash);
  EXPECT_THROW((void)f->sync(), SimulatedCrash);
  EXPECT_THROW((void)fs.open("f", OpenMode::read_only), SimulatedCrash);
  EXPECT_THROW((void)fs.rename("f", "g"), SimulatedCrash);
  EXPECT_THROW((void)fs.remove("f"), SimulatedCrash);
  EXPECT_THROW((void)fs.mkdirs("d"), SimulatedCrash);
  EXPECT_THROW((void)fs.sync_dir(""), SimulatedCrash);
  EXPECT_THROW((void)fs.list(""), SimulatedCrash);
  EXPECT_THROW((void)fs.exists("f"), SimulatedCrash);
  fs.restart();
  EXPECT_FALSE(fs.crashed());
  EXPECT_TRUE(fs.list("").has_value());
}

TEST(SimFsCrash, CrashedThrowCarriesSimfsAsWhere) {
  SimFs fs(1);
  fs.crash_now();
  try {
    (void)fs.exists("x");
    FAIL() << "no crash";
  } catch (const SimulatedCrash& c) {
    EXPECT_EQ(c.where, "simfs");
  }
}

TEST(SimFsCrash, EveryMutatingOperationKindCanCrash) {
  struct Case {
    const char* name;
    std::function<void(SimFs&, File&)> op;
  };
  std::vector<Case> cases = {
      {"pwrite", [](SimFs&, File& f) { (void)f.pwrite("x", 0); }},
      {"truncate", [](SimFs&, File& f) { (void)f.truncate(1); }},
      {"sync", [](SimFs&, File& f) { (void)f.sync(); }},
      {"open create", [](SimFs& fs, File&) { (void)fs.open("new", OpenMode::create); }},
      {"rename", [](SimFs& fs, File&) { (void)fs.rename("f", "g"); }},
      {"remove", [](SimFs& fs, File&) { (void)fs.remove("f"); }},
      {"mkdirs", [](SimFs& fs, File&) { (void)fs.mkdirs("d/e"); }},
      {"sync_dir", [](SimFs& fs, File&) { (void)fs.sync_dir(""); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SimFs fs(3);
    std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::create);
    ASSERT_NE(f, nullptr);
    fs.crash_after_ops(0);
    EXPECT_THROW(c.op(fs, *f), SimulatedCrash);
    EXPECT_TRUE(fs.crashed());
  }
}

TEST(SimFsCrash, NonMutatingCallsAreNotCounted) {
  SimFs fs(3);
  put_file(fs, "f", "abc");
  ASSERT_TRUE(fs.mkdirs("d").has_value());
  std::uint64_t before = fs.mutating_ops();
  fs.crash_after_ops(0);
  std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::create);  // exists: creates nothing
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(*f->pread(0, 3), "abc");
  EXPECT_EQ(*f->size(), 3u);
  EXPECT_TRUE(fs.list("").has_value());
  EXPECT_TRUE(exists_ok(fs, "f"));
  EXPECT_TRUE(fs.remove("missing").has_value());
  EXPECT_TRUE(fs.mkdirs("d").has_value());
  EXPECT_EQ(fs.mutating_ops(), before);
  EXPECT_FALSE(fs.crashed());
}

TEST(SimFsCrash, CrashedWriteLeavesARandomPrefixInTheVolatileState) {
  const std::string data = "0123456789abcdef";
  bool empty = false;
  bool partial = false;
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    SimFs fs(seed);
    std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::create);
    ASSERT_NE(f, nullptr);
    fs.crash_after_ops(0);
    EXPECT_THROW((void)f->pwrite(data, 0), SimulatedCrash);
    fs.restart_clean();
    std::string after = *fs.read_all("f");
    ASSERT_EQ(after, data.substr(0, after.size())) << "not a prefix";
    if (after.empty()) empty = true;
    if (!after.empty() && after.size() < data.size()) partial = true;
  }
  EXPECT_TRUE(empty);
  EXPECT_TRUE(partial);
}

TEST(SimFsCrash, CrashNowThrowsOnTheNextCallUntilRestart) {
  SimFs fs(5);
  put_file(fs, "f", "x");
  fs.crash_now();
  EXPECT_TRUE(fs.crashed());
  EXPECT_THROW((void)fs.exists("f"), SimulatedCrash);
  EXPECT_THROW((void)fs.list(""), SimulatedCrash);
  // The test helpers still work while crashed.
  EXPECT_EQ(*fs.read_all("f"), "x");
  fs.restart_clean();
  EXPECT_TRUE(exists_ok(fs, "f"));
}

// The intended use: run a workload once to count its operations, then crash
// it at every one of them and check that acknowledged records survive.
TEST(SimFsCrash, EveryCrashPointOfAnAppendAndSyncWorkloadKeepsAcknowledgedRecords) {
  auto workload = [](SimFs& fs, std::vector<std::string>& acked) {
    std::unique_ptr<File> f = open_ok(fs, "log", OpenMode::create);
    if (f == nullptr) return;
    (void)fs.sync_dir("");
    std::uint64_t at = 0;
    for (int i = 0; i < 6; ++i) {
      std::string rec = "record-" + std::to_string(i) + ";";
      if (!f->pwrite(rec, at).has_value()) return;
      at += rec.size();
      if (!f->sync().has_value()) return;
      acked.push_back(rec);
    }
  };
  std::uint64_t total = 0;
  {
    SimFs fs(0);
    std::vector<std::string> acked;
    workload(fs, acked);
    ASSERT_EQ(acked.size(), 6u);
    total = fs.mutating_ops();
  }
  for (std::uint64_t k = 0; k < total; ++k) {
    for (std::uint64_t seed = 0; seed < 5; ++seed) {
      SCOPED_TRACE("crash after " + std::to_string(k) + " ops, seed " + std::to_string(seed));
      SimFs fs(seed);
      fs.crash_after_ops(k);
      std::vector<std::string> acked;
      EXPECT_THROW(workload(fs, acked), SimulatedCrash);
      fs.restart();
      std::string expected;
      for (const std::string& rec : acked) expected += rec;
      Result<std::string> content = fs.read_all("log");
      if (!content) {
        EXPECT_TRUE(acked.empty()) << "the log vanished after records were acknowledged";
        continue;
      }
      EXPECT_EQ(content->substr(0, expected.size()), expected);
    }
  }
}

TEST(SimFsFaults, FailedSyncReturnsTheErrorAndALaterSyncDoesNotPersistTheDroppedData) {
  for (std::uint64_t seed = 0; seed < 32; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    SimFs fs(seed);
    put_file(fs, "f", "AAAA");
    ASSERT_TRUE(fs.sync_dir("").has_value());
    std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::read_write);
    ASSERT_NE(f, nullptr);
    write_ok(*f, "BBBB", 4);
    fs.fail_sync(1, errc::storage_failed);
    Result<void> failed = f->sync();
    ASSERT_FALSE(failed.has_value());
    EXPECT_EQ(failed.error().code, errc::storage_failed);
    EXPECT_EQ(failed.error().message, "fdatasync f: Input/output error");
    // Still visible in the page cache ...
    EXPECT_EQ(*f->pread(0, 8), "AAAABBBB");
    write_ok(*f, "CCCC", 8);
    sync_ok(*f);  // ... and this sync "succeeds"
    fs.restart();
    EXPECT_EQ(*fs.read_all("f"), std::string("AAAA\0\0\0\0CCCC", 12)) << "the lost BBBB became durable";
  }
}

TEST(SimFsFaults, FailSyncCountsSyncsFromNowAndCoversSyncDir) {
  SimFs fs(1);
  std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::create);
  ASSERT_NE(f, nullptr);
  std::uint64_t syncs = fs.syncs();
  fs.fail_sync(2, errc::disk_full);
  sync_ok(*f);
  Result<void> r = fs.sync_dir("");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::disk_full);
  EXPECT_EQ(r.error().message, "fsync .: No space left on device");
  EXPECT_TRUE(fs.sync_dir("").has_value());
  EXPECT_EQ(fs.syncs(), syncs + 2);
  fs.restart();
  EXPECT_TRUE(exists_ok(fs, "f")) << "the retried sync_dir persisted the creation";
}

TEST(SimFsFaults, FailedWriteReturnsTheErrorAfterAStrictPrefix) {
  bool some_prefix = false;
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    SimFs fs(seed);
    std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::create);
    ASSERT_NE(f, nullptr);
    fs.fail_write(1, errc::storage_failed);
    Result<void> r = f->pwrite("abcdef", 0);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, errc::storage_failed);
    EXPECT_EQ(r.error().message, "pwrite f: Input/output error");
    std::string after = *fs.read_all("f");
    ASSERT_LT(after.size(), 6u);
    ASSERT_EQ(after, std::string("abcdef").substr(0, after.size()));
    some_prefix = some_prefix || !after.empty();
    write_ok(*f, "abcdef", 0);  // only the nth write fails
    EXPECT_EQ(*fs.read_all("f"), "abcdef");
  }
  EXPECT_TRUE(some_prefix);
}

TEST(SimFsFaults, FailWriteWithDiskFull) {
  SimFs fs(1);
  std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::create);
  ASSERT_NE(f, nullptr);
  fs.fail_write(2, errc::disk_full);
  write_ok(*f, "a", 0);
  Result<void> r = f->pwrite("b", 1);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::disk_full);
}

TEST(SimFsFaults, CapacityGivesDiskFullAndAppliesNothing) {
  SimFs fs(1);
  fs.set_capacity(10);
  std::unique_ptr<File> a = open_ok(fs, "a", OpenMode::create);
  std::unique_ptr<File> b = open_ok(fs, "b", OpenMode::create);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  write_ok(*a, "12345678", 0);
  Result<void> r = b->pwrite("xyz", 0);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::disk_full);
  EXPECT_EQ(r.error().message, "pwrite b: No space left on device");
  EXPECT_EQ(*b->size(), 0u) << "a failed write applied bytes";
  EXPECT_EQ(a->truncate(20).error().code, errc::disk_full);
  EXPECT_EQ(*a->size(), 8u);
  write_ok(*a, "AB", 2);                    // overwriting does not grow
  ASSERT_TRUE(a->truncate(4).has_value());  // shrinking always works
  write_ok(*b, "xyzuvw", 0);
  EXPECT_EQ(*fs.read_all("a"), "12AB");
  ASSERT_TRUE(fs.remove("a").has_value());
  a.reset();  // the space of a removed file is freed when its last handle closes
  write_ok(*b, "1234", 6);
  fs.clear_capacity();
  write_ok(*b, std::string(100, 'z'), 10);
}

TEST(SimFsRestart, RestartCleanKeepsVolatileData) {
  SimFs fs(9);
  std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::create);
  ASSERT_NE(f, nullptr);
  write_ok(*f, "never synced", 0);
  fs.restart_clean();
  EXPECT_EQ(*fs.read_all("f"), "never synced");
  EXPECT_EQ(get_file(fs, "f"), "never synced");
}

TEST(SimFsRestart, FileHandlesAreStaleAfterRestart) {
  for (bool clean : {false, true}) {
    SimFs fs(9);
    put_file(fs, "f", "x");
    ASSERT_TRUE(fs.sync_dir("").has_value());
    std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::read_write);
    ASSERT_NE(f, nullptr);
    clean ? fs.restart_clean() : fs.restart();
    Result<std::string> r = f->pread(0, 1);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, errc::storage_failed);
    EXPECT_EQ(r.error().message, "file f: stale file handle after restart");
    EXPECT_FALSE(f->pwrite("y", 0).has_value());
    EXPECT_FALSE(f->sync().has_value());
    EXPECT_FALSE(f->size().has_value());
    EXPECT_FALSE(f->truncate(0).has_value());
    EXPECT_EQ(get_file(fs, "f"), "x") << "a new handle works";
  }
}

TEST(SimFsRestart, AFileRemovedWhileOpenIsGoneAfterASyncedRestart) {
  SimFs fs(2);
  put_file(fs, "f", "x");
  ASSERT_TRUE(fs.sync_dir("").has_value());
  std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::read_write);
  ASSERT_TRUE(fs.remove("f").has_value());
  ASSERT_TRUE(fs.sync_dir("").has_value());
  write_ok(*f, "more", 1);
  sync_ok(*f);
  fs.restart();
  EXPECT_FALSE(exists_ok(fs, "f"));
  EXPECT_TRUE(list_ok(fs, "").empty());
}

TEST(SimFsSetup, SetContentIsDurableAtOnce) {
  for (std::uint64_t seed = 0; seed < 16; ++seed) {
    SimFs fs(seed);
    fs.set_content("wal/0001.log", "records");
    fs.restart();
    EXPECT_EQ(*fs.read_all("wal/0001.log"), "records");
    EXPECT_EQ(list_ok(fs, "wal"), std::vector<std::string>{"0001.log"});
  }
}

TEST(SimFsSetup, CorruptOverwritesVolatileAndDurableContent) {
  SimFs fs(4);
  fs.set_content("f", "hello world");
  fs.corrupt("f", 1, "EE");
  EXPECT_EQ(*fs.read_all("f"), "hEElo world");
  fs.restart();
  EXPECT_EQ(*fs.read_all("f"), "hEElo world");
  EXPECT_THROW(fs.corrupt("missing", 0, "x"), std::invalid_argument);
  EXPECT_EQ(fs.read_all("missing").error().code, errc::chunk_not_found);
}

TEST(SimFsSetup, CountersCountMutationsAndSuccessfulSyncs) {
  SimFs fs(4);
  EXPECT_EQ(fs.mutating_ops(), 0u);
  std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::create);  // 1
  write_ok(*f, "x", 0);                                          // 2
  sync_ok(*f);                                                   // 3
  ASSERT_TRUE(fs.sync_dir("").has_value());                      // 4
  ASSERT_TRUE(fs.rename("f", "g").has_value());                  // 5
  EXPECT_EQ(fs.mutating_ops(), 5u);
  EXPECT_EQ(fs.syncs(), 2u);
}

TEST(SimFsDeterminism, TheSameSeedGivesTheSameCrashState) {
  auto run = [](std::uint64_t seed) {
    SimFs fs(seed);
    std::unique_ptr<File> f = open_ok(fs, "f", OpenMode::create);
    for (std::uint64_t i = 0; i < 20; ++i) write_ok(*f, pattern(50, i), i * 50);
    fs.restart();
    Result<std::string> r = fs.read_all("f");
    return r ? *r : std::string("<gone>");
  };
  for (std::uint64_t seed = 0; seed < 10; ++seed) EXPECT_EQ(run(seed), run(seed));
}

TEST(SimFsThreads, ConcurrentWritersOnDifferentFilesAllLand) {
  SimFs fs(11);
  constexpr int kThreads = 4;
  constexpr std::uint64_t kWrites = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&fs, t] {
      std::unique_ptr<File> f = open_ok(fs, "f" + std::to_string(t), OpenMode::create);
      if (f == nullptr) return;
      for (std::uint64_t i = 0; i < kWrites; ++i) {
        write_ok(*f, "x", i);
        if (i % 50 == 0) sync_ok(*f);
        (void)fs.list("");
      }
      sync_ok(*f);
    });
  }
  for (std::thread& th : threads) th.join();
  ASSERT_TRUE(fs.sync_dir("").has_value());
  fs.restart();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(*fs.read_all("f" + std::to_string(t)), std::string(kWrites, 'x'));
}

// --- failpoints -----------------------------------------------------------------

class Failpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    failpoint::disarm_all();
    failpoint::set_crash_mode(failpoint::CrashMode::throw_exception);
    ::unsetenv("EH_FAILPOINT");
  }
  void TearDown() override {
    failpoint::disarm_all();
    ::unsetenv("EH_FAILPOINT");
  }
};

constexpr std::string_view kPoint = "wal.after_write_before_sync";

TEST_F(Failpoint, RegistryHoldsTheDurabilitySteps) {
  const std::vector<std::string>& names = failpoint::registered();
  EXPECT_EQ(names.size(), 9u);
  for (const char* name :
       {"wal.after_write_before_sync", "wal.after_sync_before_ack", "wal.rotate.after_create_before_dirsync",
        "chunk.after_write", "meta.after_tmp_write", "meta.after_rename_before_dirsync", "checkpoint.after_chunk_sync",
        "checkpoint.before_segment_delete", "ship.after_upload_before_mark"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
}

TEST_F(Failpoint, DisarmedHitsAreCountedAndSucceed) {
  std::uint64_t hits = failpoint::hits(kPoint);
  std::uint64_t fired = failpoint::fired(kPoint);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(failpoint::hit(kPoint).has_value());
  EXPECT_EQ(failpoint::hits(kPoint), hits + 3);
  EXPECT_EQ(failpoint::fired(kPoint), fired);
}

TEST_F(Failpoint, ArmedEioFiresOnceByDefault) {
  std::uint64_t fired = failpoint::fired(kPoint);
  ASSERT_TRUE(failpoint::arm(kPoint, failpoint::Action::eio));
  Result<void> r = failpoint::hit(kPoint);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::storage_failed);
  EXPECT_NE(r.error().message.find(kPoint), std::string::npos);
  EXPECT_TRUE(failpoint::hit(kPoint).has_value());
  EXPECT_EQ(failpoint::fired(kPoint), fired + 1);
}

TEST_F(Failpoint, EnospcIsDiskFull) {
  ASSERT_TRUE(failpoint::arm("chunk.after_write", failpoint::Action::enospc));
  EXPECT_EQ(failpoint::hit("chunk.after_write").error().code, errc::disk_full);
}

TEST_F(Failpoint, SkipThenCountSelectsWhichHitsFire) {
  ASSERT_TRUE(failpoint::arm(kPoint, failpoint::Action::eio, /*skip=*/2, /*count=*/2));
  std::vector<bool> failed;
  for (int i = 0; i < 6; ++i) failed.push_back(!failpoint::hit(kPoint).has_value());
  EXPECT_EQ(failed, (std::vector<bool>{false, false, true, true, false, false}));
}

TEST_F(Failpoint, NegativeCountFiresForever) {
  ASSERT_TRUE(failpoint::arm(kPoint, failpoint::Action::eio, 1, -1));
  EXPECT_TRUE(failpoint::hit(kPoint).has_value());
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(failpoint::hit(kPoint).has_value());
}

TEST_F(Failpoint, DisarmAllStopsEveryPoint) {
  ASSERT_TRUE(failpoint::arm(kPoint, failpoint::Action::eio, 0, -1));
  ASSERT_TRUE(failpoint::arm("meta.after_tmp_write", failpoint::Action::crash, 0, -1));
  failpoint::disarm_all();
  EXPECT_TRUE(failpoint::hit(kPoint).has_value());
  EXPECT_TRUE(failpoint::hit("meta.after_tmp_write").has_value());
}

TEST_F(Failpoint, ArmingAnUnknownNameReturnsFalse) {
  EXPECT_FALSE(failpoint::arm("no.such.point", failpoint::Action::eio));
  EXPECT_EQ(failpoint::hits("no.such.point"), 0u);
}

TEST_F(Failpoint, DelaySleepsThenContinues) {
  std::uint64_t fired = failpoint::fired("checkpoint.after_chunk_sync");
  ASSERT_TRUE(failpoint::arm("checkpoint.after_chunk_sync", failpoint::Action::delay, 0, 1, 1));
  EXPECT_TRUE(failpoint::hit("checkpoint.after_chunk_sync").has_value());
  EXPECT_EQ(failpoint::fired("checkpoint.after_chunk_sync"), fired + 1);
}

TEST_F(Failpoint, CrashThrowsSimulatedCrashInThrowMode) {
  ASSERT_TRUE(failpoint::arm("meta.after_rename_before_dirsync", failpoint::Action::crash));
  try {
    (void)failpoint::hit("meta.after_rename_before_dirsync");
    FAIL() << "no crash";
  } catch (const SimulatedCrash& c) {
    EXPECT_EQ(c.where, "meta.after_rename_before_dirsync");
  }
  EXPECT_TRUE(failpoint::hit("meta.after_rename_before_dirsync").has_value());
}

TEST_F(Failpoint, CrashExitsWith137InExitMode) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        failpoint::set_crash_mode(failpoint::CrashMode::exit_process);
        failpoint::arm("checkpoint.before_segment_delete", failpoint::Action::crash);
        (void)failpoint::hit("checkpoint.before_segment_delete");
      },
      ::testing::ExitedWithCode(137), "failpoint checkpoint.before_segment_delete: crash");
}

TEST_F(Failpoint, ArmFromEnvParsesEveryAction) {
  ::setenv("EH_FAILPOINT",
           "wal.after_sync_before_ack=eio; chunk.after_write=crash@3;meta.after_tmp_write=sleep(1);"
           "wal.rotate.after_create_before_dirsync=enospc;",
           1);
  Result<void> armed = failpoint::arm_from_env();
  ASSERT_TRUE(armed.has_value()) << error_text(armed);
  EXPECT_EQ(failpoint::hit("wal.after_sync_before_ack").error().code, errc::storage_failed);
  EXPECT_EQ(failpoint::hit("wal.rotate.after_create_before_dirsync").error().code, errc::disk_full);
  std::uint64_t slept = failpoint::fired("meta.after_tmp_write");
  EXPECT_TRUE(failpoint::hit("meta.after_tmp_write").has_value());
  EXPECT_EQ(failpoint::fired("meta.after_tmp_write"), slept + 1);
  EXPECT_TRUE(failpoint::hit("chunk.after_write").has_value());
  EXPECT_TRUE(failpoint::hit("chunk.after_write").has_value());
  EXPECT_THROW((void)failpoint::hit("chunk.after_write"), SimulatedCrash);
  EXPECT_TRUE(failpoint::hit("chunk.after_write").has_value());
}

TEST_F(Failpoint, ArmFromEnvWithoutTheVariableArmsNothing) {
  EXPECT_TRUE(failpoint::arm_from_env().has_value());
  ::setenv("EH_FAILPOINT", "", 1);
  EXPECT_TRUE(failpoint::arm_from_env().has_value());
  EXPECT_TRUE(failpoint::hit(kPoint).has_value());
}

TEST_F(Failpoint, ArmFromEnvRejectsUnknownNamesAndArmsNothing) {
  ::setenv("EH_FAILPOINT", "wal.after_write_before_sync=eio;no.such.point=crash", 1);
  Result<void> r = failpoint::arm_from_env();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::invalid_argument);
  EXPECT_EQ(r.error().message, "EH_FAILPOINT: unknown failpoint name in \"no.such.point=crash\"");
  EXPECT_TRUE(failpoint::hit(kPoint).has_value()) << "a bad variable must arm nothing";
}

TEST_F(Failpoint, ArmFromEnvRejectsBadActions) {
  for (const char* bad :
       {"chunk.after_write=explode", "chunk.after_write", "chunk.after_write=sleep(x)", "chunk.after_write=sleep(5",
        "chunk.after_write=crash@0", "chunk.after_write=crash@", "chunk.after_write=eio@x", "=crash"}) {
    SCOPED_TRACE(bad);
    ::setenv("EH_FAILPOINT", bad, 1);
    Result<void> r = failpoint::arm_from_env();
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_EQ(r.error().message.rfind("EH_FAILPOINT: ", 0), 0u) << r.error().message;
  }
}

TEST(FailpointDeathTest, HittingAnUnknownNameAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH((void)failpoint::hit("no.such.point"), "no.such.point");
}

}  // namespace
}  // namespace horizon::wal
