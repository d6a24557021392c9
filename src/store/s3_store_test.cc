// s3:// specifics: URL parsing, the XML parsers, and the HTTP behaviour
// (retries, timeouts, verification, request shape, connection reuse)
// against a scripted loopback server, plus the error paths of the real
// s3rver and of OpenStack Swift (which, unlike s3rver, checks signatures
// and payload hashes: wrong secrets and corrupted bodies are refused).

#include "store/s3_store.h"

#include "store/s3_internal.h"
#include "store/sigv4.h"
#include "store/test_support.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <unistd.h>

namespace horizon::store {
namespace {

using test::FakeHttpServer;
using test::FakeResponse;
using test::SeenRequest;

constexpr const char* kSecret = "wJalr/Secret+Key";         // decoded
constexpr const char* kSecretInUrl = "wJalr%2FSecret+Key";  // as written in STORE

std::string url_for(const FakeHttpServer& server) {
  return std::string("s3://AKIDTEST:") + kSecretInUrl + "@eu-west-1/bucket-1?endpoint=" + server.endpoint();
}

S3Options fast_options() {
  S3Options o;
  o.connect_timeout = std::chrono::milliseconds(1000);
  o.request_timeout = std::chrono::milliseconds(2000);
  o.backoff_base = std::chrono::milliseconds(1);
  o.backoff_cap = std::chrono::milliseconds(5);
  return o;
}

void expect_clean(const Error& e) {
  EXPECT_EQ(e.message.find(kSecret), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find(kSecretInUrl), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find("Secret+Key"), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find("Authorization"), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find("Signature="), std::string::npos) << e.message;
}

// What the server sees must be what was signed: recompute the signature
// from the received request with the known (decoded) secret.
void expect_valid_signature(const SeenRequest& r, std::string_view body) {
  const auto auth = r.header("authorization");
  ASSERT_TRUE(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/")) << auth;
  EXPECT_NE(auth.find("/eu-west-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature="),
            std::string::npos)
      << auth;
  EXPECT_EQ(r.header("x-amz-content-sha256"), sigv4::sha256_hex(body));
  const auto q = r.target.find('?');
  const std::string path = r.target.substr(0, q);
  sigv4::Pairs query;
  if (q != std::string::npos) {
    std::string_view rest = std::string_view(r.target).substr(q + 1);
    while (!rest.empty()) {
      const auto amp = rest.find('&');
      const auto param = rest.substr(0, amp);
      const auto eq = param.find('=');
      std::string name, value;
      ASSERT_TRUE(sigv4::percent_decode(param.substr(0, eq), name));
      ASSERT_TRUE(sigv4::percent_decode(eq == std::string_view::npos ? "" : param.substr(eq + 1), value));
      query.emplace_back(name, value);
      rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    }
    // The query went out in canonical order and encoding.
    EXPECT_EQ(sigv4::canonical_query(query), r.target.substr(q + 1));
  }
  const auto date = r.header("x-amz-date");
  const auto s = sigv4::sign(sigv4::Request{r.method,
                                            path,
                                            query,
                                            {{"host", r.header("host")},
                                             {"x-amz-content-sha256", r.header("x-amz-content-sha256")},
                                             {"x-amz-date", date}},
                                            r.header("x-amz-content-sha256")},
                             sigv4::Scope{date, "eu-west-1", "s3"}, sigv4::Credentials{"AKIDTEST", kSecret});
  EXPECT_EQ(auth, s.authorization);
}

FakeResponse ok_body(std::string body) {
  FakeResponse r;
  r.headers = {"ETag: \"" + sigv4::md5_hex(body) + "\""};
  r.body = std::move(body);
  return r;
}

FakeResponse status(int code, std::string body = {}) {
  FakeResponse r;
  r.status = code;
  r.body = std::move(body);
  return r;
}

std::unique_ptr<ObjectStore> open_fake(const FakeHttpServer& server, S3Options o = fast_options()) {
  auto s = open_s3_store(url_for(server), o);
  EXPECT_TRUE(s) << s.error().message;
  return s ? std::move(*s) : nullptr;
}

// --- URL ---

TEST(S3Url, ParsesCredentialsRegionBucketEndpoint) {
  auto c = detail::parse_s3_url("s3://AKIA%3Ax:sup3r%2Fsecret@eu-west-1/my.bucket-1?endpoint=http://127.0.0.1:4568");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->access_key_id, "AKIA:x");
  EXPECT_EQ(c->secret_access_key, "sup3r/secret");
  EXPECT_EQ(c->region, "eu-west-1");
  EXPECT_EQ(c->bucket, "my.bucket-1");
  EXPECT_EQ(c->endpoint, "http://127.0.0.1:4568");
  EXPECT_EQ(c->host_header, "127.0.0.1:4568");

  auto aws = detail::parse_s3_url("s3://AKIA:secret@us-east-1/bucket");
  ASSERT_TRUE(aws);
  EXPECT_EQ(aws->endpoint, "https://s3.us-east-1.amazonaws.com");
  EXPECT_EQ(aws->host_header, "s3.us-east-1.amazonaws.com");

  auto default_port = detail::parse_s3_url("s3://A:s@r1/bucket?endpoint=https%3A%2F%2Fminio.local%3A443%2F");
  ASSERT_TRUE(default_port) << default_port.error().message;
  EXPECT_EQ(default_port->endpoint, "https://minio.local:443");
  EXPECT_EQ(default_port->host_header, "minio.local");
  auto v6 = detail::parse_s3_url("s3://A:s@r1/bucket?endpoint=http://[::1]:9000");
  ASSERT_TRUE(v6) << v6.error().message;
  EXPECT_EQ(v6->host_header, "[::1]:9000");

  auto store = open_s3_store("s3://AKIA:sup3rsecret@eu-west-1/bucket?endpoint=http://127.0.0.1:4568");
  ASSERT_TRUE(store);
  EXPECT_EQ((*store)->describe(), "s3://eu-west-1/bucket?endpoint=http://127.0.0.1:4568");
  auto parsed = parse_store_url("s3://AKIA:sup3rsecret@eu-west-1/bucket?endpoint=http://127.0.0.1:4568");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->endpoint, "http://127.0.0.1:4568");
  EXPECT_EQ(parsed->bucket, "bucket");
}

TEST(S3Url, RejectsBadUrlsWithoutEchoingTheSecret) {
  const char* bad[] = {
      "s3://sup3rsecretonly@eu-west-1/bucket",                           // no ':'
      "s3://AKIA:sup3rsecret-eu-west-1/bucket",                          // no '@'
      "s3://AKIA:@eu-west-1/bucket",                                     // empty secret
      "s3://:sup3rsecret@eu-west-1/bucket",                              // empty key id
      "s3://AKIA:sup3rsecret%2@eu-west-1/bucket",                        // bad escape
      "s3://AKIA:sup3r%20secret@eu-west-1/bucket",                       // space
      "s3://AKIA:sup3rsecret@EU_WEST/bucket",                            // region
      "s3://AKIA:sup3rsecret@eu-west-1",                                 // no bucket
      "s3://AKIA:sup3rsecret@eu-west-1/Bucket",                          // uppercase
      "s3://AKIA:sup3rsecret@eu-west-1/b",                               // too short
      "s3://AKIA:sup3rsecret@eu-west-1/a..b",                            // ..
      "s3://AKIA:sup3rsecret@eu-west-1/192.168.1.1",                     // IP-like
      "s3://AKIA:sup3rsecret@eu-west-1/bucket/key",                      // path
      "s3://AKIA:sup3rsecret@eu-west-1/bucket?region=x",                 // unknown option
      "s3://AKIA:sup3rsecret@eu-west-1/bucket?endpoint=ftp://h",         // scheme
      "s3://AKIA:sup3rsecret@eu-west-1/bucket?endpoint=http://u:p@h",    // user info
      "s3://AKIA:sup3rsecret@eu-west-1/bucket?endpoint=http://h:99999",  // port
      "s3://AKIA:sup3rsecret@eu-west-1/bucket?endpoint=http://h/path",   // path
  };
  for (const char* url : bad) {
    auto r = detail::parse_s3_url(url);
    ASSERT_FALSE(r) << url;
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_EQ(r.error().message.find("sup3r"), std::string::npos) << r.error().message;
    auto opened = open_store(url);
    ASSERT_FALSE(opened) << url;
    EXPECT_EQ(opened.error().message.find("sup3r"), std::string::npos) << opened.error().message;
  }
}

// --- XML ---

TEST(S3Xml, ParsesListObjectsV2WithEntities) {
  const std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Name>b</Name><Prefix>a/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
      "<IsTruncated>true</IsTruncated>"
      "<!-- a comment with <tags> -->"
      "<Contents><Key>a/x&amp;y&lt;z&gt;&quot;q&quot;&apos;s&apos;&#65;&#x42;</Key>"
      "<LastModified>2024-01-01T00:00:00.000Z</LastModified>"
      "<ETag>&quot;D41D8CD98F00B204E9800998ECF8427E&quot;</ETag><Size>0</Size>"
      "<Owner><ID>x</ID></Owner><StorageClass>STANDARD</StorageClass></Contents>"
      "<Contents><Key><![CDATA[a/<cdata>]]></Key><Size>12345678901</Size><ETag>\"abc-2\"</ETag></Contents>"
      "<NextContinuationToken>1/token+x==</NextContinuationToken>"
      "<Empty/>"
      "</ListBucketResult>";
  auto r = detail::parse_list_objects_v2(xml);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->objects.size(), 2u);
  EXPECT_EQ(r->objects[0].key, "a/x&y<z>\"q\"'s'AB");
  EXPECT_EQ(r->objects[0].size, 0u);
  EXPECT_EQ(r->objects[0].etag, "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(r->objects[1].key, "a/<cdata>");
  EXPECT_EQ(r->objects[1].size, 12345678901u);
  EXPECT_EQ(r->objects[1].etag, "abc-2");
  EXPECT_TRUE(r->is_truncated);
  EXPECT_EQ(r->next_continuation_token, "1/token+x==");

  auto empty = detail::parse_list_objects_v2("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_TRUE(empty->objects.empty());
  EXPECT_FALSE(empty->is_truncated);
}

TEST(S3Xml, RejectsMalformedOrInconsistentListings) {
  const char* bad[] = {
      "",
      "<ListBucketResult>",                                                             // truncated
      "<ListBucketResult><Contents><Key>a</Key><Size>1</Size></Contents>",              // truncated
      "<ListBucketResult><Contents><Key>a</Key></Size></Contents></ListBucketResult>",  // mismatch
      "<ListBucketResult><Contents><Key>a</Key><Size>x</Size></Contents></ListBucketResult>",
      "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",  // no key
      "<ListBucketResult><Contents><Key>a</Key></Contents></ListBucketResult>",    // no size
      "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",      // no token
      "<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>",
      "<Error><Code>AccessDenied</Code></Error>",  // wrong root
      "<ListBucketResult><Contents><Key>&bogus;</Key><Size>1</Size></Contents></ListBucketResult>",
      "<ListBucketResult><Contents><Key>&#0;</Key><Size>1</Size></Contents></ListBucketResult>",
      "<!DOCTYPE x [<!ENTITY a \"b\">]><ListBucketResult/>",
      "<ListBucketResult/><ListBucketResult/>",  // two roots
      "junk<ListBucketResult/>",
      "<ListBucketResult attr=unquoted/>",
      "<ListBucketResult><Key><![CDATA[x</Key></ListBucketResult>",
  };
  for (const char* xml : bad) {
    auto r = detail::parse_list_objects_v2(xml);
    ASSERT_FALSE(r) << xml;
    EXPECT_EQ(r.error().code, errc::corruption) << xml;
  }
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "<a>";
  EXPECT_FALSE(detail::parse_list_objects_v2(deep));
}

TEST(S3Xml, ParsesErrorBodies) {
  auto e = detail::parse_error_body(
      "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The key &amp; more</Message>"
      "<Resource>/b/k</Resource></Error>");
  EXPECT_EQ(e.code, "NoSuchKey");
  EXPECT_EQ(e.message, "The key & more");
  EXPECT_TRUE(detail::parse_error_body("not xml").code.empty());
  EXPECT_TRUE(detail::parse_error_body("").code.empty());
}

// --- HTTP behaviour against the scripted server ---

TEST(S3Http, RetriesTransientFailuresThenSucceeds) {
  FakeHttpServer server([](const SeenRequest&, std::size_t i) {
    if (i < 2) {
      return status(503, "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>");
    }
    return ok_body("payload");
  });
  auto store = open_fake(server);
  auto got = store->get("a/b$c");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->value(), "payload");
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (const auto& r : reqs) {
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.target, "/bucket-1/a/b%24c");
    EXPECT_EQ(r.header("host"), "127.0.0.1:" + std::to_string(server.port()));
    expect_valid_signature(r, "");
  }
}

