#include "rte/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace vouch::rte {
namespace {

constexpr int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

sigset_t HandledSet() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : kForwarded) sigaddset(&set, s);
  sigaddset(&set, SIGCHLD);
  return set;
}

// Reaps every exited child; returns true and sets *status if `watch` was among them.
bool ReapAll(pid_t watch, int* status) {
  bool found = false;
  while (true) {
    int st = 0;
    pid_t p = ::waitpid(-1, &st, WNOHANG);
    if (p <= 0) break;
    if (p == watch) {
      *status = st;
      found = true;
    }
  }
  return found;
}

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

void BlockSignals() {
  sigset_t set = HandledSet();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int SleepOrSignal(std::chrono::milliseconds d) {
  sigset_t set = HandledSet();
  auto end = std::chrono::steady_clock::now() + d;
  while (true) {
    auto left = end - std::chrono::steady_clock::now();
    if (left <= std::chrono::milliseconds(0)) return 0;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    int sig = ::sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGCHLD) {
      int unused = 0;
      ReapAll(-1, &unused);
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT) return sig;
  }
}

Result<pid_t> StartChild(const std::string& exe, const std::vector<std::string>& argv,
                         const std::vector<std::string>& env) {
  if (argv.empty()) return InvalidArgument("nothing to run");
  if (exe.empty() || exe.front() != '/') return InvalidArgument("the program must be an absolute path", "exec_failed");
  std::vector<char*> cargv, cenv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const std::string& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return Internal(std::string("pipe: ") + std::strerror(errno));
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return Unavailable(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // Child: default dispositions and an empty mask, then exec. Only async-signal-safe calls.
    for (int s : kForwarded) ::signal(s, SIG_DFL);
    ::signal(SIGCHLD, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::close(pipefd[0]);
    ::execve(exe.c_str(), cargv.data(), cenv.data());
    int err = errno;
    (void)!::write(pipefd[1], &err, sizeof(err));
    ::_exit(127);
  }
  ::close(pipefd[1]);
  int err = 0;
  ssize_t n;
  do {
    n = ::read(pipefd[0], &err, sizeof(err));
  } while (n < 0 && errno == EINTR);
  ::close(pipefd[0]);
  if (n == static_cast<ssize_t>(sizeof(err))) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return Unavailable("cannot execute " + exe + ": " + std::strerror(err), "exec_failed");
  }
  return pid;
}

int SuperviseChild(pid_t child) {
  sigset_t set = HandledSet();
  int status = 0;
  if (ReapAll(child, &status)) return ExitCodeOf(status);
  while (true) {
    siginfo_t info;
    int sig = ::sigwaitinfo(&set, &info);
    if (sig < 0) continue;
    if (sig == SIGCHLD) {
      if (ReapAll(child, &status)) return ExitCodeOf(status);
      continue;
    }
    ::kill(child, sig);
  }
}

}  // namespace vouch::rte
