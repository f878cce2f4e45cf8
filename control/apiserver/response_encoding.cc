#include "control/apiserver/response_encoding.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "control/api/kube_protobuf.h"
#include "control/api/yaml.h"

namespace skiff::apiserver {
namespace {

using google::protobuf::Message;

constexpr std::string_view kJsonType = "application/json";
constexpr std::string_view kYamlType = "application/yaml";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// One clause of an Accept header, as goautoneg parses it.
struct Clause {
  std::string_view type;
  std::string_view subtype;
  double q = 1;
  std::vector<std::pair<std::string_view, std::string_view>> params;

  std::string_view param(std::string_view key) const {
    for (const auto& [k, v] : params) {
      if (k == key) return v;
    }
    return {};
  }
  bool has(std::string_view key) const {
    return std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.first == key; });
  }
};

std::vector<Clause> parseAccept(std::string_view header) {
  std::vector<Clause> clauses;
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view part = trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    if (part.empty()) continue;
    Clause c;
    std::string_view media = trim(part.substr(0, part.find(';')));
    size_t slash = media.find('/');
    if (slash == std::string_view::npos) {
      if (media != "*") continue;  // neither type/subtype nor the lone wildcard
      c.type = c.subtype = "*";
    } else {
      c.type = trim(media.substr(0, slash));
      c.subtype = trim(media.substr(slash + 1));
    }
    std::string_view rest = part.find(';') == std::string_view::npos
                                ? std::string_view{}
                                : part.substr(part.find(';') + 1);
    while (!rest.empty()) {
      size_t semi = rest.find(';');
      std::string_view param = trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      size_t eq = param.find('=');
      if (eq == std::string_view::npos) continue;
      std::string_view key = trim(param.substr(0, eq));
      std::string_view value = trim(param.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      if (key == "q") {
        // Go's strconv.ParseFloat: anything unparsable is 0, which means "not acceptable".
        std::string text(value);
        char* end = nullptr;
        double q = std::strtod(text.c_str(), &end);
        c.q = end != nullptr && *end == '\0' && !text.empty() ? q : 0;
      } else {
        c.params.emplace_back(key, value);
      }
    }
    clauses.push_back(std::move(c));
  }
  // Highest q first; among equals, a concrete type before a wildcard; else as sent.
  std::stable_sort(clauses.begin(), clauses.end(), [](const Clause& a, const Clause& b) {
    auto key = [](const Clause& c) {
      return std::make_tuple(-c.q, c.type == "*", c.subtype == "*");
    };
    return key(a) < key(b);
  });
  return clauses;
}

struct Served {
  MediaType media;
  std::string_view type;
  std::string_view subtype;
  bool streams;  // has a watch stream form
};

// In kube-apiserver's order: the first is what wildcards get.
constexpr Served kServed[] = {
    {MediaType::kJson, "application", "json", true},
    {MediaType::kYaml, "application", "yaml", false},
    {MediaType::kProtobuf, "application", "vnd.kubernetes.protobuf", true},
};

std::string notAcceptableMessage(bool stream) {
  std::string message = "only the following media types are accepted: ";
  bool first = true;
  for (const auto& s : kServed) {
    if (stream && !s.streams) continue;
    if (!first) message += ", ";
    first = false;
    message += std::string(s.type) + "/" + std::string(s.subtype);
    if (stream) message += ";stream=watch";
  }
  return message;
}

// The clause's answer in the served type, or nullopt when that is not served. `conversions`
// false: kube-apiserver's DefaultEndpointRestrictions (errors), which pass over every "as=".
std::optional<ResponseFormat> acceptClause(const Clause& clause, const Served& served,
                                           Endpoint endpoint, bool conversions) {
  ResponseFormat format{.media = served.media};
  std::string_view stream = clause.param("stream");
  if (!stream.empty() && (!served.streams || stream != "watch")) return std::nullopt;
  if (clause.has("as")) {
    if (!conversions) return std::nullopt;
    std::string_view as = clause.param("as");
    std::string_view group = clause.param("g");
    std::string_view version = clause.param("v");
    if (as == "Table") {
      // Tables are JSON or YAML only, and only where the resource is read.
      if (group != "meta.k8s.io" || (version != "v1" && version != "v1beta1")) return std::nullopt;
      if (endpoint == Endpoint::kObject || served.media == MediaType::kProtobuf) {
        return std::nullopt;
      }
      format.table = true;
    } else if (as == "PartialObjectMetadata" || as == "PartialObjectMetadataList") {
      // Not served as such: the whole object is a superset of its metadata in JSON and YAML, as
      // Skiff has always answered; a protobuf client would decode the wrong message.
      if (group != "meta.k8s.io" || served.media == MediaType::kProtobuf) return std::nullopt;
    } else {
      return std::nullopt;
    }
  }
  return format;
}