TEST(S3Http, GivesUpAfterBoundedAttemptsAsNotReady) {
  FakeHttpServer server([](const SeenRequest&, std::size_t) {
    // A server that echoes what it should not: the store must scrub it.
    return status(500, std::string("<Error><Code>InternalError</Code><Message>oops ") + kSecret + "</Message></Error>");
  });
  auto store = open_fake(server);
  auto r = store->put("k", "data");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::not_ready);
  EXPECT_NE(r.error().message.find("InternalError"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("4 attempts"), std::string::npos) << r.error().message;
  expect_clean(r.error());
  EXPECT_EQ(server.requests().size(), 4u);
}

TEST(S3Http, DefiniteFailuresAreNotRetried) {
  FakeHttpServer server([](const SeenRequest& r, std::size_t) {
    if (r.method == "GET" && r.target.find("list-type") != std::string::npos) {
      return status(404, "<Error><Code>NoSuchBucket</Code><Message>no bucket</Message></Error>");
    }
    return status(403, "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>");
  });
  auto store = open_fake(server);
  auto r = store->put("k", "data");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::storage_failed);
  EXPECT_NE(r.error().message.find("HTTP 403 AccessDenied"), std::string::npos) << r.error().message;
  expect_clean(r.error());
  EXPECT_EQ(server.requests().size(), 1u);
  auto l = store->list("", "", 10);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code, errc::storage_failed);
  EXPECT_NE(l.error().message.find("NoSuchBucket"), std::string::npos) << l.error().message;
  expect_clean(l.error());
}

