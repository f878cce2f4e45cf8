// Fuzz target for the apiserver's request path before any handler: the raw bytes go through Beast's
// request parser with the server's limits (control/apiserver/http_server.cc), and the target of a
// parsed header through parseQuery, parseRequestInfo and the labelSelector/fieldSelector parsers.
// Invariants: no crash, only the documented exceptions (SelectorError), and a selector that parses
// prints as text that parses back, to the same text after one more round.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "control/api/selector.h"
#include "control/apiserver/request_info.h"

namespace {

namespace http = boost::beast::http;
using namespace skiff;  // NOLINT(google-build-using-namespace): a fuzz entry point

// The printed form reaches a fixed point after one more round: Kubernetes sorts a field selector's
// terms by their raw text before it normalizes "==" to "=", so "f==,f=1" prints as "f=1,f=", which
// prints as "f=,f=1" (the same terms).
template <typename Selector>
void checkSelector(std::string_view text, const char* what) {
  std::optional<Selector> s = Selector::tryParse(text);
  if (!s) return;
  std::string error;
  std::optional<Selector> once = Selector::tryParse(s->toString(), &error);
  const std::string printed = once ? once->toString() : "";
  std::optional<Selector> back = once ? Selector::tryParse(printed, &error) : std::nullopt;
  if (!back || back->toString() != printed) {
    std::fprintf(
        stderr, "%s selector %.*s prints as %s, which %s\n", what, static_cast<int>(text.size()),
        text.data(), s->toString().c_str(),
        back ? ("prints as " + printed + " then " + back->toString()).c_str() : error.c_str());
    std::abort();
  }
}

void checkTarget(std::string_view method, std::string_view target) {
  const size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const apiserver::QueryParams query = apiserver::parseQuery(
      q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
  apiserver::RequestInfo info = apiserver::parseRequestInfo(method, path, query);
  (void)info;
  for (auto [it, end] = query.equal_range("labelSelector"); it != end; ++it)
    checkSelector<api::labels::Selector>(it->second, "label");
  for (auto [it, end] = query.equal_range("fieldSelector"); it != end; ++it)
    checkSelector<api::fields::Selector>(it->second, "field");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // A single line is a method and a target alone ("GET /api/v1/pods?labelSelector=a"), so the
  // fuzzer reaches the parsers behind Beast without having to build a valid request first.
  if (bytes.find("\r\n") == std::string_view::npos) {
    const size_t sp = bytes.find(' ');
    if (sp != std::string_view::npos) checkTarget(bytes.substr(0, sp), bytes.substr(sp + 1));
    return 0;
  }
  http::request_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  parser.header_limit(64 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  boost::asio::const_buffer buf(data, size);
  while (buf.size() > 0 && !ec) {
    const size_t n = parser.put(buf, ec);
    if (n == 0) break;
    buf += n;
  }
  if (!parser.is_header_done()) return 0;
  const auto& req = parser.get();
  const auto method = req.method_string();
  const auto target = req.target();
  checkTarget({method.data(), method.size()}, {target.data(), target.size()});
  return 0;
}
