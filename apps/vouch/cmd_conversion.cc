// vouch conversion create | list | get | cancel: conversion jobs run by vouchd (issue 15,
// docs/convert.md "Server-side conversion", docs/cli.md). `create --wait` follows the job until it
// ends: a progress bar redrawn on one line when stderr is a terminal, plain lines otherwise; the
// exit status is non-zero when the job failed or was cancelled.
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "cmd_common.h"
#ifdef VOUCH_HAVE_CONVERT
#include "convert/options.h"
#endif

namespace vouch::cli {
namespace {

const std::vector<client::Column> kConversionColumns = {
    {"ID", "/id"},
    {"APP", "/app_name"},
    {"STATE", "/state"},
    {"INPUT", "/input_image"},
    {"OUTPUT", "/output_image"},
    {"ERROR", "/error/code"},
    {"BUILD", "/build_id"},
    {"CREATED", "/created_at"},
};

struct ConversionArgs {
  std::string id, app, input, output, input_registry, output_registry, state;
  bool wait = false;
  size_t limit = 0;
#ifdef VOUCH_HAVE_CONVERT
  // `vouch convert`'s manifest and limit options: the same flags, names and defaults, from the
  // one mapping libs/convert/options.h keeps for the CLI and the server.
  convert::FlagValues flags;
#endif
};

// The options object of POST /api/v1/conversions: every setting, defaults included (the job
// record shows them so).
json OptionsFrom(const ConversionArgs& a) {
#ifdef VOUCH_HAVE_CONVERT
  auto settings = convert::FromFlags(a.flags);
  if (!settings.ok()) UsageError(settings.status().message());
  return convert::SettingsToJson(*settings);
#else
  (void)a;
  return json::object();  // this build has no converter: the server's defaults
#endif
}

void AddConvertOptions(CLI::App* c, ConversionArgs& a) {
#ifdef VOUCH_HAVE_CONVERT
  convert::AddFlags(*c, &a.flags);
#else
  (void)c;
  (void)a;
#endif
}

bool Terminal(const json& job) {
  const std::string s = job.value("state", "");
  return s == "done" || s == "failed" || s == "cancelled";
}

uint64_t Num(const json& obj, const char* key) {
  const json v = obj.is_object() ? obj.value(key, json()) : json();
  return v.is_number_unsigned() ? v.get<uint64_t>() : 0;
}

std::string Bytes(uint64_t n) {
  char buf[32];
  if (n >= 1000000000) {
    std::snprintf(buf, sizeof(buf), "%.2f GB", static_cast<double>(n) / 1e9);
  } else if (n >= 1000000) {
    std::snprintf(buf, sizeof(buf), "%.1f MB", static_cast<double>(n) / 1e6);
  } else if (n >= 1000) {
    std::snprintf(buf, sizeof(buf), "%.1f kB", static_cast<double>(n) / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(n));
  }
  return buf;
}

// "pulling  layers 1/3  120.5 MB / 290.0 MB" (the state, and the progress phase when it differs);
// `*percent` is bytes done of bytes total (-1: unknown).
std::string ProgressText(const json& job, int* percent) {
  const json p = job.value("progress", json::object());
  std::string phase = job.value("state", "");
  if (p.is_object() && p.value("phase", json()).is_string() && !Terminal(job)) {
    const std::string ph = p["phase"].get<std::string>();
    if (!ph.empty() && ph != phase) phase += " (" + ph + ")";
  }
  const uint64_t ld = Num(p, "layers_done"), lt = Num(p, "layers_total");
  const uint64_t bd = Num(p, "bytes_done"), bt = Num(p, "bytes_total");
  std::string text = client::Sanitize(phase);
  if (lt > 0) text += "  layers " + std::to_string(ld) + "/" + std::to_string(lt);
  *percent = -1;
  if (bt > 0) {
    *percent = static_cast<int>(std::min<uint64_t>(100, bd * 100 / bt));
    text += "  " + Bytes(bd) + " / " + Bytes(bt);
  } else if (bd > 0) {
    text += "  " + Bytes(bd);
  }
  return text;
}

size_t TerminalColumns() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
  return 80;
}

// Shows a job's progress on stderr: one line redrawn on a terminal; plain lines (one per change
// of state or layer count, and per tenth of the bytes) otherwise.
class ProgressView {
 public:
  ProgressView() : tty_(::isatty(STDERR_FILENO) == 1) {}
  ~ProgressView() { Finish(); }