TEST(S3Http, TimeoutIsNotReadyWithinTheConfiguredBudget) {
  FakeHttpServer server([](const SeenRequest&, std::size_t) {
    FakeResponse r;
    r.hang = true;
    return r;
  });
  S3Options o = fast_options();
  o.request_timeout = std::chrono::milliseconds(300);
  o.max_attempts = 2;
  auto store = open_fake(server, o);
  const auto start = std::chrono::steady_clock::now();
  auto r = store->get("k");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::not_ready);
  expect_clean(r.error());
  EXPECT_EQ(server.requests().size(), 2u);
  // A hang guard, not a performance check: 2 x 300 ms plus backoff, with
  // a wide margin for a loaded machine.
  EXPECT_LT(elapsed, std::chrono::seconds(20));
}

// Until the server has seen a request (30 s at most).
void wait_for_a_request(const FakeHttpServer& server) {
  for (int i = 0; i < 3000 && server.requests().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Shutdown (Shipper::stop): cancel() cuts a call that waits on a server
// which stopped answering (long before its timeouts), and later calls fail
// at once without a request.
TEST(S3Http, CancelCutsAHangingCallAndFailsLaterOnes) {
  FakeHttpServer server([](const SeenRequest&, std::size_t) {
    FakeResponse r;
    r.hang = true;
    return r;
  });
  S3Options o = fast_options();
  o.request_timeout = std::chrono::seconds(20);
  o.stall_timeout = std::chrono::seconds(20);
  o.max_attempts = 1;
  auto store = open_fake(server, o);
  Result<void> put_result;
  std::thread caller([&] { put_result = store->put("k", "data"); });
  wait_for_a_request(server);
  ASSERT_EQ(server.requests().size(), 1u);
  const auto cancelled_at = std::chrono::steady_clock::now();
  store->cancel();
  caller.join();
  // Not a performance check: curl looks at the flag about once a second;
  // without cancel() the call would run into its 20 s timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - cancelled_at, std::chrono::seconds(10));
  ASSERT_FALSE(put_result);
  EXPECT_EQ(put_result.error().code, errc::not_ready);
  EXPECT_NE(put_result.error().message.find("cancelled"), std::string::npos) << put_result.error().message;
  expect_clean(put_result.error());
  auto later = store->get("k");
  ASSERT_FALSE(later);
  EXPECT_EQ(later.error().code, errc::not_ready);
  EXPECT_NE(later.error().message.find("cancelled"), std::string::npos) << later.error().message;
  EXPECT_EQ(server.requests().size(), 1u);  // neither a retry nor a new request
}

// cancel() also ends the backoff between attempts at once.
TEST(S3Http, CancelEndsTheBackoffBetweenAttempts) {
  FakeHttpServer server([](const SeenRequest&, std::size_t) {
    return status(503, "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>");
  });
  S3Options o = fast_options();
  o.backoff_base = std::chrono::seconds(20);
  o.backoff_cap = std::chrono::seconds(20);
  o.max_attempts = 2;
  auto store = open_fake(server, o);
  Result<std::optional<std::string>> got;
  std::thread caller([&] { got = store->get("k"); });
  wait_for_a_request(server);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  store->cancel();
  caller.join();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, errc::not_ready);
  EXPECT_NE(got.error().message.find("cancelled"), std::string::npos) << got.error().message;
  // Without the cancel, the wait (up to 20 s) would end in a second request
  // and "gave up after 2 attempts".
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(S3Http, UnreachableIsNotReady) {
  const int port = test::free_port();  // nothing listens there
  auto store = open_s3_store("s3://AKIDTEST:" + std::string(kSecretInUrl) +
                                 "@eu-west-1/bucket-1?endpoint=http://127.0.0.1:" + std::to_string(port),
                             fast_options());
  ASSERT_TRUE(store);
  auto r = (*store)->head("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::not_ready);
  EXPECT_NE(r.error().message.find("gave up after 4 attempts"), std::string::npos) << r.error().message;
  expect_clean(r.error());
}

TEST(S3Http, PutSendsChecksumsAndVerifiesTheEtag) {
  const std::string body("chunk\0bytes", 11);
  FakeHttpServer server([&](const SeenRequest& r, std::size_t i) {
    if (i == 0) return ok_body(r.body);  // an honest server
    FakeResponse wrong;                  // a server that stored something else
    wrong.headers = {"ETag: \"00000000000000000000000000000000\""};
    return wrong;
  });
  auto store = open_fake(server);
  ASSERT_TRUE(store->put("dir/obj", body));
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].target, "/bucket-1/dir/obj");
  EXPECT_EQ(reqs[0].body, body);
  EXPECT_EQ(reqs[0].header("content-md5"), sigv4::base64(sigv4::md5(body)));
  EXPECT_EQ(reqs[0].header("content-length"), "11");
  EXPECT_EQ(reqs[0].header("expect"), "");
  expect_valid_signature(reqs[0], body);

  auto r = store->put("dir/obj", body);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::corruption);
  EXPECT_NE(r.error().message.find("ETag"), std::string::npos) << r.error().message;
  expect_clean(r.error());
  EXPECT_EQ(server.requests().size(), 2u);  // not retried inside the store
}

