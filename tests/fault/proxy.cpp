#include "proxy.hpp"

// clang-format off
// Before Boost.Asio: 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>
// clang-format on

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <list>
#include <thread>

namespace invsync::fault {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;

namespace {

// The settings every connection reads before forwarding a chunk.
struct Settings {
  std::atomic<std::int64_t> delay_ms{0};
  std::atomic<bool> stalled{false};
  std::atomic<bool> refusing{false};
};

// A client connection and its upstream connection, each direction pumped by its own loop.
class Link : public std::enable_shared_from_this<Link> {
 public:
  Link(tcp::socket client, net::io_context& io, const Settings& settings)
      : client_(std::move(client)), upstream_(io), settings_(settings) {}

  void Start(const tcp::endpoint& upstream) {
    upstream_.async_connect(upstream, [self = shared_from_this()](boost::system::error_code ec) {
      if (ec) {
        return self->Cut();
      }
      self->Pump(self->client_, self->upstream_, self->to_upstream_);
      self->Pump(self->upstream_, self->client_, self->to_client_);
    });
  }

  // Closes both sockets with a reset (linger 0), so both peers see the connection die.
  void Cut() {
    boost::system::error_code ignored;
    for (auto* socket : {&client_, &upstream_}) {
      if (socket->is_open()) {
        socket->set_option(net::socket_base::linger(true, 0), ignored);
        socket->close(ignored);
      }
    }
  }

 private:
  struct Direction {
    std::array<char, 16384> buffer{};
    std::size_t size = 0;
    std::unique_ptr<net::steady_timer> timer;
  };

  void Pump(tcp::socket& from, tcp::socket& to, Direction& direction) {
    from.async_read_some(net::buffer(direction.buffer),
                         [self = shared_from_this(), &from, &to, &direction](
                             boost::system::error_code ec, std::size_t bytes) {
                           if (ec) {
                             return self->Cut();
                           }
                           direction.size = bytes;
                           self->Hold(from, to, direction, milliseconds(self->settings_.delay_ms));
                         });
  }

  // Waits out the delay and any stall, then forwards the chunk.
  void Hold(tcp::socket& from, tcp::socket& to, Direction& direction, milliseconds wait) {
    if (wait.count() == 0 && !settings_.stalled) {
      return Forward(from, to, direction);
    }
    if (!direction.timer) {
      direction.timer = std::make_unique<net::steady_timer>(to.get_executor());
    }
    direction.timer->expires_after(wait.count() > 0 ? wait : milliseconds(10));
    direction.timer->async_wait(
        [self = shared_from_this(), &from, &to, &direction](boost::system::error_code ec) {
          if (ec || !to.is_open()) {
            return self->Cut();
          }
          self->Hold(from, to, direction, milliseconds(0));
        });
  }

  void Forward(tcp::socket& from, tcp::socket& to, Direction& direction) {
    net::async_write(to, net::buffer(direction.buffer.data(), direction.size),
                     [self = shared_from_this(), &from, &to, &direction](
                         boost::system::error_code ec, std::size_t) {
                       if (ec) {
                         return self->Cut();
                       }
                       self->Pump(from, to, direction);
                     });
  }

  tcp::socket client_;
  tcp::socket upstream_;
  const Settings& settings_;
  Direction to_upstream_;
  Direction to_client_;
};

}  // namespace

class Proxy::Impl {
 public:
  Impl(const std::string& host, std::uint16_t port)
      : upstream_(net::ip::make_address(host), port),
        acceptor_(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {}

  void Run() {
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  void Stop() {
    net::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      CutAll();
      io_.stop();
    });
    if (thread_.joinable()) {
      thread_.join();
    }
  }

  // On the I/O thread only.
  void CutAll() {
    for (auto& weak : links_) {
      if (auto link = weak.lock()) {
        link->Cut();
      }
    }
    links_.clear();
  }

  net::io_context io_{1};
  Settings settings_;
  std::atomic<std::int64_t> accepted_{0};
  tcp::endpoint upstream_;
  tcp::acceptor acceptor_;

 private:
  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) {
        return;
      }
      if (!ec) {
        ++accepted_;
        if (settings_.refusing) {
          boost::system::error_code ignored;
          socket.set_option(net::socket_base::linger(true, 0), ignored);
          socket.close(ignored);
        } else {
          auto link = std::make_shared<Link>(std::move(socket), io_, settings_);
          links_.remove_if([](const std::weak_ptr<Link>& weak) { return weak.expired(); });
          links_.push_back(link);
          link->Start(upstream_);
        }
      }
      Accept();
    });
  }

  std::list<std::weak_ptr<Link>> links_;
  std::thread thread_;
};

Proxy::Proxy(std::string upstream_host, std::uint16_t upstream_port)
    : impl_(std::make_shared<Impl>(upstream_host, upstream_port)) {
  impl_->Run();
}

Proxy::~Proxy() { impl_->Stop(); }

std::uint16_t Proxy::port() const { return impl_->acceptor_.local_endpoint().port(); }

void Proxy::SetDelay(milliseconds delay) { impl_->settings_.delay_ms = delay.count(); }

void Proxy::SetStalled(bool stalled) { impl_->settings_.stalled = stalled; }

void Proxy::SetRefusing(bool refusing) { impl_->settings_.refusing = refusing; }

void Proxy::CutAll() {
  net::post(impl_->io_, [impl = impl_] { impl->CutAll(); });
}

std::int64_t Proxy::accepted() const { return impl_->accepted_; }

}  // namespace invsync::fault
