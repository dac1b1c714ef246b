// See hashing_stream.hpp.
#include "hashing_stream.hpp"

namespace engine {

HashingFileConsumer::HashingFileConsumer(const OFFilename& filename, bool hash)
    : file_(filename) {
    if (!hash) return;
    digest_.reset(EVP_MD_CTX_new());
    digest_failed_ = !digest_ || EVP_DigestInit_ex(digest_.get(), EVP_sha256(), nullptr) != 1;
}

offile_off_t HashingFileConsumer::write(const void* buffer, offile_off_t length) {
    const offile_off_t written = file_.write(buffer, length);
    if (digest_ && !digest_failed_ && written > 0 &&
        EVP_DigestUpdate(digest_.get(), buffer, static_cast<size_t>(written)) != 1) {
        digest_failed_ = true;
    }
    return written;
}

std::string HashingFileConsumer::hex_digest() {
    if (!digest_ || digest_failed_) return "";
    unsigned char value[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    digest_failed_ = true;  // finished: a second call answers "" rather than a wrong value
    if (EVP_DigestFinal_ex(digest_.get(), value, &length) != 1) return "";
    static const char kHex[] = "0123456789abcdef";
    std::string text;
    text.reserve(2 * length);
    for (unsigned int i = 0; i < length; ++i) {
        text += kHex[value[i] >> 4];
        text += kHex[value[i] & 0x0F];
    }
    return text;
}

// DCMTK's own DcmOutputFileStream hands its member consumer to the base the same way: the
// base only keeps the pointer until the stream is used.
HashingFileStream::HashingFileStream(const OFFilename& filename, bool hash)
    : DcmOutputStream(&consumer_), consumer_(filename, hash) {}

}  // namespace engine
