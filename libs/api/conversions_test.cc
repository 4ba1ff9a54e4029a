// Conversion jobs (issue 15; manager_conversions.cc, conversion_runner.cc): validation up front,
// the worker pool running libs/convert on OCI layouts (allowed here by
// ManagerOptions::conversions.allow_local_images; vouchd allows registries only, tested in e2e),
// progress, cancellation, failure codes, leases, restarts and the build made once.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "api/conversion_runner.h"
#include "api/manager.h"
#include "api/reasons.h"
#include "api/routes.h"
#include "api/test_util.h"
#include "base/file.h"
#include "crypto/random.h"
#include "http/metrics.h"
#include "oci/blob_store.h"
#include "oci/tar.h"
#include "oci/transport.h"
#include "store/database.h"
#include "testing/temp_dir.h"

namespace vouch::api {
namespace {

using http::Response;

class ConversionsTest : public ManagerFixture {
 protected:
  ConversionsTest() : ManagerFixture("conversions") {
    users_ = {{"admin", "admin"}, {"member", "member"}, {"viewer", "viewer"}};
  }
  void Configure(ManagerOptions& options) override {
    options.conversions.allow_local_images = true;
    options.conversions.manager_url = "https://vouchd.test:8443";
  }
  void SetUp() override {
    ManagerFixture::SetUp();
    if (!Ready()) return;
    MakeZone("prod");
    MakeApp("web", "prod");
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/rte", "#!/bin/sh\necho fake runtime\n", 0755).ok());
    WriteImage("in", "v1", {{"bin", ""}, {"bin/app", "application"}});
  }
  void TearDown() override {
    runner_.reset();
    ManagerFixture::TearDown();
  }

