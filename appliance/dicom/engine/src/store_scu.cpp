// See store_scu.hpp.
#include "store_scu.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "data_set_bytes.hpp"
#include "engine.hpp"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "dcmtk/dcmnet/dimse.h"
#include "dcmtk/dcmnet/dul.h"

namespace engine {

namespace {

//! The condition's code, to tell "never connected" from what failed after connecting.
bool before_connecting(const OFCondition& cond) {
    return cond.module() == OFM_dcmnet &&
           (cond.code() == DULC_TCPINITERROR || cond.code() == DULC_UNKNOWNHOST);
}

//! Association parameters until an association takes them over.
struct ParametersDeleter {
    void operator()(T_ASC_Parameters* params) const { ASC_destroyAssociationParameters(&params); }
};

}  // namespace

DcmTransportConnection* SendLimitedLayer::createConnection(DcmNativeSocketType socket,
                                                           OFBool secure) {
    // DCMTK's connection sets the process-wide send timeout on the socket as it is made; this
    // one is set after it. Should it fail, DCMTK's 60 s stay: later, but still an end.
    DcmTransportConnection* connection = DcmTransportLayer::createConnection(socket, secure);
    timeval limit{};
    limit.tv_sec = seconds_;
    (void)setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
    return connection;  // DCMTK's association owns it
}

void ScuAssociationDeleter::operator()(T_ASC_Association* association) const {
    ASC_dropAssociation(association);
    ASC_destroyAssociation(&association);
}

StoreScu::StoreScu(const std::string& host, int port, const std::string& calling_aet,
                   const std::string& called_aet, const std::vector<Context>& contexts,
                   long max_receive_pdu, const ScuTimeouts& timeouts, ScuRefusal& refusal)
    : dimse_timeout_(timeouts.dimse) {
    if (contexts.empty() || contexts.size() > 128) {
        refusal.text = "between 1 and 128 presentation contexts are needed";
        return;
    }
    dcmConnectionTimeout.set(timeouts.connection);  // DCMTK keeps it per process
    T_ASC_Network* network = nullptr;
    OFCondition cond = ASC_initializeNetwork(NET_REQUESTOR, 0, timeouts.acse, &network);
    network_.reset(network);
    if (cond.bad()) {
        refusal.text = cond.text();
        return;
    }
    layer_ = std::make_unique<SendLimitedLayer>(timeouts.dimse);
    cond = ASC_setTransportLayer(network_.get(), layer_.get(), 0);  // the layer stays ours
    if (cond.bad()) {
        refusal.text = cond.text();
        return;
    }
    T_ASC_Parameters* raw_params = nullptr;
    cond = ASC_createAssociationParameters(&raw_params, max_receive_pdu);
    std::unique_ptr<T_ASC_Parameters, ParametersDeleter> params(raw_params);
    if (cond.bad()) {
        refusal.text = cond.text();
        return;
    }
    ASC_setAPTitles(params.get(), calling_aet.c_str(), called_aet.c_str(), nullptr);
    OFStandard::strlcpy(params->ourImplementationClassUID, kImplementationClassUID,
                        sizeof(params->ourImplementationClassUID));
    OFStandard::strlcpy(params->ourImplementationVersionName, kImplementationVersionName,
                        sizeof(params->ourImplementationVersionName));
    const std::string peer = host + ":" + std::to_string(port);
    ASC_setPresentationAddresses(params.get(), OFStandard::getHostName().c_str(), peer.c_str());
    T_ASC_PresentationContextID id = 1;
    for (const auto& context : contexts) {
        const char* syntaxes[] = {context.second.c_str()};
        cond = ASC_addPresentationContext(params.get(), id, context.first.c_str(), syntaxes, 1);
        if (cond.bad()) {
            refusal.text = cond.text();
            return;
        }
        id = static_cast<T_ASC_PresentationContextID>(id + 2);
    }
    T_ASC_Association* association = nullptr;
    cond = ASC_requestAssociation(network_.get(), params.get(), &association, nullptr, nullptr,
                                  DUL_NOBLOCK, timeouts.acse);
    if (association != nullptr) {
        params.release();  // the association frees them now
        association_.reset(association);
    }
    if (cond.bad()) {
        refusal.connected = !before_connecting(cond);
        refusal.text = cond.text();
        if (cond == DUL_ASSOCIATIONREJECTED && association_) {
            T_ASC_RejectParameters rejection{};
            ASC_getRejectParameters(association_->params, &rejection);
            refusal.rejected = true;
            refusal.result = static_cast<int>(rejection.result);
            refusal.source = static_cast<int>(rejection.source);
            refusal.reason = static_cast<int>(rejection.reason) & 0xff;  // DCMTK adds the source
        }
        association_.reset();
        return;
    }
    established_ = true;
    const int count = ASC_countPresentationContexts(association_->params);
    for (int i = 0; i < count; ++i) {
        T_ASC_PresentationContext context;
        if (ASC_getPresentationContext(association_->params, i, &context).good() &&
            context.resultReason == ASC_P_ACCEPTANCE) {
            accepted_.emplace_back(context.abstractSyntax, context.acceptedTransferSyntax);
        }
    }
}

StoreScu::~StoreScu() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (established_) ASC_abortAssociation(association_.get());
    established_ = false;
}

