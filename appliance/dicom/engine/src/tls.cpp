// See tls.hpp.
#include "tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <fcntl.h>
#include <poll.h>

#include <stdexcept>
#include <vector>

#include "dcmtk/dcmtls/tlslayer.h"
#include "dcmtk/dcmtls/tlstrans.h"

namespace engine {

namespace {

constexpr int kPollMs = 100;

std::string openssl_error() {
    const unsigned long code = ERR_get_error();
    if (code == 0) return "no detail";
    char text[256];
    ERR_error_string_n(code, text, sizeof(text));
    ERR_clear_error();
    return text;
}

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), kPollMs));
}

//! Waits for `fd` to be readable (or writable) by `deadline`.
bool wait_fd(int fd, bool write, std::chrono::steady_clock::time_point deadline) {
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd waiting{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
        const int ready = poll(&waiting, 1, remaining_ms(deadline));
        if (ready > 0) return true;
        if (ready < 0 && errno != EINTR) return false;
    }
    return false;
}

}  // namespace

void set_blocking(int fd, bool blocking) {
    const int flags = fcntl(fd, F_GETFL, 0);
    if (flags >= 0) fcntl(fd, F_SETFL, blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK));
}

void SslFree::operator()(SSL* ssl) const {
    SSL_free(ssl);
}

TlsServer::TlsServer(const std::string& certificate, const std::string& private_key,
                     const std::string& ca_certificates, bool require_client_certificate)
    : layer_(std::make_unique<DcmTLSTransportLayer>(NET_ACCEPTOR, nullptr, OFTrue)) {
    auto check = [](OFCondition cond, const std::string& file, const char* what) {
        if (cond.bad()) {
            throw std::runtime_error(file + ": cannot use it as the " + what + ": " +
                                     cond.text());
        }
    };
    check(layer_->setTLSProfile(TSP_Profile_BCP195_ND), "", "TLS profile");
    check(layer_->activateCipherSuites(), "", "cipher suites");
    check(layer_->setPrivateKeyFile(private_key.c_str(), DCF_Filetype_PEM), private_key,
          "private key");
    check(layer_->setCertificateFile(certificate.c_str(), DCF_Filetype_PEM), certificate,
          "certificate");
    if (!layer_->checkPrivateKeyMatchesCertificate()) {
        throw std::runtime_error(private_key + ": this key does not belong to the certificate " +
                                 certificate);
    }
    if (!ca_certificates.empty()) {
        check(layer_->addTrustedCertificateFile(ca_certificates.c_str(), DCF_Filetype_PEM),
              ca_certificates, "CA bundle");
    }
    layer_->setCertificateVerification(require_client_certificate ? DCV_requireCertificate
                                                                  : DCV_checkCertificate);
}

TlsServer::~TlsServer() = default;

SslPtr TlsServer::handshake(int fd, std::chrono::steady_clock::time_point deadline,
                            std::string& outcome, std::string& peer) const {
    SslPtr ssl(SSL_new(layer_->getNativeHandle()));
    if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
        outcome = "closed before A-ASSOCIATE-RQ: TLS: " + openssl_error();
        return nullptr;
    }
    for (;;) {
        const int result = SSL_accept(ssl.get());
        if (result == 1) break;
        const int error = SSL_get_error(ssl.get(), result);
        if ((error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) &&
            wait_fd(fd, error == SSL_ERROR_WANT_WRITE, deadline)) {
            continue;
        }
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
            outcome = "closed before A-ASSOCIATE-RQ: TLS handshake not finished in time";
        } else {
            const long verify = SSL_get_verify_result(ssl.get());
            outcome = "refused: TLS handshake failed: " +
                      (verify != X509_V_OK ? std::string(X509_verify_cert_error_string(verify))
                                           : openssl_error());
        }
        return nullptr;
    }
    X509* certificate = SSL_get1_peer_certificate(ssl.get());
    if (certificate != nullptr) {
        std::vector<char> subject(256);
        X509_NAME_oneline(X509_get_subject_name(certificate), subject.data(),
                          static_cast<int>(subject.size()));
        peer = subject.data();
        X509_free(certificate);
    }
    return ssl;
}

bool whole_request_buffered(SSL* ssl, int fd, std::chrono::steady_clock::time_point deadline,
                            uint32_t max_length, uint32_t& length, std::string& outcome) {
    std::vector<unsigned char> peek(6);
    size_t wanted = peek.size();
    bool have_length = false;
    for (;;) {
        const int got = SSL_peek(ssl, peek.data(), static_cast<int>(peek.size()));
        if (got > 0 && static_cast<size_t>(got) >= 1 && peek[0] != 0x01) {
            outcome = peek[0] == 0x07 ? "closed before A-ASSOCIATE-RQ: A-ABORT from peer"
                                      : "aborted: not an A-ASSOCIATE-RQ first";
            return false;
        }
        if (got > 0 && !have_length && got >= 6) {
            have_length = true;
            length = (uint32_t(peek[2]) << 24) | (uint32_t(peek[3]) << 16) |
                     (uint32_t(peek[4]) << 8) | uint32_t(peek[5]);
            if (length > max_length) {
                outcome = "aborted: A-ASSOCIATE-RQ length " + std::to_string(length) +
                          " over the limit " + std::to_string(max_length);
                return false;
            }
            wanted = length + 6;
            peek.resize(wanted);
            continue;
        }
        if (got > 0 && have_length && static_cast<size_t>(got) >= wanted) return true;
        if (got <= 0) {
            const int error = SSL_get_error(ssl, got);
            if (error != SSL_ERROR_WANT_READ) {
                outcome = "closed before A-ASSOCIATE-RQ: connection closed by peer";
                return false;
            }
        }
        // (An RQ split over several TLS records shows only its first record to SSL_peek;
        // a 16 KB record holds any RQ a modality sends.)
        if (!wait_fd(fd, false, deadline)) {
            outcome = "closed before A-ASSOCIATE-RQ: ARTIM timeout";
            return false;
        }
    }
}

DcmTransportConnection* HandedConnectionLayer::createConnection(DcmNativeSocketType socket,
                                                                OFBool useSecureLayer) {
    if (!useSecureLayer || !ssl_) return nullptr;
    // DCMTK's DUL owns the connection object from here (it deletes it with the association).
    return std::make_unique<DcmTLSConnection>(socket, ssl_.release()).release();
}

}  // namespace engine
