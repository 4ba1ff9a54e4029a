#include "custody/share.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "base/file.h"
#include "crypto/random.h"
#include "testing/temp_dir.h"

namespace vouch::custody {
namespace {

std::vector<Share> Pick(const std::vector<Share>& all, std::vector<size_t> which) {
  std::vector<Share> out;
  for (size_t i : which) {
    auto s = DecodeShare(EncodeShare(all[i]));  // through the text form, as custodians hand them back
    EXPECT_TRUE(s.ok()) << s.status().message();
    out.push_back(std::move(*s));
  }
  return out;
}

bool Same(const crypto::SecretBytes& a, const crypto::SecretBytes& b) {
  return a.size() == b.size() && std::equal(a.span().begin(), a.span().end(), b.span().begin());
}

TEST(CustodyShares, AnyThresholdSubsetRecoversTheKey) {
  crypto::SecretBytes key = crypto::RandomSecret(32);
  auto shares = Split(key.span(), 3, 5);
  ASSERT_TRUE(shares.ok()) << shares.status().message();
  ASSERT_EQ(shares->size(), 5u);
  int subsets = 0;
  for (size_t a = 0; a < 5; ++a)
    for (size_t b = a + 1; b < 5; ++b)
      for (size_t c = b + 1; c < 5; ++c) {
        auto got = Combine(Pick(*shares, {a, b, c}));
        ASSERT_TRUE(got.ok()) << got.status().message();
        EXPECT_TRUE(Same(*got, key)) << a << b << c;
        ++subsets;
      }
  EXPECT_EQ(subsets, 10);
  // All five also give the key.
  auto all = Combine(Pick(*shares, {4, 0, 3, 1, 2}));
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(Same(*all, key));
}

TEST(CustodyShares, TooFewSharesAreRefused) {
  crypto::SecretBytes key = crypto::RandomSecret(32);
  auto shares = Split(key.span(), 3, 5);
  ASSERT_TRUE(shares.ok());
  auto got = Combine(Pick(*shares, {0, 4}));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().reason(), kTooFewShares);
  // The same share twice counts once.
  auto dup = Combine(Pick(*shares, {1, 1, 2}));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().reason(), kTooFewShares);
  EXPECT_EQ(Combine({}).status().reason(), kTooFewShares);
}

TEST(CustodyShares, EveryFlippedByteOfACodeIsRefused) {
  crypto::SecretBytes key = crypto::RandomSecret(32);
  auto shares = Split(key.span(), 2, 3);
  ASSERT_TRUE(shares.ok());
  const std::string code = EncodeShare((*shares)[0]);
  int refused = 0;
  for (size_t i = 4; i < code.size(); ++i) {
    if (code[i] == '-') continue;
    std::string bad = code;
    bad[i] = bad[i] == '0' ? '1' : '0';
    auto s = DecodeShare(bad);
    ASSERT_FALSE(s.ok()) << "digit " << i;
    EXPECT_EQ(s.status().reason(), kShareCorrupt);
    ++refused;
  }
  EXPECT_EQ(refused, (29 + 32 + 8) * 2);
  // Truncated codes are refused too.
  for (size_t n = 0; n < code.size(); n += 3) EXPECT_FALSE(DecodeShare(code.substr(0, n)).ok()) << n;
}

TEST(CustodyShares, ACorruptedShareThatPassesItsChecksumNeverYieldsAWrongKey) {
  // A forged share with a recomputed checksum (not a typo): the key id check refuses it.
  crypto::SecretBytes key = crypto::RandomSecret(32);
  auto shares = Split(key.span(), 2, 3);
  ASSERT_TRUE(shares.ok());
  std::vector<Share> two = Pick(*shares, {0, 1});
  two[1].bytes.data()[5] ^= 0x40;
  auto got = Combine(two);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().reason(), kShareKeyIdMismatch);
}

TEST(CustodyShares, SharesOfTwoSplitsAreRefused) {
  crypto::SecretBytes key = crypto::RandomSecret(32);
  crypto::SecretBytes other = crypto::RandomSecret(32);
  auto a = Split(key.span(), 2, 3);
  auto b = Split(other.span(), 2, 3);
  auto c = Split(key.span(), 2, 3);  // the same key split again
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  std::vector<Share> mixed = Pick(*a, {0});
  auto pb = Pick(*b, {1});
  mixed.push_back(std::move(pb[0]));
  auto got = Combine(mixed);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().reason(), kShareMismatch);
  std::vector<Share> same_key = Pick(*a, {0});
  auto pc = Pick(*c, {1});
  same_key.push_back(std::move(pc[0]));
  got = Combine(same_key);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().reason(), kShareMismatch);
}

