// See data_set_bytes.hpp. Written through a fixed buffer in chunks, so any size works.
#include "data_set_bytes.hpp"

#include "dcmtk/dcmdata/dcistrmb.h"
#include "dcmtk/dcmdata/dcostrmb.h"

namespace engine {

namespace {

constexpr size_t kChunk = 65536;

}  // namespace

//! The data set encoded in `syntax` (no File Meta), as a requester would send it.
OFCondition encode_data_set(DcmDataset& data_set, E_TransferSyntax syntax, std::string& out) {
    std::string buffer(kChunk, '\0');
    DcmOutputBufferStream stream(&buffer[0], buffer.size());
    data_set.transferInit();
    OFCondition cond = EC_StreamNotifyClient;
    while (cond == EC_StreamNotifyClient) {
        cond = data_set.write(stream, syntax, EET_ExplicitLength, nullptr);
        void* chunk = nullptr;
        offile_off_t length = 0;
        stream.flushBuffer(chunk, length);
        out.append(static_cast<const char*>(chunk), static_cast<size_t>(length));
    }
    data_set.transferEnd();
    return cond;
}

//! A data set parsed from bytes in `syntax`; nullptr when they do not parse.
std::unique_ptr<DcmDataset> decode_data_set(const std::string& bytes, E_TransferSyntax syntax) {
    auto data_set = std::make_unique<DcmDataset>();
    DcmInputBufferStream stream;
    stream.setBuffer(bytes.data(), static_cast<offile_off_t>(bytes.size()));
    stream.setEos();
    data_set->transferInit();
    const OFCondition cond = data_set->read(stream, syntax);
    data_set->transferEnd();
    if (cond.bad()) return nullptr;
    return data_set;
}

}  // namespace engine
