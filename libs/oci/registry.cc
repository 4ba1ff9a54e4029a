#include "oci/registry.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/http_response.h"
#include "oci/reasons.h"

namespace vouch::oci {
namespace {

using json = nlohmann::json;

CURL* H(void* p) { return static_cast<CURL*>(p); }

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

std::once_flag g_curl_init;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool IsLoopback(const std::string& registry) {
  std::string host = registry;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(0, host.find(']') + 1);
  } else if (size_t c = host.find(':'); c != std::string::npos) {
    host = host.substr(0, c);
  }
  return host == "localhost" || host == "127.0.0.1" || host == "[::1]";
}

constexpr const char* kManifestAccept =
    "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

}  // namespace

struct RegistryClient::Request {
  std::string method = "GET";
  std::string url;  // absolute
  std::vector<std::string> headers;
  const std::string* body = nullptr;      // request body in memory
  std::string upload_file;                // or from a file
  BlobStore::Writer* sink = nullptr;      // response body to a blob writer (2xx only)
  size_t max_body = kMaxManifestBytes;    // in-memory response limit
  bool push = false;                      // needs push scope
  // Response state
  Status sink_status;
  std::string* body_out = nullptr;
  long status_seen = 0;
  bool overflow = false;
  int fd = -1;
  const TransferHooks* hooks = nullptr;  // set by Perform
};

std::map<std::string, std::string> RegistryClient::ParseChallenge(std::string_view header, std::string* scheme) {
  std::map<std::string, std::string> out;
  size_t sp = header.find(' ');
  *scheme = Lower(std::string(header.substr(0, sp)));
  if (sp == std::string_view::npos) return out;
  std::string_view rest = header.substr(sp + 1);
  size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && (rest[i] == ' ' || rest[i] == ',')) ++i;
    size_t eq = rest.find('=', i);
    if (eq == std::string_view::npos) break;
    std::string key = Lower(std::string(rest.substr(i, eq - i)));
    i = eq + 1;
    std::string value;
    if (i < rest.size() && rest[i] == '"') {
      ++i;
      while (i < rest.size() && rest[i] != '"') {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        value += rest[i++];
      }
      ++i;  // closing quote (or past the end)
    } else {
      size_t end = rest.find(',', i);
      if (end == std::string_view::npos) end = rest.size();
      value = std::string(rest.substr(i, end - i));
      i = end;
    }
    if (out.size() < 16) out[key] = value;
  }
  return out;
}

Result<std::unique_ptr<RegistryClient>> RegistryClient::Create(const ImageLocation& location,
                                                               const TransportOptions& options) {
  if (location.kind != ImageLocation::Kind::kRegistry) return InvalidArgument("not a registry reference");
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<RegistryClient> c(new RegistryClient(location, options));
  c->curl_ = curl_easy_init();
  if (c->curl_ == nullptr) return Internal("curl_easy_init failed");
  if (c->options_.credentials.empty() && !c->options_.auth_file.empty()) {
    VOUCH_ASSIGN_OR_RETURN(c->options_.credentials, CredentialsFromAuthFile(c->options_.auth_file, location.registry));
  }
  return c;
}

RegistryClient::RegistryClient(ImageLocation location, TransportOptions options)
    : location_(std::move(location)), options_(std::move(options)) {
  bool http = IsLoopback(location_.registry) ||
              std::find(options_.insecure_registries.begin(), options_.insecure_registries.end(),
                        location_.registry) != options_.insecure_registries.end();
  base_ = (http ? "http://" : "https://") + location_.registry + "/v2/" + location_.repository;
}

RegistryClient::~RegistryClient() {
  if (curl_ != nullptr) curl_easy_cleanup(H(curl_));
}

