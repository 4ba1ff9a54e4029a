#include "pgtest/test_postgres.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "base/file.h"

namespace vouch::pgtest {
namespace {

std::string FindBindir() {
  if (const char* env = std::getenv("VOUCH_PG_BINDIR"); env && *env) return env;
  std::string best;  // the newest major version installed; names are numbers of equal width
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    std::string bin = e.path().string() + "/bin";
    if (std::filesystem::exists(bin + "/pg_ctl", ec) && bin > best) best = bin;
  }
  return best;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::string LogTail(const std::string& path) {
  auto text = ReadWholeFile(path, 1 << 20);
  if (!text.ok()) return "(no log)";
  std::string t = *text;
  return t.size() > 600 ? t.substr(t.size() - 600) : t;
}

}  // namespace

bool PostgresRequired() {
  const char* env = std::getenv("VOUCH_REQUIRE_POSTGRES");
  return env != nullptr && std::string(env) == "1";
}

std::string TestPostgres::RunAs(const std::string& command) const {
  return user_.empty() ? command : "runuser -u " + user_ + " -- " + command;
}

Result<std::unique_ptr<TestPostgres>> TestPostgres::Start() {
  auto pg = std::unique_ptr<TestPostgres>(new TestPostgres());
  pg->bindir_ = FindBindir();
  if (pg->bindir_.empty()) {
    return Unavailable("no PostgreSQL server binaries (install the Debian package postgresql)", "pg_missing");
  }
  uid_t uid = 0;
  if (::geteuid() == 0) {
    // initdb and postgres refuse to run as root.
    for (const char* name : {"postgres", "nobody"}) {
      if (passwd* pw = ::getpwnam(name)) {
        pg->user_ = name;
        uid = pw->pw_uid;
        break;
      }
    }
    if (pg->user_.empty()) return Unavailable("running as root and neither 'postgres' nor 'nobody' exists", "pg_user");
  }

  // The template cluster, made once per build tree under a file lock.
  std::string tmpl = std::string(VOUCH_BINARY_DIR) + "/pg-template";
  if (const char* env = std::getenv("VOUCH_PG_TEMPLATE"); env && *env) tmpl = env;
  {
    int lock = ::open((tmpl + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0) return Unavailable("cannot create " + tmpl + ".lock", "pg_template");
    ::flock(lock, LOCK_EX);
    std::error_code ec;
    if (!std::filesystem::exists(tmpl + "/PG_VERSION")) {
      std::filesystem::remove_all(tmpl, ec);
      std::string tmp = tmpl + ".tmp";
      std::filesystem::remove_all(tmp, ec);
      std::filesystem::create_directories(tmp, ec);
      if (uid != 0 && ::chown(tmp.c_str(), uid, static_cast<gid_t>(-1)) != 0) ec.clear();
      std::string cmd = pg->RunAs(pg->bindir_ + "/initdb -D " + tmp + " -U vouch --auth=trust --no-locale -E UTF8 --no-sync") +
                        " > " + tmpl + ".log 2>&1";
      if (std::system(cmd.c_str()) != 0) {
        ::close(lock);
        return Unavailable("initdb failed: " + LogTail(tmpl + ".log"), "pg_initdb");
      }
      std::filesystem::rename(tmp, tmpl, ec);
    }
    ::close(lock);
  }

  char pattern[] = "/tmp/vouch-pg-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) return Unavailable("mkdtemp failed", "pg_tempdir");
  pg->dir_ = pattern;
  std::string cp = "cp -a " + tmpl + " " + pg->dir_ + "/data && chmod 700 " + pg->dir_ + "/data";
  if (!pg->user_.empty()) cp += " && chown -R " + pg->user_ + " " + pg->dir_;
  if (std::system(cp.c_str()) != 0) return Unavailable("cannot copy the template cluster " + tmpl, "pg_template");
  for (int attempt = 0; attempt < 5; ++attempt) {
    pg->port_ = FreePort();
    if (pg->StartServer().ok()) return pg;
  }
  return Unavailable("PostgreSQL did not start: " + LogTail(pg->dir_ + "/log"), "pg_start");
}

Status TestPostgres::StartServer() {
  std::string cmd = RunAs(bindir_ + "/pg_ctl -D " + dir_ + "/data -l " + dir_ + "/log -w -t 30 -o \"-p " +
                          std::to_string(port_) + " -k " + dir_ +
                          " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200\" start") +
                    " > /dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) return Unavailable("pg_ctl start failed", "pg_start");
  running_ = true;
  return Status::Ok();
}

Status TestPostgres::Stop() {
  if (!running_) return Status::Ok();
  std::string cmd = RunAs(bindir_ + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop") + " > /dev/null 2>&1";
  running_ = false;
  if (std::system(cmd.c_str()) != 0) return Unavailable("pg_ctl stop failed", "pg_stop");
  return Status::Ok();
}

Status TestPostgres::Restart() {
  VOUCH_RETURN_IF_ERROR(Stop());
  return StartServer();
}

TestPostgres::~TestPostgres() {
  (void)Stop();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::string TestPostgres::Url(const std::string& database) const {
  return "postgres://vouch@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

Result<std::string> TestPostgres::CreateDatabase(const std::string& name) {
  for (char c : name) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return InvalidArgument("database names here are [a-z0-9_]+");
    }
  }
  PGconn* conn = PQconnectdb(Url("postgres").c_str());
  std::string err;
  if (PQstatus(conn) != CONNECTION_OK) {
    err = PQerrorMessage(conn);
  } else {
    PGresult* res = PQexec(conn, ("CREATE DATABASE " + name).c_str());
    if (PQresultStatus(res) != PGRES_COMMAND_OK) err = PQresultErrorMessage(res);
    PQclear(res);
  }
  PQfinish(conn);
  if (!err.empty()) return Unavailable("CREATE DATABASE " + name + ": " + err, "pg_createdb");
  return Url(name);
}

TestPostgres* SharedTestPostgres(std::string* why_not) {
  static std::string error;
  static std::unique_ptr<TestPostgres> server = [] {
    auto s = TestPostgres::Start();
    if (!s.ok()) {
      error = s.status().message();
      return std::unique_ptr<TestPostgres>();
    }
    return std::move(*s);
  }();
  if (!server && why_not) *why_not = error;
  return server.get();
}

Result<std::string> FreshTestDatabase() {
  std::string why;
  TestPostgres* server = SharedTestPostgres(&why);
  if (server == nullptr) return Unavailable(why, "pg_unavailable");
  static int counter = 0;
  return server->CreateDatabase("db" + std::to_string(++counter));
}

}  // namespace vouch::pgtest
