#include "evidence/dcap_quote.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "base/byte_reader.h"
#include "base/encoding.h"
#include "evidence/sgx_report.h"

namespace vouch::evidence {
namespace {

std::vector<uint8_t> ReadVector(const std::string& rel) {
  std::ifstream f(std::string(VOUCH_SHARED_DIR) + "/testdata/attestation/" + rel, std::ios::binary);
  EXPECT_TRUE(f.good()) << rel;
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct QuoteCase {
  const char* path;
  uint16_t version;
  bool tdx;
  size_t trailing;
  uint16_t cert_type;
  const char* tee_tcb_svn;  // tdx only
};

const QuoteCase kCases[] = {
    {"sgx-dcap/dcap-rs-icx-2025-02/quote.dat", 3, false, 0, 5, nullptr},
    {"sgx-dcap/trustee-occlum-quote-only/quote.dat", 3, false, 0, 5, nullptr},
    {"sgx-dcap/intel-qvl-sample-SYNTHETIC/quote.dat", 3, false, 0, 1, nullptr},
    {"tdx/dcap-rs-spr-v4-2025-02/quote.dat", 4, true, 3065, 5, "04010700000000000000000000000000"},
    {"tdx/go-tdx-guest-spr-e4-v4-2023-07/quote.dat", 4, true, 39, 5, "03000400000000000000000000000000"},
    {"tdx/automata-emr-v5-2025-06/quote.dat", 5, true, 0, 5, "05010200000000000000000000000000"},
    {"tdx/go-tdx-guest-emr-v5-partial/quote.dat", 5, true, 0, 5, "0b010400000000000000000000000000"},
    {"tdx/trustee-quotes-only/tdx_quote_4.dat", 4, true, 0, 5, nullptr},
    {"tdx/trustee-quotes-only/tdx_quote_6.dat", 4, true, 70, 5, nullptr},
};

TEST(DcapQuoteParser, ParsesEveryTestVector) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.path);
    auto bytes = ReadVector(c.path);
    auto q = ParseDcapQuote(bytes);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    EXPECT_EQ(q->header.version, c.version);
    EXPECT_EQ(q->is_tdx(), c.tdx);
    EXPECT_EQ(q->trailing_bytes, c.trailing);
    EXPECT_EQ(q->cert_data.type, c.cert_type);
    EXPECT_EQ(q->outer_cert_data_type, c.version == 3 ? c.cert_type : 6);
    EXPECT_EQ(q->header.qe_vendor_id, kIntelQeVendorId);
    if (c.tee_tcb_svn != nullptr) {
      ASSERT_TRUE(q->td_report.has_value());
      EXPECT_EQ(HexEncode(q->td_report->tee_tcb_svn), c.tee_tcb_svn);
    }
    if (c.cert_type == 5) {
      std::string pem = ToString(q->cert_data.data);
      EXPECT_NE(pem.find("-----BEGIN CERTIFICATE-----"), std::string::npos);
    }
    // The signed part is exactly header and body.
    size_t body = c.version == 5 ? 6 + (q->body_type == QuoteBodyType::kTdReport15 ? 648u : 584u)
                                 : (c.tdx ? 584u : 384u);
    EXPECT_EQ(q->signed_data.size(), 48 + body);
    EXPECT_EQ(bytes.size(), q->signed_data.size() + 4 + q->sig_data_len + q->trailing_bytes);
  }
}

TEST(DcapQuoteParser, V5CarriesTdReport15) {
  auto q = ParseDcapQuote(ReadVector("tdx/automata-emr-v5-2025-06/quote.dat"));
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->body_type, QuoteBodyType::kTdReport15);
  ASSERT_TRUE(q->td_report.has_value());
  EXPECT_TRUE(q->td_report->v15);
}

TEST(DcapQuoteParser, TypedParsersRequireTheirVersion) {
  auto sgx = ReadVector("sgx-dcap/dcap-rs-icx-2025-02/quote.dat");
  auto tdx4 = ReadVector("tdx/dcap-rs-spr-v4-2025-02/quote.dat");
  auto tdx5 = ReadVector("tdx/automata-emr-v5-2025-06/quote.dat");
  EXPECT_TRUE(ParseSgxQuoteV3(sgx).ok());
  EXPECT_TRUE(ParseTdxQuoteV4(tdx4).ok());
  EXPECT_TRUE(ParseTdxQuoteV5(tdx5).ok());
  EXPECT_EQ(ParseSgxQuoteV3(tdx4).status().reason(), "unsupported_quote_version");
  EXPECT_EQ(ParseTdxQuoteV4(tdx5).status().reason(), "unsupported_quote_version");
}

