#pragma once

#include <exception>
#include <functional>

// Kubernetes' slowStartBatch (pkg/controller/replicaset/replica_set.go): a controller that has
// many pods to create sends them in batches of 1, 2, 4, 8, ..., each batch in parallel, and stops
// after the first batch with a failure, so a controller that cannot create (quota, admission,
// a full node) sends a handful of requests rather than hundreds, while one that can reaches full
// parallelism after a few round trips.

namespace skiff::controllers {

struct ParallelResult {
  int failures = 0;
  std::exception_ptr first_error;  // the first call that threw (in completion order)
};

// Calls fn(i) for every i in [0, count), on at most `max_parallel` threads at once (the calling
// thread is one of them; a count of 1 or max_parallel of 1 runs inline). Returns once every call
// returned or threw; exceptions are counted, never propagated.
ParallelResult runParallel(int count, int max_parallel, const std::function<void(int index)>& fn);

// The slow-start batch of the index-th create (0-based): batches of 1, 2, 4, 8, ... give the
// numbers 0, 1, 1, 2, 2, 2, 2, 3, ... Reconcilers number their pod creates with it (Action::batch)
// and the shells run each batch with runParallel.
int slowStartBatch(int index);

}  // namespace skiff::controllers
