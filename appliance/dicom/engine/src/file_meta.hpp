// The temp file a C-STORE data set is received into: preamble and File Meta written by us
// (our Implementation Class UID and Version Name, the calling AE as Source AE), so the data
// set that DCMTK then streams in as received makes a complete DICOM file; with `hash` set,
// the stream takes the SHA-256 of the whole file as it is written (hashing_stream.hpp).
#pragma once

#include <memory>
#include <string>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcostrmf.h"
#include "hashing_stream.hpp"

namespace engine {

struct FileMeta {
    std::string sop_class_uid;
    std::string sop_instance_uid;
    std::string transfer_syntax_uid;
    std::string source_ae;
};

//! A new file at `path` holding the preamble and `meta`, open for the data set; nullptr (and
//! `error` set) when it cannot be created or written.
std::unique_ptr<HashingFileStream> create_with_meta(const std::string& path,
                                                    const FileMeta& meta, bool hash,
                                                    OFCondition& error);

}  // namespace engine