TEST(DcapQuoteParser, PinsHeaderAndBodyOffsets) {
  auto bytes = ReadVector("sgx-dcap/dcap-rs-icx-2025-02/quote.dat");
  auto q = ParseDcapQuote(bytes);
  ASSERT_TRUE(q.ok());
  namespace o = quote_offsets;
  namespace r = sgx_report_offsets;
  EXPECT_EQ(o::kQeVendorId, 12u);
  EXPECT_EQ(o::kUserData, 28u);
  EXPECT_EQ(o::kV3SigDataLen, 432u);
  EXPECT_EQ(q->sig_data_len, LoadU32(bytes, o::kV3SigDataLen));
  EXPECT_EQ(q->header.qe_svn, LoadU16(bytes, o::kQeSvn));
  EXPECT_EQ(q->header.pce_svn, LoadU16(bytes, o::kPceSvn));
  const auto& body = *q->sgx_report;
  EXPECT_EQ(body.isv_prod_id, LoadU16(bytes, o::kBody + r::kIsvProdId));
  EXPECT_EQ(body.isv_svn, LoadU16(bytes, o::kBody + r::kIsvSvn));
  EXPECT_EQ(body.mr_enclave[0], bytes[o::kBody + r::kMrEnclave]);
  EXPECT_EQ(body.mr_signer[31], bytes[o::kBody + r::kMrSigner + 31]);
  EXPECT_EQ(body.report_data[63], bytes[o::kBody + r::kReportData + 63]);
  const size_t sig = o::kV3SigDataLen + 4;
  EXPECT_EQ(q->signature[0], bytes[sig + o::kSigQuoteSignature]);
  EXPECT_EQ(q->attestation_key[0], bytes[sig + o::kSigAttestationKey]);
  EXPECT_EQ(q->qe_report.raw[0], bytes[sig + o::kSigV3QeReport]);
  EXPECT_EQ(q->qe_report_signature[0], bytes[sig + o::kSigV3QeReportSignature]);
  EXPECT_EQ(q->qe_auth_data.size(), LoadU16(bytes, sig + o::kSigV3QeAuthDataSize));
  EXPECT_EQ(q->qe_auth_data.size(), 32u);

  auto t = ReadVector("tdx/dcap-rs-spr-v4-2025-02/quote.dat");
  auto tq = ParseDcapQuote(t);
  ASSERT_TRUE(tq.ok());
  namespace td = td_report_offsets;
  EXPECT_EQ(tq->sig_data_len, LoadU32(t, o::kV4SigDataLen));
  EXPECT_EQ(LoadU16(t, o::kV4SigDataLen + 4 + o::kSigV4CertDataType), 6u);
  EXPECT_EQ(tq->td_report->mr_td[0], t[o::kBody + td::kMrTd]);
  EXPECT_EQ(tq->td_report->rtmr[3][47], t[o::kBody + td::kRtmr0 + 3 * 48 + 47]);
  EXPECT_EQ(tq->td_report->report_data[0], t[o::kBody + td::kReportData]);
  EXPECT_EQ(tq->td_report->mr_signer_seam[0], t[o::kBody + td::kMrSignerSeam]);
  EXPECT_EQ(tq->td_report->td_attributes[0], t[o::kBody + td::kTdAttributes]);
  EXPECT_EQ(tq->qe_report.raw[0], t[o::kV4SigDataLen + 4 + o::kSigV4CertData]);

  auto v5 = ReadVector("tdx/automata-emr-v5-2025-06/quote.dat");
  EXPECT_EQ(LoadU16(v5, o::kV5BodyType), 3u);
  EXPECT_EQ(LoadU32(v5, o::kV5BodySize), 648u);
  auto q5 = ParseDcapQuote(v5);
  ASSERT_TRUE(q5.ok());
  EXPECT_EQ(q5->td_report->tee_tcb_svn2[0], v5[o::kV5Body + td::kTeeTcbSvn2]);
  EXPECT_EQ(q5->td_report->mr_servicetd[0], v5[o::kV5Body + td::kMrServiceTd]);
}

