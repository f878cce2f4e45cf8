#include "control/apiserver/encryption/encryption_config.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "control/api/base64.h"
#include "control/api/registry.h"
#include "control/api/yaml.h"
#include "control/store/store.h"

namespace skiff::apiserver::encryption {
namespace {

constexpr std::string_view kApiVersion = "apiserver.config.k8s.io/v1";

class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  [[noreturn]] void fail(const api::Value& at, const std::string& path,
                         const std::string& message) const {
    std::string where(source_);
    if (at.mark().known()) {
      where += ":" + std::to_string(at.mark().line) + ":" + std::to_string(at.mark().column);
    }
    throw ConfigError(where + ": " + (path.empty() ? "" : path + ": ") + message);
  }

  // Only `allowed` members; a typo ("aesbc", "secrets:") is an error, not a silent no-op.
  void onlyFields(const api::Value& object, const std::string& path,
                  std::initializer_list<std::string_view> allowed) const {
    for (const auto& m : object.members()) {
      if (std::find(allowed.begin(), allowed.end(), m.key) == allowed.end()) {
        fail(m.value, join(path, m.key), "unknown field");
      }
    }
  }

  const api::Value& require(const api::Value& object, const std::string& path,
                            std::string_view field, api::Value::Kind kind) const {
    const api::Value* v = object.find(field);
    if (v == nullptr || v->isNull()) fail(object, join(path, field), "required");
    if (v->kind() != kind) {
      fail(*v, join(path, field),
           "expected " + std::string(kindName(kind)) + ", got " + std::string(v->typeName()));
    }
    return *v;
  }

  std::string text(const api::Value& v, const std::string& path) const {
    if (!v.isString() && !v.isPlain()) fail(v, path, "expected string, got " + typeOf(v));
    return v.text();
  }

  static std::string join(const std::string& path, std::string_view field) {
    return path.empty() ? std::string(field) : path + "." + std::string(field);
  }
  static std::string index(const std::string& path, size_t i) {
    return path + "[" + std::to_string(i) + "]";
  }

 private:
  static std::string_view kindName(api::Value::Kind kind) {
    switch (kind) {
      case api::Value::Kind::kArray:
        return "array";
      case api::Value::Kind::kObject:
        return "object";
      case api::Value::Kind::kString:
        return "string";
      default:
        return "value";
    }
  }
  static std::string typeOf(const api::Value& v) { return std::string(v.typeName()); }

