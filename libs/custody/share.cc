#include "custody/share.h"

// libgfshare.h has no extern "C" guard of its own.
extern "C" {
#include <libgfshare.h>
}
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>

#include "base/encoding.h"
#include "base/file.h"
#include "crypto/aead.h"
#include "crypto/digest.h"
#include "crypto/kdf.h"
#include "crypto/keys.h"

namespace vouch::custody {
namespace {

constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderSize = 29;  // up to and including the secret length
constexpr size_t kChecksumSize = 8;
constexpr std::string_view kCodePrefix = "VS1-";
constexpr std::string_view kKeyIdLabel = "vouch-master-key-id-v1";
constexpr std::string_view kChecksumLabel = "vouch-share-v1";
constexpr std::string_view kEncryptedPrefix = "VSE1-";
constexpr std::string_view kEciesLabel = "vouch-share-ecies-v1";
constexpr size_t kPointSize = 65;

// libgfshare draws its polynomial coefficients through gfshare_fill_rand, which is unset in
// 2.0.0 (its random()-based fallback is named a bad idea): shares come from OpenSSL's CSPRNG.
// A failure of RAND_bytes aborts: a share with predictable coefficients would leak the key.
void FillRand(unsigned char* buf, unsigned int n) {
  if (RAND_bytes(buf, static_cast<int>(n)) != 1) std::abort();
}

// Set before any context is made: gfshare_ctx_free also draws from it (to wipe the buffer).
void UseOpenSslRandom() {
  static std::once_flag once;
  std::call_once(once, [] { gfshare_fill_rand = FillRand; });
}

struct GfshareFree {
  void operator()(gfshare_ctx* c) const { gfshare_ctx_free(c); }
};
using GfsharePtr = std::unique_ptr<gfshare_ctx, GfshareFree>;

std::vector<uint8_t> Payload(const Share& s) {
  std::vector<uint8_t> out = {kVersion, s.threshold, s.count, s.index};
  out.insert(out.end(), s.split_id.begin(), s.split_id.end());
  out.insert(out.end(), s.key_id.begin(), s.key_id.end());
  out.push_back(static_cast<uint8_t>(s.bytes.size()));
  out.insert(out.end(), s.bytes.span().begin(), s.bytes.span().end());
  return out;
}

std::array<uint8_t, kChecksumSize> Checksum(std::span<const uint8_t> payload) {
  std::vector<uint8_t> msg(kChecksumLabel.begin(), kChecksumLabel.end());
  msg.insert(msg.end(), payload.begin(), payload.end());
  auto d = crypto::Sha256(msg);
  std::array<uint8_t, kChecksumSize> out;
  std::copy_n(d.begin(), kChecksumSize, out.begin());
  std::fill(msg.begin(), msg.end(), 0);
  return out;
}

// The hex digits of the first line starting with `prefix` (any case; spaces and dashes dropped).
std::string FindCode(std::string_view text, std::string_view prefix) {
  std::string code;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) line.remove_prefix(1);
    if (line.size() >= prefix.size()) {
      std::string head(line.substr(0, prefix.size()));
      for (char& c : head) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (head == prefix) {
        for (char c : line.substr(prefix.size())) {
          if (c == '-' || std::isspace(static_cast<unsigned char>(c))) continue;
          code += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        break;
      }
    }
    pos = end + 1;
  }
  return code;
}

std::string Grouped(std::string_view prefix, const std::string& hex) {
  std::string code(prefix);
  for (size_t i = 0; i < hex.size(); i += 4) {
    if (i != 0) code += '-';
    code += hex.substr(i, 4);
  }
  return code;
}

std::array<uint8_t, 16> PublicKeyId(EVP_PKEY* key, Status* st) {
  std::array<uint8_t, 16> id{};
  auto der = crypto::PublicKeyToDer(key);
  if (!der.ok()) {
    *st = der.status();
    return id;
  }
  auto d = crypto::Sha256(*der);
  std::copy_n(d.begin(), id.size(), id.begin());
  return id;
}

Status Corrupt(const std::string& why) {
  return DataLoss("not a valid vouch master-key share: " + why, std::string(kShareCorrupt));
}

}  // namespace

