// The heartbeat batch body read from parser events (api/heartbeat_batch.h) against the route's
// previous reading of the parsed document (kept here as the reference): the same result, error
// code, reason and message for hand-picked bodies and for thousands of generated ones.
#include "api/heartbeat_batch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "api/reasons.h"
#include "base/encoding.h"
#include "http/json_body.h"
#include "workload/heartbeat_mac.h"
#include "workload/wire.h"

namespace vouch::api {
namespace {

using json = nlohmann::json;

// The route's code before api/heartbeat_batch.h (routes.cc, POST /api/v1/heartbeats).
Result<HeartbeatBatch> Reference(std::string_view body_text) {
  VOUCH_ASSIGN_OR_RETURN(http::JsonBody body, http::JsonBody::Parse(body_text));
  const json& j = body.json();
  HeartbeatBatch out;
  for (const auto& [k, v] : j.items()) {
    if (k == "node") {
      if (!v.is_object() || v.dump().size() > 4096) {
        return InvalidArgument("node must be an object of at most 4 KiB", std::string(kInvalidInfo));
      }
      out.node_info = v;
    } else if (k == "heartbeats") {
      if (!v.is_array() || v.size() > 5000) {
        return InvalidArgument("heartbeats must be an array of at most 5000", std::string(kInvalidHeartbeats));
      }
      for (const auto& h : v) {
        const bool has_mac = h.is_object() && h.contains("mac");
        const char* auth = has_mac ? "mac" : "signature";
        if (!h.is_object() || !h.contains("instance_id") || !h["instance_id"].is_string() || !h.contains("seq") ||
            !h["seq"].is_number_integer() || !h.contains("timestamp") || !h["timestamp"].is_number_integer() ||
            !h.contains("status") || !h["status"].is_string() || !h.contains(auth) || !h[auth].is_string() ||
            h.size() != 5) {
          return InvalidArgument("each heartbeat is {instance_id, seq, timestamp, status, signature|mac}",
                                 std::string(kInvalidHeartbeat));
        }
        Heartbeat hb;
        hb.instance_id = h["instance_id"].get<std::string>();
        hb.seq = h["seq"].get<int64_t>();
        hb.timestamp = h["timestamp"].get<int64_t>();
        hb.status = h["status"].get<std::string>();
        auto sig = Base64Decode(h[auth].get<std::string>());
        if (!workload::IsValidWireId(hb.instance_id) || hb.seq < 1 || !sig.ok() || sig->size() > 256 ||
            (has_mac && sig->size() != workload::kHeartbeatMacSize) || hb.status.size() > 16) {
          return InvalidArgument("malformed heartbeat", std::string(kInvalidHeartbeat));
        }
        (has_mac ? hb.mac : hb.signature) = std::move(*sig);
        out.heartbeats.push_back(std::move(hb));
      }
    } else if (k == "refusals") {
      if (!v.is_array() || v.size() > 100) {
        return InvalidArgument("refusals must be an array of at most 100", std::string(kInvalidRefusals));
      }
      for (const auto& ref : v) {
        bool valid = ref.is_object() && ref.contains("code") && ref["code"].is_string() && ref.contains("at") &&
                     ref["at"].is_number_integer();
        if (!valid) return InvalidArgument("each refusal is {at, code, message?, mrenclave?}", std::string(kInvalidRefusals));
        for (const auto& [rk, rv] : ref.items()) {
          if (rk == "code") {
            const std::string c = rv.get<std::string>();
            valid = valid && !c.empty() && c.size() <= 64 &&
                    std::all_of(c.begin(), c.end(), [](char ch) { return (ch >= 'a' && ch <= 'z') || ch == '_'; });
          } else if (rk == "mrenclave") {
            valid = valid && rv.is_string() && rv.get<std::string>().size() == 64 && HexDecode(rv.get<std::string>()).ok();
          } else if (rk == "message") {
            valid = valid && rv.is_string() && rv.get<std::string>().size() <= 300;
          } else if (rk != "at") {
            valid = false;
          }
        }
        if (!valid) return InvalidArgument("each refusal is {at, code, message?, mrenclave?}", std::string(kInvalidRefusals));
      }
      out.refusals = v;
    } else {
      return InvalidArgument("unknown field '" + k.substr(0, 64) + "'", std::string(kUnknownField));
    }
  }
  return out;
}

void ExpectSame(const std::string& body) {
  auto want = Reference(body);
  auto got = ParseHeartbeatBatch(body);
  ASSERT_EQ(got.ok(), want.ok()) << body << "\n got: " << got.status().ToString()
                                 << "\n want: " << want.status().ToString();
  if (!want.ok()) {
    EXPECT_EQ(got.status().code(), want.status().code()) << body;
    EXPECT_EQ(got.status().reason(), want.status().reason()) << body;
    EXPECT_EQ(got.status().message(), want.status().message()) << body;
    return;
  }
  EXPECT_EQ(got->node_info, want->node_info) << body;
  EXPECT_EQ(got->refusals, want->refusals) << body;
  ASSERT_EQ(got->heartbeats.size(), want->heartbeats.size()) << body;
  for (size_t i = 0; i < want->heartbeats.size(); ++i) {
    const Heartbeat &g = got->heartbeats[i], &w = want->heartbeats[i];
    EXPECT_EQ(g.instance_id, w.instance_id) << body;
    EXPECT_EQ(g.seq, w.seq) << body;
    EXPECT_EQ(g.timestamp, w.timestamp) << body;
    EXPECT_EQ(g.status, w.status) << body;
    EXPECT_EQ(g.mac, w.mac) << body;
    EXPECT_EQ(g.signature, w.signature) << body;
  }
}

const std::string kMac = Base64Encode(std::vector<uint8_t>(32, 7));
const std::string kSig = Base64Encode(std::vector<uint8_t>(70, 9));

std::string Hb(const std::string& id = "inst_1", const std::string& seq = "1", const std::string& extra = "") {
  return R"({"instance_id":")" + id + R"(","seq":)" + seq + R"(,"timestamp":1700000000,"status":"running","mac":")" +
         kMac + "\"" + extra + "}";
}

TEST(HeartbeatBatch, HandPickedBodiesGetTheDocumentsAnswers) {
  const std::vector<std::string> bodies = {
      "", "   ", "[]", "1", "\"x\"", "null", "true", "1.5", "{", "{}", "{} x", "{\"a\":1,}", "{/*c*/}",
      R"({"heartbeats":[]})",
      "{\"heartbeats\":[" + Hb() + "]}",
      "{\"heartbeats\":[" + Hb() + "," + Hb("inst_2", "2") + "]}",
      "{\"heartbeats\":[" + Hb() + "],\"node\":{\"os\":\"linux\",\"n\":[1,2.5,{\"x\":null}]}}",
      R"({"heartbeats":{}})", R"({"heartbeats":"x"})", R"({"heartbeats":null})", R"({"heartbeats":[1]})",
      R"({"heartbeats":[[]]})", R"({"heartbeats":[{}]})", R"({"heartbeats":[null]})",
      "{\"heartbeats\":[" + Hb("inst_1", "0") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "-1") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "1.0") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "18446744073709551615") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "9223372036854775808") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "99999999999999999999999") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "{\"a\":[1]}") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "[1,{}]") + "]}",
      "{\"heartbeats\":[" + Hb("bad id!") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "1", ",\"signature\":\"" + kSig + "\"") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "1", ",\"x\":1") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "1", ",\"seq\":5") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "1", ",\"seq\":\"5\"") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "\"x\"", ",\"seq\":5") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "1", ",\"mac\":\"AAAA\"") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "1", ",\"mac\":\"!!\"") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "1", ",\"status\":\"aaaaaaaaaaaaaaaaa\"") + "]}",
      "{\"heartbeats\":[" + Hb("inst_1", "1", ",\"status\":\"stopping\"") + "]}",
      R"({"heartbeats":[{"instance_id":"inst_1","seq":1,"timestamp":5,"status":"running","signature":")" + kSig + "\"}]}",
      R"({"heartbeats":[{"instance_id":"inst_1","seq":1,"timestamp":5,"status":"running","signature":")" +
          Base64Encode(std::vector<uint8_t>(257, 1)) + "\"}]}",
      R"({"heartbeats":[{"instance_id":"inst_1","seq":1,"timestamp":5,"status":"running"}]})",
      R"({"heartbeats":[{"instance_id":"inst_1","seq":1,"timestamp":5,"status":"running","signature":1}]})",
      // A repeated key: the last value counts, in the batch and in a heartbeat.
      "{\"heartbeats\":[1],\"heartbeats\":[" + Hb() + "]}",
      "{\"heartbeats\":[" + Hb() + "],\"heartbeats\":[1]}",
      "{\"heartbeats\":[" + Hb() + "],\"heartbeats\":{\"a\":[" + Hb() + "]}}",
      "{\"node\":1,\"node\":{}}", "{\"node\":{},\"node\":[]}",
      // Errors in key order: heartbeats < node < refusals; unknown keys where they sort.
      "{\"node\":1,\"heartbeats\":[1]}", "{\"zz\":1,\"heartbeats\":[1]}", "{\"aa\":1,\"heartbeats\":[1]}",
      "{\"refusals\":1,\"node\":1}", "{\"heartbeats\":[1],\"refusals\":5}",
      "{\"node\":\"x\"}", "{\"node\":null}", "{\"node\":true}", "{\"node\":2.5}", "{\"node\":[1]}",
      "{\"node\":{\"a\":\"" + std::string(5000, 'a') + "\"}}",
      "{\"node\":{\"a\":\"" + std::string(4000, 'a') + "\"}}",
      "{\"refusals\":[]}", "{\"refusals\":{}}", "{\"refusals\":[1]}",
      R"({"refusals":[{"at":1,"code":"report_mac_invalid","message":"m","mrenclave":")" + std::string(64, 'a') + "\"}]}",
      R"({"refusals":[{"at":1,"code":"Bad"}]})", R"({"refusals":[{"at":1.5,"code":"x"}]})",
      R"({"refusals":[{"at":1,"code":"x","extra":1}]})", R"({"refusals":[{"at":1,"code":"x","message":5}]})",
      R"({"refusals":[{"at":1,"code":"x","mrenclave":"zz"}]})",
      "{\"" + std::string(100, 'k') + "\":1}",
      "{\"heartbeats\":[" + Hb() + "]}   ",
      "{\"heartbeats\":[" + Hb() + "]} {}",
      "{\"heartbeats\":[" + Hb() + "]",
      "{\"heartbeats\":[" + Hb("inst_\\u00e9") + "]}",
      "{\"heartbeats\":[" + Hb("inst_\xff") + "]}",
      std::string(70, '[') + std::string(70, ']'),
      // The shapes the fast reading takes, and its edges (it hands anything else to the general one).
      "{\"heartbeats\":[" + Hb() + "],\"node\":{\"version\":\"bench\"}}",
      "{\"node\":{\"version\":\"bench\"},\"heartbeats\":[" + Hb() + "," + Hb("inst_2") + "]}",
      "{\"node\":{\"v\":\"a\\\"b\\\\\",\"n\":[1,-2,3.5e3,true,false,null,{\"x\":[]}],\"e\":{}}}",
      "{\"node\":{\"v\":\"\\u00e9\\n\"}}", "{\"node\":{\"v\":\"\xc3\xa9\"}}", "{\"node\":{\"v\":tru}}",
      "{\"node\":{\"v\":1} }", "{\"node\":{\"v\":01}}", "{\"node\":{\"v\":\"x}}", "{\"node\":{\"v\":\"x\\",
      "{\"node\":" + std::string(62, '[') + std::string(62, ']') + "}",
      "{\"node\":{\"a\":" + std::string(61, '[') + std::string(61, ']') + "}}",
      "{\"node\":{\"a\":" + std::string(62, '[') + std::string(62, ']') + "}}",
      "{\"node\":{\"a\":" + std::string(63, '[') + std::string(63, ']') + "}}",
      " \t\r\n{ \"heartbeats\" : [ \n" + Hb() + " , " + Hb("inst_2") + " ] , \"node\" : { } } \n",
      R"({"heartbeats":[{ "status" : "running", "mac":")" + kMac +
          R"(", "timestamp" : -0, "seq" : 123456789012345678 , "instance_id" : "inst_1" }]})",
      R"({"heartbeats":[{"status":"running","mac":")" + kMac + R"(","timestamp":1,"seq":1234567890123456789,"instance_id":"i"}]})",
      R"({"heartbeats":[{"status":"running","mac":")" + kMac + R"(","timestamp":1e3,"seq":1,"instance_id":"i"}]})",
      R"({"heartbeats":[{"status":"running","mac":")" + kMac + R"(","timestamp":1,"seq":-5,"instance_id":"i"}]})",
      R"({"heartbeats":[{"status":"running","mac":")" + kMac + R"(","timestamp":1,"seq":5,"instance_id":"i"}]})",
      R"({"heartbeats":[{"status":"running","mac":")" + kMac + R"(","timestamp":1,"seq":5,"seq":6,"instance_id":"i"}]})",
      R"({"heartbeats":[{"status":"running","mac":")" + kMac + R"(","signature":")" + kSig + R"(","seq":5,"instance_id":"i"}]})",
      "{\"heartbeats\":[" + Hb() + "],\"refusals\":[]}",
      "{\"heartbeats\":[" + Hb() + "],\"heartbeats\":[]}",
      "{\"heartbeats\":[" + Hb() + ",]}", "{\"heartbeats\":[," + Hb() + "]}", "{\"heartbeats\":[" + Hb() + "],}",
      "{\"a\":" + std::string(70, '[') + std::string(70, ']') + "}",
  };
  for (const std::string& b : bodies) ExpectSame(b);
}

