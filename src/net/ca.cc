#include "net/ca.h"

#include "core/digest.h"
#include "core/text.h"
#include "net/secrets.h"

#include <climits>
#include <fmt/format.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <cstddef>
#include <ctime>
#include <memory>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <utility>

namespace horizon::net {
namespace {

constexpr long kBackdateSeconds = 60 * 60;
constexpr int kCaValidityYears = 10;
constexpr int kServerValidityYears = 5;
constexpr std::size_t kSerialBytes = 16;         // 128 bits
constexpr std::size_t kMaxCommonNameBytes = 64;  // ub_common_name (RFC 5280)
constexpr std::size_t kMaxDnsNameBytes = 253;
constexpr const char* kCurveName = "P-256";

// ---------------------------------------------------------------------------
// Owning pointers for OpenSSL objects.

template <auto FreeFn>
struct OpenSslFree {
  template <class T>
  void operator()(T* p) const {
    FreeFn(p);
  }
};

using BioPtr = std::unique_ptr<BIO, OpenSslFree<BIO_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslFree<BN_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpenSslFree<EVP_PKEY_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslFree<X509_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpenSslFree<X509_EXTENSION_free>>;
using StorePtr = std::unique_ptr<X509_STORE, OpenSslFree<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OpenSslFree<X509_STORE_CTX_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OpenSslFree<GENERAL_NAMES_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, OpenSslFree<GENERAL_NAME_free>>;
using Ia5StringPtr = std::unique_ptr<ASN1_IA5STRING, OpenSslFree<ASN1_IA5STRING_free>>;
using OctetStringPtr = std::unique_ptr<ASN1_OCTET_STRING, OpenSslFree<ASN1_OCTET_STRING_free>>;

// ---------------------------------------------------------------------------
// Errors.

// Empties OpenSSL's (thread-local) error queue on entry and exit, so a
// message only carries errors of the current call and none are left behind.
class ErrorQueueScope {
 public:
  ErrorQueueScope() { ERR_clear_error(); }
  ErrorQueueScope(const ErrorQueueScope&) = delete;
  ErrorQueueScope& operator=(const ErrorQueueScope&) = delete;
  ~ErrorQueueScope() { ERR_clear_error(); }
};

// The queued OpenSSL errors as "; "-joined text; empties the queue.
// ERR_error_string_n gives library, function and reason only (never the
// error's data strings), so no input or key bytes reach the message.
std::string drain_openssl_errors() {
  std::string out;
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    char buf[256] = {};
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

Error openssl_error(errc code, std::string_view what) {
  std::string message(what);
  std::string detail = drain_openssl_errors();
  if (!detail.empty()) message += " (" + detail + ")";
  return Error::make(code, std::move(message));
}

// An OpenSSL call that should not fail did.
Error crypto_failure(std::string_view what) { return openssl_error(errc::internal, std::string(what) + " failed"); }

Error bad_input(std::string message) { return Error::make(errc::invalid_argument, std::move(message)); }

// ---------------------------------------------------------------------------
// Typed STACK_OF(GENERAL_NAME) access without the sk_* macros' C casts.

int general_name_count(const GENERAL_NAMES* names) {
  return OPENSSL_sk_num(ossl_check_const_GENERAL_NAME_sk_type(names));
}

const GENERAL_NAME* general_name_at(const GENERAL_NAMES* names, int i) {
  return static_cast<const GENERAL_NAME*>(OPENSSL_sk_value(ossl_check_const_GENERAL_NAME_sk_type(names), i));
}

// Takes ownership of `name` on success (false: the caller still owns it).
bool push_general_name(GENERAL_NAMES* names, GENERAL_NAME* name) {
  return OPENSSL_sk_push(ossl_check_GENERAL_NAME_sk_type(names), ossl_check_GENERAL_NAME_type(name)) > 0;
}

// ---------------------------------------------------------------------------
// PEM in and out.

Result<BioPtr> read_bio(std::string_view data, std::string_view what) {
  if (data.size() > static_cast<std::size_t>(INT_MAX)) return bad_input(fmt::format("{} is too large", what));
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) return crypto_failure("BIO_new_mem_buf");
  return bio;
}

Result<X509Ptr> parse_certificate(std::string_view pem, std::string_view what) {
  auto bio = read_bio(pem, what);
  if (!bio) return bio.error();
  X509Ptr cert(PEM_read_bio_X509(bio->get(), nullptr, nullptr, nullptr));
  if (!cert) return openssl_error(errc::invalid_argument, fmt::format("{} is not a PEM certificate", what));
  return cert;
}

// Every certificate of a PEM bundle, in order (at least one).
Result<std::vector<X509Ptr>> parse_certificates(std::string_view pem, std::string_view what) {
  auto bio = read_bio(pem, what);
  if (!bio) return bio.error();
  std::vector<X509Ptr> out;
  while (X509Ptr cert{PEM_read_bio_X509(bio->get(), nullptr, nullptr, nullptr)}) out.push_back(std::move(cert));
  // The loop ends at the first thing that is not a certificate: the end of
  // the text, or damage (then the whole bundle is refused).
  const unsigned long err = ERR_peek_last_error();
  if (out.empty() || !(ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE)) {
    return openssl_error(errc::invalid_argument, fmt::format("{} is not a PEM certificate or bundle", what));
  }
  ERR_clear_error();
  return out;
}

// Never prompts for a passphrase: encrypted keys are rejected.
int refuse_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*user*/) { return -1; }

Result<PkeyPtr> parse_private_key(std::string_view pem, std::string_view what) {
  auto bio = read_bio(pem, what);
  if (!bio) return bio.error();
  PkeyPtr key(PEM_read_bio_PrivateKey(bio->get(), nullptr, refuse_passphrase, nullptr));
  // The message never echoes the key text, only OpenSSL's reason.
  if (!key) return openssl_error(errc::invalid_argument, fmt::format("{} is not an unencrypted PEM private key", what));
  return key;
}

// The whole content of a memory BIO.
std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_ctrl(bio, BIO_CTRL_INFO, 0, static_cast<void*>(&data));
  if (n <= 0 || data == nullptr) return {};
  return std::string(data, static_cast<std::size_t>(n));
}

