// mxport: the command-line entry point. Flags become Options; each subcommand's logic lives in
// its own *_command.cc.
#include <iostream>

#include "CLI/CLI.hpp"
#include "tools/mxport/inspect_command.h"

int main(int argc, char** argv) {
  CLI::App app{"mxport: export Megatron-Core MoE checkpoints to Hugging Face safetensors"};
  app.require_subcommand(1);

  mxport::cli::InspectOptions inspect;
  CLI::App* inspect_cmd =
      app.add_subcommand("inspect", "List the tensors and entries of a checkpoint file");
  inspect_cmd->add_option("file", inspect.path, "torch.save (.pt) or .safetensors file")
      ->required();
  inspect_cmd->add_flag("--json", inspect.json, "Print a JSON report");

  CLI11_PARSE(app, argc, argv);

  absl::Status status = absl::OkStatus();
  if (*inspect_cmd) status = mxport::cli::RunInspect(inspect, std::cout);
  if (!status.ok()) {
    std::cerr << "mxport: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
