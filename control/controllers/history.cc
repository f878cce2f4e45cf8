#include "control/controllers/history.h"

#include <algorithm>

#include "control/api/codec.h"
#include "control/api/json.h"

namespace skiff::controllers {

using api::apps::v1::ControllerRevision;

ControllerRevision makeRevision(const api::meta::v1::ObjectMeta& owner,
                                const api::ResourceType& owner_type,
                                const api::core::v1::PodTemplateSpec& tmpl, const std::string& hash,
                                int64_t number) {
  ControllerRevision cr;
  auto* m = cr.mutable_metadata();
  m->set_name(owner.name() + "-" + hash);
  m->set_namespace_(owner.namespace_());
  *m->mutable_labels() = tmpl.metadata().labels();
  (*m->mutable_labels())["controller.kubernetes.io/hash"] = hash;
  *m->add_owner_references() = makeControllerRef(owner, owner_type);
  api::Value body = api::encode(tmpl);
  body.set("$patch", api::Value::string("replace"));
  api::Value root = api::Value::object();
  root.set("spec", api::Value::object()).set("template", std::move(body));
  cr.mutable_data()->set_raw(api::writeJson(root));
  cr.set_revision(number);
  return cr;
}

bool templateOfRevision(const ControllerRevision& revision, api::core::v1::PodTemplateSpec& out) {
  try {
    api::Value root = api::parseJson(revision.data().raw());
    const api::Value* spec = root.find("spec");
    const api::Value* tmpl = spec != nullptr ? spec->find("template") : nullptr;
    if (tmpl == nullptr) return false;
    out.Clear();
    api::decode(*tmpl, out, {.unknown_fields = api::UnknownFields::kIgnore});  // skips "$patch"
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

RevisionSync syncRevisions(const api::meta::v1::ObjectMeta& owner,
                           const api::ResourceType& owner_type,
                           const api::core::v1::PodTemplateSpec& tmpl, const std::string& hash,
                           const std::string& current_name,
                           const std::vector<const ControllerRevision*>& revisions,
                           const std::set<std::string>& live, int32_t history_limit,
                           PodOwnerResult& result) {
  RevisionSync sync;
  const std::string update_name = owner.name() + "-" + hash;
  std::vector<const ControllerRevision*> owned;
  int64_t max_number = 0;
  for (const ControllerRevision* cr : revisions) {
    const auto* ref = controllerOf(cr->metadata());
    if (ref == nullptr || ref->uid() != owner.uid()) {
      if (cr->metadata().name() == update_name) {
        sync.collision = "ControllerRevision " + update_name + " exists and is not owned by " +
                         owner_type.kind + " " + owner.name();
        return sync;
      }
      continue;
    }
    owned.push_back(cr);
    max_number = std::max(max_number, cr->revision());
    if (cr->metadata().name() == update_name) sync.update = cr;
    if (cr->metadata().name() == current_name) sync.current = cr;
  }
  const auto& type = typeOf<ControllerRevision>();
  if (sync.update == nullptr) {
    Action a;
    a.verb = Action::Verb::kCreate;
    a.type = &type;
    a.ns = owner.namespace_();
    a.name = update_name;
    a.object = std::make_shared<ControllerRevision>(
        makeRevision(owner, owner_type, tmpl, hash, max_number + 1));
    result.actions.push_back(std::move(a));
  } else if (sync.update->revision() < max_number) {
    // An earlier template is back: its revision becomes the newest.
    auto copy = std::make_shared<ControllerRevision>(*sync.update);
    copy->set_revision(max_number + 1);
    Action a;
    a.verb = Action::Verb::kUpdate;
    a.type = &type;
    a.ns = owner.namespace_();
    a.name = update_name;
    a.object = std::move(copy);
    result.actions.push_back(std::move(a));
  }
  std::vector<const ControllerRevision*> history;
  for (const ControllerRevision* cr : owned) {
    const std::string& name = cr->metadata().name();
    if (name != update_name && name != current_name && live.count(name) == 0) {
      history.push_back(cr);
    }
  }
  std::sort(history.begin(), history.end(),
            [](const ControllerRevision* a, const ControllerRevision* b) {
              return a->revision() < b->revision();
            });
  const size_t limit = static_cast<size_t>(std::max(0, history_limit));
  for (size_t i = 0; i + limit < history.size(); ++i) {
    Action a;
    a.verb = Action::Verb::kDelete;
    a.type = &type;
    a.ns = owner.namespace_();
    a.name = history[i]->metadata().name();
    a.precondition_uid = history[i]->metadata().uid();
    result.actions.push_back(std::move(a));
  }
  return sync;
}

}  // namespace skiff::controllers
