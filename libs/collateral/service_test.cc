// The collateral service against a local HTTPS server playing Intel PCS and AMD KDS (libs/http),
// over a sim vendor folder and the real collateral of ../shared/testdata/attestation, on SQLite
// and (as "Postgres/...") on a real PostgreSQL server (libs/pgtest).
#include "collateral/service.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <vector>

#include "attest/dcap_collateral.h"
#include "attest/dcap_verifier.h"
#include "attest/sim_vendor.h"
#include "attest/snp_verifier.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/url_component.h"
#include "collateral/fetch.h"
#include "crypto/x509.h"
#include "http/server.h"
#include "pgtest/test_postgres.h"
#include "pki/service.h"
#include "store/database.h"
#include "testing/temp_dir.h"

namespace vouch::collateral {
namespace {

const std::string kShared = std::string(VOUCH_SHARED_DIR) + "/testdata/attestation/";
const std::string kTdxOct = kShared + "tdx/automata-spr-v4-2025-10";
const std::string kMilan = kShared + "sev-snp/go-sev-guest-milan";

std::string Read(const std::string& path) {
  auto r = ReadWholeFile(path);
  EXPECT_TRUE(r.ok()) << path;
  return r.ok() ? *r : std::string();
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

// A PCS + KDS stand-in: serves a DCAP folder (and an AMD folder) with the PCS v4 paths and
// headers; every request is counted; answers can be overridden per path.
class FakeVendor {
 public:
  explicit FakeVendor(vouch::test::TempDir* tmp) : tmp_(tmp) {}

  void ServeIntel(const std::string& dir) {
    std::lock_guard<std::mutex> lock(mu_);
    intel_dir_ = dir;
  }
  void ServeAmd(const std::string& dir) {
    std::lock_guard<std::mutex> lock(mu_);
    amd_dir_ = dir;
  }
  // The next `times` answers for `path` are this (status, body, headers).
  void Override(const std::string& path, http::Response r, int times = 1000) {
    std::lock_guard<std::mutex> lock(mu_);
    overrides_[path] = {std::move(r), times};
  }
  void ClearOverrides() {
    std::lock_guard<std::mutex> lock(mu_);
    overrides_.clear();
  }
  int Count(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return counts_[path];
  }
  int Total() {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const auto& [p, c] : counts_) n += c;
    return n;
  }
  std::vector<std::chrono::steady_clock::time_point> Times(const std::string& prefix) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::chrono::steady_clock::time_point> out;
    for (const auto& [p, t] : times_) {
      if (p.rfind(prefix, 0) == 0) out.push_back(t);
    }
    return out;
  }

  void Start() {
    auto certs = pki::CreateServiceCertificates();
    ASSERT_TRUE(certs.ok()) << certs.status().message();
    ca_file_ = tmp_->Write("pcs-ca.pem", certs->ca_cert_pem);
    http::ServerOptions so;
    so.port = 0;
    so.threads = 2;
    so.cert_chain_pem = certs->server_chain_pem;
    so.private_key_pem = std::string(certs->server_key_pem.view());
    http::Router router;
    auto handler = [this](http::Request& req) { return Handle(req); };
    router.Add("GET", "/sgx/certification/v4/tcb", handler);
    router.Add("GET", "/tdx/certification/v4/tcb", handler);
    router.Add("GET", "/sgx/certification/v4/qe/identity", handler);
    router.Add("GET", "/tdx/certification/v4/qe/identity", handler);
    router.Add("GET", "/sgx/certification/v4/pckcrl", handler);
    router.Add("GET", "/sgx/certification/v4/rootcacrl", handler);
    router.Add("GET", "/vcek/v1/{product}/{what}", handler);
    auto srv = http::Server::Create(so, std::move(router));
    ASSERT_TRUE(srv.ok()) << srv.status().message();
    server_ = std::move(*srv);
    ASSERT_TRUE(server_->Start().ok());
    url_ = "https://127.0.0.1:" + std::to_string(server_->port());
  }
  void Stop() {
    if (server_) server_->Stop(std::chrono::milliseconds(200));
    server_.reset();
  }
  const std::string& url() const { return url_; }
  const std::string& ca_file() const { return ca_file_; }

 private:
  http::Response File(const std::string& path, const std::string& type) {
    auto body = ReadWholeFile(path);
    if (!body.ok()) return http::Response::Error(404, "not_found", "no such item");
    return http::Response::Text(*body, type);
  }

