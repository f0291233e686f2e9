#include <map>

#include "common/export/plan.h"

namespace mxport::exporter {

OrderedJson ExportPlan::ToJson() const {
  OrderedJson j;
  j["architecture"] = std::string(arch->architecture);
  OrderedJson model;
  model["num_layers"] = config.num_layers;
  model["hidden_size"] = config.hidden_size;
  model["num_attention_heads"] = config.num_attention_heads;
  model["num_query_groups"] = config.num_query_groups;
  model["kv_channels"] = config.kv_channels;
  model["num_experts"] = config.num_experts;
  model["padded_vocab_size"] = config.padded_vocab_size;
  model["vocab_size"] = config.vocab_size;
  j["model"] = model;
  OrderedJson layout;
  layout["tp"] = config.tp;
  layout["pp"] = config.pp;
  layout["ep"] = config.ep;
  layout["etp"] = config.etp;
  layout["vpp"] = config.vpp;
  layout["rank_files"] = sources.size();
  j["layout"] = layout;
  OrderedJson src = OrderedJson::array();
  for (const SourceFile& s : sources) {
    src.push_back({{"path", s.path}, {"tp", s.tp.value()}, {"pp", s.pp.value()},
                   {"ep", s.ep.value()}});
  }
  j["sources"] = src;
  if (!amax_sources.empty()) {
    OrderedJson amax = OrderedJson::array();
    for (const AmaxSource& a : amax_sources) {
      amax.push_back({{"key", a.key}, {"source", a.source}, {"vp", a.vp},
                      {"input", a.input}, {"weights", a.weights}});
    }
    j["amax_sources"] = amax;
  }
  std::vector<std::vector<const Piece*>> by_tensor(tensors.size());
  for (const Piece& p : pieces) by_tensor[p.tensor].push_back(&p);
  OrderedJson out_files = OrderedJson::array();
  for (const OutputFile& f : files) {
    OrderedJson of;
    of["name"] = f.name;
    of["data_bytes"] = f.data_bytes;
    OrderedJson ts = OrderedJson::array();
    for (int ti : f.tensors) {
      const HfTensor& t = tensors[ti];
      OrderedJson tj;
      tj["name"] = t.name;
      tj["dtype"] = std::string(DTypeName(t.dtype));
      tj["shape"] = t.shape;
      tj["offset"] = t.offset;
      tj["bytes"] = t.bytes;
      if (t.quant_part != QuantPart::kNone) {
        OrderedJson q;
        q["algo"] = std::string(GetQuantAlgoInfo(t.quant).name);
        absl::string_view part = QuantPartName(t.quant_part);
        if (t.quant_part == QuantPart::kWeightScale2 && t.scalar == ScalarScale::kWeightScale) {
          part = "weight_scale";
        } else if (t.quant_part == QuantPart::kWeightScale2 &&
                   t.scalar == ScalarScale::kInputScale) {
          part = "input_scale";
        }
        q["part"] = std::string(part);
        q["weight"] = t.quant_weight;
        if (t.quant_part == QuantPart::kWeight) {
          q["stat_group"] = t.stat_group;
          q["source_dtype"] = std::string(DTypeName(t.source_dtype));
          q["source_cols"] = t.source_cols;
        }
        tj["quantization"] = std::move(q);
      }
      OrderedJson ps = OrderedJson::array();
      for (const Piece* p : by_tensor[ti]) {
        ps.push_back({{"source", p->source}, {"vp", p->vp}, {"key", p->key},
                      {"src", {p->src_row, p->src_col, p->rows, p->cols}},
                      {"src_shape", {p->src_rows, p->src_cols}},
                      {"dst", {p->dst_row, p->dst_col}}});
      }
      tj["pieces"] = std::move(ps);
      ts.push_back(std::move(tj));
    }
    of["tensors"] = std::move(ts);
    out_files.push_back(std::move(of));
  }
  j["files"] = std::move(out_files);
  j["total_bytes"] = total_bytes;
  return j;
}

OrderedJson ExportPlan::IndexJson() const {
  std::map<std::string, std::string> weight_map;
  for (const HfTensor& t : tensors) weight_map[t.name] = files[t.file].name;
  OrderedJson j;
  j["metadata"] = {{"total_size", total_bytes}};
  OrderedJson wm = OrderedJson::object();
  for (const auto& [name, file] : weight_map) wm[name] = file;
  j["weight_map"] = std::move(wm);
  return j;
}

}  // namespace mxport::exporter
