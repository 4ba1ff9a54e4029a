#include "crypto/x509.h"

#include <openssl/pem.h>

#include "base/encoding.h"

#include <cstdio>
#include <map>
#include <optional>
#include <mutex>
#include <sstream>

namespace vouch::crypto {
namespace {

BioPtr MemBio(const void* p, size_t n) { return BioPtr(BIO_new_mem_buf(p, static_cast<int>(n))); }

Result<std::string> BioString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len < 0) return Internal("BIO_get_mem_data failed");
  return std::string(data, static_cast<size_t>(len));
}

// Parsed certificates by their DER bytes. OpenSSL 3.0 decodes a certificate's public key through
// its provider decoder chain while parsing, about as costly as a signature check, and a DCAP
// verification meets the same Intel root three times (quote chain, trusted root, TCB signing
// chain) and the TCB signing certificate twice. X509 objects are reference-counted and safe to
// share read-only (their lazily computed extension cache is locked); nothing in vouch modifies a
// parsed certificate. Bounded: cleared when full.
class ParsedCertCache {
 public:
  X509Ptr Find(std::string_view der) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = certs_.find(der);
    if (it == certs_.end() || X509_up_ref(it->second.get()) != 1) return nullptr;
    return X509Ptr(it->second.get());
  }
  void Add(std::string_view der, X509* cert) {
    if (X509_up_ref(cert) != 1) return;
    X509Ptr ref(cert);
    std::lock_guard<std::mutex> lock(mu_);
    if (certs_.size() >= kMaxEntries) certs_.clear();
    certs_.emplace(std::string(der), std::move(ref));
  }

 private:
  static constexpr size_t kMaxEntries = 64;
  std::mutex mu_;
  std::map<std::string, X509Ptr, std::less<>> certs_;
};

ParsedCertCache& CertCache() {
  static ParsedCertCache* cache = new ParsedCertCache();  // never destroyed: no exit-time order issues
  return *cache;
}

// The DER inside a PEM text whose only block is one CERTIFICATE with no headers; nullopt for
// anything else (which then goes through OpenSSL's PEM reader unchanged).
std::optional<std::vector<uint8_t>> SimplePemBody(std::string_view pem) {
  static constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  static constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  const size_t b = pem.find(kBegin);
  if (b == std::string_view::npos) return std::nullopt;
  const size_t e = pem.find(kEnd, b + kBegin.size());
  if (e == std::string_view::npos || pem.find(':', b) < e) return std::nullopt;  // headers
  std::string body;
  body.reserve(e - b);
  for (char ch : pem.substr(b + kBegin.size(), e - b - kBegin.size()))
    if (ch != '\n' && ch != '\r' && ch != ' ' && ch != '\t') body.push_back(ch);
  auto der = Base64Decode(body);
  if (!der.ok()) return std::nullopt;
  return std::move(*der);
}

X509Ptr ParseDerCached(std::span<const uint8_t> der) {
  std::string_view key(reinterpret_cast<const char*>(der.data()), der.size());
  if (X509Ptr cached = CertCache().Find(key)) return cached;
  const unsigned char* p = der.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (cert == nullptr) return nullptr;
  if (p == der.data() + der.size()) CertCache().Add(key, cert);
  return X509Ptr(cert);
}

}  // namespace

Result<X509Ptr> CertFromPem(std::string_view pem) {
  if (auto der = SimplePemBody(pem)) {
    if (X509Ptr cert = ParseDerCached(*der)) return cert;
    DrainOpensslErrors();
  }
  BioPtr bio = MemBio(pem.data(), pem.size());
  X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (cert == nullptr) return OpensslError("parse certificate PEM", StatusCode::kInvalidArgument, "invalid_certificate");
  return X509Ptr(cert);
}

Result<X509Ptr> CertFromDer(std::span<const uint8_t> der) {
  X509Ptr cert = ParseDerCached(der);
  if (!cert) return OpensslError("parse certificate DER", StatusCode::kInvalidArgument, "invalid_certificate");
  return cert;
}

Result<std::vector<X509Ptr>> CertsFromPem(std::string_view pem) {
  std::vector<X509Ptr> out;
  static constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  static constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  size_t pos = 0;
  while ((pos = pem.find(kBegin, pos)) != std::string_view::npos) {
    size_t end = pem.find(kEnd, pos);
    if (end == std::string_view::npos) {
      return InvalidArgument("unterminated PEM certificate block", "invalid_certificate");
    }
    end += kEnd.size();
    VOUCH_ASSIGN_OR_RETURN(X509Ptr cert, CertFromPem(pem.substr(pos, end - pos)));
    out.push_back(std::move(cert));
    pos = end;
  }
  if (out.empty()) return InvalidArgument("no PEM certificate found", "invalid_certificate");
  return out;
}

Result<std::string> CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return OpensslError("encode certificate");
  return BioString(bio.get());
}

Result<std::vector<uint8_t>> CertToDer(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len <= 0) return OpensslError("encode certificate DER");
  std::vector<uint8_t> out(der, der + len);
  OPENSSL_free(der);
  return out;
}

Result<X509CrlPtr> CrlFromDerOrPem(std::span<const uint8_t> data) {
  const unsigned char* p = data.data();
  X509_CRL* crl = d2i_X509_CRL(nullptr, &p, static_cast<long>(data.size()));
  if (crl == nullptr) {
    DrainOpensslErrors();
    BioPtr bio = MemBio(data.data(), data.size());
    crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr);
  }
  if (crl == nullptr) return OpensslError("parse CRL", StatusCode::kInvalidArgument, "invalid_crl");
  return X509CrlPtr(crl);
}

Result<std::string> CrlToPem(X509_CRL* crl) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_CRL(bio.get(), crl) != 1) return OpensslError("encode CRL");
  return BioString(bio.get());
}

Result<std::vector<uint8_t>> CrlToDer(X509_CRL* crl) {
  unsigned char* der = nullptr;
  int len = i2d_X509_CRL(crl, &der);
  if (len <= 0) return OpensslError("encode CRL DER");
  std::vector<uint8_t> out(der, der + len);
  OPENSSL_free(der);
  return out;
}

std::string NameToString(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "";
  auto s = BioString(bio.get());
  return s.ok() ? *s : "";
}

std::string SubjectCommonName(X509* cert) {
  X509_NAME* name = X509_get_subject_name(cert);
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return "";
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

std::string SerialHex(X509* cert) {
  BnPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) return "";
  if (BN_is_zero(bn.get())) return "0";
  char* hex = BN_bn2hex(bn.get());
  std::string out(hex);
  OPENSSL_free(hex);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t nz = out.find_first_not_of('0');
  return nz == std::string::npos ? "0" : out.substr(nz);
}

bool IsSelfSigned(X509* cert) {
  EVP_PKEY* key = cert == nullptr ? nullptr : X509_get0_pubkey(cert);
  bool ok = key != nullptr && X509_verify(cert, key) == 1;
  DrainOpensslErrors();
  return ok;
}

TimePoint Asn1TimeToTimePoint(const ASN1_TIME* t) {
  struct tm tm = {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return TimePoint{};
  return FromUnixSeconds(static_cast<int64_t>(timegm(&tm)));
}

TimePoint NotBefore(X509* cert) { return Asn1TimeToTimePoint(X509_get0_notBefore(cert)); }
TimePoint NotAfter(X509* cert) { return Asn1TimeToTimePoint(X509_get0_notAfter(cert)); }

}  // namespace vouch::crypto
