// The DIMSE loop of one association (see association.hpp). Every wait on the network is
// bounded: a 100 ms poll between commands (so the outbox, stop and the idle timeout are
// seen), the DIMSE timeout inside a message. Nothing here holds Python's GIL; the store
// callback takes it.
#include "association.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <map>
#include <random>
#include <sstream>

#include "abort_pdu.hpp"
#include "dimse_status.hpp"
#include "dcmtk/dcmdata/dcostrmf.h"
#include "engine.hpp"
#include "file_meta.hpp"

namespace engine {

namespace {

constexpr int kDropWaitSeconds = 1;
//! How often an idle association looks at its outbox, the stop flag and the idle timeout.
constexpr int kCommandPollMs = 100;

//! A distinct prefix per process and a counter: temp names never collide.
std::string unique_stem() {
    static const std::string prefix = [] {
        std::random_device random;
        std::ostringstream out;
        out << ".rx-" << getpid() << "-" << std::hex << random();
        return out.str();
    }();
    static std::atomic<unsigned long> counter{0};
    return prefix + "-" + std::to_string(++counter);
}

std::string trimmed(const char* text) {
    std::string value(text);
    const auto first = value.find_first_not_of(' ');
    if (first == std::string::npos) return "";
    return value.substr(first, value.find_last_not_of(' ') - first + 1);
}

}  // namespace

std::string condition_text(const OFCondition& condition) {
    OFString text;
    return DimseCondition::dump(text, condition).c_str();
}

void NetworkDeleter::operator()(T_ASC_Network* network) const {
    ASC_dropNetwork(&network);
}

void AssociationDeleter::operator()(T_ASC_Association* association) const {
    // DCMTK waits this long for the peer to close first (DUL_TIMEOUT, 180 s, by default: a
    // peer that never closes would hold this thread for three minutes).
    ASC_dropSCPAssociation(association, kDropWaitSeconds);
    ASC_destroyAssociation(&association);
}

Association::Association(Engine& engine, std::shared_ptr<const EngineConfig> config,
                         NetworkPtr network, AssociationPtr association, int fd, Peer peer,
                         uint64_t id)
    : engine_(engine), config_(std::move(config)), network_(std::move(network)), association_(std::move(association)),
      fd_(fd), peer_(std::move(peer)), started_(std::chrono::steady_clock::now()), id_(id) {}

Association::~Association() {
    {
        std::lock_guard<std::mutex> lock(fd_mutex_);
        fd_ = -1;  // DCMTK closes the socket with the association below
    }
    association_.reset();
    network_.reset();
}

void Association::force_close() {
    std::lock_guard<std::mutex> lock(fd_mutex_);
    if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
}

void Association::abort() {
    ASC_abortAssociation(association_.get());
}

namespace {

//! The name of a request's command as the association log counts it ("C-STORE", ...).
std::string operation_name(unsigned command_field) {
    switch (command_field) {
        case DIMSE_C_ECHO_RQ: return "C-ECHO";
        case DIMSE_C_STORE_RQ: return "C-STORE";
        case DIMSE_C_FIND_RQ: return "C-FIND";
        case DIMSE_C_GET_RQ: return "C-GET";
        case DIMSE_C_MOVE_RQ: return "C-MOVE";
        case DIMSE_C_CANCEL_RQ: return "C-CANCEL";
        case DIMSE_N_EVENT_REPORT_RQ: return "N-EVENT-REPORT";
        case DIMSE_N_GET_RQ: return "N-GET";
        case DIMSE_N_SET_RQ: return "N-SET";
        case DIMSE_N_ACTION_RQ: return "N-ACTION";
        case DIMSE_N_CREATE_RQ: return "N-CREATE";
        case DIMSE_N_DELETE_RQ: return "N-DELETE";
        default: return "";
    }
}

}  // namespace

std::string Association::failure_outcome(const OFCondition& cond, const std::string& doing) {
    if (cond == DUL_PEERABORTEDASSOCIATION) return "aborted";
    const std::string text = condition_text(cond);
    if (text.find("DUL network closed") != std::string::npos ||
        text.find("Peer closed") != std::string::npos) {
        return "connection closed";
    }
    // DCMTK's DUL refuses a PDU over our announced maximum before reading it: A-ABORT from
    // the service provider, invalid-PDU-parameter-value, as the standard has it (DCMTK's own
    // abort would come from the service user); the words are those of the association log.
    const auto at = text.find("DUL Illegal PDU Length");
    if (at != std::string::npos) {
        {
            std::lock_guard<std::mutex> lock(fd_mutex_);
            if (fd_ >= 0 && !peer_.tls) send_provider_abort(fd_, kReasonInvalidParameter);
        }
        unsigned long length = 0, limit = 0;
        if (std::sscanf(text.c_str() + at, "DUL Illegal PDU Length %lu.  Max expected %lu",
                        &length, &limit) == 2) {
            return "aborted: P-DATA-TF length " + std::to_string(length) +
                   " over announced max " + std::to_string(limit);
        }
    }
    abort();
    return "aborted: " + doing + ": " + text;
}

void Association::run(ConnectionRecord& record) {
    std::string outcome;
    for (;;) {
        if (!wait_for_command(outcome)) break;
        // Nothing left in the socket but its end: a failure to read the next command is then
        // the peer closing without A-RELEASE or A-ABORT (DCMTK calls both an abort by the
        // peer; it keeps no PDU of its own across this call).
        char next = 0;
        const ssize_t got = recv(fd_, &next, 1, MSG_PEEK | MSG_DONTWAIT);
        const bool stream_ended = got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR);
        T_ASC_PresentationContextID pres_id = 0;
        T_DIMSE_Message message;
        DcmDataset* detail_raw = nullptr;
        OFCondition cond = DIMSE_receiveCommand(association_.get(), DIMSE_NONBLOCKING,
                                                config_->dimse_timeout, &pres_id,
                                                &message, &detail_raw);
        std::unique_ptr<DcmDataset> detail(detail_raw);
        if (cond == DUL_PEERREQUESTEDRELEASE) {
            ASC_acknowledgeRelease(association_.get());
            outcome = "released";
            break;
        }
        if (cond.bad() && stream_ended) {
            outcome = "connection closed";
            break;
        }
        if (cond.bad()) {
            outcome = failure_outcome(cond, "receiving a command");
            break;
        }
        const std::string name = operation_name(message.CommandField);
        if (!name.empty()) count(name);
        bool carry_on = true;
        switch (message.CommandField) {
            case DIMSE_C_ECHO_RQ:
                carry_on = handle_echo(pres_id, message.msg.CEchoRQ);
                if (!carry_on) outcome = "connection closed";
                break;
            case DIMSE_C_STORE_RQ:
                carry_on = handle_store(pres_id, message.msg.CStoreRQ, outcome);
                break;
            case DIMSE_C_FIND_RQ:
                carry_on = handle_find(pres_id, message.msg.CFindRQ, outcome);
                break;
            case DIMSE_N_EVENT_REPORT_RSP:
                event_answered(message.msg.NEventReportRSP);
                break;
            case DIMSE_C_GET_RQ:
            case DIMSE_C_MOVE_RQ:
                carry_on = handle_retrieve(pres_id, message, outcome);
                break;
            case DIMSE_N_EVENT_REPORT_RQ:
            case DIMSE_N_CREATE_RQ:
            case DIMSE_N_SET_RQ:
            case DIMSE_N_GET_RQ:
            case DIMSE_N_ACTION_RQ:
            case DIMSE_N_DELETE_RQ:
                carry_on = handle_n_request(pres_id, message, outcome);
                break;
            default: {
                std::ostringstream text;
                text << "aborted: DIMSE command 0x" << std::hex << message.CommandField
                     << " not handled by the engine yet";
                outcome = text.str();
                abort();
                carry_on = false;
            }
        }
        if (!carry_on) break;
    }
    close_events();
    record.operations = operations_;
    record.outcome = outcome;
    if (engine_.callbacks().on_association) return;
    const double seconds = std::chrono::duration<double>(
        std::chrono::steady_clock::now() - started_).count();
    auto counted = [this](const char* name) {
        const auto found = operations_.find(name);
        return found == operations_.end() ? 0u : found->second;
    };
    const unsigned n_requests = counted("N-CREATE") + counted("N-SET") + counted("N-GET") +
                                counted("N-ACTION") + counted("N-DELETE") +
                                counted("N-EVENT-REPORT");
    std::ostringstream line;
    line.precision(3);
    line << "association from " << peer_.address << " (" << peer_.calling_ae << " -> "
         << peer_.called_ae << "): " << counted("C-ECHO") << " C-ECHO, " << counted("C-STORE")
         << " C-STORE (" << failed_stores_ << " not Success), " << counted("C-FIND")
         << " C-FIND, " << counted("C-MOVE") << " C-MOVE, " << counted("C-GET") << " C-GET, "
         << n_requests << " N-, " << events_sent_ << " N-EVENT-REPORT, "
         << seconds << " s, " << outcome;
    engine_.log(kInfo, line.str());
}

