#include "net/ca.h"

#include "net/secrets.h"

#include <gtest/gtest.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace horizon::net {
namespace {

namespace fs = std::filesystem;

template <auto FreeFn>
struct OpenSslFree {
  template <class T>
  void operator()(T* p) const {
    FreeFn(p);
  }
};
using X509Ptr = std::unique_ptr<X509, OpenSslFree<X509_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslFree<BIO_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslFree<BN_free>>;

constexpr const char* kCaName = "Event Horizon internal CA";
constexpr const char* kCustomHost = "writer-1.horizon.example";

X509Ptr parse(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) throw std::runtime_error("test: certificate does not parse");
  return cert;
}

std::string common_name(X509* cert) {
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
  return buf;
}

bool extension_is_critical(X509* cert, int nid) {
  const int at = X509_get_ext_by_NID(cert, nid, -1);
  return at >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, at)) == 1;
}

// Whole days and seconds from `from` to `to` (nullptr = now).
long seconds_between(const ASN1_TIME* from, const ASN1_TIME* to) {
  int days = 0;
  int secs = 0;
  if (ASN1_TIME_diff(&days, &secs, from, to) != 1) throw std::runtime_error("test: ASN1_TIME_diff failed");
  return static_cast<long>(days) * 86400 + secs;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A fresh directory under the system temp dir, removed with its content.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "horizon-ca-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  // Writes `content` to <dir>/<name> and returns the path.
  std::string put(const std::string& name, const std::string& content) const {
    const std::string path = (path_ / name).string();
    auto r = write_public_file(path, content);
    if (!r) throw std::runtime_error(r.error().message);
    return path;
  }

 private:
  fs::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `command` through the shell (all arguments here are fixed test paths
// without shell metacharacters).
CommandResult run(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed");
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// One CA and one server certificate for the whole suite (key generation is
// cheap, but the CLI tests want the same files).
class CaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto ca = create_ca(kCaName);
    ASSERT_TRUE(ca) << ca.error().message;
    ca_ = new CertifiedKey(std::move(*ca));
    auto server = issue_server_cert(*ca_, "horizon writer", {"localhost", "127.0.0.1", "::1", kCustomHost});
    ASSERT_TRUE(server) << server.error().message;
    server_ = new CertifiedKey(std::move(*server));
  }
  static void TearDownTestSuite() {
    delete ca_;
    delete server_;
    ca_ = nullptr;
    server_ = nullptr;
  }
  static CertifiedKey* ca_;
  static CertifiedKey* server_;
};
CertifiedKey* CaTest::ca_ = nullptr;
CertifiedKey* CaTest::server_ = nullptr;

// --- the CA ------------------------------------------------------------------

TEST_F(CaTest, CaIsSelfSignedWithTheGivenName) {
  X509Ptr ca = parse(ca_->cert_pem);
  EXPECT_EQ(common_name(ca.get()), kCaName);
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(ca.get()), X509_get_issuer_name(ca.get())), 0);
  EXPECT_EQ(X509_check_issued(ca.get(), ca.get()), X509_V_OK);
  EXPECT_EQ(X509_verify(ca.get(), X509_get0_pubkey(ca.get())), 1) << "signed by its own key";
  EXPECT_NE(X509_get_extension_flags(ca.get()) & EXFLAG_SS, 0u);
  EXPECT_EQ(X509_get_version(ca.get()), X509_VERSION_3);
  EXPECT_EQ(X509_get_signature_nid(ca.get()), NID_ecdsa_with_SHA256);
}

