#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "backup/archive_format.h"
#include "backup/backup.h"
#include "base/encoding.h"
#include "base/file.h"
#include "crypto/aead.h"
#include "crypto/digest.h"
#include "crypto/random.h"
#include "custody/share.h"
#include "store/database.h"
#include "store/migrations.h"
#include "testing/temp_dir.h"

namespace vouch::backup {
namespace {

std::vector<FileEntry> SampleFiles() {
  return {{"vouch.db", 0600, std::string("SQLite format 3\0store", 21)},
          {"config.json", 0600, "{\"store\":\"sqlite:x\"}"},
          {"tls/server.pem", 0644, "-----BEGIN CERTIFICATE-----\n"},
          {"empty", 0644, ""}};
}

Manifest SampleHeader() {
  Manifest m;
  m.vouch_version = "0.1.0";
  m.schema_version = 3;
  m.created_at = "2026-12-06T04:00:00Z";
  m.store = "sqlite";
  return m;
}

std::string SampleArchive() {
  auto a = EncodeArchive(SampleHeader(), SampleFiles());
  EXPECT_TRUE(a.ok()) << a.status().message();
  return *a;
}

TEST(BackupArchive, RoundTripsFilesAndManifest) {
  std::string bytes = SampleArchive();
  auto a = ParseArchive(AsBytes(bytes));
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->manifest.schema_version, 3);
  EXPECT_EQ(a->manifest.vouch_version, "0.1.0");
  ASSERT_EQ(a->manifest.files.size(), 4u);
  auto files = SampleFiles();
  for (size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ(a->manifest.files[i].path, files[i].path);
    EXPECT_EQ(a->manifest.files[i].size, files[i].data.size());
    EXPECT_EQ(a->manifest.files[i].mode, files[i].mode);
    EXPECT_EQ(ToString(a->contents[i]), files[i].data);
  }
  // Layout pinned: magic, version 1 LE, manifest length LE, trailer = SHA-256 of the rest.
  EXPECT_EQ(bytes.substr(0, 8), "VOUCHBK1");
  EXPECT_EQ(bytes.substr(8, 4), std::string("\x01\x00\x00\x00", 4));
}

TEST(BackupArchive, RejectsTruncationAtEveryLength) {
  std::string bytes = SampleArchive();
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto a = ParseArchive(AsBytes(std::string_view(bytes).substr(0, n)));
    ASSERT_FALSE(a.ok()) << "truncated to " << n;
    EXPECT_EQ(a.status().reason(), kArchiveCorrupt);
  }
}

TEST(BackupArchive, RejectsEveryFlippedByte) {
  std::string bytes = SampleArchive();
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    auto a = ParseArchive(AsBytes(bad));
    ASSERT_FALSE(a.ok()) << "byte " << i;
    EXPECT_EQ(a.status().reason(), kArchiveCorrupt);
  }
}

// An archive with a valid trailer but a lying manifest: the per-file checks still hold.
std::string Reseal(const std::string& manifest_json, const std::string& contents) {
  std::string out("VOUCHBK1\x01\x00\x00\x00", 12);
  uint32_t n = static_cast<uint32_t>(manifest_json.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += manifest_json + contents;
  auto sum = crypto::Sha256(std::string_view(out));
  out.append(reinterpret_cast<const char*>(sum.data()), sum.size());
  return out;
}

nlohmann::json ManifestOf(const std::string& bytes) {
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[12 + i])) << (8 * i);
  return nlohmann::json::parse(bytes.substr(16, n));
}