Result<RegistryClient::Response> RegistryClient::Perform(Request& req) {
  CURL* c = H(curl_);
  curl_easy_reset(c);
  Response resp;
  req.hooks = &options_.hooks;
  if (options_.hooks.Cancelled()) return CancelledStatus();
  if (options_.hooks.cancelled) {
    // Polled by curl about once a second even while nothing moves, so a stalled transfer stops too.
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &options_.hooks);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION,
                     +[](void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
                       return static_cast<const TransferHooks*>(user)->Cancelled() ? 1 : 0;
                     });
  }
  struct Ctx {
    Request* req;
    Response* resp;
  } ctx{&req, &resp};
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "vouch-convert/0.1");
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
  // Blob downloads may redirect to storage; curl does not forward Authorization to other hosts.
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, req.method == "GET" ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  SlistPtr headers;
  auto add_header = [&](const std::string& h) { headers.reset(curl_slist_append(headers.release(), h.c_str())); };
  for (const std::string& h : req.headers) add_header(h);
  if (!authorization_.empty()) add_header("Authorization: " + authorization_);
  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body ? req.body->data() : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body ? req.body->size() : 0));
  } else if (req.method == "PUT") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    if (!req.upload_file.empty()) {
      req.fd = ::open(req.upload_file.c_str(), O_RDONLY | O_CLOEXEC);
      if (req.fd < 0) return Unavailable("opening " + req.upload_file + ": " + std::strerror(errno), "io_error");
      off_t size = ::lseek(req.fd, 0, SEEK_END);
      ::lseek(req.fd, 0, SEEK_SET);
      curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
      curl_easy_setopt(c, CURLOPT_READDATA, &req);
      curl_easy_setopt(c, CURLOPT_READFUNCTION, +[](char* buf, size_t sz, size_t n, void* user) -> size_t {
        auto* r = static_cast<Request*>(user);
        if (r->hooks->Cancelled()) return CURL_READFUNC_ABORT;
        ssize_t got;
        do {
          got = ::read(r->fd, buf, sz * n);
        } while (got < 0 && errno == EINTR);
        if (got > 0) r->hooks->Bytes(static_cast<uint64_t>(got));
        return got < 0 ? CURL_READFUNC_ABORT : static_cast<size_t>(got);
      });
      add_header("Content-Type: application/octet-stream");
    } else {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body ? req.body->data() : "");
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body ? req.body->size() : 0));
    }
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &ctx);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, +[](char* data, size_t size, size_t n, void* user) -> size_t {
    auto* x = static_cast<Ctx*>(user);
    std::string line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) {
      // A new response (after a redirect or 100-continue): reset what we saw.
      x->resp->headers.clear();
      auto status = ParseHttpStatusLine(line);  // 0 (not a success) when malformed
      x->req->status_seen = status.ok() ? *status : 0;
      return size * n;
    }
    size_t colon = line.find(':');
    if (colon != std::string::npos && x->resp->headers.size() < 64) {
      std::string value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
      while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.pop_back();
      x->resp->headers[Lower(line.substr(0, colon))] = value.substr(0, 8192);
    }
    return size * n;
  });
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ctx);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t n, void* user) -> size_t {
    auto* x = static_cast<Ctx*>(user);
    const size_t len = size * n;
    const bool ok_status = x->req->status_seen >= 200 && x->req->status_seen < 300;
    if (x->req->sink != nullptr && ok_status) {
      Status st = x->req->sink->Write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data), len));
      if (!st.ok()) {
        x->req->sink_status = st;
        return 0;
      }
      x->req->hooks->Bytes(len);
      return len;
    }
    const size_t max = ok_status ? x->req->max_body : 64 * 1024;
    if (x->resp->body.size() + len > max) {
      x->req->overflow = true;
      return 0;
    }
    x->resp->body.append(data, len);
    return len;
  });
  CURLcode rc = curl_easy_perform(c);
  if (req.fd >= 0) {
    ::close(req.fd);
    req.fd = -1;
  }
  if (!req.sink_status.ok()) return req.sink_status;
  if (rc != CURLE_OK && options_.hooks.Cancelled()) return CancelledStatus();
  if (req.overflow) {
    return InvalidArgument("registry response to " + req.method + " " + req.url + " is larger than " +
                               std::to_string(req.max_body) + " bytes",
                           "image_too_large");
  }
  if (rc != CURLE_OK) {
    return Unavailable("registry " + location_.registry + ": " + curl_easy_strerror(rc), std::string(kRegistryUnreachable));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

Result<RegistryClient::Response> RegistryClient::Do(Request& req) {
  VOUCH_ASSIGN_OR_RETURN(Response r, Perform(req));
  if (r.status != 401) return r;
  VOUCH_RETURN_IF_ERROR(Authenticate(r, req.push));
  if (req.sink != nullptr && req.sink->written() != 0) return Internal("blob writer used before authentication");
  VOUCH_ASSIGN_OR_RETURN(Response again, Perform(req));
  if (again.status != 401) return again;
  // Authenticated as asked and still refused: say which credentials, not just "HTTP 401".
  const Credentials& cred = options_.credentials;
  if (authorization_.rfind("Basic ", 0) == 0) {
    return Unauthenticated("registry " + location_.registry + " refused the credentials of user \"" +
                               cred.username.substr(0, 100) + "\"",
                           std::string(kRegistryAuthFailed));
  }
  if (cred.empty()) {
    return Unauthenticated("registry " + location_.registry + " needs credentials for " + location_.repository +
                               " (an anonymous token was refused; --input-user/--output-user or --authfile)",
                           std::string(kRegistryAuthFailed));
  }
  return Unauthenticated("registry " + location_.registry + " refused user \"" + cred.username.substr(0, 100) +
                             "\" access to " + location_.repository + (req.push ? " (push)" : " (pull)"),
                         std::string(kRegistryAuthFailed));
}

Status RegistryClient::Authenticate(const Response& unauthorized, bool push) {
  auto it = unauthorized.headers.find("www-authenticate");
  if (it == unauthorized.headers.end()) {
    return Unauthenticated("registry " + location_.registry + " answered 401 without a challenge", std::string(kRegistryAuthFailed));
  }
  std::string scheme;
  auto params = ParseChallenge(it->second, &scheme);
  const Credentials& cred = options_.credentials;
  const std::string basic = cred.empty() ? std::string()
                                         : "Basic " + Base64Encode(AsBytes(cred.username + ":" + cred.password));
  if (scheme == "basic") {
    if (cred.empty()) {
      return Unauthenticated("registry " + location_.registry + " needs credentials (--*-user/--*-password-file or --authfile)",
                             std::string(kRegistryAuthFailed));
    }
    if (authorization_ == basic) {
      return Unauthenticated("registry " + location_.registry + " refused the credentials", std::string(kRegistryAuthFailed));
    }
    authorization_ = basic;
    return Status::Ok();
  }
  if (scheme != "bearer") {
    return Unauthenticated("registry " + location_.registry + " asks for unsupported auth scheme " + scheme,
                           std::string(kRegistryAuthFailed));
  }
  std::string realm = params["realm"];
  if (realm.rfind("https://", 0) != 0 && !(realm.rfind("http://", 0) == 0 && base_.rfind("http://", 0) == 0)) {
    return Unauthenticated("registry token realm \"" + realm.substr(0, 200) + "\" is not an https URL", std::string(kRegistryAuthFailed));
  }
  std::string scope = params.count("scope") ? params["scope"]
                                            : "repository:" + location_.repository + (push ? ":pull,push" : ":pull");
  std::string url = realm + (realm.find('?') == std::string::npos ? "?" : "&");
  char* s = curl_easy_escape(H(curl_), params["service"].c_str(), 0);
  char* sc = curl_easy_escape(H(curl_), scope.c_str(), 0);
  url += std::string("service=") + (s ? s : "") + "&scope=" + (sc ? sc : "");
  curl_free(s);
  curl_free(sc);
  std::string saved = authorization_;
  authorization_ = basic;  // the token endpoint takes the credentials (or nothing: anonymous)
  Request treq;
  treq.url = url;
  treq.max_body = 1 << 20;
  auto tr = Perform(treq);
  authorization_ = saved;
  if (!tr.ok()) return tr.status();
  if (tr->status == 401 && !cred.empty()) {
    return Unauthenticated("token service " + realm.substr(0, 200) + " refused the credentials of user \"" +
                               cred.username.substr(0, 100) + "\"",
                           std::string(kRegistryAuthFailed));
  }
  if (tr->status != 200) {
    return Unauthenticated("token service " + realm.substr(0, 200) + " answered " + std::to_string(tr->status) +
                               (cred.empty() ? " (no credentials given)" : ""),
                           std::string(kRegistryAuthFailed));
  }
  json tj = json::parse(tr->body, nullptr, false);
  std::string token;
  if (tj.is_object()) {
    token = tj.value("token", std::string());
    if (token.empty()) token = tj.value("access_token", std::string());
  }
  if (token.empty() || token.find_first_of("\r\n") != std::string::npos) {
    return Unauthenticated("token service " + realm.substr(0, 200) + " returned no token", std::string(kRegistryAuthFailed));
  }
  if (authorization_ == "Bearer " + token) {
    return Unauthenticated("registry " + location_.registry + " refused the token for " + scope, std::string(kRegistryAuthFailed));
  }
  authorization_ = "Bearer " + token;
  return Status::Ok();
}

Status RegistryClient::ErrorFor(const Response& r, const std::string& what, bool push) const {
  std::string detail;
  json j = json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty() &&
      j["errors"][0].is_object()) {
    detail = j["errors"][0].value("code", std::string()) + ": " + j["errors"][0].value("message", std::string());
  }
  std::string msg = what + ": registry " + location_.registry + " answered HTTP " + std::to_string(r.status) +
                    (detail.empty() ? "" : " (" + detail.substr(0, 300) + ")");
  if (r.status == 401) return Unauthenticated(msg, std::string(kRegistryAuthFailed));
  // Writing: whatever else the registry answers (403 denied, 405 read-only, 400 invalid, 5xx) is
  // a refusal of the push.
  if (push) return PermissionDenied(msg, std::string(kPushRefused));
  if (r.status == 403) return PermissionDenied(msg, std::string(kRegistryAuthFailed));
  if (r.status == 404) return NotFound(msg, std::string(kImageNotFound));
  return Unavailable(msg, std::string(kRegistryUnreachable));
}

