#include "worker/transport/tcp_transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status_macros.h"

namespace mxport::transport {
namespace {

constexpr uint32_t kMagic = 0x4d585054;  // "MXPT"

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

int RemainingMs(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1 << 30));
}

// Waits for `events` on fd until `deadline`.
absl::Status WaitFd(int fd, short events, absl::Time deadline, absl::string_view what) {
  while (true) {
    pollfd p{fd, events, 0};
    const int rc = poll(&p, 1, RemainingMs(deadline));
    if (rc > 0) return absl::OkStatus();
    if (rc == 0) return absl::DeadlineExceededError(absl::StrCat(what, ": timed out"));
    if (errno != EINTR) return Errno(what);
  }
}

absl::Status WriteAll(int fd, const char* data, size_t n, absl::Time deadline,
                      absl::string_view what) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w > 0) {
      data += w;
      n -= static_cast<size_t>(w);
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      RETURN_IF_ERROR(WaitFd(fd, POLLOUT, deadline, what));
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else {
      return Errno(what);
    }
  }
  return absl::OkStatus();
}

absl::Status ReadAll(int fd, char* data, size_t n, absl::Time deadline, absl::string_view what) {
  while (n > 0) {
    const ssize_t r = ::recv(fd, data, n, 0);
    if (r > 0) {
      data += r;
      n -= static_cast<size_t>(r);
    } else if (r == 0) {
      return absl::UnavailableError(absl::StrCat(what, ": connection closed by the peer"));
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      RETURN_IF_ERROR(WaitFd(fd, POLLIN, deadline, what));
    } else if (errno != EINTR) {
      return Errno(what);
    }
  }
  return absl::OkStatus();
}

void Tune(int fd) {
  const int one = 1, buf = 4 << 20;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

struct Hello {
  uint32_t magic;
  uint32_t rank;
  uint64_t group;
};

absl::StatusOr<int> ConnectTo(const std::string& address, absl::Time deadline) {
  std::vector<std::string> parts = absl::StrSplit(address, absl::MaxSplits(':', 1));
  int port = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &port)) {
    return absl::InvalidArgumentError(absl::StrCat("bad peer address '", address, "'"));
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* info = nullptr;
  if (getaddrinfo(parts[0].c_str(), parts[1].c_str(), &hints, &info) != 0 || info == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", address));
  }
  sockaddr_storage addr{};
  std::memcpy(&addr, info->ai_addr, info->ai_addrlen);
  const socklen_t len = info->ai_addrlen;
  freeaddrinfo(info);
  while (true) {  // the peer may not be listening yet: retry until the deadline
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return Errno("socket");
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0) {
      Tune(fd);
      return fd;
    }
    const int err = errno;
    close(fd);
    if (err != ECONNREFUSED && err != EINTR) {
      errno = err;
      return Errno(absl::StrCat("connect to ", address));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("connect to ", address, ": refused"));
    }
    pollfd none{-1, 0, 0};
    poll(&none, 0, 20);  // back off briefly before retrying a refused connect
  }
}

class TcpTransport : public Transport {
 public:
  TcpTransport(TransportOptions options, std::vector<int> fds)
      : Transport(options), fds_(std::move(fds)), peers_(options.world_size) {}
  ~TcpTransport() override {
    for (int fd : fds_) {
      if (fd >= 0) close(fd);
    }
  }

  absl::Status Send(int peer, absl::string_view data) override {
    RETURN_IF_ERROR(CheckPeer(peer));
    if (aborted_) return Aborted();
    if (peer == rank()) {
      absl::MutexLock lock(&self_mu_);
      self_.emplace_back(data.data(), data.size());
      return absl::OkStatus();
    }
    absl::MutexLock lock(&peers_[peer].send_mu);
    const absl::Time deadline = absl::Now() + options_.op_timeout;
    const uint64_t n = data.size();
    const std::string what = absl::StrCat("send to rank ", peer);
    absl::Status s =
        WriteAll(fds_[peer], reinterpret_cast<const char*>(&n), sizeof(n), deadline, what);
    if (s.ok()) s = WriteAll(fds_[peer], data.data(), data.size(), deadline, what);
    return aborted_ ? Aborted() : s;
  }

  absl::Status Recv(int peer, absl::Span<char> dst) override {
    RETURN_IF_ERROR(CheckPeer(peer));
    if (aborted_) return Aborted();
    if (peer == rank()) return RecvSelf(dst);
    absl::MutexLock lock(&peers_[peer].recv_mu);
    const absl::Time deadline = absl::Now() + options_.op_timeout;
    const std::string what = absl::StrCat("receive from rank ", peer);
    uint64_t n = 0;
    absl::Status s = ReadAll(fds_[peer], reinterpret_cast<char*>(&n), sizeof(n), deadline, what);
    if (s.ok() && n != dst.size()) {
      s = absl::InvalidArgumentError(absl::StrCat("rank ", peer, " sent ", n, " bytes, rank ",
                                                  rank(), " expected ", dst.size()));
    }
    if (s.ok()) s = ReadAll(fds_[peer], dst.data(), dst.size(), deadline, what);
    return aborted_ ? Aborted() : s;
  }

