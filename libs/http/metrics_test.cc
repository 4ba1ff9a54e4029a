#include "http/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace vouch::http {
namespace {

TEST(Metrics, RendersCountersWithLabelsAndHelp) {
  Metrics m;
  m.DeclareCounter("vouch_certificates_issued_total", "Certificates issued");
  m.Increment("vouch_certificates_issued_total", {{"zone", "z1"}});
  m.Increment("vouch_certificates_issued_total", {{"zone", "z1"}}, 2);
  m.Increment("vouch_certificates_issued_total", {{"zone", "z\"2\\\n"}});
  std::string text = m.Render();
  EXPECT_NE(text.find("# HELP vouch_certificates_issued_total Certificates issued\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE vouch_certificates_issued_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("vouch_certificates_issued_total{zone=\"z1\"} 3\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("vouch_certificates_issued_total{zone=\"z\\\"2\\\\\\n\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(m.Value("vouch_certificates_issued_total", {{"zone", "z1"}}), 3);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Metrics m;
  m.DeclareHistogram("lat_seconds", "Latency", {0.1, 1});
  m.Observe("lat_seconds", {{"route", "/a"}}, 0.05);
  m.Observe("lat_seconds", {{"route", "/a"}}, 0.1);  // le is inclusive
  m.Observe("lat_seconds", {{"route", "/a"}}, 0.5);
  m.Observe("lat_seconds", {{"route", "/a"}}, 7);
  std::string text = m.Render();
  EXPECT_NE(text.find("# TYPE lat_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_sum{route=\"/a\"} 7.6"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_count{route=\"/a\"} 4\n"), std::string::npos);
  EXPECT_EQ(m.HistogramCount("lat_seconds", {{"route", "/a"}}), 4u);
}

TEST(Metrics, GaugesAndCallbacks) {
  Metrics m;
  m.SetGauge("g", {}, 5);
  m.AddToGauge("g", {}, -2);
  int pending = 7;
  m.AddGaugeCallback("vouch_tasks_pending", "Pending approval tasks", {},
                     [&pending] { return static_cast<double>(pending); });
  std::string text = m.Render();
  EXPECT_NE(text.find("g 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE vouch_tasks_pending gauge\nvouch_tasks_pending 7\n"),
            std::string::npos)
      << text;
  pending = 9;
  EXPECT_NE(m.Render().find("vouch_tasks_pending 9\n"), std::string::npos);
}

TEST(Metrics, CounterCallbacksRenderAsCounters) {
  Metrics m;
  double issued = 4;
  m.AddCounterCallback("vouch_certificates_issued_total", "Certificates issued", {}, [&issued] { return issued; });
  EXPECT_NE(m.Render().find("# TYPE vouch_certificates_issued_total counter\nvouch_certificates_issued_total 4\n"),
            std::string::npos)
      << m.Render();
  // A gauge callback under a counter's name is a type conflict: ignored, the counter stays.
  m.AddGaugeCallback("vouch_certificates_issued_total", "", {}, [] { return -1.0; });
  EXPECT_EQ(m.Render().find("-1"), std::string::npos);
}

TEST(Metrics, TypeConflictsAndBadNamesAreIgnored) {
  Metrics m;
  m.Increment("x_total");
  m.Observe("x_total", {}, 1);  // ignored: x_total is a counter
  m.Increment("bad name");
  std::string text = m.Render();
  EXPECT_EQ(text.find("x_total_bucket"), std::string::npos);
  EXPECT_EQ(text.find("bad name"), std::string::npos);
  EXPECT_EQ(m.Value("x_total"), 1);
}

TEST(Metrics, ConcurrentUpdatesAreAllCounted) {
  Metrics m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m] {
      for (int i = 0; i < 1000; ++i) {
        m.Increment("c_total", {{"k", "v"}});
        m.Observe("h_seconds", {}, 0.002);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(m.Value("c_total", {{"k", "v"}}), 4000);
  EXPECT_EQ(m.HistogramCount("h_seconds"), 4000u);
}

}  // namespace
}  // namespace vouch::http