Result<std::string> certificate_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return crypto_failure("BIO_new");
  if (PEM_write_bio_X509(bio.get(), cert) != 1) return crypto_failure("PEM_write_bio_X509");
  return bio_contents(bio.get());
}

// PKCS#8, unencrypted ("-----BEGIN PRIVATE KEY-----"). The memory BIO's buffer
// is cleansed when freed.
Result<std::string> private_key_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return crypto_failure("BIO_new");
  if (PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return crypto_failure("PEM_write_bio_PKCS8PrivateKey");
  }
  return bio_contents(bio.get());
}

// ---------------------------------------------------------------------------
// Building certificates.

Result<PkeyPtr> generate_p256_key() {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!ctx) return crypto_failure("EVP_PKEY_CTX_new_from_name(EC)");
  if (EVP_PKEY_keygen_init(ctx.get()) != 1) return crypto_failure("EVP_PKEY_keygen_init");
  if (EVP_PKEY_CTX_set_group_name(ctx.get(), kCurveName) != 1) return crypto_failure("EVP_PKEY_CTX_set_group_name");
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &raw) != 1) return crypto_failure("EVP_PKEY_generate");
  return PkeyPtr(raw);
}

Result<void> check_common_name(std::string_view cn, std::string_view what) {
  if (cn.empty() || cn.size() > kMaxCommonNameBytes) {
    return bad_input(fmt::format("{} must be 1-{} bytes, got {}", what, kMaxCommonNameBytes, cn.size()));
  }
  if (!is_valid_utf8(cn)) return bad_input(fmt::format("{} \"{}\" is not valid UTF-8", what, printable_excerpt(cn)));
  for (char c : cn) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) {
      return bad_input(fmt::format("{} \"{}\" contains a control character", what, printable_excerpt(cn)));
    }
  }
  return {};
}

bool is_dns_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxDnsNameBytes) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// The binary address when `s` is an IPv4 or IPv6 literal (inet_pton rules;
// no brackets, no zone index); empty otherwise.
std::string parse_ip(std::string_view s) {
  if (s.find('\0') != std::string_view::npos) return {};  // inet_pton would stop at the NUL
  const std::string text(s);
  unsigned char buf[sizeof(in6_addr)] = {};
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) return std::string(reinterpret_cast<const char*>(buf), 4);
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) return std::string(reinterpret_cast<const char*>(buf), 16);
  return {};
}

