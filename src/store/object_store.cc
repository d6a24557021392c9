#include "store/object_store.h"

#include "core/text.h"
#include "store/memory_store.h"
#include "store/s3_internal.h"
#include "store/s3_store.h"
#include "store/sigv4.h"
#include "store/store_internal.h"
#include "wal/fs.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <system_error>
#include <unistd.h>

namespace horizon::store {
namespace {

bool is_key_char(char c) { return c >= 0x21 && c <= 0x7E; }

// One '/'-separated component of a key (not the last partial one of a prefix).
bool valid_component(std::string_view c) { return !c.empty() && c != "." && c != ".."; }

Error bad_key(std::string_view key, std::string_view why) {
  return Error::make(errc::invalid_argument, fmt::format("object key \"{}\": {}", printable_excerpt(key, 120), why));
}

}  // namespace

Result<void> validate_key(std::string_view key) {
  if (key.empty()) return bad_key(key, "empty");
  if (key.size() > kMaxKeyBytes) return bad_key(key, fmt::format("longer than {} bytes", kMaxKeyBytes));
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (!is_key_char(key[i])) {
      return bad_key(key,
                     fmt::format("byte {} is not printable ASCII (spaces and control characters are not allowed)", i));
    }
  }
  if (key.front() == '/') return bad_key(key, "must be relative (no leading '/')");
  std::size_t start = 0;
  for (;;) {
    const auto slash = key.find('/', start);
    const auto part = key.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!valid_component(part)) return bad_key(key, "has an empty, \".\" or \"..\" component");
    if (part.size() > kMaxKeyComponentBytes) {
      return bad_key(key, fmt::format("has a component longer than {} bytes", kMaxKeyComponentBytes));
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return {};
}

Result<void> validate_prefix(std::string_view prefix) {
  if (prefix.empty()) return {};
  auto bad = [&](std::string_view why) {
    return Error::make(errc::invalid_argument,
                       fmt::format("list prefix \"{}\": {}", printable_excerpt(prefix, 120), why));
  };
  if (prefix.size() > kMaxKeyBytes) return bad(fmt::format("longer than {} bytes", kMaxKeyBytes));
  if (!std::all_of(prefix.begin(), prefix.end(), is_key_char)) return bad("not printable ASCII without spaces");
  if (prefix.front() == '/') return bad("must be relative (no leading '/')");
  std::size_t start = 0;
  for (auto slash = prefix.find('/'); slash != std::string_view::npos; slash = prefix.find('/', start)) {
    if (!valid_component(prefix.substr(start, slash - start))) return bad("has an empty, \".\" or \"..\" component");
    start = slash + 1;
  }
  return {};
}

Result<std::size_t> detail::check_list_args(std::string_view prefix, std::string_view continuation_token,
                                            std::size_t max_keys) {
  if (auto p = validate_prefix(prefix); !p) return p.error();
  if (max_keys == 0) return Error::make(errc::invalid_argument, "list: max_keys must be at least 1");
  if (continuation_token.size() > 4 * kMaxKeyBytes ||
      !std::all_of(continuation_token.begin(), continuation_token.end(), is_key_char)) {
    return Error::make(errc::invalid_argument,
                       fmt::format("list: continuation token \"{}\" is not one this store returned",
                                   printable_excerpt(continuation_token, 80)));
  }
  return std::min(max_keys, kMaxListKeys);
}

// --- defaults for implementations that only have put/get/remove ---

Result<std::optional<std::string>> ObjectStore::get_range(const std::string& key, std::uint64_t offset,
                                                          std::uint64_t length) {
  auto all = get(key);
  if (!all) return all.error();
  if (!*all) return std::optional<std::string>();
  return std::optional<std::string>(detail::slice(**all, offset, length));
}

Result<std::optional<ObjectInfo>> ObjectStore::head(const std::string& key) {
  auto all = get(key);
  if (!all) return all.error();
  if (!*all) return std::optional<ObjectInfo>();
  return std::optional<ObjectInfo>(ObjectInfo{key, (*all)->size(), sigv4::md5_hex(**all)});
}

Result<ListPage> ObjectStore::list(std::string_view, std::string_view, std::size_t) {
  return Error::make(errc::internal, fmt::format("store {} does not implement list", describe()));
}

namespace {

// file://: objects are files under the directory, written through the same
// Fs as the WAL: a temp file beside the target, fdatasync, rename over the
// target, fsync of the directory. Temp names contain a space, which no key
// may contain, so they never collide with keys and listings skip them.
class FileStore final : public ObjectStore {
 public:
  FileStore(std::unique_ptr<wal::Fs> fs, std::string root, std::string url)
      : fs_(std::move(fs)), root_(std::move(root)), url_(std::move(url)) {}

