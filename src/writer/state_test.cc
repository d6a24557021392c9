#include "writer/state.h"

#include "wal/coding.h"
#include "wal/crc32c.h"

#include <gtest/gtest.h>

namespace horizon::writer {
namespace {

std::vector<Op> sample_ops() {
  return {OpCreateStream{1, "/"},
          OpChunkWrite{1, 0, 0, " hello\n"},
          OpCreateStream{2, "/_sub"},
          OpCreateStream{3, "/_sub/x"},
          OpSubscribe{1, "/_sub/x"},
          OpChunkWrite{1, 0, 7, " again\n"},
          OpRotate{1, 0, 14, 7},
          OpChunkWrite{1, 1, 0, " next\n"},
          OpShipped{1, 0},
          OpUnsubscribe{1, "/_sub/x"},
          OpClearDirty{{1}}};
}

TEST(WriterState, OpsRoundTripThroughTheCodec) {
  std::string payload;
  const auto ops = sample_ops();
  wal::put_u32(payload, static_cast<std::uint32_t>(ops.size()));
  for (const auto& op : ops) encode_op(payload, op);
  auto back = decode_ops(payload, "test");
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->size(), ops.size());
  std::string again;
  wal::put_u32(again, static_cast<std::uint32_t>(back->size()));
  for (const auto& op : *back) encode_op(again, op);
  EXPECT_EQ(again, payload);
  // Every truncation of the payload is rejected, never misread.
  for (std::size_t n = 0; n < payload.size(); ++n) {
    EXPECT_FALSE(decode_ops(payload.substr(0, n), "test")) << n;
  }
}

TEST(WriterState, ApplyTracksEndsSubscriptionsSealedAndDirty) {
  State st;
  for (const auto& op : sample_ops()) ASSERT_TRUE(st.apply(op));
  const StreamState* root = st.find(StreamName::root());
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->chunk_no, 1u);
  EXPECT_EQ(root->size, 6u);
  EXPECT_TRUE(root->sealed.empty());
  EXPECT_TRUE(root->subscriptions.empty());
  EXPECT_TRUE(st.dirty().empty());
}

TEST(WriterState, ApplyRejectsInconsistentOps) {
  State st;
  ASSERT_TRUE(st.apply(OpCreateStream{1, "/"}));
  EXPECT_FALSE(st.apply(OpCreateStream{1, "/a"}));          // wrong id
  EXPECT_FALSE(st.apply(OpCreateStream{2, "/a/b"}));        // missing parent
  EXPECT_FALSE(st.apply(OpChunkWrite{1, 0, 5, "x"}));       // offset != end
  EXPECT_FALSE(st.apply(OpChunkWrite{9, 0, 0, "x"}));       // unknown stream
  EXPECT_FALSE(st.apply(OpUnsubscribe{1, "/_sub/x"}));      // not subscribed
  EXPECT_FALSE(st.apply(OpShipped{1, 0}));                  // not sealed
  EXPECT_FALSE(st.apply(OpRotate{1, 0, 3, 1}));             // size mismatch
}

TEST(WriterState, SnapshotRoundTripsAndDetectsDamage) {
  State st;
  const auto ops = sample_ops();
  for (std::size_t i = 0; i + 2 < ops.size(); ++i) ASSERT_TRUE(st.apply(ops[i]));
  st.last_commit_no = 77;
  const std::string snap = st.encode_snapshot(5);
  auto back = State::decode_snapshot(snap);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->replay_from_segment, 5u);
  EXPECT_EQ(back->state.last_commit_no, 77u);
  EXPECT_EQ(back->state.encode_snapshot(5), snap);
  ASSERT_EQ(back->state.dirty().size(), 1u);
  // Every single bit flip and every truncation/extension is detected.
  for (std::size_t i = 0; i < snap.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string d = snap;
      d[i] = static_cast<char>(d[i] ^ (1 << bit));
      auto r = State::decode_snapshot(d);
      ASSERT_FALSE(r) << "flip at " << i;
      EXPECT_EQ(r.error().code, errc::corruption);
    }
  }
  for (std::size_t n = 0; n < snap.size(); ++n) EXPECT_FALSE(State::decode_snapshot(snap.substr(0, n)));
  EXPECT_FALSE(State::decode_snapshot(snap + "x"));
}

