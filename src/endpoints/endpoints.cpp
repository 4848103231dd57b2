#include "endpoints/endpoints.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "base/strings.h"

namespace endpoints {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using asio::ip::udp;

namespace {

// Names served: amazonaws.com and api.aws, and anything under them.
bool OurName(const std::string& name) {
  std::string n = base::ToLower(name);
  if (!n.empty() && n.back() == '.') n.pop_back();
  auto under = [&n](const std::string& zone) {
    return n == zone ||
           (n.size() > zone.size() && n.compare(n.size() - zone.size() - 1, std::string::npos,
                                                "." + zone) == 0);
  };
  return under("amazonaws.com") || under("api.aws");
}

// One sandbox's sockets: closed together.
struct Site {
  std::mutex mu;
  bool closed = false;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<udp::socket> dns;
  std::set<std::shared_ptr<ssl::stream<tcp::socket>>> tls;
  std::set<std::shared_ptr<tcp::socket>> upstream;
};

}  // namespace

std::string DnsAnswer(std::string_view q) {
  if (q.size() < 12 || q.size() > 512) return "";
  auto u16 = [&q](size_t at) {
    return static_cast<uint16_t>((static_cast<uint8_t>(q[at]) << 8) | static_cast<uint8_t>(q[at + 1]));
  };
  uint16_t flags = u16(2);
  if (flags & 0x8000) return "";  // a response, not a query
  uint16_t qdcount = u16(4);
  std::string out(q.substr(0, 2));  // id
  auto reply = [&](uint16_t rcode, size_t question_end, bool answer) {
    uint16_t f = static_cast<uint16_t>(0x8000 | (flags & 0x7800) | 0x0400 | (flags & 0x0100) |
                                       0x0080 | rcode);
    out += static_cast<char>(f >> 8);
    out += static_cast<char>(f & 0xff);
    out += std::string("\0", 1) + static_cast<char>(question_end ? 1 : 0);  // qdcount
    out += std::string("\0", 1) + static_cast<char>(answer ? 1 : 0);        // ancount
    out += std::string(4, '\0');                                           // ns, ar
    if (question_end) out += q.substr(12, question_end - 12);
    if (answer) {
      static const char kA[] = {'\xc0', '\x0c', 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
      out.append(kA, sizeof kA);
    }
    return out;
  };
  if (((flags >> 11) & 0xf) != 0 || qdcount != 1) return reply(4 /*NOTIMP*/ , 0, false);
  // The question: labels, then type and class.
  size_t at = 12;
  std::string name;
  for (;;) {
    if (at >= q.size()) return reply(1 /*FORMERR*/, 0, false);
    uint8_t len = static_cast<uint8_t>(q[at]);
    if (len == 0) {
      ++at;
      break;
    }
    if (len > 63 || at + 1 + len > q.size() || name.size() + len > 253)
      return reply(1, 0, false);
    name += std::string(q.substr(at + 1, len)) + ".";
    at += 1 + len;
  }
  if (at + 4 > q.size()) return reply(1, 0, false);
  uint16_t qtype = u16(at), qclass = u16(at + 2);
  size_t question_end = at + 4;
  if (!OurName(name) || qclass != 1) return reply(3 /*NXDOMAIN*/, question_end, false);
  return reply(0, question_end, qtype == 1 /*A*/);
}

namespace {

class ServedImpl : public Served {
 public:
  ServedImpl(asio::io_context& io, std::shared_ptr<Site> site) : io_(io), site_(std::move(site)) {}
  ~ServedImpl() override {
    auto site = site_;
    asio::post(io_, [site] {
      std::lock_guard lock(site->mu);
      site->closed = true;
      boost::system::error_code ec;
      if (site->acceptor) site->acceptor->close(ec);
      if (site->dns) site->dns->close(ec);
      for (auto& s : site->tls) s->lowest_layer().close(ec);
      for (auto& s : site->upstream) s->close(ec);
    });
  }

 private:
  asio::io_context& io_;
  std::shared_ptr<Site> site_;
};

class EndpointsImpl : public Endpoints {
 public:
  EndpointsImpl(ssl::context ctx, uint16_t upstream_port)
      : ctx_(std::move(ctx)), upstream_port_(upstream_port), guard_(io_.get_executor()) {
    thread_ = std::thread([this] { io_.run(); });
  }
  ~EndpointsImpl() override { Shutdown(); }

  void Shutdown() override {
    std::call_once(shutdown_, [this] {
      guard_.reset();
      io_.stop();
      if (thread_.joinable()) thread_.join();
    });
  }

  Stats stats() const override {
    return {tls_.load(), handshake_failures_.load(), dns_.load()};
  }

  base::Result<std::unique_ptr<Served>> Serve(base::UniqueFd tls_listener,
                                              base::UniqueFd dns_socket) override {
    auto site = std::make_shared<Site>();
    boost::system::error_code ec;
    if (tls_listener.valid()) {
      site->acceptor = std::make_unique<tcp::acceptor>(io_);
      site->acceptor->assign(tcp::v4(), tls_listener.get(), ec);
      if (ec) return base::Internal("endpoints: adopt listener: " + ec.message());
      tls_listener.Release();
    }
    if (dns_socket.valid()) {
      site->dns = std::make_unique<udp::socket>(io_);
      site->dns->assign(udp::v4(), dns_socket.get(), ec);
      if (ec) return base::Internal("endpoints: adopt dns socket: " + ec.message());
      dns_socket.Release();
    }
    asio::post(io_, [this, site] {
      if (site->acceptor) asio::co_spawn(io_, Accept(site), asio::detached);
      if (site->dns) asio::co_spawn(io_, Dns(site), asio::detached);
    });
    return std::unique_ptr<Served>(std::make_unique<ServedImpl>(io_, site));
  }

 private:
  asio::awaitable<void> Accept(std::shared_ptr<Site> site) {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket sock = co_await site->acceptor->async_accept(
          asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
        std::lock_guard lock(site->mu);
        if (site->closed) co_return;
        continue;
      }
      asio::co_spawn(io_, Session(site, std::move(sock)), asio::detached);
    }
  }

  asio::awaitable<void> Session(std::shared_ptr<Site> site, tcp::socket sock) {
    auto tls = std::make_shared<ssl::stream<tcp::socket>>(std::move(sock), ctx_);
    auto up = std::make_shared<tcp::socket>(io_);
    {
      std::lock_guard lock(site->mu);
      if (site->closed) co_return;
      site->tls.insert(tls);
      site->upstream.insert(up);
    }
    boost::system::error_code ec;
    asio::steady_timer deadline(io_);
    deadline.expires_after(std::chrono::seconds(10));
    deadline.async_wait([tls](boost::system::error_code e) {
      if (!e) {
        boost::system::error_code ignored;
        tls->lowest_layer().close(ignored);
      }
    });
    co_await tls->async_handshake(ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
    deadline.cancel();
    if (!ec) {
      ++tls_;
      co_await up->async_connect(
          tcp::endpoint(asio::ip::address_v4::loopback(), upstream_port_),
          asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) {
        up->set_option(tcp::no_delay(true), ec);
        ec = {};
        asio::co_spawn(io_, Pump(*tls, *up, tls, up), asio::detached);
        co_await Pump(*up, *tls, tls, up);
      }
    } else {
      ++handshake_failures_;
    }
    boost::system::error_code ignored;
    tls->lowest_layer().close(ignored);
    up->close(ignored);
    std::lock_guard lock(site->mu);
    site->tls.erase(tls);
    site->upstream.erase(up);
  }

  // Copies from `from` to `to` until either side ends, then closes both.
  template <typename From, typename To>
  asio::awaitable<void> Pump(From& from, To& to, std::shared_ptr<ssl::stream<tcp::socket>> tls,
                             std::shared_ptr<tcp::socket> up) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
      boost::system::error_code ec;
      size_t n = co_await from.async_read_some(asio::buffer(buf),
                                               asio::redirect_error(asio::use_awaitable, ec));
      if (ec || n == 0) break;
      co_await asio::async_write(to, asio::buffer(buf.data(), n),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    boost::system::error_code ignored;
    tls->lowest_layer().close(ignored);
    up->close(ignored);
  }

  asio::awaitable<void> Dns(std::shared_ptr<Site> site) {
    std::vector<char> buf(1500);
    for (;;) {
      udp::endpoint from;
      boost::system::error_code ec;
      size_t n = co_await site->dns->async_receive_from(
          asio::buffer(buf), from, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
        std::lock_guard lock(site->mu);
        if (site->closed) co_return;
        continue;
      }
      ++dns_;
      std::string answer = DnsAnswer(std::string_view(buf.data(), n));
      if (answer.empty()) continue;
      co_await site->dns->async_send_to(asio::buffer(answer), from,
                                        asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  asio::io_context io_;
  ssl::context ctx_;
  uint16_t upstream_port_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
  std::once_flag shutdown_;
  std::atomic<uint64_t> tls_{0}, handshake_failures_{0}, dns_{0};
};

}  // namespace

base::Result<std::unique_ptr<Endpoints>> StartEndpoints(const Authority& authority,
                                                        uint16_t upstream_port) {
  ssl::context ctx(ssl::context::tls_server);
  boost::system::error_code ec;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                  ec);
  std::string chain = authority.cert_pem + authority.ca_cert_pem;
  ctx.use_certificate_chain(asio::buffer(chain), ec);
  if (ec) return base::Internal("endpoints: certificate: " + ec.message());
  ctx.use_private_key(asio::buffer(authority.key_pem), ssl::context::pem, ec);
  if (ec) return base::Internal("endpoints: key: " + ec.message());
  return std::unique_ptr<Endpoints>(std::make_unique<EndpointsImpl>(std::move(ctx), upstream_port));
}

}  // namespace endpoints
