// The native DICOM engine: the listener, association negotiation and policy, and each accepted
// connection served on a thread of its pool (engine.cpp, thread_pool.hpp); what an association does with its DIMSE
// messages lives in association.cpp. Pure C++ on DCMTK: Python is reached only through the
// std::function callbacks of EngineCallbacks, which the bindings (module.cpp) wrap so that each
// call takes the GIL and nothing else does.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dataset_check.hpp"
#include "status_detail.hpp"
#include "thread_pool.hpp"
#include "tls.hpp"

namespace engine {

//! The product's own Implementation Class UID (under 2.25, a UUID) and Version Name.
constexpr const char* kImplementationClassUID = "2.25.78625585849042064449414901317356802958";
constexpr const char* kImplementationVersionName = "EDGEBOX_ENGINE_1";

//! Levels of Python's logging module, used for every message the engine sends up.
enum LogLevel : int { kDebug = 10, kInfo = 20, kWarning = 30, kError = 40 };

//! An N-EVENT-REPORT the SCP sends on an open association (fire and forget: the answer is
//! logged when it comes).
struct EventReport {
    std::string abstract_syntax;   //!< the presentation context to send it on
    std::string sop_class_uid;
    std::string sop_instance_uid;
    uint16_t event_type_id = 0;
    bool has_data_set = false;
    std::string data_set;          //!< Event Information, encoded in `transfer_syntax_uid`
    std::string transfer_syntax_uid;
    //! The sender's token for its outcome (0: none wanted): an kEventOutcome association
    //! event tells whether the peer answered it or it was never delivered.
    uint64_t tag = 0;
};

//! One received C-STORE, handed to the Python side once the data set is on disk.
struct StoreRequest {
    std::string path;            //!< the temp file: preamble, File Meta, data set as received
    std::string calling_ae;
    std::string called_ae;
    std::string sop_class_uid;
    std::string sop_instance_uid;
    std::string transfer_syntax_uid;
    //! SHA-256 (lower-case hex) of the whole file as written and its size in bytes; empty
    //! when the engine does not hash (EngineConfig::hash_content) or OpenSSL failed.
    std::string sha256;
    uint64_t size = 0;
    //! The native structural check's verdict (when EngineCallbacks::store_check is set).
    bool checked = false;
    CheckResult check;
};

//! A DIMSE request the engine does not answer itself, as handed to the Python services.
struct DimseRequest {
    std::string command;          //!< "C-FIND-RQ", ...
    uint16_t command_field = 0;
    uint16_t message_id = 0;
    std::string sop_class_uid;    //!< Affected (C-FIND, N-CREATE) or Requested SOP Class UID
    std::string sop_instance_uid; //!< Affected/Requested SOP Instance UID (N-services)
    uint16_t priority = 0;
    uint16_t action_type_id = 0;  //!< N-ACTION
    std::vector<uint32_t> attribute_list;  //!< N-GET: the tags asked for (empty: all)
    std::string calling_ae;
    std::string called_ae;
    uint64_t association_id = 0;  //!< for Engine::send_event on this association
    std::string transfer_syntax_uid;  //!< of the presentation context (and of `data_set`)
    std::string data_set;         //!< encoded in that transfer syntax; empty when none
    std::string move_destination; //!< C-MOVE: Move Destination (0000,0600), without padding
    uint16_t event_type_id = 0;   //!< N-EVENT-REPORT (from the peer)
};

//! The sub-operation counts of a C-GET/C-MOVE response, as the handler last gave them; -1: not
//! given (left out of the response).
struct SubOperationCounts {
    int remaining = -1;
    int completed = -1;
    int failed = -1;
    int warning = -1;
};

//! A C-STORE sub-operation a C-GET handler asks for, sent on the same association.
struct StoreSubOperation {
    std::string path;       //!< a DICOM file (File Meta and data set); empty: `data_set`
    std::string data_set;   //!< a data set encoded in `transfer_syntax_uid` (when no path)
    std::string sop_class_uid;
    std::string sop_instance_uid;
    std::string transfer_syntax_uid;  //!< the syntax it is in: sent only in that one
};

//! One response a handler gives: a status, and a data set (encoded in the request's transfer
//! syntax) or none.
struct DimseResponse {
    uint16_t status = 0;
    bool has_data_set = false;
    std::string data_set;
    //! N-CREATE: the SOP Instance UID the SCP gave the new instance (empty: the request's).
    std::string affected_sop_instance_uid;
    //! Error Comment, Offending Element, Error ID: sent with failure and warning statuses.
    StatusDetail detail;
    //! C-GET/C-MOVE: "remaining", "completed", "failed", "warning" from the answer's fields.
    SubOperationCounts counts;
    //! C-GET: not an answer but a C-STORE sub-operation to send; its status goes back to the
    //! handler through ResponseStream::reply before the next answer is pulled.
    bool is_store = false;
    StoreSubOperation store;
    //! The handler failed (raised): the engine answers its failure status for the command.
    bool failed = false;
};

//! The responses to one request, pulled one at a time (so C-CANCEL is seen between them).
class ResponseStream {
public:
    virtual ~ResponseStream() = default;
    //! The next response, or false when there are no more.
    virtual bool next(DimseResponse& response) = 0;
    //! The requester cancelled: stop producing (C-CANCEL).
    virtual void cancel() = 0;
    //! The status of the sub-operation the last response asked for: handed to the handler
    //! with the next pull (a generator's send()).
    virtual void reply(uint16_t status) = 0;
};

//! A presentation context the association accepted.
struct AcceptedContext {
    unsigned context_id = 0;
    std::string abstract_syntax;
    std::string transfer_syntax;
};

//! What happened to one connection, for the association log and the activity LED: sent
//! "opened" when accepted, "established" after the A-ASSOCIATE-AC, "ended" exactly once.
struct AssociationEvent {
    enum Kind { kOpened, kEstablished, kEnded, kEventOutcome };
    Kind kind = kOpened;
    uint64_t association_id = 0;  //!< 0 when never established
    std::string peer;             //!< "host:port"
    std::string calling_ae;       //!< without padding; empty when unknown
    std::string called_ae;
    std::vector<AcceptedContext> contexts;
    std::map<std::string, unsigned> operations;  //!< "C-STORE" -> requests received
    //! The association log's words: "released", "aborted", "rejected: ...", ...
    std::string outcome;
    double duration = 0.0;        //!< seconds since the connection was accepted
    //! kEventOutcome: the N-EVENT-REPORT's tag, whether the peer answered it (with `status`)
    //! or it was not delivered (never sent before the association ended, or sent and never
    //! answered); always before the association's kEnded.
    uint64_t event_tag = 0;
    bool event_delivered = false;
    int event_status = -1;
};

//! What the store callback answers: the status of the C-STORE-RSP and its Error Comment.
struct StoreAnswer {
    uint16_t status = 0;
    StatusDetail detail;
};

struct EngineCallbacks {
    //! Returns the DIMSE status to answer; called once per image, after the file is written.
    std::function<StoreAnswer(const StoreRequest&)> on_store;
    //! The handler of every other request; empty: such requests are refused.
    std::function<std::unique_ptr<ResponseStream>(const DimseRequest&)> on_request;
    //! Connection and association events (empty: the engine logs one line per connection).
    std::function<void(const AssociationEvent&)> on_association;
    //! One log message at a Python logging level.
    std::function<void(int, const std::string&)> log;
    //! When set, each received file is checked natively before on_store (StoreRequest::check).
    std::shared_ptr<const CheckRules> store_check;
};

struct EngineConfig {
    std::string ae_title = "EDGEBOX";
    std::vector<std::string> extra_called_aets;    //!< also answered to (printer profiles)
    bool strict_called_aet = true;
    std::vector<std::string> allowed_calling_aets;  //!< empty: any caller
    std::string bind = "0.0.0.0";
    int port = 11112;                               //!< 0: any free port (see Engine::port)
    int max_associations = 10;
    //! Before negotiation (the ARTIM timer): the whole A-ASSOCIATE-RQ must arrive in this time.
    int artim_timeout = 10;
    //! Connections held before negotiation; one more is closed at once.
    int max_pending = 64;
    //! The same, from one source address (so one host cannot lock out a modality).
    int max_pending_per_host = 8;
    int acse_timeout = 30;
    int dimse_timeout = 60;
    int network_timeout = 60;
    long max_pdu = 262144;                          //!< our Maximum Length Received
    //! abstract syntax -> accepted transfer syntaxes, in our order of preference
    std::map<std::string, std::vector<std::string>> contexts;
    //! Storage SOP classes the requester may propose with the SCP role (role selection), for
    //! the C-STORE sub-operations of a C-GET: abstract syntax -> transfer syntaxes.
    std::map<std::string, std::vector<std::string>> retrieve_storage;
    std::string incoming_dir;                       //!< where C-STORE temp files are written
    //! DICOM over TLS on a second port (same policy): -1 none, 0 any free port.
    int tls_port = -1;
    std::string tls_certificate;                    //!< PEM, the box's (its chain may follow)
    std::string tls_private_key;                    //!< PEM, unencrypted
    std::string tls_ca_certificates;                //!< PEM bundle: accepted clients' CAs
    bool tls_require_client_certificate = true;
    //! Take the SHA-256 of each C-STORE file while writing it (StoreRequest::sha256): on
    //! when Storage Commitment is, so its service need not read the file back.
    bool hash_content = false;
};

class Association;

//! One connection from accept to close, as its "ended" event reports it.
struct ConnectionRecord {
    std::string peer;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    uint64_t association_id = 0;
    std::string calling_ae;
    std::string called_ae;
    std::vector<AcceptedContext> contexts;
    std::map<std::string, unsigned> operations;
    std::string outcome = "closed during negotiation";

