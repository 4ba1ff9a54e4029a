#include "evidence/dcap_quote.h"

#include <string>

#include "base/byte_reader.h"
#include "base/encoding.h"

namespace vouch::evidence {
namespace {

Status Fail(std::string_view reason, std::string message) {
  return InvalidArgument(std::move(message), std::string(reason));
}

template <size_t N>
void CopyTo(Bytes src, size_t off, std::array<uint8_t, N>* out) {
  for (size_t i = 0; i < N; ++i) (*out)[i] = src[off + i];
}

std::string Sz(size_t n) { return std::to_string(n); }

std::string Hex32(uint32_t v) {
  const uint8_t be[4] = {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
                         static_cast<uint8_t>(v)};
  return HexEncode(be);
}

TdReport ParseTdReport(Bytes b, bool v15) {
  namespace o = td_report_offsets;
  TdReport r;
  CopyTo(b, o::kTeeTcbSvn, &r.tee_tcb_svn);
  CopyTo(b, o::kMrSeam, &r.mr_seam);
  CopyTo(b, o::kMrSignerSeam, &r.mr_signer_seam);
  CopyTo(b, o::kSeamAttributes, &r.seam_attributes);
  CopyTo(b, o::kTdAttributes, &r.td_attributes);
  CopyTo(b, o::kXfam, &r.xfam);
  CopyTo(b, o::kMrTd, &r.mr_td);
  CopyTo(b, o::kMrConfigId, &r.mr_config_id);
  CopyTo(b, o::kMrOwner, &r.mr_owner);
  CopyTo(b, o::kMrOwnerConfig, &r.mr_owner_config);
  for (size_t i = 0; i < 4; ++i) CopyTo(b, o::kRtmr0 + 48 * i, &r.rtmr[i]);
  CopyTo(b, o::kReportData, &r.report_data);
  r.v15 = v15;
  if (v15) {
    CopyTo(b, o::kTeeTcbSvn2, &r.tee_tcb_svn2);
    CopyTo(b, o::kMrServiceTd, &r.mr_servicetd);
  }
  return r;
}

bool IsPckCertType(uint16_t t) { return t >= 1 && t <= 5; }

// Reads QE report ‖ QE report signature ‖ auth data ‖ certification data (the v3 tail of the
// signature data, and the content of a type-6 wrapper). `where` names the container for messages.
Status ParseQeTail(ByteReader& r, std::string_view where, DcapQuote* q) {
  Bytes qe_report, qe_sig;
  if (!r.ReadBytes(kSgxReportBodySize, &qe_report) || !r.ReadBytes(64, &qe_sig)) {
    return Fail(kSigDataTooShort, std::string(where) + " ends before the QE report and its signature (" +
                                      Sz(r.remaining()) + " bytes left)");
  }
  CopyTo(qe_sig, 0, &q->qe_report_signature);
  auto body = ParseSgxReportBody(qe_report);
  if (!body.ok()) return body.status();
  q->qe_report = std::move(*body);
  uint16_t auth_size = 0;
  if (!r.ReadU16(&auth_size)) return Fail(kSigDataTooShort, std::string(where) + " ends before the QE auth data size");
  Bytes auth;
  if (!r.ReadBytes(auth_size, &auth)) {
    return Fail(kAuthDataOverrun, "QE auth data declares " + Sz(auth_size) + " bytes, " + Sz(r.remaining()) +
                                      " left in the " + std::string(where));
  }
  q->qe_auth_data.assign(auth.begin(), auth.end());
  uint16_t cert_type = 0;
  uint32_t cert_size = 0;
  if (!r.ReadU16(&cert_type) || !r.ReadU32(&cert_size)) {
    return Fail(kSigDataTooShort, std::string(where) + " ends before the certification data header");
  }
  if (!IsPckCertType(cert_type)) {
    return Fail(kUnsupportedCertDataType, "certification data type " + Sz(cert_type) + " in the " +
                                              std::string(where) + ", expected 1-5");
  }
  Bytes cert;
  if (!r.ReadBytes(cert_size, &cert)) {
    return Fail(kCertDataOverrun, "certification data declares " + Sz(cert_size) + " bytes, " +
                                      Sz(r.remaining()) + " left in the " + std::string(where));
  }
  q->cert_data.type = cert_type;
  q->cert_data.data.assign(cert.begin(), cert.end());
  return Status::Ok();
}

}  // namespace

std::span<const uint8_t, 64> DcapQuote::report_data() const {
  if (td_report.has_value()) return std::span<const uint8_t, 64>(td_report->report_data);
  static const std::array<uint8_t, 64> kZero{};
  if (sgx_report.has_value()) return std::span<const uint8_t, 64>(sgx_report->report_data);
  return std::span<const uint8_t, 64>(kZero);
}

bool LooksLikeDcapQuote(std::span<const uint8_t> bytes) {
  if (bytes.size() < 4) return false;
  uint16_t version = LoadU16(bytes, 0);
  uint16_t key_type = LoadU16(bytes, 2);
  return (version == 3 || version == 4 || version == 5) && key_type == kAttKeyTypeEcdsaP256;
}

Result<DcapQuote> ParseDcapQuote(std::span<const uint8_t> bytes) {
  namespace o = quote_offsets;
  if (bytes.size() < kQuoteHeaderSize) {
    return Fail(kQuoteTruncated, "quote is " + Sz(bytes.size()) + " bytes, shorter than its 48-byte header");
  }
  DcapQuote q;
  ByteReader r(bytes);
  QuoteHeader& h = q.header;
  bool ok = r.ReadU16(&h.version) && r.ReadU16(&h.att_key_type) && r.ReadU32(&h.tee_type) && r.ReadU16(&h.qe_svn) &&
            r.ReadU16(&h.pce_svn);
  Bytes vendor, user;
  ok = ok && r.ReadBytes(16, &vendor) && r.ReadBytes(20, &user);
  if (!ok) return Fail(kQuoteTruncated, "quote header truncated");
  CopyTo(vendor, 0, &h.qe_vendor_id);
  CopyTo(user, 0, &h.user_data);

  if (h.version != 3 && h.version != 4 && h.version != 5) {
    return Fail(kUnsupportedQuoteVersion, "quote version " + Sz(h.version) + ", expected 3, 4 or 5");
  }
  if (h.att_key_type != kAttKeyTypeEcdsaP256) {
    return Fail(kUnsupportedAttKeyType,
                "attestation key type " + Sz(h.att_key_type) + ", expected 2 (ECDSA-256 with P-256)");
  }
  if (h.version == 3 ? h.tee_type != kTeeTypeSgx : (h.tee_type != kTeeTypeSgx && h.tee_type != kTeeTypeTdx)) {
    return Fail(kUnsupportedTeeType, "TEE type 0x" + Hex32(h.tee_type) +
                                         (h.version == 3 ? " in a v3 quote, expected 0" : ", expected 0 or 0x81"));
  }
  if (h.qe_vendor_id != kIntelQeVendorId) {
    return Fail(kQeVendorMismatch, "QE vendor id " + HexEncode(h.qe_vendor_id) + ", expected Intel's " +
                                       HexEncode(kIntelQeVendorId));
  }

  // Body.
  size_t body_size = 0;
  if (h.version == 5) {
    uint16_t type = 0;
    uint32_t size = 0;
    if (!r.ReadU16(&type) || !r.ReadU32(&size)) return Fail(kQuoteTruncated, "quote ends inside the v5 body descriptor");
    switch (type) {
      case 1: body_size = kSgxReportBodySize; break;
      case 2: body_size = kTdReport10Size; break;
      case 3: body_size = kTdReport15Size; break;
      default: return Fail(kUnsupportedBodyType, "v5 body type " + Sz(type) + ", expected 1, 2 or 3");
    }
    if (size != body_size) {
      return Fail(kUnsupportedBodyType,
                  "v5 body type " + Sz(type) + " declares " + Sz(size) + " bytes, expected " + Sz(body_size));
    }
    if ((type == 1) != (h.tee_type == kTeeTypeSgx)) {
      return Fail(kUnsupportedBodyType, "v5 body type " + Sz(type) + " does not match the TEE type");
    }
    q.body_type = static_cast<QuoteBodyType>(type);
  } else if (h.tee_type == kTeeTypeTdx) {
    body_size = kTdReport10Size;
    q.body_type = QuoteBodyType::kTdReport10;
  } else {
    body_size = kSgxReportBodySize;
    q.body_type = QuoteBodyType::kSgxReport;
  }
  Bytes body;
  if (!r.ReadBytes(body_size, &body)) {
    return Fail(kQuoteTruncated, "quote is " + Sz(bytes.size()) + " bytes, its body ends at " + Sz(r.offset() + body_size));
  }
  if (q.body_type == QuoteBodyType::kSgxReport) {
    auto b = ParseSgxReportBody(body);
    if (!b.ok()) return b.status();
    q.sgx_report = std::move(*b);
  } else {
    q.td_report = ParseTdReport(body, q.body_type == QuoteBodyType::kTdReport15);
  }
  q.signed_data.assign(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(r.offset()));

  // Signature data.
  if (!r.ReadU32(&q.sig_data_len)) return Fail(kQuoteTruncated, "quote ends before the signature data length");
  Bytes sig_data;
  if (!r.ReadBytes(q.sig_data_len, &sig_data)) {
    return Fail(kSigDataOverrun, "signature data declares " + Sz(q.sig_data_len) + " bytes, " + Sz(r.remaining()) +
                                     " left in the quote");
  }
  q.trailing_bytes = r.remaining();

  ByteReader s(sig_data);
  Bytes sig, key;
  if (!s.ReadBytes(kQuoteSignatureSize, &sig) || !s.ReadBytes(kAttestationKeySize, &key)) {
    return Fail(kSigDataTooShort, "signature data is " + Sz(sig_data.size()) +
                                      " bytes, too short for the signature and attestation key");
  }
  CopyTo(sig, 0, &q.signature);
  CopyTo(key, 0, &q.attestation_key);

  if (h.version == 3) {
    VOUCH_RETURN_IF_ERROR(ParseQeTail(s, "signature data", &q));
    q.outer_cert_data_type = q.cert_data.type;
    return q;
  }
  // v4/v5: certification data of type 6 wrapping the QE report certification data.
  uint16_t outer_type = 0;
  uint32_t outer_size = 0;
  if (!s.ReadU16(&outer_type) || !s.ReadU32(&outer_size)) {
    return Fail(kSigDataTooShort, "signature data ends before the certification data header");
  }
  if (outer_type != static_cast<uint16_t>(CertDataType::kQeReportCertData)) {
    return Fail(kUnsupportedCertDataType,
                "certification data type " + Sz(outer_type) + " in a v" + Sz(h.version) + " quote, expected 6");
  }
  Bytes outer;
  if (!s.ReadBytes(outer_size, &outer)) {
    return Fail(kCertDataOverrun, "certification data declares " + Sz(outer_size) + " bytes, " + Sz(s.remaining()) +
                                      " left in the signature data");
  }
  q.outer_cert_data_type = outer_type;
  ByteReader w(outer);
  VOUCH_RETURN_IF_ERROR(ParseQeTail(w, "QE report certification data", &q));
  return q;
}

namespace {
Result<DcapQuote> RequireVersion(std::span<const uint8_t> bytes, uint16_t version, bool tdx) {
  VOUCH_ASSIGN_OR_RETURN(DcapQuote q, ParseDcapQuote(bytes));
  if (q.header.version != version) {
    return Fail(kUnsupportedQuoteVersion, "quote version " + Sz(q.header.version) + ", expected " + Sz(version));
  }
  if (q.is_tdx() != tdx) {
    return Fail(kUnsupportedTeeType, tdx ? "expected a TDX quote, got SGX" : "expected an SGX quote, got TDX");
  }
  return q;
}
}  // namespace

Result<DcapQuote> ParseSgxQuoteV3(std::span<const uint8_t> bytes) { return RequireVersion(bytes, 3, false); }
Result<DcapQuote> ParseTdxQuoteV4(std::span<const uint8_t> bytes) { return RequireVersion(bytes, 4, true); }
Result<DcapQuote> ParseTdxQuoteV5(std::span<const uint8_t> bytes) { return RequireVersion(bytes, 5, true); }

}  // namespace vouch::evidence
