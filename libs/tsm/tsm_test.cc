// The configfs-tsm client against the emulated kernel (a real FUSE mount in a temp dir), and the
// race rules: a concurrent writer between our write and our read is detected and the request
// retried in a new directory, never answered with blobs of two generations. These tests need
// /dev/fuse and libfuse3 (scripts/setup installs fuse3): without them they fail, they do not skip.
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "testing/temp_dir.h"
#include "tsm/fuse_tsm.h"
#include "tsm/report.h"

namespace vouch::tsm {
namespace {

std::string Hex(std::span<const uint8_t> b) {
  static const char k[] = "0123456789abcdef";
  std::string s;
  for (uint8_t c : b) {
    s += k[c >> 4];
    s += k[c & 15];
  }
  return s;
}

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

// The fake provider: blobs that name the inblob and privlevel they were made for.
EvidenceFn FakeEvidence() {
  return [](std::string_view provider, std::span<const uint8_t, kInblobSize> in,
            uint32_t privlevel) -> Result<Blobs> {
    Blobs b;
    b.outblob =
        Bytes("OUT:" + std::string(provider) + ":" + Hex(in) + ":" + std::to_string(privlevel));
    if (provider == kProviderSev) b.auxblob = Bytes("AUX:" + Hex(in));
    return b;
  };
}

std::array<uint8_t, kInblobSize> Inblob(uint8_t seed) {
  std::array<uint8_t, kInblobSize> in{};
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>(seed + i);
  return in;
}

std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  return out;
}

int WriteFile(const std::string& path, const std::string& data) {
  return PosixTsmFs().Write(
      path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

// First in this file (and alone in its process under ctest): nothing of libfuse3 is mapped until a
// mount, so programs that link libs/tsm (vouch, vouch-agent) do not pay for it at start.
TEST(TsmLazyFuse, Libfuse3IsLoadedOnlyByTheFirstMount) {
  EXPECT_EQ(::dlopen("libfuse3.so.3", RTLD_NOLOAD | RTLD_NOW), nullptr);
  test::TempDir tmp("tsm-lazy");
  ReportRequest r;
  r.tsm_dir = tmp.path() + "/none";
  EXPECT_FALSE(GetReport(r).ok());  // the client never needs it
  EXPECT_EQ(::dlopen("libfuse3.so.3", RTLD_NOLOAD | RTLD_NOW), nullptr);
  ASSERT_EQ(::access("/dev/fuse", R_OK | W_OK), 0) << "/dev/fuse is needed (scripts/setup installs fuse3)";
  FuseTsmOptions o;
  o.mountpoint = tmp.path();
  auto fs = FuseTsm::Mount(std::move(o));
  ASSERT_TRUE(fs.ok()) << fs.status().message();
  void* h = ::dlopen("libfuse3.so.3", RTLD_NOLOAD | RTLD_NOW);
  EXPECT_NE(h, nullptr);
  if (h != nullptr) ::dlclose(h);
  (*fs)->Unmount();
}

class TsmFuseTest : public ::testing::Test {
 protected:
  void Mount(const std::string& provider, uint32_t floor = 0) {
    ASSERT_EQ(::access("/dev/fuse", R_OK | W_OK), 0)
        << "/dev/fuse is missing or not usable: these tests need FUSE (scripts/setup installs "
           "fuse3)";
    FuseTsmOptions o;
    o.mountpoint = tmp_.path();
    o.provider = provider;
    o.evidence = FakeEvidence();
    o.privlevel_floor = floor;
    auto fs = FuseTsm::Mount(std::move(o));
    ASSERT_TRUE(fs.ok()) << fs.status().message();
    fs_ = std::move(*fs);
  }
  std::string ReportDir() const { return tmp_.path() + "/report"; }
  ReportRequest Request(std::string provider, uint8_t seed) const {
    ReportRequest r;
    r.tsm_dir = ReportDir();
    r.provider = std::move(provider);
    r.inblob = Inblob(seed);
    return r;
  }
  std::string Expected(std::string_view provider, uint8_t seed, uint32_t privlevel = 0) const {
    auto in = Inblob(seed);
    return "OUT:" + std::string(provider) + ":" + Hex(in) + ":" + std::to_string(privlevel);
  }

  test::TempDir tmp_{"tsm"};  // declared first: outlives the mount
  std::unique_ptr<FuseTsm> fs_;
};

TEST_F(TsmFuseTest, TdxReportComesFromOneFreshDirectoryThatIsRemovedAfterwards) {
  Mount(std::string(kProviderTdx));
  auto r = GetReport(Request(std::string(kProviderTdx), 1));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->provider, kProviderTdx);
  EXPECT_EQ(std::string(r->outblob.begin(), r->outblob.end()), Expected(kProviderTdx, 1));
  EXPECT_TRUE(r->auxblob.empty());
  EXPECT_EQ(r->generation, 1u);  // one write: the inblob (tdx_guest has no privlevel)
  EXPECT_EQ(r->attempts, 1);
  EXPECT_EQ(fs_->reports_generated(), 1u);
  EXPECT_EQ(fs_->entries(), 0u);
  EXPECT_TRUE(List(ReportDir()).empty());
}

TEST_F(TsmFuseTest, SevReportWritesPrivlevelAsAsciiAtTheFloorAndReadsTheAuxblob) {
  Mount(std::string(kProviderSev), 1);
  auto req = Request(std::string(kProviderSev), 2);
  req.want_aux = true;
  auto r = GetReport(req);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(std::string(r->outblob.begin(), r->outblob.end()), Expected(kProviderSev, 2, 1));
  EXPECT_EQ(std::string(r->auxblob.begin(), r->auxblob.end()), "AUX:" + Hex(Inblob(2)));
  EXPECT_EQ(r->generation, 2u);  // inblob and privlevel
  req.privlevel = 3;
  r = GetReport(req);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(std::string(r->outblob.begin(), r->outblob.end()), Expected(kProviderSev, 2, 3));
  req.privlevel = 0;  // below the floor
  r = GetReport(req);
  EXPECT_EQ(r.status().reason(), kInvalidPrivlevel);
  EXPECT_EQ(fs_->entries(), 0u);
}

TEST_F(TsmFuseTest, EachProviderShowsItsAttributesOnly) {
  Mount(std::string(kProviderTdx));
  ASSERT_EQ(::mkdir((ReportDir() + "/a").c_str(), 0700), 0);
  auto names = List(ReportDir() + "/a");
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()),
            (std::set<std::string>{"generation", "provider", "inblob", "outblob"}));
  EXPECT_NE(::access((ReportDir() + "/a/privlevel").c_str(), F_OK), 0);
  EXPECT_EQ(::rmdir((ReportDir() + "/a").c_str()), 0);
  fs_.reset();
  Mount(std::string(kProviderSev));
  ASSERT_EQ(::mkdir((ReportDir() + "/b").c_str(), 0700), 0);
  names = List(ReportDir() + "/b");
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()),
            (std::set<std::string>{"generation", "provider", "inblob", "outblob", "auxblob",
                                   "privlevel", "privlevel_floor"}));
  std::vector<uint8_t> raw;
  ASSERT_EQ(PosixTsmFs().Read(ReportDir() + "/b/provider", 100, &raw), 0);
  EXPECT_EQ(std::string(raw.begin(), raw.end()), "sev_guest\n");
  EXPECT_EQ(::rmdir((ReportDir() + "/b").c_str()), 0);
  EXPECT_EQ(fs_->entries(), 0u);
}

