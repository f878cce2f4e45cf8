#include "control/cli/token_command.h"

#include <openssl/rand.h>

#include <array>
#include <iostream>
#include <memory>
#include <stdexcept>

#include "control/api/time.h"
#include "control/cli/cli_context.h"
#include "control/client/kubeconfig.h"
#include "control/client/typed.h"
#include "skiff/api/core_v1.pb.h"

namespace skiff::cli {

namespace {

using api::core::v1::Secret;

constexpr const char* kTokenType = "bootstrap.kubernetes.io/token";
constexpr const char* kSecretPrefix = "bootstrap-token-";

bool lowerAlnum(std::string_view s) {
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

std::string dataOf(const Secret& s, const char* key) {
  auto it = s.data().find(key);
  return it == s.data().end() ? std::string() : it->second;
}

std::string formatTime(int64_t seconds) {
  return api::formatRfc3339({.seconds = seconds, .nanos = 0});
}

}  // namespace

std::string generateBootstrapToken() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  while (out.size() < 23) {
    if (out.size() == 6) {
      out += '.';
      continue;
    }
    unsigned char b = 0;
    if (RAND_bytes(&b, 1) != 1) throw std::runtime_error("no random bytes for a token");
    if (b >= 252) continue;  // 252 = 7 * 36: no bias
    out += kAlphabet[b % 36];
  }
  return out;
}

std::string createBootstrapToken(client::Client& client, const TokenCreateOptions& options,
                                 std::chrono::system_clock::time_point now) {
  std::string token = options.token.empty() ? generateBootstrapToken() : options.token;
  if (token.size() != 23 || token[6] != '.' || !lowerAlnum(token.substr(0, 6)) ||
      !lowerAlnum(token.substr(7))) {
    throw std::invalid_argument("the token \"" + token +
                                "\" is not of the form [a-z0-9]{6}.[a-z0-9]{16}");
  }
  std::string id = token.substr(0, 6);
  Secret secret;
  secret.mutable_metadata()->set_name(kSecretPrefix + id);
  secret.mutable_metadata()->set_namespace_("kube-system");
  secret.set_type(kTokenType);
  auto& data = *secret.mutable_data();
  data["token-id"] = id;
  data["token-secret"] = token.substr(7);
  data["usage-bootstrap-authentication"] = "true";
  data["usage-bootstrap-signing"] = "true";
  if (!options.description.empty()) data["description"] = options.description;
  if (options.ttl.count() > 0) {
    data["expiration"] = formatTime(std::chrono::system_clock::to_time_t(now + options.ttl));
  }
  if (!options.groups.empty()) {
    size_t start = 0;
    while (start <= options.groups.size()) {
      size_t comma = options.groups.find(',', start);
      std::string g = options.groups.substr(
          start, comma == std::string::npos ? std::string::npos : comma - start);
      start = comma == std::string::npos ? options.groups.size() + 1 : comma + 1;
      if (!g.starts_with("system:bootstrappers:")) {
        throw std::invalid_argument("--groups: \"" + g +
                                    "\" does not start with system:bootstrappers:");
      }
    }
    data["auth-extra-groups"] = options.groups;
  }
  client::create(client, secret);
  return token;
}

void addTokenCommands(CLI::App& app, int& exit_code) {
  auto* token = app.add_subcommand("token",
                                   "Bootstrap tokens for nodes that join with TLS "
                                   "bootstrap (skiff agent --bootstrap-kubeconfig)");
  token->require_subcommand(1);
  {
    auto globals = std::make_shared<GlobalOptions>();
    auto options = std::make_shared<TokenCreateOptions>();
    auto ttl = std::make_shared<std::string>("24h");
    auto* cmd = token->add_subcommand(
        "create", "Create a bootstrap token (a Secret in kube-system) and print it");
    addGlobalFlags(*cmd, *globals);
    cmd->add_option("token", options->token, "The token to create (default: a random one)");
    cmd->add_option("--ttl", *ttl, "How long the token is valid (0: forever)")
        ->capture_default_str();
    cmd->add_option("--description", options->description, "A human-readable description");
    cmd->add_option("--groups", options->groups,
                    "Extra groups the token authenticates as (comma-separated, each "
                    "system:bootstrappers:...)")
        ->capture_default_str();
    cmd->callback([globals, options, ttl, &exit_code] {
      CliContext context(*globals);
      exit_code = runGuarded(std::cerr, context, [&] {
        std::string error;
        auto nanos = api::parseGoDuration(*ttl, &error);
        if (!nanos || *nanos < 0) {
          throw CliError("--ttl " + *ttl + ": expected a duration such as 24h, 30m or 0");
        }
        TokenCreateOptions o = *options;
        o.ttl = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::nanoseconds(*nanos));
        try {
          std::cout << createBootstrapToken(context.client(), o) << "\n";
        } catch (const std::invalid_argument& e) {
          throw CliError(e.what());
        }
        return 0;
      });
    });
  }
  {
    auto globals = std::make_shared<GlobalOptions>();
    auto* cmd = token->add_subcommand("list", "List the bootstrap tokens");
    addGlobalFlags(*cmd, *globals);
    cmd->callback([globals, &exit_code] {
      CliContext context(*globals);
      exit_code = runGuarded(std::cerr, context, [&] {
        auto secrets = client::list<Secret>(context.client(), "kube-system",
                                            {.field_selector = std::string("type=") + kTokenType});
        int64_t now = api::now().seconds;
        std::printf("%-24s %-8s %-21s %-32s %-20s %s\n", "TOKEN", "TTL", "EXPIRES", "USAGES",
                    "DESCRIPTION", "EXTRA GROUPS");
        for (const auto& s : secrets) {
          std::string id = dataOf(s, "token-id");
          std::string ttl = "<forever>";
          std::string expires = "<never>";
          if (std::string e = dataOf(s, "expiration"); !e.empty()) {
            expires = e;
            if (auto t = api::parseRfc3339(e)) {
              ttl =
                  t->seconds <= now ? "<invalid>" : std::to_string((t->seconds - now) / 3600) + "h";
            }
          }
          std::string usages;
          for (const char* u : {"authentication", "signing"}) {
            if (dataOf(s, (std::string("usage-bootstrap-") + u).c_str()) == "true") {
              usages += (usages.empty() ? "" : ",") + std::string(u);
            }
          }
          std::string description = dataOf(s, "description");
          std::printf("%-24s %-8s %-21s %-32s %-20s %s\n",
                      (id + "." + dataOf(s, "token-secret")).c_str(), ttl.c_str(), expires.c_str(),
                      usages.empty() ? "<none>" : usages.c_str(),
                      description.empty() ? "<none>" : description.c_str(),
                      dataOf(s, "auth-extra-groups").c_str());
        }
        return 0;
      });
    });
  }
  {
    struct Flags {
      GlobalOptions globals;
      std::string token;
      std::string server;
      std::string output;
    };
    auto flags = std::make_shared<Flags>();
    auto* cmd = app.add_subcommand(
        "bootstrap-kubeconfig",
        "Write the kubeconfig `skiff agent --bootstrap-kubeconfig` joins with: the apiserver and "
        "CA of --kubeconfig and a bootstrap token");
    addGlobalFlags(*cmd, flags->globals);
    cmd->add_option("--token", flags->token, "The bootstrap token (skiff token create)")
        ->required();
    cmd->add_option("--server", flags->server, "The apiserver URL (default: --kubeconfig's)");
    cmd->add_option("-o,--output", flags->output, "Where to write it (default: stdout)");
    cmd->callback([flags, &exit_code] {
      CliContext context(flags->globals);
      exit_code = runGuarded(std::cerr, context, [&] {
        const client::ClientConfig& config = context.config();
        client::KubeconfigSpec spec{.user_name = "tls-bootstrap-token-user",
                                    .server = flags->server.empty() ? config.server : flags->server,
                                    .ca_pem = config.ca_pem,
                                    .token = flags->token};
        if (flags->output.empty()) {
          std::cout << client::renderKubeconfig(spec);
        } else {
          client::writeKubeconfig(flags->output, spec);
        }
        return 0;
      });
    });
  }
}

}  // namespace skiff::cli
