// The collateral service (service.h): store, fetch, refresh, import/export, verification.
#include "collateral/service.h"

#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <system_error>

#include <nlohmann/json.hpp>

#include "attest/amd_roots.h"
#include "attest/dcap_collateral.h"
#include "attest/dcap_verifier.h"
#include "attest/intel_root.h"
#include "attest/pck_extension.h"
#include "attest/signed_by.h"
#include "attest/sim_vendor.h"
#include "attest/snp_verifier.h"
#include "base/encoding.h"
#include "base/file.h"
#include "base/url_component.h"
#include "collateral/fetch.h"
#include "collateral/items.h"
#include "crypto/digest.h"
#include "crypto/x509.h"
#include "evidence/dcap_quote.h"
#include "evidence/snp_cert_table.h"
#include "evidence/snp_report.h"
#include "store/audit.h"

namespace vouch::collateral {

using internal::Candidate;
using internal::Checked;
using internal::CheckContext;
using nlohmann::json;
using store::Row;
using store::Rows;
using store::Transaction;

const std::vector<std::string_view>& Kinds() {
  static const std::vector<std::string_view> kKinds = {kSgxTcbInfo, kTdxTcbInfo, kQeIdentity, kTdQeIdentity, kPckCrl,
                                                       kRootCaCrl,  kAmdVcek,    kAmdCertChain, kAmdCrl};
  return kKinds;
}

bool IsKind(std::string_view kind) {
  return std::find(Kinds().begin(), Kinds().end(), kind) != Kinds().end();
}

std::string VcekKey(std::string_view product, std::span<const uint8_t> hwid, uint64_t reported_tcb) {
  char tcb[17];
  std::snprintf(tcb, sizeof tcb, "%016llx", static_cast<unsigned long long>(reported_tcb));
  std::string h = HexEncode(hwid);
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
  return std::string(product) + "/" + h + "/" + tcb;
}

std::string DetectPlatform(std::span<const uint8_t> e) {
  if (e.size() >= 8 && e[2] == 2 && e[3] == 0 && evidence::LooksLikeDcapQuote(e)) {
    const uint32_t tee = static_cast<uint32_t>(e[4]) | static_cast<uint32_t>(e[5]) << 8 |
                         static_cast<uint32_t>(e[6]) << 16 | static_cast<uint32_t>(e[7]) << 24;
    return tee == evidence::kTeeTypeTdx ? "tdx" : "sgx";
  }
  if (e.size() >= evidence::kSnpReportSize && e[1] == 0 && e[2] == 0 && e[3] == 0 && e[0] >= 2 && e[0] <= 5) {
    return "sev-snp";
  }
  return "";
}

namespace {

constexpr int64_t kMaxTime = 253402300799;  // 9999-12-31T23:59:59Z
constexpr std::chrono::hours kRetryAfterFailure{1};
constexpr std::chrono::minutes kNegativeCacheFor{10};
constexpr size_t kMaxNegative = 4096;
constexpr size_t kMaxVerifiers = 64;

int64_t Secs(TimePoint t) {
  if (t == TimePoint::max()) return kMaxTime;
  return std::min(ToUnixSeconds(t), kMaxTime);
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool IsIntelKind(std::string_view kind) {
  return kind == kSgxTcbInfo || kind == kTdxTcbInfo || kind == kQeIdentity || kind == kTdQeIdentity ||
         kind == kPckCrl || kind == kRootCaCrl;
}

std::string TrimSlash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

// One stored row (without body) -> Item.
Item ToItem(const Row& r, TimePoint now) {
  Item it;
  it.id = r.Str("id");
  it.kind = r.Str("kind");
  it.key = r.Str("item_key");
  it.root = r.Str("root");
  it.sim = r.Int("sim") != 0;
  it.issue_date = FromUnixSeconds(r.Int("issue_date"));
  it.next_update = r.Int("next_update") >= kMaxTime ? TimePoint::max() : FromUnixSeconds(r.Int("next_update"));
  if (!r.IsNull("tcb_evaluation_data_number")) it.tcb_evaluation_data_number = r.Int("tcb_evaluation_data_number");
  it.source = r.Str("source");
  it.origin = r.Str("origin");
  it.state = std::string(now < it.next_update ? kStateValid : kStateExpired);
  it.stored_at = FromUnixSeconds(r.Int("stored_at"));
  it.sha256 = r.Str("sha256");
  return it;
}

constexpr char kMetaColumns[] =
    "id, kind, item_key, root, sim, issue_date, next_update, tcb_evaluation_data_number, source, origin, "
    "content_type, sha256, stored_at";

// Newer first: issue date, then the time it was stored.
bool Newer(const Item& a, const Item& b) {
  if (a.issue_date != b.issue_date) return a.issue_date > b.issue_date;
  return a.stored_at > b.stored_at;
}

// Marks the newest version of every (kind, key, root).
void MarkCurrent(std::vector<Item>* items) {
  std::sort(items->begin(), items->end(), [](const Item& a, const Item& b) {
    if (a.kind != b.kind) return a.kind < b.kind;
    if (a.key != b.key) return a.key < b.key;
    if (a.root != b.root) return a.root < b.root;
    return Newer(a, b);
  });
  for (size_t i = 0; i < items->size(); ++i) {
    const Item& it = (*items)[i];
    (*items)[i].current = i == 0 || (*items)[i - 1].kind != it.kind || (*items)[i - 1].key != it.key ||
                          (*items)[i - 1].root != it.root;
  }
}

// The version to use at `at`: the newest issued at or before `at`, else the oldest.
const Item* PickAt(const std::vector<Item>& versions, TimePoint at) {
  const Item* best = nullptr;
  for (const Item& v : versions) {
    if (v.issue_date <= at && (best == nullptr || Newer(v, *best))) best = &v;
  }
  if (best != nullptr) return best;
  for (const Item& v : versions) {
    if (best == nullptr || Newer(*best, v)) best = &v;
  }
  return best;
}

std::string FileSafe(std::string s) {
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  }
  return s;
}

// The product of an AMD chain folder: from a pinned ARK, else a product name in the ASK's CN.
std::string ProductOfChain(X509* ask, X509* ark) {
  if (const auto* set = attest::FindPinnedArk(ark)) return std::string(evidence::SnpProductName(set->product));
  const std::string cn = crypto::SubjectCommonName(ask);
  for (const char* p : {"Milan", "Genoa", "Turin"}) {
    if (cn.find(p) != std::string::npos) return p;
  }
  return "Milan";
}

}  // namespace

// ------------------------------------------------------------------------------------------------

struct Service::Impl {
  store::Database* db = nullptr;
  const Clock* clock = nullptr;
  ServiceOptions options;
  std::unique_ptr<internal::Pacer> kds_pacer = std::make_unique<internal::Pacer>(std::chrono::milliseconds(10000));
  mutable std::mutex stats_mu;
  Stats stats;
  // When a due refresh of (kind, key) last failed: RefreshDue waits kRetryAfterFailure before
  // asking again (an expired item the source no longer has would otherwise be asked for at every
  // check). Guarded by stats_mu.
  std::map<std::pair<std::string, std::string>, TimePoint> failed_at;
  // Items the source answered 404/410 for (or failed on), until when they are not asked for again
  // on a need (an unknown FMSPC asked through the PCCS routes must not turn every request into a
  // fetch; a source that is down must not delay every verification).
  // At most kMaxNegative entries. Guarded by stats_mu.
  std::map<std::pair<std::string, std::string>, TimePoint> not_found_until;

