// The emulated configfs-tsm over libfuse3's high-level API, loaded with dlopen (README.md).
#define FUSE_USE_VERSION 31
#include "tsm/fuse_tsm.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "base/lazy_library.h"

namespace vouch::tsm {
namespace {

// The libfuse3 entry points used here, resolved once from libfuse3.so.3 (Debian `fuse3`'s
// libfuse3-3). Versioned names as the header's macros map them (fuse_new -> fuse_new_31).
struct FuseApi {
  struct fuse* (*fuse_new_31)(struct fuse_args*, const struct fuse_operations*, size_t,
                              void*) = nullptr;
  int (*fuse_mount)(struct fuse*, const char*) = nullptr;
  void (*fuse_unmount)(struct fuse*) = nullptr;
  void (*fuse_destroy)(struct fuse*) = nullptr;
  int (*fuse_loop)(struct fuse*) = nullptr;
  void (*fuse_exit)(struct fuse*) = nullptr;
  struct fuse_context* (*fuse_get_context)() = nullptr;
  void (*fuse_opt_free_args)(struct fuse_args*) = nullptr;
  bool ok = false;
};

const FuseApi& Api() {
  static const FuseApi api = [] {
    FuseApi a;
    void* h = lazy::Open("libfuse3.so.3");
    if (h == nullptr) return a;
    a.fuse_new_31 = lazy::Resolve<decltype(a.fuse_new_31)>(h, "fuse_new_31");
    a.fuse_mount = lazy::Resolve<decltype(a.fuse_mount)>(h, "fuse_mount");
    a.fuse_unmount = lazy::Resolve<decltype(a.fuse_unmount)>(h, "fuse_unmount");
    a.fuse_destroy = lazy::Resolve<decltype(a.fuse_destroy)>(h, "fuse_destroy");
    a.fuse_loop = lazy::Resolve<decltype(a.fuse_loop)>(h, "fuse_loop");
    a.fuse_exit = lazy::Resolve<decltype(a.fuse_exit)>(h, "fuse_exit");
    a.fuse_get_context = lazy::Resolve<decltype(a.fuse_get_context)>(h, "fuse_get_context");
    a.fuse_opt_free_args = lazy::Resolve<decltype(a.fuse_opt_free_args)>(h, "fuse_opt_free_args");
    a.ok = a.fuse_new_31 && a.fuse_mount && a.fuse_unmount && a.fuse_destroy && a.fuse_loop &&
           a.fuse_exit && a.fuse_get_context && a.fuse_opt_free_args;
    return a;
  }();
  return api;
}

// Wakes the file system thread out of its blocking read of /dev/fuse when the detached mount is
// still held open (the connection then lives on): a no-op handler without SA_RESTART makes the
// read fail EINTR, and the loop sees that it was told to exit. Installed only where SIGUSR2 has
// its default disposition (never replaces a program's own handler).
constexpr int kWakeSignal = SIGUSR2;
void WakeHandler(int) {}
bool InstallWakeHandler() {
  static const bool installed = [] {
    struct sigaction cur {};
    if (::sigaction(kWakeSignal, nullptr, &cur) != 0) return false;
    if (cur.sa_handler == WakeHandler) return true;
    if ((cur.sa_flags & SA_SIGINFO) != 0 || cur.sa_handler != SIG_DFL) return false;
    struct sigaction sa {};
    sa.sa_handler = WakeHandler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the read is interrupted
    return ::sigaction(kWakeSignal, &sa, nullptr) == 0;
  }();
  return installed;
}

enum class Attr {
  kGeneration,
  kProvider,
  kInblob,
  kOutblob,
  kAuxblob,
  kPrivlevel,
  kPrivlevelFloor
};

struct AttrInfo {
  const char* name;
  Attr attr;
  mode_t mode;
  bool sev_only;
};

// report.c's attributes that the two providers show (tdx-guest hides all but the first four).
constexpr AttrInfo kAttrs[] = {
    {"generation", Attr::kGeneration, 0444, false},
    {"provider", Attr::kProvider, 0444, false},
    {"inblob", Attr::kInblob, 0200, false},
    {"outblob", Attr::kOutblob, 0444, false},
    {"auxblob", Attr::kAuxblob, 0444, true},
    {"privlevel", Attr::kPrivlevel, 0200, true},
    {"privlevel_floor", Attr::kPrivlevelFloor, 0444, true},
};

struct Entry {
  std::string provider;
  uint64_t write_generation = 0;
  uint64_t read_generation = 0;
  bool have_blobs = false;
  bool have_inblob = false;
  std::vector<uint8_t> inblob;
  uint32_t privlevel = 0;
  Blobs blobs;
};

struct Handle {
  std::string entry;
  Attr attr = Attr::kGeneration;
  bool snapshot_taken = false;
  std::vector<uint8_t> snapshot;  // what this open file reads
  std::vector<uint8_t> pending;   // inblob bytes written, committed on flush (close)
  bool dirty = false;
};

}  // namespace

struct FuseTsm::State {
  FuseTsmOptions options;
  mutable std::mutex mu;
  std::map<std::string, Entry> entries;
  // Open files (fuse_file_info::fh points at one). Owned here, not by the kernel's release
  // callback: an unmount with a file still open never calls release, and the handle must not leak.
  std::map<const Handle*, std::unique_ptr<Handle>> handles;
  std::atomic<uint64_t> generated{0};
  struct fuse* fuse = nullptr;
  std::thread loop;
  bool mounted = false;
  dev_t dev = 0;  // of the mounted file system: its /sys/fs/fuse/connections/<minor>
  std::mutex loop_mu;
  std::condition_variable loop_cv;
  bool loop_done = false;

