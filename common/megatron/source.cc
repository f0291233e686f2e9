#include "common/megatron/source.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/status_macros.h"
#include "common/torch/torch_file.h"

namespace mxport::megatron {
namespace {

constexpr absl::string_view kTracker = "latest_checkpointed_iteration.txt";
constexpr absl::string_view kRankPrefix = "mp_rank_";
constexpr absl::string_view kModelFile = "model_optim_rng.pt";

bool IsExtraState(absl::string_view key) {
  return absl::EndsWith(key, "._extra_state") || key == "_extra_state";
}

// "mp_rank_01_002" -> {1, 2}; nullopt when not a rank dir.
std::optional<std::vector<int64_t>> ParseRankDir(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, kRankPrefix)) return std::nullopt;
  std::vector<int64_t> numbers;
  for (absl::string_view part : absl::StrSplit(name, '_')) {
    int64_t n = 0;
    if (part.empty() || !absl::SimpleAtoi(part, &n) || n < 0) return std::nullopt;
    numbers.push_back(n);
  }
  if (numbers.empty() || numbers.size() > 3) return std::nullopt;
  return numbers;
}

absl::StatusOr<bool> HasRankDirs(fs::FileSystem& fs, const std::string& dir) {
  auto listed = fs.ListDir(dir);
  if (!listed.ok()) {
    return absl::NotFoundError(absl::StrCat("checkpoint directory ", dir,
                                            " cannot be read: ", listed.status().message()));
  }
  const std::vector<std::string>& names = *listed;
  return std::any_of(names.begin(), names.end(),
                     [](const std::string& n) { return ParseRankDir(n).has_value(); });
}

absl::StatusOr<const pickle::Value*> RootDict(const torch::TorchFile& file) {
  const pickle::Value& root = file.root();
  if (root.kind != pickle::Kind::kDict) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.name(), ": top level is not a dict (not a Megatron rank file)"));
  }
  return &root;
}

}  // namespace

std::string ModelChunkKey(int64_t vpp, int64_t vp) {
  return vpp > 1 ? absl::StrCat("model", vp) : "model";
}

absl::StatusOr<LegacyCheckpoint> DiscoverLegacyCheckpoint(fs::FileSystem& fs,
                                                          const std::string& dir,
                                                          std::optional<int64_t> iteration) {
  LegacyCheckpoint out;
  ASSIGN_OR_RETURN(bool is_iteration_dir, HasRankDirs(fs, dir));
  if (iteration.has_value()) {
    out.iteration = iteration;
    out.iteration_dir = fs::JoinPath(dir, absl::StrFormat("iter_%07d", *iteration));
  } else if (is_iteration_dir) {
    out.iteration_dir = dir;
  } else {
    const std::string tracker = fs::JoinPath(dir, kTracker);
    auto text = fs::ReadFileToString(fs, tracker);
    if (!text.ok()) {
      return absl::NotFoundError(absl::StrCat(
          dir, ": not a Megatron checkpoint: no ", kTracker, " and no ", kRankPrefix,
          "* directories"));
    }
    const absl::string_view value = absl::StripAsciiWhitespace(*text);
    int64_t it = 0;
    if (value == "release") {
      out.iteration_dir = fs::JoinPath(dir, "release");
    } else if (absl::SimpleAtoi(value, &it) && it >= 0) {
      out.iteration = it;
      out.iteration_dir = fs::JoinPath(dir, absl::StrFormat("iter_%07d", it));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          tracker, ": expected an iteration number or 'release', found '", value, "'"));
    }
  }
  auto names = fs.ListDir(out.iteration_dir);
  if (!names.ok()) {
    return absl::NotFoundError(absl::StrCat("iteration directory ", out.iteration_dir,
                                            " is missing: ", names.status().message()));
  }
  for (const std::string& name : *names) {
    std::optional<std::vector<int64_t>> numbers = ParseRankDir(name);
    if (!numbers.has_value()) continue;
    RankFile file;
    file.dir_name = name;
    file.path = fs::JoinPath(fs::JoinPath(out.iteration_dir, name), kModelFile);
    file.numbers = *numbers;
    if (!fs.Exists(file.path).ok()) {
      return absl::NotFoundError(absl::StrCat("rank directory ", name, " has no ", kModelFile,
                                              " (", file.path, ")"));
    }
    out.files.push_back(std::move(file));
  }
  if (out.files.empty()) {
    return absl::NotFoundError(absl::StrCat(out.iteration_dir, ": no ", kRankPrefix,
                                            "* rank directories"));
  }
  return out;
}

