#include <curl/curl.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace {

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

class CurlLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vouch_curl_test_XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    close(fd);
    path_ = tmpl;
    std::ofstream(path_) << body_;
  }
  void TearDown() override { std::remove(path_.c_str()); }
  std::string path_;
  std::string body_ = std::string(5000, 'v') + "end";
};

TEST_F(CurlLoaderTest, LoadsLibcurlOnFirstUseOnly) {
  // The binary does not depend on libcurl at start-up...
  void* before = dlopen("libcurl.so.4", RTLD_NOLOAD | RTLD_NOW);
  if (before != nullptr) dlclose(before);
  EXPECT_EQ(before, nullptr) << "libcurl was loaded before the first curl call";
  // ...and it is loaded by the first call.
  CURL* c = curl_easy_init();
  ASSERT_NE(c, nullptr);
  void* after = dlopen("libcurl.so.4", RTLD_NOLOAD | RTLD_NOW);
  EXPECT_NE(after, nullptr);
  if (after != nullptr) dlclose(after);
  curl_easy_cleanup(c);
}

TEST_F(CurlLoaderTest, ForwardsEveryOptionTypeAndInfo) {
  CURL* c = curl_easy_init();
  ASSERT_NE(c, nullptr);
  std::string url = "file://" + path_;
  std::string got;
  curl_slist* headers = curl_slist_append(nullptr, "X-Test: 1");
  ASSERT_NE(headers, nullptr);
  EXPECT_EQ(curl_easy_setopt(c, CURLOPT_URL, url.c_str()), CURLE_OK);                        // string
  EXPECT_EQ(curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L), CURLE_OK);                            // long
  EXPECT_EQ(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Append), CURLE_OK);                  // function
  EXPECT_EQ(curl_easy_setopt(c, CURLOPT_WRITEDATA, &got), CURLE_OK);                         // object
  EXPECT_EQ(curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers), CURLE_OK);                     // slist
  EXPECT_EQ(curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, curl_off_t{1} << 20), CURLE_OK);  // off_t
  ASSERT_EQ(curl_easy_perform(c), CURLE_OK);
  EXPECT_EQ(got, body_);
  curl_off_t size = 0;
  EXPECT_EQ(curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &size), CURLE_OK);
  EXPECT_EQ(size, static_cast<curl_off_t>(body_.size()));

  // An off_t offset must reach libcurl with its value intact: resume 5000 bytes in.
  got.clear();
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
  EXPECT_EQ(curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, curl_off_t{5000}), CURLE_OK);
  ASSERT_EQ(curl_easy_perform(c), CURLE_OK);
  EXPECT_EQ(got, "end");
  EXPECT_STRNE(curl_easy_strerror(CURLE_FILESIZE_EXCEEDED), "libcurl unavailable");
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
}

TEST_F(CurlLoaderTest, UrlApi) {
  CURLU* u = curl_url();
  ASSERT_NE(u, nullptr);
  ASSERT_EQ(curl_url_set(u, CURLUPART_URL, "https://registry.example:5000/v2/a/b?x=1", 0), CURLUE_OK);
  char* host = nullptr;
  ASSERT_EQ(curl_url_get(u, CURLUPART_HOST, &host, 0), CURLUE_OK);
  EXPECT_STREQ(host, "registry.example");
  curl_free(host);
  curl_url_cleanup(u);
}

}  // namespace
