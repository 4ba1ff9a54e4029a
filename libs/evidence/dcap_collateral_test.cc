#include "evidence/dcap_collateral.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "base/encoding.h"

namespace vouch::evidence {
namespace {

std::string ReadText(const std::string& rel) {
  std::ifstream f(std::string(VOUCH_SHARED_DIR) + "/testdata/attestation/" + rel, std::ios::binary);
  EXPECT_TRUE(f.good()) << rel;
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

const char* kTcbInfos[] = {
    "sgx-dcap/dcap-rs-icx-2025-02/tcbInfo.json",         "sgx-dcap/intel-qvl-sample-SYNTHETIC/tcbInfo.json",
    "tdx/dcap-rs-spr-v4-2025-02/tcbInfo.json",           "tdx/automata-spr-v4-2025-10/tcbInfo.json",
    "tdx/go-tdx-guest-spr-e4-v4-2023-07/tcbInfo.json",   "tdx/automata-emr-v5-2025-06/tcbInfo.json",
    "tdx/go-tdx-guest-emr-v5-partial/tcbInfo.json",
};

const char* kQeIdentities[] = {
    "sgx-dcap/dcap-rs-icx-2025-02/qeIdentity.json",       "sgx-dcap/intel-qvl-sample-SYNTHETIC/qeIdentity.json",
    "tdx/dcap-rs-spr-v4-2025-02/qeIdentity.json",         "tdx/automata-spr-v4-2025-10/qeIdentity.json",
    "tdx/go-tdx-guest-spr-e4-v4-2023-07/qeIdentity.json", "tdx/automata-emr-v5-2025-06/qeIdentity.json",
};

TEST(TcbInfoParser, ParsesEveryTestVectorAndKeepsTheSignedBytes) {
  for (const char* path : kTcbInfos) {
    SCOPED_TRACE(path);
    std::string text = ReadText(path);
    auto info = ParseTcbInfo(text);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_FALSE(info->tcb_levels.empty());
    // The signed body is a verbatim substring of the served text, starting at the value.
    size_t pos = text.find(info->signed_body);
    ASSERT_NE(pos, std::string::npos);
    EXPECT_EQ(text.substr(0, pos).find("\"tcbInfo\""), text.find("\"tcbInfo\""));
    EXPECT_EQ(info->signed_body.front(), '{');
    EXPECT_EQ(info->signed_body.back(), '}');
  }
}

TEST(TcbInfoParser, ReadsV2SgxFields) {
  auto info = ParseTcbInfo(ReadText("sgx-dcap/dcap-rs-icx-2025-02/tcbInfo.json"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->version, 2);
  EXPECT_EQ(info->id, "");
  EXPECT_EQ(HexEncode(info->fmspc), "00606a000000");
  EXPECT_EQ(HexEncode(info->pce_id), "0000");
  EXPECT_EQ(info->tcb_evaluation_data_number, 17);
  EXPECT_EQ(info->next_update, "2025-03-15T03:29:42Z");
  EXPECT_EQ(FormatRfc3339(info->next_update_time), "2025-03-15T03:29:42Z");
  const auto& l0 = info->tcb_levels[0];
  EXPECT_EQ(l0.sgx_svns[0], 14);
  EXPECT_EQ(l0.sgx_svns[4], 255);
  EXPECT_EQ(l0.pcesvn, 13);
  EXPECT_EQ(l0.tcb_status, "SWHardeningNeeded");
  EXPECT_FALSE(l0.tdx_svns.has_value());
}

TEST(TcbInfoParser, ReadsV3TdxFields) {
  auto info = ParseTcbInfo(ReadText("tdx/dcap-rs-spr-v4-2025-02/tcbInfo.json"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->version, 3);
  EXPECT_TRUE(info->is_tdx());
  ASSERT_TRUE(info->tdx_module.has_value());
  EXPECT_EQ(info->tdx_module->attributes_mask[0], 0xFF);
  ASSERT_EQ(info->tdx_module_identities.size(), 2u);
  EXPECT_EQ(info->tdx_module_identities[1].id, "TDX_01");
  EXPECT_EQ(info->tdx_module_identities[1].tcb_levels[0].isvsvn, 4);
  const auto& l0 = info->tcb_levels[0];
  ASSERT_TRUE(l0.tdx_svns.has_value());
  EXPECT_EQ((*l0.tdx_svns)[0], 5);
  EXPECT_EQ((*l0.tdx_svns)[2], 7);
  EXPECT_EQ(l0.sgx_svns[7], 3);
  EXPECT_EQ(l0.pcesvn, 11);
  bool saw_advisory = false;
  for (const auto& l : info->tcb_levels) {
    for (const auto& a : l.advisory_ids) saw_advisory |= a == "INTEL-SA-00960";
  }
  EXPECT_TRUE(saw_advisory);
}

TEST(QeIdentityParser, ParsesEveryTestVector) {
  for (const char* path : kQeIdentities) {
    SCOPED_TRACE(path);
    std::string text = ReadText(path);
    auto id = ParseEnclaveIdentity(text);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    EXPECT_NE(text.find(id->signed_body), std::string::npos);
    EXPECT_FALSE(id->tcb_levels.empty());
  }
  auto td = ParseEnclaveIdentity(ReadText("tdx/dcap-rs-spr-v4-2025-02/qeIdentity.json"));
  ASSERT_TRUE(td.ok());
  EXPECT_EQ(td->id, "TD_QE");
  EXPECT_EQ(td->isvprodid, 2);
  EXPECT_EQ(td->attributes[0], 0x11);
  EXPECT_EQ(td->attributes_mask[0], 0xFB);
  EXPECT_EQ(HexEncode(td->mrsigner), "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5");
  auto qe = ParseEnclaveIdentity(ReadText("sgx-dcap/intel-qvl-sample-SYNTHETIC/qeIdentity.json"));
  ASSERT_TRUE(qe.ok());
  EXPECT_EQ(HexEncode(qe->miscselect), "d182b18c");
}

TEST(TcbInfoParser, RejectsMalformedDocuments) {
  std::string good = ReadText("sgx-dcap/dcap-rs-icx-2025-02/tcbInfo.json");
  EXPECT_EQ(ParseTcbInfo("").status().reason(), "malformed_tcb_info");
  EXPECT_EQ(ParseTcbInfo("[]").status().reason(), "malformed_tcb_info");
  EXPECT_EQ(ParseTcbInfo(good.substr(0, good.size() - 1)).status().reason(), "malformed_tcb_info");
  std::string v4 = good;
  v4.replace(v4.find("\"version\":2"), 11, "\"version\":4");
  EXPECT_EQ(ParseTcbInfo(v4).status().reason(), "unsupported_tcb_info_version");
  std::string st = good;
  st.replace(st.find("SWHardeningNeeded"), 17, "SWHardeningNeedex");
  EXPECT_EQ(ParseTcbInfo(st).status().reason(), "malformed_tcb_info");
  std::string sig = good;
  sig.replace(sig.find("\"signature\":\"") + 13, 2, "zz");
  EXPECT_EQ(ParseTcbInfo(sig).status().reason(), "malformed_tcb_info");
  std::string fm = good;
  fm.replace(fm.find("00606a000000"), 12, "00606a0000");
  EXPECT_EQ(ParseTcbInfo(fm).status().reason(), "malformed_tcb_info");
  std::string far = good;
  far.replace(far.find("2025-03-15T03:29:42Z"), 4, "2999");
  EXPECT_EQ(ParseTcbInfo(far).status().reason(), "malformed_tcb_info");
  // A second top-level tcbInfo member would let the signed and the interpreted text differ.
  std::string dup = good;
  dup.insert(dup.size() - 1, ",\"tcbInfo\":{}");
  EXPECT_EQ(ParseTcbInfo(dup).status().reason(), "malformed_tcb_info");
}

TEST(QeIdentityParser, RejectsMalformedDocuments) {
  std::string good = ReadText("tdx/dcap-rs-spr-v4-2025-02/qeIdentity.json");
  std::string v = good;
  v.replace(v.find("\"version\":2"), 11, "\"version\":1");
  EXPECT_EQ(ParseEnclaveIdentity(v).status().reason(), "unsupported_qe_identity_version");
  std::string m = good;
  m.replace(m.find("\"mrsigner\":\"DC"), 14, "\"mrsigner\":\"XX");
  EXPECT_EQ(ParseEnclaveIdentity(m).status().reason(), "malformed_qe_identity");
  EXPECT_EQ(ParseEnclaveIdentity("{\"enclaveIdentity\":1}").status().reason(), "malformed_qe_identity");
  for (size_t n = 0; n < good.size(); n += 7) {
    EXPECT_FALSE(ParseEnclaveIdentity(good.substr(0, n)).ok()) << n;
  }
}

TEST(JsonMemberScanner, FindsExactTextAndRejectsAmbiguity) {
  EXPECT_EQ(FindTopLevelJsonMember(R"({"a" : {"x":"}"} , "b":[1,2]})", "a").value_or(""), R"({"x":"}"})");
  EXPECT_EQ(FindTopLevelJsonMember(R"({"a":1,"b":[1,{"a":2}]})", "b").value_or(""), R"([1,{"a":2}])");
  EXPECT_EQ(FindTopLevelJsonMember(R"({"s":"a\"b","a":true})", "a").value_or(""), "true");
  EXPECT_FALSE(FindTopLevelJsonMember(R"({"a":1,"a":2})", "a").has_value());
  EXPECT_FALSE(FindTopLevelJsonMember(R"({"a":1)", "a").has_value());
  EXPECT_FALSE(FindTopLevelJsonMember(R"([1])", "a").has_value());
  EXPECT_FALSE(FindTopLevelJsonMember(R"({"b":1})", "a").has_value());
}

}  // namespace
}  // namespace vouch::evidence