  // An OCI layout at dir_/<name> holding one image tagged `tag` with one layer of `files`
  // (content "" for a directory) and Cmd /bin/app.
  void WriteImage(const std::string& name, const std::string& tag,
                  const std::vector<std::pair<std::string, std::string>>& files) {
    auto w = *oci::TarWriter::Create("", oci::Compression::kNone);
    for (const auto& [path, content] : files) {
      if (content.empty()) {
        ASSERT_TRUE(w->AddDirectory(path, 0755).ok());
      } else {
        ASSERT_TRUE(w->AddFile(path, 0755, content).ok());
      }
    }
    ASSERT_TRUE(w->Close().ok());
    const std::string layer = w->data();
    auto store = *oci::BlobStore::Create(dir_ + "/seed-" + name);
    std::string ld = *store->PutBytes(layer);
    json config = {{"architecture", "amd64"},
                   {"os", "linux"},
                   {"config", {{"Cmd", {"/bin/app"}}}},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", {ld}}}}};
    std::string cfg = config.dump();
    std::string cd = *store->PutBytes(cfg);
    oci::ImageToPush img;
    img.manifest_media_type = std::string(oci::kOciManifest);
    img.manifest.config = {std::string(oci::kOciConfig), cd, cfg.size(), std::nullopt, {}};
    img.manifest.layers.push_back({std::string(oci::kOciLayerTar), ld, layer.size(), std::nullopt, {}});
    json m = {{"schemaVersion", 2},
              {"mediaType", oci::kOciManifest},
              {"config", {{"mediaType", oci::kOciConfig}, {"digest", cd}, {"size", cfg.size()}}},
              {"layers", {{{"mediaType", oci::kOciLayerTar}, {"digest", ld}, {"size", layer.size()}}}}};
    img.manifest_bytes = m.dump();
    ASSERT_TRUE(oci::PushOciLayout(*oci::ImageLocation::Parse("oci:" + dir_ + "/" + name + ":" + tag), img, *store).ok());
  }

  json Create(const std::string& input, const std::string& output, const json& options = json::object(),
              unsigned want = 202) {
    return CallJson("POST", "/api/v1/conversions",
                    {{"app", "web"}, {"input_image", input}, {"output_image", output}, {"options", options}}, "member",
                    want);
  }
  std::string In(const std::string& tag = "v1") { return "oci:" + dir_ + "/in:" + tag; }
  std::string Out(const std::string& name) { return "oci:" + dir_ + "/" + name + ":tee"; }

  void StartRunner(const std::string& member = "m1", uint64_t scratch_limit = 1ull << 30) {
    ConversionRunnerOptions o;
    o.workers = 1;
    o.scratch_dir = dir_ + "/scratch";
    ASSERT_TRUE(MakeDirs(o.scratch_dir, 0700).ok());
    o.scratch_limit = scratch_limit;
    o.runtime_path = dir_ + "/rte";
    o.member_id = member;
    o.poll = std::chrono::milliseconds(100);
    o.progress_interval = std::chrono::milliseconds(50);
    o.on_phase = on_phase_;
    auto r = ConversionRunner::Start(*manager_, o, &metrics_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    runner_ = std::move(*r);
  }

  // Polls the job until `pred` holds (at most 30 s); fails loudly otherwise.
  json WaitFor(const std::string& id, const std::function<bool(const json&)>& pred, const std::string& what) {
    json j;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      j = CallJson("GET", "/api/v1/conversions/" + id, nullptr, "viewer", 200);
      if (pred(j)) return j;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "timed out waiting for " << what << "; last record: " << j.dump();
    return j;
  }
  json WaitEnded(const std::string& id) {
    return WaitFor(
        id, [](const json& j) { return j["state"] == "done" || j["state"] == "failed" || j["state"] == "cancelled"; },
        "the job to end");
  }

  std::unique_ptr<ConversionRunner> runner_;
  std::function<void(std::string_view, const convert::CancelToken&)> on_phase_;
};

TEST_F(ConversionsTest, BadInputIsRefusedUpFrontAndMakesNoJob) {
  const json body = {{"app", "web"}, {"input_image", In()}, {"output_image", Out("o")}};
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/conversions", body, "viewer", 403)), "forbidden");
  json b = body;
  b["app"] = "nope";
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/conversions", b, "member", 404)), "app_not_found");
  b = body;
  b["input_image"] = "Not A Reference!";
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/conversions", b, "member", 400)), "invalid_image_ref");
  b = body;
  b.erase("output_image");
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/conversions", b, "member", 400)), "missing_field");
  b = body;
  b["options"] = {{"entrypont", "/x"}};
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/conversions", b, "member", 400)), "unknown_field");
  b["options"] = {{"isvsvn", 70000}};
  json err = CallJson("POST", "/api/v1/conversions", b, "member", 400);
  EXPECT_EQ(ErrorCode(err), "invalid_options");
  EXPECT_NE(err["error"]["message"].get<std::string>().find("options.isvsvn"), std::string::npos) << err;
  b["options"] = "verbose";
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/conversions", b, "member", 400)), "invalid_options");
  b = body;
  b["input_registry"] = "nope";
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/conversions", b, "member", 404)), "registry_not_found");
  b = body;
  b["colour"] = "blue";
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/conversions", b, "member", 400)), "unknown_field");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM conversions"), 0);