bool Association::wait_for_command(std::string& outcome) {
    const auto idle_limit = std::chrono::seconds(config_->network_timeout);
    const auto idle_since = std::chrono::steady_clock::now();
    for (;;) {
        // DCMTK may hold the next PDVs in its buffer already: ask it before the socket.
        if (ASC_dataWaiting(association_.get(), 0)) return true;
        if (!send_events(outcome)) return false;
        if (engine_.abort_requested()) {
            outcome = "aborted";  // as pynetdicom's server shutdown is logged
            abort();
            return false;
        }
        if (std::chrono::steady_clock::now() - idle_since >= idle_limit) {
            outcome = "aborted";  // as pynetdicom's network timeout is logged
            engine_.log(kInfo, "association from " + peer_.address + " idle for "
                                   "network_timeout (" +
                                   std::to_string(config_->network_timeout) + " s): A-ABORT");
            abort();
            return false;
        }
        pollfd waiting{fd_, POLLIN, 0};
        if (poll(&waiting, 1, kCommandPollMs) > 0) return true;
    }
}

bool Association::handle_echo(T_ASC_PresentationContextID pres_id,
                              const T_DIMSE_C_EchoRQ& request) {
    return DIMSE_sendEchoResponse(association_.get(), pres_id, &request, STATUS_Success, nullptr)
        .good();
}

