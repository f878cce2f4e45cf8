#include "dataplane/status.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace skiff::dataplane {
namespace {

Result<int> half(int n) {
  if (n % 2 != 0) return Status::failure(std::to_string(n) + " is odd");
  return n / 2;
}

TEST(StatusTest, OkAndFailure) {
  const Status ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_TRUE(static_cast<bool>(ok));
  EXPECT_EQ(ok.message(), "");

  const Status failed = Status::failure("map full");
  EXPECT_FALSE(failed.ok());
  EXPECT_FALSE(static_cast<bool>(failed));
  EXPECT_EQ(failed.message(), "map full");
  EXPECT_EQ(failed, Status::failure("map full"));
  EXPECT_NE(failed, ok);
  // An empty message is still a failure.
  EXPECT_FALSE(Status::failure("").ok());
}

TEST(ResultTest, ValueOrError) {
  Result<int> four = half(8);
  ASSERT_TRUE(four.ok());
  EXPECT_EQ(*four, 4);
  EXPECT_TRUE(four.status().ok());
  EXPECT_EQ(four.message(), "");

  Result<int> odd = half(7);
  EXPECT_FALSE(odd.ok());
  EXPECT_FALSE(static_cast<bool>(odd));
  EXPECT_EQ(odd.message(), "7 is odd");
  EXPECT_EQ(odd.status(), Status::failure("7 is odd"));
}

TEST(ResultTest, MovesOutAndHoldsMoveOnlyValues) {
  Result<std::vector<int>> v = std::vector<int>{1, 2, 3};
  v->push_back(4);
  EXPECT_EQ(v->size(), 4u);
  std::vector<int> taken = std::move(v).value();
  EXPECT_EQ(taken.size(), 4u);

  Result<std::unique_ptr<int>> p = std::make_unique<int>(5);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(**p, 5);
}

}  // namespace
}  // namespace skiff::dataplane