  TimePoint Now() const { return clock->Now(); }
  internal::FetchOptions Fetch() const {
    internal::FetchOptions f;
    f.ca_file = options.ca_file;
    f.timeout = options.request_timeout;
    return f;
  }

  void CountFailure(const std::string& source, const std::string& kind) {
    std::lock_guard<std::mutex> lock(stats_mu);
    ++stats.failures[{source, kind}];
  }

  // ---- store reads
  Result<std::vector<Item>> Versions(const std::string& kind, const std::string& key) {
    std::vector<Item> out;
    const TimePoint now = Now();
    VOUCH_RETURN_IF_ERROR(db->Read([&](Transaction& tx) -> Status {
      std::string sql = std::string("SELECT ") + kMetaColumns + " FROM collateral";
      std::vector<store::Value> params;
      std::vector<std::string> where;
      if (!kind.empty()) {
        where.push_back("kind = ?");
        params.emplace_back(kind);
      }
      if (!key.empty()) {
        where.push_back("item_key = ?");
        params.emplace_back(key);
      }
      for (size_t i = 0; i < where.size(); ++i) sql += (i == 0 ? " WHERE " : " AND ") + where[i];
      VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(sql, params));
      for (const Row& r : rows) out.push_back(ToItem(r, now));
      return Status::Ok();
    }));
    MarkCurrent(&out);
    return out;
  }