  // A server that is not a test refuses local paths: it would read and write them for callers.
  ManagerOptions strict;
  auto m2 = Manager::Create(db_.get(), crypto::RandomSecret(32), &clock_, strict);
  ASSERT_TRUE(m2.ok());
  Principal member;
  member.kind = Principal::Kind::kUser;
  member.name = "member";
  member.role = Role::kMember;
  ConversionSpec s;
  s.app = "web";
  s.input_image = In();
  s.output_image = "registry.example/web:tee";
  EXPECT_EQ((*m2)->CreateConversion(member, s).status().reason(), kInvalidImageRef);
  s.input_image = "registry.example/web:1";
  s.output_image = "docker-archive:/tmp/x.tar";
  EXPECT_EQ((*m2)->CreateConversion(member, s).status().reason(), kInvalidImageRef);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM conversions"), 0);
}

TEST_F(ConversionsTest, StoredRegistriesAreResolvedByNameOrHostAndTheirSecretsNeverShow) {
  const std::string secret = "pw-conv-Sup3rS3cret-41";
  CallJson("POST", "/api/v1/registries",
           {{"name", "corp"}, {"url", "https://registry.example.com:5000"}, {"username", "ci"}, {"password", secret}},
           "admin", 201);
  json body = {{"app", "web"},
               {"input_image", "registry.example.com:5000/team/web:1"},
               {"output_image", "registry.example.com:5000/team/web:1-tee"}};
  json j = CallJson("POST", "/api/v1/conversions", body, "member", 202);
  EXPECT_EQ(j["input_registry"], "corp");  // by host
  EXPECT_EQ(j["output_registry"], "corp");
  body["input_image"] = "elsewhere.example/team/web:1";
  body["input_registry"] = "corp";  // its credentials never go to another host
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/conversions", body, "member", 400)), "registry_host_mismatch");
  body.erase("input_registry");
  json anon = CallJson("POST", "/api/v1/conversions", body, "member", 202);
  EXPECT_TRUE(anon["input_registry"].is_null());
  std::string everything = CallJson("GET", "/api/v1/conversions", nullptr, "viewer", 200).dump();
  EXPECT_EQ(everything.find(secret), std::string::npos);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit WHERE detail LIKE ?", {"%" + secret + "%"}), 0);
}

TEST_F(ConversionsTest, AJobIsQueuedWithItsRecordListedAndReadable) {
  json j = Create(In(), Out("o"), {{"isvsvn", 2}});
  const std::string id = j["id"];
  EXPECT_EQ(id.rfind("cnv_", 0), 0u) << id;
  EXPECT_EQ(j["state"], "queued");
  EXPECT_EQ(j["app_name"], "web");
  EXPECT_EQ(j["input_image"], In());
  EXPECT_TRUE(j["input_registry"].is_null());
  EXPECT_EQ(j["options"]["isvsvn"], 2);
  EXPECT_EQ(j["options"]["platform"], "linux/amd64");  // every option, defaults included
  EXPECT_EQ(j["progress"]["phase"], "queued");
  EXPECT_EQ(j["log"].size(), 1u);
  EXPECT_TRUE(j["error"].is_null());
  EXPECT_TRUE(j["build_id"].is_null());
  EXPECT_EQ(j["attempts"], 0);
  EXPECT_EQ(j["created_by"], "user:member");
  EXPECT_EQ(CallJson("GET", "/api/v1/conversions/" + id, nullptr, "viewer", 200), j);
  EXPECT_EQ(ErrorCode(CallJson("GET", "/api/v1/conversions/cnv_nope", nullptr, "viewer", 404)), "conversion_not_found");
  clock_.Advance(std::chrono::seconds(1));
  Create(In(), Out("o2"));
  json list = CallJson("GET", "/api/v1/conversions?app=web&state=queued&limit=1", nullptr, "viewer", 200);
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_NE(list["items"][0]["id"], id);  // newest first
  ASSERT_TRUE(list["next_cursor"].is_string());
  json next = CallJson("GET", "/api/v1/conversions?app=web&state=queued&limit=1&cursor=" +
                                  list["next_cursor"].get<std::string>(),
                       nullptr, "viewer", 200);
  ASSERT_EQ(next["items"].size(), 1u);
  EXPECT_EQ(next["items"][0]["id"], id);
  EXPECT_EQ(CallJson("GET", "/api/v1/conversions?state=done", nullptr, "viewer", 200)["items"].size(), 0u);
  EXPECT_EQ(ErrorCode(CallJson("GET", "/api/v1/conversions?state=bogus", nullptr, "viewer", 400)), "invalid_filter");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit WHERE action = 'conversion.create' AND target = ?", {id}), 1);
}

TEST_F(ConversionsTest, RunsToDoneWithProgressAndOneBuildPendingApproval) {
  StartRunner();
  json j = Create(In(), Out("o"), {{"isvprodid", 9}});
  const std::string id = j["id"];
  json done = WaitEnded(id);
  ASSERT_EQ(done["state"], "done") << done.dump(2);
  EXPECT_TRUE(done["error"].is_null());
  EXPECT_EQ(done["attempts"], 1);
  EXPECT_EQ(done["progress"]["bytes_done"], done["progress"]["bytes_total"]);
  ASSERT_TRUE(done["build_id"].is_string());
  ASSERT_TRUE(done["output_digest"].is_string());
  EXPECT_FALSE(done["finished_at"].is_null());
  EXPECT_FALSE(done["started_at"].is_null());
  json app = CallJson("GET", "/api/v1/apps/web", nullptr, "viewer", 200);
  EXPECT_EQ(done["mrsigner"], app["mrsigner"]);  // the app's own sealed key signed it
  json build = CallJson("GET", "/api/v1/builds/" + done["build_id"].get<std::string>(), nullptr, "viewer", 200);
  EXPECT_EQ(build["status"], "pending");
  EXPECT_EQ(build["measurements"]["mrenclave"], done["mrenclave"]);
  EXPECT_EQ(build["image_digest"], done["output_digest"]);
  EXPECT_EQ(build["measurements"]["isvprodid"], 9);
  EXPECT_EQ(build["created_by"], "user:member");
  std::string log = done["log"].dump();
  EXPECT_NE(log.find("build " + done["build_id"].get<std::string>() + " created"), std::string::npos) << log;
  // The output image is there, as written.
  auto store = *oci::BlobStore::Create(dir_ + "/check");
  auto out = oci::PullImage(*oci::ImageLocation::Parse(Out("o")), {}, *store);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->manifest_digest, done["output_digest"]);
  for (const char* action : {"conversion.create", "conversion.start", "conversion.done"}) {
    EXPECT_EQ(Count("SELECT COUNT(*) FROM audit WHERE action = ? AND target = ?", {std::string(action), id}), 1) << action;
  }
  // The same conversion again: done, and the identical build is not made twice.
  json again = WaitEnded(Create(In(), Out("o3"), {{"isvprodid", 9}})["id"]);
  ASSERT_EQ(again["state"], "done") << again.dump(2);
  EXPECT_EQ(again["build_id"], done["build_id"]);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM builds"), 1);
  // Metrics: jobs by state, the duration, the bytes.
  const std::string text = metrics_.Render();
  EXPECT_NE(text.find("vouch_conversions{state=\"done\"} 2"), std::string::npos) << text;
  EXPECT_EQ(metrics_.HistogramCount("vouch_conversion_duration_seconds", {{"result", "done"}}), 2u);
  EXPECT_GT(metrics_.Value("vouch_conversion_bytes_total"), 0);
  // Nothing is left in scratch.
  EXPECT_TRUE(std::filesystem::is_empty(dir_ + "/scratch/m1"));
}

TEST_F(ConversionsTest, FailuresEndWithAStableCode) {
  WriteImage("hostile", "v1", {{"etc", ""}, {"etc/../../escape", "x"}});
  StartRunner();
  json missing = WaitEnded(Create(In("nope"), Out("o"))["id"]);
  EXPECT_EQ(missing["state"], "failed");
  EXPECT_EQ(missing["error"]["code"], "image_not_found") << missing.dump(2);
  json hostile = WaitEnded(Create("oci:" + dir_ + "/hostile:v1", Out("o"))["id"]);
  EXPECT_EQ(hostile["state"], "failed");
  EXPECT_EQ(hostile["error"]["code"], "image_rejected") << hostile.dump(2);
  EXPECT_NE(hostile["log"].back().get<std::string>().find("failed (image_rejected)"), std::string::npos);
  EXPECT_TRUE(hostile["build_id"].is_null());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/o/index.json"));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM builds"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit WHERE action = 'conversion.failed'"), 2);
  EXPECT_EQ(metrics_.HistogramCount("vouch_conversion_duration_seconds", {{"result", "failed"}}), 2u);
}

TEST_F(ConversionsTest, AJobNeedingMoreScratchThanTheLimitFails) {
  StartRunner("m1", /*scratch_limit=*/4096);
  json j = WaitEnded(Create(In(), Out("o"))["id"]);
  EXPECT_EQ(j["state"], "failed");
  EXPECT_EQ(j["error"]["code"], "scratch_exhausted") << j.dump(2);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/o/index.json"));
}

TEST_F(ConversionsTest, CancelEndsAQueuedJobAtOnceAndStopsARunningOne) {
  json q = Create(In(), Out("o"));
  json c = CallJson("POST", "/api/v1/conversions/" + q["id"].get<std::string>() + "/cancel", nullptr, "member", 202);
  EXPECT_EQ(c["state"], "cancelled");
  EXPECT_EQ(c["error"]["code"], "cancelled");
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/conversions/" + q["id"].get<std::string>() + "/cancel", nullptr, "member",
                          409)),
            "conversion_finished");
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/conversions/cnv_nope/cancel", nullptr, "member", 404)), "conversion_not_found");
  EXPECT_EQ(ErrorCode(CallJson("POST", "/api/v1/conversions/" + q["id"].get<std::string>() + "/cancel", nullptr, "viewer",
                          403)),
            "forbidden");

  // A running job: held at the start of "converting" until its token is cancelled.
  std::atomic<bool> held{false};
  on_phase_ = [&](std::string_view phase, const convert::CancelToken& token) {
    if (phase != "converting") return;
    held = true;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!token.cancelled() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  StartRunner();
  const std::string id = Create(In(), Out("o2"))["id"];
  WaitFor(id, [&](const json& j) { return held.load() && j["state"] == "converting"; }, "the job to convert");
  json r = CallJson("POST", "/api/v1/conversions/" + id + "/cancel", nullptr, "member", 202);
  EXPECT_TRUE(r["cancel_requested"].get<bool>());
  json end = WaitEnded(id);
  EXPECT_EQ(end["state"], "cancelled") << end.dump(2);
  EXPECT_EQ(end["error"]["code"], "cancelled");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/o2/index.json"));
  EXPECT_TRUE(std::filesystem::is_empty(dir_ + "/scratch/m1"));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit WHERE action = 'conversion.cancel' AND target = ?", {id}), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit WHERE action = 'conversion.cancelled' AND target = ?", {id}), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM builds"), 0);
}

