#include "writer/state.h"

#include "wal/coding.h"
#include "wal/crc32c.h"

#include <fmt/format.h>

#include <algorithm>

namespace horizon::writer {

using wal::Decoder;
using wal::put_bytes;
using wal::put_u32;
using wal::put_u64;
using wal::put_u8;

namespace {

enum OpTag : std::uint8_t {
  kCreateStream = 1,
  kChunkWrite = 2,
  kSubscribe = 3,
  kUnsubscribe = 4,
  kRotate = 5,
  kShipped = 6,
  kClearDirty = 7,
};

constexpr char kSnapshotMagic[8] = {'E', 'H', 'S', 'N', 'A', 'P', '\0', '\0'};
// Version 2 added the chunk checksums (StreamState::crc, sealed_crc);
// version 1 is still read (its chunks' checksums are then unknown).
constexpr std::uint32_t kSnapshotVersion = 2;

Error corrupt(std::string_view what) { return Error::make(errc::corruption, std::string(what)); }

}  // namespace

void encode_op(std::string& out, const Op& op) {
  std::visit(
      [&out](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, OpCreateStream>) {
          put_u8(out, kCreateStream), put_u64(out, o.id), put_bytes(out, o.name);
        } else if constexpr (std::is_same_v<T, OpChunkWrite>) {
          put_u8(out, kChunkWrite), put_u64(out, o.stream_id), put_u64(out, o.chunk_no), put_u64(out, o.offset);
          put_bytes(out, o.bytes);
        } else if constexpr (std::is_same_v<T, OpSubscribe>) {
          put_u8(out, kSubscribe), put_u64(out, o.stream_id), put_bytes(out, o.subscription);
        } else if constexpr (std::is_same_v<T, OpUnsubscribe>) {
          put_u8(out, kUnsubscribe), put_u64(out, o.stream_id), put_bytes(out, o.subscription);
        } else if constexpr (std::is_same_v<T, OpRotate>) {
          put_u8(out, kRotate), put_u64(out, o.stream_id), put_u64(out, o.sealed_chunk), put_u64(out, o.sealed_size);
          put_u64(out, o.end_before_rotated);
        } else if constexpr (std::is_same_v<T, OpShipped>) {
          put_u8(out, kShipped), put_u64(out, o.stream_id), put_u64(out, o.chunk_no);
        } else {
          put_u8(out, kClearDirty), put_u32(out, static_cast<std::uint32_t>(o.stream_ids.size()));
          for (auto id : o.stream_ids) put_u64(out, id);
        }
      },
      op);
}

Result<std::vector<Op>> decode_ops(std::string_view data, std::string_view where) {
  Decoder d(data, where);
  std::uint32_t count = 0;
  if (!d.u32(count)) return d.error();
  std::vector<Op> ops;
  ops.reserve(std::min<std::uint32_t>(count, 1024));
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint8_t tag = 0;
    if (!d.u8(tag)) return d.error();
    std::string_view s;
    switch (tag) {
      case kCreateStream: {
        OpCreateStream o{};
        if (!d.u64(o.id) || !d.bytes(s)) return d.error();
        o.name = std::string(s);
        ops.emplace_back(std::move(o));
        break;
      }
      case kChunkWrite: {
        OpChunkWrite o{};
        if (!d.u64(o.stream_id) || !d.u64(o.chunk_no) || !d.u64(o.offset) || !d.bytes(s)) return d.error();
        o.bytes = std::string(s);
        ops.emplace_back(std::move(o));
        break;
      }
      case kSubscribe:
      case kUnsubscribe: {
        std::uint64_t id = 0;
        if (!d.u64(id) || !d.bytes(s)) return d.error();
        if (tag == kSubscribe) {
          ops.emplace_back(OpSubscribe{id, std::string(s)});
        } else {
          ops.emplace_back(OpUnsubscribe{id, std::string(s)});
        }
        break;
      }
      case kRotate: {
        OpRotate o{};
        if (!d.u64(o.stream_id) || !d.u64(o.sealed_chunk) || !d.u64(o.sealed_size) || !d.u64(o.end_before_rotated)) {
          return d.error();
        }
        ops.emplace_back(o);
        break;
      }
      case kShipped: {
        OpShipped o{};
        if (!d.u64(o.stream_id) || !d.u64(o.chunk_no)) return d.error();
        ops.emplace_back(o);
        break;
      }
      case kClearDirty: {
        std::uint32_t n = 0;
        if (!d.u32(n)) return d.error();
        OpClearDirty o;
        for (std::uint32_t k = 0; k < n; ++k) {
          std::uint64_t id = 0;
          if (!d.u64(id)) return d.error();
          o.stream_ids.push_back(id);
        }
        ops.emplace_back(std::move(o));
        break;
      }
      default:
        return d.error(fmt::format("unknown operation tag {}", tag));
    }
  }
  if (!d.done()) return d.error("trailing bytes after the last operation");
  return ops;
}

