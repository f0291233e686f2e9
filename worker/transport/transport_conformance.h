// The conformance suite every Transport passes (transport.h's contract). Each test binary
// instantiates it with its factories: transport_test with loopback and TCP, nccl_transport_test
// with NCCL on as many GPUs as the machine has. Exchange cases run on every transport; the
// lone Send/Recv cases only where streaming() holds. A case needing more ranks than the
// factory offers is skipped, saying so.
#ifndef MXPORT_WORKER_TRANSPORT_TRANSPORT_CONFORMANCE_H_
#define MXPORT_WORKER_TRANSPORT_TRANSPORT_CONFORMANCE_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "worker/transport/transport.h"

namespace mxport::transport {

using Group = std::vector<std::unique_ptr<Transport>>;

struct ConformanceFactory {
  std::string name;
  // Most ranks this factory can make (0: none here, every case skips).
  std::function<int()> max_world;
  std::function<Group(int world, absl::Duration op_timeout)> make;
};

inline void PrintTo(const ConformanceFactory& factory, std::ostream* os) { *os << factory.name; }

class TransportConformanceTest : public ::testing::TestWithParam<ConformanceFactory> {
};

}  // namespace mxport::transport

#endif  // MXPORT_WORKER_TRANSPORT_TRANSPORT_CONFORMANCE_H_
