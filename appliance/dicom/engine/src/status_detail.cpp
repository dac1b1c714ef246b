// See status_detail.hpp.
#include "status_detail.hpp"

#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcelem.h"
#include "dimse_status.hpp"

namespace engine {

namespace {

bool carries_detail(uint16_t status) {
    return status != kSuccess && !is_pending(status) && status != kCancel;
}

std::string printable(const std::string& text) {
    std::string clean;
    for (const unsigned char c : text) {
        if (clean.size() == kMaxErrorComment) break;
        clean += (c >= 0x20 && c < 0x7F && c != '\\') ? static_cast<char>(c) : '?';
    }
    return clean;
}

}  // namespace

std::unique_ptr<DcmDataset> status_detail(uint16_t status, const StatusDetail& detail) {
    if (detail.empty() || !carries_detail(status)) return nullptr;
    auto fields = std::make_unique<DcmDataset>();
    if (!detail.error_comment.empty()) {
        fields->putAndInsertString(DCM_ErrorComment, printable(detail.error_comment).c_str());
    }
    if (detail.error_id >= 0 && detail.error_id <= 0xFFFF) {
        fields->putAndInsertUint16(DCM_ErrorID, static_cast<Uint16>(detail.error_id));
    }
    for (size_t n = 0; n < detail.offending_elements.size(); ++n) {
        const uint32_t tag = detail.offending_elements[n];
        const DcmTagKey key(static_cast<Uint16>(tag >> 16), static_cast<Uint16>(tag & 0xFFFF));
        if (n == 0) {
            fields->putAndInsertTagKey(DCM_OffendingElement, key);
            continue;
        }
        DcmElement* element = nullptr;
        if (fields->findAndGetElement(DCM_OffendingElement, element).good() && element) {
            element->putTagVal(key, static_cast<unsigned long>(n));
        }
    }
    return fields;
}

}  // namespace engine
