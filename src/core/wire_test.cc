#include "core/wire.h"

#include <gtest/gtest.h>

namespace horizon::wire {
namespace {

template <class T>
void expect_error(const Result<T>& r, errc code, std::string_view part) {
  ASSERT_FALSE(r) << "accepted";
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
}

TEST(Wire, CreateStream) {
  auto r = parse_create_stream_request(R"({"Name":"/a/b"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->name.str(), "/a/b");
  EXPECT_EQ(to_json(*r), R"({"Name":"/a/b"})");
  expect_error(parse_create_stream_request(R"({"Name":"a"})"), errc::invalid_stream_name, "must start with '/'");
  expect_error(parse_create_stream_request(R"({"Name":1})"), errc::bad_json, "\"Name\" must be a string");
  expect_error(parse_create_stream_request(R"({})"), errc::bad_json, "\"Name\" is missing");
  expect_error(parse_create_stream_request(R"({"Name":"/a"} x)"), errc::bad_json, "not valid JSON");
  expect_error(parse_create_stream_request(R"({"Name":"/a"}{})"), errc::bad_json, "not valid JSON");
  expect_error(parse_create_stream_request(R"(["/a"])"), errc::bad_json, "expected a JSON object");
  expect_error(parse_create_stream_request(R"({"Name":"/a","Nmae":"/b"})"), errc::bad_json, "unknown field \"Nmae\"");
  expect_error(parse_create_stream_request(""), errc::bad_json, "not valid JSON");
  expect_error(parse_create_stream_request("{\"Name\":\"/\xC3\"}"), errc::bad_json, "not valid JSON");
}

TEST(Wire, Append) {
  auto r = parse_append_request(R"({"Stream":"/a","Lines":["l1","l2"]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->lines, (std::vector<std::string>{"l1", "l2"}));
  EXPECT_FALSE(r->after);
  EXPECT_EQ(to_json(*r), R"({"Stream":"/a","Lines":["l1","l2"]})");

  auto after = parse_append_request(R"({"Stream":"/a","Lines":[],"After":"/a:0:65:?"})");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->after->to_string(), "/a:0:65:?");
  EXPECT_TRUE(after->lines.empty());
  EXPECT_TRUE(parse_append_request(R"({"Stream":"/a","Lines":["x"],"After":null})"));

  expect_error(parse_append_request(R"({"Stream":"/a","Lines":["ok","a\nb"]})"), errc::invalid_line,
               "line 1 contains a newline");
  expect_error(parse_append_request(R"({"Stream":"/a","Lines":["a\rb"]})"), errc::invalid_line, "carriage return");
  expect_error(parse_append_request(R"({"Stream":"/a","Lines":["a\u0000b"]})"), errc::invalid_line, "NUL");
  expect_error(parse_append_request(R"({"Stream":"/a","Lines":["\ud800"]})"), errc::bad_json, "not valid JSON");
  expect_error(parse_append_request(R"({"Stream":"/a","Lines":[1]})"), errc::bad_json, "line 0 is not");
  expect_error(parse_append_request(R"({"Stream":"/a","Lines":"x"})"), errc::bad_json, "must be an array");
  expect_error(parse_append_request(R"({"Stream":"/a"})"), errc::bad_json, "\"Lines\" is missing");
  expect_error(parse_append_request(R"({"Stream":"/a","Lines":[],"After":"/b:0:0"})"), errc::invalid_cursor,
               "names stream /b");
  expect_error(parse_append_request(R"({"Stream":"/a","Lines":[],"After":"/a:0"})"), errc::invalid_cursor,
               "\"After\"");

  // Line count limit at N-1, N, N+1.
  auto batch = [](std::size_t n) {
    std::string s = R"({"Stream":"/a","Lines":[)";
    for (std::size_t i = 0; i < n; ++i) s += i ? ",\"x\"" : "\"x\"";
    return s + "]}";
  };
  EXPECT_TRUE(parse_append_request(batch(kMaxLinesPerAppend - 1)));
  EXPECT_TRUE(parse_append_request(batch(kMaxLinesPerAppend)));
  expect_error(parse_append_request(batch(kMaxLinesPerAppend + 1)), errc::too_many_lines, "at most 10000");
}

TEST(Wire, AppendResponseAndConflict) {
  AppendResponse r{Cursor::parse("/a:0:65:127.0.0.1").value()};
  EXPECT_EQ(to_json(r), R"({"Offset":"/a:0:65:127.0.0.1"})");
  EXPECT_EQ(parse_append_response(to_json(r)).value().offset.to_string(), "/a:0:65:127.0.0.1");
  const std::string body = conflict_body(Cursor::parse("/a:0:99:h").value());
  EXPECT_EQ(body,
            R"({"error":"conflict","message":"the stream's end is /a:0:99:h, not the After cursor","Offset":"/a:0:99:h"})");
  EXPECT_EQ(parse_append_response(body).value().offset.to_string(), "/a:0:99:h");
}

TEST(Wire, Subscription) {
  auto r = parse_subscription_request(R"({"Stream":"/a","SubscriptionId":"/_sub/x"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(to_json(*r), R"({"Stream":"/a","SubscriptionId":"/_sub/x"})");
  expect_error(parse_subscription_request(R"({"Stream":"/a","SubscriptionId":"/x"})"), errc::not_a_subscription,
               "not a stream under /_sub/");
  expect_error(parse_subscription_request(R"({"Stream":"/_sub/y","SubscriptionId":"/_sub/x"})"),
               errc::subscription_loop, "cannot be subscribed");
  expect_error(parse_subscription_request(R"({"Stream":"/_sub","SubscriptionId":"/_sub/x"})"),
               errc::subscription_loop, "cannot be subscribed");
  expect_error(parse_subscription_request(R"({"Stream":"/a"})"), errc::bad_json, "\"SubscriptionId\" is missing");
}

TEST(Wire, LiveRead) {
  auto r = parse_live_read_request(R"({"Cursor":"/a:0:0","MaxLinesToRead":1000})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->max_lines_to_read, 1000);
  EXPECT_EQ(to_json(*r), R"({"Cursor":"/a:0:0","MaxLinesToRead":1000})");
  expect_error(parse_live_read_request(R"({"Cursor":"/a:0:0","MaxLinesToRead":0})"), errc::invalid_argument, "1..");
  expect_error(parse_live_read_request(R"({"Cursor":"/a:0:0","MaxLinesToRead":10001})"), errc::invalid_argument,
               "1..");
  expect_error(parse_live_read_request(R"({"Cursor":"/a:0:0","MaxLinesToRead":1.5})"), errc::bad_json,
               "must be an integer");
  expect_error(parse_live_read_request(R"({"Cursor":"/a:0:0","MaxLinesToRead":18446744073709551615})"),
               errc::bad_json, "too large");
  expect_error(parse_live_read_request(R"({"Cursor":"/a:-1:-1","MaxLinesToRead":1})"), errc::invalid_cursor,
               "\"Cursor\"");
}

TEST(Wire, PushRequestRoundTripWithV1Example) {
  // Shaped like the v1 protocol document's push.
  const std::string body =
      R"({"SubscriptionId":"/_sub/example-sub","Push":{"FromOffset":"/sampledata:0:0:127.0.0.1","Lines":[)"
      R"({"PtrAfter":"/sampledata:0:65:127.0.0.1","Content":"{\"subscription_ids\":[],\"ts\":\"2017-03-27T16:54:00.539Z\"}","MetaType":"Created","MetaPayload":{"subscription_ids":[],"ts":"2017-03-27T16:54:00.539Z"}},)"
      R"({"PtrAfter":"/sampledata:0:171:127.0.0.1","Content":"Mon Mar 27 16:55:02 UTC 2017","MetaType":"","MetaPayload":null}]}})";
  auto r = parse_push_request(body);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->subscription_id, "/_sub/example-sub");
  ASSERT_EQ(r->lines.size(), 2u);
  EXPECT_EQ(r->lines[0].meta_type, "Created");
  EXPECT_TRUE(r->lines[0].meta_payload->is_object());
  EXPECT_EQ(r->lines[1].content, "Mon Mar 27 16:55:02 UTC 2017");
  EXPECT_FALSE(r->lines[1].meta_payload);
  EXPECT_EQ(to_json(*r), body);

  auto q = parse_push_request(R"({"SubscriptionId":"_query_","Push":{"FromOffset":"/:-1:-1","Lines":[]}})");
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->from_offset.is_offset_query());
  expect_error(parse_push_request(R"({"SubscriptionId":"/x","Push":{"FromOffset":"/:0:0","Lines":[]}})"),
               errc::bad_json, "_query_");
  expect_error(parse_push_request(R"({"SubscriptionId":"_query_","Push":{"FromOffset":"/:0:0","Lines":[)"
                                  R"({"PtrAfter":"/b:0:1","Content":"x"}]}})"),
               errc::bad_json, "another stream");
}

TEST(Wire, PushResponse) {
  // v1 apps send every field, with "" and null for the unused ones.
  auto r = parse_push_response(
      R"({"Code":"incorrect_base_offset","AcceptedOffset":"/_sub/example-sub:0:0:?","CorrectSubscriptionId":"","BehindCursors":null})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->code, PushCode::incorrect_base_offset);
  EXPECT_EQ(r->accepted_offset->to_string(), "/_sub/example-sub:0:0:?");
  auto s = parse_push_response(
      R"({"Code":"success","AcceptedOffset":"/_sub/example-sub:0:65:127.0.0.1","CorrectSubscriptionId":"","BehindCursors":["/sampledata:0:0:?"],"Extra":1})");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->behind_cursors.size(), 1u);
  EXPECT_EQ(to_json(*s),
            R"({"Code":"success","AcceptedOffset":"/_sub/example-sub:0:65:127.0.0.1","CorrectSubscriptionId":"","BehindCursors":["/sampledata:0:0:?"]})");
  auto q = parse_push_response(R"({"Code":"incorrect_subscription_id","CorrectSubscriptionId":"/_sub/example-sub"})");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->correct_subscription_id, "/_sub/example-sub");
  expect_error(parse_push_response(R"({"Code":"ok","AcceptedOffset":"/a:0:0"})"), errc::bad_json, "Code");
  expect_error(parse_push_response(R"({"Code":"success"})"), errc::bad_json, "AcceptedOffset");
  expect_error(parse_push_response(R"({"Code":"incorrect_subscription_id"})"), errc::bad_json,
               "CorrectSubscriptionId");
  expect_error(parse_push_response(R"({"Code":"success","AcceptedOffset":"/a:0:0","BehindCursors":[1]})"),
               errc::bad_json, "only strings");
}

}  // namespace
}  // namespace horizon::wire
