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

//! An AT element with every tag of `tags` (none: no element).
void put_tags(DcmDataset& fields, const DcmTagKey& element_tag, const std::vector<uint32_t>& tags) {
    for (size_t n = 0; n < tags.size(); ++n) {
        const uint32_t tag = tags[n];
        const DcmTagKey key(static_cast<Uint16>(tag >> 16), static_cast<Uint16>(tag & 0xFFFF));
        if (n == 0) {
            fields.putAndInsertTagKey(element_tag, key);
            continue;
        }
        DcmElement* element = nullptr;
        if (fields.findAndGetElement(element_tag, element).good() && element) {
            element->putTagVal(key, static_cast<unsigned long>(n));
        }
    }
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
    put_tags(*fields, DCM_OffendingElement, detail.offending_elements);
    put_tags(*fields, DCM_AttributeIdentifierList, detail.attribute_identifiers);
    return fields;
}

}  // namespace engine
