#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace skiff::cli {

// `skiff agent`: the node agent (kubelet and node proxier), or hollow nodes for scale tests.
void addAgentCommand(CLI::App& app, int& exit_code);

// `skiff node-kubeconfig NODE`: on the server's machine, issues the node's client certificate
// (DATA_DIR/pki/nodes/NODE.{crt,key}: CN system:node:NODE, O system:nodes) and writes a kubeconfig
// that `skiff agent --kubeconfig` runs with under the Node authorizer.
void addNodeKubeconfigCommand(CLI::App& app, int& exit_code);

// DATA_DIR/pki/nodes/NODE.kubeconfig (or `path`): `server`, the cluster CA and the node's client
// certificate and key (issued or reused by apiserver::ensureNodeCertificate), embedded, mode 0600.
// Returns the file written. Throws apiserver::PkiError or std::runtime_error.
std::string writeNodeKubeconfig(const std::string& data_dir, const std::string& node,
                                const std::string& server, std::string path = {});

}  // namespace skiff::cli
