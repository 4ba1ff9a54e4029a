#include "evidence/sgx_report.h"

#include <string>

#include "base/byte_reader.h"

namespace vouch::evidence {
namespace {

void PutU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
template <size_t N>
void PutArray(uint8_t* p, const std::array<uint8_t, N>& a) {
  for (size_t i = 0; i < N; ++i) p[i] = a[i];
}
template <size_t N>
void Copy(Bytes src, size_t off, std::array<uint8_t, N>* out) {
  for (size_t i = 0; i < N; ++i) (*out)[i] = src[off + i];
}

}  // namespace

std::array<uint8_t, 16> SgxReportBody::AttributesBytes() const {
  std::array<uint8_t, 16> out{};
  PutU64(out.data(), attribute_flags);
  PutU64(out.data() + 8, attribute_xfrm);
  return out;
}

Result<SgxReportBody> ParseSgxReportBody(std::span<const uint8_t> bytes) {
  if (bytes.size() != kSgxReportBodySize) {
    return InvalidArgument("SGX report body is " + std::to_string(bytes.size()) + " bytes, expected 384",
                           "sgx_report_body_size");
  }
  namespace o = sgx_report_offsets;
  SgxReportBody b;
  Copy(bytes, 0, &b.raw);
  Copy(bytes, o::kCpuSvn, &b.cpu_svn);
  b.misc_select = LoadU32(bytes, o::kMiscSelect);
  Copy(bytes, o::kIsvExtProdId, &b.isv_ext_prod_id);
  b.attribute_flags = LoadU64(bytes, o::kAttributes);
  b.attribute_xfrm = LoadU64(bytes, o::kAttributes + 8);
  Copy(bytes, o::kMrEnclave, &b.mr_enclave);
  Copy(bytes, o::kMrSigner, &b.mr_signer);
  Copy(bytes, o::kConfigId, &b.config_id);
  b.isv_prod_id = LoadU16(bytes, o::kIsvProdId);
  b.isv_svn = LoadU16(bytes, o::kIsvSvn);
  b.config_svn = LoadU16(bytes, o::kConfigSvn);
  Copy(bytes, o::kIsvFamilyId, &b.isv_family_id);
  Copy(bytes, o::kReportData, &b.report_data);
  return b;
}

Result<SgxReport> ParseSgxReport(std::span<const uint8_t> bytes) {
  if (bytes.size() != kSgxReportSize) {
    return InvalidArgument("SGX REPORT is " + std::to_string(bytes.size()) + " bytes, expected 432",
                           "sgx_report_size");
  }
  SgxReport r;
  VOUCH_ASSIGN_OR_RETURN(r.body, ParseSgxReportBody(bytes.first(kSgxReportBodySize)));
  Copy(bytes, sgx_report_offsets::kKeyId, &r.key_id);
  Copy(bytes, sgx_report_offsets::kMac, &r.mac);
  return r;
}

std::array<uint8_t, kSgxReportBodySize> EncodeSgxReportBody(const SgxReportBody& b) {
  namespace o = sgx_report_offsets;
  std::array<uint8_t, kSgxReportBodySize> out{};
  uint8_t* p = out.data();
  PutArray(p + o::kCpuSvn, b.cpu_svn);
  PutU32(p + o::kMiscSelect, b.misc_select);
  PutArray(p + o::kIsvExtProdId, b.isv_ext_prod_id);
  PutU64(p + o::kAttributes, b.attribute_flags);
  PutU64(p + o::kAttributes + 8, b.attribute_xfrm);
  PutArray(p + o::kMrEnclave, b.mr_enclave);
  PutArray(p + o::kMrSigner, b.mr_signer);
  PutArray(p + o::kConfigId, b.config_id);
  PutU16(p + o::kIsvProdId, b.isv_prod_id);
  PutU16(p + o::kIsvSvn, b.isv_svn);
  PutU16(p + o::kConfigSvn, b.config_svn);
  PutArray(p + o::kIsvFamilyId, b.isv_family_id);
  PutArray(p + o::kReportData, b.report_data);
  return out;
}

std::array<uint8_t, kSgxReportSize> EncodeSgxReport(const SgxReport& r) {
  std::array<uint8_t, kSgxReportSize> out{};
  auto body = EncodeSgxReportBody(r.body);
  for (size_t i = 0; i < kSgxReportBodySize; ++i) out[i] = body[i];
  PutArray(out.data() + sgx_report_offsets::kKeyId, r.key_id);
  PutArray(out.data() + sgx_report_offsets::kMac, r.mac);
  return out;
}

}  // namespace vouch::evidence
