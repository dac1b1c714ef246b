// See negotiation.hpp.
#include "negotiation.hpp"

#include <algorithm>

#include "dcmtk/ofstd/ofstd.h"
#include "engine.hpp"

namespace engine {

namespace {

constexpr const char* kApplicationContext = "1.2.840.10008.3.1.1.1";

const Refusal kTooMany{ASC_RESULT_REJECTEDTRANSIENT,
                       ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED,
                       ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED,
                       "too many associations (local-limit-exceeded)",
                       "local limit exceeded (rejected transient, service provider "
                       "(presentation))"};
const Refusal kContext{ASC_RESULT_REJECTEDPERMANENT, ASC_SOURCE_SERVICEUSER,
                       ASC_REASON_SU_APPCONTEXTNAMENOTSUPPORTED,
                       "application context name not supported",
                       "application context name not supported (rejected permanent, "
                       "service user)"};
const Refusal kCalling{ASC_RESULT_REJECTEDPERMANENT, ASC_SOURCE_SERVICEUSER,
                       ASC_REASON_SU_CALLINGAETITLENOTRECOGNIZED,
                       "calling AE title not recognized",
                       "calling AE title not recognised (rejected permanent, service user)"};
const Refusal kCalled{ASC_RESULT_REJECTEDPERMANENT, ASC_SOURCE_SERVICEUSER,
                      ASC_REASON_SU_CALLEDAETITLENOTRECOGNIZED,
                      "called AE title not recognized",
                      "called AE title not recognised (rejected permanent, service user)"};

bool contains(const std::vector<std::string>& titles, const std::string& title) {
    return std::any_of(titles.begin(), titles.end(),
                       [&](const std::string& entry) { return trim(entry) == title; });
}

}  // namespace

std::string trim(const std::string& value) {
    const auto first = value.find_first_not_of(' ');
    if (first == std::string::npos) return "";
    return value.substr(first, value.find_last_not_of(' ') - first + 1);
}

Request read_request(T_ASC_Parameters* params) {
    DIC_AE calling = {0};
    DIC_AE called = {0};
    DIC_UI context_name = {0};
    ASC_getAPTitles(params, calling, sizeof(calling), called, sizeof(called), nullptr, 0);
    ASC_getApplicationContextName(params, context_name, sizeof(context_name));
    return Request{trim(calling), trim(called), trim(context_name)};
}

bool called_title_known(const EngineConfig& config, const std::string& called) {
    return called == trim(config.ae_title) || contains(config.extra_called_aets, called);
}

const Refusal* refusal_for(const EngineConfig& config, const Request& request,
                           bool over_limit) {
    if (over_limit) return &kTooMany;
    if (request.application_context != kApplicationContext) return &kContext;
    if (!config.allowed_calling_aets.empty() &&
        !contains(config.allowed_calling_aets, request.calling_ae)) {
        return &kCalling;
    }
    if (config.strict_called_aet && !called_title_known(config, request.called_ae)) {
        return &kCalled;
    }
    return nullptr;
}

void accept_contexts(T_ASC_Parameters* params,
                     const std::map<std::string, std::vector<std::string>>& declared,
                     const std::map<std::string, std::vector<std::string>>& retrieve_storage) {
    const int count = ASC_countPresentationContexts(params);
    for (int position = 0; position < count; ++position) {
        T_ASC_PresentationContext proposed;
        if (ASC_getPresentationContext(params, position, &proposed).bad()) continue;
        const bool wants_scp_role = proposed.proposedRole == ASC_SC_ROLE_SCP ||
                                    proposed.proposedRole == ASC_SC_ROLE_SCUSCP;
        const auto storage = retrieve_storage.find(proposed.abstractSyntax);
        const bool as_scp = wants_scp_role && storage != retrieve_storage.end();
        const auto ours = as_scp ? storage : declared.find(proposed.abstractSyntax);
        if (ours == (as_scp ? retrieve_storage.end() : declared.end())) {
            ASC_refusePresentationContext(params, proposed.presentationContextID,
                                          ASC_P_ABSTRACTSYNTAXNOTSUPPORTED);
            continue;
        }
        const char* chosen = nullptr;
        for (int n = 0; n < proposed.transferSyntaxCount && chosen == nullptr; ++n) {
            const std::string syntax = proposed.proposedTransferSyntaxes[n];
            if (std::find(ours->second.begin(), ours->second.end(), syntax) !=
                ours->second.end()) {
                chosen = proposed.proposedTransferSyntaxes[n];
            }
        }
        if (chosen == nullptr) {
            ASC_refusePresentationContext(params, proposed.presentationContextID,
                                          ASC_P_TRANSFERSYNTAXESNOTSUPPORTED);
            continue;
        }
        // The requester as SCP (and also as SCU when it asks for both and we store that
        // class too); otherwise the default roles, whatever was proposed.
        T_ASC_SC_ROLE role = ASC_SC_ROLE_DEFAULT;
        if (as_scp) {
            role = proposed.proposedRole == ASC_SC_ROLE_SCUSCP &&
                           declared.count(proposed.abstractSyntax) != 0
                       ? ASC_SC_ROLE_SCUSCP
                       : ASC_SC_ROLE_SCP;
        }
        ASC_acceptPresentationContext(params, proposed.presentationContextID, chosen, role);
    }
}

void answer_as(T_ASC_Parameters* params, const std::string& responding_ae) {
    ASC_setAPTitles(params, nullptr, nullptr, responding_ae.c_str());
    OFStandard::strlcpy(params->ourImplementationClassUID, kImplementationClassUID,
                        sizeof(params->ourImplementationClassUID));
    OFStandard::strlcpy(params->ourImplementationVersionName, kImplementationVersionName,
                        sizeof(params->ourImplementationVersionName));
}

}  // namespace engine