// OpenStack Swift (s3api) answers 200 without an ETag to a PUT superseded
// by a newer write of the key: the client asks with a HEAD what the object
// holds.
TEST(S3Http, PutAnsweredWithoutEtagIsConfirmedByHead) {
  const std::string body = "mine";
  FakeHttpServer server([&](const SeenRequest& r, std::size_t i) {
    if (r.method == "PUT") return FakeResponse{};  // 200, no ETag
    if (i == 1) return ok_body(body);              // the object holds the bytes sent
    if (i == 3) return ok_body("theirs!");         // a newer write won
    return status(404);                            // gone meanwhile
  });
  auto store = open_fake(server);
  auto mine = store->put("k", body);
  ASSERT_TRUE(mine) << mine.error().message;
  auto theirs = store->put("k", body);
  ASSERT_FALSE(theirs);
  EXPECT_EQ(theirs.error().code, errc::conflict);
  EXPECT_NE(theirs.error().message.find("PUT k: the answer has no ETag and the object holds other bytes (ETag \"" +
                                        sigv4::md5_hex("theirs!") + "\", 7 bytes)"),
            std::string::npos)
      << theirs.error().message;
  expect_clean(theirs.error());
  auto gone = store->put("k", body);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, errc::conflict);
  EXPECT_NE(gone.error().message.find("the object is absent"), std::string::npos) << gone.error().message;
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 6u);
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(reqs[i].method, i % 2 == 0 ? "PUT" : "HEAD") << i;
    EXPECT_EQ(reqs[i].target, "/bucket-1/k") << i;
  }
}

