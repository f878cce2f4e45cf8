#include "control/api/yaml.h"

#include <gtest/gtest.h>

#include "control/api/json.h"

namespace skiff::api {
namespace {

std::string parseError(std::string_view text) {
  try {
    parseYamlDocuments(text, {.source = "in.yaml", .max_depth = 64, .max_nodes = 10000});
  } catch (const DecodeError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Yaml, ResolvesPlainScalarsAndKeepsQuotedStrings) {
  Value v = parseYaml(
      "a: 1\nb: \"1\"\nc: true\nd: 'yes'\ne: yes\nf: ~\ng: 1.5\nh: 0x1f\ni: text\nj: |\n  x\n  "
      "y\n");
  EXPECT_TRUE(v.find("a")->isInteger());
  EXPECT_TRUE(v.find("a")->isPlain());
  EXPECT_TRUE(v.find("b")->isString());
  EXPECT_FALSE(v.find("b")->isPlain());
  EXPECT_TRUE(v.find("c")->isBool());
  EXPECT_TRUE(v.find("d")->isString());
  EXPECT_TRUE(v.find("e")->isBool());
  EXPECT_EQ(v.find("e")->text(), "yes");
  EXPECT_TRUE(v.find("f")->isNull());
  EXPECT_DOUBLE_EQ(v.find("g")->asDouble(), 1.5);
  EXPECT_EQ(v.find("h")->asInt(), 31);
  EXPECT_TRUE(v.find("i")->isString());
  EXPECT_EQ(v.find("j")->text(), "x\ny\n");
  EXPECT_EQ(v.find("j")->mark().line, 10u);
}

TEST(Yaml, MultipleDocumentsWithEmptyOnesDropped) {
  auto docs = parseYamlDocuments("---\na: 1\n---\n---\n# nothing\n---\nb: 2\n...\n");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[1].mark().line, 7u);
}

TEST(Yaml, WriterQuotesWhatWouldChangeMeaning) {
  Value v = Value::object();
  v.append("s", Value::string("yes"));
  v.append("n", Value::string("123"));
  v.append("e", Value::string(""));
  v.append("c", Value::string("a: b"));
  v.append("h", Value::string("- x"));
  v.append("plain", Value::string("nginx:1.25"));
  v.append("ml", Value::string("line1\nline2\n"));
  v.append("i", Value::integer(5));
  v.append("list", Value::array());
  v.find("list")->push(Value::string("x"));
  Value item = Value::object();
  item.append("name", Value::string("a"));
  item.append("port", Value::integer(80));
  v.find("list")->push(std::move(item));
  v.append("empty", Value::object());
  std::string yaml = writeYaml(v);
  EXPECT_EQ(yaml,
            "s: \"yes\"\n"
            "\"n\": \"123\"\n"  // the key n is a boolean to YAML 1.1 readers
            "e: \"\"\n"
            "c: \"a: b\"\n"
            "h: \"- x\"\n"
            "plain: nginx:1.25\n"
            "ml: |\n"
            "  line1\n"
            "  line2\n"
            "i: 5\n"
            "list:\n"
            "- x\n"
            "- name: a\n"
            "  port: 80\n"
            "empty: {}\n");
  EXPECT_EQ(parseYaml(yaml), v);
}

TEST(Yaml, WriterRoundTripsAwkwardStrings) {
  for (std::string s : {"a\tb", " lead", "trail ", "#x", "x #y", "ends:", "null", "~", "0o17",
                        "1_000", ".inf", "multi\nline no newline", "two\n\n", "tab\t\nline",
                        "\"quoted\"", "'single'", "\xc3\xa9t\xc3\xa9", "key: value\nmore"}) {
    Value v = Value::object();
    v.append("k", Value::string(s));
    Value back = parseYaml(writeYaml(v));
    EXPECT_EQ(back.find("k")->text(), s) << writeYaml(v);
    EXPECT_TRUE(back.find("k")->isString()) << writeYaml(v);
  }
}

TEST(Yaml, MalformedInputNamesLineAndColumn) {
  EXPECT_EQ(parseError("a: [1, 2\n"), "in.yaml:2:1: end of sequence flow not found");
  EXPECT_EQ(parseError("a: 1\n b: 2\n").substr(0, 13), "in.yaml:2:3: ");
  EXPECT_EQ(parseError("? [a]\n: 1\n"),
            "in.yaml:1:3: mapping keys must be strings, got a sequence");
  EXPECT_EQ(
      parseError("a: !!int x\n"),
      "in.yaml:1:4: unsupported or mismatched YAML tag tag:yaml.org,2002:int for value \"x\"");
}

TEST(Yaml, AliasBombsAndDeepNestingAreRefused) {
  std::string bomb =
      "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n";
  EXPECT_NE(parseError(bomb).find("expands to more than 10000 nodes"), std::string::npos);
  EXPECT_NE(parseError(std::string(70, '[') + std::string(70, ']')).find("in.yaml:"),
            std::string::npos);
}

}  // namespace
}  // namespace skiff::api
