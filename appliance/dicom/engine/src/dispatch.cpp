// Requests the engine hands to the Python services (see EngineCallbacks::on_request): the data
// set goes up as bytes in the presentation context's transfer syntax, the responses come back
// one at a time. C-FIND so far: Pending answers streamed as the handler yields them, C-CANCEL
// looked for between them.
#include <memory>

#include "association.hpp"
#include "data_set_bytes.hpp"
#include "dimse_status.hpp"
#include "dcmtk/dcmdata/dcxfer.h"
#include "engine.hpp"

namespace engine {

DimseRequest Association::request_up(const char* command, uint16_t command_field,
                                     uint16_t message_id, const std::string& sop_class_uid,
                                     const T_ASC_PresentationContext& context) const {
    DimseRequest up;
    up.command = command;
    up.command_field = command_field;
    up.message_id = message_id;
    up.sop_class_uid = sop_class_uid;
    up.calling_ae = peer_.calling_ae;
    up.called_ae = peer_.called_ae;
    up.association_id = id_;
    up.transfer_syntax_uid = context.acceptedTransferSyntax;
    return up;
}

bool Association::cancel_requested(uint16_t message_id, std::string& outcome, bool& broken,
                                   const char* during) {
    broken = false;
    if (!ASC_dataWaiting(association_.get(), 0)) return false;
    T_ASC_PresentationContextID pres_id = 0;
    T_DIMSE_Message message;
    DcmDataset* detail_raw = nullptr;
    const OFCondition cond = DIMSE_receiveCommand(association_.get(), DIMSE_NONBLOCKING,
                                                  config_->dimse_timeout, &pres_id,
                                                  &message, &detail_raw);
    std::unique_ptr<DcmDataset> detail(detail_raw);
    if (cond.good() && message.CommandField == DIMSE_C_CANCEL_RQ &&
        message.msg.CCancelRQ.MessageIDBeingRespondedTo == message_id) {
        count("C-CANCEL");
        return true;
    }
    // Only a C-CANCEL may come while we answer (no asynchronous operations negotiated).
    broken = true;
    if (cond.bad()) {
        outcome = failure_outcome(cond, std::string("during a ") + during);
    } else {
        outcome = std::string("aborted: another request during a ") + during;
        abort();
    }
    return false;
}

bool Association::handle_find(T_ASC_PresentationContextID pres_id,
                              const T_DIMSE_C_FindRQ& request, std::string& outcome) {
    T_ASC_PresentationContext context;
    if (ASC_findAcceptedPresentationContext(association_.get()->params, pres_id, &context)
            .bad()) {
        outcome = "aborted: C-FIND on a presentation context not accepted";
        abort();
        return false;
    }
    const E_TransferSyntax syntax = DcmXfer(context.acceptedTransferSyntax).getXfer();
    T_ASC_PresentationContextID data_pres_id = 0;
    DcmDataset* identifier_raw = nullptr;
    OFCondition cond = DIMSE_receiveDataSetInMemory(association_.get(), DIMSE_NONBLOCKING,
                                                    config_->dimse_timeout,
                                                    &data_pres_id, &identifier_raw, nullptr,
                                                    nullptr);
    std::unique_ptr<DcmDataset> identifier(identifier_raw);
    if (cond.bad() || !identifier) {
        outcome = failure_outcome(cond, "receiving a C-FIND identifier");
        return false;
    }
    DimseRequest up = request_up("C-FIND-RQ", DIMSE_C_FIND_RQ, request.MessageID,
                                 request.AffectedSOPClassUID, context);
    up.priority = static_cast<uint16_t>(request.Priority);
    if (encode_data_set(*identifier, syntax, up.data_set).bad()) up.data_set.clear();

    T_DIMSE_C_FindRSP response{};
    response.MessageIDBeingRespondedTo = request.MessageID;
    OFStandard::strlcpy(response.AffectedSOPClassUID, request.AffectedSOPClassUID,
                        sizeof(response.AffectedSOPClassUID));
    response.opts = O_FIND_AFFECTEDSOPCLASSUID;

    std::unique_ptr<ResponseStream> stream;
    if (engine_.callbacks().on_request) stream = engine_.callbacks().on_request(up);
    uint16_t final_status = kUnableToProcess;
    StatusDetail final_detail;
    if (stream) {
        final_status = 0x0000;
        DimseResponse answer;
        for (;;) {
            if (!stream->next(answer)) break;  // no final status given: Success
            if (answer.failed) {
                final_status = kUnableToProcess;
                break;
            }
            if (!is_pending(answer.status)) {
                final_status = answer.status;
                final_detail = answer.detail;
                break;
            }
            // Looked for just before each Pending answer goes out, however long the handler
            // took to produce it.
            bool broken = false;
            if (cancel_requested(request.MessageID, outcome, broken)) {
                stream->cancel();
                final_status = kCancel;
                break;
            }
            if (broken) return false;
            std::unique_ptr<DcmDataset> match;
            if (answer.has_data_set) match = decode_data_set(answer.data_set, syntax);
            if (!match) {
                engine_.log(kError, "C-FIND handler gave a Pending answer without "
                                        "a readable identifier: answering 0xC000");
                stream->cancel();
                final_status = kUnableToProcess;
                break;
            }
            response.DimseStatus = answer.status;
            response.DataSetType = DIMSE_DATASET_PRESENT;
            cond = DIMSE_sendFindResponse(association_.get(), pres_id, &request, &response,
                                          match.get(), nullptr);
            if (cond.bad()) {
                stream->cancel();
                outcome = failure_outcome(cond, "sending a C-FIND-RSP");
                return false;
            }
        }
    }
    response.DimseStatus = final_status;
    response.DataSetType = DIMSE_DATASET_NULL;
    std::unique_ptr<DcmDataset> status_fields = status_detail(final_status, final_detail);
    cond = DIMSE_sendFindResponse(association_.get(), pres_id, &request, &response, nullptr,
                                  status_fields.get());
    if (cond.bad()) {
        outcome = failure_outcome(cond, "sending a C-FIND-RSP");
        return false;
    }
    return true;
}

}  // namespace engine
