// mxport: the command-line entry point. Flags become Options; each subcommand's logic lives in
// its own *_command.cc.
#include <iostream>

#include "CLI/CLI.hpp"
#include "tools/mxport/inspect_command.h"
#include "tools/mxport/local_run_command.h"
#include "tools/mxport/export_command.h"
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

  int64_t iteration = -1;
  auto add_plan_flags = [&](CLI::App* cmd, mxport::cli::PlanCommandOptions& plan) {
    cmd->add_option("--source", plan.request.source_dir, "Megatron save dir or iteration dir")
        ->required();
    cmd->add_option("--hf-config", plan.request.hf_config_dir,
                    "HF directory with config.json (checked against the args) and sidecars");
    cmd->add_option("--arch", plan.request.architecture,
                    "HF architecture, e.g. Qwen3MoeForCausalLM (default: from --hf-config)");
    cmd->add_option("--iteration", iteration, "Iteration to export (default: the tracker's)");
    cmd->add_option("--max-shard-size", plan.max_shard_size, "e.g. 5GB (default 5GiB)");
    cmd->add_option("--expert-map", plan.expert_map_file,
                    "JSON list of global expert ids per EP rank");
  };

  mxport::cli::PlanCommandOptions plan;
  CLI::App* plan_cmd = app.add_subcommand(
      "plan", "Dry run: check a Megatron checkpoint and show the export it would produce");
  add_plan_flags(plan_cmd, plan);
  plan_cmd->add_flag("--json", plan.json, "Print the whole plan as JSON");

  mxport::cli::ExportCommandOptions export_options;
  CLI::App* export_cmd =
      app.add_subcommand("export", "Export a Megatron checkpoint on this machine, one process");
  add_plan_flags(export_cmd, export_options.plan);
  export_cmd->add_option("--output", export_options.output_dir, "Output directory")->required();
  export_cmd->add_flag("--overwrite", export_options.overwrite, "Replace an existing export");

  mxport::cli::LocalRunOptions local;
  CLI::App* local_cmd = app.add_subcommand(
      "local-run", "Run a coordinator and N workers on this machine and export");
  local_cmd->add_option("--source", local.source, "Megatron save dir")->required();
  local_cmd->add_option("--output", local.output, "Output directory")->required();
  local_cmd->add_option("--workers", local.workers, "Number of worker processes");
  local_cmd->add_option("--hf-config", local.hf_config, "HF directory (config.json, sidecars)");
  local_cmd->add_option("--arch", local.architecture, "HF architecture");
  local_cmd->add_option("--max-shard-size", local.max_shard_size, "e.g. 5GB");
  local_cmd->add_option("--transport", local.transport, "tcp (nccl needs GPU workers)");
  local_cmd->add_option("--job-id", local.job_id, "Job id (default local-<time>)");

  CLI11_PARSE(app, argc, argv);
  if (iteration >= 0) {
    plan.request.iteration = iteration;
    export_options.plan.request.iteration = iteration;
  }

  absl::Status status = absl::OkStatus();
  if (*inspect_cmd) status = mxport::cli::RunInspect(inspect, std::cout);
  if (*plan_cmd) status = mxport::cli::RunPlan(plan, std::cout);
  if (*export_cmd) status = mxport::cli::RunExport(export_options, std::cout);
  if (*local_cmd) status = mxport::cli::RunLocal(local, std::cout);
  if (!status.ok()) {
    std::cerr << "mxport: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
