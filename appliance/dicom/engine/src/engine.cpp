// The listener: our own listening socket (bound to the configured address), an accept loop on
// a native thread that polls so stop() is noticed, TCP_NODELAY on every connection, then the
// A-ASSOCIATE-RQ read by DCMTK on that socket, the association policy (limit, application
// context, calling and called AE titles, each refusal with the standard's result/source/
// reason), the presentation contexts, our Implementation Class UID, and each accepted
// connection served on a thread of the pool (thread_pool.hpp).
#include "engine.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "abort_pdu.hpp"
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

//! Make the socket readable only once `count` bytes are in (or at its end); returns the mark.
size_t set_low_water(int fd, size_t count) {
    const int mark = static_cast<int>(count);
    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &mark, sizeof(mark));
    return count;
}

}  // namespace

namespace {

//! `config` checked, with max_pdu as DCMTK will announce it.
std::shared_ptr<const EngineConfig> checked(EngineConfig config) {
    if (config.max_pdu < 0) throw std::invalid_argument("max_pdu must not be negative");
    if (config.max_associations < 1) throw std::invalid_argument("max_associations must be >= 1");
    if (config.max_pending < 1 || config.max_pending_per_host < 1) {
        throw std::invalid_argument("max_pending and max_pending_per_host must be >= 1");
    }
    if (config.artim_timeout < 1 || config.acse_timeout < 1 || config.dimse_timeout < 1 ||
        config.network_timeout < 1) {
        throw std::invalid_argument("timeouts must be at least 1 s");
    }
    if (config.incoming_dir.empty()) throw std::invalid_argument("incoming_dir is empty");
    // DCMTK 3.6.7 handles PDUs of 4 KiB to 128 KiB: 0 (no limit) and more are announced as
    // its maximum, which the DUL then enforces on every PDU it reads.
    if (config.max_pdu == 0 || config.max_pdu > ASC_MAXIMUMPDUSIZE) {
        config.max_pdu = ASC_MAXIMUMPDUSIZE;
    }
    config.max_pdu = std::max<long>(config.max_pdu, ASC_MINIMUMPDUSIZE);
    return std::make_shared<const EngineConfig>(std::move(config));
}

}  // namespace

Engine::Engine(EngineConfig config, EngineCallbacks callbacks)
    : config_(checked(std::move(config))), callbacks_(std::move(callbacks)) {}

void Engine::update_policy(EngineConfig config) {
    {
        std::lock_guard<std::mutex> lock(config_mutex_);  // TLS stays as started
        config.tls_port = config_->tls_port;
        config.tls_certificate = config_->tls_certificate;
        config.tls_private_key = config_->tls_private_key;
        config.tls_ca_certificates = config_->tls_ca_certificates;
        config.tls_require_client_certificate = config_->tls_require_client_certificate;
    }
    auto next = checked(std::move(config));
    std::lock_guard<std::mutex> lock(config_mutex_);
    const char* fixed = next->bind != config_->bind                 ? "bind"
                        : next->port != config_->port               ? "port"
                        : next->contexts != config_->contexts       ? "contexts"
                        : next->retrieve_storage != config_->retrieve_storage
                            ? "retrieve_storage"
                        : next->incoming_dir != config_->incoming_dir ? "incoming_dir"
                                                                      : nullptr;
    if (fixed != nullptr) {
        throw std::invalid_argument(std::string(fixed) + " cannot change while the engine runs "
                                    "(restart it)");
    }
    config_ = std::move(next);
}

Engine::~Engine() {
    stop(0.0);
}

int Engine::listen_on(const std::string& bind_address, int port, int& bound) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, bind_address.c_str(), &address.sin_addr) != 1) {
        throw std::invalid_argument("bind address is not an IPv4 address: " + bind_address);
    }
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        listen(fd, kListenBacklog) != 0) {
        const std::string reason = std::strerror(errno);
        close(fd);
        throw std::runtime_error("cannot listen on " + bind_address + ":" +
                                 std::to_string(port) + ": " + reason);
    }
    socklen_t length = sizeof(address);
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    bound = ntohs(address.sin_port);
    return fd;
}

