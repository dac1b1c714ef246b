// A data set to and from bytes in a transfer syntax (no File Meta): how data sets travel
// between the engine and the Python handlers.
#pragma once

#include <memory>
#include <string>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdatset.h"

namespace engine {

//! `data_set` encoded in `syntax`, appended to `out`.
OFCondition encode_data_set(DcmDataset& data_set, E_TransferSyntax syntax, std::string& out);

//! A data set parsed from `bytes` in `syntax`; nullptr when they do not parse.
std::unique_ptr<DcmDataset> decode_data_set(const std::string& bytes, E_TransferSyntax syntax);

}  // namespace engine