StoreOutcome StoreScu::store_file(const std::string& path, const std::string& sop_class,
                                  const std::string& sop_instance, const std::string& syntax) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!established_) return {StoreOutcome::kNoAnswer, 0, "the association has ended"};
    if (access(path.c_str(), R_OK) != 0 && errno == ENOENT) {
        return {StoreOutcome::kMissing, 0, path};
    }
    DcmFileFormat file;  // values longer than 4 KB stay in the file until they are written
    const OFCondition loaded = file.loadFile(path.c_str());
    if (loaded.bad()) return {StoreOutcome::kUnreadable, 0, loaded.text()};
    DcmDataset& data = *file.getDataset();
    const std::string stored_in = DcmXfer(data.getOriginalXfer()).getXferID();
    if (stored_in != syntax) {
        return {StoreOutcome::kUnreadable, 0, "the file is in " + stored_in + ", not " + syntax};
    }
    return send(data, sop_class, sop_instance, syntax);
}

StoreOutcome StoreScu::store_data_set(const std::string& bytes, const std::string& sop_class,
                                      const std::string& sop_instance,
                                      const std::string& syntax) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!established_) return {StoreOutcome::kNoAnswer, 0, "the association has ended"};
    std::unique_ptr<DcmDataset> data = decode_data_set(bytes, DcmXfer(syntax.c_str()).getXfer());
    if (!data) return {StoreOutcome::kUnreadable, 0, "the data set does not parse"};
    return send(*data, sop_class, sop_instance, syntax);
}

StoreOutcome StoreScu::send(DcmDataset& data, const std::string& sop_class,
                            const std::string& sop_instance, const std::string& syntax) {
    const T_ASC_PresentationContextID id =
        ASC_findAcceptedPresentationContextID(association_.get(), sop_class.c_str(), syntax.c_str());
    if (id == 0) {
        return {StoreOutcome::kNoContext, 0, "no accepted context for " + sop_class + " in " +
                                                 syntax};
    }
    T_DIMSE_C_StoreRQ request{};
    request.MessageID = association_->nextMsgID++;
    OFStandard::strlcpy(request.AffectedSOPClassUID, sop_class.c_str(),
                        sizeof(request.AffectedSOPClassUID));
    OFStandard::strlcpy(request.AffectedSOPInstanceUID, sop_instance.c_str(),
                        sizeof(request.AffectedSOPInstanceUID));
    request.DataSetType = DIMSE_DATASET_PRESENT;
    request.Priority = DIMSE_PRIORITY_MEDIUM;
    T_DIMSE_C_StoreRSP response{};
    DcmDataset* detail_raw = nullptr;
    const auto started = std::chrono::steady_clock::now();
    const OFCondition cond =
        DIMSE_storeUser(association_.get(), id, &request, nullptr, &data, nullptr, nullptr,
                        DIMSE_NONBLOCKING, dimse_timeout_, &response, &detail_raw);
    std::unique_ptr<DcmDataset> detail(detail_raw);
    if (cond.good()) return {StoreOutcome::kAnswered, response.DimseStatus, ""};
    const bool stalled = cond.module() == OFM_dcmnet && cond.code() == DIMSEC_SENDFAILED &&
                         std::chrono::steady_clock::now() - started >=
                             std::chrono::seconds(dimse_timeout_);
    // No answer: timed out, aborted, closed, stalled, or a broken message. The association is
    // not used again: aborted unless the peer has ended it already, or takes no data (an
    // A-ABORT would wait as long again in the full socket; closing the connection tells it).
    if (!stalled && cond != DUL_PEERABORTEDASSOCIATION && cond != DUL_NETWORKCLOSED) {
        ASC_abortAssociation(association_.get());
    }
    established_ = false;
    association_.reset();
    const std::string seconds = std::to_string(dimse_timeout_) + " s";
    if (cond == DIMSE_NODATAAVAILABLE) {
        return {StoreOutcome::kNoAnswer, 0, "no C-STORE response within " + seconds};
    }
    if (stalled) {  // the socket's send timeout (SendLimitedLayer)
        return {StoreOutcome::kStalled, 0, "the destination took no data for " + seconds};
    }
    return {StoreOutcome::kNoAnswer, 0, cond.text()};
}

void StoreScu::release() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!established_) return;
    established_ = false;
    if (ASC_releaseAssociation(association_.get()).bad()) {
        ASC_abortAssociation(association_.get());
    }
    association_.reset();
}

void StoreScu::abort() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!established_) return;
    established_ = false;
    ASC_abortAssociation(association_.get());
    association_.reset();
}

}  // namespace engine
