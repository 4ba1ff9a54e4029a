#pragma once

// Running a command-line tool (e.g. the real `openssl`) from a test.
#include <string>

namespace vouch::test {

struct CommandResult {
  int exit_code = -1;  // -1 if it could not be run or did not exit normally
  std::string output;  // stdout and stderr
};

CommandResult Run(const std::string& command);

}  // namespace vouch::test
