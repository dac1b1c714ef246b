// N-EVENT-REPORTs sent by the SCP (Print's printer and print-job events; later Storage
// Commitment results): queued from any thread, sent by the association's own thread between
// commands (so a request the SCU sends meanwhile is served as usual), answered asynchronously:
// the N-EVENT-REPORT-RSP is matched to its request in the DIMSE loop and logged.
#include <memory>
#include <sstream>

#include "association.hpp"
#include "data_set_bytes.hpp"
#include "dcmtk/dcmdata/dcxfer.h"
#include "engine.hpp"

namespace engine {

void Association::post_event(EventReport event) {
    std::lock_guard<std::mutex> lock(outbox_mutex_);
    outbox_.push_back(std::move(event));
}

bool Association::send_events(std::string& outcome) {
    for (;;) {
        EventReport event;
        {
            std::lock_guard<std::mutex> lock(outbox_mutex_);
            if (outbox_.empty()) return true;
            event = std::move(outbox_.front());
            outbox_.pop_front();
        }
        const T_ASC_PresentationContextID pres_id = ASC_findAcceptedPresentationContextID(
            association_.get(), event.abstract_syntax.c_str());
        if (pres_id == 0) {
            engine_.log(kWarning, "N-EVENT-REPORT not sent: no accepted context for " +
                                    event.abstract_syntax);
            continue;
        }
        std::unique_ptr<DcmDataset> info;
        if (event.has_data_set) {
            info = decode_data_set(event.data_set, DcmXfer(event.transfer_syntax_uid.c_str())
                                                       .getXfer());
            if (!info) {
                engine_.log(kError, "N-EVENT-REPORT not sent: its Event Information "
                                        "does not parse");
                continue;
            }
        }
        T_DIMSE_Message request{};
        request.CommandField = DIMSE_N_EVENT_REPORT_RQ;
        auto& report = request.msg.NEventReportRQ;
        report.MessageID = next_event_message_id_++;
        OFStandard::strlcpy(report.AffectedSOPClassUID, event.sop_class_uid.c_str(),
                            sizeof(report.AffectedSOPClassUID));
        OFStandard::strlcpy(report.AffectedSOPInstanceUID, event.sop_instance_uid.c_str(),
                            sizeof(report.AffectedSOPInstanceUID));
        report.EventTypeID = event.event_type_id;
        report.DataSetType = info ? DIMSE_DATASET_PRESENT : DIMSE_DATASET_NULL;
        const OFCondition cond = DIMSE_sendMessageUsingMemoryData(
            association_.get(), pres_id, &request, nullptr, info.get(), nullptr, nullptr);
        if (cond.bad()) {
            outcome = failure_outcome(cond, "sending an N-EVENT-REPORT");
            return false;
        }
        ++events_sent_;
        events_unanswered_.insert(report.MessageID);
    }
}

void Association::event_answered(const T_DIMSE_N_EventReportRSP& response) {
    if (events_unanswered_.erase(response.MessageIDBeingRespondedTo) == 0) {
        engine_.log(kWarning, "N-EVENT-REPORT-RSP from " + peer_.address +
                                " to no request of ours (message id " +
                                std::to_string(response.MessageIDBeingRespondedTo) + ")");
        return;
    }
    if (response.DimseStatus != 0x0000) {
        std::ostringstream text;
        text << "N-EVENT-REPORT to " << peer_.calling_ae << " answered 0x" << std::hex
             << response.DimseStatus;
        engine_.log(kWarning, text.str());
    }
}

}  // namespace engine