TEST(S3Http, ShortBodyIsCorruption) {
  FakeHttpServer server([](const SeenRequest&, std::size_t) {
    FakeResponse r;
    r.body = "only ten b";
    r.content_length = 100;  // promises more than it sends, then closes
    return r;
  });
  auto store = open_fake(server);
  auto r = store->get("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::corruption);
  expect_clean(r.error());
  EXPECT_EQ(server.requests().size(), 4u);  // a reset mid-body is retried first
}

TEST(S3Http, GetVerifiesTheEtag) {
  FakeHttpServer server([](const SeenRequest&, std::size_t i) {
    FakeResponse r;
    r.body = "tampered";
    if (i == 0) r.headers = {"ETag: \"" + sigv4::md5_hex("original") + "\""};
    if (i == 1) r.headers = {"ETag: \"\""};                               // empty: what s3rver sends mid-replace
    if (i == 3) r.headers = {"ETag: \"" + sigv4::md5_hex("x") + "-2\""};  // multipart: not an MD5
    return r;
  });
  auto store = open_fake(server);
  for (int i = 0; i < 3; ++i) {  // wrong, empty, missing
    auto r = store->get("k");
    ASSERT_FALSE(r) << i;
    EXPECT_EQ(r.error().code, errc::corruption) << i;
  }
  auto multipart = store->get("k");
  ASSERT_TRUE(multipart) << multipart.error().message;
  EXPECT_EQ(multipart->value(), "tampered");
}

TEST(S3Http, RangeRequestsAndContentRangeChecks) {
  FakeHttpServer server([](const SeenRequest& r, std::size_t i) {
    FakeResponse resp;
    resp.status = 206;
    if (i == 0) {
      EXPECT_EQ(r.header("range"), "bytes=2-5");
      resp.headers = {"Content-Range: bytes 2-5/20"};
      resp.body = "2345";
    } else if (i == 1) {
      EXPECT_EQ(r.header("range"), "bytes=3-");
      resp.headers = {"Content-Range: bytes 3-19/20"};
      resp.body = std::string(17, 'x');
    } else if (i == 2) {
      resp.headers = {"Content-Range: bytes 0-3/20"};  // not what was asked for
      resp.body = "0123";
    } else {
      resp = status(416, "<Error><Code>InvalidRange</Code></Error>");
    }
    return resp;
  });
  auto store = open_fake(server);
  EXPECT_EQ(store->get_range("k", 2, 4).value().value(), "2345");
  EXPECT_EQ(store->get_range("k", 3, std::numeric_limits<std::uint64_t>::max()).value().value(), std::string(17, 'x'));
  auto wrong = store->get_range("k", 2, 4);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, errc::corruption);
  EXPECT_EQ(store->get_range("k", 50, 4).value().value(), "");
}

