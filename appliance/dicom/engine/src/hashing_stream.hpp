// The C-STORE temp file's output stream: every byte DCMTK writes through it (preamble, File
// Meta, the data set as received) goes to the file and, when asked for, into a SHA-256
// (OpenSSL EVP) on the way, so Storage Commitment's content hash needs no read-back.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcostrma.h"
#include "dcmtk/dcmdata/dcostrmf.h"

namespace engine {

struct DigestDeleter {
    void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};

//! DCMTK's file consumer, each byte it accepts also fed to a SHA-256 when `hash` is set.
class HashingFileConsumer : public DcmConsumer {
public:
    HashingFileConsumer(const OFFilename& filename, bool hash);
    OFBool good() const override { return file_.good(); }
    OFCondition status() const override { return file_.status(); }
    OFBool isFlushed() const override { return file_.isFlushed(); }
    offile_off_t avail() const override { return file_.avail(); }
    offile_off_t write(const void* buffer, offile_off_t length) override;
    void flush() override { file_.flush(); }
    //! The SHA-256 of every byte written, in lower-case hex; empty when not hashing or when
    //! OpenSSL failed (the file itself is unaffected). Finishes the hash: call once, last.
    std::string hex_digest();

private:
    DcmFileConsumer file_;
    std::unique_ptr<EVP_MD_CTX, DigestDeleter> digest_;
    bool digest_failed_ = false;
};

//! A DcmOutputStream over that consumer (as DcmOutputFileStream is over DcmFileConsumer);
//! the file is closed when it is destroyed.
class HashingFileStream : public DcmOutputStream {
public:
    HashingFileStream(const OFFilename& filename, bool hash);
    std::string hex_digest() { return consumer_.hex_digest(); }

private:
    HashingFileConsumer consumer_;
};

}  // namespace engine
