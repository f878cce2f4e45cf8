#pragma once

// Kubernetes label selectors (k8s.io/apimachinery/pkg/labels, metav1.LabelSelectorAsSelector) and
// field selectors (k8s.io/apimachinery/pkg/fields).
//
// Both selectors are immutable values: parse once, then match from any number of threads. Matching
// allocates nothing when the labels are a protobuf map or a lookup callable.

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/map.h>

namespace skiff::api {

namespace meta::v1 {
class LabelSelector;
}  // namespace meta::v1

// A selector (or one of its requirements) that cannot be parsed or is not valid.
class SelectorError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace labels {

using api::SelectorError;

// selection.Operator. `toString` gives Kubernetes' names ("=", "==", "!=", "in", "notin", "exists",
// "!", "gt", "lt").
enum class Operator : uint8_t {
  kEquals,
  kDoubleEquals,
  kNotEquals,
  kIn,
  kNotIn,
  kExists,
  kDoesNotExist,
  kGreaterThan,
  kLessThan,
};
std::string_view toString(Operator op);

// Validation of label keys and values as k8s.io/apimachinery/pkg/util/validation does it, with the
// same messages. An empty result means valid.
//   qualifiedNameErrors: IsQualifiedName (label keys: optional DNS-1123 subdomain prefix of at most
//                        253 characters and "/", then a name of at most 63 characters).
//   labelValueErrors:    IsValidLabelValue (at most 63 characters, may be empty).
//   dns1123SubdomainErrors: IsDNS1123Subdomain (most object names; at most 253 characters).
//   dns1123LabelErrors:     IsDNS1123Label (namespaces, container and volume names; at most 63).
//   dns1035LabelErrors:     IsDNS1035Label (Service names: a letter first; at most 63).
std::vector<std::string> qualifiedNameErrors(std::string_view key);
std::vector<std::string> labelValueErrors(std::string_view value);
std::vector<std::string> dns1123SubdomainErrors(std::string_view value);
std::vector<std::string> dns1123LabelErrors(std::string_view value);
std::vector<std::string> dns1035LabelErrors(std::string_view value);

// One term of a selector: a key, an operator and (for In/NotIn/=/==/!=/>/<) values.
class Requirement {
 public:
  // Validates as labels.NewRequirement: the key is a qualified name; In/NotIn take at least one
  // value, =/==/!= exactly one, Exists/DoesNotExist none, >/< exactly one integer; every value is a
  // valid label value. Throws SelectorError with a field-path message such as
  // `values[0][tier]: Invalid value: "-x": a valid label must be ...`.
  static Requirement make(std::string key, Operator op, std::vector<std::string> values = {});
  static std::optional<Requirement> tryMake(std::string key, Operator op,
                                            std::vector<std::string> values,
                                            std::string* error = nullptr);

  const std::string& key() const { return key_; }
  Operator op() const { return op_; }
  // Sorted, without duplicates. One element for =, ==, !=, >, <; none for Exists/DoesNotExist.
  const std::vector<std::string>& values() const { return values_; }
  bool hasValue(std::string_view value) const;

  // Whether a label with this requirement's key and `value` (nullopt: the label is absent) is
  // selected. NotIn, != and DoesNotExist select objects without the label; > and < need a label
  // whose value parses as a 64-bit integer.
  bool matchesValue(std::optional<std::string_view> value) const;

  // `lookup(key)` returns something that tests false when the label is absent and dereferences to
  // its value otherwise: std::optional<std::string>, std::optional<std::string_view>, or a
  // `const std::string*`.
  template <typename Lookup>
  requires std::invocable<const Lookup&, std::string_view>
  bool matches(const Lookup& lookup) const {
    const auto value = lookup(std::string_view(key_));
    if (!value) return matchesValue(std::nullopt);
    return matchesValue(std::string_view(*value));
  }

