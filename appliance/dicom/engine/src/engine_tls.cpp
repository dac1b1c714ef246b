// The engine's TLS listener over its life: the settings given before start(), and a new
// certificate, CA bundle or port applied while it runs. New handshakes get the new context,
// connections already in a handshake or an association keep the one they started with, and
// the plain listener is never touched, so a certificate renewal drops nobody.
#include <unistd.h>

#include <stdexcept>
#include <utility>

#include "engine.hpp"

namespace engine {

void Engine::store_tls_config(int port, std::string certificate, std::string private_key,
                              std::string ca_certificates, bool require_client_certificate) {
    std::lock_guard<std::mutex> lock(config_mutex_);
    auto next = std::make_shared<EngineConfig>(*config_);
    next->tls_port = port;
    next->tls_certificate = std::move(certificate);
    next->tls_private_key = std::move(private_key);
    next->tls_ca_certificates = std::move(ca_certificates);
    next->tls_require_client_certificate = require_client_certificate;
    config_ = std::move(next);
}

void Engine::set_tls(int port, std::string certificate, std::string private_key,
                     std::string ca_certificates, bool require_client_certificate) {
    if (port < 0 || port > 65535) throw std::invalid_argument("TLS port out of range");
    std::lock_guard<std::mutex> changing(tls_change_mutex_);
    if (accept_thread_.joinable()) {
        // Everything that can fail first: the files, then the new port.
        auto server = std::make_shared<const TlsServer>(certificate, private_key,
                                                        ca_certificates,
                                                        require_client_certificate);
        const auto current = config();
        int listening = -1;
        {
            std::lock_guard<std::mutex> lock(tls_mutex_);
            listening = tls_listen_fd_;
        }
        int fd = -1, bound = -1;
        if (listening < 0 || current->tls_port != port) fd = listen_on(current->bind, port, bound);
        std::unique_lock<std::mutex> lock(tls_mutex_);
        tls_ = std::move(server);
        if (fd >= 0) {
            if (tls_listen_fd_ >= 0) retired_tls_fds_.push_back(tls_listen_fd_);
            tls_listen_fd_ = fd;
            bound_tls_port_ = bound;
            wait_retired_closed(lock);
        }
    }
    store_tls_config(port, std::move(certificate), std::move(private_key),
                     std::move(ca_certificates), require_client_certificate);
    if (accept_thread_.joinable()) {
        log(kInfo, "DICOM engine: TLS on port " + std::to_string(bound_tls_port_) +
                       " with the certificate " + config()->tls_certificate);
    }
}

void Engine::disable_tls() {
    std::lock_guard<std::mutex> changing(tls_change_mutex_);
    {
        std::unique_lock<std::mutex> lock(tls_mutex_);
        tls_.reset();
        if (tls_listen_fd_ >= 0) retired_tls_fds_.push_back(tls_listen_fd_);
        tls_listen_fd_ = -1;
        bound_tls_port_ = -1;
        wait_retired_closed(lock);
    }
    store_tls_config(-1, "", "", "", true);
}

std::shared_ptr<const TlsServer> Engine::tls_server() const {
    std::lock_guard<std::mutex> lock(tls_mutex_);
    return tls_;
}

void Engine::wait_retired_closed(std::unique_lock<std::mutex>& lock) {
    // The accept loop may be polling the old listener: it closes it at its next turn (within
    // kAcceptPollMs), after which the port is free for whoever binds it next.
    if (!accept_thread_.joinable() || stopping_) return;
    retired_closed_.wait_for(lock, std::chrono::seconds(2),
                             [this] { return retired_tls_fds_.empty(); });
}

int Engine::tls_listener() {
    std::lock_guard<std::mutex> lock(tls_mutex_);
    for (const int fd : retired_tls_fds_) close(fd);
    if (!retired_tls_fds_.empty()) {
        retired_tls_fds_.clear();
        retired_closed_.notify_all();
    }
    return tls_listen_fd_;
}

void Engine::close_tls_listener() {
    std::lock_guard<std::mutex> lock(tls_mutex_);
    for (const int fd : retired_tls_fds_) close(fd);
    retired_tls_fds_.clear();
    if (tls_listen_fd_ >= 0) close(tls_listen_fd_);
    tls_listen_fd_ = -1;
    bound_tls_port_ = -1;
}

}  // namespace engine
