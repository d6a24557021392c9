#include "store/object_store.h"

#include "core/text.h"
#include "wal/fs.h"

#include <fmt/format.h>

#include <filesystem>

namespace horizon::store {
namespace {

// file://: objects are files under the directory, written through the same
// Fs as the WAL (temp file, fdatasync, rename, fsync of the directory).
class FileStore final : public ObjectStore {
 public:
  FileStore(std::unique_ptr<wal::Fs> fs, std::string url) : fs_(std::move(fs)), url_(std::move(url)) {}

  Result<void> put(const std::string& key, std::string_view bytes) override {
    const auto slash = key.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : key.substr(0, slash);
    if (!dir.empty()) {
      if (auto r = fs_->mkdirs(dir); !r) return r.error();
    }
    const std::string tmp = key + ".tmp-put";
    {
      auto f = fs_->open(tmp, wal::OpenMode::create);
      if (!f) return f.error();
      if (auto r = (*f)->truncate(0); !r) return r.error();
      if (auto r = (*f)->pwrite(bytes, 0); !r) return r.error();
      if (auto r = (*f)->sync(); !r) return r.error();
    }
    if (auto r = fs_->rename(tmp, key); !r) return r.error();
    return fs_->sync_dir(dir);
  }

  Result<std::optional<std::string>> get(const std::string& key) override {
    auto f = fs_->open(key, wal::OpenMode::read_only);
    if (!f) {
      if (f.error().code == errc::chunk_not_found) return std::optional<std::string>();
      return f.error();
    }
    auto size = (*f)->size();
    if (!size) return size.error();
    auto data = (*f)->pread(0, static_cast<std::size_t>(*size));
    if (!data) return data.error();
    return std::optional<std::string>(std::move(*data));
  }

  Result<void> remove(const std::string& key) override { return fs_->remove(key); }

  std::string describe() const override { return url_; }

 private:
  std::unique_ptr<wal::Fs> fs_;
  std::string url_;
};

}  // namespace

Result<StoreUrl> parse_store_url(std::string_view url) {
  if (url.starts_with("file://")) {
    std::string path(url.substr(7));
    if (path.empty() || path.front() != '/') {
      return Error::make(errc::invalid_argument,
                         fmt::format("STORE \"{}\": a file:// URL needs an absolute path (file:///dir)",
                                     printable_excerpt(url, 200)));
    }
    std::string normal = std::filesystem::path(path).lexically_normal().string();
    if (normal.size() > 1 && normal.back() == '/') normal.pop_back();
    return StoreUrl{StoreUrl::Kind::file, normal, "file://" + normal};
  }
  if (url.starts_with("s3://")) {
    // Never echo the URL: it carries the secret key.
    const auto at = url.find('@');
    if (at == std::string_view::npos) {
      return Error::make(errc::invalid_argument, "STORE: an s3:// URL is s3://ACCESS_KEY_ID:SECRET@REGION/BUCKET");
    }
    const auto rest = url.substr(at + 1);
    return StoreUrl{StoreUrl::Kind::s3, {}, "s3://" + std::string(rest.substr(0, rest.find('?')))};
  }
  // Show only the scheme: the rest may hold credentials.
  const auto scheme_end = url.find("://");
  return Error::make(errc::invalid_argument,
                     fmt::format("STORE with scheme \"{}\" is not supported: expected file:///path or s3://...",
                                 printable_excerpt(url.substr(0, std::min(scheme_end, std::size_t{20})), 20)));
}

Result<std::unique_ptr<ObjectStore>> open_store(std::string_view url) {
  auto parsed = parse_store_url(url);
  if (!parsed) return parsed.error();
  if (parsed->kind == StoreUrl::Kind::s3) {
    return Error::make(errc::invalid_argument,
                       fmt::format("STORE {}: s3:// stores are not available in this build yet", parsed->canonical));
  }
  auto fs = wal::open_posix_fs(parsed->path);
  if (!fs) return fs.error();
  return std::unique_ptr<ObjectStore>(std::make_unique<FileStore>(std::move(*fs), parsed->canonical));
}

}  // namespace horizon::store
