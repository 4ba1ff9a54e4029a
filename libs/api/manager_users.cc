// Authentication (login, sessions, bearer tokens), users and API keys.
#include <algorithm>
#include <string>

#include "api/manager.h"
#include "api/manager_internal.h"
#include "api/reasons.h"
#include "crypto/kdf.h"
#include "crypto/random.h"
#include "http/limits.h"

namespace vouch::api {

using namespace internal;  // NOLINT(google-build-using-namespace): file-local helpers

// ---------------------------------------------------------------- authentication

Result<json> Manager::Login(std::string_view user, std::string_view password) {
  auto refused = Unauthenticated("invalid user name or password", std::string(kInvalidCredentials));
  if (user.empty() || user.size() > 63 || password.size() > 1024) return refused;
  Row row;
  bool found = false;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT * FROM users WHERE name = ?", {std::string(user)}));
    if (!rows.empty()) {
      row = rows[0];
      found = true;
    }
    return Status::Ok();
  }));
  // Hash even for unknown users so that timing does not reveal which names exist. Each hash
  // takes 32 MiB: at most kdf_slots_ run at once, so a login flood cannot exhaust memory.
  static const std::string kDummy = *crypto::HashPassword("dummy-password-for-timing");
  bool ok = false;
  {
    auto slot = kdf_slots_->Acquire();
    if (!slot) return Unavailable("too many logins in progress; retry shortly", std::string(http::kBusy));
    ok = crypto::VerifyPassword(password, found ? row.Str("password_hash") : kDummy) && found &&
         row.Int("disabled") == 0;
  }
  if (!ok) {
    Principal who;
    who.kind = Principal::Kind::kUser;
    who.name = std::string(user.substr(0, 63));
    who.anonymous = true;
    AuditRefusal(who, "auth.login", who.name, refused);
    return refused;
  }
  std::string token = "vt_" + crypto::RandomToken(32);
  int64_t now = Now();
  int64_t expires = now + options_.session_ttl.count();
  Principal p;
  p.kind = Principal::Kind::kUser;
  p.id = row.Str("id");
  p.name = row.Str("name");
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_RETURN_IF_ERROR(tx.Exec("DELETE FROM sessions WHERE expires_at < ?", {now}).status());
    VOUCH_RETURN_IF_ERROR(tx.Exec("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                                  {HashToken(token), p.id, now, expires})
                              .status());
    return Audit(tx, *this, p, "auth.login", p.name);
  }));
  return json{{"token", token},
              {"expires_at", TimeJson(expires)},
              {"user", {{"name", p.name}, {"role", row.Str("role")}}}};
}

Result<Principal> Manager::Authenticate(std::string_view token) {
  auto refused =
      Unauthenticated("missing, invalid or expired credentials", std::string(kUnauthenticated));
  if (token.size() < 10 || token.size() > 200) return refused;
  std::string hash = HashToken(token);
  int64_t now = Now();
  Principal p;
  Status st = db_->Read([&](Transaction& tx) -> Status {
    Rows rows;
    if (token.substr(0, 3) == "vt_") {
      VOUCH_ASSIGN_OR_RETURN(rows, tx.Query("SELECT u.id, u.name, u.role, u.disabled, s.expires_at FROM sessions s "
                                            "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?",
                                            {hash}));
      p.kind = Principal::Kind::kUser;
    } else if (token.substr(0, 3) == "vk_") {
      VOUCH_ASSIGN_OR_RETURN(rows, tx.Query("SELECT k.id AS key_id, u.id, u.name, u.role, u.disabled, k.expires_at, "
                                            "k.created_at "
                                            "FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?",
                                            {hash}));
      p.kind = Principal::Kind::kApiKey;
    }
    if (rows.empty()) return refused;
    const Row& r = rows[0];
    if (r.Int("disabled") != 0) return refused;
    if (!r.IsNull("expires_at") && r.Int("expires_at") <= now) return refused;
    // Keys made before keys expired by default: they expire api_key_max_days after creation.
    if (p.kind == Principal::Kind::kApiKey && r.IsNull("expires_at") &&
        r.Int("created_at") + int64_t{options_.api_key_max_days} * 86400 <= now) {
      return refused;
    }
    p.id = p.kind == Principal::Kind::kApiKey ? r.Str("key_id") : r.Str("id");
    p.name = r.Str("name");
    VOUCH_ASSIGN_OR_RETURN(p.role, ParseRole(r.Str("role")));
    return Status::Ok();
  });
  if (!st.ok()) return st.code() == StatusCode::kUnauthenticated ? st : st;
  return p;
}

