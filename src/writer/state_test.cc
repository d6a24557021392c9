#include "writer/state.h"

#include "wal/coding.h"

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

}  // namespace
}  // namespace horizon::writer
