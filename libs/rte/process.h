#pragma once

// PID-1 duties of vouch-rte: start the application as a child with exactly the manifest's argv and
// environment, forward the signals a container runtime sends (TERM, INT, HUP, QUIT, USR1, USR2,
// WINCH) to it, reap every zombie (orphans are re-parented to PID 1), and return the child's exit
// status (its code, or 128 + the signal that killed it, as a shell reports it).
//
// Usage: BlockSignals() first, in the main thread, before any other thread exists (threads
// inherit the mask, so signals stay pending for the main thread's sigtimedwait). Not thread-safe.

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "base/result.h"

namespace vouch::rte {

void BlockSignals();

// Sleeps up to `d`, returning early with the number of a terminating signal (TERM, INT, HUP,
// QUIT) if one arrives; 0 when the time passed. Reaps zombies meanwhile.
int SleepOrSignal(std::chrono::milliseconds d);

// fork + execve of exactly `exe` (an absolute path: no PATH search, docs/convert.md "The
// program") with `argv` and `env`. The child restores the default signal mask and dispositions.
Result<pid_t> StartChild(const std::string& exe, const std::vector<std::string>& argv,
                         const std::vector<std::string>& env);

// Forwards signals and reaps until `child` exits; returns its status as a shell exit code.
// `on_signal` (may be empty) is told of each forwarded signal.
int SuperviseChild(pid_t child);

}  // namespace vouch::rte