  Result<void> put(const std::string& key, std::string_view bytes) override {
    if (auto v = validate_key(key); !v) return v.error();
    const std::string dir = parent_of(key);
    if (!dir.empty()) {
      if (auto r = make_durable_dirs(dir); !r) return r.error();
    }
    const std::string tmp = fmt::format("{} tmp-put-{}-{}", key, ::getpid(), next_tmp_.fetch_add(1));
    auto written = write_synced(tmp, bytes);
    if (written) written = fs_->rename(tmp, key);
    if (!written) {
      (void)fs_->remove(tmp);
      return written.error();
    }
    return fs_->sync_dir(dir);
  }

  Result<std::optional<std::string>> get(const std::string& key) override {
    return read(key, 0, std::numeric_limits<std::uint64_t>::max());
  }

  Result<std::optional<std::string>> get_range(const std::string& key, std::uint64_t offset,
                                               std::uint64_t length) override {
    return read(key, offset, length);
  }

  Result<std::optional<ObjectInfo>> head(const std::string& key) override {
    auto data = read(key, 0, std::numeric_limits<std::uint64_t>::max());
    if (!data) return data.error();
    if (!*data) return std::optional<ObjectInfo>();
    return std::optional<ObjectInfo>(ObjectInfo{key, (*data)->size(), sigv4::md5_hex(**data)});
  }

  Result<ListPage> list(std::string_view prefix, std::string_view continuation_token, std::size_t max_keys) override {
    auto page_size = detail::check_list_args(prefix, continuation_token, max_keys);
    if (!page_size) return page_size.error();
    Walk walk{prefix, continuation_token, *page_size + 1, {}};
    // Start in the deepest directory the prefix names completely.
    const auto slash = prefix.rfind('/');
    const std::string start = slash == std::string_view::npos ? "" : std::string(prefix.substr(0, slash + 1));
    if (auto r = walk_dir(start, walk); !r) return r.error();
    ListPage page;
    page.objects = std::move(walk.found);
    if (page.objects.size() > *page_size) {
      page.objects.resize(*page_size);
      page.next_token = page.objects.back().key;
    }
    return page;
  }

  Result<void> remove(const std::string& key) override {
    if (auto v = validate_key(key); !v) return v.error();
    if (auto r = fs_->remove(key); !r) {
      if (is_directory(key)) return {};  // no object there (only deeper keys)
      return r.error();
    }
    const std::string dir = parent_of(key);
    auto exists = fs_->exists(dir);
    if (!exists) return exists.error();
    if (!*exists) return {};
    return fs_->sync_dir(dir);
  }

  std::string describe() const override { return url_; }

 private:
  struct Walk {
    std::string_view prefix;
    std::string_view token;
    std::size_t want;               // stop after this many keys
    std::vector<ObjectInfo> found;  // in key order
  };