KeyId SecretKeyId(std::span<const uint8_t> secret) {
  auto mac = crypto::HmacSha256(secret, std::span<const uint8_t>(
                                            reinterpret_cast<const uint8_t*>(kKeyIdLabel.data()), kKeyIdLabel.size()));
  KeyId id;
  std::copy_n(mac.begin(), kKeyIdSize, id.begin());
  return id;
}

Result<std::vector<Share>> Split(std::span<const uint8_t> secret, int threshold, int count) {
  if (secret.empty() || secret.size() > kMaxSecretSize) {
    return InvalidArgument("the secret must be 1 to 64 bytes, got " + std::to_string(secret.size()),
                           std::string(kInvalidSplit));
  }
  if (threshold < 2 || count < threshold || count > 255) {
    return InvalidArgument("need 2 <= threshold <= shares <= 255, got threshold " + std::to_string(threshold) +
                               " of " + std::to_string(count) + " shares",
                           std::string(kInvalidSplit));
  }
  UseOpenSslRandom();
  std::vector<unsigned char> sharenrs(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) sharenrs[static_cast<size_t>(i)] = static_cast<unsigned char>(i + 1);
  GfsharePtr ctx(gfshare_ctx_init_enc(sharenrs.data(), static_cast<unsigned>(count), static_cast<unsigned char>(threshold),
                                      static_cast<unsigned>(secret.size())));
  if (!ctx) return Internal("libgfshare could not make an encoder", std::string(kInvalidSplit));
  crypto::SecretBytes copy(secret);  // gfshare takes a non-const pointer
  gfshare_ctx_enc_setsecret(ctx.get(), copy.data());
  std::array<uint8_t, kSplitIdSize> split_id;
  if (RAND_bytes(split_id.data(), static_cast<int>(split_id.size())) != 1) {
    return Internal("RAND_bytes failed", std::string(kInvalidSplit));
  }
  const KeyId key_id = SecretKeyId(secret);
  std::vector<Share> shares;
  for (int i = 0; i < count; ++i) {
    Share s;
    s.threshold = static_cast<uint8_t>(threshold);
    s.count = static_cast<uint8_t>(count);
    s.index = static_cast<uint8_t>(i + 1);
    s.split_id = split_id;
    s.key_id = key_id;
    s.bytes = crypto::SecretBytes(secret.size());
    // The share number argument is the position in sharenrs, not the GF(256) point.
    gfshare_ctx_enc_getshare(ctx.get(), static_cast<unsigned char>(i), s.bytes.data());
    shares.push_back(std::move(s));
  }
  return shares;
}

std::string EncodeShare(const Share& share) {
  std::vector<uint8_t> payload = Payload(share);
  auto sum = Checksum(payload);
  payload.insert(payload.end(), sum.begin(), sum.end());
  std::string hex = HexEncode(payload);
  std::fill(payload.begin(), payload.end(), 0);
  std::string code = Grouped(kCodePrefix, hex);
  std::fill(hex.begin(), hex.end(), '\0');
  return code;
}

std::string ShareFileText(const Share& share) {
  std::string t = "vouch master-key share " + std::to_string(share.index) + " of " + std::to_string(share.count) +
                  ": any " + std::to_string(share.threshold) + " of the " + std::to_string(share.count) +
                  " shares recover the key (docs/custody.md).\n";
  t += "key id " + HexEncode(share.key_id) + ", split " + HexEncode(share.split_id) + "\n";
  t += "Keep it offline and private; it is written once. The recovery code below can be typed back.\n";
  t += EncodeShare(share) + "\n";
  return t;
}

