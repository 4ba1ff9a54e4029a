#include "http/metrics.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

namespace vouch::http {
namespace {

void AppendEscaped(std::string* out, std::string_view value, bool escape_quotes) {
  for (char c : value) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '"' && escape_quotes) {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

// {a="b",c="d"} or "" for no labels; `extra` (e.g. le) is appended last.
std::string LabelText(const MetricLabels& labels, std::string_view extra_name = {},
                      std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return {};
  std::string out = "{";
  bool first = true;
  auto add = [&](std::string_view k, std::string_view v) {
    if (!first) out.push_back(',');
    first = false;
    out.append(k);
    out.append("=\"");
    AppendEscaped(&out, v, true);
    out.push_back('"');
  };
  for (const auto& [k, v] : labels) add(k, v);
  if (!extra_name.empty()) add(extra_name, extra_value);
  out.push_back('}');
  return out;
}

// Adds `le="..."` to an already rendered label text.
std::string WithLe(const std::string& label_text, std::string_view le) {
  if (label_text.empty()) return fmt::format("{{le=\"{}\"}}", le);
  return fmt::format("{},le=\"{}\"}}", label_text.substr(0, label_text.size() - 1), le);
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

bool ValidName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

}  // namespace

const std::vector<double>& Metrics::DefaultBuckets() {
  static const std::vector<double> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                               0.25,  0.5,    1,     2.5,  5,     10};
  return kBuckets;
}

Metrics::Family* Metrics::GetFamily(std::string_view name, Type type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    if (!ValidName(name)) {
      spdlog::error("metrics: invalid metric name '{}'", name);
      return nullptr;
    }
    Family f;
    f.type = type;
    if (type == Type::kHistogram) f.buckets = DefaultBuckets();
    it = families_.emplace(std::string(name), std::move(f)).first;
  } else if (it->second.type != type) {
    spdlog::error("metrics: '{}' used with two different types", name);
    return nullptr;
  }
  return &it->second;
}

void Metrics::DeclareCounter(std::string_view name, std::string_view help) {
  std::lock_guard lock(mu_);
  if (Family* f = GetFamily(name, Type::kCounter)) f->help = help;
}

void Metrics::DeclareGauge(std::string_view name, std::string_view help) {
  std::lock_guard lock(mu_);
  if (Family* f = GetFamily(name, Type::kGauge)) f->help = help;
}

void Metrics::DeclareHistogram(std::string_view name, std::string_view help,
                               std::vector<double> buckets) {
  std::sort(buckets.begin(), buckets.end());
  buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
  std::lock_guard lock(mu_);
  Family* f = GetFamily(name, Type::kHistogram);
  if (f == nullptr) return;
  f->help = help;
  if (f->histograms.empty()) f->buckets = std::move(buckets);
}

void Metrics::Increment(std::string_view name, const MetricLabels& labels, double delta) {
  std::string key = LabelText(labels);
  std::lock_guard lock(mu_);
  if (Family* f = GetFamily(name, Type::kCounter)) f->values[key] += delta;
}

void Metrics::SetGauge(std::string_view name, const MetricLabels& labels, double value) {
  std::string key = LabelText(labels);
  std::lock_guard lock(mu_);
  if (Family* f = GetFamily(name, Type::kGauge)) f->values[key] = value;
}

void Metrics::AddToGauge(std::string_view name, const MetricLabels& labels, double delta) {
  std::string key = LabelText(labels);
  std::lock_guard lock(mu_);
  if (Family* f = GetFamily(name, Type::kGauge)) f->values[key] += delta;
}

void Metrics::Observe(std::string_view name, const MetricLabels& labels, double value) {
  std::string key = LabelText(labels);
  std::lock_guard lock(mu_);
  Family* f = GetFamily(name, Type::kHistogram);
  if (f == nullptr) return;
  Histogram& h = f->histograms[key];
  if (h.bucket_counts.empty()) h.bucket_counts.assign(f->buckets.size(), 0);
  auto it = std::lower_bound(f->buckets.begin(), f->buckets.end(), value);
  if (it != f->buckets.end()) ++h.bucket_counts[static_cast<size_t>(it - f->buckets.begin())];
  ++h.count;
  h.sum += value;
}

void Metrics::AddGaugeCallback(std::string_view name, std::string_view help, MetricLabels labels,
                               std::function<double()> callback) {
  AddCallback(name, Type::kGauge, help, std::move(labels), std::move(callback));
}

void Metrics::AddCounterCallback(std::string_view name, std::string_view help, MetricLabels labels,
                                 std::function<double()> callback) {
  AddCallback(name, Type::kCounter, help, std::move(labels), std::move(callback));
}

void Metrics::AddCallback(std::string_view name, Type type, std::string_view help, MetricLabels labels,
                          std::function<double()> callback) {
  std::lock_guard lock(mu_);
  Family* f = GetFamily(name, type);
  if (f == nullptr || !callback) return;
  if (!help.empty()) f->help = help;
  f->callbacks.push_back({std::move(labels), std::move(callback)});
}

double Metrics::Value(std::string_view name, const MetricLabels& labels) const {
  std::string key = LabelText(labels);
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  auto v = it->second.values.find(key);
  return v == it->second.values.end() ? 0 : v->second;
}

uint64_t Metrics::HistogramCount(std::string_view name, const MetricLabels& labels) const {
  std::string key = LabelText(labels);
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  auto h = it->second.histograms.find(key);
  return h == it->second.histograms.end() ? 0 : h->second.count;
}

std::string Metrics::Render() const {
  // Evaluate callbacks first, without the lock: they may take other locks or use Metrics.
  std::map<std::string, std::vector<std::pair<std::string, double>>, std::less<>> computed;
  {
    std::vector<std::pair<std::string, Callback>> callbacks;
    {
      std::lock_guard lock(mu_);
      for (const auto& [name, f] : families_) {
        for (const Callback& cb : f.callbacks) callbacks.emplace_back(name, cb);
      }
    }
    for (const auto& [name, cb] : callbacks) {
      double v = 0;
      try {
        v = cb.fn();
      } catch (const std::exception& e) {
        spdlog::warn("metrics: gauge callback for {} threw: {}", name, e.what());
        v = std::nan("");
      }
      computed[name].emplace_back(LabelText(cb.labels), v);
    }
  }

  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& [name, f] : families_) {
    std::string help = f.help.empty() ? name : f.help;
    out.append("# HELP ").append(name).push_back(' ');
    AppendEscaped(&out, help, false);
    out.push_back('\n');
    const char* type = f.type == Type::kCounter ? "counter"
                       : f.type == Type::kGauge ? "gauge"
                                                : "histogram";
    out.append(fmt::format("# TYPE {} {}\n", name, type));
    for (const auto& [labels, v] : f.values) {
      out.append(fmt::format("{}{} {}\n", name, labels, FormatValue(v)));
    }
    if (auto c = computed.find(name); c != computed.end()) {
      for (const auto& [labels, v] : c->second) {
        out.append(fmt::format("{}{} {}\n", name, labels, FormatValue(v)));
      }
    }
    for (const auto& [labels, h] : f.histograms) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i < f.buckets.size(); ++i) {
        cumulative += h.bucket_counts[i];
        out.append(fmt::format("{}_bucket{} {}\n", name, WithLe(labels, FormatValue(f.buckets[i])),
                               cumulative));
      }
      out.append(fmt::format("{}_bucket{} {}\n", name, WithLe(labels, "+Inf"), h.count));
      out.append(fmt::format("{}_sum{} {}\n", name, labels, FormatValue(h.sum)));
      out.append(fmt::format("{}_count{} {}\n", name, labels, h.count));
    }
  }
  return out;
}

}  // namespace vouch::http
