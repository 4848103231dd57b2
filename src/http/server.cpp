#include "http/server.h"

#include <spdlog/spdlog.h>
#include <sys/sendfile.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <limits>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

// One request's answer, which the handler may give before it returns (most do) or later
// from any thread. Answers given in time skip the trip through the io_context.
struct PendingResponse {
  std::mutex mu;
  bool answered = false;
  std::optional<Response> response;
  std::function<void(Response)> late;  // set once the coroutine waits
};

Responder MakeResponder(std::shared_ptr<PendingResponse> p) {
  return [p = std::move(p)](Response resp) {
    std::unique_lock lock(p->mu);
    if (p->answered) return;  // responding twice is a bug; ignore
    p->answered = true;
    if (!p->late) {
      p->response = std::move(resp);
      return;
    }
    auto late = std::move(p->late);
    lock.unlock();
    late(std::move(resp));
  };
}

// Waits for a response the handler gives after returning; resumes the connection's
// coroutine on its own io_context.
template <typename Token>
auto AwaitLateResponse(std::shared_ptr<PendingResponse> p, asio::io_context& ctx, Token&& token) {
  return asio::async_initiate<Token, void(Response)>(
      [&ctx](auto completion, std::shared_ptr<PendingResponse> p) {
        using Completion = decltype(completion);
        struct State {
          State(Completion c, asio::io_context& ctx)
              : completion(std::move(c)), work(asio::make_work_guard(ctx)) {}
          Completion completion;
          asio::executor_work_guard<asio::io_context::executor_type> work;
        };
        auto state = std::make_shared<State>(std::move(completion), ctx);
        auto deliver = [state, &ctx](Response resp) {
          asio::post(ctx, [state, resp = std::move(resp)]() mutable {
            state->completion(std::move(resp));
            state->work.reset();
          });
        };
        std::unique_lock lock(p->mu);
        if (p->response) {  // answered between the handler's return and now
          Response r = std::move(*p->response);
          p->response.reset();
          lock.unlock();
          deliver(std::move(r));
          return;
        }
        p->late = std::move(deliver);
      },
      token, std::move(p));
}

class ServerImpl;

// One client connection; lives on one io_context.
struct Connection {
  beast::tcp_stream stream;
  bool busy = false;  // a request is being handled or written
  explicit Connection(tcp::socket s) : stream(std::move(s)) {}
};

struct IoThread {
  asio::io_context ctx{1};
  std::list<Connection*> connections;  // touched only on this context's thread
};

// A listening socket and the handler serving it: the main listener, or an adopted one.
struct Site {
  Handler handler;
  IoThread* io = nullptr;  // adopted sites accept and serve on this one thread
  std::unique_ptr<tcp::acceptor> acceptor;
  bool adopted = false;
  // Adopted sites only, touched on io's thread: connections to close with the site.
  std::list<Connection*> connections;
  bool closed = false;

  // On io's thread.
  void Close() {
    if (closed) return;
    closed = true;
    boost::system::error_code ec;
    if (acceptor) acceptor->close(ec);
    for (Connection* c : connections) c->stream.socket().cancel(ec);
  }
};

class AdoptedListenerImpl : public AdoptedListener {
 public:
  explicit AdoptedListenerImpl(std::shared_ptr<Site> site) : site_(std::move(site)) {}
  ~AdoptedListenerImpl() override {
    asio::post(site_->io->ctx, [site = site_] { site->Close(); });
  }

 private:
  std::shared_ptr<Site> site_;
};

class ServerImpl : public Server {
 public:
  ServerImpl(const ServerOptions& opts, Handler handler) : opts_(opts) {
    int n = opts.threads > 0 ? opts.threads : static_cast<int>(std::thread::hardware_concurrency());
    if (n < 1) n = 1;
    for (int i = 0; i < n; ++i) threads_.push_back(std::make_unique<IoThread>());
    main_ = std::make_shared<Site>();
    main_->handler = std::move(handler);
    main_->io = threads_[0].get();
  }

