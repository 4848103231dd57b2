// server::App — one running Stratus server: the store, the services, the edge and the
// listener, wired together (DESIGN §1: server/ is where the layers meet).
//
// Create() opens everything and binds the listener (so port() is valid); Run() serves
// until Shutdown() (or SIGTERM/SIGINT when run via RunUntilSignal), then drains requests
// in flight and closes the store cleanly.
#pragma once

#include <memory>

#include "base/status.h"
#include "server/config.h"

namespace server {

class App {
 public:
  virtual ~App() = default;
  static base::Result<std::unique_ptr<App>> Create(const Config& config);
  virtual uint16_t port() const = 0;
  virtual void Run() = 0;
  virtual void Shutdown() = 0;
};

// Creates the app, serves until SIGTERM or SIGINT, shuts down gracefully. Returns the
// process exit code.
int RunServer(const Config& config);

}  // namespace server
