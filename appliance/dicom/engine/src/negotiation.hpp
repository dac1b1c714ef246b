// Association negotiation as policy: which A-ASSOCIATE-RQ is refused and with which
// result/source/reason (docs/conformance.md 2.1), which presentation contexts are accepted,
// and the identity we answer with. No sockets and no threads here.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmnet/assoc.h"

namespace engine {

struct EngineConfig;

//! An A-ASSOCIATE-RJ: the standard's result, source and reason, and the words for the log.
struct Refusal {
    T_ASC_RejectParametersResult result;
    T_ASC_RejectParametersSource source;
    T_ASC_RejectParametersReason reason;
    const char* words;
    //! As appliance.dicom.scu.rejection_reason words an A-ASSOCIATE-RJ (pynetdicom's
    //! texts), after "rejected: ".
    const char* outcome;
};

//! What the requester asked for, as the A-ASSOCIATE-RQ says (AE titles without padding).
struct Request {
    std::string calling_ae;
    std::string called_ae;
    std::string application_context;
};

Request read_request(T_ASC_Parameters* params);

//! The refusal this request gets, or nullptr when it is accepted. `over_limit`: no free
//! association slot. Checked in the order: limit, application context, calling AE, called AE.
const Refusal* refusal_for(const EngineConfig& config, const Request& request, bool over_limit);

//! True when `called` is ours or one of the extra titles (printer profiles).
bool called_title_known(const EngineConfig& config, const std::string& called);

//! Each proposed context: accepted with the first transfer syntax the requester proposes that
//! we declare for its abstract syntax, else refused with the standard's reason. A context the
//! requester proposes with the SCP role (SCP/SCU Role Selection) for a SOP class in
//! `retrieve_storage` is accepted with that role (C-STORE sub-operations of C-GET go to it),
//! from that table's transfer syntaxes; any other role proposal gets the default roles.
void accept_contexts(T_ASC_Parameters* params,
                     const std::map<std::string, std::vector<std::string>>& declared,
                     const std::map<std::string, std::vector<std::string>>& retrieve_storage);

//! Our A-ASSOCIATE-AC identity: responding AE title, Implementation Class UID and Version.
void answer_as(T_ASC_Parameters* params, const std::string& responding_ae);

std::string trim(const std::string& value);

}  // namespace engine