TEST(CustodyShares, SplitRefusesImpossibleParameters) {
  crypto::SecretBytes key = crypto::RandomSecret(32);
  EXPECT_EQ(Split(key.span(), 1, 3).status().reason(), kInvalidSplit);
  EXPECT_EQ(Split(key.span(), 4, 3).status().reason(), kInvalidSplit);
  EXPECT_EQ(Split(key.span(), 2, 256).status().reason(), kInvalidSplit);
  EXPECT_EQ(Split({}, 2, 3).status().reason(), kInvalidSplit);
}

TEST(CustodyShares, TwoSplitsOfOneKeyDiffer) {
  crypto::SecretBytes key = crypto::RandomSecret(32);
  auto a = Split(key.span(), 2, 2);
  auto b = Split(key.span(), 2, 2);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(EncodeShare((*a)[0]), EncodeShare((*b)[0]));
  // No share holds the key itself.
  for (const Share& s : *a) EXPECT_FALSE(Same(s.bytes, key));
}

TEST(CustodyShareFiles, WrittenOnceAndCombinedFromFiles) {
  test::TempDir dir("custody");
  crypto::SecretBytes key = crypto::RandomSecret(32);
  auto paths = WriteShareFiles(key.span(), 2, 3, dir.File("shares"));
  ASSERT_TRUE(paths.ok()) << paths.status().message();
  ASSERT_EQ(paths->size(), 3u);
  auto got = CombineShareFiles({(*paths)[2], (*paths)[0]});
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_TRUE(Same(*got, key));
  EXPECT_EQ(CombineShareFiles({(*paths)[1]}).status().reason(), kTooFewShares);
  // Never overwritten.
  EXPECT_EQ(WriteShareFiles(key.span(), 2, 3, dir.File("shares")).status().reason(), kShareFileExists);
  // A flipped digit in a file is refused with the file named.
  auto text = ReadWholeFile((*paths)[1]);
  ASSERT_TRUE(text.ok());
  std::string bad = *text;
  size_t at = bad.find("VS1-") + 10;
  bad[at] = bad[at] == 'a' ? 'b' : 'a';
  std::string bad_path = dir.Write("bad.txt", bad);
  auto refused = CombineShareFiles({(*paths)[0], bad_path});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().reason(), kShareCorrupt);
  EXPECT_NE(refused.status().message().find("bad.txt"), std::string::npos);
  // A code typed back in upper case with spaces is accepted.
  std::string typed = *text;
  std::transform(typed.begin(), typed.end(), typed.begin(), [](char c) { return c == '-' ? ' ' : static_cast<char>(std::toupper(c)); });
  typed = "VS1-" + typed.substr(typed.find("VS1 ") + 4);
  auto s = DecodeShare(typed);
  EXPECT_TRUE(s.ok()) << s.status().message();
}

}  // namespace
}  // namespace vouch::custody

namespace vouch::custody {
namespace {
// Codes of a 2-of-3 split of the key 01 02 .. 20, pinned: the format stays readable, and
// combining works in a process that never split (gfshare_ctx_free draws random bytes too).
TEST(CustodyShares, GoldenCodesCombineInAFreshProcess) {
  const std::string codes[] = {
      "VS1-0102-0301-063c-41c1-7254-c70c-1bf5-a7d3-94e5-6a05-adbf-7c14-3ece-1c62-20b9-5c68-f6af-3b92-7532-5184-7952-"
      "51f9-ef7f-76f8-1def-2a78-f214-77bd-d060-e0fc-53e2-d670-3069-8cab-6d",
      "VS1-0102-0303-063c-41c1-7254-c70c-1bf5-a7d3-94e5-6a05-adbf-7c14-3ece-1c62-20d4-e0be-0fe6-41a5-8f44-e787-93ec-"
      "ef08-0ca3-be33-0f06-52a6-3b0e-adec-559a-0127-b5ee-f8ff-e63f-34e5-6f"};
  std::vector<Share> shares;
  for (const auto& c : codes) {
    auto s = DecodeShare(c);
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ(s->threshold, 2);
    EXPECT_EQ(s->count, 3);
    shares.push_back(std::move(*s));
  }
  EXPECT_EQ(shares[1].index, 3);
  auto key = Combine(shares);
  ASSERT_TRUE(key.ok()) << key.status().message();
  ASSERT_EQ(key->size(), 32u);
  for (size_t i = 0; i < 32; ++i) EXPECT_EQ(key->span()[i], i + 1);
}
}  // namespace
}  // namespace vouch::custody