Result<Share> DecodeShare(std::string_view text) {
  if (IsEncryptedShare(text)) {
    return FailedPrecondition("this share is encrypted to a custodian's key: decrypt it first (vouchd master-key "
                              "decrypt-share)",
                              std::string(kShareEncrypted));
  }
  std::string code = FindCode(text, kCodePrefix);
  if (code.empty()) return Corrupt("no line starting \"VS1-\"");
  auto bytes = HexDecode(code);
  std::fill(code.begin(), code.end(), '\0');
  if (!bytes.ok()) return Corrupt("the code is not hex");
  std::vector<uint8_t>& b = *bytes;
  // Size, then version, then checksum, then fields.
  if (b.size() < kHeaderSize + 1 + kChecksumSize) {
    return Corrupt("the code holds " + std::to_string(b.size()) + " bytes, expected at least " +
                   std::to_string(kHeaderSize + 1 + kChecksumSize));
  }
  if (b[0] != kVersion) return Corrupt("version " + std::to_string(b[0]) + ", expected 1");
  const size_t len = b[28];
  if (len == 0 || len > kMaxSecretSize || b.size() != kHeaderSize + len + kChecksumSize) {
    return Corrupt("the code holds " + std::to_string(b.size()) + " bytes, which does not match its secret length " +
                   std::to_string(len));
  }
  auto payload = std::span<const uint8_t>(b).first(kHeaderSize + len);
  auto sum = Checksum(payload);
  if (!crypto::ConstantTimeEquals(sum, std::span<const uint8_t>(b).subspan(kHeaderSize + len))) {
    std::fill(b.begin(), b.end(), 0);
    return Corrupt("checksum mismatch (a mistyped or damaged code)");
  }
  Share s;
  s.threshold = b[1];
  s.count = b[2];
  s.index = b[3];
  if (s.threshold < 2 || s.count < s.threshold || s.index == 0 || s.index > s.count) {
    std::fill(b.begin(), b.end(), 0);
    return Corrupt("share " + std::to_string(s.index) + " of " + std::to_string(s.count) + " with threshold " +
                   std::to_string(s.threshold) + " is impossible");
  }
  std::copy_n(b.begin() + 4, kSplitIdSize, s.split_id.begin());
  std::copy_n(b.begin() + 12, kKeyIdSize, s.key_id.begin());
  s.bytes = crypto::SecretBytes(payload.subspan(kHeaderSize));
  std::fill(b.begin(), b.end(), 0);
  return s;
}

Result<crypto::SecretBytes> Combine(const std::vector<Share>& shares) {
  if (shares.empty()) return InvalidArgument("no shares given", std::string(kTooFewShares));
  const Share& first = shares.front();
  std::map<uint8_t, const Share*> by_index;
  for (const Share& s : shares) {
    if (s.key_id != first.key_id) {
      return FailedPrecondition("the shares belong to different keys (key id " + HexEncode(first.key_id) + " and " +
                                    HexEncode(s.key_id) + ")",
                                std::string(kShareMismatch));
    }
    if (s.split_id != first.split_id || s.threshold != first.threshold || s.count != first.count ||
        s.bytes.size() != first.bytes.size()) {
      return FailedPrecondition("the shares come from different splits of key " + HexEncode(first.key_id) +
                                    " (split " + HexEncode(first.split_id) + " and " + HexEncode(s.split_id) +
                                    "): use shares of one split",
                                std::string(kShareMismatch));
    }
    auto [it, inserted] = by_index.emplace(s.index, &s);
    if (!inserted && !crypto::ConstantTimeEquals(it->second->bytes.span(), s.bytes.span())) {
      return FailedPrecondition("two different shares claim index " + std::to_string(s.index),
                                std::string(kShareMismatch));
    }
  }
  if (by_index.size() < first.threshold) {
    return FailedPrecondition("need " + std::to_string(first.threshold) + " distinct shares of key " +
                                  HexEncode(first.key_id) + ", got " + std::to_string(by_index.size()),
                              std::string(kTooFewShares));
  }
  // Exactly `threshold` shares: the polynomial has that many coefficients.
  std::vector<unsigned char> sharenrs;
  std::vector<const Share*> used;
  for (const auto& [index, s] : by_index) {
    if (sharenrs.size() == first.threshold) break;
    sharenrs.push_back(index);
    used.push_back(s);
  }
  UseOpenSslRandom();
  GfsharePtr ctx(gfshare_ctx_init_dec(sharenrs.data(), static_cast<unsigned>(sharenrs.size()),
                                      static_cast<unsigned>(first.bytes.size())));
  if (!ctx) return Internal("libgfshare could not make a decoder", std::string(kShareCorrupt));
  for (size_t i = 0; i < used.size(); ++i) {
    crypto::SecretBytes copy(used[i]->bytes.span());
    gfshare_ctx_dec_giveshare(ctx.get(), static_cast<unsigned char>(i), copy.data());
  }
  crypto::SecretBytes secret(first.bytes.size());
  gfshare_ctx_dec_extract(ctx.get(), secret.data());
  const KeyId got = SecretKeyId(secret.span());
  if (!crypto::ConstantTimeEquals(got, first.key_id)) {
    return DataLoss("the shares do not combine to key " + HexEncode(first.key_id) +
                        ": one of them is damaged or forged",
                    std::string(kShareKeyIdMismatch));
  }
  return secret;
}

