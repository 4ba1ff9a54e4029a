#include "pki/ca.h"

#include <openssl/core_names.h>
#include <openssl/rand.h>

#include "crypto/keys.h"
#include "crypto/x509.h"
#include "pki/der.h"
#include "pki/oids.h"
#include "pki/pki_internal.h"
#include "pki/reasons.h"

namespace vouch::pki {
namespace {

using crypto::OpensslError;

constexpr size_t kMaxCommonName = 64;  // RFC 5280 ub-common-name

// AlgorithmIdentifier ::= SEQUENCE { OID, NULL for RSA / absent for ECDSA (RFC 5758 §3.2) }
template <size_t N>
std::vector<uint8_t> AlgorithmIdentifier(const uint8_t (&oid)[N], bool null_params) {
  der::Writer inner;
  inner.AddElement(der::kTagOid, oid);
  if (null_params) inner.AddElement(der::kTagNull, {});
  der::Writer seq;
  seq.AddElement(der::kTagSequence, inner.bytes());
  return seq.Take();
}

Status SetTime(ASN1_TIME* field, TimePoint t) {
  if (ASN1_TIME_set(field, static_cast<time_t>(ToUnixSeconds(t))) == nullptr) {
    return OpensslError("set certificate time");
  }
  return Status::Ok();
}

}  // namespace

std::array<uint8_t, 16> RandomSerial() {
  std::array<uint8_t, 16> serial{};
  do {
    if (RAND_bytes(serial.data(), static_cast<int>(serial.size())) != 1) std::abort();
  } while (serial[0] < 0x10);
  return serial;
}

std::span<const uint8_t> SpkiKeyBits(std::span<const uint8_t> spki_der) {
  der::Reader top(spki_der);
  der::Element spki, alg, bits;
  if (!top.Read(der::kTagSequence, &spki) || !top.empty()) return {};
  der::Reader r(spki.contents);
  if (!r.Read(der::kTagSequence, &alg) || !r.Read(der::kTagBitString, &bits) || !r.empty() ||
      bits.contents.size() < 2 || bits.contents[0] != 0) {
    return {};
  }
  return bits.contents.subspan(1);
}

Result<std::vector<uint8_t>> KeyIdentifier(std::span<const uint8_t> spki_der) {
  std::span<const uint8_t> bits = SpkiKeyBits(spki_der);
  if (bits.empty())
    return InvalidArgument("malformed SubjectPublicKeyInfo", std::string(kInvalidKey));
  std::vector<uint8_t> id(20);
  unsigned int len = 0;
  if (EVP_Digest(bits.data(), bits.size(), id.data(), &len, EVP_sha1(), nullptr) != 1 || len != 20) {
    return OpensslError("SHA-1 key identifier");
  }
  return id;
}

Result<CaMaterial> CreateRootCa(const RootCaOptions& options, const Clock& clock) {
  if (options.common_name.empty() || options.common_name.size() > kMaxCommonName) {
    return InvalidArgument("CA common name must be 1 to 64 characters, got " +
                           std::to_string(options.common_name.size()));
  }
  if (options.organization.size() > kMaxCommonName) {
    return InvalidArgument("CA organization must be at most 64 characters");
  }
  if (options.validity <= std::chrono::seconds(0)) return InvalidArgument("CA validity must be positive");
  if (options.path_length && *options.path_length < 0) return InvalidArgument("CA path length must be >= 0");

  crypto::KeyType key_type = crypto::KeyType::kEcP256;
  const EVP_MD* md = EVP_sha256();
  switch (options.key_algorithm) {
    case CaKeyAlgorithm::kEcP256: break;
    case CaKeyAlgorithm::kEcP384: key_type = crypto::KeyType::kEcP384; md = EVP_sha384(); break;
    case CaKeyAlgorithm::kRsa3072: key_type = crypto::KeyType::kRsa3072; break;
  }
  VOUCH_ASSIGN_OR_RETURN(crypto::EvpPkeyPtr key, crypto::GenerateKey(key_type));

  crypto::X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) return OpensslError("new CA certificate");
  std::array<uint8_t, 16> serial = RandomSerial();
  if (ASN1_STRING_set(X509_get_serialNumber(cert.get()), serial.data(), static_cast<int>(serial.size())) != 1) {
    return OpensslError("set CA serial");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  auto add_entry = [&](int nid, const std::string& value) {
    return X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.data()),
                                      static_cast<int>(value.size()), -1, 0) == 1;
  };
  if (!options.organization.empty() && !add_entry(NID_organizationName, options.organization)) {
    return OpensslError("set CA organization", StatusCode::kInvalidArgument, "invalid_argument");
  }
  if (!add_entry(NID_commonName, options.common_name)) {
    return OpensslError("set CA common name", StatusCode::kInvalidArgument, "invalid_argument");
  }
  if (X509_set_issuer_name(cert.get(), name) != 1) return OpensslError("set CA issuer");
  TimePoint not_before = options.not_before.value_or(clock.Now());
  VOUCH_RETURN_IF_ERROR(SetTime(X509_getm_notBefore(cert.get()), not_before));
  VOUCH_RETURN_IF_ERROR(SetTime(X509_getm_notAfter(cert.get()), not_before + options.validity));
  if (X509_set_pubkey(cert.get(), key.get()) != 1) return OpensslError("set CA public key");

  // basicConstraints: CA:TRUE, critical (RFC 5280 §4.2.1.9).
  std::unique_ptr<BASIC_CONSTRAINTS, crypto::OsslDeleter<BASIC_CONSTRAINTS_free>> bc(BASIC_CONSTRAINTS_new());
  if (!bc) return OpensslError("basicConstraints");
  bc->ca = 0xff;
  if (options.path_length) {
    bc->pathlen = ASN1_INTEGER_new();
    if (bc->pathlen == nullptr || ASN1_INTEGER_set(bc->pathlen, *options.path_length) != 1) {
      return OpensslError("basicConstraints path length");
    }
  }
  if (X509_add1_ext_i2d(cert.get(), NID_basic_constraints, bc.get(), 1, X509V3_ADD_DEFAULT) != 1) {
    return OpensslError("add basicConstraints");
  }
  // keyUsage: keyCertSign (5) and cRLSign (6), critical (RFC 5280 §4.2.1.3).
  std::unique_ptr<ASN1_BIT_STRING, crypto::OsslDeleter<ASN1_BIT_STRING_free>> ku(ASN1_BIT_STRING_new());
  if (!ku || ASN1_BIT_STRING_set_bit(ku.get(), 5, 1) != 1 || ASN1_BIT_STRING_set_bit(ku.get(), 6, 1) != 1 ||
      X509_add1_ext_i2d(cert.get(), NID_key_usage, ku.get(), 1, X509V3_ADD_DEFAULT) != 1) {
    return OpensslError("add keyUsage");
  }
  // subjectKeyIdentifier and (for chain builders that want it) the same authorityKeyIdentifier.
  VOUCH_ASSIGN_OR_RETURN(std::vector<uint8_t> spki, crypto::PublicKeyToDer(key.get()));
  VOUCH_ASSIGN_OR_RETURN(std::vector<uint8_t> key_id, KeyIdentifier(spki));
  crypto::Asn1OctetStringPtr ski(ASN1_OCTET_STRING_new());
  if (!ski || ASN1_OCTET_STRING_set(ski.get(), key_id.data(), static_cast<int>(key_id.size())) != 1 ||
      X509_add1_ext_i2d(cert.get(), NID_subject_key_identifier, ski.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OpensslError("add subjectKeyIdentifier");
  }
  std::unique_ptr<AUTHORITY_KEYID, crypto::OsslDeleter<AUTHORITY_KEYID_free>> akid(AUTHORITY_KEYID_new());
  if (!akid) return OpensslError("authorityKeyIdentifier");
  akid->keyid = ASN1_OCTET_STRING_dup(ski.get());
  if (akid->keyid == nullptr ||
      X509_add1_ext_i2d(cert.get(), NID_authority_key_identifier, akid.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OpensslError("add authorityKeyIdentifier");
  }
  if (X509_sign(cert.get(), key.get(), md) <= 0) return OpensslError("self-sign CA certificate");

  CaMaterial out;
  VOUCH_ASSIGN_OR_RETURN(out.cert_der, crypto::CertToDer(cert.get()));
  VOUCH_ASSIGN_OR_RETURN(out.cert_pem, crypto::CertToPem(cert.get()));
  out.cert = std::move(cert);
  out.key = std::move(key);
  return out;
}

Result<std::unique_ptr<CaSigner>> CaSigner::Create(X509* cert, EVP_PKEY* key) {
  if (cert == nullptr || key == nullptr) return InvalidArgument("CA certificate and key are required");
  // Re-parse the certificate so that this object owns a canonical, never-modified copy.
  VOUCH_ASSIGN_OR_RETURN(std::vector<uint8_t> der, crypto::CertToDer(cert));
  VOUCH_ASSIGN_OR_RETURN(crypto::X509Ptr own, crypto::CertFromDer(der));

  // X509_get_extension_flags caches the parsed extensions now, single-threaded.
  uint32_t flags = X509_get_extension_flags(own.get());
  if (flags & EXFLAG_INVALID)
    return InvalidArgument("CA certificate has invalid extensions", std::string(kNotACa));
  if (!(flags & EXFLAG_CA))
    return InvalidArgument("certificate is not a CA (basicConstraints CA:TRUE missing)",
                           std::string(kNotACa));
  if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(own.get()) & KU_KEY_CERT_SIGN)) {
    return InvalidArgument("CA certificate keyUsage lacks keyCertSign", std::string(kNotACa));
  }
  if (X509_check_private_key(own.get(), key) != 1) {
    crypto::DrainOpensslErrors();
    return InvalidArgument("private key does not match the CA certificate",
                           std::string(kCaKeyMismatch));
  }

  auto signer = std::unique_ptr<CaSigner>(new CaSigner());
  int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_EC) {
    char group[64] = {0};
    size_t len = 0;
    EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len);
    std::string_view g(group);
    if (g == "prime256v1") {
      signer->md_ = EVP_sha256();
      signer->signature_algorithm_der_ = AlgorithmIdentifier(oid::kEcdsaWithSha256, false);
    } else if (g == "secp384r1") {
      signer->md_ = EVP_sha384();
      signer->alg_ = crypto::DigestAlg::kSha384;
      signer->signature_algorithm_der_ = AlgorithmIdentifier(oid::kEcdsaWithSha384, false);
    } else {
      return InvalidArgument("CA key is EC on " + std::string(g) + ", expected P-256 or P-384",
                             std::string(kCaKeyTypeNotSupported));
    }
  } else if (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(key) >= 2048) {
    signer->md_ = EVP_sha256();
    signer->signature_algorithm_der_ = AlgorithmIdentifier(oid::kSha256WithRsa, true);
  } else {
    return InvalidArgument(
        "CA key is " + crypto::DescribeKey(key) + ", expected EC P-256/P-384 or RSA >= 2048",
        std::string(kCaKeyTypeNotSupported));
  }
  if (EVP_PKEY_up_ref(key) != 1) return OpensslError("EVP_PKEY_up_ref");
  signer->key_.reset(key);

  signer->subject_.reset(X509_NAME_dup(X509_get_subject_name(own.get())));
  if (!signer->subject_) return OpensslError("copy CA subject");
  unsigned char* name_der = nullptr;
  int name_len = i2d_X509_NAME(signer->subject_.get(), &name_der);
  if (name_len <= 0) return OpensslError("encode CA subject");
  signer->subject_der_.assign(name_der, name_der + name_len);
  OPENSSL_free(name_der);

  if (const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(own.get()); ski != nullptr) {
    signer->key_id_.assign(ski->data, ski->data + ski->length);
  } else {
    unsigned char* spki = nullptr;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(own.get()), &spki);
    if (n <= 0) return OpensslError("encode CA public key");
    auto id_or = KeyIdentifier({spki, static_cast<size_t>(n)});
    OPENSSL_free(spki);
    if (!id_or.ok()) return id_or.status();
    signer->key_id_ = std::move(id_or).value();
  }
  std::unique_ptr<AUTHORITY_KEYID, crypto::OsslDeleter<AUTHORITY_KEYID_free>> akid(AUTHORITY_KEYID_new());
  if (!akid) return OpensslError("authorityKeyIdentifier");
  akid->keyid = ASN1_OCTET_STRING_new();
  if (akid->keyid == nullptr ||
      ASN1_OCTET_STRING_set(akid->keyid, signer->key_id_.data(), static_cast<int>(signer->key_id_.size())) != 1) {
    return OpensslError("authorityKeyIdentifier");
  }
  signer->aki_.reset(X509V3_EXT_i2d(NID_authority_key_identifier, 0, akid.get()));
  if (!signer->aki_) return OpensslError("encode authorityKeyIdentifier");
  const ASN1_OCTET_STRING* aki_value = X509_EXTENSION_get_data(signer->aki_.get());
  signer->aki_der_.assign(ASN1_STRING_get0_data(aki_value), ASN1_STRING_get0_data(aki_value) + ASN1_STRING_length(aki_value));

  signer->not_after_ = crypto::NotAfter(own.get());
  VOUCH_ASSIGN_OR_RETURN(signer->cert_pem_, crypto::CertToPem(own.get()));
  signer->cert_ = std::move(own);
  return signer;
}

Result<std::unique_ptr<CaSigner>> CaSigner::CreateFromPem(std::string_view cert_pem, std::string_view key_pem) {
  VOUCH_ASSIGN_OR_RETURN(crypto::X509Ptr cert, crypto::CertFromPem(cert_pem));
  VOUCH_ASSIGN_OR_RETURN(crypto::EvpPkeyPtr key, crypto::PrivateKeyFromPem(key_pem));
  return Create(cert.get(), key.get());
}

Status CaSigner::Sign(X509* cert) const {
  if (X509_sign(cert, key_.get(), md_) <= 0) return OpensslError("sign certificate");
  return Status::Ok();
}

Result<std::vector<uint8_t>> CaSigner::SignData(std::span<const uint8_t> data) const {
  return crypto::Sign(key_.get(), data, alg_);
}

Status CaSigner::Sign(X509_CRL* crl) const {
  if (X509_CRL_sign(crl, key_.get(), md_) <= 0) return OpensslError("sign CRL");
  return Status::Ok();
}

}  // namespace vouch::pki
