#include "cluster/join.h"

#include <algorithm>
#include <fstream>

#include "base/encoding.h"
#include "base/file.h"
#include "cluster/reasons.h"
#include "crypto/aead.h"
#include "crypto/digest.h"
#include "crypto/kdf.h"
#include "crypto/keys.h"
#include "crypto/timed_nonce.h"
#include "crypto/x509.h"
#include "evidence/sgx_report.h"
#include "policy/policy.h"

namespace vouch::cluster {
namespace {

constexpr std::string_view kReportDataLabel = "vouch-cluster-join-v1";
constexpr std::string_view kNonceLabel = "vouch-cluster-nonce-v1";
constexpr std::string_view kWrapLabel = "vouch-cluster-key-wrap-v1";
constexpr size_t kSec1P256Size = 65;

std::span<const uint8_t> Bytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

void AppendLenPrefixed(std::vector<uint8_t>& out, std::span<const uint8_t> data) {
  out.push_back(static_cast<uint8_t>(data.size() >> 8));
  out.push_back(static_cast<uint8_t>(data.size() & 0xff));
  out.insert(out.end(), data.begin(), data.end());
}

Status Refuse(std::string message, std::string reason) { return PermissionDenied(std::move(message), std::move(reason)); }

// ECDH(own private, peer public) -> HKDF-SHA256(salt = report data,
// info = label ‖ joiner key ‖ member key) -> 32-byte AES-256-GCM key.
Result<crypto::SecretBytes> WrapKey(EVP_PKEY* own, std::span<const uint8_t> peer_public,
                                    std::span<const uint8_t> joiner_public, std::span<const uint8_t> member_public,
                                    std::span<const uint8_t> report_data) {
  VOUCH_ASSIGN_OR_RETURN(crypto::EvpPkeyPtr peer, crypto::P256PublicKeyFromEncoded(peer_public));
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes shared, crypto::EcdhSharedSecret(own, peer.get()));
  std::vector<uint8_t> info(kWrapLabel.begin(), kWrapLabel.end());
  AppendLenPrefixed(info, joiner_public);
  AppendLenPrefixed(info, member_public);
  return crypto::HkdfSha256(shared.span(), report_data, info, 32);
}

Result<std::vector<uint8_t>> DecodeB64Field(const nlohmann::json& j, const char* name, size_t max) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().size() > max * 4 / 3 + 4) {
    return InvalidArgument(
        std::string(name) + " must be a base64 string of at most " + std::to_string(max) + " bytes",
        std::string(kInvalidJoinRequest));
  }
  auto bytes = Base64Decode(it->get<std::string>());
  if (!bytes.ok())
    return InvalidArgument(std::string(name) + " is not valid base64",
                           std::string(kInvalidJoinRequest));
  return bytes;
}

}  // namespace

Result<Measurement> FileMeasurement(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return NotFound("cannot read " + path, std::string(kMeasurementUnreadable));
  crypto::Sha256Hasher h;
  std::vector<char> buf(1 << 16);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::streamsize n = f.gcount();
    if (n > 0) h.Update(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buf.data()), static_cast<size_t>(n)));
  }
  auto d = h.Finish();
  Measurement m;
  std::copy(d.begin(), d.end(), m.begin());
  return m;
}

Result<std::unique_ptr<attest::DcapVerifier>> MakeJoinVerifier(const JoinPolicy& policy) {
  if (policy.collateral_dir.empty()) {
    return FailedPrecondition("no attestation collateral configured for cluster joins",
                              std::string(kNoCollateral));
  }
  VOUCH_ASSIGN_OR_RETURN(auto collateral, attest::DcapCollateral::LoadDir(policy.collateral_dir));
  attest::DcapTrustOptions trust;
  trust.allow_sim = policy.allow_sim;
  crypto::X509Ptr root;
  if (!policy.allow_sim) {
    auto pem = ReadWholeFile(policy.collateral_dir + "/trustedRootCaCert.pem", 1 << 20);
    if (pem.ok()) {
      auto cert = crypto::CertFromPem(*pem);
      if (cert.ok() && attest::IsSimRootCa(cert->get())) root = std::move(*cert);
    }
    trust.trust_root = root.get();
  }
  return attest::DcapVerifier::Create(std::move(collateral), trust);
}

Result<Measurement> SelfMeasurement() { return FileMeasurement("/proc/self/exe"); }

std::string MakeNonce(const crypto::SecretBytes& master_key, TimePoint now) {
  return HexEncode(crypto::MakeTimedNonce(master_key.span(), kNonceLabel, ToUnixSeconds(now)));
}

Status CheckNonce(const crypto::SecretBytes& master_key, const std::string& nonce, TimePoint now,
                  std::chrono::seconds max_age) {
  auto bytes = nonce.size() == 64 ? HexDecode(nonce) : Result<std::vector<uint8_t>>(InvalidArgument("length"));
  if (!bytes.ok()) return Refuse("the join nonce is malformed", std::string(kInvalidNonce));
  return crypto::CheckTimedNonce(master_key.span(), kNonceLabel, *bytes, ToUnixSeconds(now), max_age.count(),
                                 "invalid_nonce")
      .status();
}

std::array<uint8_t, 64> JoinReportData(std::span<const uint8_t> joiner_public_key, const std::string& nonce) {
  std::vector<uint8_t> msg(kReportDataLabel.begin(), kReportDataLabel.end());
  AppendLenPrefixed(msg, joiner_public_key);
  AppendLenPrefixed(msg, Bytes(nonce));
  auto d = crypto::Sha256(msg);
  std::array<uint8_t, 64> rd{};
  std::copy(d.begin(), d.end(), rd.begin());
  return rd;
}

