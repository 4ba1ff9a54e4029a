#include "attest/dcap_collateral.h"

#include <filesystem>
#include <system_error>

#include "base/encoding.h"
#include "base/file.h"
#include "crypto/x509.h"

namespace vouch::attest {
namespace {

Status Malformed(const std::string& file, const Status& s) {
  return InvalidArgument(file + ": " + s.message(), "malformed_collateral");
}

// PCCS sometimes serves CRLs hex-encoded; accept DER, PEM and hex of DER.
Result<crypto::X509CrlPtr> LoadCrl(const std::string& file, const std::string& data) {
  auto crl = crypto::CrlFromDerOrPem(AsBytes(data));
  if (crl.ok()) return crl;
  std::string trimmed = data;
  while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == '\r' || trimmed.back() == ' ')) {
    trimmed.pop_back();
  }
  auto bytes = HexDecode(trimmed);
  if (bytes.ok()) {
    auto hex_crl = crypto::CrlFromDerOrPem(*bytes);
    if (hex_crl.ok()) return hex_crl;
  }
  return Malformed(file, crl.status());
}

}  // namespace

Result<CollateralFiles> ReadCollateralDir(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return NotFound("collateral folder " + dir + " is not a readable directory", "collateral_dir_unreadable");
  }
  CollateralFiles f;
  auto read = [&](const char* name, std::optional<std::string>* out) -> Status {
    std::string path = dir + "/" + name;
    if (!std::filesystem::exists(path, ec)) return Status::Ok();
    auto text = ReadWholeFile(path, 16 << 20);
    if (!text.ok()) return InvalidArgument(path + ": " + text.status().message(), "collateral_dir_unreadable");
    *out = std::move(*text);
    return Status::Ok();
  };
  VOUCH_RETURN_IF_ERROR(read(kTcbInfoFile, &f.tcb_info_json));
  VOUCH_RETURN_IF_ERROR(read(kQeIdentityFile, &f.qe_identity_json));
  VOUCH_RETURN_IF_ERROR(read(kRootCaCrlFile, &f.root_ca_crl));
  VOUCH_RETURN_IF_ERROR(read(kPckCrlFile, &f.pck_crl));
  VOUCH_RETURN_IF_ERROR(read(kTcbSignChainFile, &f.tcb_sign_chain_pem));
  VOUCH_RETURN_IF_ERROR(read(kTrustedRootFile, &f.trusted_root_pem));
  VOUCH_RETURN_IF_ERROR(read(kPckCertFile, &f.pck_cert_pem));
  VOUCH_RETURN_IF_ERROR(read(kPckSignChainFile, &f.pck_sign_chain_pem));
  return f;
}

Result<std::shared_ptr<const DcapCollateral>> DcapCollateral::Create(const CollateralFiles& f) {
  std::shared_ptr<DcapCollateral> c(new DcapCollateral());
  if (f.tcb_info_json) {
    auto info = evidence::ParseTcbInfo(*f.tcb_info_json);
    if (!info.ok()) return Malformed(kTcbInfoFile, info.status());
    c->tcb_info_ = std::move(*info);
  }
  if (f.qe_identity_json) {
    auto id = evidence::ParseEnclaveIdentity(*f.qe_identity_json);
    if (!id.ok()) return Malformed(kQeIdentityFile, id.status());
    c->qe_identity_ = std::move(*id);
  }
  if (f.root_ca_crl) {
    VOUCH_ASSIGN_OR_RETURN(c->root_crl_, LoadCrl(kRootCaCrlFile, *f.root_ca_crl));
  }
  if (f.pck_crl) {
    VOUCH_ASSIGN_OR_RETURN(c->pck_crl_, LoadCrl(kPckCrlFile, *f.pck_crl));
  }
  if (f.tcb_sign_chain_pem) {
    auto chain = crypto::CertsFromPem(*f.tcb_sign_chain_pem);
    if (!chain.ok()) return Malformed(kTcbSignChainFile, chain.status());
    c->tcb_sign_chain_ = std::move(*chain);
  }
  if (f.trusted_root_pem) {
    auto root = crypto::CertFromPem(*f.trusted_root_pem);
    if (!root.ok()) return Malformed(kTrustedRootFile, root.status());
    c->trusted_root_ = std::move(*root);
  }
  if (f.pck_cert_pem) {
    auto leaf = crypto::CertsFromPem(*f.pck_cert_pem);
    if (!leaf.ok()) return Malformed(kPckCertFile, leaf.status());
    c->pck_chain_pem_ = *f.pck_cert_pem;
    for (auto& cert : *leaf) c->pck_chain_.push_back(std::move(cert));
    if (f.pck_sign_chain_pem) {
      auto rest = crypto::CertsFromPem(*f.pck_sign_chain_pem);
      if (!rest.ok()) return Malformed(kPckSignChainFile, rest.status());
      c->pck_chain_pem_ += *f.pck_sign_chain_pem;
      for (auto& cert : *rest) c->pck_chain_.push_back(std::move(cert));
    }
  }
  return std::shared_ptr<const DcapCollateral>(std::move(c));
}

Result<std::shared_ptr<const DcapCollateral>> DcapCollateral::LoadDir(const std::string& dir) {
  VOUCH_ASSIGN_OR_RETURN(CollateralFiles files, ReadCollateralDir(dir));
  return Create(files);
}

}  // namespace vouch::attest
