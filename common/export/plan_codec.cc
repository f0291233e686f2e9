#include "common/export/plan_codec.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/json/json.h"

namespace mxport::exporter {
namespace {

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("plan: ", what));
}

template <typename T>
absl::StatusOr<T> Get(const Json& j, const char* key) {
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    return Bad(absl::StrCat("field '", key, "': ", e.what()));
  }
}

}  // namespace

std::string EncodePlan(const ExportPlan& plan) {
  Json j;
  j["architecture"] = std::string(plan.arch->architecture);
  j["vpp"] = plan.config.vpp;
  j["total_bytes"] = plan.total_bytes;
  Json sources = Json::array();
  for (const SourceFile& s : plan.sources) {
    sources.push_back({s.path, s.dir_name, s.tp.value(), s.pp.value(), s.ep.value()});
  }
  j["sources"] = std::move(sources);
  Json tensors = Json::array();
  for (const HfTensor& t : plan.tensors) {
    Json tj = {t.name, std::string(DTypeName(t.dtype)), t.shape, t.file, t.offset,
               t.bytes, static_cast<int>(t.role), t.layer};
    if (t.quant_part != QuantPart::kNone) {  // absent in unquantized (and older) plans
      tj.push_back({static_cast<int>(t.quant), static_cast<int>(t.quant_part), t.quant_weight,
                    t.stat_group, std::string(DTypeName(t.source_dtype)), t.source_cols});
      if (t.scalar != ScalarScale::kWeightScale2) {
        tj.back().push_back(static_cast<int>(t.scalar));
      }
    }
    tensors.push_back(std::move(tj));
  }
  j["tensors"] = std::move(tensors);
  Json pieces = Json::array();
  for (const Piece& p : plan.pieces) {
    pieces.push_back({p.tensor, p.source, p.vp, p.key, p.src_rows, p.src_cols, p.src_row,
                      p.src_col, p.rows, p.cols, p.dst_row, p.dst_col});
  }
  j["pieces"] = std::move(pieces);
  Json files = Json::array();
  for (const OutputFile& f : plan.files) files.push_back({f.name, f.tensors, f.data_bytes});
  j["files"] = std::move(files);
  if (!plan.amax_sources.empty()) {  // absent in plans without quantizer state
    Json amax = Json::array();
    for (const AmaxSource& a : plan.amax_sources) {
      amax.push_back(
          {a.input, a.weights, a.source, a.vp, a.key, std::string(DTypeName(a.dtype))});
    }
    j["amax_sources"] = std::move(amax);
  }
  return j.dump();
}