TEST(S3Http, KeepsTheConnectionAlive) {
  FakeHttpServer server([](const SeenRequest& r, std::size_t) {
    if (r.method == "DELETE") return status(204);
    if (r.method == "HEAD") {
      FakeResponse h = ok_body("abc");
      return h;
    }
    return ok_body("abc");
  });
  auto store = open_fake(server);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store->get("k" + std::to_string(i)));
    auto h = store->head("k");
    ASSERT_TRUE(h) << h.error().message;
    ASSERT_TRUE(h->has_value());
    EXPECT_EQ((*h)->size, 3u);
    EXPECT_EQ((*h)->etag, sigv4::md5_hex("abc"));
    ASSERT_TRUE(store->remove("k"));
  }
  EXPECT_EQ(server.requests().size(), 15u);
  EXPECT_EQ(server.connections(), 1u);
}

TEST(S3Http, ListQueryIsCanonicalAndPagesFollowTheToken) {
  FakeHttpServer server([](const SeenRequest& r, std::size_t i) {
    EXPECT_EQ(r.method, "GET");
    FakeResponse resp;
    if (i == 0) {
      EXPECT_EQ(r.target, "/bucket-1?list-type=2&max-keys=2&prefix=a%2Fb");
      resp.body =
          "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t/1+=</NextContinuationToken>"
          "<Contents><Key>a/b1</Key><Size>1</Size><ETag>\"x\"</ETag></Contents>"
          "<Contents><Key>a/b2&amp;</Key><Size>2</Size><ETag>\"y\"</ETag></Contents></ListBucketResult>";
    } else if (i == 1) {
      EXPECT_EQ(r.target, "/bucket-1?continuation-token=t%2F1%2B%3D&list-type=2&max-keys=2&prefix=a%2Fb");
      resp.body =
          "<ListBucketResult><IsTruncated>false</IsTruncated>"
          "<Contents><Key>a/b3</Key><Size>3</Size><ETag>\"z\"</ETag></Contents></ListBucketResult>";
    } else {
      // Out of order: inconsistent.
      resp.body =
          "<ListBucketResult><IsTruncated>false</IsTruncated>"
          "<Contents><Key>a/b9</Key><Size>3</Size></Contents>"
          "<Contents><Key>a/b3</Key><Size>3</Size></Contents></ListBucketResult>";
    }
    return resp;
  });
  auto store = open_fake(server);
  auto p1 = store->list("a/b", "", 2);
  ASSERT_TRUE(p1) << p1.error().message;
  ASSERT_EQ(p1->objects.size(), 2u);
  EXPECT_EQ(p1->objects[1].key, "a/b2&");
  EXPECT_EQ(p1->next_token, "t/1+=");
  auto p2 = store->list("a/b", p1->next_token, 2);
  ASSERT_TRUE(p2) << p2.error().message;
  ASSERT_EQ(p2->objects.size(), 1u);
  EXPECT_TRUE(p2->next_token.empty());
  auto p3 = store->list("a/b", "", 2);
  ASSERT_FALSE(p3);
  EXPECT_EQ(p3.error().code, errc::corruption);
  for (const auto& r : server.requests()) expect_valid_signature(r, "");
}

// --- error paths on the real s3rver ---

TEST(S3rver, MissingBucketIsADefiniteFailure) {
  std::string error;
  auto* s3rver = test::shared_s3rver(&error);
  ASSERT_NE(s3rver, nullptr) << "s3rver is required (run `npm ci` in the repository root):\n" << error;
  auto store = open_s3_store("s3://S3RVER:S3RVER@us-east-1/no-such-bucket?endpoint=http://127.0.0.1:" +
                             std::to_string(s3rver->port()));
  ASSERT_TRUE(store);
  auto put = (*store)->put("k", "v");
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, errc::storage_failed);
  EXPECT_NE(put.error().message.find("NoSuchBucket"), std::string::npos) << put.error().message;
  EXPECT_EQ(put.error().message.find("S3RVER"), std::string::npos) << put.error().message;
  auto get = (*store)->get("k");
  ASSERT_FALSE(get);
  EXPECT_EQ(get.error().code, errc::storage_failed);
  auto list = (*store)->list("", "", 10);
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().code, errc::storage_failed);
  EXPECT_EQ(list.error().message.find("S3RVER"), std::string::npos) << list.error().message;
}

TEST(S3rver, UnknownAccessKeyIsRejected) {
  std::string error;
  auto* s3rver = test::shared_s3rver(&error);
  ASSERT_NE(s3rver, nullptr) << "s3rver is required (run `npm ci` in the repository root):\n" << error;
  auto store = open_s3_store(std::string("s3://NOTAKEY:") + kSecretInUrl + "@us-east-1/" + test::S3rver::kBucket +
                             "?endpoint=http://127.0.0.1:" + std::to_string(s3rver->port()));
  ASSERT_TRUE(store);
  auto put = (*store)->put("k", "v");
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, errc::storage_failed);
  EXPECT_NE(put.error().message.find("InvalidAccessKeyId"), std::string::npos) << put.error().message;
  expect_clean(put.error());
}

// --- OpenStack Swift with s3api: it verifies signatures and payload hashes ---