  base::Status Listen() {
    if (opts_.host.empty()) return base::Status::Ok();
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(opts_.host, ec);
    if (ec) return base::InvalidArgument("listen address '" + opts_.host + "': " + ec.message());
    tcp::endpoint ep(addr, opts_.port);
    auto& acceptor = main_->acceptor;
    acceptor = std::make_unique<tcp::acceptor>(threads_[0]->ctx);
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return base::Status(
          base::Code::kUnavailable,
          "listen on " + opts_.host + ":" + std::to_string(opts_.port) + ": " + ec.message());
    port_ = acceptor->local_endpoint().port();
    return base::Status::Ok();
  }

  base::Result<std::unique_ptr<AdoptedListener>> Adopt(base::UniqueFd fd,
                                                       Handler handler) override {
    if (!fd.valid()) return base::InvalidArgument("http: adopt an invalid socket");
    if (stopping_) return base::FailedPrecondition("http: server is shutting down");
    auto site = std::make_shared<Site>();
    site->handler = std::move(handler);
    site->adopted = true;
    site->io = threads_[next_adopt_.fetch_add(1) % threads_.size()].get();
    site->acceptor = std::make_unique<tcp::acceptor>(site->io->ctx);
    boost::system::error_code ec;
    site->acceptor->assign(tcp::v4(), fd.get(), ec);
    if (ec) return base::InvalidArgument("http: adopt socket: " + ec.message());
    fd.Release();  // the acceptor owns it now
    {
      std::lock_guard lock(sites_mu_);
      std::erase_if(sites_, [](const std::weak_ptr<Site>& w) { return w.expired(); });
      sites_.push_back(site);
    }
    asio::co_spawn(site->io->ctx, Accept(site), asio::detached);
    return std::unique_ptr<AdoptedListener>(std::make_unique<AdoptedListenerImpl>(site));
  }

  uint16_t port() const override { return port_; }

  void Run() override {
    if (main_->acceptor) asio::co_spawn(threads_[0]->ctx, Accept(main_), asio::detached);
    // Keep every context alive until shutdown even with no connections.
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (auto& t : threads_) guards.push_back(asio::make_work_guard(t->ctx));
    {
      std::lock_guard lock(guard_mu_);
      guards_ = std::move(guards);
      running_ = true;
    }
    if (shutdown_requested_) Shutdown();
    std::vector<std::thread> workers;
    for (size_t i = 1; i < threads_.size(); ++i)
      workers.emplace_back([this, i] { RunContext(threads_[i]->ctx); });
    RunContext(threads_[0]->ctx);
    for (auto& w : workers) w.join();
    {
      std::lock_guard lk(deadline_mu_);
      finished_ = true;
    }
    deadline_cv_.notify_all();
  }

  void Shutdown() override {
    shutdown_requested_ = true;
    std::lock_guard lock(guard_mu_);
    if (!running_ || stopping_) return;
    stopping_ = true;
    asio::post(threads_[0]->ctx, [site = main_] { site->Close(); });
    {
      std::lock_guard sites_lock(sites_mu_);
      for (auto& w : sites_)
        if (auto site = w.lock()) asio::post(site->io->ctx, [site] { site->Close(); });
    }
    for (auto& t : threads_) {
      IoThread* io = t.get();
      asio::post(io->ctx, [io] {
        // Idle connections close now; busy ones after their current response.
        for (Connection* c : io->connections)
          if (!c->busy) c->stream.socket().cancel();
      });
    }
    // Release the keep-alive guards: each context returns once its connections finish.
    guards_.clear();
    // A hard deadline for requests that never finish.
    deadline_thread_ = std::thread([this] {
      std::unique_lock lk(deadline_mu_);
      if (!deadline_cv_.wait_for(lk, opts_.shutdown_grace, [this] { return finished_; })) {
        spdlog::warn("shutdown grace of {}s exceeded; closing remaining connections",
                     opts_.shutdown_grace.count());
        for (auto& t : threads_) t->ctx.stop();
      }
    });
  }

  ServerStats stats() const override {
    ServerStats s;
    s.connections_open = open_.load();
    s.connections_total = total_conns_.load();
    s.requests_total = requests_.load();
    s.bad_requests_total = bad_.load();
    return s;
  }

