// Collateral reload (ManagerOptions::collateral_dirs): the DCAP verifiers node evidence is checked against.
#include <algorithm>
#include <filesystem>
#include <system_error>

#include "api/manager.h"
#include "api/manager_internal.h"
#include "attest/dcap_verifier.h"

namespace vouch::api {

namespace internal {

// Name, size and modification time of every file in the collateral folders, in order: what
// ReloadCollateral compares to decide whether anything changed.
std::string CollateralFingerprint(const std::vector<std::string>& dirs) {
  std::string fp;
  for (const std::string& dir : dirs) {
    std::error_code ec;
    std::vector<std::string> entries;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      std::error_code fec;
      if (!e.is_regular_file(fec)) continue;
      auto size = e.file_size(fec);
      auto mtime = e.last_write_time(fec).time_since_epoch().count();
      entries.push_back(e.path().filename().string() + ":" + std::to_string(size) + ":" + std::to_string(mtime));
    }
    if (ec) entries.push_back("unreadable:" + ec.message());
    std::sort(entries.begin(), entries.end());
    fp += dir + "\n";
    for (const std::string& e : entries) fp += e + "\n";
  }
  return fp;
}

// Loads every folder. `strict`: each must hold complete, correctly signed collateral.
Result<std::shared_ptr<const std::vector<std::unique_ptr<attest::DcapVerifier>>>> LoadVerifiers(
    const std::vector<std::string>& dirs, bool strict) {
  auto verifiers = std::make_shared<std::vector<std::unique_ptr<attest::DcapVerifier>>>();
  for (const std::string& dir : dirs) {
    auto in_dir = [&dir](const Status& st) {
      return Status(st.code(), "collateral in " + dir + ": " + st.message(), st.reason());
    };
    auto collateral = attest::DcapCollateral::LoadDir(dir);
    if (!collateral.ok()) return in_dir(collateral.status());
    // allow_sim here only lets the verifier recognise a sim root (the verdict is then marked
    // insecure_sim); whether sim evidence is acceptable is each zone's policy decision.
    attest::DcapTrustOptions trust;
    trust.allow_sim = true;
    auto verifier = attest::DcapVerifier::Create(std::move(*collateral), trust);
    if (!verifier.ok()) return in_dir(verifier.status());
    if (strict) {
      if (Status st = (*verifier)->CollateralStatus(); !st.ok()) return in_dir(st);
    }
    verifiers->push_back(std::move(*verifier));
  }
  return std::shared_ptr<const std::vector<std::unique_ptr<attest::DcapVerifier>>>(std::move(verifiers));
}

}  // namespace internal

using namespace internal;  // NOLINT(google-build-using-namespace): file-local helpers

std::shared_ptr<const Manager::Verifiers> Manager::CurrentVerifiers() {
  std::lock_guard<std::mutex> lock(verifiers_mu_);
  return verifiers_;
}

std::vector<std::pair<std::string, TimePoint>> Manager::CollateralValidUntil() {
  std::shared_ptr<const Verifiers> verifiers = CurrentVerifiers();
  std::vector<std::pair<std::string, TimePoint>> out;
  for (size_t i = 0; verifiers && i < verifiers->size() && i < options_.collateral_dirs.size(); ++i) {
    out.emplace_back(options_.collateral_dirs[i], (*verifiers)[i]->CollateralValidUntil());
  }
  return out;
}

Result<bool> Manager::ReloadCollateral(bool force) {
  std::lock_guard<std::mutex> reload(reload_mu_);
  std::string fingerprint = CollateralFingerprint(options_.collateral_dirs);
  if (!force && fingerprint == collateral_fingerprint_) return false;
  collateral_fingerprint_ = fingerprint;  // a broken copy is reported once, not at every poll
  VOUCH_ASSIGN_OR_RETURN(auto verifiers, LoadVerifiers(options_.collateral_dirs, true));
  std::lock_guard<std::mutex> lock(verifiers_mu_);
  verifiers_ = std::move(verifiers);
  return true;
}

}  // namespace vouch::api
