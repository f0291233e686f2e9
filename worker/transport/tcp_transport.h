// The TCP transport: host buffers over one TCP connection per pair of ranks.
//
// Each worker binds a listener first (port 0 picks a free port) and publishes its address
// through the coordinator; then ConnectTcpGroup connects rank r to every lower rank and accepts
// every higher one. The handshake carries a group id (the job generation): a connection from
// another generation is refused, so a late worker of an aborted generation cannot join.
// Messages are length-prefixed; a receiver whose expected size differs gets InvalidArgument.
// Every blocking step polls with Options::op_timeout; Abort() shuts every socket down so
// blocked calls return at once. See transport.h for the contract.
#ifndef MXPORT_WORKER_TRANSPORT_TCP_TRANSPORT_H_
#define MXPORT_WORKER_TRANSPORT_TCP_TRANSPORT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/transport/transport.h"

namespace mxport::transport {

class TcpListener {
 public:
  // Binds and listens on host:port (port 0: any free port).
  static absl::StatusOr<std::unique_ptr<TcpListener>> Bind(const std::string& host, int port);
  ~TcpListener();
  int port() const { return port_; }
  int fd() const { return fd_; }
  // "host:port" for peers.
  std::string address() const;

 private:
  TcpListener(int fd, std::string host, int port) : fd_(fd), host_(std::move(host)), port_(port) {}
  int fd_;
  std::string host_;
  int port_;
};

// `addresses[i]` is rank i's "host:port" (this rank's own entry is ignored). The listener is
// not owned: a worker keeps one for its life and connects a new group per generation.
absl::StatusOr<std::unique_ptr<Transport>> ConnectTcpGroup(
    TransportOptions options, TcpListener& listener, const std::vector<std::string>& addresses,
    uint64_t group_id);

}  // namespace mxport::transport

#endif  // MXPORT_WORKER_TRANSPORT_TCP_TRANSPORT_H_
