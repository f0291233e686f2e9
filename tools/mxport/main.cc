// mxport: the command-line entry point. Flags become Options; each subcommand's logic lives in
// its own *_command.cc.
#include <unistd.h>

#include <iostream>

#include "CLI/CLI.hpp"
#include "tools/mxport/client_commands.h"
#include "tools/mxport/inspect_command.h"
#include "tools/mxport/local_run_command.h"
#include "tools/mxport/export_command.h"
#include "tools/mxport/plan_command.h"

// The --quantization modes (common/export/quantize_plan.h).
constexpr char kQuantizationHelp[] =
    "none | nvfp4 (from the weights; input scales where the checkpoint has ModelOpt activation "
    "amax, else W4A16) | fp8 (per-tensor FP8 from the weights; input scales from ModelOpt "
    "activation amax, which every quantized module needs) | fp8_block (128x128, dynamic "
    "activations) | checkpoint (NVFP4 from a ModelOpt calibration) | checkpoint_fp8 (per-tensor "
    "FP8 from a ModelOpt calibration)";

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
    cmd->add_option("--quantization", plan.request.quantization.mode, kQuantizationHelp);
    cmd->add_option("--quant-exclude", plan.request.quantization.exclude,
                    "HF module pattern left unquantized, e.g. '*.self_attn.*' (repeatable)")
        ->take_all();
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
  local_cmd->add_option("--transport", local.transport, "tcp | nccl (worker i on GPU i)");
  local_cmd->add_option("--quantization", local.quantization, kQuantizationHelp);
  local_cmd->add_option("--worker-arg", local.worker_args,
                        "Flag for every worker, e.g. --worker-arg=--max-read-rate=1000000")
      ->allow_extra_args(false);
  local_cmd->add_option("--job-id", local.job_id, "Job id (default local-<time>)");

  // The job API over gRPC (client_commands.h).
  namespace cli = mxport::cli;
  auto add_client = [&](CLI::App* cmd, cli::ClientOptions& client) {
    cmd->add_option("--coordinator", client.coordinator,
                    "host:port (default: $MXPORT_COORDINATOR, else 127.0.0.1:50051)");
    cmd->add_option("--timeout", client.timeout_seconds, "deadline of each call, seconds");
    cmd->add_flag("--json", client.json, "Print JSON (the REST API's form)");
  };
  cli::SubmitOptions submit;
  CLI::App* submit_cmd = app.add_subcommand("submit", "Submit an export job to a coordinator");
  add_client(submit_cmd, submit.client);
  submit_cmd->add_option("--spec", submit.spec_file,
                         "JobSpec file: JSON (proto field names) or simple YAML; flags override");
  submit_cmd->add_option("--job-id", submit.job_id, "Job id (submit is idempotent on it)");
  submit_cmd->add_option("--source", submit.source, "Megatron save dir");
  submit_cmd->add_option("--output", submit.output, "Output directory");
  submit_cmd->add_option("--hf-config", submit.hf_config, "HF directory (config.json, sidecars)");
  submit_cmd->add_option("--arch", submit.architecture, "HF architecture");
  submit_cmd->add_option("--iteration", submit.iteration, "Iteration (default: the tracker's)");
  submit_cmd->add_option("--workers", submit.workers, "Number of workers expected");
  submit_cmd->add_option("--max-shard-size", submit.max_shard_size, "e.g. 5GB");
  submit_cmd->add_option("--transport", submit.transport, "auto | nccl | tcp");
  submit_cmd->add_option("--quantization", submit.quantization, kQuantizationHelp);
  submit_cmd->add_option("--output-dtype", submit.output_dtype, "e.g. bfloat16");
  submit_cmd->add_option("--label", submit.labels, "key=value (repeatable)")->take_all();

  cli::StatusOptions status_options;
  CLI::App* status_cmd = app.add_subcommand("status", "Show a job: phase, progress, workers");
  add_client(status_cmd, status_options.client);
  status_cmd->add_option("job", status_options.job_id, "Job id")->required();

  cli::WatchOptions watch;
  CLI::App* watch_cmd = app.add_subcommand(
      "watch", "Follow a job's events and progress; exit 0 SUCCEEDED, 3 FAILED, 4 CANCELLED");
  add_client(watch_cmd, watch.client);
  watch_cmd->add_option("job", watch.job_id, "Job id")->required();
  watch_cmd->add_option("--reconnects", watch.reconnect.max_reconnects,
                        "Reconnect attempts in a row when the stream breaks");

  cli::ListOptions list;
  CLI::App* list_cmd = app.add_subcommand("list", "List jobs");
  add_client(list_cmd, list.client);
  list_cmd->add_option("--label", list.labels, "key=value the jobs must carry (repeatable)")
      ->take_all();

  cli::CancelOptions cancel;
  CLI::App* cancel_cmd = app.add_subcommand("cancel", "Cancel a job");
  add_client(cancel_cmd, cancel.client);
  cancel_cmd->add_option("job", cancel.job_id, "Job id")->required();
  cancel_cmd->add_option("--reason", cancel.reason, "Why (kept in the job's message)");

  cli::EventsOptions events;
  CLI::App* events_cmd =
      app.add_subcommand("events", "Print a job's numbered events (alias: logs)");
  events_cmd->alias("logs");
  add_client(events_cmd, events.client);
  events_cmd->add_option("job", events.job_id, "Job id")->required();
  events_cmd->add_option("--after", events.after_seq, "Only events after this seq");
  events_cmd->add_flag("--follow", events.follow, "Keep printing until the job ends");

  CLI11_PARSE(app, argc, argv);
  watch.tty = isatty(STDOUT_FILENO) == 1;
  if (*submit_cmd) return cli::RunSubmit(submit, std::cout, std::cerr);
  if (*status_cmd) return cli::RunStatus(status_options, std::cout, std::cerr);
  if (*watch_cmd) return cli::RunWatch(watch, std::cout, std::cerr);
  if (*list_cmd) return cli::RunList(list, std::cout, std::cerr);
  if (*cancel_cmd) return cli::RunCancel(cancel, std::cout, std::cerr);
  if (*events_cmd) return cli::RunEvents(events, std::cout, std::cerr);
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