TEST_F(ConversionsTest, ARestartRequeuesItsOwnJobsAndGivesUpAfterThreeAttempts) {
  // As a kill -9 leaves them: claimed by this member (m1), lease still valid.
  const std::string again = Create(In(), Out("o"))["id"];
  const std::string given_up = Create(In(), Out("o2"))["id"];
  std::filesystem::create_directories(dir_ + "/scratch/m1/" + again + "/blobs");
  const int64_t later = ToUnixSeconds(clock_.Now()) + 300;
  Exec("UPDATE conversions SET state = 'converting', lease_owner = 'm1', lease_expires_at = ?, attempts = 1 WHERE id = ?",
       {later, again});
  Exec("UPDATE conversions SET state = 'pushing', lease_owner = 'm1', lease_expires_at = ?, attempts = 3 WHERE id = ?",
       {later, given_up});
  StartRunner("m1");
  json a = WaitEnded(again);
  EXPECT_EQ(a["state"], "done") << a.dump(2);
  EXPECT_EQ(a["attempts"], 2);
  EXPECT_NE(a["log"].dump().find("restarted"), std::string::npos) << a["log"];
  json g = WaitEnded(given_up);
  EXPECT_EQ(g["state"], "failed");
  EXPECT_EQ(g["error"]["code"], "interrupted") << g.dump(2);
  EXPECT_TRUE(g["build_id"].is_null());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM builds"), 1);
}