  Result<RawItem> Raw(const Item& item) {
    RawItem raw;
    raw.item = item;
    VOUCH_RETURN_IF_ERROR(db->Read([&](Transaction& tx) -> Status {
      VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT body, issuer_chain, content_type FROM collateral WHERE id = ?",
                                                {item.id}, "collateral item"));
      auto body = r.Bytes("body");
      raw.body.assign(body.begin(), body.end());
      raw.issuer_chain_pem = r.Str("issuer_chain");
      raw.content_type = r.Str("content_type");
      return Status::Ok();
    }));
    return raw;
  }

  // Sim roots appearing in stored issuer chains (candidates for sim root CA CRLs).
  std::vector<crypto::X509Ptr> SimRoots() {
    std::vector<crypto::X509Ptr> out;
    std::set<std::string> seen;
    (void)db->Read([&](Transaction& tx) -> Status {
      VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT DISTINCT root, issuer_chain FROM collateral WHERE sim = 1 AND "
                                                 "kind IN ('sgx_tcb_info', 'tdx_tcb_info', 'qe_identity', "
                                                 "'td_qe_identity', 'pck_crl')"));
      for (const Row& r : rows) {
        if (!seen.insert(r.Str("root")).second) continue;
        auto certs = crypto::CertsFromPem(r.Str("issuer_chain"));
        if (certs.ok() && !certs->empty()) out.push_back(std::move(certs->back()));
      }
      return Status::Ok();
    });
    return out;
  }

  // Stored AMD chains for a product: (ASK, ARK) pairs, non-sim first.
  std::vector<std::pair<crypto::X509Ptr, crypto::X509Ptr>> AmdChains(const std::string& product) {
    std::vector<std::pair<crypto::X509Ptr, crypto::X509Ptr>> out;
    auto versions = Versions(std::string(kAmdCertChain), product);
    if (!versions.ok()) return out;
    std::stable_sort(versions->begin(), versions->end(), [](const Item& a, const Item& b) { return !a.sim && b.sim; });
    for (const Item& v : *versions) {
      if (!v.current) continue;
      auto raw = Raw(v);
      if (!raw.ok()) continue;
      auto certs = crypto::CertsFromPem(raw->body);
      if (!certs.ok() || certs->size() != 2) continue;
      crypto::X509Ptr a = std::move((*certs)[0]), b = std::move((*certs)[1]);
      if (attest::SignedBy(a.get(), a.get())) std::swap(a, b);
      out.emplace_back(std::move(a), std::move(b));
    }
    return out;
  }

  // ---- checking and storing
  // Checks a candidate; AMD VCEKs and CRLs are tried against the extra anchors given, then the
  // stored chains of their product, then the built-in roots.
  Result<Checked> Check(const Candidate& c, const std::vector<std::pair<X509*, X509*>>& extra_anchors = {}) {
    CheckContext ctx;
    ctx.allow_sim = options.allow_sim;
    std::vector<crypto::X509Ptr> sim_roots;
    if (c.kind == kRootCaCrl) {
      sim_roots = SimRoots();
      for (const auto& r : sim_roots) ctx.sim_roots.push_back(r.get());
    }
    if (c.kind != kAmdVcek && c.kind != kAmdCrl) return internal::CheckCandidate(c, ctx);
    std::vector<std::pair<X509*, X509*>> anchors = extra_anchors;
    const std::string product = c.key.substr(0, c.key.find('/'));
    auto stored = AmdChains(product);
    for (const auto& [ask, ark] : stored) anchors.emplace_back(ask.get(), ark.get());
    anchors.emplace_back(nullptr, nullptr);  // built-in
    Result<Checked> first = InvalidArgument("no anchors", std::string(kBadIssuerChain));
    for (size_t i = 0; i < anchors.size(); ++i) {
      ctx.amd_ask = anchors[i].first;
      ctx.amd_ark = anchors[i].second;
      auto r = internal::CheckCandidate(c, ctx);
      if (r.ok()) return r;
      if (i == 0 || r.status().reason() == kMalformed) first = r;
      if (r.status().reason() == kMalformed) break;
    }
    return first;
  }

  Outcome Refuse(const Candidate& c, const std::string& source, const std::string& origin, const Status& why) {
    Outcome o{c.kind, c.key, origin, "refused", why.reason(), why.message()};
    CountFailure(source, c.kind);
    (void)db->Write([&](Transaction& tx) -> Status {
      return store::AppendAudit(tx, Now(), "system", "collateral.store", c.kind + ":" + c.key, "denied:" + why.reason(),
                                {{"source", source}, {"origin", origin}, {"message", why.message()}});
    });
    if (options.on_refused) options.on_refused(o, source);
    return o;
  }

  // Verifies and stores. `strict`: a lower tcbEvaluationDataNumber than held is refused (fetched
  // items; imports may add older history, never a newer document with a lower number).
  Outcome CheckAndStore(const Candidate& c, const std::string& source, const std::string& origin, bool strict,
                        const std::vector<std::pair<X509*, X509*>>& extra_anchors = {}) {
    auto checked = Check(c, extra_anchors);
    if (!checked.ok()) return Refuse(c, source, origin, checked.status());
    const Checked& k = *checked;
    const std::string sha = HexEncode(crypto::Sha256(AsBytes(c.body)));
    const TimePoint now = Now();
    Outcome o{c.kind, k.key, origin, "stored", "", ""};
    Status st = db->Write([&](Transaction& tx) -> Status {
      if (k.tcb_evaluation_data_number) {
        VOUCH_ASSIGN_OR_RETURN(Rows held, tx.Query("SELECT issue_date, tcb_evaluation_data_number FROM collateral WHERE "
                                                   "kind = ? AND item_key = ? AND root = ? ORDER BY issue_date DESC",
                                                   {c.kind, k.key, k.root}));
        for (const Row& h : held) {
          if (h.IsNull("tcb_evaluation_data_number")) continue;
          const int64_t held_n = h.Int("tcb_evaluation_data_number");
          const bool newer_doc = Secs(k.issue_date) >= h.Int("issue_date");
          if (*k.tcb_evaluation_data_number < held_n && (strict || newer_doc)) {
            return FailedPrecondition("tcbEvaluationDataNumber " + std::to_string(*k.tcb_evaluation_data_number) +
                                          " is lower than the " + std::to_string(held_n) + " held",
                                      std::string(kEvaluationRollback));
          }
        }
      }
      VOUCH_ASSIGN_OR_RETURN(Rows same, tx.Query("SELECT id FROM collateral WHERE kind = ? AND item_key = ? AND root = ? "
                                                 "AND sha256 = ?",
                                                 {c.kind, k.key, k.root, sha}));
      if (!same.empty()) {
        o.result = "unchanged";
        return Status::Ok();
      }
      const std::string id = c.kind + ":" + k.key + ":" + k.root + ":" + sha.substr(0, 16);
      VOUCH_RETURN_IF_ERROR(
          tx.Exec("INSERT INTO collateral (id, kind, item_key, root, sim, issue_date, next_update, "
                  "tcb_evaluation_data_number, source, origin, content_type, body, issuer_chain, sha256, stored_at) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                  {id, c.kind, k.key, k.root, int64_t{k.sim ? 1 : 0}, Secs(k.issue_date), Secs(k.next_update),
                   k.tcb_evaluation_data_number ? store::Value(*k.tcb_evaluation_data_number) : store::Value(nullptr),
                   source, origin, k.content_type, store::Blob(c.body.begin(), c.body.end()), k.issuer_chain_pem, sha,
                   Secs(now)})
              .status());
      // Keep the newest keep_versions versions.
      VOUCH_ASSIGN_OR_RETURN(Rows all, tx.Query("SELECT id FROM collateral WHERE kind = ? AND item_key = ? AND root = ? "
                                                "ORDER BY issue_date DESC, stored_at DESC",
                                                {c.kind, k.key, k.root}));
      for (size_t i = static_cast<size_t>(std::max(1, options.keep_versions)); i < all.size(); ++i) {
        VOUCH_RETURN_IF_ERROR(tx.Exec("DELETE FROM collateral WHERE id = ?", {all[i].Str("id")}).status());
      }
      json detail = {{"source", source}, {"origin", origin}, {"root", k.root}, {"sha256", sha},
                     {"issue_date", FormatRfc3339(k.issue_date)}};
      if (k.next_update != TimePoint::max()) detail["next_update"] = FormatRfc3339(k.next_update);
      if (k.tcb_evaluation_data_number) detail["tcb_evaluation_data_number"] = *k.tcb_evaluation_data_number;
      return store::AppendAudit(tx, now, "system", "collateral.store", c.kind + ":" + k.key, "ok", detail);
    });
    if (!st.ok()) {
      if (st.reason() == kEvaluationRollback) return Refuse(c, source, origin, st);
      CountFailure(source, c.kind);
      return Outcome{c.kind, k.key, origin, "failed", st.reason(), st.message()};
    }
    return o;
  }

  // ---- fetching
  Result<Candidate> FetchIntel(const std::string& kind, const std::string& key, std::string* url_out) {
    if (options.pccs_url.empty()) return FailedPrecondition("no --pccs-url configured", std::string(kNoSource));
    const std::string base = TrimSlash(options.pccs_url);
    const std::string update = "update=" + (options.tcb_update.empty() ? std::string("standard") : options.tcb_update);
    std::string url, chain_header;
    if (kind == kSgxTcbInfo || kind == kTdxTcbInfo) {
      if (key.size() != 12 || !HexDecode(key).ok())
        return InvalidArgument("FMSPC must be 12 hex digits", std::string(kInvalidKey));
      url = base + (kind == kSgxTcbInfo ? "/sgx" : "/tdx") + "/certification/v4/tcb?fmspc=" + Lower(key) + "&" + update;
      chain_header = "tcb-info-issuer-chain";
    } else if (kind == kQeIdentity || kind == kTdQeIdentity) {
      url = base + (kind == kQeIdentity ? "/sgx" : "/tdx") + "/certification/v4/qe/identity?" + update;
      chain_header = "sgx-enclave-identity-issuer-chain";
    } else if (kind == kPckCrl) {
      if (key != "processor" && key != "platform")
        return InvalidArgument("ca must be processor or platform", std::string(kInvalidKey));
      url = base + "/sgx/certification/v4/pckcrl?ca=" + key + "&encoding=der";
      chain_header = "sgx-pck-crl-issuer-chain";
    } else if (kind == kRootCaCrl) {
      url = base.find("api.trustedservices.intel.com") != std::string::npos
                ? "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
                : base + "/sgx/certification/v4/rootcacrl";
    } else {
      return InvalidArgument("not an Intel kind", std::string(kInvalidKind));
    }
    *url_out = url;
    {
      std::lock_guard<std::mutex> lock(stats_mu);
      ++stats.fetches;
    }
    VOUCH_ASSIGN_OR_RETURN(internal::HttpAnswer a, internal::HttpsGet(url, Fetch()));
    VOUCH_RETURN_IF_ERROR(AnswerStatus(a, url));
    Candidate c{kind, key, a.body, ""};
    if (!chain_header.empty()) {
      std::string chain = a.Header(chain_header);
      if (chain.empty() && kind != kPckCrl && kind != kQeIdentity && kind != kTdQeIdentity) {
        chain = a.Header("sgx-tcb-info-issuer-chain");  // the v3 name
      }
      c.issuer_chain_pem = UrlDecodeComponent(chain);
    }
    return c;
  }

  static Status AnswerStatus(const internal::HttpAnswer& a, const std::string& url) {
    if (a.status == 200) return Status::Ok();
    const std::string what = "GET " + url + ": HTTP " + std::to_string(a.status);
    if (a.status == 404 || a.status == 410) return NotFound(what, std::string(kNotFoundAtSource));
    if (a.status == 429) {
      return ResourceExhausted(what + " (Retry-After " + a.Header("retry-after") + ")", std::string(kRateLimited));
    }
    return Unavailable(what, std::string(kFetchFailed));
  }

  Result<Candidate> FetchAmd(const std::string& kind, const std::string& key, std::string* url_out) {
    if (options.kds_url.empty()) return FailedPrecondition("no --kds-url configured", std::string(kNoSource));
    const std::string base = TrimSlash(options.kds_url);
    std::string url;
    if (kind == kAmdCertChain) {
      url = base + "/vcek/v1/" + key + "/cert_chain";
    } else if (kind == kAmdCrl) {
      url = base + "/vcek/v1/" + key + "/crl";
    } else if (kind == kAmdVcek) {
      // product/hwid/tcb
      auto s1 = key.find('/');
      auto s2 = key.rfind('/');
      if (s1 == std::string::npos || s2 == s1)
        return InvalidArgument("VCEK key must be product/hwid/tcb", std::string(kInvalidKey));
      const std::string product = key.substr(0, s1);
      std::string hwid = key.substr(s1 + 1, s2 - s1 - 1);
      auto tcb = HexDecode(key.substr(s2 + 1));
      if (!tcb.ok() || tcb->size() != 8 || !HexDecode(hwid).ok())
        return InvalidArgument("bad VCEK key", std::string(kInvalidKey));
      uint64_t raw = 0;
      for (int i = 0; i < 8; ++i) raw = raw << 8 | (*tcb)[static_cast<size_t>(i)];
      auto p = evidence::SnpProductFromName(product);
      auto t = evidence::SnpTcbVersion::Decode(raw, p);
      auto two = [](int v) {
        char b[8];
        std::snprintf(b, sizeof b, "%02d", v);
        return std::string(b);
      };
      std::string q;
      if (p == evidence::SnpProduct::kTurin) {
        if (hwid.size() > 16) hwid = hwid.substr(0, 16);
        q = "fmcSPL=" + two(t.fmc.value_or(0)) + "&";
      }
      q += "blSPL=" + two(t.bootloader) + "&teeSPL=" + two(t.tee) + "&snpSPL=" + two(t.snp) + "&ucodeSPL=" + two(t.microcode);
      url = base + "/vcek/v1/" + product + "/" + hwid + "?" + q;
    } else {
      return InvalidArgument("not an AMD kind", std::string(kInvalidKind));
    }
    *url_out = url;
    VOUCH_RETURN_IF_ERROR(kds_pacer->Wait(std::chrono::duration_cast<std::chrono::milliseconds>(options.request_timeout) * 2));
    {
      std::lock_guard<std::mutex> lock(stats_mu);
      ++stats.fetches;
    }
    auto a = internal::HttpsGet(url, Fetch());
    if (!a.ok()) {
      kds_pacer->Record(503, "");
      return a.status();
    }
    kds_pacer->Record(a->status, a->Header("retry-after"));
    VOUCH_RETURN_IF_ERROR(AnswerStatus(*a, url));
    return Candidate{kind, key, a->body, ""};
  }

  Outcome FetchAndStore(const std::string& kind, const std::string& key,
                        const std::vector<std::pair<X509*, X509*>>& extra_anchors = {}, bool on_need = true) {
    const bool intel = IsIntelKind(kind);
    const std::string source(intel ? kSourcePcs : kSourceKds);
    const TimePoint now = Now();
    if (on_need) {
      std::lock_guard<std::mutex> lock(stats_mu);
      auto it = not_found_until.find({kind, key});
      if (it != not_found_until.end() && now < it->second) {
        return Outcome{kind, key, "", "failed", std::string(kFetchFailed),
                       "the source did not have it or failed when last asked (asked again after " +
                           FormatRfc3339(it->second) + ")"};
      }
    }
    std::string url;
    auto c = intel ? FetchIntel(kind, key, &url) : FetchAmd(kind, key, &url);
    if (!c.ok() && c.status().reason() != kNoSource) {
      // Not asked for again on a need for a while: 10 minutes after a 404/410, a minute after a
      // failure (a source that is down or slow would otherwise delay every verification).
      std::lock_guard<std::mutex> lock(stats_mu);
      if (not_found_until.size() >= kMaxNegative) not_found_until.clear();
      not_found_until[{kind, key}] =
          now + (c.status().reason() == kNotFoundAtSource ? std::chrono::duration_cast<std::chrono::seconds>(kNegativeCacheFor)
                                                          : std::chrono::seconds(60));
    }
    if (!c.ok()) {
      if (c.status().reason() != kNoSource) CountFailure(source, kind);
      return Outcome{kind, key, url, "failed", c.status().reason(), c.status().message()};
    }
    if (kind == kAmdVcek || kind == kAmdCrl) {
      // Signed by a chain not held yet (a KDS serving another ARK than AMD's built-in ones, e.g. a
      // sim): fetch the product's cert_chain (verified on its own) and check the answer again.
      auto checked = Check(*c, extra_anchors);
      const std::string product = key.substr(0, key.find('/'));
      if (!checked.ok() && (checked.status().reason() == kBadSignature || checked.status().reason() == kBadIssuerChain) &&
          AmdChains(product).empty()) {
        Outcome chain = FetchAndStore(std::string(kAmdCertChain), product, {}, on_need);
        (void)chain;
      }
    }
    return CheckAndStore(*c, source, url, /*strict=*/true, extra_anchors);
  }

  // ---- import
  Report Import(const std::map<std::string, std::string>& files, const std::string& origin);
  Report ImportManifest(const std::map<std::string, std::string>& files, const std::string& origin);

  // ---- verification
  Result<std::shared_ptr<const attest::DcapCollateral>> DcapCollateralFor(const evidence::DcapQuote& q, TimePoint at,
                                                                          std::string* trusted_root_pem,
                                                                          std::string* cache_key = nullptr);
  // Verifiers made from the same stored versions are kept (their collateral signatures are
  // checked once, and each keeps its cache of verified PCK chains). At most kMaxVerifiers.
  std::mutex verifiers_mu;
  std::map<std::string, std::shared_ptr<const attest::DcapVerifier>> verifiers;
  Result<RawItem> ItemFor(const std::string& kind, const std::string& key, const std::string& root, TimePoint at,
                          bool fetch);
  attest::Verdict VerifySnp(std::span<const uint8_t> evidence, TimePoint at, bool allow_sim);
};

