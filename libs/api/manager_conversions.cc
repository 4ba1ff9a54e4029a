// Conversion jobs, the API side (docs/convert.md "Server-side conversion"): a job is validated
// completely when it is created (app, image references, registries, options), so bad input is a
// 4xx and no row; then it is a row of `conversions` that ConversionRunner (conversion_runner.cc)
// claims, runs and finishes.
#include <map>
#include <mutex>

#include "api/conversion_runner.h"
#include "api/manager_internal.h"
#include "api/reasons.h"
#include "api/registry_access.h"
#include "convert/options.h"
#include "oci/image.h"
#include "oci/reasons.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace): file-local helpers

struct Manager::ConversionState {
  std::mutex mu;
  std::function<void()> listener;
};

std::shared_ptr<Manager::ConversionState> Manager::NewConversionState() { return std::make_shared<ConversionState>(); }

void Manager::SetConversionListener(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(conversions_->mu);
  conversions_->listener = std::move(fn);
}

namespace {

// (A template: Manager::ConversionState is private; the Manager's members pass theirs.)
template <typename State>
void Notify(const std::shared_ptr<State>& state) {
  std::function<void()> fn;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    fn = state->listener;
  }
  if (fn) fn();
}

// An image reference a job may use: a registry reference (local paths only in tests).
Status CheckImageRef(const std::string& ref, const char* field, bool allow_local) {
  if (ref.empty() || ref.size() > 512) {
    return InvalidArgument(std::string(field) + " must be an image reference of 1 to 512 characters",
                           std::string(kInvalidImageRef));
  }
  auto loc = oci::ImageLocation::Parse(ref);
  if (!loc.ok()) return InvalidArgument(std::string(field) + ": " + loc.status().message(), std::string(kInvalidImageRef));
  if (loc->kind != oci::ImageLocation::Kind::kRegistry && !allow_local) {
    return InvalidArgument(std::string(field) +
                               " must name a registry image (host[:port]/repo[:tag|@sha256:...]); the server does not "
                               "read or write local paths (use `vouch convert` for oci: and docker-archive:)",
                           std::string(kInvalidImageRef));
  }
  return Status::Ok();
}

}  // namespace

namespace internal {

const std::vector<std::string>& ConversionStateNames() {
  static const std::vector<std::string> k = {"queued", "pulling", "converting", "pushing", "done", "failed", "cancelled"};
  return k;
}

Result<json> ConversionJson(const Row& r) {
  json error = nullptr;
  if (!r.IsNull("error_code")) error = {{"code", r.Str("error_code")}, {"message", r.Str("error_message")}};
  auto opt = [&](const char* col) { return r.IsNull(col) ? json(nullptr) : json(r.Str(col)); };
  json progress = ParseJsonColumn(r.Str("progress"), json::object());
  if (!progress.is_object()) progress = json::object();
  for (const char* k : {"layers_done", "layers_total", "bytes_done", "bytes_total"}) {
    if (!progress.contains(k) || !progress[k].is_number_integer()) progress[k] = 0;
  }
  if (!progress.contains("phase") || !progress["phase"].is_string()) progress["phase"] = r.Str("state");
  json log = ParseJsonColumn(r.Str("log"), json::array());
  if (!log.is_array()) log = json::array();
  return json{{"id", r.Str("id")},
              {"app_id", r.Str("app_id")},
              {"app_name", r.Str("app_name")},
              {"state", r.Str("state")},
              {"input_image", r.Str("input_image")},
              {"output_image", r.Str("output_image")},
              {"input_registry", opt("input_registry_name")},
              {"output_registry", opt("output_registry_name")},
              {"options", ParseJsonColumn(r.Str("options"), json::object())},
              {"progress", progress},
              {"log", log},
              {"output_digest", opt("output_digest")},
              {"mrenclave", opt("mrenclave")},
              {"mrsigner", opt("mrsigner")},
              {"build_id", opt("build_id")},
              {"error", error},
              {"attempts", r.Int("attempts")},
              {"cancel_requested", r.Int("cancel_requested") != 0},
              {"created_at", TimeJson(r.Int("created_at"))},
              {"created_by", r.Str("created_by")},
              {"started_at", TimeOrNull(r, "started_at")},
              {"finished_at", TimeOrNull(r, "finished_at")},
              {"updated_at", TimeJson(r.Int("updated_at"))}};
}

json AppendLog(const std::string& log_text, const std::vector<std::string>& lines) {
  json log = ParseJsonColumn(log_text, json::array());
  if (!log.is_array()) log = json::array();
  for (const std::string& l : lines) log.push_back(l.substr(0, kConversionLogLineMax));
  if (log.size() > kConversionLogLines) log.erase(log.begin(), log.begin() + static_cast<long>(log.size() - kConversionLogLines));
  return log;
}

}  // namespace internal

