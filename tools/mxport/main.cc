// mxport: the command-line entry point. Flags become Options; each subcommand's logic lives in
// its own *_command.cc.
#include <iostream>

#include "CLI/CLI.hpp"
#include "tools/mxport/inspect_command.h"
#include "tools/mxport/plan_command.h"

int main(int argc, char** argv) {
  CLI::App app{"mxport: export Megatron-Core MoE checkpoints to Hugging Face safetensors"};
  app.require_subcommand(1);

  mxport::cli::InspectOptions inspect;
  CLI::App* inspect_cmd =
      app.add_subcommand("inspect", "List the tensors and entries of a checkpoint file");
  inspect_cmd->add_option("file", inspect.path, "torch.save (.pt) or .safetensors file")
      ->required();
  inspect_cmd->add_flag("--json", inspect.json, "Print a JSON report");

  mxport::cli::PlanCommandOptions plan;
  int64_t iteration = -1;
  CLI::App* plan_cmd = app.add_subcommand(
      "plan", "Dry run: check a Megatron checkpoint and show the export it would produce");
  plan_cmd->add_option("--source", plan.request.source_dir,
                       "Megatron save dir or iteration dir")->required();
  plan_cmd->add_option("--hf-config", plan.request.hf_config_dir,
                       "HF directory with config.json (checked against the args)");
  plan_cmd->add_option("--arch", plan.request.architecture, "HF architecture, e.g. "
                       "Qwen3MoeForCausalLM (default: from --hf-config)");
  plan_cmd->add_option("--iteration", iteration, "Iteration to export (default: the tracker's)");
  plan_cmd->add_option("--max-shard-size", plan.max_shard_size, "e.g. 5GB (default 5GiB)");
  plan_cmd->add_option("--expert-map", plan.expert_map_file,
                       "JSON list of global expert ids per EP rank");
  plan_cmd->add_flag("--json", plan.json, "Print the whole plan as JSON");

  CLI11_PARSE(app, argc, argv);
  if (iteration >= 0) plan.request.iteration = iteration;

  absl::Status status = absl::OkStatus();
  if (*inspect_cmd) status = mxport::cli::RunInspect(inspect, std::cout);
  if (*plan_cmd) status = mxport::cli::RunPlan(plan, std::cout);
  if (!status.ok()) {
    std::cerr << "mxport: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
