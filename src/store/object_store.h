#pragma once
// Object storage for sealed chunks and discovery data (SPEC §9). This is the
// interface every implementation passes the same suite against; `file://`
// is the embedded default. (The s3:// implementation, range reads, listing
// and paging arrive with the long-term storage issue.)
//
// Keys are relative, '/'-separated, built by our code only (never from raw
// user input): see StreamName::relative_path.
//
// Thread-safety: implementations are safe to call concurrently.

#include "core/errc.h"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace horizon::store {

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  // Replaces the object atomically (readers see the old or the new bytes).
  [[nodiscard]] virtual Result<void> put(const std::string& key, std::string_view bytes) = 0;
  // nullopt if there is no such object.
  [[nodiscard]] virtual Result<std::optional<std::string>> get(const std::string& key) = 0;
  [[nodiscard]] virtual Result<void> remove(const std::string& key) = 0;
  // The URL this store was opened from, with any secret removed.
  virtual std::string describe() const = 0;
};

// A parsed STORE value.
struct StoreUrl {
  enum class Kind { file, s3 } kind = Kind::file;
  std::string path;  // file://: the absolute directory
  std::string canonical;  // the URL without secrets, for comparisons and logs
};

// Parses `file:///absolute/path` and `s3://KEY:SECRET@REGION/BUCKET[?endpoint=...]`.
// Error messages never contain the secret.
[[nodiscard]] Result<StoreUrl> parse_store_url(std::string_view url);

// Opens a store. s3:// is recognized but not available in this build yet
// (clear error).
[[nodiscard]] Result<std::unique_ptr<ObjectStore>> open_store(std::string_view url);

}  // namespace horizon::store
