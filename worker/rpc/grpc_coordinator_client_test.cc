// Calls to a coordinator that is not there: UNAVAILABLE after the retries, and a stop request
// ends the retrying at once with Cancelled.
#include "worker/rpc/grpc_coordinator_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace mxport::worker {
namespace {

using ::mxport::testing::StatusIs;

// A loopback port nothing listens on: bound to port 0 to get a free one, then closed.
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(GrpcCoordinatorClientTest, UnavailableAfterTheRetries) {
  GrpcClientOptions o;
  o.coordinator_address = absl::StrCat("127.0.0.1:", ClosedPort());
  o.retries = 1;
  o.max_backoff = absl::Milliseconds(1);
  auto client = NewGrpcCoordinatorClient(o);
  EXPECT_THAT(client->AcquireLease("job", 0, 0, "files/a").status(),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(GrpcCoordinatorClientTest, AStopEndsTheRetries) {
  std::atomic<bool> stop{true};
  GrpcClientOptions o;
  o.coordinator_address = absl::StrCat("127.0.0.1:", ClosedPort());
  o.retries = 1000;  // would retry for hours without the stop
  o.max_backoff = absl::Seconds(10);
  o.stop = &stop;
  auto client = NewGrpcCoordinatorClient(o);
  EXPECT_THAT(client->AcquireLease("job", 0, 0, "files/a").status(),
              StatusIs(absl::StatusCode::kCancelled));
}

}  // namespace
}  // namespace mxport::worker
