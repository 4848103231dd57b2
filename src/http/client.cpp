#include "http/client.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "base/strings.h"

namespace http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

base::Result<Url> ParseUrl(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.compare(0, kScheme.size(), kScheme) != 0)
    return base::InvalidArgument("url " + url + ": only http:// is supported");
  std::string_view rest = std::string_view(url).substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  Url u;
  if (slash != std::string_view::npos) u.path = std::string(rest.substr(slash));
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {  // [::1]:port
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return base::InvalidArgument("url " + url + ": bad host");
    host = authority.substr(1, close - 1);
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':')
      return base::InvalidArgument("url " + url + ": bad host");
  } else {
    size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    authority = colon == std::string_view::npos ? std::string_view() : authority.substr(colon);
  }
  if (!authority.empty()) {
    auto port = base::ParseInt(authority.substr(1));
    if (!port || *port <= 0 || *port > 65535)
      return base::InvalidArgument("url " + url + ": bad port");
    u.port = static_cast<uint16_t>(*port);
  }
  if (host.empty()) return base::InvalidArgument("url " + url + ": no host");
  u.host = std::string(host);
  return u;
}

struct Client::Impl {
  std::string host;
  uint16_t port;
  ClientOptions options;
  asio::io_context io;
  std::optional<tcp::socket> socket;
  beast::flat_buffer buffer;

  base::Status Connect() {
    socket.reset();
    buffer.clear();
    boost::system::error_code ec;
    tcp::resolver resolver(io);
    auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) return base::IoError("resolve " + host, ec.value());
    tcp::socket s(io);
    asio::connect(s, endpoints, ec);
    if (ec)
      return base::Status(base::Code::kIo,
                          "connect " + host + ":" + std::to_string(port) + ": " + ec.message());
    // Blocking Beast calls ignore asio deadlines; socket timeouts bound every read/write.
    timeval tv{};
    tv.tv_sec = options.timeout.count() / 1000;
    tv.tv_usec = (options.timeout.count() % 1000) * 1000;
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    socket.emplace(std::move(s));
    return base::Status::Ok();
  }

  // One exchange on the open socket. `*retryable` is set when nothing came back at all
  // (a keep-alive connection the server had closed).
  base::Result<Response> Exchange(const Request& request, bool* retryable) {
    *retryable = false;
    std::string target = request.target;
    if (target.empty())
      target = (request.path.empty() ? "/" : request.path) +
               (request.query.empty() ? "" : "?" + request.query);
    bhttp::request<bhttp::string_body> req{
        bhttp::string_to_verb(request.method.empty() ? "GET" : request.method), target, 11};
    if (req.method() == bhttp::verb::unknown)
      return base::InvalidArgument("http client: unknown method " + request.method);
    for (const Header& h : request.headers) req.insert(h.name, h.value);
    if (req.find(bhttp::field::host) == req.end())
      req.set(bhttp::field::host, host + ":" + std::to_string(port));
    req.body() = request.body;
    req.prepare_payload();
    boost::system::error_code ec;
    bhttp::write(*socket, req, ec);
    if (ec) {
      *retryable = true;
      return base::Status(base::Code::kIo, "http write: " + ec.message());
    }
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(options.max_body_bytes);
    parser.header_limit(64 * 1024);
    if (request.method == "HEAD") parser.skip(true);  // Content-Length, but no body follows
    bhttp::read(*socket, buffer, parser, ec);
    if (ec) {
      *retryable = ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
                   ec == asio::error::eof;
      bool timeout = ec == asio::error::would_block || ec == asio::error::timed_out ||
                     ec == asio::error::try_again;
      return base::Status(timeout ? base::Code::kDeadlineExceeded : base::Code::kIo,
                          "http read: " + ec.message());
    }
    auto& res = parser.get();
    Response out;
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res)
      out.headers.push_back({std::string(f.name_string()), std::string(f.value())});
    out.body = std::move(res.body());
    if (!res.keep_alive()) socket.reset();
    return out;
  }
};

Client::Client(std::string host, uint16_t port, ClientOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->options = options;
}

Client::~Client() = default;

base::Result<Response> Client::Send(const Request& request) {
  bool reused = impl_->socket.has_value();
  if (!reused) RETURN_IF_ERROR(impl_->Connect());
  bool retryable = false;
  auto r = impl_->Exchange(request, &retryable);
  if (r.ok()) return r;
  impl_->socket.reset();
  if (!reused || !retryable) return r;
  RETURN_IF_ERROR(impl_->Connect());
  r = impl_->Exchange(request, &retryable);
  if (!r.ok()) impl_->socket.reset();
  return r;
}

}  // namespace http
