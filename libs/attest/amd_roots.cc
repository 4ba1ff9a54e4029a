#include "attest/amd_roots.h"

#include <memory>

#include "crypto/ossl.h"
#include "crypto/x509.h"

namespace vouch::attest {
namespace {

using evidence::SnpProduct;

struct Registry {
  std::vector<crypto::X509Ptr> owned;
  std::vector<AmdRootSet> sets;
};

// Each bundle is [intermediate, ARK]. The ARK of the VCEK and the VLEK bundle of one product
// must be the same certificate; otherwise the registry stays empty (and every SNP verification
// fails closed with snp_chain_untrusted).
std::unique_ptr<Registry> Load() {
  auto reg = std::make_unique<Registry>();
  struct Source {
    SnpProduct product;
    const char* vcek_pem;
    const char* vlek_pem;
  };
  const Source sources[] = {
      {SnpProduct::kMilan, internal::kAmdMilanVcekChainPem, internal::kAmdMilanVlekChainPem},
      {SnpProduct::kGenoa, internal::kAmdGenoaVcekChainPem, internal::kAmdGenoaVlekChainPem},
      {SnpProduct::kTurin, internal::kAmdTurinVcekChainPem, internal::kAmdTurinVlekChainPem},
  };
  std::vector<AmdRootSet> sets;
  for (const Source& s : sources) {
    auto vcek = crypto::CertsFromPem(s.vcek_pem);
    auto vlek = crypto::CertsFromPem(s.vlek_pem);
    if (!vcek.ok() || !vlek.ok() || vcek->size() != 2 || vlek->size() != 2) return std::make_unique<Registry>();
    if (X509_cmp((*vcek)[1].get(), (*vlek)[1].get()) != 0) return std::make_unique<Registry>();
    AmdRootSet set;
    set.product = s.product;
    set.ask = (*vcek)[0].get();
    set.ark = (*vcek)[1].get();
    set.asvk = (*vlek)[0].get();
    sets.push_back(set);
    for (auto& c : *vcek) reg->owned.push_back(std::move(c));
    for (auto& c : *vlek) reg->owned.push_back(std::move(c));
  }
  reg->sets = std::move(sets);
  return reg;
}

const Registry& Get() {
  static const std::unique_ptr<Registry> kRegistry = Load();
  return *kRegistry;
}

bool SameDer(X509* a, X509* b) {
  auto da = crypto::CertToDer(a);
  auto db = crypto::CertToDer(b);
  return da.ok() && db.ok() && *da == *db;
}

}  // namespace

std::string_view AmdLeafKindName(AmdLeafKind kind) { return kind == AmdLeafKind::kVlek ? "vlek" : "vcek"; }

const std::vector<AmdRootSet>& BuiltinAmdRoots() { return Get().sets; }

const AmdRootSet* FindPinnedArk(X509* ark) { return FindPinnedArk(ark, BuiltinAmdRoots()); }

const AmdRootSet* FindPinnedArk(X509* ark, std::span<const AmdRootSet> roots) {
  if (ark == nullptr) return nullptr;
  for (const AmdRootSet& set : roots) {
    if (SameDer(set.ark, ark)) return &set;
  }
  return nullptr;
}

std::string_view BuiltinAmdCertChainPem(SnpProduct product, AmdLeafKind kind) {
  const bool vlek = kind == AmdLeafKind::kVlek;
  switch (product) {
    case SnpProduct::kMilan: return vlek ? internal::kAmdMilanVlekChainPem : internal::kAmdMilanVcekChainPem;
    case SnpProduct::kGenoa: return vlek ? internal::kAmdGenoaVlekChainPem : internal::kAmdGenoaVcekChainPem;
    case SnpProduct::kTurin: return vlek ? internal::kAmdTurinVlekChainPem : internal::kAmdTurinVcekChainPem;
    case SnpProduct::kUnknown: break;
  }
  return {};
}

}  // namespace vouch::attest
