// The listener: our own listening socket (bound to the configured address), an accept loop on
// a native thread that polls so stop() is noticed, TCP_NODELAY on every connection, then the
// A-ASSOCIATE-RQ read by DCMTK on that socket, the association policy (limit, application
// context, calling and called AE titles, each refusal with the standard's result/source/
// reason), the presentation contexts, our Implementation Class UID, and a native thread per
// accepted association.
#include "engine.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "association.hpp"
#include "negotiation.hpp"
#include "dcmtk/dcmnet/dul.h"

namespace engine {

namespace {

constexpr int kListenBacklog = 128;
//! Longest A-ASSOCIATE-RQ waited for (docs/conformance.md 2.1): longer ones are refused.
constexpr uint32_t kMaxAssociatePdu = 65536;
//! How often the accept loop looks at the stop flag.
constexpr int kAcceptPollMs = 200;
//! After the grace period: time for associations to notice the abort before sockets are shut.
constexpr auto kAbortNoticeTime = std::chrono::seconds(3);

//! dcmExternalSocketHandle is one process-wide slot: one connection at a time goes through it.
std::mutex external_socket_mutex;

//! "host:port" of the peer, for log lines (one line per connection can be told apart).
std::string peer_address(int fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return "?";
    char text[INET6_ADDRSTRLEN] = {0};
    uint16_t port = 0;
    if (address.ss_family == AF_INET) {
        const auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
        inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
        port = ntohs(v4->sin_port);
    } else if (address.ss_family == AF_INET6) {
        const auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
        inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
        port = ntohs(v6->sin6_port);
    }
    return std::string(text) + ":" + std::to_string(port);
}

//! A-ABORT reasons of the service provider (PS3.8 table 9-26).
constexpr unsigned char kReasonUnexpectedPdu = 0x02;
constexpr unsigned char kReasonInvalidParameter = 0x06;

//! An A-ABORT from the service provider, then the connection shut (errors ignored: the peer
//! may be gone already).
void send_abort(int fd, unsigned char reason) {
    const unsigned char pdu[10] = {0x07, 0, 0, 0, 0, 4, 0, 0, 0x02, reason};
    (void)!send(fd, pdu, sizeof(pdu), MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_RDWR);
}

}  // namespace

Engine::Engine(EngineConfig config, EngineCallbacks callbacks)
    : config_(std::move(config)), callbacks_(std::move(callbacks)) {
    if (config_.max_pdu < 0) throw std::invalid_argument("max_pdu must not be negative");
    if (config_.max_associations < 1) throw std::invalid_argument("max_associations must be >= 1");
    if (config_.max_pending < 1 || config_.max_pending_per_host < 1) {
        throw std::invalid_argument("max_pending and max_pending_per_host must be >= 1");
    }
    if (config_.artim_timeout < 1 || config_.acse_timeout < 1 || config_.dimse_timeout < 1 ||
        config_.network_timeout < 1) {
        throw std::invalid_argument("timeouts must be at least 1 s");
    }
    if (config_.incoming_dir.empty()) throw std::invalid_argument("incoming_dir is empty");
    // DCMTK 3.6.7 handles PDUs of 4 KiB to 128 KiB: 0 (no limit) and more are announced as
    // its maximum, which the DUL then enforces on every PDU it reads.
    if (config_.max_pdu == 0 || config_.max_pdu > ASC_MAXIMUMPDUSIZE) {
        config_.max_pdu = ASC_MAXIMUMPDUSIZE;
    }
    config_.max_pdu = std::max<long>(config_.max_pdu, ASC_MINIMUMPDUSIZE);
}

Engine::~Engine() {
    stop(0.0);
}

void Engine::start() {
    if (accept_thread_.joinable()) throw std::runtime_error("engine already started");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(config_.port));
    if (inet_pton(AF_INET, config_.bind.c_str(), &address.sin_addr) != 1) {
        throw std::invalid_argument("bind address is not an IPv4 address: " + config_.bind);
    }
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        listen(fd, kListenBacklog) != 0) {
        const std::string reason = std::strerror(errno);
        close(fd);
        throw std::runtime_error("cannot listen on " + config_.bind + ":" +
                                 std::to_string(config_.port) + ": " + reason);
    }
    socklen_t length = sizeof(address);
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    bound_port_ = ntohs(address.sin_port);
    listen_fd_ = fd;
    stopping_ = false;
    abort_ = false;
    dcmDisableGethostbyaddr.set(OFTrue);
    accept_thread_ = std::thread([this] { accept_loop(); });
    log(kInfo, "DICOM engine listening on " + config_.bind + ":" +
                   std::to_string(bound_port_) + " as " + config_.ae_title);
}

