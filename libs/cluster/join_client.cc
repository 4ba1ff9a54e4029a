#include "cluster/join_client.h"

#include "base/encoding.h"
#include "cluster/reasons.h"

namespace vouch::cluster {
namespace {

// A string field of the member's answer, at most `max` characters (the answer already passed the
// client's size limit; this keeps one field from being anything but what it should be).
Result<std::string> StringField(const nlohmann::json& j, const char* name, size_t max) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().size() > max) {
    return Internal(std::string("the member's answer lacks a valid ") + name, std::string(kBadPeerResponse));
  }
  return it->get<std::string>();
}

Result<std::vector<uint8_t>> Base64Field(const nlohmann::json& j, const char* name, size_t max) {
  VOUCH_ASSIGN_OR_RETURN(std::string text, StringField(j, name, max));
  auto bytes = Base64Decode(text);
  if (!bytes.ok()) {
    return Internal(std::string("the member's ") + name + " is not base64", std::string(kBadPeerResponse));
  }
  return bytes;
}

// An optional string field (absent or not a string: empty).
std::string OptionalString(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Result<JoinResult> RunJoinClient(const JoinTransport& post, const EvidenceSource& source) {
  if (source.sim == nullptr) return InvalidArgument("no evidence source (the sim platform is the only one)");
  if (!post) return InvalidArgument("no transport to the member");
  auto nonce_answer = post("/api/v1/cluster/nonce", nlohmann::json::object());
  if (!nonce_answer.ok()) return nonce_answer.status().WithContext("the member refused a nonce");
  if (!nonce_answer->is_object()) return Internal("the member's nonce answer is not an object", std::string(kBadPeerResponse));
  VOUCH_ASSIGN_OR_RETURN(std::string nonce, StringField(*nonce_answer, "nonce", 256));

  VOUCH_ASSIGN_OR_RETURN(auto joiner, Joiner::Create());
  VOUCH_ASSIGN_OR_RETURN(JoinRequest req, joiner->SimRequest(*source.sim, source.measurement, nonce));
  auto grant = post("/api/v1/cluster/join", req.ToJson());
  if (!grant.ok()) return grant.status().WithContext("the member refused the join");
  if (!grant->is_object()) return Internal("the member's join answer is not an object", std::string(kBadPeerResponse));

  VOUCH_ASSIGN_OR_RETURN(auto peer_key, Base64Field(*grant, "peer_public_key", 1024));
  VOUCH_ASSIGN_OR_RETURN(auto wrapped, Base64Field(*grant, "wrapped_master_key", 1024));
  JoinResult r;
  VOUCH_ASSIGN_OR_RETURN(r.master_key, joiner->Open(req, peer_key, wrapped));
  VOUCH_ASSIGN_OR_RETURN(r.tls_key_sealed, Base64Field(*grant, "tls_key_sealed", 64 << 10));
  r.tls_chain_pem = OptionalString(*grant, "tls_chain_pem");
  r.service_ca_pem = OptionalString(*grant, "service_ca_pem");
  auto sim = grant->find("insecure_sim");
  r.insecure_sim = sim != grant->end() && sim->is_boolean() && sim->get<bool>();
  return r;
}

}  // namespace vouch::cluster
