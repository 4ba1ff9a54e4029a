#include "tsm/report.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace vouch::tsm {
namespace {

class PosixFs final : public TsmFs {
 public:
  int Mkdir(const std::string& path) override {
    return ::mkdir(path.c_str(), 0700) == 0 ? 0 : errno;
  }
  int Rmdir(const std::string& path) override { return ::rmdir(path.c_str()) == 0 ? 0 : errno; }
  int Read(const std::string& path, size_t max, std::vector<uint8_t>* out) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno;
    out->clear();
    int err = 0;
    uint8_t buf[8192];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        err = errno;
        break;
      }
      if (n == 0) break;
      if (out->size() + static_cast<size_t>(n) > max) {
        err = EFBIG;
        break;
      }
      out->insert(out->end(), buf, buf + n);
    }
    ::close(fd);
    return err;
  }
  int Write(const std::string& path, std::span<const uint8_t> data) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno;
    size_t done = 0;
    int err = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        err = errno;
        break;
      }
      done += static_cast<size_t>(n);
    }
    // configfs commits a binary attribute when the file is closed: its error counts.
    if (::close(fd) != 0 && err == 0) err = errno;
    return err;
  }
  bool Exists(const std::string& path) override {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
  }
};

std::string ErrnoText(int err) { return std::strerror(err); }

// A report directory name nobody else picks: "vouch-" and 16 random hex digits.
Result<std::string> RandomName() {
  uint8_t raw[8];
  size_t got = 0;
  while (got < sizeof raw) {
    ssize_t n = ::getrandom(raw + got, sizeof raw - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Internal("getrandom failed: " + ErrnoText(errno), std::string(kTsmIo));
    }
    got += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string name = "vouch-";
  for (uint8_t b : raw) {
    name += kHex[b >> 4];
    name += kHex[b & 15];
  }
  return name;
}

// "tdx_guest\n" -> "tdx_guest"; one trailing newline only, printable ASCII otherwise.
Result<std::string> AttributeText(const std::vector<uint8_t>& raw, const std::string& what) {
  std::string s(raw.begin(), raw.end());
  if (!s.empty() && s.back() == '\n') s.pop_back();
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return DataLoss(what + " is not a line of text", std::string(kTsmIo));
  }
  return s;
}

Result<uint64_t> ParseDecimal(const std::string& s, const std::string& what) {
  if (s.empty() || s.size() > 20)
    return DataLoss(what + " is not a decimal number: '" + s + "'", std::string(kTsmIo));
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return DataLoss(what + " is not a decimal number: '" + s + "'", std::string(kTsmIo));
    uint64_t next = v * 10 + static_cast<uint64_t>(c - '0');
    if (next / 10 != v) return DataLoss(what + " overflows", std::string(kTsmIo));
    v = next;
  }
  return v;
}

Status IoError(const std::string& op, const std::string& path, int err) {
  return Unavailable(op + " " + path + ": " + ErrnoText(err), std::string(kTsmIo));
}

Result<std::string> ReadText(TsmFs& fs, const std::string& path, const std::string& what) {
  std::vector<uint8_t> raw;
  if (int err = fs.Read(path, 4096, &raw); err != 0) return IoError("reading", path, err);
  return AttributeText(raw, what);
}

Result<uint64_t> ReadNumber(TsmFs& fs, const std::string& path, const std::string& what) {
  VOUCH_ASSIGN_OR_RETURN(std::string text, ReadText(fs, path, what));
  return ParseDecimal(text, what);
}