Result<crypto::SecretBytes> CombineShareFiles(const std::vector<std::string>& paths) {
  std::vector<Share> shares;
  for (const std::string& p : paths) {
    VOUCH_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(p, 64 << 10));
    auto s = DecodeShare(text);
    std::fill(text.begin(), text.end(), '\0');
    if (!s.ok()) return Status(s.status()).WithContext(p);
    shares.push_back(std::move(*s));
  }
  return Combine(shares);
}

bool IsEncryptedShare(std::string_view text) { return !FindCode(text, kEncryptedPrefix).empty(); }

namespace {
// The ECIES key and AAD for an ephemeral point and a custodian key id.
Result<crypto::SecretBytes> EciesKey(EVP_PKEY* own, EVP_PKEY* peer, std::span<const uint8_t> context) {
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes shared, crypto::EcdhSharedSecret(own, peer));
  return crypto::HkdfSha256(shared.span(), context,
                            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(kEciesLabel.data()),
                                                     kEciesLabel.size()),
                            32);
}
std::vector<uint8_t> EciesAad(std::span<const uint8_t> context) {
  std::vector<uint8_t> aad(kEciesLabel.begin(), kEciesLabel.end());
  aad.insert(aad.end(), context.begin(), context.end());
  return aad;
}
}  // namespace

Result<std::string> EncryptedShareFileText(const Share& share, std::string_view custodian_public_pem) {
  VOUCH_ASSIGN_OR_RETURN(crypto::EvpPkeyPtr custodian, crypto::PublicKeyFromPem(custodian_public_pem));
  if (crypto::DescribeKey(custodian.get()) != "EC P-256") {
    return InvalidArgument("a custodian key must be EC P-256, got " + crypto::DescribeKey(custodian.get()),
                           std::string(kInvalidCustodianKey));
  }
  Status st;
  const auto key_id = PublicKeyId(custodian.get(), &st);
  VOUCH_RETURN_IF_ERROR(st);
  VOUCH_ASSIGN_OR_RETURN(crypto::EvpPkeyPtr eph, crypto::GenerateP256());
  VOUCH_ASSIGN_OR_RETURN(std::vector<uint8_t> point, crypto::EcPublicPointEncoded(eph.get()));
  if (point.size() != kPointSize) return Internal("unexpected P-256 point size", std::string(kInvalidSplit));
  std::vector<uint8_t> context = point;
  context.insert(context.end(), key_id.begin(), key_id.end());
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes k, EciesKey(eph.get(), custodian.get(), context));
  std::string code = EncodeShare(share);
  auto sealed = crypto::Aes256GcmSeal(k.span(), std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(code.data()), code.size()),
                                      EciesAad(context));
  std::fill(code.begin(), code.end(), '\0');
  if (!sealed.ok()) return sealed.status();
  std::vector<uint8_t> payload = {1};
  payload.insert(payload.end(), context.begin(), context.end());
  payload.insert(payload.end(), sealed->begin(), sealed->end());
  std::string t = "vouch master-key share " + std::to_string(share.index) + " of " + std::to_string(share.count) +
                  ": any " + std::to_string(share.threshold) + " of the " + std::to_string(share.count) +
                  " shares recover the key (docs/custody.md).\n";
  t += "key id " + HexEncode(share.key_id) + ", split " + HexEncode(share.split_id) + "; encrypted to custodian key " +
       HexEncode(key_id) + "\n";
  t += "Decrypt with: vouchd master-key decrypt-share --share FILE --custodian-private-key KEY.pem --out PLAIN\n";
  t += Grouped(kEncryptedPrefix, HexEncode(payload)) + "\n";
  return t;
}

