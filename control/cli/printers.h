#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "control/api/registry.h"
#include "control/api/value.h"

// How `skiff get` prints: server-side Tables laid out as kubectl lays them out (Go's tabwriter with
// kubectl's settings: minimum width 6, padding 3), and objects as yaml, json or names.

namespace skiff::cli {

// Go's text/tabwriter as kubectl configures it: each column as wide as its widest cell plus 3
// (at least 6); the last column is not padded.
class TabWriter {
 public:
  void addRow(std::vector<std::string> cells);
  // Widths of the columns so far (for rows printed later, as -w does).
  std::vector<size_t> widths() const;
  void write(std::ostream& out) const;
  // One row padded to `widths` (widened where the row is wider).
  static std::string formatRow(const std::vector<std::string>& cells,
                               const std::vector<size_t>& widths);

 private:
  std::vector<std::vector<std::string>> rows_;
};

struct TableOptions {
  bool wide = false;  // priority-1 columns too
  bool no_headers = false;
  bool show_labels = false;     // a LABELS column from each row's metadata
  bool with_namespace = false;  // a NAMESPACE column first (-A)
  std::string name_prefix;      // "deployment.apps/" when several kinds are printed together
};

// The header and rows of a meta.k8s.io/v1 Table as kubectl prints them (cells not yet padded).
std::vector<std::string> tableHeader(const api::Value& table, const TableOptions& options);
std::vector<std::vector<std::string>> tableRows(const api::Value& table,
                                                const TableOptions& options);

// Kubernetes' duration.HumanDuration, as AGE columns and events show it: "45s", "5m30s", "3h",
// "2d4h".
std::string humanDuration(int64_t seconds);

// "app=web,tier=front" (sorted), or "<none>".
std::string formatLabels(const api::Value* labels);

// The object (or a `kind: List` of them) in kubectl's -o yaml and -o json forms.
std::string toYaml(const api::Value& object);
std::string toJson(const api::Value& object);
// kubectl's `kind: List` wrapper for several objects.
api::Value listOf(std::vector<api::Value> items);

}  // namespace skiff::cli