// ---------------------------------------------------------------- import

Report Service::Impl::ImportManifest(const std::map<std::string, std::string>& files, const std::string& origin) {
  Report report;
  auto manifest = json::parse(files.at("manifest.json"), nullptr, false);
  auto add = [&report](Outcome o) {
    if (o.result == "stored") ++report.stored;
    if (o.result == "unchanged") ++report.unchanged;
    if (o.result == "refused") ++report.refused;
    if (o.result == "failed") ++report.failed;
    report.outcomes.push_back(std::move(o));
  };
  if (!manifest.is_object() || !manifest.value("items", json()).is_array()) {
    add(Outcome{"", "", origin + "/manifest.json", "refused", std::string(kMalformed), "manifest.json: no \"items\" array"});
    return report;
  }
  // Chains first (VCEKs and CRLs of a sim product need them), then TCB Info / identities / PCK
  // CRLs (the root CA CRL of a sim root needs a stored chain naming that root), then the rest.
  auto rank = [](const std::string& kind) {
    if (kind == kAmdCertChain) return 0;
    if (kind == kRootCaCrl || kind == kAmdCrl || kind == kAmdVcek) return 2;
    return 1;
  };
  std::vector<json> items(manifest["items"].begin(), manifest["items"].end());
  std::stable_sort(items.begin(), items.end(), [&](const json& a, const json& b) {
    return rank(a.value("kind", "")) < rank(b.value("kind", ""));
  });
  for (const json& e : items) {
    if (!e.is_object()) continue;
    const std::string kind = e.value("kind", ""), key = e.value("key", ""), body_file = e.value("file", ""),
                      chain_file = e.value("chain_file", "");
    auto body = files.find(body_file);
    if (!IsKind(kind) || body == files.end()) {
      add(Outcome{kind, key, origin + "/" + body_file, "refused", std::string(kMalformed),
                  "manifest entry with an unknown kind or a missing file"});
      continue;
    }
    Candidate c{kind, key, body->second, ""};
    if (auto ch = files.find(chain_file); !chain_file.empty() && ch != files.end()) c.issuer_chain_pem = ch->second;
    add(CheckAndStore(c, std::string(kSourceImport), origin + "/" + body_file, /*strict=*/false));
  }
  return report;
}

