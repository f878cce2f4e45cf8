#include "control/api/json.h"

#include <gtest/gtest.h>

namespace skiff::api {
namespace {

std::string parseError(std::string_view text) {
  try {
    parseJson(text, {.source = "in.json", .max_depth = 64});
  } catch (const DecodeError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Json, ParsesEveryKindWithMarks) {
  Value v = parseJson(
      "{\n  \"a\": [1, -2.5e3, true, false, null],\n  \"b\": \"x\\u00e9\\ud83d\\ude00\"\n}");
  ASSERT_TRUE(v.isObject());
  const Value* a = v.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->mark().line, 2u);
  EXPECT_EQ(a->mark().column, 8u);
  ASSERT_EQ(a->items().size(), 5u);
  EXPECT_TRUE(a->items()[0].isInteger());
  EXPECT_EQ(a->items()[0].asInt(), 1);
  EXPECT_FALSE(a->items()[1].isInteger());
  EXPECT_DOUBLE_EQ(a->items()[1].asDouble(), -2500);
  EXPECT_TRUE(a->items()[2].asBool());
  EXPECT_TRUE(a->items()[4].isNull());
  EXPECT_EQ(v.find("b")->text(), "x\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(v.members()[1].key_mark.line, 3u);
}

TEST(Json, NumbersKeepTheirLiteral) {
  Value big = parseJson("123456789012345678901234567890");
  EXPECT_FALSE(big.isInteger());
  EXPECT_EQ(writeJson(big), "123456789012345678901234567890");
  Value min = parseJson("-9223372036854775808");
  EXPECT_TRUE(min.isInteger());
  EXPECT_EQ(min.asInt(), INT64_MIN);
}

TEST(Json, WritesCompactAndPretty) {
  Value v = parseJson(R"({"a":[1,{"b":"q\"\n\u0001"}],"c":{},"d":[]})");
  EXPECT_EQ(writeJson(v), R"({"a":[1,{"b":"q\"\n\u0001"}],"c":{},"d":[]})");
  EXPECT_EQ(writeJson(v, JsonStyle::kPretty),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"q\\\"\\n\\u0001\"\n    }\n  ],\n"
            "  \"c\": {},\n  \"d\": []\n}");
  EXPECT_EQ(parseJson(writeJson(v, JsonStyle::kPretty)), v);
}

TEST(Json, MalformedInputNamesLineAndColumn) {
  EXPECT_EQ(parseError(""), "in.json:1:1: unexpected end of input, expected a JSON value");
  EXPECT_EQ(parseError("{\"a\": 1,\n \"b\" 2}"),
            "in.json:2:6: expected ':' after object key \"b\"");
  EXPECT_EQ(parseError("[1, 2"),
            "in.json:1:6: unexpected end of input in array, expected ',' or ']'");
  EXPECT_EQ(parseError("{\"a\": tru}"), "in.json:1:7: invalid literal, expected true");
  EXPECT_EQ(parseError("01"), "in.json:1:2: unexpected data after the JSON value");
  EXPECT_EQ(parseError("1."), "in.json:1:3: invalid number: expected a digit after '.'");
  EXPECT_EQ(parseError("-"), "in.json:1:2: invalid number: no digits");
  EXPECT_EQ(parseError("\"a\nb\""),
            "in.json:1:3: control character 0x0a in string must be escaped");
  EXPECT_EQ(parseError("\"\\x\""), "in.json:1:3: invalid escape \\x in string");
  EXPECT_EQ(parseError("\"\\ud800\""), "in.json:1:8: invalid \\u escape: unpaired surrogate");
  EXPECT_EQ(parseError("\"\xff\""), "in.json:1:2: invalid UTF-8 in string");
  EXPECT_EQ(parseError("\"\xc0\xaf\""), "in.json:1:2: invalid UTF-8 in string");
  EXPECT_EQ(parseError("{} {}"), "in.json:1:4: unexpected data after the JSON value");
  EXPECT_EQ(parseError(std::string(100, '[')), "in.json:1:66: nesting deeper than 64");
  EXPECT_EQ(parseError("{'a': 1}"), "in.json:1:2: unexpected character ''', expected a quoted key");
}

TEST(Json, DuplicateKeysAreKeptForTheCodecToReport) {
  Value v = parseJson(R"({"a":1,"a":2})");
  ASSERT_EQ(v.members().size(), 2u);
}

}  // namespace
}  // namespace skiff::api