TEST_F(CaTest, CaIsACaWithPathLenZeroAndCriticalConstraints) {
  X509Ptr ca = parse(ca_->cert_pem);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_NE(X509_get_extension_flags(ca.get()) & EXFLAG_CA, 0u);
  EXPECT_EQ(X509_get_pathlen(ca.get()), 0);
  EXPECT_TRUE(extension_is_critical(ca.get(), NID_basic_constraints));
  EXPECT_TRUE(extension_is_critical(ca.get(), NID_key_usage));
  EXPECT_EQ(X509_get_key_usage(ca.get()), static_cast<std::uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_NE(X509_get0_subject_key_id(ca.get()), nullptr);
}

TEST_F(CaTest, CaKeyIsEcOnPrime256v1) {
  X509Ptr ca = parse(ca_->cert_pem);
  EVP_PKEY* key = X509_get0_pubkey(ca.get());
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
  char group[64] = {};
  std::size_t len = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(key, group, sizeof group, &len), 1);
  EXPECT_STREQ(group, "prime256v1");
}

TEST_F(CaTest, CaPrivateKeyIsUnencryptedPkcs8MatchingTheCertificate) {
  EXPECT_EQ(ca_->key_pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
  EXPECT_FALSE(contains(ca_->key_pem, "ENCRYPTED"));
  BioPtr bio(BIO_new_mem_buf(ca_->key_pem.data(), static_cast<int>(ca_->key_pem.size())));
  std::unique_ptr<EVP_PKEY, OpenSslFree<EVP_PKEY_free>> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(key);
  X509Ptr ca = parse(ca_->cert_pem);
  EXPECT_EQ(X509_check_private_key(ca.get(), key.get()), 1);
}

TEST_F(CaTest, CaValidityIsTenYearsFromAnHourAgo) {
  X509Ptr ca = parse(ca_->cert_pem);
  const long since_start = seconds_between(X509_get0_notBefore(ca.get()), nullptr);
  EXPECT_GE(since_start, 3600 - 120);
  EXPECT_LE(since_start, 3600 + 120);
  const long days_left = seconds_between(nullptr, X509_get0_notAfter(ca.get())) / 86400;
  EXPECT_GE(days_left, 3650 - 1);  // 10 calendar years hold 2 or 3 leap days
  EXPECT_LE(days_left, 3653);
}

TEST_F(CaTest, CaSerialIsPositiveAndRandom128Bit) {
  X509Ptr ca = parse(ca_->cert_pem);
  BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca.get()), nullptr));
  ASSERT_TRUE(serial);
  EXPECT_FALSE(BN_is_negative(serial.get()));
  EXPECT_FALSE(BN_is_zero(serial.get()));
  EXPECT_LE(BN_num_bits(serial.get()), 128);
  EXPECT_GT(BN_num_bits(serial.get()), 64);  // fails with probability 2^-64

  auto other = create_ca(kCaName);
  ASSERT_TRUE(other) << other.error().message;
  X509Ptr other_ca = parse(other->cert_pem);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(ca.get()), X509_get0_serialNumber(other_ca.get())), 0);
  EXPECT_NE(other->key_pem, ca_->key_pem);
}

TEST(CreateCa, RejectsBadNames) {
  for (const std::string& name : {std::string(), std::string(65, 'a'), std::string("bad\xff"), std::string("a\nb")}) {
    auto r = create_ca(name);
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_TRUE(contains(r.error().message, "CA name")) << r.error().message;
  }
}

// --- the server certificate --------------------------------------------------

TEST_F(CaTest, ServerCertVerifiesForEveryHostInItsSans) {
  for (const char* host : {"localhost", "127.0.0.1", "::1", kCustomHost, "LOCALHOST", "0:0:0:0:0:0:0:1"}) {
    auto r = verify_server_cert(server_->cert_pem, ca_->cert_pem, host);
    EXPECT_TRUE(r) << host << ": " << r.error().message;
  }
}