TEST(BackupArchive, RejectsManifestsThatDisagreeWithTheContents) {
  std::string bytes = SampleArchive();
  nlohmann::json m = ManifestOf(bytes);
  std::string contents;
  for (const auto& f : SampleFiles()) contents += f.data;
  ASSERT_TRUE(ParseArchive(AsBytes(Reseal(m.dump(), contents))).ok());

  auto expect_bad = [&](nlohmann::json mm, const std::string& c, const std::string& what) {
    auto a = ParseArchive(AsBytes(Reseal(mm.dump(), c)));
    ASSERT_FALSE(a.ok()) << what;
    EXPECT_EQ(a.status().reason(), kArchiveCorrupt) << what;
  };
  expect_bad(m, contents + "x", "trailing bytes");
  expect_bad(m, contents.substr(1), "missing bytes");
  auto big = m;
  big["files"][0]["size"] = uint64_t{1} << 62;
  expect_bad(big, contents, "huge size");
  auto sha = m;
  sha["files"][1]["sha256"] = std::string(64, '0');
  expect_bad(sha, contents, "wrong file checksum");
  for (const char* path : {"../etc/passwd", "/abs", "a//b", "master.key", "tls/master.key.bak", "a b", "", "."}) {
    auto p = m;
    p["files"][2]["path"] = path;
    expect_bad(p, contents, std::string("path ") + path);
  }
  auto dup = m;
  dup["files"][2]["path"] = "config.json";
  expect_bad(dup, contents, "duplicate path");
  auto schema = m;
  schema["schema_version"] = "3";
  expect_bad(schema, contents, "schema as string");
  expect_bad(nlohmann::json::array(), contents, "manifest not an object");
}

TEST(BackupArchive, NeverArchivesTheMasterKey) {
  auto files = SampleFiles();
  files.push_back({"master.key", 0600, std::string(32, 'k')});
  EXPECT_FALSE(EncodeArchive(SampleHeader(), files).ok());
  EXPECT_FALSE(IsValidMemberPath("sub/master.key"));
  EXPECT_TRUE(IsValidMemberPath("tls/server.key.sealed"));
}

// A minimal data directory: a migrated SQLite store with one zone whose CA key is sealed under
// `key`, config.json, a sealed TLS key, and master.key.
void MakeDataDir(const std::string& dir, const crypto::SecretBytes& key) {
  ASSERT_TRUE(MakeDirs(dir + "/tls", 0700).ok());
  auto db = store::OpenSqlite(dir + "/vouch.db");
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Migrate().ok());
  auto sealed = crypto::Aes256GcmSeal(key.span(), AsBytes("zone key"), AsBytes("vouch:zone-ca-key:z1"));
  ASSERT_TRUE(sealed.ok());
  ASSERT_TRUE((*db)->Write([&](store::Transaction& tx) {
                      return tx.Exec("INSERT INTO zones (id, name, created_at, created_by, policy, ca_cert_pem, "
                                     "ca_key_sealed) VALUES ('z1', 'default', 1, 'system', '{}', 'PEM', ?)",
                                     {store::Blob(*sealed)})
                          .status();
                    }).ok());
  nlohmann::json config = {{"store", "sqlite:" + dir + "/vouch.db"}, {"tls_key_sealed", "tls/server.key.sealed"}};
  ASSERT_TRUE(WriteFileAtomic(dir + "/config.json", config.dump(), 0600).ok());
  auto tls = crypto::Aes256GcmSeal(key.span(), AsBytes("tls key"), AsBytes("vouch:service-tls-key"));
  ASSERT_TRUE(WriteFileAtomic(dir + "/tls/server.key.sealed", ToString(*tls), 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/tls/server.pem", "CERT", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/master.key", key.view(), 0600).ok());
}

class BackupRestore : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = crypto::RandomSecret(32);
    MakeDataDir(tmp_.File("data"), key_);
    ASSERT_TRUE(WriteFileAtomic(tmp_.File("key"), key_.view(), 0600).ok());
  }
  Result<Manifest> Backup(int64_t schema_override = 0) {
    BackupOptions o;
    o.data_dir = tmp_.File("data");
    o.out = tmp_.File("backup.vbk");
    o.vouch_version = "0.1.0";
    o.schema_version_override = schema_override;
    return CreateBackup(o, SystemClock::Get());
  }
  Result<RestoreResult> RestoreInto(const std::string& dir, const crypto::SecretBytes& key, bool force = false) {
    RestoreOptions o;
    o.archive_path = tmp_.File("backup.vbk");
    o.data_dir = dir;
    o.force = force;
    return Restore(o, key, SystemClock::Get());
  }
  test::TempDir tmp_{"backup"};
  crypto::SecretBytes key_;
};