TEST_F(ConversionsTest, AnotherMembersJobIsTakenOverOnlyOnceItsLeaseExpired) {
  const std::string held = Create(In(), Out("o"))["id"];
  const int64_t expires = ToUnixSeconds(clock_.Now()) + 30;
  Exec("UPDATE conversions SET state = 'pushing', lease_owner = 'dead', lease_expires_at = ?, attempts = 1 WHERE id = ?",
       {expires, held});
  StartRunner("m2");
  // The runner works (a later job completes) but leaves the leased one alone.
  json other = WaitEnded(Create(In(), Out("o2"))["id"]);
  EXPECT_EQ(other["state"], "done");
  json still = CallJson("GET", "/api/v1/conversions/" + held, nullptr, "viewer", 200);
  EXPECT_EQ(still["state"], "pushing");
  EXPECT_EQ(still["attempts"], 1);
  clock_.Advance(std::chrono::seconds(31));
  runner_->Wake();
  json taken = WaitEnded(held);
  EXPECT_EQ(taken["state"], "done") << taken.dump(2);
  EXPECT_EQ(taken["attempts"], 2);
  EXPECT_NE(taken["log"].dump().find("member dead stopped answering"), std::string::npos) << taken["log"];
}

}  // namespace
}  // namespace vouch::api
