#include "control/cli/app.h"

int main(int argc, char** argv) {
  skiff::cli::App app;
  return app.run(argc, argv);
}