  void Show(const json& job) {
    int percent = -1;
    const std::string text = ProgressText(job, &percent);
    if (tty_) {
      std::string bar;
      if (percent >= 0) {
        const int width = 24, filled = percent * width / 100;
        bar = "[" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), '.') +
              "] " + std::to_string(percent) + "%  ";
      }
      std::string line = job.value("id", "") + "  " + bar + text;
      const size_t cols = TerminalColumns() - 1;
      if (line.size() > cols) line.resize(cols);
      if (line == last_line_) return;
      std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
      std::fflush(stderr);
      last_line_ = line;
      drawn_ = true;
      return;
    }
    const json p = job.value("progress", json::object());
    const std::string key = job.value("state", "") + "/" + std::to_string(Num(p, "layers_done")) + "/" +
                            std::to_string(percent < 0 ? -1 : percent / 10);
    if (key == last_key_) return;
    last_key_ = key;
    std::fprintf(stderr, "%s  %s%s\n", job.value("id", "").c_str(), text.c_str(),
                 percent < 0 ? "" : ("  " + std::to_string(percent) + "%").c_str());
    std::fflush(stderr);
  }

  void Finish() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  bool tty_;
  bool drawn_ = false;
  std::string last_line_, last_key_;
};

// Follows job ID until it ends. A GET that finds no server (vouchd restarting, an HA member
// failing over) is retried for up to two minutes; a 429 is waited out by the client (Retry-After).
json WaitForJob(Session& s, const std::string& id) {
  using namespace std::chrono;
  ProgressView view;
  milliseconds interval{200};
  steady_clock::time_point unreachable_since{};
  bool unreachable = false;
  json last;
  while (true) {
    Result<json> got = s.api->Get(ApiPath({"conversions", id}));
    if (!got.ok()) {
      const std::string r = got.status().reason();
      const bool transient = r == "connection_failed" || r == "tls_error" || r == "timeout" ||
                             got.status().code() == StatusCode::kUnavailable;
      if (!transient) {
        view.Finish();
        Check(got.status(), "conversion " + id);
      }
      if (!unreachable) {
        unreachable = true;
        unreachable_since = steady_clock::now();
        view.Finish();
        std::fprintf(stderr, "vouch: %s; still waiting for conversion %s\n",
                     client::Sanitize(got.status().message()).c_str(), id.c_str());
      } else if (steady_clock::now() - unreachable_since > minutes(2)) {
        view.Finish();
        Check(got.status(), "conversion " + id);
      }
      std::this_thread::sleep_for(seconds(1));
      continue;
    }
    unreachable = false;
    json job = std::move(got).value();
    if (!job.is_object()) throw CliError("the server's answer for conversion " + id + " is not an object");
    view.Show(job);
    if (Terminal(job)) {
      view.Finish();
      return job;
    }
    // Poll faster while the job moves, slower (up to 1 s) while it does not.
    interval = job == last ? std::min(interval * 2, milliseconds(1000)) : milliseconds(200);
    last = std::move(job);
    std::this_thread::sleep_for(interval);
  }
}

