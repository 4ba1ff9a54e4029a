#pragma once

// A temporary directory for a test, removed with everything in it when the object goes out of scope.
#include <string>
#include <string_view>

namespace vouch::test {

class TempDir {
 public:
  // A fresh directory "<system temp dir>/vouch-<tag>-XXXXXX" (mkdtemp). Aborts if it cannot be made.
  explicit TempDir(std::string_view tag = "test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string File(std::string_view name) const;
  // Writes `contents` to path()/name (binary) and returns that path.
  std::string Write(std::string_view name, std::string_view contents) const;

 private:
  std::string path_;
};

}  // namespace vouch::test