Result<std::string> RegistryClient::FetchManifest(const std::string& reference, const std::string& expected_digest,
                                                  std::string* content_type) {
  Request req;
  req.url = base_ + "/manifests/" + reference;
  req.headers = {kManifestAccept};
  VOUCH_ASSIGN_OR_RETURN(Response r, Do(req));
  if (r.status != 200) return ErrorFor(r, "fetching manifest " + reference, false);
  if (!expected_digest.empty() && Sha256Digest(r.body) != expected_digest) {
    return DataLoss("manifest " + reference + " hashes to " + Sha256Digest(r.body) + ", expected " + expected_digest,
                    "digest_mismatch");
  }
  *content_type = r.headers["content-type"];
  return std::move(r.body);
}

Status RegistryClient::FetchBlob(const Descriptor& d, BlobStore& store) {
  if (store.Has(d.digest)) return Status::Ok();
  if (d.size > options_.max_blob_bytes) {
    return InvalidArgument("blob " + d.digest + " is " + std::to_string(d.size) + " bytes, over the limit",
                           "layer_too_large");
  }
  VOUCH_ASSIGN_OR_RETURN(auto w, store.NewWriter(d.digest, d.size));
  Request req;
  req.url = base_ + "/blobs/" + d.digest;
  req.sink = w.get();
  // Authenticate first with a HEAD so a 401 body never reaches the writer.
  Request head;
  head.method = "HEAD";
  head.url = req.url;
  VOUCH_ASSIGN_OR_RETURN(Response hr, Do(head));
  if (hr.status != 200 && hr.status != 307 && hr.status != 302) return ErrorFor(hr, "blob " + d.digest, false);
  VOUCH_ASSIGN_OR_RETURN(Response r, Perform(req));
  if (r.status != 200) return ErrorFor(r, "downloading blob " + d.digest, false);
  auto committed = w->Commit();
  if (!committed.ok()) return committed.status();
  return Status::Ok();
}