  // Kubernetes' form: "x in (a,b)", "x notin (a)", "x=a", "x==a", "x!=a", "x", "!x", "x>1".
  std::string toString() const;

  friend bool operator==(const Requirement&, const Requirement&) = default;

 private:
  friend class Selector;
  Requirement(std::string key, Operator op, std::vector<std::string> values);

  std::string key_;
  Operator op_ = Operator::kExists;
  std::vector<std::string> values_;
};

// A label selector: a conjunction of requirements, kept sorted by key (stable, so requirements on
// the same key keep their order). The default-constructed selector selects everything.
class Selector {
 public:
  using Labels = google::protobuf::Map<std::string, std::string>;

  Selector() = default;

  // labels.Everything(): no requirements, matches every object. empty() is true.
  static Selector everything() { return Selector(); }
  // labels.Nothing(): matches no object. empty() is false, toString() is "".
  static Selector nothing();

  // labels.Parse. Grammar (whitespace is ' ', '\t', '\r' or '\n' between tokens):
  //   selector    ::= "" | requirement ("," requirement)*
  //   requirement ::= ["!"] KEY | KEY ("=" | "==" | "!=" | ">" | "<") [VALUE]
  //                 | KEY ("in" | "notin") "(" [VALUE] ("," [VALUE])* ")"
  // Throws SelectorError: `invalid label selector "x in (a b)": at position 8: found 'b',
  // expected: ',' or ')'`. Positions are byte offsets from 0.
  static Selector parse(std::string_view text);
  static std::optional<Selector> tryParse(std::string_view text, std::string* error = nullptr);

  // metav1.LabelSelectorAsSelector: nullptr selects nothing, an empty selector everything;
  // matchLabels become = requirements, matchExpressions In/NotIn/Exists/DoesNotExist. Validates as
  // ValidateLabelSelector and throws SelectorError with the field path of the first problem,
  // prefixed by `path` when given: `spec.selector.matchExpressions[1].operator: Unsupported value:
  // "Foo": supported values: "In", "NotIn", "Exists", "DoesNotExist"`.
  // Pass `msg.has_selector() ? &msg.selector() : nullptr` to keep nil and empty apart.
  static Selector fromProto(const meta::v1::LabelSelector* selector, std::string_view path = {});
  static std::optional<Selector> tryFromProto(const meta::v1::LabelSelector* selector,
                                              std::string* error = nullptr,
                                              std::string_view path = {});

  // labels.SelectorFromSet: key=value for every entry, without validation (an empty set selects
  // everything). validatedFromSet validates keys and values and throws SelectorError.
  static Selector fromSet(const std::map<std::string, std::string>& set);
  static Selector fromSet(const Labels& set);
  static Selector validatedFromSet(const std::map<std::string, std::string>& set);

  // A selector of the given requirements (sorted by key). `add` returns a copy with one more; on
  // nothing() it returns nothing().
  static Selector fromRequirements(std::vector<Requirement> requirements);
  Selector add(Requirement requirement) const;

  bool matches(const Labels& labels) const;
  bool matches(const std::map<std::string, std::string>& labels) const;
  // See Requirement::matches for what `lookup` returns.
  template <typename Lookup>
  requires std::invocable<const Lookup&, std::string_view>
  bool matches(const Lookup& lookup) const {
    if (nothing_) return false;
    for (const Requirement& r : requirements_) {
      if (!r.matches(lookup)) return false;
    }
    return true;
  }

  // True when the selector does not restrict anything (everything()).
  bool empty() const { return !nothing_ && requirements_.empty(); }
  // True for nothing() (Kubernetes: Requirements() returns selectable == false).
  bool matchesNothing() const { return nothing_; }
  // Sorted by key; empty for everything() and nothing().
  const std::vector<Requirement>& requirements() const { return requirements_; }

  // If every selected object must have label `key` with one specific value (a requirement
  // key=v, key==v or key in (v)), that value.
  std::optional<std::string> requiresExactMatch(std::string_view key) const;