  ~ServerImpl() override {
    // Acceptors must go before the io_contexts they belong to.
    {
      std::lock_guard lock(sites_mu_);
      for (auto& w : sites_)
        if (auto site = w.lock()) site->acceptor.reset();
    }
    main_->acceptor.reset();
    {
      std::lock_guard lk(deadline_mu_);
      finished_ = true;
    }
    deadline_cv_.notify_all();
    if (deadline_thread_.joinable()) deadline_thread_.join();
  }

 private:
  void RunContext(asio::io_context& ctx) {
    for (;;) {
      try {
        ctx.run();
        return;
      } catch (const std::exception& e) {
        // Handlers must not throw; if one does, log it and keep serving.
        spdlog::error("uncaught exception on I/O thread: {}", e.what());
      }
    }
  }

  // Accepts on `site` until it closes. The main site hands connections out round-robin;
  // an adopted one keeps them on its own thread.
  asio::awaitable<void> Accept(std::shared_ptr<Site> site) {
    size_t next = 0;
    for (;;) {
      IoThread* io = site->io;
      if (!site->adopted) {
        io = threads_[next].get();
        next = (next + 1) % threads_.size();
      }
      boost::system::error_code ec;
      if (site->closed || !site->acceptor) co_return;
      tcp::socket sock = co_await site->acceptor->async_accept(
          io->ctx, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || site->closed || !site->acceptor->is_open())
          co_return;
        spdlog::warn("accept: {}", ec.message());
        // Out of fds and the like: back off briefly instead of spinning.
        asio::steady_timer t(site->io->ctx, std::chrono::milliseconds(50));
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      sock.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(io->ctx, Serve(io, site, std::move(sock)), asio::detached);
    }
  }

