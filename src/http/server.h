// http::Server — the HTTP/1.1 listener every API request arrives through.
//
// Boost.Asio/Beast with C++20 coroutines. One io_context per I/O thread; the acceptor
// hands connections out round-robin, and a connection stays on its thread for life.
// Keep-alive, pipelined requests answered in order, limits on header and body size,
// idle timeouts. Malformed requests get a 400 and the connection is closed; nothing a
// client sends can crash the server.
//
// Shutdown() stops accepting, lets requests in flight finish (up to a deadline), closes
// idle connections and makes Run() return.
//
// Threading: Create() and Run() from one thread; Shutdown() from any thread (also from
// a signal-watching thread). The handler is called on I/O threads, concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/fs.h"
#include "base/status.h"
#include "http/message.h"

namespace http {

struct ServerOptions {
  // Empty host: no listener of its own; the server only serves sockets given to Adopt().
  std::string host = "127.0.0.1";
  uint16_t port = 4566;  // 0 = pick a free port (see Server::port())
  int threads = 0;       // 0 = one per core
  uint32_t max_header_bytes = 64 * 1024;
  uint64_t max_body_bytes = 128ull * 1024 * 1024;
  std::chrono::seconds idle_timeout{120};
  std::chrono::seconds read_timeout{60};  // a request must arrive whole within this
  std::chrono::seconds shutdown_grace{30};

  // Streaming request bodies (registry blob uploads). Called on the I/O thread with the
  // request's method, target, path, query, headers and remote_ip once its header has
  // arrived (body empty). Returning a sink makes the server stream the body into it
  // instead of buffering it: max_body_bytes does not apply (max_streamed_body_bytes
  // does), and the read timeout applies per piece rather than to the whole body. The
  // handler then gets the request with `body` empty and `body_sink` set. Returning null
  // (or leaving this unset) keeps the buffered path. Must not throw.
  std::function<std::shared_ptr<BodySink>(const Request& head)> stream_body;
  uint64_t max_streamed_body_bytes = 64ull * 1024 * 1024 * 1024;
};

struct ServerStats {
  uint64_t connections_open = 0;
  uint64_t connections_total = 0;
  uint64_t requests_total = 0;
  uint64_t bad_requests_total = 0;  // rejected by the HTTP layer (malformed, too large)
};

// A listening socket served through Server::Adopt. Destroying it (from any thread) stops
// accepting and closes its connections; a request whose handler has not answered yet is
// abandoned (its late answer is dropped), so the owner must not rely on it being written.
class AdoptedListener {
 public:
  virtual ~AdoptedListener() = default;
};

class Server {
 public:
  virtual ~Server() = default;

  // Binds and listens (so port() is valid and clients may connect) but serves nothing
  // until Run(). Fails when the address is in use or invalid.
  static base::Result<std::unique_ptr<Server>> Create(const ServerOptions& options,
                                                      Handler handler);

  virtual uint16_t port() const = 0;  // 0 when the server has no listener of its own

  // Serves `listening_fd` (a socket already bound and listening, e.g. one opened inside a
  // sandbox's network namespace) with `handler`, on one of this server's I/O threads, with
  // the same limits as the main listener. Callable from any thread, before or after Run().
  virtual base::Result<std::unique_ptr<AdoptedListener>> Adopt(base::UniqueFd listening_fd,
                                                               Handler handler) = 0;
  // Serves until Shutdown(); returns once every I/O thread has stopped.
  virtual void Run() = 0;
  virtual void Shutdown() = 0;
  virtual ServerStats stats() const = 0;
};

}  // namespace http
