#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>

namespace {

la_ssize_t Collect(struct archive*, void* out, const void* buf, size_t n) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

TEST(ArchiveLoader, LoadsLibarchiveOnFirstUseOnlyAndRoundTripsATar) {
  // The binary does not depend on libarchive at start-up...
  void* before = dlopen("libarchive.so.13", RTLD_NOLOAD | RTLD_NOW);
  if (before != nullptr) dlclose(before);
  EXPECT_EQ(before, nullptr) << "libarchive was loaded before the first archive call";

  // ...the first call loads it, and the forwarded calls behave as libarchive's own.
  std::string tar;
  struct archive* w = archive_write_new();
  ASSERT_NE(w, nullptr);
  void* after = dlopen("libarchive.so.13", RTLD_NOLOAD | RTLD_NOW);
  EXPECT_NE(after, nullptr);
  if (after != nullptr) dlclose(after);
  ASSERT_EQ(archive_write_set_format_pax_restricted(w), ARCHIVE_OK);
  ASSERT_EQ(archive_write_add_filter_gzip(w), ARCHIVE_OK);
  ASSERT_EQ(archive_write_open(w, &tar, nullptr, Collect, nullptr), ARCHIVE_OK);
  const std::string body = "hello from a lazily loaded libarchive\n";
  struct archive_entry* e = archive_entry_new();
  archive_entry_copy_pathname(e, "etc/greeting");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0640);
  archive_entry_set_uid(e, 1000);
  archive_entry_set_gid(e, 2000);
  archive_entry_set_size(e, static_cast<la_int64_t>(body.size()));
  archive_entry_set_mtime(e, 0, 0);
  ASSERT_EQ(archive_write_header(w, e), ARCHIVE_OK);
  EXPECT_EQ(archive_write_data(w, body.data(), body.size()), static_cast<la_ssize_t>(body.size()));
  archive_entry_free(e);
  ASSERT_EQ(archive_write_close(w), ARCHIVE_OK);
  archive_write_free(w);
  ASSERT_GT(tar.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(tar[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>(tar[1]), 0x8b);

  struct archive* r = archive_read_new();
  ASSERT_NE(r, nullptr);
  archive_read_support_filter_gzip(r);
  archive_read_support_format_tar(r);
  ASSERT_EQ(archive_read_open_memory(r, tar.data(), tar.size()), ARCHIVE_OK);
  struct archive_entry* got = nullptr;
  ASSERT_EQ(archive_read_next_header(r, &got), ARCHIVE_OK);
  EXPECT_STREQ(archive_entry_pathname(got), "etc/greeting");
  EXPECT_EQ(archive_entry_filetype(got), static_cast<__LA_MODE_T>(AE_IFREG));
  EXPECT_EQ(archive_entry_perm(got), static_cast<__LA_MODE_T>(0640));
  EXPECT_EQ(archive_entry_uid(got), 1000);
  EXPECT_EQ(archive_entry_gid(got), 2000);
  EXPECT_EQ(archive_entry_size(got), static_cast<la_int64_t>(body.size()));
  std::string read(body.size() + 10, '\0');
  EXPECT_EQ(archive_read_data(r, read.data(), read.size()), static_cast<la_ssize_t>(body.size()));
  read.resize(body.size());
  EXPECT_EQ(read, body);
  EXPECT_EQ(archive_read_next_header(r, &got), ARCHIVE_EOF);
  archive_read_free(r);

  // Corrupt input is reported the way libarchive reports it, with a message.
  struct archive* bad = archive_read_new();
  archive_read_support_filter_gzip(bad);
  archive_read_support_format_tar(bad);
  const std::string junk = std::string("\x1f\x8b", 2) + std::string(64, 'x');
  int rc = archive_read_open_memory(bad, junk.data(), junk.size());
  if (rc == ARCHIVE_OK) rc = archive_read_next_header(bad, &got);
  EXPECT_LT(rc, ARCHIVE_OK);
  EXPECT_NE(archive_error_string(bad), nullptr);
  archive_read_free(bad);
}

}  // namespace
