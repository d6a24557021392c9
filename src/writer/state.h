#pragma once
// The Writer's metadata as a deterministic state machine over WAL
// operations. The same `apply` runs in the sequencer (on the pending
// state, before commit), after commit (on the committed state), and in
// recovery (replay), so the three can never disagree.
//
// Thread-safety: none; each State has one owner (see engine.h).

#include "core/cursor.h"
#include "core/errc.h"
#include "core/stream_name.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

namespace horizon::writer {

// ---- operations: the payload of WAL commit records (docs/format/wal.md) ----

struct OpCreateStream {
  std::uint64_t id;
  std::string name;
};
// `bytes` (whole raw lines) go to chunk `chunk_no` of the stream at `offset`.
struct OpChunkWrite {
  std::uint64_t stream_id;
  std::uint64_t chunk_no;
  std::uint64_t offset;
  std::string bytes;
};
struct OpSubscribe {
  std::uint64_t stream_id;
  std::string subscription;
};
struct OpUnsubscribe {
  std::uint64_t stream_id;
  std::string subscription;
};
// Seals the live chunk (its final size is `sealed_size`, ending with the
// Rotated line that starts at `end_before_rotated`) and starts chunk+1.
struct OpRotate {
  std::uint64_t stream_id;
  std::uint64_t sealed_chunk;
  std::uint64_t sealed_size;
  std::uint64_t end_before_rotated;
};
// The store has confirmed a sealed chunk; the Writer no longer holds it.
struct OpShipped {
  std::uint64_t stream_id;
  std::uint64_t chunk_no;
};
// Subscription activity for these streams has been written.
struct OpClearDirty {
  std::vector<std::uint64_t> stream_ids;
};

using Op = std::variant<OpCreateStream, OpChunkWrite, OpSubscribe, OpUnsubscribe, OpRotate, OpShipped, OpClearDirty>;

void encode_op(std::string& out, const Op& op);
// Decodes a commit payload after its commit number: u32 count, then ops.
[[nodiscard]] Result<std::vector<Op>> decode_ops(std::string_view data, std::string_view where);

// ---- state ----

struct Position {
  std::uint64_t chunk = 0;
  std::uint64_t offset = 0;
  friend bool operator==(const Position&, const Position&) = default;
};

struct StreamState {
  std::uint64_t id = 0;
  StreamName name;
  std::uint64_t chunk_no = 0;  // the live chunk
  std::uint64_t size = 0;      // committed bytes of the live chunk
  std::vector<StreamName> subscriptions;            // sorted
  std::map<std::uint64_t, std::uint64_t> sealed;    // sealed, not yet shipped: chunk -> size
  // CRC32C of the live chunk's committed bytes, and of each sealed chunk's
  // (RELIABILITY A6: a chunk's local bytes are checked against it before
  // they are shipped). Kept by apply(op, Checksums::keep) only; unknown
  // (nullopt / absent) for chunks begun before a version-1 snapshot.
  std::optional<std::uint32_t> crc = 0;
  std::map<std::uint64_t, std::uint32_t> sealed_crc;
  // After a rotation and until another line is appended: the end the stream
  // had before its Rotated line. An append's After may name it (it is the
  // Offset the previous append returned).
  std::optional<Position> rotation_alias;

  Position end() const { return {chunk_no, size}; }
  bool subscribed(const StreamName& sub) const;
};

class State {
 public:
  // `keep`: also extend the chunk checksums (StreamState::crc). The
  // committed state and recovery keep them; the engine's pending state,
  // which is never snapshotted, skips the work.
  enum class Checksums { skip, keep };
  [[nodiscard]] Result<void> apply(const Op& op, Checksums checksums = Checksums::skip);

  const StreamState* find(const StreamName& name) const;
  const StreamState* find(std::uint64_t id) const;
  const std::map<StreamName, std::uint64_t>& names() const { return by_name_; }
  const std::unordered_map<std::uint64_t, StreamState>& streams() const { return streams_; }
  // Streams appended to while subscribed, with their newest end.
  const std::map<std::uint64_t, Position>& dirty() const { return dirty_; }
  std::uint64_t next_stream_id() const { return next_stream_id_; }

  std::uint64_t last_commit_no = 0;

  // Snapshot: a self-checking binary image (magic, CRC32C, version).
  std::string encode_snapshot(std::uint64_t replay_from_segment) const;
  struct Snapshot;
  [[nodiscard]] static Result<Snapshot> decode_snapshot(std::string_view data);

 private:
  Result<StreamState*> must_find(std::uint64_t id, std::string_view op);

  std::unordered_map<std::uint64_t, StreamState> streams_;
  std::map<StreamName, std::uint64_t> by_name_;
  std::map<std::uint64_t, Position> dirty_;
  std::uint64_t next_stream_id_ = 1;
};

struct State::Snapshot {
  State state;
  std::uint64_t replay_from_segment = 0;
};

}  // namespace horizon::writer
