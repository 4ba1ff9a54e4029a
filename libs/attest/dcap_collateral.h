#pragma once

// DCAP collateral as served by Intel PCS / PCCS, loaded from a folder that uses the file names
// of Intel QVL's sample app (and of shared/testdata/attestation):
//
//   tcbInfo.json  qeIdentity.json  rootCaCrl.der  intermediateCaCrl.der (= the PCK CRL)
//   tcbSignChain.pem  trustedRootCaCert.pem  pckCert.pem + pckSignChain.pem (for quotes
//   without their own PCK chain)
//
// Every file is optional at load time; what is missing is reported by the verifier
// ("missing_collateral"), so a partial set still verifies as far as it goes. A file that is
// present but malformed fails the load with reason "malformed_collateral".
//
// A DcapCollateral is immutable once created and safe to share between threads.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "crypto/ossl.h"
#include "evidence/dcap_collateral.h"

namespace vouch::attest {

inline constexpr char kTcbInfoFile[] = "tcbInfo.json";
inline constexpr char kQeIdentityFile[] = "qeIdentity.json";
inline constexpr char kRootCaCrlFile[] = "rootCaCrl.der";
inline constexpr char kPckCrlFile[] = "intermediateCaCrl.der";
inline constexpr char kTcbSignChainFile[] = "tcbSignChain.pem";
inline constexpr char kTrustedRootFile[] = "trustedRootCaCert.pem";
inline constexpr char kPckCertFile[] = "pckCert.pem";
inline constexpr char kPckSignChainFile[] = "pckSignChain.pem";

// The raw contents of the collateral files (each optional).
struct CollateralFiles {
  std::optional<std::string> tcb_info_json;
  std::optional<std::string> qe_identity_json;
  std::optional<std::string> root_ca_crl;     // DER or PEM (hex-encoded DER is accepted too)
  std::optional<std::string> pck_crl;         // DER or PEM (or hex)
  std::optional<std::string> tcb_sign_chain_pem;
  std::optional<std::string> trusted_root_pem;
  std::optional<std::string> pck_cert_pem;
  std::optional<std::string> pck_sign_chain_pem;
};

// Reads the files above from `dir`; absent files stay nullopt. Fails only if `dir` is not a
// readable directory ("collateral_dir_unreadable").
Result<CollateralFiles> ReadCollateralDir(const std::string& dir);

class DcapCollateral {
 public:
  static Result<std::shared_ptr<const DcapCollateral>> Create(const CollateralFiles& files);
  static Result<std::shared_ptr<const DcapCollateral>> LoadDir(const std::string& dir);

  const std::optional<evidence::TcbInfo>& tcb_info() const { return tcb_info_; }
  const std::optional<evidence::EnclaveIdentity>& qe_identity() const { return qe_identity_; }
  X509_CRL* root_crl() const { return root_crl_.get(); }
  X509_CRL* pck_crl() const { return pck_crl_.get(); }
  // TCB Signing chain as served: signing certificate first, then the root.
  const std::vector<crypto::X509Ptr>& tcb_sign_chain() const { return tcb_sign_chain_; }
  X509* trusted_root() const { return trusted_root_.get(); }
  // PCK chain from pckCert.pem + pckSignChain.pem (leaf, CA, root), empty if absent.
  const std::vector<crypto::X509Ptr>& pck_chain() const { return pck_chain_; }
  // The PEM text of that chain (for cache keys), "" if absent.
  const std::string& pck_chain_pem() const { return pck_chain_pem_; }

 private:
  DcapCollateral() = default;
  std::optional<evidence::TcbInfo> tcb_info_;
  std::optional<evidence::EnclaveIdentity> qe_identity_;
  crypto::X509CrlPtr root_crl_;
  crypto::X509CrlPtr pck_crl_;
  std::vector<crypto::X509Ptr> tcb_sign_chain_;
  crypto::X509Ptr trusted_root_;
  std::vector<crypto::X509Ptr> pck_chain_;
  std::string pck_chain_pem_;
};

}  // namespace vouch::attest