  void Abort() override {
    aborted_ = true;
    for (int fd : fds_) {
      if (fd >= 0) shutdown(fd, SHUT_RDWR);
    }
    absl::MutexLock lock(&self_mu_);  // wake a RecvSelf waiter
  }

 private:
  struct Peer {
    absl::Mutex send_mu;
    absl::Mutex recv_mu;
  };
  absl::Status Aborted() const {
    return absl::AbortedError(absl::StrCat("transport of rank ", rank(), " aborted"));
  }
  absl::Status RecvSelf(absl::Span<char> dst) {
    absl::MutexLock lock(&self_mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(self_mu_) {
      return !self_.empty() || aborted_.load();
    };
    if (!self_mu_.AwaitWithTimeout(absl::Condition(&ready), options_.op_timeout)) {
      return absl::DeadlineExceededError("receive from self: timed out");
    }
    if (self_.empty()) return Aborted();
    std::string msg = std::move(self_.front());
    self_.pop_front();
    if (msg.size() != dst.size()) {
      return absl::InvalidArgumentError(absl::StrCat("rank ", rank(), " sent itself ",
                                                     msg.size(), " bytes, expected ",
                                                     dst.size()));
    }
    if (!msg.empty()) std::memcpy(dst.data(), msg.data(), msg.size());
    return absl::OkStatus();
  }

  std::vector<int> fds_;  // per rank; -1 for self
  std::vector<Peer> peers_;
  std::atomic<bool> aborted_{false};
  absl::Mutex self_mu_;
  std::deque<std::string> self_ ABSL_GUARDED_BY(self_mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<TcpListener>> TcpListener::Bind(const std::string& host,
                                                              int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Errno("socket");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat("bad listen address '", host, "'"));
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 256) != 0) {
    absl::Status s = Errno(absl::StrCat("listen on ", host, ":", port));
    close(fd);
    return s;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return std::unique_ptr<TcpListener>(new TcpListener(fd, host, ntohs(addr.sin_port)));
}

TcpListener::~TcpListener() { close(fd_); }

std::string TcpListener::address() const {
  return absl::StrCat(host_ == "0.0.0.0" ? "127.0.0.1" : host_, ":", port_);
}

absl::StatusOr<std::unique_ptr<Transport>> ConnectTcpGroup(
    TransportOptions options, TcpListener& listener, const std::vector<std::string>& addresses,
    uint64_t group_id) {
  const int n = options.world_size, me = options.rank;
  if (static_cast<int>(addresses.size()) != n || me < 0 || me >= n) {
    return absl::InvalidArgumentError("ConnectTcpGroup: addresses must list every rank");
  }
  const absl::Time deadline = absl::Now() + options.op_timeout;
  std::vector<int> fds(n, -1);
  auto fail = [&](absl::Status s) {
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
    return s;
  };
  for (int peer = 0; peer < me; ++peer) {
    auto fd = ConnectTo(addresses[peer], deadline);
    if (!fd.ok()) return fail(fd.status());
    fds[peer] = *fd;
    const Hello hello{kMagic, static_cast<uint32_t>(me), group_id};
    absl::Status s = WriteAll(*fd, reinterpret_cast<const char*>(&hello), sizeof(hello),
                              deadline, "handshake");
    if (!s.ok()) return fail(s);
  }
  for (int accepted = 0; accepted < n - 1 - me;) {
    absl::Status s = WaitFd(listener.fd(), POLLIN, deadline,
                            absl::StrCat("rank ", me, " waiting for higher ranks"));
    if (!s.ok()) return fail(s);
    const int fd = accept(listener.fd(), nullptr, nullptr);
    if (fd < 0) continue;
    Tune(fd);
    Hello hello{};
    s = ReadAll(fd, reinterpret_cast<char*>(&hello), sizeof(hello), deadline, "handshake");
    const bool valid = s.ok() && hello.magic == kMagic && hello.group == group_id &&
                       static_cast<int>(hello.rank) > me && static_cast<int>(hello.rank) < n &&
                       fds[hello.rank] < 0;
    if (!valid) {  // another generation, a stray client or a duplicate: refuse it
      close(fd);
      continue;
    }
    fds[hello.rank] = fd;
    ++accepted;
  }
  return std::unique_ptr<Transport>(new TcpTransport(options, std::move(fds)));
}

}  // namespace mxport::transport
