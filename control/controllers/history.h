#pragma once

#include <set>
#include <string>
#include <vector>

#include "control/controllers/pod_owner_controller.h"

// Controller history (pkg/controller/history) for DaemonSets and StatefulSets: one
// ControllerRevision per pod template the owner has had, named <owner>-<template hash>, owned by
// it, numbered in the order the templates were (last) used. Data is Kubernetes' form, a strategic
// merge patch that replaces the template: {"spec":{"template":{...,"$patch":"replace"}}}, which
// `kubectl rollout history` and `kubectl rollout undo` read.

namespace skiff::controllers {

api::apps::v1::ControllerRevision makeRevision(const api::meta::v1::ObjectMeta& owner,
                                               const api::ResourceType& owner_type,
                                               const api::core::v1::PodTemplateSpec& tmpl,
                                               const std::string& hash, int64_t number);

// The template a ControllerRevision holds; false when its data is not one.
bool templateOfRevision(const api::apps::v1::ControllerRevision& revision,
                        api::core::v1::PodTemplateSpec& out);

struct RevisionSync {
  const api::apps::v1::ControllerRevision* update = nullptr;   // null: being created
  const api::apps::v1::ControllerRevision* current = nullptr;  // the one named current_name
  std::string collision;  // the update revision's name is taken by another owner's revision
};

// Adds to `result` the writes that bring the history up to date: create the update revision (or
// renumber it as the newest when an earlier template is back), and delete revisions beyond
// `history_limit` that are not in `live`, oldest first. `revisions` are every cached revision of
// the owner's namespace.
RevisionSync syncRevisions(const api::meta::v1::ObjectMeta& owner,
                           const api::ResourceType& owner_type,
                           const api::core::v1::PodTemplateSpec& tmpl, const std::string& hash,
                           const std::string& current_name,
                           const std::vector<const api::apps::v1::ControllerRevision*>& revisions,
                           const std::set<std::string>& live, int32_t history_limit,
                           PodOwnerResult& result);

}  // namespace skiff::controllers