TEST_F(CaTest, ServerCertIsAnEndEntityForServerAuth) {
  X509Ptr cert = parse(server_->cert_pem);
  X509Ptr ca = parse(ca_->cert_pem);
  EXPECT_EQ(common_name(cert.get()), "horizon writer");
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(cert.get()), X509_get_subject_name(ca.get())), 0);
  EXPECT_EQ(X509_check_issued(ca.get(), cert.get()), X509_V_OK);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<std::uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_TRUE(extension_is_critical(cert.get(), NID_key_usage));
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), static_cast<std::uint32_t>(XKU_SSL_SERVER));
  EXPECT_EQ(X509_get_signature_nid(cert.get()), NID_ecdsa_with_SHA256);
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(cert.get())), EVP_PKEY_EC);
  // authorityKeyIdentifier = the CA's subjectKeyIdentifier.
  const ASN1_OCTET_STRING* akid = X509_get0_authority_key_id(cert.get());
  ASSERT_NE(akid, nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(akid, X509_get0_subject_key_id(ca.get())), 0);
  EXPECT_NE(X509_get0_subject_key_id(cert.get()), nullptr);
  EXPECT_EQ(server_->key_pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
  EXPECT_NE(server_->key_pem, ca_->key_pem);
}

TEST_F(CaTest, ServerCertValidityIsFiveYearsFromAnHourAgo) {
  X509Ptr cert = parse(server_->cert_pem);
  const long since_start = seconds_between(X509_get0_notBefore(cert.get()), nullptr);
  EXPECT_GE(since_start, 3600 - 120);
  EXPECT_LE(since_start, 3600 + 120);
  const long days_left = seconds_between(nullptr, X509_get0_notAfter(cert.get())) / 86400;
  EXPECT_GE(days_left, 5 * 365);  // 5 calendar years hold 1 or 2 leap days
  EXPECT_LE(days_left, 5 * 365 + 2);
}

TEST_F(CaTest, CertificateValidityReadsBothEnds) {
  X509Ptr cert = parse(server_->cert_pem);
  auto v = certificate_validity(server_->cert_pem);
  ASSERT_TRUE(v) << v.error().message;
  const std::time_t now = std::time(nullptr);
  EXPECT_NEAR(static_cast<double>(now - v->not_before), 3600.0, 120.0);
  EXPECT_NEAR(static_cast<double>(v->not_after - now),
              static_cast<double>(seconds_between(nullptr, X509_get0_notAfter(cert.get()))), 5.0);
  auto ca = certificate_validity(ca_->cert_pem);
  ASSERT_TRUE(ca);
  EXPECT_GT(ca->not_after, v->not_after) << "the CA lasts 10 years, the server certificate 5";
  auto bad = certificate_validity("not a certificate");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, errc::invalid_argument);
}

TEST_F(CaTest, VerifyFailsForAHostNotInTheSans) {
  for (const char* host : {"evil.example", "localhost.evil.example", "10.0.0.1", "::2", "horizon writer"}) {
    auto r = verify_server_cert(server_->cert_pem, ca_->cert_pem, host);
    ASSERT_FALSE(r) << host;
    EXPECT_EQ(r.error().code, errc::unauthorized);
    EXPECT_TRUE(contains(r.error().message, host)) << r.error().message;
    EXPECT_TRUE(contains(r.error().message, "localhost")) << "lists the names it has: " << r.error().message;
  }
}

// A bundle of CAs (a rotation's trusted set): the certificate verifies when
// its CA is any of them, not when it is missing; a damaged bundle is refused.
TEST_F(CaTest, VerifyAcceptsABundleOfCas) {
  const auto other = create_ca("Event Horizon internal CA other").value();
  EXPECT_TRUE(verify_server_cert(server_->cert_pem, other.cert_pem + ca_->cert_pem, "localhost"));
  EXPECT_TRUE(verify_server_cert(server_->cert_pem, ca_->cert_pem + other.cert_pem, "localhost"));
  auto missing = verify_server_cert(server_->cert_pem, other.cert_pem, "localhost");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, errc::unauthorized);
  auto damaged = verify_server_cert(server_->cert_pem, other.cert_pem + "-----BEGIN CERTIFICATE-----\nAAAA\n", "localhost");
  ASSERT_FALSE(damaged);
  EXPECT_EQ(damaged.error().code, errc::invalid_argument) << damaged.error().message;
  auto empty = verify_server_cert(server_->cert_pem, "", "localhost");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, errc::invalid_argument);
}

