// See file_meta.hpp. The same elements DCMTK's DIMSE_createFilestream writes, with our
// implementation identity instead of DCMTK's.
#include "file_meta.hpp"

#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcmetinf.h"
#include "engine.hpp"

namespace engine {

std::unique_ptr<HashingFileStream> create_with_meta(const std::string& path,
                                                    const FileMeta& meta, bool hash,
                                                    OFCondition& error) {
    auto stream = std::make_unique<HashingFileStream>(OFFilename(path.c_str()), hash);
    error = stream->status();
    if (error.bad()) return nullptr;
    DcmMetaInfo header;
    const Uint8 version[2] = {0, 1};
    error = header.putAndInsertUint8Array(DCM_FileMetaInformationVersion, version, 2);
    if (error.good()) {
        error = header.putAndInsertString(DCM_MediaStorageSOPClassUID,
                                          meta.sop_class_uid.c_str());
    }
    if (error.good()) {
        error = header.putAndInsertString(DCM_MediaStorageSOPInstanceUID,
                                          meta.sop_instance_uid.c_str());
    }
    if (error.good()) {
        error = header.putAndInsertString(DCM_TransferSyntaxUID,
                                          meta.transfer_syntax_uid.c_str());
    }
    if (error.good()) {
        error = header.putAndInsertString(DCM_ImplementationClassUID, kImplementationClassUID);
    }
    if (error.good()) {
        error = header.putAndInsertString(DCM_ImplementationVersionName,
                                          kImplementationVersionName);
    }
    if (error.good() && !meta.source_ae.empty()) {
        error = header.putAndInsertString(DCM_SourceApplicationEntityTitle,
                                          meta.source_ae.c_str());
    }
    if (error.good()) {
        error = header.computeGroupLengthAndPadding(EGL_withGL, EPD_noChange,
                                                    META_HEADER_DEFAULT_TRANSFERSYNTAX,
                                                    EET_UndefinedLength);
    }
    if (error.good()) {
        header.transferInit();
        error = header.write(*stream, META_HEADER_DEFAULT_TRANSFERSYNTAX, EET_ExplicitLength,
                             nullptr);
        header.transferEnd();
    }
    if (error.good()) error = stream->status();
    if (error.bad()) return nullptr;
    return stream;
}

}  // namespace engine
