#pragma once
// An Fs and a File that pass every call on to another one: the base of
// wrappers that change a single call (tests: a sync that takes 5 ms, one
// SimFs shared by a store that owns its Fs) without repeating the others.

#include "wal/fs.h"

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace horizon::wal {

class ForwardingFile : public File {
 public:
  explicit ForwardingFile(std::unique_ptr<File> inner) : inner_(std::move(inner)) {}
  Result<void> pwrite(std::string_view data, std::uint64_t offset) override { return inner_->pwrite(data, offset); }
  Result<std::string> pread(std::uint64_t offset, std::size_t size) override { return inner_->pread(offset, size); }
  Result<void> sync() override { return inner_->sync(); }
  Result<std::uint64_t> size() override { return inner_->size(); }
  Result<void> truncate(std::uint64_t size) override { return inner_->truncate(size); }

 private:
  std::unique_ptr<File> inner_;
};

// Does not own `inner`, which must outlive it.
class ForwardingFs : public Fs {
 public:
  explicit ForwardingFs(Fs& inner) : inner_(inner) {}
  Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override {
    return inner_.open(path, mode);
  }
  Result<void> rename(const std::string& from, const std::string& to) override { return inner_.rename(from, to); }
  Result<void> remove(const std::string& path) override { return inner_.remove(path); }
  Result<void> mkdirs(const std::string& path) override { return inner_.mkdirs(path); }
  Result<void> sync_dir(const std::string& path) override { return inner_.sync_dir(path); }
  Result<std::vector<std::string>> list(const std::string& dir) override { return inner_.list(dir); }
  Result<bool> exists(const std::string& path) override { return inner_.exists(path); }

 private:
  Fs& inner_;
};

}  // namespace horizon::wal