TEST_F(CaTest, VerifyChecksTheDatesAtTheGivenInstant) {
  const auto v = certificate_validity(server_->cert_pem).value();
  EXPECT_TRUE(verify_server_cert(server_->cert_pem, ca_->cert_pem, "localhost", v.not_before + 60));
  EXPECT_TRUE(verify_server_cert(server_->cert_pem, ca_->cert_pem, "localhost", v.not_after - 60));
  struct Case {
    std::time_t at;
    const char* says;
  };
  for (const Case& c : {Case{v.not_before - 24 * 3600, "not yet valid"}, Case{v.not_after + 60, "has expired"}}) {
    auto r = verify_server_cert(server_->cert_pem, ca_->cert_pem, "localhost", c.at);
    ASSERT_FALSE(r) << c.says;
    EXPECT_EQ(r.error().code, errc::unauthorized);
    EXPECT_TRUE(contains(r.error().message, c.says)) << r.error().message;
  }
  EXPECT_TRUE(verify_server_cert(server_->cert_pem, ca_->cert_pem, "localhost")) << "no instant: the clock's";
}

TEST_F(CaTest, VerifyFailsAgainstADifferentCaTheMitmCase) {
  auto other_ca = create_ca(kCaName);  // same name, different key
  ASSERT_TRUE(other_ca) << other_ca.error().message;
  auto r = verify_server_cert(server_->cert_pem, other_ca->cert_pem, "localhost");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::unauthorized);
  EXPECT_TRUE(contains(r.error().message, "does not verify")) << r.error().message;
  EXPECT_FALSE(contains(r.error().message, "PRIVATE KEY"));

  // An attacker's CA issuing a certificate for the same host.
  auto forged = issue_server_cert(*other_ca, "horizon writer", {"localhost"});
  ASSERT_TRUE(forged) << forged.error().message;
  auto r2 = verify_server_cert(forged->cert_pem, ca_->cert_pem, "localhost");
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, errc::unauthorized);
  EXPECT_TRUE(contains(r2.error().message, "unable to get local issuer certificate") ||
              contains(r2.error().message, "signature"))
      << r2.error().message;
}

TEST_F(CaTest, VerifyRejectsASelfSignedLeafAndNonCaIssuer) {
  // The CA itself is no server certificate (purpose/EKU, and no SAN).
  auto r = verify_server_cert(ca_->cert_pem, ca_->cert_pem, "localhost");
  EXPECT_FALSE(r);
  // A server certificate cannot act as a CA.
  auto r2 = issue_server_cert(*server_, "x", {"localhost"});
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, errc::invalid_argument);
  EXPECT_TRUE(contains(r2.error().message, "not a CA")) << r2.error().message;
}

TEST_F(CaTest, SubjectAltNamesRoundTrip) {
  auto names = subject_alt_names(server_->cert_pem);
  ASSERT_TRUE(names) << names.error().message;
  EXPECT_EQ(*names, (std::vector<std::string>{"localhost", "127.0.0.1", "::1", kCustomHost}));

  const std::vector<std::string> hosts = {"Writer-1.Example.COM", "2001:db8::1", "10.1.2.3", "a", "x-y.z"};
  auto cert = issue_server_cert(*ca_, "horizon writer", hosts);
  ASSERT_TRUE(cert) << cert.error().message;
  auto round_trip = subject_alt_names(cert->cert_pem);
  ASSERT_TRUE(round_trip) << round_trip.error().message;
  EXPECT_EQ(*round_trip, hosts);
  for (const auto& host : hosts) EXPECT_TRUE(verify_server_cert(cert->cert_pem, ca_->cert_pem, host)) << host;
}

TEST_F(CaTest, CaHasNoSubjectAltNames) {
  auto names = subject_alt_names(ca_->cert_pem);
  ASSERT_TRUE(names) << names.error().message;
  EXPECT_TRUE(names->empty());
}