Result<std::string> DecryptShareFile(std::string_view text, std::string_view custodian_private_pem) {
  std::string hex = FindCode(text, kEncryptedPrefix);
  if (hex.empty()) return Corrupt("no line starting \"VSE1-\"");
  auto bytes = HexDecode(hex);
  if (!bytes.ok()) return Corrupt("the encrypted code is not hex");
  const size_t context_size = kPointSize + 16;
  if (bytes->size() < 1 + context_size + 12 + 16 || (*bytes)[0] != 1) {
    return Corrupt("the encrypted code holds " + std::to_string(bytes->size()) + " bytes or an unknown version");
  }
  auto context = std::span<const uint8_t>(*bytes).subspan(1, context_size);
  auto sealed = std::span<const uint8_t>(*bytes).subspan(1 + context_size);
  VOUCH_ASSIGN_OR_RETURN(crypto::EvpPkeyPtr own, crypto::PrivateKeyFromPem(custodian_private_pem));
  Status st;
  const auto own_id = PublicKeyId(own.get(), &st);
  VOUCH_RETURN_IF_ERROR(st);
  if (!std::equal(own_id.begin(), own_id.end(), context.begin() + kPointSize)) {
    return FailedPrecondition("this share is encrypted to custodian key " + HexEncode(context.subspan(kPointSize)) +
                                  ", not to " + HexEncode(own_id),
                              std::string(kWrongCustodianKey));
  }
  auto eph = crypto::P256PublicKeyFromEncoded(context.first(kPointSize));
  if (!eph.ok()) return Corrupt("the ephemeral key is not a P-256 point");
  VOUCH_ASSIGN_OR_RETURN(crypto::SecretBytes k, EciesKey(own.get(), eph->get(), context));
  auto code = crypto::Aes256GcmOpen(k.span(), sealed, EciesAad(context));
  if (!code.ok()) return Corrupt("the encrypted share does not authenticate (damaged or altered)");
  VOUCH_ASSIGN_OR_RETURN(Share share, DecodeShare(code->view()));
  return ShareFileText(share);
}

Result<std::vector<std::string>> WriteShareFiles(std::span<const uint8_t> secret, int threshold, int count,
                                                 const std::string& out_dir,
                                                 const std::vector<std::string>& custodian_public_pems) {
  if (!custodian_public_pems.empty() && custodian_public_pems.size() != static_cast<size_t>(count)) {
    return InvalidArgument("give one custodian key per share: " + std::to_string(custodian_public_pems.size()) +
                               " keys for " + std::to_string(count) + " shares",
                           std::string(kInvalidSplit));
  }
  VOUCH_ASSIGN_OR_RETURN(std::vector<Share> shares, Split(secret, threshold, count));
  // Every file's text first: a bad custodian key writes nothing.
  std::vector<std::string> texts;
  for (size_t i = 0; i < shares.size(); ++i) {
    if (custodian_public_pems.empty()) {
      texts.push_back(ShareFileText(shares[i]));
    } else {
      VOUCH_ASSIGN_OR_RETURN(std::string t, EncryptedShareFileText(shares[i], custodian_public_pems[i]));
      texts.push_back(std::move(t));
    }
  }
  VOUCH_RETURN_IF_ERROR(MakeDirs(out_dir, 0700));
  std::vector<std::string> paths;
  for (const Share& s : shares) {
    paths.push_back(out_dir + "/share-" + std::to_string(s.index) + "-of-" + std::to_string(s.count) + ".txt");
    if (FileExists(paths.back())) {
      return AlreadyExists(paths.back() + " exists: shares are never overwritten", std::string(kShareFileExists));
    }
  }
  for (size_t i = 0; i < shares.size(); ++i) {
    VOUCH_RETURN_IF_ERROR(WriteFileAtomic(paths[i], texts[i], 0600));
  }
  return paths;
}

}  // namespace vouch::custody
