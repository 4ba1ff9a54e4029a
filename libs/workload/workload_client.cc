#include "workload/workload_client.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <thread>

#include "base/encoding.h"
#include "crypto/digest.h"
#include "crypto/heartbeat_key.h"
#include "crypto/keys.h"
#include "crypto/signature.h"
#include "workload/heartbeat_mac.h"
#include "workload/wire.h"

namespace vouch::workload {

Result<std::string> MakeCsr(EVP_PKEY* key, const std::vector<std::string>& dns_names) {
  crypto::X509ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1) return Internal("X509_REQ_new failed");
  std::string cn = dns_names.empty() ? "vouch workload" : dns_names.front().substr(0, 64);
  if (X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req.get()), "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0) != 1) {
    return InvalidArgument("invalid common name", "invalid_dns_name");
  }
  if (X509_REQ_set_pubkey(req.get(), key) != 1) return Internal("X509_REQ_set_pubkey failed");
  if (!dns_names.empty()) {
    std::string san;
    for (const auto& d : dns_names) {
      if (d.empty() || d.find_first_of(",:\n") != std::string::npos) {
        return InvalidArgument("invalid DNS name '" + d.substr(0, 80) + "'", "invalid_dns_name");
      }
      san += (san.empty() ? "DNS:" : ",DNS:") + d;
    }
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
    if (ext == nullptr) return InvalidArgument("invalid DNS names", "invalid_dns_name");
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    sk_X509_EXTENSION_push(exts, ext);
    int ok = X509_REQ_add_extensions(req.get(), exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (ok != 1) return Internal("X509_REQ_add_extensions failed");
  }
  if (X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) return Internal("signing the CSR failed");
  crypto::BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) return Internal("PEM_write_bio_X509_REQ failed");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

Result<std::unique_ptr<WorkloadClient>> WorkloadClient::Create(const std::string& socket_path,
                                                               std::chrono::milliseconds timeout) {
  VOUCH_ASSIGN_OR_RETURN(auto http, LocalHttp::Create(socket_path, timeout));
  return std::unique_ptr<WorkloadClient>(new WorkloadClient(std::move(http)));
}

Result<nlohmann::json> WorkloadClient::Version() { return http_->Get("/v1/version"); }

Result<TargetInfo> WorkloadClient::GetTargetInfo() {
  VOUCH_ASSIGN_OR_RETURN(auto j, http_->Get("/v1/target-info"));
  if (!j.is_object() || !j.contains("mrenclave") || !j["mrenclave"].is_string()) {
    return Internal("the agent's target info has no mrenclave", "invalid_response");
  }
  auto mre = HexDecode(j["mrenclave"].get<std::string>());
  if (!mre.ok() || mre->size() != 32) return Internal("the agent's mrenclave is not 32 bytes", "invalid_response");
  TargetInfo t;
  std::copy(mre->begin(), mre->end(), t.mrenclave.begin());
  t.tee = j.value("tee", std::string());
  return t;
}

ReportSource WorkloadClient::SimReportSource(const SimIdentity& id) { return ManifestReportSource(id); }

ReportSource WorkloadClient::ManifestReportSource(const SimIdentity& id) {
  return [this, id](const TargetInfo& target, const std::array<uint8_t, 64>& report_data) -> Result<std::vector<uint8_t>> {
    const bool cvm = target.tee == "tdx" || target.tee == "sev-snp";
    if (target.tee != "sim" && !cvm) {
      return Unimplemented("the agent runs the \"" + target.tee + "\" TEE, which this workload cannot report to",
                           "tee_unsupported");
    }
    evidence::SgxReportBody body;
    body.mr_enclave = id.mrenclave;
    body.mr_signer = id.mrsigner;
    body.isv_prod_id = id.isvprodid;
    body.isv_svn = id.isvsvn;
    body.attribute_flags = evidence::kSgxFlagInit | evidence::kSgxFlagMode64Bit | (id.debug ? evidence::kSgxFlagDebug : 0);
    body.attribute_xfrm = 3;
    body.report_data = report_data;
    if (cvm) {
      // A confidential VM has no EREPORT: the claim goes in the REPORT layout without a MAC, and
      // the agent believes it only from a vouch-rte process it recognises (docs/agent.md).
      evidence::SgxReport unsigned_report;
      unsigned_report.body = body;
      auto raw = evidence::EncodeSgxReport(unsigned_report);
      return std::vector<uint8_t>(raw.begin(), raw.end());
    }
    auto raw = evidence::EncodeSgxReportBody(body);
    VOUCH_ASSIGN_OR_RETURN(auto j, http_->Post("/v1/sim/report", {{"report_body", Base64Encode(raw)},
                                                                  {"target_mrenclave", HexEncode(target.mrenclave)}}));
    if (!j.is_object() || !j.contains("report") || !j["report"].is_string()) {
      return Internal("the agent's sim report answer has no report", "invalid_response");
    }
    VOUCH_ASSIGN_OR_RETURN(auto report, Base64Decode(j["report"].get<std::string>()));
    if (report.size() != evidence::kSgxReportSize) return Internal("the sim report is not 432 bytes", "invalid_response");
    return report;
  };
}