  static State* Self() { return static_cast<State*>(Api().fuse_get_context()->private_data); }

  // "/report/NAME/ATTR" -> parts; false if the path is not under report/.
  static std::vector<std::string> Split(const char* path) {
    std::vector<std::string> parts;
    std::string cur;
    for (const char* p = path; *p != 0; ++p) {
      if (*p == '/') {
        if (!cur.empty()) parts.push_back(std::move(cur));
        cur.clear();
      } else {
        cur += *p;
      }
    }
    if (!cur.empty()) parts.push_back(std::move(cur));
    return parts;
  }

  static const AttrInfo* FindAttr(const Entry& e, const std::string& name) {
    for (const auto& a : kAttrs) {
      if (name == a.name && (!a.sev_only || e.provider == kProviderSev)) return &a;
    }
    return nullptr;
  }

  // Generates the blobs for the entry's current generation if it has none yet (report.c's
  // read path: all blobs of one generation from one report_new call).
  int Refresh(Entry& e) {
    if (!e.have_inblob) return -EINVAL;
    if (e.have_blobs && e.read_generation == e.write_generation) return 0;
    if (e.inblob.size() != kInblobSize) return -EINVAL;  // tdx_guest / sev_guest: exactly 64 bytes
    if (!options.evidence) return -EIO;
    std::span<const uint8_t, kInblobSize> in(e.inblob.data(), kInblobSize);
    auto blobs = options.evidence(e.provider, in, e.privlevel);
    generated.fetch_add(1);
    if (!blobs.ok()) return blobs.status().code() == StatusCode::kInvalidArgument ? -EINVAL : -EIO;
    if (blobs->outblob.size() > kOutblobMax) return -EFBIG;
    e.blobs = std::move(*blobs);
    e.have_blobs = true;
    e.read_generation = e.write_generation;
    return 0;
  }