  http::Response Handle(http::Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    ++counts_[req.path];
    times_.emplace_back(req.path, std::chrono::steady_clock::now());
    if (auto it = overrides_.find(req.path); it != overrides_.end() && it->second.second > 0) {
      --it->second.second;
      return it->second.first;
    }
    const std::string& p = req.path;
    if (p.rfind("/vcek/v1/", 0) == 0) {
      if (amd_dir_.empty()) return http::Response::Error(404, "not_found", "no AMD folder");
      const std::string what = req.path_params["what"];
      if (what == "cert_chain") {
        for (const char* name : {"cert_chain.pem", "ask_ark_milan.pem"}) {
          if (FileExists(amd_dir_ + "/" + name)) return File(amd_dir_ + "/" + name, "application/x-pem-file");
        }
        return http::Response::Error(404, "not_found", "no chain");
      }
      if (what == "crl") return File(amd_dir_ + "/crl.der", "application/pkix-crl");
      return File(amd_dir_ + "/vcek.der", "application/pkix-cert");
    }
    if (intel_dir_.empty()) return http::Response::Error(404, "not_found", "no Intel folder");
    http::Response r;
    std::string chain_header, chain;
    const std::string sign_chain = Read(intel_dir_ + "/" + attest::kTcbSignChainFile);
    if (p.find("/tcb") != std::string::npos) {
      auto info = ReadWholeFile(intel_dir_ + "/" + attest::kTcbInfoFile);
      if (!info.ok()) return http::Response::Error(404, "not_found", "no TCB Info");
      const bool tdx_file = info->find("\"TDX\"") != std::string::npos;
      if (tdx_file != (p.rfind("/tdx/", 0) == 0) || Lower(info->substr(info->find("fmspc") + 8, 12)) != Lower(req.query["fmspc"])) {
        return http::Response::Error(404, "not_found", "unknown FMSPC");
      }
      r = http::Response::Text(*info, "application/json");
      chain_header = "TCB-Info-Issuer-Chain";
      chain = sign_chain;
    } else if (p.find("/qe/identity") != std::string::npos) {
      r = File(intel_dir_ + "/" + attest::kQeIdentityFile, "application/json");
      chain_header = "SGX-Enclave-Identity-Issuer-Chain";
      chain = sign_chain;
    } else if (p.find("/pckcrl") != std::string::npos) {
      r = File(intel_dir_ + "/" + attest::kPckCrlFile, "application/pkix-crl");
      auto certs = crypto::CertsFromPem(Read(intel_dir_ + "/" + attest::kPckSignChainFile));
      if (certs.ok() && certs->size() >= 2) {
        for (size_t i = certs->size() - 2; i < certs->size(); ++i) chain += *crypto::CertToPem((*certs)[i].get());
      }
      chain_header = "SGX-PCK-CRL-Issuer-Chain";
    } else {
      r = File(intel_dir_ + "/" + attest::kRootCaCrlFile, "application/pkix-crl");
    }
    if (!chain_header.empty()) r.headers.emplace_back(chain_header, UrlEncode(chain));
    return r;
  }

