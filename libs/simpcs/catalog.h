#pragma once

// What `vouch sim pcs --serve DIR ...` serves: the collateral found in a set of folders.
//
// A folder is either a sim vendor folder (`vouch sim init`: the DCAP file names of
// attest/dcap_collateral.h for sgx and tdx; cert_chain.pem, vcek.der, crl.der for sev-snp) or a
// folder of real collateral laid out as in ../shared/testdata/attestation/. Only public files are
// read: the DCAP names below, and certificate files (*.der, *.pem, *.cer, *.crt) in SNP folders.
// sim-secrets.json (kSecretsFile) and any other file are never opened.
//
//   tcbInfo.json           -> TCB Info: SGX (id "SGX" or none, v2) or TDX (id "TDX"); FMSPC and
//                             tcbEvaluationDataNumber from the document
//   qeIdentity.json        -> QE (id "QE") or TD_QE identity
//   tcbSignChain.pem       -> TCB-Info-Issuer-Chain and SGX-Enclave-Identity-Issuer-Chain
//   intermediateCaCrl.der  -> PCK CRL; CA type from its issuer ("...Processor CA" -> processor,
//                             else platform); issuer chain: pckCrlIssuerChain.pem, else
//                             pckSignChain.pem
//   rootCaCrl.der          -> root CA CRL
//   tcbEvaluationDataNumbers.json -> TCB evaluation data numbers (SGX or TDX by its id)
//   SNP certificates       -> VCEK (EC key with the AMD hwID extension: product, chip and SPLs
//                             from its extensions), ASK / ASVK / ARK (RSA); crl.der -> AMD CRL of
//                             the folder's product
// Bodies are kept byte for byte as read.
//
// A Catalog is an immutable value once loaded; share it by shared_ptr<const Catalog>.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "base/url_component.h"  // UrlEncodeComponent: the *-Issuer-Chain headers

namespace vouch::simpcs {

inline constexpr char kSecretsFile[] = "sim-secrets.json";  // never served, never read

enum class Tee { kSgx, kTdx };
std::string_view TeeName(Tee tee);  // "sgx" / "tdx"

// A signed JSON document (TCB Info, enclave identity, TCB evaluation data numbers).
struct SignedJson {
  Tee tee = Tee::kSgx;
  std::string fmspc;  // lower-case hex; TCB Info only
  int64_t tcb_evaluation_data_number = 0;
  TimePoint issue_date;
  TimePoint next_update;
  std::string body;              // the file, byte for byte
  std::string issuer_chain_pem;  // "" when the folder has none
  std::string source;            // the file it came from
};

struct Crl {
  std::string ca;  // "processor" | "platform" (PCK CRL); "root"
  TimePoint this_update;
  TimePoint next_update;
  std::string der;               // DER (converted if the file was PEM)
  std::string pem;               // PEM (the file if it was PEM)
  bool file_is_pem = false;
  std::string issuer_chain_pem;  // PCK CRL only
  std::string source;
};

struct Vcek {
  std::string product;   // "Milan", "Genoa", "Turin" (the product-name extension up to '-')
  std::string hwid_hex;  // lower-case: 128 hex digits (Turin: 16)
  uint8_t bl = 0, tee = 0, snp = 0, ucode = 0;
  std::optional<uint8_t> fmc;  // Turin
  std::string der;
  std::string source;
};

struct AmdProduct {
  std::string product;
  std::string vcek_chain_pem;  // ASK then ARK, as KDS serves /vcek/v1/{product}/cert_chain
  std::string vlek_chain_pem;  // ASVK then ARK ("" if none)
  std::string crl_der;         // "" if none
  std::string source;
};

struct Catalog {
  std::vector<SignedJson> tcb_infos;
  std::vector<SignedJson> qe_identities;  // tee kSgx: id QE; kTdx: id TD_QE
  std::vector<SignedJson> evaluation_numbers;
  std::vector<Crl> pck_crls;
  std::vector<Crl> root_crls;
  std::vector<Vcek> vceks;
  std::vector<AmdProduct> amd_products;

  // Reads every folder. A folder that is unreadable, or a public file that is malformed (a TCB
  // Info without an FMSPC, a CRL that does not parse), fails the load with InvalidArgument
  // naming the file: an emulator that silently serves less would mislead a test.
  static Result<std::shared_ptr<const Catalog>> Load(const std::vector<std::string>& dirs);
  // Names, sizes and modification times of the files Load reads: when it changes, reload.
  static std::string Fingerprint(const std::vector<std::string>& dirs);
};

// Which of several versions of one document a vendor would be serving at `now`: the newest
// (by evaluation number, then issue date) that is valid at `now`; else the newest issued by
// `now`; else the oldest. nullptr for an empty list.
const SignedJson* PickAt(const std::vector<const SignedJson*>& candidates, TimePoint now);
const Crl* PickAt(const std::vector<const Crl*>& candidates, TimePoint now);

}  // namespace vouch::simpcs