void Engine::accept_loop() {
    while (!stopping_) {
        reap_finished(false);
        pollfd waiting{listen_fd_, POLLIN, 0};
        const int ready = poll(&waiting, 1, kAcceptPollMs);
        if (ready <= 0 || stopping_) continue;
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        const int yes = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
        const std::string address = peer_address(fd);
        const std::string host = address.substr(0, address.rfind(':'));
        if (pending_connections() >= config_.max_pending) {
            close(fd);
            log(kWarning, "connection from " + address + " refused: too many "
                           "pending (max_pending " + std::to_string(config_.max_pending) + ")");
            continue;
        }
        if (pending_connections(host) >= config_.max_pending_per_host) {
            close(fd);
            log(kWarning, "connection from " + address + " refused: too many "
                           "pending from " + host + " (max_pending_per_host " +
                           std::to_string(config_.max_pending_per_host) + ")");
            continue;
        }
        auto worker = std::make_unique<Worker>();
        worker->host = host;
        Worker* slot = worker.get();
        std::lock_guard<std::mutex> lock(workers_mutex_);
        workers_.push_back(std::move(worker));
        slot->thread = std::thread([this, slot, fd, address] {
            serve_connection(slot, fd, address);
            std::shared_ptr<Association> finished;
            {
                std::lock_guard<std::mutex> guard(workers_mutex_);
                finished.swap(slot->association);
            }
            finished.reset();  // closes the socket (unless stop() holds it for a moment)
            {
                std::lock_guard<std::mutex> guard(workers_mutex_);
                slot->done = true;
            }
            workers_changed_.notify_all();
        });
    }
}

void Engine::serve_connection(Worker* slot, int fd, const std::string& address) {
    if (!wait_for_request(fd, address)) {
        close(fd);
        return;
    }
    std::shared_ptr<Association> association = negotiate(slot, fd, address);
    if (association) association->run();
}

bool Engine::wait_for_request(int fd, const std::string& address) {
    // The whole A-ASSOCIATE-RQ must be in the socket before DCMTK reads it: DCMTK reads it
    // under the process-wide external-socket slot, where no peer may keep us waiting. Only a
    // bounded peek is ever buffered (an RQ is at most kMaxAssociatePdu bytes).
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::seconds(config_.artim_timeout);
    std::vector<unsigned char> peek(6);
    while (!stopping_) {
        if (std::chrono::steady_clock::now() >= deadline) {
            log(kInfo, "connection from " + address + " closed before A-ASSOCIATE-RQ: "
                           "ARTIM timeout (" + std::to_string(config_.artim_timeout) + " s)");
            return false;
        }
        pollfd waiting{fd, POLLIN, 0};
        if (poll(&waiting, 1, kAcceptPollMs) <= 0) continue;
        const ssize_t got = recv(fd, peek.data(), peek.size(), MSG_PEEK | MSG_DONTWAIT);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
            log(kInfo, "connection from " + address +
                           " closed before A-ASSOCIATE-RQ by the peer");
            return false;
        }
        if (got < 6) continue;
        const uint32_t length = (uint32_t(peek[2]) << 24) | (uint32_t(peek[3]) << 16) |
                                (uint32_t(peek[4]) << 8) | uint32_t(peek[5]);
        if (peek[0] == 0x07) {
            log(kInfo, "connection from " + address + " aborted by the peer before "
                           "A-ASSOCIATE-RQ");
            return false;
        }
        if (peek[0] != 0x01 || length > kMaxAssociatePdu) {
            send_abort(fd, peek[0] != 0x01 ? kReasonUnexpectedPdu : kReasonInvalidParameter);
            std::ostringstream why;
            why << "connection from " << address << " aborted before negotiation: ";
            if (peek[0] != 0x01) {
                why << "PDU type 0x" << std::hex << int(peek[0]) << " instead of A-ASSOCIATE-RQ";
            } else {
                why << "A-ASSOCIATE-RQ length " << length << " over " << kMaxAssociatePdu;
            }
            log(kInfo, why.str());
            return false;
        }
        if (peek.size() == 6) peek.resize(6 + length);
        if (static_cast<size_t>(got) == peek.size()) return true;
    }
    return false;
}