    AssociationEvent event(AssociationEvent::Kind kind) const;
};

//! The listener and its associations. start() binds and returns; stop() drains.
class Engine {
public:
    Engine(EngineConfig config, EngineCallbacks callbacks);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    //! Bind, listen and start the accept thread; throws std::runtime_error when it cannot.
    void start();
    //! Stop accepting, give open associations `grace` seconds, then A-ABORT what is left.
    void stop(double grace);
    int port() const { return bound_port_; }
    //! The TLS listener's port (-1: none).
    int tls_port() const { return bound_tls_port_; }
    int active_associations();
    bool running() const { return accept_thread_.joinable() && !stopping_; }
    //! The policy new connections get now (see update_policy).
    std::shared_ptr<const EngineConfig> config() const {
        std::lock_guard<std::mutex> lock(config_mutex_);
        return config_;
    }
    const EngineCallbacks& callbacks() const { return callbacks_; }
    //! True once stop() has given up waiting: associations abort at their next poll.
    bool abort_requested() const { return abort_; }
    //! Send `message` to the log callback when `level` is enabled (see set_log_level).
    void log(int level, const std::string& message) const {
        if (level >= log_level_.load(std::memory_order_relaxed)) callbacks_.log(level, message);
    }
    //! A per-connection line (gate, refusal, association summary): only when no
    //! on_association callback writes the association log instead.
    void connection_log(int level, const std::string& message) const {
        if (!callbacks_.on_association) log(level, message);
    }
    //! Send an association event up (nothing without an on_association callback).
    void notify(const AssociationEvent& event) const {
        if (callbacks_.on_association) callbacks_.on_association(event);
    }
    //! The lowest level sent up (the Python logger's effective level): cheaper than a call
    //! into Python per line that would be dropped there.
    void set_log_level(int level) { log_level_ = level; }
    //! A new policy (titles, allow-list, limits, timeouts, max PDU) for connections accepted
    //! from now on; open ones keep theirs. bind, port, contexts and incoming_dir cannot change
    //! this way: std::invalid_argument naming the key when they differ.
    void update_policy(EngineConfig config);
    //! DICOM over TLS on `port` as well (0: any free port). Before start() the files are read
    //! by start(); on a running engine they are read now, and the new certificate serves the
    //! handshakes from now on, on a new listener when the port changes; the plain listener
    //! and open associations are untouched. std::runtime_error naming the file and the
    //! reason (or the port) leaves everything as it was. update_policy keeps these settings.
    void set_tls(int port, std::string certificate, std::string private_key,
                 std::string ca_certificates, bool require_client_certificate);
    //! No TLS listener from now on (open TLS associations run to their end).
    void disable_tls();
    //! Queue an N-EVENT-REPORT on association `id` (sent between its commands); false when
    //! that association is no longer open.
    bool send_event(uint64_t id, EventReport event);

private:
    //! One connection (served by a pool thread): waits for the A-ASSOCIATE-RQ, negotiates,
    //! runs the association; `done` once its task touches nothing of it any more.
    struct Worker {
        std::shared_ptr<Association> association;  //!< set once accepted (workers_mutex_)
        bool admitted = false;                     //!< holds an association slot (workers_mutex_)
        std::string host;                          //!< the peer's address, without the port
        std::atomic<bool> done{false};
    };