Status Manager::Logout(const Principal& p, std::string_view token) {
  if (p.kind != Principal::Kind::kUser)
    return InvalidArgument("only session tokens can be logged out", std::string(kNotASession));
  return db_->Write([&](Transaction& tx) -> Status {
    VOUCH_RETURN_IF_ERROR(tx.Exec("DELETE FROM sessions WHERE token_hash = ?", {HashToken(token)}).status());
    return Audit(tx, *this, p, "auth.logout", p.name);
  });
}

json Manager::WhoAmI(const Principal& p) const {
  return {{"name", p.name},
          {"role", RoleName(p.role)},
          {"auth", p.kind == Principal::Kind::kApiKey ? "apikey" : "session"}};
}

void Manager::AuditRefusal(const Principal& p, const std::string& action, const std::string& target,
                           const Status& why) {
  // Callers without credentials are counted, not written one by one (a node's enrolment refusals
  // before its nonce and join token are accepted are counted by EnrollNode itself).
  if (p.anonymous) {
    const std::string& source = ScopedRequestSource::Current();
    AuditUnauthenticated(source.empty() ? "unknown" : source, action, target, why);
    return;
  }
  (void)db_->Write([&](Transaction& tx) {
    return store::AppendAudit(tx, clock_->Now(), p.Actor(), action, target.substr(0, 200), "denied:" + why.reason(),
                              {{"message", why.message().substr(0, 300)}});
  });
}

namespace {
constexpr size_t kAggregateTargets = 5;
}  // namespace

Manager::RefusalAggregates::Closed Manager::RefusalAggregates::TakeClosed(int64_t minute, bool all) {
  Closed closed;
  std::lock_guard lock(mu);
  while (!open.empty() && (all || open.begin()->first.minute < minute)) {
    closed.emplace_back(open.begin()->first, std::move(open.begin()->second));
    open.erase(open.begin());
  }
  return closed;
}

Status Manager::RefusalAggregates::Write(store::Database& db, const Clock& clock, const Closed& rows) {
  if (std::none_of(rows.begin(), rows.end(), [](const auto& r) { return r.second.count > 0; })) return Status::Ok();
  return db.Write([&](Transaction& tx) -> Status {
    for (const auto& [k, c] : rows) {
      if (c.count == 0) continue;
      json detail = {{"count", c.count},
                     {"from", TimeJson(k.minute * 60)},
                     {"to", TimeJson(k.minute * 60 + 60)},
                     {"targets", c.targets},
                     {"message", c.message}};
      VOUCH_RETURN_IF_ERROR(store::AppendAudit(tx, clock.Now(), "anonymous:" + k.source, k.action,
                                               c.targets.empty() ? "" : c.targets.front(), k.outcome, detail));
    }
    return Status::Ok();
  });
}

