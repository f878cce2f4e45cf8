#pragma once

// gmock of dataplane::Dataplane, for the proxier's unit tests.

#include <gmock/gmock.h>

#include "dataplane/dataplane.h"

namespace skiff::testing {

class MockDataplane : public dataplane::Dataplane {
 public:
  MOCK_METHOD(std::string_view, name, (), (const, override));
  MOCK_METHOD(dataplane::Status, apply, (const dataplane::ServiceDelta& delta), (override));
  MOCK_METHOD(dataplane::Result<dataplane::DataplaneStats>, stats, (), (const, override));
};

}  // namespace skiff::testing