void Engine::start() {
    if (accept_thread_.joinable()) throw std::runtime_error("engine already started");
    const auto config = this->config();
    const EngineConfig& policy = *config;
    std::shared_ptr<const TlsServer> tls;
    if (policy.tls_port >= 0) {
        tls = std::make_shared<const TlsServer>(policy.tls_certificate, policy.tls_private_key,
                                                policy.tls_ca_certificates,
                                                policy.tls_require_client_certificate);
    }
    listen_fd_ = listen_on(policy.bind, policy.port, bound_port_);
    if (tls) {
        int bound = -1;
        try {
            const int fd = listen_on(policy.bind, policy.tls_port, bound);
            std::lock_guard<std::mutex> lock(tls_mutex_);
            tls_ = std::move(tls);
            tls_listen_fd_ = fd;
            bound_tls_port_ = bound;
        } catch (...) {
            close(listen_fd_);
            listen_fd_ = -1;
            throw;
        }
    }
    stopping_ = false;
    abort_ = false;
    dcmDisableGethostbyaddr.set(OFTrue);
    pool_.start();
    accept_thread_ = std::thread([this] { accept_loop(); });
    pthread_setname_np(accept_thread_.native_handle(), "dicom-accept");  // top -H, ps -L
    log(kInfo, "DICOM engine listening on " + policy.bind + ":" +
                   std::to_string(bound_port_) + " as " + policy.ae_title +
                   (bound_tls_port_ >= 0 ? ", TLS on port " + std::to_string(bound_tls_port_)
                                         : ""));
}

