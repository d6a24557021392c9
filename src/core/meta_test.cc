#include "core/meta.h"

#include "core/raw_line.h"

#include <gtest/gtest.h>

namespace horizon {
namespace {

Timestamp ts(const char* s) { return Timestamp::parse(s).value(); }
StreamName name(const char* s) { return StreamName::parse(s).value(); }
Cursor cur(const char* s) { return Cursor::parse(s).value(); }

// Each of the six SPEC §4 types: exact line bytes, and parse(encode(x)) == x.
TEST(Meta, GoldenLinesAndRoundTrip) {
  const std::pair<MetaEvent, std::string> cases[] = {
      {CreatedMeta{{}, ts("2017-03-31T11:09:00.643Z")},
       R"(/Created {"subscription_ids":[],"ts":"2017-03-31T11:09:00.643Z"})"},
      {CreatedMeta{{name("/_sub/a"), name("/_sub/b")}, ts("2017-03-31T11:09:00.643Z")},
       R"(/Created {"subscription_ids":["/_sub/a","/_sub/b"],"ts":"2017-03-31T11:09:00.643Z"})"},
      {ChildStreamCreatedMeta{name("/tenants/acme"), cur("/tenants/acme:0:0:127.0.0.1"), ts("2017-03-27T16:53:51.655Z")},
       R"(/ChildStreamCreated {"name":"/tenants/acme","cursor":"/tenants/acme:0:0:127.0.0.1","ts":"2017-03-27T16:53:51.655Z"})"},
      {RotatedMeta{cur("/tenants/acme:4:0:127.0.0.1"), ts("2017-03-27T16:53:51.655Z")},
       R"(/Rotated {"next":"/tenants/acme:4:0:127.0.0.1","ts":"2017-03-27T16:53:51.655Z"})"},
      {SubscribedMeta{name("/_sub/billing"), ts("2017-03-27T16:54:08.682Z")},
       R"(/Subscribed {"subscription_id":"/_sub/billing","ts":"2017-03-27T16:54:08.682Z"})"},
      {UnsubscribedMeta{name("/_sub/billing"), ts("2017-03-27T16:54:08.682Z")},
       R"(/Unsubscribed {"subscription_id":"/_sub/billing","ts":"2017-03-27T16:54:08.682Z"})"},
      {SubscriptionActivityMeta{{cur("/tenants/foo:0:700"), cur("/tenants/bar:245:14:h")}, ts("2017-02-27T17:12:31.446Z")},
       R"(/SubscriptionActivity {"activity":["/tenants/foo:0:700","/tenants/bar:245:14:h"],"ts":"2017-02-27T17:12:31.446Z"})"},
  };
  for (const auto& [event, line] : cases) {
    EXPECT_EQ(encode_meta_line(event), line + "\n");
    auto raw = parse_raw_line(line);
    ASSERT_TRUE(raw) << raw.error().message;
    auto back = raw->meta();
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_TRUE(*back == event) << line;
    EXPECT_EQ(raw->encode(), line + "\n");
  }
}

TEST(Meta, V1ParserAcceptsSpacesInsideJson) {
  // From the v1 test suite: JSON with spaces still parses.
  auto raw = parse_raw_line(
      R"(/SubscriptionActivity {"activity": ["/tenants/foo:0:700", "/tenants/bar:245:14"], "ts":"2017-02-27T17:12:31.446Z"})");
  ASSERT_TRUE(raw);
  auto m = raw->meta();
  ASSERT_TRUE(m);
  const auto& act = std::get<SubscriptionActivityMeta>(*m);
  ASSERT_EQ(act.activity.size(), 2u);
  EXPECT_EQ(act.activity[1].to_string(), "/tenants/bar:245:14");
}

TEST(Meta, UnknownTypePassesThroughUnchanged) {
  const std::string line = R"(/AuthorityChanged {"whatever": [1, 2], "ts":"x"})";
  auto raw = parse_raw_line(line);
  ASSERT_TRUE(raw);
  auto m = raw->meta();
  ASSERT_TRUE(m);
  ASSERT_TRUE(std::holds_alternative<UnknownMeta>(*m));
  EXPECT_EQ(meta_type(*m), "AuthorityChanged");
  EXPECT_EQ(encode_meta_line(*m), line + "\n");
}

TEST(Meta, StrictFieldsForKnownTypes) {
  const std::pair<const char*, const char*> cases[] = {
      {R"(/Created {"ts":"2017-03-31T11:09:00.643Z"})", "\"subscription_ids\" is missing"},
      {R"(/Created {"subscription_ids":{},"ts":"2017-03-31T11:09:00.643Z"})", "must be an array"},
      {R"(/Created {"subscription_ids":[1],"ts":"2017-03-31T11:09:00.643Z"})", "must hold only strings"},
      {R"(/Created {"subscription_ids":["bad"],"ts":"2017-03-31T11:09:00.643Z"})", "invalid stream name"},
      {R"(/Created {"subscription_ids":[],"ts":"yesterday"})", "invalid timestamp"},
      {R"(/Created {"subscription_ids":[],"ts":"2017-03-31T11:09:00.643Z","x":1})", "unknown field \"x\""},
      {R"(/Rotated {"next":"/a:1","ts":"2017-03-31T11:09:00.643Z"})", "invalid cursor"},
      {R"(/Subscribed {"subscription_id":5,"ts":"2017-03-31T11:09:00.643Z"})", "must be a string"},
      {R"(/ChildStreamCreated {"name":"/a","ts":"2017-03-31T11:09:00.643Z"})", "\"cursor\" is missing"},
      {R"(/SubscriptionActivity {"activity":["/a:0:-1"],"ts":"2017-03-31T11:09:00.643Z"})", "invalid cursor"},
  };
  for (const auto& [line, part] : cases) {
    auto raw = parse_raw_line(line);
    ASSERT_TRUE(raw) << line;
    auto m = raw->meta();
    ASSERT_FALSE(m) << "accepted: " << line;
    EXPECT_EQ(m.error().code, errc::invalid_meta);
    EXPECT_NE(m.error().message.find(part), std::string::npos) << m.error().message;
  }
}

}  // namespace
}  // namespace horizon
