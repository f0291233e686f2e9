#include "worker/transport/transport.h"

#include <thread>

#include "absl/strings/str_cat.h"

namespace mxport::transport {

absl::Status Transport::CheckPeer(int peer) const {
  if (peer < 0 || peer >= options_.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", peer, " is outside the group of ", options_.world_size));
  }
  return absl::OkStatus();
}

absl::Status Transport::Exchange(absl::Span<const SendOp> sends,
                                 absl::Span<const RecvOp> recvs) {
  absl::Status send_status;
  std::thread sender;
  auto send_all = [&] {
    for (const SendOp& op : sends) {
      send_status = Send(op.peer, op.data);
      if (!send_status.ok()) {
        Abort();  // the receives below must not wait for a step that cannot complete
        return;
      }
    }
  };
  if (recvs.empty()) {
    send_all();
    return send_status;
  }
  if (!sends.empty()) sender = std::thread(send_all);
  absl::Status recv_status;
  for (const RecvOp& op : recvs) {
    recv_status = Recv(op.peer, op.dst);
    if (!recv_status.ok()) {
      Abort();
      break;
    }
  }
  if (sender.joinable()) sender.join();
  // The cause, not the Aborted the other side saw because of it.
  if (!send_status.ok() && (recv_status.ok() || recv_status.code() == absl::StatusCode::kAborted)) {
    return send_status;
  }
  return recv_status;
}

}  // namespace mxport::transport
