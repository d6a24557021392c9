#pragma once
// The in-memory object store: for tests of the code around the store (the
// shipper, the reader), with fault hooks that make the next calls fail
// (store down, a lost answer after the operation took effect, damaged
// reads). It passes the same suite as file:// and s3://.
//
// Thread-safety: every call, including the fault hooks, may be made from
// any thread; handles opened on the same name share one state.

#include "store/object_store.h"

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

namespace horizon::store {

class MemoryStore final : public ObjectStore {
 public:
  enum class Op : unsigned { put = 1, get = 2, get_range = 4, head = 8, list = 16, remove = 32 };

  struct State;  // shared by the handles of one store

  explicit MemoryStore(std::shared_ptr<State> state);
  ~MemoryStore() override;

  Result<void> put(const std::string& key, std::string_view bytes) override;
  Result<std::optional<std::string>> get(const std::string& key) override;
  Result<std::optional<std::string>> get_range(const std::string& key, std::uint64_t offset,
                                               std::uint64_t length) override;
  Result<std::optional<ObjectInfo>> head(const std::string& key) override;
  Result<ListPage> list(std::string_view prefix, std::string_view continuation_token, std::size_t max_keys) override;
  Result<void> remove(const std::string& key) override;
  std::string describe() const override;

  // --- fault hooks (tests) ---
  // The next `count` calls of the given operations (all when `ops` is
  // empty) fail with `code` and do nothing. Key validation runs first: an
  // invalid key is still invalid_argument and consumes no fault.
  void fail_next(std::size_t count, errc code = errc::not_ready, std::initializer_list<Op> ops = {});
  // Like fail_next, but the operation takes effect before the error is
  // returned: a put that stored the bytes, a remove that removed, whose
  // answer was lost (the ambiguous outcome callers must handle).
  void fail_next_after_effect(std::size_t count, errc code = errc::not_ready, std::initializer_list<Op> ops = {});
  // The next `count` successful get/get_range calls return the bytes with
  // one bit flipped (in the middle; empty results are left alone).
  void corrupt_next_reads(std::size_t count);
  // Drops every pending fault.
  void clear_faults();
  // How many calls of `op` were made (including failed ones).
  std::size_t calls(Op op) const;
  // How many objects the store holds.
  std::size_t object_count() const;

 private:
  std::shared_ptr<State> state_;
};

// A new, empty store of its own (describe() is "memory://(unnamed)").
std::unique_ptr<MemoryStore> make_memory_store();

// True for a valid memory:// store name: 1..64 of A-Z a-z 0-9 . _ -
bool is_valid_memory_store_name(std::string_view name);

// The process-wide store named `name` ([A-Za-z0-9._-], 1..64 bytes),
// created empty on first use; the same store as open_store("memory://NAME").
[[nodiscard]] Result<std::unique_ptr<MemoryStore>> open_memory_store(std::string_view name);

}  // namespace horizon::store
