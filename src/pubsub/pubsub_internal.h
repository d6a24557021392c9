#pragma once
// Private helpers of the pub/sub server and client: the bounded
// latest-value-per-topic queue that sits between publishers and a
// connection's writer, and the reconnect backoff schedule.
//
// Thread-safety: neither class locks; the owner guards each instance with
// its own mutex (LatestValueQueue) or uses it from one thread (Backoff).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace horizon::pubsub::detail {

// Per connection: one slot per topic holding the newest message not yet
// handed to the writer, and a FIFO of the slots that hold one. Putting a
// message into a slot that already holds one replaces it ("superseded") and
// keeps the slot's place in the FIFO, so the queue never holds more than one
// message per topic, whatever the publish rate and however slow the reader.
// Slots live as long as the queue (a slot's address and topic are stable),
// which lets the subscription index keep a pointer to them.
class LatestValueQueue {
 public:
  class Slot {
   public:
    explicit Slot(std::string topic) : topic_(std::move(topic)) {}
    const std::string& topic() const { return topic_; }

   private:
    friend class LatestValueQueue;
    const std::string topic_;
    std::string message_;
    bool pending_ = false;
  };

  struct PutResult {
    bool superseded = false;  // an older pending message of the topic was replaced
    bool was_empty = false;   // the FIFO was empty before (the writer may be idle)
  };

  // A message taken out of the queue. `topic` points into its slot.
  struct Item {
    const std::string* topic = nullptr;
    std::string message;
  };

  // The slot of `topic`, created on first use (then `*created` is set).
  Slot& slot(std::string_view topic, bool* created = nullptr);
  // The slot of `topic`, or nullptr.
  Slot* find(std::string_view topic);

  PutResult put(Slot& slot, std::string_view message);
  PutResult put(std::string_view topic, std::string_view message) { return put(slot(topic), message); }

  // Moves pending messages, oldest topic first, into items[0..n) and
  // returns n: at most `max_items`, and no more once the topics and
  // messages taken add up to `max_bytes` (at least one is taken if any is
  // pending). `items` is grown as needed and its strings are swapped with
  // the slots' so that their capacity is reused.
  std::size_t take(std::vector<Item>& items, std::size_t max_items, std::size_t max_bytes = SIZE_MAX);

  std::size_t pending() const { return fifo_.size(); }
  // The largest pending() seen since construction.
  std::size_t high_water() const { return high_water_; }
  std::size_t topics() const { return slots_.size(); }
  // Removes the slots that hold no pending message (invalidates pointers
  // to them and the topics of taken Items). Only for owners that keep no
  // Slot pointers.
  void erase_idle();
  // Every topic that has a slot, in no particular order.
  std::vector<std::string> topic_list() const;

 private:
  std::unordered_map<std::string_view, std::unique_ptr<Slot>> slots_;  // keys view the slots' topic_
  std::deque<Slot*> fifo_;
  std::size_t high_water_ = 0;
};

// The reconnect schedule: exponential periods (initial, 2x, 4x, ... capped
// at `max`) and exactly one attempt at a uniformly random instant inside
// each period ("full jitter"). A period starts when the previous one ends
// or, if the failed attempt ended later, when it ended; so there is at most
// one attempt per period, and attempts average one per period length.
class Backoff {
 public:
  using Clock = std::chrono::steady_clock;

  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);

  // Starts over (after a healthy connection): the next period is `initial`
  // long and starts no earlier than `now`.
  void reset(Clock::time_point now);
  // After a failed attempt that ended at `now`: the instant of the next
  // attempt, `jitter` (in [0, 1]) of the way into the next period.
  Clock::time_point next_attempt(Clock::time_point now, double jitter);
  // The length of the period last returned by next_attempt (0 before).
  std::chrono::milliseconds last_period() const { return last_period_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds next_period_;
  std::chrono::milliseconds last_period_{0};
  Clock::time_point period_end_{};
};

}  // namespace horizon::pubsub::detail