TEST_F(TsmFuseTest, ReadsWithoutA64ByteInblobFailEinvalAndWritesBumpTheGeneration) {
  Mount(std::string(kProviderSev));
  const std::string d = ReportDir() + "/e";
  ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);
  std::vector<uint8_t> raw;
  EXPECT_EQ(PosixTsmFs().Read(d + "/outblob", kOutblobMax, &raw), EINVAL);  // no inblob yet
  EXPECT_EQ(PosixTsmFs().Read(d + "/auxblob", kOutblobMax, &raw), EINVAL);
  EXPECT_EQ(WriteFile(d + "/inblob", std::string(65, 'x')), EFBIG);  // past TSM_INBLOB_MAX
  ASSERT_EQ(WriteFile(d + "/inblob", std::string(63, 'x')), 0);  // stored, as the kernel does ...
  ASSERT_EQ(PosixTsmFs().Read(d + "/generation", 100, &raw), 0);
  EXPECT_EQ(std::string(raw.begin(), raw.end()), "1\n");
  EXPECT_EQ(PosixTsmFs().Read(d + "/outblob", kOutblobMax, &raw),
            EINVAL);  // ... refused by the provider
  EXPECT_EQ(WriteFile(d + "/privlevel", "9\n"), EINVAL);
  EXPECT_EQ(WriteFile(d + "/privlevel", "one"), EINVAL);
  ASSERT_EQ(WriteFile(d + "/privlevel", "2\n"), 0);
  ASSERT_EQ(WriteFile(d + "/inblob", std::string(64, 'y')), 0);
  ASSERT_EQ(PosixTsmFs().Read(d + "/generation", 100, &raw), 0);
  EXPECT_EQ(std::string(raw.begin(), raw.end()), "3\n");
  EXPECT_EQ(WriteFile(d + "/outblob", "x"), EACCES);  // read-only attribute
  // The evidence is made once per generation, on the first read, for outblob and auxblob alike.
  EXPECT_EQ(fs_->reports_generated(), 0u);  // the 63-byte inblob never reached the provider
  ASSERT_EQ(PosixTsmFs().Read(d + "/outblob", kOutblobMax, &raw), 0);
  ASSERT_EQ(PosixTsmFs().Read(d + "/auxblob", kOutblobMax, &raw), 0);
  ASSERT_EQ(PosixTsmFs().Read(d + "/outblob", kOutblobMax, &raw), 0);
  EXPECT_EQ(fs_->reports_generated(), 1u);
  ASSERT_EQ(WriteFile(d + "/inblob", std::string(64, 'z')), 0);
  ASSERT_EQ(PosixTsmFs().Read(d + "/auxblob", kOutblobMax, &raw), 0);
  EXPECT_EQ(std::string(raw.begin(), raw.end()), "AUX:" + Hex(Bytes(std::string(64, 'z'))));
  EXPECT_EQ(fs_->reports_generated(), 2u);
  EXPECT_EQ(::rmdir(d.c_str()), 0);
  EXPECT_EQ(::rmdir(d.c_str()), -1);
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(TsmFuseTest, NoProviderIsEnxioAndASecondProviderIsRefused) {
  Mount("");
  errno = 0;
  EXPECT_EQ(::mkdir((ReportDir() + "/x").c_str(), 0700), -1);
  EXPECT_EQ(errno, ENXIO);
  auto r = GetReport(Request(std::string(kProviderTdx), 3));
  EXPECT_EQ(r.status().reason(), kNoProvider);
  EXPECT_NE(r.status().message().find("no TSM provider"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(DetectProvider(ReportDir()).status().reason(), kNoProvider);
  ASSERT_TRUE(fs_->RegisterProvider(std::string(kProviderTdx), FakeEvidence()).ok());
  EXPECT_EQ(fs_->RegisterProvider(std::string(kProviderSev), FakeEvidence()).reason(),
            "tsm_provider_busy");
  auto p = DetectProvider(ReportDir());
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(*p, kProviderTdx);
  // The caller's expectation is checked.
  r = GetReport(Request(std::string(kProviderSev), 3));
  EXPECT_EQ(r.status().reason(), kProviderMismatch);
  EXPECT_EQ(fs_->entries(), 0u);
}

TEST_F(TsmFuseTest, UnmountEndsEvenWithAFileStillOpen) {
  Mount(std::string(kProviderTdx));
  ASSERT_EQ(::mkdir((ReportDir() + "/held").c_str(), 0700), 0);
  int fd = ::open((ReportDir() + "/held/provider").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  auto start = std::chrono::steady_clock::now();
  fs_->Unmount();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  ::close(fd);
  EXPECT_TRUE(List(tmp_.path()).empty());  // the mount point is an empty directory again
}

TEST(TsmClient, AMissingTsmDirectoryIsAClearError) {
  test::TempDir tmp("tsm-none");
  ReportRequest r;
  r.tsm_dir = tmp.path() + "/nothing";
  EXPECT_EQ(GetReport(r).status().reason(), kNoTsm);
  EXPECT_EQ(DetectProvider(r.tsm_dir).status().reason(), kNoTsm);
}

// The real file system with another writer interposed: after our inblob write (or after our
// outblob read) it writes its own inblob into our directory, as a second process would.
class InterferingFs final : public TsmFs {
 public:
  enum class When { kAfterInblobWrite, kAfterOutblobRead };
  InterferingFs(When when, int times) : when_(when), times_(times) {}
  int Mkdir(const std::string& p) override { return PosixTsmFs().Mkdir(p); }
  int Rmdir(const std::string& p) override { return PosixTsmFs().Rmdir(p); }
  bool Exists(const std::string& p) override { return PosixTsmFs().Exists(p); }
  int Read(const std::string& p, size_t max, std::vector<uint8_t>* out) override {
    int rc = PosixTsmFs().Read(p, max, out);
    if (when_ == When::kAfterOutblobRead && EndsWith(p, "/outblob")) Interfere(p);
    return rc;
  }
  int Write(const std::string& p, std::span<const uint8_t> data) override {
    int rc = PosixTsmFs().Write(p, data);
    if (when_ == When::kAfterInblobWrite && EndsWith(p, "/inblob")) Interfere(p);
    return rc;
  }
  int interfered() const { return interfered_; }

 private:
  static bool EndsWith(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  }
  void Interfere(const std::string& attr_path) {
    if (times_ >= 0 && interfered_ >= times_) return;
    ++interfered_;
    std::string dir = attr_path.substr(0, attr_path.rfind('/'));
    auto other = Inblob(200);
    EXPECT_EQ(PosixTsmFs().Write(dir + "/inblob", other), 0);
  }
  When when_;
  int times_;  // -1: always
  int interfered_ = 0;
};

TEST_F(TsmFuseTest, AWriterBetweenOurWriteAndReadForcesARetryInANewDirectory) {
  Mount(std::string(kProviderTdx));
  InterferingFs fs(InterferingFs::When::kAfterInblobWrite, 2);
  auto r = GetReport(Request(std::string(kProviderTdx), 4), fs);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(fs.interfered(), 2);
  EXPECT_EQ(r->attempts, 3);
  EXPECT_EQ(std::string(r->outblob.begin(), r->outblob.end()), Expected(kProviderTdx, 4));
  EXPECT_EQ(fs_->entries(), 0u);
}

TEST_F(TsmFuseTest, BlobsOfTwoGenerationsAreNeverReturnedTogether) {
  // The other writer strikes between our outblob read and our auxblob read: the auxblob would be
  // its evidence. The generation check must throw the attempt away.
  Mount(std::string(kProviderSev));
  InterferingFs fs(InterferingFs::When::kAfterOutblobRead, 1);
  auto req = Request(std::string(kProviderSev), 5);
  req.want_aux = true;
  auto r = GetReport(req, fs);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(fs.interfered(), 1);
  EXPECT_EQ(r->attempts, 2);
  EXPECT_EQ(std::string(r->outblob.begin(), r->outblob.end()), Expected(kProviderSev, 5));
  EXPECT_EQ(std::string(r->auxblob.begin(), r->auxblob.end()), "AUX:" + Hex(Inblob(5)));
}

TEST_F(TsmFuseTest, TheEmulatorsInterferenceKnobIsDetectedByTheClient) {
  ASSERT_EQ(::access("/dev/fuse", R_OK | W_OK), 0) << "/dev/fuse is needed";
  FuseTsmOptions o;
  o.mountpoint = tmp_.path();
  o.provider = std::string(kProviderTdx);
  o.evidence = FakeEvidence();
  o.interfere = 2;
  auto fs = FuseTsm::Mount(std::move(o));
  ASSERT_TRUE(fs.ok()) << fs.status().message();
  fs_ = std::move(*fs);
  auto r = GetReport(Request(std::string(kProviderTdx), 7));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->attempts, 3);
  EXPECT_EQ(std::string(r->outblob.begin(), r->outblob.end()), Expected(kProviderTdx, 7));
}

TEST_F(TsmFuseTest, AWriterOnEveryAttemptIsAnErrorAfterTheBoundAndLeavesNothingBehind) {
  Mount(std::string(kProviderTdx));
  InterferingFs fs(InterferingFs::When::kAfterInblobWrite, -1);
  auto r = GetReport(Request(std::string(kProviderTdx), 6), fs);
  EXPECT_EQ(r.status().reason(), kGenerationRace);
  EXPECT_EQ(r.status().code(), StatusCode::kAborted);
  EXPECT_EQ(fs.interfered(), 3);
  EXPECT_EQ(fs_->entries(), 0u);
}

TEST_F(TsmFuseTest, ConcurrentWritersInOtherThreadsNeverMixBlobs) {
  // A hostile thread writes its inblob into every report directory it sees (once each) while
  // requests run: each request either returns its own evidence or gives up after three
  // raced attempts; none returns another inblob's blobs.
  Mount(std::string(kProviderSev));
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  std::thread hostile([&] {
    auto other = Inblob(222);
    std::set<std::string> seen;  // once into each directory, so that retries can also succeed
    while (!stop.load()) {
      for (const auto& name : List(ReportDir())) {
        if (!seen.insert(name).second) continue;
        if (PosixTsmFs().Write(ReportDir() + "/" + name + "/inblob", other) == 0)
          writes.fetch_add(1);
      }
    }
  });
  int ok = 0, raced = 0, retried = 0;
  for (int i = 0; i < 40; ++i) {
    auto req = Request(std::string(kProviderSev), static_cast<uint8_t>(i));
    req.want_aux = true;
    auto r = GetReport(req);
    if (r.ok()) {
      ++ok;
      if (r->attempts > 1) ++retried;
      EXPECT_EQ(std::string(r->outblob.begin(), r->outblob.end()),
                Expected(kProviderSev, static_cast<uint8_t>(i)));
      EXPECT_EQ(std::string(r->auxblob.begin(), r->auxblob.end()),
                "AUX:" + Hex(Inblob(static_cast<uint8_t>(i))));
    } else {
      EXPECT_EQ(r.status().reason(), kGenerationRace) << r.status().message();
      ++raced;
    }
  }
  stop = true;
  hostile.join();
  EXPECT_EQ(ok + raced, 40);
  RecordProperty("ok", ok);
  RecordProperty("raced", raced);
  RecordProperty("retried", retried);
  EXPECT_GT(writes.load(), 0) << "the hostile writer never got in: the test proved nothing";
  EXPECT_EQ(fs_->entries(), 0u);
}

}  // namespace
}  // namespace vouch::tsm
