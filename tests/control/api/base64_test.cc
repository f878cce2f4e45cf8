#include "control/api/base64.h"

#include <gtest/gtest.h>

namespace skiff::api {
namespace {

TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> cases[] = {{"", ""},
                                                       {"f", "Zg=="},
                                                       {"fo", "Zm8="},
                                                       {"foo", "Zm9v"},
                                                       {"foob", "Zm9vYg=="},
                                                       {"fooba", "Zm9vYmE="},
                                                       {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : cases) {
    EXPECT_EQ(base64Encode(plain), encoded);
    EXPECT_EQ(base64Decode(encoded), plain);
  }
  std::string binary("\x00\xff\x10\x80", 4);
  EXPECT_EQ(base64Decode(base64Encode(binary)), binary);
}

TEST(Base64, RejectsMalformedInput) {
  EXPECT_EQ(base64Decode("Zm9vYg"), std::nullopt);    // missing padding
  EXPECT_EQ(base64Decode("Zm9v!mFy"), std::nullopt);  // stray character
  EXPECT_EQ(base64Decode("Zg==Zg=="), std::nullopt);  // data after padding
  EXPECT_EQ(base64Decode("Zm9v\nYmFy\n"), "foobar");  // line breaks are fine
}

}  // namespace
}  // namespace skiff::api