// RELIABILITY A6: the committed state keeps the CRC32C of every held
// chunk's bytes; the snapshot (version 2) records them.
TEST(WriterState, ChecksumsFollowTheChunksAndSurviveTheSnapshot) {
  State st;
  for (const auto& op : sample_ops()) {
    if (std::holds_alternative<OpShipped>(op)) break;  // keep chunk 0 sealed and held
    ASSERT_TRUE(st.apply(op, State::Checksums::keep));
  }
  const StreamState* root = st.find(StreamName::root());
  ASSERT_NE(root, nullptr);
  ASSERT_EQ(root->sealed_crc.count(0), 1u);
  EXPECT_EQ(root->sealed_crc.at(0), crc32c::value(" hello\n again\n"));
  EXPECT_EQ(root->crc, crc32c::value(" next\n"));
  auto back = State::decode_snapshot(st.encode_snapshot(1));
  ASSERT_TRUE(back) << back.error().message;
  const StreamState* b = back->state.find(StreamName::root());
  EXPECT_EQ(b->sealed_crc, root->sealed_crc);
  EXPECT_EQ(b->crc, root->crc);
  // Replayed on top of the snapshot, a write extends the recovered checksum.
  ASSERT_TRUE(back->state.apply(OpChunkWrite{1, 1, 6, " more\n"}, State::Checksums::keep));
  EXPECT_EQ(back->state.find(StreamName::root())->crc, crc32c::value(" next\n more\n"));
  // Shipped: the checksum goes with the chunk.
  ASSERT_TRUE(st.apply(OpShipped{1, 0}, State::Checksums::keep));
  EXPECT_TRUE(st.find(StreamName::root())->sealed_crc.empty());
  // The pending state skips the work.
  State pending;
  ASSERT_TRUE(pending.apply(OpCreateStream{1, "/"}));
  ASSERT_TRUE(pending.apply(OpChunkWrite{1, 0, 0, " x\n"}));
  EXPECT_EQ(pending.find(StreamName::root())->crc, 0u);
}

// A snapshot written before the checksums (version 1) is still read; its
// chunks' checksums are unknown, and a chunk begun after it has one again.
TEST(WriterState, Version1SnapshotsAreReadWithUnknownChecksums) {
  std::string body;
  wal::put_u32(body, 1);   // version
  wal::put_u64(body, 9);   // last commit
  wal::put_u64(body, 3);   // replay from segment
  wal::put_u64(body, 2);   // next stream id
  wal::put_u32(body, 1);   // streams
  wal::put_u64(body, 1);   // id
  wal::put_bytes(body, "/");
  wal::put_u64(body, 1);   // live chunk
  wal::put_u64(body, 6);   // its size
  wal::put_u32(body, 0);   // subscriptions
  wal::put_u32(body, 1);   // sealed chunks
  wal::put_u64(body, 0), wal::put_u64(body, 14);
  wal::put_u8(body, 0);    // no rotation alias
  wal::put_u32(body, 0);   // dirty streams
  std::string snap("EHSNAP\0\0", 8);
  wal::put_u32(snap, crc32c::mask(crc32c::value(body)));
  wal::put_u64(snap, body.size());
  snap += body;
  auto back = State::decode_snapshot(snap);
  ASSERT_TRUE(back) << back.error().message;
  State& st = back->state;
  const StreamState* root = st.find(StreamName::root());
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->sealed.at(0), 14u);
  EXPECT_TRUE(root->sealed_crc.empty());
  EXPECT_FALSE(root->crc.has_value());
  ASSERT_TRUE(st.apply(OpChunkWrite{1, 1, 6, " x\n"}, State::Checksums::keep));
  EXPECT_FALSE(st.find(StreamName::root())->crc.has_value());
  ASSERT_TRUE(st.apply(OpRotate{1, 1, 9, 6}, State::Checksums::keep));
  EXPECT_FALSE(st.find(StreamName::root())->sealed_crc.contains(1));  // unknown stays unknown
  EXPECT_EQ(st.find(StreamName::root())->crc, 0u);                    // chunk 2: known from its start
  // And it is written back as version 2.
  EXPECT_TRUE(State::decode_snapshot(st.encode_snapshot(3)));
}

}  // namespace
}  // namespace horizon::writer