TEST_F(BackupRestore, ArchiveHoldsStoreAndFilesButNeverTheMasterKey) {
  auto m = Backup();
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->schema_version, static_cast<int64_t>(store::Migrations().size()));
  std::vector<std::string> paths;
  for (const auto& f : m->files) paths.push_back(f.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"vouch.db", "config.json", "tls/server.key.sealed", "tls/server.pem"}));
  auto bytes = ReadWholeFile(tmp_.File("backup.vbk"));
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(bytes->find(key_.view()), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(tmp_.File("backup.vbk").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(VerifyBackup(tmp_.File("backup.vbk")).ok());
}

TEST_F(BackupRestore, RefusesWhileAMasterKeyRotationIsUnfinished) {
  // master.key.next: a rotation stopped between its steps (docs/custody.md); vouchd settles it.
  ASSERT_TRUE(WriteFileAtomic(tmp_.File("data") + "/master.key.next", crypto::RandomSecret(32).view(), 0600).ok());
  auto m = Backup();
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().reason(), kRotationInProgress);
  EXPECT_FALSE(FileExists(tmp_.File("backup.vbk")));
}

TEST_F(BackupRestore, RefusesWhileAMasterKeyRotationHoldsItsLock) {
  // An online rotation inside vouchd holds DATA/master.key.lock exclusively until its last rename.
  const std::string lock = tmp_.File("data") + "/master.key.lock";
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  auto m = Backup();
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().reason(), kRotationInProgress);
  EXPECT_FALSE(FileExists(tmp_.File("backup.vbk")));
  ::close(fd);  // the rotation ended: a backup goes through, and does not block a later rotation
  auto again = Backup();
  ASSERT_TRUE(again.ok()) << again.status().message();
  fd = ::open(lock.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ::close(fd);
}

TEST_F(BackupRestore, RestoresIntoANewDirectory) {
  ASSERT_TRUE(Backup().ok());
  auto r = RestoreInto(tmp_.File("restored/data"), key_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->zones_checked, 1u);
  auto key = ReadWholeFile(tmp_.File("restored/data/master.key"));
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(*key, key_.view());
  auto config = nlohmann::json::parse(*ReadWholeFile(tmp_.File("restored/data/config.json")));
  EXPECT_EQ(config["store"], "sqlite:" + tmp_.File("restored/data/vouch.db"));
  auto db = store::OpenSqlite(tmp_.File("restored/data/vouch.db"));
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Read([](store::Transaction& tx) {
                      return tx.QueryOne("SELECT id FROM zones WHERE name = 'default'", {}, "zone").status();
                    }).ok());
}

TEST_F(BackupRestore, RefusesAWrongMasterKeyAndWritesNothing) {
  ASSERT_TRUE(Backup().ok());
  auto r = RestoreInto(tmp_.File("restored"), crypto::RandomSecret(32));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), kMasterKeyMismatch);
  EXPECT_FALSE(std::filesystem::exists(tmp_.File("restored")));
  for (const auto& e : std::filesystem::directory_iterator(tmp_.path())) {
    EXPECT_EQ(e.path().filename().string().find("restored.restore-"), std::string::npos) << e.path();
  }
}

TEST_F(BackupRestore, RefusesANonEmptyDirectoryWithoutForce) {
  ASSERT_TRUE(Backup().ok());
  auto r = RestoreInto(tmp_.File("data"), key_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), kDataDirNotEmpty);
  auto forced = RestoreInto(tmp_.File("data"), key_, /*force=*/true);
  ASSERT_TRUE(forced.ok()) << forced.status().message();
  EXPECT_TRUE(FileExists(forced->moved_aside + "/master.key"));
  EXPECT_TRUE(FileExists(tmp_.File("data/master.key")));
}