Result<PulledImage> RegistryClient::Pull(BlobStore& store) {
  std::string type;
  VOUCH_ASSIGN_OR_RETURN(std::string top, FetchManifest(location_.Reference(), location_.digest, &type));
  auto fetch = [&](const Descriptor& d) -> Result<std::string> {
    std::string t;
    if (d.size > kMaxManifestBytes) return InvalidArgument("manifest too large", "image_too_large");
    return FetchManifest(d.digest, d.digest, &t);
  };
  VOUCH_ASSIGN_OR_RETURN(PulledImage img, ResolveManifest(std::move(top), type, options_.platform, fetch));
  const TransferHooks& hooks = options_.hooks;
  if (hooks.on_manifest) hooks.on_manifest(img.manifest);
  VOUCH_RETURN_IF_ERROR(FetchBlob(img.manifest.config, store));
  if (hooks.on_blob) hooks.on_blob(img.manifest.config);
  VOUCH_ASSIGN_OR_RETURN(img.config_bytes, store.ReadSmall(img.manifest.config.digest, kMaxConfigBytes));
  for (const Descriptor& l : img.manifest.layers) {
    if (hooks.Cancelled()) return CancelledStatus();
    VOUCH_RETURN_IF_ERROR(FetchBlob(l, store));
    if (hooks.on_blob) hooks.on_blob(l);
  }
  return img;
}