Result<GeneralNamePtr> make_general_name(std::string_view host) {
  GeneralNamePtr name(GENERAL_NAME_new());
  if (!name) return crypto_failure("GENERAL_NAME_new");
  if (const std::string ip = parse_ip(host); !ip.empty()) {
    OctetStringPtr octets(ASN1_OCTET_STRING_new());
    if (!octets) return crypto_failure("ASN1_OCTET_STRING_new");
    if (ASN1_OCTET_STRING_set(octets.get(), reinterpret_cast<const unsigned char*>(ip.data()),
                              static_cast<int>(ip.size())) != 1) {
      return crypto_failure("ASN1_OCTET_STRING_set");
    }
    GENERAL_NAME_set0_value(name.get(), GEN_IPADD, octets.release());
    return name;
  }
  if (!is_dns_name(host)) {
    return bad_input(
        fmt::format("host \"{}\" is neither an IP address nor a DNS name (1-{} characters of "
                    "[A-Za-z0-9.-])",
                    printable_excerpt(host), kMaxDnsNameBytes));
  }
  Ia5StringPtr dns(ASN1_IA5STRING_new());
  if (!dns) return crypto_failure("ASN1_IA5STRING_new");
  if (ASN1_STRING_set(dns.get(), host.data(), static_cast<int>(host.size())) != 1) {
    return crypto_failure("ASN1_STRING_set");
  }
  GENERAL_NAME_set0_value(name.get(), GEN_DNS, dns.release());
  return name;
}

Result<GeneralNamesPtr> make_subject_alt_names(const std::vector<std::string>& hosts) {
  if (hosts.empty()) return bad_input("a server certificate needs at least one host");
  GeneralNamesPtr names(GENERAL_NAMES_new());
  if (!names) return crypto_failure("GENERAL_NAMES_new");
  for (const std::string& host : hosts) {
    auto name = make_general_name(host);
    if (!name) return name.error();
    if (!push_general_name(names.get(), name->get())) return crypto_failure("sk_GENERAL_NAME_push");
    (void)name->release();  // now owned by `names`
  }
  return names;
}

Result<void> set_random_serial(X509* cert) {
  std::string bytes;
  do {
    auto r = random_bytes(kSerialBytes);
    if (!r) return r.error();
    bytes = std::move(*r);
  } while (bytes.find_first_not_of('\0') == std::string::npos);  // a serial must not be 0
  // BN_bin2bn reads unsigned big-endian, so the serial is positive; DER adds a
  // leading zero byte when the top bit is set (17 octets, under the 20 allowed).
  BignumPtr bn(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()), nullptr));
  if (!bn) return crypto_failure("BN_bin2bn");
  if (BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) return crypto_failure("BN_to_ASN1_INTEGER");
  return {};
}

// The same UTC calendar date and time `years` from now (29 February becomes
// 1 March when the target year has no such day).
Result<std::time_t> years_from_now(int years) {
  const std::time_t now = std::time(nullptr);
  std::tm tm = {};
  if (gmtime_r(&now, &tm) == nullptr) return Error::make(errc::internal, "gmtime_r failed");
  tm.tm_year += years;
  const std::time_t later = timegm(&tm);
  if (later == static_cast<std::time_t>(-1)) return Error::make(errc::internal, "timegm failed");
  return later;
}

// A v3 certificate for `key` with subject CN = `cn`, a random serial and a
// validity of now - 1 hour .. now + `validity_years`; no issuer, extensions or
// signature yet.
Result<X509Ptr> new_certificate(EVP_PKEY* key, std::string_view cn, int validity_years) {
  X509Ptr cert(X509_new());
  if (!cert) return crypto_failure("X509_new");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) return crypto_failure("X509_set_version");
  if (auto r = set_random_serial(cert.get()); !r) return r.error();
  if (X509_NAME_add_entry_by_NID(X509_get_subject_name(cert.get()), NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.data()), static_cast<int>(cn.size()), -1,
                                 0) != 1) {
    return crypto_failure("X509_NAME_add_entry_by_NID(commonName)");
  }
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) == nullptr) {
    return crypto_failure("X509_gmtime_adj(notBefore)");
  }
  auto not_after = years_from_now(validity_years);
  if (!not_after) return not_after.error();
  if (X509_time_adj_ex(X509_getm_notAfter(cert.get()), 0, 0, &*not_after) == nullptr) {
    return crypto_failure("X509_time_adj_ex(notAfter)");
  }
  if (X509_set_pubkey(cert.get(), key) != 1) return crypto_failure("X509_set_pubkey");
  return cert;
}

// Adds one extension given in OpenSSL's config syntax (e.g. "critical,CA:TRUE").
Result<void> add_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (!ext) return crypto_failure(fmt::format("creating extension {}", OBJ_nid2sn(nid)));
  if (X509_add_ext(cert, ext.get(), -1) != 1)
    return crypto_failure(fmt::format("adding extension {}", OBJ_nid2sn(nid)));
  return {};
}