bool StreamState::subscribed(const StreamName& sub) const {
  return std::binary_search(subscriptions.begin(), subscriptions.end(), sub);
}

const StreamState* State::find(const StreamName& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &streams_.at(it->second);
}

const StreamState* State::find(std::uint64_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

Result<StreamState*> State::must_find(std::uint64_t id, std::string_view op) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return corrupt(fmt::format("{} names unknown stream id {}", op, id));
  return &it->second;
}

Result<void> State::apply(const Op& op, Checksums checksums) {
  const bool keep = checksums == Checksums::keep;
  if (const auto* c = std::get_if<OpCreateStream>(&op)) {
    auto name = StreamName::parse(c->name);
    if (!name) return corrupt("create_stream: " + name.error().message);
    if (c->id != next_stream_id_) {
      return corrupt(fmt::format("create_stream {}: id {} but the next id is {}", c->name, c->id, next_stream_id_));
    }
    if (by_name_.contains(*name)) return corrupt(fmt::format("create_stream {}: exists already", c->name));
    if (!name->is_root() && !by_name_.contains(name->parent())) {
      return corrupt(fmt::format("create_stream {}: parent missing", c->name));
    }
    StreamState st;
    st.id = c->id;
    st.name = *name;
    streams_.emplace(c->id, std::move(st));
    by_name_.emplace(*name, c->id);
    ++next_stream_id_;
    return {};
  }
  if (const auto* w = std::get_if<OpChunkWrite>(&op)) {
    auto st = must_find(w->stream_id, "chunk_write");
    if (!st) return st.error();
    StreamState& s = **st;
    if (w->chunk_no != s.chunk_no || w->offset != s.size) {
      return corrupt(fmt::format("chunk_write to {} at {}:{} but its end is {}:{}", s.name.str(), w->chunk_no,
                                 w->offset, s.chunk_no, s.size));
    }
    s.size += w->bytes.size();
    if (keep && s.crc) s.crc = crc32c::extend(*s.crc, w->bytes);
    if (w->offset > 0) s.rotation_alias.reset();
    if (!s.subscriptions.empty()) dirty_[s.id] = s.end();
    return {};
  }
  if (const auto* sub = std::get_if<OpSubscribe>(&op)) {
    auto st = must_find(sub->stream_id, "subscribe");
    if (!st) return st.error();
    auto name = StreamName::parse(sub->subscription);
    if (!name) return corrupt("subscribe: " + name.error().message);
    auto& subs = (**st).subscriptions;
    auto it = std::lower_bound(subs.begin(), subs.end(), *name);
    if (it != subs.end() && *it == *name) return corrupt("subscribe: already subscribed");
    subs.insert(it, *name);
    return {};
  }
  if (const auto* un = std::get_if<OpUnsubscribe>(&op)) {
    auto st = must_find(un->stream_id, "unsubscribe");
    if (!st) return st.error();
    auto name = StreamName::parse(un->subscription);
    if (!name) return corrupt("unsubscribe: " + name.error().message);
    auto& subs = (**st).subscriptions;
    auto it = std::lower_bound(subs.begin(), subs.end(), *name);
    if (it == subs.end() || !(*it == *name)) return corrupt("unsubscribe: not subscribed");
    subs.erase(it);
    return {};
  }
  if (const auto* r = std::get_if<OpRotate>(&op)) {
    auto st = must_find(r->stream_id, "rotate");
    if (!st) return st.error();
    StreamState& s = **st;
    if (r->sealed_chunk != s.chunk_no || r->sealed_size != s.size || r->end_before_rotated >= r->sealed_size) {
      return corrupt(fmt::format("rotate of {} chunk {} size {} does not match its state (chunk {} size {})",
                                 s.name.str(), r->sealed_chunk, r->sealed_size, s.chunk_no, s.size));
    }
    s.sealed[s.chunk_no] = s.size;
    if (keep) {
      if (s.crc) {
        s.sealed_crc[s.chunk_no] = *s.crc;
      } else {
        s.sealed_crc.erase(s.chunk_no);
      }
      s.crc = 0;  // the next chunk starts empty: its checksum is known from here
    }
    s.rotation_alias = Position{s.chunk_no, r->end_before_rotated};
    ++s.chunk_no;
    s.size = 0;
    return {};
  }
  if (const auto* sh = std::get_if<OpShipped>(&op)) {
    auto st = must_find(sh->stream_id, "shipped");
    if (!st) return st.error();
    if ((**st).sealed.erase(sh->chunk_no) == 0) return corrupt("shipped: chunk is not sealed-and-held");
    (**st).sealed_crc.erase(sh->chunk_no);
    return {};
  }
  const auto& cd = std::get<OpClearDirty>(op);
  for (auto id : cd.stream_ids) dirty_.erase(id);
  return {};
}