  // Creates `dir` and its missing parents, and makes every name on the way
  // durable (an fsync of each parent), once per directory and process: the
  // object's own rename is synced in `dir`, but a directory created for it is
  // durable only once its parent is synced too, or a power loss could take a
  // verified object (whose local copy is then gone) with its new directory.
  Result<void> make_durable_dirs(const std::string& dir) {
    {
      std::lock_guard lock(durable_mu_);
      if (durable_dirs_.contains(dir)) return {};
    }
    if (auto r = fs_->mkdirs(dir); !r) return r.error();
    for (std::string d = dir; !d.empty();) {
      const std::string parent = parent_of(d);
      if (auto r = fs_->sync_dir(parent); !r) return r.error();
      d = parent;
    }
    std::lock_guard lock(durable_mu_);
    durable_dirs_.insert(dir);
    return {};
  }

  static std::string parent_of(const std::string& key) {
    const auto slash = key.rfind('/');
    return slash == std::string::npos ? std::string() : key.substr(0, slash);
  }

  bool is_directory(const std::string& rel) const {
    std::error_code ec;
    return std::filesystem::is_directory(std::filesystem::path(root_) / rel, ec);
  }

  Result<void> write_synced(const std::string& path, std::string_view bytes) {
    auto f = fs_->open(path, wal::OpenMode::create);
    if (!f) return f.error();
    if (auto r = (*f)->truncate(0); !r) return r.error();
    if (auto r = (*f)->pwrite(bytes, 0); !r) return r.error();
    return (*f)->sync();
  }

  Result<std::optional<std::string>> read(const std::string& key, std::uint64_t offset, std::uint64_t length) {
    if (auto v = validate_key(key); !v) return v.error();
    auto f = fs_->open(key, wal::OpenMode::read_only);
    if (!f) {
      if (f.error().code == errc::chunk_not_found || is_directory(key)) return std::optional<std::string>();
      return f.error();
    }
    auto size = (*f)->size();
    if (!size) return size.error();
    if (offset >= *size || length == 0) return std::optional<std::string>(std::string());
    const std::uint64_t n = std::min(*size - offset, length);
    auto data = (*f)->pread(offset, static_cast<std::size_t>(n));
    if (!data) return data.error();
    return std::optional<std::string>(std::move(*data));
  }

  // Visits `dir` (relative, "" or ending in '/') in key order: entries sort
  // as their names, directories as name + "/", which is the order of the
  // keys below them. Skips subtrees that cannot hold a key after the token
  // or under the prefix; stops once `want` keys are found.
  Result<void> walk_dir(const std::string& dir, Walk& walk) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::directory_iterator it(fs::path(root_) / dir, ec);
    if (ec) {
      if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) return {};
      return Error::make(errc::storage_failed,
                         fmt::format("{}: list {}: {}", url_, dir.empty() ? "." : dir, ec.message()));
    }
    struct Entry {
      std::string sort_key;  // full relative key, with '/' after directories
      bool is_dir;
      std::uint64_t size;
    };
    std::vector<Entry> entries;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      const auto st = it->symlink_status(ec);
      if (ec) break;
      const bool is_dir = fs::is_directory(st);
      if (!is_dir && !fs::is_regular_file(st)) continue;  // symlinks, sockets, ...
      std::string key = dir + name;
      // Temp files and anything else that is not a valid key is not an object.
      if (!valid_component(name) || !std::all_of(name.begin(), name.end(), is_key_char)) continue;
      if (is_dir) {
        key += '/';
        // Only directories on the prefix's path or under it.
        if (!key.starts_with(walk.prefix) && !walk.prefix.starts_with(key)) continue;
        // Everything below sorts before the token: skip the whole subtree.
        if (!walk.token.empty() && walk.token >= std::string_view(key) && !walk.token.starts_with(key)) continue;
        entries.push_back(Entry{std::move(key), true, 0});
      } else {
        if (!key.starts_with(walk.prefix)) continue;
        if (!walk.token.empty() && std::string_view(key) <= walk.token) continue;
        const auto size = it->file_size(ec);
        if (ec) {
          if (ec == std::errc::no_such_file_or_directory) {  // removed meanwhile
            ec.clear();
            continue;
          }
          break;
        }
        entries.push_back(Entry{std::move(key), false, size});
      }
    }
    if (ec) {
      return Error::make(errc::storage_failed,
                         fmt::format("{}: list {}: {}", url_, dir.empty() ? "." : dir, ec.message()));
    }
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.sort_key < b.sort_key; });
    for (auto& e : entries) {
      if (walk.found.size() >= walk.want) break;
      if (e.is_dir) {
        if (auto r = walk_dir(e.sort_key, walk); !r) return r.error();
      } else {
        walk.found.push_back(ObjectInfo{std::move(e.sort_key), e.size, {}});
      }
    }
    return {};
  }

  std::unique_ptr<wal::Fs> fs_;
  std::string root_;
  std::string url_;
  std::atomic<std::uint64_t> next_tmp_{0};
  std::mutex durable_mu_;
  std::set<std::string> durable_dirs_;  // made durable by this process (make_durable_dirs)
};

}  // namespace