absl::StatusOr<ExportPlan> DecodePlan(absl::string_view text) {
  ASSIGN_OR_RETURN(Json j, ParseJson(text, "plan"));
  ExportPlan plan;
  ASSIGN_OR_RETURN(std::string arch, Get<std::string>(j, "architecture"));
  ASSIGN_OR_RETURN(plan.arch, FindArch(arch));
  ASSIGN_OR_RETURN(plan.config.vpp, Get<int64_t>(j, "vpp"));
  ASSIGN_OR_RETURN(plan.total_bytes, Get<uint64_t>(j, "total_bytes"));
  try {
    for (const Json& s : j.at("sources")) {
      plan.sources.push_back({s.at(0).get<std::string>(), s.at(1).get<std::string>(),
                              megatron::TpRank(s.at(2).get<int64_t>()),
                              megatron::PpRank(s.at(3).get<int64_t>()),
                              megatron::EpRank(s.at(4).get<int64_t>())});
    }
    for (const Json& t : j.at("tensors")) {
      HfTensor h;
      h.name = t.at(0).get<std::string>();
      auto dtype = DTypeFromTorchName(t.at(1).get<std::string>());
      if (!dtype.ok()) return Bad(dtype.status().message());
      h.dtype = *dtype;
      h.shape = t.at(2).get<std::vector<int64_t>>();
      h.file = t.at(3).get<int>();
      h.offset = t.at(4).get<uint64_t>();
      h.bytes = t.at(5).get<uint64_t>();
      h.role = static_cast<Role>(t.at(6).get<int>());
      h.layer = t.at(7).get<int64_t>();
      if (t.size() > 8) {
        const Json& q = t.at(8);
        const int algo = q.at(0).get<int>();
        const int part = q.at(1).get<int>();
        if (algo < 0 || algo >= static_cast<int>(AllQuantAlgos().size()) || part < 0 ||
            part > static_cast<int>(QuantPart::kScaleInv)) {
          return Bad(absl::StrCat("tensor ", h.name, " has a bad quantization"));
        }
        h.quant = static_cast<QuantAlgo>(algo);
        h.quant_part = static_cast<QuantPart>(part);
        h.quant_weight = q.at(2).get<int>();
        h.stat_group = q.at(3).get<int>();
        auto source = DTypeFromTorchName(q.at(4).get<std::string>());
        if (!source.ok()) return Bad(source.status().message());
        h.source_dtype = *source;
        h.source_cols = q.at(5).get<int64_t>();
        if (q.size() > 6) {
          const int scalar = q.at(6).get<int>();
          if (scalar < 0 || scalar > static_cast<int>(ScalarScale::kInputScale)) {
            return Bad(absl::StrCat("tensor ", h.name, " has a bad scalar kind"));
          }
          h.scalar = static_cast<ScalarScale>(scalar);
        }
      }
      plan.tensors.push_back(std::move(h));
    }
    for (const Json& p : j.at("pieces")) {
      Piece x;
      x.tensor = p.at(0).get<int>();
      x.source = p.at(1).get<int>();
      x.vp = p.at(2).get<int64_t>();
      x.key = p.at(3).get<std::string>();
      x.src_rows = p.at(4).get<int64_t>();
      x.src_cols = p.at(5).get<int64_t>();
      x.src_row = p.at(6).get<int64_t>();
      x.src_col = p.at(7).get<int64_t>();
      x.rows = p.at(8).get<int64_t>();
      x.cols = p.at(9).get<int64_t>();
      x.dst_row = p.at(10).get<int64_t>();
      x.dst_col = p.at(11).get<int64_t>();
      plan.pieces.push_back(std::move(x));
    }
    for (const Json& f : j.at("files")) {
      plan.files.push_back({f.at(0).get<std::string>(), f.at(1).get<std::vector<int>>(),
                            f.at(2).get<uint64_t>()});
    }
    if (j.contains("amax_sources")) {
      for (const Json& a : j.at("amax_sources")) {
        auto dtype = DTypeFromTorchName(a.at(5).get<std::string>());
        if (!dtype.ok()) return Bad(dtype.status().message());
        plan.amax_sources.push_back({a.at(0).get<bool>(), a.at(1).get<std::vector<std::string>>(),
                                     a.at(2).get<int>(), a.at(3).get<int64_t>(),
                                     a.at(4).get<std::string>(), *dtype});
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return Bad(e.what());
  }
  for (const AmaxSource& a : plan.amax_sources) {
    if (a.source < 0 || a.source >= static_cast<int>(plan.sources.size())) {
      return Bad(absl::StrCat("amax source ", a.key, " names file ", a.source));
    }
  }
  // Every index must point inside the plan.
  const int tensors = static_cast<int>(plan.tensors.size());
  for (const HfTensor& t : plan.tensors) {
    if (t.file < 0 || t.file >= static_cast<int>(plan.files.size())) {
      return Bad(absl::StrCat("tensor ", t.name, " names file ", t.file));
    }
    if (t.quant_part != QuantPart::kNone &&
        (t.quant_weight < 0 || t.quant_weight >= tensors ||
         plan.tensors[t.quant_weight].quant_part != QuantPart::kWeight ||
         (t.quant_part == QuantPart::kWeight &&
          (t.stat_group < 0 || t.stat_group >= tensors || t.source_cols <= 0)))) {
      return Bad(absl::StrCat("tensor ", t.name, " has a bad quantization"));
    }
  }
  for (const Piece& p : plan.pieces) {
    if (p.tensor < 0 || p.tensor >= tensors || p.source < 0 ||
        p.source >= static_cast<int>(plan.sources.size()) || p.rows < 0 || p.cols < 0 ||
        p.src_row < 0 || p.src_col < 0 || p.src_row + p.rows > p.src_rows ||
        p.src_col + p.cols > p.src_cols || p.dst_row < 0 || p.dst_col < 0 ||
        p.dst_row + p.rows > plan.tensors[p.tensor].rows() ||
        p.dst_col + p.cols > plan.tensors[p.tensor].piece_cols()) {
      return Bad(absl::StrCat("piece of key ", p.key, " lies outside its tensors"));
    }
  }
  for (const OutputFile& f : plan.files) {
    for (int t : f.tensors) {
      if (t < 0 || t >= tensors) return Bad(absl::StrCat("file ", f.name, " names tensor ", t));
    }
  }
  return plan;
}

}  // namespace mxport::exporter
