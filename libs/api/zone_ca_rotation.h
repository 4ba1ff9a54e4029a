#pragma once

// Zone CA rotation (issue 18; manager_ca_rotation.cc, docs/api.md "Zone CA rotation"). A rotation
// makes the zone's next root CA as a zone_cas row, pending until its task (kind ca_rotation, the
// zone's quorum) is approved; activation swaps it into zones.ca_cert_pem / ca_key_sealed and keeps
// the previous root as a 'retired' zone_cas row that still signs its own CRL.

#include <string>
#include <string_view>

#include "base/status.h"
#include "store/database.h"

namespace vouch::api {

class Manager;

// The AAD of zone_cas.key_sealed (table, column, row id). The active CA's key lives in
// zones.ca_key_sealed under "vouch:zone-ca-key:<zone id>"; its zone_cas row's key is wiped.
inline std::string ZoneCaRowKeyAad(std::string_view ca_id) {
  return "vouch:zone_cas.key_sealed:" + std::string(ca_id);
}

// The approval (approved) or denial (denied, key wiped) of a ca_rotation task's zone_cas row.
Status DecideCaRotationTask(store::Transaction& tx, const store::Row& task, bool approve);

}  // namespace vouch::api
