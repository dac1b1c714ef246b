// N-EVENT-REPORTs sent by the SCP (Print's printer and print-job events; later Storage
// Commitment results): queued from any thread, sent by the association's own thread between
// commands (so a request the SCU sends meanwhile is served as usual), answered asynchronously:
// the N-EVENT-REPORT-RSP is matched to its request in the DIMSE loop and logged. A tagged event
// (Storage Commitment's report) has its outcome told up as an association event: answered,
// or not delivered (still queued, or sent and unanswered, when the association ended), so the
// sender can try another way; post_event refuses events once the association stops.
#include <memory>
#include <sstream>

#include "association.hpp"
#include "data_set_bytes.hpp"
#include "dcmtk/dcmdata/dcxfer.h"
#include "engine.hpp"

namespace engine {

bool Association::post_event(EventReport event) {
    std::lock_guard<std::mutex> lock(outbox_mutex_);
    if (events_closed_) return false;
    outbox_.push_back(std::move(event));
    return true;
}

void Association::event_outcome(uint64_t tag, bool delivered, int status) {
    if (tag == 0) return;
    AssociationEvent event;
    event.kind = AssociationEvent::kEventOutcome;
    event.association_id = id_;
    event.peer = peer_.address;
    event.calling_ae = peer_.calling_ae;
    event.called_ae = peer_.called_ae;
    event.event_tag = tag;
    event.event_delivered = delivered;
    event.event_status = status;
    engine_.notify(event);
}

void Association::close_events() {
    std::deque<EventReport> unsent;
    {
        std::lock_guard<std::mutex> lock(outbox_mutex_);
        events_closed_ = true;
        unsent.swap(outbox_);
    }
    for (const auto& event : unsent) {
        engine_.log(kWarning, "N-EVENT-REPORT to " + peer_.calling_ae + " not sent: the "
                                "association ended first");
        event_outcome(event.tag, false, -1);
    }
    for (const auto& [message_id, tag] : events_unanswered_) {
        engine_.log(kWarning, "N-EVENT-REPORT to " + peer_.calling_ae + " (message id " +
                                std::to_string(message_id) + ") not answered before the "
                                "association ended");
        event_outcome(tag, false, -1);
    }
    events_unanswered_.clear();
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
            event_outcome(event.tag, false, -1);
            continue;
        }
        std::unique_ptr<DcmDataset> info;
        if (event.has_data_set) {
            info = decode_data_set(event.data_set, DcmXfer(event.transfer_syntax_uid.c_str())
                                                       .getXfer());
            if (!info) {
                engine_.log(kError, "N-EVENT-REPORT not sent: its Event Information "
                                        "does not parse");
                event_outcome(event.tag, false, -1);
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
            event_outcome(event.tag, false, -1);
            return false;
        }
        ++events_sent_;
        events_unanswered_[report.MessageID] = event.tag;
    }
}

void Association::event_answered(const T_DIMSE_N_EventReportRSP& response) {
    const auto found = events_unanswered_.find(response.MessageIDBeingRespondedTo);
    if (found == events_unanswered_.end()) {
        engine_.log(kWarning, "N-EVENT-REPORT-RSP from " + peer_.address +
                                " to no request of ours (message id " +
                                std::to_string(response.MessageIDBeingRespondedTo) + ")");
        return;
    }
    const uint64_t tag = found->second;
    events_unanswered_.erase(found);
    event_outcome(tag, true, response.DimseStatus);
    if (response.DimseStatus != 0x0000) {
        std::ostringstream text;
        text << "N-EVENT-REPORT to " << peer_.calling_ae << " answered 0x" << std::hex
             << response.DimseStatus;
        engine_.log(kWarning, text.str());
    }
}

}  // namespace engine