TEST_F(CaTest, InvalidDnsNamesAreRejectedNamingTheEntry) {
  const std::string cases[] = {"bad_name",
                               "*.example.com",
                               "a b",
                               "[::1]",
                               "fe80::1%eth0",
                               "host:8080",
                               std::string(254, 'a'),
                               "caf\xc3\xa9.example",
                               "",
                               std::string("127.0.0.1\0.evil", 15)};
  for (const auto& host : cases) {
    auto r = issue_server_cert(*ca_, "horizon writer", {"localhost", host});
    ASSERT_FALSE(r) << host;
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_TRUE(contains(r.error().message, "host \"")) << r.error().message;
  }
  auto r = issue_server_cert(*ca_, "horizon writer", {"ok.example", "bad_name"});
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error().message, "\"bad_name\"")) << r.error().message;
  // 253 characters is the longest name accepted.
  EXPECT_TRUE(issue_server_cert(*ca_, "horizon writer", {std::string(253, 'a')}));
}

TEST_F(CaTest, ServerCertNeedsAtLeastOneHost) {
  auto r = issue_server_cert(*ca_, "horizon writer", {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_argument);
}

TEST_F(CaTest, BadCaInputIsInvalidArgumentAndNeverEchoesKeys) {
  auto other_ca = create_ca("other");
  ASSERT_TRUE(other_ca);
  // Key of one CA with the certificate of another.
  auto mismatched = issue_server_cert(CertifiedKey{ca_->cert_pem, other_ca->key_pem}, "w", {"localhost"});
  ASSERT_FALSE(mismatched);
  EXPECT_EQ(mismatched.error().code, errc::invalid_argument);
  EXPECT_TRUE(contains(mismatched.error().message, "does not match")) << mismatched.error().message;

  const std::string garbage_key = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----\n";
  auto bad_key = issue_server_cert(CertifiedKey{ca_->cert_pem, garbage_key}, "w", {"localhost"});
  ASSERT_FALSE(bad_key);
  EXPECT_EQ(bad_key.error().code, errc::invalid_argument);
  EXPECT_FALSE(contains(bad_key.error().message, "c2VjcmV0")) << bad_key.error().message;

  auto bad_cert = issue_server_cert(CertifiedKey{"not a pem", ca_->key_pem}, "w", {"localhost"});
  ASSERT_FALSE(bad_cert);
  EXPECT_EQ(bad_cert.error().code, errc::invalid_argument);

  for (const auto& error : {mismatched.error(), bad_key.error(), bad_cert.error()}) {
    EXPECT_FALSE(contains(error.message, "PRIVATE KEY")) << error.message;
    EXPECT_FALSE(contains(error.message, ca_->key_pem.substr(28, 40))) << error.message;
  }
}

TEST_F(CaTest, GarbagePemIsInvalidArgument) {
  EXPECT_EQ(subject_alt_names("garbage").error().code, errc::invalid_argument);
  EXPECT_EQ(certificate_fingerprint_sha256("").error().code, errc::invalid_argument);
  EXPECT_EQ(verify_server_cert("garbage", ca_->cert_pem, "localhost").error().code, errc::invalid_argument);
  EXPECT_EQ(verify_server_cert(server_->cert_pem, "garbage", "localhost").error().code, errc::invalid_argument);
  EXPECT_EQ(verify_server_cert(server_->cert_pem, ca_->cert_pem, "").error().code, errc::invalid_argument);
}

TEST_F(CaTest, FingerprintIs64LowerHexAndStable) {
  auto fp = certificate_fingerprint_sha256(server_->cert_pem);
  ASSERT_TRUE(fp) << fp.error().message;
  EXPECT_EQ(fp->size(), 64u);
  EXPECT_EQ(fp->find_first_not_of("0123456789abcdef"), std::string::npos) << *fp;
  EXPECT_EQ(certificate_fingerprint_sha256(server_->cert_pem).value(), *fp);
  EXPECT_NE(certificate_fingerprint_sha256(ca_->cert_pem).value(), *fp);
}

// --- independent checks with the openssl command-line tool -------------------

TEST_F(CaTest, OpenSslCliVerifiesTheChainAndHostname) {
  TempDir dir;
  const std::string ca = dir.put("ca.pem", ca_->cert_pem);
  const std::string cert = dir.put("cert.pem", server_->cert_pem);
  auto ok = run("openssl verify -x509_strict -purpose sslserver -CAfile " + ca + " -verify_hostname localhost " + cert);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_TRUE(contains(ok.output, cert + ": OK")) << ok.output;

  auto ok_custom = run("openssl verify -CAfile " + ca + " -verify_hostname " + kCustomHost + " " + cert);
  EXPECT_EQ(ok_custom.exit_code, 0) << ok_custom.output;
  auto ok_ip = run("openssl verify -CAfile " + ca + " -verify_ip ::1 " + cert);
  EXPECT_EQ(ok_ip.exit_code, 0) << ok_ip.output;

  auto wrong_host = run("openssl verify -CAfile " + ca + " -verify_hostname evil.example " + cert);
  EXPECT_NE(wrong_host.exit_code, 0) << wrong_host.output;
  EXPECT_TRUE(contains(wrong_host.output, "hostname mismatch")) << wrong_host.output;

  auto other_ca = create_ca(kCaName);
  ASSERT_TRUE(other_ca);
  const std::string other = dir.put("other-ca.pem", other_ca->cert_pem);
  auto wrong_ca = run("openssl verify -CAfile " + other + " -verify_hostname localhost " + cert);
  EXPECT_NE(wrong_ca.exit_code, 0) << wrong_ca.output;
  EXPECT_TRUE(contains(wrong_ca.output, "unable to get local issuer certificate")) << wrong_ca.output;
}

TEST_F(CaTest, OpenSslCliShowsTheSubjectAltNames) {
  TempDir dir;
  const std::string cert = dir.put("cert.pem", server_->cert_pem);
  auto r = run("openssl x509 -noout -ext subjectAltName -in " + cert);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "X509v3 Subject Alternative Name")) << r.output;
  EXPECT_TRUE(contains(
      r.output, std::string("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:") + kCustomHost))
      << r.output;
}