Result<StoreUrl> parse_store_url(std::string_view url) {
  if (url.starts_with("file://")) {
    std::string path(url.substr(7));
    if (path.empty() || path.front() != '/') {
      return Error::make(
          errc::invalid_argument,
          fmt::format("STORE \"{}\": a file:// URL needs an absolute path (file:///dir)", printable_excerpt(url, 200)));
    }
    std::string normal = std::filesystem::path(path).lexically_normal().string();
    if (normal.size() > 1 && normal.back() == '/') normal.pop_back();
    StoreUrl out;
    out.kind = StoreUrl::Kind::file;
    out.path = normal;
    out.canonical = "file://" + normal;
    return out;
  }
  if (url.starts_with("s3://")) {
    // Never echo the URL: it carries the secret key.
    auto config = detail::parse_s3_url(url);
    if (!config) return config.error();
    StoreUrl out;
    out.kind = StoreUrl::Kind::s3;
    out.canonical = "s3://" + config->region + "/" + config->bucket;
    out.region = config->region;
    out.bucket = config->bucket;
    out.endpoint = config->endpoint_given ? config->endpoint : std::string();
    return out;
  }
  if (url.starts_with("memory://")) {
    const auto name = url.substr(9);
    if (!is_valid_memory_store_name(name)) {
      return Error::make(
          errc::invalid_argument,
          fmt::format("STORE memory://{}: the name must be 1 to 64 of A-Z a-z 0-9 . _ -", printable_excerpt(name, 80)));
    }
    StoreUrl out;
    out.kind = StoreUrl::Kind::memory;
    out.path = std::string(name);
    out.canonical = "memory://" + std::string(name);
    return out;
  }
  // Show only the scheme: the rest may hold credentials.
  const auto scheme_end = url.find("://");
  return Error::make(errc::invalid_argument,
                     fmt::format("STORE with scheme \"{}\" is not supported: expected file:///path, "
                                 "s3://KEY:SECRET@REGION/BUCKET or memory://NAME",
                                 printable_excerpt(url.substr(0, std::min(scheme_end, std::size_t{20})), 20)));
}

Result<std::unique_ptr<ObjectStore>> open_store(std::string_view url) {
  auto parsed = parse_store_url(url);
  if (!parsed) return parsed.error();
  switch (parsed->kind) {
    case StoreUrl::Kind::s3: return open_s3_store(url);
    case StoreUrl::Kind::memory: {
      auto m = open_memory_store(parsed->path);
      if (!m) return m.error();
      return std::unique_ptr<ObjectStore>(std::move(*m));
    }
    case StoreUrl::Kind::file: break;
  }
  auto fs = wal::open_posix_fs(parsed->path);
  if (!fs) return fs.error();
  return file_store_on(std::move(*fs), parsed->path, parsed->canonical);
}

std::unique_ptr<ObjectStore> file_store_on(std::unique_ptr<wal::Fs> fs, std::string root, std::string url) {
  return std::make_unique<FileStore>(std::move(fs), std::move(root), std::move(url));
}

}  // namespace horizon::store
