#pragma once

// Master-key custody: m-of-n Shamir shares of a secret (the cluster master key) over GF(256),
// computed by Debian's libgfshare, in a versioned, checksummed, printable format
// (docs/custody.md, "Share format").
//
// A share's recovery code is "VS1-" followed by the hex of this payload in groups of 4 digits:
//   offset size  field
//   0      1     version (1)
//   1      1     threshold m (2..255)
//   2      1     share count n (m..255)
//   3      1     share index x (1..n), the GF(256) point of this share
//   4      8     split id: random per split, so shares of two splits never mix
//   12     16    key id: HMAC-SHA256(secret, "vouch-master-key-id-v1")[0..16], names the secret
//                without revealing it
//   28     1     secret length L (1..64)
//   29     L     share bytes
//   29+L   8     checksum: SHA-256("vouch-share-v1" || bytes 0..29+L)[0..8]
// A share file holds explanatory lines and the code; only the code is read back.
//
// Failure behaviour: decoding and combining never return a wrong secret. Too few shares,
// shares of different keys or splits, a corrupted code (checksum) and a combination that does
// not reproduce the key id are refusals with the reason codes below. Thread-safe.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "crypto/secret.h"

namespace vouch::custody {

inline constexpr std::string_view kTooFewShares = "too_few_shares";
inline constexpr std::string_view kShareCorrupt = "share_corrupt";            // checksum or format
inline constexpr std::string_view kShareMismatch = "share_mismatch";          // other key, split or threshold
inline constexpr std::string_view kShareKeyIdMismatch = "share_key_id_mismatch";  // combined key has another id
inline constexpr std::string_view kInvalidSplit = "invalid_split";            // bad threshold/count/secret
inline constexpr std::string_view kShareFileExists = "share_file_exists";
inline constexpr std::string_view kShareEncrypted = "share_encrypted";          // decrypt it first
inline constexpr std::string_view kWrongCustodianKey = "wrong_custodian_key";
inline constexpr std::string_view kInvalidCustodianKey = "invalid_custodian_key";  // not an EC P-256 public key

inline constexpr size_t kKeyIdSize = 16;
inline constexpr size_t kSplitIdSize = 8;
inline constexpr size_t kMaxSecretSize = 64;

using KeyId = std::array<uint8_t, kKeyIdSize>;

// HMAC-SHA256(secret, "vouch-master-key-id-v1") truncated to 16 bytes.
KeyId SecretKeyId(std::span<const uint8_t> secret);

struct Share {
  uint8_t threshold = 0;
  uint8_t count = 0;
  uint8_t index = 0;  // 1..count
  std::array<uint8_t, kSplitIdSize> split_id{};
  KeyId key_id{};
  crypto::SecretBytes bytes;  // same length as the secret
};

// Splits `secret` (1..64 bytes) into `count` shares any `threshold` of which recover it
// (2 <= threshold <= count <= 255). Randomness: OpenSSL's RAND_bytes.
Result<std::vector<Share>> Split(std::span<const uint8_t> secret, int threshold, int count);

// The recovery code "VS1-xxxx-xxxx-..." of a share.
std::string EncodeShare(const Share& share);
// The whole file written for a share: a few explanatory lines, then the code.
std::string ShareFileText(const Share& share);
// Parses a recovery code or a share file (the first line starting "VS1-", any case; spaces
// and dashes inside the code are ignored). Refuses a bad checksum or layout (kShareCorrupt).
Result<Share> DecodeShare(std::string_view text);

// Combines shares of one split. Refuses fewer than `threshold` distinct shares (kTooFewShares),
// shares of different splits, keys or thresholds, or two different shares at one index
// (kShareMismatch), and a result whose key id differs from the shares' (kShareKeyIdMismatch).
Result<crypto::SecretBytes> Combine(const std::vector<Share>& shares);

// Reads and combines share files (what `vouchd master-key combine` and `vouchd restore` call).
Result<crypto::SecretBytes> CombineShareFiles(const std::vector<std::string>& paths);

// A share encrypted to a custodian's P-256 public key (ECIES, docs/custody.md): the code
// "VSE1-" + hex of: version 1 | ephemeral public point (65) | custodian key id (16: SHA-256 of
// its SubjectPublicKeyInfo) | AES-256-GCM(key = HKDF-SHA256(ECDH(ephemeral, custodian),
// salt = point || key id, info "vouch-share-ecies-v1"), aad = the same) of the share's VS1 code.
// Returns the whole file text. InvalidArgument kInvalidCustodianKey for a key that is not P-256.
Result<std::string> EncryptedShareFileText(const Share& share, std::string_view custodian_public_pem);
// True when `text` holds an encrypted share (a "VSE1-" line).
bool IsEncryptedShare(std::string_view text);
// Decrypts an encrypted share file with the custodian's private key (PEM) into the plain share
// file text. Refuses another custodian's key (kWrongCustodianKey) and any tampering (kShareCorrupt).
Result<std::string> DecryptShareFile(std::string_view text, std::string_view custodian_private_pem);

// Splits `secret` and writes one file per share, DIR/share-<i>-of-<n>.txt (mode 0600), refusing
// to overwrite an existing file. Returns the paths written.
// With `custodian_public_pems` (exactly `count` PEMs, or none), share i is encrypted to key i.
Result<std::vector<std::string>> WriteShareFiles(std::span<const uint8_t> secret, int threshold, int count,
                                                 const std::string& out_dir,
                                                 const std::vector<std::string>& custodian_public_pems = {});

}  // namespace vouch::custody