Status RegistryClient::UploadBlob(const Descriptor& d, BlobStore& store) {
  const std::string& digest = d.digest;
  if (options_.hooks.Cancelled()) return CancelledStatus();
  Request head;
  head.method = "HEAD";
  head.push = true;
  head.url = base_ + "/blobs/" + digest;
  VOUCH_ASSIGN_OR_RETURN(Response hr, Do(head));
  if (hr.status == 200) {
    options_.hooks.Bytes(d.size);  // already there: counts as moved
    return Status::Ok();
  }
  Request start;
  start.method = "POST";
  start.push = true;
  start.url = base_ + "/blobs/uploads/";
  std::string empty;
  start.body = &empty;
  VOUCH_ASSIGN_OR_RETURN(Response sr, Do(start));
  if (sr.status != 202) return ErrorFor(sr, "starting upload of " + digest, true);
  std::string location = sr.headers["location"];
  if (location.empty()) return PermissionDenied("registry gave no upload location", std::string(kPushRefused));
  if (location.front() == '/') {
    // Relative to the registry root.
    size_t scheme_end = base_.find("://") + 3;
    location = base_.substr(0, base_.find('/', scheme_end)) + location;
  } else if (location.rfind("http://", 0) != 0 && location.rfind("https://", 0) != 0) {
    return PermissionDenied("registry gave an unusable upload location", std::string(kPushRefused));
  }
  Request put;
  put.method = "PUT";
  put.push = true;
  put.url = location + (location.find('?') == std::string::npos ? "?" : "&") + "digest=" + digest;
  put.upload_file = store.PathOf(digest);
  if (put.upload_file.empty()) return Internal("blob " + digest + " missing from the store");
  VOUCH_ASSIGN_OR_RETURN(Response pr, Do(put));
  if (pr.status != 201) return ErrorFor(pr, "uploading blob " + digest, true);
  return Status::Ok();
}

Result<std::string> RegistryClient::Push(const ImageToPush& image, BlobStore& store) {
  const TransferHooks& hooks = options_.hooks;
  for (const Descriptor& l : image.manifest.layers) {
    VOUCH_RETURN_IF_ERROR(UploadBlob(l, store));
    if (hooks.on_blob) hooks.on_blob(l);
  }
  VOUCH_RETURN_IF_ERROR(UploadBlob(image.manifest.config, store));
  if (hooks.on_blob) hooks.on_blob(image.manifest.config);
  if (hooks.Cancelled()) return CancelledStatus();
  const std::string digest = Sha256Digest(image.manifest_bytes);
  Request put;
  put.method = "PUT";
  put.push = true;
  put.url = base_ + "/manifests/" + (location_.tag.empty() ? digest : location_.tag);
  put.headers = {"Content-Type: " + image.manifest_media_type};
  put.body = &image.manifest_bytes;
  VOUCH_ASSIGN_OR_RETURN(Response r, Do(put));
  if (r.status != 201) return ErrorFor(r, "pushing manifest", true);
  auto dc = r.headers.find("docker-content-digest");
  if (dc != r.headers.end() && !dc->second.empty() && dc->second != digest) {
    return DataLoss("registry stored the manifest as " + dc->second.substr(0, 80) + ", expected " + digest,
                    "digest_mismatch");
  }
  return digest;
}

}  // namespace vouch::oci