Report Service::Impl::Import(const std::map<std::string, std::string>& files, const std::string& origin) {
  if (files.count("manifest.json") != 0) return ImportManifest(files, origin);
  Report report;
  auto add = [&report](Outcome o) {
    if (o.result == "stored") ++report.stored;
    if (o.result == "unchanged") ++report.unchanged;
    if (o.result == "refused") ++report.refused;
    if (o.result == "failed") ++report.failed;
    report.outcomes.push_back(std::move(o));
  };
  auto file = [&files](const char* name) -> const std::string* {
    auto it = files.find(name);
    return it == files.end() ? nullptr : &it->second;
  };
  const std::string source(kSourceImport);
  // ---- Intel (DCAP file names, attest/dcap_collateral.h)
  const std::string* sign_chain = file(attest::kTcbSignChainFile);
  if (const std::string* tcb = file(attest::kTcbInfoFile)) {
    auto info = evidence::ParseTcbInfo(*tcb);
    std::string kind(info.ok() && info->is_tdx() ? kTdxTcbInfo : kSgxTcbInfo);
    add(CheckAndStore(Candidate{kind, "", *tcb, sign_chain ? *sign_chain : ""}, source,
                      origin + "/" + attest::kTcbInfoFile, false));
  }
  if (const std::string* qe = file(attest::kQeIdentityFile)) {
    auto id = evidence::ParseEnclaveIdentity(*qe);
    std::string kind(id.ok() && id->id == "TD_QE" ? kTdQeIdentity : kQeIdentity);
    add(CheckAndStore(Candidate{kind, "", *qe, sign_chain ? *sign_chain : ""}, source,
                      origin + "/" + attest::kQeIdentityFile, false));
  }
  if (const std::string* crl = file(attest::kPckCrlFile)) {
    // The PCK CRL's issuer chain: the PCK CA and the root, the last two of pckSignChain.pem (or of
    // pckCert.pem + pckSignChain.pem).
    std::string chain;
    if (const std::string* pcs = file(attest::kPckSignChainFile)) {
      auto certs = crypto::CertsFromPem(*pcs);
      if (certs.ok() && certs->size() >= 2) {
        chain = internal::ChainPem({(*certs)[certs->size() - 2].get(), (*certs)[certs->size() - 1].get()});
      }
    }
    add(CheckAndStore(Candidate{std::string(kPckCrl), "", *crl, chain}, source, origin + "/" + attest::kPckCrlFile, false));
  }
  if (const std::string* crl = file(attest::kRootCaCrlFile)) {
    const std::string* root = file(attest::kTrustedRootFile);
    add(CheckAndStore(Candidate{std::string(kRootCaCrl), "root", *crl, root ? *root : ""}, source,
                      origin + "/" + attest::kRootCaCrlFile, false));
  }
  // ---- AMD: cert_chain.pem (or *ask_ark*.pem), vcek.der (or *vcek*.der), crl.der
  crypto::X509Ptr ask, ark;
  std::string product;
  for (const auto& [name, bytes] : files) {
    if (name != "cert_chain.pem" && (name.find("ask_ark") == std::string::npos || name.find(".pem") == std::string::npos)) {
      continue;
    }
    auto certs = crypto::CertsFromPem(bytes);
    if (!certs.ok()) continue;
    X509* found_ark = nullptr;
    for (auto& c : *certs) {
      if (attest::SignedBy(c.get(), c.get())) found_ark = c.get();
    }
    if (found_ark == nullptr) continue;
    for (auto& c : *certs) {
      if (c.get() == found_ark || !attest::SignedBy(c.get(), found_ark)) continue;
      if (crypto::SubjectCommonName(c.get()).find("VLEK") != std::string::npos) continue;  // the ASVK
      std::string prod = ProductOfChain(c.get(), found_ark);
      std::string pem = internal::ChainPem({c.get(), found_ark});
      add(CheckAndStore(Candidate{std::string(kAmdCertChain), prod, pem, ""}, source, origin + "/" + name, false));
      if (!ark) {
        X509_up_ref(c.get());
        ask.reset(c.get());
        X509_up_ref(found_ark);
        ark.reset(found_ark);
        product = prod;
      }
      break;
    }
  }
  std::vector<std::pair<X509*, X509*>> anchors;
  if (ark) anchors.emplace_back(ask.get(), ark.get());
  for (const auto& [name, bytes] : files) {
    const bool vcek_name = name == "vcek.der" || (name.find("vcek") != std::string::npos &&
                                                  name.size() > 4 && name.substr(name.size() - 4) == ".der");
    if (!vcek_name) continue;
    auto cert = crypto::CertFromDer(AsBytes(bytes));
    if (!cert.ok()) {
      add(Outcome{std::string(kAmdVcek), "", origin + "/" + name, "refused", std::string(kMalformed), "not a DER certificate"});
      continue;
    }
    auto facts = internal::ReadVcekFacts(cert->get());
    if (!facts.ok()) {
      add(Outcome{std::string(kAmdVcek), "", origin + "/" + name, "refused", std::string(kMalformed), facts.status().message()});
      continue;
    }
    add(CheckAndStore(Candidate{std::string(kAmdVcek), VcekKey(facts->product, facts->hwid, facts->TcbRaw()), bytes, ""},
                      source, origin + "/" + name, false, anchors));
    if (product.empty()) product = facts->product;
  }
  if (const std::string* crl = file("crl.der")) {
    if (product.empty()) {
      // Which product's ARK signed it: try the built-in ones.
      auto parsed = crypto::CrlFromDerOrPem(AsBytes(*crl));
      for (const auto& set : attest::BuiltinAmdRoots()) {
        if (parsed.ok() && attest::CrlSignedBy(parsed->get(), set.ark)) product = std::string(evidence::SnpProductName(set.product));
      }
    }
    add(CheckAndStore(Candidate{std::string(kAmdCrl), product.empty() ? "Milan" : product, *crl, ""}, source,
                      origin + "/crl.der", false, anchors));
  }
  return report;
}

// ---------------------------------------------------------------- verification

Result<RawItem> Service::Impl::ItemFor(const std::string& kind, const std::string& key, const std::string& root,
                                       TimePoint at, bool fetch) {
  auto pick = [&]() -> Result<RawItem> {
    VOUCH_ASSIGN_OR_RETURN(std::vector<Item> versions, Versions(kind, key));
    std::vector<Item> of_root;
    for (Item& v : versions) {
      if (v.root == root) of_root.push_back(std::move(v));
    }
    const Item* it = PickAt(of_root, at);
    if (it == nullptr) return NotFound("no " + kind + " " + key + " held", std::string(kNotFoundAtSource));
    return Raw(*it);
  };
  auto held = pick();
  const bool sourced = IsIntelKind(kind) ? !options.pccs_url.empty() : !options.kds_url.empty();
  if (!fetch || !sourced) return held;
  // First need, or the copy held has expired and `at` is now: fetch (what is held stays in use
  // when the source is down or answers badly).
  const TimePoint now = Now();
  const bool stale = held.ok() && held->item.next_update <= at && at >= now - std::chrono::minutes(5);
  if (held.ok() && !stale) return held;
  Outcome o = FetchAndStore(kind, key);
  if (o.result == "stored" || o.result == "unchanged") {
    auto again = pick();
    if (again.ok()) return again;
  }
  return held;
}

