// The SigV4 signer against AWS's published examples: the generic test suite
// (AKIDEXAMPLE, service "service", 20150830T123600Z) and the four worked S3
// examples of "Signature Calculations for the Authorization Header"
// (AKIAIOSFODNN7EXAMPLE, examplebucket, 20130524T000000Z). Canonical
// request, string to sign and signature are compared in full where AWS
// publishes them.

#include "store/sigv4.h"

#include <gtest/gtest.h>

namespace horizon::store::sigv4 {
namespace {

const Credentials kSuiteCredentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
const Scope kSuiteScope{"20150830T123600Z", "us-east-1", "service"};
const Pairs kSuiteHeaders{{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};

const Credentials kS3Credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};
const Scope kS3Scope{"20130524T000000Z", "us-east-1", "s3"};

TEST(SigV4, DigestsAndEncodings) {
  EXPECT_EQ(sha256_hex(""), kEmptySha256);
  EXPECT_EQ(sha256_hex("Welcome to Amazon S3."), "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  EXPECT_EQ(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(base64(md5("")), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  // RFC 4231 test case 2.
  EXPECT_EQ(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

  EXPECT_EQ(uri_encode("a/b c/~x-y_z.0$", true), "a/b%20c/~x-y_z.0%24");
  EXPECT_EQ(uri_encode("a/b+c=d&e", false), "a%2Fb%2Bc%3Dd%26e");
  EXPECT_EQ(uri_encode("\xE1\x88\xB4", true), "%E1%88%B4");
  std::string out;
  ASSERT_TRUE(percent_decode("sup3r%2Fsecret%2b+x", out));
  EXPECT_EQ(out, "sup3r/secret++x");
  EXPECT_FALSE(percent_decode("bad%2", out));
  EXPECT_FALSE(percent_decode("bad%zz", out));
  EXPECT_FALSE(percent_decode("%", out));
}

TEST(SigV4, CanonicalQuerySortsAndEncodes) {
  EXPECT_EQ(
      canonical_query({{"prefix", "a/b c"}, {"list-type", "2"}, {"max-keys", "10"}, {"continuation-token", "1/x+y=="}}),
      "continuation-token=1%2Fx%2By%3D%3D&list-type=2&max-keys=10&prefix=a%2Fb%20c");
  EXPECT_EQ(canonical_query({{"Param2", "value2"}, {"Param1", "value1"}}), "Param1=value1&Param2=value2");
  EXPECT_EQ(canonical_query({{"lifecycle", ""}}), "lifecycle=");
  EXPECT_EQ(canonical_query({}), "");
}

// aws-sig-v4-test-suite/get-vanilla
TEST(SigV4, AwsSuiteGetVanilla) {
  const auto s =
      sign(Request{"GET", "/", {}, kSuiteHeaders, std::string(kEmptySha256)}, kSuiteScope, kSuiteCredentials);
  EXPECT_EQ(s.canonical_request,
            "GET\n"
            "/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(s.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,"
            "SignedHeaders=host;x-amz-date,"
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

// aws-sig-v4-test-suite/get-vanilla-query-order-key-case: parameters sorted.
TEST(SigV4, AwsSuiteGetVanillaQueryOrderKeyCase) {
  const auto s =
      sign(Request{"GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}}, kSuiteHeaders, std::string(kEmptySha256)},
           kSuiteScope, kSuiteCredentials);
  EXPECT_EQ(s.canonical_request,
            "GET\n"
            "/\n"
            "Param1=value1&Param2=value2\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.signature, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

// aws-sig-v4-test-suite/post-vanilla
TEST(SigV4, AwsSuitePostVanilla) {
  const auto s =
      sign(Request{"POST", "/", {}, kSuiteHeaders, std::string(kEmptySha256)}, kSuiteScope, kSuiteCredentials);
  EXPECT_EQ(s.canonical_request,
            "POST\n"
            "/\n"
            "\n"
            "host:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.signature, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

// aws-sig-v4-test-suite/get-utf8: the path is percent-encoded UTF-8.
TEST(SigV4, AwsSuiteGetUtf8) {
  const auto s = sign(Request{"GET", uri_encode("/\xE1\x88\xB4", true), {}, kSuiteHeaders, std::string(kEmptySha256)},
                      kSuiteScope, kSuiteCredentials);
  EXPECT_EQ(s.canonical_request.substr(0, s.canonical_request.find('\n', 4)), "GET\n/%E1%88%B4");
  EXPECT_EQ(s.signature, "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

// S3 example "GET Object": first 10 bytes of test.txt (Range is signed here).
TEST(SigV4, S3ExampleGetObjectWithRange) {
  const auto s = sign(Request{"GET",
                              "/test.txt",
                              {},
                              {{"Host", "examplebucket.s3.amazonaws.com"},
                               {"Range", "bytes=0-9 "},
                               {"x-amz-content-sha256", std::string(kEmptySha256)},
                               {"x-amz-date", " 20130524T000000Z "}},
                              std::string(kEmptySha256)},
                      kS3Scope, kS3Credentials);
  EXPECT_EQ(s.canonical_request,
            "GET\n"
            "/test.txt\n"
            "\n"
            "host:examplebucket.s3.amazonaws.com\n"
            "range:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n"
            "\n"
            "host;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n"
            "20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(s.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

// S3 example "PUT Object": test$file.text ('$' encoded in the path), with
// Date and x-amz-storage-class signed.
TEST(SigV4, S3ExamplePutObject) {
  const std::string payload_hash = sha256_hex("Welcome to Amazon S3.");
  const auto s = sign(Request{"PUT",
                              uri_encode("/test$file.text", true),
                              {},
                              {{"Host", "examplebucket.s3.amazonaws.com"},
                               {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                               {"x-amz-date", "20130524T000000Z"},
                               {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                               {"x-amz-content-sha256", payload_hash}},
                              payload_hash},
                      kS3Scope, kS3Credentials);
  EXPECT_EQ(s.canonical_request,
            "PUT\n"
            "/test%24file.text\n"
            "\n"
            "date:Fri, 24 May 2013 00:00:00 GMT\n"
            "host:examplebucket.s3.amazonaws.com\n"
            "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
            "x-amz-date:20130524T000000Z\n"
            "x-amz-storage-class:REDUCED_REDUNDANCY\n"
            "\n"
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n"
            "20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  EXPECT_EQ(s.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

// S3 example "GET Bucket Lifecycle": a valueless sub-resource is "name=".
TEST(SigV4, S3ExampleGetBucketLifecycle) {
  const auto s = sign(Request{"GET",
                              "/",
                              {{"lifecycle", ""}},
                              {{"Host", "examplebucket.s3.amazonaws.com"},
                               {"x-amz-date", "20130524T000000Z"},
                               {"x-amz-content-sha256", std::string(kEmptySha256)}},
                              std::string(kEmptySha256)},
                      kS3Scope, kS3Credentials);
  EXPECT_EQ(s.canonical_request,
            "GET\n"
            "/\n"
            "lifecycle=\n"
            "host:examplebucket.s3.amazonaws.com\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n"
            "\n"
            "host;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n"
            "20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
  EXPECT_EQ(s.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

// S3 example "Get Bucket (List Objects)": ?max-keys=2&prefix=J.
TEST(SigV4, S3ExampleListObjects) {
  const auto s = sign(Request{"GET",
                              "/",
                              {{"prefix", "J"}, {"max-keys", "2"}},
                              {{"Host", "examplebucket.s3.amazonaws.com"},
                               {"x-amz-date", "20130524T000000Z"},
                               {"x-amz-content-sha256", std::string(kEmptySha256)}},
                              std::string(kEmptySha256)},
                      kS3Scope, kS3Credentials);
  EXPECT_EQ(s.canonical_request,
            "GET\n"
            "/\n"
            "max-keys=2&prefix=J\n"
            "host:examplebucket.s3.amazonaws.com\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n"
            "\n"
            "host;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n"
            "20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
  EXPECT_EQ(s.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, RepeatedHeadersJoinAndSpacesCollapse) {
  const auto s = sign(Request{"GET", "/", {}, {{"X-B", "1"}, {"x-a", "  p   q  "}, {"x-b", "2"}}, "UNSIGNED-PAYLOAD"},
                      kSuiteScope, kSuiteCredentials);
  EXPECT_EQ(s.canonical_request, "GET\n/\n\nx-a:p q\nx-b:1,2\n\nx-a;x-b\nUNSIGNED-PAYLOAD");
  EXPECT_EQ(s.signed_headers, "x-a;x-b");
}

TEST(SigV4, NothingCarriesTheSecret) {
  const auto s =
      sign(Request{"GET", "/", {}, kSuiteHeaders, std::string(kEmptySha256)}, kSuiteScope, kSuiteCredentials);
  for (const auto& text : {s.canonical_request, s.string_to_sign, s.signature, s.authorization, s.signed_headers}) {
    EXPECT_EQ(text.find(kSuiteCredentials.secret_access_key), std::string::npos) << text;
    EXPECT_EQ(text.find("wJalrXUtnFEMI"), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace horizon::store::sigv4