test::Swift* swift_or_fail() {
  std::string error;
  auto* swift = test::shared_swift(&error);
  EXPECT_NE(swift, nullptr) << "OpenStack Swift is required (run scripts/install-deps.sh):\n" << error;
  return swift;
}

// A key of this process: the Swift of a ctest run serves every case.
std::string unique_key(std::string_view name) {
  return "swift-" + std::to_string(::getpid()) + "/" + std::string(name);
}

std::unique_ptr<ObjectStore> open_url(const std::string& url) {
  auto s = open_s3_store(url, fast_options());
  EXPECT_TRUE(s) << s.error().message;
  return s ? std::move(*s) : nullptr;
}

// What every failure of a store with bad credentials must look like: a
// definite failure (retrying cannot help) that names the store, the bucket,
// the operation and the server's reason, and not the secret.
void expect_auth_failure(const Error& e, std::string_view operation, std::string_view reason) {
  EXPECT_EQ(e.code, errc::storage_failed) << e.message;
  EXPECT_NE(e.message.find("s3://us-east-1/horizon-test?endpoint=http://127.0.0.1:"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find(operation), std::string::npos) << e.message;
  EXPECT_NE(e.message.find(reason), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("check the access key id and secret"), std::string::npos) << e.message;
  expect_clean(e);
  EXPECT_EQ(e.message.find(test::Swift::kSecret), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find(test::Swift::kSecretInUrl), std::string::npos) << e.message;
}

TEST(Swift, WrongSecretIsAnAuthenticationErrorWithoutTheSecret) {
  auto* swift = swift_or_fail();
  ASSERT_NE(swift, nullptr);
  auto good = open_url(swift->url());
  // The right key id with another secret: the signature does not verify.
  auto bad = open_url(swift->url_with(test::Swift::kKeyIdInUrl, kSecretInUrl, test::Swift::kBucket));
  ASSERT_TRUE(good && bad);

  const std::string key = unique_key("wrong-secret/k");
  auto put = bad->put(key, "v");
  ASSERT_FALSE(put);
  expect_auth_failure(put.error(), "PUT " + key, "HTTP 403 SignatureDoesNotMatch");
  auto get = bad->get(key);
  ASSERT_FALSE(get);
  expect_auth_failure(get.error(), "GET " + key, "HTTP 403 SignatureDoesNotMatch");
  auto list = bad->list(unique_key("wrong-secret/"), "", 10);
  ASSERT_FALSE(list);
  expect_auth_failure(list.error(), "GET (bucket)", "HTTP 403 SignatureDoesNotMatch");
  auto remove = bad->remove(key);
  ASSERT_FALSE(remove);
  expect_auth_failure(remove.error(), "DELETE " + key, "HTTP 403 SignatureDoesNotMatch");
  // HEAD answers have no body: the status says it all.
  auto head = bad->head(key);
  ASSERT_FALSE(head);
  EXPECT_EQ(head.error().code, errc::storage_failed);
  EXPECT_NE(head.error().message.find("HEAD " + key + ": HTTP 403"), std::string::npos) << head.error().message;
  expect_clean(head.error());

  // Nothing was stored; with the right secret the same calls work.
  auto absent = good->get(key);
  ASSERT_TRUE(absent) << absent.error().message;
  EXPECT_FALSE(absent->has_value());
  ASSERT_TRUE(good->put(key, "v"));
  auto present = bad->get(key);
  ASSERT_FALSE(present);
  expect_auth_failure(present.error(), "GET " + key, "SignatureDoesNotMatch");
  EXPECT_EQ(good->get(key).value().value(), "v");
  ASSERT_TRUE(good->remove(key));
}

// Swift with tempauth answers an unknown key id like a wrong secret
// (SignatureDoesNotMatch; AWS and s3rver say InvalidAccessKeyId).
TEST(Swift, UnknownAccessKeyIsRejected) {
  auto* swift = swift_or_fail();
  ASSERT_NE(swift, nullptr);
  auto store = open_url(swift->url_with("nobody%3Anone", test::Swift::kSecretInUrl, test::Swift::kBucket));
  ASSERT_TRUE(store);
  auto put = store->put("k", "v");
  ASSERT_FALSE(put);
  expect_auth_failure(put.error(), "PUT k", "HTTP 403 SignatureDoesNotMatch");
}

TEST(Swift, MissingBucketIsADefiniteFailure) {
  auto* swift = swift_or_fail();
  ASSERT_NE(swift, nullptr);
  auto store = open_url(swift->url_with(test::Swift::kKeyIdInUrl, test::Swift::kSecretInUrl, "no-such-bucket"));
  ASSERT_TRUE(store);
  auto put = store->put("k", "v");
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, errc::storage_failed);
  EXPECT_NE(put.error().message.find("NoSuchBucket"), std::string::npos) << put.error().message;
  expect_clean(put.error());
  auto get = store->get("k");
  ASSERT_FALSE(get);
  EXPECT_EQ(get.error().code, errc::storage_failed);
  EXPECT_NE(get.error().message.find("NoSuchBucket"), std::string::npos) << get.error().message;
  auto list = store->list("", "", 10);
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().code, errc::storage_failed);
  auto remove = store->remove("k");
  ASSERT_FALSE(remove);
  EXPECT_EQ(remove.error().code, errc::storage_failed);
  expect_clean(remove.error());
}

