/* SHA-256 against the FIPS 180-4 example vectors, split updates, and coreutils' sha256sum on a file.
 *
 * Non-obvious choice: the file test compares with the `sha256sum` program (an independent
 * implementation) on random bytes of awkward lengths around the 55/56/64-byte padding boundaries.
 */
#include <gtest/gtest.h>

#include <random>

#include "hearth/store/sha256.h"
#include "test-util.h"

using hearth::store::Sha256;
using hearth::store::sha256File;
using hearth::store::sha256Hex;

TEST(Sha256, FipsVectors) {
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(sha256Hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, SplitUpdatesMatchOneShot) {
  std::mt19937 rng(7);
  std::string data(5000, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  const std::string whole = sha256Hex(data);
  for (int trial = 0; trial < 200; ++trial) {
    Sha256 h;
    size_t pos = 0;
    while (pos < data.size()) {
      size_t n = std::min<size_t>(data.size() - pos, rng() % 130);
      h.update(data.data() + pos, n);
      pos += n;
    }
    ASSERT_EQ(h.finishHex(), whole) << "trial " << trial;
  }
  // finish() resets: the object hashes a new message afterwards.
  Sha256 h;
  h.update("abc");
  (void)h.finishHex();
  h.update("abc");
  EXPECT_EQ(h.finishHex(), sha256Hex("abc"));
}

TEST(Sha256, FileMatchesSha256sum) {
  auto dir = hearth::test::scratch("sha256-file");
  std::mt19937 rng(11);
  for (size_t len : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 119u, 120u, 1000003u}) {
    std::string data(len, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    auto f = dir / ("f" + std::to_string(len));
    hearth::test::write_text(f, data);
    auto mine = sha256File(f.string());
    ASSERT_TRUE(mine) << mine.error().to_string();
    auto ref = hearth::test::run("sha256sum '" + f.string() + "'");
    ASSERT_EQ(ref.exit_code, 0);
    EXPECT_EQ(*mine, ref.out.substr(0, 64)) << "length " << len;
  }
  auto missing = sha256File((dir / "nope").string());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, hearth::ErrorCode::io);
  EXPECT_NE(missing.error().message.find("nope"), std::string::npos);
}