  int Read(Entry& e, Attr a, std::vector<uint8_t>* out) {
    auto text = [&](const std::string& s) { out->assign(s.begin(), s.end()); };
    switch (a) {
      case Attr::kGeneration:
        text(std::to_string(e.write_generation) + "\n");
        return 0;
      case Attr::kProvider:
        text(e.provider + "\n");
        return 0;
      case Attr::kPrivlevelFloor:
        text(std::to_string(options.privlevel_floor) + "\n");
        return 0;
      case Attr::kOutblob:
      case Attr::kAuxblob: {
        if (int rc = Refresh(e); rc != 0) return rc;
        *out = a == Attr::kOutblob ? e.blobs.outblob : e.blobs.auxblob;
        return 0;
      }
      default:
        return -EACCES;
    }
  }
};

namespace {

using State = FuseTsm::State;

void FillDir(struct stat* st, mode_t mode) {
  std::memset(st, 0, sizeof *st);
  st->st_mode = S_IFDIR | mode;
  st->st_nlink = 2;
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
}

int OpGetattr(const char* path, struct stat* st, struct fuse_file_info*) {
  State* s = State::Self();
  auto parts = State::Split(path);
  if (parts.empty() || (parts.size() == 1 && parts[0] == "report")) {
    FillDir(st, 0755);
    return 0;
  }
  if (parts[0] != "report") return -ENOENT;
  std::lock_guard<std::mutex> lock(s->mu);
  auto it = s->entries.find(parts[1]);
  if (it == s->entries.end()) return -ENOENT;
  if (parts.size() == 2) {
    FillDir(st, 0755);
    return 0;
  }
  if (parts.size() != 3) return -ENOENT;
  const AttrInfo* a = State::FindAttr(it->second, parts[2]);
  if (a == nullptr) return -ENOENT;
  std::memset(st, 0, sizeof *st);
  st->st_mode = S_IFREG | a->mode;
  st->st_nlink = 1;
  st->st_size = 4096;  // as configfs shows its attributes
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
  return 0;
}

int OpReaddir(const char* path, void* buf, fuse_fill_dir_t filler, off_t, struct fuse_file_info*,
              enum fuse_readdir_flags) {
  State* s = State::Self();
  auto parts = State::Split(path);
  auto add = [&](const std::string& name) {
    filler(buf, name.c_str(), nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  };
  add(".");
  add("..");
  if (parts.empty()) {
    add("report");
    return 0;
  }
  if (parts[0] != "report" || parts.size() > 2) return -ENOTDIR;
  std::lock_guard<std::mutex> lock(s->mu);
  if (parts.size() == 1) {
    for (const auto& [name, e] : s->entries) add(name);
    return 0;
  }
  auto it = s->entries.find(parts[1]);
  if (it == s->entries.end()) return -ENOENT;
  for (const auto& a : kAttrs) {
    if (!a.sev_only || it->second.provider == kProviderSev) add(a.name);
  }
  return 0;
}

int OpMkdir(const char* path, mode_t) {
  State* s = State::Self();
  auto parts = State::Split(path);
  if (parts.size() != 2 || parts[0] != "report") return -EPERM;
  if (parts[1].size() > 255) return -ENAMETOOLONG;
  std::lock_guard<std::mutex> lock(s->mu);
  if (s->options.provider.empty()) return -ENXIO;  // no provider registered
  if (s->entries.count(parts[1]) != 0) return -EEXIST;
  if (s->entries.size() >= s->options.max_entries) return -ENOSPC;
  Entry e;
  e.provider = s->options.provider;
  e.privlevel = s->options.privlevel_floor;
  s->entries.emplace(parts[1], std::move(e));
  return 0;
}

int OpRmdir(const char* path) {
  State* s = State::Self();
  auto parts = State::Split(path);
  if (parts.size() != 2 || parts[0] != "report") return -EPERM;
  std::lock_guard<std::mutex> lock(s->mu);
  return s->entries.erase(parts[1]) == 1 ? 0 : -ENOENT;
}

int OpOpen(const char* path, struct fuse_file_info* fi) {
  State* s = State::Self();
  auto parts = State::Split(path);
  if (parts.size() != 3 || parts[0] != "report") return -ENOENT;
  std::lock_guard<std::mutex> lock(s->mu);
  auto it = s->entries.find(parts[1]);
  if (it == s->entries.end()) return -ENOENT;
  const AttrInfo* a = State::FindAttr(it->second, parts[2]);
  if (a == nullptr) return -ENOENT;
  const int acc = fi->flags & O_ACCMODE;
  const bool readable = (a->mode & 0400) != 0, writable = (a->mode & 0200) != 0;
  if ((acc == O_RDONLY && !readable) || (acc != O_RDONLY && !writable) || acc == O_RDWR)
    return -EACCES;
  auto owned = std::make_unique<Handle>();
  Handle* h = owned.get();
  h->entry = parts[1];
  h->attr = a->attr;
  s->handles.emplace(h, std::move(owned));
  fi->fh = reinterpret_cast<uint64_t>(h);
  fi->direct_io = 1;  // every read reaches us: no page cache between the client and the state
  fi->nonseekable = 0;
  return 0;
}

int OpRead(const char*, char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  State* s = State::Self();
  auto* h = reinterpret_cast<Handle*>(fi->fh);
  std::lock_guard<std::mutex> lock(s->mu);
  if (!h->snapshot_taken) {
    auto it = s->entries.find(h->entry);
    if (it == s->entries.end()) return -ENOENT;
    if (int rc = s->Read(it->second, h->attr, &h->snapshot); rc != 0) return rc;
    h->snapshot_taken = true;
  }
  if (off < 0 || static_cast<size_t>(off) >= h->snapshot.size()) return 0;
  size_t n = std::min(size, h->snapshot.size() - static_cast<size_t>(off));
  std::memcpy(buf, h->snapshot.data() + off, n);
  return static_cast<int>(n);
}

int OpWrite(const char*, const char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  State* s = State::Self();
  auto* h = reinterpret_cast<Handle*>(fi->fh);
  std::lock_guard<std::mutex> lock(s->mu);
  auto it = s->entries.find(h->entry);
  if (it == s->entries.end()) return -ENOENT;
  if (h->attr == Attr::kInblob) {
    if (off < 0 || static_cast<size_t>(off) + size > kInblobSize) return -EFBIG;  // TSM_INBLOB_MAX
    if (h->pending.size() < static_cast<size_t>(off) + size)
      h->pending.resize(static_cast<size_t>(off) + size);
    std::memcpy(h->pending.data() + off, buf, size);
    h->dirty = true;
    return static_cast<int>(size);
  }
  if (h->attr == Attr::kPrivlevel) {
    // kstrtouint: decimal ASCII, one optional trailing newline.
    std::string text(buf, size);
    if (!text.empty() && text.back() == '\n') text.pop_back();
    if (text.empty() || text.size() > 10 ||
        text.find_first_not_of("0123456789") != std::string::npos)
      return -EINVAL;
    uint64_t v = std::stoull(text);
    if (v > kPrivlevelMax || v < s->options.privlevel_floor) return -EINVAL;
    it->second.privlevel = static_cast<uint32_t>(v);
    ++it->second.write_generation;
    return static_cast<int>(size);
  }
  return -EACCES;
}

// close(): configfs commits a binary attribute's buffer when the file is released.
int OpFlush(const char*, struct fuse_file_info* fi) {
  State* s = State::Self();
  auto* h = reinterpret_cast<Handle*>(fi->fh);
  std::lock_guard<std::mutex> lock(s->mu);
  if (h->attr != Attr::kInblob || !h->dirty) return 0;
  h->dirty = false;
  auto it = s->entries.find(h->entry);
  if (it == s->entries.end()) return -ENOENT;
  it->second.inblob = h->pending;
  it->second.have_inblob = true;
  ++it->second.write_generation;
  if (s->options.interfere > 0) {
    --s->options.interfere;
    for (uint8_t& b : it->second.inblob) b = static_cast<uint8_t>(~b);
    ++it->second.write_generation;
  }
  return 0;
}

int OpRelease(const char*, struct fuse_file_info* fi) {
  State* s = State::Self();
  std::lock_guard<std::mutex> lock(s->mu);
  s->handles.erase(reinterpret_cast<const Handle*>(fi->fh));
  return 0;
}

int OpTruncate(const char* path, off_t, struct fuse_file_info*) {
  // `echo 1 > privlevel` opens with O_TRUNC: accepted and ignored, as sysfs/configfs do.
  auto parts = State::Split(path);
  return parts.size() == 3 ? 0 : -EPERM;
}

void* OpInit(struct fuse_conn_info*, struct fuse_config* cfg) {
  // No caching anywhere: generation and the blobs change under the kernel's feet.
  cfg->direct_io = 1;
  cfg->kernel_cache = 0;
  cfg->attr_timeout = 0;
  cfg->entry_timeout = 0;
  cfg->negative_timeout = 0;
  return State::Self();
}

}  // namespace

FuseTsm::FuseTsm() : state_(std::make_unique<State>()) {}

FuseTsm::~FuseTsm() { Unmount(); }

Result<std::unique_ptr<FuseTsm>> FuseTsm::Mount(FuseTsmOptions options) {
  if (options.mountpoint.empty()) return InvalidArgument("no mount point given");
  if (!options.provider.empty() && options.provider != kProviderTdx &&
      options.provider != kProviderSev) {
    return InvalidArgument("unknown TSM provider '" + options.provider +
                           "' (tdx_guest or sev_guest)");
  }
  if (::access("/dev/fuse", R_OK | W_OK) != 0) {
    return FailedPrecondition("/dev/fuse is not usable (" + std::string(std::strerror(errno)) +
                                  "): install fuse3 (scripts/setup) and load the fuse module",
                              "fuse_unavailable");
  }
  const FuseApi& api = Api();
  if (!api.ok) {
    return FailedPrecondition("libfuse3.so.3 cannot be loaded: install fuse3 (scripts/setup)",
                              "fuse_unavailable");
  }
  std::unique_ptr<FuseTsm> fs(new FuseTsm());
  State& s = *fs->state_;
  s.options = std::move(options);
  static const struct fuse_operations ops = [] {
    struct fuse_operations o;
    std::memset(&o, 0, sizeof o);
    o.getattr = OpGetattr;
    o.readdir = OpReaddir;
    o.mkdir = OpMkdir;
    o.rmdir = OpRmdir;
    o.open = OpOpen;
    o.read = OpRead;
    o.write = OpWrite;
    o.flush = OpFlush;
    o.release = OpRelease;
    o.truncate = OpTruncate;
    o.init = OpInit;
    return o;
  }();
  char arg0[] = "vouch-sim-tsm";
  char arg1[] = "-o";
  char arg2[] = "fsname=vouch-sim-tsm";
  char* argv[] = {arg0, arg1, arg2, nullptr};
  struct fuse_args args = FUSE_ARGS_INIT(3, argv);
  s.fuse = api.fuse_new_31(&args, &ops, sizeof ops, &s);
  api.fuse_opt_free_args(&args);
  if (s.fuse == nullptr) return Internal("fuse_new failed", "mount_failed");
  if (api.fuse_mount(s.fuse, s.options.mountpoint.c_str()) != 0) {
    api.fuse_destroy(s.fuse);
    s.fuse = nullptr;
    return Unavailable("cannot mount the emulated configfs-tsm on " + s.options.mountpoint,
                       "mount_failed");
  }
  s.mounted = true;
  (void)InstallWakeHandler();
  s.loop = std::thread([&s] {
    sigset_t wake;
    sigemptyset(&wake);
    sigaddset(&wake, kWakeSignal);
    pthread_sigmask(SIG_UNBLOCK, &wake, nullptr);
    Api().fuse_loop(s.fuse);
    std::lock_guard<std::mutex> lock(s.loop_mu);
    s.loop_done = true;
    s.loop_cv.notify_all();
  });
  // After the loop runs: a stat of the mount point is a request to it.
  struct stat st;
  if (::stat(s.options.mountpoint.c_str(), &st) == 0) s.dev = st.st_dev;
  return fs;
}

Status FuseTsm::RegisterProvider(std::string provider, EvidenceFn evidence,
                                 uint32_t privlevel_floor) {
  if (provider != kProviderTdx && provider != kProviderSev) {
    return InvalidArgument("unknown TSM provider '" + provider + "' (tdx_guest or sev_guest)");
  }
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->options.provider.empty()) {
    return FailedPrecondition(
        "a TSM provider (" + state_->options.provider + ") is registered already",
        "tsm_provider_busy");
  }
  state_->options.provider = std::move(provider);
  state_->options.evidence = std::move(evidence);
  state_->options.privlevel_floor = privlevel_floor;
  return Status::Ok();
}

void FuseTsm::Unmount() {
  State& s = *state_;
  if (!s.mounted) return;
  s.mounted = false;
  const FuseApi& api = Api();
  api.fuse_exit(s.fuse);
  api.fuse_unmount(s.fuse);  // the loop's read of /dev/fuse then ends (ENODEV)
  {
    // A file still open on the (now detached) mount keeps the connection, and the loop's read,
    // alive: the thread is woken by a signal (it then sees the exit flag); failing that, the
    // connection is aborted through fusectl where that is mounted.
    std::unique_lock<std::mutex> lock(s.loop_mu);
    const auto done = [&s] { return s.loop_done; };
    for (int i = 0; i < 50 && !s.loop_cv.wait_for(lock, std::chrono::milliseconds(100), done);
         ++i) {
      if (InstallWakeHandler()) pthread_kill(s.loop.native_handle(), kWakeSignal);
    }
    if (!s.loop_done && s.dev != 0) {
      const std::string abort_path =
          "/sys/fs/fuse/connections/" + std::to_string(minor(s.dev)) + "/abort";
      int fd = ::open(abort_path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd >= 0) {
        (void)!::write(fd, "1", 1);
        ::close(fd);
      }
    }
  }
  if (s.loop.joinable()) s.loop.join();
  api.fuse_destroy(s.fuse);
  s.fuse = nullptr;
}

const std::string& FuseTsm::mountpoint() const { return state_->options.mountpoint; }

uint64_t FuseTsm::reports_generated() const { return state_->generated.load(); }

size_t FuseTsm::entries() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->entries.size();
}

}  // namespace vouch::tsm