void Engine::accept_loop() {
    while (!stopping_) {
        reap_finished(false);
        const int tls_fd = tls_listener();  // set_tls may move it while we run
        pollfd waiting[2] = {{listen_fd_, POLLIN, 0}, {tls_fd, POLLIN, 0}};
        const int ready = poll(waiting, tls_fd >= 0 ? 2 : 1, kAcceptPollMs);
        if (ready <= 0 || stopping_) continue;
        const bool tls = !(waiting[0].revents & POLLIN);
        const int fd = accept4(tls ? tls_fd : listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        const int yes = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
        const std::string address = peer_address(fd);
        const std::string host = address.substr(0, address.rfind(':'));
        // This connection's policy from here on, whatever update_policy does meanwhile.
        auto config = this->config();
        const EngineConfig& policy = *config;
        if (pending_connections() >= policy.max_pending) {
            refuse_at_once(fd, address, "refused: too many pending connections "
                           "(max_pending_connections " + std::to_string(policy.max_pending) +
                           ")");
            continue;
        }
        if (pending_connections(host) >= policy.max_pending_per_host) {
            refuse_at_once(fd, address, "refused: too many pending from " + host +
                           " (max_pending_per_host " +
                           std::to_string(policy.max_pending_per_host) + ")");
            continue;
        }
        auto worker = std::make_unique<Worker>();
        worker->host = host;
        Worker* slot = worker.get();
        {
            std::lock_guard<std::mutex> lock(workers_mutex_);
            workers_.push_back(std::move(worker));
        }
        pool_.run([this, slot, fd, address, config, tls] {
            ConnectionRecord record;
            record.peer = address;
            serve_connection(slot, fd, record, config, tls);
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

void Engine::refuse_at_once(int fd, const std::string& address, const std::string& outcome) {
    ConnectionRecord record;
    record.peer = address;
    notify(record.event(AssociationEvent::kOpened));
    close(fd);
    record.outcome = outcome;
    connection_log(kWarning, "connection from " + address + " " + outcome);
    notify(record.event(AssociationEvent::kEnded));
}

void Engine::serve_connection(Worker* slot, int fd, ConnectionRecord& record,
                              const std::shared_ptr<const EngineConfig>& config, bool tls) {
    notify(record.event(AssociationEvent::kOpened));
    uint32_t length = 0;
    SslPtr ssl;
    if (tls) ssl = secure(fd, *config, record, length);
    if (tls ? !ssl : !wait_for_request(fd, *config, record, length)) {
        close(fd);
    } else if (auto association = negotiate(slot, fd, length, config, record, std::move(ssl))) {
        notify(record.event(AssociationEvent::kEstablished));
        association->run(record);
    }
    notify(record.event(AssociationEvent::kEnded));
}

SslPtr Engine::secure(int fd, const EngineConfig& policy, ConnectionRecord& record,
                      uint32_t& length) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::seconds(policy.artim_timeout);
    set_blocking(fd, false);
    std::string outcome, subject;
    const auto server = tls_server();
    SslPtr ssl = server ? server->handshake(fd, deadline, outcome, subject) : nullptr;
    if (!server) outcome = "closed before A-ASSOCIATE-RQ: the TLS listener was closed";
    if (ssl && !whole_request_buffered(ssl.get(), fd, deadline, kMaxAssociatePdu, length,
                                       outcome)) {
        ssl.reset();
    }
    set_blocking(fd, true);
    if (!ssl) {
        record.outcome = outcome;
        connection_log(kInfo, "TLS connection from " + record.peer + " " + outcome);
        return nullptr;
    }
    record.peer += " (TLS" + (subject.empty() ? std::string() : ", " + subject) + ")";
    return ssl;
}

bool Engine::wait_for_request(int fd, const EngineConfig& policy, ConnectionRecord& record,
                              uint32_t& length) {
    // The whole A-ASSOCIATE-RQ must be in the socket before DCMTK reads it: DCMTK reads it
    // under the process-wide external-socket slot, where no peer may keep us waiting. Only a
    // bounded peek is ever buffered (an RQ is at most kMaxAssociatePdu bytes).
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::seconds(policy.artim_timeout);
    const std::string& address = record.peer;
    std::vector<unsigned char> peek(6);
    // The outcomes are the association log's (connection_gate.py) words.
    auto closed = [&](const std::string& outcome) {
        record.outcome = outcome;
        connection_log(kInfo, "connection from " + address + " " + outcome);
        return false;
    };
    bool have_length = false;
    size_t wanted = 1;  // bytes needed before the next decision (SO_RCVLOWAT)
    while (!stopping_) {
        if (std::chrono::steady_clock::now() >= deadline) {
            return closed("closed before A-ASSOCIATE-RQ: ARTIM timeout (" +
                          std::to_string(policy.artim_timeout) + " s)");
        }
        pollfd waiting{fd, POLLIN | POLLRDHUP, 0};
        if (poll(&waiting, 1, kAcceptPollMs) <= 0) continue;
        const ssize_t got = recv(fd, peek.data(), peek.size(), MSG_PEEK | MSG_DONTWAIT);
        if (got < 0 && errno != EAGAIN && errno != EINTR) {
            return closed(std::string("closed before A-ASSOCIATE-RQ: ") + std::strerror(errno));
        }
        if (got == 0) {
            return closed("closed before A-ASSOCIATE-RQ: connection closed by peer");
        }
        if (got < 0) continue;
        if (peek[0] == 0x07) return closed("closed before A-ASSOCIATE-RQ: A-ABORT from peer");
        if (peek[0] != 0x01) {
            send_provider_abort(fd, kReasonUnexpectedPdu);
            char type[3];
            std::snprintf(type, sizeof(type), "%02X", peek[0]);
            return closed(std::string("aborted: PDU type 0x") + type + " before A-ASSOCIATE-RQ");
        }
        if (!have_length && got >= 6) {
            have_length = true;
            length = (uint32_t(peek[2]) << 24) | (uint32_t(peek[3]) << 16) |
                     (uint32_t(peek[4]) << 8) | uint32_t(peek[5]);
            if (length > kMaxAssociatePdu) {
                send_provider_abort(fd, kReasonInvalidParameter);
                return closed("aborted: A-ASSOCIATE-RQ length " + std::to_string(length) +
                              " over the limit " + std::to_string(kMaxAssociatePdu));
            }
            peek.resize(6 + length);
            continue;  // peek again, for the whole of it
        }
        if (static_cast<size_t>(got) == peek.size()) {
            set_low_water(fd, 1);
            return true;
        }
        if (waiting.revents & (POLLRDHUP | POLLHUP | POLLERR)) {  // the rest will never come
            return closed("closed before A-ASSOCIATE-RQ: connection closed by peer, " +
                          std::to_string(got) + " bytes received");
        }
        // Wake only when all of it is in (or at the end of the stream): no spinning on a
        // half-sent request.
        if (wanted != peek.size()) wanted = set_low_water(fd, peek.size());
    }
    return closed("closed before A-ASSOCIATE-RQ: the listener stopped");
}

namespace {

std::vector<AcceptedContext> accepted_contexts(T_ASC_Parameters* params) {
    std::vector<AcceptedContext> accepted;
    const int count = ASC_countPresentationContexts(params);
    for (int position = 0; position < count; ++position) {
        T_ASC_PresentationContext context;
        if (ASC_getPresentationContext(params, position, &context).bad()) continue;
        if (context.resultReason != ASC_P_ACCEPTANCE) continue;
        accepted.push_back(AcceptedContext{context.presentationContextID,
                                           context.abstractSyntax,
                                           context.acceptedTransferSyntax});
    }
    return accepted;
}

}  // namespace

std::shared_ptr<Association> Engine::negotiate(Worker* slot, int fd, uint32_t length,
                                               const std::shared_ptr<const EngineConfig>& config,
                                               ConnectionRecord& record, SslPtr ssl) {
    const EngineConfig& policy = *config;
    // On a TLS connection every byte goes through the TLS session: no raw A-ABORT on the
    // socket (DCMTK aborts through it, or the connection is closed).
    const bool tls = ssl != nullptr;
    const std::string& address = record.peer;
    T_ASC_Network* network_raw = nullptr;
    T_ASC_Association* association_raw = nullptr;
    OFCondition cond;
    bool network_ready = false;
    {
        std::lock_guard<std::mutex> lock(external_socket_mutex);
        dcmExternalSocketHandle.set(fd);
        cond = ASC_initializeNetwork(NET_ACCEPTOR, 0, policy.acse_timeout, &network_raw);
        if (cond.good()) {
            network_ready = true;
            if (tls) {  // the network owns the layer, DCMTK's association the connection
                ASC_setTransportLayer(
                    network_raw, std::make_unique<HandedConnectionLayer>(std::move(ssl)).release(),
                    1);
            }
            cond = ASC_receiveAssociation(network_raw, &association_raw, policy.max_pdu,
                                          nullptr, nullptr, tls ? OFTrue : OFFalse, DUL_NOBLOCK,
                                          policy.acse_timeout);
        }
        dcmExternalSocketHandle.set(-1);
    }
    NetworkPtr network(network_raw);
    AssociationPtr association(association_raw);
    if (!association) {
        // DCMTK never took the socket: it is ours to close. The gate's words for a request
        // that does not decode (it sends an A-ABORT too).
        if (network_ready) {
            if (!tls) send_provider_abort(fd, kReasonInvalidParameter);
            record.outcome = "aborted: A-ASSOCIATE-RQ of " + std::to_string(length) +
                             " bytes cannot be decoded";
        } else {
            record.outcome = "closed during negotiation: cannot start the association";
        }
        close(fd);
        connection_log(kInfo, "connection from " + address + " " + record.outcome + " (" +
                                  condition_text(cond) + ")");
        return nullptr;
    }
    T_ASC_Parameters* params = association->params;
    const Request request = read_request(params);
    record.calling_ae = request.calling_ae;
    record.called_ae = request.called_ae;
    if (cond == DUL_PEERABORTEDASSOCIATION) {
        record.outcome = "aborted during negotiation";
        connection_log(kInfo, "connection from " + address + " " + record.outcome);
        return nullptr;
    }
    if (cond.bad()) {
        // The whole RQ was in the socket: DCMTK could not make sense of it. A-ABORT (as the
        // gate does, PS3.8 9.3.1), on the socket DCMTK holds until the association is dropped.
        if (tls) {
            ASC_abortAssociation(association.get());
        } else {
            send_provider_abort(fd, kReasonInvalidParameter);
        }
        record.outcome = "aborted: A-ASSOCIATE-RQ of " + std::to_string(length) +
                         " bytes cannot be decoded";
        connection_log(kInfo, "connection from " + address + " " + record.outcome + " (" +
                                  condition_text(cond) + ")");
        return nullptr;
    }
    const Refusal* refusal = refusal_for(policy, request, !admit(slot, policy.max_associations));
    if (refusal != nullptr) {
        T_ASC_RejectParameters reject{refusal->result, refusal->source, refusal->reason};
        ASC_rejectAssociation(association.get(), &reject);
        record.outcome = std::string("rejected: ") + refusal->outcome;
        connection_log(kInfo, "association from " + address + " (" + request.calling_ae +
                                  " -> " + request.called_ae + ") refused: " + refusal->words);
        return nullptr;
    }
    accept_contexts(params, policy.contexts, policy.retrieve_storage);
    // Answer as the title called (ours or a printer profile's), with our implementation.
    answer_as(params, called_title_known(policy, request.called_ae) ? request.called_ae
                                                                     : policy.ae_title);
    cond = ASC_acknowledgeAssociation(association.get());
    if (cond.bad()) {
        record.outcome = "closed during negotiation";
        connection_log(kInfo, "association from " + address + " lost while accepting: " +
                                  condition_text(cond));
        return nullptr;
    }
    record.contexts = accepted_contexts(params);
    record.association_id = next_association_id_++;
    record.outcome = "connection closed";
    auto accepted = std::make_shared<Association>(
        *this, config, std::move(network), std::move(association), fd,
        Peer{address, request.calling_ae, request.called_ae, tls}, record.association_id);
    std::lock_guard<std::mutex> lock(workers_mutex_);
    slot->association = accepted;
    return accepted;
}

AssociationEvent ConnectionRecord::event(AssociationEvent::Kind kind) const {
    AssociationEvent event;
    event.kind = kind;
    event.association_id = association_id;
    event.peer = peer;
    event.calling_ae = calling_ae;
    event.called_ae = called_ae;
    event.contexts = contexts;
    event.operations = operations;
    event.outcome = outcome;
    event.duration = std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
                         .count();
    return event;
}

bool Engine::send_event(uint64_t id, EventReport event) {
    std::lock_guard<std::mutex> lock(workers_mutex_);
    for (auto& worker : workers_) {
        if (!worker->done && worker->association && worker->association->id() == id) {
            return worker->association->post_event(std::move(event));
        }
    }
    return false;
}

bool Engine::admit(Worker* slot, int max_associations) {
    std::lock_guard<std::mutex> lock(workers_mutex_);
    const auto admitted = std::count_if(workers_.begin(), workers_.end(), [](const auto& w) {
        return w->admitted && !w->done;
    });
    if (admitted >= max_associations) return false;
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
}

void Engine::stop(double grace) {
    if (!accept_thread_.joinable()) return;
    stopping_ = true;
    accept_thread_.join();
    close(listen_fd_);
    listen_fd_ = -1;
    close_tls_listener();
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
    pool_.stop();  // every connection's task has returned: its Worker can go
    reap_finished(true);
    log(kInfo, "DICOM engine stopped");
}

}  // namespace engine
