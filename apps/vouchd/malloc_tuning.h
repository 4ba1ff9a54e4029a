#pragma once

// glibc heap settings for vouchd (BENCHMARKS.md, "Scale (issue 16)", "Soak"). vouchd runs 64 or
// more I/O threads; glibc gives threads up to 8 malloc arenas per core, and each arena keeps the
// memory its threads freed for reuse by them. Measured in a soak (200,000 instances, 20,000
// heartbeats/s, 100 certificates/s, 5 minutes): with 16 arenas glibc held 45 MB from the system
// for 26.5 MB in use and RSS grew 5.9 % after the first minute; with 2 arenas, 30 MB for the same
// 26.3 MB and 2.1 %, at the same CPU per heartbeat.

namespace vouchd {

// Caps glibc's malloc arenas at `arenas` (call before any thread starts; vouchd passes one per
// core, at least 2: as many threads as can run at once), unless the operator chose a value with
// MALLOC_ARENA_MAX or GLIBC_TUNABLES. Returns the cap applied (0: none).
int LimitMallocArenas(int arenas);

}  // namespace vouchd
