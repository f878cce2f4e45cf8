#include "control/api/selector.h"

#include <array>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "skiff/api/meta_v1.pb.h"

// Cases ported from Kubernetes' own tests (k8s.io/apimachinery pkg/labels/selector_test.go,
// pkg/fields/selector_test.go, pkg/apis/meta/v1/helpers_test.go), plus Skiff's own.

namespace skiff::api {
namespace fields {
// Readable failure output (GoogleTest looks for these names).
// NOLINTBEGIN(readability-identifier-naming)
void PrintTo(const Requirement& r, std::ostream* os) {
  *os << '{' << r.field << (r.op == Operator::kEquals ? " = " : " != ") << r.value << '}';
}
}  // namespace fields
namespace labels {
void PrintTo(const Selector& s, std::ostream* os) {
  *os << (s.matchesNothing() ? std::string("<nothing>") : '"' + s.toString() + '"');
}
void PrintTo(const Requirement& r, std::ostream* os) {
  *os << '"' << r.toString() << '"';
}
// NOLINTEND(readability-identifier-naming)
}  // namespace labels
namespace {

using ::testing::HasSubstr;
using StringMap = std::map<std::string, std::string>;

// The messages of k8s.io/apimachinery/pkg/util/validation, spelled out once.
constexpr std::string_view kNameRegexMsg =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
constexpr std::string_view kValueRegexMsg =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
constexpr std::string_view kPrefixRegexMsg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

std::string cat(std::string_view a, std::string_view b) {
  return std::string(a) + std::string(b);
}

google::protobuf::Map<std::string, std::string> toProtoMap(const StringMap& m) {
  google::protobuf::Map<std::string, std::string> out;
  for (const auto& [k, v] : m)
    out[k] = v;
  return out;
}

// ================================== labels: parse ===============================================

TEST(LabelSelectorParse, ValidSelectorsAndTheirCanonicalForm) {
  struct Case {
    std::string input;
    std::string canonical;
  };
  const std::vector<Case> cases = {
      // TestSelectorParse: the canonical form is the input without spaces.
      {"x=a,y=b,z=c", "x=a,y=b,z=c"},
      {"", ""},
      {"x!=a,y=b", "x!=a,y=b"},
      {"x=", "x="},
      {"x= ", "x="},
      {"x=,z= ", "x=,z="},
      {"x= ,z= ", "x=,z="},
      {"!x", "!x"},
      {"x>1", "x>1"},
      {"x>1,z<5", "x>1,z<5"},
      // TestSetSelectorParser.
      {"\rx", "x"},
      {"this-is-a-dns.domain.com/key-with-dash", "this-is-a-dns.domain.com/key-with-dash"},
      {"this-is-another-dns.domain.com/key-with-dash in (so,what)",
       "this-is-another-dns.domain.com/key-with-dash in (so,what)"},
      {"0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
       "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)"},
      {"foo  in\t (abc)", "foo in (abc)"},
      {"x notin\n (abc)", "x notin (abc)"},
      {"x  notin\t\t\t(abc,def)", "x notin (abc,def)"},
      {"x in (abc,def)", "x in (abc,def)"},
      {"x in (abc,)", "x in (,abc)"},
      {"x in ()", "x in ()"},
      {"x notin (abc,,def),bar,z in (),w", "bar,w,x notin (,abc,def),z in ()"},
      {"x,y in (a)", "x,y in (a)"},
      {"x=a", "x=a"},
      {"x<7", "x<7"},
      {"x=a,y!=b,z in (h,i,j)", "x=a,y!=b,z in (h,i,j)"},
      {"x notin ( )", "x notin ()"},
      {"x notin (, a)", "x notin (,a)"},
      {"a ", "a"},
      {"a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)"},
      // TestDeterministicParse: sorted by key.
      {"x=a,a=x", "a=x,x=a"},
      {"a=x,x=a", "a=x,x=a"},
      // "in" and "notin" are keys and values where an identifier is expected.
      {"notin=in", "notin=in"},
      {"in in (in)", "in in (in)"},
      {"x=in", "x=in"},
      // Operators keep their spelling.
      {"x==a", "x==a"},
      {"x in(a)", "x in (a)"},
      {"x notin(a)", "x notin (a)"},
      {"x in (,)", "x in ()"},
      {"x in (b,a,b)", "x in (a,b)"},
      {"  x = a  ,  y  ", "x=a,y"},
      {"b,!a", "!a,b"},
      {"x=a,y in(b),!z", "x=a,y in (b),!z"},
      // Requirements on the same key keep their order.
      {"z,z!=a", "z,z!=a"},
      {"z!=a,z", "z!=a,z"},
      {"x in (a.b,c_d,e-f,G9)", "x in (G9,a.b,c_d,e-f)"},
      {"x<0", "x<0"},
      {"x>007", "x>007"},
      {"app.kubernetes.io/name=web", "app.kubernetes.io/name=web"},
      {"1234 in (bar)", "1234 in (bar)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("input: \"" + c.input + "\"");
    std::string error;
    auto selector = labels::Selector::tryParse(c.input, &error);
    ASSERT_TRUE(selector.has_value()) << error;
    EXPECT_EQ(selector->toString(), c.canonical);
    EXPECT_EQ(labels::Selector::parse(c.input), *selector);
    // The canonical form parses back to the same selector.
    EXPECT_EQ(labels::Selector::parse(c.canonical), *selector);
  }
}

TEST(LabelSelectorParse, RequirementsOfAParsedSelector) {
  const auto s = labels::Selector::parse("z>3, !y ,x in (b,a), w, v==1, u!=2, t notin (c)");
  const auto& r = s.requirements();
  ASSERT_EQ(r.size(), 7u);
  using Op = labels::Operator;
  const std::vector<std::tuple<std::string, Op, std::vector<std::string>>> want = {
      {"t", Op::kNotIn, {"c"}},       {"u", Op::kNotEquals, {"2"}}, {"v", Op::kDoubleEquals, {"1"}},
      {"w", Op::kExists, {}},         {"x", Op::kIn, {"a", "b"}},   {"y", Op::kDoesNotExist, {}},
      {"z", Op::kGreaterThan, {"3"}},
  };
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(r[i].key(), std::get<0>(want[i]));
    EXPECT_EQ(r[i].op(), std::get<1>(want[i]));
    EXPECT_EQ(r[i].values(), std::get<2>(want[i]));
  }
  EXPECT_FALSE(s.empty());
  EXPECT_FALSE(s.matchesNothing());
}

TEST(LabelSelectorParse, InvalidSelectorsNameTheProblemAndItsPosition) {
  struct Case {
    std::string input;
    size_t position;
    std::string detail;
  };
  const std::string long_name(64, 'a');
  const std::string long_prefix = std::string(254, 'a') + "/x";
  const std::vector<Case> cases = {
      // TestSelectorParse and TestSetSelectorParser.
      {"x=a||y=b", 2, cat(R"(invalid value "a||y" for key "x": )", kValueRegexMsg)},
      {"x==a==b", 4, "found '==', expected: ',' or end of string"},
      {"!x=a", 2, "found '=', expected: ',' or end of string"},
      {"x<a", 2,
       R"(invalid value "a" for key "x": for 'Gt', 'Lt' operators, the value must be an integer)"},
      {"x,,y", 2, "found ',', expected: identifier after ','"},
      {",x,y", 0, "found ',', expected: !, identifier, or end of string"},
      {"x nott in (y)", 2, "found 'nott', expected: in, notin, =, ==, !=, >, <"},
      {"a in (xyz),", 11, "found end of string, expected: identifier after ','"},
      {"a in (xyz)b notin ()", 10, "found 'b', expected: ',' or end of string"},
      {"a in (xyz abc)", 10, "found 'abc', expected: ',' or ')'"},
      {"a notin(", 8, "found end of string, expected: ',', ')' or identifier"},
      {"a (", 2, "found '(', expected: in, notin, =, ==, !=, >, <"},
      {"(", 0, "found '(', expected: !, identifier, or end of string"},
      // More of the grammar.
      {"x in (a,,)", 9, "found ')', expected: ',', or identifier"},
      {"x in (a", 7, "found end of string, expected: ',' or ')'"},
      {"x in a", 5, "found 'a', expected: '('"},
      {"x in (=)", 6, "found '=', expected: ',', ')' or identifier"},
      {"x=(", 2, "found '(', expected: identifier"},
      {"x>=1", 2, "found '=', expected: identifier"},
      {"x!", 1, "found '!', expected: in, notin, =, ==, !=, >, <"},
      {"x=a b", 4, "found 'b', expected: ',' or end of string"},
      {"x=a,", 4, "found end of string, expected: identifier after ','"},
      {"!", 1, "found end of string, expected: identifier"},
      {"!!x", 1, "found '!', expected: identifier"},
      {"x in (a, -b)", 9, cat(R"(invalid value "-b" for key "x": )", kValueRegexMsg)},
      {"x>-1", 2, cat(R"(invalid value "-1" for key "x": )", kValueRegexMsg)},
      {"x>99999999999999999999", 2,
       "invalid value \"99999999999999999999\" for key \"x\": for 'Gt', 'Lt' operators, the value "
       "must be an integer"},
      {"x<1.5", 2,
       "invalid value \"1.5\" for key \"x\": for 'Gt', 'Lt' operators, the value must be an "
       "integer"},
      {"x=" + long_name, 2,
       "invalid value \"" + long_name + R"(" for key "x": must be no more than 63 characters)"},
      // Keys.
      {"a/b/c", 0,
       cat(cat("invalid key \"a/b/c\": a qualified name ", kNameRegexMsg),
           " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")},
      {"y,/a", 2, "invalid key \"/a\": prefix part must be non-empty"},
      {"a/", 0, cat("invalid key \"a/\": name part must be non-empty; name part ", kNameRegexMsg)},
      {"-a=b", 0, cat("invalid key \"-a\": name part ", kNameRegexMsg)},
      {"Example.com/a", 0, cat("invalid key \"Example.com/a\": prefix part ", kPrefixRegexMsg)},
      {long_name, 0,
       "invalid key \"" + long_name + "\": name part must be no more than 63 characters"},
      {long_prefix, 0,
       "invalid key \"" + long_prefix + "\": prefix part must be no more than 253 characters"},
      {"x\v", 0, cat("invalid key \"x\v\": name part ", kNameRegexMsg)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("input: \"" + c.input + "\"");
    std::string error;
    EXPECT_FALSE(labels::Selector::tryParse(c.input, &error).has_value());
    EXPECT_EQ(error, "invalid label selector \"" + c.input + "\": at position " +
                         std::to_string(c.position) + ": " + c.detail);
  }
}

TEST(LabelSelectorParse, ThrowsSelectorErrorWithTheWholeMessage) {
  try {
    labels::Selector::parse("x in (a b)");
    FAIL() << "no exception";
  } catch (const labels::SelectorError& e) {
    EXPECT_STREQ(e.what(),
                 "invalid label selector \"x in (a b)\": at position 8: found 'b', expected: ',' "
                 "or ')'");
  }
  // A SelectorError is a std::invalid_argument.
  EXPECT_THROW(labels::Selector::parse("x=("), std::invalid_argument);
  // Control characters in the quoted input are escaped.
  std::string error;
  EXPECT_FALSE(labels::Selector::tryParse("x=\"", &error));
  EXPECT_THAT(error, HasSubstr("\"x=\\\"\""));
  // The error output is optional.
  EXPECT_FALSE(labels::Selector::tryParse("(").has_value());
}

// ================================== labels: validation ==========================================

TEST(LabelValidation, QualifiedNames) {
  const std::string prefix253 = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                                std::string(63, 'c') + "." + std::string(61, 'd');
  ASSERT_EQ(prefix253.size(), 253u);
  for (const std::string& valid :
       {std::string("a"), std::string("A"), std::string("1"), std::string("MyName"),
        std::string("my.name"), std::string("123-abc"), std::string("a_b"),
        std::string("example.com/MyName"), std::string("k8s.io/a"), std::string("0.1.2.domain/99"),
        std::string(63, 'x'), prefix253 + "/" + std::string(63, 'x')}) {
    EXPECT_THAT(labels::qualifiedNameErrors(valid), ::testing::IsEmpty()) << valid;
  }
  EXPECT_EQ(
      labels::qualifiedNameErrors(""),
      (std::vector<std::string>{"name part must be non-empty", cat("name part ", kNameRegexMsg)}));
  EXPECT_EQ(labels::qualifiedNameErrors("a/b/c"),
            (std::vector<std::string>{cat(
                cat("a qualified name ", kNameRegexMsg),
                " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")}));
  EXPECT_EQ(labels::qualifiedNameErrors("a_b/c"),
            (std::vector<std::string>{cat("prefix part ", kPrefixRegexMsg)}));
  EXPECT_EQ(labels::qualifiedNameErrors("a..b/c"),
            (std::vector<std::string>{cat("prefix part ", kPrefixRegexMsg)}));
  EXPECT_EQ(labels::qualifiedNameErrors("-a.b/c"),
            (std::vector<std::string>{cat("prefix part ", kPrefixRegexMsg)}));
  EXPECT_EQ(labels::qualifiedNameErrors(prefix253 + "d/x"),
            (std::vector<std::string>{"prefix part must be no more than 253 characters"}));
  EXPECT_EQ(labels::qualifiedNameErrors("a."),
            (std::vector<std::string>{cat("name part ", kNameRegexMsg)}));
  EXPECT_EQ(labels::qualifiedNameErrors(std::string(64, 'x')),
            (std::vector<std::string>{"name part must be no more than 63 characters"}));
  EXPECT_EQ(
      labels::qualifiedNameErrors("/"),
      (std::vector<std::string>{"prefix part must be non-empty", "name part must be non-empty",
                                cat("name part ", kNameRegexMsg)}));
}

TEST(LabelValidation, LabelValues) {
  for (std::string_view valid : {"", "a", "MyValue", "my_value", "12345", "a.b-c_d", "0"}) {
    EXPECT_THAT(labels::labelValueErrors(valid), ::testing::IsEmpty()) << valid;
  }
  EXPECT_THAT(labels::labelValueErrors(std::string(63, 'v')), ::testing::IsEmpty());
  EXPECT_EQ(labels::labelValueErrors(std::string(64, 'v')),
            (std::vector<std::string>{"must be no more than 63 characters"}));
  EXPECT_EQ(labels::labelValueErrors("-a"),
            (std::vector<std::string>{std::string(kValueRegexMsg)}));
  EXPECT_EQ(labels::labelValueErrors("a/b"),
            (std::vector<std::string>{std::string(kValueRegexMsg)}));
  EXPECT_EQ(labels::labelValueErrors("a b"),
            (std::vector<std::string>{std::string(kValueRegexMsg)}));
  EXPECT_EQ(labels::labelValueErrors("-" + std::string(64, 'v')),
            (std::vector<std::string>{"must be no more than 63 characters",
                                      std::string(kValueRegexMsg)}));
}

// ================================== labels: requirements ========================================

TEST(LabelRequirement, ConstructorValidatesAsNewRequirement) {
  using Op = labels::Operator;
  struct Case {
    std::string key;
    Op op;
    std::vector<std::string> values;
    std::string error;  // empty: valid
  };
  const std::string key254(254, 'a');
  const std::vector<Case> cases = {
      // TestRequirementConstructor.
      {"x",
       Op::kIn,
       {},
       "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"},
      {"x",
       Op::kNotIn,
       {},
       "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"},
      {"x", Op::kIn, {"foo"}, ""},
      {"x", Op::kNotIn, {"foo"}, ""},
      {"x", Op::kExists, {}, ""},
      {"x", Op::kDoesNotExist, {}, ""},
      {"1foo", Op::kIn, {"bar"}, ""},
      {"1234", Op::kIn, {"bar"}, ""},
      {"y", Op::kGreaterThan, {"1"}, ""},
      {"z", Op::kLessThan, {"6"}, ""},
      {"foo",
       Op::kGreaterThan,
       {"bar"},
       "values[0]: Invalid value: \"bar\": for 'Gt', 'Lt' operators, the value must be an integer"},
      {"barz",
       Op::kLessThan,
       {"blah"},
       "values[0]: Invalid value: \"blah\": for 'Gt', 'Lt' operators, the value must be an "
       "integer"},
      {key254,
       Op::kExists,
       {},
       "key: Invalid value: \"" + key254 + "\": name part must be no more than 63 characters"},
      // Value counts and values.
      {"x",
       Op::kEquals,
       {"a", "b"},
       "values: Invalid value: [\"a\", \"b\"]: exact-match compatibility requires one single "
       "value"},
      {"x",
       Op::kNotEquals,
       {},
       "values: Invalid value: []: exact-match compatibility requires one single value"},
      {"x", Op::kDoubleEquals, {""}, ""},
      {"x",
       Op::kExists,
       {"a"},
       "values: Invalid value: [\"a\"]: values set must be empty for exists and does not exist"},
      {"x",
       Op::kDoesNotExist,
       {""},
       "values: Invalid value: [\"\"]: values set must be empty for exists and does not exist"},
      {"x",
       Op::kGreaterThan,
       {"1", "2"},
       "values: Invalid value: [\"1\", \"2\"]: for 'Gt', 'Lt' operators, exactly one value is "
       "required"},
      {"x",
       Op::kIn,
       {"ok", "-bad"},
       cat("values[1][x]: Invalid value: \"-bad\": ", kValueRegexMsg)},
      {"x", Op::kLessThan, {"-1"}, cat("values[0][x]: Invalid value: \"-1\": ", kValueRegexMsg)},
      {"a b", Op::kExists, {}, cat("key: Invalid value: \"a b\": name part ", kNameRegexMsg)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("key " + c.key + " op " + std::string(labels::toString(c.op)));
    std::string error;
    auto r = labels::Requirement::tryMake(c.key, c.op, c.values, &error);
    if (c.error.empty()) {
      ASSERT_TRUE(r.has_value()) << error;
      EXPECT_EQ(r->key(), c.key);
      EXPECT_EQ(r->op(), c.op);
      EXPECT_NO_THROW(labels::Requirement::make(c.key, c.op, c.values));
    } else {
      EXPECT_FALSE(r.has_value());
      EXPECT_EQ(error, c.error);
      try {
        labels::Requirement::make(c.key, c.op, c.values);
        ADD_FAILURE() << "no exception";
      } catch (const labels::SelectorError& e) {
        EXPECT_EQ(std::string(e.what()), "invalid label selector requirement: " + c.error);
      }
    }
  }
}

TEST(LabelRequirement, ValuesAreSortedAndUnique) {
  auto r = labels::Requirement::make("x", labels::Operator::kIn, {"b", "a", "b", ""});
  EXPECT_EQ(r.values(), (std::vector<std::string>{"", "a", "b"}));
  EXPECT_TRUE(r.hasValue("a"));
  EXPECT_TRUE(r.hasValue(""));
  EXPECT_FALSE(r.hasValue("c"));
  EXPECT_EQ(r.toString(), "x in (,a,b)");
  EXPECT_EQ(r, labels::Requirement::make("x", labels::Operator::kIn, {"a", "b", ""}));
  EXPECT_NE(r, labels::Requirement::make("x", labels::Operator::kNotIn, {"a", "b", ""}));
}

TEST(LabelRequirement, OperatorNames) {
  using Op = labels::Operator;
  EXPECT_EQ(labels::toString(Op::kEquals), "=");
  EXPECT_EQ(labels::toString(Op::kDoubleEquals), "==");
  EXPECT_EQ(labels::toString(Op::kNotEquals), "!=");
  EXPECT_EQ(labels::toString(Op::kIn), "in");
  EXPECT_EQ(labels::toString(Op::kNotIn), "notin");
  EXPECT_EQ(labels::toString(Op::kExists), "exists");
  EXPECT_EQ(labels::toString(Op::kDoesNotExist), "!");
  EXPECT_EQ(labels::toString(Op::kGreaterThan), "gt");
  EXPECT_EQ(labels::toString(Op::kLessThan), "lt");
}

TEST(LabelSelector, ToStringOfBuiltSelectors) {
  using Op = labels::Operator;
  using labels::Requirement;
  struct Case {
    std::vector<Requirement> requirements;
    std::string want;
  };
  // TestToString.
  const std::vector<Case> cases = {
      {{Requirement::make("x", Op::kIn, {"abc", "def"}),
        Requirement::make("y", Op::kNotIn, {"jkl"}), Requirement::make("z", Op::kExists)},
       "x in (abc,def),y notin (jkl),z"},
      {{Requirement::make("x", Op::kNotIn, {"abc", "def"}),
        Requirement::make("y", Op::kNotEquals, {"jkl"}), Requirement::make("z", Op::kDoesNotExist)},
       "x notin (abc,def),y!=jkl,!z"},
      {{Requirement::make("x", Op::kNotIn, {"abc"}),
        Requirement::make("y", Op::kIn, {"jkl", "mno"}), Requirement::make("z", Op::kNotIn, {""})},
       "x notin (abc),y in (jkl,mno),z notin ()"},
      {{Requirement::make("x", Op::kEquals, {"abc"}),
        Requirement::make("y", Op::kDoubleEquals, {"jkl"}),
        Requirement::make("z", Op::kNotEquals, {"a"}), Requirement::make("z", Op::kExists)},
       "x=abc,y==jkl,z!=a,z"},
      {{Requirement::make("x", Op::kGreaterThan, {"2"}),
        Requirement::make("y", Op::kLessThan, {"8"}), Requirement::make("z", Op::kExists)},
       "x>2,y<8,z"},
      // Sorted by key, values sorted.
      {{Requirement::make("z", Op::kExists), Requirement::make("a", Op::kIn, {"def", "abc"})},
       "a in (abc,def),z"},
      {{}, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.want);
    auto s = labels::Selector::fromRequirements(c.requirements);
    EXPECT_EQ(s.toString(), c.want);
    EXPECT_EQ(labels::Selector::parse(c.want), s);
  }
}

TEST(LabelSelector, AddCopiesAndKeepsKeyOrder) {
  using Op = labels::Operator;
  // TestAdd.
  const auto empty = labels::Selector::everything();
  const auto one = empty.add(labels::Requirement::make("key", Op::kIn, {"value"}));
  EXPECT_TRUE(empty.empty());
  ASSERT_EQ(one.requirements().size(), 1u);
  EXPECT_EQ(one.requirements()[0], labels::Requirement::make("key", Op::kIn, {"value"}));
  const auto two = one.add(labels::Requirement::make("key2", Op::kEquals, {"value2"}));
  EXPECT_EQ(two.toString(), "key in (value),key2=value2");
  EXPECT_EQ(two.add(labels::Requirement::make("a", Op::kExists)).toString(),
            "a,key in (value),key2=value2");
  EXPECT_EQ(one.toString(), "key in (value)");
  // Nothing stays nothing.
  const auto nothing = labels::Selector::nothing().add(labels::Requirement::make("a", Op::kExists));
  EXPECT_TRUE(nothing.matchesNothing());
  EXPECT_TRUE(nothing.requirements().empty());
}

// ================================== labels: matching ============================================

TEST(LabelSelectorMatch, Table) {
  struct Case {
    std::string selector;
    StringMap labels;
    bool want;
  };
  const StringMap labelset = {{"foo", "bar"}, {"baz", "blah"}};
  const StringMap xfoo_ybaz = {{"x", "foo"}, {"y", "baz"}};
  const std::vector<Case> cases = {
      // TestSelectorMatches.
      {"", {{"x", "y"}}, true},
      {"x=y", {{"x", "y"}}, true},
      {"x=y,z=w", {{"x", "y"}, {"z", "w"}}, true},
      {"x!=y,z!=w", {{"x", "z"}, {"z", "a"}}, true},
      {"notin=in", {{"notin", "in"}}, true},
      {"x", {{"x", "z"}}, true},
      {"!x", {{"y", "z"}}, true},
      {"x>1", {{"x", "2"}}, true},
      {"x<1", {{"x", "0"}}, true},
      {"x=z", {}, false},
      {"x=y", {{"x", "z"}}, false},
      {"x=y,z=w", {{"x", "w"}, {"z", "w"}}, false},
      {"x!=y,z!=w", {{"x", "z"}, {"z", "w"}}, false},
      {"x", {{"y", "z"}}, false},
      {"!x", {{"x", "z"}}, false},
      {"x>1", {{"x", "0"}}, false},
      {"x<1", {{"x", "2"}}, false},
      {"foo=bar", labelset, true},
      {"baz=blah", labelset, true},
      {"foo=bar,baz=blah", labelset, true},
      {"foo=blah", labelset, false},
      {"baz=bar", labelset, false},
      {"foo=bar,foobar=bar,baz=blah", labelset, false},
      // TestRequirementSelectorMatching.
      {"x in (foo),y notin (alpha)", xfoo_ybaz, true},
      {"x in (foo),y in (alpha)", xfoo_ybaz, false},
      {"x notin (),y", {{"y", ""}}, true},
      {"!x,y", {{"y", ""}}, true},
      {"x notin (),!y", {{"y", ""}}, false},
      {"x in ()", {{"y", "baz"}}, false},
      {"z>1", {{"z", "2"}}, true},
      {"z>1", {{"z", "v2"}}, false},
      // Absent labels: NotIn, != and ! select them; In, =, ==, exists, > and < do not.
      {"x notin (a)", {}, true},
      {"x notin (a)", {{"x", "a"}}, false},
      {"x notin (a)", {{"x", "b"}}, true},
      {"x!=a", {}, true},
      {"x in (a,b)", {}, false},
      {"x in (a,b)", {{"x", "b"}}, true},
      {"x=", {}, false},
      {"x==a", {}, false},
      {"x", {}, false},
      {"x>1", {}, false},
      {"x<1", {}, false},
      // Empty values.
      {"x in ()", {{"x", ""}}, true},
      {"x notin ()", {{"x", ""}}, false},
      {"x=", {{"x", ""}}, true},
      {"x!=", {{"x", ""}}, false},
      {"x", {{"x", ""}}, true},
      // Gt and Lt compare 64-bit integers; anything else does not match.
      {"x<1", {{"x", "-3"}}, true},
      {"x>1", {{"x", "+2"}}, true},
      {"x>1", {{"x", "1"}}, false},
      {"x<1", {{"x", "1"}}, false},
      {"x>1", {{"x", " 2"}}, false},
      {"x>1", {{"x", "2.5"}}, false},
      {"x>1", {{"x", ""}}, false},
      {"x>1", {{"x", "+"}}, false},
      {"x>0", {{"x", "0x10"}}, false},
      {"x>0", {{"x", "1_000"}}, false},
      {"x>1", {{"x", "99999999999999999999"}}, false},
      {"x>9223372036854775806", {{"x", "9223372036854775807"}}, true},
      {"x<0", {{"x", "-9223372036854775808"}}, true},
      {"x>007", {{"x", "8"}}, true},
      {"x>5,x<10", {{"x", "7"}}, true},
      {"x>5,x<10", {{"x", "10"}}, false},
      // Keys are exact: no prefix matching, case-sensitive.
      {"app=web", {{"App", "web"}}, false},
      {"app=web", {{"app", "Web"}}, false},
      {"k8s.io/app=web", {{"k8s.io/app", "web"}, {"app", "db"}}, true},
      {"in in (in)", {{"in", "in"}}, true},
      {"app=web,tier in (front,back),!canary,release notin (beta)",
       {{"app", "web"}, {"tier", "back"}},
       true},
      {"app=web,tier in (front,back),!canary,release notin (beta)",
       {{"app", "web"}, {"tier", "back"}, {"release", "beta"}},
       false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("selector: \"" + c.selector + "\"");
    const auto s = labels::Selector::parse(c.selector);
    EXPECT_EQ(s.matches(c.labels), c.want);
    EXPECT_EQ(s.matches(toProtoMap(c.labels)), c.want);
    EXPECT_EQ(s.matches([&](std::string_view key) -> std::optional<std::string> {
      auto it = c.labels.find(std::string(key));
      if (it == c.labels.end()) return std::nullopt;
      return it->second;
    }),
              c.want);
    EXPECT_EQ(s.matches([&](std::string_view key) -> std::optional<std::string_view> {
      auto it = c.labels.find(std::string(key));
      if (it == c.labels.end()) return std::nullopt;
      return std::string_view(it->second);
    }),
              c.want);
  }
}

TEST(LabelSelectorMatch, RequirementsOneByOne) {
  // What an indexer does: look at each requirement and a single label value.
  const auto s = labels::Selector::parse("tier notin (db),app=web");
  ASSERT_EQ(s.requirements().size(), 2u);
  const auto& app = s.requirements()[0];
  const auto& tier = s.requirements()[1];
  EXPECT_TRUE(app.matchesValue("web"));
  EXPECT_FALSE(app.matchesValue("db"));
  EXPECT_FALSE(app.matchesValue(std::nullopt));
  EXPECT_TRUE(tier.matchesValue(std::nullopt));
  EXPECT_FALSE(tier.matchesValue("db"));
  EXPECT_TRUE(tier.matches([](std::string_view) -> const std::string* { return nullptr; }));
}

TEST(LabelSelector, EverythingAndNothing) {
  const StringMap labels = {{"x", "y"}};
  // TestEverything, TestNilMapIsValid, TestSetIsEmpty.
  const auto everything = labels::Selector::everything();
  EXPECT_TRUE(everything.matches(labels));
  EXPECT_TRUE(everything.matches(StringMap{}));
  EXPECT_TRUE(everything.empty());
  EXPECT_FALSE(everything.matchesNothing());
  EXPECT_EQ(everything.toString(), "");
  EXPECT_EQ(everything, labels::Selector());
  EXPECT_EQ(everything, labels::Selector::parse(""));
  EXPECT_EQ(everything, labels::Selector::parse("  \t"));
  EXPECT_TRUE(labels::Selector::fromSet(StringMap{}).empty());

  const auto nothing = labels::Selector::nothing();
  EXPECT_FALSE(nothing.matches(labels));
  EXPECT_FALSE(nothing.matches(StringMap{}));
  EXPECT_FALSE(nothing.matches(toProtoMap(labels)));
  EXPECT_FALSE(nothing.empty());
  EXPECT_TRUE(nothing.matchesNothing());
  EXPECT_EQ(nothing.toString(), "");
  EXPECT_TRUE(nothing.requirements().empty());
  EXPECT_NE(nothing, everything);
  EXPECT_FALSE(nothing.requiresExactMatch("x").has_value());
}

TEST(LabelSelector, FromSet) {
  // TestSetMatches: no validation, "=blah" is just a value.
  const StringMap labelset = {{"foo", "bar"}, {"baz", "blah"}};
  EXPECT_TRUE(labels::Selector::fromSet(StringMap{}).matches(labelset));
  EXPECT_TRUE(labels::Selector::fromSet(StringMap{{"foo", "bar"}}).matches(labelset));
  EXPECT_TRUE(labels::Selector::fromSet(StringMap{{"baz", "blah"}}).matches(labelset));
  EXPECT_TRUE(labels::Selector::fromSet(labelset).matches(labelset));
  EXPECT_FALSE(labels::Selector::fromSet(StringMap{{"foo", "=blah"}}).matches(labelset));
  EXPECT_FALSE(
      labels::Selector::fromSet(StringMap{{"foo", "bar"}, {"foobar", "bar"}}).matches(labelset));
  EXPECT_EQ(labels::Selector::fromSet(labelset).toString(), "baz=blah,foo=bar");
  EXPECT_EQ(labels::Selector::fromSet(toProtoMap(labelset)).toString(), "baz=blah,foo=bar");
  EXPECT_EQ(labels::Selector::fromSet(labelset), labels::Selector::parse("foo=bar,baz=blah"));
}

TEST(LabelSelector, ValidatedFromSet) {
  // TestValidatedSelectorFromSet.
  EXPECT_EQ(labels::Selector::validatedFromSet({{"key", "val"}}).toString(), "key=val");
  const std::string long_value = "axahm2EJ8Phiephe2eixohbee9eGeiyees1thuozi1xoh0GiuH3diewi8iem7Nui";
  try {
    labels::Selector::validatedFromSet({{"Key", long_value}});
    FAIL() << "no exception";
  } catch (const labels::SelectorError& e) {
    EXPECT_EQ(std::string(e.what()),
              "invalid label selector requirement: values[0][Key]: Invalid "
              "value: \"" +
                  long_value + "\": must be no more than 63 characters");
  }
  EXPECT_THROW(labels::Selector::validatedFromSet({{"bad key", "v"}}), labels::SelectorError);
}

TEST(LabelSelector, RequiresExactMatch) {
  struct Case {
    std::string selector;
    std::string key;
    std::optional<std::string> want;
  };
  // TestRequiresExactMatch, plus Skiff's own.
  const std::vector<Case> cases = {
      {"key in (value)", "key", "value"},
      {"key in (value,value2)", "key", std::nullopt},
      {"key in (value,value1),key2 in (value2)", "key2", "value2"},
      {"key=value", "key", "value"},
      {"key==value", "key", "value"},
      {"key!=value", "key", std::nullopt},
      {"key in (value),key2 in (value2)", "key", "value"},
      {"key notin (value)", "key", std::nullopt},
      {"key", "key", std::nullopt},
      {"!key", "key", std::nullopt},
      {"key>1", "key", std::nullopt},
      {"key=", "key", ""},
      {"x=a", "key", std::nullopt},
      {"", "key", std::nullopt},
      // Any equality requirement on the key pins its value (Kubernetes looks only at the first
      // requirement on the key).
      {"key,key=value", "key", "value"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("selector: \"" + c.selector + "\" key " + c.key);
    EXPECT_EQ(labels::Selector::parse(c.selector).requiresExactMatch(c.key), c.want);
  }
}

// ================================== labels: from the API type ===================================

using Expression = std::tuple<std::string, std::string, std::vector<std::string>>;

meta::v1::LabelSelector protoSelector(const StringMap& match_labels,
                                      const std::vector<Expression>& expressions) {
  meta::v1::LabelSelector out;
  for (const auto& [k, v] : match_labels)
    (*out.mutable_match_labels())[k] = v;
  for (const auto& [key, op, values] : expressions) {
    auto* e = out.add_match_expressions();
    e->set_key(key);
    e->set_operator_(op);
    for (const std::string& v : values)
      e->add_values(v);
  }
  return out;
}

TEST(LabelSelectorFromProto, NilSelectsNothingAndEmptySelectsEverything) {
  const auto nil = labels::Selector::fromProto(nullptr);
  EXPECT_TRUE(nil.matchesNothing());
  EXPECT_FALSE(nil.empty());
  EXPECT_FALSE(nil.matches(StringMap{{"a", "b"}}));
  EXPECT_EQ(nil, labels::Selector::nothing());

  const meta::v1::LabelSelector empty;
  const auto all = labels::Selector::fromProto(&empty);
  EXPECT_TRUE(all.empty());
  EXPECT_TRUE(all.matches(StringMap{{"a", "b"}}));
  EXPECT_TRUE(all.matches(StringMap{}));
  EXPECT_EQ(all, labels::Selector::everything());
}

TEST(LabelSelectorFromProto, ConvertsAsLabelSelectorAsSelector) {
  struct Case {
    StringMap match_labels;
    std::vector<Expression> expressions;
    std::string want;  // canonical form; must equal labels::Selector::parse(want)
  };
  const Expression baz_in = {"baz", "In", {"qux", "norf"}};
  const std::vector<Case> cases = {
      // TestLabelSelectorAsSelector.
      {{{"foo", "bar"}}, {}, "foo=bar"},
      {{}, {baz_in}, "baz in (norf,qux)"},
      {{{"foo", "bar"}}, {baz_in}, "baz in (norf,qux),foo=bar"},
      // Every operator, sorted by key; match labels and expressions mixed.
      {{{"c", "3"}, {"a", "1"}, {"b", "2"}}, {}, "a=1,b=2,c=3"},
      {{{"m", "x"}},
       {{"z", "Exists", {}}, {"a", "DoesNotExist", {}}, {"n", "NotIn", {"b", "a"}}},
       "!a,m=x,n notin (a,b),z"},
      {{}, {{"x", "In", {"", "a"}}}, "x in (,a)"},
      {{{"x", ""}}, {}, "x="},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.want);
    const auto proto = protoSelector(c.match_labels, c.expressions);
    const auto s = labels::Selector::fromProto(&proto);
    EXPECT_EQ(s.toString(), c.want);
    EXPECT_EQ(s, labels::Selector::parse(c.want));
  }
}

TEST(LabelSelectorFromProto, Matches) {
  const auto proto = protoSelector({{"app", "web"}}, {{"tier", "In", {"front", "edge"}},
                                                      {"track", "NotIn", {"canary"}},
                                                      {"deprecated", "DoesNotExist", {}}});
  const auto s = labels::Selector::fromProto(&proto);
  EXPECT_TRUE(s.matches(toProtoMap({{"app", "web"}, {"tier", "edge"}})));
  EXPECT_TRUE(s.matches(toProtoMap({{"app", "web"}, {"tier", "front"}, {"track", "stable"}})));
  EXPECT_FALSE(s.matches(toProtoMap({{"app", "web"}, {"tier", "front"}, {"track", "canary"}})));
  EXPECT_FALSE(s.matches(toProtoMap({{"app", "web"}})));
  EXPECT_FALSE(s.matches(toProtoMap({{"app", "web"}, {"tier", "edge"}, {"deprecated", ""}})));
  EXPECT_FALSE(s.matches(toProtoMap({{"app", "db"}, {"tier", "edge"}})));
}

TEST(LabelSelectorFromProto, InvalidSelectorsNameTheFieldPath) {
  struct Case {
    StringMap match_labels;
    std::vector<Expression> expressions;
    std::string error;
  };
  const std::string kSupported = R"(supported values: "In", "NotIn", "Exists", "DoesNotExist")";
  const std::vector<Case> cases = {
      // TestLabelSelectorAsSelector.
      {{},
       {{"baz", "Exists", {"qux", "norf"}}},
       "matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or "
       "'DoesNotExist'"},
      {{},
       {{"baz", "DoesNotExist", {""}}},
       "matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or "
       "'DoesNotExist'"},
      {{},
       {{"a", "In", {"x"}}, {"b", "Foo", {"y"}}},
       "matchExpressions[1].operator: Unsupported value: \"Foo\": " + kSupported},
      {{},
       {{"a", "in", {"x"}}},
       "matchExpressions[0].operator: Unsupported value: \"in\": " + kSupported},
      {{}, {{"a", "", {}}}, "matchExpressions[0].operator: Unsupported value: \"\": " + kSupported},
      {{},
       {{"a", "Gt", {"1"}}},
       "matchExpressions[0].operator: Unsupported value: \"Gt\": " + kSupported},
      {{},
       {{"a", "In", {}}},
       "matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or "
       "'NotIn'"},
      {{},
       {{"a", "NotIn", {}}},
       "matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or "
       "'NotIn'"},
      {{},
       {{"a b", "Exists", {}}},
       cat("matchExpressions[0].key: Invalid value: \"a b\": name part ", kNameRegexMsg)},
      {{},
       {{"", "Exists", {}}},
       cat("matchExpressions[0].key: Invalid value: \"\": name part must be non-empty; name part ",
           kNameRegexMsg)},
      {{},
       {{"a", "In", {"ok", "-x"}}},
       cat("matchExpressions[0].values[1]: Invalid value: \"-x\": ", kValueRegexMsg)},
      {{{"-k", "v"}}, {}, cat("matchLabels: Invalid value: \"-k\": name part ", kNameRegexMsg)},
      {{{"k", "a b"}}, {}, cat("matchLabels: Invalid value: \"a b\": ", kValueRegexMsg)},
      // The labels are checked before the expressions.
      {{{"k", "-v"}},
       {{"a", "Foo", {}}},
       cat("matchLabels: Invalid value: \"-v\": ", kValueRegexMsg)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.error);
    const auto proto = protoSelector(c.match_labels, c.expressions);
    std::string error;
    EXPECT_FALSE(labels::Selector::tryFromProto(&proto, &error).has_value());
    EXPECT_EQ(error, c.error);
    try {
      labels::Selector::fromProto(&proto);
      ADD_FAILURE() << "no exception";
    } catch (const labels::SelectorError& e) {
      EXPECT_EQ(std::string(e.what()), c.error);
    }
  }
}

TEST(LabelSelectorFromProto, PathPrefix) {
  const auto proto = protoSelector({}, {{"a", "Exists", {}}, {"b", "Foo", {}}});
  std::string error;
  EXPECT_FALSE(labels::Selector::tryFromProto(&proto, &error, "spec.selector").has_value());
  EXPECT_EQ(error,
            "spec.selector.matchExpressions[1].operator: Unsupported value: \"Foo\": supported "
            "values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\"");
  EXPECT_THROW(labels::Selector::fromProto(&proto, "spec.selector"), std::invalid_argument);
  // Nil is never an error.
  EXPECT_TRUE(labels::Selector::tryFromProto(nullptr, &error, "spec.selector")->matchesNothing());
}

// ================================== fields ======================================================

TEST(FieldSelectorParse, ValidSelectors) {
  using Op = fields::Operator;
  struct Case {
    std::string input;
    std::string canonical;
    std::vector<fields::Requirement> requirements;
  };
  const std::vector<Case> cases = {
      // TestSelectorParse: these print back unchanged.
      {"x=a,y=b,z=c",
       "x=a,y=b,z=c",
       {{"x", Op::kEquals, "a"}, {"y", Op::kEquals, "b"}, {"z", Op::kEquals, "c"}}},
      {"", "", {}},
      {"x!=a,y=b", "x!=a,y=b", {{"x", Op::kNotEquals, "a"}, {"y", Op::kEquals, "b"}}},
      {R"(x=a||y\=b)", R"(x=a||y\=b)", {{"x", Op::kEquals, "a||y=b"}}},
      {R"(x=a\=\=b)", R"(x=a\=\=b)", {{"x", Op::kEquals, "a==b"}}},
      // TestDeterministicParse: the terms are sorted.
      {"x=a,a=x", "a=x,x=a", {{"a", Op::kEquals, "x"}, {"x", Op::kEquals, "a"}}},
      // "==" is "=".
      {"x==a", "x=a", {{"x", Op::kEquals, "a"}}},
      {"metadata.name=foo,spec.nodeName!=,status.phase==Running",
       "metadata.name=foo,spec.nodeName!=,status.phase=Running",
       {{"metadata.name", Op::kEquals, "foo"},
        {"spec.nodeName", Op::kNotEquals, ""},
        {"status.phase", Op::kEquals, "Running"}}},
      // Empty terms are skipped.
      {",,x=a,", "x=a", {{"x", Op::kEquals, "a"}}},
      {",", "", {}},
      // TestSplitTerms / TestSplitTerm: escapes. Raw terms sort by bytes, so "k2=" < "k=".
      {R"(k=\,,k2=v2)", R"(k2=v2,k=\,)", {{"k2", Op::kEquals, "v2"}, {"k", Op::kEquals, ","}}},
      {R"(k=\\,k2=v2)", R"(k2=v2,k=\\)", {{"k2", Op::kEquals, "v2"}, {"k", Op::kEquals, "\\"}}},
      {R"(k=\\\,,k2=v2)",
       R"(k2=v2,k=\\\,)",
       {{"k2", Op::kEquals, "v2"}, {"k", Op::kEquals, "\\,"}}},
      {R"(a=\,,b=c)", R"(a=\,,b=c)", {{"a", Op::kEquals, ","}, {"b", Op::kEquals, "c"}}},
      {R"(k=\=)", R"(k=\=)", {{"k", Op::kEquals, "="}}},
      // Multi-byte text, sorted by bytes.
      {"함=수,목=록", "목=록,함=수", {{"목", Op::kEquals, "록"}, {"함", Op::kEquals, "수"}}},
      // Nothing is trimmed; the field is everything before the first operator.
      {" x = a ", " x = a ", {{" x ", Op::kEquals, " a "}}},
      {"=a", "=a", {{"", Op::kEquals, "a"}}},
      {"x=", "x=", {{"x", Op::kEquals, ""}}},
      {"a!b=c", "a!b=c", {{"a!b", Op::kEquals, "c"}}},
      {"x!=!", "x!=!", {{"x", Op::kNotEquals, "!"}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("input: \"" + c.input + "\"");
    std::string error;
    auto s = fields::Selector::tryParse(c.input, &error);
    ASSERT_TRUE(s.has_value()) << error;
    EXPECT_EQ(s->toString(), c.canonical);
    EXPECT_EQ(s->requirements(), c.requirements);
    EXPECT_EQ(s->empty(), c.requirements.empty());
    EXPECT_EQ(fields::Selector::parse(c.canonical), *s);
  }
}

TEST(FieldSelectorParse, InvalidSelectors) {
  struct Case {
    std::string input;
    std::string error;
  };
  const std::vector<Case> cases = {
      // TestSelectorParse.
      {"x=a||y=b", "invalid field selector: unescaped character in value: = (in 'x=a||y=b')"},
      {"x==a==b", "invalid field selector: unescaped character in value: = (in 'x==a==b')"},
      {"x=a,b",
       "invalid field selector 'x=a,b': can't understand 'b'; expected field=value, field==value "
       "or field!=value"},
      {"x in (a)",
       "invalid field selector 'x in (a)': can't understand 'x in (a)'; expected field=value, "
       "field==value or field!=value"},
      {"x in (a,b,c)",
       "invalid field selector 'x in (a,b,c)': can't understand 'b'; expected field=value, "
       "field==value or field!=value"},
      {"x",
       "invalid field selector 'x': can't understand 'x'; expected field=value, field==value or "
       "field!=value"},
      // Escapes.
      {R"(x=\a)", R"(invalid field selector: invalid escape sequence: \a (in 'x=\a'))"},
      {R"(x=\)", R"(invalid field selector: invalid escape sequence: \ (in 'x=\'))"},
      {R"(x=a\\\)", R"(invalid field selector: invalid escape sequence: \ (in 'x=a\\\'))"},
      {R"(x=\함)", R"(invalid field selector: invalid escape sequence: \함 (in 'x=\함'))"},
      {"x!==y", "invalid field selector: unescaped character in value: = (in 'x!==y')"},
      {"x=a=b,y", "invalid field selector: unescaped character in value: = (in 'x=a=b')"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("input: \"" + c.input + "\"");
    std::string error;
    EXPECT_FALSE(fields::Selector::tryParse(c.input, &error).has_value());
    EXPECT_EQ(error, c.error);
    try {
      fields::Selector::parse(c.input);
      ADD_FAILURE() << "no exception";
    } catch (const fields::SelectorError& e) {
      EXPECT_EQ(std::string(e.what()), c.error);
    }
  }
}

TEST(FieldSelector, EscapeAndUnescapeValues) {
  // TestEscapeValue: value -> escaped, and back.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", ""},        {"a", "a"},
      {"=", R"(\=)"},  {",", R"(\,)"},
      {"\\", R"(\\)"}, {R"(\=\,\)", R"(\\\=\\\,\\)"},
      {"함", "함"},    {"a=b,c", R"(a\=b\,c)"},
  };
  for (const auto& [value, escaped] : cases) {
    SCOPED_TRACE(value);
    EXPECT_EQ(fields::escapeValue(value), escaped);
    EXPECT_EQ(fields::unescapeValue(escaped), value);
  }
  // TestEscapeValue's invalid sequences, and TestUnescapeValue's unescaped characters.
  const std::vector<std::pair<std::string, std::string>> invalid = {
      {R"(\)", R"(invalid field selector: invalid escape sequence: \)"},
      {R"(\\\)", R"(invalid field selector: invalid escape sequence: \)"},
      {R"(\a)", R"(invalid field selector: invalid escape sequence: \a)"},
      {R"(\\=)", "invalid field selector: unescaped character in value: ="},
      {R"(\\,)", "invalid field selector: unescaped character in value: ,"},
  };
  for (const auto& [escaped, error] : invalid) {
    SCOPED_TRACE(escaped);
    try {
      fields::unescapeValue(escaped);
      ADD_FAILURE() << "no exception";
    } catch (const fields::SelectorError& e) {
      EXPECT_EQ(std::string(e.what()), error);
    }
  }
}

TEST(FieldSelectorMatch, Table) {
  struct Case {
    std::string selector;
    StringMap fields;
    bool want;
  };
  const StringMap fieldset = {{"foo", "bar"}, {"baz", "blah"}, {"complex", R"(=value\,\)"}};
  const std::vector<Case> cases = {
      // TestSelectorMatches.
      {"", {{"x", "y"}}, true},
      {"x=y", {{"x", "y"}}, true},
      {"x=y,z=w", {{"x", "y"}, {"z", "w"}}, true},
      {"x!=y,z!=w", {{"x", "z"}, {"z", "a"}}, true},
      {"notin=in", {{"notin", "in"}}, true},
      {"x=y", {{"x", "z"}}, false},
      {"x=y,z=w", {{"x", "w"}, {"z", "w"}}, false},
      {"x!=y,z!=w", {{"x", "z"}, {"z", "w"}}, false},
      {"foo=bar", fieldset, true},
      {"baz=blah", fieldset, true},
      {"foo=bar,baz=blah", fieldset, true},
      {R"(foo=bar,baz=blah,complex=\=value\\\,\\)", fieldset, true},
      {"foo=blah", fieldset, false},
      {"baz=bar", fieldset, false},
      {"foo=bar,foobar=bar,baz=blah", fieldset, false},
      // An absent field reads as "".
      {"spec.nodeName=", {}, true},
      {"spec.nodeName==", {}, true},
      {"spec.nodeName!=", {}, false},
      {"spec.nodeName!=", {{"spec.nodeName", "node-1"}}, true},
      {"spec.nodeName=node-1", {}, false},
      {"spec.nodeName!=node-1", {}, true},
      {"spec.nodeName=node-1", {{"spec.nodeName", "node-1"}}, true},
      {"spec.nodeName=node-1", {{"spec.nodeName", "node-2"}}, false},
      {"metadata.name=web,status.phase!=Failed",
       {{"metadata.name", "web"}, {"status.phase", "Running"}},
       true},
      {"metadata.name=web,status.phase!=Failed",
       {{"metadata.name", "web"}, {"status.phase", "Failed"}},
       false},
      // Values compare exactly.
      {"x=a", {{"x", "A"}}, false},
      {"x=a", {{"x", "a "}}, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("selector: \"" + c.selector + "\"");
    const auto s = fields::Selector::parse(c.selector);
    EXPECT_EQ(s.matches(c.fields), c.want);
    EXPECT_EQ(s.matches([&](std::string_view field) -> std::optional<std::string> {
      auto it = c.fields.find(std::string(field));
      if (it == c.fields.end()) return std::nullopt;
      return it->second;
    }),
              c.want);
    // A lookup that reports absent fields as "" gives the same answers.
    EXPECT_EQ(s.matches([&](std::string_view field) -> std::optional<std::string_view> {
      auto it = c.fields.find(std::string(field));
      return it == c.fields.end() ? std::string_view() : std::string_view(it->second);
    }),
              c.want);
  }
}

TEST(FieldSelector, FromSetAndOneTermEqual) {
  // TestOneTermEqualSelector.
  EXPECT_TRUE(fields::Selector::oneTermEqual("x", "y").matches(StringMap{{"x", "y"}}));
  EXPECT_FALSE(fields::Selector::oneTermEqual("x", "y").matches(StringMap{{"x", "z"}}));
  EXPECT_EQ(fields::Selector::oneTermEqual("metadata.name", "a,b").toString(),
            R"(metadata.name=a\,b)");
  // TestSetMatches.
  const StringMap labelset = {{"foo", "bar"}, {"baz", "blah"}};
  EXPECT_TRUE(fields::Selector::fromSet({}).matches(labelset));
  EXPECT_TRUE(fields::Selector::fromSet({{"foo", "bar"}}).matches(labelset));
  EXPECT_TRUE(fields::Selector::fromSet({{"baz", "blah"}}).matches(labelset));
  EXPECT_TRUE(fields::Selector::fromSet({{"foo", "bar"}, {"baz", "blah"}}).matches(labelset));
  EXPECT_FALSE(fields::Selector::fromSet({{"foo", "=blah"}}).matches(labelset));
  EXPECT_FALSE(fields::Selector::fromSet({{"baz", "=bar"}}).matches(labelset));
  EXPECT_FALSE(fields::Selector::fromSet({{"foo", "=bar"}, {"foobar", "bar"}, {"baz", "blah"}})
                   .matches(labelset));
  // TestNilMapIsValid, TestSetIsEmpty, TestEverything.
  EXPECT_TRUE(fields::Selector::fromSet({}).empty());
  EXPECT_TRUE(fields::Selector::everything().empty());
  EXPECT_TRUE(fields::Selector::everything().matches(StringMap{{"x", "y"}}));
  EXPECT_FALSE(fields::Selector::oneTermEqual("", "").empty());
  // Printed escaped, and parsed back to the same.
  const auto s = fields::Selector::fromSet({{"b", "x=y"}, {"a", R"(\)"}});
  EXPECT_EQ(s.toString(), R"(a=\\,b=x\=y)");
  EXPECT_EQ(fields::Selector::parse(s.toString()), s);
}

TEST(FieldSelector, RequiresExactMatch) {
  struct Case {
    fields::Selector selector;
    std::string field;
    std::optional<std::string> want;
  };
  // TestRequiresExactMatch.
  const std::vector<Case> cases = {
      {fields::Selector::fromSet({}), "test", std::nullopt},
      {fields::Selector::oneTermEqual("", ""), "test", std::nullopt},
      {fields::Selector::oneTermEqual("a", "b"), "test", std::nullopt},
      {fields::Selector::oneTermEqual("test", "b"), "test", "b"},
      {fields::Selector::oneTermEqual("test", ""), "test", ""},
      {fields::Selector::parse("test!=b"), "test", std::nullopt},
      {fields::Selector::parse("test!="), "test", std::nullopt},
      {fields::Selector::everything(), "test", std::nullopt},
      {fields::Selector::parse("=,test=b"), "test", "b"},
      {fields::Selector::parse("test!=a,test=b"), "test", "b"},
      {fields::Selector::parse("spec.nodeName=node-1,status.phase!=Failed"), "spec.nodeName",
       "node-1"},
      {fields::Selector::parse(R"(spec.nodeName=a\,b)"), "spec.nodeName", "a,b"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("selector: \"" + c.selector.toString() + "\" field " + c.field);
    EXPECT_EQ(c.selector.requiresExactMatch(c.field), c.want);
  }
}

TEST(FieldSelector, ValidateFields) {
  const std::array<std::string_view, 3> pod_fields = {"metadata.name", "metadata.namespace",
                                                      "spec.nodeName"};
  EXPECT_NO_THROW(
      fields::Selector::parse("metadata.name=a,spec.nodeName!=").validateFields(pod_fields));
  EXPECT_NO_THROW(fields::Selector::everything().validateFields(pod_fields));
  EXPECT_NO_THROW(fields::Selector::everything().validateFields({}));
  EXPECT_EQ(fields::Selector::parse("metadata.name=a").checkFields(pod_fields), std::nullopt);

  struct Case {
    std::string selector;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"spec.foo=x", "field label not supported: spec.foo"},
      {"metadata.name=a,status.phase=Running", "field label not supported: status.phase"},
      {"metadata.name=a, spec.nodeName=b", "field label not supported:  spec.nodeName"},
      {"=x", "field label not supported: "},
      {"Metadata.Name=x", "field label not supported: Metadata.Name"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.selector);
    const auto s = fields::Selector::parse(c.selector);
    EXPECT_EQ(s.checkFields(pod_fields), c.error);
    try {
      s.validateFields(pod_fields);
      ADD_FAILURE() << "no exception";
    } catch (const fields::SelectorError& e) {
      EXPECT_EQ(std::string(e.what()), c.error);
    }
  }
  // The initializer-list form.
  EXPECT_THROW(fields::Selector::parse("spec.foo=x").validateFields({"metadata.name"}),
               std::invalid_argument);
  EXPECT_NO_THROW(fields::Selector::parse("metadata.name=x").validateFields({"metadata.name"}));
}

}  // namespace
}  // namespace skiff::api