  asio::awaitable<void> Serve(IoThread* io, std::shared_ptr<Site> site, tcp::socket sock) {
    Connection conn(std::move(sock));
    io->connections.push_front(&conn);
    auto self_it = io->connections.begin();
    std::list<Connection*>::iterator site_it;
    if (site->adopted) {
      if (site->closed) {
        io->connections.erase(self_it);
        co_return;
      }
      site->connections.push_front(&conn);
      site_it = site->connections.begin();
    }
    ++open_;
    ++total_conns_;
    std::string remote;
    {
      boost::system::error_code ec;
      auto ep = conn.stream.socket().remote_endpoint(ec);
      if (!ec) remote = ep.address().to_string();
    }
    beast::flat_buffer buffer;
    for (;;) {
      if (stopping_ || site->closed) break;
      bhttp::request_parser<bhttp::empty_body> head;
      head.header_limit(opts_.max_header_bytes);
      head.body_limit(
          std::numeric_limits<uint64_t>::max());  // checked below, once we know whether it streams
      conn.stream.expires_after(opts_.idle_timeout);
      boost::system::error_code ec;
      // Read the header first (idle timeout), then the body (read timeout).
      co_await bhttp::async_read_header(conn.stream, buffer, head,
                                        asio::redirect_error(asio::use_awaitable, ec));
      Request req;
      std::shared_ptr<BodySink> sink;
      if (!ec) {
        const auto& msg = head.get();
        req.method = std::string(msg.method_string());
        req.target = std::string(msg.target());
        size_t q = req.target.find('?');
        req.path = req.target.substr(0, q);
        if (q != std::string::npos) req.query = req.target.substr(q + 1);
        req.headers.reserve(16);
        for (const auto& f : msg)
          req.headers.push_back({std::string(f.name_string()), std::string(f.value())});
        req.remote_ip = remote;
        if (!head.is_done() && opts_.stream_body) sink = opts_.stream_body(req);
        uint64_t limit = sink ? opts_.max_streamed_body_bytes : opts_.max_body_bytes;
        if (head.content_length() && *head.content_length() > limit) ec = bhttp::error::body_limit;
      }
      if (!ec && !head.is_done()) {
        conn.stream.expires_after(opts_.read_timeout);
        // Clients that ask first (the AWS CLI does for large uploads) wait for this.
        auto expect = head.get().find(bhttp::field::expect);
        if (expect != head.get().end() && beast::iequals(expect->value(), "100-continue")) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          co_await asio::async_write(conn.stream, asio::buffer(kContinue),
                                     asio::redirect_error(asio::use_awaitable, ec));
        }
      }
      bool keep_alive = false;
      if (!ec && sink) {
        // Streamed body: fixed-size pieces into the sink; the timeout is per piece.
        bhttp::request_parser<bhttp::buffer_body> parser(std::move(head));
        parser.body_limit(opts_.max_streamed_body_bytes);
        std::vector<char> piece(256 * 1024);
        // Beast reads at most the buffer's free capacity per recv; give it room, or a
        // large body arrives a few KiB per system call.
        if (buffer.capacity() < piece.size()) buffer.reserve(piece.size());
        bool sink_ok = true;
        while (!ec && !parser.is_done()) {
          parser.get().body().data = piece.data();
          parser.get().body().size = piece.size();
          conn.stream.expires_after(opts_.read_timeout);
          co_await bhttp::async_read(conn.stream, buffer, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
          if (ec == bhttp::error::need_buffer) ec = {};
          if (ec) break;
          size_t got = piece.size() - parser.get().body().size;
          req.streamed_bytes += got;
          if (got > 0 && sink_ok) sink_ok = sink->Write(std::string_view(piece.data(), got)).ok();
        }
        keep_alive = parser.get().keep_alive();
        req.body_sink = std::move(sink);
      } else if (!ec && head.content_length() && *head.content_length() > 64 * 1024) {
        // A large body of known length: read straight into a string sized once, in large
        // pieces (string_body grows the string, zero-filling, a few KiB per read).
        size_t length = static_cast<size_t>(*head.content_length());
        bhttp::request_parser<bhttp::buffer_body> parser(std::move(head));
        parser.body_limit(opts_.max_body_bytes);
        std::string body(length, '\0');
        if (buffer.capacity() < 256 * 1024) buffer.reserve(256 * 1024);
        size_t filled = 0;
        while (!ec && !parser.is_done()) {
          parser.get().body().data = body.data() + filled;
          parser.get().body().size = length - filled;
          conn.stream.expires_after(opts_.read_timeout);
          co_await bhttp::async_read(conn.stream, buffer, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
          if (ec == bhttp::error::need_buffer) ec = {};
          if (ec) break;
          filled = length - parser.get().body().size;
        }
        if (!ec) {
          keep_alive = parser.get().keep_alive();
          body.resize(filled);
          req.body = std::move(body);
        }
      } else if (!ec) {
        bhttp::request_parser<bhttp::string_body> parser(std::move(head));
        parser.body_limit(opts_.max_body_bytes);
        if (!parser.is_done())
          co_await bhttp::async_read(conn.stream, buffer, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
        keep_alive = parser.get().keep_alive();
        req.body = std::move(parser.get().body());
      }
      if (ec) {
        if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted ||
            ec == beast::error::timeout || ec == asio::error::connection_reset ||
            ec == asio::error::eof)
          break;
        // Malformed or oversized: answer 4xx and close.
        ++bad_;
        int status = 400;
        if (ec == bhttp::error::header_limit) status = 431;
        if (ec == bhttp::error::body_limit) status = 413;
        spdlog::info("bad request from {}: {}", remote, ec.message());
        co_await WriteSimple(conn, status, ec.message());
        break;
      }
      conn.busy = true;
      ++requests_;
      bool is_head = req.method == "HEAD";
      auto pending = std::make_shared<PendingResponse>();
      site->handler(std::move(req), MakeResponder(pending));
      Response resp;
      bool ready = false;
      {
        std::lock_guard lock(pending->mu);
        if (pending->response) {
          resp = std::move(*pending->response);
          pending->response.reset();
          ready = true;
        }
      }
      if (!ready) resp = co_await AwaitLateResponse(pending, io->ctx, asio::use_awaitable);

      bool close = !keep_alive || stopping_.load() || site->closed;
      conn.stream.expires_after(opts_.read_timeout);
      if (resp.body_file || is_head) {
        // Header only (HEAD), or header then the file's bytes with sendfile(2).
        bhttp::response<bhttp::empty_body> out;
        out.version(11);
        out.result(static_cast<unsigned>(resp.status));
        for (auto& h : resp.headers) out.insert(h.name, h.value);
        uint64_t length = resp.body_file ? resp.body_file_length : resp.body.size();
        if (is_head && resp.head_content_length >= 0)
          length = static_cast<uint64_t>(resp.head_content_length);
        if (resp.status != 204 && resp.status != 304 && resp.status >= 200)
          out.content_length(length);
        out.keep_alive(!close);
        co_await bhttp::async_write(conn.stream, out,
                                    asio::redirect_error(asio::use_awaitable, ec));
        if (!ec && !is_head && resp.body_file)
          ec = co_await SendFile(conn, resp.body_file->get(), resp.body_file_offset,
                                 resp.body_file_length);
      } else {
        bhttp::response<bhttp::string_body> out;
        out.version(11);
        out.result(static_cast<unsigned>(resp.status));
        for (auto& h : resp.headers) out.insert(h.name, h.value);
        out.body() = std::move(resp.body);
        out.keep_alive(!close);
        out.prepare_payload();
        co_await bhttp::async_write(conn.stream, out,
                                    asio::redirect_error(asio::use_awaitable, ec));
      }
      conn.busy = false;
      if (ec || close) break;
    }
    boost::system::error_code ignored;
    conn.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    conn.stream.close();
    io->connections.erase(self_it);
    if (site->adopted) site->connections.erase(site_it);
    --open_;
  }

  // Sends [offset, offset+length) of `fd` on the connection's socket with sendfile(2),
  // waiting for writability when the socket buffer is full.
  asio::awaitable<boost::system::error_code> SendFile(Connection& conn, int fd, uint64_t offset,
                                                      uint64_t length) {
    boost::system::error_code ec;
    auto& sock = conn.stream.socket();
    sock.native_non_blocking(true, ec);
    if (ec) co_return ec;
    off_t off = static_cast<off_t>(offset);
    uint64_t left = length;
    while (left > 0) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(left, 1ull << 30));
      ssize_t n = ::sendfile(sock.native_handle(), fd, &off, want);
      if (n > 0) {
        left -= static_cast<uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        co_await sock.async_wait(tcp::socket::wait_write,
                                 asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return ec;
        continue;
      }
      // The file ended early (n == 0) or the socket failed: the response is cut short,
      // so the connection must close.
      co_return n == 0 ? asio::error::make_error_code(asio::error::eof)
                       : boost::system::error_code(errno, boost::system::system_category());
    }
    co_return ec;
  }