// Creates a fresh report directory; removed by the destructor (always: a directory left behind
// holds kernel memory and the blobs).
class ReportDir {
 public:
  static Result<ReportDir> Make(TsmFs& fs, const std::string& tsm_dir) {
    for (int i = 0; i < 4; ++i) {
      VOUCH_ASSIGN_OR_RETURN(std::string name, RandomName());
      std::string path = tsm_dir + "/" + name;
      int err = fs.Mkdir(path);
      if (err == 0) return ReportDir(fs, path);
      if (err == EEXIST) continue;
      if (err == ENXIO) {
        return FailedPrecondition(
            "no TSM provider: the kernel offers no confidential-computing attestation at " +
                tsm_dir + " (not a TDX or SEV-SNP guest, or its driver is not loaded)",
            std::string(kNoProvider));
      }
      if (err == ENOENT) {
        return NotFound(
            "no configfs-tsm at " + tsm_dir + " (kernel older than 6.7, or configfs not mounted)",
            std::string(kNoTsm));
      }
      return IoError("mkdir", path, err);
    }
    return Internal("could not make a report directory with a fresh name in " + tsm_dir,
                    std::string(kTsmIo));
  }
  ReportDir(ReportDir&& o) noexcept : fs_(o.fs_), path_(std::move(o.path_)) { o.path_.clear(); }
  ReportDir& operator=(ReportDir&&) = delete;
  ~ReportDir() {
    if (!path_.empty()) (void)fs_->Rmdir(path_);
  }
  const std::string& path() const { return path_; }
  std::string Attr(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  ReportDir(TsmFs& fs, std::string path) : fs_(&fs), path_(std::move(path)) {}
  TsmFs* fs_;
  std::string path_;
};

// One attempt. Aborted kGenerationRace when the generation did not advance by exactly our
// writes (the caller retries in a new directory).
Result<Report> Attempt(const ReportRequest& req, TsmFs& fs) {
  VOUCH_ASSIGN_OR_RETURN(ReportDir dir, ReportDir::Make(fs, req.tsm_dir));
  Report out;
  VOUCH_ASSIGN_OR_RETURN(out.provider, ReadText(fs, dir.Attr("provider"), "provider"));
  if (!req.provider.empty() && out.provider != req.provider) {
    return FailedPrecondition(
        "the TSM provider is '" + out.provider + "', expected '" + req.provider + "'",
        std::string(kProviderMismatch));
  }
  VOUCH_ASSIGN_OR_RETURN(const uint64_t before,
                         ReadNumber(fs, dir.Attr("generation"), "generation"));
  uint64_t writes = 0;
  if (int err = fs.Write(dir.Attr("inblob"), req.inblob); err != 0)
    return IoError("writing", dir.Attr("inblob"), err);
  ++writes;
  if (fs.Exists(dir.Attr("privlevel"))) {
    uint64_t floor = 0;
    if (fs.Exists(dir.Attr("privlevel_floor"))) {
      VOUCH_ASSIGN_OR_RETURN(floor, ReadNumber(fs, dir.Attr("privlevel_floor"), "privlevel_floor"));
    }
    uint64_t level = req.privlevel ? *req.privlevel : floor;
    if (level < floor || level > kPrivlevelMax) {
      return InvalidArgument("privlevel " + std::to_string(level) + " is outside " +
                                 std::to_string(floor) + ".." + std::to_string(kPrivlevelMax) +
                                 " (privlevel_floor..TSM_PRIVLEVEL_MAX)",
                             std::string(kInvalidPrivlevel));
    }
    // The kernel parses it with kstrtouint: ASCII, not a raw byte.
    std::string text = std::to_string(level) + "\n";
    auto bytes =
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size());
    if (int err = fs.Write(dir.Attr("privlevel"), bytes); err != 0) {
      return IoError("writing", dir.Attr("privlevel"), err);
    }
    ++writes;
  }
  if (int err = fs.Read(dir.Attr("outblob"), kOutblobMax, &out.outblob); err != 0) {
    if (err == EBUSY) return Aborted("the provider is busy", std::string(kGenerationRace));
    return IoError("reading", dir.Attr("outblob"), err);
  }
  if (req.want_aux && fs.Exists(dir.Attr("auxblob"))) {
    if (int err = fs.Read(dir.Attr("auxblob"), kAuxblobMax, &out.auxblob); err != 0) {
      if (err == EBUSY) return Aborted("the provider is busy", std::string(kGenerationRace));
      return IoError("reading", dir.Attr("auxblob"), err);
    }
  }
  VOUCH_ASSIGN_OR_RETURN(const uint64_t after,
                         ReadNumber(fs, dir.Attr("generation"), "generation"));
  if (after != before + writes) {
    return Aborted("generation went from " + std::to_string(before) + " to " +
                       std::to_string(after) + " over " + std::to_string(writes) +
                       " writes of ours: another writer used " + dir.path(),
                   std::string(kGenerationRace));
  }
  if (out.outblob.empty())
    return DataLoss("the provider returned an empty outblob", std::string(kTsmIo));
  out.generation = after;
  return out;
}

}  // namespace

TsmFs& PosixTsmFs() {
  static PosixFs fs;
  return fs;
}

Result<Report> GetReport(const ReportRequest& request, TsmFs& fs) {
  if (request.tsm_dir.empty()) return InvalidArgument("no configfs-tsm report directory given");
  if (request.privlevel && *request.privlevel > kPrivlevelMax) {
    return InvalidArgument("privlevel must be 0.." + std::to_string(kPrivlevelMax),
                           std::string(kInvalidPrivlevel));
  }
  const int attempts = std::max(1, request.max_attempts);
  Status last;
  for (int i = 1; i <= attempts; ++i) {
    auto r = Attempt(request, fs);
    if (r.ok()) {
      r->attempts = i;
      return r;
    }
    if (r.status().reason() != kGenerationRace) return r.status();
    last = r.status();
  }
  return Aborted("configfs-tsm: " + std::to_string(attempts) +
                     " attempts raced with another writer (last: " + last.message() + ")",
                 std::string(kGenerationRace));
}

Result<std::string> DetectProvider(const std::string& tsm_dir, TsmFs& fs) {
  VOUCH_ASSIGN_OR_RETURN(ReportDir dir, ReportDir::Make(fs, tsm_dir));
  return ReadText(fs, dir.Attr("provider"), "provider");
}

}  // namespace vouch::tsm