void Manager::AuditUnauthenticated(const std::string& source, const std::string& action, const std::string& target,
                                   const Status& why) {
  const int64_t minute = Now() / 60;
  RefusalAggregates::Closed closed = refusals_->TakeClosed(minute, false);
  RefusalAggregates::Closed first;  // written now: the first of its key in this minute
  {
    std::lock_guard lock(refusals_->mu);
    auto& open = refusals_->open;
    RefusalAggregates::Key key{minute, source.substr(0, 64), action.substr(0, 100), "denied:" + why.reason()};
    // Bounded: beyond the cap, this minute's further keys share the source "*".
    if (open.size() >= options_.refusal_aggregate_max_keys && open.find(key) == open.end()) key.source = "*";
    auto [it, created] = open.try_emplace(key);
    std::string t = target.substr(0, 200);
    if (created) {
      RefusalAggregates::Counts one;
      one.count = 1;
      one.message = why.message().substr(0, 300);
      if (!t.empty()) one.targets.push_back(t);
      first.emplace_back(key, std::move(one));
    } else {
      RefusalAggregates::Counts& c = it->second;
      if (c.count++ == 0) c.message = why.message().substr(0, 300);
      if (!t.empty() && c.targets.size() < kAggregateTargets &&
          std::find(c.targets.begin(), c.targets.end(), t) == c.targets.end()) {
        c.targets.push_back(std::move(t));
      }
    }
  }
  closed.insert(closed.end(), std::make_move_iterator(first.begin()), std::make_move_iterator(first.end()));
  (void)RefusalAggregates::Write(*db_, *clock_, closed);
}

void Manager::FlushRefusalAggregates(bool all) {
  (void)RefusalAggregates::Write(*db_, *clock_, refusals_->TakeClosed(Now() / 60, all));
}

Result<std::string> Manager::HashPasswordBounded(std::string_view password) {
  auto slot = kdf_slots_->Acquire();
  if (!slot) return Unavailable("too many password hashes in progress; retry shortly", std::string(http::kBusy));
  return crypto::HashPassword(password, options_.password_kdf);
}

// ---------------------------------------------------------------- users

namespace {
json UserJson(const Row& r) {
  return {{"id", r.Str("id")},
          {"name", r.Str("name")},
          {"role", r.Str("role")},
          {"disabled", r.Int("disabled") != 0},
          {"created_at", TimeJson(r.Int("created_at"))}};
}

Status CheckPassword(std::string_view password) {
  if (password.size() < 8)
    return InvalidArgument("password must be at least 8 characters", std::string(kWeakPassword));
  if (password.size() > 1024)
    return InvalidArgument("password must be at most 1024 characters",
                           std::string(kInvalidPassword));
  return Status::Ok();
}

// Refuses changes that would leave no enabled admin.
Status EnsureAnotherAdmin(Transaction& tx, const std::string& user_id) {
  VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id <> ?",
                                            {user_id}, "admins"));
  if (r.Int(0) == 0)
    return FailedPrecondition("this would leave no enabled admin", std::string(kLastAdmin));
  return Status::Ok();
}
}  // namespace

Result<json> Manager::CreateUser(const Principal& p, const std::string& name, const std::string& role,
                                 std::string_view password) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  if (!IsValidName(name))
    return InvalidArgument("invalid user name '" + name.substr(0, 80) + "'",
                           std::string(kInvalidName));
  VOUCH_RETURN_IF_ERROR(ParseRole(role).status());
  VOUCH_RETURN_IF_ERROR(CheckPassword(password));
  VOUCH_ASSIGN_OR_RETURN(std::string hash, HashPasswordBounded(password));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    std::string id = NewId("user");
    Status st = tx.Exec("INSERT INTO users (id, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                        {id, name, role, hash, Now()})
                    .status();
    if (st.code() == StatusCode::kAlreadyExists)
      return AlreadyExists("user '" + name + "' already exists", std::string(kUserExists));
    VOUCH_RETURN_IF_ERROR(st);
    VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne("SELECT * FROM users WHERE id = ?", {id}, "user"));
    out = UserJson(r);
    return Audit(tx, *this, p, "user.create", name, {{"role", role}});
  }));
  return out;
}

Result<json> Manager::ListUsers(const Principal& p, const ListQuery& q) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(PageResult page, QueryPage(tx, "SELECT * FROM users", {}, {}, q));
    json items = json::array();
    for (const Row& r : page.rows) items.push_back(UserJson(r));
    out = PageJson(std::move(items), page.next_cursor);
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::GetUser(const Principal& p, const std::string& key) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row r, FindByIdOrName(tx, "users", key, "user"));
    out = UserJson(r);
    return Status::Ok();
  }));
  return out;
}