  asio::awaitable<void> WriteSimple(Connection& conn, int status, std::string_view why) {
    bhttp::response<bhttp::string_body> out;
    out.version(11);
    out.result(static_cast<unsigned>(status));
    out.set(bhttp::field::content_type, "text/plain");
    out.body() = std::string(StatusText(status)) + ": " + std::string(why) + "\n";
    out.keep_alive(false);
    out.prepare_payload();
    boost::system::error_code ec;
    conn.stream.expires_after(std::chrono::seconds(5));
    co_await bhttp::async_write(conn.stream, out, asio::redirect_error(asio::use_awaitable, ec));
  }

  ServerOptions opts_;
  std::vector<std::unique_ptr<IoThread>> threads_;
  std::shared_ptr<Site> main_;
  uint16_t port_ = 0;
  std::mutex sites_mu_;
  std::vector<std::weak_ptr<Site>> sites_;  // adopted ones
  std::atomic<size_t> next_adopt_{0};

  std::mutex guard_mu_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  bool running_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> shutdown_requested_{false};

  std::mutex deadline_mu_;
  std::condition_variable deadline_cv_;
  bool finished_ = false;
  std::thread deadline_thread_;

  std::atomic<uint64_t> open_{0}, total_conns_{0}, requests_{0}, bad_{0};
};

}  // namespace

base::Result<std::unique_ptr<Server>> Server::Create(const ServerOptions& options,
                                                     Handler handler) {
  auto server = std::make_unique<ServerImpl>(options, std::move(handler));
  RETURN_IF_ERROR(server->Listen());
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace http