  static std::string Lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  vouch::test::TempDir* tmp_;
  std::mutex mu_;
  std::string intel_dir_, amd_dir_;
  std::map<std::string, std::pair<http::Response, int>> overrides_;
  std::map<std::string, int> counts_;
  std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> times_;
  std::unique_ptr<http::Server> server_;
  std::string url_, ca_file_;
};

enum class Backend { kSqlite, kPostgres };

class CollateralServiceTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kPostgres) {
      auto url = pgtest::FreshTestDatabase();
      if (!url.ok()) {
        if (pgtest::PostgresRequired()) FAIL() << "PostgreSQL is required: " << url.status().message();
        GTEST_SKIP() << "no PostgreSQL server: " << url.status().message();
      }
      db_url_ = *url;
    } else {
      db_url_ = "sqlite:" + tmp_.File("store.db");
    }
    auto db = store::OpenDatabase(db_url_);
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(*db);
    ASSERT_TRUE(db_->Migrate().ok());
    vendor_.Start();
  }
  void TearDown() override { vendor_.Stop(); }

  std::unique_ptr<Service> MakeService(store::Database* db, bool with_sources = true) {
    ServiceOptions o;
    if (with_sources) {
      o.pccs_url = vendor_.url();
      o.kds_url = vendor_.url();
    }
    o.ca_file = vendor_.ca_file();
    o.kds_min_interval = std::chrono::milliseconds(200);
    o.request_timeout = std::chrono::milliseconds(5000);
    auto s = Service::Create(db, &clock_, o);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(*s) : nullptr;
  }

  // A sim SGX vendor folder and a quote from its platform.
  std::string MakeSim(const std::string& name) {
    const std::string dir = tmp_.File(name);
    auto v = attest::SimVendor::Create(dir);
    EXPECT_TRUE(v.ok()) << v.status().message();
    std::vector<uint8_t> body(384, 0);
    body[48] = 1;  // some attributes
    auto q = (*v)->platform().Quote(body, std::vector<uint8_t>(64, 7));
    EXPECT_TRUE(q.ok()) << q.status().message();
    quote_ = *q;
    return dir;
  }

  vouch::test::TempDir tmp_{"collateral"};
  FixedClock clock_{std::chrono::system_clock::now()};
  std::string db_url_;
  std::unique_ptr<store::Database> db_;
  FakeVendor vendor_{&tmp_};
  std::vector<uint8_t> quote_;
};

int64_t Failures(Service& s, const std::string& source, std::string_view kind) {
  auto stats = s.GetStats();
  auto it = stats.failures.find({source, std::string(kind)});
  return it == stats.failures.end() ? 0 : it->second;
}

int CountItems(Service& s) {
  auto items = s.List();
  EXPECT_TRUE(items.ok());
  return items.ok() ? static_cast<int>(items->size()) : -1;
}

TEST_P(CollateralServiceTest, FetchesOnFirstNeedThenUsesTheCache) {
  const std::string sim = MakeSim("sim");
  vendor_.ServeIntel(sim);
  auto service = MakeService(db_.get());
  EXPECT_EQ(CountItems(*service), 0);
  attest::Verdict v = service->Verify(quote_, "", clock_.Now());
  ASSERT_TRUE(v.genuine) << (v.error ? v.error->message() : "");
  EXPECT_TRUE(v.insecure_sim);
  EXPECT_EQ(v.tcb_status, "UpToDate");
  EXPECT_EQ(vendor_.Count("/sgx/certification/v4/tcb"), 1);
  EXPECT_EQ(vendor_.Count("/sgx/certification/v4/qe/identity"), 1);
  EXPECT_EQ(vendor_.Count("/sgx/certification/v4/pckcrl"), 1);
  EXPECT_EQ(vendor_.Count("/sgx/certification/v4/rootcacrl"), 1);
  EXPECT_EQ(CountItems(*service), 4);
  auto items = service->List();
  ASSERT_TRUE(items.ok());
  for (const Item& it : *items) {
    EXPECT_TRUE(it.sim) << it.kind;
    EXPECT_EQ(it.source, kSourcePcs);
    EXPECT_EQ(it.state, kStateValid);
    EXPECT_EQ(it.root.rfind("sim:", 0), 0u);
  }
  // Second verification: from the cache, no request.
  const int before = vendor_.Total();
  v = service->Verify(quote_, "sgx", clock_.Now());
  EXPECT_TRUE(v.genuine);
  EXPECT_EQ(vendor_.Total(), before);
  // A second service on the same store (another HA member) fetches nothing either.
  auto other = MakeService(db_.get());
  EXPECT_TRUE(other->Verify(quote_, "", clock_.Now()).genuine);
  EXPECT_EQ(vendor_.Total(), before);
  // The raw item as the PCCS routes serve it.
  auto raw = service->GetForServing(kQeIdentity, "QE", false);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->body, Read(sim + "/" + attest::kQeIdentityFile));
  EXPECT_EQ(raw->issuer_chain_pem.find("-----BEGIN CERTIFICATE-----"), 0u);
  EXPECT_EQ(raw->content_type, "application/json");
}

