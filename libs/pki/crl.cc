#include "pki/crl.h"

#include "base/encoding.h"
#include "pki/pki_internal.h"
#include "pki/reasons.h"

namespace vouch::pki {
namespace {

using crypto::OpensslError;

using Asn1EnumeratedPtr = std::unique_ptr<ASN1_ENUMERATED, crypto::OsslDeleter<ASN1_ENUMERATED_free>>;

Result<crypto::Asn1TimePtr> MakeTime(TimePoint t) {
  crypto::Asn1TimePtr out(ASN1_TIME_set(nullptr, static_cast<time_t>(ToUnixSeconds(t))));
  if (!out) return OpensslError("CRL time");
  return out;
}

Result<crypto::Asn1IntegerPtr> SerialFromHex(const std::string& hex) {
  if (hex.empty() || hex.size() > 40) {
    return InvalidArgument("serial \"" + hex + "\" must be 1 to 40 hex digits",
                           std::string(kInvalidSerial));
  }
  BIGNUM* raw = nullptr;
  if (BN_hex2bn(&raw, hex.c_str()) != static_cast<int>(hex.size())) {
    BN_free(raw);
    crypto::DrainOpensslErrors();
    return InvalidArgument("serial \"" + hex + "\" is not hex", std::string(kInvalidSerial));
  }
  crypto::BnPtr bn(raw);
  crypto::Asn1IntegerPtr out(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!out) return OpensslError("CRL serial");
  return out;
}

}  // namespace

Result<Crl> BuildCrl(const CaSigner& ca, std::span<const RevokedCertificate> revoked, TimePoint this_update,
                     TimePoint next_update, uint64_t crl_number) {
  if (next_update <= this_update) return InvalidArgument("CRL nextUpdate must be after thisUpdate");
  crypto::X509CrlPtr crl(X509_CRL_new());
  if (!crl || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), ca.subject()) != 1) {
    return OpensslError("new CRL");
  }
  VOUCH_ASSIGN_OR_RETURN(crypto::Asn1TimePtr last, MakeTime(this_update));
  VOUCH_ASSIGN_OR_RETURN(crypto::Asn1TimePtr next, MakeTime(next_update));
  if (X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 || X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1) {
    return OpensslError("CRL times");
  }

  for (const RevokedCertificate& r : revoked) {
    VOUCH_ASSIGN_OR_RETURN(crypto::Asn1IntegerPtr serial, SerialFromHex(r.serial_hex));
    VOUCH_ASSIGN_OR_RETURN(crypto::Asn1TimePtr when, MakeTime(r.revoked_at));
    crypto::X509RevokedPtr entry(X509_REVOKED_new());
    if (!entry || X509_REVOKED_set_serialNumber(entry.get(), serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(entry.get(), when.get()) != 1) {
      return OpensslError("CRL entry");
    }
    if (r.reason != RevocationReason::kUnspecified) {
      Asn1EnumeratedPtr code(ASN1_ENUMERATED_new());
      if (!code || ASN1_ENUMERATED_set(code.get(), static_cast<long>(r.reason)) != 1 ||
          X509_REVOKED_add1_ext_i2d(entry.get(), NID_crl_reason, code.get(), 0, X509V3_ADD_DEFAULT) != 1) {
        return OpensslError("CRL reason code");
      }
    }
    if (X509_CRL_add0_revoked(crl.get(), entry.get()) != 1) return OpensslError("add CRL entry");
    entry.release();  // owned by the CRL now
  }
  if (X509_CRL_sort(crl.get()) != 1) return OpensslError("sort CRL");

  if (X509_CRL_add_ext(crl.get(), const_cast<X509_EXTENSION*>(ca.authority_key_id_extension()), -1) != 1) {
    return OpensslError("CRL authorityKeyIdentifier");
  }
  crypto::Asn1IntegerPtr number(ASN1_INTEGER_new());
  if (!number || ASN1_INTEGER_set_uint64(number.get(), crl_number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OpensslError("CRL number");
  }
  VOUCH_RETURN_IF_ERROR(ca.Sign(crl.get()));

  Crl out;
  unsigned char* der = nullptr;
  int len = i2d_X509_CRL(crl.get(), &der);
  if (len <= 0) return OpensslError("encode CRL");
  out.der.assign(der, der + len);
  OPENSSL_free(der);
  out.pem = DerToPem("X509 CRL", out.der);
  return out;
}

}  // namespace vouch::pki