TEST(DcapQuoteParser, RejectsTruncatedQuoteAtEveryLength) {
  for (const char* path : {"sgx-dcap/dcap-rs-icx-2025-02/quote.dat", "tdx/dcap-rs-spr-v4-2025-02/quote.dat",
                           "tdx/automata-emr-v5-2025-06/quote.dat", "sgx-dcap/intel-qvl-sample-SYNTHETIC/quote.dat"}) {
    auto bytes = ReadVector(path);
    auto full = ParseDcapQuote(bytes);
    ASSERT_TRUE(full.ok());
    const size_t end = bytes.size() - full->trailing_bytes;
    for (size_t n = 0; n < end; ++n) {
      auto q = ParseDcapQuote(std::span<const uint8_t>(bytes).first(n));
      ASSERT_FALSE(q.ok()) << path << " at " << n;
      std::string reason = q.status().reason();
      EXPECT_TRUE(reason == "quote_truncated" || reason == "sig_data_overrun") << n << ": " << reason;
    }
  }
}

TEST(DcapQuoteParser, ToleratesTrailingBytes) {
  auto bytes = ReadVector("sgx-dcap/dcap-rs-icx-2025-02/quote.dat");
  bytes.resize(bytes.size() + 3065, 0);
  auto q = ParseDcapQuote(bytes);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->trailing_bytes, 3065u);
}

void PutU16(std::vector<uint8_t>& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v);
  b[off + 1] = static_cast<uint8_t>(v >> 8);
}
void PutU32(std::vector<uint8_t>& b, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[off + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
}

TEST(DcapQuoteParser, RejectsBadHeaderFields) {
  auto good = ReadVector("sgx-dcap/dcap-rs-icx-2025-02/quote.dat");
  auto b = good;
  PutU16(b, 0, 2);
  EXPECT_EQ(ParseDcapQuote(b).status().reason(), "unsupported_quote_version");
  b = good;
  PutU16(b, 0, 6);
  EXPECT_EQ(ParseDcapQuote(b).status().reason(), "unsupported_quote_version");
  b = good;
  PutU16(b, 2, 3);
  EXPECT_EQ(ParseDcapQuote(b).status().reason(), "unsupported_att_key_type");
  b = good;
  PutU32(b, 4, 0x81);
  EXPECT_EQ(ParseDcapQuote(b).status().reason(), "unsupported_tee_type");
  b = good;
  b[12] ^= 1;
  EXPECT_EQ(ParseDcapQuote(b).status().reason(), "qe_vendor_mismatch");
  auto t = ReadVector("tdx/dcap-rs-spr-v4-2025-02/quote.dat");
  b = t;
  PutU32(b, 4, 0x80);
  EXPECT_EQ(ParseDcapQuote(b).status().reason(), "unsupported_tee_type");
  auto v5 = ReadVector("tdx/automata-emr-v5-2025-06/quote.dat");
  b = v5;
  PutU16(b, quote_offsets::kV5BodyType, 4);
  EXPECT_EQ(ParseDcapQuote(b).status().reason(), "unsupported_body_type");
  b = v5;
  PutU16(b, quote_offsets::kV5BodyType, 1);  // SGX body in a TDX quote
  EXPECT_EQ(ParseDcapQuote(b).status().reason(), "unsupported_body_type");
}

TEST(DcapQuoteParser, RejectsOverrunningDeclaredSizes) {
  auto good = ReadVector("sgx-dcap/dcap-rs-icx-2025-02/quote.dat");
  const size_t sig = quote_offsets::kV3SigDataLen + 4;
  auto b = good;
  PutU32(b, quote_offsets::kV3SigDataLen, static_cast<uint32_t>(good.size()));
  EXPECT_EQ(ParseDcapQuote(b).status().reason(), "sig_data_overrun");
  b = good;
  PutU16(b, sig + quote_offsets::kSigV3QeAuthDataSize, 0xFFFF);
  EXPECT_EQ(ParseDcapQuote(b).status().reason(), "auth_data_overrun");
  b = good;
  const size_t cert_type_off = sig + quote_offsets::kSigV3QeAuthDataSize + 2 + 32;
  PutU32(b, cert_type_off + 2, 0xFFFFFF);
  EXPECT_EQ(ParseDcapQuote(b).status().reason(), "cert_data_overrun");
  b = good;
  PutU16(b, cert_type_off, 6);
  EXPECT_EQ(ParseDcapQuote(b).status().reason(), "unsupported_cert_data_type");
  b = good;
  PutU32(b, quote_offsets::kV3SigDataLen, 100);
  EXPECT_EQ(ParseDcapQuote(b).status().reason(), "sig_data_too_short");

  auto t = ReadVector("tdx/dcap-rs-spr-v4-2025-02/quote.dat");
  const size_t tsig = quote_offsets::kV4SigDataLen + 4;
  b = t;
  PutU16(b, tsig + quote_offsets::kSigV4CertDataType, 5);
  EXPECT_EQ(ParseDcapQuote(b).status().reason(), "unsupported_cert_data_type");
  b = t;
  PutU32(b, tsig + quote_offsets::kSigV4CertDataSize, 0x7FFFFFFF);
  EXPECT_EQ(ParseDcapQuote(b).status().reason(), "cert_data_overrun");
}

TEST(DcapQuoteParser, DetectsIntelHeaders) {
  EXPECT_TRUE(LooksLikeDcapQuote(ReadVector("sgx-dcap/dcap-rs-icx-2025-02/quote.dat")));
  EXPECT_TRUE(LooksLikeDcapQuote(ReadVector("tdx/automata-emr-v5-2025-06/quote.dat")));
  EXPECT_FALSE(LooksLikeDcapQuote(ReadVector("sev-snp/go-sev-guest-milan/attestation.bin")));
  EXPECT_FALSE(LooksLikeDcapQuote({}));
}

TEST(SgxReportParser, RoundTripsBodyAndReport) {
  auto bytes = ReadVector("sgx-dcap/dcap-rs-icx-2025-02/quote.dat");
  auto body = ParseSgxReportBody(std::span<const uint8_t>(bytes).subspan(48, 384));
  ASSERT_TRUE(body.ok());
  auto enc = EncodeSgxReportBody(*body);
  EXPECT_TRUE(std::equal(enc.begin(), enc.end(), bytes.begin() + 48));
  EXPECT_EQ(enc, body->raw);

  SgxReport rep;
  rep.body = *body;
  for (size_t i = 0; i < 32; ++i) rep.key_id[i] = static_cast<uint8_t>(i);
  for (size_t i = 0; i < 16; ++i) rep.mac[i] = static_cast<uint8_t>(0xA0 + i);
  auto full = EncodeSgxReport(rep);
  EXPECT_EQ(full[sgx_report_offsets::kKeyId + 5], 5);
  EXPECT_EQ(full[sgx_report_offsets::kMac + 15], 0xAF);
  auto back = ParseSgxReport(full);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->key_id, rep.key_id);
  EXPECT_EQ(back->mac, rep.mac);
  EXPECT_EQ(back->body.mr_enclave, body->mr_enclave);
  EXPECT_EQ(ParseSgxReport(std::span<const uint8_t>(full).first(431)).status().reason(), "sgx_report_size");
  EXPECT_EQ(ParseSgxReportBody(std::span<const uint8_t>(full).first(383)).status().reason(), "sgx_report_body_size");
}