Result<Credentials> WorkloadClient::RequestCertificate(const ReportSource& report_source,
                                                       const std::vector<std::string>& dns_names,
                                                       const std::string& instance_id, EVP_PKEY* key,
                                                       std::chrono::seconds retry_for) {
  Credentials c;
  if (key != nullptr) {
    EVP_PKEY_up_ref(key);
    c.key = crypto::EvpPkeyPtr(key);
  } else {
    VOUCH_ASSIGN_OR_RETURN(c.key, crypto::GenerateP256());
  }
  VOUCH_ASSIGN_OR_RETURN(std::string csr, MakeCsr(c.key.get(), dns_names));
  VOUCH_ASSIGN_OR_RETURN(auto spki, crypto::PublicKeyToDer(c.key.get()));
  auto digest = crypto::Sha256(spki);
  std::array<uint8_t, 64> report_data{};
  std::copy(digest.begin(), digest.end(), report_data.begin());
  auto deadline = std::chrono::steady_clock::now() + retry_for;
  nlohmann::json answer;
  for (;;) {
    // A fresh report each attempt: target info may change if the agent restarts.
    auto target = GetTargetInfo();
    Status st = target.status();
    if (st.ok()) {
      auto report = report_source(*target, report_data);
      st = report.status();
      if (st.ok()) {
        nlohmann::json req = {{"csr", csr}, {"report", Base64Encode(*report)}};
        if (!instance_id.empty()) req["instance_id"] = instance_id;
        auto r = http_->Post("/v1/certificate", req);
        if (r.ok()) {
          answer = std::move(*r);
          break;
        }
        st = r.status();
      }
    }
    if (st.code() != StatusCode::kUnavailable || std::chrono::steady_clock::now() >= deadline) return st;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (!answer.is_object() || !answer.contains("certificate_pem")) {
    return Internal("the agent's certificate answer is incomplete", "invalid_response");
  }
  VOUCH_ASSIGN_OR_RETURN(c.key_pem, crypto::PrivateKeyToPem(c.key.get()));
  c.cert_pem = answer.value("chain_pem", answer.value("certificate_pem", std::string()));
  c.ca_pem = answer.value("ca_pem", std::string());
  c.instance_id = answer.value("instance_id", std::string());
  c.serial = answer.value("serial", std::string());
  c.not_after = answer.value("not_after", std::string());
  // MAC heartbeats when the manager named a heartbeat key of a version this client knows and the
  // key can do ECDH with it; otherwise (older manager, RSA or P-384 key) ECDSA signatures.
  const auto hk = answer.find("heartbeat_key");
  if (hk != answer.end() && hk->is_object() && hk->value("version", 0) == crypto::kHeartbeatKeyVersion &&
      hk->contains("public_key_pem") && (*hk)["public_key_pem"].is_string() && crypto::IsP256Key(c.key.get())) {
    auto k = DeriveHeartbeatKey(c.key.get(), (*hk)["public_key_pem"].get<std::string>(), c.serial);
    if (k.ok()) {
      c.heartbeat_public_pem = (*hk)["public_key_pem"].get<std::string>();
      c.heartbeat_key = std::move(*k);
    }
  }
  return c;
}

Status WorkloadClient::SendHeartbeat(EVP_PKEY* key, std::span<const uint8_t> mac_key, const std::string& instance_id,
                                     int64_t seq, const std::string& status) {
  if (mac_key.empty()) return SendHeartbeat(key, instance_id, seq, status);
  int64_t ts = ToUnixSeconds(SystemClock::Get().Now());
  return http_->Post("/v1/heartbeat", {{"instance_id", instance_id},
                                       {"seq", seq},
                                       {"timestamp", ts},
                                       {"status", status},
                                       {"mac", HeartbeatMacBase64(mac_key, instance_id, seq, ts, status)}})
      .status();
}

Status WorkloadClient::SendHeartbeat(EVP_PKEY* key, const std::string& instance_id, int64_t seq,
                                     const std::string& status) {
  int64_t ts = ToUnixSeconds(SystemClock::Get().Now());
  VOUCH_ASSIGN_OR_RETURN(auto sig, crypto::Sign(key, AsBytes(HeartbeatMessage(instance_id, seq, ts, status))));
  return http_->Post("/v1/heartbeat", {{"instance_id", instance_id},
                                       {"seq", seq},
                                       {"timestamp", ts},
                                       {"status", status},
                                       {"signature", Base64Encode(sig)}})
      .status();
}

}  // namespace vouch::workload
