#include "http/client.h"

#include <gtest/gtest.h>

#include <thread>

#include "http/server.h"

namespace http {
namespace {

TEST(ParseUrl, Forms) {
  auto u = ParseUrl("http://127.0.0.1:4566");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 4566);
  EXPECT_EQ(u->path, "/");
  u = ParseUrl("http://[::1]:80/x");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->path, "/x");
  EXPECT_EQ(ParseUrl("http://localhost")->port, 80);
  EXPECT_FALSE(ParseUrl("https://x").ok());
  EXPECT_FALSE(ParseUrl("http://x:99999").ok());
  EXPECT_FALSE(ParseUrl("http://:1").ok());
}

TEST(Client, RoundTripsAndReconnects) {
  ServerOptions opts;
  opts.port = 0;
  opts.threads = 1;
  auto s = Server::Create(opts, [](Request&& req, Responder respond) {
    Response r;
    r.status = req.path == "/missing" ? 404 : 200;
    r.Set("X-Query", req.query);
    r.body = req.method + ":" + req.body;
    respond(std::move(r));
  });
  ASSERT_TRUE(s.ok());
  auto server = std::move(s).value();
  std::thread t([&] { server->Run(); });

  Client c("127.0.0.1", server->port());
  Request req;
  req.method = "POST";
  req.path = "/a";
  req.query = "x=1";
  req.body = "hello";
  auto r = c.Send(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST:hello");
  EXPECT_EQ(*r->Find("X-Query"), "x=1");
  req.path = "/missing";
  r = c.Send(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);

  uint16_t port = server->port();
  server->Shutdown();
  t.join();
  server.reset();
  r = c.Send(req);
  EXPECT_FALSE(r.ok());
  Client nobody("127.0.0.1", port);
  EXPECT_FALSE(nobody.Send(req).ok());
}

}  // namespace
}  // namespace http