Result<CertifiedKey> sign_and_encode(X509* cert, EVP_PKEY* signing_key, EVP_PKEY* subject_key) {
  if (X509_sign(cert, signing_key, EVP_sha256()) <= 0) return crypto_failure("X509_sign");
  auto cert_pem = certificate_pem(cert);
  if (!cert_pem) return cert_pem.error();
  auto key_pem = private_key_pem(subject_key);
  if (!key_pem) return key_pem.error();
  return CertifiedKey{std::move(*cert_pem), std::move(*key_pem)};
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ", ";
    out += printable_excerpt(item);
  }
  return out;
}

}  // namespace

Result<CertifiedKey> create_ca(std::string_view name) {
  ErrorQueueScope errors;
  if (auto r = check_common_name(name, "CA name"); !r) return r.error();
  auto key = generate_p256_key();
  if (!key) return key.error();
  auto cert = new_certificate(key->get(), name, kCaValidityYears);
  if (!cert) return cert.error();
  X509* x = cert->get();
  if (X509_set_issuer_name(x, X509_get_subject_name(x)) != 1) return crypto_failure("X509_set_issuer_name");

  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (const auto& [nid, value] :
       {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
        std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"}, std::pair{NID_subject_key_identifier, "hash"}}) {
    if (auto r = add_extension(x, &ctx, nid, value); !r) return r.error();
  }
  return sign_and_encode(x, key->get(), key->get());
}

Result<CertifiedKey> issue_server_cert(const CertifiedKey& ca, std::string_view common_name,
                                       const std::vector<std::string>& hosts) {
  ErrorQueueScope errors;
  if (auto r = check_common_name(common_name, "server common name"); !r) return r.error();
  auto sans = make_subject_alt_names(hosts);
  if (!sans) return sans.error();

  auto ca_cert = parse_certificate(ca.cert_pem, "CA certificate");
  if (!ca_cert) return ca_cert.error();
  auto ca_key = parse_private_key(ca.key_pem, "CA private key");
  if (!ca_key) return ca_key.error();
  if (X509_check_ca(ca_cert->get()) == 0) return bad_input("the CA certificate is not a CA (basicConstraints CA:TRUE)");
  if (X509_check_private_key(ca_cert->get(), ca_key->get()) != 1) {
    ERR_clear_error();
    return bad_input("the CA private key does not match the CA certificate");
  }

  auto key = generate_p256_key();
  if (!key) return key.error();
  auto cert = new_certificate(key->get(), common_name, kServerValidityYears);
  if (!cert) return cert.error();
  X509* x = cert->get();
  X509* issuer = ca_cert->get();
  if (X509_set_issuer_name(x, X509_get_subject_name(issuer)) != 1) return crypto_failure("X509_set_issuer_name");
  // Never outlive the CA: a chain is only valid while every certificate is.
  if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(issuer)) > 0 &&
      X509_set1_notAfter(x, X509_get0_notAfter(issuer)) != 1) {
    return crypto_failure("X509_set1_notAfter");
  }

  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
  // The subject key identifier goes first: the authority key identifier is
  // taken from the issuer's.
  for (const auto& [nid, value] :
       {std::pair{NID_basic_constraints, "critical,CA:FALSE"}, std::pair{NID_key_usage, "critical,digitalSignature"},
        std::pair{NID_ext_key_usage, "serverAuth"}, std::pair{NID_subject_key_identifier, "hash"},
        std::pair{NID_authority_key_identifier, "keyid:always"}}) {
    if (auto r = add_extension(x, &ctx, nid, value); !r) return r.error();
  }
  if (X509_add1_ext_i2d(x, NID_subject_alt_name, sans->get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return crypto_failure("adding extension subjectAltName");
  }
  return sign_and_encode(x, ca_key->get(), key->get());
}

Result<std::vector<std::string>> subject_alt_names(std::string_view cert_pem) {
  ErrorQueueScope errors;
  auto cert = parse_certificate(cert_pem, "certificate");
  if (!cert) return cert.error();
  int critical = 0;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert->get(), NID_subject_alt_name, &critical, nullptr)));
  std::vector<std::string> out;
  if (!names) {
    if (critical == -1) return out;  // no subjectAltName extension
    return openssl_error(errc::invalid_argument, "the certificate's subjectAltName is malformed or repeated");
  }
  const int count = general_name_count(names.get());
  for (int i = 0; i < count; ++i) {
    int type = 0;
    const auto* value =
        static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(general_name_at(names.get(), i), &type));
    if (value == nullptr || (type != GEN_DNS && type != GEN_IPADD)) continue;
    const auto* data = ASN1_STRING_get0_data(value);
    const auto size = static_cast<std::size_t>(ASN1_STRING_length(value));
    if (type == GEN_DNS) {
      out.emplace_back(reinterpret_cast<const char*>(data), size);
      continue;
    }
    char text[INET6_ADDRSTRLEN] = {};
    const int family = size == 4 ? AF_INET : size == 16 ? AF_INET6 : AF_UNSPEC;
    if (family == AF_UNSPEC || inet_ntop(family, data, text, sizeof text) == nullptr) {
      return bad_input(fmt::format("the certificate has an IP address SAN of {} bytes", size));
    }
    out.emplace_back(text);
  }
  return out;
}