TEST_P(CollateralServiceTest, PcsDownUsesTheCache) {
  MakeSim("sim");
  vendor_.ServeIntel(tmp_.File("sim"));
  auto service = MakeService(db_.get());
  ASSERT_TRUE(service->Verify(quote_, "", clock_.Now()).genuine);
  vendor_.Stop();
  attest::Verdict v = service->Verify(quote_, "", clock_.Now());
  EXPECT_TRUE(v.genuine) << (v.error ? v.error->message() : "");
  Outcome o = service->RefreshOne(kQeIdentity, "QE");
  EXPECT_EQ(o.result, "failed");
  EXPECT_EQ(o.reason, kFetchFailed);
  EXPECT_EQ(Failures(*service, "pcs", kQeIdentity), 1);
  // Still genuine after the failed refresh.
  EXPECT_TRUE(service->Verify(quote_, "", clock_.Now()).genuine);
}

TEST_P(CollateralServiceTest, NothingHeldAndNoSourceIsMissingCollateral) {
  MakeSim("sim");
  auto service = MakeService(db_.get(), /*with_sources=*/false);
  attest::Verdict v = service->Verify(quote_, "", clock_.Now());
  EXPECT_FALSE(v.genuine);
  ASSERT_TRUE(v.error.has_value());
  EXPECT_EQ(v.error->reason(), attest::kDcapMissingCollateral);
  EXPECT_EQ(vendor_.Total(), 0);
}

TEST_P(CollateralServiceTest, BrokenSignatureIsRefusedAndTheLastGoodCopyStays) {
  const std::string sim = MakeSim("sim");
  vendor_.ServeIntel(sim);
  auto service = MakeService(db_.get());
  ASSERT_TRUE(service->Verify(quote_, "", clock_.Now()).genuine);
  auto before = service->GetForServing(kSgxTcbInfo, "", false);
  auto items = service->List(ListFilter{std::string(kSgxTcbInfo), "", false});
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 1u);
  const Item good = items->front();
  // The same TCB Info, one signature digit changed.
  std::string info = Read(sim + "/" + attest::kTcbInfoFile);
  size_t sig = info.rfind("\"signature\"");
  ASSERT_NE(sig, std::string::npos);
  size_t digit = info.find_first_of("0123456789abcdef", info.find('"', sig + 12) + 1);
  info[digit] = info[digit] == '0' ? '1' : '0';
  http::Response bad = http::Response::Text(info, "application/json");
  bad.headers.emplace_back("TCB-Info-Issuer-Chain", UrlEncode(Read(sim + "/" + attest::kTcbSignChainFile)));
  vendor_.Override("/sgx/certification/v4/tcb", bad);
  Outcome o = service->RefreshOne(kSgxTcbInfo, good.key);
  EXPECT_EQ(o.result, "refused");
  EXPECT_EQ(o.reason, kBadSignature);
  // A chain that does not end in a trusted root: refused too.
  http::Response foreign = http::Response::Text(Read(sim + "/" + attest::kTcbInfoFile), "application/json");
  foreign.headers.emplace_back("TCB-Info-Issuer-Chain", UrlEncode(Read(kTdxOct + "/" + attest::kTcbSignChainFile)));
  vendor_.Override("/sgx/certification/v4/tcb", foreign);
  o = service->RefreshOne(kSgxTcbInfo, good.key);
  EXPECT_EQ(o.result, "refused");
  EXPECT_EQ(o.reason, kBadSignature);  // the Intel chain holds, the sim document is not Intel's
  // A body that is not TCB Info at all.
  vendor_.Override("/sgx/certification/v4/tcb", http::Response::Text("{\"nope\":1}", "application/json"));
  o = service->RefreshOne(kSgxTcbInfo, good.key);
  EXPECT_EQ(o.result, "refused");
  EXPECT_EQ(o.reason, kMalformed);
  // The good copy is still the current one, and still verifies.
  items = service->List(ListFilter{std::string(kSgxTcbInfo), "", true});
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 1u);
  EXPECT_EQ(items->front().sha256, good.sha256);
  EXPECT_TRUE(service->Verify(quote_, "", clock_.Now()).genuine);
  EXPECT_EQ(Failures(*service, "pcs", kSgxTcbInfo), 3);
  // Each refusal is in the audit log.
  int64_t refusals = 0;
  ASSERT_TRUE(db_->Read([&](store::Transaction& tx) -> Status {
                    VOUCH_ASSIGN_OR_RETURN(auto row, tx.QueryOne("SELECT COUNT(*) FROM audit WHERE action = ? AND "
                                                                 "outcome LIKE 'denied:%'",
                                                                 {std::string("collateral.store")}, "audit"));
                    refusals = row.Int(0);
                    return Status::Ok();
                  }).ok());
  EXPECT_EQ(refusals, 3);
}

