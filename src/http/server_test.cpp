#include "http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>

namespace http {
namespace {

// A blocking raw-socket client: sends bytes, reads until the peer closes or `until` appears.
class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawClient() { ::close(fd_); }
  bool connected() const { return connected_; }
  void Send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  // Reads until `count` occurrences of `marker` were seen, or EOF/timeout.
  std::string ReadUntil(const std::string& marker, int count = 1) {
    std::string out;
    char buf[4096];
    for (;;) {
      int seen = 0;
      for (size_t p = out.find(marker); p != std::string::npos; p = out.find(marker, p + 1)) ++seen;
      if (seen >= count) return out;
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }
  std::string ReadAll() { return ReadUntil("\x01never\x01"); }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

class ServerTest : public ::testing::Test {
 protected:
  void Start(Handler h, ServerOptions opts = {}) {
    opts.port = 0;
    opts.threads = 2;
    auto s = Server::Create(opts, std::move(h));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    thread_ = std::thread([this] { server_->Run(); });
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    if (thread_.joinable()) thread_.join();
  }
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

Handler Echo() {
  return [](Request&& req, Responder respond) {
    Response r;
    r.status = 200;
    r.Set("X-Path", req.path);
    r.Set("X-Query", req.query);
    r.body = req.method + ":" + req.body;
    respond(std::move(r));
  };
}

TEST_F(ServerTest, KeepAliveServesSeveralRequests) {
  Start(Echo());
  RawClient c(server_->port());
  ASSERT_TRUE(c.connected());
  c.Send(
      "GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: "
      "3\r\n\r\nabc");
  std::string out = c.ReadUntil("POST:abc");
  EXPECT_NE(out.find("X-Path: /a"), std::string::npos) << out;
  EXPECT_NE(out.find("X-Query: x=1"), std::string::npos);
  EXPECT_NE(out.find("GET:"), std::string::npos);
  EXPECT_NE(out.find("POST:abc"), std::string::npos);
}

TEST_F(ServerTest, AnswersExpectContinueBeforeTheBody) {
  Start(Echo());
  RawClient c(server_->port());
  c.Send("PUT /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(c.ReadUntil("\r\n\r\n").rfind("HTTP/1.1 100 Continue", 0), 0u);
  c.Send("hello");
  EXPECT_NE(c.ReadUntil("PUT:hello").find("PUT:hello"), std::string::npos);
}

TEST_F(ServerTest, AsyncResponderFromAnotherThread) {
  Start([](Request&&, Responder respond) {
    std::thread([respond] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      Response r;
      r.body = "later";
      respond(std::move(r));
    }).detach();
  });
  RawClient c(server_->port());
  c.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_NE(c.ReadUntil("later").find("later"), std::string::npos);
}

TEST_F(ServerTest, MalformedRequestGets400AndClose) {
  Start(Echo());
  RawClient c(server_->port());
  c.Send("THIS IS NOT HTTP\r\n\r\n");
  std::string out = c.ReadAll();
  EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
}

TEST_F(ServerTest, OversizedHeaderGets431) {
  ServerOptions o;
  o.max_header_bytes = 1024;
  Start(Echo(), o);
  RawClient c(server_->port());
  c.Send("GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n");
  EXPECT_EQ(c.ReadAll().rfind("HTTP/1.1 431", 0), 0u);
}

TEST_F(ServerTest, OversizedBodyGets413) {
  ServerOptions o;
  o.max_body_bytes = 100;
  Start(Echo(), o);
  RawClient c(server_->port());
  c.Send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'x'));
  EXPECT_EQ(c.ReadAll().rfind("HTTP/1.1 413", 0), 0u);
}

TEST_F(ServerTest, GarbageNeverCrashes) {
  Start(Echo());
  std::mt19937 rng(42);
  for (int i = 0; i < 200; ++i) {
    RawClient c(server_->port());
    std::string junk(static_cast<size_t>(rng() % 300), '\0');
    for (char& ch : junk) ch = static_cast<char>(rng());
    if (i % 3 == 0) junk = "GET / HTTP/1.1\r\n" + junk;
    c.Send(junk + "\r\n\r\n");
  }
  RawClient c(server_->port());
  c.Send("GET /alive HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_NE(c.ReadAll().find("X-Path: /alive"), std::string::npos);
}

TEST_F(ServerTest, ShutdownFinishesInFlightRequest) {
  std::atomic<bool> entered{false};
  Start([&](Request&&, Responder respond) {
    entered = true;
    std::thread([respond] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      Response r;
      r.body = "finished";
      respond(std::move(r));
    }).detach();
  });
  RawClient idle(server_->port());
  RawClient c(server_->port());
  c.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  while (!entered) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server_->Shutdown();
  std::string out = c.ReadAll();
  EXPECT_NE(out.find("finished"), std::string::npos);
  EXPECT_NE(out.find("Connection: close"), std::string::npos);
  thread_.join();  // Run() returned although an idle connection was open
  EXPECT_EQ(idle.ReadAll(), "");
}

// A socket bound to 127.0.0.1 on a free port, listening; returns the fd and port.
std::pair<base::UniqueFd, uint16_t> ListeningSocket() {
  base::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(fd.get(), 16), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return {std::move(fd), ntohs(a.sin_port)};
}

TEST(AdoptTest, ServesAnAdoptedSocketWithItsOwnHandlerAndClosesItOnDestroy) {
  ServerOptions opts;
  opts.host = "";  // no listener of its own
  opts.threads = 2;
  auto s = Server::Create(opts, Echo());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::unique_ptr<Server> server = std::move(s).value();
  EXPECT_EQ(server->port(), 0);
  std::thread runner([&] { server->Run(); });

  auto [fd, port] = ListeningSocket();
  auto adopted = server->Adopt(std::move(fd), [](Request&& req, Responder respond) {
    Response r;
    r.body = "adopted:" + req.path;
    respond(std::move(r));
  });
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  {
    RawClient c(port);
    ASSERT_TRUE(c.connected());
    c.Send("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_NE(c.ReadUntil("adopted:/x").find("adopted:/x"), std::string::npos);
  }
  // An idle keep-alive connection is closed when the listener goes, and new ones refused.
  RawClient idle(port);
  ASSERT_TRUE(idle.connected());
  idle.Send("GET /y HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_NE(idle.ReadUntil("adopted:/y").find("adopted:/y"), std::string::npos);
  adopted->reset();
  std::string rest = idle.ReadAll();  // returns at EOF
  EXPECT_EQ(rest, "");
  for (int i = 0; i < 100; ++i) {
    RawClient again(port);
    if (!again.connected()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_LT(i, 99) << "adopted port still accepting";
  }
  EXPECT_FALSE(server->Adopt(base::UniqueFd(), Echo()).ok());
  server->Shutdown();
  runner.join();
}

// Collects streamed pieces.
class Collect : public BodySink {
 public:
  base::Status Write(std::string_view data) override {
    std::lock_guard lock(mu);
    got.append(data);
    ++pieces;
    return base::Status::Ok();
  }
  std::mutex mu;
  std::string got;
  int pieces = 0;
};

TEST_F(ServerTest, StreamedBodiesBypassTheBufferedLimit) {
  auto sink = std::make_shared<Collect>();
  ServerOptions o;
  o.max_body_bytes = 100;
  o.stream_body = [sink](const Request& head) -> std::shared_ptr<BodySink> {
    EXPECT_TRUE(head.body.empty());
    if (head.path == "/stream") return sink;
    return nullptr;
  };
  Start(
      [](Request&& req, Responder respond) {
        Response r;
        r.body = std::to_string(req.streamed_bytes) + "/" + std::to_string(req.body.size()) +
                 (req.body_sink ? "/sink" : "/buffered");
        respond(std::move(r));
      },
      o);
  std::string body(1 << 20, 'z');
  body[12345] = 'y';
  RawClient c(server_->port());
  c.Send("PUT /stream HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body);
  EXPECT_NE(c.ReadUntil("/sink").find(std::to_string(body.size()) + "/0/sink"), std::string::npos);
  {
    std::lock_guard lock(sink->mu);
    EXPECT_EQ(sink->got, body);
    EXPECT_GT(sink->pieces, 1);
  }
  // Chunked transfer encoding streams too; other paths keep the limit.
  c.Send(
      "POST /stream HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  EXPECT_NE(c.ReadUntil("5/0/sink").find("5/0/sink"), std::string::npos);
  RawClient d(server_->port());
  d.Send("POST /other HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n");
  EXPECT_EQ(d.ReadAll().rfind("HTTP/1.1 413", 0), 0u);
}

TEST_F(ServerTest, SendsFileRangesAndAnswersHeadWithoutBody) {
  char path[] = "/tmp/http_sendfile_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string content;
  for (int i = 0; i < 300000; ++i) content.push_back(static_cast<char>('a' + i % 26));
  ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  ::close(fd);
  std::string file = path;
  Start([file](Request&& req, Responder respond) {
    Response r;
    r.body_file = std::make_shared<base::UniqueFd>(::open(file.c_str(), O_RDONLY));
    r.body_file_offset = 5;
    r.body_file_length = 250000;
    if (req.method == "HEAD") r.head_content_length = 250000;
    respond(std::move(r));
  });
  RawClient c(server_->port());
  c.Send(
      "GET /f HTTP/1.1\r\nHost: h\r\n\r\nHEAD /f HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /f HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  std::string all = c.ReadAll();
  ::unlink(path);
  std::string expect = content.substr(5, 250000);
  size_t first = all.find("\r\n\r\n");
  ASSERT_NE(first, std::string::npos);
  EXPECT_NE(all.find("Content-Length: 250000"), std::string::npos);
  EXPECT_EQ(all.substr(first + 4, expect.size()), expect);
  // Then the HEAD answer (header only), then the second GET in full.
  std::string rest = all.substr(first + 4 + expect.size());
  EXPECT_EQ(rest.rfind("HTTP/1.1 200", 0), 0u);
  size_t head_end = rest.find("\r\n\r\n");
  std::string after_head = rest.substr(head_end + 4);
  EXPECT_EQ(after_head.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(after_head.substr(after_head.find("\r\n\r\n") + 4), expect);
}

}  // namespace
}  // namespace http