TEST(SgxReportParser, PinsBodyOffsets) {
  SgxReportBody b;
  b.misc_select = 0x11223344;
  b.attribute_flags = kSgxFlagDebug | kSgxFlagMode64Bit;
  b.attribute_xfrm = 3;
  b.mr_enclave[0] = 0xEE;
  b.mr_signer[0] = 0x55;
  b.isv_prod_id = 0x0102;
  b.isv_svn = 0x0304;
  b.config_svn = 0x0506;
  b.report_data[0] = 0xDD;
  b.cpu_svn[0] = 0xC0;
  b.isv_family_id[0] = 0xFA;
  b.config_id[0] = 0xCF;
  b.isv_ext_prod_id[0] = 0xE0;
  auto e = EncodeSgxReportBody(b);
  EXPECT_EQ(e[0], 0xC0);
  EXPECT_EQ(e[16], 0x44);
  EXPECT_EQ(e[32], 0xE0);
  EXPECT_EQ(e[48], 0x06);
  EXPECT_EQ(e[56], 0x03);
  EXPECT_EQ(e[64], 0xEE);
  EXPECT_EQ(e[128], 0x55);
  EXPECT_EQ(e[192], 0xCF);
  EXPECT_EQ(e[256], 0x02);
  EXPECT_EQ(e[258], 0x04);
  EXPECT_EQ(e[260], 0x06);
  EXPECT_EQ(e[304], 0xFA);
  EXPECT_EQ(e[320], 0xDD);
  auto p = ParseSgxReportBody(e);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->debug());
  EXPECT_EQ(p->AttributesBytes()[0], 0x06);
}

}  // namespace
}  // namespace vouch::evidence
