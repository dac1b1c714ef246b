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
#include <stdexcept>

#include "association.hpp"
#include "dcmtk/dcmnet/dul.h"

namespace engine {

namespace {

constexpr const char* kApplicationContext = "1.2.840.10008.3.1.1.1";
constexpr int kListenBacklog = 128;
//! How often the accept loop looks at the stop flag.
constexpr int kAcceptPollMs = 200;
//! After the grace period: time for associations to notice the abort before sockets are shut.
constexpr auto kAbortNoticeTime = std::chrono::seconds(3);

//! dcmExternalSocketHandle is one process-wide slot: one connection at a time goes through it.
std::mutex external_socket_mutex;

std::string trim(const std::string& value) {
    const auto first = value.find_first_not_of(' ');
    if (first == std::string::npos) return "";
    return value.substr(first, value.find_last_not_of(' ') - first + 1);
}

bool contains(const std::vector<std::string>& titles, const std::string& title) {
    return std::any_of(titles.begin(), titles.end(),
                       [&](const std::string& entry) { return trim(entry) == title; });
}

std::string peer_address(int fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return "?";
    char text[INET6_ADDRSTRLEN] = {0};
    if (address.ss_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&address)->sin_addr, text,
                  sizeof(text));
    } else if (address.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&address)->sin6_addr, text,
                  sizeof(text));
    }
    return text;
}

struct Refusal {
    T_ASC_RejectParametersResult result;
    T_ASC_RejectParametersSource source;
    T_ASC_RejectParametersReason reason;
    const char* words;
};

//! Each proposed context: accepted with the first transfer syntax the requester proposes that
//! we declare for its abstract syntax (the requester's order, as pynetdicom did), else refused
//! with the standard's reason.
void accept_contexts(T_ASC_Parameters* params,
                     const std::map<std::string, std::vector<std::string>>& declared) {
    const int count = ASC_countPresentationContexts(params);
    for (int position = 0; position < count; ++position) {
        T_ASC_PresentationContext proposed;
        if (ASC_getPresentationContext(params, position, &proposed).bad()) continue;
        const auto ours = declared.find(proposed.abstractSyntax);
        if (ours == declared.end()) {
            ASC_refusePresentationContext(params, proposed.presentationContextID,
                                          ASC_P_ABSTRACTSYNTAXNOTSUPPORTED);
            continue;
        }
        const char* chosen = nullptr;
        for (int n = 0; n < proposed.transferSyntaxCount && chosen == nullptr; ++n) {
            const std::string syntax = proposed.proposedTransferSyntaxes[n];
            if (std::find(ours->second.begin(), ours->second.end(), syntax) !=
                ours->second.end()) {
                chosen = proposed.proposedTransferSyntaxes[n];
            }
        }
        if (chosen == nullptr) {
            ASC_refusePresentationContext(params, proposed.presentationContextID,
                                          ASC_P_TRANSFERSYNTAXESNOTSUPPORTED);
        } else {
            ASC_acceptPresentationContext(params, proposed.presentationContextID, chosen);
        }
    }
}

}  // namespace