std::shared_ptr<Association> Engine::negotiate(Worker* slot, int fd,
                                               const std::string& address) {
    T_ASC_Network* network_raw = nullptr;
    T_ASC_Association* association_raw = nullptr;
    OFCondition cond;
    {
        std::lock_guard<std::mutex> lock(external_socket_mutex);
        dcmExternalSocketHandle.set(fd);
        cond = ASC_initializeNetwork(NET_ACCEPTOR, 0, config_.acse_timeout, &network_raw);
        if (cond.good()) {
            cond = ASC_receiveAssociation(network_raw, &association_raw, config_.max_pdu,
                                          nullptr, nullptr, OFFalse, DUL_NOBLOCK,
                                          config_.acse_timeout);
        }
        dcmExternalSocketHandle.set(-1);
    }
    NetworkPtr network(network_raw);
    AssociationPtr association(association_raw);
    if (!association) {
        close(fd);  // DCMTK never took the socket: it is ours to close
        log(kInfo, "connection from " + address + " closed before negotiation: " +
                       condition_text(cond));
        return nullptr;
    }
    if (cond.bad()) {
        log(kInfo, "connection from " + address + " closed during negotiation: " +
                       condition_text(cond));
        return nullptr;
    }
    T_ASC_Parameters* params = association->params;
    const Request request = read_request(params);
    const Refusal* refusal = refusal_for(config_, request, !admit(slot));
    if (refusal != nullptr) {
        T_ASC_RejectParameters reject{refusal->result, refusal->source, refusal->reason};
        ASC_rejectAssociation(association.get(), &reject);
        log(kInfo, "association from " + address + " (" + request.calling_ae +
                       " -> " + request.called_ae + ") refused: " + refusal->words);
        return nullptr;
    }
    accept_contexts(params, config_.contexts);
    // Answer as the title called (ours or a printer profile's), with our implementation.
    answer_as(params, called_title_known(config_, request.called_ae) ? request.called_ae
                                                                     : config_.ae_title);
    cond = ASC_acknowledgeAssociation(association.get());
    if (cond.bad()) {
        log(kInfo, "association from " + address + " lost while accepting: " +
                       condition_text(cond));
        return nullptr;
    }
    auto accepted = std::make_shared<Association>(
        *this, std::move(network), std::move(association), fd,
        Peer{address, request.calling_ae, request.called_ae}, next_association_id_++);
    std::lock_guard<std::mutex> lock(workers_mutex_);
    slot->association = accepted;
    return accepted;
}

bool Engine::send_event(uint64_t id, EventReport event) {
    std::lock_guard<std::mutex> lock(workers_mutex_);
    for (auto& worker : workers_) {
        if (!worker->done && worker->association && worker->association->id() == id) {
            worker->association->post_event(std::move(event));
            return true;
        }
    }
    return false;
}

bool Engine::admit(Worker* slot) {
    std::lock_guard<std::mutex> lock(workers_mutex_);
    const auto admitted = std::count_if(workers_.begin(), workers_.end(), [](const auto& w) {
        return w->admitted && !w->done;
    });
    if (admitted >= config_.max_associations) return false;
    slot->admitted = true;
    return true;
}

int Engine::pending_connections(const std::string& host) {
    std::lock_guard<std::mutex> lock(workers_mutex_);
    return static_cast<int>(std::count_if(workers_.begin(), workers_.end(), [&](const auto& w) {
        return !w->admitted && !w->done && (host.empty() || w->host == host);
    }));
}

int Engine::active_associations() {
    std::lock_guard<std::mutex> lock(workers_mutex_);
    return static_cast<int>(std::count_if(workers_.begin(), workers_.end(), [](const auto& w) {
        return w->admitted && !w->done;
    }));
}

void Engine::reap_finished(bool all) {
    std::list<std::unique_ptr<Worker>> finished;
    {
        std::lock_guard<std::mutex> lock(workers_mutex_);
        for (auto it = workers_.begin(); it != workers_.end();) {
            if (all || (*it)->done) {
                finished.push_back(std::move(*it));
                it = workers_.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (auto& worker : finished) {
        if (worker->thread.joinable()) worker->thread.join();
    }
}

void Engine::stop(double grace) {
    if (!accept_thread_.joinable()) return;
    stopping_ = true;
    accept_thread_.join();
    close(listen_fd_);
    listen_fd_ = -1;
    {
        std::unique_lock<std::mutex> lock(workers_mutex_);
        const auto deadline = std::chrono::steady_clock::now() +
                              std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                  std::chrono::duration<double>(std::max(grace, 0.0)));
        workers_changed_.wait_until(lock, deadline, [this] {
            return std::all_of(workers_.begin(), workers_.end(),
                               [](const auto& worker) { return worker->done.load(); });
        });
        const auto open = std::count_if(workers_.begin(), workers_.end(),
                                        [](const auto& worker) { return !worker->done; });
        if (open > 0) {
            abort_ = true;
            log(kWarning, "aborting " + std::to_string(open) +
                           " association(s) still open after the grace period");
            // Each association notices within 100 ms between commands; one stuck inside a
            // message gets its socket shut after kAbortNoticeTime.
            if (!workers_changed_.wait_for(lock, kAbortNoticeTime, [this] {
                    return std::all_of(workers_.begin(), workers_.end(),
                                       [](const auto& worker) { return worker->done.load(); });
                })) {
                for (auto& worker : workers_) {
                    auto association = worker->association;
                    if (!worker->done && association) association->force_close();
                }
            }
        }
    }
    reap_finished(true);
    log(kInfo, "DICOM engine stopped");
}

}  // namespace engine
