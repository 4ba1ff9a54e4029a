#include "pki/pem.h"

#include <gtest/gtest.h>

#include <vector>

namespace vouch::pki {
namespace {

TEST(DerToPem, WrapsBase64At64ColumnsBetweenTheLabels) {
  EXPECT_EQ(DerToPem("X509 CRL", std::vector<uint8_t>{}), "-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n");
  EXPECT_EQ(DerToPem("X", std::vector<uint8_t>{0x00, 0x01, 0x02}), "-----BEGIN X-----\nAAEC\n-----END X-----\n");
  const std::vector<uint8_t> der(48, 0xff);  // exactly 64 base64 characters: one full line
  EXPECT_EQ(DerToPem("X", der), "-----BEGIN X-----\n" + std::string(64, '/') + "\n-----END X-----\n");
  const std::vector<uint8_t> longer(49, 0xff);
  EXPECT_EQ(DerToPem("X", longer), "-----BEGIN X-----\n" + std::string(64, '/') + "\n/w==\n-----END X-----\n");
}

}  // namespace
}  // namespace vouch::pki
