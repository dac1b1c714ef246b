// The optional status fields of a DIMSE response (PS3.7 C.4): Offending Element (0000,0901),
// Error Comment (0000,0902), Error ID (0000,0903) and Attribute Identifier List (0000,1005), as the Python services give them, turned
// into the status detail DCMTK merges into the response's command set.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdatset.h"

namespace engine {

struct StatusDetail {
    std::string error_comment;               //!< empty: none
    std::vector<uint32_t> offending_elements;  //!< tags as (group << 16) | element
    int error_id = -1;                       //!< -1: none; else 0..0xFFFF
    std::vector<uint32_t> attribute_identifiers;  //!< (0000,1005), tags as offending_elements

    bool empty() const {
        return error_comment.empty() && offending_elements.empty() && error_id < 0 &&
               attribute_identifiers.empty();
    }
};

//! Longest Error Comment (LO: 64 characters).
constexpr size_t kMaxErrorComment = 64;

//! The status detail to send with `status`, or nullptr when there is none to send: only
//! failure and warning statuses carry one (not Success, Pending or Cancel). The comment is
//! cut to 64 characters of printable ASCII (LO in the default repertoire; a backslash would
//! split the value).
std::unique_ptr<DcmDataset> status_detail(uint16_t status, const StatusDetail& detail);

}  // namespace engine