TEST(HeartbeatBatch, TheArrayBoundIsCheckedBeforeItsElements) {
  std::string big = "{\"heartbeats\":[1";
  for (int i = 0; i < 5000; ++i) big += "," + Hb("inst_" + std::to_string(i));
  ExpectSame(big + "]}");  // 5001 elements, the first bad: invalid_heartbeats
  std::string ok = "{\"heartbeats\":[" + Hb("inst_0");
  for (int i = 1; i < 5000; ++i) ok += "," + Hb("inst_" + std::to_string(i));
  ExpectSame(ok + "]}");  // exactly 5000
  auto parsed = ParseHeartbeatBatch(ok + "]}");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->heartbeats.size(), 5000u);
  ExpectSame(ok + "," + Hb("inst_x") + "]}");  // 5001
  ExpectSame(std::string("{\"heartbeats\":[") + std::string(http::JsonBody::kMaxBodyBytes, ' ') + "]}");
}

// Bodies assembled from valid and invalid pieces at random (fixed seed), each compared.
TEST(HeartbeatBatch, GeneratedBodiesGetTheDocumentsAnswers) {
  std::mt19937 rng(20261206);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  const std::vector<std::string> values = {"1", "0", "-3", "2.5", "\"running\"", "\"stopping\"", "null", "true",
                                           "[]", "{}", "[1,{\"a\":[]}]", "{\"k\":{\"j\":1}}", "\"" + kMac + "\"",
                                           "\"" + kSig + "\"", "\"inst_9\"", "\"\"", "18446744073709551615"};
  const std::vector<std::string> hb_keys = {"instance_id", "seq", "timestamp", "status", "mac", "signature", "other"};
  const std::vector<std::string> top_keys = {"heartbeats", "node", "refusals", "a", "zzz"};
  std::map<std::string, int> outcomes;  // reason ("" when accepted) -> bodies
  for (int n = 0; n < 3000; ++n) {
    std::string body = "{";
    const int ntop = static_cast<int>(rng() % 4);
    for (int t = 0; t < ntop; ++t) {
      if (t > 0) body += ",";
      const std::string k = pick(top_keys);
      body += "\"" + k + "\":";
      if (k == "heartbeats" && rng() % 5 != 0) {
        body += "[";
        const int nhb = static_cast<int>(rng() % 4);
        for (int h = 0; h < nhb; ++h) {
          if (h > 0) body += ",";
          if (rng() % 2 == 0) {
            body += Hb("inst_" + std::to_string(rng() % 50), std::to_string(rng() % 3));
          } else if (rng() % 4 == 0) {
            body += pick(values);
          } else {
            body += "{";
            const int nf = static_cast<int>(rng() % 7);
            for (int f = 0; f < nf; ++f) {
              if (f > 0) body += ",";
              body += "\"" + pick(hb_keys) + "\":" + pick(values);
            }
            body += "}";
          }
        }
        body += "]";
      } else if (k == "refusals" && rng() % 2 == 0) {
        body += R"([{"at":)" + pick(values) + R"(,"code":)" + pick({"\"x_y\"", "\"X\"", "1"}) + "}]";
      } else {
        body += pick(values);
      }
    }
    body += "}";
    if (rng() % 10 == 0 && !body.empty()) body.erase(rng() % body.size(), 1);  // broken JSON, sometimes
    ExpectSame(body);
    // The same body laid out with whitespace, when it is JSON at all.
    json doc = json::parse(body, nullptr, false);
    if (!doc.is_discarded()) ExpectSame(doc.dump(2));
    if (::testing::Test::HasFailure()) break;
    auto r = ParseHeartbeatBatch(body);
    ++outcomes[r.ok() ? std::string() : r.status().reason()];
  }
  // The generator reaches every outcome, accepted bodies included.
  for (std::string_view reason : {std::string_view(), std::string_view("invalid_json"), kInvalidHeartbeat,
                                  kInvalidHeartbeats, kInvalidInfo, kInvalidRefusals, kUnknownField}) {
    EXPECT_GT(outcomes[std::string(reason)], 20) << "reason '" << reason << "'";
  }
}

}  // namespace
}  // namespace vouch::api