Result<json> Manager::CreateConversion(const Principal& p, const ConversionSpec& spec) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kWrite));
  const bool local = options_.conversions.allow_local_images;
  VOUCH_RETURN_IF_ERROR(CheckImageRef(spec.input_image, "input_image", local));
  VOUCH_RETURN_IF_ERROR(CheckImageRef(spec.output_image, "output_image", local));
  VOUCH_ASSIGN_OR_RETURN(convert::ConversionSettings settings, convert::SettingsFromJson(spec.options));
  json out;
  std::string id;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row app, FindAppRow(tx, spec.app));
    const std::string app_id = app.Str("id");
    // Which stored registries the job will use (their credentials go to their own host only);
    // none: anonymous.
    VOUCH_ASSIGN_OR_RETURN(auto in_reg, RegistryForImage(tx, *this, app_id, spec.input_image, spec.input_registry, false));
    VOUCH_ASSIGN_OR_RETURN(auto out_reg,
                           RegistryForImage(tx, *this, app_id, spec.output_image, spec.output_registry, true));
    id = NewId("cnv");
    const int64_t now = Now();
    auto reg_id = [](const std::optional<RegistryAccess>& r) { return r ? Value(r->id) : Value(nullptr); };
    const json log = AppendLog("[]", {"queued by " + p.Actor()});
    const json progress = {{"phase", "queued"}, {"layers_done", 0}, {"layers_total", 0}, {"bytes_done", 0},
                           {"bytes_total", 0}};
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO conversions (id, app_id, state, input_image, output_image, "
                                  "input_registry_id, output_registry_id, options, progress, log, attempts, "
                                  "cancel_requested, bytes_converted, created_at, created_by, updated_at) "
                                  "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?, ?)",
                                  {id, app_id, spec.input_image, spec.output_image, reg_id(in_reg), reg_id(out_reg),
                                   convert::SettingsToJson(settings).dump(), progress.dump(), log.dump(), now,
                                   p.Actor(), now})
                              .status());
    VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne(std::string(kConversionSelect) + " WHERE c.id = ?", {id}, "conversion"));
    VOUCH_ASSIGN_OR_RETURN(out, ConversionJson(r));
    return Audit(tx, *this, p, "conversion.create", id,
                 {{"app", app.Str("name")},
                  {"input_image", spec.input_image},
                  {"output_image", spec.output_image},
                  {"input_registry", in_reg ? json(in_reg->name) : json(nullptr)},
                  {"output_registry", out_reg ? json(out_reg->name) : json(nullptr)}});
  }));
  Notify(conversions_);
  return out;
}

Result<json> Manager::ListConversions(const Principal& p, const ListQuery& q) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  const std::string state = Filter(q, "state");
  const auto& states = ConversionStateNames();
  if (!state.empty() && std::find(states.begin(), states.end(), state) == states.end()) {
    return InvalidArgument("state must be one of queued, pulling, converting, pushing, done, failed, cancelled",
                           std::string(kInvalidFilter));
  }
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    std::vector<std::string> cond;
    std::vector<Value> params;
    if (std::string app = Filter(q, "app"); !app.empty()) {
      cond.push_back("(a.name = ? OR a.id = ?)");
      params.emplace_back(app);
      params.emplace_back(app);
    }
    if (!state.empty()) {
      cond.push_back("c.state = ?");
      params.emplace_back(state);
    }
    VOUCH_ASSIGN_OR_RETURN(PageResult page,
                           QueryPage(tx, kConversionSelect, cond, params, q, "c.created_at", /*descending=*/true, "c.id"));
    json items = json::array();
    for (const Row& r : page.rows) {
      VOUCH_ASSIGN_OR_RETURN(json j, ConversionJson(r));
      items.push_back(std::move(j));
    }
    out = PageJson(std::move(items), page.next_cursor);
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::GetConversion(const Principal& p, const std::string& id) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  return GetOne(*db_, kConversionSelect, "c.id", id, "conversion", kConversionNotFound,
                [](Transaction&, const Row& r) { return ConversionJson(r); });
}

Result<json> Manager::CancelConversion(const Principal& p, const std::string& id) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kWrite));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(std::string(kConversionSelect) + " WHERE c.id = ?", {id}));
    if (rows.empty()) return NotFound("conversion '" + id.substr(0, 80) + "' not found", std::string(kConversionNotFound));
    const Row& r = rows[0];
    const std::string state = r.Str("state");
    if (state == "done" || state == "failed" || state == "cancelled") {
      return FailedPrecondition("conversion " + id + " has already ended (" + state + ")",
                                std::string(kConversionFinished));
    }
    const int64_t now = Now();
    const std::string by = "cancelled by " + p.Actor();
    if (state == "queued") {
      // Nobody runs it: it ends here.
      VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE conversions SET state = 'cancelled', cancel_requested = 1, error_code = ?, "
                                    "error_message = ?, log = ?, lease_owner = NULL, lease_expires_at = NULL, "
                                    "finished_at = ?, updated_at = ? WHERE id = ? AND state = 'queued'",
                                    {std::string(oci::kCancelled), by, AppendLog(r.Str("log"), {by}).dump(), now, now, id})
                                .status());
    } else if (r.Int("cancel_requested") == 0) {
      // The worker holding it stops at its next check and ends it (conversion_runner.cc).
      VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE conversions SET cancel_requested = 1, log = ?, updated_at = ? WHERE id = ?",
                                    {AppendLog(r.Str("log"), {by + " (stopping)"}).dump(), now, id})
                                .status());
    }
    VOUCH_ASSIGN_OR_RETURN(Row after, tx.QueryOne(std::string(kConversionSelect) + " WHERE c.id = ?", {id}, "conversion"));
    VOUCH_ASSIGN_OR_RETURN(out, ConversionJson(after));
    return Audit(tx, *this, p, "conversion.cancel", id, {{"app", r.Str("app_name")}, {"state", state}});
  }));
  Notify(conversions_);
  return out;
}

std::map<std::string, int64_t> Manager::ConversionStates() {
  std::map<std::string, int64_t> out;
  for (const std::string& s : ConversionStateNames()) out[s] = 0;
  (void)db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT state, COUNT(*) AS n FROM conversions GROUP BY state"));
    for (const Row& r : rows) out[r.Str("state")] = r.Int("n");
    return Status::Ok();
  });
  return out;
}

}  // namespace vouch::api
