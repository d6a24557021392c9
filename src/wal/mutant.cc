#include "wal/mutant.h"

#include <array>
#include <atomic>

namespace horizon::mutant {
namespace {

constexpr auto kCount = static_cast<unsigned>(Id::count_);
std::array<std::atomic<bool>, kCount> g_on{};

}  // namespace

bool active(Id id) { return g_on[static_cast<unsigned>(id)].load(std::memory_order_relaxed); }

void set(Id id, bool on) { g_on[static_cast<unsigned>(id)].store(on, std::memory_order_relaxed); }

std::string_view name(Id id) {
  switch (id) {
    case Id::ack_before_sync: return "ack_before_sync";
    case Id::no_dir_fsync: return "no_dir_fsync";
    case Id::rename_without_sync: return "rename_without_sync";
    case Id::retry_sync_after_eio: return "retry_sync_after_eio";
    case Id::truncate_at_any_damage: return "truncate_at_any_damage";
    case Id::follow_symlinks: return "follow_symlinks";
    case Id::count_: break;
  }
  return "?";
}

}  // namespace horizon::mutant
