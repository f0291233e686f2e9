#include "tools/mxport/inspect_command.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/status_macros.h"
#include "common/base/tensor.h"
#include "common/safetensors/reader.h"
#include "common/torch/torch_file.h"

namespace mxport::cli {
namespace {

using pickle::Kind;
using pickle::Value;

OrderedJson TensorJson(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                       uint64_t bytes) {
  OrderedJson t;
  t["name"] = name;
  t["dtype"] = std::string(DTypeName(dtype));
  t["shape"] = shape;
  t["bytes"] = bytes;
  return t;
}

bool IsScalar(const Value& v) {
  switch (v.kind) {
    case Kind::kNone: case Kind::kBool: case Kind::kInt: case Kind::kBigInt: case Kind::kFloat:
    case Kind::kString: case Kind::kDType: case Kind::kObject: case Kind::kGlobal:
      return true;
    default:
      return false;
  }
}

// Top-level scalars, and the attributes of the saved `args` Namespace.
void AddEntries(const Value& root, OrderedJson& entries) {
  if (root.kind != Kind::kDict) return;
  for (size_t i = 0; i + 1 < root.items.size(); i += 2) {
    const std::string key = pickle::KeyToPathComponent(*root.items[i]);
    const Value& v = *root.items[i + 1];
    if (key == "args" && v.kind == Kind::kObject && v.state != nullptr &&
        v.state->kind == Kind::kDict) {
      for (size_t j = 0; j + 1 < v.state->items.size(); j += 2) {
        entries["args." + pickle::KeyToPathComponent(*v.state->items[j])] =
            pickle::ShortRepr(*v.state->items[j + 1], 6, 2);
      }
    } else if (IsScalar(v)) {
      entries[key] = pickle::ShortRepr(v, 6, 2);
    }
  }
}

absl::StatusOr<OrderedJson> InspectTorch(fs::FileSystem& fs, const std::string& path) {
  ASSIGN_OR_RETURN(auto file, torch::TorchFile::Open(fs, path));
  OrderedJson report;
  report["file"] = path;
  report["format"] = "torch.save";
  report["archive"] = file->archive_prefix();
  OrderedJson tensors = OrderedJson::array();
  uint64_t total = 0;
  for (const torch::TensorEntry& entry : file->tensors()) {
    ASSIGN_OR_RETURN(uint64_t bytes, torch::TorchFile::Describe(*entry.tensor).NumBytes());
    total += bytes;
    tensors.push_back(TensorJson(entry.path, entry.tensor->dtype, entry.tensor->shape, bytes));
  }
  report["tensors"] = std::move(tensors);
  report["total_bytes"] = total;
  OrderedJson entries = OrderedJson::object();
  AddEntries(file->root(), entries);
  report["entries"] = std::move(entries);
  return report;
}

absl::StatusOr<OrderedJson> InspectSafetensors(fs::FileSystem& fs, const std::string& path) {
  ASSIGN_OR_RETURN(auto reader, safetensors::Reader::Open(fs, path));
  OrderedJson report;
  report["file"] = path;
  report["format"] = "safetensors";
  OrderedJson tensors = OrderedJson::array();
  for (const safetensors::TensorEntry& e : reader->entries()) {
    tensors.push_back(TensorJson(e.name, e.dtype, e.shape, e.num_bytes()));
  }
  report["tensors"] = std::move(tensors);
  report["total_bytes"] = reader->header().data_size();
  OrderedJson metadata = OrderedJson::object();
  for (const auto& [k, v] : reader->metadata()) metadata[k] = v;
  report["metadata"] = std::move(metadata);
  return report;
}

void PrintText(const OrderedJson& report, std::ostream& out) {
  const auto& tensors = report["tensors"];
  out << report["file"].get<std::string>() << ": " << report["format"].get<std::string>()
      << ", " << tensors.size() << " tensors, " << report["total_bytes"].get<uint64_t>()
      << " bytes\n";
  size_t width = 4;
  for (const auto& t : tensors) width = std::max(width, t["name"].get<std::string>().size());
  width = std::min<size_t>(width, 100);
  for (const auto& t : tensors) {
    out << absl::StrFormat("  %-*s  %-16s %-20s %12d\n", static_cast<int>(width),
                           t["name"].get<std::string>(), t["dtype"].get<std::string>(),
                           ShapeToString(t["shape"].get<std::vector<int64_t>>()),
                           t["bytes"].get<uint64_t>());
  }
  for (const char* section : {"metadata", "entries"}) {
    if (!report.contains(section) || report[section].empty()) continue;
    out << section << ":\n";
    for (const auto& [k, v] : report[section].items()) {
      out << "  " << k << " = " << v.get<std::string>() << "\n";
    }
  }
}

}  // namespace

absl::StatusOr<OrderedJson> InspectFile(const InspectOptions& options) {
  fs::FileSystem& fs = options.fs != nullptr ? *options.fs : *fs::PosixFileSystem();
  ASSIGN_OR_RETURN(auto file, fs.OpenForRead(options.path));
  char head[9] = {};
  const size_t n = static_cast<size_t>(std::min<uint64_t>(file->size(), sizeof(head)));
  RETURN_IF_ERROR(file->ReadAt(0, n, head));
  if (n == sizeof(head) && head[8] == '{') return InspectSafetensors(fs, options.path);
  // torch.save archives, and every other kind of file, get TorchFile's diagnosis.
  return InspectTorch(fs, options.path);
}

absl::Status RunInspect(const InspectOptions& options, std::ostream& out) {
  ASSIGN_OR_RETURN(OrderedJson report, InspectFile(options));
  if (options.json) {
    out << report.dump(2) << "\n";
  } else {
    PrintText(report, out);
  }
  return absl::OkStatus();
}

}  // namespace mxport::cli
