// notify_service_manager: the datagram a Type=notify unit's manager gets,
// on a path socket and an abstract one, and nothing without NOTIFY_SOCKET.

#include "server/service_notify.h"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace horizon::server {
namespace {

// A datagram socket bound to `name` (a path, or "@name": abstract), as a
// service manager listens.
class Manager {
 public:
  explicit Manager(const std::string& name) : name_(name) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, name.data(), name.size());
    if (name[0] == '@') a.sun_path[0] = '\0';
    if (name[0] == '/') ::unlink(name.c_str());
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a),
                     static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size())),
              0)
        << std::strerror(errno);
    ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
  }
  ~Manager() {
    ::unsetenv("NOTIFY_SOCKET");
    ::close(fd_);
    if (name_[0] == '/') ::unlink(name_.c_str());
  }
  // The next datagram, or "" if none is waiting.
  std::string next() {
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  }

 private:
  std::string name_;
  int fd_;
};

TEST(ServiceNotify, SendsTheStateToAPathSocket) {
  Manager m("/tmp/eh-notify-" + std::to_string(::getpid()));
  ASSERT_TRUE(notify_service_manager("READY=1\nSTATUS=ready"));
  EXPECT_EQ(m.next(), "READY=1\nSTATUS=ready");
  ASSERT_TRUE(notify_service_manager("STOPPING=1"));
  EXPECT_EQ(m.next(), "STOPPING=1");
}

TEST(ServiceNotify, SendsTheStateToAnAbstractSocket) {
  Manager m("@eh-notify-" + std::to_string(::getpid()));
  ASSERT_TRUE(notify_service_manager("READY=1"));
  EXPECT_EQ(m.next(), "READY=1");
}

TEST(ServiceNotify, NothingWithoutTheVariableAndClearErrorsWithABadOne) {
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_TRUE(notify_service_manager("READY=1"));
  ::setenv("NOTIFY_SOCKET", "relative/path", 1);
  auto r = notify_service_manager("READY=1");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("is not an absolute path"), std::string::npos) << r.error().message;
  ::setenv("NOTIFY_SOCKET", "/nonexistent/eh/socket", 1);
  r = notify_service_manager("READY=1");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("No such file or directory"), std::string::npos) << r.error().message;
  ::unsetenv("NOTIFY_SOCKET");
}

}  // namespace
}  // namespace horizon::server
