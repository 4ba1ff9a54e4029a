#include "rte/runtime.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "base/clock.h"
#include "base/file.h"
#include "rte/credentials.h"
#include "rte/process.h"
#include "rte/verify.h"

namespace vouch::rte {
namespace {

void Log(const std::string& msg) { std::fprintf(stderr, "vouch-rte: %s\n", msg.c_str()); }

std::string Join(const std::string& root, const std::string& abs) {
  if (root.empty() || root == "/") return abs;
  return (root.back() == '/' ? root.substr(0, root.size() - 1) : root) + abs;
}

Status WriteCredentials(CredentialStore& store, const manifest::CertificateRequest& req, const IssuedCredentials& c) {
  VOUCH_RETURN_IF_ERROR(store.Write(req.key_path, c.key_pem.view(), 0600));
  VOUCH_RETURN_IF_ERROR(store.Write(req.cert_path, c.cert_pem, 0644));
  if (!c.ca_pem.empty()) VOUCH_RETURN_IF_ERROR(store.Write(req.ca_path, c.ca_pem, 0644));
  return Status::Ok();
}

// A refusal code as the agent and vouchd take it: snake_case, at most 64 characters.
std::string RefusalCode(const Status& st) {
  const std::string& r = st.reason();
  bool valid = !r.empty() && r.size() <= 64 &&
               std::all_of(r.begin(), r.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
  return valid ? r : std::string("start_refused");
}

// When to renew: two thirds into the remaining lifetime (at least 5 s from now).
std::chrono::steady_clock::time_point RenewAt(const std::string& not_after) {
  auto now = std::chrono::steady_clock::now();
  auto exp = ParseRfc3339(not_after);
  if (!exp.ok()) return now + std::chrono::hours(1);
  auto left = std::chrono::duration_cast<std::chrono::seconds>(*exp - std::chrono::system_clock::now());
  auto wait = std::max<std::chrono::seconds>(left * 2 / 3, std::chrono::seconds(5));
  return now + wait;
}

}  // namespace

Result<std::vector<std::string>> ChildArgv(const manifest::EnclaveManifest& m, const std::vector<std::string>& cmdline) {
  std::vector<std::string> argv = m.entrypoint;
  if (!cmdline.empty()) {
    if (!m.allow_cmdline_args) {
      return PermissionDenied("the manifest does not allow command-line arguments (convert with --allow-cmdline-args)",
                              "cmdline_args_not_allowed");
    }
    argv.insert(argv.end(), cmdline.begin(), cmdline.end());
  } else {
    argv.insert(argv.end(), m.args.begin(), m.args.end());
  }
  if (argv.empty()) return InvalidArgument("nothing to run");
  return argv;
}

std::vector<std::string> ChildEnv(const manifest::EnclaveManifest& m, const std::vector<std::string>& process_env) {
  std::vector<std::string> env = m.env;
  for (const std::string& kv : process_env) {
    const std::string name = kv.substr(0, kv.find('='));
    if (std::find(m.mutable_env.begin(), m.mutable_env.end(), name) == m.mutable_env.end()) continue;
    std::erase_if(env, [&](const std::string& e) { return e.substr(0, e.find('=')) == name; });
    env.push_back(kv);
  }
  return env;
}

int Run(const RuntimeOptions& o) {
  BlockSignals();  // idempotent; before the worker thread exists
  auto loaded = LoadManifest(o.root);
  if (!loaded.ok()) {
    Log("refusing to start: " + loaded.status().message());
    std::fflush(stderr);
    // No manifest to trust: the default socket path (or the run-time override) is tried.
    if (o.connect) {
      if (auto link = o.connect(manifest::EnclaveManifest{}.agent_socket); link.ok()) {
        (void)(*link)->ReportRefusal(RefusalCode(loaded.status()), std::string(manifest::kManifestPath),
                                     loaded.status().message(), "");
      }
    }
    return 1;
  }
  const manifest::EnclaveManifest& m = loaded->manifest;
  auto argv = ChildArgv(m, o.cmdline_args);
  if (!argv.ok()) {
    Log("refusing to start: " + argv.status().message());
    return 1;
  }
  const std::vector<std::string> env = ChildEnv(m, o.process_env);
  Identity id{loaded->mrenclave, loaded->mrsigner, m.isvprodid, m.isvsvn, m.debug};
  const manifest::CertificateRequest* cert_req = m.certificates.empty() ? nullptr : &m.certificates.front();

  // The first certificate request runs while the files are checked: the certificate is bound to
  // the manifest's measurement, and its key stays in this process until the check has passed
  // (docs/convert.md, "Start-up"). Both take ~10 ms; overlapped, the start pays for one.
  auto connect_agent = [&]() -> Result<std::unique_ptr<AgentLink>> {
    return o.connect ? o.connect(m.agent_socket) : Unimplemented("no agent");
  };
  std::unique_ptr<AgentLink> agent;
  Result<IssuedCredentials> first = Unavailable("not attempted");
  std::thread first_attempt;
  if (cert_req != nullptr) {
    auto link = connect_agent();
    if (link.ok()) {
      agent = std::move(*link);
      first_attempt = std::thread([&] { first = agent->RequestCertificate(*cert_req, id, nullptr, ""); });
    } else {
      first = link.status();
    }
  }
  std::string bad_path;
  Status verified = VerifyFiles(m, o.root, &bad_path);
  // The credentials directories are made fresh before anything is written to them.
  std::unique_ptr<CredentialStore> store;
  if (verified.ok() && cert_req != nullptr) {
    auto opened = CredentialStore::Open(*cert_req, o.root, &bad_path);
    if (opened.ok()) {
      store = std::move(*opened);
    } else {
      verified = opened.status();
    }
  }
  if (!verified.ok()) {
    Log("refusing to start: " + verified.message() + " [" + verified.reason() + "]");
    std::fflush(stderr);
    if (first_attempt.joinable()) first_attempt.join();
    if (!agent) {
      if (auto link = connect_agent(); link.ok()) agent = std::move(*link);
    }
    if (agent) {
      // Queued by the agent for vouchd's audit log (docs/agent.md "Local refusals").
      Status reported = agent->ReportRefusal(RefusalCode(verified), bad_path, verified.message(), loaded->mrenclave);
      if (!reported.ok()) Log("could not report the refusal to the agent: " + reported.message());
    }
    if (first.ok()) {
      // Issued for a start that is refused: the key is dropped here, never written; tell the
      // manager the instance stopped so it is not shown as running.
      (void)agent->SendHeartbeat(first->key.get(), first->heartbeat_key.span(), first->instance_id, 1, "stopping");
    }
    return 1;
  }
  Log("verified " + std::to_string(m.files.size()) + " protected entries; mrenclave " + loaded->mrenclave);
  if (first_attempt.joinable()) first_attempt.join();

  IssuedCredentials creds;
  if (cert_req != nullptr) {
    if (!m.zone_ca_pem.empty()) {
      Status st = store->Write(cert_req->ca_path, m.zone_ca_pem, 0644);
      if (!st.ok()) Log("cannot write the zone CA: " + st.message());
    }
    // Attempt 1 is the one made during the file check; later ones follow a doubling backoff.
    auto backoff = std::chrono::milliseconds(1000);
    Result<IssuedCredentials> got = std::move(first);
    for (int attempt = 1; !got.ok(); ++attempt) {
      const Status st = got.status();
      Log("no certificate yet (attempt " + std::to_string(attempt) + "): " + st.message() + " [" + st.reason() +
          "]" + (st.reason() == "build_not_approved" || st.reason() == "build_pending" ? "; the build awaits approval"
                                                                                        : "") +
          "; retrying in " + std::to_string(backoff.count() / 1000) + " s");
      std::fflush(stderr);
      if (int sig = SleepOrSignal(backoff); sig != 0) {
        Log("stopped by signal " + std::to_string(sig) + " before the application started");
        return 128 + sig;
      }
      backoff = std::min(backoff * 2, o.max_backoff);
      if (!agent) {
        auto link = connect_agent();
        if (!link.ok()) {
          got = link.status();
          continue;
        }
        agent = std::move(*link);
      }
      got = agent->RequestCertificate(*cert_req, id, nullptr, "");
    }
    creds = std::move(*got);
    Status st = WriteCredentials(*store, *cert_req, creds);
    if (!st.ok()) {
      Log("cannot write the certificate files: " + st.message());
      return 111;
    }
    Log("certificate written to " + cert_req->cert_path + " (instance " + creds.instance_id + ", valid until " +
        creds.not_after + ")");
  }

  // Exactly the program the converter resolved and the check above measured (no PATH search).
  const manifest::FileEntry* program = manifest::FindEntry(m, m.exec_path);
  if (program == nullptr || program->type != manifest::FileEntry::Type::kFile) {
    Log("refusing to start: the program " + m.exec_path + " is not a listed file");
    return 1;
  }
  auto child = StartChild(Join(o.root, m.exec_path), *argv, env);
  if (!child.ok()) {
    Log("cannot start the application: " + child.status().message());
    return 127;
  }

  // Renewal and heartbeats run beside the signal loop.
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::thread worker;
  int64_t seq = 0;
  if (agent && cert_req != nullptr) {
    worker = std::thread([&] {
      auto renew_at = RenewAt(creds.not_after);
      const auto interval = std::chrono::seconds(std::max<uint32_t>(m.heartbeat_interval_seconds, 1));
      // The issuance itself recorded the instance as running; the first heartbeat follows a
      // second later, not while the application is starting on the same cores.
      auto next_beat = std::chrono::steady_clock::now() + std::min<std::chrono::steady_clock::duration>(
                                                               interval, std::chrono::seconds(1));
      std::unique_lock<std::mutex> lock(mu);
      while (!stop) {
        auto now = std::chrono::steady_clock::now();
        if (m.heartbeat && now >= next_beat) {
          lock.unlock();
          Status hb = agent->SendHeartbeat(creds.key.get(), creds.heartbeat_key.span(), creds.instance_id, ++seq, "running");
          if (!hb.ok()) Log("heartbeat failed: " + hb.message());
          lock.lock();
          next_beat = now + interval;
        }
        if (now >= renew_at) {
          lock.unlock();
          auto r = agent->RequestCertificate(*cert_req, id, creds.key.get(), creds.instance_id);
          if (r.ok()) {
            Status w = WriteCredentials(*store, *cert_req, *r);
            if (w.ok()) {
              Log("certificate renewed (valid until " + r->not_after + ")");
              creds.cert_pem = r->cert_pem;
              creds.not_after = r->not_after;
              if (!r->instance_id.empty()) creds.instance_id = r->instance_id;
              // A new serial, so a new heartbeat key (this thread sends the heartbeats: none is
              // MAC'd under the old one after this).
              creds.heartbeat_key = std::move(r->heartbeat_key);
              renew_at = RenewAt(creds.not_after);
            } else {
              Log("cannot write the renewed certificate: " + w.message());
              renew_at = now + std::chrono::seconds(10);
            }
          } else {
            Log("renewal failed: " + r.status().message() + "; retrying in 10 s");
            renew_at = now + std::chrono::seconds(10);
          }
          lock.lock();
        }
        auto wake = m.heartbeat ? std::min(next_beat, renew_at) : renew_at;
        cv.wait_until(lock, wake, [&] { return stop; });
      }
    });
  }

  const int code = SuperviseChild(*child);
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
  }
  cv.notify_all();
  if (worker.joinable()) worker.join();
  if (agent && cert_req != nullptr && m.heartbeat) {
    Status hb = agent->SendHeartbeat(creds.key.get(), creds.heartbeat_key.span(), creds.instance_id, ++seq, "stopping");
    if (!hb.ok()) Log("final heartbeat failed: " + hb.message());
  }
  Log("application exited with status " + std::to_string(code));
  return code;
}

}  // namespace vouch::rte