TEST_P(CollateralServiceTest, LowerEvaluationNumberIsRefused) {
  const std::string sim = MakeSim("sim");
  vendor_.ServeIntel(sim);
  auto service = MakeService(db_.get());
  ASSERT_TRUE(service->Verify(quote_, "", clock_.Now()).genuine);
  const std::string old_info = Read(sim + "/" + attest::kTcbInfoFile);
  // A TCB recovery: the vendor publishes the next evaluation number (every level OutOfDate).
  clock_.Advance(std::chrono::seconds(5));
  auto n = attest::SimTcbRecovery(sim);
  ASSERT_TRUE(n.ok()) << n.status().message();
  auto items = service->List(ListFilter{std::string(kSgxTcbInfo), "", false});
  ASSERT_TRUE(items.ok() && items->size() == 1);
  const std::string fmspc = items->front().key;
  Outcome o = service->RefreshOne(kSgxTcbInfo, fmspc);
  ASSERT_EQ(o.result, "stored") << o.message;
  attest::Verdict v = service->Verify(quote_, "", clock_.Now() + std::chrono::seconds(10));
  EXPECT_TRUE(v.genuine);
  EXPECT_EQ(v.tcb_status, "OutOfDate");
  // The source rolls back to the previous evaluation: refused, the new one stays current.
  http::Response rollback = http::Response::Text(old_info, "application/json");
  rollback.headers.emplace_back("TCB-Info-Issuer-Chain", UrlEncode(Read(sim + "/" + attest::kTcbSignChainFile)));
  vendor_.Override("/sgx/certification/v4/tcb", rollback);
  o = service->RefreshOne(kSgxTcbInfo, fmspc);
  EXPECT_EQ(o.result, "refused");
  EXPECT_EQ(o.reason, kEvaluationRollback);
  items = service->List(ListFilter{std::string(kSgxTcbInfo), "", false});
  ASSERT_TRUE(items.ok() && items->size() == 1);
  EXPECT_EQ(items->front().tcb_evaluation_data_number, *n);
  // Both versions are kept; the older one still serves evidence verified at an earlier time.
  items = service->List(ListFilter{std::string(kSgxTcbInfo), "", true});
  EXPECT_EQ(items->size(), 2u);
}

TEST_P(CollateralServiceTest, RefreshDueFetchesOnlyWhatIsDue) {
  MakeSim("sim");
  vendor_.ServeIntel(tmp_.File("sim"));
  auto service = MakeService(db_.get());
  ASSERT_TRUE(service->Verify(quote_, "", clock_.Now()).genuine);
  const int before = vendor_.Total();
  Report r = service->RefreshDue();
  EXPECT_EQ(r.outcomes.size(), 0u);
  EXPECT_EQ(vendor_.Total(), before);
  // A year later (the sim's collateral lasts a year) everything is due.
  clock_.Advance(std::chrono::hours(24 * 365));
  r = service->RefreshDue();
  EXPECT_EQ(r.outcomes.size(), 4u);
  EXPECT_EQ(r.unchanged, 4);  // same bytes served again
  EXPECT_EQ(vendor_.Total(), before + 4);
  auto items = service->List();
  for (const Item& it : *items) EXPECT_EQ(it.state, kStateExpired) << it.kind;
}

TEST_P(CollateralServiceTest, AFailedDueRefreshIsRetriedAfterAnHour) {
  MakeSim("sim");
  vendor_.ServeIntel(tmp_.File("sim"));
  auto service = MakeService(db_.get());
  ASSERT_TRUE(service->Verify(quote_, "", clock_.Now()).genuine);
  vendor_.Stop();
  clock_.Advance(std::chrono::hours(24 * 365));
  Report r = service->RefreshDue();
  EXPECT_EQ(r.failed, 4);
  r = service->RefreshDue();
  EXPECT_EQ(r.outcomes.size(), 0u);  // not asked again at every check
  EXPECT_EQ(Failures(*service, "pcs", kSgxTcbInfo), 1);
  EXPECT_EQ(service->RefreshDue(/*force=*/true).failed, 4);  // an explicit refresh always asks
  clock_.Advance(std::chrono::hours(2));
  EXPECT_EQ(service->RefreshDue().failed, 4);
}