    void accept_loop();
    void serve_connection(Worker* slot, int fd, ConnectionRecord& record,
                          const std::shared_ptr<const EngineConfig>& config, bool tls);
    //! The TLS handshake and the whole A-ASSOCIATE-RQ, in the connection's thread.
    SslPtr secure(int fd, const EngineConfig& policy, ConnectionRecord& record,
                  uint32_t& length);
    bool wait_for_request(int fd, const EngineConfig& config, ConnectionRecord& record,
                          uint32_t& length);
    std::shared_ptr<Association> negotiate(Worker* slot, int fd, uint32_t length,
                                           const std::shared_ptr<const EngineConfig>& config,
                                           ConnectionRecord& record, SslPtr ssl = nullptr);
    int listen_on(const std::string& bind, int port, int& bound);
    bool admit(Worker* slot, int max_associations);
    //! A connection closed by the accept loop itself (pending limits): opened and ended.
    void refuse_at_once(int fd, const std::string& address, const std::string& outcome);
    int pending_connections(const std::string& host = "");
    void reap_finished(bool all);

    mutable std::mutex config_mutex_;
    std::shared_ptr<const EngineConfig> config_;  //!< swapped whole, never changed in place
    EngineCallbacks callbacks_;
    int listen_fd_ = -1;
    int bound_port_ = 0;
    //! The TLS context new handshakes use, and its listener (both swapped by set_tls).
    std::shared_ptr<const TlsServer> tls_server() const;
    //! The TLS listener to poll now; first closes the listeners set_tls has replaced.
    int tls_listener();
    void close_tls_listener();
    //! Until the accept loop has closed the retired listeners (so their port is free).
    void wait_retired_closed(std::unique_lock<std::mutex>& lock);
    //! Records a TLS setting change in the policy new connections get.
    void store_tls_config(int port, std::string certificate, std::string private_key,
                          std::string ca_certificates, bool require_client_certificate);

    std::mutex tls_change_mutex_;                   //!< one set_tls/disable_tls at a time
    mutable std::mutex tls_mutex_;                  //!< guards the four below
    std::shared_ptr<const TlsServer> tls_;
    int tls_listen_fd_ = -1;
    std::vector<int> retired_tls_fds_;              //!< closed by the accept loop
    std::condition_variable retired_closed_;        //!< ... which then notifies this
    std::atomic<int> bound_tls_port_{-1};
    std::thread accept_thread_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> abort_{false};
    std::mutex workers_mutex_;
    std::condition_variable workers_changed_;
    std::list<std::unique_ptr<Worker>> workers_;
    ThreadPool pool_;  //!< after workers_: its threads are joined before workers_ goes
    std::atomic<uint64_t> next_association_id_{1};
    std::atomic<int> log_level_{kDebug};
};

}  // namespace engine