Engine::Engine(EngineConfig config, EngineCallbacks callbacks)
    : config_(std::move(config)), callbacks_(std::move(callbacks)) {
    if (config_.max_pdu < 0) throw std::invalid_argument("max_pdu must not be negative");
    if (config_.max_associations < 1) throw std::invalid_argument("max_associations must be >= 1");
    if (config_.acse_timeout < 1 || config_.dimse_timeout < 1 || config_.network_timeout < 1) {
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
    callbacks_.log(kInfo, "DICOM engine listening on " + config_.bind + ":" +
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
        handle_connection(fd);
    }
}

void Engine::handle_connection(int fd) {
    const std::string address = peer_address(fd);
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
        // DCMTK never took the socket: it is ours to close.
        close(fd);
        callbacks_.log(kInfo, "connection from " + address + " closed before negotiation: " +
                       condition_text(cond));
        return;
    }
    if (cond.bad()) {
        callbacks_.log(kInfo, "connection from " + address + " closed during negotiation: " +
                       condition_text(cond));
        return;
    }
    T_ASC_Parameters* params = association->params;
    DIC_AE calling = {0};
    DIC_AE called = {0};
    ASC_getAPTitles(params, calling, sizeof(calling), called, sizeof(called), nullptr, 0);
    DIC_UI context_name = {0};
    ASC_getApplicationContextName(params, context_name, sizeof(context_name));
    Peer peer{address, trim(calling), trim(called)};

    const Refusal* refusal = nullptr;
    static const Refusal kTooMany{ASC_RESULT_REJECTEDTRANSIENT,
                                  ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED,
                                  ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED,
                                  "too many associations (local-limit-exceeded)"};
    static const Refusal kContext{ASC_RESULT_REJECTEDPERMANENT, ASC_SOURCE_SERVICEUSER,
                                  ASC_REASON_SU_APPCONTEXTNAMENOTSUPPORTED,
                                  "application context name not supported"};
    static const Refusal kCalling{ASC_RESULT_REJECTEDPERMANENT, ASC_SOURCE_SERVICEUSER,
                                  ASC_REASON_SU_CALLINGAETITLENOTRECOGNIZED,
                                  "calling AE title not recognized"};
    static const Refusal kCalled{ASC_RESULT_REJECTEDPERMANENT, ASC_SOURCE_SERVICEUSER,
                                 ASC_REASON_SU_CALLEDAETITLENOTRECOGNIZED,
                                 "called AE title not recognized"};
    const bool called_known = peer.called_ae == trim(config_.ae_title) ||
                              contains(config_.extra_called_aets, peer.called_ae);
    if (active_associations() >= config_.max_associations) {
        refusal = &kTooMany;
    } else if (trim(context_name) != kApplicationContext) {
        refusal = &kContext;
    } else if (!config_.allowed_calling_aets.empty() &&
               !contains(config_.allowed_calling_aets, peer.calling_ae)) {
        refusal = &kCalling;
    } else if (config_.strict_called_aet && !called_known) {
        refusal = &kCalled;
    }
    if (refusal != nullptr) {
        T_ASC_RejectParameters reject{refusal->result, refusal->source, refusal->reason};
        ASC_rejectAssociation(association.get(), &reject);
        callbacks_.log(kInfo, "association from " + address + " (" + peer.calling_ae + " -> " +
                       peer.called_ae + ") refused: " + refusal->words);
        return;
    }

    accept_contexts(params, config_.contexts);
    // Answer as the title called (ours or a printer profile's), with our implementation.
    ASC_setAPTitles(params, nullptr, nullptr, called_known ? peer.called_ae.c_str()
                                                            : config_.ae_title.c_str());
    OFStandard::strlcpy(params->ourImplementationClassUID, kImplementationClassUID,
                        sizeof(params->ourImplementationClassUID));
    OFStandard::strlcpy(params->ourImplementationVersionName, kImplementationVersionName,
                        sizeof(params->ourImplementationVersionName));
    cond = ASC_acknowledgeAssociation(association.get());
    if (cond.bad()) {
        callbacks_.log(kInfo, "association from " + address + " lost while accepting: " +
                       condition_text(cond));
        return;
    }
    auto worker = std::make_unique<Worker>();
    worker->association = std::make_shared<Association>(*this, std::move(network),
                                                        std::move(association), fd, peer);
    Worker* slot = worker.get();
    std::lock_guard<std::mutex> lock(workers_mutex_);
    workers_.push_back(std::move(worker));
    slot->thread = std::thread([this, slot] {
        slot->association->run();
        std::shared_ptr<Association> finished;
        {
            std::lock_guard<std::mutex> guard(workers_mutex_);
            finished.swap(slot->association);
        }
        finished.reset();  // closes the socket (unless stop() still holds it for a moment)
        {
            std::lock_guard<std::mutex> guard(workers_mutex_);
            slot->done = true;
        }
        workers_changed_.notify_all();
    });
}

int Engine::active_associations() {
    std::lock_guard<std::mutex> lock(workers_mutex_);
    return static_cast<int>(std::count_if(workers_.begin(), workers_.end(),
                                          [](const auto& worker) { return !worker->done; }));
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
            callbacks_.log(kWarning, "aborting " + std::to_string(open) +
                           " association(s) still open after the grace period");
            // Each association notices within a second between commands; one stuck inside a
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
    callbacks_.log(kInfo, "DICOM engine stopped");
}

}  // namespace engine