Result<void> verify_server_cert(std::string_view cert_pem, std::string_view ca_pem, std::string_view host,
                                std::optional<std::time_t> at) {
  ErrorQueueScope errors;
  if (host.empty()) return bad_input("the host to verify the certificate for is empty");
  auto cert = parse_certificate(cert_pem, "server certificate");
  if (!cert) return cert.error();
  auto cas = parse_certificates(ca_pem, "CA certificate");
  if (!cas) return cas.error();

  StorePtr store(X509_STORE_new());
  if (!store) return crypto_failure("X509_STORE_new");
  for (const auto& ca : *cas) {
    if (X509_STORE_add_cert(store.get(), ca.get()) != 1) return crypto_failure("X509_STORE_add_cert");
  }
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx) return crypto_failure("X509_STORE_CTX_new");
  if (X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), nullptr) != 1) {
    return crypto_failure("X509_STORE_CTX_init");
  }
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_X509_STRICT);
  // A caller that has decided on one instant checks every date against it
  // (the clock may move between its reads).
  if (at) X509_STORE_CTX_set_time(ctx.get(), 0, *at);
  if (X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER) != 1) {
    return crypto_failure("X509_STORE_CTX_set_purpose");
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    ERR_clear_error();
    return Error::make(
        errc::unauthorized,
        fmt::format("the server certificate does not verify against the CA: {} (X509 error {} at depth {})",
                    X509_verify_cert_error_string(err), err, depth));
  }

  const bool is_ip = !parse_ip(host).empty();
  const std::string host_text(host);
  const int match =
      is_ip ? X509_check_ip_asc(cert->get(), host_text.c_str(), 0)
            : X509_check_host(cert->get(), host.data(), host.size(),
                              X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr);
  if (match == 1) return {};
  if (match == 0) {
    auto names = subject_alt_names(cert_pem);
    return Error::make(
        errc::unauthorized,
        fmt::format("the server certificate is not valid for {} \"{}\" (it names: {})", is_ip ? "IP address" : "host",
                    printable_excerpt(host), names ? join(*names) : std::string("?")));
  }
  if (match == -2) return bad_input(fmt::format("malformed host \"{}\"", printable_excerpt(host)));
  return crypto_failure(is_ip ? "X509_check_ip_asc" : "X509_check_host");
}

Result<CertificateValidity> certificate_validity(std::string_view cert_pem) {
  ErrorQueueScope errors;
  auto cert = parse_certificate(cert_pem, "certificate");
  if (!cert) return cert.error();
  auto to_time = [](const ASN1_TIME* t, const char* which) -> Result<std::time_t> {
    std::tm tm = {};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return crypto_failure(fmt::format("ASN1_TIME_to_tm({})", which));
    const std::time_t v = timegm(&tm);
    if (v == static_cast<std::time_t>(-1)) return Error::make(errc::internal, "timegm failed");
    return v;
  };
  auto nb = to_time(X509_get0_notBefore(cert->get()), "notBefore");
  if (!nb) return nb.error();
  auto na = to_time(X509_get0_notAfter(cert->get()), "notAfter");
  if (!na) return na.error();
  return CertificateValidity{*nb, *na};
}

namespace {

Result<std::string> fingerprint_sha256(X509* cert) {
  unsigned char digest[EVP_MAX_MD_SIZE] = {};
  unsigned int size = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &size) != 1) return crypto_failure("X509_digest");
  return horizon::hex(std::string_view(reinterpret_cast<const char*>(digest), size));
}

}  // namespace

Result<std::string> certificate_fingerprint_sha256(std::string_view cert_pem) {
  ErrorQueueScope errors;
  auto cert = parse_certificate(cert_pem, "certificate");
  if (!cert) return cert.error();
  return fingerprint_sha256(cert->get());
}

Result<std::vector<std::string>> bundle_fingerprints_sha256(std::string_view pem) {
  ErrorQueueScope errors;
  auto certs = parse_certificates(pem, "certificate bundle");
  if (!certs) return certs.error();
  std::vector<std::string> out;
  for (const auto& c : *certs) {
    auto fp = fingerprint_sha256(c.get());
    if (!fp) return fp.error();
    out.push_back(std::move(*fp));
  }
  return out;
}

}  // namespace horizon::net