TEST(Swift, SignatureForAnotherRegionIsRejected) {
  auto* swift = swift_or_fail();
  ASSERT_NE(swift, nullptr);
  auto store = open_url("s3://" + std::string(test::Swift::kKeyIdInUrl) + ":" + test::Swift::kSecretInUrl +
                        "@eu-west-1/" + test::Swift::kBucket + "?endpoint=" + swift->endpoint());
  ASSERT_TRUE(store);
  auto put = store->put("k", "v");
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, errc::storage_failed);
  EXPECT_NE(put.error().message.find("HTTP 400 AuthorizationHeaderMalformed"), std::string::npos)
      << put.error().message;
  EXPECT_NE(put.error().message.find("expecting 'us-east-1'"), std::string::npos) << put.error().message;
  // (expect_clean would trip over the error code's "Authorization".)
  EXPECT_EQ(put.error().message.find(test::Swift::kSecret), std::string::npos) << put.error().message;
  EXPECT_EQ(put.error().message.find("Signature="), std::string::npos) << put.error().message;
  EXPECT_EQ(put.error().message.find("Credential="), std::string::npos) << put.error().message;
}

// Bytes changed between the client and Swift: the body no longer matches
// the signed x-amz-content-sha256, and Swift refuses to store it.
TEST(Swift, CorruptedRequestPayloadIsRejected) {
  auto* swift = swift_or_fail();
  ASSERT_NE(swift, nullptr);
  test::CorruptingProxy proxy(swift->port(), "<<corrupt me>>", "<<corrupted!>>");
  const std::string proxied_url = "s3://" + std::string(test::Swift::kKeyIdInUrl) + ":" + test::Swift::kSecretInUrl +
                                  "@us-east-1/" + test::Swift::kBucket + "?endpoint=" + proxy.endpoint();
  auto through_proxy = open_url(proxied_url);
  auto direct = open_url(swift->url());
  ASSERT_TRUE(through_proxy && direct);

  const std::string key = unique_key("corrupt/payload");
  const std::string body = std::string(100'000, 'a') + "<<corrupt me>>" + std::string(100'000, 'z');
  auto put = through_proxy->put(key, body);
  ASSERT_FALSE(put) << "Swift stored a body that does not match its signed SHA-256";
  EXPECT_GE(proxy.replacements(), 1u);
  EXPECT_EQ(put.error().code, errc::storage_failed) << put.error().message;
  EXPECT_NE(put.error().message.find("PUT " + key + ": HTTP 400 BadDigest"), std::string::npos) << put.error().message;
  expect_clean(put.error());
  auto stored = direct->get(key);
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_FALSE(stored->has_value()) << "a corrupted PUT left an object";

  // The same relay passes bytes it does not change.
  const std::string clean_key = unique_key("corrupt/clean");
  const std::string clean = std::string(1000, 'c');
  ASSERT_TRUE(through_proxy->put(clean_key, clean));
  EXPECT_EQ(direct->get(clean_key).value().value(), clean);
  ASSERT_TRUE(direct->remove(clean_key));
}

// Bytes changed between Swift and the client: the ETag (the MD5 of the
// object) no longer matches, and the client reports corruption instead of
// returning them.
TEST(Swift, CorruptedResponseIsDetected) {
  auto* swift = swift_or_fail();
  ASSERT_NE(swift, nullptr);
  test::CorruptingProxy proxy(swift->port(), "<<corrupt me>>", "<<corrupted!>>");
  auto through_proxy = open_url("s3://" + std::string(test::Swift::kKeyIdInUrl) + ":" + test::Swift::kSecretInUrl +
                                "@us-east-1/" + test::Swift::kBucket + "?endpoint=" + proxy.endpoint());
  auto direct = open_url(swift->url());
  ASSERT_TRUE(through_proxy && direct);
  const std::string key = unique_key("corrupt/response");
  const std::string body = "before <<corrupt me>> after";
  ASSERT_TRUE(direct->put(key, body));
  auto got = through_proxy->get(key);
  ASSERT_FALSE(got) << "returned corrupted bytes: " << got->value_or("<none>");
  EXPECT_EQ(got.error().code, errc::corruption) << got.error().message;
  EXPECT_NE(got.error().message.find("do not match the ETag"), std::string::npos) << got.error().message;
  expect_clean(got.error());
  EXPECT_GE(proxy.replacements(), 1u);
  EXPECT_EQ(direct->get(key).value().value(), body);
  ASSERT_TRUE(direct->remove(key));
}

}  // namespace
}  // namespace horizon::store
