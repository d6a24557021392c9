#include "pubsub/pubsub_internal.h"

#include <algorithm>
#include <cmath>

namespace horizon::pubsub::detail {

LatestValueQueue::Slot& LatestValueQueue::slot(std::string_view topic, bool* created) {
  if (created) *created = false;
  if (auto it = slots_.find(topic); it != slots_.end()) return *it->second;
  auto owned = std::make_unique<Slot>(std::string(topic));
  Slot& s = *owned;
  slots_.emplace(std::string_view(s.topic_), std::move(owned));
  if (created) *created = true;
  return s;
}

LatestValueQueue::Slot* LatestValueQueue::find(std::string_view topic) {
  auto it = slots_.find(topic);
  return it == slots_.end() ? nullptr : it->second.get();
}

LatestValueQueue::PutResult LatestValueQueue::put(Slot& s, std::string_view message) {
  PutResult r;
  r.was_empty = fifo_.empty();
  s.message_.assign(message.data(), message.size());
  if (s.pending_) {
    r.superseded = true;
    return r;
  }
  s.pending_ = true;
  fifo_.push_back(&s);
  high_water_ = std::max(high_water_, fifo_.size());
  return r;
}

std::size_t LatestValueQueue::take(std::vector<Item>& items, std::size_t max_items, std::size_t max_bytes) {
  const std::size_t limit = std::min(max_items, fifo_.size());
  if (items.size() < limit) items.resize(limit);
  std::size_t n = 0;
  std::size_t bytes = 0;
  while (n < limit && (n == 0 || bytes < max_bytes)) {
    Slot* s = fifo_.front();
    fifo_.pop_front();
    s->pending_ = false;
    bytes += s->topic_.size() + s->message_.size();
    items[n].topic = &s->topic_;
    items[n].message.swap(s->message_);
    ++n;
  }
  return n;
}

void LatestValueQueue::erase_idle() {
  std::erase_if(slots_, [](const auto& entry) { return !entry.second->pending_; });
}

std::vector<std::string> LatestValueQueue::topic_list() const {
  std::vector<std::string> out;
  out.reserve(slots_.size());
  for (const auto& [topic, slot] : slots_) out.emplace_back(topic);
  return out;
}

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : initial_(std::max(initial, std::chrono::milliseconds(1))),
      max_(std::max(max, initial_)),
      next_period_(initial_) {}

void Backoff::reset(Clock::time_point now) {
  next_period_ = initial_;
  period_end_ = now;
}

Backoff::Clock::time_point Backoff::next_attempt(Clock::time_point now, double jitter) {
  if (!(jitter >= 0.0)) jitter = 0.0;  // also NaN
  jitter = std::min(jitter, 1.0);
  const Clock::time_point start = std::max(period_end_, now);
  const std::chrono::milliseconds period = next_period_;
  period_end_ = start + period;
  last_period_ = period;
  next_period_ = std::min(max_, period * 2);
  const auto offset = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double, std::milli>(jitter * static_cast<double>(period.count())));
  return start + offset;
}

}  // namespace horizon::pubsub::detail
