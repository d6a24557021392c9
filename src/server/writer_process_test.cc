// plan_descriptors: how the Writer shares its open-file limit.

#include "server/writer_process.h"

#include <gtest/gtest.h>

#include <limits>

namespace horizon::server {
namespace {

const DescriptorPlan kDefaults{1024, 1024, 1024, 256};  // API, pub/sub, metrics, chunk files

TEST(DescriptorPlan, AHighLimitKeepsTheCaps) {
  for (std::uint64_t limit : {std::uint64_t{1} << 20, std::uint64_t{524288}, std::numeric_limits<std::uint64_t>::max(),
                              std::uint64_t{kOtherDescriptors + 1024 + 1024 + 1024 + 256}}) {
    auto p = plan_descriptors(limit, kDefaults);
    ASSERT_TRUE(p) << limit;
    EXPECT_EQ(*p, kDefaults) << limit;
  }
}

TEST(DescriptorPlan, ALowLimitLowersTheCapsToFit) {
  for (std::uint64_t limit : {std::uint64_t{kOtherDescriptors + 1024 + 1024 + 1024 + 255}, std::uint64_t{4096},
                              std::uint64_t{1024}, std::uint64_t{512}, std::uint64_t{256}}) {
    auto p = plan_descriptors(limit, kDefaults);
    ASSERT_TRUE(p) << limit << ": " << p.error().message;
    EXPECT_LE(kOtherDescriptors + p->total(), limit) << limit;
    EXPECT_GE(p->api, 16u) << limit;
    EXPECT_GE(p->pubsub, 8u) << limit;
    EXPECT_GE(p->metrics, 2u) << limit;
    EXPECT_GE(p->engine_files, 16u) << limit;
    EXPECT_LE(p->api, kDefaults.api);
    EXPECT_LE(p->engine_files, kDefaults.engine_files);
  }
  // The common container limit: most of it for API connections.
  auto p = plan_descriptors(1024, kDefaults).value();
  EXPECT_EQ(p, (DescriptorPlan{470, 234, 16, 240}));
}

TEST(DescriptorPlan, PubSubOffLeavesMoreForTheApi) {
  auto p = plan_descriptors(1024, DescriptorPlan{1024, 0, 1024, 256}).value();
  EXPECT_EQ(p.pubsub, 0u);
  EXPECT_EQ(p.api, 1024u - kOtherDescriptors - 240 - 16);
}

TEST(DescriptorPlan, ALimitBelowTheMinimumIsAClearError) {
  const std::uint64_t least = kOtherDescriptors + 16 + 8 + 2 + 16;
  EXPECT_TRUE(plan_descriptors(least, kDefaults));
  auto p = plan_descriptors(least - 1, kDefaults);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, errc::invalid_argument);
  EXPECT_NE(p.error().message.find("open-file limit is " + std::to_string(least - 1)), std::string::npos)
      << p.error().message;
  EXPECT_NE(p.error().message.find("at least " + std::to_string(least)), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("ulimit -n"), std::string::npos) << p.error().message;
}

}  // namespace
}  // namespace horizon::server