Result<json> Manager::UpdateUser(const Principal& p, const std::string& key, std::optional<std::string> role,
                                 std::optional<std::string> password, std::optional<bool> disabled) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  if (role) VOUCH_RETURN_IF_ERROR(ParseRole(*role).status());
  std::string hash;
  if (password) {
    VOUCH_RETURN_IF_ERROR(CheckPassword(*password));
    VOUCH_ASSIGN_OR_RETURN(hash, HashPasswordBounded(*password));
  }
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row r, FindByIdOrName(tx, "users", key, "user"));
    std::string id = r.Str("id");
    bool demotes = (role && *role != "admin") || (disabled && *disabled);
    if (r.Str("role") == "admin" && demotes) VOUCH_RETURN_IF_ERROR(EnsureAnotherAdmin(tx, id));
    json changed = json::object();
    if (role) {
      VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE users SET role = ? WHERE id = ?", {*role, id}).status());
      changed["role"] = *role;
    }
    if (password) {
      VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE users SET password_hash = ? WHERE id = ?", {hash, id}).status());
      // A new password ends every session of that user and revokes their API keys.
      VOUCH_RETURN_IF_ERROR(tx.Exec("DELETE FROM sessions WHERE user_id = ?", {id}).status());
      VOUCH_ASSIGN_OR_RETURN(int64_t keys, tx.Exec("DELETE FROM api_keys WHERE user_id = ?", {id}));
      changed["password"] = "changed";
      if (keys > 0) changed["api_keys_revoked"] = keys;
    }
    if (disabled) {
      VOUCH_RETURN_IF_ERROR(tx.Exec("UPDATE users SET disabled = ? WHERE id = ?", {int64_t{*disabled}, id}).status());
      changed["disabled"] = *disabled;
      if (*disabled) {
        // Disabling ends the user's sessions and revokes their API keys (re-enabling does not
        // bring them back).
        VOUCH_RETURN_IF_ERROR(tx.Exec("DELETE FROM sessions WHERE user_id = ?", {id}).status());
        VOUCH_ASSIGN_OR_RETURN(int64_t keys, tx.Exec("DELETE FROM api_keys WHERE user_id = ?", {id}));
        if (keys > 0) changed["api_keys_revoked"] = changed.value("api_keys_revoked", int64_t{0}) + keys;
      }
    }
    VOUCH_ASSIGN_OR_RETURN(Row updated, tx.QueryOne("SELECT * FROM users WHERE id = ?", {id}, "user"));
    out = UserJson(updated);
    return Audit(tx, *this, p, "user.update", r.Str("name"), changed);
  }));
  return out;
}

Status Manager::DeleteUser(const Principal& p, const std::string& key) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kAdmin));
  return db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Row r, FindByIdOrName(tx, "users", key, "user"));
    std::string id = r.Str("id");
    if (r.Str("role") == "admin") VOUCH_RETURN_IF_ERROR(EnsureAnotherAdmin(tx, id));
    VOUCH_RETURN_IF_ERROR(tx.Exec("DELETE FROM sessions WHERE user_id = ?", {id}).status());
    VOUCH_RETURN_IF_ERROR(tx.Exec("DELETE FROM api_keys WHERE user_id = ?", {id}).status());
    VOUCH_RETURN_IF_ERROR(tx.Exec("DELETE FROM users WHERE id = ?", {id}).status());
    return Audit(tx, *this, p, "user.delete", r.Str("name"));
  });
}

// ---------------------------------------------------------------- API keys

