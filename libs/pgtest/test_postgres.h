#pragma once

#include <memory>
#include <string>

#include "base/result.h"

namespace vouch::pgtest {

// A PostgreSQL server for tests. Start() fails with Unavailable when the server binaries are
// missing or the server does not come up (the log tail is in the message). The destructor stops
// the server (immediate mode) and deletes its directory. Not thread-safe.
class TestPostgres {
 public:
  static Result<std::unique_ptr<TestPostgres>> Start();
  ~TestPostgres();
  TestPostgres(const TestPostgres&) = delete;
  TestPostgres& operator=(const TestPostgres&) = delete;

  // Creates an empty database and returns its postgres:// URL.
  Result<std::string> CreateDatabase(const std::string& name);
  std::string Url(const std::string& database) const;
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }

  // Stops the server like a crash (`pg_ctl stop -m immediate`) / starts it again on the same port.
  Status Stop();
  Status Restart();

 private:
  TestPostgres() = default;
  Status StartServer();
  std::string RunAs(const std::string& command) const;

  std::string bindir_;
  std::string dir_;
  std::string user_;  // "" when not root
  int port_ = 0;
  bool running_ = false;
};

// True when PostgreSQL tests must fail rather than skip if no server can be started
// (VOUCH_REQUIRE_POSTGRES=1, set by scripts/test).
bool PostgresRequired();

// One server shared by all tests of a process, started on first use (nullptr + reason on failure).
TestPostgres* SharedTestPostgres(std::string* why_not);

// A new empty database on the shared server: its URL, or Unavailable with the reason.
Result<std::string> FreshTestDatabase();

}  // namespace vouch::pgtest
