// DICOM over TLS on the engine's second port: the TLS context built from the configured files,
// the handshake done in the connection's own thread (never under the process-wide external-
// socket lock DCMTK's negotiation needs), and the hand-over of the finished connection to
// DCMTK, whose DUL then reads and writes PDUs through it.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmnet/dcmlayer.h"

typedef struct ssl_st SSL;
class DcmTLSTransportLayer;

namespace engine {

struct SslFree {
    void operator()(SSL* ssl) const;
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

//! The TLS settings of the engine: BCP 195 (TLS 1.2 or newer, its cipher suites), the box's
//! certificate and key, the CAs whose client certificates are accepted.
class TlsServer {
public:
    //! Throws std::runtime_error naming the file and the reason when a file cannot be used.
    TlsServer(const std::string& certificate, const std::string& private_key,
              const std::string& ca_certificates, bool require_client_certificate);
    ~TlsServer();
    TlsServer(const TlsServer&) = delete;
    TlsServer& operator=(const TlsServer&) = delete;

    //! The server side of the handshake on `fd` by `deadline`; nullptr with `outcome` (the
    //! association log's words) when it fails. `peer` gets the client certificate's subject.
    SslPtr handshake(int fd, std::chrono::steady_clock::time_point deadline,
                     std::string& outcome, std::string& peer) const;

private:
    std::unique_ptr<DcmTLSTransportLayer> layer_;
};

//! The socket's blocking mode: non-blocking for our handshake and peek (bounded by the
//! ARTIM deadline), blocking again before DCMTK takes it.
void set_blocking(int fd, bool blocking);

//! Waits (by `deadline`) until the whole A-ASSOCIATE-RQ is decrypted and buffered in `ssl`, so
//! DCMTK's read of it cannot wait on the peer; false with `outcome` otherwise.
bool whole_request_buffered(SSL* ssl, int fd, std::chrono::steady_clock::time_point deadline,
                            uint32_t max_length, uint32_t& length, std::string& outcome);

//! Gives DCMTK the connection we handshook (once): set on the association's network with
//! ASC_setTransportLayer, then ASC_receiveAssociation(..., useSecureLayer = true, ...).
class HandedConnectionLayer : public DcmTransportLayer {
public:
    explicit HandedConnectionLayer(SslPtr ssl) : ssl_(std::move(ssl)) {}
    DcmTransportConnection* createConnection(DcmNativeSocketType socket,
                                             OFBool useSecureLayer) override;

private:
    SslPtr ssl_;
};

}  // namespace engine
