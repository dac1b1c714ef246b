// The DIMSE status codes the engine sends or looks at itself (PS3.7 Annex C); the services'
// own statuses come from Python.
#pragma once

#include <cstdint>

namespace engine {

constexpr uint16_t kSuccess = 0x0000;
constexpr uint16_t kCancel = 0xFE00;
constexpr uint16_t kPending = 0xFF00;
constexpr uint16_t kPendingWarning = 0xFF01;
constexpr uint16_t kOutOfResources = 0xA700;
constexpr uint16_t kUnableToProcess = 0xC000;
constexpr uint16_t kProcessingFailure = 0x0110;
//! A C-STORE sub-operation not sent: no context for its SOP class in its transfer syntax.
constexpr uint16_t kNotSent = 0x0122;

inline bool is_pending(uint16_t status) {
    return status == kPending || status == kPendingWarning;
}

}  // namespace engine
