#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace vouchd {

struct JoinArgs {
  std::string data_dir;
  std::vector<std::string> peers;  // members' https:// URLs, tried in order
  std::string ca_file;             // the cluster's service CA (DIR/service-ca.pem of a member)
  std::string store_url;           // the cluster's postgres:// URL
  std::string listen = "127.0.0.1:8443";
  std::string tee = "sim";
  std::string sim_dir;
};

vouch::Status RunJoin(const JoinArgs& args);

}  // namespace vouchd