Result<std::shared_ptr<const attest::DcapCollateral>> Service::Impl::DcapCollateralFor(const evidence::DcapQuote& q,
                                                                                       TimePoint at,
                                                                                       std::string* trusted_root_pem,
                                                                                       std::string* cache_key) {
  if (q.cert_data.type != static_cast<uint16_t>(evidence::CertDataType::kPckChain)) {
    return NotFound("the quote carries no PCK certificate chain (certification data type " +
                        std::to_string(q.cert_data.type) + ")",
                    std::string(kNotFoundAtSource));
  }
  std::string pem(q.cert_data.data.begin(), q.cert_data.data.end());
  while (!pem.empty() && pem.back() == '\0') pem.pop_back();
  auto certs = crypto::CertsFromPem(pem);
  if (!certs.ok() || certs->size() < 2)
    return InvalidArgument("unreadable PCK chain in the quote",
                           std::string(attest::kDcapMalformedPckChain));
  X509* leaf = certs->front().get();
  X509* root = certs->back().get();
  const std::string root_label = internal::RootLabel(root);
  const std::string root_key = root_label.rfind("sim:", 0) == 0 ? root_label : std::string("intel");
  auto ext = attest::ParsePckSgxExtension(leaf);
  if (!ext.ok())
    return InvalidArgument("PCK certificate: " + ext.status().message(),
                           std::string(attest::kDcapMalformedPckExtension));
  const std::string fmspc = Lower(HexEncode(ext->fmspc));
  const std::string issuer_cn = [&] {
    std::string n = crypto::NameToString(X509_get_issuer_name(leaf));
    return n;
  }();
  const std::string ca = issuer_cn.find("Platform") != std::string::npos ? "platform" : "processor";
  const bool tdx = q.is_tdx();
  attest::CollateralFiles files;
  auto tcb = ItemFor(std::string(tdx ? kTdxTcbInfo : kSgxTcbInfo), fmspc, root_key, at, true);
  if (tcb.ok()) {
    files.tcb_info_json = tcb->body;
    files.tcb_sign_chain_pem = tcb->issuer_chain_pem;
  }
  auto qe = ItemFor(std::string(tdx ? kTdQeIdentity : kQeIdentity), tdx ? "TD_QE" : "QE", root_key, at, true);
  if (qe.ok()) {
    files.qe_identity_json = qe->body;
    if (!files.tcb_sign_chain_pem) files.tcb_sign_chain_pem = qe->issuer_chain_pem;
  }
  auto pck_crl = ItemFor(std::string(kPckCrl), ca, root_key, at, true);
  if (pck_crl.ok()) files.pck_crl = pck_crl->body;
  auto root_crl = ItemFor(std::string(kRootCaCrl), "root", root_key, at, true);
  if (root_crl.ok()) files.root_ca_crl = root_crl->body;
  if (!tcb.ok() && !qe.ok() && !pck_crl.ok() && !root_crl.ok()) {
    return NotFound("no collateral held or fetched for FMSPC " + fmspc + " (" + tcb.status().message() + ")",
                    std::string(kNotFoundAtSource));
  }
  if (root_key != "intel") {
    auto root_pem = crypto::CertToPem(root);
    if (root_pem.ok()) {
      files.trusted_root_pem = *root_pem;
      *trusted_root_pem = *root_pem;
    }
  }
  if (cache_key != nullptr) {
    *cache_key = root_label;
    for (const Result<RawItem>* r : {&tcb, &qe, &pck_crl, &root_crl}) *cache_key += "|" + (r->ok() ? (*r)->item.id : "-");
  }
  return attest::DcapCollateral::Create(files);
}

attest::Verdict Service::Impl::VerifySnp(std::span<const uint8_t> blob, TimePoint at, bool allow_sim) {
  attest::SnpTrustOptions trust;
  trust.allow_sim = allow_sim;
  attest::SnpCollateral col;
  // What the evidence brings (its certificate table) decides little here: VerifySnpEvidence
  // tries the table first. The service adds the stored/fetched VCEK and chain, and the CRL of
  // the chain's ARK.
  auto parts = evidence::SplitSnpEvidence(blob);
  auto report = parts.ok() ? evidence::ParseSnpReport(parts->report) : Result<evidence::SnpAttestationReport>(parts.status());
  if (!report.ok()) return attest::VerifySnpEvidence(blob, col, at, trust);  // the verifier names the problem
  crypto::X509Ptr leaf, ark;
  if (!parts->cert_table.empty()) {
    auto table = evidence::ParseSnpCertTable(parts->cert_table);
    if (table.ok()) {
      auto load = [&](evidence::SnpCertKind kind) -> crypto::X509Ptr {
        const auto* e = table->Find(kind);
        if (e == nullptr) return nullptr;
        auto c = crypto::CertFromDer(e->data);
        return c.ok() ? std::move(*c) : nullptr;
      };
      leaf = load(evidence::SnpCertKind::kVcek);
      if (!leaf) leaf = load(evidence::SnpCertKind::kVlek);
      ark = load(evidence::SnpCertKind::kArk);
    }
  }
  // The product: the report's CPUID (v3+), the leaf's productName, the ARK, else Milan.
  evidence::SnpProduct product = report->ProductFromCpuid();
  if (product == evidence::SnpProduct::kUnknown && leaf) {
    auto facts = internal::ReadVcekFacts(leaf.get());
    if (facts.ok()) product = evidence::SnpProductFromName(facts->product);
  }
  if (product == evidence::SnpProduct::kUnknown && ark) {
    if (const auto* set = attest::FindPinnedArk(ark.get())) product = set->product;
  }
  if (product == evidence::SnpProduct::kUnknown) product = evidence::SnpProduct::kMilan;
  const std::string product_name(evidence::SnpProductName(product));
  // No leaf in the table: the VCEK for this chip and reported TCB, held or fetched from KDS.
  if (!leaf && report->signing_key == evidence::SnpSigningKey::kVcek) {
    const bool turin = product == evidence::SnpProduct::kTurin;
    std::span<const uint8_t> hwid(report->chip_id.data(), turin ? 8 : 64);
    const std::string key = VcekKey(product_name, hwid, report->reported_tcb);
    auto versions = Versions(std::string(kAmdVcek), key);
    if (versions.ok() && versions->empty() && !options.kds_url.empty()) {
      (void)FetchAndStore(std::string(kAmdVcek), key);
      versions = Versions(std::string(kAmdVcek), key);
    }
    if (versions.ok() && !versions->empty()) {
      auto raw = Raw(versions->front());
      if (raw.ok()) {
        col.certs.emplace_back(raw->body.begin(), raw->body.end());
        auto c = crypto::CertFromDer(AsBytes(raw->body));
        if (c.ok()) leaf = std::move(*c);
      }
    }
  }
  // Stored chains of the product (a sim chain imported or fetched; AMD's are built in).
  auto stored_chains = AmdChains(product_name);
  for (const auto& [ask, chain_ark] : stored_chains) {
    std::string pem = internal::ChainPem({ask.get(), chain_ark.get()});
    col.certs.emplace_back(pem.begin(), pem.end());
    if (!ark && leaf && attest::SignedBy(leaf.get(), ask.get())) {
      X509_up_ref(chain_ark.get());
      ark.reset(chain_ark.get());
    }
  }
  // The CRL of the chain's ARK (the built-in one of the product unless the table or a stored
  // chain names another): held, else fetched; none: no revocation check (details.amd_crl).
  X509* crl_ark = ark.get();
  X509* crl_ask = nullptr;
  for (const auto& [ask, chain_ark] : stored_chains) {
    if (crl_ark != nullptr && crypto::CertToDer(chain_ark.get()).value_or(std::vector<uint8_t>{}) ==
                                  crypto::CertToDer(crl_ark).value_or(std::vector<uint8_t>{1})) {
      crl_ask = ask.get();
    }
  }
  if (crl_ark == nullptr) {
    for (const auto& set : attest::BuiltinAmdRoots()) {
      if (set.product == product) crl_ark = set.ark;
    }
  }
  const std::string root_label = internal::RootLabel(crl_ark);
  auto pick_crl = [&]() -> std::optional<RawItem> {
    auto versions = Versions(std::string(kAmdCrl), product_name);
    if (!versions.ok()) return std::nullopt;
    std::vector<Item> of_root;
    for (const Item& it : *versions) {
      if (it.root == root_label) of_root.push_back(it);
    }
    const Item* it = PickAt(of_root, at);
    if (it == nullptr) return std::nullopt;
    auto raw = Raw(*it);
    if (!raw.ok()) return std::nullopt;
    return *raw;
  };
  auto crl = pick_crl();
  if ((!crl || (crl->item.next_update <= at && at >= Now() - std::chrono::minutes(5))) && !options.kds_url.empty() &&
      crl_ark != nullptr) {
    std::vector<std::pair<X509*, X509*>> anchors;
    anchors.emplace_back(crl_ask, crl_ark);
    (void)FetchAndStore(std::string(kAmdCrl), product_name, anchors);
    if (auto again = pick_crl()) crl = again;
  }
  if (crl) col.crl.assign(crl->body.begin(), crl->body.end());
  attest::Verdict v = attest::VerifySnpEvidence(blob, col, at, trust);
  v.details["amd_crl"] = crl ? "checked" : "unavailable";
  return v;
}

