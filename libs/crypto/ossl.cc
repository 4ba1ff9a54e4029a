#include "crypto/ossl.h"

#include <openssl/err.h>

namespace vouch::crypto {

std::string DrainOpensslErrors() {
  std::string out;
  unsigned long err;
  while ((err = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

Status OpensslError(std::string_view what, StatusCode code, std::string reason) {
  std::string errors = DrainOpensslErrors();
  std::string msg(what);
  if (!errors.empty()) msg += ": " + errors;
  return Status(code, std::move(msg), std::move(reason));
}

}  // namespace vouch::crypto
