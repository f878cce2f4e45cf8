#include "control/apiserver/auth/escalation.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "control/apiserver/errors.h"

namespace skiff::apiserver::auth {
namespace {

namespace rbacv1 = api::rbac::v1;
constexpr std::string_view kRbacGroup = "rbac.authorization.k8s.io";

template <typename List>
bool has(const List& list, std::string_view value) {
  return std::any_of(list.begin(), list.end(), [&](const std::string& s) { return s == value; });
}

template <typename Owner, typename Values>
bool hasAll(const Owner& owner, const Values& values) {
  return std::all_of(values.begin(), values.end(),
                     [&](const std::string& v) { return has(owner, v); });
}

template <typename List>
bool resourceCovers(const List& owner, std::string_view resource) {
  if (has(owner, "*") || has(owner, resource)) return true;
  auto slash = resource.find('/');
  if (slash == std::string_view::npos) return false;
  // "pods/*" covers every subresource of pods, "*/log" the log of every resource.
  return has(owner, std::string(resource.substr(0, slash)) + "/*") ||
         has(owner, "*" + std::string(resource.substr(slash)));
}

template <typename List>
bool nonResourceUrlCovers(const List& owner, std::string_view url) {
  for (const auto& o : owner) {
    if (o == url) return true;
    if (o.ends_with('*') && url.starts_with(std::string_view(o).substr(0, o.size() - 1))) {
      return true;
    }
  }
  return false;
}

// Go's %q of a []string: ["a" "b"].
template <typename List>
std::string quotedList(const List& list) {
  std::string out = "[";
  bool first = true;
  for (const auto& s : list) {
    if (!first) out += ' ';
    first = false;
    out += '"';
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "]";
}

std::vector<PolicyRule> rulesOf(const google::protobuf::RepeatedPtrField<PolicyRule>& rules) {
  return {rules.begin(), rules.end()};
}

// The rules `user` holds in `ns` ("" = cluster-wide bindings only).
std::vector<PolicyRule> ownerRules(const RbacAuthorizer& rbac, const UserInfo& user,
                                   std::string_view ns) {
  std::vector<PolicyRule> out;
  rbac.visitRules(user, ns, [&](const PolicyRule& rule, const std::string&) {
    out.push_back(rule);
    return true;
  });
  return out;
}

std::vector<PolicyRule> fullAuthority() {
  PolicyRule all;
  all.add_verbs("*");
  all.add_api_groups("*");
  all.add_resources("*");
  PolicyRule urls;
  urls.add_verbs("*");
  urls.add_non_resource_urls("*");
  return {all, urls};
}

bool allowed(const Authorizer& authorizer, const UserInfo& user, std::string_view verb,
             std::string_view ns, std::string_view resource, std::string_view name) {
  Attributes a;
  a.user = user;
  a.verb = verb;
  a.resource_request = true;
  a.namespace_ = ns;
  a.api_group = kRbacGroup;
  a.api_version = "v1";
  a.resource = resource;
  a.name = name;
  return authorizer.authorize(a).allowed;
}

// IsOnlyMutatingGCFields: `object` equals `old` but for ownerReferences and finalizers.
bool onlyGcFieldsChanged(const google::protobuf::Message& old,
                         const google::protobuf::Message& object) {
  std::unique_ptr<google::protobuf::Message> a(old.New()), b(object.New());
  a->CopyFrom(old);
  b->CopyFrom(object);
  for (auto* m : {a.get(), b.get()}) {
    const auto* field = m->GetDescriptor()->FindFieldByName("metadata");
    if (field == nullptr) return false;
    auto& meta =
        dynamic_cast<api::meta::v1::ObjectMeta&>(*m->GetReflection()->MutableMessage(m, field));
    meta.clear_owner_references();
    meta.clear_finalizers();
    meta.clear_resource_version();
    meta.clear_managed_fields();
    meta.clear_generation();
  }
  return google::protobuf::util::MessageDifferencer::Equals(*a, *b);
}

[[noreturn]] void refuse(const std::string& resource, const std::string& name,
                         const std::string& why) {
  throw forbidden({std::string(kRbacGroup), resource}, name, why);
}

void confirmCovered(const RbacAuthorizer& rbac, const UserInfo& user, std::string_view ns,
                    const std::vector<PolicyRule>& requested, const std::string& resource,
                    const std::string& name) {
  std::vector<PolicyRule> missing = uncoveredRules(ownerRules(rbac, user, ns), requested);
  if (missing.empty()) return;
  std::set<std::string> descriptions;
  for (const auto& rule : compactRules(missing))
    descriptions.insert(compactString(rule));
  std::string list;
  for (const auto& d : descriptions) {
    if (!list.empty()) list += '\n';
    list += d;
  }
  refuse(resource, name,
         "user \"" + user.name + "\" (groups=" + quotedList(user.groups) +
             ") is attempting to grant RBAC permissions not currently held:\n" + list);
}

// BindingAuthorized, then the referenced role's rules held (GetRoleReferenceRules).
void confirmBinding(const RbacAuthorizer& rbac, const UserInfo& user, std::string_view ns,
                    const rbacv1::RoleRef& ref, const std::string& resource,
                    const std::string& name) {
  bool cluster_role = ref.kind() == "ClusterRole";
  if ((cluster_role || ref.kind() == "Role") &&
      allowed(rbac, user, "bind", ns, cluster_role ? "clusterroles" : "roles", ref.name())) {
    return;
  }
  PolicySnapshotPtr policy = rbac.policy();
  const auto* rules = policy->rulesOf(ref, ns);
  if (rules == nullptr) {
    // The listers' NotFound, singular resource names included.
    if (!cluster_role && ref.kind() != "Role") {
      refuse(resource, name, "unsupported role reference kind: \"" + ref.kind() + "\"");
    }
    refuse(resource, name,
           std::string(cluster_role ? "clusterrole" : "role") + "." + std::string(kRbacGroup) +
               " \"" + ref.name() + "\" not found");
  }
  confirmCovered(rbac, user, ns, rulesOf(*rules), resource, name);
}

}  // namespace

std::vector<PolicyRule> breakdownRule(const PolicyRule& rule) {
  std::vector<PolicyRule> out;
  for (const auto& group : rule.api_groups()) {
    for (const auto& resource : rule.resources()) {
      for (const auto& verb : rule.verbs()) {
        auto one = [&](const std::string* name) {
          PolicyRule r;
          r.add_api_groups(group);
          r.add_resources(resource);
          r.add_verbs(verb);
          if (name != nullptr) r.add_resource_names(*name);
          out.push_back(std::move(r));
        };
        if (rule.resource_names().empty()) {
          one(nullptr);
        } else {
          for (const auto& name : rule.resource_names())
            one(&name);
        }
      }
    }
  }
  for (const auto& url : rule.non_resource_urls()) {
    for (const auto& verb : rule.verbs()) {
      PolicyRule r;
      r.add_non_resource_urls(url);
      r.add_verbs(verb);
      out.push_back(std::move(r));
    }
  }
  return out;
}

bool ruleCovers(const PolicyRule& owner, const PolicyRule& requested) {
  bool verbs = has(owner.verbs(), "*") || hasAll(owner.verbs(), requested.verbs());
  bool groups = has(owner.api_groups(), "*") || hasAll(owner.api_groups(), requested.api_groups());
  bool resources =
      std::all_of(requested.resources().begin(), requested.resources().end(),
                  [&](const std::string& r) { return resourceCovers(owner.resources(), r); });
  bool urls = std::all_of(
      requested.non_resource_urls().begin(), requested.non_resource_urls().end(),
      [&](const std::string& u) { return nonResourceUrlCovers(owner.non_resource_urls(), u); });
  bool names = requested.resource_names().empty()
                   ? owner.resource_names().empty()
                   : owner.resource_names().empty() ||
                         hasAll(owner.resource_names(), requested.resource_names());
  return verbs && groups && resources && urls && names;
}

std::vector<PolicyRule> uncoveredRules(const std::vector<PolicyRule>& owner,
                                       const std::vector<PolicyRule>& requested) {
  std::vector<PolicyRule> missing;
  for (const auto& rule : requested) {
    for (auto& part : breakdownRule(rule)) {
      bool covered = std::any_of(owner.begin(), owner.end(),
                                 [&](const PolicyRule& o) { return ruleCovers(o, part); });
      if (!covered) missing.push_back(std::move(part));
    }
  }
  return missing;
}

std::vector<PolicyRule> compactRules(const std::vector<PolicyRule>& rules) {
  std::vector<PolicyRule> out;
  // group, resource, has a name, the name -> index in `simple`
  std::map<std::tuple<std::string, std::string, bool, std::string>, size_t> index;
  std::vector<PolicyRule> simple;
  for (const auto& rule : rules) {
    bool is_simple = rule.resource_names_size() <= 1 && rule.non_resource_urls().empty() &&
                     rule.api_groups_size() == 1 && rule.resources_size() == 1;
    if (!is_simple) {
      out.push_back(rule);
      continue;
    }
    bool named = rule.resource_names_size() == 1;
    auto key = std::make_tuple(rule.api_groups(0), rule.resources(0), named,
                               named ? rule.resource_names(0) : std::string());
    auto [it, inserted] = index.emplace(key, simple.size());
    if (inserted) {
      simple.push_back(rule);
    } else {
      for (const auto& verb : rule.verbs())
        simple[it->second].add_verbs(verb);
    }
  }
  out.insert(out.end(), simple.begin(), simple.end());
  return out;
}

std::string compactString(const PolicyRule& rule) {
  std::vector<std::string> parts;
  if (!rule.api_groups().empty()) parts.push_back("APIGroups:" + quotedList(rule.api_groups()));
  if (!rule.resources().empty()) parts.push_back("Resources:" + quotedList(rule.resources()));
  if (!rule.non_resource_urls().empty()) {
    parts.push_back("NonResourceURLs:" + quotedList(rule.non_resource_urls()));
  }
  if (!rule.resource_names().empty()) {
    parts.push_back("ResourceNames:" + quotedList(rule.resource_names()));
  }
  if (!rule.verbs().empty()) parts.push_back("Verbs:" + quotedList(rule.verbs()));
  std::string out = "{";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += ", ";
    out += parts[i];
  }
  return out + "}";
}

bool grantsPermissions(const google::protobuf::Message& object) {
  return dynamic_cast<const rbacv1::Role*>(&object) != nullptr ||
         dynamic_cast<const rbacv1::ClusterRole*>(&object) != nullptr ||
         dynamic_cast<const rbacv1::RoleBinding*>(&object) != nullptr ||
         dynamic_cast<const rbacv1::ClusterRoleBinding*>(&object) != nullptr;
}

void confirmNoEscalation(const RbacAuthorizer& rbac, const UserInfo& user, std::string_view ns,
                         const google::protobuf::Message* old,
                         const google::protobuf::Message& object) {
  if (user.inGroup(kSystemMasters)) return;  // EscalationAllowed
  if (old != nullptr && onlyGcFieldsChanged(*old, object)) return;
  if (const auto* role = dynamic_cast<const rbacv1::Role*>(&object)) {
    const std::string& name = role->metadata().name();
    if (allowed(rbac, user, "escalate", ns, "roles", name)) return;
    confirmCovered(rbac, user, ns, rulesOf(role->rules()), "roles", name);
  } else if (const auto* cluster_role = dynamic_cast<const rbacv1::ClusterRole*>(&object)) {
    const std::string& name = cluster_role->metadata().name();
    if (allowed(rbac, user, "escalate", "", "clusterroles", name)) return;
    confirmCovered(rbac, user, "", rulesOf(cluster_role->rules()), "clusterroles", name);
    // An aggregationRule can gather anything: it needs * on *.
    if (cluster_role->aggregation_rule().cluster_role_selectors_size() > 0 &&
        !uncoveredRules(ownerRules(rbac, user, ""), fullAuthority()).empty()) {
      refuse("clusterroles", name, "must have cluster-admin privileges to use the aggregationRule");
    }
  } else if (const auto* binding = dynamic_cast<const rbacv1::RoleBinding*>(&object)) {
    confirmBinding(rbac, user, ns, binding->role_ref(), "rolebindings", binding->metadata().name());
  } else if (const auto* cluster_binding =
                 dynamic_cast<const rbacv1::ClusterRoleBinding*>(&object)) {
    confirmBinding(rbac, user, "", cluster_binding->role_ref(), "clusterrolebindings",
                   cluster_binding->metadata().name());
  }
}

}  // namespace skiff::apiserver::auth
