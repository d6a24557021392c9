#include "store/memory_store.h"

#include "core/text.h"
#include "store/sigv4.h"
#include "store/store_internal.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <vector>

namespace horizon::store {

struct MemoryStore::State {
  struct Object {
    std::string data;
    std::string etag;
  };
  struct Fault {
    std::size_t remaining = 0;
    errc code = errc::not_ready;
    unsigned ops = 0;  // bit set of Op; 0 = all
    bool after_effect = false;
  };

  explicit State(std::string n) : name(std::move(n)) {}

  const std::string name;  // "" for unnamed stores
  mutable std::mutex mu;
  std::map<std::string, Object, std::less<>> objects;  // guarded by mu
  std::vector<Fault> faults;                           // guarded by mu
  std::size_t corrupt_reads = 0;                       // guarded by mu
  std::map<Op, std::size_t> calls;                     // guarded by mu
};

namespace {

const char* op_name(MemoryStore::Op op) {
  switch (op) {
    case MemoryStore::Op::put: return "put";
    case MemoryStore::Op::get: return "get";
    case MemoryStore::Op::get_range: return "get_range";
    case MemoryStore::Op::head: return "head";
    case MemoryStore::Op::list: return "list";
    case MemoryStore::Op::remove: return "remove";
  }
  return "?";
}

unsigned mask_of(std::initializer_list<MemoryStore::Op> ops) {
  unsigned mask = 0;
  for (auto op : ops) mask |= static_cast<unsigned>(op);
  return mask;
}

// What a call must do about faults; `mu` must be held.
struct Planned {
  std::optional<Error> error;
  bool after_effect = false;
};

Planned plan_call(MemoryStore::State& s, MemoryStore::Op op, std::string_view what) {
  ++s.calls[op];
  for (auto& f : s.faults) {
    if (f.remaining == 0) continue;
    if (f.ops != 0 && (f.ops & static_cast<unsigned>(op)) == 0) continue;
    --f.remaining;
    Error e = Error::make(f.code, fmt::format("memory store: injected fault in {} {}", op_name(op), what));
    return Planned{std::move(e), f.after_effect};
  }
  return {};
}

// Flips one bit in the middle of a successful read while corrupt_reads
// lasts; `mu` must be held.
void maybe_corrupt(MemoryStore::State& s, std::optional<std::string>& data) {
  if (s.corrupt_reads == 0 || !data || data->empty()) return;
  --s.corrupt_reads;
  (*data)[data->size() / 2] = static_cast<char>((*data)[data->size() / 2] ^ 0x01);
}

std::mutex& registry_mu() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, std::shared_ptr<MemoryStore::State>, std::less<>>& registry() {
  static auto* stores = new std::map<std::string, std::shared_ptr<MemoryStore::State>, std::less<>>();
  return *stores;
}

}  // namespace

bool is_valid_memory_store_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

MemoryStore::MemoryStore(std::shared_ptr<State> state) : state_(std::move(state)) {}
MemoryStore::~MemoryStore() = default;

Result<void> MemoryStore::put(const std::string& key, std::string_view bytes) {
  if (auto v = validate_key(key); !v) return v.error();
  std::string etag = sigv4::md5_hex(bytes);  // outside the lock
  std::string data(bytes);
  std::lock_guard lock(state_->mu);
  auto plan = plan_call(*state_, Op::put, key);
  if (plan.error && !plan.after_effect) return *plan.error;
  state_->objects.insert_or_assign(key, State::Object{std::move(data), std::move(etag)});
  if (plan.error) return *plan.error;
  return {};
}

Result<std::optional<std::string>> MemoryStore::get(const std::string& key) {
  if (auto v = validate_key(key); !v) return v.error();
  std::lock_guard lock(state_->mu);
  auto plan = plan_call(*state_, Op::get, key);
  if (plan.error) return *plan.error;
  auto it = state_->objects.find(key);
  if (it == state_->objects.end()) return std::optional<std::string>();
  std::optional<std::string> out(it->second.data);
  maybe_corrupt(*state_, out);
  return out;
}

Result<std::optional<std::string>> MemoryStore::get_range(const std::string& key, std::uint64_t offset,
                                                          std::uint64_t length) {
  if (auto v = validate_key(key); !v) return v.error();
  std::lock_guard lock(state_->mu);
  auto plan = plan_call(*state_, Op::get_range, key);
  if (plan.error) return *plan.error;
  auto it = state_->objects.find(key);
  if (it == state_->objects.end()) return std::optional<std::string>();
  std::optional<std::string> out(detail::slice(it->second.data, offset, length));
  maybe_corrupt(*state_, out);
  return out;
}

Result<std::optional<ObjectInfo>> MemoryStore::head(const std::string& key) {
  if (auto v = validate_key(key); !v) return v.error();
  std::lock_guard lock(state_->mu);
  auto plan = plan_call(*state_, Op::head, key);
  if (plan.error) return *plan.error;
  auto it = state_->objects.find(key);
  if (it == state_->objects.end()) return std::optional<ObjectInfo>();
  return std::optional<ObjectInfo>(ObjectInfo{key, it->second.data.size(), it->second.etag});
}

Result<ListPage> MemoryStore::list(std::string_view prefix, std::string_view continuation_token, std::size_t max_keys) {
  auto page_size = detail::check_list_args(prefix, continuation_token, max_keys);
  if (!page_size) return page_size.error();
  std::lock_guard lock(state_->mu);
  auto plan = plan_call(*state_, Op::list, prefix.empty() ? std::string("(all)") : std::string(prefix));
  if (plan.error) return *plan.error;
  ListPage page;
  // The token is the last key returned: continue after it (or at the prefix).
  auto it = !continuation_token.empty() && continuation_token >= prefix
                ? state_->objects.upper_bound(continuation_token)
                : state_->objects.lower_bound(prefix);
  for (; it != state_->objects.end() && it->first.starts_with(prefix); ++it) {
    if (page.objects.size() == *page_size) {
      page.next_token = page.objects.back().key;
      break;
    }
    page.objects.push_back(ObjectInfo{it->first, it->second.data.size(), it->second.etag});
  }
  return page;
}

Result<void> MemoryStore::remove(const std::string& key) {
  if (auto v = validate_key(key); !v) return v.error();
  std::lock_guard lock(state_->mu);
  auto plan = plan_call(*state_, Op::remove, key);
  if (plan.error && !plan.after_effect) return *plan.error;
  state_->objects.erase(key);
  if (plan.error) return *plan.error;
  return {};
}

std::string MemoryStore::describe() const {
  return state_->name.empty() ? std::string("memory://(unnamed)") : "memory://" + state_->name;
}

void MemoryStore::fail_next(std::size_t count, errc code, std::initializer_list<Op> ops) {
  std::lock_guard lock(state_->mu);
  state_->faults.push_back(State::Fault{count, code, mask_of(ops), false});
}

void MemoryStore::fail_next_after_effect(std::size_t count, errc code, std::initializer_list<Op> ops) {
  std::lock_guard lock(state_->mu);
  state_->faults.push_back(State::Fault{count, code, mask_of(ops), true});
}

void MemoryStore::corrupt_next_reads(std::size_t count) {
  std::lock_guard lock(state_->mu);
  state_->corrupt_reads = count;
}

void MemoryStore::clear_faults() {
  std::lock_guard lock(state_->mu);
  state_->faults.clear();
  state_->corrupt_reads = 0;
}

std::size_t MemoryStore::calls(Op op) const {
  std::lock_guard lock(state_->mu);
  auto it = state_->calls.find(op);
  return it == state_->calls.end() ? 0 : it->second;
}

std::size_t MemoryStore::object_count() const {
  std::lock_guard lock(state_->mu);
  return state_->objects.size();
}

std::unique_ptr<MemoryStore> make_memory_store() {
  return std::make_unique<MemoryStore>(std::make_shared<MemoryStore::State>(std::string()));
}

Result<std::unique_ptr<MemoryStore>> open_memory_store(std::string_view name) {
  if (!is_valid_memory_store_name(name)) {
    return Error::make(
        errc::invalid_argument,
        fmt::format("STORE memory://{}: the name must be 1 to 64 of A-Z a-z 0-9 . _ -", printable_excerpt(name, 80)));
  }
  std::lock_guard lock(registry_mu());
  auto& slot = registry()[std::string(name)];
  if (!slot) slot = std::make_shared<MemoryStore::State>(std::string(name));
  return std::make_unique<MemoryStore>(slot);
}

}  // namespace horizon::store
