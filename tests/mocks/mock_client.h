#pragma once

#include <gmock/gmock.h>

#include "control/client/client.h"

// A gmock Client for unit tests of code that takes a `client::Client&` (controllers, the
// scheduler, the kubelet, the proxier). Tests against the real apiserver use
// tests/control/client/test_server.h instead.
namespace skiff::client::testing {

class MockClient : public Client {
 public:
  MOCK_METHOD(api::Value, get,
              (const api::ResourceType& type, std::string_view ns, std::string_view name),
              (override));
  MOCK_METHOD(api::Value, list,
              (const api::ResourceType& type, std::string_view ns, const ListOptions& options),
              (override));
  MOCK_METHOD(api::Value, create,
              (const api::ResourceType& type, std::string_view ns, const api::Value& object,
               const WriteOptions& options),
              (override));
  MOCK_METHOD(api::Value, update,
              (const api::ResourceType& type, std::string_view ns, const api::Value& object,
               const WriteOptions& options),
              (override));
  MOCK_METHOD(api::Value, updateStatus,
              (const api::ResourceType& type, std::string_view ns, const api::Value& object,
               const WriteOptions& options),
              (override));
  MOCK_METHOD(api::Value, patch,
              (const api::ResourceType& type, std::string_view ns, std::string_view name,
               PatchType patch_type, std::string_view body, const WriteOptions& options,
               std::string_view subresource),
              (override));
  MOCK_METHOD(api::Value, remove,
              (const api::ResourceType& type, std::string_view ns, std::string_view name,
               const DeleteOptions& options),
              (override));
  MOCK_METHOD(api::Value, removeCollection,
              (const api::ResourceType& type, std::string_view ns, const ListOptions& list_options,
               const DeleteOptions& options),
              (override));
  MOCK_METHOD(WatchStreamPtr, watch,
              (const api::ResourceType& type, std::string_view ns, const WatchOptions& options),
              (override));
  MOCK_METHOD(api::Value, getScale,
              (const api::ResourceType& type, std::string_view ns, std::string_view name),
              (override));
  MOCK_METHOD(api::Value, updateScale,
              (const api::ResourceType& type, std::string_view ns, const api::Value& scale),
              (override));
  MOCK_METHOD(void, bind,
              (std::string_view ns, std::string_view pod_name, std::string_view node_name),
              (override));
  MOCK_METHOD(RawResponse, raw, (const RawRequest& request), (override));
  MOCK_METHOD(std::vector<std::string>, lastWarnings, (), (const, override));
};

}  // namespace skiff::client::testing
