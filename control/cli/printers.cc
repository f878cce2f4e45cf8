#include "control/cli/printers.h"

#include <algorithm>
#include <map>
#include <ostream>

#include "control/api/json.h"
#include "control/api/yaml.h"
#include "control/cli/cli_context.h"

namespace skiff::cli {

using api::Value;

namespace {

constexpr size_t kMinWidth = 6;
constexpr size_t kPadding = 3;

// Display width: UTF-8 code points, as tabwriter counts them.
size_t width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xc0) != 0x80) ++n;
  }
  return n;
}

std::string upper(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string cellText(const Value& cell) {
  switch (cell.kind()) {
    case Value::Kind::kNull:
      return "<none>";
    case Value::Kind::kBool:
      return cell.asBool() ? "true" : "false";
    case Value::Kind::kNumber:
    case Value::Kind::kString:
      return cell.text();
    default:
      return api::writeJson(cell);
  }
}

// Which columns to print.
std::vector<size_t> visibleColumns(const Value& table, bool wide) {
  std::vector<size_t> out;
  const Value* defs = table.find("columnDefinitions");
  if (defs == nullptr || !defs->isArray()) return out;
  for (size_t i = 0; i < defs->items().size(); ++i) {
    if (wide || fieldInt(defs->items()[i], "priority") == 0) out.push_back(i);
  }
  return out;
}

}  // namespace

void TabWriter::addRow(std::vector<std::string> cells) {
  rows_.push_back(std::move(cells));
}

std::vector<size_t> TabWriter::widths() const {
  std::vector<size_t> w;
  for (const auto& row : rows_) {
    for (size_t i = 0; i + 1 < row.size(); ++i) {
      if (w.size() <= i) w.resize(i + 1, kMinWidth);
      w[i] = std::max(w[i], width(row[i]) + kPadding);
    }
  }
  return w;
}

std::string TabWriter::formatRow(const std::vector<std::string>& cells,
                                 const std::vector<size_t>& widths) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    line += cells[i];
    if (i + 1 == cells.size()) break;
    size_t w = std::max(i < widths.size() ? widths[i] : kMinWidth, width(cells[i]) + kPadding);
    line.append(w - width(cells[i]), ' ');
  }
  return line;
}

void TabWriter::write(std::ostream& out) const {
  auto w = widths();
  for (const auto& row : rows_)
    out << formatRow(row, w) << "\n";
}

std::vector<std::string> tableHeader(const Value& table, const TableOptions& options) {
  std::vector<std::string> header;
  if (options.with_namespace) header.emplace_back("NAMESPACE");
  const Value* defs = table.find("columnDefinitions");
  for (size_t i : visibleColumns(table, options.wide))
    header.push_back(upper(fieldText(defs->items()[i], "name")));
  if (options.show_labels) header.emplace_back("LABELS");
  return header;
}

std::vector<std::vector<std::string>> tableRows(const Value& table, const TableOptions& options) {
  std::vector<std::vector<std::string>> out;
  const Value* rows = table.find("rows");
  if (rows == nullptr || !rows->isArray()) return out;
  std::vector<size_t> columns = visibleColumns(table, options.wide);
  const Value* defs = table.find("columnDefinitions");
  for (const auto& row : rows->items()) {
    std::vector<std::string> cells;
    const Value* object = row.find("object");
    Value empty = Value::object();
    const Value& obj = object != nullptr ? *object : empty;
    if (options.with_namespace) cells.push_back(fieldText(obj, "metadata.namespace"));
    const Value* row_cells = row.find("cells");
    for (size_t i : columns) {
      std::string text;
      if (row_cells != nullptr && row_cells->isArray() && i < row_cells->items().size()) {
        text = cellText(row_cells->items()[i]);
      }
      if (fieldText(defs->items()[i], "format") == "name") text = options.name_prefix + text;
      cells.push_back(std::move(text));
    }
    if (options.show_labels) cells.push_back(formatLabels(field(obj, "metadata.labels")));
    out.push_back(std::move(cells));
  }
  return out;
}

std::string humanDuration(int64_t s) {
  if (s < -1) return "<invalid>";
  if (s < 0) return "0s";
  if (s < 120) return std::to_string(s) + "s";
  int64_t minutes = s / 60;
  if (minutes < 10) {
    int64_t sec = s % 60;
    return std::to_string(minutes) + "m" + (sec == 0 ? "" : std::to_string(sec) + "s");
  }
  if (minutes < 180) return std::to_string(minutes) + "m";
  int64_t hours = minutes / 60;
  if (hours < 8) {
    int64_t m = minutes % 60;
    return std::to_string(hours) + "h" + (m == 0 ? "" : std::to_string(m) + "m");
  }
  if (hours < 48) return std::to_string(hours) + "h";
  if (hours < 24 * 8) {
    int64_t h = hours % 24;
    return std::to_string(hours / 24) + "d" + (h == 0 ? "" : std::to_string(h) + "h");
  }
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24) + "d";
  if (hours < 24 * 365 * 8) {
    int64_t dy = (hours / 24) % 365;
    return std::to_string(hours / 24 / 365) + "y" + (dy == 0 ? "" : std::to_string(dy) + "d");
  }
  return std::to_string(hours / 24 / 365) + "y";
}

std::string formatLabels(const Value* labels) {
  if (labels == nullptr || !labels->isObject() || labels->members().empty()) return "<none>";
  std::map<std::string, std::string> sorted;
  for (const auto& m : labels->members())
    sorted[m.key] = m.value.text();
  std::string out;
  for (const auto& [k, v] : sorted) {
    if (!out.empty()) out += ',';
    out += k + "=" + v;
  }
  return out;
}

std::string toYaml(const Value& object) {
  return api::writeYaml(object);
}

std::string toJson(const Value& object) {
  return api::writeJson(object, api::JsonStyle::kPretty) + "\n";
}

Value listOf(std::vector<Value> items) {
  Value list = Value::object();
  list.append("apiVersion", Value::string("v1"));
  Value array = Value::array();
  for (auto& item : items)
    array.push(std::move(item));
  list.append("items", std::move(array));
  list.append("kind", Value::string("List"));
  Value metadata = Value::object();
  metadata.append("resourceVersion", Value::string(""));
  list.append("metadata", std::move(metadata));
  return list;
}

}  // namespace skiff::cli
