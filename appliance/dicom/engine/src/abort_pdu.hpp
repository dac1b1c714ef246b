// The A-ABORT PDU the engine writes itself (DCMTK's ASC_abortAssociation can only send one
// from the service user): from the service provider, with the reason of PS3.8 table 9-26.
#pragma once

#include <sys/socket.h>

namespace engine {

//! A-ABORT reasons of the service provider (PS3.8 table 9-26).
constexpr unsigned char kReasonUnexpectedPdu = 0x02;
constexpr unsigned char kReasonInvalidParameter = 0x06;

//! An A-ABORT from the service provider, then the connection shut (errors ignored: the peer
//! may be gone already).
inline void send_provider_abort(int fd, unsigned char reason) {
    const unsigned char pdu[10] = {0x07, 0, 0, 0, 0, 4, 0, 0, 0x02, reason};
    (void)!send(fd, pdu, sizeof(pdu), MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_RDWR);
}

}  // namespace engine
