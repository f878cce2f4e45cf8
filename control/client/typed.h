#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/message.h>

#include "control/api/codec.h"
#include "control/api/registry.h"
#include "control/client/client.h"

// Typed calls over any Client: messages in and out, through the project's one codec. Answers are
// decoded ignoring fields this build does not know (a newer server may send more), so typed code
// keeps working against it.
//
//   auto pod = client::get<api::core::v1::Pod>(client, "default", "web-1");
//   pod.mutable_metadata()->mutable_labels()->insert({"tier", "web"});
//   pod = client::update(client, pod);

namespace skiff::client {

// The registered kind of message type T; throws std::logic_error when T is not an API kind.
template <class T>
const api::ResourceType& resourceTypeOf() {
  static const api::ResourceType* type = api::Registry::builtin().byDescriptor(T::descriptor());
  if (type == nullptr || !type->served()) {
    throw std::logic_error("client: " + std::string(T::descriptor()->full_name()) +
                           " is not a served API kind");
  }
  return *type;
}

template <class T>
T fromValue(const api::Value& value) {
  T out;
  api::decode(value, out, {.unknown_fields = api::UnknownFields::kIgnore});
  return out;
}

inline api::Value toValue(const google::protobuf::Message& message) {
  return api::encode(message);
}

template <class T>
T get(Client& client, std::string_view ns, std::string_view name) {
  return fromValue<T>(client.get(resourceTypeOf<T>(), ns, name));
}

// Every item of every page the server sends for `options` (options.limit sets the page size).
template <class T>
std::vector<T> list(Client& client, std::string_view ns, const ListOptions& options = {}) {
  std::vector<T> out;
  ListOptions page = options;
  while (true) {
    api::Value answer = client.list(resourceTypeOf<T>(), ns, page);
    if (const api::Value* items = answer.find("items"); items != nullptr && items->isArray()) {
      out.reserve(out.size() + items->items().size());
      for (const auto& item : items->items())
        out.push_back(fromValue<T>(item));
    }
    const api::Value* meta = answer.find("metadata");
    const api::Value* next = meta != nullptr ? meta->find("continue") : nullptr;
    if (next == nullptr || !next->isString() || next->text().empty()) break;
    page.continue_token = next->text();
  }
  return out;
}

template <class T>
T create(Client& client, const T& object, const WriteOptions& options = {}) {
  return fromValue<T>(
      client.create(resourceTypeOf<T>(), object.metadata().namespace_(), toValue(object), options));
}

template <class T>
T update(Client& client, const T& object, const WriteOptions& options = {}) {
  return fromValue<T>(
      client.update(resourceTypeOf<T>(), object.metadata().namespace_(), toValue(object), options));
}

template <class T>
T updateStatus(Client& client, const T& object, const WriteOptions& options = {}) {
  return fromValue<T>(client.updateStatus(resourceTypeOf<T>(), object.metadata().namespace_(),
                                          toValue(object), options));
}

template <class T>
T patch(Client& client, std::string_view ns, std::string_view name, PatchType type,
        std::string_view body, const WriteOptions& options = {},
        std::string_view subresource = {}) {
  return fromValue<T>(
      client.patch(resourceTypeOf<T>(), ns, name, type, body, options, subresource));
}

template <class T>
void remove(Client& client, std::string_view ns, std::string_view name,
            const DeleteOptions& options = {}) {
  client.remove(resourceTypeOf<T>(), ns, name, options);
}

}  // namespace skiff::client
