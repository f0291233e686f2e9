// Discovery and scanning of a legacy (`--ckpt-format torch`) Megatron checkpoint.
//
// A save dir holds `latest_checkpointed_iteration.txt` (an iteration number or `release`) and
// iteration dirs `iter_{:07d}` / `release`, each with one rank dir per writing rank:
// `mp_rank_{tp:02d}[_{pp:03d} iff PP>1][_{ep:03d} iff EP>1]/model_optim_rng.pt`. Discover
// accepts the save dir or an iteration dir. Rank dir names carry only numbers; which number is
// PP and which EP follows from the args, so ranks are resolved once the config is known.
//
// ScanRankFile reads one rank file's pickle (no tensor bytes) and reports its manifest: every
// model tensor's key, dtype and shape per virtual stage (`model` or `model0..model{V-1}`),
// with TE `_extra_state` entries skipped, plus the args and checkpoint version. Files with
// checkpoint_version < 2 (old QKV ordering) are rejected. Errors name the file.
#ifndef MXPORT_COMMON_MEGATRON_SOURCE_H_
#define MXPORT_COMMON_MEGATRON_SOURCE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/tensor.h"
#include "common/fs/file_system.h"
#include "common/megatron/ids.h"
#include "common/megatron/model_config.h"

namespace mxport::megatron {

struct RankFile {
  std::string dir_name;  // "mp_rank_01_002"
  std::string path;      // ".../mp_rank_01_002/model_optim_rng.pt"
  std::vector<int64_t> numbers;  // the numbers in dir_name
  TpRank tp;
  PpRank pp;
  EpRank ep;
};

struct LegacyCheckpoint {
  std::string iteration_dir;
  std::optional<int64_t> iteration;  // nullopt for `release`
  std::vector<RankFile> files;       // sorted by dir name
};

// `iteration` picks iter_{:07d} instead of the tracker's choice.
absl::StatusOr<LegacyCheckpoint> DiscoverLegacyCheckpoint(
    fs::FileSystem& fs, const std::string& dir, std::optional<int64_t> iteration = std::nullopt);

// Assigns tp/pp/ep to every file from its numbers and the config's PP and EP sizes, and checks
// each rank lies inside the layout. Re-sorts files by (pp, ep, tp).
absl::Status ResolveRanks(const ModelConfig& config, LegacyCheckpoint& checkpoint);

struct ManifestEntry {
  VpRank vp;
  std::string key;  // model key, e.g. "decoder.layers.0.mlp.router.weight"
  TensorDescriptor desc;
};

struct RankManifest {
  std::string path;
  double checkpoint_version = 0;
  std::vector<ManifestEntry> entries;
};

// Reads the args of one rank file (typically the first) into a config.
absl::StatusOr<ModelConfig> ReadModelConfig(fs::FileSystem& fs, const std::string& path);

absl::StatusOr<RankManifest> ScanRankFile(fs::FileSystem& fs, const std::string& path,
                                          int64_t vpp);

// The `model` dict key holding virtual stage `vp` ("model" without VPP, else "model<vp>").
std::string ModelChunkKey(int64_t vpp, int64_t vp);

}  // namespace mxport::megatron

#endif  // MXPORT_COMMON_MEGATRON_SOURCE_H_