TEST_P(CollateralServiceTest, RealTdxCollateralImportedExpiredVerifiesAtItsTime) {
  auto service = MakeService(db_.get(), /*with_sources=*/false);
  Report r = service->ImportDir(kTdxOct);
  EXPECT_EQ(r.stored, 4) << (r.outcomes.empty() ? "" : r.outcomes[0].message);
  EXPECT_EQ(r.refused, 0);
  auto items = service->List();
  ASSERT_TRUE(items.ok());
  for (const Item& it : *items) {
    EXPECT_EQ(it.root, "intel");
    EXPECT_FALSE(it.sim);
    EXPECT_EQ(it.state, kStateExpired) << it.kind;  // October 2025 collateral
  }
  auto quote = ReadWholeFile(kTdxOct + "/quote.dat");
  ASSERT_TRUE(quote.ok());
  auto at = ParseRfc3339("2025-10-24T07:10:18Z");
  attest::Verdict v = service->Verify(AsBytes(*quote), "", *at);
  ASSERT_TRUE(v.genuine) << (v.error ? v.error->message() : "");
  EXPECT_EQ(v.platform, attest::Platform::kTdx);
  EXPECT_EQ(v.tcb_status, "OutOfDate");
  EXPECT_EQ(v.advisory_ids, (std::vector<std::string>{"INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"}));
  // Now the collateral has expired: not genuine.
  EXPECT_FALSE(service->Verify(AsBytes(*quote), "tdx", clock_.Now()).genuine);
  // Importing the same folder again stores nothing new.
  r = service->ImportDir(kTdxOct);
  EXPECT_EQ(r.unchanged, 4);
  EXPECT_EQ(r.stored, 0);
}

TEST_P(CollateralServiceTest, RealTdxCollateralFetchedFromThePcs) {
  vendor_.ServeIntel(kTdxOct);
  auto service = MakeService(db_.get());
  auto quote = ReadWholeFile(kTdxOct + "/quote.dat");
  ASSERT_TRUE(quote.ok());
  attest::Verdict v = service->Verify(AsBytes(*quote), "", *ParseRfc3339("2025-10-24T07:10:18Z"));
  ASSERT_TRUE(v.genuine) << (v.error ? v.error->message() : "");
  EXPECT_EQ(v.tcb_status, "OutOfDate");
  EXPECT_EQ(vendor_.Count("/tdx/certification/v4/tcb"), 1);
  EXPECT_EQ(vendor_.Count("/tdx/certification/v4/qe/identity"), 1);
  auto raw = service->GetForServing(kTdxTcbInfo, "00806F050000", false);
  ASSERT_TRUE(raw.ok()) << raw.status().message();
  EXPECT_EQ(raw->body, Read(kTdxOct + "/" + attest::kTcbInfoFile));
  EXPECT_EQ(raw->item.root, "intel");
  // An unknown FMSPC: 404 at the source, nothing stored.
  Outcome o = service->RefreshOne(kTdxTcbInfo, "00906ed50000");
  EXPECT_EQ(o.result, "failed");
  EXPECT_EQ(o.reason, kNotFoundAtSource);
  EXPECT_EQ(vendor_.Count("/tdx/certification/v4/tcb"), 2);
  // Asked for again on a need (the PCCS routes) within ten minutes: answered without a request.
  EXPECT_FALSE(service->GetForServing(kTdxTcbInfo, "00906ED50000", /*fetch=*/true).ok());
  EXPECT_FALSE(service->GetForServing(kTdxTcbInfo, "00906ed50000", /*fetch=*/true).ok());
  EXPECT_EQ(vendor_.Count("/tdx/certification/v4/tcb"), 2);
  clock_.Advance(std::chrono::minutes(11));
  EXPECT_FALSE(service->GetForServing(kTdxTcbInfo, "00906ed50000", /*fetch=*/true).ok());
  EXPECT_EQ(vendor_.Count("/tdx/certification/v4/tcb"), 3);
}

