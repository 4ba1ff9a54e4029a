// Placeholder implementation: the interface compiles; the real one follows (issue 14).
#include "collateral/service.h"

#include "attest/dcap_verifier.h"

namespace vouch::collateral {

const std::vector<std::string_view>& Kinds() {
  static const std::vector<std::string_view> kKinds = {kSgxTcbInfo, kTdxTcbInfo, kQeIdentity, kTdQeIdentity, kPckCrl,
                                                       kRootCaCrl,  kAmdVcek,    kAmdCertChain, kAmdCrl};
  return kKinds;
}
bool IsKind(std::string_view kind) {
  for (auto k : Kinds()) {
    if (k == kind) return true;
  }
  return false;
}

struct Service::Impl {
  store::Database* db = nullptr;
  const Clock* clock = nullptr;
  ServiceOptions options;
};

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Service::~Service() = default;

Result<std::unique_ptr<Service>> Service::Create(store::Database* db, const Clock* clock, ServiceOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->db = db;
  impl->clock = clock;
  impl->options = std::move(options);
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}
const ServiceOptions& Service::options() const { return impl_->options; }
bool Service::has_intel_source() const { return !impl_->options.pccs_url.empty(); }
bool Service::has_amd_source() const { return !impl_->options.kds_url.empty(); }
Result<std::vector<Item>> Service::List(const ListFilter&) { return std::vector<Item>{}; }
Result<RawItem> Service::GetForServing(std::string_view, std::string_view, bool) {
  return NotFound("not implemented yet", std::string(kNotFoundAtSource));
}
Result<RawItem> Service::GetById(std::string_view) { return NotFound("not implemented yet", std::string(kNotFoundAtSource)); }
Report Service::RefreshDue(bool) { return {}; }
Outcome Service::RefreshOne(std::string_view kind, std::string_view key) {
  return Outcome{std::string(kind), std::string(key), "", "failed", std::string(kNoSource), "not implemented yet"};
}
Outcome Service::Ensure(std::string_view kind, std::string_view key) { return RefreshOne(kind, key); }
Report Service::ImportFiles(const std::map<std::string, std::string>&, const std::string&) { return {}; }
Report Service::ImportDir(const std::string&) { return {}; }
Result<std::map<std::string, std::string>> Service::ExportFiles() { return std::map<std::string, std::string>{}; }
Status Service::ExportDir(const std::string&) { return Status::Ok(); }
Result<std::unique_ptr<attest::DcapVerifier>> Service::DcapVerifierFor(std::span<const uint8_t>, TimePoint) {
  return NotFound("not implemented yet", std::string(kNotFoundAtSource));
}
attest::Verdict Service::Verify(std::span<const uint8_t>, std::string_view, TimePoint, bool) {
  attest::Verdict v;
  v.error = NotFound("not implemented yet", std::string(kNotFoundAtSource));
  return v;
}
std::vector<std::pair<Item, double>> Service::RemainingValidity() { return {}; }
Stats Service::GetStats() const { return {}; }
std::string VcekKey(std::string_view product, std::span<const uint8_t>, uint64_t) { return std::string(product); }
std::string DetectPlatform(std::span<const uint8_t>) { return ""; }

}  // namespace vouch::collateral