namespace {
json ApiKeyJson(const Row& r) {
  return {{"id", r.Str("id")},
          {"name", r.Str("name")},
          {"user", r.Str("user_name")},
          {"role", r.Str("role")},
          {"created_at", TimeJson(r.Int("created_at"))},
          {"expires_at", TimeOrNull(r, "expires_at")}};
}
constexpr char kApiKeySelect[] =
    "SELECT k.id AS id, k.name AS name, k.created_at AS created_at, k.expires_at AS expires_at, "
    "u.name AS user_name, u.role AS role, u.id AS user_id FROM api_keys k JOIN users u ON u.id = k.user_id";
}  // namespace

Result<json> Manager::CreateApiKey(const Principal& p, const std::string& name, std::optional<int64_t> days) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  if (p.kind != Principal::Kind::kUser) {
    return PermissionDenied("API keys are created with a user session, not another key",
                            std::string(kForbidden));
  }
  if (!IsValidName(name)) return InvalidArgument("invalid API key name", std::string(kInvalidName));
  // Keys expire: api_key_default_days unless asked otherwise, at most api_key_max_days.
  if (days && (*days < 1 || *days > options_.api_key_max_days)) {
    return InvalidArgument(
        "expires_in_days must be between 1 and " + std::to_string(options_.api_key_max_days),
        std::string(kInvalidExpiry));
  }
  const int64_t valid_days = days.value_or(std::min(options_.api_key_default_days, options_.api_key_max_days));
  std::string key = "vk_" + crypto::RandomToken(32);
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Write([&](Transaction& tx) -> Status {
    std::string id = NewId("key");
    int64_t now = Now();
    std::vector<Value> params = {id, name, HashToken(key), p.id, now, now + valid_days * 86400};
    Status st = tx.Exec("INSERT INTO api_keys (id, name, key_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                        params)
                    .status();
    if (st.code() == StatusCode::kAlreadyExists) {
      return AlreadyExists("you already have an API key named '" + name + "'",
                           std::string(kApikeyExists));
    }
    VOUCH_RETURN_IF_ERROR(st);
    VOUCH_ASSIGN_OR_RETURN(Row r, tx.QueryOne(std::string(kApiKeySelect) + " WHERE k.id = ?", {id}, "api key"));
    out = ApiKeyJson(r);
    out["key"] = key;
    return Audit(tx, *this, p, "apikey.create", id, {{"name", name}, {"expires_in_days", valid_days}});
  }));
  return out;
}

Result<json> Manager::ListApiKeys(const Principal& p, const ListQuery& q) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  json out;
  VOUCH_RETURN_IF_ERROR(db_->Read([&](Transaction& tx) -> Status {
    std::vector<std::string> cond;
    std::vector<Value> params;
    if (p.role != Role::kAdmin) {
      cond.push_back("u.name = ?");
      params.emplace_back(p.name);
    }
    VOUCH_ASSIGN_OR_RETURN(PageResult page, QueryPage(tx, kApiKeySelect, cond, params, q, "k.created_at", false, "k.id"));
    json items = json::array();
    for (const Row& r : page.rows) items.push_back(ApiKeyJson(r));
    out = PageJson(std::move(items), page.next_cursor);
    return Status::Ok();
  }));
  return out;
}

Status Manager::DeleteApiKey(const Principal& p, const std::string& id) {
  VOUCH_RETURN_IF_ERROR(Authorize(p, Permission::kRead));
  return db_->Write([&](Transaction& tx) -> Status {
    VOUCH_ASSIGN_OR_RETURN(Rows rows, tx.Query(std::string(kApiKeySelect) + " WHERE k.id = ?", {id}));
    // Other users' keys are invisible to non-admins: NotFound, not Forbidden.
    if (rows.empty() || (p.role != Role::kAdmin && rows[0].Str("user_name") != p.name)) {
      return NotFound("API key '" + id.substr(0, 80) + "' not found", std::string(kApikeyNotFound));
    }
    VOUCH_RETURN_IF_ERROR(tx.Exec("DELETE FROM api_keys WHERE id = ?", {id}).status());
    return Audit(tx, *this, p, "apikey.delete", id);
  });
}

}  // namespace vouch::api
