#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vouch::http {

// Label pairs in the order they are rendered: {{"route", "/healthz"}, {"method", "GET"}}.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// A small in-process registry rendered in the Prometheus text exposition format (0.0.4).
// Counters, gauges (set, or computed by a callback at render time) and histograms, each a
// family with a name and HELP text and any number of label sets. Names must match
// [a-zA-Z_:][a-zA-Z0-9_:]*; label values are escaped. All methods are thread-safe.
// Using a name as two different types is a programming error: the second use is ignored.
//
// The Server records
//   http_requests_total{route,method,status}          counter
//   http_request_duration_seconds{route}               histogram
//   http_connections_active                            gauge
class Metrics {
 public:
  static const std::vector<double>& DefaultBuckets();  // 1 ms .. 10 s

  Metrics() = default;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Optional up-front declarations that set the HELP text (and histogram buckets). Using a
  // family without declaring it declares it with an empty HELP.
  void DeclareCounter(std::string_view name, std::string_view help);
  void DeclareGauge(std::string_view name, std::string_view help);
  void DeclareHistogram(std::string_view name, std::string_view help,
                        std::vector<double> buckets = DefaultBuckets());

  void Increment(std::string_view name, const MetricLabels& labels = {}, double delta = 1);
  void SetGauge(std::string_view name, const MetricLabels& labels, double value);
  void AddToGauge(std::string_view name, const MetricLabels& labels, double delta);
  void Observe(std::string_view name, const MetricLabels& labels, double value);
  // A gauge whose value is computed when rendering (e.g. vouch_tasks_pending from the store).
  // The callback runs without the registry lock held, on the thread calling Render().
  void AddGaugeCallback(std::string_view name, std::string_view help, MetricLabels labels,
                        std::function<double()> callback);
  // The same for a counter kept elsewhere (e.g. vouch_certificates_issued_total): the callback
  // must return a value that never decreases during the process's life.
  void AddCounterCallback(std::string_view name, std::string_view help, MetricLabels labels,
                          std::function<double()> callback);

  // Current value of a counter or set gauge (0 if absent); for tests.
  double Value(std::string_view name, const MetricLabels& labels = {}) const;
  // Observation count of a histogram series (0 if absent); for tests.
  uint64_t HistogramCount(std::string_view name, const MetricLabels& labels = {}) const;

  // Prometheus text format; content type "text/plain; version=0.0.4; charset=utf-8".
  std::string Render() const;
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Histogram {
    std::vector<uint64_t> bucket_counts;  // per bucket, not cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  struct Callback {
    MetricLabels labels;
    std::function<double()> fn;
  };
  struct Family {
    Type type = Type::kCounter;
    std::string help;
    std::vector<double> buckets;
    // Keyed by the rendered label text ({a="b",c="d"}) so equal label sets share a series.
    std::map<std::string, double> values;
    std::map<std::string, Histogram> histograms;
    std::vector<Callback> callbacks;
  };
  Family* GetFamily(std::string_view name, Type type);  // requires mu_
  void AddCallback(std::string_view name, Type type, std::string_view help, MetricLabels labels,
                   std::function<double()> callback);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
};

}  // namespace vouch::http
