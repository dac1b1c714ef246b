// C-MOVE and C-GET handed to the Python handler (Query/Retrieve SCP): the identifier up, the
// handler's answers back one at a time with their sub-operation counts, C-CANCEL looked for
// between them. A C-MOVE handler opens its own association to the Move Destination (Python
// side); a C-GET handler asks for C-STORE sub-operations, which are sent here on this
// association (the requester in the SCP role for that storage SOP class) and whose status goes
// back to the handler.
#include <memory>

#include "association.hpp"
#include "data_set_bytes.hpp"
#include "dimse_status.hpp"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "engine.hpp"
#include "negotiation.hpp"

namespace engine {

namespace {

// One set of option flags serves both responses.
static_assert(O_GET_AFFECTEDSOPCLASSUID == O_MOVE_AFFECTEDSOPCLASSUID &&
                  O_GET_NUMBEROFREMAININGSUBOPERATIONS == O_MOVE_NUMBEROFREMAININGSUBOPERATIONS &&
                  O_GET_NUMBEROFCOMPLETEDSUBOPERATIONS == O_MOVE_NUMBEROFCOMPLETEDSUBOPERATIONS &&
                  O_GET_NUMBEROFFAILEDSUBOPERATIONS == O_MOVE_NUMBEROFFAILEDSUBOPERATIONS &&
                  O_GET_NUMBEROFWARNINGSUBOPERATIONS == O_MOVE_NUMBEROFWARNINGSUBOPERATIONS,
              "C-GET and C-MOVE response flags differ");

//! The counts given so far, each replaced by a newer one the handler gives.
void merge(SubOperationCounts& counts, const SubOperationCounts& given) {
    if (given.remaining >= 0) counts.remaining = given.remaining;
    if (given.completed >= 0) counts.completed = given.completed;
    if (given.failed >= 0) counts.failed = given.failed;
    if (given.warning >= 0) counts.warning = given.warning;
}

//! The fields every C-GET/C-MOVE request has.
struct RetrieveFields {
    bool get;
    uint16_t message_id;
    const char* sop_class;
    T_DIMSE_Priority priority;
};

RetrieveFields fields_of(const T_DIMSE_Message& message) {
    if (message.CommandField == DIMSE_C_GET_RQ) {
        const auto& rq = message.msg.CGetRQ;
        return {true, rq.MessageID, rq.AffectedSOPClassUID, rq.Priority};
    }
    const auto& rq = message.msg.CMoveRQ;
    return {false, rq.MessageID, rq.AffectedSOPClassUID, rq.Priority};
}

//! A C-GET-RSP or C-MOVE-RSP. Number of Remaining Sub-operations only with Pending and Cancel
//! (PS3.4 C.4.2.1.6, C.4.3.1.5).
T_DIMSE_Message response_to(const RetrieveFields& fields, uint16_t status,
                            const SubOperationCounts& counts, bool has_identifier) {
    T_DIMSE_Message response{};
    auto fill = [&](auto& rsp) {
        rsp.MessageIDBeingRespondedTo = fields.message_id;
        OFStandard::strlcpy(rsp.AffectedSOPClassUID, fields.sop_class,
                            sizeof(rsp.AffectedSOPClassUID));
        rsp.DimseStatus = status;
        rsp.DataSetType = has_identifier ? DIMSE_DATASET_PRESENT : DIMSE_DATASET_NULL;
        rsp.opts = O_GET_AFFECTEDSOPCLASSUID;
        const bool with_remaining = is_pending(status) || status == kCancel;
        if (with_remaining && counts.remaining >= 0) {
            rsp.NumberOfRemainingSubOperations = static_cast<DIC_US>(counts.remaining);
            rsp.opts |= O_GET_NUMBEROFREMAININGSUBOPERATIONS;
        }
        if (counts.completed >= 0) {
            rsp.NumberOfCompletedSubOperations = static_cast<DIC_US>(counts.completed);
            rsp.opts |= O_GET_NUMBEROFCOMPLETEDSUBOPERATIONS;
        }
        if (counts.failed >= 0) {
            rsp.NumberOfFailedSubOperations = static_cast<DIC_US>(counts.failed);
            rsp.opts |= O_GET_NUMBEROFFAILEDSUBOPERATIONS;
        }
        if (counts.warning >= 0) {
            rsp.NumberOfWarningSubOperations = static_cast<DIC_US>(counts.warning);
            rsp.opts |= O_GET_NUMBEROFWARNINGSUBOPERATIONS;
        }
    };
    if (fields.get) {
        response.CommandField = DIMSE_C_GET_RSP;
        fill(response.msg.CGetRSP);
    } else {
        response.CommandField = DIMSE_C_MOVE_RSP;
        fill(response.msg.CMoveRSP);
    }
    return response;
}

}  // namespace

bool Association::handle_retrieve(T_ASC_PresentationContextID pres_id, T_DIMSE_Message& message,
                                  std::string& outcome) {
    const RetrieveFields fields = fields_of(message);
    const char* name = fields.get ? "C-GET" : "C-MOVE";
    T_ASC_PresentationContext context;
    if (ASC_findAcceptedPresentationContext(association_.get()->params, pres_id, &context)
            .bad()) {
        outcome = std::string("aborted: ") + name + " on a presentation context not accepted";
        abort();
        return false;
    }
    const E_TransferSyntax syntax = DcmXfer(context.acceptedTransferSyntax).getXfer();
    T_ASC_PresentationContextID data_pres_id = 0;
    DcmDataset* identifier_raw = nullptr;
    OFCondition cond = DIMSE_receiveDataSetInMemory(association_.get(), DIMSE_NONBLOCKING,
                                                    config_->dimse_timeout, &data_pres_id,
                                                    &identifier_raw, nullptr, nullptr);
    std::unique_ptr<DcmDataset> identifier(identifier_raw);
    if (cond.bad() || !identifier) {
        outcome = failure_outcome(cond, std::string("receiving a ") + name + " identifier");
        return false;
    }
    DimseRequest up = request_up(fields.get ? "C-GET-RQ" : "C-MOVE-RQ", message.CommandField,
                                 fields.message_id, fields.sop_class, context);
    up.priority = static_cast<uint16_t>(fields.priority);
    if (!fields.get) up.move_destination = trim(message.msg.CMoveRQ.MoveDestination);
    if (encode_data_set(*identifier, syntax, up.data_set).bad()) up.data_set.clear();

    std::unique_ptr<ResponseStream> stream;
    if (engine_.callbacks().on_request) stream = engine_.callbacks().on_request(up);
    uint16_t final_status = kUnableToProcess;
    StatusDetail final_detail;
    SubOperationCounts counts;
    std::unique_ptr<DcmDataset> final_identifier;
    if (stream) {
        final_status = 0x0000;
        DimseResponse answer;
        for (;;) {
            if (!stream->next(answer)) break;  // no final status given: Success
            if (answer.failed) {
                final_status = kUnableToProcess;
                break;
            }
            bool broken = false;
            if (answer.is_store) {
                uint16_t status = kNotSent;
                bool cancelled = cancel_requested(fields.message_id, outcome, broken, name);
                if (broken) {
                    stream->cancel();
                    return false;
                }
                if (!cancelled && !fields.get) {
                    engine_.log(kError, "a C-MOVE handler asked for a C-STORE on the "
                                        "requester's association: not sent");
                } else if (!cancelled &&
                           !store_sub_operation(answer.store, fields.message_id,
                                                fields.priority, status, cancelled, outcome)) {
                    stream->cancel();
                    return false;
                }
                if (cancelled) {
                    stream->cancel();
                    final_status = kCancel;
                    break;
                }
                stream->reply(status);
                continue;
            }
            merge(counts, answer.counts);
            if (!is_pending(answer.status)) {
                final_status = answer.status;
                final_detail = answer.detail;
                if (answer.has_data_set) {
                    final_identifier = decode_data_set(answer.data_set, syntax);
                    if (!final_identifier) {
                        engine_.log(kError, std::string("the ") + name + " handler's final "
                                            "identifier does not parse: sent without it");
                    }
                }
                break;
            }
            // Looked for just before each Pending answer goes out.
            if (cancel_requested(fields.message_id, outcome, broken, name)) {
                stream->cancel();
                final_status = kCancel;
                break;
            }
            if (broken) {
                stream->cancel();
                return false;
            }
            std::unique_ptr<DcmDataset> pending_identifier;
            if (answer.has_data_set) pending_identifier = decode_data_set(answer.data_set, syntax);
            T_DIMSE_Message response = response_to(fields, answer.status, counts,
                                                   pending_identifier != nullptr);
            cond = DIMSE_sendMessageUsingMemoryData(association_.get(), pres_id, &response,
                                                    nullptr, pending_identifier.get(), nullptr,
                                                    nullptr);
            if (cond.bad()) {
                stream->cancel();
                outcome = failure_outcome(cond, std::string("sending a ") + name + "-RSP");
                return false;
            }
        }
    }
    T_DIMSE_Message response =
        response_to(fields, final_status, counts, final_identifier != nullptr);
    std::unique_ptr<DcmDataset> status_fields = status_detail(final_status, final_detail);
    cond = DIMSE_sendMessageUsingMemoryData(association_.get(), pres_id, &response,
                                            status_fields.get(), final_identifier.get(), nullptr,
                                            nullptr);
    if (cond.bad()) {
        outcome = failure_outcome(cond, std::string("sending a ") + name + "-RSP");
        return false;
    }
    return true;
}

T_ASC_PresentationContextID Association::storage_context(const std::string& sop_class,
                                                         const std::string& transfer_syntax) {
    T_ASC_Parameters* params = association_.get()->params;
    const int count = ASC_countPresentationContexts(params);
    for (int position = 0; position < count; ++position) {
        T_ASC_PresentationContext context;
        if (ASC_getPresentationContext(params, position, &context).bad()) continue;
        if (context.resultReason != ASC_P_ACCEPTANCE) continue;
        if (sop_class != context.abstractSyntax) continue;
        if (transfer_syntax != context.acceptedTransferSyntax) continue;
        if (context.acceptedRole != ASC_SC_ROLE_SCP && context.acceptedRole != ASC_SC_ROLE_SCUSCP)
            continue;
        return context.presentationContextID;
    }
    return 0;
}

bool Association::store_sub_operation(const StoreSubOperation& store, uint16_t retrieve_id,
                                      T_DIMSE_Priority priority, uint16_t& status,
                                      bool& cancelled, std::string& outcome) {
    cancelled = false;
    const T_ASC_PresentationContextID pres_id =
        storage_context(store.sop_class_uid, store.transfer_syntax_uid);
    if (pres_id == 0) {
        engine_.log(kWarning, "C-STORE sub-operation for " + store.sop_instance_uid +
                                  " not sent: no accepted context for " + store.sop_class_uid +
                                  " in " + store.transfer_syntax_uid +
                                  " with the requester as SCP");
        status = kNotSent;
        return true;
    }
    // Loaded as DCMTK does for its own senders: large values stay in the file until written.
    DcmFileFormat file;
    std::unique_ptr<DcmDataset> decoded;
    DcmDataset* data = nullptr;
    if (!store.path.empty()) {
        const OFCondition loaded = file.loadFile(store.path.c_str());
        if (loaded.bad()) {
            engine_.log(kWarning, "C-STORE sub-operation: cannot read " + store.path + ": " +
                                      loaded.text());
            status = kProcessingFailure;
            return true;
        }
        data = file.getDataset();
        const std::string stored_in = DcmXfer(data->getOriginalXfer()).getXferID();
        if (stored_in != store.transfer_syntax_uid) {
            engine_.log(kWarning, "C-STORE sub-operation: " + store.path + " is in " +
                                      stored_in + ", not " + store.transfer_syntax_uid +
                                      ": not sent (no transcoding)");
            status = kNotSent;
            return true;
        }
    } else {
        decoded = decode_data_set(store.data_set, DcmXfer(store.transfer_syntax_uid.c_str())
                                                      .getXfer());
        if (!decoded) {
            engine_.log(kWarning, "C-STORE sub-operation for " + store.sop_instance_uid +
                                      ": its data set does not parse");
            status = kProcessingFailure;
            return true;
        }
        data = decoded.get();
    }
    T_DIMSE_Message request{};
    request.CommandField = DIMSE_C_STORE_RQ;
    auto& rq = request.msg.CStoreRQ;
    rq.MessageID = next_sub_message_id_++;
    OFStandard::strlcpy(rq.AffectedSOPClassUID, store.sop_class_uid.c_str(),
                        sizeof(rq.AffectedSOPClassUID));
    OFStandard::strlcpy(rq.AffectedSOPInstanceUID, store.sop_instance_uid.c_str(),
                        sizeof(rq.AffectedSOPInstanceUID));
    rq.Priority = priority;
    rq.DataSetType = DIMSE_DATASET_PRESENT;
    OFCondition cond = DIMSE_sendMessageUsingMemoryData(association_.get(), pres_id, &request,
                                                        nullptr, data, nullptr, nullptr);
    if (cond.bad()) {
        outcome = failure_outcome(cond, "sending a C-STORE sub-operation");
        return false;
    }
    for (;;) {
        T_ASC_PresentationContextID answer_pres_id = 0;
        T_DIMSE_Message answer;
        DcmDataset* detail_raw = nullptr;
        cond = DIMSE_receiveCommand(association_.get(), DIMSE_NONBLOCKING,
                                    config_->dimse_timeout, &answer_pres_id, &answer,
                                    &detail_raw);
        std::unique_ptr<DcmDataset> detail(detail_raw);
        if (cond.bad()) {
            outcome = failure_outcome(cond, "waiting for a C-STORE-RSP");
            return false;
        }
        if (answer.CommandField == DIMSE_C_STORE_RSP &&
            answer.msg.CStoreRSP.MessageIDBeingRespondedTo == rq.MessageID) {
            status = answer.msg.CStoreRSP.DimseStatus;
            return true;
        }
        if (answer.CommandField == DIMSE_C_CANCEL_RQ &&
            answer.msg.CCancelRQ.MessageIDBeingRespondedTo == retrieve_id) {
            count("C-CANCEL");
            cancelled = true;  // this sub-operation still gets its answer
            continue;
        }
        outcome = "aborted: another message while waiting for a C-STORE-RSP";
        abort();
        return false;
    }
}

}  // namespace engine
