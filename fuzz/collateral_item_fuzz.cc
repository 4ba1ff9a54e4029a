// libFuzzer target: the collateral service's checks of a fetched or imported item (body and
// issuer chain as served; collateral/items.h), the VCEK extension reader and the header decoding.
// First byte: the kind; the rest split at the first NUL into body and issuer chain.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "collateral/fetch.h"
#include "collateral/items.h"
#include "collateral/service.h"
#include "crypto/x509.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& kinds = vouch::collateral::Kinds();
  vouch::collateral::internal::Candidate c;
  c.kind = std::string(kinds[data[0] % kinds.size()]);
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t nul = rest.find('\0');
  c.body = std::string(rest.substr(0, nul));
  if (nul != std::string_view::npos) c.issuer_chain_pem = std::string(rest.substr(nul + 1));
  if (c.kind == vouch::collateral::kAmdCrl || c.kind == vouch::collateral::kAmdCertChain) c.key = "Milan";
  if (c.kind == vouch::collateral::kAmdVcek) c.key = "Milan/00/0000000000000000";
  vouch::collateral::internal::CheckContext ctx;
  auto checked = vouch::collateral::internal::CheckCandidate(c, ctx);
  // Whatever passes chains to a known kind of root, and says which.
  if (checked.ok() && checked->root != "intel" && checked->root != "amd" && checked->root.rfind("sim:", 0) != 0) {
    __builtin_trap();
  }
  std::string decoded = vouch::collateral::internal::UrlDecode(rest);
  if (decoded.size() > rest.size()) __builtin_trap();
  auto cert = vouch::crypto::CertFromDer(std::span<const uint8_t>(data + 1, size - 1));
  if (cert.ok()) (void)vouch::collateral::internal::ReadVcekFacts(cert->get());
  (void)vouch::collateral::DetectPlatform(std::span<const uint8_t>(data, size));
  return 0;
}