std::optional<ResponseFormat> negotiateClauses(std::string_view accept, Endpoint endpoint,
                                               bool conversions) {
  if (trim(accept).empty()) return ResponseFormat{};
  for (const Clause& clause : parseAccept(accept)) {
    if (clause.q <= 0) continue;
    for (const Served& served : kServed) {
      bool matches = (clause.type == served.type && clause.subtype == served.subtype) ||
                     (clause.type == served.type && clause.subtype == "*") ||
                     (clause.type == "*" && clause.subtype == "*");
      if (!matches) continue;
      if (auto format = acceptClause(clause, served, endpoint, conversions)) return format;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string ResponseFormat::contentType(bool stream) const {
  switch (media) {
    case MediaType::kJson:
      return std::string(kJsonType);
    case MediaType::kYaml:
      return std::string(kYamlType);
    case MediaType::kProtobuf:
      return std::string(stream ? api::kubepb::kStreamMediaType : api::kubepb::kMediaType);
  }
  return std::string(kJsonType);
}

ResponseFormat negotiate(std::string_view accept, Endpoint endpoint) {
  auto format = negotiateClauses(accept, endpoint, true);
  bool stream = endpoint == Endpoint::kWatch;
  // As kube-apiserver: the first clause served decides, and a watch in a type without a stream
  // form (YAML) is not acceptable even when a later clause would be.
  if (!format || (stream && format->media == MediaType::kYaml)) {
    throw notAcceptable(notAcceptableMessage(stream));
  }
  return *format;
}

ResponseFormat negotiate(const HttpRequest& request, Endpoint endpoint) {
  return negotiate(request.header("accept"), endpoint);
}

void writeObject(const ResponseFormat& format, HttpResponse& response, int status,
                 const Message& object) {
  response.status = status;
  response.content_type = format.contentType();
  switch (format.media) {
    case MediaType::kJson:
      response.body = api::encodeJson(object);
      break;
    case MediaType::kYaml:
      response.body = api::encodeYaml(object);
      break;
    case MediaType::kProtobuf:
      response.body = api::kubepb::encodeObject(object);
      break;
  }
}

void writeValue(const ResponseFormat& format, HttpResponse& response, int status,
                const api::Value& value) {
  response.status = status;
  bool yaml = format.media == MediaType::kYaml;
  response.content_type = yaml ? kYamlType : kJsonType;
  response.body = yaml ? api::writeYaml(value) : api::writeJson(value);
}

void writeList(const ResponseFormat& format, HttpResponse& response, const api::ResourceType& type,
               const ListResponse& list) {
  response.status = 200;
  response.content_type = format.contentType();
  if (format.media == MediaType::kProtobuf) {
    api::meta::v1::ListMeta metadata;
    if (!list.resource_version.empty()) metadata.set_resource_version(list.resource_version);
    if (!list.continue_token.empty()) metadata.set_continue_(list.continue_token);
    std::vector<const Message*> items;
    items.reserve(list.items.size());
    for (const auto& item : list.items)
      items.push_back(item.get());
    response.body = api::kubepb::encodeList(type.apiVersion(), type.kind + "List", metadata, items);
    return;
  }
  std::string body = R"({"apiVersion":")" + type.apiVersion() + R"(","kind":")" + type.kind +
                     R"(List","metadata":{)";
  if (!list.resource_version.empty()) {
    body += R"("resourceVersion":")" + list.resource_version + "\"";
  }
  if (!list.continue_token.empty()) {
    if (!list.resource_version.empty()) body += ',';
    body += R"("continue":")" + list.continue_token + "\"";
  }
  body += R"(},"items":[)";
  bool first = true;
  for (const auto& item : list.items) {
    if (!first) body += ',';
    first = false;
    body += api::encodeJson(*item, api::JsonStyle::kCompact, {.type_meta = false});
  }
  body += "]}";
  response.body =
      format.media == MediaType::kYaml ? api::writeYaml(api::parseJson(body)) : std::move(body);
}

HttpResponse errorResponse(std::string_view accept, const ApiError& error) {
  HttpResponse response;
  ResponseFormat format;
  // A 406 cannot be answered in a type the client asked for: kube-apiserver writes it in JSON.
  if (error.code() != 406) {
    if (auto negotiated = negotiateClauses(accept, Endpoint::kObject, false)) format = *negotiated;
  }
  writeObject(format, response, error.code(), error.toStatus());
  return response;
}

std::string encodeEventObject(MediaType media, const Message& object) {
  return media == MediaType::kProtobuf ? api::kubepb::encodeObject(object)
                                       : api::encodeJson(object);
}

std::string watchEvent(MediaType media, std::string_view type, std::string_view encoded_object) {
  if (media == MediaType::kProtobuf) return api::kubepb::encodeWatchFrame(type, encoded_object);
  std::string line;
  line.reserve(encoded_object.size() + type.size() + 24);
  line += R"({"type":")";
  line += type;
  line += R"(","object":)";
  line += encoded_object;
  line += "}\n";
  return line;
}

}  // namespace skiff::apiserver