TEST_P(CollateralServiceTest, ImportExportRoundTrip) {
  auto service = MakeService(db_.get(), false);
  MakeSim("sim");
  Report r = service->ImportDir(tmp_.File("sim"));
  EXPECT_EQ(r.stored, 4);
  r = service->ImportDir(kTdxOct);
  EXPECT_EQ(r.stored, 4);
  r = service->ImportDir(kMilan);
  EXPECT_EQ(r.stored, 2) << (r.outcomes.empty() ? "" : r.outcomes.back().message);  // chain + VCEK
  const std::string out = tmp_.File("export");
  ASSERT_TRUE(service->ExportDir(out).ok());
  EXPECT_TRUE(FileExists(out + "/manifest.json"));
  // Into an empty store.
  vouch::test::TempDir other_dir("collateral-other");
  auto db2 = store::OpenDatabase("sqlite:" + other_dir.File("store.db"));
  ASSERT_TRUE(db2.ok());
  ASSERT_TRUE((*db2)->Migrate().ok());
  auto service2 = MakeService(db2->get(), false);
  r = service2->ImportDir(out);
  EXPECT_EQ(r.stored, 10);
  EXPECT_EQ(r.refused, 0) << (r.outcomes.empty() ? "" : r.outcomes.front().message);
  auto a = service->List(ListFilter{"", "", true});
  auto b = service2->List(ListFilter{"", "", true});
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i].kind, (*b)[i].kind);
    EXPECT_EQ((*a)[i].key, (*b)[i].key);
    EXPECT_EQ((*a)[i].sha256, (*b)[i].sha256);
    EXPECT_EQ((*a)[i].root, (*b)[i].root);
  }
  // A tampered export is refused item by item.
  auto manifest = Read(out + "/manifest.json");
  for (const auto& e : std::filesystem::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    if (name.find("sgx_tcb_info") != std::string::npos && name.find(".json") != std::string::npos) {
      std::string t = Read(e.path().string());
      t[t.find("\"tcbType\"") + 11] ^= 1;
      ASSERT_TRUE(WriteFileAtomic(e.path().string(), t).ok());
    }
  }
  vouch::test::TempDir third_dir("collateral-third");
  auto db3 = store::OpenDatabase("sqlite:" + third_dir.File("store.db"));
  ASSERT_TRUE(db3.ok() && (*db3)->Migrate().ok());
  auto service3 = MakeService(db3->get(), false);
  r = service3->ImportDir(out);
  EXPECT_EQ(r.refused, 1);
  EXPECT_EQ(r.stored, 9);
}

TEST_P(CollateralServiceTest, SnpVcekFetchedFromKdsOnce) {
  vendor_.ServeAmd(kMilan);
  auto service = MakeService(db_.get());
  auto report = ReadWholeFile(kMilan + "/attestation.bin");
  ASSERT_TRUE(report.ok());
  std::vector<uint8_t> evidence(report->begin(), report->end());
  evidence.resize(1184);  // the report only: no certificate table
  const TimePoint at = *ParseRfc3339("2024-01-01T00:00:00Z");
  attest::Verdict v = service->Verify(evidence, "", at);
  ASSERT_TRUE(v.genuine) << (v.error ? v.error->message() : "");
  EXPECT_EQ(v.platform, attest::Platform::kSevSnp);
  EXPECT_FALSE(v.insecure_sim);
  EXPECT_EQ(v.details.value("amd_crl", ""), "unavailable");  // the folder has no CRL: 404
  const int vcek_requests = vendor_.Count("/vcek/v1/Milan/3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d");
  EXPECT_EQ(vcek_requests, 1);
  // Again: from the store.
  const int before = vendor_.Total();
  EXPECT_TRUE(service->Verify(evidence, "sev-snp", at).genuine);
  EXPECT_EQ(vendor_.Count("/vcek/v1/Milan/3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d"), 1);
  EXPECT_LE(vendor_.Total(), before + 1);  // at most the CRL is asked for again
  auto vceks = service->List(ListFilter{std::string(kAmdVcek), "", false});
  ASSERT_TRUE(vceks.ok());
  ASSERT_EQ(vceks->size(), 1u);
  EXPECT_EQ(vceks->front().source, kSourceKds);
  EXPECT_EQ(vceks->front().root, "amd");
}