#include "crypto/keys.h"

namespace vouch::custody {
namespace {

struct Custodian {
  std::string public_pem;
  std::string private_pem;
};

Custodian MakeCustodian() {
  auto k = crypto::GenerateP256();
  EXPECT_TRUE(k.ok());
  Custodian c;
  c.public_pem = *crypto::PublicKeyToPem(k->get());
  c.private_pem = std::string(crypto::PrivateKeyToPem(k->get())->view());
  return c;
}

TEST(CustodyEncryptedShares, EachCustodianDecryptsOnlyTheirShareAndAnyTwoCombine) {
  test::TempDir dir("custody-ecies");
  crypto::SecretBytes key = crypto::RandomSecret(32);
  std::vector<Custodian> custodians = {MakeCustodian(), MakeCustodian(), MakeCustodian()};
  auto paths = WriteShareFiles(key.span(), 2, 3, dir.File("shares"),
                               {custodians[0].public_pem, custodians[1].public_pem, custodians[2].public_pem});
  ASSERT_TRUE(paths.ok()) << paths.status().message();
  std::vector<std::string> plain;
  for (size_t i = 0; i < 3; ++i) {
    auto text = ReadWholeFile((*paths)[i]);
    ASSERT_TRUE(text.ok());
    EXPECT_TRUE(IsEncryptedShare(*text));
    EXPECT_EQ(text->find("VS1-"), std::string::npos) << "the plain code leaked into the encrypted file";
    // Encrypted shares are not combined as they are.
    EXPECT_EQ(DecodeShare(*text).status().reason(), kShareEncrypted);
    // Another custodian's key is refused.
    auto wrong = DecryptShareFile(*text, custodians[(i + 1) % 3].private_pem);
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.status().reason(), kWrongCustodianKey);
    auto mine = DecryptShareFile(*text, custodians[i].private_pem);
    ASSERT_TRUE(mine.ok()) << mine.status().message();
    plain.push_back(dir.Write("plain-" + std::to_string(i) + ".txt", *mine));
    // A flipped digit in the ciphertext is refused.
    std::string bad = *text;
    size_t at = bad.find('\n', bad.find("VSE1-")) - 10;  // in the ciphertext (the key id would be refused as another's)
    bad[at] = bad[at] == 'a' ? 'b' : 'a';
    auto tampered = DecryptShareFile(bad, custodians[i].private_pem);
    ASSERT_FALSE(tampered.ok());
    EXPECT_EQ(tampered.status().reason(), kShareCorrupt);
  }
  auto got = CombineShareFiles({plain[2], plain[0]});
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_TRUE(Same(*got, key));
}

TEST(CustodyEncryptedShares, ACustodianKeyCountOrTypeMismatchWritesNothing) {
  test::TempDir dir("custody-ecies");
  crypto::SecretBytes key = crypto::RandomSecret(32);
  Custodian c = MakeCustodian();
  EXPECT_EQ(WriteShareFiles(key.span(), 2, 3, dir.File("a"), {c.public_pem, c.public_pem}).status().reason(),
            kInvalidSplit);
  auto rsa = crypto::GenerateKey(crypto::KeyType::kRsa2048);
  ASSERT_TRUE(rsa.ok());
  auto r = WriteShareFiles(key.span(), 2, 2, dir.File("b"), {c.public_pem, *crypto::PublicKeyToPem(rsa->get())});
  EXPECT_EQ(r.status().reason(), kInvalidCustodianKey);
  EXPECT_FALSE(FileExists(dir.File("b") + "/share-1-of-2.txt"));
}

}  // namespace
}  // namespace vouch::custody