std::string State::encode_snapshot(std::uint64_t replay_from_segment) const {
  std::string body;
  put_u32(body, kSnapshotVersion);
  put_u64(body, last_commit_no);
  put_u64(body, replay_from_segment);
  put_u64(body, next_stream_id_);
  put_u32(body, static_cast<std::uint32_t>(by_name_.size()));
  for (const auto& [name, id] : by_name_) {  // ordered: creation order is not needed, parents first is
    const StreamState& s = streams_.at(id);
    put_u64(body, s.id);
    put_bytes(body, s.name.str());
    put_u64(body, s.chunk_no);
    put_u64(body, s.size);
    put_u8(body, s.crc ? 1 : 0);
    put_u32(body, s.crc.value_or(0));
    put_u32(body, static_cast<std::uint32_t>(s.subscriptions.size()));
    for (const auto& sub : s.subscriptions) put_bytes(body, sub.str());
    put_u32(body, static_cast<std::uint32_t>(s.sealed.size()));
    for (const auto& [chunk, size] : s.sealed) {
      put_u64(body, chunk), put_u64(body, size);
      const auto crc = s.sealed_crc.find(chunk);
      put_u8(body, crc != s.sealed_crc.end() ? 1 : 0);
      put_u32(body, crc != s.sealed_crc.end() ? crc->second : 0);
    }
    put_u8(body, s.rotation_alias ? 1 : 0);
    if (s.rotation_alias) put_u64(body, s.rotation_alias->chunk), put_u64(body, s.rotation_alias->offset);
  }
  put_u32(body, static_cast<std::uint32_t>(dirty_.size()));
  for (const auto& [id, pos] : dirty_) put_u64(body, id), put_u64(body, pos.chunk), put_u64(body, pos.offset);

  std::string out(kSnapshotMagic, sizeof kSnapshotMagic);
  put_u32(out, crc32c::mask(crc32c::value(body)));
  put_u64(out, body.size());
  out += body;
  return out;
}