// Prints the final record; throws (non-zero exit, one line on stderr) when it did not end done.
void Report(const GlobalOptions& global, const json& job) {
  if (global.json()) {
    PrintJson(job);
  } else {
    PrintObject(global, job, {"log", "options"});
  }
  std::cout.flush();
  const std::string state = job.value("state", "");
  if (state == "done") return;
  std::string message = "conversion " + job.value("id", "") + " " + state;
  const json err = job.value("error", json());
  if (err.is_object()) {
    message += ": " + client::CellText(err.value("message", json())) + " (" + client::CellText(err.value("code", json())) +
               ")";
  }
  throw CliError(client::Sanitize(message), kExitError);
}

void Register(CLI::App& root, GlobalOptions& global) {
  auto a = std::make_shared<ConversionArgs>();
  CLI::App* group = AddGroup(root, "conversion",
                             "Conversion jobs run by vouchd: an image converted with the app's signing key and "
                             "stored registry credentials");

  CLI::App* create = group->add_subcommand(
      "create", "Start a conversion (member); the output becomes a pending build of the app");
  create->add_option("--app", a->app, "App name or id")->required();
  create->add_option("--input", a->input, "Input image: host[:port]/repo[:tag|@sha256:...]")->required();
  create->add_option("--output", a->output, "Output image: host[:port]/repo[:tag]")->required();
  create->add_option("--input-registry", a->input_registry,
                     "Stored registry for the input (default: the app's, else the one whose URL host matches)");
  create->add_option("--output-registry", a->output_registry, "Stored registry for the output (same default)");
  create->add_flag("--wait", a->wait,
                   "Follow the job until it ends (progress on stderr); exit 1 when it failed or was cancelled");
  AddConvertOptions(create, *a);
  create->callback([&global, a] {
    json body = {{"app", a->app},
                 {"input_image", a->input},
                 {"output_image", a->output},
                 {"options", OptionsFrom(*a)}};
    if (!a->input_registry.empty()) body["input_registry"] = a->input_registry;
    if (!a->output_registry.empty()) body["output_registry"] = a->output_registry;
    Session s = Connect(global);
    json job = Check(s.api->Post(ApiPath({"conversions"}), body));
    if (!a->wait) {
      PrintObject(global, job, {"log", "options"});
      return;
    }
    const std::string id = job.value("id", "");
    if (id.empty()) throw CliError("the server's answer has no conversion id");
    Report(global, Terminal(job) ? job : WaitForJob(s, id));
  });

  CLI::App* list = group->add_subcommand("list", "List conversions, newest first");
  list->add_option("--state", a->state, "Only jobs in this state")
      ->check(CLI::IsMember({"queued", "pulling", "converting", "pushing", "done", "failed", "cancelled"}));
  list->add_option("--app", a->app, "Only jobs of this app");
  AddLimitOption(list, a->limit);
  list->callback([&global, a] {
    Session s = Connect(global);
    PrintList(global,
              FetchList(s, WithQuery(ApiPath({"conversions"}), {{"state", a->state}, {"app", a->app}}), a->limit),
              kConversionColumns);
  });

  CLI::App* get = group->add_subcommand("get", "Show a conversion (with --wait: follow it until it ends)");
  get->add_option("id", a->id, "Conversion id")->required();
  get->add_flag("--wait", a->wait, "Follow the job until it ends; exit 1 when it failed or was cancelled");
  get->callback([&global, a] {
    Session s = Connect(global);
    if (a->wait) {
      Report(global, WaitForJob(s, a->id));
      return;
    }
    PrintObject(global, Check(s.api->Get(ApiPath({"conversions", a->id}))), {"options"});
  });

  CLI::App* cancel = group->add_subcommand("cancel", "Cancel a queued or running conversion");
  cancel->add_option("id", a->id, "Conversion id")->required();
  cancel->callback([&global, a] {
    Session s = Connect(global);
    PrintObject(global, Check(s.api->Post(ApiPath({"conversions", a->id, "cancel"}))), {"log", "options"});
  });
}

}  // namespace
}  // namespace vouch::cli

VOUCH_CLI_COMMAND_GROUP(conversion, vouch::cli::Register);