TEST_F(BackupRestore, RefusesANewerSchema) {
  const auto newer = static_cast<int64_t>(store::Migrations().size()) + 1;
  ASSERT_TRUE(Backup(newer).ok());
  auto v = VerifyBackup(tmp_.File("backup.vbk"));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().reason(), kSchemaTooNew);
  auto r = RestoreInto(tmp_.File("restored"), key_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), kSchemaTooNew);
  EXPECT_FALSE(std::filesystem::exists(tmp_.File("restored")));
}

TEST_F(BackupRestore, RefusesAFlippedByte) {
  ASSERT_TRUE(Backup().ok());
  auto bytes = *ReadWholeFile(tmp_.File("backup.vbk"));
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x40);
  ASSERT_TRUE(WriteFileAtomic(tmp_.File("backup.vbk"), bytes, 0600).ok());
  EXPECT_EQ(VerifyBackup(tmp_.File("backup.vbk")).status().reason(), kArchiveCorrupt);
  auto r = RestoreInto(tmp_.File("restored"), key_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), kArchiveCorrupt);
}

TEST_F(BackupRestore, RefusesAWellFormedArchiveWhoseStoreIsNotADatabase) {
  Manifest m = SampleHeader();
  m.schema_version = 1;
  auto archive = EncodeArchive(m, {{"vouch.db", 0600, std::string(4096, 'x')}, {"config.json", 0600, "{}"}});
  ASSERT_TRUE(archive.ok());
  ASSERT_TRUE(WriteFileAtomic(tmp_.File("backup.vbk"), *archive, 0600).ok());
  auto v = VerifyBackup(tmp_.File("backup.vbk"));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().reason(), kArchiveCorrupt);
  EXPECT_FALSE(RestoreInto(tmp_.File("restored"), key_).ok());
  EXPECT_FALSE(std::filesystem::exists(tmp_.File("restored")));
}

TEST(BackupMasterKey, SharesCombineOnlyWithEnoughIntactSharesAndBadKeyFilesAreRefused) {
  test::TempDir tmp("mk");
  crypto::SecretBytes key = crypto::RandomSecret(32);
  auto paths = custody::WriteShareFiles(key.span(), 2, 3, tmp.File("shares"));
  ASSERT_TRUE(paths.ok()) << paths.status().message();
  MasterKeySource shares;
  shares.share_files = {(*paths)[0], (*paths)[2]};
  auto combined = LoadRestoreMasterKey(shares);
  ASSERT_TRUE(combined.ok()) << combined.status().message();
  EXPECT_EQ(combined->view(), key.view());
  shares.share_files = {(*paths)[1]};
  EXPECT_EQ(LoadRestoreMasterKey(shares).status().reason(), custody::kTooFewShares);
  MasterKeySource both = shares;
  both.master_key_file = tmp.Write("k", std::string(32, 'k'));
  EXPECT_FALSE(LoadRestoreMasterKey(both).ok());
  MasterKeySource file;
  file.master_key_file = tmp.Write("short", "0123");
  EXPECT_EQ(LoadRestoreMasterKey(file).status().reason(), kInvalidMasterKeyFile);
  file.master_key_file = tmp.Write("good", std::string(32, 'k'));
  EXPECT_TRUE(LoadRestoreMasterKey(file).ok());
}

}  // namespace
}  // namespace vouch::backup

namespace vouch::backup {
namespace {

// The fuzz seeds (fuzz/backup_archive_corpus/make_seeds.py) follow the format: they parse.
TEST(BackupArchive, FuzzSeedCorpusParses) {
  int seen = 0;
  for (const auto& e : std::filesystem::directory_iterator(VOUCH_SOURCE_DIR "/fuzz/backup_archive_corpus")) {
    if (e.path().extension() != ".vbk") continue;
    auto bytes = ReadWholeFile(e.path().string());
    ASSERT_TRUE(bytes.ok());
    EXPECT_TRUE(ParseArchive(AsBytes(*bytes)).ok()) << e.path();
    ++seen;
  }
  EXPECT_GE(seen, 3);
}

}  // namespace
}  // namespace vouch::backup