  // labels.Selector.String(): requirements in key order joined by ",", values of set requirements
  // sorted: "app=web,tier in (back,front),!canary".
  std::string toString() const;

  friend bool operator==(const Selector&, const Selector&) = default;

 private:
  std::vector<Requirement> requirements_;
  bool nothing_ = false;
};

}  // namespace labels

namespace fields {

using api::SelectorError;

// Field selectors know only equality: "=" and "==" (the same) and "!=".
enum class Operator : uint8_t { kEquals, kNotEquals };

struct Requirement {
  std::string field;  // "metadata.name"
  Operator op = Operator::kEquals;
  std::string value;  // unescaped

  friend bool operator==(const Requirement&, const Requirement&) = default;
};

// fields.EscapeValue: "\" -> "\\", "," -> "\,", "=" -> "\=".
std::string escapeValue(std::string_view value);
// fields.UnescapeValue; throws SelectorError on "\" followed by anything but \ , = (or nothing) and
// on an unescaped "," or "=".
std::string unescapeValue(std::string_view escaped);

// A field selector (fields.ParseSelector): a conjunction of field=value / field!=value terms over
// the fields an object exposes (metadata.name, spec.nodeName, status.phase, ...). A field the
// object does not have reads as the empty string. The default-constructed selector selects
// everything.
class Selector {
 public:
  Selector() = default;
  static Selector everything() { return Selector(); }

  // "metadata.name=foo,spec.nodeName!=,status.phase==Running". Terms are split at commas that are
  // not escaped, and each at its first "!=", "==" or "=" (field names cannot be escaped); values
  // are unescaped; empty terms are skipped. Nothing is trimmed and field names are not checked here
  // (see validateFields). Throws SelectorError.
  static Selector parse(std::string_view text);
  static std::optional<Selector> tryParse(std::string_view text, std::string* error = nullptr);

  // fields.SelectorFromSet (sorted by field) and fields.OneTermEqualSelector.
  static Selector fromSet(const std::map<std::string, std::string>& set);
  static Selector oneTermEqual(std::string field, std::string value);

  // `lookup(field)` returns std::optional<std::string> (or std::optional<std::string_view>, or a
  // `const std::string*`); an absent field matches as "".
  template <typename Lookup>
  requires std::invocable<const Lookup&, std::string_view>
  bool matches(const Lookup& lookup) const {
    for (const Requirement& r : requirements_) {
      const auto value = lookup(std::string_view(r.field));
      const std::string_view v = value ? std::string_view(*value) : std::string_view();
      if ((v == r.value) != (r.op == Operator::kEquals)) return false;
    }
    return true;
  }
  // Matches against a fields.Set.
  bool matches(const std::map<std::string, std::string>& fields) const;

  bool empty() const { return requirements_.empty(); }
  // In the order of the sorted terms of the parsed text.
  const std::vector<Requirement>& requirements() const { return requirements_; }

  // fields.Selector.RequiresExactMatch: the value of the first `field=value` term, if any (used to
  // serve e.g. spec.nodeName=node-1 from an index).
  std::optional<std::string> requiresExactMatch(std::string_view field) const;

  // Every field must be one the resource supports. Throws SelectorError / returns the message
  // "field label not supported: spec.foo" for the first one that is not.
  void validateFields(std::span<const std::string_view> allowed) const;
  void validateFields(std::initializer_list<std::string_view> allowed) const {
    validateFields(std::span<const std::string_view>(allowed.begin(), allowed.size()));
  }
  std::optional<std::string> checkFields(std::span<const std::string_view> allowed) const;

  // fields.Selector.String(): "metadata.name=foo,spec.nodeName!=" with escaped values ("==" is
  // written "=").
  std::string toString() const;

  friend bool operator==(const Selector&, const Selector&) = default;

 private:
  std::vector<Requirement> requirements_;
};

}  // namespace fields
}  // namespace skiff::api