Result<State::Snapshot> State::decode_snapshot(std::string_view data) {
  constexpr std::size_t kHead = sizeof kSnapshotMagic + 4 + 8;
  if (data.size() < kHead || data.substr(0, sizeof kSnapshotMagic) != std::string_view(kSnapshotMagic, 8)) {
    return corrupt("snapshot: bad magic or too short (not an Event Horizon snapshot)");
  }
  Decoder h(data.substr(sizeof kSnapshotMagic), "snapshot header");
  std::uint32_t masked = 0;
  std::uint64_t len = 0;
  (void)h.u32(masked), (void)h.u64(len);
  const auto body = data.substr(kHead);
  if (len != body.size()) {
    return corrupt(fmt::format("snapshot: length field says {} bytes but {} follow (truncated or extended)", len,
                               body.size()));
  }
  if (crc32c::unmask(masked) != crc32c::value(body)) return corrupt("snapshot: checksum mismatch");

  Snapshot snap;
  State& st = snap.state;
  Decoder d(body, "snapshot");
  std::uint32_t version = 0, nstreams = 0;
  if (!d.u32(version)) return d.error();
  if (version != 1 && version != kSnapshotVersion) return d.error(fmt::format("unsupported version {}", version));
  // A checksum field: a known flag (0 or 1) and the CRC32C.
  auto crc_field = [&d]() -> std::optional<std::optional<std::uint32_t>> {
    std::uint8_t known = 0;
    std::uint32_t crc = 0;
    if (!d.u8(known) || !d.u32(crc) || known > 1) return std::nullopt;
    return known ? std::optional<std::uint32_t>(crc) : std::nullopt;
  };
  if (!d.u64(st.last_commit_no) || !d.u64(snap.replay_from_segment) || !d.u64(st.next_stream_id_) ||
      !d.u32(nstreams)) {
    return d.error();
  }
  for (std::uint32_t i = 0; i < nstreams; ++i) {
    StreamState s;
    std::string_view name;
    std::uint32_t nsubs = 0, nsealed = 0;
    std::uint8_t has_alias = 0;
    if (!d.u64(s.id) || !d.bytes(name) || !d.u64(s.chunk_no) || !d.u64(s.size)) return d.error();
    s.crc = std::nullopt;  // version 1: unknown
    if (version >= 2) {
      auto crc = crc_field();
      if (!crc) return d.error("bad checksum field");
      s.crc = *crc;
    }
    if (!d.u32(nsubs)) return d.error();
    auto n = StreamName::parse(name);
    if (!n) return d.error(n.error().message);
    s.name = *n;
    for (std::uint32_t k = 0; k < nsubs; ++k) {
      std::string_view sub;
      if (!d.bytes(sub)) return d.error();
      auto sn = StreamName::parse(sub);
      if (!sn) return d.error(sn.error().message);
      s.subscriptions.push_back(*sn);
    }
    if (!d.u32(nsealed)) return d.error();
    for (std::uint32_t k = 0; k < nsealed; ++k) {
      std::uint64_t chunk = 0, size = 0;
      if (!d.u64(chunk) || !d.u64(size)) return d.error();
      s.sealed[chunk] = size;
      if (version >= 2) {
        auto crc = crc_field();
        if (!crc) return d.error("bad checksum field");
        if (*crc) s.sealed_crc[chunk] = **crc;
      }
    }
    if (!d.u8(has_alias)) return d.error();
    if (has_alias != 0) {
      Position p;
      if (!d.u64(p.chunk) || !d.u64(p.offset)) return d.error();
      s.rotation_alias = p;
    }
    if (st.streams_.contains(s.id) || st.by_name_.contains(s.name)) return d.error("duplicate stream");
    st.by_name_.emplace(s.name, s.id);
    st.streams_.emplace(s.id, std::move(s));
  }
  std::uint32_t ndirty = 0;
  if (!d.u32(ndirty)) return d.error();
  for (std::uint32_t k = 0; k < ndirty; ++k) {
    std::uint64_t id = 0;
    Position p;
    if (!d.u64(id) || !d.u64(p.chunk) || !d.u64(p.offset)) return d.error();
    st.dirty_[id] = p;
  }
  if (!d.done()) return d.error("trailing bytes");
  return snap;
}

}  // namespace horizon::writer
