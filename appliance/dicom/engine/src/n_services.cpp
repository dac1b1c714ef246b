// N-CREATE, N-SET, N-GET, N-ACTION, N-DELETE and an N-EVENT-REPORT from the peer (a Storage
// Commitment result) handed to the Python handler (the DIMSE-N side of Print Management, and
// later MPPS and Storage Commitment): the request's fields and
// data set up, one answer (status, data set, the new instance's UID for N-CREATE) back.
#include <memory>

#include "association.hpp"
#include "data_set_bytes.hpp"
#include "dimse_status.hpp"
#include "dcmtk/dcmdata/dcxfer.h"
#include "engine.hpp"

namespace engine {

namespace {

//! The fields every N-request has, whatever its command.
struct NRequestFields {
    const char* name;
    uint16_t message_id;
    const char* sop_class;
    const char* sop_instance;
    T_DIMSE_DataSetType data_set_type;
};

NRequestFields fields_of(const T_DIMSE_Message& message) {
    const auto& m = message.msg;
    switch (message.CommandField) {
        case DIMSE_N_CREATE_RQ:
            return {"N-CREATE-RQ", m.NCreateRQ.MessageID, m.NCreateRQ.AffectedSOPClassUID,
                    m.NCreateRQ.AffectedSOPInstanceUID, m.NCreateRQ.DataSetType};
        case DIMSE_N_SET_RQ:
            return {"N-SET-RQ", m.NSetRQ.MessageID, m.NSetRQ.RequestedSOPClassUID,
                    m.NSetRQ.RequestedSOPInstanceUID, m.NSetRQ.DataSetType};
        case DIMSE_N_GET_RQ:
            return {"N-GET-RQ", m.NGetRQ.MessageID, m.NGetRQ.RequestedSOPClassUID,
                    m.NGetRQ.RequestedSOPInstanceUID, m.NGetRQ.DataSetType};
        case DIMSE_N_EVENT_REPORT_RQ:
            return {"N-EVENT-REPORT-RQ", m.NEventReportRQ.MessageID,
                    m.NEventReportRQ.AffectedSOPClassUID, m.NEventReportRQ.AffectedSOPInstanceUID,
                    m.NEventReportRQ.DataSetType};
        case DIMSE_N_ACTION_RQ:
            return {"N-ACTION-RQ", m.NActionRQ.MessageID, m.NActionRQ.RequestedSOPClassUID,
                    m.NActionRQ.RequestedSOPInstanceUID, m.NActionRQ.DataSetType};
        default:
            return {"N-DELETE-RQ", m.NDeleteRQ.MessageID, m.NDeleteRQ.RequestedSOPClassUID,
                    m.NDeleteRQ.RequestedSOPInstanceUID, m.NDeleteRQ.DataSetType};
    }
}

void copy_uid(DIC_UI& target, const std::string& value) {
    OFStandard::strlcpy(target, value.c_str(), sizeof(target));
}

//! The response message for `request`, carrying `answer`.
T_DIMSE_Message response_to(const T_DIMSE_Message& request, const NRequestFields& fields,
                            const DimseResponse& answer) {
    T_DIMSE_Message response{};
    const std::string instance = answer.affected_sop_instance_uid.empty()
                                     ? std::string(fields.sop_instance)
                                     : answer.affected_sop_instance_uid;
    const T_DIMSE_DataSetType data =
        answer.has_data_set ? DIMSE_DATASET_PRESENT : DIMSE_DATASET_NULL;
    auto fill = [&](auto& rsp, unsigned class_flag, unsigned instance_flag) {
        rsp.MessageIDBeingRespondedTo = fields.message_id;
        rsp.DimseStatus = answer.status;
        rsp.DataSetType = data;
        copy_uid(rsp.AffectedSOPClassUID, fields.sop_class);
        copy_uid(rsp.AffectedSOPInstanceUID, instance);
        rsp.opts = class_flag | (instance.empty() ? 0u : instance_flag);
    };
    auto& m = response.msg;
    switch (request.CommandField) {
        case DIMSE_N_CREATE_RQ:
            response.CommandField = DIMSE_N_CREATE_RSP;
            fill(m.NCreateRSP, O_NCREATE_AFFECTEDSOPCLASSUID, O_NCREATE_AFFECTEDSOPINSTANCEUID);
            break;
        case DIMSE_N_SET_RQ:
            response.CommandField = DIMSE_N_SET_RSP;
            fill(m.NSetRSP, O_NSET_AFFECTEDSOPCLASSUID, O_NSET_AFFECTEDSOPINSTANCEUID);
            break;
        case DIMSE_N_GET_RQ:
            response.CommandField = DIMSE_N_GET_RSP;
            fill(m.NGetRSP, O_NGET_AFFECTEDSOPCLASSUID, O_NGET_AFFECTEDSOPINSTANCEUID);
            break;
        case DIMSE_N_ACTION_RQ:
            response.CommandField = DIMSE_N_ACTION_RSP;
            fill(m.NActionRSP, O_NACTION_AFFECTEDSOPCLASSUID, O_NACTION_AFFECTEDSOPINSTANCEUID);
            m.NActionRSP.ActionTypeID = request.msg.NActionRQ.ActionTypeID;
            m.NActionRSP.opts |= O_NACTION_ACTIONTYPEID;
            break;
        case DIMSE_N_EVENT_REPORT_RQ:
            response.CommandField = DIMSE_N_EVENT_REPORT_RSP;
            fill(m.NEventReportRSP, O_NEVENTREPORT_AFFECTEDSOPCLASSUID,
                 O_NEVENTREPORT_AFFECTEDSOPINSTANCEUID);
            m.NEventReportRSP.EventTypeID = request.msg.NEventReportRQ.EventTypeID;
            m.NEventReportRSP.opts |= O_NEVENTREPORT_EVENTTYPEID;
            break;
        default:
            response.CommandField = DIMSE_N_DELETE_RSP;
            fill(m.NDeleteRSP, O_NDELETE_AFFECTEDSOPCLASSUID, O_NDELETE_AFFECTEDSOPINSTANCEUID);
    }
    return response;
}

}  // namespace

bool Association::handle_n_request(T_ASC_PresentationContextID pres_id,
                                   T_DIMSE_Message& message, std::string& outcome) {
    const NRequestFields fields = fields_of(message);
    T_ASC_PresentationContext context;
    if (ASC_findAcceptedPresentationContext(association_.get()->params, pres_id, &context)
            .bad()) {
        outcome = std::string("aborted: ") + fields.name + " on a context not accepted";
        abort();
        return false;
    }
    const E_TransferSyntax syntax = DcmXfer(context.acceptedTransferSyntax).getXfer();
    DimseRequest up = request_up(fields.name, message.CommandField, fields.message_id,
                                 fields.sop_class, context);
    up.sop_instance_uid = fields.sop_instance;
    if (message.CommandField == DIMSE_N_ACTION_RQ) {
        up.action_type_id = message.msg.NActionRQ.ActionTypeID;
    }
    if (message.CommandField == DIMSE_N_EVENT_REPORT_RQ) {
        up.event_type_id = message.msg.NEventReportRQ.EventTypeID;
    }
    if (message.CommandField == DIMSE_N_GET_RQ) {
        const auto& get = message.msg.NGetRQ;
        for (int n = 0; n + 1 < get.ListCount && get.AttributeIdentifierList; n += 2) {
            up.attribute_list.push_back((uint32_t(get.AttributeIdentifierList[n]) << 16) |
                                        get.AttributeIdentifierList[n + 1]);
        }
    }
    if (fields.data_set_type != DIMSE_DATASET_NULL) {
        T_ASC_PresentationContextID data_pres_id = 0;
        DcmDataset* received_raw = nullptr;
        const OFCondition cond = DIMSE_receiveDataSetInMemory(
            association_.get(), DIMSE_NONBLOCKING, config_->dimse_timeout,
            &data_pres_id, &received_raw, nullptr, nullptr);
        std::unique_ptr<DcmDataset> received(received_raw);
        if (cond.bad() || !received) {
            outcome = failure_outcome(cond, std::string("receiving the data set of an ") + fields.name);
            return false;
        }
        if (encode_data_set(*received, syntax, up.data_set).bad()) up.data_set.clear();
    }

    DimseResponse answer;
    answer.status = kProcessingFailure;
    std::unique_ptr<ResponseStream> stream;
    if (engine_.callbacks().on_request) stream = engine_.callbacks().on_request(up);
    if (stream && !stream->next(answer)) {
        answer = DimseResponse{};  // nothing to say: Success without a data set
    }
    if (answer.failed) {
        answer = DimseResponse{};
        answer.status = kProcessingFailure;
    }
    std::unique_ptr<DcmDataset> reply;
    if (answer.has_data_set) {
        reply = decode_data_set(answer.data_set, syntax);
        if (!reply) {
            engine_.log(kError, std::string("the ") + fields.name + " handler's "
                                    "data set does not parse: answering 0x0110");
            answer = DimseResponse{};
            answer.status = kProcessingFailure;
        }
    }
    T_DIMSE_Message response = response_to(message, fields, answer);
    std::unique_ptr<DcmDataset> status_fields = status_detail(answer.status, answer.detail);
    const OFCondition cond = DIMSE_sendMessageUsingMemoryData(
        association_.get(), pres_id, &response, status_fields.get(), reply.get(), nullptr,
        nullptr);
    if (cond.bad()) {
        outcome = failure_outcome(cond, std::string("answering an ") + fields.name);
        return false;
    }
    return true;
}

}  // namespace engine
