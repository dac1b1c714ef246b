// One accepted association: the owner of DCMTK's association and network objects (RAII), and
// the DIMSE loop that runs on the association's own native thread: C-ECHO answered here,
// C-STORE written to a temp file and acknowledged with the status the Python side returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmnet/assoc.h"
#include "dcmtk/dcmnet/dimse.h"

namespace engine {

class Engine;
struct EventReport;
struct ConnectionRecord;
struct DimseRequest;
struct StoreAnswer;
struct StoreSubOperation;
struct EngineConfig;

struct NetworkDeleter {
    void operator()(T_ASC_Network* network) const;
};
struct AssociationDeleter {
    void operator()(T_ASC_Association* association) const;
};
using NetworkPtr = std::unique_ptr<T_ASC_Network, NetworkDeleter>;
using AssociationPtr = std::unique_ptr<T_ASC_Association, AssociationDeleter>;

//! Who is on the other end, as the A-ASSOCIATE-RQ and the socket say.
struct Peer {
    std::string address;
    std::string calling_ae;
    std::string called_ae;
    bool tls = false;  //!< over TLS: no raw PDU is ever written to the socket
};

class Association {
public:
    Association(Engine& engine, std::shared_ptr<const EngineConfig> config, NetworkPtr network,
                AssociationPtr association, int fd, Peer peer, uint64_t id);
    ~Association();
    Association(const Association&) = delete;
    Association& operator=(const Association&) = delete;

    //! The DIMSE loop, until release, abort, timeout or engine stop: the requests received and
    //! the outcome go into `record`; without an on_association callback one line is logged.
    void run(ConnectionRecord& record);
    //! Shut the socket down from another thread (the last resort of Engine::stop).
    void force_close();
    //! Queue an N-EVENT-REPORT (any thread); sent by the association's thread between commands.
    //! False once the association has stopped taking commands (release, abort, close).
    bool post_event(EventReport event);
    uint64_t id() const { return id_; }

private:
    bool wait_for_command(std::string& outcome);
    //! The outcome of a DIMSE failure `cond`: "aborted" (by the peer), "connection closed",
    //! or "aborted: <why>" after our A-ABORT.
    std::string failure_outcome(const OFCondition& cond, const std::string& doing);
    void count(const std::string& operation) { ++operations_[operation]; }
    //! Send what post_event queued; false when the association broke.
    bool send_events(std::string& outcome);
    void event_answered(const T_DIMSE_N_EventReportRSP& response);
    //! No more events (post_event refuses them): the tagged ones never sent or never answered
    //! are told up as not delivered.
    void close_events();
    void event_outcome(uint64_t tag, bool delivered, int status);
    bool handle_echo(T_ASC_PresentationContextID pres_id, const T_DIMSE_C_EchoRQ& request);
    bool handle_store(T_ASC_PresentationContextID pres_id, const T_DIMSE_C_StoreRQ& request,
                      std::string& outcome);
    bool handle_find(T_ASC_PresentationContextID pres_id, const T_DIMSE_C_FindRQ& request,
                     std::string& outcome);
    bool handle_n_request(T_ASC_PresentationContextID pres_id, T_DIMSE_Message& message,
                          std::string& outcome);
    //! C-MOVE and C-GET (retrieve.cpp): the handler's answers, and for C-GET its C-STORE
    //! sub-operations on this association.
    bool handle_retrieve(T_ASC_PresentationContextID pres_id, T_DIMSE_Message& message,
                         std::string& outcome);
    //! Send one C-STORE sub-operation and wait for its response: `status` is the peer's, or
    //! ours when it could not be sent (no context, unreadable source). `cancelled`: a C-CANCEL
    //! for `retrieve_id` came meanwhile. False when the association broke.
    bool store_sub_operation(const StoreSubOperation& store, uint16_t retrieve_id,
                             T_DIMSE_Priority priority, uint16_t& status, bool& cancelled,
                             std::string& outcome);
    //! The accepted context for a sub-operation: that SOP class, that transfer syntax, the
    //! requester in the SCP role; 0 when there is none.
    T_ASC_PresentationContextID storage_context(const std::string& sop_class,
                                                const std::string& transfer_syntax);
    //! A request for the Python services with the fields every command has: who asks, on
    //! which association, in which context's transfer syntax.
    DimseRequest request_up(const char* command, uint16_t command_field, uint16_t message_id,
                            const std::string& sop_class_uid,
                            const T_ASC_PresentationContext& context) const;
    //! A C-CANCEL-RQ for `message_id` waiting? Anything else arriving meanwhile is an abort.
    bool cancel_requested(uint16_t message_id, std::string& outcome, bool& broken,
                          const char* during = "C-FIND");
    StoreAnswer call_store_callback(const std::string& path, const T_DIMSE_C_StoreRQ& request,
                                 const std::string& transfer_syntax,
                                 const std::string& sha256, uint64_t size);
    std::string temp_path();
    void abort();

    Engine& engine_;
    //! The policy in force when the connection was accepted (update_policy leaves it alone).
    std::shared_ptr<const EngineConfig> config_;
    NetworkPtr network_;
    AssociationPtr association_;
    std::mutex fd_mutex_;
    int fd_;
    Peer peer_;
    std::chrono::steady_clock::time_point started_;
    std::map<std::string, unsigned> operations_;  //!< requests received, by name
    unsigned failed_stores_ = 0;
    uint64_t id_;
    std::mutex outbox_mutex_;
    std::deque<EventReport> outbox_;
    bool events_closed_ = false;  //!< guarded by outbox_mutex_
    std::map<uint16_t, uint64_t> events_unanswered_;  //!< message id -> tag
    uint16_t next_event_message_id_ = 0x7000;  //!< well apart from typical SCU numbering
    unsigned events_sent_ = 0;
    uint16_t next_sub_message_id_ = 0x5000;  //!< C-STORE sub-operations of C-GET
};

//! Text of a DCMTK condition, for log lines.
std::string condition_text(const OFCondition& condition);

}  // namespace engine