nlohmann::json JoinRequest::ToJson() const {
  return {{"evidence", Base64Encode(evidence)}, {"public_key", Base64Encode(public_key)}, {"nonce", nonce}};
}

Result<JoinRequest> JoinRequest::FromJson(const nlohmann::json& j) {
  if (!j.is_object())
    return InvalidArgument("join request must be a JSON object", std::string(kInvalidJoinRequest));
  JoinRequest r;
  VOUCH_ASSIGN_OR_RETURN(r.evidence, DecodeB64Field(j, "evidence", 64 << 10));
  VOUCH_ASSIGN_OR_RETURN(r.public_key, DecodeB64Field(j, "public_key", 200));
  if (r.public_key.size() != kSec1P256Size || r.public_key[0] != 0x04) {
    return InvalidArgument("public_key must be an uncompressed P-256 point (65 bytes)",
                           std::string(kInvalidJoinRequest));
  }
  auto n = j.find("nonce");
  if (n == j.end() || !n->is_string() || n->get_ref<const std::string&>().size() > 200) {
    return InvalidArgument("nonce must be the string from /api/v1/cluster/nonce",
                           std::string(kInvalidJoinRequest));
  }
  r.nonce = n->get<std::string>();
  return r;
}

Result<std::unique_ptr<Joiner>> Joiner::Create() {
  auto j = std::unique_ptr<Joiner>(new Joiner());
  VOUCH_ASSIGN_OR_RETURN(j->key_, crypto::GenerateP256());
  VOUCH_ASSIGN_OR_RETURN(j->public_key_, crypto::EcPublicPointEncoded(j->key_.get()));
  if (j->public_key_.size() != kSec1P256Size) return Internal("unexpected P-256 point encoding");
  return j;
}

Result<JoinRequest> Joiner::SimRequest(const attest::SimVendor& sim, const Measurement& measurement,
                                       const std::string& nonce) const {
  evidence::SgxReportBody body;
  body.mr_enclave = measurement;
  // MRSIGNER: a fixed "vouch project" signer in sim; on hardware the enclave signer's key hash.
  auto signer = crypto::Sha256(std::string_view("vouch sim signer"));
  std::copy(signer.begin(), signer.end(), body.mr_signer.begin());
  body.attribute_flags = evidence::kSgxFlagInit | evidence::kSgxFlagMode64Bit;
  body.attribute_xfrm = 0x3;
  auto rd = JoinReportData(public_key_, nonce);
  JoinRequest r;
  VOUCH_ASSIGN_OR_RETURN(r.evidence, sim.platform().Quote(body, rd));
  r.public_key = public_key_;
  r.nonce = nonce;
  return r;
}

Result<crypto::SecretBytes> Joiner::Open(const JoinRequest& request, std::span<const uint8_t> peer_public_key,
                                         std::span<const uint8_t> wrapped) const {
  auto rd = JoinReportData(public_key_, request.nonce);
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes key, WrapKey(key_.get(), peer_public_key, public_key_, peer_public_key, rd));
  auto out = crypto::Aes256GcmOpen(key.span(), wrapped, rd);
  if (!out.ok())
    return PermissionDenied("the wrapped cluster key does not open (tampered or not for us)",
                            std::string(kUnwrapFailed));
  return out;
}

Result<JoinGrant> GrantJoin(const JoinRequest& request, const JoinPolicy& policy, const attest::DcapVerifier& verifier,
                            const crypto::SecretBytes& master_key, std::span<const uint8_t> payload, TimePoint now) {
  VOUCH_RETURN_IF_ERROR(CheckNonce(master_key, request.nonce, now));
  attest::Verdict v = verifier.Verify(request.evidence, now);
  JoinGrant grant;
  grant.verdict = v.ToJson();
  // Acceptable? One decision, policy's (docs/policy.md): genuine, sim only where allowed, a TCB
  // no worse than ConfigurationAndSWHardeningNeeded, bound to this key and nonce, never a debug
  // enclave, and an approved vouchd measurement.
  policy::ZonePolicy zone;
  zone.allow_sim = policy.allow_sim;
  zone.min_tcb = policy::TcbStatus::kConfigurationAndSWHardeningNeeded;
  policy::Decision platform = policy::EvaluatePlatform(v, zone);
  if (!platform.accepted()) return platform.status;
  auto rd = JoinReportData(request.public_key, request.nonce);
  policy::Decision bound = policy::CheckReportData(v, rd);
  if (!bound.accepted()) return bound.status;
  std::vector<policy::MeasurementRule> approved;
  for (const Measurement& m : policy.measurements) {
    policy::SgxMeasurementRule r;
    r.mrenclave = HexEncode(m);
    approved.push_back(policy::MeasurementRule{r});
  }
  policy::Decision identity = policy::EvaluateIdentity(v, approved, zone, policy::kMeasurementNotAllowed);
  if (!identity.accepted()) {
    if (identity.status.reason() != policy::kMeasurementNotAllowed) return identity.status;
    return Refuse("measurement " + v.measurements.value("mrenclave", std::string("?")) +
                      " is not an approved vouchd build",
                  identity.status.reason());
  }

  VOUCH_ASSIGN_OR_RETURN(crypto::EvpPkeyPtr eph, crypto::GenerateP256());
  VOUCH_ASSIGN_OR_RETURN(grant.peer_public_key, crypto::EcPublicPointEncoded(eph.get()));
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes key,
                         WrapKey(eph.get(), request.public_key, request.public_key, grant.peer_public_key, rd));
  VOUCH_ASSIGN_OR_RETURN(grant.wrapped, crypto::Aes256GcmSeal(key.span(), payload, rd));
  return grant;
}

}  // namespace vouch::cluster