TEST_F(CaTest, OpenSslCliReadsTheCaAndAgreesOnTheFingerprint) {
  TempDir dir;
  const std::string ca = dir.put("ca.pem", ca_->cert_pem);
  auto text = run("openssl x509 -noout -text -in " + ca);
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_TRUE(contains(text.output, "CA:TRUE, pathlen:0")) << text.output;
  EXPECT_TRUE(contains(text.output, "Certificate Sign, CRL Sign")) << text.output;
  EXPECT_TRUE(contains(text.output, "ASN1 OID: prime256v1")) << text.output;
  EXPECT_TRUE(contains(text.output, "Signature Algorithm: ecdsa-with-SHA256")) << text.output;

  auto fp = run("openssl x509 -noout -fingerprint -sha256 -in " + ca);
  ASSERT_EQ(fp.exit_code, 0) << fp.output;
  std::string hex;
  const std::string tag = "Fingerprint=";
  for (std::size_t i = fp.output.find(tag) + tag.size(); i < fp.output.size(); ++i) {
    const char c = fp.output[i];
    if (std::isxdigit(static_cast<unsigned char>(c)))
      hex.push_back(static_cast<char>(std::tolower(c)));
    else if (c != ':')
      break;
  }
  EXPECT_EQ(hex, certificate_fingerprint_sha256(ca_->cert_pem).value());

  auto key = run("openssl pkey -noout -in " + dir.put("ca.key", ca_->key_pem));
  EXPECT_EQ(key.exit_code, 0) << key.output;
}

}  // namespace
}  // namespace horizon::net