absl::Status ResolveRanks(const ModelConfig& config, LegacyCheckpoint& checkpoint) {
  const size_t want = 1 + (config.pp > 1) + (config.ep > 1);
  for (RankFile& f : checkpoint.files) {
    if (f.numbers.size() != want) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rank directory ", f.dir_name, " has ", f.numbers.size(), " numbers, but TP=",
          config.tp, " PP=", config.pp, " EP=", config.ep, " names rank directories with ",
          want));
    }
    size_t i = 0;
    f.tp = TpRank(f.numbers[i++]);
    f.pp = PpRank(config.pp > 1 ? f.numbers[i++] : 0);
    f.ep = EpRank(config.ep > 1 ? f.numbers[i++] : 0);
    if (f.tp.value() >= config.tp || f.pp.value() >= config.pp || f.ep.value() >= config.ep) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rank directory ", f.dir_name, " lies outside TP=", config.tp, " PP=", config.pp,
          " EP=", config.ep));
    }
  }
  std::sort(checkpoint.files.begin(), checkpoint.files.end(),
            [](const RankFile& a, const RankFile& b) {
              return std::tie(a.pp, a.ep, a.tp) < std::tie(b.pp, b.ep, b.tp);
            });
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> ReadModelConfig(fs::FileSystem& fs, const std::string& path) {
  ASSIGN_OR_RETURN(auto file, torch::TorchFile::Open(fs, path));
  ASSIGN_OR_RETURN(const pickle::Value* root, RootDict(*file));
  const pickle::Value* args = root->Get("args");
  if (args == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no 'args' entry"));
  }
  return ModelConfig::FromArgs(*args, path);
}

absl::StatusOr<RankManifest> ScanRankFile(fs::FileSystem& fs, const std::string& path,
                                          int64_t vpp) {
  ASSIGN_OR_RETURN(auto file, torch::TorchFile::Open(fs, path));
  ASSIGN_OR_RETURN(const pickle::Value* root, RootDict(*file));
  RankManifest manifest;
  manifest.path = path;
  const pickle::Value* version = root->Get("checkpoint_version");
  if (version == nullptr ||
      (version->kind != pickle::Kind::kFloat && version->kind != pickle::Kind::kInt)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no checkpoint_version"));
  }
  manifest.checkpoint_version =
      version->kind == pickle::Kind::kFloat ? version->number : version->integer;
  if (manifest.checkpoint_version < 2.0) {
    return absl::UnimplementedError(absl::StrCat(
        path, ": checkpoint_version ", manifest.checkpoint_version,
        " uses the pre-2.0 QKV ordering; convert it with a newer Megatron first"));
  }
  for (int64_t vp = 0; vp < vpp; ++vp) {
    const std::string chunk_key = ModelChunkKey(vpp, vp);
    const pickle::Value* chunk = root->Get(chunk_key);
    if (chunk == nullptr || chunk->kind != pickle::Kind::kDict) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": no '", chunk_key, "' state dict"));
    }
    for (size_t i = 0; i + 1 < chunk->items.size(); i += 2) {
      const pickle::Value& key = *chunk->items[i];
      const pickle::Value& value = *chunk->items[i + 1];
      if (key.kind != pickle::Kind::kString) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": non-string key in '",
                                                       chunk_key, "'"));
      }
      if (IsExtraState(key.str)) continue;
      if (value.kind != pickle::Kind::kTensor) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": '", chunk_key, "/", key.str, "' is not a tensor"));
      }
      manifest.entries.push_back(
          {VpRank(vp), key.str, torch::TorchFile::Describe(*value.tensor)});
    }
  }
  return manifest;
}

}  // namespace mxport::megatron