// ---------------------------------------------------------------- Service

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Service::~Service() = default;

Result<std::unique_ptr<Service>> Service::Create(store::Database* db, const Clock* clock, ServiceOptions options) {
  if (db == nullptr || clock == nullptr) return InvalidArgument("the collateral service needs a store and a clock");
  for (const std::string* url : {&options.pccs_url, &options.kds_url}) {
    if (!url->empty() && url->rfind("https://", 0) != 0) {
      return InvalidArgument("collateral source " + *url + " must be an https:// URL",
                             std::string(kInvalidCollateralSource));
    }
  }
  if (options.tcb_update != "standard" && options.tcb_update != "early") {
    return InvalidArgument("tcb_update must be standard or early",
                           std::string(kInvalidCollateralSource));
  }
  auto impl = std::make_unique<Impl>();
  impl->db = db;
  impl->clock = clock;
  impl->kds_pacer = std::make_unique<internal::Pacer>(options.kds_min_interval);
  impl->options = std::move(options);
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}

const ServiceOptions& Service::options() const { return impl_->options; }
bool Service::has_intel_source() const { return !impl_->options.pccs_url.empty(); }
bool Service::has_amd_source() const { return !impl_->options.kds_url.empty(); }

Result<std::vector<Item>> Service::List(const ListFilter& filter) {
  VOUCH_ASSIGN_OR_RETURN(std::vector<Item> items, impl_->Versions(filter.kind, filter.key));
  if (!filter.all_versions) {
    items.erase(std::remove_if(items.begin(), items.end(), [](const Item& i) { return !i.current; }), items.end());
  }
  return items;
}

Result<RawItem> Service::GetForServing(std::string_view kind, std::string_view key, bool fetch) {
  if (!IsKind(kind))
    return InvalidArgument("unknown collateral kind \"" + std::string(kind) + "\"",
                           std::string(kInvalidKind));
  std::string k(key);
  if (kind == kSgxTcbInfo || kind == kTdxTcbInfo || kind == kPckCrl) k = Lower(k);
  auto current = [&]() -> std::optional<Item> {
    auto items = List(ListFilter{std::string(kind), k, false});
    if (!items.ok() || items->empty()) return std::nullopt;
    std::stable_sort(items->begin(), items->end(), [](const Item& a, const Item& b) { return !a.sim && b.sim; });
    return items->front();
  };
  auto it = current();
  if (!it && fetch) {
    (void)Ensure(kind, k);
    it = current();
  }
  if (!it) return NotFound("no " + std::string(kind) + " " + k + " held", std::string(kNotFoundAtSource));
  return impl_->Raw(*it);
}

Result<RawItem> Service::GetById(std::string_view id) {
  auto items = impl_->Versions("", "");
  if (!items.ok()) return items.status();
  for (const Item& it : *items) {
    if (it.id == id) return impl_->Raw(it);
  }
  return NotFound("no collateral item " + std::string(id), std::string(kNotFoundAtSource));
}

Report Service::RefreshDue(bool force) {
  Report report;
  auto items = List();
  if (!items.ok()) {
    report.outcomes.push_back(Outcome{"", "", "", "failed", items.status().reason(), items.status().message()});
    ++report.failed;
    return report;
  }
  const TimePoint now = impl_->Now();
  std::set<std::pair<std::string, std::string>> done;
  for (const Item& it : *items) {
    if (it.kind == kAmdVcek || it.kind == kAmdCertChain) continue;  // fixed per chip and TCB / long-lived
    const bool sourced = IsIntelKind(it.kind) ? has_intel_source() : has_amd_source();
    if (!sourced) continue;
    const bool due = it.next_update == TimePoint::max() ? false : it.next_update - impl_->options.refresh_margin <= now;
    if (!force && !due) continue;
    if (!done.insert({it.kind, it.key}).second) continue;
    if (!force) {
      std::lock_guard<std::mutex> lock(impl_->stats_mu);
      auto f = impl_->failed_at.find({it.kind, it.key});
      if (f != impl_->failed_at.end() && now - f->second < kRetryAfterFailure) continue;
    }
    Outcome o = RefreshOne(it.kind, it.key);
    {
      std::lock_guard<std::mutex> lock(impl_->stats_mu);
      if (o.result == "failed" || o.result == "refused") {
        impl_->failed_at[{it.kind, it.key}] = now;
      } else {
        impl_->failed_at.erase({it.kind, it.key});
      }
    }
    if (o.result == "stored") ++report.stored;
    if (o.result == "unchanged") ++report.unchanged;
    if (o.result == "refused") ++report.refused;
    if (o.result == "failed") ++report.failed;
    report.outcomes.push_back(std::move(o));
  }
  return report;
}

namespace {
std::string NormalKey(std::string_view kind, std::string_view key) {
  std::string k(key);
  if (kind == kSgxTcbInfo || kind == kTdxTcbInfo || kind == kPckCrl) k = Lower(k);
  if (kind == kQeIdentity) k = "QE";
  if (kind == kTdQeIdentity) k = "TD_QE";
  if (kind == kRootCaCrl) k = "root";
  return k;
}
}  // namespace