  std::string_view source_;
};

bool validPlural(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// The store prefixes a resource name of the configuration covers.
std::vector<std::string> prefixesOf(const Parser& p, const api::Value& at, const std::string& path,
                                    const std::string& name) {
  if (name == "*.*") return {"/registry/"};
  if (name == "*") {
    p.fail(at, path,
           "\"*\" is not a resource: use \"*.\" for every resource of the core API group or "
           "\"*.*\" for every resource");
  }
  size_t dot = name.find('.');
  std::string plural = dot == std::string::npos ? name : name.substr(0, dot);
  std::string group = dot == std::string::npos ? "" : name.substr(dot + 1);
  if (plural == "*") {
    std::set<std::string> plurals;
    for (const auto& t : api::Registry::builtin().types()) {
      if (t.group == group) plurals.insert(t.plural);
    }
    if (plurals.empty()) {
      p.fail(at, path, "no resources of API group \"" + group + "\" are known to this apiserver");
    }
    std::vector<std::string> out;
    for (const auto& pl : plurals)
      out.push_back(store::resourcePrefix(pl));
    return out;
  }
  if (!validPlural(plural) || group.find('*') != std::string::npos) {
    p.fail(at, path,
           "\"" + name + "\" is not a resource name (lower-case plural, optionally .GROUP)");
  }
  return {store::resourcePrefix(plural)};
}

}  // namespace

const Transformer* EncryptionConfig::forKey(std::string_view key) const {
  for (const auto& r : rules_) {
    if (key.starts_with(r.prefix)) return r.transformer.get();
  }
  return nullptr;
}

std::vector<std::string> EncryptionConfig::prefixes() const {
  std::vector<std::string> out;
  for (const auto& r : rules_)
    out.push_back(r.prefix);
  return out;
}

EncryptionConfig parseEncryptionConfig(std::string_view text, std::string_view source) {
  Parser p(source);
  api::Value root;
  try {
    root = api::parseYaml(text, {.source = source});
  } catch (const api::DecodeError& e) {
    throw ConfigError(e.what());
  }
  if (!root.isObject()) p.fail(root, "", "expected an EncryptionConfiguration object");
  p.onlyFields(root, "", {"apiVersion", "kind", "resources"});
  const auto& version = p.require(root, "", "apiVersion", api::Value::Kind::kString);
  if (version.text() != kApiVersion) {
    p.fail(version, "apiVersion",
           "must be " + std::string(kApiVersion) + ", got \"" + version.text() + "\"");
  }
  const auto& kind = p.require(root, "", "kind", api::Value::Kind::kString);
  if (kind.text() != "EncryptionConfiguration") {
    p.fail(kind, "kind", "must be EncryptionConfiguration, got \"" + kind.text() + "\"");
  }
  const auto& rules = p.require(root, "", "resources", api::Value::Kind::kArray);
  if (rules.items().empty()) p.fail(rules, "resources", "must list at least one rule");

  EncryptionConfig config;
  struct Covered {
    std::string prefix, name, path;
  };
  std::vector<Covered> covered;
  for (size_t i = 0; i < rules.items().size(); ++i) {
    const api::Value& rule = rules.items()[i];
    const std::string rpath = Parser::index("resources", i);
    if (!rule.isObject())
      p.fail(rule, rpath, "expected object, got " + std::string(rule.typeName()));
    p.onlyFields(rule, rpath, {"resources", "providers"});
    const auto& names = p.require(rule, rpath, "resources", api::Value::Kind::kArray);
    if (names.items().empty()) {
      p.fail(names, rpath + ".resources", "must list at least one resource");
    }
    const auto& providers = p.require(rule, rpath, "providers", api::Value::Kind::kArray);
    if (providers.items().empty()) {
      p.fail(providers, rpath + ".providers", "must list at least one provider");
    }

    auto transformer = std::make_shared<Transformer>();
    std::string summary;
    for (size_t j = 0; j < providers.items().size(); ++j) {
      const api::Value& provider = providers.items()[j];
      const std::string ppath = Parser::index(rpath + ".providers", j);
      if (!provider.isObject() || provider.members().size() != 1) {
        p.fail(provider, ppath,
               "must name exactly one provider (aescbc, aesgcm, secretbox, identity or kms); "
               "list several providers as separate elements");
      }
      const auto& member = provider.members().front();
      const std::string& type = member.key;
      const api::Value& body = member.value;
      const std::string tpath = ppath + "." + type;
      if (!summary.empty()) summary += ", ";
      if (type == "identity") {
        if (!body.isNull() && !(body.isObject() && body.members().empty())) {
          p.fail(body, tpath, "takes no settings ({})");
        }
        transformer->add("", nullptr);
        summary += "identity";
        continue;
      }
      if (type == "secretbox") {
        p.fail(body, tpath,
               "provider not supported: this apiserver is built without libsodium "
               "(XSalsa20-Poly1305); use aescbc or aesgcm");
      }
      if (type == "kms") {
        p.fail(body, tpath,
               "provider not supported: this apiserver has no KMS plugin client; "
               "use aescbc or aesgcm");
      }
      if (type != "aescbc" && type != "aesgcm") {
        p.fail(body, tpath,
               "unknown provider \"" + type + "\" (aescbc, aesgcm, secretbox, identity or kms)");
      }
      if (!body.isObject())
        p.fail(body, tpath, "expected object, got " + std::string(body.typeName()));
      p.onlyFields(body, tpath, {"keys"});
      const auto& keys = p.require(body, tpath, "keys", api::Value::Kind::kArray);
      if (keys.items().empty()) p.fail(keys, tpath + ".keys", "must list at least one key");
      std::set<std::string> seen;
      summary += type + "(";
      for (size_t k = 0; k < keys.items().size(); ++k) {
        const api::Value& key = keys.items()[k];
        const std::string kpath = Parser::index(tpath + ".keys", k);
        if (!key.isObject())
          p.fail(key, kpath, "expected object, got " + std::string(key.typeName()));
        p.onlyFields(key, kpath, {"name", "secret"});
        const auto& name_v = p.require(key, kpath, "name", api::Value::Kind::kString);
        const std::string name = name_v.text();
        if (name.empty()) p.fail(name_v, kpath + ".name", "must not be empty");
        if (name.find(':') != std::string::npos) {
          p.fail(name_v, kpath + ".name", "must not contain ':' (it ends the stored prefix)");
        }
        if (!seen.insert(name).second) {
          p.fail(name_v, kpath + ".name", "duplicate key name \"" + name + "\" in this provider");
        }
        const auto* secret_v = key.find("secret");
        if (secret_v == nullptr || secret_v->isNull()) p.fail(key, kpath + ".secret", "required");
        std::string secret_text = p.text(*secret_v, kpath + ".secret");
        auto secret = api::base64Decode(secret_text);
        if (!secret) p.fail(*secret_v, kpath + ".secret", "must be base64 (standard, padded)");
        if (secret->size() != 16 && secret->size() != 24 && secret->size() != 32) {
          p.fail(*secret_v, kpath + ".secret",
                 "must be 16, 24 or 32 bytes base64 (AES-128/192/256; 32 recommended), got " +
                     std::to_string(secret->size()) + " bytes");
        }
        std::string prefix = std::string(kEncryptedPrefix) + type + ":v1:" + name + ":";
        transformer->add(prefix, type == "aescbc" ? makeAesCbc(*secret) : makeAesGcm(*secret));
        summary += (k == 0 ? "" : ",") + name;
      }
      summary += ")";
    }

    std::string names_text;
    for (size_t k = 0; k < names.items().size(); ++k) {
      const api::Value& n = names.items()[k];
      const std::string npath = Parser::index(rpath + ".resources", k);
      std::string name = p.text(n, npath);
      for (const auto& prefix : prefixesOf(p, n, npath, name)) {
        for (const auto& c : covered) {
          if (prefix.starts_with(c.prefix)) {
            p.fail(n, npath,
                   "\"" + name + "\" is already covered by " + c.path + " (\"" + c.name +
                       "\"): the first rule naming a resource decides");
          }
        }
        covered.push_back({prefix, name, npath});
        config.rules_.push_back({prefix, transformer});
      }
      names_text += (k == 0 ? "" : ",") + name;
    }
    config.summary_.push_back(names_text + ": " + summary);
  }
  return config;
}

EncryptionConfig loadEncryptionConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot read the encryption provider configuration");
  std::ostringstream text;
  text << in.rdbuf();
  return parseEncryptionConfig(text.str(), path);
}

}  // namespace skiff::apiserver::encryption
