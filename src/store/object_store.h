#pragma once
// Object storage for sealed chunks and discovery data (SPEC §9): the one
// interface that `file://`, `s3://` and the in-memory store implement and
// that one shared suite (object_store_test.cc) runs against.
//
// Keys are relative, '/'-separated paths built by our code only (never from
// raw user input, see StreamName::relative_path): 1..1024 bytes (S3's limit)
// of printable ASCII without spaces (0x21..0x7E), no leading or trailing
// '/', no empty, "." or ".." components, each component at most 200 bytes
// (file names are limited to 255, and file:// adds a temp suffix). Anything
// else is errc::invalid_argument, before any I/O.
//
// Errors, the same for every implementation:
//   errc::invalid_argument  a bad key, prefix, token or max_keys
//   errc::not_ready         transient: unreachable, timeout, HTTP 5xx/429;
//                           the outcome of a put/remove is unknown (it may
//                           have happened): callers retry, puts are idempotent
//   errc::storage_failed    definite: access denied (403), bad request (400),
//                           missing bucket, local I/O error
//   errc::disk_full         file:// only (ENOSPC)
//   errc::corruption        the store answered inconsistently (a body shorter
//                           than its Content-Length, an ETag that is not the
//                           MD5 of what was sent or received, bad XML)
// Messages name the operation and the key, never a secret key or an
// Authorization header.
//
// Thread-safety: implementations are safe to call concurrently.

#include "core/errc.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace horizon::wal {
class Fs;
}

namespace horizon::store {

inline constexpr std::size_t kMaxKeyBytes = 1024;
inline constexpr std::size_t kMaxKeyComponentBytes = 200;
inline constexpr std::size_t kMaxListKeys = 1000;

struct ObjectInfo {
  std::string key;
  std::uint64_t size = 0;
  // Lowercase hex MD5 of the content (S3 single-part uploads, memory, and
  // file:// head). Empty in file:// list pages (listing does not read the
  // files). Multipart S3 objects carry S3's "<md5>-<parts>" form.
  std::string etag;

  friend bool operator==(const ObjectInfo&, const ObjectInfo&) = default;
};

struct ListPage {
  std::vector<ObjectInfo> objects;  // sorted by key (bytewise)
  std::string next_token;           // pass to the next list call; empty when done
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Replaces the object atomically (readers see the old or the new bytes,
  // never a mix). On success the bytes are durable (file://: fdatasync +
  // directory fsync; s3://: the server verified Content-MD5 and answered an
  // ETag equal to the MD5).
  [[nodiscard]] virtual Result<void> put(const std::string& key, std::string_view bytes) = 0;

  // The whole object; nullopt if there is no such object.
  [[nodiscard]] virtual Result<std::optional<std::string>> get(const std::string& key) = 0;

  // Up to `length` bytes from `offset`: short at the end of the object, ""
  // when `offset` is at or beyond the end (or `length` is 0); nullopt if
  // there is no such object. The default reads the whole object with get().
  [[nodiscard]] virtual Result<std::optional<std::string>> get_range(const std::string& key, std::uint64_t offset,
                                                                     std::uint64_t length);

  // Size and ETag without the content; nullopt if there is no such object.
  // The default reads the whole object with get().
  [[nodiscard]] virtual Result<std::optional<ObjectInfo>> head(const std::string& key);

  // The objects whose keys start with `prefix` (any string, not only whole
  // components; "" lists everything), in key order, after the position
  // `continuation_token` (empty for the first page; otherwise the
  // next_token of the previous page, opaque). At most `max_keys` objects
  // (1..1000; larger values mean 1000) per page; a page may be shorter
  // while next_token is not empty. Objects put or removed during a listing
  // may or may not appear. The default fails with errc::internal (only
  // wrappers in tests lack it).
  [[nodiscard]] virtual Result<ListPage> list(std::string_view prefix, std::string_view continuation_token,
                                              std::size_t max_keys);

  // Removes the object; removing a missing object is not an error.
  [[nodiscard]] virtual Result<void> remove(const std::string& key) = 0;

  // The URL this store was opened from, with any secret removed.
  virtual std::string describe() const = 0;

  // For shutdown: makes the calls in progress give up soon (within about a
  // second) and every later call fail at once, with errc::not_ready and a
  // message saying the store was cancelled. The outcome of a put or remove
  // cut short is unknown, as for any not_ready. It cannot be undone. The
  // default does nothing: file:// and memory calls are bounded by the local
  // disk; s3:// calls can wait on a stalled server for minutes (timeouts
  // times attempts).
  virtual void cancel() {}
};

// Checks a key against the rules above (errc::invalid_argument otherwise;
// the message shows the key through printable_excerpt).
[[nodiscard]] Result<void> validate_key(std::string_view key);
// A list prefix: "" or printable ASCII without spaces, no leading '/', and
// its complete components (those before the last '/') valid key components.
[[nodiscard]] Result<void> validate_prefix(std::string_view prefix);

// A parsed STORE value. Never holds a secret.
struct StoreUrl {
  enum class Kind { file, s3, memory } kind = Kind::file;
  std::string path;       // file://: the absolute directory; memory://: the name
  std::string canonical;  // the URL without secrets or options, for comparisons and logs
  // s3:// only:
  std::string region;
  std::string bucket;
  std::string endpoint;  // "" for AWS (https://s3.REGION.amazonaws.com), else scheme://host[:port]
};

// Parses `file:///absolute/path`,
// `s3://ACCESS_KEY_ID:SECRET@REGION/BUCKET[?endpoint=http://host:port]`
// (credentials percent-encoded, e.g. '/' as %2F) and `memory://NAME`.
// Error messages never contain the secret (nor, for s3://, the URL).
[[nodiscard]] Result<StoreUrl> parse_store_url(std::string_view url);

// Opens a store with default options (see s3_store.h for S3 options).
// memory://NAME stores live as long as the process and are shared by every
// open of the same NAME.
[[nodiscard]] Result<std::unique_ptr<ObjectStore>> open_store(std::string_view url);

// The file:// store over `fs`, whose root is the store's directory `root`
// (`url` names it in messages): what open_store does for file:// on disk,
// for tests that put the store on a simulated disk (wal::SimFs).
[[nodiscard]] std::unique_ptr<ObjectStore> file_store_on(std::unique_ptr<wal::Fs> fs, std::string root,
                                                         std::string url);

}  // namespace horizon::store