TEST_P(CollateralServiceTest, SimSnpReportWithoutCertificateTableUsesKds) {
  attest::SimVendorOptions o;
  o.tee = attest::SimTee::kSevSnp;
  const std::string dir = tmp_.File("snp");
  auto sim = attest::SimVendor::Create(dir, o);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  vendor_.ServeAmd(dir);
  auto service = MakeService(db_.get());
  auto report = (*sim)->snp()->Report(attest::SimSnpReportOptions{}, std::vector<uint8_t>(64, 3));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  // No certificate table: the VCEK comes from KDS, the sim chain too (the VCEK is not AMD's).
  attest::Verdict v = service->Verify(*report, "", clock_.Now());
  ASSERT_TRUE(v.genuine) << (v.error ? v.error->message() : "");
  EXPECT_TRUE(v.insecure_sim);
  EXPECT_EQ(v.details.value("amd_crl", ""), "checked");
  EXPECT_EQ(vendor_.Count("/vcek/v1/Milan/cert_chain"), 1);
  EXPECT_EQ(vendor_.Count("/vcek/v1/Milan/crl"), 1);
  // Not allowed: refused.
  EXPECT_FALSE(service->Verify(*report, "sev-snp", clock_.Now(), /*allow_sim=*/false).genuine);
  // A revoked VCEK: listed in the sim ARK's CRL.
  attest::SimVendorOptions r = o;
  r.revoked = true;
  const std::string rdir = tmp_.File("snp-revoked");
  auto revoked = attest::SimVendor::Create(rdir, r);
  ASSERT_TRUE(revoked.ok());
  auto evidence = (*revoked)->snp()->Evidence(attest::SimSnpReportOptions{}, std::vector<uint8_t>(64, 3));
  ASSERT_TRUE(evidence.ok());
  vendor_.ServeAmd(rdir);
  v = service->Verify(*evidence, "", clock_.Now());
  EXPECT_FALSE(v.genuine);
  ASSERT_TRUE(v.error.has_value());
  EXPECT_EQ(v.error->reason(), attest::kSnpCertRevoked) << v.error->message();
}

TEST_P(CollateralServiceTest, KdsIsPacedAndHonoursRetryAfter) {
  vendor_.ServeAmd(kMilan);
  auto service = MakeService(db_.get());
  // 429 with Retry-After: 1 for the first cert_chain request.
  http::Response limited = http::Response::Error(429, "too_many_requests", "slow down");
  limited.headers.emplace_back("Retry-After", "1");
  vendor_.Override("/vcek/v1/Milan/cert_chain", limited, 1);
  Outcome o = service->RefreshOne(kAmdCertChain, "Milan");
  EXPECT_EQ(o.result, "failed");
  EXPECT_EQ(o.reason, kRateLimited);
  o = service->RefreshOne(kAmdCertChain, "Milan");
  EXPECT_EQ(o.result, "stored") << o.message;
  o = service->RefreshOne(kAmdCertChain, "Milan");
  EXPECT_EQ(o.result, "unchanged") << o.message;
  auto t = vendor_.Times("/vcek/v1/");
  ASSERT_EQ(t.size(), 3u);
  EXPECT_GE(t[1] - t[0], std::chrono::milliseconds(950));  // Retry-After: 1
  EXPECT_GE(t[2] - t[1], std::chrono::milliseconds(190));  // kds_min_interval 200 ms
  EXPECT_EQ(Failures(*service, "kds", kAmdCertChain), 1);
}

TEST(CollateralFetch, UrlDecodeAndPlatformDetection) {
  EXPECT_EQ(UrlDecodeComponent("-----BEGIN%20CERTIFICATE-----%0AMII%2B%2f%"), "-----BEGIN CERTIFICATE-----\nMII+/%");
  EXPECT_EQ(DetectPlatform(std::vector<uint8_t>(10, 0)), "");
  std::vector<uint8_t> snp(1184, 0);
  snp[0] = 2;
  EXPECT_EQ(DetectPlatform(snp), "sev-snp");
  auto quote = ReadWholeFile(kTdxOct + "/quote.dat");
  ASSERT_TRUE(quote.ok());
  EXPECT_EQ(DetectPlatform(AsBytes(*quote)), "tdx");
  std::array<uint8_t, 64> hwid{};
  hwid[0] = 0xAB;
  EXPECT_EQ(VcekKey("Milan", hwid, 0x4400000000000302ULL).substr(0, 10), "Milan/ab00");
  EXPECT_EQ(VcekKey("Milan", hwid, 0x4400000000000302ULL).substr(6 + 128), "/4400000000000302");
}

INSTANTIATE_TEST_SUITE_P(Backends, CollateralServiceTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& i) {
                           return i.param == Backend::kSqlite ? std::string("sqlite") : std::string("postgres");
                         });

}  // namespace
}  // namespace vouch::collateral