std::string Association::temp_path() {
    return config_->incoming_dir + "/" + unique_stem() + ".dcm";
}

bool Association::handle_store(T_ASC_PresentationContextID pres_id,
                               const T_DIMSE_C_StoreRQ& request, std::string& outcome) {
    T_ASC_PresentationContext context;
    if (ASC_findAcceptedPresentationContext(association_.get()->params, pres_id, &context)
            .bad()) {
        outcome = "aborted: C-STORE on a presentation context not accepted";
        abort();
        return false;
    }
    const std::string path = temp_path();
    uint16_t status = kSuccess;
    StatusDetail detail;
    OFCondition cond;
    std::unique_ptr<HashingFileStream> stream = create_with_meta(
        path,
        FileMeta{trimmed(request.AffectedSOPClassUID), trimmed(request.AffectedSOPInstanceUID),
                 context.acceptedTransferSyntax, peer_.calling_ae},
        config_->hash_content, cond);
    if (!stream) {
        engine_.log(kWarning, "cannot create " + path + ": " + condition_text(cond));
        stream.reset();
        std::remove(path.c_str());
        DIC_UL bytes_read = 0, pdv_count = 0;
        cond = DIMSE_ignoreDataSet(association_.get(), DIMSE_NONBLOCKING,
                                   config_->dimse_timeout, &bytes_read, &pdv_count);
        if (cond.bad()) {
            outcome = failure_outcome(cond, "receiving a data set");
            return false;
        }
        status = kOutOfResources;
    } else {
        T_ASC_PresentationContextID data_pres_id = 0;
        cond = DIMSE_receiveDataSetInFile(association_.get(), DIMSE_NONBLOCKING,
                                          config_->dimse_timeout, &data_pres_id,
                                          stream.get(), nullptr, nullptr);
        const bool write_failed = stream->status().bad();
        // The size the file must have once closed: checked after the close, because stdio
        // reports a full disk only when it writes its last buffer out.
        const offile_off_t expected = stream->tell();
        const std::string sha256 = stream->hex_digest();  // of exactly those bytes
        stream.reset();
        struct stat info {};
        const bool short_file = stat(path.c_str(), &info) != 0 ||
                                static_cast<offile_off_t>(info.st_size) != expected;
        if (cond.bad() && !write_failed && cond != DIMSE_OUTOFRESOURCES) {
            std::remove(path.c_str());
            outcome = failure_outcome(cond, "receiving a data set");
            return false;
        }
        if (cond.bad() || write_failed || short_file) {
            engine_.log(kWarning, "cannot write " + path +
                                    " (disk full?): answering 0xA700");
            std::remove(path.c_str());
            status = kOutOfResources;
        } else {
            const StoreAnswer answer =
                call_store_callback(path, request, context.acceptedTransferSyntax, sha256,
                                    static_cast<uint64_t>(expected));
            status = answer.status;
            detail = answer.detail;
            // The callback moves the file into place; whatever it left is not kept.
            std::remove(path.c_str());
        }
    }
    if (status != kSuccess) ++failed_stores_;
    T_DIMSE_C_StoreRSP response{};
    response.MessageIDBeingRespondedTo = request.MessageID;
    response.DimseStatus = status;
    response.DataSetType = DIMSE_DATASET_NULL;
    OFStandard::strlcpy(response.AffectedSOPClassUID, request.AffectedSOPClassUID,
                        sizeof(response.AffectedSOPClassUID));
    OFStandard::strlcpy(response.AffectedSOPInstanceUID, request.AffectedSOPInstanceUID,
                        sizeof(response.AffectedSOPInstanceUID));
    response.opts = O_STORE_AFFECTEDSOPCLASSUID | O_STORE_AFFECTEDSOPINSTANCEUID;
    if (request.opts & O_STORE_RQ_BLANK_PADDING) {
        response.opts |= O_STORE_PEER_REQUIRES_EXACT_UID_COPY;
    }
    std::unique_ptr<DcmDataset> status_fields = status_detail(status, detail);
    cond = DIMSE_sendStoreResponse(association_.get(), pres_id, &request, &response,
                                   status_fields.get());
    if (cond.bad()) {
        outcome = failure_outcome(cond, "sending a C-STORE-RSP");
        return false;
    }
    return true;
}

StoreAnswer Association::call_store_callback(const std::string& path,
                                          const T_DIMSE_C_StoreRQ& request,
                                          const std::string& transfer_syntax,
                                          const std::string& sha256, uint64_t size) {
    StoreRequest store;
    store.path = path;
    store.calling_ae = peer_.calling_ae;
    store.called_ae = peer_.called_ae;
    store.sop_class_uid = trimmed(request.AffectedSOPClassUID);
    store.sop_instance_uid = trimmed(request.AffectedSOPInstanceUID);
    store.transfer_syntax_uid = transfer_syntax;
    store.sha256 = sha256;
    store.size = size;
    if (!engine_.callbacks().on_store) return StoreAnswer{kProcessingFailure, {}};
    if (engine_.callbacks().store_check) {  // on this thread, before the callback takes the GIL
        store.checked = true;
        store.check = check_file(path, *engine_.callbacks().store_check);
    }
    return engine_.callbacks().on_store(store);
}

}  // namespace engine