Outcome Service::RefreshOne(std::string_view kind, std::string_view key) {
  if (!IsKind(kind)) {
    return Outcome{std::string(kind), std::string(key), "", "failed", "invalid_kind", "unknown collateral kind"};
  }
  return impl_->FetchAndStore(std::string(kind), NormalKey(kind, key), {}, /*on_need=*/false);
}

Outcome Service::Ensure(std::string_view kind, std::string_view key) {
  if (!IsKind(kind)) {
    return Outcome{std::string(kind), std::string(key), "", "failed", "invalid_kind", "unknown collateral kind"};
  }
  const std::string k = NormalKey(kind, key);
  auto items = List(ListFilter{std::string(kind), k, false});
  if (items.ok() && !items->empty()) return Outcome{std::string(kind), k, "", "unchanged", "", "held"};
  return impl_->FetchAndStore(std::string(kind), k, {}, /*on_need=*/true);
}

Report Service::ImportFiles(const std::map<std::string, std::string>& files, const std::string& origin) {
  return impl_->Import(files, origin);
}

Report Service::ImportDir(const std::string& dir) {
  std::map<std::string, std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::error_code fec;
    if (!e.is_regular_file(fec)) continue;
    const std::string name = e.path().filename().string();
    if (name == attest::kSimSecretsFile) continue;  // never read the sim's private keys
    auto bytes = ReadWholeFile(e.path().string(), 8 << 20);
    if (bytes.ok()) files[name] = std::move(*bytes);
  }
  if (ec) {
    Report r;
    r.outcomes.push_back(Outcome{"", "", dir, "failed", "collateral_dir_unreadable", ec.message()});
    r.failed = 1;
    return r;
  }
  return ImportFiles(files, dir);
}

Result<std::map<std::string, std::string>> Service::ExportFiles() {
  VOUCH_ASSIGN_OR_RETURN(std::vector<Item> items, impl_->Versions("", ""));
  std::map<std::string, std::string> files;
  json list = json::array();
  int n = 0;
  for (const Item& it : items) {
    VOUCH_ASSIGN_OR_RETURN(RawItem raw, impl_->Raw(it));
    char prefix[16];
    std::snprintf(prefix, sizeof prefix, "%04d", n++);
    const std::string base = std::string(prefix) + "-" + FileSafe(it.kind) + "-" + FileSafe(it.key);
    const std::string ext = raw.content_type == "application/json" ? ".json"
                            : raw.content_type == "application/x-pem-file" ? ".pem"
                                                                            : ".der";
    files[base + ext] = raw.body;
    json e = {{"kind", it.kind}, {"key", it.key}, {"root", it.root}, {"file", base + ext}, {"sha256", it.sha256}};
    if (!raw.issuer_chain_pem.empty() && it.kind != kAmdVcek && it.kind != kAmdCrl) {
      files[base + ".chain.pem"] = raw.issuer_chain_pem;
      e["chain_file"] = base + ".chain.pem";
    } else if (it.kind == kRootCaCrl) {
      files[base + ".chain.pem"] = raw.issuer_chain_pem;
      e["chain_file"] = base + ".chain.pem";
    }
    list.push_back(e);
  }
  files["manifest.json"] = json{{"format", "vouch-collateral-v1"}, {"items", list}}.dump(2) + "\n";
  return files;
}

Status Service::ExportDir(const std::string& dir) {
  VOUCH_ASSIGN_OR_RETURN(auto files, ExportFiles());
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return InvalidArgument("cannot create " + dir + ": " + ec.message(),
                           std::string(kCollateralDirUnwritable));
  for (const auto& [name, bytes] : files) {
    VOUCH_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + name, bytes, 0644, false));
  }
  return Status::Ok();
}

Result<std::unique_ptr<attest::DcapVerifier>> Service::DcapVerifierFor(std::span<const uint8_t> quote, TimePoint at) {
  auto q = evidence::ParseDcapQuote(quote);
  if (!q.ok()) return q.status();
  std::string root_pem;
  VOUCH_ASSIGN_OR_RETURN(auto collateral, impl_->DcapCollateralFor(*q, at, &root_pem));
  attest::DcapTrustOptions trust;
  trust.allow_sim = impl_->options.allow_sim;
  return attest::DcapVerifier::Create(std::move(collateral), trust);
}

attest::Verdict Service::Verify(std::span<const uint8_t> evidence, std::string_view platform, TimePoint at,
                                bool allow_sim) {
  std::string p = platform.empty() ? DetectPlatform(evidence) : std::string(platform);
  if (p == "sev-snp") return impl_->VerifySnp(evidence, at, allow_sim && impl_->options.allow_sim);
  attest::Verdict v;
  if (p != "sgx" && p != "tdx") {
    v.error = InvalidArgument("unrecognised evidence (not a DCAP quote or an SEV-SNP report)",
                              std::string(attest::kDcapMalformedQuote));
    return v;
  }
  v.platform = p == "tdx" ? attest::Platform::kTdx : attest::Platform::kSgx;
  auto q = evidence::ParseDcapQuote(evidence);
  if (!q.ok()) {
    v.error = InvalidArgument(q.status().message(), std::string(attest::kDcapMalformedQuote));
    return v;
  }
  if (q->is_tdx() != (p == "tdx")) {
    v.error = InvalidArgument(
        "the evidence is a " + std::string(q->is_tdx() ? "TDX" : "SGX") + " quote, not " + p,
        std::string(kPlatformMismatch));
    return v;
  }
  std::string root_pem, key;
  auto collateral = impl_->DcapCollateralFor(*q, at, &root_pem, &key);
  if (!collateral.ok()) {
    v.error = Status(collateral.status().code(), collateral.status().message(), std::string(attest::kDcapMissingCollateral));
    return v;
  }
  attest::DcapTrustOptions trust;
  trust.allow_sim = allow_sim && impl_->options.allow_sim;
  key += trust.allow_sim ? "|sim" : "|nosim";
  std::shared_ptr<const attest::DcapVerifier> verifier;
  {
    std::lock_guard<std::mutex> lock(impl_->verifiers_mu);
    auto it = impl_->verifiers.find(key);
    if (it != impl_->verifiers.end()) verifier = it->second;
  }
  if (!verifier) {
    auto made = attest::DcapVerifier::Create(std::move(*collateral), trust);
    if (!made.ok()) {
      v.error = made.status();
      return v;
    }
    verifier = std::shared_ptr<const attest::DcapVerifier>(std::move(*made));
    std::lock_guard<std::mutex> lock(impl_->verifiers_mu);
    if (impl_->verifiers.size() >= kMaxVerifiers) impl_->verifiers.clear();
    impl_->verifiers.emplace(key, verifier);
  }
  return verifier->Verify(evidence, at);
}

std::vector<std::pair<Item, double>> Service::RemainingValidity() {
  std::vector<std::pair<Item, double>> out;
  auto items = List();
  if (!items.ok()) return out;
  const TimePoint now = impl_->Now();
  for (Item& it : *items) {
    if (it.next_update == TimePoint::max()) continue;  // no nextUpdate: nothing to count down
    const double left = std::chrono::duration<double>(it.next_update - now).count();
    out.emplace_back(std::move(it), left);
  }
  return out;
}

Stats Service::GetStats() const {
  std::lock_guard<std::mutex> lock(impl_->stats_mu);
  return impl_->stats;
}

}  // namespace vouch::collateral
